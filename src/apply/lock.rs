//! One apply at a time: an advisory lock file (`PLAN_FILE.lock`, and `FILE.lock` next to a file
//! target) held with the operating system's file lock (`flock`, through `fs4`) for as long as the
//! apply runs. A second apply
//! exits 1 naming the holder (pid, host, start time). The lock dies with its process, so a crashed
//! apply leaves no stale lock behind, only a file the next apply takes over.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fs4::FileExt;
use serde::{Deserialize, Serialize};

/// Who holds a lock, as written into the lock file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started: String,
    pub what: String,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another apply is running: {} is held by {}", path.display(), holder)]
    Held { path: PathBuf, holder: String },
    #[error("cannot take the lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A held lock; released (and its file removed) when dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    file: File,
}

/// The lock file guarding `path`.
#[must_use]
pub fn path_for(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown host".into())
}

/// Whether the open file is still the one at `path` (the holder before us may have removed it
/// between our open and our lock).
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        path.exists()
    }
}

impl Lock {
    /// Takes the lock guarding `guarded` (the lock file is `guarded` + `.lock`) for `what` (e.g.
    /// `apply plan.json`), or says who holds it.
    ///
    /// # Errors
    /// Another process holds it, or the lock file cannot be created.
    pub fn acquire(guarded: &Path, what: &str) -> Result<Lock, LockError> {
        let path = path_for(guarded);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err)?;
            match FileExt::try_lock(&file) {
                Ok(()) => {}
                Err(fs4::TryLockError::WouldBlock) => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = serde_json::from_str::<Holder>(&text).map_or_else(
                        |_| "another process (it has not written its name yet)".to_string(),
                        |h| {
                            format!(
                                "`idsync {}` (pid {} on {}, started {})",
                                h.what, h.pid, h.host, h.started
                            )
                        },
                    );
                    return Err(LockError::Held { path, holder });
                }
                Err(fs4::TryLockError::Error(e)) => return Err(io_err(e)),
            }
            if !same_file(&file, &path) {
                continue;
            }
            let holder = Holder {
                pid: std::process::id(),
                host: host(),
                started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                what: what.to_string(),
            };
            file.set_len(0).map_err(io_err)?;
            let mut w = &file;
            w.write_all(
                serde_json::to_string(&holder)
                    .expect("serializes")
                    .as_bytes(),
            )
            .map_err(io_err)?;
            return Ok(Lock { path, file });
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held, so that no one locks a file that is about to vanish.
        let _ = std::fs::remove_file(&self.path);
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_the_first_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let first = Lock::acquire(&plan, "apply plan.json").unwrap();
        let err = Lock::acquire(&plan, "apply plan.json").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())) && msg.contains("apply plan.json"),
            "{msg}"
        );
        drop(first);
        assert!(!path_for(&plan).exists(), "released and removed");
        let _again = Lock::acquire(&plan, "apply plan.json").unwrap();
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        std::fs::write(
            path_for(&plan),
            r#"{"pid":999999,"host":"gone","started":"2026-01-01T00:00:00Z","what":"apply"}"#,
        )
        .unwrap();
        let lock = Lock::acquire(&plan, "apply plan.json").unwrap();
        let text = std::fs::read_to_string(path_for(&plan)).unwrap();
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        drop(lock);
    }
}
