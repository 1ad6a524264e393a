//! Daemon mode, through the real binary: schedules, SIGTERM mid-run, SIGHUP with a broken config,
//! a second instance, `status` while it runs, and the systemd notifications.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;
use yampi_sync::sim::{Faults, SimLimits, sample_catalog};

fn qty(_p: u64, sku: u64) -> (i64, i64) {
    ((sku % 11) as i64 + 2, (sku % 3) as i64)
}

fn signal(child: &Running, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for `needle` in the daemon's log; a timeout shows the log.
async fn wait_for_log(env: &Env, needle: &str, secs: u64) {
    let t0 = Instant::now();
    loop {
        let log = std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default();
        if log.contains(needle) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {needle:?} in the daemon's log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn wait_exit(child: &mut Running, secs: u64) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            panic!("the daemon did not exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    let mut daemon = Running(
        env.command(&["--grace-secs", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the first writes", 30, || env.writes() >= 8).await;
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
    let out = env.run_binary(&["--run-once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in &catalog.products {
        assert_eq!(env.applied_syncs(p.id), 1, "product {} written once", p.id);
    }
    for (p, s, _) in all_skus(&catalog) {
        assert_eq!(env.sim.stock(s, 1), Some(qty(p, s).0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_config_keeps_the_old_one_and_a_good_one_is_taken() {
    let catalog = sample_catalog(3, 1, 2);
    let mut env = Env::start(catalog.clone()).await;
    env.schedule = "* * * * * *".into();
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let log = std::fs::File::create(env.path("daemon.log")).unwrap();
    let mut daemon = Running(
        env.command(&[])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_until("the first sync", 20, || env.writes() >= 3).await;
    // Break the config and ask for a reload: refused, the daemon goes on with the old one.
    let config = env.path("yampi-sync.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, good.replace("kind = \"stock\"", "kind = \"stok\"")).unwrap();
    signal(&daemon, "-HUP");
    let log_text = || std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default();
    wait_until("the refused reload", 10, || {
        log_text().contains("Reload refused")
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
    wait_until("the next sync under the old config", 20, || {
        env.sim.stock(first.id, 1) == Some(want)
    })
    .await;
    assert!(daemon.try_wait().unwrap().is_none(), "still running");
    // A good config is taken.
    std::fs::write(&config, good.replace("max_retries = 8", "max_retries = 7")).unwrap();
    signal(&daemon, "-HUP");
    wait_for_log(&env, "Config reloaded", 10).await;
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 20), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_while_running_a_second_instance_and_systemd_notifications() {
    let catalog = sample_catalog(3, 1, 2);
    let mut env = Env::start(catalog.clone()).await;
    env.schedule = "* * * * * *".into();
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let socket_path = env.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut daemon = Running(
        env.command(&[])
            .env("NOTIFY_SOCKET", &socket_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut received = String::new();
    let mut buf = [0u8; 4096];
    while !received.contains("READY=1") {
        let n = socket.recv(&mut buf).expect("a notification");
        received.push_str(&String::from_utf8_lossy(&buf[..n]));
        received.push('\n');
    }
    wait_until("the first sync", 20, || env.writes() >= 3).await;

    // A second process on the same state dir fails at once, naming the other one.
    let out = env.run_binary(&["--run-once"]);
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains(&format!("pid {}", daemon.id())), "{text}");

    // `status` works while the daemon holds the store.
    wait_until("a status snapshot with a run", 20, || {
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
    while let Ok(n) = socket.recv(&mut buf) {
        received.push_str(&String::from_utf8_lossy(&buf[..n]));
        received.push('\n');
        if received.contains("STOPPING=1") {
            break;
        }
    }
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
    let log = std::fs::File::create(env.path("daemon.log")).unwrap();
    let mut daemon = Running(
        env.command(&[])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let log_text = || std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default();
    wait_until("a skipped tick", 30, || {
        log_text().contains("skipped, not queued")
    })
    .await;
    signal(&daemon, "-TERM");
    assert_eq!(wait_exit(&mut daemon, 20), Some(0));
    // Never two runs at once: every product written exactly once by the one long run.
    for p in &catalog.products {
        assert!(env.applied_syncs(p.id) <= 1, "product {}", p.id);
    }
    let runs = log_text().matches("SKU index refreshed").count();
    let started = log_text().matches("Plan:").count();
    assert!(runs >= 1 && started >= 1, "{}", log_text());
}
