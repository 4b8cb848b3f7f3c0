//! `idsync validate`: every check that needs neither a source nor the target, as text for people,
//! JSON for tools, or GitHub workflow commands that annotate a pull request.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::ValidateFormat;
use crate::config::{self, Located, Options, Report};
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::output::Printer;

/// One error or warning, as `--format json` writes it.
#[derive(Debug, Serialize)]
struct Entry {
    file: String,
    /// 1-based; null when the problem has no place in the file (the file cannot be read).
    line: Option<usize>,
    column: Option<usize>,
    /// The key path (`target.scim.token`); null for the file as a whole.
    key: Option<String>,
    message: String,
    hint: Option<String>,
}

/// `--format json`: a stable object, described in the README.
#[derive(Debug, Serialize)]
struct JsonReport {
    valid: bool,
    errors: Vec<Entry>,
    warnings: Vec<Entry>,
    /// Every environment variable the config reads, sorted.
    env_needed: Vec<String>,
    /// Those of them not set here (under --offline they were checked with a placeholder).
    env_unset: Vec<String>,
}

pub(crate) fn run(
    printer: &Printer,
    path: &Path,
    offline: bool,
    format: ValidateFormat,
) -> Result<ExitStatus, Error> {
    let opts = Options {
        offline,
        check_files: true,
    };
    let report = match config::inspect(path, opts) {
        Ok(r) => r,
        Err(e) if format == ValidateFormat::Text => return Err(e.into()),
        Err(e) => {
            // The file cannot be read: one error without a place.
            let hint = e.hint();
            Report {
                path: path.to_path_buf(),
                loaded: None,
                errors: vec![(
                    config::Diagnostic {
                        path: config::KeyPath::default(),
                        message: e.to_string(),
                        hint,
                    },
                    None,
                )],
                warnings: Vec::new(),
                env_needed: Vec::new(),
            }
        }
    };
    let file = path.display().to_string();
    let valid = report.errors.is_empty();
    let needed: Vec<String> = report.env_needed.iter().map(|(n, _)| n.clone()).collect();
    let unset: Vec<String> = report
        .env_needed
        .iter()
        .filter(|(_, set)| !set)
        .map(|(n, _)| n.clone())
        .collect();
    let mut out = printer.stdout();
    match format {
        ValidateFormat::Text => {
            for w in &report.warnings {
                printer.warn(&text_line(&file, w));
            }
            let loaded = report.into_result()?;
            let c = &loaded.config;
            writeln!(
                out,
                "{} is valid: {} source(s), {} group mapping(s), {} default group(s)",
                loaded.path.display(),
                c.sources.len(),
                c.groups.mappings.len(),
                c.groups.default_groups.len()
            )?;
            env_lines(&mut out, &needed, &unset, offline)?;
        }
        ValidateFormat::Json => {
            let json = JsonReport {
                valid,
                errors: report.errors.iter().map(|l| entry(&file, l)).collect(),
                warnings: report.warnings.iter().map(|l| entry(&file, l)).collect(),
                env_needed: needed,
                env_unset: unset,
            };
            serde_json::to_writer_pretty(&mut out, &json).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        ValidateFormat::Github => {
            for e in &report.errors {
                writeln!(out, "{}", workflow_command("error", &file, e))?;
            }
            for w in &report.warnings {
                writeln!(out, "{}", workflow_command("warning", &file, w))?;
            }
            let (ne, nw) = (report.errors.len(), report.warnings.len());
            writeln!(
                out,
                "{file}: {}, {ne} error{}, {nw} warning{}",
                if valid { "valid" } else { "invalid" },
                if ne == 1 { "" } else { "s" },
                if nw == 1 { "" } else { "s" },
            )?;
            env_lines(&mut out, &needed, &unset, offline)?;
        }
    }
    out.flush()?;
    Ok(if valid {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
}

/// The environment variables the config reads, and which of them are not set here.
fn env_lines(
    out: &mut impl Write,
    needed: &[String],
    unset: &[String],
    offline: bool,
) -> std::io::Result<()> {
    if needed.is_empty() {
        return Ok(());
    }
    writeln!(out, "needs environment variables: {}", needed.join(", "))?;
    if offline && !unset.is_empty() {
        writeln!(
            out,
            "not set here (checked with a placeholder): {}",
            unset.join(", ")
        )?;
    }
    Ok(())
}

fn entry(file: &str, (d, spot): &Located) -> Entry {
    Entry {
        file: file.to_string(),
        line: spot.map(|(l, _)| l),
        column: spot.map(|(_, c)| c),
        key: (!d.path.0.is_empty()).then(|| d.path.to_string()),
        message: d.message.clone(),
        hint: d.hint.clone(),
    }
}

/// `file:line:col: key: message`, then the hint on its own line.
fn text_line(file: &str, (d, spot): &Located) -> String {
    let mut s = match spot {
        Some((l, c)) => format!("{file}:{l}:{c}: {d}"),
        None => format!("{file}: {d}"),
    };
    if let Some(h) = &d.hint {
        s.push_str(&format!("\n  hint: {h}"));
    }
    s
}

/// `::error file=…,line=…,col=…,title=idsync::key: message` (hint on the next line of the
/// annotation), escaped as GitHub's workflow commands require.
fn workflow_command(kind: &str, file: &str, (d, spot): &Located) -> String {
    let mut props = format!("file={}", escape_property(file));
    if let Some((l, c)) = spot {
        props.push_str(&format!(",line={l},col={c}"));
    }
    props.push_str(",title=idsync");
    let mut message = d.to_string();
    if let Some(h) = &d.hint {
        message.push_str(&format!("\nhint: {h}"));
    }
    format!("::{kind} {props}::{}", escape_data(&message))
}

/// A workflow command's message: `%`, CR and LF escaped.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as a message, and `:` and `,` too.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_are_escaped() {
        assert_eq!(escape_data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(escape_property("C:\\a,b%.yaml"), "C%3A\\a%2Cb%25.yaml");
        let d = config::Diagnostic::new(
            config::KeyPath::default().key("target").key("token"),
            "bad: really",
        )
        .hint("fix it, now");
        assert_eq!(
            workflow_command("warning", "a,b.yaml", &(d, Some((3, 5)))),
            "::warning file=a%2Cb.yaml,line=3,col=5,title=idsync::target.token: bad: really%0Ahint: fix it, now"
        );
    }
}
