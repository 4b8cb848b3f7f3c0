//! `idsync plan`.

use std::io::Write as _;
use std::path::Path;

use crate::engine;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;
use crate::plan::{Plan, Seal};
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
    let key = engine::plan_key()?;
    // Only the plan is needed from here: the target's snapshot goes before the plan is written
    // out (at a million users, the snapshot and the plan's JSON are each a gigabyte or so).
    let engine::Planned {
        mut plan, snapshot, ..
    } = engine::make_plan_unsealed(&loaded, printer, now, overrides, scope).await?;
    engine::free_in_background(snapshot);
    let refusal = engine::refusal(&plan);
    // Saved before it is shown, so that the markdown can point at the file; never when refused.
    // The JSON is made once, streamed into the file (a plan at scale is hundreds of MB, never held
    // whole); when it is also printed, the file is copied to stdout.
    let mut json = None;
    let saved = match out {
        Some(path) if refusal.is_none() => {
            json = Some(save_sealing(&mut plan, key.as_deref(), path)?);
            Some(path)
        }
        _ => {
            plan.seal(key.as_deref());
            None
        }
    };
    let plan = &plan;
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

/// Seals the plan and saves it to `path`, both at once: the seal is computed on a second thread
/// while the plan is written with placeholders of the seal's length where it goes (the seal covers
/// neither of its fields), and put in their place in the file before the file takes the path. At
/// a million users each takes about a second. Returns the file, for printing it.
fn save_sealing(plan: &mut Plan, key: Option<&[u8]>, path: &Path) -> Result<std::fs::File, Error> {
    let placeholder = Seal::placeholder(key.is_some());
    plan.set_seal(placeholder.clone());
    let mut sealed = None;
    let file = std::thread::scope(|s| {
        let unsealed = &*plan;
        let sealing = s.spawn(move || unsealed.seal_of(key));
        snapshot_file::write_atomic_with(path, |w| {
            serde_json::to_writer_pretty(&mut *w, unsealed)?;
            w.write_all(b"\n")?;
            w.flush()?;
            let seal = sealing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            put_seal(w.get_mut().get_mut(), &placeholder, &seal)?;
            sealed = Some(seal);
            Ok(())
        })
    })?;
    plan.set_seal(sealed.expect("the seal is put in place when the plan is saved"));
    Ok(file)
}

/// Writes the seal over its placeholders in a plan file just written: its fields are the plan's
/// last, within the file's last few hundred bytes, and of the placeholders' length.
fn put_seal(file: &mut std::fs::File, placeholder: &Seal, seal: &Seal) -> std::io::Result<()> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let end = file.seek(SeekFrom::End(0))?;
    let from = end.saturating_sub(512);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let mut fields = vec![("digest", &placeholder.digest, &seal.digest)];
    if let (Some(p), Some(v)) = (&placeholder.signature, &seal.signature) {
        fields.push(("signature", p, v));
    }
    for (name, stand_in, value) in fields {
        let needle = format!("\"{name}\": \"{stand_in}\"");
        let found = tail
            .windows(needle.len())
            .rposition(|w| w == needle.as_bytes());
        let (Some(at), true) = (found, stand_in.len() == value.len()) else {
            return Err(std::io::Error::other(format!(
                "the plan's {name} could not be put in place (a bug: please report it)"
            )));
        };
        // Past `"name": "`.
        let offset = from + (at + name.len() + 5) as u64;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(value.as_bytes())?;
    }
    Ok(())
}
