//! Mapping files: which ERP column is the key, which store field it matches, and where each
//! value goes (SPEC §4). Also the pure cell parsers that turn ERP cells into typed values with
//! the mapping's decimal style, so the same rules apply to CSV text and spreadsheet numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::source::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchField {
    Sku,
    ErpId,
    Barcode,
}

impl MatchField {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchField::Sku => "sku",
            MatchField::ErpId => "erp_id",
            MatchField::Barcode => "barcode",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalStyle {
    /// "1.234,56"
    Comma,
    /// "1,234.56"
    Dot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    Keep,
    Zero,
}

/// Where one mapped quantity column goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StockTarget {
    /// `quantity = "COL"`: the store's default stock (`stock_id` in the mapping, else the
    /// logistics stock with the lowest priority number).
    Default,
    Stock(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MinQuantity {
    Fixed(i64),
    Column(String),
}

#[derive(Debug, Clone)]
pub struct StockMapping {
    pub columns: Vec<(StockTarget, String)>,
    pub default_stock_id: Option<u64>,
    pub min_quantity: MinQuantity,
    pub reserve: i64,
    pub missing: Missing,
}

#[derive(Debug, Clone)]
pub struct Mapping {
    pub path: PathBuf,
    pub match_field: MatchField,
    pub key: String,
    pub decimal: DecimalStyle,
    pub stock: Option<StockMapping>,
}

impl Mapping {
    /// Every source column the stock section reads, key first.
    pub fn stock_columns(&self) -> Vec<String> {
        let mut cols = vec![self.key.clone()];
        if let Some(s) = &self.stock {
            cols.extend(s.columns.iter().map(|(_, c)| c.clone()));
            if let MinQuantity::Column(c) = &s.min_quantity {
                cols.push(c.clone());
            }
        }
        cols
    }
}

#[derive(Debug, Deserialize)]
struct RawMapping {
    #[serde(rename = "match")]
    match_field: Option<MatchField>,
    key: Option<String>,
    decimal: Option<DecimalStyle>,
    stock: Option<RawStock>,
    /// Read by price jobs; accepted here so one mapping file can serve both kinds.
    price: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
struct RawStock {
    quantity: Option<String>,
    stocks: Option<BTreeMap<String, String>>,
    stock_id: Option<u64>,
    min_quantity: Option<toml::Value>,
    reserve: Option<i64>,
    missing: Option<Missing>,
}

/// Loads a mapping file, pushing every problem into `errors`.
pub fn load(path: &Path, errors: &mut Vec<String>) -> Option<Mapping> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            errors.push(format!(
                "cannot read the mapping file {}: {e}",
                path.display()
            ));
            return None;
        }
    };
    parse(&text, path, errors)
}

pub fn parse(text: &str, path: &Path, errors: &mut Vec<String>) -> Option<Mapping> {
    let raw: RawMapping = crate::config::parse_toml(text, path, false, errors)?;
    let file = path.display();
    let before = errors.len();
    let _ = &raw.price;
    let key = match raw.key {
        Some(k) if !k.trim().is_empty() => k,
        _ => {
            errors.push(format!(
                "{file}: `key` (the source column with the key) is required"
            ));
            String::new()
        }
    };
    let stock = raw.stock.map(|s| {
        let mut columns = Vec::new();
        if let Some(q) = s.quantity {
            columns.push((StockTarget::Default, q));
        }
        for (id, col) in s.stocks.unwrap_or_default() {
            match id.trim().parse::<u64>() {
                Ok(n) => columns.push((StockTarget::Stock(n), col)),
                Err(_) => errors.push(format!(
                    "{file}: [stock] stocks: \"{id}\" is not a Yampi stock_id (a whole number)"
                )),
            }
        }
        if columns.is_empty() {
            errors.push(format!(
                "{file}: [stock] needs `quantity = \"COLUMN\"` or `stocks = {{ \"1\" = \"COLUMN\" }}`"
            ));
        }
        if let Some(d) = s.stock_id
            && columns.iter().any(|(t, _)| *t == StockTarget::Stock(d))
        {
            errors.push(format!(
                "{file}: [stock] stock_id {d} is also listed in `stocks`; map it once"
            ));
        }
        let min_quantity = match s.min_quantity {
            None => MinQuantity::Fixed(0),
            Some(toml::Value::Integer(n)) if n >= 0 => MinQuantity::Fixed(n),
            Some(toml::Value::String(c)) if !c.trim().is_empty() => MinQuantity::Column(c),
            Some(other) => {
                errors.push(format!(
                    "{file}: [stock] min_quantity must be a whole number ≥ 0 or a column name, not {other}"
                ));
                MinQuantity::Fixed(0)
            }
        };
        let reserve = s.reserve.unwrap_or(0);
        if reserve < 0 {
            errors.push(format!("{file}: [stock] reserve must be ≥ 0"));
        }
        StockMapping {
            columns,
            default_stock_id: s.stock_id,
            min_quantity,
            reserve: reserve.max(0),
            missing: s.missing.unwrap_or(Missing::Keep),
        }
    });
    if errors.len() != before {
        return None;
    }
    Some(Mapping {
        path: path.to_path_buf(),
        match_field: raw.match_field.unwrap_or(MatchField::Sku),
        key,
        decimal: raw.decimal.unwrap_or(DecimalStyle::Dot),
        stock,
    })
}

/// Normalises a key for matching: trimmed and case-insensitive (SPEC §5.3).
pub fn normalize_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The key as text; spreadsheet numbers lose a trailing ".0" (an ERP code 1234 is "1234").
pub fn cell_key(cell: &Cell<'_>) -> Option<String> {
    match cell {
        Cell::Empty => None,
        Cell::Text(t) => {
            let t = t.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        Cell::Number(n) => Some(number_text(*n)),
        Cell::Bool(b) => Some(b.to_string()),
        Cell::Error(_) => None,
    }
}

/// How a cell is shown in reports.
pub fn cell_text(cell: &Cell<'_>) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(t) => t.to_string(),
        Cell::Number(n) => number_text(*n),
        Cell::Bool(b) => b.to_string(),
        Cell::Error(e) => format!("#{e}"),
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Parses a decimal written in the mapping's style. Thousands separators are dropped; an
/// optional "R$" prefix is tolerated.
pub fn parse_decimal_text(text: &str, style: DecimalStyle) -> Option<Decimal> {
    let t = text.trim();
    let t = t.strip_prefix("R$").unwrap_or(t).trim();
    if t.is_empty() {
        return None;
    }
    let cleaned: String = match style {
        DecimalStyle::Comma => t
            .chars()
            .filter(|c| *c != '.' && *c != ' ')
            .map(|c| if c == ',' { '.' } else { c })
            .collect(),
        DecimalStyle::Dot => t.chars().filter(|c| *c != ',' && *c != ' ').collect(),
    };
    cleaned.parse::<Decimal>().ok()
}

/// Why a quantity cell was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityError {
    Empty,
    NotANumber,
    NotWhole,
    Negative,
}

impl QuantityError {
    pub fn reason(&self) -> &'static str {
        match self {
            QuantityError::Empty => "empty quantity",
            QuantityError::NotANumber => "not a number",
            QuantityError::NotWhole => "not a whole number",
            QuantityError::Negative => "negative quantity",
        }
    }
}

/// A stock quantity: a whole number ≥ 0.
pub fn parse_quantity(cell: &Cell<'_>, style: DecimalStyle) -> Result<i64, QuantityError> {
    let d = match cell {
        Cell::Empty => return Err(QuantityError::Empty),
        Cell::Text(t) => parse_decimal_text(t, style).ok_or(QuantityError::NotANumber)?,
        Cell::Number(n) => {
            if !n.is_finite() {
                return Err(QuantityError::NotANumber);
            }
            if n.fract() != 0.0 {
                return Err(QuantityError::NotWhole);
            }
            if *n < 0.0 {
                return Err(QuantityError::Negative);
            }
            return Ok(*n as i64);
        }
        Cell::Bool(_) | Cell::Error(_) => return Err(QuantityError::NotANumber),
    };
    if d.fract() != Decimal::ZERO {
        return Err(QuantityError::NotWhole);
    }
    if d.is_sign_negative() && d != Decimal::ZERO {
        return Err(QuantityError::Negative);
    }
    i64::try_from(d).map_err(|_| QuantityError::NotANumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_styles() {
        assert_eq!(
            parse_decimal_text("1.234,56", DecimalStyle::Comma),
            Some(d("1234.56"))
        );
        assert_eq!(
            parse_decimal_text("1,234.56", DecimalStyle::Dot),
            Some(d("1234.56"))
        );
        assert_eq!(
            parse_decimal_text("R$ 10,5", DecimalStyle::Comma),
            Some(d("10.5"))
        );
        assert_eq!(parse_decimal_text("abc", DecimalStyle::Dot), None);
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn quantities() {
        let c = DecimalStyle::Comma;
        assert_eq!(parse_quantity(&Cell::Text("1.200"), c), Ok(1200));
        assert_eq!(parse_quantity(&Cell::Text("10,0"), c), Ok(10));
        assert_eq!(
            parse_quantity(&Cell::Text("10,5"), c),
            Err(QuantityError::NotWhole)
        );
        assert_eq!(
            parse_quantity(&Cell::Text("-3"), c),
            Err(QuantityError::Negative)
        );
        assert_eq!(
            parse_quantity(&Cell::Text("x"), c),
            Err(QuantityError::NotANumber)
        );
        assert_eq!(parse_quantity(&Cell::Number(7.0), c), Ok(7));
        assert_eq!(parse_quantity(&Cell::Empty, c), Err(QuantityError::Empty));
    }

    #[test]
    fn mapping_unknown_keys_are_all_reported() {
        let mut errors = Vec::new();
        let m = parse(
            "key = \"CODIGO\"\nbogus = 1\n[stock]\nquantity = \"SALDO\"\nalso_bogus = 2\n",
            Path::new("m.toml"),
            &mut errors,
        );
        assert!(m.is_some());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("bogus"));
        assert!(errors[1].contains("stock.also_bogus"), "{errors:?}");
    }
}
