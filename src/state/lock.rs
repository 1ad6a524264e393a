//! The state dir's single-instance lock, `state_dir/yampi-sync.lock`: an advisory lock on the
//! file, which holds the holder's pid.
//!
//! A file at that path is always complete: the pid is written to a temporary file, which is
//! locked and then linked (or renamed) into place. So a process that finds the lock taken always
//! reads a pid, never the empty file a create-then-write would show for a moment. Whoever finds
//! a stale lock file (its holder exited) replaces it while holding its lock; a racer that locked
//! or read a replaced file sees that the path now names another file and tries again.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How the lock attempt ended when it did not get the lock.
#[derive(Debug)]
pub enum LockError {
    /// Held by another process; its pid as written (never empty).
    Held {
        pid: String,
    },
    Io(std::io::Error),
}

impl From<std::io::Error> for LockError {
    fn from(e: std::io::Error) -> Self {
        LockError::Io(e)
    }
}

/// Replacements by racing processes settle in a few rounds; this bounds a pathological loop.
const ATTEMPTS: usize = 200;

pub fn path(dir: &Path) -> PathBuf {
    dir.join("yampi-sync.lock")
}

/// Takes the lock of `dir` (which exists); the returned file holds it for as long as it is open.
pub fn acquire(dir: &Path) -> Result<File, LockError> {
    let path = path(dir);
    for _ in 0..ATTEMPTS {
        let existing = match File::options().read(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (mine, tmp) = locked_pid_file(dir)?;
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => return Ok(mine),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        if existing.try_lock().is_err() {
            let mut pid = String::new();
            (&existing).read_to_string(&mut pid)?;
            // Read from the file the path still names, so the pid is the holder's.
            if still_at(&existing, &path)? && !pid.trim().is_empty() {
                return Err(LockError::Held {
                    pid: pid.trim().to_string(),
                });
            }
            continue;
        }
        if !still_at(&existing, &path)? {
            continue;
        }
        // A stale file (its holder exited): put one with our pid in its place while holding it.
        let (mine, tmp) = locked_pid_file(dir)?;
        let renamed = std::fs::rename(&tmp, &path);
        if renamed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        renamed?;
        drop(existing);
        return Ok(mine);
    }
    Err(LockError::Io(std::io::Error::other(format!(
        "{} kept changing while taking the lock",
        path.display()
    ))))
}

/// A new file in `dir` holding our pid, locked (it is new, so nobody else holds it).
fn locked_pid_file(dir: &Path) -> std::io::Result<(File, PathBuf)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".yampi-sync.lock.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let written = (|| {
        writeln!(f, "{}", std::process::id())?;
        f.flush()?;
        f.try_lock().map_err(std::io::Error::other)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((f, tmp))
}

/// Whether `path` still names the open file `f`.
fn still_at(f: &File, path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = f.metadata()?;
        match std::fs::metadata(path) {
            Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (f, path);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many threads race for one fresh dir, again and again: exactly one wins each round, and
    /// every loser reads the winner's pid (threads share the pid; flock locks are per open file).
    #[test]
    fn racers_always_read_the_holders_pid() {
        for _ in 0..30 {
            let dir = tempfile::tempdir().unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let results: Vec<Result<File, LockError>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        let b = barrier.clone();
                        let d = dir.path();
                        s.spawn(move || {
                            b.wait();
                            acquire(d)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let won = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(won, 1, "{results:?}");
            for r in &results {
                if let Err(e) = r {
                    match e {
                        LockError::Held { pid } => {
                            assert_eq!(pid, &std::process::id().to_string())
                        }
                        LockError::Io(e) => panic!("{e}"),
                    }
                }
            }
            drop(results);
            // A stale file (the holder exited) is taken over, and the pid is ours.
            let _again = acquire(dir.path()).unwrap();
            let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(names.len(), 1, "only the lock file is left: {names:?}");
        }
    }
}
