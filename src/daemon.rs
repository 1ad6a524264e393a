//! Daemon mode: every job on its cron schedule, in the config's time zone, until SIGTERM/SIGINT.
//!
//! - One task per job. A job's next run is computed after its previous one ends, so it never
//!   overlaps itself; ticks that passed while it ran are skipped and logged, never replayed.
//!   Jobs of one store share that store's client and so its rate-limit budget; stores (and
//!   jobs) run concurrently. A failed run is simply run again at the next tick.
//! - SIGTERM/SIGINT: no new run and no new request starts; requests in flight finish and are
//!   checkpointed, reports are written, exit 0. A second signal, or `--grace-secs` passing,
//!   exits at once (exit 3): every checkpoint already written is durable.
//! - SIGHUP: the config and mappings are read again and validated; a valid one replaces the
//!   running one between runs, an invalid one is logged and the old one keeps running.
//! - systemd (`Type=notify`): READY once config, state and a health check pass, STATUS per phase,
//!   WATCHDOG pings when `WatchdogSec` is set, STOPPING on shutdown.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::{load_settings, open_runtime};
use crate::config::{self, JobSettings, Settings};
use crate::pipeline::{self, Clients, RunOptions};
use crate::report::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::shop::ShopClient;
use crate::state::StateStore;
use crate::systemd;

/// Where the scheduler reads the time: the wall clock in production; tests derive it from
/// tokio's (pausable) clock so whole days of schedule pass in milliseconds.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<Utc> + Send + Sync>;

pub fn wall_clock() -> Clock {
    Arc::new(Utc::now)
}

pub async fn run(config_path: &Path, state_dir: Option<&Path>, grace: Duration) -> i32 {
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
    if let Some(period) = systemd::watchdog_period() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                systemd::watchdog();
            }
        });
    }

    systemd::status("checking the stores");
    if !health_check(&clients, &shutdown).await {
        systemd::stopping();
        return EXIT_OK;
    }
    crate::status::write_snapshot(&settings, &state);
    systemd::ready(&format!("idle, {} job(s) scheduled", settings.jobs.len()));
    tracing::info!(config = %config_path.display(), jobs = settings.jobs.len(), "Daemon started");

    let mut hup = hangup_stream();
    let tracker = TaskTracker::new();
    let mut settings = Arc::new(settings);
    let mut clients = Arc::new(clients);
    let clock = wall_clock();
    let mut generation = start_jobs(&tracker, &settings, &state, &clients, &shutdown, &clock);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = hup.recv() => {
                systemd::reloading();
                match config::load(config_path, state_dir) {
                    Err(errors) => {
                        tracing::error!("Reload refused, the running config stays:\n{errors}");
                    }
                    Ok(new) if new.state_dir != settings.state_dir => {
                        tracing::error!(
                            "Reload refused: state_dir cannot change while running ({} → {}); restart instead",
                            settings.state_dir.display(),
                            new.state_dir.display()
                        );
                    }
                    Ok(new) => match pipeline::clients(&new) {
                        Ok(c) => {
                            // Jobs stop after their current run; the new ones take over.
                            generation.cancel();
                            settings = Arc::new(new);
                            clients = Arc::new(c);
                            generation =
                                start_jobs(&tracker, &settings, &state, &clients, &shutdown, &clock);
                            tracing::info!(jobs = settings.jobs.len(), "Config reloaded");
                        }
                        Err(e) => tracing::error!("Reload refused: {e}"),
                    },
                }
                systemd::ready(&format!("idle, {} job(s) scheduled", settings.jobs.len()));
            }
        }
    }

    systemd::stopping();
    tracing::info!(
        grace_secs = grace.as_secs(),
        "Stopping: requests in flight finish, nothing new starts"
    );
    tracker.close();
    let finished = tokio::time::timeout(grace, tracker.wait()).await.is_ok();
    crate::status::write_snapshot(&settings, &state);
    let _ = state.flush().await;
    if finished {
        tracing::info!("Stopped");
        EXIT_OK
    } else {
        tracing::error!(
            "Runs still going after the grace period; exiting (checkpoints already written are kept)"
        );
        EXIT_FAILED
    }
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
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let _ = tx.try_send(());
                }
            });
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// Waits until every store answers `GET /ping` (retrying with backoff); false on shutdown.
async fn health_check(clients: &Clients, shutdown: &CancellationToken) -> bool {
    for (name, client) in clients.iter() {
        let mut delay = Duration::from_secs(1);
        loop {
            match client.ping().await {
                Ok(()) => break,
                Err(e) => {
                    let msg = format!("waiting for store {name}: {e}");
                    tracing::warn!("{msg}");
                    systemd::status(&msg);
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(60));
        }
    }
    true
}

/// One task per scheduled job; returns the token that stops this generation of tasks.
pub fn start_jobs(
    tracker: &TaskTracker,
    settings: &Arc<Settings>,
    state: &Arc<StateStore>,
    clients: &Arc<Clients>,
    shutdown: &CancellationToken,
    clock: &Clock,
) -> CancellationToken {
    let generation = shutdown.child_token();
    for (i, job) in settings.jobs.iter().enumerate() {
        if job.schedule.is_none() {
            continue;
        }
        let Some(client) = clients.get(&job.store).cloned() else {
            continue;
        };
        let (settings, state) = (settings.clone(), state.clone());
        let (generation, shutdown, clock) = (generation.clone(), shutdown.clone(), clock.clone());
        tracker.spawn(async move {
            let job = &settings.jobs[i];
            job_loop(
                &settings,
                job,
                &state,
                &client,
                &generation,
                &shutdown,
                &clock,
            )
            .await;
        });
    }
    generation
}

async fn job_loop(
    settings: &Settings,
    job: &JobSettings,
    state: &StateStore,
    client: &ShopClient,
    generation: &CancellationToken,
    shutdown: &CancellationToken,
    clock: &Clock,
) {
    let Some(schedule) = &job.schedule else {
        return;
    };
    loop {
        let Some(next) = next_run(schedule, settings.timezone, clock()) else {
            tracing::info!(job = %job.name, "No future run in the schedule");
            return;
        };
        tracing::debug!(job = %job.name, next_run = %next, "Waiting for the next run");
        let wait = (next.with_timezone(&Utc) - clock())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            _ = generation.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        systemd::status(&format!("job {} running", job.name));
        let opts = RunOptions {
            jobs: vec![job.name.clone()],
            cancel: Some(shutdown.clone()),
            ..RunOptions::default()
        };
        let report = pipeline::run_job(settings, state, client, job, &opts).await;
        let after = clock();
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
