//! `idsync apply [PLAN_FILE]`.
//!
//! A saved plan is applied only as it was made and only while what it relies on holds:
//! 1. its digest (and, with `IDSYNC_PLAN_KEY`, its signature) matches its content;
//! 2. it was made from this config file, for this target;
//! 3. every action carries the preconditions it was planned on, and the summary and the guard agree
//!    with the actions;
//! 4. the preconditions hold in the target now (or were changed by an earlier run of this plan, per
//!    its journal);
//! 5. every action still to run is one a plan made now would also make, and none touches a user that
//!    `protect` or `skip_admins` keeps hands off;
//! 6. the guard, re-derived, holds.
//!
//! One apply runs at a time: a lock next to the plan file, and next to a file target.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::apply::journal::{self, Journal, Progress};
use crate::apply::lock::Lock;
use crate::apply::{self, confirm};
use crate::config::Loaded;
use crate::engine;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;
use crate::plan::{Action, Plan};
use crate::render::{self, Format};
use crate::report::Report;
use crate::snapshot_file;
use crate::targets::{self, Target};

pub(crate) async fn run(
    printer: &Printer,
    config_path: &Path,
    plan_file: Option<&Path>,
    auto_approve: bool,
    report: Option<&Path>,
    overrides: crate::plan::Overrides,
) -> Result<ExitStatus, Error> {
    let now = engine::now()?;
    if let Some(path) = report {
        super::check_writable_folder(path, "--report")?;
    }
    let loaded = super::load(printer, config_path)?;
    // Held until the apply ends.
    let mut locks: Vec<Lock> = Vec::new();
    if let Some(path) = plan_file {
        locks.push(Lock::acquire(path, &format!("apply {}", path.display()))?);
    }
    locks.extend(target_lock(&loaded, "apply")?);
    let mut resume: Option<(&Path, Progress)> = None;
    let (plan, mut target, target_users) = match plan_file {
        Some(path) => {
            let Some((plan, progress, planned)) =
                engine::saved::check_saved(printer, &loaded, path, now, overrides).await?
            else {
                return Ok(ExitStatus::Success);
            };
            printer.info(&format!(
                "{}: {}",
                path.display(),
                render::outcome_line(&plan)
            ));
            resume = Some((path, progress));
            (plan, planned.target, planned.target_users)
        }
        None => {
            let planned = engine::make_plan(&loaded, printer, now, overrides).await?;
            let mut stdout = printer.stdout();
            render::render(&planned.plan, Format::Text, printer.color, &mut stdout)?;
            std::io::Write::flush(&mut stdout)?;
            if let Some(e) = engine::refusal(&planned.plan) {
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
    let done = resume
        .as_ref()
        .map_or(0, |(_, p)| changes_in(&plan, &p.done));
    confirmed(printer, &plan, auto_approve, done)?;
    let result = execute(
        printer,
        &plan,
        target.as_mut(),
        target_users,
        report,
        resume.as_ref(),
    )
    .await;
    drop(locks);
    result
}

/// For a file target, the lock on its file (held while an apply runs).
pub(super) fn target_lock(loaded: &Loaded, what: &str) -> Result<Option<Lock>, Error> {
    targets::local_file(&loaded.config, &loaded.dir)
        .map(|file| Lock::acquire(&file, what))
        .transpose()
        .map_err(Into::into)
}

/// Asks for confirmation unless `auto_approve`; with no terminal to ask on, refuses. `done`
/// changes were made by an earlier run.
pub(super) fn confirmed(
    printer: &Printer,
    plan: &Plan,
    auto_approve: bool,
    done: usize,
) -> Result<(), Error> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::NotATerminal);
    }
    printer.prompt(&confirm::prompt_resuming(
        plan.summary.total_changes - done,
        plan.summary.total_changes,
    ));
    if !confirm::answer(&mut std::io::stdin().lock())? {
        return Err(Error::Declined);
    }
    Ok(())
}

/// The changes the actions `indexes` stand for (members for membership changes).
fn changes_in(plan: &Plan, indexes: &HashSet<usize>) -> usize {
    indexes
        .iter()
        .filter_map(|&i| plan.actions.get(i))
        .map(Action::weight)
        .sum()
}

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere).
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Option<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Some(Signals {
                int: signal(SignalKind::interrupt()).ok()?,
                term: signal(SignalKind::terminate()).ok()?,
            })
        }
        #[cfg(not(unix))]
        Some(Signals {})
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Sets `stop` on the first SIGINT or SIGTERM, and says what happens next. A second one stops at
/// once (exit 1): the journal is safe against that too.
fn on_interrupt(printer: Printer, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    // Registered now, so that an interrupt from here on is caught.
    let signals = Signals::new();
    tokio::spawn(async move {
        let Some(mut signals) = signals else {
            return;
        };
        signals.next().await;
        stop.store(true, Ordering::SeqCst);
        printer.warn(
            "interrupted: starting no new actions; letting those in flight finish, then saving the journal and the report (interrupt again to stop at once)",
        );
        signals.next().await;
        printer.warn("interrupted again: stopping at once; run the same command again to finish");
        #[allow(clippy::exit)]
        std::process::exit(i32::from(ExitStatus::Error.code()));
    })
}

pub(super) async fn execute(
    printer: &Printer,
    plan: &Plan,
    target: &mut dyn Target,
    target_users: usize,
    report: Option<&Path>,
    resume: Option<&(&Path, Progress)>,
) -> Result<ExitStatus, Error> {
    let name = target.name();
    let none = HashSet::new();
    let (journal, done) = match resume {
        Some((path, p)) => (
            Some(Journal::begin(path, &plan.digest, plan.actions.len(), p)?),
            &p.done,
        ),
        None => (None, &none),
    };
    let journal = journal.as_ref();
    let stop = Arc::new(AtomicBool::new(false));
    let listener = on_interrupt(*printer, Arc::clone(&stop));
    let outcome =
        apply::execute_resuming(
            plan,
            target,
            journal,
            done,
            &stop,
            &mut |a, err| match err {
                None => printer.progress(&format!("  done {} {}", a.kind().as_str(), a.subject())),
                Some(e) => printer.warn(&format!(
                    "{} {} failed: {e}",
                    a.kind().as_str(),
                    a.subject()
                )),
            },
        )
        .await;
    listener.abort();
    if let Some(path) = report {
        let r = Report::new(plan, &outcome, target_users);
        snapshot_file::write_atomic_with(path, |w| {
            serde_json::to_writer_pretty(&mut *w, &r)?;
            std::io::Write::write_all(w, b"\n")
        })?;
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
    if outcome.interrupted && outcome.not_started() > 0 {
        // The interruption is the error returned; a failed final write must not go unsaid.
        if let Some(e) = &outcome.finish_error {
            printer.warn(&format!(
                "target {name}: the changes could not be saved: {e}; the target was left as it was"
            ));
        }
        let resume = match resume {
            Some((path, _)) => format!(
                "run `idsync apply {}` again to finish: the journal {} records what was done, and nothing done is sent again",
                path.display(),
                journal::path_for(path).display()
            ),
            None => "run `idsync apply` again: the new plan holds what is left to do".into(),
        };
        let not_started = outcome.not_started();
        return Err(Error::Interrupted {
            done: if outcome.written {
                outcome
                    .results
                    .iter()
                    .filter(|r| !r.not_started && r.error.is_none())
                    .count()
            } else {
                0
            },
            total: plan.actions.len(),
            not_started,
            written: outcome.written,
            resume,
        });
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
        j.complete().await.map_err(Error::Output)?;
    }
    let resumed = changes_in(plan, done);
    printer.info(&format!(
        "Apply complete: {} action(s) done on {name} in {} ms ({} change(s){}).",
        plan.actions.len(),
        outcome.duration_ms,
        plan.summary.total_changes,
        if resumed > 0 {
            format!(", {resumed} of them by an earlier run")
        } else {
            String::new()
        }
    ));
    Ok(ExitStatus::Success)
}
