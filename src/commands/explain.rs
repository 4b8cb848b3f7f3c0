//! `idsync explain EMAIL|GROUP`: reads what the trace needs, plans, and prints the trace
//! ([`crate::explain`]).
//!
//! A person is read with the targeted reads (`snapshot_people`: only them, from every source and the
//! target, as `sync-user` reads). A group is read in full (every source and the target, restricted
//! to nothing): its members are many people, and a per-group read would need per-group endpoints
//! in every connector.

use std::io::Write;
use std::path::Path;

use crate::cli::ExplainFormat;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;
use crate::plan::Overrides;

pub(crate) async fn run(
    printer: &Printer,
    config_path: &Path,
    subject: &str,
    format: ExplainFormat,
) -> Result<ExitStatus, Error> {
    let loaded = super::load(printer, config_path)?;
    let now = crate::engine::now()?;
    let is_person = subject.contains('@');
    let clock = std::time::Instant::now();
    let inputs = if is_person {
        crate::engine::read_people(&loaded, printer, clock, &[subject.trim().to_string()]).await?
    } else {
        crate::engine::Inputs {
            sources: crate::engine::read_sources(&loaded, printer, clock, None).await?,
            target: crate::engine::read_target(&loaded, printer, clock, None).await?,
        }
    };
    let (planned, inputs) = crate::engine::plan_from_keeping(
        &loaded,
        printer,
        clock,
        inputs,
        now,
        Overrides::default(),
        None,
        true,
        // The plan is only explained, never saved or shown whole: no seal is needed (at a million
        // users it would cost a second).
        crate::engine::Sealing::ByCaller,
    )?;
    let inputs = inputs.expect("kept when asked");
    let (text, json) = if is_person {
        let t = crate::explain::person(
            subject.trim(),
            &inputs.sources,
            &inputs.desired,
            &planned.snapshot,
            &planned.plan,
            &loaded.rules,
            &loaded.rules.cleanup,
        );
        (
            crate::explain::render_person(&t),
            serde_json::to_string_pretty(&t),
        )
    } else {
        let t = crate::explain::group(
            subject.trim(),
            &inputs.desired,
            &planned.snapshot,
            &planned.plan,
        );
        (
            crate::explain::render_group(&t),
            serde_json::to_string_pretty(&t),
        )
    };
    let mut out = printer.stdout();
    match format {
        ExplainFormat::Text => write!(out, "{text}")?,
        ExplainFormat::Json => writeln!(out, "{}", json.map_err(std::io::Error::from)?)?,
    }
    out.flush()?;
    Ok(ExitStatus::Success)
}
