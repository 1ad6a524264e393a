//! Running jobs: one entry point for `--run-once`, the daemon and `demo`.
//!
//! Jobs of one store run one after the other (they share that store's rate-limit budget);
//! different stores run concurrently. Each job ends with a report file, a run record in the
//! state store and one summary line in the log, whatever happened.

pub mod audit;
pub mod batch_edit;
pub mod common;
pub mod driver;
pub mod feed;
pub mod import;
pub mod plan;
pub mod price;
pub mod price_plan;
pub mod stock;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::FutureExt;

use crate::config::{JobKind, JobSettings, Settings};
use crate::report::{self, EXIT_FAILED, EXIT_INVALID, RunReport};
use crate::shop::ShopClient;
use crate::state::{RunRecord, StateStore};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    pub full: bool,
    /// Job names to run; empty = all.
    pub jobs: Vec<String>,
    /// Show progress bars (one-shot runs on a terminal).
    pub progress: bool,
    /// Cancelled on shutdown: requests in flight finish and are checkpointed, no new one starts.
    pub cancel: Option<tokio_util::sync::CancellationToken>,
    /// The time the run takes as now (which batch-edit occurrence is due); `None` = the wall
    /// clock. Tests and the daemon's clock set it.
    pub now: Option<chrono::DateTime<Utc>>,
    /// The `[publish]` file server price imports are served from, when this run has it.
    pub publish: Option<crate::publish::PublishServer>,
    /// Whether the config has `[publish]` (a dry run plans imports without the server).
    pub publish_configured: bool,
}

/// One HTTP client (and so one rate-limit budget) per store, shared by its jobs.
pub type Clients = HashMap<String, Arc<ShopClient>>;

pub fn clients(settings: &Settings) -> Result<Clients, String> {
    settings
        .stores
        .iter()
        .map(|s| Ok((s.name.clone(), Arc::new(ShopClient::new(s.clone())?))))
        .collect()
}

/// Runs the selected jobs once; returns their reports in config order.
pub async fn run_once(
    settings: &Settings,
    state: &StateStore,
    clients: &Clients,
    opts: &RunOptions,
) -> Vec<RunReport> {
    let selected: Vec<&JobSettings> = settings
        .jobs
        .iter()
        .filter(|j| opts.jobs.is_empty() || opts.jobs.contains(&j.name))
        .collect();
    let mut by_store: Vec<(String, Vec<&JobSettings>)> = Vec::new();
    for j in selected {
        match by_store.iter_mut().find(|(s, _)| *s == j.store) {
            Some((_, v)) => v.push(j),
            None => by_store.push((j.store.clone(), vec![j])),
        }
    }
    let per_store = by_store.into_iter().map(|(store, jobs)| async move {
        let mut out = Vec::new();
        for job in jobs {
            let r = match clients.get(&store) {
                Some(c) => run_job(settings, state, c, job, opts).await,
                None => {
                    let mut r = RunReport::new(
                        &job.name,
                        &store,
                        job.kind.as_str(),
                        opts.dry_run,
                        opts.full,
                    );
                    r.exit_code = EXIT_INVALID;
                    r.message = format!("store {store} is not configured");
                    r
                }
            };
            out.push(r);
        }
        out
    });
    let mut reports: Vec<RunReport> = futures::future::join_all(per_store)
        .await
        .into_iter()
        .flatten()
        .collect();
    let order: HashMap<&str, usize> = settings
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i))
        .collect();
    reports.sort_by_key(|r| order.get(r.job.as_str()).copied().unwrap_or(usize::MAX));
    exit_2_only_when_nothing_was_sent(&mut reports);
    reports
}

/// Exit 2 promises that nothing was sent. When another job of the same invocation wrote to a
/// store, a job refused for bad input is a failed job (3), and says which job wrote.
fn exit_2_only_when_nothing_was_sent(reports: &mut [RunReport]) {
    let Some(writer) = reports
        .iter()
        .find(|r| r.writes_sent() > 0)
        .map(|r| r.job.clone())
    else {
        return;
    };
    for r in reports.iter_mut().filter(|r| r.exit_code == EXIT_INVALID) {
        r.exit_code = EXIT_FAILED;
        r.message = format!(
            "{}; exit 3, not 2, because job {writer} already wrote to the store in this run",
            r.message
        );
    }
}

/// Runs one job and records it: report file, run record, summary line.
pub async fn run_job(
    settings: &Settings,
    state: &StateStore,
    client: &ShopClient,
    job: &JobSettings,
    opts: &RunOptions,
) -> RunReport {
    let clock = Instant::now();
    let opts = &RunOptions {
        publish_configured: opts.publish_configured || settings.publish.is_some(),
        ..opts.clone()
    };
    let before = client.request_counts();
    let limited_before = client.limiter().rate_limited_total();
    let mut report = RunReport::new(
        &job.name,
        &job.store,
        job.kind.as_str(),
        opts.dry_run,
        opts.full,
    );
    report.lang = settings.language;
    report.timezone = settings.timezone;
    // A panic in the job's work is this run's failure, not the process's (nor the daemon task's).
    let work = async {
        crate::panics::injected_panic("run", &job.name);
        let cx = driver::JobContext {
            job,
            client,
            state,
            opts,
            tz: settings.timezone,
        };
        // Every kind runs on the one driver; a kind supplies only what differs.
        match job.kind {
            JobKind::Stock => driver::run::<stock::StockKind>(cx, &mut report).await,
            JobKind::Price => driver::run::<price::PriceKind>(cx, &mut report).await,
            JobKind::Audit => driver::run::<audit::AuditKind>(cx, &mut report).await,
            JobKind::BatchEdit => driver::run::<batch_edit::BatchEditKind>(cx, &mut report).await,
        }
    };
    if let Err(payload) = AssertUnwindSafe(work).catch_unwind().await {
        let why = crate::panics::message(payload.as_ref());
        report.exit_code = EXIT_FAILED;
        report.message = format!(
            "the job stopped on an internal error ({why}); checkpointed writes are kept, interrupted ones are checked (or held in doubt) by the next run; please report this with the log"
        );
    }
    report.finished_at = Utc::now();
    let after = client.request_counts();
    report.requests = after
        .into_iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(&k).copied().unwrap_or(0);
            (d > 0).then_some((k, d))
        })
        .collect();
    report.rate_limited = client.limiter().rate_limited_total() - limited_before;
    // An API can echo credentials back in an error: nothing written below may carry them.
    scrub_report(&mut report, &crate::config::secret::scrubber(settings));

    // A run skipped because the source did not change leaves no report file.
    if !report.skipped {
        let path = report::xlsx::report_path(&settings.state_dir, &report);
        let to_write = report.clone();
        let p = path.clone();
        match tokio::task::spawn_blocking(move || report::xlsx::write(&p, &to_write)).await {
            Ok(Ok(())) => report.report_path = Some(path),
            Ok(Err(e)) => tracing::error!(job = %job.name, "{e}"),
            Err(e) => tracing::error!(job = %job.name, "writing the report failed: {e}"),
        }
    }
    let rec = RunRecord {
        v: 1,
        job: job.name.clone(),
        started_at: report.started_at,
        duration_ms: clock.elapsed().as_millis() as u64,
        exit_code: report.exit_code,
        changed: report.changed_skus(),
        rejected: report.rejected.len() as u64 + report.products_failed,
        unmatched: report.unmatched.len() as u64,
        requests: report.total_requests(),
        message: report.message.clone(),
        report: report.report_path.as_ref().map(|p| p.display().to_string()),
    };
    if let Err(e) = state.record_run(&rec) {
        tracing::error!(job = %job.name, "cannot record the run: {e}");
    }
    // Housekeeping: old reports and run records go, so the state dir does not grow forever.
    // Checked, not panicking; never before 1970, which run record keys cannot order.
    let cutoff = chrono::Duration::try_days(i64::from(settings.retention_days))
        .and_then(|keep| Utc::now().checked_sub_signed(keep))
        .unwrap_or(chrono::DateTime::UNIX_EPOCH)
        .max(chrono::DateTime::UNIX_EPOCH);
    if let Err(e) = state.prune_runs(&job.name, cutoff, settings.max_run_records as usize) {
        tracing::warn!(job = %job.name, "cannot prune run records: {e}");
    }
    let cutoff_time = std::time::SystemTime::now()
        .checked_sub(std::time::Duration::from_secs(
            u64::from(settings.retention_days).saturating_mul(86_400),
        ))
        .unwrap_or(std::time::UNIX_EPOCH);
    report::xlsx::prune(&settings.state_dir, &job.name, cutoff_time);
    crate::status::write_snapshot(settings, state);
    if let Err(e) = state.flush().await {
        tracing::error!(job = %job.name, "cannot flush the state store: {e}");
    }
    let line = report.summary_line();
    match report.exit_code {
        0 => tracing::info!(job = %job.name, exit = report.exit_code, "{line}"),
        EXIT_FAILED | EXIT_INVALID => {
            tracing::error!(job = %job.name, exit = report.exit_code, "{line}")
        }
        _ => tracing::warn!(job = %job.name, exit = report.exit_code, "{line}"),
    }
    for reason in report.reason_lines(report::SHOWN_LINES) {
        tracing::warn!(job = %job.name, detail = "reason", "{reason}");
    }
    report
}

/// Removes secret values from every text of a report (message, outcomes, reasons).
fn scrub_report(report: &mut RunReport, sc: &crate::config::secret::Scrubber) {
    sc.scrub_in_place(&mut report.message);
    for c in &mut report.changes {
        match &c.outcome {
            report::Outcome::Failed(m) if sc.finds_in(m) => {
                c.outcome = report::Outcome::Failed(sc.scrub(m).into());
            }
            report::Outcome::Unknown(m) if sc.finds_in(m) => {
                c.outcome = report::Outcome::Unknown(sc.scrub(m).into());
            }
            _ => {}
        }
    }
    let scrub = |t: &str| sc.finds_in(t).then(|| sc.scrub(t));
    for r in &mut report.rejected {
        r.reason.map_texts(scrub);
        sc.scrub_in_place(&mut r.value);
    }
    for u in &mut report.unmatched {
        u.reason.map_texts(scrub);
    }
}
