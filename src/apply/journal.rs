//! The apply journal: lets an interrupted `apply PLAN_FILE` be finished by running it again.
//!
//! Next to the plan file, `PLAN_FILE.journal` holds one JSON line per event, each naming the plan (its
//! digest): `begin` (with the number of actions), `start` and `done` of each action by index, and
//! `complete`. A target whose actions take effect only when it is written at the end (a file) records
//! `commit` (the indexes it is about to write, and the SHA-256 of what it writes) before the write and
//! `committed` after it; a `commit` without `committed` counts only if the target holds exactly what
//! was to be written. Lines are written whole, by group commit off the runtime thread; see [`Journal`]
//! for what is durable when.
//!
//! Running the same plan again skips what is done and redoes what had started but not finished: every
//! action is safe to repeat (a create that meets an existing object resolves to it, PATCHes set values,
//! membership changes are no-ops when already made), and the staleness check accepts what a started
//! action may have changed.
//!
//! A journal is trusted only if every line is an entry of the same plan, indexes are within the plan,
//! nothing is done that was not started, and nothing follows `complete`; only a last line cut short
//! by a crash is tolerated (and cut off before the journal is appended to). A completed journal of
//! another plan is replaced; an unfinished one is refused.

use std::collections::{BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::watch;

use serde::{Deserialize, Serialize};

/// One line of a journal.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    /// The digest of the plan the line belongs to.
    plan: String,
    #[serde(flatten)]
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Begin { actions: usize },
    Start { index: usize },
    Done { index: usize },
    Commit { indexes: Vec<usize>, sha256: String },
    Committed,
    Complete,
}

/// What earlier runs of the same plan got through.
#[derive(Debug, Default)]
pub struct Progress {
    /// Actions started (a superset of `done`).
    pub started: HashSet<usize>,
    pub done: HashSet<usize>,
    pub complete: bool,
    /// The journal belongs to another plan whose apply completed: it is replaced.
    pub replaces_other: bool,
    /// The last line is a `commit` whose write the target holds: [`Journal::begin`] records the
    /// `committed` the stopped run never wrote, so that a later `commit` cannot hide it.
    pub commit_held: bool,
}

/// An open journal, appended to as actions start and finish.
///
/// Lines are written by group commit, off the runtime thread: a line is queued, and a writer on a
/// blocking thread (`spawn_blocking`, started when there is something to write and none is running)
/// takes every queued line, writes them in one `write` and makes them durable with one `fdatasync`,
/// then wakes every waiter of that batch; lines queued meanwhile go into the next batch. So actions
/// running at once share their syncs, and the runtime thread never waits on the disk.
///
/// What is durable when:
/// - `start`, `commit`, `committed` and `complete`: when [`Journal::started`] (etc.) returns. A
///   `start` line is thus on disk before its action's request is sent; a `commit` line before the
///   target's write.
/// - `done`: [`Journal::done`] only queues the line (it does not wait, and does not start a write by
///   itself); it is made durable by the next line that is waited for (lines reach the disk in the
///   order queued), or by [`Journal::flush`]. The executor flushes at the end of each kind of action,
///   before it reports those actions, so every `done` is on disk before the run reports its action
///   done, before `commit` and `complete`, and before the apply returns. A `done` lost to a crash only
///   makes its action be redone (with a lookup first), which every action tolerates; since an
///   action's slot starts its next action only after queueing the `done`, and that `start` waits for
///   a sync which includes it, at most one action per slot is redone after a crash, as before.
///
/// A failed write or sync leaves the end of the file unknown: the journal then refuses every further
/// line (and every waiter of that batch gets the error).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    plan: String,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Used by one writer at a time (the `writing` flag); the mutex only makes it shareable.
    file: Mutex<File>,
    queue: Mutex<Queue>,
    /// How far the journal is durable, and whether it failed; waiters watch it.
    synced: watch::Sender<Synced>,
    /// `fdatasync` calls made by the writer (for tests and the benchmark).
    syncs: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    /// Lines queued and not yet taken by the writer.
    pending: Vec<u8>,
    /// Lines queued so far (the sequence number of the last one).
    queued: u64,
    /// The last line someone waits for (or flushes): lines after it are written only with a later
    /// one that is waited for, so a `done` never costs a sync of its own.
    wanted: u64,
    /// The last line written and synced.
    written: u64,
    /// A writer is running.
    writing: bool,
    failed: Option<(io::ErrorKind, String)>,
}

#[derive(Debug, Default)]
struct Synced {
    /// Lines durable so far (all of `1..=upto`).
    upto: u64,
    failed: Option<(io::ErrorKind, String)>,
}

fn failure(f: &(io::ErrorKind, String)) -> io::Error {
    io::Error::new(f.0, f.1.clone())
}

impl Shared {
    /// Queues `line` (if any); with `kick`, starts a writer unless one is running. Returns the
    /// sequence number of the last line queued.
    fn enqueue(self: &Arc<Self>, line: Option<&str>, kick: bool) -> io::Result<u64> {
        let mut q = self.queue.lock().expect("not poisoned");
        if let Some(f) = &q.failed {
            return Err(failure(f));
        }
        if let Some(line) = line {
            q.pending.extend_from_slice(line.as_bytes());
            q.queued += 1;
        }
        if kick {
            q.wanted = q.queued;
        }
        if kick && !q.writing && !q.pending.is_empty() {
            q.writing = true;
            let shared = Arc::clone(self);
            tokio::task::spawn_blocking(move || shared.write_batches());
        }
        Ok(q.queued)
    }

    /// The writer: one `write` and one `fdatasync` per batch, until nothing is queued.
    fn write_batches(&self) {
        loop {
            let (batch, upto) = {
                let mut q = self.queue.lock().expect("not poisoned");
                // Only what someone waits for is worth a sync; queued `done` lines ride with it.
                if q.pending.is_empty() || q.wanted <= q.written {
                    q.writing = false;
                    return;
                }
                (std::mem::take(&mut q.pending), q.queued)
            };
            let written = {
                let mut f = self.file.lock().expect("not poisoned");
                let r = f.write_all(&batch).and_then(|()| f.sync_data());
                self.syncs.fetch_add(1, Ordering::SeqCst);
                r
            };
            match written {
                Ok(()) => {
                    self.queue.lock().expect("not poisoned").written = upto;
                    self.synced.send_modify(|s| s.upto = upto);
                }
                Err(e) => {
                    let f = (e.kind(), e.to_string());
                    {
                        let mut q = self.queue.lock().expect("not poisoned");
                        q.failed = Some(f.clone());
                        q.pending.clear();
                        q.writing = false;
                    }
                    self.synced.send_modify(|s| s.failed = Some(f));
                    return;
                }
            }
        }
    }

    /// Waits until line `seq` is durable.
    async fn wait(&self, seq: u64) -> io::Result<()> {
        let mut rx = self.synced.subscribe();
        let s = rx
            .wait_for(|s| s.upto >= seq || s.failed.is_some())
            .await
            .map_err(|_| io::Error::other("the journal writer stopped"))?;
        if s.upto >= seq {
            return Ok(());
        }
        Err(failure(s.failed.as_ref().expect("checked")))
    }
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
    #[error("the apply journal {} records an unfinished apply of another plan ({done} of {total} action(s) done): the plan file was replaced before that apply finished", path.display())]
    OtherPlan {
        path: PathBuf,
        done: usize,
        total: usize,
    },
    #[error("the apply journal {} cannot be trusted: line {line}: {why}", path.display())]
    Corrupt {
        path: PathBuf,
        line: usize,
        why: String,
    },
}

impl JournalError {
    /// What to do about it.
    #[must_use]
    pub fn hint(&self) -> String {
        match self {
            JournalError::Io { .. } => {
                "the journal lives next to the plan file; make that folder writable".into()
            }
            JournalError::OtherPlan { path, .. } => format!(
                "to finish that apply, put its plan file back and apply it again. Or, if this plan was made after that apply stopped (so it accounts for what that apply did), delete {} and apply this plan; if not, make a fresh plan first (`idsync plan --out FILE`)",
                path.display()
            ),
            JournalError::Corrupt { path, .. } => format!(
                "the journal was edited or mixed with another; make a fresh plan (`idsync plan --out FILE`: it includes whatever is left undone), delete {}, and apply the fresh plan",
                path.display()
            ),
        }
    }
}

/// Where the journal of a plan file lives.
#[must_use]
pub fn path_for(plan_file: &Path) -> PathBuf {
    let mut name = plan_file.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// The complete lines of a journal (without their newlines), and where the last complete line ends.
/// A last line without a newline that parses counts as complete (the crash came between the line and
/// its newline); one that does not parse was cut short and is left out.
fn lines(bytes: &[u8]) -> (Vec<&[u8]>, usize, bool) {
    let mut out: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let tail = out.pop().unwrap_or_default();
    let mut end = bytes.len() - tail.len();
    let mut missing_newline = false;
    if !tail.is_empty() && serde_json::from_slice::<Line>(tail).is_ok() {
        out.push(tail);
        end = bytes.len();
        missing_newline = true;
    }
    (out, end, missing_newline)
}

impl Progress {
    /// What earlier runs of the plan with this digest and number of actions recorded; nothing when
    /// there is no journal yet. `holds(sha256)` says whether the target now holds exactly what a
    /// `commit` line was about to write. Reads only: refusing to apply leaves no file behind.
    ///
    /// # Errors
    /// The journal cannot be read, is not a journal of one plan, or is another plan's, unfinished.
    pub fn read(
        plan_file: &Path,
        digest: &str,
        actions: usize,
        holds: &dyn Fn(&str) -> bool,
    ) -> Result<Progress, JournalError> {
        let path = path_for(plan_file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Progress::default()),
            Err(source) => return Err(JournalError::Io { path, source }),
        };
        let (lines, _, _) = lines(&bytes);
        if lines.is_empty() {
            // Created, then killed before its first line: as good as none.
            return Ok(Progress::default());
        }
        let corrupt = |line: usize, why: String| JournalError::Corrupt {
            path: path.clone(),
            line,
            why,
        };
        let mut entries = Vec::with_capacity(lines.len());
        for (n, l) in lines.iter().enumerate() {
            let entry: Line = serde_json::from_slice(l)
                .map_err(|e| corrupt(n + 1, format!("not a journal entry ({e})")))?;
            entries.push(entry);
        }
        let Event::Begin { actions: total } = entries[0].event else {
            return Err(corrupt(1, "the journal does not begin with `begin`".into()));
        };
        let owner = entries[0].plan.clone();
        if let Some(n) = entries.iter().position(|e| e.plan != owner) {
            return Err(corrupt(n + 1, "an entry of another plan".into()));
        }
        let mut p = Progress::default();
        let mut commit: Option<(Vec<usize>, String)> = None;
        for (n, e) in entries.iter().enumerate().skip(1) {
            let line = n + 1;
            if p.complete {
                return Err(corrupt(line, "an entry after `complete`".into()));
            }
            let check = |i: usize| {
                if i >= total {
                    Err(corrupt(
                        line,
                        format!("action #{i} of a plan of {total} action(s)"),
                    ))
                } else {
                    Ok(())
                }
            };
            match &e.event {
                Event::Begin { .. } => return Err(corrupt(line, "a second `begin`".into())),
                Event::Start { index } => {
                    check(*index)?;
                    p.started.insert(*index);
                }
                Event::Done { index } => {
                    check(*index)?;
                    if !p.started.contains(index) {
                        return Err(corrupt(
                            line,
                            format!("action #{index} done, never started"),
                        ));
                    }
                    p.done.insert(*index);
                }
                Event::Commit { indexes, sha256 } => {
                    for &i in indexes {
                        check(i)?;
                        if !p.started.contains(&i) {
                            return Err(corrupt(
                                line,
                                format!("action #{i} committed, never started"),
                            ));
                        }
                    }
                    // An earlier `commit` still open was not held when the next run began (that
                    // run would have recorded its `committed`): its write never happened.
                    commit = Some((indexes.clone(), sha256.clone()));
                }
                Event::Committed => {
                    let Some((indexes, _)) = commit.take() else {
                        return Err(corrupt(line, "`committed` without `commit`".into()));
                    };
                    p.done.extend(indexes);
                }
                Event::Complete => {
                    p.complete = true;
                }
            }
        }
        // A write that was under way when the run stopped: done if the target holds it.
        if let Some((indexes, sha256)) = commit {
            if holds(&sha256) {
                p.done.extend(indexes);
                p.commit_held = true;
            }
        }
        if p.complete && p.done.len() != total {
            return Err(corrupt(
                entries.len(),
                format!("`complete` with {} of {total} action(s) done", p.done.len()),
            ));
        }
        if owner != digest {
            if p.complete {
                return Ok(Progress {
                    replaces_other: true,
                    ..Progress::default()
                });
            }
            return Err(JournalError::OtherPlan {
                path,
                done: p.done.len(),
                total,
            });
        }
        if total != actions {
            return Err(corrupt(
                1,
                format!("`begin` says {total} action(s), the plan has {actions}"),
            ));
        }
        Ok(p)
    }
}

impl Journal {
    /// Opens the journal of a plan for appending, starting a new one when there is none or `progress`
    /// says it replaces another plan's completed journal. A last line a crash cut short is cut off.
    ///
    /// # Errors
    /// The journal cannot be written.
    pub fn begin(
        plan_file: &Path,
        digest: &str,
        actions: usize,
        progress: &Progress,
    ) -> Result<Journal, JournalError> {
        let path = path_for(plan_file);
        let io_err = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let existing = match std::fs::read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(e)),
        };
        let fresh = match &existing {
            None => true,
            Some(b) => progress.replaces_other || lines(b).0.is_empty(),
        };
        if fresh {
            let line = encode(digest, &Event::Begin { actions });
            crate::snapshot_file::replace_atomic(&path, line.as_bytes()).map_err(|e| {
                JournalError::Io {
                    path: path.clone(),
                    source: io::Error::other(e.to_string()),
                }
            })?;
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        if let (false, Some(bytes)) = (fresh, &existing) {
            let (_, end, missing_newline) = lines(bytes);
            if end < bytes.len() {
                file.set_len(end as u64).map_err(io_err)?;
            }
            if missing_newline {
                file.write_all(b"\n").map_err(io_err)?;
            }
            if progress.commit_held {
                file.write_all(encode(digest, &Event::Committed).as_bytes())
                    .map_err(io_err)?;
            }
            file.sync_data().map_err(io_err)?;
        }
        Ok(Journal {
            path: path.clone(),
            plan: digest.to_string(),
            shared: Arc::new(Shared {
                file: Mutex::new(file),
                queue: Mutex::new(Queue::default()),
                synced: watch::Sender::new(Synced::default()),
                syncs: AtomicU64::new(0),
            }),
        })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Before action `index` is sent: returns once its `start` line is on disk (sharing the sync
    /// with every line queued meanwhile).
    ///
    /// # Errors
    /// The line cannot be written (nor can any later one).
    pub async fn started(&self, index: usize) -> io::Result<()> {
        self.write(&Event::Start { index }).await
    }

    /// After action `index` succeeded: queues its `done` line, durable with the next line waited for
    /// or [`Journal::flush`]. Does not wait.
    ///
    /// # Errors
    /// An earlier write failed.
    pub fn done(&self, index: usize) -> io::Result<()> {
        let line = encode(&self.plan, &Event::Done { index });
        self.shared.enqueue(Some(&line), false)?;
        crash_point();
        Ok(())
    }

    /// Makes every line queued so far durable.
    ///
    /// # Errors
    /// A line cannot be written.
    pub async fn flush(&self) -> io::Result<()> {
        let seq = self.shared.enqueue(None, true)?;
        self.shared.wait(seq).await
    }

    /// Before a target writes the actions `indexes` at once: what it is about to write.
    ///
    /// # Errors
    /// The line cannot be written.
    pub async fn commit(&self, indexes: &BTreeSet<usize>, sha256: &str) -> io::Result<()> {
        self.write(&Event::Commit {
            indexes: indexes.iter().copied().collect(),
            sha256: sha256.to_string(),
        })
        .await
    }

    /// After the write a `commit` announced.
    ///
    /// # Errors
    /// The line cannot be written.
    pub async fn committed(&self) -> io::Result<()> {
        self.write(&Event::Committed).await
    }

    /// # Errors
    /// The line cannot be written.
    pub async fn complete(&self) -> io::Result<()> {
        self.write(&Event::Complete).await
    }

    /// The `fdatasync` calls made so far for lines of this run.
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::SeqCst)
    }

    /// Queues a line and waits until it (and everything queued before it) is durable.
    async fn write(&self, event: &Event) -> io::Result<()> {
        let line = encode(&self.plan, event);
        let seq = self.shared.enqueue(Some(&line), true)?;
        self.shared.wait(seq).await?;
        crash_point();
        Ok(())
    }
}

fn encode(plan: &str, event: &Event) -> String {
    /// A line as written: `plan` first.
    #[derive(Serialize)]
    struct Out<'a> {
        plan: &'a str,
        #[serde(flatten)]
        event: &'a Event,
    }
    let mut s = serde_json::to_string(&Out { plan, event }).expect("entries serialize");
    s.push('\n');
    s
}

/// The test hook behind "killed at any point": with `IDSYNC_TEST_CRASH_AT=N`, the process aborts at
/// its N-th sync point (each journal line on disk, or for a `done` line queued; each action's request
/// answered; a target's final write), as a `kill -9` would stop it. Unset in normal use.
pub fn crash_point() {
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    // Only in debug builds (the tests'): a release binary never aborts on an environment variable.
    if !cfg!(debug_assertions) {
        return;
    }
    let at = AT.get_or_init(|| {
        std::env::var("IDSYNC_TEST_CRASH_AT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(at) = at {
        if COUNT.fetch_add(1, Ordering::SeqCst) + 1 == *at {
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: &str) -> bool {
        false
    }

    fn read(plan: &Path, digest: &str, n: usize) -> Result<Progress, JournalError> {
        Progress::read(plan, digest, n, &never)
    }

    /// A journal of plan `abc` (4 actions): 0 and 1 done, 2 started.
    async fn sample(plan: &Path) -> Vec<u8> {
        let p = read(plan, "abc", 4).unwrap();
        let j = Journal::begin(plan, "abc", 4, &p).unwrap();
        j.started(0).await.unwrap();
        j.done(0).unwrap();
        j.started(1).await.unwrap();
        j.started(2).await.unwrap();
        j.done(1).unwrap();
        j.flush().await.unwrap();
        drop(j);
        std::fs::read(path_for(plan)).unwrap()
    }

    #[tokio::test]
    async fn records_and_reads_back_progress() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        assert!(read(&plan, "abc", 4).unwrap().started.is_empty());
        assert!(!path_for(&plan).exists(), "reading creates nothing");
        sample(&plan).await;
        let p = read(&plan, "abc", 4).unwrap();
        assert_eq!(p.done, HashSet::from([0, 1]));
        assert_eq!(p.started, HashSet::from([0, 1, 2]));
        assert!(!p.complete);
        let text = std::fs::read_to_string(path_for(&plan)).unwrap();
        assert!(
            text.lines().all(|l| l.starts_with("{\"plan\":\"abc\"")),
            "every line names its plan:\n{text}"
        );
    }

    #[tokio::test]
    async fn a_journal_cut_at_any_byte_reads_as_a_prefix_and_takes_appends() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let full = sample(&plan).await;
        for cut in 0..=full.len() {
            std::fs::write(path_for(&plan), &full[..cut]).unwrap();
            let p = read(&plan, "abc", 4).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            // What it says is what the complete lines before the cut say.
            let whole: Vec<&str> = std::str::from_utf8(&full[..cut])
                .unwrap()
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n') || serde_json::from_str::<Line>(l).is_ok())
                .collect();
            let done = whole.iter().filter(|l| l.contains("\"done\"")).count();
            assert_eq!(p.done.len(), done, "cut at {cut}");
            // The next run appends after cutting the torn line off; the result reads cleanly.
            let j = Journal::begin(&plan, "abc", 4, &p).unwrap();
            j.started(3).await.unwrap();
            j.done(3).unwrap();
            j.flush().await.unwrap();
            drop(j);
            let again = read(&plan, "abc", 4).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert!(again.done.contains(&3), "cut at {cut}");
            assert_eq!(again.done.len(), done + 1, "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn another_plans_journal_is_refused_however_it_is_arranged() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let full = String::from_utf8(sample(&plan).await).unwrap();
        let other = matches!(
            read(&plan, "xyz", 4),
            Err(JournalError::OtherPlan {
                done: 2,
                total: 4,
                ..
            })
        );
        assert!(
            other,
            "an unfinished journal of plan abc, read for plan xyz"
        );
        let begin_xyz = encode("xyz", &Event::Begin { actions: 4 });
        let arrangements = [
            format!("\n{full}"),
            format!("{begin_xyz}{full}"),
            format!("{full}{begin_xyz}"),
            full.replacen("\"plan\":\"abc\"", "\"plan\":\"xyz\"", 1),
            full.replace("{\"plan\":\"abc\",", "{"),
            format!("{full}\n"),
            format!("{full}{}", encode("abc", &Event::Done { index: 400 })),
            format!("{full}{}", encode("abc", &Event::Done { index: 3 })),
            full.replace("\"actions\":4", "\"actions\":77"),
            format!(
                "{full}{}{}",
                encode("abc", &Event::Complete),
                encode("abc", &Event::Start { index: 3 })
            ),
        ];
        for (n, text) in arrangements.iter().enumerate() {
            std::fs::write(path_for(&plan), text).unwrap();
            for digest in ["abc", "xyz"] {
                let r = read(&plan, digest, 4);
                assert!(
                    r.is_err(),
                    "arrangement {n} read for {digest} was trusted:\n{text}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_completed_journal_of_another_plan_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let p = read(&plan, "abc", 1).unwrap();
        let j = Journal::begin(&plan, "abc", 1, &p).unwrap();
        j.started(0).await.unwrap();
        j.done(0).unwrap();
        j.complete().await.unwrap();
        j.flush().await.unwrap();
        drop(j);
        assert!(read(&plan, "abc", 1).unwrap().complete);
        let p = read(&plan, "xyz", 2).unwrap();
        assert!(p.replaces_other && p.done.is_empty());
        let j = Journal::begin(&plan, "xyz", 2, &p).unwrap();
        j.started(1).await.unwrap();
        j.flush().await.unwrap();
        drop(j);
        let p = read(&plan, "xyz", 2).unwrap();
        assert_eq!(p.started, HashSet::from([1]));
        assert!(!std::fs::read_to_string(path_for(&plan))
            .unwrap()
            .contains("abc"));
    }

    #[tokio::test]
    async fn a_commit_counts_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let p = read(&plan, "abc", 2).unwrap();
        let j = Journal::begin(&plan, "abc", 2, &p).unwrap();
        j.started(0).await.unwrap();
        j.started(1).await.unwrap();
        j.commit(&BTreeSet::from([0, 1]), "f00d").await.unwrap();
        j.flush().await.unwrap();
        drop(j);
        assert!(
            read(&plan, "abc", 2).unwrap().done.is_empty(),
            "not written"
        );
        let holds = |s: &str| s == "f00d";
        let p = Progress::read(&plan, "abc", 2, &holds).unwrap();
        assert_eq!(p.done, HashSet::from([0, 1]), "the target holds the write");
        assert!(p.commit_held);
        // The resumed run records the `committed` the stopped one never wrote.
        let j = Journal::begin(&plan, "abc", 2, &p).unwrap();
        j.flush().await.unwrap();
        drop(j);
        assert_eq!(read(&plan, "abc", 2).unwrap().done.len(), 2);
    }

    /// A resumed run that finds a stopped run's write in the target, then stops in its own write:
    /// the first write stays done although the target now holds neither (it used to be lost,
    /// the second `commit` overwriting the first).
    #[tokio::test]
    async fn a_held_commit_survives_a_later_commit() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let p = read(&plan, "abc", 3).unwrap();
        let j = Journal::begin(&plan, "abc", 3, &p).unwrap();
        for i in 0..3 {
            j.started(i).await.unwrap();
        }
        j.commit(&BTreeSet::from([0, 1]), "f00d").await.unwrap();
        j.flush().await.unwrap();
        drop(j);
        let p = Progress::read(&plan, "abc", 3, &|s: &str| s == "f00d").unwrap();
        let j = Journal::begin(&plan, "abc", 3, &p).unwrap();
        j.commit(&BTreeSet::from([2]), "beef").await.unwrap();
        j.flush().await.unwrap();
        drop(j);
        let p = Progress::read(&plan, "abc", 3, &|_: &str| false).unwrap();
        assert_eq!(p.done, HashSet::from([0, 1]));
        assert!(!p.commit_held);
        // A commit that was not held stays not done when another follows it.
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let p = read(&plan, "abc", 2).unwrap();
        let j = Journal::begin(&plan, "abc", 2, &p).unwrap();
        j.started(0).await.unwrap();
        j.started(1).await.unwrap();
        j.commit(&BTreeSet::from([0]), "f00d").await.unwrap();
        j.flush().await.unwrap();
        drop(j);
        let p = Progress::read(&plan, "abc", 2, &|_: &str| false).unwrap();
        let j = Journal::begin(&plan, "abc", 2, &p).unwrap();
        j.commit(&BTreeSet::from([0, 1]), "beef").await.unwrap();
        j.flush().await.unwrap();
        drop(j);
        let p = Progress::read(&plan, "abc", 2, &|s: &str| s == "f00d").unwrap();
        assert!(p.done.is_empty(), "{:?}", p.done);
    }

    /// Concurrent `started` calls share syncs: while the writer is held at its first batch, 16
    /// actions queue their `start`; they all go out in the next batch. Counted, not timed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)]
    async fn concurrent_starts_share_one_sync() {
        const N: usize = 16;
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let p = read(&plan, "abc", N).unwrap();
        let j = Arc::new(Journal::begin(&plan, "abc", N, &p).unwrap());
        let held = j.shared.file.lock().unwrap();
        let tasks: Vec<_> = (0..N)
            .map(|i| {
                let j = Arc::clone(&j);
                tokio::spawn(async move { j.started(i).await })
            })
            .collect();
        while j.shared.queue.lock().unwrap().queued < N as u64 {
            tokio::task::yield_now().await;
        }
        assert_eq!(j.syncs(), 0, "nothing is durable while the writer is held");
        drop(held);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // The first batch may hold one line or several; the rest share the second.
        assert!(j.syncs() <= 2, "{} syncs for {N} starts", j.syncs());
        let p = read(&plan, "abc", N).unwrap();
        assert_eq!(p.started.len(), N, "every start is on disk");
    }

    /// When `started` returns, its line can be read back from the file; a `done` is queued, and on
    /// disk once the next line is (or at `flush`).
    #[tokio::test]
    async fn a_start_is_on_disk_when_started_returns() {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let p = read(&plan, "abc", 3).unwrap();
        let j = Journal::begin(&plan, "abc", 3, &p).unwrap();
        j.started(0).await.unwrap();
        assert_eq!(read(&plan, "abc", 3).unwrap().started, HashSet::from([0]));
        j.done(0).unwrap();
        j.started(1).await.unwrap();
        let p = read(&plan, "abc", 3).unwrap();
        assert_eq!(p.started, HashSet::from([0, 1]));
        assert_eq!(
            p.done,
            HashSet::from([0]),
            "the done went out with the next start"
        );
        j.done(1).unwrap();
        j.flush().await.unwrap();
        assert_eq!(read(&plan, "abc", 3).unwrap().done, HashSet::from([0, 1]));
    }

    /// One action after another costs one sync each (the `done` rides with the next `start`), where
    /// a sync per line cost two; plus one for the final flush.
    #[tokio::test]
    async fn actions_one_after_another_cost_one_sync_each() {
        const N: usize = 10;
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.json");
        let p = read(&plan, "abc", N).unwrap();
        let j = Journal::begin(&plan, "abc", N, &p).unwrap();
        for i in 0..N {
            j.started(i).await.unwrap();
            j.done(i).unwrap();
        }
        j.flush().await.unwrap();
        assert_eq!(j.syncs(), N as u64 + 1);
        j.flush().await.unwrap();
        assert_eq!(j.syncs(), N as u64 + 1, "nothing queued, nothing synced");
        j.complete().await.unwrap();
        assert!(read(&plan, "abc", N).unwrap().complete);
    }
}
