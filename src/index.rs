//! The SKU index: store SKUs by id, kept in the state store, and the key lookups built from it.
//!
//! The first run reads the whole catalog (`GET /catalog/skus`, 100 per page, ordered by id so
//! edits during the scan do not shift the pages). Later runs ask only for SKUs updated since the
//! last refresh started by the server's clock (its `Date` header; `date=updated_at:FROM|TO`
//! with ten minutes of overlap), so a server clock behind ours cannot hide an update. A full
//! rescan every `index_full_rescan_hours` (default 24) catches deletions; a SKU it misses is
//! removed only once the store confirms it is gone (see `settle_missing`). A write that finds a
//! SKU gone marks the index for a full rescan on the next run.
//!
//! A job matching on `sku` lets a full rescan of a big store (more than `index_export_above`
//! SKUs, by the first page's `total`) read the SKU export instead (`Scan::Export`): one request
//! and a queue rather than 1,000 pages at 30 a minute for 100,000 SKUs. When the export cannot
//! be had or lacks a column, the rescan pages as before, with a warning.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration as ChronoDuration, NaiveDateTime, Utc};

use reqwest::Method;

use crate::exports::{self, ExportAliases, Wait};
use crate::mapping::{MatchField, normalize_key};
use crate::model::IndexedSku;
use crate::shop::model::Pagination;
use crate::shop::{ApiError, ShopClient, SkuListing};
use crate::state::{IndexMeta, StateError, StateStore};

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug, Default)]
pub struct SkuIndex {
    pub skus: HashMap<u64, IndexedSku>,
    /// Whether this refresh read the whole catalog.
    pub was_full: bool,
    pub fetched: usize,
}

/// What a key matched in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    One(u64),
    /// Two or more store SKUs share the key: reported, never guessed.
    Ambiguous(Vec<u64>),
}

impl SkuIndex {
    /// Normalised key → store SKU(s), for the mapping's match field.
    pub fn lookup(&self, field: MatchField) -> HashMap<String, KeyMatch> {
        let mut out: HashMap<String, KeyMatch> = HashMap::with_capacity(self.skus.len());
        for s in self.skus.values() {
            let key = match field {
                MatchField::Sku => Some(s.sku.as_str()),
                MatchField::ErpId => s.erp_id.as_deref(),
                MatchField::Barcode => s.barcode.as_deref(),
            };
            let Some(key) = key.map(normalize_key).filter(|k| !k.is_empty()) else {
                continue;
            };
            out.entry(key)
                .and_modify(|m| match m {
                    KeyMatch::One(id) => *m = KeyMatch::Ambiguous(vec![*id, s.id]),
                    KeyMatch::Ambiguous(ids) => ids.push(s.id),
                })
                .or_insert(KeyMatch::One(s.id));
        }
        for m in out.values_mut() {
            if let KeyMatch::Ambiguous(ids) = m {
                ids.sort_unstable();
            }
        }
        out
    }
}

/// At most this many SKUs missing from a full scan are checked one by one (`GET
/// /catalog/skus/{id}`); when more are missing they stay until the next full scan misses them
/// too, so one bad scan cannot empty the index.
const CONFIRM_MAX: usize = 20;
/// Incremental refreshes ask for updates from this long before the last refresh started (by
/// the server's clock), so a write landing while that refresh ran is not missed.
const OVERLAP_MINUTES: i64 = 10;

/// Brings the stored index up to date and returns it (full rescans page through the API).
pub async fn refresh(
    client: &ShopClient,
    state: &StateStore,
    force_full: bool,
    on_page: impl FnMut(u64, Option<u64>),
) -> Result<SkuIndex, IndexError> {
    refresh_with(
        client,
        state,
        force_full,
        Scan::Paged(MatchField::Sku),
        on_page,
    )
    .await
}

/// How a full rescan may read the catalog.
pub enum Scan<'a> {
    /// Page through `GET /catalog/skus`; the field the caller matches on.
    Paged(MatchField),
    /// Read the SKU export instead when the store has more than `above` SKUs (`match = "sku"`
    /// only: the export has no `erp_id` or `barcode`): one request and a queue instead of a
    /// page per 100 SKUs at 30 pages a minute.
    Export {
        above: u64,
        wait: Wait,
        aliases: &'a ExportAliases,
    },
}

/// Brings the stored index up to date and returns it, a full rescan going as `scan` says.
pub async fn refresh_with(
    client: &ShopClient,
    state: &StateStore,
    force_full: bool,
    scan: Scan<'_>,
    on_page: impl FnMut(u64, Option<u64>),
) -> Result<SkuIndex, IndexError> {
    let store = client.store().name.clone();
    let meta = state.index_meta(&store)?;
    // An index read from the export lacks erp_id and barcode: a job matching on them rescans.
    let lacks_keys = meta.export_scanned && matches!(scan, Scan::Paged(f) if f != MatchField::Sku);
    let now = Utc::now();
    let full_due = match meta.last_full {
        None => true,
        Some(t) => {
            let age = now.signed_duration_since(t).to_std().unwrap_or_default();
            age >= client.store().index_full_rescan
        }
    };
    let full = force_full || full_due || lacks_keys || meta.last_refresh.is_none();
    let started = Utc::now();
    let fetched;
    let listing;
    let mut suspects = meta.suspects.clone();
    let mut export_scanned = meta.export_scanned;
    if full {
        listing = match exported(client, state, &store, &scan).await? {
            Some(l) => {
                export_scanned = true;
                l
            }
            None => {
                export_scanned = false;
                client.list_skus(None, on_page).await?
            }
        };
        fetched = listing.skus.len();
        suspects = settle_missing(client, state, &store, &listing.skus, &meta.suspects).await?;
    } else {
        // Times in the store's zone (Yampi answers in America/Sao_Paulo), from the server's
        // clock at the last refresh (our own clock may differ from it), with some overlap.
        // Servers that only understand the legacy day form (`YYYY-MM-DD`) get that, with a day
        // of overlap, after a 400/422.
        let tz = crate::shop::STORE_ZONE;
        let since = meta.watermark.or(meta.last_refresh).unwrap_or(now);
        let until = (now.max(since) + ChronoDuration::days(1)).with_timezone(&tz);
        let precise = (
            (since - ChronoDuration::minutes(OVERLAP_MINUTES))
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            until.format("%Y-%m-%d 23:59:59").to_string(),
        );
        let mut on_page = on_page;
        listing = match client.list_skus(Some(precise), &mut on_page).await {
            Err(ApiError::Status {
                status: 400 | 422, ..
            }) => {
                let from = (since - ChronoDuration::days(1)).with_timezone(&tz);
                let days = (
                    from.format("%Y-%m-%d").to_string(),
                    until.format("%Y-%m-%d").to_string(),
                );
                client.list_skus(Some(days), &mut on_page).await?
            }
            other => other?,
        };
        fetched = listing.skus.len();
        state.index_store(&store, &listing.skus)?;
    }
    // The server's clock when this refresh started; without a `Date` header, the newest
    // update seen (never moving back), and only as a last resort our own clock.
    let watermark = listing.server_date.unwrap_or_else(|| {
        newest_update(&listing.skus)
            .into_iter()
            .chain(meta.watermark)
            .max()
            .unwrap_or(started)
    });
    let new_meta = IndexMeta {
        v: 1,
        last_full: if full { Some(started) } else { meta.last_full },
        last_refresh: Some(started),
        watermark: Some(watermark),
        suspects,
        export_scanned,
    };
    state.set_index_meta(&store, &new_meta)?;
    let skus = state.index_load(&store)?;
    tracing::info!(
        store = %store,
        skus = skus.len(),
        fetched,
        full,
        "SKU index refreshed"
    );
    Ok(SkuIndex {
        skus,
        was_full: full,
        fetched,
    })
}

/// A full scan through the SKU export, when `scan` allows it and the store is big enough (the
/// first page's `total`); `None` means "page instead", with a warning when the export was
/// wanted but could not be had or read.
async fn exported(
    client: &ShopClient,
    state: &StateStore,
    store: &str,
    scan: &Scan<'_>,
) -> Result<Option<SkuListing>, IndexError> {
    let Scan::Export {
        above,
        wait,
        aliases,
    } = scan
    else {
        return Ok(None);
    };
    // The store's size: the index's when there is one (no extra request on a rescan), else one
    // SKU on one page, whose `total` counts them and whose `Date` is the store's clock before
    // the export starts (updates after it are picked up by the next incremental refresh).
    let known = state.index_load(store)?;
    let (total, server_date) = if known.is_empty() {
        let probe = client
            .send(
                Method::GET,
                "catalog/skus",
                &[
                    ("skipCache", "true".to_string()),
                    ("orderBy", "id".to_string()),
                    ("sortedBy", "asc".to_string()),
                    ("page", "1".to_string()),
                    ("limit", "1".to_string()),
                ],
                None,
                true,
            )
            .await?;
        (
            Pagination::from_body(&probe.body).total.unwrap_or(0),
            probe.date,
        )
    } else {
        (known.len() as u64, None)
    };
    if total <= *above {
        return Ok(None);
    }
    // Waiting longer than paging would take is worse than paging.
    let limits = client.limiter().limits;
    let pages = total.div_ceil(u64::from(crate::shop::PAGE_LIMIT));
    let paging = limits
        .window
        .mul_f64(pages as f64 / f64::from(limits.get_skus.max(1)))
        .max(std::time::Duration::from_secs(60));
    let wait = Wait {
        timeout: wait.timeout.min(paging),
        ..*wait
    };
    let export = match exports::sku_export(client, wait, aliases).await {
        Ok(e) if e.cols.product_id.is_none() || e.cols.sku.is_none() => {
            tracing::warn!(
                store,
                queue = e.queue_id,
                "The SKU export has no product id or sku column; the index is read page by page instead"
            );
            return Ok(None);
        }
        Ok(e) => {
            exports::keep_header(state, store, &e);
            e
        }
        Err(e) => {
            tracing::warn!(
                store,
                "The SKU export could not be had ({e}); the index is read page by page instead"
            );
            return Ok(None);
        }
    };
    // What the export does not carry is kept from the index where the SKU is already in it.
    let mut skus = Vec::with_capacity(export.rows.len());
    // The export names the product and its variation values (no SKU title): reports show them.
    let col = |name: &str| export.header.iter().position(|h| h.trim() == name);
    let (name_col, variation_col) = (col("nome_produto"), col("valores_de_variacoes"));
    for r in export.rows {
        let Some(product_id) = r.product_id else {
            tracing::warn!(
                store,
                queue = export.queue_id,
                row = r.row,
                sku = r.sku_id,
                "A SKU export row has no product id; the index is read page by page instead"
            );
            return Ok(None);
        };
        let old = known.get(&r.sku_id);
        let text_at = |c: Option<usize>| {
            c.and_then(|c| r.cells.get(c))
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        };
        let title = text_at(name_col).or_else(|| old.and_then(|o| o.title.clone()));
        let variation = text_at(variation_col).or_else(|| old.and_then(|o| o.variation.clone()));
        skus.push(IndexedSku {
            id: r.sku_id,
            product_id,
            sku: r.sku,
            erp_id: old.and_then(|o| o.erp_id.clone()),
            barcode: old.and_then(|o| o.barcode.clone()),
            price_cost: r.price_cost,
            price_sale: r.price_sale,
            price_discount: r.price_discount,
            total_in_stock: old.and_then(|o| o.total_in_stock),
            quantity_managed: old.and_then(|o| o.quantity_managed),
            updated_at: old.and_then(|o| o.updated_at.clone()),
            title,
            variation,
        });
    }
    tracing::info!(
        store,
        skus = skus.len(),
        queue = export.queue_id,
        "SKU index read from the SKU export"
    );
    Ok(Some(SkuListing { skus, server_date }))
}

/// Stores a full scan and deals with the indexed SKUs it did not see. A scan can miss a SKU
/// that still exists (a deletion earlier in the order shifts the pages), so a SKU is removed
/// only once the store says it is gone: a few are checked one by one (404 = gone); when many
/// are missing, those the previous full scan also missed go and the rest wait for the next
/// one. Returns the SKUs still unconfirmed.
async fn settle_missing(
    client: &ShopClient,
    state: &StateStore,
    store: &str,
    scanned: &[IndexedSku],
    previous_suspects: &[u64],
) -> Result<Vec<u64>, IndexError> {
    let seen: HashSet<u64> = scanned.iter().map(|s| s.id).collect();
    let mut missing: Vec<u64> = state
        .index_load(store)?
        .into_keys()
        .filter(|id| !seen.contains(id))
        .collect();
    missing.sort_unstable();
    state.index_store(store, scanned)?;
    let mut gone = Vec::new();
    let mut unconfirmed = Vec::new();
    if missing.len() <= CONFIRM_MAX {
        let mut found = Vec::new();
        for id in missing {
            match client.sku(id).await {
                Ok(None) => gone.push(id),
                Ok(Some(sku)) => found.push(sku),
                Err(e) => {
                    tracing::warn!(
                        store,
                        sku = id,
                        "A SKU the scan missed could not be checked, so it stays in the index until the next full scan: {e}"
                    );
                    unconfirmed.push(id);
                }
            }
        }
        if !found.is_empty() {
            tracing::info!(
                store,
                skus = found.len(),
                "SKUs the scan missed still exist (the pages shifted during the scan); kept"
            );
            state.index_store(store, &found)?;
        }
    } else {
        let before: HashSet<u64> = previous_suspects.iter().copied().collect();
        let (twice, once): (Vec<u64>, Vec<u64>) =
            missing.into_iter().partition(|id| before.contains(id));
        if !once.is_empty() {
            tracing::warn!(
                store,
                skus = once.len(),
                "The full scan missed many indexed SKUs; they stay until the next full scan confirms they are gone"
            );
        }
        gone = twice;
        unconfirmed = once;
    }
    if !gone.is_empty() {
        state.index_remove(store, &gone)?;
    }
    Ok(unconfirmed)
}

/// The newest `updated_at` among `skus` (store-local text), as a UTC instant.
fn newest_update(skus: &[IndexedSku]) -> Option<DateTime<Utc>> {
    let tz = crate::shop::STORE_ZONE;
    skus.iter()
        .filter_map(|s| s.updated_at.as_deref())
        .filter_map(|t| NaiveDateTime::parse_from_str(t.trim(), "%Y-%m-%d %H:%M:%S").ok())
        .max()
        .and_then(|t| t.and_local_timezone(tz).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// Makes the next refresh a full rescan (a write found a SKU or product gone).
pub fn invalidate(state: &StateStore, store: &str) -> Result<(), StateError> {
    let mut meta = state.index_meta(store)?;
    meta.last_full = None;
    state.set_index_meta(store, &meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(id: u64, code: &str) -> IndexedSku {
        IndexedSku {
            id,
            product_id: 1,
            sku: code.into(),
            erp_id: None,
            barcode: Some(format!("B{id}")),
            price_cost: None,
            price_sale: None,
            price_discount: None,
            total_in_stock: None,
            quantity_managed: None,
            updated_at: None,
            title: None,
            variation: None,
        }
    }

    #[test]
    fn shared_keys_are_ambiguous_and_matching_ignores_case() {
        let idx = SkuIndex {
            skus: [sku(1, "A-1"), sku(2, " a-1"), sku(3, "B")]
                .into_iter()
                .map(|s| (s.id, s))
                .collect(),
            ..Default::default()
        };
        let l = idx.lookup(MatchField::Sku);
        assert_eq!(l.get("a-1"), Some(&KeyMatch::Ambiguous(vec![1, 2])));
        assert_eq!(l.get("b"), Some(&KeyMatch::One(3)));
        assert_eq!(idx.lookup(MatchField::ErpId).len(), 0);
        assert_eq!(
            idx.lookup(MatchField::Barcode).get("b3"),
            Some(&KeyMatch::One(3))
        );
    }
}
