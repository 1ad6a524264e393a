//! The operation ledger: every write a job makes (a `stocks/sync`, a price batch update, a batch
//! edit, an import line) goes through the same durable steps, written once here.
//!
//! - `intend(ops)`: the operations are recorded and fsync'd before the request leaves.
//! - `settle(key, Applied(checkpoint))`: the operation leaves the ledger and the kind's checkpoint
//!   writes (pushed values, index updates, the edit's record) land with it in one atomic sled
//!   transaction, then fsync.
//! - `settle(key, Failed(msg))`: refused, so not applied: the operation leaves, nothing else is
//!   written.
//! - `settle(key, Unknown(msg))`: the request may have been applied: the operation stays, in
//!   doubt, with the reason.
//! - `settle(key, Replanned(writes))`: an operation in doubt that the kind made harmless (the
//!   values pushed before it forgotten, so the plan sends again whatever it did): it leaves with
//!   those writes, atomically.
//! - `settle_groups(...)`: a whole import file's outcomes at once, checkpoints first (durable),
//!   then the ledger's records (durable): two steps instead of one transaction, for checkpoints
//!   that are safe to write twice.
//! - `pending()`: the operations whose outcome is not known, left by a crash or recorded unknown.
//!
//! One ledger per job: the sled tree `ledger/<job>`, operation key → JSON [`Operation`]. Only
//! operations without a known outcome are kept; what an applied one changed is the kind's
//! checkpoint.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Batch, IVec, Transactional};

use super::{StateError, StateStore};

/// The sled tree of a job's ledger.
pub(super) const TREE_PREFIX: &str = "ledger/";

const VERSION: u32 = 1;

/// What kind of write an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// One `stocks/sync` of a product; key `product:<id>`, intent `Vec<StockEntry>`.
    StockSync,
    /// A SKU's part of a `batch-update-skus`; key `sku:<id>`, intent `PriceFields`.
    PriceBatch,
    /// One occurrence of a batch edit; key `<edit hash>@<UTC instant>`, intent `EditIntent`.
    BatchEdit,
    /// One line of an import queue; key `queue:<id>:line:<n>`, intent as the importer wants.
    ImportLine,
}

/// One write, as recorded before it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub v: u32,
    pub kind: OpKind,
    /// Unique within the job.
    pub key: String,
    /// What the write sets.
    pub intent: serde_json::Value,
    /// When it was intended.
    pub at: DateTime<Utc>,
    /// Why its outcome is unknown, once recorded so (`None`: intended, then nothing heard —
    /// a crash while it was in flight).
    #[serde(default)]
    pub unknown: Option<String>,
}

impl Operation {
    pub fn new(
        kind: OpKind,
        key: impl Into<String>,
        intent: &impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            v: VERSION,
            kind,
            key: key.into(),
            intent: serde_json::to_value(intent)?,
            at: Utc::now(),
            unknown: None,
        })
    }

    /// The intent as the kind wrote it.
    pub fn intent_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.intent)
    }
}

/// How a write ended.
#[derive(Debug)]
pub enum Outcome {
    /// The store applied it: the operation goes, the checkpoint lands with it.
    Applied(Checkpoint),
    /// The store refused it (an answer with a status): not applied, nothing checkpointed.
    Failed(String),
    /// It may or may not have been applied: kept, in doubt, never counted as applied.
    Unknown(String),
    /// In doubt, and the kind made that harmless with these writes (the pushed values it could
    /// have changed are forgotten): the operation goes with them.
    Replanned(Checkpoint),
}

/// The writes a kind makes with an outcome, per sled tree, applied in the same transaction as
/// the ledger's own. Built by the kind's checkpoint functions (`state::checkpoints`).
#[derive(Debug, Default)]
pub struct Checkpoint {
    writes: BTreeMap<String, Batch>,
}

impl Checkpoint {
    pub(super) fn insert(&mut self, tree: &str, key: impl Into<IVec>, value: impl Into<IVec>) {
        self.writes
            .entry(tree.to_string())
            .or_default()
            .insert(key, value);
    }

    pub(super) fn remove(&mut self, tree: &str, key: impl Into<IVec>) {
        self.writes.entry(tree.to_string()).or_default().remove(key);
    }
}

/// A job's ledger.
pub struct Ledger<'a> {
    store: &'a StateStore,
    name: String,
    tree: sled::Tree,
}

impl StateStore {
    /// The ledger of `job`.
    pub fn ledger(&self, job: &str) -> Result<Ledger<'_>, StateError> {
        let name = format!("{TREE_PREFIX}{job}");
        Ok(Ledger {
            store: self,
            tree: self.tree(&name)?,
            name,
        })
    }

    /// Every ledger in the database (job name, ledger).
    pub(super) fn ledgers(&self) -> Result<Vec<(String, Ledger<'_>)>, StateError> {
        let mut out = Vec::new();
        for name in self.db.tree_names() {
            if let Some(job) = name.strip_prefix(TREE_PREFIX.as_bytes()) {
                let job = String::from_utf8_lossy(job).into_owned();
                out.push((job.clone(), self.ledger(&job)?));
            }
        }
        Ok(out)
    }

    /// Applies `writes` (tree name → batch) in one atomic transaction.
    pub(super) fn apply_atomically(
        &self,
        writes: BTreeMap<String, Batch>,
    ) -> Result<(), StateError> {
        let (names, batches): (Vec<String>, Vec<Batch>) = writes.into_iter().unzip();
        let trees = names
            .iter()
            .map(|n| self.tree(n))
            .collect::<Result<Vec<_>, _>>()?;
        trees
            .as_slice()
            .transaction(|t| {
                for (tree, batch) in t.iter().zip(&batches) {
                    tree.apply_batch(batch)?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e: TransactionError<()>| self.err(format!("{e:?}")))
    }
}

impl Ledger<'_> {
    /// Records `ops` as intended, in one batch, and makes them durable before returning: only
    /// then may their requests leave.
    pub async fn intend(&self, ops: &[Operation]) -> Result<(), StateError> {
        let mut batch = Batch::default();
        for op in ops {
            let bytes = serde_json::to_vec(op).map_err(|e| self.store.err(e))?;
            batch.insert(op.key.as_bytes(), bytes);
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| self.store.err(e))?;
        self.store.flush().await
    }

    /// Records how the write `key` ended (see [`Outcome`]), durably.
    pub async fn settle(&self, key: &str, outcome: Outcome) -> Result<(), StateError> {
        self.settle_all(&[key], outcome).await
    }

    /// Records one outcome for several operations sent as one request, in one transaction.
    pub async fn settle_all(
        &self,
        keys: &[impl AsRef<str>],
        outcome: Outcome,
    ) -> Result<(), StateError> {
        let mut writes = BTreeMap::new();
        // The ledger's own writes: key → new record, or `None` to remove it.
        let mut own: Vec<(&str, Option<Vec<u8>>)> = Vec::new();
        match outcome {
            Outcome::Unknown(why) => {
                for key in keys.iter().map(AsRef::as_ref) {
                    if let Some(bytes) = self.marked_unknown(key, &why)? {
                        own.push((key, Some(bytes)));
                    }
                }
            }
            Outcome::Failed(_) => own.extend(keys.iter().map(|k| (k.as_ref(), None))),
            Outcome::Applied(cp) | Outcome::Replanned(cp) => {
                writes = cp.writes;
                own.extend(keys.iter().map(|k| (k.as_ref(), None)));
            }
        }
        // A checkpoint never names the ledger's tree; if one did, the outcome still goes last.
        let mut merged = writes.remove(&self.name).unwrap_or_default();
        for (k, v) in own {
            match v {
                Some(v) => merged.insert(k.as_bytes(), v),
                None => merged.remove(k.as_bytes()),
            }
        }
        writes.insert(self.name.clone(), merged);
        self.store.apply_atomically(writes)?;
        self.store.flush().await
    }

    /// Records several groups of outcomes (each group: its operations and their one outcome) for
    /// a file's thousands of lines at once: the checkpoints first, made durable, then the
    /// ledger's own records, made durable. Not one transaction (a sled transaction of 100,000
    /// writes takes seconds), so the checkpoints must be safe to write twice, as the import's
    /// are: a crash in between leaves the operations pending with their checkpoints written,
    /// and settling them again writes the same values.
    pub async fn settle_groups(&self, groups: Vec<(Vec<&str>, Outcome)>) -> Result<(), StateError> {
        let mut writes: Vec<(String, Batch)> = Vec::new();
        // The ledger's own writes: the new record of an operation in doubt, or its removal.
        let mut own = Batch::default();
        for (keys, outcome) in groups {
            match outcome {
                Outcome::Unknown(why) => {
                    for key in keys {
                        if let Some(bytes) = self.marked_unknown(key, &why)? {
                            own.insert(key.as_bytes(), bytes);
                        }
                    }
                }
                Outcome::Failed(_) => keys.iter().for_each(|k| own.remove(k.as_bytes())),
                Outcome::Applied(cp) | Outcome::Replanned(cp) => {
                    writes.extend(cp.writes);
                    keys.iter().for_each(|k| own.remove(k.as_bytes()));
                }
            }
        }
        if !writes.is_empty() {
            for (name, batch) in writes {
                self.store
                    .tree(&name)?
                    .apply_batch(batch)
                    .map_err(|e| self.store.err(e))?;
            }
            self.store.flush().await?;
        }
        self.tree.apply_batch(own).map_err(|e| self.store.err(e))?;
        self.store.flush().await
    }

    /// The record of pending operation `key` marked unknown for `why`; `None` when it is gone.
    fn marked_unknown(&self, key: &str, why: &str) -> Result<Option<Vec<u8>>, StateError> {
        let Some(mut op) = self.get(key)? else {
            return Ok(None);
        };
        op.unknown = Some(why.into());
        serde_json::to_vec(&op)
            .map(Some)
            .map_err(|e| self.store.err(e))
    }

    /// One operation, if it is still in the ledger.
    pub fn get(&self, key: &str) -> Result<Option<Operation>, StateError> {
        match self.tree.get(key).map_err(|e| self.store.err(e))? {
            Some(v) => Ok(Some(self.parse(key.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// The operations whose outcome is not known (left by a crash, or recorded unknown), by key.
    pub fn pending(&self) -> Result<Vec<Operation>, StateError> {
        self.pending_with_prefix("")
    }

    /// The pending operations whose key starts with `prefix`, by key.
    pub fn pending_with_prefix(&self, prefix: &str) -> Result<Vec<Operation>, StateError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, v) = item.map_err(|e| self.store.err(e))?;
            out.push(self.parse(&k, &v)?);
        }
        Ok(out)
    }

    /// The pending operations of one kind, by key.
    pub fn pending_of(&self, kind: OpKind) -> Result<Vec<Operation>, StateError> {
        let mut ops = self.pending()?;
        ops.retain(|op| op.kind == kind);
        Ok(ops)
    }

    fn parse(&self, key: &[u8], v: &[u8]) -> Result<Operation, StateError> {
        serde_json::from_slice(v).map_err(|e| StateError::Damaged {
            dir: self.store.dir.clone(),
            message: format!(
                "the record of the write {} in {} (tree {}) cannot be read ({e}); nothing was sent, because its outcome is unknown — check the store, then restore the state dir from a backup",
                String::from_utf8_lossy(key),
                self.store.dir.join("db").display(),
                self.name
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(queue: u64, n: u32) -> Operation {
        Operation::new(
            OpKind::ImportLine,
            format!("queue:{queue}:line:{n}"),
            &serde_json::json!({"sku": format!("SKU-{n}"), "price_sale": "19.90"}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn an_import_lines_outcomes_survive_a_reopen_and_the_unsettled_one_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = StateStore::open(dir.path()).unwrap();
            let l = s.ledger("import").unwrap();
            l.intend(&[line(9, 1), line(9, 2), line(9, 3)])
                .await
                .unwrap();
            assert_eq!(l.pending().unwrap().len(), 3);
            l.settle("queue:9:line:1", Outcome::Applied(Checkpoint::default()))
                .await
                .unwrap();
            l.settle("queue:9:line:2", Outcome::Failed("422: bad SKU".into()))
                .await
                .unwrap();
            // The process dies here, before line 3 is answered.
        }
        let s = StateStore::open(dir.path()).unwrap();
        let pending = s.ledger("import").unwrap().pending().unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].key, "queue:9:line:3");
        assert_eq!(pending[0].kind, OpKind::ImportLine);
        assert_eq!(pending[0].unknown, None, "intended, never answered");
        assert_eq!(pending[0].intent["sku"], "SKU-3");
        assert!(s.ledger("other").unwrap().pending().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_unknown_outcome_stays_pending_and_an_applied_one_lands_with_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = StateStore::open(dir.path()).unwrap();
            let l = s.ledger("j").unwrap();
            l.intend(&[line(1, 1), line(1, 2)]).await.unwrap();
            l.settle("queue:1:line:1", Outcome::Unknown("timed out".into()))
                .await
                .unwrap();
            let mut cp = Checkpoint::default();
            cp.insert("job/j", "line-2-done", "yes");
            cp.insert("index/loja", "other-tree", "too");
            l.settle("queue:1:line:2", Outcome::Applied(cp))
                .await
                .unwrap();
        }
        let s = StateStore::open(dir.path()).unwrap();
        let pending = s.ledger("j").unwrap().pending().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].key, "queue:1:line:1");
        assert_eq!(pending[0].unknown.as_deref(), Some("timed out"));
        let job = s.tree("job/j").unwrap();
        assert_eq!(
            job.get("line-2-done").unwrap().as_deref(),
            Some(&b"yes"[..])
        );
        let index = s.tree("index/loja").unwrap();
        assert_eq!(
            index.get("other-tree").unwrap().as_deref(),
            Some(&b"too"[..])
        );
    }

    #[tokio::test]
    async fn groups_of_outcomes_settle_with_their_checkpoints_and_a_later_batch_wins() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = StateStore::open(dir.path()).unwrap();
            let l = s.ledger("j").unwrap();
            l.intend(&[line(2, 1), line(2, 2), line(2, 3), line(2, 4)])
                .await
                .unwrap();
            let (mut applied, mut replanned) = (Checkpoint::default(), Checkpoint::default());
            applied.insert("job/j", "m1", "pushed");
            replanned.insert("job/j", "m1", "later-wins");
            replanned.remove("job/j", "m4");
            l.settle_groups(vec![
                (vec!["queue:2:line:1"], Outcome::Applied(applied)),
                (vec!["queue:2:line:2"], Outcome::Failed("locked".into())),
                (vec!["queue:2:line:3"], Outcome::Unknown("no log".into())),
                (vec!["queue:2:line:4"], Outcome::Replanned(replanned)),
            ])
            .await
            .unwrap();
        }
        let s = StateStore::open(dir.path()).unwrap();
        let pending = s.ledger("j").unwrap().pending().unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].key, "queue:2:line:3");
        assert_eq!(pending[0].unknown.as_deref(), Some("no log"));
        let job = s.tree("job/j").unwrap();
        assert_eq!(job.get("m1").unwrap().as_deref(), Some(&b"later-wins"[..]));
    }

    #[tokio::test]
    async fn an_unreadable_operation_stops_instead_of_being_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        s.tree("ledger/j")
            .unwrap()
            .insert("sku:1", "{not json")
            .unwrap();
        let err = s.ledger("j").unwrap().pending().unwrap_err().to_string();
        assert!(
            err.contains("sku:1") && err.contains("cannot be read"),
            "{err}"
        );
    }
}
