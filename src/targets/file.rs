//! `type: file` as a target: a snapshot file standing in for Atlassian. `apply` changes an in-memory
//! copy action by action and `finish` rewrites the file atomically, so a failed run leaves it as it was.
//!
//! Cost: the file is read and indexed once (users by id and key, groups by name and id), each action
//! then costs O(its size) (a rename rewrites no membership: members are held as user indexes and
//! written as emails only at the end), and `finish` writes the file once. Applying a plan is linear
//! in the file and the plan.

use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use rustc_hash::FxHashMap;

use super::{ActionError, Target, TargetError};
use crate::model::{key_of, Group, Resolving, Snapshot, User};
use crate::plan::{Action, FieldChange, Member, UserFields};
use crate::snapshot_file::{self, Format};

/// A snapshot file used as the target.
#[derive(Debug)]
pub struct FileTarget {
    path: PathBuf,
    state: Mutex<Option<State>>,
}

type Map<V> = FxHashMap<String, V>;

/// One entry of a group's member list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// A user, written as their email (renames follow).
    User(u32),
    /// A user the file spells otherwise than their email (another case): `texts[t]`, written as read
    /// while it still names them, else as their email.
    Spelled(u32, u32),
    /// A member that names no user: `texts[t]`, written as read.
    Other(u32),
    /// Removed by this apply.
    Gone,
}

impl Entry {
    fn user(self) -> Option<u32> {
        match self {
            Entry::User(u) | Entry::Spelled(u, _) => Some(u),
            Entry::Other(_) | Entry::Gone => None,
        }
    }
}

/// A group's member list, in file order, with an index of the users in it: adding or removing a
/// member costs O(1), whatever the group's size.
#[derive(Debug, Default)]
struct Members {
    entries: Vec<Entry>,
    /// User -> the position of their entry; built the first time the group changes.
    at: Option<FxHashMap<u32, u32>>,
    /// Positions of further entries of a user already in `at` (a file that lists someone twice,
    /// in two spellings); normally empty.
    dups: Vec<u32>,
}

impl Members {
    fn index(&mut self) -> &mut FxHashMap<u32, u32> {
        let Members { entries, at, dups } = self;
        at.get_or_insert_with(|| {
            let mut at = FxHashMap::with_capacity_and_hasher(entries.len(), Default::default());
            for (p, e) in entries.iter().enumerate() {
                if let Some(u) = e.user() {
                    match at.entry(u) {
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(pos(p));
                        }
                        std::collections::hash_map::Entry::Occupied(_) => dups.push(pos(p)),
                    }
                }
            }
            at
        })
    }

    fn add(&mut self, u: u32) {
        let at_end = pos(self.entries.len());
        if let std::collections::hash_map::Entry::Vacant(v) = self.index().entry(u) {
            v.insert(at_end);
            self.entries.push(Entry::User(u));
        }
    }

    fn remove(&mut self, u: u32) {
        if let Some(p) = self.index().remove(&u) {
            self.entries[p as usize] = Entry::Gone;
            if !self.dups.is_empty() {
                let entries = &mut self.entries;
                self.dups.retain(|&p| {
                    let mine = entries[p as usize].user() == Some(u);
                    if mine {
                        entries[p as usize] = Entry::Gone;
                    }
                    !mine
                });
            }
        }
    }

    /// The entry at `p`, a member that named no user, names user `u` now.
    fn claim(&mut self, p: u32, u: u32) {
        let Entry::Other(t) = self.entries[p as usize] else {
            return;
        };
        // Indexed before the entry names `u`, so that the entry is registered once, here.
        self.index();
        self.entries[p as usize] = Entry::Spelled(u, t);
        let first = match self.index().entry(u) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(p);
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => false,
        };
        if !first {
            self.dups.push(p);
        }
    }
}

fn pos(p: usize) -> u32 {
    u32::try_from(p).expect("fewer than 4 billion entries")
}

/// The file as `apply` changes it, indexed so that each action costs O(its size).
///
/// A plan refers to a user by their reference (id, or key for a user without one) and key as the
/// file was when planned; those are looked up in `by_id` and `by_key`, which never change, so an
/// action finds its user whatever the actions before it renamed. Who holds a key now (for creating a
/// user, for a member this plan creates, for refusing two users one email) is `by_key` overlaid
/// with `moved`.
#[derive(Debug)]
struct State {
    /// The file's users and groups; the groups' member lists are in `members`.
    snap: Snapshot,
    members: Vec<Members>,
    /// Member texts kept as read (see [`Entry`]).
    texts: Vec<String>,
    /// Users by id, as read.
    by_id: Map<u32>,
    /// Users by key, as read.
    by_key: Map<u32>,
    /// Keys that changed hands since: who holds each now (`None`: nobody, renamed away).
    moved: Map<Option<u32>>,
    /// Member entries that name no user, by key: (group, position); claimed by a user who takes
    /// that key (created, or renamed to it).
    unclaimed: Map<Vec<(u32, u32)>>,
    groups_by_name: Map<u32>,
    groups_by_id: Map<u32>,
    dirty: bool,
    /// What `finish` will write, once `stage` prepared it.
    staged: Option<String>,
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 4 billion users and groups")
}

impl State {
    fn new(mut snap: Snapshot) -> State {
        let n = snap.users.len();
        let mut by_key = Map::with_capacity_and_hasher(n, Default::default());
        let mut by_id = Map::with_capacity_and_hasher(n, Default::default());
        for (i, u) in snap.users.iter().enumerate() {
            by_key.insert(u.key(), idx(i));
            if let Some(id) = &u.id {
                by_id.insert(id.clone(), idx(i));
            }
        }
        let mut st = State {
            members: Vec::with_capacity(snap.groups.len()),
            texts: Vec::new(),
            by_id,
            by_key,
            moved: Map::default(),
            unclaimed: Map::default(),
            groups_by_name: Map::default(),
            groups_by_id: Map::default(),
            dirty: false,
            staged: None,
            snap: Snapshot::default(),
        };
        for (gi, g) in snap.groups.iter_mut().enumerate() {
            let gi = idx(gi);
            st.groups_by_name.entry(g.name.clone()).or_insert(gi);
            if let Some(id) = &g.id {
                st.groups_by_id.entry(id.clone()).or_insert(gi);
            }
            let list = std::mem::take(&mut g.members);
            let mut entries = Vec::with_capacity(list.len());
            for m in list {
                let found = match st.by_key.get(m.as_str()) {
                    Some(&i) => Some(i),
                    None => st.by_key.get(&key_of(&m)).copied(),
                };
                let p = pos(entries.len());
                entries.push(match found {
                    Some(i) if snap.users[i as usize].email == m => Entry::User(i),
                    Some(i) => {
                        st.texts.push(m);
                        Entry::Spelled(i, pos(st.texts.len() - 1))
                    }
                    None => {
                        st.unclaimed.entry(key_of(&m)).or_default().push((gi, p));
                        st.texts.push(m);
                        Entry::Other(pos(st.texts.len() - 1))
                    }
                });
            }
            st.members.push(Members {
                entries,
                at: None,
                dups: Vec::new(),
            });
        }
        st.snap = snap;
        st
    }

    /// Who holds `key` now.
    fn holder(&self, key: &str) -> Option<u32> {
        match self.moved.get(key) {
            Some(now) => *now,
            None => self.by_key.get(key).copied(),
        }
    }

    /// The user who holds this email now (without regard to case).
    fn current(&self, email: &str) -> Option<u32> {
        self.holder(email).or_else(|| self.holder(&key_of(email)))
    }

    /// The user a plan's reference (an id, or a key as the file was planned) names.
    fn user(&self, reference: &str) -> Result<u32, ActionError> {
        self.by_id
            .get(reference)
            .or_else(|| self.by_key.get(reference))
            .copied()
            .or_else(|| self.by_key.get(&key_of(reference)).copied())
            .or_else(|| self.current(reference))
            .ok_or_else(|| ActionError(format!("user {reference} not found")))
    }

    fn member(&self, m: &Member) -> Result<u32, ActionError> {
        match &m.id {
            Some(id) => self.user(id),
            None => self
                .current(&m.key)
                .ok_or_else(|| ActionError(format!("user {} not found", m.key))),
        }
    }

    fn group(&self, name: &str) -> Result<usize, ActionError> {
        // The first group whose name or id it is.
        match (self.groups_by_name.get(name), self.groups_by_id.get(name)) {
            (Some(&a), Some(&b)) => Some(a.min(b)),
            (Some(&a), None) | (None, Some(&a)) => Some(a),
            (None, None) => None,
        }
        .map(|g| g as usize)
        .ok_or_else(|| ActionError(format!("group {name} not found")))
    }

    /// Refuses to give user `i` an email another user holds now.
    fn free_for(&self, i: u32, email: &str) -> Result<(), ActionError> {
        match self.holder(&key_of(email)) {
            Some(j) if j != i => Err(ActionError(format!(
                "user {email} already exists (another user holds that email)"
            ))),
            _ => Ok(()),
        }
    }

    /// User `i` now holds `new` instead of `old`: memberships follow by index (nothing to rewrite),
    /// and entries that named `new` without naming a user name them now.
    fn rekey(&mut self, i: u32, old: &str, new: String) {
        if old == new {
            return;
        }
        if self.holder(old) == Some(i) {
            self.moved.insert(old.to_string(), None);
        }
        self.take_key(i, new);
    }

    fn take_key(&mut self, i: u32, key: String) {
        if let Some(entries) = self.unclaimed.remove(&key) {
            for (g, p) in entries {
                self.members[g as usize].claim(p, i);
            }
        }
        self.moved.insert(key, Some(i));
    }

    /// The file's text, as `finish` writes it.
    fn render(&mut self, format: Format) -> String {
        let Snapshot { users, groups, .. } = &mut self.snap;
        for (g, m) in groups.iter_mut().zip(&self.members) {
            g.members = m
                .entries
                .iter()
                .filter_map(|e| match *e {
                    Entry::User(u) => Some(users[u as usize].email.clone()),
                    Entry::Spelled(u, t) => {
                        let text = &self.texts[t as usize];
                        let email = &users[u as usize].email;
                        Some(if key_of(text) == key_of(email) {
                            text.clone()
                        } else {
                            email.clone()
                        })
                    }
                    Entry::Other(t) => Some(self.texts[t as usize].clone()),
                    Entry::Gone => None,
                })
                .collect();
        }
        let text = snapshot_file::to_string(&self.snap, format);
        for g in &mut self.snap.groups {
            g.members = Vec::new();
        }
        text
    }
}

impl FileTarget {
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        FileTarget {
            path,
            state: Mutex::new(None),
        }
    }
}

fn set_fields(u: &mut User, f: &UserFields) {
    u.email.clone_from(&f.email);
    if f.user_name.is_some() {
        u.user_name.clone_from(&f.user_name);
    }
    if f.external_id.is_some() {
        u.external_id.clone_from(&f.external_id);
    }
    if f.given_name.is_some() {
        u.given_name.clone_from(&f.given_name);
    }
    if f.family_name.is_some() {
        u.family_name.clone_from(&f.family_name);
    }
    if f.display_name.is_some() {
        u.display_name.clone_from(&f.display_name);
    }
    for (k, v) in &f.attributes {
        u.attributes.insert(k.clone(), v.clone());
    }
}

fn set_change(u: &mut User, c: &FieldChange) {
    let v = Some(c.to.clone());
    match c.field.as_str() {
        "email" => u.email.clone_from(&c.to),
        "userName" => u.user_name = v,
        "externalId" => u.external_id = v,
        "givenName" => u.given_name = v,
        "familyName" => u.family_name = v,
        "displayName" => u.display_name = v,
        other => {
            u.attributes.insert(other.to_string(), c.to.clone());
        }
    }
}

#[async_trait]
impl Target for FileTarget {
    fn name(&self) -> String {
        let name = self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        format!("file:{name}")
    }

    /// A file stands in for an Atlassian directory (dry runs, tests), so it keeps Atlassian's
    /// reserved group names.
    fn reserved_group(&self, name: &str) -> Option<&'static str> {
        super::atlassian::reserved_group(name)
    }

    fn request_concurrency(&self) -> Option<usize> {
        None
    }

    async fn snapshot(&mut self) -> Result<Snapshot, TargetError> {
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || snapshot_file::read(&path));
        let snap = read.await.expect("reading does not panic")?;
        *self.state.get_mut().expect("not poisoned") = None;
        Ok(snap)
    }

    async fn snapshot_resolving(&mut self) -> Result<Resolving, TargetError> {
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || snapshot_file::read_resolving(&path));
        let read = read.await.expect("reading does not panic")?;
        *self.state.get_mut().expect("not poisoned") = None;
        Ok(read)
    }

    async fn apply(&self, action: &Action) -> Result<(), ActionError> {
        let mut guard = self.state.lock().expect("not poisoned");
        if guard.is_none() {
            let snap = snapshot_file::read(&self.path).map_err(|e| ActionError(e.to_string()))?;
            *guard = Some(State::new(snap));
        }
        let st = guard.as_mut().expect("just loaded");
        match action {
            Action::CreateUser { key, user, .. } => {
                if st.current(key).is_some() || st.current(&user.email).is_some() {
                    return Err(ActionError(format!("user {key} already exists")));
                }
                let mut u = User::new(&user.email);
                set_fields(&mut u, user);
                let i = idx(st.snap.users.len());
                let key = u.key();
                st.snap.users.push(u);
                st.take_key(i, key);
            }
            Action::LinkUser { key, user, .. } => {
                let i = match st.current(key) {
                    Some(i) => i,
                    None => st.user(key)?,
                };
                let u = &st.snap.users[i as usize];
                if u.in_directory {
                    return Err(ActionError(format!(
                        "user {key} is already in the directory"
                    )));
                }
                st.free_for(i, &user.email)?;
                let old = u.key();
                let u = &mut st.snap.users[i as usize];
                u.in_directory = true;
                u.active = true;
                set_fields(u, user);
                let new = u.key();
                st.rekey(i, &old, new);
            }
            Action::CreateGroup { group, .. } => {
                if st.groups_by_name.contains_key(group) {
                    return Err(ActionError(format!("group {group} already exists")));
                }
                st.groups_by_name
                    .insert(group.clone(), idx(st.snap.groups.len()));
                st.snap.groups.push(Group {
                    name: group.clone(),
                    id: None,
                    members: Vec::new(),
                });
                st.members.push(Members::default());
            }
            Action::AddMembers {
                group,
                group_id,
                members,
                ..
            } => {
                let users = members
                    .iter()
                    .map(|m| st.member(m))
                    .collect::<Result<Vec<_>, _>>()?;
                let g = st.group(group_id.as_deref().unwrap_or(group))?;
                for u in users {
                    st.members[g].add(u);
                }
            }
            Action::RemoveMembers {
                group_id, members, ..
            } => {
                let users = members
                    .iter()
                    .map(|m| st.member(m))
                    .collect::<Result<Vec<_>, _>>()?;
                let g = st.group(group_id)?;
                for u in users {
                    st.members[g].remove(u);
                }
            }
            Action::UpdateUser { id, changes, .. } => {
                let i = st.user(id)?;
                if let Some(c) = changes.iter().rev().find(|c| c.field == "email") {
                    st.free_for(i, &c.to)?;
                }
                let u = &mut st.snap.users[i as usize];
                let old = u.key();
                for c in changes {
                    set_change(u, c);
                }
                let new = u.key();
                st.rekey(i, &old, new);
            }
            Action::ReactivateUser { id, .. } => {
                let i = st.user(id)?;
                st.snap.users[i as usize].active = true;
            }
            Action::DeactivateUser { id, .. } => {
                let i = st.user(id)?;
                st.snap.users[i as usize].active = false;
            }
            Action::RevokeApiTokens { id, .. } => {
                let i = st.user(id)?;
                st.snap.users[i as usize].api_tokens = Some(0);
            }
        }
        st.dirty = true;
        st.staged = None;
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), TargetError> {
        let state = self.state.get_mut().expect("not poisoned");
        if let Some(st) = state.as_mut() {
            if st.dirty {
                let text = match st.staged.take() {
                    Some(text) => text,
                    None => st.render(Format::of(&self.path)),
                };
                snapshot_file::replace_atomic(&self.path, text.as_bytes())?;
            }
        }
        *state = None;
        Ok(())
    }

    fn writes_at_finish(&self) -> bool {
        true
    }

    fn stage(&mut self) -> Result<Option<String>, TargetError> {
        let state = self.state.get_mut().expect("not poisoned");
        let Some(st) = state.as_mut().filter(|st| st.dirty) else {
            return Ok(None);
        };
        let text = st.render(Format::of(&self.path));
        let sha = sha256(text.as_bytes());
        st.staged = Some(text);
        Ok(Some(sha))
    }

    fn holds(&self, sha: &str) -> bool {
        std::fs::read(&self.path).is_ok_and(|b| sha256(&b) == sha)
    }
}

fn sha256(bytes: &[u8]) -> String {
    crate::digest::sha256_hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::DeactivateCause;

    fn user(email: &str, id: Option<&str>, active: bool) -> User {
        let mut u = User::new(email);
        u.id = id.map(str::to_string);
        u.active = active;
        u
    }

    fn group(name: &str, members: &[&str]) -> Group {
        Group {
            name: name.into(),
            id: Some(format!("g-{name}")),
            members: members.iter().map(|m| (*m).to_string()).collect(),
        }
    }

    fn member(key: &str, id: Option<&str>) -> Member {
        Member {
            key: key.into(),
            id: id.map(str::to_string),
            reason: "test".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        }
    }

    fn add(g: &str, members: Vec<Member>) -> Action {
        Action::AddMembers {
            group: g.into(),
            group_id: Some(format!("g-{g}")),
            batch: [1, 1],
            members,
            reason: "test".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        }
    }

    fn remove(g: &str, members: Vec<Member>) -> Action {
        Action::RemoveMembers {
            group: g.into(),
            group_id: format!("g-{g}"),
            batch: [1, 1],
            members,
            reason: "test".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        }
    }

    fn rename(key: &str, id: &str, from: &str) -> Action {
        Action::UpdateUser {
            key: key.into(),
            id: id.into(),
            changes: vec![
                FieldChange {
                    field: "email".into(),
                    from: Some(from.into()),
                    to: key.into(),
                    reason: "test".into(),
                    reason_code: crate::plan::ReasonCode::Unknown,
                },
                FieldChange {
                    field: "givenName".into(),
                    from: None,
                    to: "Ana".into(),
                    reason: "test".into(),
                    reason_code: crate::plan::ReasonCode::Unknown,
                },
            ],
            reason: "test".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        }
    }

    fn reactivate(key: &str, id: &str) -> Action {
        Action::ReactivateUser {
            key: key.into(),
            id: id.into(),
            reason: "test".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        }
    }

    fn deactivate(key: &str, id: &str) -> Action {
        Action::DeactivateUser {
            key: key.into(),
            id: id.into(),
            account_id: None,
            cause: DeactivateCause::GoneFromSources,
            reason: "test".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        }
    }

    fn revoke(key: &str, id: &str) -> Action {
        Action::RevokeApiTokens {
            key: key.into(),
            id: id.into(),
            account_id: "acc".into(),
            tokens: Some(2),
            reason: "test".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        }
    }

    fn create(email: &str) -> Action {
        Action::CreateUser {
            key: email.into(),
            user: UserFields {
                email: email.into(),
                ..UserFields::default()
            },
            reason: "test".into(),
            reason_code: crate::plan::ReasonCode::Unknown,
        }
    }

    /// Applies `actions` in order to a file holding `before`; returns what the file holds after, or
    /// the first error.
    fn apply_all(before: &Snapshot, actions: &[&Action]) -> Result<Snapshot, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atlassian.yaml");
        std::fs::write(&path, snapshot_file::to_string(before, Format::Yaml)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut t = FileTarget::new(path.clone());
        rt.block_on(async {
            for a in actions {
                t.apply(a).await.map_err(|e| format!("{a:?}: {e}"))?;
            }
            t.finish().await.map_err(|e| e.to_string())
        })?;
        Ok(snapshot_file::read(&path).unwrap())
    }

    /// Every order of `actions`.
    fn orders(actions: &[Action]) -> Vec<Vec<&Action>> {
        fn permute(rest: &mut Vec<usize>, done: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if rest.is_empty() {
                out.push(done.clone());
            }
            for k in 0..rest.len() {
                done.push(rest.remove(k));
                permute(rest, done, out);
                rest.insert(k, done.pop().unwrap());
            }
        }
        let mut out = Vec::new();
        permute(&mut (0..actions.len()).collect(), &mut Vec::new(), &mut out);
        out.into_iter()
            .map(|o| o.into_iter().map(|i| &actions[i]).collect())
            .collect()
    }

    /// Applies the actions in every order: each order succeeds and leaves the same file, `want`.
    fn every_order_gives(before: &Snapshot, actions: &[Action], want: &Snapshot) -> usize {
        let all = orders(actions);
        for order in &all {
            let got = apply_all(before, order).unwrap_or_else(|e| panic!("{e}\norder: {order:#?}"));
            assert_eq!(&got, want, "order: {order:#?}");
        }
        all.len()
    }

    /// ana, renamed and reactivated, leaving `engineering` and joining `design`, listed in `other`
    /// (not managed) too, beside ben; `id` is ana's id in the file, if any.
    fn renamed_and_reactivated(id: Option<&str>) -> (Snapshot, Vec<Action>, Snapshot) {
        let before = Snapshot {
            users: vec![
                user("ana@example.com", id, false),
                user("ben@example.com", Some("scim-ben"), true),
            ],
            groups: vec![
                group("engineering", &["ana@example.com", "ben@example.com"]),
                group("design", &["ben@example.com"]),
                group("other", &["Ana@Example.com", "nobody@example.com"]),
            ],
            ..Snapshot::default()
        };
        // What a plan refers to her by: her id, or her key as planned (the old email).
        let r = id.unwrap_or("ana@example.com");
        let new = "ana.new@example.com";
        let actions = vec![
            rename(new, r, "ana@example.com"),
            reactivate(new, r),
            // Additions name the key wanted after the plan, removals the key as planned.
            add("design", vec![member(new, Some(r))]),
            remove("engineering", vec![member("ana@example.com", Some(r))]),
        ];
        let mut want = before.clone();
        want.users[0].email = new.into();
        want.users[0].given_name = Some("Ana".into());
        want.users[0].active = true;
        want.groups[0].members = vec!["ben@example.com".into()];
        want.groups[1].members = vec!["ben@example.com".into(), new.into()];
        want.groups[2].members = vec![new.into(), "nobody@example.com".into()];
        (before, actions, want)
    }

    #[test]
    fn a_user_without_an_id_renamed_and_reactivated_in_any_order() {
        let (before, actions, want) = renamed_and_reactivated(None);
        assert_eq!(every_order_gives(&before, &actions, &want), 24);
    }

    #[test]
    fn a_user_with_an_id_renamed_and_reactivated_in_any_order() {
        let (before, actions, want) = renamed_and_reactivated(Some("scim-ana"));
        assert_eq!(every_order_gives(&before, &actions, &want), 24);
    }

    #[test]
    fn a_deactivation_in_any_order() {
        let before = Snapshot {
            users: vec![user("cy@example.com", None, true)],
            groups: vec![group("engineering", &["cy@example.com"])],
            ..Snapshot::default()
        };
        let actions = vec![
            deactivate("cy@example.com", "cy@example.com"),
            revoke("cy@example.com", "cy@example.com"),
            remove(
                "engineering",
                vec![member("cy@example.com", Some("cy@example.com"))],
            ),
        ];
        let mut want = before.clone();
        want.users[0].active = false;
        want.users[0].api_tokens = Some(0);
        want.groups[0].members.clear();
        assert_eq!(every_order_gives(&before, &actions, &want), 6);
    }

    #[test]
    fn a_created_user_joins_groups_in_any_order_after_creation() {
        // A member the file lists without a user: the created user takes that entry over.
        let before = Snapshot {
            users: vec![user("ben@example.com", None, true)],
            groups: vec![
                group("engineering", &["Dee@example.com"]),
                group("design", &[]),
            ],
            ..Snapshot::default()
        };
        let memberships = vec![
            add("engineering", vec![member("dee@example.com", None)]),
            add("design", vec![member("dee@example.com", None)]),
            Action::CreateGroup {
                group: "new".into(),
                reason: "test".into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            },
        ];
        let mut want = before.clone();
        want.users.push(User::new("dee@example.com"));
        want.groups[1].members = vec!["dee@example.com".into()];
        for order in orders(&memberships) {
            let created = create("dee@example.com");
            let mut all = vec![&created];
            all.extend(order);
            let mut got = apply_all(&before, &all).unwrap();
            assert_eq!(got.groups.pop().unwrap().name, "new");
            assert_eq!(got, want);
        }
        // Before its creation the user is not found, and nothing is written.
        let err = apply_all(&before, &[&memberships[0]]).unwrap_err();
        assert!(err.ends_with("user dee@example.com not found"), "{err}");
    }

    #[test]
    fn a_hand_ordered_list_finds_each_user_by_old_email_new_email_or_id() {
        let (before, _, _) = renamed_and_reactivated(None);
        let new = "ana.new@example.com";
        let list = [
            // By the new email, once renamed; by the old one (how the plan knew her) after that.
            rename(new, "ana@example.com", "ana@example.com"),
            add("design", vec![member(new, None)]),
            deactivate(new, "ana@example.com"),
            reactivate(new, new),
            // The old email is free again: a new user takes it, and a member without an id is them.
            create("ana@example.com"),
            add("engineering", vec![member("ana@example.com", None)]),
            remove(
                "engineering",
                vec![member("ana@example.com", Some("ana@example.com"))],
            ),
            // ben renamed by id, then a removal naming him by id and his new key.
            rename("ben.new@example.com", "scim-ben", "ben@example.com"),
            remove(
                "design",
                vec![member("ben.new@example.com", Some("scim-ben"))],
            ),
        ];
        let refs: Vec<&Action> = list.iter().collect();
        let after = apply_all(&before, &refs).unwrap();
        let emails: Vec<(&str, bool)> = after
            .users
            .iter()
            .map(|u| (u.email.as_str(), u.active))
            .collect();
        assert_eq!(
            emails,
            [
                (new, true),
                ("ben.new@example.com", true),
                ("ana@example.com", true)
            ]
        );
        let members: Vec<&[String]> = after.groups.iter().map(|g| g.members.as_slice()).collect();
        assert_eq!(
            members,
            [
                &["ben.new@example.com".to_string(), "ana@example.com".into()][..],
                &[new.to_string()][..],
                &[new.to_string(), "nobody@example.com".into()][..],
            ]
        );
    }

    #[test]
    fn a_rename_to_an_email_another_user_holds_is_refused_and_changes_nothing() {
        let (before, _, _) = renamed_and_reactivated(None);
        let clash = rename("ben@example.com", "ana@example.com", "ana@example.com");
        let err = apply_all(&before, &[&clash]).unwrap_err();
        assert!(
            err.ends_with("user ben@example.com already exists (another user holds that email)"),
            "{err}"
        );
        // The same through a link, and a create.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, snapshot_file::to_string(&before, Format::Yaml)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut t = FileTarget::new(path.clone());
        rt.block_on(async {
            assert!(t.apply(&clash).await.is_err());
            assert!(t.apply(&create("BEN@example.com")).await.is_err());
            t.finish().await.unwrap();
        });
        assert_eq!(
            snapshot_file::read(&path).unwrap(),
            before,
            "nothing applied, nothing written"
        );
    }

    #[test]
    fn entries_listed_twice_or_naming_no_user_follow_the_user_who_holds_the_email() {
        let before = Snapshot {
            users: vec![
                user("ana@example.com", Some("scim-ana"), true),
                user("ben@example.com", Some("scim-ben"), true),
            ],
            groups: vec![
                group(
                    "twice",
                    &["ana@example.com", "ben@example.com", "ANA@example.com"],
                ),
                group("ghost", &["Ben.New@example.com", "ana@example.com"]),
            ],
            ..Snapshot::default()
        };
        let new = "ben.new@example.com";
        let after = apply_all(
            &before,
            &[
                // Renamed to an email a group lists without a user: that entry is ben's now.
                &rename(new, "scim-ben", "ben@example.com"),
                &add("ghost", vec![member(new, Some("scim-ben"))]),
                // Listed twice, removed once: both entries go.
                &remove("twice", vec![member("ana@example.com", Some("scim-ana"))]),
            ],
        )
        .unwrap();
        assert_eq!(after.groups[0].members, [new]);
        assert_eq!(
            after.groups[1].members,
            ["Ben.New@example.com", "ana@example.com"]
        );
        let after = apply_all(
            &after,
            &[&remove("ghost", vec![member(new, Some("scim-ben"))])],
        )
        .unwrap();
        assert_eq!(after.groups[1].members, ["ana@example.com"]);
    }
}
