//! Identity-provider connectors. Each reads one IdP into a [`Snapshot`]; a source can only read.
//!
//! Adding a connector: a file here with a type implementing [`Source`], a variant of
//! [`SourceConfig`], a fake in tests/fakes/, an example, and an entry in the convergence suite.

mod file;

use std::path::Path;

use async_trait::async_trait;

use crate::config::SourceConfig;
use crate::model::Snapshot;
use crate::snapshot_file::SnapshotFileError;

pub use file::FileSource;

/// Why a source could not be read. A failed read aborts the plan: it never means "these users are gone".
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    File(#[from] SnapshotFileError),
}

/// An identity provider, read-only.
#[async_trait]
pub trait Source: Send + Sync {
    /// The configured name; qualifies the source's group names.
    fn name(&self) -> &str;
    /// Reads every user and group, completely, or fails.
    async fn snapshot(&self) -> Result<Snapshot, SourceError>;
}

/// Builds the connector a source config describes.
#[must_use]
pub fn build(config: &SourceConfig, config_dir: &Path) -> Box<dyn Source> {
    match config {
        SourceConfig::File(f) => Box::new(FileSource::new(
            &f.name,
            crate::config::resolve_path(config_dir, &f.path),
        )),
    }
}
