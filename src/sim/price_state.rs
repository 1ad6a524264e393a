//! The price state of the simulated store: the asynchronous batch-update queues and the counters
//! and switches tests read. Data only, so `store` can hold it while the price endpoints that
//! change it (`prices`) use `store`: the dependency goes one way.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use rust_decimal::Decimal;

/// Price-related state of the simulated store.
#[derive(Debug)]
pub(super) struct PriceState {
    /// Above this many selected SKUs, a batch update is asynchronous.
    pub async_threshold: usize,
    pub async_delay: Duration,
    /// Batch updates per product in the order received: the pending ones, behind the most
    /// recent finished one (older finished batches are no longer observable and are dropped).
    pub batches: HashMap<u64, Vec<Batch>>,
    /// Batch updates received while an earlier batch of the same product was still pending.
    pub queued_behind: usize,
    /// Admin edits (SKU, `price_sale`) made just before the next price write is handled: an
    /// edit that lands after the client read the SKU index. Off unless a test sets it.
    pub admin_sale_before_next_write: Vec<(u64, Decimal)>,
    /// Batch-edit calls applied so far.
    pub edits_applied: usize,
}

impl Default for PriceState {
    fn default() -> Self {
        Self {
            async_threshold: 10,
            async_delay: Duration::from_millis(300),
            batches: HashMap::new(),
            queued_behind: 0,
            admin_sale_before_next_write: Vec::new(),
            edits_applied: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Batch {
    pub sku_ids: Vec<u64>,
    pub values: Prices,
    pub queued_at: Instant,
    pub apply_at: Instant,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

impl Batch {
    pub(super) fn is_pending(&self) -> bool {
        self.finished_at.is_none()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Prices {
    pub cost: Option<Decimal>,
    pub sale: Option<Decimal>,
    pub discount: Option<Decimal>,
}
