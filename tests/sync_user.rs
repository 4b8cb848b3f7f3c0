//! `idsync sync-user`: one person planned and applied from a read of only them, against the fake
//! Okta and the fake Atlassian; the plan is the one `plan --only-user` makes.

use serde_json::Value;

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use crate::fakes::RequestLog;
use crate::support::Scratch;

/// Okta: two people already in Atlassian, a new hire, a contractor nobody syncs.
fn seed_okta(okta: &FakeOkta) {
    for e in [
        "ana@example.com",
        "ben@example.com",
        "new.hire@example.com",
        "temp@example.com",
    ] {
        okta.add_user(OktaSeedUser::new(e));
    }
    okta.add_group(
        "Atlassian Users",
        "OKTA_GROUP",
        &["ana@example.com", "ben@example.com", "new.hire@example.com"],
    );
    okta.add_group(
        "Engineering",
        "OKTA_GROUP",
        &["ana@example.com", "new.hire@example.com"],
    );
}

/// Atlassian: Ana and Ben provisioned from Okta, a leaver nobody has removed yet, a break-glass
/// admin.
fn seed_atlassian(atl: &FakeAtlassian, okta: &FakeOkta) {
    for e in ["ana@example.com", "ben@example.com"] {
        let mut s = SeedUser::new(e);
        s.external_id = okta.user_id(e);
        atl.add_user(s);
    }
    atl.add_user(SeedUser::new("gone@example.com").last_active("2025-01-01"));
    atl.add_user(SeedUser::new("breakglass@example.com"));
    atl.add_api_token("gone@example.com", "ci");
    atl.add_group("engineering", &["ana@example.com"]);
    atl.add_group("all-staff", &["ana@example.com", "ben@example.com"]);
}

fn config(okta: &FakeOkta, atl: &FakeAtlassian) -> String {
    format!(
        r#"version: 1
sources:
  - name: okta
    type: okta
    base_url: {okta}
    token: ${{TEST_OKTA_TOKEN}}
    groups: [Atlassian Users, Engineering]
    page_size: 2
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
  admin: {{org_id: "{org}", token: "${{TEST_ORG_TOKEN}}", base_url: "{base}"}}
users:
  require_groups: ["okta:Atlassian Users"]
  attributes: {{displayName: "{{firstName}} {{lastName}}"}}
groups:
  mappings: [{{from: "okta:Engineering", to: engineering}}]
  default_groups: [all-staff]
cleanup:
  protect: [breakglass@example.com]
  revoke_api_tokens: true
  grace_days: 30
  max_deactivations: 25%
"#,
        okta = okta.base_url,
        scim = atl.scim_base(),
        org = atl.org_id(),
        base = atl.base_url,
    )
}

async fn idsync(
    s: &Scratch,
    okta: &FakeOkta,
    atl: &FakeAtlassian,
    args: &[&str],
) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_SCIM_TOKEN", &atl.config.scim_token)
        .env("TEST_ORG_TOKEN", &atl.config.org_token)
        .env("TEST_OKTA_TOKEN", &okta.config.api_token)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
    crate::support::run_beside_fakes(cmd).await
}

async fn setup() -> (FakeOkta, FakeAtlassian, Scratch) {
    let okta = FakeOkta::start(FakeOktaConfig::default()).await;
    let atl = FakeAtlassian::start(FakeConfig::default()).await;
    seed_okta(&okta);
    seed_atlassian(&atl, &okta);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl));
    (okta, atl, s)
}

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

/// A rendering without what changes from run to run: the fake's address (in the target's name),
/// and the config's hash (the config names that address).
fn stable(out: &str, atl: &FakeAtlassian) -> String {
    let out = out.replace(&atl.base_url, "[FAKE]");
    match out.find(" · config ") {
        Some(i) => format!("{} · config [HASH]</sub>", &out[..i]),
        None => out,
    }
}

/// The requests logged since `from`, as (`METHOD path?query`, whether it changes state).
fn since(log: &[RequestLog], from: usize) -> Vec<(String, bool)> {
    log[from..]
        .iter()
        .map(|r| (format!("{} {}?{}", r.method, r.path, r.query), r.mutation))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_hire_is_onboarded_and_the_plan_converges() {
    let (okta, atl, s) = setup().await;
    let (okta0, atl0) = (okta.requests().len(), atl.requests().len());
    let (code, stdout, stderr) = idsync(
        &s,
        &okta,
        &atl,
        &[
            "sync-user",
            "New.Hire@example.com",
            "--apply",
            "--auto-approve",
            "-v",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout
            .contains("PARTIAL PLAN: only users New.Hire@example.com; only these people were read"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ create_user new.hire@example.com"),
        "{stdout}"
    );
    let okta_requests = since(&okta.requests(), okta0);
    let atl_requests = since(&atl.requests(), atl0);
    // -v states the count of the reads (the Atlassian target counts its own requests; a source
    // that does not count them says 0).
    let line = stderr
        .lines()
        .find(|l| l.contains("targeted read:"))
        .unwrap_or_else(|| panic!("no request count in\n{stderr}"));
    assert!(line.contains("in 1 round(s)"), "{line}");
    // The target's count is what the fake saw before the first write.
    let reads = atl_requests.iter().take_while(|(_, write)| !*write).count();
    assert!(
        line.contains(&format!(", {reads} of them to the target;")),
        "{line}\n{atl_requests:#?}"
    );
    assert!(
        okta_requests
            .iter()
            .all(|(r, write)| !write && r.starts_with("GET")),
        "only reads in Okta: {okta_requests:#?}"
    );
    // Targeted reads: the target's users are asked for by filter, never listed whole.
    assert!(
        atl_requests
            .iter()
            .filter(|(r, _)| r.starts_with("GET") && r.contains("/Users"))
            .all(|(r, _)| r.contains("filter=")),
        "{atl_requests:#?}"
    );
    assert!(
        atl_requests
            .iter()
            .any(|(r, _)| r.contains("/Users") && r.contains("filter=")),
        "{atl_requests:#?}"
    );
    let writes: Vec<&String> = atl_requests
        .iter()
        .filter(|(_, write)| *write)
        .map(|(r, _)| r)
        .collect();
    // The create, and one membership change per group.
    assert_eq!(writes.len(), 3, "{writes:#?}");
    let hire = atl.user("new.hire@example.com").expect("created");
    assert_eq!(hire["active"], true);
    assert_eq!(
        hire["externalId"].as_str(),
        okta.user_id("new.hire@example.com").as_deref()
    );
    assert_eq!(
        atl.group_members("engineering"),
        ["ana@example.com", "new.hire@example.com"]
    );
    assert_eq!(
        atl.group_members("all-staff"),
        ["ana@example.com", "ben@example.com", "new.hire@example.com"]
    );
    // Nobody else was touched: the leaver is still active with its token.
    assert_eq!(atl.user("gone@example.com").unwrap()["active"], true);
    assert_eq!(atl.api_tokens("gone@example.com"), 1);

    // Converged for that person, both ways of asking; a full plan still has the rest.
    let (code, out, stderr) = idsync(
        &s,
        &okta,
        &atl,
        &[
            "plan",
            "--only-user",
            "new.hire@example.com",
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{stderr}");
    let (code, out, stderr) = idsync(&s, &okta, &atl, &["sync-user", "new.hire@example.com"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("No changes for users new.hire@example.com"),
        "{out}"
    );
    let (code, out, _) = idsync(&s, &okta, &atl, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("- deactivate_user gone@example.com"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaver_is_deactivated_and_their_tokens_revoked() {
    let (okta, atl, s) = setup().await;
    // Ben leaves: removed from Okta altogether.
    okta.delete_user("ben@example.com");
    let ben = atl.account_id("ben@example.com").unwrap();
    let _ = ben;
    atl.set_last_active("ben@example.com", "2025-06-01");
    atl.add_api_token("ben@example.com", "laptop");
    let (code, stdout, stderr) = idsync(
        &s,
        &okta,
        &atl,
        &[
            "sync-user",
            "ben@example.com",
            "--apply",
            "--auto-approve",
            "--report",
            "report.json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    insta::assert_snapshot!("sync_user_leaver_text", stable(&stdout, &atl));
    assert!(
        stdout.contains("- deactivate_user ben@example.com"),
        "{stdout}"
    );
    assert!(
        stdout.contains("because in no source (cleanup.deactivate_missing)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("- revoke_api_tokens ben@example.com (1 token(s))"),
        "{stdout}"
    );
    assert_eq!(atl.user("ben@example.com").unwrap()["active"], false);
    assert_eq!(atl.api_tokens("ben@example.com"), 0);
    let report: Value = serde_json::from_str(&s.read("report.json")).unwrap();
    assert_eq!(report["counts"]["deactivated"], 1, "{report}");
    assert_eq!(
        report["scope"]["users"],
        serde_json::json!(["ben@example.com"]),
        "{report}"
    );
    assert_eq!(report["scope"]["read"], "people", "{report}");
    // The other leaver, not named, is untouched.
    assert_eq!(atl.user("gone@example.com").unwrap()["active"], true);
    assert_eq!(atl.api_tokens("gone@example.com"), 1);
    // Within the grace period, a leaver is kept, and the plan says why.
    okta.delete_user("ana@example.com");
    atl.set_last_active("ana@example.com", "2026-11-15");
    let (code, stdout, stderr) = idsync(
        &s,
        &okta,
        &atl,
        &["sync-user", "ana@example.com", "--apply", "--auto-approve"],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout
            .contains("= ana@example.com  last active 2026-11-15, within cleanup.grace_days (30)"),
        "{stdout}"
    );
    assert_eq!(atl.user("ana@example.com").unwrap()["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_person_is_left_alone() {
    let (okta, atl, s) = setup().await;
    let before = atl.mutations();
    let (code, stdout, stderr) = idsync(
        &s,
        &okta,
        &atl,
        &[
            "sync-user",
            "breakglass@example.com",
            "--apply",
            "--auto-approve",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("= breakglass@example.com  protected by cleanup.protect \"breakglass@example.com\"; would have been deactivated"),
        "{stdout}"
    );
    assert!(stderr.contains("No changes to apply."), "{stderr}");
    assert_eq!(atl.mutations(), before);
    let (code, md, _) = idsync(
        &s,
        &okta,
        &atl,
        &[
            "sync-user",
            "breakglass@example.com",
            "--format",
            "markdown",
        ],
    )
    .await;
    assert_eq!(code, 0);
    insta::assert_snapshot!("sync_user_protected_markdown", stable(&md, &atl));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_user_plans_exactly_what_plan_only_user_plans() {
    let (okta, atl, s) = setup().await;
    // A rename too: Ana's email changes in Okta; asked for by the old email, she is found by her
    // Okta id on the Atlassian account and updated, never taken for a leaver.
    let ana = okta.user_id("ana@example.com").unwrap();
    okta.set_email(&ana, "ana.silva@example.com");
    atl.set_last_active("gone@example.com", "2025-01-01");
    for people in [
        vec!["new.hire@example.com"],
        vec!["gone@example.com"],
        vec!["ana@example.com"],
        vec!["breakglass@example.com", "ben@example.com"],
        vec!["temp@example.com"],
    ] {
        let mut plan_args = vec!["plan", "--format", "json"];
        for p in &people {
            plan_args.extend(["--only-user", p]);
        }
        let (code, scoped, stderr) = idsync(&s, &okta, &atl, &plan_args).await;
        assert_eq!(code, 0, "{stderr}");
        let mut sync_args = vec!["sync-user", "--format", "json"];
        sync_args.extend(people.iter().copied());
        let (code, synced, stderr) = idsync(&s, &okta, &atl, &sync_args).await;
        assert_eq!(code, 0, "{stderr}");
        let (a, b): (Value, Value) = (
            serde_json::from_str(&scoped).unwrap(),
            serde_json::from_str(&synced).unwrap(),
        );
        for field in [
            "actions",
            "summary",
            "skipped",
            "preconditions",
            "blocking",
            "cost",
        ] {
            assert_eq!(a[field], b[field], "{people:?}: {field} differs");
        }
        assert_eq!(a["guard"]["deactivations"], b["guard"]["deactivations"]);
        assert_eq!(a["scope"]["users"], b["scope"]["users"]);
        assert_eq!(b["scope"]["read"], "people");
        assert!(b["scope"].get("left_out").is_none());
        crate::schema_sync::assert_valid_plan(&synced);
        if people == ["ana@example.com"] {
            assert_eq!(
                actions(&b),
                [(
                    "update_user".to_string(),
                    "ana.silva@example.com".to_string()
                )]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_user_refuses_what_apply_refuses() {
    let (okta, atl, s) = setup().await;
    let before = atl.mutations();
    // No terminal, no --auto-approve: refused.
    let (code, _, stderr) = idsync(
        &s,
        &okta,
        &atl,
        &["sync-user", "new.hire@example.com", "--apply"],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("standard input is not a terminal"),
        "{stderr}"
    );
    // Someone nobody has: an error naming them.
    let (code, stdout, stderr) = idsync(
        &s,
        &okta,
        &atl,
        &["sync-user", "who@example.com", "new.hire@example.com"],
    )
    .await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("\"who@example.com\" matches no user in any source or the target"),
        "{stderr}"
    );
    assert_eq!(atl.mutations(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_given_as_a_count_still_holds() {
    let (okta, atl, s) = setup().await;
    s.write(
        "idsync.yaml",
        &config(&okta, &atl).replace("max_deactivations: 25%", "max_deactivations: 0"),
    );
    okta.delete_user("ben@example.com");
    atl.set_last_active("ben@example.com", "2025-06-01");
    let before = atl.mutations();
    let args = ["sync-user", "ben@example.com", "--apply", "--auto-approve"];
    let (code, _, stderr) = idsync(&s, &okta, &atl, &args).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--allow-mass-deactivation"), "{stderr}");
    assert_eq!(atl.mutations(), before);
    let mut with_flag = args.to_vec();
    with_flag.push("--allow-mass-deactivation");
    let (code, _, stderr) = idsync(&s, &okta, &atl, &with_flag).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(atl.user("ben@example.com").unwrap()["active"], false);
}
