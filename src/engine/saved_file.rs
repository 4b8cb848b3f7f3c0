//! Reading a saved plan: the format-version rule ([`super::FORMAT_VERSION`]), and the seal checked
//! over the file as written, so that fields this idsync does not know are covered too.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::plan::{
    check_seal, parse_format_version, Plan, SealError, FORMAT_MAJOR, FORMAT_MINOR, KEY_VAR,
};

/// A plan read from a file.
#[derive(Debug)]
pub struct Saved {
    pub plan: Plan,
    /// The file's JSON: what its seal covers, with any field this idsync does not know.
    pub raw: Value,
    /// The file's text, as written.
    pub text: String,
    /// Its format version, `(major, minor)`.
    pub version: (u64, u64),
}

/// Why a file is not a plan this idsync reads.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not JSON ({0})")]
    NotJson(serde_json::Error),
    #[error("not an idsync plan (no format_version)")]
    NoVersion,
    #[error("not an idsync plan (format_version {0:?} is not MAJOR.MINOR)")]
    BadVersion(String),
    /// A plan of a major version this idsync does not read.
    #[error(
        "plan format {found} is {} than this idsync reads: it reads plan formats {FORMAT_MAJOR}.x (idsync {}), the plan was made by idsync {made_by}",
        if *newer { "newer" } else { "older" },
        env!("CARGO_PKG_VERSION")
    )]
    OtherMajor {
        found: String,
        made_by: String,
        newer: bool,
    },
    #[error("not a valid plan of format {found}: {source}")]
    Invalid {
        found: String,
        source: serde_json::Error,
    },
}

/// Reads a saved plan of a major format version this idsync knows, whatever its minor version;
/// fields this idsync does not know are kept in [`Saved::raw`] and otherwise ignored.
///
/// # Errors
/// The file cannot be read, is not JSON, has no usable `format_version`, is of another major version,
/// or does not hold a plan.
pub fn read(path: &Path) -> Result<Saved, ReadError> {
    let text = std::fs::read_to_string(path)?;
    let raw: Value = serde_json::from_str(&text).map_err(ReadError::NotJson)?;
    let found = raw
        .get("format_version")
        .and_then(Value::as_str)
        .ok_or(ReadError::NoVersion)?
        .to_string();
    let version =
        parse_format_version(&found).ok_or_else(|| ReadError::BadVersion(found.clone()))?;
    if version.0 != FORMAT_MAJOR {
        let made_by = raw
            .get("idsync_version")
            .and_then(Value::as_str)
            .unwrap_or("(not recorded)")
            .to_string();
        return Err(ReadError::OtherMajor {
            found,
            made_by,
            newer: version.0 > FORMAT_MAJOR,
        });
    }
    let plan = Plan::deserialize(&raw).map_err(|source| ReadError::Invalid {
        found: found.clone(),
        source,
    })?;
    Ok(Saved {
        plan,
        raw,
        text,
        version,
    })
}

impl Saved {
    /// Checks the digest and, with a key, the signature over the file as written (a plan of format
    /// 2.0 over its typed form, as it was sealed).
    ///
    /// # Errors
    /// The content does not match the digest, or a key is given and the plan is unsigned or signed
    /// with another key.
    pub fn verify_seal(&self, key: Option<&[u8]>) -> Result<(), SealError> {
        if self.version == (2, 0) {
            return self.plan.verify_seal(key);
        }
        let digest = self.raw.get("digest").and_then(Value::as_str).unwrap_or("");
        let signature = self.raw.get("signature").and_then(Value::as_str);
        check_seal(
            &crate::plan::canonical_content(&self.raw),
            digest,
            signature,
            key,
        )
    }

    /// Whether a newer idsync made the plan (a later minor version): fields it added are not shown,
    /// and reason codes it added read as `unknown`.
    #[must_use]
    pub fn newer_minor(&self) -> bool {
        self.version.1 > FORMAT_MINOR
    }
}

/// Seals a plan given as JSON, as idsync seals the plans it makes: the digest and, with a key, the
/// signature over [`canonical_content`](super::canonical_content), so that every field is covered,
/// known to this idsync or not. For tools that write plans of this format, and tests.
pub fn seal_json(raw: &mut Value, key: Option<&[u8]>) {
    let content = crate::plan::canonical_content(raw);
    let Value::Object(m) = raw else {
        return;
    };
    m.insert("digest".into(), crate::digest::sha256_hex(&content).into());
    m.remove("signature");
    if let Some(k) = key {
        m.insert("signature".into(), crate::plan::sign(k, &content).into());
    }
}

/// The plan-signing key from the environment: `None` when unset.
///
/// # Errors
/// The variable is set but empty (an unset CI secret), or not Unicode.
pub fn key_from_env() -> Result<Option<Vec<u8>>, String> {
    match std::env::var(KEY_VAR) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{KEY_VAR} is not valid UTF-8")),
        Ok(k) if k.is_empty() => Err(format!(
            "{KEY_VAR} is set but empty (an unset CI secret?); set it to the signing key, or unset it"
        )),
        Ok(k) => Ok(Some(k.into_bytes())),
    }
}
