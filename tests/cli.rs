//! The real binary: exit codes, `check`, crash safety under `kill -9`, and secrets hygiene.

mod support;

use std::time::Duration;

use support::*;
use yampi_sync::sim::{Faults, SimLimits, sample_catalog};

fn qty(_p: u64, sku: u64) -> (i64, i64) {
    ((sku % 13) as i64 + 1, (sku % 5) as i64 + 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_run_then_rerun_sends_only_the_rest() {
    let catalog = sample_catalog(40, 2, 9);
    let limits = SimLimits {
        get_skus: 100,
        get_products: 100,
        default: 10,
    };
    let env = Env::start_with(catalog.clone(), limits, Duration::from_millis(200)).await;
    env.sim.set_faults(Faults {
        latency: Duration::from_millis(15),
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));

    let mut child = Running(
        env.command(&["--run-once"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    poll_until(
        "the first run to get going",
        Duration::from_secs(30),
        Duration::from_millis(5),
        || env.writes() >= 12,
    )
    .await;
    child.kill_hard();
    let sent_before_kill = env.writes();
    assert!(
        sent_before_kill < catalog.products.len(),
        "killed too late to test anything"
    );
    // Let requests that were in flight at the kill finish on the server side.
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_exit(&env.run_binary(&["--run-once"]), 0);
    assert_stock(&env, &catalog, qty);
    for p in &catalog.products {
        assert_eq!(
            env.applied_syncs(p.id),
            1,
            "product {} must be written exactly once",
            p.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_every_problem_at_once_and_sends_nothing() {
    let catalog = sample_catalog(2, 1, 1);
    let mut env = Env::start(catalog.clone()).await;
    env.mapping =
        STOCK_MAPPING.replace("\"Saldo CD\"", "\"Saldo Deposito\"") + "\nsurprise = true\n";
    env.job_extra = "schedule_typo = 1".into();
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let mut cmd = env.command(&["check"]);
    cmd.env_remove("YS_TEST_SECRET");
    let out = cmd.output().unwrap();
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("schedule_typo"), "{all}");
    assert!(all.contains("surprise"), "{all}");
    assert!(all.contains("YS_TEST_SECRET"), "{all}");
    assert_eq!(env.sim.requests().len(), 0, "check sends nothing");

    assert!(
        all.to_lowercase().contains("saldo deposito"),
        "the missing column is named: {all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_a_bad_schedule() {
    let catalog = sample_catalog(2, 1, 1);
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let config = env.path("yampi-sync.toml");
    let mut cmd = env.command(&["check"]);
    // Rewrite the config the command just wrote, with a 4-field schedule.
    let bad = std::fs::read_to_string(&config)
        .unwrap()
        .replace("*/10 * * * *", "*/10 * * *");
    std::fs::write(&config, bad).unwrap();
    let out = cmd.output().unwrap();
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("*/10 * * *") && all.contains("fields"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_config_checks_clean() {
    let catalog = sample_catalog(2, 1, 1);
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let out = env.run_binary(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_leak_to_output_logs_reports_or_state() {
    let catalog = sample_catalog(5, 2, 4);
    let env = Env::start(catalog.clone()).await;
    let mut feed = feed_for(&catalog, qty);
    feed.push_str("SEM-CADASTRO;x;1;1\nQUEBRADO;x;abc;1\n");
    env.write_feed("estoque-1.csv", &feed);
    let mut outputs = Vec::new();
    for args in [
        vec!["--run-once", "-vv"],
        vec!["--run-once", "-vv", "--log-format", "json", "--full"],
        vec!["--run-once", "--dry-run", "-vv"],
        vec!["status"],
        vec!["check", "-vv"],
    ] {
        let out = env.run_binary(&args);
        outputs.push(output_text(&out));
    }
    assert!(outputs[0].contains("rejected"), "{}", outputs[0]);
    // Wrong credentials: the 401 is reported, the (wrong) token is not.
    let out = env
        .command(&["--run-once", "--full", "-vv"])
        .env("YS_TEST_TOKEN", "wrong-SECRET-token-123")
        .output()
        .unwrap();
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("401"), "{all}");
    assert!(!all.contains("wrong-SECRET-token-123"), "{all}");
    outputs.push(all);

    for o in &outputs {
        assert!(
            !o.contains(TOKEN) && !o.contains(SECRET),
            "secret in output: {o}"
        );
    }
    let files = read_all_files(&env.state_dir());
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "xlsx"))
    );
    for (path, bytes) in &files {
        let hay = String::from_utf8_lossy(bytes);
        assert!(
            !hay.contains(TOKEN) && !hay.contains(SECRET),
            "secret in {}",
            path.display()
        );
        if path.extension().is_some_and(|e| e == "xlsx") {
            use calamine::{Reader, Xlsx, open_workbook};
            let mut wb: Xlsx<_> = open_workbook(path).unwrap();
            for name in wb.sheet_names() {
                let range = wb.worksheet_range(&name).unwrap();
                for cell in range.used_cells() {
                    let v = cell.2.to_string();
                    assert!(
                        !v.contains(TOKEN) && !v.contains(SECRET),
                        "secret in {} {name}",
                        path.display()
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_for_rejects_and_bad_config() {
    let catalog = sample_catalog(3, 1, 2);
    let env = Env::start(catalog.clone()).await;
    let mut feed = feed_for(&catalog, qty);
    feed.push_str("X;x;-1;0\n");
    env.write_feed("estoque-1.csv", &feed);
    let out = env.run_binary(&["--run-once"]);
    assert_eq!(out.status.code(), Some(4), "{}", output_text(&out));
    let out = env.run_binary(&["--run-once", "--job", "nao-existe"]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let out = env.run_binary(&["--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--dry-run needs --run-once: {}",
        output_text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_state_dir_fails_clearly() {
    let catalog = sample_catalog(2, 1, 1);
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let _held = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
    let out = env.run_binary(&["--run-once"]);
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("in use by another yampi-sync process"),
        "{all}"
    );
    assert!(all.contains(&std::process::id().to_string()), "{all}");
}
