//! The stock plan: feed × SKU index × last pushed values → one `stocks/sync` per product.
//!
//! Pure. A change is a value that differs from what this job last pushed successfully, not from
//! the store's live value (sales the ERP has not seen yet are not undone), unless `full`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::index::KeyMatch;
use crate::mapping::{MatchField, Missing, StockMapping, StockTarget, normalize_key};
use crate::model::{IndexedSku, Pushed, StockEntry};
use crate::report::{ChangeRow, Field, OldFrom, Outcome, Value};

use super::feed::StockFeed;

#[derive(Debug, Default)]
pub struct StockPlan {
    /// Product id → the entries of its one `stocks/sync` request.
    pub products: BTreeMap<u64, Vec<StockEntry>>,
    pub changes: Vec<ChangeRow>,
    /// SKUs with a desired value (matched, plus those zeroed by `missing = "zero"`).
    pub matched_skus: u64,
    /// SKUs whose total stock would drop from above zero to zero.
    pub zeroed_skus: u64,
}

impl StockPlan {
    pub fn entries(&self) -> usize {
        self.products.values().map(Vec::len).sum()
    }
}

pub struct PlanInput<'a> {
    pub feed: &'a StockFeed,
    pub skus: &'a HashMap<u64, IndexedSku>,
    pub lookup: &'a HashMap<String, KeyMatch>,
    pub match_field: MatchField,
    pub pushed: &'a HashMap<(u64, u64), Pushed>,
    pub mapping: &'a StockMapping,
    /// The store's default stock id, for `quantity = "COLUMN"`.
    pub default_stock: u64,
    /// The store has one logistics stock: a SKU's `total_in_stock` (SKU index) is its quantity
    /// there, the store's value a first run's report shows as "old".
    pub single_store_stock: bool,
    /// (SKU id, stock id) → what the store held there, read before the job's first push to a
    /// stock of a store with several: the "old" of a value nothing was pushed for.
    pub store: &'a HashMap<(u64, u64), StoreHeld>,
    pub full: bool,
}

/// A SKU's quantity and min quantity in one stock, as the store's stock export gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreHeld {
    pub quantity: i64,
    pub min_quantity: Option<i64>,
}

/// What one SKU should hold: (key as written, quantity per stock id, min quantity, the value
/// cells' texts as read).
type Desired<'a> = (
    Arc<str>,
    Vec<(u64, i64)>,
    i64,
    Option<&'a super::feed::FeedRow<super::feed::StockValues>>,
);

/// One rule applied to a value, as `explain` shows it: the rule, what it did, the value after it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleStep {
    pub rule: String,
    pub detail: String,
    pub value: String,
}

/// Records a step when a caller asked for them (`explain`); costs nothing otherwise.
pub(super) fn note(steps: &mut Option<&mut Vec<RuleStep>>, step: impl FnOnce() -> RuleStep) {
    if let Some(s) = steps.as_deref_mut() {
        s.push(step());
    }
}

pub(super) fn step(rule: &str, detail: String, value: impl std::fmt::Display) -> RuleStep {
    RuleStep {
        rule: rule.to_string(),
        detail,
        value: value.to_string(),
    }
}

/// A quantity as read after the mapping's rules: minus `reserve`, never below zero. With
/// `steps`, each rule and its result are recorded.
pub fn stock_quantity(read: i64, reserve: i64, mut steps: Option<&mut Vec<RuleStep>>) -> i64 {
    let after = read.saturating_sub(reserve);
    note(&mut steps, || {
        step("reserve", format!("{read} − reserve {reserve}"), after)
    });
    let floored = after.max(0);
    note(&mut steps, || {
        let detail = if after < 0 {
            format!("{after} is below 0: 0")
        } else {
            "not below 0: unchanged".to_string()
        };
        step("floor 0", detail, floored)
    });
    floored
}

/// The stock id a mapped column writes to.
pub(super) fn target_id(t: StockTarget, default_stock: u64) -> u64 {
    match t {
        StockTarget::Default => default_stock,
        StockTarget::Stock(id) => id,
    }
}

/// The stocks the mapping's columns write to, each once, in id order.
pub(super) fn mapped_stock_ids(mapping: &StockMapping, default_stock: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = mapping
        .columns
        .iter()
        .map(|(t, _)| target_id(*t, default_stock))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

pub fn plan_stock(input: &PlanInput<'_>) -> StockPlan {
    let mut plan = StockPlan::default();
    let reserve = input.mapping.reserve;
    let mut desired: BTreeMap<u64, Desired> = input
        .feed
        .rows
        .iter()
        .map(|(id, row)| {
            let values = row
                .value
                .quantities
                .iter()
                .map(|(t, q)| {
                    (
                        target_id(*t, input.default_stock),
                        stock_quantity(*q, reserve, None),
                    )
                })
                .collect();
            (
                *id,
                (row.key.clone(), values, row.value.min_quantity, Some(row)),
            )
        })
        .collect();

    if input.mapping.missing == Missing::Zero {
        let targets: Vec<u64> = input
            .mapping
            .columns
            .iter()
            .map(|(t, _)| target_id(*t, input.default_stock))
            .collect();
        let min = match input.mapping.min_quantity {
            crate::mapping::MinQuantity::Fixed(n) => n,
            crate::mapping::MinQuantity::Column(_) => 0,
        };
        for s in input.skus.values() {
            if desired.contains_key(&s.id) {
                continue;
            }
            let key = match input.match_field {
                MatchField::Sku => Some(s.sku.as_str()),
                MatchField::ErpId => s.erp_id.as_deref(),
                MatchField::Barcode => s.barcode.as_deref(),
            };
            // A SKU without a key can never be in the feed, and a key on a rejected row or shared
            // by several SKUs is not "missing": none of those is zeroed.
            let Some(norm) = key.map(normalize_key).filter(|k| !k.is_empty()) else {
                continue;
            };
            if input.feed.rejected_keys.contains(&norm)
                || !matches!(input.lookup.get(&norm), Some(KeyMatch::One(_)))
            {
                continue;
            }
            desired.insert(
                s.id,
                (
                    Arc::from(key.unwrap_or_default()),
                    targets.iter().map(|t| (*t, 0)).collect(),
                    min,
                    None,
                ),
            );
        }
    }

    // The min quantity's cell follows the quantity cells, when it is a column.
    let min_cell = matches!(
        input.mapping.min_quantity,
        crate::mapping::MinQuantity::Column(_)
    )
    .then_some(input.mapping.columns.len());
    for (sku_id, (key, values, min, row)) in desired {
        let Some(sku) = input.skus.get(&sku_id) else {
            continue;
        };
        plan.matched_skus += 1;
        let new_total: i64 = values.iter().map(|(_, q)| q).sum();
        let old: Vec<Option<Pushed>> = values
            .iter()
            .map(|(st, _)| input.pushed.get(&(sku_id, *st)).copied())
            .collect();
        let old_total = if old.iter().all(Option::is_some) {
            Some(old.iter().flatten().map(|p| p.quantity).sum::<i64>())
        } else {
            sku.total_in_stock
        };
        if new_total == 0 && old_total.is_some_and(|t| t > 0) {
            plan.zeroed_skus += 1;
        }
        let one_target = values.len() == 1;
        let cell = |i: Option<usize>| -> Option<Box<str>> { Some(row?.cell(i?)?.into()) };
        for (i, ((stock_id, quantity), prev)) in values.into_iter().zip(old).enumerate() {
            let entry = StockEntry {
                sku_id,
                stock_id,
                quantity,
                min_quantity: min,
            };
            let unchanged = prev
                == Some(Pushed {
                    quantity,
                    min_quantity: min,
                });
            if unchanged && !input.full {
                continue;
            }
            plan.products.entry(sku.product_id).or_default().push(entry);
            // Old: what this job pushed; before its first push, the store's value when known.
            let held = input.store.get(&(sku_id, stock_id));
            let (old_qty, old_from) = match (prev, held) {
                (Some(p), _) => (Some(p.quantity), OldFrom::Pushed),
                (None, Some(h)) => (Some(h.quantity), OldFrom::Store),
                (None, None) if input.single_store_stock && one_target => {
                    (sku.total_in_stock, OldFrom::Store)
                }
                (None, None) => (None, OldFrom::Store),
            };
            // Sent with its entry either way, but listed only when it changes.
            if old_qty != Some(quantity) {
                plan.changes.push(ChangeRow {
                    key: key.clone(),
                    sku_id,
                    product_id: sku.product_id,
                    field: Field::Quantity { stock_id },
                    old: old_qty.map(Value::Qty),
                    old_from,
                    new: Value::Qty(quantity),
                    cell: cell(Some(i)),
                    outcome: Outcome::Planned,
                });
            }
            let old_min = match (prev, held) {
                (Some(p), _) => Some((p.min_quantity, OldFrom::Pushed)),
                (None, Some(h)) => h.min_quantity.map(|m| (m, OldFrom::Store)),
                (None, None) => None,
            };
            if let Some((old_min, old_from)) = old_min
                && old_min != min
            {
                plan.changes.push(ChangeRow {
                    key: key.clone(),
                    sku_id,
                    product_id: sku.product_id,
                    field: Field::MinQuantity { stock_id },
                    old: Some(Value::Qty(old_min)),
                    old_from,
                    new: Value::Qty(min),
                    cell: cell(min_cell),
                    outcome: Outcome::Planned,
                });
            }
        }
    }
    plan
}
