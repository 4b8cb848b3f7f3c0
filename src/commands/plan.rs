//! `idsync plan`.

use std::io::Write as _;
use std::path::Path;

use crate::engine;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;
use crate::render::{self, Format, MarkdownOptions};
use crate::snapshot_file;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    printer: &Printer,
    config_path: &Path,
    out: Option<&Path>,
    format: Format,
    detailed_exitcode: bool,
    overrides: crate::plan::Overrides,
    markdown_limit: usize,
    scope: Option<&crate::plan::scope::Scope>,
) -> Result<ExitStatus, Error> {
    let mut shown = false;
    let result = plan(
        printer,
        config_path,
        out,
        format,
        detailed_exitcode,
        overrides,
        markdown_limit,
        scope,
        &mut shown,
    )
    .await;
    // A plan that failed before it could be shown still gives CI a comment to post: what failed and
    // what to do (the error itself is printed on stderr as always).
    if let Err(e) = &result {
        if format == Format::Markdown && !shown && !matches!(e, Error::Output(_)) {
            let mut stdout = printer.stdout();
            stdout
                .write_all(render::failure_markdown("idsync plan", e, markdown_limit).as_bytes())?;
            stdout.flush()?;
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn plan(
    printer: &Printer,
    config_path: &Path,
    out: Option<&Path>,
    format: Format,
    detailed_exitcode: bool,
    overrides: crate::plan::Overrides,
    markdown_limit: usize,
    scope: Option<&crate::plan::scope::Scope>,
    shown: &mut bool,
) -> Result<ExitStatus, Error> {
    let now = engine::now()?;
    if let Some(path) = out {
        super::check_writable_folder(path, "--out")?;
    }
    let loaded = super::load(printer, config_path)?;
    // Only the plan is needed from here: the target's snapshot goes before the plan is written
    // out (at a million users, the snapshot and the plan's JSON are each a gigabyte or so).
    let engine::Planned { plan, snapshot, .. } =
        engine::make_plan_scoped(&loaded, printer, now, overrides, scope).await?;
    engine::free_in_background(snapshot);
    let plan = &plan;
    let refusal = engine::refusal(plan);
    // Saved before it is shown, so that the markdown can point at the file; never when refused.
    // The JSON is made once, streamed into the file (a plan at scale is hundreds of MB, never held
    // whole); when it is also printed, the file is copied to stdout.
    let mut json = None;
    let saved = match out {
        Some(path) if refusal.is_none() => {
            let file = snapshot_file::write_atomic_with(path, |w| {
                serde_json::to_writer_pretty(&mut *w, plan)?;
                w.write_all(b"\n")
            })?;
            json = Some(file);
            Some(path)
        }
        _ => None,
    };
    let mut stdout = printer.stdout();
    if let (Format::Json, Some(mut file)) = (format, json) {
        use std::io::Seek as _;
        file.seek(std::io::SeekFrom::Start(0))?;
        std::io::copy(&mut file, &mut stdout)?;
    } else if format == Format::Markdown {
        let opts = MarkdownOptions {
            limit: markdown_limit,
            plan_file: saved.map(|p| p.display().to_string()),
        };
        stdout.write_all(render::markdown(plan, &opts).as_bytes())?;
    } else {
        render::render(
            plan,
            format,
            printer.color && format == Format::Text,
            &mut stdout,
        )?;
    }
    *shown = true;
    stdout.flush()?;
    // The text rendering ends with the same line: on a terminal that shows stdout, once is enough
    // (unless the line has a verdict to add). Everywhere else (CI logs, other formats) it is said.
    let line = render::outcome_line(plan);
    let said = format == Format::Text
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
        && line == render::headline(plan);
    if !said {
        printer.outcome(&line);
    }
    if let Some(e) = refusal {
        return Err(e);
    }
    if let Some(path) = saved {
        printer.info(&format!(
            "Saved the plan to {}. Apply exactly this plan with: idsync apply {}",
            path.display(),
            path.display()
        ));
    }
    if detailed_exitcode {
        if let Some(note) = render::drift_note(plan) {
            printer.warn(&note);
        }
    }
    Ok(if detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
