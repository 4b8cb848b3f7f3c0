//! What `idsync show` adds around a saved plan: where it came from, whether it is as idsync wrote
//! it, and the one-line-per-kind summary.

use std::io::{self, Write};

use crate::plan::{Kind, Plan, KEY_VAR};

/// Whether a saved plan is as idsync wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seal {
    /// The digest matches; `signed` says whether it carries a signature, `checked` whether that was
    /// checked (and held) against `IDSYNC_PLAN_KEY`.
    Intact { signed: bool, checked: bool },
    /// The digest or the signature does not hold: why.
    Broken(String),
}

impl Seal {
    fn describe(&self) -> String {
        match self {
            Seal::Intact {
                signed: false,
                checked: false,
            } => "digest matches the content; not signed".into(),
            Seal::Intact {
                signed: true,
                checked: false,
            } => format!("digest matches the content; signed, but {KEY_VAR} is not set here, so the signature was not checked"),
            Seal::Intact { checked: true, .. } => {
                format!("digest matches the content; signature valid for {KEY_VAR}")
            }
            Seal::Broken(why) => format!("CANNOT BE TRUSTED: {why}"),
        }
    }
}

/// The warning put before a plan that is not as idsync wrote it, in plain text.
#[must_use]
pub fn broken_banner(why: &str) -> String {
    format!(
        "!!! THIS PLAN FILE CANNOT BE TRUSTED: {why}.\n!!! What follows may not be what idsync planned; `idsync apply` refuses this file.\n"
    )
}

/// The same warning in markdown.
#[must_use]
pub fn broken_banner_markdown(why: &str) -> String {
    format!(
        "> [!CAUTION]\n> **This plan file cannot be trusted:** {why}. What follows may not be what idsync planned; `idsync apply` refuses this file.\n\n"
    )
}

/// Where a saved plan came from: when and by which idsync it was made, for which target, from which
/// sources, and whether its seal holds.
///
/// # Errors
/// Writing to `out` failed.
pub fn provenance(plan: &Plan, file: &str, seal: &Seal, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "Saved plan {file}")?;
    let made = plan.created_at.map_or_else(
        || "at a time not recorded".to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    );
    writeln!(
        out,
        "  made {made} by idsync {}, plan format {}",
        plan.idsync_version, plan.format_version
    )?;
    writeln!(out, "  target {}", plan.target)?;
    if plan.sources.is_empty() {
        writeln!(out, "  sources not recorded (plan format 2.0)")?;
    }
    for s in &plan.sources {
        writeln!(
            out,
            "  source {} ({}): {} user(s), {} group(s), {} record(s) left out",
            s.name, s.kind, s.users, s.groups, s.left_out
        )?;
    }
    if let Some(s) = &plan.scope {
        writeln!(out, "  partial: only {}", s.describe())?;
    }
    writeln!(out, "  {}", seal.describe())?;
    writeln!(out)
}

/// One line per kind of action with its count (memberships for `add_members` and
/// `remove_members`), the total, the guard lines, and the counts of warnings, users left alone and
/// blocking problems.
///
/// # Errors
/// Writing to `out` failed.
pub fn summary(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    if let Some(line) = super::scope_line(plan) {
        writeln!(out, "{line}")?;
    }
    for kind in Kind::ALL {
        writeln!(out, "{}: {}", kind.as_str(), plan.summary.count(kind))?;
    }
    writeln!(out, "total: {}", plan.summary.total_changes)?;
    for (line, _) in super::guard_lines(plan) {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "warnings: {}", plan.warnings.len())?;
    writeln!(out, "left alone: {}", plan.skipped.len())?;
    writeln!(out, "blocking: {}", plan.blocking.len())?;
    for b in &plan.blocking {
        writeln!(out, "BLOCKED: {b}")?;
    }
    Ok(())
}
