//! OneLogin end to end: the fake OneLogin as the source, the fake Atlassian as the target.

use std::time::Duration;

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use crate::fakes::onelogin::{FakeOneLogin, FakeOneLoginConfig, TOKEN_PATH, USER_STATUSES};
use crate::fakes::{token_traffic, Faults};
use crate::support::{run_beside_fakes, Scratch};

const PEOPLE: [&str; 5] = [
    "ana@example.com",
    "ben@example.com",
    "cy@example.com",
    "dee@example.com",
    "eve@example.com",
];

/// Two users per page, so that every listing takes several pages.
fn small_pages() -> FakeOneLoginConfig {
    FakeOneLoginConfig {
        users_page_max: 2,
        roles_page_max: 2,
        role_users_page_max: 2,
        groups_page_size: 2,
        ..FakeOneLoginConfig::default()
    }
}

/// Five people: Dee suspended, Eve locked (locked is not inactive by default). Everyone's one group
/// is "Atlassian Users" (Eve's is "Contractors"); access is modelled with roles.
fn seed(ol: &FakeOneLogin) {
    for e in PEOPLE {
        ol.add_user(e);
    }
    ol.set_status("dee@example.com", 2);
    ol.set_status("eve@example.com", 3);
    ol.update_user("ana@example.com", |u| {
        u.title = Some("Staff Engineer".into());
        u.custom_attributes.insert("division".into(), "R&D".into());
    });
    ol.add_group("Atlassian Users", &PEOPLE[..4]);
    ol.add_group("Contractors", &["eve@example.com"]);
    ol.add_group("Finance", &[]);
    ol.add_role("Engineering", &["ana@example.com", "ben@example.com"]);
    ol.add_role("Team Platform", &["cy@example.com"]);
    ol.add_role("Sales", &["dee@example.com"]);
}

fn config(ol: &FakeOneLogin, atl: &FakeAtlassian, extra: &str) -> String {
    format!(
        r#"version: 1
sources:
  - name: onelogin
    type: onelogin
    base_url: {ol}
    client_id: {client}
    client_secret: ${{TEST_OL_SECRET}}
    roles_as_groups: true
{extra}target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
users:
  require_groups: ["onelogin:Atlassian Users", "onelogin:Contractors"]
  attributes: {{displayName: "{{givenName}} {{familyName}}", title: "{{title}}", department: "{{division}}"}}
groups:
  mappings:
    - {{from: "onelogin:Engineering", to: engineering}}
    - {{from_regex: "^onelogin:Team (.+)$", to: "team-$1"}}
    - {{from: "onelogin:Contractors", to: contractors}}
cleanup: {{max_deactivations: 100%}}
"#,
        ol = ol.base_url,
        client = ol.config.client_id,
        scim = atl.scim_base(),
    )
}

async fn idsync_scaled(
    s: &Scratch,
    ol: &FakeOneLogin,
    atl: &FakeAtlassian,
    args: &[&str],
    scale: &str,
) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_SCIM_TOKEN", &atl.config.scim_token)
        .env("TEST_OL_SECRET", &ol.config.client_secret)
        .env("IDSYNC_RETRY_DELAY_SCALE", scale);
    run_beside_fakes(cmd).await
}

async fn idsync(
    s: &Scratch,
    ol: &FakeOneLogin,
    atl: &FakeAtlassian,
    args: &[&str],
) -> (i32, String, String) {
    idsync_scaled(s, ol, atl, args, "0.01").await
}

/// A OneLogin account and an organization where Dee was provisioned earlier, from her OneLogin id.
async fn setup(
    config_ol: FakeOneLoginConfig,
    extra: &str,
) -> (FakeOneLogin, FakeAtlassian, Scratch) {
    let ol = FakeOneLogin::start(config_ol).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&ol);
    let mut dee = SeedUser::new("dee@example.com");
    dee.external_id = ol.user_id("dee@example.com").map(|id| id.to_string());
    atl.add_user(dee);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&ol, &atl, extra));
    (ol, atl, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onelogin_plans_applies_and_converges_with_roles_as_groups() {
    let (ol, atl, s) = setup(small_pages(), "").await;

    let (code, plan, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ create_user ana@example.com",
        "+ create_user ben@example.com",
        "+ create_user cy@example.com",
        "+ create_user eve@example.com",
        "- deactivate_user dee@example.com",
        "because deactivated or suspended in `onelogin`",
        "+ add_members engineering",
        "+ add_members team-Platform",
        "+ add_members contractors",
        "Staff Engineer",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(
        !plan.contains("Sales"),
        "unmapped roles are not groups in Atlassian:\n{plan}"
    );
    assert_eq!(ol.token_requests(), 1, "one token for the whole run");
    let requests = ol.requests();
    assert!(
        requests
            .iter()
            .all(|r| !r.path.starts_with("/api/2/users/") && !r.path.contains("/api/1/users")),
        "no per-user calls: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/api/2/users" && r.query.contains("page=3")),
        "users came in several pages, fetched by number"
    );

    let (code, _, stderr) = idsync(&s, &ol, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    // Atlassian's userName is OneLogin's username.
    assert_eq!(atl.group_members("engineering"), vec!["ana", "ben"]);
    let (code, again, stderr) = idsync(&s, &ol, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}\n{stderr}");

    // Ben loses the Engineering role; Cy's group becomes Finance (no longer a required group);
    // Eve is suspended.
    ol.set_role_member("Engineering", "ben@example.com", false);
    ol.set_group("cy@example.com", Some("Finance"));
    ol.set_status("eve@example.com", 2);
    let (code, plan, _) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 0);
    for expected in [
        "- remove_members engineering",
        "- deactivate_user cy@example.com",
        "- deactivate_user eve@example.com",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    let (code, _, stderr) = idsync(&s, &ol, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, _) = idsync(&s, &ol, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged again:\n{again}");

    // Someone removed from OneLogin altogether is gone from every source.
    ol.remove_user("ana@example.com");
    let (code, plan, _) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 0);
    assert!(
        plan.contains("- deactivate_user ana@example.com") && plan.contains("in no source"),
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_mid_run_is_replaced() {
    let (ol, atl, s) = setup(small_pages(), "").await;
    // Fourteen more people, so that the users take several pages of two.
    for i in 0..14 {
        let email = format!("extra{i:02}@example.com");
        ol.add_user(&email);
        ol.set_group(&email, Some("Atlassian Users"));
    }
    let (code, reference, stderr) = idsync(&s, &ol, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(ol.token_requests(), 1, "one token for the whole run");

    // Tokens that last five requests (OneLogin hands the same one out again until it expires).
    ol.set_token_ttl_requests(Some(5));
    ol.revoke_tokens();
    let before = ol.requests().len();
    let (code, plan, stderr) = idsync(&s, &ol, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan, reference, "the same read, across token expiries");
    let traffic = token_traffic(&ol.requests()[before..], TOKEN_PATH);
    traffic.assert_one_renewal_per_expiry(5);
    assert_eq!(ol.tokens_issued(), 1 + traffic.token_requests);

    // Credentials that stop working are an error naming OneLogin, not a retry loop.
    let (code, _, stderr) = {
        let mut cmd = s.idsync(&["plan"]);
        cmd.env("TEST_SCIM_TOKEN", &atl.config.scim_token)
            .env("TEST_OL_SECRET", "not-the-secret")
            .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
        run_beside_fakes(cmd).await
    };
    assert_eq!(code, 1);
    assert!(
        stderr.contains("OneLogin token endpoint") && stderr.contains("401"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_counts_the_cursors_are_followed() {
    let (counted, atl, s) = setup(small_pages(), "").await;
    let (code, with_counts, stderr) =
        idsync(&s, &counted, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (ol, _, _) = setup(
        FakeOneLoginConfig {
            count_headers: false,
            ..small_pages()
        },
        "",
    )
    .await;
    s.write("idsync.yaml", &config(&ol, &atl, ""));
    let (code, by_cursor, stderr) = idsync(&s, &ol, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let actions =
        |plan: &str| serde_json::from_str::<serde_json::Value>(plan).unwrap()["actions"].clone();
    assert_eq!(actions(&by_cursor), actions(&with_counts), "the same plan");
    let requests = ol.requests();
    assert!(
        requests.iter().any(|r| r.query.starts_with("cursor="))
            && !requests.iter().any(|r| r.query.contains("page=")),
        "pages followed by After-Cursor: {requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_deactivates_nobody() {
    let (ol, atl, s) = setup(small_pages(), "").await;
    let (code, _, stderr) = idsync(&s, &ol, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let before = atl.mutations();

    // A later page of users, then a role's members, fail every time: the plan stops.
    for path in [
        "/api/2/users?limit=50&page=3",
        "/api/2/roles?limit=50&page=2",
    ] {
        ol.set_faults(Faults {
            fail_path_contains: Some((path.into(), usize::MAX)),
            ..Faults::default()
        });
        let (code, stdout, stderr) = idsync(&s, &ol, &atl, &["apply", "--auto-approve"]).await;
        assert_eq!(code, 1, "{stdout}");
        assert!(
            stderr.contains("source `onelogin` could not be read completely"),
            "{stderr}"
        );
        assert_eq!(atl.mutations(), before, "nobody deactivated");
    }

    // Throttling and a reset connection are retried.
    ol.set_faults(Faults {
        throttle_next: 2,
        reset_next: 1,
        ..Faults::default()
    });
    let (code, plan, stderr) = idsync(&s, &ol, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_budget_is_respected() {
    let (ol, atl, s) = setup(small_pages(), "").await;
    // After the first pages (users, groups, roles: 3 calls), five users at two a page need 2 more,
    // three groups 1 more, three roles 1 more and a page of members each: 7.
    ol.set_rate_remaining(9);
    let (code, stdout, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("OneLogin's API budget is too low for this read")
            && stderr.contains("7 more calls")
            && stderr.contains("6 of the hourly 5000 remain")
            && stderr.contains("min"),
        "{stderr}"
    );
    assert!(
        !ol.requests().iter().any(|r| r.query.contains("page=")),
        "refused before spending more"
    );
    assert_eq!(ol.rate_limited(), 0, "OneLogin never had to refuse a call");

    // A reserve for other integrations counts against the read too.
    ol.set_rate_remaining(5000);
    s.write(
        "idsync.yaml",
        &config(&ol, &atl, "    budget_reserve: 4992\n"),
    );
    let (code, _, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("kept back by `budget_reserve`"), "{stderr}");
    s.write(
        "idsync.yaml",
        &config(&ol, &atl, "    budget_reserve: 100\n"),
    );
    let (code, _, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_about_to_reset_is_waited_for() {
    let (ol, atl, s) = setup(
        FakeOneLoginConfig {
            rate_window: Duration::from_millis(400),
            ..small_pages()
        },
        "",
    )
    .await;
    ol.set_rate_remaining(5);
    // Real waits (scale 1): the window resets within a second, so the read waits rather than fails.
    let (code, plan, stderr) = idsync_scaled(&s, &ol, &atl, &["plan"], "1").await;
    assert_eq!(code, 0, "{stderr}");
    assert!(plan.contains("+ create_user ana@example.com"), "{plan}");
    assert_eq!(
        ol.rate_limited(),
        0,
        "waited for the reset instead of running into 429s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_idps_merge_with_precedence_and_converge() {
    // Okta comes first: for Ana, who is in both, Okta's names win and the difference is a warning.
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    okta.add_user(OktaSeedUser::new("ana@example.com").name("Ana", "Silva"));
    okta.add_user(OktaSeedUser::new("ben@example.com"));
    okta.add_group(
        "Engineering",
        "OKTA_GROUP",
        &["ana@example.com", "ben@example.com"],
    );
    let ol = FakeOneLogin::start(FakeOneLoginConfig::default()).await;
    ol.add_user("ana@example.com");
    ol.update_user("ana@example.com", |u| {
        u.lastname = Some("Silva-Costa".into())
    });
    ol.add_user("zoe@example.com");
    ol.add_role("Engineering", &["zoe@example.com"]);
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - {{name: okta, type: okta, base_url: "{okta}", token: "${{TEST_OKTA_TOKEN}}"}}
  - {{name: onelogin, type: onelogin, base_url: "{ol}", client_id: {client}, client_secret: "${{TEST_OL_SECRET}}", roles_as_groups: true}}
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
users:
  attributes: {{displayName: "{{givenName}} {{familyName}}"}}
groups:
  mappings:
    - {{from: "okta:Engineering", to: engineering}}
    - {{from: "onelogin:Engineering", to: engineering}}
cleanup: {{max_deactivations: 100%}}
"#,
            okta = okta.base_url,
            ol = ol.base_url,
            client = ol.config.client_id,
            scim = atl.scim_base(),
        ),
    );
    let run = |args: &'static [&'static str]| {
        let mut cmd = s.idsync(args);
        cmd.env("TEST_SCIM_TOKEN", &atl.config.scim_token)
            .env("TEST_OKTA_TOKEN", &okta.config.api_token)
            .env("TEST_OL_SECRET", &ol.config.client_secret)
            .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
        run_beside_fakes(cmd)
    };
    let (code, plan, stderr) = run(&["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(plan.contains("Ana Silva"), "{plan}");
    assert!(!plan.contains("Silva-Costa\""), "okta's name wins:\n{plan}");
    assert!(
        plan.contains("familyName differs between sources `okta` and `onelogin`; using `okta`"),
        "the disagreement is reported:\n{plan}"
    );
    let (code, _, stderr) = run(&["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        atl.group_members("engineering"),
        vec!["ana@example.com", "ben@example.com", "zoe"]
    );
    let (code, again, _) = run(&["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}");

    // Zoe leaves OneLogin: she is in no source any more. Ana leaves Okta but OneLogin still has her.
    ol.remove_user("zoe@example.com");
    okta.delete_user("ana@example.com");
    let (code, plan, stderr) = run(&["plan"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
    assert!(plan.contains("- deactivate_user zoe@example.com"), "{plan}");
    assert!(!plan.contains("deactivate_user ana@example.com"), "{plan}");
    assert!(
        plan.contains("~ familyName: \"Silva\" -> \"Silva-Costa\"  (from `onelogin`)"),
        "OneLogin's fields take over: {plan}"
    );
}

/// OneLogin's user statuses, as the default `inactive_statuses: [2]` reads them: only a suspended
/// user is deactivated in Atlassian; the others are people who still belong (an account not yet
/// activated, or one waiting on its owner: a lock that lifts by itself, a password to renew or set,
/// security questions to answer). Locked counts as inactive only when configured so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_suspended_users_are_inactive_by_default() {
    let ol = FakeOneLogin::start(FakeOneLoginConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    let people: Vec<(i64, String)> = USER_STATUSES
        .iter()
        .map(|s| (*s, format!("status{s}@example.com")))
        .collect();
    for (status, email) in &people {
        ol.add_user(email);
        ol.set_status(email, *status);
        let mut seeded = SeedUser::new(email);
        seeded.external_id = ol.user_id(email).map(|id| id.to_string());
        atl.add_user(seeded);
    }
    let emails: Vec<&str> = people.iter().map(|(_, e)| e.as_str()).collect();
    ol.add_group("Atlassian Users", &emails);
    let s = Scratch::new();
    let deactivated = |plan: &str| -> Vec<String> {
        plan.lines()
            .filter_map(|l| l.trim().strip_prefix("- deactivate_user "))
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
            .collect()
    };

    s.write("idsync.yaml", &config(&ol, &atl, ""));
    let (code, plan, stderr) = idsync(&s, &ol, &atl, &["plan", "--allow-mass-update"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(deactivated(&plan), vec!["status2@example.com"], "{plan}");

    s.write(
        "idsync.yaml",
        &config(&ol, &atl, "    inactive_statuses: [2, 3]\n"),
    );
    let (code, plan, stderr) = idsync(&s, &ol, &atl, &["plan", "--allow-mass-update"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        deactivated(&plan),
        vec!["status2@example.com", "status3@example.com"],
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_without_email_are_kept_and_names_differing_in_case_are_caught() {
    let (ol, atl, s) = setup(small_pages(), "").await;
    // Kim was provisioned, then lost her email in OneLogin (it sends null).
    let kim = ol.add_user("kim@example.com");
    ol.set_group("kim@example.com", Some("Atlassian Users"));
    ol.set_role_member("Engineering", "kim@example.com", true);
    let mut provisioned = SeedUser::new("kim@example.com");
    provisioned.external_id = Some(kim.to_string());
    atl.add_user(provisioned);
    ol.update_user("kim@example.com", |u| u.email = String::new());

    let (code, plan, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        &format!("source `onelogin`: 1 user(s) not synced (no email): kim (id {kim})"),
        "= kim@example.com  source `onelogin` left out kim",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(!plan.contains("deactivate_user kim@"), "{plan}");
    assert!(
        !plan.contains("group membership(s) not synced"),
        "Kim is named once, as a user, not again as a role member:\n{plan}"
    );

    // A group and a role whose names differ only in case, mapped to two Atlassian groups that
    // differ only in case: Atlassian would see one group. Caught at plan time.
    ol.add_group("engineering", &[]);
    ol.set_group("ben@example.com", Some("engineering"));
    let text = s.read("idsync.yaml").replace(
        "    - {from: \"onelogin:Contractors\", to: contractors}\n",
        "    - {from: \"onelogin:Contractors\", to: contractors}\n    - {from: \"onelogin:engineering\", to: Engineering}\n",
    );
    s.write("idsync.yaml", &text);
    let (code, plan, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 1, "{plan}");
    assert!(
        plan.contains("BLOCKED: the Atlassian groups `Engineering` (from groups.mappings[3] (from \"onelogin:engineering\")) and `engineering` (from groups.mappings[0] (from \"onelogin:Engineering\")) differ only in case"),
        "{plan}"
    );
    assert!(stderr.contains("the plan cannot be applied"), "{stderr}");

    // A group by id in `groups:`.
    let finance = ol.state().group_id("Finance").unwrap();
    let text = config(
        &ol,
        &atl,
        &format!("    groups: [\"Atlassian Users\", Contractors, \"id:{finance}\"]\n"),
    );
    s.write("idsync.yaml", &text);
    let (code, _, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    // A role by id: `id:role:ID` (group and role ids are both numbers in OneLogin).
    let eng = ol.state().role_id("Engineering").unwrap();
    let text = config(
        &ol,
        &atl,
        &format!("    groups: [\"Atlassian Users\", Contractors, \"id:role:{eng}\"]\n"),
    )
    .replace(
        "from: \"onelogin:Engineering\"",
        &format!("from: \"onelogin:id:role:{eng}\""),
    );
    s.write("idsync.yaml", &text);
    let (code, plan, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains("— member of onelogin:Engineering via groups.mappings[0]"),
        "{plan}"
    );
    let text = config(
        &ol,
        &atl,
        "    groups: [\"Atlassian Users\", Contractors, \"id:999999\"]\n",
    );
    s.write("idsync.yaml", &text);
    let (code, _, stderr) = idsync(&s, &ol, &atl, &["plan"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("\"id:999999\" is neither a group nor a role"),
        "{stderr}"
    );
}
