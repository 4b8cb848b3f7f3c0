//! `idsync show PLAN_FILE`: a saved plan, drawn without reading anything else (no config, no
//! credentials, no source, no target).
//!
//! The plan's seal is checked as `apply` checks it. A plan that is not as idsync wrote it is still
//! drawn, marked at the top (text, markdown, summary; JSON stays the file's JSON), and the command
//! then fails: exit 1, so that a pipeline never takes an edited plan for a good one.

use std::io::Write;
use std::path::Path;

use crate::cli::ShowFormat;
use crate::engine;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;
use crate::plan::{FORMAT_VERSION, KEY_VAR};
use crate::render::{self, saved, Format};

pub(crate) fn run(
    printer: &Printer,
    path: &Path,
    format: ShowFormat,
    detailed_exitcode: bool,
    markdown_limit: usize,
) -> Result<ExitStatus, Error> {
    let file = engine::read_plan(path)?;
    let key = crate::engine::saved_file::key_from_env().map_err(Error::PlanKey)?;
    let plan = &file.plan;
    let seal = match file.verify_seal(key.as_deref()) {
        Ok(()) => saved::Seal::Intact {
            signed: plan.signature.is_some(),
            checked: key.is_some(),
        },
        Err(e) => saved::Seal::Broken(e.to_string()),
    };
    if file.newer_minor() {
        printer.info(&format!(
            "{} is of plan format {}, made by idsync {}; this idsync reads format {FORMAT_VERSION}, so what the newer format added is not shown.",
            path.display(),
            plan.format_version,
            plan.idsync_version
        ));
    }
    if let saved::Seal::Intact {
        signed: true,
        checked: false,
    } = seal
    {
        printer.info(&format!(
            "{} is signed, but {KEY_VAR} is not set here: the signature was not checked.",
            path.display()
        ));
    }
    let broken = match &seal {
        saved::Seal::Broken(why) => Some(why.clone()),
        saved::Seal::Intact { .. } => None,
    };
    let mut out = printer.stdout();
    match format {
        ShowFormat::Text => {
            if let Some(why) = &broken {
                out.write_all(saved::broken_banner(why).as_bytes())?;
                writeln!(out)?;
            }
            saved::provenance(plan, &path.display().to_string(), &seal, &mut out)?;
            render::render(plan, Format::Text, printer.color, &mut out)?;
        }
        ShowFormat::Markdown => {
            if let Some(why) = &broken {
                out.write_all(saved::broken_banner_markdown(why).as_bytes())?;
            }
            // Elision notes point at this file; the banner of an untrusted plan comes off the budget.
            let banner = broken
                .as_deref()
                .map_or(0, |w| saved::broken_banner_markdown(w).len());
            let opts = render::MarkdownOptions {
                limit: markdown_limit
                    .saturating_sub(banner)
                    .max(render::MARKDOWN_LIMIT_MIN),
                plan_file: Some(path.display().to_string()),
            };
            out.write_all(render::markdown(plan, &opts).as_bytes())?;
        }
        ShowFormat::Json => {
            // The file as written: every field, in its order, also those this idsync does not know.
            out.write_all(file.text.as_bytes())?;
            if !file.text.ends_with('\n') {
                writeln!(out)?;
            }
        }
        ShowFormat::Summary => {
            if let Some(why) = &broken {
                out.write_all(saved::broken_banner(why).as_bytes())?;
            }
            saved::summary(plan, &mut out)?;
        }
    }
    out.flush()?;
    if let Some(reason) = broken {
        return Err(Error::PlanUntrusted {
            path: path.to_path_buf(),
            reason,
        });
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
