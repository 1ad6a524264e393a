//! Moves what earlier versions kept in flight into the ledger (`ledger`), once, when the store
//! opens, so a state dir written by them keeps every write whose outcome is unknown:
//!
//! - `job/<name>`: `i` + product id (BE) → JSON `Vec<StockEntry>` (a `stocks/sync` in flight),
//!   `k` + sku id (BE) → JSON `PriceFields` (a price write in flight);
//! - `edits`: an occurrence record in state `sending` or `in_doubt`.
//!
//! Each job's (and each occurrence's) move is one atomic transaction: the old key goes and the
//! operation appears together, then the database is flushed.

use std::collections::BTreeMap;

use chrono::Utc;
use sled::Batch;

use super::ledger::{OpKind, Operation, TREE_PREFIX};
use super::{EditIntent, EditState, StateError, StateStore};

impl StateStore {
    pub(super) fn migrate_to_ledger(&self) -> Result<(), StateError> {
        let mut moved = 0usize;
        for name in self.db.tree_names() {
            let Some(job) = name.strip_prefix(b"job/") else {
                continue;
            };
            let job = String::from_utf8_lossy(job).into_owned();
            moved += self.migrate_job(&job)?;
        }
        moved += self.migrate_edits()?;
        if moved > 0 {
            self.db.flush().map_err(|e| self.err(e))?;
            tracing::info!(
                writes = moved,
                "Moved the writes an earlier version left in flight into the operation ledger"
            );
        }
        Ok(())
    }

    fn migrate_job(&self, job: &str) -> Result<usize, StateError> {
        let job_tree = format!("job/{job}");
        let tree = self.tree(&job_tree)?;
        let mut old = Batch::default();
        let mut ops = Batch::default();
        let mut n = 0;
        for (prefix, kind, key_of) in [
            (
                b'i',
                OpKind::StockSync,
                super::checkpoints::stock_key as fn(u64) -> String,
            ),
            (b'k', OpKind::PriceBatch, super::checkpoints::price_key),
        ] {
            for item in tree.scan_prefix([prefix]) {
                let (k, v) = item.map_err(|e| self.err(e))?;
                if k.len() != 9 {
                    continue;
                }
                let id = u64::from_be_bytes(k[1..9].try_into().unwrap_or_default());
                let intent: serde_json::Value =
                    serde_json::from_slice(&v).map_err(|e| StateError::Damaged {
                        dir: self.dir.clone(),
                        message: format!(
                            "the interrupted write of {} {id} of job {job} in {} cannot be read ({e}); nothing was sent, because its outcome is unknown — check the store, then restore the state dir from a backup",
                            if prefix == b'i' { "product" } else { "SKU" },
                            self.dir.join("db").display()
                        ),
                    })?;
                let op = Operation {
                    v: 1,
                    kind,
                    key: key_of(id),
                    intent,
                    // Unknown: earlier versions did not record it.
                    at: Utc::now(),
                    unknown: None,
                };
                let bytes = serde_json::to_vec(&op).map_err(|e| self.err(e))?;
                ops.insert(op.key.as_bytes(), bytes);
                old.remove(k);
                n += 1;
            }
        }
        if n > 0 {
            let mut writes = BTreeMap::new();
            writes.insert(job_tree, old);
            writes.insert(format!("{TREE_PREFIX}{job}"), ops);
            self.apply_atomically(writes)?;
        }
        Ok(n)
    }

    fn migrate_edits(&self) -> Result<usize, StateError> {
        let mut n = 0;
        for item in self.edits.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let rec = self.parse_edit(&k, &v)?;
            if !matches!(rec.state, EditState::Sending | EditState::InDoubt) {
                continue;
            }
            let key = String::from_utf8_lossy(&k).into_owned();
            let intent = EditIntent {
                job: rec.job.clone(),
                occurrence: rec.occurrence.clone(),
            };
            let mut op =
                Operation::new(OpKind::BatchEdit, key, &intent).map_err(|e| self.err(e))?;
            op.at = rec.at;
            op.unknown = (rec.state == EditState::InDoubt).then(|| rec.message.clone());
            let mut old = Batch::default();
            old.remove(k);
            let mut ops = Batch::default();
            ops.insert(
                op.key.as_bytes(),
                serde_json::to_vec(&op).map_err(|e| self.err(e))?,
            );
            let mut writes = BTreeMap::new();
            writes.insert("edits".to_string(), old);
            writes.insert(format!("{TREE_PREFIX}{}", rec.job), ops);
            self.apply_atomically(writes)?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::super::*;
    use crate::model::StockEntry;

    /// The keys the version before the ledger wrote, written straight into the database.
    fn write_old_format(dir: &std::path::Path) {
        let db = sled::open(dir.join("db")).unwrap();
        let job = db.open_tree("job/estoque").unwrap();
        let entries = vec![StockEntry {
            sku_id: 7,
            stock_id: 1,
            quantity: 5,
            min_quantity: 0,
        }];
        let mut k = vec![b'i'];
        k.extend_from_slice(&70u64.to_be_bytes());
        job.insert(k, serde_json::to_vec(&entries).unwrap())
            .unwrap();
        let mut k = vec![b'k'];
        k.extend_from_slice(&8u64.to_be_bytes());
        let fields = PriceFields {
            sale: Some("19.90".parse().unwrap()),
            ..PriceFields::default()
        };
        job.insert(k, serde_json::to_vec(&fields).unwrap()).unwrap();
        let edits = db.open_tree("edits").unwrap();
        let rec = |state, message: &str| EditRecord {
            v: 1,
            state,
            at: Utc::now(),
            message: message.into(),
            job: "bf".into(),
            occurrence: "once".into(),
        };
        for (key, r) in [
            ("e@once", rec(EditState::Sending, "")),
            ("f@once", rec(EditState::InDoubt, "timed out")),
            ("g@once", rec(EditState::Applied, "applied")),
        ] {
            edits.insert(key, serde_json::to_vec(&r).unwrap()).unwrap();
        }
        db.flush().unwrap();
    }

    #[tokio::test]
    async fn a_state_dir_of_the_previous_version_keeps_its_writes_in_doubt() {
        let dir = tempfile::tempdir().unwrap();
        write_old_format(dir.path());
        {
            let s = StateStore::open(dir.path()).unwrap();
            let stock = s.stock_pending("estoque").unwrap();
            assert_eq!(stock[&70][0].quantity, 5);
            let prices = s.price_pending("estoque").unwrap();
            assert_eq!(prices[&8].sale, Some("19.90".parse().unwrap()));
            // The old keys are gone: one record of each write, in the ledger.
            let job = s.tree("job/estoque").unwrap();
            assert!(job.scan_prefix(b"i").next().is_none());
            assert!(job.scan_prefix(b"k").next().is_none());
            assert_eq!(
                s.edit_record("e@once").unwrap().unwrap().state,
                EditState::Sending
            );
            let f = s.edit_record("f@once").unwrap().unwrap();
            assert_eq!(
                (f.state, f.message.as_str()),
                (EditState::InDoubt, "timed out")
            );
            assert_eq!(
                s.edit_record("g@once").unwrap().unwrap().state,
                EditState::Applied
            );
            assert!(s.edits.get("e@once").unwrap().is_none());
            // Settling a migrated occurrence as not applied leaves nothing in doubt.
            let mut r = s.edit_record("f@once").unwrap().unwrap();
            r.state = EditState::NotApplied;
            s.set_edit_record("bf", "f@once", &r).await.unwrap();
            assert_eq!(
                s.edit_record("f@once").unwrap().unwrap().state,
                EditState::NotApplied
            );
        }
        // A second open finds nothing more to move and the same pending writes.
        let s = StateStore::open(dir.path()).unwrap();
        assert_eq!(s.ledger("estoque").unwrap().pending().unwrap().len(), 2);
        assert_eq!(
            s.edit_record("e@once").unwrap().unwrap().state,
            EditState::Sending
        );
        assert_eq!(
            s.edit_record("f@once").unwrap().unwrap().state,
            EditState::NotApplied
        );
    }
}
