//! Renderings of one [`Plan`] value: text for terminals, markdown for pull requests, JSON for machines
//! (the saved-plan format). All three draw the same value, so they cannot disagree.

mod field_diff;
mod markdown;
pub mod saved;
mod summary;
mod text;

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::plan::{Action, DeactivateCause, Kind, Plan};

pub use markdown::{
    failure as failure_markdown, MarkdownOptions, MARKDOWN_LIMIT, MARKDOWN_LIMIT_MIN,
};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// Draws a plan.
///
/// # Errors
/// Writing to `out` failed.
pub fn render(plan: &Plan, format: Format, color: bool, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::render(plan, color, out),
        Format::Markdown => {
            out.write_all(markdown::render(plan, &MarkdownOptions::default()).as_bytes())
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, plan)?;
            out.write_all(b"\n")
        }
    }
}

/// Draws a plan as markdown, with a limit other than GitHub's and the plan file the elision notes
/// point to.
#[must_use]
pub fn markdown(plan: &Plan, opts: &MarkdownOptions) -> String {
    markdown::render(plan, opts)
}

/// A section of a plan as reviewers read it: a kind of action, with deactivations split by cause so
/// that users dropped by a rule stand apart from users gone from the IdP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    Kind(Kind),
    Deactivate(DeactivateCause),
}

impl Section {
    pub(crate) fn of(a: &Action) -> Section {
        match a {
            Action::DeactivateUser { cause, .. } => Section::Deactivate(*cause),
            other => Section::Kind(other.kind()),
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Section::Kind(Kind::CreateUser) => "Users to create",
            Section::Kind(Kind::LinkUser) => "Accounts to link into the SCIM directory",
            Section::Kind(Kind::CreateGroup) => "Groups to create",
            Section::Kind(Kind::AddMembers) => "Memberships to add",
            Section::Kind(Kind::UpdateUser) => "Users to update",
            Section::Kind(Kind::ReactivateUser) => "Users to reactivate",
            Section::Kind(Kind::RemoveMembers) => "Memberships to remove",
            Section::Kind(Kind::RevokeApiTokens) => "API tokens to revoke (deactivated accounts)",
            Section::Kind(Kind::DeactivateUser)
            | Section::Deactivate(DeactivateCause::GoneFromSources) => {
                "Users to deactivate: gone from every source"
            }
            Section::Deactivate(DeactivateCause::OutOfScope) => {
                "Users to deactivate: still in the IdP, dropped by a rule"
            }
            Section::Deactivate(DeactivateCause::DisabledInSource) => {
                "Users to deactivate: deactivated in the IdP"
            }
        }
    }

    pub(crate) fn sign(self) -> char {
        match self {
            Section::Kind(
                Kind::CreateUser
                | Kind::LinkUser
                | Kind::CreateGroup
                | Kind::AddMembers
                | Kind::ReactivateUser,
            ) => '+',
            Section::Kind(Kind::UpdateUser) => '~',
            _ => '-',
        }
    }
}

/// The plan's actions grouped into sections, in application order (deactivations by cause).
pub(crate) fn sections(plan: &Plan) -> Vec<(Section, Vec<&Action>)> {
    let mut out: Vec<(Section, Vec<&Action>)> = Vec::new();
    let mut deact: Vec<(DeactivateCause, &Action)> = Vec::new();
    // Revocations follow the deactivations, as they are applied.
    let mut revokes: Vec<&Action> = Vec::new();
    for a in &plan.actions {
        if let Action::DeactivateUser { cause, .. } = a {
            deact.push((*cause, a));
            continue;
        }
        if let Action::RevokeApiTokens { .. } = a {
            revokes.push(a);
            continue;
        }
        let s = Section::of(a);
        match out.last_mut() {
            Some((last, v)) if *last == s => v.push(a),
            _ => out.push((s, vec![a])),
        }
    }
    deact.sort_by_key(|(c, _)| std::cmp::Reverse(*c));
    for (c, a) in deact {
        let s = Section::Deactivate(c);
        match out.last_mut() {
            Some((last, v)) if *last == s => v.push(a),
            _ => out.push((s, vec![a])),
        }
    }
    if !revokes.is_empty() {
        out.push((Section::Kind(Kind::RevokeApiTokens), revokes));
    }
    out
}

/// One line saying what the plan does, Terraform style: the changes, riskiest first, counts that are
/// zero left out. The same words as the outcome line on stderr (without its verdict).
#[must_use]
pub fn headline(plan: &Plan) -> String {
    if !plan.has_changes() {
        if let Some(s) = &plan.scope {
            return format!(
                "No changes for {} (a partial plan: it says nothing about the rest of the target).",
                s.describe()
            );
        }
        return "No changes. The target matches the desired state.".into();
    }
    changes_line(plan)
}

/// For a partial plan, the line that says so (first in every rendering).
#[must_use]
pub fn scope_line(plan: &Plan) -> Option<String> {
    plan.scope.as_ref().map(crate::plan::scope::Scope::line)
}

/// For a drift check (`--detailed-exitcode`) of a partial plan: what its exit code covers.
#[must_use]
pub fn drift_note(plan: &Plan) -> Option<String> {
    plan.scope.as_ref().map(|s| {
        let code = if plan.has_changes() {
            "exit 2: drift within that scope"
        } else {
            "exit 0: no drift within that scope, which does not mean the target has none"
        };
        format!(
            "this was a partial plan ({}): its exit code covers only that scope ({code}); the rest of the target was not compared, so run a full `idsync plan --detailed-exitcode` for a drift check",
            s.describe(),
        )
    })
}

/// The plan's outcome in one line, for stderr whatever stdout carries: what it changes, riskiest
/// first, counts that are zero left out; and, when it cannot be applied, why.
#[must_use]
pub fn outcome_line(plan: &Plan) -> String {
    let mut line = changes_line(plan);
    if let Some(s) = &plan.scope {
        line = format!("Partial plan, only {}. {line}", s.describe());
    }
    if !plan.blocking.is_empty() {
        line.push_str(" BLOCKED: it cannot be applied (see the error below).");
    } else {
        let mut flags = Vec::new();
        if plan.guard.blocks() {
            flags.push(crate::plan::guard::OVERRIDE_FLAG);
        }
        for l in plan.blocking_limits() {
            if !flags.contains(&l.kind.flag()) {
                flags.push(l.kind.flag());
            }
        }
        if !flags.is_empty() {
            let _ = write!(
                line,
                " GUARD TRIPPED: it cannot be applied without {}.",
                flags.join(" and ")
            );
        }
    }
    line
}

/// `Plan: 3 to deactivate, …, 5 memberships to add.`: riskiest first, zero counts left out.
fn changes_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let parts: Vec<String> = [
        (
            s.deactivate_user,
            n(s.deactivate_user, "to deactivate", "to deactivate"),
        ),
        (
            s.revoke_api_tokens,
            format!(
                "API tokens of {} to revoke",
                n(s.revoke_api_tokens, "account", "accounts")
            ),
        ),
        (
            s.members_removed,
            n(
                s.members_removed,
                "membership to remove",
                "memberships to remove",
            ),
        ),
        (s.update_user, n(s.update_user, "to update", "to update")),
        (
            s.reactivate_user,
            n(s.reactivate_user, "to reactivate", "to reactivate"),
        ),
        (s.link_user, n(s.link_user, "to link", "to link")),
        (s.create_user, n(s.create_user, "to create", "to create")),
        (
            s.create_group,
            n(s.create_group, "group to create", "groups to create"),
        ),
        (
            s.members_added,
            n(s.members_added, "membership to add", "memberships to add"),
        ),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(_, part)| part)
    .collect();
    if parts.is_empty() {
        "Plan: no changes.".to_string()
    } else {
        format!("Plan: {}.", parts.join(", "))
    }
}

/// The cost line: requests apply will make and how long they should take.
#[must_use]
pub fn cost_line(plan: &Plan) -> Option<String> {
    plan.cost.as_ref().map(cost_text)
}

/// The cost line of an estimate: what bounds it, latency or a rate budget.
#[must_use]
pub fn cost_text(c: &crate::plan::Cost) -> String {
    let Some(b) = &c.bound_by else {
        return format!(
            "Cost: apply will make about {} request(s), {} at a time: about {} s (retries and throttling come on top).",
            c.requests, c.concurrency, c.expected_seconds
        );
    };
    let window = match b.window_secs {
        60 => "a minute".to_string(),
        3_600 => "an hour".to_string(),
        n => format!("{n} s"),
    };
    format!(
        "Cost: apply will make about {} request(s), {} at a time: at least {} s, bound by a rate budget ({}: {} request(s) at {} per {window}); the requests' latency alone would take about {} s (retries and throttling come on top).",
        c.requests,
        c.concurrency,
        c.expected_seconds,
        b.what,
        b.requests,
        b.per,
        c.latency_seconds()
    )
}

/// The guard's state in words.
#[must_use]
pub fn guard_line(plan: &Plan) -> String {
    let g = &plan.guard;
    let people = plan
        .scope
        .as_ref()
        .filter(|s| s.read == crate::plan::scope::ScopeRead::People)
        .filter(|_| g.setting.ends_with('%'));
    let base = match people {
        // A read of some people does not know the target's active users; see `diff_scoped`.
        Some(s) => format!(
            "{} deactivation(s), at most {} allowed (cleanup.max_deactivations: {}; only the {} person(s) named were read, not the whole target ({} active account(s) among them), so each of them may be deactivated)",
            g.deactivations,
            g.limit,
            g.setting,
            s.users.len(),
            g.active_users
        ),
        None => format!(
            "{} deactivation(s), at most {} allowed (cleanup.max_deactivations: {}, {} active user(s))",
            g.deactivations, g.limit, g.setting, g.active_users
        ),
    };
    if g.overridden {
        format!("GUARD OVERRIDDEN: {base} (--allow-mass-deactivation)")
    } else if g.tripped {
        format!(
            "GUARD TRIPPED: {base}; this plan cannot be applied without --allow-mass-deactivation"
        )
    } else {
        format!("Guard: {base}")
    }
}

/// Every guard's state in words, the deactivation guard first, each with whether it tripped.
#[must_use]
pub fn guard_lines(plan: &Plan) -> Vec<(String, bool)> {
    let mut out = vec![(guard_line(plan), plan.guard.tripped)];
    for l in &plan.guards {
        let base = l.describe();
        let flag = l.kind.flag();
        let line = if l.overridden {
            format!("GUARD OVERRIDDEN: {base} ({flag})")
        } else if l.tripped {
            format!("GUARD TRIPPED: {base}; this plan cannot be applied without {flag}")
        } else {
            format!("Guard: {base}")
        };
        out.push((line, l.tripped));
    }
    out
}

/// How many API tokens a revocation covers, as the renderings say it.
fn tokens_held(tokens: Option<usize>) -> String {
    tokens.map_or_else(
        || "tokens listed when applied".into(),
        |n| format!("{n} token(s)"),
    )
}
