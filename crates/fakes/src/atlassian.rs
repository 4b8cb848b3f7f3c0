//! A stateful fake of Atlassian Cloud: the SCIM user provisioning API of one identity-provider
//! directory, the organization admin API (users, admin roles) and user API tokens.
//!
//! One [`State`] backs every API, so the org accounts stay in step with the SCIM directory: each
//! SCIM user owns an org account (inactive when the user is deactivated), and org accounts with no
//! SCIM user (just-in-time accounts) are linked to the SCIM user created later with their email.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{Path, Query, State as AxumState},
    http::{header, HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Json, Router,
};
use serde_json::{json, Map, Value};

use crate::{
    bind,
    directory::{KeyIndex, MemberEdit, Memberships, Record, Table},
    lock, serve, write_json_array, write_json_str, written, FaultLayer, Faults, ObjectWriter,
    RequestLog, Server,
};

const SCHEMA_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const SCHEMA_ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SCHEMA_ATLASSIAN: &str = "urn:scim:schemas:extension:atlassian-external:1.0";
const SCHEMA_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const SCHEMA_LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SCHEMA_ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const SCIM_JSON: &str = "application/scim+json";

/// The clock of the fake starts at 2026-01-01T00:00:00Z and ticks one second per change, so
/// timestamps are deterministic.
const EPOCH: i64 = 1_767_225_600;

/// How the fake behaves. `latency` is read once, at start; the rest can be changed while running
/// through `fake.state().config`.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub scim_token: String,
    pub org_token: String,
    pub org_id: String,
    pub directory_id: String,
    /// Domains a SCIM user's primary email may be in (compared case-insensitively).
    pub verified_domains: Vec<String>,
    /// The most resources one SCIM list page holds, whatever `count` asks for.
    pub page_cap: usize,
    /// Users per page of the org users API (and the default page of the admin search).
    pub org_page_size: usize,
    /// Answer a user PATCH with 204 No Content instead of 200 and the user.
    pub patch_returns_204: bool,
    /// The most member values one group PATCH operation may carry.
    pub max_members_per_patch: usize,
    /// A delay applied to every request.
    pub latency: Duration,
    /// What the v2 user search does with a role id it does not know (undocumented, so both).
    pub unknown_role_ids: UnknownRoleIds,
    /// What a group PATCH does with `{"op":"remove","path":"members","value":[…]}`.
    pub value_list_removal: ValueListRemoval,
    /// The org API key was created with scopes: the user-management API (API tokens) answers 403,
    /// as Atlassian does for scoped keys.
    pub scoped_org_key: bool,
    /// The organization's other identity-provider directories: (id, name).
    pub other_directories: Vec<(String, String)>,
    /// The API-token inventory (API Access API) answers; false: 403, as for a key or an
    /// organization without it.
    pub token_inventory: bool,
    /// The org API key lacks the read scopes: every organization admin API call answers 403.
    pub org_reads_forbidden: bool,
    /// Let several groups share a `displayName` (many SCIM servers do; Atlassian answers 409).
    pub allow_duplicate_group_names: bool,
    /// Send every unset optional field as an explicit `null` instead of leaving it out: SCIM
    /// users' `externalId`, `displayName`, `title`…, `name` (or its unset parts), no `emails`, an
    /// email's `type`, an empty `groups`, the enterprise extension (or its unset attributes); an empty
    /// group's `members`; an empty page's `Resources`; an org account's `last_active`; the last
    /// page's `links.next`. RFC 7643 §2.5 makes `null` and unassigned the same state, and lets a
    /// server omit unassigned attributes; Atlassian's documented responses omit them, as the
    /// fake does by default.
    pub explicit_nulls: bool,
}

/// The platform role ids Atlassian documents (the `platformRole` model).
pub const KNOWN_ROLE_IDS: &[&str] = &[
    "atlassian/org-admin",
    "atlassian/site-admin",
    "atlassian/admin",
    "atlassian/user",
    "atlassian/user-access-admin",
    "atlassian/guest",
    "atlassian/basic",
];

/// How the search treats an unknown role id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownRoleIds {
    /// It matches nobody.
    Ignore,
    /// 400 with an `errors` body.
    Refuse,
}

/// How a group PATCH treats the value-list removal form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueListRemoval {
    /// Removes the listed members (Entra's reading).
    Honour,
    /// 400 invalidPath (a strict server).
    Refuse,
    /// RFC 7644 to the letter: `remove` of `members` with no filter removes every member.
    RemoveAll,
}

impl Default for FakeConfig {
    fn default() -> FakeConfig {
        FakeConfig {
            scim_token: "scim-secret-token".into(),
            org_token: "org-secret-token".into(),
            org_id: "org-1".into(),
            directory_id: "dir-1".into(),
            verified_domains: vec!["example.com".into()],
            page_cap: 100,
            org_page_size: 50,
            patch_returns_204: false,
            max_members_per_patch: 10_000,
            latency: Duration::ZERO,
            unknown_role_ids: UnknownRoleIds::Ignore,
            value_list_removal: ValueListRemoval::Honour,
            scoped_org_key: false,
            other_directories: Vec::new(),
            token_inventory: true,
            org_reads_forbidden: false,
            allow_duplicate_group_names: false,
            explicit_nulls: false,
        }
    }
}

/// A SCIM user to seed; `SeedUser::new(email)` fills the rest and the builder methods adjust it.
#[derive(Clone, Debug, Default)]
pub struct SeedUser {
    pub email: String,
    /// Defaults to the email.
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    pub title: Option<String>,
    pub department: Option<String>,
    /// The org account's `last_active` date, e.g. "2026-10-01".
    pub last_active: Option<String>,
}

impl SeedUser {
    /// An active user named after the email: `alice.doe@example.com` is Alice Doe.
    pub fn new(email: &str) -> SeedUser {
        let (given_name, family) = crate::names_from_email(email);
        SeedUser {
            email: email.to_owned(),
            given_name,
            family_name: family,
            active: true,
            ..SeedUser::default()
        }
    }

    pub fn user_name(mut self, user_name: &str) -> SeedUser {
        self.user_name = Some(user_name.to_owned());
        self
    }

    pub fn external_id(mut self, external_id: &str) -> SeedUser {
        self.external_id = Some(external_id.to_owned());
        self
    }

    pub fn name(mut self, given_name: &str, family_name: &str) -> SeedUser {
        self.given_name = Some(given_name.to_owned());
        self.family_name = Some(family_name.to_owned());
        self
    }

    pub fn display_name(mut self, display_name: &str) -> SeedUser {
        self.display_name = Some(display_name.to_owned());
        self
    }

    pub fn inactive(mut self) -> SeedUser {
        self.active = false;
        self
    }

    pub fn title(mut self, title: &str) -> SeedUser {
        self.title = Some(title.to_owned());
        self
    }

    pub fn department(mut self, department: &str) -> SeedUser {
        self.department = Some(department.to_owned());
        self
    }

    pub fn last_active(mut self, date: &str) -> SeedUser {
        self.last_active = Some(date.to_owned());
        self
    }
}

/// An email of a SCIM user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub value: String,
    pub kind: Option<String>,
    pub primary: bool,
}

/// A user of the SCIM directory.
#[derive(Clone, Debug, Default)]
pub struct ScimUser {
    pub id: String,
    pub account_id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub emails: Vec<Email>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub organization: Option<String>,
    pub timezone: Option<String>,
    pub preferred_language: Option<String>,
    pub nick_name: Option<String>,
    pub locale: Option<String>,
    pub active: bool,
    pub created: String,
    pub last_modified: String,
}

impl ScimUser {
    /// The primary email (validation guarantees there is exactly one).
    pub fn primary_email(&self) -> &str {
        self.emails
            .iter()
            .find(|e| e.primary)
            .map_or("", |e| e.value.as_str())
    }

    fn formatted_name(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.given_name, &self.family_name]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// The name the org account shows.
    fn account_name(&self) -> String {
        self.display_name
            .clone()
            .or_else(|| self.formatted_name())
            .unwrap_or_else(|| self.user_name.clone())
    }
}

impl Record for ScimUser {
    type Id = str;

    fn id(&self) -> &str {
        &self.id
    }
}

/// A group of the SCIM directory (its members are in [`State::members`]).
#[derive(Clone, Debug)]
pub struct ScimGroup {
    pub id: String,
    pub display_name: String,
    pub created: String,
    pub last_modified: String,
}

impl Record for ScimGroup {
    type Id = str;

    fn id(&self) -> &str {
        &self.id
    }
}

/// An Atlassian account of the organization.
#[derive(Clone, Debug)]
pub struct OrgAccount {
    pub account_id: String,
    pub email: String,
    pub name: String,
    /// "active", "inactive" or "closed".
    pub status: String,
    pub last_active: Option<String>,
    pub access_billable: bool,
    /// Platform role ids: "atlassian/org-admin", "atlassian/site-admin".
    pub roles: BTreeSet<String>,
    pub api_tokens: Vec<ApiToken>,
    /// The other identity-provider directory that holds this account, if any.
    pub directory: Option<String>,
}

impl Record for OrgAccount {
    type Id = str;

    fn id(&self) -> &str {
        &self.account_id
    }
}

#[derive(Clone, Debug)]
pub struct ApiToken {
    pub id: String,
    pub label: String,
    pub created_at: String,
    pub last_access: Option<String>,
}

/// Everything the fake knows. Lock it only briefly, never across an await.
///
/// Records are found through indexes, never by a scan: change a user's userName or emails, a
/// group's name or members, or an account's email only through the fake (its handlers and
/// seeding methods), which keeps the indexes in line; other fields can be changed in place.
#[derive(Debug)]
pub struct State {
    pub config: FakeConfig,
    pub base_url: String,
    /// In creation order.
    pub users: Table<ScimUser>,
    /// In creation order.
    pub groups: Table<ScimGroup>,
    /// In creation order.
    pub accounts: Table<OrgAccount>,
    /// SCIM user ids of each group, in the order they were added.
    pub members: Memberships,
    /// userName -> SCIM user ids.
    user_names: KeyIndex,
    /// Primary email -> SCIM user ids.
    user_emails: KeyIndex,
    /// externalId -> SCIM user ids (matched exactly after the case-insensitive lookup).
    external_ids: KeyIndex,
    /// Account id -> the SCIM users linked to it.
    linked: KeyIndex,
    /// Email -> account ids.
    account_emails: KeyIndex,
    /// displayName -> group ids.
    group_names: KeyIndex,
    /// The `limit` of every v2 user search, in order (`None`: not sent).
    pub search_limits: Vec<Option<u64>>,
    /// The next N filtered `/Users` searches find nobody, as a search index that lags behind the
    /// writes would (many SCIM servers filter through an eventually consistent index): a create
    /// whose answer was lost is then not found by the client's lookup, and sent again.
    pub lagging_searches: usize,
    next_id: u64,
    ticks: i64,
}

impl State {
    fn new(config: FakeConfig, base_url: String) -> State {
        State {
            config,
            base_url,
            users: Table::default(),
            groups: Table::default(),
            accounts: Table::default(),
            members: Memberships::default(),
            user_names: KeyIndex::default(),
            user_emails: KeyIndex::default(),
            external_ids: KeyIndex::default(),
            linked: KeyIndex::default(),
            account_emails: KeyIndex::default(),
            group_names: KeyIndex::default(),
            search_limits: Vec::new(),
            lagging_searches: 0,
            next_id: 0,
            ticks: 0,
        }
    }

    pub fn scim_base(&self) -> String {
        format!(
            "{}/scim/directory/{}",
            self.base_url, self.config.directory_id
        )
    }

    fn mint(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The fake's clock, one second later on each call.
    fn now(&mut self) -> String {
        self.ticks += 1;
        timestamp(EPOCH + self.ticks)
    }

    fn user_index(&self, id: &str) -> Option<usize> {
        self.users.position(id)
    }

    fn group_index(&self, id: &str) -> Option<usize> {
        self.groups.position(id)
    }

    fn account_index(&self, account_id: &str) -> Option<usize> {
        self.accounts.position(account_id)
    }

    /// The first account (in creation order) with this email.
    fn account_by_email(&self, email: &str) -> Option<usize> {
        let ids = self.account_emails.ids(email);
        ids.iter().filter_map(|id| self.accounts.position(id)).min()
    }

    /// The first SCIM user (in creation order) whose userName or primary email is `key`.
    fn user_by_key(&self, key: &str) -> Option<usize> {
        let ids = self.user_names.ids(key).iter();
        ids.chain(self.user_emails.ids(key))
            .filter_map(|id| self.users.position(id))
            .min()
    }

    fn is_linked(&self, account_id: &str) -> bool {
        self.linked.contains(account_id)
    }

    /// The users with these ids, in creation order.
    fn users_in_order<'a>(&'a self, ids: &[String]) -> Vec<&'a ScimUser> {
        let mut found: Vec<usize> = ids
            .iter()
            .filter_map(|id| self.users.position(id))
            .collect();
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|i| &self.users[i]).collect()
    }

    /// Indexes a user's keys (`add`) or forgets them.
    fn index_user(&mut self, index: usize, add: bool) {
        let user = &self.users[index];
        let (id, email) = (user.id.as_str(), user.primary_email());
        let keys = [
            (&mut self.user_names, Some(user.user_name.as_str())),
            (&mut self.user_emails, Some(email)),
            (&mut self.external_ids, user.external_id.as_deref()),
            (&mut self.linked, Some(user.account_id.as_str())),
        ];
        for (index, key) in keys {
            if let Some(key) = key {
                if add {
                    index.insert(key, id);
                } else {
                    index.remove(key, id);
                }
            }
        }
    }

    fn domain_verified(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
        self.config
            .verified_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    fn insert_group(&mut self, group: ScimGroup) -> usize {
        self.group_names.insert(&group.display_name, &group.id);
        self.groups.push(group)
    }

    fn user_name_taken(&self, user_name: &str, except: Option<&str>) -> bool {
        self.user_names
            .ids(user_name)
            .iter()
            .any(|id| Some(id.as_str()) != except)
    }

    fn new_account(&mut self, email: &str, name: &str) -> usize {
        let n = self.mint();
        let account_id = format!("712020:{n:08x}-0000-4000-8000-00000000a11c");
        self.account_emails.insert(email, &account_id);
        self.accounts.push(OrgAccount {
            account_id,
            email: email.to_owned(),
            name: name.to_owned(),
            status: "active".into(),
            last_active: None,
            access_billable: true,
            roles: BTreeSet::new(),
            api_tokens: Vec::new(),
            directory: None,
        })
    }

    /// Adds a validated user to the directory, linking it to the org account with its email when
    /// that account is not in the directory yet.
    fn insert_user(&mut self, mut user: ScimUser, check_domain: bool) -> Result<usize, Failure> {
        if self.user_name_taken(&user.user_name, None) {
            return Err(Failure::conflict(format!(
                "a user with userName {} already exists",
                user.user_name
            )));
        }
        let email = user.primary_email().to_owned();
        if check_domain && !self.domain_verified(&email) {
            return Err(unverified(&email));
        }
        let account = match self.account_by_email(&email) {
            Some(i) if self.is_linked(&self.accounts[i].account_id) => {
                return Err(Failure::conflict(format!(
                    "the account with email {email} is already in the directory"
                )))
            }
            Some(i) => i,
            None => self.new_account(&email, &user.account_name()),
        };
        user.account_id = self.accounts[account].account_id.clone();
        user.id = format!("{:08x}-0000-4000-8000-000000005c1e", self.mint());
        user.created = self.now();
        user.last_modified = user.created.clone();
        let index = self.users.push(user);
        self.index_user(index, true);
        self.sync_account(index);
        Ok(index)
    }

    /// Brings the org account of a SCIM user in line with it.
    fn sync_account(&mut self, user: usize) {
        let user = &self.users[user];
        let (email, name, active) = (
            user.primary_email().to_owned(),
            user.account_name(),
            user.active,
        );
        if let Some(i) = self.account_index(&user.account_id) {
            let account = &mut self.accounts[i];
            if account.email != email {
                self.account_emails
                    .rekey(&account.email, &email, &account.account_id);
            }
            account.email = email;
            account.name = name;
            if account.status != "closed" {
                account.status = if active { "active" } else { "inactive" }.into();
            }
            account.access_billable = active && account.status == "active";
        }
    }

    fn user_json(&self, user: &ScimUser) -> Value {
        let mut out = Vec::new();
        self.writer().user(&mut out, &self.user_row(user));
        serde_json::from_slice(&out).expect("the writer writes JSON")
    }

    fn group_json(&self, group: &ScimGroup) -> Value {
        let mut out = Vec::new();
        self.writer().group(&mut out, &self.group_row(group, false));
        serde_json::from_slice(&out).expect("the writer writes JSON")
    }

    /// How resources are written: with this fake's settings.
    fn writer(&self) -> ScimWriter {
        ScimWriter {
            nulls: self.config.explicit_nulls,
            scim_base: self.scim_base(),
        }
    }

    /// A user with what its resource shows of its groups (in creation order), copied out of the
    /// store.
    fn user_row(&self, user: &ScimUser) -> UserRow {
        let mut groups: Vec<usize> = self
            .members
            .groups_of(&user.id)
            .filter_map(|g| self.groups.position(g))
            .collect();
        groups.sort_unstable();
        UserRow {
            user: user.clone(),
            groups: groups
                .into_iter()
                .map(|i| {
                    (
                        self.groups[i].id.clone(),
                        self.groups[i].display_name.clone(),
                    )
                })
                .collect(),
        }
    }

    /// A group with its members' ids and userNames (none when `bare`), copied out of the store.
    fn group_row(&self, group: &ScimGroup, bare: bool) -> GroupRow {
        let members = (!bare).then(|| {
            self.members
                .members(&group.id)
                .map(|id| {
                    let name = self.users.get(id).map_or("", |u| u.user_name.as_str());
                    (id.to_owned(), name.to_owned())
                })
                .collect()
        });
        GroupRow {
            group: group.clone(),
            members,
        }
    }

    fn account_json(&self, account: &OrgAccount) -> Value {
        let mut body = Map::new();
        body.insert("account_id".into(), json!(account.account_id));
        body.insert("account_type".into(), json!("atlassian"));
        body.insert("account_status".into(), json!(account.status));
        body.insert("name".into(), json!(account.name));
        body.insert("email".into(), json!(account.email));
        insert_opt(
            &mut body,
            "last_active",
            &account.last_active,
            self.config.explicit_nulls,
        );
        body.insert("access_billable".into(), json!(account.access_billable));
        body.insert(
            "links".into(),
            json!({ "self": format!(
                "{}/admin/v1/orgs/{}/users/{}",
                self.base_url, self.config.org_id, account.account_id
            ) }),
        );
        Value::Object(body)
    }
}

/// A user resource as a page holds it: the user and its groups' ids and names, copied out of the
/// store so that the page is written after the store's lock is released.
struct UserRow {
    user: ScimUser,
    groups: Vec<(String, String)>,
}

/// A group resource as a page holds it: the group and its members' ids and userNames (`None`:
/// without `members`, as `excludedAttributes=members` asks).
struct GroupRow {
    group: ScimGroup,
    members: Option<Vec<(String, String)>>,
}

/// Writes SCIM resources (the one rendering of each: answers and pages alike), straight from the
/// records, without building a JSON value per resource.
struct ScimWriter {
    nulls: bool,
    scim_base: String,
}

impl ScimWriter {
    fn user(&self, out: &mut Vec<u8>, row: &UserRow) {
        let (user, nulls) = (&row.user, self.nulls);
        let mut body = ObjectWriter::new(out);
        write_json_array(
            body.key("schemas"),
            [SCHEMA_USER, SCHEMA_ENTERPRISE, SCHEMA_ATLASSIAN],
            write_json_str,
        );
        body.str("id", &user.id);
        body.opt_str("externalId", user.external_id.as_deref(), nulls);
        body.str("userName", &user.user_name);
        if user.emails.is_empty() && nulls {
            body.key("emails").extend_from_slice(b"null");
        } else {
            write_json_array(body.key("emails"), &user.emails, |out, e| {
                let mut email = ObjectWriter::new(out);
                email.str("value", &e.value);
                email.opt_str("type", e.kind.as_deref(), nulls);
                email.bool("primary", e.primary);
                email.end();
            });
        }
        let formatted = user.formatted_name();
        let name = [
            ("givenName", user.given_name.as_deref()),
            ("familyName", user.family_name.as_deref()),
            ("formatted", formatted.as_deref()),
        ];
        complex(&mut body, "name", &name, nulls);
        body.opt_str("displayName", user.display_name.as_deref(), nulls);
        body.opt_str("nickName", user.nick_name.as_deref(), nulls);
        body.opt_str("title", user.title.as_deref(), nulls);
        body.opt_str(
            "preferredLanguage",
            user.preferred_language.as_deref(),
            nulls,
        );
        body.opt_str("locale", user.locale.as_deref(), nulls);
        body.opt_str("timezone", user.timezone.as_deref(), nulls);
        body.bool("active", user.active);
        let enterprise = [
            ("department", user.department.as_deref()),
            ("organization", user.organization.as_deref()),
        ];
        complex(&mut body, SCHEMA_ENTERPRISE, &enterprise, nulls);
        let mut atlassian = ObjectWriter::new(body.key(SCHEMA_ATLASSIAN));
        atlassian.str("atlassianAccountId", &user.account_id);
        atlassian.end();
        if row.groups.is_empty() && nulls {
            body.key("groups").extend_from_slice(b"null");
        } else {
            write_json_array(body.key("groups"), &row.groups, |out, (id, name)| {
                let mut group = ObjectWriter::new(out);
                group.str("value", id);
                group.str("display", name);
                group.str("type", "direct");
                group.end();
            });
        }
        let mut meta = ObjectWriter::new(body.key("meta"));
        meta.str("resourceType", "User");
        meta.str("created", &user.created);
        meta.str("lastModified", &user.last_modified);
        meta.str("location", &format!("{}/Users/{}", self.scim_base, user.id));
        meta.end();
        body.end();
    }

    fn group(&self, out: &mut Vec<u8>, row: &GroupRow) {
        let group = &row.group;
        let mut body = ObjectWriter::new(out);
        write_json_array(body.key("schemas"), [SCHEMA_GROUP], write_json_str);
        body.str("id", &group.id);
        body.str("displayName", &group.display_name);
        match &row.members {
            None => {}
            Some(members) if members.is_empty() && self.nulls => {
                body.key("members").extend_from_slice(b"null");
            }
            Some(members) => {
                write_json_array(body.key("members"), members, |out, (id, name)| {
                    let mut member = ObjectWriter::new(out);
                    member.str("value", id);
                    member.str("display", name);
                    member.str("type", "User");
                    member.end();
                });
            }
        }
        let mut meta = ObjectWriter::new(body.key("meta"));
        meta.str("resourceType", "Group");
        meta.str("created", &group.created);
        meta.str("lastModified", &group.last_modified);
        meta.str(
            "location",
            &format!("{}/Groups/{}", self.scim_base, group.id),
        );
        meta.end();
        body.end();
    }
}

/// Sets `key` when there is a value; without one, leaves it out, or with `nulls` sends `null`.
fn insert_opt(map: &mut Map<String, Value>, key: &str, value: &Option<String>, nulls: bool) {
    if let Some(value) = value {
        map.insert(key.into(), json!(value));
    } else if nulls {
        map.insert(key.into(), Value::Null);
    }
}

/// Writes a complex attribute of optional parts; with `nulls`, an unset part is `null`, and one
/// whose every part is unset is `null` as a whole.
fn complex(body: &mut ObjectWriter<'_>, key: &str, parts: &[(&str, Option<&str>)], nulls: bool) {
    if nulls && parts.iter().all(|(_, v)| v.is_none()) {
        body.key(key).extend_from_slice(b"null");
        return;
    }
    let mut object = ObjectWriter::new(body.key(key));
    for (name, value) in parts {
        object.opt_str(name, *value, nulls);
    }
    object.end();
}

fn timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("a timestamp in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The fake Atlassian Cloud server. Dropping it stops accepting connections.
pub struct FakeAtlassian {
    pub base_url: String,
    /// The configuration the fake started with. To change its behaviour while it runs, change
    /// `state().config` instead.
    pub config: FakeConfig,
    pub state: Arc<Mutex<State>>,
    layer: Arc<FaultLayer>,
    _server: Server,
}

impl FakeAtlassian {
    /// Binds 127.0.0.1:0 and serves the fake on the current tokio runtime.
    pub async fn start(config: FakeConfig) -> FakeAtlassian {
        let (listener, base_url) = bind().await;
        let layer = Arc::new(
            FaultLayer::new(config.latency, scim_error_response)
                .with_is_mutation(is_mutation)
                .with_pages(page_dialect),
        );
        let state = Arc::new(Mutex::new(State::new(config.clone(), base_url.clone())));
        let server = serve(listener, router(state.clone()), layer.clone());
        FakeAtlassian {
            base_url,
            config,
            state,
            layer,
            _server: server,
        }
    }

    /// `{base_url}/scim/directory/{directory_id}`.
    pub fn scim_base(&self) -> String {
        self.state().scim_base()
    }

    pub fn org_id(&self) -> String {
        self.state().config.org_id.clone()
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    // Seeding. These panic on a conflict: a test that seeds a conflict has a bug.

    /// Adds a SCIM user (and its org account, or links the org account with its email); returns
    /// the SCIM id. The domain of the email need not be verified.
    pub fn add_user(&self, seed: SeedUser) -> String {
        let user = ScimUser {
            user_name: seed.user_name.unwrap_or_else(|| seed.email.clone()),
            external_id: seed.external_id,
            emails: vec![Email {
                value: seed.email.clone(),
                kind: Some("work".into()),
                primary: true,
            }],
            given_name: seed.given_name,
            family_name: seed.family_name,
            display_name: seed.display_name,
            title: seed.title,
            department: seed.department,
            active: seed.active,
            ..ScimUser::default()
        };
        let mut state = self.state();
        let index = state
            .insert_user(user, false)
            .unwrap_or_else(|e| panic!("seeding user {}: {e:?}", seed.email));
        if seed.last_active.is_some() {
            let account = state.users[index].account_id.clone();
            let account = state.account_index(&account).expect("the user's account");
            state.accounts[account].last_active = seed.last_active;
        }
        state.users[index].id.clone()
    }

    /// Adds an org account that is not in the SCIM directory (a just-in-time account); returns
    /// its account id.
    pub fn add_org_account(&self, email: &str, name: &str, last_active: Option<&str>) -> String {
        let mut state = self.state();
        assert!(
            state.account_by_email(email).is_none(),
            "seeding org account {email}: the email is taken"
        );
        let index = state.new_account(email, name);
        state.accounts[index].last_active = last_active.map(str::to_owned);
        state.accounts[index].account_id.clone()
    }

    /// Adds a group whose members are the users with these userNames or emails; returns its id.
    pub fn add_group(&self, name: &str, member_emails: &[&str]) -> String {
        let mut state = self.state();
        assert!(
            state.config.allow_duplicate_group_names || !state.group_names.contains(name),
            "seeding group {name}: the name is taken"
        );
        let members: Vec<String> = member_emails
            .iter()
            .map(|key| {
                let i = state
                    .user_by_key(key)
                    .unwrap_or_else(|| panic!("seeding group {name}: no user {key}"));
                state.users[i].id.clone()
            })
            .collect();
        let id = format!("{:08x}-0000-4000-8000-00000000960f", state.mint());
        let created = state.now();
        state.insert_group(ScimGroup {
            id: id.clone(),
            display_name: name.to_owned(),
            last_modified: created.clone(),
            created,
        });
        for member in &members {
            state.members.add(&id, member);
        }
        id
    }

    /// Gives the account with this email a platform role ("org-admin" or "site-admin", stored
    /// under Atlassian's namespace, "atlassian/org-admin").
    pub fn set_admin(&self, email: &str, role: &str) {
        let mut state = self.state();
        let i = account_for(&state, email);
        let role = if role.contains('/') {
            role.to_owned()
        } else {
            format!("atlassian/{role}")
        };
        state.accounts[i].roles.insert(role);
    }

    /// Puts the account with this email in another identity-provider directory of the
    /// organization (one of `config.other_directories`).
    pub fn set_directory(&self, email: &str, directory_id: &str) {
        let mut state = self.state();
        let i = account_for(&state, email);
        state.accounts[i].directory = Some(directory_id.to_owned());
    }

    /// Gives the account with this email an API token.
    pub fn add_api_token(&self, email: &str, label: &str) {
        let mut state = self.state();
        let i = account_for(&state, email);
        let id = format!("t{}", state.mint());
        let created_at = state.now();
        state.accounts[i].api_tokens.push(ApiToken {
            id,
            label: label.to_owned(),
            created_at: created_at.clone(),
            last_access: Some(created_at),
        });
    }

    pub fn set_last_active(&self, email: &str, date: &str) {
        let mut state = self.state();
        let i = account_for(&state, email);
        state.accounts[i].last_active = Some(date.to_owned());
    }

    // Inspection.

    /// Every SCIM user as GET /Users/{id} returns it, in creation order.
    pub fn users(&self) -> Vec<Value> {
        let state = self.state();
        state.users.iter().map(|u| state.user_json(u)).collect()
    }

    /// The SCIM user with this userName or primary email.
    pub fn user(&self, key: &str) -> Option<Value> {
        let state = self.state();
        state
            .user_by_key(key)
            .map(|i| state.user_json(&state.users[i]))
    }

    /// Every SCIM group as GET /Groups/{id} returns it, in creation order.
    pub fn groups(&self) -> Vec<Value> {
        let state = self.state();
        state.groups.iter().map(|g| state.group_json(g)).collect()
    }

    /// The userNames of the members of the group with this name (case-insensitive), sorted;
    /// empty when there is no such group.
    pub fn group_members(&self, name: &str) -> Vec<String> {
        let state = self.state();
        let mut members: Vec<String> = state
            .group_names
            .ids(name)
            .iter()
            .flat_map(|g| state.members.members(g))
            .filter_map(|id| state.users.get(id))
            .map(|u| u.user_name.clone())
            .collect();
        members.sort();
        members
    }

    /// Every org account as the org users API returns it, in creation order.
    pub fn org_accounts(&self) -> Vec<Value> {
        let state = self.state();
        state
            .accounts
            .iter()
            .map(|a| state.account_json(a))
            .collect()
    }

    /// The account id of the org account with this email.
    pub fn account_id(&self, email: &str) -> Option<String> {
        let state = self.state();
        state
            .account_by_email(email)
            .map(|i| state.accounts[i].account_id.clone())
    }

    /// The API tokens of the account with this email.
    pub fn api_tokens(&self, email: &str) -> usize {
        let state = self.state();
        state.accounts[account_for(&state, email)].api_tokens.len()
    }

    /// Every request received, faulted or not, in order of arrival.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.layer.requests()
    }

    /// Successful (2xx) requests that change state (every non-GET but the admin user search).
    /// A `fail_after_mutation` request is applied but answered 500, so it does not count.
    pub fn mutations(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.mutation && (200..300).contains(&r.status))
            .count()
    }

    /// DELETE requests on SCIM users or groups, whatever their outcome.
    pub fn deletes(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                r.method == "DELETE"
                    && r.path.starts_with("/scim/")
                    && (r.path.contains("/Users") || r.path.contains("/Groups"))
            })
            .count()
    }

    /// The faults to inject; change them through the guard. Do not hold the guard across an
    /// await: every request locks it.
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.layer.faults()
    }

    /// How many responses page faults changed so far.
    pub fn page_faults_fired(&self) -> usize {
        self.layer.page_faults_fired()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.layer.set_faults(faults);
    }
}

fn account_for(state: &State, email: &str) -> usize {
    state
        .account_by_email(email)
        .unwrap_or_else(|| panic!("no org account with email {email}"))
}

fn is_mutation(method: &Method, path: &str) -> bool {
    let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || (*method == Method::POST && path.ends_with("/users/search"));
    !read
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A failed request, in the shape of the API it was made to.
#[derive(Debug)]
pub enum Failure {
    /// A SCIM error: `{"schemas":[Error],"status":"409","scimType":"uniqueness","detail":...}`.
    Scim {
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: String,
    },
    /// A missing or wrong bearer token: `{"error":"Unauthorized","traceId":...}`.
    Unauthorized,
    /// An error of the org admin API: `{"errors":[{"code","title","detail"}]}`.
    Admin { status: StatusCode, message: String },
}

impl Failure {
    fn scim(status: StatusCode, scim_type: &'static str, detail: impl Into<String>) -> Failure {
        Failure::Scim {
            status,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    fn bad(scim_type: &'static str, detail: impl Into<String>) -> Failure {
        Failure::scim(StatusCode::BAD_REQUEST, scim_type, detail)
    }

    fn conflict(detail: impl Into<String>) -> Failure {
        Failure::scim(StatusCode::CONFLICT, "uniqueness", detail)
    }

    fn not_found(kind: &str, id: &str) -> Failure {
        Failure::Scim {
            status: StatusCode::NOT_FOUND,
            scim_type: None,
            detail: format!("{kind} {id} not found"),
        }
    }

    fn admin(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure::Admin {
            status,
            message: message.into(),
        }
    }

    fn is_invalid_path(&self) -> bool {
        matches!(
            self,
            Failure::Scim {
                scim_type: Some("invalidPath"),
                ..
            }
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Scim {
                status,
                scim_type,
                detail,
            } => {
                let mut body = json!({
                    "schemas": [SCHEMA_ERROR],
                    "status": status.as_u16().to_string(),
                    "detail": detail,
                });
                if let Some(scim_type) = scim_type {
                    body["scimType"] = json!(scim_type);
                }
                scim_json(status, &body)
            }
            Failure::Unauthorized => {
                static TRACE: AtomicU64 = AtomicU64::new(0x7ace_0000);
                let trace = TRACE.fetch_add(1, Ordering::Relaxed);
                let body = json!({ "error": "Unauthorized", "traceId": format!("{trace:016x}") });
                (StatusCode::UNAUTHORIZED, Json(body)).into_response()
            }
            Failure::Admin { status, message } => {
                let body = json!({ "errors": [{
                    "code": format!("ADMIN-{}", status.as_u16()),
                    "title": status.canonical_reason().unwrap_or("Error"),
                    "detail": message,
                }] });
                (status, Json(body)).into_response()
            }
        }
    }
}

/// The body of an error injected by the fault layer.
fn scim_error_response(status: StatusCode, detail: &str) -> Response {
    Failure::Scim {
        status,
        scim_type: None,
        detail: detail.to_owned(),
    }
    .into_response()
}

fn unverified(email: &str) -> Failure {
    let domain = email.rsplit_once('@').map_or(email, |(_, d)| d);
    Failure::bad(
        "invalidValue",
        format!("the domain {domain} of {email} is not a verified domain of the organization"),
    )
}

type Reply = Result<Response, Failure>;

type JsonObject = Map<String, Value>;

fn scim_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, SCIM_JSON)],
        body.to_string(),
    )
        .into_response()
}

fn check_token(headers: &HeaderMap, token: &str) -> Result<(), Failure> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    if presented == Some(token) {
        Ok(())
    } else {
        Err(Failure::Unauthorized)
    }
}

/// Checks the SCIM token and the directory id.
fn scim_guard(state: &State, headers: &HeaderMap, directory: &str) -> Result<(), Failure> {
    check_token(headers, &state.config.scim_token)?;
    if directory == state.config.directory_id {
        Ok(())
    } else {
        Err(Failure::not_found("directory", directory))
    }
}

/// Checks the org token and the org id.
fn org_guard(state: &State, headers: &HeaderMap, org: &str) -> Result<(), Failure> {
    check_token(headers, &state.config.org_token)?;
    if state.config.org_reads_forbidden {
        return Err(Failure::admin(
            StatusCode::FORBIDDEN,
            "the API key does not have the scope this operation needs",
        ));
    }
    if org == state.config.org_id {
        Ok(())
    } else {
        Err(Failure::admin(
            StatusCode::NOT_FOUND,
            format!("org {org} not found"),
        ))
    }
}

/// A JSON object body, sent as `application/scim+json` or `application/json`.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Failure> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("application/json") && !mime.eq_ignore_ascii_case(SCIM_JSON) {
        return Err(Failure::scim(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalidSyntax",
            format!("unsupported content type {content_type:?}"),
        ));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::bad(
            "invalidSyntax",
            "the body is not a JSON object",
        )),
        Err(e) => Err(Failure::bad("invalidSyntax", format!("invalid JSON: {e}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

type Shared = Arc<Mutex<State>>;

fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/scim/directory/{dir}/Users",
            get(list_users).post(create_user),
        )
        .route(
            "/scim/directory/{dir}/Users/{id}",
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .route(
            "/scim/directory/{dir}/Groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/scim/directory/{dir}/Groups/{id}",
            get(get_group).patch(patch_group).delete(delete_group),
        )
        .route("/admin/v1/orgs/{org}/users", get(org_users))
        .route("/admin/v1/orgs/{org}/domains", get(org_domains))
        .route(
            "/admin/v2/orgs/{org}/directories/{dir}/users/search",
            post(search_users),
        )
        .route("/admin/v2/orgs/{org}/directories", get(org_directories))
        .route(
            "/admin/api-access/v1/orgs/{org}/api-tokens",
            get(token_inventory),
        )
        .route("/users/{account}/manage/api-tokens", get(list_api_tokens))
        .route(
            "/users/{account}/manage/api-tokens/{token}",
            delete(delete_api_token),
        )
        .fallback(|| async { Failure::not_found("resource", "at this path") })
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// SCIM: listing

/// A page of a list: 1-based `startIndex` (default 1), `count` (default 100) capped by `cap`.
struct Page {
    start: usize,
    count: usize,
}

impl Page {
    fn from_query(query: &HashMap<String, String>, cap: usize) -> Result<Page, Failure> {
        let number = |key: &str, default: i64| -> Result<i64, Failure> {
            query.get(key).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|_| Failure::bad("invalidValue", format!("{key} must be an integer")))
            })
        };
        let start = usize::try_from(number("startIndex", 1)?.max(1)).unwrap_or(usize::MAX);
        let count = usize::try_from(number("count", 100)?.max(0)).unwrap_or(usize::MAX);
        Ok(Page {
            start,
            count: count.min(cap),
        })
    }

    /// The resources of `matching` that this page holds.
    fn window<'a, T>(&self, matching: &'a [T]) -> &'a [T] {
        let from = (self.start - 1).min(matching.len());
        &matching[from..(from + self.count).min(matching.len())]
    }

    /// One page of `total` matching resources, holding `page` (rows copied out of the store by
    /// [`Page::window`], so that the store's lock is released before the page is written), each
    /// written by `render` straight into the page.
    fn list_response<T>(
        &self,
        total: usize,
        page: &[T],
        nulls: bool,
        render: impl Fn(&T, &mut Vec<u8>),
    ) -> Response {
        let out = written(|out| {
            let mut body = ObjectWriter::new(out);
            write_json_array(body.key("schemas"), [SCHEMA_LIST], write_json_str);
            body.number("totalResults", total);
            body.number("startIndex", self.start);
            body.number("itemsPerPage", page.len());
            if page.is_empty() && nulls {
                body.key("Resources").extend_from_slice(b"null");
            } else {
                write_json_array(body.key("Resources"), page, |out, item| render(item, out));
            }
            body.end();
        });
        (StatusCode::OK, [(header::CONTENT_TYPE, SCIM_JSON)], out).into_response()
    }
}

/// The attribute and value of the one kind of filter the API supports: `attr eq "value"`.
fn parse_eq_filter(filter: &str) -> Option<(&str, String)> {
    let (attr, rest) = filter.trim().split_once(char::is_whitespace)?;
    let (op, rest) = rest.trim_start().split_once(char::is_whitespace)?;
    if !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    let quoted = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut value = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?),
            '"' => return None,
            c => value.push(c),
        }
    }
    Some((attr, value))
}

fn invalid_filter(filter: &str, supported: &str) -> Failure {
    Failure::bad(
        "invalidFilter",
        format!("unsupported filter {filter:?}: only {supported} eq \"value\" is supported"),
    )
}

async fn list_users(
    AxumState(state): AxumState<Shared>,
    Path(dir): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let (page, total, rows, writer) = {
        let mut state = lock(&state);
        scim_guard(&state, &headers, &dir)?;
        let page = Page::from_query(&query, state.config.page_cap)?;
        let lagging = query.contains_key("filter") && state.lagging_searches > 0;
        if lagging {
            state.lagging_searches -= 1;
        }
        let state = &*state;
        let matching: Vec<&ScimUser> = match query.get("filter") {
            Some(_) if lagging => Vec::new(),
            // The whole directory: only the page's users are looked at.
            None => page.window(&state.users).iter().collect(),
            Some(filter) => match parse_eq_filter(filter) {
                Some((attr, value)) if attr.eq_ignore_ascii_case("userName") => {
                    state.users_in_order(state.user_names.ids(&value))
                }
                Some((attr, value)) if attr.eq_ignore_ascii_case("externalId") => state
                    .users_in_order(state.external_ids.ids(&value))
                    .into_iter()
                    .filter(|u| u.external_id.as_deref() == Some(value.as_str()))
                    .collect(),
                _ => return Err(invalid_filter(filter, "userName or externalId")),
            },
        };
        let (total, window) = if query.contains_key("filter") {
            (matching.len(), page.window(&matching))
        } else {
            (state.users.len(), &matching[..])
        };
        let rows: Vec<UserRow> = window.iter().map(|u| state.user_row(u)).collect();
        (page, total, rows, state.writer())
    };
    Ok(page.list_response(total, &rows, writer.nulls, |row, out| {
        writer.user(out, row);
    }))
}

async fn list_groups(
    AxumState(state): AxumState<Shared>,
    Path(dir): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let (page, total, rows, writer) = {
        let state = lock(&state);
        scim_guard(&state, &headers, &dir)?;
        let page = Page::from_query(&query, state.config.page_cap)?;
        let name = match query.get("filter") {
            None => None,
            Some(filter) => match parse_eq_filter(filter) {
                Some((attr, value)) if attr.eq_ignore_ascii_case("displayName") => Some(value),
                _ => return Err(invalid_filter(filter, "displayName")),
            },
        };
        let bare = excludes_members(&query);
        let (total, window): (usize, Vec<&ScimGroup>) = match name {
            // Every group: only the page's groups are looked at.
            None => (
                state.groups.len(),
                page.window(&state.groups).iter().collect(),
            ),
            Some(name) => {
                let mut found: Vec<usize> = (state.group_names.ids(&name).iter())
                    .filter_map(|id| state.groups.position(id))
                    .collect();
                found.sort_unstable();
                let matching: Vec<&ScimGroup> =
                    found.into_iter().map(|i| &state.groups[i]).collect();
                (matching.len(), page.window(&matching).to_vec())
            }
        };
        let rows: Vec<GroupRow> = window.iter().map(|g| state.group_row(g, bare)).collect();
        (page, total, rows, state.writer())
    };
    Ok(page.list_response(total, &rows, writer.nulls, |row, out| {
        writer.group(out, row);
    }))
}

// ---------------------------------------------------------------------------------------------
// SCIM: users

const ENTERPRISE_PREFIX: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:";

fn opt_string(path: &str, value: &Value) -> Result<Option<String>, Failure> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(Failure::bad(
            "invalidValue",
            format!("{path} must be a string"),
        )),
    }
}

fn boolish(path: &str, value: &Value) -> Result<bool, Failure> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(Failure::bad(
            "invalidValue",
            format!("{path} must be a boolean"),
        )),
    }
}

fn object<'v>(path: &str, value: &'v Value) -> Result<&'v Map<String, Value>, Failure> {
    value
        .as_object()
        .ok_or_else(|| Failure::bad("invalidValue", format!("{path} must be an object")))
}

/// Parses a SCIM emails array: every email has a string value, and exactly one is primary.
fn parse_emails(value: &Value) -> Result<Vec<Email>, Failure> {
    let items = value
        .as_array()
        .ok_or_else(|| Failure::bad("invalidValue", "emails must be an array"))?;
    let emails = items
        .iter()
        .map(|item| {
            let item = object("emails", item)?;
            let value = item
                .get("value")
                .and_then(Value::as_str)
                .filter(|v| v.contains('@'))
                .ok_or_else(|| Failure::bad("invalidValue", "every email needs a value"))?;
            Ok(Email {
                value: value.to_owned(),
                kind: item
                    .get("type")
                    .map(|t| opt_string("type", t))
                    .transpose()?
                    .flatten(),
                primary: item
                    .get("primary")
                    .map(|p| boolish("primary", p))
                    .transpose()?
                    .unwrap_or(false),
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    if emails.iter().filter(|e| e.primary).count() != 1 {
        return Err(Failure::bad(
            "invalidValue",
            "exactly one email must be primary",
        ));
    }
    Ok(emails)
}

/// Sets one attribute of a user, named by a SCIM path.
fn set_user_attr(user: &mut ScimUser, path: &str, value: &Value) -> Result<(), Failure> {
    let attr = path.strip_prefix(ENTERPRISE_PREFIX).unwrap_or(path);
    let field = match attr.to_ascii_lowercase().as_str() {
        "active" => {
            user.active = boolish(path, value)?;
            return Ok(());
        }
        "username" => {
            user.user_name = opt_string(path, value)?
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| Failure::bad("invalidValue", "userName must not be empty"))?;
            return Ok(());
        }
        "emails" => {
            user.emails = parse_emails(value)?;
            return Ok(());
        }
        "name" => {
            for (key, value) in object(path, value)? {
                match key.as_str() {
                    "givenName" | "familyName" => {
                        set_user_attr(user, &format!("name.{key}"), value)?;
                    }
                    _ => {} // "formatted" and the rest are derived or unsupported.
                }
            }
            return Ok(());
        }
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user" => {
            for (key, value) in object(path, value)? {
                if key == "department" || key == "organization" {
                    set_user_attr(user, key, value)?;
                } // The other enterprise attributes (manager, costCenter...) are not modelled.
            }
            return Ok(());
        }
        "displayname" => &mut user.display_name,
        "externalid" => &mut user.external_id,
        "name.givenname" => &mut user.given_name,
        "name.familyname" => &mut user.family_name,
        "title" => &mut user.title,
        "department" => &mut user.department,
        "organization" => &mut user.organization,
        "timezone" => &mut user.timezone,
        "preferredlanguage" => &mut user.preferred_language,
        "nickname" => &mut user.nick_name,
        "locale" => &mut user.locale,
        _ => {
            return Err(Failure::bad(
                "invalidPath",
                format!("unsupported path {path:?}"),
            ))
        }
    };
    *field = opt_string(path, value)?;
    Ok(())
}

/// A user from a POST body; attributes the fake does not model are ignored.
fn user_from_body(body: &Map<String, Value>) -> Result<ScimUser, Failure> {
    let mut user = ScimUser {
        active: true,
        ..ScimUser::default()
    };
    for (key, value) in body {
        if let Err(e) = set_user_attr(&mut user, key, value) {
            if !e.is_invalid_path() {
                return Err(e);
            }
        }
    }
    if user.user_name.is_empty() {
        return Err(Failure::bad("invalidValue", "userName is required"));
    }
    if user.emails.is_empty() {
        return Err(Failure::bad("invalidValue", "emails is required"));
    }
    Ok(user)
}

async fn create_user(
    AxumState(state): AxumState<Shared>,
    Path(dir): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut state = lock(&state);
    scim_guard(&state, &headers, &dir)?;
    let user = user_from_body(&json_body(&headers, &body)?)?;
    let index = state.insert_user(user, true)?;
    Ok(scim_json(
        StatusCode::CREATED,
        &state.user_json(&state.users[index]),
    ))
}

async fn get_user(
    AxumState(state): AxumState<Shared>,
    Path((dir, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    scim_guard(&state, &headers, &dir)?;
    let index = state
        .user_index(&id)
        .ok_or_else(|| Failure::not_found("user", &id))?;
    Ok(scim_json(
        StatusCode::OK,
        &state.user_json(&state.users[index]),
    ))
}

/// The operations of a PatchOp body (`Operations`, or `operations`), with each op lowercased.
fn operations(body: &JsonObject) -> Result<Vec<(String, &JsonObject)>, Failure> {
    let ops = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::bad("invalidSyntax", "a PatchOp needs Operations"))?;
    ops.iter()
        .map(|op| {
            let op = object("Operations", op)?;
            let name = op
                .get("op")
                .and_then(Value::as_str)
                .ok_or_else(|| Failure::bad("invalidSyntax", "every operation needs an op"))?;
            Ok((name.to_ascii_lowercase(), op))
        })
        .collect()
}

async fn patch_user(
    AxumState(state): AxumState<Shared>,
    Path((dir, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut state = lock(&state);
    scim_guard(&state, &headers, &dir)?;
    let index = state
        .user_index(&id)
        .ok_or_else(|| Failure::not_found("user", &id))?;
    let body = json_body(&headers, &body)?;
    let mut user = state.users[index].clone();
    for (op, operation) in operations(&body)? {
        if op != "add" && op != "replace" {
            return Err(Failure::bad(
                "invalidValue",
                format!("unsupported op {op:?}"),
            ));
        }
        let value = operation
            .get("value")
            .ok_or_else(|| Failure::bad("invalidValue", format!("{op} needs a value")))?;
        match operation.get("path").and_then(Value::as_str) {
            Some(path) => set_user_attr(&mut user, path, value)?,
            None => {
                for (key, value) in object("value", value)? {
                    if key != "schemas" {
                        set_user_attr(&mut user, key, value)?;
                    }
                }
            }
        }
    }
    if state.user_name_taken(&user.user_name, Some(&id)) {
        return Err(Failure::conflict(format!(
            "a user with userName {} already exists",
            user.user_name
        )));
    }
    let email = user.primary_email().to_owned();
    if email != state.users[index].primary_email() && !state.domain_verified(&email) {
        return Err(unverified(&email));
    }
    user.last_modified = state.now();
    state.index_user(index, false);
    state.users.replace(index, user);
    state.index_user(index, true);
    state.sync_account(index);
    if state.config.patch_returns_204 {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Ok(scim_json(
            StatusCode::OK,
            &state.user_json(&state.users[index]),
        ))
    }
}

async fn delete_user(
    AxumState(state): AxumState<Shared>,
    Path((dir, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let mut state = lock(&state);
    scim_guard(&state, &headers, &dir)?;
    let index = state
        .user_index(&id)
        .ok_or_else(|| Failure::not_found("user", &id))?;
    state.index_user(index, false);
    let user = state.users.remove(index);
    state.members.remove_member(&id);
    // The account outlives the directory entry, deactivated and no longer linked.
    if let Some(i) = state.account_index(&user.account_id) {
        let account = &mut state.accounts[i];
        if account.status != "closed" {
            account.status = "inactive".into();
        }
        account.access_billable = false;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// SCIM: groups

/// The user ids of a members value, `[{"value": id}, ...]`, at most `max` of them.
fn member_ids(value: Option<&Value>, max: usize) -> Result<Vec<String>, Failure> {
    let items = value
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::bad("invalidValue", "members must be an array"))?;
    if items.len() > max {
        return Err(Failure::bad(
            "tooMany",
            format!("at most {max} members per operation, got {}", items.len()),
        ));
    }
    items
        .iter()
        .map(|item| {
            item.get("value")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Failure::bad("invalidValue", "every member needs a value"))
        })
        .collect()
}

fn check_members_exist(state: &State, ids: &[String]) -> Result<(), Failure> {
    match ids.iter().find(|id| state.user_index(id).is_none()) {
        Some(id) => Err(Failure::bad(
            "invalidValue",
            format!("member {id} is not a user of the directory"),
        )),
        None => Ok(()),
    }
}

/// A group's new name; `taken`: the names in use (`None`: names need not be unique).
fn group_name(
    value: &Value,
    taken: Option<&KeyIndex>,
    except: Option<&str>,
) -> Result<String, Failure> {
    let name = value
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Failure::bad("invalidValue", "displayName must be a non-empty string"))?;
    if taken.is_some_and(|t| t.ids(name).iter().any(|id| Some(id.as_str()) != except)) {
        return Err(Failure::conflict(format!(
            "a group named {name} already exists"
        )));
    }
    Ok(name.to_owned())
}

async fn create_group(
    AxumState(state): AxumState<Shared>,
    Path(dir): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut state = lock(&state);
    scim_guard(&state, &headers, &dir)?;
    let body = json_body(&headers, &body)?;
    let taken = (!state.config.allow_duplicate_group_names).then_some(&state.group_names);
    let name = group_name(body.get("displayName").unwrap_or(&Value::Null), taken, None)?;
    let members = match body.get("members") {
        Some(members) => member_ids(Some(members), state.config.max_members_per_patch)?,
        None => Vec::new(),
    };
    check_members_exist(&state, &members)?;
    let id = format!("{:08x}-0000-4000-8000-00000000960f", state.mint());
    let created = state.now();
    let index = state.insert_group(ScimGroup {
        id: id.clone(),
        display_name: name,
        last_modified: created.clone(),
        created,
    });
    for member in &members {
        state.members.add(&id, member);
    }
    Ok(scim_json(
        StatusCode::CREATED,
        &state.group_json(&state.groups[index]),
    ))
}

async fn get_group(
    AxumState(state): AxumState<Shared>,
    Path((dir, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    scim_guard(&state, &headers, &dir)?;
    let index = state
        .group_index(&id)
        .ok_or_else(|| Failure::not_found("group", &id))?;
    Ok(scim_json(
        StatusCode::OK,
        &state.group_json(&state.groups[index]),
    ))
}

async fn patch_group(
    AxumState(state): AxumState<Shared>,
    Path((dir, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut state = lock(&state);
    scim_guard(&state, &headers, &dir)?;
    let index = state
        .group_index(&id)
        .ok_or_else(|| Failure::not_found("group", &id))?;
    let body = json_body(&headers, &body)?;
    let max = state.config.max_members_per_patch;
    let mut group = state.groups[index].clone();
    let mut edit = MemberEdit::new(&id);
    for (op, operation) in operations(&body)? {
        let value = operation.get("value");
        let path = operation.get("path").and_then(Value::as_str);
        match (op.as_str(), path) {
            ("add", Some(p)) if p.eq_ignore_ascii_case("members") => {
                let ids = member_ids(value, max)?;
                check_members_exist(&state, &ids)?;
                for m in &ids {
                    edit.add(&state.members, m);
                }
            }
            ("replace", Some(p)) if p.eq_ignore_ascii_case("members") => {
                let ids = member_ids(value, max)?;
                check_members_exist(&state, &ids)?;
                edit.clear();
                for m in &ids {
                    edit.add(&state.members, m);
                }
            }
            ("remove", Some(p)) if p.eq_ignore_ascii_case("members") => {
                match (value, state.config.value_list_removal) {
                    (None, _) | (Some(_), ValueListRemoval::RemoveAll) => edit.clear(),
                    (Some(_), ValueListRemoval::Refuse) => {
                        return Err(Failure::bad(
                            "invalidPath",
                            "remove of \"members\" takes a filter path (members[value eq \"…\"]), not a value",
                        ))
                    }
                    (Some(_), ValueListRemoval::Honour) => {
                        for m in &member_ids(value, max)? {
                            edit.remove(&state.members, m);
                        }
                    }
                }
            }
            ("remove", Some(p)) if p.to_ascii_lowercase().starts_with("members[") => {
                let id = p
                    .strip_suffix(']')
                    .map(|p| &p["members[".len()..])
                    .and_then(parse_eq_filter)
                    .filter(|(attr, _)| attr.eq_ignore_ascii_case("value"))
                    .map(|(_, id)| id)
                    .ok_or_else(|| {
                        Failure::bad("invalidPath", format!("unsupported path {p:?}"))
                    })?;
                edit.remove(&state.members, &id);
            }
            ("replace", Some(p)) if p.eq_ignore_ascii_case("displayName") => {
                group.display_name = group_name(
                    value.unwrap_or(&Value::Null),
                    Some(&state.group_names),
                    Some(&id),
                )?;
            }
            ("replace", None) => {
                let value = object("value", value.unwrap_or(&Value::Null))?;
                for (key, value) in value {
                    match key.as_str() {
                        "displayName" => {
                            group.display_name =
                                group_name(value, Some(&state.group_names), Some(&id))?;
                        }
                        "id" | "schemas" => {}
                        _ => {
                            return Err(Failure::bad(
                                "invalidPath",
                                format!("unsupported attribute {key:?}"),
                            ))
                        }
                    }
                }
            }
            ("add" | "remove" | "replace", Some(p)) => {
                return Err(Failure::bad(
                    "invalidPath",
                    format!("unsupported path {p:?} for {op}"),
                ))
            }
            _ => {
                return Err(Failure::bad(
                    "invalidValue",
                    format!("unsupported operation {op:?}"),
                ))
            }
        }
    }
    group.last_modified = state.now();
    let old_name = &state.groups[index].display_name;
    if *old_name != group.display_name {
        let old_name = old_name.clone();
        state.group_names.rekey(&old_name, &group.display_name, &id);
    }
    state.groups.replace(index, group);
    state.members.apply(edit);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_group(
    AxumState(state): AxumState<Shared>,
    Path((dir, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let mut state = lock(&state);
    scim_guard(&state, &headers, &dir)?;
    let index = state
        .group_index(&id)
        .ok_or_else(|| Failure::not_found("group", &id))?;
    let group = state.groups.remove(index);
    state.group_names.remove(&group.display_name, &id);
    state.members.remove_group(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------------
// Organization admin API

/// Cursors are opaque to clients; inside, they are an offset. Like the real ones they are base64
/// and hold `+`, `/` and `=`, so a client that encodes one twice (`%252B…`) is caught: the fake
/// answers it as the admin API does, 400 "Invalid page cursor".
fn cursor_for(offset: usize) -> String {
    use base64::Engine as _;
    format!(
        "+/8={}",
        base64::engine::general_purpose::STANDARD.encode(format!("offset:{offset}"))
    )
}

fn offset_of(cursor: Option<&str>) -> Result<usize, Failure> {
    use base64::Engine as _;
    match cursor {
        None | Some("") => Ok(0),
        Some(cursor) => cursor
            .strip_prefix("+/8=")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix("offset:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| Failure::admin(StatusCode::BAD_REQUEST, "Invalid page cursor")),
    }
}

/// A cursor as a query value in a link (percent-encoded once).
fn cursor_param(cursor: &str) -> String {
    let mut url = url::Url::parse("http://x/").expect("a URL");
    url.query_pairs_mut().append_pair("cursor", cursor);
    url.query().unwrap_or_default().to_string()
}

async fn org_users(
    AxumState(state): AxumState<Shared>,
    Path(org): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let state = lock(&state);
    org_guard(&state, &headers, &org)?;
    let offset = offset_of(query.get("cursor").map(String::as_str))?;
    let size = state.config.org_page_size.max(1);
    let data: Vec<Value> = state
        .accounts
        .iter()
        .skip(offset)
        .take(size)
        .map(|a| state.account_json(a))
        .collect();
    let url = format!("{}/admin/v1/orgs/{org}/users", state.base_url);
    let self_url = match query.get("cursor") {
        Some(cursor) => format!("{url}?{}", cursor_param(cursor)),
        None => url.clone(),
    };
    let mut links = json!({ "self": self_url });
    if offset + size < state.accounts.len() {
        // The next page as a link, its cursor encoded once.
        links["next"] = json!(format!(
            "{url}?{}",
            cursor_param(&cursor_for(offset + size))
        ));
    } else if state.config.explicit_nulls {
        links["next"] = Value::Null;
    }
    let body = json!({ "data": data, "links": links, "meta": { "total": state.accounts.len() } });
    Ok(Json(body).into_response())
}

/// `GET /admin/v1/orgs/{org}/domains`: the organization's domains and their claim status (one page).
async fn org_domains(
    AxumState(state): AxumState<Shared>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    org_guard(&state, &headers, &org)?;
    let data: Vec<Value> = state
        .config
        .verified_domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({"id": format!("dom-{i}"), "type": "domains",
                   "attributes": {"name": d, "claim": {"type": "dns", "status": "VERIFIED"}}})
        })
        .collect();
    Ok(Json(json!({ "data": data, "links": {} })).into_response())
}

async fn search_users(
    AxumState(state): AxumState<Shared>,
    Path((org, dir)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut state = lock(&state);
    org_guard(&state, &headers, &org)?;
    let ours = state.config.directory_id.clone();
    if dir != "-"
        && dir != ours
        && !state
            .config
            .other_directories
            .iter()
            .any(|(id, _)| *id == dir)
    {
        return Err(Failure::admin(
            StatusCode::NOT_FOUND,
            format!("directory {dir} not found"),
        ));
    }
    let body = json_body(&headers, &body)?;
    state
        .search_limits
        .push(body.get("limit").and_then(Value::as_u64));
    let roles: Option<Vec<&str>> = body
        .get("roleIds")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect());
    if let Some(roles) = &roles {
        let unknown: Vec<&&str> = roles
            .iter()
            .filter(|r| !KNOWN_ROLE_IDS.contains(*r))
            .collect();
        if let (Some(first), UnknownRoleIds::Refuse) =
            (unknown.first(), state.config.unknown_role_ids)
        {
            return Err(Failure::admin(
                StatusCode::BAD_REQUEST,
                format!("roleIds: {first:?} is not a valid role id"),
            ));
        }
    }
    let expand: Vec<&str> = body
        .get("expand")
        .and_then(Value::as_array)
        .map(|e| e.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let offset = offset_of(body.get("cursor").and_then(Value::as_str))?;
    let size = body
        .get("limit")
        .and_then(Value::as_u64)
        .map_or(state.config.org_page_size, |l| {
            usize::try_from(l).unwrap_or(usize::MAX)
        })
        .clamp(1, state.config.org_page_size.max(1));
    let matching: Vec<&OrgAccount> = state
        .accounts
        .iter()
        .filter(|a| match dir.as_str() {
            "-" => true,
            d if d == ours => a.directory.is_none(),
            d => a.directory.as_deref() == Some(d),
        })
        .filter(|a| {
            // An unknown id (with `Ignore`) matches nobody.
            roles
                .as_ref()
                .is_none_or(|roles| roles.iter().any(|r| a.roles.contains(*r)))
        })
        .collect();
    let data: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|a| {
            let mut v = json!({
                "accountId": a.account_id,
                "email": a.email,
                "name": a.name,
                "accountStatus": a.status,
            });
            if expand.contains(&"platformRoles") {
                v["platformRoles"] = json!(a.roles);
            }
            v
        })
        .collect();
    let next = (offset + size < matching.len()).then(|| cursor_for(offset + size));
    Ok(Json(json!({ "data": data, "links": { "next": next } })).into_response())
}

/// `GET /admin/v2/orgs/{org}/directories`: this SCIM directory and the other ones (one page).
async fn org_directories(
    AxumState(state): AxumState<Shared>,
    Path(org): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    org_guard(&state, &headers, &org)?;
    let mut data =
        vec![json!({"directoryId": state.config.directory_id, "name": "idsync directory"})];
    for (id, name) in &state.config.other_directories {
        data.push(json!({"directoryId": id, "name": name}));
    }
    Ok(Json(json!({ "data": data, "links": {} })).into_response())
}

/// `GET /admin/api-access/v1/orgs/{org}/api-tokens`: every managed user's API tokens, in pages of
/// `org_page_size` with cursors.
async fn token_inventory(
    AxumState(state): AxumState<Shared>,
    Path(org): Path<String>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let state = lock(&state);
    org_guard(&state, &headers, &org)?;
    if !state.config.token_inventory {
        return Err(Failure::admin(
            StatusCode::FORBIDDEN,
            "the API token inventory needs the read:tokens:admin scope and Atlassian Guard",
        ));
    }
    let offset = offset_of(query.get("cursor").map(String::as_str))?;
    let size = state.config.org_page_size.max(1);
    let all: Vec<Value> = state
        .accounts
        .iter()
        .flat_map(|a| {
            a.api_tokens.iter().map(move |t| {
                json!({
                    "id": t.id,
                    "label": t.label,
                    "status": "ACTIVE",
                    "createdAt": t.created_at,
                    "lastActiveAt": t.last_access,
                    "user": {"id": a.account_id, "name": a.name, "email": a.email},
                })
            })
        })
        .collect();
    let data: Vec<Value> = all.iter().skip(offset).take(size).cloned().collect();
    let mut links = json!({});
    if offset + size < all.len() {
        links["next"] = json!(cursor_for(offset + size));
    } else if state.config.explicit_nulls {
        links["next"] = Value::Null;
    }
    Ok(Json(json!({ "data": data, "links": links })).into_response())
}

/// The user-management API refuses keys created with scopes.
fn unscoped(state: &State) -> Result<(), Failure> {
    if state.config.scoped_org_key {
        Err(Failure::admin(
            StatusCode::FORBIDDEN,
            "this API key has scopes; the user management API needs the manage:org permission of a key without scopes",
        ))
    } else {
        Ok(())
    }
}

async fn list_api_tokens(
    AxumState(state): AxumState<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    check_token(&headers, &state.config.org_token)?;
    unscoped(&state)?;
    let index = state
        .account_index(&account)
        .ok_or_else(|| Failure::admin(StatusCode::NOT_FOUND, format!("no account {account}")))?;
    let tokens: Vec<Value> = state.accounts[index]
        .api_tokens
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "label": t.label,
                "createdAt": t.created_at,
                "lastAccess": t.last_access,
            })
        })
        .collect();
    Ok(Json(Value::Array(tokens)).into_response())
}

async fn delete_api_token(
    AxumState(state): AxumState<Shared>,
    Path((account, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let mut state = lock(&state);
    check_token(&headers, &state.config.org_token)?;
    unscoped(&state)?;
    let index = state
        .account_index(&account)
        .ok_or_else(|| Failure::admin(StatusCode::NOT_FOUND, format!("no account {account}")))?;
    let tokens = &mut state.accounts[index].api_tokens;
    let position = tokens
        .iter()
        .position(|t| t.id == token)
        .ok_or_else(|| Failure::admin(StatusCode::NOT_FOUND, format!("no token {token}")))?;
    tokens.remove(position);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Page faults in this fake's dialects: a SCIM `ListResponse` (`Resources`, `totalResults`) and
/// an admin API page (`data`, `meta.total`).
fn page_dialect(
    kind: crate::PageFaultKind,
    body: &mut Value,
    _headers: &mut axum::http::HeaderMap,
) -> bool {
    if kind == crate::PageFaultKind::PastEnd {
        return if body.get("totalResults").is_some() {
            crate::lower(body.get_mut("totalResults"))
        } else {
            crate::lower(body.pointer_mut("/meta/total"))
        };
    }
    let field = if body.get("Resources").is_some() {
        "Resources"
    } else {
        "data"
    };
    match body.get_mut(field) {
        Some(Value::Array(items)) => crate::cut_items(kind, items),
        _ => false,
    }
}

/// Whether a listing asks to leave `members` out (`excludedAttributes=members`, RFC 7644 §3.9: a
/// comma-separated list, case-insensitive).
fn excludes_members(query: &HashMap<String, String>) -> bool {
    query.get("excludedAttributes").is_some_and(|x| {
        x.split(',')
            .any(|a| a.trim().eq_ignore_ascii_case("members"))
    })
}
