//! The write protocol of a stock run: nothing a partial run, a kill or a mapping change leaves
//! behind is forgotten, and nothing is counted as written that was not sent.

mod support;

use support::*;
use yampi_sync::sim::{Catalog, Faults};

fn qty_a(product: u64, sku: u64) -> (i64, i64) {
    (
        (sku % 13) as i64 + product as i64 % 3 + 5,
        (sku % 5) as i64 + 2,
    )
}

fn qty_b(product: u64, sku: u64) -> (i64, i64) {
    let (a, b) = qty_a(product, sku);
    (a + 10, b + 20)
}

/// Feed A synced completely, then feed B's first writes applied by the store but never
/// confirmed (the connection drops after every write, retries run out, the job stops): those
/// products hold B, the job's checkpoints still say A, and B's intents are left for the next
/// run. Returns the products that hold B.
async fn a_then_b_applied_unconfirmed() -> (Env, Catalog, String, Vec<u64>) {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.max_retries = 0;
    let feed_a = feed_for(&catalog, qty_a);
    env.write_feed("estoque-1.csv", &feed_a);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());

    env.sim.set_faults(Faults {
        apply_then_drop_rate: 1.0,
        ..Faults::default()
    });
    let before: Vec<usize> = catalog
        .products
        .iter()
        .map(|p| env.applied_syncs(p.id))
        .collect();
    env.write_feed("estoque-2.csv", &feed_for(&catalog, qty_b));
    let (code, report) = env.run_default().await;
    assert_eq!(
        code,
        3,
        "every write lost its answer: {}",
        report.summary_line()
    );
    assert_eq!(report.products_written, 0, "{}", report.summary_line());
    env.sim.set_faults(Faults::default());
    let with_b: Vec<u64> = catalog
        .products
        .iter()
        .zip(before)
        .filter(|(p, n)| env.applied_syncs(p.id) > *n)
        .map(|(p, _)| p.id)
        .collect();
    assert!(
        !with_b.is_empty() && with_b.len() < catalog.products.len(),
        "{with_b:?}"
    );
    for p in &with_b {
        let sku = &catalog.products.iter().find(|x| x.id == *p).unwrap().skus[0];
        assert_eq!(env.sim.stock(sku.id, 1), Some(qty_b(*p, sku.id).0));
    }
    (env, catalog, feed_a, with_b)
}

#[tokio::test]
async fn a_partly_sent_feed_never_makes_the_old_file_look_synced() {
    let (env, catalog, feed_a, _) = a_then_b_applied_unconfirmed().await;
    // The ERP exports A again, byte for byte.
    env.write_feed("estoque-3.csv", &feed_a);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert!(!report.skipped, "{}", report.summary_line());
    assert_stock(&env, &catalog, qty_a);
}

#[tokio::test]
async fn an_interrupted_write_the_next_plan_lacks_is_put_right() {
    let (env, catalog, feed_a, _) = a_then_b_applied_unconfirmed().await;
    // The ERP went back to A (another file, same values): the checkpoints say A was pushed, but
    // the store may hold B's interrupted writes.
    env.write_feed("estoque-3.csv", &rows_reversed(&feed_a));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_stock(&env, &catalog, qty_a);
    // Nothing is left in flight.
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
}

#[tokio::test]
async fn writes_found_applied_after_a_lost_answer_are_not_counted_as_writes() {
    let (env, catalog, _, with_b) = a_then_b_applied_unconfirmed().await;
    let writes = env.writes();
    // Same values as the interrupted writes: the store is checked, nothing is sent again.
    env.write_feed("estoque-3.csv", &feed_for(&catalog, qty_b));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    let rest = (catalog.products.len() - with_b.len()) as u64;
    assert_eq!(
        env.writes() - writes,
        rest as usize,
        "only the rest is sent"
    );
    for p in &with_b {
        assert_eq!(env.applied_syncs(*p), 2, "product {p}: A, then B once");
    }
    assert_eq!(report.products_written, rest, "{}", report.summary_line());
    assert_eq!(report.already_applied, with_b.len() as u64);
    assert!(
        report.summary_line().contains(&format!("by {rest} writes")),
        "{}",
        report.summary_line()
    );
    assert_stock(&env, &catalog, qty_b);
}

#[tokio::test]
async fn a_mapping_change_is_applied_without_a_new_file() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty_a));
    assert_eq!(env.run_default().await.0, 0);
    let (code, report) = env.run_default().await;
    assert!(
        report.skipped && code == 0,
        "same file, same mapping: skipped"
    );

    env.mapping = STOCK_MAPPING.replace("min_quantity = 0", "min_quantity = 0\nreserve = 2");
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert!(
        !report.skipped,
        "the mapping changed: {}",
        report.summary_line()
    );
    assert_stock(&env, &catalog, |p, s| {
        let (a, b) = qty_a(p, s);
        (a - 2, b - 2)
    });
}

#[tokio::test]
async fn a_feed_whose_keys_match_nothing_fails_naming_match_and_key() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    // The store's SKUs have no erp_id: matching on it matches nothing.
    env.mapping = STOCK_MAPPING.replace(r#"match = "sku""#, r#"match = "erp_id""#);
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty_a));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 3, "{}", report.summary_line());
    assert!(
        report.message.contains("match = \"erp_id\"") && report.message.contains("Código"),
        "{}",
        report.message
    );
    assert_eq!(env.writes(), 0);
}

#[test]
fn check_refuses_a_stock_mapped_twice() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let catalog = small_catalog();
    let mut env = rt.block_on(Env::start(catalog.clone()));
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty_a));
    for (mapping, why) in [
        (
            STOCK_MAPPING.replace(r#""2" = "Saldo CD""#, r#""01" = "Saldo CD""#),
            "\"1\" and \"01\"",
        ),
        (
            STOCK_MAPPING.replace("[stock]", "[stock]\nquantity = \"Saldo CD\"\nstock_id = 1"),
            "quantity and stocks.\"1\"",
        ),
    ] {
        env.mapping = mapping;
        let out = env.run_binary(&["check"]);
        let err = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{why}: {err}");
        assert!(err.contains("stock_id 1 is mapped twice"), "{why}: {err}");
    }
}

#[tokio::test]
async fn a_missing_source_after_another_job_wrote_is_not_exit_2() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.job_extra = job_table("estoque-cd", "stock", "erp/nada-*.csv", "stock.toml", None);
    env.write_feed("estoque-1.csv", &feed_for(&catalog, qty_a));
    let (code, reports) = env.run(Default::default()).await;
    assert!(env.writes() > 0);
    assert_eq!(
        code,
        3,
        "{:?}",
        reports.iter().map(|r| r.summary_line()).collect::<Vec<_>>()
    );
    let second = reports.iter().find(|r| r.job == "estoque-cd").unwrap();
    assert_eq!(second.exit_code, 3);
    assert!(
        second.message.contains("job estoque already wrote"),
        "{}",
        second.message
    );
}
