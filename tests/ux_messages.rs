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
