//! What a one-shot run prints: the reasons behind "N rejected" and "N unmatched" (the first ones,
//! then how many more the report holds), and a dry run's changes per SKU before its requests.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_prints_the_first_rejected_rows_and_unmatched_keys_with_their_reasons() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let mut feed = feed_for(&catalog, |_, s| ((s % 5) as i64, 1));
    feed.push_str("NAO-EXISTE-1;x;3;4\n");
    for i in 0..12 {
        feed.push_str(&format!("RUIM-{i};x;abc;4\n"));
    }
    env.write_feed("estoque-1.csv", &feed);
    let out = env.run_binary(&["--run-once"]);
    let text = output_text(&out);
    assert_exit(&out, 4);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("unmatched: key \"NAO-EXISTE-1\""),
        "the unknown key is named: {text}"
    );
    let rejected: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("rejected:"))
        .collect();
    assert_eq!(rejected.len(), 10, "the first ten rejected rows: {text}");
    assert!(
        rejected[0].contains("Saldo Loja") && rejected[0].contains("\"abc\""),
        "{}",
        rejected[0]
    );
    assert!(
        stdout.contains("… and 2 more rejected rows in "),
        "how many more, and where: {text}"
    );
    // Printed once: not repeated in the log of a one-shot run.
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("NAO-EXISTE-1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_lists_what_would_change_per_sku_then_the_requests() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, |_, _| (1, 1)));
    assert_exit(&env.run_binary(&["--run-once"]), 0);
    let writes_before = env.writes();
    let first = &catalog.products[0].skus[0];
    env.write_feed(
        "estoque-2.csv",
        &feed_for(&catalog, |_, s| if s == first.id { (7, 1) } else { (1, 1) }),
    );
    let out = env.run_binary(&["--run-once", "--dry-run"]);
    assert_exit(&out, 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let would = stdout
        .find("would change:")
        .expect("a listing of the changes");
    let line = format!("{} (SKU {}) quantity (stock 1): 1 → 7", first.sku, first.id);
    let at = stdout
        .find(&line)
        .unwrap_or_else(|| panic!("{line} in {stdout}"));
    let requests = stdout.find("× POST").expect("the requests");
    assert!(
        would < at && at < requests,
        "changes first, then the requests: {stdout}"
    );
    assert_eq!(env.writes(), writes_before, "a dry run sends nothing");
}
