//! ERP files of every supported format, read through the source module and synced end to end.

mod support;

use std::path::Path;

use support::*;
use yampi_sync::mapping::{DecimalStyle, parse_quantity};
use yampi_sync::source::{self, Cell};

/// (row, key, store quantity, warehouse quantity)
type Row = (u64, String, Result<i64, String>, Result<i64, String>);

fn read(path: &Path, sheet: Option<&str>) -> Vec<Row> {
    let mut src = source::open(path, None, sheet).unwrap();
    let idx = src.resolve(&["codigo", "SALDO LOJA", "saldo cd"]).unwrap();
    let mut out = Vec::new();
    src.for_each_row(&idx, &mut |row, cells: &[Cell<'_>]| {
        let q = |c: &Cell<'_>| {
            parse_quantity(c, DecimalStyle::Comma, 1_000_000).map_err(|e| e.reason().to_string())
        };
        let key = match &cells[0] {
            Cell::Text(t) => t.to_string(),
            other => format!("{other:?}"),
        };
        out.push((row, key, q(&cells[1]), q(&cells[2])));
    })
    .unwrap();
    out
}

#[test]
fn xls_fixture_is_read_with_its_row_numbers() {
    let rows = read(Path::new("tests/fixtures/estoque.xls"), Some("Estoque"));
    assert_eq!(
        rows,
        vec![
            (3, "SKU-01000-1".into(), Ok(7), Ok(3)),
            (4, "SKU-01000-2".into(), Ok(0), Ok(12)),
            (6, "SKU-01001-1".into(), Ok(5), Ok(1200)),
        ]
    );
}

#[test]
fn ods_fixture_is_read_with_its_row_numbers() {
    let rows = read(Path::new("tests/fixtures/estoque.ods"), None);
    assert_eq!(
        rows,
        vec![
            (2, "SKU-01000-1".into(), Ok(7), Ok(3)),
            (3, "SKU-01000-2".into(), Ok(0), Ok(12)),
            (5, "SKU-01001-1".into(), Ok(5), Ok(1200)),
        ]
    );
}

#[tokio::test]
async fn an_xlsx_feed_syncs_end_to_end() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.source = r#"{ path = "erp/estoque-*.xlsx", sheet = "Saldos", settle_ms = 0 }"#.into();
    let path = env.path("erp/estoque-1.xlsx");
    let mut wb = rust_xlsxwriter::Workbook::new();
    wb.add_worksheet()
        .set_name("Capa")
        .unwrap()
        .write_string(0, 0, "Relatório")
        .unwrap();
    let ws = wb.add_worksheet().set_name("Saldos").unwrap();
    for (c, h) in ["CÓDIGO", "SALDO LOJA", "SALDO CD"].iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    let skus = all_skus(&catalog);
    for (i, (_, id, code)) in skus.iter().enumerate() {
        let r = i as u32 + 1;
        ws.write_string(r, 0, code).unwrap();
        ws.write_number(r, 1, (id % 10) as f64).unwrap();
        // Text cells use the mapping's decimal comma: "1.000" is a thousand.
        ws.write_string(
            r,
            2,
            if i == 0 {
                "1.000".to_string()
            } else {
                "2".to_string()
            },
        )
        .unwrap();
    }
    wb.save(&path).unwrap();
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    assert_eq!(env.sim.stock(skus[0].1, 2), Some(1000));
    for (_, id, _) in &skus {
        assert_eq!(env.sim.stock(*id, 1), Some((id % 10) as i64));
    }
}

#[tokio::test]
async fn a_windows_1252_csv_with_decimal_dot_mapping() {
    let catalog = small_catalog();
    let mut env = Env::start(catalog.clone()).await;
    env.mapping = STOCK_MAPPING.replace("decimal = \"comma\"", "decimal = \"dot\"");
    let skus = all_skus(&catalog);
    let mut text = String::from("CÓDIGO,DESCRIÇÃO,SALDO LOJA,SALDO CD\r\n");
    for (_, id, code) in &skus {
        text.push_str(&format!(
            "{code},\"Calça, azul\",\"1,{:03}\",4.0\r\n",
            id % 100
        ));
    }
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    let p = env.path("erp/estoque-1.csv");
    std::fs::write(&p, &bytes).unwrap();
    let (code, report) = env.run_default().await;
    assert_eq!(code, 0, "{}", report.summary_line());
    for (_, id, _) in &skus {
        assert_eq!(env.sim.stock(*id, 1), Some(1000 + (id % 100) as i64));
        assert_eq!(env.sim.stock(*id, 2), Some(4));
    }
}
