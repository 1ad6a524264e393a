//! The daemon's scheduler on tokio's paused clock: a day of ticks passes in milliseconds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use tokio_util::sync::CancellationToken;
use yampi_sync::daemon::{Clock, Scheduler};

#[tokio::test(start_paused = true)]
async fn jobs_run_at_each_tick_of_their_schedule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "key = \"k\"\n[stock]\nquantity = \"q\"\n",
    )
    .unwrap();
    // The source never exists, so every run ends at once (exit 2) without touching the network;
    // what is measured is when runs start.
    let config = format!(
        r#"state_dir = "{}"
timezone = "America/Sao_Paulo"
[[store]]
name = "s"
alias = "a"
base_url = "http://127.0.0.1:9/v2"
user_token = "t"
user_secret_key = "k"
[[job]]
name = "every-10"
kind = "stock"
schedule = "*/10 * * * *"
source = {{ path = "nowhere/*.csv", settle_ms = 0 }}
mapping = "m.toml"
[[job]]
name = "at-13h-local"
kind = "stock"
schedule = "0 13 * * *"
source = {{ path = "nowhere/*.csv", settle_ms = 0 }}
mapping = "m.toml"
"#,
        dir.path().join("state").display()
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let settings = Arc::new(yampi_sync::config::load(&path, None).unwrap());
    let state = Arc::new(yampi_sync::state::StateStore::open(&settings.state_dir).unwrap());
    let clients = Arc::new(yampi_sync::pipeline::clients(&settings).unwrap());

    // 15:00:30 UTC = 12:00:30 in São Paulo.
    let base = Utc.with_ymd_and_hms(2026, 11, 22, 15, 0, 30).unwrap();
    let start = tokio::time::Instant::now();
    let clock: Clock =
        Arc::new(move || base + chrono::Duration::from_std(start.elapsed()).unwrap_or_default());
    let shutdown = CancellationToken::new();
    let mut scheduler = Scheduler::new(state.clone(), shutdown.clone(), clock);
    scheduler.start(&settings, &clients);
    // One hour of virtual time, a second at a time.
    for _ in 0..3600 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    shutdown.cancel();
    assert!(scheduler.stop(Duration::from_secs(60)).await);

    // 12:10, 12:20, 12:30, 12:40, 12:50 and 13:00 local; the daily job at 13:00 local
    // (16:00 UTC), once.
    let every_10 = state.runs("every-10").unwrap();
    assert_eq!(every_10.len(), 6, "{every_10:?}");
    assert!(
        every_10.iter().all(|r| r.exit_code == 2),
        "the source is missing: exit 2"
    );
    assert_eq!(state.runs("at-13h-local").unwrap().len(), 1);
}
