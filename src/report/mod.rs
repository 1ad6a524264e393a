//! What a run did, item by item: the data behind the xlsx report, the log summary and `status`.
//!
//! A rejected row or a failed item is data here, not an error that aborts the run.

pub mod reason;
pub mod result;
pub mod text;
pub mod xlsx;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use reason::Reason;
pub use result::RunResult;
pub use text::Lang;
use text::{Counts, More};

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

impl Field {
    /// The field as the report's language names it: "estoque (depósito 1)", "preço de venda".
    pub fn label(&self, lang: Lang) -> String {
        let t = lang.text();
        match self {
            Field::Quantity { stock_id } => format!("{} ({} {stock_id})", t.quantity, t.stock_word),
            Field::MinQuantity { stock_id } => {
                format!("{} ({} {stock_id})", t.min_quantity, t.stock_word)
            }
            Field::PriceSale => t.price_sale.into(),
            Field::PriceDiscount => t.price_discount.into(),
            Field::PriceCost => t.price_cost.into(),
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
    /// The write may or may not have landed (no answer, no log entry): never counted as applied
    /// nor as failed; the reason says what happens next.
    Unknown(Arc<str>),
}

impl Outcome {
    /// The outcome as the report's language says it.
    pub fn text(&self, lang: Lang) -> String {
        let t = lang.text();
        match self {
            Outcome::Planned => t.planned.into(),
            Outcome::DryRun => t.planned_dry_run.into(),
            Outcome::Applied => t.applied.into(),
            Outcome::AlreadyApplied => t.already_applied.into(),
            Outcome::Failed(m) if t.failed.is_empty() => m.to_string(),
            Outcome::Failed(m) => format!("{}: {m}", t.failed),
            Outcome::Unknown(m) => format!("{}: {m}", t.outcome_unknown),
        }
    }
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
            Outcome::Unknown(m) => write!(f, "outcome unknown: {m}"),
        }
    }
}

/// Where a change's old value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OldFrom {
    /// The value this job last pushed successfully.
    #[default]
    Pushed,
    /// Nothing was pushed before: the store's value (SKU index, or the store's stock).
    Store,
}

/// One changed value. Kept small: a full push of a big catalog has millions of them (names
/// are not here: the report looks them up in [`RunReport::names`]).
#[derive(Debug, Clone)]
pub struct ChangeRow {
    pub key: Arc<str>,
    pub sku_id: u64,
    pub product_id: u64,
    pub field: Field,
    /// `None`: the store's value is not known either.
    pub old: Option<Value>,
    pub old_from: OldFrom,
    pub new: Value,
    /// The source cell's text as read (cut at [`CELL_TEXT_MAX`] characters), beside the value
    /// used after the rules; `None` when no cell gave it (a SKU zeroed by `missing = "zero"`).
    pub cell: Option<Box<str>>,
    pub outcome: Outcome,
}

/// How much of a source cell's text a report keeps.
pub const CELL_TEXT_MAX: usize = 64;

/// A SKU's names as the store shows them, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkuNames {
    pub product: Option<String>,
    pub variation: Option<String>,
}

/// The names of the SKUs `ids` names, from the SKU index: built when the report is, so change
/// rows stay small.
pub fn names_of(
    skus: &HashMap<u64, crate::model::IndexedSku>,
    ids: impl IntoIterator<Item = u64>,
) -> HashMap<u64, SkuNames> {
    ids.into_iter()
        .filter_map(|id| {
            let s = skus.get(&id)?;
            (s.title.is_some() || s.variation.is_some()).then(|| {
                (
                    id,
                    SkuNames {
                        product: s.title.clone(),
                        variation: s.variation.clone(),
                    },
                )
            })
        })
        .collect()
}

/// What a batch-edit run asked the store to do, for its report sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchEditAsked {
    /// The occurrence as `status` shows it.
    pub occurrence: String,
    /// The request body as sent (`attribute`, `operation_type`, `value`, `value_type`,
    /// `restrictions`).
    pub body: serde_json::Value,
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
    pub reason: Reason,
}

#[derive(Debug, Clone)]
pub struct UnmatchedKey {
    pub key: String,
    pub row: u64,
    /// Shared between rows where it can be: an export may carry many keys the store lacks.
    pub reason: Reason,
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
    /// Files sent as spreadsheet imports; `products_written` then counts their lines.
    pub import_files: u64,
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
    /// The language of the report and the summary line.
    pub lang: Lang,
    /// The zone the report's times are shown in (the config's `timezone`).
    pub timezone: chrono_tz::Tz,
    /// SKU id → names, for the SKUs the report lists.
    pub names: HashMap<u64, SkuNames>,
    /// Batch-edit jobs: what the edit asked.
    pub batch_edit: Option<BatchEditAsked>,
    /// The standard result `message` says, to be shown in `lang` (see [`RunReport::set_result`]).
    pub result: Option<RunResult>,
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
            import_files: 0,
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
            lang: Lang::default(),
            timezone: chrono_tz::America::Sao_Paulo,
            names: HashMap::new(),
            batch_edit: None,
            result: None,
        }
    }

    /// Sets the run's result: `message` in English (run records, the log), and the sentence
    /// the report shows in its language.
    pub fn set_result(&mut self, result: RunResult) {
        self.message = result.render(Lang::En);
        self.result = Some(result);
    }

    /// The run's result in the report's language. A message written over the standard result
    /// later (a failure) is shown as it is.
    pub fn result_text(&self) -> Cow<'_, str> {
        match &self.result {
            Some(r) if r.render(Lang::En) == self.message => r.render(self.lang).into(),
            _ => self.lang.text().result_message(&self.message),
        }
    }

    /// Changes whose write's outcome is unknown.
    pub fn unknown_outcomes(&self) -> u64 {
        self.changes
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Unknown(_)))
            .count() as u64
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
        let t = self.lang.text();
        let place = self.report_path.as_ref().map(|p| p.display().to_string());
        let mut lines = Vec::new();
        for r in self.rejected.iter().take(max) {
            let cell = (!r.column.is_empty()).then_some((r.column.as_str(), r.value.as_str()));
            lines.push((t.rejected_line)(
                &r.file,
                r.row,
                cell,
                r.reason.text(self.lang),
            ));
        }
        if self.rejected.len() > max {
            lines.push((t.more_line)(
                self.rejected.len() - max,
                More::Rejected,
                place.as_deref(),
            ));
        }
        for u in self.unmatched.iter().take(max) {
            lines.push((t.unmatched_line)(&u.key, u.row, u.reason.text(self.lang)));
        }
        if self.unmatched.len() > max {
            lines.push((t.more_line)(
                self.unmatched.len() - max,
                More::Unmatched,
                place.as_deref(),
            ));
        }
        lines
    }

    /// The first changes, one per SKU and field (key, field, old → new), then how many more:
    /// what a dry run would change.
    pub fn change_lines(&self, max: usize) -> Vec<String> {
        let t = self.lang.text();
        let mut lines: Vec<String> = self
            .changes
            .iter()
            .take(max)
            .map(|c| {
                let old = match (c.old, c.old_from) {
                    (None, _) => t.not_pushed_yet.to_string(),
                    (Some(v), OldFrom::Pushed) => v.to_string(),
                    (Some(v), OldFrom::Store) => format!("{v} ({})", t.old_store),
                };
                format!(
                    "{} (SKU {}) {}: {old} → {}",
                    c.key,
                    c.sku_id,
                    c.field.label(self.lang),
                    c.new
                )
            })
            .collect();
        if self.changes.len() > max {
            lines.push((t.more_line)(self.changes.len() - max, More::Changes, None));
        }
        lines
    }

    /// The one-line summary logged at the end of every run, in the report's language.
    pub fn summary_line(&self) -> String {
        (self.lang.text().summary)(&Counts {
            job: &self.job,
            message: &self.result_text(),
            changed_skus: self.changed_skus(),
            writes: self.products_written,
            import_files: self.import_files,
            failed: self.products_failed,
            unknown: self.unknown_outcomes(),
            rows: self.rows_read,
            rejected: self.rejected.len(),
            unmatched: self.unmatched.len(),
            requests: self.total_requests(),
            rate_limited: self.rate_limited,
            exit: self.exit_code,
            already_applied: self.already_applied,
            differences: (self.kind == "audit").then_some(self.differences.len()),
            dry_run: self.dry_run,
            report: self.report_path.as_ref().map(|p| p.display().to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_counts_in_singular_and_plural() {
        let mut r = RunReport::new("estoque", "loja", "stock", false, false);
        r.lang = Lang::En;
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
    fn the_summary_line_is_portuguese_by_default_and_counts_unknown_outcomes() {
        let mut r = RunReport::new("estoque", "loja", "stock", false, false);
        r.rows_read = 1;
        r.products_written = 2;
        r.message = "done".into();
        r.changes.push(ChangeRow {
            key: Arc::from("A-1"),
            sku_id: 7,
            product_id: 1,
            field: Field::PriceSale,
            old: None,
            old_from: OldFrom::Store,
            new: Value::Money(rust_decimal::Decimal::new(2490, 2)),
            cell: Some(" 24,90 ".into()),
            outcome: Outcome::Unknown(Arc::from("the batch never finished")),
        });
        let line = r.summary_line();
        assert!(
            line.starts_with("job estoque: concluído — 1 SKU alterado por 2 gravações"),
            "{line}"
        );
        assert!(line.contains("1 linha lida"), "{line}");
        assert!(line.contains("1 com resultado desconhecido"), "{line}");
        assert_eq!(r.unknown_outcomes(), 1);
        assert_eq!(
            r.changes[0].outcome.text(Lang::PtBr),
            "resultado desconhecido: the batch never finished"
        );
        assert_eq!(
            r.changes[0].outcome.to_string(),
            "outcome unknown: the batch never finished"
        );
        assert_eq!(
            Outcome::Failed(Arc::from("HTTP 422")).text(Lang::PtBr),
            "falhou: HTTP 422"
        );
        assert_eq!(
            Outcome::Failed(Arc::from("HTTP 422")).text(Lang::En),
            "HTTP 422"
        );
        assert_eq!(
            r.change_lines(10),
            ["A-1 (SKU 7) preço de venda: (ainda não enviado; valor da loja desconhecido) → 24.90"]
        );
        r.lang = Lang::En;
        assert!(
            r.summary_line().contains(", 1 unknown"),
            "{}",
            r.summary_line()
        );
        assert_eq!(
            Field::Quantity { stock_id: 2 }.label(Lang::PtBr),
            "estoque (depósito 2)"
        );
    }

    #[test]
    fn exit_precedence() {
        assert_eq!(worst_exit([0, 4, 0]), 4);
        assert_eq!(worst_exit([4, 3]), 3);
        assert_eq!(worst_exit([2, 4]), 2);
        assert_eq!(worst_exit([]), 0);
    }
}
