//! Audit jobs against the simulator: the store's exports read through its queues (links from
//! `redirect_url` or notifications only, `.xls` or `.xlsx` files), compared with the ERP feed,
//! exactly the planted differences reported, and nothing written to the store.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use calamine::Reader;
use rust_decimal::Decimal;
use support::*;
use yampi_sync::pipeline::RunOptions;
use yampi_sync::report::{Difference, Field, Value};
use yampi_sync::sim::{Catalog, Faults, FileFormat, QueueSettings};

const AUDIT_MAPPING: &str = r#"
match = "sku"
key = "Código"
decimal = "comma"

[stock]
stocks = { "1" = "Saldo Loja", "2" = "Saldo CD" }
min_quantity = 0

[price]
price_sale = "Preço"
"#;

/// An audit env: short queues, every min quantity 0 (the mapping's), the feed equal to the store.
async fn audit_env(format: FileFormat, f: impl FnOnce(&mut QueueSettings)) -> Env {
    let mut env = Env::start(small_catalog()).await;
    let mut s = QueueSettings {
        queue_secs: Duration::from_millis(150),
        format,
        ..QueueSettings::default()
    };
    f(&mut s);
    env.sim.set_queue_settings(s);
    env.kind = "audit".into();
    env.mapping = AUDIT_MAPPING.into();
    env.job_extra = "queue_timeout = \"20s\"\n".into();
    for (_, sku, _) in all_skus(&env.sim.catalog()) {
        env.sim.update_sku(sku, |s| {
            for st in &mut s.stocks {
                st.min_quantity = 0;
            }
        });
    }
    env.write_feed("estoque-1.csv", &feed_of(&env.sim.catalog()));
    env
}

/// The store as the ERP would say it: quantities of stocks 1 and 2, the sale price.
fn feed_of(catalog: &Catalog) -> String {
    let mut s = String::from("Código;Saldo Loja;Saldo CD;Preço\n");
    for p in &catalog.products {
        for sku in &p.skus {
            let q = |id: u64| {
                sku.stocks
                    .iter()
                    .find(|r| r.stock_id == id)
                    .map_or(0, |r| r.quantity)
            };
            s.push_str(&format!(
                "{};{};{};{}\n",
                sku.sku,
                q(1),
                q(2),
                sku.price_sale.to_string().replace('.', ",")
            ));
        }
    }
    s
}

/// Writes the config with the store's extra keys and opens it.
fn open(env: &Env, store_extra: &str) -> Opened {
    let path = env.write_config();
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "max_retries = ",
        &format!("{store_extra}\nmax_retries = "),
        1,
    );
    std::fs::write(&path, text).unwrap();
    open_config(&path)
}

async fn audit(env: &Env) -> (i32, yampi_sync::report::RunReport) {
    let (code, mut reports) = tokio::time::timeout(
        Duration::from_secs(60),
        open(env, "").run(&RunOptions::default()),
    )
    .await
    .expect("the audit ends within a minute");
    (code, reports.remove(0))
}

/// One stock quantity and one price changed in the store after the feed was written: the two
/// differences the audit must find. Returns them as the report should list them.
fn plant(env: &Env) -> Vec<Difference> {
    let catalog = env.sim.catalog();
    let a = &catalog.products[0].skus[0];
    let b = &catalog.products[1].skus[1];
    let qty = a.stocks.iter().find(|r| r.stock_id == 1).unwrap().quantity;
    env.sim.update_sku(a.id, |s| {
        s.stocks
            .iter_mut()
            .find(|r| r.stock_id == 1)
            .unwrap()
            .quantity = qty + 5;
    });
    let price = b.price_sale;
    env.sim
        .update_sku(b.id, |s| s.price_sale = price + Decimal::ONE);
    vec![
        Difference {
            key: a.sku.as_str().into(),
            sku_id: a.id,
            field: Field::Quantity { stock_id: 1 },
            store: Some(Value::Qty(qty + 5)),
            erp: Value::Qty(qty),
        },
        Difference {
            key: b.sku.as_str().into(),
            sku_id: b.id,
            field: Field::PriceSale,
            store: Some(Value::Money(price + Decimal::ONE)),
            erp: Value::Money(price),
        },
    ]
}

fn sorted(mut d: Vec<Difference>) -> Vec<Difference> {
    d.sort_by_key(|x| (x.sku_id, x.field.to_string()));
    d
}

fn differences_sheet(path: &PathBuf) -> Vec<Vec<String>> {
    let mut wb = calamine::open_workbook_auto(path).expect("the report opens");
    let range = wb
        .worksheet_range("Differences")
        .expect("a Differences sheet");
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

async fn finds_exactly_the_planted_differences(env: Env) {
    let planted = plant(&env);
    env.sim.clear_requests();
    let (code, r) = audit(&env).await;
    assert_eq!(code, 0, "{}", r.message);
    assert_eq!(sorted(r.differences.clone()), sorted(planted.clone()));
    assert_eq!(
        env.non_reads(),
        Vec::<String>::new(),
        "an audit writes nothing"
    );
    assert_eq!(env.sim.count("GET", "/catalog/skus/export"), 1);
    assert_eq!(env.sim.count("GET", "/catalog/stocks/export-skus"), 2);
    // The SKU export it read also refreshed the header imports are checked against.
    assert!(
        kept_header(&env),
        "the audit's SKU export keeps the template header"
    );
    // What a sync would send to put them right: one stocks/sync and one price write.
    let planned: u64 = r.plan.iter().map(|(_, n)| n).sum();
    assert_eq!(planned, 2, "{:?}", r.plan);
    assert!(
        r.plan
            .iter()
            .any(|(route, n)| route.contains("stocks/sync") && *n == 1),
        "{:?}",
        r.plan
    );
    assert!(
        r.message.contains("2 differences in 2 of 60 matched SKUs")
            && r.message.contains("a sync would send 2 requests"),
        "{}",
        r.message
    );
    let sheet = differences_sheet(r.report_path.as_ref().expect("a report"));
    assert_eq!(
        sheet[0],
        [
            "key",
            "product",
            "variation",
            "sku id",
            "field",
            "store",
            "erp"
        ]
    );
    assert_eq!(sheet.len(), 3, "{sheet:?}");
    let price_row = sheet
        .iter()
        .find(|row| row[4] == "price_sale")
        .expect("the price difference");
    assert_eq!(price_row[0], planted[1].key.as_ref());
    assert!(
        price_row[1].starts_with("Produto "),
        "the product name: {price_row:?}"
    );
    // Money is a number cell now: compared as a number.
    let store: Decimal = price_row[5].parse().unwrap();
    assert_eq!(store, planted[1].price_store());
}

trait PriceStore {
    fn price_store(&self) -> Decimal;
}

impl PriceStore for Difference {
    fn price_store(&self) -> Decimal {
        match self.store {
            Some(Value::Money(m)) => m,
            _ => panic!("not a price"),
        }
    }
}

#[tokio::test]
async fn xlsx_exports_linked_by_redirect_url_show_exactly_the_planted_differences() {
    let env = audit_env(FileFormat::Xlsx, |_| {}).await;
    finds_exactly_the_planted_differences(env).await;
}

#[tokio::test]
async fn xls_exports_linked_only_by_notifications_show_exactly_the_planted_differences() {
    let env = audit_env(FileFormat::Xls, |s| {
        s.lying_extension = true;
        s.column_seed = 99;
        s.notification_lag = Duration::from_millis(100);
    })
    .await;
    env.sim.set_faults(Faults {
        queue_links_only_in_notifications: true,
        ..Faults::default()
    });
    finds_exactly_the_planted_differences(env).await;
}

#[tokio::test]
async fn fail_on_differences_exits_4_only_when_there_are_differences() {
    let mut env = audit_env(FileFormat::Xlsx, |_| {}).await;
    env.job_extra.push_str("fail_on_differences = true\n");
    let (code, r) = audit(&env).await;
    assert_eq!(code, 0, "{}", r.message);
    assert!(r.differences.is_empty(), "{:?}", r.differences);
    assert!(r.message.contains("matches the ERP"), "{}", r.message);
    assert!(r.plan.is_empty(), "{:?}", r.plan);

    plant(&env);
    let (code, r) = audit(&env).await;
    assert_eq!(code, 4, "{}", r.message);
    assert_eq!(r.differences.len(), 2);
    assert!(env.non_reads().is_empty(), "{:?}", env.non_reads());
}

#[tokio::test]
async fn an_export_queue_that_never_finishes_fails_the_audit_after_queue_timeout() {
    let mut env = audit_env(FileFormat::Xlsx, |_| {}).await;
    env.job_extra = "queue_timeout = \"1s\"\n".into();
    env.sim.set_faults(Faults {
        queue_never_finishes: true,
        ..Faults::default()
    });
    let (code, r) = audit(&env).await;
    assert_eq!(code, 3, "{}", r.message);
    assert!(
        r.message.contains("the stock export of stock 1")
            && r.message.contains("has not finished")
            && r.message.contains("queue "),
        "{}",
        r.message
    );
    assert!(r.differences.is_empty());
    assert!(env.non_reads().is_empty(), "{:?}", env.non_reads());
}

#[tokio::test]
async fn reserve_and_markup_apply_as_in_a_sync() {
    let mut env = audit_env(FileFormat::Xlsx, |_| {}).await;
    env.mapping = AUDIT_MAPPING
        .replace("min_quantity = 0", "min_quantity = 0\nreserve = 2")
        .replace(
            "price_sale = \"Preço\"",
            "price_sale = \"Preço\"\nmarkup = 1.1",
        );
    // The store sells everything at 11.00; the ERP says 10,00 before a 10 % markup, and holds 2
    // more of each than the store shows (the reserve). One SKU's ERP price is 20,00: 22.00.
    let catalog = env.sim.catalog();
    let odd = catalog.products[2].skus[0].clone();
    let mut feed = String::from("Código;Saldo Loja;Saldo CD;Preço\n");
    for p in &catalog.products {
        for sku in &p.skus {
            env.sim.update_sku(sku.id, |s| {
                s.price_sale = Decimal::new(1100, 2);
                s.price_discount = Decimal::new(1100, 2);
            });
            let q = |id: u64| {
                sku.stocks
                    .iter()
                    .find(|r| r.stock_id == id)
                    .unwrap()
                    .quantity
            };
            let raw = if sku.id == odd.id { "20,00" } else { "10,00" };
            feed.push_str(&format!("{};{};{};{raw}\n", sku.sku, q(1) + 2, q(2) + 2));
        }
    }
    env.write_feed("estoque-2.csv", &feed);
    let (code, r) = audit(&env).await;
    assert_eq!(code, 0, "{}", r.message);
    assert_eq!(
        r.differences,
        vec![Difference {
            key: odd.sku.as_str().into(),
            sku_id: odd.id,
            field: Field::PriceSale,
            store: Some(Value::Money(Decimal::new(1100, 2))),
            erp: Value::Money(Decimal::new(2200, 2)),
        }]
    );
}

#[test]
fn check_accepts_an_audit_job_and_refuses_its_key_on_other_kinds() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut env = rt.block_on(audit_env(FileFormat::Xlsx, |_| {}));
    env.job_extra = "fail_on_differences = true\n".into();
    let out = env.run_binary(&["check"]);
    assert_exit(&out, 0);
    env.kind = "stock".into();
    let out = env.run_binary(&["check"]);
    assert_exit(&out, 2);
    assert!(
        output_text(&out).contains("`fail_on_differences` is only for audit jobs"),
        "{}",
        output_text(&out)
    );
}

/// A stock job on a store above `index_export_above`: its first index comes from the SKU export.
async fn big_store_env() -> (Env, Catalog) {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.sim.set_queue_settings(QueueSettings {
        queue_secs: Duration::from_millis(150),
        ..QueueSettings::default()
    });
    env.job_extra = "queue_timeout = \"20s\"\n".into();
    env.write_feed(
        "estoque-1.csv",
        &feed_for(&catalog, |_, id| ((id % 7) as i64, 3)),
    );
    (env, catalog)
}

/// `GET /catalog/skus` listing requests (pages, and the one-SKU probe of the store's size).
fn sku_listings(env: &Env) -> usize {
    env.sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/catalog/skus"))
        .count()
}

#[tokio::test]
async fn a_big_store_is_indexed_through_the_sku_export_and_refreshed_through_the_api() {
    let (env, catalog) = big_store_env().await;
    let opened = open(&env, "index_export_above = 10");
    let (code, r) = opened.run(&RunOptions::default()).await;
    assert_eq!(code, 0, "{}", r[0].message);
    assert_eq!(env.sim.count("GET", "/catalog/skus/export"), 1);
    assert_eq!(
        sku_listings(&env),
        1,
        "only the probe of the store's size, no paging"
    );
    assert_stock(&env, &catalog, |_, id| ((id % 7) as i64, 3));

    // The next run refreshes incrementally, through the API, without a second export.
    env.sim.clear_requests();
    env.write_feed(
        "estoque-2.csv",
        &feed_for(&catalog, |_, id| ((id % 5) as i64, 3)),
    );
    let (code, r) = opened.run(&RunOptions::default()).await;
    assert_eq!(code, 0, "{}", r[0].message);
    assert_eq!(env.sim.count("GET", "/catalog/skus/export"), 0);
    assert_eq!(sku_listings(&env), 1, "one incremental page");
    assert_stock(&env, &catalog, |_, id| ((id % 5) as i64, 3));
    drop(opened);
    assert!(
        kept_header(&env),
        "the index's SKU export keeps the template header"
    );
}

/// Whether the state store holds the SKU export's header.
fn kept_header(env: &Env) -> bool {
    kept_sku_header(env).is_some_and(|h| !h.columns.is_empty())
}

#[tokio::test]
async fn a_store_below_the_threshold_pages_as_before() {
    let (env, catalog) = big_store_env().await;
    let (code, r) = open(&env, "index_export_above = 1000")
        .run(&RunOptions::default())
        .await;
    assert_eq!(code, 0, "{}", r[0].message);
    assert_eq!(env.sim.count("GET", "/catalog/skus/export"), 0);
    assert_stock(&env, &catalog, |_, id| ((id % 7) as i64, 3));
}

#[tokio::test]
async fn an_export_that_cannot_be_had_falls_back_to_paging() {
    let (mut env, catalog) = big_store_env().await;
    env.job_extra = "queue_timeout = \"1s\"\n".into();
    env.sim.set_faults(Faults {
        queue_never_finishes: true,
        ..Faults::default()
    });
    let (code, r) = open(&env, "index_export_above = 10")
        .run(&RunOptions::default())
        .await;
    assert_eq!(code, 0, "{}", r[0].message);
    assert_eq!(env.sim.count("GET", "/catalog/skus/export"), 1);
    assert!(sku_listings(&env) >= 2, "the probe, then the pages");
    assert_stock(&env, &catalog, |_, id| ((id % 7) as i64, 3));
}
