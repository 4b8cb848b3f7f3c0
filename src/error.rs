//! The top-level error: what went wrong, where, and (through [`Error::hint`]) what to do.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::model::SnapshotError;
use crate::plan::guard::OVERRIDE_FLAG;
use crate::snapshot_file::SnapshotFileError;
use crate::sources::SourceError;
use crate::targets::TargetError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("source `{name}` could not be read completely; nothing was planned")]
    Source {
        name: String,
        #[source]
        source: SourceError,
    },
    #[error("source `{name}` is not usable: {source}")]
    SourceData {
        name: String,
        #[source]
        source: SnapshotError,
    },
    #[error("target {name} could not be read completely; nothing was planned")]
    Target {
        name: String,
        #[source]
        source: TargetError,
    },
    #[error("cannot set up the target: {0}")]
    TargetSetup(#[source] TargetError),
    #[error("target {name} is not usable: {source}")]
    TargetData {
        name: String,
        #[source]
        source: SnapshotError,
    },
    #[error("the plan deactivates {deactivations} user(s); cleanup.max_deactivations ({setting}, with {active} active users) allows at most {limit}")]
    Guard {
        deactivations: u64,
        limit: u64,
        setting: String,
        active: u64,
    },
    #[error(
        "the config refers to IdP groups it does not name uniquely; nothing was planned:{}",
        list(problems)
    )]
    GroupReferences { problems: Vec<String> },
    #[error(
        "the plan's scope names what is not there; nothing was planned:{}",
        list(problems)
    )]
    Scope { problems: Vec<String> },
    #[error("the plan trips its guards:{}", list(problems))]
    Limits {
        problems: Vec<String>,
        flags: Vec<&'static str>,
    },
    #[error("the plan cannot be applied:{}", list(problems))]
    Blocked { problems: Vec<String> },
    #[error(
        "stale plan: the target or the config changed since the plan was made{}",
        list(reasons)
    )]
    StalePlan { reasons: Vec<String> },
    #[error("the plan file {} was changed after it was made, and is refused:{}", path.display(), list(reasons))]
    PlanEdited { path: PathBuf, reasons: Vec<String> },
    #[error("cannot sign or check plans: {0}")]
    PlanKey(String),
    #[error(transparent)]
    Lock(#[from] crate::apply::lock::LockError),
    #[error("apply interrupted: {done} of {total} action(s) done, {not_started} not started{}", if *written { "" } else { "; the target was left as it was" })]
    Interrupted {
        done: usize,
        total: usize,
        not_started: usize,
        written: bool,
        resume: String,
    },
    #[error("refusing to apply without confirmation: standard input is not a terminal")]
    NotATerminal,
    #[error("apply cancelled: only 'yes' is accepted")]
    Declined,
    #[error(transparent)]
    Journal(#[from] crate::apply::journal::JournalError),
    #[error("cannot use plan file {}: {reason}", path.display())]
    PlanFile { path: PathBuf, reason: String },
    #[error(
        "cannot use plan file {}: plan format {found} is {} than this idsync reads (idsync {} reads plan formats {}.x); the plan was made by idsync {made_by}",
        path.display(),
        if *newer { "newer" } else { "older" },
        env!("CARGO_PKG_VERSION"),
        crate::plan::FORMAT_MAJOR
    )]
    PlanFormat {
        path: PathBuf,
        found: String,
        made_by: String,
        newer: bool,
    },
    #[error("the plan file {} cannot be trusted: {reason}", path.display())]
    PlanUntrusted { path: PathBuf, reason: String },
    #[error("no source named `{name}`; sources are: {known}")]
    UnknownSource { name: String, known: String },
    #[error("this config has {count} sources; say which with --source NAME ({known})")]
    WhichSource { count: usize, known: String },
    #[error(transparent)]
    Write(#[from] SnapshotFileError),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("{failed} of {total} action(s) failed; see the messages above{}", if *written { "" } else { " (the target was left unchanged)" })]
    ApplyFailed {
        failed: usize,
        total: usize,
        written: bool,
    },
    #[error("{name} is not usable: {reason}")]
    BadEnv {
        name: &'static str,
        reason: String,
        hint: &'static str,
    },
    #[error("{flag} {}: the folder {} does not exist; nothing was changed", path.display(), dir.display())]
    NoFolder {
        flag: &'static str,
        path: PathBuf,
        dir: PathBuf,
    },
    #[error("target {name}: the changes could not be saved; the target was left as it was")]
    Finish {
        name: String,
        #[source]
        source: TargetError,
    },
}

/// Lists at most 20 items, one per line, then a count of the rest.
fn list(items: &[String]) -> String {
    const MAX: usize = 20;
    let mut s: String = items
        .iter()
        .take(MAX)
        .map(|i| format!("\n  - {i}"))
        .collect();
    if items.len() > MAX {
        s.push_str(&format!("\n  - … and {} more", items.len() - MAX));
    }
    s
}

impl Error {
    /// What the user can do about it.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Config(e) => return e.hint(),
            Error::Source { .. } => {
                "fix the source and run again; a source that cannot be read never counts as \"these users are gone\"".into()
            }
            Error::Guard { .. } => format!(
                "review the deactivations above; if they are intended, run again with {OVERRIDE_FLAG}, or raise cleanup.max_deactivations"
            ),
            Error::GroupReferences { .. } => {
                "refer to the group you mean by its immutable id, `SOURCE:id:ID` (in `groups:` of a connector, `id:ID`), or rename one of the groups in the IdP".into()
            }
            Error::Scope { .. } => {
                "check the spelling: a user is named by email (any case; --only-user also takes `*` and `?` wildcards) and must be in a source or the target; --only-group takes the name of an Atlassian group the config maps or lists in groups.default_groups".into()
            }
            Error::Limits { flags, .. } => format!(
                "review the changes above; if they are intended, run again with {}, or raise the cleanup setting named",
                flags.join(" and ")
            ),
            Error::Blocked { .. } => {
                "fix what is listed (in the config or the identity provider), then plan again".into()
            }
            Error::StalePlan { .. } => {
                "run `idsync plan --out FILE` again, review it, and apply the new plan".into()
            }
            Error::NotATerminal => {
                "review the plan, then run `idsync apply --auto-approve`, or save it with `idsync plan --out plan.json` and apply that file".into()
            }
            Error::PlanFile { .. } => "make a plan with `idsync plan --out plan.json`".into(),
            Error::PlanFormat { made_by, newer: true, .. } => format!(
                "use idsync {made_by} (or a later idsync that reads its format) to show or apply it"
            ),
            Error::PlanFormat { made_by, newer: false, .. } => format!(
                "make the plan again with this idsync (`idsync plan --out FILE`), or use idsync {made_by} to show or apply it"
            ),
            Error::PlanUntrusted { .. } => {
                "it is shown above, marked; `apply` refuses it. Make the plan again with `idsync plan --out FILE` (with the same IDSYNC_PLAN_KEY as the apply) and review that".into()
            }
            Error::Journal(e) => e.hint(),
            Error::PlanEdited { .. } => {
                "apply only plans as idsync wrote them: make the plan again with `idsync plan --out FILE`, review it, and apply that file".into()
            }
            Error::PlanKey(_) => format!(
                "{} must hold the same key when the plan is made and when it is applied",
                crate::plan::KEY_VAR
            ),
            Error::Lock(_) => {
                "wait for the other apply to finish, then run again (its lock is released when it exits, even if it crashes)".into()
            }
            Error::Interrupted { resume, .. } => resume.clone(),
            Error::WhichSource { .. } | Error::UnknownSource { .. } => {
                "pass --source NAME with one of the names above".into()
            }
            Error::BadEnv { hint, .. } => (*hint).to_string(),
            Error::NoFolder { .. } => "create the folder first, or name a file in one that exists".into(),
            Error::ApplyFailed { .. } => {
                "fix what the messages name, then plan and apply again: what was done will not be redone".into()
            }
            _ => return None,
        })
    }
}
