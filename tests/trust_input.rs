//! Input hardening: numbers read in the mapping's decimal style and bounded, files waited for
//! until they are written completely, spreadsheet bombs refused within bounded memory, and
//! reports written whatever the size of the messages in them.

mod support;

use std::time::Duration;

use support::*;

const PRICE_MAPPING: &str = r#"
match = "sku"
key = "Código"
decimal = "comma"

[price]
price_sale = "Preço"
max_change_pct = 100000
"#;

fn stock_feed_with(catalog: &yampi_sync::sim::Catalog, first: &str) -> String {
    let mut s = String::from("Código;Saldo Loja;Saldo CD\n");
    for (i, (_, _, code)) in all_skus(catalog).iter().enumerate() {
        let a = if i == 0 {
            first.to_string()
        } else {
            "5".into()
        };
        s.push_str(&format!("{code};{a};1\n"));
    }
    s
}

// ---- point 11: a decimal point in the wrong style -------------------------------------------

#[tokio::test]
async fn a_decimal_point_under_comma_style_rejects_the_row_instead_of_a_tenfold_stock() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    for bad in ["12.0", "1.5", "12.50", "1.2.3"] {
        let env = Env::start(catalog.clone()).await;
        env.write_feed("estoque-1.csv", &stock_feed_with(&catalog, bad));
        let (code, report) = env.run_default().await;
        assert_eq!(code, 4, "{bad}: {}", report.summary_line());
        assert_eq!(report.rejected.len(), 1, "{bad}: {:?}", report.rejected);
        let r = &report.rejected[0];
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (2, "Saldo Loja", bad)
        );
        assert!(r.reason.contains("decimal = \"comma\""), "{}", r.reason);
        // The row is not synced at all; its SKU keeps the store's value.
        assert_eq!(
            env.sim.stock(skus[0].1, 1),
            catalog.products[0].skus[0]
                .stocks
                .iter()
                .find(|s| s.stock_id == 1)
                .map(|s| s.quantity)
        );
        assert_eq!(env.sim.stock(skus[1].1, 1), Some(5));
    }
}

#[tokio::test]
async fn thousands_groups_of_three_still_read_under_both_styles() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let env = Env::start(catalog.clone()).await;
    env.write_feed("estoque-1.csv", &stock_feed_with(&catalog, "1.234"));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.stock(skus[0].1, 1), Some(1234));

    let mut env = Env::start(catalog.clone()).await;
    env.mapping = STOCK_MAPPING.replace("decimal = \"comma\"", "decimal = \"dot\"");
    let feed = stock_feed_with(&catalog, "12,0");
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 4, "{}", report.summary_line());
    assert!(
        report.rejected[0].reason.contains("decimal = \"dot\""),
        "{:?}",
        report.rejected
    );
}

#[tokio::test]
async fn a_price_with_a_stray_decimal_point_is_refused_not_multiplied() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let mut env = Env::start(catalog.clone()).await;
    env.kind = "price".into();
    env.mapping = PRICE_MAPPING.into();
    let mut feed = String::from("Código;Preço\n");
    for (i, (_, _, code)) in skus.iter().enumerate() {
        let p = if i == 0 { "12.50" } else { "10,00" };
        feed.push_str(&format!("{code};{p}\n"));
    }
    let before = env.sim.sku_prices(skus[0].1).unwrap();
    env.write_feed("estoque-1.csv", &feed);
    let (code, report) = env.run_default().await;
    assert_eq!(code, 4, "{}", report.summary_line());
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    assert!(report.rejected[0].reason.contains("decimal = \"comma\""));
    assert_eq!(env.sim.sku_prices(skus[0].1).unwrap(), before);
}

// ---- point 12: unbounded numbers ------------------------------------------------------------

fn xlsx_stock_feed(env: &Env, name: &str, first: f64, min_first: f64) {
    let skus = all_skus(&env.sim.catalog());
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in ["Código", "Saldo Loja", "Saldo CD", "Minimo"]
        .iter()
        .enumerate()
    {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (i, (_, _, code)) in skus.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, code).unwrap();
        ws.write_number(r, 1, if i == 0 { first } else { 5.0 })
            .unwrap();
        ws.write_number(r, 2, 1.0).unwrap();
        ws.write_number(r, 3, if i == 1 { min_first } else { 0.0 })
            .unwrap();
    }
    wb.save(env.path(&format!("erp/{name}"))).unwrap();
}

#[tokio::test]
async fn a_huge_spreadsheet_quantity_is_refused_never_saturated() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    for (q, min_q) in [(9.3e18, 0.0), (1e9, 0.0), (1_000_001.0, 0.0), (3.0, 2e6)] {
        let mut env = Env::start(catalog.clone()).await;
        env.source = r#"{ path = "erp/estoque-*.xlsx", settle_ms = 0 }"#.into();
        env.mapping = STOCK_MAPPING.replace("min_quantity = 0", "min_quantity = \"Minimo\"");
        xlsx_stock_feed(&env, "estoque-1.xlsx", q, min_q);
        let (code, report) = env.run_default().await;
        assert_eq!(code, 4, "{q}/{min_q}: {}", report.summary_line());
        assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
        assert!(
            report.rejected[0].reason.contains("max_quantity (1000000)"),
            "{:?}",
            report.rejected
        );
        for (_, id, _) in &skus {
            for stock in [1, 2] {
                let v = env.sim.stock(*id, stock).unwrap_or(0);
                assert!(v <= 1_000_000, "SKU {id} got {v}");
            }
        }
        assert_eq!(env.sim.stock(skus[2].1, 1), Some(5));
    }
}

#[tokio::test]
async fn max_quantity_is_a_job_key_and_check_validates_it() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let mut env = Env::start(catalog.clone()).await;
    env.job_extra = "max_quantity = 2000000".into();
    env.write_feed("estoque-1.csv", &stock_feed_with(&catalog, "1.500.000"));
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.stock(skus[0].1, 1), Some(1_500_000));

    for bad in ["0", "-5", "10000000000000"] {
        env.job_extra = format!("max_quantity = {bad}");
        let out = env.run_binary(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stderr.contains("max_quantity") || stdout.contains("max_quantity"),
            "{stderr}{stdout}"
        );
    }
    env.job_extra = "max_quantity = 10".into();
    env.mapping = STOCK_MAPPING.replace("min_quantity = 0", "min_quantity = 50");
    let out = env.run_binary(&["check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn a_price_cell_of_1e30_rejects_the_row() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let mut env = Env::start(catalog.clone()).await;
    env.kind = "price".into();
    env.mapping = PRICE_MAPPING.into();
    env.source = r#"{ path = "erp/precos-*.xlsx", settle_ms = 0 }"#.into();
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "Código").unwrap();
    ws.write_string(0, 1, "Preço").unwrap();
    for (i, (_, _, code)) in skus.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, code).unwrap();
        ws.write_number(r, 1, if i == 0 { 1e30 } else { 10.0 })
            .unwrap();
    }
    wb.save(env.path("erp/precos-1.xlsx")).unwrap();
    let before = env.sim.sku_prices(skus[0].1).unwrap();
    let (code, report) = env.run_default().await;
    assert_eq!(code, 4, "{}", report.summary_line());
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    assert!(
        report.rejected[0].reason.contains("price above"),
        "{:?}",
        report.rejected
    );
    assert_eq!(env.sim.sku_prices(skus[0].1).unwrap(), before);
}

// ---- point 10: files written just before the run ---------------------------------------------

/// Appends `rows` to `path` one every `every`, on a thread, until done or `stop` is set.
fn slow_writer(
    path: std::path::PathBuf,
    rows: Vec<String>,
    every: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use std::io::Write;
    std::thread::spawn(move || {
        let mut f = std::fs::File::options().append(true).open(&path).unwrap();
        for row in rows.iter().cycle() {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            f.write_all(row.as_bytes()).unwrap();
            f.flush().unwrap();
            std::thread::sleep(every);
        }
    })
}

#[tokio::test]
async fn a_file_written_just_before_the_run_is_read_once_it_settles() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let mut env = Env::start(catalog.clone()).await;
    env.source = r#"{ path = "erp/estoque-*.csv", settle_ms = 300 }"#.into();
    // Written "now", as `erp-export && yampi-sync --run-once` does.
    std::fs::write(
        env.path("erp/estoque-1.csv"),
        stock_feed_with(&catalog, "9"),
    )
    .unwrap();
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.stock(skus[0].1, 1), Some(9));
}

#[tokio::test]
async fn a_file_still_being_written_is_waited_for_and_read_whole() {
    let catalog = small_catalog();
    let skus = all_skus(&catalog);
    let mut env = Env::start(catalog.clone()).await;
    env.source = r#"{ path = "erp/estoque-*.csv", settle_ms = 800 }"#.into();
    let path = env.path("erp/estoque-1.csv");
    std::fs::write(&path, "Código;Saldo Loja;Saldo CD\n").unwrap();
    let rows: Vec<String> = skus
        .iter()
        .map(|(_, id, code)| format!("{code};{};1\n", id % 13))
        .collect();
    let n = rows.len();
    // One row every 20 ms: the file keeps changing well within each 800 ms look.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::File::options().append(true).open(&path).unwrap();
            for row in rows {
                f.write_all(row.as_bytes()).unwrap();
                f.flush().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let (code, report) = env.run_default().await;
    writer.join().unwrap();
    assert!(stop.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(report.rows_read, n as u64, "every row, none half-written");
    for (_, id, _) in &skus {
        assert_eq!(env.sim.stock(*id, 1), Some((id % 13) as i64));
    }
}

#[tokio::test]
async fn a_file_that_never_holds_still_fails_the_run_with_one_sentence() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.source = r#"{ path = "erp/estoque-*.csv", settle_ms = 200 }"#.into();
    let path = env.path("erp/estoque-1.csv");
    std::fs::write(&path, stock_feed_with(&catalog, "3")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let row = format!("{};3;1\n", all_skus(&catalog)[0].2);
    let writer = slow_writer(path, vec![row], Duration::from_millis(10), stop.clone());
    let (code, report) = env.run_default().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(code, 2, "{}", report.summary_line());
    assert!(
        report.message.contains("is still being written") && report.message.contains("200 ms"),
        "{}",
        report.message
    );
    assert_eq!(env.writes(), 0, "nothing was sent");
}
