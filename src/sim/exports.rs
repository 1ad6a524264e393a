//! Spreadsheet exports: `GET /catalog/skus/export` and `GET /catalog/stocks/export-skus?stock_id=N`
//! answer `{queue_id, total, resource_link}` and start a queue; when it finishes, the file is
//! written with the store's values at that moment (the assumed layouts: the SKU template's 12
//! columns in an order the store decides, or one stock's rows), hosted under `/files/…`, and
//! linked from the queue's `redirect_url` and a notification for the user who asked.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::json;

use super::queues::{FileFormat, Notification, SheetCell, Work, random_hex, uuid};
use super::routes::{Ctx, Reply};
use super::store::State;

/// The SKU template's columns, in the assumed canonical spelling.
pub(super) const SKU_COLUMNS: [&str; 12] = crate::export_file::columns::SKU_TEMPLATE;

/// The SKU export's header row: the template's columns in the store's (seeded) order.
pub(super) fn sku_header(seed: u64) -> Vec<&'static str> {
    let mut cols = SKU_COLUMNS.to_vec();
    cols.shuffle(&mut StdRng::seed_from_u64(seed));
    cols
}

fn num(d: Decimal) -> SheetCell {
    SheetCell::Number(d.round_dp(2).to_f64().unwrap_or(0.0))
}

/// One row per SKU (by id), in the header's order.
fn sku_rows(st: &State, header: &[&str]) -> Vec<Vec<SheetCell>> {
    let mut skus: Vec<_> = st
        .catalog
        .products
        .iter()
        .flat_map(|p| p.skus.iter().map(move |s| (p, s)))
        .collect();
    skus.sort_by_key(|(_, s)| s.id);
    skus.into_iter()
        .map(|(p, s)| {
            // Dimensions are not modelled by the store: fixed, plausible values.
            let variation = s
                .title
                .rsplit(' ')
                .next()
                .map(|v| format!("Tamanho: {v}"))
                .unwrap_or_default();
            header
                .iter()
                .map(|col| match *col {
                    "id" => SheetCell::Text(s.id.to_string()),
                    "id_produto" => SheetCell::Text(s.product_id.to_string()),
                    "sku" => SheetCell::Text(s.sku.clone()),
                    "nome_produto" => SheetCell::Text(p.name.clone()),
                    "valores_de_variacoes" => SheetCell::Text(variation.clone()),
                    "preço_custo" => num(s.price_cost),
                    "preço_venda" => num(s.price_sale),
                    "preço_promocional" => num(s.price_discount),
                    "peso_em_kg" => SheetCell::Number(0.3),
                    "altura_em_cm" => SheetCell::Number(10.0),
                    "largura_em_cm" => SheetCell::Number(20.0),
                    "comprimento_em_cm" => SheetCell::Number(30.0),
                    _ => SheetCell::Empty,
                })
                .collect()
        })
        .collect()
}

/// Writes one sheet: the header row, then `rows`.
pub(super) fn write_sheet(
    format: FileFormat,
    header: &[&str],
    rows: &[Vec<SheetCell>],
) -> Result<Vec<u8>, String> {
    match format {
        FileFormat::Xlsx => write_xlsx(header, rows).map_err(|e| e.to_string()),
        FileFormat::Xls => write_biff8(header, rows),
    }
}

/// A genuine BIFF8 file through the crate's own writer (which reads every file back).
fn write_biff8(header: &[&str], rows: &[Vec<SheetCell>]) -> Result<Vec<u8>, String> {
    use crate::xls::XlsCell;
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let rows: Vec<Vec<XlsCell>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    SheetCell::Text(t) => XlsCell::Text(t.clone()),
                    // Through the f64's shortest text: 12.34 stays 12.34.
                    SheetCell::Number(n) => n
                        .to_string()
                        .parse::<Decimal>()
                        .map(XlsCell::Number)
                        .unwrap_or(XlsCell::Empty),
                    SheetCell::Empty => XlsCell::Empty,
                })
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("export.xls");
    crate::xls::write_xls(&path, "Planilha1", &header, &rows).map_err(|e| e.to_string())?;
    std::fs::read(&path).map_err(|e| e.to_string())
}

fn write_xlsx(
    header: &[&str],
    rows: &[Vec<SheetCell>],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, name) in header.iter().enumerate() {
        ws.write_string(0, c as u16, *name)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, cell) in row.iter().enumerate() {
            match cell {
                SheetCell::Text(s) => {
                    ws.write_string(r, c as u16, s)?;
                }
                SheetCell::Number(n) => {
                    ws.write_number(r, c as u16, *n)?;
                }
                SheetCell::Empty => {}
            }
        }
    }
    wb.save_to_buffer()
}

fn start(cx: &mut Ctx, title: &str, total: u64, work: Work) -> Reply {
    let owner = cx.caller_token();
    let now = cx.st.now();
    let id = cx.st.queues.create(title, &owner, total, now, work);
    Reply::new(
        200,
        json!({
            "queue_id": id,
            "total": total,
            "resource_link": format!("{}/{}/queues/{id}", cx.shared.base_url(), cx.shared.alias),
        }),
    )
}

/// `GET /catalog/skus/export`.
pub(super) fn sku_export(cx: &mut Ctx) -> Reply {
    let total = cx.st.skus().count() as u64;
    start(cx, "Exportando SKUs", total, Work::SkuExport)
}

/// `GET /catalog/stocks/export-skus?stock_id=N` (required integer, an existing stock).
pub(super) fn stock_export(cx: &mut Ctx) -> Reply {
    let q = cx.query();
    let invalid = |msg: &str| {
        Reply::invalid(BTreeMap::from([(
            "stock_id".to_owned(),
            vec![msg.to_owned()],
        )]))
    };
    let Some(raw) = q.get("stock_id") else {
        return invalid("The stock id field is required.");
    };
    let Some(stock_id) = raw
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|id| cx.st.catalog.stocks.iter().any(|s| s.id == *id))
    else {
        return invalid("The selected stock id is invalid.");
    };
    let total = cx
        .st
        .skus()
        .filter(|s| s.stocks.iter().any(|r| r.stock_id == stock_id))
        .count() as u64;
    start(
        cx,
        "Exportando SKUs do estoque",
        total,
        Work::StockExport(stock_id),
    )
}

/// The file's name, as Yampi's look: `<alias>-skus-<dd_mm_YYYY_HH_MM_SS>-<5 random>.<ext>`.
fn file_name(st: &State, alias: &str, what: &str) -> String {
    let s = &st.queues.settings;
    let ext = if s.lying_extension {
        s.format.other()
    } else {
        s.format
    }
    .extension();
    let stamp = st.now().format("%d_%m_%Y_%H_%M_%S");
    format!("{alias}-{what}-{stamp}-{}.{ext}", &random_hex(3)[..5])
}

/// Hosts the finished export and links it (redirect_url and a notification).
fn publish(st: &mut State, queue_id: u64, what: &str, header: &[&str], rows: &[Vec<SheetCell>]) {
    let alias = st.queues.alias.clone();
    let name = file_name(st, &alias, what);
    let bytes = match write_sheet(st.queues.settings.format, header, rows) {
        Ok(b) => b,
        Err(e) => {
            st.queues
                .log(queue_id, false, 0, format!("Erro ao gerar a planilha: {e}"));
            return;
        }
    };
    let path = st.queues.host(&name, bytes);
    let link = format!("{}{path}", st.queues.origin);
    let lag = st.queues.settings.notification_lag;
    let owner = match st.queues.queue_mut(queue_id) {
        Some(q) => {
            q.redirect_url = Some(link.clone());
            q.owner.clone()
        }
        None => return,
    };
    st.queues.notifications.push(Notification {
        id: uuid(),
        owner,
        queue_id,
        link,
        visible_at: Instant::now() + lag,
    });
}

pub(super) fn finish_sku_export(st: &mut State, queue_id: u64) {
    let header = sku_header(st.queues.settings.column_seed);
    let rows = sku_rows(st, &header);
    publish(st, queue_id, "skus", &header, &rows);
}

pub(super) fn finish_stock_export(st: &mut State, queue_id: u64, stock_id: u64) {
    let header: [&str; 4] = if st.queues.settings.stock_column_variant {
        ["sku_id", "sku", "estoque", "estoque_minimo"]
    } else {
        ["id_sku", "sku", "quantidade", "quantidade_minima"]
    };
    let mut skus: Vec<_> = st.skus().collect();
    skus.sort_by_key(|s| s.id);
    let rows: Vec<Vec<SheetCell>> = skus
        .into_iter()
        .filter_map(|s| {
            let row = s.stocks.iter().find(|r| r.stock_id == stock_id)?;
            Some(vec![
                SheetCell::Text(s.id.to_string()),
                SheetCell::Text(s.sku.clone()),
                SheetCell::Number(row.quantity as f64),
                SheetCell::Number(row.min_quantity as f64),
            ])
        })
        .collect();
    publish(st, queue_id, "estoque", &header, &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_order_is_the_stores_and_stable() {
        let a = sku_header(7);
        assert_eq!(a, sku_header(7));
        assert_ne!(a, SKU_COLUMNS.to_vec(), "not the canonical order");
        let mut sorted = a.clone();
        sorted.sort();
        let mut canon = SKU_COLUMNS.to_vec();
        canon.sort();
        assert_eq!(sorted, canon, "the same 12 names");
    }

    #[test]
    fn an_xlsx_export_reads_back_with_calamine() {
        use calamine::Reader;
        let header = ["id", "preço_venda"];
        let rows = vec![vec![SheetCell::Text("5".into()), SheetCell::Number(12.5)]];
        let bytes = write_sheet(FileFormat::Xlsx, &header, &rows).unwrap();
        let mut wb = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let range = wb.worksheet_range_at(0).unwrap().unwrap();
        let got: Vec<Vec<String>> = range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        assert_eq!(got, [["id", "preço_venda"], ["5", "12.5"]]);
    }

    #[test]
    fn an_xls_export_is_biff8_and_reads_back() {
        use calamine::Reader;
        let header = ["id", "preço_custo"];
        let rows = vec![vec![SheetCell::Text("5".into()), SheetCell::Number(12.34)]];
        let bytes = write_sheet(FileFormat::Xls, &header, &rows).unwrap();
        assert!(bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]));
        let mut wb = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let range = wb.worksheet_range_at(0).unwrap().unwrap();
        let got: Vec<Vec<String>> = range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        assert_eq!(got, [["id", "preço_custo"], ["5", "12.34"]]);
    }
}
