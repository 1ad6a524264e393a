//! Mapping files: which ERP column is the key, which store field it matches, and where each
//! value goes (README.md, Mapping reference). Also the pure cell parsers that turn ERP cells into typed values with
//! the mapping's decimal style, so the same rules apply to CSV text and spreadsheet numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::export_file::ExportAliases;
use crate::report::Reason;
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
    /// The job's `max_quantity` (set by the config when the job is loaded): a quantity or min
    /// quantity above it refuses the row.
    pub max_quantity: i64,
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
    /// Column names of Yampi's export files (`[export]`), tried before the defaults.
    pub export: ExportAliases,
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

    /// Every source column an audit reads, key first: the stock section's, then the price
    /// section's.
    pub fn audit_columns(&self) -> Vec<String> {
        let mut cols = self.stock_columns();
        for c in self.price_columns().into_iter().skip(1) {
            if !cols.contains(&c) {
                cols.push(c);
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
    export: Option<RawExport>,
}

/// One export column name, or several to try in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Names {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
struct RawExport {
    sku_id: Option<Names>,
    product_id: Option<Names>,
    sku: Option<Names>,
    price_cost: Option<Names>,
    price_sale: Option<Names>,
    price_discount: Option<Names>,
    stock_sku_id: Option<Names>,
    quantity: Option<Names>,
    min_quantity: Option<Names>,
}

/// The `[export]` table: every name must be non-empty.
fn export_aliases(raw: RawExport, file: &str, errors: &mut Vec<String>) -> ExportAliases {
    let mut list = |v: Option<Names>, key: &str| -> Vec<String> {
        let names = match v {
            None => Vec::new(),
            Some(Names::One(s)) => vec![s],
            Some(Names::Many(v)) => v,
        };
        if names.iter().any(|n| n.trim().is_empty()) {
            errors.push(format!(
                "{file}: [export] {key}: a column name must not be empty"
            ));
        }
        names
    };
    ExportAliases {
        sku_id: list(raw.sku_id, "sku_id"),
        product_id: list(raw.product_id, "product_id"),
        sku: list(raw.sku, "sku"),
        price_cost: list(raw.price_cost, "price_cost"),
        price_sale: list(raw.price_sale, "price_sale"),
        price_discount: list(raw.price_discount, "price_discount"),
        stock_sku_id: list(raw.stock_sku_id, "stock_sku_id"),
        quantity: list(raw.quantity, "quantity"),
        min_quantity: list(raw.min_quantity, "min_quantity"),
    }
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
    let raw: RawMapping = crate::toml_env::parse_toml(text, path, false, errors)?;
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
            max_quantity: DEFAULT_MAX_QUANTITY,
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
    let export = export_aliases(raw.export.unwrap_or_default(), &file.to_string(), errors);
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
        export,
    })
}

/// Normalises a key for matching: trimmed and case-insensitive.
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

/// The most a quantity may be when the job sets no `max_quantity`.
pub const DEFAULT_MAX_QUANTITY: i64 = 1_000_000;

/// The highest `max_quantity` a job may set: far above any real stock, and exact in an f64.
pub const MAX_QUANTITY_CAP: i64 = 1_000_000_000_000;

/// The highest price read from a feed; anything above is a typo or a unit mix-up, and larger
/// values would overflow the decimal arithmetic of markups and rounding.
pub const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Longest number text considered; beyond it no real price or quantity is written.
const MAX_NUMBER_TEXT: usize = 40;

impl DecimalStyle {
    /// The value as written in a mapping (`decimal = "comma"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DecimalStyle::Comma => "comma",
            DecimalStyle::Dot => "dot",
        }
    }

    fn separators(self) -> (char, char) {
        match self {
            DecimalStyle::Comma => (',', '.'),
            DecimalStyle::Dot => ('.', ','),
        }
    }

    fn example(self) -> &'static str {
        match self {
            DecimalStyle::Comma => "1.234,56",
            DecimalStyle::Dot => "1,234.56",
        }
    }
}

/// Why a number text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    /// No number at all ("abc", "1e9").
    NotANumber,
    /// Digits, but separators that do not fit the mapping's decimal style: "12.0" under comma
    /// style would otherwise become 120.
    Separators(DecimalStyle),
    /// More digits than any price or quantity has.
    TooLong,
}

const NOT_A_NUMBER: Reason = Reason::fixed("not a number", "não é um número");
const NEGATIVE_PRICE: Reason = Reason::fixed("negative price", "preço negativo");

impl NumberError {
    pub fn reason(&self) -> Reason {
        match self {
            NumberError::NotANumber => NOT_A_NUMBER,
            NumberError::Separators(style) => {
                let (dec, group) = style.separators();
                let (name, example) = (style.as_str(), style.example());
                Reason::new(
                    format!(
                        "separators do not fit the mapping's decimal = \"{name}\" (numbers look \
                         like {example}: '{dec}' before the decimals, '{group}' only between \
                         groups of three digits)"
                    ),
                    format!(
                        "os separadores não combinam com decimal = \"{name}\" do mapeamento \
                         (números como {example}: '{dec}' antes dos decimais, '{group}' só entre \
                         grupos de três dígitos)"
                    ),
                )
            }
            NumberError::TooLong => Reason::fixed("number too long", "número longo demais"),
        }
    }
}

/// Parses a decimal written in the mapping's style. A grouping separator ('.' under comma
/// style, ',' under dot style, or a space) is accepted only between groups of three digits, so
/// a decimal point in the other style ("12.0", "1.5") is refused instead of read as 120 or 15.
/// An optional "R$" prefix and a leading sign are tolerated.
pub fn parse_decimal_text(text: &str, style: DecimalStyle) -> Result<Decimal, NumberError> {
    let t = text.trim();
    if t.len() > MAX_NUMBER_TEXT {
        return Err(NumberError::TooLong);
    }
    // "R$ -10", "-R$ 10" and "-10" are all minus ten.
    let t = t.strip_prefix("R$").unwrap_or(t).trim_start();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, t.strip_prefix('+').unwrap_or(t).trim_start()),
    };
    let t = t.strip_prefix("R$").unwrap_or(t).trim();
    if t.is_empty() || !t.chars().any(|c| c.is_ascii_digit()) {
        return Err(NumberError::NotANumber);
    }
    let (dec, group) = style.separators();
    let is_group = |c: char| c == group || c == ' ' || c == '\u{a0}';
    if t.chars()
        .any(|c| !(c.is_ascii_digit() || c == dec || is_group(c)))
    {
        return Err(NumberError::NotANumber);
    }
    let (int_part, frac) = match t.split_once(dec) {
        Some((i, f)) => (i, Some(f)),
        None => (t, None),
    };
    if let Some(f) = frac
        && (f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(NumberError::Separators(style));
    }
    let mut digits = String::with_capacity(t.len() + 1);
    if negative {
        digits.push('-');
    }
    if int_part.chars().any(is_group) {
        let mut groups = int_part.split(is_group);
        let first = groups.next().unwrap_or("");
        if first.is_empty() || first.len() > 3 {
            return Err(NumberError::Separators(style));
        }
        digits.push_str(first);
        for g in groups {
            if g.len() != 3 {
                return Err(NumberError::Separators(style));
            }
            digits.push_str(g);
        }
    } else if int_part.is_empty() {
        digits.push('0');
    } else {
        digits.push_str(int_part);
    }
    if let Some(f) = frac {
        digits.push('.');
        digits.push_str(f);
    }
    digits.parse::<Decimal>().map_err(|_| NumberError::TooLong)
}

/// A price cell: blank is `None` (leave the field alone, never 0); otherwise a decimal between
/// 0 and [`MAX_PRICE`].
pub fn parse_money(cell: &Cell<'_>, style: DecimalStyle) -> Result<Option<Decimal>, Reason> {
    let d = match cell {
        Cell::Empty => return Ok(None),
        Cell::Text(t) => parse_decimal_text(t, style).map_err(|e| e.reason())?,
        // A spreadsheet number: its shortest decimal text is the value the merchant typed.
        Cell::Number(n) if n.is_finite() => {
            if *n < 0.0 {
                return Err(NEGATIVE_PRICE);
            }
            if *n > 1e9 {
                return Err(price_too_large());
            }
            n.to_string().parse::<Decimal>().map_err(|_| NOT_A_NUMBER)?
        }
        _ => return Err(NOT_A_NUMBER),
    };
    if d < Decimal::ZERO {
        return Err(NEGATIVE_PRICE);
    }
    if d > MAX_PRICE {
        return Err(price_too_large());
    }
    Ok(Some(d))
}

fn price_too_large() -> Reason {
    Reason::new(
        format!("price above {MAX_PRICE}, the most a feed may set"),
        format!("preço acima de {MAX_PRICE}, o máximo que um arquivo pode definir"),
    )
}

/// Why a quantity cell was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityError {
    Empty,
    NotANumber,
    NotWhole,
    Negative,
    /// Separators that do not fit the decimal style (see [`NumberError::Separators`]).
    Separators(DecimalStyle),
    /// Above the job's `max_quantity`.
    TooLarge(i64),
}

impl QuantityError {
    pub fn reason(&self) -> Reason {
        match self {
            QuantityError::Empty => Reason::fixed("empty quantity", "quantidade vazia"),
            QuantityError::NotANumber => NOT_A_NUMBER,
            QuantityError::NotWhole => {
                Reason::fixed("not a whole number", "não é um número inteiro")
            }
            QuantityError::Negative => Reason::fixed("negative quantity", "quantidade negativa"),
            QuantityError::Separators(style) => NumberError::Separators(*style).reason(),
            QuantityError::TooLarge(max) => Reason::new(
                format!("quantity above the job's max_quantity ({max})"),
                format!("quantidade acima do max_quantity do job ({max})"),
            ),
        }
    }
}

/// A stock quantity: a whole number from 0 to `max` (the job's `max_quantity`). A spreadsheet
/// number is compared as a float first, so one too big for an integer is refused, never
/// saturated.
pub fn parse_quantity(
    cell: &Cell<'_>,
    style: DecimalStyle,
    max: i64,
) -> Result<i64, QuantityError> {
    let d = match cell {
        Cell::Empty => return Err(QuantityError::Empty),
        Cell::Text(t) => parse_decimal_text(t, style).map_err(|e| match e {
            NumberError::Separators(s) => QuantityError::Separators(s),
            NumberError::NotANumber => QuantityError::NotANumber,
            NumberError::TooLong => QuantityError::TooLarge(max),
        })?,
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
            // `max` is at most MAX_QUANTITY_CAP, exact in an f64, so the cast below is exact.
            if *n > max as f64 {
                return Err(QuantityError::TooLarge(max));
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
    match i64::try_from(d) {
        Ok(q) if q <= max => Ok(q),
        _ => Err(QuantityError::TooLarge(max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_table_names_export_columns_one_or_several() {
        let text = "key = \"K\"\n[stock]\nquantity = \"Q\"\n[export]\nquantity = \"saldo_atual\"\nsku_id = [\"codigo_sku\", \"id sku\"]\n";
        let mut errors = Vec::new();
        let m = parse(text, Path::new("m.toml"), &mut errors).expect("valid");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(m.export.quantity, ["saldo_atual"]);
        assert_eq!(m.export.sku_id, ["codigo_sku", "id sku"]);
        assert!(m.export.price_sale.is_empty());

        let bad = "key = \"K\"\n[stock]\nquantity = \"Q\"\n[export]\nquantity = \" \"\n";
        let mut errors = Vec::new();
        assert!(parse(bad, Path::new("m.toml"), &mut errors).is_none());
        assert!(errors[0].contains("[export] quantity"), "{errors:?}");
    }

    #[test]
    fn decimal_styles() {
        assert_eq!(
            parse_decimal_text("1.234,56", DecimalStyle::Comma),
            Ok(d("1234.56"))
        );
        assert_eq!(
            parse_decimal_text("1,234.56", DecimalStyle::Dot),
            Ok(d("1234.56"))
        );
        assert_eq!(
            parse_decimal_text("R$ 10,5", DecimalStyle::Comma),
            Ok(d("10.5"))
        );
        assert_eq!(
            parse_decimal_text("abc", DecimalStyle::Dot),
            Err(NumberError::NotANumber)
        );
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
        assert_eq!(parse_money(&Cell::Text("-1"), c), Err(NEGATIVE_PRICE));
        assert_eq!(parse_money(&Cell::Text("grátis"), c), Err(NOT_A_NUMBER));
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
        let parse_quantity = |cell: &Cell<'_>, style| parse_quantity(cell, style, 1_000_000);
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
    fn a_separator_in_the_wrong_style_is_refused_not_shifted() {
        let (c, p) = (DecimalStyle::Comma, DecimalStyle::Dot);
        let sep = |s| Err(NumberError::Separators(s));
        for bad in [
            "12.0", "1.5", "12.50", "1.2.3", "1.23,4", "12.3456", ".123", "1,2,3",
        ] {
            assert_eq!(parse_decimal_text(bad, c), sep(c), "{bad} under comma");
            let mirrored: String = bad
                .chars()
                .map(|ch| match ch {
                    '.' => ',',
                    ',' => '.',
                    o => o,
                })
                .collect();
            assert_eq!(
                parse_decimal_text(&mirrored, p),
                sep(p),
                "{mirrored} under dot"
            );
        }
        for (text, want) in [
            ("1.234", "1234"),
            ("1.234,56", "1234.56"),
            ("1.234.567", "1234567"),
            ("12,5", "12.5"),
            ("0,5", "0.5"),
            ("1 234,5", "1234.5"),
            ("-3", "-3"),
            ("R$ 1.000,00", "1000.00"),
        ] {
            assert_eq!(
                parse_decimal_text(text, c),
                Ok(d(want)),
                "{text} under comma"
            );
        }
        assert_eq!(parse_decimal_text("1,234.5", p), Ok(d("1234.5")));
        assert_eq!(parse_decimal_text("12.0", p), Ok(d("12.0")));
        assert_eq!(parse_decimal_text("1e9", p), Err(NumberError::NotANumber));
        assert_eq!(
            parse_decimal_text(&"9".repeat(35), p),
            Err(NumberError::TooLong)
        );
        let reason = NumberError::Separators(c).reason();
        assert!(reason.contains("decimal = \"comma\""), "{reason}");
        // Quantities and prices share the rule.
        assert_eq!(
            parse_quantity(&Cell::Text("12.0"), c, 1_000_000),
            Err(QuantityError::Separators(c))
        );
        assert!(parse_money(&Cell::Text("12.50"), c).is_err());
        assert_eq!(parse_money(&Cell::Text("12,50"), c), Ok(Some(d("12.50"))));
        // Spreadsheet numbers are numbers: no separators involved.
        assert_eq!(parse_money(&Cell::Number(12.5), c), Ok(Some(d("12.5"))));
        assert_eq!(parse_quantity(&Cell::Number(12.0), c, 1_000_000), Ok(12));
    }

    #[test]
    fn quantities_and_prices_are_bounded() {
        let c = DecimalStyle::Comma;
        let max = 1_000_000;
        assert_eq!(
            parse_quantity(&Cell::Number(9.3e18), c, max),
            Err(QuantityError::TooLarge(max)),
            "never saturated to i64::MAX"
        );
        assert_eq!(
            parse_quantity(&Cell::Number(1e9), c, max),
            Err(QuantityError::TooLarge(max))
        );
        assert_eq!(
            parse_quantity(&Cell::Text("1.000.000.000"), c, max),
            Err(QuantityError::TooLarge(max))
        );
        assert_eq!(
            parse_quantity(&Cell::Text(&"9".repeat(30)), c, max),
            Err(QuantityError::TooLarge(max))
        );
        assert_eq!(parse_quantity(&Cell::Number(1e6), c, max), Ok(1_000_000));
        assert_eq!(
            parse_quantity(&Cell::Text("1.000.000"), c, max),
            Ok(1_000_000)
        );
        assert!(
            QuantityError::TooLarge(max)
                .reason()
                .contains("max_quantity (1000000)")
        );
        assert!(parse_money(&Cell::Number(1e30), c).is_err());
        assert!(parse_money(&Cell::Number(f64::MAX), c).is_err());
        assert!(parse_money(&Cell::Text("1.000.000.000.000"), c).is_err());
        assert!(parse_money(&Cell::Text(&"9".repeat(40)), c).is_err());
        assert_eq!(
            parse_money(&Cell::Number(999_999_999.99), c),
            Ok(Some(d("999999999.99")))
        );
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
