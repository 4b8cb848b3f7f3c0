//! The apply journal: lets an interrupted `apply PLAN_FILE` be finished by running it again.
//!
//! Next to the plan file, `PLAN_FILE.journal` records, one JSON line each, the plan it belongs to, every
//! action started and finished, and completion. Running the same plan again skips what finished and
//! redoes what had started but not finished: every action is safe to repeat (a create that meets 409
//! resolves to what exists, PATCHes set values, membership changes are no-ops when already made). The
//! staleness check leaves out the objects those started actions touched, since the plan itself
//! changed them.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One line of a journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    Plan { sha256: String },
    Start { index: usize },
    Done { index: usize },
    Complete,
}

/// What an earlier run of the same plan got through.
#[derive(Debug, Default)]
pub struct Progress {
    pub started: HashSet<usize>,
    pub done: HashSet<usize>,
    pub complete: bool,
}

/// An open journal, appended to as actions start and finish.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

/// Why a journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot use the apply journal {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the apply journal {} belongs to another plan", path.display())]
    OtherPlan { path: PathBuf },
}

/// Where the journal of a plan file lives.
#[must_use]
pub fn path_for(plan_file: &Path) -> PathBuf {
    let mut name = plan_file.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

impl Progress {
    /// What earlier runs of the plan whose file hashes to `sha256` recorded; nothing when there is no
    /// journal yet. Reads only: refusing to apply leaves no file behind.
    ///
    /// # Errors
    /// The journal cannot be read, or belongs to a different plan.
    pub fn read(plan_file: &Path, sha256: &str) -> Result<Progress, JournalError> {
        let path = path_for(plan_file);
        let mut progress = Progress::default();
        if !path.exists() {
            return Ok(progress);
        }
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let reader = BufReader::new(File::open(&path).map_err(io_err)?);
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(io_err)?;
            // A line cut short by a crash: what it meant to say did not happen.
            let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
                continue;
            };
            match entry {
                Entry::Plan { sha256: s } if n == 0 && s != sha256 => {
                    return Err(JournalError::OtherPlan { path });
                }
                Entry::Plan { .. } => {}
                Entry::Start { index } => {
                    progress.started.insert(index);
                }
                Entry::Done { index } => {
                    progress.done.insert(index);
                }
                Entry::Complete => progress.complete = true,
            }
        }
        Ok(progress)
    }
}

impl Journal {
    /// Opens the journal of a plan for appending, starting it when there is none.
    ///
    /// # Errors
    /// The journal cannot be written.
    pub fn begin(plan_file: &Path, sha256: &str) -> Result<Journal, JournalError> {
        let path = path_for(plan_file);
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let exists = path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        if exists {
            // Start on a fresh line after one a crash cut short.
            if !std::fs::read(&path).map_err(io_err)?.ends_with(b"\n") {
                file.write_all(b"\n").map_err(io_err)?;
            }
        } else {
            let mut line = serde_json::to_string(&Entry::Plan {
                sha256: sha256.to_string(),
            })
            .expect("entries serialize");
            line.push('\n');
            file.write_all(line.as_bytes()).map_err(io_err)?;
        }
        Ok(Journal {
            path: path.clone(),
            file: Mutex::new(file),
        })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn started(&self, index: usize) -> io::Result<()> {
        self.write(&Entry::Start { index })
    }

    pub fn done(&self, index: usize) -> io::Result<()> {
        self.write(&Entry::Done { index })
    }

    pub fn complete(&self) -> io::Result<()> {
        self.write(&Entry::Complete)
    }

    fn write(&self, entry: &Entry) -> io::Result<()> {
        let mut line = serde_json::to_string(entry).expect("entries serialize");
        line.push('\n');
        let mut f = self.file.lock().expect("not poisoned");
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reads_back_progress() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        assert!(Progress::read(&plan, "abc").unwrap().started.is_empty());
        assert!(!path_for(&plan).exists(), "reading creates nothing");
        let j = Journal::begin(&plan, "abc").unwrap();
        j.started(0).unwrap();
        j.done(0).unwrap();
        j.started(1).unwrap();
        drop(j);
        // A crash cut the last line short.
        let mut f = OpenOptions::new()
            .append(true)
            .open(path_for(&plan))
            .unwrap();
        f.write_all(b"{\"done\":{\"ind").unwrap();
        let p = Progress::read(&plan, "abc").unwrap();
        let j = Journal::begin(&plan, "abc").unwrap();
        assert_eq!(p.done, HashSet::from([0]));
        assert_eq!(p.started, HashSet::from([0, 1]));
        j.done(1).unwrap();
        drop(j);
        let p = Progress::read(&plan, "abc").unwrap();
        assert_eq!(
            p.done,
            HashSet::from([0, 1]),
            "entries after a cut line are read"
        );
        assert!(matches!(
            Progress::read(&plan, "other"),
            Err(JournalError::OtherPlan { .. })
        ));
    }
}
