//! Which file to read: the newest file of a glob once it has stopped changing, and its content
//! hash.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::SourceError;

#[derive(Debug, Default)]
pub struct Picked {
    pub path: Option<PathBuf>,
    /// Newer files left alone because they are still being written.
    pub skipped_unstable: Vec<PathBuf>,
}

/// The newest (by mtime, then name) file matching `pattern` whose mtime is at least `settle`
/// old: an ERP still writing its export keeps touching the file, so a recent mtime means "not
/// finished yet". Newer unfinished files are reported in `skipped_unstable`.
pub fn pick_newest(pattern: &str, settle: Duration) -> Result<Picked, SourceError> {
    let paths = glob::glob(pattern).map_err(|e| SourceError::Pattern {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })?;
    let mut files: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in paths.flatten() {
        if let Ok(meta) = std::fs::metadata(&entry)
            && meta.is_file()
        {
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            files.push((mtime, entry));
        }
    }
    files.sort_by(|a, b| b.cmp(a));
    let now = SystemTime::now();
    let mut picked = Picked::default();
    for (mtime, path) in files {
        let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
        if age >= settle {
            picked.path = Some(path);
            break;
        }
        picked.skipped_unstable.push(path);
    }
    Ok(picked)
}

/// How many settle periods a run waits at most for the newest file to hold still: a bound, so
/// an export that never stops changing fails the run instead of hanging it.
pub const MAX_SETTLE_LOOKS: u32 = 10;

/// The newest file of `pattern` with its size and mtime, as one look sees it.
type Look = (PathBuf, u64, SystemTime);

fn look(pattern: &str) -> Result<Option<Look>, SourceError> {
    let paths = glob::glob(pattern).map_err(|e| SourceError::Pattern {
        pattern: pattern.to_string(),
        message: e.to_string(),
    })?;
    let mut newest: Option<Look> = None;
    for entry in paths.flatten() {
        if let Ok(meta) = std::fs::metadata(&entry)
            && meta.is_file()
        {
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let candidate = (entry, meta.len(), mtime);
            let newer = newest
                .as_ref()
                .is_none_or(|n| (candidate.2, &candidate.0) > (n.2, &n.0));
            if newer {
                newest = Some(candidate);
            }
        }
    }
    Ok(newest)
}

/// The newest (by mtime, then name) file matching `pattern`, once two looks `settle` apart see
/// the same file with the same size and mtime: a file the ERP is still writing is waited for,
/// not skipped and not read half-written. Waits at most `MAX_SETTLE_LOOKS` × `settle`, then
/// fails with `SourceError::Unsettled`. `None` when nothing matches.
pub fn pick_settled(pattern: &str, settle: Duration) -> Result<Option<PathBuf>, SourceError> {
    let Some(mut seen) = look(pattern)? else {
        return Ok(None);
    };
    if settle.is_zero() {
        return Ok(Some(seen.0));
    }
    for _ in 0..MAX_SETTLE_LOOKS {
        std::thread::sleep(settle);
        let Some(now) = look(pattern)? else {
            return Ok(None);
        };
        if now == seen {
            return Ok(Some(now.0));
        }
        seen = now;
    }
    Err(SourceError::Unsettled {
        path: seen.0,
        settle_ms: settle.as_millis() as u64,
        looks: MAX_SETTLE_LOOKS,
    })
}

/// blake3 of the file's bytes, hex.
pub fn content_hash(path: &Path) -> Result<String, SourceError> {
    let mut hasher = blake3::Hasher::new();
    std::fs::File::open(path)
        .and_then(|f| hasher.update_reader(f).map(|_| ()))
        .map_err(|e| SourceError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(hasher.finalize().to_hex().to_string())
}
