//! The simulated store's catalogue: logistics stocks, products, SKUs and their SKU-stock rows,
//! the deterministic sample catalogue, and the JSON shapes Yampi renders these records in.

use chrono::{Duration as ChronoDuration, NaiveDate, NaiveDateTime, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};

/// Time zone Yampi reports every date in.
pub(super) const STORE_TZ: &str = "America/Sao_Paulo";

/// Everything the simulated store holds.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub stocks: Vec<LogisticsStock>,
    pub products: Vec<Product>,
}

/// A logistics stock (`/logistics/stocks`): a warehouse or stock pool SKUs are linked to.
#[derive(Clone, Debug)]
pub struct LogisticsStock {
    pub id: u64,
    pub name: String,
    pub warehouse_id: u64,
    pub priority: u32,
    pub delivery_days: u32,
}

#[derive(Clone, Debug)]
pub struct Product {
    pub id: u64,
    pub name: String,
    pub skus: Vec<Sku>,
    /// For batch-edit restrictions (`brands_ids`, `categories_ids`, `collections_ids`).
    pub brand_id: Option<u64>,
    pub category_ids: Vec<u64>,
    pub collection_ids: Vec<u64>,
    pub active: bool,
}

#[derive(Clone, Debug)]
pub struct Sku {
    pub id: u64,
    pub product_id: u64,
    pub sku: String,
    pub erp_id: Option<String>,
    pub barcode: Option<String>,
    pub title: String,
    pub price_cost: Decimal,
    pub price_sale: Decimal,
    pub price_discount: Decimal,
    pub quantity_managed: bool,
    pub blocked_sale: bool,
    /// One row per logistics stock the SKU is linked to.
    pub stocks: Vec<SkuStock>,
    /// Store-local time (America/Sao_Paulo), whole seconds.
    pub updated_at: NaiveDateTime,
}

/// A SKU-stock row: `row_id` is the id Yampi uses in `/catalog/skus/{sku}/stocks/{id}`.
#[derive(Clone, Debug)]
pub struct SkuStock {
    pub row_id: u64,
    pub stock_id: u64,
    pub quantity: i64,
    pub min_quantity: i64,
}

impl Sku {
    /// `total_in_stock` is documented as the sum over all the SKU's stocks.
    pub fn total_in_stock(&self) -> i64 {
        self.stocks.iter().map(|s| s.quantity).sum()
    }
}

/// Builds a deterministic catalogue.
///
/// Two logistics stocks (1 "Loja", 2 "CD"); product ids from 1000, SKU ids from 50000 (consecutive
/// across products); SKU code `SKU-{product id:05}-{n}` with `n` from 1; erp_id `ERP{sku id}`;
/// barcode `789{sku id:010}`; prices with cents; every SKU linked to both stocks with a positive
/// quantity; `updated_at` spread 17 minutes apart from 2025-01-06 09:00:00 (store time).
pub fn sample_catalog(products: usize, skus_per_product: usize, seed: u64) -> Catalog {
    const SIZES: [&str; 5] = ["P", "M", "G", "GG", "XG"];
    let mut rng = StdRng::seed_from_u64(seed);
    let stocks = vec![
        LogisticsStock {
            id: 1,
            name: "Loja".to_owned(),
            warehouse_id: 1,
            priority: 1,
            delivery_days: 1,
        },
        LogisticsStock {
            id: 2,
            name: "CD".to_owned(),
            warehouse_id: 2,
            priority: 2,
            delivery_days: 3,
        },
    ];
    let base = NaiveDate::from_ymd_opt(2025, 1, 6)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .expect("valid constant date");
    let mut sku_id = 50_000u64;
    let mut row_id = 80_000u64;
    let mut seq = 0i64;
    let mut out = Vec::with_capacity(products);
    for p in 0..products {
        let product_id = 1000 + p as u64;
        let name = format!("Produto {product_id}");
        let mut skus = Vec::with_capacity(skus_per_product);
        for n in 1..=skus_per_product {
            let cost: i64 = rng.random_range(500..=20_000);
            let sale = cost * rng.random_range(150..=250) / 100;
            let discount = if rng.random_bool(0.25) {
                sale * 90 / 100
            } else {
                sale
            };
            let size = SIZES
                .get(n - 1)
                .map(|s| (*s).to_owned())
                .unwrap_or_else(|| format!("V{n}"));
            skus.push(Sku {
                id: sku_id,
                product_id,
                sku: format!("SKU-{product_id:05}-{n}"),
                erp_id: Some(format!("ERP{sku_id}")),
                barcode: Some(format!("789{sku_id:010}")),
                title: format!("{name} {size}"),
                price_cost: Decimal::new(cost, 2),
                price_sale: Decimal::new(sale, 2),
                price_discount: Decimal::new(discount, 2),
                quantity_managed: true,
                blocked_sale: false,
                stocks: vec![
                    SkuStock {
                        row_id,
                        stock_id: 1,
                        quantity: rng.random_range(1..=50),
                        min_quantity: rng.random_range(0..=2),
                    },
                    SkuStock {
                        row_id: row_id + 1,
                        stock_id: 2,
                        quantity: rng.random_range(1..=200),
                        min_quantity: 0,
                    },
                ],
                updated_at: base + ChronoDuration::minutes(seq * 17),
            });
            sku_id += 1;
            row_id += 2;
            seq += 1;
        }
        let index = out.len() as u64;
        out.push(Product {
            id: product_id,
            name,
            skus,
            brand_id: Some(1 + index % 4),
            category_ids: vec![10 + index % 3],
            collection_ids: Vec::new(),
            active: true,
        });
    }
    Catalog {
        stocks,
        products: out,
    }
}

/// Current store-local time, truncated to whole seconds as Yampi's database stores it.
pub(super) fn store_now() -> NaiveDateTime {
    let now = Utc::now()
        .with_timezone(&chrono_tz::America::Sao_Paulo)
        .naive_local();
    now.with_nanosecond(0).unwrap_or(now)
}

/// Yampi's date object.
pub(super) fn date_json(at: NaiveDateTime) -> Value {
    json!({
        "date": at.format("%Y-%m-%d %H:%M:%S").to_string(),
        "timezone_type": 3,
        "timezone": STORE_TZ,
    })
}

/// Prices are JSON numbers rounded to cents (PHP's json_encode prints 12.3 for 12.30).
pub(super) fn money(d: Decimal) -> Value {
    json!(d.round_dp(2).to_f64().unwrap_or(0.0))
}

/// The SKU object of `GET /catalog/skus` (the subset of documented fields the store models).
pub(super) fn sku_json(sku: &Sku, created_at: NaiveDateTime) -> Value {
    json!({
        "id": sku.id,
        "product_id": sku.product_id,
        "sku": sku.sku,
        "erp_id": sku.erp_id,
        "barcode": sku.barcode,
        "title": sku.title,
        "variations": variations_json(sku),
        "blocked_sale": sku.blocked_sale,
        "price_cost": money(sku.price_cost),
        "price_sale": money(sku.price_sale),
        "price_discount": money(sku.price_discount),
        "quantity_managed": sku.quantity_managed,
        "total_in_stock": sku.total_in_stock(),
        "created_at": date_json(created_at),
        "updated_at": date_json(sku.updated_at),
    })
}

/// The SKU's variation values as the docs show them (`[{"name", "value", "value_id"}]`): the
/// sample catalogue's titles end in the size.
pub(super) fn variations_json(sku: &Sku) -> Value {
    match sku.title.rsplit_once(' ') {
        Some((_, size)) => json!([{
            "name": "Tamanho",
            "value": size,
            "value_id": 400 + sku.id % 100,
        }]),
        None => json!([]),
    }
}

/// Product object; `skus` is only present with `include=skus`.
pub(super) fn product_json(product: &Product, skus: Option<Vec<Value>>) -> Value {
    let mut v = json!({
        "id": product.id,
        "name": product.name,
        "brand_id": product.brand_id,
        "active": product.active,
    });
    if let Some(skus) = skus {
        v["skus"] = json!({ "data": skus });
    }
    v
}

/// Logistics stock object of `/logistics/stocks`.
pub(super) fn logistics_stock_json(stock: &LogisticsStock) -> Value {
    json!({
        "id": stock.id,
        "warehouse_id": stock.warehouse_id,
        "priority": stock.priority,
        "auto_refill": false,
        "name": stock.name,
        "delivery_days": stock.delivery_days,
    })
}

/// Row of `GET /catalog/skus/{id}/stocks`.
pub(super) fn sku_stock_row_json(row: &SkuStock) -> Value {
    json!({
        "id": row.row_id,
        "stock_id": row.stock_id,
        "quantity": row.quantity,
        "min_quantity": row.min_quantity,
    })
}

/// Item of `GET /catalog/products/{id}/stocks` (one per SKU, stock rows with their logistics stock).
pub(super) fn product_stock_item_json(sku: &Sku, stocks: &[LogisticsStock]) -> Value {
    let rows: Vec<Value> = sku
        .stocks
        .iter()
        .map(|row| {
            let stock = stocks.iter().find(|s| s.id == row.stock_id);
            json!({
                "stock": {
                    "id": row.stock_id,
                    "name": stock.map(|s| s.name.as_str()),
                    "warehouse_id": stock.map(|s| s.warehouse_id),
                    "delivery_days": stock.map(|s| s.delivery_days),
                    "priority": stock.map(|s| s.priority),
                },
                "sku_stock_id": row.row_id,
                "quantity": row.quantity,
                "min_quantity": row.min_quantity,
                "total_reserved": 0,
                "orders_reservations": [],
            })
        })
        .collect();
    json!({
        "id": sku.id,
        "sku": sku.sku,
        "name": sku.title,
        "quantity_managed": sku.quantity_managed,
        "total_in_stock": sku.total_in_stock(),
        "blocked_sale": sku.blocked_sale,
        "stocks": rows,
    })
}
