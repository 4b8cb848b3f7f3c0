//! `type: file` in the config file: the connector's settings and their checks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Diagnostic, KeyPath};

/// A snapshot file read as an identity provider.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Names this source; its groups are referred to as `NAME:Group` in mappings.
    pub name: String,
    /// The snapshot file; a relative path is relative to the config file's folder.
    pub path: PathBuf,
}

/// The checks a schema cannot express (none for this connector).
pub(crate) fn check(_: &FileSourceConfig, _: &KeyPath, _: &mut Vec<Diagnostic>) {}
