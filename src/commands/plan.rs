//! `idsync plan`.

use std::path::Path;

use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;
use crate::render::{self, Format};
use crate::snapshot_file;

pub(crate) async fn run(
    printer: &Printer,
    config_path: &Path,
    out: Option<&Path>,
    format: Format,
    detailed_exitcode: bool,
    overrides: crate::plan::Overrides,
) -> Result<ExitStatus, Error> {
    let now = super::now()?;
    if let Some(path) = out {
        super::check_writable_folder(path, "--out")?;
    }
    let loaded = super::load(printer, config_path)?;
    let planned = super::make_plan(&loaded, printer, now, overrides).await?;
    let plan = &planned.plan;
    let mut stdout = printer.stdout();
    render::render(
        plan,
        format,
        printer.color && format == Format::Text,
        &mut stdout,
    )?;
    std::io::Write::flush(&mut stdout)?;
    if let Some(e) = super::refusal(plan) {
        return Err(e);
    }
    if let Some(path) = out {
        let mut json = serde_json::to_string_pretty(plan).map_err(std::io::Error::from)?;
        json.push('\n');
        snapshot_file::write_atomic(path, json.as_bytes())?;
        printer.info(&format!(
            "Saved the plan to {}. Apply exactly this plan with: idsync apply {}",
            path.display(),
            path.display()
        ));
    }
    Ok(if detailed_exitcode && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
