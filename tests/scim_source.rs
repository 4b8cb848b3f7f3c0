//! A SCIM 2.0 service provider as the identity provider (`sources: - type: scim`), read from the fake
//! Atlassian's SCIM endpoints (any SCIM server will do), planned against a file target.

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::Faults;
use crate::support::{run_beside_fakes, Scratch};

fn scratch(idp: &FakeAtlassian) -> Scratch {
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - {{name: idp, type: scim, base_url: "{}", token: "${{TEST_IDP_TOKEN}}", page_size: 2}}
target: {{type: file, path: atlassian.yaml}}
groups:
  mappings: [{{from_regex: "^idp:(.+)$", to: "$1"}}]
cleanup: {{max_deactivations: 100%}}
"#,
            idp.scim_base()
        ),
    )
    .write(
        "atlassian.yaml",
        "users:\n  - {id: t1, email: old@example.com, displayName: Old}\ngroups: []\n",
    );
    s
}

async fn idsync(s: &Scratch, idp: &FakeAtlassian, args: &[&str]) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_IDP_TOKEN", &idp.config.scim_token)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
    run_beside_fakes(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_source_plans_applies_and_converges() {
    let idp = FakeAtlassian::start(FakeConfig::default()).await;
    for e in ["ana@example.com", "ben@example.com", "cy@example.com"] {
        idp.add_user(SeedUser::new(e));
    }
    let mut gone = SeedUser::new("dee@example.com");
    gone.active = false;
    idp.add_user(gone);
    idp.add_group("engineering", &["ana@example.com", "ben@example.com"]);
    let s = scratch(&idp);

    let (code, plan, stderr) = idsync(&s, &idp, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "+ create_user ana@example.com",
        "+ create_user cy@example.com",
        "- deactivate_user old@example.com",
        "+ add_members engineering (batch 1/1, 2 member(s))",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(
        !plan.contains("create_user dee@example.com"),
        "inactive in the IdP: not created\n{plan}"
    );
    let (code, _, stderr) = idsync(&s, &idp, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, _) = idsync(&s, &idp, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}");
    assert!(
        s.read("atlassian.yaml").contains("externalId:"),
        "the SCIM id is carried as externalId"
    );

    // The second page fails: the plan stops, the target file is untouched.
    idp.set_faults(Faults {
        fail_path_contains: Some(("startIndex=3".into(), usize::MAX)),
        ..Faults::default()
    });
    let before = s.read("atlassian.yaml");
    let (code, _, stderr) = idsync(&s, &idp, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("source `idp` could not be read completely"),
        "{stderr}"
    );
    assert_eq!(s.read("atlassian.yaml"), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_email_is_named_and_kept() {
    let idp = FakeAtlassian::start(FakeConfig::default()).await;
    idp.add_user(SeedUser::new("ana@example.com"));
    let mut svc = SeedUser::new("svc-build@example.com");
    svc.user_name = Some("svc-build".into());
    let svc_id = idp.add_user(svc);
    idp.add_group("engineering", &["ana@example.com", "svc-build"]);
    // The provider holds no email for it any more: only its userName is left.
    idp.state()
        .users
        .iter_mut()
        .find(|u| u.user_name == "svc-build")
        .unwrap()
        .emails
        .clear();
    let s = scratch(&idp);
    s.write(
        "atlassian.yaml",
        &format!("users:\n  - {{id: t1, externalId: {svc_id}, email: svc-build@example.com}}\ngroups: []\n"),
    );
    let (code, plan, stderr) = idsync(&s, &idp, &["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        &format!("source `idp`: 1 user(s) not synced (no email): svc-build (id {svc_id})"),
        "= svc-build@example.com  source `idp` left out svc-build",
        "+ add_members engineering (batch 1/1, 1 member(s))",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    assert!(!plan.contains("- deactivate_user"), "{plan}");
}

/// A SCIM provider may send an unassigned attribute as `null` instead of leaving it out (RFC 7643
/// §2.5). The same provider, read with the fake leaving unset fields out and then sending them as
/// `null` (names, `title`, the enterprise extension, `emails` of a user without any, an empty
/// group's `members`, the `Resources` of the page past the end), plans byte-identically, and
/// converges in `null` mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_nulls_plan_exactly_like_missing_fields_and_converge() {
    let idp = FakeAtlassian::start(FakeConfig::default()).await;
    let mut ana = SeedUser::new("ana@example.com");
    ana.given_name = Some("Ana".into());
    idp.add_user(ana);
    let mut ben = SeedUser::new("ben@example.com");
    ben.title = Some("Engineer".into());
    ben.department = Some("R&D".into());
    idp.add_user(ben);
    let mut svc = SeedUser::new("svc-build@example.com");
    svc.user_name = Some("svc-build".into());
    idp.add_user(svc);
    idp.state()
        .users
        .iter_mut()
        .find(|u| u.user_name == "svc-build")
        .unwrap()
        .emails
        .clear();
    idp.add_user(SeedUser::new("cy@example.com"));
    idp.add_group("engineering", &["ana@example.com", "ben@example.com"]);
    idp.add_group("empty", &[]);
    let s = scratch(&idp);
    let text = s.read("idsync.yaml").replace(
        "groups:\n",
        "users:\n  attributes: {displayName: \"{givenName} {familyName}\", title: \"{title}\", department: \"{department}\"}\ngroups:\n",
    );
    s.write("idsync.yaml", &text);

    let mut plans = Vec::new();
    for explicit_nulls in [false, true] {
        idp.state().config.explicit_nulls = explicit_nulls;
        let mut outputs = Vec::new();
        for format in ["text", "json", "markdown"] {
            let (code, plan, stderr) = idsync(&s, &idp, &["plan", "--format", format]).await;
            assert_eq!(code, 0, "explicit_nulls {explicit_nulls}: {stderr}");
            outputs.push(plan);
        }
        plans.push(outputs);
    }
    assert_eq!(plans[0], plans[1], "nulls changed the plan");
    let plan = &plans[1][0];
    for expected in [
        "+ create_user ben@example.com",
        "+ create_group empty",
        "1 user(s) not synced (no email): svc-build",
    ] {
        assert!(plan.contains(expected), "missing {expected:?} in\n{plan}");
    }
    // 4 users in pages of 2: the page past the end was read too, with `Resources: null`.
    assert!(idp
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/Users") && r.query.contains("startIndex=5")));

    let (code, _, stderr) = idsync(&s, &idp, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, again, stderr) = idsync(&s, &idp, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged?\n{again}\n{stderr}");
    let target = s.read("atlassian.yaml");
    assert!(
        target.contains("department: R&D") && target.contains("displayName: Ana"),
        "{target}"
    );
}
