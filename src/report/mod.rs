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

/// How many rejected rows, unmatched keys and planned changes the console and the log show.
pub const SHOWN_LINES: usize = 10;

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

    /// The first rejected rows and unmatched keys with their reasons, then how many more the
    /// report holds: what a merchant reads first when the summary says "5 rejected".
    pub fn reason_lines(&self, max: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let more = |n: usize, what: &str| {
            let place = self
                .report_path
                .as_ref()
                .map_or_else(|| "the report".to_string(), |p| p.display().to_string());
            format!("… and {n} more {what} in {place}")
        };
        for r in self.rejected.iter().take(max) {
            let cell = if r.column.is_empty() {
                String::new()
            } else {
                format!(", column {} = \"{}\"", r.column, r.value)
            };
            lines.push(format!(
                "rejected: {} row {}{cell}: {}",
                r.file, r.row, r.reason
            ));
        }
        if self.rejected.len() > max {
            lines.push(more(self.rejected.len() - max, "rejected rows"));
        }
        for u in self.unmatched.iter().take(max) {
            lines.push(format!(
                "unmatched: key \"{}\" (row {}): {}",
                u.key, u.row, u.reason
            ));
        }
        if self.unmatched.len() > max {
            lines.push(more(self.unmatched.len() - max, "unmatched keys"));
        }
        lines
    }

    /// The first changes, one per SKU and field (key, field, old → new), then how many more:
    /// what a dry run would change.
    pub fn change_lines(&self, max: usize) -> Vec<String> {
        let mut lines: Vec<String> = self
            .changes
            .iter()
            .take(max)
            .map(|c| {
                let old = c
                    .old
                    .as_ref()
                    .map_or_else(|| "(not pushed yet)".to_string(), |v| v.to_string());
                format!(
                    "{} (SKU {}) {}: {old} → {}",
                    c.key, c.sku_id, c.field, c.new
                )
            })
            .collect();
        if self.changes.len() > max {
            lines.push(format!(
                "… and {} more changes in the report",
                self.changes.len() - max
            ));
        }
        lines
    }

    /// The one-line summary logged at the end of every run.
    pub fn summary_line(&self) -> String {
        let mut s = format!(
            "job {}: {} — {} changed by {} ({} failed), {} read, {} rejected, {} unmatched, {}, {} × 429, exit {}",
            self.job,
            if self.message.is_empty() {
                "done"
            } else {
                &self.message
            },
            counted(self.changed_skus(), "SKU", "SKUs"),
            counted(self.products_written, "write", "writes"),
            self.products_failed,
            counted(self.rows_read, "row", "rows"),
            self.rejected.len(),
            self.unmatched.len(),
            counted(self.total_requests(), "request", "requests"),
            self.rate_limited,
            self.exit_code,
        );
        if self.already_applied > 0 {
            s.push_str(&format!(
                ", {} found already applied",
                counted(
                    self.already_applied,
                    "interrupted write",
                    "interrupted writes"
                )
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

/// "1 write", "0 writes", "2 writes".
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_counts_in_singular_and_plural() {
        let mut r = RunReport::new("estoque", "loja", "stock", false, false);
        r.products_written = 1;
        r.rows_read = 1;
        r.requests.insert("POST /stocks/sync".into(), 1);
        r.already_applied = 1;
        let line = r.summary_line();
        assert!(
            line.contains("0 SKUs changed by 1 write (0 failed)"),
            "{line}"
        );
        assert!(line.contains("1 row read"), "{line}");
        assert!(line.contains("1 request,"), "{line}");
        assert!(
            line.contains("1 interrupted write found already applied"),
            "{line}"
        );
        r.products_written = 2;
        r.rows_read = 3;
        assert!(r.summary_line().contains("by 2 writes"));
        assert!(r.summary_line().contains("3 rows read"));
    }

    #[test]
    fn exit_precedence() {
        assert_eq!(worst_exit([0, 4, 0]), 4);
        assert_eq!(worst_exit([4, 3]), 3);
        assert_eq!(worst_exit([2, 4]), 2);
        assert_eq!(worst_exit([]), 0);
    }
}
