//! The daemon's HTTP listener (`[metrics] listen`): `/metrics` (Prometheus text) and `/healthz`
//! for monitoring, without the token (Prometheus convention: scrapers and probes carry none),
//! and a read-only status page in Portuguese at `/` with the run reports to download under
//! `/relatorios/<job>/<file>`, both guarded by `[metrics] token`.
//!
//! - The token comes as `Authorization: Bearer …`, or once as `?token=…`: the page then sets it
//!   as an HttpOnly cookie and redirects to the same address without it, so the page's links
//!   never carry it. Nothing here logs a request, so the token never reaches the logs.
//! - A report is served only when a run record of that job names a file of that name: the path
//!   read is the recorded one, never one built from the request.
//! - Everything is read from the state store at each request through `status::rows` (what
//!   `yampi-sync status` shows), so the page and the command cannot disagree.
//! - Bounded: at most `MAX_CONNECTIONS` at once, each closed after `CONNECTION_LIFETIME`, request
//!   headers within `HEADER_TIMEOUT`; no request body is read.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::config::{SecretString, Settings};
use crate::metrics::{self, LastSuccess, Scrape};
use crate::pipeline::Clients;
use crate::state::{RunRecord, StateStore};

pub const MAX_CONNECTIONS: usize = 32;
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Runs listed per job on the page.
pub const RUNS_SHOWN: usize = 10;
/// The cookie the page keeps the token in.
const COOKIE: &str = "yampi_sync_token";

/// Where the daemon stands, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Waiting for the stores to answer.
    Starting = 0,
    /// The job schedulers run.
    Running = 1,
    /// A job scheduler died; the daemon is stopping with exit 3.
    Failed = 2,
    /// SIGTERM/SIGINT: finishing the runs in flight.
    Stopping = 3,
}

/// The daemon's phase and the heartbeat of the loop that watches the job schedulers.
#[derive(Debug, Default)]
pub struct Health {
    phase: AtomicU8,
    /// Unix milliseconds of the watching loop's last beat.
    beat: AtomicI64,
}

/// Longer than this without a beat of the watching loop means the schedulers are not watched.
pub const BEAT_STALE: Duration = Duration::from_secs(30);
/// How often the watching loop beats.
pub const BEAT_EVERY: Duration = Duration::from_secs(5);

impl Health {
    pub fn set(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
        self.beat();
    }

    pub fn beat(&self) {
        self.beat
            .store(Utc::now().timestamp_millis(), Ordering::SeqCst);
    }

    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            1 => Phase::Running,
            2 => Phase::Failed,
            3 => Phase::Stopping,
            _ => Phase::Starting,
        }
    }

    /// `None` when the schedulers are alive, else why not (one sentence).
    pub fn problem(&self) -> Option<String> {
        match self.phase() {
            Phase::Starting => Some("starting: waiting for the stores to answer".into()),
            Phase::Failed => Some("a job scheduler stopped; the daemon is exiting".into()),
            Phase::Stopping => Some("stopping".into()),
            Phase::Running => {
                let age = Utc::now().timestamp_millis() - self.beat.load(Ordering::SeqCst);
                (age > BEAT_STALE.as_millis() as i64).then(|| {
                    format!(
                        "the loop that watches the job schedulers has not run for {} s",
                        age / 1000
                    )
                })
            }
        }
    }
}

/// The running config generation: replaced on every accepted reload.
pub type Current = (Arc<Settings>, Arc<Clients>);

pub struct WebState {
    pub current: watch::Receiver<Current>,
    pub state: Arc<StateStore>,
    pub health: Arc<Health>,
    pub started_at: DateTime<Utc>,
    pub last_success: LastSuccess,
}

/// Binds `[metrics] listen`; the error is one sentence naming the key.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| {
        format!(
            "cannot listen on {addr} (`[metrics] listen`): {e}; choose another port, or stop what holds it"
        )
    })
}

/// Serves until `stop` is cancelled.
pub async fn serve(listener: TcpListener, web: Arc<WebState>, stop: CancellationToken) {
    let router = router(web);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Transient (out of file descriptors): back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // Over the cap the connection is closed at once: monitoring retries, nothing queues.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let router = router.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move { router.oneshot(req.map(Body::new)).await }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::timeout(CONNECTION_LIFETIME, conn) => {}
            }
        });
    }
}

pub fn router(web: Arc<WebState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/", get(status_page))
        .route("/relatorios/{job}/{file}", get(report_file))
        .fallback(|| async { (StatusCode::NOT_FOUND, "não encontrado\n") })
        .with_state(web)
}

async fn healthz(State(web): State<Arc<WebState>>) -> Response {
    match web.health.problem() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn metrics_page(State(web): State<Arc<WebState>>) -> Response {
    let text = tokio::task::spawn_blocking(move || {
        let (settings, clients) = web.current.borrow().clone();
        let rows = crate::status::rows(&settings, &web.state);
        metrics::render(&Scrape {
            settings: &settings,
            state: &web.state,
            clients: &clients,
            rows: &rows,
            last_success: &web.last_success,
            started_at: web.started_at,
            now: Utc::now(),
            schedulers_alive: web.health.problem().is_none(),
        })
    })
    .await;
    match text {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics failed\n").into_response(),
    }
}

/// How a request for the page or a report stands with the token.
enum Access {
    Granted,
    /// The right token, in the query: keep it in a cookie and drop it from the address.
    GrantedByQuery,
    Denied,
    /// No `[metrics] token`: the page is off.
    Off,
}

/// Compares in time independent of where the texts differ.
fn same_secret(given: &str, token: &SecretString) -> bool {
    let (a, b) = (given.as_bytes(), token.expose().as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn access(settings: &Settings, headers: &HeaderMap, query: &HashMap<String, String>) -> Access {
    let Some(token) = settings.metrics.as_ref().and_then(|m| m.token.as_ref()) else {
        return Access::Off;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|v| same_secret(v, token));
    if cookie || bearer.is_some_and(|b| same_secret(b, token)) {
        Access::Granted
    } else if query.get("token").is_some_and(|q| same_secret(q, token)) {
        Access::GrantedByQuery
    } else {
        Access::Denied
    }
}

fn refused(access: &Access) -> Response {
    match access {
        Access::Off => (
            StatusCode::NOT_FOUND,
            "a página de situação está desativada: defina `token` em [metrics] no arquivo de configuração\n",
        )
            .into_response(),
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"yampi-sync\"")],
            "acesso negado: informe o token de [metrics] (cabeçalho `Authorization: Bearer …` ou `?token=…`)\n",
        )
            .into_response(),
    }
}

/// The cookie that keeps the token for the page's links (never readable by scripts).
fn token_cookie(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    ))
    .ok()
}

fn settings_of(web: &WebState) -> Arc<Settings> {
    web.current.borrow().0.clone()
}

async fn status_page(
    State(web): State<Arc<WebState>>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let settings = settings_of(&web);
    match access(&settings, &headers, &query) {
        Access::Granted => {}
        Access::GrantedByQuery => {
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            if let Some(c) = query.get("token").and_then(|t| token_cookie(t)) {
                r.headers_mut().insert(header::SET_COOKIE, c);
            }
            return r;
        }
        denied => return refused(&denied),
    }
    let page = tokio::task::spawn_blocking(move || {
        let rows = crate::status::rows(&settings, &web.state);
        let runs: Vec<Vec<RunRecord>> = settings
            .jobs
            .iter()
            .map(|j| {
                let all = web.state.runs(&j.name).unwrap_or_default();
                all.into_iter().rev().take(RUNS_SHOWN).collect()
            })
            .collect();
        let pending: Vec<u64> = settings
            .jobs
            .iter()
            .map(|j| metrics::pending_queue_items(&web.state, j))
            .collect();
        render_page(&PageData {
            settings: &settings,
            rows: &rows,
            runs: &runs,
            pending: &pending,
            problem: web.health.problem(),
            now: Utc::now(),
        })
    })
    .await;
    match page {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "falha ao montar a página\n",
        )
            .into_response(),
    }
}

async fn report_file(
    State(web): State<Arc<WebState>>,
    UrlPath((job, file)): UrlPath<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    let settings = settings_of(&web);
    match access(&settings, &headers, &query) {
        Access::Granted | Access::GrantedByQuery => {}
        denied => return refused(&denied),
    }
    let not_found = |why: &str| (StatusCode::NOT_FOUND, format!("{why}\n")).into_response();
    if !settings.jobs.iter().any(|j| j.name == job) {
        return not_found("não há job com esse nome");
    }
    let state = web.state.clone();
    let wanted = file.clone();
    let recorded = tokio::task::spawn_blocking(move || recorded_report(&state, &job, &wanted))
        .await
        .ok()
        .flatten();
    let Some(path) = recorded else {
        return not_found("nenhuma execução desse job registrou um relatório com esse nome");
    };
    let Ok(f) = tokio::fs::File::open(&path).await else {
        return not_found("o relatório já foi apagado (são guardados por `retention_days` dias)");
    };
    let len = f.metadata().await.map(|m| m.len()).ok();
    // Streamed in chunks: a large report never sits whole in memory.
    let stream = futures::stream::unfold(Some(f), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        file.replace(['"', '\\'], "_")
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(n) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    r
}

/// The report path a run record of `job` names whose file name is `file`.
fn recorded_report(state: &StateStore, job: &str, file: &str) -> Option<PathBuf> {
    state
        .runs(job)
        .ok()?
        .into_iter()
        .rev()
        .filter_map(|r| r.report.map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|n| n == file))
}

// --- the page ------------------------------------------------------------------------------

/// What the page shows, read at one request.
pub struct PageData<'a> {
    pub settings: &'a Settings,
    /// `status::rows`.
    pub rows: &'a [Value],
    /// Per job, its newest runs first.
    pub runs: &'a [Vec<RunRecord>],
    /// Per job, its import queue's length.
    pub pending: &'a [u64],
    /// Why the schedulers are not alive, if so.
    pub problem: Option<String>,
    pub now: DateTime<Utc>,
}

/// Text for HTML, attribute values included.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One path segment, percent-encoded.
fn url_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn kind_pt(kind: &str) -> &str {
    match kind {
        "stock" => "estoque",
        "price" => "preços",
        "batch_edit" => "edição em lote",
        other => other,
    }
}

pub fn exit_pt(code: i64) -> &'static str {
    match code {
        0 => "tudo certo",
        2 => "entrada inválida, nada foi enviado",
        3 => "o job falhou",
        4 => "alguns itens foram recusados (veja o relatório)",
        _ => "código desconhecido",
    }
}

fn local(settings: &Settings, t: DateTime<Utc>) -> String {
    t.with_timezone(&settings.timezone)
        .format("%d/%m/%Y %H:%M:%S")
        .to_string()
}

fn local_text(settings: &Settings, rfc3339: Option<&str>) -> String {
    rfc3339
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| local(settings, t.with_timezone(&Utc)))
        .unwrap_or_else(|| "—".into())
}

fn duration_pt(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0).replace('.', ",")
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
h2{margin-top:2rem;border-bottom:1px solid #ccc}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
.alerta{background:#fff3cd;border:1px solid #e0c060;padding:.5rem}\
.erro{background:#f8d7da;border:1px solid #d08080;padding:.5rem}";

pub fn render_page(d: &PageData) -> String {
    let s = d.settings;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"pt-BR\"><head><meta charset=\"utf-8\">\
         <title>yampi-sync — situação</title><style>{STYLE}</style></head><body>\n\
         <h1>yampi-sync — situação dos jobs</h1>\n<p>Atualizado em {} (horário de {}). \
         Esta página só lê: para resolver algo, use os comandos indicados no servidor.</p>\n",
        local(s, d.now),
        esc(s.timezone.name())
    );
    match &d.problem {
        None => h.push_str("<p id=\"agendadores\">Agendadores: ativos.</p>\n"),
        Some(why) => {
            let _ = writeln!(
                h,
                "<p id=\"agendadores\" class=\"erro\">Agendadores parados: {}.</p>",
                esc(why)
            );
        }
    }
    for (i, (job, row)) in s.jobs.iter().zip(d.rows).enumerate() {
        let name = esc(&job.name);
        let _ = writeln!(
            h,
            "<section class=\"job\" data-job=\"{name}\">\n<h2>Job {name}</h2>\n<p>Tipo: {}; loja {}; agenda <code>{}</code>; próxima execução: {}.</p>",
            kind_pt(job.kind.as_str()),
            esc(&job.store),
            esc(job.schedule_text.as_deref().unwrap_or("nenhuma")),
            local_text(s, row["next_run"].as_str()),
        );
        match row.get("last_run").filter(|v| !v.is_null()) {
            Some(l) => {
                let code = l["exit_code"].as_i64().unwrap_or(-1);
                let _ = writeln!(
                    h,
                    "<p class=\"ultima\" data-exit=\"{code}\">Última execução: {} — código de saída {code} ({}).</p>",
                    local_text(s, l["started_at"].as_str()),
                    exit_pt(code)
                );
            }
            None => h.push_str("<p class=\"ultima\">Ainda não executado.</p>\n"),
        }
        let pending = d.pending.get(i).copied().unwrap_or(0);
        let interrupted = row["writes_in_doubt"].as_u64().unwrap_or(0);
        let _ = writeln!(
            h,
            "<p class=\"fila\" data-pendentes=\"{pending}\">Fila de importação: {pending} item(ns) pendente(s).</p>"
        );
        if interrupted > 0 {
            let _ = writeln!(
                h,
                "<p class=\"alerta\">{interrupted} gravação(ões) interrompida(s): a próxima execução confere com a loja antes de reenviar.</p>"
            );
        }
        let doubts = row["edits_in_doubt"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !doubts.is_empty() {
            h.push_str("<div class=\"em-duvida alerta\"><h3>Edições em lote em dúvida</h3><ul>\n");
            for e in &doubts {
                let occ = e["occurrence"].as_str().unwrap_or("?");
                let _ = writeln!(
                    h,
                    "<li data-ocorrencia=\"{o}\">Ocorrência {o} (enviada em {}): não se sabe se a loja aplicou. \
                     Confira a loja e depois rode <code>yampi-sync resolve {name} {o} --applied</code> \
                     (foi aplicada) ou <code>--not-applied</code> (não foi). {}</li>",
                    local_text(s, e["sent_at"].as_str()),
                    esc(e["message"].as_str().unwrap_or("")),
                    o = esc(occ),
                );
            }
            h.push_str("</ul></div>\n");
        }
        let missed = row["edits_missed"].as_array().cloned().unwrap_or_default();
        if !missed.is_empty() {
            h.push_str(
                "<div class=\"perdidas\"><h3>Edições em lote perdidas (nunca enviadas)</h3><ul>\n",
            );
            for m in &missed {
                let _ = writeln!(
                    h,
                    "<li>Ocorrência {} (registrada em {}).</li>",
                    esc(m["occurrence"].as_str().unwrap_or("?")),
                    local_text(s, m["recorded_at"].as_str())
                );
            }
            h.push_str("</ul></div>\n");
        }
        if let Some(e) = row["edits_error"].as_str() {
            let _ = writeln!(
                h,
                "<p class=\"erro\">Registros de edição em lote ilegíveis: {}</p>",
                esc(e)
            );
        }
        let runs = d.runs.get(i).map(Vec::as_slice).unwrap_or_default();
        if !runs.is_empty() {
            h.push_str(
                "<table class=\"execucoes\"><caption>Últimas execuções</caption><tr><th>Início</th><th>Duração</th>\
                 <th>Saída</th><th>Alterados</th><th>Recusados</th><th>Sem correspondência</th><th>Mensagem</th><th>Relatório</th></tr>\n",
            );
            for r in runs {
                let report = r
                    .report
                    .as_deref()
                    .and_then(|p| Path::new(p).file_name())
                    .map(|f| f.to_string_lossy().into_owned())
                    .map(|f| {
                        format!(
                            "<a class=\"relatorio\" href=\"/relatorios/{}/{}\" download>baixar {}</a>",
                            url_segment(&job.name),
                            url_segment(&f),
                            esc(&f)
                        )
                    })
                    .unwrap_or_else(|| "—".into());
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{report}</td></tr>",
                    local(s, r.started_at),
                    duration_pt(r.duration_ms),
                    exit_pt(i64::from(r.exit_code)),
                    r.exit_code,
                    r.changed,
                    r.rejected,
                    r.unmatched,
                    esc(&r.message),
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_url_segments() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url_segment("a b/../ç.xlsx"), "a%20b%2F..%2F%C3%A7.xlsx");
    }

    #[test]
    fn tokens_compare_whole() {
        let t = SecretString::new("0123456789abcdef");
        assert!(same_secret("0123456789abcdef", &t));
        assert!(!same_secret("0123456789abcdeF", &t));
        assert!(!same_secret("0123456789abcde", &t));
        assert!(!same_secret("", &t));
    }

    #[test]
    fn health_is_alive_only_while_running_and_beating() {
        let h = Health::default();
        assert!(h.problem().unwrap().contains("starting"));
        h.set(Phase::Running);
        assert_eq!(h.problem(), None);
        h.beat.store(0, Ordering::SeqCst);
        assert!(h.problem().unwrap().contains("has not run"));
        h.set(Phase::Failed);
        assert!(h.problem().is_some());
    }
}
