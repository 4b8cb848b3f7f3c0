//! `idsync sync-user EMAIL…`: the plan (and with `--apply`, the apply) for just these people, from a
//! read of only them. The plan is the one `plan --only-user EMAIL…` makes, marked partial; the apply
//! is `apply`'s: same confirmation, lock, executor and report.

use std::io::Write as _;
use std::path::Path;

use crate::engine;
use crate::error::Error;
use crate::exit::ExitStatus;

use crate::output::Printer;
use crate::plan::scope::{Scope, ScopeRead};
use crate::render::{self, Format, MarkdownOptions};

/// What `sync-user` was asked to do besides planning.
pub(crate) struct Options<'a> {
    pub apply: bool,
    pub auto_approve: bool,
    pub format: Format,
    pub report: Option<&'a Path>,
    pub overrides: crate::plan::Overrides,
}

pub(crate) async fn run(
    printer: &Printer,
    config_path: &Path,
    emails: &[String],
    opts: Options<'_>,
) -> Result<ExitStatus, Error> {
    let now = crate::engine::now()?;
    if let Some(path) = opts.report {
        super::check_writable_folder(path, "--report")?;
    }
    let loaded = super::load(printer, config_path)?;
    // Held until the apply ends, taken before anything is read (as `apply` does).
    let lock = if opts.apply {
        super::apply::target_lock(&loaded, "sync-user --apply")?
    } else {
        None
    };
    let clock = std::time::Instant::now();

    let inputs = engine::read_people(&loaded, printer, clock, emails).await?;

    let scope = Scope {
        users: emails.to_vec(),
        groups: Vec::new(),
        read: ScopeRead::People,
        left_out: None,
    };
    let planned = engine::plan_from(
        &loaded,
        printer,
        clock,
        inputs,
        now,
        opts.overrides,
        Some(&scope),
    )?;
    let plan = &planned.plan;
    let mut stdout = printer.stdout();
    if opts.format == Format::Markdown {
        stdout.write_all(render::markdown(plan, &MarkdownOptions::default()).as_bytes())?;
    } else {
        render::render(
            plan,
            opts.format,
            printer.color && opts.format == Format::Text,
            &mut stdout,
        )?;
    }
    stdout.flush()?;
    printer.outcome(&render::outcome_line(plan));
    if let Some(e) = engine::refusal(plan) {
        return Err(e);
    }
    if !opts.apply {
        return Ok(ExitStatus::Success);
    }
    if !plan.has_changes() {
        printer.info("No changes to apply.");
        return Ok(ExitStatus::Success);
    }
    for w in &plan.warnings {
        printer.warn(w);
    }
    super::apply::confirmed(printer, plan, opts.auto_approve, 0)?;
    let engine::Planned {
        plan,
        mut target,
        target_users,
        ..
    } = planned;
    let result = super::apply::execute(
        printer,
        &plan,
        target.as_mut(),
        target_users,
        opts.report,
        None,
    )
    .await;
    drop(lock);
    result
}
