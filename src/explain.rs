//! `idsync explain`: the step trace for one person or one group, built from what a plan was
//! computed from (the sources as read, the desired state, the target) and the plan itself. No I/O:
//! the command reads; this says why. Every verdict comes from the code the plan uses
//! (`desired::build`'s scope, `diff::wanted_reason`/`scope_reason`/`matched_by`, the plan's
//! actions and skipped users), never from rules re-implemented here.

use serde::Serialize;

use crate::desired::{Desired, Scope, SourceData};
use crate::model::{key_of, Indexed};
use crate::plan::{Action, Plan};
use crate::rules::{Cleanup, Rules, WithoutLastActive};

/// What a source holds about the person.
#[derive(Debug, Serialize)]
pub(crate) struct SourceFacts {
    pub source: String,
    pub id: Option<String>,
    pub active: bool,
    /// Source-qualified group names (`okta:Engineering`).
    pub groups: Vec<String>,
}

/// One `users.attributes` template and its value for the person (`None`: no value, the field is
/// left alone).
#[derive(Debug, Serialize)]
pub(crate) struct AttributeFacts {
    pub field: String,
    pub template: String,
    pub value: Option<String>,
}

/// The person's Atlassian account, as matched.
#[derive(Debug, Serialize)]
pub(crate) struct TargetFacts {
    pub email: String,
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub active: bool,
    pub in_directory: bool,
    pub admin: bool,
    /// `externalId` or `email`.
    pub matched_by: String,
}

/// One managed group and the person.
#[derive(Debug, Serialize)]
pub(crate) struct GroupFacts {
    pub group: String,
    /// Why idsync manages the group (the mapping or `default_groups`).
    pub managed_by: String,
    /// Whether the rules want the person in it, and why.
    pub wanted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// Whether the target has them in it now.
    pub member_now: bool,
}

/// The trace for one person.
#[derive(Debug, Serialize)]
pub(crate) struct PersonTrace {
    pub email: String,
    pub sources: Vec<SourceFacts>,
    /// The source whose fields count (the first in `sources` order that has them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provided_by: Option<String>,
    /// `wanted`, `disabled`, `excluded`, `not_required`; absent when in no source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The rule behind the scope (`users.require_groups`, `users.exclude "…"`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_reason: Option<String>,
    /// Each `users.attributes` template and what it renders to for them.
    pub attributes: Vec<AttributeFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atlassian: Option<TargetFacts>,
    pub groups: Vec<GroupFacts>,
    /// The cleanup rules that bear on them.
    pub cleanup: Vec<String>,
    /// The plan's actions that concern them, one line each with the reason.
    pub actions: Vec<String>,
    /// Why the plan leaves them alone, when it does.
    pub outcome: String,
}

/// The trace for one Atlassian group.
#[derive(Debug, Serialize)]
pub(crate) struct GroupTrace {
    pub group: String,
    /// `managed` (with the rule) or `not managed`.
    pub ownership: String,
    /// The IdP groups that feed it, each with the rule that maps it.
    pub fed_by: Vec<String>,
    pub exists: bool,
    pub members_now: usize,
    pub members_wanted: usize,
    /// Each add or removal the plan makes, with its reason.
    pub changes: Vec<String>,
    pub outcome: String,
}

fn scope_name(s: &Scope) -> &'static str {
    match s {
        Scope::Wanted => "wanted",
        Scope::Disabled { .. } => "disabled",
        Scope::Excluded { .. } => "excluded",
        Scope::NotRequired => "not_required",
    }
}

/// One line for an action: kind, subject, and why (with the member reason for a membership).
fn action_line(a: &Action, key: Option<&str>) -> String {
    let head = format!("{} {}", a.kind().as_str(), a.subject());
    match a {
        Action::AddMembers { members, .. } | Action::RemoveMembers { members, .. } => {
            let who: Vec<String> = members
                .iter()
                .filter(|m| key.is_none_or(|k| m.key == k))
                .map(|m| format!("{} ({})", m.key, m.reason))
                .collect();
            format!("{head}: {}", who.join(", "))
        }
        Action::UpdateUser { changes, .. } => {
            let what: Vec<String> = changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {:?} -> {:?} ({})",
                        c.field,
                        c.from.as_deref().unwrap_or(""),
                        c.to,
                        c.reason
                    )
                })
                .collect();
            format!("{head} because {}: {}", a.reason(), what.join("; "))
        }
        _ => format!("{head} because {}", a.reason()),
    }
}

fn concerns(a: &Action, key: &str) -> bool {
    key_of(a.subject()) == key
        || match a {
            Action::AddMembers { members, .. } | Action::RemoveMembers { members, .. } => {
                members.iter().any(|m| key_of(&m.key) == key)
            }
            _ => false,
        }
}

/// The trace for the person with this email.
#[must_use]
#[allow(clippy::too_many_lines)]
pub(crate) fn person(
    email: &str,
    sources: &[SourceData],
    desired: &Desired,
    target: &Indexed,
    plan: &Plan,
    rules: &Rules,
    cleanup: &Cleanup,
) -> PersonTrace {
    let key = key_of(email);
    // An account under this email that carries an IdP id: the person may have been renamed in the
    // IdP since, and is then found there by that id.
    let ext = target
        .find(&key)
        .and_then(|i| target.snapshot.users[i as usize].external_id.clone());
    let mut facts = Vec::new();
    for s in sources {
        let found = s.data.find(&key).or_else(|| {
            let x = ext.as_deref()?;
            s.data
                .snapshot
                .users
                .iter()
                .position(|u| u.id.as_deref() == Some(x))
                .and_then(|i| u32::try_from(i).ok())
        });
        let Some(i) = found else { continue };
        let u = &s.data.snapshot.users[i as usize];
        let groups = s
            .data
            .members
            .iter()
            .enumerate()
            .filter(|(_, ms)| ms.binary_search(&i).is_ok())
            .map(|(g, _)| format!("{}:{}", s.name, s.data.snapshot.groups[g].name))
            .collect();
        facts.push(SourceFacts {
            source: s.name.clone(),
            id: u.id.clone(),
            active: u.active,
            groups,
        });
    }
    let di = desired.users.iter().position(|d| d.key == key).or_else(|| {
        let x = ext.as_deref()?;
        desired
            .users
            .iter()
            .position(|d| d.source_id.as_deref() == Some(x))
    });
    let du = di.map(|i| &desired.users[i]);
    let (scope, scope_reason) = match du {
        None => (None, None),
        Some(d) => {
            let text = match &d.scope {
                Scope::Wanted => crate::diff::wanted_reason(d, rules).1,
                other => crate::diff::scope_reason(other, rules).1,
            };
            (Some(scope_name(&d.scope).to_string()), Some(text))
        }
    };
    let attributes = match du {
        None => Vec::new(),
        Some(d) => rules
            .templates
            .iter()
            .map(|(field, t)| {
                let value = match field.as_str() {
                    "displayName" => d.fields.display_name.clone(),
                    "givenName" => d.fields.given_name.clone(),
                    "familyName" => d.fields.family_name.clone(),
                    "userName" => d.fields.user_name.clone(),
                    other => d.fields.attributes.get(other).cloned(),
                };
                AttributeFacts {
                    field: field.clone(),
                    template: t.text.clone(),
                    value,
                }
            })
            .collect(),
    };
    // The account: as the diff matches a desired user, else by email (someone in no source).
    let matched = match du {
        Some(d) => crate::diff::matched_by(d, target),
        None => target.find(&key).map(|i| (i, "email")),
    };
    let account = matched.map(|(i, by)| {
        let u = &target.snapshot.users[i as usize];
        TargetFacts {
            email: u.email.clone(),
            id: u.id.clone(),
            external_id: u.external_id.clone(),
            active: u.active,
            in_directory: u.in_directory,
            admin: u.admin,
            matched_by: by.to_string(),
        }
    });
    let target_key = account.as_ref().map(|a| key_of(&a.email));
    let ti = matched.map(|(i, _)| i);
    let mut groups = Vec::new();
    for (name, g) in &desired.groups {
        let wanted = di.and_then(|d| {
            g.members
                .iter()
                .find(|(u, _)| *u as usize == d)
                .map(|(_, r)| desired.reason(*r).to_string())
        });
        let member_now = ti.is_some_and(|t| {
            target
                .snapshot
                .groups
                .iter()
                .position(|tg| tg.name.eq_ignore_ascii_case(name))
                .is_some_and(|gi| target.members[gi].binary_search(&t).is_ok())
        });
        groups.push(GroupFacts {
            group: name.clone(),
            managed_by: g.origin.clone(),
            wanted: wanted.is_some(),
            because: wanted,
            member_now,
        });
    }
    let mut rules_applying = Vec::new();
    if let Some(p) = rules.protect.matching(&key) {
        rules_applying.push(format!(
            "cleanup.protect {p:?}: never deactivated or changed by idsync"
        ));
    }
    if let Some(a) = account.as_ref().filter(|a| a.admin) {
        let _ = a;
        rules_applying.push(if cleanup.skip_admins {
            "cleanup.skip_admins: an organization or site admin, never deactivated".to_string()
        } else {
            "an organization or site admin, but cleanup.skip_admins is off".to_string()
        });
    }
    if ti.is_some() {
        rules_applying.push(format!(
            "cleanup.deactivate_missing: {}",
            if cleanup.deactivate_missing {
                "on"
            } else {
                "off"
            }
        ));
        if cleanup.grace_days > 0 {
            let last = ti
                .and_then(|t| target.snapshot.users[t as usize].last_active)
                .map_or_else(
                    || "no last-active date".to_string(),
                    |d| format!("last active {}", d.format("%Y-%m-%d")),
                );
            let undated = match cleanup.without_last_active {
                WithoutLastActive::Keep => "kept",
                WithoutLastActive::Deactivate => "deactivated",
            };
            rules_applying.push(format!(
                "cleanup.grace_days {}: deactivated only when last active more than {} days ago ({last}; without a date: {undated})",
                cleanup.grace_days, cleanup.grace_days
            ));
        }
    }
    let mut keys: Vec<&str> = std::iter::once(key.as_str())
        .chain(target_key.as_deref())
        .chain(du.map(|d| d.key.as_str()))
        .collect();
    keys.dedup();
    let actions: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| keys.iter().any(|k| concerns(a, k)))
        .map(|a| {
            let k = keys
                .iter()
                .find(|k| concerns(a, k))
                .copied()
                .unwrap_or(&key);
            action_line(a, Some(k))
        })
        .collect();
    let skipped = plan
        .skipped
        .iter()
        .find(|s| keys.iter().any(|k| key_of(&s.key) == *k));
    let outcome = if let Some(s) = skipped {
        format!("left alone: {}", s.reason)
    } else if !actions.is_empty() {
        format!("{} action(s)", actions.len())
    } else if facts.is_empty() && account.is_none() {
        "nothing: not in any source and not in Atlassian".to_string()
    } else if account.is_none() {
        format!(
            "nothing: not synced ({})",
            scope_reason.as_deref().unwrap_or("in no source")
        )
    } else if du.is_none() && !account.as_ref().is_some_and(|a| a.active) {
        "nothing: in no source and already deactivated in Atlassian".to_string()
    } else {
        "nothing: Atlassian already matches what the sources and rules want".to_string()
    };
    PersonTrace {
        email: email.to_string(),
        sources: facts,
        provided_by: du.map(|d| d.source.clone()),
        scope,
        scope_reason,
        attributes,
        atlassian: account,
        groups,
        cleanup: rules_applying,
        actions,
        outcome,
    }
}

/// The trace for one Atlassian group.
#[must_use]
pub(crate) fn group(name: &str, desired: &Desired, target: &Indexed, plan: &Plan) -> GroupTrace {
    let managed = desired
        .groups
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name));
    let current = target
        .snapshot
        .groups
        .iter()
        .position(|g| g.name.eq_ignore_ascii_case(name));
    let mut fed_by: Vec<String> = managed
        .map(|(_, g)| {
            g.members
                .iter()
                .map(|(_, r)| desired.reason(*r).to_string())
                .collect()
        })
        .unwrap_or_default();
    fed_by.sort();
    fed_by.dedup();
    let changes: Vec<String> = plan
        .actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::CreateGroup { .. }
                    | Action::AddMembers { .. }
                    | Action::RemoveMembers { .. }
            ) && a.subject().eq_ignore_ascii_case(name)
        })
        .map(|a| action_line(a, None))
        .collect();
    let outcome = match (managed.is_some(), changes.is_empty()) {
        (false, _) => "nothing: idsync does not manage this group (no mapping or default_groups names it); its members are left alone".to_string(),
        (true, true) => "nothing: its members already match what the mappings derive".to_string(),
        (true, false) => format!("{} action(s)", changes.len()),
    };
    GroupTrace {
        group: managed.map_or_else(|| name.to_string(), |(n, _)| n.clone()),
        ownership: managed.map_or_else(
            || "not managed".to_string(),
            |(_, g)| format!("managed ({})", g.origin),
        ),
        fed_by,
        exists: current.is_some(),
        members_now: current.map_or(0, |i| target.members[i].len()),
        members_wanted: managed.map_or(0, |(_, g)| g.members.len()),
        changes,
        outcome,
    }
}

/// The person's trace as text, one step a line.
#[must_use]
pub(crate) fn render_person(t: &PersonTrace) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "explain {}", t.email);
    let _ = writeln!(o, "\n1. Sources");
    if t.sources.is_empty() {
        let _ = writeln!(o, "   in no source");
    }
    for s in &t.sources {
        let _ = writeln!(
            o,
            "   {}: id {}, {}",
            s.source,
            s.id.as_deref().unwrap_or("(none)"),
            if s.active { "active" } else { "inactive" }
        );
        let groups = if s.groups.is_empty() {
            "(none)".to_string()
        } else {
            s.groups.join(", ")
        };
        let _ = writeln!(o, "     groups: {groups}");
    }
    let _ = writeln!(o, "\n2. Scope");
    match (&t.scope, &t.scope_reason) {
        (Some(s), Some(r)) => {
            let _ = writeln!(o, "   {s}: {r}");
            if let Some(p) = &t.provided_by {
                let _ = writeln!(o, "   fields from `{p}`");
            }
        }
        _ => {
            let _ = writeln!(o, "   not synced: in no source");
        }
    }
    let _ = writeln!(o, "\n3. Attributes");
    if t.attributes.is_empty() {
        let _ = writeln!(
            o,
            "   {}",
            if t.scope.is_none() {
                "none: in no source"
            } else {
                "no users.attributes templates"
            }
        );
    }
    {
        for a in &t.attributes {
            let _ = writeln!(
                o,
                "   {} = {:?} -> {}",
                a.field,
                a.template,
                a.value.as_deref().map_or_else(
                    || "(no value: left alone)".to_string(),
                    |v| format!("{v:?}")
                )
            );
        }
    }
    let _ = writeln!(o, "\n4. Atlassian");
    match &t.atlassian {
        None => {
            let _ = writeln!(o, "   no account");
        }
        Some(a) => {
            let _ = writeln!(
                o,
                "   {} (id {}), {}{}{}, matched by {}",
                a.email,
                a.id.as_deref().unwrap_or("(none)"),
                if a.active { "active" } else { "deactivated" },
                if a.in_directory {
                    ""
                } else {
                    ", outside the SCIM directory"
                },
                if a.admin { ", admin" } else { "" },
                a.matched_by
            );
        }
    }
    let _ = writeln!(o, "\n5. Managed groups");
    for g in &t.groups {
        let now = if g.member_now {
            "member"
        } else {
            "not a member"
        };
        let want = match (&g.because, t.scope.as_deref()) {
            (Some(b), _) => format!("in: {b}"),
            (None, Some("wanted")) => "out: no mapping or default group puts them here".to_string(),
            (None, _) => "out: not synced, so in no managed group".to_string(),
        };
        let _ = writeln!(o, "   {} [{}]: {want}; now {now}", g.group, g.managed_by);
    }
    let _ = writeln!(o, "\n6. Cleanup rules");
    if t.cleanup.is_empty() {
        let _ = writeln!(o, "   none apply");
    }
    for c in &t.cleanup {
        let _ = writeln!(o, "   {c}");
    }
    let _ = writeln!(o, "\n7. Plan");
    for a in &t.actions {
        let _ = writeln!(o, "   {a}");
    }
    let _ = writeln!(o, "   => {}", t.outcome);
    o
}

/// The group's trace as text.
#[must_use]
pub(crate) fn render_group(t: &GroupTrace) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "explain group {}", t.group);
    let _ = writeln!(o, "\n1. Ownership\n   {}", t.ownership);
    let _ = writeln!(o, "\n2. Fed by");
    if t.fed_by.is_empty() {
        let _ = writeln!(o, "   nothing");
    }
    for f in &t.fed_by {
        let _ = writeln!(o, "   {f}");
    }
    let _ = writeln!(
        o,
        "\n3. Members\n   {} in Atlassian now{}, {} wanted",
        t.members_now,
        if t.exists {
            ""
        } else {
            " (the group does not exist yet)"
        },
        t.members_wanted
    );
    let _ = writeln!(o, "\n4. Plan");
    for c in &t.changes {
        let _ = writeln!(o, "   {c}");
    }
    let _ = writeln!(o, "   => {}", t.outcome);
    o
}
