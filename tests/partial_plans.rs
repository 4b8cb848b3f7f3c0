//! Partial plans (`plan --only-user`, `--only-group`): cut to their scope, marked partial in every
//! rendering and in a drift check, applied exactly, and bound to their scope when saved.

use serde_json::Value;

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::support::{run, Scratch};

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).expect("a JSON plan")
}

/// (action, subject) of each action of a JSON plan.
fn actions(v: &Value) -> Vec<(String, String)> {
    v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let subject = a["key"].as_str().or(a["group"].as_str()).unwrap();
            (
                a["action"].as_str().unwrap().to_string(),
                subject.to_string(),
            )
        })
        .collect()
}

/// Every member key of the membership actions of a JSON plan, as (action, group, member).
fn members(v: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for a in v["actions"].as_array().unwrap() {
        if let Some(ms) = a["members"].as_array() {
            for m in ms {
                out.push((
                    a["action"].as_str().unwrap().into(),
                    a["group"].as_str().unwrap().into(),
                    m["key"].as_str().unwrap().into(),
                ));
            }
        }
    }
    out
}

fn plan_json(s: &Scratch, extra: &[&str]) -> Value {
    let mut args = vec!["plan", "--format", "json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run(s, &mut s.idsync(&args));
    assert_eq!(code, 0, "{stderr}");
    json(&stdout)
}

#[test]
fn only_user_keeps_that_users_actions_and_reads_the_guards_on_the_whole_target() {
    let s = Scratch::quickstart();
    let full = plan_json(&s, &[]);
    let carol = plan_json(&s, &["--only-user", "CAROL@example.com"]);
    assert_eq!(
        actions(&carol),
        [
            ("create_user".to_string(), "carol@example.com".to_string()),
            ("add_members".into(), "engineering".into()),
            ("add_members".into(), "idsync-all-users".into()),
        ]
    );
    assert!(members(&carol)
        .iter()
        .all(|(_, _, m)| m == "carol@example.com"));
    // Every action of the partial plan is one of the full plan's, with the same content.
    for a in carol["actions"].as_array().unwrap() {
        if a["members"].is_null() {
            assert!(full["actions"].as_array().unwrap().contains(a), "{a}");
        }
    }
    // The guards' base is the whole target's, as in the full plan.
    assert_eq!(
        carol["guard"]["active_users"],
        full["guard"]["active_users"]
    );
    assert_eq!(carol["guards"][0]["base"], full["guards"][0]["base"]);
    let left = &carol["scope"]["left_out"];
    assert_eq!(
        left["changes"].as_u64().unwrap() + carol["summary"]["total_changes"].as_u64().unwrap(),
        full["summary"]["total_changes"].as_u64().unwrap()
    );
    assert_eq!(
        carol["scope"]["users"],
        serde_json::json!(["CAROL@example.com"])
    );
    assert_eq!(carol["scope"]["read"], "full");
    assert_eq!(carol["format_version"], "2.2");
    assert_eq!(full["format_version"], "2.2");
    assert!(full.get("scope").is_none());
    crate::schema_sync::assert_valid_plan(&serde_json::to_string(&carol).unwrap());

    // A rename is kept by the old email too; a glob keeps everyone it matches; rules still hold:
    // protected and admin accounts are left alone, and say so.
    let v = plan_json(
        &s,
        &[
            "--only-user",
            "bob@example.com",
            "--only-user",
            "*admin@example.com",
        ],
    );
    assert_eq!(
        actions(&v),
        [(
            "update_user".to_string(),
            "bob.smith@example.com".to_string()
        )]
    );
    let skipped: Vec<&str> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        ["breakglass-admin@example.com", "root-admin@example.com"]
    );
}

#[test]
fn only_group_keeps_the_groups_changes_and_what_they_need() {
    let s = Scratch::quickstart();
    let v = plan_json(&s, &["--only-group", "Engineering"]);
    // Carol is added to engineering, and has no account yet: her creation comes along.
    assert_eq!(
        actions(&v),
        [
            ("create_user".to_string(), "carol@example.com".to_string()),
            ("add_members".into(), "engineering".into()),
            ("remove_members".into(), "engineering".into()),
        ]
    );
    // A group to create comes with its creation; with --only-user as well, either matches.
    let v = plan_json(
        &s,
        &[
            "--only-group",
            "confluence-editors",
            "--only-user",
            "frank@example.com",
        ],
    );
    assert_eq!(
        actions(&v),
        [
            ("create_group".to_string(), "confluence-editors".to_string()),
            ("add_members".into(), "confluence-editors".into()),
            ("deactivate_user".into(), "frank@example.com".into()),
        ]
    );
    // A user's membership of a group being created brings the group's creation along.
    let v = plan_json(&s, &["--only-user", "erin@example.com"]);
    assert_eq!(
        actions(&v),
        [
            ("create_group".to_string(), "confluence-editors".to_string()),
            ("add_members".into(), "confluence-editors".into()),
            ("reactivate_user".into(), "erin@example.com".into()),
        ]
    );
    assert_eq!(
        members(&v),
        [(
            "add_members".to_string(),
            "confluence-editors".to_string(),
            "erin@example.com".to_string()
        )]
    );
}

#[test]
fn every_rendering_says_the_plan_is_partial() {
    let s = Scratch::quickstart();
    let args = [
        "--only-user",
        "carol@example.com",
        "--only-group",
        "engineering",
    ];
    let mut text_args = vec!["plan"];
    text_args.extend_from_slice(&args);
    let (code, text, stderr) = run(&s, &mut s.idsync(&text_args));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("Partial plan, only users carol@example.com and groups engineering. Plan:"),
        "{stderr}"
    );
    insta::assert_snapshot!("partial_text", text);
    let mut md_args = vec!["plan", "--format", "markdown"];
    md_args.extend_from_slice(&args);
    let (code, md, _) = run(&s, &mut s.idsync(&md_args));
    assert_eq!(code, 0);
    // Near the top: right under the title, before the summary and the guards.
    let first = md.lines().nth(2).unwrap();
    assert_eq!(first, "> [!IMPORTANT]", "{md}");
    insta::assert_snapshot!("partial_markdown", md);
    let v = plan_json(&s, &args);
    insta::assert_json_snapshot!("partial_json_scope", v["scope"]);

    // A partial plan with nothing to do for its scope does not read as "no drift".
    let (code, text, _) = run(
        &s,
        &mut s.idsync(&["plan", "--only-user", "breakglass-admin@example.com"]),
    );
    assert_eq!(code, 0);
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "No changes for users breakglass-admin@example.com (a partial plan: it says nothing about the rest of the target)."
    );
    assert!(!text.contains("The target matches the desired state"));
}

#[test]
fn a_scope_matching_nothing_is_an_error_naming_it() {
    let s = Scratch::quickstart();
    let (code, stdout, stderr) = run(
        &s,
        &mut s.idsync(&[
            "plan",
            "--only-user",
            "carol@example.com",
            "--only-user",
            "*@nowhere.example.com",
            "--only-group",
            "jira-admins",
        ]),
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.is_empty(), "nothing planned: {stdout}");
    assert!(
        stderr.contains("\"*@nowhere.example.com\" matches no user in any source or the target"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"jira-admins\" is not a group idsync manages"),
        "{stderr}"
    );
    assert!(!stderr.contains("\"carol@example.com\""), "{stderr}");
    // A malformed pattern says so too.
    let (code, _, stderr) = run(&s, &mut s.idsync(&["plan", "--only-user", "a[@b"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid pattern \"a[@b\""), "{stderr}");
}

#[test]
fn a_drift_check_of_a_partial_plan_says_it_was_partial() {
    let s = Scratch::quickstart();
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&[
            "plan",
            "--only-user",
            "carol@example.com",
            "--detailed-exitcode",
            "--out",
            "plan.json",
        ]),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("this was a partial plan (users carol@example.com): its exit code covers only that scope (exit 2: drift within that scope); the rest of the target was not compared"),
        "{stderr}"
    );
    let (code, shown, stderr) = run(
        &s,
        &mut s.idsync(&["show", "plan.json", "--detailed-exitcode"]),
    );
    assert_eq!(code, 2);
    assert!(
        shown.contains("  partial: only users carol@example.com"),
        "{shown}"
    );
    assert!(
        shown.contains("PARTIAL PLAN: only users carol@example.com"),
        "{shown}"
    );
    assert!(stderr.contains("this was a partial plan"), "{stderr}");
    let (_, summary, _) = run(
        &s,
        &mut s.idsync(&["show", "plan.json", "--format", "summary"]),
    );
    assert!(
        summary.starts_with("PARTIAL PLAN: only users carol@example.com"),
        "{summary}"
    );

    // Applied, the scope has no drift left, and the check still says what it covered.
    let (code, _, stderr) = run(&s, &mut s.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&[
            "plan",
            "--only-user",
            "carol@example.com",
            "--detailed-exitcode",
        ]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "(exit 0: no drift within that scope, which does not mean the target has none)"
        ),
        "{stderr}"
    );
    // A full drift check still finds the rest.
    let (code, _, stderr) = run(&s, &mut s.idsync(&["plan", "--detailed-exitcode"]));
    assert_eq!(code, 2);
    assert!(!stderr.contains("partial"), "{stderr}");
}

#[test]
fn a_saved_partial_plan_applies_exactly_its_actions() {
    let s = Scratch::quickstart();
    let before = plan_json(&s, &[]);
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&[
            "plan",
            "--only-user",
            "carol@example.com",
            "--out",
            "plan.json",
        ]),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&[
            "apply",
            "plan.json",
            "--auto-approve",
            "--report",
            "report.json",
        ]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("plan.json: Partial plan, only users carol@example.com."),
        "{stderr}"
    );
    let report: Value = serde_json::from_str(&s.read("report.json")).unwrap();
    assert_eq!(report["results"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(
        report["scope"]["users"],
        serde_json::json!(["carol@example.com"]),
        "the report says it is of a partial plan: {report}"
    );
    // Exactly carol's changes were made: the full plan now lacks them and nothing else.
    let carols = |c: &String| c.contains("carol@example.com");
    let expected: Vec<String> = changes(&before)
        .into_iter()
        .filter(|c| !carols(c))
        .collect();
    assert_eq!(changes(&before).len() - expected.len(), 3);
    assert_eq!(changes(&after_plan(&s)), expected);
}

fn after_plan(s: &Scratch) -> Value {
    plan_json(s, &[])
}

/// Each change of a JSON plan as one line (`add_members group member`, `create_user key`), sorted.
fn changes(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = members(v)
        .into_iter()
        .map(|(a, g, m)| format!("{a} {g} {m}"))
        .collect();
    out.extend(
        actions(v)
            .into_iter()
            .filter(|(a, _)| !a.ends_with("_members"))
            .map(|(a, k)| format!("{a} {k}")),
    );
    out.sort();
    out
}

/// The saved plan edited as a person would, then sealed again with the library (no key).
fn edit_and_reseal(s: &Scratch, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&s.read("plan.json")).unwrap();
    edit(&mut v);
    let mut p: idsync::plan::Plan = serde_json::from_value(v).unwrap();
    p.seal(None);
    s.write("plan.json", &serde_json::to_string_pretty(&p).unwrap());
}

#[test]
fn the_scope_of_a_saved_plan_cannot_be_edited() {
    let s = Scratch::quickstart();
    let save = || {
        let (code, _, stderr) = run(
            &s,
            &mut s.idsync(&[
                "plan",
                "--only-user",
                "carol@example.com",
                "--only-user",
                "frank@example.com",
                "--out",
                "plan.json",
            ]),
        );
        assert_eq!(code, 0, "{stderr}");
    };
    let original = s.read("atlassian.yaml");
    // Taken away by hand: the digest no longer matches.
    save();
    let mut v: Value = serde_json::from_str(&s.read("plan.json")).unwrap();
    v.as_object_mut().unwrap().remove("scope");
    s.write("plan.json", &serde_json::to_string_pretty(&v).unwrap());
    let (code, _, stderr) = run(&s, &mut s.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("does not match its digest"), "{stderr}");
    // Narrowed and sealed again: the re-plan with that scope does not make frank's deactivation.
    save();
    edit_and_reseal(&s, |v| {
        v["scope"]["users"] = serde_json::json!(["carol@example.com"]);
    });
    let (code, _, stderr) = run(&s, &mut s.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "deactivate_user frank@example.com: a plan made now would not deactivate this user"
        ),
        "{stderr}"
    );
    // Widened to someone else and sealed again: still only the actions reviewed are applied, and
    // each must be one the fresh plan of that scope makes.
    save();
    edit_and_reseal(&s, |v| {
        v["scope"]["users"] = serde_json::json!(["alice@example.com"]);
    });
    let (code, _, stderr) = run(&s, &mut s.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr
            .contains("create_user carol@example.com: a plan made now would not create this user"),
        "{stderr}"
    );
    assert_eq!(s.read("atlassian.yaml"), original, "nothing was changed");
    // With a signing key, resealing without it is refused outright.
    let (code, _, stderr) = run(
        &s,
        s.idsync(&[
            "plan",
            "--only-user",
            "carol@example.com",
            "--out",
            "plan.json",
        ])
        .env("IDSYNC_PLAN_KEY", "k"),
    );
    assert_eq!(code, 0, "{stderr}");
    edit_and_reseal(&s, |v| {
        v.as_object_mut().unwrap().remove("scope");
    });
    let (code, _, stderr) = run(
        &s,
        s.idsync(&["apply", "plan.json", "--auto-approve"])
            .env("IDSYNC_PLAN_KEY", "k"),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("it is not signed"), "{stderr}");
}

const IDP: &str = r"users:
  - {id: 00u1, email: alice@example.com, givenName: Alice, familyName: Doe}
  - {id: 00u2, email: bob@example.com, givenName: Bob, familyName: Smith}
  - {id: 00u3, email: carol@example.com, givenName: Carol, familyName: Jones}
groups:
  - {name: Engineering, members: [alice@example.com, bob@example.com, carol@example.com]}
  - {name: Design, members: [carol@example.com]}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_plans_against_the_atlassian_fake() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    fake.add_user(SeedUser::new("alice@example.com").external_id("00u1"));
    fake.add_user(SeedUser::new("leaver@example.com").last_active("2025-01-01"));
    fake.add_group("engineering", &["alice@example.com", "leaver@example.com"]);
    fake.add_api_token("leaver@example.com", "ci");
    let s = Scratch::new();
    s.write("idp.yaml", IDP).write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources: [{{name: okta, type: file, path: idp.yaml}}]
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
  admin: {{org_id: "{org}", token: "${{TEST_ORG_TOKEN}}", base_url: "{base}"}}
users:
  attributes: {{displayName: "{{givenName}} {{familyName}}"}}
groups:
  mappings:
    - {{from: "okta:Engineering", to: engineering}}
    - {{from: "okta:Design", to: design}}
cleanup: {{revoke_api_tokens: true, max_deactivations: 1}}
"#,
            scim = fake.scim_base(),
            org = fake.org_id(),
            base = fake.base_url,
        ),
    );
    let idsync = |args: &[&str]| {
        let mut cmd = s.idsync(args);
        cmd.env("TEST_SCIM_TOKEN", &fake.config.scim_token)
            .env("TEST_ORG_TOKEN", &fake.config.org_token)
            .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
        crate::support::run_beside_fakes(cmd)
    };
    let (code, out, stderr) = idsync(&[
        "plan",
        "--only-user",
        "leaver@example.com",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let v = json(&out);
    assert_eq!(
        actions(&v),
        [
            (
                "deactivate_user".to_string(),
                "leaver@example.com".to_string()
            ),
            ("revoke_api_tokens".into(), "leaver@example.com".into()),
        ]
    );
    let (code, out, stderr) = idsync(&["plan", "--only-group", "design", "--format", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let v = json(&out);
    assert_eq!(
        actions(&v),
        [
            ("create_user".to_string(), "carol@example.com".to_string()),
            ("create_group".into(), "design".into()),
            ("add_members".into(), "design".into()),
        ]
    );
    // Saved and applied: only that, on the fake.
    let (code, _, stderr) = idsync(&["plan", "--only-group", "design", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = idsync(&["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.group_members("design"), ["carol@example.com"]);
    assert_eq!(
        fake.group_members("engineering"),
        ["alice@example.com", "leaver@example.com"]
    );
    assert!(
        fake.user("bob@example.com").is_none(),
        "bob is not in scope"
    );
    assert_eq!(fake.user("leaver@example.com").unwrap()["active"], true);
    assert_eq!(fake.api_tokens("leaver@example.com"), 1);
    // The leaver alone: deactivated, tokens revoked, nothing else.
    let (code, _, stderr) = idsync(&[
        "plan",
        "--only-user",
        "leaver@example.com",
        "--out",
        "plan.json",
    ])
    .await;
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = idsync(&["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.user("leaver@example.com").unwrap()["active"], false);
    assert_eq!(fake.api_tokens("leaver@example.com"), 0);
    assert!(fake.user("bob@example.com").is_none());
    assert_eq!(
        fake.group_members("engineering"),
        ["alice@example.com", "leaver@example.com"]
    );
}
