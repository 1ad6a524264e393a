//! Steps the job driver (`driver.rs`) runs for its kinds: pick and hash the source, check its
//! columns, refresh the SKU index, the feed guards, and the final exit code.

use std::path::PathBuf;

use rust_decimal::Decimal;

use crate::config::{JobSettings, SourceSettings};
use crate::index::{self, SkuIndex};
use crate::mapping::MatchField;
use crate::report::{
    EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_REJECTED, Lang, RunReport, RunResult,
};
use crate::shop::ShopClient;
use crate::state::{JobRecord, StateError, StateStore};
use crate::util::progress_bar;

use super::RunOptions;
use super::feed::check_columns;

/// The source and mapping every file-driven job needs (validation guarantees both).
pub fn job_inputs(job: &JobSettings) -> Result<(SourceSettings, crate::mapping::Mapping), Fail> {
    let source = job
        .source
        .clone()
        .ok_or_else(|| fail(EXIT_INVALID, "the job has no source"))?;
    let mapping = job
        .mapping
        .clone()
        .ok_or_else(|| fail(EXIT_INVALID, "the job has no mapping"))?;
    Ok((source, mapping))
}

/// What a file-driven kind takes from its job: the source, the mapping, and the kind's part of
/// the mapping.
pub struct FileJob<S> {
    pub source: SourceSettings,
    pub mapping: crate::mapping::Mapping,
    pub section: S,
}

impl<S> FileJob<S> {
    /// The job's source and mapping, and `section` of the mapping; one missing is exit 2.
    pub fn load(
        job: &JobSettings,
        section: impl FnOnce(&crate::mapping::Mapping) -> Result<S, Fail>,
    ) -> Result<Self, Fail> {
        let (source, mapping) = job_inputs(job)?;
        let section = section(&mapping)?;
        Ok(Self {
            source,
            mapping,
            section,
        })
    }

    /// The file as the driver opens it, with the columns it must have.
    pub fn spec(&self, columns: Vec<String>) -> super::driver::FileSpec<'_> {
        super::driver::FileSpec {
            source: &self.source,
            mapping: &self.mapping,
            columns,
        }
    }
}

/// The mapping's `[name]` section, or exit 2 naming it.
pub fn section<T: Clone>(found: Option<&T>, name: &str) -> Result<T, Fail> {
    found
        .cloned()
        .ok_or_else(|| fail(EXIT_INVALID, format!("the mapping has no [{name}] section")))
}

/// A job's failure becomes the report's exit code and message.
pub fn record_failure(report: &mut RunReport, result: Result<(), Fail>) {
    if let Err(f) = result {
        report.exit_code = f.code;
        match f.result {
            Some(r) => report.set_result(*r),
            None => report.message = f.message,
        }
    }
}

/// After sending: the file counts as synced only when nothing failed (so a rerun retries the
/// rest) and the record is saved.
pub fn finish_run(
    job: &JobSettings,
    state: &StateStore,
    source: Source,
    failed: u64,
) -> Result<(), Fail> {
    let Source {
        path,
        hash,
        mut record,
    } = source;
    if failed == 0 {
        record.last_synced_hash = Some(hash);
        record.last_synced_file = Some(path.display().to_string());
    }
    state.set_job_record(&job.name, &record).map_err(state_fail)
}

/// A job failure: the exit code, the one sentence for the log and the run record (English), and
/// the standard result it is when it is one (the report shows that in its language).
#[derive(Debug, Clone)]
pub struct Fail {
    pub code: i32,
    pub message: String,
    /// Boxed: a failure travels in every `Result` of the pipeline, and is rare.
    pub result: Option<Box<RunResult>>,
}

pub fn fail(code: i32, message: impl Into<String>) -> Fail {
    Fail {
        code,
        message: message.into(),
        result: None,
    }
}

/// A failure that is one of the standard results (a guard, no source file).
pub fn fail_with(code: i32, result: RunResult) -> Fail {
    Fail {
        code,
        message: result.render(Lang::En),
        result: Some(Box::new(result)),
    }
}

pub fn state_fail(e: StateError) -> Fail {
    fail(EXIT_FAILED, e.to_string())
}

/// The file to read this run, its hash and the job's record; `None` when the newest file is the
/// one already synced completely (and not `--full`): the run is then marked skipped.
pub struct Source {
    pub path: PathBuf,
    pub hash: String,
    pub record: JobRecord,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::source::SourceError> + Send + 'static,
) -> Result<T, Fail> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| fail(EXIT_FAILED, format!("reading the source failed: {e}")))?
        .map_err(|e| fail(EXIT_INVALID, e.to_string()))
}

/// What opening the source puts in the report, as far as it got (also when it then failed).
#[derive(Debug, Default)]
pub struct SourceSummary {
    pub file: Option<PathBuf>,
    pub hash: Option<String>,
    /// Set when the run is skipped: why.
    pub skipped: Option<RunResult>,
}

/// Picks the newest finished file, hashes it, skips it when already synced, and checks that
/// `columns` exist, so a source the mapping does not fit is exit 2 before any request.
pub async fn open_source(
    job: &JobSettings,
    source: &SourceSettings,
    columns: Vec<String>,
    state: &StateStore,
    opts: &RunOptions,
) -> (SourceSummary, Result<Option<Source>, Fail>) {
    let mut seen = SourceSummary::default();
    let result = pick_source(job, source, columns, state, opts, &mut seen).await;
    (seen, result)
}

async fn pick_source(
    job: &JobSettings,
    source: &SourceSettings,
    columns: Vec<String>,
    state: &StateStore,
    opts: &RunOptions,
    seen: &mut SourceSummary,
) -> Result<Option<Source>, Fail> {
    let (pattern, settle) = (source.path.clone(), source.settle);
    // Waits (bounded) until the newest file holds still, so a file written just before the run
    // is read once complete instead of refused or read half-written.
    let picked = blocking(move || crate::source::pick_settled(&pattern, settle)).await?;
    let Some(path) = picked else {
        return Err(fail_with(
            EXIT_INVALID,
            RunResult::NoSourceFile {
                path: source.path.clone(),
            },
        ));
    };
    seen.file = Some(path.clone());
    let p = path.clone();
    let content = blocking(move || crate::source::content_hash(&p)).await?;
    seen.hash = Some(content.clone());
    let hash = fingerprint(&content, job);
    let record = state.job_record(&job.name).map_err(state_fail)?;
    if !opts.full && record.last_synced_hash.as_deref() == Some(hash.as_str()) {
        seen.skipped = Some(RunResult::Unchanged {
            file: path.display().to_string(),
        });
        return Ok(None);
    }
    let (p, format, sheet) = (path.clone(), source.format, source.sheet.clone());
    blocking(move || check_columns(&p, format, sheet.as_deref(), &columns)).await?;
    Ok(Some(Source { path, hash, record }))
}

/// What decides the values a run sends: the file's content and the job's settings (its mapping
/// above all: `reserve`, `markup`, `round_to`, columns, `missing`). A run is skipped only when
/// both are what the last complete sync saw.
pub fn fingerprint(content_hash: &str, job: &JobSettings) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"yampi-sync fingerprint v1\0");
    h.update(content_hash.as_bytes());
    h.update(b"\0");
    // Debug of the validated settings: every field, in a fixed order (no hash maps inside).
    h.update(format!("{job:?}").as_bytes());
    h.finalize().to_hex().to_string()
}

/// Before the first write of a run: the source no longer counts as synced, durably, so a run that
/// stops half-way (failures, a kill) can never make the next run skip a file the store was sent
/// something else since.
pub async fn begin_writes(
    job: &JobSettings,
    state: &StateStore,
    source: &mut Source,
) -> Result<(), Fail> {
    if source.record.last_synced_hash.is_some() {
        source.record.last_synced_hash = None;
        source.record.last_synced_file = None;
        state
            .set_job_record(&job.name, &source.record)
            .map_err(state_fail)?;
        state.flush().await.map_err(state_fail)?;
    }
    Ok(())
}

/// Refreshes the SKU index, with a progress bar on a terminal (a first full scan of a big
/// catalog takes a while at 30 pages a minute); a job matching on `sku` lets a full rescan of a
/// big store read the SKU export instead.
pub async fn refresh_index(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
) -> Result<SkuIndex, Fail> {
    let pages = opts
        .progress
        .then(|| progress_bar(0, "page {pos}/{len}", format!("{}: SKU index", job.name)));
    let on_page = |page: u64, total: Option<u64>| {
        if let Some(pb) = &pages {
            pb.set_length(total.unwrap_or(page).max(page));
            pb.set_position(page);
        }
    };
    let scan = match &job.mapping {
        Some(m) if m.match_field == MatchField::Sku => index::Scan::Export {
            above: client.store().index_export_above,
            wait: crate::exports::Wait {
                timeout: job.queue_timeout,
                poll_every: client.store().queue_poll,
            },
            aliases: &m.export,
        },
        Some(m) => index::Scan::Paged(m.match_field),
        None => index::Scan::Paged(MatchField::Sku),
    };
    let idx = index::refresh_with(client, state, false, scan, on_page)
        .await
        .map_err(|e| fail(EXIT_FAILED, format!("cannot refresh the SKU index: {e}")))?;
    if let Some(pb) = pages {
        pb.finish_and_clear();
    }
    Ok(idx)
}

/// The guards that need only the feed: empty, or shrunk more than `max_shrink_pct`.
pub fn feed_guards(
    job: &JobSettings,
    record: &JobRecord,
    rows_valid: u64,
    path: &std::path::Path,
) -> Result<(), Fail> {
    if rows_valid == 0 {
        return Err(fail_with(
            EXIT_FAILED,
            RunResult::NoValidRows {
                file: path.display().to_string(),
            },
        ));
    }
    if let Some(last) = record.last_good_rows
        && last > 0
    {
        let last_d = Decimal::from(last);
        let shrink = (last_d - Decimal::from(rows_valid)) * Decimal::from(100) / last_d;
        if shrink > job.max_shrink_pct {
            return Err(fail_with(
                EXIT_FAILED,
                RunResult::FeedShrank {
                    pct: shrink.round_dp(1).to_string(),
                    valid: rows_valid,
                    last,
                    max: job.max_shrink_pct.to_string(),
                },
            ));
        }
    }
    Ok(())
}

/// A feed with valid rows of which not one key matches a store SKU is a mapping that does not fit
/// the store (wrong `match` or `key`), not a feed the store lacks: the job fails, naming both.
pub fn match_guard(
    mapping: &crate::mapping::Mapping,
    rows_valid: u64,
    rows_matched: u64,
    path: &std::path::Path,
) -> Result<(), Fail> {
    if rows_valid > 0 && rows_matched == 0 {
        return Err(fail_with(
            EXIT_FAILED,
            RunResult::NoKeyMatches {
                rows: rows_valid,
                key: mapping.key.clone(),
                file: path.display().to_string(),
                field: mapping.match_field.as_str(),
                mapping: mapping.path.display().to_string(),
            },
        ));
    }
    Ok(())
}

/// Exit 4 when anything was refused, else 0.
pub fn finish_code(report: &mut RunReport) {
    // A write whose outcome is unknown is never an OK run, whatever else was counted.
    let refused =
        !report.rejected.is_empty() || report.products_failed > 0 || report.unknown_outcomes() > 0;
    report.exit_code = if refused { EXIT_REJECTED } else { EXIT_OK };
    if report.message.is_empty() {
        report.message = if refused {
            "done, with rejected items".into()
        } else {
            "done".into()
        };
    }
}

/// Why one write failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Api(#[from] crate::shop::ApiError),
    #[error("cannot record the checkpoint: {0}")]
    State(#[from] StateError),
    #[error("{0}")]
    Refused(String),
    /// The write reached the store but how it ended is not known (a batch that never finished).
    #[error("{0}")]
    Unknown(String),
}

/// Why an operation is not counted as applied, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    pub message: String,
    /// It may have landed: reported as "outcome unknown", never as applied nor as refused.
    pub unknown: bool,
}

impl SendFailure {
    /// Known not sent, or refused.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            unknown: false,
        }
    }

    pub fn outcome(&self) -> crate::report::Outcome {
        let m = std::sync::Arc::from(self.message.as_str());
        if self.unknown {
            crate::report::Outcome::Unknown(m)
        } else {
            crate::report::Outcome::Failed(m)
        }
    }
}

impl From<&SendError> for SendFailure {
    fn from(e: &SendError) -> Self {
        Self {
            message: e.to_string(),
            unknown: e.outcome_unknown(),
        }
    }
}

impl SendError {
    /// Nothing else in this run can succeed (credentials refused, store unreachable, state
    /// store broken): stop sending.
    pub fn stops_job(&self) -> bool {
        match self {
            SendError::Api(e) => e.is_fatal_for_store(),
            SendError::State(_) => true,
            SendError::Refused(_) | SendError::Unknown(_) => false,
        }
    }

    /// Whether the write may have landed: as the ledger records it (an API error without a
    /// status: a timeout, a dropped connection, retries exhausted), or a write that never
    /// finished.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            SendError::Api(e) => e.status().is_none(),
            SendError::Unknown(_) => true,
            SendError::State(_) | SendError::Refused(_) => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            SendError::Api(e) => e.status(),
            _ => None,
        }
    }
}

/// What `send_all` did.
pub struct Sent<Op> {
    pub results: Vec<(Op, Result<(), SendFailure>)>,
    /// Set when a failure stopped the job; the ops after it were not sent.
    pub stopped: Option<String>,
    /// A write found a SKU or product gone (404/422): rescan the index next run.
    pub stale_index: bool,
}

/// Sends every op with at most `concurrency` in flight, ticking `progress`; after a failure
/// that stops the job, the remaining ops are reported as not sent. `send` owns the op while it
/// runs and hands it back with the result.
pub async fn send_all<Op, F, Fut>(
    ops: Vec<Op>,
    concurrency: usize,
    progress: Option<&indicatif::ProgressBar>,
    cancel: Option<&tokio_util::sync::CancellationToken>,
    send: F,
) -> Sent<Op>
where
    F: Fn(Op) -> Fut,
    Fut: std::future::Future<Output = (Op, Result<(), SendError>)>,
{
    use futures::StreamExt;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    let stop_reason: Mutex<Option<String>> = Mutex::new(None);
    let stale = AtomicBool::new(false);
    let results = futures::stream::iter(ops)
        .map(|op| {
            let (stop_reason, stale, send) = (&stop_reason, &stale, &send);
            async move {
                if cancel.is_some_and(|c| c.is_cancelled()) {
                    stop_reason
                        .lock()
                        .expect("reason")
                        .get_or_insert_with(|| "shutting down; the next run sends the rest".into());
                }
                if let Some(why) = stop_reason.lock().expect("reason").clone() {
                    return (
                        op,
                        Err(SendFailure::failed(format!(
                            "not sent: the job stopped ({why})"
                        ))),
                    );
                }
                let (op, r) = send(op).await;
                if let Err(e) = &r {
                    if e.stops_job() {
                        stop_reason
                            .lock()
                            .expect("reason")
                            .get_or_insert(e.to_string());
                    }
                    if matches!(e.status(), Some(404 | 422)) {
                        stale.store(true, Ordering::SeqCst);
                    }
                }
                if let Some(pb) = progress {
                    pb.inc(1);
                }
                (op, r.map_err(|e| SendFailure::from(&e)))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    Sent {
        results,
        stopped: stop_reason.into_inner().expect("reason"),
        stale_index: stale.load(Ordering::SeqCst),
    }
}
