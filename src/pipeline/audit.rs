//! A `kind = "audit"` run: the ERP feed read and mapped exactly as a stock or price job of the
//! same mapping would read it, the store's own exports (the SKU export for prices, one stock
//! export per mapped warehouse) read through Yampi's queues, and every difference between the
//! two listed in the report. Nothing is written to the store.
//!
//! An audit with differences also says what a sync would send: the stock and price planners run
//! against the store's exported values (never sent) and their request count and ETA go into the
//! report.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::config::JobSettings;
use crate::exports::{self, SkuExportRow, StockExportRow, Wait};
use crate::index::KeyMatch;
use crate::mapping::{Mapping, StockMapping, StockTarget};
use crate::model::{PriceFields, Pushed};
use crate::report::{
    Difference, EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_REJECTED, Field, RunReport, Value,
};
use crate::shop::ShopClient;
use crate::state::StateStore;

use super::RunOptions;
use super::common::{
    Fail, fail, job_inputs, match_guard, open_source, record_failure, refresh_index,
};
use super::driver::{JobContext, JobKind, plan_eta_secs};
use super::feed::{Feed, PriceFeed, StockFeed, read_price_feed, read_stock_feed};
use super::plan::{PlanInput, plan_stock};
use super::price_plan::{PricePlanInput, desired_prices, plan_prices};
use super::stock::{SYNC_ROUTE, StockKind};

/// Runs one audit job; every outcome ends up in the report.
pub async fn run(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    report: &mut RunReport,
) {
    let result = run_inner(job, client, state, opts, report).await;
    record_failure(report, result);
}

/// The store's side of an audit, as its exports show it.
#[derive(Default)]
struct StoreValues {
    /// (SKU id, stock id) → the stock export's row.
    stocks: HashMap<(u64, u64), StockExportRow>,
    /// SKU id → the SKU export's row.
    skus: HashMap<u64, SkuExportRow>,
}

async fn run_inner(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<(), Fail> {
    let (source, mapping) = job_inputs(job)?;
    if mapping.stock.is_none() && mapping.price.is_none() {
        return Err(fail(
            EXIT_INVALID,
            "the mapping has neither a [stock] nor a [price] section: nothing to audit",
        ));
    }
    // An audit compares whatever the file says with the store now: never skipped as "already
    // synced".
    let read_opts = RunOptions {
        full: true,
        ..opts.clone()
    };
    let (opened, src) = open_source(job, &source, mapping.audit_columns(), state, &read_opts).await;
    report.source_file = opened.file;
    report.source_hash = opened.hash;
    let Some(src) = src? else {
        return Ok(());
    };
    let cx = JobContext {
        job,
        client,
        state,
        opts,
    };
    let default_stock = match &mapping.stock {
        Some(section) => Some(StockKind::prepare(cx, &mapping, section).await?.0),
        None => None,
    };
    let index = refresh_index(job, client, state, opts).await?;
    let lookup = Arc::new(index.lookup(mapping.match_field));

    // The feed, read by the same readers (and so the same rules) a stock or price job uses.
    let (stock_feed, price_feed) = read_feeds(&src.path, &source, &mapping, &lookup).await?;
    let counts: &dyn FeedCounts = match (&stock_feed, &price_feed) {
        (Some(f), _) => f,
        (None, Some(f)) => f,
        (None, None) => unreachable!("a section was checked above"),
    };
    report.rows_read = counts.rows_read();
    report.rows_valid = counts.rows_valid();
    report.unmatched = counts.unmatched();
    for f in [
        stock_feed.as_ref().map(|f| &f.rejected),
        price_feed.as_ref().map(|f| &f.rejected),
    ]
    .into_iter()
    .flatten()
    {
        for r in f {
            if !report
                .rejected
                .iter()
                .any(|x| x.row == r.row && x.column == r.column)
            {
                report.rejected.push(r.clone());
            }
        }
    }
    report.rejected.sort_by_key(|r| r.row);
    if let Some(f) = &stock_feed {
        match_guard(&mapping, f, &src.path)?;
    } else if let Some(f) = &price_feed {
        match_guard(&mapping, f, &src.path)?;
    }

    // The store's side, from its exports.
    let store = read_exports(job, client, &mapping, default_stock).await?;

    // The differences, and what a sync would send to put them right.
    let mut differences = Vec::new();
    let mut routes: Vec<(String, u64)> = Vec::new();
    let mut matched = std::collections::HashSet::new();
    if let (Some(section), Some(feed), Some(default_stock)) =
        (&mapping.stock, &stock_feed, default_stock)
    {
        matched.extend(feed.rows.keys().copied());
        differences.extend(stock_differences(feed, section, default_stock, &store));
        let pushed: HashMap<(u64, u64), Pushed> = store
            .stocks
            .iter()
            .map(|(k, r)| {
                let min = r
                    .min_quantity
                    .or_else(|| feed.rows.get(&k.0).map(|row| row.value.min_quantity));
                (
                    *k,
                    Pushed {
                        quantity: r.quantity,
                        min_quantity: min.unwrap_or(0),
                    },
                )
            })
            .collect();
        let plan = plan_stock(&PlanInput {
            feed,
            skus: &index.skus,
            lookup: &lookup,
            match_field: mapping.match_field,
            pushed: &pushed,
            mapping: section,
            default_stock,
            // Differences come from the store's export, not from a plan's "old" values.
            single_store_stock: false,
            full: false,
        });
        if !plan.products.is_empty() {
            routes.push((SYNC_ROUTE.to_string(), plan.products.len() as u64));
        }
    }
    if let (Some(section), Some(feed)) = (&mapping.price, &price_feed) {
        matched.extend(feed.rows.keys().copied());
        differences.extend(price_differences(feed, section, &store));
        let pushed: HashMap<u64, PriceFields> = store
            .skus
            .iter()
            .map(|(id, r)| {
                (
                    *id,
                    PriceFields {
                        sale: r.price_sale,
                        discount: r.price_discount,
                        cost: r.price_cost,
                    },
                )
            })
            .collect();
        let file = src.path.display().to_string();
        let plan = plan_prices(&PricePlanInput {
            feed,
            skus: &index.skus,
            pushed: &pushed,
            mapping: section,
            file: &file,
            full: false,
        });
        let mut per_route: BTreeMap<&str, u64> = BTreeMap::new();
        for op in &plan.ops {
            *per_route.entry(op.route()).or_default() += 1;
        }
        routes.extend(per_route.into_iter().map(|(r, n)| (r.to_string(), n)));
    }
    report.matched_skus = matched.len() as u64;
    let writes: u64 = routes.iter().map(|(_, n)| n).sum();
    report.plan = routes;
    report.plan_eta_secs = plan_eta_secs(writes, client);

    let skus: std::collections::HashSet<u64> = differences.iter().map(|d| d.sku_id).collect();
    report.message = if differences.is_empty() {
        format!(
            "audit: the store matches the ERP for all {} matched SKUs; nothing was written",
            report.matched_skus
        )
    } else {
        format!(
            "audit: {} differences in {} of {} matched SKUs; a sync would send {writes} requests (about {}); nothing was written",
            differences.len(),
            skus.len(),
            report.matched_skus,
            crate::config::duration::format_duration(std::time::Duration::from_secs_f64(
                report.plan_eta_secs
            ))
        )
    };
    report.exit_code = if job.fail_on_differences && !differences.is_empty() {
        EXIT_REJECTED
    } else {
        EXIT_OK
    };
    report.names = crate::report::names_of(&index.skus, differences.iter().map(|d| d.sku_id));
    report.differences = differences;
    Ok(())
}

/// What the report takes from a feed whatever its values.
trait FeedCounts {
    fn rows_read(&self) -> u64;
    fn rows_valid(&self) -> u64;
    fn unmatched(&self) -> Vec<crate::report::UnmatchedKey>;
}

impl<T> FeedCounts for Feed<T> {
    fn rows_read(&self) -> u64 {
        self.rows_read
    }
    fn rows_valid(&self) -> u64 {
        self.rows_valid
    }
    fn unmatched(&self) -> Vec<crate::report::UnmatchedKey> {
        self.unmatched.clone()
    }
}

async fn read_feeds(
    path: &std::path::Path,
    source: &crate::config::SourceSettings,
    mapping: &Mapping,
    lookup: &Arc<HashMap<String, KeyMatch>>,
) -> Result<(Option<StockFeed>, Option<PriceFeed>), Fail> {
    let (p, m, l) = (path.to_path_buf(), mapping.clone(), lookup.clone());
    let (format, sheet) = (source.format, source.sheet.clone());
    tokio::task::spawn_blocking(move || {
        let stock = match m.stock {
            Some(_) => Some(read_stock_feed(&p, format, sheet.as_deref(), &m, &l)?),
            None => None,
        };
        let price = match m.price {
            Some(_) => Some(read_price_feed(&p, format, sheet.as_deref(), &m, &l)?),
            None => None,
        };
        Ok::<_, crate::source::SourceError>((stock, price))
    })
    .await
    .map_err(|e| fail(EXIT_FAILED, format!("reading the source failed: {e}")))?
    .map_err(|e| fail(EXIT_INVALID, e.to_string()))
}

fn target_id(t: StockTarget, default_stock: u64) -> u64 {
    match t {
        StockTarget::Default => default_stock,
        StockTarget::Stock(id) => id,
    }
}

/// The exports the mapping needs: the SKU export when it maps prices, one stock export per
/// mapped warehouse. One that cannot be had fails the audit (exit 3), naming it.
async fn read_exports(
    job: &JobSettings,
    client: &ShopClient,
    mapping: &Mapping,
    default_stock: Option<u64>,
) -> Result<StoreValues, Fail> {
    let wait = Wait {
        timeout: job.queue_timeout,
        poll_every: client.store().queue_poll,
    };
    let failed = |e: exports::ExportError| {
        fail(
            EXIT_FAILED,
            format!("audit stopped, nothing was compared or written: {e}"),
        )
    };
    let mut store = StoreValues::default();
    if let (Some(section), Some(default_stock)) = (&mapping.stock, default_stock) {
        let mut ids: Vec<u64> = section
            .columns
            .iter()
            .map(|(t, _)| target_id(*t, default_stock))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for stock_id in ids {
            let rows = exports::stock_export(client, stock_id, wait, &mapping.export)
                .await
                .map_err(failed)?;
            for r in rows {
                store.stocks.insert((r.sku_id, stock_id), r);
            }
        }
    }
    if mapping.price.is_some() {
        let export = exports::sku_export(client, wait, &mapping.export)
            .await
            .map_err(failed)?;
        store.skus = export.rows.into_iter().map(|r| (r.sku_id, r)).collect();
    }
    Ok(store)
}

/// Quantities (after `reserve`) and min quantities the ERP asks for that the store does not hold.
fn stock_differences(
    feed: &StockFeed,
    section: &StockMapping,
    default_stock: u64,
    store: &StoreValues,
) -> Vec<Difference> {
    let mut rows: Vec<_> = feed.rows.iter().collect();
    rows.sort_by_key(|(_, r)| r.row);
    let mut out = Vec::new();
    for (sku_id, row) in rows {
        for (target, q) in &row.value.quantities {
            let stock_id = target_id(*target, default_stock);
            let want = (q - section.reserve).max(0);
            let held = store.stocks.get(&(*sku_id, stock_id));
            if held.map(|r| r.quantity) != Some(want) {
                out.push(Difference {
                    key: row.key.clone(),
                    sku_id: *sku_id,
                    field: Field::Quantity { stock_id },
                    store: held.map(|r| Value::Qty(r.quantity)),
                    erp: Value::Qty(want),
                });
            }
            // The min quantity only where the export shows it.
            if let Some(min) = held.and_then(|r| r.min_quantity)
                && min != row.value.min_quantity
            {
                out.push(Difference {
                    key: row.key.clone(),
                    sku_id: *sku_id,
                    field: Field::MinQuantity { stock_id },
                    store: Some(Value::Qty(min)),
                    erp: Value::Qty(row.value.min_quantity),
                });
            }
        }
    }
    out
}

/// Prices (after markup and rounding) the ERP asks for that the store does not hold. A blank ERP
/// cell asks for nothing; a blank discount or cost in the export is no price, i.e. zero.
fn price_differences(
    feed: &PriceFeed,
    section: &crate::mapping::PriceMapping,
    store: &StoreValues,
) -> Vec<Difference> {
    let mut rows: Vec<_> = feed.rows.iter().collect();
    rows.sort_by_key(|(_, r)| r.row);
    let mut out = Vec::new();
    for (sku_id, row) in rows {
        let want = desired_prices(row.value, section);
        let held = store.skus.get(sku_id);
        let fields = [
            (Field::PriceSale, want.sale, held.map(|r| r.price_sale)),
            (
                Field::PriceDiscount,
                want.discount,
                held.map(|r| r.price_discount.or(Some(Decimal::ZERO))),
            ),
            (
                Field::PriceCost,
                want.cost,
                held.map(|r| r.price_cost.or(Some(Decimal::ZERO))),
            ),
        ];
        for (field, want, held) in fields {
            let Some(want) = want else { continue };
            let held = held.flatten();
            if held != Some(want) {
                out.push(Difference {
                    key: row.key.clone(),
                    sku_id: *sku_id,
                    field,
                    store: held.map(Value::Money),
                    erp: Value::Money(want),
                });
            }
        }
    }
    out
}
