//! Price jobs: exact decimals, price mappings and feeds of (sale, discount, cost) cells.

use rust_decimal::Decimal;
use yampi_sync::sim::Catalog;

use super::{Env, all_skus};

/// An exact decimal from its text.
pub fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A price mapping on the SKU code in column "Código", numbers in `decimal` style ("comma",
/// "dot"); `fields` is the body of its `[price]` table (a leading line break is dropped, so it
/// can start on the line after `r#"`).
pub fn price_mapping(decimal: &str, fields: &str) -> String {
    let fields = fields.strip_prefix('\n').unwrap_or(fields);
    format!("\nmatch = \"sku\"\nkey = \"Código\"\ndecimal = \"{decimal}\"\n\n[price]\n{fields}")
}

/// An env whose job is a price job with `mapping`.
pub async fn price_env(catalog: &Catalog, mapping: &str) -> Env {
    let mut env = Env::start(catalog.clone()).await;
    env.kind = "price".into();
    env.mapping = mapping.into();
    env
}

/// A price feed, one row per SKU of `catalog`: `f(sku index)` gives the (sale, discount, cost)
/// cells as written in the file.
pub fn price_feed(catalog: &Catalog, f: impl Fn(usize) -> (String, String, String)) -> String {
    let mut s = String::from("Código;Preço;Promoção;Custo\n");
    for (i, (_, _, code)) in all_skus(catalog).iter().enumerate() {
        let (a, b, c) = f(i);
        s.push_str(&format!("{code};{a};{b};{c}\n"));
    }
    s
}
