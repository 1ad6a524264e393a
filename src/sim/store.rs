//! Shared server state: the mutable catalogue with its lookups, the fault and rate-limit settings,
//! and the log of received requests. Every lock here is held only for synchronous work.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};

use chrono::NaiveDateTime;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::RecordedRequest;
use super::catalog::{Catalog, Product, Sku};
use super::faults::Faults;
use super::limits::{RateLimiter, SimLimits};
use super::price_state::PriceState;
use super::queues::QueueState;

/// Locks, recovering from poisoning: a panicking test thread must not wedge the server.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) struct Shared {
    pub alias: String,
    pub user_token: String,
    pub user_secret_key: String,
    pub addr: SocketAddr,
    pub state: Mutex<State>,
    pub log: Mutex<Log>,
    /// TCP connections accepted so far (lets tests check keep-alive).
    pub connections: AtomicUsize,
}

impl Shared {
    pub(super) fn base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }
}

pub(super) struct State {
    pub catalog: Catalog,
    /// `created_at` per SKU id; not part of the public `Sku`, but rendered by the API.
    pub created: HashMap<u64, NaiveDateTime>,
    pub next_row_id: u64,
    pub faults: Faults,
    pub rng: StdRng,
    pub limiter: RateLimiter,
    pub prices: PriceState,
    pub queues: QueueState,
}

impl State {
    pub(super) fn new(
        catalog: Catalog,
        faults: Faults,
        limits: SimLimits,
        window: std::time::Duration,
    ) -> State {
        let created = catalog
            .products
            .iter()
            .flat_map(|p| &p.skus)
            .map(|s| (s.id, s.updated_at))
            .collect();
        let next_row_id = catalog
            .products
            .iter()
            .flat_map(|p| &p.skus)
            .flat_map(|s| &s.stocks)
            .map(|r| r.row_id + 1)
            .max()
            .unwrap_or(1);
        State {
            catalog,
            created,
            next_row_id,
            rng: StdRng::seed_from_u64(faults.seed),
            faults,
            limiter: RateLimiter::new(limits, window),
            prices: PriceState::default(),
            queues: QueueState::default(),
        }
    }

    /// The store's clock (store-local, whole seconds), behind the real one by `clock_behind`.
    pub(super) fn now(&self) -> NaiveDateTime {
        super::catalog::store_now() - self.clock_behind()
    }

    /// The `Date` header value of the store's clock.
    pub(super) fn http_date(&self) -> String {
        (chrono::Utc::now() - self.clock_behind())
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    }

    fn clock_behind(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.faults.clock_behind).unwrap_or_default()
    }

    pub(super) fn set_faults(&mut self, faults: Faults) {
        self.rng = StdRng::seed_from_u64(faults.seed);
        self.faults = faults;
    }

    pub(super) fn product(&self, id: u64) -> Option<&Product> {
        self.catalog.products.iter().find(|p| p.id == id)
    }

    pub(super) fn skus(&self) -> impl Iterator<Item = &Sku> {
        self.catalog.products.iter().flat_map(|p| &p.skus)
    }

    pub(super) fn sku(&self, id: u64) -> Option<&Sku> {
        self.skus().find(|s| s.id == id)
    }

    pub(super) fn sku_mut(&mut self, id: u64) -> Option<&mut Sku> {
        self.catalog
            .products
            .iter_mut()
            .flat_map(|p| &mut p.skus)
            .find(|s| s.id == id)
    }

    pub(super) fn created_at(&self, sku: &Sku) -> NaiveDateTime {
        self.created.get(&sku.id).copied().unwrap_or(sku.updated_at)
    }

    pub(super) fn take_row_id(&mut self) -> u64 {
        let id = self.next_row_id;
        self.next_row_id += 1;
        id
    }

    /// Inserts (or replaces) a SKU in its product, creating the product if needed.
    pub(super) fn add_sku(&mut self, sku: Sku) {
        self.remove_sku(sku.id);
        if let Some(max) = sku.stocks.iter().map(|r| r.row_id + 1).max() {
            self.next_row_id = self.next_row_id.max(max);
        }
        self.created.insert(sku.id, sku.updated_at);
        match self
            .catalog
            .products
            .iter_mut()
            .find(|p| p.id == sku.product_id)
        {
            Some(p) => p.skus.push(sku),
            None => self.catalog.products.push(Product {
                id: sku.product_id,
                name: format!("Produto {}", sku.product_id),
                skus: vec![sku],
                brand_id: None,
                category_ids: Vec::new(),
                collection_ids: Vec::new(),
                active: true,
            }),
        }
    }

    pub(super) fn remove_sku(&mut self, id: u64) {
        for p in &mut self.catalog.products {
            p.skus.retain(|s| s.id != id);
        }
        self.created.remove(&id);
    }
}

struct Entry {
    seq: u64,
    req: RecordedRequest,
}

/// Received requests in arrival order. The status is filled in when the outcome is known;
/// until then (and for dropped connections) it stays 0.
#[derive(Default)]
pub(super) struct Log {
    entries: Vec<Entry>,
    next_seq: u64,
}

impl Log {
    pub(super) fn push(&mut self, req: RecordedRequest) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push(Entry { seq, req });
        seq
    }

    /// Sets the outcome of entry `seq` (a no-op if the log was cleared meanwhile).
    pub(super) fn finish(&mut self, seq: u64, status: u16, applied: bool) {
        if let Some(e) = self.entries.iter_mut().rev().find(|e| e.seq == seq) {
            e.req.status = status;
            e.req.applied = applied;
        }
    }

    pub(super) fn all(&self) -> Vec<RecordedRequest> {
        self.entries.iter().map(|e| e.req.clone()).collect()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &RecordedRequest> {
        self.entries.iter().map(|e| &e.req)
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }
}
