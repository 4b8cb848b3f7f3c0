//! A stateful fake of Microsoft Entra ID: the v2.0 token endpoint (client credentials, with a
//! client secret or a certificate-signed client assertion) and the parts of Microsoft Graph an
//! identity sync reads (users, groups, members, transitive members, managers).
//!
//! One server plays both hosts: `POST {base_url}/{tenant}/oauth2/v2.0/token` is the token endpoint
//! and `{base_url}/v1.0/...` (or `{base_url}/beta/...`, the same data) is Graph.
//!
//! Paging follows Graph: a page that is not the last carries `@odata.nextLink`, an absolute URL
//! with every query option of the request plus `$skiptoken=X%27<hex>%27`. The token is opaque to
//! clients; inside, it names the collection and the last object of the page, so deleting objects
//! between pages neither skips nor repeats any. A token used on another collection, or mangled
//! (e.g. percent-encoded twice), is a 400.
//!
//! Access tokens last `token_ttl` (`expires_in`) or, for tests, a number of requests
//! (`token_ttl_requests`); Graph answers an expired one 401 `InvalidAuthenticationToken`
//! ("Lifetime validation failed, the token is expired.").

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{Path, RawQuery, Request, State as AxumState},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey};
use serde_json::{json, Map, Value};

use crate::{
    bind, lock,
    oauth::{self, AssertionRules},
    serve, write_json_array, written, FaultLayer, Faults, IssuedTokens, ObjectWriter, RequestLog,
    Server, TokenCheck,
};

/// The scope of an app-only token for Microsoft Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The application id of Microsoft Graph, which may stand for its URI in a scope.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Graph's answers carry this content type.
const ODATA_JSON: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
/// The fixed clock of error bodies and token timestamps, so snapshots are deterministic.
const ERROR_DATE: &str = "2026-01-01T00:00:00";
const TOKEN_TIMESTAMP: &str = "2026-01-01 00:00:00Z";
/// Graph versions served (the same data under each).
const VERSIONS: [&str; 2] = ["v1.0", "beta"];

/// Every user property the fake knows; each user has all of them (null when unset).
const USER_PROPS: &[&str] = &[
    "id",
    "accountEnabled",
    "businessPhones",
    "city",
    "companyName",
    "country",
    "createdDateTime",
    "department",
    "displayName",
    "employeeId",
    "employeeType",
    "givenName",
    "jobTitle",
    "mail",
    "mailNickname",
    "mobilePhone",
    "officeLocation",
    "onPremisesImmutableId",
    "onPremisesSamAccountName",
    "onPremisesSyncEnabled",
    "otherMails",
    "preferredLanguage",
    "proxyAddresses",
    "state",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// What `GET /users` returns without `$select`.
const USER_DEFAULT_PROPS: &[&str] = &[
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

/// Every group property the fake knows; all of them are returned without `$select`.
const GROUP_PROPS: &[&str] = &[
    "id",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "visibility",
];

const USER_TYPE: &str = "#microsoft.graph.user";
const GROUP_TYPE: &str = "#microsoft.graph.group";

/// How the fake behaves. `latency` is read once, at start.
#[derive(Clone, Debug)]
pub struct FakeEntraConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// The public key (PEM) client assertions must be signed with.
    pub public_key_pem: String,
    /// The certificate (PEM) registered for the app. When not empty, the `x5t` / `x5t#S256`
    /// of a client assertion must be its thumbprint (base64url SHA-1 / SHA-256 of the DER);
    /// when empty, either header only has to be present.
    pub certificate_pem: String,
    /// The largest `$top` accepted (Graph: 999).
    pub max_top: usize,
    /// How long an access token lasts (`expires_in`; Entra's are 60 to 90 minutes).
    pub token_ttl: Duration,
    /// A token stops working after authorizing this many Graph requests; `None`: only time.
    pub token_ttl_requests: Option<usize>,
    /// A delay applied to every request.
    pub latency: Duration,
}

impl Default for FakeEntraConfig {
    fn default() -> FakeEntraConfig {
        FakeEntraConfig {
            tenant_id: "tenant-1".into(),
            client_id: "app-client-id".into(),
            client_secret: "entra-secret-value".into(),
            public_key_pem: oauth::TEST_PUBLIC_KEY_PEM.into(),
            certificate_pem: oauth::TEST_CERT_PEM.into(),
            max_top: 999,
            token_ttl: Duration::from_secs(3599),
            token_ttl_requests: None,
            latency: Duration::ZERO,
        }
    }
}

/// A user to seed; `EntraSeedUser::new(mail)` fills the rest and the builder methods adjust it.
#[derive(Clone, Debug, Default)]
pub struct EntraSeedUser {
    pub mail: String,
    /// Defaults to the mail.
    pub upn: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    /// Defaults to "given surname".
    pub display_name: Option<String>,
    pub enabled: bool,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub employee_id: Option<String>,
}

impl EntraSeedUser {
    /// An enabled user named after the mail: `alice.doe@example.com` is Alice Doe.
    pub fn new(mail: &str) -> EntraSeedUser {
        let (given_name, surname) = crate::names_from_email(mail);
        EntraSeedUser {
            mail: mail.to_owned(),
            given_name,
            surname,
            enabled: true,
            ..EntraSeedUser::default()
        }
    }

    pub fn upn(mut self, upn: &str) -> EntraSeedUser {
        self.upn = Some(upn.to_owned());
        self
    }

    pub fn name(mut self, given_name: &str, surname: &str) -> EntraSeedUser {
        self.given_name = Some(given_name.to_owned());
        self.surname = Some(surname.to_owned());
        self
    }

    pub fn display_name(mut self, display_name: &str) -> EntraSeedUser {
        self.display_name = Some(display_name.to_owned());
        self
    }

    pub fn disabled(mut self) -> EntraSeedUser {
        self.enabled = false;
        self
    }

    pub fn job_title(mut self, job_title: &str) -> EntraSeedUser {
        self.job_title = Some(job_title.to_owned());
        self
    }

    pub fn department(mut self, department: &str) -> EntraSeedUser {
        self.department = Some(department.to_owned());
        self
    }

    pub fn employee_id(mut self, employee_id: &str) -> EntraSeedUser {
        self.employee_id = Some(employee_id.to_owned());
        self
    }
}

/// A user of the directory: its properties as Graph names them.
#[derive(Clone, Debug)]
struct DirUser {
    /// Creation order, shared with groups; lists are sorted by it.
    seq: u64,
    id: String,
    props: Map<String, Value>,
    /// The id of the manager.
    manager: Option<String>,
}

impl DirUser {
    fn str_prop(&self, name: &str) -> &str {
        self.props.get(name).and_then(Value::as_str).unwrap_or("")
    }

    fn matches_key(&self, key: &str) -> bool {
        self.id.eq_ignore_ascii_case(key)
            || self.str_prop("userPrincipalName").eq_ignore_ascii_case(key)
            || self.str_prop("mail").eq_ignore_ascii_case(key)
    }
}

#[derive(Clone, Debug)]
struct DirGroup {
    seq: u64,
    id: String,
    props: Map<String, Value>,
    /// Direct members: ids of users and groups, in the order they were added.
    members: Vec<String>,
}

impl DirGroup {
    fn name(&self) -> &str {
        self.props
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// A directory object that is neither a user nor a group (a service principal, a device, an
/// organizational contact): it can be a group member.
#[derive(Clone, Debug)]
struct DirOther {
    seq: u64,
    id: String,
    /// `#microsoft.graph.servicePrincipal`, `#microsoft.graph.device`, …
    odata_type: String,
    /// Its own properties (`id`, `displayName`, and `appId`, `deviceId` or `mail`).
    props: Map<String, Value>,
}

/// A directory object: what a members list holds.
#[derive(Clone, Copy)]
enum Obj<'a> {
    User(&'a DirUser),
    Group(&'a DirGroup),
    Other(&'a DirOther),
}

impl Obj<'_> {
    fn seq(&self) -> u64 {
        match self {
            Obj::User(u) => u.seq,
            Obj::Group(g) => g.seq,
            Obj::Other(o) => o.seq,
        }
    }
}

/// Where an object is kept.
#[derive(Clone, Copy, Debug)]
enum ObjAt {
    User(usize),
    Group(usize),
    Other(usize),
}

/// Everything the fake knows. Lock it only briefly, never across an await.
struct State {
    /// Lowercased id -> where the user, group or other object with that id is.
    ids: HashMap<String, ObjAt>,
    /// Member id -> the positions in `groups` of the groups it is a direct member of, ascending.
    parents: HashMap<String, Vec<usize>>,
    config: FakeEntraConfig,
    base_url: String,
    decoding_key: Option<DecodingKey>,
    /// Base64url SHA-1 and SHA-256 thumbprints of the registered certificate.
    thumbprints: Option<(String, String)>,
    users: Vec<DirUser>,
    /// Lowercased id, UPN and mail -> position in `users`, as of seeding. A hint only: a user
    /// renamed or removed later leaves it stale, so a hit is checked and a miss is scanned for.
    seeded: HashMap<String, usize>,
    groups: Vec<DirGroup>,
    /// Service principals, devices and contacts (group members only).
    others: Vec<DirOther>,
    next_seq: u64,
    /// Access tokens issued (and not expired by [`FakeEntra::expire_tokens`]).
    tokens: IssuedTokens,
    tokens_issued: usize,
    /// Header and claims of each client assertion accepted.
    assertions: Vec<Value>,
    /// Every Nth Graph request is throttled, with this Retry-After.
    throttle: Option<(usize, u64)>,
    graph_requests: usize,
    /// Each request a `$batch` carried: the status it got and its URL.
    batched: Vec<(u16, String)>,
}

impl State {
    fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.base_url, self.config.tenant_id
        )
    }

    fn mint(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The object with this id (exactly).
    fn obj(&self, id: &str) -> Option<Obj<'_>> {
        let obj = match *self.ids.get(&id.to_ascii_lowercase())? {
            ObjAt::User(i) => Obj::User(&self.users[i]),
            ObjAt::Group(i) => Obj::Group(&self.groups[i]),
            ObjAt::Other(i) => Obj::Other(&self.others[i]),
        };
        let found = match obj {
            Obj::User(u) => &u.id,
            Obj::Group(g) => &g.id,
            Obj::Other(o) => &o.id,
        };
        (found == id).then_some(obj)
    }

    /// The user with this id (exactly).
    fn user_by_id(&self, id: &str) -> Option<&DirUser> {
        match self.obj(id)? {
            Obj::User(u) => Some(u),
            _ => None,
        }
    }

    /// Indexes a group's direct members (the group at this position in `groups`).
    fn index_members(&mut self, g: usize) {
        for m in &self.groups[g].members {
            let parents = self.parents.entry(m.clone()).or_default();
            if parents.last() != Some(&g) {
                parents.push(g);
            }
        }
    }

    /// Rebuilds the indexes (after a removal moved objects).
    fn reindex(&mut self) {
        self.ids.clear();
        self.parents.clear();
        for (i, u) in self.users.iter().enumerate() {
            self.ids.insert(u.id.to_ascii_lowercase(), ObjAt::User(i));
        }
        for (i, o) in self.others.iter().enumerate() {
            self.ids.insert(o.id.to_ascii_lowercase(), ObjAt::Other(i));
        }
        for i in 0..self.groups.len() {
            self.ids
                .insert(self.groups[i].id.to_ascii_lowercase(), ObjAt::Group(i));
            self.index_members(i);
        }
    }

    fn user_by_key(&self, key: &str) -> Option<usize> {
        if let Some(ObjAt::User(i)) = self.ids.get(&key.to_ascii_lowercase()) {
            return Some(*i);
        }
        match self.seeded.get(&key.to_lowercase()) {
            Some(&i) if self.users.get(i).is_some_and(|u| u.matches_key(key)) => Some(i),
            _ => self.users.iter().position(|u| u.matches_key(key)),
        }
    }

    fn group_by_id(&self, id: &str) -> Option<usize> {
        match self.ids.get(&id.to_ascii_lowercase()) {
            Some(ObjAt::Group(i)) => Some(*i),
            _ => None,
        }
    }

    fn group_by_key(&self, key: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.id.eq_ignore_ascii_case(key) || g.name().eq_ignore_ascii_case(key))
    }

    fn user_index(&self, key: &str) -> usize {
        self.user_by_key(key)
            .unwrap_or_else(|| panic!("no Entra user {key}"))
    }

    fn group_index(&self, key: &str) -> usize {
        self.group_by_key(key)
            .unwrap_or_else(|| panic!("no Entra group {key}"))
    }

    /// The direct members of a group, sorted by creation.
    fn direct_members(&self, group: &DirGroup) -> Vec<Obj<'_>> {
        let mut members: Vec<Obj<'_>> =
            group.members.iter().filter_map(|id| self.obj(id)).collect();
        members.sort_by_key(Obj::seq);
        members
    }

    /// Every user and group reachable from a group through nested groups, each once, sorted by
    /// creation. Cycles are harmless.
    fn transitive_members(&self, group: &DirGroup) -> Vec<Obj<'_>> {
        let mut seen: HashSet<&str> = HashSet::from([group.id.as_str()]);
        let mut found: Vec<Obj<'_>> = Vec::new();
        let mut queue: Vec<&DirGroup> = vec![group];
        while let Some(g) = queue.pop() {
            for id in &g.members {
                if !seen.insert(id.as_str()) {
                    continue;
                }
                match self.obj(id) {
                    Some(Obj::Group(nested)) => {
                        found.push(Obj::Group(nested));
                        queue.push(nested);
                    }
                    Some(user) => found.push(user),
                    None => {}
                }
            }
        }
        found.sort_by_key(Obj::seq);
        found
    }

    /// The groups a user (or group) is a direct member of, sorted by creation.
    fn member_of(&self, id: &str) -> Vec<&DirGroup> {
        self.parents
            .get(id)
            .into_iter()
            .flatten()
            .map(|&g| &self.groups[g])
            .collect()
    }

    /// Every group a user (or group) is in, directly or through nesting.
    fn transitive_member_of(&self, id: &str) -> Vec<&DirGroup> {
        let mut seen: HashSet<&str> = HashSet::from([id]);
        let mut found: Vec<&DirGroup> = Vec::new();
        let mut queue: Vec<&str> = vec![id];
        while let Some(current) = queue.pop() {
            for g in self.member_of(current) {
                if seen.insert(g.id.as_str()) {
                    found.push(g);
                    queue.push(g.id.as_str());
                }
            }
        }
        found.sort_by_key(|g| g.seq);
        found
    }
}

/// The fake Entra ID + Microsoft Graph server. Dropping it stops accepting connections.
pub struct FakeEntra {
    /// Both the authority host (`{base_url}/{tenant}/oauth2/v2.0/token`) and the Graph host
    /// (`{base_url}/v1.0`).
    pub base_url: String,
    pub config: FakeEntraConfig,
    state: Arc<Mutex<State>>,
    layer: Arc<FaultLayer>,
    _server: Server,
}

impl FakeEntra {
    /// Binds 127.0.0.1:0 and serves the fake on the current tokio runtime. Panics when the
    /// configured public key or certificate is not valid PEM.
    pub async fn start(config: FakeEntraConfig) -> FakeEntra {
        let (listener, base_url) = bind().await;
        let layer = Arc::new(
            FaultLayer::new(config.latency, graph_error_response).with_pages(page_dialect),
        );
        let decoding_key = (!config.public_key_pem.trim().is_empty())
            .then(|| oauth::rsa_key(&config.public_key_pem, "FakeEntraConfig::public_key_pem"));
        let thumbprints = (!config.certificate_pem.trim().is_empty()).then(|| {
            let der = pem_to_der(&config.certificate_pem)
                .expect("FakeEntraConfig::certificate_pem is a PEM certificate");
            (base64url(&sha1(&der)), base64url(&sha256(&der)))
        });
        let state = Arc::new(Mutex::new(State {
            ids: HashMap::new(),
            parents: HashMap::new(),
            config: config.clone(),
            base_url: base_url.clone(),
            decoding_key,
            thumbprints,
            users: Vec::new(),
            seeded: HashMap::new(),
            groups: Vec::new(),
            others: Vec::new(),
            next_seq: 0,
            tokens: IssuedTokens::default(),
            tokens_issued: 0,
            assertions: Vec::new(),
            throttle: None,
            graph_requests: 0,
            batched: Vec::new(),
        }));
        let server = serve(listener, router(state.clone()), layer.clone());
        FakeEntra {
            base_url,
            config,
            state,
            layer,
            _server: server,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The Graph host: the base URL without a version (a client appends `/v1.0`).
    pub fn graph_url(&self) -> String {
        self.base_url.clone()
    }

    /// The authority host (a client appends `/{tenant}/oauth2/v2.0/token`).
    pub fn authority_url(&self) -> String {
        self.base_url.clone()
    }

    /// `{base_url}/{tenant}/oauth2/v2.0/token`, also the audience of client assertions.
    pub fn token_url(&self) -> String {
        self.state().token_url()
    }

    // Seeding and changes. These panic on an unknown key or a conflict: such a test has a bug.

    /// Adds a user; returns its id.
    pub fn add_user(&self, seed: EntraSeedUser) -> String {
        let mut state = self.state();
        let upn = seed.upn.clone().unwrap_or_else(|| seed.mail.clone());
        // The seeding index alone (a scan per user would make seeding quadratic).
        assert!(
            !state.seeded.contains_key(&upn.to_lowercase())
                && !state.seeded.contains_key(&seed.mail.to_lowercase()),
            "seeding Entra user {}: the mail or UPN is taken",
            seed.mail
        );
        let seq = state.mint();
        let id = format!("{seq:08x}-0000-4000-8000-0000000e5e75");
        let display_name = seed.display_name.clone().or_else(|| {
            let parts: Vec<&str> = [&seed.given_name, &seed.surname]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        });
        let mut props = Map::new();
        for name in USER_PROPS {
            props.insert((*name).into(), Value::Null);
        }
        let nickname = seed.mail.split('@').next().unwrap_or_default().to_owned();
        let fields = [
            ("id", json!(id)),
            ("accountEnabled", json!(seed.enabled)),
            ("businessPhones", json!([])),
            ("createdDateTime", json!(format!("{ERROR_DATE}Z"))),
            ("department", json!(seed.department)),
            ("displayName", json!(display_name)),
            ("employeeId", json!(seed.employee_id)),
            ("givenName", json!(seed.given_name)),
            ("jobTitle", json!(seed.job_title)),
            ("mail", json!(seed.mail)),
            ("mailNickname", json!(nickname)),
            ("otherMails", json!([])),
            ("proxyAddresses", json!([format!("SMTP:{}", seed.mail)])),
            ("surname", json!(seed.surname)),
            ("userPrincipalName", json!(upn)),
            ("userType", json!("Member")),
        ];
        for (name, value) in fields {
            props.insert(name.into(), value);
        }
        let position = state.users.len();
        for key in [&id, &upn, &seed.mail] {
            state.seeded.insert(key.to_lowercase(), position);
        }
        state
            .ids
            .insert(id.to_ascii_lowercase(), ObjAt::User(position));
        state.users.push(DirUser {
            seq,
            id: id.clone(),
            props,
            manager: None,
        });
        id
    }

    /// Enables or disables the user with this UPN, mail or id.
    pub fn set_enabled(&self, upn_or_mail: &str, enabled: bool) {
        self.set_user_property(upn_or_mail, "accountEnabled", json!(enabled));
    }

    /// Renames the user with this id (or UPN or mail): same id, new mail and UPN.
    pub fn set_mail(&self, id: &str, mail: &str) {
        let mut state = self.state();
        let i = state.user_index(id);
        let user = &mut state.users[i];
        user.props.insert("mail".into(), json!(mail));
        user.props.insert("userPrincipalName".into(), json!(mail));
        user.props
            .insert("proxyAddresses".into(), json!([format!("SMTP:{mail}")]));
    }

    /// Sets any property of a user (e.g. "companyName", "officeLocation", "usageLocation",
    /// "mail" to null); the name must be one Graph has.
    pub fn set_user_property(&self, user: &str, name: &str, value: Value) {
        let canonical = canonical_name(name, USER_PROPS)
            .unwrap_or_else(|| panic!("{name} is not a user property of the fake"));
        assert!(canonical != "id", "a user's id cannot change");
        let mut state = self.state();
        let i = state.user_index(user);
        state.users[i].props.insert(canonical.into(), value);
    }

    /// Deletes the user: it leaves its groups and stops being anyone's manager.
    pub fn delete_user(&self, upn_or_mail: &str) {
        let mut state = self.state();
        let i = state.user_index(upn_or_mail);
        let id = state.users.remove(i).id;
        for g in &mut state.groups {
            g.members.retain(|m| *m != id);
        }
        for u in &mut state.users {
            if u.manager.as_deref() == Some(id.as_str()) {
                u.manager = None;
            }
        }
        state.reindex();
    }

    /// Makes `manager` the manager of `user` (both a UPN, mail or id).
    pub fn set_manager(&self, user: &str, manager: &str) {
        let mut state = self.state();
        let m = state.user_index(manager);
        let manager_id = state.users[m].id.clone();
        let u = state.user_index(user);
        state.users[u].manager = Some(manager_id);
    }

    pub fn remove_manager(&self, user: &str) {
        let mut state = self.state();
        let u = state.user_index(user);
        state.users[u].manager = None;
    }

    /// Adds a security group; returns its id. Members are users (UPN, mail or id) or, prefixed
    /// with `group:`, groups already added (by name or id), which nests them.
    pub fn add_group(&self, name: &str, members: &[&str]) -> String {
        assert!(
            self.state().group_by_key(name).is_none(),
            "seeding Entra group {name}: the name is taken"
        );
        self.insert_group(name, members)
    }

    /// Adds a security group whose display name another group already has (Entra does not keep
    /// display names unique); returns its id, the only way to tell the two apart.
    pub fn add_group_sharing_name(&self, name: &str, members: &[&str]) -> String {
        assert!(
            self.state().group_by_key(name).is_some(),
            "seeding Entra group {name}: no group has that name yet"
        );
        self.insert_group(name, members)
    }

    /// Adds a directory object that is not a user (`servicePrincipal`, `device` or `orgContact`)
    /// with this display name; returns its id. Make it a member with `object:<id>`.
    pub fn add_other(&self, kind: &str, display_name: &str) -> String {
        let mut state = self.state();
        let seq = state.mint();
        let id = format!("{seq:08x}-0000-4000-8000-0000000b7e55");
        let mut props = Map::new();
        props.insert("id".into(), json!(id));
        props.insert("displayName".into(), json!(display_name));
        match kind {
            "servicePrincipal" => props.insert("appId".into(), json!(format!("{seq:08x}-app"))),
            "device" => props.insert("deviceId".into(), json!(format!("{seq:08x}-dev"))),
            "orgContact" => props.insert("mail".into(), Value::Null),
            other => panic!("{other} is not an object type the fake has"),
        };
        let position = state.others.len();
        state
            .ids
            .insert(id.to_ascii_lowercase(), ObjAt::Other(position));
        state.others.push(DirOther {
            seq,
            id: id.clone(),
            odata_type: format!("#microsoft.graph.{kind}"),
            props,
        });
        id
    }

    /// Sets a property of a non-user object (by id), e.g. an orgContact's `mail`.
    pub fn set_other_property(&self, id: &str, name: &str, value: Value) {
        let mut state = self.state();
        let o = state
            .others
            .iter_mut()
            .find(|o| o.id == id)
            .unwrap_or_else(|| panic!("no object {id}"));
        o.props.insert(name.into(), value);
    }

    fn insert_group(&self, name: &str, members: &[&str]) -> String {
        let mut state = self.state();
        let member_ids: Vec<String> = members.iter().map(|m| member_id(&state, m)).collect();
        let seq = state.mint();
        let id = format!("{seq:08x}-0000-4000-8000-00000000960f");
        let nickname: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let mut props = Map::new();
        let fields = [
            ("id", json!(id)),
            ("createdDateTime", json!(format!("{ERROR_DATE}Z"))),
            ("description", Value::Null),
            ("displayName", json!(name)),
            ("groupTypes", json!([])),
            ("mail", Value::Null),
            ("mailEnabled", json!(false)),
            ("mailNickname", json!(nickname)),
            ("securityEnabled", json!(true)),
            ("visibility", Value::Null),
        ];
        for (name, value) in fields {
            props.insert(name.into(), value);
        }
        let position = state.groups.len();
        state
            .ids
            .insert(id.to_ascii_lowercase(), ObjAt::Group(position));
        state.groups.push(DirGroup {
            seq,
            id: id.clone(),
            props,
            members: member_ids,
        });
        state.index_members(position);
        id
    }

    /// Sets any property of a group (by name or id), e.g. "securityEnabled", "description",
    /// "groupTypes" (`json!(["Unified"])`), "mailEnabled", "mail".
    pub fn set_group_property(&self, group: &str, name: &str, value: Value) {
        let canonical = canonical_name(name, GROUP_PROPS)
            .unwrap_or_else(|| panic!("{name} is not a group property of the fake"));
        assert!(canonical != "id", "a group's id cannot change");
        let mut state = self.state();
        let g = state.group_index(group);
        state.groups[g].props.insert(canonical.into(), value);
    }

    /// Adds a member (a user, or `group:name`) to a group (by name or id).
    pub fn add_member(&self, group: &str, member: &str) {
        let mut state = self.state();
        let id = member_id(&state, member);
        let g = state.group_index(group);
        if !state.groups[g].members.contains(&id) {
            state.groups[g].members.push(id);
            state.index_members(g);
        }
    }

    /// Removes a direct member (a user, or `group:name`) from a group (by name or id).
    pub fn remove_member(&self, group: &str, member: &str) {
        let mut state = self.state();
        let id = member_id(&state, member);
        let g = state.group_index(group);
        state.groups[g].members.retain(|m| *m != id);
        state.reindex();
    }

    /// Deletes a group (by name or id); it leaves the groups it was nested in.
    pub fn delete_group(&self, group: &str) {
        let mut state = self.state();
        let g = state.group_index(group);
        let id = state.groups.remove(g).id;
        for g in &mut state.groups {
            g.members.retain(|m| *m != id);
        }
        state.reindex();
    }

    // Inspection.

    /// The id of the user with this UPN or mail.
    pub fn user_id(&self, upn_or_mail: &str) -> Option<String> {
        let state = self.state();
        state
            .user_by_key(upn_or_mail)
            .map(|i| state.users[i].id.clone())
    }

    /// The id of the group with this name.
    pub fn group_id(&self, name: &str) -> Option<String> {
        let state = self.state();
        state.group_by_key(name).map(|i| state.groups[i].id.clone())
    }

    /// Every property of the user with this UPN, mail or id (plus `managerId`).
    pub fn user(&self, key: &str) -> Option<Value> {
        let state = self.state();
        state.user_by_key(key).map(|i| {
            let user = &state.users[i];
            let mut props = user.props.clone();
            props.insert("managerId".into(), json!(user.manager));
            Value::Object(props)
        })
    }

    /// Every request received, faulted or not, in order of arrival.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.layer.requests()
    }

    /// Each request carried inside a `$batch`, in the order served: the status it got and its
    /// URL (relative to the version, as sent). [`FakeEntra::requests`] logs the batch itself.
    pub fn batched(&self) -> Vec<(u16, String)> {
        self.state().batched.clone()
    }

    /// The Graph versions requests were made to ("v1.0", "beta").
    pub fn graph_versions(&self) -> BTreeSet<String> {
        self.requests()
            .iter()
            .filter_map(|r| graph_version(&r.path))
            .map(str::to_owned)
            .collect()
    }

    /// Requests about one user: `/users/{id}` and anything below it (manager, memberOf,
    /// transitiveMemberOf...), whatever their outcome. A sync that lists users and group
    /// members in bulk makes none.
    pub fn per_user_calls(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                let segments: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
                segments.len() >= 3
                    && VERSIONS.contains(&segments[0])
                    && segments[1].eq_ignore_ascii_case("users")
                    && !segments[2].is_empty()
            })
            .count()
    }

    /// Access tokens issued by the token endpoint.
    pub fn tokens_issued(&self) -> usize {
        self.state().tokens_issued
    }

    /// Makes the access tokens issued from now on (and those already issued) stop working after
    /// `n` authorized requests; `None`: only their lifetime ends them.
    pub fn set_token_ttl_requests(&self, n: Option<usize>) {
        self.state().config.token_ttl_requests = n;
    }

    /// Invalidates every access token issued so far: Graph answers 401 to them, as to an
    /// expired token.
    pub fn expire_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Header and claims (`{"header":{..},"claims":{..}}`) of each client assertion accepted.
    pub fn assertions(&self) -> Vec<Value> {
        self.state().assertions.clone()
    }

    /// Every `n`th Graph request (counting from now) is answered 429 with this `Retry-After`;
    /// `None` stops throttling.
    pub fn set_throttle_every(&self, n: Option<usize>, retry_after_secs: u64) {
        let mut state = self.state();
        state.throttle = n.filter(|n| *n > 0).map(|n| (n, retry_after_secs));
        state.graph_requests = 0;
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

/// The id of a user (UPN, mail or id), of a `group:` (name or id) or of an `object:` (id).
fn member_id(state: &State, member: &str) -> String {
    if let Some(id) = member.strip_prefix("object:") {
        assert!(
            matches!(state.obj(id), Some(Obj::Other(_))),
            "no object {id}"
        );
        return id.to_owned();
    }
    match member.strip_prefix("group:") {
        Some(group) => state.groups[state.group_index(group)].id.clone(),
        None => state.users[state.user_index(member)].id.clone(),
    }
}

/// "v1.0" or "beta" when the path is a Graph path.
fn graph_version(path: &str) -> Option<&str> {
    let first = path.trim_start_matches('/').split('/').next()?;
    VERSIONS.iter().copied().find(|v| *v == first)
}

fn canonical_name(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(name.trim()))
}

// ---------------------------------------------------------------------------------------------
// Errors

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// A fresh GUID-shaped id for error bodies.
fn request_id() -> String {
    let n = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
    format!("{n:08x}-7e57-4e00-8000-{n:012x}")
}

/// A Graph error: `{"error":{"code":..,"message":..,"innerError":{..}}}`.
#[derive(Debug)]
struct GraphError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GraphError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(code: &'static str, message: impl Into<String>) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_found(resource: &str) -> GraphError {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{resource}' does not exist or one of its queried reference-property \
                 objects are not present."
            ),
        )
    }

    fn unauthorized(message: &str) -> GraphError {
        GraphError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let id = request_id();
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": ERROR_DATE,
                    "request-id": id,
                    "client-request-id": id,
                },
            },
        });
        let mut response = odata_json(self.status, &body);
        let headers = response.headers_mut();
        headers.insert("request-id", HeaderValue::from_str(&id).expect("ascii"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                ),
            );
        }
        response
    }
}

/// The body of an error injected by the fault layer, in Graph's shape.
fn graph_error_response(status: StatusCode, detail: &str) -> Response {
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        StatusCode::SERVICE_UNAVAILABLE => "serviceNotAvailable",
        StatusCode::INTERNAL_SERVER_ERROR => "InternalServerError",
        _ => "UnknownError",
    };
    GraphError::new(status, code, detail).into_response()
}

fn odata_json(status: StatusCode, body: &Value) -> Response {
    odata_bytes(status, body.to_string().into_bytes())
}

/// A JSON body already written.
fn odata_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, ODATA_JSON)], body).into_response()
}

type Reply = Result<Response, GraphError>;

type Shared = Arc<Mutex<State>>;

// ---------------------------------------------------------------------------------------------
// Routes

fn router(state: Shared) -> Router {
    // Every route has `{root}` first (the tenant or the Graph version), so the two hosts share
    // one router.
    Router::new()
        .route("/{root}/oauth2/v2.0/token", post(token))
        .merge(graph_routes(&state))
        .fallback(unknown_segment)
        .with_state(state)
}

/// The Graph routes, behind [`graph_guard`]; `$batch` dispatches its requests to these.
fn graph_routes(state: &Shared) -> Router<Shared> {
    Router::new()
        .route("/{root}/$batch", post(batch))
        .route("/{root}/users", get(list_users))
        .route("/{root}/users/{id}", get(get_user))
        .route("/{root}/users/{id}/manager", get(get_manager))
        .route("/{root}/users/{id}/memberOf", get(user_member_of))
        .route(
            "/{root}/users/{id}/transitiveMemberOf",
            get(user_transitive_member_of),
        )
        .route("/{root}/groups", get(list_groups))
        .route("/{root}/groups/{id}", get(get_group))
        .route("/{root}/groups/{id}/members", get(group_members))
        .route(
            "/{root}/groups/{id}/members/{cast}",
            get(group_members_cast),
        )
        .route(
            "/{root}/groups/{id}/transitiveMembers",
            get(group_transitive_members),
        )
        .route(
            "/{root}/groups/{id}/transitiveMembers/{cast}",
            get(group_transitive_members_cast),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), graph_guard))
}

async fn unknown_segment(request: Request) -> GraphError {
    let segment = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next_back()
        .unwrap_or_default()
        .to_owned();
    GraphError::bad(
        "BadRequest",
        format!("Resource not found for the segment '{segment}'."),
    )
}

/// Marks a request `$batch` dispatches: authorized by the batch's own token (checked once, for
/// the batch), but counted and throttled on its own, as Graph does.
#[derive(Clone, Copy)]
struct BatchItem;

/// The most requests one `$batch` may hold (Graph's documented limit).
pub const MAX_BATCH: usize = 20;

/// `POST /{version}/$batch`: JSON batching as Graph documents it (concepts/json-batching.md): a
/// body `{"requests": [{id, method, url, headers?, body?}]}` of at most 20 requests with unique
/// ids, each `url` relative to the version; the answer is 200 with `{"responses": [{id, status,
/// headers, body}]}` in another order than asked (Graph promises none), each request answered
/// (and throttled: a 429 with its own `Retry-After`) on its own. Nested batches and absolute URLs
/// are refused, as Graph refuses them.
async fn batch(
    AxumState(state): AxumState<Shared>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    use tower::ServiceExt as _;
    let invalid = || GraphError::bad("BadRequest", "Invalid batch payload format.");
    let payload: Value = serde_json::from_slice(&body).map_err(|_| invalid())?;
    let requests = payload
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(invalid)?;
    if requests.is_empty() {
        return Err(invalid());
    }
    if requests.len() > MAX_BATCH {
        return Err(GraphError::bad(
            "BadRequest",
            format!("A maximum of {MAX_BATCH} requests is allowed per batch request."),
        ));
    }
    let mut ids = HashSet::new();
    for r in requests {
        let id = r.get("id").and_then(Value::as_str).ok_or_else(invalid)?;
        if !ids.insert(id) {
            return Err(GraphError::bad(
                "BadRequest",
                format!("Request Id '{id}' is duplicated. Each request Id must be unique."),
            ));
        }
    }
    let routes = graph_routes(&state)
        .fallback(unknown_segment)
        .with_state(state.clone());
    let mut responses = Vec::with_capacity(requests.len());
    for r in requests {
        let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
        let method = r.get("method").and_then(Value::as_str).unwrap_or_default();
        let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
        let refused = |message: &str| {
            json!({"id": id, "status": 400, "headers": {"Content-Type": "application/json"},
                   "body": {"error": {"code": "BadRequest", "message": message}}})
        };
        let Ok(method) = method.parse::<axum::http::Method>() else {
            responses.push(Answer::Refused(refused("Invalid method.")));
            continue;
        };
        if url.is_empty() || url.contains("://") {
            responses.push(Answer::Refused(refused(
                "Invalid request URL: it must be relative to the version.",
            )));
            continue;
        }
        let path = url.trim_start_matches('/');
        if path.starts_with("$batch") {
            responses.push(Answer::Refused(refused(
                "Nested batch requests are not supported.",
            )));
            continue;
        }
        let mut item = axum::http::Request::builder()
            .method(method)
            .uri(format!("/{version}/{path}"));
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            item = item.header(header::AUTHORIZATION, auth);
        }
        if let Some(own) = r.get("headers").and_then(Value::as_object) {
            for (k, v) in own {
                if let Some(v) = v.as_str() {
                    item = item.header(k.as_str(), v);
                }
            }
        }
        let body = r
            .get("body")
            .map_or_else(axum::body::Body::empty, |b| b.to_string().into());
        let Ok(mut item) = item.body(body) else {
            responses.push(Answer::Refused(refused("Invalid request.")));
            continue;
        };
        item.extensions_mut().insert(BatchItem);
        let Ok(answer) = routes.clone().oneshot(item).await;
        let status = answer.status().as_u16();
        let mut own = Map::new();
        for (k, v) in answer.headers() {
            if let Ok(v) = v.to_str() {
                own.insert(k.as_str().to_owned(), json!(v));
            }
        }
        let written_json = answer
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("json"));
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        lock(&state).batched.push((status, url.to_owned()));
        // A JSON answer (the handlers write it with serde_json) goes in as it was written,
        // without being parsed and written again; another body (axum's plain-text rejections,
        // an empty one) as the JSON it holds, else `null`.
        let mut response = Vec::with_capacity(bytes.len() + 256);
        let mut o = ObjectWriter::new(&mut response);
        o.str("id", id);
        o.number("status", usize::from(status));
        o.value("headers", &Value::Object(own));
        if written_json && !bytes.is_empty() {
            o.key("body").extend_from_slice(&bytes);
        } else {
            o.value(
                "body",
                &serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            );
        }
        o.end();
        responses.push(Answer::Written(response));
    }
    // Graph answers in whatever order its requests finished: never the order asked.
    responses.reverse();
    let mut out = Vec::new();
    let mut o = ObjectWriter::new(&mut out);
    write_json_array(
        o.key("responses"),
        &responses,
        |out, response| match response {
            Answer::Written(bytes) => out.extend_from_slice(bytes),
            Answer::Refused(value) => {
                serde_json::to_writer(out, value).expect("a JSON value serializes");
            }
        },
    );
    o.end();
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

/// One answer inside a `$batch` response: written from a request's own answer, or a refusal.
enum Answer {
    Written(Vec<u8>),
    Refused(Value),
}

/// Runs before every Graph handler: checks the version and the access token, and throttles.
async fn graph_guard(
    AxumState(state): AxumState<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let version = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if !VERSIONS.contains(&version) {
        return GraphError::bad("BadRequest", format!("Invalid version: {version}"))
            .into_response();
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let item = request.extensions().get::<BatchItem>().is_some();
    {
        let mut state = lock(&state);
        state.graph_requests += 1;
        let (ttl, uses) = (state.config.token_ttl, state.config.token_ttl_requests);
        match &presented {
            // A request of a batch runs under the batch's token, checked once for the batch.
            _ if item => {}
            None => {
                return GraphError::unauthorized("Access token is empty.").into_response();
            }
            Some(token) if state.tokens.check(token, ttl, uses) != TokenCheck::Valid => {
                let message = if token.starts_with("eyJ") {
                    "Lifetime validation failed, the token is expired."
                } else {
                    "IDX14100: JWT is not well formed, there are no dots (.)."
                };
                return GraphError::unauthorized(message).into_response();
            }
            Some(_) => {}
        }
        if let Some((n, secs)) = state.throttle {
            if state.graph_requests % n == 0 {
                let mut response = GraphError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "Too many requests",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                return response;
            }
        }
    }
    next.run(request).await
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

/// An error of the token endpoint, in its shape.
fn token_error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: impl std::fmt::Display,
) -> Response {
    let trace = request_id();
    let correlation = request_id();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} \
             Timestamp: {TOKEN_TIMESTAMP}"
        ),
        "error_codes": [code],
        "timestamp": TOKEN_TIMESTAMP,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store, no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn missing_parameter(name: &str) -> Response {
    token_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900_144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

fn invalid_client(code: u32, description: impl std::fmt::Display) -> Response {
    token_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        code,
        description,
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`: the client credentials grant.
async fn token(
    AxumState(state): AxumState<Shared>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = lock(&state);
    if tenant != state.config.tenant_id {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud. Check with your subscription \
                 administrator, this may happen if there are no active subscriptions for the \
                 tenant."
            ),
        );
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let form: HashMap<String, String> = if is_form {
        parse_query(&String::from_utf8_lossy(&body))
            .into_iter()
            .collect()
    } else {
        HashMap::new()
    };
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());

    let Some(grant_type) = param("grant_type") else {
        return missing_parameter("grant_type");
    };
    if grant_type != "client_credentials" {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    // client_secret_basic: the id and secret in an Authorization: Basic header.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64_decode(b.trim()))
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        });
    let Some(client_id) = param("client_id")
        .map(str::to_owned)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
    else {
        return missing_parameter("client_id");
    };
    if client_id != state.config.client_id {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You may \
                 have sent your authentication request to the wrong tenant."
            ),
        );
    }
    let Some(scope) = param("scope") else {
        return missing_parameter("scope");
    };
    let own_scope = format!("{}/.default", state.base_url);
    let graph_app_scope = format!("{GRAPH_APP_ID}/.default");
    if scope != GRAPH_SCOPE && scope != own_scope && scope != graph_app_scope {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows \
                 must have a scope value with /.default suffixed to the resource identifier \
                 (application ID URI)."
            ),
        );
    }

    if let Some(assertion) = param("client_assertion") {
        match param("client_assertion_type") {
            None => return missing_parameter("client_assertion_type"),
            Some(CLIENT_ASSERTION_TYPE) => {}
            Some(other) => {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    50_027,
                    format!("Invalid client_assertion_type '{other}'."),
                )
            }
        }
        if let Err(response) = verify_assertion(&mut state, assertion, &client_id) {
            return *response;
        }
    } else if let Some(secret) = param("client_secret")
        .map(str::to_owned)
        .or_else(|| basic.map(|(_, secret)| secret))
    {
        if secret != state.config.client_secret {
            return invalid_client(
                7_000_215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request \
                     is the client secret value, not the client secret ID, for a secret added to \
                     app '{client_id}'."
                ),
            );
        }
    } else {
        return invalid_client(
            7_000_216,
            "'client_assertion', 'client_secret' or 'request' is required for the \
             'client_credentials' grant type.",
        );
    }

    let access_token = format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-entra-{:016x}{:016x}.sig",
        fastrand::u64(..),
        fastrand::u64(..)
    );
    state.tokens.issue(&access_token);
    state.tokens_issued += 1;
    let ttl = state.config.token_ttl.as_secs();
    let body = json!({
        "token_type": "Bearer",
        "expires_in": ttl,
        "ext_expires_in": ttl,
        "access_token": access_token,
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store, no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Checks a client assertion: its thumbprint header, signature, audience, issuer, subject,
/// lifetime and jti. Records it when accepted.
fn verify_assertion(
    state: &mut State,
    assertion: &str,
    client_id: &str,
) -> Result<(), Box<Response>> {
    let malformed = |detail: &str| {
        token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50_027,
            format!("JWT token is invalid or malformed. {detail}"),
        )
    };
    let header =
        jsonwebtoken::decode_header(assertion).map_err(|e| Box::new(malformed(&e.to_string())))?;
    let key_not_found = |thumbprint: &str| {
        invalid_client(
            700_027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., \
                 Thumbprint of key used by client: '{thumbprint}']"
            ),
        )
    };
    match (&header.x5t, &header.x5t_s256, &state.thumbprints) {
        (None, None, _) => return Err(Box::new(key_not_found(""))),
        (Some(x5t), _, Some((sha1_thumbprint, _)))
            if x5t.trim_end_matches('=') != sha1_thumbprint =>
        {
            return Err(Box::new(key_not_found(&thumbprint_hex(x5t))));
        }
        (None, Some(s256), Some((_, sha256_thumbprint)))
            if s256.trim_end_matches('=') != sha256_thumbprint =>
        {
            return Err(Box::new(key_not_found(&thumbprint_hex(s256))));
        }
        _ => {}
    }
    let Some(key) = &state.decoding_key else {
        return Err(Box::new(key_not_found("no key registered")));
    };
    let token_url = state.token_url();
    let rules = AssertionRules {
        issuer: Some(client_id),
        subject: Some(client_id),
        algorithms: &[Algorithm::RS256, Algorithm::PS256],
        validate_nbf: true,
        ..AssertionRules::rs256(&token_url)
    };
    let claims = match oauth::check_assertion(assertion, key, &rules) {
        Ok(claims) => claims,
        Err(e) => {
            return Err(Box::new(match e.kind() {
                ErrorKind::InvalidSignature => invalid_client(
                    700_027,
                    "Client assertion contains an invalid signature. [Reason - The provided \
                     signature value did not match the expected signature value.]",
                ),
                ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => invalid_client(
                    700_024,
                    "Client assertion is not within its valid time range.",
                ),
                ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => invalid_client(
                    700_021,
                    "Client assertion application identifier doesn't match 'client_id' \
                     parameter.",
                ),
                ErrorKind::InvalidAudience => invalid_client(
                    700_212,
                    format!(
                        "Client assertion audience claim does not match the token endpoint \
                         '{}'.",
                        state.token_url()
                    ),
                ),
                ErrorKind::InvalidAlgorithm => {
                    malformed(&format!("The algorithm {:?} is not supported.", header.alg))
                }
                _ => malformed(&e.to_string()),
            }));
        }
    };
    if claims.jti().is_none() {
        return Err(Box::new(malformed("Missing required claim: jti")));
    }
    state.assertions.push(json!({
        "header": serde_json::to_value(&header).unwrap_or_default(),
        "claims": claims.0,
    }));
    Ok(())
}

/// The thumbprint a client sent, as the upper-case hex Entra shows in errors.
fn thumbprint_hex(b64: &str) -> String {
    base64_decode(b64).map_or_else(
        || b64.to_owned(),
        |bytes| bytes.iter().map(|b| format!("{b:02X}")).collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Query options

/// The decoded pairs of a query string (or a form body), in order.
fn parse_query(raw: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(&format!("http://query.invalid/?{raw}"))
        .expect("any query string makes a URL");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The query options of a Graph request.
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn new(raw: Option<String>) -> Query {
        Query {
            pairs: parse_query(raw.as_deref().unwrap_or_default()),
        }
    }

    /// A system query option, with or without its `$` (Graph v1.0 accepts both).
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.strip_prefix('$').unwrap_or(k).eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Checks `$select`: `None` without it, else the canonical names (with `id` first).
fn parse_select(
    value: Option<&str>,
    known: &[&'static str],
    type_name: &str,
) -> Result<Option<Vec<&'static str>>, GraphError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let mut names = vec!["id"];
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let canonical = canonical_name(name, known).ok_or_else(|| {
            GraphError::bad(
                "Request_BadRequest",
                format!("Could not find a property named '{name}' on type '{type_name}'."),
            )
        })?;
        if !names.contains(&canonical) {
            names.push(canonical);
        }
    }
    Ok(Some(names))
}

/// Checks `$top` (1..=max, default 100).
fn parse_top(query: &Query, max: usize) -> Result<usize, GraphError> {
    match query.get("top") {
        None => Ok(100.min(max)),
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                GraphError::bad(
                    "Request_UnsupportedQuery",
                    format!(
                        "Invalid page size specified: '{raw}'. Must be between 1 and {max} \
                         inclusive."
                    ),
                )
            }),
    }
}

/// Rejects the query options Graph does not support on directory collections.
fn reject_unsupported(query: &Query) -> Result<(), GraphError> {
    if query.has("skip") {
        return Err(GraphError::bad(
            "Request_BadRequest",
            "'$skip' is not supported by the service.",
        ));
    }
    if query.has("orderby") {
        return Err(GraphError::bad(
            "Request_UnsupportedQuery",
            "Sorting not supported for current query.",
        ));
    }
    if query.has("search") {
        return Err(GraphError::bad(
            "Request_UnsupportedQuery",
            "Request with $search query parameter only works through MSGraph with a special \
             request header: 'ConsistencyLevel: eventual'",
        ));
    }
    Ok(())
}

/// One `property eq literal` clause of a `$filter`.
struct Clause {
    property: &'static str,
    value: Value,
}

/// Parses `prop eq literal [and prop eq literal]...`, literals being `'text'` (with `''` for a
/// quote), `true`, `false` or `null`.
fn parse_filter(
    filter: &str,
    filterable: &[&'static str],
    resource: &str,
) -> Result<Vec<Clause>, GraphError> {
    let invalid = || GraphError::bad("BadRequest", format!("Invalid filter clause: {filter}"));
    let mut clauses = Vec::new();
    let mut rest = filter.trim();
    loop {
        let (property, after) = rest.split_once(char::is_whitespace).ok_or_else(invalid)?;
        let after = after.trim_start();
        let (op, after) = after.split_once(char::is_whitespace).ok_or_else(invalid)?;
        if !op.eq_ignore_ascii_case("eq") {
            return Err(GraphError::bad(
                "Request_UnsupportedQuery",
                format!(
                    "Unsupported or invalid query filter clause specified for property \
                     '{property}' of resource '{resource}'."
                ),
            ));
        }
        let after = after.trim_start();
        let (value, after) = if let Some(quoted) = after.strip_prefix('\'') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(invalid()),
                    Some((i, '\'')) => {
                        if quoted[i + 1..].starts_with('\'') {
                            text.push('\'');
                            chars.next();
                        } else {
                            break i + 1;
                        }
                    }
                    Some((_, c)) => text.push(c),
                }
            };
            (Value::String(text), &quoted[end..])
        } else {
            let (word, after) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
            let value = match word {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => return Err(invalid()),
            };
            (value, after)
        };
        let canonical = canonical_name(property, filterable).ok_or_else(|| {
            GraphError::bad(
                "Request_UnsupportedQuery",
                format!(
                    "Unsupported or invalid query filter clause specified for property \
                     '{property}' of resource '{resource}'."
                ),
            )
        })?;
        clauses.push(Clause {
            property: canonical,
            value,
        });
        let after = after.trim();
        if after.is_empty() {
            return Ok(clauses);
        }
        let (and, next) = after.split_once(char::is_whitespace).ok_or_else(invalid)?;
        if !and.eq_ignore_ascii_case("and") {
            return Err(invalid());
        }
        rest = next.trim_start();
    }
}

/// Whether properties match every clause (text compared case-insensitively, as Graph does).
fn matches(props: &Map<String, Value>, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| {
        let actual = props.get(c.property).unwrap_or(&Value::Null);
        match (actual, &c.value) {
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    })
}

const USER_FILTERABLE: &[&str] = &[
    "id",
    "accountEnabled",
    "companyName",
    "department",
    "displayName",
    "employeeId",
    "givenName",
    "jobTitle",
    "mail",
    "officeLocation",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

const GROUP_FILTERABLE: &[&str] = &[
    "id",
    "displayName",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
];

/// `$expand=manager` or `$expand=manager($select=a,b)`: `Some(select)` when asked.
fn parse_expand(query: &Query) -> Result<Option<Option<Vec<&'static str>>>, GraphError> {
    let Some(expand) = query.get("expand") else {
        return Ok(None);
    };
    let expand = expand.trim();
    let (name, options) = match expand.split_once('(') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix(')').ok_or_else(|| {
                GraphError::bad("BadRequest", format!("Invalid $expand: {expand}"))
            })?;
            (name.trim(), Some(inner))
        }
        None => (expand, None),
    };
    if !name.eq_ignore_ascii_case("manager") {
        return Err(GraphError::bad(
            "BadRequest",
            format!("Could not find a property named '{name}' on type 'microsoft.graph.user'."),
        ));
    }
    let select = match options {
        None => None,
        Some(options) => {
            let mut select = None;
            for option in options.split(';') {
                let (key, value) = option.split_once('=').unwrap_or((option, ""));
                let key = key.trim();
                if key
                    .strip_prefix('$')
                    .unwrap_or(key)
                    .eq_ignore_ascii_case("select")
                {
                    select = parse_select(Some(value), USER_PROPS, "microsoft.graph.user")?;
                } else {
                    return Err(GraphError::bad(
                        "BadRequest",
                        format!("Query option '{key}' is not supported inside $expand."),
                    ));
                }
            }
            select
        }
    };
    Ok(Some(select))
}

/// Checks `$count`: whether to return `@odata.count` (it needs `ConsistencyLevel: eventual`).
fn parse_count(query: &Query, headers: &HeaderMap) -> Result<bool, GraphError> {
    match query.get("count") {
        None | Some("false") => Ok(false),
        Some("true") => {
            let eventual = headers
                .get("consistencylevel")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
            if eventual {
                Ok(true)
            } else {
                Err(GraphError::bad(
                    "Request_BadRequest",
                    "$count is not currently supported.",
                ))
            }
        }
        Some(other) => Err(GraphError::bad(
            "BadRequest",
            format!("Invalid value '{other}' for $count."),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Writes a user as a list renders it: the properties `select` names (or the default set), with
/// `@odata.type` when `typed`, and its `$expand`ed manager with that manager's own selection.
/// Pages are written straight from the records, without building a JSON value per user.
fn write_user(
    out: &mut Vec<u8>,
    user: &DirUser,
    select: Option<&[&str]>,
    typed: bool,
    manager: Option<(&DirUser, Option<&[&str]>)>,
) {
    let mut o = ObjectWriter::new(out);
    if typed {
        o.str("@odata.type", USER_TYPE);
    }
    for name in select.unwrap_or(USER_DEFAULT_PROPS) {
        if USER_PROPS.contains(name) {
            o.value(name, user.props.get(*name).unwrap_or(&Value::Null));
        }
    }
    if let Some((manager, select)) = manager {
        write_user(o.key("manager"), manager, select, true, None);
    }
    o.end();
}

fn write_group(out: &mut Vec<u8>, group: &DirGroup, select: Option<&[&str]>, typed: bool) {
    let mut o = ObjectWriter::new(out);
    if typed {
        o.str("@odata.type", GROUP_TYPE);
    }
    for name in select.unwrap_or(GROUP_PROPS) {
        if GROUP_PROPS.contains(name) {
            o.value(name, group.props.get(*name).unwrap_or(&Value::Null));
        }
    }
    o.end();
}

fn write_object(out: &mut Vec<u8>, obj: Obj<'_>, select: Option<&[&str]>) {
    match obj {
        Obj::User(u) => write_user(out, u, select, true, None),
        Obj::Group(g) => write_group(out, g, select, true),
        Obj::Other(other) => {
            // Only the properties its type has: a `$select` of others (`mail` on a device) is
            // left out, as Graph does on a mixed collection.
            let mut o = ObjectWriter::new(out);
            o.str("@odata.type", &other.odata_type);
            for (name, value) in &other.props {
                if select.is_none_or(|s| s.contains(&name.as_str())) {
                    o.value(name, value);
                }
            }
            o.end();
        }
    }
}

/// A record written by one of the writers above, as a JSON object (single-entity answers).
fn rendered(write: impl FnOnce(&mut Vec<u8>)) -> Map<String, Value> {
    let mut out = Vec::new();
    write(&mut out);
    match serde_json::from_slice(&out).expect("the writers write JSON") {
        Value::Object(map) => map,
        _ => unreachable!("the writers write objects"),
    }
}

/// The properties of a user (`select`, or the default set), with `@odata.type` when `typed`.
fn render_user(user: &DirUser, select: Option<&[&str]>, typed: bool) -> Map<String, Value> {
    rendered(|out| write_user(out, user, select, typed, None))
}

fn render_group(group: &DirGroup, select: Option<&[&str]>, typed: bool) -> Map<String, Value> {
    rendered(|out| write_group(out, group, select, typed))
}

/// Percent-encodes a query key or value the way Graph writes its nextLinks: OData punctuation
/// (`$ , ( ) = : / @ ; * !`) stays as is, the rest (quotes too) is encoded.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~$,()=:/@;*!".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const SKIPTOKEN_MAGIC: &[u8] = b"DSpt\x02\x00";

/// `X'<hex>'`: the magic of directory skip tokens, then `{collection}|{last seq}`.
fn skiptoken_for(collection: &str, last_seq: u64) -> String {
    let mut bytes = SKIPTOKEN_MAGIC.to_vec();
    bytes.extend_from_slice(format!("{collection}|{last_seq}").as_bytes());
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!("X'{hex}'")
}

/// The last seq a skip token names, if it is one of this collection's.
fn seq_of_skiptoken(token: &str, collection: &str) -> Result<u64, GraphError> {
    let invalid = || GraphError::bad("Request_BadRequest", "Invalid Skip Token");
    let hex = token
        .strip_prefix("X'")
        .and_then(|t| t.strip_suffix('\''))
        .ok_or_else(invalid)?;
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(invalid());
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| invalid())?;
    let payload = bytes.strip_prefix(SKIPTOKEN_MAGIC).ok_or_else(invalid)?;
    let payload = std::str::from_utf8(payload).map_err(|_| invalid())?;
    let (token_collection, seq) = payload.rsplit_once('|').ok_or_else(invalid)?;
    if token_collection != collection {
        return Err(invalid());
    }
    seq.parse().map_err(|_| invalid())
}

/// What one list request needs to build its page.
struct ListContext<'q> {
    base_url: String,
    version: String,
    /// The collection's path without the version, e.g. `/users` or `/groups/{id}/members`.
    collection: String,
    query: &'q Query,
    top: usize,
    /// `@odata.context`, e.g. `$metadata#users`.
    context: String,
    count: bool,
}

impl ListContext<'_> {
    /// One page of `items` (sorted by seq): those after the skip token, `top` of them, each
    /// written by `render`. Only the page's items are looked at (the skip token is found by
    /// binary search), and the page is written as it is rendered.
    fn page<T>(
        &self,
        items: &[T],
        seq: impl Fn(&T) -> u64,
        render: impl Fn(&T, &mut Vec<u8>),
    ) -> Reply {
        let after = match self.query.get("skiptoken") {
            None => None,
            Some(token) => Some(seq_of_skiptoken(token, &self.collection)?),
        };
        let from = after.map_or(0, |after| items.partition_point(|item| seq(item) <= after));
        let remaining = &items[from..];
        let page = &remaining[..remaining.len().min(self.top)];
        let count = (self.count && after.is_none()).then_some(items.len());
        let next = page
            .last()
            .filter(|_| remaining.len() > page.len())
            .map(|last| self.next_link(seq(last)));
        let out = written(|out| {
            // Keys in the order Graph sends them (and the order of a sorted JSON object).
            let mut o = ObjectWriter::new(out);
            o.str(
                "@odata.context",
                &format!("{}/{}/{}", self.base_url, self.version, self.context),
            );
            if let Some(count) = count {
                o.number("@odata.count", count);
            }
            if let Some(next) = &next {
                o.str("@odata.nextLink", next);
            }
            write_json_array(o.key("value"), page, |out, item| render(item, out));
            o.end();
        });
        Ok(odata_bytes(StatusCode::OK, out))
    }

    /// The link to the page after the item `last_seq`: the query as asked, with a new skip token.
    fn next_link(&self, last_seq: u64) -> String {
        let mut link = format!("{}/{}{}?", self.base_url, self.version, self.collection);
        for (key, value) in &self.query.pairs {
            if key
                .strip_prefix('$')
                .unwrap_or(key)
                .eq_ignore_ascii_case("skiptoken")
            {
                continue;
            }
            link.push_str(&encode_component(key));
            link.push('=');
            link.push_str(&encode_component(value));
            link.push('&');
        }
        link.push_str("$skiptoken=");
        link.push_str(&encode_component(&skiptoken_for(
            &self.collection,
            last_seq,
        )));
        link
    }
}

fn context_name(set: &str, select: Option<&[&str]>) -> String {
    match select {
        Some(names) => format!("$metadata#{set}({})", names.join(",")),
        None => format!("$metadata#{set}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Graph handlers

async fn list_users(
    AxumState(state): AxumState<Shared>,
    Path(version): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    let query = Query::new(raw);
    reject_unsupported(&query)?;
    let select = parse_select(query.get("select"), USER_PROPS, "microsoft.graph.user")?;
    let top = parse_top(&query, state.config.max_top)?;
    let clauses = match query.get("filter") {
        Some(filter) => parse_filter(filter, USER_FILTERABLE, "User")?,
        None => Vec::new(),
    };
    let expand = parse_expand(&query)?;
    // A Graph known issue: with `$expand`, a page of directory objects holds at most 100,
    // whatever `$top` asks for (the nextLink still carries the `$top` asked for).
    let top = if expand.is_some() { top.min(100) } else { top };
    let count = parse_count(&query, &headers)?;
    let matching: Vec<&DirUser> = state
        .users
        .iter()
        .filter(|u| matches(&u.props, &clauses))
        .collect();
    let list = ListContext {
        base_url: state.base_url.clone(),
        version,
        collection: "/users".into(),
        query: &query,
        top,
        context: context_name("users", select.as_deref()),
        count,
    };
    list.page(
        &matching,
        |u| u.seq,
        |u, out| {
            let manager = expand.as_ref().and_then(|manager_select| {
                let manager = u.manager.as_deref().and_then(|id| state.user_by_id(id))?;
                Some((manager, manager_select.as_deref()))
            });
            write_user(out, u, select.as_deref(), false, manager);
        },
    )
}

/// The user with this id (found through the index) or UPN (Graph takes either in a path).
fn find_user<'s>(state: &'s State, id: &str) -> Result<&'s DirUser, GraphError> {
    let by_id = match state.ids.get(&id.to_ascii_lowercase()) {
        Some(ObjAt::User(i)) => Some(&state.users[*i]),
        _ => None,
    };
    by_id
        .or_else(|| {
            (state.users.iter()).find(|u| u.str_prop("userPrincipalName").eq_ignore_ascii_case(id))
        })
        .ok_or_else(|| GraphError::not_found(id))
}

fn find_group<'s>(state: &'s State, id: &str) -> Result<&'s DirGroup, GraphError> {
    state
        .group_by_id(id)
        .map(|i| &state.groups[i])
        .ok_or_else(|| GraphError::not_found(id))
}

fn entity(base_url: &str, version: &str, context: &str, mut body: Map<String, Value>) -> Response {
    body.insert(
        "@odata.context".into(),
        json!(format!("{base_url}/{version}/$metadata#{context}")),
    );
    odata_json(StatusCode::OK, &Value::Object(body))
}

async fn get_user(
    AxumState(state): AxumState<Shared>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let state = lock(&state);
    let query = Query::new(raw);
    let select = parse_select(query.get("select"), USER_PROPS, "microsoft.graph.user")?;
    let user = find_user(&state, &id)?;
    Ok(entity(
        &state.base_url,
        &version,
        "users/$entity",
        render_user(user, select.as_deref(), false),
    ))
}

async fn get_manager(
    AxumState(state): AxumState<Shared>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let state = lock(&state);
    let query = Query::new(raw);
    let select = parse_select(query.get("select"), USER_PROPS, "microsoft.graph.user")?;
    let user = find_user(&state, &id)?;
    let manager = user
        .manager
        .as_deref()
        .and_then(|m| state.user_by_id(m))
        .ok_or_else(|| GraphError::not_found("manager"))?;
    Ok(entity(
        &state.base_url,
        &version,
        "directoryObjects/$entity",
        render_user(manager, select.as_deref(), true),
    ))
}

/// A list of groups a user is in (directly or transitively).
fn groups_of_user(
    state: &State,
    version: String,
    id: &str,
    raw: Option<String>,
    headers: &HeaderMap,
    transitive: bool,
) -> Reply {
    let query = Query::new(raw);
    reject_unsupported(&query)?;
    let select = parse_select(query.get("select"), GROUP_PROPS, "microsoft.graph.group")?;
    let top = parse_top(&query, state.config.max_top)?;
    let count = parse_count(&query, headers)?;
    let user = find_user(state, id)?;
    let groups = if transitive {
        state.transitive_member_of(&user.id)
    } else {
        state.member_of(&user.id)
    };
    let segment = if transitive {
        "transitiveMemberOf"
    } else {
        "memberOf"
    };
    let list = ListContext {
        base_url: state.base_url.clone(),
        version,
        collection: format!("/users/{id}/{segment}"),
        query: &query,
        top,
        context: context_name("directoryObjects", select.as_deref()),
        count,
    };
    list.page(
        &groups,
        |g| g.seq,
        |g, out| write_group(out, g, select.as_deref(), true),
    )
}

async fn user_member_of(
    AxumState(state): AxumState<Shared>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    groups_of_user(&lock(&state), version, &id, raw, &headers, false)
}

async fn user_transitive_member_of(
    AxumState(state): AxumState<Shared>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    groups_of_user(&lock(&state), version, &id, raw, &headers, true)
}

async fn list_groups(
    AxumState(state): AxumState<Shared>,
    Path(version): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let state = lock(&state);
    let query = Query::new(raw);
    reject_unsupported(&query)?;
    let select = parse_select(query.get("select"), GROUP_PROPS, "microsoft.graph.group")?;
    let top = parse_top(&query, state.config.max_top)?;
    let clauses = match query.get("filter") {
        Some(filter) => parse_filter(filter, GROUP_FILTERABLE, "Group")?,
        None => Vec::new(),
    };
    if query.has("expand") {
        return Err(GraphError::bad(
            "Request_UnsupportedQuery",
            "The fake does not expand group navigation properties.",
        ));
    }
    let count = parse_count(&query, &headers)?;
    let matching: Vec<&DirGroup> = state
        .groups
        .iter()
        .filter(|g| matches(&g.props, &clauses))
        .collect();
    let list = ListContext {
        base_url: state.base_url.clone(),
        version,
        collection: "/groups".into(),
        query: &query,
        top,
        context: context_name("groups", select.as_deref()),
        count,
    };
    list.page(
        &matching,
        |g| g.seq,
        |g, out| write_group(out, g, select.as_deref(), false),
    )
}

async fn get_group(
    AxumState(state): AxumState<Shared>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Reply {
    let state = lock(&state);
    let query = Query::new(raw);
    let select = parse_select(query.get("select"), GROUP_PROPS, "microsoft.graph.group")?;
    let group = find_group(&state, &id)?;
    Ok(entity(
        &state.base_url,
        &version,
        "groups/$entity",
        render_group(group, select.as_deref(), false),
    ))
}

/// Which members to list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cast {
    All,
    Users,
    Groups,
}

fn parse_cast(cast: &str) -> Result<Cast, GraphError> {
    match cast {
        "microsoft.graph.user" => Ok(Cast::Users),
        "microsoft.graph.group" => Ok(Cast::Groups),
        other => Err(GraphError::bad(
            "BadRequest",
            format!("Resource not found for the segment '{other}'."),
        )),
    }
}

/// The members (direct or transitive) of a group, maybe cast to users or groups.
fn members_list(
    state: &State,
    version: String,
    id: &str,
    raw: Option<String>,
    headers: &HeaderMap,
    transitive: bool,
    cast: Cast,
) -> Reply {
    let query = Query::new(raw);
    reject_unsupported(&query)?;
    let (known, type_name): (Vec<&'static str>, &str) = match cast {
        Cast::All => {
            let mut all: Vec<&'static str> = USER_PROPS.to_vec();
            all.extend(GROUP_PROPS.iter().filter(|p| !USER_PROPS.contains(p)));
            (all, "microsoft.graph.directoryObject")
        }
        Cast::Users => (USER_PROPS.to_vec(), "microsoft.graph.user"),
        Cast::Groups => (GROUP_PROPS.to_vec(), "microsoft.graph.group"),
    };
    let select = parse_select(query.get("select"), &known, type_name)?;
    let top = parse_top(&query, state.config.max_top)?;
    let count = parse_count(&query, headers)?;
    let clauses = match (query.get("filter"), cast) {
        (None, _) => Vec::new(),
        (Some(filter), Cast::Users) => parse_filter(filter, USER_FILTERABLE, "User")?,
        (Some(filter), Cast::Groups) => parse_filter(filter, GROUP_FILTERABLE, "Group")?,
        (Some(_), Cast::All) => {
            return Err(GraphError::bad(
                "Request_UnsupportedQuery",
                "Filtering members is only supported on a cast (/microsoft.graph.user).",
            ))
        }
    };
    let group = find_group(state, id)?;
    let members = if transitive {
        state.transitive_members(group)
    } else {
        state.direct_members(group)
    };
    let members: Vec<Obj<'_>> = members
        .into_iter()
        .filter(|m| match (m, cast) {
            (_, Cast::All) => true,
            (Obj::User(u), Cast::Users) => matches(&u.props, &clauses),
            (Obj::Group(g), Cast::Groups) => matches(&g.props, &clauses),
            _ => false,
        })
        .collect();
    let segment = if transitive {
        "transitiveMembers"
    } else {
        "members"
    };
    let (collection, set) = match cast {
        Cast::All => (format!("/groups/{id}/{segment}"), "directoryObjects"),
        Cast::Users => (
            format!("/groups/{id}/{segment}/microsoft.graph.user"),
            "users",
        ),
        Cast::Groups => (
            format!("/groups/{id}/{segment}/microsoft.graph.group"),
            "groups",
        ),
    };
    let list = ListContext {
        base_url: state.base_url.clone(),
        version,
        collection,
        query: &query,
        top,
        context: context_name(set, select.as_deref()),
        count,
    };
    list.page(&members, Obj::seq, |m, out| {
        write_object(out, *m, select.as_deref());
    })
}

async fn group_members(
    AxumState(state): AxumState<Shared>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    members_list(&lock(&state), version, &id, raw, &headers, false, Cast::All)
}

async fn group_members_cast(
    AxumState(state): AxumState<Shared>,
    Path((version, id, cast)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let cast = parse_cast(&cast)?;
    members_list(&lock(&state), version, &id, raw, &headers, false, cast)
}

async fn group_transitive_members(
    AxumState(state): AxumState<Shared>,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    members_list(&lock(&state), version, &id, raw, &headers, true, Cast::All)
}

async fn group_transitive_members_cast(
    AxumState(state): AxumState<Shared>,
    Path((version, id, cast)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Reply {
    let cast = parse_cast(&cast)?;
    members_list(&lock(&state), version, &id, raw, &headers, true, cast)
}

// ---------------------------------------------------------------------------------------------
// Certificates: PEM, base64 (the base64 crate) and SHA-1 / SHA-256 (ring) for x5t

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// Base64url without padding, as JOSE headers carry thumbprints.
pub fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64, standard or url-safe, padded or not; whitespace is skipped.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let standard: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '=')
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT.decode(standard).ok()
}

/// The DER of the first block of a PEM file.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64_decode(&body).filter(|der| !der.is_empty())
}

/// The `x5t` of a PEM certificate: base64url SHA-1 of its DER.
pub fn cert_thumbprint_sha1(cert_pem: &str) -> String {
    base64url(&sha1(&pem_to_der(cert_pem).expect("a PEM certificate")))
}

/// The `x5t#S256` of a PEM certificate: base64url SHA-256 of its DER.
pub fn cert_thumbprint_sha256(cert_pem: &str) -> String {
    base64url(&sha256(&pem_to_der(cert_pem).expect("a PEM certificate")))
}

/// SHA-1, only for certificate thumbprints (`x5t`).
fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// Page faults in Graph's dialect: a page's items are `value`, its total `@odata.count` (only
/// when asked for).
fn page_dialect(kind: crate::PageFaultKind, body: &mut Value, _headers: &mut HeaderMap) -> bool {
    if kind == crate::PageFaultKind::PastEnd {
        return crate::lower(body.get_mut("@odata.count"));
    }
    match body.get_mut("value") {
        Some(Value::Array(items)) => crate::cut_items(kind, items),
        _ => false,
    }
}
