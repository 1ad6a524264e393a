//! Yampi's queues: the asynchronous jobs behind spreadsheet exports and imports.
//!
//! A queue is created by an export (`GET /catalog/skus/export`, `GET /catalog/stocks/export-skus`)
//! or an import (`POST /catalog/skus/import`), progresses over `QueueSettings::queue_secs`, and
//! when it finishes does its work: an export writes its file (served under `/files/<random>/…`,
//! linked from `redirect_url` and a notification), an import applies its lines and writes one log
//! entry per line. Queue objects have no status field, as documented: only `total_sent`,
//! `total_processed` and `finished_at`. Routes: `GET /queues`, `GET /queues/{id}`,
//! `GET /queues/{id}/logs`; the files; the data the export and import modules share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use rand::Rng;
use serde_json::{Value, json};

use super::catalog::date_json;
use super::query::{PageReq, paginate};
use super::routes::{Ctx, Reply};
use super::store::State;

/// How the simulated queues behave (not faults: plausible variants of an undocumented API).
#[derive(Clone, Debug)]
pub struct QueueSettings {
    /// How long a queue takes from creation to `finished_at`, whatever its size.
    pub queue_secs: Duration,
    /// Added per line of an export (`total_sent` SKUs): a queue's time grows with its size.
    pub export_per_line: Duration,
    /// Added per line of an import (its file's data rows, known once it was fetched).
    pub import_per_line: Duration,
    /// The format export files are written in.
    pub format: FileFormat,
    /// The file's name carries the other format's extension (`.xls` for an xlsx body and back).
    pub lying_extension: bool,
    /// Stock exports name their columns `sku_id`/`sku`/`estoque`/`estoque_minimo` instead of
    /// `id_sku`/`sku`/`quantidade`/`quantidade_minima`.
    pub stock_column_variant: bool,
    /// Seeds the order of the SKU export's columns (the store decides it, not the client).
    pub column_seed: u64,
    /// A finished export's notification appears this long after `finished_at`.
    pub notification_lag: Duration,
    /// Imports also accept an `.xlsx` body (the old docs say `.xls` only: off by default).
    pub import_accepts_xlsx: bool,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            queue_secs: Duration::from_secs(2),
            export_per_line: Duration::ZERO,
            import_per_line: Duration::ZERO,
            format: FileFormat::Xlsx,
            lying_extension: false,
            stock_column_variant: false,
            column_seed: 7,
            notification_lag: Duration::ZERO,
            import_accepts_xlsx: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Xlsx,
    Xls,
}

impl FileFormat {
    pub(super) fn extension(self) -> &'static str {
        match self {
            FileFormat::Xlsx => "xlsx",
            FileFormat::Xls => "xls",
        }
    }

    pub(super) fn other(self) -> FileFormat {
        match self {
            FileFormat::Xlsx => FileFormat::Xls,
            FileFormat::Xls => FileFormat::Xlsx,
        }
    }
}

/// One cell of a spreadsheet the simulator writes or reads.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum SheetCell {
    Text(String),
    Number(f64),
    Empty,
}

/// What fetching and parsing an import's file produced: its rows (header first) or why not.
pub(super) type Fetched = Arc<Mutex<Option<Result<Vec<Vec<SheetCell>>, String>>>>;

pub(super) enum Work {
    SkuExport,
    StockExport(u64),
    /// Filled by the background fetch; the queue cannot finish before it is.
    Import(Fetched),
    Done,
}

pub(super) struct LogEntry {
    pub id: u64,
    pub success: bool,
    /// Data row number from 1; 0 for an entry about the whole file.
    pub line: u64,
    pub message: String,
}

pub(super) struct Queue {
    pub id: u64,
    /// An import's queue (else an export's): which per-line time it takes.
    pub import: bool,
    pub token: String,
    pub title: String,
    /// The `User-Token` that created it: notifications go to that user.
    pub owner: String,
    pub total_sent: u64,
    pub started: Instant,
    pub created_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub redirect_url: Option<String>,
    pub logs: Vec<LogEntry>,
    pub work: Work,
}

pub(super) struct HostedFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

pub(super) struct Notification {
    pub id: String,
    pub owner: String,
    pub queue_id: u64,
    pub link: String,
    pub visible_at: Instant,
}

#[derive(Default)]
pub(super) struct QueueState {
    pub settings: QueueSettings,
    pub next_id: u64,
    pub next_log_id: u64,
    pub queues: Vec<Queue>,
    /// Served under `/files/{key}/{name}`, keyed by the random `key`.
    pub files: HashMap<String, HostedFile>,
    pub notifications: Vec<Notification>,
    /// `POST /catalog/skus/import` requests that reached the handler.
    pub import_posts: usize,
    /// `http://127.0.0.1:{port}`: where hosted files are served.
    pub origin: String,
    pub alias: String,
}

impl QueueState {
    pub(super) fn create(
        &mut self,
        title: &str,
        owner: &str,
        total_sent: u64,
        now: NaiveDateTime,
        work: Work,
    ) -> u64 {
        self.next_id = self.next_id.max(500) + 1;
        let id = self.next_id;
        let import = matches!(work, Work::Import(_));
        self.queues.push(Queue {
            id,
            import,
            token: uuid(),
            title: title.to_owned(),
            owner: owner.to_owned(),
            total_sent,
            started: Instant::now(),
            created_at: now,
            finished_at: None,
            redirect_url: None,
            logs: Vec::new(),
            work,
        });
        id
    }

    pub(super) fn queue(&self, id: u64) -> Option<&Queue> {
        self.queues.iter().find(|q| q.id == id)
    }

    pub(super) fn queue_mut(&mut self, id: u64) -> Option<&mut Queue> {
        self.queues.iter_mut().find(|q| q.id == id)
    }

    pub(super) fn log(&mut self, queue_id: u64, success: bool, line: u64, message: String) {
        self.next_log_id += 1;
        let id = self.next_log_id;
        if let Some(q) = self.queue_mut(queue_id) {
            q.logs.push(LogEntry {
                id,
                success,
                line,
                message,
            });
        }
    }

    /// Hosts a file and returns its path (`/files/{key}/{name}`).
    pub(super) fn host(&mut self, name: &str, bytes: Vec<u8>) -> String {
        let key = random_hex(16);
        let path = format!("/files/{key}/{name}");
        self.files.insert(
            key,
            HostedFile {
                name: name.to_owned(),
                bytes,
            },
        );
        path
    }
}

/// A random UUID (version 4 layout).
pub(super) fn uuid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `bytes` random bytes as hex (128 bits for 16).
pub(super) fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// How long queue `q` takes: the fixed time plus its lines at the per-line time of its kind.
fn duration_of(q: &Queue, settings: &QueueSettings) -> Duration {
    let per_line = if q.import {
        settings.import_per_line
    } else {
        settings.export_per_line
    };
    let lines = u32::try_from(q.total_sent).unwrap_or(u32::MAX);
    settings
        .queue_secs
        .saturating_add(per_line.saturating_mul(lines))
}

/// Finishes every queue whose time has come (and, for imports, whose file was fetched).
pub(super) fn settle(st: &mut State, now: Instant) {
    if st.faults.queue_never_finishes {
        return;
    }
    let settings = st.queues.settings.clone();
    // An import's size is known once its file was read.
    for q in &mut st.queues.queues {
        if let Work::Import(fetched) = &q.work
            && let Some(Ok(rows)) = &*super::store::lock(fetched)
        {
            q.total_sent = rows.len().saturating_sub(1) as u64;
        }
    }
    let due: Vec<u64> = st
        .queues
        .queues
        .iter()
        .filter(|q| {
            q.finished_at.is_none()
                && now.saturating_duration_since(q.started) >= duration_of(q, &settings)
        })
        .filter(|q| match &q.work {
            Work::Import(_) if st.faults.import_queue_never_finishes => false,
            Work::Import(fetched) => super::store::lock(fetched).is_some(),
            _ => true,
        })
        .map(|q| q.id)
        .collect();
    for id in due {
        let work = match st.queues.queue_mut(id) {
            Some(q) => std::mem::replace(&mut q.work, Work::Done),
            None => continue,
        };
        match work {
            Work::SkuExport => super::exports::finish_sku_export(st, id),
            Work::StockExport(stock_id) => super::exports::finish_stock_export(st, id, stock_id),
            Work::Import(fetched) => {
                let result = super::store::lock(&fetched)
                    .take()
                    .unwrap_or_else(|| Err("o arquivo não foi lido".to_owned()));
                super::imports::finish_import(st, id, result);
            }
            Work::Done => {}
        }
        let at = st.now();
        if let Some(q) = st.queues.queue_mut(id) {
            q.finished_at = Some(at);
        }
    }
}

/// The queue as `GET /queues/{id}` renders it. Until it finishes, `total_processed` stays below
/// `total_sent`, so "processed >= sent" never claims work that was not done yet.
pub(super) fn queue_json(q: &Queue, settings: &QueueSettings, hide_redirect: bool) -> Value {
    let processed = if q.finished_at.is_some() {
        q.total_sent
    } else {
        let total = duration_of(q, settings).as_secs_f64().max(0.001);
        let frac = (q.started.elapsed().as_secs_f64() / total).min(1.0);
        ((q.total_sent as f64 * frac) as u64).min(q.total_sent.saturating_sub(1))
    };
    let redirect = if hide_redirect {
        None
    } else {
        q.redirect_url.clone()
    };
    json!({
        "id": q.id,
        "token": q.token,
        "total_sent": q.total_sent,
        "total_processed": processed,
        "title": q.title,
        "redirect_url": redirect,
        "finished_at": q.finished_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        "created_at": date_json(q.created_at),
    })
}

pub(super) fn log_json(e: &LogEntry, line_as_number: bool, message_as_string: bool) -> Value {
    let line = if line_as_number {
        json!(e.line)
    } else {
        json!(e.line.to_string())
    };
    let message = if message_as_string {
        json!(e.message)
    } else {
        json!([e.message])
    };
    json!({
        "id": e.id,
        "success": e.success,
        "error": !e.success,
        "line": line,
        "message": message,
    })
}

pub(super) fn notification_json(n: &Notification) -> Value {
    json!({
        "id": n.id,
        "type": "App\\Notifications\\SpreadsheetReady",
        "data": {
            "queue_id": n.queue_id,
            "message": "Sua planilha de produtos está pronta",
            "btn_text": "Baixar planilha",
            "link": n.link,
        },
        "read_at": null,
    })
}

/// `GET /queues`: every queue, newest first, paginated like every list.
pub(super) fn list_queues(cx: &mut Ctx) -> Reply {
    let q = cx.query();
    let hide = cx.st.faults.queue_links_only_in_notifications;
    let st = &*cx.st;
    let mut queues: Vec<&Queue> = st.queues.queues.iter().collect();
    queues.sort_by_key(|q| std::cmp::Reverse(q.id));
    let body = paginate(
        queues,
        PageReq::from_query(&q),
        &q,
        &cx.link_base(),
        cx.page_style(),
        |qu| queue_json(qu, &st.queues.settings, hide),
    );
    Reply::new(200, body)
}

/// `GET /queues/{id}`.
pub(super) fn show_queue(cx: &mut Ctx, id: u64) -> Reply {
    let hide = cx.st.faults.queue_links_only_in_notifications;
    match cx.st.queues.queue(id) {
        Some(q) => Reply::new(
            200,
            json!({ "data": queue_json(q, &cx.st.queues.settings, hide) }),
        ),
        None => Reply::not_found(),
    }
}

/// `GET /queues/{id}/logs`: the queue's entries in order, paginated (`limit`/`page`).
pub(super) fn queue_logs(cx: &mut Ctx, id: u64) -> Reply {
    let q = cx.query();
    let (as_number, as_string) = (
        cx.st.faults.log_line_as_number,
        cx.st.faults.log_message_as_string,
    );
    let Some(queue) = cx.st.queues.queue(id) else {
        return Reply::not_found();
    };
    let body = paginate(
        queue.logs.iter().collect(),
        PageReq::from_query(&q),
        &q,
        &cx.link_base(),
        cx.page_style(),
        |e| log_json(e, as_number, as_string),
    );
    Reply::new(200, body)
}

/// `/files/{key}/{name}`: a hosted file (no auth, no quota: it is a file host, not the API).
pub(super) fn serve_file(st: &State, key: &str, name: &str) -> Reply {
    match st.queues.files.get(key).filter(|f| f.name == name) {
        Some(f) => Reply::raw(200, "application/octet-stream", f.bytes.clone()),
        None => Reply::not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_uuids() {
        let u = uuid();
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{u}");
        assert_ne!(uuid(), u);
        assert_eq!(random_hex(16).len(), 32);
    }

    #[test]
    fn a_queue_takes_its_fixed_time_plus_its_lines_at_its_kinds_rate() {
        let mut qs = QueueState::default();
        qs.settings.queue_secs = Duration::from_secs(1);
        qs.settings.export_per_line = Duration::from_millis(1);
        qs.settings.import_per_line = Duration::from_millis(10);
        let now = super::super::catalog::store_now();
        let export = qs.create("e", "t", 500, now, Work::SkuExport);
        let import = qs.create("i", "t", 0, now, Work::Import(Arc::new(Mutex::new(None))));
        qs.queue_mut(import).unwrap().total_sent = 500;
        let took = |id| duration_of(qs.queue(id).unwrap(), &qs.settings);
        assert_eq!(took(export), Duration::from_millis(1_500));
        assert_eq!(took(import), Duration::from_secs(6));
    }

    #[test]
    fn an_unfinished_queue_never_reports_all_processed() {
        let mut qs = QueueState::default();
        qs.settings.queue_secs = Duration::from_millis(1);
        let id = qs.create(
            "Exportando SKUs",
            "t",
            3,
            super::super::catalog::store_now(),
            Work::SkuExport,
        );
        // Its time has passed, but nobody settled it: not finished, so not all processed.
        std::thread::sleep(Duration::from_millis(5));
        let v = queue_json(qs.queue(id).unwrap(), &qs.settings, false);
        assert_eq!(v["total_processed"], json!(2));
        assert_eq!(v["finished_at"], Value::Null);
    }
}
