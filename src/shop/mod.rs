//! `ShopClient`: the only code that talks to the Yampi API.
//!
//! Every request goes through one path (`send`): route-group limiter, a bounded number in flight,
//! a timeout, the retry classifier, and per-route counters for reports and tests. Both auth
//! headers are added here and nowhere else; they never appear in errors or logs.

pub mod limit;
pub mod model;
pub mod retry;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::StoreSettings;
use limit::{QuotaAnswer, RouteGroup, StoreLimiter};
use model::{IndexedSku, LiveStock, LogisticsStock, Pagination};
use retry::Verdict;

/// The largest page the client asks for (community clients use 100; the max is undocumented).
pub const PAGE_LIMIT: u32 = 100;
/// Consecutive 429s on one request before giving up (each waits for a window reset).
const MAX_RATE_LIMITED: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with a final (non-retriable) status.
    #[error("{method} {route} was refused with HTTP {status}: {message}")]
    Status {
        method: String,
        route: String,
        status: u16,
        message: String,
        body: String,
    },
    /// Transient failures until the retries ran out (or the first one, for a call that is
    /// not retried). `maybe_applied`: the last attempt reached the server and its outcome is
    /// unknown (a timeout, a dropped connection or a 5xx), as opposed to a refused connection.
    #[error("{method} {route} failed {attempts} times, the last time with: {last}")]
    Exhausted {
        method: String,
        route: String,
        attempts: u32,
        last: String,
        maybe_applied: bool,
    },
    #[error("{method} {route} answered something that is not the expected JSON: {message}")]
    Decode {
        method: String,
        route: String,
        message: String,
    },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Auth refused or the store is gone: nothing else in this run can succeed.
    pub fn is_fatal_for_store(&self) -> bool {
        matches!(self.status(), Some(401 | 403)) || matches!(self, ApiError::Exhausted { .. })
    }
}

/// `/catalog/products/123/stocks/sync` → `catalog/products/{id}/stocks/sync`, for counting.
pub fn route_label(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub struct Response {
    pub status: u16,
    pub body: Value,
}

pub struct ShopClient {
    http: reqwest::Client,
    store: Arc<StoreSettings>,
    limiter: StoreLimiter,
    in_flight: Semaphore,
    counts: Mutex<BTreeMap<String, u64>>,
    retry_min: Duration,
}

impl std::fmt::Debug for ShopClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopClient")
            .field("store", &self.store.name)
            .finish()
    }
}

impl ShopClient {
    pub fn new(store: Arc<StoreSettings>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(store.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("yampi-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            limiter: StoreLimiter::new(store.limits),
            in_flight: Semaphore::new(store.max_in_flight),
            counts: Mutex::new(BTreeMap::new()),
            retry_min: Duration::from_millis(200),
            store,
        })
    }

    pub fn store(&self) -> &StoreSettings {
        &self.store
    }

    pub fn limiter(&self) -> &StoreLimiter {
        &self.limiter
    }

    /// Requests sent so far (every attempt), per `METHOD route`.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().expect("counts").clone()
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.store.base_url,
            self.store.alias,
            path.trim_start_matches('/')
        )
    }

    /// Sends one logical request, retrying what is safe to retry. `idempotent` requests are
    /// retried after transient failures; others only after a 429 (which the API did not apply).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Response, ApiError> {
        let group = RouteGroup::of(&method, path);
        let label = format!("{method} {}", route_label(path));
        // Errors name the real path (which product), counters the route.
        let route = path.trim_start_matches('/').to_string();
        let mut delays = retry::backoff(
            self.store.max_retries,
            self.retry_min,
            Duration::from_secs(10),
        );
        let mut attempts = 0u32;
        let mut rate_limited = 0u32;
        loop {
            // Limiter first: a request held for its group's window must not occupy a slot
            // that another group's request could use.
            let permit = self.limiter.group(group).acquire().await;
            let slot = self
                .in_flight
                .acquire()
                .await
                .expect("semaphore never closed");
            attempts += 1;
            *self
                .counts
                .lock()
                .expect("counts")
                .entry(label.clone())
                .or_default() += 1;
            let mut req = self
                .http
                .request(method.clone(), self.url(path))
                .header("User-Token", self.store.user_token.expose())
                .header("User-Secret-Key", self.store.user_secret_key.expose())
                .header("Content-Type", "application/json")
                .header("Accept", "application/json");
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req.body(b.to_string());
            }
            let outcome = async {
                let resp = req.send().await?;
                let status = resp.status().as_u16();
                let header = |name: &str| {
                    resp.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u32>().ok())
                };
                let limit = header("x-ratelimit-limit");
                let remaining = header("x-ratelimit-remaining");
                let retry_after = header("retry-after");
                let text = resp.text().await?;
                Ok::<_, reqwest::Error>((status, limit, remaining, retry_after, text))
            }
            .await;
            drop(slot);
            let verdict = match &outcome {
                Ok((status, limit, remaining, _, _)) => {
                    permit.complete(QuotaAnswer {
                        limit: *limit,
                        remaining: *remaining,
                        rate_limited: *status == 429,
                    });
                    retry::classify_status(*status)
                }
                Err(e) => {
                    drop(permit);
                    retry::classify_error(e)
                }
            };
            match verdict {
                Verdict::Success => {
                    let (status, _, _, _, text) = outcome.expect("success has a response");
                    let body = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).map_err(|e| ApiError::Decode {
                            method: method.to_string(),
                            route: route.clone(),
                            message: format!("{e} (body starts with {:?})", truncate(&text, 120)),
                        })?
                    };
                    return Ok(Response { status, body });
                }
                Verdict::RateLimited => {
                    rate_limited += 1;
                    let retry_after = outcome.as_ref().ok().and_then(|o| o.3);
                    tracing::warn!(route = %label, "Rate limited (429); waiting for the window to reset");
                    if let Some(secs) = retry_after {
                        tokio::time::sleep(Duration::from_secs(secs.min(120) as u64)).await;
                    }
                    if rate_limited >= MAX_RATE_LIMITED {
                        return Err(ApiError::Exhausted {
                            method: method.to_string(),
                            route,
                            attempts,
                            last: "HTTP 429 Too Many Requests every time".into(),
                            maybe_applied: false,
                        });
                    }
                }
                Verdict::Transient(reason) => {
                    let next = if idempotent { delays.next() } else { None };
                    match next {
                        Some(d) => {
                            tracing::debug!(route = %label, %reason, delay_ms = d.as_millis() as u64, "Retrying");
                            tokio::time::sleep(d).await;
                        }
                        None => {
                            let (last, maybe_applied) = match &outcome {
                                Ok((_, _, _, _, text)) => {
                                    (format!("{reason}: {}", api_message(text)), true)
                                }
                                Err(e) => (reason, !e.is_connect()),
                            };
                            return Err(ApiError::Exhausted {
                                method: method.to_string(),
                                route,
                                attempts,
                                last,
                                maybe_applied,
                            });
                        }
                    }
                }
                Verdict::Final => {
                    let (status, _, _, _, text) = outcome.expect("final has a response");
                    return Err(ApiError::Status {
                        method: method.to_string(),
                        route,
                        status,
                        message: api_message(&text),
                        body: truncate(&text, 2000).to_string(),
                    });
                }
            }
        }
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        Ok(self.send(Method::GET, path, query, None, true).await?.body)
    }

    /// Every item of a paginated list, page by page (limit 100).
    pub async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
        mut on_page: impl FnMut(u64, Option<u64>),
    ) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("limit", PAGE_LIMIT.to_string()));
            let body = self.get(path, &q).await?;
            let data = match body.get("data") {
                Some(Value::Array(a)) => a.clone(),
                _ => {
                    return Err(ApiError::Decode {
                        method: "GET".into(),
                        route: route_label(path),
                        message: "no `data` array in the page".into(),
                    });
                }
            };
            let pagination = Pagination::from_body(&body);
            on_page(page, pagination.total_pages);
            let empty = data.is_empty();
            out.extend(data);
            if empty || !pagination.has_more(page) {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// All SKUs, or those updated in `[from, to]` (store-local dates, legacy `date=` filter).
    pub async fn list_skus(
        &self,
        updated: Option<(String, String)>,
        on_page: impl FnMut(u64, Option<u64>),
    ) -> Result<Vec<IndexedSku>, ApiError> {
        let mut q = vec![("skipCache", "true".to_string())];
        if let Some((from, to)) = updated {
            q.push(("date", format!("updated_at:{from}|{to}")));
        }
        let items = self.list_all("catalog/skus", &q, on_page).await?;
        Ok(items.iter().filter_map(IndexedSku::from_api).collect())
    }

    pub async fn logistics_stocks(&self) -> Result<Vec<LogisticsStock>, ApiError> {
        let items = self.list_all("logistics/stocks", &[], |_, _| {}).await?;
        Ok(items.iter().filter_map(LogisticsStock::from_api).collect())
    }

    /// Live stock rows of one product's SKUs (read-after-write check, so no cache).
    pub async fn product_stocks(&self, product_id: u64) -> Result<Vec<LiveStock>, ApiError> {
        let body = self
            .get(
                &format!("catalog/products/{product_id}/stocks"),
                &[("skipCache", "true".to_string())],
            )
            .await?;
        let data = match body.get("data") {
            Some(Value::Array(a)) => a.as_slice(),
            _ => &[],
        };
        Ok(model::live_stocks(data))
    }

    /// `POST /catalog/products/{id}/stocks/sync`: absolute values, so safe to retry.
    pub async fn stocks_sync(
        &self,
        product_id: u64,
        entries: &[crate::state::StockEntry],
    ) -> Result<(), ApiError> {
        let skus: Vec<Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.sku_id,
                    "stock_id": e.stock_id,
                    "quantity": e.quantity,
                    "min_quantity": e.min_quantity,
                })
            })
            .collect();
        let body = serde_json::json!({ "skus": skus });
        self.send(
            Method::POST,
            &format!("catalog/products/{product_id}/stocks/sync"),
            &[],
            Some(&body),
            true,
        )
        .await?;
        Ok(())
    }
}

impl ShopClient {
    /// `GET /v2/ping` (outside the store's alias): the health check before READY. It carries
    /// the credentials, so an API that checks them can refuse them before any job runs.
    pub async fn ping(&self) -> Result<(), ApiError> {
        let url = format!("{}/ping", self.store.base_url);
        let r = self
            .http
            .get(&url)
            .header("User-Token", self.store.user_token.expose())
            .header("User-Secret-Key", self.store.user_secret_key.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| ApiError::Exhausted {
                method: "GET".into(),
                route: "ping".into(),
                attempts: 1,
                last: retry::short_error(&e),
                maybe_applied: false,
            })?;
        if r.status().is_success() {
            Ok(())
        } else {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            Err(ApiError::Status {
                method: "GET".into(),
                route: "ping".into(),
                status,
                message: api_message(&text),
                body: truncate(&text, 300).to_string(),
            })
        }
    }

    /// `PUT /catalog/skus/{id}`: absolute values, so safe to retry. Price jobs do not use it: it
    /// demands `price_cost` and `price_sale`, so a one-field change would re-send the others from
    /// a possibly stale read (a batch update selecting one SKU carries only the changed fields).
    pub async fn put_sku(&self, sku_id: u64, body: &Value) -> Result<(), ApiError> {
        self.send(
            Method::PUT,
            &format!("catalog/skus/{sku_id}"),
            &[],
            Some(body),
            true,
        )
        .await?;
        Ok(())
    }

    /// `PUT /catalog/products/{id}/skus/batch-update-skus`; returns the answer's `data`
    /// (`type` sync or async, `status`).
    pub async fn batch_update_skus(
        &self,
        product_id: u64,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let r = self
            .send(
                Method::PUT,
                &format!("catalog/products/{product_id}/skus/batch-update-skus"),
                &[],
                Some(body),
                true,
            )
            .await?;
        Ok(r.body.get("data").cloned().unwrap_or(r.body))
    }

    /// `GET /catalog/products/{id}/skus/batch-update-skus-progress` → its `data`.
    pub async fn batch_update_progress(&self, product_id: u64) -> Result<Value, ApiError> {
        let body = self
            .get(
                &format!("catalog/products/{product_id}/skus/batch-update-skus-progress"),
                &[("skipCache", "true".to_string())],
            )
            .await?;
        Ok(body.get("data").cloned().unwrap_or(body))
    }

    /// `PUT /catalog/products/batch-edit`: relative, so never retried after it may have left.
    pub async fn batch_edit(&self, body: &Value) -> Result<(), ApiError> {
        self.send(
            Method::PUT,
            "catalog/products/batch-edit",
            &[],
            Some(body),
            false,
        )
        .await?;
        Ok(())
    }
}

/// The API's `message` (plus Laravel-style `errors`), or the start of the raw body.
pub fn api_message(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => {
            let mut msg = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(Value::Object(errs)) = v.get("errors") {
                let details: Vec<String> = errs
                    .iter()
                    .map(|(field, m)| {
                        let m = match m {
                            Value::Array(a) => a
                                .iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(" "),
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        format!("{field}: {m}")
                    })
                    .collect();
                if !details.is_empty() {
                    msg = format!("{msg} ({})", details.join("; "));
                }
            }
            if msg.is_empty() {
                truncate(text, 300).to_string()
            } else {
                msg
            }
        }
        Err(_) if text.trim().is_empty() => "(empty body)".to_string(),
        Err(_) => truncate(text.trim(), 300).to_string(),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_hide_ids() {
        assert_eq!(
            route_label("/catalog/products/123/stocks/sync"),
            "catalog/products/{id}/stocks/sync"
        );
    }

    #[test]
    fn api_messages_include_field_errors() {
        let m = api_message(
            r#"{"message":"The given data was invalid.","errors":{"skus.0.quantity":["must be an integer."]}}"#,
        );
        assert_eq!(
            m,
            "The given data was invalid. (skus.0.quantity: must be an integer.)"
        );
        assert_eq!(api_message("<html>"), "<html>");
    }
}
