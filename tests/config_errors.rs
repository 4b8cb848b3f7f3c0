//! Each kind of bad config: exit 1, an error naming file, line and key, and a hint. Pinned.

use crate::support::{run, Scratch};

const GOOD: &str = r#"version: 1
sources:
  - name: okta
    type: file
    path: idp.yaml
target:
  type: file
  path: atlassian.yaml
users:
  require_groups: ["okta:Everyone"]
groups:
  mappings:
    - from: "okta:Engineering"
      to: engineering
    - from_regex: "^okta:atl-(.+)$"
      to: "$1"
  default_groups: [all-staff]
cleanup:
  max_deactivations: 5%
limits:
  membership_batch: 1000
"#;

/// Validates `config` (written as idsync.yaml); pins stderr; checks nothing was written.
fn bad(name: &str, config: &str) {
    let s = Scratch::new();
    s.write("idsync.yaml", config)
        .write("idp.yaml", "users: []\n")
        .write("atlassian.yaml", "users: []\n");
    let (code, stdout, stderr) = run(&s, s.idsync(&["validate"]).env_remove("IDSYNC_TEST_UNSET"));
    assert_eq!(code, 1, "{name}: {stdout}");
    assert!(stdout.is_empty());
    insta::assert_snapshot!(format!("config_error_{name}"), stderr);
    // `plan` refuses the same way and leaves the target alone.
    let (code, ..) = run(&s, &mut s.idsync(&["plan", "--out", "plan.json"]));
    assert_eq!(code, 1);
    assert!(!s.path("plan.json").exists());
    assert_eq!(s.read("atlassian.yaml"), "users: []\n");
}

#[test]
fn the_good_config_is_good() {
    let s = Scratch::new();
    s.write("idsync.yaml", GOOD)
        .write("idp.yaml", "users: []\n")
        .write("atlassian.yaml", "users: []\n");
    let (code, _, stderr) = run(&s, &mut s.idsync(&["validate"]));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn unknown_key() {
    bad(
        "unknown_key",
        &GOOD.replace(
            "    - from: \"okta:Engineering\"",
            "    - frm: \"okta:Engineering\"",
        ),
    );
}

#[test]
fn invalid_regex() {
    bad(
        "invalid_regex",
        &GOOD.replace("^okta:atl-(.+)$", "^okta:atl-(.+$"),
    );
}

#[test]
fn capture_group_out_of_range() {
    bad(
        "capture_out_of_range",
        &GOOD.replace("to: \"$1\"", "to: \"$2\""),
    );
}

#[test]
fn product_access_group() {
    bad(
        "product_access_group",
        &GOOD.replace("to: engineering", "to: jira-software-users"),
    );
}

#[test]
fn duplicate_mapping() {
    bad(
        "duplicate_mapping",
        &GOOD.replace(
            "  default_groups",
            "    - from: \"okta:Engineering\"\n      to: engineering\n  default_groups",
        ),
    );
}

#[test]
fn conflicting_mapping() {
    bad(
        "conflicting_mapping",
        &GOOD.replace(
            "  default_groups",
            "    - from: \"okta:Engineering\"\n      to: platform\n  default_groups",
        ),
    );
}

#[test]
fn membership_batch_too_large() {
    bad(
        "membership_batch",
        &GOOD.replace("membership_batch: 1000", "membership_batch: 20000"),
    );
}

#[test]
fn malformed_max_deactivations() {
    bad(
        "max_deactivations",
        &GOOD.replace("max_deactivations: 5%", "max_deactivations: lots"),
    );
    bad(
        "max_deactivations_over_100",
        &GOOD.replace("max_deactivations: 5%", "max_deactivations: 150%"),
    );
    bad(
        "further_guards_over_100",
        &GOOD.replace(
            "max_deactivations: 5%",
            "max_deactivations: 5%\n  max_updates: 150%\n  max_membership_removals_per_group: 101%",
        ),
    );
}

#[test]
fn unset_environment_variable() {
    bad(
        "unset_env",
        &GOOD.replace("path: idp.yaml", "path: ${IDSYNC_TEST_UNSET}/idp.yaml"),
    );
}

#[test]
fn yaml_syntax() {
    bad(
        "yaml_syntax",
        &GOOD.replace(
            "  type: file\n  path: atlassian.yaml",
            "  type: file\n path: atlassian.yaml",
        ),
    );
}

#[test]
fn unqualified_group_name() {
    bad(
        "unqualified_group",
        &GOOD.replace("okta:Everyone", "Everyone"),
    );
}

#[test]
fn misspelt_connector_type() {
    bad(
        "connector_type",
        &GOOD.replace(
            "    type: file\n    path: idp.yaml",
            "    type: onelgoin\n    path: idp.yaml",
        ),
    );
}

#[test]
fn wrong_type_and_missing_key() {
    bad("wrong_type", &GOOD.replace("version: 1", "version: one"));
    bad(
        "missing_target",
        &GOOD.replace("target:\n  type: file\n  path: atlassian.yaml\n", ""),
    );
}

#[test]
fn bad_template_and_attribute() {
    bad(
        "template",
        &GOOD.replace(
            "users:\n",
            "users:\n  attributes:\n    displayName: \"{givenName\"\n    shoeSize: \"{size}\"\n",
        ),
    );
}

#[test]
fn several_problems_are_reported_together() {
    let config = GOOD
        .replace("membership_batch: 1000", "membership_batch: 0")
        .replace("to: engineering", "to: confluence-users")
        .replace("[all-staff]", "[all-staff, all-staff]");
    bad("several", &config);
}

#[test]
fn a_connectors_own_keys_are_checked() {
    bad(
        "connector_key_typo",
        &GOOD.replace(
            "    type: file\n    path: idp.yaml",
            "    type: okta\n    domian: example.okta.com\n    token: x",
        ),
    );
    bad(
        "connector_missing_key",
        &GOOD.replace(
            "    type: file\n    path: idp.yaml",
            "    type: google\n    service_account_key_file: sa.json",
        ),
    );
}

#[test]
fn a_missing_credential_names_the_connectors_own_key() {
    bad(
        "connector_missing_secret",
        &GOOD.replace(
            "    type: file\n    path: idp.yaml",
            "    type: keycloak\n    base_url: https://sso.example.com\n    realm: acme\n    client_id: idsync",
        ),
    );
}

#[test]
fn a_onelogin_host_is_a_subdomain_or_a_region() {
    bad(
        "onelogin_host",
        &GOOD.replace(
            "    type: file\n    path: idp.yaml",
            "    type: onelogin\n    subdomain: acme.onelogin.com\n    client_id: abc\n    client_secret_file: /run/secrets/onelogin\n  - name: eu\n    type: onelogin\n    client_id: abc\n    client_secret: s\n    inactive_statuses: [2, 6]",
        ),
    );
}

#[test]
fn a_connector_without_a_type_names_the_types_and_not_its_values() {
    bad(
        "connector_missing_type",
        &GOOD.replace(
            "    type: file\n    path: idp.yaml",
            "    domain: example.okta.com\n    token: tok-not-to-be-printed",
        ),
    );
}

#[test]
fn credentials_inside_a_url_are_refused() {
    bad(
        "credentials_in_url",
        &GOOD.replace(
            "target:\n  type: file\n  path: atlassian.yaml\n",
            "target:\n  type: atlassian\n  scim:\n    base_url: https://idsync:hunter2hunter2@api.atlassian.com/scim/directory/d\n    token: tok-abcdefgh\n  admin:\n    org_id: o\n    token: tok-abcdefgh\n    base_url: https://api.atlassian.com/?api_key=hunter2hunter2\n",
        ),
    );
}

#[test]
fn a_capture_group_written_like_an_environment_variable() {
    bad(
        "capture_like_env",
        &GOOD.replace(
            "    - from_regex: \"^okta:atl-(.+)$\"\n      to: \"$1\"",
            "    - from_regex: \"^okta:atl-(?P<team>.+)$\"\n      to: \"team-${team}\"\n    - from_regex: \"^okta:x-(.+)$\"\n      to: \"x-${IDSYNC_TEST_UNSET}\"",
        ),
    );
}
