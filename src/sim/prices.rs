//! Price endpoints: `PUT /catalog/skus/{id}`, `PUT /catalog/products/{id}/skus/batch-update-skus`
//! with its progress endpoint, and `PUT /catalog/products/batch-edit` (docs/yampi-api.md, Prices).
//!
//! A batch update above the threshold, or one that arrives while an earlier batch of the same
//! product is still pending, is asynchronous: it is answered `queued`, kept in its product's queue
//! and applied, in the order received, when its delay has passed. The progress endpoint has no
//! batch id: it reports the most recent batch of the product, and says `finished` only once that
//! batch has really been applied. The store runs synchronously under one lock, so due batches are
//! applied lazily (`settle`) at the start of every request and every accessor, which is
//! equivalent to a background worker for anything that can observe the store.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::catalog::{date_json, sku_json, store_now};
use super::price_state::{Batch, Prices};
use super::store::State;

type Errors = BTreeMap<String, Vec<String>>;

fn add(errors: &mut Errors, key: &str, msg: String) {
    errors.entry(key.to_string()).or_default().push(msg);
}

/// `product_id` is required and must be the SKU's (or the route's) product.
fn require_product_id(body: &Value, product_id: u64, errors: &mut Errors) {
    match body.get("product_id") {
        None | Some(Value::Null) => add(
            errors,
            "product_id",
            "The product id field is required.".into(),
        ),
        Some(v) if v.as_u64() != Some(product_id) => add(
            errors,
            "product_id",
            "The selected product id is invalid.".into(),
        ),
        Some(_) => {}
    }
}

/// A money field: a JSON number or numeric string ≥ 0, rounded to cents.
fn money_field(body: &Value, key: &str, errors: &mut Errors) -> Option<Decimal> {
    let v = body.get(key)?;
    let d = match v {
        Value::Null => return None,
        Value::Number(n) => n
            .to_string()
            .parse::<Decimal>()
            .ok()
            .or_else(|| Decimal::from_scientific(&n.to_string()).ok()),
        Value::String(s) => s.trim().parse::<Decimal>().ok(),
        _ => None,
    };
    match d {
        Some(d) if d >= Decimal::ZERO => Some(d.round_dp(2)),
        Some(_) => {
            add(
                errors,
                key,
                format!("The {} must be at least 0.", key.replace('_', " ")),
            );
            None
        }
        None => {
            add(
                errors,
                key,
                format!("The {} must be a number.", key.replace('_', " ")),
            );
            None
        }
    }
}

fn apply(st: &mut State, sku_id: u64, p: Prices, now: NaiveDateTime) {
    if let Some(sku) = st.sku_mut(sku_id) {
        if let Some(c) = p.cost {
            sku.price_cost = c;
        }
        if let Some(s) = p.sale {
            sku.price_sale = s;
        }
        if let Some(d) = p.discount {
            sku.price_discount = d;
        }
        sku.updated_at = now;
    }
}

/// Applies asynchronous batches whose time has come, each product's in the order received (a
/// batch never overtakes an earlier one of its product).
pub(super) fn settle(st: &mut State, now: Instant) {
    let mut due: Vec<(u64, usize)> = Vec::new();
    for (product, queue) in &st.prices.batches {
        for (i, b) in queue.iter().enumerate() {
            if b.finished_at.is_some() {
                continue;
            }
            if b.apply_at > now {
                break;
            }
            due.push((*product, i));
        }
    }
    due.sort_unstable();
    for (product, i) in due {
        let Some(batch) = st
            .prices
            .batches
            .get(&product)
            .and_then(|q| q.get(i))
            .cloned()
        else {
            continue;
        };
        let stamp = store_now();
        for id in &batch.sku_ids {
            apply(st, *id, batch.values, stamp);
        }
        if let Some(b) = st
            .prices
            .batches
            .get_mut(&product)
            .and_then(|q| q.get_mut(i))
        {
            b.finished_at = Some(stamp);
        }
    }
    for queue in st.prices.batches.values_mut() {
        while queue.len() > 1 && queue[0].finished_at.is_some() {
            queue.remove(0);
        }
    }
}

/// The test hook's admin edits, made as the next price write arrives.
fn admin_edits(st: &mut State) {
    let edits = std::mem::take(&mut st.prices.admin_sale_before_next_write);
    let stamp = store_now();
    for (sku, sale) in edits {
        apply(
            st,
            sku,
            Prices {
                sale: Some(sale),
                ..Prices::default()
            },
            stamp,
        );
    }
}

/// `PUT /catalog/skus/{id}`: `product_id` and `price_cost` are required even for a partial
/// update (as the community reports); omitted fields keep their value.
pub(super) fn put_sku(st: &mut State, sku_id: u64, raw: &[u8]) -> Result<(u16, Value), Errors> {
    admin_edits(st);
    let Some(sku) = st.sku(sku_id) else {
        return Ok((404, json!({ "message": "Not Found." })));
    };
    let product_id = sku.product_id;
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let mut errors = Errors::new();
    require_product_id(&body, product_id, &mut errors);
    if body.get("price_cost").is_none_or(Value::is_null) {
        add(
            &mut errors,
            "price_cost",
            "The price cost field is required.".into(),
        );
    }
    let prices = Prices {
        cost: money_field(&body, "price_cost", &mut errors),
        sale: money_field(&body, "price_sale", &mut errors),
        discount: money_field(&body, "price_discount", &mut errors),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    apply(st, sku_id, prices, store_now());
    let sku = st.sku(sku_id).expect("exists");
    Ok((200, json!({ "data": sku_json(sku, st.created_at(sku)) })))
}

/// `PUT /catalog/products/{id}/skus/batch-update-skus`: the same values on every selected SKU.
pub(super) fn batch_update(
    st: &mut State,
    product_id: u64,
    raw: &[u8],
) -> Result<(u16, Value), Errors> {
    admin_edits(st);
    let Some(product) = st.product(product_id) else {
        return Ok((404, json!({ "message": "Not Found." })));
    };
    let own: Vec<u64> = product.skus.iter().map(|s| s.id).collect();
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let mut errors = Errors::new();
    require_product_id(&body, product_id, &mut errors);
    let update_all = body
        .get("update_all")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let selected: Vec<u64> = if update_all {
        own.clone()
    } else {
        match body.get("skus_id") {
            Some(Value::Array(ids)) if !ids.is_empty() => {
                let mut out = Vec::new();
                for (i, v) in ids.iter().enumerate() {
                    match v.as_u64().filter(|id| own.contains(id)) {
                        Some(id) => out.push(id),
                        None => add(
                            &mut errors,
                            &format!("skus_id.{i}"),
                            format!("The selected skus_id.{i} is invalid."),
                        ),
                    }
                }
                out
            }
            _ => {
                add(
                    &mut errors,
                    "skus_id",
                    "The skus id field is required when update all is not present.".into(),
                );
                Vec::new()
            }
        }
    };
    let values = Prices {
        cost: money_field(&body, "price_cost", &mut errors),
        sale: money_field(&body, "price_sale", &mut errors),
        discount: money_field(&body, "price_discount", &mut errors),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let now = Instant::now();
    let started = store_now();
    let (threshold, delay) = (st.prices.async_threshold, st.prices.async_delay);
    let queue = st.prices.batches.entry(product_id).or_default();
    let pending_until = queue
        .iter()
        .filter(|b| b.finished_at.is_none())
        .map(|b| b.apply_at)
        .max();
    if pending_until.is_none() && selected.len() <= threshold {
        queue.push(Batch {
            sku_ids: selected.clone(),
            values,
            queued_at: now,
            apply_at: now,
            started_at: started,
            finished_at: Some(started),
        });
        for id in &selected {
            apply(st, *id, values, started);
        }
        return Ok((
            200,
            json!({ "data": { "type": "sync", "updated": selected.len(), "status": "finished" } }),
        ));
    }
    // Queued behind the product's pending batches: applied after them, never before.
    let apply_at = pending_until.map_or(now, |t| t.max(now)) + delay;
    queue.push(Batch {
        sku_ids: selected,
        values,
        queued_at: now,
        apply_at,
        started_at: started,
        finished_at: None,
    });
    if pending_until.is_some() {
        st.prices.queued_behind += 1;
    }
    Ok((
        200,
        json!({ "data": { "type": "async", "updated": 0, "status": "queued" } }),
    ))
}

/// `GET /catalog/products/{product}/skus/batch-update-skus-progress`: the product's most recent
/// batch. A batch applies all at once, so it has processed nothing until it is finished.
pub(super) fn batch_progress(st: &State, product_id: u64) -> (u16, Value) {
    let Some(queue) = st.prices.batches.get(&product_id) else {
        return (404, json!({ "message": "Not Found." }));
    };
    let Some(b) = queue.last() else {
        return (404, json!({ "message": "Not Found." }));
    };
    let now = Instant::now();
    let total = b.sku_ids.len();
    let waiting_for_earlier = queue.len() > 1 && queue[queue.len() - 2].finished_at.is_none();
    let (status, processed) = match b.finished_at {
        Some(_) => ("finished", total),
        None if waiting_for_earlier || now < b.queued_at + (b.apply_at - b.queued_at) / 2 => {
            ("queued", 0)
        }
        None => ("processing", 0),
    };
    let updated = b.finished_at.unwrap_or(b.started_at);
    (
        200,
        json!({ "data": {
            "total": total,
            "processed": processed,
            "status": status,
            "started_at": date_json(b.started_at),
            "updated_at": date_json(updated),
            "finished_at": b.finished_at.map(date_json),
        }}),
    )
}

/// Whether a product is in one restriction list's id.
type Selects = fn(&super::catalog::Product, u64) -> bool;

const LISTS: [(&str, Selects); 4] = [
    ("products_ids", |p, id| p.id == id),
    ("brands_ids", |p, id| p.brand_id == Some(id)),
    ("collections_ids", |p, id| p.collection_ids.contains(&id)),
    ("categories_ids", |p, id| p.category_ids.contains(&id)),
];

/// `PUT /catalog/products/batch-edit`: a relative change, applied again on every call.
pub(super) fn batch_edit(st: &mut State, raw: &[u8]) -> Result<(u16, Value), Errors> {
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let mut errors = Errors::new();
    let attribute = body.get("attribute").and_then(Value::as_str).unwrap_or("");
    if !["active", "price_sale", "price_discount", "all_prices"].contains(&attribute) {
        add(
            &mut errors,
            "attribute",
            "The selected attribute is invalid.".into(),
        );
    }
    let is_price = attribute != "active";
    let op = body.get("operation_type").and_then(Value::as_str);
    let vt = body.get("value_type").and_then(Value::as_str);
    if is_price {
        if !matches!(op, Some("increment" | "decrement")) {
            add(
                &mut errors,
                "operation_type",
                "The operation type field is required when attribute is a price.".into(),
            );
        }
        if !matches!(vt, Some("percent" | "fixed")) {
            add(
                &mut errors,
                "value_type",
                "The value type field is required when attribute is a price.".into(),
            );
        }
    }
    let value = body.get("value");
    let amount: Option<Decimal> = value.and_then(|v| match v {
        Value::Number(n) => n.to_string().parse().ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    if is_price && amount.is_none_or(|a| a <= Decimal::ZERO) {
        add(
            &mut errors,
            "value",
            "The value must be a number greater than 0.".into(),
        );
    }
    if !is_price && value.and_then(Value::as_bool).is_none() {
        add(
            &mut errors,
            "value",
            "The value field must be true or false.".into(),
        );
    }
    let restrictions = body.get("restrictions");
    if !restrictions.is_some_and(Value::is_object) {
        add(
            &mut errors,
            "restrictions",
            "The restrictions field is required.".into(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let r = restrictions.expect("validated");
    let ids = |side: &str, list: &str| -> Vec<u64> {
        r.get(side)
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    let has_include = r
        .get("include")
        .is_some_and(|i| i.as_object().is_some_and(|o| !o.is_empty()));
    let selected: Vec<u64> = st
        .catalog
        .products
        .iter()
        .filter(|p| {
            let included = !has_include
                || LISTS
                    .iter()
                    .any(|(name, hit)| ids("include", name).iter().any(|id| hit(p, *id)));
            let excluded = LISTS
                .iter()
                .any(|(name, hit)| ids("exclude", name).iter().any(|id| hit(p, *id)));
            included && !excluded
        })
        .map(|p| p.id)
        .collect();
    let now = store_now();
    let change = |price: Decimal| -> Decimal {
        if price.is_zero() {
            return price;
        }
        let a = amount.unwrap_or_default();
        let delta = if vt == Some("percent") {
            price * a / Decimal::from(100)
        } else {
            a
        };
        let new = if op == Some("increment") {
            price + delta
        } else {
            price - delta
        };
        new.max(Decimal::ZERO).round_dp(2)
    };
    for product in st
        .catalog
        .products
        .iter_mut()
        .filter(|p| selected.contains(&p.id))
    {
        if !is_price {
            product.active = value.and_then(Value::as_bool).unwrap_or(product.active);
            continue;
        }
        for sku in &mut product.skus {
            if matches!(attribute, "price_sale" | "all_prices") {
                sku.price_sale = change(sku.price_sale);
            }
            if matches!(attribute, "price_discount" | "all_prices") {
                sku.price_discount = change(sku.price_discount);
            }
            sku.updated_at = now;
        }
    }
    st.prices.edits_applied += 1;
    Ok((
        200,
        json!({ "message": "Produtos atualizados com sucesso" }),
    ))
}
