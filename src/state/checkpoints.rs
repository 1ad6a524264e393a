//! What each write kind's outcome writes beside the ledger (`ledger`): the kind-specific pieces,
//! as [`Checkpoint`]s the ledger applies atomically with the outcome, and the kinds' views of
//! their pending operations.
//!
//! Keys in `job/<name>`: `p` + sku id + stock id (BE) → last pushed stock value (16 bytes);
//! `m` + sku id → the last pushed prices (JSON `PriceFields`). When they were pushed (for
//! `explain`) is kept beside them, so the values stay readable by earlier versions: `q` + sku id +
//! stock id → the stock value's time (i64 BE nanoseconds, UTC); `t` + sku id → per price field
//! (JSON `PriceTimes`). Values pushed before these existed have no time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{IndexedSku, PriceFields, Pushed, StockEntry};

use super::ledger::{Checkpoint, OpKind, Operation};
use super::{StateError, StateStore, pushed_key, sku_key};

/// The header row of a store's SKU export (the template every import must repeat), and when and
/// from which export it was read. Meta key `template/<store>`; refreshed from every fresh export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHeader {
    pub columns: Vec<String>,
    pub read_at: DateTime<Utc>,
    pub queue_id: u64,
}

fn header_key(store: &str) -> String {
    format!("template/{store}")
}

impl StateStore {
    /// The SKU export header last read for `store`, if any.
    pub fn sku_header(&self, store: &str) -> Result<Option<StoredHeader>, StateError> {
        self.get_meta(&header_key(store))
    }

    /// Records the header of a fresh SKU export of `store` (durable at the next flush).
    pub fn put_sku_header(&self, store: &str, header: &StoredHeader) -> Result<(), StateError> {
        self.put_meta(&header_key(store), header)
    }
}

/// When each price field of a SKU was last pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTimes {
    pub sale: Option<DateTime<Utc>>,
    pub discount: Option<DateTime<Utc>>,
    pub cost: Option<DateTime<Utc>>,
}

impl PriceTimes {
    /// `at` for every field `sent` sets.
    fn stamp(&mut self, sent: &PriceFields, at: DateTime<Utc>) {
        if sent.sale.is_some() {
            self.sale = Some(at);
        }
        if sent.discount.is_some() {
            self.discount = Some(at);
        }
        if sent.cost.is_some() {
            self.cost = Some(at);
        }
    }

    fn forget(&mut self, sent: &PriceFields) {
        if sent.sale.is_some() {
            self.sale = None;
        }
        if sent.discount.is_some() {
            self.discount = None;
        }
        if sent.cost.is_some() {
            self.cost = None;
        }
    }
}

/// A SKU's last pushed value in one stock: (stock id, value, when it was pushed).
pub type StockPushed = (u64, Pushed, Option<DateTime<Utc>>);

/// The key of a stock value's push time: `q` + sku id + stock id.
fn pushed_time_key(sku: u64, stock: u64) -> [u8; 17] {
    let mut k = pushed_key(sku, stock);
    k[0] = b'q';
    k
}

fn nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt()
        .unwrap_or_else(|| at.timestamp_millis().saturating_mul(1_000_000))
}

/// The ledger key of a product's `stocks/sync`.
pub fn stock_key(product_id: u64) -> String {
    format!("product:{product_id}")
}

/// The ledger key of a SKU's part of a price batch update.
pub fn price_key(sku_id: u64) -> String {
    format!("sku:{sku_id}")
}

fn id_of(key: &str, prefix: &str) -> Option<u64> {
    key.strip_prefix(prefix)?.parse().ok()
}

impl StateStore {
    fn undecodable(&self, job: &str, op: &Operation, e: impl std::fmt::Display) -> StateError {
        StateError::Damaged {
            dir: self.dir.clone(),
            message: format!(
                "the interrupted write {} of job {job} in {} cannot be read ({e}); nothing was sent, because its outcome is unknown — check the store, then restore the state dir from a backup",
                op.key,
                self.dir.join("db").display()
            ),
        }
    }

    // --- stock ---------------------------------------------------------------------------

    /// The intent of a product's `stocks/sync`.
    pub fn stock_op(
        &self,
        product_id: u64,
        entries: &[StockEntry],
    ) -> Result<Operation, StateError> {
        Operation::new(OpKind::StockSync, stock_key(product_id), &entries).map_err(|e| self.err(e))
    }

    /// Stock writes whose outcome is unknown, per product.
    pub fn stock_pending(&self, job: &str) -> Result<HashMap<u64, Vec<StockEntry>>, StateError> {
        let mut out = HashMap::new();
        for op in self.ledger(job)?.pending_of(OpKind::StockSync)? {
            let product =
                id_of(&op.key, "product:").ok_or_else(|| self.undecodable(job, &op, "bad key"))?;
            let entries = op
                .intent_as::<Vec<StockEntry>>()
                .map_err(|e| self.undecodable(job, &op, e))?;
            out.insert(product, entries);
        }
        Ok(out)
    }

    /// A `stocks/sync` that landed: its entries become the pushed values.
    pub fn stock_checkpoint(&self, job: &str, entries: &[StockEntry]) -> Checkpoint {
        let tree = format!("job/{job}");
        let at = nanos(Utc::now()).to_be_bytes();
        let mut cp = Checkpoint::default();
        for e in entries {
            let mut v = [0u8; 16];
            v[..8].copy_from_slice(&e.quantity.to_be_bytes());
            v[8..].copy_from_slice(&e.min_quantity.to_be_bytes());
            cp.insert(&tree, &pushed_key(e.sku_id, e.stock_id)[..], &v[..]);
            cp.insert(&tree, &pushed_time_key(e.sku_id, e.stock_id)[..], &at[..]);
        }
        cp
    }

    /// A `stocks/sync` not known to have landed: its entries stop having pushed values, so the
    /// SKUs are planned again from the feed whatever the store holds.
    pub fn stock_forget(&self, job: &str, entries: &[StockEntry]) -> Checkpoint {
        let tree = format!("job/{job}");
        let mut cp = Checkpoint::default();
        for e in entries {
            cp.remove(&tree, &pushed_key(e.sku_id, e.stock_id)[..]);
            cp.remove(&tree, &pushed_time_key(e.sku_id, e.stock_id)[..]);
        }
        cp
    }

    /// One SKU's last pushed stock values, per stock id, with when they were pushed (`None`:
    /// pushed by a version that did not record it).
    pub fn stock_pushed_of(&self, job: &str, sku_id: u64) -> Result<Vec<StockPushed>, StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let mut prefix = vec![b'p'];
        prefix.extend_from_slice(&sku_id.to_be_bytes());
        let mut out = Vec::new();
        for item in tree.scan_prefix(&prefix) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let (Ok(stock), Ok(q), Ok(min)) = (
                <[u8; 8]>::try_from(&k[9..]),
                <[u8; 8]>::try_from(&v[..8.min(v.len())]),
                <[u8; 8]>::try_from(&v[8.min(v.len())..]),
            ) else {
                continue;
            };
            let stock = u64::from_be_bytes(stock);
            let at = tree
                .get(pushed_time_key(sku_id, stock))
                .map_err(|e| self.err(e))?
                .and_then(|t| <[u8; 8]>::try_from(t.as_ref()).ok())
                .map(|b| DateTime::<Utc>::from_timestamp_nanos(i64::from_be_bytes(b)));
            let pushed = Pushed {
                quantity: i64::from_be_bytes(q),
                min_quantity: i64::from_be_bytes(min),
            };
            out.push((stock, pushed, at));
        }
        Ok(out)
    }

    /// One SKU's last pushed prices and when each field was pushed.
    pub fn prices_pushed_of(
        &self,
        job: &str,
        sku_id: u64,
    ) -> Result<(PriceFields, PriceTimes), StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let read = |prefix: u8| tree.get(sku_key(prefix, sku_id)).map_err(|e| self.err(e));
        let fields = read(b'm')?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        let times = read(b't')?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        Ok((fields, times))
    }

    // --- prices --------------------------------------------------------------------------

    /// The intents of one price batch update, one per SKU.
    pub fn price_ops(&self, entries: &[(u64, PriceFields)]) -> Result<Vec<Operation>, StateError> {
        entries
            .iter()
            .map(|(sku, fields)| {
                Operation::new(OpKind::PriceBatch, price_key(*sku), fields).map_err(|e| self.err(e))
            })
            .collect()
    }

    /// Price writes whose outcome is unknown, per SKU.
    pub fn price_pending(&self, job: &str) -> Result<HashMap<u64, PriceFields>, StateError> {
        let mut out = HashMap::new();
        for op in self.ledger(job)?.pending_of(OpKind::PriceBatch)? {
            let sku =
                id_of(&op.key, "sku:").ok_or_else(|| self.undecodable(job, &op, "bad key"))?;
            let fields = op
                .intent_as::<PriceFields>()
                .map_err(|e| self.undecodable(job, &op, e))?;
            out.insert(sku, fields);
        }
        Ok(out)
    }

    /// Price writes that landed: the sent fields merged into the last pushed prices, and the
    /// SKU index updated (the next run's checks against the store's prices read it).
    pub fn price_checkpoint(
        &self,
        job: &str,
        store: &str,
        entries: &[(u64, PriceFields)],
    ) -> Result<Checkpoint, StateError> {
        let name = format!("job/{job}");
        let index_name = format!("index/{store}");
        let tree = self.tree(&name)?;
        let index = self.tree(&index_name)?;
        let now = Utc::now();
        let mut cp = Checkpoint::default();
        for (sku, sent) in entries {
            let time_key = sku_key(b't', *sku);
            let mut times: PriceTimes = match tree.get(time_key).map_err(|e| self.err(e))? {
                Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
                None => PriceTimes::default(),
            };
            times.stamp(sent, now);
            let bytes = serde_json::to_vec(&times).map_err(|e| self.err(e))?;
            cp.insert(&name, &time_key[..], bytes);
            let key = sku_key(b'm', *sku);
            let mut merged: PriceFields = match tree.get(key).map_err(|e| self.err(e))? {
                Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
                None => PriceFields::default(),
            };
            merged.merge(sent);
            let bytes = serde_json::to_vec(&merged).map_err(|e| self.err(e))?;
            cp.insert(&name, &key[..], bytes);
            if let Some(v) = index.get(sku.to_be_bytes()).map_err(|e| self.err(e))?
                && let Ok(mut s) = serde_json::from_slice::<IndexedSku>(&v)
            {
                s.price_sale = sent.sale.or(s.price_sale);
                s.price_discount = sent.discount.or(s.price_discount);
                s.price_cost = sent.cost.or(s.price_cost);
                let bytes = serde_json::to_vec(&s).map_err(|e| self.err(e))?;
                cp.insert(&index_name, &sku.to_be_bytes()[..], bytes);
            }
        }
        Ok(cp)
    }

    /// Price writes the store does not confirm: the fields they were sending are dropped from
    /// the last pushed prices, so the feed plans them again.
    pub fn price_forget(
        &self,
        job: &str,
        entries: &[(u64, PriceFields)],
    ) -> Result<Checkpoint, StateError> {
        let name = format!("job/{job}");
        let tree = self.tree(&name)?;
        let mut cp = Checkpoint::default();
        for (sku, sent) in entries {
            let time_key = sku_key(b't', *sku);
            if let Some(v) = tree.get(time_key).map_err(|e| self.err(e))? {
                let mut times: PriceTimes = serde_json::from_slice(&v).unwrap_or_default();
                times.forget(sent);
                let bytes = serde_json::to_vec(&times).map_err(|e| self.err(e))?;
                cp.insert(&name, &time_key[..], bytes);
            }
            let key = sku_key(b'm', *sku);
            if let Some(v) = tree.get(key).map_err(|e| self.err(e))? {
                let mut pushed: PriceFields = serde_json::from_slice(&v).unwrap_or_default();
                pushed.forget(sent);
                if pushed == PriceFields::default() {
                    cp.remove(&name, &key[..]);
                } else {
                    let bytes = serde_json::to_vec(&pushed).map_err(|e| self.err(e))?;
                    cp.insert(&name, &key[..], bytes);
                }
            }
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sku_header_is_kept_per_store_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let header = StoredHeader {
            columns: vec!["id".into(), "preço_venda".into()],
            read_at: Utc::now(),
            queue_id: 9,
        };
        {
            let s = StateStore::open(dir.path()).unwrap();
            assert_eq!(s.sku_header("loja").unwrap(), None);
            s.put_sku_header("loja", &header).unwrap();
            s.db.flush().unwrap();
        }
        let s = StateStore::open(dir.path()).unwrap();
        assert_eq!(s.sku_header("loja").unwrap(), Some(header));
        assert_eq!(s.sku_header("outra").unwrap(), None);
    }
    use crate::state::Outcome;

    #[tokio::test]
    async fn push_times_are_recorded_and_values_without_one_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        let e = [StockEntry {
            sku_id: 7,
            stock_id: 1,
            quantity: 5,
            min_quantity: 0,
        }];
        let before = Utc::now();
        let l = s.ledger("j").unwrap();
        l.intend(&[s.stock_op(70, &e).unwrap()]).await.unwrap();
        l.settle(
            &stock_key(70),
            Outcome::Applied(s.stock_checkpoint("j", &e)),
        )
        .await
        .unwrap();
        let got = s.stock_pushed_of("j", 7).unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].2.is_some_and(|t| t >= before), "{got:?}");
        // As an earlier version wrote it: the value alone.
        let tree = s.tree("job/j").unwrap();
        tree.remove(pushed_time_key(7, 1)).unwrap();
        let got = s.stock_pushed_of("j", 7).unwrap();
        assert_eq!((got[0].1.quantity, got[0].2), (5, None));
        assert_eq!(s.pushed_load("j").unwrap().len(), 1);

        let prices = [(
            7u64,
            PriceFields {
                sale: Some("9.90".parse().unwrap()),
                ..PriceFields::default()
            },
        )];
        let cp = s.price_checkpoint("j", "loja", &prices).unwrap();
        let l = s.ledger("j").unwrap();
        l.intend(&s.price_ops(&prices).unwrap()).await.unwrap();
        l.settle(&price_key(7), Outcome::Applied(cp)).await.unwrap();
        let (p, t) = s.prices_pushed_of("j", 7).unwrap();
        assert_eq!(p.sale, prices[0].1.sale);
        assert!(t.sale.is_some() && t.cost.is_none(), "{t:?}");
    }
}
