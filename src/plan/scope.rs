//! Partial plans (`plan --only-user`, `--only-group`, `sync-user`): the scope a plan is cut to, and
//! the cut. Like `terraform -target`: the plan is made as usual, then keeps only the actions that
//! touch the users or groups in scope. The safety rules are applied before the cut, so a protected
//! user stays left alone; the guards are read on what the cut plan does.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::{Action, Member, ReasonCode, Skipped};
use crate::rules::Patterns;

/// What a partial plan was cut to. A plan without it covers everything the config manages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Scope {
    /// `--only-user` patterns (emails, `*` and `?` wildcards, case-insensitive) or the emails given
    /// to `sync-user`, as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// `--only-group` names (managed Atlassian groups, case-insensitive), as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// What was read to make the plan.
    pub read: ScopeRead,
    /// How much of the full plan this one leaves out; absent when only the people in scope were
    /// read (`sync-user`), so the rest was never compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<LeftOut>,
}

/// What a partial plan read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeRead {
    /// Every source and the whole target, as for a full plan (`plan --only-user`/`--only-group`).
    Full,
    /// Only the people in scope, in every source and the target (`sync-user`).
    People,
}

/// What the cut left out of the full plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeftOut {
    /// Actions (membership batches counted one each) of the full plan not in this one.
    pub actions: usize,
    /// Changes (users changed, groups created, memberships changed) of the full plan not in this one.
    pub changes: usize,
}

impl Scope {
    /// A scope over these `--only-user` patterns and `--only-group` names; `None` when both are
    /// empty (a full plan).
    #[must_use]
    pub fn new(users: Vec<String>, groups: Vec<String>, read: ScopeRead) -> Option<Scope> {
        (!users.is_empty() || !groups.is_empty()).then_some(Scope {
            users,
            groups,
            read,
            left_out: None,
        })
    }

    /// The scope in a few words: `users alice@example.com, *@ops.example.com; groups engineering`.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.users.is_empty() {
            parts.push(format!("users {}", self.users.join(", ")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("groups {}", self.groups.join(", ")));
        }
        parts.join(" and ")
    }

    /// The line every rendering puts first: the plan is partial, of what, and what it left out.
    #[must_use]
    pub fn line(&self) -> String {
        let rest = match self.left_out {
            Some(l) if l.actions == 0 => {
                "the full plan has no other changes, but this one is still only about them"
                    .to_string()
            }
            Some(l) => format!(
                "{} other change(s) ({} action(s)) of the full plan are left out, so it says nothing about the rest of the target",
                l.changes, l.actions
            ),
            None => "only these people were read, so it says nothing about the rest of the target"
                .to_string(),
        };
        format!("PARTIAL PLAN: only {}; {rest}.", self.describe())
    }
}

/// A [`Scope`] ready to match users and groups.
#[derive(Debug)]
pub struct Filter {
    users: Patterns,
    groups: Vec<String>,
}

impl Filter {
    /// Compiles the scope's patterns.
    ///
    /// # Errors
    /// A pattern is not a valid glob: the message names it.
    pub fn new(scope: &Scope) -> Result<Filter, String> {
        Ok(Filter {
            users: Patterns::new(&scope.users)?,
            groups: scope
                .groups
                .iter()
                .map(|g| g.trim().to_lowercase())
                .collect(),
        })
    }

    /// Whether a user (by key or any email they had) is in scope.
    #[must_use]
    pub fn user(&self, email: &str) -> bool {
        self.users.matching(email).is_some()
    }

    /// Whether a group is in scope.
    #[must_use]
    pub fn group(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.groups.contains(&name)
    }

    /// The `--only-user` patterns that match none of `emails`.
    pub fn unmatched_users<'a>(&self, emails: impl IntoIterator<Item = &'a str>) -> Vec<&str> {
        self.users
            .unmatched(emails)
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// The `--only-group` names (as given) that are none of `managed`.
    #[must_use]
    pub fn unmatched_groups<'a>(&self, given: &'a [String], managed: &[&str]) -> Vec<&'a str> {
        given
            .iter()
            .filter(|g| {
                !managed
                    .iter()
                    .any(|m| m.to_lowercase() == g.trim().to_lowercase())
            })
            .map(String::as_str)
            .collect()
    }

    /// The users left alone by a rule who are in scope.
    #[must_use]
    pub fn skipped(&self, skipped: Vec<Skipped>) -> Vec<Skipped> {
        skipped.into_iter().filter(|s| self.user(&s.key)).collect()
    }

    /// Cuts `actions` to the scope. A user's own actions stay when they are in scope (for a rename,
    /// by the new or the old email); a membership change stays whole for a group in scope, else
    /// with only the members in scope (batched again by `batch`). What a kept action needs stays
    /// too, as with `terraform -target`: the creation of a group it adds members to, and the
    /// creation or link of a member it adds who has no account in the directory yet.
    #[must_use]
    pub fn cut(&self, actions: Vec<Action>, batch: usize) -> Vec<Action> {
        let batch = batch.max(1);
        let mut kept = Vec::new();
        let mut creates = Vec::new();
        // Creates and links of users out of scope: kept if a membership kept needs them.
        let mut accounts = Vec::new();
        // (add?, group) -> (group id, reason, code, members), for groups not in scope.
        type Bucket = (Option<String>, String, ReasonCode, Vec<Member>);
        let mut buckets: BTreeMap<(bool, String), Bucket> = BTreeMap::new();
        for a in actions {
            match a {
                Action::CreateUser { ref key, .. } | Action::LinkUser { ref key, .. } => {
                    if self.user(key) {
                        kept.push(a);
                    } else {
                        accounts.push(a);
                    }
                }
                Action::ReactivateUser { ref key, .. }
                | Action::DeactivateUser { ref key, .. }
                | Action::RevokeApiTokens { ref key, .. } => {
                    if self.user(key) {
                        kept.push(a);
                    }
                }
                Action::UpdateUser {
                    ref key,
                    ref changes,
                    ..
                } => {
                    let old = changes
                        .iter()
                        .filter(|c| c.field == "email")
                        .filter_map(|c| c.from.as_deref());
                    if self.user(key) || old.into_iter().any(|e| self.user(e)) {
                        kept.push(a);
                    }
                }
                Action::CreateGroup { .. } => creates.push(a),
                Action::AddMembers { ref group, .. } | Action::RemoveMembers { ref group, .. }
                    if self.group(group) =>
                {
                    kept.push(a);
                }
                Action::AddMembers {
                    group,
                    group_id,
                    members,
                    reason,
                    reason_code,
                    ..
                } => {
                    let e = buckets.entry((true, group)).or_insert((
                        group_id,
                        reason,
                        reason_code,
                        Vec::new(),
                    ));
                    e.3.extend(members.into_iter().filter(|m| self.user(&m.key)));
                }
                Action::RemoveMembers {
                    group,
                    group_id,
                    members,
                    reason,
                    reason_code,
                    ..
                } => {
                    let e = buckets.entry((false, group)).or_insert((
                        Some(group_id),
                        reason,
                        reason_code,
                        Vec::new(),
                    ));
                    e.3.extend(members.into_iter().filter(|m| self.user(&m.key)));
                }
            }
        }
        for ((add, group), (group_id, reason, reason_code, members)) in buckets {
            let n = members.len().div_ceil(batch);
            for (i, chunk) in members.chunks(batch).enumerate() {
                kept.push(if add {
                    Action::AddMembers {
                        group: group.clone(),
                        group_id: group_id.clone(),
                        batch: [i + 1, n],
                        members: chunk.to_vec(),
                        reason: reason.clone(),
                        reason_code,
                    }
                } else {
                    Action::RemoveMembers {
                        group: group.clone(),
                        group_id: group_id.clone().unwrap_or_else(|| group.clone()),
                        batch: [i + 1, n],
                        members: chunk.to_vec(),
                        reason: reason.clone(),
                        reason_code,
                    }
                });
            }
        }
        let pending: std::collections::HashSet<String> = kept
            .iter()
            .filter_map(|a| match a {
                Action::AddMembers { members, .. } => Some(members),
                _ => None,
            })
            .flatten()
            .filter(|m| m.id.is_none())
            .map(|m| m.key.clone())
            .collect();
        for a in accounts {
            if let Action::CreateUser { key, .. } | Action::LinkUser { key, .. } = &a {
                if pending.contains(key) {
                    kept.push(a);
                }
            }
        }
        for c in creates {
            let Action::CreateGroup { group, .. } = &c else {
                continue;
            };
            let needed = kept.iter().any(
                |a| matches!(a, Action::AddMembers { group: g, group_id: None, .. } if g == group),
            );
            if self.group(group) || needed {
                kept.push(c);
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(key: &str) -> Member {
        Member {
            key: key.into(),
            id: Some(format!("id-{key}")),
            reason: "r".into(),
            reason_code: ReasonCode::MappedGroup,
        }
    }

    fn adds(group: &str, batch: [usize; 2], keys: &[&str]) -> Action {
        Action::AddMembers {
            group: group.into(),
            group_id: Some(format!("g-{group}")),
            batch,
            members: keys.iter().map(|k| member(k)).collect(),
            reason: "r".into(),
            reason_code: ReasonCode::MappedGroup,
        }
    }

    fn filter(users: &[&str], groups: &[&str]) -> Filter {
        let scope = Scope::new(
            users.iter().map(|s| (*s).to_string()).collect(),
            groups.iter().map(|s| (*s).to_string()).collect(),
            ScopeRead::Full,
        )
        .unwrap();
        Filter::new(&scope).unwrap()
    }

    #[test]
    fn memberships_are_cut_to_the_users_and_batched_again() {
        let actions = vec![
            adds("eng", [1, 3], &["a@x.com", "b@y.com"]),
            adds("eng", [2, 3], &["c@x.com", "d@y.com"]),
            adds("eng", [3, 3], &["e@x.com"]),
            adds("ops", [1, 1], &["b@y.com"]),
        ];
        let cut = filter(&["*@X.COM"], &[]).cut(actions.clone(), 2);
        assert_eq!(
            cut,
            [
                adds("eng", [1, 2], &["a@x.com", "c@x.com"]),
                adds("eng", [2, 2], &["e@x.com"]),
            ]
        );
        // A group in scope keeps its actions whole; the other group keeps only users in scope.
        let cut = filter(&["b@y.com"], &["ENG"]).cut(actions.clone(), 2);
        assert_eq!(cut[..3], actions[..3]);
        assert_eq!(cut[3], adds("ops", [1, 1], &["b@y.com"]));
        assert!(filter(&["z@z.com"], &[]).cut(actions, 2).is_empty());
    }

    #[test]
    fn a_pattern_that_is_no_glob_is_refused_by_name() {
        let scope = Scope::new(vec!["a[@b".into()], Vec::new(), ScopeRead::Full).unwrap();
        let e = Filter::new(&scope).unwrap_err();
        assert!(e.contains("\"a[@b\""), "{e}");
        assert!(Scope::new(Vec::new(), Vec::new(), ScopeRead::Full).is_none());
    }
}
