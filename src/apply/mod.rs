//! The executor: runs a plan's actions in order against a target, records a result for each, and
//! makes the changes durable. A plan is never half-applied silently: every failure is reported, and
//! the run fails when any action did.

pub mod confirm;
pub mod journal;
pub mod lock;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::plan::{Action, Plan};
use crate::target::{Target, TargetError};

/// What happened to one action.
#[derive(Clone, Debug)]
pub struct ActionResult {
    pub index: usize,
    pub error: Option<String>,
    /// Done by an earlier, interrupted run of the same plan (from its journal); not sent again.
    pub resumed: bool,
    /// Not started: the run was interrupted first.
    pub not_started: bool,
}

/// What happened to a whole plan.
#[derive(Debug)]
pub struct Outcome {
    pub started: DateTime<Utc>,
    pub duration_ms: u64,
    pub results: Vec<ActionResult>,
    /// Whether the target saved the changes (`finish` succeeded).
    pub written: bool,
    pub finish_error: Option<TargetError>,
    /// Stopped early (Ctrl-C): the actions not started are marked so.
    pub interrupted: bool,
}

impl Outcome {
    #[must_use]
    pub fn failed(&self) -> usize {
        if self.written {
            self.results.iter().filter(|r| r.error.is_some()).count()
        } else {
            self.results.iter().filter(|r| !r.not_started).count()
        }
    }

    /// Actions the run did not start because it was interrupted.
    #[must_use]
    pub fn not_started(&self) -> usize {
        self.results.iter().filter(|r| r.not_started).count()
    }
}

/// Applies every action of `plan`, kind by kind in plan order (creates before the memberships that
/// need them, and so on); the actions of one kind run up to `target.concurrency()` at a time. Then
/// finishes the target.
pub async fn execute(
    plan: &Plan,
    target: &mut dyn Target,
    on_result: &mut dyn FnMut(&Action, &Option<String>),
) -> Outcome {
    let stop = AtomicBool::new(false);
    execute_resuming(plan, target, None, &HashSet::new(), &stop, on_result).await
}

/// As [`execute`], recording progress in `journal` and skipping the actions in `done`. Once `stop` is
/// set, no new action starts; those in flight finish, and the target saves what was done.
///
/// A target that writes everything at the end (a file) is journaled as done only with that write: a
/// `commit` line before it, `committed` after it.
pub async fn execute_resuming(
    plan: &Plan,
    target: &mut dyn Target,
    journal: Option<&journal::Journal>,
    done: &HashSet<usize>,
    stop: &AtomicBool,
    on_result: &mut dyn FnMut(&Action, &Option<String>),
) -> Outcome {
    use futures_util::stream::{self, StreamExt};

    let started = Utc::now();
    let clock = Instant::now();
    let mut results: Vec<ActionResult> = Vec::with_capacity(plan.actions.len());
    let width = target.concurrency().max(1);
    let at_finish = target.writes_at_finish();
    let mut i = 0;
    while i < plan.actions.len() {
        let kind = plan.actions[i].kind();
        let end = plan.actions[i..]
            .iter()
            .position(|a| a.kind() != kind)
            .map_or(plan.actions.len(), |n| i + n);
        let shared: &dyn Target = &*target;
        let mut phase: Vec<ActionResult> = stream::iter(i..end)
            .map(|index| async move {
                if done.contains(&index) {
                    return ActionResult {
                        index,
                        error: None,
                        resumed: true,
                        not_started: false,
                    };
                }
                if stop.load(Ordering::SeqCst) {
                    return ActionResult {
                        index,
                        error: None,
                        resumed: false,
                        not_started: true,
                    };
                }
                let record = |r: std::io::Result<()>| {
                    r.err()
                        .map(|e| format!("cannot record progress in the apply journal: {e}"))
                };
                if let Some(error) = journal.and_then(|j| record(j.started(index))) {
                    return ActionResult {
                        index,
                        error: Some(error),
                        resumed: false,
                        not_started: false,
                    };
                }
                let mut error = shared
                    .apply(&plan.actions[index])
                    .await
                    .err()
                    .map(|e| e.to_string());
                journal::crash_point();
                if error.is_none() && !at_finish {
                    error = journal.and_then(|j| record(j.done(index)));
                }
                ActionResult {
                    index,
                    error,
                    resumed: false,
                    not_started: false,
                }
            })
            .buffer_unordered(width)
            .collect()
            .await;
        phase.sort_by_key(|r| r.index);
        for r in phase.iter().filter(|r| !r.resumed && !r.not_started) {
            on_result(&plan.actions[r.index], &r.error);
        }
        results.extend(phase);
        i = end;
    }
    let finish_error = match journal.filter(|_| at_finish) {
        Some(j) => finish_journaled(target, j, &results).await,
        None => target.finish().await.err(),
    };
    Outcome {
        started,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        results,
        written: finish_error.is_none(),
        finish_error,
        interrupted: stop.load(Ordering::SeqCst),
    }
}

/// Finishes a target that writes everything at once, journaling the actions it writes as done with
/// the write: `commit` before, `committed` after.
async fn finish_journaled(
    target: &mut dyn Target,
    journal: &journal::Journal,
    results: &[ActionResult],
) -> Option<TargetError> {
    let record = |r: std::io::Result<()>| {
        r.err().map(|e| {
            TargetError::Invalid(format!(
                "cannot record progress in the apply journal {}: {e}",
                journal.path().display()
            ))
        })
    };
    let sha = match target.stage() {
        Ok(Some(sha)) => sha,
        Ok(None) => return target.finish().await.err(),
        Err(e) => return Some(e),
    };
    let applied: BTreeSet<usize> = results
        .iter()
        .filter(|r| !r.resumed && !r.not_started && r.error.is_none())
        .map(|r| r.index)
        .collect();
    if let Some(e) = record(journal.commit(&applied, &sha)) {
        return Some(e);
    }
    if let Some(e) = target.finish().await.err() {
        return Some(e);
    }
    journal::crash_point();
    // Should this line not be written, the next run still sees the write: the target holds what
    // `commit` announced.
    let _ = journal.committed();
    None
}
