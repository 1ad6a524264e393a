//! The daemon's Prometheus metrics, rendered at each scrape from what `status` shows (the state
//! store's run records, interrupted writes, batch edits in doubt) and the API clients' answer
//! counters. Nothing here is kept in step by hand, so a scrape always says what the state store
//! says; the one thing remembered is each job's last successful end, read from the run records
//! once and then followed.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::config::{JobSettings, Settings};
use crate::pipeline::Clients;
use crate::report::{EXIT_OK, EXIT_REJECTED};
use crate::state::{RunRecord, StateStore};

/// The `Content-Type` of the text rendered here (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

type Labels = Vec<(String, String)>;
type F64Gauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// A run that synced: everything sent (0) or all but the rejected items (4).
pub fn synced(exit_code: i32) -> bool {
    exit_code == EXIT_OK || exit_code == EXIT_REJECTED
}

/// When a run ended, from its record.
pub fn ended_at(run: &RunRecord) -> DateTime<Utc> {
    let ms = i64::try_from(run.duration_ms).unwrap_or(i64::MAX);
    run.started_at
        .checked_add_signed(chrono::Duration::milliseconds(ms))
        .unwrap_or(run.started_at)
}

/// Items of a job waiting in its import queue. Imports do not exist yet, so this is 0; when
/// they do, this reads their queue length from the state store (the page and `/metrics` both
/// call it, so neither needs another change).
pub fn pending_queue_items(_state: &StateStore, _job: &JobSettings) -> u64 {
    0
}

/// Each job's last successful end: looked up in the run records the first time a job is seen,
/// then followed from its last run.
#[derive(Debug, Default)]
pub struct LastSuccess(Mutex<HashMap<String, Option<DateTime<Utc>>>>);

impl LastSuccess {
    /// The job's last successful end, given its last run (`None`: none recorded).
    pub fn get(
        &self,
        state: &StateStore,
        job: &str,
        last: Option<&RunRecord>,
    ) -> Option<DateTime<Utc>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(run) = last.filter(|r| synced(r.exit_code)) {
            let end = ended_at(run);
            map.insert(job.to_string(), Some(end));
            return Some(end);
        }
        *map.entry(job.to_string()).or_insert_with(|| {
            state
                .runs(job)
                .unwrap_or_default()
                .iter()
                .rev()
                .find(|r| synced(r.exit_code))
                .map(ended_at)
        })
    }
}

/// What a scrape reads.
pub struct Scrape<'a> {
    pub settings: &'a Settings,
    pub state: &'a StateStore,
    pub clients: &'a Clients,
    /// `status::rows` of `settings` and `state`.
    pub rows: &'a [Value],
    pub last_success: &'a LastSuccess,
    /// The daemon's start: "seconds since the last success" counts from here for a job that
    /// has none recorded, so an alert on it fires for a job that never syncs, but not at install.
    pub started_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub schedulers_alive: bool,
}

fn gauge(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, F64Gauge> {
    let family = Family::<Labels, F64Gauge>::default();
    registry.register(name, help, family.clone());
    family
}

fn job_label(job: &str) -> Labels {
    vec![("job".into(), job.into())]
}

/// The Prometheus text of one scrape.
pub fn render(s: &Scrape) -> String {
    let mut registry = Registry::default();
    let info = gauge(
        &mut registry,
        "yampi_sync_build_info",
        "The running version (always 1)",
    );
    info.get_or_create(&vec![(
        "version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )])
    .set(1.0);
    let alive = gauge(
        &mut registry,
        "yampi_sync_schedulers_alive",
        "1 while the job schedulers run (what /healthz answers 200 for), else 0",
    );
    alive
        .get_or_create(&vec![])
        .set(if s.schedulers_alive { 1.0 } else { 0.0 });

    let started = gauge(
        &mut registry,
        "yampi_sync_job_last_run_timestamp_seconds",
        "Start of the job's last run, Unix time",
    );
    let duration = gauge(
        &mut registry,
        "yampi_sync_job_last_run_duration_seconds",
        "How long the job's last run took",
    );
    let exit = gauge(
        &mut registry,
        "yampi_sync_job_last_exit_code",
        "Exit code of the job's last run: 0 ok, 2 bad input (nothing sent), 3 failed, 4 some items rejected",
    );
    let changed = gauge(
        &mut registry,
        "yampi_sync_job_last_changed",
        "SKUs the job's last run changed",
    );
    let rejected = gauge(
        &mut registry,
        "yampi_sync_job_last_rejected",
        "Rows or items the job's last run rejected",
    );
    let unmatched = gauge(
        &mut registry,
        "yampi_sync_job_last_unmatched",
        "Feed keys the job's last run found no SKU for",
    );
    let since = gauge(
        &mut registry,
        "yampi_sync_job_seconds_since_last_success",
        "Seconds since the job's last run that synced (exit 0 or 4) ended; since the daemon started when none is recorded",
    );
    let pending = gauge(
        &mut registry,
        "yampi_sync_job_pending_queue_items",
        "Items waiting in the job's import queue",
    );
    let writes_in_doubt = gauge(
        &mut registry,
        "yampi_sync_job_writes_in_doubt",
        "Interrupted writes the job's next run checks against the store",
    );
    let edits_in_doubt = gauge(
        &mut registry,
        "yampi_sync_job_edits_in_doubt",
        "Batch edit occurrences whose outcome is unknown (settle them with `yampi-sync resolve`)",
    );

    for (job, row) in s.settings.jobs.iter().zip(s.rows) {
        let labels = job_label(&job.name);
        let last: Option<RunRecord> = row
            .get("last_run")
            .filter(|v| !v.is_null())
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        if let Some(run) = &last {
            started
                .get_or_create(&labels)
                .set(run.started_at.timestamp_millis() as f64 / 1000.0);
            duration
                .get_or_create(&labels)
                .set(run.duration_ms as f64 / 1000.0);
            exit.get_or_create(&labels).set(f64::from(run.exit_code));
            changed.get_or_create(&labels).set(run.changed as f64);
            rejected.get_or_create(&labels).set(run.rejected as f64);
            unmatched.get_or_create(&labels).set(run.unmatched as f64);
        }
        let from = s
            .last_success
            .get(s.state, &job.name, last.as_ref())
            .unwrap_or(s.started_at);
        let secs = (s.now - from).num_milliseconds().max(0) as f64 / 1000.0;
        since.get_or_create(&labels).set(secs);
        pending
            .get_or_create(&labels)
            .set(pending_queue_items(s.state, job) as f64);
        writes_in_doubt
            .get_or_create(&labels)
            .set(row["writes_in_doubt"].as_u64().unwrap_or(0) as f64);
        edits_in_doubt.get_or_create(&labels).set(
            row["edits_in_doubt"]
                .as_array()
                .map_or(0, |a| a.len() as u64) as f64,
        );
    }

    let requests = Family::<Labels, Counter>::default();
    registry.register(
        "yampi_sync_api_requests",
        "Requests sent to the Yampi API (every attempt), by store, method, route and answer (HTTP status, `error` or `timeout`)",
        requests.clone(),
    );
    let limited = Family::<Labels, Counter>::default();
    registry.register(
        "yampi_sync_api_rate_limited",
        "Answers HTTP 429 (rate limited) from the Yampi API, by store",
        limited.clone(),
    );
    let mut stores: Vec<&String> = s.clients.keys().collect();
    stores.sort();
    for store in stores {
        let mut throttled = 0;
        for ((label, answer), n) in s.clients[store].answer_counts() {
            let (method, route) = label.split_once(' ').unwrap_or(("", label.as_str()));
            requests
                .get_or_create(&vec![
                    ("store".into(), store.clone()),
                    ("method".into(), method.to_string()),
                    ("route".into(), format!("/{route}")),
                    ("status".into(), answer.clone()),
                ])
                .inc_by(n);
            if answer == "429" {
                throttled += n;
            }
        }
        limited
            .get_or_create(&vec![("store".into(), store.clone())])
            .inc_by(throttled);
    }

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &registry);
    out
}
