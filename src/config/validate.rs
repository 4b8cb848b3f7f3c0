//! Semantic checks that a schema cannot express, compiled into the [`Rules`] the planner uses.

use std::collections::{HashMap, HashSet};

use regex::Regex;

use super::load::Diagnostic;
use super::locate::KeyPath;
use super::{Config, MaxDeactivations, TargetConfig};
use crate::rules::{Cleanup, DeactivationLimit};
use crate::rules::{CompiledMapping, Matcher, Patterns, Rules, Template};
use crate::targets::atlassian::is_product_access_group;

/// Target attributes an attribute template may set. The first four are the user's core fields.
pub const TEMPLATE_TARGETS: &[&str] = &[
    "displayName",
    "givenName",
    "familyName",
    "userName",
    "nickName",
    "title",
    "department",
    "organization",
    "division",
    "costCenter",
    "employeeNumber",
    "timezone",
    "locale",
    "preferredLanguage",
];

/// Compiles email patterns, reporting each one that is not valid.
fn build_patterns(texts: &[String], path: &KeyPath, diags: &mut Vec<Diagnostic>) -> Patterns {
    let (patterns, invalid) = Patterns::compile(texts);
    for (i, why) in invalid {
        diags.push(Diagnostic::new(path.index(i), why).hint(
            "patterns are emails with `*` and `?` wildcards, e.g. \"*@contractors.example.com\"",
        ));
    }
    patterns
}

/// A guard setting: a count, or a percentage from 0% to 100%.
fn count_or_percent(
    value: &MaxDeactivations,
    cleanup: &KeyPath,
    key: &str,
    diags: &mut Vec<Diagnostic>,
) -> DeactivationLimit {
    match value {
        MaxDeactivations::Count(n) => DeactivationLimit::Count(*n),
        MaxDeactivations::Percent(text) => match text.trim().trim_end_matches('%').parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) && text.trim().ends_with('%') => {
                DeactivationLimit::Percent(p)
            }
            _ => {
                diags.push(
                    Diagnostic::new(
                        cleanup.key(key),
                        format!("{text:?} is not a count or a percentage from 0% to 100%"),
                    )
                    .hint("write a number such as 25, or a percentage such as \"5%\""),
                );
                DeactivationLimit::Count(0)
            }
        },
    }
}

fn root() -> KeyPath {
    KeyPath::default()
}

/// Runs every semantic check; all problems are returned together.
///
/// # Errors
/// The list of problems found.
pub fn check(config: &Config) -> Result<Rules, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    if config.version != 1 {
        diags.push(
            Diagnostic::new(
                root().key("version"),
                format!("unsupported version {}", config.version),
            )
            .hint("this idsync reads `version: 1`"),
        );
    }

    let source_names = check_sources(config, &mut diags);
    let qualified_ok =
        |name: &str, path: KeyPath, diags: &mut Vec<Diagnostic>| match name.split_once(':') {
            Some((src, group)) if source_names.iter().any(|s| s == src) && !group.is_empty() => {}
            Some((src, _)) if !source_names.iter().any(|s| s == src) => diags.push(
                Diagnostic::new(
                    path,
                    format!("{name:?} names the source `{src}`, which is not configured"),
                )
                .hint(format!("sources are: {}", source_names.join(", "))),
            ),
            _ => diags.push(
                Diagnostic::new(
                    path,
                    format!("{name:?} is not a source-qualified group name"),
                )
                .hint(format!(
                    "write SOURCE:GROUP, e.g. \"{}:{name}\"",
                    source_names.first().map_or("okta", String::as_str)
                )),
            ),
        };

    let users = root().key("users");
    for (i, g) in config.users.require_groups.iter().enumerate() {
        qualified_ok(g, users.key("require_groups").index(i), &mut diags);
    }
    let exclude = build_patterns(&config.users.exclude, &users.key("exclude"), &mut diags);

    let mut templates = Vec::new();
    for (attr, text) in &config.users.attributes {
        let path = users.key("attributes").key(attr);
        if !TEMPLATE_TARGETS.contains(&attr.as_str()) {
            diags.push(
                Diagnostic::new(
                    path.clone(),
                    format!("`{attr}` is not an attribute idsync can set"),
                )
                .hint(format!(
                    "settable attributes: {}",
                    TEMPLATE_TARGETS.join(", ")
                )),
            );
        }
        match Template::parse(text) {
            Ok(t) => templates.push((attr.clone(), t)),
            Err(e) => diags.push(
                Diagnostic::new(path, format!("bad template {text:?}: {e}"))
                    .hint("templates look like \"{givenName} {familyName}\""),
            ),
        }
    }

    let mappings = check_mappings(config, &qualified_ok, &mut diags);

    let groups = root().key("groups");
    let mut seen = HashSet::new();
    for (i, g) in config.groups.default_groups.iter().enumerate() {
        let path = groups.key("default_groups").index(i);
        if g.trim().is_empty() {
            diags.push(Diagnostic::new(path, "empty group name"));
        } else if is_product_access_group(g) {
            diags.push(product_group_diag(path, g));
        } else if !seen.insert(g.clone()) {
            diags.push(Diagnostic::new(path, format!("{g:?} is listed twice")));
        }
    }

    let cleanup = root().key("cleanup");
    let protect = build_patterns(&config.cleanup.protect, &cleanup.key("protect"), &mut diags);
    let c = &config.cleanup;
    let deactivation_limit = count_or_percent(
        &c.max_deactivations,
        &cleanup,
        "max_deactivations",
        &mut diags,
    );
    let removal_limit = count_or_percent(
        &c.max_membership_removals,
        &cleanup,
        "max_membership_removals",
        &mut diags,
    );
    let removal_limit_per_group = count_or_percent(
        &c.max_membership_removals_per_group,
        &cleanup,
        "max_membership_removals_per_group",
        &mut diags,
    );
    let update_limit = count_or_percent(&c.max_updates, &cleanup, "max_updates", &mut diags);
    // A file target records tokens (`api_tokens`) so that an Atlassian plan reproduces offline.
    let can_revoke = matches!(&config.target, TargetConfig::Atlassian(a) if a.admin.is_some())
        || matches!(&config.target, TargetConfig::File(_));
    if config.cleanup.revoke_api_tokens && !can_revoke {
        diags.push(
            Diagnostic::new(
                cleanup.key("revoke_api_tokens"),
                "revoking API tokens needs the Atlassian organization admin API",
            )
            .hint("set revoke_api_tokens: false, or use `target: {type: atlassian}` with `admin:` configured (or a `type: file` snapshot)"),
        );
    }
    check_target(&config.target, &mut diags);

    let limits = root().key("limits");
    let batch = config.limits.membership_batch;
    if batch == 0 || batch > 10_000 {
        diags.push(
            Diagnostic::new(
                limits.key("membership_batch"),
                format!("{batch} is outside 1..=10000"),
            )
            .hint("Atlassian suspends a directory's sync after a membership batch above 10,000; the default is 1000"),
        );
    }

    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(Rules {
        source_names,
        require_groups: config.users.require_groups.iter().cloned().collect(),
        exclude,
        protect,
        templates,
        mappings,
        default_groups: config.groups.default_groups.clone(),
        deactivation_limit,
        removal_limit,
        removal_limit_per_group,
        removal_min_group_size: config.cleanup.membership_guard_min_group_size as usize,
        update_limit,
        membership_batch: batch as usize,
        group_size_warn: config.limits.max_group_size_warn as usize,
        group_size_max: config.limits.max_group_size as usize,
        cleanup: Cleanup {
            deactivate_missing: config.cleanup.deactivate_missing,
            grace_days: config.cleanup.grace_days,
            without_last_active: config.cleanup.without_last_active,
            skip_admins: config.cleanup.skip_admins,
            revoke_api_tokens: config.cleanup.revoke_api_tokens,
        },
    })
}

/// Endpoints and credentials: each needs a URL and exactly one of `token` and `token_file`.
fn check_target(target: &TargetConfig, diags: &mut Vec<Diagnostic>) {
    let base = root().key("target");
    match target {
        TargetConfig::File(_) => {}
        TargetConfig::Atlassian(a) => {
            let scim = base.key("scim");
            check_url(scim.key("base_url"), &a.scim.base_url, diags);
            check_credential(
                &scim,
                "token",
                a.scim.token.as_ref(),
                a.scim.token_file.as_ref(),
                diags,
            );
            check_page_size(scim.key("page_size"), a.scim.page_size, diags);
            if let Some(admin) = &a.admin {
                let p = base.key("admin");
                check_url(p.key("base_url"), &admin.base_url, diags);
                check_credential(
                    &p,
                    "token",
                    admin.token.as_ref(),
                    admin.token_file.as_ref(),
                    diags,
                );
                if admin.org_id.trim().is_empty() {
                    diags.push(Diagnostic::new(p.key("org_id"), "empty organization id"));
                }
            }
        }
        TargetConfig::Scim(s) => {
            check_url(base.key("base_url"), &s.base_url, diags);
            check_credential(
                &base,
                "token",
                s.token.as_ref(),
                s.token_file.as_ref(),
                diags,
            );
            check_page_size(base.key("page_size"), s.page_size, diags);
        }
    }
}

/// A credential given inline as `name` (usually `${VAR}`) or as a file, `name_file`: exactly one,
/// and not empty.
pub(crate) fn check_credential(
    path: &KeyPath,
    name: &str,
    inline: Option<&String>,
    file: Option<&std::path::PathBuf>,
    diags: &mut Vec<Diagnostic>,
) {
    match (inline, file) {
        (Some(_), Some(_)) => diags.push(
            Diagnostic::new(
                path.key(name),
                format!("both `{name}` and `{name}_file` are set"),
            )
            .hint("keep one"),
        ),
        (None, None) => diags.push(
            Diagnostic::new(
                path.clone(),
                format!(
                    "no credential: set `{name}` (e.g. {name}: ${{MY_SECRET}}) or `{name}_file`"
                ),
            )
            .hint("idsync reads secrets only from environment variables or files"),
        ),
        (Some(t), None) if t.trim().is_empty() => diags.push(
            Diagnostic::new(path.key(name), format!("`{name}` is empty"))
                .hint("is the environment variable set to an empty value?"),
        ),
        _ => {}
    }
}

/// An http(s) URL without credentials in it: a URL is printed in plans, `-v` output and errors,
/// so a password or token inside one would leak. (The value is not quoted: it may hold one.)
pub(crate) fn check_url(path: KeyPath, url: &str, diags: &mut Vec<Diagnostic>) {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        diags.push(
            Diagnostic::new(path, "not an http(s) URL")
                .hint("e.g. https://api.atlassian.com/scim/directory/<directory id>"),
        );
        return;
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        diags.push(Diagnostic::new(path, "not a valid URL"));
        return;
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        diags.push(
            Diagnostic::new(path.clone(), "the URL holds credentials (`user:password@`); refused so that they are never printed")
                .hint("remove them from the URL and give the credential with `token` (e.g. token: ${MY_TOKEN}) or `token_file`"),
        );
    }
    if let Some((name, _)) = parsed.query_pairs().find(|(k, _)| secret_like(k)) {
        diags.push(
            Diagnostic::new(path, format!("the URL's query parameter `{name}` looks like a credential; refused so that it is never printed"))
                .hint("give the credential with `token` (e.g. token: ${MY_TOKEN}) or `token_file`"),
        );
    }
}

/// A query parameter or key name that usually carries a credential.
fn secret_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace(['-', '_'], "");
    [
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "apikey",
        "key",
        "sig",
        "signature",
        "auth",
        "authorization",
        "credential",
        "accesstoken",
        "code",
    ]
    .iter()
    .any(|w| n == *w || (w.len() > 4 && n.contains(w)))
}

pub(crate) fn check_page_size(path: KeyPath, n: usize, diags: &mut Vec<Diagnostic>) {
    if n == 0 || n > 1000 {
        diags.push(Diagnostic::new(
            path,
            format!("page_size {n} is outside 1..=1000"),
        ));
    }
}

fn check_sources(config: &Config, diags: &mut Vec<Diagnostic>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if config.sources.is_empty() {
        diags.push(
            Diagnostic::new(root().key("sources"), "no sources configured")
                .hint("add at least one identity-provider connector under `sources:`"),
        );
    }
    for (i, s) in config.sources.iter().enumerate() {
        let path = root().key("sources").index(i).key("name");
        let name = s.name();
        if name.is_empty() || name.contains(':') || name.trim() != name {
            diags.push(
                Diagnostic::new(path, format!("source name {name:?} is not usable"))
                    .hint("a source name is a non-empty word without `:` (it qualifies group names as NAME:Group)"),
            );
        } else if names.iter().any(|n| n == name) {
            diags.push(
                Diagnostic::new(path, format!("two sources are named `{name}`"))
                    .hint("give each source its own name"),
            );
        }
        names.push(name.to_string());
        s.check(&root().key("sources").index(i), diags);
    }
    names
}

fn product_group_diag(path: KeyPath, name: &str) -> Diagnostic {
    Diagnostic::new(
        path,
        format!("`{name}` is an Atlassian default product-access group; SCIM cannot push it"),
    )
    .hint("sync a group of your own (e.g. `idp-jira-users`) and grant it product access in admin.atlassian.com")
}

fn check_mappings(
    config: &Config,
    qualified_ok: &dyn Fn(&str, KeyPath, &mut Vec<Diagnostic>),
    diags: &mut Vec<Diagnostic>,
) -> Vec<CompiledMapping> {
    let base = root().key("groups").key("mappings");
    let mut out = Vec::new();
    let mut exact_seen: HashMap<String, (usize, String)> = HashMap::new();
    let mut regex_seen: HashMap<String, usize> = HashMap::new();
    for (i, m) in config.groups.mappings.iter().enumerate() {
        let path = base.index(i);
        let to = m.to.trim();
        if to.is_empty() {
            diags.push(Diagnostic::new(path.key("to"), "empty group name"));
            continue;
        }
        let refs = capture_refs(to);
        let matcher = match (&m.from, &m.from_regex) {
            (Some(_), Some(_)) => {
                diags.push(
                    Diagnostic::new(path, "a mapping has both `from` and `from_regex`")
                        .hint("keep one: `from` for one group, `from_regex` for a pattern"),
                );
                continue;
            }
            (None, None) => {
                diags.push(
                    Diagnostic::new(path, "a mapping needs `from` or `from_regex`").hint(
                        "e.g. `from: \"okta:Engineering\"` or `from_regex: \"^okta:atl-(.+)$\"`",
                    ),
                );
                continue;
            }
            (Some(from), None) => {
                qualified_ok(from, path.key("from"), diags);
                if !refs.is_empty() {
                    diags.push(
                        Diagnostic::new(
                            path.key("to"),
                            format!("{to:?} uses a capture group but `from` is not a regex"),
                        )
                        .hint("use `from_regex` for captures, or write `$$` for a literal `$`"),
                    );
                }
                if let Some((j, prev_to)) = exact_seen.get(from) {
                    let d = if prev_to == to {
                        Diagnostic::new(
                            path.key("from"),
                            format!("duplicate of groups.mappings[{j}]"),
                        )
                        .hint("remove one of the two")
                    } else {
                        Diagnostic::new(
                            path.key("from"),
                            format!("{from:?} is already mapped to {prev_to:?} by groups.mappings[{j}]"),
                        )
                        .hint("an IdP group goes through the first mapping that matches it; remove one of the two")
                    };
                    diags.push(d);
                    continue;
                }
                exact_seen.insert(from.clone(), (i, to.to_string()));
                Matcher::Exact(from.clone())
            }
            (None, Some(re)) => match Regex::new(re) {
                Ok(r) => {
                    let names: Vec<&str> = r.capture_names().flatten().collect();
                    for rf in &refs {
                        let ok = match rf.parse::<usize>() {
                            Ok(n) => n < r.captures_len(),
                            Err(_) => names.contains(&rf.as_str()),
                        };
                        if !ok {
                            diags.push(
                                Diagnostic::new(
                                    path.key("to"),
                                    format!("`${rf}` names no capture group of {re:?}"),
                                )
                                .hint(format!(
                                    "the regex has {} capture group(s)",
                                    r.captures_len() - 1
                                )),
                            );
                        }
                    }
                    if let Some(j) = regex_seen.get(re) {
                        diags.push(
                            Diagnostic::new(
                                path.key("from_regex"),
                                format!("duplicate of groups.mappings[{j}]"),
                            )
                            .hint("remove one of the two"),
                        );
                        continue;
                    }
                    regex_seen.insert(re.clone(), i);
                    Matcher::Regex(r)
                }
                Err(e) => {
                    diags.push(
                        Diagnostic::new(
                            path.key("from_regex"),
                            format!("invalid regex: {}", one_line(&e.to_string())),
                        )
                        .hint("the syntax is Rust's regex crate (https://docs.rs/regex)"),
                    );
                    continue;
                }
            },
        };
        if refs.is_empty() && is_product_access_group(to) {
            diags.push(product_group_diag(path.key("to"), to));
            continue;
        }
        out.push(CompiledMapping {
            index: i,
            matcher,
            to: to.to_string(),
        });
    }
    out
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The capture references (`$1`, `${name}`) in a replacement text; `$$` is a literal `$`.
fn capture_refs(to: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let b = to.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'$') {
                i += 2;
                continue;
            }
            if b.get(i + 1) == Some(&b'{') {
                if let Some(end) = to[i + 2..].find('}') {
                    refs.push(to[i + 2..i + 2 + end].to_string());
                    i += end + 3;
                    continue;
                }
            }
            let name: String = to[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                i += name.len();
                refs.push(name);
            }
        }
        i += 1;
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_reject_bad_syntax() {
        let t = Template::parse("{givenName} {familyName} {{x}}").unwrap();
        let r = t.render(&|v| match v {
            "givenName" => Some("Ada"),
            _ => None,
        });
        assert_eq!(r.as_deref(), Some("Ada {x}"));
        assert!(Template::parse("{oops").is_err());
        assert!(Template::parse("a } b").is_err());
        assert_eq!(Template::parse("{x}").unwrap().render(&|_| None), None);
    }

    #[test]
    fn capture_refs_are_found() {
        assert_eq!(capture_refs("team-$1-${name}$$"), vec!["1", "name"]);
        assert!(capture_refs("plain").is_empty());
    }

    #[test]
    fn percent_limits_round_down() {
        assert_eq!(DeactivationLimit::Percent(10.0).limit(19), 1);
        assert_eq!(DeactivationLimit::Count(3).limit(1000), 3);
    }
}
