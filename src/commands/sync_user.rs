//! `idsync sync-user EMAIL…`: the plan (and with `--apply`, the apply) for just these people, from a
//! read of only them. The plan is the one `plan --only-user EMAIL…` makes, marked partial; the apply
//! is `apply`'s: same confirmation, lock, executor and report.

use std::io::Write as _;
use std::path::Path;

use crate::engine;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::model::People;
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

/// Reads of only some people grow the set read until both sides agree on who that is (a renamed
/// person's other email, an account carrying their IdP id); a chain of renames longer than this
/// is read as far as it goes.
const MAX_ROUNDS: usize = 3;

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

    // Sources first, by email; then the target by email and the people's IdP ids (an account a
    // rename left under the old email carries the id as externalId). What one side finds that the
    // other was not asked about (an old email, an id) is read on the other side too.
    let mut people = People::by_email(emails.iter().map(String::as_str));
    let mut source_requests: Vec<(String, u64)> = Vec::new();
    let mut target_requests = 0;
    let mut rounds = 0;
    let inputs = loop {
        rounds += 1;
        let sources = engine::read_sources(&loaded, printer, clock, Some(&people)).await?;
        for s in &sources {
            match source_requests.iter_mut().find(|(n, _)| *n == s.data.name) {
                Some((_, n)) => *n += s.requests,
                None => source_requests.push((s.data.name.clone(), s.requests)),
            }
        }
        let mut wider = people.clone();
        for s in &sources {
            for u in &s.data.data.snapshot.users {
                wider.emails.insert(u.key());
                wider.ids.extend(u.id.clone());
            }
        }
        let target = engine::read_target(&loaded, printer, clock, Some(&wider)).await?;
        target_requests += target.target.requests();
        let mut widest = wider.clone();
        for u in &target.indexed.snapshot.users {
            widest.emails.insert(u.key());
            widest.ids.extend(u.external_id.clone());
        }
        // The sources were read for `people`: done when the target named nobody beyond what they
        // were asked and answered about.
        if widest == wider || rounds == MAX_ROUNDS {
            break engine::Inputs { sources, target };
        }
        people = widest;
    };
    let sources_total: u64 = source_requests.iter().map(|(_, n)| n).sum();
    printer.detail(&format!(
        "sync-user read {} request(s): {sources_total} to the sources ({}), {target_requests} to the target, in {rounds} round(s)",
        sources_total + target_requests,
        source_requests
            .iter()
            .map(|(n, r)| format!("{n}: {r}"))
            .collect::<Vec<_>>()
            .join(", "),
    ));

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
