//! The state dir's identity: `state_dir/identity.json`, written beside the database so that a
//! database that was lost, emptied or damaged is recognised instead of being taken for a new
//! install (which would send every value again).
//!
//! It holds a random id (also kept in the database) and a generation counter. Each recorded run
//! bumps the generation in the database first (flushed), then here; so at open the database's
//! generation is never below the file's unless the database lost writes. The file is replaced
//! atomically: temporary file, fsync, rename, fsync of the directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const FILE: &str = "identity.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub v: u32,
    /// Random, made when the state dir was first used; the database holds the same one.
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// Bumped each time a run is recorded.
    pub generation: u64,
}

impl Identity {
    pub fn new() -> Self {
        Self {
            v: 1,
            id: format!("{:032x}", rand::random::<u128>()),
            created_at: Utc::now(),
            generation: 0,
        }
    }
}

impl Default for Identity {
    fn default() -> Self {
        Self::new()
    }
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// `Ok(None)` when the file does not exist; an error (one sentence) when it cannot be read.
pub fn read(dir: &Path) -> Result<Option<Identity>, String> {
    let p = path(dir);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
    };
    if bytes.len() > 64 * 1024 {
        return Err(format!(
            "{} is {} bytes, not an identity file",
            p.display(),
            bytes.len()
        ));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("{} is unreadable ({e})", p.display()))
}

/// Replaces the file atomically and durably.
pub fn write(dir: &Path, ident: &Identity) -> std::io::Result<()> {
    let p = path(dir);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let body = serde_json::to_vec_pretty(ident).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &p)?;
    sync_dir(dir)
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_read_back_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let mut ident = Identity::new();
        ident.generation = 7;
        write(dir.path(), &ident).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(ident));
        assert!(!dir.path().join("identity.json.tmp").exists());
        std::fs::write(path(dir.path()), b"{\"v\":1,\"id\":").unwrap();
        assert!(read(dir.path()).unwrap_err().contains("unreadable"));
    }
}
