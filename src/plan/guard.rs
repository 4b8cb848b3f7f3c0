//! The guards: a plan that deactivates more users than `max_deactivations` allows fails, with the
//! counts, unless the run says `--allow-mass-deactivation`; likewise `max_updates`
//! (`--allow-mass-update`) and `max_membership_removals`, for the plan and per group
//! (`--allow-mass-membership-removal`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules::DeactivationLimit;

/// The flag that overrides the guard.
pub const OVERRIDE_FLAG: &str = "--allow-mass-deactivation";
/// The flag that overrides `max_updates`.
pub const UPDATE_FLAG: &str = "--allow-mass-update";
/// The flag that overrides `max_membership_removals` and `max_membership_removals_per_group`.
pub const REMOVAL_FLAG: &str = "--allow-mass-membership-removal";

/// The guards a run was told to let pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub deactivation: bool,
    pub update: bool,
    pub membership_removal: bool,
}

/// What a further guard counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// `cleanup.max_updates`: users updated, of the target's active users.
    Updates,
    /// `cleanup.max_membership_removals`: memberships removed from the counted groups, of their
    /// current members.
    MembershipRemovals,
    /// `cleanup.max_membership_removals_per_group`: members removed from one group, of its current
    /// members.
    GroupMembershipRemovals,
}

impl LimitKind {
    /// The config key.
    #[must_use]
    pub fn setting_key(self) -> &'static str {
        match self {
            LimitKind::Updates => "cleanup.max_updates",
            LimitKind::MembershipRemovals => "cleanup.max_membership_removals",
            LimitKind::GroupMembershipRemovals => "cleanup.max_membership_removals_per_group",
        }
    }

    /// The flag that lets a tripped limit pass.
    #[must_use]
    pub fn flag(self) -> &'static str {
        match self {
            LimitKind::Updates => UPDATE_FLAG,
            LimitKind::MembershipRemovals | LimitKind::GroupMembershipRemovals => REMOVAL_FLAG,
        }
    }
}

/// One further guard's reading of a plan. The plan holds the plan-wide readings always, and a
/// per-group reading only for a group that trips it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Limit {
    pub kind: LimitKind,
    /// The group, for a per-group reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The setting as configured, e.g. `50%` or `25`.
    pub setting: String,
    /// What a percentage is of: active users, or current members of the groups counted.
    pub base: u64,
    /// The most allowed (a percentage of `base`, rounded up).
    pub limit: u64,
    /// How many the plan has.
    pub count: u64,
    pub tripped: bool,
    /// Tripped, but the run was told to go ahead.
    pub overridden: bool,
}

impl Limit {
    #[must_use]
    pub fn check(
        kind: LimitKind,
        group: Option<String>,
        setting: DeactivationLimit,
        base: u64,
        count: u64,
        overridden: bool,
    ) -> Limit {
        let limit = setting.limit_rounding_up(base);
        let tripped = count > limit;
        Limit {
            kind,
            group,
            setting: setting.to_string(),
            base,
            limit,
            count,
            tripped,
            overridden: tripped && overridden,
        }
    }

    /// Tripped and not overridden.
    #[must_use]
    pub fn blocks(&self) -> bool {
        self.tripped && !self.overridden
    }

    /// The reading in words, without the verdict.
    #[must_use]
    pub fn describe(&self) -> String {
        match (self.kind, &self.group) {
            (LimitKind::Updates, _) => format!(
                "{} user update(s), at most {} allowed ({}: {}, {} active user(s))",
                self.count,
                self.limit,
                self.kind.setting_key(),
                self.setting,
                self.base
            ),
            (LimitKind::GroupMembershipRemovals, Some(g)) => format!(
                "{} of the {} member(s) of group {g} removed, at most {} allowed ({}: {})",
                self.count,
                self.base,
                self.limit,
                self.kind.setting_key(),
                self.setting
            ),
            _ => format!(
                "{} membership removal(s), at most {} allowed ({}: {}, {} membership(s) in the groups counted)",
                self.count,
                self.limit,
                self.kind.setting_key(),
                self.setting,
                self.base
            ),
        }
    }
}

/// The guard's reading of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Guard {
    /// `cleanup.max_deactivations` as configured, e.g. `10%` or `25`.
    pub setting: String,
    /// Active users in the target, the base of a percentage.
    pub active_users: u64,
    /// The most deactivations allowed.
    pub limit: u64,
    /// Deactivations in the plan.
    pub deactivations: u64,
    /// More deactivations than allowed.
    pub tripped: bool,
    /// Tripped, but the run was told to go ahead.
    pub overridden: bool,
}

impl Guard {
    #[must_use]
    pub fn check(
        limit: DeactivationLimit,
        active_users: u64,
        deactivations: u64,
        overridden: bool,
    ) -> Guard {
        let max = limit.limit(active_users);
        let tripped = deactivations > max;
        Guard {
            setting: limit.to_string(),
            active_users,
            limit: max,
            deactivations,
            tripped,
            overridden: tripped && overridden,
        }
    }

    /// Tripped and not overridden: the plan must not be applied or saved.
    #[must_use]
    pub fn blocks(&self) -> bool {
        self.tripped && !self.overridden
    }
}

/// The further guards of a plan: updates against the target's `active` users, and membership
/// removals plan-wide and per group, counting only groups with at least `removal_min_group_size`
/// current members (`removals`: group, its current members, the members removed). One function for
/// the plan and for `apply`, which derives them again from the actions and the target as it is.
pub(crate) fn limits(
    rules: &crate::rules::Rules,
    active: u64,
    updates: u64,
    removals: &[(String, u64, u64)],
    overrides: Overrides,
) -> Vec<Limit> {
    let mut out = vec![Limit::check(
        LimitKind::Updates,
        None,
        rules.update_limit,
        active,
        updates,
        overrides.update,
    )];
    let counted: Vec<&(String, u64, u64)> = removals
        .iter()
        .filter(|(_, current, _)| *current >= rules.removal_min_group_size as u64)
        .collect();
    out.push(Limit::check(
        LimitKind::MembershipRemovals,
        None,
        rules.removal_limit,
        counted.iter().map(|(_, current, _)| current).sum(),
        counted.iter().map(|(_, _, removed)| removed).sum(),
        overrides.membership_removal,
    ));
    for (name, current, removed) in counted {
        let l = Limit::check(
            LimitKind::GroupMembershipRemovals,
            Some(name.clone()),
            rules.removal_limit_per_group,
            *current,
            *removed,
            overrides.membership_removal,
        );
        if l.tripped {
            out.push(l);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_above_the_limit() {
        let g = Guard::check(DeactivationLimit::Percent(10.0), 50, 5, false);
        assert!(!g.tripped);
        let g = Guard::check(DeactivationLimit::Percent(10.0), 50, 6, false);
        assert!(g.blocks());
        let g = Guard::check(DeactivationLimit::Count(1), 50, 6, true);
        assert!(g.tripped && g.overridden && !g.blocks());
    }

    #[test]
    fn limits_read_like_the_deactivation_guard() {
        let l = Limit::check(
            LimitKind::GroupMembershipRemovals,
            Some("engineering".into()),
            DeactivationLimit::Percent(50.0),
            5,
            4,
            false,
        );
        assert!(l.blocks());
        assert_eq!(
            l.describe(),
            "4 of the 5 member(s) of group engineering removed, at most 3 allowed (cleanup.max_membership_removals_per_group: 50%)"
        );
        let l = Limit::check(
            LimitKind::Updates,
            None,
            DeactivationLimit::Count(3),
            9,
            3,
            false,
        );
        assert!(!l.tripped);
        let l = Limit::check(
            LimitKind::Updates,
            None,
            DeactivationLimit::Count(3),
            9,
            4,
            true,
        );
        assert!(l.overridden && !l.blocks());
    }
}
