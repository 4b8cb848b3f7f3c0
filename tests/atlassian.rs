//! The Atlassian and SCIM targets against the stateful fake Atlassian: convergence, linking,
//! reactivation, faults, and credentials that never show.

use std::time::Duration;

use crate::fakes::atlassian::{
    FakeAtlassian, FakeConfig, SeedUser, UnknownRoleIds, ValueListRemoval,
};
use crate::fakes::Faults;
use crate::support::Scratch;

const IDP: &str = r"users:
  - {id: 00u1, email: alice@example.com, givenName: Alice, familyName: Doe, attributes: {title: Staff Engineer}}
  - {id: 00u2, email: bob.smith@example.com, givenName: Bob, familyName: Smith}
  - {id: 00u3, email: carol@example.com, givenName: Carol, familyName: Jones}
  - {id: 00u4, email: dan@example.com, givenName: Dan, familyName: Brown}
  - {id: 00u5, email: erin@example.com, givenName: Erin, familyName: Green}
groups:
  - {name: Engineering, members: [alice@example.com, bob.smith@example.com, carol@example.com]}
  - {name: atl-design, members: [dan@example.com, erin@example.com]}
";

fn config(fake: &FakeAtlassian, admin: bool) -> String {
    let admin = if admin {
        format!(
            "  admin:\n    org_id: {}\n    token: ${{TEST_ORG_TOKEN}}\n    base_url: {}\n",
            fake.org_id(),
            fake.base_url
        )
    } else {
        String::new()
    };
    format!(
        r#"version: 1
sources: [{{name: okta, type: file, path: idp.yaml}}]
target:
  type: atlassian
  scim:
    base_url: {scim}
    token: ${{TEST_SCIM_TOKEN}}
{admin}  http: {{max_attempts: 8, max_concurrency: 4, timeout_secs: 5}}
users:
  attributes:
    displayName: "{{givenName}} {{familyName}}"
    title: "{{title}}"
groups:
  mappings:
    - {{from: "okta:Engineering", to: engineering}}
    - {{from_regex: "^okta:atl-(.+)$", to: "$1"}}
  default_groups: [all-staff]
cleanup:
  grace_days: 30
  protect: [breakglass@example.com]
  revoke_api_tokens: {revoke}
  max_deactivations: 50%
limits:
  membership_batch: 2
"#,
        scim = fake.scim_base(),
        revoke = !admin.is_empty(),
    )
}

/// A fake organization that differs from the IdP in every way a plan can show.
fn seed(fake: &FakeAtlassian) {
    let mut alice = SeedUser::new("alice@example.com");
    alice.external_id = Some("00u1".into());
    alice.given_name = Some("Alice".into());
    alice.family_name = Some("Doe".into());
    alice.display_name = Some("Alice Doe".into());
    alice.title = Some("Engineer".into());
    fake.add_user(alice);
    let mut bob = SeedUser::new("bob@example.com");
    bob.external_id = Some("00u2".into());
    bob.given_name = Some("Bob".into());
    bob.family_name = Some("Smith".into());
    bob.display_name = Some("Bob Smith".into());
    fake.add_user(bob);
    let mut erin = SeedUser::new("erin@example.com");
    erin.external_id = Some("00u5".into());
    erin.given_name = Some("Erin".into());
    erin.family_name = Some("Green".into());
    erin.display_name = Some("Erin Green".into());
    erin.active = false;
    fake.add_user(erin);
    let mut leaver = SeedUser::new("leaver@example.com");
    leaver.display_name = Some("Old Leaver".into());
    leaver.last_active = Some("2025-01-01".into());
    fake.add_user(leaver);
    let mut glass = SeedUser::new("breakglass@example.com");
    glass.display_name = Some("Break Glass".into());
    fake.add_user(glass);
    fake.add_org_account("dan@example.com", "dan", Some("2026-11-01"));
    fake.add_group("engineering", &["alice@example.com", "leaver@example.com"]);
    fake.add_api_token("leaver@example.com", "ci");
}

/// Runs idsync in `dir` with the fake's tokens in the environment, off the async runtime that
/// serves the fake.
async fn idsync(s: &Scratch, fake: &FakeAtlassian, args: &[&str]) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_SCIM_TOKEN", &fake.config.scim_token)
        .env("TEST_ORG_TOKEN", &fake.config.org_token)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
    crate::support::run_beside_fakes(cmd).await
}

fn scratch(fake: &FakeAtlassian, admin: bool) -> Scratch {
    let s = Scratch::new();
    s.write("idp.yaml", IDP)
        .write("idsync.yaml", &config(fake, admin));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_plan_converges_with_linking_and_reactivation() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    let s = scratch(&fake, true);

    let (code, plan, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ create_user carol@example.com",
        "+ link_user dan@example.com",
        "~ update_user bob.smith@example.com",
        "~ update_user alice@example.com",
        "+ reactivate_user erin@example.com",
        "- deactivate_user leaver@example.com",
        "+ create_group design",
        "+ add_members all-staff (batch 1/3, 2 member(s))",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(plan.contains("breakglass@example.com  protected"), "{plan}");

    let (code, _, stderr) = idsync(
        &s,
        &fake,
        &[
            "apply",
            "plan.json",
            "--auto-approve",
            "--report",
            "report.json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, stderr) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged?\n{again}\n{stderr}");

    // What the organization looks like now.
    assert_eq!(fake.deletes(), 0, "users are deactivated, never deleted");
    assert_eq!(
        fake.group_members("engineering"),
        vec![
            "alice@example.com",
            "bob.smith@example.com",
            "carol@example.com",
            "leaver@example.com"
        ],
        "the leaver keeps the membership (deactivated, not removed)"
    );
    assert_eq!(
        fake.group_members("design"),
        vec!["dan@example.com", "erin@example.com"]
    );
    let users = fake.users();
    let find = |name: &str| {
        users
            .iter()
            .find(|u| u["userName"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find("leaver@example.com")["active"], false);
    assert_eq!(find("erin@example.com")["active"], true);
    assert_eq!(
        find("bob.smith@example.com")["externalId"],
        "00u2",
        "renamed in place, same SCIM user"
    );
    assert_eq!(find("alice@example.com")["title"], "Staff Engineer");
    assert_eq!(
        fake.api_tokens("leaver@example.com"),
        0,
        "the leaver's API tokens were revoked"
    );
    assert!(
        find("dan@example.com")["urn:scim:schemas:extension:atlassian-external:1.0"]
            ["atlassianAccountId"]
            .as_str()
            .is_some_and(|a| fake.account_id("dan@example.com").as_deref() == Some(a)),
        "dan's existing account was linked, not duplicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_page_aborts_the_plan_and_changes_nothing() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    for i in 0..250 {
        fake.add_user(SeedUser::new(&format!("user{i:03}@example.com")));
    }
    fake.set_faults(Faults {
        fail_path_contains: Some(("startIndex=101".into(), usize::MAX)),
        ..Faults::default()
    });
    let s = scratch(&fake, false);
    let before = fake.mutations();
    let (code, stdout, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.is_empty(), "no plan is shown: {stdout}");
    assert!(
        stderr.contains("could not be read completely; nothing was planned"),
        "{stderr}"
    );
    assert!(
        stderr.contains("startIndex=101") && stderr.contains("503"),
        "names the page and status: {stderr}"
    );
    assert_eq!(
        fake.mutations(),
        before,
        "nothing was changed, nobody deactivated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_errors_and_resets_during_apply_do_every_action_exactly_once() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    let s = scratch(&fake, true);
    let (code, _, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    fake.set_faults(Faults {
        throttle_next: 12,
        retry_after_secs: 1,
        error_every: Some(5),
        reset_next: 2,
        fail_after_mutation: 2,
        ..Faults::default()
    });
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    fake.set_faults(Faults::default());
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{again}");
    let users = fake.users();
    for name in ["carol@example.com", "dan@example.com"] {
        assert_eq!(
            users.iter().filter(|u| u["userName"] == name).count(),
            1,
            "{name} exists exactly once"
        );
    }
    assert_eq!(
        fake.groups()
            .iter()
            .filter(|g| g["displayName"] == "design")
            .count(),
        1
    );
    let throttled = fake.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(throttled, 12, "the storm happened and was ridden out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_output_reports_plans_or_errors() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    let s = scratch(&fake, true);
    let mut seen = String::new();
    for args in [
        &["-v", "plan", "--out", "plan.json"][..],
        &["-v", "plan", "--format", "json"],
        &["-v", "plan", "--format", "markdown"],
        &[
            "-v",
            "apply",
            "plan.json",
            "--auto-approve",
            "--report",
            "report.json",
        ],
        &["-v", "snapshot", "--side", "target"],
    ] {
        let (_, out, err) = idsync(&s, &fake, args).await;
        seen.push_str(&out);
        seen.push_str(&err);
    }
    seen.push_str(&s.read("plan.json"));
    seen.push_str(&s.read("report.json"));
    // A wrong token: the 401 is reported, the token is not.
    let mut cmd_env_wrong = s.idsync(&["plan"]);
    cmd_env_wrong
        .env("TEST_SCIM_TOKEN", "wrong-but-secret-value")
        .env("TEST_ORG_TOKEN", &fake.config.org_token)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
    let (code, _, err) = crate::support::run_beside_fakes(cmd_env_wrong).await;
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    seen.push_str(&err);
    for secret in [
        &fake.config.scim_token,
        &fake.config.org_token,
        &"wrong-but-secret-value".to_string(),
    ] {
        assert!(
            !seen.contains(secret.as_str()),
            "a credential leaked: {secret}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generic_scim_target_converges_with_204_replies() {
    let fake = FakeAtlassian::start(FakeConfig {
        patch_returns_204: true,
        latency: Duration::from_millis(1),
        ..FakeConfig::default()
    })
    .await;
    seed(&fake);
    let s = Scratch::new();
    s.write("idp.yaml", IDP).write(
        "idsync.yaml",
        &format!(
            "version: 1\nsources: [{{name: okta, type: file, path: idp.yaml}}]\ntarget: {{type: scim, base_url: \"{}\", token: \"${{TEST_SCIM_TOKEN}}\"}}\ngroups:\n  mappings: [{{from_regex: \"^okta:(.+)$\", to: \"$1\"}}]\ncleanup: {{max_deactivations: 100%}}\n",
            fake.scim_base()
        ),
    );
    let (code, plan, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{again}");
    assert_eq!(fake.deletes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_half_way_is_finished_by_applying_the_same_plan_again() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    let s = scratch(&fake, true);
    let (code, _, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let posts = |fake: &FakeAtlassian| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/Users") && r.status == 201)
            .count()
    };

    // Membership changes hang, so the run is killed after the users were created and linked.
    fake.set_faults(Faults {
        slow: Some(("/Groups/".into(), Duration::from_secs(60))),
        ..Faults::default()
    });
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("idsync"));
    cmd.current_dir(s.dir.path())
        .args(["apply", "plan.json", "--auto-approve"])
        .env("TEST_SCIM_TOKEN", &fake.config.scim_token)
        .env("TEST_ORG_TOKEN", &fake.config.org_token)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !fake
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.path.contains("/Groups/"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never reached the memberships"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(
        posts(&fake),
        2,
        "carol was created and dan linked before the crash"
    );
    assert!(s.path("plan.json.journal").exists());

    fake.set_faults(Faults::default());
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Resuming:"), "{stderr}");
    assert_eq!(posts(&fake), 2, "what was done is not redone");
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged after the resumed apply:\n{again}");
    // The same plan once more: it is complete, nothing is sent.
    let before = fake.mutations();
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0);
    assert!(stderr.contains("already applied completely"), "{stderr}");
    assert_eq!(fake.mutations(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_outside_the_verified_domains_are_not_created() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    let s = scratch(&fake, true);
    s.write(
        "idp.yaml",
        &IDP.replace(
            "groups:\n",
            "  - {id: 00u9, email: zed@partner.org, givenName: Zed, familyName: Ext}\ngroups:\n",
        ),
    );
    let (code, plan, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains("zed@partner.org  the email's domain is not verified in the organization"),
        "{plan}"
    );
    assert!(
        plan.contains("1 user(s) are not created because their email domain is not verified"),
        "{plan}"
    );
    assert!(fake
        .users()
        .iter()
        .all(|u| u["userName"] != "zed@partner.org"));
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{again}");
}

/// The display name of the SCIM user with this userName.
fn display_name(fake: &FakeAtlassian, user_name: &str) -> Option<String> {
    fake.users()
        .iter()
        .find(|u| u["userName"] == user_name)
        .and_then(|u| u["displayName"].as_str().map(String::from))
}

fn is_active(fake: &FakeAtlassian, user_name: &str) -> bool {
    fake.users()
        .iter()
        .find(|u| u["userName"] == user_name)
        .is_some_and(|u| u["active"] == true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_never_changed_whether_unknown_role_ids_are_ignored_or_refused() {
    for mode in [UnknownRoleIds::Ignore, UnknownRoleIds::Refuse] {
        let fake = FakeAtlassian::start(FakeConfig {
            unknown_role_ids: mode,
            ..FakeConfig::default()
        })
        .await;
        seed(&fake);
        // An org admin no source knows (would be deactivated, tokens revoked) and a site admin the
        // IdP knows under another name and puts in a group (would be updated and added).
        let mut root = SeedUser::new("root@example.com");
        root.display_name = Some("Org Root".into());
        fake.add_user(root);
        fake.set_admin("root@example.com", "org-admin");
        fake.add_api_token("root@example.com", "automation");
        let mut site = SeedUser::new("site@example.com");
        site.display_name = Some("Old Site Name".into());
        fake.add_user(site);
        fake.set_admin("site@example.com", "site-admin");
        let s = scratch(&fake, true);
        s.write(
            "idp.yaml",
            &IDP.replace(
                "groups:\n",
                "  - {id: 00u8, email: site@example.com, givenName: Site, familyName: Admin}\ngroups:\n",
            )
            .replace("carol@example.com]", "carol@example.com, site@example.com]"),
        );

        let (code, plan, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
        assert_eq!(code, 0, "{mode:?}: {plan}\n{stderr}");
        assert!(
            plan.contains("root@example.com  an organization or site admin (cleanup.skip_admins)")
                && plan.contains(
                    "site@example.com  an organization or site admin (cleanup.skip_admins)"
                ),
            "{mode:?}: {plan}"
        );
        assert!(
            !plan.contains("found no organization or site admin"),
            "{plan}"
        );
        assert!(is_active(&fake, "root@example.com"), "{mode:?}");
        assert_eq!(fake.api_tokens("root@example.com"), 1, "{mode:?}");
        assert_eq!(
            display_name(&fake, "site@example.com").as_deref(),
            Some("Old Site Name"),
            "{mode:?}"
        );
        assert!(
            !fake
                .group_members("engineering")
                .contains(&"site@example.com".to_string()),
            "{mode:?}"
        );
        // Every search asked for the documented page size (the search's default, 50).
        let limits = fake.state().search_limits.clone();
        assert!(
            !limits.is_empty() && limits.iter().all(|l| *l == Some(50)),
            "{limits:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_admins_that_finds_no_admin_is_a_warning() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    let s = scratch(&fake, true);
    let (code, plan, stderr) = idsync(&s, &fake, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains(
            "cleanup.skip_admins found no organization or site admin in organization org-1"
        ),
        "{plan}"
    );
    fake.set_admin("alice@example.com", "org-admin");
    let (code, plan, _) = idsync(&s, &fake, &["plan"]).await;
    assert_eq!(code, 0);
    assert!(
        !plan.contains("found no organization or site admin"),
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_revocation_is_reported_and_done_by_the_next_apply() {
    let fake = FakeAtlassian::start(FakeConfig {
        scoped_org_key: true,
        ..FakeConfig::default()
    })
    .await;
    seed(&fake);
    let s = scratch(&fake, true);
    let (code, plan, stderr) = idsync(
        &s,
        &fake,
        &["apply", "--auto-approve", "--report", "report.json"],
    )
    .await;
    assert_eq!(
        code, 1,
        "a failed revocation fails the run:\n{plan}\n{stderr}"
    );
    assert!(
        plan.contains("- revoke_api_tokens leaver@example.com (1 token(s))"),
        "{plan}"
    );
    assert!(
        stderr.contains("revoke_api_tokens leaver@example.com failed")
            && stderr.contains("HTTP 403")
            && stderr.contains("needs a key created without scopes"),
        "{stderr}"
    );
    assert!(!is_active(&fake, "leaver@example.com"), "still deactivated");
    assert_eq!(fake.api_tokens("leaver@example.com"), 1);
    let report: serde_json::Value = serde_json::from_str(&s.read("report.json")).unwrap();
    assert_eq!(report["status"], "PARTIAL");
    assert_eq!(report["counts"]["deactivated"], 1);
    assert_eq!(report["counts"]["tokens_revoked"], 0);
    let failed: Vec<&serde_json::Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["action"], "revoke_api_tokens");
    assert!(failed[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("403") && e.contains("still work")));

    // The key is replaced by one without scopes: the next plan revisits the deactivated user. A
    // saved plan is bound to the user as planned: reactivated meanwhile, the revocation is refused.
    fake.state().config.scoped_org_key = false;
    let (code, _, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let set_active = |active: bool| {
        let mut st = fake.state();
        let u = st
            .users
            .iter_mut()
            .find(|u| u.user_name == "leaver@example.com")
            .unwrap();
        u.active = active;
    };
    set_active(true);
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("changed since"), "{stderr}");
    assert_eq!(fake.api_tokens("leaver@example.com"), 1);
    set_active(false);
    let (code, plan, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
    assert!(
        plan.contains("- revoke_api_tokens leaver@example.com (1 token(s))")
            && plan.contains("still holds 1 API token(s)"),
        "{plan}"
    );
    assert_eq!(fake.api_tokens("leaver@example.com"), 0);
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_removal_never_empties_a_group() {
    // (member_removal, what the server does with the value-list form, whether the apply succeeds)
    for (form, server, ok) in [
        (None, ValueListRemoval::RemoveAll, true),
        (None, ValueListRemoval::Refuse, true),
        (Some("value_list"), ValueListRemoval::Honour, true),
        (Some("value_list"), ValueListRemoval::Refuse, false),
        (Some("value_list"), ValueListRemoval::RemoveAll, false),
    ] {
        let fake = FakeAtlassian::start(FakeConfig {
            value_list_removal: server,
            ..FakeConfig::default()
        })
        .await;
        seed(&fake);
        let s = scratch(&fake, true);
        // Alice leaves Engineering; the deactivated leaver keeps the membership.
        s.write(
            "idp.yaml",
            &IDP.replace(
                "[alice@example.com, bob.smith@example.com, carol@example.com]",
                "[bob.smith@example.com, carol@example.com]",
            ),
        );
        if let Some(form) = form {
            s.write(
                "idsync.yaml",
                &s.read("idsync.yaml").replace(
                    "    token: ${TEST_SCIM_TOKEN}\n",
                    &format!("    token: ${{TEST_SCIM_TOKEN}}\n    member_removal: {form}\n"),
                ),
            );
        }
        let case = format!("{form:?} against {server:?}");
        let (code, plan, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
        assert!(
            plan.contains("- remove_members engineering (batch 1/1, 1 member(s))"),
            "{case}: {plan}"
        );
        let members = fake.group_members("engineering");
        if ok {
            assert_eq!(code, 0, "{case}: {stderr}");
            assert_eq!(
                members,
                vec![
                    "bob.smith@example.com",
                    "carol@example.com",
                    "leaver@example.com"
                ],
                "{case}"
            );
            continue;
        }
        assert_eq!(code, 1, "{case}: {stderr}");
        assert!(
            stderr.contains("remove_members engineering failed"),
            "{case}: {stderr}"
        );
        if server == ValueListRemoval::Refuse {
            assert!(
                stderr.contains("HTTP 400 (invalidPath: remove of \"members\" takes a filter path"),
                "{case}: {stderr}"
            );
            assert!(members.contains(&"alice@example.com".to_string()), "{case}");
        } else {
            // The server emptied the group: the re-read catches it and names the loss.
            assert!(members.is_empty(), "{case}: {members:?}");
            assert!(
                stderr.contains("group engineering lost 3 member(s) idsync did not remove (bob.smith@example.com, carol@example.com, leaver@example.com)")
                    && stderr.contains("remove every member"),
                "{case}: {stderr}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_meets_409_adopts_the_user_and_finishes_its_fields() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    // Carol's SCIM user holds her userName under an old email and no externalId, so the plan
    // cannot match her and creates her; Atlassian answers 409. Active recently: not deactivated.
    let mut old = SeedUser::new("carol.jones@example.com");
    old.user_name = Some("carol@example.com".into());
    old.display_name = Some("C. Jones".into());
    old.last_active = Some("2026-11-20".into());
    fake.add_user(old);
    let s = scratch(&fake, true);
    let (code, plan, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
    assert!(plan.contains("+ create_user carol@example.com"), "{plan}");
    let carol = fake.user("carol@example.com").expect("carol");
    assert_eq!(carol["emails"][0]["value"], "carol@example.com");
    assert_eq!(carol["externalId"], "00u3");
    assert_eq!(carol["displayName"], "Carol Jones");
    assert_eq!(carol["name"]["givenName"], "Carol");
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "finished in the same apply:\n{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_another_directory_owns_is_reported_not_linked() {
    let fake = FakeAtlassian::start(FakeConfig {
        other_directories: vec![("dir-2".into(), "Entra ID".into())],
        ..FakeConfig::default()
    })
    .await;
    seed(&fake);
    fake.set_directory("dan@example.com", "dir-2");
    let s = scratch(&fake, true);
    let (code, plan, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
    assert!(!plan.contains("link_user dan@example.com"), "{plan}");
    assert!(
        plan.contains(
            "dan@example.com: the account is owned by the identity-provider directory \"Entra ID\""
        ),
        "{plan}"
    );
    assert!(fake.user("dan@example.com").is_none());
    assert_eq!(fake.group_members("design"), vec!["erin@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_only_last_active_counts_to_the_end_of_the_day_plus_the_lag() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    // Planned at 2026-11-22T00:00Z with grace_days 30. Read as midnight, both would be more than
    // 30 days ago; read as the end of the day plus Atlassian's 24 hours of lag, only the first is.
    for (email, date) in [
        ("old@example.com", "2026-10-20"),
        ("recent@example.com", "2026-10-22"),
    ] {
        let mut u = SeedUser::new(email);
        u.last_active = Some(date.into());
        fake.add_user(u);
    }
    let s = scratch(&fake, true);
    let (code, plan, stderr) = idsync(&s, &fake, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains("- deactivate_user old@example.com")
            && plan.contains("last active 2026-10-20, more than 30 days ago"),
        "{plan}"
    );
    assert!(
        plan.contains("recent@example.com  last active 2026-10-22, within cleanup.grace_days (30)"),
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_errors_say_what_atlassian_said() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    let s = scratch(&fake, true);
    s.write(
        "idsync.yaml",
        &s.read("idsync.yaml")
            .replace(&format!("org_id: {}", fake.org_id()), "org_id: org-typo"),
    );
    let (code, _, stderr) = idsync(&s, &fake, &["plan"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("answered HTTP 404 (ADMIN-404: Not Found: org org-typo not found)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_inventory_deactivated_users_tokens_are_listed_one_by_one() {
    let fake = FakeAtlassian::start(FakeConfig {
        token_inventory: false,
        ..FakeConfig::default()
    })
    .await;
    seed(&fake);
    // Deactivated by an earlier run whose revocation failed: the token is still live.
    let mut gone = SeedUser::new("gone@example.com");
    gone.active = false;
    fake.add_user(gone);
    fake.add_api_token("gone@example.com", "old-ci");
    let s = scratch(&fake, true);
    let (code, plan, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
    assert!(
        plan.contains("API-token inventory is not available to this key")
            && plan.contains("- revoke_api_tokens gone@example.com (1 token(s))")
            && plan.contains("- revoke_api_tokens leaver@example.com (tokens listed when applied)"),
        "{plan}"
    );
    assert_eq!(fake.api_tokens("gone@example.com"), 0);
    assert_eq!(fake.api_tokens("leaver@example.com"), 0);
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_org_key_says_which_key_is_needed() {
    let fake = FakeAtlassian::start(FakeConfig {
        org_reads_forbidden: true,
        ..FakeConfig::default()
    })
    .await;
    seed(&fake);
    let s = scratch(&fake, true);
    let (code, _, stderr) = idsync(&s, &fake, &["plan"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("HTTP 403 (ADMIN-403: Forbidden: the API key does not have the scope")
            && stderr.contains("read:accounts:admin and read:domains:admin")
            && stderr.contains("needs a key created without scopes"),
        "{stderr}"
    );
    assert_eq!(fake.mutations(), 0);
}

/// What the fake holds, without ids or timestamps: users and the members of each group.
fn holdings(fake: &FakeAtlassian) -> String {
    let mut users: Vec<String> = fake
        .users()
        .iter()
        .map(|u| {
            format!(
                "{} active={} name={} title={}",
                u["userName"], u["active"], u["displayName"], u["title"]
            )
        })
        .collect();
    users.sort();
    let mut groups: Vec<String> = fake
        .groups()
        .iter()
        .map(|g| {
            let name = g["displayName"].as_str().unwrap_or_default().to_string();
            format!("{name}: {:?}", fake.group_members(&name))
        })
        .collect();
    groups.sort();
    format!("{users:#?}\n{groups:#?}")
}

/// Kills the apply at every sync point in turn (each journal line, each action answered by the
/// server), then runs it again: the organization ends as after an uninterrupted apply, every user and
/// group exists once, and only an action that was in flight at the kill is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_any_point_the_rerun_finishes_the_plan_with_nothing_done_twice() {
    let created = |fake: &FakeAtlassian, what: &str| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(what) && r.status == 201)
            .count()
    };
    let clean = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&clean);
    let s = scratch(&clean, true);
    let (code, _, stderr) = idsync(&s, &clean, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let before = clean.mutations();
    let (code, _, stderr) = idsync(&s, &clean, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let expected = holdings(&clean);
    let clean_mutations = clean.mutations() - before;
    let (users_created, groups_created) = (created(&clean, "/Users"), created(&clean, "/Groups"));

    let mut crashes = 0;
    for n in 1.. {
        let fake = FakeAtlassian::start(FakeConfig::default()).await;
        seed(&fake);
        let s = scratch(&fake, true);
        let (code, _, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
        assert_eq!(code, 0, "{stderr}");
        let before = fake.mutations();
        let mut cmd = s.idsync(&["apply", "plan.json", "--auto-approve"]);
        cmd.env("TEST_SCIM_TOKEN", &fake.config.scim_token)
            .env("TEST_ORG_TOKEN", &fake.config.org_token)
            .env("IDSYNC_RETRY_DELAY_SCALE", "0.01")
            .env("IDSYNC_TEST_CRASH_AT", n.to_string());
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        if out.status.success() {
            break;
        }
        assert_eq!(out.status.code(), None, "crash point {n}: killed");
        crashes += 1;
        let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
        assert_eq!(code, 0, "crash point {n}: {stderr}");
        assert_eq!(holdings(&fake), expected, "crash point {n}");
        assert_eq!(
            (created(&fake, "/Users"), created(&fake, "/Groups")),
            (users_created, groups_created),
            "crash point {n}: every create happened once"
        );
        // Up to four actions run at once; those in flight at the kill are sent again.
        let sent = fake.mutations() - before;
        assert!(
            sent <= clean_mutations + 4,
            "crash point {n}: {sent} mutations, {clean_mutations} without a kill"
        );
        let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
        assert_eq!(code, 0, "crash point {n}: not converged:\n{again}");
    }
    assert!(crashes > 20, "only {crashes} crash points");
}

/// SIGINT during an apply: no new action starts, those in flight finish, the journal and the report
/// (status INTERRUPTED) are written, and the next run finishes the plan with counts that add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_apply_reports_and_resumes_to_the_end() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    seed(&fake);
    let s = scratch(&fake, true);
    let (code, _, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&s.read("plan.json")).unwrap();
    let total_changes = plan["summary"]["total_changes"].as_u64().unwrap();
    // Membership changes are slow, so the interrupt lands while they are in flight.
    fake.set_faults(Faults {
        slow: Some(("/Groups/".into(), Duration::from_millis(1500))),
        ..Faults::default()
    });
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("idsync"));
    cmd.current_dir(s.dir.path())
        .args([
            "apply",
            "plan.json",
            "--auto-approve",
            "--report",
            "report.json",
        ])
        .env("TEST_SCIM_TOKEN", &fake.config.scim_token)
        .env("TEST_ORG_TOKEN", &fake.config.org_token)
        .env("IDSYNC_NOW", crate::support::NOW)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !fake
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.path.contains("/Groups/"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never reached the memberships"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("interrupted: starting no new actions"),
        "{stderr}"
    );
    assert!(stderr.contains("apply interrupted:"), "{stderr}");
    assert!(
        stderr.contains("run `idsync apply plan.json` again to finish"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&s.read("report.json")).unwrap();
    assert_eq!(report["status"], "INTERRUPTED", "{report}");
    let not_started = report["counts"]["not_started"].as_u64().unwrap();
    assert!(not_started > 0, "{report}");
    let in_flight_finished = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/Groups/"))
        .all(|r| r.status == 200 || r.status == 204);
    assert!(
        in_flight_finished,
        "the membership changes in flight were let finish"
    );

    fake.set_faults(Faults::default());
    let (code, _, stderr) = idsync(
        &s,
        &fake,
        &[
            "apply",
            "plan.json",
            "--auto-approve",
            "--report",
            "report.json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Resuming:"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&s.read("report.json")).unwrap();
    assert_eq!(report["status"], "SUCCESS");
    let c = &report["counts"];
    let sum: u64 = [
        "added",
        "linked",
        "updated",
        "reactivated",
        "deactivated",
        "groups_created",
        "members_added",
        "members_removed",
        "tokens_revoked",
    ]
    .iter()
    .map(|k| c[k].as_u64().unwrap())
    .sum();
    assert_eq!(sum, total_changes, "{report}");
    assert!(c["resumed"].as_u64().unwrap() > 0, "{report}");
    assert!(
        stderr.contains(&format!("({total_changes} change(s), ")),
        "the summary line counts the same: {stderr}"
    );
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "{again}");
}

/// SCIM servers may send an unassigned attribute as `null` instead of leaving it out (RFC 7643
/// §2.5 makes the two the same state). The same organization, planned with the fake leaving
/// unset fields out and then sending them as `null` (names, `externalId`, `title`, the enterprise
/// extension, an empty group's `members`, a user's empty `groups`, the `Resources` of the page
/// past the end, org accounts' `last_active`, the last `links.next`), gives byte-identical plans
/// through the Atlassian target (with the admin API) and the generic SCIM target, and each
/// converges in `null` mode: apply, then nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_nulls_plan_exactly_like_missing_fields_and_converge() {
    for generic in [false, true] {
        let fake = FakeAtlassian::start(FakeConfig {
            page_cap: 5,
            ..FakeConfig::default()
        })
        .await;
        seed(&fake);
        fake.add_group("empty-team", &[]);
        let s = scratch(&fake, true);
        if generic {
            s.write(
                "idsync.yaml",
                &format!(
                    "version: 1\nsources: [{{name: okta, type: file, path: idp.yaml}}]\ntarget: {{type: scim, base_url: \"{}\", token: \"${{TEST_SCIM_TOKEN}}\"}}\nusers:\n  attributes: {{displayName: \"{{givenName}} {{familyName}}\", title: \"{{title}}\"}}\ngroups:\n  mappings: [{{from_regex: \"^okta:(.+)$\", to: \"$1\"}}]\ncleanup: {{max_deactivations: 100%}}\n",
                    fake.scim_base()
                ),
            );
        }
        let mut plans = Vec::new();
        for explicit_nulls in [false, true] {
            fake.state().config.explicit_nulls = explicit_nulls;
            let mut outputs = Vec::new();
            for format in ["text", "json", "markdown"] {
                let (code, plan, stderr) = idsync(&s, &fake, &["plan", "--format", format]).await;
                assert_eq!(code, 0, "explicit_nulls {explicit_nulls}: {stderr}");
                outputs.push(plan);
            }
            plans.push(outputs);
        }
        assert_eq!(
            plans[0], plans[1],
            "generic {generic}: nulls changed the plan"
        );
        assert!(
            plans[1][0].contains("+ create_user carol@example.com"),
            "{}",
            plans[1][0]
        );
        // The page past the end (5 users, pages of 5) came with `Resources: null`.
        assert!(
            fake.requests()
                .iter()
                .any(|r| r.path.ends_with("/Users") && r.query.contains("startIndex=6")),
            "no page past the end was read"
        );

        let (code, _, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
        assert_eq!(code, 0, "generic {generic}: {stderr}");
        let (code, again, stderr) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
        assert_eq!(code, 0, "generic {generic}: converged?\n{again}\n{stderr}");
        let users = fake.users();
        let carol = users
            .iter()
            .find(|u| u["userName"] == "carol@example.com")
            .expect("carol created");
        assert_eq!(carol["displayName"], "Carol Jones");
        assert_eq!(carol["title"], serde_json::Value::Null, "{carol}");
    }
}
