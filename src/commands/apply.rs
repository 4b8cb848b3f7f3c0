//! `idsync apply [PLAN_FILE]`.

use std::io::IsTerminal;
use std::path::Path;

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::apply::journal::{self, Journal, Progress};
use crate::apply::{self, confirm};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::model::Indexed;
use crate::output::Printer;
use crate::plan::{stale, Action, Plan, FORMAT_VERSION};
use crate::render::{self, Format};
use crate::report::Report;
use crate::snapshot_file;
use crate::target::{self, Target};

pub(crate) async fn run(
    printer: &Printer,
    config_path: &Path,
    plan_file: Option<&Path>,
    auto_approve: bool,
    report: Option<&Path>,
    overrides: crate::plan::Overrides,
) -> Result<ExitStatus, Error> {
    let now = super::now()?;
    if let Some(path) = report {
        super::check_writable_folder(path, "--report")?;
    }
    let loaded = super::load(printer, config_path)?;
    let mut resume: Option<(&Path, String, Progress)> = None;
    let (plan, mut target, target_users) = match plan_file {
        Some(path) => {
            let (plan, sha256) = read_plan(path)?;
            let progress = Progress::read(path, &sha256)?;
            if progress.complete {
                printer.info(&format!(
                    "{} was already applied completely (see {}); make a new plan for further changes.",
                    path.display(),
                    journal::path_for(path).display()
                ));
                return Ok(ExitStatus::Success);
            }
            if plan.config_hash != loaded.hash {
                return Err(Error::StalePlan {
                    reasons: vec![format!(
                        "the config file {} changed since the plan was made",
                        loaded.path.display()
                    )],
                });
            }
            let mut target =
                target::build(&loaded.config, &loaded.dir).map_err(Error::TargetSetup)?;
            let name = target.name();
            if name != plan.target {
                return Err(Error::StalePlan {
                    reasons: vec![format!(
                        "the plan is for {}, the config names {name}",
                        plan.target
                    )],
                });
            }
            let snap = target.snapshot().await.map_err(|e| Error::Target {
                name: name.clone(),
                source: e,
            })?;
            let indexed =
                Indexed::new_target(snap).map_err(|e| Error::TargetData { name, source: e })?;
            // Objects an interrupted run of this plan had started to change are expected to differ.
            let expected: HashSet<String> = progress
                .started
                .iter()
                .filter_map(|&i| plan.actions.get(i).map(Action::touches))
                .collect();
            let now = stale::current(&plan.fingerprints, &indexed);
            let changed = stale::changes(&plan.fingerprints, &now, &indexed, &expected);
            if !changed.is_empty() {
                return Err(Error::StalePlan { reasons: changed });
            }
            if !progress.done.is_empty() {
                printer.info(&format!(
                    "Resuming: {} of {} action(s) were done by an earlier run of this plan (journal {}).",
                    progress.done.len(),
                    plan.actions.len(),
                    journal::path_for(path).display()
                ));
            }
            resume = Some((path, sha256, progress));
            if let Some(e) = super::refusal(&plan) {
                return Err(e);
            }
            printer.info(&format!("{}: {}", path.display(), render::headline(&plan)));
            let users = indexed.keys.len();
            (plan, target, users)
        }
        None => {
            let planned = super::make_plan(&loaded, printer, now, overrides).await?;
            let mut stdout = printer.stdout();
            render::render(&planned.plan, Format::Text, printer.color, &mut stdout)?;
            std::io::Write::flush(&mut stdout)?;
            if let Some(e) = super::refusal(&planned.plan) {
                return Err(e);
            }
            (planned.plan, planned.target, planned.target_users)
        }
    };
    if !plan.has_changes() {
        printer.info("No changes to apply.");
        return Ok(ExitStatus::Success);
    }
    for w in &plan.warnings {
        printer.warn(w);
    }
    if !auto_approve {
        if !std::io::stdin().is_terminal() {
            return Err(Error::NotATerminal);
        }
        printer.prompt(&confirm::prompt(plan.summary.total_changes));
        if !confirm::answer(&mut std::io::stdin().lock())? {
            return Err(Error::Declined);
        }
    }
    execute(
        printer,
        &plan,
        target.as_mut(),
        target_users,
        report,
        resume.as_ref(),
    )
    .await
}

/// Reads a saved plan, with the SHA-256 of its file (the journal's name for it).
fn read_plan(path: &Path) -> Result<(Plan, String), Error> {
    let err = |reason: String| Error::PlanFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not JSON ({e})")))?;
    match value.get("format_version").and_then(|v| v.as_str()) {
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(err(format!(
                "plan format {v}, this idsync reads format {FORMAT_VERSION}"
            )))
        }
        None => return Err(err("not an idsync plan (no format_version)".into())),
    }
    let plan = serde_json::from_value(value).map_err(|e| err(format!("not a valid plan: {e}")))?;
    Ok((
        plan,
        crate::config::hex_digest(&Sha256::digest(text.as_bytes())),
    ))
}

async fn execute(
    printer: &Printer,
    plan: &Plan,
    target: &mut dyn Target,
    target_users: usize,
    report: Option<&Path>,
    resume: Option<&(&Path, String, Progress)>,
) -> Result<ExitStatus, Error> {
    let name = target.name();
    let none = HashSet::new();
    let (journal, done) = match resume {
        Some((path, sha256, p)) => (Some(Journal::begin(path, sha256)?), &p.done),
        None => (None, &none),
    };
    let journal = journal.as_ref();
    let outcome = apply::execute_resuming(plan, target, journal, done, &mut |a, err| match err {
        None => printer.progress(&format!("  done {} {}", a.kind().as_str(), a.subject())),
        Some(e) => printer.warn(&format!(
            "{} {} failed: {e}",
            a.kind().as_str(),
            a.subject()
        )),
    })
    .await;
    if let Some(path) = report {
        let r = Report::new(plan, &outcome, target_users);
        let mut json = serde_json::to_string_pretty(&r).map_err(std::io::Error::from)?;
        json.push('\n');
        snapshot_file::write_atomic(path, json.as_bytes())?;
        printer.detail(&format!("wrote the run report to {}", path.display()));
    }
    if let Some(why) = &outcome.stopped {
        printer.warn(&format!(
            "apply stopped early: {why}. Fix the cause, then apply again{}",
            if resume.is_some() {
                " (the journal resumes where this run stopped)"
            } else {
                ""
            }
        ));
    }
    if let Some(e) = outcome.finish_error {
        return Err(Error::Finish { name, source: e });
    }
    let failed = outcome.failed();
    if failed > 0 {
        return Err(Error::ApplyFailed {
            failed,
            total: plan.actions.len(),
            written: outcome.written,
        });
    }
    if let Some(j) = journal {
        j.complete().map_err(Error::Output)?;
    }
    printer.info(&format!(
        "Apply complete: {} action(s) done on {name} in {} ms.",
        plan.actions.len(),
        outcome.duration_ms
    ));
    Ok(ExitStatus::Success)
}
