//! Reading a config: YAML → `${ENV}` expansion → JSON Schema → typed config → semantic checks.
//! This is the only file that parses the config's YAML (yaml_serde; docs/ARCHITECTURE.md says why that crate).

use std::fmt;
use std::path::{Path, PathBuf};

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use super::locate::{KeyPath, Locator, Seg};
use super::secret;
use super::validate;
use super::{Config, SOURCE_TYPES, TARGET_TYPES};
use crate::rules::Rules;

/// One thing wrong with the config, at a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: KeyPath,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(path: KeyPath, message: impl Into<String>) -> Self {
        Diagnostic {
            path,
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    /// `key.path: message` (the message alone at the top level); the hint is not part of it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.0.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_invalid(path, located))]
    Invalid {
        path: PathBuf,
        /// Each problem with its line and column when the text has the key.
        located: Vec<(Diagnostic, Option<(usize, usize)>)>,
    },
}

impl ConfigError {
    /// What the user can do about it.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Read { .. } => Some(
                "pass the config with -c PATH (the default is ./idsync.yaml); `idsync schema` prints its JSON Schema"
                    .into(),
            ),
            ConfigError::Invalid { .. } => None,
        }
    }
}

fn render_invalid(path: &Path, located: &[(Diagnostic, Option<(usize, usize)>)]) -> String {
    let mut out = format!(
        "invalid config {} ({} problem{})",
        path.display(),
        located.len(),
        if located.len() == 1 { "" } else { "s" }
    );
    for (d, spot) in located {
        out.push('\n');
        match spot {
            Some((line, col)) => out.push_str(&format!("  {}:{line}:{col}: ", path.display())),
            None => out.push_str(&format!("  {}: ", path.display())),
        }
        if d.path.0.is_empty() {
            out.push_str(&d.message);
        } else {
            out.push_str(&format!("{}: {}", d.path, d.message));
        }
        if let Some(h) = &d.hint {
            out.push_str(&format!("\n      hint: {h}"));
        }
    }
    out
}

/// A config that passed every check, with what was derived from it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// The config file.
    pub path: PathBuf,
    /// Its folder: relative paths in the config are relative to it.
    pub dir: PathBuf,
    /// SHA-256 of the file's bytes, recorded in saved plans.
    pub hash: String,
    /// Compiled rules: patterns, regexes, templates, limits.
    pub rules: Rules,
    /// Not wrong, but worth saying (a credential file others can read).
    pub warnings: Vec<String>,
}

/// How a config is read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// An unset `${VAR}` is no error: a placeholder stands in for it, and the variable is listed in
    /// [`Report::env_needed`]. A credential file that is not there is a warning, not an error (a fork's
    /// pull request has neither).
    pub offline: bool,
    /// Check that the files the config names (`path` of file connectors, `token_file`, …) exist and
    /// can be read.
    pub check_files: bool,
}

/// What stands in for an unset variable under [`Options::offline`].
pub(super) const PLACEHOLDER: &str = "offline-placeholder";
/// What stands in for an unset variable that is a whole URL under [`Options::offline`].
pub(super) const PLACEHOLDER_URL: &str = "https://offline-placeholder.invalid";

/// A problem with the line and column of its key, when the text has it.
pub type Located = (Diagnostic, Option<(usize, usize)>);

/// Everything a check of a config found: errors, warnings and the variables it reads.
#[derive(Debug)]
pub struct Report {
    /// The config file.
    pub path: PathBuf,
    /// The config, when there is no error.
    pub loaded: Option<Loaded>,
    pub errors: Vec<Located>,
    /// Every warning, also those only `validate` says (a secret written into the YAML).
    pub warnings: Vec<Located>,
    /// Every environment variable the config reads (sorted), and whether it is set.
    pub env_needed: Vec<(String, bool)>,
}

/// Loads and checks a config file, expanding `${VAR}` from the process environment.
///
/// # Errors
/// The file cannot be read, or any check fails; every problem found is reported at once.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    inspect(path, Options::default())?.into_result()
}

/// Checks a config file, reporting everything it finds.
///
/// # Errors
/// The file cannot be read.
pub fn inspect(path: &Path, opts: Options) -> Result<Report, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(inspect_str(
        path,
        &text,
        &|name| std::env::var(name).ok(),
        opts,
    ))
}

impl Report {
    /// The config, or the errors found.
    ///
    /// # Errors
    /// Any error was found.
    pub fn into_result(self) -> Result<Loaded, ConfigError> {
        match self.loaded {
            Some(l) if self.errors.is_empty() => Ok(l),
            _ => Err(ConfigError::Invalid {
                path: self.path,
                located: self.errors,
            }),
        }
    }
}

/// Loads a config from text; `env` looks up variables.
///
/// # Errors
/// As [`load`].
pub fn load_str(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    inspect_str(path, text, env, Options::default()).into_result()
}

/// Checks a config given as text; `env` looks up variables.
#[must_use]
pub fn inspect_str(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    opts: Options,
) -> Report {
    let needed = std::cell::RefCell::new(std::collections::BTreeMap::new());
    let lookup = |name: &str| {
        let v = env(name);
        needed.borrow_mut().insert(name.to_string(), v.is_some());
        match v {
            None if opts.offline => Some(PLACEHOLDER.to_string()),
            v => v,
        }
    };
    let mut report = Report {
        path: path.to_path_buf(),
        loaded: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        env_needed: Vec::new(),
    };
    let result = check_text(path, text, &lookup, opts, &mut report.warnings);
    report.env_needed = needed.into_inner().into_iter().collect();
    // In the file's order (keys are walked alphabetically); a warning without a place first.
    report.warnings.sort_by_key(|(_, spot)| *spot);
    match result {
        Ok(l) => report.loaded = Some(l),
        Err(ConfigError::Invalid { located, .. }) => report.errors = located,
        Err(ConfigError::Read { .. }) => unreachable!("the text is given"),
    }
    report
}

fn check_text(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    opts: Options,
    all_warnings: &mut Vec<Located>,
) -> Result<Loaded, ConfigError> {
    // A byte-order mark (Windows editors write one) is not part of the first key: read past it, and
    // say so.
    let bom = text.starts_with('\u{feff}');
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let locator = Locator::new(text);
    let fail = |diags: Vec<Diagnostic>| ConfigError::Invalid {
        path: path.to_path_buf(),
        located: diags
            .into_iter()
            .map(|d| {
                let spot = locator.find(&d.path);
                (d, spot)
            })
            .collect(),
    };

    let yaml: yaml_serde::Value = match yaml_serde::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            // For a repeated key the parser names the mapping's start; the locator finds the key.
            let spot = locator
                .duplicate()
                .filter(|_| msg.starts_with("duplicate entry"))
                .or_else(|| e.location().map(|l| (l.line(), l.column())));
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                located: vec![(
                    Diagnostic::new(KeyPath::default(), format!("not valid YAML: {msg}"))
                        .hint("check the indentation and quoting around this spot"),
                    spot,
                )],
            });
        }
    };
    let mut value = serde_json::to_value(&yaml).map_err(|e| {
        fail(vec![Diagnostic::new(
            KeyPath::default(),
            format!("cannot be read as a config: {e}"),
        )])
    })?;
    if value.is_null() {
        return Err(fail(vec![Diagnostic::new(
            KeyPath::default(),
            "the file is empty",
        )
        .hint("start from examples/quickstart/idsync.yaml")]));
    }

    let mut diags = Vec::new();
    capture_collisions(&value, &mut diags);
    let collided: Vec<KeyPath> = diags.iter().map(|d| d.path.clone()).collect();
    let mut literal = Vec::new();
    expand_env(
        &mut value,
        &KeyPath::default(),
        env,
        &mut diags,
        &mut literal,
    );
    all_warnings.extend(literal.into_iter().map(|d| {
        let spot = locator.find(&d.path);
        (d, spot)
    }));
    // A capture group taken for a variable is said once, not again as an unset variable.
    let n = collided.len();
    let mut i = 0;
    diags.retain(|d| {
        i += 1;
        i <= n || !collided.contains(&d.path)
    });
    check_connector_types(&value, &mut diags);
    if !diags.is_empty() {
        return Err(fail(diags));
    }

    let schema = Config::json_schema();
    // Checked with draft 7's rules: the generated schema uses no keyword of 2020-12 that draft 7
    // lacks (`$defs` are reached by plain JSON pointers), and checking the schema itself against
    // 2020-12's meta-schemas cost every run about 40 ms (debug build) before reading a key.
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema)
        .expect("the generated schema is valid");
    let diags: Vec<Diagnostic> = validator
        .iter_errors(&value)
        .flat_map(|e| match variant_errors(&schema, &e) {
            Some(ds) if !ds.is_empty() => ds,
            _ => vec![schema_diagnostic(&schema, &e)],
        })
        .collect();
    if !diags.is_empty() {
        return Err(fail(diags));
    }

    let mut found = Vec::new();
    if bom {
        found.push(Diagnostic::new(KeyPath::default(), format!(
            "{} starts with a UTF-8 byte-order mark; idsync read past it (save the file as UTF-8 without a BOM to silence this)",
            path.display()
        )));
    }
    credential_files(&value, &KeyPath::default(), dir_of(path), &mut found);
    let warnings: Vec<String> = found.iter().map(Diagnostic::to_string).collect();
    let mut file_errors = Vec::new();
    if opts.check_files {
        let mut missing = Vec::new();
        referenced_files(
            &value,
            &KeyPath::default(),
            dir_of(path),
            &mut file_errors,
            &mut missing,
        );
        if opts.offline {
            found.extend(missing.into_iter().map(|d| {
                d.hint("a credential file, like a secret variable, is needed only where idsync runs with its secrets; without --offline this is an error")
            }));
        } else {
            file_errors.extend(missing);
        }
    }
    all_warnings.extend(found.into_iter().map(|d| {
        let spot = locator.find(&d.path);
        (d, spot)
    }));
    let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = KeyPath::parse(&e.path().to_string());
        let mut diags = file_errors.clone();
        diags.push(Diagnostic::new(path, unquoted(&e.into_inner().to_string())));
        fail(diags)
    })?;

    let rules = match validate::check(&config) {
        Ok(rules) if file_errors.is_empty() => rules,
        Ok(_) => return Err(fail(file_errors)),
        Err(diags) => {
            file_errors.extend(diags);
            return Err(fail(file_errors));
        }
    };
    let hash = crate::digest::sha256_hex(text.as_bytes());
    let dir = dir_of(path).to_path_buf();
    Ok(Loaded {
        config,
        path: path.to_path_buf(),
        dir,
        hash,
        rules,
        warnings,
    })
}

/// Replaces `${NAME}` in every string with the variable's value; `$${` stands for a literal `${`.
fn expand_env(
    value: &mut Value,
    path: &KeyPath,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Vec<Diagnostic>,
    literal: &mut Vec<Diagnostic>,
) {
    match value {
        // A credential written into the config itself is a secret too (and worth a warning: the
        // YAML is committed). Its value is never quoted.
        Value::String(s) if !s.contains("${") && path.0.last().is_some_and(is_credential_key) => {
            secret::register(s);
            let key = match path.0.last() {
                Some(Seg::Key(k)) => k.as_str(),
                _ => "token",
            };
            literal.push(
                Diagnostic::new(
                    path.clone(),
                    "a secret is written into the config itself",
                )
                .hint(format!(
                    "anyone who can read the file can read it: take it from the environment (`{key}: ${{MY_SECRET}}`) or a file (`{key}_file`), and rotate it if the file was ever committed"
                )),
            );
        }
        Value::String(s) if !s.contains("${") => {}
        Value::String(s) => match expand_one(s, env) {
            Ok(v) if v == PLACEHOLDER && s.trim() != PLACEHOLDER && is_url_key(path) => {
                PLACEHOLDER_URL.clone_into(s);
            }
            Ok(v) => {
                if path.0.last().is_some_and(is_credential_key) && v != PLACEHOLDER {
                    secret::register(&v);
                }
                *s = v;
            }
            Err(Missing::Var(name)) => diags.push(
                Diagnostic::new(
                    path.clone(),
                    format!("environment variable {name} is not set"),
                )
                .hint(if is_mapping_to(path) {
                    format!("export {name} before running idsync; for a capture group of `from_regex` write `${name}` or `$${{{name}}}`")
                } else {
                    format!("export {name} before running idsync, or write a literal `${{` as `$${{`")
                }),
            ),
            Err(Missing::BadName(name)) => diags.push(
                Diagnostic::new(
                    path.clone(),
                    format!("`${{{name}}}` is not an environment variable reference"),
                )
                .hint("environment variable names are letters, digits and `_`, not starting with a digit; write a literal `${` as `$${`"),
            ),
            Err(Missing::Unclosed) => diags.push(
                Diagnostic::new(path.clone(), "`${` without a closing `}`").hint(
                    "write `${NAME}` to use an environment variable, `$${` for a literal `${`",
                ),
            ),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env(item, &path.index(i), env, diags, literal);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                expand_env(v, &path.key(k), env, diags, literal);
            }
        }
        _ => {}
    }
}

fn dir_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// Config keys whose value is a credential.
pub(crate) const CREDENTIAL_KEYS: &[&str] = &[
    "token",
    "client_secret",
    "private_key",
    "service_account_key",
];

fn is_credential_key(seg: &Seg) -> bool {
    matches!(seg, Seg::Key(k) if CREDENTIAL_KEYS.contains(&k.as_str()))
}

/// Environment variables whose names say they hold a secret: their values are redacted wherever
/// they are used.
fn is_secret_variable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PRIVATE",
        "API_KEY",
        "APIKEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// Warns about credential files (`token_file`, `client_secret_file`, …) that the file's group or
/// everyone may read.
fn credential_files(value: &Value, path: &KeyPath, dir: &Path, warnings: &mut Vec<Diagnostic>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = path.key(k);
                match (k.strip_suffix("_file"), v.as_str()) {
                    (Some(base), Some(file)) if CREDENTIAL_KEYS.contains(&base) => {
                        let file = super::resolve_path(dir, Path::new(file));
                        if let Some(mode) = loose_mode(&file) {
                            warnings.push(Diagnostic::new(here, format!(
                                "{} can be read by {} (mode {mode:o}); `chmod 600 {}` keeps the credential to its owner",
                                file.display(),
                                if mode & 0o004 == 0 { "its group" } else { "every user" },
                                file.display(),
                            )));
                        }
                    }
                    _ => credential_files(v, &here, dir, warnings),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                credential_files(v, &path.index(i), dir, warnings);
            }
        }
        _ => {}
    }
}

/// Whether a variable at this key would be a whole URL.
fn is_url_key(path: &KeyPath) -> bool {
    matches!(path.0.last(), Some(Seg::Key(k)) if k.ends_with("url") || k == "authority")
}

/// The files a config names: the `path` of a file connector and every `…_file` key. One that
/// cannot be read is an error; one that is not there goes to `missing` for a `…_file` key (the
/// caller decides: under --offline a credential file is a warning), to `errors` for a `path`.
fn referenced_files(
    value: &Value,
    path: &KeyPath,
    dir: &Path,
    errors: &mut Vec<Diagnostic>,
    missing: &mut Vec<Diagnostic>,
) {
    match value {
        Value::Object(map) => {
            let file_connector = map.get("type").and_then(Value::as_str) == Some("file");
            for (k, v) in map {
                let here = path.key(k);
                match v.as_str() {
                    Some(file) if k.ends_with("_file") || (file_connector && k == "path") => {
                        let credential = k != "path";
                        let resolved = super::resolve_path(dir, Path::new(file));
                        let shown = resolved.display();
                        let hint = if Path::new(file).is_absolute() {
                            "the path must exist and be readable where idsync runs".to_string()
                        } else {
                            format!(
                                "a relative path is relative to the config's folder ({})",
                                if dir.as_os_str().is_empty() {
                                    Path::new(".").display()
                                } else {
                                    dir.display()
                                }
                            )
                        };
                        match std::fs::File::open(&resolved) {
                            Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => errors.push(
                                Diagnostic::new(here, format!("{shown} is a folder, not a file"))
                                    .hint(hint),
                            ),
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                                let d = Diagnostic::new(here, format!("{shown} does not exist"))
                                    .hint(hint);
                                if credential {
                                    missing.push(d);
                                } else {
                                    errors.push(d);
                                }
                            }
                            Err(e) => errors.push(
                                Diagnostic::new(here, format!("cannot read {shown}: {e}"))
                                    .hint(hint),
                            ),
                        }
                    }
                    _ => referenced_files(v, &here, dir, errors, missing),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                referenced_files(v, &path.index(i), dir, errors, missing);
            }
        }
        _ => {}
    }
}

/// The permission bits of a file its group or others may read.
#[cfg(unix)]
fn loose_mode(file: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).ok()?.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_file: &Path) -> Option<u32> {
    None
}

enum Missing {
    Var(String),
    BadName(String),
    Unclosed,
}

/// Whether a key path is a mapping's `to` (where `$` also introduces capture references).
fn is_mapping_to(path: &KeyPath) -> bool {
    matches!(
        path.0.as_slice(),
        [Seg::Key(g), Seg::Key(m), Seg::Index(_), Seg::Key(t)] if g == "groups" && m == "mappings" && t == "to"
    )
}

/// `${name}` in a mapping's `to` where `name` is a named capture group of its `from_regex`: the
/// environment expansion would take it. The capture is written `$name` or `$${name}`.
fn capture_collisions(value: &Value, diags: &mut Vec<Diagnostic>) {
    let Some(mappings) = value.pointer("/groups/mappings").and_then(Value::as_array) else {
        return;
    };
    for (i, m) in mappings.iter().enumerate() {
        let (Some(to), Some(re)) = (
            m.get("to").and_then(Value::as_str),
            m.get("from_regex").and_then(Value::as_str),
        ) else {
            continue;
        };
        let Ok(re) = regex::Regex::new(re) else {
            continue;
        };
        for name in re.capture_names().flatten() {
            let braced = format!("${{{name}}}");
            let escaped = format!("$${{{name}}}");
            if to.replace(&escaped, "").contains(&braced) {
                diags.push(
                    Diagnostic::new(
                        KeyPath::default().key("groups").key("mappings").index(i).key("to"),
                        format!("`{braced}` would be read as the environment variable {name}, but it names a capture group of `from_regex`"),
                    )
                    .hint(format!("write the capture group as `${name}` or `$${{{name}}}`; `${{NAME}}` is always an environment variable")),
                );
            }
        }
    }
}

/// An environment variable name: letters, digits and `_`, not starting with a digit.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn expand_one(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Missing> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(r) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix("${") {
            let end = r.find('}').ok_or(Missing::Unclosed)?;
            let name = &r[..end];
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                // `${1}`: a numbered capture reference (a mapping's `to`), never a variable.
                out.push_str(&after[..end + 3]);
                rest = &r[end + 1..];
                continue;
            }
            if !is_env_name(name) {
                return Err(Missing::BadName(name.to_string()));
            }
            let value = env(name).ok_or_else(|| Missing::Var(name.to_string()))?;
            if is_secret_variable(name) && value != PLACEHOLDER {
                secret::register(&value);
            }
            out.push_str(&value);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Names an unknown connector type (with the nearest known one) before the schema's less helpful
/// "not valid under any of the schemas" can.
fn check_connector_types(value: &Value, diags: &mut Vec<Diagnostic>) {
    let check = |v: &Value, path: KeyPath, built: &[&str], diags: &mut Vec<Diagnostic>| {
        if !v.is_object() {
            return;
        }
        let Some(t) = v.get("type").and_then(Value::as_str) else {
            let what = if v.get("type").is_some() {
                "`type` is not a name"
            } else {
                "missing `type`"
            };
            diags.push(
                Diagnostic::new(path, format!("{what}; one of {}", built.join(", ")))
                    .hint("every connector names its kind, e.g. `type: okta`"),
            );
            return;
        };
        if built.contains(&t) {
            return;
        }
        let known: Vec<String> = built.iter().map(ToString::to_string).collect();
        let hint = match closest(t, &known) {
            Some(best) => format!("did you mean `{best}`? known types: {}", built.join(", ")),
            None => format!("use one of: {}", built.join(", ")),
        };
        diags.push(
            Diagnostic::new(path.key("type"), format!("unknown connector type `{t}`")).hint(hint),
        );
    };
    if let Some(sources) = value.get("sources").and_then(Value::as_array) {
        for (i, s) in sources.iter().enumerate() {
            let path = KeyPath::default().key("sources").index(i);
            check(s, path, SOURCE_TYPES, diags);
        }
    }
    if let Some(t) = value.get("target") {
        let path = KeyPath::default().key("target");
        check(t, path, TARGET_TYPES, diags);
    }
}

/// For a tagged union (`type: okta`, …) that matched none of its variants, the errors against the one
/// variant its `type` names: "unknown key `domian`" rather than "not an accepted value".
fn variant_errors(schema: &Value, e: &jsonschema::ValidationError<'_>) -> Option<Vec<Diagnostic>> {
    if !matches!(e.kind, ValidationErrorKind::OneOfNotValid) {
        return None;
    }
    let tag = e.instance.get("type")?.as_str()?;
    let nodes = schema_nodes(schema, e.schema_path.as_str());
    let variants = nodes.last()?.as_array()?;
    let variant = variants
        .iter()
        .find(|v| v.pointer("/properties/type/const").and_then(Value::as_str) == Some(tag))?;
    // The variant alone, with the root's definitions so that its `$ref`s resolve.
    let mut sub = variant.clone();
    sub["$defs"] = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let validator = jsonschema::validator_for(&sub).ok()?;
    let base = e.instance_path.as_str().to_string();
    let instance = e.instance.clone().into_owned();
    Some(
        validator
            .iter_errors(&instance)
            .map(|inner| {
                let mut d = schema_diagnostic(&sub, &inner);
                let mut segs = KeyPath::from_pointer(&base).0;
                segs.extend(d.path.0);
                d.path = KeyPath(segs);
                d
            })
            .collect(),
    )
}

fn schema_diagnostic(schema: &Value, e: &jsonschema::ValidationError<'_>) -> Diagnostic {
    let path = KeyPath::from_pointer(e.instance_path.as_str());
    let schema_path = e.schema_path.as_str();
    match &e.kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(schema, schema_path);
            let key = unexpected.first().cloned().unwrap_or_default();
            let mut d = Diagnostic::new(
                path.key(&key),
                if unexpected.len() == 1 {
                    format!("unknown key `{key}`")
                } else {
                    format!("unknown keys {}", quote_list(unexpected))
                },
            );
            if let Some(best) = closest(&key, &allowed) {
                d = d.hint(format!(
                    "did you mean `{best}`? allowed here: {}",
                    quote_list(&allowed)
                ));
            } else if !allowed.is_empty() {
                d = d.hint(format!("allowed here: {}", quote_list(&allowed)));
            }
            d
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or("?");
            Diagnostic::new(path.clone(), format!("missing required key `{name}`"))
        }
        ValidationErrorKind::AnyOf | ValidationErrorKind::OneOfNotValid => {
            let mut d = Diagnostic::new(path, "not an accepted value");
            if let Some(desc) = description(schema, schema_path) {
                d = d.hint(desc);
            }
            d
        }
        _ => {
            let mut d = Diagnostic::new(path, without_value(e));
            if let Some(desc) = description(schema, schema_path) {
                d = d.hint(desc);
            }
            d
        }
    }
}

/// A serde message without the string it quotes (`invalid type: string "…"` → `a string`).
fn unquoted(msg: &str) -> String {
    static QUOTED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"string "(?:[^"\\]|\\.)*""#).expect("a valid regex")
    });
    QUOTED.replace_all(msg, "a string").into_owned()
}

/// A schema error's message without the value it was about: config errors name keys, never values
/// (a value may hold a credential read from the environment).
fn without_value(e: &jsonschema::ValidationError<'_>) -> String {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    };
    let msg = e.to_string();
    let instance = e.instance.to_string();
    let msg = match msg.strip_prefix(&instance) {
        Some(rest) => format!("{}{rest}", kind(&e.instance)),
        None => msg.replace(&instance, kind(&e.instance)),
    };
    msg
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The schema nodes along a validation error's schema path, following `$ref` steps (the path reads
/// `.../allOf/0/$ref/properties/...`, which no JSON pointer resolves).
fn schema_nodes<'s>(schema: &'s Value, schema_path: &str) -> Vec<&'s Value> {
    let mut nodes = vec![schema];
    let mut node = schema;
    for seg in schema_path.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        let next = if seg == "$ref" {
            node.get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|p| schema.pointer(p))
        } else {
            match node {
                Value::Object(m) => m.get(&seg),
                Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
        };
        match next {
            Some(n) => {
                node = n;
                nodes.push(n);
            }
            None => break,
        }
    }
    nodes
}

/// The keys the schema object owning `schema_path` allows.
fn allowed_keys(schema: &Value, schema_path: &str) -> Vec<String> {
    schema_nodes(schema, schema_path)
        .iter()
        .rev()
        .find_map(|n| n.get("properties").and_then(Value::as_object))
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The description of the nearest schema node at or above `schema_path`.
fn description(schema: &Value, schema_path: &str) -> Option<String> {
    schema_nodes(schema, schema_path)
        .iter()
        .rev()
        .skip(1)
        .find_map(|n| n.get("description").and_then(Value::as_str))
        .map(one_line)
}

/// A doc comment as one line: the schema keeps the comment's line breaks (editors render them as
/// Markdown); a hint is one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The allowed key nearest to a misspelt one, if near enough.
fn closest(key: &str, allowed: &[String]) -> Option<String> {
    allowed
        .iter()
        .map(|a| (strsim::levenshtein(key, a), a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min()
        .map(|(_, a)| a.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_stands_in_for_unset_variables_and_lists_them() {
        let text = "version: 1\nsources:\n  - name: idp\n    type: okta\n    domain: ${OKTA_DOMAIN}\n    token: ${OKTA_TOKEN_FOR_OFFLINE_TEST}\ntarget:\n  type: scim\n  base_url: ${SCIM_URL}\n  token: ${SET_TOKEN}\n";
        let env = |n: &str| (n == "SET_TOKEN").then(|| "a-real-token-value".to_string());
        let path = Path::new("idsync.yaml");
        let online = inspect_str(path, text, &env, Options::default());
        assert_eq!(online.errors.len(), 3, "{:?}", online.errors);
        let offline = inspect_str(
            path,
            text,
            &env,
            Options {
                offline: true,
                check_files: false,
            },
        );
        assert!(offline.errors.is_empty(), "{:?}", offline.errors);
        let names: Vec<(&str, bool)> = offline
            .env_needed
            .iter()
            .map(|(n, set)| (n.as_str(), *set))
            .collect();
        assert_eq!(
            names,
            [
                ("OKTA_DOMAIN", false),
                ("OKTA_TOKEN_FOR_OFFLINE_TEST", false),
                ("SCIM_URL", false),
                ("SET_TOKEN", true)
            ]
        );
        let config = offline.loaded.unwrap().config;
        let crate::config::TargetConfig::Scim(t) = &config.target else {
            panic!("a scim target");
        };
        assert_eq!(t.base_url, PLACEHOLDER_URL, "a whole URL gets a URL");
        let crate::config::SourceConfig::Okta(o) = &config.sources[0] else {
            panic!("an okta source");
        };
        assert_eq!(o.domain.as_deref(), Some(PLACEHOLDER));
        // The placeholder is no secret: it is not redacted.
        assert_eq!(secret::redact(PLACEHOLDER), PLACEHOLDER);
    }

    #[test]
    fn expands_variables_and_escapes() {
        let env = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand_one("a${A}b", &env).ok(), Some("axb".into()));
        assert_eq!(expand_one("$${A}", &env).ok(), Some("${A}".into()));
        assert_eq!(expand_one("cost $5", &env).ok(), Some("cost $5".into()));
        assert!(matches!(expand_one("${B}", &env), Err(Missing::Var(n)) if n == "B"));
        assert!(matches!(expand_one("${A", &env), Err(Missing::Unclosed)));
        assert_eq!(expand_one("team-${1}", &env).ok(), Some("team-${1}".into()));
        assert_eq!(
            expand_one("$${name}-$1", &env).ok(),
            Some("${name}-$1".into())
        );
        assert!(matches!(expand_one("${A-B}", &env), Err(Missing::BadName(n)) if n == "A-B"));
        assert_eq!(
            unquoted(r#"invalid type: string "s3cr\"et", expected u32"#),
            "invalid type: a string, expected u32"
        );
    }

    /// What the YAML crate decides about the text, pinned so that a change of crate that reads the
    /// config differently fails here: anchors resolve, a duplicate key and a YAML 1.1 boolean (`yes`)
    /// are errors with a line, and a merge key (`<<`) is not merged.
    #[test]
    fn yaml_reading_rules() {
        let base = "version: 1\nsources:\n  - name: okta\n    type: file\n    path: idp.yaml\ntarget:\n  type: file\n  path: atlassian.yaml\n";
        let check = |text: &str| {
            let opts = Options {
                offline: true,
                check_files: false,
            };
            inspect_str(Path::new("idsync.yaml"), text, &|_| None, opts).errors
        };
        let messages = |errors: &[Located]| {
            errors
                .iter()
                .map(|(d, spot)| (d.to_string(), *spot))
                .collect::<Vec<_>>()
        };
        assert_eq!(messages(&check(base)), []);

        let aliased = format!(
            "{base}users:\n  exclude: &outside [\"*@ext.example.com\"]\ncleanup:\n  protect: *outside\n"
        );
        assert_eq!(messages(&check(&aliased)), []);

        let errors = messages(&check(&format!("{base}version: 1\n")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].0.contains("duplicate"), "{errors:?}");
        assert_eq!(errors[0].1.map(|(line, _)| line), Some(9), "{errors:?}");

        let errors = messages(&check(&format!(
            "{base}groups:\n  manage_unmapped_members: yes\n"
        )));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].0.starts_with("groups.manage_unmapped_members: "),
            "{errors:?}"
        );
        assert_eq!(errors[0].1, Some((10, 3)), "{errors:?}");

        let errors = messages(&check(&format!("{base}users:\n  <<: {{exclude: []}}\n")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].0.contains("unknown key `<<`"), "{errors:?}");
    }
}
