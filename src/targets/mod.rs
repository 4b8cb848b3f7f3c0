//! Targets: the systems idsync changes. A target reads itself into a [`Snapshot`] and applies a plan's
//! actions; `finish` makes the changes durable.
//!
//! A target declares what it can do (reserved group names, request concurrency, last-active lag,
//! writing at `finish`) through [`Target`]; generic code never asks which type it is.
//!
//! Adding a target: a file (or folder) here implementing [`Target`], a variant of [`TargetConfig`],
//! a fake dialect in crates/fakes, a row in tests/conformance.rs (docs/ARCHITECTURE.md).

pub mod atlassian;
mod file;
mod scim;

use std::path::Path;

use async_trait::async_trait;

use crate::config::secret::{self, SecretError};
use crate::config::{Config, TargetConfig};
use crate::http::{Auth, HttpError};
use crate::model::{People, Resolving, Snapshot};
use crate::plan::Action;
use crate::snapshot_file::SnapshotFileError;

pub use crate::scim::ScimDirectory;
pub use atlassian::AtlassianTarget;
pub use file::FileTarget;
pub use scim::ScimTarget;

/// Why a target could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    File(#[from] SnapshotFileError),
    #[error(transparent)]
    Http(Box<HttpError>),
    #[error(transparent)]
    Credential(#[from] SecretError),
    #[error("{0}")]
    Invalid(String),
}

impl From<HttpError> for TargetError {
    fn from(e: HttpError) -> Self {
        TargetError::Http(Box::new(e))
    }
}

pub use crate::plan::ActionError;

impl From<HttpError> for ActionError {
    fn from(e: HttpError) -> Self {
        ActionError(e.to_string())
    }
}

/// The system idsync keeps in line.
#[async_trait]
pub trait Target: Send + Sync {
    /// How plans and messages name the target, e.g. `file:atlassian.yaml`.
    fn name(&self) -> String;
    /// How many actions of one kind may be applied at once.
    fn concurrency(&self) -> usize {
        1
    }
    /// How many requests a plan's cost estimate may count in flight at once; `None` for a target
    /// that makes no requests (a file), whose plans carry no cost.
    fn request_concurrency(&self) -> Option<usize> {
        Some(self.concurrency())
    }
    /// Requests applying this action takes, for the plan's cost estimate.
    fn requests_for(&self, _action: &Action) -> u64 {
        1
    }
    /// Requests sent to the target so far (0 for a file).
    fn requests(&self) -> u64 {
        0
    }
    /// The documented rate budget its writes spend, as `(what, per, window_secs)`, for the plan's
    /// cost estimate; `None` where the API documents none.
    fn write_budget(&self) -> Option<(String, u64, u64)> {
        None
    }
    /// Reads every user and group, completely, or fails.
    async fn snapshot(&mut self) -> Result<Snapshot, TargetError>;
    /// Reads only what concerns these people (see [`Snapshot::restrict_to`] for the shape: their
    /// accounts found by email or by `externalId`, every group with members cut to them). A target
    /// with targeted reads (SCIM filters) overrides this; the default reads everything and cuts it.
    async fn snapshot_people(&mut self, people: &People) -> Result<Snapshot, TargetError> {
        Ok(self.snapshot().await?.restrict_to(people))
    }
    /// The snapshot as a plan reads it: users indexed and group members resolved to them (see
    /// [`Resolving`]). The default resolves [`Target::snapshot`] once read; a snapshot file
    /// resolves its members as it parses them, never holding a string per membership.
    async fn snapshot_resolving(&mut self) -> Result<Resolving, TargetError> {
        let snap = self.snapshot().await?;
        Ok(tokio::task::spawn_blocking(move || Resolving::of(snap))
            .await
            .expect("indexing does not panic"))
    }
    /// What the last snapshot found that a reviewer should know (e.g. `skip_admins` found no admin).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// How late the target's last-active dates may be (Atlassian documents up to 24 hours): a grace
    /// period is measured from the reported moment plus this.
    fn last_active_lag(&self) -> chrono::Duration {
        chrono::Duration::zero()
    }
    /// Why this target refuses to manage a group of this name (e.g. one of Atlassian's
    /// product-access groups, which SCIM cannot push), or `None` for a name it takes.
    fn reserved_group(&self, _name: &str) -> Option<&'static str> {
        None
    }
    /// Applies one action. Actions of one kind may run concurrently.
    async fn apply(&self, action: &Action) -> Result<(), ActionError>;
    /// Makes what was applied durable.
    async fn finish(&mut self) -> Result<(), TargetError>;
    /// For a target whose actions take effect only when `finish` writes them all at once (a file):
    /// prepares that write and returns the SHA-256 of what it will write, so that a journal can record
    /// the actions as done only with the write. `None` for a target whose actions take effect one by
    /// one (and for a file with nothing to write).
    ///
    /// # Errors
    /// What is to be written cannot be prepared.
    fn stage(&mut self) -> Result<Option<String>, TargetError> {
        Ok(None)
    }
    /// Whether the target holds exactly what a `stage` with this SHA-256 prepared (the write happened).
    fn holds(&self, _sha256: &str) -> bool {
        false
    }
    /// Whether actions take effect only in `finish` (see `stage`).
    fn writes_at_finish(&self) -> bool {
        false
    }
}

/// The local file a config's target writes, if it writes one (an apply locks it).
#[must_use]
pub fn local_file(config: &Config, config_dir: &Path) -> Option<std::path::PathBuf> {
    match &config.target {
        TargetConfig::File(f) => Some(crate::config::resolve_path(config_dir, &f.path)),
        TargetConfig::Scim(_) | TargetConfig::Atlassian(_) => None,
    }
}

/// Builds the target a config describes, resolving its credentials.
///
/// # Errors
/// A credential that cannot be read.
pub fn build(config: &Config, config_dir: &Path) -> Result<Box<dyn Target>, TargetError> {
    let bearer = |key: &str, token: Option<&String>, file: Option<&std::path::PathBuf>| {
        secret::resolve(
            key,
            token.map(String::as_str),
            file.map(std::path::PathBuf::as_path),
            config_dir,
        )
        .map(Auth::Bearer)
    };
    Ok(match &config.target {
        TargetConfig::File(f) => Box::new(FileTarget::new(crate::config::resolve_path(
            config_dir, &f.path,
        ))),
        TargetConfig::Scim(s) => {
            let auth = bearer("target", s.token.as_ref(), s.token_file.as_ref())?;
            Box::new(ScimTarget::new(
                ScimDirectory::new("SCIM", &s.base_url, auth, s.page_size, &s.http)
                    .with_member_removal(s.member_removal),
            ))
        }
        TargetConfig::Atlassian(a) => {
            let auth = bearer(
                "target.scim",
                a.scim.token.as_ref(),
                a.scim.token_file.as_ref(),
            )?;
            let dir = ScimDirectory::new(
                "Atlassian SCIM",
                &a.scim.base_url,
                auth,
                a.scim.page_size,
                &a.http,
            )
            .with_member_removal(a.scim.member_removal);
            let admin = match &a.admin {
                Some(adm) => Some(atlassian::AdminApi::new(
                    &adm.base_url,
                    &adm.org_id,
                    bearer("target.admin", adm.token.as_ref(), adm.token_file.as_ref())?,
                    &a.http,
                )),
                None => None,
            };
            Box::new(AtlassianTarget::new(
                dir,
                admin,
                config.cleanup.revoke_api_tokens,
                config.cleanup.skip_admins,
            ))
        }
    })
}
