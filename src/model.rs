//! The shared model: plain data that the API client, the state store and the pipeline all pass
//! around. A leaf module: it uses nothing from the crate, so any module may use it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What the SKU index keeps about each store SKU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedSku {
    pub id: u64,
    pub product_id: u64,
    pub sku: String,
    pub erp_id: Option<String>,
    pub barcode: Option<String>,
    pub price_cost: Option<Decimal>,
    pub price_sale: Option<Decimal>,
    pub price_discount: Option<Decimal>,
    pub total_in_stock: Option<i64>,
    pub quantity_managed: Option<bool>,
    pub updated_at: Option<String>,
    /// The SKU's title as the store shows it (product name and variation), for reports.
    /// Absent from index entries stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The variation values ("Tamanho: P, Cor: Azul"), for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variation: Option<String>,
}

/// The last stock value this job pushed successfully for one SKU in one logistics stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    pub quantity: i64,
    pub min_quantity: i64,
}

/// One SKU × stock value in a planned `stocks/sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockEntry {
    pub sku_id: u64,
    pub stock_id: u64,
    pub quantity: i64,
    pub min_quantity: i64,
}

/// Prices of one SKU, per field; `None` = not set / leave alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceFields {
    pub sale: Option<Decimal>,
    pub discount: Option<Decimal>,
    pub cost: Option<Decimal>,
}

impl PriceFields {
    /// Takes every field `other` sets.
    pub fn merge(&mut self, other: &PriceFields) {
        self.sale = other.sale.or(self.sale);
        self.discount = other.discount.or(self.discount);
        self.cost = other.cost.or(self.cost);
    }

    /// Clears every field `other` sets.
    pub fn forget(&mut self, other: &PriceFields) {
        if other.sale.is_some() {
            self.sale = None;
        }
        if other.discount.is_some() {
            self.discount = None;
        }
        if other.cost.is_some() {
            self.cost = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_stored_before_names_were_kept_still_load() {
        let old = r#"{"id":7,"product_id":1,"sku":"A-1","erp_id":null,"barcode":null,"price_cost":"1.00","price_sale":"2.00","price_discount":null,"total_in_stock":3,"quantity_managed":true,"updated_at":null}"#;
        let sku: IndexedSku = serde_json::from_str(old).expect("an old entry loads");
        assert_eq!((sku.title, sku.variation), (None, None));
        let mut named = IndexedSku {
            title: Some("Camiseta P".into()),
            variation: Some("Tamanho: P".into()),
            ..serde_json::from_str(old).unwrap()
        };
        let back: IndexedSku =
            serde_json::from_str(&serde_json::to_string(&named).unwrap()).unwrap();
        assert_eq!(back, named);
        named.title = None;
        assert!(!serde_json::to_string(&named).unwrap().contains("title"));
    }
}
