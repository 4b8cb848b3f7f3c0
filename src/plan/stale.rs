//! Preconditions: what each action of a saved plan relies on in the target, recorded when the plan is
//! made and checked when it is applied.
//!
//! An action depends on the identity it matched and the fields it changes, not on the whole record:
//! a user who merely logs in does not stale an update, a create or a membership change. For a user
//! the plan records `email` and `externalId` (the identity), the fields an update changes (their old
//! values), `active` (reactivations, deactivations), `in_directory` (links, deactivations) and, for a
//! deactivation decided under `cleanup.grace_days`, `last_active`. For a group: its existence and id,
//! and the membership of every user an action adds or removes. An object the plan creates is recorded
//! as absent (`null`).
//!
//! A resumed apply (see the journal) checks the same preconditions, accepting for every fact either the
//! value recorded or the value an action this plan already started would have set.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rustc_hash::{FxHashMap, FxHashSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{key_of, Indexed, User};
use crate::plan::{Action, Plan};

/// The fields of one target user that the plan's actions rely on, as they were; `null` for a field
/// that had no value.
pub type UserState = BTreeMap<String, Option<String>>;

/// What the plan's actions rely on in the target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Preconditions {
    /// By reference (the target's id for the user, or its key when it has none): the fields the plan's
    /// actions rely on, or `null` for a user that must not exist yet (one the plan creates).
    pub users: BTreeMap<String, Option<UserState>>,
    /// By name: the group's id and the memberships the plan changes, or `null` for a group that must not
    /// exist yet (one the plan creates).
    pub groups: BTreeMap<String, Option<GroupState>>,
}

/// A group as the plan's membership changes found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupState {
    /// The target's id for the group (its name where the target has no ids).
    pub id: String,
    /// Users (by reference) who were members, and whom the plan removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// Users (by reference) who were not members, and whom the plan adds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_members: Vec<String>,
}

/// The value of one field of a target user, as preconditions spell it.
#[must_use]
pub fn field(u: &User, name: &str) -> Option<String> {
    let flag = |b: bool| Some(b.to_string());
    match name {
        "email" => Some(u.email.clone()),
        "userName" => Some(u.user_name().to_string()),
        "externalId" => u.external_id.clone(),
        "givenName" => u.given_name.clone(),
        "familyName" => u.family_name.clone(),
        "displayName" => u.display_name.clone(),
        "active" => flag(u.active),
        "in_directory" => flag(u.in_directory),
        "admin" => flag(u.admin),
        "last_active" => u
            .last_active
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        other => u.attributes.get(other).cloned(),
    }
}

/// Whether two values of a field are the same: emails and user names without regard to case.
#[must_use]
pub fn same(name: &str, a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if matches!(name, "email" | "userName") => a.eq_ignore_ascii_case(b),
        _ => a == b,
    }
}

/// Records the preconditions of `actions` over the target they were planned against. `grace` says
/// whether deactivations were decided under `cleanup.grace_days` (then they rely on `last_active`).
#[must_use]
pub fn record(actions: &[Action], target: &Indexed, grace: bool) -> Preconditions {
    // Only the users the plan's user actions name are looked up by id: at a million users, a map of
    // every id would cost more than the rest of the recording.
    let named: FxHashSet<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::LinkUser { key: r, .. }
            | Action::UpdateUser { id: r, .. }
            | Action::ReactivateUser { id: r, .. }
            | Action::DeactivateUser { id: r, .. }
            | Action::RevokeApiTokens { id: r, .. } => Some(r.as_str()),
            _ => None,
        })
        .collect();
    let mut ids = FxHashMap::with_capacity_and_hasher(named.len(), Default::default());
    for (i, u) in target.snapshot.users.iter().enumerate() {
        if let Some(id) = u.id.as_deref().filter(|id| named.contains(id)) {
            ids.insert(id, u32::try_from(i).expect("few users"));
        }
    }
    let mut p = Preconditions::default();
    let user = |p: &mut Preconditions, reference: &str, fields: &[&str]| {
        let Some(i) = resolve(target, &ids, reference) else {
            return;
        };
        let u = target.user(i);
        let state = p
            .users
            .entry(reference.to_string())
            .or_insert_with(|| Some(UserState::new()))
            .get_or_insert_with(UserState::new);
        for f in ["email", "externalId"].iter().chain(fields) {
            state.insert((*f).to_string(), field(u, f));
        }
    };
    for a in actions {
        match a {
            Action::CreateUser { key, .. } => {
                p.users.insert(key.clone(), None);
            }
            Action::LinkUser { key, .. } => user(&mut p, key, &["in_directory"]),
            Action::UpdateUser { id, changes, .. } => {
                let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
                user(&mut p, id, &fields);
            }
            Action::ReactivateUser { id, .. } => user(&mut p, id, &["active"]),
            Action::DeactivateUser { id, .. } => {
                let mut fields = vec!["active", "in_directory"];
                if grace {
                    fields.push("last_active");
                }
                user(&mut p, id, &fields);
            }
            // Relies on the user being (or being made) inactive: reactivated since, it is stale.
            Action::RevokeApiTokens { id, .. } => user(&mut p, id, &["active"]),
            Action::CreateGroup { group, .. } => {
                p.groups.insert(group.clone(), None);
            }
            Action::AddMembers {
                group,
                group_id,
                members,
                ..
            } => {
                if let Some(s) = group_entry(&mut p, group, group_id.as_ref()) {
                    s.not_members
                        .extend(members.iter().filter_map(|m| m.id.clone()));
                }
            }
            Action::RemoveMembers {
                group,
                group_id,
                members,
                ..
            } => {
                if let Some(s) = group_entry(&mut p, group, Some(group_id)) {
                    s.members
                        .extend(members.iter().filter_map(|m| m.id.clone()));
                }
            }
        }
    }
    for s in p.groups.values_mut().flatten() {
        s.members.sort();
        s.members.dedup();
        s.not_members.sort();
        s.not_members.dedup();
    }
    p
}

/// The recorded state of a group the plan changes memberships of; `None` for one it creates.
fn group_entry<'p>(
    p: &'p mut Preconditions,
    name: &str,
    id: Option<&String>,
) -> Option<&'p mut GroupState> {
    p.groups
        .entry(name.to_string())
        .or_insert_with(|| {
            id.map(|id| GroupState {
                id: id.clone(),
                ..GroupState::default()
            })
        })
        .as_mut()
}

/// Target user ids -> index.
pub(crate) fn ids(target: &Indexed) -> FxHashMap<&str, u32> {
    let mut ids =
        FxHashMap::with_capacity_and_hasher(target.snapshot.users.len(), Default::default());
    for (i, u) in target.snapshot.users.iter().enumerate() {
        if let Some(id) = u.id.as_deref() {
            ids.insert(id, u32::try_from(i).expect("few users"));
        }
    }
    ids
}

/// The target user a reference (SCIM id, or key) points at.
fn resolve(target: &Indexed, ids: &FxHashMap<&str, u32>, reference: &str) -> Option<u32> {
    ids.get(reference)
        .copied()
        .or_else(|| target.find(reference))
        .or_else(|| target.find(&key_of(reference)))
}

/// What the actions a run already started (or finished) may have changed: for each fact, the value
/// it would have set.
#[derive(Default)]
struct Effects {
    /// (user reference, field) -> value.
    fields: HashMap<(String, String), String>,
    /// Users and groups the plan creates.
    created_users: HashSet<String>,
    created_groups: HashSet<String>,
    /// (group, user reference) -> member afterwards.
    members: HashMap<(String, String), bool>,
}

impl Effects {
    fn of<'a>(actions: impl Iterator<Item = &'a Action>) -> Effects {
        let mut e = Effects::default();
        let set = |e: &mut Effects, r: &str, f: &str, v: &str| {
            e.fields
                .insert((r.to_string(), f.to_string()), v.to_string());
        };
        for a in actions {
            match a {
                Action::CreateUser { key, .. } => {
                    e.created_users.insert(key.clone());
                }
                Action::LinkUser { key, user, .. } => {
                    set(&mut e, key, "in_directory", "true");
                    set(&mut e, key, "active", "true");
                    set(&mut e, key, "email", &user.email);
                    for (f, v) in [
                        ("userName", &user.user_name),
                        ("externalId", &user.external_id),
                        ("givenName", &user.given_name),
                        ("familyName", &user.family_name),
                        ("displayName", &user.display_name),
                    ] {
                        if let Some(v) = v {
                            set(&mut e, key, f, v);
                        }
                    }
                    for (f, v) in &user.attributes {
                        set(&mut e, key, f, v);
                    }
                }
                Action::UpdateUser { id, changes, .. } => {
                    for c in changes {
                        set(&mut e, id, &c.field, &c.to);
                    }
                }
                Action::ReactivateUser { id, .. } => set(&mut e, id, "active", "true"),
                Action::DeactivateUser { id, .. } => set(&mut e, id, "active", "false"),
                Action::RevokeApiTokens { .. } => {}
                Action::CreateGroup { group, .. } => {
                    e.created_groups.insert(group.clone());
                }
                Action::AddMembers { group, members, .. } => {
                    for m in members {
                        let r = m.id.clone().unwrap_or_else(|| m.key.clone());
                        e.members.insert((group.clone(), r), true);
                    }
                }
                Action::RemoveMembers { group, members, .. } => {
                    for m in members {
                        let r = m.id.clone().unwrap_or_else(|| m.key.clone());
                        e.members.insert((group.clone(), r), false);
                    }
                }
            }
        }
        e
    }

    fn sets(&self, reference: &str, field: &str, now: Option<&str>) -> bool {
        self.fields
            .get(&(reference.to_string(), field.to_string()))
            .is_some_and(|v| same(field, Some(v), now))
    }
}

fn show(v: Option<&str>) -> String {
    v.map_or_else(|| "(none)".to_string(), |v| format!("{v:?}"))
}

/// Checks a plan's preconditions against the target as it is now. `applied` holds the indexes of the
/// actions an earlier run of the plan started: what they may have changed is expected. Returns one
/// line per object that changed, saying which field changed from what to what.
#[must_use]
pub fn check(plan: &Plan, target: &Indexed, applied: &HashSet<usize>) -> Vec<String> {
    let effects = Effects::of(
        plan.actions
            .iter()
            .enumerate()
            .filter(|(i, _)| applied.contains(i))
            .map(|(_, a)| a),
    );
    let ids = ids(target);
    let groups = target.groups_by_name();
    // A user renamed by an action this plan started is found under the new email.
    let find = |reference: &str| {
        resolve(target, &ids, reference).or_else(|| {
            effects
                .fields
                .get(&(reference.to_string(), "email".to_string()))
                .and_then(|e| target.find(&key_of(e)))
        })
    };
    let name_user = |reference: &str, i: Option<u32>| match i {
        Some(i) if target.key(i) != reference => format!("{} (id {reference})", target.key(i)),
        _ => reference.to_string(),
    };
    let mut out = Vec::new();
    for (reference, state) in &plan.preconditions.users {
        let found = find(reference);
        match (state, found) {
            (None, None) => {}
            (None, Some(_)) if effects.created_users.contains(reference) => {}
            (None, Some(i)) => out.push(format!(
                "user {} now exists (it did not when the plan was made)",
                name_user(reference, Some(i))
            )),
            (Some(_), None) => out.push(format!("user {reference} no longer exists")),
            (Some(fields), Some(i)) => {
                let u = target.user(i);
                let changed: Vec<String> = fields
                    .iter()
                    .filter_map(|(f, was)| {
                        let now = field(u, f);
                        if same(f, was.as_deref(), now.as_deref())
                            || effects.sets(reference, f, now.as_deref())
                        {
                            return None;
                        }
                        Some(format!(
                            "{f} changed from {} to {}",
                            show(was.as_deref()),
                            show(now.as_deref())
                        ))
                    })
                    .collect();
                if !changed.is_empty() {
                    out.push(format!(
                        "user {}: {}",
                        name_user(reference, Some(i)),
                        changed.join(", ")
                    ));
                }
            }
        }
    }
    for (name, state) in &plan.preconditions.groups {
        let by_id = |id: &str| {
            target
                .snapshot
                .groups
                .iter()
                .position(|g| g.id.as_deref() == Some(id))
        };
        let found = match state {
            Some(s) => by_id(&s.id).or_else(|| groups.get(s.id.as_str()).copied()),
            None => None,
        }
        .or_else(|| groups.get(name.as_str()).copied())
        .or_else(|| {
            let lower = name.to_lowercase();
            target
                .snapshot
                .groups
                .iter()
                .position(|g| g.name.to_lowercase() == lower)
        });
        match (state, found) {
            (None, None) => {}
            (None, Some(_)) if effects.created_groups.contains(name) => {}
            (None, Some(_)) => out.push(format!(
                "group {name} now exists (it did not when the plan was made)"
            )),
            (Some(_), None) => out.push(format!("group {name} no longer exists")),
            (Some(s), Some(gi)) => {
                let g = &target.snapshot.groups[gi];
                let now_id = g.id.clone().unwrap_or_else(|| g.name.clone());
                if now_id != s.id {
                    out.push(format!(
                        "group {name}: id changed from {:?} to {now_id:?}",
                        s.id
                    ));
                    continue;
                }
                let members: BTreeSet<u32> = target.members[gi].iter().copied().collect();
                let mut changed = Vec::new();
                for (list, was) in [(&s.members, true), (&s.not_members, false)] {
                    for r in list {
                        let Some(i) = find(r) else {
                            changed.push(format!("user {r} no longer exists"));
                            continue;
                        };
                        let now = members.contains(&i);
                        if now == was
                            || effects.members.get(&(name.clone(), r.clone())) == Some(&now)
                        {
                            continue;
                        }
                        changed.push(format!(
                            "{} is {} a member",
                            name_user(r, Some(i)),
                            if now { "now" } else { "no longer" }
                        ));
                    }
                }
                if !changed.is_empty() {
                    const MAX: usize = 5;
                    let more = changed.len().saturating_sub(MAX);
                    changed.truncate(MAX);
                    if more > 0 {
                        changed.push(format!("and {more} more membership change(s)"));
                    }
                    out.push(format!("group {name}: {}", changed.join(", ")));
                }
            }
        }
    }
    out
}

/// Whether every action carries the preconditions it was planned on: a plan whose actions were
/// edited or appended without them is refused. `grace` as in [`record`]. Returns one line per action
/// that does not.
#[must_use]
pub fn unrecorded(plan: &Plan, grace: bool) -> Vec<String> {
    let p = &plan.preconditions;
    let user = |r: &str| p.users.get(r);
    let has = |s: &UserState, f: &str, v: Option<&str>| {
        s.get(f).is_some_and(|have| same(f, have.as_deref(), v))
    };
    // Recorded memberships by group, as sets: a group may hold tens of thousands.
    let recorded: HashMap<&str, (HashSet<&str>, HashSet<&str>)> = p
        .groups
        .iter()
        .filter_map(|(name, s)| {
            s.as_ref().map(|s| {
                (
                    name.as_str(),
                    (
                        s.members.iter().map(String::as_str).collect(),
                        s.not_members.iter().map(String::as_str).collect(),
                    ),
                )
            })
        })
        .collect();
    let is_member = |group: &str, id: &str, member: bool| {
        recorded.get(group).is_some_and(|(yes, no)| {
            if member {
                yes.contains(id)
            } else {
                no.contains(id)
            }
        })
    };
    let mut out = Vec::new();
    for (n, a) in plan.actions.iter().enumerate() {
        let missing: Option<String> = match a {
            Action::CreateUser { key, .. } => {
                (user(key) != Some(&None)).then(|| format!("user {key} recorded as absent"))
            }
            Action::LinkUser { key, .. } => match user(key) {
                Some(Some(s)) if has(s, "in_directory", Some("false")) => None,
                _ => Some(format!("user {key} recorded outside the directory")),
            },
            Action::UpdateUser { id, changes, .. } => match user(id) {
                Some(Some(s)) if s.contains_key("email") => changes
                    .iter()
                    .find(|c| !has(s, &c.field, c.from.as_deref()))
                    .map(|c| format!("user {id} recorded with its {} as planned", c.field)),
                _ => Some(format!("user {id} recorded")),
            },
            Action::ReactivateUser { id, .. } => match user(id) {
                Some(Some(s)) if s.contains_key("email") && has(s, "active", Some("false")) => None,
                _ => Some(format!("user {id} recorded as inactive")),
            },
            Action::DeactivateUser { id, .. } => match user(id) {
                Some(Some(s))
                    if s.contains_key("email")
                        && has(s, "active", Some("true"))
                        && has(s, "in_directory", Some("true"))
                        && (!grace || s.contains_key("last_active")) =>
                {
                    None
                }
                _ => Some(format!(
                    "user {id} recorded as active{}",
                    if grace {
                        ", with its last-active date"
                    } else {
                        ""
                    }
                )),
            },
            Action::RevokeApiTokens { id, .. } => match user(id) {
                Some(Some(s)) if s.contains_key("email") && s.contains_key("active") => None,
                _ => Some(format!("user {id} recorded")),
            },
            Action::CreateGroup { group, .. } => (p.groups.get(group) != Some(&None))
                .then(|| format!("group {group} recorded as absent")),
            Action::AddMembers {
                group,
                group_id,
                members,
                ..
            } => match (p.groups.get(group), group_id) {
                (Some(None), None) => None,
                (Some(Some(s)), Some(id)) if s.id == *id => members
                    .iter()
                    .filter_map(|m| m.id.as_deref())
                    .find(|m| !is_member(group, m, false))
                    .map(|m| format!("user {m} recorded as not a member of {group}")),
                _ => Some(format!("group {group} recorded")),
            },
            Action::RemoveMembers {
                group,
                group_id,
                members,
                ..
            } => match p.groups.get(group) {
                Some(Some(s)) if s.id == *group_id => members
                    .iter()
                    .find(|m| !m.id.as_deref().is_some_and(|id| is_member(group, id, true)))
                    .map(|m| format!("user {} recorded as a member of {group}", m.key)),
                _ => Some(format!("group {group} recorded")),
            },
        };
        if let Some(m) = missing {
            out.push(format!(
                "action #{} ({} {}) lacks its precondition: {m}",
                n + 1,
                a.kind().as_str(),
                a.subject()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, Snapshot};
    use crate::plan::{FieldChange, Member};

    fn target(edit: impl FnOnce(&mut Snapshot)) -> Indexed {
        let mut alice = User::new("alice@example.com");
        alice.id = Some("a1".into());
        alice.attributes.insert("title".into(), "Engineer".into());
        alice.last_active = "2026-01-01T00:00:00Z".parse().ok();
        let mut bob = User::new("bob@example.com");
        bob.id = Some("b1".into());
        bob.last_active = "2025-01-01T00:00:00Z".parse().ok();
        let mut snap = Snapshot {
            users: vec![alice, bob],
            groups: vec![Group {
                name: "eng".into(),
                id: Some("g1".into()),
                members: vec!["alice@example.com".into()],
            }],
            verified_domains: None,
            skipped: Vec::new(),
        };
        edit(&mut snap);
        Indexed::new(snap).unwrap()
    }

    fn plan(t: &Indexed) -> Plan {
        let member = |key: &str, id: &str| Member {
            key: key.into(),
            id: Some(id.into()),
            reason: "".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        };
        let actions = vec![
            Action::CreateUser {
                key: "carol@example.com".into(),
                user: crate::plan::UserFields {
                    email: "carol@example.com".into(),
                    ..Default::default()
                },
                reason: "".into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            },
            Action::UpdateUser {
                key: "alice@example.com".into(),
                id: "a1".into(),
                changes: vec![FieldChange {
                    field: "title".into(),
                    from: Some("Engineer".into()),
                    to: "Staff".into(),
                    reason: "".into(),
                    reason_code: crate::plan::ReasonCode::Unknown,
                }],
                reason: "".into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            },
            Action::RemoveMembers {
                group: "eng".into(),
                group_id: "g1".into(),
                batch: [1, 1],
                members: vec![member("alice@example.com", "a1")],
                reason: "".into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            },
            Action::DeactivateUser {
                key: "bob@example.com".into(),
                id: "b1".into(),
                account_id: None,
                cause: crate::plan::DeactivateCause::GoneFromSources,
                reason: "".into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            },
        ];
        let preconditions = record(&actions, t, true);
        Plan {
            format_version: crate::plan::FORMAT_VERSION.into(),
            idsync_version: String::new(),
            created_at: None,
            config_hash: String::new(),
            target: String::new(),
            sources: Vec::new(),
            scope: None,
            summary: crate::plan::Summary::of(&actions),
            guard: crate::plan::Guard::check(
                crate::rules::DeactivationLimit::Count(5),
                2,
                1,
                false,
            ),
            guards: Vec::new(),
            actions,
            warnings: Vec::new(),
            blocking: Vec::new(),
            skipped: Vec::new(),
            preconditions,
            cost: None,
            digest: String::new(),
            signature: None,
        }
    }

    #[test]
    fn only_what_an_action_relies_on_stales_it() {
        let p = plan(&target(|_| {}));
        assert!(unrecorded(&p, true).is_empty());
        let none = HashSet::new();
        assert!(check(&p, &target(|_| {}), &none).is_empty());
        // Alice logs in and gets a department: her update and her membership change do not care.
        let t = target(|s| {
            s.users[0].last_active = "2026-11-20T00:00:00Z".parse().ok();
            s.users[0]
                .attributes
                .insert("department".into(), "R&D".into());
        });
        assert!(check(&p, &t, &none).is_empty());
        // Bob, deactivated for inactivity, logs in.
        let t = target(|s| s.users[1].last_active = "2026-11-20T00:00:00Z".parse().ok());
        assert_eq!(
            check(&p, &t, &none),
            ["user bob@example.com (id b1): last_active changed from \"2025-01-01T00:00:00Z\" to \"2026-11-20T00:00:00Z\""]
        );
    }

    #[test]
    fn what_a_started_action_changed_is_expected_and_nothing_else() {
        let p = plan(&target(|_| {}));
        // An earlier run created carol, updated alice and removed her from eng.
        let after = target(|s| {
            s.users[0].attributes.insert("title".into(), "Staff".into());
            s.users.push(User::new("carol@example.com"));
            s.groups[0].members.clear();
        });
        let stale = check(&p, &after, &HashSet::new());
        assert_eq!(stale.len(), 3, "{stale:?}");
        assert!(check(&p, &after, &HashSet::from([0, 1, 2])).is_empty());
        // Someone else set alice's title to something the plan never would.
        let other = target(|s| {
            s.users[0].attributes.insert("title".into(), "CTO".into());
        });
        assert_eq!(
            check(&p, &other, &HashSet::from([1])),
            ["user alice@example.com (id a1): title changed from \"Engineer\" to \"CTO\""]
        );
    }

    #[test]
    fn an_action_without_its_preconditions_is_named() {
        let mut p = plan(&target(|_| {}));
        p.preconditions.users.remove("b1");
        p.preconditions
            .groups
            .get_mut("eng")
            .unwrap()
            .as_mut()
            .unwrap()
            .members
            .clear();
        assert_eq!(
            unrecorded(&p, true),
            [
                "action #3 (remove_members eng) lacks its precondition: user alice@example.com recorded as a member of eng",
                "action #4 (deactivate_user bob@example.com) lacks its precondition: user b1 recorded as active, with its last-active date",
            ]
        );
    }
}
