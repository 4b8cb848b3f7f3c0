//! Desired state: the sources' snapshots with the config's rules applied. Pure: no I/O.
//!
//! Users from several sources merge by key (lower-cased email) in `sources` order: the first source
//! that has a user provides its fields and status; later sources that disagree are reported. Group
//! memberships are the union over all sources, with group names qualified by source (`okta:Eng`).

use std::collections::BTreeMap;

use crate::config::Rules;
use crate::model::{Indexed, User};
use crate::plan::UserFields;

/// One source's snapshot, indexed.
#[derive(Debug)]
pub struct SourceData {
    pub name: String,
    pub data: Indexed,
}

/// Whether a source user is wanted on the target, and if not, which rule says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
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
pub struct DesiredUser {
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
pub struct DesiredGroup {
    /// Why idsync manages it (`default_groups`, or the mapping).
    pub origin: String,
    /// Desired members: (desired user index, reason index), sorted by user, unique.
    pub members: Vec<(u32, u32)>,
}

/// Everything wanted.
#[derive(Debug, Default)]
pub struct Desired {
    pub users: Vec<DesiredUser>,
    pub groups: BTreeMap<String, DesiredGroup>,
    /// Texts that member reasons point into.
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
}

impl Desired {
    #[must_use]
    pub fn reason(&self, idx: u32) -> &str {
        &self.reasons[idx as usize]
    }
}

/// Most conflict warnings listed one by one; the rest are counted.
const MAX_CONFLICT_WARNINGS: usize = 50;

/// Applies the rules to the sources.
#[must_use]
pub fn build(sources: &[SourceData], rules: &Rules) -> Desired {
    let mut d = Desired::default();
    // For each source, source user index -> desired user index.
    let mut maps: Vec<Vec<u32>> = Vec::with_capacity(sources.len());
    let mut conflicts = 0usize;
    for (s, src) in sources.iter().enumerate() {
        let mut map = Vec::with_capacity(src.data.keys.len());
        for (i, user) in src.data.snapshot.users.iter().enumerate() {
            let key = &src.data.keys[i];
            // Already provided by an earlier source? (Their indexes serve; no map of our own.)
            let earlier = sources[..s]
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

    // Group memberships: require_groups, then mappings.
    let mut required = vec![rules.require_groups.is_empty(); d.users.len()];
    let mut pending: BTreeMap<String, (String, Vec<(u32, u32)>)> = BTreeMap::new();
    for g in &rules.default_groups {
        pending.insert(g.clone(), ("groups.default_groups".into(), Vec::new()));
    }
    let mut seen_groups = std::collections::HashSet::new();
    for (s, src) in sources.iter().enumerate() {
        for (g, group) in src.data.snapshot.groups.iter().enumerate() {
            let qualified = format!("{}:{}", src.name, group.name);
            let members = &src.data.members[g];
            seen_groups.insert(qualified.clone());
            if !rules.require_groups.is_empty() && rules.require_groups.contains(&qualified) {
                for &m in members {
                    required[maps[s][m as usize] as usize] = true;
                }
            }
            let Some((mapping, to)) = rules
                .mappings
                .iter()
                .find_map(|m| m.apply(&qualified).map(|to| (m, to)))
            else {
                continue;
            };
            if crate::config::validate::is_product_access_group(&to) {
                d.warnings.push(format!(
                    "{qualified} maps to `{to}` through {}, an Atlassian default product-access group that SCIM cannot push; skipped",
                    mapping.describe()
                ));
                continue;
            }
            let reason = u32::try_from(d.reasons.len()).expect("few reasons");
            d.reasons.push(format!(
                "member of {qualified} via groups.mappings[{}]",
                mapping.index
            ));
            let entry = pending
                .entry(to)
                .or_insert_with(|| (mapping.describe(), Vec::new()));
            entry
                .1
                .extend(members.iter().map(|&m| (maps[s][m as usize], reason)));
        }
    }

    // A group named in the config but absent from its source is most often a typo; say so, since
    // a misspelt require_groups entry drops everyone it was meant to keep.
    let mut named: Vec<(&str, String)> = rules
        .require_groups
        .iter()
        .map(|g| ("users.require_groups", g.clone()))
        .collect();
    named.sort();
    for m in &rules.mappings {
        if let crate::config::Matcher::Exact(from) = &m.matcher {
            named.push(("groups.mappings", from.clone()));
        }
    }
    for (setting, g) in named {
        if !seen_groups.contains(&g) {
            d.warnings.push(format!(
                "{setting} names {g:?}, which its source does not have"
            ));
        }
    }
    for m in &rules.mappings {
        if let crate::config::Matcher::Regex(r) = &m.matcher {
            if !seen_groups.iter().any(|g| r.is_match(g)) {
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
    }

    for (i, u) in d.users.iter_mut().enumerate() {
        if u.scope == Scope::Wanted && !required[i] {
            u.scope = Scope::NotRequired;
        }
    }

    let default_reason = u32::try_from(d.reasons.len()).expect("few reasons");
    d.reasons
        .push("every synced user (groups.default_groups)".into());
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
    d
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
        attributes: BTreeMap::new(),
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
