//! Reading a feed: ERP rows → validated values per store SKU, the rows refused, and the keys the
//! store lacks. One generic reader (`read_feed`) does the matching, duplicate and reject
//! bookkeeping; each job kind only says how to turn a row's cells into its values.
//!
//! Rows are matched against the SKU index while they stream in, so memory grows with the number
//! of matched SKUs, not with the size of the ERP export. Pure apart from the file read; the
//! benchmark calls it directly.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::index::KeyMatch;
use crate::mapping::{
    DecimalStyle, Mapping, MatchField, MinQuantity, StockTarget, cell_key, cell_text,
    normalize_key, parse_money, parse_quantity,
};
use crate::report::{Reason, RejectedRow, UnmatchedKey};
use crate::source::{self, Cell, Format, SourceError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow<T> {
    pub row: u64,
    /// The key as written in the file (for reports; shared with every change row of the SKU).
    pub key: Arc<str>,
    pub value: T,
    /// The text of the value cells after the key, as read, each cut at
    /// [`crate::report::CELL_TEXT_MAX`] characters and joined by [`CELL_SEP`]: one allocation
    /// per matched row, for the report's "cell text" beside the value used.
    pub cells: Box<str>,
}

/// Separates the cell texts of [`FeedRow::cells`] (the ASCII unit separator, which cell
/// texts cannot hold: it is replaced when read).
pub const CELL_SEP: char = '\u{1f}';

impl<T> FeedRow<T> {
    /// The text of value cell `i` (0 = the first column after the key), as read.
    pub fn cell(&self, i: usize) -> Option<&str> {
        self.cells.split(CELL_SEP).nth(i)
    }
}

/// The cells' texts as [`FeedRow::cells`] keeps them.
pub fn cell_texts(cells: &[Cell<'_>]) -> Box<str> {
    let mut out = String::new();
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(CELL_SEP);
        }
        let owned;
        let text: &str = match c {
            // Read in place: a long text cell is not copied whole to keep 64 characters of it.
            Cell::Text(t) => t,
            other => {
                owned = cell_text(other);
                &owned
            }
        };
        out.extend(
            text.chars()
                .take(crate::report::CELL_TEXT_MAX)
                .map(|ch| if ch == CELL_SEP { ' ' } else { ch }),
        );
    }
    out.into_boxed_str()
}

#[derive(Debug)]
pub struct Feed<T> {
    /// Store SKU id → the values of the row that names it.
    pub rows: HashMap<u64, FeedRow<T>>,
    pub rejected: Vec<RejectedRow>,
    /// Keys seen on a rejected row: never zeroed by `missing = "zero"`, never synced this run.
    pub rejected_keys: HashSet<String>,
    /// Keys no store SKU has, or that several store SKUs share.
    pub unmatched: Vec<UnmatchedKey>,
    pub rows_read: u64,
    /// Rows that passed validation (matched or not): the size the shrink guard compares.
    pub rows_valid: u64,
}

impl<T> Default for Feed<T> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            rejected: Vec::new(),
            rejected_keys: HashSet::new(),
            unmatched: Vec::new(),
            rows_read: 0,
            rows_valid: 0,
        }
    }
}

/// A stock row: quantity per target stock, and the min quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockValues {
    pub quantities: Vec<(StockTarget, i64)>,
    pub min_quantity: i64,
}

/// A price row as read: `None` is a blank cell, which leaves that field alone.
pub type PriceValues = crate::model::PriceFields;

pub type StockFeed = Feed<StockValues>;
pub type PriceFeed = Feed<PriceValues>;

/// A refused cell: (column, value as written, reason).
pub type CellProblem = (String, String, Reason);

/// Turns the cells after the key into a row's value, or says what is wrong with them.
pub type RowParser<'a, T> = &'a dyn Fn(&[Cell<'_>]) -> Result<T, Vec<CellProblem>>;

/// Opens the source and checks that every column exists, without reading rows.
pub fn check_columns(
    path: &Path,
    format: Option<Format>,
    sheet: Option<&str>,
    columns: &[String],
) -> Result<(), SourceError> {
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    source::open(path, format, sheet)?.resolve(&wanted)?;
    Ok(())
}

/// Reads `path`: `columns[0]` is the key, `parse` turns the other cells into a value.
pub fn read_feed<T: PartialEq>(
    path: &Path,
    format: Option<Format>,
    sheet: Option<&str>,
    mapping: &Mapping,
    columns: &[String],
    lookup: &HashMap<String, KeyMatch>,
    parse: RowParser<'_, T>,
) -> Result<Feed<T>, SourceError> {
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut opened = source::open(path, format, sheet)?;
    let idx = opened.resolve(&wanted)?;
    let file = path.display().to_string();
    let not_found = match mapping.match_field {
        MatchField::Sku => Reason::fixed(
            "no store SKU has this sku",
            "nenhum SKU da loja tem este sku",
        ),
        MatchField::ErpId => Reason::fixed(
            "no store SKU has this erp_id",
            "nenhum SKU da loja tem este erp_id",
        ),
        MatchField::Barcode => Reason::fixed(
            "no store SKU has this barcode",
            "nenhum SKU da loja tem este código de barras",
        ),
    };

    let mut feed = Feed::<T>::default();
    // SKUs named by rows that disagree: every such row is rejected at the end.
    let mut conflicting: HashMap<u64, Vec<(u64, String)>> = HashMap::new();
    let rows_read = opened.for_each_row(&idx, &mut |row, cells: &[Cell<'_>]| {
        let Some(key) = cell_key(&cells[0]) else {
            feed.rejected.push(RejectedRow {
                file: file.clone(),
                row,
                column: mapping.key.clone(),
                value: cell_text(&cells[0]),
                reason: Reason::fixed("empty key", "chave vazia"),
            });
            return;
        };
        let norm = normalize_key(&key);
        let value = match parse(&cells[1..]) {
            Ok(v) => v,
            Err(problems) => {
                for (column, value, reason) in problems {
                    feed.rejected.push(RejectedRow {
                        file: file.clone(),
                        row,
                        column,
                        value,
                        reason: reason.for_key(&key),
                    });
                }
                feed.rejected_keys.insert(norm);
                return;
            }
        };
        feed.rows_valid += 1;
        let sku_id = match lookup.get(&norm) {
            Some(KeyMatch::One(id)) => *id,
            Some(KeyMatch::Ambiguous(ids)) => {
                feed.unmatched.push(UnmatchedKey {
                    key,
                    row,
                    reason: shared_key(ids, mapping.match_field),
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
            // An exact repeat is harmless.
            Some(prev) if prev.value == value => {}
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
                        value,
                        cells: cell_texts(&cells[1..]),
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
                reason: Reason::new(
                    format!(
                        "duplicate key with different values (rows {})",
                        all_rows.join(", ")
                    ),
                    format!(
                        "chave repetida com valores diferentes (linhas {})",
                        all_rows.join(", ")
                    ),
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

/// Why a key several store SKUs share is not synced.
fn shared_key(ids: &[u64], field: MatchField) -> Reason {
    let list = ids
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let (n, field) = (ids.len(), field.as_str());
    Reason::new(
        format!("{n} store SKUs share this {field} (ids {list}); not synced"),
        format!("{n} SKUs da loja têm este {field} (ids {list}); não sincronizado"),
    )
}

/// Reads a stock feed with the mapping's `[stock]` section.
pub fn read_stock_feed(
    path: &Path,
    format: Option<Format>,
    sheet: Option<&str>,
    mapping: &Mapping,
    lookup: &HashMap<String, KeyMatch>,
) -> Result<StockFeed, SourceError> {
    read_feed(
        path,
        format,
        sheet,
        mapping,
        &mapping.stock_columns(),
        lookup,
        &stock_row_parser(mapping),
    )
}

/// How a stock row's cells (after the key, in `Mapping::stock_columns` order) become its
/// values: the parser `read_stock_feed` uses, and `explain`.
pub fn stock_row_parser(
    mapping: &Mapping,
) -> impl Fn(&[Cell<'_>]) -> Result<StockValues, Vec<CellProblem>> + '_ {
    let stock = mapping
        .stock
        .as_ref()
        .expect("validated: stock jobs have a [stock] mapping");
    let style = mapping.decimal;
    let max = stock.max_quantity;
    let n_qty = stock.columns.len();
    move |cells: &[Cell<'_>]| -> Result<StockValues, Vec<CellProblem>> {
        let mut problems = Vec::new();
        let mut quantities = Vec::with_capacity(n_qty);
        for (i, (target, col)) in stock.columns.iter().enumerate() {
            match parse_quantity(&cells[i], style, max) {
                Ok(q) => quantities.push((*target, q)),
                Err(e) => problems.push((col.clone(), cell_text(&cells[i]), e.reason())),
            }
        }
        let min_quantity = match &stock.min_quantity {
            MinQuantity::Fixed(n) => *n,
            MinQuantity::Column(col) => {
                parse_quantity(&cells[n_qty], style, max).unwrap_or_else(|e| {
                    problems.push((col.clone(), cell_text(&cells[n_qty]), e.reason()));
                    0
                })
            }
        };
        if problems.is_empty() {
            Ok(StockValues {
                quantities,
                min_quantity,
            })
        } else {
            Err(problems)
        }
    }
}

/// Reads a price feed with the mapping's `[price]` section (values as written; the rules are
/// applied by the planner).
pub fn read_price_feed(
    path: &Path,
    format: Option<Format>,
    sheet: Option<&str>,
    mapping: &Mapping,
    lookup: &HashMap<String, KeyMatch>,
) -> Result<PriceFeed, SourceError> {
    read_feed(
        path,
        format,
        sheet,
        mapping,
        &mapping.price_columns(),
        lookup,
        &price_row_parser(mapping),
    )
}

/// How a price row's cells (after the key, in `Mapping::price_columns` order) become its
/// values as written: the parser `read_price_feed` uses, and `explain`.
pub fn price_row_parser(
    mapping: &Mapping,
) -> impl Fn(&[Cell<'_>]) -> Result<PriceValues, Vec<CellProblem>> + '_ {
    let price = mapping
        .price
        .as_ref()
        .expect("validated: price jobs have a [price] mapping");
    let style: DecimalStyle = mapping.decimal;
    // Column order after the key: sale, then discount and cost when mapped.
    let mut order: Vec<(&str, &String)> = vec![("price_sale", &price.price_sale)];
    if let Some(c) = &price.price_discount {
        order.push(("price_discount", c));
    }
    if let Some(c) = &price.price_cost {
        order.push(("price_cost", c));
    }
    move |cells: &[Cell<'_>]| -> Result<PriceValues, Vec<CellProblem>> {
        let mut v = PriceValues::default();
        let mut problems = Vec::new();
        for (i, (field, col)) in order.iter().enumerate() {
            match parse_money(&cells[i], style) {
                Ok(m) => match *field {
                    "price_sale" => v.sale = m,
                    "price_discount" => v.discount = m,
                    _ => v.cost = m,
                },
                Err(reason) => problems.push(((*col).clone(), cell_text(&cells[i]), reason)),
            }
        }
        if problems.is_empty() {
            Ok(v)
        } else {
            Err(problems)
        }
    }
}
