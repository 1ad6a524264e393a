//! API data shapes, read tolerantly.
//!
//! The Yampi docs disagree with themselves on types (docs/yampi-api.md, Pagination and SKUs): pagination numbers come
//! as integers or numeric strings, missing links as `""` or absent, `erp_id` as a string or an
//! integer, dates as `{"date": ...}` objects. Everything here is parsed from `serde_json::Value`
//! by small helpers that accept every documented variant instead of derived structs that accept one.
//! The shapes the rest of the crate shares (`IndexedSku`) are defined in `crate::model`.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::model::IndexedSku;

/// A SKU of `GET /catalog/skus` (or `GET /catalog/skus/{id}`), as the index keeps it.
pub fn sku_from_api(v: &Value) -> Option<IndexedSku> {
    Some(IndexedSku {
        id: as_u64(v.get("id")?)?,
        product_id: v.get("product_id").and_then(as_u64).unwrap_or(0),
        sku: v.get("sku").and_then(as_text).unwrap_or_default(),
        erp_id: v.get("erp_id").and_then(as_text).filter(|s| !s.is_empty()),
        barcode: v.get("barcode").and_then(as_text).filter(|s| !s.is_empty()),
        price_cost: v.get("price_cost").and_then(as_decimal),
        price_sale: v.get("price_sale").and_then(as_decimal),
        price_discount: v.get("price_discount").and_then(as_decimal),
        total_in_stock: v.get("total_in_stock").and_then(as_i64),
        quantity_managed: v.get("quantity_managed").and_then(Value::as_bool),
        updated_at: v.get("updated_at").and_then(as_date),
        title: v
            .get("title")
            .and_then(as_text)
            .map(|t| bounded(t.trim()))
            .filter(|t| !t.is_empty()),
        variation: variations_text(v.get("variations")).map(|t| bounded(&t)),
    })
}

/// Names are for reports: a store's odd 1 MB title is cut, not kept whole in the index.
fn bounded(text: &str) -> String {
    const MAX_NAME_CHARS: usize = 200;
    text.chars().take(MAX_NAME_CHARS).collect()
}

/// A SKU's `variations` (`[{"name": "Cor", "value": "Amarelo"}, …]`, or wrapped in `data`) as
/// one line: "Cor: Amarelo, Tamanho: P".
fn variations_text(v: Option<&Value>) -> Option<String> {
    let list = match v? {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => o.get("data")?.as_array()?.as_slice(),
        _ => return None,
    };
    let parts: Vec<String> = list
        .iter()
        .filter_map(|x| {
            let value = x.get("value").and_then(as_text)?;
            Some(match x.get("name").and_then(as_text) {
                Some(name) if !name.is_empty() => format!("{name}: {value}"),
                _ => value,
            })
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogisticsStock {
    pub id: u64,
    pub name: String,
    pub priority: i64,
}

impl LogisticsStock {
    pub fn from_api(v: &Value) -> Option<LogisticsStock> {
        Some(LogisticsStock {
            id: as_u64(v.get("id")?)?,
            name: v.get("name").and_then(as_text).unwrap_or_default(),
            priority: v.get("priority").and_then(as_i64).unwrap_or(i64::MAX),
        })
    }
}

/// One stock row of `GET /catalog/products/{id}/stocks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveStock {
    pub sku_id: u64,
    pub stock_id: u64,
    pub quantity: i64,
    pub min_quantity: i64,
}

pub fn live_stocks(data: &[Value]) -> Vec<LiveStock> {
    let mut out = Vec::new();
    for sku in data {
        let Some(sku_id) = sku.get("id").and_then(as_u64) else {
            continue;
        };
        let rows = match sku.get("stocks") {
            Some(Value::Array(a)) => a.as_slice(),
            Some(Value::Object(o)) => match o.get("data") {
                Some(Value::Array(a)) => a.as_slice(),
                _ => &[],
            },
            _ => &[],
        };
        for r in rows {
            let stock_id = r
                .get("stock")
                .and_then(|s| s.get("data").unwrap_or(s).get("id"))
                .and_then(as_u64)
                .or_else(|| r.get("stock_id").and_then(as_u64));
            if let Some(stock_id) = stock_id {
                out.push(LiveStock {
                    sku_id,
                    stock_id,
                    quantity: r.get("quantity").and_then(as_i64).unwrap_or(0),
                    min_quantity: r.get("min_quantity").and_then(as_i64).unwrap_or(0),
                });
            }
        }
    }
    out
}

/// `meta.pagination`, whatever the number types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pagination {
    pub total: Option<u64>,
    pub per_page: Option<u64>,
    pub current_page: Option<u64>,
    pub total_pages: Option<u64>,
    pub next: Option<String>,
}

impl Pagination {
    pub fn from_body(body: &Value) -> Pagination {
        let Some(p) = body.get("meta").and_then(|m| m.get("pagination")) else {
            return Pagination::default();
        };
        let link = |name: &str| {
            p.get("links")
                .and_then(|l| l.get(name))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Pagination {
            total: p.get("total").and_then(as_u64),
            per_page: p.get("per_page").and_then(as_u64),
            current_page: p.get("current_page").and_then(as_u64),
            total_pages: p.get("total_pages").and_then(as_u64),
            next: link("next"),
        }
    }

    /// Whether a page after `page` exists: a next link, or a page count above it.
    pub fn has_more(&self, page: u64) -> bool {
        if self.next.is_some() {
            return true;
        }
        match (self.current_page.unwrap_or(page), self.total_pages) {
            (cur, Some(total)) => cur < total,
            _ => false,
        }
    }
}

pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Money: JSON numbers are read through their decimal text, never through a binary float.
pub fn as_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => n
            .to_string()
            .parse()
            .ok()
            .or_else(|| Decimal::from_scientific(&n.to_string()).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_date(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("date").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pagination_accepts_numbers_strings_and_empty_links() {
        let ints = json!({"meta": {"pagination": {"total": 47, "per_page": 10, "current_page": 1, "total_pages": 5, "links": {"next": "http://x?page=2"}}}});
        let p = Pagination::from_body(&ints);
        assert_eq!(p.total_pages, Some(5));
        assert!(p.has_more(1));
        let strs = json!({"meta": {"pagination": {"total": "10", "count": "10", "per_page": "10", "current_page": "1", "total_pages": "1", "links": {"previous": "", "next": ""}}}});
        let p = Pagination::from_body(&strs);
        assert_eq!(p.total, Some(10));
        assert_eq!(p.next, None);
        assert!(!p.has_more(1));
        let strs2 = json!({"meta": {"pagination": {"current_page": "2", "total_pages": "3", "links": {"next": ""}}}});
        assert!(Pagination::from_body(&strs2).has_more(2));
    }

    #[test]
    fn sku_fields_tolerate_types() {
        let v = json!({"id": "12", "product_id": 3, "sku": " A-1 ", "erp_id": 77, "barcode": "", "price_sale": 10.9, "total_in_stock": "4",
            "updated_at": {"date": "2024-01-02 03:04:05", "timezone_type": 3, "timezone": "America/Sao_Paulo"}});
        let s = sku_from_api(&v).unwrap();
        assert_eq!((s.id, s.product_id, s.sku.as_str()), (12, 3, "A-1"));
        assert_eq!(s.erp_id.as_deref(), Some("77"));
        assert_eq!(s.barcode, None);
        assert_eq!(s.price_sale, Some("10.9".parse().unwrap()));
        assert_eq!(s.total_in_stock, Some(4));
        assert_eq!(s.updated_at.as_deref(), Some("2024-01-02 03:04:05"));
    }
}
