//! The store's own spreadsheets, through Yampi's export queues: the SKU export (ids, prices, and
//! the header an import must repeat) and the stock export of one warehouse.
//!
//! An export is one request that starts a queue; the file exists once the queue finishes, its
//! link in the queue's `redirect_url` or in the user's notifications (src/shop/queue_watch.rs).
//! The file is read whatever its extension says (src/export_file.rs) and its columns are found
//! by name, never by position: the store decides their order (docs/yampi-api.md).

use std::collections::HashMap;
use std::time::Duration;

use rust_decimal::Decimal;

pub use crate::export_file::ExportAliases;
use crate::export_file::{self, ExportFileError, Table, columns};
use crate::shop::queue_watch;
use crate::shop::queues::QueueTicket;
use crate::shop::{ApiError, ShopClient};

/// How long an export may take, and how often its queue is read.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    pub timeout: Duration,
    pub poll_every: Duration,
}

/// Why an export could not be had or read: one sentence naming the export and its queue.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExportError(pub String);

impl From<ExportFileError> for ExportError {
    fn from(e: ExportFileError) -> Self {
        ExportError(e.to_string())
    }
}

/// The column positions of the SKU export's identifiers and prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkuColumns {
    pub sku_id: usize,
    pub product_id: Option<usize>,
    pub sku: Option<usize>,
    pub price_cost: Option<usize>,
    pub price_sale: Option<usize>,
    pub price_discount: Option<usize>,
}

/// One SKU of the SKU export.
#[derive(Clone, Debug, PartialEq)]
pub struct SkuExportRow {
    /// The row in the file (the header is row 1).
    pub row: u64,
    pub sku_id: u64,
    pub product_id: Option<u64>,
    pub sku: String,
    pub price_cost: Option<Decimal>,
    pub price_sale: Option<Decimal>,
    pub price_discount: Option<Decimal>,
    /// Every cell as read, in the header's order (an import fills its rows from them).
    pub cells: Vec<String>,
}

/// The SKU export: its header (an import's template) and its rows.
#[derive(Clone, Debug)]
pub struct SkuExport {
    pub queue_id: u64,
    pub header: Vec<String>,
    pub cols: SkuColumns,
    pub rows: Vec<SkuExportRow>,
}

/// One SKU of a warehouse's stock export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockExportRow {
    pub row: u64,
    pub sku_id: u64,
    pub sku: Option<String>,
    pub quantity: i64,
    pub min_quantity: Option<i64>,
}

fn names<'a>(over: &'a [String], defaults: &[&'a str]) -> Vec<&'a str> {
    over.iter()
        .map(String::as_str)
        .chain(defaults.iter().copied())
        .collect()
}

/// A money cell as an export may write it: `12.5`, `12,50`, `1.299,90`, `R$ 12,50`.
pub fn parse_money(text: &str) -> Option<Decimal> {
    let t = text.trim().trim_start_matches("R$").trim();
    let t = match (t.rfind(','), t.rfind('.')) {
        (Some(c), Some(d)) if c > d => t.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => t.replace(',', ""),
        (Some(_), None) => t.replace(',', "."),
        _ => t.to_string(),
    };
    t.parse::<Decimal>().ok().filter(|d| *d >= Decimal::ZERO)
}

fn parse_whole(text: &str) -> Option<i64> {
    let t = text.trim();
    t.parse::<i64>()
        .ok()
        .or_else(|| t.strip_suffix(".0").and_then(|s| s.parse().ok()))
}

fn parse_id(text: &str) -> Option<u64> {
    parse_whole(text)
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
}

/// Reads a SKU export's table. Rows without a SKU id are left out (an import may only update
/// SKUs that exist); a price cell that is not a price stops the read, naming the row.
pub fn parse_sku_export(
    table: Table,
    queue_id: u64,
    aliases: &ExportAliases,
) -> Result<SkuExport, ExportError> {
    let cols = SkuColumns {
        sku_id: table.require(&names(&aliases.sku_id, columns::SKU_ID))?,
        product_id: table.column(&names(&aliases.product_id, columns::PRODUCT_ID))?,
        sku: table.column(&names(&aliases.sku, columns::SKU))?,
        price_cost: table.column(&names(&aliases.price_cost, columns::PRICE_COST))?,
        price_sale: table.column(&names(&aliases.price_sale, columns::PRICE_SALE))?,
        price_discount: table.column(&names(&aliases.price_discount, columns::PRICE_DISCOUNT))?,
    };
    let what = table.what.clone();
    let mut rows = Vec::with_capacity(table.rows.len());
    for (cells, row) in table.rows.into_iter().zip(table.row_numbers) {
        let cell = |c: Option<usize>| c.and_then(|c| cells.get(c)).map_or("", String::as_str);
        let Some(sku_id) = parse_id(cell(Some(cols.sku_id))) else {
            continue;
        };
        let money = |c: Option<usize>| -> Result<Option<Decimal>, ExportError> {
            let text = cell(c);
            if text.trim().is_empty() {
                return Ok(None);
            }
            parse_money(text).map(Some).ok_or_else(|| {
                let name = c.map_or("", |c| table.header[c].as_str());
                ExportError(format!(
                    "{what}, row {row}, column \"{name}\": \"{text}\" is not a price"
                ))
            })
        };
        rows.push(SkuExportRow {
            row,
            sku_id,
            product_id: parse_id(cell(cols.product_id)),
            sku: cell(cols.sku).trim().to_string(),
            price_cost: money(cols.price_cost)?,
            price_sale: money(cols.price_sale)?,
            price_discount: money(cols.price_discount)?,
            cells: cells.clone(),
        });
    }
    Ok(SkuExport {
        queue_id,
        header: table.header,
        cols,
        rows,
    })
}

/// Reads a stock export's table; a quantity that is not a whole number stops the read.
pub fn parse_stock_export(
    table: &Table,
    aliases: &ExportAliases,
) -> Result<Vec<StockExportRow>, ExportError> {
    let id = table.require(&names(&aliases.stock_sku_id, columns::STOCK_SKU_ID))?;
    let qty = table.require(&names(&aliases.quantity, columns::QUANTITY))?;
    let sku = table.column(&names(&aliases.sku, columns::SKU))?;
    let min = table.column(&names(&aliases.min_quantity, columns::MIN_QUANTITY))?;
    let mut out = Vec::with_capacity(table.rows.len());
    for (cells, &row) in table.rows.iter().zip(&table.row_numbers) {
        let cell = |c: usize| cells.get(c).map_or("", String::as_str);
        let Some(sku_id) = parse_id(cell(id)) else {
            continue;
        };
        let quantity = parse_whole(cell(qty)).ok_or_else(|| {
            ExportError(format!(
                "{}, row {row}, column \"{}\": \"{}\" is not a whole number",
                table.what,
                table.header[qty],
                cell(qty)
            ))
        })?;
        out.push(StockExportRow {
            row,
            sku_id,
            sku: sku
                .map(|c| cell(c).trim().to_string())
                .filter(|s| !s.is_empty()),
            quantity,
            min_quantity: min.and_then(|c| parse_whole(cell(c))),
        });
    }
    Ok(out)
}

/// How a SKU export's header differs from an earlier one, as one clause per kind of change
/// ("added \"x\"", "removed \"y\"", "moved \"z\" from column 3 to 5"); names are compared
/// ignoring case, accents, spaces and `_`. Empty when they are the same.
pub fn header_changes(old: &[String], new: &[String]) -> Vec<String> {
    let norm = |h: &[String]| -> Vec<String> { h.iter().map(|c| export_file::norm(c)).collect() };
    let (o, n) = (norm(old), norm(new));
    let quoted = |names: Vec<&String>| {
        names
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    let added: Vec<&String> = new
        .iter()
        .zip(&n)
        .filter(|(_, k)| !o.contains(k))
        .map(|(c, _)| c)
        .collect();
    if !added.is_empty() {
        out.push(format!("added {}", quoted(added)));
    }
    let removed: Vec<&String> = old
        .iter()
        .zip(&o)
        .filter(|(_, k)| !n.contains(k))
        .map(|(c, _)| c)
        .collect();
    if !removed.is_empty() {
        out.push(format!("removed {}", quoted(removed)));
    }
    // Moved: a column in both whose place among the shared columns changed.
    let shared_old: Vec<&String> = o.iter().filter(|k| n.contains(k)).collect();
    let shared_new: Vec<&String> = n.iter().filter(|k| o.contains(k)).collect();
    let moved: Vec<String> = new
        .iter()
        .zip(&n)
        .enumerate()
        .filter(|(_, (_, k))| o.contains(k))
        .filter_map(|(to, (name, k))| {
            let a = shared_old.iter().position(|s| *s == k)?;
            let b = shared_new.iter().position(|s| *s == k)?;
            let from = o.iter().position(|s| s == k)?;
            (a != b).then(|| format!("\"{name}\" from column {} to {}", from + 1, to + 1))
        })
        .collect();
    if !moved.is_empty() {
        out.push(format!("moved {}", moved.join(", ")));
    }
    if out.is_empty() && o != n {
        out.push("changed".into());
    }
    out
}

/// Keeps `export`'s header as the store's stored template header, warning when it differs from
/// the one kept before (the merchant or Yampi changed the template).
/// [`remember_header`], a failure only logged: every SKU export read (imports, audits, the
/// export-based index) refreshes the kept header, and none of them needs it to go on.
pub fn keep_header(state: &crate::state::StateStore, store: &str, export: &SkuExport) {
    if let Err(e) = remember_header(state, store, export) {
        tracing::warn!(store, error = %e, "Cannot keep the SKU export's header in the state store");
    }
}

pub fn remember_header(
    state: &crate::state::StateStore,
    store: &str,
    export: &SkuExport,
) -> Result<(), crate::state::StateError> {
    let old = state.sku_header(store)?;
    if let Some(old) = &old {
        let changes = header_changes(&old.columns, &export.header);
        if !changes.is_empty() {
            tracing::warn!(
                store,
                queue_id = export.queue_id,
                "The store's SKU export header changed since {} (queue {}): {}; imports now follow the new header",
                old.read_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                old.queue_id,
                changes.join("; ")
            );
        }
    }
    state.put_sku_header(
        store,
        &crate::state::StoredHeader {
            columns: export.header.clone(),
            read_at: chrono::Utc::now(),
            queue_id: export.queue_id,
        },
    )
}

/// The queue an export call started: the answer's `queue_id`, else the newest queue created
/// since the call (`since`, store-local time as `GET /queues` writes it).
async fn export_queue(
    client: &ShopClient,
    ticket: QueueTicket,
    since: &str,
    what: &str,
) -> Result<u64, ExportError> {
    if let Some(id) = ticket.queue_id {
        return Ok(id);
    }
    let queues = client.queues_since(since).await.map_err(|e| {
        ExportError(format!(
            "{what}: the answer named no queue and the queues could not be listed: {e}"
        ))
    })?;
    queues.last().map(|q| q.id).ok_or_else(|| {
        ExportError(format!(
            "{what}: the answer named no queue and no queue was created since {since}"
        ))
    })
}

/// The store-local time `GET /queues` compares `created_at` with, a minute early so a clock a
/// little ahead does not hide the queue.
pub fn store_now() -> String {
    (chrono::Utc::now().with_timezone(&crate::shop::STORE_ZONE) - chrono::Duration::minutes(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

async fn fetch_table(
    client: &ShopClient,
    start: Result<QueueTicket, ApiError>,
    since: String,
    what: &str,
    wait: Wait,
) -> Result<(u64, Table), ExportError> {
    let ticket = start.map_err(|e| ExportError(format!("{what} could not be started: {e}")))?;
    let queue_id = export_queue(client, ticket, &since, what).await?;
    let t0 = std::time::Instant::now();
    let state = queue_watch::watch(client, queue_id, wait.timeout, wait.poll_every, None)
        .await
        .map_err(|e| ExportError(format!("{what}: {e}")))?;
    let t1 = std::time::Instant::now();
    let bytes = queue_watch::export_file(client, &state, wait.poll_every)
        .await
        .map_err(|e| ExportError(format!("{what}: {e}")))?;
    let t2 = std::time::Instant::now();
    let named = format!("{what} (queue {queue_id})");
    let table = tokio::task::spawn_blocking(move || export_file::read_table(&bytes, &named))
        .await
        .map_err(|e| ExportError(format!("{what}: reading the file stopped: {e}")))??;
    tracing::debug!(
        queue_id,
        watch_ms = (t1 - t0).as_millis() as u64,
        download_ms = (t2 - t1).as_millis() as u64,
        read_ms = t2.elapsed().as_millis() as u64,
        "{what}: timings"
    );
    Ok((queue_id, table))
}

/// The store's SKU export, read.
pub async fn sku_export(
    client: &ShopClient,
    wait: Wait,
    aliases: &ExportAliases,
) -> Result<SkuExport, ExportError> {
    let since = store_now();
    let start = client.start_sku_export().await;
    let (queue_id, table) = fetch_table(client, start, since, "the SKU export", wait).await?;
    parse_sku_export(table, queue_id, aliases)
}

/// The stock export of logistics stock `stock_id`, read.
pub async fn stock_export(
    client: &ShopClient,
    stock_id: u64,
    wait: Wait,
    aliases: &ExportAliases,
) -> Result<Vec<StockExportRow>, ExportError> {
    let since = store_now();
    let start = client.start_stock_export(stock_id).await;
    let what = format!("the stock export of stock {stock_id}");
    let (_, table) = fetch_table(client, start, since, &what, wait).await?;
    parse_stock_export(&table, aliases)
}

/// The stock exports of `stock_ids`, one after the other (an answer without a queue id is
/// taken to be the newest queue, which two exports at once would confuse): (SKU id, stock id)
/// → the SKU's row.
pub async fn stock_exports(
    client: &ShopClient,
    stock_ids: &[u64],
    wait: Wait,
    aliases: &ExportAliases,
) -> Result<HashMap<(u64, u64), StockExportRow>, ExportError> {
    let mut out = HashMap::new();
    for &stock_id in stock_ids {
        for r in stock_export(client, stock_id, wait, aliases).await? {
            out.insert((r.sku_id, stock_id), r);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(header: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect(),
            row_numbers: (2..2 + rows.len() as u64).collect(),
            what: "the SKU export (queue 7)".into(),
        }
    }

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn header_changes_name_added_removed_and_moved_columns() {
        let old = cols(&["id", "sku", "preço_venda", "peso_em_kg"]);
        assert!(
            header_changes(&old, &cols(&["ID", "Sku", "preco_venda", "peso_em_kg"])).is_empty()
        );
        let new = cols(&["id", "preço_venda", "sku", "ean"]);
        let c = header_changes(&old, &new);
        assert_eq!(
            c,
            [
                "added \"ean\"",
                "removed \"peso_em_kg\"",
                "moved \"preço_venda\" from column 3 to 2, \"sku\" from column 2 to 3",
            ]
        );
    }

    #[test]
    fn money_cells_read_in_either_style() {
        for (text, want) in [
            ("12.5", "12.5"),
            ("12,50", "12.50"),
            ("1.299,90", "1299.90"),
            ("1,299.90", "1299.90"),
            ("R$ 7,00", "7.00"),
        ] {
            assert_eq!(parse_money(text), Some(want.parse().unwrap()), "{text}");
        }
        assert_eq!(parse_money("abc"), None);
        assert_eq!(parse_money("-1"), None);
    }

    #[test]
    fn the_sku_export_is_read_by_column_name_in_any_order() {
        let t = table(
            &[
                "preço_venda",
                "SKU",
                "nome_produto",
                "ID",
                "Id Produto",
                "preço_promocional",
            ],
            &[
                &["12.5", "A-1", "Camiseta", "501", "77", ""],
                &["", "", "", "", "", ""],
                &["9,90", "A-2", "Camiseta", "502", "77", "8"],
            ],
        );
        let e = parse_sku_export(t, 7, &ExportAliases::default()).unwrap();
        assert_eq!(e.cols.sku_id, 3);
        assert_eq!(e.rows.len(), 2, "a row without an id is no SKU");
        assert_eq!(e.rows[0].sku_id, 501);
        assert_eq!(e.rows[0].product_id, Some(77));
        assert_eq!(e.rows[0].price_sale, Some("12.5".parse().unwrap()));
        assert_eq!(e.rows[0].price_discount, None);
        assert_eq!(e.rows[1].price_sale, Some("9.90".parse().unwrap()));
        assert_eq!(e.rows[1].cells[2], "Camiseta");
        assert_eq!(e.rows[1].row, 4);

        let bad = table(&["id", "preco_venda"], &[&["1", "doze"]]);
        let err = parse_sku_export(bad, 7, &ExportAliases::default()).unwrap_err();
        assert!(
            err.to_string().contains("row 2, column \"preco_venda\""),
            "{err}"
        );
    }

    #[test]
    fn stock_exports_take_the_merchants_names_first() {
        let t = table(
            &["id", "id_sku", "Saldo Atual", "saldo"],
            &[&["9", "501", "4", "x"]],
        );
        let aliases = ExportAliases {
            quantity: vec!["saldo_atual".into()],
            ..Default::default()
        };
        let rows = parse_stock_export(&t, &aliases).unwrap();
        assert_eq!(rows[0].sku_id, 501);
        assert_eq!(rows[0].quantity, 4);
        let err = parse_stock_export(&t, &ExportAliases::default()).unwrap_err();
        assert!(
            err.to_string().contains("\"x\" is not a whole number"),
            "{err}"
        );
    }
}
