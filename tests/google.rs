//! Google Workspace end to end: the fake Directory API as the source, the fake Atlassian as the target.

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::google::{FakeGoogle, FakeGoogleConfig};
use crate::fakes::{token_traffic, Faults};
use crate::support::{repo, run_beside_fakes, Scratch};

/// A customer: four people (one suspended, one archived), a nested group. Returns Cy's id.
fn seed(g: &FakeGoogle) -> String {
    g.add_user("ana@example.com");
    g.add_user("ben@example.com");
    let cy = g.add_user("cy@example.com");
    g.add_user("dee@example.com");
    g.set_suspended("cy@example.com", true);
    g.set_archived("dee@example.com", true);
    g.add_group("Platform", "platform@example.com", &["ben@example.com"]);
    g.add_group(
        "Engineering",
        "eng@example.com",
        &["ana@example.com", "group:platform@example.com"],
    );
    cy
}

fn scratch(g: &FakeGoogle, atl: &FakeAtlassian) -> Scratch {
    let s = Scratch::new();
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": g.config.service_account,
        "private_key": std::fs::read_to_string(repo().join("tests/fixtures/test-rsa-key.pem")).unwrap(),
        "token_uri": g.token_url(),
    });
    s.write("sa.json", &key.to_string()).write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - name: google
    type: google
    admin_email: {admin}
    service_account_key_file: sa.json
    base_url: {base}
    groups: [eng@example.com]
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
groups:
  mappings: [{{from: "google:eng@example.com", to: engineering}}]
cleanup: {{max_deactivations: 100%}}
"#,
            admin = g.config.admin,
            base = g.base_url,
            scim = atl.scim_base()
        ),
    );
    s
}

async fn idsync(s: &Scratch, atl: &FakeAtlassian, args: &[&str]) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_SCIM_TOKEN", &atl.config.scim_token)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
    run_beside_fakes(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_converges_with_nested_groups_and_quota_errors() {
    let g = FakeGoogle::start(FakeGoogleConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    let cy_id = seed(&g);
    let mut cy = SeedUser::new("cy@example.com");
    cy.external_id = Some(cy_id);
    atl.add_user(cy);
    let s = scratch(&g, &atl);

    g.set_quota_errors(2);
    let (code, plan, stderr) = idsync(&s, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ create_user ana@example.com",
        "+ create_user ben@example.com",
        "- deactivate_user cy@example.com",
        "+ add_members engineering (batch 1/1, 2 member(s))",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(
        !plan.contains("create_user dee@example.com"),
        "archived: not created\n{plan}"
    );
    assert_eq!(g.per_user_calls(), 0);
    let (code, _, stderr) = idsync(&s, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, _) = idsync(&s, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}");
    assert_eq!(
        atl.group_members("engineering"),
        vec!["ana@example.com", "ben@example.com"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_deactivates_nobody() {
    let g = FakeGoogle::start(FakeGoogleConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&g);
    atl.add_user(SeedUser::new("old@example.com"));
    let s = scratch(&g, &atl);
    g.set_faults(Faults {
        fail_path_contains: Some(("/members".into(), usize::MAX)),
        ..Faults::default()
    });
    let before = atl.mutations();
    let (code, stdout, stderr) = idsync(&s, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("source `google` could not be read completely"),
        "{stderr}"
    );
    assert_eq!(atl.mutations(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_outlasting_its_tokens_renews_once_per_expiry() {
    let g = FakeGoogle::start(FakeGoogleConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&g);
    // Every group read, sixteen more of them: one members listing each.
    for i in 0..16 {
        g.add_group(
            &format!("Team {i:02}"),
            &format!("team{i:02}@example.com"),
            &["ana@example.com"],
        );
    }
    let s = scratch(&g, &atl);
    let yaml = s
        .read("idsync.yaml")
        .replace("    groups: [eng@example.com]\n", "");
    s.write("idsync.yaml", &yaml);
    let (code, reference, stderr) = idsync(&s, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");

    // Tokens that last five Directory requests; each renewal signs a new JWT-bearer grant.
    g.set_token_ttl_requests(Some(5));
    let before = g.requests().len();
    let (code, plan, stderr) = idsync(&s, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan, reference, "the same read, across token expiries");
    token_traffic(&g.requests()[before..], "/token").assert_one_renewal_per_expiry(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_and_external_members_are_named_and_an_external_account_is_kept() {
    let g = FakeGoogle::start(FakeGoogleConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&g);
    g.add_customer_member("eng@example.com");
    let ext = g.add_external_member("platform@example.com", "Vic@Partner.example.com");
    // The partner has an Atlassian account: being left out of the source is not leaving.
    atl.add_user(SeedUser::new("vic@partner.example.com"));
    let s = scratch(&g, &atl);
    // Configured groups can be named by id as well as by email (any case).
    let eng = g
        .state()
        .groups
        .iter()
        .find(|x| x.email == "eng@example.com")
        .unwrap()
        .id
        .clone();
    let text = s.read("idsync.yaml").replace(
        "groups: [eng@example.com]",
        &format!("groups: [\"id:{eng}\", PLATFORM@example.com]"),
    );
    s.write("idsync.yaml", &text);

    let (code, plan, stderr) = idsync(&s, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ add_members engineering (batch 1/1, 2 member(s))",
        "source `google`: 1 group membership(s) not synced (the whole account (a CUSTOMER member), not a user): C0fake000 in eng@example.com",
        &format!("source `google`: 2 group membership(s) not synced (not a user of this Workspace (an external member)): Vic@Partner.example.com (id {ext}) in eng@example.com, Vic@Partner.example.com (id {ext}) in platform@example.com"),
        "= vic@partner.example.com  source `google` left out Vic@Partner.example.com",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(!plan.contains("deactivate_user vic@"), "{plan}");
}

/// Google leaves unset fields out; a `null` in their place must read the same. The same customer,
/// planned with the fake leaving fields out and then sending them as `null` (names, organizations
/// and their fields, an empty group's `members`, the last page's `nextPageToken`, a CUSTOMER
/// member's `email`…), gives byte-identical plans, and converges in `null` mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_nulls_plan_exactly_like_missing_fields() {
    let g = FakeGoogle::start(FakeGoogleConfig {
        page_cap: 2,
        ..FakeGoogleConfig::default()
    })
    .await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&g);
    g.update_user("ana@example.com", |u| u.title = Some("Engineer".into()));
    g.update_user("ben@example.com", |u| {
        u.department = Some("R&D".into());
        u.given_name = String::new();
    });
    g.add_group("Empty", "empty@example.com", &[]);
    g.add_customer_member("eng@example.com");
    g.add_external_member("eng@example.com", "guest@elsewhere.example");
    let s = scratch(&g, &atl);
    let text = s
        .read("idsync.yaml")
        .replace("    groups: [eng@example.com]\n", "")
        .replace(
            "groups:\n  mappings: [",
            "users:\n  attributes: {displayName: \"{givenName} {familyName}\", title: \"{title}\", department: \"{department}\"}\ngroups:\n  mappings: [{from: \"google:empty@example.com\", to: empty}, ",
        );
    s.write("idsync.yaml", &text);

    let mut plans = Vec::new();
    for explicit_nulls in [false, true] {
        g.state().config.explicit_nulls = explicit_nulls;
        let mut outputs = Vec::new();
        for format in ["text", "json", "markdown"] {
            let (code, plan, stderr) = idsync(&s, &atl, &["plan", "--format", format]).await;
            assert_eq!(code, 0, "explicit_nulls {explicit_nulls}: {stderr}");
            outputs.push(plan);
        }
        plans.push(outputs);
    }
    assert_eq!(plans[0], plans[1], "nulls changed the plan");
    let plan = &plans[1][0];
    for expected in [
        "+ create_user ana@example.com",
        "+ create_user ben@example.com",
        "+ create_group empty",
        "guest@elsewhere.example",
        "CUSTOMER",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }

    let (code, _, stderr) = idsync(&s, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, stderr) = idsync(&s, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}\n{stderr}");
    let ana = atl.user("ana@example.com").unwrap();
    assert_eq!(
        (&ana["displayName"], &ana["title"]),
        (&serde_json::json!("Ana"), &serde_json::json!("Engineer"))
    );
    let ben = atl.user("ben@example.com").unwrap();
    assert!(ben.get("displayName").is_none(), "{ben}");
    assert_eq!(atl.group_members("empty"), Vec::<String>::new());
}

/// Quota errors (403) and throttling (429) mixed, forever: each listing is sent at most
/// `http.max_attempts` times in all, never a retry loop nested in another (which made up to
/// attempts² requests), and the read fails naming the quota error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_errors_and_throttling_share_one_attempt_budget() {
    let g = FakeGoogle::start(FakeGoogleConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&g);
    let s = scratch(&g, &atl);
    let config = s.read("idsync.yaml").replace(
        "    groups: [eng@example.com]\n",
        "    groups: [eng@example.com]\n    http: {max_attempts: 3}\n",
    );
    s.write("idsync.yaml", &config);
    g.set_faults(Faults {
        throttle_next: 2,
        retry_after_secs: 0,
        ..Faults::default()
    });
    g.set_quota_errors(usize::MAX);
    let (code, stdout, stderr) = idsync(&s, &atl, &["plan"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    let mut per_path = std::collections::BTreeMap::<String, usize>::new();
    for r in g
        .requests()
        .iter()
        .filter(|r| r.path.contains("/admin/directory/"))
    {
        *per_path.entry(r.path.clone()).or_default() += 1;
    }
    assert!(per_path.values().all(|n| *n <= 3), "{per_path:?}");
    assert_eq!(per_path.values().max(), Some(&3), "{per_path:?}");
}
