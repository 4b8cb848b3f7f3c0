//! Secrets: taken from the environment (`${VAR}` in the config) or a file (`token_file:`), and never
//! printed. [`Secret`] has a redacting `Debug` and `Display` and no `Serialize`, so a secret cannot end
//! up in a plan, a report or a log line by accident.

use std::fmt;
use std::path::{Path, PathBuf};

/// A credential. Shows as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (an `Authorization` header).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret could not be had. Never carries the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("{key}: set either `token` or `token_file`, not both")]
    Both { key: String },
    #[error("{key}: no credential; set `token` (e.g. token: ${{MY_TOKEN}}) or `token_file`")]
    Missing { key: String },
    #[error("{key}: cannot read token file {}: {reason}", path.display())]
    Unreadable {
        key: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{key}: token file {} is empty", path.display())]
    Empty { key: String, path: PathBuf },
}

/// Resolves a credential given inline (already `${VAR}`-expanded) or as a file path. The file's content
/// is trimmed of surrounding white space; a relative path is relative to `base_dir`.
///
/// # Errors
/// Both or neither given, an unreadable file or an empty one.
pub fn resolve(
    key: &str,
    token: Option<&str>,
    token_file: Option<&Path>,
    base_dir: &Path,
) -> Result<Secret, SecretError> {
    match (token, token_file) {
        (Some(_), Some(_)) => Err(SecretError::Both { key: key.into() }),
        (None, None) => Err(SecretError::Missing { key: key.into() }),
        (Some(t), None) if t.trim().is_empty() => Err(SecretError::Missing { key: key.into() }),
        (Some(t), None) => Ok(Secret::new(t.trim())),
        (None, Some(p)) => {
            let path = super::resolve_path(base_dir, p);
            let text = std::fs::read_to_string(&path).map_err(|e| SecretError::Unreadable {
                key: key.into(),
                path: path.clone(),
                reason: e.kind().to_string(),
            })?;
            let t = text.trim();
            if t.is_empty() {
                return Err(SecretError::Empty {
                    key: key.into(),
                    path,
                });
            }
            Ok(Secret::new(t))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] Secret([redacted])");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn resolves_inline_and_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "  abc\n").unwrap();
        let from_file = resolve("target.token", None, Some(Path::new("tok")), dir.path()).unwrap();
        assert_eq!(from_file.expose(), "abc");
        assert_eq!(
            resolve("k", Some("x"), None, dir.path()).unwrap().expose(),
            "x"
        );
        assert!(matches!(
            resolve("k", Some("x"), Some(Path::new("tok")), dir.path()),
            Err(SecretError::Both { .. })
        ));
        assert!(matches!(
            resolve("k", None, None, dir.path()),
            Err(SecretError::Missing { .. })
        ));
        let missing = resolve("k", None, Some(Path::new("nope")), dir.path()).unwrap_err();
        assert!(missing.to_string().contains("cannot read token file"));
    }
}
