//! `type: file`: a snapshot file read as an identity provider. A targeted read keeps the `Source`
//! default: the file is read whole and cut down to the people (there is nothing to save).

pub mod config;

use std::path::PathBuf;

use async_trait::async_trait;

use self::config::FileSourceConfig;
use super::{Source, SourceError};
use crate::model::{Resolving, Snapshot};
use crate::snapshot_file;

/// A snapshot file standing in for an IdP.
#[derive(Debug)]
pub struct FileSource {
    name: String,
    path: PathBuf,
}

impl FileSource {
    #[must_use]
    pub fn new(name: &str, path: PathBuf) -> Self {
        FileSource {
            name: name.to_string(),
            path,
        }
    }
}

#[async_trait]
impl Source for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn snapshot(&self) -> Result<Snapshot, SourceError> {
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || snapshot_file::read(&path));
        Ok(read.await.expect("reading does not panic")?)
    }

    async fn snapshot_resolving(&self) -> Result<Resolving, SourceError> {
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || snapshot_file::read_resolving(&path));
        Ok(read.await.expect("reading does not panic")?)
    }
}

/// Builds the connector its config describes, resolving its credentials.
///
/// # Errors
/// A credential that cannot be read, or settings that name no server.
pub(crate) fn build(
    f: &FileSourceConfig,
    config_dir: &std::path::Path,
) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(FileSource::new(
        &f.name,
        crate::config::resolve_path(config_dir, &f.path),
    )))
}
