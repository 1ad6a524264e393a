//! The daemon never runs a job twice at once, survives panics and starts cleanly: runs of one
//! store never overlap (not even across SIGHUP), a panic in a run is that run's failure, a dead
//! scheduler stops the daemon, SIGHUP during the start-up wait is handled, `GET /ping` answers
//! other than 2xx/5xx do not block READY, and `check` refuses numbers that cannot work.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::daemon::*;
use support::*;
use yampi_sync::pipeline::RunOptions;
use yampi_sync::sim::{Faults, sample_catalog};

/// The hidden switch that makes the binary panic at a chosen place (see `daemon::injected_panic`).
const PANIC_SWITCH: &str = "YAMPI_SYNC_TESTING_ONLY_INJECT_PANIC";

fn second_job(name: &str) -> String {
    let glob = "erp/estoque-*.csv";
    job_table(name, "stock", glob, "stock.toml", Some("* * * * * *"))
}

/// The binary on the config file at `path`, with no credentials in its environment.
fn binary_on(path: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yampi-sync"))
        .arg("--config")
        .arg(path)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_one_store_never_overlap_not_even_across_reloads() {
    let catalog = sample_catalog(24, 1, 2);
    let mut env = Env::start(catalog.clone()).await;
    env.schedule = "* * * * * *".into();
    env.job_extra = second_job("estoque-b");
    // Slow answers: a run with writes lasts longer than a tick of the schedule.
    env.sim.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let mut daemon = spawn_daemon(&env, &[], &[]);
    let products = catalog.products.len();
    for round in 1..=2usize {
        if round > 1 {
            env.write_feed(
                &format!("estoque-{round}.csv"),
                &feed_for(&catalog, |p, s| {
                    let (a, b) = qty(p, s);
                    (a + round as i64, b)
                }),
            );
        }
        let before = env.writes();
        // A reload while a run is writing: the new job tasks must not start a second run of it.
        wait_until("a run writing", 30, &env, || env.writes() > before).await;
        signal(&daemon, "-HUP");
        wait_until("the reload", 10, &env, || {
            log_of(&env).matches("Config reloaded").count() >= round
        })
        .await;
        // Both jobs write every product once per feed.
        wait_until("both jobs synced the feed", 60, &env, || {
            env.writes() >= before + 2 * products
        })
        .await;
    }
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 30), Some(0), "{}", log_of(&env));
    for p in &catalog.products {
        assert_eq!(
            env.applied_syncs(p.id),
            4,
            "product {}: each job wrote each feed once",
            p.id
        );
    }
    let state = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
    let mut runs: Vec<(
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
        String,
    )> = ["estoque", "estoque-b"]
        .iter()
        .flat_map(|j| state.runs(j).unwrap())
        .map(|r| {
            let end = r.started_at + chrono::Duration::milliseconds(r.duration_ms as i64);
            (r.started_at, end, r.job)
        })
        .collect();
    runs.sort();
    assert!(runs.len() >= 4, "{runs:?}");
    let slack = chrono::Duration::milliseconds(10);
    for w in runs.windows(2) {
        assert!(
            w[1].0 + slack >= w[0].1,
            "two runs of one store overlapped: {} {}..{} and {} {}..{}",
            w[0].2,
            w[0].0,
            w[0].1,
            w[1].2,
            w[1].0,
            w[1].1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_one_shot_run_is_that_runs_failure_with_exit_3() {
    let catalog = sample_catalog(3, 1, 2);
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let out = env
        .command(&["--run-once"])
        .env(PANIC_SWITCH, "run:estoque")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stopped on an internal error"), "{stdout}");
    let state = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
    let runs = state.runs("estoque").unwrap();
    assert_eq!(runs.len(), 1, "the failed run is recorded");
    assert_eq!(runs[0].exit_code, 3);
    drop(state);
    // Anything but the exact switch does nothing.
    let out = env
        .command(&["--run-once"])
        .env(PANIC_SWITCH, "run:estoque ")
        .output()
        .unwrap();
    assert_exit(&out, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retention_beyond_the_calendar_does_not_panic_after_the_writes() {
    let catalog = sample_catalog(3, 1, 2);
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    // `check` refuses it now; set past validation to reach the housekeeping itself.
    let mut opened = env.open();
    opened.settings.retention_days = 100_000_000;
    let (_, reports) = opened.run(&RunOptions::default()).await;
    assert_eq!(reports[0].exit_code, 0, "{}", reports[0].summary_line());
    assert_eq!(opened.state.runs("estoque").unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_records_a_panicking_run_as_failed_and_goes_on() {
    let catalog = sample_catalog(3, 1, 2);
    let env = every_second_env(&catalog).await;
    let mut daemon = spawn_daemon(&env, &[], &[(PANIC_SWITCH, "run:estoque")]);
    wait_until("two failed runs", 30, &env, || {
        log_of(&env).matches("stopped on an internal error").count() >= 2
    })
    .await;
    assert!(daemon.try_wait().unwrap().is_none(), "still running");
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 20), Some(0), "{}", log_of(&env));
    let state = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
    let runs = state.runs("estoque").unwrap();
    assert!(runs.len() >= 2, "{runs:?}");
    assert!(runs.iter().all(|r| r.exit_code == 3), "{runs:?}");
    assert_eq!(env.writes(), 0, "the panic came before any write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_scheduler_stops_the_watchdog_and_the_daemon_exits_3() {
    let catalog = sample_catalog(3, 1, 2);
    let env = every_second_env(&catalog).await;
    let mut notify = Notifications::bind(&env);
    let mut daemon = spawn_daemon(
        &env,
        &[],
        &[
            (PANIC_SWITCH, "scheduler:estoque"),
            ("NOTIFY_SOCKET", &notify.env_value()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    notify.wait_for("WATCHDOG=1", &env);
    assert_eq!(wait_exit(&mut daemon, 30), Some(3), "{}", log_of(&env));
    let log = log_of(&env);
    assert!(log.contains("scheduler of job estoque stopped"), "{log}");
    // After the scheduler died no watchdog ping was sent.
    let after = notify.read_rest(Duration::from_millis(200));
    let tail = after.rsplit("STOPPING=1").next().unwrap_or_default();
    assert!(!tail.contains("WATCHDOG=1"), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_while_waiting_for_the_store_at_start_up_is_applied() {
    let catalog = sample_catalog(3, 1, 2);
    let env = every_second_env(&catalog).await;
    env.sim.set_faults(Faults {
        ping_status: Some(503),
        ..Faults::default()
    });
    let mut daemon = spawn_daemon(&env, &[], &[]);
    wait_until("the start-up wait", 20, &env, || {
        log_of(&env).contains("waiting for store loja")
    })
    .await;
    signal(&daemon, "-HUP");
    wait_until("the reload during the wait", 10, &env, || {
        log_of(&env).contains("Config reloaded")
    })
    .await;
    assert!(daemon.try_wait().unwrap().is_none(), "still running");
    env.sim.set_faults(Faults::default());
    wait_until("the first sync", 30, &env, || env.writes() >= 3).await;
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 20), Some(0), "{}", log_of(&env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_answering_404_does_not_block_ready() {
    let catalog = sample_catalog(3, 1, 2);
    let env = every_second_env(&catalog).await;
    env.sim.set_faults(Faults {
        ping_status: Some(404),
        ..Faults::default()
    });
    let mut notify = Notifications::bind(&env);
    let mut daemon = spawn_daemon(&env, &[], &[("NOTIFY_SOCKET", &notify.env_value())]);
    notify.wait_for("READY=1", &env);
    wait_until("the first sync", 30, &env, || env.writes() >= 3).await;
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 20), Some(0), "{}", log_of(&env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_refusing_the_credentials_fails_fast_naming_them() {
    for status in [401u16, 403] {
        let catalog = sample_catalog(3, 1, 2);
        let mut env = Env::start(catalog.clone()).await;
        env.schedule = "* * * * * *".into();
        env.sim.set_faults(Faults {
            ping_status: Some(status),
            ..Faults::default()
        });
        let mut daemon = spawn_daemon(&env, &[], &[]);
        assert_eq!(wait_exit(&mut daemon, 20), Some(3), "{}", log_of(&env));
        let log = log_of(&env);
        assert!(log.contains(&format!("HTTP {status}")), "{log}");
        assert!(
            log.contains("user_token") && log.contains("user_secret_key"),
            "{log}"
        );
        assert!(!log.contains(TOKEN) && !log.contains(SECRET), "{log}");
        assert_eq!(env.writes(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_numbers_that_cannot_work_naming_the_key_and_its_range() {
    let catalog = sample_catalog(3, 1, 2);
    let env = Env::start(catalog).await;
    let good = env.config_text(true);
    env.write_config();
    let top = "timezone = \"America/Sao_Paulo\"";
    // Each case: `good` with `from` replaced by `to`, which `check` refuses naming `key`.
    let case = |from: &str, to: &str, key: &str| {
        (good.replace(from, to), format!("`{key}` must be between"))
    };
    let top_line = |line: &str| format!("{top}\n{line}");
    let big = "9223372036854775807";
    let cases = [
        case(
            "window_ms = 500",
            &format!("window_ms = {big}"),
            "limits.window_ms",
        ),
        case(
            top,
            &top_line("retention_days = 100000000"),
            "retention_days",
        ),
        case(top, &top_line("retention_days = 0"), "retention_days"),
        case(top, &top_line("max_run_records = 0"), "max_run_records"),
        case("timeout_secs = 5", "timeout_secs = 0", "timeout_secs"),
        case(
            "timeout_secs = 5",
            &format!("timeout_secs = {big}"),
            "timeout_secs",
        ),
        case("max_retries = 8", "max_retries = 4000000000", "max_retries"),
        case(
            "max_retries = 8",
            &format!("max_retries = 8\nindex_full_rescan_hours = {big}"),
            "index_full_rescan_hours",
        ),
        case(
            "max_retries = 8",
            "max_retries = 8\nmax_in_flight = 0",
            "max_in_flight",
        ),
        case(
            "max_retries = 8",
            "max_retries = 8\nmax_in_flight = 17",
            "max_in_flight",
        ),
        case(
            "get_skus = 1000",
            "get_skus = 4000000000",
            "limits.get_skus",
        ),
        case(
            "settle_ms = 0",
            &format!("settle_ms = {big}"),
            "source.settle_ms",
        ),
    ];
    let path = env.path("bad.toml");
    for (text, wanted) in &cases {
        assert_ne!(text, &good, "the case {wanted} changes the config");
        std::fs::write(&path, text).unwrap();
        let out = binary_on(&path, &["check"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{wanted}: {stdout}");
        assert!(stdout.contains(wanted), "{wanted}: {stdout}");
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(binary_on(&path, &["check"]).status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_accepted_numbers_run_without_a_panic() {
    let catalog = sample_catalog(3, 1, 2);
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let top = "timezone = \"America/Sao_Paulo\"";
    let text = env
        .config_text(true)
        .replace(
            top,
            &format!("{top}\nretention_days = 3650\nmax_run_records = 1000000"),
        )
        .replace("timeout_secs = 5", "timeout_secs = 3600")
        .replace(
            "max_retries = 8",
            "max_retries = 100\nindex_full_rescan_hours = 8760\nmax_in_flight = 16",
        )
        .replace("default = 1000", "default = 100000")
        .replace("get_skus = 1000", "get_skus = 100000")
        .replace("get_products = 1000", "get_products = 100000")
        .replace("window_ms = 500", "window_ms = 3600000");
    env.write_config();
    let path = env.path("max.toml");
    std::fs::write(&path, &text).unwrap();
    assert_exit(&binary_on(&path, &["check"]), 0);
    assert_exit(&binary_on(&path, &["--run-once"]), 0);
    assert_stock_1(&env, &catalog, qty);
}
