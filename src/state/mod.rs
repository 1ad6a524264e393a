//! The state store: everything yampi-sync remembers between runs, in one embedded sled database
//! under `state_dir/db`, behind this module only.
//!
//! Trees and keys:
//! - `meta`: small records (`job/<name>` → `JobRecord`, `index/<store>` → `IndexMeta`).
//! - `index/<store>`: the SKU index, `sku id (u64 BE)` → JSON `IndexedSku`.
//! - `ledger/<name>`: a job's operation ledger (`ledger`): every write whose outcome is not known
//!   yet, intended before it was sent, by operation key.
//! - `job/<name>`: a job's checkpoints (`checkpoints`). `p` + sku id + stock id (BE) → last pushed
//!   stock value; `m` + sku id → the last pushed prices (JSON, per field); `q`/`t` the times
//!   they were pushed (see `checkpoints`). Written with the
//!   outcome of the ledger operation that pushed them, in one transaction. (`i` + product id and
//!   `k` + sku id are where earlier versions kept writes in flight: moved into the ledger on open,
//!   see `migrate`.)
//! - `edits`: `<edit content hash>@<UTC instant>` → `EditRecord`, the outcome of a batch edit
//!   occurrence (applied, missed); while it is in flight or in doubt it is an operation of the
//!   job's ledger. Every step is mirrored in the journal beside the database (`journal`), which
//!   wins. `edits/<name>` (job name, local time) is where earlier versions kept them: read, never
//!   written.
//! - `runs/<name>`: `start time (i64 BE nanoseconds)` → JSON `RunRecord`, for `status`.
//!
//! - `meta/generation`, `meta/identity`: see `identity` (a lost or replaced database is refused).
//!
//! Every value carries a `v` version so later releases can read what earlier ones wrote.

mod checkpoints;
pub mod identity;
pub mod journal;
pub mod ledger;
mod lock;
mod migrate;

pub use checkpoints::{PriceTimes, StockPushed, StoredHeader, price_key, stock_key};
pub use ledger::{Checkpoint, Ledger, OpKind, Operation, Outcome};

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{IndexedSku, PriceFields, Pushed};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "the state dir {dir} is in use by another yampi-sync process{pid}; wait for it to finish or stop it (a fresh --state-dir would not know what was sent and would send everything again)"
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
    /// The state dir has recorded runs but its database lost them (or a record cannot be read):
    /// nothing may run, or it would send again what was already sent. `message` is the sentence.
    #[error("{message}")]
    Damaged { dir: PathBuf, message: String },
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
    /// Older than the job's `max_lateness` when a run first saw it: never sent.
    Missed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EditRecord {
    pub v: u32,
    pub state: EditState,
    pub at: DateTime<Utc>,
    pub message: String,
    /// The job that wrote it (for humans: records are keyed by the edit's content).
    #[serde(default)]
    pub job: String,
    /// The occurrence as messages show it (RFC 3339 in the config's zone, or `once`).
    #[serde(default)]
    pub occurrence: String,
}

/// What a batch-edit operation in the ledger says about its occurrence (for messages: the
/// request itself is the job's edit).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EditIntent {
    #[serde(default)]
    pub job: String,
    #[serde(default)]
    pub occurrence: String,
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
    /// The last full scan read the SKU export, which has no `erp_id` or `barcode`: a job that
    /// matches on those rescans through the API first.
    #[serde(default)]
    pub export_scanned: bool,
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
    edits: sled::Tree,
    journal: journal::Journal,
    /// What `identity.json` says; the generation is bumped by `record_run`.
    identity: Mutex<identity::Identity>,
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
        let lock = lock::acquire(dir).map_err(|e| match e {
            lock::LockError::Held { pid } => StateError::Locked {
                dir: dir.to_path_buf(),
                pid: format!(" (pid {pid})"),
            },
            lock::LockError::Io(e) => io(e),
        })?;
        let known = identity::read(dir).map_err(|e| StateError::Damaged {
            dir: dir.to_path_buf(),
            message: format!(
                "{e}, so this state dir cannot tell whether its database is the one it recorded runs in; nothing was run — if {} is intact, delete {} and the next run writes it again from the database, else restore the state dir from a backup",
                dir.join("db").display(),
                identity::path(dir).display()
            ),
        })?;
        let recorded = known.as_ref().map_or(0, |k| k.generation);
        let damaged = |what: String| StateError::Damaged {
            dir: dir.to_path_buf(),
            message: damaged_sentence(dir, &what),
        };
        // sled may panic on a damaged file instead of answering an error.
        let open_db = || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sled::Config::new()
                    .path(dir.join("db"))
                    .cache_capacity(32 * 1024 * 1024)
                    .open()
            }))
        };
        // We hold the state dir's lock, so whoever still holds sled's own file lock is a handle
        // of this process being dropped (sled's flusher thread lets go a moment later): wait
        // for it briefly instead of calling the database damaged.
        let mut opened = open_db();
        for _ in 0..60 {
            match &opened {
                Ok(Err(e)) if e.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    opened = open_db();
                }
                _ => break,
            }
        }
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) if recorded > 0 => return Err(damaged(format!("cannot be opened ({e})"))),
            Ok(Err(e)) => return Err(db_err(dir, e)),
            Err(_) if recorded > 0 => {
                return Err(damaged("cannot be opened (it is corrupt)".into()));
            }
            Err(_) => return Err(db_err(dir, "it is corrupt (opening it failed)")),
        };
        let meta = db.open_tree("meta").map_err(|e| damaged(e.to_string()))?;
        let edits = db.open_tree(EDITS).map_err(|e| damaged(e.to_string()))?;
        let generation = match meta.get(GENERATION).map_err(|e| damaged(e.to_string()))? {
            None => 0,
            Some(v) => match <[u8; 8]>::try_from(v.as_ref()) {
                Ok(b) => u64::from_be_bytes(b),
                Err(_) => return Err(damaged("has an unreadable generation record".into())),
            },
        };
        let db_id = meta
            .get(IDENTITY)
            .map_err(|e| damaged(e.to_string()))?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        let ident = match known {
            Some(k) => {
                if let Some(id) = &db_id
                    && *id != k.id
                {
                    return Err(damaged(format!(
                        "belongs to another state dir (its identity is {id}, this dir's is {})",
                        k.id
                    )));
                }
                if generation < k.generation {
                    return Err(damaged(if generation == 0 {
                        format!(
                            "opened empty although {} runs were recorded in it",
                            k.generation
                        )
                    } else {
                        format!(
                            "has lost recent writes (it is at generation {generation}, {} says {})",
                            identity::path(dir).display(),
                            k.generation
                        )
                    }));
                }
                identity::Identity { generation, ..k }
            }
            // A new state dir, one written by an earlier version, or the file was removed: the
            // database is all there is to go by.
            None => identity::Identity {
                id: db_id
                    .clone()
                    .unwrap_or_else(|| identity::Identity::new().id),
                generation,
                ..identity::Identity::new()
            },
        };
        if db_id.is_none() {
            meta.insert(IDENTITY, ident.id.as_bytes())
                .map_err(|e| db_err(dir, e))?;
            meta.insert(GENERATION, &generation.to_be_bytes())
                .map_err(|e| db_err(dir, e))?;
            db.flush().map_err(|e| db_err(dir, e))?;
        }
        if recorded != generation || !identity::path(dir).exists() {
            identity::write(dir, &ident).map_err(io)?;
        }
        let journal = journal::Journal::open(dir)?;
        let store = Self {
            dir: dir.to_path_buf(),
            db,
            meta,
            edits,
            journal,
            identity: Mutex::new(ident),
            _lock: lock,
        };
        store.migrate_to_ledger()?;
        Ok(store)
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
    ///
    /// sled 0.34's `flush_async` can deadlock when several flushes are awaited at once (sled
    /// issues 1241 and 1308, fixed only in unreleased versions), and writes run `max_in_flight`
    /// at a time: the blocking `flush` runs on tokio's blocking pool instead.
    pub async fn flush(&self) -> Result<(), StateError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| self.err(format!("flushing was interrupted: {e}")))?
            .map_err(|e| self.err(e))?;
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

    /// Inserts or replaces SKUs. Nothing is removed here: a SKU a scan did not see goes only
    /// through `index_remove`, once the store confirmed it is gone.
    pub fn index_store(&self, store: &str, skus: &[IndexedSku]) -> Result<(), StateError> {
        let tree = self.tree(&format!("index/{store}"))?;
        let mut batch = sled::Batch::default();
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

    // --- price checkpoints ---------------------------------------------------------------

    /// Last pushed prices per SKU (fields never pushed are `None`).
    pub fn prices_pushed_load(&self, job: &str) -> Result<HashMap<u64, PriceFields>, StateError> {
        self.load_sku_json(job, b'm')
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

    // --- batch edit occurrences ----------------------------------------------------------

    fn parse_edit(&self, key: &[u8], v: &[u8]) -> Result<EditRecord, StateError> {
        serde_json::from_slice(v).map_err(|e| StateError::Damaged {
            dir: self.dir.clone(),
            message: format!(
                "the batch edit record {} in {} cannot be read ({e}); the job stops rather than risk sending it twice — check the store, then settle it with `yampi-sync resolve`",
                String::from_utf8_lossy(key),
                self.dir.join("db").display()
            ),
        })
    }

    /// An occurrence's record (`key` = edit content hash `@` UTC instant): the journal's when it
    /// says the edit may have left or must not leave, else the database's (the ledger's
    /// operation while its outcome is not known, else the recorded outcome).
    pub fn edit_record(&self, key: &str) -> Result<Option<EditRecord>, StateError> {
        let journal = self.journal.load()?.remove(key);
        let db = match self.edit_op(key)? {
            Some((_, op)) => Some(edit_from_op(&op)),
            None => match self.edits.get(key).map_err(|e| self.err(e))? {
                Some(v) => Some(self.parse_edit(key.as_bytes(), &v)?),
                None => None,
            },
        };
        Ok(newest_claim(journal, db))
    }

    /// The ledger operation of an occurrence and the job whose ledger holds it (the job may have
    /// been renamed since: occurrences are keyed by the edit's content).
    fn edit_op(&self, key: &str) -> Result<Option<(String, ledger::Operation)>, StateError> {
        for (job, l) in self.ledgers()? {
            if let Some(op) = l.get(key)?
                && op.kind == ledger::OpKind::BatchEdit
            {
                return Ok(Some((job, op)));
            }
        }
        Ok(None)
    }

    /// Records a step of an occurrence, journal first, and makes both durable before returning.
    /// In the database it is a step of the job's ledger: `sending` is the intent, `applied` the
    /// outcome with the record as checkpoint, `not_applied` a failure, `in_doubt` unknown.
    /// `missed` was never a write: only its record is kept.
    pub async fn set_edit_record(
        &self,
        job: &str,
        key: &str,
        rec: &EditRecord,
    ) -> Result<(), StateError> {
        use ledger::Outcome;
        self.journal.append(key, rec)?;
        let held = self.edit_op(key)?;
        let ledger = self.ledger(held.as_ref().map_or(job, |(j, _)| j.as_str()))?;
        let op = || -> Result<ledger::Operation, StateError> {
            let intent = EditIntent {
                job: rec.job.clone(),
                occurrence: rec.occurrence.clone(),
            };
            let mut op = ledger::Operation::new(ledger::OpKind::BatchEdit, key, &intent)
                .map_err(|e| self.err(e))?;
            op.at = rec.at;
            Ok(op)
        };
        match rec.state {
            EditState::Sending => ledger.intend(&[op()?]).await,
            EditState::Applied => {
                let mut cp = ledger::Checkpoint::default();
                cp.insert(
                    EDITS,
                    key,
                    serde_json::to_vec(rec).map_err(|e| self.err(e))?,
                );
                ledger.settle(key, Outcome::Applied(cp)).await
            }
            EditState::NotApplied => {
                ledger
                    .settle(key, Outcome::Failed(rec.message.clone()))
                    .await
            }
            EditState::InDoubt => {
                if held.is_none() {
                    ledger.intend(&[op()?]).await?;
                }
                ledger
                    .settle(key, Outcome::Unknown(rec.message.clone()))
                    .await
            }
            EditState::Missed => {
                let bytes = serde_json::to_vec(rec).map_err(|e| self.err(e))?;
                self.edits.insert(key, bytes).map_err(|e| self.err(e))?;
                self.flush().await
            }
        }
    }

    /// Every occurrence record whose key starts with `prefix` (one edit's content), by key.
    pub fn edit_records(&self, prefix: &str) -> Result<Vec<(String, EditRecord)>, StateError> {
        let mut journal = self.journal.load()?;
        journal.retain(|k, _| k.starts_with(prefix));
        let mut db = std::collections::BTreeMap::new();
        for item in self.edits.scan_prefix(prefix) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            db.insert(
                String::from_utf8_lossy(&k).into_owned(),
                self.parse_edit(&k, &v)?,
            );
        }
        for (_, l) in self.ledgers()? {
            for op in l.pending_with_prefix(prefix)? {
                if op.kind == ledger::OpKind::BatchEdit {
                    db.insert(op.key.clone(), edit_from_op(&op));
                }
            }
        }
        let mut out = std::collections::BTreeMap::new();
        for (key, rec) in db {
            out.insert(key.clone(), newest_claim(journal.remove(&key), Some(rec)));
        }
        for (k, rec) in journal {
            out.insert(k, Some(rec));
        }
        Ok(out.into_iter().filter_map(|(k, r)| Some((k, r?))).collect())
    }

    /// A record written by an earlier version (keyed by job name and local occurrence).
    pub fn legacy_edit_record(
        &self,
        job: &str,
        occurrence: &str,
    ) -> Result<Option<EditRecord>, StateError> {
        let tree = self.tree(&format!("edits/{job}"))?;
        match tree.get(occurrence).map_err(|e| self.err(e))? {
            Some(v) => Ok(Some(self.parse_edit(occurrence.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Occurrences an earlier version left in doubt (sent, no answer), by local occurrence.
    pub fn legacy_edits_in_doubt(
        &self,
        job: &str,
    ) -> Result<Vec<(String, EditRecord)>, StateError> {
        let tree = self.tree(&format!("edits/{job}"))?;
        let mut out = Vec::new();
        for item in tree.iter() {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let rec = self.parse_edit(&k, &v)?;
            if matches!(rec.state, EditState::Sending | EditState::InDoubt) {
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

    /// Records a run and bumps the generation: in the database first (flushed), then in
    /// `identity.json`, so a database that later loses this run is recognised at open.
    pub fn record_run(&self, rec: &RunRecord) -> Result<(), StateError> {
        let tree = self.tree(&format!("runs/{}", rec.job))?;
        let key = run_key(rec.started_at);
        let v = serde_json::to_vec(rec).map_err(|e| self.err(e))?;
        tree.insert(key, v).map_err(|e| self.err(e))?;
        let mut ident = self.identity.lock().unwrap_or_else(|p| p.into_inner());
        let next = ident.generation + 1;
        self.meta
            .insert(GENERATION, &next.to_be_bytes())
            .map_err(|e| self.err(e))?;
        self.db.flush().map_err(|e| self.err(e))?;
        ident.generation = next;
        identity::write(&self.dir, &ident).map_err(|source| StateError::Io {
            dir: self.dir.clone(),
            source,
        })
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

/// `meta` keys of the state dir's identity (see `identity`).
const GENERATION: &str = "generation";
const IDENTITY: &str = "identity";

/// What to do about a database that lost what this state dir recorded, as one sentence.
fn damaged_sentence(dir: &Path, what: &str) -> String {
    let db = dir.join("db");
    let ident = identity::path(dir);
    format!(
        "the state database {} {what}, so it no longer knows what was already sent; nothing was run — restore {} from a backup (then delete {} so the restored copy is accepted), or, knowing that every stock and price value will be sent again, move {} and {} aside (keep {}: it stops batch edits already sent from being sent again)",
        db.display(),
        db.display(),
        ident.display(),
        db.display(),
        ident.display(),
        dir.join(journal::FILE).display()
    )
}

/// An occurrence's ledger operation as a record: `sending` until its outcome is recorded
/// unknown, then `in_doubt`.
fn edit_from_op(op: &ledger::Operation) -> EditRecord {
    let intent: EditIntent = op.intent_as().unwrap_or_default();
    EditRecord {
        v: 1,
        state: if op.unknown.is_some() {
            EditState::InDoubt
        } else {
            EditState::Sending
        },
        at: op.at,
        message: op.unknown.clone().unwrap_or_default(),
        job: intent.job,
        occurrence: intent.occurrence,
    }
}

/// The `edits` tree: the outcome of every occurrence that has one.
const EDITS: &str = "edits";

/// Of the journal's and the database's record of an occurrence, the one to believe: the
/// journal whenever it says the edit may have left or must not leave.
fn newest_claim(journal: Option<EditRecord>, db: Option<EditRecord>) -> Option<EditRecord> {
    match journal {
        Some(j) if j.state != EditState::NotApplied => Some(j),
        j => db.or(j),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checkpoint_replaces_intent_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let e = [crate::model::StockEntry {
            sku_id: 7,
            stock_id: 1,
            quantity: 5,
            min_quantity: 0,
        }];
        {
            let s = StateStore::open(dir.path()).unwrap();
            let l = s.ledger("j").unwrap();
            l.intend(&[s.stock_op(70, &e).unwrap()]).await.unwrap();
            assert_eq!(s.stock_pending("j").unwrap().len(), 1);
            l.settle(
                &stock_key(70),
                Outcome::Applied(s.stock_checkpoint("j", &e)),
            )
            .await
            .unwrap();
        }
        let s = StateStore::open(dir.path()).unwrap();
        assert!(s.stock_pending("j").unwrap().is_empty());
        assert_eq!(
            s.pushed_load("j").unwrap().get(&(7, 1)),
            Some(&Pushed {
                quantity: 5,
                min_quantity: 0
            })
        );
    }

    #[tokio::test]
    async fn the_journal_wins_when_the_database_forgot_or_disagrees() {
        let rec = |state| EditRecord {
            v: 1,
            state,
            at: Utc::now(),
            message: String::new(),
            job: "bf".into(),
            occurrence: "once".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        {
            let s = StateStore::open(dir.path()).unwrap();
            s.set_edit_record("bf", "e@once", &rec(EditState::Sending))
                .await
                .unwrap();
            // The database alone says the opposite (a write the journal never saw).
            s.edits
                .insert(
                    "e@once",
                    serde_json::to_vec(&rec(EditState::NotApplied)).unwrap(),
                )
                .unwrap();
            assert_eq!(
                s.edit_record("e@once").unwrap().unwrap().state,
                EditState::Sending
            );
        }
        // The database and the identity are lost; the journal is left.
        std::fs::remove_dir_all(dir.path().join("db")).unwrap();
        std::fs::remove_file(identity::path(dir.path())).unwrap();
        let s = StateStore::open(dir.path()).unwrap();
        assert_eq!(
            s.edit_record("e@once").unwrap().unwrap().state,
            EditState::Sending
        );
        assert_eq!(s.edit_records("e@").unwrap().len(), 1);
        assert!(s.edit_records("f@").unwrap().is_empty());
    }

    #[test]
    fn a_recorded_run_bumps_the_generation_in_the_db_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunRecord {
            v: 1,
            job: "j".into(),
            started_at: Utc::now(),
            duration_ms: 1,
            exit_code: 0,
            changed: 0,
            rejected: 0,
            unmatched: 0,
            requests: 0,
            message: String::new(),
            report: None,
        };
        {
            let s = StateStore::open(dir.path()).unwrap();
            s.record_run(&run).unwrap();
            s.record_run(&RunRecord {
                started_at: Utc::now() + chrono::Duration::seconds(1),
                ..run.clone()
            })
            .unwrap();
        }
        assert_eq!(identity::read(dir.path()).unwrap().unwrap().generation, 2);
        drop(StateStore::open(dir.path()).unwrap());
        std::fs::remove_dir_all(dir.path().join("db")).unwrap();
        let err = StateStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Damaged { .. }), "{err}");
        assert!(
            err.to_string().contains("opened empty although 2 runs"),
            "{err}"
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
