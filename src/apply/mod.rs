//! The executor: runs a plan's actions in order against a target, records a result for each, and
//! makes the changes durable. A plan is never half-applied silently: every failure is reported, and
//! the run fails when any action did.

pub mod confirm;

use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::plan::{Action, Plan};
use crate::target::{Target, TargetError};

/// What happened to one action.
#[derive(Clone, Debug)]
pub struct ActionResult {
    pub index: usize,
    pub error: Option<String>,
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

/// Applies every action of `plan`, in order, then finishes the target.
pub async fn execute(
    plan: &Plan,
    target: &mut dyn Target,
    on_result: &mut dyn FnMut(&Action, &Option<String>),
) -> Outcome {
    let started = Utc::now();
    let clock = Instant::now();
    let mut results = Vec::with_capacity(plan.actions.len());
    for (index, action) in plan.actions.iter().enumerate() {
        let error = target.apply(action).await.err().map(|e| e.to_string());
        on_result(action, &error);
        results.push(ActionResult { index, error });
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
