//! A `kind = "price"` run, as a [`JobKind`] of the job driver (`src/pipeline/driver.rs`): the
//! price feed, interrupted writes settled against the refreshed index, the price rules and plan,
//! and `batch-update-skus` writes.
//!
//! Every write is recorded as an intent before it leaves and checkpointed only once the store
//! has applied it. All writes are `batch-update-skus` carrying only the fields the plan changes.
//! One product's writes go one after another, each followed to its end: the progress endpoint
//! knows only the product's most recent batch, so a second batch in flight would make the first
//! one's progress unknowable. Products go concurrently.
//!
//! A rerun after a crash settles the interrupted writes first, against the freshly refreshed
//! index: a SKU that shows what was sent is checkpointed (and not sent again); any other has
//! those fields' pushed values forgotten, so the feed plans it again whatever the write did.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::config::JobSettings;
use crate::mapping::PriceMapping;
use crate::model::{IndexedSku, PriceFields};
use crate::report::{ChangeRow, Outcome, RunReport, RunResult};
use crate::shop::{ApiError, ShopClient};
use crate::state::{Outcome as Settle, StateStore, price_key};

use super::RunOptions;
use super::common::{Fail, FileJob, SendError, SendFailure, section, state_fail};
use super::driver::{
    Executed, Fed, FeedInputs, FeedSummary, FileSpec, HistoryInputs, JobContext, JobKind,
    PlanInputs, PlanSummary, RouteNote, SendSummary, SendsOps, Settled, send_ops,
};
use super::feed::{PriceFeed, read_price_feed};
use super::import::{self, ImportLine, ImportResult};
use super::price_plan::{PriceOp, PricePlan, PricePlanInput, plan_prices};

/// How long an asynchronous batch update may take before the run stops waiting for it.
const BATCH_PROGRESS_TIMEOUT: Duration = Duration::from_secs(600);

/// A price as the API wants it: a JSON number with two decimals, written from the decimal text
/// (never through a binary float).
pub fn money(d: Decimal) -> Value {
    Value::Number(
        format!("{:.2}", d)
            .parse()
            .expect("a decimal's text is a JSON number"),
    )
}

/// The price job kind.
pub struct PriceKind;

impl JobKind for PriceKind {
    type Inputs = FileJob<PriceMapping>;
    /// Imports an earlier run left pending, resumed before planning.
    type Prepared = ImportResult;
    type Feed = PriceFeed;
    /// SKU id → the fields this job pushed, interrupted writes settled.
    type History = HashMap<u64, PriceFields>;
    type Plan = RoutedPlan;

    fn inputs(job: &JobSettings) -> Result<Self::Inputs, Fail> {
        FileJob::load(job, |m| section(m.price.as_ref(), "price"))
    }

    fn file(inputs: &Self::Inputs) -> Option<FileSpec<'_>> {
        Some(inputs.spec(inputs.mapping.price_columns()))
    }

    /// Resumes the imports an earlier run left pending (never in a dry run): their lines that
    /// landed are checkpointed before the plan, so they are not planned again.
    async fn prepare(cx: JobContext<'_>, _: &Self::Inputs) -> Result<ImportResult, Fail> {
        if cx.opts.dry_run {
            return Ok(ImportResult::default());
        }
        let resumed = import::resume_pending(cx).await;
        if let Some(why) = &resumed.stopped {
            return Err(super::common::fail(crate::report::EXIT_FAILED, why.clone()));
        }
        Ok(resumed)
    }

    async fn feed(_cx: JobContext<'_>, at: FeedInputs<'_, Self>) -> Result<Fed<PriceFeed>, Fail> {
        let feed = at.file()?.read(read_price_feed).await?;
        let summary = FeedSummary::of(&feed);
        Ok(Fed::Read(feed, Some(summary)))
    }

    /// Settles the interrupted writes against the freshly refreshed index (recorded unless this
    /// is a dry run).
    async fn history(
        cx: JobContext<'_>,
        at: HistoryInputs<'_, Self>,
    ) -> (u64, Result<HashMap<u64, PriceFields>, Fail>) {
        let index = at.index;
        let (job, state) = (cx.job, cx.state);
        let mut pushed = match state.prices_pushed_load(&job.name).map_err(state_fail) {
            Ok(p) => p,
            Err(e) => return (0, Err(e)),
        };
        let intents = match state.price_pending(&job.name).map_err(state_fail) {
            Ok(i) => i,
            Err(e) => return (0, Err(e)),
        };
        let interrupted = settle_interrupted(intents, &index.skus, &mut pushed);
        let landed = interrupted.landed.len() as u64;
        if !cx.opts.dry_run
            && let Err(e) = interrupted
                .record(job, state, &cx.client.store().name)
                .await
        {
            return (landed, Err(state_fail(e)));
        }
        (landed, Ok(pushed))
    }

    fn plan(at: &PlanInputs<'_, Self>) -> RoutedPlan {
        let file = at.file.map(|f| f.display().to_string()).unwrap_or_default();
        let plan = plan_prices(&PricePlanInput {
            feed: at.feed,
            skus: &at.index.skus,
            pushed: at.history,
            mapping: &at.inputs.section,
            file: &file,
            full: at.full,
        });
        RoutedPlan {
            plan,
            import: false,
            resumed: at.prepared.clone(),
        }
    }

    fn summarize(routed: &RoutedPlan) -> Option<PlanSummary> {
        let plan = &routed.plan;
        let mut per_route: BTreeMap<&str, u64> = BTreeMap::new();
        for op in &plan.ops {
            *per_route.entry(op.route()).or_default() += 1;
        }
        let mut changes = plan.changes.clone();
        // Lines of a resumed import whose SKU this plan does not touch again.
        let planned: std::collections::HashSet<u64> = changes.iter().map(|c| c.sku_id).collect();
        changes.extend(
            routed
                .resumed
                .rows
                .iter()
                .filter(|r| !planned.contains(&r.sku_id))
                .cloned(),
        );
        Some(PlanSummary {
            matched_skus: plan.matched_skus,
            changes,
            refused: plan.refused.clone(),
            routes: per_route.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            writes: plan.ops.len() as u64,
        })
    }

    fn route(cx: JobContext<'_>, routed: &mut RoutedPlan, api_eta_secs: f64) -> Option<RouteNote> {
        let lines = import_lines(&routed.plan).len() as u64;
        let choice = import::choose(
            cx.job,
            cx.opts.publish_configured,
            cx.client.store().queue_poll,
            lines,
            api_eta_secs,
        );
        routed.import = choice.import;
        let (route, eta) = if choice.import {
            ("an import", choice.import_eta_secs)
        } else {
            ("the API", api_eta_secs)
        };
        let files = import::files_for(lines);
        Some(RouteNote {
            message: format!(
                "route: {route} ({}; API ETA {}, import estimate {})",
                choice.why,
                crate::util::human_secs(choice.api_eta_secs),
                crate::util::human_secs(choice.import_eta_secs)
            ),
            eta_secs: eta,
            routes: choice.import.then(|| {
                vec![(
                    format!("catalog/skus/import ({lines} lines in {files} file(s))"),
                    files,
                )]
            }),
        })
    }

    fn log_plan(job: &JobSettings, routed: &RoutedPlan, report: &RunReport) {
        tracing::info!(
            job = %job.name,
            requests = routed.plan.ops.len() as u64,
            skus = report.changed_skus(),
            "Plan: {}",
            report
                .plan
                .iter()
                .map(|(r, n)| format!("{n} × {r}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    fn dry_run_result(_plan: &RoutedPlan, writes: u64) -> RunResult {
        RunResult::DryRun {
            writes,
            what: Some("price"),
            note: None,
        }
    }

    async fn execute(cx: JobContext<'_>, at: &PlanInputs<'_, Self>, plan: RoutedPlan) -> Executed {
        send_ops(cx, at, plan).await
    }
}

impl SendsOps for PriceKind {
    type Op = PriceSend;

    // Price writes leave the SKU index alone when they find a SKU gone.
    const INVALIDATE_STALE_INDEX: bool = false;

    /// Interrupted writes were settled before the plan; here the writes are grouped per
    /// product, to go one after another.
    async fn settle(
        cx: JobContext<'_>,
        routed: RoutedPlan,
        _history: &HashMap<u64, PriceFields>,
    ) -> Settled<PriceSend> {
        let RoutedPlan {
            plan,
            import,
            resumed,
        } = routed;
        let outcomes = resumed.outcomes.clone();
        let mut ops = Vec::new();
        if !resumed.outcomes.is_empty() {
            ops.push(PriceSend::Resumed(resumed));
        }
        if import {
            ops.push(PriceSend::Import {
                lines: import_lines(&plan),
                split: import::split_for(&cx.client.store().base_url),
                result: ImportResult::default(),
            });
            return Settled {
                ops,
                outcomes,
                already_applied: 0,
                error: None,
            };
        }
        let mut per_product: BTreeMap<u64, Vec<PriceOp>> = BTreeMap::new();
        for op in plan.ops {
            per_product.entry(op.product_id()).or_default().push(op);
        }
        ops.extend(per_product.into_values().map(|ops| {
            PriceSend::Product(ProductWrites {
                ops,
                results: Vec::new(),
            })
        }));
        Settled {
            ops,
            outcomes,
            already_applied: 0,
            error: None,
        }
    }

    async fn send(cx: JobContext<'_>, op: PriceSend) -> (PriceSend, Result<(), SendError>) {
        match op {
            PriceSend::Product(mut p) => {
                let store = &cx.client.store().name;
                let r = send_product(cx.job, cx.client, cx.state, store, cx.opts, &mut p).await;
                (PriceSend::Product(p), r)
            }
            PriceSend::Import { lines, split, .. } => {
                let result = import::run_import(cx, lines, split).await;
                (
                    PriceSend::Import {
                        lines: Vec::new(),
                        split,
                        result,
                    },
                    Ok(()),
                )
            }
            resumed @ PriceSend::Resumed(_) => (resumed, Ok(())),
        }
    }

    fn tally(results: Vec<(PriceSend, Result<(), SendFailure>)>, summary: &mut SendSummary) {
        for (op, r) in results {
            let p = match op {
                PriceSend::Product(p) => p,
                PriceSend::Import { result, .. } | PriceSend::Resumed(result) => {
                    summary.written += result.applied;
                    summary.failed += result.failed;
                    summary.import_files += result.files;
                    summary.outcomes.extend(result.outcomes);
                    if let Some(why) = result.stopped {
                        summary.stopped = Some(why);
                    }
                    continue;
                }
            };
            for (i, op) in p.ops.iter().enumerate() {
                // An op without a result of its own was never sent: it shares the product's.
                let result = p.results.get(i).cloned().unwrap_or_else(|| r.clone());
                let outcome = match result {
                    Ok(()) => {
                        summary.written += 1;
                        Outcome::Applied
                    }
                    Err(f) => {
                        summary.failed += 1;
                        f.outcome()
                    }
                };
                for (sku, _) in op.entries() {
                    summary.outcomes.insert(sku, outcome.clone());
                }
            }
        }
    }
}

/// A price plan and the route chosen for it.
pub struct RoutedPlan {
    pub plan: PricePlan,
    /// Sent as imports instead of API writes.
    pub import: bool,
    /// What resuming an earlier run's pending imports did.
    pub resumed: ImportResult,
}

/// What the driver sends for a price job.
pub enum PriceSend {
    /// One product's API writes.
    Product(ProductWrites),
    /// Every changed SKU, as import files of at most `split` lines.
    Import {
        lines: Vec<ImportLine>,
        split: usize,
        result: ImportResult,
    },
    /// The outcome of imports resumed before planning (nothing to send).
    Resumed(ImportResult),
}

/// The plan's changed SKUs as import lines (key and product from the plan's change rows).
fn import_lines(plan: &PricePlan) -> Vec<ImportLine> {
    let keys: HashMap<u64, &ChangeRow> = plan.changes.iter().map(|c| (c.sku_id, c)).collect();
    let mut out = Vec::new();
    for op in &plan.ops {
        for (sku_id, fields) in op.entries() {
            out.push(ImportLine {
                sku_id,
                product_id: op.product_id(),
                key: keys
                    .get(&sku_id)
                    .map_or_else(String::new, |c| c.key.to_string()),
                fields,
            });
        }
    }
    out
}

/// Writes an earlier run left in flight, split by what the freshly refreshed index shows.
#[derive(Debug, Default)]
struct Interrupted {
    /// The store shows every field sent: they landed.
    landed: Vec<(u64, PriceFields)>,
    /// Anything else: the outcome is unknown (lost, refused, or still to land).
    unconfirmed: Vec<(u64, PriceFields)>,
}

impl Interrupted {
    /// Landed writes are checkpointed; unconfirmed ones forget their pushed fields.
    async fn record(
        &self,
        job: &JobSettings,
        state: &StateStore,
        store: &str,
    ) -> Result<(), crate::state::StateError> {
        let ledger = state.ledger(&job.name)?;
        if !self.landed.is_empty() {
            let checkpoint = state.price_checkpoint(&job.name, store, &self.landed)?;
            ledger
                .settle_all(&keys(&self.landed), Settle::Applied(checkpoint))
                .await?;
        }
        if !self.unconfirmed.is_empty() {
            tracing::info!(
                job = %job.name,
                skus = self.unconfirmed.len(),
                "An interrupted run's price writes are not confirmed by the store; planning those SKUs again"
            );
            let forget = state.price_forget(&job.name, &self.unconfirmed)?;
            ledger
                .settle_all(&keys(&self.unconfirmed), Settle::Replanned(forget))
                .await?;
        }
        Ok(())
    }
}

/// The ledger keys of a write's SKUs.
fn keys(entries: &[(u64, PriceFields)]) -> Vec<String> {
    entries.iter().map(|(sku, _)| price_key(*sku)).collect()
}

/// Sorts the intents and applies the verdict to `pushed` (in memory), so the plan sends a
/// landed write no more and an unconfirmed one again.
fn settle_interrupted(
    intents: HashMap<u64, PriceFields>,
    skus: &HashMap<u64, IndexedSku>,
    pushed: &mut HashMap<u64, PriceFields>,
) -> Interrupted {
    let mut out = Interrupted::default();
    let mut intents: Vec<_> = intents.into_iter().collect();
    intents.sort_unstable_by_key(|(sku, _)| *sku);
    for (sku, sent) in intents {
        let shows = skus.get(&sku).is_some_and(|s| {
            let same =
                |want: Option<Decimal>, now: Option<Decimal>| want.is_none_or(|v| now == Some(v));
            same(sent.sale, s.price_sale)
                && same(sent.discount, s.price_discount)
                && same(sent.cost, s.price_cost)
        });
        let entry = pushed.entry(sku).or_default();
        if shows {
            entry.merge(&sent);
            out.landed.push((sku, sent));
        } else {
            entry.forget(&sent);
            out.unconfirmed.push((sku, sent));
        }
    }
    pushed.retain(|_, p| *p != PriceFields::default());
    out
}

/// One product's writes, sent one after another, and what became of each.
pub struct ProductWrites {
    ops: Vec<PriceOp>,
    results: Vec<Result<(), SendFailure>>,
}

/// One product's writes in order. A write refused outright leaves the next ones free to go;
/// after one whose outcome is unknown (or that stops the job) the rest wait for the next run.
async fn send_product(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    store: &str,
    opts: &RunOptions,
    p: &mut ProductWrites,
) -> Result<(), SendError> {
    let mut first_error: Option<SendError> = None;
    for op in &p.ops {
        if let Some(e) = &first_error
            && (e.status().is_none() || e.stops_job())
        {
            p.results.push(Err(SendFailure::failed(format!(
                "not sent: an earlier write of product {} did not finish ({e})",
                op.product_id()
            ))));
            continue;
        }
        if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            p.results.push(Err(SendFailure::failed(
                "not sent: the job stopped (shutting down; the next run sends the rest)",
            )));
            continue;
        }
        match send_one(job, client, state, store, op).await {
            Ok(()) => p.results.push(Ok(())),
            Err(e) => {
                p.results.push(Err(SendFailure::from(&e)));
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The batch update's body: the product, the selected SKUs, and only the fields being changed.
fn batch_body(product_id: u64, sku_ids: &[u64], values: &PriceFields) -> Value {
    let mut body = serde_json::Map::new();
    body.insert("product_id".into(), json!(product_id));
    body.insert("skus_id".into(), json!(sku_ids));
    for (name, value) in [
        ("price_sale", values.sale),
        ("price_discount", values.discount),
        ("price_cost", values.cost),
    ] {
        if let Some(d) = value {
            body.insert(name.into(), money(d));
        }
    }
    Value::Object(body)
}

async fn send_one(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    store: &str,
    op: &PriceOp,
) -> Result<(), SendError> {
    let entries = op.entries();
    let product_id = op.product_id();
    let sku_ids: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
    let body = match op {
        PriceOp::BatchUpdate { values, .. } | PriceOp::OneSku { values, .. } => {
            batch_body(product_id, &sku_ids, values)
        }
    };
    let ledger = state.ledger(&job.name)?;
    let keys = keys(&entries);
    ledger.intend(&state.price_ops(&entries)?).await?;
    let settle = |outcome| async {
        if let Err(e) = ledger.settle_all(&keys, outcome).await {
            tracing::warn!(job = %job.name, product_id, error = %e, "Cannot record how a price write ended; the next run checks it");
        }
    };
    let answer = match client.batch_update_skus(product_id, &body).await {
        Ok(answer) => answer,
        Err(e) => {
            // A refusal with a status was not applied; anything else is checked next run.
            let why = client.scrubber().scrub(&e.to_string());
            settle(if e.status().is_some() {
                Settle::Failed(why)
            } else {
                Settle::Unknown(why)
            })
            .await;
            return Err(e.into());
        }
    };
    // From here the write was accepted: until it is seen finished its outcome is unknown, and
    // the operations stay for the next run to check.
    if let Err(e) = wait_for_batch(client, product_id, &answer).await {
        // The reason is stored: never with a credential in it (the answer is the server's).
        settle(Settle::Unknown(client.scrubber().scrub(&e.to_string()))).await;
        return Err(e);
    }
    let checkpoint = state.price_checkpoint(&job.name, store, &entries)?;
    ledger
        .settle_all(&keys, Settle::Applied(checkpoint))
        .await?;
    Ok(())
}

fn is_finished(data: &Value) -> Option<bool> {
    let status = data
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    match status.as_deref() {
        Some("finished" | "done" | "completed" | "complete" | "success" | "processed") => {
            return Some(true);
        }
        Some("failed" | "error" | "canceled" | "cancelled") => return Some(false),
        _ => {}
    }
    if data
        .get("finished_at")
        .is_some_and(|f| !f.is_null() && f != "")
    {
        return Some(true);
    }
    None
}

/// A batch update answered `async` (or not finished): follow its progress endpoint until it
/// finishes, so the checkpoint records what the store really holds. Only this product's own
/// batch can be the most recent one the endpoint reports: its writes go one at a time.
async fn wait_for_batch(
    client: &ShopClient,
    product_id: u64,
    answer: &Value,
) -> Result<(), SendError> {
    let sync = answer
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("sync"));
    let unknown = |why: String| {
        SendError::Unknown(format!(
            "the batch update of product {product_id} {why}; its outcome is unknown and the next run checks these SKUs against the store"
        ))
    };
    match is_finished(answer) {
        Some(true) => return Ok(()),
        Some(false) => return Err(unknown(format!("ended as {answer}"))),
        None if sync && answer.get("status").is_none() => return Ok(()),
        None => {}
    }
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        tokio::time::sleep(delay).await;
        let progress = client
            .batch_update_progress(product_id)
            .await
            .map_err(|e: ApiError| unknown(format!("could not be followed: {e}")))?;
        match is_finished(&progress) {
            Some(true) => return Ok(()),
            Some(false) => return Err(unknown(format!("ended as {progress}"))),
            None if started.elapsed() > BATCH_PROGRESS_TIMEOUT => {
                return Err(unknown(format!(
                    "was still not finished after {} s",
                    BATCH_PROGRESS_TIMEOUT.as_secs()
                )));
            }
            None => delay = (delay * 2).min(Duration::from_secs(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_with_two_decimals() {
        assert_eq!(money("12.9".parse().unwrap()).to_string(), "12.90");
        assert_eq!(money("19.99".parse().unwrap()).to_string(), "19.99");
        assert_eq!(money("7".parse().unwrap()).to_string(), "7.00");
    }
}
