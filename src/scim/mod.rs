//! A SCIM 2.0 directory (RFC 7643/7644): the client shared by `type: scim` and `type: atlassian`.
//!
//! Reads users and groups page by page (members come with the group listing: no per-user calls in the full read; `snapshot_people` filters per person);
//! writes with POST (create), PatchOp PATCH (changed attributes only, `active`, membership batches),
//! never DELETE. A create that meets 409 adopts the existing object and brings its fields in line.
//!
//! Creates happen once. A POST is never re-sent blindly: after an answer that leaves open whether
//! it was applied (a 5xx, a timeout, a connection lost after sending, a 2xx with a cut body), the
//! object is looked up (`userName`, then `externalId`; a group by `displayName`) and only sent
//! again when the directory does not have it. A create whose object the run's snapshot already
//! holds (an interrupted apply resumed from its journal: the resumed run reads the target first)
//! resolves to it without a request.
//!
//! Members are removed with RFC 7644's filter form (§3.5.2.2), one operation per member:
//! `{"op":"remove","path":"members[value eq \"ID\"]"}`. The value-list form
//! (`"path":"members","value":[…]`) is Microsoft Entra's habit: a strict server refuses it (400) and
//! one that follows the RFC to the letter reads "remove `members`" as "remove every member". For
//! Atlassian the filter form is chosen on this evidence: Atlassian's own OpenAPI spec (teamapis
//! user-provisioning, PATCH /Groups/{id}) shows only an `add` example and defers to RFC 7644; Okta's
//! SCIM 2.0 client, one of the IdPs Atlassian documents for user provisioning, removes group members
//! with exactly this filter form (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20,
//! "Update a specific Group membership"). Not verified against a live Atlassian tenant.
//! `member_removal: value_list` keeps the other form for servers that need it. Either way, every removal is confirmed by re-reading the group: a group that lost members
//! idsync did not remove fails the action, naming them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use reqwest::{Method, StatusCode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::http::{
    paginate, wire, Auth, CreateError, Created, HttpClient, HttpError, HttpSettings,
};
use crate::model::{Group, LeftOut, People, Snapshot, User};
use crate::plan::ActionError;
use crate::plan::{Action, FieldChange, Member, UserFields};

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// (`WireUser` spells it out in its serde rename; a unit test keeps the two equal.)
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const ATLASSIAN_EXT: &str = "urn:scim:schemas:extension:atlassian-external:1.0";
pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// How a group PATCH removes members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRemoval {
    /// RFC 7644 §3.5.2.2: one `{"op":"remove","path":"members[value eq \"ID\"]"}` per member, many
    /// per PATCH. No server can read it as "remove every member".
    #[default]
    Filter,
    /// `{"op":"remove","path":"members","value":[{"value":"ID"},…]}`: Microsoft Entra's habit. Only
    /// for a server that refuses the RFC form: a server that follows the RFC to the letter reads it
    /// as "remove every member" (idsync then reports the loss and fails the action).
    ValueList,
}

/// Attributes of the core User schema idsync reads and writes at the top level.
const CORE_ATTRIBUTES: &[&str] = &[
    "title",
    "nickName",
    "timezone",
    "preferredLanguage",
    "locale",
];
/// Attributes of the enterprise extension.
const ENTERPRISE_ATTRIBUTES: &[&str] = &[
    "department",
    "organization",
    "division",
    "costCenter",
    "employeeNumber",
];

/// One SCIM directory and what idsync learnt about it while applying.
#[derive(Debug)]
pub struct ScimDirectory {
    pub http: HttpClient,
    page_size: usize,
    member_removal: MemberRemoval,
    /// Members of each group (by group id) that must stay after a removal: those the last snapshot
    /// read and those this apply added (member id -> how to name it).
    kept_members: Mutex<HashMap<String, HashMap<String, String>>>,
    /// Member ids being removed from each group (by group id) during this apply.
    removing: Mutex<HashMap<String, HashSet<String>>>,
    /// SCIM ids of users created or found during this apply, by key.
    users: Mutex<HashMap<String, String>>,
    /// SCIM ids of groups created or found during this apply, by name.
    groups: Mutex<HashMap<String, String>>,
    /// What the last snapshot saw: a create of something already there is not sent again.
    known: Mutex<Known>,
}

/// The users and groups of the last snapshot, by the attributes a create is looked up by.
#[derive(Debug, Default)]
struct Known {
    /// Lower-cased `userName` -> SCIM id.
    user_names: HashMap<String, String>,
    /// `externalId` (case-sensitive, RFC 7643) -> SCIM id.
    external_ids: HashMap<String, String>,
    /// Lower-cased `displayName` -> SCIM ids (several when the server allows it).
    group_names: HashMap<String, Vec<String>>,
}

impl Known {
    fn user(&self, user: &UserFields) -> Option<String> {
        let name = user.user_name.as_deref().unwrap_or(&user.email);
        self.user_names
            .get(&name.to_lowercase())
            .or_else(|| {
                user.external_id
                    .as_ref()
                    .and_then(|e| self.external_ids.get(e))
            })
            .cloned()
    }

    fn group(&self, name: &str) -> Result<Option<String>, ActionError> {
        match self
            .group_names
            .get(&name.to_lowercase())
            .map(Vec::as_slice)
        {
            None | Some([]) => Ok(None),
            Some([id]) => Ok(Some(id.clone())),
            Some(ids) => Err(ActionError(duplicate_group_message(name, ids))),
        }
    }
}

/// What to say when several groups share a name idsync has to use.
#[must_use]
pub(crate) fn duplicate_group_message(name: &str, ids: &[String]) -> String {
    format!(
        "{} groups are named {name:?} in the directory (ids {}); idsync cannot tell which one it manages: delete or rename all but one (in admin.atlassian.com, or in the SCIM server), then plan again",
        ids.len(),
        ids.join(", ")
    )
}

impl ScimDirectory {
    #[must_use]
    pub fn new(
        api: &str,
        base_url: &str,
        auth: Auth,
        page_size: usize,
        settings: &HttpSettings,
    ) -> ScimDirectory {
        ScimDirectory {
            http: HttpClient::new(api, base_url, auth, settings)
                .with_content_type("application/scim+json"),
            page_size: page_size.max(1),
            member_removal: MemberRemoval::Filter,
            kept_members: Mutex::new(HashMap::new()),
            removing: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            known: Mutex::new(Known::default()),
        }
    }

    /// How this directory removes group members.
    #[must_use]
    pub fn with_member_removal(mut self, form: MemberRemoval) -> ScimDirectory {
        self.member_removal = form;
        self
    }

    /// Every user and group; members come with the groups, as SCIM ids mapped back to emails.
    ///
    /// # Errors
    /// Any page that fails after retries: a partial directory is never returned.
    pub async fn snapshot(&self) -> Result<Snapshot, HttpError> {
        // Each page is read into the model as it comes, and its JSON freed.
        let (users, groups) = tokio::try_join!(
            paginate::scim_all_as(&self.http, "Users", self.page_size, read_user),
            paginate::scim_all_as(&self.http, "Groups", self.page_size, read_group)
        )?;
        Ok(self.assemble(users, groups))
    }

    /// Users and groups as the directory listed them, as the model; remembers what a later apply
    /// needs (ids by name, each group's members). Both the full and the targeted read end here.
    fn assemble(&self, users: Vec<ReadUser>, groups: Vec<WireGroup>) -> Snapshot {
        let mut skipped = Vec::new();
        let users: Vec<User> = users
            .into_iter()
            .filter_map(|u| {
                u.map_err(|id| {
                    let name = id.clone().unwrap_or_default();
                    skipped.push(LeftOut::user(id, &name, None, "no userName"));
                })
                .ok()
            })
            .collect();
        {
            let mut known = Known::default();
            for u in &users {
                if let Some(id) = &u.id {
                    known
                        .user_names
                        .insert(u.user_name().to_lowercase(), id.clone());
                    if let Some(e) = &u.external_id {
                        known.external_ids.insert(e.clone(), id.clone());
                    }
                }
            }
            for g in &groups {
                if let (Some(name), Some(id)) = (&g.display_name, &g.id) {
                    known
                        .group_names
                        .entry(name.to_lowercase())
                        .or_default()
                        .push(id.clone());
                }
            }
            *self.known.lock().expect("not poisoned") = known;
        }
        let email_of: HashMap<&str, &str> = users
            .iter()
            .filter_map(|u| u.id.as_deref().map(|id| (id, u.email.as_str())))
            .collect();
        let mut kept = HashMap::with_capacity(groups.len());
        for g in &groups {
            if let Some(id) = &g.id {
                let ids: HashSet<String> =
                    g.members.iter().filter_map(|m| m.value.clone()).collect();
                let members = ids
                    .into_iter()
                    .map(|m| {
                        let name = email_of
                            .get(m.as_str())
                            .map_or_else(|| m.clone(), |e| (*e).to_string());
                        (m, name)
                    })
                    .collect();
                kept.insert(id.clone(), members);
            }
        }
        *self.kept_members.lock().expect("not poisoned") = kept;
        self.removing.lock().expect("not poisoned").clear();
        let groups = groups
            .iter()
            .filter_map(|g| {
                let Some(name) = g.display_name.as_deref() else {
                    let id = g.id.clone();
                    let name = id.clone().unwrap_or_default();
                    skipped.push(LeftOut::group(id, &name, "no displayName"));
                    return None;
                };
                let mut members = Vec::new();
                for m in &g.members {
                    let value = m.value.as_deref();
                    match value.and_then(|id| email_of.get(id)) {
                        Some(e) => members.push((*e).to_string()),
                        None => {
                            let label = m.display.as_deref().or(value).unwrap_or("(no value)");
                            let reason = if m.kind.as_deref() == Some("Group") {
                                "a group, not a user (nested groups are not flattened)"
                            } else {
                                "not among the users the directory listed"
                            };
                            skipped.push(LeftOut::member(
                                name,
                                value.map(String::from),
                                label,
                                None,
                                reason,
                            ));
                        }
                    }
                }
                Some(Group {
                    name: name.to_string(),
                    id: g.id.clone(),
                    members,
                })
            })
            .collect();
        Snapshot {
            users,
            groups,
            verified_domains: None,
            skipped,
        }
    }

    /// What concerns these people only (a targeted read, for `sync-user` and `explain`): their
    /// users, found by `filter=userName eq "EMAIL"` per email and `filter=externalId eq "ID"` per
    /// IdP id (a renamed person is found as a rename), and every group, listed with
    /// `excludedAttributes=members`; a group's members are then these people as their `groups`
    /// attribute (RFC 7643 §4.1.2, read-only, which Atlassian returns) names it. A directory that
    /// sends users without a `groups` attribute at all cannot say whom a group holds this way: the
    /// groups are then listed with their members, as the full read does. The result is what
    /// [`Snapshot::restrict_to`] makes of the full read, for users whose `userName` is their email
    /// or who carry one of these ids as `externalId` (Atlassian filters on nothing else). An empty
    /// filter result is absence; a failed request fails the read.
    ///
    /// # Errors
    /// Any request that fails after retries.
    pub async fn snapshot_people(&self, people: &People) -> Result<Snapshot, HttpError> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        // (by userName, value): the attribute is chosen inside, so the stream owns what it holds.
        let lookups: Vec<(bool, String)> = people
            .emails
            .iter()
            .map(|e| (true, e.clone()))
            .chain(people.ids.iter().map(|i| (false, i.clone())))
            .collect();
        let found = stream::iter(lookups)
            .map(|(by_name, value)| async move {
                let attr = if by_name { "userName" } else { "externalId" };
                self.filtered("Users", attr, &value).await
            })
            .buffered(self.http.concurrency().max(1))
            .try_collect::<Vec<Vec<Value>>>();
        let groups = paginate::scim_all(
            &self.http,
            "Groups?excludedAttributes=members",
            self.page_size,
        );
        let (found, mut groups) = tokio::try_join!(found, groups)?;
        let mut seen = HashSet::new();
        let users: Vec<Value> = found
            .into_iter()
            .flatten()
            .filter(|u| id_of(u).is_none_or(|id| seen.insert(id)))
            .collect();
        if users.iter().any(|u| u.get("groups").is_none()) {
            // No `groups` attribute: the memberships must come from the groups themselves.
            groups = paginate::scim_all(&self.http, "Groups", self.page_size).await?;
        } else {
            let mut members: HashMap<String, Vec<Value>> = HashMap::new();
            for u in &users {
                let Some(uid) = id_of(u) else { continue };
                for g in u
                    .get("groups")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(gid) = g.get("value").and_then(Value::as_str) {
                        members
                            .entry(gid.to_string())
                            .or_default()
                            .push(json!({"value": uid, "type": "User"}));
                    }
                }
            }
            for g in &mut groups {
                let ms = id_of(g)
                    .and_then(|id| members.remove(&id))
                    .unwrap_or_default();
                if let Some(obj) = g.as_object_mut() {
                    obj.insert("members".into(), Value::Array(ms));
                }
            }
        }
        let users = users.into_iter().map(read_user).collect();
        let groups = groups.into_iter().map(read_group).collect();
        let mut snap = self.assemble(users, groups);
        // Members that are not these people are not this read's business (the full read names
        // them as left out; restricted, that record is dropped too).
        snap.skipped
            .retain(|l| l.kind != crate::model::LeftOutKind::Member);
        Ok(snap.restrict_to(people))
    }

    /// Every resource whose `attr` equals `value`, completely (a filter result is one short page,
    /// but it is checked against `totalResults` like any listing).
    async fn filtered(
        &self,
        resource: &str,
        attr: &str,
        value: &str,
    ) -> Result<Vec<Value>, HttpError> {
        let filter = format!(
            "{attr} eq \"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut page = self
            .http
            .get_json(
                resource,
                &[
                    ("filter", filter),
                    ("startIndex", "1".into()),
                    ("count", self.page_size.to_string()),
                ],
            )
            .await?;
        let total = page.get("totalResults").and_then(Value::as_u64);
        let found = match page.get_mut("Resources").map(Value::take) {
            Some(Value::Array(r)) => r,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(self.http.malformed(
                    resource,
                    "a SCIM ListResponse whose Resources is not a list",
                ))
            }
        };
        if let Some(t) = total.filter(|t| *t as usize != found.len()) {
            return Err(self.http.malformed(
                resource,
                &format!(
                    "the filter {attr} eq {value:?} announced {t} result(s) but returned {}: the answer is incomplete",
                    found.len()
                ),
            ));
        }
        Ok(found)
    }

    /// Applies one action.
    ///
    /// # Errors
    /// The directory refused it, or did not answer after retries.
    /// Requests [`ScimDirectory::apply`] sends for an action, for the plan's cost estimate.
    #[must_use]
    pub(crate) fn requests_for(action: &Action) -> u64 {
        match action {
            // The PATCH, then the re-read that confirms no other member was lost.
            Action::RemoveMembers { .. } => 2,
            _ => 1,
        }
    }

    pub async fn apply(&self, action: &Action) -> Result<(), ActionError> {
        match action {
            Action::CreateUser { key, user, .. } | Action::LinkUser { key, user, .. } => {
                let id = self.create_user(user).await?;
                self.users
                    .lock()
                    .expect("not poisoned")
                    .insert(key.clone(), id);
            }
            Action::UpdateUser { id, changes, .. } => {
                let ops: Vec<Value> = changes.iter().map(change_op).collect();
                self.patch(&format!("Users/{}", seg(id)), ops).await?;
            }
            Action::ReactivateUser { id, .. } => {
                self.patch(
                    &format!("Users/{}", seg(id)),
                    vec![json!({"op": "replace", "path": "active", "value": true})],
                )
                .await?;
            }
            Action::DeactivateUser { id, .. } => {
                self.patch(
                    &format!("Users/{}", seg(id)),
                    vec![json!({"op": "replace", "path": "active", "value": false})],
                )
                .await?;
            }
            Action::CreateGroup { group, .. } => {
                let id = self.create_group(group).await?;
                self.groups
                    .lock()
                    .expect("not poisoned")
                    .insert(group.clone(), id);
            }
            Action::AddMembers {
                group,
                group_id,
                members,
                ..
            } => {
                let gid = self.group_id(group, group_id.as_deref()).await?;
                let values = self.member_values(members).await?;
                self.patch(
                    &format!("Groups/{}", seg(&gid)),
                    vec![json!({"op": "add", "path": "members", "value": values})],
                )
                .await?;
                let mut kept = self.kept_members.lock().expect("not poisoned");
                let kept = kept.entry(gid).or_default();
                for (m, v) in members.iter().zip(&values) {
                    if let Some(id) = v.get("value").and_then(Value::as_str) {
                        kept.insert(id.to_string(), m.key.clone());
                    }
                }
            }
            Action::RemoveMembers {
                group,
                group_id,
                members,
                ..
            } => {
                let gid = self.group_id(group, Some(group_id)).await?;
                let values = self.member_values(members).await?;
                let ids: Vec<String> = values
                    .iter()
                    .filter_map(|v| v.get("value").and_then(Value::as_str).map(String::from))
                    .collect();
                self.removing
                    .lock()
                    .expect("not poisoned")
                    .entry(gid.clone())
                    .or_default()
                    .extend(ids.iter().cloned());
                let ops = removal_ops(self.member_removal, &ids);
                self.patch(&format!("Groups/{}", seg(&gid)), ops).await?;
                self.confirm_removal(group, &gid, members, &ids).await?;
            }
            Action::RevokeApiTokens { key, .. } => {
                return Err(ActionError(format!(
                    "{key}: a SCIM directory cannot revoke API tokens (only an Atlassian target with `admin:` can)"
                )));
            }
        }
        Ok(())
    }

    /// Re-reads a group after a removal: the removed members must be gone, and every member the
    /// snapshot saw must still be there unless this apply removed it. A server that read the removal
    /// as "remove every member" is caught here, naming who was lost.
    async fn confirm_removal(
        &self,
        group: &str,
        gid: &str,
        members: &[Member],
        ids: &[String],
    ) -> Result<(), ActionError> {
        let now = member_ids(
            &self
                .http
                .get_json(&format!("Groups/{}", seg(gid)), &[])
                .await?,
        );
        let key_of = |id: &str| {
            members
                .iter()
                .zip(ids)
                .find(|(_, i)| i.as_str() == id)
                .map_or_else(|| id.to_string(), |(m, _)| m.key.clone())
        };
        let left: Vec<String> = ids
            .iter()
            .filter(|i| now.contains(*i))
            .map(|i| key_of(i))
            .collect();
        if !left.is_empty() {
            return Err(ActionError(format!(
                "group {group}: the server accepted the removal, but {} of the {} member(s) removed are still members (e.g. {}); check member_removal for this server",
                left.len(),
                ids.len(),
                left[0]
            )));
        }
        let lost: Vec<String> = {
            let kept = self.kept_members.lock().expect("not poisoned");
            let removing = self.removing.lock().expect("not poisoned");
            let mut lost: Vec<String> = kept
                .get(gid)
                .map(|before| {
                    before
                        .iter()
                        .filter(|(m, _)| !now.contains(*m))
                        .filter(|(m, _)| !removing.get(gid).is_some_and(|r| r.contains(*m)))
                        .map(|(_, name)| name.clone())
                        .collect()
                })
                .unwrap_or_default();
            lost.sort();
            lost
        };
        if !lost.is_empty() {
            return Err(ActionError(format!(
                "group {group} lost {} member(s) idsync did not remove ({}{}): the server may have read the removal as \"remove every member\"; it now has {} member(s). Restore them (the next plan adds back those idsync derives) and set member_removal for this server",
                lost.len(),
                lost.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if lost.len() > 5 { ", …" } else { "" },
                now.len()
            )));
        }
        Ok(())
    }

    /// POST /Users, once. A create that may have happened (a 5xx, a timeout, a connection lost
    /// after sending, a 2xx with a cut body) is looked up by `userName`, then `externalId`, before
    /// it is sent again; a 409 resolves to the user that exists. A user the snapshot of this run
    /// already holds (a create an interrupted run had started, resumed from its journal) is not
    /// sent at all.
    /// A 409 (an account made elsewhere) adopts the existing user and brings its fields in line
    /// in the same apply.
    async fn create_user(&self, user: &UserFields) -> Result<String, ActionError> {
        let known = self.known.lock().expect("not poisoned").user(user);
        if let Some(id) = known {
            // Made by an interrupted run of this plan, or by someone else under this userName:
            // either way, brought in line rather than created again.
            self.adopt(&id, user).await?;
            return Ok(id);
        }
        let what = format!("creating user {}", user.email);
        let (id, existed) = self
            .create_once("Users", &user_body(user), &what, || self.find_user(user))
            .await?;
        if existed {
            self.adopt(&id, user).await?;
        }
        Ok(id)
    }

    /// Brings an existing user's fields (and `active`) in line with what the create asked for.
    async fn adopt(&self, id: &str, want: &UserFields) -> Result<(), ActionError> {
        let path = format!("Users/{}", seg(id));
        let have = self.http.get_json(&path, &[]).await?;
        let Some(have) = user_from_scim(&have) else {
            return Ok(());
        };
        let mut ops: Vec<Value> = adoption_changes(want, &have)
            .iter()
            .map(change_op)
            .collect();
        if !have.active {
            ops.push(json!({"op": "replace", "path": "active", "value": true}));
        }
        if !ops.is_empty() {
            self.patch(&path, ops).await?;
        }
        Ok(())
    }

    async fn create_group(&self, name: &str) -> Result<String, ActionError> {
        if let Some(id) = self.known.lock().expect("not poisoned").group(name)? {
            return Ok(id);
        }
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": name});
        let what = format!("creating group {name}");
        self.create_once("Groups", &body, &what, || self.find_group(name))
            .await
            .map(|(id, _)| id)
    }

    /// POSTs `body` to `resource` without ever sending it twice blindly: after an answer that
    /// leaves open whether the object was made, `find` looks for it first.
    async fn create_once<F, Fut>(
        &self,
        resource: &str,
        body: &Value,
        what: &str,
        find: F,
    ) -> Result<(String, bool), ActionError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>, ActionError>>,
    {
        let created = self
            .http
            .create_once(
                Method::POST,
                resource,
                Some(body),
                |reply| {
                    (reply.status.is_success()
                        && reply.json("SCIM").ok().as_ref().and_then(id_of).is_none())
                    .then(|| format!("HTTP {} without a readable id", reply.status))
                },
                &find,
            )
            .await;
        match created {
            Ok(Created::Found(id)) => Ok((id, false)),
            Ok(Created::Answered(reply)) if reply.status.is_success() => {
                match reply.json("SCIM").ok().as_ref().and_then(id_of) {
                    Some(id) => Ok((id, false)),
                    None => Err(ActionError(format!(
                        "{what}: HTTP {} without a readable id",
                        reply.status
                    ))),
                }
            }
            Ok(Created::Answered(reply)) if reply.status == StatusCode::CONFLICT => {
                // Already there: made by an earlier attempt, or by someone else.
                match find().await? {
                    Some(id) => Ok((id, true)),
                    None => Err(ActionError(format!(
                        "{what}: {}",
                        self.http.status_error(&reply)
                    ))),
                }
            }
            Ok(Created::Answered(reply)) => Err(ActionError(format!(
                "{what}: {}",
                self.http.status_error(&reply)
            ))),
            Err(CreateError::Http(e)) => Err(ActionError(format!("{what}: {e}"))),
            Err(CreateError::Lookup { doubt, error }) => Err(ActionError(format!(
                "{what}: no certain answer ({doubt}), and looking it up to see whether it was made failed: {error}; plan and apply again"
            ))),
            Err(CreateError::Exhausted { attempts, doubt }) => Err(ActionError(format!(
                "{what}: no certain answer after {attempts} attempt(s) (last: {doubt}), and the directory does not have it; plan and apply again"
            ))),
        }
    }

    /// The user a create of `user` made, if the directory has it: by `userName`, then by
    /// `externalId`.
    async fn find_user(&self, user: &UserFields) -> Result<Option<String>, ActionError> {
        let name = user.user_name.as_deref().unwrap_or(&user.email);
        let by_name = self.find_all("Users", "userName", name).await?;
        if let Some(id) = by_name.into_iter().next() {
            return Ok(Some(id));
        }
        // An account made elsewhere may carry the email as its userName.
        if name != user.email {
            let by_email = self.find_all("Users", "userName", &user.email).await?;
            if let Some(id) = by_email.into_iter().next() {
                return Ok(Some(id));
            }
        }
        match &user.external_id {
            Some(ext) => Ok(self
                .find_all("Users", "externalId", ext)
                .await?
                .into_iter()
                .next()),
            None => Ok(None),
        }
    }

    /// The group named `name`, if the directory has exactly one; an error naming the ids when it
    /// has several (which one idsync made cannot be told).
    async fn find_group(&self, name: &str) -> Result<Option<String>, ActionError> {
        let ids = self.find_all("Groups", "displayName", name).await?;
        match ids.len() {
            0 => Ok(None),
            1 => Ok(ids.into_iter().next()),
            _ => Err(ActionError(duplicate_group_message(name, &ids))),
        }
    }

    /// The ids of the resources whose `attr` equals `value` (`filter=attr eq "value"`).
    async fn find_all(
        &self,
        resource: &str,
        attr: &str,
        value: &str,
    ) -> Result<Vec<String>, HttpError> {
        let filter = format!(
            "{attr} eq \"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let page = self.http.get_json(resource, &[("filter", filter)]).await?;
        Ok(wire::decode::<paginate::ListResponse>(&page)
            .resources
            .iter()
            .filter_map(id_of)
            .collect())
    }

    /// The id of the first resource whose `attr` equals `value`.
    async fn find(
        &self,
        resource: &str,
        attr: &str,
        value: &str,
    ) -> Result<Option<String>, HttpError> {
        Ok(self
            .find_all(resource, attr, value)
            .await?
            .into_iter()
            .next())
    }

    async fn patch(&self, path: &str, ops: Vec<Value>) -> Result<(), ActionError> {
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        // 200 with the resource and 204 without are both success.
        self.http
            .success(Method::PATCH, path, &[], Some(&body))
            .await?;
        Ok(())
    }

    async fn group_id(&self, name: &str, planned: Option<&str>) -> Result<String, ActionError> {
        if let Some(id) = planned {
            return Ok(id.to_string());
        }
        if let Some(id) = self.groups.lock().expect("not poisoned").get(name) {
            return Ok(id.clone());
        }
        self.find_group(name)
            .await?
            .ok_or_else(|| ActionError(format!("group {name} not found")))
    }

    /// SCIM ids of members: as planned, or learnt when this run created them, or looked up.
    async fn member_values(&self, members: &[Member]) -> Result<Vec<Value>, ActionError> {
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            let known = m.id.clone().or_else(|| {
                self.users
                    .lock()
                    .expect("not poisoned")
                    .get(&m.key)
                    .cloned()
            });
            let id = match known {
                Some(id) => id,
                None => self
                    .find("Users", "userName", &m.key)
                    .await?
                    .ok_or_else(|| {
                        ActionError(format!("user {} not found in the directory", m.key))
                    })?,
            };
            out.push(json!({"value": id}));
        }
        Ok(out)
    }
}

/// The member ids a SCIM group lists.
fn member_ids(g: &Value) -> HashSet<String> {
    wire::decode::<WireGroup>(g)
        .members
        .into_iter()
        .filter_map(|m| m.value)
        .collect()
}

/// The PatchOp operations that remove these members. Never an operation that a server could read
/// as "remove every member": the filter form names one member per operation, and the value-list
/// form is only built with at least one value.
fn removal_ops(form: MemberRemoval, ids: &[String]) -> Vec<Value> {
    match form {
        MemberRemoval::Filter => ids
            .iter()
            .map(|id| {
                json!({
                    "op": "remove",
                    "path": format!("members[value eq \"{}\"]", id.replace('\\', "\\\\").replace('"', "\\\"")),
                })
            })
            .collect(),
        MemberRemoval::ValueList if ids.is_empty() => Vec::new(),
        MemberRemoval::ValueList => {
            let values: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
            vec![json!({"op": "remove", "path": "members", "value": values})]
        }
    }
}

/// The fields an adopted user must change to be what the create asked for.
fn adoption_changes(want: &UserFields, have: &User) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut push = |field: &str, from: Option<String>, to: &str| {
        out.push(FieldChange {
            field: field.into(),
            from,
            to: to.to_string(),
            reason: "adopted on create (409)".into(),
            reason_code: crate::plan::ReasonCode::AdoptedOnCreate,
        });
    };
    if !want.email.eq_ignore_ascii_case(&have.email) {
        push("email", Some(have.email.clone()), &want.email);
    }
    if let Some(w) = &want.user_name {
        if !w.eq_ignore_ascii_case(have.user_name()) {
            push("userName", Some(have.user_name().to_string()), w);
        }
    }
    for (field, w, h) in [
        ("externalId", &want.external_id, &have.external_id),
        ("givenName", &want.given_name, &have.given_name),
        ("familyName", &want.family_name, &have.family_name),
        ("displayName", &want.display_name, &have.display_name),
    ] {
        if let Some(w) = w {
            if h.as_deref() != Some(w.as_str()) {
                push(field, h.clone(), w);
            }
        }
    }
    for (k, w) in &want.attributes {
        if have.attributes.get(k) != Some(w) {
            push(k, have.attributes.get(k).cloned(), w);
        }
    }
    out
}

/// A path segment, percent-encoded.
fn seg(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn id_of(v: &Value) -> Option<String> {
    wire::decode::<WireUser>(v).id
}

/// A user resource as read: the model, or the id of one without a userName (to name it as left
/// out).
type ReadUser = Result<User, Option<String>>;

fn read_user(v: Value) -> ReadUser {
    user_from_scim(&v).ok_or_else(|| id_of(&v))
}

fn read_group(v: Value) -> WireGroup {
    wire::decode_owned(v)
}

/// A SCIM user as the normalized model.
///
/// RFC 7643 §2.5: an unassigned attribute, `null` and (multi-valued) an empty array are the same
/// state, and a server may send any of them. So a `null` is read exactly like a missing attribute,
/// at every level: `name`, `emails`, an email's `value` or `primary`, the enterprise extension and
/// its attributes. A blank string is kept as it is: it is what the directory holds (and what a
/// create may have written), so taking it for absent would plan the same change on every run.
/// Defaults: `active` missing or `null` is active (a server that does not say has not
/// deactivated anyone); `primary` missing or `null` is not primary.
fn user_from_scim(v: &Value) -> Option<User> {
    let w: WireUser = wire::decode(v);
    let user_name = w.user_name?;
    // The primary email, else the first with a value, else the userName: an email whose value is
    // null is no email at all, primary or not.
    let emails: Vec<&WireEmail> = w.emails.iter().filter(|e| e.value.is_some()).collect();
    let email = emails
        .iter()
        .find(|e| e.primary)
        .or_else(|| emails.first())
        .and_then(|e| e.value.clone())
        .unwrap_or_else(|| user_name.clone());
    let mut u = User::new(&email);
    u.user_name = Some(user_name);
    u.id = w.id;
    u.external_id = w.external_id;
    u.given_name = w.name.given_name;
    u.family_name = w.name.family_name;
    u.display_name = w.display_name;
    u.active = w.active.unwrap_or(true);
    u.account_id = w.atlassian.atlassian_account_id;
    // The other attributes are read where they are, not copied out of the record first.
    let text = |m: Option<&Value>, a: &str| {
        m.and_then(|m| m.get(a))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let enterprise = v.get(ENTERPRISE).filter(|e| e.is_object());
    for a in CORE_ATTRIBUTES {
        if let Some(val) = text(Some(v), a) {
            u.attributes.insert((*a).to_string(), val);
        }
    }
    for a in ENTERPRISE_ATTRIBUTES {
        // The extension's value, else a top-level one (some servers flatten it): a `null` in the
        // extension is no value, so the top level still counts.
        if let Some(val) = text(enterprise, a).or_else(|| text(Some(v), a)) {
            u.attributes.insert((*a).to_string(), val);
        }
    }
    Some(u)
}

/// A SCIM User as a server sends it. Strings are kept as sent, blank ones too (see
/// [`user_from_scim`]); `null`, absent and odd types are absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireUser {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    user_name: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    external_id: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    display_name: Option<String>,
    #[serde(deserialize_with = "wire::object")]
    name: WireName,
    #[serde(deserialize_with = "wire::list")]
    emails: Vec<WireEmail>,
    #[serde(deserialize_with = "wire::opt_flag")]
    active: Option<bool>,
    #[serde(
        rename = "urn:scim:schemas:extension:atlassian-external:1.0",
        deserialize_with = "wire::object"
    )]
    atlassian: WireAtlassian,
    // The enterprise extension and the other attributes (`title`, `locale`, flattened enterprise
    // ones …) are read from the record itself by `user_from_scim`.
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireName {
    #[serde(deserialize_with = "wire::string")]
    given_name: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    family_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireEmail {
    #[serde(deserialize_with = "wire::string")]
    value: Option<String>,
    #[serde(deserialize_with = "wire::flag")]
    primary: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireAtlassian {
    #[serde(deserialize_with = "wire::string")]
    atlassian_account_id: Option<String>,
}

/// A SCIM Group as a server sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireGroup {
    #[serde(deserialize_with = "wire::string")]
    id: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    display_name: Option<String>,
    #[serde(deserialize_with = "wire::list")]
    members: Vec<WireMember>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireMember {
    #[serde(deserialize_with = "wire::string")]
    value: Option<String>,
    #[serde(deserialize_with = "wire::string")]
    display: Option<String>,
    #[serde(rename = "type", deserialize_with = "wire::string")]
    kind: Option<String>,
}

/// The body of a POST /Users.
fn user_body(f: &UserFields) -> Value {
    let mut v = Map::new();
    v.insert("schemas".into(), json!([USER_SCHEMA, ENTERPRISE]));
    v.insert(
        "userName".into(),
        json!(f.user_name.as_deref().unwrap_or(&f.email)),
    );
    v.insert(
        "emails".into(),
        json!([{"value": f.email, "type": "work", "primary": true}]),
    );
    v.insert("active".into(), json!(true));
    let mut name = Map::new();
    if let Some(g) = &f.given_name {
        name.insert("givenName".into(), json!(g));
    }
    if let Some(fam) = &f.family_name {
        name.insert("familyName".into(), json!(fam));
    }
    if !name.is_empty() {
        v.insert("name".into(), Value::Object(name));
    }
    if let Some(d) = &f.display_name {
        v.insert("displayName".into(), json!(d));
    }
    if let Some(e) = &f.external_id {
        v.insert("externalId".into(), json!(e));
    }
    let mut enterprise = Map::new();
    for (k, val) in &f.attributes {
        if ENTERPRISE_ATTRIBUTES.contains(&k.as_str()) {
            enterprise.insert(k.clone(), json!(val));
        } else {
            v.insert(k.clone(), json!(val));
        }
    }
    if !enterprise.is_empty() {
        v.insert(ENTERPRISE.into(), Value::Object(enterprise));
    }
    Value::Object(v)
}

/// One changed field as a PatchOp operation.
fn change_op(c: &FieldChange) -> Value {
    let path = match c.field.as_str() {
        "email" => {
            return json!({"op": "replace", "path": "emails", "value": [{"value": c.to, "type": "work", "primary": true}]});
        }
        "givenName" => "name.givenName".to_string(),
        "familyName" => "name.familyName".to_string(),
        f if ENTERPRISE_ATTRIBUTES.contains(&f) => format!("{ENTERPRISE}:{f}"),
        f => f.to_string(),
    };
    json!({"op": "replace", "path": path, "value": c.to})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_round_trip_through_scim_json() {
        let mut f = UserFields {
            email: "ana@example.com".into(),
            user_name: Some("ana@example.com".into()),
            external_id: Some("00u1".into()),
            given_name: Some("Ana".into()),
            family_name: Some("Silva".into()),
            display_name: Some("Ana Silva".into()),
            ..UserFields::default()
        };
        f.attributes.insert("title".into(), "Engineer".into());
        f.attributes.insert("department".into(), "R&D".into());
        let mut v = user_body(&f);
        v["id"] = json!("s1");
        let u = user_from_scim(&v).unwrap();
        assert_eq!(u.key(), "ana@example.com");
        assert_eq!(
            (u.given_name.as_deref(), u.family_name.as_deref()),
            (Some("Ana"), Some("Silva"))
        );
        assert_eq!(
            u.attributes.get("department").map(String::as_str),
            Some("R&D")
        );
        assert_eq!(v[ENTERPRISE]["department"], "R&D");
        assert_eq!(v["title"], "Engineer");
    }

    #[test]
    fn nulls_read_as_missing_at_every_level() {
        let bare = json!({"id": "s1", "userName": "ana@example.com"});
        let nulls = json!({
            "id": "s1", "userName": "ana@example.com", "externalId": null, "displayName": null,
            "name": null, "title": null, "active": null, "emails": null, "groups": null,
            ENTERPRISE: null, ATLASSIAN_EXT: null,
        });
        let inner = json!({
            "id": "s1", "userName": "ana@example.com",
            "name": {"givenName": null, "familyName": null, "formatted": null},
            "emails": [{"value": null, "primary": true}, {"value": null}],
            ENTERPRISE: {"department": null, "organization": null},
            ATLASSIAN_EXT: {"atlassianAccountId": null},
        });
        let want = user_from_scim(&bare).unwrap();
        assert!(want.active, "no `active` is active");
        for v in [&nulls, &inner] {
            let u = user_from_scim(v).unwrap();
            assert_eq!(u, want, "{v}");
        }
        // The extensions are read under their URNs.
        let v = json!({"userName": "ana", ATLASSIAN_EXT: {"atlassianAccountId": "acc-1"},
            ENTERPRISE: {"department": "Ops"}, "title": "Eng", "department": "R&D"});
        let u = user_from_scim(&v).unwrap();
        assert_eq!(u.account_id.as_deref(), Some("acc-1"));
        assert_eq!(
            u.attributes.get("department").map(String::as_str),
            Some("Ops")
        );
        assert_eq!(u.attributes.get("title").map(String::as_str), Some("Eng"));
        // A primary email without a value gives way to the next email that has one.
        let v = json!({"userName": "ana", "emails": [
            {"value": null, "primary": true}, {"value": "Ana@Example.com", "primary": null}]});
        assert_eq!(user_from_scim(&v).unwrap().email, "Ana@Example.com");
        // A null in the enterprise extension does not hide a top-level value.
        let v = json!({"userName": "ana", ENTERPRISE: {"department": null}, "department": "R&D"});
        assert_eq!(
            user_from_scim(&v)
                .unwrap()
                .attributes
                .get("department")
                .map(String::as_str),
            Some("R&D")
        );
        // A blank string is what the directory holds: kept, never taken for absent.
        let v = json!({"userName": "ana", "displayName": ""});
        assert_eq!(
            user_from_scim(&v).unwrap().display_name.as_deref(),
            Some("")
        );
        assert!(member_ids(&json!({"id": "g1", "members": null})).is_empty());
    }

    #[test]
    fn removals_name_each_member_and_never_remove_all() {
        let ids = vec!["u1".to_string(), "we\"ird".to_string()];
        let ops = removal_ops(MemberRemoval::Filter, &ids);
        assert_eq!(
            ops,
            vec![
                json!({"op": "remove", "path": "members[value eq \"u1\"]"}),
                json!({"op": "remove", "path": "members[value eq \"we\\\"ird\"]"}),
            ]
        );
        let list = removal_ops(MemberRemoval::ValueList, &ids);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["value"][1]["value"], "we\"ird");
        // Nothing to remove is no operation at all: never a bare `remove members`.
        assert!(removal_ops(MemberRemoval::Filter, &[]).is_empty());
        assert!(removal_ops(MemberRemoval::ValueList, &[]).is_empty());
        for op in ops.iter().chain(&list) {
            assert!(
                op["path"] != "members" || op["value"].as_array().is_some_and(|v| !v.is_empty())
            );
        }
    }

    #[test]
    fn an_adopted_user_gets_only_the_fields_that_differ() {
        let mut have = User::new("carol.jones@example.com");
        have.user_name = Some("carol@example.com".into());
        have.display_name = Some("C. Jones".into());
        have.given_name = Some("Carol".into());
        let want = UserFields {
            email: "carol@example.com".into(),
            user_name: Some("Carol@Example.com".into()),
            external_id: Some("00u3".into()),
            given_name: Some("Carol".into()),
            display_name: Some("Carol Jones".into()),
            ..UserFields::default()
        };
        let fields: Vec<String> = adoption_changes(&want, &have)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, vec!["email", "externalId", "displayName"]);
    }

    #[test]
    fn changes_become_patch_operations() {
        let c = |field: &str| FieldChange {
            field: field.into(),
            from: None,
            to: "x".into(),
            reason: String::new(),
            reason_code: crate::plan::ReasonCode::Unknown,
        };
        assert_eq!(change_op(&c("givenName"))["path"], "name.givenName");
        assert_eq!(
            change_op(&c("department"))["path"],
            format!("{ENTERPRISE}:department")
        );
        assert_eq!(change_op(&c("email"))["value"][0]["primary"], true);
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }
}
