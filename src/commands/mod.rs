//! The subcommands. Each returns an [`ExitStatus`] or an [`Error`]; nothing else decides exit codes.

mod apply;
mod plan;
mod show;
mod snapshot;
mod validate;

use chrono::{DateTime, Utc};

use crate::cli::{Cli, Command};
use crate::config::{self, Loaded};
use crate::desired::{self, SourceData};
use crate::diff::{self, Context};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::model::{GroupNames, Indexed};
use crate::output::Printer;
use crate::plan::{Overrides, Plan};
use crate::progress::Phase;
use crate::target::{self, Target};
use crate::{sources, Config};

/// Runs the command line.
///
/// # Errors
/// Whatever the command met; the caller prints it and exits 1.
pub async fn run(cli: Cli, printer: Printer) -> Result<ExitStatus, Error> {
    crate::progress::install(printer);
    match cli.command {
        Command::Validate {
            config,
            offline,
            format,
        } => validate::run(&printer, &config.config, offline, format),
        Command::Plan {
            config,
            out,
            format,
            detailed_exitcode,
            markdown_limit,
            guards,
        } => {
            plan::run(
                &printer,
                &config.config,
                out.as_deref(),
                format,
                detailed_exitcode,
                guards.overrides(),
                markdown_limit as usize,
            )
            .await
        }
        Command::Apply {
            config,
            plan,
            auto_approve,
            report,
            guards,
        } => {
            apply::run(
                &printer,
                &config.config,
                plan.as_deref(),
                auto_approve,
                report.as_deref(),
                guards.overrides(),
            )
            .await
        }
        Command::Show {
            plan,
            format,
            detailed_exitcode,
            markdown_limit,
        } => show::run(
            &printer,
            &plan,
            format,
            detailed_exitcode,
            markdown_limit as usize,
        ),
        Command::Snapshot {
            config,
            side,
            source,
            out,
        } => {
            snapshot::run(
                &printer,
                &config.config,
                side,
                source.as_deref(),
                out.as_deref(),
            )
            .await
        }
        Command::Schema { plan } => {
            let schema = if plan {
                Plan::json_schema()
            } else {
                Config::json_schema()
            };
            let mut out = printer.stdout();
            serde_json::to_writer_pretty(&mut out, &schema).map_err(std::io::Error::from)?;
            use std::io::Write;
            writeln!(out)?;
            out.flush()?;
            Ok(ExitStatus::Success)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = printer.stdout();
            clap_complete::generate(shell, &mut cmd, "idsync", &mut out);
            use std::io::Write;
            out.flush()?;
            Ok(ExitStatus::Success)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = printer.stdout();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            use std::io::Write;
            out.flush()?;
            Ok(ExitStatus::Success)
        }
    }
}

/// Reads a saved plan of a format this idsync reads (see [`crate::plan::FORMAT_VERSION`]).
///
/// # Errors
/// The file cannot be read, is not a plan, or is of a major format version this idsync does not read.
pub(crate) fn read_plan(path: &std::path::Path) -> Result<crate::plan::file::Saved, Error> {
    use crate::plan::file::ReadError;
    crate::plan::file::read(path).map_err(|e| match e {
        ReadError::OtherMajor {
            found,
            made_by,
            newer,
        } => Error::PlanFormat {
            path: path.to_path_buf(),
            found,
            made_by,
            newer,
        },
        other => Error::PlanFile {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
}

/// Loads a config and prints its warnings (a credential file others can read).
pub(crate) fn load(printer: &Printer, path: &std::path::Path) -> Result<Loaded, Error> {
    let loaded = config::load(path)?;
    for w in &loaded.warnings {
        printer.warn(w);
    }
    Ok(loaded)
}

/// Checks, before anything changes, that the folder a file is to be written into exists.
pub(crate) fn check_writable_folder(
    path: &std::path::Path,
    flag: &'static str,
) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::NoFolder {
            flag,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        })
    }
}

/// The moment plans measure grace periods from: `IDSYNC_NOW` (RFC 3339) when set, for reproducible
/// plans, else the clock.
///
/// # Errors
/// `IDSYNC_NOW` is set but is not an RFC 3339 moment.
pub(crate) fn now() -> Result<DateTime<Utc>, Error> {
    match std::env::var("IDSYNC_NOW") {
        Err(std::env::VarError::NotPresent) => Ok(Utc::now()),
        Ok(s) if s.trim().is_empty() => Ok(Utc::now()),
        Ok(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Error::BadEnv {
                name: "IDSYNC_NOW",
                reason: format!("{s:?} is not an RFC 3339 moment ({e})"),
                hint: "e.g. IDSYNC_NOW=2026-10-01T12:00:00Z, or unset it to use the clock",
            }),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::BadEnv {
            name: "IDSYNC_NOW",
            reason: "it is not valid UTF-8".into(),
            hint: "e.g. IDSYNC_NOW=2026-10-01T12:00:00Z, or unset it to use the clock",
        }),
    }
}

/// A plan and the target it was made against.
pub struct Planned {
    pub plan: Plan,
    pub target: Box<dyn Target>,
    pub target_users: usize,
    /// The target as it was read for the plan.
    pub snapshot: Indexed,
}

/// Reads every source and the target, and computes the plan as of `now`.
///
/// # Errors
/// A source or the target could not be read completely, or holds duplicates.
pub async fn make_plan(
    loaded: &Loaded,
    printer: &Printer,
    now: DateTime<Utc>,
    overrides: Overrides,
) -> Result<Planned, Error> {
    let clock = std::time::Instant::now();
    let lap = |what: &str| {
        printer.detail(&format!(
            "{:>8.1} ms  {what}",
            clock.elapsed().as_secs_f64() * 1000.0
        ))
    };
    // Every source and the target are read and indexed at once: over HTTP the waits overlap, and
    // parsing large snapshot files uses every core.
    let reads = loaded.config.sources.iter().map(|sc| async {
        let name = sc.name().to_string();
        let source = sources::build(sc, &loaded.dir).map_err(|e| Error::Source {
            name: name.clone(),
            source: e,
        })?;
        printer.progress(&format!("reading source {name}…"));
        let phase = Phase::reading(&format!("reading source {name}"));
        let snap = phase
            .scope(source.snapshot_resolving())
            .await
            .map_err(|e| Error::Source {
                name: name.clone(),
                source: e,
            })?;
        phase.finish();
        lap(&format!("read source {name}"));
        let indexed = index(snap, GroupNames::MayRepeat)
            .await
            .map_err(|e| Error::SourceData {
                name: name.clone(),
                source: e,
            })?;
        lap(&format!(
            "indexed source {name}: {} users, {} groups",
            indexed.keys.len(),
            indexed.snapshot.groups.len()
        ));
        Ok::<_, Error>(SourceData {
            name,
            data: indexed,
        })
    });
    let mut target = target::build(&loaded.config, &loaded.dir).map_err(Error::TargetSetup)?;
    let name = target.name();
    let read_target = async {
        printer.progress(&format!("reading target {name}…"));
        let phase = Phase::reading(&format!("reading target {name}"));
        let snap = phase
            .scope(target.snapshot_resolving())
            .await
            .map_err(|e| Error::Target {
                name: name.clone(),
                source: e,
            })?;
        phase.finish();
        lap(&format!("read target {name}"));
        let indexed = index_target(snap).await.map_err(|e| Error::TargetData {
            name: name.clone(),
            source: e,
        })?;
        lap(&format!(
            "indexed target {name}: {} users, {} groups",
            indexed.keys.len(),
            indexed.snapshot.groups.len()
        ));
        Ok::<_, Error>(indexed)
    };
    let (mut data, indexed) =
        tokio::try_join!(futures_util::future::try_join_all(reads), read_target)?;
    let desired = desired::build(&mut data, &loaded.rules)
        .map_err(|problems| Error::GroupReferences { problems })?;
    lap("desired state");
    let sources_read = loaded
        .config
        .sources
        .iter()
        .zip(&data)
        .map(|(sc, d)| crate::plan::SourceRead {
            name: d.name.clone(),
            kind: sc.type_name().into(),
            users: d.data.keys.len(),
            groups: d.data.snapshot.groups.len(),
            left_out: d.data.snapshot.skipped.len(),
        })
        .collect();
    // The diff needs only the desired state and the target: the sources' users and groups go now,
    // before the plan is made (at a million users they are a gigabyte).
    drop(data);
    lap("freed the sources");
    let ctx = Context {
        rules: &loaded.rules,
        cleanup: &loaded.config.cleanup,
        manage_unmapped_members: loaded.config.groups.manage_unmapped_members,
        now,
        overrides,
        config_hash: loaded.hash.clone(),
        target_name: name,
        target_concurrency: (!matches!(loaded.config.target, crate::config::TargetConfig::File(_)))
            .then(|| target.concurrency()),
        last_active_lag: target.last_active_lag(),
        target_warnings: target.warnings(),
        sources: sources_read,
    };
    let mut plan = diff::diff(&desired, &indexed, &ctx);
    lap("diff");
    drop(desired);
    lap("freed the desired state");
    plan.seal(
        crate::plan::key_from_env()
            .map_err(Error::PlanKey)?
            .as_deref(),
    );
    lap("sealed");
    Ok(Planned {
        plan,
        target,
        target_users: indexed.keys.len(),
        snapshot: indexed,
    })
}

/// Indexes a snapshot on a blocking thread.
async fn index(
    snap: crate::model::Resolving,
    names: GroupNames,
) -> Result<Indexed, crate::model::SnapshotError> {
    tokio::task::spawn_blocking(move || Indexed::resolved(snap, names))
        .await
        .expect("indexing does not panic")
}

/// Indexes a target's snapshot on a blocking thread (groups sharing a name set apart).
async fn index_target(
    snap: crate::model::Resolving,
) -> Result<Indexed, crate::model::SnapshotError> {
    tokio::task::spawn_blocking(move || Indexed::resolved_target(snap))
        .await
        .expect("indexing does not panic")
}

/// Whatever stops a plan from being saved or applied: blocking problems, then the guard.
pub(crate) fn refusal(plan: &Plan) -> Option<Error> {
    if !plan.blocking.is_empty() {
        return Some(Error::Blocked {
            problems: plan.blocking.clone(),
        });
    }
    let tripped: Vec<&crate::plan::Limit> = plan.blocking_limits().collect();
    if tripped.is_empty() {
        return plan.guard.blocks().then(|| guard_error(plan));
    }
    // Every tripped guard at once, so that one run says every flag it needs.
    let mut problems = Vec::new();
    let mut flags = Vec::new();
    if plan.guard.blocks() {
        problems.push(guard_error(plan).to_string());
        flags.push(crate::plan::guard::OVERRIDE_FLAG);
    }
    for l in tripped {
        problems.push(l.describe());
        if !flags.contains(&l.kind.flag()) {
            flags.push(l.kind.flag());
        }
    }
    Some(Error::Limits { problems, flags })
}

/// The guard's verdict as an error.
pub(crate) fn guard_error(plan: &Plan) -> Error {
    let g = &plan.guard;
    Error::Guard {
        deactivations: g.deactivations,
        limit: g.limit,
        setting: g.setting.clone(),
        active: g.active_users,
    }
}
