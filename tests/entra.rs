//! Entra ID end to end: the fake Entra (token endpoint + Graph) as the source, the fake Atlassian as
//! the target.

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::entra::{EntraSeedUser, FakeEntra, FakeEntraConfig};
use crate::fakes::{token_traffic, Faults};
use crate::support::{repo, Scratch};

/// A tenant: five people (one disabled), a nested group (Platform inside Engineering), a manager.
fn seed_entra(e: &FakeEntra) {
    for m in [
        "ana@example.com",
        "ben@example.com",
        "cy@example.com",
        "dee@example.com",
        "eve@example.com",
    ] {
        e.add_user(EntraSeedUser::new(m));
    }
    e.set_enabled("dee@example.com", false);
    e.set_manager("ben@example.com", "ana@example.com");
    e.add_group("Platform", &["cy@example.com", "ana@example.com"]);
    e.add_group(
        "Engineering",
        &["ana@example.com", "ben@example.com", "group:Platform"],
    );
    e.add_group(
        "Atlassian Users",
        &[
            "ana@example.com",
            "ben@example.com",
            "cy@example.com",
            "dee@example.com",
            "eve@example.com",
        ],
    );
    e.add_group("Unrelated", &["eve@example.com"]);
}

fn config(e: &FakeEntra, atl: &FakeAtlassian, credential: &str, transitive: bool) -> String {
    format!(
        r#"version: 1
sources:
  - name: entra
    type: entra
    tenant_id: {tenant}
    client_id: {client}
{credential}    authority: {authority}
    base_url: {graph}
    transitive: {transitive}
    manager: true
    groups: [Atlassian Users, Engineering]
    page_size: 2
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
users:
  require_groups: ["entra:Atlassian Users"]
  attributes: {{displayName: "{{givenName}} {{familyName}}", title: "{{manager}}"}}
groups:
  mappings: [{{from: "entra:Engineering", to: engineering}}]
cleanup: {{max_deactivations: 100%}}
"#,
        tenant = e.config.tenant_id,
        client = e.config.client_id,
        authority = e.authority_url(),
        graph = e.graph_url(),
        scim = atl.scim_base(),
    )
}

fn certificate() -> String {
    format!(
        "    certificate:\n      private_key_file: {}\n      certificate_file: {}\n",
        repo().join("tests/fixtures/test-rsa-key.pem").display(),
        repo().join("tests/fixtures/test-cert.pem").display()
    )
}

async fn idsync(
    s: &Scratch,
    e: &FakeEntra,
    atl: &FakeAtlassian,
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_SCIM_TOKEN", &atl.config.scim_token)
        .env("TEST_ENTRA_SECRET", &e.config.client_secret)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
    crate::support::run_beside_fakes(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_converges_with_a_certificate_and_nested_groups_count_once() {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_entra(&e);
    let mut dee = SeedUser::new("dee@example.com");
    dee.external_id = e.user_id("dee@example.com");
    atl.add_user(dee);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&e, &atl, &certificate(), true));

    let (code, plan, stderr) = idsync(&s, &e, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ create_user ana@example.com",
        "+ create_user cy@example.com",
        "- deactivate_user dee@example.com",
        "because deactivated or suspended in `entra`",
        "title: \"ana@example.com\"",
        "+ add_members engineering (batch 1/1, 3 member(s))",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert_eq!(
        e.per_user_calls(),
        0,
        "no per-user calls: managers come with the user listing"
    );
    assert_eq!(e.tokens_issued(), 1);
    assert!(
        !e.requests().iter().any(|r| r.query.contains("Unrelated")),
        "unconfigured groups are not read"
    );

    let (code, _, stderr) = idsync(&s, &e, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        atl.group_members("engineering"),
        vec!["ana@example.com", "ben@example.com", "cy@example.com"],
        "Cy comes through the nested group; Ana, reachable twice, once"
    );
    let (code, again, _) = idsync(&s, &e, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}");

    // A rename: same object id, new mail.
    let ben = e.user_id("ben@example.com").unwrap();
    e.set_mail(&ben, "ben.okafor@example.com");
    let (code, plan, _) = idsync(&s, &e, &atl, &["plan"]).await;
    assert_eq!(code, 0);
    assert!(
        plan.contains("~ update_user ben.okafor@example.com"),
        "{plan}"
    );
    assert!(
        !plan.contains("+ create_user") && !plan.contains("- deactivate_user"),
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_members_only_when_not_transitive() {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_entra(&e);
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &config(&e, &atl, "    client_secret: ${TEST_ENTRA_SECRET}\n", false),
    );
    let (code, plan, stderr) = idsync(&s, &e, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains("+ add_members engineering (batch 1/1, 2 member(s))"),
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_aborts_and_throttling_loses_nothing() {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_entra(&e);
    let mut eve = SeedUser::new("eve@example.com");
    eve.external_id = e.user_id("eve@example.com");
    atl.add_user(eve);
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &config(&e, &atl, "    client_secret: ${TEST_ENTRA_SECRET}\n", true),
    );
    let (code, reference, stderr) = idsync(&s, &e, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");

    e.set_faults(Faults {
        fail_path_contains: Some(("skiptoken".into(), usize::MAX)),
        ..Faults::default()
    });
    let before = atl.mutations();
    let (code, stdout, stderr) = idsync(&s, &e, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("source `entra` could not be read completely"),
        "{stderr}"
    );
    assert_eq!(atl.mutations(), before, "nobody deactivated");

    e.set_faults(Faults {
        truncate_next: 1,
        ..Faults::default()
    });
    e.set_throttle_every(Some(3), 1);
    let (code, throttled, stderr) = idsync(&s, &e, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        throttled, reference,
        "throttled and truncated pages retried: the same plan"
    );
    assert!(e.requests().iter().any(|r| r.status == 429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_outlasting_its_tokens_renews_once_per_expiry() {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_entra(&e);
    // Ten more people, so that users and members take several pages of two.
    for i in 0..10 {
        let mail = format!("extra{i:02}@example.com");
        e.add_user(EntraSeedUser::new(&mail));
        e.add_member("Atlassian Users", &mail);
    }
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&e, &atl, &certificate(), true));
    let (code, reference, stderr) = idsync(&s, &e, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(reference.contains("extra09@example.com"), "{reference}");

    // Tokens that last five Graph requests; each renewal signs a new client assertion.
    e.set_token_ttl_requests(Some(5));
    let before = e.requests().len();
    let assertions = e.assertions().len();
    let (code, plan, stderr) = idsync(&s, &e, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan, reference, "the same read, across token expiries");
    let traffic = token_traffic(&e.requests()[before..], "/oauth2/v2.0/token");
    traffic.assert_one_renewal_per_expiry(5);
    assert_eq!(e.assertions().len() - assertions, traffic.token_requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_beta_reads_the_same_directory() {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_entra(&e);
    let s = Scratch::new();
    let yaml = config(&e, &atl, "    client_secret: ${TEST_ENTRA_SECRET}\n", true);
    s.write("idsync.yaml", &yaml);
    let (code, v1, stderr) = idsync(&s, &e, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    s.write(
        "idsync.yaml",
        &yaml.replace(
            "    manager: true\n",
            "    manager: true\n    api_version: beta\n",
        ),
    );
    let before = e.requests().len();
    let (code, beta, stderr) = idsync(&s, &e, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let actions = |plan: &str| {
        let v: serde_json::Value = serde_json::from_str(plan).expect("a JSON plan");
        v["actions"].clone()
    };
    assert!(
        actions(&v1).as_array().is_some_and(|a| !a.is_empty()),
        "{v1}"
    );
    assert_eq!(
        actions(&beta),
        actions(&v1),
        "the same plan (but for the config hash)"
    );
    let graph: Vec<_> = e.requests()[before..]
        .iter()
        .filter(|r| !r.path.ends_with("/token"))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        !graph.is_empty() && graph.iter().all(|p| p.starts_with("/beta/")),
        "{graph:?}"
    );
}

/// A tenant as it really is: a display name two groups share, members that are not users
/// (a service principal, a device, a contact whose address has an Atlassian account), and a
/// manager whose `mail` is null.
fn seed_untidy(e: &FakeEntra) -> (String, String) {
    seed_entra(e);
    e.add_user(EntraSeedUser::new("fay@example.com").upn("fay@corp.onmicrosoft.com"));
    e.set_user_property("fay@example.com", "mail", serde_json::Value::Null);
    e.set_manager("eve@example.com", "fay@corp.onmicrosoft.com");
    e.add_member("Atlassian Users", "fay@corp.onmicrosoft.com");
    let spn = e.add_other("servicePrincipal", "CI deploy bot");
    let device = e.add_other("device", "Kiosk 7");
    let contact = e.add_other("orgContact", "Pat (vendor)");
    e.set_other_property(
        &contact,
        "mail",
        serde_json::json!("pat@vendor.example.com"),
    );
    for m in [&spn, &device, &contact] {
        e.add_member("Atlassian Users", &format!("object:{m}"));
    }
    e.add_member("Engineering", &format!("object:{spn}"));
    let first = e.group_id("Engineering").unwrap();
    let second = e.add_group_sharing_name("Engineering", &["eve@example.com"]);
    (first, second)
}

fn untidy_config(e: &FakeEntra, atl: &FakeAtlassian, groups: &str, from: &str) -> String {
    format!(
        r#"version: 1
sources:
  - name: entra
    type: entra
    tenant_id: {tenant}
    client_id: {client}
    client_secret: ${{TEST_ENTRA_SECRET}}
    authority: {authority}
    base_url: {graph}
    manager: true
{groups}    page_size: 2
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
users:
  require_groups: ["entra:Atlassian Users"]
  attributes: {{title: "{{manager}}"}}
groups:
  mappings: [{{from: "{from}", to: engineering}}]
cleanup: {{max_deactivations: 100%}}
"#,
        tenant = e.config.tenant_id,
        client = e.config.client_id,
        authority = e.authority_url(),
        graph = e.graph_url(),
        scim = atl.scim_base(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_duplicate_names_members_that_are_not_users_and_null_mail() {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    let (first, second) = seed_untidy(&e);
    // The vendor contact has an Atlassian account: a member left out is not a leaver.
    atl.add_user(SeedUser::new("pat@vendor.example.com"));
    let s = Scratch::new();

    // The duplicate is referred to by name: an error naming both groups by id, nothing planned.
    s.write(
        "idsync.yaml",
        &untidy_config(&e, &atl, "", "entra:Engineering"),
    );
    let (code, stdout, stderr) = idsync(&s, &e, &atl, &["plan"]).await;
    assert_eq!(code, 1, "{stdout}");
    for expected in [
        "groups.mappings[0] names \"entra:Engineering\", but 2 groups of source `entra` have that name",
        &format!("id {first}"),
        &format!("id {second}"),
        "entra:id:",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in\n{stderr}");
    }
    assert!(stdout.is_empty(), "{stdout}");

    // By id: it plans, and the reasons still read the name.
    s.write(
        "idsync.yaml",
        &untidy_config(&e, &atl, "", &format!("entra:id:{second}")),
    );
    let (code, plan, stderr) = idsync(&s, &e, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ add_members engineering (batch 1/1, 1 member(s))",
        &format!("+ eve@example.com  — member of entra:Engineering (id {second}) via groups.mappings[0]"),
        // Fay's mail is null: her UPN stands in, as her email and as Eve's manager.
        "+ create_user fay@corp.onmicrosoft.com",
        "title: \"fay@corp.onmicrosoft.com\"",
        "source `entra`: 2 group membership(s) not synced (a service principal, not a user): CI deploy bot (id ",
        "source `entra`: 1 group membership(s) not synced (a device, not a user): Kiosk 7 (id ",
        "source `entra`: 1 group membership(s) not synced (an organizational contact, not a user): pat@vendor.example.com (id ",
        "= pat@vendor.example.com  source `entra` left out pat@vendor.example.com",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(
        !plan.contains("deactivate_user pat@vendor.example.com"),
        "a member left out is never taken for gone:\n{plan}"
    );

    // The same in the connector's `groups:`: a shared name is an error, an id reads that group.
    s.write(
        "idsync.yaml",
        &untidy_config(
            &e,
            &atl,
            "    groups: [Atlassian Users, Engineering]\n",
            "entra:Engineering",
        ),
    );
    let (code, _, stderr) = idsync(&s, &e, &atl, &["plan"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the configured group \"Engineering\" names 2 groups in Entra ID")
            && stderr.contains(&first)
            && stderr.contains(&second),
        "{stderr}"
    );
    s.write(
        "idsync.yaml",
        &untidy_config(
            &e,
            &atl,
            &format!("    groups: [Atlassian Users, \"id:{first}\"]\n"),
            "entra:Engineering",
        ),
    );
    let (code, plan, stderr) = idsync(&s, &e, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains("+ add_members engineering (batch 1/1, 3 member(s))")
            && plan.contains("— member of entra:Engineering via groups.mappings[0]"),
        "{plan}"
    );

    // An unreferenced duplicate does not block anything.
    s.write(
        "idsync.yaml",
        &untidy_config(&e, &atl, "", "entra:Atlassian Users"),
    );
    let (code, _, stderr) = idsync(&s, &e, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
}

/// Member listings go twenty to a JSON batch: 45 groups take three `$batch` requests instead of
/// 45 GETs; a big group's further pages follow its `@odata.nextLink` outside the batch; and a
/// request throttled inside a batch (Graph throttles each on its own, with its own `Retry-After`)
/// is sent again in a later batch, so the read is the same as an unthrottled one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_listings_are_batched_and_throttled_items_sent_again() {
    let e = FakeEntra::start(FakeEntraConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    let people: Vec<String> = (0..12).map(|i| format!("p{i:02}@example.com")).collect();
    for p in &people {
        e.add_user(EntraSeedUser::new(p));
    }
    for g in 0..44 {
        e.add_group(&format!("team-{g:02}"), &[people[g % 12].as_str()]);
    }
    let big: Vec<&str> = people[..5].iter().map(String::as_str).collect();
    e.add_group("Big", &big);
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &config(&e, &atl, "    client_secret: ${TEST_ENTRA_SECRET}\n", true)
            .replace("    groups: [Atlassian Users, Engineering]\n", "")
            .replace("  require_groups: [\"entra:Atlassian Users\"]\n", "")
            .replace(
                "  mappings: [{from: \"entra:Engineering\", to: engineering}]\n",
                "  mappings: []\n",
            ),
    );
    let read = || async {
        let (code, _, stderr) = idsync(
            &s,
            &e,
            &atl,
            &["snapshot", "--side", "source", "--out", "snap.json"],
        )
        .await;
        (code, s.read("snap.json"), stderr)
    };
    let (code, reference, stderr) = read().await;
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&reference).expect("a JSON snapshot");
    let groups = v["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 45, "{reference}");
    let big_members = groups
        .iter()
        .find(|g| g["name"] == "Big")
        .and_then(|g| g["members"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(big_members, 5, "{reference}");
    let log = e.requests();
    let batches = log.iter().filter(|r| r.path == "/v1.0/$batch").count();
    let member_gets = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/transitiveMembers"))
        .count();
    assert_eq!(batches, 3, "45 groups, 20 to a batch");
    assert_eq!(member_gets, 2, "Big's pages 2 and 3 (of two) by nextLink");
    let batched = e.batched();
    assert_eq!(batched.len(), 45);
    assert!(batched.iter().all(|(status, url)| *status == 200
        && url.starts_with("/groups/")
        && url.contains("%24count=true")));

    // Every fifth Graph request throttled, requests inside batches included.
    e.set_throttle_every(Some(5), 1);
    let before = e.batched().len();
    let (code, throttled, stderr) = read().await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(throttled, reference, "the same read, throttled");
    let inner = &e.batched()[before..];
    assert!(
        inner.iter().any(|(status, _)| *status == 429),
        "some requests were throttled inside a batch: {inner:?}"
    );
    assert_eq!(
        inner.iter().filter(|(status, _)| *status == 200).count(),
        45,
        "each listing's first page answered once"
    );
}
