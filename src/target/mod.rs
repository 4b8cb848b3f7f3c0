//! Targets: the systems idsync changes. A target reads itself into a [`Snapshot`] and applies a plan's
//! actions one at a time; `finish` makes the changes durable.

mod file;

use std::path::Path;

use async_trait::async_trait;

use crate::config::TargetConfig;
use crate::model::Snapshot;
use crate::plan::Action;
use crate::snapshot_file::SnapshotFileError;

pub use file::FileTarget;

/// Why a target could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    File(#[from] SnapshotFileError),
    #[error("{0}")]
    Invalid(String),
}

/// Why one action failed. The message names the object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ActionError(pub String);

/// The system idsync keeps in line.
#[async_trait]
pub trait Target: Send {
    /// How plans and messages name the target, e.g. `file:atlassian.yaml`.
    fn name(&self) -> String;
    /// Reads every user and group, completely, or fails.
    async fn snapshot(&mut self) -> Result<Snapshot, TargetError>;
    /// Applies one action.
    async fn apply(&mut self, action: &Action) -> Result<(), ActionError>;
    /// Makes what was applied durable.
    async fn finish(&mut self) -> Result<(), TargetError>;
}

/// Builds the target a config describes.
#[must_use]
pub fn build(config: &TargetConfig, config_dir: &Path) -> Box<dyn Target> {
    match config {
        TargetConfig::File(f) => Box::new(FileTarget::new(crate::config::resolve_path(
            config_dir, &f.path,
        ))),
    }
}
