//! The HTTP client and the SKU index under hostile answers: pages that shift, lie or never end,
//! bodies that never end or stall, a server clock behind ours, credentials echoed back.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use yampi_sync::shop::ShopClient;
use yampi_sync::sim::{Catalog, Faults, sample_catalog};

fn qty(product: u64, sku: u64) -> (i64, i64) {
    ((sku % 13) as i64 + product as i64 % 3, (sku % 5) as i64 * 2)
}

fn qty2(product: u64, sku: u64) -> (i64, i64) {
    let (a, b) = qty(product, sku);
    (a + 7, b + 1)
}

fn qty3(product: u64, sku: u64) -> (i64, i64) {
    let (a, b) = qty(product, sku);
    (a + 2, b + 3)
}

/// 150 SKUs: two pages of 100.
fn two_page_catalog() -> Catalog {
    sample_catalog(50, 3, 11)
}

/// A client for the env's store, with its per-request timeout and retries changed.
fn client(env: &Env, timeout: Duration, max_retries: u32) -> ShopClient {
    let config = env.write_config();
    let settings = yampi_sync::config::load(&config, None).expect("valid config");
    let s = &settings.stores[0];
    let store = yampi_sync::config::StoreSettings {
        name: s.name.clone(),
        alias: s.alias.clone(),
        base_url: s.base_url.clone(),
        user_token: s.user_token.clone(),
        user_secret_key: s.user_secret_key.clone(),
        limits: s.limits,
        max_in_flight: s.max_in_flight,
        timeout,
        max_retries,
        index_full_rescan: s.index_full_rescan,
        queue_poll: s.queue_poll,
        index_export_above: s.index_export_above,
    };
    ShopClient::new(Arc::new(store)).expect("client")
}

/// Fails instead of hanging the suite when the code under test never ends.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not end within a minute"))
}

// --- point 9: the SKU index -------------------------------------------------------------------

#[tokio::test]
async fn a_scan_whose_pages_shift_loses_no_sku() {
    let catalog = two_page_catalog();
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        shift_pages: true,
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert!(report.unmatched.is_empty(), "{:?}", report.unmatched);
    assert_stock(&env, &catalog, qty);
    let scan = env
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/catalog/skus"))
        .expect("a SKU listing");
    assert!(
        scan.query.contains("orderBy=id") && scan.query.contains("sortedBy=asc"),
        "{}",
        scan.query
    );
}

#[tokio::test]
async fn a_sku_the_full_scan_misses_is_kept_unless_the_store_says_it_is_gone() {
    let catalog = two_page_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    assert_eq!(env.run_default().await.0, 0);
    // The next run rescans fully, and the lowest SKU is deleted between its pages: the first
    // SKU of page 2 slides onto page 1, already read, so the scan misses it although it exists.
    {
        let state = yampi_sync::state::StateStore::open(&env.state_dir()).unwrap();
        yampi_sync::index::invalidate(&state, "loja").unwrap();
    }
    env.sim.set_faults(Faults {
        delete_between_pages: true,
        ..Faults::default()
    });
    let skus = all_skus(&catalog);
    let (deleted, slid) = (skus[0].1, skus[100].1);
    // The feed no longer lists the SKU being deleted (the ERP knows it is gone).
    env.write_feed(
        "estoque-2.csv",
        &without_row(&feed_for(&catalog, qty2), &skus[0].2),
    );
    let (code, report) = env.run_default().await;
    assert!(
        env.sim.catalog().products[0]
            .skus
            .iter()
            .all(|s| s.id != deleted),
        "the fault deleted the lowest SKU"
    );
    let (p, _, code_slid) = &skus[100];
    assert_eq!(
        env.sim.stock(slid, 1),
        Some(qty2(*p, slid).0),
        "{code_slid} was missed by the scan and dropped from the index"
    );
    assert_eq!(
        env.sim.count("GET", &format!("/catalog/skus/{slid}")),
        1,
        "the missed SKU is checked once"
    );
    assert!(
        report
            .unmatched
            .iter()
            .all(|u| u.key != code_slid.to_lowercase()),
        "{:?}",
        report.unmatched
    );
    assert_eq!(code, 0, "{}", report.summary_line());
}

#[tokio::test]
async fn many_skus_missing_from_one_scan_stay_until_a_second_scan_misses_them() {
    let catalog = two_page_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    assert_eq!(env.run_default().await.0, 0);
    let skus = all_skus(&catalog);
    let removed: Vec<u64> = skus[10..40].iter().map(|s| s.1).collect();
    for id in &removed {
        env.sim.remove_sku(*id);
    }
    let Opened { state, clients, .. } = env.open();
    let first = yampi_sync::index::refresh(&clients["loja"], &state, true, |_, _| {})
        .await
        .unwrap();
    assert!(
        removed.iter().all(|id| first.skus.contains_key(id)),
        "30 SKUs missing at once are kept after one scan"
    );
    assert_eq!(
        env.sim.count("GET", "/catalog/skus/"),
        0,
        "too many to check"
    );
    let second = yampi_sync::index::refresh(&clients["loja"], &state, true, |_, _| {})
        .await
        .unwrap();
    assert!(
        removed.iter().all(|id| !second.skus.contains_key(id)),
        "a second full scan that misses them too removes them"
    );
    assert_eq!(second.skus.len(), skus.len() - removed.len());
}

#[tokio::test]
async fn a_server_clock_behind_ours_hides_no_update() {
    let catalog = sample_catalog(20, 3, 11);
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        clock_behind: Duration::from_secs(30 * 60),
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    assert_eq!(env.run_default().await.0, 0);
    // A SKU created after the first scan: by the server's clock, 30 minutes ago.
    new_sku_and_its_feed(&env, &catalog, qty);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let listing = env
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/catalog/skus"))
        .expect("a listing");
    assert!(
        listing.query.contains("updated_at"),
        "incremental: {}",
        listing.query
    );
    assert!(report.unmatched.is_empty(), "{:?}", report.unmatched);
    assert_eq!(env.sim.stock(999_001, 1), Some(4));
}

#[tokio::test]
async fn pages_without_meta_are_followed_while_they_come_back_full() {
    let catalog = sample_catalog(40, 3, 11);
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        meta_null: true,
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert!(
        report.unmatched.is_empty(),
        "{} unmatched",
        report.unmatched.len()
    );
    assert_stock(&env, &catalog, qty);
}

// --- point 15: endless pagination ---------------------------------------------------------------

#[tokio::test]
async fn a_next_link_looping_to_page_1_fails_the_job() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        wrap_pages: true,
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, report) = bounded("the run", env.run_default()).await;
    assert_eq!(code, 3, "{}", report.summary_line());
    assert!(report.message.contains("loops"), "{}", report.message);
    assert_eq!(env.writes(), 0);
}

#[tokio::test]
async fn data_on_every_page_stops_at_the_bound_from_total() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        endless_pages: true,
        ..Faults::default()
    });
    let c = client(&env, Duration::from_secs(5), 2);
    let err = bounded("the listing", c.list_skus(None, |_, _| {}))
        .await
        .err()
        .expect("an endless listing is an error");
    let msg = err.to_string();
    assert!(
        msg.contains("catalog/skus")
            && msg.contains("went on past page")
            && msg.contains("60 items"),
        "{msg}"
    );
    assert!(env.sim.count("GET", "/catalog/skus") <= 3);
}

#[tokio::test]
async fn a_total_that_lies_too_stops_at_the_hard_cap() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        endless_pages: true,
        inflated_total: true,
        ..Faults::default()
    });
    let mut c = client(&env, Duration::from_secs(5), 2);
    c.set_max_pages(7);
    let err = bounded("the listing", c.list_skus(None, |_, _| {}))
        .await
        .err()
        .expect("an endless listing is an error");
    let msg = err.to_string();
    assert!(msg.contains("did not end after 7 pages"), "{msg}");
    assert_eq!(env.sim.count("GET", "/catalog/skus"), 7);
}

#[tokio::test]
async fn string_pagination_and_empty_links_still_page_through() {
    let catalog = two_page_catalog();
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        string_pagination: true,
        ..Faults::default()
    });
    let c = client(&env, Duration::from_secs(5), 2);
    let listing = c.list_skus(None, |_, _| {}).await.unwrap();
    assert_eq!(listing.skus.len(), 150);
    assert_eq!(env.sim.count("GET", "/catalog/skus"), 2);
}

// --- point 16: endless and stalled bodies -------------------------------------------------------

#[tokio::test]
async fn a_body_that_never_ends_fails_its_request_at_the_cap() {
    let env = Env::start(small_catalog()).await;
    env.sim.set_faults(Faults {
        endless_body: true,
        ..Faults::default()
    });
    let c = client(&env, Duration::from_secs(20), 3);
    let err = bounded("the request", c.get("catalog/skus", &[]))
        .await
        .expect_err("an endless body is an error");
    let msg = err.to_string();
    assert!(
        msg.contains("GET catalog/skus")
            && msg.contains("HTTP 200")
            && msg.contains("exceeded 64 MB"),
        "{msg}"
    );
    assert_eq!(
        env.sim.count("GET", "/catalog/skus"),
        1,
        "an oversized answer is not asked for again"
    );
}

#[tokio::test]
async fn a_body_that_stalls_half_way_times_out() {
    let env = Env::start(small_catalog()).await;
    env.sim.set_faults(Faults {
        stalled_body: true,
        ..Faults::default()
    });
    let c = client(&env, Duration::from_secs(1), 1);
    let err = bounded("the request", c.get("catalog/skus", &[]))
        .await
        .expect_err("a stalled body is an error");
    let msg = err.to_string();
    assert!(msg.contains("timed out"), "{msg}");
    assert_eq!(env.sim.count("GET", "/catalog/skus"), 2, "retried once");
}

// --- point 22: credentials echoed back ----------------------------------------------------------

/// Every text a run leaves: files under the state dir (the xlsx reports read cell by cell).
fn state_texts(env: &Env) -> Vec<(String, String)> {
    use calamine::{Reader, Xlsx, open_workbook};
    let mut out = Vec::new();
    for (path, bytes) in read_all_files(&env.state_dir()) {
        let name = path.display().to_string();
        out.push((name.clone(), String::from_utf8_lossy(&bytes).into_owned()));
        if name.ends_with(".xlsx") {
            let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
            let mut cells = String::new();
            for sheet in wb.sheet_names() {
                let range = wb.worksheet_range(&sheet).unwrap();
                for row in range.rows() {
                    for c in row {
                        cells.push_str(&c.to_string());
                        cells.push('\n');
                    }
                }
            }
            out.push((format!("{name} (cells)"), cells));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_echoed_in_error_bodies_are_never_stored_or_logged() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    assert_eq!(env.run_default().await.0, 0);

    // Writes refused with 422 (each product fails with the API's message), then with 403 (the
    // job stops with it); both bodies repeat the request's headers.
    let mut logs = String::new();
    for (status, feed, exit) in [(422, qty2 as fn(u64, u64) -> (i64, i64), 4), (403, qty3, 3)] {
        env.sim.set_faults(Faults {
            echo_headers: Some(status),
            ..Faults::default()
        });
        env.write_feed(&format!("estoque-{status}.csv"), &feed_for(&catalog, feed));
        let out = env.run_binary(&["--run-once"]);
        assert_exit(&out, exit);
        logs.push_str(&output_text(&out));
    }
    let echoed = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.status == 422 || r.status == 403)
        .count();
    assert!(echoed > 0, "the fault answered");
    for (what, text) in state_texts(&env)
        .into_iter()
        .chain([("logs".to_string(), logs)])
    {
        assert!(!text.contains(TOKEN), "user_token in {what}");
        assert!(!text.contains(SECRET), "user_secret_key in {what}");
    }
    let status = std::fs::read_to_string(env.state_dir().join("status.json")).unwrap();
    assert!(
        status.contains("[redacted]"),
        "the echo reached status.json: {status}"
    );
}

#[tokio::test]
async fn an_api_error_never_carries_a_credential() {
    let env = Env::start(small_catalog()).await;
    env.sim.set_faults(Faults {
        echo_headers: Some(422),
        ..Faults::default()
    });
    let c = client(&env, Duration::from_secs(5), 0);
    let err = c
        .batch_edit(&serde_json::json!({"attribute": "price_sale", "value": 1}))
        .await
        .expect_err("refused");
    let text = format!("{err} {err:?}");
    assert!(text.contains("[redacted]"), "{text}");
    assert!(!text.contains(TOKEN) && !text.contains(SECRET), "{text}");
}
