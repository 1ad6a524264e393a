//! What a run did, item by item: the data behind the xlsx report, the log summary and `status`.
//!
//! A rejected row or a failed item is data here, not an error that aborts the run.

pub mod xlsx;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Exit codes (README.md, Exit codes).
pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_FAILED: i32 = 3;
pub const EXIT_REJECTED: i32 = 4;

/// The code of several results: a whole failure outranks invalid input, which outranks
/// rejected items.
pub fn worst_exit(codes: impl IntoIterator<Item = i32>) -> i32 {
    let rank = |c: i32| match c {
        EXIT_FAILED => 3,
        EXIT_INVALID => 2,
        EXIT_REJECTED => 1,
        _ => 0,
    };
    codes
        .into_iter()
        .max_by_key(|c| rank(*c))
        .unwrap_or(EXIT_OK)
}

/// Which value of a SKU a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Quantity { stock_id: u64 },
    MinQuantity { stock_id: u64 },
    PriceSale,
    PriceDiscount,
    PriceCost,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Quantity { stock_id } => write!(f, "quantity (stock {stock_id})"),
            Field::MinQuantity { stock_id } => write!(f, "min_quantity (stock {stock_id})"),
            Field::PriceSale => f.write_str("price_sale"),
            Field::PriceDiscount => f.write_str("price_discount"),
            Field::PriceCost => f.write_str("price_cost"),
        }
    }
}

/// A changed value: a quantity, or money (always shown with two decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Qty(i64),
    Money(rust_decimal::Decimal),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Qty(q) => write!(f, "{q}"),
            Value::Money(m) => write!(f, "{:.2}", m),
        }
    }
}

/// What happened to a change. Messages are shared by every change of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Planned,
    DryRun,
    Applied,
    /// Sent by an interrupted run; the store already held it, so it was checkpointed, not resent.
    AlreadyApplied,
    Failed(Arc<str>),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Planned => f.write_str("planned"),
            Outcome::DryRun => f.write_str("planned (dry run)"),
            Outcome::Applied => f.write_str("applied"),
            Outcome::AlreadyApplied => {
                f.write_str("already applied (checked after an interrupted run)")
            }
            Outcome::Failed(m) => f.write_str(m),
        }
    }
}

/// One changed value. Kept small: a full push of a big catalog has millions of them.
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub key: Arc<str>,
    pub sku_id: u64,
    pub product_id: u64,
    pub field: Field,
    pub old: Option<Value>,
    pub new: Value,
    pub outcome: Outcome,
}

/// A value the store holds that differs from what the ERP says (audit jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub key: Arc<str>,
    pub sku_id: u64,
    pub field: Field,
    /// `None`: the store's export has no value for it (the SKU is not in the export, or not
    /// linked to that stock).
    pub store: Option<Value>,
    pub erp: Value,
}

#[derive(Debug, Clone)]
pub struct RejectedRow {
    pub file: String,
    pub row: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct UnmatchedKey {
    pub key: String,
    pub row: u64,
    /// Shared between rows where it can be: an export may carry many keys the store lacks.
    pub reason: Cow<'static, str>,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub job: String,
    pub store: String,
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub dry_run: bool,
    pub full: bool,
    /// The source had not changed since the last complete sync: nothing was read or sent.
    pub skipped: bool,
    pub source_file: Option<PathBuf>,
    pub source_hash: Option<String>,
    pub rows_read: u64,
    pub rows_valid: u64,
    pub matched_skus: u64,
    pub products_written: u64,
    pub products_failed: u64,
    pub changes: Vec<ChangeRow>,
    pub rejected: Vec<RejectedRow>,
    pub unmatched: Vec<UnmatchedKey>,
    /// Requests sent per `METHOD route` (every attempt).
    pub requests: BTreeMap<String, u64>,
    /// 429 answers seen (should stay 0).
    pub rate_limited: u64,
    /// Planned writes per route and the time the rate limits make them take (dry run and plan).
    pub plan: Vec<(String, u64)>,
    pub plan_eta_secs: f64,
    pub exit_code: i32,
    pub message: String,
    pub report_path: Option<PathBuf>,
    /// Writes an interrupted run left in flight that the store was found to hold already:
    /// checkpointed, not sent again, and not counted as writes.
    pub already_applied: u64,
    /// Audit jobs: every difference between the store and the ERP.
    pub differences: Vec<Difference>,
}

impl RunReport {
    pub fn new(job: &str, store: &str, kind: &str, dry_run: bool, full: bool) -> Self {
        let now = Utc::now();
        Self {
            job: job.into(),
            store: store.into(),
            kind: kind.into(),
            started_at: now,
            finished_at: now,
            dry_run,
            full,
            skipped: false,
            source_file: None,
            source_hash: None,
            rows_read: 0,
            rows_valid: 0,
            matched_skus: 0,
            products_written: 0,
            products_failed: 0,
            changes: Vec::new(),
            rejected: Vec::new(),
            unmatched: Vec::new(),
            requests: BTreeMap::new(),
            rate_limited: 0,
            plan: Vec::new(),
            plan_eta_secs: 0.0,
            exit_code: EXIT_OK,
            message: String::new(),
            report_path: None,
            already_applied: 0,
            differences: Vec::new(),
        }
    }

    /// Distinct SKUs with at least one change.
    pub fn changed_skus(&self) -> u64 {
        let mut ids: Vec<u64> = self.changes.iter().map(|c| c.sku_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() as u64
    }

    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Write requests sent (every attempt of every method but GET).
    pub fn writes_sent(&self) -> u64 {
        self.requests
            .iter()
            .filter(|(route, _)| !route.starts_with("GET "))
            .map(|(_, n)| n)
            .sum()
    }

    /// The one-line summary logged at the end of every run.
    pub fn summary_line(&self) -> String {
        let mut s = format!(
            "job {}: {} — {} SKUs changed by {} writes ({} failed), {} rows read, {} rejected, {} unmatched, {} requests, {} × 429, exit {}",
            self.job,
            if self.message.is_empty() {
                "done"
            } else {
                &self.message
            },
            self.changed_skus(),
            self.products_written,
            self.products_failed,
            self.rows_read,
            self.rejected.len(),
            self.unmatched.len(),
            self.total_requests(),
            self.rate_limited,
            self.exit_code,
        );
        if self.already_applied > 0 {
            s.push_str(&format!(
                ", {} interrupted writes found already applied",
                self.already_applied
            ));
        }
        if self.kind == "audit" {
            s.push_str(&format!(", {} differences", self.differences.len()));
        }
        if self.dry_run {
            s.push_str(" (dry run: nothing sent)");
        }
        if let Some(p) = &self.report_path {
            s.push_str(&format!(", report {}", p.display()));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_precedence() {
        assert_eq!(worst_exit([0, 4, 0]), 4);
        assert_eq!(worst_exit([4, 3]), 3);
        assert_eq!(worst_exit([2, 4]), 2);
        assert_eq!(worst_exit([]), 0);
    }
}
