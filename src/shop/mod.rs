//! `ShopClient`: the only code that talks to the Yampi API.
//!
//! Every request goes through one path (`send`): route-group limiter, a bounded number in flight,
//! a timeout over the whole attempt (body included), a cap on the body (`MAX_BODY_BYTES`), the
//! retry classifier, and per-route counters for reports and tests. Both auth headers are added
//! here and nowhere else; every error is scrubbed of their values, so even an API that echoes
//! them back cannot put them in an error, a log or the state store. Listings (`list_pages`)
//! always end: see the bounds there. `queues` and `queue_watch`: Yampi's import/export queues.

pub mod limit;
pub mod model;
pub mod poll;
pub mod queue_watch;
pub mod queues;
pub mod retry;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::StoreSettings;
use crate::config::secret::Scrubber;
use crate::model::{IndexedSku, StockEntry};
use limit::{QuotaAnswer, RouteGroup, StoreLimiter};
use model::{LiveStock, LogisticsStock, Pagination};
use retry::Verdict;

/// The largest page the client asks for (community clients use 100; the max is undocumented).
pub const PAGE_LIMIT: u32 = 100;
/// Consecutive 429s on one request before giving up (each waits for a window reset).
const MAX_RATE_LIMITED: u32 = 20;
/// Largest response body read: an endless or huge body fails its request instead of filling
/// memory.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Most pages one listing may take (a million SKUs at 100 a page): a listing that does not end
/// fails instead of growing forever.
pub const MAX_PAGES: u64 = 10_000;

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
    #[error("{method} {route} failed {}, the last time with: {last}", times(*attempts))]
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

fn times(n: u32) -> String {
    if n == 1 {
        "once".to_string()
    } else {
        format!("{n} times")
    }
}

impl ApiError {
    /// The same error with every configured secret value removed from its texts.
    pub fn scrubbed(self, scrubber: &Scrubber) -> ApiError {
        let sc = |s: String| scrubber.scrub(&s);
        match self {
            ApiError::Status {
                method,
                route,
                status,
                message,
                body,
            } => ApiError::Status {
                method,
                route: sc(route),
                status,
                message: sc(message),
                body: sc(body),
            },
            ApiError::Exhausted {
                method,
                route,
                attempts,
                last,
                maybe_applied,
            } => ApiError::Exhausted {
                method,
                route: sc(route),
                attempts,
                last: sc(last),
                maybe_applied,
            },
            ApiError::Decode {
                method,
                route,
                message,
            } => ApiError::Decode {
                method,
                route: sc(route),
                message: sc(message),
            },
        }
    }

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

/// Attempts per (`METHOD route`, answer).
type AnswerCounts = Mutex<BTreeMap<(String, String), u64>>;

/// The zone the API writes and reads store-local times in (`updated_at`, `date=` filters,
/// `created_at` of queues): Yampi's stores are Brazilian and answer in America/Sao_Paulo.
pub const STORE_ZONE: chrono_tz::Tz = chrono_tz::America::Sao_Paulo;

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

/// The SKU listing, and the server's clock when its first page was answered.
pub struct SkuListing {
    pub skus: Vec<IndexedSku>,
    pub server_date: Option<chrono::DateTime<chrono::Utc>>,
}

/// A paginated list read to its end.
pub struct Listing<T = Value> {
    pub items: Vec<T>,
    /// The server's `Date` when the first page was answered.
    pub server_date: Option<chrono::DateTime<chrono::Utc>>,
}

pub struct Response {
    pub status: u16,
    pub body: Value,
    /// The server's `Date` header: its clock, for watermarks that must not trust ours.
    pub date: Option<chrono::DateTime<chrono::Utc>>,
}

/// What one attempt brought back.
struct Answer {
    status: u16,
    limit: Option<u32>,
    remaining: Option<u32>,
    retry_after: Option<u32>,
    date: Option<chrono::DateTime<chrono::Utc>>,
    /// `None`: the body was larger than the cap and was not read further.
    text: Option<String>,
}

enum Attempt {
    Answer(Answer),
    Failed(reqwest::Error),
    /// The whole attempt (body included) took longer than the per-request timeout.
    TimedOut,
}

/// The body as text, read chunk by chunk; `None` as soon as it exceeds `max` bytes.
async fn read_capped(
    resp: &mut reqwest::Response,
    max: usize,
) -> Result<Option<String>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Ok(None);
    }
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() + chunk.len() > max {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

/// `64 MB`, or bytes for caps below a megabyte.
fn size_text(bytes: usize) -> String {
    const MB: usize = 1024 * 1024;
    if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else {
        format!("{bytes} bytes")
    }
}

pub struct ShopClient {
    http: reqwest::Client,
    store: Arc<StoreSettings>,
    limiter: StoreLimiter,
    in_flight: Semaphore,
    counts: Mutex<BTreeMap<String, u64>>,
    /// Attempts per (`METHOD route`, answer): shared with the client that replaces this one on
    /// a reload, so the daemon's metrics keep counting across it.
    answers: Arc<AnswerCounts>,
    retry_min: Duration,
    max_body: usize,
    max_pages: u64,
    scrubber: Scrubber,
    polls: poll::PollPacer,
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
            answers: Arc::default(),
            retry_min: Duration::from_millis(200),
            max_body: MAX_BODY_BYTES,
            max_pages: MAX_PAGES,
            scrubber: Scrubber::new([&store.user_token, &store.user_secret_key]),
            polls: poll::PollPacer::new(store.limits),
            store,
        })
    }

    /// Lowers (or raises) the response body cap (tests use a small one).
    pub fn set_max_body_bytes(&mut self, bytes: usize) {
        self.max_body = bytes.max(1);
    }

    /// Changes the hard cap on pages per listing (tests use a small one).
    pub fn set_max_pages(&mut self, pages: u64) {
        self.max_pages = pages.max(1);
    }

    /// Removes this store's credentials from a text.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
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

    /// Attempts so far per (`METHOD route`, HTTP status or `error`/`timeout`), for metrics.
    pub fn answer_counts(&self) -> BTreeMap<(String, String), u64> {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts into `from`'s answer counters from now on (a reload's new client of a store).
    pub fn share_answer_counts(&mut self, from: &ShopClient) {
        self.answers = from.answers.clone();
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
    /// Errors never carry a configured credential, even when the API echoes one back.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Response, ApiError> {
        self.send_unscrubbed(method, path, query, body, idempotent)
            .await
            .map_err(|e| e.scrubbed(&self.scrubber))
    }

    async fn send_unscrubbed(
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
        let limiter = self.limiter.group(group);
        let mut attempts = 0u32;
        let mut rate_limited = 0u32;
        loop {
            // Limiter first: a request held for its group's window must not occupy a slot
            // that another group's request could use. The send is taken from the limiter only
            // once a slot is held, so the time it logs is the time the request leaves.
            let (permit, slot) = loop {
                limiter.ready().await;
                let slot = self
                    .in_flight
                    .acquire()
                    .await
                    .expect("semaphore never closed");
                if let Some(permit) = limiter.try_acquire() {
                    break (permit, slot);
                }
            };
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
            // The whole attempt, body included, is bounded in time and in size: a body that
            // stalls or never ends fails this attempt instead of hanging or filling memory.
            let outcome = match tokio::time::timeout(self.store.timeout, self.attempt(req)).await {
                Ok(Ok(answer)) => Attempt::Answer(answer),
                Ok(Err(e)) => Attempt::Failed(e),
                Err(_) => Attempt::TimedOut,
            };
            drop(slot);
            let answer = match &outcome {
                Attempt::Answer(a) => a.status.to_string(),
                Attempt::Failed(_) => "error".to_string(),
                Attempt::TimedOut => "timeout".to_string(),
            };
            *self
                .answers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((label.clone(), answer))
                .or_default() += 1;
            let verdict = match &outcome {
                Attempt::Answer(a) => {
                    permit.complete(QuotaAnswer {
                        limit: a.limit,
                        remaining: a.remaining,
                        rate_limited: a.status == 429,
                    });
                    if a.text.is_none() {
                        // Over the cap: the server answered, so a write may have been applied.
                        return Err(ApiError::Exhausted {
                            method: method.to_string(),
                            route,
                            attempts,
                            last: format!(
                                "HTTP {}: the response exceeded {}; it was not read further",
                                a.status,
                                size_text(self.max_body)
                            ),
                            maybe_applied: true,
                        });
                    }
                    retry::classify_status(a.status)
                }
                Attempt::Failed(e) => {
                    drop(permit);
                    retry::classify_error(e)
                }
                Attempt::TimedOut => {
                    drop(permit);
                    Verdict::Transient("timed out".into())
                }
            };
            match verdict {
                Verdict::Success => {
                    let Attempt::Answer(a) = outcome else {
                        unreachable!("success has an answer")
                    };
                    let text = a.text.unwrap_or_default();
                    let body = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).map_err(|e| ApiError::Decode {
                            method: method.to_string(),
                            route: route.clone(),
                            message: format!("{e} (body starts with {:?})", truncate(&text, 120)),
                        })?
                    };
                    return Ok(Response {
                        status: a.status,
                        body,
                        date: a.date,
                    });
                }
                Verdict::RateLimited => {
                    rate_limited += 1;
                    let retry_after = match &outcome {
                        Attempt::Answer(a) => a.retry_after,
                        _ => None,
                    };
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
                                Attempt::Answer(a) => (
                                    format!(
                                        "{reason}: {}",
                                        api_message(a.text.as_deref().unwrap_or_default())
                                    ),
                                    true,
                                ),
                                Attempt::Failed(e) => (reason, !e.is_connect()),
                                Attempt::TimedOut => (reason, true),
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
                    let Attempt::Answer(a) = outcome else {
                        unreachable!("final has an answer")
                    };
                    let text = a.text.unwrap_or_default();
                    return Err(ApiError::Status {
                        method: method.to_string(),
                        route,
                        status: a.status,
                        message: api_message(&text),
                        body: truncate(&text, 2000).to_string(),
                    });
                }
            }
        }
    }

    /// One attempt: the status, the rate-limit headers, and the body read up to `max_body`.
    async fn attempt(&self, req: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let number = |name: &str| header(name).and_then(|v| v.parse::<u32>().ok());
        let mut answer = Answer {
            status,
            limit: number("x-ratelimit-limit"),
            remaining: number("x-ratelimit-remaining"),
            retry_after: number("retry-after"),
            date: header("date")
                .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                .map(|d| d.with_timezone(&chrono::Utc)),
            text: None,
        };
        answer.text = read_capped(&mut resp, self.max_body).await?;
        Ok(answer)
    }

    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        Ok(self.send(Method::GET, path, query, None, true).await?.body)
    }

    /// Every item of a paginated list, page by page (limit 100).
    pub async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
        on_page: impl FnMut(u64, Option<u64>),
    ) -> Result<Vec<Value>, ApiError> {
        Ok(self.list_pages(path, query, on_page, Some).await?.items)
    }

    /// Every item of a paginated list, and the server's clock when its first page was read.
    ///
    /// Paging goes on while the API says there is more (a next link, a page count above the
    /// current one) or, when a page carries no pagination at all, while pages come back full.
    /// A listing that does not end is an error, never a hang: a page past what `total` needs
    /// (with room for growth during the scan), a page that repeats an earlier one (same
    /// `current_page`, or same first and last ids), or more than `max_pages` pages. Each item
    /// goes through `keep` as its page arrives, so only what the caller keeps stays in memory.
    pub async fn list_pages<T>(
        &self,
        path: &str,
        query: &[(&str, String)],
        mut on_page: impl FnMut(u64, Option<u64>),
        mut keep: impl FnMut(Value) -> Option<T>,
    ) -> Result<Listing<T>, ApiError> {
        let route = route_label(path);
        let broken = |message: String| ApiError::Decode {
            method: "GET".into(),
            route: route.clone(),
            message,
        };
        let mut out = Vec::new();
        let mut server_date = None;
        let mut seen_pages: HashSet<u64> = HashSet::new();
        let mut seen_spans: HashSet<(String, String)> = HashSet::new();
        // Pages `total` allows: (pages needed, the total it was computed from).
        let mut bound: Option<(u64, u64)> = None;
        let mut first_len: Option<usize> = None;
        let mut page = 1u64;
        loop {
            if page > self.max_pages {
                return Err(broken(format!(
                    "the listing did not end after {} pages, the most one listing may take; stopped",
                    self.max_pages
                )));
            }
            if let Some((pages, total)) = bound
                && page > pages
            {
                return Err(broken(format!(
                    "the listing went on past page {pages} although the API counts {total} items; stopped"
                )));
            }
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("limit", PAGE_LIMIT.to_string()));
            let resp = self.send(Method::GET, path, &q, None, true).await?;
            if page == 1 {
                server_date = resp.date;
            }
            let mut body = resp.body;
            let data = match body.get_mut("data").map(Value::take) {
                Some(Value::Array(a)) => a,
                _ => return Err(broken("no `data` array in the page".into())),
            };
            let pagination = Pagination::from_body(&body);
            on_page(page, pagination.total_pages);
            if let Some(cur) = pagination.current_page
                && !seen_pages.insert(cur)
            {
                return Err(broken(format!(
                    "page {page} came back as page {cur}, which was already read: the listing loops; stopped"
                )));
            }
            let id = |v: Option<&Value>| v.and_then(|i| i.get("id")).map(Value::to_string);
            if let (Some(a), Some(b)) = (id(data.first()), id(data.last()))
                && !seen_spans.insert((a.clone(), b.clone()))
            {
                return Err(broken(format!(
                    "page {page} repeats an earlier page (ids {a} to {b}): the listing loops; stopped"
                )));
            }
            let per_page = pagination
                .per_page
                .filter(|n| *n > 0)
                .unwrap_or(u64::from(PAGE_LIMIT));
            if let Some(total) = pagination.total {
                let needed = total.div_ceil(per_page).max(1);
                // One more for the empty page after a full last one, a tenth more for SKUs
                // added while the scan runs.
                bound = Some((needed + 1 + needed / 10, total));
            }
            let len = data.len();
            let first = *first_len.get_or_insert(len);
            let no_pagination = pagination == Pagination::default();
            let more = pagination.has_more(page) || (no_pagination && len > 0 && len >= first);
            let empty = data.is_empty();
            out.extend(data.into_iter().filter_map(&mut keep));
            if empty || !more {
                return Ok(Listing {
                    items: out,
                    server_date,
                });
            }
            page += 1;
        }
    }

    /// All SKUs, or those updated in `[from, to]` (store-local dates, legacy `date=` filter),
    /// in the stable order `orderBy=id&sortedBy=asc` (SKUs added during the scan come last;
    /// edits during the scan do not move anything).
    pub async fn list_skus(
        &self,
        updated: Option<(String, String)>,
        on_page: impl FnMut(u64, Option<u64>),
    ) -> Result<SkuListing, ApiError> {
        let mut q = vec![
            ("skipCache", "true".to_string()),
            ("orderBy", "id".to_string()),
            ("sortedBy", "asc".to_string()),
        ];
        if let Some((from, to)) = updated {
            q.push(("date", format!("updated_at:{from}|{to}")));
        }
        let listing = self
            .list_pages("catalog/skus", &q, on_page, |v| model::sku_from_api(&v))
            .await?;
        Ok(SkuListing {
            skus: listing.items,
            server_date: listing.server_date,
        })
    }

    /// `GET /catalog/skus/{id}` without the cache: the SKU, or `None` when the store answers
    /// 404 (it is gone).
    pub async fn sku(&self, sku_id: u64) -> Result<Option<IndexedSku>, ApiError> {
        let r = self
            .get(
                &format!("catalog/skus/{sku_id}"),
                &[("skipCache", "true".to_string())],
            )
            .await;
        match r {
            Ok(body) => {
                let data = body.get("data").unwrap_or(&body);
                model::sku_from_api(data)
                    .map(Some)
                    .ok_or_else(|| ApiError::Decode {
                        method: "GET".into(),
                        route: format!("catalog/skus/{sku_id}"),
                        message: "no SKU with an id in the answer".into(),
                    })
            }
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
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
        entries: &[StockEntry],
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
        self.ping_unscrubbed()
            .await
            .map_err(|e| e.scrubbed(&self.scrubber))
    }

    async fn ping_unscrubbed(&self) -> Result<(), ApiError> {
        let url = format!("{}/ping", self.store.base_url);
        let mut r = self
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
            // An error page is read only as far as a short message needs.
            let text = read_capped(&mut r, 64 * 1024)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            Err(ApiError::Status {
                method: "GET".into(),
                route: "ping".into(),
                status,
                message: api_message(&text),
                body: truncate(&text, 300).to_string(),
            })
        }
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
        self.polls.ready().await;
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
