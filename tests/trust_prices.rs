//! Price writes that land once, truly, and touch only what they change: batch updates followed
//! to their end one after another per product, single-SKU writes that carry only the changed
//! fields, sale prices that would fall below the store's promotion refused, interrupted writes
//! re-planned unless the store confirms them, and summaries that count only what was sent.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use support::prices::*;
use support::*;
use yampi_sync::model::PriceFields;
use yampi_sync::sim::{Catalog, sample_catalog};
use yampi_sync::state::StateStore;

/// No markup or rounding: the file's prices are the store's.
async fn env_for(catalog: &Catalog) -> Env {
    let fields = r#"
price_sale = "Preço"
price_discount = "Promoção"
price_cost = "Custo"
max_change_pct = 5000
"#;
    price_env(catalog, &price_mapping("dot", fields)).await
}

fn sale_only(p: &str) -> (String, String, String) {
    (p.into(), String::new(), String::new())
}

fn sale(env: &Env, id: u64) -> Decimal {
    env.sim.sku_prices(id).expect("known SKU").1
}

/// Waits (bounded) until no batch update of the simulator is still pending.
async fn until_settled(env: &Env) {
    poll_until(
        "the batch updates to finish",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || env.sim.pending_batch_updates() == 0,
    )
    .await
}

/// SKU `i`'s own sale price: 600.00 + i.
fn own_price(i: usize) -> String {
    format!("{}.00", 600 + i)
}

/// 2 products × 3 SKUs, every SKU synced at its own price.
async fn synced_at_own_prices() -> (Env, Catalog) {
    let catalog = sample_catalog(2, 3, 11);
    let env = env_for(&catalog).await;
    let feed = price_feed(&catalog, |i| sale_only(&own_price(i)));
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    (env, catalog)
}

/// Records the intent a run leaves before it writes `sale` for SKU `id` (as if it died after).
async fn record_sale_intent(env: &Env, id: u64, sale: &str) {
    let state = StateStore::open(&env.state_dir()).unwrap();
    let want = PriceFields {
        sale: Some(d(sale)),
        ..PriceFields::default()
    };
    let ops = state.price_ops(&[(id, want)]).unwrap();
    state.ledger("estoque").unwrap().intend(&ops).await.unwrap();
}

// Point 3: one product's batch updates go one after another, each followed to its end.
#[tokio::test]
async fn a_products_batch_updates_are_sent_one_after_another_and_all_land() {
    // 3 products × 4 SKUs; in each product SKUs 1–2 share one price and 3–4 another: two
    // batch updates per product, both asynchronous.
    let catalog = sample_catalog(3, 4, 11);
    let env = env_for(&catalog).await;
    env.sim.set_batch_async_threshold(1);
    env.sim.set_batch_async_delay(Duration::from_millis(200));
    let price = |i: usize| if i % 4 < 2 { "601.00" } else { "602.00" };
    env.write_feed(
        "estoque-1.csv",
        &price_feed(&catalog, |i| sale_only(price(i))),
    );
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.count("PUT", "/batch-update-skus"), 6);
    assert_eq!(
        env.sim.batch_updates_queued_behind(),
        0,
        "a batch update was sent while an earlier one of its product was still pending"
    );
    // Checkpointed only once landed: the store holds every price as the run ends.
    assert_eq!(env.sim.pending_batch_updates(), 0);
    for (i, (_, id, _)) in all_skus(&catalog).iter().enumerate() {
        assert_eq!(sale(&env, *id), d(price(i)), "SKU {i}");
    }
    assert_eq!(report.products_written, 6, "{}", report.summary_line());
}

// Point 3: the simulator queues every batch and reports the latest one truthfully.
#[tokio::test]
async fn the_simulator_applies_queued_batches_in_order_and_never_reports_one_early() {
    let catalog = sample_catalog(1, 4, 11);
    let env = Env::start(catalog.clone()).await;
    env.sim.set_batch_async_threshold(1);
    env.sim.set_batch_async_delay(Duration::from_millis(300));
    let product = catalog.products[0].id;
    let ids: Vec<u64> = catalog.products[0].skus.iter().map(|s| s.id).collect();
    let client = reqwest::Client::new();
    let url = |path: &str| {
        format!(
            "{}/loja-teste/catalog/products/{product}/skus/{path}",
            env.sim.base_url()
        )
    };
    let put = |body: serde_json::Value| {
        client
            .put(url("batch-update-skus"))
            .header("User-Token", TOKEN)
            .header("User-Secret-Key", SECRET)
            .json(&body)
            .send()
    };
    let progress = || async {
        let r = client
            .get(url("batch-update-skus-progress"))
            .header("User-Token", TOKEN)
            .header("User-Secret-Key", SECRET)
            .send()
            .await
            .unwrap();
        r.json::<serde_json::Value>().await.unwrap()["data"].clone()
    };
    let a = put(
        serde_json::json!({"product_id": product, "skus_id": [ids[0], ids[1]], "price_sale": 701}),
    )
    .await
    .unwrap();
    assert_eq!(a.status(), 200);
    // A single-SKU batch behind a pending one is queued too, not applied ahead of it.
    let b = put(serde_json::json!({"product_id": product, "skus_id": [ids[2]], "price_sale": 702}))
        .await
        .unwrap();
    let b: serde_json::Value = b.json().await.unwrap();
    assert_eq!(b["data"]["status"], "queued", "{b}");
    assert_eq!(env.sim.batch_updates_queued_behind(), 1);
    let t0 = Instant::now();
    loop {
        // Read the later batch's SKU first: once it shows, the earlier one must already.
        let second = sale(&env, ids[2]);
        let first = sale(&env, ids[0]);
        if second == d("702") {
            assert_eq!(first, d("701"), "applied in the order received");
        }
        let p = progress().await;
        if second == d("702") {
            assert_eq!(
                p["status"], "finished",
                "applied, so reported finished: {p}"
            );
        }
        if p["status"] == "finished" {
            // Finished means applied, for both batches.
            assert_eq!(
                (sale(&env, ids[0]), sale(&env, ids[2])),
                (d("701"), d("702"))
            );
            break;
        }
        assert_eq!(
            p["processed"], 0,
            "nothing processed before it is applied: {p}"
        );
        assert!(t0.elapsed() < Duration::from_secs(10), "{p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Point 5: a write carries only the fields the plan changes.
#[tokio::test]
async fn a_discount_change_leaves_an_admin_edit_of_the_sale_price_alone() {
    let catalog = sample_catalog(2, 3, 11);
    let env = env_for(&catalog).await;
    let skus = all_skus(&catalog);
    // Every SKU gets its own sale price and a discount below it.
    let row = |i: usize, promo: &str| (format!("{}.00", 600 + i), promo.to_string(), String::new());
    env.write_feed("estoque-1.csv", &price_feed(&catalog, |i| row(i, "550.00")));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    // The index now holds SKU 0 at 600.00. An admin raises it to 640.00 after the next run has
    // read its index, just before that run's write arrives.
    let target = skus[0].1;
    env.sim
        .admin_sets_sale_before_next_price_write(target, d("640.00"));
    env.write_feed(
        "estoque-2.csv",
        &price_feed(&catalog, |i| {
            row(i, if i == 0 { "540.00" } else { "550.00" })
        }),
    );
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let (_, sale, discount) = env.sim.sku_prices(target).unwrap();
    assert_eq!(discount, d("540.00"), "the discount landed");
    assert_eq!(sale, d("640.00"), "the admin's sale price was not reverted");
    let body = env
        .sim
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PUT")
        .expect("the discount write")
        .body;
    assert!(
        !body.contains("price_sale"),
        "only the changed field is sent: {body}"
    );
}

// Point 14: a sale price below the store's current promotion is refused unless the row sets
// the discount.
#[tokio::test]
async fn a_sale_price_below_the_stores_discount_is_refused_unless_the_row_sets_it() {
    let catalog = sample_catalog(2, 3, 11);
    let env = env_for(&catalog).await;
    let skus = all_skus(&catalog);
    // Two SKUs on promotion at 300.00 (sale 400.00, cost 10.00).
    for (_, id, _) in &skus[..2] {
        env.sim.update_sku(*id, |s| {
            s.price_cost = d("10.00");
            s.price_sale = d("400.00");
            s.price_discount = d("300.00");
        });
    }
    let before: HashMap<u64, _> = skus
        .iter()
        .map(|s| (s.1, env.sim.sku_prices(s.1).unwrap()))
        .collect();
    env.write_feed(
        "estoque-1.csv",
        &price_feed(&catalog, |i| match i {
            // Below the promotion, discount cell blank: refused.
            0 => sale_only("250.00"),
            // Below the old promotion, but the row sets a new one: fine.
            1 => ("250.00".into(), "200.00".into(), String::new()),
            // Above every store price: fine.
            i => sale_only(&format!("{}.00", 700 + i)),
        }),
    );
    let (code, report) = env.run_default().await;
    assert_eq!(code, 4, "{}", report.summary_line());
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let r = &report.rejected[0];
    assert_eq!((r.row, r.column.as_str()), (2, "Preço"), "{r:?}");
    assert!(
        r.reason.contains("300.00") && r.reason.contains("discount"),
        "{}",
        r.reason
    );
    assert_eq!(env.sim.sku_prices(skus[0].1).unwrap(), before[&skus[0].1]);
    assert_eq!(
        env.sim.sku_prices(skus[1].1).unwrap(),
        (d("10.00"), d("250.00"), d("200.00"))
    );
    assert_eq!(sale(&env, skus[2].1), d("702.00"));
}

// Point 7: an interrupted write the store does not confirm is planned again from the feed.
#[tokio::test]
async fn an_interrupted_write_that_lands_late_is_overwritten_by_the_next_run() {
    let catalog = sample_catalog(2, 3, 11);
    let env = env_for(&catalog).await;
    env.sim.set_batch_async_threshold(1);
    env.sim.set_batch_async_delay(Duration::from_millis(20));
    let skus = all_skus(&catalog);
    // A: every SKU of a product at one price (one batch update per product).
    let a = |i: usize| format!("{}.00", 600 + i / 3);
    let feed_a = price_feed(&catalog, |i| sale_only(&a(i)));
    env.write_feed("estoque-1.csv", &feed_a);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());

    // B is sent, its batches queued for long, and the run dies before they finish.
    env.sim.set_batch_async_delay(Duration::from_millis(1500));
    env.write_feed(
        "estoque-2.csv",
        &price_feed(&catalog, |i| sale_only(&format!("{}.00", 650 + i / 3))),
    );
    let sent = env.sim.count("PUT", "/batch-update-skus");
    tokio::select! {
        r = env.run_default() => panic!("the run was to be interrupted: {}", r.1.summary_line()),
        _ = async {
            while env.sim.count("PUT", "/batch-update-skus") < sent + 2 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        } => {}
    }

    // The ERP goes back to A (same values, new file) before B has landed.
    env.write_feed("estoque-3.csv", &rows_reversed(&feed_a));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    until_settled(&env).await;
    for (i, (_, id, _)) in skus.iter().enumerate() {
        assert_eq!(
            sale(&env, *id),
            d(&a(i)),
            "SKU {i} ends at the feed's value"
        );
    }
}

// Point 7 and 24: an interrupted write the store confirms is checkpointed, not sent, and not
// counted as a write.
#[tokio::test]
async fn an_interrupted_write_the_store_confirms_is_checkpointed_and_not_counted_as_sent() {
    let (env, catalog) = synced_at_own_prices().await;
    let skus = all_skus(&catalog);

    // A run recorded its intent for SKU 0 at 680.00, the write landed, and it died before the
    // checkpoint.
    let target = skus[0].1;
    record_sale_intent(&env, target, "680.00").await;
    env.sim.update_sku(target, |s| s.price_sale = d("680.00"));
    let before = env.sim.count("PUT", "");
    let feed_b = price_feed(&catalog, |i| {
        sale_only(&if i == 0 {
            "680.00".into()
        } else {
            own_price(i)
        })
    });
    env.write_feed("estoque-2.csv", &feed_b);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.count("PUT", ""), before, "nothing sent again");
    assert_eq!(report.products_written, 0, "{}", report.summary_line());
    assert_eq!(report.changed_skus(), 0, "{}", report.summary_line());
    assert_eq!(report.already_applied, 1, "{}", report.summary_line());
    assert!(
        report
            .summary_line()
            .contains("1 interrupted write found already applied"),
        "{}",
        report.summary_line()
    );
    // Checkpointed: the next file with the same values sends nothing either.
    env.write_feed("estoque-3.csv", &rows_reversed(&feed_b));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.count("PUT", ""), before);
    assert_eq!(report.already_applied, 0);
}

// Point 7: an intent the store does not show, with the ERP back at the old value: the SKU is
// planned again, so whatever the write did, the store ends at the feed's value.
#[tokio::test]
async fn an_unconfirmed_intent_forgets_its_pushed_prices() {
    let (env, catalog) = synced_at_own_prices().await;
    let skus = all_skus(&catalog);
    let target = skus[1].1;
    record_sale_intent(&env, target, "690.00").await;
    let before = env.sim.count("PUT", "");
    let feed_a = price_feed(&catalog, |i| sale_only(&own_price(i)));
    env.write_feed("estoque-2.csv", &rows_reversed(&feed_a));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(
        env.sim.count("PUT", ""),
        before + 1,
        "the SKU is written again"
    );
    // Sent again, but not listed as a change: the store (index) already shows that price, so
    // no field's value differs from the old one.
    assert_eq!(report.changed_skus(), 0, "{:?}", report.changes);
    assert_eq!(report.already_applied, 0);
    assert_eq!(sale(&env, target), d(&own_price(1)));
}

// Point 7 with a real `kill -9`: the rerun ends with the store equal to the feed, sending again
// at most what was in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_price_run_is_finished_by_the_next_without_resending_what_landed() {
    let catalog = small_catalog();
    let env = env_for(&catalog).await;
    let skus = all_skus(&catalog);
    // Every SKU its own price: one write per SKU, a product's writes one after another.
    env.write_feed(
        "estoque-1.csv",
        &price_feed(&catalog, |i| sale_only(&own_price(i))),
    );
    env.sim.set_faults(yampi_sync::sim::Faults {
        latency: Duration::from_millis(60),
        ..Default::default()
    });
    let mut child = Running(env.command(&["--run-once"]).spawn().unwrap());
    poll_until(
        "the run to write",
        Duration::from_secs(30),
        Duration::from_millis(2),
        || env.sim.count("PUT", "/batch-update-skus") >= 12,
    )
    .await;
    child.kill_hard();
    let before_rerun = env.sim.count("PUT", "/batch-update-skus");
    env.sim.set_faults(yampi_sync::sim::Faults::default());
    assert_exit(&env.run_binary(&["--run-once"]), 0);
    for (i, (_, id, _)) in skus.iter().enumerate() {
        assert_eq!(sale(&env, *id), d(&own_price(i)), "SKU {i}");
    }
    let total = env.sim.count("PUT", "/batch-update-skus");
    let resent = total - skus.len();
    eprintln!(
        "kill figures: {before_rerun} writes before the rerun, {total} in all, {resent} sent again"
    );
    // At most the writes in flight at the kill (max_in_flight = 4) are sent twice.
    assert!(
        resent <= 4 + 2,
        "{resent} writes sent again ({before_rerun} before the rerun, {total} in all)"
    );
}
