//! A stateful fake of the OneLogin API (read side), as far as a directory sync uses it: the
//! OAuth 2.0 client-credentials token endpoint, users (v2), groups (v1 only) and roles with their
//! users (v2), under OneLogin's account-wide rate limit. `base_url` stands for
//! `https://<subdomain>.onelogin.com`.
//!
//! Shapes and quirks follow OneLogin's public API reference:
//!
//! - `POST /auth/oauth2/v2/token` takes `grant_type=client_credentials` as a JSON body with the
//!   client's credentials in `Authorization: client_id:<id>, client_secret:<secret>` or as HTTP
//!   Basic, or as a form with `client_id` and `client_secret` in it. It answers
//!   `{"access_token","created_at","expires_in","refresh_token","token_type":"bearer","account_id"}`;
//!   a token lasts 36000 s, and **the same credentials get the same token back until it expires or
//!   is revoked** (`expires_in` is then what the current token has left);
//! - resource calls need `Authorization: bearer <token>` (any case of the scheme; v1's
//!   `bearer:<token>` is accepted too), else 401 `Authentication Failure`;
//! - v2 errors are `{"statusCode","name","message"}`; v1 errors (the `/api/1/` paths) are
//!   `{"status":{"error":true,"code","type","message"}}`;
//! - v2 lists (`/api/2/users`, `/api/2/roles`, `/api/2/roles/{id}/users`) are bare JSON arrays
//!   paged by `limit` (default 50, silently capped at the endpoint's maximum), `page` (1-based) or
//!   an opaque `cursor` (base64 of `limit=50&page=3`; it wins over `limit` and `page`). Their
//!   headers: `Total-Count`, `Total-Pages`, `Current-Page`, `Page-Items` (the items on this page),
//!   `Before-Cursor` (not on the first page), `After-Cursor` (not on the last page) and a `Link`
//!   with `rel="prev"`/`rel="next"`. Paging is by offset, as on the real API: a user added or
//!   removed during a walk shifts the later pages;
//! - users are sorted by id; a user is in at most one group (`group_id`); `status` is OneLogin's
//!   integer (0 unactivated, 1 active, 2 suspended, 3 locked, 4 password expired, 5 awaiting
//!   password reset, 7 password pending, 8 security questions required);
//! - groups exist in v1 only: `GET /api/1/groups` answers the v1 envelope
//!   `{"status","pagination":{"before_cursor","after_cursor","previous_link","next_link"},"data"}`,
//!   a fixed number of groups per page, the next page being `?after_cursor=<cursor>`;
//! - every resource request spends one call of an account-wide budget (the token endpoint's do
//!   not) and its response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//!   `X-RateLimit-Reset` (**seconds left** in the window, not an epoch). A spent budget is
//!   answered 429 `TooManyRequestsError` with `X-RateLimit-Remaining: 0`, until the window ends.
//!
//! Tokens can also expire deterministically, after a number of uses
//! ([`FakeOneLoginConfig::token_ttl_requests`]).
//!
//! The shared [`FaultLayer`] sits in front of all this: its injected errors use the v2 error shape
//! (on v1 paths too), carry no `X-RateLimit-*` headers of this fake (its 429s carry `Retry-After`
//! and an `X-RateLimit-Reset` that is an epoch), and they do not spend the budget.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{Path, Request, State as AxumState},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::{
    bind,
    directory::{KeyIndex, Memberships, Record, Table},
    form_pairs, lock, serve, FaultLayer, Faults, Params, RateHeaders, RateLimiter, RequestLog,
    Server,
};

/// The path of the token endpoint.
pub const TOKEN_PATH: &str = "/auth/oauth2/v2/token";

/// The `account_id` the token endpoint reports.
pub const ACCOUNT_ID: u64 = 555_555;

/// How long an access token lasts by default.
pub const TOKEN_LIFETIME_SECS: u64 = 36_000;

/// Every user status OneLogin defines.
pub const USER_STATUSES: [i64; 8] = [0, 1, 2, 3, 4, 5, 7, 8];

/// The clock of the fake starts at 2026-01-01T00:00:00Z and ticks one second per change, so
/// timestamps are deterministic.
const EPOCH: i64 = 1_767_225_600;

/// The page size of v2 lists when the client gives no `limit`.
const DEFAULT_LIMIT: usize = 50;

/// The first ids handed out, so users, groups and roles never share an id.
const FIRST_USER_ID: u64 = 10_000_000;
const FIRST_GROUP_ID: u64 = 500_000;
const FIRST_ROLE_ID: u64 = 200_000;

/// How the fake behaves. `latency` is read once, at start; the rest can be changed while running
/// through `fake.state().config`.
#[derive(Clone, Debug)]
pub struct FakeOneLoginConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The most users one page of `GET /api/2/users` holds, whatever `limit` asks for.
    pub users_page_max: usize,
    /// The most roles one page of `GET /api/2/roles` holds.
    pub roles_page_max: usize,
    /// The most users one page of `GET /api/2/roles/{id}/users` holds.
    pub role_users_page_max: usize,
    /// The groups on one page of `GET /api/1/groups` (fixed: v1 takes no `limit`).
    pub groups_page_size: usize,
    /// Resource calls allowed per rate-limit window, account-wide.
    pub rate_limit: u64,
    /// The length of a rate-limit window (OneLogin's is an hour).
    pub rate_window: Duration,
    /// How long a token lasts from when it is issued (OneLogin's: ten hours).
    pub token_ttl: Duration,
    /// A token stops being accepted once it has authorized this many resource requests (it then
    /// counts as expired, and the token endpoint issues a new one); `None`: only time expires it.
    pub token_ttl_requests: Option<usize>,
    /// Whether v2 lists carry `Total-Count` and `Total-Pages` (the API notes could not confirm
    /// them; without them a client has only the cursors).
    pub count_headers: bool,
    /// A delay applied to every request.
    pub latency: Duration,
}

impl Default for FakeOneLoginConfig {
    fn default() -> FakeOneLoginConfig {
        FakeOneLoginConfig {
            client_id: "ol-client-id".into(),
            client_secret: "ol-client-secret-value".into(),
            users_page_max: 50,
            roles_page_max: 650,
            role_users_page_max: 50,
            groups_page_size: 50,
            rate_limit: 5_000,
            rate_window: Duration::from_secs(3_600),
            token_ttl: Duration::from_secs(TOKEN_LIFETIME_SECS),
            token_ttl_requests: None,
            count_headers: true,
            latency: Duration::ZERO,
        }
    }
}

/// A user of the OneLogin account, with the fields of the v2 user object.
#[derive(Clone, Debug, Default)]
pub struct OUser {
    pub id: u64,
    pub email: String,
    pub username: String,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub company: Option<String>,
    /// One of [`USER_STATUSES`].
    pub status: i64,
    /// 1: approved (0 unapproved, 2 rejected, 3 unlicensed).
    pub state: i64,
    /// The user's one group, if any.
    pub group_id: Option<u64>,
    pub directory_id: Option<u64>,
    pub external_id: Option<String>,
    pub custom_attributes: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_login: Option<String>,
}

/// A group (v1). Its members are the users whose `group_id` is its id.
#[derive(Clone, Debug)]
pub struct OGroup {
    pub id: u64,
    pub name: String,
    pub reference: Option<String>,
}

/// A role; its users are in [`State::role_members`].
#[derive(Clone, Debug)]
pub struct ORole {
    pub id: u64,
    pub name: String,
}

impl Record for OUser {
    type Id = u64;

    fn id(&self) -> &u64 {
        &self.id
    }
}

impl Record for OGroup {
    type Id = u64;

    fn id(&self) -> &u64 {
        &self.id
    }
}

impl Record for ORole {
    type Id = u64;

    fn id(&self) -> &u64 {
        &self.id
    }
}

/// Ids (numbers here) as the shared indexes hold them.
fn key(id: u64) -> String {
    id.to_string()
}

/// The ids an index gives, as numbers, sorted.
fn sorted_ids<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<u64> {
    let mut ids: Vec<u64> = keys
        .map(|k| k.parse().expect("an index holds numeric ids"))
        .collect();
    ids.sort_unstable();
    ids
}

/// The access token the credentials currently get.
#[derive(Clone, Debug)]
struct IssuedToken {
    access_token: String,
    refresh_token: String,
    created_at: String,
    issued: Instant,
    /// Resource requests it has authorized.
    uses: usize,
}

/// Everything the fake knows. Lock it only briefly, never across an await. Change users through
/// the seeding helpers (e.g. [`FakeOneLogin::update_user`]): they keep the email index right.
#[derive(Debug)]
pub struct State {
    pub config: FakeOneLoginConfig,
    pub base_url: String,
    /// In creation order, which is id order (ids are a counter), the order lists return them in.
    pub users: Table<OUser>,
    /// In creation order, which is id order.
    pub groups: Table<OGroup>,
    /// In creation order, which is id order.
    pub roles: Table<ORole>,
    /// Emails to user ids.
    user_emails: KeyIndex,
    /// Group names to group ids.
    group_names: KeyIndex,
    /// Role names to role ids.
    role_names: KeyIndex,
    /// The users of each role, and the roles of each user.
    pub role_members: Memberships,
    token: Option<IssuedToken>,
    token_requests: usize,
    tokens_issued: usize,
    rate: RateLimiter,
    next_user: u64,
    next_group: u64,
    next_role: u64,
    ticks: i64,
}

impl State {
    fn new(config: FakeOneLoginConfig, base_url: String) -> State {
        let rate = RateLimiter::new(config.rate_limit, config.rate_window);
        State {
            rate,
            config,
            base_url,
            users: Table::default(),
            groups: Table::default(),
            roles: Table::default(),
            user_emails: KeyIndex::default(),
            group_names: KeyIndex::default(),
            role_names: KeyIndex::default(),
            role_members: Memberships::default(),
            token: None,
            token_requests: 0,
            tokens_issued: 0,
            next_user: FIRST_USER_ID,
            next_group: FIRST_GROUP_ID,
            next_role: FIRST_ROLE_ID,
            ticks: 0,
        }
    }

    /// The fake's clock, one second later on each call.
    fn now(&mut self) -> String {
        self.ticks += 1;
        timestamp(EPOCH + self.ticks)
    }

    /// The id of the user with this email (case-insensitive).
    pub fn user_id(&self, email: &str) -> Option<u64> {
        sorted_ids(self.user_emails.ids(email).iter().map(String::as_str))
            .first()
            .copied()
    }

    /// The id of the group with this name (case-insensitive).
    pub fn group_id(&self, name: &str) -> Option<u64> {
        sorted_ids(self.group_names.ids(name).iter().map(String::as_str))
            .first()
            .copied()
    }

    /// The id of the role with this name (case-insensitive).
    pub fn role_id(&self, name: &str) -> Option<u64> {
        sorted_ids(self.role_names.ids(name).iter().map(String::as_str))
            .first()
            .copied()
    }

    fn expect_user(&self, email: &str) -> u64 {
        self.user_id(email)
            .unwrap_or_else(|| panic!("no OneLogin user {email}"))
    }

    fn expect_group(&self, name: &str) -> u64 {
        self.group_id(name)
            .unwrap_or_else(|| panic!("no OneLogin group {name}"))
    }

    fn expect_role(&self, name: &str) -> u64 {
        self.role_id(name)
            .unwrap_or_else(|| panic!("no OneLogin role {name}"))
    }

    /// Changes a user, bumps its `updated_at` and keeps the email index right.
    fn change_user(&mut self, id: u64, change: impl FnOnce(&mut OUser)) {
        let now = self.now();
        let user = self.users.get_mut(&id).expect("the user exists");
        let old = user.email.clone();
        user.updated_at = now;
        change(user);
        let new = user.email.clone();
        self.user_emails.rekey(&old, &new, &key(id));
    }

    fn token_expired(&self, token: &IssuedToken) -> bool {
        token.issued.elapsed() >= self.config.token_ttl
            || self
                .config
                .token_ttl_requests
                .is_some_and(|n| token.uses >= n)
    }

    /// Checks the `Authorization` header of a resource request and counts one use of the token.
    fn authorize(&mut self, headers: &HeaderMap) -> Result<(), Failure> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        let valid = match (&self.token, presented) {
            (Some(current), Some(token)) => {
                current.access_token == token && !self.token_expired(current)
            }
            _ => false,
        };
        if !valid {
            return Err(Failure::unauthorized());
        }
        self.token.as_mut().expect("a valid token").uses += 1;
        Ok(())
    }

    fn user_json(&self, user: &OUser) -> Value {
        json!({
            "id": user.id,
            // OneLogin sends an unset email as null.
            "email": (!user.email.is_empty()).then_some(&user.email),
            "username": user.username,
            "firstname": user.firstname,
            "lastname": user.lastname,
            "title": user.title,
            "department": user.department,
            "company": user.company,
            "status": user.status,
            "state": user.state,
            "group_id": user.group_id,
            "directory_id": user.directory_id,
            "external_id": user.external_id,
            "custom_attributes": user.custom_attributes,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "activated_at": (user.status != 0).then_some(&user.created_at),
            "last_login": user.last_login,
            "member_of": null,
            "manager_user_id": null,
            "manager_ad_id": null,
            "phone": null,
            "samaccountname": null,
            "userprincipalname": null,
            "distinguished_name": null,
            "comment": null,
            "locale_code": null,
            "trusted_idp_id": null,
            "invalid_login_attempts": 0,
            "invitation_sent_at": null,
            "locked_until": null,
            "password_changed_at": null,
        })
    }

    /// A v2 list response: the JSON array and the paging headers.
    fn v2_listing(
        &self,
        uri: &Uri,
        params: &Params,
        paging: Paging,
        total: usize,
        body: Vec<Value>,
    ) -> Response {
        let items = body.len();
        let mut response = Json(Value::Array(body)).into_response();
        let total_pages = total.div_ceil(paging.limit).max(1);
        let before = (paging.page > 1).then(|| v2_cursor(paging.limit, paging.page - 1));
        let after = (paging.page.saturating_mul(paging.limit) < total)
            .then(|| v2_cursor(paging.limit, paging.page + 1));
        let headers = response.headers_mut();
        if self.config.count_headers {
            headers.insert("total-count", HeaderValue::from(total));
            headers.insert("total-pages", HeaderValue::from(total_pages));
        }
        headers.insert("current-page", HeaderValue::from(paging.page));
        headers.insert("page-items", HeaderValue::from(items));
        let mut links = Vec::new();
        let mut others = String::new();
        for (key, value) in &params.0 {
            if !matches!(key.as_str(), "limit" | "page" | "cursor") {
                others.push_str(&format!("{}={}&", encode(key), encode(value)));
            }
        }
        let link = |cursor: &str, rel: &str| {
            format!(
                "<{}{}?{others}cursor={}>; rel=\"{rel}\"",
                self.base_url,
                uri.path(),
                encode(cursor)
            )
        };
        if let Some(cursor) = &before {
            headers.insert("before-cursor", header_value(cursor));
            links.push(link(cursor, "prev"));
        }
        if let Some(cursor) = &after {
            headers.insert("after-cursor", header_value(cursor));
            links.push(link(cursor, "next"));
        }
        if !links.is_empty() {
            headers.insert(header::LINK, header_value(&links.join(", ")));
        }
        response
    }
}

/// The token of `bearer <token>` (any case) or of v1's `bearer:<token>`.
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim();
    if !value.get(..6)?.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let rest = &value[6..];
    let token = rest.strip_prefix(':').or_else(|| rest.strip_prefix(' '))?;
    Some(token.trim()).filter(|t| !t.is_empty())
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("a valid header value")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
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

fn timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("a timestamp in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// 64 random hex digits, the look of OneLogin's tokens.
fn random_token() -> String {
    (0..4)
        .map(|_| format!("{:016x}", fastrand::u64(..)))
        .collect()
}

type Shared = Arc<Mutex<State>>;

/// The fake OneLogin account. Dropping it stops accepting connections.
pub struct FakeOneLogin {
    pub base_url: String,
    /// The configuration the fake started with. To change its behaviour while it runs, change
    /// `state().config` instead.
    pub config: FakeOneLoginConfig,
    pub state: Shared,
    layer: Arc<FaultLayer>,
    _server: Server,
}

impl FakeOneLogin {
    /// Binds 127.0.0.1:0 and serves the fake on the current tokio runtime.
    pub async fn start(config: FakeOneLoginConfig) -> FakeOneLogin {
        let (listener, base_url) = bind().await;
        let layer = Arc::new(
            FaultLayer::new(config.latency, error_response)
                .with_is_mutation(is_mutation)
                .with_pages(page_dialect),
        );
        let state = Arc::new(Mutex::new(State::new(config.clone(), base_url.clone())));
        let server = serve(listener, router(state.clone()), layer.clone());
        FakeOneLogin {
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

    /// `{base_url}/auth/oauth2/v2/token`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url)
    }

    // Seeding. These panic on a conflict or an unknown name: a test that does that has a bug.

    /// Adds an active, approved user named after the email (`alice.doe@example.com` is Alice Doe,
    /// username `alice.doe`); returns its id.
    pub fn add_user(&self, email: &str) -> u64 {
        let mut state = self.state();
        assert!(
            state.user_id(email).is_none(),
            "seeding user {email}: the email is taken"
        );
        let (firstname, lastname) = crate::names_from_email(email);
        let id = state.next_user;
        state.next_user += 1;
        let created = state.now();
        let user = OUser {
            id,
            email: email.to_owned(),
            username: email.split('@').next().unwrap_or_default().to_owned(),
            firstname,
            lastname,
            status: 1,
            state: 1,
            updated_at: created.clone(),
            created_at: created,
            ..OUser::default()
        };
        state.user_emails.insert(email, &key(id));
        state.users.push(user);
        id
    }

    /// Changes the user with this email and bumps its `updated_at` (which is already the new value
    /// when `change` runs). `change` may change the email too.
    pub fn update_user(&self, email: &str, change: impl FnOnce(&mut OUser)) {
        let mut state = self.state();
        let id = state.expect_user(email);
        state.change_user(id, change);
    }

    /// Sets the status of the user with this email (one of [`USER_STATUSES`]).
    pub fn set_status(&self, email: &str, status: i64) {
        assert!(
            USER_STATUSES.contains(&status),
            "unknown OneLogin user status {status}"
        );
        self.update_user(email, |user| user.status = status);
    }

    /// Deletes the user with this email, and its role memberships.
    pub fn remove_user(&self, email: &str) {
        let mut state = self.state();
        let id = state.expect_user(email);
        let position = state.users.position(&id).expect("the user exists");
        let user = state.users.remove(position);
        state.user_emails.remove(&user.email, &key(id));
        state.role_members.remove_member(&key(id));
    }

    /// Adds a group and makes it the group of these users (a user has one group: this one
    /// replaces any they had); returns its id.
    pub fn add_group(&self, name: &str, member_emails: &[&str]) -> u64 {
        let mut state = self.state();
        assert!(
            state.group_id(name).is_none(),
            "seeding group {name}: the name is taken"
        );
        let members: Vec<u64> = member_emails.iter().map(|e| state.expect_user(e)).collect();
        let id = state.next_group;
        state.next_group += 1;
        state.groups.push(OGroup {
            id,
            name: name.to_owned(),
            reference: None,
        });
        state.group_names.insert(name, &key(id));
        for member in members {
            state.change_user(member, |user| user.group_id = Some(id));
        }
        id
    }

    /// Puts the user with this email in the group with this name, or in none.
    pub fn set_group(&self, email: &str, group: Option<&str>) {
        let mut state = self.state();
        let group_id = group.map(|name| state.expect_group(name));
        let id = state.expect_user(email);
        state.change_user(id, |user| user.group_id = group_id);
    }

    /// Adds a role with these users; returns its id.
    pub fn add_role(&self, name: &str, member_emails: &[&str]) -> u64 {
        let mut state = self.state();
        assert!(
            state.role_id(name).is_none(),
            "seeding role {name}: the name is taken"
        );
        let members: Vec<u64> = member_emails.iter().map(|e| state.expect_user(e)).collect();
        let id = state.next_role;
        state.next_role += 1;
        state.roles.push(ORole {
            id,
            name: name.to_owned(),
        });
        state.role_names.insert(name, &key(id));
        for member in members {
            state.role_members.add(&key(id), &key(member));
        }
        id
    }

    /// Adds the user with this email to the role with this name, or removes it.
    pub fn set_role_member(&self, role: &str, email: &str, member: bool) {
        let mut state = self.state();
        let role_id = state.expect_role(role);
        let user_id = state.expect_user(email);
        if member {
            state.role_members.add(&key(role_id), &key(user_id));
        } else {
            state.role_members.remove(&key(role_id), &key(user_id));
        }
    }

    // Inspection and control.

    /// The id of the user with this email (case-insensitive).
    pub fn user_id(&self, email: &str) -> Option<u64> {
        self.state().user_id(email)
    }

    /// The user with this email, as the fake holds it.
    pub fn user(&self, email: &str) -> Option<OUser> {
        let state = self.state();
        state
            .user_id(email)
            .and_then(|id| state.users.get(&id).cloned())
    }

    /// Every request received, faulted or not, in order of arrival.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.layer.requests()
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

    /// Requests that reached the token endpoint (faulted ones do not), whatever their outcome.
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// Distinct access tokens issued: a token handed out again is not counted twice.
    pub fn tokens_issued(&self) -> usize {
        self.state().tokens_issued
    }

    /// Makes the access tokens issued from now on (and those already issued) stop working after
    /// `n` authorized requests; `None`: only their lifetime ends them.
    pub fn set_token_ttl_requests(&self, n: Option<usize>) {
        self.state().config.token_ttl_requests = n;
    }

    /// Revokes the current token: resource calls with it get 401, the next token request gets a
    /// new one.
    pub fn revoke_tokens(&self) {
        self.state().token = None;
    }

    /// Spends the budget of the current rate-limit window (opening one if needed) down to `n`
    /// calls left (or gives some back, when fewer than `n` were left).
    pub fn set_rate_remaining(&self, n: u64) {
        self.state().rate.set_remaining(n);
    }

    /// Calls left in the current rate-limit window (the full budget when none is open).
    pub fn rate_remaining(&self) -> u64 {
        self.state().rate.remaining()
    }

    /// Requests answered 429 by the fake's rate limiter (not by the fault layer).
    pub fn rate_limited(&self) -> usize {
        self.state().rate.refused
    }
}

/// Nothing in this fake changes state through the API; the token endpoint is a POST, but no change
/// to the directory either.
fn is_mutation(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && path != TOKEN_PATH
}

// ---------------------------------------------------------------------------------------------
// Errors

/// A failed request: `{"statusCode","name","message"}` (v2 and the token endpoint), or
/// `{"status":{"error":true,"code","type","message"}}` once made [`Failure::v1`].
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    name: &'static str,
    message: String,
    v1: bool,
}

impl Failure {
    fn new(status: StatusCode, name: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            name,
            message: message.into(),
            v1: false,
        }
    }

    /// The same error, in the v1 shape.
    fn v1(mut self) -> Failure {
        self.v1 = true;
        self
    }

    fn unauthorized() -> Failure {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authentication Failure",
        )
    }

    fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, "NotFoundError", message)
    }

    fn rate_limited() -> Failure {
        Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsError",
            "Rate limit exceeded",
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = if self.v1 {
            let kind = match self.status {
                StatusCode::UNAUTHORIZED => "Unauthorized",
                StatusCode::BAD_REQUEST => "bad request",
                StatusCode::NOT_FOUND => "not found",
                status => status.canonical_reason().unwrap_or("error"),
            };
            json!({ "status": {
                "error": true,
                "code": self.status.as_u16(),
                "type": kind,
                "message": self.message,
            } })
        } else {
            json!({
                "statusCode": self.status.as_u16(),
                "name": self.name,
                "message": self.message,
            })
        };
        (self.status, Json(body)).into_response()
    }
}

/// The body of an error injected by the fault layer, in the v2 shape.
fn error_response(status: StatusCode, detail: &str) -> Response {
    match status {
        StatusCode::TOO_MANY_REQUESTS => Failure::rate_limited(),
        StatusCode::UNAUTHORIZED => Failure::unauthorized(),
        StatusCode::INTERNAL_SERVER_ERROR => Failure::new(status, "InternalServerError", detail),
        StatusCode::SERVICE_UNAVAILABLE => Failure::new(status, "ServiceUnavailable", detail),
        _ => Failure::new(status, "Error", detail),
    }
    .into_response()
}

type Reply = Result<Response, Failure>;

// ---------------------------------------------------------------------------------------------
// Routes

fn router(state: Shared) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route("/api/2/users", get(list_users))
        .route("/api/2/users/{id}", get(get_user))
        .route("/api/2/users/{id}/roles", get(user_roles))
        .route("/api/2/roles", get(list_roles))
        .route("/api/2/roles/{id}/users", get(role_users))
        .route("/api/1/groups", get(list_groups))
        .fallback(|uri: Uri| async move {
            let failure = Failure::not_found("Not Found");
            if is_v1(uri.path()) {
                failure.v1()
            } else {
                failure
            }
        })
        .method_not_allowed_fallback(|| async {
            Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "Method Not Allowed",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .with_state(state)
}

fn is_v1(path: &str) -> bool {
    path.starts_with("/api/1/")
}

/// OneLogin's rate limit: every resource request (not the token endpoint's) spends one call of
/// the window, a spent window is answered 429, and every resource response carries the
/// `X-RateLimit-*` headers.
async fn rate_limit(AxumState(state): AxumState<Shared>, request: Request, next: Next) -> Response {
    if request.uri().path() == TOKEN_PATH {
        return next.run(request).await;
    }
    let verdict = lock(&state).rate.check();
    let mut response = if verdict.allowed {
        next.run(request).await
    } else if is_v1(request.uri().path()) {
        Failure::rate_limited().v1().into_response()
    } else {
        Failure::rate_limited().into_response()
    };
    verdict.stamp(response.headers_mut(), RateHeaders::OneLogin);
    response
}

// ---------------------------------------------------------------------------------------------
// Query parameters and paging

/// The page a v2 list request asks for.
#[derive(Clone, Copy, Debug)]
struct Paging {
    /// At least 1 and at most the endpoint's maximum.
    limit: usize,
    /// 1-based.
    page: usize,
}

impl Paging {
    /// `cursor` when given (it holds `limit` and `page`), else `limit` (default 50) and `page`
    /// (default 1); `limit` is capped at `max`, and 0 is taken as 1 for both.
    fn of(params: &Params, max: usize) -> Result<Paging, Failure> {
        let max = max.max(1);
        if let Some(cursor) = params.get("cursor").filter(|c| !c.is_empty()) {
            let (limit, page) =
                decode_v2_cursor(cursor).ok_or_else(|| Failure::bad_request("Invalid cursor"))?;
            return Ok(Paging {
                limit: limit.clamp(1, max),
                page: page.max(1),
            });
        }
        let number = |name: &str, default: usize| match params.get(name) {
            None | Some("") => Ok(default),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| Failure::bad_request(format!("Invalid {name}: {v}"))),
        };
        Ok(Paging {
            limit: number("limit", DEFAULT_LIMIT)?.clamp(1, max),
            page: number("page", 1)?.max(1),
        })
    }

    fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.limit)
    }

    /// This page of `items`.
    fn of_items<T>(&self, items: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
        items.skip(self.offset()).take(self.limit)
    }
}

/// A v2 cursor: base64 of `limit=50&page=3`.
fn v2_cursor(limit: usize, page: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("limit={limit}&page={page}"))
}

fn decode_base64(cursor: &str) -> Option<String> {
    // A `+` sent unencoded in a query arrives as a space.
    let cursor = cursor.trim().replace(' ', "+");
    let cursor = cursor.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cursor)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor))
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn decode_v2_cursor(cursor: &str) -> Option<(usize, usize)> {
    let text = decode_base64(cursor)?;
    let pairs = form_pairs(&text);
    let number = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    Some((number("limit")?, number("page")?))
}

/// A v1 groups cursor: base64 of `{<group id>}`.
fn v1_cursor(id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{{id}}}"))
}

fn decode_v1_cursor(cursor: &str) -> Result<u64, Failure> {
    decode_base64(cursor)
        .and_then(|text| {
            text.strip_prefix('{')
                .and_then(|t| t.strip_suffix('}'))
                .and_then(|id| id.parse().ok())
        })
        .ok_or_else(|| Failure::bad_request("Invalid cursor").v1())
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// `POST /auth/oauth2/v2/token`: the client-credentials grant.
async fn token(AxumState(state): AxumState<Shared>, headers: HeaderMap, body: Bytes) -> Reply {
    let mut state = lock(&state);
    state.token_requests += 1;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let fields: HashMap<String, String> = if is_form {
        form_pairs(&String::from_utf8_lossy(&body))
            .into_iter()
            .collect()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
                .collect(),
            _ => HashMap::new(),
        }
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let credentials = match authorization {
        Some(value) => header_credentials(value),
        // Credentials in the body: the form only.
        None if is_form => fields
            .get("client_id")
            .cloned()
            .zip(fields.get("client_secret").cloned()),
        None => None,
    };
    let known = credentials.is_some_and(|(id, secret)| {
        id == state.config.client_id && secret == state.config.client_secret
    });
    if !known {
        return Err(Failure::unauthorized());
    }
    if fields.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(Failure::bad_request("grant_type is incorrect/absent"));
    }
    let current = state
        .token
        .as_ref()
        .filter(|t| !state.token_expired(t))
        .cloned();
    let token = match current {
        Some(token) => token,
        None => {
            let token = IssuedToken {
                access_token: random_token(),
                refresh_token: random_token(),
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                issued: Instant::now(),
                uses: 0,
            };
            state.tokens_issued += 1;
            state.token = Some(token.clone());
            token
        }
    };
    let expires_in = state
        .config
        .token_ttl
        .as_secs()
        .saturating_sub(token.issued.elapsed().as_secs());
    let body = json!({
        "access_token": token.access_token,
        "created_at": token.created_at,
        "expires_in": expires_in,
        "refresh_token": token.refresh_token,
        "token_type": "bearer",
        "account_id": ACCOUNT_ID,
    });
    Ok(Json(body).into_response())
}

/// The `(client_id, client_secret)` of an `Authorization` header: OneLogin's
/// `client_id:<id>, client_secret:<secret>`, or HTTP Basic.
fn header_credentials(value: &str) -> Option<(String, String)> {
    if let Some(basic) = value
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("basic "))
        .map(|_| value[6..].trim())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((id.to_owned(), secret.to_owned()));
    }
    let mut id = None;
    let mut secret = None;
    for part in value.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("client_id:") {
            id = Some(v.trim().to_owned());
        } else if let Some(v) = part.strip_prefix("client_secret:") {
            secret = Some(v.trim().to_owned());
        }
    }
    id.zip(secret)
}

/// `GET /api/2/users`: every user, sorted by id; `email=` keeps the one with that email
/// (case-insensitive).
async fn list_users(AxumState(state): AxumState<Shared>, headers: HeaderMap, uri: Uri) -> Reply {
    let mut state = lock(&state);
    state.authorize(&headers)?;
    let params = Params::of(&uri);
    let paging = Paging::of(&params, state.config.users_page_max)?;
    let (total, body) = match params.get("email") {
        Some(email) => {
            let found: Vec<&OUser> = state
                .user_id(email)
                .and_then(|id| state.users.get(&id))
                .into_iter()
                .collect();
            let body = paging
                .of_items(found.iter())
                .map(|u| state.user_json(u))
                .collect();
            (found.len(), body)
        }
        None => {
            let body = paging
                .of_items(state.users.iter())
                .map(|u| state.user_json(u))
                .collect();
            (state.users.len(), body)
        }
    };
    Ok(state.v2_listing(&uri, &params, paging, total, body))
}

/// `GET /api/2/users/{id}`.
async fn get_user(
    AxumState(state): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let mut state = lock(&state);
    state.authorize(&headers)?;
    let user = id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.users.get(&id))
        .ok_or_else(|| Failure::not_found("User not found"))?;
    Ok(Json(state.user_json(user)).into_response())
}

/// `GET /api/2/roles`: `[{"id","name"}]` sorted by id; `name=` keeps the roles with that name
/// (case-insensitive; a trailing `*` matches a prefix).
async fn list_roles(AxumState(state): AxumState<Shared>, headers: HeaderMap, uri: Uri) -> Reply {
    let mut state = lock(&state);
    state.authorize(&headers)?;
    let params = Params::of(&uri);
    let paging = Paging::of(&params, state.config.roles_page_max)?;
    let role_json = |r: &ORole| json!({ "id": r.id, "name": r.name });
    let (total, body) = match params.get("name").map(str::to_lowercase) {
        Some(name) => {
            let keep = |r: &&ORole| {
                let role = r.name.to_lowercase();
                match name.strip_suffix('*') {
                    Some(prefix) => role.starts_with(prefix),
                    None => role == name,
                }
            };
            let total = state.roles.iter().filter(keep).count();
            let body = paging
                .of_items(state.roles.iter().filter(keep))
                .map(role_json)
                .collect();
            (total, body)
        }
        None => {
            let body = paging.of_items(state.roles.iter()).map(role_json).collect();
            (state.roles.len(), body)
        }
    };
    Ok(state.v2_listing(&uri, &params, paging, total, body))
}

/// `GET /api/2/roles/{id}/users`: `[{"id","name","email","username"}]` sorted by user id.
async fn role_users(
    AxumState(state): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Reply {
    let mut state = lock(&state);
    state.authorize(&headers)?;
    let role = id
        .parse::<u64>()
        .ok()
        .and_then(|id| state.roles.get(&id))
        .ok_or_else(|| Failure::not_found("Role not found"))?;
    let params = Params::of(&uri);
    let paging = Paging::of(&params, state.config.role_users_page_max)?;
    // Sorted by user id, as OneLogin lists them.
    let members = sorted_ids(state.role_members.members(&key(role.id)));
    let count = members.len();
    let body = paging
        .of_items(members.iter().filter_map(|id| state.users.get(id)))
        .map(|u| {
            let name = [&u.firstname, &u.lastname]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            json!({ "id": u.id, "name": name, "email": u.email, "username": u.username })
        })
        .collect();
    Ok(state.v2_listing(&uri, &params, paging, count, body))
}

/// `GET /api/1/groups`: the v1 envelope, `groups_page_size` groups per page sorted by id, paged
/// by `after_cursor` (and back by `before_cursor`).
async fn list_groups(AxumState(state): AxumState<Shared>, headers: HeaderMap, uri: Uri) -> Reply {
    let mut state = lock(&state);
    state.authorize(&headers).map_err(Failure::v1)?;
    let params = Params::of(&uri);
    let size = state.config.groups_page_size.max(1);
    let after = params
        .get("after_cursor")
        .filter(|c| !c.is_empty())
        .map(decode_v1_cursor)
        .transpose()?;
    let before = params
        .get("before_cursor")
        .filter(|c| !c.is_empty())
        .map(decode_v1_cursor)
        .transpose()?;
    let groups = &state.groups;
    // Groups are sorted by id: the positions of those before an id, and of those up to it.
    let below = |id: u64| groups.partition_point(|g| g.id < id);
    let up_to = |id: u64| groups.partition_point(|g| g.id <= id);
    let page: &[OGroup] = match (after, before) {
        (_, Some(before)) => {
            let end = below(before);
            &groups[end.saturating_sub(size)..end]
        }
        (after, None) => {
            let start = after.map_or(0, up_to);
            &groups[start..(start + size).min(groups.len())]
        }
    };
    let before_cursor = page
        .first()
        .filter(|g| below(g.id) > 0)
        .map(|g| v1_cursor(g.id));
    let after_cursor = page
        .last()
        .filter(|g| up_to(g.id) < groups.len())
        .map(|g| v1_cursor(g.id));
    let url = format!("{}/api/1/groups", state.base_url);
    let data: Vec<Value> = page
        .iter()
        .map(|g| json!({ "id": g.id, "name": g.name, "reference": g.reference }))
        .collect();
    let body = json!({
        "status": { "error": false, "code": 200, "type": "success", "message": "Success" },
        "pagination": {
            "before_cursor": before_cursor,
            "after_cursor": after_cursor,
            "previous_link": before_cursor.as_ref().map(|c| format!("{url}?before_cursor={}", encode(c))),
            "next_link": after_cursor.as_ref().map(|c| format!("{url}?after_cursor={}", encode(c))),
        },
        "data": data,
    });
    Ok(Json(body).into_response())
}

/// Page faults in OneLogin's dialects: v2 listings are bare arrays with a `Total-Count` header; v1
/// pages hold `data` and announce no total.
fn page_dialect(
    kind: crate::PageFaultKind,
    body: &mut Value,
    headers: &mut axum::http::HeaderMap,
) -> bool {
    if kind == crate::PageFaultKind::PastEnd {
        let total = headers
            .get("total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        return match total {
            Some(t) if t > 0 => {
                headers.insert("total-count", axum::http::HeaderValue::from(t - 1));
                true
            }
            _ => false,
        };
    }
    let items = match body {
        Value::Array(items) => Some(items),
        Value::Object(o) => o.get_mut("data").and_then(Value::as_array_mut),
        _ => None,
    };
    items.is_some_and(|items| crate::cut_items(kind, items))
}

/// `GET /api/2/users/{id}/roles`: the ids of the user's roles, a bare JSON array of numbers
/// sorted by id (404 for an unknown user).
async fn user_roles(
    AxumState(state): AxumState<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let mut state = lock(&state);
    state.authorize(&headers)?;
    let user = id
        .parse::<u64>()
        .ok()
        .filter(|id| state.users.get(id).is_some())
        .ok_or_else(|| Failure::not_found("User not found"))?;
    let roles = sorted_ids(state.role_members.groups_of(&key(user)));
    Ok(Json(json!(roles)).into_response())
}
