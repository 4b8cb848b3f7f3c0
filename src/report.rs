//! The run report written by `apply --report FILE`, shaped after an existing sync app's status:
//! status, counts, messages, per-object results, start time and duration.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::apply::Outcome;
use crate::plan::{Action, Plan};

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// `SUCCESS`, `PARTIAL` (some actions failed), `FAILED` (nothing was saved) or `INTERRUPTED`
    /// (stopped by a signal; the actions not started are `not_started`).
    pub status: &'static str,
    pub target: String,
    /// For a partial plan (`plan --only-user`/`--only-group`, `sync-user`): what it was cut to, as
    /// the plan says. A report without it is of a whole plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<crate::plan::scope::Scope>,
    pub started: DateTime<Utc>,
    pub duration_ms: u64,
    pub counts: Counts,
    pub messages: Vec<String>,
    pub results: Vec<ResultEntry>,
}

/// Counts by outcome. Membership changes count in `members_added` / `members_removed`.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Counts {
    pub added: usize,
    pub linked: usize,
    pub updated: usize,
    pub reactivated: usize,
    pub deactivated: usize,
    pub groups_created: usize,
    pub members_added: usize,
    pub members_removed: usize,
    /// Accounts whose API tokens were revoked.
    pub tokens_revoked: usize,
    /// Target users the plan did not touch.
    pub not_modified: usize,
    /// Users a rule (protect, skip_admins, grace, …) kept from being changed.
    pub filtered: usize,
    pub failed: usize,
    /// Actions not started because the run was interrupted.
    pub not_started: usize,
    /// Changes (as counted above) that an earlier, interrupted run of the same plan had made.
    pub resumed: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct ResultEntry {
    pub action: &'static str,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<[usize; 2]>,
    /// `done`, `failed` or `not_started`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// Builds the report; `target_users` is how many users the target had before the run.
    #[must_use]
    pub(crate) fn new(plan: &Plan, outcome: &Outcome, target_users: usize) -> Report {
        let mut counts = Counts::default();
        let mut results = Vec::with_capacity(outcome.results.len());
        let mut messages = Vec::new();
        let mut touched = std::collections::HashSet::new();
        for r in &outcome.results {
            let a = &plan.actions[r.index];
            let ok = outcome.written && r.error.is_none() && !r.not_started;
            if r.resumed {
                counts.resumed += a.weight();
            }
            if r.not_started {
                counts.not_started += 1;
            } else if ok {
                match a {
                    Action::CreateUser { .. } => counts.added += 1,
                    Action::LinkUser { .. } => counts.linked += 1,
                    Action::UpdateUser { .. } => counts.updated += 1,
                    Action::ReactivateUser { .. } => counts.reactivated += 1,
                    Action::DeactivateUser { .. } => counts.deactivated += 1,
                    Action::CreateGroup { .. } => counts.groups_created += 1,
                    Action::AddMembers { members, .. } => counts.members_added += members.len(),
                    Action::RemoveMembers { members, .. } => {
                        counts.members_removed += members.len()
                    }
                    Action::RevokeApiTokens { .. } => counts.tokens_revoked += 1,
                }
            } else {
                counts.failed += 1;
            }
            if matches!(
                a,
                Action::LinkUser { .. }
                    | Action::UpdateUser { .. }
                    | Action::ReactivateUser { .. }
                    | Action::DeactivateUser { .. }
                    | Action::RevokeApiTokens { .. }
            ) {
                touched.insert(a.subject().to_string());
            }
            if let Some(e) = &r.error {
                messages.push(format!("{} {}: {e}", a.kind().as_str(), a.subject()));
            }
            let batch = match a {
                Action::AddMembers { batch, .. } | Action::RemoveMembers { batch, .. } => {
                    Some(*batch)
                }
                _ => None,
            };
            results.push(ResultEntry {
                action: a.kind().as_str(),
                subject: a.subject().to_string(),
                batch,
                status: if r.not_started {
                    "not_started"
                } else if ok {
                    "done"
                } else {
                    "failed"
                },
                error: r.error.clone(),
            });
        }
        if let Some(e) = &outcome.finish_error {
            messages.push(format!("the changes could not be saved: {e}"));
        }
        counts.not_modified = target_users.saturating_sub(touched.len());
        counts.filtered = plan.skipped.len();
        messages.extend(
            plan.skipped
                .iter()
                .map(|s| format!("Skipping {}: {}", s.key, s.reason)),
        );
        let status = if outcome.interrupted && counts.not_started > 0 {
            "INTERRUPTED"
        } else if !outcome.written {
            "FAILED"
        } else if counts.failed > 0 {
            "PARTIAL"
        } else {
            "SUCCESS"
        };
        Report {
            status,
            target: plan.target.clone(),
            scope: plan.scope.clone(),
            started: outcome.started,
            duration_ms: outcome.duration_ms,
            counts,
            messages,
            results,
        }
    }
}
