//! A stateful fake of the Google Workspace Admin SDK Directory API (users, groups, members) and of
//! Google's OAuth 2.0 token endpoint for service accounts with domain-wide delegation.
//!
//! - `POST /token` stands for `https://oauth2.googleapis.com/token`: the JWT-bearer grant, whose
//!   assertion is an RS256 JWT signed by the service account (`iss`), naming the admin to
//!   impersonate (`sub`), the scopes (`scope`, space-separated) and `{base_url}/token` (`aud`);
//! - the Directory API lives under `/admin/directory/v1` and wants `Authorization: Bearer`; a token
//!   lasts `token_ttl` (`expires_in`) or, for tests, a number of requests (`token_ttl_requests`),
//!   and an expired one is 401 `authError` "Request had invalid authentication credentials.";
//! - lists page by `maxResults` and an opaque `pageToken` (`nextPageToken` in the body, absent on
//!   the last page). A token is `p.` and the hex of the sort key of the page's last item, so paging
//!   is stable while the directory changes; a token of another listing is 400;
//! - errors are `{"error":{"code","message","errors":[{"reason","domain","message"}],"status"}}`,
//!   the token endpoint's OAuth 2.0 `{"error","error_description"}`.
//!
//! Unset fields are left out, as Google's JSON APIs do (Google JSON Style Guide: "Consider removing
//! empty or null values"; the Directory API reference shows no field as nullable, and documents
//! `nextPageToken` as absent on the last page). With [`FakeGoogleConfig::explicit_nulls`] every
//! unset optional field is sent as `null` instead (`name.familyName`, `organizations`, an
//! organization's unset fields, `externalIds`, `relations`, `customSchemas`, a group's
//! `description`, a CUSTOMER member's `email`, an empty page's items, the last page's
//! `nextPageToken`…), to check that idsync reads both alike.
//!
//! The shared [`FaultLayer`] sits in front; its injected errors use the Google error shape.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    extract::{rejection::FormRejection, Path, Request, State as AxumState},
    http::{header, HeaderMap, Method, StatusCode, Uri},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Json, Router,
};
use serde_json::{json, Map, Value};

use crate::{
    bind,
    directory::{KeyIndex, Memberships, Record, Table},
    lock,
    oauth::{self, AssertionRules},
    serve, FaultLayer, Faults, IssuedTokens, RequestLog, Server, TokenCheck,
};

pub const SCOPE_USER_READONLY: &str =
    "https://www.googleapis.com/auth/admin.directory.user.readonly";
pub const SCOPE_GROUP_READONLY: &str =
    "https://www.googleapis.com/auth/admin.directory.group.readonly";
pub const SCOPE_MEMBER_READONLY: &str =
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly";
/// Every scope a token request must ask for.
pub const REQUIRED_SCOPES: [&str; 3] = [
    SCOPE_USER_READONLY,
    SCOPE_GROUP_READONLY,
    SCOPE_MEMBER_READONLY,
];
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const DIRECTORY: &str = "/admin/directory/v1";
const CLOCK_SKEW_SECS: u64 = 60;

#[derive(Clone, Debug)]
pub struct FakeGoogleConfig {
    /// The service account: the `iss` of assertions.
    pub service_account: String,
    /// The admin the service account may impersonate: the `sub` of assertions.
    pub admin: String,
    /// The service account's public key (PEM), verifying RS256 assertions.
    pub public_key_pem: String,
    /// How long an access token lasts (`expires_in`; Google's: about an hour).
    pub token_ttl: Duration,
    /// A token stops working after authorizing this many Directory requests; `None`: only time.
    pub token_ttl_requests: Option<usize>,
    /// A delay applied to every request.
    pub latency: Duration,
    /// The most items one page of any listing holds, whatever `maxResults` asks for (a test knob:
    /// Google honours `maxResults`; small pages let a test see paging with few items).
    pub page_cap: usize,
    /// Sends every unset optional field as an explicit `null` instead of leaving it out.
    pub explicit_nulls: bool,
}

impl Default for FakeGoogleConfig {
    fn default() -> FakeGoogleConfig {
        FakeGoogleConfig {
            service_account: "idsync@proj.iam.gserviceaccount.com".into(),
            admin: "admin@example.com".into(),
            public_key_pem: oauth::TEST_PUBLIC_KEY_PEM.into(),
            token_ttl: Duration::from_secs(3599),
            token_ttl_requests: None,
            latency: Duration::ZERO,
            page_cap: usize::MAX,
            explicit_nulls: false,
        }
    }
}

/// The customer id of the fake Workspace.
pub const CUSTOMER_ID: &str = "C0fake000";

/// A user of the Workspace; change fields through [`FakeGoogle::update_user`].
#[derive(Clone, Debug, Default)]
pub struct GUser {
    pub id: String,
    pub primary_email: String,
    pub given_name: String,
    pub family_name: String,
    pub suspended: bool,
    pub archived: bool,
    pub is_admin: bool,
    pub org_unit_path: String,
    pub title: Option<String>,
    pub department: Option<String>,
    /// `externalIds` entries, rendered as they are.
    pub external_ids: Vec<Value>,
    pub last_login_time: String,
}

impl GUser {
    /// The user resource; `nulls`: unset optional fields as `null` rather than left out.
    fn json(&self, nulls: bool) -> Value {
        let full = format!("{} {}", self.given_name, self.family_name);
        // Google requires both names; the fake lets them be empty (sent as "", or as null).
        let name = |n: &str| {
            if nulls && n.is_empty() {
                Value::Null
            } else {
                json!(n)
            }
        };
        let mut user = json!({
            "kind": "admin#directory#user",
            "id": self.id,
            "primaryEmail": self.primary_email,
            "name": {"givenName": name(&self.given_name), "familyName": name(&self.family_name),
                     "fullName": full.trim()},
            "isAdmin": self.is_admin,
            "suspended": self.suspended,
            "archived": self.archived,
            "orgUnitPath": self.org_unit_path,
            "lastLoginTime": self.last_login_time,
            "customerId": CUSTOMER_ID,
        });
        if self.title.is_some() || self.department.is_some() {
            let mut org = json!({"primary": true, "customType": ""});
            if let Some(title) = &self.title {
                org["title"] = json!(title);
            }
            if let Some(department) = &self.department {
                org["department"] = json!(department);
            }
            if nulls {
                for key in [
                    "title",
                    "department",
                    "costCenter",
                    "description",
                    "name",
                    "location",
                ] {
                    org.as_object_mut()
                        .expect("an object")
                        .entry(key)
                        .or_insert(Value::Null);
                }
            }
            user["organizations"] = json!([org]);
        }
        if !self.external_ids.is_empty() {
            user["externalIds"] = json!(self.external_ids);
        }
        if nulls {
            let user = user.as_object_mut().expect("an object");
            for key in [
                "organizations",
                "externalIds",
                "relations",
                "customSchemas",
                "phones",
                "addresses",
                "emails",
                "thumbnailPhotoUrl",
                "recoveryEmail",
            ] {
                user.entry(key).or_insert(Value::Null);
            }
        }
        user
    }
}

/// A direct member of a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GMember {
    User(String),
    Group(String),
    /// "Whole account": every user of the customer, listed as one member of type CUSTOMER.
    Customer,
    /// A user outside the Workspace (type USER, with an id and an email the users listing lacks).
    External {
        id: String,
        email: String,
    },
}

impl GMember {
    /// The member's key in [`State::members`]: a user's id as it is (so the groups of a user are
    /// those of its id), the others with a prefix.
    fn key(&self) -> String {
        match self {
            GMember::User(id) => id.clone(),
            GMember::Group(id) => format!("group:{id}"),
            GMember::Customer => "customer".to_owned(),
            GMember::External { id, .. } => format!("external:{id}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GGroup {
    pub id: String,
    pub email: String,
    pub name: String,
}

impl Record for GUser {
    type Id = str;

    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for GGroup {
    type Id = str;

    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug)]
pub struct State {
    pub config: FakeGoogleConfig,
    pub base_url: String,
    /// In creation order, which is id order (ids are a counter). Change a primary email through
    /// [`FakeGoogle::update_user`], which keeps `user_emails` in step.
    pub users: Table<GUser>,
    /// In creation order, which is id order.
    pub groups: Table<GGroup>,
    /// Primary emails to user ids.
    user_emails: KeyIndex,
    /// Group emails to group ids.
    group_emails: KeyIndex,
    /// Direct members of each group (keyed by [`GMember::key`]), and the groups of each member.
    members: Memberships,
    /// The emails of members from outside the Workspace, by member id.
    externals: HashMap<String, String>,
    tokens: IssuedTokens,
    tokens_issued: usize,
    per_user_calls: usize,
    quota_errors: usize,
    next_id: u64,
}

impl State {
    fn user_by_key(&self, key: &str) -> Option<&GUser> {
        self.users
            .get(key)
            .or_else(|| first(&self.users, self.user_emails.ids(key)))
    }

    fn group_by_key(&self, key: &str) -> Option<&GGroup> {
        self.groups
            .get(key)
            .or_else(|| first(&self.groups, self.group_emails.ids(key)))
    }

    /// The member with this [`GMember::key`].
    fn member(&self, key: &str) -> GMember {
        if let Some(id) = key.strip_prefix("group:") {
            GMember::Group(id.to_owned())
        } else if let Some(id) = key.strip_prefix("external:") {
            GMember::External {
                id: id.to_owned(),
                email: self.externals[id].clone(),
            }
        } else if key == "customer" {
            GMember::Customer
        } else {
            GMember::User(key.to_owned())
        }
    }

    /// The direct members of a group, in the order they sort in (users, groups, the customer,
    /// outside users; each by id).
    fn direct_members(&self, group: &str) -> BTreeSet<GMember> {
        self.members
            .members(group)
            .map(|key| self.member(key))
            .collect()
    }

    fn user_id(&self, email: &str) -> String {
        self.user_by_key(email)
            .unwrap_or_else(|| panic!("no user {email}"))
            .id
            .clone()
    }

    /// Every user reachable from a group through nested groups, once each.
    fn derived_users(&self, group: &GGroup) -> BTreeSet<GMember> {
        let (mut users, mut seen, mut todo) = (BTreeSet::new(), HashSet::new(), vec![group]);
        while let Some(g) = todo.pop() {
            if !seen.insert(g.id.clone()) {
                continue;
            }
            for member in &self.direct_members(&g.id) {
                match member {
                    GMember::Group(id) => todo.extend(self.groups.get(id)),
                    other => {
                        users.insert(other.clone());
                    }
                }
            }
        }
        users
    }

    fn member_json(&self, member: &GMember) -> Option<(String, Value)> {
        let (id, email, kind) = match member {
            GMember::User(id) => (id, &self.users.get(id)?.primary_email, "USER"),
            GMember::Group(id) => (id, &self.groups.get(id)?.email, "GROUP"),
            GMember::External { id, email } => (id, email, "USER"),
            GMember::Customer => {
                // No email: the member is the whole customer.
                let mut body = json!({"kind": "admin#directory#member", "id": CUSTOMER_ID,
                                  "role": "MEMBER", "type": "CUSTOMER", "status": "ACTIVE"});
                if self.config.explicit_nulls {
                    body["email"] = Value::Null;
                    body["delivery_settings"] = Value::Null;
                }
                return Some((String::new(), body));
            }
        };
        let mut body = json!({"kind": "admin#directory#member", "id": id, "email": email,
                              "role": "MEMBER", "type": kind});
        if kind == "USER" {
            body["status"] = json!("ACTIVE");
        } else if self.config.explicit_nulls {
            body["status"] = Value::Null;
        }
        if self.config.explicit_nulls {
            body["delivery_settings"] = Value::Null;
        }
        Some((email.to_lowercase(), body))
    }
}

/// The first record (in creation order) of those with these ids, as a scan would find it.
fn first<'a, T: Record<Id = str>>(table: &'a Table<T>, ids: &[String]) -> Option<&'a T> {
    ids.iter()
        .filter_map(|id| table.position(id))
        .min()
        .map(|i| &table[i])
}

pub struct FakeGoogle {
    pub base_url: String,
    pub config: FakeGoogleConfig,
    pub state: Arc<Mutex<State>>,
    layer: Arc<FaultLayer>,
    _server: Server,
}

impl FakeGoogle {
    /// Serves the fake on 127.0.0.1:0; panics when the public key is not an RSA PEM.
    pub async fn start(config: FakeGoogleConfig) -> FakeGoogle {
        oauth::rsa_key(&config.public_key_pem, "FakeGoogleConfig::public_key_pem");
        let (listener, base_url) = bind().await;
        let layer = Arc::new(
            FaultLayer::new(config.latency, google_error_response)
                .with_is_mutation(|m, p| *m != Method::GET && p != "/token")
                .with_pages(page_dialect),
        );
        let state = Arc::new(Mutex::new(State {
            config: config.clone(),
            base_url: base_url.clone(),
            users: Table::default(),
            groups: Table::default(),
            user_emails: KeyIndex::default(),
            group_emails: KeyIndex::default(),
            members: Memberships::default(),
            externals: HashMap::new(),
            tokens: IssuedTokens::default(),
            tokens_issued: 0,
            per_user_calls: 0,
            quota_errors: 0,
            next_id: 0,
        }));
        let server = serve(listener, router(state.clone()), layer.clone());
        FakeGoogle {
            base_url,
            config,
            state,
            layer,
            _server: server,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// `{base_url}/token`: the token endpoint, and the `aud` of assertions.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url)
    }

    /// Adds an active user named after the email; returns its id (21 digits, `1000…`).
    pub fn add_user(&self, email: &str) -> String {
        let mut state = self.state();
        assert!(state.user_by_key(email).is_none(), "user {email} exists");
        state.next_id += 1;
        let id = format!("1{:020}", state.next_id);
        let (given, family) = crate::names_from_email(email);
        let user = GUser {
            id: id.clone(),
            primary_email: email.to_owned(),
            given_name: given.unwrap_or_default(),
            family_name: family.unwrap_or_default(),
            org_unit_path: "/".into(),
            last_login_time: "1970-01-01T00:00:00.000Z".into(),
            ..GUser::default()
        };
        state.user_emails.insert(email, &id);
        state.users.push(user);
        id
    }

    /// Changes a user (by id or email) in place.
    pub fn update_user(&self, key: &str, change: impl FnOnce(&mut GUser)) {
        let mut state = self.state();
        let id = state.user_id(key);
        let user = state.users.get_mut(&id).expect("the user exists");
        let email = user.primary_email.clone();
        change(user);
        let new_email = user.primary_email.clone();
        state.user_emails.rekey(&email, &new_email, &id);
    }

    pub fn set_suspended(&self, email: &str, suspended: bool) {
        self.update_user(email, |u| u.suspended = suspended);
    }

    pub fn set_archived(&self, email: &str, archived: bool) {
        self.update_user(email, |u| u.archived = archived);
    }

    /// Renames a user: a new primary email, same id (memberships follow).
    pub fn set_email(&self, id: &str, email: &str) {
        self.update_user(id, |u| u.primary_email = email.to_owned());
    }

    pub fn remove_user(&self, key: &str) {
        let mut state = self.state();
        let id = state.user_id(key);
        let position = state.users.position(&id).expect("the user exists");
        let user = state.users.remove(position);
        state.user_emails.remove(&user.primary_email, &id);
        state.members.remove_member(&id);
    }

    /// Adds a group; `members` are user emails or `group:<group email>` of existing groups.
    /// Returns the group id.
    pub fn add_group(&self, name: &str, email: &str, members: &[&str]) -> String {
        let mut state = self.state();
        assert!(state.group_by_key(email).is_none(), "group {email} exists");
        let members: Vec<GMember> = members
            .iter()
            .map(|m| match m.strip_prefix("group:") {
                Some(g) => GMember::Group(
                    state
                        .group_by_key(g)
                        .unwrap_or_else(|| panic!("no group {g}"))
                        .id
                        .clone(),
                ),
                None => GMember::User(state.user_id(m)),
            })
            .collect();
        state.next_id += 1;
        let id = format!("03fake{:09}", state.next_id);
        let group = GGroup {
            id: id.clone(),
            email: email.to_owned(),
            name: name.to_owned(),
        };
        state.groups.push(group);
        state.group_emails.insert(email, &id);
        for member in &members {
            state.members.add(&id, &member.key());
        }
        id
    }

    /// Adds the whole account (a CUSTOMER member) to a group (id or email).
    pub fn add_customer_member(&self, group: &str) {
        let mut state = self.state();
        let id = state.group_by_key(group).expect("the group").id.clone();
        state.members.add(&id, &GMember::Customer.key());
    }

    /// Adds a user from outside the Workspace to a group (id or email); returns the member's id.
    pub fn add_external_member(&self, group: &str, email: &str) -> String {
        let mut state = self.state();
        state.next_id += 1;
        let member_id = format!("1{:020}", state.next_id);
        let id = state.group_by_key(group).expect("the group").id.clone();
        state.externals.insert(member_id.clone(), email.to_owned());
        let member = GMember::External {
            id: member_id.clone(),
            email: email.to_owned(),
        };
        state.members.add(&id, &member.key());
        member_id
    }

    /// Adds (`add`) or removes a member (`user email` or `group:<email>`) of a group (id or email).
    pub fn set_member(&self, group: &str, member: &str, add: bool) {
        let mut state = self.state();
        let member = match member.strip_prefix("group:") {
            Some(g) => GMember::Group(state.group_by_key(g).expect("the group").id.clone()),
            None => GMember::User(state.user_id(member)),
        };
        let id = state.group_by_key(group).expect("the group").id.clone();
        if add {
            state.members.add(&id, &member.key());
        } else {
            state.members.remove(&id, &member.key());
        }
    }

    pub fn requests(&self) -> Vec<RequestLog> {
        self.layer.requests()
    }

    /// How many responses page faults changed so far.
    pub fn page_faults_fired(&self) -> usize {
        self.layer.page_faults_fired()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.layer.set_faults(faults);
    }

    pub fn tokens_issued(&self) -> usize {
        self.state().tokens_issued
    }

    /// Makes the access tokens issued from now on (and those already issued) stop working after
    /// `n` authorized requests; `None`: only their lifetime ends them.
    pub fn set_token_ttl_requests(&self, n: Option<usize>) {
        self.state().config.token_ttl_requests = n;
    }

    /// Calls to `GET /admin/directory/v1/users/{userKey}`, which a connector should not make.
    pub fn per_user_calls(&self) -> usize {
        self.state().per_user_calls
    }

    /// The next `n` Directory API requests answer 403 `userRateLimitExceeded`.
    pub fn set_quota_errors(&self, n: usize) {
        self.state().quota_errors = n;
    }

    /// Invalidates every access token issued so far (they then get 401).
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error response: Google's JSON error shape, or an OAuth one for the token endpoint.
pub struct Failure(StatusCode, Value);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl Failure {
    fn google(status: StatusCode, message: &str, reason: &str, domain: &str) -> Failure {
        let status_name = match status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        };
        Failure(
            status,
            json!({"error": {"code": status.as_u16(), "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
                "status": status_name}}),
        )
    }

    fn invalid(what: &str) -> Failure {
        let message = format!("Invalid Input: {what}");
        Failure::google(StatusCode::BAD_REQUEST, &message, "invalid", "global")
    }

    fn oauth(status: StatusCode, error: &str, description: &str) -> Failure {
        Failure(
            status,
            json!({"error": error, "error_description": description}),
        )
    }
}

fn google_error_response(status: StatusCode, detail: &str) -> Response {
    let (reason, domain) = match status {
        StatusCode::TOO_MANY_REQUESTS => ("rateLimitExceeded", "usageLimits"),
        StatusCode::SERVICE_UNAVAILABLE => ("backendError", "global"),
        _ => ("internalError", "global"),
    };
    Failure::google(status, detail, reason, domain).into_response()
}

// ---------------------------------------------------------------------------------------------
// Routes

type Shared = Arc<Mutex<State>>;
type Reply = Result<Response, Failure>;

fn router(state: Shared) -> Router {
    let directory = Router::new()
        .route("/users", get(list_users))
        .route("/users/{key}", get(get_user))
        .route("/groups", get(list_groups_by))
        .route("/groups/{key}/members", get(list_members))
        .route("/groups/{key}/hasMember/{member}", get(has_member))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            directory_gate,
        ));
    Router::new()
        .route("/token", post(token))
        .nest(DIRECTORY, directory)
        .fallback(|uri: Uri| async move {
            let message = format!("Not Found: {}", uri.path());
            Failure::google(StatusCode::NOT_FOUND, &message, "notFound", "global")
        })
        .with_state(state)
}

/// Quota errors first, then the bearer token, for every Directory API request.
async fn directory_gate(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    {
        let mut state = lock(&state);
        if state.quota_errors > 0 {
            state.quota_errors -= 1;
            return Failure::google(
                StatusCode::FORBIDDEN,
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per \
                 user' of service 'admin.googleapis.com' for consumer 'project_number:1'.",
                "userRateLimitExceeded",
                "usageLimits",
            )
            .into_response();
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let (ttl, uses) = (state.config.token_ttl, state.config.token_ttl_requests);
        if !token.is_some_and(|t| state.tokens.check(t, ttl, uses) == TokenCheck::Valid) {
            let mut failure = Failure::google(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials.",
                "authError",
                "global",
            );
            failure.1["error"]["errors"][0]["message"] = json!("Invalid Credentials");
            return failure.into_response();
        }
    }
    next.run(request).await
}

/// The decoded query parameters.
fn params(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .and_then(|q| url::Url::parse(&format!("http://fake/?{q}")).ok())
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn max_results(params: &[(String, String)], default: usize, max: usize) -> Result<usize, Failure> {
    match param(params, "maxResults") {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Failure::invalid("maxResults")),
    }
}

fn encode_token(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("p.{hex}")
}

fn decode_token(token: &str) -> Option<String> {
    let hex = token.strip_prefix("p.")?;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// One page of `items` (sorted by key) after the `pageToken`; the body gets `field` and
/// `nextPageToken` when more follow.
/// One page of a listing sorted by key; only the items on the page are rendered.
fn page<T>(
    params: &[(String, String)],
    kind: &str,
    field: &str,
    mut items: Vec<(String, T)>,
    limit: usize,
    nulls: bool,
    render: impl Fn(T) -> Value,
) -> Reply {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let after = match param(params, "pageToken").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(decode_token(t).ok_or_else(|| Failure::invalid("pageToken"))?),
    };
    let mut rest = items
        .into_iter()
        .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
        .peekable();
    let mut body = Map::new();
    body.insert("kind".into(), json!(kind));
    let mut page = Vec::new();
    let mut last = String::new();
    while page.len() < limit {
        let Some((key, value)) = rest.next() else {
            break;
        };
        page.push(render(value));
        last = key;
    }
    if !page.is_empty() {
        body.insert(field.into(), Value::Array(page));
    } else if nulls {
        body.insert(field.into(), Value::Null);
    }
    if rest.peek().is_some() {
        body.insert("nextPageToken".into(), json!(encode_token(&last)));
    } else if nulls {
        body.insert("nextPageToken".into(), Value::Null);
    }
    Ok(Json(Value::Object(body)).into_response())
}

fn require_customer(params: &[(String, String)]) -> Result<Option<String>, Failure> {
    match (param(params, "customer"), param(params, "domain")) {
        (Some(c), _) if !c.is_empty() => Ok(None),
        (_, Some(d)) if !d.is_empty() => Ok(Some(d.to_lowercase())),
        _ => Err(Failure::google(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "badRequest",
            "global",
        )),
    }
}

async fn list_users(AxumState(state): AxumState<Shared>, uri: Uri) -> Reply {
    let params = params(&uri);
    let domain = require_customer(&params)?;
    let limit = max_results(&params, 100, 500)?;
    if param(&params, "projection").is_some_and(|p| !["basic", "full", "custom"].contains(&p)) {
        return Err(Failure::invalid("projection"));
    }
    let state = lock(&state);
    let limit = limit.min(state.config.page_cap);
    let users = state
        .users
        .iter()
        .filter(|u| {
            domain
                .as_ref()
                .is_none_or(|d| u.primary_email.to_lowercase().ends_with(&format!("@{d}")))
        })
        .map(|u| (u.primary_email.to_lowercase(), u))
        .collect();
    page(
        &params,
        "admin#directory#users",
        "users",
        users,
        limit,
        state.config.explicit_nulls,
        |u| u.json(state.config.explicit_nulls),
    )
}

async fn get_user(AxumState(state): AxumState<Shared>, Path(key): Path<String>) -> Reply {
    let mut state = lock(&state);
    state.per_user_calls += 1;
    let user = state.user_by_key(&key).ok_or_else(|| {
        let message = "Resource Not Found: userKey";
        Failure::google(StatusCode::NOT_FOUND, message, "notFound", "global")
    })?;
    Ok(Json(user.json(state.config.explicit_nulls)).into_response())
}

async fn list_groups(AxumState(state): AxumState<Shared>, uri: Uri) -> Reply {
    let params = params(&uri);
    let domain = require_customer(&params)?;
    let limit = max_results(&params, 200, 200)?;
    let state = lock(&state);
    let limit = limit.min(state.config.page_cap);
    let groups = state
        .groups
        .iter()
        .filter(|g| {
            domain
                .as_ref()
                .is_none_or(|d| g.email.to_lowercase().ends_with(&format!("@{d}")))
        })
        .map(|g| {
            let description = if state.config.explicit_nulls {
                Value::Null
            } else {
                json!("")
            };
            let mut body = json!({"kind": "admin#directory#group", "id": g.id, "email": g.email,
                "name": g.name, "description": description, "adminCreated": true,
                "directMembersCount": state.members.count(&g.id).to_string()});
            if state.config.explicit_nulls {
                body["aliases"] = Value::Null;
                body["nonEditableAliases"] = Value::Null;
            }
            (g.email.to_lowercase(), body)
        })
        .collect();
    page(
        &params,
        "admin#directory#groups",
        "groups",
        groups,
        limit,
        state.config.explicit_nulls,
        |v| v,
    )
}

async fn list_members(
    AxumState(state): AxumState<Shared>,
    Path(key): Path<String>,
    uri: Uri,
) -> Reply {
    let params = params(&uri);
    let limit = max_results(&params, 200, 200)?;
    let derived = match param(&params, "includeDerivedMembership") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Failure::invalid("includeDerivedMembership")),
    };
    let state = lock(&state);
    let limit = limit.min(state.config.page_cap);
    let group = state.group_by_key(&key).ok_or_else(|| {
        let message = "Resource Not Found: groupKey";
        Failure::google(StatusCode::NOT_FOUND, message, "notFound", "global")
    })?;
    let members: Vec<(String, Value)> = if derived {
        state
            .derived_users(group)
            .into_iter()
            .filter_map(|m| state.member_json(&m))
            .collect()
    } else {
        state
            .direct_members(&group.id)
            .iter()
            .filter_map(|m| state.member_json(m))
            .collect()
    };
    page(
        &params,
        "admin#directory#members",
        "members",
        members,
        limit,
        state.config.explicit_nulls,
        |v| v,
    )
}

/// `POST /token`: the JWT-bearer grant of a service account with domain-wide delegation.
async fn token(
    AxumState(state): AxumState<Shared>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Reply {
    let bad = |error: &str, description: &str| {
        Failure::oauth(StatusCode::BAD_REQUEST, error, description)
    };
    let Form(form) = form.map_err(|_| bad("invalid_request", "Invalid form body."))?;
    if param(&form, "grant_type") != Some(JWT_BEARER_GRANT) {
        return Err(bad("unsupported_grant_type", "Invalid grant_type."));
    }
    let assertion = param(&form, "assertion")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("invalid_request", "Missing required parameter: assertion"))?;
    let mut state = lock(&state);
    let key = oauth::rsa_key(
        &state.config.public_key_pem,
        "FakeGoogleConfig::public_key_pem",
    );
    let token_url = format!("{}/token", state.base_url);
    let rules = AssertionRules {
        required: &["exp", "iss", "aud"],
        leeway: CLOCK_SKEW_SECS,
        ..AssertionRules::rs256(&token_url)
    };
    let claims = oauth::check_assertion(assertion, &key, &rules)
        .map_err(|e| bad("invalid_grant", &format!("Invalid JWT Signature. ({e})")))?;
    let claim = |name: &str| claims.str(name);
    if claim("iss") != state.config.service_account {
        return Err(bad("invalid_grant", "Invalid grant: account not found"));
    }
    if !claims.short_lived(3_600, CLOCK_SKEW_SECS) {
        return Err(bad(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
             timeframe. Check your iat and exp values in the JWT claim.",
        ));
    }
    let scopes: Vec<&str> = claim("scope").split_whitespace().collect();
    if REQUIRED_SCOPES.iter().any(|s| !scopes.contains(s)) {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_scope"}),
        ));
    }
    if !claim("sub").eq_ignore_ascii_case(&state.config.admin) {
        return Err(Failure::oauth(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not \
             authorized for any of the scopes requested.",
        ));
    }
    state.tokens_issued += 1;
    let access_token = format!(
        "ya29.fake{:04}{:016x}",
        state.tokens_issued,
        fastrand::u64(..)
    );
    state.tokens.issue(&access_token);
    Ok(Json(json!({"access_token": access_token,
                   "expires_in": state.config.token_ttl.as_secs(), "token_type": "Bearer"}))
    .into_response())
}

/// Page faults in the Directory API's dialect: items under `users`, `groups` or `members`; no
/// total is announced.
fn page_dialect(
    kind: crate::PageFaultKind,
    body: &mut Value,
    _headers: &mut axum::http::HeaderMap,
) -> bool {
    let field = ["users", "groups", "members"]
        .into_iter()
        .find(|f| body.get(*f).is_some());
    match field.and_then(|f| body.get_mut(f)) {
        Some(Value::Array(items)) => crate::cut_items(kind, items),
        _ => false,
    }
}

/// `groups.list` with `userKey` (an email or id): the groups the user is a direct member of
/// (customer and domain are then not needed), paged like the plain listing; without `userKey`,
/// the plain listing.
async fn list_groups_by(state: AxumState<Shared>, uri: Uri) -> Reply {
    let params = params(&uri);
    let Some(user_key) = param(&params, "userKey").map(String::from) else {
        return list_groups(state, uri).await;
    };
    let limit = max_results(&params, 200, 200)?;
    let st = lock(&state);
    let limit = limit.min(st.config.page_cap);
    let user = st.user_by_key(&user_key).ok_or_else(|| {
        Failure::google(
            StatusCode::NOT_FOUND,
            "Resource Not Found: userKey",
            "notFound",
            "global",
        )
    })?;
    let mut positions: Vec<usize> = st
        .members
        .groups_of(&user.id)
        .filter_map(|g| st.groups.position(g))
        .collect();
    positions.sort_unstable();
    let groups = positions
        .into_iter()
        .map(|i| &st.groups[i])
        .map(|g| {
            let body = json!({"kind": "admin#directory#group", "id": g.id, "email": g.email,
                "name": g.name, "directMembersCount": st.members.count(&g.id).to_string()});
            (g.email.to_lowercase(), body)
        })
        .collect();
    page(
        &params,
        "admin#directory#groups",
        "groups",
        groups,
        limit,
        st.config.explicit_nulls,
        |v| v,
    )
}

/// `members.hasMember`: whether the user (email or id) is a member of the group, directly or
/// through nested groups: `{"isMember": bool}`; an unknown group or user is 404.
async fn has_member(
    AxumState(state): AxumState<Shared>,
    Path((key, member)): Path<(String, String)>,
) -> Reply {
    let st = lock(&state);
    let not_found = |what: &str| {
        Failure::google(
            StatusCode::NOT_FOUND,
            &format!("Resource Not Found: {what}"),
            "notFound",
            "global",
        )
    };
    let group = st.group_by_key(&key).ok_or_else(|| not_found("groupKey"))?;
    let user = st
        .user_by_key(&member)
        .ok_or_else(|| not_found("memberKey"))?;
    let is = st
        .derived_users(group)
        .contains(&GMember::User(user.id.clone()));
    Ok(Json(json!({ "isMember": is })).into_response())
}
