//! A `kind = "audit"` run: the ERP feed read and mapped exactly as a stock or price job of the
//! same mapping would read it, the store's own exports (the SKU export for prices, one stock
//! export per mapped warehouse) read through Yampi's queues, and every difference between the
//! two listed in the report. Nothing is written to the store.
//!
//! It runs on the job driver (`src/pipeline/driver.rs`) as [`AuditKind`]: the driver opens the
//! source (never skipped as unchanged), refreshes the index, reads the feed through
//! [`JobKind::feed`] and runs the match guard; the audit's execute stage reads the exports and
//! hands back the differences and what a sync would send.
//!
//! An audit with differences also says what a sync would send: the stock and price planners run
//! against the store's exported values (never sent) and their request count and ETA go into the
//! report.

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_decimal::Decimal;

use crate::config::JobSettings;
use crate::exports::{self, SkuExportRow, StockExportRow, Wait};
use crate::index::KeyMatch;
use crate::mapping::{Mapping, StockMapping};
use crate::model::{PriceFields, Pushed};
use crate::report::{
    Difference, EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_REJECTED, Field, RunResult, Value,
};
use crate::shop::ShopClient;
use crate::state::StateStore;

use super::common::{Fail, FileJob, fail};
use super::driver::{
    Executed, Fed, FeedInputs, FeedSummary, FileSpec, JobContext, JobKind, PlanInputs, PlanSummary,
    plan_eta_secs,
};
use super::feed::{Feed, PriceFeed, StockFeed, read_price_feed, read_stock_feed};
use super::plan::{PlanInput, mapped_stock_ids, plan_stock, target_id};
use super::price_plan::{PricePlanInput, desired_prices, plan_prices};
use super::stock::{SYNC_ROUTE, store_stocks};

/// The audit job kind: it writes nothing, and executes by reading the store's exports.
pub struct AuditKind;

/// The ERP feed as a stock job and a price job of the same mapping would read it.
pub struct AuditFeed {
    stock: Option<StockFeed>,
    price: Option<PriceFeed>,
}

impl JobKind for AuditKind {
    type Inputs = FileJob<()>;
    /// The store's default stock id, when the mapping maps stocks.
    type Prepared = Option<u64>;
    type Feed = AuditFeed;
    type History = ();
    type Plan = ();

    const WRITES: bool = false;

    fn inputs(job: &JobSettings) -> Result<Self::Inputs, Fail> {
        FileJob::load(job, |m| {
            if m.stock.is_none() && m.price.is_none() {
                return Err(fail(
                    EXIT_INVALID,
                    "the mapping has neither a [stock] nor a [price] section: nothing to audit",
                ));
            }
            Ok(())
        })
    }

    fn file(inputs: &Self::Inputs) -> Option<FileSpec<'_>> {
        Some(inputs.spec(inputs.mapping.audit_columns()))
    }

    async fn prepare(cx: JobContext<'_>, inputs: &Self::Inputs) -> Result<Option<u64>, Fail> {
        match &inputs.mapping.stock {
            Some(section) => Ok(Some(store_stocks(cx, &inputs.mapping, section).await?.0)),
            None => Ok(None),
        }
    }

    /// The feed, read by the same readers (and so the same rules) a stock or price job uses.
    async fn feed(_cx: JobContext<'_>, at: FeedInputs<'_, Self>) -> Result<Fed<AuditFeed>, Fail> {
        let feed = at.file()?.read(read_feeds).await?;
        let summary = feed_summary(&feed);
        Ok(Fed::Read(feed, Some(summary)))
    }

    /// The differences and what a sync would send come with the exports, in `execute`.
    fn plan(_at: &PlanInputs<'_, Self>) {}

    /// The store's side, from its exports; the differences, and what a sync would send to put
    /// them right (the same planners, never sent).
    async fn execute(cx: JobContext<'_>, at: &PlanInputs<'_, Self>, _plan: ()) -> Executed {
        let (job, client) = (cx.job, cx.client);
        let mapping = &at.inputs.mapping;
        let store = match read_exports(job, client, cx.state, mapping, *at.prepared).await {
            Ok(s) => s,
            Err(e) => return Executed::failed(e),
        };
        let file = at.file.map(|f| f.display().to_string()).unwrap_or_default();
        let compared = compare(at, &store, &file);
        let Compared {
            differences,
            routes,
            matched_skus,
        } = compared;
        let writes: u64 = routes.iter().map(|(_, n)| n).sum();
        let eta_secs = plan_eta_secs(writes, client);
        let skus: HashSet<u64> = differences.iter().map(|d| d.sku_id).collect();
        let result = if differences.is_empty() {
            RunResult::AuditMatches {
                matched: matched_skus,
            }
        } else {
            RunResult::AuditDiffers {
                differences: differences.len(),
                skus: skus.len(),
                matched: matched_skus,
                writes,
                eta: crate::config::duration::format_duration(std::time::Duration::from_secs_f64(
                    eta_secs,
                )),
            }
        };
        let exit_code = if job.fail_on_differences && !differences.is_empty() {
            EXIT_REJECTED
        } else {
            EXIT_OK
        };
        Executed {
            differences: Some(differences),
            would_send: Some(PlanSummary {
                matched_skus,
                routes,
                writes,
                ..PlanSummary::default()
            }),
            result: Some(result),
            exit_code: Some(exit_code),
            ..Executed::default()
        }
    }
}

/// The store's side of an audit, as its exports show it.
#[derive(Default)]
struct StoreValues {
    /// (SKU id, stock id) → the stock export's row.
    stocks: HashMap<(u64, u64), StockExportRow>,
    /// SKU id → the SKU export's row.
    skus: HashMap<u64, SkuExportRow>,
}

/// What comparing the feed with the exports found.
struct Compared {
    differences: Vec<Difference>,
    /// What a sync would send, per route.
    routes: Vec<(String, u64)>,
    matched_skus: u64,
}

/// The differences between the feed and the store's exports, and the requests a stock or price
/// sync would send to put them right.
fn compare(at: &PlanInputs<'_, AuditKind>, store: &StoreValues, file: &str) -> Compared {
    let mapping = &at.inputs.mapping;
    let (index, lookup) = (at.index, at.lookup);
    let mut differences = Vec::new();
    let mut routes: Vec<(String, u64)> = Vec::new();
    let mut matched = HashSet::new();
    if let (Some(section), Some(feed), Some(default_stock)) =
        (&mapping.stock, &at.feed.stock, *at.prepared)
    {
        matched.extend(feed.rows.keys().copied());
        differences.extend(stock_differences(feed, section, default_stock, store));
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
            lookup,
            match_field: mapping.match_field,
            pushed: &pushed,
            mapping: section,
            default_stock,
            // Differences come from the store's export, not from a plan's "old" values.
            single_store_stock: false,
            store: &HashMap::new(),
            full: false,
        });
        if !plan.products.is_empty() {
            routes.push((SYNC_ROUTE.to_string(), plan.products.len() as u64));
        }
    }
    if let (Some(section), Some(feed)) = (&mapping.price, &at.feed.price) {
        matched.extend(feed.rows.keys().copied());
        differences.extend(price_differences(feed, section, store));
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
        let plan = plan_prices(&PricePlanInput {
            feed,
            skus: &index.skus,
            pushed: &pushed,
            mapping: section,
            file,
            full: false,
        });
        let mut per_route: BTreeMap<&str, u64> = BTreeMap::new();
        for op in &plan.ops {
            *per_route.entry(op.route()).or_default() += 1;
        }
        routes.extend(per_route.into_iter().map(|(r, n)| (r.to_string(), n)));
    }
    Compared {
        differences,
        routes,
        matched_skus: matched.len() as u64,
    }
}

/// What the report shows of the two feeds: the counts of the first (stock, else price), the
/// rejected rows of both, once each.
fn feed_summary(feed: &AuditFeed) -> FeedSummary {
    let no_rows = Feed::<()>::default();
    let counts: &dyn FeedCounts = match (&feed.stock, &feed.price) {
        (Some(f), _) => f,
        (None, Some(f)) => f,
        // A mapping without either section is refused by `inputs`.
        (None, None) => &no_rows,
    };
    let mut rejected: Vec<crate::report::RejectedRow> = Vec::new();
    for f in [
        feed.stock.as_ref().map(|f| &f.rejected),
        feed.price.as_ref().map(|f| &f.rejected),
    ]
    .into_iter()
    .flatten()
    {
        for r in f {
            if !rejected
                .iter()
                .any(|x| x.row == r.row && x.column == r.column)
            {
                rejected.push(r.clone());
            }
        }
    }
    rejected.sort_by_key(|r| r.row);
    FeedSummary {
        rows_read: counts.rows_read(),
        rows_valid: counts.rows_valid(),
        rows_matched: counts.rows_matched(),
        rejected,
        unmatched: counts.unmatched(),
    }
}

/// What the report takes from a feed whatever its values.
trait FeedCounts {
    fn rows_read(&self) -> u64;
    fn rows_valid(&self) -> u64;
    fn rows_matched(&self) -> u64;
    fn unmatched(&self) -> Vec<crate::report::UnmatchedKey>;
}

impl<T> FeedCounts for Feed<T> {
    fn rows_read(&self) -> u64 {
        self.rows_read
    }
    fn rows_valid(&self) -> u64 {
        self.rows_valid
    }
    fn rows_matched(&self) -> u64 {
        self.rows.len() as u64
    }
    fn unmatched(&self) -> Vec<crate::report::UnmatchedKey> {
        self.unmatched.clone()
    }
}

/// Reads the feed with the stock reader and the price reader, for the sections the mapping has.
fn read_feeds(
    path: &std::path::Path,
    format: Option<crate::source::Format>,
    sheet: Option<&str>,
    mapping: &Mapping,
    lookup: &HashMap<String, KeyMatch>,
) -> Result<AuditFeed, crate::source::SourceError> {
    let stock = match mapping.stock {
        Some(_) => Some(read_stock_feed(path, format, sheet, mapping, lookup)?),
        None => None,
    };
    let price = match mapping.price {
        Some(_) => Some(read_price_feed(path, format, sheet, mapping, lookup)?),
        None => None,
    };
    Ok(AuditFeed { stock, price })
}

/// The exports the mapping needs: the SKU export when it maps prices, one stock export per
/// mapped warehouse. One that cannot be had fails the audit (exit 3), naming it.
async fn read_exports(
    job: &JobSettings,
    client: &ShopClient,
    state: &StateStore,
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
        let ids = mapped_stock_ids(section, default_stock);
        store.stocks = exports::stock_exports(client, &ids, wait, &mapping.export)
            .await
            .map_err(failed)?;
    }
    if mapping.price.is_some() {
        let export = exports::sku_export(client, wait, &mapping.export)
            .await
            .map_err(failed)?;
        exports::keep_header(state, &client.store().name, &export);
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
