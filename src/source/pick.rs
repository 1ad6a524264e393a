//! Which file to read: the newest finished file of a glob, and its content hash.

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
