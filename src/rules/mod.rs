//! The compiled policy: what `desired` and `diff` decide with. The config file is checked and
//! compiled into [`Rules`] by `config`; from here on nothing knows the file, a connector or a target.

use std::collections::HashSet;

use globset::GlobSet;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The config's rules, compiled.
#[derive(Debug)]
pub struct Rules {
    pub source_names: Vec<String>,
    pub require_groups: HashSet<String>,
    pub exclude: Patterns,
    pub protect: Patterns,
    /// Target attribute and its template, in a stable order.
    pub templates: Vec<(String, Template)>,
    pub mappings: Vec<CompiledMapping>,
    pub default_groups: Vec<String>,
    pub deactivation_limit: DeactivationLimit,
    /// `cleanup.max_membership_removals`, `max_membership_removals_per_group`,
    /// `membership_guard_min_group_size` and `max_updates`.
    pub removal_limit: DeactivationLimit,
    pub removal_limit_per_group: DeactivationLimit,
    pub removal_min_group_size: usize,
    pub update_limit: DeactivationLimit,
    pub membership_batch: usize,
    pub group_size_warn: usize,
    pub group_size_max: usize,
    /// Who is deactivated, when, and who is never touched (`cleanup`, as the diff uses it).
    pub cleanup: Cleanup,
}

/// The `cleanup` settings the diff decides with.
#[derive(Clone, Debug)]
pub struct Cleanup {
    pub deactivate_missing: bool,
    pub grace_days: u32,
    pub without_last_active: WithoutLastActive,
    pub skip_admins: bool,
    pub revoke_api_tokens: bool,
}

/// Email patterns with `*` and `?`, matched case-insensitively.
#[derive(Debug)]
pub struct Patterns {
    set: GlobSet,
    texts: Vec<String>,
}

impl Patterns {
    /// Compiles email patterns (`*` and `?`, case-insensitive). The patterns that are not valid
    /// globs are left out of the set and returned with their index and why.
    #[must_use]
    pub fn compile(texts: &[String]) -> (Patterns, Vec<(usize, String)>) {
        let mut b = globset::GlobSetBuilder::new();
        let mut invalid = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            match globset::GlobBuilder::new(t.trim())
                .case_insensitive(true)
                .literal_separator(false)
                .build()
            {
                Ok(g) => {
                    b.add(g);
                }
                Err(e) => invalid.push((i, format!("invalid pattern {t:?}: {}", e.kind()))),
            }
        }
        let set = b.build().unwrap_or_else(|_| GlobSet::empty());
        (
            Patterns {
                set,
                texts: texts.to_vec(),
            },
            invalid,
        )
    }

    /// Patterns given on the command line (`plan --only-user`): compiled as the config's are.
    ///
    /// # Errors
    /// A pattern is not a valid glob; the message names it.
    pub fn new(texts: &[String]) -> Result<Patterns, String> {
        match Patterns::compile(texts) {
            (p, invalid) if invalid.is_empty() => Ok(p),
            (_, mut invalid) => Err(invalid.swap_remove(0).1),
        }
    }

    /// The first pattern the email matches.
    #[must_use]
    pub fn matching(&self, email: &str) -> Option<&str> {
        if self.texts.is_empty() {
            return None;
        }
        self.set
            .matches(email)
            .first()
            .map(|i| self.texts[*i].as_str())
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The patterns (index and text) that match none of `emails`.
    pub fn unmatched<'a>(&self, emails: impl IntoIterator<Item = &'a str>) -> Vec<(usize, &str)> {
        let mut hit = vec![false; self.texts.len()];
        let mut left = hit.len();
        for e in emails {
            if left == 0 {
                break;
            }
            for i in self.set.matches(e) {
                if !hit[i] {
                    hit[i] = true;
                    left -= 1;
                }
            }
        }
        hit.iter()
            .enumerate()
            .filter(|(_, h)| !**h)
            .map(|(i, _)| (i, self.texts[i].as_str()))
            .collect()
    }
}

/// An attribute template: literal text and `{variable}` parts; `{{` and `}}` are literal braces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    /// An unclosed `{`, a stray `}` or an empty `{}`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("`{{{name}` is not closed with `}}`")),
                        }
                    }
                    let name = name.trim().to_string();
                    if name.is_empty() {
                        return Err("`{}` names no attribute".into());
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(name));
                }
                '}' => return Err("a lone `}` (write `}}` for a literal brace)".into()),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// Renders with `lookup`; unknown variables render empty. The result is trimmed, with runs of
    /// spaces folded, and `None` when nothing is left.
    #[must_use]
    pub fn render<'a>(&self, lookup: &dyn Fn(&str) -> Option<&'a str>) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => {
                    if let Some(val) = lookup(v) {
                        out.push_str(val);
                    }
                }
            }
        }
        if out.contains("  ") {
            out = out
                .split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
        }
        let trimmed = out.trim();
        if trimmed.is_empty() {
            None
        } else if trimmed.len() == out.len() {
            Some(out)
        } else {
            Some(trimmed.to_string())
        }
    }
}

/// How an IdP group is matched.
#[derive(Debug)]
pub enum Matcher {
    Exact(String),
    Regex(Regex),
}

/// A mapping ready to use.
#[derive(Debug)]
pub struct CompiledMapping {
    /// Its place in `groups.mappings`.
    pub index: usize,
    pub matcher: Matcher,
    pub to: String,
}

impl CompiledMapping {
    /// The Atlassian group for a source-qualified IdP group name, when this mapping matches it.
    #[must_use]
    pub fn apply(&self, qualified: &str) -> Option<String> {
        match &self.matcher {
            Matcher::Exact(from) => (from == qualified).then(|| self.to.clone()),
            Matcher::Regex(re) => {
                let caps = re.captures(qualified)?;
                let mut out = String::new();
                caps.expand(&self.to, &mut out);
                Some(out)
            }
        }
    }

    /// How a reviewer reads this mapping, e.g. `mappings[0] (from "okta:Eng" to "engineering")`.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.matcher {
            Matcher::Exact(f) => format!("groups.mappings[{}] (from {f:?})", self.index),
            Matcher::Regex(r) => format!(
                "groups.mappings[{}] (from_regex {:?})",
                self.index,
                r.as_str()
            ),
        }
    }
}

/// A guard's limit (`max_deactivations`, `max_updates`, `max_membership_removals`…): a count or a
/// percentage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DeactivationLimit {
    Count(u64),
    Percent(f64),
}

impl DeactivationLimit {
    /// The most deactivations allowed when the target has `active` active users.
    #[must_use]
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub fn limit(&self, active: u64) -> u64 {
        match *self {
            DeactivationLimit::Count(n) => n,
            DeactivationLimit::Percent(p) => ((active as f64) * p / 100.0).floor() as u64,
        }
    }
}

impl DeactivationLimit {
    /// As [`DeactivationLimit::limit`], but a percentage rounds up: a nonzero percentage of a
    /// nonempty base allows at least one (the further guards, so that a directory of three users
    /// can have one updated without an override).
    #[must_use]
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub fn limit_rounding_up(&self, base: u64) -> u64 {
        match *self {
            DeactivationLimit::Count(n) => n,
            DeactivationLimit::Percent(p) => ((base as f64) * p / 100.0).ceil() as u64,
        }
    }
}

impl std::fmt::Display for DeactivationLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeactivationLimit::Count(n) => write!(f, "{n}"),
            DeactivationLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// What `grace_days` does with a user who has no last-active timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WithoutLastActive {
    /// Keep the user (the safe choice).
    #[default]
    Keep,
    /// Deactivate the user.
    Deactivate,
}

/// How the config names one IdP group: by its immutable id (`id:ID`) or by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupRef<'a> {
    Id(&'a str),
    Name(&'a str),
}

impl<'a> GroupRef<'a> {
    /// Reads a reference as written after the source name (`id:00g1…`, or a name).
    #[must_use]
    pub fn parse(text: &'a str) -> GroupRef<'a> {
        match text.strip_prefix("id:") {
            Some(id) if !id.is_empty() => GroupRef::Id(id),
            _ => GroupRef::Name(text),
        }
    }
}
