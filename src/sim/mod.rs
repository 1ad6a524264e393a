//! In-process simulator of the Yampi REST API v2, for tests and the `demo` command.
//!
//! It follows the Yampi docs: routes under `/v2/{alias}`, `User-Token` + `User-Secret-Key` auth,
//! per-route-group fixed-window rate limits with `X-RateLimit-*` headers and the documented 429,
//! the `data`/`meta.pagination` envelope, SKU listing with the legacy filter syntax, and
//! `POST /catalog/products/{id}/stocks/sync` with the `skus[]` body. Faults (5xx, dropped
//! connections, writes applied then dropped, latency, string pagination, 429 storms) are drawn
//! from a seeded RNG so tests are reproducible; others are switches (pagination that lies or
//! never ends, pages that shift mid-scan, a clock behind, bodies that never end or stall, error
//! bodies echoing the request's headers), all off by default.
//!
//! Files: `catalog` (data model and JSON shapes), `limits` (quotas), `faults` (fault draw),
//! `query` (pagination and filters), `routes` (request processing), `prices` (price endpoints),
//! `price_state` (their batch queues and counters), `store` (shared state), `conn` (HTTP serving),
//! `queues` (import/export queues, their logs and hosted files), `exports`, `imports`,
//! `notifications`.

mod catalog;
mod conn;
mod exports;
mod faults;
mod imports;
mod limits;
mod notifications;
mod price_state;
mod prices;
mod query;
mod queues;
mod routes;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use catalog::{Catalog, LogisticsStock, Product, Sku, SkuStock, sample_catalog};
pub use faults::Faults;
pub use limits::SimLimits;
pub use queues::{FileFormat, QueueSettings};

use store::{Log, Shared, State, lock};

/// How the simulated store is reached and how it behaves.
#[derive(Clone)]
pub struct SimConfig {
    /// Routes live under `/v2/{alias}/...`.
    pub alias: String,
    /// Required `User-Token` header value.
    pub user_token: String,
    /// Required `User-Secret-Key` header value.
    pub user_secret_key: String,
    /// Fixed rate-limit window length (Yampi: 60 s).
    pub window: Duration,
    pub limits: SimLimits,
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            alias: "demo".to_owned(),
            user_token: "sim-token".to_owned(),
            user_secret_key: "sim-secret".to_owned(),
            window: Duration::from_secs(60),
            limits: SimLimits::default(),
            faults: Faults::default(),
        }
    }
}

/// Credentials are redacted so a logged config never leaks them.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("alias", &self.alias)
            .field("user_token", &"<redacted>")
            .field("user_secret_key", &"<redacted>")
            .field("window", &self.window)
            .field("limits", &self.limits)
            .field("faults", &self.faults)
            .finish()
    }
}

/// One request as the simulator received it, with its outcome.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// Without the query, e.g. `/v2/demo/catalog/products/1000/stocks/sync`.
    pub path: String,
    /// Raw (still percent-encoded) query string, without `?`.
    pub query: String,
    pub body: String,
    /// Status sent; 0 when the connection was dropped (or the request is still in flight).
    pub status: u16,
    /// When the request had been received (before any injected latency).
    pub at: Instant,
    /// A write changed state.
    pub applied: bool,
    /// Request headers as received.
    pub headers: Vec<(String, String)>,
}

/// A running simulator. Cheap to clone; the server stops on [`Simulator::shutdown`] or when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Simulator {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(config: SimConfig, catalog: Catalog) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let mut state = State::new(catalog, config.faults, config.limits, config.window);
        state.queues.origin = format!("http://{addr}");
        state.queues.alias = config.alias.clone();
        let shared = Arc::new(Shared {
            alias: config.alias,
            user_token: config.user_token,
            user_secret_key: config.user_secret_key,
            addr,
            state: Mutex::new(state),
            log: Mutex::new(Log::default()),
            connections: AtomicUsize::new(0),
        });
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(conn::accept_loop(
            listener,
            Arc::clone(&shared),
            shutdown.clone(),
            tracker.clone(),
        ));
        Ok(Simulator {
            inner: Arc::new(Handle {
                shared,
                shutdown,
                tracker,
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared().addr
    }

    /// `http://127.0.0.1:{port}/v2`; clients append `/{alias}/...`.
    pub fn base_url(&self) -> String {
        self.shared().base_url()
    }

    /// Replaces the faults and reseeds the fault RNG with `faults.seed`.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared().state).set_faults(faults);
    }

    /// Replaces the quotas and window; every group's window starts afresh.
    pub fn set_limits(&self, limits: SimLimits, window: Duration) {
        lock(&self.shared().state).limiter.reset(limits, window);
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared().log).all()
    }

    /// Recorded requests with this method (case-insensitive) whose path contains `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        lock(&self.shared().log)
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_contains))
            .count()
    }

    /// Responses sent with this status; dropped connections count as status 0.
    pub fn count_status(&self, status: u16) -> usize {
        lock(&self.shared().log)
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared().log).clear();
    }

    /// Current quantity of the SKU's row for that logistics stock; None if there is no row.
    pub fn stock(&self, sku_id: u64, stock_id: u64) -> Option<i64> {
        self.row(sku_id, stock_id).map(|r| r.quantity)
    }

    pub fn min_quantity(&self, sku_id: u64, stock_id: u64) -> Option<i64> {
        self.row(sku_id, stock_id).map(|r| r.min_quantity)
    }

    fn row(&self, sku_id: u64, stock_id: u64) -> Option<SkuStock> {
        let st = lock(&self.shared().state);
        st.sku(sku_id)?
            .stocks
            .iter()
            .find(|r| r.stock_id == stock_id)
            .cloned()
    }

    /// Snapshot of the whole catalogue.
    pub fn catalog(&self) -> Catalog {
        let mut st = lock(&self.shared().state);
        prices::settle(&mut st, Instant::now());
        st.catalog.clone()
    }

    /// (price_cost, price_sale, price_discount) of a SKU.
    pub fn sku_prices(
        &self,
        sku_id: u64,
    ) -> Option<(
        rust_decimal::Decimal,
        rust_decimal::Decimal,
        rust_decimal::Decimal,
    )> {
        let mut st = lock(&self.shared().state);
        prices::settle(&mut st, Instant::now());
        st.sku(sku_id)
            .map(|s| (s.price_cost, s.price_sale, s.price_discount))
    }

    /// Batch updates selecting more SKUs than this answer `async` (default 10).
    pub fn set_batch_async_threshold(&self, n: usize) {
        lock(&self.shared().state).prices.async_threshold = n;
    }

    /// How long an asynchronous batch update takes to apply (default 300 ms).
    pub fn set_batch_async_delay(&self, d: Duration) {
        lock(&self.shared().state).prices.async_delay = d;
    }

    /// Batch updates received and not applied yet.
    pub fn pending_batch_updates(&self) -> usize {
        let mut st = lock(&self.shared().state);
        prices::settle(&mut st, Instant::now());
        st.prices
            .batches
            .values()
            .flatten()
            .filter(|b| b.is_pending())
            .count()
    }

    /// Batch updates that arrived while an earlier batch of the same product was still pending.
    pub fn batch_updates_queued_behind(&self) -> usize {
        lock(&self.shared().state).prices.queued_behind
    }

    /// An admin sets this SKU's `price_sale` just before the next price write (SKU or batch
    /// update) is handled: an edit made after the client read its SKU index.
    pub fn admin_sets_sale_before_next_price_write(
        &self,
        sku_id: u64,
        price_sale: rust_decimal::Decimal,
    ) {
        lock(&self.shared().state)
            .prices
            .admin_sale_before_next_write
            .push((sku_id, price_sale));
    }

    /// Batch-edit calls applied so far (each call applies again: the edit is relative).
    pub fn batch_edits_applied(&self) -> usize {
        lock(&self.shared().state).prices.edits_applied
    }

    /// Edits a SKU in place (as an admin would) and bumps its `updated_at` to now.
    pub fn update_sku(&self, sku_id: u64, f: impl FnOnce(&mut Sku)) {
        let mut st = lock(&self.shared().state);
        let now = st.now();
        if let Some(sku) = st.sku_mut(sku_id) {
            f(sku);
            sku.updated_at = now;
        }
    }

    /// Adds (or replaces) a SKU in its product, creating the product if absent; `updated_at` = now.
    pub fn add_sku(&self, mut sku: Sku) {
        let mut st = lock(&self.shared().state);
        sku.updated_at = st.now();
        st.add_sku(sku);
    }

    pub fn remove_sku(&self, sku_id: u64) {
        lock(&self.shared().state).remove_sku(sku_id);
    }

    /// Replaces how queues behave (duration, export file format and layout variants).
    pub fn set_queue_settings(&self, settings: QueueSettings) {
        lock(&self.shared().state).queues.settings = settings;
    }

    /// Hosts a file on the simulator (as a merchant's file server would) and returns its URL,
    /// `http://127.0.0.1:{port}/files/{random}/{name}`.
    pub fn host_file(&self, name: &str, bytes: Vec<u8>) -> String {
        let mut st = lock(&self.shared().state);
        let path = st.queues.host(name, bytes);
        format!("{}{path}", st.queues.origin)
    }

    /// `POST /catalog/skus/import` requests that reached the import handler.
    pub fn import_posts(&self) -> usize {
        lock(&self.shared().state).queues.import_posts
    }

    /// The SKU export's header row, in the order this store writes (and an import must keep).
    pub fn sku_export_header(&self) -> Vec<String> {
        let seed = lock(&self.shared().state).queues.settings.column_seed;
        exports::sku_header(seed)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), and closes idle connections.
    pub async fn shutdown(self) {
        let inner = &self.inner;
        inner.shutdown.cancel();
        inner.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), inner.tracker.wait()).await;
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr())
            .finish_non_exhaustive()
    }
}
