//! The conformance suite: one table of scenarios run against every source connector and every
//! target, through the real `idsync` CLI against the fakes (in the style of object_store's
//! integration suite: the scenarios are written once, a connector is one row).
//!
//! **Sources.** Every row starts its fake seeded from the one [`DIRECTORY`] (twelve people, one of
//! them suspended, three groups of which one is nested in another, and one account without an
//! email), read in pages of [`PAGE`] so that every listing takes at least three pages. A row says
//! how its connector writes its config, refers to groups, treats nested groups, and how a change
//! or a fault is made in its vendor's dialect. [`SCENARIOS`] then run against each row:
//!
//! | scenario | what it asserts |
//! |---|---|
//! | full read | `snapshot --side source`: every person (email, names, active flag) and every group with its members, the users listed over ≥ 3 pages |
//! | nested groups | the row's documented semantics: flattened into the parent, a separate group, or a stated reason why the API has none |
//! | failed page | page 2 of the users answers 503 beyond every retry: exit 1, the error names the source, the listing and the page, no file written |
//! | truncated page | page 2 cut in half once: retried, the same file as the clean read; always: exit 1, no file (never a silent short read) |
//! | 429 storm | every request for two seconds from the first gets 429 with `Retry-After` (waits at their real length): the read succeeds, unchanged, and no request is refused twice (an early retry would be) |
//! | expiring token | the token runs out half way (the next request gets 401): the read succeeds, unchanged, with exactly one refresh |
//! | left out | the account without an email is counted in the plan's `left_out` and named |
//! | rename | a new email on the same id is one `update_user` (no deactivation, no creation); apply converges |
//! | disabled user | planned as `deactivate_user`; apply converges |
//! | membership change | an added and a removed membership are planned as such; apply converges |
//!
//! A scenario a connector cannot show is a documented skip: the row returns the reason, and the
//! suite prints it with the matrix.
//!
//! **Targets.** The Atlassian target (SCIM with the organization admin API) and the generic SCIM
//! target (the same fake, SCIM only) run [`TARGET_SCENARIOS`]: create, link, update, deactivate,
//! reactivate, membership batches, 409 on a retried create (its answer lost, and the lookup idsync
//! makes before sending it again reading a search index that lags), a failed listing page; each
//! plans, applies and plans again to no changes.
//!
//! Adding a connector: write its `start` (seed the fake from [`DIRECTORY`]) and implement
//! [`SourceRow`] (or add a [`TargetRow`]), then add one line to [`SOURCE_ROWS`] (or
//! [`TARGET_ROWS`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::entra::{EntraSeedUser, FakeEntra, FakeEntraConfig};
use crate::fakes::google::{FakeGoogle, FakeGoogleConfig};
use crate::fakes::keycloak::{FakeKeycloak, FakeKeycloakConfig};
use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use crate::fakes::onelogin::{FakeOneLogin, FakeOneLoginConfig, TOKEN_PATH as ONELOGIN_TOKEN};
use crate::fakes::{token_traffic, Faults, PageFault, PageFaultKind, Params, RequestLog, Storm};
use crate::support::{repo, run_beside_fakes, Scratch};

// ---------------------------------------------------------------------------------------------
// The one directory every source row is seeded from

/// Items per page in every listing: twelve people and an account without an email take four pages.
const PAGE: usize = 4;

/// A person of the directory: their email (the names follow from it, `ana.silva@` is Ana Silva)
/// and whether they are active.
struct Person {
    email: &'static str,
    active: bool,
}

/// A group of the directory: its direct members, and the group it is nested in.
struct GroupDef {
    name: &'static str,
    /// The name in lower case: the Atlassian group it is mapped to (and Google's group email).
    slug: &'static str,
    members: &'static [&'static str],
    parent: Option<&'static str>,
}

struct Directory {
    people: &'static [Person],
    /// Parents come before their nested groups.
    groups: &'static [GroupDef],
    /// An account with this username and no email: a record no connector can convert.
    no_email: &'static str,
}

const fn p(email: &'static str) -> Person {
    Person {
        email,
        active: true,
    }
}

const DIRECTORY: Directory = Directory {
    people: &[
        p("ana.silva@example.com"),
        p("ben.okafor@example.com"),
        p("cy.tan@example.com"),
        p("dee.ross@example.com"),
        p("eve.moss@example.com"),
        p("fay.lund@example.com"),
        p("gus.berg@example.com"),
        p("hal.ito@example.com"),
        p("ivy.chen@example.com"),
        p("jon.kerr@example.com"),
        p("kim.lowe@example.com"),
        Person {
            email: "lee.park@example.com",
            active: false,
        },
    ],
    // Each person is in one group at most (OneLogin's users have one group).
    groups: &[
        GroupDef {
            name: "Engineering",
            slug: "engineering",
            members: &[
                "ana.silva@example.com",
                "ben.okafor@example.com",
                "cy.tan@example.com",
                "dee.ross@example.com",
            ],
            parent: None,
        },
        GroupDef {
            name: "Platform",
            slug: "platform",
            members: &["eve.moss@example.com", "fay.lund@example.com"],
            parent: Some("Engineering"),
        },
        GroupDef {
            name: "Sales",
            slug: "sales",
            members: &[
                "gus.berg@example.com",
                "hal.ito@example.com",
                "ivy.chen@example.com",
            ],
            parent: None,
        },
    ],
    no_email: "kiosk",
};

/// The changes the scenarios make.
const RENAMED: (&str, &str) = ("ben.okafor@example.com", "ben.king@example.com");
const DISABLED: &str = "cy.tan@example.com";
const JOINS_SALES: &str = "jon.kerr@example.com";
const LEAVES_ENGINEERING: &str = "ana.silva@example.com";

fn group(name: &str) -> &'static GroupDef {
    DIRECTORY
        .groups
        .iter()
        .find(|g| g.name == name)
        .expect("a group of the directory")
}

// ---------------------------------------------------------------------------------------------
// Source rows

/// How a connector treats a group nested in another.
#[derive(Clone, Copy, Debug)]
enum Nesting {
    /// The parent's members include the nested group's (transitively); the nested group is read
    /// too.
    Flattened,
    /// The nested group is a group of its own; the parent lists its direct members only.
    Separate,
    /// The API has no nested groups (the directory's nested group is seeded as a top-level one).
    Unsupported(&'static str),
}

/// One source connector, with its fake started and seeded from [`DIRECTORY`].
trait SourceRow: Send + Sync {
    fn name(&self) -> &'static str;
    /// The entry of `sources:` (a YAML flow mapping) for a source named `idp` on the fake, with
    /// pages of [`PAGE`] where the page size is a setting.
    fn stanza(&self) -> String;
    /// Environment variables the stanza refers to.
    fn env(&self) -> Vec<(&'static str, String)>;
    /// How mappings refer to a group of the directory (`idp:…`).
    fn group_ref(&self, g: &GroupDef) -> String;
    /// The group's name in a source snapshot.
    fn group_name(&self, g: &GroupDef) -> String;
    fn nesting(&self) -> Nesting;
    /// The path (its end) of the users listing, whose pages the faults aim at.
    fn users_listing(&self) -> String;
    /// The path (its end) of the token endpoint, or why the connector has none to refresh from.
    fn token_path(&self) -> Result<&'static str, &'static str>;
    /// Tokens issued from now on work for this many requests.
    fn set_token_uses(&self, uses: Option<usize>);
    /// Gives the person a new email, same id.
    fn rename(&self, from: &str, to: &str);
    fn set_active(&self, email: &str, active: bool);
    /// Makes the person a direct member of the group, or not.
    fn set_member(&self, g: &GroupDef, email: &str, member: bool);
    fn set_faults(&self, faults: Faults);
    fn requests(&self) -> Vec<RequestLog>;
}

type Start = fn() -> Pin<Box<dyn Future<Output = Box<dyn SourceRow>> + Send>>;

/// Every source connector: one line each.
const SOURCE_ROWS: &[(&str, Start)] = &[
    ("okta", || Box::pin(okta())),
    ("entra", || Box::pin(entra())),
    ("google", || Box::pin(google())),
    ("keycloak", || Box::pin(keycloak())),
    ("onelogin", || Box::pin(onelogin())),
    ("scim", || Box::pin(scim_source())),
];

// --- Okta

/// The fake, and a folder holding the private key (readable by its owner only).
struct Okta(FakeOkta, Scratch);

async fn okta() -> Box<dyn SourceRow> {
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    for person in DIRECTORY.people {
        okta.add_user(OktaSeedUser::new(person.email));
        if !person.active {
            okta.set_status(person.email, "SUSPENDED");
        }
    }
    okta.add_user(OktaSeedUser::new("kiosk@example.com").login(DIRECTORY.no_email));
    okta.update_user(DIRECTORY.no_email, |u| u.email.clear());
    for g in DIRECTORY.groups {
        okta.add_group(g.name, "OKTA_GROUP", g.members);
    }
    let keys = Scratch::new();
    let key = std::fs::read_to_string(repo().join("tests/fixtures/test-rsa-key.pem")).unwrap();
    keys.write("key.pem", &key);
    restrict(&keys.path("key.pem"));
    Box::new(Okta(okta, keys))
}

impl SourceRow for Okta {
    fn name(&self) -> &'static str {
        "okta"
    }
    fn stanza(&self) -> String {
        format!(
            "{{name: idp, type: okta, base_url: \"{}\", page_size: {PAGE}, oauth: {{client_id: {}, private_key_file: \"{}\"}}}}",
            self.0.base_url,
            self.0.config.client_id,
            self.1.path("key.pem").display()
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn group_ref(&self, g: &GroupDef) -> String {
        format!("idp:{}", g.name)
    }
    fn group_name(&self, g: &GroupDef) -> String {
        g.name.into()
    }
    fn nesting(&self) -> Nesting {
        Nesting::Unsupported("Okta groups hold users only: the API has no nested groups")
    }
    fn users_listing(&self) -> String {
        "/api/v1/users".into()
    }
    fn token_path(&self) -> Result<&'static str, &'static str> {
        Ok("/oauth2/v1/token")
    }
    fn set_token_uses(&self, uses: Option<usize>) {
        self.0.set_token_ttl_requests(uses);
    }
    fn rename(&self, from: &str, to: &str) {
        let id = self.0.user_id(from).expect("the user");
        self.0.set_email(&id, to);
    }
    fn set_active(&self, email: &str, active: bool) {
        self.0
            .set_status(email, if active { "ACTIVE" } else { "SUSPENDED" });
    }
    fn set_member(&self, g: &GroupDef, email: &str, member: bool) {
        if member {
            self.0.add_member(g.name, email);
        } else {
            self.0.remove_member(g.name, email);
        }
    }
    fn set_faults(&self, faults: Faults) {
        self.0.set_faults(faults);
    }
    fn requests(&self) -> Vec<RequestLog> {
        self.0.requests()
    }
}

/// Makes a key file readable by its owner only (idsync warns about others).
fn restrict(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod the key file");
    }
    #[cfg(not(unix))]
    let _ = path;
}

// --- Microsoft Entra ID

struct Entra(FakeEntra);

async fn entra() -> Box<dyn SourceRow> {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    for person in DIRECTORY.people {
        let mut seed = EntraSeedUser::new(person.email);
        seed.enabled = person.active;
        e.add_user(seed);
    }
    let kiosk = e.add_user(EntraSeedUser::new("kiosk@example.com"));
    e.set_user_property(&kiosk, "mail", Value::Null);
    e.set_user_property(&kiosk, "userPrincipalName", Value::Null);
    e.set_user_property(&kiosk, "displayName", Value::from(DIRECTORY.no_email));
    for g in DIRECTORY.groups {
        e.add_group(g.name, g.members);
        if let Some(parent) = g.parent {
            e.add_member(parent, &format!("group:{}", g.name));
        }
    }
    Box::new(Entra(e))
}

impl SourceRow for Entra {
    fn name(&self) -> &'static str {
        "entra"
    }
    fn stanza(&self) -> String {
        format!(
            "{{name: idp, type: entra, tenant_id: {}, client_id: {}, client_secret: \"${{TEST_ENTRA_SECRET}}\", authority: \"{}\", base_url: \"{}\", page_size: {PAGE}}}",
            self.0.config.tenant_id,
            self.0.config.client_id,
            self.0.authority_url(),
            self.0.graph_url()
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("TEST_ENTRA_SECRET", self.0.config.client_secret.clone())]
    }
    fn group_ref(&self, g: &GroupDef) -> String {
        format!("idp:{}", g.name)
    }
    fn group_name(&self, g: &GroupDef) -> String {
        g.name.into()
    }
    fn nesting(&self) -> Nesting {
        // `transitive: true` is the default: members are read through `transitiveMembers`.
        Nesting::Flattened
    }
    fn users_listing(&self) -> String {
        "/users".into()
    }
    fn token_path(&self) -> Result<&'static str, &'static str> {
        Ok("/oauth2/v2.0/token")
    }
    fn set_token_uses(&self, uses: Option<usize>) {
        self.0.set_token_ttl_requests(uses);
    }
    fn rename(&self, from: &str, to: &str) {
        let id = self.0.user_id(from).expect("the user");
        self.0.set_mail(&id, to);
    }
    fn set_active(&self, email: &str, active: bool) {
        self.0.set_enabled(email, active);
    }
    fn set_member(&self, g: &GroupDef, email: &str, member: bool) {
        if member {
            self.0.add_member(g.name, email);
        } else {
            self.0.remove_member(g.name, email);
        }
    }
    fn set_faults(&self, faults: Faults) {
        self.0.set_faults(faults);
    }
    fn requests(&self) -> Vec<RequestLog> {
        self.0.requests()
    }
}

// --- Google Workspace

struct Google(FakeGoogle, Scratch);

async fn google() -> Box<dyn SourceRow> {
    let g = FakeGoogle::start(FakeGoogleConfig {
        page_cap: PAGE,
        ..FakeGoogleConfig::default()
    })
    .await;
    for person in DIRECTORY.people {
        g.add_user(person.email);
        g.set_suspended(person.email, !person.active);
    }
    let kiosk = g.add_user("kiosk@example.com");
    g.update_user(&kiosk, |u| {
        u.primary_email.clear();
        u.given_name = DIRECTORY.no_email.into();
        u.family_name.clear();
    });
    for def in DIRECTORY.groups {
        g.add_group(def.name, &format!("{}@example.com", def.slug), def.members);
        if let Some(parent) = def.parent {
            g.set_member(
                &format!("{}@example.com", group(parent).slug),
                &format!("group:{}@example.com", def.slug),
                true,
            );
        }
    }
    // The service account's key file, which names the fake's token endpoint.
    let keys = Scratch::new();
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": g.config.service_account,
        "private_key": std::fs::read_to_string(repo().join("tests/fixtures/test-rsa-key.pem")).unwrap(),
        "token_uri": g.token_url(),
    });
    keys.write("sa.json", &key.to_string());
    restrict(&keys.path("sa.json"));
    Box::new(Google(g, keys))
}

impl SourceRow for Google {
    fn name(&self) -> &'static str {
        "google"
    }
    fn stanza(&self) -> String {
        // Google's page size is the server's (`page_cap`); idsync asks for its maximum.
        format!(
            "{{name: idp, type: google, admin_email: {}, service_account_key_file: \"{}\", base_url: \"{}\"}}",
            self.0.config.admin,
            self.1.path("sa.json").display(),
            self.0.base_url
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn group_ref(&self, g: &GroupDef) -> String {
        format!("idp:{}@example.com", g.slug)
    }
    fn group_name(&self, g: &GroupDef) -> String {
        format!("{}@example.com", g.slug)
    }
    fn nesting(&self) -> Nesting {
        // `include_derived_membership: true` is the default.
        Nesting::Flattened
    }
    fn users_listing(&self) -> String {
        "/admin/directory/v1/users".into()
    }
    fn token_path(&self) -> Result<&'static str, &'static str> {
        Ok("/token")
    }
    fn set_token_uses(&self, uses: Option<usize>) {
        self.0.set_token_ttl_requests(uses);
    }
    fn rename(&self, from: &str, to: &str) {
        let to = to.to_owned();
        self.0.update_user(from, move |u| u.primary_email = to);
    }
    fn set_active(&self, email: &str, active: bool) {
        self.0.set_suspended(email, !active);
    }
    fn set_member(&self, g: &GroupDef, email: &str, member: bool) {
        self.0
            .set_member(&format!("{}@example.com", g.slug), email, member);
    }
    fn set_faults(&self, faults: Faults) {
        self.0.set_faults(faults);
    }
    fn requests(&self) -> Vec<RequestLog> {
        self.0.requests()
    }
}

// --- Keycloak

struct Keycloak(FakeKeycloak);

/// A group's Keycloak path: `/Parent/Name`.
fn keycloak_path(g: &GroupDef) -> String {
    match g.parent {
        Some(parent) => format!("/{parent}/{}", g.name),
        None => format!("/{}", g.name),
    }
}

async fn keycloak() -> Box<dyn SourceRow> {
    let kc = FakeKeycloak::start(FakeKeycloakConfig::default()).await;
    for person in DIRECTORY.people {
        kc.add_user(person.email);
        kc.set_enabled(person.email, person.active);
    }
    kc.add_user_without_email(DIRECTORY.no_email);
    for g in DIRECTORY.groups {
        kc.add_group(&keycloak_path(g), g.members);
    }
    Box::new(Keycloak(kc))
}

impl SourceRow for Keycloak {
    fn name(&self) -> &'static str {
        "keycloak"
    }
    fn stanza(&self) -> String {
        format!(
            "{{name: idp, type: keycloak, base_url: \"{}\", realm: {}, client_id: {}, client_secret: \"${{TEST_KC_SECRET}}\", page_size: {PAGE}}}",
            self.0.base_url, self.0.config.realm, self.0.config.client_id
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("TEST_KC_SECRET", self.0.config.client_secret.clone())]
    }
    fn group_ref(&self, g: &GroupDef) -> String {
        format!("idp:{}", keycloak_path(g))
    }
    fn group_name(&self, g: &GroupDef) -> String {
        keycloak_path(g)
    }
    fn nesting(&self) -> Nesting {
        // A subgroup's members are not members of the parent in Keycloak.
        Nesting::Separate
    }
    fn users_listing(&self) -> String {
        format!("/admin/realms/{}/users", self.0.config.realm)
    }
    fn token_path(&self) -> Result<&'static str, &'static str> {
        Ok("/protocol/openid-connect/token")
    }
    fn set_token_uses(&self, uses: Option<usize>) {
        self.0.set_token_ttl_requests(uses);
    }
    fn rename(&self, from: &str, to: &str) {
        let id = self
            .0
            .state()
            .users
            .values()
            .find(|u| u.email.as_deref() == Some(from))
            .expect("the user")
            .id
            .clone();
        self.0.set_email(&id, to);
    }
    fn set_active(&self, email: &str, active: bool) {
        self.0.set_enabled(email, active);
    }
    fn set_member(&self, g: &GroupDef, email: &str, member: bool) {
        self.0.set_member(&keycloak_path(g), email, member);
    }
    fn set_faults(&self, faults: Faults) {
        self.0.set_faults(faults);
    }
    fn requests(&self) -> Vec<RequestLog> {
        self.0.requests()
    }
}

// --- OneLogin

struct OneLogin(FakeOneLogin);

async fn onelogin() -> Box<dyn SourceRow> {
    let ol = FakeOneLogin::start(FakeOneLoginConfig {
        users_page_max: PAGE,
        ..FakeOneLoginConfig::default()
    })
    .await;
    for person in DIRECTORY.people {
        ol.add_user(person.email);
        if !person.active {
            // 2: suspended (idsync's default `inactive_statuses`).
            ol.set_status(person.email, 2);
        }
    }
    ol.add_user("kiosk@example.com");
    ol.update_user("kiosk@example.com", |u| {
        u.email.clear();
        u.username = DIRECTORY.no_email.into();
    });
    for g in DIRECTORY.groups {
        ol.add_group(g.name, g.members);
    }
    Box::new(OneLogin(ol))
}

impl SourceRow for OneLogin {
    fn name(&self) -> &'static str {
        "onelogin"
    }
    fn stanza(&self) -> String {
        // OneLogin's page size is the server's (`users_page_max`).
        format!(
            "{{name: idp, type: onelogin, base_url: \"{}\", client_id: {}, client_secret: \"${{TEST_OL_SECRET}}\"}}",
            self.0.base_url, self.0.config.client_id
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("TEST_OL_SECRET", self.0.config.client_secret.clone())]
    }
    fn group_ref(&self, g: &GroupDef) -> String {
        format!("idp:{}", g.name)
    }
    fn group_name(&self, g: &GroupDef) -> String {
        g.name.into()
    }
    fn nesting(&self) -> Nesting {
        Nesting::Unsupported(
            "OneLogin has no nested groups: a user has one group, and roles are flat",
        )
    }
    fn users_listing(&self) -> String {
        "/api/2/users".into()
    }
    fn token_path(&self) -> Result<&'static str, &'static str> {
        Ok(ONELOGIN_TOKEN)
    }
    fn set_token_uses(&self, uses: Option<usize>) {
        self.0.set_token_ttl_requests(uses);
    }
    fn rename(&self, from: &str, to: &str) {
        let to = to.to_owned();
        self.0.update_user(from, move |u| u.email = to);
    }
    fn set_active(&self, email: &str, active: bool) {
        self.0.set_status(email, if active { 1 } else { 2 });
    }
    fn set_member(&self, g: &GroupDef, email: &str, member: bool) {
        self.0.set_group(email, member.then_some(g.name));
    }
    fn set_faults(&self, faults: Faults) {
        self.0.set_faults(faults);
    }
    fn requests(&self) -> Vec<RequestLog> {
        self.0.requests()
    }
}

// --- A SCIM 2.0 directory (the fake Atlassian's SCIM API, read as an identity provider)

struct ScimSource(FakeAtlassian);

async fn scim_source() -> Box<dyn SourceRow> {
    let idp = FakeAtlassian::start(FakeConfig::default()).await;
    for person in DIRECTORY.people {
        let mut seed = SeedUser::new(person.email);
        seed.active = person.active;
        idp.add_user(seed);
    }
    let mut kiosk = SeedUser::new("kiosk@example.com");
    kiosk.user_name = Some(DIRECTORY.no_email.into());
    idp.add_user(kiosk);
    idp.state()
        .users
        .iter_mut()
        .find(|u| u.user_name == DIRECTORY.no_email)
        .expect("the kiosk")
        .emails
        .clear();
    for g in DIRECTORY.groups {
        idp.add_group(g.name, g.members);
    }
    Box::new(ScimSource(idp))
}

impl ScimSource {
    async fn patch(&self, path: &str, body: Value) {
        let response = reqwest::Client::new()
            .patch(format!("{}{path}", self.0.scim_base()))
            .bearer_auth(&self.0.config.scim_token)
            .json(&body)
            .send()
            .await
            .expect("the fake answers");
        assert!(response.status().is_success(), "{path}: {response:?}");
    }

    fn user_id(&self, email: &str) -> String {
        self.0.user(email).expect("the user")["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }
}

impl SourceRow for ScimSource {
    fn name(&self) -> &'static str {
        "scim"
    }
    fn stanza(&self) -> String {
        format!(
            "{{name: idp, type: scim, base_url: \"{}\", token: \"${{TEST_IDP_TOKEN}}\", page_size: {PAGE}}}",
            self.0.scim_base()
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("TEST_IDP_TOKEN", self.0.config.scim_token.clone())]
    }
    fn group_ref(&self, g: &GroupDef) -> String {
        format!("idp:{}", g.name)
    }
    fn group_name(&self, g: &GroupDef) -> String {
        g.name.into()
    }
    fn nesting(&self) -> Nesting {
        Nesting::Unsupported(
            "the SCIM fake is Atlassian's directory, which has no nested groups; idsync's SCIM source does not flatten, it names a member of type Group as left out",
        )
    }
    fn users_listing(&self) -> String {
        "/Users".into()
    }
    fn token_path(&self) -> Result<&'static str, &'static str> {
        Err("a SCIM source uses a static bearer token: there is no token endpoint to refresh from")
    }
    fn set_token_uses(&self, _: Option<usize>) {}
    fn rename(&self, from: &str, to: &str) {
        let id = self.user_id(from);
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "userName", "value": to},
                {"op": "replace", "path": "emails", "value": [{"value": to, "type": "work", "primary": true}]},
            ],
        });
        block_on(self.patch(&format!("/Users/{id}"), body));
    }
    fn set_active(&self, email: &str, active: bool) {
        let id = self.user_id(email);
        let mut state = self.0.state();
        let user = state
            .users
            .iter_mut()
            .find(|u| u.id == id)
            .expect("the user");
        user.active = active;
    }
    fn set_member(&self, g: &GroupDef, email: &str, member: bool) {
        let id = self.user_id(email);
        let mut state = self.0.state();
        let group = state
            .groups
            .iter()
            .find(|x| x.display_name == g.name)
            .expect("the group")
            .id
            .clone();
        if member {
            state.members.add(&group, &id);
        } else {
            state.members.remove(&group, &id);
        }
    }
    fn set_faults(&self, faults: Faults) {
        self.0.set_faults(faults);
    }
    fn requests(&self) -> Vec<RequestLog> {
        self.0.requests()
    }
}

/// Runs a future to completion from a synchronous row method (the fakes serve on the test's
/// multi-threaded runtime, so blocking one worker in place is safe).
fn block_on<F: Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

// ---------------------------------------------------------------------------------------------
// The source scenarios

/// What one cell of the matrix came to.
enum Cell {
    Pass,
    Skip(&'static str),
    Fail(String),
}

type Outcome = Result<Option<&'static str>, String>;

/// A row under test: its fake, a scratch folder with its config, and the clean read.
struct Bench {
    row: Box<dyn SourceRow>,
    scratch: Scratch,
    /// The snapshot file of a clean read.
    clean: String,
}

impl Bench {
    async fn new(row: Box<dyn SourceRow>) -> Bench {
        let scratch = Scratch::new();
        let mappings: Vec<String> = DIRECTORY
            .groups
            .iter()
            .map(|g| format!("{{from: \"{}\", to: {}}}", row.group_ref(g), g.slug))
            .collect();
        scratch
            .write(
                "idsync.yaml",
                &format!(
                    "version: 1\nsources:\n  - {}\ntarget: {{type: file, path: atlassian.yaml}}\ngroups:\n  mappings: [{}]\ncleanup: {{max_deactivations: 100%}}\n",
                    row.stanza(),
                    mappings.join(", ")
                ),
            )
            .write("atlassian.yaml", "users: []\ngroups: []\n");
        Bench {
            row,
            scratch,
            clean: String::new(),
        }
    }

    /// `idsync ARGS` with the row's environment and waits scaled by `scale`.
    async fn idsync_scaled(&self, args: &[&str], scale: &str) -> (i32, String, String) {
        let mut cmd = self.scratch.idsync(args);
        for (k, v) in self.row.env() {
            cmd.env(k, v);
        }
        cmd.env("IDSYNC_RETRY_DELAY_SCALE", scale);
        run_beside_fakes(cmd).await
    }

    async fn idsync(&self, args: &[&str]) -> (i32, String, String) {
        self.idsync_scaled(args, "0.001").await
    }

    /// `snapshot --side source --out snap.yaml`: the exit code, stderr and the file written.
    async fn snapshot(&self, scale: &str) -> (i32, String, Option<String>) {
        let _ = std::fs::remove_file(self.scratch.path("snap.yaml"));
        let (code, _, stderr) = self
            .idsync_scaled(
                &["snapshot", "--side", "source", "--out", "snap.yaml"],
                scale,
            )
            .await;
        let leftover = std::fs::read_dir(self.scratch.dir.path())
            .expect("the scratch folder")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(".idsync-"));
        let written = if leftover {
            Some("a temporary file left behind".into())
        } else {
            std::fs::read_to_string(self.scratch.path("snap.yaml")).ok()
        };
        (code, stderr, written)
    }

    /// A fault on page 2 of the users listing.
    fn page_two(&self, kind: PageFaultKind, times: usize) -> Faults {
        let listing = self.row.users_listing();
        Faults {
            page_fault: Some(PageFault {
                kind,
                pick: Arc::new(move |path: &str, _: &Params, rank| {
                    path.ends_with(&listing) && rank == 2
                }),
                times,
            }),
            ..Faults::default()
        }
    }

    /// `plan --format json`, parsed.
    async fn plan(&self) -> Result<Value, String> {
        let (code, stdout, stderr) = self.idsync(&["plan", "--format", "json"]).await;
        if code != 0 {
            return Err(format!("plan: exit {code}: {stderr}"));
        }
        serde_json::from_str(&stdout).map_err(|e| format!("plan: not JSON ({e}): {stdout}"))
    }

    async fn apply(&self) -> Result<(), String> {
        let (code, stdout, stderr) = self.idsync(&["apply", "--auto-approve"]).await;
        if code != 0 {
            return Err(format!("apply: exit {code}: {stdout}\n{stderr}"));
        }
        Ok(())
    }

    /// Applies, then plans again: no changes left.
    async fn converge(&self) -> Result<(), String> {
        self.apply().await?;
        let again = self.plan().await?;
        let left = actions(&again);
        if !left.is_empty() {
            return Err(format!("not converged after apply: {left:?}"));
        }
        Ok(())
    }
}

/// The actions of a JSON plan as `(action, key or group)`.
fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            let what = s("key");
            (s("action"), if what.is_empty() { s("group") } else { what })
        })
        .collect()
}

/// The member keys of a plan's membership actions of this kind on this group.
fn members_in(plan: &Value, action: &str, group: &str) -> Vec<String> {
    plan["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["action"] == action && a["group"] == group)
        .flat_map(|a| a["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["key"].as_str().map(String::from))
        .collect()
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

type Scenario = for<'a> fn(&'a mut Bench) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Every source scenario, in the order they run against a row (the later ones change the
/// directory).
const SCENARIOS: &[(&str, Scenario)] = &[
    ("full read", |b| Box::pin(full_read(b))),
    ("nested groups", |b| Box::pin(nested_groups(b))),
    ("failed page", |b| Box::pin(failed_page(b))),
    ("truncated page", |b| Box::pin(truncated_page(b))),
    ("429 storm", |b| Box::pin(storm(b))),
    ("expiring token", |b| Box::pin(expiring_token(b))),
    ("left out", |b| Box::pin(left_out(b))),
    ("rename", |b| Box::pin(rename(b))),
    ("disabled user", |b| Box::pin(disabled_user(b))),
    ("membership change", |b| Box::pin(membership_change(b))),
];

async fn full_read(b: &mut Bench) -> Outcome {
    let before = b.row.requests().len();
    let (code, stderr, written) = b.snapshot("0.001").await;
    ensure!(code == 0, "exit {code}: {stderr}");
    let text = written.ok_or("no snapshot written")?;
    let snap = idsync::snapshot_file::parse(&b.scratch.path("snap.yaml"), text.as_bytes())
        .map_err(|e| format!("the snapshot does not parse: {e}"))?;
    let people: BTreeMap<&str, &idsync::model::User> =
        snap.users.iter().map(|u| (u.email.as_str(), u)).collect();
    ensure!(
        snap.users.len() == DIRECTORY.people.len(),
        "{} users read, {} in the directory: {:?}",
        snap.users.len(),
        DIRECTORY.people.len(),
        people.keys()
    );
    for person in DIRECTORY.people {
        let u = people
            .get(person.email)
            .ok_or_else(|| format!("{} not read", person.email))?;
        ensure!(
            u.active == person.active,
            "{}: active {} read as {}",
            person.email,
            person.active,
            u.active
        );
        let (given, family) = crate::fakes::names_from_email(person.email);
        ensure!(
            u.given_name == given && u.family_name == family,
            "{}: names read as {:?} {:?}",
            person.email,
            u.given_name,
            u.family_name
        );
        ensure!(u.id.is_some(), "{}: no id read", person.email);
    }
    let groups: Vec<&str> = snap.groups.iter().map(|g| g.name.as_str()).collect();
    for g in DIRECTORY.groups {
        ensure!(
            groups.contains(&b.row.group_name(g).as_str()),
            "group {} not read: {groups:?}",
            b.row.group_name(g)
        );
    }
    let pages = b.row.requests()[before..]
        .iter()
        .filter(|r| r.path.ends_with(&b.row.users_listing()) && r.status == 200)
        .count();
    ensure!(
        pages >= 3,
        "the users were read in {pages} page(s), not ≥ 3"
    );
    b.clean = text;
    Ok(None)
}

/// The members (emails) of a group in the clean read.
fn members_of(b: &Bench, g: &GroupDef) -> Result<Vec<String>, String> {
    let snap = idsync::snapshot_file::parse(&b.scratch.path("snap.yaml"), b.clean.as_bytes())
        .map_err(|e| e.to_string())?;
    let name = b.row.group_name(g);
    let mut members = snap
        .groups
        .iter()
        .find(|x| x.name == name)
        .ok_or_else(|| format!("no group {name}"))?
        .members
        .clone();
    members.sort();
    Ok(members)
}

fn sorted(emails: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = emails.iter().map(|e| (*e).to_owned()).collect();
    v.sort();
    v
}

async fn nested_groups(b: &mut Bench) -> Outcome {
    let (parent, child) = (group("Engineering"), group("Platform"));
    let nested = members_of(b, child)?;
    ensure!(
        nested == sorted(child.members),
        "the nested group holds {nested:?}"
    );
    let got = members_of(b, parent)?;
    let direct = sorted(parent.members);
    let flattened = sorted(&[parent.members, child.members].concat());
    match b.row.nesting() {
        Nesting::Flattened => ensure!(got == flattened, "not flattened: {got:?}"),
        Nesting::Separate => ensure!(got == direct, "the parent holds {got:?}"),
        Nesting::Unsupported(reason) => {
            ensure!(got == direct, "the parent holds {got:?}");
            return Ok(Some(reason));
        }
    }
    Ok(None)
}

/// The query parameters that choose a page, in each connector's dialect.
const PAGE_PARAMS: &[&str] = &[
    "startIndex",
    "after",
    "$skiptoken",
    "pageToken",
    "first",
    "page",
    "cursor",
];

async fn failed_page(b: &mut Bench) -> Outcome {
    let before = b.row.requests().len();
    b.row
        .set_faults(b.page_two(PageFaultKind::Unavailable, usize::MAX));
    let (code, stderr, written) = b.snapshot("0.001").await;
    b.row.set_faults(Faults::default());
    ensure!(code == 1, "exit {code}: {stderr}");
    ensure!(written.is_none(), "a file was written: {written:?}");
    // The page, as the parameter that chose it (`after=…`, `startIndex=5`, `$skiptoken=…`).
    let failed = b.row.requests()[before..]
        .iter()
        .find(|r| r.status == 503)
        .map(|r| r.query.clone())
        .ok_or("no page failed")?;
    let page = failed
        .split('&')
        .find(|kv| PAGE_PARAMS.iter().any(|p| kv.starts_with(&format!("{p}="))))
        .ok_or_else(|| format!("no paging parameter in {failed}"))?;
    ensure!(
        stderr.contains("source `idp`")
            && stderr.contains(&format!("{}?", b.row.users_listing()))
            && stderr.contains(page),
        "the error does not name the source, the listing and the page ({page}): {stderr}"
    );
    Ok(None)
}

async fn truncated_page(b: &mut Bench) -> Outcome {
    b.row.set_faults(b.page_two(PageFaultKind::Truncate, 1));
    let (code, stderr, written) = b.snapshot("0.001").await;
    b.row.set_faults(Faults::default());
    ensure!(code == 0, "cut once: exit {code}: {stderr}");
    ensure!(
        written.as_deref() == Some(b.clean.as_str()),
        "cut once: not the clean read: {written:?}"
    );
    b.row
        .set_faults(b.page_two(PageFaultKind::Truncate, usize::MAX));
    let (code, stderr, written) = b.snapshot("0.001").await;
    b.row.set_faults(Faults::default());
    ensure!(code == 1, "cut always: exit {code}: {stderr}");
    ensure!(written.is_none(), "cut always: a file was written");
    Ok(None)
}

async fn storm(b: &mut Bench) -> Outcome {
    let before = b.row.requests().len();
    b.row.set_faults(Faults {
        storm: Some(Storm::new("", Duration::from_secs(2))),
        ..Faults::default()
    });
    // Waits at their real length: the storm's Retry-After is what is under test.
    let (code, stderr, written) = b.snapshot("1").await;
    b.row.set_faults(Faults::default());
    ensure!(code == 0, "exit {code}: {stderr}");
    ensure!(
        written.as_deref() == Some(b.clean.as_str()),
        "not the clean read"
    );
    let log = &b.row.requests()[before..];
    let mut refused: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in log.iter().filter(|r| r.status == 429) {
        *refused
            .entry((r.path.clone(), r.query.clone()))
            .or_default() += 1;
    }
    ensure!(!refused.is_empty(), "the storm refused nothing");
    let twice: Vec<_> = refused.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(
        twice.is_empty(),
        "retried before Retry-After, refused again: {twice:?}"
    );
    Ok(None)
}

async fn expiring_token(b: &mut Bench) -> Outcome {
    let token_path = match b.row.token_path() {
        Ok(path) => path,
        Err(reason) => return Ok(Some(reason)),
    };
    // The clean read's resource requests, each of which uses the token once.
    let before = b.row.requests().len();
    let (code, stderr, _) = b.snapshot("0.001").await;
    ensure!(code == 0, "clean read: exit {code}: {stderr}");
    let clean = token_traffic(&b.row.requests()[before..], token_path);
    ensure!(
        clean.token_requests == 1 && clean.ok >= 4,
        "clean read: {clean:?}"
    );
    // The token runs out half way: a second one serves the rest.
    b.row.set_token_uses(Some(clean.ok / 2 + 1));
    let before = b.row.requests().len();
    let (code, stderr, written) = b.snapshot("0.001").await;
    b.row.set_token_uses(None);
    ensure!(code == 0, "exit {code}: {stderr}");
    ensure!(
        written.as_deref() == Some(b.clean.as_str()),
        "not the clean read"
    );
    let traffic = token_traffic(&b.row.requests()[before..], token_path);
    ensure!(
        traffic.token_requests == 2 && traffic.token_failures == 0 && traffic.refused >= 1,
        "not exactly one refresh after a 401: {traffic:?}"
    );
    Ok(None)
}

async fn left_out(b: &mut Bench) -> Outcome {
    let plan = b.plan().await?;
    let read = &plan["sources"][0];
    ensure!(
        read["left_out"] == 1,
        "left_out is {} in {read}",
        read["left_out"]
    );
    ensure!(
        plan.to_string().contains(DIRECTORY.no_email),
        "the plan does not name {}",
        DIRECTORY.no_email
    );
    Ok(None)
}

/// Brings the target in line with the directory as it is, first.
async fn settled(b: &Bench) -> Result<(), String> {
    b.converge().await
}

async fn rename(b: &mut Bench) -> Outcome {
    settled(b).await?;
    b.row.rename(RENAMED.0, RENAMED.1);
    let plan = b.plan().await?;
    let acts = actions(&plan);
    ensure!(
        acts == vec![("update_user".to_owned(), RENAMED.1.to_owned())],
        "a rename should be one update_user of {}: {acts:?}",
        RENAMED.1
    );
    b.converge().await?;
    Ok(None)
}

async fn disabled_user(b: &mut Bench) -> Outcome {
    settled(b).await?;
    b.row.set_active(DISABLED, false);
    let plan = b.plan().await?;
    let acts = actions(&plan);
    ensure!(
        acts.contains(&("deactivate_user".to_owned(), DISABLED.to_owned()))
            && !acts.iter().any(|(a, _)| a == "create_user"),
        "{DISABLED} should be deactivated: {acts:?}"
    );
    b.converge().await?;
    Ok(None)
}

async fn membership_change(b: &mut Bench) -> Outcome {
    settled(b).await?;
    let (sales, engineering) = (group("Sales"), group("Engineering"));
    b.row.set_member(sales, JOINS_SALES, true);
    b.row.set_member(engineering, LEAVES_ENGINEERING, false);
    let plan = b.plan().await?;
    let added = members_in(&plan, "add_members", sales.slug);
    let removed = members_in(&plan, "remove_members", engineering.slug);
    ensure!(
        added == vec![JOINS_SALES.to_owned()] && removed == vec![LEAVES_ENGINEERING.to_owned()],
        "added {added:?}, removed {removed:?}: {:?}",
        actions(&plan)
    );
    b.converge().await?;
    Ok(None)
}

/// Runs every scenario against one row; returns its cells in the order of [`SCENARIOS`].
async fn run_row(start: Start) -> (&'static str, Vec<Cell>) {
    let mut bench = Bench::new(start().await).await;
    let mut cells = Vec::new();
    for (name, scenario) in SCENARIOS {
        let cell = match scenario(&mut bench).await {
            Ok(None) => Cell::Pass,
            Ok(Some(reason)) => Cell::Skip(reason),
            Err(e) => Cell::Fail(format!("{name}: {e}")),
        };
        // Later scenarios build on the clean read.
        if *name == "full read" && matches!(cell, Cell::Fail(_)) {
            cells.push(cell);
            break;
        }
        cells.push(cell);
    }
    (bench.row.name(), cells)
}

/// Prints the matrix (rows × scenarios, `ok`, `skip`, `FAIL`) and the reasons of the skips
/// (shown with `--nocapture`, and with a failure); returns the failures.
#[allow(
    clippy::print_stdout,
    reason = "the matrix and its skips are the suite's report"
)]
fn report(title: &str, scenarios: &[&str], rows: &[(&'static str, Vec<Cell>)]) -> Vec<String> {
    let mut text = format!("{title}\n{:<10}", "");
    for s in scenarios {
        text.push_str(&format!(" | {s}"));
    }
    let mut failures = Vec::new();
    let mut skips = Vec::new();
    for (row, cells) in rows {
        text.push_str(&format!("\n{row:<10}"));
        for (i, s) in scenarios.iter().enumerate() {
            let mark = match cells.get(i) {
                Some(Cell::Pass) => "ok",
                Some(Cell::Skip(reason)) => {
                    skips.push(format!("  {row} × {s}: skipped: {reason}"));
                    "skip"
                }
                Some(Cell::Fail(e)) => {
                    failures.push(format!("{row} × {e}"));
                    "FAIL"
                }
                None => "not run",
            };
            text.push_str(&format!(" | {mark:<width$}", width = s.len()));
        }
    }
    println!("{text}\n{}", skips.join("\n"));
    failures
}

// ---------------------------------------------------------------------------------------------
// Target rows

/// Members per membership request: the directory's groups need several.
const BATCH: usize = 2;

/// One target, with its fake started (pages of [`PAGE`]).
trait TargetRow: Send + Sync {
    fn name(&self) -> &'static str;
    fn fake(&self) -> &FakeAtlassian;
    /// The `target:` mapping (YAML flow style).
    fn stanza(&self) -> String;
    fn env(&self) -> Vec<(&'static str, String)>;
    /// Adds an account the target holds outside the directory idsync writes (to be linked, not
    /// created), or says why the target has none.
    fn add_unlinked_account(&self, email: &str) -> Result<(), &'static str>;
}

type TargetStart = fn() -> Pin<Box<dyn Future<Output = Box<dyn TargetRow>> + Send>>;

/// Every target: one line each.
const TARGET_ROWS: &[(&str, TargetStart)] = &[
    ("atlassian", || Box::pin(atlassian_target())),
    ("scim", || Box::pin(scim_target())),
];

async fn paged_atlassian() -> FakeAtlassian {
    FakeAtlassian::start(FakeConfig {
        page_cap: PAGE,
        org_page_size: PAGE,
        ..FakeConfig::default()
    })
    .await
}

/// Atlassian: SCIM for users and groups, the organization admin API for accounts (linking).
struct AtlassianTarget(FakeAtlassian);

async fn atlassian_target() -> Box<dyn TargetRow> {
    Box::new(AtlassianTarget(paged_atlassian().await))
}

impl TargetRow for AtlassianTarget {
    fn name(&self) -> &'static str {
        "atlassian"
    }
    fn fake(&self) -> &FakeAtlassian {
        &self.0
    }
    fn stanza(&self) -> String {
        format!(
            "{{type: atlassian, scim: {{base_url: \"{}\", token: \"${{TEST_SCIM_TOKEN}}\", page_size: {PAGE}}}, admin: {{org_id: {}, token: \"${{TEST_ORG_TOKEN}}\", base_url: \"{}\"}}}}",
            self.0.scim_base(),
            self.0.org_id(),
            self.0.base_url
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TEST_SCIM_TOKEN", self.0.config.scim_token.clone()),
            ("TEST_ORG_TOKEN", self.0.config.org_token.clone()),
        ]
    }
    fn add_unlinked_account(&self, email: &str) -> Result<(), &'static str> {
        self.0
            .add_org_account(email, "Dan Link", Some("2026-11-01"));
        Ok(())
    }
}

/// A generic SCIM 2.0 target: the same fake, through its SCIM API alone.
struct ScimTarget(FakeAtlassian);

async fn scim_target() -> Box<dyn TargetRow> {
    Box::new(ScimTarget(paged_atlassian().await))
}

impl TargetRow for ScimTarget {
    fn name(&self) -> &'static str {
        "scim"
    }
    fn fake(&self) -> &FakeAtlassian {
        &self.0
    }
    fn stanza(&self) -> String {
        format!(
            "{{type: scim, base_url: \"{}\", token: \"${{TEST_SCIM_TOKEN}}\", page_size: {PAGE}}}",
            self.0.scim_base()
        )
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("TEST_SCIM_TOKEN", self.0.config.scim_token.clone())]
    }
    fn add_unlinked_account(&self, _: &str) -> Result<(), &'static str> {
        Err("a SCIM directory holds no accounts outside itself: linking an existing account is Atlassian's (organization admin API)")
    }
}

// ---------------------------------------------------------------------------------------------
// The target scenarios

/// A person of the file source the target scenarios plan from.
struct IdpUser {
    id: String,
    email: String,
    given: String,
    family: String,
    active: bool,
}

/// A target under test: its fake, a scratch folder, and the identity provider (a file source)
/// as the scenarios change it.
struct TargetBench {
    row: Box<dyn TargetRow>,
    scratch: Scratch,
    people: Vec<IdpUser>,
    /// Group name -> member emails (each group is mapped to itself in lower case).
    groups: Vec<(&'static str, Vec<String>)>,
}

fn idp_user(n: usize, email: &str, active: bool) -> IdpUser {
    let (given, family) = crate::fakes::names_from_email(email);
    IdpUser {
        id: format!("u{n}"),
        email: email.to_owned(),
        given: given.unwrap_or_default(),
        family: family.unwrap_or_default(),
        active,
    }
}

impl TargetBench {
    async fn new(row: Box<dyn TargetRow>) -> TargetBench {
        let scratch = Scratch::new();
        let mappings: Vec<String> = DIRECTORY
            .groups
            .iter()
            .map(|g| format!("{{from: \"idp:{}\", to: {}}}", g.name, g.slug))
            .collect();
        scratch.write(
            "idsync.yaml",
            &format!(
                "version: 1\nsources: [{{name: idp, type: file, path: idp.yaml}}]\ntarget: {}\ngroups:\n  mappings: [{}]\ncleanup: {{max_deactivations: 100%}}\nlimits: {{membership_batch: {BATCH}}}\n",
                row.stanza(),
                mappings.join(", ")
            ),
        );
        let people = DIRECTORY
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| idp_user(i + 1, p.email, p.active))
            .collect();
        let groups = DIRECTORY
            .groups
            .iter()
            .map(|g| (g.name, g.members.iter().map(|m| (*m).to_owned()).collect()))
            .collect();
        TargetBench {
            row,
            scratch,
            people,
            groups,
        }
    }

    /// Writes the file source as the scenarios left it.
    fn write_idp(&self) {
        let mut text = String::from("users:\n");
        for u in &self.people {
            text.push_str(&format!(
                "  - {{id: {}, email: {}, givenName: {}, familyName: {}, active: {}}}\n",
                u.id, u.email, u.given, u.family, u.active
            ));
        }
        text.push_str("groups:\n");
        for (name, members) in &self.groups {
            text.push_str(&format!(
                "  - {{name: {name}, members: [{}]}}\n",
                members.join(", ")
            ));
        }
        self.scratch.write("idp.yaml", &text);
    }

    fn person(&mut self, email: &str) -> &mut IdpUser {
        self.people
            .iter_mut()
            .find(|u| u.email == email)
            .expect("a person of the file source")
    }

    async fn idsync(&self, args: &[&str]) -> (i32, String, String) {
        self.write_idp();
        let mut cmd = self.scratch.idsync(args);
        for (k, v) in self.row.env() {
            cmd.env(k, v);
        }
        cmd.env("IDSYNC_RETRY_DELAY_SCALE", "0.001");
        run_beside_fakes(cmd).await
    }

    async fn plan(&self) -> Result<Value, String> {
        let (code, stdout, stderr) = self.idsync(&["plan", "--format", "json"]).await;
        ensure!(code == 0, "plan: exit {code}: {stderr}");
        serde_json::from_str(&stdout).map_err(|e| format!("plan: not JSON ({e}): {stdout}"))
    }

    /// Plans and checks the plan's actions with `check`, applies, then plans again to no changes.
    async fn round(&self, check: impl FnOnce(&Value) -> Result<(), String>) -> Result<(), String> {
        let plan = self.plan().await?;
        check(&plan)?;
        let (code, stdout, stderr) = self.idsync(&["apply", "--auto-approve"]).await;
        ensure!(code == 0, "apply: exit {code}: {stdout}\n{stderr}");
        let again = self.plan().await?;
        let left = actions(&again);
        ensure!(left.is_empty(), "not converged after apply: {left:?}");
        Ok(())
    }

    /// The fake's SCIM user with this email.
    fn user(&self, email: &str) -> Result<Value, String> {
        self.row
            .fake()
            .user(email)
            .ok_or_else(|| format!("the target has no user {email}"))
    }
}

/// The `(action, key or group)` pairs of a plan, sorted, without membership actions.
fn changes(plan: &Value) -> Vec<(String, String)> {
    let mut acts: Vec<_> = actions(plan)
        .into_iter()
        .filter(|(a, _)| !a.ends_with("_members"))
        .collect();
    acts.sort();
    acts
}

fn pairs(action: &str, keys: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<_> = keys
        .iter()
        .map(|k| (action.to_owned(), (*k).to_owned()))
        .collect();
    v.sort();
    v
}

type TargetScenario =
    for<'a> fn(&'a mut TargetBench) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Every target scenario, in the order they run against a row (each builds on the last).
const TARGET_SCENARIOS: &[(&str, TargetScenario)] = &[
    ("create", |b| Box::pin(t_create(b))),
    ("link", |b| Box::pin(t_link(b))),
    ("update", |b| Box::pin(t_update(b))),
    ("deactivate", |b| Box::pin(t_deactivate(b))),
    ("reactivate", |b| Box::pin(t_reactivate(b))),
    ("membership batches", |b| Box::pin(t_batches(b))),
    ("409 on retry", |b| Box::pin(t_conflict_on_retry(b))),
    ("failed page", |b| Box::pin(t_failed_page(b))),
];

/// Everyone active in the directory is created, and the groups with their members.
async fn t_create(b: &mut TargetBench) -> Outcome {
    let active: Vec<&str> = DIRECTORY
        .people
        .iter()
        .filter(|p| p.active)
        .map(|p| p.email)
        .collect();
    b.round(|plan| {
        let mut want = pairs("create_user", &active);
        want.extend(pairs("create_group", &["engineering", "platform", "sales"]));
        want.sort();
        let got = changes(plan);
        ensure!(got == want, "planned {got:?}");
        Ok(())
    })
    .await?;
    for p in &active {
        b.user(p)?;
    }
    let fake = b.row.fake();
    ensure!(
        fake.group_members("engineering") == sorted(group("Engineering").members),
        "engineering holds {:?}",
        fake.group_members("engineering")
    );
    Ok(None)
}

/// A person whose account exists outside the directory is linked, not created.
async fn t_link(b: &mut TargetBench) -> Outcome {
    const DAN: &str = "dan.link@example.com";
    if let Err(reason) = b.row.add_unlinked_account(DAN) {
        return Ok(Some(reason));
    }
    let n = b.people.len() + 1;
    b.people.push(idp_user(n, DAN, true));
    b.round(|plan| {
        let got = changes(plan);
        ensure!(got == pairs("link_user", &[DAN]), "planned {got:?}");
        Ok(())
    })
    .await?;
    let accounts = b.row.fake().org_accounts();
    let dans = accounts.iter().filter(|a| a["email"] == DAN).count();
    ensure!(dans == 1, "{dans} accounts of {DAN}");
    Ok(None)
}

async fn t_update(b: &mut TargetBench) -> Outcome {
    const ANA: &str = "ana.silva@example.com";
    b.person(ANA).given = "Anna".into();
    b.round(|plan| {
        let got = changes(plan);
        ensure!(got == pairs("update_user", &[ANA]), "planned {got:?}");
        Ok(())
    })
    .await?;
    let ana = b.user(ANA)?;
    ensure!(ana["name"]["givenName"] == "Anna", "the target holds {ana}");
    Ok(None)
}

async fn t_deactivate(b: &mut TargetBench) -> Outcome {
    b.person(DISABLED).active = false;
    b.round(|plan| {
        let got = changes(plan);
        ensure!(
            got == pairs("deactivate_user", &[DISABLED]),
            "planned {got:?}"
        );
        Ok(())
    })
    .await?;
    let cy = b.user(DISABLED)?;
    ensure!(cy["active"] == false, "the target holds {cy}");
    Ok(None)
}

async fn t_reactivate(b: &mut TargetBench) -> Outcome {
    b.person(DISABLED).active = true;
    b.round(|plan| {
        let got = changes(plan);
        ensure!(
            got == pairs("reactivate_user", &[DISABLED]),
            "planned {got:?}"
        );
        Ok(())
    })
    .await?;
    let cy = b.user(DISABLED)?;
    ensure!(cy["active"] == true, "the target holds {cy}");
    Ok(None)
}

/// Five people join a group at once: three requests of at most [`BATCH`] members.
async fn t_batches(b: &mut TargetBench) -> Outcome {
    let joining = [
        "ana.silva@example.com",
        "ben.okafor@example.com",
        "dee.ross@example.com",
        "jon.kerr@example.com",
        "kim.lowe@example.com",
    ];
    let sales = b
        .groups
        .iter_mut()
        .find(|(n, _)| *n == "Sales")
        .expect("sales");
    sales.1.extend(joining.iter().map(|e| (*e).to_owned()));
    b.round(|plan| {
        let batches: Vec<(Value, usize)> = plan["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["action"] == "add_members" && a["group"] == "sales")
            .map(|a| {
                (
                    a["batch"].clone(),
                    a["members"].as_array().map_or(0, Vec::len),
                )
            })
            .collect();
        let want: Vec<(Value, usize)> = vec![
            (serde_json::json!([1, 3]), 2),
            (serde_json::json!([2, 3]), 2),
            (serde_json::json!([3, 3]), 1),
        ];
        ensure!(batches == want, "batches {batches:?}");
        ensure!(changes(plan).is_empty(), "planned {:?}", changes(plan));
        Ok(())
    })
    .await?;
    let mut want = sorted(group("Sales").members);
    want.extend(joining.iter().map(|e| (*e).to_owned()));
    want.sort();
    let got = b.row.fake().group_members("sales");
    ensure!(got == want, "sales holds {got:?}");
    Ok(None)
}

/// A create that was carried out but whose answer was lost: the retry meets 409 and adopts the
/// user; one user, and the next plan has nothing to do.
async fn t_conflict_on_retry(b: &mut TargetBench) -> Outcome {
    const NIA: &str = "nia.long@example.com";
    let n = b.people.len() + 1;
    b.people.push(idp_user(n, NIA, true));
    let fake = b.row.fake();
    let before = fake.requests().len();
    // The answer to the create is lost, and the lookup that follows (by userName, then by
    // externalId) reads an index that has not caught up yet: the create is sent again.
    fake.set_faults(Faults {
        reset_after_mutation: 1,
        ..Faults::default()
    });
    fake.state().lagging_searches = 2;
    let outcome = b
        .round(|plan| {
            let got = changes(plan);
            ensure!(got == pairs("create_user", &[NIA]), "planned {got:?}");
            Ok(())
        })
        .await;
    let fake = b.row.fake();
    fake.set_faults(Faults::default());
    let lag_left = std::mem::take(&mut fake.state().lagging_searches);
    outcome?;
    ensure!(lag_left == 0, "{lag_left} lagging search(es) not made");
    let posts: Vec<u16> = fake.requests()[before..]
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/Users"))
        .map(|r| r.status)
        .collect();
    ensure!(
        posts == vec![0, 409],
        "the create should be lost (0), then meet 409: {posts:?}"
    );
    let nias = fake.users().iter().filter(|u| u["userName"] == NIA).count();
    ensure!(nias == 1, "{nias} users {NIA}");
    Ok(None)
}

/// Page 2 of the users listing fails beyond every retry: plan and apply stop (exit 1) naming the
/// page, and nothing is written.
async fn t_failed_page(b: &mut TargetBench) -> Outcome {
    const OLA: &str = "ola.berg@example.com";
    let n = b.people.len() + 1;
    b.people.push(idp_user(n, OLA, true));
    let fake = b.row.fake();
    let mutations = fake.mutations();
    fake.set_faults(Faults {
        page_fault: Some(PageFault {
            kind: PageFaultKind::Unavailable,
            // Page 2 of the full listing (not a filtered lookup).
            pick: Arc::new(|path: &str, params: &Params, _| {
                path.ends_with("/Users")
                    && params.get("filter").is_none()
                    && params.get("startIndex") == Some(&*(PAGE + 1).to_string())
            }),
            times: usize::MAX,
        }),
        ..Faults::default()
    });
    let plan = b.idsync(&["plan"]).await;
    let apply = b.idsync(&["apply", "--auto-approve"]).await;
    let fake = b.row.fake();
    fake.set_faults(Faults::default());
    for (what, (code, stdout, stderr)) in [("plan", plan), ("apply", apply)] {
        ensure!(code == 1, "{what}: exit {code}: {stdout}\n{stderr}");
        ensure!(
            stderr.contains("/Users") && stderr.contains("startIndex="),
            "{what}: the error does not name the page: {stderr}"
        );
    }
    ensure!(fake.mutations() == mutations, "something was written");
    // Once the listing answers again, the plan goes through.
    b.round(|plan| {
        let got = changes(plan);
        ensure!(got == pairs("create_user", &[OLA]), "planned {got:?}");
        Ok(())
    })
    .await?;
    Ok(None)
}

async fn run_target_row(start: TargetStart) -> (&'static str, Vec<Cell>) {
    let mut bench = TargetBench::new(start().await).await;
    let mut cells = Vec::new();
    for (name, scenario) in TARGET_SCENARIOS {
        let cell = match scenario(&mut bench).await {
            Ok(None) => Cell::Pass,
            Ok(Some(reason)) => Cell::Skip(reason),
            Err(e) => Cell::Fail(format!("{name}: {e}")),
        };
        cells.push(cell);
    }
    (bench.row.name(), cells)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_passes_every_scenario() {
    let rows =
        futures_util::future::join_all(TARGET_ROWS.iter().map(|(_, s)| run_target_row(*s))).await;
    let names: Vec<&str> = TARGET_SCENARIOS.iter().map(|(n, _)| *n).collect();
    let failures = report("targets", &names, &rows);
    assert!(
        failures.is_empty(),
        "{} cell(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_passes_every_scenario() {
    let rows = futures_util::future::join_all(SOURCE_ROWS.iter().map(|(_, s)| run_row(*s))).await;
    let names: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
    let failures = report("sources", &names, &rows);
    assert!(
        failures.is_empty(),
        "{} cell(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
