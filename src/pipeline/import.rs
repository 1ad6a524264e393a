//! Price changes sent as Yampi spreadsheet imports (`route = "import"`, or `"auto"` when the
//! estimate says an import is faster than the API), and imports an earlier run left pending.
//!
//! One import, file by file (at most [`crate::xls::MAX_DATA_ROWS`] lines each):
//! 1. the store's SKU export is fetched fresh: its header is the template (or `import_template`,
//!    which must carry the same columns in the same order), and its rows give every column's
//!    current value — a stale copy would put back a name or weight the merchant changed since;
//! 2. one row per changed SKU found in the export, every cell filled with the store's value except
//!    the changed prices; prices are numbers, everything else text;
//! 3. the `.xls` is published, and its intents (the file, its URL, and one per line: line → SKU
//!    and the prices it sets) are recorded durably *before* `POST catalog/skus/import`;
//! 4. the POST goes once, never again: no queue id in the answer (or no answer) → the queue is
//!    looked for in `GET /queues`; not found → the lines stay unknown and the job stops (exit 3);
//! 5. the queue is watched up to `queue_timeout`, then every log page is read: a line that
//!    succeeded checkpoints its prices (like a price batch), a line with an error is reported with
//!    Yampi's message, a line with no entry is unknown (never counted as applied) and planned
//!    again by the next run; the file is unpublished.
//!
//! A queue still running at `queue_timeout` stops the job (exit 3) with its lines pending and its
//! file still served (until `file_ttl`), so Yampi can still fetch it; the next run (or daemon tick)
//! resumes watching it ([`resume_pending`]) before planning and never posts it again. An import
//! whose queue was never found is given up once its file's `file_ttl` has passed (Yampi can no
//! longer fetch it, so it cannot apply anything more): its lines are planned again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::{JobSettings, PriceRoute};
use crate::export_file;
use crate::exports::{self, ExportAliases, SkuExport};
use crate::model::PriceFields;
use crate::publish::PublishServer;
use crate::report::{ChangeRow, EXIT_FAILED, Field, Outcome, Value};
use crate::shop::ShopClient;
use crate::shop::queue_watch::{self, WatchError};
use crate::shop::queues::{QueueLine, QueueState};
use crate::state::{OpKind, Operation, Outcome as Settle, StateStore};
use crate::xls::{self, XlsCell};

use super::common::{Fail, fail, state_fail};
use super::driver::JobContext;

/// The queue speed the `auto` estimate assumes (Yampi does not document one): 20 lines a second,
/// so 30,000 lines take 25 minutes.
pub const ASSUMED_LINES_PER_SEC: u64 = 20;

/// The ledger keys of an import: `import:<batch>:file` and `import:<batch>:line:<n>`.
const KEY_PREFIX: &str = "import:";

fn file_key(batch: &str) -> String {
    format!("{KEY_PREFIX}{batch}:file")
}

fn line_key(batch: &str, line: u64) -> String {
    format!("{KEY_PREFIX}{batch}:line:{line:06}")
}

/// What the ledger holds about one import file (key `import:<batch>:file`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileIntent {
    pub batch: String,
    pub name: String,
    /// The publish token: a capability, kept only here and in the publish dir.
    pub token: String,
    pub lines: u64,
    /// Store-local time just before the POST, for `GET /queues`.
    pub posted_since: String,
    pub posted_at: DateTime<Utc>,
    /// When the publish server stops serving the file.
    pub expires_at: DateTime<Utc>,
    /// The import's queue is newer than this one (the export read for it).
    pub after_queue: u64,
    pub queue_id: Option<u64>,
    /// How far the queue had got when last seen (a watch that timed out).
    #[serde(default)]
    pub processed: u64,
}

/// One line of an import file (key `import:<batch>:line:<n>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineIntent {
    pub line: u64,
    pub sku_id: u64,
    pub product_id: u64,
    pub key: String,
    pub fields: PriceFields,
}

/// One changed SKU to import.
#[derive(Debug, Clone)]
pub struct ImportLine {
    pub sku_id: u64,
    pub product_id: u64,
    pub key: String,
    pub fields: PriceFields,
}

/// What an import (or a resumed one) did, per SKU.
#[derive(Debug, Default, Clone)]
pub struct ImportResult {
    pub outcomes: HashMap<u64, Outcome>,
    /// Resumed lines, as report rows (their SKUs may not be in this run's plan).
    pub rows: Vec<ChangeRow>,
    pub applied: u64,
    pub failed: u64,
    /// Files whose queue was watched this run (posted now, or resumed).
    pub files: u64,
    /// Set when the job as a whole failed (exit 3).
    pub stopped: Option<String>,
}

impl ImportResult {
    fn outcome(&mut self, line: &LineIntent, outcome: Outcome) {
        match outcome {
            Outcome::Applied => self.applied += 1,
            _ => self.failed += 1,
        }
        self.outcomes.insert(line.sku_id, outcome);
    }
}

// --- the route ---------------------------------------------------------------------------

/// Which way a price plan goes, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteChoice {
    pub import: bool,
    pub api_eta_secs: f64,
    pub import_eta_secs: f64,
    pub why: String,
}

/// An import's estimate: `overhead` + the queue time of `lines` at [`ASSUMED_LINES_PER_SEC`],
/// rounded up to whole `poll` intervals (the run sees the end at a poll).
pub fn import_eta_secs(lines: u64, files: u64, poll: Duration, overhead: Duration) -> f64 {
    let queue = lines as f64 / ASSUMED_LINES_PER_SEC as f64;
    let poll = poll.as_secs_f64().max(0.001);
    let polled = (queue / poll).ceil().max(1.0) * poll;
    overhead.as_secs_f64() * files.max(1) as f64 + polled
}

/// Files needed for `lines` lines.
pub fn files_for(lines: u64) -> u64 {
    lines.div_ceil(xls::MAX_DATA_ROWS as u64)
}

/// `auto`: an import when `[publish]` is set and it is estimated faster than the API's ETA
/// (the dry run's); `api`: never; `import`: always. Stock jobs never get here.
pub fn choose(
    job: &JobSettings,
    publish_configured: bool,
    poll: Duration,
    lines: u64,
    api_eta_secs: f64,
) -> RouteChoice {
    let files = files_for(lines);
    let import_eta_secs = import_eta_secs(lines, files, poll, job.import_overhead);
    let human = crate::util::human_secs;
    let (import, why) = match job.route {
        _ if lines == 0 => (false, "nothing to send".to_string()),
        PriceRoute::Api => (false, "route = \"api\"".to_string()),
        PriceRoute::Import => (true, "route = \"import\"".to_string()),
        PriceRoute::Auto if !publish_configured => (
            false,
            "route = \"auto\" without a [publish] section".to_string(),
        ),
        PriceRoute::Auto if import_eta_secs < api_eta_secs => (
            true,
            format!(
                "route = \"auto\": the API would take {} under the store's limits, an import about {}",
                human(api_eta_secs),
                human(import_eta_secs)
            ),
        ),
        PriceRoute::Auto => (
            false,
            format!(
                "route = \"auto\": the API takes {}, no longer than an import's estimate of {}",
                human(api_eta_secs),
                human(import_eta_secs)
            ),
        ),
    };
    RouteChoice {
        import,
        api_eta_secs,
        import_eta_secs,
        why,
    }
}

// --- the file ----------------------------------------------------------------------------

/// The first column where `template` and `export` differ (names compared ignoring case,
/// accents, spaces and `_`): its number from 1 and each side's name there, quoted, or "no column".
fn first_difference(template: &[String], export: &[String]) -> Option<(usize, String, String)> {
    let quote = |s: Option<&String>| s.map_or("no column".to_string(), |s| format!("\"{s}\""));
    (0..export.len().max(template.len())).find_map(|i| {
        let (a, b) = (template.get(i), export.get(i));
        (a.map(|s| export_file::norm(s)) != b.map(|s| export_file::norm(s)))
            .then(|| (i + 1, quote(a), quote(b)))
    })
}

/// The export's header, or the template's when it has the same columns in the same order
/// (names compared ignoring case, accents, spaces and `_`); a differing template is refused
/// naming the file and the first differing column.
pub fn template_header(
    export_header: &[String],
    template: Option<(&std::path::Path, &[String])>,
) -> Result<Vec<String>, String> {
    let Some((path, header)) = template else {
        return Ok(export_header.to_vec());
    };
    match first_difference(header, export_header) {
        Some((col, a, b)) => Err(format!(
            "the import template {} differs from the store's SKU export at column {col} (the template has {a}, the export {b}); nothing was sent — download a fresh SKU export from Yampi and point import_template at it, or remove import_template",
            path.display(),
        )),
        None => Ok(header.to_vec()),
    }
}

/// Reads an `import_template` file's header row.
pub fn read_template_header(path: &std::path::Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the import template {}: {e}", path.display()))?;
    let what = format!("the import template {}", path.display());
    export_file::read_table(&bytes, &what)
        .map(|t| t.header)
        .map_err(|e| e.to_string())
}

/// `check` (offline): the job's `import_template` against the SKU export header the state store
/// kept for its store. `Ok(None)`: nothing to compare (no template, or no header kept yet).
pub fn check_template(
    state: &StateStore,
    job: &JobSettings,
    store: &str,
) -> Result<Option<String>, String> {
    let Some(path) = &job.import_template else {
        return Ok(None);
    };
    let stored = state
        .sku_header(store)
        .map_err(|e| format!("job {}: {e}", job.name))?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let template = read_template_header(path).map_err(|e| format!("job {}: {e}", job.name))?;
    let read_at = stored
        .read_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match first_difference(&template, &stored.columns) {
        Some((col, a, b)) => Err(format!(
            "job {}: the import template {} differs at column {col} from store {store}'s SKU export header read {read_at} (queue {}): the template has {a}, the export {b}; an import would be refused before sending — download a fresh SKU export from Yampi and point import_template at it, or remove import_template",
            job.name,
            path.display(),
            stored.queue_id
        )),
        None => Ok(Some(format!(
            "job {}: the import template {} has the same {} columns as store {store}'s SKU export header read {read_at}",
            job.name,
            path.display(),
            template.len()
        ))),
    }
}

/// One file's rows: each line's export row with the changed prices put in. `None` for a SKU
/// the export does not have.
pub fn build_rows(
    export: &SkuExport,
    lines: &[ImportLine],
) -> Result<Vec<Option<Vec<XlsCell>>>, String> {
    let by_id: HashMap<u64, usize> = export
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.sku_id, i))
        .collect();
    let cols = &export.cols;
    let price_cols = [
        (cols.price_sale, "preço_venda"),
        (cols.price_discount, "preço_promocional"),
        (cols.price_cost, "preço_custo"),
    ];
    for l in lines {
        for ((col, name), value) in
            price_cols
                .iter()
                .zip([l.fields.sale, l.fields.discount, l.fields.cost])
        {
            if value.is_some() && col.is_none() {
                return Err(format!(
                    "the store's SKU export has no {name} column, so SKU {} ({}) cannot have that price imported; nothing was sent — use route = \"api\"",
                    l.sku_id, l.key
                ));
            }
        }
    }
    let is_price = |i: usize| price_cols.iter().any(|(c, _)| *c == Some(i));
    Ok(lines
        .iter()
        .map(|l| {
            let row = &export.rows[*by_id.get(&l.sku_id)?];
            let new = |i: usize| -> Option<Decimal> {
                [
                    (cols.price_sale, l.fields.sale),
                    (cols.price_discount, l.fields.discount),
                    (cols.price_cost, l.fields.cost),
                ]
                .into_iter()
                .find(|(c, _)| *c == Some(i))
                .and_then(|(_, v)| v)
            };
            Some(
                (0..export.header.len())
                    .map(|i| {
                        let text = row.cells.get(i).map(String::as_str).unwrap_or("");
                        if let Some(v) = new(i) {
                            XlsCell::Number(v)
                        } else if is_price(i) {
                            match exports::parse_money(text) {
                                Some(v) => XlsCell::Number(v),
                                None if text.trim().is_empty() => XlsCell::Empty,
                                None => XlsCell::Text(text.to_string()),
                            }
                        } else if text.is_empty() {
                            XlsCell::Empty
                        } else {
                            XlsCell::Text(text.to_string())
                        }
                    })
                    .collect(),
            )
        })
        .collect())
}

// --- sending -----------------------------------------------------------------------------

fn api_fail(what: &str, e: impl std::fmt::Display) -> Fail {
    fail(EXIT_FAILED, format!("{what}: {e}"))
}

/// The publish server of this run, or the sentence that says why there is none.
fn server(cx: &JobContext<'_>) -> Result<PublishServer, Fail> {
    cx.opts.publish.clone().ok_or_else(|| {
        fail(
            EXIT_FAILED,
            "an import needs the [publish] file server, which is not running in this run; nothing was sent",
        )
    })
}

/// Test-only smaller file sizes, per API base URL (each test has its own simulator).
static SPLIT_OVERRIDE: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());

/// Lines per import file: `MAX_DATA_ROWS`, unless a test asked for less for this store.
pub fn split_for(base_url: &str) -> usize {
    let o = SPLIT_OVERRIDE.lock().unwrap_or_else(|p| p.into_inner());
    o.iter()
        .find(|(u, _)| u == base_url)
        .map_or(xls::MAX_DATA_ROWS, |(_, n)| {
            (*n).clamp(1, xls::MAX_DATA_ROWS)
        })
}

/// Tests: split the imports of the store at `base_url` every `lines` lines.
#[doc(hidden)]
pub fn set_split_for_tests(base_url: &str, lines: usize) {
    let mut o = SPLIT_OVERRIDE.lock().unwrap_or_else(|p| p.into_inner());
    o.retain(|(u, _)| u != base_url);
    o.push((base_url.to_string(), lines));
}

/// Sends `lines` as imports, `split` lines a file (`MAX_DATA_ROWS` outside tests).
pub async fn run_import(cx: JobContext<'_>, lines: Vec<ImportLine>, split: usize) -> ImportResult {
    let mut result = ImportResult::default();
    let ids: Vec<u64> = lines.iter().map(|l| l.sku_id).collect();
    if let Err(Fail { message: why, .. }) = import_files(cx, lines, split, &mut result).await {
        // Lines that never reached a file were not sent: the source is not done with.
        for id in ids {
            if let std::collections::hash_map::Entry::Vacant(v) = result.outcomes.entry(id) {
                v.insert(Outcome::Failed(Arc::from(format!("not sent: {why}"))));
                result.failed += 1;
            }
        }
        result.stopped = Some(why);
    }
    result
}

async fn import_files(
    cx: JobContext<'_>,
    lines: Vec<ImportLine>,
    split: usize,
    result: &mut ImportResult,
) -> Result<(), Fail> {
    let (job, client) = (cx.job, cx.client);
    let server = server(&cx)?;
    let store = client.store();
    let wait = exports::Wait {
        timeout: job.queue_timeout,
        poll_every: store.queue_poll,
    };
    let mut clock = StageClock::new();
    let export = exports::sku_export(client, wait, &ExportAliases::default())
        .await
        .map_err(|e| api_fail("the import needs the store's SKU export", e))?;
    clock.lap("sku export");
    // The header is a stored fact (for `check` and warnings); the rows must be this fresh.
    exports::keep_header(cx.state, &store.name, &export);
    let template = match &job.import_template {
        None => None,
        Some(p) => {
            let path = p.clone();
            let header = tokio::task::spawn_blocking(move || read_template_header(&path))
                .await
                .map_err(|e| api_fail("reading the import template stopped", e))?
                .map_err(|e| fail(EXIT_FAILED, format!("{e}; nothing was sent")))?;
            Some((p.clone(), header))
        }
    };
    let header = template_header(
        &export.header,
        template.as_ref().map(|(p, h)| (p.as_path(), h.as_slice())),
    )
    .map_err(|m| fail(EXIT_FAILED, m))?;
    let rows = build_rows(&export, &lines).map_err(|m| fail(EXIT_FAILED, m))?;
    clock.lap("rows");
    let mut kept = Vec::new();
    for (line, row) in lines.into_iter().zip(rows) {
        match row {
            Some(r) => kept.push((line, r)),
            None => {
                result.failed += 1;
                result.outcomes.insert(
                    line.sku_id,
                    Outcome::Failed(Arc::from(format!(
                        "not sent: SKU {} is not in the store's SKU export (queue {}); the next run plans it again",
                        line.sku_id, export.queue_id
                    ))),
                );
            }
        }
    }
    let batch_base = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut floor = export.queue_id;
    for (n, range) in xls::chunks(kept.len(), split).into_iter().enumerate() {
        let part = &kept[range];
        let batch = format!("{batch_base}-{}", n + 1);
        let (intent, recorded) =
            publish_and_record(cx, &server, &batch, &header, part, floor, result).await?;
        clock.lap("file + intents");
        let intent = post(cx, intent).await?;
        clock.lap("post");
        floor = floor.max(intent.queue_id.unwrap_or(floor));
        finish(cx, Some(&server), intent, recorded, result, &mut clock).await?;
    }
    tracing::debug!(job = %job.name, stages = %clock, "Import stage timings");
    Ok(())
}

/// Writes one file, publishes it, records its intents (durable before the POST).
async fn publish_and_record(
    cx: JobContext<'_>,
    server: &PublishServer,
    batch: &str,
    header: &[String],
    part: &[(ImportLine, Vec<XlsCell>)],
    after_queue: u64,
    result: &mut ImportResult,
) -> Result<(FileIntent, Vec<LineIntent>), Fail> {
    let name = format!("precos-{batch}.xls");
    let dir = tempfile::tempdir().map_err(|e| api_fail("cannot make a temporary dir", e))?;
    let path = dir.path().join(&name);
    let cells: Vec<Vec<XlsCell>> = part.iter().map(|(_, r)| r.clone()).collect();
    let (h, p, s) = (header.to_vec(), path.clone(), server.clone());
    let n = name.clone();
    let t0 = std::time::Instant::now();
    let published = tokio::task::spawn_blocking(move || {
        xls::write_xls(&p, "SKUs", &h, &cells).map_err(|e| e.to_string())?;
        s.publish(&p, &n).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| api_fail("writing the import file stopped", e))?
    .map_err(|e| fail(EXIT_FAILED, format!("{e}; nothing was sent")))?;
    drop(dir);
    let intent = FileIntent {
        batch: batch.to_string(),
        name,
        token: published.token.clone(),
        lines: part.len() as u64,
        posted_since: exports::store_now(),
        posted_at: Utc::now(),
        expires_at: published.expires_at,
        after_queue,
        queue_id: None,
        processed: 0,
    };
    let state = cx.state;
    let mut ops = vec![file_op(state, &intent)?];
    let lines: Vec<LineIntent> = part
        .iter()
        .enumerate()
        .map(|(i, (l, _))| LineIntent {
            line: i as u64 + 1,
            sku_id: l.sku_id,
            product_id: l.product_id,
            key: l.key.clone(),
            fields: l.fields,
        })
        .collect();
    for line in &lines {
        ops.push(
            Operation::new(OpKind::ImportLine, line_key(batch, line.line), line)
                .map_err(record_fail)?,
        );
    }
    let t1 = std::time::Instant::now();
    let recorded = async { state.ledger(&cx.job.name)?.intend(&ops).await }.await;
    tracing::debug!(
        file_ms = (t1 - t0).as_millis() as u64,
        intents_ms = t1.elapsed().as_millis() as u64,
        "Import file written and its intents recorded"
    );
    if let Err(e) = recorded {
        let _ = server.unpublish(&published.token);
        for (l, _) in part {
            result.failed += 1;
            result.outcomes.insert(
                l.sku_id,
                Outcome::Failed(Arc::from("not sent: the import could not be recorded")),
            );
        }
        return Err(state_fail(e));
    }
    Ok((intent, lines))
}

fn record_fail(e: serde_json::Error) -> Fail {
    fail(
        EXIT_FAILED,
        format!("cannot record the import ({e}); nothing was sent"),
    )
}

fn file_op(_state: &StateStore, intent: &FileIntent) -> Result<Operation, Fail> {
    Operation::new(OpKind::ImportLine, file_key(&intent.batch), intent).map_err(record_fail)
}

/// `POST catalog/skus/import`, once; the queue id recorded (found in `GET /queues` when the
/// answer names none or never came).
async fn post(cx: JobContext<'_>, mut intent: FileIntent) -> Result<FileIntent, Fail> {
    let url = public_url(cx, &intent)?;
    match cx.client.post_sku_import(&url).await {
        Ok(ticket) => {
            intent.queue_id = match ticket.queue_id {
                Some(id) => Some(id),
                None => find_queue(cx.client, &intent).await,
            }
        }
        Err(e) if e.status().is_some() => {
            // Refused outright: not applied. The lines go, the file is withdrawn.
            let why = cx.client.scrubber().scrub(&e.to_string());
            drop_import(cx, &intent, Settle::Failed(why.clone())).await?;
            return Err(fail(
                EXIT_FAILED,
                format!(
                    "the import of {} ({} lines) was refused: {why}; nothing of it was applied",
                    intent.name, intent.lines
                ),
            ));
        }
        Err(e) => {
            tracing::warn!(job = %cx.job.name, file = %intent.name, error = %cx.client.scrubber().scrub(&e.to_string()), "The import's answer was lost; looking for its queue");
            intent.queue_id = find_queue(cx.client, &intent).await;
        }
    }
    record_queue(cx, &intent).await?;
    Ok(intent)
}

/// The URL the file was published at (rebuilt from the token: the ledger is the record).
fn public_url(cx: JobContext<'_>, intent: &FileIntent) -> Result<String, Fail> {
    let server = server(&cx)?;
    Ok(format!(
        "{}/{}/{}",
        server.public_base_url(),
        intent.token,
        intent.name
    ))
}

async fn record_queue(cx: JobContext<'_>, intent: &FileIntent) -> Result<(), Fail> {
    let op = file_op(cx.state, intent)?;
    cx.state
        .ledger(&cx.job.name)
        .map_err(state_fail)?
        .intend(&[op])
        .await
        .map_err(state_fail)
}

/// The import's queue among the queues created since its POST: the first one newer than the
/// queue the run read before it.
async fn find_queue(client: &ShopClient, intent: &FileIntent) -> Option<u64> {
    match client.queues_since(&intent.posted_since).await {
        Ok(queues) => queues
            .iter()
            .map(|q: &QueueState| q.id)
            .filter(|id| *id > intent.after_queue)
            .min(),
        Err(e) => {
            tracing::warn!(file = %intent.name, error = %e, "Cannot list the queues to find the import's");
            None
        }
    }
}

/// Removes an import from the ledger with one outcome for its lines, and unpublishes its file.
async fn drop_import(cx: JobContext<'_>, intent: &FileIntent, outcome: Settle) -> Result<(), Fail> {
    let ledger = cx.state.ledger(&cx.job.name).map_err(state_fail)?;
    let keys: Vec<String> = (1..=intent.lines)
        .map(|n| line_key(&intent.batch, n))
        .chain([file_key(&intent.batch)])
        .collect();
    ledger
        .settle_all(&keys, outcome)
        .await
        .map_err(state_fail)?;
    if let Some(s) = &cx.opts.publish {
        let _ = s.unpublish(&intent.token);
    }
    Ok(())
}

/// Watches the queue, reads its logs, settles every line (`lines`: the file's lines still in the
/// ledger), unpublishes the file.
async fn finish(
    cx: JobContext<'_>,
    server: Option<&PublishServer>,
    intent: FileIntent,
    lines: Vec<LineIntent>,
    result: &mut ImportResult,
    clock: &mut StageClock,
) -> Result<(), Fail> {
    result.files += 1;
    let (job, client, state) = (cx.job, cx.client, cx.state);
    let ledger = state.ledger(&job.name).map_err(state_fail)?;
    let unknown = |why: String| {
        fail(
            EXIT_FAILED,
            format!(
                "the import of {} ({} lines, posted {}) {why}; its lines stay unknown (never counted as applied), its file stays published until {}, and the next run resumes watching it instead of posting it again",
                intent.name,
                intent.lines,
                intent.posted_at.to_rfc3339(),
                intent.expires_at.to_rfc3339()
            ),
        )
    };
    let Some(queue_id) = intent.queue_id else {
        let keys: Vec<String> = lines
            .iter()
            .map(|l| line_key(&intent.batch, l.line))
            .collect();
        let why = "was sent but its queue was not found among the store's queues".to_string();
        let _ = ledger.settle_all(&keys, Settle::Unknown(why.clone())).await;
        for l in &lines {
            result.outcome(l, Outcome::Unknown(Arc::from(why.as_str())));
        }
        return Err(unknown(why));
    };
    let poll = client.store().queue_poll;
    let remaining = job.queue_timeout;
    match queue_watch::watch(client, queue_id, remaining, poll, None).await {
        Ok(_) => clock.lap("queue watch"),
        Err(e) => {
            let why = match &e {
                WatchError::Timeout { processed, .. } => {
                    let mut seen = intent.clone();
                    seen.processed = *processed;
                    let _ = record_queue(cx, &seen).await;
                    format!("did not finish in time: {e}")
                }
                _ => format!("could not be followed: {e}"),
            };
            let why = client.scrubber().scrub(&why);
            let keys: Vec<String> = lines
                .iter()
                .map(|l| line_key(&intent.batch, l.line))
                .collect();
            let _ = ledger.settle_all(&keys, Settle::Unknown(why.clone())).await;
            for l in &lines {
                result.outcome(
                    l,
                    Outcome::Unknown(Arc::from(format!("import queue {queue_id} {why}"))),
                );
            }
            return Err(unknown(why));
        }
    }
    let logs = client
        .queue_logs(queue_id)
        .await
        .map_err(|e| unknown(format!("finished but its logs could not be read: {e}")))?;
    clock.lap("logs");
    settle_lines(cx, &intent, queue_id, &lines, &logs, result).await?;
    clock.lap("settle");
    if let Some(s) = server {
        let _ = s.unpublish(&intent.token);
    }
    ledger
        .settle(&file_key(&intent.batch), Settle::Failed("finished".into()))
        .await
        .map_err(state_fail)?;
    Ok(())
}

/// Every line's outcome from the logs: success → checkpointed; error → reported with Yampi's
/// message; no entry → unknown, its prices forgotten so the next run plans it again.
async fn settle_lines(
    cx: JobContext<'_>,
    intent: &FileIntent,
    queue_id: u64,
    lines: &[LineIntent],
    logs: &[QueueLine],
    result: &mut ImportResult,
) -> Result<(), Fail> {
    let (job, state) = (cx.job, cx.state);
    let store = &cx.client.store().name;
    // line → (all ok, messages); line 0 speaks for the whole file.
    let mut by_line: BTreeMap<u64, (bool, Vec<String>)> = BTreeMap::new();
    for entry in logs {
        let e = by_line.entry(entry.line).or_insert((true, Vec::new()));
        e.0 &= entry.ok;
        if !entry.message.is_empty() {
            e.1.push(entry.message.clone());
        }
    }
    let whole_file = by_line.get(&0).filter(|(ok, _)| !ok).cloned();
    let (mut applied, mut failed, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for l in lines {
        let verdict = whole_file.clone().or_else(|| by_line.get(&l.line).cloned());
        match verdict {
            Some((true, _)) => applied.push(l),
            Some((false, msgs)) => failed.push((l, msgs.join("; "))),
            None => unknown.push(l),
        }
    }
    let ledger = state.ledger(&job.name).map_err(state_fail)?;
    let entries = |ls: &[&LineIntent]| -> Vec<(u64, PriceFields)> {
        ls.iter().map(|l| (l.sku_id, l.fields)).collect()
    };
    let key_of = |l: &LineIntent| line_key(&intent.batch, l.line);
    let applied_keys: Vec<String> = applied.iter().map(|l| key_of(l)).collect();
    let failed_keys: Vec<String> = failed.iter().map(|(l, _)| key_of(l)).collect();
    let unknown_keys: Vec<String> = unknown.iter().map(|l| key_of(l)).collect();
    // Every line's outcome in one transaction and one fsync.
    let mut groups: Vec<(Vec<&str>, Settle)> = Vec::new();
    if !applied.is_empty() {
        let cp = state
            .price_checkpoint(&job.name, store, &entries(&applied))
            .map_err(state_fail)?;
        groups.push((
            applied_keys.iter().map(String::as_str).collect(),
            Settle::Applied(cp),
        ));
    }
    if !failed.is_empty() {
        groups.push((
            failed_keys.iter().map(String::as_str).collect(),
            Settle::Failed("refused by Yampi".into()),
        ));
    }
    if !unknown.is_empty() {
        let forget = state
            .price_forget(&job.name, &entries(&unknown))
            .map_err(state_fail)?;
        groups.push((
            unknown_keys.iter().map(String::as_str).collect(),
            Settle::Replanned(forget),
        ));
    }
    let t0 = std::time::Instant::now();
    ledger.settle_groups(groups).await.map_err(state_fail)?;
    tracing::debug!(
        lines = lines.len(),
        ledger_ms = t0.elapsed().as_millis() as u64,
        "Import lines settled"
    );
    for l in &applied {
        result.outcome(l, Outcome::Applied);
    }
    for (l, msg) in &failed {
        let msg = if msg.is_empty() {
            "refused without a message"
        } else {
            msg
        };
        let text = format!(
            "refused by Yampi: import line {} (queue {queue_id}): {msg}",
            l.line
        );
        result.outcome(l, Outcome::Failed(Arc::from(text)));
    }
    if !unknown.is_empty() {
        for l in &unknown {
            result.outcome(
                l,
                Outcome::Unknown(Arc::from(format!(
                    "import line {} (queue {queue_id}) has no log entry; not counted as applied, the next run plans it again",
                    l.line
                ))),
            );
        }
    }
    Ok(())
}

/// Where an import's time went, stage by stage (logged at debug level: the benchmark's breakdown).
struct StageClock {
    last: std::time::Instant,
    stages: Vec<(&'static str, Duration)>,
}

impl StageClock {
    fn new() -> Self {
        StageClock {
            last: std::time::Instant::now(),
            stages: Vec::new(),
        }
    }

    /// Ends the stage `name` now (stages of the same name add up).
    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        let took = now - self.last;
        self.last = now;
        match self.stages.iter_mut().find(|(n, _)| *n == name) {
            Some((_, d)) => *d += took,
            None => self.stages.push((name, took)),
        }
    }
}

impl std::fmt::Display for StageClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, d)) in self.stages.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name} {} ms", d.as_millis())?;
        }
        Ok(())
    }
}

fn undecodable(op: &Operation, e: impl std::fmt::Display) -> Fail {
    fail(
        EXIT_FAILED,
        format!(
            "the recorded import write {} cannot be read ({e}); nothing was sent, because its outcome is unknown — check the store, then restore the state dir from a backup",
            op.key
        ),
    )
}

/// The lines of one batch, by line number.
fn lines_of(state: &StateStore, job: &str, batch: &str) -> Result<Vec<LineIntent>, Fail> {
    let ops = state
        .ledger(job)
        .and_then(|l| l.pending_with_prefix(&format!("{KEY_PREFIX}{batch}:line:")))
        .map_err(state_fail)?;
    ops.iter()
        .map(|op| op.intent_as::<LineIntent>().map_err(|e| undecodable(op, e)))
        .collect()
}

/// The imports of `job` still pending in the ledger, oldest first.
pub fn pending_files(state: &StateStore, job: &str) -> Result<Vec<FileIntent>, Fail> {
    let ops = state
        .ledger(job)
        .and_then(|l| l.pending_with_prefix(KEY_PREFIX))
        .map_err(state_fail)?;
    let mut out = Vec::new();
    for op in ops.iter().filter(|op| op.key.ends_with(":file")) {
        out.push(
            op.intent_as::<FileIntent>()
                .map_err(|e| undecodable(op, e))?,
        );
    }
    out.sort_by(|a, b| a.batch.cmp(&b.batch));
    Ok(out)
}

/// A pending import as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PendingQueue {
    pub job: String,
    pub kind: &'static str,
    pub queue_id: Option<u64>,
    pub file: String,
    pub since: DateTime<Utc>,
    pub lines_sent: u64,
    /// Lines the queue had processed when last seen, or whose outcome is known.
    pub lines_processed: u64,
}

/// Every job's pending imports (for `status`).
pub fn pending_queues(state: &StateStore, jobs: &[&str]) -> Vec<PendingQueue> {
    let mut out = Vec::new();
    for job in jobs {
        let Ok(files) = pending_files(state, job) else {
            continue;
        };
        for f in files {
            let left = lines_of(state, job, &f.batch).map_or(f.lines, |l| l.len() as u64);
            let settled = f.lines.saturating_sub(left);
            out.push(PendingQueue {
                job: job.to_string(),
                kind: "price import",
                queue_id: f.queue_id,
                file: f.name,
                since: f.posted_at,
                lines_sent: f.lines,
                lines_processed: settled.max(f.processed).min(f.lines),
            });
        }
    }
    out
}

/// Resumes the imports an earlier run of this job left pending (watching, never posting again);
/// their lines' outcomes come back as report rows. Runs before planning, so the plan sees the
/// checkpoints of the lines that landed.
pub async fn resume_pending(cx: JobContext<'_>) -> ImportResult {
    let mut result = ImportResult::default();
    if let Err(Fail { message: why, .. }) = resume_inner(cx, &mut result).await {
        result.stopped = Some(why);
    }
    result
}

async fn resume_inner(cx: JobContext<'_>, result: &mut ImportResult) -> Result<(), Fail> {
    let files = pending_files(cx.state, &cx.job.name)?;
    for mut intent in files {
        let lines = lines_of(cx.state, &cx.job.name, &intent.batch)?;
        tracing::info!(job = %cx.job.name, file = %intent.name, queue_id = ?intent.queue_id, lines = lines.len(), "Resuming a pending import (it is not posted again)");
        for l in &lines {
            result.rows.extend(rows_of(l));
        }
        if intent.queue_id.is_none() {
            intent.queue_id = find_queue(cx.client, &intent).await;
            if intent.queue_id.is_some() {
                record_queue(cx, &intent).await?;
            } else if intent.expires_at <= Utc::now() {
                // Its file is no longer served: Yampi cannot apply anything more from it.
                let entries: Vec<(u64, PriceFields)> =
                    lines.iter().map(|l| (l.sku_id, l.fields)).collect();
                let forget = cx
                    .state
                    .price_forget(&cx.job.name, &entries)
                    .map_err(state_fail)?;
                drop_import(cx, &intent, Settle::Replanned(forget)).await?;
                for l in &lines {
                    result.outcome(l, Outcome::Unknown(Arc::from(format!(
                        "the import {} was never found among the store's queues and its file is no longer served; planned again",
                        intent.name
                    ))));
                }
                continue;
            }
        }
        // Without the server (route = "api" now) the queue is still watched to its end.
        let mut clock = StageClock::new();
        finish(
            cx,
            cx.opts.publish.as_ref(),
            intent,
            lines,
            result,
            &mut clock,
        )
        .await?;
        tracing::debug!(job = %cx.job.name, stages = %clock, "Resumed import stage timings");
    }
    Ok(())
}

/// The report rows of a resumed line.
fn rows_of(l: &LineIntent) -> Vec<ChangeRow> {
    [
        (Field::PriceSale, l.fields.sale),
        (Field::PriceDiscount, l.fields.discount),
        (Field::PriceCost, l.fields.cost),
    ]
    .into_iter()
    .filter_map(|(field, v)| {
        Some(ChangeRow {
            key: Arc::from(l.key.as_str()),
            sku_id: l.sku_id,
            product_id: l.product_id,
            field,
            old: None,
            old_from: Default::default(),
            new: Value::Money(v?),
            cell: None,
            outcome: Outcome::Planned,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_overhead_plus_polled_queue_time() {
        let poll = Duration::from_secs(10);
        // 30,000 lines at 20/s = 1,500 s, a whole number of polls; one file.
        assert_eq!(
            import_eta_secs(30_000, 1, poll, Duration::from_secs(300)),
            1_800.0
        );
        // 5 lines = 0.25 s, rounded up to one poll.
        assert_eq!(import_eta_secs(5, 1, poll, Duration::ZERO), 10.0);
        assert_eq!(files_for(65_535), 1);
        assert_eq!(files_for(70_000), 2);
    }

    #[test]
    fn a_template_that_differs_names_the_first_differing_column() {
        let export: Vec<String> = ["id", "sku", "preço_venda"].map(String::from).to_vec();
        let same: Vec<String> = ["ID", "Sku", "preco_venda"].map(String::from).to_vec();
        let path = std::path::Path::new("/tmp/modelo.xls");
        assert_eq!(template_header(&export, Some((path, &same))).unwrap(), same);
        let swapped: Vec<String> = ["id", "preço_venda", "sku"].map(String::from).to_vec();
        let e = template_header(&export, Some((path, &swapped))).unwrap_err();
        assert!(
            e.contains("/tmp/modelo.xls") && e.contains("column 2"),
            "{e}"
        );
        let short: Vec<String> = ["id", "sku"].map(String::from).to_vec();
        let e = template_header(&export, Some((path, &short))).unwrap_err();
        assert!(e.contains("column 3") && e.contains("no column"), "{e}");
    }
}
