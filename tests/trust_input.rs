//! Input hardening: numbers read in the mapping's decimal style and bounded, files waited for
//! until they are written completely, spreadsheet bombs refused within bounded memory, and
//! reports written whatever the size of the messages in them.

mod support;

use std::time::Duration;

use support::prices::*;
use support::*;

/// Sale prices only, numbers in decimal comma, changes of any size.
fn price_only_mapping() -> String {
    price_mapping("comma", "price_sale = \"Preço\"\nmax_change_pct = 100000\n")
}

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
    let env = price_env(&catalog, &price_only_mapping()).await;
    let mut feed = String::from("Código;Preço\n");
    for (i, (_, _, code)) in skus.iter().enumerate() {
        // Above every store discount: a sale price below it would be refused on its own.
        let p = if i == 0 { "12.50" } else { "10000,00" };
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
        let text = output_text(&out);
        assert!(text.contains("max_quantity"), "{text}");
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
    let mut env = price_env(&catalog, &price_only_mapping()).await;
    env.source = r#"{ path = "erp/precos-*.xlsx", settle_ms = 0 }"#.into();
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "Código").unwrap();
    ws.write_string(0, 1, "Preço").unwrap();
    for (i, (_, _, code)) in skus.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, code).unwrap();
        ws.write_number(r, 1, if i == 0 { 1e30 } else { 10000.0 })
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

// ---- point 17: spreadsheet bombs ------------------------------------------------------------

use std::io::Write as _;
use std::path::Path;

use yampi_sync::source::{self, SourceError};

fn zip_file(path: &Path, parts: &[(&str, String)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    for (name, text) in parts {
        let opts =
            zip::write::SimpleFileOptions::default().compression_method(if *name == "mimetype" {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            });
        z.start_file(*name, opts).unwrap();
        z.write_all(text.as_bytes()).unwrap();
    }
    z.finish().unwrap();
}

/// A minimal XLSX whose one sheet "Estoque" has `sheet_data` as its `<sheetData>`.
fn xlsx_with(path: &Path, sheet_data: &str) {
    let ct = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
    let rels = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    let wb = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Estoque" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let wb_rels = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let sheet = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:XFD1048576"/><sheetData>{sheet_data}</sheetData></worksheet>"#
    );
    zip_file(
        path,
        &[
            ("[Content_Types].xml", ct.into()),
            ("_rels/.rels", rels.into()),
            ("xl/workbook.xml", wb.into()),
            ("xl/_rels/workbook.xml.rels", wb_rels.into()),
            ("xl/worksheets/sheet1.xml", sheet),
        ],
    );
}

fn inline(r: &str, text: &str) -> String {
    format!(r#"<c r="{r}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

/// A minimal ODS whose one table "Estoque" has `rows` as its rows.
fn ods_with(path: &Path, rows: &str) {
    let manifest = r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Estoque"><table:table-column table:number-columns-repeated="1024"/>{rows}</table:table></office:spreadsheet></office:body></office:document-content>"#
    );
    zip_file(
        path,
        &[
            (
                "mimetype",
                "application/vnd.oasis.opendocument.spreadsheet".into(),
            ),
            ("META-INF/manifest.xml", manifest.into()),
            ("content.xml", content),
        ],
    );
}

fn ods_row(repeat: u64, cells: &[&str]) -> String {
    let cells: String = cells
        .iter()
        .map(|c| {
            format!(r#"<table:table-cell office:value-type="string"><text:p>{c}</text:p></table:table-cell>"#)
        })
        .collect();
    format!(r#"<table:table-row table:number-rows-repeated="{repeat}">{cells}</table:table-row>"#)
}

/// Rows of styled but empty cells between data rows: no content, so no cells to count.
const STYLED_EMPTY_ROWS: &str = r#"<table:table-row table:number-rows-repeated="3"><table:table-cell table:style-name="ce1" table:number-columns-repeated="16000"></table:table-cell></table:table-row>"#;

/// LibreOffice pads every sheet to its end with empty repeats; those are not content.
const ODS_PADDING: &str = r#"<table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>"#;

fn assert_too_large(r: Result<Vec<String>, SourceError>, path: &Path, cap: &str) {
    match r {
        Err(e @ SourceError::SheetTooLarge { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("\"Estoque\""), "names the sheet: {msg}");
            assert!(msg.contains(cap), "names the cap {cap}: {msg}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_xlsx_cell_far_past_the_last_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok.xlsx");
    xlsx_with(
        &ok,
        &format!(
            r#"<row r="1">{}{}</row>"#,
            inline("A1", "Código"),
            inline("B1", "Saldo")
        ),
    );
    assert_eq!(
        source::headers(&ok, None, None).unwrap(),
        ["Código", "Saldo"]
    );

    let bomb = dir.path().join("bomb.xlsx");
    xlsx_with(
        &bomb,
        &format!(
            r#"<row r="1">{}{}</row>"#,
            inline("A1", "Código"),
            inline("PUQCYS1", "Saldo")
        ),
    );
    assert!(std::fs::metadata(&bomb).unwrap().len() < 4096);
    assert_too_large(source::headers(&bomb, None, None), &bomb, "16384");

    // A data row far down, past Excel's last row, is refused while streaming the rows.
    let deep = dir.path().join("deep.xlsx");
    xlsx_with(
        &deep,
        &format!(
            r#"<row r="1">{}{}</row><row r="2">{}</row><row r="99999999">{}</row>"#,
            inline("A1", "Código"),
            inline("B1", "Saldo"),
            inline("A2", "SKU-1"),
            inline("A99999999", "X")
        ),
    );
    let mut src = source::open(&deep, None, None).unwrap();
    let idx = src.resolve(&["Código", "Saldo"]).unwrap();
    let err = src.for_each_row(&idx, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, SourceError::SheetTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("1048576"), "{err}");
}

#[test]
fn an_ods_row_repeated_a_million_times_is_refused_before_it_is_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let header = ods_row(1, &["Código", "Saldo Loja", "Saldo CD"]);
    let ok = dir.path().join("ok.ods");
    ods_with(
        &ok,
        &format!(
            "{header}{}{STYLED_EMPTY_ROWS}{}{ODS_PADDING}",
            ods_row(3, &["SKU-1", "1", "2"]),
            ods_row(1, &["SKU-2", "3", "4"])
        ),
    );
    let mut src = source::open(&ok, None, None).unwrap();
    let idx = src.resolve(&["codigo", "saldo loja"]).unwrap();
    let mut rows = 0;
    src.for_each_row(&idx, &mut |_, _| rows += 1).unwrap();
    assert_eq!(
        rows, 4,
        "repeated rows are rows; styled empty cells and padding are not"
    );

    let bomb = dir.path().join("bomb.ods");
    ods_with(
        &bomb,
        &format!("{header}{}", ods_row(1_000_000, &["SKU-1"; 60])),
    );
    assert!(std::fs::metadata(&bomb).unwrap().len() < 4096);
    assert_too_large(source::headers(&bomb, None, None), &bomb, "5000000");

    let wide = dir.path().join("wide.ods");
    let wide_row = r#"<table:table-row><table:table-cell table:number-columns-repeated="20000" office:value-type="float" office:value="1"><text:p>1</text:p></table:table-cell></table:table-row>"#;
    ods_with(&wide, &format!("{header}{wide_row}"));
    assert_too_large(source::headers(&wide, None, None), &wide, "16384");
}

/// The XLS fixture with `patch` applied to its bytes.
fn patched_xls(dir: &Path, name: &str, patch: impl Fn(&mut Vec<u8>)) -> std::path::PathBuf {
    let mut bytes = std::fs::read("tests/fixtures/estoque.xls").unwrap();
    patch(&mut bytes);
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    (0..hay.len().saturating_sub(needle.len()))
        .filter(|i| &hay[*i..*i + needle.len()] == needle)
        .collect()
}

#[test]
fn an_xls_cell_at_the_last_row_and_column_is_refused_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    // A cell (LABELSST record) of the "Estoque" sheet moved to (65535, 255).
    let far_cell = patched_xls(dir.path(), "cell.xls", |b| {
        let at = *find_all(b, &[0xFD, 0x00, 0x0A, 0x00]).last().unwrap() + 4;
        b[at..at + 4].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x00]);
    });
    assert_too_large(
        source::headers(&far_cell, None, Some("Estoque")),
        &far_cell,
        "5000000",
    );
    // The sheet's DIMENSIONS record declaring 65536 × 256.
    let declared = patched_xls(dir.path(), "dims.xls", |b| {
        let at = *find_all(b, &[0x00, 0x02, 0x0E, 0x00]).last().unwrap() + 4;
        b[at + 4..at + 8].copy_from_slice(&65_536u32.to_le_bytes());
        b[at + 10..at + 12].copy_from_slice(&256u16.to_le_bytes());
    });
    let err = source::headers(&declared, None, Some("Estoque")).unwrap_err();
    assert!(matches!(err, SourceError::SheetTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("declared dimensions"), "{err}");
    // The fixture itself still reads.
    let ok = patched_xls(dir.path(), "ok.xls", |_| {});
    assert!(source::headers(&ok, None, Some("Estoque")).is_ok());
}

/// `yampi-sync check` in a child limited to 1 GiB of address space: the old reads of these
/// files needed from 1 GB (XLS) to more than 8 GB (XLSX). A clean refusal within the limit is
/// the signal, not how long it took.
fn bounded_check(env: &Env) -> (Option<i32>, String) {
    let config = env.path("yampi-sync.toml");
    std::fs::write(&config, env.config_text(false)).unwrap();
    std::fs::write(env.path("stock.toml"), &env.mapping).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 1048576 && exec "$0" --config "$1" check"#)
        .arg(env!("CARGO_BIN_EXE_yampi-sync"))
        .arg(&config)
        .env("YS_TEST_TOKEN", TOKEN)
        .env("YS_TEST_SECRET", SECRET)
        .env("MALLOC_ARENA_MAX", "2")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (out.status.code(), output_text(&out))
}

#[tokio::test]
async fn check_refuses_each_spreadsheet_bomb_with_exit_2_within_bounded_memory() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog).await;

    env.source = r#"{ path = "erp/estoque-*.xlsx", settle_ms = 0 }"#.into();
    xlsx_with(
        &env.path("erp/estoque-1.xlsx"),
        &format!(
            r#"<row r="1">{}{}</row>"#,
            inline("A1", "Código"),
            inline("PUQCYS1", "Saldo Loja")
        ),
    );
    let (code, out) = bounded_check(&env);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("estoque-1.xlsx is refused: sheet \"Estoque\""),
        "{out}"
    );
    assert!(out.contains("16384-column limit"), "{out}");

    env.source = r#"{ path = "erp/estoque-*.ods", settle_ms = 0 }"#.into();
    ods_with(
        &env.path("erp/estoque-1.ods"),
        &format!(
            "{}{}",
            ods_row(1, &["Código", "Saldo Loja", "Saldo CD"]),
            ods_row(1_000_000, &["SKU-1"; 60])
        ),
    );
    let (code, out) = bounded_check(&env);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("estoque-1.ods is refused: sheet \"Estoque\""),
        "{out}"
    );
    assert!(out.contains("5000000"), "{out}");

    env.source = r#"{ path = "erp/estoque-*.xls", sheet = "Estoque", settle_ms = 0 }"#.into();
    patched_xls(&env.path("erp"), "estoque-1.xls", |b| {
        let at = *find_all(b, &[0xFD, 0x00, 0x0A, 0x00]).last().unwrap() + 4;
        b[at..at + 4].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0x00]);
    });
    let (code, out) = bounded_check(&env);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("estoque-1.xls is refused: sheet \"Estoque\""),
        "{out}"
    );
}

#[test]
fn an_ods_export_of_200k_rows_by_10_columns_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.ods");
    let cols: Vec<String> = (0..10).map(|i| format!("C{i}")).collect();
    let header: Vec<&str> = cols.iter().map(String::as_str).collect();
    let values = ["SKU-1", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    ods_with(
        &p,
        &format!(
            "{}{}{ODS_PADDING}",
            ods_row(1, &header),
            ods_row(200_000, &values)
        ),
    );
    let mut src = source::open(&p, None, None).unwrap();
    let idx = src.resolve(&["C0", "C9"]).unwrap();
    let mut last = 0;
    let n = src.for_each_row(&idx, &mut |row, _| last = row).unwrap();
    assert_eq!((n, last), (200_000, 200_001));
}
