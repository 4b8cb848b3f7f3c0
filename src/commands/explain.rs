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
use crate::model::People;
use crate::output::Printer;
use crate::plan::Overrides;

pub(crate) async fn run(
    printer: &Printer,
    config_path: &Path,
    subject: &str,
    format: ExplainFormat,
) -> Result<ExitStatus, Error> {
    let loaded = super::load(printer, config_path)?;
    let now = super::now()?;
    let is_person = subject.contains('@');
    let people = is_person.then(|| People::by_email([subject.trim()]));
    let (planned, inputs) = super::plan_keeping(
        &loaded,
        printer,
        now,
        Overrides::default(),
        people.as_ref(),
        true,
    )
    .await?;
    let inputs = inputs.expect("kept when asked");
    let (text, json) = if is_person {
        let t = crate::explain::person(
            subject.trim(),
            &inputs.sources,
            &inputs.desired,
            &planned.snapshot,
            &planned.plan,
            &loaded.rules,
            &loaded.config.cleanup,
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
