//! `type: file` as a target: a snapshot file standing in for Atlassian. `apply` changes an in-memory
//! copy action by action and `finish` rewrites the file atomically, so a failed run leaves it as it was.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{ActionError, Target, TargetError};
use crate::model::{key_of, Group, Snapshot, User};
use crate::plan::{Action, FieldChange, Member, UserFields};
use crate::snapshot_file::{self, Format};

/// A snapshot file used as the target.
#[derive(Debug)]
pub struct FileTarget {
    path: PathBuf,
    state: Mutex<Option<State>>,
}

#[derive(Debug)]
struct State {
    snap: Snapshot,
    /// User id (or key, for users without an id) and key -> index.
    refs: HashMap<String, usize>,
    dirty: bool,
    /// What `finish` will write, once `stage` prepared it.
    staged: Option<String>,
}

impl State {
    fn new(snap: Snapshot) -> State {
        let mut refs = HashMap::with_capacity(snap.users.len() * 2);
        for (i, u) in snap.users.iter().enumerate() {
            refs.insert(u.key(), i);
            if let Some(id) = &u.id {
                refs.insert(id.clone(), i);
            }
        }
        State {
            snap,
            refs,
            dirty: false,
            staged: None,
        }
    }

    fn user(&self, reference: &str) -> Result<usize, ActionError> {
        self.refs
            .get(reference)
            .or_else(|| self.refs.get(&key_of(reference)))
            .copied()
            .ok_or_else(|| ActionError(format!("user {reference} not found")))
    }

    fn member(&self, m: &Member) -> Result<usize, ActionError> {
        m.id.as_deref()
            .and_then(|id| self.refs.get(id).copied())
            .map_or_else(|| self.user(&m.key), Ok)
    }

    fn group(&mut self, name: &str) -> Result<&mut Group, ActionError> {
        self.snap
            .groups
            .iter_mut()
            .find(|g| g.name == name || g.id.as_deref() == Some(name))
            .ok_or_else(|| ActionError(format!("group {name} not found")))
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

    async fn snapshot(&mut self) -> Result<Snapshot, TargetError> {
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || snapshot_file::read(&path));
        let snap = read.await.expect("reading does not panic")?;
        *self.state.get_mut().expect("not poisoned") = None;
        Ok(snap)
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
                if st.refs.contains_key(key) {
                    return Err(ActionError(format!("user {key} already exists")));
                }
                let mut u = User::new(&user.email);
                set_fields(&mut u, user);
                st.refs.insert(key.clone(), st.snap.users.len());
                st.snap.users.push(u);
            }
            Action::LinkUser { key, user, .. } => {
                let i = st.user(key)?;
                let u = &mut st.snap.users[i];
                if u.in_directory {
                    return Err(ActionError(format!(
                        "user {key} is already in the directory"
                    )));
                }
                u.in_directory = true;
                u.active = true;
                set_fields(u, user);
            }
            Action::CreateGroup { group, .. } => {
                if st.snap.groups.iter().any(|g| g.name == *group) {
                    return Err(ActionError(format!("group {group} already exists")));
                }
                st.snap.groups.push(Group {
                    name: group.clone(),
                    id: None,
                    members: Vec::new(),
                });
            }
            Action::AddMembers {
                group,
                group_id,
                members,
                ..
            } => {
                let emails = members
                    .iter()
                    .map(|m| st.member(m).map(|i| st.snap.users[i].email.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                let g = st.group(group_id.as_deref().unwrap_or(group))?;
                let have: HashSet<String> = g.members.iter().map(|m| key_of(m)).collect();
                g.members
                    .extend(emails.into_iter().filter(|e| !have.contains(&key_of(e))));
            }
            Action::RemoveMembers {
                group_id, members, ..
            } => {
                let gone = members
                    .iter()
                    .map(|m| st.member(m).map(|i| st.snap.users[i].key()))
                    .collect::<Result<HashSet<_>, _>>()?;
                let g = st.group(group_id)?;
                g.members.retain(|m| !gone.contains(&key_of(m)));
            }
            Action::UpdateUser { id, changes, .. } => {
                let i = st.user(id)?;
                let old_key = st.snap.users[i].key();
                for c in changes {
                    set_change(&mut st.snap.users[i], c);
                }
                let new_key = st.snap.users[i].key();
                if new_key != old_key {
                    let email = st.snap.users[i].email.clone();
                    for g in &mut st.snap.groups {
                        for m in &mut g.members {
                            if key_of(m) == old_key {
                                m.clone_from(&email);
                            }
                        }
                    }
                    st.refs.remove(&old_key);
                    st.refs.insert(new_key, i);
                }
            }
            Action::ReactivateUser { id, .. } => {
                let i = st.user(id)?;
                st.snap.users[i].active = true;
            }
            Action::DeactivateUser { id, .. } => {
                let i = st.user(id)?;
                st.snap.users[i].active = false;
            }
            Action::RevokeApiTokens { key, .. } => {
                let i = st.user(key)?;
                st.snap.users[i].api_tokens = Some(0);
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
                let text = st
                    .staged
                    .take()
                    .unwrap_or_else(|| snapshot_file::to_string(&st.snap, Format::of(&self.path)));
                snapshot_file::write_atomic(&self.path, text.as_bytes())?;
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
        let text = snapshot_file::to_string(&st.snap, Format::of(&self.path));
        let sha = sha256(text.as_bytes());
        st.staged = Some(text);
        Ok(Some(sha))
    }

    fn holds(&self, sha: &str) -> bool {
        std::fs::read(&self.path).is_ok_and(|b| sha256(&b) == sha)
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    crate::config::hex_digest(&sha2::Sha256::digest(bytes))
}
