//! Loading a saved plan for `apply`: its format, seal, config hash and target, its journal, and
//! every check that it may still be applied as it was reviewed (see `commands/apply.rs` for the list).

use std::collections::HashSet;
use std::path::Path;

use crate::apply::journal::{self, Progress};
use crate::config::Loaded;
use crate::error::Error;
use crate::model::Indexed;
use crate::output::Printer;
use crate::plan::{stale, verify, Action, Guard, Plan};
use crate::targets;

/// Loads a saved plan and runs every check on it. `None` when it was already applied completely.
pub(crate) async fn check_saved(
    printer: &Printer,
    loaded: &Loaded,
    path: &Path,
    now: chrono::DateTime<chrono::Utc>,
    overrides: crate::plan::Overrides,
) -> Result<Option<(Plan, Progress, super::Planned)>, Error> {
    let saved = super::read_plan(path)?;
    let key = crate::engine::saved_file::key_from_env().map_err(Error::PlanKey)?;
    saved
        .verify_seal(key.as_deref())
        .map_err(|e| Error::PlanFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if saved.newer_minor() {
        printer.info(&format!(
            "{} is of plan format {}, made by idsync {}; this idsync reads format {}: what the newer format added is ignored.",
            path.display(),
            saved.plan.format_version,
            saved.plan.idsync_version,
            crate::plan::FORMAT_VERSION
        ));
    }
    let plan = saved.plan;
    if key.is_none() && plan.signature.is_some() {
        printer.info(&format!(
            "{} is signed, but {} is not set here: the signature was not checked.",
            path.display(),
            crate::plan::KEY_VAR
        ));
    }
    if plan.config_hash != loaded.hash {
        return Err(Error::StalePlan {
            reasons: vec![format!(
                "the config file {} changed since the plan was made",
                loaded.path.display()
            )],
        });
    }
    let probe = targets::build(&loaded.config, &loaded.dir).map_err(Error::TargetSetup)?;
    let name = probe.name();
    if name != plan.target {
        return Err(Error::StalePlan {
            reasons: vec![format!(
                "the plan is for {}, the config names {name}",
                plan.target
            )],
        });
    }
    let progress = Progress::read(path, &plan.digest, plan.actions.len(), &|sha| {
        probe.holds(sha)
    })?;
    if progress.complete {
        printer.info(&format!(
            "{} was already applied completely (see {}); make a new plan for further changes.",
            path.display(),
            journal::path_for(path).display()
        ));
        return Ok(None);
    }
    let grace = loaded.config.cleanup.grace_days > 0;
    let mut edited = stale::unrecorded(&plan, grace);
    edited.extend(verify::recorded_counts(&plan));
    if !edited.is_empty() {
        return Err(Error::PlanEdited {
            path: path.to_path_buf(),
            reasons: edited,
        });
    }
    // The world as it is now, and the plan the same config makes of it, cut to the same scope (read
    // whole: a plan `sync-user` made is checked against a full read).
    let scope = plan.scope.clone().map(|mut s| {
        s.read = crate::plan::scope::ScopeRead::Full;
        s.left_out = None;
        s
    });
    let planned = super::make_plan_scoped(loaded, printer, now, overrides, scope.as_ref()).await?;
    let applied = &progress.started;
    let mut reasons = stale::check(&plan, &planned.snapshot, applied);
    reasons.extend(verify::hands_off(
        &plan,
        applied,
        &planned.snapshot,
        &loaded.rules,
        loaded.config.cleanup.skip_admins,
    ));
    if reasons.is_empty() {
        reasons.extend(verify::against_fresh(&plan, &planned.plan, applied));
    }
    if !reasons.is_empty() {
        return Err(Error::StalePlan { reasons });
    }
    if !plan.blocking.is_empty() {
        return Err(Error::Blocked {
            problems: plan.blocking.clone(),
        });
    }
    let guard = rederive_guard(loaded, &plan, &planned.snapshot, &progress.done);
    let guards = rederive_limits(loaded, &plan, &planned.snapshot, &progress.done);
    if guard.blocks() || guards.iter().any(crate::plan::Limit::blocks) {
        let mut p = plan.clone();
        p.guard = guard;
        p.guards = guards;
        if let Some(e) = super::refusal(&p) {
            return Err(e);
        }
    }
    if !progress.started.is_empty() {
        printer.info(&format!(
            "Resuming: {} of {} action(s) were done by an earlier run of this plan (journal {}); {} had started and are sent again.",
            progress.done.len(),
            plan.actions.len(),
            journal::path_for(path).display(),
            progress.started.len() - progress.done.len(),
        ));
    }
    Ok(Some((plan, progress, planned)))
}

/// The guard over the plan's actions and the target as it is now (with the deactivations an earlier
/// run of the plan made counted back in). A guard overridden when the plan was made stays overridden;
/// `--allow-mass-deactivation` at apply does not override it (the decision belongs to the reviewed plan).
fn rederive_guard(loaded: &Loaded, plan: &Plan, target: &Indexed, done: &HashSet<usize>) -> Guard {
    let is_deactivation = |a: &Action| matches!(a, Action::DeactivateUser { .. });
    let active = target
        .snapshot
        .users
        .iter()
        .filter(|u| u.in_directory && u.active)
        .count();
    let done_deactivations = done
        .iter()
        .filter(|&&i| plan.actions.get(i).is_some_and(is_deactivation))
        .count();
    let deactivations = plan.actions.iter().filter(|a| is_deactivation(a)).count();
    Guard::check(
        loaded.rules.deactivation_limit,
        (active + done_deactivations) as u64,
        deactivations as u64,
        plan.guard.overridden,
    )
}

/// The further guards (`max_updates`, `max_membership_removals`, per group) over the plan's actions
/// and the target as it is now (removals an earlier run of the plan made counted back in). As with
/// the deactivation guard, only an override recorded in the reviewed plan lets a tripped one pass.
fn rederive_limits(
    loaded: &Loaded,
    plan: &Plan,
    target: &Indexed,
    done: &HashSet<usize>,
) -> Vec<crate::plan::Limit> {
    use crate::plan::LimitKind;
    let overridden = |kind: LimitKind| {
        plan.guards
            .iter()
            .any(|l| l.overridden && l.kind.flag() == kind.flag())
    };
    let done_deactivations = done
        .iter()
        .filter(|&&i| matches!(plan.actions.get(i), Some(Action::DeactivateUser { .. })))
        .count();
    let active = target
        .snapshot
        .users
        .iter()
        .filter(|u| u.in_directory && u.active)
        .count()
        + done_deactivations;
    let updates = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::UpdateUser { .. }))
        .count();
    // Per managed group: (members now, with those already removed counted back in; to remove).
    let by_name = target.groups_by_name();
    let mut groups: std::collections::BTreeMap<&str, (u64, u64)> =
        std::collections::BTreeMap::new();
    for (i, a) in plan.actions.iter().enumerate() {
        if let Action::RemoveMembers { group, members, .. } = a {
            let e = groups.entry(group.as_str()).or_insert_with(|| {
                let now = by_name
                    .get(group.as_str())
                    .map_or(0, |&g| target.members[g].len() as u64);
                (now, 0)
            });
            e.1 += members.len() as u64;
            if done.contains(&i) {
                e.0 += members.len() as u64;
            }
        }
    }
    let removals: Vec<(String, u64, u64)> = groups
        .into_iter()
        .map(|(name, (current, removed))| (name.to_string(), current, removed))
        .collect();
    crate::plan::guard::limits(
        &loaded.rules,
        active as u64,
        updates as u64,
        &removals,
        crate::plan::Overrides {
            deactivation: false,
            update: overridden(LimitKind::Updates),
            membership_removal: overridden(LimitKind::MembershipRemovals),
        },
    )
}
