//! A stateful fake of the Keycloak Admin REST API (Keycloak 17+ paths, plus the legacy `/auth`
//! prefix) and of its OpenID Connect token endpoint, as far as a read-only directory sync uses
//! them: users, groups, subgroups and group members, with client-credentials authentication.
//!
//! Shapes and quirks follow Keycloak 23+:
//!
//! - `POST /realms/{realm}/protocol/openid-connect/token` takes `grant_type=client_credentials`
//!   with the client's id and secret in the form or as HTTP Basic; errors are OAuth 2.0 errors
//!   `{"error","error_description"}`, an unknown realm is 404 `{"error":"Realm does not exist"}`;
//! - admin calls need `Authorization: Bearer <token>` (else 401 `{"error":"HTTP 401
//!   Unauthorized"}`, an expired token included); every other admin error is `{"error": "..."}`;
//! - a token lasts the realm's Access Token Lifespan (`expires_in`, 300 s by default), or, for
//!   tests, a number of requests ([`FakeKeycloakConfig::token_ttl_requests`]);
//! - listings are JSON arrays paged by `first` (offset, default 0) and `max`; `max` defaults to
//!   100, except `/groups/{id}/children` whose default is 10; every page is also capped at
//!   `max_cap` whatever `max` asks for (real Keycloak does not cap: the cap lets tests check that
//!   a client pages until it gets an empty page rather than until a page is short);
//! - `GET /groups` without `search` returns top-level groups only, each with `subGroups: []` and
//!   a `subGroupCount`; subgroups must be fetched through `/groups/{id}/children`;
//! - users are sorted by username, groups by name; usernames and emails are stored lowercased;
//! - service-account users are left out of `/users` and `/users/count`, but are group members;
//! - `GET /groups/count` returns `{"count": n}`, top-level groups only with `top=true`.
//!
//! With [`FakeKeycloakConfig::pre23`] it plays Keycloak 22 and older (Red Hat SSO 7.x is
//! Keycloak 18): `GET /groups` returns each top-level group with the whole tree below it in
//! `subGroups`, no group has a `subGroupCount`, and `/groups/{id}/children` does not exist (404).
//!
//! Unset fields are left out, as Keycloak does: its server serializes representations with
//! Jackson's `NON_NULL` inclusion (`org.keycloak.util.JsonSerialization`; the admin client's
//! `JacksonProvider` copies it "same like JSONSerialization class"), so a user without an email
//! has no `email` key, not `"email": null`. With [`FakeKeycloakConfig::explicit_nulls`] every unset
//! optional field is sent as `null` instead (as a proxy or an extension re-serializing with
//! default Jackson settings would), to check that idsync reads both alike.
//!
//! Injected faults (the shared [`FaultLayer`]) use the `{"error": ...}` shape.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    extract::{rejection::FormRejection, Path, Query, State as AxumState},
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Json, Router,
};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::{bind, lock, serve, FaultLayer, Faults, IssuedTokens, RequestLog, Server, TokenCheck};

/// `createdTimestamp` of the first user (2026-01-01T00:00:00Z, in ms); each later one is a
/// second later.
const EPOCH_MS: i64 = 1_767_225_600_000;
const DEFAULT_MAX: usize = 100;

#[derive(Clone, Debug)]
pub struct FakeKeycloakConfig {
    /// The realm whose users and groups the admin API serves.
    pub realm: String,
    /// The realm whose token endpoint issues tokens (e.g. `master`); `None`: the same realm.
    pub token_realm: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// The most items one page of any listing holds, whatever `max` asks for.
    pub max_cap: usize,
    /// The page size of `/groups/{id}/children` when the client gives no `max`.
    pub children_default_max: usize,
    /// The realm's Access Token Lifespan: the `expires_in` of tokens, and how long they work.
    pub token_ttl: Duration,
    /// A token stops working after authorizing this many admin requests; `None`: only time.
    pub token_ttl_requests: Option<usize>,
    /// A delay applied to every request.
    pub latency: Duration,
    /// Plays a server older than Keycloak 23: the tree inline in `subGroups`, no `/children`.
    pub pre23: bool,
    /// Sends every unset optional field as an explicit `null` (`email`, `firstName`, `lastName`,
    /// `attributes`, `serviceAccountClientId`, `federationLink`, a group's `parentId`,
    /// `attributes`, `description`, and before 23 `subGroupCount`, after it `subGroups`) instead
    /// of leaving it out, as Keycloak does.
    pub explicit_nulls: bool,
}

impl Default for FakeKeycloakConfig {
    fn default() -> FakeKeycloakConfig {
        FakeKeycloakConfig {
            realm: "acme".into(),
            token_realm: None,
            client_id: "idsync".into(),
            client_secret: "kc-secret-value".into(),
            max_cap: DEFAULT_MAX,
            children_default_max: 10,
            token_ttl: Duration::from_secs(300),
            token_ttl_requests: None,
            latency: Duration::ZERO,
            pre23: false,
            explicit_nulls: false,
        }
    }
}

impl FakeKeycloakConfig {
    pub fn token_realm(&self) -> &str {
        self.token_realm.as_deref().unwrap_or(&self.realm)
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub enabled: bool,
    pub email_verified: bool,
    pub created_timestamp: i64,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub service_account: bool,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    /// Direct members (user ids), in order of addition.
    pub members: Vec<String>,
}

/// The directory and the counters; reachable through [`FakeKeycloak::state`].
pub struct State {
    pub config: FakeKeycloakConfig,
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    /// Access tokens issued (and not revoked).
    pub tokens: IssuedTokens,
    pub tokens_issued: usize,
    pub user_groups_calls: usize,
    next_id: u64,
    /// Parent id (`None`: top level) -> ids of its child groups. Groups are added only through
    /// the fake, which keeps this in line.
    children: HashMap<Option<String>, Vec<String>>,
    /// User id -> ids of the groups it is a direct member of.
    groups_of: HashMap<String, Vec<String>>,
}

impl State {
    fn new_id(&mut self, kind: u32) -> String {
        self.next_id += 1;
        format!("{kind:08x}-0000-4000-8000-{:012x}", self.next_id)
    }

    fn user_by_email(&mut self, email: &str) -> &mut User {
        let email = email.to_lowercase();
        self.users
            .values_mut()
            .find(|u| u.email.as_deref() == Some(email.as_str()))
            .unwrap_or_else(|| panic!("no user with email {email}"))
    }

    fn path_of(&self, group: &Group) -> String {
        let mut path = format!("/{}", group.name);
        let mut parent = group.parent_id.as_deref();
        while let Some(p) = parent.and_then(|id| self.groups.get(id)) {
            path = format!("/{}{path}", p.name);
            parent = p.parent_id.as_deref();
        }
        path
    }

    /// The group with this path, found by walking down from the top.
    fn group_by_path(&self, path: &str) -> Option<&Group> {
        let mut found: Option<&Group> = None;
        for name in path.strip_prefix('/')?.split('/') {
            let parent = found.map(|g| g.id.as_str());
            found = Some(self.children(parent).into_iter().find(|g| g.name == name)?);
        }
        found
    }

    /// Children of `parent` (`None`: top level), sorted by name.
    fn children(&self, parent: Option<&str>) -> Vec<&Group> {
        let mut groups: Vec<&Group> = self
            .children
            .get(&parent.map(str::to_owned))
            .into_iter()
            .flatten()
            .filter_map(|id| self.groups.get(id))
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        groups
    }

    fn group_json(&self, group: &Group) -> Value {
        let mut rep = json!({
            "id": group.id,
            "name": group.name,
            "path": self.path_of(group),
            "subGroupCount": self.children(Some(&group.id)).len(),
            "subGroups": [],
            "access": {"view": true, "manage": true, "manageMembership": true},
        });
        if self.config.pre23 {
            // Keycloak 22 and older: the whole tree below, no count.
            rep.as_object_mut()
                .expect("an object")
                .remove("subGroupCount");
            rep["subGroups"] = self
                .children(Some(&group.id))
                .into_iter()
                .map(|g| self.group_json(g))
                .collect();
        }
        if let Some(parent) = &group.parent_id {
            rep["parentId"] = json!(parent);
        }
        if self.config.explicit_nulls {
            let rep = rep.as_object_mut().expect("an object");
            for key in ["parentId", "attributes", "description", "subGroupCount"] {
                rep.entry(key).or_insert(Value::Null);
            }
            if !self.config.pre23 {
                // 23+ lists subgroups through /children: no inline tree to send.
                rep.insert("subGroups".into(), Value::Null);
            }
        }
        rep
    }
}

/// A user representation; `nulls`: unset optional fields as `null` rather than left out.
fn user_json(user: &User, brief: bool, nulls: bool) -> Value {
    let mut rep = Map::new();
    rep.insert("id".into(), json!(user.id));
    rep.insert("username".into(), json!(user.username));
    for (key, value) in [
        ("email", &user.email),
        ("firstName", &user.first_name),
        ("lastName", &user.last_name),
    ] {
        if let Some(value) = value {
            rep.insert(key.into(), json!(value));
        } else if nulls {
            rep.insert(key.into(), Value::Null);
        }
    }
    rep.insert("enabled".into(), json!(user.enabled));
    rep.insert("emailVerified".into(), json!(user.email_verified));
    rep.insert("createdTimestamp".into(), json!(user.created_timestamp));
    rep.insert("totp".into(), json!(false));
    if !brief {
        if !user.attributes.is_empty() {
            rep.insert("attributes".into(), json!(user.attributes));
        } else if nulls {
            rep.insert("attributes".into(), Value::Null);
        }
        rep.insert("requiredActions".into(), json!([]));
        rep.insert("notBefore".into(), json!(0));
    }
    if user.service_account {
        rep.insert("serviceAccountClientId".into(), json!(user.username));
    } else if nulls {
        rep.insert("serviceAccountClientId".into(), Value::Null);
    }
    if nulls {
        rep.insert("federationLink".into(), Value::Null);
    }
    Value::Object(rep)
}

type Shared = Arc<Mutex<State>>;

/// The fake Keycloak server. Dropping it stops accepting connections.
pub struct FakeKeycloak {
    pub base_url: String,
    /// The configuration the fake started with; change `state().config` to change it live.
    pub config: FakeKeycloakConfig,
    pub state: Shared,
    layer: Arc<FaultLayer>,
    _server: Server,
}

impl FakeKeycloak {
    pub async fn start(config: FakeKeycloakConfig) -> FakeKeycloak {
        let (listener, base_url) = bind().await;
        let layer =
            Arc::new(FaultLayer::new(config.latency, error_response).with_pages(page_dialect));
        let state = Arc::new(Mutex::new(State {
            config: config.clone(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            tokens: IssuedTokens::default(),
            tokens_issued: 0,
            user_groups_calls: 0,
            next_id: 0,
            children: HashMap::new(),
            groups_of: HashMap::new(),
        }));
        let server = serve(listener, router(state.clone()), layer.clone());
        FakeKeycloak {
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

    /// `{base_url}/realms/{token realm}/protocol/openid-connect/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/realms/{}/protocol/openid-connect/token",
            self.base_url,
            self.config.token_realm()
        )
    }

    /// `{base_url}/admin/realms/{realm}`.
    pub fn admin_url(&self) -> String {
        format!("{}/admin/realms/{}", self.base_url, self.config.realm)
    }

    // Seeding. These panic on a conflict or an unknown name: a test that does that has a bug.

    /// Adds an enabled user, username = email (lowercased), named after the email; returns its id.
    pub fn add_user(&self, email: &str) -> String {
        let mut state = self.state();
        let email = email.to_lowercase();
        assert!(
            !state.users.values().any(|u| u.username == email),
            "seeding user {email}: the username is taken"
        );
        let (first_name, last_name) = crate::names_from_email(&email);
        let id = state.new_id(0x0000_00a1);
        let created_timestamp = EPOCH_MS + 1000 * state.users.len() as i64;
        state.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                username: email.clone(),
                email: Some(email),
                first_name,
                last_name,
                enabled: true,
                email_verified: true,
                created_timestamp,
                attributes: BTreeMap::new(),
                service_account: false,
            },
        );
        id
    }

    /// Adds an enabled user with only a username (Keycloak allows users without an email, unless
    /// the realm uses the email as username); listed in `/users`. Returns its id.
    pub fn add_user_without_email(&self, username: &str) -> String {
        let mut state = self.state();
        let username = username.to_lowercase();
        assert!(
            !state.users.values().any(|u| u.username == username),
            "seeding user {username}: the username is taken"
        );
        let id = state.new_id(0x0000_00a1);
        let created_timestamp = EPOCH_MS + 1000 * state.users.len() as i64;
        state.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                username,
                email: None,
                first_name: None,
                last_name: None,
                enabled: true,
                email_verified: false,
                created_timestamp,
                attributes: BTreeMap::new(),
                service_account: false,
            },
        );
        id
    }

    /// Adds the service-account user of a client (`service-account-{client_id}`, no email): left
    /// out of `/users` and `/users/count`, but it can be made a group member through its id with
    /// [`FakeKeycloak::add_member_id`].
    pub fn add_service_account(&self, client_id: &str) -> String {
        let mut state = self.state();
        let id = state.new_id(0x0000_00a1);
        let created_timestamp = EPOCH_MS + 1000 * state.users.len() as i64;
        state.users.insert(
            id.clone(),
            User {
                id: id.clone(),
                username: format!("service-account-{client_id}"),
                email: None,
                first_name: None,
                last_name: None,
                enabled: true,
                email_verified: false,
                created_timestamp,
                attributes: BTreeMap::new(),
                service_account: true,
            },
        );
        id
    }

    pub fn set_enabled(&self, email: &str, enabled: bool) {
        self.state().user_by_email(email).enabled = enabled;
    }

    /// Renames a user: same id, new email and username.
    pub fn set_email(&self, id: &str, email: &str) {
        let mut state = self.state();
        let user = state
            .users
            .get_mut(id)
            .unwrap_or_else(|| panic!("no user with id {id}"));
        user.email = Some(email.to_lowercase());
        user.username = email.to_lowercase();
    }

    /// Sets a single-valued attribute (Keycloak attributes are lists of strings).
    pub fn set_attribute(&self, email: &str, key: &str, value: &str) {
        self.state()
            .user_by_email(email)
            .attributes
            .insert(key.to_owned(), vec![value.to_owned()]);
    }

    /// Adds a group by path (`/Engineering`, `/Engineering/SRE`; the parent must exist) with
    /// these direct members; returns its id.
    pub fn add_group(&self, path: &str, member_emails: &[&str]) -> String {
        let mut state = self.state();
        let (parent_path, name) = path
            .rsplit_once('/')
            .filter(|(_, name)| path.starts_with('/') && !name.is_empty())
            .unwrap_or_else(|| panic!("seeding group {path}: not a /-separated path"));
        let parent_id = if parent_path.is_empty() {
            None
        } else {
            let parent = state
                .group_by_path(parent_path)
                .unwrap_or_else(|| panic!("seeding group {path}: no parent {parent_path}"));
            Some(parent.id.clone())
        };
        assert!(
            state.group_by_path(path).is_none(),
            "seeding group {path}: exists"
        );
        let members: Vec<String> = member_emails
            .iter()
            .map(|email| state.user_by_email(email).id.clone())
            .collect();
        let id = state.new_id(0x0000_00b2);
        for member in &members {
            state
                .groups_of
                .entry(member.clone())
                .or_default()
                .push(id.clone());
        }
        state
            .children
            .entry(parent_id.clone())
            .or_default()
            .push(id.clone());
        state.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                name: name.to_owned(),
                parent_id,
                members,
            },
        );
        id
    }

    /// Makes a user (by id, e.g. a service account) a direct member of a group (by id).
    pub fn add_member_id(&self, group_id: &str, user_id: &str) {
        let mut state = self.state();
        assert!(state.users.contains_key(user_id), "no user {user_id}");
        let group = state.groups.get_mut(group_id).expect("a known group id");
        group.members.push(user_id.to_owned());
        state
            .groups_of
            .entry(user_id.to_owned())
            .or_default()
            .push(group_id.to_owned());
    }

    /// Makes the user with this email a direct member of the group with this path, or not.
    pub fn set_member(&self, path: &str, email: &str, member: bool) {
        let mut state = self.state();
        let user_id = state.user_by_email(email).id.clone();
        let group_id = state
            .group_by_path(path)
            .unwrap_or_else(|| panic!("no group {path}"))
            .id
            .clone();
        let group = state.groups.get_mut(&group_id).expect("the group");
        group.members.retain(|m| *m != user_id);
        if member {
            group.members.push(user_id.clone());
        }
        let groups = state.groups_of.entry(user_id).or_default();
        groups.retain(|g| *g != group_id);
        if member {
            groups.push(group_id);
        }
    }

    /// Forgets every issued token, as if they had expired: the next admin call gets a 401.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
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

    /// Calls of `GET /users/{id}/groups`, which the connector must not use.
    pub fn user_groups_calls(&self) -> usize {
        self.state().user_groups_calls
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A Keycloak admin error, `{"error": message}`.
pub struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: &str) -> Failure {
    Failure(status, message.to_owned())
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = json!({ "error": code, "error_description": description });
    (status, Json(body)).into_response()
}

/// The body of an error injected by the fault layer.
fn error_response(status: StatusCode, detail: &str) -> Response {
    error(status, detail).into_response()
}

type Reply = Result<Response, Failure>;

// ---------------------------------------------------------------------------------------------
// Routes

fn router(state: Shared) -> Router {
    let routes: Router<Shared> = Router::new()
        .route("/realms/{realm}/protocol/openid-connect/token", post(token))
        .route("/admin/realms/{realm}/users", get(list_users_by))
        .route("/admin/realms/{realm}/users/count", get(count_users))
        .route("/admin/realms/{realm}/users/{id}", get(get_user))
        .route(
            "/admin/realms/{realm}/users/{id}/groups",
            get(user_groups_paged),
        )
        .route("/admin/realms/{realm}/groups", get(list_groups))
        .route("/admin/realms/{realm}/groups/count", get(count_groups))
        .route("/admin/realms/{realm}/groups/{id}", get(get_group))
        .route("/admin/realms/{realm}/groups/{id}/children", get(children))
        .route("/admin/realms/{realm}/groups/{id}/members", get(members));
    Router::new()
        .merge(routes.clone())
        .nest("/auth", routes)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: Uri) -> Failure {
    let message = format!(
        "RESTEASY003210: Could not find resource for full path: {}",
        uri.path()
    );
    error(StatusCode::NOT_FOUND, &message)
}

async fn token(
    AxumState(state): AxumState<Shared>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let mut state = lock(&state);
    if realm != state.config.token_realm() {
        return error(StatusCode::NOT_FOUND, "Realm does not exist").into_response();
    }
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing form parameter: grant_type",
        );
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(i, s)| (i.to_owned(), s.to_owned())));
    let (client_id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    if client_id.as_deref() != Some(state.config.client_id.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
    }
    if secret.as_deref() != Some(state.config.client_secret.as_str()) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Invalid client or Invalid client credentials",
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing form parameter: grant_type",
            )
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type",
            )
        }
    }
    let access_token: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(40)
        .collect();
    state.tokens.issue(&access_token);
    state.tokens_issued += 1;
    let body = json!({
        "access_token": access_token,
        "expires_in": state.config.token_ttl.as_secs(),
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// Checks the bearer token and the realm; returns the locked state.
fn admin<'a>(
    state: &'a Shared,
    headers: &HeaderMap,
    realm: &str,
) -> Result<MutexGuard<'a, State>, Failure> {
    let mut state = lock(state);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let (ttl, uses) = (state.config.token_ttl, state.config.token_ttl_requests);
    if !token.is_some_and(|t| state.tokens.check(t.trim(), ttl, uses) == TokenCheck::Valid) {
        return Err(error(StatusCode::UNAUTHORIZED, "HTTP 401 Unauthorized"));
    }
    if realm != state.config.realm {
        return Err(error(StatusCode::NOT_FOUND, "Realm not found."));
    }
    Ok(state)
}

/// `first`, `max` (capped) and `briefRepresentation` of a listing.
fn paging(
    query: &HashMap<String, String>,
    default_max: usize,
    cap: usize,
) -> Result<(usize, usize, bool), Failure> {
    let number = |name: &str, default: usize| match query.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid value for query parameter {name}: {v}"),
            )
        }),
    };
    let first = number("first", 0)?;
    let max = number("max", default_max)?.min(cap);
    let brief = query
        .get("briefRepresentation")
        .is_some_and(|v| v == "true");
    Ok((first, max, brief))
}

fn page<T>(items: Vec<T>, first: usize, max: usize) -> Vec<T> {
    items.into_iter().skip(first).take(max).collect()
}

fn json_reply(value: Value) -> Reply {
    Ok(Json(value).into_response())
}

fn group_not_found() -> Failure {
    error(StatusCode::NOT_FOUND, "Could not find group by id")
}

fn user_not_found() -> Failure {
    error(StatusCode::NOT_FOUND, "User not found")
}

async fn list_users(
    AxumState(state): AxumState<Shared>,
    Path(realm): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let state = admin(&state, &headers, &realm)?;
    let (first, max, brief) = paging(&query, DEFAULT_MAX, state.config.max_cap)?;
    let search = query
        .get("search")
        .map(|s| s.trim_matches('*').to_lowercase());
    let mut users: Vec<&User> = state
        .users
        .values()
        .filter(|u| !u.service_account)
        .filter(|u| {
            search.as_deref().is_none_or(|s| {
                [
                    &Some(u.username.clone()),
                    &u.email,
                    &u.first_name,
                    &u.last_name,
                ]
                .into_iter()
                .flatten()
                .any(|f| f.to_lowercase().contains(s))
            })
        })
        .collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let users: Vec<Value> = page(users, first, max)
        .into_iter()
        .map(|u| user_json(u, brief, state.config.explicit_nulls))
        .collect();
    json_reply(json!(users))
}

async fn count_users(
    AxumState(state): AxumState<Shared>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let state = admin(&state, &headers, &realm)?;
    json_reply(json!(state
        .users
        .values()
        .filter(|u| !u.service_account)
        .count()))
}

async fn get_user(
    AxumState(state): AxumState<Shared>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let state = admin(&state, &headers, &realm)?;
    let user = state.users.get(&id).ok_or_else(user_not_found)?;
    json_reply(user_json(user, false, state.config.explicit_nulls))
}

async fn list_groups(
    AxumState(state): AxumState<Shared>,
    Path(realm): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let state = admin(&state, &headers, &realm)?;
    let (first, max, _) = paging(&query, DEFAULT_MAX, state.config.max_cap)?;
    let search = query
        .get("search")
        .or_else(|| query.get("q"))
        .map(|s| s.to_lowercase());
    // Simplification: a search matches top-level groups by name only.
    let groups: Vec<&Group> = state
        .children(None)
        .into_iter()
        .filter(|g| {
            search
                .as_deref()
                .is_none_or(|s| g.name.to_lowercase().contains(s))
        })
        .collect();
    let groups: Vec<Value> = page(groups, first, max)
        .into_iter()
        .map(|g| state.group_json(g))
        .collect();
    json_reply(json!(groups))
}

async fn count_groups(
    AxumState(state): AxumState<Shared>,
    Path(realm): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let state = admin(&state, &headers, &realm)?;
    let search = query.get("search").map(|s| s.to_lowercase());
    let top = query.get("top").is_some_and(|t| t == "true");
    let count = state
        .groups
        .values()
        .filter(|g| !top || g.parent_id.is_none())
        .filter(|g| {
            search
                .as_deref()
                .is_none_or(|s| g.name.to_lowercase().contains(s))
        })
        .count();
    json_reply(json!({ "count": count }))
}

async fn get_group(
    AxumState(state): AxumState<Shared>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let state = admin(&state, &headers, &realm)?;
    let group = state.groups.get(&id).ok_or_else(group_not_found)?;
    json_reply(state.group_json(group))
}

async fn children(
    AxumState(state): AxumState<Shared>,
    Path((realm, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let state = admin(&state, &headers, &realm)?;
    if state.config.pre23 {
        return Err(error(StatusCode::NOT_FOUND, "HTTP 404 Not Found"));
    }
    if !state.groups.contains_key(&id) {
        return Err(group_not_found());
    }
    let (first, max, _) = paging(
        &query,
        state.config.children_default_max,
        state.config.max_cap,
    )?;
    let groups: Vec<Value> = page(state.children(Some(&id)), first, max)
        .into_iter()
        .map(|g| state.group_json(g))
        .collect();
    json_reply(json!(groups))
}

async fn members(
    AxumState(state): AxumState<Shared>,
    Path((realm, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let state = admin(&state, &headers, &realm)?;
    let group = state.groups.get(&id).ok_or_else(group_not_found)?;
    let (first, max, brief) = paging(&query, DEFAULT_MAX, state.config.max_cap)?;
    let mut users: Vec<&User> = group
        .members
        .iter()
        .filter_map(|id| state.users.get(id))
        .collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let users: Vec<Value> = page(users, first, max)
        .into_iter()
        .map(|u| user_json(u, brief, state.config.explicit_nulls))
        .collect();
    json_reply(json!(users))
}

/// Page faults in Keycloak's dialect: listings are bare arrays; totals come from the count
/// endpoints (a bare number for users, `{"count": n}` for groups).
fn page_dialect(kind: crate::PageFaultKind, body: &mut Value, _headers: &mut HeaderMap) -> bool {
    if kind == crate::PageFaultKind::PastEnd {
        return if body.is_number() {
            crate::lower(Some(body))
        } else {
            crate::lower(body.get_mut("count"))
        };
    }
    match body {
        Value::Array(items) => crate::cut_items(kind, items),
        _ => false,
    }
}

/// `GET …/users` with `email=` or `username=` (and `exact=true`: the whole value, case-insensitive,
/// as Keycloak stores both lower-cased; without `exact`, a substring): the per-person lookups.
/// Any other query is the plain listing.
async fn list_users_by(
    state: AxumState<Shared>,
    path: Path<String>,
    query: Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let by: Vec<(&str, String)> = ["email", "username"]
        .into_iter()
        .filter_map(|k| query.get(k).map(|v| (k, v.to_lowercase())))
        .collect();
    if by.is_empty() {
        return list_users(state, path, query, headers).await;
    }
    let exact = query.get("exact").is_some_and(|v| v == "true");
    let st = admin(&state, &headers, &path)?;
    let (first, max, brief) = paging(&query, DEFAULT_MAX, st.config.max_cap)?;
    let mut users: Vec<&User> = st
        .users
        .values()
        .filter(|u| !u.service_account)
        .filter(|u| {
            by.iter().all(|(k, want)| {
                let have = match *k {
                    "email" => u.email.as_deref().map(str::to_lowercase),
                    _ => Some(u.username.to_lowercase()),
                };
                have.is_some_and(|h| {
                    if exact {
                        h == *want
                    } else {
                        h.contains(want.as_str())
                    }
                })
            })
        })
        .collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let users: Vec<Value> = page(users, first, max)
        .into_iter()
        .map(|u| user_json(u, brief, st.config.explicit_nulls))
        .collect();
    json_reply(json!(users))
}

/// `GET …/users/{id}/groups` with `first` and `max` (default 100, as Keycloak's), sorted by name:
/// the user's direct groups, a page at a time.
async fn user_groups_paged(
    AxumState(state): AxumState<Shared>,
    Path((realm, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let mut state = admin(&state, &headers, &realm)?;
    state.user_groups_calls += 1;
    if !state.users.contains_key(&id) {
        return Err(user_not_found());
    }
    let (first, max, _) = paging(&query, DEFAULT_MAX, state.config.max_cap)?;
    let mut groups: Vec<&Group> = state.groups_of.get(&id).map_or_else(Vec::new, |ids| {
        let ids: BTreeSet<&String> = ids.iter().collect();
        ids.into_iter()
            .filter_map(|g| state.groups.get(g))
            .collect()
    });
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let groups: Vec<Value> = page(groups, first, max)
        .into_iter()
        .map(|g| state.group_json(g))
        .collect();
    json_reply(json!(groups))
}
