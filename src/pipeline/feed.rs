//! Reading a stock feed: ERP rows → validated quantities per store SKU, the rows refused, and
//! the keys the store lacks.
//!
//! Rows are matched against the SKU index while they stream in, so memory grows with the number
//! of matched SKUs, not with the size of the ERP export. Pure apart from the file read; the
//! benchmark calls it directly.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::index::KeyMatch;
use crate::mapping::{
    Mapping, MatchField, MinQuantity, StockTarget, cell_key, cell_text, normalize_key,
    parse_quantity,
};
use crate::report::{RejectedRow, UnmatchedKey};
use crate::source::{self, Cell, Format, SourceError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    pub row: u64,
    /// The key as written in the file (for reports; shared with every change row of the SKU).
    pub key: Arc<str>,
    pub quantities: Vec<(StockTarget, i64)>,
    pub min_quantity: i64,
}

#[derive(Debug, Default)]
pub struct StockFeed {
    /// Store SKU id → the values of the row that names it.
    pub rows: HashMap<u64, FeedRow>,
    pub rejected: Vec<RejectedRow>,
    /// Keys seen on a rejected row: never zeroed by `missing = "zero"`, never synced this run.
    pub rejected_keys: HashSet<String>,
    /// Keys no store SKU has, or that several store SKUs share.
    pub unmatched: Vec<UnmatchedKey>,
    pub rows_read: u64,
    /// Rows that passed validation (matched or not): the size the shrink guard compares.
    pub rows_valid: u64,
}

/// Opens the source and checks that every mapped column exists, without reading rows.
pub fn check_columns(
    path: &Path,
    format: Option<Format>,
    sheet: Option<&str>,
    mapping: &Mapping,
) -> Result<(), SourceError> {
    let columns = mapping.stock_columns();
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    source::open(path, format, sheet)?.resolve(&wanted)?;
    Ok(())
}

/// Reads `path` with the mapping's `[stock]` section, matching keys through `lookup`.
pub fn read_stock_feed(
    path: &Path,
    format: Option<Format>,
    sheet: Option<&str>,
    mapping: &Mapping,
    lookup: &HashMap<String, KeyMatch>,
) -> Result<StockFeed, SourceError> {
    let stock = mapping
        .stock
        .as_ref()
        .expect("validated: stock jobs have a [stock] mapping");
    let columns = mapping.stock_columns();
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut opened = source::open(path, format, sheet)?;
    let idx = opened.resolve(&wanted)?;
    let file = path.display().to_string();
    let style = mapping.decimal;
    let n_qty = stock.columns.len();
    let not_found: Cow<'static, str> = Cow::Borrowed(match mapping.match_field {
        MatchField::Sku => "no store SKU has this sku",
        MatchField::ErpId => "no store SKU has this erp_id",
        MatchField::Barcode => "no store SKU has this barcode",
    });

    let mut feed = StockFeed::default();
    // SKUs named by rows that disagree: every such row is rejected at the end.
    let mut conflicting: HashMap<u64, Vec<(u64, String)>> = HashMap::new();
    let rows_read = opened.for_each_row(&idx, &mut |row, cells: &[Cell<'_>]| {
        let reject = |feed: &mut StockFeed, column: &str, value: String, reason: String| {
            feed.rejected.push(RejectedRow {
                file: file.clone(),
                row,
                column: column.to_string(),
                value,
                reason,
            });
        };
        let Some(key) = cell_key(&cells[0]) else {
            reject(
                &mut feed,
                &mapping.key,
                cell_text(&cells[0]),
                "empty key".into(),
            );
            return;
        };
        let mut quantities = Vec::with_capacity(n_qty);
        let mut bad = false;
        for (i, (target, col)) in stock.columns.iter().enumerate() {
            match parse_quantity(&cells[1 + i], style) {
                Ok(q) => quantities.push((*target, q)),
                Err(e) => {
                    bad = true;
                    let reason = format!("{} (key {key})", e.reason());
                    reject(&mut feed, col, cell_text(&cells[1 + i]), reason);
                }
            }
        }
        let min_quantity = match &stock.min_quantity {
            MinQuantity::Fixed(n) => *n,
            MinQuantity::Column(col) => match parse_quantity(&cells[1 + n_qty], style) {
                Ok(q) => q,
                Err(e) => {
                    bad = true;
                    let reason = format!("{} (key {key})", e.reason());
                    reject(&mut feed, col, cell_text(&cells[1 + n_qty]), reason);
                    0
                }
            },
        };
        let norm = normalize_key(&key);
        if bad {
            feed.rejected_keys.insert(norm);
            return;
        }
        feed.rows_valid += 1;
        let sku_id = match lookup.get(&norm) {
            Some(KeyMatch::One(id)) => *id,
            Some(KeyMatch::Ambiguous(ids)) => {
                feed.unmatched.push(UnmatchedKey {
                    key,
                    row,
                    reason: Cow::Owned(format!(
                        "{} store SKUs share this {} (ids {}); not synced",
                        ids.len(),
                        mapping.match_field.as_str(),
                        ids.iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                });
                return;
            }
            None => {
                feed.unmatched.push(UnmatchedKey {
                    key,
                    row,
                    reason: not_found.clone(),
                });
                return;
            }
        };
        if let Some(c) = conflicting.get_mut(&sku_id) {
            c.push((row, key));
            return;
        }
        match feed.rows.get(&sku_id) {
            Some(prev) if prev.quantities == quantities && prev.min_quantity == min_quantity => {
                // An exact repeat is harmless.
            }
            Some(_) => {
                let prev = feed.rows.remove(&sku_id).expect("present");
                conflicting.insert(sku_id, vec![(prev.row, prev.key.to_string()), (row, key)]);
            }
            None => {
                feed.rows.insert(
                    sku_id,
                    FeedRow {
                        row,
                        key: Arc::from(key),
                        quantities,
                        min_quantity,
                    },
                );
            }
        }
    })?;
    for (_, rows) in conflicting {
        let all_rows: Vec<String> = rows.iter().map(|(r, _)| r.to_string()).collect();
        for (row, key) in &rows {
            feed.rejected.push(RejectedRow {
                file: file.clone(),
                row: *row,
                column: mapping.key.clone(),
                value: key.clone(),
                reason: format!(
                    "duplicate key with different values (rows {})",
                    all_rows.join(", ")
                ),
            });
            feed.rejected_keys.insert(normalize_key(key));
        }
        feed.rows_valid -= rows.len() as u64;
    }
    // A key with any refused row is not synced at all this run: which row is right is unknown.
    if !feed.rejected_keys.is_empty() {
        let keys = &feed.rejected_keys;
        feed.rows
            .retain(|_, r| !keys.contains(&normalize_key(&r.key)));
    }
    feed.rejected.sort_by_key(|r| r.row);
    feed.rows_read = rows_read;
    Ok(feed)
}
