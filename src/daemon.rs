//! Daemon mode: every job on its cron schedule, in the config's time zone, until SIGTERM/SIGINT.
//!
//! - One task per job. A job's next run is computed after its previous one ends, and a lock per
//!   job (kept across reloads) means it never overlaps itself; ticks that passed while it ran
//!   are skipped and logged, never replayed. Jobs of one store share that store's client and so
//!   its rate-limit budget, and a lock per store makes them run one after another; different
//!   stores run concurrently. A failed run is simply run again at the next tick.
//! - A panic inside a run is that run's failure (exit 3, see `pipeline::run_job`). A panic in a
//!   job's scheduling task stops the daemon (exit 3) so the service manager restarts it; the
//!   watchdog is pinged by the loop that watches those tasks, so it stops with them.
//! - SIGTERM/SIGINT: no new run and no new request starts; requests in flight finish and are
//!   checkpointed, reports are written, exit 0. A second signal, or `--grace-secs` passing,
//!   exits at once (exit 3): every checkpoint already written is durable.
//! - SIGHUP (handled from start-up on, also while waiting for the stores): the config and
//!   mappings are read again and validated; a valid one replaces the running one between runs,
//!   an invalid one is logged and the old one keeps running. A store whose settings did not
//!   change keeps its client, so its rate-limit budget carries over.
//! - `[metrics] listen` (see `web`): Prometheus metrics, `/healthz` (200 while the job
//!   schedulers run and their watching loop beats) and the status page, bound before READY.
//! - systemd (`Type=notify`): READY once config, state and a health check pass, STATUS per phase,
//!   WATCHDOG pings when `WatchdogSec` is set, STOPPING on shutdown.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, JobSettings, Settings};
use crate::pipeline::{self, Clients, RunOptions};
use crate::report::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::runtime::{load_settings, open_runtime};
use crate::shop::{ApiError, ShopClient};
use crate::state::StateStore;
use crate::systemd;
use crate::web;

/// Where the scheduler reads the time: the wall clock in production; tests derive it from
/// tokio's (pausable) clock so whole days of schedule pass in milliseconds.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<Utc> + Send + Sync>;

pub fn wall_clock() -> Clock {
    Arc::new(Utc::now)
}

pub async fn run(config_path: &Path, state_dir: Option<&Path>, grace: Duration) -> i32 {
    // Before anything that can wait: SIGHUP's default action would end the process.
    let mut hup = hangup_stream();
    let Some(settings) = load_settings(config_path, state_dir) else {
        return EXIT_INVALID;
    };
    if settings.jobs.iter().all(|j| j.schedule.is_none()) {
        eprintln!(
            "error: no job in {} has a `schedule`; add one, or use --run-once",
            config_path.display()
        );
        return EXIT_INVALID;
    }
    let (state, clients) = match open_runtime(&settings) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let state = Arc::new(state);
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    let mut watchdog = systemd::watchdog_period().map(tokio::time::interval);
    let mut settings = Arc::new(settings);
    let mut clients = Arc::new(clients);
    let health = Arc::new(web::Health::default());
    let (current, web_stop) = match start_web(&settings, &clients, &state, &health).await {
        Ok(x) => x,
        Err(why) => {
            tracing::error!("{why}");
            return EXIT_FAILED;
        }
    };

    systemd::status("checking the stores");
    loop {
        match health_check(&clients, &shutdown, &mut hup, &mut watchdog).await {
            Health::Up => break,
            Health::Shutdown => {
                systemd::stopping();
                web_stop.cancel();
                return EXIT_OK;
            }
            Health::Refused(why) => {
                tracing::error!("{why}");
                systemd::stopping();
                web_stop.cancel();
                return EXIT_FAILED;
            }
            Health::Reload => {
                systemd::reloading();
                if let Some((s, c)) = reload(config_path, state_dir, &settings, &clients) {
                    settings = Arc::new(s);
                    clients = Arc::new(c);
                    current.send_replace((settings.clone(), clients.clone()));
                    tracing::info!(jobs = settings.jobs.len(), "Config reloaded");
                }
                systemd::status("checking the stores");
            }
        }
    }
    crate::status::write_snapshot(&settings, &state);
    systemd::ready(&format!("idle, {} job(s) scheduled", settings.jobs.len()));
    tracing::info!(config = %config_path.display(), jobs = settings.jobs.len(), "Daemon started");

    // One file server for the daemon's life, shared by every run (a reload keeps it).
    let publish = match crate::app::start_publish(&settings, &RunOptions::default()).await {
        Ok(p) => p,
        Err(code) => {
            systemd::stopping();
            return code;
        }
    };
    let mut scheduler = Scheduler::new(state.clone(), shutdown.clone(), wall_clock());
    scheduler.publish = publish.clone();
    scheduler.start(&settings, &clients);
    health.set(web::Phase::Running);
    let mut heartbeat = tokio::time::interval(web::BEAT_EVERY);
    let mut exit = EXIT_OK;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = hup.recv() => {
                systemd::reloading();
                if let Some((s, c)) = reload(config_path, state_dir, &settings, &clients) {
                    settings = Arc::new(s);
                    clients = Arc::new(c);
                    // Old tasks stop after their current run; the locks hold the new ones back
                    // until it ends.
                    scheduler.start(&settings, &clients);
                    current.send_replace((settings.clone(), clients.clone()));
                    tracing::info!(jobs = settings.jobs.len(), "Config reloaded");
                }
                systemd::ready(&format!("idle, {} job(s) scheduled", settings.jobs.len()));
            }
            why = scheduler.died() => {
                health.set(web::Phase::Failed);
                tracing::error!("{why}");
                exit = EXIT_FAILED;
                break;
            }
            // Pinged here, by the loop that watches the job tasks: if it stops, so do the pings.
            _ = tick(&mut watchdog) => systemd::watchdog(),
            // `/healthz` goes 503 when these beats stop, as the watchdog's pings would.
            _ = heartbeat.tick() => health.beat(),
        }
    }
    if health.phase() == web::Phase::Running {
        health.set(web::Phase::Stopping);
    }

    systemd::stopping();
    tracing::info!(
        grace_secs = grace.as_secs(),
        "Stopping: requests in flight finish, nothing new starts"
    );
    shutdown.cancel();
    let finished = scheduler.stop(grace).await;
    if let Some(p) = publish {
        p.shutdown().await;
    }
    crate::status::write_snapshot(&settings, &state);
    let _ = state.flush().await;
    web_stop.cancel();
    if finished {
        tracing::info!("Stopped");
        exit
    } else {
        tracing::error!(
            "Runs still going after the grace period; exiting (checkpoints already written are kept)"
        );
        EXIT_FAILED
    }
}

/// Starts the `[metrics]` listener, if configured (bound before READY: a taken port fails the
/// start). Returns where to send each new config generation, and what stops the listener.
async fn start_web(
    settings: &Arc<Settings>,
    clients: &Arc<Clients>,
    state: &Arc<StateStore>,
    health: &Arc<web::Health>,
) -> Result<(tokio::sync::watch::Sender<web::Current>, CancellationToken), String> {
    let (current, receiver) = tokio::sync::watch::channel((settings.clone(), clients.clone()));
    let stop = CancellationToken::new();
    let Some(m) = &settings.metrics else {
        return Ok((current, stop));
    };
    let listener = web::bind(m.listen).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let page = if m.token.is_some() {
        "the status page at / (with the token)"
    } else {
        "no status page (no `[metrics] token`)"
    };
    // Only the address: never the token.
    tracing::info!("Listening on http://{addr}: /metrics, /healthz and {page}");
    let web = Arc::new(web::WebState {
        current: receiver,
        state: state.clone(),
        health: health.clone(),
        started_at: Utc::now(),
        last_success: Default::default(),
    });
    tokio::spawn(web::serve(listener, web, stop.clone()));
    Ok((current, stop))
}

/// The next watchdog tick, or never when systemd does not ask for pings.
async fn tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Reads and validates the config again. `None` (logged) keeps the running one.
fn reload(
    config_path: &Path,
    state_dir: Option<&Path>,
    current: &Settings,
    clients: &Clients,
) -> Option<(Settings, Clients)> {
    match config::load(config_path, state_dir) {
        Err(errors) => {
            tracing::error!("Reload refused, the running config stays:\n{errors}");
            None
        }
        Ok(new) if new.state_dir != current.state_dir => {
            tracing::error!(
                "Reload refused: state_dir cannot change while running ({} → {}); restart instead",
                current.state_dir.display(),
                new.state_dir.display()
            );
            None
        }
        Ok(new) => match reuse_clients(clients, &new) {
            Ok(c) => {
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                let listen = |s: &Settings| s.metrics.as_ref().map(|m| m.listen);
                if listen(&new) != listen(current) {
                    tracing::warn!(
                        "`[metrics] listen` changed: the listener moves at the next restart (the token and everything else apply now)"
                    );
                }
                Some((new, c))
            }
            Err(e) => {
                tracing::error!("Reload refused: {e}");
                None
            }
        },
    }
}

/// One client per store of `new`: the running one when that store's settings did not change
/// (its rate-limit budget, and what it learned of the server's windows, carry over), else a new one.
pub fn reuse_clients(old: &Clients, new: &Settings) -> Result<Clients, String> {
    new.stores
        .iter()
        .map(|s| {
            let client = match old.get(&s.name) {
                Some(c) if c.store() == &**s => c.clone(),
                Some(c) => {
                    // The store's request counters carry over, so its metrics never go back.
                    let mut fresh = ShopClient::new(s.clone())?;
                    fresh.share_answer_counts(c);
                    Arc::new(fresh)
                }
                None => Arc::new(ShopClient::new(s.clone())?),
            };
            Ok((s.name.clone(), client))
        })
        .collect()
}

/// First SIGTERM/SIGINT: cancel. Second: exit at once.
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        shutdown_signal().await;
        shutdown.cancel();
        shutdown_signal().await;
        tracing::error!("Second signal: exiting now");
        std::process::exit(EXIT_FAILED);
    });
}

fn hangup_stream() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        let _ = tx.try_send(());
                    }
                });
            }
            Err(e) => tracing::warn!("cannot listen for SIGHUP ({e}); reloads are not possible"),
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// How the start-up health check ended.
#[derive(Debug)]
enum Health {
    /// Every store's API answered.
    Up,
    /// SIGTERM/SIGINT while waiting.
    Shutdown,
    /// SIGHUP while waiting: reload, then check again.
    Reload,
    /// A store refused the credentials: waiting cannot help.
    Refused(String),
}

/// What one `GET /ping` answer means for start-up.
#[derive(Debug, PartialEq, Eq)]
enum Ping {
    Up,
    /// Nothing answered, or the server failed (network error, 5xx): wait and try again.
    Wait(String),
    Refused(String),
}

fn classify_ping(store: &str, answer: Result<(), ApiError>) -> Ping {
    match answer {
        Ok(()) => Ping::Up,
        Err(ApiError::Status {
            status: status @ (401 | 403),
            message,
            ..
        }) => Ping::Refused(format!(
            "store {store}: GET /ping was refused with HTTP {status} ({message}); the API does not accept \
             this store's credentials: check `user_token` and `user_secret_key` (and the variables they name)"
        )),
        Err(e @ ApiError::Status { status: 500.., .. }) => Ping::Wait(e.to_string()),
        Err(ApiError::Status {
            status, message, ..
        }) => {
            // The API answered, so it is reachable; what `ping` itself says does not matter.
            tracing::warn!(
                "store {store}: GET /ping answered HTTP {status} ({message}); the API is reachable, going on"
            );
            Ping::Up
        }
        Err(e @ ApiError::Exhausted { .. }) => Ping::Wait(e.to_string()),
        Err(ApiError::Decode { .. }) => Ping::Up,
    }
}

/// Waits until every store answers `GET /ping` (retrying network errors and 5xx with backoff).
async fn health_check(
    clients: &Clients,
    shutdown: &CancellationToken,
    hup: &mut tokio::sync::mpsc::Receiver<()>,
    watchdog: &mut Option<tokio::time::Interval>,
) -> Health {
    let mut names: Vec<&String> = clients.keys().collect();
    names.sort();
    for name in names {
        let client = &clients[name];
        let mut delay = Duration::from_secs(1);
        loop {
            match classify_ping(name, client.ping().await) {
                Ping::Up => break,
                Ping::Refused(why) => return Health::Refused(why),
                Ping::Wait(e) => {
                    let msg = format!("waiting for store {name}: {e}");
                    tracing::warn!("{msg}");
                    systemd::status(&msg);
                }
            }
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return Health::Shutdown,
                    Some(()) = hup.recv() => return Health::Reload,
                    _ = tick(watchdog) => systemd::watchdog(),
                    _ = &mut sleep => break,
                }
            }
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    }
    Health::Up
}

/// One job's lock; it holds when that job's last run ended.
pub type JobLock = Arc<AsyncMutex<Option<DateTime<Utc>>>>;

/// Locks that outlive reloads: one per job (holding when its last run ended) and one per
/// store, keyed by API root and alias so a renamed store is still the same store.
#[derive(Default)]
pub struct RunLocks {
    jobs: Mutex<HashMap<String, JobLock>>,
    stores: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

impl RunLocks {
    pub fn job(&self, name: &str) -> JobLock {
        let mut map = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    pub fn store(&self, client: &ShopClient) -> Arc<AsyncMutex<()>> {
        let s = client.store();
        let key = format!("{} {}", s.base_url, s.alias);
        let mut map = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    }
}

/// The job tasks of the running config, and what they share across reloads.
pub struct Scheduler {
    state: Arc<StateStore>,
    shutdown: CancellationToken,
    clock: Clock,
    locks: Arc<RunLocks>,
    tracker: TaskTracker,
    /// Every job task of every generation; each ends with `Some(sentence)` when it panicked.
    tasks: JoinSet<Option<String>>,
    generation: CancellationToken,
    /// The `[publish]` file server the runs share, when the daemon started one.
    pub publish: Option<crate::publish::PublishServer>,
}

impl Scheduler {
    pub fn new(state: Arc<StateStore>, shutdown: CancellationToken, clock: Clock) -> Self {
        let generation = shutdown.child_token();
        Self {
            state,
            shutdown,
            clock,
            locks: Arc::default(),
            tracker: TaskTracker::new(),
            tasks: JoinSet::new(),
            generation,
            publish: None,
        }
    }

    /// Starts one task per scheduled job of `settings`; the tasks of the previous call stop
    /// waiting at once and end after the run they are in, if any.
    pub fn start(&mut self, settings: &Arc<Settings>, clients: &Arc<Clients>) {
        self.generation.cancel();
        self.generation = self.shutdown.child_token();
        for (i, job) in settings.jobs.iter().enumerate() {
            if job.schedule.is_none() {
                continue;
            }
            let Some(client) = clients.get(&job.store).cloned() else {
                continue;
            };
            let task = JobTask {
                settings: settings.clone(),
                index: i,
                state: self.state.clone(),
                job_lock: self.locks.job(&job.name),
                store_lock: self.locks.store(&client),
                client,
                generation: self.generation.clone(),
                shutdown: self.shutdown.clone(),
                clock: self.clock.clone(),
                publish: self.publish.clone(),
            };
            let name = job.name.clone();
            self.tasks
                .spawn(self.tracker.track_future(async move {
                    match AssertUnwindSafe(task.run()).catch_unwind().await {
                        Ok(()) => None,
                        Err(p) => Some(format!(
                            "The scheduler of job {name} stopped on an internal error ({}); stopping so \
                             the service manager restarts yampi-sync (please report this with the log)",
                            crate::panics::message(p.as_ref())
                        )),
                    }
                }));
        }
    }

    /// Resolves when a job task has died; tasks that ended normally are set aside.
    pub async fn died(&mut self) -> String {
        loop {
            match self.tasks.join_next().await {
                None => std::future::pending::<()>().await,
                Some(Ok(None)) => {}
                Some(Ok(Some(why))) => return why,
                Some(Err(e)) => return format!("A job task ended abnormally ({e}); stopping"),
            }
        }
    }

    /// After shutdown was cancelled: waits up to `grace` for runs in flight; false if they outlast it.
    pub async fn stop(self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// What one job's task needs, owned, so the task outlives the config it was started with.
struct JobTask {
    settings: Arc<Settings>,
    index: usize,
    state: Arc<StateStore>,
    client: Arc<ShopClient>,
    job_lock: JobLock,
    store_lock: Arc<AsyncMutex<()>>,
    generation: CancellationToken,
    shutdown: CancellationToken,
    clock: Clock,
    publish: Option<crate::publish::PublishServer>,
}

impl JobTask {
    async fn run(self) {
        let job = &self.settings.jobs[self.index];
        job_loop(&self, job).await;
    }
}

async fn job_loop(t: &JobTask, job: &JobSettings) {
    let Some(schedule) = &job.schedule else {
        return;
    };
    let clock = &t.clock;
    loop {
        let Some(next) = next_run(schedule, t.settings.timezone, clock()) else {
            tracing::info!(job = %job.name, "No future run in the schedule");
            return;
        };
        tracing::debug!(job = %job.name, next_run = %next, "Waiting for the next run");
        let wait = (next.with_timezone(&Utc) - clock())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            _ = t.generation.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        crate::panics::injected_panic("scheduler", &job.name);
        // This job's lock first, then its store's: one run per job and one per store at a
        // time, whichever config generation started them; always in this order, so no deadlock.
        let (mut last_ended, _store) = tokio::select! {
            _ = t.generation.cancelled() => return,
            locks = async {
                let j = t.job_lock.clone().lock_owned().await;
                let s = t.store_lock.clone().lock_owned().await;
                (j, s)
            } => locks,
        };
        if last_ended.is_some_and(|ended| ended > next.with_timezone(&Utc)) {
            // A run of this job from before a reload was still going at this tick.
            tracing::warn!(
                job = %job.name,
                tick = %next,
                "A run started before the reload outlasted this tick; it was skipped, not queued"
            );
            continue;
        }
        systemd::status(&format!("job {} running", job.name));
        let opts = RunOptions {
            jobs: vec![job.name.clone()],
            cancel: Some(t.shutdown.clone()),
            // The scheduler's clock decides which batch-edit occurrence is due (and how late).
            now: Some(clock()),
            publish: t.publish.clone(),
            ..RunOptions::default()
        };
        let report = pipeline::run_job(&t.settings, &t.state, &t.client, job, &opts).await;
        let after = clock();
        *last_ended = Some(after);
        let skipped = missed_ticks(schedule, next, after);
        if skipped > 0 {
            tracing::warn!(
                job = %job.name,
                skipped,
                "The run outlasted {skipped} tick(s) of its schedule; they were skipped, not queued"
            );
        }
        let upcoming = schedule
            .after(&after)
            .next()
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        systemd::status(&format!(
            "idle; job {} last exit {}, next run at {upcoming}",
            job.name, report.exit_code
        ));
    }
}

/// The first scheduled time strictly after `now`, in the config's zone.
pub fn next_run(
    schedule: &cron::Schedule,
    tz: chrono_tz::Tz,
    now: chrono::DateTime<Utc>,
) -> Option<chrono::DateTime<chrono_tz::Tz>> {
    schedule.after(&now.with_timezone(&tz)).next()
}

/// Ticks after `tick` that passed before a run started at `tick` ended: skipped, not queued.
pub fn missed_ticks(
    schedule: &cron::Schedule,
    tick: chrono::DateTime<chrono_tz::Tz>,
    ended: chrono::DateTime<Utc>,
) -> usize {
    schedule
        .after(&tick)
        .take_while(|t| t.with_timezone(&Utc) < ended)
        .count()
}

/// SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_long_run_skips_the_ticks_it_outlasted_and_resumes_after_it() {
        let every_10 = crate::config::parse_schedule("*/10 * * * *").unwrap();
        let tz = chrono_tz::America::Sao_Paulo;
        let tick = next_run(&every_10, tz, utc("2026-11-22T12:03:00Z")).unwrap();
        assert_eq!(tick.with_timezone(&Utc), utc("2026-11-22T12:10:00Z"));
        // The run took 25 minutes: the 12:20 and 12:30 ticks are skipped, the next is 12:40.
        let ended = utc("2026-11-22T12:35:00Z");
        assert_eq!(missed_ticks(&every_10, tick, ended), 2);
        assert_eq!(
            next_run(&every_10, tz, ended).unwrap().with_timezone(&Utc),
            utc("2026-11-22T12:40:00Z")
        );
        // A short run misses nothing.
        assert_eq!(
            missed_ticks(&every_10, tick, utc("2026-11-22T12:11:00Z")),
            0
        );
    }

    fn status(status: u16) -> Result<(), ApiError> {
        Err(ApiError::Status {
            method: "GET".into(),
            route: "ping".into(),
            status,
            message: "m".into(),
            body: String::new(),
        })
    }

    #[test]
    fn only_network_errors_and_5xx_wait_for_the_store() {
        assert_eq!(classify_ping("s", Ok(())), Ping::Up);
        assert_eq!(classify_ping("s", status(404)), Ping::Up);
        assert_eq!(classify_ping("s", status(429)), Ping::Up);
        assert!(matches!(classify_ping("s", status(503)), Ping::Wait(_)));
        let dropped = Err(ApiError::Exhausted {
            method: "GET".into(),
            route: "ping".into(),
            attempts: 1,
            last: "connection refused".into(),
            maybe_applied: false,
        });
        assert!(matches!(classify_ping("s", dropped), Ping::Wait(_)));
        for code in [401, 403] {
            let Ping::Refused(why) = classify_ping("s", status(code)) else {
                panic!("{code} must fail fast");
            };
            assert!(
                why.contains("user_token") && why.contains("user_secret_key"),
                "{why}"
            );
        }
    }

    fn settings(text: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        crate::config::load(&path, None).unwrap()
    }

    #[test]
    fn a_reload_keeps_the_client_of_an_unchanged_store() {
        let config = |retries: u32| {
            format!(
                "state_dir = \"s\"\n[[store]]\nname = \"a\"\nalias = \"a\"\nuser_token = \"t\"\nuser_secret_key = \"k\"\n\
                 [[store]]\nname = \"b\"\nalias = \"b\"\nuser_token = \"t\"\nuser_secret_key = \"k\"\nmax_retries = {retries}\n"
            )
        };
        let first = settings(&config(6));
        let old = pipeline::clients(&first).unwrap();
        let same = reuse_clients(&old, &settings(&config(6))).unwrap();
        assert!(Arc::ptr_eq(&old["a"], &same["a"]));
        assert!(Arc::ptr_eq(&old["b"], &same["b"]));
        let changed = reuse_clients(&old, &settings(&config(7))).unwrap();
        assert!(
            Arc::ptr_eq(&old["a"], &changed["a"]),
            "store a did not change"
        );
        assert!(!Arc::ptr_eq(&old["b"], &changed["b"]), "store b did");
        assert_eq!(changed["b"].store().max_retries, 7);
    }

    #[tokio::test]
    async fn a_store_s_request_counters_survive_a_reload_that_replaces_its_client() {
        let sim = crate::sim::Simulator::start(
            crate::sim::SimConfig {
                alias: "a".into(),
                user_token: "t".into(),
                user_secret_key: "k".into(),
                ..Default::default()
            },
            crate::sim::sample_catalog(1, 1, 1),
        )
        .await
        .unwrap();
        let config = |retries: u32| {
            format!(
                "state_dir = \"s\"\n[[store]]\nname = \"a\"\nalias = \"a\"\nbase_url = \"{}\"\n\
                 user_token = \"t\"\nuser_secret_key = \"k\"\nmax_retries = {retries}\n",
                sim.base_url()
            )
        };
        let old = pipeline::clients(&settings(&config(6))).unwrap();
        let list = |c: Arc<ShopClient>| async move {
            c.send(reqwest::Method::GET, "/catalog/skus", &[], None, true)
                .await
                .unwrap();
        };
        list(old["a"].clone()).await;
        let new = reuse_clients(&old, &settings(&config(7))).unwrap();
        assert!(!Arc::ptr_eq(&old["a"], &new["a"]), "a new client");
        list(new["a"].clone()).await;
        let route = ("GET catalog/skus".to_string(), "200".to_string());
        assert_eq!(
            new["a"].answer_counts().get(&route),
            Some(&2),
            "{:?}",
            new["a"].answer_counts()
        );
    }

    #[tokio::test]
    async fn the_locks_of_a_job_and_a_store_are_shared_across_generations() {
        let locks = RunLocks::default();
        let s = settings(
            "state_dir = \"s\"\n[[store]]\nname = \"a\"\nalias = \"a\"\nuser_token = \"t\"\nuser_secret_key = \"k\"\n",
        );
        let c1 = pipeline::clients(&s).unwrap();
        let c2 = pipeline::clients(&s).unwrap();
        assert!(Arc::ptr_eq(&locks.job("j"), &locks.job("j")));
        assert!(!Arc::ptr_eq(&locks.job("j"), &locks.job("k")));
        // Two clients of one store (two config generations) share its lock.
        let held = locks.store(&c1["a"]).lock_owned().await;
        assert!(locks.store(&c2["a"]).try_lock().is_err());
        drop(held);
        assert!(locks.store(&c2["a"]).try_lock().is_ok());
    }

    #[test]
    fn next_run_is_strictly_after_now() {
        let s = crate::config::parse_schedule("0 * * * *").unwrap();
        let tz = chrono_tz::UTC;
        let on_the_hour = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        assert_eq!(
            next_run(&s, tz, on_the_hour).unwrap().with_timezone(&Utc),
            Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 0).unwrap()
        );
    }
}
