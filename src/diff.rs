//! The difference between the desired state and the target: a [`Plan`]. Pure: no I/O, no clock
//! (the caller passes `now`), deterministic.

use rustc_hash::FxHashMap;

use chrono::{DateTime, SubsecRound, Utc};

use crate::desired::{Desired, DesiredUser, Scope};
use crate::model::{Indexed, User};
use crate::plan::scope::{self, Filter, Scope as PlanScope, ScopeRead};
use crate::plan::{
    stale, Action, Cost, DeactivateCause, FieldChange, Guard, Limit, LimitKind, Member, Overrides,
    Plan, ReasonCode, Skipped, SourceRead, Summary, FORMAT_VERSION,
};
use crate::rules::{Cleanup, Rules, WithoutLastActive};

/// What a diff needs besides the two sides.
pub(crate) struct Context<'a> {
    pub rules: &'a Rules,
    pub cleanup: &'a Cleanup,
    pub manage_unmapped_members: bool,
    /// The moment grace periods are measured from.
    pub now: DateTime<Utc>,
    /// The guards the run was told to let pass (`--allow-mass-deactivation` and the like).
    pub overrides: Overrides,
    pub config_hash: String,
    pub target_name: String,
    /// Requests the target may have in flight at once; `None` for a target that makes no requests.
    pub target_concurrency: Option<usize>,
    /// Requests the target takes to apply an action, for the cost estimate.
    pub action_requests: &'a dyn Fn(&Action) -> u64,
    /// The documented rate budget of the target's writes, as `(what, per, window_secs)`.
    pub write_budget: Option<(String, u64, u64)>,
    /// The documented rate budgets the sources' reads spend (apply reads them again).
    pub read_budgets: Vec<crate::model::RateBudget>,
    /// How late the target's last-active dates may be; added to `grace_days`.
    pub last_active_lag: chrono::Duration,
    /// What the target's snapshot found that a reviewer should know.
    pub target_warnings: Vec<String>,
    /// The sources read, for the plan's record.
    pub sources: Vec<SourceRead>,
}

/// Most warnings of one kind listed one by one.
const MAX_LISTED: usize = 50;

/// Computes the plan that brings `target` to `desired`.
#[cfg(test)]
#[must_use]
pub(crate) fn diff(desired: &Desired, target: &Indexed, ctx: &Context<'_>) -> Plan {
    diff_scoped(desired, target, ctx, None)
}

/// As [`diff`], then cut to a scope (a partial plan, see [`crate::plan::scope`]): every rule is
/// applied to the whole of what was read, then only the actions touching the scope are kept, and
/// the guards read what those do.
#[must_use]
pub(crate) fn diff_scoped(
    desired: &Desired,
    target: &Indexed,
    ctx: &Context<'_>,
    scope: Option<(&PlanScope, &Filter)>,
) -> Plan {
    let mut d = Differ {
        desired,
        target,
        ctx,
        scope,
        actions: Vec::new(),
        warnings: desired
            .warnings
            .iter()
            .chain(&ctx.target_warnings)
            .cloned()
            .collect(),
        blocking: desired.blocking.clone(),
        unverified: Vec::new(),
        skipped: Vec::new(),
        matched: vec![None; desired.users.len()],
        claimed: vec![None; target.keys.len()],
        blocked: vec![false; desired.users.len()],
        left_out: vec![None; target.keys.len()],
        revoking: vec![false; target.keys.len()],
        contested: vec![false; target.keys.len()],
        removals: Vec::new(),
    };
    // A read of only some people cannot tell whether a rule matches nobody.
    if scope.is_none_or(|(s, _)| s.read == ScopeRead::Full) {
        d.rules_matching_nobody();
    }
    let n = target.unknown_members.len();
    if let Some((g, m)) = target.unknown_members.first() {
        d.warnings.push(format!(
            "target {}: {n} group member(s) are not among its users, e.g. {m:?} in {g:?}; left alone",
            ctx.target_name
        ));
    }
    d.match_users();
    d.users();
    d.strays();
    d.lingering_tokens();
    d.groups();
    d.finish()
}

struct Differ<'a> {
    desired: &'a Desired,
    target: &'a Indexed,
    ctx: &'a Context<'a>,
    scope: Option<(&'a PlanScope, &'a Filter)>,
    actions: Vec<Action>,
    warnings: Vec<String>,
    blocking: Vec<String>,
    /// Users not created because their email domain is not verified in the organization.
    unverified: Vec<String>,
    skipped: Vec<Skipped>,
    /// Desired user -> target user.
    matched: Vec<Option<u32>>,
    /// Target user -> desired user.
    claimed: Vec<Option<u32>>,
    /// Desired users left out of every action (a conflict, or a rule protects them).
    blocked: Vec<bool>,
    /// Target user -> the record a source left out that matches them (`desired.left_out` index).
    left_out: Vec<Option<usize>>,
    /// Target users this plan deactivates (and so revokes, when asked).
    revoking: Vec<bool>,
    /// Target user -> whether its email is wanted for a source user matched (by externalId) to
    /// another account: that account's rename waits, and this one is not taken for gone.
    contested: Vec<bool>,
    /// Existing managed groups: (name, current members, members the plan removes).
    removals: Vec<(String, u64, u64)>,
}

impl Differ<'_> {
    /// Matches users by the IdP's immutable id (the target's `externalId`) first, then by email, so a
    /// changed email is an update and not a leaver plus a joiner.
    fn match_users(&mut self) {
        let t = self.target;
        let by_ext: FxHashMap<&str, u32> = t
            .snapshot
            .users
            .iter()
            .enumerate()
            // An account outside the SCIM directory is linked by email only: that is how
            // Atlassian links a SCIM create to an existing account.
            .filter(|(_, u)| u.in_directory)
            .filter_map(|(i, u)| u.external_id.as_deref().map(|e| (e, idx(i))))
            .collect();
        for (di, du) in self.desired.users.iter().enumerate() {
            if let Some(&ti) = du.source_id.as_deref().and_then(|s| by_ext.get(s)) {
                if self.claimed[ti as usize].is_none() {
                    self.claimed[ti as usize] = Some(idx(di));
                    self.matched[di] = Some(ti);
                }
            }
        }
        let mut collisions = 0;
        for (di, du) in self.desired.users.iter().enumerate() {
            if self.matched[di].is_some() {
                continue;
            }
            let Some(ti) = t.find(&du.key) else {
                continue;
            };
            match self.claimed[ti as usize] {
                None => {
                    self.claimed[ti as usize] = Some(idx(di));
                    self.matched[di] = Some(ti);
                }
                Some(other) => {
                    self.blocked[di] = true;
                    collisions += 1;
                    if collisions <= MAX_LISTED {
                        self.warnings.push(format!(
                            "{}: the target account with this email is matched by externalId to {}; {} left alone until one of them changes",
                            du.key, self.desired.users[other as usize].key, du.key
                        ));
                    }
                }
            }
        }
        // A rename onto an email another target account still holds cannot be applied.
        for di in 0..self.desired.users.len() {
            let (Some(ti), du) = (self.matched[di], &self.desired.users[di]) else {
                continue;
            };
            if t.key(ti) != du.key {
                if let Some(holder) = t.find(&du.key) {
                    if holder != ti {
                        self.blocked[di] = true;
                        self.contested[holder as usize] = true;
                        self.warnings.push(format!(
                            "{} was renamed to {} in `{}`, but another target account already uses that email; left alone",
                            t.key(ti), du.key, du.source
                        ));
                    }
                }
            }
        }
    }

    /// A `protect` or `exclude` entry that matches nobody is most often a typo, and a misspelt
    /// `protect` entry protects nobody: say so.
    fn rules_matching_nobody(&mut self) {
        let rules = self.ctx.rules;
        let sources = self.desired.users.iter().map(|u| u.key.as_str());
        for (i, p) in rules.exclude.unmatched(sources) {
            self.warnings.push(format!(
                "users.exclude[{i}] {p:?} matches no user in any source; check its spelling"
            ));
        }
        let everyone = self
            .desired
            .users
            .iter()
            .map(|u| u.key.as_str())
            .chain(self.target.keys.iter().map(String::as_str));
        for (i, p) in rules.protect.unmatched(everyone) {
            self.warnings.push(format!(
                "cleanup.protect[{i}] {p:?} matches no user in the target or any source, so it protects nobody; check its spelling"
            ));
        }
    }

    /// Whether the target can create a user with this email: false when the organization's verified
    /// domains are known and the email's domain is not among them.
    fn domain_verified(&self, email: &str) -> bool {
        let Some(domains) = &self.target.snapshot.verified_domains else {
            return true;
        };
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d).to_lowercase();
        domains.iter().any(|d| d.eq_ignore_ascii_case(&domain))
    }

    /// Why a rule keeps idsync's hands off this user, if one does.
    fn hands_off(&self, key: &str, target: Option<&User>) -> Option<(ReasonCode, String)> {
        let protected = |p: &str| {
            (
                ReasonCode::Protected,
                format!("protected by cleanup.protect {p:?}"),
            )
        };
        if let Some(p) = self.ctx.rules.protect.matching(key) {
            return Some(protected(p));
        }
        if let Some(u) = target {
            if let Some(p) = self.ctx.rules.protect.matching(&u.email) {
                return Some(protected(p));
            }
            if u.admin && self.ctx.cleanup.skip_admins {
                return Some((
                    ReasonCode::Admin,
                    "an organization or site admin (cleanup.skip_admins)".into(),
                ));
            }
        }
        None
    }

    fn skip(&mut self, key: &str, (code, why): (ReasonCode, String), would: &str) {
        self.skipped.push(Skipped {
            key: key.to_string(),
            reason: format!("{why}; would have been {would}"),
            reason_code: code,
        });
    }

    fn users(&mut self) {
        let t = self.target;
        for (di, du) in self.desired.users.iter().enumerate() {
            if self.blocked[di] {
                continue;
            }
            let tu = self.matched[di].map(|ti| (ti, t.user(ti)));
            match (&du.scope, tu) {
                (Scope::Wanted, None) => {
                    if let Some(why) = self.hands_off(&du.key, None) {
                        self.blocked[di] = true;
                        self.skip(&du.key, why, "created");
                        continue;
                    }
                    if !self.domain_verified(&du.fields.email) {
                        self.blocked[di] = true;
                        self.unverified.push(du.key.clone());
                        self.skip(
                            &du.key,
                            (
                                ReasonCode::DomainNotVerified,
                                "the email's domain is not verified in the organization".into(),
                            ),
                            "created (Atlassian refuses it)",
                        );
                        continue;
                    }
                    let (reason_code, reason) = wanted_reason(du, self.ctx.rules);
                    self.actions.push(Action::CreateUser {
                        key: du.key.clone(),
                        user: du.fields.clone(),
                        reason,
                        reason_code,
                    });
                }
                (Scope::Wanted, Some((_, u))) => {
                    if let (false, Some(dir)) = (u.in_directory, &u.owned_by_directory) {
                        // Creating it through this directory would link an account that another
                        // directory of the organization owns.
                        self.blocked[di] = true;
                        self.skip(
                            &du.key,
                            (ReasonCode::OtherDirectory, format!("the Atlassian account belongs to the organization's identity-provider directory {dir:?}, not to this SCIM directory")),
                            "linked",
                        );
                        self.warnings.push(format!(
                            "{}: the account is owned by the identity-provider directory {dir:?}; idsync does not link it into this directory (remove it from that directory's IdP first, or exclude it)",
                            du.key
                        ));
                        continue;
                    }
                    if let Some(why) = self.hands_off(&du.key, Some(u)) {
                        self.blocked[di] = true;
                        let would = self.user_changes(du, u);
                        if !would.is_empty() {
                            self.skip(&du.key, why, &would.join(", "));
                        }
                        continue;
                    }
                    self.wanted_user(du, u);
                }
                (_, Some((ti, u))) if u.in_directory && u.active => {
                    let cause = match du.scope {
                        Scope::Disabled { .. } => DeactivateCause::DisabledInSource,
                        _ => DeactivateCause::OutOfScope,
                    };
                    self.deactivate(ti, cause, scope_reason(&du.scope, self.ctx.rules));
                }
                _ => {}
            }
        }
    }

    /// The kinds of change a matched, wanted user would get; for skip notes.
    fn user_changes(&self, du: &DesiredUser, u: &User) -> Vec<&'static str> {
        let mut v = Vec::new();
        if !u.in_directory {
            v.push("linked");
        } else {
            if !u.active {
                v.push("reactivated");
            }
            if !field_changes(du, u, self.ctx.rules).is_empty() {
                v.push("updated");
            }
        }
        v
    }

    fn wanted_user(&mut self, du: &DesiredUser, u: &User) {
        if !u.in_directory {
            let (reason_code, wanted) = wanted_reason(du, self.ctx.rules);
            self.actions.push(Action::LinkUser {
                key: du.key.clone(),
                account_id: u.account_id.clone(),
                user: du.fields.clone(),
                reason: format!(
                    "{wanted}; the Atlassian account exists outside the SCIM directory (e.g. JIT-provisioned), so it is linked by creating it with the same email"
                ),
                reason_code,
            });
            return;
        }
        if !u.active {
            self.actions.push(Action::ReactivateUser {
                key: du.key.clone(),
                id: u.reference(),
                reason: format!("active in `{}` again", du.source),
                reason_code: ReasonCode::ActiveInSource,
            });
        }
        let changes = field_changes(du, u, self.ctx.rules);
        if !changes.is_empty() {
            let renamed = changes.iter().any(|c| c.field == "email");
            self.actions.push(Action::UpdateUser {
                key: du.key.clone(),
                id: u.reference(),
                reason: if renamed {
                    format!(
                        "renamed in `{}` (matched by its immutable id, carried as externalId)",
                        du.source
                    )
                } else {
                    format!("fields differ from `{}`", du.source)
                },
                reason_code: if renamed {
                    ReasonCode::Rename
                } else {
                    ReasonCode::FieldsDiffer
                },
                changes,
            });
        }
    }

    /// Target users a source left out (no email, a member that is not a user, …): matched by email
    /// when the record has one, by the IdP id carried as `externalId` otherwise.
    fn match_left_out(&mut self) {
        let t = self.target;
        let mut by_ext: FxHashMap<&str, u32> = FxHashMap::default();
        for (i, u) in t.snapshot.users.iter().enumerate() {
            if let Some(e) = u.external_id.as_deref() {
                by_ext.insert(e, idx(i));
            }
        }
        for (li, (_, l)) in self.desired.left_out.iter().enumerate() {
            let by_email = l
                .email
                .as_deref()
                .and_then(|e| t.find(&crate::model::key_of(e)));
            let by_id = l.id.as_deref().and_then(|id| by_ext.get(id).copied());
            for ti in [by_email, by_id].into_iter().flatten() {
                if self.claimed[ti as usize].is_none() && self.left_out[ti as usize].is_none() {
                    self.left_out[ti as usize] = Some(li);
                }
            }
        }
    }

    /// Target users no source accounts for.
    fn strays(&mut self) {
        self.match_left_out();
        for ti in 0..self.target.keys.len() {
            let u = self.target.user(idx(ti));
            if let Some(li) = self.left_out[ti] {
                if !(u.in_directory && u.active) {
                    continue;
                }
                let (source, l) = &self.desired.left_out[li];
                let key = self.target.key(idx(ti)).to_string();
                // Left out by a source is not gone: kept, unless a rule drops them anyway.
                if let Some(p) = self.ctx.rules.exclude.matching(&key) {
                    self.deactivate(
                        idx(ti),
                        DeactivateCause::OutOfScope,
                        (
                            ReasonCode::ExcludedByRule,
                            format!(
                                "left out of source `{source}` ({}), and excluded by users.exclude {p:?}",
                                l.reason
                            ),
                        ),
                    );
                } else {
                    self.skip(
                        &key,
                        (
                            ReasonCode::LeftOutBySource,
                            format!(
                                "source `{source}` left out {} ({}), so they are not taken for gone",
                                l.label(),
                                l.reason
                            ),
                        ),
                        "deactivated: in no source (cleanup.deactivate_missing)",
                    );
                }
                continue;
            }
            if self.claimed[ti].is_none() && self.contested[ti] && u.in_directory && u.active {
                // Its email is a source user's: whatever holds it is not "in no source".
                let key = self.target.key(idx(ti)).to_string();
                self.skip(
                    &key,
                    (
                        ReasonCode::EmailContested,
                        "its email is wanted for a source user whose own account (matched by externalId) is to be renamed to it; resolve by hand".into(),
                    ),
                    "deactivated: in no source (cleanup.deactivate_missing)",
                );
                continue;
            }
            if self.claimed[ti].is_none() && u.in_directory && u.active {
                self.deactivate(
                    idx(ti),
                    DeactivateCause::GoneFromSources,
                    (
                        ReasonCode::GoneFromSources,
                        "in no source (cleanup.deactivate_missing)".into(),
                    ),
                );
            }
        }
    }

    fn deactivate(
        &mut self,
        ti: u32,
        cause: DeactivateCause,
        (reason_code, reason): (ReasonCode, String),
    ) {
        let u = self.target.user(ti);
        let key = self.target.key(ti).to_string();
        let c = self.ctx.cleanup;
        if let Some(why) = self.hands_off(&key, Some(u)) {
            self.skip(&key, why, &format!("deactivated: {reason}"));
            return;
        }
        if cause != DeactivateCause::DisabledInSource && !c.deactivate_missing {
            self.skip(
                &key,
                (
                    ReasonCode::DeactivateMissingOff,
                    "cleanup.deactivate_missing is false".into(),
                ),
                &format!("deactivated: {reason}"),
            );
            return;
        }
        let mut reason = reason;
        if c.grace_days > 0 {
            // Measured from the last-active moment plus the target's documented lag (Atlassian: up
            // to 24 hours), so a late report never shortens the grace period.
            let grace = chrono::Duration::days(i64::from(c.grace_days)) + self.ctx.last_active_lag;
            match u.last_active {
                Some(at) if self.ctx.now - at <= grace => {
                    self.skip(
                        &key,
                        (
                            ReasonCode::InactiveGrace,
                            format!(
                                "last active {}, within cleanup.grace_days ({})",
                                at.format("%Y-%m-%d"),
                                c.grace_days
                            ),
                        ),
                        &format!("deactivated: {reason}"),
                    );
                    return;
                }
                Some(at) => reason.push_str(&format!(
                    "; last active {}, more than {} days ago",
                    at.format("%Y-%m-%d"),
                    c.grace_days
                )),
                None if c.without_last_active == WithoutLastActive::Keep => {
                    self.skip(
                        &key,
                        (
                            ReasonCode::NoLastActive,
                            "no last-active date and cleanup.without_last_active is keep".into(),
                        ),
                        &format!("deactivated: {reason}"),
                    );
                    return;
                }
                None => reason
                    .push_str("; no last-active date (cleanup.without_last_active: deactivate)"),
            }
        }
        self.actions.push(Action::DeactivateUser {
            key: key.clone(),
            id: u.reference(),
            account_id: u.account_id.clone(),
            cause,
            reason,
            reason_code,
        });
        self.revoking[ti as usize] = true;
        self.revoke(
            &key,
            u,
            (
                ReasonCode::DeactivatedByPlan,
                "deactivated by this plan (cleanup.revoke_api_tokens)".into(),
            ),
        );
    }

    /// Plans the revocation of a user's API tokens, when asked for and the user may hold any.
    fn revoke(&mut self, key: &str, u: &User, (reason_code, reason): (ReasonCode, String)) {
        if !self.ctx.cleanup.revoke_api_tokens || u.api_tokens == Some(0) {
            return;
        }
        let Some(account_id) = u.account_id.clone() else {
            return;
        };
        self.actions.push(Action::RevokeApiTokens {
            key: key.to_string(),
            id: u.reference(),
            account_id,
            tokens: u.api_tokens,
            reason,
            reason_code,
        });
    }

    /// Deactivated users who still hold API tokens, whichever run deactivated them (a revocation
    /// that failed, or one made before `revoke_api_tokens` was set): their tokens are revoked now.
    fn lingering_tokens(&mut self) {
        if !self.ctx.cleanup.revoke_api_tokens {
            return;
        }
        let t = self.target;
        for ti in 0..t.keys.len() {
            let u = t.user(idx(ti));
            let Some(held) = u.api_tokens.filter(|n| *n > 0) else {
                continue;
            };
            if self.revoking[ti] || u.active || !u.in_directory {
                continue;
            }
            // A user this plan reactivates keeps their tokens.
            if let Some(di) = self.claimed[ti] {
                let du = &self.desired.users[di as usize];
                if du.scope == Scope::Wanted || self.blocked[di as usize] {
                    continue;
                }
            }
            let key = t.key(idx(ti)).to_string();
            if let Some(why) = self.hands_off(&key, Some(u)) {
                self.skip(&key, why, "stripped of its API tokens");
                continue;
            }
            // A saved plan re-checks the user before revoking (its preconditions record `active`):
            // reactivated since, it is refused.
            self.revoke(
                &key,
                u,
                (
                    ReasonCode::TokensLingering,
                    format!(
                        "deactivated, but still holds {held} API token(s) (cleanup.revoke_api_tokens): an earlier revocation failed or was never made"
                    ),
                ),
            );
        }
    }

    fn groups(&mut self) {
        let t = self.target;
        let by_name = t.groups_by_name();
        let by_lower: FxHashMap<String, usize> = t
            .snapshot
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.to_lowercase(), i))
            .collect();
        let batch = self.ctx.rules.membership_batch.max(1);
        let mut in_group = vec![0u32; t.keys.len()];
        let mut wanted = vec![0u32; t.keys.len()];
        let mut stamp = 0u32;
        let shared = |name: &str| {
            t.shared_names
                .iter()
                .find(|s| s.name.to_lowercase() == name.to_lowercase())
        };
        for s in &t.shared_names {
            let managed = self
                .desired
                .groups
                .keys()
                .any(|n| n.to_lowercase() == s.name.to_lowercase());
            if !managed {
                self.warnings.push(format!(
                    "{} target groups share the name {:?} (ids {}); idsync does not manage it and changes none of them, but a name held twice is easily confused: delete or rename all but one in admin.atlassian.com",
                    s.ids.len(),
                    s.name,
                    s.ids.join(", ")
                ));
            }
        }
        for (name, g) in &self.desired.groups {
            if let Some(s) = shared(name) {
                let wanted = g
                    .members
                    .iter()
                    .filter(|(du, _)| !self.blocked[*du as usize])
                    .count();
                self.warnings.push(format!(
                    "group {name} cannot be managed: {} target groups share its name (ids {}) and idsync will not guess which is its own; its memberships are left alone ({wanted} wanted member(s) not synced) until all but one are deleted or renamed in admin.atlassian.com",
                    s.ids.len(),
                    s.ids.join(", ")
                ));
                continue;
            }
            if g.members.len() > self.ctx.rules.group_size_max {
                self.blocking.push(format!(
                    "group {name} would have {} members, above limits.max_group_size ({}): Atlassian suspends the directory's sync; split the group, or raise the limit once Atlassian has raised yours",
                    g.members.len(),
                    self.ctx.rules.group_size_max
                ));
            } else if g.members.len() > self.ctx.rules.group_size_warn {
                self.warnings.push(format!(
                    "group {name} would have {} members, above limits.max_group_size_warn ({}); Atlassian suspends a directory's sync above 20,000 members per group unless support raises the limit",
                    g.members.len(),
                    self.ctx.rules.group_size_warn
                ));
            }
            // A default group's origin is `groups.default_groups`, even when a mapping also feeds it.
            let group_code = if self.ctx.rules.default_groups.contains(name) {
                ReasonCode::DefaultGroup
            } else {
                ReasonCode::MappedGroup
            };
            let tg = by_name
                .get(name.as_str())
                .or_else(|| by_lower.get(&name.to_lowercase()))
                .copied();
            let empty = Vec::new();
            let (group_id, current) = match tg {
                Some(gi) => (
                    Some(
                        t.snapshot.groups[gi]
                            .id
                            .clone()
                            .unwrap_or_else(|| t.snapshot.groups[gi].name.clone()),
                    ),
                    &t.members[gi],
                ),
                None => {
                    self.actions.push(Action::CreateGroup {
                        group: name.clone(),
                        reason: format!("managed by {}", g.origin),
                        reason_code: group_code,
                    });
                    (None, &empty)
                }
            };
            // Membership tests by stamping: `in_group[ti] == stamp` means "currently a member",
            // `wanted[ti] == stamp` "a member after the plan"; one pass over each list, no sorting.
            stamp += 1;
            for &ti in current {
                in_group[ti as usize] = stamp;
            }
            let mut adds = Vec::new();
            for &(du, reason) in &g.members {
                if self.blocked[du as usize] {
                    continue;
                }
                let d = &self.desired.users[du as usize];
                let id = match self.matched[du as usize] {
                    Some(ti) => {
                        wanted[ti as usize] = stamp;
                        if in_group[ti as usize] == stamp {
                            continue;
                        }
                        let u = t.user(ti);
                        u.in_directory.then(|| u.reference())
                    }
                    None => None,
                };
                adds.push(Member {
                    key: d.key.clone(),
                    id,
                    reason: self.desired.shared_reason(reason),
                    reason_code: self.desired.reason_code(reason),
                });
            }
            let mut removes = Vec::new();
            for &ti in current {
                if wanted[ti as usize] == stamp {
                    continue;
                }
                let u = t.user(ti);
                let (reason_code, reason) = match self.claimed[ti as usize] {
                    Some(du) if self.desired.users[du as usize].scope == Scope::Wanted => {
                        if self.blocked[du as usize] {
                            continue;
                        }
                        (
                            ReasonCode::NoLongerDerived,
                            "no mapping or default group puts them here any more",
                        )
                    }
                    // Deactivated or dropped users keep their memberships, so a reactivation
                    // restores them.
                    Some(_) => continue,
                    // A source left them out: their memberships are not judged without them.
                    None if self.left_out[ti as usize].is_some() => continue,
                    None if self.ctx.manage_unmapped_members => {
                        if self.hands_off(t.key(ti), Some(u)).is_some() {
                            continue;
                        }
                        (
                            ReasonCode::UnmanagedMember,
                            "in no source (groups.manage_unmapped_members)",
                        )
                    }
                    None => continue,
                };
                removes.push(Member {
                    key: t.key(ti).to_string(),
                    id: Some(u.reference()),
                    reason: reason.into(),
                    reason_code,
                });
            }
            if tg.is_some() {
                self.removals
                    .push((name.clone(), current.len() as u64, removes.len() as u64));
            }
            if adds.is_empty() && removes.is_empty() {
                continue;
            }
            adds.sort_by(|a, b| a.key.cmp(&b.key));
            removes.sort_by(|a, b| a.key.cmp(&b.key));
            // The members move into their batches (a plan at scale holds millions of them).
            let n = adds.len().div_ceil(batch);
            let mut adds = adds.into_iter();
            for i in 0..n {
                self.actions.push(Action::AddMembers {
                    group: name.clone(),
                    group_id: group_id.clone(),
                    batch: [i + 1, n],
                    members: adds.by_ref().take(batch).collect(),
                    reason: format!("memberships derived from {}", g.origin),
                    reason_code: group_code,
                });
            }
            let n = removes.len().div_ceil(batch);
            let gid = group_id.clone().unwrap_or_else(|| name.clone());
            let mut removes = removes.into_iter();
            for i in 0..n {
                self.actions.push(Action::RemoveMembers {
                    group: name.clone(),
                    group_id: gid.clone(),
                    batch: [i + 1, n],
                    members: removes.by_ref().take(batch).collect(),
                    reason: format!(
                        "memberships no longer derived ({name} is managed by {})",
                        g.origin
                    ),
                    reason_code: ReasonCode::NoLongerDerived,
                });
            }
        }
    }

    /// The further guards: updates against active users; membership removals against the
    /// current members of the managed groups big enough to count, for the plan and per group.
    fn limits(&self, active: u64) -> Vec<Limit> {
        let updates = self
            .actions
            .iter()
            .filter(|a| matches!(a, Action::UpdateUser { .. }))
            .count() as u64;
        crate::plan::guard::limits(
            self.ctx.rules,
            active,
            updates,
            &self.removals,
            self.ctx.overrides,
        )
    }

    /// Cuts the plan to its scope, if it has one, and says what the cut left out.
    fn cut(&mut self) -> Option<PlanScope> {
        let (scope, filter) = self.scope?;
        let full_actions = self.actions.len();
        let full_changes = Summary::of(&self.actions).total_changes;
        self.actions = filter.cut(
            std::mem::take(&mut self.actions),
            self.ctx.rules.membership_batch,
        );
        self.skipped = filter.skipped(std::mem::take(&mut self.skipped));
        for (name, _, removed) in &mut self.removals {
            *removed = self
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::RemoveMembers { group, members, .. } if group == name => {
                        Some(members.len() as u64)
                    }
                    _ => None,
                })
                .sum();
        }
        let mut s = scope.clone();
        s.left_out = (scope.read == ScopeRead::Full).then(|| scope::LeftOut {
            actions: full_actions - self.actions.len(),
            changes: full_changes - Summary::of(&self.actions).total_changes,
        });
        Some(s)
    }

    fn finish(mut self) -> Plan {
        let scope = self.cut();
        let t = self.target;
        let active = t
            .snapshot
            .users
            .iter()
            .filter(|u| u.in_directory && u.active)
            .count() as u64;
        let deactivations = self
            .actions
            .iter()
            .filter(|a| matches!(a, Action::DeactivateUser { .. }))
            .count() as u64;
        let mut guard = Guard::check(
            self.ctx.rules.deactivation_limit,
            active,
            deactivations,
            self.ctx.overrides.deactivation,
        );
        let mut guards = self.limits(active);
        if let Some(s) = scope.as_ref().filter(|s| s.read == ScopeRead::People) {
            // Only the people named were read, so the target's active users (a percentage's base)
            // are not known; every change is to someone named on purpose, so a percentage allows
            // as many as were named. A count setting applies as configured.
            let named = s.users.len() as u64;
            let rules = self.ctx.rules;
            let o = self.ctx.overrides;
            let widen = |setting: crate::rules::DeactivationLimit, limit: u64| match setting {
                crate::rules::DeactivationLimit::Percent(_) => limit.max(named),
                crate::rules::DeactivationLimit::Count(_) => limit,
            };
            guard.limit = widen(rules.deactivation_limit, guard.limit);
            guard.tripped = guard.deactivations > guard.limit;
            guard.overridden = guard.tripped && o.deactivation;
            for l in &mut guards {
                let (setting, overridden) = match l.kind {
                    LimitKind::Updates => (rules.update_limit, o.update),
                    LimitKind::MembershipRemovals => (rules.removal_limit, o.membership_removal),
                    LimitKind::GroupMembershipRemovals => {
                        (rules.removal_limit_per_group, o.membership_removal)
                    }
                };
                l.limit = widen(setting, l.limit);
                l.tripped = l.count > l.limit;
                l.overridden = l.tripped && overridden;
            }
            guards.retain(|l| l.group.is_none() || l.tripped);
        }
        let preconditions = stale::record(&self.actions, t, self.ctx.cleanup.grace_days > 0);
        let mut warnings = self.warnings;
        if let Some(first) = self.unverified.first() {
            warnings.push(format!(
                "{} user(s) are not created because their email domain is not verified in the organization (e.g. {first}); verify the domain in admin.atlassian.com, or exclude them",
                self.unverified.len()
            ));
        }
        let mut skipped = self.skipped;
        skipped.sort_by(|a, b| a.key.cmp(&b.key));
        let cost = self.ctx.target_concurrency.map(|width| {
            let requests: u64 = self.actions.iter().map(self.ctx.action_requests).sum();
            let mut budgets: Vec<crate::model::RateBudget> = self
                .ctx
                .write_budget
                .iter()
                .map(|(what, per, window_secs)| crate::model::RateBudget {
                    what: what.clone(),
                    requests,
                    per: *per,
                    window_secs: *window_secs,
                })
                .collect();
            budgets.extend(self.ctx.read_budgets.iter().cloned());
            Cost::bounded(requests, width, budgets)
        });
        let mut plan = Plan {
            format_version: FORMAT_VERSION.into(),
            idsync_version: env!("CARGO_PKG_VERSION").into(),
            created_at: Some(self.ctx.now.trunc_subsecs(0)),
            config_hash: self.ctx.config_hash.clone(),
            target: self.ctx.target_name.clone(),
            sources: self.ctx.sources.clone(),
            scope,
            summary: Summary::default(),
            guard,
            guards,
            actions: self.actions,
            warnings,
            blocking: self.blocking,
            skipped,
            preconditions,
            cost,
            digest: String::new(),
            signature: None,
        };
        plan.finish();
        plan
    }
}

/// How a desired user finds their target account, as [`diff`] matches them (for `explain`): by
/// the IdP's immutable id as an in-directory account's `externalId` first, then by email. `None`:
/// no account. (A collision, two desired users on one account, is reported by the plan itself.)
#[must_use]
pub(crate) fn matched_by(du: &DesiredUser, target: &Indexed) -> Option<(u32, &'static str)> {
    let by_ext = du.source_id.as_deref().and_then(|s| {
        target
            .snapshot
            .users
            .iter()
            .position(|u| u.in_directory && u.external_id.as_deref() == Some(s))
    });
    match by_ext {
        Some(i) => Some((idx(i), "externalId")),
        None => target.find(&du.key).map(|i| (i, "email")),
    }
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 4 billion objects")
}

/// Why a wanted user is synced (the reason a create or link gives).
#[must_use]
pub(crate) fn wanted_reason(du: &DesiredUser, rules: &Rules) -> (ReasonCode, String) {
    if rules.require_groups.is_empty() {
        (ReasonCode::InSource, format!("in `{}`", du.source))
    } else {
        (
            ReasonCode::InRequiredGroup,
            format!(
                "in `{}` and a member of a users.require_groups group",
                du.source
            ),
        )
    }
}

/// Why a user out of scope is not wanted (empty for a wanted one).
#[must_use]
pub(crate) fn scope_reason(scope: &Scope, rules: &Rules) -> (ReasonCode, String) {
    match scope {
        Scope::Wanted => (ReasonCode::Unknown, String::new()),
        Scope::Disabled { source } => (
            ReasonCode::DisabledInIdp,
            format!("deactivated or suspended in `{source}`"),
        ),
        Scope::Excluded { pattern } => (
            ReasonCode::ExcludedByRule,
            format!("still in the IdP, but excluded by users.exclude {pattern:?}"),
        ),
        Scope::NotRequired => {
            let mut groups: Vec<&String> = rules.require_groups.iter().collect();
            groups.sort();
            (
                ReasonCode::NotInRequiredGroups,
                format!(
                    "still in the IdP, but in none of users.require_groups ({})",
                    groups
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    }
}

/// The fields of `u` that differ from what `du` wants. A wanted `None` leaves the field alone;
/// emails and user names compare without regard to case.
#[must_use]
pub(crate) fn field_changes(du: &DesiredUser, u: &User, rules: &Rules) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let source = || (ReasonCode::SourceField, format!("from `{}`", du.source));
    let reason = |field: &str| {
        rules
            .templates
            .iter()
            .find(|(attr, _)| attr == field)
            .map_or_else(source, |(attr, t)| {
                (
                    ReasonCode::AttributeTemplate,
                    format!("users.attributes.{attr} template {:?}", t.text),
                )
            })
    };
    let change = |field: &str,
                  from: Option<String>,
                  to: &str,
                  (code, reason): (ReasonCode, String)| FieldChange {
        field: field.into(),
        from,
        to: to.to_string(),
        reason,
        reason_code: code,
    };
    let f = &du.fields;
    if !f.email.eq_ignore_ascii_case(&u.email) {
        out.push(change("email", Some(u.email.clone()), &f.email, source()));
    }
    if let Some(want) = &f.user_name {
        if !want.eq_ignore_ascii_case(u.user_name()) {
            out.push(change(
                "userName",
                Some(u.user_name().to_string()),
                want,
                reason("userName"),
            ));
        }
    }
    if let Some(want) = &f.external_id {
        if u.external_id.as_deref() != Some(want.as_str()) {
            out.push(change(
                "externalId",
                u.external_id.clone(),
                want,
                (
                    ReasonCode::ImmutableId,
                    format!("the immutable id in `{}`, used to match renames", du.source),
                ),
            ));
        }
    }
    for (field, want, have) in [
        ("givenName", &f.given_name, &u.given_name),
        ("familyName", &f.family_name, &u.family_name),
        ("displayName", &f.display_name, &u.display_name),
    ] {
        if let Some(w) = want {
            if have.as_deref() != Some(w.as_str()) {
                out.push(change(field, have.clone(), w, reason(field)));
            }
        }
    }
    for (k, w) in &f.attributes {
        if u.attributes.get(k) != Some(w) {
            out.push(change(k, u.attributes.get(k).cloned(), w, reason(k)));
        }
    }
    out
}
