//! The SKU index: store SKUs by id, kept in the state store, and the key lookups built from it.
//!
//! The first run reads the whole catalog (`GET /catalog/skus`, 100 per page). Later runs ask only
//! for SKUs updated since the last refresh (`date=updated_at:FROM|TO`, with a day of overlap so
//! time zones and clock skew cannot hide an update), and a full rescan every
//! `index_full_rescan_hours` (default 24) catches deletions. A write that finds a SKU gone marks
//! the index for a full rescan on the next run.

use std::collections::HashMap;

use chrono::{Duration as ChronoDuration, Utc};

use crate::mapping::{MatchField, normalize_key};
use crate::shop::model::IndexedSku;
use crate::shop::{ApiError, ShopClient};
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

/// Brings the stored index up to date and returns it.
pub async fn refresh(
    client: &ShopClient,
    state: &StateStore,
    force_full: bool,
    on_page: impl FnMut(u64, Option<u64>),
) -> Result<SkuIndex, IndexError> {
    let store = client.store().name.clone();
    let meta = state.index_meta(&store)?;
    let now = Utc::now();
    let full_due = match meta.last_full {
        None => true,
        Some(t) => {
            let age = now.signed_duration_since(t).to_std().unwrap_or_default();
            age >= client.store().index_full_rescan
        }
    };
    let full = force_full || full_due || meta.last_refresh.is_none();
    let started = Utc::now();
    let fetched;
    if full {
        let skus = client.list_skus(None, on_page).await?;
        fetched = skus.len();
        state.index_store(&store, &skus, true)?;
    } else {
        // Times in the store's zone (Yampi answers in America/Sao_Paulo), with ten minutes of
        // overlap so clock differences cannot hide an update. Servers that only understand the
        // legacy day form (`YYYY-MM-DD`) get that, with a day of overlap, after a 400/422.
        let tz = chrono_tz::America::Sao_Paulo;
        let since = meta.last_refresh.unwrap_or(now);
        let until = (now + ChronoDuration::days(1)).with_timezone(&tz);
        let precise = (
            (since - ChronoDuration::minutes(10))
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            until.format("%Y-%m-%d 23:59:59").to_string(),
        );
        let mut on_page = on_page;
        let skus = match client.list_skus(Some(precise), &mut on_page).await {
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
        fetched = skus.len();
        state.index_store(&store, &skus, false)?;
    }
    let new_meta = IndexMeta {
        v: 1,
        last_full: if full { Some(started) } else { meta.last_full },
        last_refresh: Some(started),
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
