//! The state store: everything yampi-sync remembers between runs, in one embedded sled database
//! under `state_dir/db`, behind this module only.
//!
//! Trees and keys:
//! - `meta`: small records (`job/<name>` → `JobRecord`, `index/<store>` → `IndexMeta`).
//! - `index/<store>`: the SKU index, `sku id (u64 BE)` → JSON `IndexedSku`.
//! - `job/<name>`: a job's checkpoints. `p` + sku id + stock id (BE) → last pushed stock value;
//!   `i` + product id → the write in flight for that product (an intent, recorded before sending).
//!   Success writes the pushed values and removes the intent in one atomic batch.
//!   `m` + sku id → the last pushed prices (JSON, per field); `k` + sku id → a price write in
//!   flight for that SKU.
//! - `edits/<name>`: scheduled occurrence → `EditRecord` (intent, then outcome) of a batch edit.
//! - `runs/<name>`: `start time (i64 BE nanoseconds)` → JSON `RunRecord`, for `status`.
//!
//! Every value carries a `v` version so later releases can read what earlier ones wrote.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::shop::model::IndexedSku;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state dir {dir} is in use by another yampi-sync process{pid}; stop it or use another --state-dir"
    )]
    Locked { dir: PathBuf, pid: String },
    #[error("cannot use the state dir {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state database in {dir} cannot be used: {message}")]
    Db { dir: PathBuf, message: String },
}

/// The last stock value this job pushed successfully for one SKU in one logistics stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    pub quantity: i64,
    pub min_quantity: i64,
}

/// One SKU × stock value in a planned `stocks/sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockEntry {
    pub sku_id: u64,
    pub stock_id: u64,
    pub quantity: i64,
    pub min_quantity: i64,
}

/// Prices of one SKU, per field; `None` = not set / leave alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceFields {
    pub sale: Option<rust_decimal::Decimal>,
    pub discount: Option<rust_decimal::Decimal>,
    pub cost: Option<rust_decimal::Decimal>,
}

impl PriceFields {
    /// Takes every field `other` sets.
    pub fn merge(&mut self, other: &PriceFields) {
        self.sale = other.sale.or(self.sale);
        self.discount = other.discount.or(self.discount);
        self.cost = other.cost.or(self.cost);
    }
}

/// Where a scheduled batch edit stands. `Sending` is written (and fsync'd) before the request
/// leaves, so a crash after that point is found as `Sending` and treated as in doubt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditState {
    Sending,
    Applied,
    NotApplied,
    InDoubt,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EditRecord {
    pub v: u32,
    pub state: EditState,
    pub at: DateTime<Utc>,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexMeta {
    pub v: u32,
    pub last_full: Option<DateTime<Utc>>,
    pub last_refresh: Option<DateTime<Utc>>,
    /// The server's clock when the last refresh started (its `Date` header): the next
    /// incremental refresh asks for updates from there, whatever our clock says.
    #[serde(default)]
    pub watermark: Option<DateTime<Utc>>,
    /// SKUs the last full scan did not see but could not confirm gone: removed when the next
    /// full scan misses them too.
    #[serde(default)]
    pub suspects: Vec<u64>,
}

/// What a job remembers about its last good run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobRecord {
    pub v: u32,
    /// Valid feed rows of the last run that passed the guards (for `max_shrink_pct`).
    pub last_good_rows: Option<u64>,
    /// Content hash of the last source file synced completely.
    pub last_synced_hash: Option<String>,
    pub last_synced_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub v: u32,
    pub job: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub exit_code: i32,
    pub changed: u64,
    pub rejected: u64,
    pub unmatched: u64,
    pub requests: u64,
    pub message: String,
    pub report: Option<String>,
}

pub struct StateStore {
    dir: PathBuf,
    db: sled::Db,
    meta: sled::Tree,
    /// Held for the life of the process: the single-instance lock.
    _lock: File,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("dir", &self.dir)
            .finish()
    }
}

const VERSION: u32 = 1;

impl StateStore {
    /// Opens (creating) the state dir and takes its lock; a second process fails here with the
    /// other one's pid instead of a sled error.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let io = |source| StateError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock_path = dir.join("yampi-sync.lock");
        let mut lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io)?;
        if lock.try_lock().is_err() {
            let mut pid = String::new();
            let _ = lock.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(StateError::Locked {
                dir: dir.to_path_buf(),
                pid: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
            });
        }
        lock.set_len(0).map_err(io)?;
        lock.rewind().map_err(io)?;
        write!(lock, "{}", std::process::id()).map_err(io)?;
        lock.flush().map_err(io)?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(32 * 1024 * 1024)
            .open()
            .map_err(|e| StateError::Db {
                dir: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        let meta = db.open_tree("meta").map_err(|e| db_err(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            db,
            meta,
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, e: impl std::fmt::Display) -> StateError {
        db_err(&self.dir, e)
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, StateError> {
        self.db.open_tree(name).map_err(|e| self.err(e))
    }

    fn get_meta<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, StateError> {
        match self.meta.get(key).map_err(|e| self.err(e))? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| self.err(format!("record {key} is unreadable: {e}"))),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(value).map_err(|e| self.err(e))?;
        self.meta.insert(key, bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes every write so far durable (fsync). Called after each checkpoint so a `kill -9`
    /// loses at most the requests in flight.
    pub async fn flush(&self) -> Result<(), StateError> {
        self.db.flush_async().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    // --- SKU index ---------------------------------------------------------------------------

    pub fn index_meta(&self, store: &str) -> Result<IndexMeta, StateError> {
        Ok(self
            .get_meta(&format!("index/{store}"))?
            .unwrap_or_default())
    }

    pub fn set_index_meta(&self, store: &str, meta: &IndexMeta) -> Result<(), StateError> {
        let mut m = meta.clone();
        m.v = VERSION;
        self.put_meta(&format!("index/{store}"), &m)
    }

    pub fn index_load(&self, store: &str) -> Result<HashMap<u64, IndexedSku>, StateError> {
        let tree = self.tree(&format!("index/{store}"))?;
        let mut out = HashMap::with_capacity(tree.len());
        for item in tree.iter() {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let sku: IndexedSku = serde_json::from_slice(&v)
                .map_err(|e| self.err(format!("SKU index entry is unreadable: {e}")))?;
            out.insert(sku.id, sku);
        }
        Ok(out)
    }

    /// Inserts or replaces SKUs; with `replace_all`, SKUs not in `skus` are removed (full rescan).
    pub fn index_store(
        &self,
        store: &str,
        skus: &[IndexedSku],
        replace_all: bool,
    ) -> Result<(), StateError> {
        let tree = self.tree(&format!("index/{store}"))?;
        let mut batch = sled::Batch::default();
        if replace_all {
            let keep: std::collections::HashSet<u64> = skus.iter().map(|s| s.id).collect();
            for k in tree.iter().keys() {
                let k = k.map_err(|e| self.err(e))?;
                if k.len() == 8
                    && !keep.contains(&u64::from_be_bytes(k[..8].try_into().unwrap_or_default()))
                {
                    batch.remove(k);
                }
            }
        }
        for s in skus {
            let v = serde_json::to_vec(s).map_err(|e| self.err(e))?;
            batch.insert(&s.id.to_be_bytes(), v);
        }
        tree.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn index_remove(&self, store: &str, sku_ids: &[u64]) -> Result<(), StateError> {
        let tree = self.tree(&format!("index/{store}"))?;
        for id in sku_ids {
            tree.remove(id.to_be_bytes()).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    // --- stock checkpoints -------------------------------------------------------------------

    pub fn pushed_load(&self, job: &str) -> Result<HashMap<(u64, u64), Pushed>, StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let mut out = HashMap::new();
        for item in tree.scan_prefix(b"p") {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if k.len() != 17 || v.len() != 16 {
                continue;
            }
            let sku = u64::from_be_bytes(k[1..9].try_into().unwrap_or_default());
            let stock = u64::from_be_bytes(k[9..17].try_into().unwrap_or_default());
            let quantity = i64::from_be_bytes(v[..8].try_into().unwrap_or_default());
            let min_quantity = i64::from_be_bytes(v[8..16].try_into().unwrap_or_default());
            out.insert(
                (sku, stock),
                Pushed {
                    quantity,
                    min_quantity,
                },
            );
        }
        Ok(out)
    }

    /// Records the write about to be sent for a product (durable before the request leaves).
    pub async fn intent_record(
        &self,
        job: &str,
        product_id: u64,
        entries: &[StockEntry],
    ) -> Result<(), StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let v = serde_json::to_vec(entries).map_err(|e| self.err(e))?;
        tree.insert(intent_key(product_id), v)
            .map_err(|e| self.err(e))?;
        self.flush().await
    }

    /// Writes left in flight by an earlier run that died, per product.
    pub fn intents_load(&self, job: &str) -> Result<HashMap<u64, Vec<StockEntry>>, StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let mut out = HashMap::new();
        for item in tree.scan_prefix(b"i") {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if k.len() != 9 {
                continue;
            }
            let product = u64::from_be_bytes(k[1..9].try_into().unwrap_or_default());
            if let Ok(entries) = serde_json::from_slice::<Vec<StockEntry>>(&v) {
                out.insert(product, entries);
            }
        }
        Ok(out)
    }

    pub fn intent_clear(&self, job: &str, product_id: u64) -> Result<(), StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        tree.remove(intent_key(product_id))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The checkpoint: pushed values recorded and the intent removed, atomically, then fsync'd.
    pub async fn checkpoint_stock(
        &self,
        job: &str,
        product_id: u64,
        entries: &[StockEntry],
    ) -> Result<(), StateError> {
        self.checkpoint_stock_nosync(job, product_id, entries)?;
        self.flush().await
    }

    fn checkpoint_stock_nosync(
        &self,
        job: &str,
        product_id: u64,
        entries: &[StockEntry],
    ) -> Result<(), StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let mut batch = sled::Batch::default();
        for e in entries {
            let mut v = [0u8; 16];
            v[..8].copy_from_slice(&e.quantity.to_be_bytes());
            v[8..].copy_from_slice(&e.min_quantity.to_be_bytes());
            batch.insert(&pushed_key(e.sku_id, e.stock_id)[..], &v[..]);
        }
        batch.remove(&intent_key(product_id)[..]);
        tree.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(())
    }

    // --- price checkpoints ---------------------------------------------------------------

    /// Last pushed prices per SKU (fields never pushed are `None`).
    pub fn prices_pushed_load(&self, job: &str) -> Result<HashMap<u64, PriceFields>, StateError> {
        self.load_sku_json(job, b'm')
    }

    /// Price writes left in flight by a run that died, per SKU.
    pub fn price_intents_load(&self, job: &str) -> Result<HashMap<u64, PriceFields>, StateError> {
        self.load_sku_json(job, b'k')
    }

    fn load_sku_json<T: for<'de> Deserialize<'de>>(
        &self,
        job: &str,
        prefix: u8,
    ) -> Result<HashMap<u64, T>, StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let mut out = HashMap::new();
        for item in tree.scan_prefix([prefix]) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if k.len() != 9 {
                continue;
            }
            let sku = u64::from_be_bytes(k[1..9].try_into().unwrap_or_default());
            if let Ok(x) = serde_json::from_slice::<T>(&v) {
                out.insert(sku, x);
            }
        }
        Ok(out)
    }

    /// Records the price writes about to be sent (durable before the request leaves).
    pub async fn price_intent_record(
        &self,
        job: &str,
        entries: &[(u64, PriceFields)],
    ) -> Result<(), StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let mut batch = sled::Batch::default();
        for (sku, v) in entries {
            let bytes = serde_json::to_vec(v).map_err(|e| self.err(e))?;
            batch.insert(&sku_key(b'k', *sku)[..], bytes);
        }
        tree.apply_batch(batch).map_err(|e| self.err(e))?;
        self.flush().await
    }

    pub fn price_intents_clear(&self, job: &str, skus: &[u64]) -> Result<(), StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let mut batch = sled::Batch::default();
        for sku in skus {
            batch.remove(&sku_key(b'k', *sku)[..]);
        }
        tree.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The checkpoint: the sent fields merged into the last pushed prices, the intents removed,
    /// and the SKU index updated (the next `PUT /catalog/skus/{id}` needs fresh prices), then
    /// fsync'd.
    pub async fn checkpoint_prices(
        &self,
        job: &str,
        store: &str,
        entries: &[(u64, PriceFields)],
    ) -> Result<(), StateError> {
        let tree = self.tree(&format!("job/{job}"))?;
        let index = self.tree(&format!("index/{store}"))?;
        let mut batch = sled::Batch::default();
        for (sku, sent) in entries {
            let key = sku_key(b'm', *sku);
            let mut merged: PriceFields = match tree.get(key).map_err(|e| self.err(e))? {
                Some(v) => serde_json::from_slice(&v).unwrap_or_default(),
                None => PriceFields::default(),
            };
            merged.merge(sent);
            let bytes = serde_json::to_vec(&merged).map_err(|e| self.err(e))?;
            batch.insert(&key[..], bytes);
            batch.remove(&sku_key(b'k', *sku)[..]);
            if let Some(v) = index.get(sku.to_be_bytes()).map_err(|e| self.err(e))?
                && let Ok(mut s) = serde_json::from_slice::<IndexedSku>(&v)
            {
                s.price_sale = sent.sale.or(s.price_sale);
                s.price_discount = sent.discount.or(s.price_discount);
                s.price_cost = sent.cost.or(s.price_cost);
                let bytes = serde_json::to_vec(&s).map_err(|e| self.err(e))?;
                index
                    .insert(sku.to_be_bytes(), bytes)
                    .map_err(|e| self.err(e))?;
            }
        }
        tree.apply_batch(batch).map_err(|e| self.err(e))?;
        self.flush().await
    }

    // --- batch edit occurrences ----------------------------------------------------------

    pub fn edit_record(
        &self,
        job: &str,
        occurrence: &str,
    ) -> Result<Option<EditRecord>, StateError> {
        let tree = self.tree(&format!("edits/{job}"))?;
        match tree.get(occurrence).map_err(|e| self.err(e))? {
            Some(v) => Ok(serde_json::from_slice(&v).ok()),
            None => Ok(None),
        }
    }

    /// Writes an occurrence's record and makes it durable before returning.
    pub async fn set_edit_record(
        &self,
        job: &str,
        occurrence: &str,
        rec: &EditRecord,
    ) -> Result<(), StateError> {
        let tree = self.tree(&format!("edits/{job}"))?;
        let bytes = serde_json::to_vec(rec).map_err(|e| self.err(e))?;
        tree.insert(occurrence, bytes).map_err(|e| self.err(e))?;
        self.flush().await
    }

    /// Occurrences whose outcome is unknown (sent, no answer).
    pub fn edits_in_doubt(&self, job: &str) -> Result<Vec<(String, EditRecord)>, StateError> {
        let tree = self.tree(&format!("edits/{job}"))?;
        let mut out = Vec::new();
        for item in tree.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            if let Ok(rec) = serde_json::from_slice::<EditRecord>(&v)
                && matches!(rec.state, EditState::Sending | EditState::InDoubt)
            {
                out.push((String::from_utf8_lossy(&k).into_owned(), rec));
            }
        }
        Ok(out)
    }

    // --- job and run records -----------------------------------------------------------------

    pub fn job_record(&self, job: &str) -> Result<JobRecord, StateError> {
        Ok(self.get_meta(&format!("job/{job}"))?.unwrap_or_default())
    }

    pub fn set_job_record(&self, job: &str, rec: &JobRecord) -> Result<(), StateError> {
        let mut r = rec.clone();
        r.v = VERSION;
        self.put_meta(&format!("job/{job}"), &r)
    }

    pub fn record_run(&self, rec: &RunRecord) -> Result<(), StateError> {
        let tree = self.tree(&format!("runs/{}", rec.job))?;
        let key = run_key(rec.started_at);
        let v = serde_json::to_vec(rec).map_err(|e| self.err(e))?;
        tree.insert(key, v).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Drops run records older than `before`, and beyond the newest `keep` of the job, so the
    /// database does not grow with the number of runs. Returns how many were dropped.
    pub fn prune_runs(
        &self,
        job: &str,
        before: DateTime<Utc>,
        keep: usize,
    ) -> Result<usize, StateError> {
        let tree = self.tree(&format!("runs/{job}"))?;
        let cutoff = run_key(before);
        let mut drop: Vec<sled::IVec> = Vec::new();
        for k in tree.range(..cutoff.as_slice()).keys() {
            drop.push(k.map_err(|e| self.err(e))?);
        }
        let remaining = tree.len().saturating_sub(drop.len());
        if remaining > keep {
            let mut extra = remaining - keep;
            for k in tree.range(cutoff.as_slice()..).keys() {
                if extra == 0 {
                    break;
                }
                drop.push(k.map_err(|e| self.err(e))?);
                extra -= 1;
            }
        }
        let mut batch = sled::Batch::default();
        for k in &drop {
            batch.remove(k.clone());
        }
        tree.apply_batch(batch).map_err(|e| self.err(e))?;
        Ok(drop.len())
    }

    /// Every run record of a job kept so far, oldest first.
    pub fn runs(&self, job: &str) -> Result<Vec<RunRecord>, StateError> {
        let tree = self.tree(&format!("runs/{job}"))?;
        let mut out = Vec::new();
        for item in tree.iter() {
            let (_, v) = item.map_err(|e| self.err(e))?;
            if let Ok(r) = serde_json::from_slice(&v) {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub fn last_run(&self, job: &str) -> Result<Option<RunRecord>, StateError> {
        let tree = self.tree(&format!("runs/{job}"))?;
        match tree.last().map_err(|e| self.err(e))? {
            Some((_, v)) => Ok(serde_json::from_slice(&v).ok()),
            None => Ok(None),
        }
    }
}

fn db_err(dir: &Path, e: impl std::fmt::Display) -> StateError {
    StateError::Db {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    }
}

fn pushed_key(sku: u64, stock: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = b'p';
    k[1..9].copy_from_slice(&sku.to_be_bytes());
    k[9..17].copy_from_slice(&stock.to_be_bytes());
    k
}

/// Run records sort by start time (nanoseconds, so back-to-back runs never share a key).
fn run_key(at: DateTime<Utc>) -> [u8; 8] {
    at.timestamp_nanos_opt()
        .unwrap_or_else(|| at.timestamp_millis().saturating_mul(1_000_000))
        .to_be_bytes()
}

fn sku_key(prefix: u8, sku: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..9].copy_from_slice(&sku.to_be_bytes());
    k
}

fn intent_key(product: u64) -> [u8; 9] {
    sku_key(b'i', product)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checkpoint_replaces_intent_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let e = [StockEntry {
            sku_id: 7,
            stock_id: 1,
            quantity: 5,
            min_quantity: 0,
        }];
        {
            let s = StateStore::open(dir.path()).unwrap();
            s.intent_record("j", 70, &e).await.unwrap();
            assert_eq!(s.intents_load("j").unwrap().len(), 1);
            s.checkpoint_stock("j", 70, &e).await.unwrap();
        }
        let s = StateStore::open(dir.path()).unwrap();
        assert!(s.intents_load("j").unwrap().is_empty());
        assert_eq!(
            s.pushed_load("j").unwrap().get(&(7, 1)),
            Some(&Pushed {
                quantity: 5,
                min_quantity: 0
            })
        );
    }

    #[test]
    fn second_open_is_refused_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let _a = StateStore::open(dir.path()).unwrap();
        let err = StateStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("in use by another yampi-sync process"),
            "{err}"
        );
        assert!(err.contains(&std::process::id().to_string()), "{err}");
    }
}
