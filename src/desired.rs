//! Desired state: the sources' snapshots with the config's rules applied. Pure: no I/O.
//!
//! Users from several sources merge by key (lower-cased email) in `sources` order: the first source
//! that has a user provides its fields and status; later sources that disagree are reported. Group
//! memberships are the union over all sources, with group names qualified by source (`okta:Eng`).

use std::collections::BTreeMap;

use crate::model::{Indexed, LeftOut, LeftOutKind, User};
use crate::plan::{ReasonCode, UserFields};
use crate::rules::{GroupRef, Matcher, Rules};

/// One source's snapshot, indexed.
#[derive(Clone, Debug)]
pub(crate) struct SourceData {
    pub name: String,
    pub data: Indexed,
}

/// Whether a source user is wanted on the target, and if not, which rule says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Wanted,
    /// Inactive in the source that provides the user.
    Disabled {
        source: String,
    },
    /// Matched by a `users.exclude` pattern.
    Excluded {
        pattern: String,
    },
    /// In no `users.require_groups` group.
    NotRequired,
}

/// A user as the sources and rules want them.
#[derive(Debug)]
pub(crate) struct DesiredUser {
    pub key: String,
    /// The source that provides the fields (the first in `sources` order that has the user).
    pub source: String,
    /// That source's immutable id for the user, carried as `externalId`.
    pub source_id: Option<String>,
    pub fields: UserFields,
    pub scope: Scope,
}

/// A managed Atlassian group.
#[derive(Debug)]
pub(crate) struct DesiredGroup {
    /// Why idsync manages it (`default_groups`, or the mapping).
    pub origin: String,
    /// Desired members: (desired user index, reason index), sorted by user, unique.
    pub members: Vec<(u32, u32)>,
}

/// Everything wanted.
#[derive(Debug, Default)]
pub(crate) struct Desired {
    pub users: Vec<DesiredUser>,
    pub groups: BTreeMap<String, DesiredGroup>,
    /// Texts that member reasons point into, with their codes (shared by every membership change
    /// that gives the reason).
    pub reasons: Vec<(ReasonCode, std::sync::Arc<str>)>,
    pub warnings: Vec<String>,
    /// Problems that stop the plan from being applied (two groups differing only in case, …).
    pub blocking: Vec<String>,
    /// Records the sources left out (no email, members that are not users, …), by source name.
    pub left_out: Vec<(String, LeftOut)>,
}

impl Desired {
    #[must_use]
    pub(crate) fn reason(&self, idx: u32) -> &str {
        &self.reasons[idx as usize].1
    }

    /// The reason as a membership change holds it: shared, not copied.
    #[must_use]
    pub(crate) fn shared_reason(&self, idx: u32) -> std::sync::Arc<str> {
        std::sync::Arc::clone(&self.reasons[idx as usize].1)
    }

    #[must_use]
    pub(crate) fn reason_code(&self, idx: u32) -> ReasonCode {
        self.reasons[idx as usize].0
    }
}

/// Most conflict warnings listed one by one; the rest are counted.
const MAX_CONFLICT_WARNINGS: usize = 50;

/// Applies the rules to the sources. `reserved` says why the target refuses a group name it
/// reserves (e.g. Atlassian's product-access groups), or `None` for a name it takes.
///
/// # Errors
/// The config refers by name to an IdP group whose name several groups of that source share; each
/// problem lists the groups with their ids.
///
/// The user records that provide a desired user are emptied (their key and index stay): nothing
/// reads them again, and at a million users the sources and the desired state would otherwise
/// both be whole in memory.
pub(crate) fn build(
    sources: &mut [SourceData],
    rules: &Rules,
    reserved: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<Desired, Vec<String>> {
    let mut d = Desired::default();
    // For each source, source user index -> desired user index.
    let mut maps: Vec<Vec<u32>> = Vec::with_capacity(sources.len());
    let mut conflicts = 0usize;
    for s in 0..sources.len() {
        let (earlier_sources, rest) = sources.split_at_mut(s);
        let src = &mut rest[0];
        let mut map = Vec::with_capacity(src.data.keys.len());
        for (i, user) in src.data.snapshot.users.iter_mut().enumerate() {
            let key = &src.data.keys[i];
            // Already provided by an earlier source? (Their indexes serve; no map of our own.)
            let earlier = earlier_sources
                .iter()
                .zip(&maps)
                .find_map(|(p, pmap)| p.data.find(key).map(|j| pmap[j as usize]));
            if let Some(di) = earlier {
                let winner = &d.users[di as usize];
                for c in conflicts_between(winner, user) {
                    conflicts += 1;
                    if conflicts <= MAX_CONFLICT_WARNINGS {
                        d.warnings.push(format!(
                            "{key}: {c} differs between sources `{}` and `{}`; using `{}` (first in sources)",
                            winner.source, src.name, winner.source
                        ));
                    }
                }
                map.push(di);
                continue;
            }
            let di = u32::try_from(d.users.len()).expect("fewer than 4 billion users");
            d.users.push(desired_user(key, &src.name, user, rules));
            *user = User::new("");
            map.push(di);
        }
        maps.push(map);
    }
    if conflicts > MAX_CONFLICT_WARNINGS {
        d.warnings.push(format!(
            "… and {} more differences between sources",
            conflicts - MAX_CONFLICT_WARNINGS
        ));
    }

    // Group memberships: require_groups, then mappings. The config's exact references (by name or
    // by id) are resolved first: a name several groups share is an error, never a guess.
    let refs = resolve_references(sources, rules);
    let mut problems = refs.problems;
    let mut required = vec![rules.require_groups.is_empty(); d.users.len()];
    let mut pending: BTreeMap<String, (String, Vec<(u32, u32)>)> = BTreeMap::new();
    for g in &rules.default_groups {
        pending.insert(g.clone(), ("groups.default_groups".into(), Vec::new()));
    }
    let mut regex_repeats = std::collections::BTreeSet::new();
    for (s, src) in sources.iter().enumerate() {
        let repeated = repeated_names(&src.data);
        for (g, group) in src.data.snapshot.groups.iter().enumerate() {
            let qualified = format!("{}:{}", src.name, group.name);
            let members = &src.data.members[g];
            if refs.required.contains(&(s, g)) {
                for &m in members {
                    required[maps[s][m as usize] as usize] = true;
                }
            }
            let Some((mapping, to)) = rules.mappings.iter().enumerate().find_map(|(i, m)| {
                let to = match &m.matcher {
                    Matcher::Exact(_) => (refs.mapped[i] == Some((s, g))).then(|| m.to.clone()),
                    Matcher::Regex(_) => m.apply(&qualified),
                };
                to.map(|to| (m, to))
            }) else {
                continue;
            };
            // The readable name in reasons; with the id when the name is not enough.
            let shown = match (&group.id, repeated.contains(group.name.as_str())) {
                (Some(id), true) => format!("{qualified} (id {id})"),
                _ => qualified.clone(),
            };
            if repeated.contains(group.name.as_str())
                && matches!(mapping.matcher, Matcher::Regex(_))
                && regex_repeats.insert((mapping.index, qualified.clone()))
            {
                d.warnings.push(format!(
                    "{qualified} is the name of {} groups ({}); {} maps each of them to `{to}`. To send one elsewhere, map it by id with a `from: \"{}:id:ID\"` mapping placed before it; to keep one out, rename it in the IdP",
                    src.data.snapshot.groups.iter().filter(|o| o.name == group.name).count(),
                    ids_of(&src.data, &group.name),
                    mapping.describe(),
                    src.name,
                ));
            }
            if let Some(why) = reserved(&to) {
                d.warnings.push(format!(
                    "{shown} maps to `{to}` through {}, {why}; skipped",
                    mapping.describe()
                ));
                continue;
            }
            let reason = u32::try_from(d.reasons.len()).expect("few reasons");
            d.reasons.push((
                ReasonCode::MappedGroup,
                format!("member of {shown} via groups.mappings[{}]", mapping.index).into(),
            ));
            let entry = pending
                .entry(to)
                .or_insert_with(|| (mapping.describe(), Vec::new()));
            entry
                .1
                .extend(members.iter().map(|&m| (maps[s][m as usize], reason)));
        }
    }
    d.warnings.extend(refs.warnings);
    // A regex that matches no group of any source is most often a typo.
    for m in &rules.mappings {
        if let Matcher::Regex(r) = &m.matcher {
            let matched = sources.iter().any(|src| {
                src.data
                    .snapshot
                    .groups
                    .iter()
                    .any(|g| r.is_match(&format!("{}:{}", src.name, g.name)))
            });
            if !matched {
                d.warnings
                    .push(format!("{} matches no group of any source", m.describe()));
            }
        }
    }
    for src in sources {
        let n = src.data.unknown_members.len();
        if let Some((g, m)) = src.data.unknown_members.first() {
            d.warnings.push(format!(
                "source `{}`: {n} group member(s) are not among its users, e.g. {m:?} in {g:?}; ignored",
                src.name
            ));
        }
        d.warnings.extend(left_out_warnings(
            &format!("source `{}`", src.name),
            &src.data.snapshot.skipped,
        ));
        d.left_out.extend(
            src.data
                .snapshot
                .skipped
                .iter()
                .map(|l| (src.name.clone(), l.clone())),
        );
    }
    // Atlassian group names are case-insensitive: two desired groups that differ only in case would
    // be one group there, fed by two rules.
    let mut by_lower: BTreeMap<String, Vec<(&String, &String)>> = BTreeMap::new();
    for (name, (origin, _)) in &pending {
        by_lower
            .entry(name.to_lowercase())
            .or_default()
            .push((name, origin));
    }
    for same in by_lower.values().filter(|v| v.len() > 1) {
        d.blocking.push(format!(
            "the Atlassian groups {} differ only in case, but Atlassian group names are case-insensitive, so they would be one group; map them to one name",
            same.iter()
                .map(|(n, o)| format!("`{n}` (from {o})"))
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(problems);
    }

    for (i, u) in d.users.iter_mut().enumerate() {
        if u.scope == Scope::Wanted && !required[i] {
            u.scope = Scope::NotRequired;
        }
    }

    let default_reason = u32::try_from(d.reasons.len()).expect("few reasons");
    d.reasons.push((
        ReasonCode::DefaultGroup,
        "every synced user (groups.default_groups)".into(),
    ));
    let wanted: Vec<u32> = (0..d.users.len())
        .filter(|&i| d.users[i].scope == Scope::Wanted)
        .map(|i| u32::try_from(i).expect("fewer than 4 billion users"))
        .collect();
    for (name, (origin, mut members)) in pending {
        if rules.default_groups.contains(&name) {
            members.extend(wanted.iter().map(|&u| (u, default_reason)));
        }
        members.retain(|(u, _)| d.users[*u as usize].scope == Scope::Wanted);
        // Sort by user, keeping the first reason given for each (stable sort).
        members.sort_by_key(|(u, _)| *u);
        members.dedup_by_key(|(u, _)| *u);
        d.groups.insert(name, DesiredGroup { origin, members });
    }
    Ok(d)
}

/// The config's exact group references, resolved to (source, group) indexes.
struct References {
    /// Groups named by `users.require_groups`.
    required: std::collections::HashSet<(usize, usize)>,
    /// Per entry of `rules.mappings`: the group an exact `from` names, if found.
    mapped: Vec<Option<(usize, usize)>>,
    warnings: Vec<String>,
    problems: Vec<String>,
}

fn resolve_references(sources: &[SourceData], rules: &Rules) -> References {
    let mut refs = References {
        required: std::collections::HashSet::new(),
        mapped: vec![None; rules.mappings.len()],
        warnings: Vec::new(),
        problems: Vec::new(),
    };
    let mut required: Vec<&String> = rules.require_groups.iter().collect();
    required.sort();
    for text in required {
        match resolve(sources, text, "users.require_groups") {
            Ok(Some(hit)) => {
                refs.required.insert(hit);
            }
            Ok(None) => refs.warnings.push(format!(
                "users.require_groups names {text:?}, which its source does not have"
            )),
            Err(p) => refs.problems.push(p),
        }
    }
    for (i, m) in rules.mappings.iter().enumerate() {
        if let Matcher::Exact(text) = &m.matcher {
            let setting = format!("groups.mappings[{}]", m.index);
            match resolve(sources, text, &setting) {
                Ok(Some(hit)) => refs.mapped[i] = Some(hit),
                Ok(None) => refs.warnings.push(format!(
                    "groups.mappings names {text:?}, which its source does not have"
                )),
                Err(p) => refs.problems.push(p),
            }
        }
    }
    refs
}

/// The group a source-qualified reference (`src:Name` or `src:id:ID`) names: `Ok(None)` when the
/// source has no such group; an error when the name is shared by several groups.
fn resolve(
    sources: &[SourceData],
    text: &str,
    setting: &str,
) -> Result<Option<(usize, usize)>, String> {
    let Some((source, rest)) = text.split_once(':') else {
        return Ok(None);
    };
    let Some(s) = sources.iter().position(|x| x.name == source) else {
        return Ok(None);
    };
    let groups = &sources[s].data.snapshot.groups;
    if let GroupRef::Id(id) = GroupRef::parse(rest) {
        if let Some(g) = groups.iter().position(|g| g.id.as_deref() == Some(id)) {
            return Ok(Some((s, g)));
        }
        // Else a group whose name starts with `id:`.
    }
    let hits: Vec<usize> = (0..groups.len())
        .filter(|&g| groups[g].name == rest)
        .collect();
    match hits.as_slice() {
        [] => Ok(None),
        [g] => Ok(Some((s, *g))),
        many => {
            let first = many
                .iter()
                .find_map(|&g| groups[g].id.as_deref())
                .unwrap_or("ID");
            Err(format!(
                "{setting} names {text:?}, but {} groups of source `{source}` have that name: {}; name the one you mean by its id, e.g. \"{source}:id:{first}\"",
                many.len(),
                ids_of(&sources[s].data, rest)
            ))
        }
    }
}

/// Names that more than one group of a source carries.
fn repeated_names(data: &Indexed) -> std::collections::HashSet<&str> {
    let mut seen = std::collections::HashSet::new();
    let mut repeated = std::collections::HashSet::new();
    for g in &data.snapshot.groups {
        if !seen.insert(g.name.as_str()) {
            repeated.insert(g.name.as_str());
        }
    }
    repeated
}

/// The ids of the groups of a source that carry `name`, for messages.
fn ids_of(data: &Indexed, name: &str) -> String {
    data.snapshot
        .groups
        .iter()
        .filter(|g| g.name == name)
        .map(|g| format!("id {}", g.id.as_deref().unwrap_or("(none)")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Most records named in one left-out warning; the rest are counted.
const MAX_NAMED: usize = 10;

/// One warning per kind of record and reason: how many a source left out, and which.
#[must_use]
/// `subject` names where they come from, e.g. "source `okta`".
pub(crate) fn left_out_warnings(subject: &str, left_out: &[LeftOut]) -> Vec<String> {
    let mut by: BTreeMap<(LeftOutKind, &str), Vec<&LeftOut>> = BTreeMap::new();
    for l in left_out {
        by.entry((l.kind, l.reason.as_str())).or_default().push(l);
    }
    by.into_iter()
        .map(|((kind, reason), items)| {
            let what = match kind {
                LeftOutKind::User => "user(s)",
                LeftOutKind::Member => "group membership(s)",
                LeftOutKind::Group => "group(s)",
            };
            let mut names: Vec<String> = items.iter().take(MAX_NAMED).map(|l| l.label()).collect();
            if items.len() > MAX_NAMED {
                names.push(format!("… and {} more", items.len() - MAX_NAMED));
            }
            format!(
                "{subject}: {} {what} not synced ({reason}): {}",
                items.len(),
                names.join(", ")
            )
        })
        .collect()
}

fn conflicts_between(winner: &DesiredUser, other: &User) -> Vec<&'static str> {
    let mut out = Vec::new();
    let pairs = [
        (
            "givenName",
            winner.fields.given_name.as_deref(),
            other.given_name.as_deref(),
        ),
        (
            "familyName",
            winner.fields.family_name.as_deref(),
            other.family_name.as_deref(),
        ),
    ];
    for (name, a, b) in pairs {
        if let (Some(a), Some(b)) = (a, b) {
            if a != b {
                out.push(name);
            }
        }
    }
    let winner_active = !matches!(winner.scope, Scope::Disabled { .. });
    if winner_active != other.active {
        out.push("active");
    }
    out
}

fn desired_user(key: &str, source: &str, u: &User, rules: &Rules) -> DesiredUser {
    let lookup = |name: &str| -> Option<&str> {
        match name {
            "email" => Some(&u.email),
            "userName" => Some(u.user_name()),
            "givenName" => u.given_name.as_deref(),
            "familyName" => u.family_name.as_deref(),
            "displayName" => u.display_name.as_deref(),
            "id" => u.id.as_deref(),
            other => u.attributes.get(other).map(String::as_str),
        }
    };
    let mut fields = UserFields {
        email: u.email.trim().to_string(),
        user_name: Some(u.user_name().trim().to_string()),
        external_id: u.id.clone(),
        given_name: u.given_name.clone(),
        family_name: u.family_name.clone(),
        display_name: u.display_name.clone(),
        attributes: crate::model::Attributes::new(),
    };
    for (attr, t) in &rules.templates {
        let value = t.render(&lookup);
        match attr.as_str() {
            "displayName" => fields.display_name = value,
            "givenName" => fields.given_name = value,
            "familyName" => fields.family_name = value,
            "userName" => fields.user_name = value,
            _ => {
                if let Some(v) = value {
                    fields.attributes.insert(attr.clone(), v);
                }
            }
        }
    }
    let scope = if !u.active {
        Scope::Disabled {
            source: source.to_string(),
        }
    } else if let Some(p) = rules.exclude.matching(key) {
        Scope::Excluded {
            pattern: p.to_string(),
        }
    } else {
        Scope::Wanted
    };
    DesiredUser {
        key: key.to_string(),
        source: source.to_string(),
        source_id: u.id.clone(),
        fields,
        scope,
    }
}
