//! Okta end to end: the fake Okta as the source, the fake Atlassian as the target.

use std::time::Duration;

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use crate::fakes::{token_traffic, Faults};
use crate::support::{repo, Scratch};

/// An Okta org: five people, one suspended, one deprovisioned, three groups.
fn seed_okta(okta: &FakeOkta) {
    for e in [
        "ana@example.com",
        "ben@example.com",
        "cy@example.com",
        "dee@example.com",
        "eve@example.com",
    ] {
        okta.add_user(OktaSeedUser::new(e));
    }
    okta.set_status("dee@example.com", "SUSPENDED");
    okta.set_status("eve@example.com", "DEPROVISIONED");
    okta.add_group(
        "Atlassian Users",
        "OKTA_GROUP",
        &[
            "ana@example.com",
            "ben@example.com",
            "cy@example.com",
            "dee@example.com",
            "eve@example.com",
        ],
    );
    okta.add_group(
        "Engineering",
        "OKTA_GROUP",
        &["ana@example.com", "ben@example.com"],
    );
    okta.add_group("Finance", "OKTA_GROUP", &["cy@example.com"]);
}

/// The organization as it was: Dee and Eve were provisioned earlier, from their Okta ids.
fn seed_atlassian(atl: &FakeAtlassian, okta: &FakeOkta) {
    for e in ["dee@example.com", "eve@example.com"] {
        let mut s = SeedUser::new(e);
        s.external_id = okta.user_id(e);
        atl.add_user(s);
    }
}

fn config(okta: &FakeOkta, atl: &FakeAtlassian, auth: &str) -> String {
    format!(
        r#"version: 1
sources:
  - name: okta
    type: okta
    base_url: {okta}
{auth}    groups: [Atlassian Users, Engineering]
    page_size: 2
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
users:
  require_groups: ["okta:Atlassian Users"]
  attributes: {{displayName: "{{firstName}} {{lastName}}"}}
groups:
  mappings: [{{from: "okta:Engineering", to: engineering}}]
cleanup: {{max_deactivations: 100%}}
"#,
        okta = okta.base_url,
        scim = atl.scim_base(),
    )
}

fn oauth_auth(okta: &FakeOkta) -> String {
    format!(
        "    oauth:\n      client_id: {}\n      private_key_file: {}\n",
        okta.config.client_id,
        repo().join("tests/fixtures/test-rsa-key.pem").display()
    )
}

async fn idsync(
    s: &Scratch,
    okta: &FakeOkta,
    atl: &FakeAtlassian,
    args: &[&str],
) -> (i32, String, String) {
    idsync_scaled(s, okta, atl, args, "0.01").await
}

/// `scale` shrinks every wait (`IDSYNC_RETRY_DELAY_SCALE`); 1 keeps rate-limit resets real.
async fn idsync_scaled(
    s: &Scratch,
    okta: &FakeOkta,
    atl: &FakeAtlassian,
    args: &[&str],
    scale: &str,
) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_SCIM_TOKEN", &atl.config.scim_token)
        .env("TEST_OKTA_TOKEN", &okta.config.api_token)
        .env("IDSYNC_RETRY_DELAY_SCALE", scale);
    crate::support::run_beside_fakes(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_plans_applies_and_converges_with_oauth() {
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_okta(&okta);
    seed_atlassian(&atl, &okta);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl, &oauth_auth(&okta)));

    let (code, plan, stderr) = idsync(&s, &okta, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ create_user ana@example.com",
        "+ create_user ben@example.com",
        "+ create_user cy@example.com",
        "deactivate_user dee@example.com",
        "because deactivated or suspended in `okta`",
        "deactivate_user eve@example.com",
        "+ add_members engineering",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert_eq!(
        okta.tokens_issued(),
        1,
        "one token per run, reused for every request"
    );
    assert_eq!(okta.user_groups_calls(), 0, "no per-user group calls");
    assert!(
        !okta
            .requests()
            .iter()
            .any(|r| r.path.contains("Finance") || r.query.contains("Finance")),
        "groups nobody configured are not read"
    );

    let (code, _, stderr) = idsync(&s, &okta, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, _) = idsync(&s, &okta, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}");

    // A rename in Okta (same id, new email) is an update, not a leaver and a joiner.
    let ana = okta.user_id("ana@example.com").unwrap();
    okta.set_email(&ana, "ana.silva@example.com");
    let (code, plan, _) = idsync(&s, &okta, &atl, &["plan"]).await;
    assert_eq!(code, 0);
    assert!(
        plan.contains("~ update_user ana.silva@example.com"),
        "{plan}"
    );
    assert!(
        !plan.contains("+ create_user") && !plan.contains("- deactivate_user"),
        "{plan}"
    );
    let (code, _, stderr) = idsync(&s, &okta, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        atl.group_members("engineering"),
        vec!["ana.silva@example.com", "ben@example.com"]
    );

    // A user removed from Okta altogether is deactivated too, as gone from every source.
    okta.delete_user("cy@example.com");
    let (code, plan, _) = idsync(&s, &okta, &atl, &["plan"]).await;
    assert_eq!(code, 0);
    assert!(
        plan.contains("- deactivate_user cy@example.com") && plan.contains("in no source"),
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_works_too_and_a_failed_page_deactivates_nobody() {
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_okta(&okta);
    seed_atlassian(&atl, &okta);
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &config(&okta, &atl, "    token: ${TEST_OKTA_TOKEN}\n"),
    );
    let (code, _, stderr) = idsync(&s, &okta, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(okta.requests().iter().all(|r| !r.path.contains("oauth2")));

    // The second page of users fails every time: the plan stops, nobody is deactivated.
    okta.set_faults(Faults {
        fail_path_contains: Some(("/api/v1/users?after=".into(), usize::MAX)),
        ..Faults::default()
    });
    let before = atl.mutations();
    let (code, stdout, stderr) = idsync(&s, &okta, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("source `okta` could not be read completely"),
        "{stderr}"
    );
    assert_eq!(atl.mutations(), before);

    // A page that keeps arriving cut short stops the plan too.
    okta.set_faults(Faults {
        truncate_next: 1000,
        ..Faults::default()
    });
    let (code, stdout, stderr) = idsync(&s, &okta, &atl, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    assert_eq!(atl.mutations(), before, "nobody deactivated");

    // A page cut short once is retried, not taken for a short one.
    okta.set_faults(Faults {
        truncate_next: 1,
        ..Faults::default()
    });
    let (code, plan, stderr) = idsync(&s, &okta, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_slows_the_run_but_loses_nothing() {
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    // Two identical orgs: one answers freely, the other allows 8 requests a second and throttles
    // the first request outright.
    let free = FakeOkta::start(FakeOktaConfig::default()).await;
    let tight = FakeOkta::start(FakeOktaConfig {
        rate_limit_per_minute: 8,
        rate_window: Duration::from_secs(1),
        ..FakeOktaConfig::default()
    })
    .await;
    seed_okta(&free);
    seed_okta(&tight);
    seed_atlassian(&atl, &free);
    tight.set_faults(Faults {
        throttle_next: 1,
        ..Faults::default()
    });
    let plan_of = |out: &str| {
        let v: serde_json::Value = serde_json::from_str(out).expect("a JSON plan");
        v["actions"].clone()
    };
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &config(&free, &atl, "    token: ${TEST_OKTA_TOKEN}\n"),
    );
    let (code, unthrottled, stderr) = idsync(&s, &free, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    s.write(
        "idsync.yaml",
        &config(&tight, &atl, "    token: ${TEST_OKTA_TOKEN}\n"),
    );
    let clock = std::time::Instant::now();
    let (code, throttled, stderr) =
        idsync_scaled(&s, &tight, &atl, &["plan", "--format", "json"], "1").await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        plan_of(&throttled),
        plan_of(&unthrottled),
        "the same plan, only slower"
    );
    assert!(
        clock.elapsed() >= Duration::from_secs(1),
        "the run waited for the rate window"
    );
    let requests = tight.requests();
    assert!(
        requests.len() > 8,
        "more requests than one window allows: {}",
        requests.len()
    );
    assert_eq!(
        tight.rate_limited(),
        0,
        "X-Rate-Limit-Remaining paced the requests before Okta had to refuse any"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_outlasting_its_tokens_renews_once_per_expiry() {
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_okta(&okta);
    // Ten more people, so that users and members take several pages of two.
    for i in 0..10 {
        let email = format!("extra{i:02}@example.com");
        okta.add_user(OktaSeedUser::new(&email));
        okta.add_member("Atlassian Users", &email);
    }
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl, &oauth_auth(&okta)));
    let (code, reference, stderr) = idsync(&s, &okta, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");

    // Tokens that last five requests; each renewal signs a new client assertion (Okta refuses
    // a `jti` it has seen).
    okta.set_token_ttl_requests(Some(5));
    let before = okta.requests().len();
    let (code, plan, stderr) = idsync(&s, &okta, &atl, &["plan", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan, reference, "the same read, across token expiries");
    token_traffic(&okta.requests()[before..], "/oauth2/v1/token").assert_one_renewal_per_expiry(5);
}

fn duplicate_config(okta: &FakeOkta, atl: &FakeAtlassian, groups: &str, require: &str) -> String {
    format!(
        r#"version: 1
sources:
  - name: okta
    type: okta
    base_url: {okta}
    token: ${{TEST_OKTA_TOKEN}}
{groups}    page_size: 2
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
users:
  require_groups: ["{require}"]
groups:
  mappings: [{{from: "okta:Finance", to: finance}}]
cleanup: {{max_deactivations: 100%}}
"#,
        okta = okta.base_url,
        scim = atl.scim_base(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_app_groups_sharing_a_name_are_told_apart_by_id() {
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_okta(&okta);
    // Imported from an app, beside the Okta group of the same name.
    let own = okta.group_id("Atlassian Users").unwrap();
    let imported = okta.add_group("Atlassian Users", "APP_GROUP", &["cy@example.com"]);
    let s = Scratch::new();

    // Nothing refers to the shared name: it plans.
    s.write(
        "idsync.yaml",
        &duplicate_config(&okta, &atl, "", "okta:Finance"),
    );
    let (code, plan, stderr) = idsync(&s, &okta, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(plan.contains("+ create_user cy@example.com"), "{plan}");

    // require_groups names it: an error with both ids.
    s.write(
        "idsync.yaml",
        &duplicate_config(&okta, &atl, "", "okta:Atlassian Users"),
    );
    let (code, _, stderr) = idsync(&s, &okta, &atl, &["plan"]).await;
    assert_eq!(code, 1);
    for expected in [
        "users.require_groups names \"okta:Atlassian Users\", but 2 groups of source `okta` have that name",
        &format!("id {own}"),
        &format!("id {imported}"),
        "SOURCE:id:ID",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in\n{stderr}");
    }

    // By id: only the app group's one member is in scope.
    s.write(
        "idsync.yaml",
        &duplicate_config(&okta, &atl, "", &format!("okta:id:{imported}")),
    );
    let (code, plan, stderr) = idsync(&s, &okta, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains("+ create_user cy@example.com") && !plan.contains("create_user ana@"),
        "{plan}"
    );

    // The connector's `groups:` by name is ambiguous; by id it reads the one group.
    s.write(
        "idsync.yaml",
        &duplicate_config(
            &okta,
            &atl,
            "    groups: [Atlassian Users, Finance]\n",
            "okta:Atlassian Users",
        ),
    );
    let (code, _, stderr) = idsync(&s, &okta, &atl, &["plan"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the configured group \"Atlassian Users\" names 2 groups in Okta")
            && stderr.contains(&own)
            && stderr.contains(&imported)
            && stderr.contains("APP_GROUP"),
        "{stderr}"
    );
    s.write(
        "idsync.yaml",
        &duplicate_config(
            &okta,
            &atl,
            &format!("    groups: [\"id:{own}\", Finance]\n"),
            "okta:Atlassian Users",
        ),
    );
    let (code, plan, stderr) = idsync(&s, &okta, &atl, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(plan.contains("+ create_user ana@example.com"), "{plan}");
}
