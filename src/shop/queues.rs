//! Yampi's queues, client side: starting exports, posting an import, reading a queue, its logs and
//! the notifications that link an export's file, and downloading that file.
//!
//! Everything is read tolerantly (numbers or numeric strings, a `data` envelope or none, a log's
//! `message` as a string or an array, `line` as a string or a number), because the queue API is
//! documented only by the old docs and its answers are assumed. An import is not idempotent: its
//! POST is never sent twice (see `post_sku_import`).

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::model::{as_text, as_u64};
use super::{ApiError, ShopClient, retry, size_text};

/// Largest export file downloaded: separate from (and larger than) the cap on API bodies.
pub const MAX_DOWNLOAD_BYTES: usize = 256 * 1024 * 1024;
/// A download (body included) that takes longer fails.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// Most log entries read for one queue (an import file holds at most 65,535 data rows, plus
/// entries about the file itself).
pub const MAX_LOG_ENTRIES: usize = 200_000;

/// What an export or import call answers: the queue it started, when it says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTicket {
    pub queue_id: Option<u64>,
    pub total: Option<u64>,
}

/// A queue as `GET /queues/{id}` (or an item of `GET /queues`) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    pub id: u64,
    pub total_sent: u64,
    pub total_processed: u64,
    pub finished_at: Option<String>,
    pub redirect_url: Option<String>,
    pub title: Option<String>,
    /// When the queue was created, as the store wrote it (store-local), if it says.
    pub created_at: Option<String>,
}

impl QueueState {
    /// Queues have no status field: finished when `finished_at` is set, or when everything sent
    /// was processed (and something was sent).
    pub fn finished(&self) -> bool {
        self.finished_at.is_some()
            || (self.total_sent > 0 && self.total_processed >= self.total_sent)
    }

    pub fn from_api(v: &Value) -> Option<QueueState> {
        let v = envelope(v);
        let text = |k: &str| {
            v.get(k)
                .and_then(as_text)
                .filter(|s| !s.is_empty() && s != "null")
        };
        Some(QueueState {
            id: v.get("id").and_then(as_u64)?,
            total_sent: v.get("total_sent").and_then(as_u64).unwrap_or(0),
            total_processed: v.get("total_processed").and_then(as_u64).unwrap_or(0),
            finished_at: date_text(v.get("finished_at")),
            redirect_url: text("redirect_url"),
            title: text("title"),
            created_at: date_text(v.get("created_at")),
        })
    }
}

/// One entry of `GET /queues/{id}/logs`. `line` numbers the data rows from 1 (0: the entry is
/// about the whole file, or it named no line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLine {
    pub line: u64,
    pub ok: bool,
    pub message: String,
}

impl QueueLine {
    /// Failed when `error` is true or `success` is false (the docs' example sets both to true,
    /// so neither flag alone is trusted); ok only when `success` says so and `error` does not.
    pub fn from_api(v: &Value) -> QueueLine {
        let flag = |k: &str| match v.get(k) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::Number(n)) => Some(n.as_u64() != Some(0)),
            Some(Value::String(s)) => match s.trim() {
                "1" | "true" => Some(true),
                "0" | "false" | "" => Some(false),
                _ => None,
            },
            _ => None,
        };
        let ok = flag("success") == Some(true) && flag("error") != Some(true);
        let message = match v.get("message") {
            Some(Value::Array(a)) => a.iter().filter_map(as_text).collect::<Vec<_>>().join("; "),
            Some(Value::Null) | None => String::new(),
            Some(other) => as_text(other).unwrap_or_else(|| other.to_string()),
        };
        QueueLine {
            line: v.get("line").and_then(as_u64).unwrap_or(0),
            ok,
            message,
        }
    }
}

/// `{"data": {...}}` or the object itself.
fn envelope(v: &Value) -> &Value {
    match v.get("data") {
        Some(d @ Value::Object(_)) => d,
        _ => v,
    }
}

/// A date as a string or a Yampi date object (`{"date": ...}`); null or `""` is none.
fn date_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Object(o) => o
            .get("date")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        _ => None,
    }
}

impl QueueTicket {
    pub fn from_api(v: &Value) -> QueueTicket {
        let v = envelope(v);
        QueueTicket {
            queue_id: v.get("queue_id").or_else(|| v.get("id")).and_then(as_u64),
            total: v.get("total").and_then(as_u64),
        }
    }
}

/// Whether `url` is on the same scheme, host and port as the API (so it may get credentials).
pub fn same_origin(api_base: &str, url: &str) -> bool {
    match (reqwest::Url::parse(api_base), reqwest::Url::parse(url)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

impl ShopClient {
    /// `GET /catalog/skus/export`: starts the SKU export.
    pub async fn start_sku_export(&self) -> Result<QueueTicket, ApiError> {
        let body = self.get("catalog/skus/export", &[]).await?;
        Ok(QueueTicket::from_api(&body))
    }

    /// `GET /catalog/stocks/export-skus?stock_id=N`: starts one stock's export.
    pub async fn start_stock_export(&self, stock_id: u64) -> Result<QueueTicket, ApiError> {
        let body = self
            .get(
                "catalog/stocks/export-skus",
                &[("stock_id", stock_id.to_string())],
            )
            .await?;
        Ok(QueueTicket::from_api(&body))
    }

    /// `POST /catalog/skus/import {"file_url": URL}`. Not idempotent (a second POST is a second
    /// import), so it is sent at most once: after a timeout, a dropped connection or a 5xx the
    /// error says the outcome is unknown (`maybe_applied`) and nothing is resent. Only a 429,
    /// which the API did not apply, is waited out and sent again.
    pub async fn post_sku_import(&self, file_url: &str) -> Result<QueueTicket, ApiError> {
        let body = serde_json::json!({ "file_url": file_url });
        let r = self
            .send(Method::POST, "catalog/skus/import", &[], Some(&body), false)
            .await?;
        Ok(QueueTicket::from_api(&r.body))
    }

    /// `GET /queues/{id}` (paced like every status poll, never from the cache).
    pub async fn queue(&self, id: u64) -> Result<QueueState, ApiError> {
        self.polls.ready().await;
        let route = format!("queues/{id}");
        let body = self
            .get(&route, &[("skipCache", "true".to_string())])
            .await?;
        QueueState::from_api(&body).ok_or_else(|| ApiError::Decode {
            method: "GET".into(),
            route,
            message: "no queue with an id in the answer".into(),
        })
    }

    /// Every queue of `GET /queues` created at or after `since` (store-local
    /// `YYYY-MM-DD HH:MM:SS`, compared as text), oldest first; queues that do not say when they
    /// were created are kept (the caller decides). The fallback when an import answer names no
    /// queue.
    pub async fn queues_since(&self, since: &str) -> Result<Vec<QueueState>, ApiError> {
        self.polls.ready().await;
        let listing = self
            .list_pages(
                "queues",
                &[("skipCache", "true".to_string())],
                |_, _| {},
                |v| QueueState::from_api(&v),
            )
            .await?;
        let mut out: Vec<QueueState> = listing
            .items
            .into_iter()
            .filter(|q| q.created_at.as_deref().is_none_or(|c| c >= since))
            .collect();
        out.sort_by_key(|q| q.id);
        out.dedup_by_key(|q| q.id);
        Ok(out)
    }

    /// Every entry of `GET /queues/{id}/logs`, page by page (bounded like every listing, and at
    /// most `MAX_LOG_ENTRIES`), in the order the API gives them.
    pub async fn queue_logs(&self, id: u64) -> Result<Vec<QueueLine>, ApiError> {
        let route = format!("queues/{id}/logs");
        let mut kept = 0usize;
        let listing = self
            .list_pages(
                &route,
                &[("skipCache", "true".to_string())],
                |_, _| {},
                |v| {
                    kept += 1;
                    (kept <= MAX_LOG_ENTRIES).then(|| QueueLine::from_api(&v))
                },
            )
            .await?;
        if kept > MAX_LOG_ENTRIES {
            return Err(ApiError::Decode {
                method: "GET".into(),
                route,
                message: format!(
                    "the queue has more than {MAX_LOG_ENTRIES} log entries, more than any import can; stopped"
                ),
            });
        }
        Ok(listing.items)
    }

    /// The `link` of the caller's notification whose `data.queue_id` is `queue_id`, if any.
    pub async fn notification_link(&self, queue_id: u64) -> Result<Option<String>, ApiError> {
        self.polls.ready().await;
        let listing = self
            .list_pages(
                "notifications",
                &[("skipCache", "true".to_string())],
                |_, _| {},
                |v| {
                    let data = v.get("data")?;
                    (data.get("queue_id").and_then(as_u64)? == queue_id)
                        .then(|| data.get("link").and_then(as_text))
                        .flatten()
                        .filter(|l| !l.is_empty())
                },
            )
            .await?;
        Ok(listing.items.into_iter().next())
    }

    /// Downloads an export's file: capped at `MAX_DOWNLOAD_BYTES`, under `DOWNLOAD_TIMEOUT`,
    /// transient failures retried (a GET). The credentials go only to the API's own host; a
    /// file elsewhere (a storage bucket) gets none.
    pub async fn download(&self, url: &str) -> Result<Vec<u8>, ApiError> {
        self.download_capped(url, MAX_DOWNLOAD_BYTES, DOWNLOAD_TIMEOUT)
            .await
            .map_err(|e| e.scrubbed(&self.scrubber))
    }

    /// [`ShopClient::download`] with a smaller cap (tests).
    pub async fn download_with_cap(&self, url: &str, max: usize) -> Result<Vec<u8>, ApiError> {
        self.download_capped(url, max, DOWNLOAD_TIMEOUT)
            .await
            .map_err(|e| e.scrubbed(&self.scrubber))
    }

    async fn download_capped(
        &self,
        url: &str,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, ApiError> {
        let route = match reqwest::Url::parse(url) {
            Ok(u) => format!("{}{}", u.host_str().unwrap_or_default(), u.path()),
            Err(e) => {
                return Err(ApiError::Decode {
                    method: "GET".into(),
                    route: url.chars().take(200).collect(),
                    message: format!("the file link is not a URL: {e}"),
                });
            }
        };
        let with_auth = same_origin(&self.store.base_url, url);
        let mut delays = retry::backoff(
            self.store.max_retries,
            self.retry_min,
            Duration::from_secs(10),
        );
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut req = self.http.get(url).timeout(timeout);
            if with_auth {
                req = req
                    .header("User-Token", self.store.user_token.expose())
                    .header("User-Secret-Key", self.store.user_secret_key.expose());
            }
            let outcome = tokio::time::timeout(timeout, fetch_capped(req, max)).await;
            let reason = match outcome {
                Ok(Ok(Fetch::Body(bytes))) => return Ok(bytes),
                Ok(Ok(Fetch::TooLarge)) => {
                    return Err(ApiError::Exhausted {
                        method: "GET".into(),
                        route,
                        attempts,
                        last: format!(
                            "the file exceeded {}; it was not read further",
                            size_text(max)
                        ),
                        maybe_applied: false,
                    });
                }
                Ok(Ok(Fetch::Status(status, text))) => match retry::classify_status(status) {
                    retry::Verdict::Transient(r) => r,
                    _ => {
                        return Err(ApiError::Status {
                            method: "GET".into(),
                            route,
                            status,
                            message: super::api_message(&text),
                            body: super::truncate(&text, 2000).to_string(),
                        });
                    }
                },
                Ok(Err(e)) => match retry::classify_error(&e) {
                    retry::Verdict::Transient(r) => r,
                    _ => retry::short_error(&e),
                },
                Err(_) => "timed out".to_string(),
            };
            match delays.next() {
                Some(d) => tokio::time::sleep(d).await,
                None => {
                    return Err(ApiError::Exhausted {
                        method: "GET".into(),
                        route,
                        attempts,
                        last: reason,
                        maybe_applied: false,
                    });
                }
            }
        }
    }
}

enum Fetch {
    Body(Vec<u8>),
    TooLarge,
    /// A status other than 2xx, with the start of its body.
    Status(u16, String),
}

async fn fetch_capped(req: reqwest::RequestBuilder, max: usize) -> Result<Fetch, reqwest::Error> {
    let mut resp = req.send().await?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        let text = super::read_capped(&mut resp, 64 * 1024)
            .await?
            .unwrap_or_default();
        return Ok(Fetch::Status(status, text));
    }
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Ok(Fetch::TooLarge);
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > max {
            return Ok(Fetch::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Fetch::Body(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queue_shapes_are_read_tolerantly() {
        let q = QueueState::from_api(&json!({"data": {"id": "7", "total_sent": "3",
            "total_processed": 3, "finished_at": null, "redirect_url": "", "title": "x"}}))
        .unwrap();
        assert_eq!((q.id, q.total_sent, q.total_processed), (7, 3, 3));
        assert_eq!(q.redirect_url, None);
        assert!(q.finished(), "processed >= sent");
        let q = QueueState::from_api(&json!({"id": 8, "total_sent": 0, "total_processed": 0,
            "finished_at": {"date": "2025-01-01 10:00:00"}}))
        .unwrap();
        assert!(q.finished());
        let q =
            QueueState::from_api(&json!({"id": 9, "total_sent": 0, "total_processed": 0})).unwrap();
        assert!(!q.finished(), "nothing sent yet is not done");
        assert_eq!(
            QueueTicket::from_api(&json!({"queue_id": "12", "total": 4})),
            QueueTicket {
                queue_id: Some(12),
                total: Some(4)
            }
        );
        assert_eq!(QueueTicket::from_api(&json!({"total": 4})).queue_id, None);
    }

    #[test]
    fn log_entries_fail_unless_success_and_not_error() {
        let l = QueueLine::from_api(
            &json!({"id": 1, "success": true, "error": false, "line": "3", "message": ["SKU criado"]}),
        );
        assert_eq!(
            l,
            QueueLine {
                line: 3,
                ok: true,
                message: "SKU criado".into()
            }
        );
        let both = QueueLine::from_api(
            &json!({"success": true, "error": true, "line": 4, "message": "bloqueado"}),
        );
        assert!(!both.ok);
        assert_eq!((both.line, both.message.as_str()), (4, "bloqueado"));
        assert!(!QueueLine::from_api(&json!({"success": false, "line": "1"})).ok);
        assert!(
            !QueueLine::from_api(&json!({"line": "1"})).ok,
            "no flag is no success"
        );
    }

    #[test]
    fn credentials_go_only_to_the_api_host() {
        let api = "https://api.dooki.com.br/v2";
        assert!(same_origin(api, "https://api.dooki.com.br/files/x.xlsx"));
        assert!(!same_origin(api, "https://s3.amazonaws.com/yampi/x.xlsx"));
        assert!(!same_origin(api, "http://api.dooki.com.br/files/x.xlsx"));
        assert!(!same_origin(api, "https://api.dooki.com.br:8443/x"));
        assert!(!same_origin(api, "not a url"));
    }
}
