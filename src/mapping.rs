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

/// `round_to`: round a price up to the next value ending in these cents (`0.90` → x.90), or to
/// the next whole unit (`1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTo {
    Cents(Decimal),
    Whole,
}

impl RoundTo {
    pub fn parse(s: &str) -> Option<RoundTo> {
        let t = s.trim();
        if matches!(t, "1" | "1.00" | "1,00" | "whole" | "0" | "0.00") {
            return Some(RoundTo::Whole);
        }
        let d: Decimal = t.replace(',', ".").parse().ok()?;
        (d > Decimal::ZERO && d < Decimal::ONE && d.scale() <= 2).then_some(RoundTo::Cents(d))
    }

    /// The smallest price ≥ `p` that ends in the configured cents.
    pub fn apply(self, p: Decimal) -> Decimal {
        match self {
            RoundTo::Whole => p.ceil(),
            RoundTo::Cents(c) => {
                let candidate = p.floor() + c;
                if candidate >= p {
                    candidate
                } else {
                    candidate + Decimal::ONE
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct PriceMapping {
    pub price_sale: String,
    pub price_discount: Option<String>,
    pub price_cost: Option<String>,
    /// Multiplies sale and discount prices (not cost) before rounding.
    pub markup: Decimal,
    pub round_to: Option<RoundTo>,
    /// A price moving more than this (vs the last pushed or the store's) is refused.
    pub max_change_pct: Decimal,
}

#[derive(Debug, Clone)]
pub struct Mapping {
    pub path: PathBuf,
    pub match_field: MatchField,
    pub key: String,
    pub decimal: DecimalStyle,
    pub stock: Option<StockMapping>,
    pub price: Option<PriceMapping>,
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

    /// Every source column the price section reads, key first: sale, discount, cost.
    pub fn price_columns(&self) -> Vec<String> {
        let mut cols = vec![self.key.clone()];
        if let Some(p) = &self.price {
            cols.push(p.price_sale.clone());
            cols.extend(p.price_discount.iter().cloned());
            cols.extend(p.price_cost.iter().cloned());
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
    price: Option<RawPrice>,
}

#[derive(Debug, Deserialize)]
struct RawPrice {
    price_sale: Option<String>,
    price_discount: Option<String>,
    price_cost: Option<String>,
    markup: Option<Decimal>,
    round_to: Option<toml::Value>,
    max_change_pct: Option<Decimal>,
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
        let has_stocks = s.stocks.as_ref().is_some_and(|m| !m.is_empty());
        if !columns.is_empty() && has_stocks && s.stock_id.is_none() {
            errors.push(format!(
                "{file}: [stock] `quantity` together with `stocks` needs `stock_id` to say which stock `quantity` fills, so no stock is mapped twice"
            ));
        }
        let mut seen: Vec<(u64, String)> = Vec::new();
        for (id, col) in s.stocks.unwrap_or_default() {
            match id.trim().parse::<u64>() {
                Ok(n) if seen.iter().any(|(m, _)| *m == n) => {
                    let first = &seen.iter().find(|(m, _)| *m == n).expect("seen").1;
                    errors.push(format!(
                        "{file}: [stock] stock_id {n} is mapped twice (stocks \"{first}\" and \"{id}\"); map each stock once"
                    ));
                }
                Ok(n) => {
                    seen.push((n, id.clone()));
                    columns.push((StockTarget::Stock(n), col));
                }
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
                "{file}: [stock] stock_id {d} is mapped twice (`quantity` with stock_id = {d}, and stocks.\"{d}\"); map each stock once"
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
    let price = raw.price.map(|p| {
        let price_sale = p.price_sale.unwrap_or_else(|| {
            errors.push(format!("{file}: [price] price_sale (the sale price column) is required"));
            String::new()
        });
        let markup = p.markup.unwrap_or(Decimal::ONE);
        if markup <= Decimal::ZERO {
            errors.push(format!("{file}: [price] markup must be above 0"));
        }
        let round_to = p.round_to.and_then(|v| {
            let text = match &v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => other.to_string(),
            };
            let r = RoundTo::parse(&text);
            if r.is_none() {
                errors.push(format!(
                    "{file}: [price] round_to \"{text}\" must be cents to end in (\"0.90\", \"0.99\") or \"1\" for whole units"
                ));
            }
            r
        });
        let max_change_pct = p.max_change_pct.unwrap_or(Decimal::from(50));
        if max_change_pct <= Decimal::ZERO {
            errors.push(format!("{file}: [price] max_change_pct must be above 0"));
        }
        PriceMapping {
            price_sale,
            price_discount: p.price_discount,
            price_cost: p.price_cost,
            markup,
            round_to,
            max_change_pct,
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
        price,
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

/// A price cell: blank is `None` (leave the field alone, never 0); otherwise a decimal ≥ 0.
pub fn parse_money(cell: &Cell<'_>, style: DecimalStyle) -> Result<Option<Decimal>, &'static str> {
    let d = match cell {
        Cell::Empty => return Ok(None),
        Cell::Text(t) => parse_decimal_text(t, style).ok_or("not a number")?,
        // A spreadsheet number: its shortest decimal text is the value the merchant typed.
        Cell::Number(n) if n.is_finite() => n
            .to_string()
            .parse::<Decimal>()
            .map_err(|_| "not a number")?,
        _ => return Err("not a number"),
    };
    if d < Decimal::ZERO {
        return Err("negative price");
    }
    Ok(Some(d))
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
    fn money_cells() {
        let c = DecimalStyle::Comma;
        assert_eq!(
            parse_money(&Cell::Empty, c),
            Ok(None),
            "blank leaves the field alone"
        );
        assert_eq!(
            parse_money(&Cell::Text("1.234,5"), c),
            Ok(Some(d("1234.5")))
        );
        assert_eq!(parse_money(&Cell::Number(19.9), c), Ok(Some(d("19.9"))));
        assert_eq!(parse_money(&Cell::Text("-1"), c), Err("negative price"));
        assert_eq!(parse_money(&Cell::Text("grátis"), c), Err("not a number"));
    }

    #[test]
    fn rounding_up_to_cents_or_whole() {
        let r90 = RoundTo::parse("0.90").unwrap();
        assert_eq!(r90.apply(d("12.34")), d("12.90"));
        assert_eq!(r90.apply(d("12.90")), d("12.90"));
        assert_eq!(r90.apply(d("12.95")), d("13.90"));
        let r99 = RoundTo::parse("0,99").unwrap();
        assert_eq!(r99.apply(d("10.00")), d("10.99"));
        let whole = RoundTo::parse("1").unwrap();
        assert_eq!(whole.apply(d("12.01")), d("13"));
        assert_eq!(whole.apply(d("12")), d("12"));
        assert!(RoundTo::parse("1.5").is_none());
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
