//! What each write kind's outcome writes beside the ledger (`ledger`): the kind-specific pieces,
//! as [`Checkpoint`]s the ledger applies atomically with the outcome, and the kinds' views of
//! their pending operations.
//!
//! Keys in `job/<name>`: `p` + sku id + stock id (BE) → last pushed stock value (16 bytes);
//! `m` + sku id → the last pushed prices (JSON `PriceFields`).

use std::collections::HashMap;

use crate::model::{IndexedSku, PriceFields, StockEntry};

use super::ledger::{Checkpoint, OpKind, Operation};
use super::{StateError, StateStore, pushed_key, sku_key};

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
        let mut cp = Checkpoint::default();
        for e in entries {
            let mut v = [0u8; 16];
            v[..8].copy_from_slice(&e.quantity.to_be_bytes());
            v[8..].copy_from_slice(&e.min_quantity.to_be_bytes());
            cp.insert(&tree, &pushed_key(e.sku_id, e.stock_id)[..], &v[..]);
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
        }
        cp
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
        let mut cp = Checkpoint::default();
        for (sku, sent) in entries {
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
