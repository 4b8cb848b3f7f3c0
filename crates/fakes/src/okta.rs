//! A stateful fake of the Okta Management API, as far as a read-only directory sync uses it:
//! users, groups and group members, with API-token (`SSWS`) and OAuth 2.0 service-app
//! (`private_key_jwt` client credentials) authentication, `Link` header paging and Okta's
//! per-window rate limit.
//!
//! Shapes follow Okta's public API reference:
//!
//! - every error is `{"errorCode","errorSummary","errorLink","errorId","errorCauses"}`, but the
//!   token endpoint's, which are OAuth 2.0 errors: `{"error","error_description"}`;
//! - lists are JSON arrays; paging is by `limit` and an opaque `after` cursor, the next page being
//!   announced by a `Link: <…>; rel="next"` header (one `Link` header per relation, as Okta sends
//!   them). The cursor is the id of the last resource of the page, and resources are sorted by id,
//!   so paging is stable while the directory changes;
//! - `GET /api/v1/users` leaves DEPROVISIONED users out unless a `search` or `filter` is given;
//! - every response the fake itself produces carries `X-Rate-Limit-Limit`,
//!   `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset`; an exhausted window is answered 429
//!   `E0000047`, without `Retry-After`;
//! - an access token lasts `token_ttl` (`expires_in`) or, for tests, a number of requests
//!   (`token_ttl_requests`); an expired one is 401 `E0000011` with `WWW-Authenticate: Bearer …
//!   error="invalid_token", error_description="The token has expired."`.
//!
//! The shared [`FaultLayer`] sits in front of all this: its injected errors use the Okta error
//! shape, but carry no `X-Rate-Limit-*` headers (its 429s carry `Retry-After` and
//! `X-RateLimit-Reset` instead), and they do not consume the rate-limit window.

use std::{
    cell::Cell,
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{rejection::FormRejection, Path, Request, State as AxumState},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Json, Router,
};
use jsonwebtoken::errors::ErrorKind;
use serde_json::{json, Map, Value};

use crate::{
    bind,
    directory::{KeyIndex, Memberships, Record, Table},
    lock,
    oauth::{self, AssertionRules, SeenJtis},
    serve, FaultLayer, Faults, Params, RateHeaders, RateLimiter, RequestLog, Server,
};

/// Every status a user can have.
pub const USER_STATUSES: [&str; 8] = [
    "ACTIVE",
    "PROVISIONED",
    "STAGED",
    "RECOVERY",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "SUSPENDED",
    "DEPROVISIONED",
];

/// Every kind of group.
pub const GROUP_TYPES: [&str; 3] = ["OKTA_GROUP", "APP_GROUP", "BUILT_IN"];

pub const SCOPE_USERS_READ: &str = "okta.users.read";
pub const SCOPE_GROUPS_READ: &str = "okta.groups.read";

/// The `client_assertion_type` of a `private_key_jwt` client authentication.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The id of the default user type, which every user has.
pub const DEFAULT_USER_TYPE: &str = "oty1a2b3c4d5e6f7g8h9";

/// The clock of the fake starts at 2026-01-01T00:00:00Z and ticks one second per change, so
/// timestamps are deterministic.
const EPOCH: i64 = 1_767_225_600;

/// Default page sizes of the real API (before the fake's caps).
const USERS_DEFAULT_LIMIT: usize = 200;
const GROUPS_DEFAULT_LIMIT: usize = 10_000;
const MEMBERS_DEFAULT_LIMIT: usize = 1_000;

/// How far ahead a client assertion may expire (Okta: at most one hour), plus clock skew.
const MAX_ASSERTION_LIFETIME_SECS: u64 = 3_600;
const CLOCK_SKEW_SECS: u64 = 60;

/// How the fake behaves. `latency` is read once, at start; the rest can be changed while running
/// through `fake.state().config`.
#[derive(Clone, Debug)]
pub struct FakeOktaConfig {
    /// The API token accepted as `Authorization: SSWS <token>` (it has every permission).
    pub api_token: String,
    /// The client id of the OAuth service app: the `iss` and `sub` of its client assertions.
    pub client_id: String,
    /// The service app's public key (PEM), which verifies its RS256 client assertions.
    pub public_key_pem: String,
    /// The scopes granted to the service app; a token request for any other fails.
    pub granted_scopes: Vec<String>,
    /// The most users one page of `GET /api/v1/users` holds, whatever `limit` asks for.
    pub user_page_cap: usize,
    /// The most groups one page of `GET /api/v1/groups` holds.
    pub group_page_cap: usize,
    /// The most users one page of `GET /api/v1/groups/{id}/users` holds.
    pub member_page_cap: usize,
    /// Requests allowed per rate-limit window (every request counts, the token endpoint's too).
    pub rate_limit_per_minute: usize,
    /// The length of a rate-limit window (Okta's is a minute).
    pub rate_window: Duration,
    /// How long an access token is valid (`expires_in`).
    pub token_ttl: Duration,
    /// An access token stops working after authorizing this many requests; `None`: only time.
    pub token_ttl_requests: Option<usize>,
    /// A delay applied to every request.
    pub latency: Duration,
}

impl Default for FakeOktaConfig {
    fn default() -> FakeOktaConfig {
        FakeOktaConfig {
            api_token: "okta-secret-api-token".into(),
            client_id: "0oa-test-client".into(),
            public_key_pem: oauth::TEST_PUBLIC_KEY_PEM.into(),
            granted_scopes: vec![SCOPE_USERS_READ.into(), SCOPE_GROUPS_READ.into()],
            user_page_cap: 200,
            group_page_cap: 200,
            member_page_cap: 200,
            rate_limit_per_minute: 100_000,
            rate_window: Duration::from_secs(60),
            token_ttl: Duration::from_secs(3_600),
            token_ttl_requests: None,
            latency: Duration::ZERO,
        }
    }
}

/// A user to seed; `OktaSeedUser::new(email)` fills the rest and the builder methods adjust it.
#[derive(Clone, Debug, Default)]
pub struct OktaSeedUser {
    pub email: String,
    /// Defaults to the email.
    pub login: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    /// One of [`USER_STATUSES`]; `new` makes it ACTIVE.
    pub status: String,
    pub title: Option<String>,
    pub department: Option<String>,
    pub manager_id: Option<String>,
    pub employee_number: Option<String>,
}

impl OktaSeedUser {
    /// An ACTIVE user named after the email: `alice.doe@example.com` is Alice Doe.
    pub fn new(email: &str) -> OktaSeedUser {
        let (first_name, last) = crate::names_from_email(email);
        OktaSeedUser {
            email: email.to_owned(),
            first_name,
            last_name: last,
            status: "ACTIVE".into(),
            ..OktaSeedUser::default()
        }
    }

    pub fn login(mut self, login: &str) -> OktaSeedUser {
        self.login = Some(login.to_owned());
        self
    }

    pub fn name(mut self, first_name: &str, last_name: &str) -> OktaSeedUser {
        self.first_name = Some(first_name.to_owned());
        self.last_name = Some(last_name.to_owned());
        self
    }

    pub fn display_name(mut self, display_name: &str) -> OktaSeedUser {
        self.display_name = Some(display_name.to_owned());
        self
    }

    pub fn status(mut self, status: &str) -> OktaSeedUser {
        self.status = status.to_owned();
        self
    }

    pub fn title(mut self, title: &str) -> OktaSeedUser {
        self.title = Some(title.to_owned());
        self
    }

    pub fn department(mut self, department: &str) -> OktaSeedUser {
        self.department = Some(department.to_owned());
        self
    }

    pub fn manager_id(mut self, manager_id: &str) -> OktaSeedUser {
        self.manager_id = Some(manager_id.to_owned());
        self
    }

    pub fn employee_number(mut self, employee_number: &str) -> OktaSeedUser {
        self.employee_number = Some(employee_number.to_owned());
        self
    }
}

/// A user of the Okta org.
#[derive(Clone, Debug, Default)]
pub struct OktaUser {
    pub id: String,
    pub status: String,
    pub created: String,
    pub activated: Option<String>,
    pub status_changed: Option<String>,
    pub last_login: Option<String>,
    pub last_updated: String,
    pub password_changed: Option<String>,
    pub login: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub manager_id: Option<String>,
    pub employee_number: Option<String>,
    /// Further profile attributes (custom ones), rendered as they are.
    pub custom: Map<String, Value>,
}

impl OktaUser {
    /// The value of a `search`/`filter` attribute (`status`, `profile.email`, …) as a string.
    fn attr(&self, attr: &str) -> Option<String> {
        let value = match attr {
            "id" => Some(&self.id),
            "status" => Some(&self.status),
            "created" => Some(&self.created),
            "activated" => self.activated.as_ref(),
            "statusChanged" => self.status_changed.as_ref(),
            "lastLogin" => self.last_login.as_ref(),
            "lastUpdated" => Some(&self.last_updated),
            "passwordChanged" => self.password_changed.as_ref(),
            "type.id" => return Some(DEFAULT_USER_TYPE.to_owned()),
            "profile.login" => Some(&self.login),
            "profile.email" => Some(&self.email),
            "profile.firstName" => self.first_name.as_ref(),
            "profile.lastName" => self.last_name.as_ref(),
            "profile.displayName" => self.display_name.as_ref(),
            "profile.title" => self.title.as_ref(),
            "profile.department" => self.department.as_ref(),
            "profile.managerId" => self.manager_id.as_ref(),
            "profile.employeeNumber" => self.employee_number.as_ref(),
            other => {
                return other
                    .strip_prefix("profile.")
                    .and_then(|name| self.custom.get(name))
                    .and_then(|v| match v {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        v => Some(v.to_string()),
                    })
            }
        };
        value.cloned()
    }
}

/// A group of the Okta org.
#[derive(Clone, Debug)]
pub struct OktaGroup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// One of [`GROUP_TYPES`].
    pub kind: String,
    pub created: String,
    pub last_updated: String,
    pub last_membership_updated: String,
}

impl Record for OktaUser {
    type Id = str;

    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for OktaGroup {
    type Id = str;

    fn id(&self) -> &str {
        &self.id
    }
}

impl OktaGroup {
    fn attr(&self, attr: &str) -> Option<String> {
        match attr {
            "id" => Some(self.id.clone()),
            "type" => Some(self.kind.clone()),
            "created" => Some(self.created.clone()),
            "lastUpdated" => Some(self.last_updated.clone()),
            "lastMembershipUpdated" => Some(self.last_membership_updated.clone()),
            "profile.name" => Some(self.name.clone()),
            "profile.description" => self.description.clone(),
            _ => None,
        }
    }
}

/// An access token issued by the token endpoint.
#[derive(Clone, Debug)]
struct IssuedToken {
    scopes: Vec<String>,
    expires: Instant,
    /// Requests it authorized (a `Cell`: authorizing reads the state).
    uses: Cell<usize>,
}

/// Everything the fake knows. Lock it only briefly, never across an await.
#[derive(Debug)]
pub struct State {
    pub config: FakeOktaConfig,
    pub base_url: String,
    /// In creation order, which is id order (ids are a zero-padded counter), the order lists
    /// return them in. Change a login or email through [`FakeOkta::update_user`], which keeps
    /// `user_keys` in step.
    pub users: Table<OktaUser>,
    /// In creation order, which is id order.
    pub groups: Table<OktaGroup>,
    /// Logins and emails to user ids.
    user_keys: KeyIndex,
    /// Group names to group ids.
    group_names: KeyIndex,
    /// Group members (user ids), and the groups of each user.
    pub members: Memberships,
    tokens: HashMap<String, IssuedToken>,
    used_jtis: SeenJtis,
    tokens_issued: usize,
    rate: RateLimiter,
    next_user: u64,
    next_group: u64,
    ticks: i64,
}

impl State {
    fn new(config: FakeOktaConfig, base_url: String) -> State {
        let rate = RateLimiter::new(config.rate_limit_per_minute as u64, config.rate_window);
        State {
            rate,
            config,
            base_url,
            users: Table::default(),
            groups: Table::default(),
            user_keys: KeyIndex::default(),
            group_names: KeyIndex::default(),
            members: Memberships::default(),
            tokens: HashMap::new(),
            used_jtis: SeenJtis::default(),
            tokens_issued: 0,
            next_user: 0,
            next_group: 0,
            ticks: 0,
        }
    }

    /// `{base_url}/oauth2/v1/token`: the `aud` client assertions must carry.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v1/token", self.base_url)
    }

    /// The fake's clock, one second later on each call.
    fn now(&mut self) -> String {
        self.ticks += 1;
        timestamp(EPOCH + self.ticks)
    }

    /// The id of the user with this id, login or email (case-insensitive).
    pub fn user_id(&self, key: &str) -> Option<String> {
        if self.users.get(key).is_some() {
            return Some(key.to_owned());
        }
        // The first in id order, as a scan would find it.
        self.user_keys
            .ids(key)
            .iter()
            .min_by_key(|id| self.users.position(id))
            .cloned()
    }

    /// The id of the group with this id or name (case-insensitive); panics when the name is
    /// ambiguous.
    pub fn group_id(&self, key: &str) -> Option<String> {
        if self.groups.get(key).is_some() {
            return Some(key.to_owned());
        }
        let named = self.group_names.ids(key);
        assert!(
            named.len() < 2,
            "{} groups are named {key}; use the group id",
            named.len()
        );
        named.first().cloned()
    }

    /// The groups of a user, in id order.
    fn groups_of(&self, user_id: &str) -> Vec<&OktaGroup> {
        let mut positions: Vec<usize> = self
            .members
            .groups_of(user_id)
            .filter_map(|g| self.groups.position(g))
            .collect();
        positions.sort_unstable();
        positions.into_iter().map(|i| &self.groups[i]).collect()
    }

    /// Checks the `Authorization` header of a resource request: the API token, or an unexpired
    /// access token granted `scope`.
    fn authorize(&self, headers: &HeaderMap, scope: &str) -> Result<(), Failure> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .map(|(scheme, token)| (scheme, token.trim()));
        match presented {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("SSWS") && token == self.config.api_token =>
            {
                Ok(())
            }
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("Bearer") => {
                match self.tokens.get(token) {
                    None => Err(Failure::invalid_token(Some("The token is not valid."))),
                    Some(t)
                        if Instant::now() >= t.expires
                            || self.config.token_ttl_requests.is_some_and(|n| t.uses.get() >= n) =>
                    {
                        Err(Failure::invalid_token(Some("The token has expired.")))
                    }
                    Some(t) if !covers(&t.scopes, scope) => Err(Failure::insufficient_scope(
                        &self.base_url,
                        &format!("The access token provided does not contain the required scope {scope}."),
                    )),
                    Some(t) => {
                        t.uses.set(t.uses.get() + 1);
                        Ok(())
                    }
                }
            }
            _ => Err(Failure::invalid_token(None)),
        }
    }

    fn user_json(&self, user: &OktaUser) -> Value {
        let mut profile = Map::new();
        profile.insert("firstName".into(), json!(user.first_name));
        profile.insert("lastName".into(), json!(user.last_name));
        profile.insert("mobilePhone".into(), Value::Null);
        profile.insert("secondEmail".into(), Value::Null);
        profile.insert("login".into(), json!(user.login));
        profile.insert("email".into(), json!(user.email));
        insert_opt(&mut profile, "displayName", &user.display_name);
        insert_opt(&mut profile, "title", &user.title);
        insert_opt(&mut profile, "department", &user.department);
        insert_opt(&mut profile, "managerId", &user.manager_id);
        insert_opt(&mut profile, "employeeNumber", &user.employee_number);
        for (key, value) in &user.custom {
            profile.insert(key.clone(), value.clone());
        }
        let mut credentials = Map::new();
        if user.status != "STAGED" {
            credentials.insert("password".into(), json!({}));
        }
        credentials.insert("provider".into(), json!({ "type": "OKTA", "name": "OKTA" }));
        json!({
            "id": user.id,
            "status": user.status,
            "created": user.created,
            "activated": user.activated,
            "statusChanged": user.status_changed,
            "lastLogin": user.last_login,
            "lastUpdated": user.last_updated,
            "passwordChanged": user.password_changed,
            "type": { "id": DEFAULT_USER_TYPE },
            "profile": profile,
            "credentials": credentials,
            "_links": { "self": { "href": format!("{}/api/v1/users/{}", self.base_url, user.id) } },
        })
    }

    fn group_json(&self, group: &OktaGroup) -> Value {
        let href = format!("{}/api/v1/groups/{}", self.base_url, group.id);
        let object_class = if group.kind == "APP_GROUP" {
            "okta:windows_security_principal"
        } else {
            "okta:user_group"
        };
        json!({
            "id": group.id,
            "created": group.created,
            "lastUpdated": group.last_updated,
            "lastMembershipUpdated": group.last_membership_updated,
            "objectClass": [object_class],
            "type": group.kind,
            "profile": { "name": group.name, "description": group.description },
            "_links": {
                "logo": [
                    { "name": "medium", "href": format!("{}/assets/img/logos/groups/okta-medium.png", self.base_url), "type": "image/png" },
                    { "name": "large", "href": format!("{}/assets/img/logos/groups/okta-large.png", self.base_url), "type": "image/png" },
                ],
                "users": { "href": format!("{href}/users") },
                "apps": { "href": format!("{href}/apps") },
            },
        })
    }

    /// A list response: the JSON array and its `Link` headers (`self`, and `next` when `next`
    /// holds the cursor of the next page).
    fn listing(
        &self,
        uri: &Uri,
        params: &Params,
        body: Vec<Value>,
        next: Option<NextPage>,
    ) -> Response {
        let mut response = Json(Value::Array(body)).into_response();
        let path = uri.path();
        let self_url = match uri.query() {
            Some(q) if !q.is_empty() => format!("{}{path}?{q}", self.base_url),
            _ => format!("{}{path}", self.base_url),
        };
        let headers = response.headers_mut();
        headers.append(header::LINK, link(&self_url, "self"));
        if let Some(next) = next {
            let mut query = format!("after={}&limit={}", encode(&next.after), next.limit);
            for (key, value) in &params.0 {
                if key != "after" && key != "limit" {
                    query.push_str(&format!("&{}={}", encode(key), encode(value)));
                }
            }
            let next_url = format!("{}{path}?{query}", self.base_url);
            headers.append(header::LINK, link(&next_url, "next"));
        }
        response
    }
}

/// Whether granted scopes include `scope` (a `.manage` scope includes its `.read`).
fn covers(scopes: &[String], scope: &str) -> bool {
    let manage = scope.strip_suffix(".read").map(|s| format!("{s}.manage"));
    scopes
        .iter()
        .any(|s| s == scope || manage.as_deref() == Some(s.as_str()))
}

fn link(url: &str, rel: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("<{url}>; rel=\"{rel}\"")).expect("a valid Link header")
}

/// Percent-encodes everything but RFC 3986 unreserved characters (spaces become `%20`).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A base profile attribute: Okta sends one that is unset as `null`.
fn insert_opt(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    map.insert(key.into(), json!(value));
}

fn timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("a timestamp in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The fake Okta org. Dropping it stops accepting connections.
pub struct FakeOkta {
    pub base_url: String,
    /// The configuration the fake started with. To change its behaviour while it runs, change
    /// `state().config` instead.
    pub config: FakeOktaConfig,
    pub state: Arc<Mutex<State>>,
    layer: Arc<FaultLayer>,
    _server: Server,
}

impl FakeOkta {
    /// Binds 127.0.0.1:0 and serves the fake on the current tokio runtime. Panics when the
    /// configured public key is not an RSA public key in PEM.
    pub async fn start(config: FakeOktaConfig) -> FakeOkta {
        oauth::rsa_key(&config.public_key_pem, "FakeOktaConfig::public_key_pem");
        let (listener, base_url) = bind().await;
        let layer = Arc::new(
            FaultLayer::new(config.latency, okta_error_response)
                .with_is_mutation(is_mutation)
                .with_pages(page_dialect),
        );
        let state = Arc::new(Mutex::new(State::new(config.clone(), base_url.clone())));
        let server = serve(listener, router(state.clone()), layer.clone());
        FakeOkta {
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

    /// `{base_url}/oauth2/v1/token`: the token endpoint, and the `aud` of client assertions.
    pub fn token_url(&self) -> String {
        self.state().token_url()
    }

    // Seeding. These panic on a conflict or an unknown name: a test that does that has a bug.

    /// Adds a user; returns its id (`00u` and a zero-padded counter).
    pub fn add_user(&self, seed: OktaSeedUser) -> String {
        let mut state = self.state();
        let login = seed.login.unwrap_or_else(|| seed.email.clone());
        assert!(
            state.user_id(&login).is_none(),
            "seeding user {login}: the login is taken"
        );
        let status = if seed.status.is_empty() {
            "ACTIVE".to_owned()
        } else {
            valid_status(&seed.status)
        };
        state.next_user += 1;
        let id = format!("00u{:017}", state.next_user);
        let created = state.now();
        let staged = status == "STAGED";
        let user = OktaUser {
            id: id.clone(),
            activated: (!staged).then(|| created.clone()),
            status_changed: (!staged).then(|| created.clone()),
            password_changed: (!staged).then(|| created.clone()),
            last_updated: created.clone(),
            created,
            status,
            last_login: None,
            login,
            email: seed.email,
            first_name: seed.first_name,
            last_name: seed.last_name,
            display_name: seed.display_name,
            title: seed.title,
            department: seed.department,
            manager_id: seed.manager_id,
            employee_number: seed.employee_number,
            custom: Map::new(),
        };
        state.user_keys.insert(&user.login, &id);
        state.user_keys.insert(&user.email, &id);
        state.users.push(user);
        id
    }

    /// Changes the status of the user with this id, login or email (e.g. to "DEPROVISIONED").
    pub fn set_status(&self, login_or_email: &str, status: &str) {
        let status = valid_status(status);
        self.update_user(login_or_email, |user| {
            if user.activated.is_none() && !matches!(status.as_str(), "STAGED" | "DEPROVISIONED") {
                user.activated = Some(user.last_updated.clone());
            }
            user.status = status;
            user.status_changed = Some(user.last_updated.clone());
        });
    }

    /// Renames the user with this id (or login or email): same id, login and email both set to
    /// `email`.
    pub fn set_email(&self, id: &str, email: &str) {
        self.update_user(id, |user| {
            user.login = email.to_owned();
            user.email = email.to_owned();
        });
    }

    /// Changes the user with this id, login or email, and bumps its `lastUpdated` (which is
    /// already the new value when `change` runs).
    pub fn update_user(&self, key: &str, change: impl FnOnce(&mut OktaUser)) {
        let mut state = self.state();
        let id = state
            .user_id(key)
            .unwrap_or_else(|| panic!("no Okta user {key}"));
        let now = state.now();
        let user = state.users.get_mut(&id).expect("the user exists");
        let (login, email) = (user.login.clone(), user.email.clone());
        user.last_updated = now;
        change(user);
        let (new_login, new_email) = (user.login.clone(), user.email.clone());
        for old in [&login, &email] {
            state.user_keys.remove(old, &id);
        }
        for new in [&new_login, &new_email] {
            state.user_keys.insert(new, &id);
        }
    }

    /// Deletes the user with this id, login or email (and its group memberships).
    pub fn delete_user(&self, key: &str) {
        let mut state = self.state();
        let id = state
            .user_id(key)
            .unwrap_or_else(|| panic!("no Okta user {key}"));
        let position = state.users.position(&id).expect("the user exists");
        let user = state.users.remove(position);
        state.user_keys.remove(&user.login, &id);
        state.user_keys.remove(&user.email, &id);
        let now = state.now();
        let groups: Vec<String> = state.members.groups_of(&id).map(str::to_owned).collect();
        for group in groups {
            if let Some(group) = state.groups.get_mut(&group) {
                group.last_membership_updated = now.clone();
            }
        }
        state.members.remove_member(&id);
    }

    /// Adds a group whose members are the users with these logins or emails; returns its id
    /// (`00g` and a zero-padded counter). Names of OKTA_GROUPs are unique; an APP_GROUP may share
    /// a name with another group, as in a real org.
    pub fn add_group(&self, name: &str, kind: &str, member_emails: &[&str]) -> String {
        assert!(
            GROUP_TYPES.contains(&kind),
            "seeding group {name}: unknown group type {kind}"
        );
        let mut state = self.state();
        assert!(
            kind == "APP_GROUP"
                || !state
                    .group_names
                    .ids(name)
                    .iter()
                    .any(|id| state.groups.get(id).is_some_and(|g| g.kind != "APP_GROUP")),
            "seeding group {name}: the name is taken"
        );
        let members: Vec<String> = member_emails
            .iter()
            .map(|key| {
                state
                    .user_id(key)
                    .unwrap_or_else(|| panic!("seeding group {name}: no user {key}"))
            })
            .collect();
        state.next_group += 1;
        let id = format!("00g{:017}", state.next_group);
        let created = state.now();
        state.groups.push(OktaGroup {
            id: id.clone(),
            name: name.to_owned(),
            description: None,
            kind: kind.to_owned(),
            last_updated: created.clone(),
            last_membership_updated: created.clone(),
            created,
        });
        state.group_names.insert(name, &id);
        for member in &members {
            state.members.add(&id, member);
        }
        id
    }

    /// Adds the user with this login or email to the group with this id or name.
    pub fn add_member(&self, group: &str, email: &str) {
        self.change_members(group, email, true);
    }

    /// Removes the user with this login or email from the group with this id or name.
    pub fn remove_member(&self, group: &str, email: &str) {
        self.change_members(group, email, false);
    }

    fn change_members(&self, group: &str, email: &str, add: bool) {
        let mut state = self.state();
        let group_id = state
            .group_id(group)
            .unwrap_or_else(|| panic!("no Okta group {group}"));
        let user_id = state
            .user_id(email)
            .unwrap_or_else(|| panic!("no Okta user {email}"));
        let now = state.now();
        let changed = if add {
            state.members.add(&group_id, &user_id)
        } else {
            state.members.remove(&group_id, &user_id)
        };
        if changed {
            let group = state.groups.get_mut(&group_id).expect("the group exists");
            group.last_membership_updated = now;
        }
    }

    // Inspection.

    /// The id of the user with this id, login or email.
    pub fn user_id(&self, key: &str) -> Option<String> {
        self.state().user_id(key)
    }

    /// The id of the group with this id or name.
    pub fn group_id(&self, key: &str) -> Option<String> {
        self.state().group_id(key)
    }

    /// The user with this id, login or email, as `GET /api/v1/users/{id}` returns it.
    pub fn user(&self, key: &str) -> Option<Value> {
        let state = self.state();
        let id = state.user_id(key)?;
        Some(state.user_json(state.users.get(&id)?))
    }

    /// Every request received, faulted or not, in order of arrival.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.layer.requests()
    }

    /// Access tokens issued by the token endpoint so far.
    pub fn tokens_issued(&self) -> usize {
        self.state().tokens_issued
    }

    /// Makes the access tokens issued from now on (and those already issued) stop working after
    /// `n` authorized requests; `None`: only their lifetime ends them.
    pub fn set_token_ttl_requests(&self, n: Option<usize>) {
        self.state().config.token_ttl_requests = n;
    }

    /// Makes every access token issued so far expired (the next use gets 401 E0000011).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for token in self.state().tokens.values_mut() {
            token.expires = now;
        }
    }

    /// Requests to `GET /api/v1/users/{id}/groups`, whatever their outcome.
    pub fn user_groups_calls(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                r.path
                    .strip_prefix("/api/v1/users/")
                    .and_then(|rest| rest.strip_suffix("/groups"))
                    .is_some_and(|id| !id.is_empty() && !id.contains('/'))
            })
            .count()
    }

    /// Requests answered 429 `E0000047` by the fake's rate limiter (not by the fault layer).
    pub fn rate_limited(&self) -> usize {
        self.state().rate.refused
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

fn valid_status(status: &str) -> String {
    assert!(
        USER_STATUSES.contains(&status),
        "unknown Okta user status {status}"
    );
    status.to_owned()
}

/// Nothing in this fake changes state through the API; the token endpoint issues tokens, but is
/// no change to the directory either.
fn is_mutation(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && path != "/oauth2/v1/token"
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A failed request, in the shape of the API it was made to.
#[derive(Debug)]
pub enum Failure {
    /// A Management API error: `{"errorCode","errorSummary","errorLink","errorId","errorCauses"}`.
    Okta {
        status: StatusCode,
        code: &'static str,
        summary: String,
        causes: Vec<String>,
        www_authenticate: Option<String>,
    },
    /// An OAuth 2.0 error of the token endpoint: `{"error","error_description"}`.
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
}

impl Failure {
    fn okta(status: StatusCode, code: &'static str, summary: impl Into<String>) -> Failure {
        Failure::Okta {
            status,
            code,
            summary: summary.into(),
            causes: Vec::new(),
            www_authenticate: None,
        }
    }

    /// 401 E0000011; `detail` (for a bearer token) goes into `WWW-Authenticate`.
    fn invalid_token(detail: Option<&str>) -> Failure {
        Failure::Okta {
            status: StatusCode::UNAUTHORIZED,
            code: "E0000011",
            summary: "Invalid token provided".into(),
            causes: Vec::new(),
            www_authenticate: detail.map(|d| {
                format!(
                    "Bearer realm=\"IdpError\", error=\"invalid_token\", error_description=\"{d}\""
                )
            }),
        }
    }

    /// 403 E0000006: an access token without the scope the endpoint needs.
    fn insufficient_scope(base_url: &str, detail: &str) -> Failure {
        Failure::Okta {
            status: StatusCode::FORBIDDEN,
            code: "E0000006",
            summary: "You do not have permission to perform the requested action".into(),
            causes: Vec::new(),
            www_authenticate: Some(format!(
                "Bearer authorization_uri=\"{base_url}/oauth2/v1/authorize\", realm=\"IdpError\", \
                 error=\"insufficient_scope\", error_description=\"{detail}\""
            )),
        }
    }

    fn not_found(id: &str, kind: &str) -> Failure {
        Failure::okta(
            StatusCode::NOT_FOUND,
            "E0000007",
            format!("Not found: Resource not found: {id} ({kind})"),
        )
    }

    fn rate_limited() -> Failure {
        Failure::okta(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
    }

    fn invalid_search(cause: impl Into<String>) -> Failure {
        Failure::Okta {
            status: StatusCode::BAD_REQUEST,
            code: "E0000031",
            summary: "Invalid search criteria.".into(),
            causes: vec![cause.into()],
            www_authenticate: None,
        }
    }

    fn validation(cause: impl Into<String>) -> Failure {
        Failure::Okta {
            status: StatusCode::BAD_REQUEST,
            code: "E0000001",
            summary: "Api validation failed".into(),
            causes: vec![cause.into()],
            www_authenticate: None,
        }
    }

    fn oauth(status: StatusCode, error: &'static str, description: impl Into<String>) -> Failure {
        Failure::OAuth {
            status,
            error,
            description: description.into(),
        }
    }

    fn invalid_client(description: impl Into<String>) -> Failure {
        Failure::oauth(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::Okta {
                status,
                code,
                summary,
                causes,
                www_authenticate,
            } => {
                static ERROR_ID: AtomicU64 = AtomicU64::new(1);
                let id = ERROR_ID.fetch_add(1, Ordering::Relaxed);
                let causes: Vec<Value> = causes
                    .into_iter()
                    .map(|c| json!({ "errorSummary": c }))
                    .collect();
                let body = json!({
                    "errorCode": code,
                    "errorSummary": summary,
                    "errorLink": code,
                    "errorId": format!("oae{id:019}"),
                    "errorCauses": causes,
                });
                let mut response = (status, Json(body)).into_response();
                if let Some(value) = www_authenticate.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            Failure::OAuth {
                status,
                error,
                description,
            } => {
                let body = json!({ "error": error, "error_description": description });
                let mut response = (status, Json(body)).into_response();
                let headers = response.headers_mut();
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
                response
            }
        }
    }
}

/// The body of an error injected by the fault layer.
fn okta_error_response(status: StatusCode, _detail: &str) -> Response {
    match status {
        StatusCode::TOO_MANY_REQUESTS => Failure::rate_limited(),
        StatusCode::UNAUTHORIZED => Failure::invalid_token(None),
        _ => Failure::okta(status, "E0000009", "Internal Server Error"),
    }
    .into_response()
}

type Reply = Result<Response, Failure>;

// ---------------------------------------------------------------------------------------------
// Routes

type Shared = Arc<Mutex<State>>;

fn router(state: Shared) -> Router {
    Router::new()
        .route("/oauth2/v1/token", post(token))
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/users/{id}", get(get_user))
        .route("/api/v1/users/{id}/groups", get(user_groups))
        .route("/api/v1/groups", get(list_groups))
        .route("/api/v1/groups/{id}", get(get_group))
        .route("/api/v1/groups/{id}/users", get(group_members))
        .fallback(|uri: Uri| async move { Failure::not_found(uri.path(), "Resource") })
        .method_not_allowed_fallback(|| async {
            Failure::okta(
                StatusCode::METHOD_NOT_ALLOWED,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state)
}

/// Okta's rate limit: counts the request in the current window, answers 429 E0000047 when the
/// window is used up, and puts the `X-Rate-Limit-*` headers on every response.
async fn rate_limit(AxumState(state): AxumState<Shared>, request: Request, next: Next) -> Response {
    let verdict = lock(&state).rate.check();
    let mut response = if verdict.allowed {
        next.run(request).await
    } else {
        Failure::rate_limited().into_response()
    };
    verdict.stamp(response.headers_mut(), RateHeaders::Okta);
    response
}

// ---------------------------------------------------------------------------------------------
// Query parameters, search expressions and paging

impl Params {
    /// `limit`, `default` when absent, at least 1 and at most `cap`.
    fn limit(&self, default: usize, cap: usize) -> Result<usize, Failure> {
        let cap = cap.max(1);
        match self.get("limit") {
            None => Ok(default.clamp(1, cap)),
            Some(v) => {
                let n: i64 = v.trim().parse().map_err(|_| {
                    Failure::validation(format!("limit: The value {v:?} is not an integer."))
                })?;
                Ok(usize::try_from(n.max(1)).unwrap_or(usize::MAX).min(cap))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Pr,
    Eq,
    Ne,
    Sw,
    Co,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word.to_ascii_lowercase().as_str() {
            "pr" => Op::Pr,
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "sw" => Op::Sw,
            "co" => Op::Co,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }
}

/// The operators `filter` supports (`search` supports them all).
const FILTER_OPS: [Op; 5] = [Op::Eq, Op::Gt, Op::Ge, Op::Lt, Op::Le];
const SEARCH_OPS: [Op; 9] = [
    Op::Pr,
    Op::Eq,
    Op::Ne,
    Op::Sw,
    Op::Co,
    Op::Gt,
    Op::Ge,
    Op::Lt,
    Op::Le,
];

/// A `search` or `filter` expression: `attr op "value"` terms (`attr pr` takes no value) joined
/// by `and`/`or` (`and` binds tighter), with parentheses.
#[derive(Debug)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Cmp {
        attr: String,
        op: Op,
        value: Option<String>,
    },
}

#[derive(Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Str(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string".into()),
                        Some('"') => break,
                        Some('\\') => value.push(chars.next().ok_or("unterminated string")?),
                        Some(c) => value.push(c),
                    }
                }
                tokens.push(Token::Str(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    attr_ok: &'a dyn Fn(&str) -> bool,
    ops: &'a [Op],
}

impl Parser<'_> {
    fn keyword(&mut self, keyword: &str) -> bool {
        let found = matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword));
        if found {
            self.at += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut terms = vec![self.primary()?];
        while self.keyword("and") {
            terms.push(self.primary()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Expr::And(terms)
        })
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.tokens.get(self.at);
        self.at += 1;
        match token {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.tokens.get(self.at) {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err("missing )".into()),
                }
            }
            Some(Token::Word(attr)) => {
                let attr = attr.clone();
                if !(self.attr_ok)(&attr) {
                    return Err(format!("unsupported attribute {attr}"));
                }
                let op = match self.tokens.get(self.at) {
                    Some(Token::Word(w)) => Op::parse(w),
                    _ => None,
                }
                .filter(|op| self.ops.contains(op))
                .ok_or_else(|| format!("unsupported operator after {attr}"))?;
                self.at += 1;
                if op == Op::Pr {
                    return Ok(Expr::Cmp {
                        attr,
                        op,
                        value: None,
                    });
                }
                let value = match self.tokens.get(self.at) {
                    Some(Token::Str(s)) => s.clone(),
                    Some(Token::Word(w))
                        if !w.eq_ignore_ascii_case("and") && !w.eq_ignore_ascii_case("or") =>
                    {
                        w.clone()
                    }
                    _ => return Err(format!("missing value after {attr}")),
                };
                self.at += 1;
                Ok(Expr::Cmp {
                    attr,
                    op,
                    value: Some(value),
                })
            }
            _ => Err("expected an attribute".into()),
        }
    }
}

impl Expr {
    fn parse(text: &str, attr_ok: &dyn Fn(&str) -> bool, ops: &[Op]) -> Result<Expr, Failure> {
        let fail = |why: String| Failure::invalid_search(format!("{text}: {why}"));
        let tokens = tokenize(text).map_err(fail)?;
        let mut parser = Parser {
            tokens,
            at: 0,
            attr_ok,
            ops,
        };
        let expr = parser.or().map_err(fail)?;
        if parser.at < parser.tokens.len() {
            return Err(fail("unexpected text after the expression".into()));
        }
        Ok(expr)
    }

    /// Whether a resource whose attributes `attr` gives matches. Strings compare
    /// case-insensitively; timestamps compare as strings (same ISO 8601 format).
    fn matches(&self, attr: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Expr::Or(terms) => terms.iter().any(|t| t.matches(attr)),
            Expr::And(terms) => terms.iter().all(|t| t.matches(attr)),
            Expr::Cmp {
                attr: name,
                op,
                value,
            } => {
                let actual = attr(name);
                let Some(expected) = value else {
                    return actual.is_some();
                };
                let Some(actual) = actual else {
                    return *op == Op::Ne;
                };
                let actual = actual.to_lowercase();
                let expected = expected.to_lowercase();
                match op {
                    Op::Pr => true,
                    Op::Eq => actual == expected,
                    Op::Ne => actual != expected,
                    Op::Sw => actual.starts_with(&expected),
                    Op::Co => actual.contains(&expected),
                    Op::Gt => actual > expected,
                    Op::Ge => actual >= expected,
                    Op::Lt => actual < expected,
                    Op::Le => actual <= expected,
                }
            }
        }
    }
}

fn user_search_attr(attr: &str) -> bool {
    matches!(
        attr,
        "id" | "status"
            | "created"
            | "activated"
            | "statusChanged"
            | "lastLogin"
            | "lastUpdated"
            | "passwordChanged"
            | "type.id"
    ) || attr.strip_prefix("profile.").is_some_and(|a| !a.is_empty())
}

fn user_filter_attr(attr: &str) -> bool {
    matches!(
        attr,
        "id" | "status"
            | "lastUpdated"
            | "profile.login"
            | "profile.email"
            | "profile.firstName"
            | "profile.lastName"
    )
}

fn group_search_attr(attr: &str) -> bool {
    matches!(
        attr,
        "id" | "type"
            | "created"
            | "lastUpdated"
            | "lastMembershipUpdated"
            | "profile.name"
            | "profile.description"
    )
}

fn group_filter_attr(attr: &str) -> bool {
    matches!(
        attr,
        "id" | "type" | "lastUpdated" | "lastMembershipUpdated"
    )
}

/// The cursor and page size of the next page.
struct NextPage {
    after: String,
    limit: usize,
}

/// One page of `items` (sorted by id) after the cursor `after`: at most `limit` of those `keep`
/// accepts, and the next page when more remain.
fn page<'a, T: Record<Id = str> + 'a>(
    items: impl Iterator<Item = &'a T>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> (Vec<&'a T>, Option<NextPage>) {
    let mut out = Vec::new();
    let mut last = None;
    for item in items.filter(|item| keep(item)) {
        if out.len() == limit {
            return (
                out,
                last.map(|after: &str| NextPage {
                    after: after.to_owned(),
                    limit,
                }),
            );
        }
        out.push(item);
        last = Some(item.id());
    }
    (out, None)
}

/// The records (sorted by id) whose id is past the cursor `after`.
fn after<'a, T: Record<Id = str>>(
    rows: &'a [T],
    after: Option<&str>,
) -> impl Iterator<Item = &'a T> {
    let start = match after {
        Some(cursor) if !cursor.is_empty() => rows.partition_point(|r| r.id() <= cursor),
        _ => 0,
    };
    rows[start..].iter()
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn list_users(AxumState(state): AxumState<Shared>, headers: HeaderMap, uri: Uri) -> Reply {
    let state = lock(&state);
    state.authorize(&headers, SCOPE_USERS_READ)?;
    let params = Params::of(&uri);
    let limit = params.limit(USERS_DEFAULT_LIMIT, state.config.user_page_cap)?;
    let search = params
        .get("search")
        .map(|s| Expr::parse(s, &user_search_attr, &SEARCH_OPS))
        .transpose()?;
    let filter = params
        .get("filter")
        .map(|s| Expr::parse(s, &user_filter_attr, &FILTER_OPS))
        .transpose()?;
    let q = params.get("q").map(str::to_lowercase);
    // Listing without search or filter leaves out deactivated users, as Okta does.
    let hide_deprovisioned = search.is_none() && filter.is_none();
    let keep = |u: &OktaUser| {
        let attr = |a: &str| u.attr(a);
        !(hide_deprovisioned && u.status == "DEPROVISIONED")
            && search.as_ref().is_none_or(|e| e.matches(&attr))
            && filter.as_ref().is_none_or(|e| e.matches(&attr))
            && q.as_ref().is_none_or(|q| {
                [&u.first_name, &u.last_name, &Some(u.email.clone())]
                    .into_iter()
                    .flatten()
                    .any(|v| v.to_lowercase().starts_with(q.as_str()))
            })
    };
    let (users, mut next) = page(after(&state.users, params.get("after")), limit, keep);
    if q.is_some() {
        next = None; // `q` is not paged.
    }
    let body = users.into_iter().map(|u| state.user_json(u)).collect();
    Ok(state.listing(&uri, &params, body, next))
}

async fn get_user(
    AxumState(state): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    state.authorize(&headers, SCOPE_USERS_READ)?;
    let id = state
        .user_id(&id)
        .ok_or_else(|| Failure::not_found(&id, "User"))?;
    let user = state.users.get(&id).expect("the user exists");
    Ok(Json(state.user_json(user)).into_response())
}

/// `GET /api/v1/users/{id}/groups`: every group of the user, not paged.
async fn user_groups(
    AxumState(state): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    state.authorize(&headers, SCOPE_USERS_READ)?;
    let id = state
        .user_id(&id)
        .ok_or_else(|| Failure::not_found(&id, "User"))?;
    let groups: Vec<Value> = state
        .groups_of(&id)
        .into_iter()
        .map(|g| state.group_json(g))
        .collect();
    Ok(Json(Value::Array(groups)).into_response())
}

async fn list_groups(AxumState(state): AxumState<Shared>, headers: HeaderMap, uri: Uri) -> Reply {
    let state = lock(&state);
    state.authorize(&headers, SCOPE_GROUPS_READ)?;
    let params = Params::of(&uri);
    let limit = params.limit(GROUPS_DEFAULT_LIMIT, state.config.group_page_cap)?;
    let search = params
        .get("search")
        .map(|s| Expr::parse(s, &group_search_attr, &SEARCH_OPS))
        .transpose()?;
    let filter = params
        .get("filter")
        .map(|s| Expr::parse(s, &group_filter_attr, &FILTER_OPS))
        .transpose()?;
    let q = params.get("q").map(str::to_lowercase);
    let keep = |g: &OktaGroup| {
        let attr = |a: &str| g.attr(a);
        search.as_ref().is_none_or(|e| e.matches(&attr))
            && filter.as_ref().is_none_or(|e| e.matches(&attr))
            && q.as_ref()
                .is_none_or(|q| g.name.to_lowercase().starts_with(q.as_str()))
    };
    let (groups, mut next) = page(after(&state.groups, params.get("after")), limit, keep);
    if q.is_some() {
        next = None; // `q` is not paged.
    }
    let body = groups.into_iter().map(|g| state.group_json(g)).collect();
    Ok(state.listing(&uri, &params, body, next))
}

async fn get_group(
    AxumState(state): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    state.authorize(&headers, SCOPE_GROUPS_READ)?;
    let group = state
        .groups
        .get(&id)
        .ok_or_else(|| Failure::not_found(&id, "UserGroup"))?;
    Ok(Json(state.group_json(group)).into_response())
}

/// `GET /api/v1/groups/{id}/users`: the members, whatever their status, sorted by id.
async fn group_members(
    AxumState(state): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Reply {
    let state = lock(&state);
    state.authorize(&headers, SCOPE_GROUPS_READ)?;
    let group = state
        .groups
        .get(&id)
        .ok_or_else(|| Failure::not_found(&id, "UserGroup"))?;
    let params = Params::of(&uri);
    let limit = params.limit(MEMBERS_DEFAULT_LIMIT, state.config.member_page_cap)?;
    // Sorted by id, as Okta lists them.
    let mut members: Vec<&OktaUser> = state
        .members
        .members(&group.id)
        .filter_map(|id| state.users.get(id))
        .collect();
    members.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let (users, next) = page(after(&members, params.get("after")).copied(), limit, |_| {
        true
    });
    let body = users.into_iter().map(|u| state.user_json(u)).collect();
    Ok(state.listing(&uri, &params, body, next))
}

/// `POST /oauth2/v1/token`: the client-credentials grant, authenticated by a client assertion
/// (`private_key_jwt`) signed RS256 by the service app's key.
async fn token(
    AxumState(state): AxumState<Shared>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Reply {
    let Form(form) = form.map_err(|e| {
        Failure::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("The request must be a form (application/x-www-form-urlencoded): {e}"),
        )
    })?;
    let param = |key: &str| {
        form.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let mut state = lock(&state);
    match param("grant_type") {
        None => {
            return Err(Failure::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The 'grant_type' parameter is required.",
            ))
        }
        Some("client_credentials") => {}
        Some(_) => {
            return Err(Failure::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server. \
                 Configured grant types: [client_credentials].",
            ))
        }
    }
    let assertion =
        match (param("client_assertion_type"), param("client_assertion")) {
            (Some(CLIENT_ASSERTION_TYPE), Some(assertion)) => assertion,
            (Some(kind), Some(_)) => {
                return Err(Failure::invalid_client(format!(
                    "The client_assertion_type {kind} is not supported."
                )))
            }
            _ => return Err(Failure::invalid_client(
                "Client authentication failed. Either the client or the client credentials are \
                 invalid.",
            )),
        };
    let client_id = state.config.client_id.clone();
    if param("client_id").is_some_and(|id| id != client_id) {
        return Err(Failure::invalid_client(
            "The client_id does not match the client_assertion's issuer.",
        ));
    }
    let key = oauth::rsa_key(
        &state.config.public_key_pem,
        "FakeOktaConfig::public_key_pem",
    );
    let token_url = state.token_url();
    let rules = AssertionRules {
        issuer: Some(&client_id),
        subject: Some(&client_id),
        leeway: CLOCK_SKEW_SECS,
        ..AssertionRules::rs256(&token_url)
    };
    let claims = oauth::check_assertion(assertion, &key, &rules).map_err(|e| {
        Failure::invalid_client(match e.kind() {
            ErrorKind::InvalidSignature => "The client_assertion signature is invalid.".into(),
            ErrorKind::ExpiredSignature => "The client_assertion token is expired.".into(),
            ErrorKind::InvalidAudience => "The audience claim for client_assertion must be \
                                               the endpoint invoked for the request."
                .into(),
            ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                "The client_assertion token's 'iss' and 'sub' claims must be the client_id.".into()
            }
            ErrorKind::InvalidAlgorithm => {
                "The client_assertion token must be signed with RS256.".into()
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("The client_assertion token must contain a '{claim}' claim.")
            }
            other => format!("The client_assertion is not a valid JWT: {other:?}"),
        })
    })?;
    if claims.expires_too_late(MAX_ASSERTION_LIFETIME_SECS, CLOCK_SKEW_SECS) {
        return Err(Failure::invalid_client(
            "The client_assertion token has an expiration too far in the future.",
        ));
    }
    if claims.issued_in_future(CLOCK_SKEW_SECS) {
        return Err(Failure::invalid_client(
            "The client_assertion token was issued in the future.",
        ));
    }
    let jti = claims.jti().ok_or_else(|| {
        Failure::invalid_client("The client_assertion token must contain a 'jti' claim.")
    })?;
    if !state.used_jtis.first_use(jti) {
        return Err(Failure::invalid_client(
            "The client_assertion token has already been used (its 'jti' was seen before).",
        ));
    }
    let scopes: Vec<String> = param("scope")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(Failure::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, \
             'scope' must be provided.",
        ));
    }
    let refused: Vec<&str> = scopes
        .iter()
        .filter(|s| !state.config.granted_scopes.contains(s))
        .map(String::as_str)
        .collect();
    if !refused.is_empty() {
        return Err(Failure::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!(
                "The following scopes are not allowed: {}",
                refused.join(" ")
            ),
        ));
    }
    state.tokens_issued += 1;
    let access_token = format!(
        "eyJraWQiOiJmYWtlIn0.{:06}.{:016x}{:016x}",
        state.tokens_issued,
        fastrand::u64(..),
        fastrand::u64(..)
    );
    let ttl = state.config.token_ttl;
    state.tokens.insert(
        access_token.clone(),
        IssuedToken {
            scopes: scopes.clone(),
            expires: Instant::now() + ttl,
            uses: Cell::new(0),
        },
    );
    let body = json!({
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "access_token": access_token,
        "scope": scopes.join(" "),
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Page faults in Okta's dialect: a listing is a bare array; Okta announces no total.
fn page_dialect(kind: crate::PageFaultKind, body: &mut Value, _headers: &mut HeaderMap) -> bool {
    match body {
        Value::Array(items) => crate::cut_items(kind, items),
        _ => false,
    }
}
