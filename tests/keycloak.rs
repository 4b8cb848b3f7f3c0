//! Keycloak end to end: the fake Keycloak as the source, the fake Atlassian as the target.

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::keycloak::{FakeKeycloak, FakeKeycloakConfig};
use crate::fakes::{token_traffic, Faults};
use crate::support::{run_beside_fakes, Scratch};

/// Seeds the realm; returns Dee's id.
fn seed(kc: &FakeKeycloak) -> String {
    for e in ["ana@example.com", "ben@example.com", "cy@example.com"] {
        kc.add_user(e);
    }
    let dee = kc.add_user("dee@example.com");
    kc.set_enabled("dee@example.com", false);
    kc.add_group(
        "/Atlassian Users",
        &[
            "ana@example.com",
            "ben@example.com",
            "cy@example.com",
            "dee@example.com",
        ],
    );
    kc.add_group("/Engineering", &["ana@example.com"]);
    kc.add_group("/Engineering/SRE", &["ben@example.com"]);
    // More children than Keycloak's default page of 10.
    for i in 0..12 {
        kc.add_group(&format!("/Engineering/team-{i:02}"), &[]);
    }
    kc.add_group("/Engineering/team-11/deep", &["cy@example.com"]);
    dee
}

fn config(kc: &FakeKeycloak, atl: &FakeAtlassian, legacy: bool) -> String {
    let base = if legacy {
        format!("{}/auth", kc.base_url)
    } else {
        kc.base_url.clone()
    };
    format!(
        r#"version: 1
sources:
  - name: keycloak
    type: keycloak
    base_url: {base}
    realm: {realm}
    client_id: {client}
    client_secret: ${{TEST_KC_SECRET}}
    page_size: 2
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
users:
  require_groups: ["keycloak:/Atlassian Users"]
groups:
  mappings:
    - {{from: "keycloak:/Engineering", to: engineering}}
    - {{from_regex: "^keycloak:/Engineering/(SRE|team-11/deep)$", to: "eng-$1"}}
cleanup: {{max_deactivations: 100%}}
"#,
        realm = kc.config.realm,
        client = kc.config.client_id,
        scim = atl.scim_base(),
    )
}

async fn idsync(
    s: &Scratch,
    kc: &FakeKeycloak,
    atl: &FakeAtlassian,
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_SCIM_TOKEN", &atl.config.scim_token)
        .env("TEST_KC_SECRET", &kc.config.client_secret)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
    run_beside_fakes(cmd).await
}

/// A fake Keycloak 23+, or one older (the tree inline in `subGroups`, no `/children`).
async fn start(pre23: bool) -> FakeKeycloak {
    FakeKeycloak::start(FakeKeycloakConfig {
        pre23,
        ..FakeKeycloakConfig::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_converges_through_the_group_tree() {
    for pre23 in [false, true] {
        converges_through_the_group_tree(pre23).await;
    }
}

async fn converges_through_the_group_tree(pre23: bool) {
    let kc = start(pre23).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    let dee_id = seed(&kc);
    let mut dee = SeedUser::new("dee@example.com");
    dee.external_id = Some(dee_id);
    atl.add_user(dee);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&kc, &atl, false));

    let (code, plan, stderr) = idsync(&s, &kc, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ create_user ana@example.com",
        "- deactivate_user dee@example.com",
        "because deactivated or suspended in `keycloak`",
        "+ create_group eng-SRE",
        "+ create_group eng-team-11/deep",
        "member of keycloak:/Engineering/team-11/deep",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert_eq!(kc.user_groups_calls(), 0, "no per-user group calls");
    let children = kc
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/children"))
        .count();
    assert_eq!(children > 0, !pre23, "children calls: {children}");
    let (code, _, stderr) = idsync(&s, &kc, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, _) = idsync(&s, &kc, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}");
    assert_eq!(atl.group_members("eng-SRE"), vec!["ben@example.com"]);

    // The same realm through the legacy /auth prefix plans the same.
    s.write("idsync.yaml", &config(&kc, &atl, true));
    let (code, again, stderr) = idsync(&s, &kc, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{again}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_deactivates_nobody() {
    for pre23 in [false, true] {
        failed_page_deactivates_nobody(pre23).await;
    }
}

async fn failed_page_deactivates_nobody(pre23: bool) {
    let kc = start(pre23).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&kc);
    let mut old = SeedUser::new("old@example.com");
    old.external_id = Some("gone".into());
    atl.add_user(old);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&kc, &atl, false));
    kc.set_faults(Faults {
        fail_path_contains: Some(("users?briefRepresentation=false&first=2".into(), usize::MAX)),
        ..Faults::default()
    });
    let before = atl.mutations();
    let (code, stdout, stderr) = idsync(&s, &kc, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("source `keycloak` could not be read completely"),
        "{stderr}"
    );
    assert_eq!(atl.mutations(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_outlasting_its_tokens_renews_once_per_expiry() {
    let kc = FakeKeycloak::start(FakeKeycloakConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&kc);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&kc, &atl, false));
    let (code, reference, stderr) = idsync(&s, &kc, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");

    // Tokens that last five admin requests: the read takes several of them.
    kc.set_token_ttl_requests(Some(5));
    let before = kc.requests().len();
    let (code, plan, stderr) = idsync(&s, &kc, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan, reference, "the same read, across token expiries");
    let traffic = token_traffic(&kc.requests()[before..], "/protocol/openid-connect/token");
    traffic.assert_one_renewal_per_expiry(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_refused_as_soon_as_issued_are_an_error_not_a_loop() {
    let kc = FakeKeycloak::start(FakeKeycloakConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&kc);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&kc, &atl, false));
    // Every token is refused, however new: not an expiry but credentials without access.
    kc.set_token_ttl_requests(Some(0));
    let (code, stdout, stderr) = idsync(&s, &kc, &atl, &["plan"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("newly issued access tokens were refused"),
        "{stderr}"
    );
    assert!(!stderr.contains(&kc.config.client_secret), "{stderr}");
    // The first token, then at most two renewals for each of the (at most four) requests in
    // flight: a few, and no more.
    let traffic = token_traffic(&kc.requests(), "/protocol/openid-connect/token");
    assert!((3..=9).contains(&traffic.token_requests), "{traffic:?}");
    assert_eq!(traffic.ok, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_without_email_are_named_and_kept_not_taken_for_gone() {
    let kc = FakeKeycloak::start(FakeKeycloakConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&kc);
    let users = kc
        .state()
        .groups
        .values()
        .find(|g| g.name == "Atlassian Users")
        .unwrap()
        .id
        .clone();
    // Keycloak allows users without an email; this one lost it after being provisioned.
    let kiosk = kc.add_user_without_email("kiosk-07");
    kc.add_member_id(&users, &kiosk);
    let bot = kc.add_service_account("ci");
    kc.add_member_id(&users, &bot);
    let mut provisioned = SeedUser::new("kiosk-07@example.com");
    provisioned.external_id = Some(kiosk.clone());
    atl.add_user(provisioned);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&kc, &atl, false));

    let (code, plan, stderr) = idsync(&s, &kc, &atl, &["plan", "--format", "markdown"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        // Markdown escapes the backticks around the source's name, so they render as written.
        &format!("source \\`keycloak\\`: 1 user(s) not synced (no email): kiosk-07 (id {kiosk})"),
        &format!("source \\`keycloak\\`: 1 group membership(s) not synced (not among the realm's users (a service account, or a user created during the read)): service-account-ci (id {bot}) in /Atlassian Users"),
        "kiosk-07@example.com",
        "so they are not taken for gone; would have been deactivated",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(!plan.contains("Users to deactivate"), "{plan}");
    let (code, json, _) = idsync(&s, &kc, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["summary"]["deactivate_user"], 0);
    assert!(
        json["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key"] == "kiosk-07@example.com"),
        "{json}"
    );

    // `snapshot` says so too, and writes the records into the file.
    let (code, _, stderr) = idsync(
        &s,
        &kc,
        &atl,
        &["snapshot", "--side", "source", "--out", "kc.yaml"],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: source `keycloak`: 1 user(s) not synced (no email): kiosk-07"),
        "{stderr}"
    );
    let written = s.read("kc.yaml");
    assert!(
        written.contains("skipped:") && written.contains("kiosk-07"),
        "{written}"
    );

    // A configured group by id reads that group only.
    let sre = kc
        .state()
        .groups
        .values()
        .find(|g| g.name == "SRE")
        .unwrap()
        .id
        .clone();
    let text = config(&kc, &atl, false).replace(
        "    page_size: 2\n",
        &format!("    page_size: 2\n    groups: [\"/Atlassian Users\", \"id:{sre}\"]\n"),
    );
    s.write("idsync.yaml", &text);
    let (code, plan, stderr) = idsync(&s, &kc, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains("+ create_group eng-SRE") && !plan.contains("create_group engineering"),
        "{plan}"
    );
}

/// GETs by kind in a fake's log: users pages, the users count, top-level group pages, the groups
/// count, children pages, member pages.
fn kc_reads(kc: &FakeKeycloak) -> [usize; 6] {
    let mut n = [0; 6];
    for r in kc.requests().iter().filter(|r| r.method == "GET") {
        let p = r.path.as_str();
        let i = if p.ends_with("/users") {
            0
        } else if p.ends_with("/users/count") {
            1
        } else if p.ends_with("/groups") {
            2
        } else if p.ends_with("/groups/count") {
            3
        } else if p.ends_with("/children") {
            4
        } else if p.ends_with("/members") {
            5
        } else {
            continue;
        };
        n[i] += 1;
    }
    n
}

/// The requests of one snapshot of the seeded realm (4 users, 17 groups, pages of 2). Before the
/// counts were used: users 3, groups 2, children 10, members 21 (36). The counts end the users and
/// top-level groups listings without an empty page (their last page asks for one more than
/// remains), `subGroupCount` does so under each parent, and since the users' first page came back
/// full, a member listing ends on its first short page: only the 4 members of `/Atlassian Users`
/// (two full pages) and the 12 empty teams need an empty page. Before Keycloak 23 the tree comes
/// inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_request_counts() {
    for (pre23, expected) in [(false, [2, 1, 1, 1, 8, 18]), (true, [2, 1, 1, 1, 0, 18])] {
        let kc = start(pre23).await;
        let atl = FakeAtlassian::start(FakeConfig::default()).await;
        seed(&kc);
        let s = Scratch::new();
        s.write("idsync.yaml", &config(&kc, &atl, false));
        let (code, snap, stderr) = idsync(&s, &kc, &atl, &["snapshot", "--side", "source"]).await;
        assert_eq!(code, 0, "{stderr}");
        for path in [
            "/Engineering/SRE",
            "/Engineering/team-11/deep",
            "/Engineering/team-00",
        ] {
            assert!(
                snap.contains(path),
                "{path} missing (pre23: {pre23}):\n{snap}"
            );
        }
        let n = kc_reads(&kc);
        assert_eq!(
            n, expected,
            "[users, users/count, groups, groups/count, children, members], pre23: {pre23}"
        );
    }
}

/// Keycloak leaves unset fields out; a `null` in their place (a proxy, an extension) must read the
/// same. The same realm, planned with the fake leaving fields out and then sending them as
/// `null`, gives byte-identical plans on both tree shapes, and converges in `null` mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_nulls_plan_exactly_like_missing_fields() {
    for pre23 in [false, true] {
        explicit_nulls_plan_like_missing_fields(pre23).await;
    }
}

async fn explicit_nulls_plan_like_missing_fields(pre23: bool) {
    let kc = start(pre23).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&kc);
    // Unset fields of every kind: no lastName (all seeded users), no firstName, attributes on one
    // user only, a user without an email, and a service-account member.
    kc.set_attribute("ana@example.com", "department", "R&D");
    kc.state()
        .users
        .values_mut()
        .find(|u| u.username == "ben@example.com")
        .unwrap()
        .first_name = None;
    let users = kc
        .state()
        .groups
        .values()
        .find(|g| g.name == "Atlassian Users")
        .unwrap()
        .id
        .clone();
    let kiosk = kc.add_user_without_email("kiosk-07");
    kc.add_member_id(&users, &kiosk);
    let bot = kc.add_service_account("ci");
    kc.add_member_id(&users, &bot);
    let s = Scratch::new();
    let text = config(&kc, &atl, false).replace(
        "groups:\n",
        "  attributes:\n    displayName: \"{givenName} {familyName}\"\n    department: \"{department}\"\n    title: \"{title}\"\ngroups:\n",
    );
    s.write("idsync.yaml", &text);

    let mut plans = Vec::new();
    for explicit_nulls in [false, true] {
        kc.state().config.explicit_nulls = explicit_nulls;
        let mut outputs = Vec::new();
        for format in ["text", "json", "markdown"] {
            let (code, plan, stderr) = idsync(&s, &kc, &atl, &["plan", "--format", format]).await;
            assert_eq!(code, 0, "explicit_nulls {explicit_nulls}: {stderr}");
            outputs.push(plan);
        }
        plans.push(outputs);
    }
    assert_eq!(plans[0], plans[1], "pre23 {pre23}: nulls changed the plan");
    let plan = &plans[1][0];
    for expected in [
        "+ create_user ana@example.com",
        "+ create_user ben@example.com",
        "1 user(s) not synced (no email): kiosk-07",
        "service-account-ci",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    // Ana's department (her only attribute) and Ben's missing first name came through.
    assert!(
        plans[1][1].contains("\"department\": \"R&D\""),
        "{}",
        plans[1][1]
    );

    // In `null` mode: apply, then nothing left to do.
    let (code, _, stderr) = idsync(&s, &kc, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, stderr) = idsync(&s, &kc, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}\n{stderr}");
    let ana = atl.user("ana@example.com").unwrap();
    assert_eq!(ana["displayName"], "Ana");
    assert!(atl
        .user("ben@example.com")
        .unwrap()
        .get("displayName")
        .is_none());
}

/// A server that caps `max` below the configured page size (3 where idsync asks for 5): its short
/// pages before the announced count are not the end, and since no page it returned proved that it
/// honours `max`, a member listing ends only on an empty page. Every user and member is read, and
/// the requests are exactly those: users 3 pages (3, 3, then the last 2 asked as 3), members of
/// `/Big` 3, 3, 1 and an empty page, of `/Small` 1 and an empty page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_capping_max_is_read_completely() {
    let kc = FakeKeycloak::start(FakeKeycloakConfig {
        max_cap: 3,
        ..FakeKeycloakConfig::default()
    })
    .await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    let people: Vec<String> = (0..8).map(|i| format!("p{i}@example.com")).collect();
    for p in &people {
        kc.add_user(p);
    }
    let big: Vec<&str> = people[..7].iter().map(String::as_str).collect();
    kc.add_group("/Big", &big);
    kc.add_group("/Small", &["p7@example.com"]);
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &config(&kc, &atl, false).replace("page_size: 2", "page_size: 5"),
    );
    let (code, _, stderr) = idsync(
        &s,
        &kc,
        &atl,
        &["snapshot", "--side", "source", "--out", "snap.json"],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let snap = s.read("snap.json");
    let v: serde_json::Value = serde_json::from_str(&snap).expect("a JSON snapshot");
    assert_eq!(v["users"].as_array().map(Vec::len), Some(8), "{snap}");
    let members = |name: &str| {
        v["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["name"] == name))
            .and_then(|g| g["members"].as_array())
            .map_or(0, Vec::len)
    };
    assert_eq!((members("/Big"), members("/Small")), (7, 1), "{snap}");
    assert_eq!(kc_reads(&kc), [3, 1, 1, 1, 0, 6]);
}
