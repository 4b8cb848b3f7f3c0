//! `idsync snapshot --side source|target`.

use std::io::Write;
use std::path::Path;

use crate::cli::Side;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;
use crate::progress::Phase;
use crate::snapshot_file::{self, Format};
use crate::{sources, targets};

pub(crate) async fn run(
    printer: &Printer,
    config_path: &Path,
    side: Side,
    source: Option<&str>,
    out: Option<&Path>,
) -> Result<ExitStatus, Error> {
    if let Some(path) = out {
        super::check_writable_folder(path, "--out")?;
    }
    let loaded = super::load(printer, config_path)?;
    let (snap, label) = match side {
        Side::Source => {
            let all = &loaded.config.sources;
            let known = || {
                all.iter()
                    .map(|s| s.name().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sc =
                match source {
                    Some(name) => all.iter().find(|s| s.name() == name).ok_or_else(|| {
                        Error::UnknownSource {
                            name: name.to_string(),
                            known: known(),
                        }
                    })?,
                    None if all.len() == 1 => &all[0],
                    None => {
                        return Err(Error::WhichSource {
                            count: all.len(),
                            known: known(),
                        })
                    }
                };
            let s = sources::build(sc, &loaded.dir).map_err(|e| Error::Source {
                name: sc.name().to_string(),
                source: e,
            })?;
            let phase = Phase::reading(&format!("reading source {}", sc.name()));
            let snap = phase.scope(s.snapshot()).await.map_err(|e| Error::Source {
                name: sc.name().to_string(),
                source: e,
            })?;
            phase.finish();
            (snap, format!("source `{}`", sc.name()))
        }
        Side::Target => {
            let mut t = targets::build(&loaded.config, &loaded.dir).map_err(Error::TargetSetup)?;
            let name = t.name();
            let phase = Phase::reading(&format!("reading target {name}"));
            let snap = phase.scope(t.snapshot()).await.map_err(|e| Error::Target {
                name: name.clone(),
                source: e,
            })?;
            phase.finish();
            (snap, format!("target {name}"))
        }
    };
    // What was read but could not be converted is said, not dropped (it is in the file too).
    let warnings = crate::desired::left_out_warnings(&label, &snap.skipped);
    for w in &warnings {
        printer.warn(w);
    }
    match out {
        Some(path) => {
            snapshot_file::write_atomic_with(path, |w| {
                snapshot_file::write_to(&snap, Format::of(path), w)
            })?;
            printer.info(&format!(
                "Wrote {} users and {} groups to {}",
                snap.users.len(),
                snap.groups.len(),
                path.display()
            ));
        }
        None => {
            let mut stdout = printer.stdout();
            snapshot_file::write_to(&snap, Format::Yaml, &mut stdout)?;
            stdout.flush()?;
        }
    }
    Ok(ExitStatus::Success)
}
