//! Daemon mode, through the real binary: schedules, SIGTERM mid-run, SIGHUP with a broken config,
//! a second instance, `status` while it runs, and the systemd notifications.

mod support;

use std::time::Duration;

use support::daemon::*;
use support::*;
use yampi_sync::sim::{Faults, SimLimits, sample_catalog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_exits_0_keeps_checkpoints_and_the_rerun_sends_only_the_rest() {
    let catalog = sample_catalog(40, 2, 5);
    let limits = SimLimits {
        get_skus: 100,
        get_products: 100,
        default: 8,
    };
    let mut env = Env::start_with(catalog.clone(), limits, Duration::from_millis(200)).await;
    env.schedule = "* * * * * *".into(); // every second
    env.sim.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let mut daemon = spawn_daemon(&env, &["--grace-secs", "20"], &[]);
    wait_until("the first writes", 30, &env, || env.writes() >= 8).await;
    signal(&daemon, "-TERM");
    assert_eq!(
        wait_exit(&mut daemon, 25),
        Some(0),
        "a graceful stop exits 0"
    );
    let sent = env.writes();
    assert!(
        sent < catalog.products.len(),
        "stopped mid-run ({sent} writes)"
    );
    // The in-flight requests finished and were checkpointed: a rerun sends only the rest.
    assert_exit(&env.run_binary(&["--run-once"]), 0);
    for p in &catalog.products {
        assert_eq!(env.applied_syncs(p.id), 1, "product {} written once", p.id);
    }
    assert_stock_1(&env, &catalog, qty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_config_keeps_the_old_one_and_a_good_one_is_taken() {
    let catalog = sample_catalog(3, 1, 2);
    let env = every_second_env(&catalog).await;
    let mut daemon = spawn_daemon(&env, &[], &[]);
    wait_until("the first sync", 20, &env, || env.writes() >= 3).await;
    // Break the config and ask for a reload: refused, the daemon goes on with the old one.
    let config = env.path("yampi-sync.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("kind = \"stock\"", "kind = \"stok\"")).unwrap();
    signal(&daemon, "-HUP");
    wait_until("the refused reload", 10, &env, || {
        log_of(&env).contains("Reload refused")
    })
    .await;
    env.write_feed(
        "estoque-2.csv",
        &feed_for(&catalog, |p, s| {
            let (a, b) = qty(p, s);
            (a + 5, b)
        }),
    );
    let first = &catalog.products[0].skus[0];
    let want = qty(first.product_id, first.id).0 + 5;
    wait_until("the next sync under the old config", 20, &env, || {
        env.sim.stock(first.id, 1) == Some(want)
    })
    .await;
    assert!(daemon.try_wait().unwrap().is_none(), "still running");
    // A good config is taken.
    std::fs::write(&config, good.replace("max_retries = 8", "max_retries = 7")).unwrap();
    signal(&daemon, "-HUP");
    wait_until("the reload", 10, &env, || {
        log_of(&env).contains("Config reloaded")
    })
    .await;
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 20), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_while_running_a_second_instance_and_systemd_notifications() {
    let catalog = sample_catalog(3, 1, 2);
    let env = every_second_env(&catalog).await;
    let mut notify = Notifications::bind(&env);
    let mut daemon = spawn_daemon(&env, &[], &[("NOTIFY_SOCKET", &notify.env_value())]);
    notify.wait_for("READY=1", &env);
    wait_until("the first sync", 20, &env, || env.writes() >= 3).await;

    // A second process on the same state dir fails at once, naming the other one.
    let out = env.run_binary(&["--run-once"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains(&format!("pid {}", daemon.id())), "{text}");

    // `status` works while the daemon holds the store.
    wait_until("a status snapshot with a run", 20, &env, || {
        let out = env.run_binary(&["status"]);
        String::from_utf8_lossy(&out.stdout).contains("last run")
    })
    .await;
    let out = env.run_binary(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["job"], "estoque");
    assert!(rows[0]["next_run"].is_string());
    assert_eq!(rows[0]["last_run"]["exit_code"], 0);

    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 20), Some(0));
    // A read that times out ends the wait; the checks below say what was missing.
    let _ = notify.read_until("STOPPING=1");
    let received = &notify.received;
    assert!(received.contains("STATUS="), "{received}");
    assert!(received.contains("STOPPING=1"), "{received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_longer_than_the_schedule_never_overlaps_itself() {
    let catalog = sample_catalog(30, 1, 2);
    let limits = SimLimits {
        get_skus: 100,
        get_products: 100,
        default: 10,
    };
    let mut env = Env::start_with(catalog.clone(), limits, Duration::from_millis(400)).await;
    env.schedule = "* * * * * *".into();
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let mut daemon = spawn_daemon(&env, &[], &[]);
    wait_until("a skipped tick", 30, &env, || {
        log_of(&env).contains("skipped, not queued")
    })
    .await;
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 20), Some(0));
    // Never two runs at once: every product written exactly once by the one long run.
    for p in &catalog.products {
        assert!(env.applied_syncs(p.id) <= 1, "product {}", p.id);
    }
    let log = log_of(&env);
    let runs = log.matches("SKU index refreshed").count();
    let started = log.matches("Plan:").count();
    assert!(runs >= 1 && started >= 1, "{log}");
}
