//! Secrets: taken from the environment (`${VAR}` in the config) or a file (`token_file:`), and never
//! printed. [`Secret`] has a redacting `Debug` and `Display` and no `Serialize`, so a secret cannot end
//! up in a plan, a report or a log line by accident.
//!
//! A secret can still be echoed back by a server (an error body quoting the `Authorization` header)
//! or hidden in a text the process builds. So every secret value is also recorded, when it is
//! created, in a process-wide registry, and [`redact`] replaces each recorded value in any text
//! where it leaves the process: messages on stderr, results on stdout, plan, report and snapshot
//! files.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not redacted: replacing every `abc` in a plan would mangle it, and
/// so short a credential is no secret anyway.
pub const MIN_REDACTED_LEN: usize = 6;

/// Every secret value the process holds, and one matcher for them all.
static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    values: Vec::new(),
    matcher: None,
    bytes_matcher: None,
});

struct Registry {
    /// Longest first, so that a secret containing another is replaced whole.
    values: Vec<String>,
    /// An alternation of the values (the regex crate finds literal sets in one pass).
    matcher: Option<regex::Regex>,
    /// The same alternation over bytes, for [`Redacting`] (a stream cut anywhere, even inside a
    /// character).
    bytes_matcher: Option<regex::bytes::Regex>,
}

/// Records a credential value so that [`redact`] removes it from every text that leaves the process.
/// Also records the forms the value takes inside JSON (escaped), the lines of a multi-line value
/// (a PEM key) and the `private_key` of a JSON key file.
pub fn register(value: &str) {
    let mut forms = vec![value.trim().to_string()];
    if let Ok(escaped) = serde_json::to_string(value.trim()) {
        forms.push(escaped[1..escaped.len() - 1].to_string());
    }
    if value.trim().contains('\n') {
        forms.extend(
            value
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                .map(String::from),
        );
    }
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(value) {
        for k in ["private_key", "private_key_id"] {
            if let Some(v) = m.get(k).and_then(serde_json::Value::as_str) {
                register(v);
            }
        }
    }
    let mut reg = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let mut changed = false;
    for f in forms {
        if f.chars().count() >= MIN_REDACTED_LEN && !reg.values.contains(&f) {
            reg.values.push(f);
            changed = true;
        }
    }
    if changed {
        reg.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let alternation: Vec<String> = reg.values.iter().map(|v| regex::escape(v)).collect();
        let pattern = alternation.join("|");
        reg.matcher = regex::RegexBuilder::new(&pattern)
            .size_limit(64 << 20)
            .build()
            .ok();
        reg.bytes_matcher = reg.matcher.as_ref().and_then(|_| {
            regex::bytes::RegexBuilder::new(&pattern)
                .size_limit(64 << 20)
                .build()
                .ok()
        });
    }
}

/// The text with every registered secret value replaced by `[redacted]`.
#[must_use]
pub fn redact(text: &str) -> Cow<'_, str> {
    let reg = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    if let Some(m) = &reg.matcher {
        return match m.replace_all(text, regex::NoExpand(REDACTED)) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            Cow::Owned(s) => Cow::Owned(s),
        };
    }
    // No matcher (none registered, or too many to compile): one value at a time.
    let mut out = Cow::Borrowed(text);
    for secret in &reg.values {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

/// [`redact`] over bytes: text that is not UTF-8 is redacted where it is.
#[must_use]
pub fn redact_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    match std::str::from_utf8(bytes) {
        Ok(text) => match redact(text) {
            Cow::Borrowed(_) => Cow::Borrowed(bytes),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            match redact(&text) {
                Cow::Borrowed(_) => Cow::Borrowed(bytes),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }
        }
    }
}

/// How much a [`Redacting`] writer gathers before it passes text on.
const REDACTING_CHUNK: usize = 256 << 10;

/// A writer that passes text on with every registered secret replaced, as [`redact_bytes`] would
/// replace them in the whole text, without ever holding the whole text: it gathers up to
/// [`REDACTING_CHUNK`] bytes, and of those holds back only what a secret starting there could still
/// need (the longest secret's length, less one). A match is at most that long, so one starting
/// before the part held back lies whole in what was gathered, and is found there as in the whole
/// text. For output of any size (a plan at a million users is hundreds of MB).
pub struct Redacting<W: std::io::Write> {
    inner: W,
    held: Vec<u8>,
}

impl<W: std::io::Write> Redacting<W> {
    pub fn new(inner: W) -> Redacting<W> {
        Redacting {
            inner,
            held: Vec::new(),
        }
    }

    /// The writer within, to write to it directly (flush first: what is held back comes after).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The writer within (what was held back is lost: flush first).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Passes on all that is gathered (`all`), or all but what a secret could still need.
    fn pass_on(&mut self, all: bool) -> std::io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let reg = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
        let Some(longest) = reg.values.first().map(String::len) else {
            drop(reg);
            self.inner.write_all(&self.held)?;
            self.held.clear();
            return Ok(());
        };
        let Some(m) = &reg.bytes_matcher else {
            // Too many secrets for one matcher (see `register`): redacted whole, at the end.
            if all {
                let text = redact_bytes(&self.held).into_owned();
                drop(reg);
                self.inner.write_all(&text)?;
                self.held.clear();
            }
            return Ok(());
        };
        let cut = if all {
            self.held.len()
        } else {
            self.held.len().saturating_sub(longest - 1)
        };
        let mut done = 0;
        for found in m.find_iter(&self.held) {
            if found.start() >= cut {
                break;
            }
            self.inner.write_all(&self.held[done..found.start()])?;
            self.inner.write_all(REDACTED.as_bytes())?;
            done = found.end();
        }
        let end = cut.max(done);
        self.inner.write_all(&self.held[done..end])?;
        drop(reg);
        self.held.drain(..end);
        Ok(())
    }
}

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.held.len() + data.len() <= REDACTING_CHUNK {
            self.held.extend_from_slice(data);
            return Ok(data.len());
        }
        if self.held.len() >= REDACTING_CHUNK {
            self.pass_on(false)?;
        }
        let room = REDACTING_CHUNK.saturating_sub(self.held.len()).max(1);
        let take = data.len().min(room);
        self.held.extend_from_slice(&data[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.pass_on(true)?;
        self.inner.flush()
    }
}

/// A credential. Shows as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Secret(value)
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
    fn a_redacting_stream_writes_what_redacting_the_whole_text_gives() {
        use std::io::Write as _;
        register("stream-secret-0123456789");
        register("stream-secret-0123456789-longer-form");
        // Secrets on every side of the chunk boundaries, split across writes of every size.
        let mut text = Vec::new();
        let mut k = 0usize;
        while text.len() < 3 * REDACTING_CHUNK + 1000 {
            text.extend_from_slice(format!("line {k} ").as_bytes());
            if k.is_multiple_of(997) || (text.len() % REDACTING_CHUNK) > REDACTING_CHUNK - 40 {
                let secret = if k.is_multiple_of(2) {
                    "stream-secret-0123456789"
                } else {
                    "stream-secret-0123456789-longer-form"
                };
                text.extend_from_slice(secret.as_bytes());
            }
            text.extend_from_slice("é\n".as_bytes());
            k += 1;
        }
        let whole = redact_bytes(&text).into_owned();
        assert_ne!(whole, text, "the text holds secrets");
        for piece in [1, 7, 4096, REDACTING_CHUNK - 3, text.len()] {
            let mut w = Redacting::new(Vec::new());
            for part in text.chunks(piece) {
                w.write_all(part).unwrap();
            }
            w.flush().unwrap();
            let streamed = w.into_inner();
            assert!(
                streamed == whole,
                "writes of {piece} bytes: the stream differs from the whole text redacted"
            );
        }
    }

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "[redacted] Secret([redacted])");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn registered_values_are_redacted_wherever_they_appear() {
        let s = Secret::new("tok-9f8e7d6c5b");
        assert_eq!(
            redact("HTTP 401 (Authorization: Bearer tok-9f8e7d6c5b)"),
            "HTTP 401 (Authorization: Bearer [redacted])"
        );
        assert_eq!(s.expose(), "tok-9f8e7d6c5b", "the value itself is kept");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        // A secret that contains another is replaced whole.
        register("inner-7d6c5b4a");
        register("outer-inner-7d6c5b4a-tail");
        assert_eq!(
            redact("a outer-inner-7d6c5b4a-tail b inner-7d6c5b4a c"),
            "a [redacted] b [redacted] c"
        );
        // Too short to redact without mangling other text.
        register("abc");
        assert_eq!(redact("abcdef"), "abcdef");
        // A PEM's lines, a JSON-escaped form and a key file's private key.
        register("-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----\n");
        assert_eq!(
            redact("echo MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
            "echo [redacted]"
        );
        register(r#"{"private_key":"pk\"quoted-value","client_email":"a@b"}"#);
        assert_eq!(redact(r#"x pk"quoted-value y"#), "x [redacted] y");
        assert_eq!(redact(r#""pk\"quoted-value""#), r#""[redacted]""#);
        assert_eq!(
            redact_bytes(b"Bearer tok-9f8e7d6c5b\xff").as_ref(),
            b"Bearer [redacted]\xef\xbf\xbd"
        );
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
