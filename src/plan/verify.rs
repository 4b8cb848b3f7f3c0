//! What `apply PLAN_FILE` checks besides the preconditions, so that a saved plan cannot be bent: the
//! summary and the guard are re-derived from the actions; every action still to run is one a plan made
//! now (same config, same sources, same target) would also make; and `protect` and `skip_admins` hold
//! against the target as it is now.

use std::collections::{HashMap, HashSet};

use crate::model::{Indexed, User};
use crate::plan::{Action, Plan, Summary, UserFields};
use crate::rules::Rules;

/// Where the recorded summary or guard disagree with the actions: an edited plan.
#[must_use]
pub fn recorded_counts(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let derived = Summary::of(&plan.actions);
    if derived != plan.summary {
        out.push(format!(
            "its summary says {} change(s), its actions make {}",
            plan.summary.total_changes, derived.total_changes
        ));
    }
    let deactivations = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::DeactivateUser { .. }))
        .count() as u64;
    if deactivations != plan.guard.deactivations {
        out.push(format!(
            "its guard counts {} deactivation(s), its actions make {deactivations}",
            plan.guard.deactivations
        ));
    }
    out
}

/// The actions of a fresh plan, by what they do (reasons left out).
#[derive(Default)]
struct Fresh<'a> {
    creates: HashMap<&'a str, &'a UserFields>,
    links: HashMap<&'a str, &'a UserFields>,
    /// user id -> field -> new value.
    updates: HashMap<&'a str, HashMap<&'a str, &'a str>>,
    reactivations: HashSet<&'a str>,
    deactivations: HashSet<&'a str>,
    revocations: HashSet<&'a str>,
    groups: HashSet<&'a str>,
    /// (group, member key)
    adds: HashSet<(&'a str, &'a str)>,
    /// (group, member id)
    removes: HashSet<(&'a str, &'a str)>,
}

impl<'a> Fresh<'a> {
    fn of(plan: &'a Plan) -> Fresh<'a> {
        let mut f = Fresh::default();
        for a in &plan.actions {
            match a {
                Action::CreateUser { key, user, .. } => {
                    f.creates.insert(key, user);
                }
                Action::LinkUser { key, user, .. } => {
                    f.links.insert(key, user);
                }
                Action::UpdateUser { id, changes, .. } => {
                    f.updates.insert(
                        id,
                        changes
                            .iter()
                            .map(|c| (c.field.as_str(), c.to.as_str()))
                            .collect(),
                    );
                }
                Action::ReactivateUser { id, .. } => {
                    f.reactivations.insert(id);
                }
                Action::DeactivateUser { id, .. } => {
                    f.deactivations.insert(id);
                }
                Action::RevokeApiTokens { id, .. } => {
                    f.revocations.insert(id);
                }
                Action::CreateGroup { group, .. } => {
                    f.groups.insert(group);
                }
                Action::AddMembers { group, members, .. } => {
                    f.adds
                        .extend(members.iter().map(|m| (group.as_str(), m.key.as_str())));
                }
                Action::RemoveMembers { group, members, .. } => {
                    f.removes.extend(
                        members
                            .iter()
                            .map(|m| (group.as_str(), m.id.as_deref().unwrap_or(&m.key))),
                    );
                }
            }
        }
        f
    }
}

/// Lists, for the actions of `saved` not in `applied`, those a plan made now (`fresh`) would not make
/// as they are: an action edited or added by hand, or one the sources no longer call for.
#[must_use]
pub fn against_fresh(saved: &Plan, fresh: &Plan, applied: &HashSet<usize>) -> Vec<String> {
    let f = Fresh::of(fresh);
    let mut out = Vec::new();
    let now = "a plan made now";
    for (i, a) in saved.actions.iter().enumerate() {
        if applied.contains(&i) {
            continue;
        }
        let what = format!("{} {}", a.kind().as_str(), a.subject());
        let problem: Option<String> = match a {
            Action::CreateUser { key, user, .. } => match f.creates.get(key.as_str()) {
                None => Some(format!("{now} would not create this user")),
                Some(u) if *u != user => Some(format!("{now} would create it with other values")),
                Some(_) => None,
            },
            Action::LinkUser { key, user, .. } => match f.links.get(key.as_str()) {
                None => Some(format!("{now} would not link this user")),
                Some(u) if *u != user => Some(format!("{now} would link it with other values")),
                Some(_) => None,
            },
            Action::UpdateUser { id, changes, .. } => {
                let fresh = f.updates.get(id.as_str());
                changes
                    .iter()
                    .find(|c| fresh.and_then(|m| m.get(c.field.as_str())) != Some(&c.to.as_str()))
                    .map(|c| format!("{now} would not set {} to {:?}", c.field, c.to))
            }
            Action::ReactivateUser { id, .. } => (!f.reactivations.contains(id.as_str()))
                .then(|| format!("{now} would not reactivate this user")),
            Action::DeactivateUser { id, .. } => (!f.deactivations.contains(id.as_str()))
                .then(|| format!("{now} would not deactivate this user")),
            Action::RevokeApiTokens { id, .. } => (!f.revocations.contains(id.as_str()))
                .then(|| format!("{now} would not revoke this user's API tokens")),
            Action::CreateGroup { group, .. } => (!f.groups.contains(group.as_str()))
                .then(|| format!("{now} would not create this group")),
            Action::AddMembers { group, members, .. } => members
                .iter()
                .find(|m| !f.adds.contains(&(group.as_str(), m.key.as_str())))
                .map(|m| format!("{now} would not add {}", m.key)),
            Action::RemoveMembers { group, members, .. } => members
                .iter()
                .find(|m| {
                    !f.removes
                        .contains(&(group.as_str(), m.id.as_deref().unwrap_or(&m.key)))
                })
                .map(|m| format!("{now} would not remove {}", m.key)),
        };
        if let Some(p) = problem {
            out.push(format!("{what}: {p}"));
        }
    }
    out
}

/// Lists the actions still to run that touch a user `protect` or (with `skip_admins`) admin status
/// keeps hands off, as the target is now.
#[must_use]
pub fn hands_off(
    saved: &Plan,
    applied: &HashSet<usize>,
    target: &Indexed,
    rules: &Rules,
    skip_admins: bool,
) -> Vec<String> {
    let ids = super::stale::ids(target);
    let find = |r: &str| ids.get(r).copied().or_else(|| target.find(r));
    let why = |key: &str, u: Option<&User>| -> Option<String> {
        let emails = std::iter::once(key).chain(u.map(|u| u.email.as_str()));
        for e in emails {
            if let Some(p) = rules.protect.matching(e) {
                return Some(format!("{e} is protected by cleanup.protect {p:?}"));
            }
        }
        u.filter(|u| u.admin && skip_admins).map(|u| {
            format!(
                "{} is an organization or site admin (cleanup.skip_admins)",
                u.email
            )
        })
    };
    let mut out = Vec::new();
    for (i, a) in saved.actions.iter().enumerate() {
        if applied.contains(&i) {
            continue;
        }
        let users: Vec<(&str, Option<u32>)> = match a {
            Action::CreateUser { key, .. } | Action::LinkUser { key, .. } => {
                vec![(key.as_str(), find(key))]
            }
            Action::UpdateUser { key, id, .. }
            | Action::ReactivateUser { key, id, .. }
            | Action::DeactivateUser { key, id, .. }
            | Action::RevokeApiTokens { key, id, .. } => vec![(key.as_str(), find(id))],
            Action::AddMembers { members, .. } | Action::RemoveMembers { members, .. } => members
                .iter()
                .map(|m| (m.key.as_str(), find(m.id.as_deref().unwrap_or(&m.key))))
                .collect(),
            Action::CreateGroup { .. } => Vec::new(),
        };
        for (key, idx) in users {
            if let Some(w) = why(key, idx.map(|i| target.user(i))) {
                out.push(format!("{} {}: {w}", a.kind().as_str(), a.subject()));
                break;
            }
        }
    }
    out
}
