//! What the user sees: bench inputs on a fresh machine, the state-dir lock message, source-file
//! errors, the summary line, config and CLI messages, completions and the man page.

mod support;

#[allow(unused_imports)]
use support::*;

// The benchmark's input generator, compiled here by path so a test can run it.
#[allow(dead_code)]
#[path = "../benches/sync_bench/inputs.rs"]
mod bench_inputs;

/// `cargo bench -- --case X` on a fresh machine: the case's own input is written when missing,
/// completely (no partial file left behind), and an existing one is reused.
#[test]
fn each_bench_case_makes_its_own_input_on_a_fresh_machine() {
    use calamine::{Reader, Xlsx, open_workbook};
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("never-created");
    let csv = bench_inputs::ensure(&fresh, bench_inputs::CSV, 40);
    assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count(), 41);
    let prices = bench_inputs::ensure(&fresh, bench_inputs::PRICES, 30);
    assert_eq!(
        std::fs::read_to_string(&prices).unwrap().lines().count(),
        31
    );
    let xlsx = bench_inputs::ensure(&fresh, bench_inputs::XLSX, 20);
    let mut wb: Xlsx<_> = open_workbook(&xlsx).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.height(), 21);
    // Reused, not rewritten.
    std::fs::write(&csv, "Código\n").unwrap();
    bench_inputs::ensure(&fresh, bench_inputs::CSV, 40);
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), "Código\n");
    let names: Vec<String> = std::fs::read_dir(&fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
}

/// Eight openers race for a fresh state dir, 25 times: one opens it, every other one is told the
/// dir is in use *with the holder's pid* (it used to read the lock file before the pid was in it).
#[test]
fn every_refused_opener_of_a_locked_state_dir_names_the_pid() {
    use yampi_sync::state::StateStore;
    let pid = format!("(pid {})", std::process::id());
    for _ in 0..25 {
        let dir = tempfile::tempdir().unwrap();
        let barrier = std::sync::Barrier::new(8);
        let results: Vec<Result<StateStore, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        StateStore::open(dir.path()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        for err in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                err.contains("in use by another yampi-sync process"),
                "{err}"
            );
            assert!(err.contains(&pid), "no pid in: {err}");
        }
    }
}

/// `--run-once` prints each summary once (stdout), and logs on a pipe carry no colour codes.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_run_prints_each_summary_once_and_plain() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed(
        "estoque-1.csv",
        &feed_for(&catalog, |_, id| ((id % 7) as i64, 1)),
    );
    let out = env.run_binary(&["--run-once"]);
    assert_exit(&out, 0);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let summaries = |s: &str| s.matches("job estoque: ").count();
    assert_eq!(summaries(&stdout), 1, "stdout: {stdout}");
    assert_eq!(
        summaries(&stderr),
        0,
        "stderr repeats the summary: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a redirected log: {stderr:?}"
    );
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
}

/// The binary on a config text of our own (the harness's `command` writes its own config).
fn binary_on(env: &Env, config_text: &str, args: &[&str]) -> std::process::Command {
    let config = env.path("custom.toml");
    std::fs::write(&config, config_text).unwrap();
    std::fs::write(env.path("stock.toml"), &env.mapping).unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_yampi-sync"));
    c.arg("--config")
        .arg(&config)
        .args(args)
        .env("YS_TEST_TOKEN", TOKEN)
        .env("YS_TEST_SECRET", SECRET)
        .env_remove("RUST_LOG");
    c
}

/// An empty `${VAR}` in the only store is reported once, as itself: the job that names no store
/// is not also told that `store` is required "when there is more than one store".
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_variable_in_the_only_store_is_not_blamed_on_the_job() {
    let env = Env::start(small_catalog()).await;
    let text = env
        .config_text(false)
        .replace("store = \"loja\"\nkind", "kind");
    let out = binary_on(&env, &text, &["check"])
        .env("YS_TEST_TOKEN", "")
        .output()
        .unwrap();
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("user_token"), "{all}");
    assert!(!all.contains("more than one store"), "{all}");
    // With the variable set, the job takes the only store.
    let out = binary_on(&env, &text, &["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

/// `status` while another process holds the state dir before its first run ends: exit 0, every
/// job listed, and a sentence saying nothing is recorded yet (it used to fail with exit 3).
#[tokio::test(flavor = "multi_thread")]
async fn status_during_the_first_run_says_nothing_is_recorded_yet() {
    let env = Env::start(small_catalog()).await;
    env.write_config();
    let _held = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
    let out = env.run_binary(&["status"]);
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("has not finished a run yet"), "{all}");
    assert!(
        all.contains(&format!("(pid {})", std::process::id())),
        "{all}"
    );
    assert!(all.contains("estoque: never run"), "{all}");
    let out = env.run_binary(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["job"], "estoque");
}

/// `resolve` without a flag names both choices, not only `--applied`.
#[tokio::test(flavor = "multi_thread")]
async fn resolve_without_a_flag_offers_both_outcomes() {
    let env = Env::start(small_catalog()).await;
    let out = env.run_binary(&["resolve", "promo", "2026-11-27T00:00:00-03:00"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--applied") && err.contains("--not-applied"),
        "{err}"
    );
    let both = env.run_binary(&["resolve", "promo", "x", "--applied", "--not-applied"]);
    assert_eq!(both.status.code(), Some(2));
}

/// Every time `status` prints is local (the config's `timezone`), none in UTC.
#[tokio::test(flavor = "multi_thread")]
async fn status_prints_every_time_in_the_configured_zone() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed(
        "estoque-1.csv",
        &feed_for(&catalog, |_, id| ((id % 5) as i64, 2)),
    );
    assert_exit(&env.run_binary(&["--run-once"]), 0);
    let out = env.run_binary(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let last = text.lines().find(|l| l.contains("last run")).expect(&text);
    let next = text.lines().find(|l| l.contains("next run:")).expect(&text);
    // The report's file name is not a time shown to the reader.
    let last = last.split(", report").next().unwrap();
    for line in [last, next] {
        assert!(line.contains(" -03"), "not local: {line}");
        assert!(
            !line.contains('Z') && !line.contains("+00:00"),
            "UTC: {line}"
        );
    }
}

/// `check` refuses a schedule that is valid cron but never fires.
#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_a_schedule_that_never_fires() {
    let mut env = Env::start(small_catalog()).await;
    env.schedule = "0 0 30 2 *".into();
    let out = env.run_binary(&["check"]);
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("never fires"), "{all}");
}

/// Unknown keys in the config and the mapping name the nearest known key of the same table.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_keys_get_a_did_you_mean() {
    let mut env = Env::start(small_catalog()).await;
    env.job_extra = "max_shrnk_pct = 50\nwhatever_else = 1".into();
    env.source = "{ path = \"erp/*.csv\", setle_ms = 0 }".into();
    env.mapping = STOCK_MAPPING.replace("missing = \"keep\"", "mising = \"keep\"");
    let out = env.run_binary(&["check"]);
    let all = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("unknown key `job.0.max_shrnk_pct`; did you mean `max_shrink_pct`?"),
        "{all}"
    );
    assert!(all.contains("did you mean `settle_ms`?"), "{all}");
    assert!(
        all.contains("unknown key `stock.mising`; did you mean `missing`?"),
        "{all}"
    );
    let far = all
        .lines()
        .find(|l| l.contains("whatever_else"))
        .expect(&all);
    assert!(!far.contains("did you mean"), "{far}");
}

/// Completions for bash, zsh and fish and a man page, generated from the clap definitions, with
/// no config needed.
#[test]
fn completions_and_the_man_page_come_from_the_command_line_definitions() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_yampi-sync"))
            .args(["--config", "/nonexistent/yampi-sync.toml"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("complete -F _yampi__sync"), "{bash}");
    for word in [
        "--run-once",
        "--dry-run",
        "resolve",
        "--not-applied",
        "status",
    ] {
        assert!(bash.contains(word), "bash lacks {word}");
    }
    assert!(run(&["completions", "zsh"]).starts_with("#compdef yampi-sync"));
    let fish = run(&["completions", "fish"]);
    assert!(fish.contains("complete -c yampi-sync"), "{fish}");
    assert!(fish.contains("run-once"), "{fish}");
    let man = run(&["man"]);
    assert!(man.contains(".TH yampi-sync 1"), "{man}");
    assert!(man.contains("run\\-once"), "{man}");
    assert!(man.contains("resolve"), "{man}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_yampi-sync"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
