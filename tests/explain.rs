//! `idsync explain`: the step trace for the quickstart's people and groups, pinned.

use crate::support::{run, Scratch};

fn explain(args: &[&str]) -> String {
    let s = Scratch::quickstart();
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&s, &mut s.idsync(&all));
    assert_eq!(code, 0, "{stderr}");
    stdout
}

#[test]
fn explain_a_created_user() {
    let out = explain(&["carol@example.com"]);
    assert!(out.contains("create_user carol@example.com"), "{out}");
    insta::assert_snapshot!("explain_created", out);
}

#[test]
fn explain_an_updated_user() {
    let out = explain(&["alice@example.com"]);
    assert!(out.contains("update_user alice@example.com"), "{out}");
    insta::assert_snapshot!("explain_updated", out);
}

#[test]
fn explain_a_renamed_user_by_the_old_email() {
    let out = explain(&["bob@example.com"]);
    assert!(out.contains("matched by externalId"), "{out}");
    assert!(out.contains("update_user bob.smith@example.com"), "{out}");
    assert!(
        !out.contains("deactivate_user"),
        "a rename is no leaver: {out}"
    );
}

#[test]
fn explain_a_deactivated_user() {
    let out = explain(&["frank@example.com"]);
    assert!(out.contains("deactivate_user frank@example.com"), "{out}");
    insta::assert_snapshot!("explain_deactivated", out);
}

#[test]
fn explain_a_protected_user() {
    let out = explain(&["breakglass-admin@example.com"]);
    assert!(
        out.contains("left alone: protected by cleanup.protect"),
        "{out}"
    );
    insta::assert_snapshot!("explain_protected", out);
}

#[test]
fn explain_an_untouched_user() {
    let out = explain(&["liam@example.com"]);
    assert!(
        out.contains("=> nothing: Atlassian already matches"),
        "{out}"
    );
    insta::assert_snapshot!("explain_untouched", out);
}

#[test]
fn explain_someone_nobody_knows_is_an_answer() {
    let out = explain(&["nobody@example.com"]);
    assert!(
        out.contains("=> nothing: not in any source and not in Atlassian"),
        "{out}"
    );
}

#[test]
fn explain_a_group() {
    let out = explain(&["engineering"]);
    assert!(
        out.contains("remove_members engineering: jack@example.com"),
        "{out}"
    );
    insta::assert_snapshot!("explain_group", out);
    let unmanaged = explain(&["jira-software-users"]);
    assert!(unmanaged.contains("not managed"), "{unmanaged}");
}

#[test]
fn explain_as_json() {
    let out = explain(&["alice@example.com", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["atlassian"]["matched_by"], "externalId");
    insta::assert_snapshot!("explain_json", out);
}

#[test]
fn explain_with_a_broken_config_exits_1() {
    let s = Scratch::quickstart();
    s.write("idsync.yaml", "version: 1\nsources: [");
    let (code, _, stderr) = run(&s, &mut s.idsync(&["explain", "alice@example.com"]));
    assert_eq!(code, 1, "{stderr}");
}

/// Against the Okta and Atlassian fakes: explain reads only the person, and `-v` says how many
/// requests that took; the count does not grow with the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_only_the_person_and_counts_its_requests() {
    use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
    use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
    let mut counts = Vec::new();
    for n in [5, 40] {
        let okta = FakeOkta::start(FakeOktaConfig::default()).await;
        let atl = FakeAtlassian::start(FakeConfig::default()).await;
        let mut all = vec!["ana@example.com".to_string()];
        all.extend((0..n).map(|i| format!("filler{i:03}@example.com")));
        for e in &all {
            okta.add_user(OktaSeedUser::new(e));
            atl.add_user(SeedUser::new(e));
        }
        let members: Vec<&str> = all.iter().map(String::as_str).collect();
        okta.add_group("Atlassian Users", "OKTA_GROUP", &members);
        atl.add_group("everyone", &members);
        let s = Scratch::new();
        s.write(
            "idsync.yaml",
            &format!(
                r#"version: 1
sources:
  - {{name: okta, type: okta, base_url: "{okta}", token: "${{TEST_OKTA_TOKEN}}", page_size: 2}}
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}", page_size: 2}}
users:
  require_groups: ["okta:Atlassian Users"]
groups:
  default_groups: [everyone]
"#,
                okta = okta.base_url,
                scim = atl.scim_base(),
            ),
        );
        let okta_before = okta.requests().len();
        let atl_before = atl.requests().len();
        let mut cmd = s.idsync(&["explain", "ana@example.com", "-v"]);
        cmd.env("TEST_OKTA_TOKEN", &okta.config.api_token)
            .env("TEST_SCIM_TOKEN", &atl.config.scim_token);
        let (code, out, err) = crate::support::run_beside_fakes(cmd).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("matched by email"), "{out}");
        assert!(!out.contains("filler"), "only ana's memberships: {out}");
        assert!(err.contains("requests per API:"), "{err}");
        assert!(err.contains("Okta "), "{err}");
        counts.push((
            okta.requests().len() - okta_before,
            atl.requests().len() - atl_before,
        ));
    }
    assert_eq!(
        counts[0], counts[1],
        "the same requests for 5 and 40 people"
    );
}
