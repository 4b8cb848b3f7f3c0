//! The normalized model shared by every source and target.
//!
//! Both sides of a plan are read into a [`Snapshot`]: users keyed by their lower-cased primary email and
//! groups whose members are those keys. Snapshot files (`type: file`) are this model serialized, so
//! `idsync snapshot` output can be read back by a `file` connector.

use std::collections::{BTreeMap, BTreeSet};

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user as one system sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Primary email; the matching key (case-insensitive). Required.
    pub email: String,
    /// Login name; defaults to the email.
    #[serde(rename = "userName", default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The system's own immutable id: the IdP's user id in a source, the SCIM id in a target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Target only: the IdP id idsync carried across (SCIM `externalId`), used to match renames.
    #[serde(
        rename = "externalId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// Target only: the Atlassian account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(rename = "givenName", default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(
        rename = "familyName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub family_name: Option<String>,
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// Whether the account is active (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub active: bool,
    /// When the user was last active (target: from the organization admin API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<DateTime<Utc>>,
    /// Target only: an organization or site admin.
    #[serde(default, skip_serializing_if = "is_false")]
    pub admin: bool,
    /// Target only: false for an Atlassian account that exists in the organization but not in the
    /// SCIM directory (for example JIT-provisioned); idsync links such accounts.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub in_directory: bool,
    /// Target only: API tokens the account holds, when known (Atlassian: read only with
    /// `cleanup.revoke_api_tokens`, from the token inventory or per deactivated user). Unknown for an
    /// active user is "maybe": deactivating them plans a revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_tokens: Option<usize>,
    /// Target only: the other identity-provider directory of the organization that owns this
    /// account (an account outside this SCIM directory that idsync must not link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by_directory: Option<String>,
    /// Further attributes (title, department, …), usable in attribute templates.
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub attributes: Attributes,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(b: &bool) -> bool {
    *b
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}
fn yes() -> bool {
    true
}

impl User {
    /// A user with only an email; every other field empty, active, in the directory.
    #[must_use]
    pub fn new(email: &str) -> Self {
        User {
            email: email.to_string(),
            user_name: None,
            id: None,
            external_id: None,
            account_id: None,
            given_name: None,
            family_name: None,
            display_name: None,
            active: true,
            last_active: None,
            admin: false,
            in_directory: true,
            api_tokens: None,
            owned_by_directory: None,
            attributes: Attributes::new(),
        }
    }

    /// The matching key: the lower-cased email.
    #[must_use]
    pub fn key(&self) -> String {
        key_of(&self.email)
    }

    /// The login name, defaulting to the email.
    #[must_use]
    pub fn user_name(&self) -> &str {
        self.user_name.as_deref().unwrap_or(&self.email)
    }

    /// How a target refers to this user in group memberships: its id, or its key when it has none.
    #[must_use]
    pub fn reference(&self) -> String {
        self.id.clone().unwrap_or_else(|| self.key())
    }
}

/// A user's further attributes by name: a map kept as a vector sorted by name. Read, written and
/// described (JSON Schema) exactly as a `BTreeMap<String, String>`, in half the memory or less for
/// the few attributes a user has (a B-tree's node holds room for eleven: at a million users and
/// three copies of each, that room was most of a plan's peak memory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes(Vec<(String, String)>);

impl Attributes {
    #[must_use]
    pub fn new() -> Attributes {
        Attributes(Vec::new())
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(name))
    }

    /// The value of an attribute.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&String> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    #[must_use]
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets an attribute, returning the value it replaces.
    pub fn insert(&mut self, name: String, value: String) -> Option<String> {
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attributes in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Attributes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Attributes, A::Error> {
                // A repeated name keeps its last value, as a `BTreeMap` does.
                let mut a = Attributes(Vec::with_capacity(map.size_hint().unwrap_or(0).min(16)));
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    a.insert(k, v);
                }
                a.0.shrink_to_fit();
                Ok(a)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A group: a name and its members' keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// The system's id for the group (SCIM id in a target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Members by email.
    #[serde(default)]
    pub members: Vec<String>,
}

/// Everything one system holds: users and groups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Target only: the organization's verified email domains, when known (users outside them cannot
    /// be created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_domains: Option<Vec<String>>,
    /// Records the system holds but that are not in `users` or group `members`: users without an
    /// email, group members that are not users, anything that could not be converted. Counted
    /// and named in the plan, never dropped silently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<LeftOut>,
}

/// Whom a targeted read (`sync-user`, `explain`) is about: people by lower-cased email and, for the
/// target side, by the IdP ids a renamed person's account carries as `externalId` (so that a rename
/// is found as one, never taken for a new person).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct People {
    /// Lower-cased emails ([`key_of`]).
    pub emails: BTreeSet<String>,
    /// Source-side user ids (matched against a target user's `externalId` and a source user's `id`).
    pub ids: BTreeSet<String>,
}

impl People {
    /// People named by these emails (any case).
    #[must_use]
    pub fn by_email<'a>(emails: impl IntoIterator<Item = &'a str>) -> Self {
        People {
            emails: emails.into_iter().map(key_of).collect(),
            ids: BTreeSet::new(),
        }
    }

    /// Whether this user record is one of these people (by email, `externalId` or `id`).
    #[must_use]
    pub fn contains(&self, u: &User) -> bool {
        self.emails.contains(&u.key())
            || u.external_id.as_ref().is_some_and(|x| self.ids.contains(x))
            || u.id.as_ref().is_some_and(|x| self.ids.contains(x))
    }
}

impl Snapshot {
    /// The part of a snapshot that concerns these people: their user records, every group (so that
    /// group ids and names stay known) with its members cut to them, and only the left-out records
    /// that name them. What a targeted read must return; a connector without per-person endpoints
    /// reads everything and cuts it down with this.
    #[must_use]
    pub fn restrict_to(mut self, people: &People) -> Snapshot {
        self.users.retain(|u| people.contains(u));
        let kept: FxHashSet<String> = self.users.iter().map(User::key).collect();
        for g in &mut self.groups {
            g.members.retain(|m| kept.contains(&key_of(m)));
        }
        self.skipped.retain(|l| {
            l.email
                .as_deref()
                .is_some_and(|e| people.emails.contains(&key_of(e)))
                || people.emails.contains(&key_of(&l.name))
                || l.id.as_ref().is_some_and(|x| people.ids.contains(x))
        });
        self
    }
}

/// What kind of record was left out of a snapshot.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LeftOutKind {
    /// A user of the directory.
    User,
    /// A member of a group (one membership).
    Member,
    /// A group.
    Group,
}

/// A record a connector read but could not turn into the model, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeftOut {
    pub kind: LeftOutKind,
    /// The system's id for the record, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// How a person recognizes it: a username, an email, a display name.
    pub name: String,
    /// The record's email, when it has one (a target account with it is not taken for gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// For a member: the group it is a member of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Why it was left out, as a short clause (`no email`, `a service principal, not a user`);
    /// records with the same reason are counted together.
    pub reason: String,
}

impl LeftOut {
    /// A user left out for `reason`.
    #[must_use]
    pub fn user(id: Option<String>, name: &str, email: Option<String>, reason: &str) -> LeftOut {
        LeftOut {
            kind: LeftOutKind::User,
            id,
            name: name.to_string(),
            email,
            group: None,
            reason: reason.to_string(),
        }
    }

    /// A member of `group` left out for `reason`.
    #[must_use]
    pub fn member(
        group: &str,
        id: Option<String>,
        name: &str,
        email: Option<String>,
        reason: &str,
    ) -> LeftOut {
        LeftOut {
            kind: LeftOutKind::Member,
            id,
            name: name.to_string(),
            email,
            group: Some(group.to_string()),
            reason: reason.to_string(),
        }
    }

    /// A group left out for `reason`.
    #[must_use]
    pub fn group(id: Option<String>, name: &str, reason: &str) -> LeftOut {
        LeftOut {
            kind: LeftOutKind::Group,
            id,
            name: name.to_string(),
            email: None,
            group: None,
            reason: reason.to_string(),
        }
    }

    /// The record as a reader names it: `name (id X)`, and `in GROUP` for a member.
    #[must_use]
    pub fn label(&self) -> String {
        let mut s = self.name.clone();
        if let Some(id) = self.id.as_deref().filter(|id| *id != self.name) {
            s.push_str(&format!(" (id {id})"));
        }
        if let Some(g) = &self.group {
            s.push_str(&format!(" in {g}"));
        }
        s
    }
}

/// Lower-cases an email into a key, without allocating twice when it is already lower-case ASCII.
#[must_use]
pub fn key_of(email: &str) -> String {
    let email = email.trim();
    if email
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        email.to_lowercase()
    } else {
        email.to_string()
    }
}

/// Why a snapshot is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("user #{index} has an empty email")]
    EmptyEmail { index: usize },
    #[error("two users share the email {key}")]
    DuplicateUser { key: String },
    #[error("two groups share the name {name:?}")]
    DuplicateGroup { name: String },
}

/// Whether two groups may share a name: a target's groups are named uniquely (Atlassian), an IdP's
/// need not be (Entra display names repeat; Okta app groups share names with Okta groups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupNames {
    Unique,
    MayRepeat,
}

/// A snapshot with its keys computed once: users by key, group members as user indexes.
#[derive(Clone, Debug)]
pub struct Indexed {
    pub snapshot: Snapshot,
    /// `keys[i]` is the key of `snapshot.users[i]`.
    pub keys: Vec<String>,
    by_key: KeyIndex,
    /// `members[g]` holds the user indexes of `snapshot.groups[g]`, sorted and unique (the group's
    /// own member list is emptied once resolved).
    pub members: Vec<Vec<u32>>,
    /// Member emails that name no user, as (group, email).
    pub unknown_members: Vec<(String, String)>,
    /// Target only: names several groups share (see [`Indexed::new_target`]); those groups are not
    /// in `snapshot.groups`.
    pub shared_names: Vec<SharedName>,
}

/// A group name several target groups share (a SCIM server that allows it, groups made outside
/// idsync): which of them idsync would manage cannot be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedName {
    pub name: String,
    /// The groups' ids (their names when they have none), in snapshot order.
    pub ids: Vec<String>,
}

impl Indexed {
    /// Indexes a snapshot, rejecting duplicate users or groups.
    ///
    /// # Errors
    /// An empty email, two users with the same key, or two groups with the same name.
    pub fn new(snapshot: Snapshot) -> Result<Self, SnapshotError> {
        Self::with(snapshot, GroupNames::Unique)
    }

    /// Indexes a snapshot; with [`GroupNames::MayRepeat`] two groups may share a name (an IdP's
    /// groups, told apart by id; the config must not refer to such a name).
    ///
    /// # Errors
    /// An empty email, two users with the same key, or (when names are unique) two groups with the
    /// same name.
    pub fn with(snapshot: Snapshot, names: GroupNames) -> Result<Self, SnapshotError> {
        Indexed::resolved(Resolving::of(snapshot), names)
    }

    /// Indexes a snapshot whose members were resolved as it was read ([`Resolving`]); the same
    /// result as [`Indexed::with`] on the snapshot with its members by email.
    ///
    /// # Errors
    /// As [`Indexed::with`].
    pub fn resolved(read: Resolving, names: GroupNames) -> Result<Self, SnapshotError> {
        let Resolving {
            snapshot,
            keys,
            by_key,
            first_error,
            members: raw,
            pending,
            ..
        } = read;
        if let Some(e) = first_error {
            return Err(e);
        }
        let mut seen_groups =
            FxHashSet::with_capacity_and_hasher(snapshot.groups.len(), Default::default());
        for g in &snapshot.groups {
            if !seen_groups.insert(g.name.as_str()) && names == GroupNames::Unique {
                return Err(SnapshotError::DuplicateGroup {
                    name: g.name.clone(),
                });
            }
        }
        drop(seen_groups);
        // Members that named no user read before them: looked up now that every user is known.
        let pending: Vec<Result<u32, String>> = pending
            .into_iter()
            .map(|m| {
                let found = match by_key.find(&keys, &m) {
                    Some(i) => Some(i),
                    None => by_key.find(&keys, &key_of(&m)),
                };
                found.ok_or(m)
            })
            .collect();
        let mut members = Vec::with_capacity(raw.len());
        let mut unknown_members = Vec::new();
        for (g, mut idxs) in snapshot.groups.iter().zip(raw) {
            let mut unknown = false;
            for x in &mut idxs {
                if *x & PENDING != 0 {
                    match &pending[(*x & !PENDING) as usize] {
                        Ok(i) => *x = *i,
                        Err(m) => {
                            unknown_members.push((g.name.clone(), m.clone()));
                            *x = u32::MAX;
                            unknown = true;
                        }
                    }
                }
            }
            if unknown {
                idxs.retain(|&x| x != u32::MAX);
            }
            idxs.sort_unstable();
            idxs.dedup();
            idxs.shrink_to_fit();
            members.push(idxs);
        }
        Ok(Indexed {
            snapshot,
            keys,
            by_key,
            members,
            unknown_members,
            shared_names: Vec::new(),
        })
    }

    /// Indexes a target's snapshot. Groups whose name (without regard to case) another group
    /// shares are taken out and listed in `shared_names`, for the plan to name, instead of making
    /// the whole target unusable.
    ///
    /// # Errors
    /// As [`Indexed::new`], but never for groups.
    pub fn new_target(snapshot: Snapshot) -> Result<Self, SnapshotError> {
        Indexed::resolved_target(Resolving::of(snapshot))
    }

    /// [`Indexed::new_target`] for a snapshot whose members were resolved as it was read.
    ///
    /// # Errors
    /// As [`Indexed::new_target`].
    pub fn resolved_target(mut read: Resolving) -> Result<Self, SnapshotError> {
        let mut count: FxHashMap<String, usize> = FxHashMap::default();
        for g in &read.snapshot.groups {
            *count.entry(g.name.to_lowercase()).or_default() += 1;
        }
        let mut shared: Vec<SharedName> = Vec::new();
        if count.values().any(|&n| n > 1) {
            let groups = std::mem::take(&mut read.snapshot.groups);
            let raw = std::mem::take(&mut read.members);
            for (g, m) in groups.into_iter().zip(raw) {
                let lower = g.name.to_lowercase();
                if count[&lower] <= 1 {
                    read.snapshot.groups.push(g);
                    read.members.push(m);
                    continue;
                }
                let id = g.id.clone().unwrap_or_else(|| g.name.clone());
                match shared.iter_mut().find(|s| s.name.to_lowercase() == lower) {
                    Some(s) => s.ids.push(id),
                    None => shared.push(SharedName {
                        name: g.name,
                        ids: vec![id],
                    }),
                }
            }
        }
        let mut indexed = Indexed::resolved(read, GroupNames::Unique)?;
        indexed.shared_names = shared;
        Ok(indexed)
    }

    /// The index of the user with this key.
    #[must_use]
    pub fn find(&self, key: &str) -> Option<u32> {
        self.by_key.find(&self.keys, key)
    }

    /// Group name -> group index.
    #[must_use]
    pub fn groups_by_name(&self) -> FxHashMap<&str, usize> {
        self.snapshot
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.as_str(), i))
            .collect()
    }

    #[must_use]
    pub fn user(&self, idx: u32) -> &User {
        &self.snapshot.users[idx as usize]
    }

    #[must_use]
    pub fn key(&self, idx: u32) -> &str {
        &self.keys[idx as usize]
    }
}

/// Marks a member not resolved yet in [`Resolving::members`]: the rest is an index into its
/// pending names.
const PENDING: u32 = 1 << 31;

/// A snapshot being indexed as it is read: each user's key is indexed as the user comes, and each
/// group member is resolved to a user index at once, so that a file of millions of memberships
/// never holds a string per membership. A member that names no user read so far (a user later in
/// the file, or none at all) is kept by name, once per distinct name, and looked up when
/// [`Indexed::resolved`] finishes, so the order of the file does not matter and a member that is
/// no user is reported as ever.
#[derive(Debug, Default)]
pub struct Resolving {
    /// The users and groups (each group's `members` left empty: they are in `members`).
    pub snapshot: Snapshot,
    keys: Vec<String>,
    by_key: KeyIndex,
    /// The first problem with a user, in user order (as [`Indexed::with`] reports it).
    first_error: Option<SnapshotError>,
    /// Per group: user indexes, or [`PENDING`] | an index into `pending`.
    members: Vec<Vec<u32>>,
    pending: Vec<String>,
    /// Pending name -> its index in `pending`.
    pending_index: KeyIndex,
}

impl Resolving {
    /// An empty snapshot to read users and groups into.
    #[must_use]
    pub fn new() -> Resolving {
        Resolving::default()
    }

    /// A snapshot read whole, its members resolved now (what [`Indexed::with`] does).
    #[must_use]
    pub fn of(mut snapshot: Snapshot) -> Resolving {
        let users = std::mem::take(&mut snapshot.users);
        let groups = std::mem::take(&mut snapshot.groups);
        let mut r = Resolving {
            snapshot,
            ..Resolving::default()
        };
        r.keys.reserve(users.len());
        r.by_key = KeyIndex::with_capacity(users.len());
        r.snapshot.users.reserve(users.len());
        for u in users {
            r.add_user(u);
        }
        r.snapshot.groups.reserve(groups.len());
        r.members.reserve(groups.len());
        for mut g in groups {
            // The member emails are not needed once resolved: freed group by group.
            let names = std::mem::take(&mut g.members);
            let mut idxs = Vec::with_capacity(names.len());
            for m in &names {
                idxs.push(r.member(m));
            }
            drop(names);
            r.add_group(g, idxs);
        }
        r
    }

    /// Adds the next user.
    pub fn add_user(&mut self, u: User) {
        let index = self.snapshot.users.len();
        let key = key_of(&u.email);
        self.snapshot.users.push(u);
        if self.first_error.is_some() {
            return;
        }
        if key.is_empty() {
            self.first_error = Some(SnapshotError::EmptyEmail { index });
            return;
        }
        if self.by_key.find(&self.keys, &key).is_some() {
            self.first_error = Some(SnapshotError::DuplicateUser { key });
            return;
        }
        let idx = u32::try_from(index).expect("fewer than 2 billion users");
        assert!(idx < PENDING, "fewer than 2 billion users");
        self.keys.push(key);
        self.by_key.insert(&self.keys, idx);
    }

    /// A member by email (any case): the index of the user read so far with that key, or a
    /// pending name.
    pub fn member(&mut self, m: &str) -> u32 {
        // After a problem with the users the snapshot is refused anyway: nothing to resolve.
        if self.first_error.is_none() {
            let found = match self.by_key.find(&self.keys, m) {
                Some(i) => Some(i),
                None => self.by_key.find(&self.keys, &key_of(m)),
            };
            if let Some(i) = found {
                return i;
            }
        }
        if let Some(p) = self.pending_index.find(&self.pending, m) {
            return PENDING | p;
        }
        let p = u32::try_from(self.pending.len()).expect("fewer than 2 billion names");
        assert!(p < PENDING, "fewer than 2 billion names");
        self.pending.push(m.to_string());
        self.pending_index.insert(&self.pending, p);
        PENDING | p
    }

    /// Adds the next group, with its members as [`Resolving::member`] gave them (`group.members`
    /// is ignored).
    pub fn add_group(&mut self, mut group: Group, members: Vec<u32>) {
        group.members = Vec::new();
        self.snapshot.groups.push(group);
        self.members.push(members);
    }
}

/// Key -> user index, holding only indexes: the keys stay in `Indexed::keys`, so a 100,000-user
/// snapshot does not carry a second copy of every email.
#[derive(Clone, Debug, Default)]
struct KeyIndex {
    table: HashTable<u32>,
}

impl KeyIndex {
    fn with_capacity(n: usize) -> KeyIndex {
        KeyIndex {
            table: HashTable::with_capacity(n),
        }
    }

    fn find(&self, keys: &[String], key: &str) -> Option<u32> {
        let h = FxBuildHasher.hash_one(key);
        self.table.find(h, |&i| keys[i as usize] == key).copied()
    }

    /// Adds `keys[idx]`; the caller has checked it is not there yet.
    fn insert(&mut self, keys: &[String], idx: u32) {
        let h = FxBuildHasher.hash_one(keys[idx as usize].as_str());
        self.table.insert_unique(h, idx, |&i| {
            FxBuildHasher.hash_one(keys[i as usize].as_str())
        });
    }
}

/// A documented rate budget of an API and the requests a run sends against it: `per` requests
/// every `window_secs` seconds. Connectors report them (a source for its read, a target for its
/// writes); the plan's cost estimate takes the time they need into account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RateBudget {
    /// What the budget is, for people (`source okta: Okta's GET /api/v1/users limit of 600 a minute`).
    pub what: String,
    /// Requests sent against it.
    pub requests: u64,
    /// Requests the budget allows per window.
    pub per: u64,
    /// The window, in seconds.
    pub window_secs: u64,
}

impl RateBudget {
    /// The least time these requests take under the budget, spent at its steady rate (a budget of
    /// 2,400 a minute takes 1,046 requests at least 26 s). A budget may start with a whole window
    /// to spend, but the plan's own read (and, for `apply`, the re-read) has just spent from it, and
    /// other integrations share it: the steady rate is what a run can count on.
    #[must_use]
    pub fn min_seconds(&self) -> u64 {
        if self.per == 0 {
            return 0;
        }
        self.requests.saturating_mul(self.window_secs) / self.per
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(email: &str, id: Option<&str>, external_id: Option<&str>) -> User {
        let mut u = User::new(email);
        u.id = id.map(str::to_string);
        u.external_id = external_id.map(str::to_string);
        u
    }

    #[test]
    fn restrict_to_keeps_the_people_and_every_group() {
        let snap = Snapshot {
            users: vec![
                user("Alice@Example.com", Some("t1"), None),
                user("old.bob@example.com", Some("t2"), Some("idp-bob")),
                user("carol@example.com", Some("t3"), None),
            ],
            groups: vec![
                Group {
                    name: "eng".into(),
                    id: Some("g1".into()),
                    members: vec![
                        "alice@example.com".into(),
                        "carol@example.com".into(),
                        "old.bob@example.com".into(),
                    ],
                },
                Group {
                    name: "ops".into(),
                    id: Some("g2".into()),
                    members: vec!["carol@example.com".into()],
                },
            ],
            verified_domains: None,
            skipped: vec![LeftOut {
                kind: LeftOutKind::User,
                id: Some("x".into()),
                name: "carol".into(),
                email: Some("carol@example.com".into()),
                group: None,
                reason: "no email".into(),
            }],
        };
        let mut people = People::by_email(["ALICE@example.com"]);
        people.ids.insert("idp-bob".into());
        let cut = snap.restrict_to(&people);
        let emails: Vec<&str> = cut.users.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(emails, ["Alice@Example.com", "old.bob@example.com"]);
        assert_eq!(cut.groups.len(), 2, "every group stays known");
        assert_eq!(
            cut.groups[0].members,
            ["alice@example.com", "old.bob@example.com"]
        );
        assert!(cut.groups[1].members.is_empty());
        assert!(
            cut.skipped.is_empty(),
            "carol's record is not about these people"
        );
    }
}
