//! Exit statuses: the only place exit codes are decided.

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Done; or a plan without changes.
    Success,
    /// Bad input, a remote failure, a stale plan, a tripped guard, a refused confirmation.
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
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s.code())
    }
}
