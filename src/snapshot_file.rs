//! Snapshot files: the normalized model as YAML or JSON (chosen by the file's extension), read by
//! `file` connectors and written by `idsync snapshot` and by `apply` on a file target.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::Snapshot;

/// A snapshot file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    #[error("cannot read snapshot file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot file {}{}: {message}", path.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        at: Option<(usize, usize)>,
        message: String,
    },
    #[error("cannot write snapshot file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The serialization of a file, by extension: `.json` is JSON, anything else YAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    #[must_use]
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Reads a snapshot file.
///
/// # Errors
/// The file cannot be read or is not a snapshot (the error names the line and column).
pub fn read(path: &Path) -> Result<Snapshot, SnapshotFileError> {
    let bytes = std::fs::read(path).map_err(|source| SnapshotFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Parses snapshot bytes as the format `path` names.
///
/// # Errors
/// As [`read`].
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Snapshot, SnapshotFileError> {
    // A byte-order mark (Windows editors write one) is not part of the first key.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match Format::of(path) {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| SnapshotFileError::Parse {
            path: path.to_path_buf(),
            at: Some((e.line(), e.column())),
            message: strip_location(&e.to_string()),
        }),
        Format::Yaml => yaml_serde::from_slice(bytes).map_err(|e| SnapshotFileError::Parse {
            path: path.to_path_buf(),
            at: e.location().map(|l| (l.line(), l.column())),
            message: strip_location(&e.to_string()),
        }),
    }
}

fn strip_location(msg: &str) -> String {
    msg.split(" at line ").next().unwrap_or(msg).to_string()
}

/// Serializes a snapshot in the given format.
#[must_use]
pub fn to_string(snapshot: &Snapshot, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(snapshot).expect("snapshots serialize");
            s.push('\n');
            s
        }
        Format::Yaml => yaml_serde::to_string(snapshot).expect("snapshots serialize"),
    }
}

/// Writes a file meant for people (a plan, a report, a snapshot) as [`replace_atomic`] does, with any
/// secret the process holds redacted from the content first.
///
/// # Errors
/// As [`replace_atomic`].
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<(), SnapshotFileError> {
    replace_atomic(path, &crate::config::secret::redact_bytes(content))
}

/// Replaces a file's content atomically, byte for byte: a temporary file in the same folder, flushed,
/// then renamed over the old one. A failure leaves the old file as it was. A symbolic link is written
/// through: the file it points to is replaced (atomically, in that file's folder) and the link stays.
/// For data idsync reads back (a file target, the journal), whose bytes must be what was hashed.
///
/// # Errors
/// The temporary file cannot be written or renamed, or `path` is a link that leads nowhere.
pub fn replace_atomic(path: &Path, content: &[u8]) -> Result<(), SnapshotFileError> {
    let err = |source| SnapshotFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let resolved;
    let path = if path.is_symlink() {
        resolved = std::fs::canonicalize(path).map_err(|e| {
            err(std::io::Error::new(
                e.kind(),
                format!("it is a symbolic link whose target cannot be resolved ({e})"),
            ))
        })?;
        resolved.as_path()
    } else {
        path
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".idsync-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(content).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}
