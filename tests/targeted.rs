//! Targeted reads (`snapshot_people`, for `sync-user` and `explain`): against every fake that has
//! per-person endpoints, the targeted read equals the full read cut down to the same people
//! (`snapshot().restrict_to(people)`), its request count does not grow with the directory, and a
//! failed per-person request fails the read (never an empty answer).

use idsync::config::secret::Secret;
use idsync::http::HttpSettings;
use idsync::model::{People, Snapshot};
use idsync::sources::{KeycloakSource, OktaAuth, OktaSource, Source};
use idsync::targets::{ScimDirectory, ScimTarget, Target};

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::keycloak::{FakeKeycloak, FakeKeycloakConfig};
use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use crate::fakes::Faults;

/// A snapshot in a canonical order (a targeted read finds people in the order it asks for them;
/// a listing, in the directory's order), as JSON for a readable diff.
fn canonical(mut s: Snapshot) -> serde_json::Value {
    s.users.sort_by_key(idsync::model::User::key);
    s.groups.sort_by(|a, b| a.name.cmp(&b.name));
    for g in &mut s.groups {
        g.members.sort();
    }
    s.skipped.sort_by_key(idsync::model::LeftOut::label);
    serde_json::to_value(&s).expect("a snapshot serializes")
}

/// No retries: a 5xx is final at once (the test is about what a failure means, not about retries).
fn one_attempt() -> HttpSettings {
    HttpSettings {
        max_attempts: 1,
        ..HttpSettings::default()
    }
}

fn people(emails: &[&str], ids: &[&str]) -> People {
    let mut p = People::by_email(emails.iter().copied());
    p.ids = ids.iter().map(|s| (*s).to_string()).collect();
    p
}

// --- Okta ------------------------------------------------------------------------------------

/// An org of `n` filler people plus Ana (Engineering), Dee (suspended), Eve (deprovisioned) and
/// Vic (renamed at the IdP: found by id).
fn seed_okta(okta: &FakeOkta, n: usize) -> String {
    let mut everyone = vec![];
    for i in 0..n {
        let e = format!("filler{i:03}@example.com");
        okta.add_user(OktaSeedUser::new(&e));
        everyone.push(e);
    }
    for e in ["ana@example.com", "dee@example.com", "eve@example.com"] {
        okta.add_user(OktaSeedUser::new(e));
        everyone.push(e.to_string());
    }
    let vic = okta.add_user(OktaSeedUser::new("vic.new@example.com"));
    okta.set_status("dee@example.com", "SUSPENDED");
    okta.set_status("eve@example.com", "DEPROVISIONED");
    let all: Vec<&str> = everyone.iter().map(String::as_str).collect();
    okta.add_group("Atlassian Users", "OKTA_GROUP", &all);
    okta.add_group(
        "Engineering",
        "OKTA_GROUP",
        &[
            "ana@example.com",
            "filler000@example.com",
            "vic.new@example.com",
        ],
    );
    okta.add_group("Unconfigured", "OKTA_GROUP", &["ana@example.com"]);
    vic
}

fn okta_source(okta: &FakeOkta, settings: HttpSettings) -> OktaSource {
    OktaSource::new(
        "okta",
        &okta.base_url,
        OktaAuth::ApiToken(Secret::new(okta.config.api_token.clone())),
        vec!["Atlassian Users".into(), "Engineering".into()],
        3,
        settings,
    )
}

/// The targeted read's requests for these people against an org of `n` fillers; asserts the
/// equality with the full read cut down.
async fn okta_targeted(n: usize) -> usize {
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    let vic = seed_okta(&okta, n);
    let src = okta_source(&okta, HttpSettings::default());
    let who = people(
        &[
            "ana@example.com",
            "DEE@example.com",
            "eve@example.com",
            "nobody@example.com",
        ],
        &[vic.as_str()],
    );
    let before = okta.requests().len();
    let targeted = src.snapshot_people(&who).await.expect("targeted read");
    let used = okta.requests().len() - before;
    let full = src.snapshot().await.expect("full read").restrict_to(&who);
    assert_eq!(canonical(targeted.clone()), canonical(full));
    let keys: Vec<String> = targeted.users.iter().map(|u| u.key()).collect();
    for k in ["ana@example.com", "dee@example.com", "eve@example.com"] {
        assert!(keys.contains(&k.to_string()), "{k} in {keys:?}");
    }
    assert!(
        keys.contains(&"vic.new@example.com".to_string()),
        "found by id"
    );
    assert!(!keys.contains(&"nobody@example.com".to_string()));
    assert_eq!(targeted.groups.len(), 2, "the configured groups, all known");
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_targeted_read_equals_the_full_read_cut_down_in_few_requests() {
    let small = okta_targeted(10).await;
    let large = okta_targeted(60).await;
    assert_eq!(small, large, "the request count does not grow with the org");
    // Per email one search, per id one read, per person found one group listing, plus the
    // configured groups' searches: far below a full read of 60 people in pages of 3.
    // 4 searches by email, 1 read by id, 4 group listings (one per person found), 2 configured
    // group searches.
    assert_eq!(large, 11, "{large} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_a_failed_per_person_read_fails_the_targeted_read() {
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    seed_okta(&okta, 3);
    let ana = okta.user_id("ana@example.com").expect("ana");
    okta.set_faults(Faults {
        fail_path_contains: Some((format!("users/{ana}/groups"), usize::MAX)),
        ..Faults::default()
    });
    let src = okta_source(&okta, one_attempt());
    let err = src
        .snapshot_people(&people(&["ana@example.com"], &[]))
        .await
        .expect_err("a 503 is an error, not an empty answer");
    assert!(err.to_string().contains("503"), "{err}");
}

// --- Keycloak --------------------------------------------------------------------------------

fn seed_keycloak(kc: &FakeKeycloak, n: usize) -> String {
    let mut everyone = vec![];
    for i in 0..n {
        let e = format!("filler{i:03}@example.com");
        kc.add_user(&e);
        everyone.push(e);
    }
    for e in ["ana@example.com", "dee@example.com"] {
        kc.add_user(e);
        everyone.push(e.to_string());
    }
    let renamed = kc.add_user("vic.new@example.com");
    kc.set_enabled("dee@example.com", false);
    let all: Vec<&str> = everyone.iter().map(String::as_str).collect();
    kc.add_group("/Atlassian Users", &all);
    kc.add_group("/Engineering", &["ana@example.com"]);
    kc.add_group(
        "/Engineering/SRE",
        &["ana@example.com", "vic.new@example.com"],
    );
    kc.add_group("/Finance", &["filler000@example.com"]);
    renamed
}

fn keycloak_source(kc: &FakeKeycloak, settings: HttpSettings) -> KeycloakSource {
    KeycloakSource {
        name: "keycloak".into(),
        base_url: kc.base_url.clone(),
        realm: kc.config.realm.clone(),
        token_realm: kc.config.token_realm().to_string(),
        client_id: kc.config.client_id.clone(),
        client_secret: Secret::new(kc.config.client_secret.clone()),
        groups: Vec::new(),
        page_size: 3,
        settings,
    }
}

async fn keycloak_targeted(n: usize) -> usize {
    let kc = FakeKeycloak::start(FakeKeycloakConfig::default()).await;
    let vic = seed_keycloak(&kc, n);
    let src = keycloak_source(&kc, HttpSettings::default());
    let who = people(
        &["Ana@example.com", "dee@example.com", "nobody@example.com"],
        &[vic.as_str()],
    );
    let before = kc.requests().len();
    let targeted = src.snapshot_people(&who).await.expect("targeted read");
    let used = kc.requests().len() - before;
    let full = src.snapshot().await.expect("full read").restrict_to(&who);
    assert_eq!(canonical(targeted.clone()), canonical(full));
    assert_eq!(targeted.users.len(), 3, "ana, dee (disabled), vic by id");
    assert!(targeted.users.iter().any(|u| !u.active), "dee is disabled");
    let sre = targeted
        .groups
        .iter()
        .find(|g| g.name == "/Engineering/SRE");
    assert_eq!(
        sre.map(|g| g.members.len()),
        Some(2),
        "a nested group's direct members"
    );
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_targeted_read_equals_the_full_read_cut_down_in_few_requests() {
    let small = keycloak_targeted(8).await;
    let large = keycloak_targeted(40).await;
    assert_eq!(
        small, large,
        "the request count does not grow with the realm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_a_failed_per_person_read_fails_the_targeted_read() {
    let kc = FakeKeycloak::start(FakeKeycloakConfig::default()).await;
    seed_keycloak(&kc, 2);
    kc.set_faults(Faults {
        fail_path_contains: Some(("email=ana".into(), usize::MAX)),
        ..Faults::default()
    });
    let src = keycloak_source(&kc, one_attempt());
    let err = src
        .snapshot_people(&people(&["ana@example.com"], &[]))
        .await
        .expect_err("a 503 is an error, not an empty answer");
    assert!(err.to_string().contains("503"), "{err}");
}

// --- SCIM / Atlassian target -----------------------------------------------------------------

/// A directory of `n` fillers plus Ana (two groups), Dee (deactivated) and Bob, provisioned as
/// bob.old@ from IdP id `idp-bob` (renamed since: found by `externalId`).
fn seed_atlassian(atl: &FakeAtlassian, n: usize) {
    let mut everyone = vec![];
    for i in 0..n {
        let e = format!("filler{i:03}@example.com");
        atl.add_user(SeedUser::new(&e));
        everyone.push(e);
    }
    atl.add_user(SeedUser::new("ana@example.com"));
    let mut dee = SeedUser::new("dee@example.com");
    dee.active = false;
    atl.add_user(dee);
    let mut bob = SeedUser::new("bob.old@example.com");
    bob.external_id = Some("idp-bob".into());
    atl.add_user(bob);
    let all: Vec<&str> = everyone.iter().map(String::as_str).collect();
    atl.add_group("filler-group", &all);
    atl.add_group("engineering", &["ana@example.com", "bob.old@example.com"]);
    atl.add_group("design", &["ana@example.com", "filler000@example.com"]);
    atl.add_group("empty", &[]);
}

fn scim_target(atl: &FakeAtlassian, settings: &HttpSettings) -> ScimTarget {
    ScimTarget::new(ScimDirectory::new(
        "SCIM",
        &atl.scim_base(),
        idsync::http::Auth::Bearer(Secret::new(atl.config.scim_token.clone())),
        3,
        settings,
    ))
}

async fn scim_targeted(n: usize, config: FakeConfig) -> usize {
    let atl = FakeAtlassian::start(config).await;
    seed_atlassian(&atl, n);
    let mut t = scim_target(&atl, &HttpSettings::default());
    let who = people(
        &[
            "ana@example.com",
            "dee@example.com",
            "bob.new@example.com",
            "nobody@example.com",
        ],
        &["idp-bob"],
    );
    let before = atl.requests().len();
    let targeted = t.snapshot_people(&who).await.expect("targeted read");
    let used = atl.requests().len() - before;
    assert_eq!(
        used as u64,
        t.requests(),
        "the target counts its own requests"
    );
    let full = t.snapshot().await.expect("full read").restrict_to(&who);
    assert_eq!(canonical(targeted.clone()), canonical(full));
    let keys: Vec<String> = targeted.users.iter().map(|u| u.key()).collect();
    assert!(
        keys.contains(&"bob.old@example.com".to_string()),
        "rename found by externalId"
    );
    assert_eq!(targeted.users.len(), 3, "{keys:?}");
    assert_eq!(targeted.groups.len(), 4, "every group stays known");
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_targeted_read_equals_the_full_read_cut_down_in_few_requests() {
    for nulls in [false, true] {
        let config = || FakeConfig {
            explicit_nulls: nulls,
            ..FakeConfig::default()
        };
        let small = scim_targeted(5, config()).await;
        let large = scim_targeted(50, config()).await;
        assert_eq!(
            small, large,
            "the request count does not grow with the directory"
        );
        // 5 filters and the four groups in pages of 3, without members.
        assert!(large <= 8, "{large} requests");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_a_failed_filter_fails_the_targeted_read() {
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_atlassian(&atl, 2);
    atl.set_faults(Faults {
        fail_path_contains: Some(("externalId".into(), usize::MAX)),
        ..Faults::default()
    });
    let mut t = scim_target(&atl, &one_attempt());
    let err = t
        .snapshot_people(&people(&["ana@example.com"], &["idp-bob"]))
        .await
        .expect_err("a 503 is an error, not \"not found\"");
    assert!(err.to_string().contains("503"), "{err}");
}

// --- Built from a config (any connector) -----------------------------------------------------

/// The source the first `sources:` entry of this YAML describes, as `plan` builds it.
fn source_from_yaml(yaml: &str) -> (Box<dyn Source>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let path = dir.path().join("idsync.yaml");
    std::fs::write(&path, yaml).expect("write the config");
    let loaded = idsync::config::load(&path).expect("the config loads");
    let source =
        idsync::sources::build(&loaded.config.sources[0], dir.path()).expect("the source builds");
    (source, dir)
}

/// A request count, the targeted read's snapshot and the full read's cut down, for one source.
async fn compare(
    source: &dyn Source,
    who: &People,
    requests: impl Fn() -> usize,
) -> (usize, Snapshot) {
    let before = requests();
    let targeted = source.snapshot_people(who).await.expect("targeted read");
    let used = requests() - before;
    let full = source.snapshot().await.expect("full read").restrict_to(who);
    assert_eq!(canonical(targeted.clone()), canonical(full));
    (used, targeted)
}

// --- Entra -----------------------------------------------------------------------------------

use crate::fakes::entra::{EntraSeedUser, FakeEntra, FakeEntraConfig};

fn seed_entra(e: &FakeEntra, n: usize) -> String {
    let mut everyone = vec![];
    for i in 0..n {
        let m = format!("filler{i:03}@example.com");
        e.add_user(EntraSeedUser::new(&m));
        everyone.push(m);
    }
    for m in ["ana@example.com", "dee@example.com", "boss@example.com"] {
        e.add_user(EntraSeedUser::new(m));
        everyone.push(m.to_string());
    }
    let vic = e.add_user(EntraSeedUser::new("vic.new@example.com"));
    e.set_enabled("dee@example.com", false);
    e.set_manager("ana@example.com", "boss@example.com");
    e.add_group("Platform", &["ana@example.com", "vic.new@example.com"]);
    e.add_group("Engineering", &["filler000@example.com", "group:Platform"]);
    let all: Vec<&str> = everyone.iter().map(String::as_str).collect();
    e.add_group("Atlassian Users", &all);
    e.add_group("Unrelated", &["ana@example.com"]);
    vic
}

fn entra_yaml(e: &FakeEntra, transitive: bool, attempts: u32) -> String {
    format!(
        r#"version: 1
sources:
  - name: entra
    type: entra
    tenant_id: {tenant}
    client_id: {client}
    client_secret: "{secret}"
    authority: {authority}
    base_url: {graph}
    transitive: {transitive}
    manager: true
    groups: [Atlassian Users, Engineering, Platform]
    page_size: 3
    http: {{max_attempts: {attempts}}}
target: {{type: file, path: atlassian.yaml}}
"#,
        tenant = e.config.tenant_id,
        client = e.config.client_id,
        secret = e.config.client_secret,
        authority = e.authority_url(),
        graph = e.graph_url(),
    )
}

async fn entra_targeted(n: usize, transitive: bool) -> usize {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    let vic = seed_entra(&e, n);
    let (src, _dir) = source_from_yaml(&entra_yaml(&e, transitive, 3));
    let who = people(
        &["ana@example.com", "DEE@example.com", "nobody@example.com"],
        &[vic.as_str()],
    );
    let (used, snap) = compare(src.as_ref(), &who, || e.requests().len()).await;
    assert_eq!(snap.users.len(), 3, "ana, dee (disabled), vic by id");
    let ana = snap.users.iter().find(|u| u.key() == "ana@example.com");
    assert_eq!(
        ana.and_then(|u| u.attributes.get("manager"))
            .map(String::as_str),
        Some("boss@example.com")
    );
    let eng = snap.groups.iter().find(|g| g.name == "Engineering");
    assert_eq!(
        eng.map(|g| g.members.len()),
        Some(if transitive { 2 } else { 0 }),
        "Engineering holds ana and vic only through Platform"
    );
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_targeted_read_equals_the_full_read_cut_down_in_few_requests() {
    for transitive in [true, false] {
        let small = entra_targeted(4, transitive).await;
        let large = entra_targeted(30, transitive).await;
        assert_eq!(
            small, large,
            "the request count does not grow with the tenant"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_a_failed_per_person_read_fails_the_targeted_read() {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    seed_entra(&e, 2);
    e.faults().fail_path_contains = Some(("transitiveMemberOf".into(), usize::MAX));
    let (src, _dir) = source_from_yaml(&entra_yaml(&e, true, 1));
    let err = src
        .snapshot_people(&people(&["ana@example.com"], &[]))
        .await
        .expect_err("a 503 is an error, not an empty answer");
    assert!(err.to_string().contains("503"), "{err}");
}

// --- Google ----------------------------------------------------------------------------------

use crate::fakes::google::{FakeGoogle, FakeGoogleConfig};

fn seed_google(g: &FakeGoogle, n: usize) -> String {
    let mut everyone = vec![];
    for i in 0..n {
        let e = format!("filler{i:03}@example.com");
        g.add_user(&e);
        everyone.push(e);
    }
    g.add_user("ana@example.com");
    g.add_user("dee@example.com");
    let vic = g.add_user("vic.new@example.com");
    g.set_suspended("dee@example.com", true);
    g.add_group(
        "Platform",
        "platform@example.com",
        &["ana@example.com", "vic.new@example.com"],
    );
    g.add_group(
        "Engineering",
        "eng@example.com",
        &["dee@example.com", "group:platform@example.com"],
    );
    let all: Vec<&str> = everyone.iter().map(String::as_str).collect();
    g.add_group("Everyone", "all@example.com", &all);
    vic
}

fn google_yaml(g: &FakeGoogle, dir: &std::path::Path, derived: bool, attempts: u32) -> String {
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": g.config.service_account,
        "private_key": std::fs::read_to_string(crate::support::repo().join("tests/fixtures/test-rsa-key.pem")).unwrap(),
        "token_uri": g.token_url(),
    });
    let key_path = dir.join("sa.json");
    std::fs::write(&key_path, key.to_string()).expect("write the key");
    format!(
        r#"version: 1
sources:
  - name: google
    type: google
    admin_email: {admin}
    service_account_key_file: {key}
    base_url: {base}
    include_derived_membership: {derived}
    groups: [eng@example.com, platform@example.com]
    http: {{max_attempts: {attempts}}}
target: {{type: file, path: atlassian.yaml}}
"#,
        admin = g.config.admin,
        key = key_path.display(),
        base = g.base_url,
    )
}

async fn google_targeted(n: usize, derived: bool) -> usize {
    let g = FakeGoogle::start(FakeGoogleConfig::default()).await;
    let vic = seed_google(&g, n);
    let keys = tempfile::tempdir().expect("a scratch folder");
    let (src, _dir) = source_from_yaml(&google_yaml(&g, keys.path(), derived, 3));
    let who = people(
        &["Ana@example.com", "dee@example.com", "nobody@example.com"],
        &[vic.as_str()],
    );
    let (used, snap) = compare(src.as_ref(), &who, || g.requests().len()).await;
    assert_eq!(snap.users.len(), 3, "ana, dee (suspended), vic by id");
    let eng = snap.groups.iter().find(|x| x.name == "eng@example.com");
    assert_eq!(
        eng.map(|x| x.members.len()),
        Some(if derived { 3 } else { 1 }),
        "ana and vic are in eng only through platform"
    );
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_targeted_read_equals_the_full_read_cut_down_in_few_requests() {
    for derived in [true, false] {
        let small = google_targeted(4, derived).await;
        let large = google_targeted(30, derived).await;
        assert_eq!(
            small, large,
            "the request count does not grow with the customer"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_a_failed_per_person_read_fails_the_targeted_read() {
    let g = FakeGoogle::start(FakeGoogleConfig::default()).await;
    seed_google(&g, 2);
    g.set_faults(Faults {
        fail_path_contains: Some(("hasMember".into(), usize::MAX)),
        ..Faults::default()
    });
    let keys = tempfile::tempdir().expect("a scratch folder");
    let (src, _dir) = source_from_yaml(&google_yaml(&g, keys.path(), true, 1));
    let err = src
        .snapshot_people(&people(&["ana@example.com"], &[]))
        .await
        .expect_err("a 503 is an error, not an empty answer");
    assert!(err.to_string().contains("503"), "{err}");
}

// --- OneLogin --------------------------------------------------------------------------------

use crate::fakes::onelogin::{FakeOneLogin, FakeOneLoginConfig};

fn seed_onelogin(o: &FakeOneLogin, n: usize) -> u64 {
    let mut everyone = vec![];
    for i in 0..n {
        let e = format!("filler{i:03}@example.com");
        o.add_user(&e);
        everyone.push(e);
    }
    o.add_user("ana@example.com");
    o.add_user("dee@example.com");
    let vic = o.add_user("vic.new@example.com");
    o.set_status("dee@example.com", 2);
    let all: Vec<&str> = everyone.iter().map(String::as_str).collect();
    o.add_group("Staff", &all);
    o.add_group("Engineering", &["ana@example.com", "vic.new@example.com"]);
    o.add_role("Engineering", &["dee@example.com"]);
    o.add_role(
        "Atlassian Users",
        &[
            "ana@example.com",
            "dee@example.com",
            "filler000@example.com",
        ],
    );
    vic
}

fn onelogin_yaml(o: &FakeOneLogin, attempts: u32) -> String {
    format!(
        r#"version: 1
sources:
  - name: onelogin
    type: onelogin
    base_url: {base}
    client_id: {client}
    client_secret: "{secret}"
    roles_as_groups: true
    http: {{max_attempts: {attempts}}}
target: {{type: file, path: atlassian.yaml}}
"#,
        base = o.base_url,
        client = o.config.client_id,
        secret = o.config.client_secret,
    )
}

async fn onelogin_targeted(n: usize) -> usize {
    let o = FakeOneLogin::start(FakeOneLoginConfig::default()).await;
    let vic = seed_onelogin(&o, n);
    let (src, _dir) = source_from_yaml(&onelogin_yaml(&o, 3));
    let who = people(
        &["ana@example.com", "DEE@example.com", "nobody@example.com"],
        &[vic.to_string().as_str()],
    );
    let (used, snap) = compare(src.as_ref(), &who, || o.requests().len()).await;
    assert_eq!(snap.users.len(), 3, "ana, dee (status 2), vic by id");
    let eng = snap.groups.iter().find(|g| g.name == "Engineering");
    assert_eq!(
        eng.map(|g| g.members.len()),
        Some(3),
        "the group Engineering (ana, vic) and the role Engineering (dee) are one group"
    );
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onelogin_targeted_read_equals_the_full_read_cut_down_in_few_requests() {
    let small = onelogin_targeted(4).await;
    let large = onelogin_targeted(120).await;
    assert_eq!(
        small, large,
        "the request count does not grow with the account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onelogin_a_failed_per_person_read_fails_the_targeted_read() {
    let o = FakeOneLogin::start(FakeOneLoginConfig::default()).await;
    seed_onelogin(&o, 2);
    o.set_faults(Faults {
        fail_path_contains: Some(("/roles".into(), usize::MAX)),
        ..Faults::default()
    });
    let (src, _dir) = source_from_yaml(&onelogin_yaml(&o, 1));
    let err = src
        .snapshot_people(&people(&["ana@example.com"], &[]))
        .await
        .expect_err("a 503 is an error, not an empty answer");
    assert!(err.to_string().contains("503"), "{err}");
}

// --- Atlassian target with the admin API ------------------------------------------------------

/// The Atlassian target with `admin:`: the SCIM part is read per person, the organization's facts
/// (last-active dates, admins, accounts outside the directory, tokens) are read whole and cut to
/// the same people, so the targeted read still equals the full read cut down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atlassian_with_admin_targeted_read_equals_the_full_read_cut_down() {
    let atl = FakeAtlassian::start(FakeConfig {
        token_inventory: true,
        ..FakeConfig::default()
    })
    .await;
    seed_atlassian(&atl, 7);
    atl.set_admin("ana@example.com", "org-admin");
    atl.set_last_active("dee@example.com", "2025-01-02");
    atl.add_api_token("dee@example.com", "ci");
    atl.add_org_account("jit@example.com", "Jit Person", Some("2025-03-01"));
    let dir = tempfile::tempdir().expect("a scratch folder");
    let path = dir.path().join("idsync.yaml");
    std::fs::write(
        &path,
        format!(
            r#"version: 1
sources: [{{name: idp, type: file, path: idp.yaml}}]
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "{scim_token}", page_size: 3}}
  admin: {{org_id: "{org}", token: "{org_token}", base_url: "{admin}"}}
cleanup: {{skip_admins: true, revoke_api_tokens: true}}
"#,
            scim = atl.scim_base(),
            scim_token = atl.config.scim_token,
            org = atl.org_id(),
            org_token = atl.config.org_token,
            admin = atl.base_url,
        ),
    )
    .expect("write the config");
    let loaded = idsync::config::load(&path).expect("the config loads");
    let mut t = idsync::targets::build(&loaded.config, dir.path()).expect("the target builds");
    let who = people(
        &[
            "ana@example.com",
            "dee@example.com",
            "jit@example.com",
            "nobody@example.com",
        ],
        &["idp-bob"],
    );
    let targeted = t.snapshot_people(&who).await.expect("targeted read");
    let full = t.snapshot().await.expect("full read").restrict_to(&who);
    assert_eq!(canonical(targeted.clone()), canonical(full));
    let by = |k: &str| targeted.users.iter().find(|u| u.key() == k);
    assert!(
        by("ana@example.com").is_some_and(|u| u.admin),
        "admin known"
    );
    assert!(
        by("jit@example.com").is_some_and(|u| !u.in_directory),
        "an account outside the directory is found"
    );
    assert!(by("bob.old@example.com").is_some(), "rename by externalId");
}
