//! The command line (clap derive types only; commands take what they need from here).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::render::Format;

/// Keeps Atlassian Cloud users and groups in line with your identity provider.
///
/// idsync reads the desired state from one YAML file and the identity provider(s) it names, snapshots
/// Atlassian, and prints a reviewable plan. `apply` makes the changes after confirmation, or applies a
/// saved plan exactly, refusing when the world moved on since it was made.
#[derive(Debug, Parser)]
#[command(
    name = "idsync",
    version,
    max_term_width = 100,
    after_help = crate::exit::EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to colour output (never: no escape codes on stderr either, so progress comes as plain
    /// lines rather than bars).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// More detail on stderr: phase timings, every retry and throttling wait.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Only results and errors: no progress, notes or waits on stderr (a plan's one-line summary on
    /// stderr is a result, and stays).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The config file option shared by every command that reads one.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(
        short,
        long = "config",
        value_name = "FILE",
        default_value = "idsync.yaml"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a config: YAML, JSON Schema and semantic checks. Reads no source or target.
    ///
    /// Also checks that the files the config names (the `path` of file connectors, `token_file`,
    /// `client_secret_file`, key files, …) exist and can be read, and warns about a secret written
    /// into the YAML itself. Exits 1 on any error; warnings alone exit 0.
    Validate {
        #[command(flatten)]
        config: ConfigArg,
        /// Check without the secrets: an unset `${VAR}` gets a placeholder and is listed as
        /// needed, and a credential file that is not there is a warning (for pull requests, also
        /// from forks, which get no secrets).
        #[arg(long)]
        offline: bool,
        /// Output format on stdout: github prints workflow commands (`::error file=…,line=…::`)
        /// that annotate the pull request.
        #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
        format: ValidateFormat,
    },
    /// Snapshot both sides and print what apply would change.
    ///
    /// Whatever the format, one line on stderr sums the plan up (`Plan: 3 to deactivate, …`), so
    /// that CI logs show the outcome. With --format markdown (for a pull-request comment: riskiest
    /// sections first), a plan that fails still prints a markdown body saying what failed and what
    /// to do.
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        /// Also save the plan (JSON) for `idsync apply FILE`. Not written when the plan fails.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Exit 2 when the plan has changes, 0 when it has none, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// With --format markdown: the most characters the output may have (counted as UTF-8
        /// bytes). The default is GitHub's comment limit; raise it for GitLab notes or GitHub's
        /// 1 MiB job summary. What does not fit is left out whole entries at a time, least risky
        /// sections first, with a count of what was left out.
        #[arg(long, value_name = "N", default_value_t = 65_536,
              value_parser = clap::value_parser!(u32).range(crate::render::MARKDOWN_LIMIT_MIN as i64..))]
        markdown_limit: u32,
        #[command(flatten)]
        only: OnlyFlags,
        #[command(flatten)]
        guards: GuardFlags,
    },
    /// Plan (and with --apply, apply) the changes for just these people: onboarding or an urgent
    /// offboarding without a full run.
    ///
    /// Reads only these people from every source and the target (by email, and by the IdP ids
    /// their accounts carry, so a renamed person is found as one): create, link, update, reactivate,
    /// deactivate (revoking API tokens with cleanup.revoke_api_tokens), and their memberships of
    /// the groups idsync manages. A person in no source is a leaver, deactivated under the cleanup
    /// rules; protect, skip_admins and grace_days hold as in every plan. The plan is the one `plan
    /// --only-user EMAIL` makes, marked partial. With --apply it asks as `apply` does (or not, with
    /// --auto-approve; with no terminal and no --auto-approve it refuses). -v says how many
    /// requests the reads made.
    SyncUser {
        #[command(flatten)]
        config: ConfigArg,
        /// The people, by primary email (any case); an email nobody has in any source or the target
        /// is an error.
        #[arg(value_name = "EMAIL", required = true)]
        emails: Vec<String>,
        /// Apply the plan after confirmation.
        #[arg(long)]
        apply: bool,
        /// With --apply: apply without asking (for scripts; review the plan first).
        #[arg(long, requires = "apply")]
        auto_approve: bool,
        /// Output format of the plan on stdout.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// With --apply: write a run report (JSON) here, as `apply --report` does.
        #[arg(long, value_name = "FILE", requires = "apply")]
        report: Option<PathBuf>,
        #[command(flatten)]
        guards: GuardFlags,
    },
    /// Apply a saved plan exactly, or plan afresh, show the plan and ask for confirmation.
    ///
    /// The --allow-mass-* flags count only without PLAN_FILE: a saved plan carries the decisions
    /// made when it was planned.
    Apply {
        #[command(flatten)]
        config: ConfigArg,
        /// A plan saved by `idsync plan --out`; refused if it was edited, or if the config or what its
        /// actions rely on in the target changed since. Its journal (PLAN_FILE.journal) lets an
        /// interrupted apply be finished by running the same command again.
        #[arg(value_name = "PLAN_FILE")]
        plan: Option<PathBuf>,
        /// Apply without asking (for CI, after the plan was reviewed).
        #[arg(long)]
        auto_approve: bool,
        /// Write a run report (JSON) here: status, counts, per-action results.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        #[command(flatten)]
        guards: GuardFlags,
    },
    /// Show a saved plan (a `plan --out` file, a pull request's artifact, a drift result), reading
    /// nothing else.
    ///
    /// Reads only PLAN_FILE: no config file, no credentials, no source or target. It checks the
    /// plan's digest, and with IDSYNC_PLAN_KEY set its signature: a plan that fails the check
    /// is still shown, under a warning (on stderr only, for --format json), and the command exits 1.
    /// A plan of a later 2.x format is shown without the fields this idsync does not know; a plan of
    /// another major format is refused, naming the idsync that made it.
    Show {
        /// A plan saved by `idsync plan --out` (or `idsync plan --format json`).
        #[arg(value_name = "PLAN_FILE")]
        plan: PathBuf,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
        /// Exit 2 when the plan has changes, 0 when it has none, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// With --format markdown: the most characters the output may have (as for `plan`).
        #[arg(long, value_name = "N", default_value_t = 65_536,
              value_parser = clap::value_parser!(u32).range(crate::render::MARKDOWN_LIMIT_MIN as i64..))]
        markdown_limit: u32,
    },
    /// Write the normalized snapshot of one side, readable by a `file` connector.
    Snapshot {
        #[command(flatten)]
        config: ConfigArg,
        /// Which side.
        #[arg(long, value_enum)]
        side: Side,
        /// With several sources: which one (by name).
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// Write here (YAML, or JSON for a .json name) instead of stdout (YAML).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Explain, step by step, why a person or a group is (or is not) synced as it is, and what the
    /// plan does about it.
    ///
    /// For a person (an argument with `@`): each source that has them (id, status, groups), the
    /// users.require_groups/exclude verdict, each attribute template with its value, how their
    /// Atlassian account is matched (externalId or email), each managed group (in or out, and the
    /// mapping responsible), the cleanup rules that apply, and the plan's actions for them, or why
    /// there are none. Reads only that person (the sources' and the target's per-person reads, as
    /// sync-user does). Someone in no source and not in Atlassian is an answer, not an error: the
    /// trace says so and the exit code is 0.
    ///
    /// For a group: whether idsync manages it and through which rule, the IdP groups that feed it,
    /// and the members the plan adds or removes, with why. A group's members are read in full (every
    /// source and the target), as a plan reads them. Exit codes: 0 on an answer, 1 on an error.
    Explain {
        #[command(flatten)]
        config: ConfigArg,
        /// A person's email, or an Atlassian group's name.
        #[arg(value_name = "EMAIL|GROUP")]
        subject: String,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
        format: ExplainFormat,
    },
    /// Print a JSON Schema: the config's, or with --plan the saved plan's.
    Schema {
        /// The saved-plan schema instead of the config's.
        #[arg(long)]
        plan: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish) to stdout.
    ///
    /// For example `idsync completions bash > ~/.local/share/bash-completion/completions/idsync`;
    /// README's Install section lists where each shell looks.
    Completions {
        /// The shell.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `idsync man > idsync.1; man ./idsync.1`.
    Man,
}

/// How `idsync validate` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// For people: `file:line:col: key: message`, with hints.
    Text,
    /// One object: {valid, errors, warnings, env_needed, env_unset} (see the README).
    Json,
    /// GitHub Actions workflow commands, one per error and warning, and a summary line.
    Github,
}

/// How `idsync show` draws a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// Where the plan came from, then the plan as `idsync plan` prints it.
    Text,
    /// As `idsync plan --format markdown` prints it.
    Markdown,
    /// The plan file as written (every field, also those this idsync does not know).
    Json,
    /// One line per kind of action with its count (memberships for add_members and
    /// remove_members), the total, the guard lines, and the counts of warnings, users left alone and
    /// blocking problems.
    Summary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Side {
    Source,
    Target,
}

/// A partial plan's scope (`plan --only-user`, `--only-group`).
#[derive(Debug, Args)]
pub struct OnlyFlags {
    /// Plan only for users matching PATTERN: an email, or `*` and `?` wildcards as in the config's
    /// patterns (case-insensitive). Keeps their create, link, update, reactivation, deactivation,
    /// token revocation and memberships. Repeatable. The plan is marked partial; a pattern that
    /// matches nobody is an error.
    #[arg(long, value_name = "PATTERN")]
    pub only_user: Vec<String>,
    /// Plan only for this managed Atlassian group: its creation and membership changes.
    /// Repeatable; combines with --only-user (either matches). A name the config does not manage is
    /// an error.
    #[arg(long, value_name = "NAME")]
    pub only_group: Vec<String>,
}

impl OnlyFlags {
    /// The scope, if any was asked for.
    #[must_use]
    pub fn scope(&self) -> Option<crate::plan::scope::Scope> {
        crate::plan::scope::Scope::new(
            self.only_user.clone(),
            self.only_group.clone(),
            crate::plan::scope::ScopeRead::Full,
        )
    }
}

/// Flags that let a plan past a tripped guard.
#[derive(Debug, Args)]
pub struct GuardFlags {
    /// Let a plan that deactivates more users than cleanup.max_deactivations allows go ahead.
    #[arg(long)]
    pub allow_mass_deactivation: bool,
    /// Let a plan that updates more users than cleanup.max_updates allows go ahead.
    #[arg(long)]
    pub allow_mass_update: bool,
    /// Let a plan that removes more group memberships than cleanup.max_membership_removals (or,
    /// in one group, cleanup.max_membership_removals_per_group) allows go ahead.
    #[arg(long)]
    pub allow_mass_membership_removal: bool,
}

impl GuardFlags {
    #[must_use]
    pub fn overrides(&self) -> crate::plan::Overrides {
        crate::plan::Overrides {
            deactivation: self.allow_mass_deactivation,
            update: self.allow_mass_update,
            membership_removal: self.allow_mass_membership_removal,
        }
    }
}

/// How `explain` prints its trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainFormat {
    Text,
    Json,
}
