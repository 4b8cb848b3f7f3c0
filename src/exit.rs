//! Exit statuses: the only place exit codes are decided, for results, usage errors and panics.
#![allow(clippy::print_stderr)]

/// The exit codes, as `--help` and README state them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success; or a plan without changes
  1  any error: bad usage (unknown flag, bad value, missing subcommand), bad config,
     unreadable source or target, stale plan, tripped guard, refused confirmation,
     failed action, internal error
  2  changes present (plan or show --detailed-exitcode), and nothing else";

/// Where an internal error (a bug) is to be reported.
pub const REPORT_BUGS: &str =
    "this is a bug in idsync; please report it to the idsync maintainers (the issue tracker of the repository idsync came from), with the command you ran and this message";

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; or a plan without changes.
    Success,
    /// Bad input, a remote failure, a stale plan, a tripped guard, a refused confirmation, a usage
    /// error, an internal error.
    Error,
    /// A plan with changes, under `--detailed-exitcode`.
    Changes,
}

impl ExitStatus {
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Error => 1,
            ExitStatus::Changes => 2,
        }
    }

    /// Prints a command-line parsing outcome (clap's message, with its "did you mean") and says
    /// how it ends: `--help` and `--version` succeed, every usage error is an error (1, never
    /// clap's own 2, which would read as "changes present").
    #[must_use]
    pub fn of_usage(e: &clap::Error) -> ExitStatus {
        let _ = e.print();
        if e.use_stderr() {
            ExitStatus::Error
        } else {
            ExitStatus::Success
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s.code())
    }
}

/// Makes a panic say "internal error" and where to report it (its message redacted like every
/// other); `main` then exits 1 instead of Rust's 101.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let msg = format!(
            "error: internal error: {what}{at} (idsync {})\n  hint: {REPORT_BUGS}",
            env!("CARGO_PKG_VERSION")
        );
        eprintln!("{}", crate::config::secret::redact(&msg));
    }));
}

/// Runs `f`, turning a panic (already reported by the hook) into [`ExitStatus::Error`].
pub fn catching_panics(f: impl FnOnce() -> ExitStatus) -> ExitStatus {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(ExitStatus::Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_ends_as_an_error_and_clap_outcomes_are_sorted() {
        let status = catching_panics(|| -> ExitStatus { panic!("boom") });
        assert_eq!(status, ExitStatus::Error);
        assert_eq!(catching_panics(|| ExitStatus::Changes).code(), 2);
        assert_eq!(ExitStatus::Error.code(), 1);
        assert_eq!(ExitStatus::Success.code(), 0);
        let help = clap::Error::new(clap::error::ErrorKind::DisplayHelp);
        assert!(!help.use_stderr());
        let usage = clap::Error::new(clap::error::ErrorKind::InvalidValue);
        assert!(usage.use_stderr());
    }
}
