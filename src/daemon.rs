//! Daemon mode: every job on its cron schedule, in the config's time zone, until SIGTERM/SIGINT.
//!
//! Runs are sequential, so a job never overlaps itself and ticks that pass while a run is going
//! are skipped (the next tick is computed from the time the run ends), never replayed in a burst.

use std::path::Path;

use chrono::Utc;

use crate::app::{load_settings, open_runtime};
use crate::pipeline::{self, RunOptions};
use crate::report::{EXIT_INVALID, EXIT_OK};

pub async fn run(config_path: &Path, state_dir: Option<&Path>) -> i32 {
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
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    tracing::info!(config = %config_path.display(), jobs = settings.jobs.len(), "Daemon started");
    loop {
        let now = Utc::now().with_timezone(&settings.timezone);
        let next: Vec<(chrono::DateTime<chrono_tz::Tz>, String)> = settings
            .jobs
            .iter()
            .filter_map(|j| {
                j.schedule
                    .as_ref()
                    .and_then(|s| s.after(&now).next())
                    .map(|t| (t, j.name.clone()))
            })
            .collect();
        let Some(earliest) = next.iter().map(|(t, _)| *t).min() else {
            tracing::warn!("No job has a future run; stopping");
            return EXIT_OK;
        };
        let due: Vec<String> = next
            .into_iter()
            .filter(|(t, _)| *t == earliest)
            .map(|(_, n)| n)
            .collect();
        tracing::info!(next_run = %earliest, jobs = ?due, "Idle");
        let wait = (earliest.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("Stopping");
                return EXIT_OK;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        let opts = RunOptions {
            jobs: due,
            ..RunOptions::default()
        };
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("Stopping; checkpoints already written are kept");
                return EXIT_OK;
            }
            _ = pipeline::run_once(&settings, &state, &clients, &opts) => {}
        }
    }
}

async fn shutdown_signal() {
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
