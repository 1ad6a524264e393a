//! A `kind = "stock"` run (README.md, What a run does): source → guards → index → plan → send → checkpoints → report.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::config::JobSettings;
use crate::index::{self, SkuIndex};
use crate::mapping::StockTarget;
use crate::model::StockEntry;
use crate::report::{EXIT_FAILED, EXIT_INVALID, Outcome, RunReport};
use crate::shop::ShopClient;
use crate::state::StateStore;
use crate::util::progress_bar;

use super::RunOptions;
use super::common::{
    Fail, SendError, begin_writes, fail, feed_guards, finish_code, finish_run, job_inputs,
    match_guard, open_source, record_failure, refresh_index, report_feed, send_all, state_fail,
};
use super::feed::{StockFeed, read_stock_feed};
use super::plan::{PlanInput, StockPlan, plan_stock};

pub const SYNC_ROUTE: &str = "POST catalog/products/{id}/stocks/sync";

/// Runs one stock job; never panics on bad input, every outcome ends up in the report.
pub async fn run(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    report: &mut RunReport,
) {
    let result = run_inner(job, client, state, opts, report).await;
    record_failure(report, result);
}

async fn run_inner(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<(), Fail> {
    let (source, mapping) = job_inputs(job)?;
    let stock_mapping = mapping
        .stock
        .clone()
        .ok_or_else(|| fail(EXIT_INVALID, "the mapping has no [stock] section"))?;

    // 1. The source: newest stable file, skipped when already synced.
    let Some(mut src) =
        open_source(job, &source, mapping.stock_columns(), state, opts, report).await?
    else {
        return Ok(());
    };

    // 2. The store side: logistics stocks and the SKU index.
    let stocks = client
        .logistics_stocks()
        .await
        .map_err(|e| fail(EXIT_FAILED, format!("cannot list the store's stocks: {e}")))?;
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
        .map(|(t, _)| match t {
            StockTarget::Default => default_stock,
            StockTarget::Stock(id) => *id,
        })
        .filter(|id| !stocks.iter().any(|s| s.id == *id))
        .collect();
    unknown.dedup();
    if !unknown.is_empty() {
        let known: Vec<String> = stocks
            .iter()
            .map(|s| format!("{} ({})", s.id, s.name))
            .collect();
        return Err(fail(
            EXIT_FAILED,
            format!(
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
            ),
        ));
    }
    let sku_index: SkuIndex = refresh_index(job, client, state, opts).await?;
    let lookup = Arc::new(sku_index.lookup(mapping.match_field));

    // 3. The feed, matched while it streams in.
    let feed: StockFeed = {
        let p = src.path.clone();
        let m = mapping.clone();
        let l = lookup.clone();
        let (format, sheet) = (source.format, source.sheet.clone());
        tokio::task::spawn_blocking(move || read_stock_feed(&p, format, sheet.as_deref(), &m, &l))
            .await
            .map_err(|e| fail(EXIT_FAILED, format!("reading the source failed: {e}")))?
            .map_err(|e| fail(EXIT_INVALID, e.to_string()))?
    };
    report_feed(report, &feed);

    feed_guards(job, &src.record, feed.rows_valid, &src.path)?;
    match_guard(&mapping, &feed, &src.path)?;
    let mut pushed = state.pushed_load(&job.name).map_err(state_fail)?;
    // Writes an earlier run left in flight may or may not have landed: what was pushed before
    // them no longer says what the store holds, so those values are planned again from the feed.
    let intents = state.intents_load(&job.name).map_err(state_fail)?;
    for e in intents.values().flatten() {
        pushed.remove(&(e.sku_id, e.stock_id));
    }

    // 4. Plan.
    let plan: StockPlan = plan_stock(&PlanInput {
        feed: &feed,
        skus: &sku_index.skus,
        lookup: &lookup,
        match_field: mapping.match_field,
        pushed: &pushed,
        mapping: &stock_mapping,
        default_stock,
        full: opts.full,
    });
    report.matched_skus = plan.matched_skus;
    report.changes = plan.changes.clone();
    let writes = plan.products.len() as u64;
    report.plan = vec![(SYNC_ROUTE.to_string(), writes)];
    // The quota of a window can be spent at once; each further `limit` requests wait a window.
    let limits = client.limiter().limits;
    report.plan_eta_secs =
        (writes.saturating_sub(1) / u64::from(limits.default)) as f64 * limits.window.as_secs_f64();

    // 5. The zero guard, once matching is known.
    if plan.matched_skus > 0 {
        let pct =
            Decimal::from(plan.zeroed_skus) * Decimal::from(100) / Decimal::from(plan.matched_skus);
        if pct > job.max_zeroed_pct {
            return Err(fail(
                EXIT_FAILED,
                format!(
                    "guard: {} of {} matched SKUs ({}%) would drop to zero stock (max_zeroed_pct = {}); nothing was sent",
                    plan.zeroed_skus,
                    plan.matched_skus,
                    pct.round_dp(1),
                    job.max_zeroed_pct
                ),
            ));
        }
    }
    src.record.last_good_rows = Some(feed.rows_valid);

    tracing::info!(
        job = %job.name,
        products = writes,
        entries = plan.entries(),
        eta_secs = report.plan_eta_secs.round() as u64,
        "Plan: {writes} × {SYNC_ROUTE}"
    );
    if opts.dry_run {
        for c in report.changes.iter_mut() {
            c.outcome = Outcome::DryRun;
        }
        report.message = format!("dry run: {writes} stocks/sync requests planned");
        finish_code(report);
        return Ok(());
    }

    // 6. Send, checkpointing each success.
    begin_writes(job, state, &mut src).await?;
    let failed = send_plan(job, client, state, opts, plan, intents, report).await?;
    finish_run(job, state, src, failed, report)
}

/// Sends every product's `stocks/sync`; returns how many failed. Stops early (exit 3) when
/// the store refuses the credentials or stays unreachable.
async fn send_plan(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    plan: StockPlan,
    intents: HashMap<u64, Vec<StockEntry>>,
    report: &mut RunReport,
) -> Result<u64, Fail> {
    let mut products = plan.products;

    // Writes left in flight by a run that died: when the plan sends exactly those values again
    // and the store already holds them, they are checkpointed instead of sent. Otherwise their
    // pushed values are forgotten (durably, before the intent goes) so the store is put right by
    // this plan or, for SKUs the feed no longer covers, by the next one that names them.
    let mut outcomes: HashMap<u64, Outcome> = HashMap::new();
    for (product, entries) in intents {
        if products.get(&product) == Some(&entries) {
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
                        state
                            .checkpoint_stock(&job.name, product, &entries)
                            .await
                            .map_err(state_fail)?;
                        products.remove(&product);
                        outcomes.insert(product, Outcome::AlreadyApplied);
                        report.already_applied += 1;
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(job = %job.name, product, error = %e, "Cannot check an interrupted write; sending it again");
                }
            }
        }
        state
            .forget_interrupted(&job.name, product, &entries)
            .await
            .map_err(state_fail)?;
    }

    let progress = opts.progress.then(|| {
        progress_bar(
            products.len() as u64,
            "{pos}/{len} products",
            job.name.clone(),
        )
    });

    let sent = send_all(
        products.into_iter().collect(),
        client.store().max_in_flight,
        progress.as_ref(),
        opts.cancel.as_ref(),
        |(product, entries): (u64, Vec<StockEntry>)| async move {
            let r = send_one(job, client, state, product, &entries).await;
            ((product, entries), r)
        },
    )
    .await;
    if sent.stale_index {
        let _ = index::invalidate(state, &client.store().name);
    }

    let mut failed = 0u64;
    for ((product, _), r) in sent.results {
        match r {
            Ok(()) => {
                report.products_written += 1;
                outcomes.insert(product, Outcome::Applied);
            }
            Err(msg) => {
                failed += 1;
                outcomes.insert(product, Outcome::Failed(Arc::from(msg)));
            }
        }
    }
    report.products_failed = failed;
    for c in report.changes.iter_mut() {
        if let Some(o) = outcomes.get(&c.product_id) {
            c.outcome = o.clone();
        }
    }
    if let Some(why) = sent.stopped {
        report.exit_code = EXIT_FAILED;
        report.message = format!("stopped: {why}");
    }
    Ok(failed)
}

async fn send_one(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    product: u64,
    entries: &[StockEntry],
) -> Result<(), SendError> {
    state.intent_record(&job.name, product, entries).await?;
    match client.stocks_sync(product, entries).await {
        Ok(()) => {
            state.checkpoint_stock(&job.name, product, entries).await?;
            Ok(())
        }
        Err(e) => {
            // A refusal with a status was not applied; a transport failure may have been, and the
            // next run checks it against the store before sending again.
            if e.status().is_some() {
                let _ = state.intent_clear(&job.name, product);
            }
            Err(e.into())
        }
    }
}
