//! The batch-edit journal: `state_dir/edits.journal`, one JSON line per change of an
//! occurrence's state (`sending` before the request leaves, then its outcome), appended and
//! fsync'd. It lives beside the database, not in it, so that an occurrence already sent is never
//! sent again even when the database is lost or replaced.
//!
//! A crash in the middle of an append leaves an incomplete last line (no newline): it is cut off
//! when the store opens, since a record only counts once `append` returned. Any complete line that
//! cannot be read is an error, never "no record".

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EditRecord, EditState, StateError};

pub const FILE: &str = "edits.journal";

/// A journal larger than this is not ours to read into memory (two short lines per occurrence).
const MAX_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    key: String,
    state: EditState,
    time: DateTime<Utc>,
    message: String,
    #[serde(default)]
    job: String,
    #[serde(default)]
    occurrence: String,
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// One append at a time, so lines never interleave.
    append_lock: Mutex<()>,
}

impl Journal {
    /// Opens the journal of `dir` (it may not exist yet) and cuts off a torn last line.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let j = Self {
            path: dir.join(FILE),
            append_lock: Mutex::new(()),
        };
        if let Some(bytes) = j.read_bytes()? {
            let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            if complete < bytes.len() {
                tracing::warn!(
                    "{}: dropping an incomplete last line left by a crash while it was written",
                    j.path.display()
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(&j.path)
                    .map_err(|e| j.io(e))?;
                f.set_len(complete as u64).map_err(|e| j.io(e))?;
                f.sync_all().map_err(|e| j.io(e))?;
            }
        }
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StateError {
        StateError::Io {
            dir: self.path.clone(),
            source,
        }
    }

    fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let len = f.metadata().map_err(|e| self.io(e))?.len();
        if len > MAX_BYTES {
            return Err(self.unreadable(format!(
                "it is {len} bytes, more than the {MAX_BYTES} a journal can reach"
            )));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        Read::by_ref(&mut f)
            .take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io(e))?;
        Ok(Some(bytes))
    }

    fn unreadable(&self, why: String) -> StateError {
        StateError::Damaged {
            dir: self.path.clone(),
            message: format!(
                "the batch-edit journal {} cannot be read ({why}); no batch edit runs until it is repaired or restored from a backup, because a lost record could send an edit twice",
                self.path.display()
            ),
        }
    }

    /// Appends one record and makes it durable before returning.
    pub fn append(&self, key: &str, rec: &EditRecord) -> Result<(), StateError> {
        let line = Line {
            key: key.to_string(),
            state: rec.state,
            time: rec.at,
            message: rec.message.clone(),
            job: rec.job.clone(),
            occurrence: rec.occurrence.clone(),
        };
        let mut text = serde_json::to_string(&line).map_err(|e| self.unreadable(e.to_string()))?;
        text.push('\n');
        let _one_at_a_time = self.append_lock.lock().unwrap_or_else(|p| p.into_inner());
        let created = !self.path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        f.write_all(text.as_bytes()).map_err(|e| self.io(e))?;
        f.sync_data().map_err(|e| self.io(e))?;
        if created && let Some(dir) = self.path.parent() {
            super::identity::sync_dir(dir).map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// The latest record of every key. An incomplete last line (a crash while appending) is
    /// ignored; any other line that cannot be read is an error.
    pub fn load(&self) -> Result<HashMap<String, EditRecord>, StateError> {
        let mut out = HashMap::new();
        let Some(bytes) = self.read_bytes()? else {
            return Ok(out);
        };
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for (n, raw) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line: Line = serde_json::from_slice(raw)
                .map_err(|e| self.unreadable(format!("line {}: {e}", n + 1)))?;
            out.insert(
                line.key,
                EditRecord {
                    v: 1,
                    state: line.state,
                    at: line.time,
                    message: line.message,
                    job: line.job,
                    occurrence: line.occurrence,
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(state: EditState) -> EditRecord {
        EditRecord {
            v: 1,
            state,
            at: Utc::now(),
            message: "m".into(),
            job: "bf".into(),
            occurrence: "2026-11-27T00:00:00-03:00".into(),
        }
    }

    #[test]
    fn a_torn_last_line_is_dropped_but_a_bad_complete_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        j.append("k1", &rec(EditState::Sending)).unwrap();
        j.append("k1", &rec(EditState::Applied)).unwrap();
        j.append("k2", &rec(EditState::Sending)).unwrap();
        // A crash in the middle of the next append.
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(br#"{"key":"k2","state":"app"#).unwrap();
        drop(f);
        let all = j.load().unwrap();
        assert_eq!(all["k1"].state, EditState::Applied);
        assert_eq!(
            all["k2"].state,
            EditState::Sending,
            "the torn line is ignored"
        );
        // Reopening cuts the torn tail, so the next append starts on its own line.
        let j = Journal::open(dir.path()).unwrap();
        j.append("k3", &rec(EditState::Missed)).unwrap();
        let all = j.load().unwrap();
        assert_eq!(all["k3"].state, EditState::Missed);
        assert_eq!(all["k2"].state, EditState::Sending);
        // A complete line that cannot be read stops everything.
        let mut f = OpenOptions::new().append(true).open(j.path()).unwrap();
        f.write_all(b"{\"key\":\"k4\",garbage}\n").unwrap();
        drop(f);
        let err = j.load().unwrap_err().to_string();
        assert!(
            err.contains("cannot be read") && err.contains("line 5"),
            "{err}"
        );
    }
}
