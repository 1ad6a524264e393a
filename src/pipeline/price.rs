//! A `kind = "price"` run: source → guards → index → rules and plan → send → checkpoints → report.
//!
//! Prices are absolute, so a price write is safe to repeat; still, every write is recorded as an
//! intent before it leaves and checkpointed after, and a rerun after a crash checks interrupted
//! SKUs against the freshly refreshed index before sending them again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::config::JobSettings;
use crate::report::{EXIT_FAILED, EXIT_INVALID, Outcome, RunReport};
use crate::shop::model::IndexedSku;
use crate::shop::{ApiError, ShopClient};
use crate::state::{PriceFields, StateStore};
use crate::util::progress_bar;

use super::RunOptions;
use super::common::{
    Fail, SendError, begin_writes, fail, feed_guards, finish_code, finish_run, job_inputs,
    match_guard, open_source, record_failure, refresh_index, report_feed, send_all, state_fail,
};
use super::feed::{PriceFeed, read_price_feed};
use super::price_plan::{PriceOp, PricePlan, PricePlanInput, plan_prices};

/// How long an asynchronous batch update may take before the run stops waiting for it.
const BATCH_PROGRESS_TIMEOUT: Duration = Duration::from_secs(600);

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

/// A price as the API wants it: a JSON number with two decimals, written from the decimal text
/// (never through a binary float).
pub fn money(d: Decimal) -> Value {
    Value::Number(
        format!("{:.2}", d)
            .parse()
            .expect("a decimal's text is a JSON number"),
    )
}

async fn run_inner(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<(), Fail> {
    let (source, mapping) = job_inputs(job)?;
    let price_mapping = mapping
        .price
        .clone()
        .ok_or_else(|| fail(EXIT_INVALID, "the mapping has no [price] section"))?;

    let Some(mut src) =
        open_source(job, &source, mapping.price_columns(), state, opts, report).await?
    else {
        return Ok(());
    };
    let sku_index = refresh_index(job, client, state, opts).await?;
    let lookup = Arc::new(sku_index.lookup(mapping.match_field));
    let feed: PriceFeed = {
        let (p, m, l) = (src.path.clone(), mapping.clone(), lookup.clone());
        let (format, sheet) = (source.format, source.sheet.clone());
        tokio::task::spawn_blocking(move || read_price_feed(&p, format, sheet.as_deref(), &m, &l))
            .await
            .map_err(|e| fail(EXIT_FAILED, format!("reading the source failed: {e}")))?
            .map_err(|e| fail(EXIT_INVALID, e.to_string()))?
    };
    report_feed(report, &feed);
    feed_guards(job, &src.record, feed.rows_valid, &src.path)?;
    match_guard(&mapping, &feed, &src.path)?;

    let pushed = state.prices_pushed_load(&job.name).map_err(state_fail)?;
    let file = src.path.display().to_string();
    let plan: PricePlan = plan_prices(&PricePlanInput {
        feed: &feed,
        skus: &sku_index.skus,
        pushed: &pushed,
        mapping: &price_mapping,
        file: &file,
        full: opts.full,
    });
    report.rejected.extend(plan.refused.iter().cloned());
    report.rejected.sort_by_key(|r| r.row);
    report.matched_skus = plan.matched_skus;
    report.changes = plan.changes.clone();
    let mut per_route: BTreeMap<&str, u64> = BTreeMap::new();
    for op in &plan.ops {
        *per_route.entry(op.route()).or_default() += 1;
    }
    report.plan = per_route.iter().map(|(r, n)| (r.to_string(), *n)).collect();
    let limits = client.limiter().limits;
    let writes = plan.ops.len() as u64;
    report.plan_eta_secs =
        (writes.saturating_sub(1) / u64::from(limits.default)) as f64 * limits.window.as_secs_f64();
    src.record.last_good_rows = Some(feed.rows_valid);
    tracing::info!(
        job = %job.name,
        requests = writes,
        skus = report.changed_skus(),
        "Plan: {}",
        report
            .plan
            .iter()
            .map(|(r, n)| format!("{n} × {r}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if opts.dry_run {
        for c in report.changes.iter_mut() {
            c.outcome = Outcome::DryRun;
        }
        report.message = format!("dry run: {writes} price requests planned");
        finish_code(report);
        return Ok(());
    }

    begin_writes(job, state, &mut src).await?;
    let failed = send_plan(job, client, state, &sku_index.skus, opts, plan, report).await?;
    finish_run(job, state, src, failed, report)
}

/// Sends every planned request; returns how many failed.
async fn send_plan(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    skus: &HashMap<u64, IndexedSku>,
    opts: &RunOptions,
    plan: PricePlan,
    report: &mut RunReport,
) -> Result<u64, Fail> {
    let store = client.store().name.clone();
    let mut outcomes: HashMap<u64, Outcome> = HashMap::new();
    // Writes an earlier run left in flight: the index was just refreshed, so when it already
    // shows the intended prices they landed, and are checkpointed instead of sent again.
    let intents = state.price_intents_load(&job.name).map_err(state_fail)?;
    let mut landed: Vec<(u64, PriceFields)> = Vec::new();
    let mut stale: Vec<u64> = Vec::new();
    for (sku, want) in intents {
        let shows = skus.get(&sku).is_some_and(|s| {
            want.sale.is_none_or(|v| s.price_sale == Some(v))
                && want.discount.is_none_or(|v| s.price_discount == Some(v))
                && want.cost.is_none_or(|v| s.price_cost == Some(v))
        });
        if shows {
            landed.push((sku, want));
        } else {
            stale.push(sku);
        }
    }
    state
        .price_intents_clear(&job.name, &stale)
        .map_err(state_fail)?;
    let ops: Vec<PriceOp> = plan
        .ops
        .into_iter()
        .filter(|op| {
            let done = op
                .entries()
                .iter()
                .all(|(sku, v)| landed.iter().any(|(s, w)| s == sku && w == v));
            if done {
                for (sku, _) in op.entries() {
                    outcomes.insert(sku, Outcome::AlreadyApplied);
                }
            }
            !done
        })
        .collect();
    if !landed.is_empty() {
        state
            .checkpoint_prices(&job.name, &store, &landed)
            .await
            .map_err(state_fail)?;
    }

    let progress = opts
        .progress
        .then(|| progress_bar(ops.len() as u64, "{pos}/{len} requests", job.name.clone()));
    let store = &store;
    let sent = send_all(
        ops,
        client.store().max_in_flight,
        progress.as_ref(),
        opts.cancel.as_ref(),
        |op| async move {
            let r = send_one(job, client, state, store, skus, &op).await;
            (op, r)
        },
    )
    .await;
    let mut failed = 0u64;
    for (op, r) in sent.results {
        let outcome = match r {
            Ok(()) => {
                report.products_written += 1;
                Outcome::Applied
            }
            Err(msg) => {
                failed += 1;
                Outcome::Failed(Arc::from(msg))
            }
        };
        for (sku, _) in op.entries() {
            outcomes.insert(sku, outcome.clone());
        }
    }
    report.products_failed = failed;
    for c in report.changes.iter_mut() {
        if let Some(o) = outcomes.get(&c.sku_id) {
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
    store: &str,
    skus: &HashMap<u64, IndexedSku>,
    op: &PriceOp,
) -> Result<(), SendError> {
    let entries = op.entries();
    let fields = |v: &PriceFields, body: &mut serde_json::Map<String, Value>| {
        for (name, value) in [
            ("price_sale", v.sale),
            ("price_discount", v.discount),
            ("price_cost", v.cost),
        ] {
            if let Some(d) = value {
                body.insert(name.into(), money(d));
            }
        }
    };
    // Build the body first: a SKU the index knows too little about is refused before any write.
    let body = match op {
        PriceOp::BatchUpdate {
            product_id,
            sku_ids,
            values,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("product_id".into(), json!(product_id));
            body.insert("skus_id".into(), json!(sku_ids));
            fields(values, &mut body);
            body
        }
        PriceOp::PutSku {
            sku_id,
            product_id,
            values,
        } => {
            let sku = skus
                .get(sku_id)
                .ok_or_else(|| SendError::Refused(format!("SKU {sku_id} is not in the index")))?;
            // `product_id` and `price_cost` are demanded even on a partial update; the current
            // values come from the index, which checkpoints keep fresh.
            let cost = values.cost.or(sku.price_cost).ok_or_else(|| {
                SendError::Refused(format!(
                    "SKU {sku_id} ({}): the store reported no price_cost, which this update requires; map price_cost",
                    sku.sku
                ))
            })?;
            let mut body = serde_json::Map::new();
            body.insert("product_id".into(), json!(product_id));
            body.insert("sku".into(), json!(sku.sku));
            body.insert("price_cost".into(), money(cost));
            if let Some(sale) = values.sale.or(sku.price_sale) {
                body.insert("price_sale".into(), money(sale));
            }
            fields(values, &mut body);
            body
        }
    };
    let body = Value::Object(body);
    state.price_intent_record(&job.name, &entries).await?;
    let result = match op {
        PriceOp::PutSku { sku_id, .. } => client.put_sku(*sku_id, &body).await,
        PriceOp::BatchUpdate { product_id, .. } => {
            match client.batch_update_skus(*product_id, &body).await {
                Ok(answer) => wait_for_batch(client, *product_id, &answer).await,
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => {
            state.checkpoint_prices(&job.name, store, &entries).await?;
            Ok(())
        }
        Err(e) => {
            // A refusal with a status was not applied; anything else is checked next run.
            if e.status().is_some() {
                let ids: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
                let _ = state.price_intents_clear(&job.name, &ids);
            }
            Err(e.into())
        }
    }
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
/// finishes, so the checkpoint records what the store really holds.
async fn wait_for_batch(
    client: &ShopClient,
    product_id: u64,
    answer: &Value,
) -> Result<(), ApiError> {
    let sync = answer
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("sync"));
    if sync || is_finished(answer) == Some(true) {
        return Ok(());
    }
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        tokio::time::sleep(delay).await;
        let progress = client.batch_update_progress(product_id).await?;
        match is_finished(&progress) {
            Some(true) => return Ok(()),
            Some(false) => {
                return Err(ApiError::Status {
                    method: "GET".into(),
                    route: format!("catalog/products/{product_id}/skus/batch-update-skus-progress"),
                    status: 200,
                    message: format!("the batch update ended as {progress}"),
                    body: progress.to_string(),
                });
            }
            None if started.elapsed() > BATCH_PROGRESS_TIMEOUT => {
                return Err(ApiError::Exhausted {
                    method: "GET".into(),
                    route: format!("catalog/products/{product_id}/skus/batch-update-skus-progress"),
                    attempts: 0,
                    last: format!(
                        "still not finished after {} s",
                        BATCH_PROGRESS_TIMEOUT.as_secs()
                    ),
                    maybe_applied: true,
                });
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
