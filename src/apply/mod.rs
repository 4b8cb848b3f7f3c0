//! The executor: runs a plan's actions in order against a target, records a result for each, and
//! makes the changes durable. A plan is never half-applied silently: every failure is reported, and
//! the run fails when any action did.

pub mod confirm;
pub mod journal;

use std::collections::HashSet;

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
}

impl Outcome {
    #[must_use]
    pub fn failed(&self) -> usize {
        if self.written {
            self.results.iter().filter(|r| r.error.is_some()).count()
        } else {
            self.results.len()
        }
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
    execute_resuming(plan, target, None, &HashSet::new(), on_result).await
}

/// As [`execute`], recording progress in `journal` and skipping the actions in `done`.
pub async fn execute_resuming(
    plan: &Plan,
    target: &mut dyn Target,
    journal: Option<&journal::Journal>,
    done: &HashSet<usize>,
    on_result: &mut dyn FnMut(&Action, &Option<String>),
) -> Outcome {
    use futures_util::stream::{self, StreamExt};

    let started = Utc::now();
    let clock = Instant::now();
    let mut results: Vec<ActionResult> = Vec::with_capacity(plan.actions.len());
    let width = target.concurrency().max(1);
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
                    };
                }
                let mut error = shared
                    .apply(&plan.actions[index])
                    .await
                    .err()
                    .map(|e| e.to_string());
                if error.is_none() {
                    error = journal.and_then(|j| record(j.done(index)));
                }
                ActionResult {
                    index,
                    error,
                    resumed: false,
                }
            })
            .buffer_unordered(width)
            .collect()
            .await;
        phase.sort_by_key(|r| r.index);
        for r in phase.iter().filter(|r| !r.resumed) {
            on_result(&plan.actions[r.index], &r.error);
        }
        results.extend(phase);
        i = end;
    }
    let finish_error = target.finish().await.err();
    Outcome {
        started,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
        results,
        written: finish_error.is_none(),
        finish_error,
    }
}
