//! The executor: runs a plan's actions in order against a target, records a result for each, and
//! makes the changes durable. A plan is never half-applied silently: every failure is reported, and
//! the run fails when any action did. When failures pass a threshold ([`StopRule`]) no further
//! action is started: the rest are reported as not started and left for a resumed apply.

pub mod confirm;
pub mod journal;
pub mod lock;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::plan::{Action, Plan};
use crate::targets::{Target, TargetError};

/// What happened to one action.
#[derive(Clone, Debug)]
pub struct ActionResult {
    pub index: usize,
    pub error: Option<String>,
    /// Done by an earlier, interrupted run of the same plan (from its journal); not sent again.
    pub resumed: bool,
    /// Not started: the run was interrupted (Ctrl-C), or it stopped early because failures passed
    /// [`StopRule`]'s threshold (then `error` says why and the action counts as failed).
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
    /// Why the run stopped starting new actions, when failures passed [`StopRule`]'s threshold.
    /// The actions not started are failed with "not started"; the journal has no entry for them,
    /// so applying the same plan again does them.
    pub stopped: Option<String>,
    /// Stopped early (Ctrl-C): the actions not started are marked so.
    pub interrupted: bool,
}

/// When an apply stops starting new actions: the first `first` finished actions all failed, or,
/// once `min_finished` have finished, more than `max_failed_percent` of them failed. A target that
/// refuses everything (a revoked token, an outage) then costs a few requests, not thousands.
#[derive(Clone, Copy, Debug)]
pub struct StopRule {
    pub first: usize,
    pub min_finished: usize,
    pub max_failed_percent: usize,
}

impl Default for StopRule {
    fn default() -> Self {
        StopRule {
            first: 10,
            min_finished: 20,
            max_failed_percent: 50,
        }
    }
}

impl StopRule {
    /// Why to stop, after `failed` of `finished` actions failed.
    #[must_use]
    pub fn verdict(&self, finished: usize, failed: usize) -> Option<String> {
        if finished >= self.first && failed == finished {
            Some(format!(
                "the first {finished} action(s) all failed; no further action was started"
            ))
        } else if finished >= self.min_finished && failed * 100 > finished * self.max_failed_percent
        {
            Some(format!(
                "{failed} of {finished} action(s) failed, more than {}%; no further action was started",
                self.max_failed_percent
            ))
        } else {
            None
        }
    }
}

/// Counts finished actions and decides when to stop starting new ones.
#[derive(Debug, Default)]
struct Breaker {
    rule: StopRule,
    counts: std::sync::Mutex<(usize, usize)>,
    stopped: std::sync::OnceLock<String>,
}

impl Breaker {
    fn record(&self, failed: bool) {
        let mut c = self.counts.lock().expect("not poisoned");
        c.0 += 1;
        c.1 += usize::from(failed);
        if let Some(why) = self.rule.verdict(c.0, c.1) {
            let _ = self.stopped.set(why);
        }
    }
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
///
/// Each action's `start` line is on disk before its request is sent (actions running at once share
/// the sync: see [`journal::Journal`]); its `done` line is queued, and the journal is flushed at the
/// end of each kind of action, before those actions are reported.
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
    let breaker = Breaker::default();
    let breaker = &breaker;
    let at_finish = target.writes_at_finish();
    let progress = crate::progress::Phase::apply(
        &format!("applying to {}", target.name()),
        plan.actions.len() - done.iter().filter(|i| **i < plan.actions.len()).count(),
    );
    let progress = &progress;
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
                    progress.note("interrupted: starting no new actions");
                    return ActionResult {
                        index,
                        error: None,
                        resumed: false,
                        not_started: true,
                    };
                }
                if let Some(why) = breaker.stopped.get() {
                    progress.note("stopped: too many actions failed");
                    return ActionResult {
                        index,
                        error: Some(format!("not started: {why}")),
                        resumed: false,
                        not_started: true,
                    };
                }
                let record = |r: std::io::Result<()>| {
                    r.err()
                        .map(|e| format!("cannot record progress in the apply journal: {e}"))
                };
                let recorded = match journal {
                    Some(j) => record(j.started(index).await),
                    None => None,
                };
                if let Some(error) = recorded {
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
                breaker.record(error.is_some());
                progress.inc_done(error.is_some());
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
        // The `done` lines of this kind are only queued: on disk before the actions are reported.
        if let Some(Err(e)) = match journal {
            Some(j) => Some(j.flush().await),
            None => None,
        } {
            for r in phase
                .iter_mut()
                .filter(|r| !r.resumed && !r.not_started && r.error.is_none() && !at_finish)
            {
                r.error = Some(format!("cannot record progress in the apply journal: {e}"));
            }
        }
        // Actions not started are summed up once (`Outcome::stopped`, `Outcome::interrupted`), not
        // reported one by one.
        for r in phase.iter().filter(|r| !r.resumed && !r.not_started) {
            on_result(&plan.actions[r.index], &r.error);
        }
        results.extend(phase);
        i = end;
    }
    progress.finish();
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
        stopped: breaker.stopped.get().cloned(),
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
    if let Some(e) = record(journal.commit(&applied, &sha).await) {
        return Some(e);
    }
    if let Some(e) = target.finish().await.err() {
        return Some(e);
    }
    journal::crash_point();
    // Should this line not be written, the next run still sees the write: the target holds what
    // `commit` announced.
    let _ = journal.committed().await;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_the_first_actions_all_fail_or_most_do() {
        let r = StopRule::default();
        assert_eq!(r.verdict(9, 9), None);
        assert!(r.verdict(10, 10).unwrap().contains("first 10"));
        assert_eq!(r.verdict(10, 9), None);
        assert_eq!(
            r.verdict(19, 18),
            None,
            "not all failed, and too few to judge"
        );
        assert!(r.verdict(20, 11).unwrap().contains("11 of 20"));
        assert_eq!(r.verdict(20, 10), None, "half is not more than half");
        assert_eq!(r.verdict(1000, 3), None);
    }
}
