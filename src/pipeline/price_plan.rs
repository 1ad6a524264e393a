//! The price plan: feed × SKU index × last pushed prices → the fewest requests.
//!
//! Pure. Rules per SKU, in order: markup and rounding on sale and discount prices (cost is
//! taken as is; a zero discount, "no promotion", stays zero), two decimals; a discount not below
//! the sale price refuses the row; a new sale price below the store's current discount refuses
//! the SKU unless the same row sets the discount (the store would show a promotion nobody asked
//! for); a sale/discount price below the cost, or a price moving more than `max_change_pct`,
//! refuses the SKU. Blank cells leave their field alone. A change is a value that differs from
//! what this job last pushed (or every value, with `full`).
//!
//! Requests: within a product, changed SKUs that get the same new values for the same fields go
//! in one `PUT /catalog/products/{id}/skus/batch-update-skus`; any other changed SKU gets its
//! own batch update selecting only it, carrying only its changed fields. (`PUT
//! /catalog/skus/{id}` is never used: it demands `price_cost` and `price_sale`, so a write of
//! one field would re-send the others from a possibly stale index and revert edits made since.)

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::mapping::{PriceMapping, RoundTo};
use crate::model::{IndexedSku, PriceFields};
use crate::report::reason::pt_money;
use crate::report::{ChangeRow, Field, OldFrom, Outcome, Reason, RejectedRow, Value};

use super::feed::PriceFeed;
use super::plan::{RuleStep, note, step};

/// One request of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceOp {
    /// The same `values` on every SKU in `sku_ids` (all of one product).
    BatchUpdate {
        product_id: u64,
        sku_ids: Vec<u64>,
        values: PriceFields,
    },
    /// One SKU's changed fields (a batch update selecting only that SKU).
    OneSku {
        sku_id: u64,
        product_id: u64,
        values: PriceFields,
    },
}

impl PriceOp {
    pub fn product_id(&self) -> u64 {
        match self {
            PriceOp::BatchUpdate { product_id, .. } | PriceOp::OneSku { product_id, .. } => {
                *product_id
            }
        }
    }

    /// (SKU, fields sent to it) for checkpoints.
    pub fn entries(&self) -> Vec<(u64, PriceFields)> {
        match self {
            PriceOp::BatchUpdate {
                sku_ids, values, ..
            } => sku_ids.iter().map(|s| (*s, *values)).collect(),
            PriceOp::OneSku { sku_id, values, .. } => vec![(*sku_id, *values)],
        }
    }

    pub fn route(&self) -> &'static str {
        match self {
            PriceOp::BatchUpdate { .. } => "PUT catalog/products/{id}/skus/batch-update-skus",
            PriceOp::OneSku { .. } => "PUT catalog/products/{id}/skus/batch-update-skus (one SKU)",
        }
    }
}

#[derive(Debug, Default)]
pub struct PricePlan {
    pub ops: Vec<PriceOp>,
    pub changes: Vec<ChangeRow>,
    /// SKUs refused by a rule, as rows of the file.
    pub refused: Vec<RejectedRow>,
    pub matched_skus: u64,
}

pub struct PricePlanInput<'a> {
    pub feed: &'a PriceFeed,
    pub skus: &'a HashMap<u64, IndexedSku>,
    pub pushed: &'a HashMap<u64, PriceFields>,
    pub mapping: &'a PriceMapping,
    pub file: &'a str,
    pub full: bool,
}

fn two_places(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Markup, then rounding, then two decimals.
pub fn sale_price(raw: Decimal, m: &PriceMapping) -> Decimal {
    sale_price_steps(raw, m, None)
}

/// `sale_price`, recording each rule with its result when `steps` is given.
fn sale_price_steps(
    raw: Decimal,
    m: &PriceMapping,
    mut steps: Option<&mut Vec<RuleStep>>,
) -> Decimal {
    let p = two_places(raw * m.markup);
    note(&mut steps, || {
        step("markup", format!("{raw} × {}", m.markup), format!("{p:.2}"))
    });
    let rounded = m.round_to.map_or(p, |r| r.apply(p));
    note(&mut steps, || match m.round_to {
        Some(RoundTo::Cents(c)) => step(
            "round_to",
            format!("up to the next price ending in {c}"),
            format!("{rounded:.2}"),
        ),
        Some(RoundTo::Whole) => step(
            "round_to",
            "up to the next whole unit".into(),
            format!("{rounded:.2}"),
        ),
        None => step(
            "round_to",
            "not set: unchanged".into(),
            format!("{rounded:.2}"),
        ),
    });
    two_places(rounded)
}

/// The prices a feed row asks for once the mapping's rules (markup, rounding) are applied.
pub fn desired_prices(raw: PriceFields, m: &PriceMapping) -> PriceFields {
    desired_prices_steps(raw, m, None)
}

/// [`desired_prices`], noting each rule it applies in `steps` (for `explain`).
fn desired_prices_steps(
    raw: PriceFields,
    m: &PriceMapping,
    mut steps: Option<&mut Vec<RuleStep>>,
) -> PriceFields {
    let mut field_steps = |name: &str, v: Option<Decimal>, zero_is_none: bool| {
        let p = v?;
        note(&mut steps, || {
            step(name, "as read".into(), format!("{p:.2}"))
        });
        // Zero means "no promotion": no markup or rounding may turn it into a price.
        if zero_is_none && p.is_zero() {
            note(&mut steps, || {
                step(
                    name,
                    "0 means no promotion: no markup or rounding".into(),
                    "0",
                )
            });
            return Some(p);
        }
        Some(sale_price_steps(p, m, steps.as_deref_mut()))
    };
    let sale = field_steps("price_sale", raw.sale, false);
    let discount = field_steps("price_discount", raw.discount, true);
    let cost = raw.cost.map(two_places);
    if let Some(c) = cost {
        note(&mut steps, || {
            step(
                "price_cost",
                "as read, two decimals (no markup)".into(),
                format!("{c:.2}"),
            )
        });
    }
    PriceFields {
        sale,
        discount,
        cost,
    }
}

fn pct_change(old: Decimal, new: Decimal) -> Option<Decimal> {
    (old > Decimal::ZERO).then(|| ((new - old).abs() * Decimal::from(100) / old).round_dp(1))
}

/// Why a rule refuses a SKU's row: the column, the value it would set, the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub column: String,
    pub value: Decimal,
    pub reason: Reason,
}

/// What the rules make of one SKU's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceDecision {
    /// The prices the row asks for after markup and rounding.
    pub want: PriceFields,
    /// The prices taken as the SKU's current ones: last pushed, else the store's (index).
    pub current: PriceFields,
    /// The fields to send (empty: nothing changed), or why the row is refused.
    pub result: Result<PriceFields, Refusal>,
}

/// The rules of this module's header for one SKU, in order: what `plan_prices` applies to each
/// row, and (with `steps`) what `explain` shows, each rule with its result.
pub fn price_rules(
    raw: PriceFields,
    sku: &IndexedSku,
    pushed: PriceFields,
    m: &PriceMapping,
    full: bool,
    mut steps: Option<&mut Vec<RuleStep>>,
) -> PriceDecision {
    let want = desired_prices_steps(raw, m, steps.as_deref_mut());
    let current = PriceFields {
        sale: pushed.sale.or(sku.price_sale),
        discount: pushed.discount.or(sku.price_discount),
        cost: pushed.cost.or(sku.price_cost),
    };
    let decided = |result| PriceDecision {
        want,
        current,
        result,
    };
    let refusal = |column: &str, value: Decimal, reason: Reason| Refusal {
        column: column.to_string(),
        value,
        reason,
    };
    // A promotion price must be below the sale price it applies to.
    if let Some(d) = want.discount
        && let Some(s) = want.sale.or(current.sale)
        && d >= s
        && d > Decimal::ZERO
    {
        let col = m.price_discount.as_deref().unwrap_or("price_discount");
        return decided(Err(refusal(
            col,
            d,
            Reason::new(
                format!("discount price {d:.2} is not below the sale price {s:.2}"),
                format!(
                    "o preço promocional {} não é menor que o preço de venda {}",
                    pt_money(d),
                    pt_money(s)
                ),
            ),
        )));
    }
    note(&mut steps, || {
        step("discount below sale", "passed".into(), "")
    });
    // A new sale price below the promotion the store shows now would make that promotion
    // one nobody asked for: only a row that also sets the discount may do it.
    if want.discount.is_none()
        && let Some(s) = want.sale
        && s != sku.price_sale.or(pushed.sale).unwrap_or(s + Decimal::ONE)
        && let Some(d) = sku.price_discount.or(pushed.discount)
        && d > Decimal::ZERO
        && s < d
    {
        let (fix, fix_pt) = match m.price_discount.as_deref() {
            Some(col) => (
                format!("set the discount (column {col}) in the same row"),
                format!("informe a promoção (coluna {col}) na mesma linha"),
            ),
            None => (
                "map a price_discount column and set the discount in the same row".into(),
                "mapeie uma coluna price_discount e informe a promoção na mesma linha".into(),
            ),
        };
        return decided(Err(refusal(
            m.price_sale.as_str(),
            s,
            Reason::new(
                format!(
                    "sale price {s:.2} is below the store's current discount price {d:.2}, which would show as a promotion; {fix}"
                ),
                format!(
                    "o preço de venda {} é menor que o preço promocional atual da loja {}, o que apareceria como uma promoção; {fix_pt}",
                    pt_money(s),
                    pt_money(d)
                ),
            ),
        )));
    }
    note(&mut steps, || {
        step("sale above the store's discount", "passed".into(), "")
    });
    if m.price_cost.is_some()
        && let Some(cost) = want.cost.or(current.cost)
    {
        let below = [
            (want.sale, m.price_sale.as_str()),
            (
                want.discount.filter(|d| !d.is_zero()),
                m.price_discount.as_deref().unwrap_or(""),
            ),
        ]
        .into_iter()
        .find_map(|(p, col)| p.filter(|p| *p < cost).map(|p| (p, col)));
        if let Some((p, col)) = below {
            return decided(Err(refusal(
                col,
                p,
                Reason::new(
                    format!("price {p:.2} is below the cost {cost:.2}"),
                    format!(
                        "o preço {} é menor que o custo {}",
                        pt_money(p),
                        pt_money(cost)
                    ),
                ),
            )));
        }
        note(&mut steps, || {
            step(
                "cost floor",
                format!("no price below the cost {cost:.2}"),
                "",
            )
        });
    }
    for (new, old, col) in [
        (want.sale, current.sale, m.price_sale.as_str()),
        (
            want.discount,
            current.discount,
            m.price_discount.as_deref().unwrap_or(""),
        ),
        (
            want.cost,
            current.cost,
            m.price_cost.as_deref().unwrap_or(""),
        ),
    ] {
        if let (Some(n), Some(o)) = (new, old)
            && let Some(pct) = pct_change(o, n)
        {
            if pct > m.max_change_pct {
                return decided(Err(refusal(
                    col,
                    n,
                    Reason::new(
                        format!(
                            "moves {pct}% from {o:.2} (max_change_pct = {})",
                            m.max_change_pct
                        ),
                        format!(
                            "muda {}% a partir de {} (max_change_pct = {})",
                            pct.to_string().replace('.', ","),
                            pt_money(o),
                            m.max_change_pct
                        ),
                    ),
                )));
            }
            note(&mut steps, || {
                step(
                    "max_change_pct",
                    format!("{col}: moves {pct}% from {o:.2} (max {})", m.max_change_pct),
                    format!("{n:.2}"),
                )
            });
        }
    }
    let differs =
        |new: Option<Decimal>, last: Option<Decimal>| new.filter(|n| full || last != Some(*n));
    let changed = PriceFields {
        sale: differs(want.sale, pushed.sale),
        discount: differs(want.discount, pushed.discount),
        cost: differs(want.cost, pushed.cost),
    };
    decided(Ok(changed))
}

pub fn plan_prices(input: &PricePlanInput<'_>) -> PricePlan {
    let m = input.mapping;
    let mut plan = PricePlan::default();
    // Product → [(sku, key, desired values, changed fields)]
    type Wanted = (u64, Arc<str>, PriceFields, PriceFields);
    let mut by_product: BTreeMap<u64, Vec<Wanted>> = BTreeMap::new();

    let mut rows: Vec<_> = input.feed.rows.iter().collect();
    rows.sort_by_key(|(_, r)| r.row);
    for (sku_id, row) in rows {
        let Some(sku) = input.skus.get(sku_id) else {
            continue;
        };
        plan.matched_skus += 1;
        let pushed = input.pushed.get(sku_id).copied().unwrap_or_default();
        let decision = price_rules(row.value, sku, pushed, m, input.full, None);
        let (want, current) = (decision.want, decision.current);
        let changed = match decision.result {
            Ok(changed) => changed,
            Err(r) => {
                plan.refused.push(RejectedRow {
                    file: input.file.to_string(),
                    row: row.row,
                    column: r.column,
                    value: format!("{:.2}", r.value),
                    reason: r.reason.for_key(&row.key),
                });
                continue;
            }
        };
        if changed == PriceFields::default() {
            continue;
        }
        // The cells after the key: sale, then discount and cost when mapped.
        let discount_cell = m.price_discount.as_ref().map(|_| 1);
        let cost_cell = m
            .price_cost
            .as_ref()
            .map(|_| 1 + usize::from(discount_cell.is_some()));
        for (field, new, last, old, cell) in [
            (
                Field::PriceSale,
                changed.sale,
                pushed.sale,
                current.sale,
                Some(0),
            ),
            (
                Field::PriceDiscount,
                changed.discount,
                pushed.discount,
                current.discount,
                discount_cell,
            ),
            (
                Field::PriceCost,
                changed.cost,
                pushed.cost,
                current.cost,
                cost_cell,
            ),
        ] {
            // A SKU's fields go out together, but the report lists only those that change.
            if let Some(n) = new
                && old != Some(n)
            {
                plan.changes.push(ChangeRow {
                    key: row.key.clone(),
                    sku_id: *sku_id,
                    product_id: sku.product_id,
                    field,
                    old: old.map(Value::Money),
                    old_from: if last.is_some() {
                        OldFrom::Pushed
                    } else {
                        OldFrom::Store
                    },
                    new: Value::Money(n),
                    cell: cell.and_then(|i| row.cell(i)).map(Box::from),
                    outcome: Outcome::Planned,
                });
            }
        }
        by_product.entry(sku.product_id).or_default().push((
            *sku_id,
            row.key.clone(),
            want,
            changed,
        ));
    }

    for (product_id, skus) in by_product {
        // The fields any changed SKU of this product needs sent.
        let union = PriceFields {
            sale: skus.iter().find_map(|s| s.3.sale),
            discount: skus.iter().find_map(|s| s.3.discount),
            cost: skus.iter().find_map(|s| s.3.cost),
        };
        // SKUs that want exactly the same values for all of those fields share one request.
        let tuple = |w: &PriceFields| -> Option<PriceFields> {
            let pick = |u: Option<Decimal>, v: Option<Decimal>| match u {
                Some(_) => v.map(Some),
                None => Some(None),
            };
            Some(PriceFields {
                sale: pick(union.sale, w.sale)?,
                discount: pick(union.discount, w.discount)?,
                cost: pick(union.cost, w.cost)?,
            })
        };
        let mut groups: Vec<(PriceFields, Vec<u64>)> = Vec::new();
        let mut singles: Vec<(u64, PriceFields)> = Vec::new();
        for (sku_id, _, want, changed) in &skus {
            match tuple(want) {
                Some(t) => match groups.iter_mut().find(|(g, _)| *g == t) {
                    Some((_, ids)) => ids.push(*sku_id),
                    None => groups.push((t, vec![*sku_id])),
                },
                None => singles.push((*sku_id, *changed)),
            }
        }
        for (values, ids) in groups {
            if ids.len() >= 2 {
                plan.ops.push(PriceOp::BatchUpdate {
                    product_id,
                    sku_ids: ids,
                    values,
                });
            } else {
                let changed = skus
                    .iter()
                    .find(|s| s.0 == ids[0])
                    .map(|s| s.3)
                    .unwrap_or(values);
                singles.push((ids[0], changed));
            }
        }
        singles.sort_by_key(|s| s.0);
        for (sku_id, values) in singles {
            plan.ops.push(PriceOp::OneSku {
                sku_id,
                product_id,
                values,
            });
        }
    }
    plan
}

/// The fewest requests any planner could send for these changes, counting a product whose
/// changed SKUs all share their new values once, and every SKU of any other product once.
pub fn lower_bound(plan: &PricePlan) -> u64 {
    let mut per_product: BTreeMap<u64, Vec<(u64, Value, Field)>> = BTreeMap::new();
    for c in &plan.changes {
        per_product
            .entry(c.product_id)
            .or_default()
            .push((c.sku_id, c.new, c.field));
    }
    per_product
        .values()
        .map(|changes| {
            let mut skus: Vec<u64> = changes.iter().map(|c| c.0).collect();
            skus.sort_unstable();
            skus.dedup();
            let values_of = |id: u64| {
                let mut v: Vec<(String, String)> = changes
                    .iter()
                    .filter(|c| c.0 == id)
                    .map(|c| (c.2.to_string(), c.1.to_string()))
                    .collect();
                v.sort();
                v
            };
            let first = values_of(skus[0]);
            if skus.iter().all(|s| values_of(*s) == first) {
                1
            } else {
                skus.len() as u64
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::feed::{FeedRow, PriceFeed};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn sku(id: u64, product: u64) -> IndexedSku {
        IndexedSku {
            id,
            product_id: product,
            sku: format!("S{id}"),
            erp_id: None,
            barcode: None,
            price_cost: Some(d("40")),
            price_sale: Some(d("100")),
            price_discount: Some(d("0")),
            total_in_stock: None,
            quantity_managed: None,
            updated_at: None,
            title: None,
            variation: None,
        }
    }

    fn mapping() -> PriceMapping {
        PriceMapping {
            price_sale: "PRECO".into(),
            price_discount: Some("PROMO".into()),
            price_cost: Some("CUSTO".into()),
            markup: Decimal::ONE,
            round_to: None,
            max_change_pct: d("50"),
        }
    }

    fn plan(rows: &[(u64, u64, PriceFields)], m: &PriceMapping) -> PricePlan {
        plan_with(rows, m, |_| {})
    }

    /// `plan`, with the store's SKUs edited by `edit` first.
    fn plan_with(
        rows: &[(u64, u64, PriceFields)],
        m: &PriceMapping,
        edit: impl Fn(&mut IndexedSku),
    ) -> PricePlan {
        let skus: HashMap<u64, IndexedSku> = rows
            .iter()
            .map(|(id, p, _)| {
                let mut s = sku(*id, *p);
                edit(&mut s);
                (*id, s)
            })
            .collect();
        let mut feed = PriceFeed::default();
        for (i, (id, _, v)) in rows.iter().enumerate() {
            feed.rows.insert(
                *id,
                FeedRow {
                    row: i as u64 + 2,
                    key: Arc::from(format!("S{id}")),
                    value: *v,
                    cells: "".into(),
                },
            );
        }
        plan_prices(&PricePlanInput {
            feed: &feed,
            skus: &skus,
            pushed: &HashMap::new(),
            mapping: m,
            file: "f.csv",
            full: false,
        })
    }

    fn sale(s: &str) -> PriceFields {
        PriceFields {
            sale: Some(d(s)),
            ..PriceFields::default()
        }
    }

    #[test]
    fn markup_then_round_up_then_two_places() {
        let mut m = mapping();
        m.markup = d("1.37");
        m.round_to = RoundTo::parse("0.99");
        // 73.00 × 1.37 = 100.01 → 100.99
        assert_eq!(sale_price(d("73"), &m), d("100.99"));
        m.round_to = None;
        // 10.005 → 10.01 (half away from zero)
        m.markup = Decimal::ONE;
        assert_eq!(sale_price(d("10.005"), &m), d("10.01"));
    }

    #[test]
    fn shared_prices_are_one_batch_and_the_odd_one_out_a_batch_of_its_own() {
        let p = plan(
            &[
                (1, 10, sale("110")),
                (2, 10, sale("110")),
                (3, 10, sale("120")),
                (4, 11, sale("90")),
            ],
            &mapping(),
        );
        assert_eq!(
            p.ops,
            vec![
                PriceOp::BatchUpdate {
                    product_id: 10,
                    sku_ids: vec![1, 2],
                    values: sale("110")
                },
                PriceOp::OneSku {
                    sku_id: 3,
                    product_id: 10,
                    values: sale("120")
                },
                PriceOp::OneSku {
                    sku_id: 4,
                    product_id: 11,
                    values: sale("90")
                },
            ]
        );
        assert_eq!(
            lower_bound(&p),
            4,
            "product 10 has differing prices: 3 SKUs, plus 1"
        );
    }

    #[test]
    fn rules_refuse_and_report() {
        let p = plan(
            &[
                (1, 10, sale("151")), // +51 %
                (
                    2,
                    10,
                    PriceFields {
                        sale: Some(d("90")),
                        discount: Some(d("95")),
                        cost: None,
                    },
                ), // promo ≥ sale
                (
                    3,
                    10,
                    PriceFields {
                        sale: Some(d("39")),
                        discount: None,
                        cost: None,
                    },
                ), // below cost 40
                (
                    4,
                    10,
                    PriceFields {
                        sale: None,
                        discount: None,
                        cost: Some(d("45")),
                    },
                ), // fine: cost only
            ],
            &mapping(),
        );
        let reasons: Vec<&str> = p.refused.iter().map(|r| r.reason.en()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("max_change_pct"), "{reasons:?}");
        assert!(
            reasons[1].contains("not below the sale price"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("below the cost"), "{reasons:?}");
        assert_eq!(
            p.ops,
            vec![PriceOp::OneSku {
                sku_id: 4,
                product_id: 10,
                values: PriceFields {
                    cost: Some(d("45")),
                    ..PriceFields::default()
                }
            }]
        );
    }

    #[test]
    fn a_sale_price_below_the_stores_discount_needs_the_discount_in_the_same_row() {
        let on_promotion = |s: &mut IndexedSku| {
            if s.id != 3 {
                s.price_discount = Some(d("80"));
            }
        };
        let p = plan_with(
            &[
                (1, 10, sale("70")), // below the promotion at 80, discount blank
                (
                    2,
                    10,
                    PriceFields {
                        sale: Some(d("70")),
                        discount: Some(d("60")),
                        cost: None,
                    },
                ), // the row moves the promotion too
                (3, 11, sale("70")), // no promotion in the store
                (4, 12, sale("90")), // still above the promotion
            ],
            &mapping(),
            on_promotion,
        );
        assert_eq!(p.refused.len(), 1, "{:?}", p.refused);
        let r = &p.refused[0];
        assert_eq!(
            (r.row, r.column.as_str(), r.value.as_str()),
            (2, "PRECO", "70.00")
        );
        assert!(
            r.reason.contains("discount price 80.00") && r.reason.contains("column PROMO"),
            "{}",
            r.reason
        );
        // The Portuguese report says the same, with decimal commas.
        let pt = r.reason.text(crate::report::Lang::PtBr);
        assert!(
            pt.starts_with(
                "o preço de venda 70,00 é menor que o preço promocional atual da loja 80,00"
            ) && pt.contains("(coluna PROMO)")
                && pt.ends_with("(chave S1)"),
            "{pt}"
        );
        let sent: Vec<u64> = p
            .ops
            .iter()
            .flat_map(|o| o.entries())
            .map(|e| e.0)
            .collect();
        assert_eq!(sent, vec![2, 3, 4]);
    }

    #[test]
    fn a_zero_discount_means_no_promotion_through_markup_and_rounding() {
        let mut m = mapping();
        m.markup = d("1.5");
        m.round_to = RoundTo::parse("0.90");
        let p = plan(
            &[(
                1,
                10,
                PriceFields {
                    sale: Some(d("60")),
                    discount: Some(d("0")),
                    cost: None,
                },
            )],
            &m,
        );
        assert_eq!(
            p.ops,
            vec![PriceOp::OneSku {
                sku_id: 1,
                product_id: 10,
                values: PriceFields {
                    sale: Some(d("90.90")),
                    discount: Some(d("0")),
                    cost: None,
                }
            }]
        );
    }
}
