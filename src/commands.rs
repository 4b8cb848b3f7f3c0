//! The subcommands. Each returns an [`ExitStatus`] or an [`Error`]; nothing else decides exit codes.

mod apply;
mod explain;
mod plan;
mod show;
mod snapshot;
mod sync_user;
mod validate;

use crate::cli::{Cli, Command};
use crate::config::{self, Loaded};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;
use crate::plan::Plan;
use crate::Config;

/// Runs the command line.
///
/// # Errors
/// Whatever the command met; the caller prints it and exits 1.
pub async fn run(cli: Cli, printer: Printer) -> Result<ExitStatus, Error> {
    crate::progress::install(printer);
    match cli.command {
        Command::Validate {
            config,
            offline,
            format,
        } => validate::run(&printer, &config.config, offline, format),
        Command::Plan {
            config,
            out,
            format,
            detailed_exitcode,
            markdown_limit,
            only,
            guards,
        } => {
            plan::run(
                &printer,
                &config.config,
                out.as_deref(),
                format,
                detailed_exitcode,
                guards.overrides(),
                markdown_limit as usize,
                only.scope().as_ref(),
            )
            .await
        }
        Command::SyncUser {
            config,
            emails,
            apply,
            auto_approve,
            format,
            report,
            guards,
        } => {
            sync_user::run(
                &printer,
                &config.config,
                &emails,
                sync_user::Options {
                    apply,
                    auto_approve,
                    format,
                    report: report.as_deref(),
                    overrides: guards.overrides(),
                },
            )
            .await
        }
        Command::Apply {
            config,
            plan,
            auto_approve,
            report,
            guards,
        } => {
            apply::run(
                &printer,
                &config.config,
                plan.as_deref(),
                auto_approve,
                report.as_deref(),
                guards.overrides(),
            )
            .await
        }
        Command::Show {
            plan,
            format,
            detailed_exitcode,
            markdown_limit,
        } => show::run(
            &printer,
            &plan,
            format,
            detailed_exitcode,
            markdown_limit as usize,
        ),
        Command::Snapshot {
            config,
            side,
            source,
            out,
        } => {
            snapshot::run(
                &printer,
                &config.config,
                side,
                source.as_deref(),
                out.as_deref(),
            )
            .await
        }
        Command::Explain {
            config,
            subject,
            format,
        } => explain::run(&printer, &config.config, &subject, format).await,
        Command::Schema { plan } => {
            let schema = if plan {
                Plan::json_schema()
            } else {
                Config::json_schema()
            };
            let mut out = printer.stdout();
            serde_json::to_writer_pretty(&mut out, &schema).map_err(std::io::Error::from)?;
            use std::io::Write;
            writeln!(out)?;
            out.flush()?;
            Ok(ExitStatus::Success)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = printer.stdout();
            clap_complete::generate(shell, &mut cmd, "idsync", &mut out);
            use std::io::Write;
            out.flush()?;
            Ok(ExitStatus::Success)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut out = printer.stdout();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            use std::io::Write;
            out.flush()?;
            Ok(ExitStatus::Success)
        }
    }
}

/// Loads a config and prints its warnings (a credential file others can read).
pub(crate) fn load(printer: &Printer, path: &std::path::Path) -> Result<Loaded, Error> {
    let loaded = config::load(path)?;
    for w in &loaded.warnings {
        printer.warn(w);
    }
    Ok(loaded)
}

/// Checks, before anything changes, that the folder a file is to be written into exists.
pub(crate) fn check_writable_folder(
    path: &std::path::Path,
    flag: &'static str,
) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::NoFolder {
            flag,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        })
    }
}
