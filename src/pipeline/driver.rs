//! The one job driver every kind runs on (stock, price, audit, batch edit): source → feed →
//! guards → interrupted writes → plan → plan guard → dry run, or execute → report.
//!
//! The order of those steps, the dry-run branch, the guards, `begin_writes` before a kind's first
//! write, `finish_run` after it, failure recording and every write into the report live here,
//! once. A kind ([`JobKind`]) supplies only what differs, and skips (by the trait's defaults) the
//! stages it has no use for:
//!
//! - stock and price: a source file and its mapping section, the store's preparation, their feed,
//!   the interrupted writes they settle, their planner, and operations sent through `send_all`
//!   ([`SendsOps`], [`send_ops`]; docs/write-protocol.md lists the rules those sends keep);
//! - audit: the same file and feeds, but it writes nothing ([`JobKind::WRITES`] is false: the
//!   source is never skipped as unchanged, the size guards and the dry-run branch do not apply);
//!   it executes by reading the store's exports, and hands back the differences and what a sync
//!   would send;
//! - batch edit: no file and no SKU index; its feed is the occurrence due now, its interrupted
//!   write an occurrence left sending, and it executes one non-idempotent PUT with its in-doubt
//!   rules (`src/pipeline/batch_edit.rs`).
//!
//! Each stage hands back a value ([`SourceSummary`], [`Fed`]/[`FeedSummary`], [`PlanSummary`],
//! [`Executed`] with its [`SendSummary`]) and the driver writes it into the report in one place per
//! stage. A test-only switch can panic at each stage boundary (`source`, `feed`, `plan`,
//! `execute`; see `crate::panics`), which is how the tests show every kind passes through here.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::{JobSettings, SourceSettings};
use crate::index::{self, KeyMatch, SkuIndex};
use crate::mapping::Mapping;
use crate::report::{
    ChangeRow, Difference, EXIT_FAILED, EXIT_OK, Outcome, RejectedRow, RunReport, RunResult,
    UnmatchedKey,
};
use crate::shop::ShopClient;
use crate::source::{Format, SourceError};
use crate::state::StateStore;
use crate::util::progress_bar;

use super::RunOptions;
use super::common::{
    Fail, SendError, SendFailure, Source, SourceSummary, begin_writes, fail, feed_guards,
    finish_code, finish_run, match_guard, open_source, record_failure, refresh_index, send_all,
};
use super::feed::Feed;

/// Reads a feed on the blocking pool: (file, format, sheet, mapping, key lookup) → what the kind
/// reads from it.
pub type FeedReader<T> = fn(
    &Path,
    Option<Format>,
    Option<&str>,
    &Mapping,
    &HashMap<String, KeyMatch>,
) -> Result<T, SourceError>;

/// What every step of a run may use.
#[derive(Clone, Copy)]
pub struct JobContext<'a> {
    pub job: &'a JobSettings,
    pub client: &'a ShopClient,
    pub state: &'a StateStore,
    pub opts: &'a RunOptions,
    /// The config's time zone (the one schedules are read in).
    pub tz: chrono_tz::Tz,
}

/// The source file a kind reads, as its settings name it.
pub struct FileSpec<'a> {
    pub source: &'a SourceSettings,
    pub mapping: &'a Mapping,
    /// The columns the file must have (checked before any request).
    pub columns: Vec<String>,
}

/// The opened source file, matched against the store's SKU index.
pub struct FileFeed<'a> {
    pub path: &'a Path,
    pub source: &'a SourceSettings,
    pub mapping: &'a Mapping,
    pub lookup: &'a Arc<HashMap<String, KeyMatch>>,
}

impl FileFeed<'_> {
    /// Reads the file with `reader` on the blocking pool; a file that cannot be read is exit 2.
    pub async fn read<T: Send + 'static>(&self, reader: FeedReader<T>) -> Result<T, Fail> {
        let (p, m, l) = (
            self.path.to_path_buf(),
            self.mapping.clone(),
            self.lookup.clone(),
        );
        let (format, sheet) = (self.source.format, self.source.sheet.clone());
        tokio::task::spawn_blocking(move || reader(&p, format, sheet.as_deref(), &m, &l))
            .await
            .map_err(|e| fail(EXIT_FAILED, format!("reading the source failed: {e}")))?
            .map_err(|e| fail(crate::report::EXIT_INVALID, e.to_string()))
    }
}

/// What the feed stage of a kind gets.
pub struct FeedInputs<'a, K: JobKind> {
    pub inputs: &'a K::Inputs,
    pub prepared: &'a K::Prepared,
    /// The source file, for a kind that reads one.
    pub file: Option<FileFeed<'a>>,
    /// The instant the run takes as now (`RunOptions::now`, else the wall clock).
    pub now: DateTime<Utc>,
}

impl<K: JobKind> FeedInputs<'_, K> {
    /// The source file; a kind that reads one always has it (its `file` names one).
    pub fn file(&self) -> Result<&FileFeed<'_>, Fail> {
        self.file.as_ref().ok_or_else(|| {
            fail(
                EXIT_FAILED,
                "internal error: the job's source was not opened",
            )
        })
    }
}

/// What the feed stage read.
pub enum Fed<F> {
    /// What to plan from, and what the report shows of it (a kind without rows: `None`).
    Read(F, Option<FeedSummary>),
    /// Nothing to do this run (no report file), and the sentence that says why.
    Skip(String),
}

/// What the history stage of a kind gets.
pub struct HistoryInputs<'a, K: JobKind> {
    pub inputs: &'a K::Inputs,
    pub prepared: &'a K::Prepared,
    pub index: &'a SkuIndex,
    pub feed: &'a K::Feed,
}

/// What the plan and execute stages of a kind get.
pub struct PlanInputs<'a, K: JobKind> {
    pub job: &'a JobSettings,
    pub inputs: &'a K::Inputs,
    pub prepared: &'a K::Prepared,
    pub feed: &'a K::Feed,
    pub index: &'a SkuIndex,
    pub lookup: &'a HashMap<String, KeyMatch>,
    pub history: &'a K::History,
    /// The source file read this run, for a kind that reads one.
    pub file: Option<&'a Path>,
    pub full: bool,
}

/// What a read feed puts in the report, whatever its kind.
pub struct FeedSummary {
    pub rows_read: u64,
    pub rows_valid: u64,
    /// Valid rows whose key matched a store SKU (the match guard's count).
    pub rows_matched: u64,
    pub rejected: Vec<RejectedRow>,
    pub unmatched: Vec<UnmatchedKey>,
}

impl FeedSummary {
    pub fn of<T>(feed: &Feed<T>) -> Self {
        Self {
            rows_read: feed.rows_read,
            rows_valid: feed.rows_valid,
            rows_matched: feed.rows.len() as u64,
            rejected: feed.rejected.clone(),
            unmatched: feed.unmatched.clone(),
        }
    }
}

/// What a plan puts in the report.
#[derive(Default)]
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
    /// Import files among the writes (`written` then counts their lines).
    pub import_files: u64,
    pub failed: u64,
    pub outcomes: HashMap<u64, Outcome>,
    /// Why the job stopped sending early, when it did.
    pub stopped: Option<String>,
}

/// What the execute stage did.
#[derive(Default)]
pub struct Executed {
    /// Interrupted writes found already applied just before sending.
    pub already_applied: u64,
    pub sent: SendSummary,
    /// Where the store and the feed disagree (audit).
    pub differences: Option<Vec<Difference>>,
    /// What a sync would send, computed but never sent (audit).
    pub would_send: Option<PlanSummary>,
    /// The report's sentence; `None`: "done", or "done, with rejected items".
    pub message: Option<String>,
    /// A standard result instead of `message`, shown in the report's language.
    pub result: Option<RunResult>,
    /// The exit code when the kind decides it; `None`: 4 when anything was refused, else 0.
    pub exit_code: Option<i32>,
    /// Set when the stage had to stop; what it did before stays counted.
    pub error: Option<Fail>,
}

impl Executed {
    /// A stage that stopped before doing anything.
    pub fn failed(error: Fail) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// What one kind of job supplies to the driver; the defaults are for the stages a kind skips.
pub trait JobKind: 'static {
    /// What the kind takes from the job's settings (its mapping section, its edit).
    type Inputs: Send + Sync;
    /// What the kind reads from the store before the index (stock: the default stock id).
    type Prepared: Default + Send + Sync;
    /// What the feed stage reads (matched rows, the due occurrence).
    type Feed: Send + Sync;
    /// What this job pushed before, with interrupted writes accounted for.
    type History: Default + Send + Sync;
    /// What the planner decided; the execute stage carries it out.
    type Plan: Send;

    /// Whether the kind writes to the store: one that does not (audit) is never skipped as
    /// unchanged, has no size guards, and runs whole in a dry run.
    const WRITES: bool = true;
    /// Whether the feed is matched against the store's SKU index (refreshed before the feed).
    const INDEX: bool = true;

    /// What the kind takes from the job's settings; something missing is exit 2.
    fn inputs(job: &JobSettings) -> Result<Self::Inputs, Fail>;

    /// The source file the kind reads; `None` for a kind that reads none.
    fn file(_inputs: &Self::Inputs) -> Option<FileSpec<'_>> {
        None
    }

    /// Per-run store preparation, before the SKU index is refreshed.
    fn prepare(
        _cx: JobContext<'_>,
        _inputs: &Self::Inputs,
    ) -> impl Future<Output = Result<Self::Prepared, Fail>> + Send {
        async { Ok(Self::Prepared::default()) }
    }

    /// Reads the feed: the file's rows matched to store SKUs, or what else the kind runs on.
    fn feed(
        cx: JobContext<'_>,
        at: FeedInputs<'_, Self>,
    ) -> impl Future<Output = Result<Fed<Self::Feed>, Fail>> + Send
    where
        Self: Sized;

    /// Loads what this job pushed and settles the interrupted writes that can be settled before
    /// planning; returns the writes found already applied (counted even when it then fails).
    fn history(
        _cx: JobContext<'_>,
        _at: HistoryInputs<'_, Self>,
    ) -> impl Future<Output = (u64, Result<Self::History, Fail>)> + Send
    where
        Self: Sized,
    {
        async { (0, Ok(Self::History::default())) }
    }

    /// Plans from the feed and the history.
    fn plan(at: &PlanInputs<'_, Self>) -> Self::Plan
    where
        Self: Sized;

    /// What a batch edit asks, for its report sheet; `None` for every other kind.
    fn asked(_at: &PlanInputs<'_, Self>) -> Option<crate::report::BatchEditAsked>
    where
        Self: Sized,
    {
        None
    }

    /// What the plan puts in the report; `None` for a kind whose plan comes with execution.
    fn summarize(_plan: &Self::Plan) -> Option<PlanSummary> {
        None
    }

    /// Chooses how the plan is sent (price: the API or an import), given the API's ETA under
    /// the store's limits; the note goes into the log and the dry run's message.
    fn route(_cx: JobContext<'_>, _plan: &mut Self::Plan, _api_eta_secs: f64) -> Option<RouteNote>
    where
        Self: Sized,
    {
        None
    }

    /// A guard that needs the plan; runs after the plan is in the report.
    fn plan_guard(_job: &JobSettings, _plan: &Self::Plan) -> Result<(), Fail> {
        Ok(())
    }

    /// The log line that announces the plan (the report holds the plan already).
    fn log_plan(_job: &JobSettings, _plan: &Self::Plan, _report: &RunReport) {}

    /// The dry run's result, given the plan and its write requests.
    fn dry_run_result(_plan: &Self::Plan, writes: u64) -> RunResult {
        RunResult::DryRun {
            writes,
            what: None,
            note: None,
        }
    }

    /// Carries out the plan (after `begin_writes` for a kind with a source file).
    fn execute(
        cx: JobContext<'_>,
        at: &PlanInputs<'_, Self>,
        plan: Self::Plan,
    ) -> impl Future<Output = Executed> + Send
    where
        Self: Sized;

    /// The key a change's outcome is found under (stock: its product; price: its SKU).
    fn outcome_key(change: &ChangeRow) -> u64 {
        change.sku_id
    }
}

/// What a kind whose plan is many writes sent through `send_all` supplies (stock, price); its
/// `execute` is [`send_ops`].
pub trait SendsOps: JobKind {
    /// One unit `send_all` carries (stock: one product's `stocks/sync`; price: one product's
    /// writes in sequence).
    type Op: Send;

    /// Whether a write that finds a SKU or product gone (404/422) invalidates the SKU index.
    const INVALIDATE_STALE_INDEX: bool;

    /// Settles interrupted writes that need the store, and turns the plan into operations.
    fn settle(
        cx: JobContext<'_>,
        plan: Self::Plan,
        history: &Self::History,
    ) -> impl Future<Output = Settled<Self::Op>> + Send;

    /// Sends one operation: intent before the request, checkpoint after the answer.
    fn send(
        cx: JobContext<'_>,
        op: Self::Op,
    ) -> impl Future<Output = (Self::Op, Result<(), SendError>)> + Send;

    /// Adds what became of the sent operations to `summary`.
    fn tally(results: Vec<(Self::Op, Result<(), SendFailure>)>, summary: &mut SendSummary);
}

/// Runs one job of kind `K`; never panics on bad input, every outcome ends up in the report.
pub async fn run<K: JobKind>(cx: JobContext<'_>, report: &mut RunReport) {
    let result = run_inner::<K>(cx, report).await;
    record_failure(report, result);
}

async fn run_inner<K: JobKind>(cx: JobContext<'_>, report: &mut RunReport) -> Result<(), Fail> {
    let JobContext {
        job,
        client,
        state,
        opts,
        ..
    } = cx;
    let stage = |name: &str| crate::panics::injected_panic(name, &job.name);
    let inputs = K::inputs(job)?;
    let spec = K::file(&inputs);

    // 1. The source: the newest stable file, skipped when already synced (a kind that writes
    //    nothing compares with the store now, and never skips).
    stage("source");
    let mut file: Option<Source> = None;
    if let Some(spec) = &spec {
        let source_opts = RunOptions {
            full: opts.full || !K::WRITES,
            ..opts.clone()
        };
        let (opened, src) =
            open_source(job, spec.source, spec.columns.clone(), state, &source_opts).await;
        apply_source(report, opened);
        match src? {
            Some(src) => file = Some(src),
            None => return Ok(()),
        }
    }

    // 2. The store side: what the kind needs, then the SKU index.
    let prepared = K::prepare(cx, &inputs).await?;
    let sku_index = if K::INDEX {
        refresh_index(job, client, state, opts).await?
    } else {
        SkuIndex {
            skus: HashMap::new(),
            was_full: false,
            fetched: 0,
        }
    };
    let lookup = Arc::new(match &spec {
        Some(spec) => sku_index.lookup(spec.mapping.match_field),
        None => HashMap::new(),
    });

    // 3. The feed, matched while it streams in, and the guards that need only the feed.
    stage("feed");
    let fed = K::feed(
        cx,
        FeedInputs {
            inputs: &inputs,
            prepared: &prepared,
            file: match (&spec, &file) {
                (Some(spec), Some(src)) => Some(FileFeed {
                    path: &src.path,
                    source: spec.source,
                    mapping: spec.mapping,
                    lookup: &lookup,
                }),
                _ => None,
            },
            now: opts.now.unwrap_or_else(Utc::now),
        },
    )
    .await?;
    let mut rows_valid = None;
    let (feed, rows) = match fed {
        Fed::Read(feed, rows) => (feed, rows),
        Fed::Skip(why) => {
            apply_skip(report, why);
            return Ok(());
        }
    };
    if let Some(rows) = rows {
        let (valid, matched) = (rows.rows_valid, rows.rows_matched);
        rows_valid = Some(valid);
        apply_feed(report, rows);
        if let (Some(spec), Some(src)) = (&spec, &mut file) {
            if K::WRITES {
                feed_guards(job, &src.record, valid, &src.path)?;
            }
            match_guard(spec.mapping, valid, matched, &src.path)?;
        }
    }

    // 4. Interrupted writes and what was pushed before, then the plan.
    let (already_applied, history) = K::history(
        cx,
        HistoryInputs {
            inputs: &inputs,
            prepared: &prepared,
            index: &sku_index,
            feed: &feed,
        },
    )
    .await;
    report.already_applied += already_applied;
    let history = history?;
    stage("plan");
    let path = file.as_ref().map(|s| s.path.clone());
    let at = PlanInputs {
        job,
        inputs: &inputs,
        prepared: &prepared,
        feed: &feed,
        index: &sku_index,
        lookup: &lookup,
        history: &history,
        file: path.as_deref(),
        full: opts.full,
    };
    let mut plan = K::plan(&at);
    report.batch_edit = K::asked(&at);
    let mut writes = 0;
    if let Some(summary) = K::summarize(&plan) {
        writes = summary.writes;
        apply_plan(report, summary, client);
    }
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
    if let (Some(src), Some(valid)) = (&mut file, rows_valid) {
        src.record.last_good_rows = Some(valid);
    }
    K::log_plan(job, &plan, report);

    // 6. A dry run of a kind that writes stops here.
    if opts.dry_run && K::WRITES {
        name_skus(report, &sku_index);
        for c in report.changes.iter_mut() {
            c.outcome = Outcome::DryRun;
        }
        let mut result = K::dry_run_result(&plan, writes);
        if let (Some(n), RunResult::DryRun { note, .. }) = (note, &mut result) {
            *note = Some(n.message);
        }
        report.set_result(result);
        finish_code(report);
        return Ok(());
    }

    // 7. Execute: the source stops counting as synced before the first write; it counts again
    //    once everything was applied.
    stage("execute");
    if K::WRITES
        && let Some(src) = &mut file
    {
        begin_writes(job, state, src).await?;
    }
    let done = K::execute(cx, &at, plan).await;
    let failed = done.sent.failed;
    let exit_code = done.exit_code;
    apply_executed::<K>(report, done, client)?;
    name_skus(report, &sku_index);
    if K::WRITES
        && let Some(src) = file
    {
        finish_run(job, state, src, failed)?;
    }
    match exit_code {
        Some(code) => report.exit_code = code,
        None if report.exit_code != EXIT_FAILED => finish_code(report),
        None => {}
    }
    Ok(())
}

/// The execute stage of a [`SendsOps`] kind: interrupted writes settled, then every operation
/// sent with at most `max_in_flight` at once; stops early (exit 3) when the store refuses the
/// credentials or stays unreachable.
pub async fn send_ops<K: SendsOps>(
    cx: JobContext<'_>,
    at: &PlanInputs<'_, K>,
    plan: K::Plan,
) -> Executed {
    let settled = K::settle(cx, plan, at.history).await;
    let already_applied = settled.already_applied;
    if let Some(e) = settled.error {
        return Executed {
            already_applied,
            ..Executed::failed(e)
        };
    }
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
    Executed {
        already_applied,
        sent: summary,
        ..Executed::default()
    }
}

fn apply_source(report: &mut RunReport, source: SourceSummary) {
    report.source_file = source.file;
    report.source_hash = source.hash;
    if let Some(why) = source.skipped {
        report.set_result(why);
        report.exit_code = EXIT_OK;
        report.skipped = true;
    }
}

fn apply_skip(report: &mut RunReport, why: String) {
    report.message = why;
    report.exit_code = EXIT_OK;
    report.skipped = true;
}

fn apply_feed(report: &mut RunReport, feed: FeedSummary) {
    report.rows_read = feed.rows_read;
    report.rows_valid = feed.rows_valid;
    report.rejected = feed.rejected;
    report.unmatched = feed.unmatched;
}

/// The names of the SKUs the report lists (changes, differences), from the index: looked up
/// once here so change rows stay small.
fn name_skus(report: &mut RunReport, index: &SkuIndex) {
    let ids = report.changes.iter().map(|c| c.sku_id);
    let ids = ids.chain(report.differences.iter().map(|d| d.sku_id));
    report.names = crate::report::names_of(&index.skus, ids);
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

/// Writes what the execute stage did into the report; its error, once what it did is counted.
fn apply_executed<K: JobKind>(
    report: &mut RunReport,
    done: Executed,
    client: &ShopClient,
) -> Result<(), Fail> {
    report.already_applied += done.already_applied;
    if let Some(e) = done.error {
        return Err(e);
    }
    if let Some(plan) = done.would_send {
        apply_plan(report, plan, client);
    }
    if let Some(differences) = done.differences {
        report.differences = differences;
    }
    let sent = done.sent;
    report.products_written += sent.written;
    report.import_files += sent.import_files;
    report.products_failed = sent.failed;
    for c in report.changes.iter_mut() {
        if let Some(o) = sent.outcomes.get(&K::outcome_key(c)) {
            c.outcome = o.clone();
        }
    }
    if let Some(why) = sent.stopped {
        report.exit_code = EXIT_FAILED;
        report.set_result(RunResult::Stopped { why });
    }
    if let Some(message) = done.message {
        report.message = message;
    }
    if let Some(result) = done.result {
        report.set_result(result);
    }
    Ok(())
}
