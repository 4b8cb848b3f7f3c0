//! All printing goes through here: results to stdout, progress, warnings and prompts to stderr, so
//! `--format json > plan.json` is always clean. Everything written here passes through
//! [`redact`], so no secret the process holds reaches a terminal or a pipe.
#![allow(clippy::print_stderr)]

use std::io::{self, IsTerminal, Write};

use owo_colors::OwoColorize;

use crate::cli::ColorChoice;
use crate::config::secret::{redact, Redacting};
use crate::error::Error;

/// The result stream: what a command writes goes to stdout, redacted ([`Redacting`]), in large
/// pieces (never line by line), however large the output.
pub struct Out {
    w: Redacting<io::Stdout>,
}

impl Write for Out {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.w.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

impl Out {
    /// Writes `data` as the whole of what remains to be written, and flushes.
    ///
    /// # Errors
    /// Writing to stdout fails.
    pub fn write_whole(&mut self, data: &[u8]) -> io::Result<()> {
        self.w.write_all(data)?;
        self.w.flush()
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Writes (already redacted) text and a newline to stderr, above any progress bars.
fn eprint_line(text: &str) {
    crate::progress::eprint(text);
}

/// Where and how output is written.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    /// Colour on stdout.
    pub color: bool,
    color_err: bool,
    quiet: bool,
    verbose: bool,
    err_tty: bool,
}

impl Printer {
    #[must_use]
    pub fn new(choice: ColorChoice, quiet: bool, verbose: bool) -> Printer {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        let err_tty = io::stderr().is_terminal();
        Printer {
            color: decide(io::stdout().is_terminal()),
            color_err: decide(err_tty),
            quiet,
            verbose,
            err_tty,
        }
    }

    /// The result stream (redacted; written out on `flush`).
    #[must_use]
    pub fn stdout(&self) -> Out {
        Out {
            w: Redacting::new(io::stdout()),
        }
    }

    /// How progress of long work is shown on stderr: bars on a terminal with colour, plain
    /// lines otherwise, nothing with --quiet.
    #[must_use]
    pub fn progress_mode(&self) -> crate::progress::Mode {
        crate::progress::Mode::choose(self.quiet, self.err_tty, self.color_err)
    }

    /// A note for people, on stderr (not with --quiet).
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprint_line(&redact(msg));
        }
    }

    /// Detail shown with --verbose.
    pub fn detail(&self, msg: &str) {
        if self.verbose {
            eprint_line(&redact(msg));
        }
    }

    /// A step of long work, shown with --verbose (dimmed where colour is on); the progress bars
    /// or lines ([`crate::progress`]) say how far the work is.
    pub fn progress(&self, msg: &str) {
        if self.verbose {
            if self.color_err {
                eprint_line(&redact(msg).dimmed().to_string());
            } else {
                eprint_line(&redact(msg));
            }
        }
    }

    /// A command's outcome in one line on stderr, so that CI logs show it whatever stdout carries.
    /// Printed with --quiet too: it is a result, not a note. Bold when stderr is coloured.
    pub fn outcome(&self, msg: &str) {
        let msg = redact(msg);
        if self.color_err {
            eprintln!("{}", msg.bold());
        } else {
            eprintln!("{msg}");
        }
    }

    pub fn warn(&self, msg: &str) {
        let msg = redact(msg);
        if self.color_err {
            eprint_line(&format!("{} {msg}", "warning:".yellow().bold()));
        } else {
            eprint_line(&format!("warning: {msg}"));
        }
    }

    /// An error with its causes and a hint.
    pub fn error(&self, e: &Error) {
        let label = if self.color_err {
            "error:".red().bold().to_string()
        } else {
            "error:".to_string()
        };
        let message = e.to_string();
        let mut text = format!("{label} {}", redact(&message));
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            let line = c.to_string();
            // Messages that already quote their cause would say it twice.
            if !message.contains(&line) {
                text.push_str(&format!("\n  caused by: {}", redact(&line)));
            }
            cause = c.source();
        }
        if let Some(h) = e.hint() {
            text.push_str(&format!("\n  hint: {}", redact(&h)));
        }
        eprint_line(&text);
    }

    /// Writes a prompt to stderr and flushes it.
    pub fn prompt(&self, msg: &str) {
        eprint!("{}", redact(msg));
        let _ = io::stderr().flush();
    }
}
