//! The one job driver every file-driven kind runs on: source → store preparation → index → feed
//! → guards → interrupted writes → plan → plan guard → dry run or `begin_writes` → send →
//! checkpoints → report.
//!
//! The order of those steps, the dry-run branch, the guards, `begin_writes`, `send_all`, the
//! outcomes and `finish_run` live here, once. A kind ([`JobKind`]) supplies only what differs:
//! its mapping section and columns, how it reads its feed, what it prepares in the store, how it
//! settles the writes an earlier run left in flight, its planner, and how one operation is sent
//! (docs/write-protocol.md lists the rules those sends keep).
//!
//! Each stage hands back a summary ([`SourceSummary`], [`FeedSummary`], [`PlanSummary`], [`SendSummary`]) and the
//! driver writes it into the report in one place per stage.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use crate::config::JobSettings;
use crate::index::{self, KeyMatch, SkuIndex};
use crate::mapping::Mapping;
use crate::report::{
    ChangeRow, EXIT_FAILED, EXIT_INVALID, EXIT_OK, Outcome, RejectedRow, RunReport, UnmatchedKey,
};
use crate::shop::ShopClient;
use crate::source::{Format, SourceError};
use crate::state::StateStore;
use crate::util::progress_bar;

use super::RunOptions;
use super::common::{
    Fail, SendError, SendFailure, SourceSummary, begin_writes, fail, feed_guards, finish_code,
    finish_run, job_inputs, match_guard, open_source, record_failure, refresh_index, send_all,
};
use super::feed::Feed;

/// Reads a feed: (file, format, sheet, mapping, key lookup) → matched rows.
pub type FeedReader<T> = fn(
    &Path,
    Option<Format>,
    Option<&str>,
    &Mapping,
    &HashMap<String, KeyMatch>,
) -> Result<Feed<T>, SourceError>;

/// What every step of a run may use.
#[derive(Clone, Copy)]
pub struct JobContext<'a> {
    pub job: &'a JobSettings,
    pub client: &'a ShopClient,
    pub state: &'a StateStore,
    pub opts: &'a RunOptions,
}

/// What the planner of a kind gets.
pub struct PlanInputs<'a, K: JobKind> {
    pub mapping: &'a Mapping,
    pub section: &'a K::Section,
    pub prepared: &'a K::Prepared,
    pub feed: &'a Feed<K::Values>,
    pub index: &'a SkuIndex,
    pub lookup: &'a HashMap<String, KeyMatch>,
    pub history: &'a K::History,
    /// The source file read this run.
    pub file: &'a Path,
    pub full: bool,
}

/// What a read feed puts in the report, whatever its kind.
pub struct FeedSummary {
    pub rows_read: u64,
    pub rows_valid: u64,
    pub rejected: Vec<RejectedRow>,
    pub unmatched: Vec<UnmatchedKey>,
}

impl FeedSummary {
    pub fn of<T>(feed: &Feed<T>) -> Self {
        Self {
            rows_read: feed.rows_read,
            rows_valid: feed.rows_valid,
            rejected: feed.rejected.clone(),
            unmatched: feed.unmatched.clone(),
        }
    }
}

/// What a plan puts in the report.
pub struct PlanSummary {
    pub matched_skus: u64,
    pub changes: Vec<ChangeRow>,
    /// Rows the planner refused (a price rule), added to the feed's rejected rows.
    pub refused: Vec<RejectedRow>,
    /// Requests planned per route.
    pub routes: Vec<(String, u64)>,
    /// Write requests planned in all.
    pub writes: u64,
}

/// The route a kind chose for its plan.
pub struct RouteNote {
    /// Which route and why (both ETAs).
    pub message: String,
    /// The ETA of the chosen route.
    pub eta_secs: f64,
    /// The requests planned per route, when the choice changed them.
    pub routes: Option<Vec<(String, u64)>>,
}

/// Interrupted writes settled just before sending, and the operations left to send.
pub struct Settled<Op> {
    pub ops: Vec<Op>,
    /// Outcomes already known (found applied), keyed like [`JobKind::outcome_key`].
    pub outcomes: HashMap<u64, Outcome>,
    pub already_applied: u64,
    /// Set when settling had to stop; what it settled before stays counted.
    pub error: Option<Fail>,
}

/// What sending did, keyed like [`JobKind::outcome_key`].
#[derive(Default)]
pub struct SendSummary {
    pub written: u64,
    pub failed: u64,
    pub outcomes: HashMap<u64, Outcome>,
    /// Why the job stopped sending early, when it did.
    pub stopped: Option<String>,
}

/// What one kind of file-driven job supplies to the driver.
pub trait JobKind: 'static {
    /// The kind's section of the mapping.
    type Section: Clone + Send + Sync;
    /// What the kind reads from the store before the index (stock: the default stock id).
    type Prepared: Send + Sync;
    /// A feed row's values.
    type Values: PartialEq + Send + Sync + 'static;
    /// What this job pushed before, with interrupted writes accounted for.
    type History: Send + Sync;
    type Plan: Send;
    /// One unit `send_all` carries (stock: one product's `stocks/sync`; price: one product's
    /// writes in sequence).
    type Op: Send;

    /// Whether a write that finds a SKU or product gone (404/422) invalidates the SKU index.
    const INVALIDATE_STALE_INDEX: bool;

    /// The name of the kind's mapping section, as the mapping file spells it.
    const SECTION: &'static str;

    /// The kind's mapping section; a mapping without it is exit 2.
    fn section(mapping: &Mapping) -> Option<&Self::Section>;

    /// The columns the source must have.
    fn columns(mapping: &Mapping) -> Vec<String>;

    /// Per-run store preparation, before the SKU index is refreshed.
    fn prepare(
        cx: JobContext<'_>,
        mapping: &Mapping,
        section: &Self::Section,
    ) -> impl Future<Output = Result<Self::Prepared, Fail>> + Send;

    /// Reads and matches the feed (runs on the blocking pool).
    const READ_FEED: FeedReader<Self::Values>;

    /// Loads what this job pushed and settles what can be settled before planning; returns the
    /// writes found already applied (counted even when loading then fails) and the history.
    fn history(
        cx: JobContext<'_>,
        index: &SkuIndex,
    ) -> impl Future<Output = (u64, Result<Self::History, Fail>)> + Send;

    fn plan(inputs: PlanInputs<'_, Self>) -> Self::Plan
    where
        Self: Sized;

    fn summarize(plan: &Self::Plan) -> PlanSummary;

    /// A guard that needs the plan; runs after the plan is in the report.
    fn plan_guard(_job: &JobSettings, _plan: &Self::Plan) -> Result<(), Fail> {
        Ok(())
    }

    /// The log line that announces the plan (the report holds the plan already).
    fn log_plan(job: &JobSettings, plan: &Self::Plan, report: &RunReport);

    fn dry_run_message(writes: u64) -> String;

    /// Chooses how the plan is sent (price: the API or an import), given the API's ETA under
    /// the store's limits; the note goes into the log and the dry run's message.
    fn route(_cx: JobContext<'_>, _plan: &mut Self::Plan, _api_eta_secs: f64) -> Option<RouteNote>
    where
        Self: Sized,
    {
        None
    }

    /// After `begin_writes`: settles interrupted writes that need the store, and turns the plan
    /// into the operations to send.
    fn settle(
        cx: JobContext<'_>,
        plan: Self::Plan,
        history: Self::History,
    ) -> impl Future<Output = Settled<Self::Op>> + Send;

    /// Sends one operation: intent before the request, checkpoint after the answer.
    fn send(
        cx: JobContext<'_>,
        op: Self::Op,
    ) -> impl Future<Output = (Self::Op, Result<(), SendError>)> + Send;

    /// Adds what became of the sent operations to `summary`.
    fn tally(results: Vec<(Self::Op, Result<(), SendFailure>)>, summary: &mut SendSummary);

    /// The key a change's outcome is found under (stock: its product; price: its SKU).
    fn outcome_key(change: &ChangeRow) -> u64;
}

/// Runs one job of kind `K`; never panics on bad input, every outcome ends up in the report.
pub async fn run<K: JobKind>(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    report: &mut RunReport,
) {
    let cx = JobContext {
        job,
        client,
        state,
        opts,
    };
    let result = run_inner::<K>(cx, report).await;
    record_failure(report, result);
}

async fn run_inner<K: JobKind>(cx: JobContext<'_>, report: &mut RunReport) -> Result<(), Fail> {
    let JobContext {
        job,
        client,
        state,
        opts,
    } = cx;
    let (source, mapping) = job_inputs(job)?;
    let section = K::section(&mapping).cloned().ok_or_else(|| {
        fail(
            EXIT_INVALID,
            format!("the mapping has no [{}] section", K::SECTION),
        )
    })?;

    // 1. The source: newest stable file, skipped when already synced.
    let (opened, src) = open_source(job, &source, K::columns(&mapping), state, opts).await;
    apply_source(report, opened);
    let Some(mut src) = src? else {
        return Ok(());
    };

    // 2. The store side: what the kind needs, then the SKU index.
    let prepared = K::prepare(cx, &mapping, &section).await?;
    let sku_index = refresh_index(job, client, state, opts).await?;
    let lookup = Arc::new(sku_index.lookup(mapping.match_field));

    // 3. The feed, matched while it streams in, and the guards that need only the feed.
    let feed: Feed<K::Values> = {
        let (p, m, l) = (src.path.clone(), mapping.clone(), lookup.clone());
        let (format, sheet) = (source.format, source.sheet.clone());
        tokio::task::spawn_blocking(move || (K::READ_FEED)(&p, format, sheet.as_deref(), &m, &l))
            .await
            .map_err(|e| fail(EXIT_FAILED, format!("reading the source failed: {e}")))?
            .map_err(|e| fail(EXIT_INVALID, e.to_string()))?
    };
    apply_feed(report, FeedSummary::of(&feed));
    feed_guards(job, &src.record, feed.rows_valid, &src.path)?;
    match_guard(&mapping, &feed, &src.path)?;

    // 4. What was pushed before, then the plan.
    let (already_applied, history) = K::history(cx, &sku_index).await;
    report.already_applied += already_applied;
    let history = history?;
    let mut plan = K::plan(PlanInputs {
        mapping: &mapping,
        section: &section,
        prepared: &prepared,
        feed: &feed,
        index: &sku_index,
        lookup: &lookup,
        history: &history,
        file: &src.path,
        full: opts.full,
    });
    let summary = K::summarize(&plan);
    let writes = summary.writes;
    apply_plan(report, summary, client);
    report.names =
        crate::report::names_of(&sku_index.skus, report.changes.iter().map(|c| c.sku_id));
    let note = K::route(cx, &mut plan, report.plan_eta_secs);
    if let Some(n) = &note {
        report.plan_eta_secs = n.eta_secs;
        if let Some(r) = &n.routes {
            report.plan = r.clone();
        }
        tracing::info!(job = %job.name, "{}", n.message);
    }

    // 5. The guard that needs the plan.
    K::plan_guard(job, &plan)?;
    src.record.last_good_rows = Some(feed.rows_valid);

    K::log_plan(job, &plan, report);
    if opts.dry_run {
        for c in report.changes.iter_mut() {
            c.outcome = Outcome::DryRun;
        }
        report.message = K::dry_run_message(writes);
        if let Some(n) = note {
            report.message = format!("{}; {}", report.message, n.message);
        }
        finish_code(report);
        return Ok(());
    }

    // 6. Send, checkpointing each success.
    begin_writes(job, state, &mut src).await?;
    let settled = K::settle(cx, plan, history).await;
    report.already_applied += settled.already_applied;
    if let Some(e) = settled.error {
        return Err(e);
    }
    let sent = send::<K>(cx, settled).await;
    let failed = sent.failed;
    apply_send::<K>(report, sent);
    finish_run(job, state, src, failed)?;
    if report.exit_code != EXIT_FAILED {
        finish_code(report);
    }
    Ok(())
}

/// Sends every operation with at most `max_in_flight` at once; stops early (exit 3) when the
/// store refuses the credentials or stays unreachable.
async fn send<K: JobKind>(cx: JobContext<'_>, settled: Settled<K::Op>) -> SendSummary {
    let Settled { ops, outcomes, .. } = settled;
    let progress = cx.opts.progress.then(|| {
        progress_bar(
            ops.len() as u64,
            "{pos}/{len} products",
            cx.job.name.clone(),
        )
    });
    let sent = send_all(
        ops,
        cx.client.store().max_in_flight,
        progress.as_ref(),
        cx.opts.cancel.as_ref(),
        |op| K::send(cx, op),
    )
    .await;
    if K::INVALIDATE_STALE_INDEX && sent.stale_index {
        let _ = index::invalidate(cx.state, &cx.client.store().name);
    }
    let mut summary = SendSummary {
        outcomes,
        stopped: sent.stopped,
        ..SendSummary::default()
    };
    K::tally(sent.results, &mut summary);
    summary
}

fn apply_source(report: &mut RunReport, source: SourceSummary) {
    report.source_file = source.file;
    report.source_hash = source.hash;
    if let Some(why) = source.skipped {
        report.message = why;
        report.exit_code = EXIT_OK;
        report.skipped = true;
    }
}

fn apply_feed(report: &mut RunReport, feed: FeedSummary) {
    report.rows_read = feed.rows_read;
    report.rows_valid = feed.rows_valid;
    report.rejected = feed.rejected;
    report.unmatched = feed.unmatched;
}

fn apply_plan(report: &mut RunReport, plan: PlanSummary, client: &ShopClient) {
    report.rejected.extend(plan.refused);
    report.rejected.sort_by_key(|r| r.row);
    report.matched_skus = plan.matched_skus;
    report.changes = plan.changes;
    report.plan = plan.routes;
    report.plan_eta_secs = plan_eta_secs(plan.writes, client);
}

/// The time the store's limits make `writes` write requests take: the quota of a window can be
/// spent at once; each further `limit` requests wait a window.
pub fn plan_eta_secs(writes: u64, client: &ShopClient) -> f64 {
    let limits = client.limiter().limits;
    (writes.saturating_sub(1) / u64::from(limits.default)) as f64 * limits.window.as_secs_f64()
}

fn apply_send<K: JobKind>(report: &mut RunReport, sent: SendSummary) {
    report.products_written += sent.written;
    report.products_failed = sent.failed;
    for c in report.changes.iter_mut() {
        if let Some(o) = sent.outcomes.get(&K::outcome_key(c)) {
            c.outcome = o.clone();
        }
    }
    if let Some(why) = sent.stopped {
        report.exit_code = EXIT_FAILED;
        report.message = format!("stopped: {why}");
    }
}
