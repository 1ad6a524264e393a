//! End-to-end stock sync against the simulator: final store state and request counts.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::*;
use yampi_sync::pipeline::RunOptions;
use yampi_sync::sim::{Faults, SimLimits};

fn qty(product: u64, sku: u64) -> (i64, i64) {
    ((sku % 17) as i64 + product as i64 % 5, (sku % 7) as i64 * 3)
}

#[tokio::test]
async fn first_sync_sets_every_sku_with_one_request_per_product() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    // The SKU × stock quantities the store holds otherwise than the feed says.
    let differ = all_skus(&catalog)
        .into_iter()
        .map(|(p, s, _)| {
            let (a, b) = qty(p, s);
            usize::from(env.sim.stock(s, 1) != Some(a))
                + usize::from(env.sim.stock(s, 2) != Some(b))
        })
        .sum::<usize>();
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_stock(&env, &catalog, qty);
    assert_eq!(env.writes(), catalog.products.len());
    assert_eq!(report.products_written, catalog.products.len() as u64);
    assert!(report.unmatched.is_empty() && report.rejected.is_empty());
    let path = report.report_path.expect("a report file");
    assert!(path.starts_with(env.state_dir().join("reports").join("estoque")));
    assert!(path.exists());
    // The report's Changes sheet lists every SKU × stock quantity that changed (all were sent),
    // and the min quantities the store held otherwise (the stocks' exports say what it held).
    use calamine::{Reader, Xlsx, open_workbook};
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let changes = wb.worksheet_range("Changes").unwrap();
    let fields: Vec<String> = changes.rows().skip(1).map(|r| r[5].to_string()).collect();
    let quantities = fields
        .iter()
        .filter(|f| f.starts_with("quantity ("))
        .count();
    assert_eq!(quantities, differ);
    assert!(
        differ > catalog.products.len() * 3,
        "most quantities change"
    );
    assert!(
        fields
            .iter()
            .all(|f| f.starts_with("quantity (") || f.starts_with("min_quantity (")),
        "{fields:?}"
    );
}

#[tokio::test]
async fn unchanged_rerun_sends_no_write() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let feed = feed_for(&catalog, qty);
    env.write_feed("estoque-1.csv", &feed);
    assert_eq!(env.run_default().await.0, 0);
    let writes = env.writes();

    // Same file: skipped by its content hash.
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0);
    assert!(report.skipped, "{}", report.summary_line());
    // A new file with the same values in another order: read, diffed, nothing to send.
    env.write_feed("estoque-2.csv", &rows_reversed(&feed));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0);
    assert!(!report.skipped);
    assert_eq!(report.changes.len(), 0);
    assert_eq!(env.writes(), writes, "no write after an unchanged feed");
}

#[tokio::test]
async fn seven_changed_skus_over_four_products_are_four_requests() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    assert_eq!(env.run_default().await.0, 0);
    let before = env.writes();

    let skus = all_skus(&catalog);
    // 2 + 2 + 2 + 1 SKUs in products 0, 3, 7, 12.
    let changed: HashSet<u64> = [0, 1, 9, 10, 21, 23, 36]
        .iter()
        .map(|i| skus[*i].1)
        .collect();
    let products: HashSet<u64> = skus
        .iter()
        .filter(|s| changed.contains(&s.1))
        .map(|s| s.0)
        .collect();
    assert_eq!((changed.len(), products.len()), (7, 4));
    let f = |p: u64, s: u64| {
        let (a, b) = qty(p, s);
        if changed.contains(&s) {
            (a + 100, b)
        } else {
            (a, b)
        }
    };
    env.write_feed("estoque-2.csv", &feed_for(&catalog, f));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.writes() - before, 4);
    assert_eq!(report.changed_skus(), 7);
    assert_stock(&env, &catalog, f);
}

#[tokio::test]
async fn tight_limits_apply_everything_without_a_429() {
    let catalog = small_catalog();
    let limits = SimLimits {
        get_skus: 3,
        get_products: 3,
        default: 8,
    };
    let env = Env::start_with(catalog.clone(), limits, Duration::from_millis(250)).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_stock(&env, &catalog, qty);
    assert_eq!(env.sim.count_status(429), 0, "the client must pace itself");
    assert_eq!(report.rate_limited, 0);
}

#[tokio::test]
async fn a_429_storm_is_waited_out_not_reported_as_failure() {
    let catalog = yampi_sync::sim::sample_catalog(4, 2, 3);
    let env = Env::start_with(catalog.clone(), roomy_limits(), Duration::from_millis(150)).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    env.sim.set_faults(Faults {
        storm_429: true,
        ..Faults::default()
    });
    let sim = env.sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        sim.set_faults(Faults::default());
    });
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert!(env.sim.count_status(429) > 0);
    assert_stock(&env, &catalog, qty);
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        error_rate: 0.2,
        drop_rate: 0.1,
        seed: 42,
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_stock(&env, &catalog, qty);
    let faults = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.status >= 500 || r.status == 0)
        .count();
    assert!(faults > 0, "the fault injection must have fired");
}

#[tokio::test]
async fn bad_rows_are_rejected_and_the_rest_applied() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let skus = all_skus(&catalog);
    let mut feed = feed_for(&catalog, qty);
    feed.push_str(&format!("{};x;abc;1\n", skus[0].2)); // not a number (and a duplicate key)
    feed.push_str(&format!("{};x;-4;1\n", "NEG-KEY")); // negative
    feed.push_str(";x;3;3\n"); // empty key
    feed.push_str(&format!("{};x;99;99\n", skus[5].2)); // duplicate key, different values
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 4, "{}", report.summary_line());
    let reasons: Vec<&str> = report.rejected.iter().map(|r| r.reason.en()).collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("not a number")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("negative quantity")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("empty key")),
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("duplicate key"))
            .count(),
        2,
        "{reasons:?}"
    );
    // The row numbers are the file's (header = row 1).
    let dup_rows: Vec<u64> = report
        .rejected
        .iter()
        .filter(|r| r.reason.starts_with("duplicate"))
        .map(|r| r.row)
        .collect();
    assert_eq!(dup_rows, vec![7, skus.len() as u64 + 5]);
    // Rejected keys are untouched; every other SKU is applied.
    let initial = |id: u64, stock: u64| {
        catalog
            .products
            .iter()
            .flat_map(|p| &p.skus)
            .find(|s| s.id == id)
            .unwrap()
            .stocks
            .iter()
            .find(|r| r.stock_id == stock)
            .map(|r| r.quantity)
    };
    for (i, (p, s, code_)) in skus.iter().enumerate() {
        if i == 0 || i == 5 {
            assert_eq!(
                env.sim.stock(*s, 1),
                initial(*s, 1),
                "{code_} must be untouched"
            );
            continue;
        }
        assert_eq!(env.sim.stock(*s, 1), Some(qty(*p, *s).0), "{code_}");
    }
}

#[tokio::test]
async fn truncated_feed_trips_the_guard_and_sends_nothing() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let feed = feed_for(&catalog, qty);
    env.write_feed("estoque-1.csv", &feed);
    assert_eq!(env.run_default().await.0, 0);
    let before = env.writes();
    // The next export stops after a quarter of its rows, and everything changed.
    let short: Vec<&str> = feed
        .lines()
        .take(1 + all_skus(&catalog).len() / 4)
        .collect();
    env.write_feed("estoque-2.csv", &short.join("\n").replace(";0;", ";50;"));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 3, "{}", report.summary_line());
    assert!(report.message.contains("shrank"), "{}", report.message);
    assert_eq!(env.writes(), before, "a tripped guard sends nothing");
}

#[tokio::test]
async fn zeroing_too_many_skus_trips_the_guard() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed(
        "estoque-1.csv",
        &feed_for(&catalog, |p, s| {
            let (a, b) = qty(p, s);
            (a + 1, b + 1)
        }),
    );
    assert_eq!(env.run_default().await.0, 0);
    let before = env.writes();
    env.write_feed(
        "estoque-2.csv",
        &feed_for(&catalog, |_, s| if s % 2 == 0 { (0, 0) } else { (5, 5) }),
    );
    let (code, report) = env.run_default().await;
    assert_eq!(code, 3, "{}", report.summary_line());
    assert!(
        report.message.contains("drop to zero"),
        "{}",
        report.message
    );
    assert_eq!(env.writes(), before);
}

#[tokio::test]
async fn string_pagination_numbers_are_understood() {
    let catalog = yampi_sync::sim::sample_catalog(70, 3, 5); // 210 SKUs: three pages of 100
    let env = Env::start(catalog.clone()).await;
    env.sim.set_faults(Faults {
        string_pagination: true,
        ..Faults::default()
    });
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(report.matched_skus, 210);
    assert!(report.unmatched.is_empty());
    // Three pages of 100 (a first index also asks for one SKU to learn the store's size).
    let pages = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/catalog/skus"))
        .filter(|r| r.query.contains("limit=100"))
        .count();
    assert_eq!(pages, 3);
    assert_stock(&env, &catalog, qty);
}

#[tokio::test]
async fn unknown_keys_are_reported_never_created() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let mut feed = feed_for(&catalog, qty);
    feed.push_str("NAO-EXISTE-1;x;5;5\nnao-existe-2;x;1;1\n");
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = env.run_default().await;
    assert_eq!(
        code,
        0,
        "unmatched keys keep exit 0: {}",
        report.summary_line()
    );
    let keys: Vec<&str> = report.unmatched.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, vec!["NAO-EXISTE-1", "nao-existe-2"]);
    let after = env.sim.catalog();
    assert_eq!(
        all_skus(&after).len(),
        all_skus(&catalog).len(),
        "nothing created"
    );
    assert_eq!(env.sim.count("POST", "/catalog/skus"), 0);
}

#[tokio::test]
async fn shared_keys_are_reported_not_guessed() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let skus = all_skus(&catalog);
    let twin = skus[4].2.clone();
    env.sim
        .update_sku(skus[40].1, |s| s.sku = twin.to_lowercase());
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let u = report
        .unmatched
        .iter()
        .find(|u| u.key == twin)
        .expect("reported");
    assert!(u.reason.contains("share"), "{}", u.reason);
    let original = catalog
        .products
        .iter()
        .flat_map(|p| &p.skus)
        .find(|s| s.id == skus[4].1)
        .unwrap();
    assert_eq!(
        env.sim.stock(skus[4].1, 1),
        original
            .stocks
            .iter()
            .find(|r| r.stock_id == 1)
            .map(|r| r.quantity)
    );
}

#[tokio::test]
async fn reserve_and_missing_zero() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.mapping = STOCK_MAPPING.replace("missing = \"keep\"", "missing = \"zero\"\nreserve = 2");
    env.job_extra = "max_zeroed_pct = 100".into();
    let skus = all_skus(&catalog);
    let absent = skus[7].1;
    let feed = without_row(&feed_for(&catalog, |_, _| (10, 1)), &skus[7].2);
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(
        env.sim.stock(skus[0].1, 1),
        Some(8),
        "10 minus a reserve of 2"
    );
    assert_eq!(env.sim.stock(skus[0].1, 2), Some(0), "floor 0");
    assert_eq!(env.sim.stock(absent, 1), Some(0), "missing = zero");
    assert_eq!(env.sim.stock(absent, 2), Some(0));
}

#[tokio::test]
async fn dry_run_plans_and_sends_nothing() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    let (code, reports) = env
        .run(RunOptions {
            dry_run: true,
            ..RunOptions::default()
        })
        .await;
    assert_eq!(code, 0);
    assert_eq!(env.writes(), 0);
    assert_eq!(
        reports[0].plan,
        vec![("POST catalog/products/{id}/stocks/sync".to_string(), 20)]
    );
    // A real run afterwards still sends everything (the dry run checkpointed nothing).
    assert_eq!(env.run_default().await.0, 0);
    assert_eq!(env.writes(), 20);
}

#[tokio::test]
async fn diff_is_against_last_pushed_not_live_values() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    assert_eq!(env.run_default().await.0, 0);
    let skus = all_skus(&catalog);
    // A sale in the store that the ERP has not seen yet.
    env.sim.update_sku(skus[2].1, |s| {
        s.stocks.iter_mut().for_each(|r| r.quantity = 0)
    });
    let before = env.writes();
    let f = |p: u64, s: u64| {
        let (a, b) = qty(p, s);
        if s == skus[9].1 { (a + 1, b) } else { (a, b) }
    };
    env.write_feed("estoque-2.csv", &feed_for(&catalog, f));
    assert_eq!(env.run_default().await.0, 0);
    assert_eq!(
        env.writes() - before,
        1,
        "only the product whose ERP value changed"
    );
    assert_eq!(
        env.sim.stock(skus[2].1, 1),
        Some(0),
        "the sale is not undone"
    );
    // --full pushes everything again.
    let (code, _) = env
        .run(RunOptions {
            full: true,
            ..RunOptions::default()
        })
        .await;
    assert_eq!(code, 0);
    assert_eq!(
        env.sim.stock(skus[2].1, 1),
        Some(qty(skus[2].0, skus[2].1).0)
    );
}

#[tokio::test]
async fn index_refresh_is_incremental_and_sees_new_skus() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    assert_eq!(env.run_default().await.0, 0);
    let full_scan_requests = env.sim.count("GET", "/catalog/skus");
    // A SKU created in the store after the first scan.
    new_sku_and_its_feed(&env, &catalog, qty);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert!(full_scan_requests >= 1);
    let sku_gets: Vec<_> = env
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/catalog/skus"))
        .collect();
    assert_eq!(sku_gets.len(), 1, "one incremental page, not a full scan");
    assert!(
        sku_gets[0].query.contains("updated_at"),
        "{}",
        sku_gets[0].query
    );
    assert_eq!(env.sim.stock(999_001, 1), Some(4));
    assert!(report.unmatched.is_empty());
}

#[tokio::test]
async fn incremental_refresh_reads_only_recent_updates_and_full_rescans_catch_deletions() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    let Opened { state, clients, .. } = env.open();
    let client = &clients["loja"];
    let skus = all_skus(&catalog);

    let first = yampi_sync::index::refresh(client, &state, false, |_, _| {})
        .await
        .unwrap();
    assert!(first.was_full);
    assert_eq!(first.fetched, skus.len());

    env.sim
        .update_sku(skus[3].1, |s| s.barcode = Some("7890000000001".into()));
    env.sim.clear_requests();
    let second = yampi_sync::index::refresh(client, &state, false, |_, _| {})
        .await
        .unwrap();
    assert!(!second.was_full);
    assert_eq!(
        second.fetched, 1,
        "only the SKU updated since the last refresh"
    );
    assert_eq!(
        second.skus[&skus[3].1].barcode.as_deref(),
        Some("7890000000001")
    );
    let q = &env.sim.requests()[0].query;
    assert!(q.contains("updated_at"), "{q}");

    env.sim.remove_sku(skus[5].1);
    let third = yampi_sync::index::refresh(client, &state, true, |_, _| {})
        .await
        .unwrap();
    assert!(third.was_full);
    assert_eq!(
        third.skus.len(),
        skus.len() - 1,
        "a full rescan drops deleted SKUs"
    );
    assert!(!third.skus.contains_key(&skus[5].1));
}

#[tokio::test]
async fn keys_can_match_erp_id_or_barcode() {
    let catalog = small_catalog();
    for (field, pick) in [("erp_id", 0usize), ("barcode", 1)] {
        let mut env = Env::start(catalog.clone()).await;
        env.mapping = STOCK_MAPPING.replace("match = \"sku\"", &format!("match = \"{field}\""));
        let mut feed = String::from("Código;Saldo Loja;Saldo CD\n");
        for p in &catalog.products {
            for s in &p.skus {
                let key = [s.erp_id.clone().unwrap(), s.barcode.clone().unwrap()][pick].clone();
                // Keys match trimmed and case-insensitively.
                feed.push_str(&format!(" {} ;{};{}\n", key.to_lowercase(), s.id % 9, 1));
            }
        }
        env.write_feed("estoque-1.csv", &feed);
        let (code, report) = env.run_default().await;
        assert_eq!(code, 0, "{field}: {}", report.summary_line());
        assert!(report.unmatched.is_empty(), "{field}");
        for (_, s, _) in all_skus(&catalog) {
            assert_eq!(env.sim.stock(s, 1), Some((s % 9) as i64), "{field}");
        }
    }
}

#[tokio::test]
async fn a_product_the_store_refuses_is_reported_with_the_api_message() {
    let catalog = small_catalog();
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty));
    // The product's SKUs disappear between the index refresh and the write.
    let (code, report) = {
        let Opened { state, clients, .. } = env.open();
        yampi_sync::index::refresh(&clients["loja"], &state, false, |_, _| {})
            .await
            .unwrap();
        drop(state);
        for s in &catalog.products[2].skus {
            env.sim.remove_sku(s.id);
        }
        env.run_default().await
    };
    assert_eq!(code, 4, "{}", report.summary_line());
    assert_eq!(report.products_failed, 1);
    let failed: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.product_id == catalog.products[2].id)
        .map(|c| c.outcome.to_string())
        .collect();
    assert!(!failed.is_empty());
    let path = format!("catalog/products/{}/stocks/sync", catalog.products[2].id);
    assert!(
        failed
            .iter()
            .all(|o| o.contains("HTTP 422") && o.contains("invalid") && o.contains(&path)),
        "{failed:?}"
    );
    // Everything else landed.
    let other = &catalog.products[3].skus[0];
    assert_eq!(
        env.sim.stock(other.id, 1),
        Some(qty(other.product_id, other.id).0)
    );
}
