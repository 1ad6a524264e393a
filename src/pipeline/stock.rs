//! A `kind = "stock"` run (README.md, What a run does), as a [`JobKind`] of the job driver
//! (`src/pipeline/driver.rs`): the store's logistics stocks, the stock feed, the zero guard, one
//! `stocks/sync` per product, and interrupted writes read back before they are sent again.

use std::collections::HashMap;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::config::JobSettings;
use crate::exports::{self, Wait};
use crate::mapping::{Mapping, StockMapping};
use crate::model::{Pushed, StockEntry};
use crate::report::{ChangeRow, EXIT_FAILED, Outcome, RunReport, RunResult};
use crate::shop::ShopClient;
use crate::shop::model::LogisticsStock;
use crate::state::{Outcome as Settle, StateStore, stock_key};

use super::common::{Fail, FileJob, SendError, SendFailure, fail, fail_with, section, state_fail};
use super::driver::{
    Executed, Fed, FeedInputs, FeedSummary, FileSpec, HistoryInputs, JobContext, JobKind,
    PlanInputs, PlanSummary, SendSummary, SendsOps, Settled, send_ops,
};
use super::feed::{StockFeed, read_stock_feed};
use super::plan::{PlanInput, StockPlan, StoreHeld, mapped_stock_ids, plan_stock, target_id};

pub const SYNC_ROUTE: &str = "POST catalog/products/{id}/stocks/sync";

/// The stock job kind.
pub struct StockKind;

/// What a stock job pushed before, and the writes an earlier run left in flight.
#[derive(Default)]
pub struct StockHistory {
    /// Pushed values, without those of interrupted writes (they no longer say what the store
    /// holds, so those values are planned again from the feed).
    pushed: HashMap<(u64, u64), Pushed>,
    /// Product id → the entries of its interrupted `stocks/sync`.
    intents: HashMap<u64, Vec<StockEntry>>,
    /// What the store held in the stocks this job never pushed to (several stocks only).
    store: HashMap<(u64, u64), StoreHeld>,
}

impl JobKind for StockKind {
    type Inputs = FileJob<StockMapping>;
    /// The store's default stock id, and whether it is the store's only stock.
    type Prepared = (u64, bool);
    type Feed = StockFeed;
    type History = StockHistory;
    type Plan = StockPlan;

    fn inputs(job: &JobSettings) -> Result<Self::Inputs, Fail> {
        FileJob::load(job, |m| section(m.stock.as_ref(), "stock"))
    }

    fn file(inputs: &Self::Inputs) -> Option<FileSpec<'_>> {
        Some(inputs.spec(inputs.mapping.stock_columns()))
    }

    async fn prepare(cx: JobContext<'_>, inputs: &Self::Inputs) -> Result<(u64, bool), Fail> {
        store_stocks(cx, &inputs.mapping, &inputs.section).await
    }

    async fn feed(_cx: JobContext<'_>, at: FeedInputs<'_, Self>) -> Result<Fed<StockFeed>, Fail> {
        let feed = at.file()?.read(read_stock_feed).await?;
        let summary = FeedSummary::of(&feed);
        Ok(Fed::Read(feed, Some(summary)))
    }

    async fn history(
        cx: JobContext<'_>,
        at: HistoryInputs<'_, Self>,
    ) -> (u64, Result<StockHistory, Fail>) {
        let load = || -> Result<_, Fail> {
            let pushed = cx.state.pushed_load(&cx.job.name).map_err(state_fail)?;
            let intents = cx.state.stock_pending(&cx.job.name).map_err(state_fail)?;
            Ok((pushed, intents))
        };
        let (mut pushed, intents) = match load() {
            Ok(loaded) => loaded,
            Err(e) => return (0, Err(e)),
        };
        let store = first_push_store_values(cx, at.inputs, *at.prepared, at.feed, &pushed).await;
        // Writes an earlier run left in flight may or may not have landed: what was pushed
        // before them no longer says what the store holds, so those values are planned again
        // from the feed.
        for e in intents.values().flatten() {
            pushed.remove(&(e.sku_id, e.stock_id));
        }
        (
            0,
            Ok(StockHistory {
                pushed,
                intents,
                store,
            }),
        )
    }

    fn plan(at: &PlanInputs<'_, Self>) -> StockPlan {
        plan_stock(&PlanInput {
            feed: at.feed,
            skus: &at.index.skus,
            lookup: at.lookup,
            match_field: at.inputs.mapping.match_field,
            pushed: &at.history.pushed,
            mapping: &at.inputs.section,
            default_stock: at.prepared.0,
            single_store_stock: at.prepared.1,
            store: &at.history.store,
            full: at.full,
        })
    }

    fn summarize(plan: &StockPlan) -> Option<PlanSummary> {
        let writes = plan.products.len() as u64;
        Some(PlanSummary {
            matched_skus: plan.matched_skus,
            changes: plan.changes.clone(),
            refused: Vec::new(),
            routes: vec![(SYNC_ROUTE.to_string(), writes)],
            writes,
        })
    }

    /// The zero guard, once matching is known.
    fn plan_guard(job: &JobSettings, plan: &StockPlan) -> Result<(), Fail> {
        if plan.matched_skus > 0 {
            let pct = Decimal::from(plan.zeroed_skus) * Decimal::from(100)
                / Decimal::from(plan.matched_skus);
            if pct > job.max_zeroed_pct {
                return Err(fail_with(
                    EXIT_FAILED,
                    RunResult::TooManyZeroed {
                        zeroed: plan.zeroed_skus,
                        matched: plan.matched_skus,
                        pct: pct.round_dp(1).to_string(),
                        max: job.max_zeroed_pct.to_string(),
                    },
                ));
            }
        }
        Ok(())
    }

    fn log_plan(job: &JobSettings, plan: &StockPlan, report: &RunReport) {
        let writes = plan.products.len() as u64;
        tracing::info!(
            job = %job.name,
            products = writes,
            entries = plan.entries(),
            eta_secs = report.plan_eta_secs.round() as u64,
            "Plan: {writes} × {SYNC_ROUTE}"
        );
    }

    fn dry_run_result(_plan: &StockPlan, writes: u64) -> RunResult {
        RunResult::DryRun {
            writes,
            what: Some("stocks/sync"),
            note: None,
        }
    }

    async fn execute(cx: JobContext<'_>, at: &PlanInputs<'_, Self>, plan: StockPlan) -> Executed {
        send_ops(cx, at, plan).await
    }

    fn outcome_key(change: &ChangeRow) -> u64 {
        change.product_id
    }
}

impl SendsOps for StockKind {
    type Op = (u64, Vec<StockEntry>);

    const INVALIDATE_STALE_INDEX: bool = true;

    /// Writes left in flight by a run that died: when the plan sends exactly those values again
    /// and the store already holds them, they are checkpointed instead of sent. Otherwise their
    /// pushed values are forgotten (durably, before the intent goes) so the store is put right
    /// by this plan or, for SKUs the feed no longer covers, by the next one that names them.
    async fn settle(
        cx: JobContext<'_>,
        plan: StockPlan,
        history: &StockHistory,
    ) -> Settled<Self::Op> {
        let JobContext {
            job, client, state, ..
        } = cx;
        let mut products = plan.products;
        let mut outcomes: HashMap<u64, Outcome> = HashMap::new();
        let mut already_applied = 0u64;
        let mut error = None;
        let ledger = match state.ledger(&job.name) {
            Ok(l) => l,
            Err(e) => {
                return Settled {
                    ops: Vec::new(),
                    outcomes,
                    already_applied,
                    error: Some(state_fail(e)),
                };
            }
        };
        for (&product, entries) in &history.intents {
            if products.get(&product) == Some(entries) {
                match client.product_stocks(product).await {
                    Ok(live) => {
                        let all_there = entries.iter().all(|e| {
                            live.iter().any(|l| {
                                l.sku_id == e.sku_id
                                    && l.stock_id == e.stock_id
                                    && l.quantity == e.quantity
                                    && l.min_quantity == e.min_quantity
                            })
                        });
                        if all_there {
                            let checkpoint = state.stock_checkpoint(&job.name, entries);
                            if let Err(e) = ledger
                                .settle(&stock_key(product), Settle::Applied(checkpoint))
                                .await
                            {
                                error = Some(state_fail(e));
                                break;
                            }
                            products.remove(&product);
                            outcomes.insert(product, Outcome::AlreadyApplied);
                            already_applied += 1;
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job = %job.name, product, error = %e, "Cannot check an interrupted write; sending it again");
                    }
                }
            }
            let forget = state.stock_forget(&job.name, entries);
            if let Err(e) = ledger
                .settle(&stock_key(product), Settle::Replanned(forget))
                .await
            {
                error = Some(state_fail(e));
                break;
            }
        }
        Settled {
            ops: products.into_iter().collect(),
            outcomes,
            already_applied,
            error,
        }
    }

    async fn send(
        cx: JobContext<'_>,
        (product, entries): Self::Op,
    ) -> (Self::Op, Result<(), SendError>) {
        let r = send_one(cx.job, cx.client, cx.state, product, &entries).await;
        ((product, entries), r)
    }

    fn tally(results: Vec<(Self::Op, Result<(), SendFailure>)>, summary: &mut SendSummary) {
        for ((product, _), r) in results {
            match r {
                Ok(()) => {
                    summary.written += 1;
                    summary.outcomes.insert(product, Outcome::Applied);
                }
                // Not applied as far as this run knows (the source is not marked synced), and
                // reported as refused or as unknown.
                Err(f) => {
                    summary.failed += 1;
                    summary.outcomes.insert(product, f.outcome());
                }
            }
        }
    }
}

/// The store's logistics stocks: the default one (returned), and every stock the mapping names
/// must exist.
pub async fn store_stocks(
    cx: JobContext<'_>,
    mapping: &Mapping,
    stock_mapping: &StockMapping,
) -> Result<(u64, bool), Fail> {
    let stocks = cx
        .client
        .logistics_stocks()
        .await
        .map_err(|e| fail(EXIT_FAILED, format!("cannot list the store's stocks: {e}")))?;
    mapped_stocks(mapping, stock_mapping, &stocks)
        .map(|default| (default, stocks.len() == 1))
        .map_err(|why| fail(EXIT_FAILED, why))
}

/// How long a first push waits for the stock exports its report's "old" values come from.
const FIRST_PUSH_EXPORT_WAIT: Duration = Duration::from_secs(15 * 60);

/// In a store with several logistics stocks, what the store holds in each mapped stock this job
/// never pushed to, from that stock's export: the SKU listing has only the total over all stocks,
/// so this is where a first run's report finds "old". For the report only: an export that cannot
/// be had leaves those values unknown, and the run goes on.
async fn first_push_store_values(
    cx: JobContext<'_>,
    inputs: &FileJob<StockMapping>,
    (default_stock, single_store_stock): (u64, bool),
    feed: &StockFeed,
    pushed: &HashMap<(u64, u64), Pushed>,
) -> HashMap<(u64, u64), StoreHeld> {
    if single_store_stock || feed.rows.is_empty() {
        return HashMap::new();
    }
    let mut ids = mapped_stock_ids(&inputs.section, default_stock);
    ids.retain(|id| !pushed.keys().any(|(_, s)| s == id));
    if ids.is_empty() {
        return HashMap::new();
    }
    let (job, client) = (cx.job, cx.client);
    let wait = Wait {
        timeout: job.queue_timeout.min(FIRST_PUSH_EXPORT_WAIT),
        poll_every: client.store().queue_poll,
    };
    tracing::info!(job = %job.name, stocks = ?ids, "First push to these stocks: reading their stock exports for the report's old quantities");
    match exports::stock_exports(client, &ids, wait, &inputs.mapping.export).await {
        Ok(rows) => rows
            .into_iter()
            .map(|(k, r)| {
                let held = StoreHeld {
                    quantity: r.quantity,
                    min_quantity: r.min_quantity,
                };
                (k, held)
            })
            .collect(),
        Err(e) => {
            tracing::warn!(job = %job.name, "{e}; the report shows the old quantities as unknown");
            HashMap::new()
        }
    }
}

async fn send_one(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    product: u64,
    entries: &[StockEntry],
) -> Result<(), SendError> {
    let ledger = state.ledger(&job.name)?;
    let key = stock_key(product);
    ledger.intend(&[state.stock_op(product, entries)?]).await?;
    match client.stocks_sync(product, entries).await {
        Ok(()) => {
            let checkpoint = state.stock_checkpoint(&job.name, entries);
            ledger.settle(&key, Settle::Applied(checkpoint)).await?;
            Ok(())
        }
        Err(e) => {
            // A refusal with a status was not applied; a transport failure may have been, and the
            // next run checks it against the store before sending again.
            // The reason is stored: never with a credential in it.
            let why = client.scrubber().scrub(&e.to_string());
            let outcome = if e.status().is_some() {
                Settle::Failed(why)
            } else {
                Settle::Unknown(why)
            };
            if let Err(se) = ledger.settle(&key, outcome).await {
                tracing::warn!(job = %job.name, product, error = %se, "Cannot record how a write ended; the next run checks it");
            }
            Err(e.into())
        }
    }
}

/// The stock `quantity` goes into (the mapping's `stock_id`, else the store's stock with the
/// lowest priority), once every stock the mapping names is one of the store's; else the sentence
/// that says which are not. Runs and `check` ask the same question.
pub fn mapped_stocks(
    mapping: &Mapping,
    stock_mapping: &StockMapping,
    stocks: &[LogisticsStock],
) -> Result<u64, String> {
    let default_stock = match stock_mapping.default_stock_id {
        Some(id) => id,
        None => stocks
            .iter()
            .min_by_key(|s| (s.priority, s.id))
            .map(|s| s.id)
            .unwrap_or(0),
    };
    let mut unknown: Vec<u64> = stock_mapping
        .columns
        .iter()
        .map(|(t, _)| target_id(*t, default_stock))
        .filter(|id| !stocks.iter().any(|s| s.id == *id))
        .collect();
    unknown.dedup();
    if !unknown.is_empty() {
        let known: Vec<String> = stocks
            .iter()
            .map(|s| format!("{} \"{}\"", s.id, s.name))
            .collect();
        return Err(format!(
            "the mapping {} names stock_id {} but the store's stocks are: {}",
            mapping.path.display(),
            unknown
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    }
    Ok(default_stock)
}
