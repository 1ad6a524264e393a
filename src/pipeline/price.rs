//! A `kind = "price"` run: source → guards → index → interrupted writes → rules and plan → send
//! → checkpoints → report.
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
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::config::JobSettings;
use crate::model::{IndexedSku, PriceFields};
use crate::report::{EXIT_FAILED, EXIT_INVALID, Outcome, RunReport};
use crate::shop::{ApiError, ShopClient};
use crate::state::StateStore;
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

    let mut pushed = state.prices_pushed_load(&job.name).map_err(state_fail)?;
    let intents = state.price_intents_load(&job.name).map_err(state_fail)?;
    let interrupted = settle_interrupted(intents, &sku_index.skus, &mut pushed);
    report.already_applied = interrupted.landed.len() as u64;
    if !opts.dry_run {
        interrupted
            .record(job, state, &client.store().name)
            .await
            .map_err(state_fail)?;
    }
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
    let failed = send_plan(job, client, state, opts, plan, report).await?;
    finish_run(job, state, src, failed, report)
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
        if !self.landed.is_empty() {
            state
                .checkpoint_prices(&job.name, store, &self.landed)
                .await?;
        }
        if !self.unconfirmed.is_empty() {
            tracing::info!(
                job = %job.name,
                skus = self.unconfirmed.len(),
                "An interrupted run's price writes are not confirmed by the store; planning those SKUs again"
            );
            state
                .price_intents_forget(&job.name, &self.unconfirmed)
                .await?;
        }
        Ok(())
    }
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
struct ProductWrites {
    ops: Vec<PriceOp>,
    results: Vec<Result<(), String>>,
}

/// Sends every planned request; returns how many failed.
async fn send_plan(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    plan: PricePlan,
    report: &mut RunReport,
) -> Result<u64, Fail> {
    let store = client.store().name.clone();
    let mut per_product: BTreeMap<u64, Vec<PriceOp>> = BTreeMap::new();
    for op in plan.ops {
        per_product.entry(op.product_id()).or_default().push(op);
    }
    let products: Vec<ProductWrites> = per_product
        .into_values()
        .map(|ops| ProductWrites {
            ops,
            results: Vec::new(),
        })
        .collect();

    let progress = opts.progress.then(|| {
        progress_bar(
            products.len() as u64,
            "{pos}/{len} products",
            job.name.clone(),
        )
    });
    let store = &store;
    let sent = send_all(
        products,
        client.store().max_in_flight,
        progress.as_ref(),
        opts.cancel.as_ref(),
        |mut p| async move {
            let r = send_product(job, client, state, store, opts, &mut p).await;
            (p, r)
        },
    )
    .await;
    let mut outcomes: HashMap<u64, Outcome> = HashMap::new();
    let mut failed = 0u64;
    for (p, r) in sent.results {
        for (i, op) in p.ops.iter().enumerate() {
            // An op without a result of its own was never sent: it shares the product's.
            let result = p.results.get(i).cloned().unwrap_or_else(|| r.clone());
            let outcome = match result {
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
            p.results.push(Err(format!(
                "not sent: an earlier write of product {} did not finish ({e})",
                op.product_id()
            )));
            continue;
        }
        if opts.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            p.results.push(Err(
                "not sent: the job stopped (shutting down; the next run sends the rest)".into(),
            ));
            continue;
        }
        match send_one(job, client, state, store, op).await {
            Ok(()) => p.results.push(Ok(())),
            Err(e) => {
                p.results.push(Err(e.to_string()));
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
    state.price_intent_record(&job.name, &entries).await?;
    let answer = match client.batch_update_skus(product_id, &body).await {
        Ok(answer) => answer,
        Err(e) => {
            // A refusal with a status was not applied; anything else is checked next run.
            if e.status().is_some() {
                let _ = state.price_intents_clear(&job.name, &sku_ids);
            }
            return Err(e.into());
        }
    };
    // From here the write was accepted: until it is seen finished its outcome is unknown, and
    // the intents stay for the next run to check.
    wait_for_batch(client, product_id, &answer).await?;
    state.checkpoint_prices(&job.name, store, &entries).await?;
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
        SendError::Refused(format!(
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
