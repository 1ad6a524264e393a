//! Batch edits are never late and never twice; a state dir that has recorded runs never opens as
//! new (issue 7, points 1 and 2).

mod support;

use std::path::Path;

use chrono::{DateTime, Utc};
use support::*;
use yampi_sync::pipeline::RunOptions;
use yampi_sync::report::RunReport;
use yampi_sync::sim::{Catalog, Faults};

const BLACK_FRIDAY: &str = r#"edit = { attribute = "price_sale", operation_type = "decrement", value_type = "percent", value = 20, restrictions = { include = { brands_ids = [1] } } }"#;

fn utc(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)
}

fn at(now: &str) -> RunOptions {
    RunOptions {
        now: Some(utc(now)),
        ..RunOptions::default()
    }
}

async fn edit_env(schedule: &str, extra: &str) -> (Env, Catalog) {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.kind = "batch_edit".into();
    env.schedule = schedule.into();
    env.job_extra = format!("{BLACK_FRIDAY}\n{extra}");
    (env, catalog)
}

/// Runs every job of the config text `text` once, in-process (as `Env::run`, with a config
/// the test rewrote: a renamed job, another time zone).
async fn run_text(env: &Env, text: &str, opts: RunOptions) -> (i32, Vec<RunReport>) {
    let config = env.path("yampi-sync.toml");
    std::fs::write(&config, text).unwrap();
    std::fs::write(env.path("stock.toml"), &env.mapping).unwrap();
    open_config(&config).run(&opts).await
}

fn edits_sent(env: &Env) -> usize {
    env.sim.count("PUT", "/batch-edit")
}

/// An edit every ten minutes, sent once by a run at 12:03 UTC.
async fn edit_sent_at_12_03() -> Env {
    let (env, _) = edit_env("*/10 * * * *", "").await;
    let (code, _) = env.run(at("2026-12-01T12:03:00Z")).await;
    assert_eq!(code, 0);
    assert_eq!(edits_sent(&env), 1);
    env
}

/// Fails unless the report's message holds `needle`.
#[track_caller]
fn assert_says(report: &RunReport, needle: &str) {
    assert!(
        report.message.contains(needle),
        "{needle} in {}",
        report.message
    );
}

// --- point 1: never late -------------------------------------------------------------------

// The binary runs `status` while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occurrence_older_than_max_lateness_is_missed_never_sent() {
    let (env, _) = edit_env("0 0 0 27 11 *", "").await;
    // Installed on 2026-12-01: Black Friday (2026-11-27 00:00 in São Paulo) is four days old.
    let (code, reports) = env.run(at("2026-12-01T12:00:00Z")).await;
    let r = &reports[0];
    assert_eq!(code, 4, "{}", r.message);
    assert_eq!(edits_sent(&env), 0, "a missed occurrence is never sent");
    for needle in [
        "2026-11-27T00:00:00-03:00",
        "missed",
        "max_lateness (1h)",
        "4 days",
    ] {
        assert_says(r, needle);
    }
    assert!(
        r.report_path.as_ref().is_some_and(|p| p.exists()),
        "the run has a report"
    );
    // Later runs say so, send nothing and exit 0.
    let (code, reports) = env.run(at("2026-12-01T12:10:00Z")).await;
    assert_eq!(code, 0, "{}", reports[0].message);
    assert_says(&reports[0], "was missed");
    assert_eq!(edits_sent(&env), 0);
    // `status` lists it.
    let status = output_text(&env.run_binary(&["status"]));
    assert!(
        status.contains("MISSED: occurrence 2026-11-27T00:00:00-03:00"),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&env.run_binary(&["status", "--json"]).stdout).unwrap();
    assert_eq!(
        json[0]["edits_missed"][0]["occurrence"],
        "2026-11-27T00:00:00-03:00"
    );
}

#[tokio::test]
async fn an_occurrence_within_max_lateness_is_sent_once() {
    let (env, _) = edit_env("0 0 0 27 11 *", r#"max_lateness = "2d""#).await;
    let (code, reports) = env.run(at("2026-11-28T12:00:00Z")).await;
    assert_eq!(code, 0, "{}", reports[0].message);
    assert_eq!(env.sim.batch_edits_applied(), 1);
    let (code, reports) = env.run(at("2026-11-29T12:00:00Z")).await;
    assert_eq!(code, 0, "{}", reports[0].message);
    assert_says(&reports[0], "already applied");
    assert_eq!(edits_sent(&env), 1);
    // Nothing has come yet for a schedule whose first time is ahead: nothing is sent early.
    let (env, _) = edit_env("0 0 0 27 11 * 2030", "").await;
    let (code, reports) = env.run(at("2026-11-28T12:00:00Z")).await;
    assert_eq!(code, 0, "{}", reports[0].message);
    assert_says(&reports[0], "no occurrence");
    assert_eq!(edits_sent(&env), 0);
}

#[tokio::test]
async fn renaming_the_job_does_not_make_an_applied_occurrence_new() {
    let env = edit_sent_at_12_03().await;
    let renamed = env
        .config_text(true)
        .replace(r#"name = "estoque""#, r#"name = "promo-marca-1""#);
    assert!(renamed.contains("promo-marca-1"));
    let (code, reports) = run_text(&env, &renamed, at("2026-12-01T12:05:00Z")).await;
    assert_eq!(code, 0, "{}", reports[0].message);
    assert_says(&reports[0], "already applied");
    assert_eq!(
        edits_sent(&env),
        1,
        "the same edit at the same instant is not sent again"
    );
}

#[tokio::test]
async fn changing_timezone_does_not_make_an_applied_occurrence_new() {
    let env = edit_sent_at_12_03().await;
    // 12:00 UTC is 09:00 in São Paulo: the same instant, written another way.
    let utc_zone = env
        .config_text(true)
        .replace(r#"timezone = "America/Sao_Paulo""#, r#"timezone = "UTC""#);
    assert!(utc_zone.contains(r#"timezone = "UTC""#));
    let (code, reports) = run_text(&env, &utc_zone, at("2026-12-01T12:05:00Z")).await;
    assert_eq!(code, 0, "{}", reports[0].message);
    assert_says(&reports[0], "already applied");
    assert_eq!(edits_sent(&env), 1);
    // A changed edit is another edit: it is sent.
    let changed = utc_zone.replace("value = 20", "value = 15");
    let (code, _) = run_text(&env, &changed, at("2026-12-01T12:06:00Z")).await;
    assert_eq!(code, 0);
    assert_eq!(edits_sent(&env), 2);
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_accepts_the_occurrence_in_any_offset() {
    let (env, _) = edit_env("0 0 0 27 11 *", "").await;
    env.sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    let (code, reports) = env.run(at("2026-11-27T03:20:00Z")).await;
    assert_eq!(code, 3, "{}", reports[0].message);
    let message = &reports[0].message;
    assert!(
        message.contains("resolve estoque 2026-11-27T00:00:00-03:00 --applied"),
        "{message}"
    );
    env.sim.set_faults(Faults::default());
    // The same instant in UTC.
    let out = env.run_binary(&["resolve", "estoque", "2026-11-27T03:00:00Z", "--applied"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let (code, reports) = env.run(at("2026-11-27T03:30:00Z")).await;
    assert_eq!(code, 0, "{}", reports[0].message);
    assert_says(&reports[0], "already applied");
    assert_eq!(edits_sent(&env), 1);
    // Something that is no instant is refused with the form to use.
    let out = env.run_binary(&["resolve", "estoque", "27/11/2026", "--applied"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        output_text(&out).contains("RFC 3339"),
        "{}",
        output_text(&out)
    );
}

#[tokio::test]
async fn an_occurrence_an_earlier_version_applied_is_not_sent_again() {
    let (env, _) = edit_env("0 0 0 27 11 *", "").await;
    // What an earlier version wrote: `edits/<job>`, keyed by the local occurrence.
    {
        // No background flusher: once `db` is dropped nothing holds the database's lock, so
        // the run below can open it at once.
        let db = sled::Config::new()
            .path(env.state_dir().join("db"))
            .flush_every_ms(None)
            .open()
            .unwrap();
        let tree = db.open_tree("edits/estoque").unwrap();
        let rec = serde_json::json!({"v": 1, "state": "applied", "at": "2026-11-27T03:00:01Z", "message": "applied"});
        tree.insert("2026-11-27T00:00:00-03:00", rec.to_string().as_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let (code, reports) = env.run(at("2026-11-27T03:10:00Z")).await;
    assert_eq!(code, 0, "{}", reports[0].message);
    assert_says(&reports[0], "already applied");
    assert_eq!(edits_sent(&env), 0);
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_max_lateness() {
    for (extra, needle) in [
        (r#"max_lateness = "1 week""#, "unknown unit"),
        (r#"max_lateness = "0s""#, "above zero"),
        (r#"max_lateness = "90""#, "without a unit"),
    ] {
        let (env, _) = edit_env("0 0 0 27 11 *", extra).await;
        let out = env.run_binary(&["check"]);
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains("max_lateness") && text.contains(needle),
            "{text}"
        );
    }
    let catalog = small_catalog();
    let mut env = Env::start(catalog).await;
    env.job_extra = r#"max_lateness = "1h""#.into();
    let out = env.run_binary(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        output_text(&out).contains("only for batch_edit"),
        "{}",
        output_text(&out)
    );
}

// --- point 2: a state dir that knows it is not new ------------------------------------------

fn store_writes(env: &Env) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| !r.method.eq_ignore_ascii_case("GET"))
        .count()
}

/// A stock job with two recorded runs (two different feeds, both sent) through the binary.
async fn stock_env_with_two_runs() -> (Env, Catalog) {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    for (i, base) in [(1, 5), (2, 9)] {
        env.write_feed(
            &format!("estoque-{i}.csv"),
            &feed_for(&catalog, |_, s| (base + (s % 3) as i64, 1)),
        );
        let out = env.run_binary(&["--run-once"]);
        assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    }
    // A third feed: a run that opened an empty database would send it all.
    env.write_feed(
        "estoque-3.csv",
        &feed_for(&catalog, |_, s| (20 + (s % 3) as i64, 2)),
    );
    (env, catalog)
}

fn db_file(env: &Env) -> std::path::PathBuf {
    env.state_dir().join("db").join("db")
}

/// How much of `db/db` holds data: sled preallocates the file, its tail is zeros.
fn written_len(env: &Env) -> u64 {
    let bytes = std::fs::read(db_file(env)).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    assert!(
        end > 4096,
        "the database holds data after two runs ({end} bytes)"
    );
    end as u64
}

/// After the damage, the next run and `status` stop with exit 3 and say what to do; nothing is
/// written to the store.
fn assert_refused(env: &Env, damage: &str) {
    let before = store_writes(env);
    let out = env.run_binary(&["--run-once"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{damage}: {text}");
    for needle in [
        "nothing was run",
        "restore",
        "from a backup",
        "aside",
        "edits.journal",
    ] {
        assert!(text.contains(needle), "{damage}: {needle} in {text}");
    }
    assert_eq!(store_writes(env), before, "{damage}: nothing is sent");
    let out = env.run_binary(&["status"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{damage}: {text}");
    assert!(!text.contains("never run"), "{damage}: {text}");
    assert!(text.contains("restore"), "{damage}: {text}");
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_database_is_refused() {
    let (env, _) = stock_env_with_two_runs().await;
    // Cut in the middle of what sled wrote (the file is preallocated: its tail is zeros).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(db_file(&env))
        .unwrap();
    f.set_len(written_len(&env) / 2).unwrap();
    drop(f);
    assert_refused(&env, "truncated");
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zeroed_database_is_refused() {
    let (env, _) = stock_env_with_two_runs().await;
    let len = std::fs::metadata(db_file(&env)).unwrap().len();
    std::fs::write(db_file(&env), vec![0u8; len as usize]).unwrap();
    assert_refused(&env, "zeroed");
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_flipped_bytes_is_refused() {
    let (env, _) = stock_env_with_two_runs().await;
    let mut bytes = std::fs::read(db_file(&env)).unwrap();
    // Every 512th byte of what sled wrote.
    let written = written_len(&env) as usize;
    for b in bytes[..written].iter_mut().step_by(512) {
        *b ^= 0xFF;
    }
    std::fs::write(db_file(&env), bytes).unwrap();
    assert_refused(&env, "flipped bytes");
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_is_refused() {
    let (env, _) = stock_env_with_two_runs().await;
    std::fs::remove_dir_all(env.state_dir().join("db")).unwrap();
    assert_refused(&env, "deleted db/");
}

/// Removes `identity.json` (a state dir that lost it, or an operator accepting a restored db).
fn remove_identity(env: &Env) {
    let p = env.state_dir().join("identity.json");
    if p.exists() {
        std::fs::remove_file(p).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_lost_its_recent_writes_is_refused() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (5, 1)));
    assert_eq!(env.run_binary(&["--run-once"]).status.code(), Some(0));
    let old = env.path("db-after-run-1");
    copy_dir(&env.state_dir().join("db"), &old);
    env.write_feed("estoque-2.csv", &feed_for(&catalog, |_, _| (7, 1)));
    assert_eq!(env.run_binary(&["--run-once"]).status.code(), Some(0));
    // The database goes back to what it was after run 1 (a stale copy, a lost fsync).
    std::fs::remove_dir_all(env.state_dir().join("db")).unwrap();
    copy_dir(&old, &env.state_dir().join("db"));
    env.write_feed("estoque-3.csv", &feed_for(&catalog, |_, _| (9, 1)));
    assert_refused(&env, "stale database");
    assert!(
        output_text(&env.run_binary(&["--run-once"])).contains("lost recent writes"),
        "the sentence says what happened"
    );
    // The operator restores that copy on purpose and says so by removing the identity file.
    remove_identity(&env);
    let out = env.run_binary(&["--run-once"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_an_applied_edit_from_being_sent_again_when_the_db_is_lost() {
    let (env, _) = edit_env("*/10 * * * *", "").await;
    let out = env.run_binary(&["--run-once"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(edits_sent(&env), 1);
    // A "fresh" state dir: no database, no identity; only the journal is left.
    std::fs::remove_dir_all(env.state_dir().join("db")).unwrap();
    remove_identity(&env);
    let out = env.run_binary(&["--run-once"]);
    let text = output_text(&out);
    assert_eq!(edits_sent(&env), 1, "never sent twice");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("already applied"), "{text}");
    assert!(env.state_dir().join("edits.journal").exists());
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_an_edit_in_doubt_when_the_db_is_lost() {
    let (env, _) = edit_env("*/10 * * * *", "").await;
    env.sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    assert_eq!(env.run_binary(&["--run-once"]).status.code(), Some(3));
    env.sim.set_faults(Faults::default());
    std::fs::remove_dir_all(env.state_dir().join("db")).unwrap();
    remove_identity(&env);
    let out = env.run_binary(&["--run-once"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("in doubt"), "{text}");
    assert_eq!(edits_sent(&env), 1);
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_journal_line_stops_the_edit_and_a_torn_one_does_not() {
    let (env, _) = edit_env("*/10 * * * *", "").await;
    let journal = env.state_dir().join("edits.journal");
    std::fs::create_dir_all(env.state_dir()).unwrap();
    // A crash in the middle of an append: an incomplete last line only.
    std::fs::write(&journal, br#"{"key":"0123","state":"sen"#).unwrap();
    let out = env.run_binary(&["--run-once"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(edits_sent(&env), 1);
    // A complete line that cannot be read: the job stops, it never reads as "not sent".
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("{\"key\": garbage}\n");
    std::fs::write(&journal, text).unwrap();
    std::fs::remove_dir_all(env.state_dir().join("db")).unwrap();
    remove_identity(&env);
    let out = env.run_binary(&["--run-once"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("edits.journal") && text.contains("cannot be read"),
        "{text}"
    );
    assert_eq!(edits_sent(&env), 1);
}

// The binary runs while this test's runtime serves the simulator: two worker threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_identity_file_stops_the_run() {
    let (env, _) = stock_env_with_two_runs().await;
    let before = store_writes(&env);
    std::fs::write(
        env.state_dir().join("identity.json"),
        b"{\"v\":1,\"id\":\"ab",
    )
    .unwrap();
    let out = env.run_binary(&["--run-once"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("identity.json is unreadable") && text.contains("nothing was run"),
        "{text}"
    );
    assert_eq!(store_writes(&env), before);
}
