//! `idsync show PLAN_FILE`: a saved plan drawn from the file alone; its seal checked and an untrusted
//! plan marked; the format-version rule (a later 2.x is read, another major refused, a 2.0 plan still
//! read); exit codes.

use serde_json::Value;

use crate::support::{repo, run, Scratch};

/// A quickstart plan saved to plan.json, then every other file removed: `show` needs none of them.
fn saved_alone(key: Option<&str>) -> Scratch {
    let s = Scratch::quickstart();
    let mut c = s.idsync(&["plan", "--out", "plan.json", "-q"]);
    match key {
        Some(k) => c.env("IDSYNC_PLAN_KEY", k),
        None => c.env_remove("IDSYNC_PLAN_KEY"),
    };
    let (code, _, stderr) = run(&s, &mut c);
    assert_eq!(code, 0, "{stderr}");
    for f in ["idsync.yaml", "idp.yaml", "atlassian.yaml"] {
        std::fs::remove_file(s.path(f)).unwrap();
    }
    s
}

fn show(s: &Scratch, args: &[&str], key: Option<&str>) -> (i32, String, String) {
    let mut all = vec!["show"];
    all.extend_from_slice(args);
    let mut c = s.idsync(&all);
    match key {
        Some(k) => c.env("IDSYNC_PLAN_KEY", k),
        None => c.env_remove("IDSYNC_PLAN_KEY"),
    };
    run(s, &mut c)
}

/// This idsync's version, as `[VERSION]` (other versions, such as one a plan names, stay).
pub fn version_filter() -> Vec<(&'static str, &'static str)> {
    vec![(
        concat!(r"idsync ", env!("CARGO_PKG_VERSION"), r"\b"),
        "idsync [VERSION]",
    )]
}

#[test]
fn show_needs_only_the_plan_file() {
    let s = saved_alone(None);
    let (code, text, stderr) = show(&s, &["plan.json"], None);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "");
    assert!(
        text.starts_with("Saved plan plan.json\n  made 2026-11-22T00:00:00Z by idsync "),
        "{text}"
    );
    assert!(
        text.contains("  source okta (file): 13 user(s), 4 group(s), 0 record(s) left out\n"),
        "{text}"
    );
    assert!(
        text.contains("- deactivate_user harry@example.com"),
        "{text}"
    );
    for format in ["markdown", "json", "summary"] {
        let (code, out, stderr) = show(&s, &["plan.json", "--format", format], None);
        assert_eq!(code, 0, "{format}: {stderr}");
        assert!(!out.is_empty());
    }
    let (_, json, _) = show(&s, &["plan.json", "--format", "json"], None);
    assert_eq!(json, s.read("plan.json"), "the file as written");
    let (_, summary, _) = show(&s, &["plan.json", "--format", "summary"], None);
    insta::with_settings!({filters => version_filter()}, {
        insta::assert_snapshot!("show_quickstart_summary", summary);
    });
    // Nothing else appeared either (no journal, no lock).
    let mut left: Vec<String> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["plan.json"]);
}

#[test]
fn detailed_exitcode_says_whether_a_saved_plan_has_changes() {
    let s = saved_alone(None);
    let (code, ..) = show(&s, &["plan.json", "--detailed-exitcode"], None);
    assert_eq!(code, 2, "changes present");
    let (code, ..) = show(
        &s,
        &["plan.json", "--format", "summary", "--detailed-exitcode"],
        None,
    );
    assert_eq!(code, 2);
    let (code, ..) = show(&s, &["plan.json"], None);
    assert_eq!(code, 0, "changes, without --detailed-exitcode");

    // A converged world: its plan has no changes.
    let c = Scratch::quickstart();
    let (code, _, err) = run(&c, &mut c.idsync(&["apply", "--auto-approve", "-q"]));
    assert_eq!(code, 0, "{err}");
    let (code, json, _) = run(&c, &mut c.idsync(&["plan", "--format", "json"]));
    assert_eq!(code, 0);
    c.write("drift.json", &json);
    let (code, summary, _) = show(&c, &["drift.json", "--detailed-exitcode", "-q"], None);
    assert_eq!(code, 0, "no changes");
    assert!(summary.contains("No changes."), "{summary}");

    // Errors are 1, never 2.
    let (code, _, err) = show(&s, &["missing.json", "--detailed-exitcode"], None);
    assert_eq!(code, 1);
    assert!(err.contains("cannot use plan file missing.json"), "{err}");
    s.write(
        "broken.json",
        "{\"format_version\": \"2.1\", \"actions\": [",
    );
    let (code, _, err) = show(&s, &["broken.json", "--detailed-exitcode"], None);
    assert_eq!(code, 1);
    assert!(err.contains("not JSON"), "{err}");
    s.write("other.json", "{\"format_version\": \"2.1\", \"hello\": 1}");
    let (code, _, err) = show(&s, &["other.json", "--detailed-exitcode"], None);
    assert_eq!(code, 1);
    assert!(err.contains("not a valid plan of format 2.1"), "{err}");
}

#[test]
fn an_edited_plan_is_shown_marked_and_fails() {
    let s = saved_alone(None);
    let original = s.read("plan.json");
    s.write(
        "plan.json",
        &original.replace("\"id\": \"scim-frank\"", "\"id\": \"scim-kim\""),
    );
    let (code, text, stderr) = show(&s, &["plan.json"], None);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("!!! THIS PLAN FILE CANNOT BE TRUSTED: its content does not match its digest: it was edited after it was made.\n!!! What follows may not be what idsync planned; `idsync apply` refuses this file.\n\nSaved plan plan.json\n"),
        "{text}"
    );
    assert!(
        text.contains("  CANNOT BE TRUSTED: its content does not match its digest"),
        "{text}"
    );
    assert!(
        text.contains("- deactivate_user frank@example.com"),
        "still shown"
    );
    insta::assert_snapshot!("show_edited_plan_stderr", stderr);

    let (code, md, _) = show(&s, &["plan.json", "--format", "markdown"], None);
    assert_eq!(code, 1);
    assert!(
        md.starts_with("> [!CAUTION]\n> **This plan file cannot be trusted:** its content does not match its digest"),
        "{md}"
    );
    let (code, summary, _) = show(&s, &["plan.json", "--format", "summary"], None);
    assert_eq!(code, 1);
    assert!(
        summary.starts_with("!!! THIS PLAN FILE CANNOT BE TRUSTED")
            && summary.contains("\ndeactivate_user: 3\n"),
        "{summary}"
    );
    // JSON stays the file; the error says it.
    let (code, json, err) = show(&s, &["plan.json", "--format", "json"], None);
    assert_eq!(code, 1);
    assert_eq!(json, s.read("plan.json"));
    assert!(err.contains("cannot be trusted"), "{err}");
    // --detailed-exitcode does not turn it into "changes".
    let (code, ..) = show(&s, &["plan.json", "--detailed-exitcode"], None);
    assert_eq!(code, 1);
    // Re-indenting is not editing: the seal covers the content, not the layout.
    let v: Value = serde_json::from_str(&original).unwrap();
    s.write("plan.json", &serde_json::to_string(&v).unwrap());
    let (code, _, err) = show(&s, &["plan.json"], None);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn show_checks_the_signature_when_a_key_is_set() {
    let s = saved_alone(Some("the-reviewed-jobs-key"));
    let (code, text, err) = show(&s, &["plan.json"], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("plan.json is signed, but IDSYNC_PLAN_KEY is not set here: the signature was not checked"),
        "{err}"
    );
    assert!(
        text.contains("  digest matches the content; signed, but IDSYNC_PLAN_KEY is not set here, so the signature was not checked\n"),
        "{text}"
    );
    let (code, text, err) = show(&s, &["plan.json"], Some("the-reviewed-jobs-key"));
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("  digest matches the content; signature valid for IDSYNC_PLAN_KEY\n"),
        "{text}"
    );
    let (code, text, err) = show(&s, &["plan.json"], Some("someone-elses-key"));
    assert_eq!(code, 1);
    assert!(
        text.starts_with(
            "!!! THIS PLAN FILE CANNOT BE TRUSTED: its signature does not match IDSYNC_PLAN_KEY"
        ),
        "{text}"
    );
    assert!(err.contains("cannot be trusted"), "{err}");
    let u = saved_alone(None);
    let (code, _, err) = show(&u, &["plan.json"], Some("the-reviewed-jobs-key"));
    assert_eq!(code, 1);
    assert!(
        err.contains("it is not signed, and IDSYNC_PLAN_KEY is set"),
        "{err}"
    );
    let (code, _, err) = show(&u, &["plan.json"], Some(""));
    assert_eq!(code, 1);
    assert!(err.contains("IDSYNC_PLAN_KEY is set but empty"), "{err}");
}

#[test]
fn a_plan_of_another_major_format_is_refused_naming_its_idsync() {
    let s = saved_alone(None);
    let mut v: Value = serde_json::from_str(&s.read("plan.json")).unwrap();
    v["format_version"] = "3.0".into();
    v["idsync_version"] = "7.1.0".into();
    s.write("plan.json", &serde_json::to_string_pretty(&v).unwrap());
    let (code, out, err) = show(&s, &["plan.json"], None);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    insta::with_settings!({filters => version_filter()}, {
        insta::assert_snapshot!("show_newer_major", err);
    });
    v["format_version"] = "1".into();
    v["idsync_version"] = "0.0.9".into();
    s.write("plan.json", &serde_json::to_string_pretty(&v).unwrap());
    let (code, _, err) = show(&s, &["plan.json"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("plan format 1 is older than this idsync reads")
            && err.contains("use idsync 0.0.9 to show or apply it"),
        "{err}"
    );
    v["format_version"] = "two".into();
    s.write("plan.json", &serde_json::to_string_pretty(&v).unwrap());
    let (code, _, err) = show(&s, &["plan.json"], None);
    assert_eq!(code, 1);
    assert!(err.contains("is not MAJOR.MINOR"), "{err}");

    // apply refuses it the same way, before reading anything else.
    let a = Scratch::quickstart();
    v["format_version"] = "3.0".into();
    v["idsync_version"] = "7.1.0".into();
    a.write("plan.json", &serde_json::to_string_pretty(&v).unwrap());
    let (code, _, err) = run(&a, &mut a.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("plan format 3.0 is newer than this idsync reads")
            && err.contains("the plan was made by idsync 7.1.0"),
        "{err}"
    );
}

/// A plan of a later minor format: fields and reason codes this idsync does not know are covered by
/// the seal, shown in JSON, ignored otherwise; `apply` applies it.
#[test]
fn a_later_minor_format_is_read_and_applied() {
    let s = Scratch::quickstart();
    let (code, _, err) = run(&s, &mut s.idsync(&["plan", "--out", "plan.json", "-q"]));
    assert_eq!(code, 0, "{err}");
    let mut v: Value = serde_json::from_str(&s.read("plan.json")).unwrap();
    v["format_version"] = "2.9".into();
    v["approved_by"] = "a field of format 2.9".into();
    v["actions"][0]["reason_code"] = "a_code_of_format_2_9".into();
    v["actions"][0]["risk"] = serde_json::json!({"score": 1});
    idsync::engine::saved_file::seal_json(&mut v, None);
    s.write("plan.json", &serde_json::to_string_pretty(&v).unwrap());

    let (code, summary, err) = run(
        &s,
        &mut s.idsync(&["show", "plan.json", "--format", "summary"]),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("plan.json is of plan format 2.9, made by idsync")
            && err.contains("so what the newer format added is not shown"),
        "{err}"
    );
    assert!(summary.starts_with("create_user: 1\n"), "{summary}");
    let (_, json, _) = run(
        &s,
        &mut s.idsync(&["show", "plan.json", "--format", "json"]),
    );
    assert!(
        json.contains("\"approved_by\": \"a field of format 2.9\""),
        "{json}"
    );

    // An unknown field edited is an edit.
    let mut edited = v.clone();
    edited["approved_by"] = "someone else".into();
    s.write(
        "edited.json",
        &serde_json::to_string_pretty(&edited).unwrap(),
    );
    let (code, _, err) = run(&s, &mut s.idsync(&["show", "edited.json"]));
    assert_eq!(code, 1, "{err}");

    let (code, _, err) = run(&s, &mut s.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("what the newer format added is ignored"),
        "{err}"
    );
    let (code, ..) = run(&s, &mut s.idsync(&["plan", "--detailed-exitcode"]));
    assert_eq!(code, 0, "converged");
}

/// A plan of format 2.0, as the idsync before 2.1 wrote it (tests/fixtures/plan-format-2/, with the
/// quickstart files it was made from): still read, its seal checked as it was made, and applied.
#[test]
fn a_format_2_0_plan_is_still_read_and_applied() {
    let s = Scratch::new();
    let dir = repo().join("tests/fixtures/plan-format-2");
    for f in ["idsync.yaml", "idp.yaml", "atlassian.yaml", "plan.json"] {
        std::fs::copy(dir.join(f), s.path(f)).unwrap();
    }
    let fixture = s.read("plan.json");
    let (code, text, err) = show(&s, &["plan.json"], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.starts_with("Saved plan plan.json\n  made at a time not recorded by idsync 0.1.0, plan format 2\n  target file:atlassian.yaml\n  sources not recorded (plan format 2.0)\n  digest matches the content; not signed\n"),
        "{text}"
    );
    let (code, summary, _) = show(&s, &["plan.json", "--format", "summary"], None);
    assert_eq!(code, 0);
    assert!(summary.contains("\ntotal: 15\n"), "{summary}");
    // Its seal still catches an edit.
    s.write(
        "plan.json",
        &fixture.replace("\"id\": \"scim-frank\"", "\"id\": \"scim-kim\""),
    );
    let (code, _, err) = show(&s, &["plan.json"], None);
    assert_eq!(code, 1);
    assert!(err.contains("does not match its digest"), "{err}");
    let (code, _, err) = run(&s, &mut s.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 1);
    assert!(err.contains("does not match its digest"), "{err}");
    // As made, it applies.
    s.write("plan.json", &fixture);
    let (code, _, err) = run(&s, &mut s.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 0, "{err}");
    let (code, ..) = run(&s, &mut s.idsync(&["plan", "--detailed-exitcode"]));
    assert_eq!(code, 0, "converged");
}

#[test]
fn the_readme_documents_every_reason_code_and_the_format_version() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for code in idsync::plan::ReasonCode::ALL {
        assert!(
            readme.contains(&format!("| `{}` |", code.as_str())),
            "README's reason code table lacks {}",
            code.as_str()
        );
    }
    assert!(
        readme.contains(&format!(
            "`format_version` {}",
            idsync::plan::FORMAT_VERSION
        )),
        "README names the current plan format"
    );
}

/// The reason codes the render scenarios do not reach, each from the rule that makes it.
#[test]
fn reason_codes_name_the_rule_at_work() {
    let config = r#"version: 1
sources:
  - {name: okta, type: file, path: idp.yaml}
target: {type: file, path: atlassian.yaml}
users:
  require_groups: ["okta:Staff"]
groups:
  mappings: [{from: "okta:Staff", to: staff}]
  manage_unmapped_members: true
cleanup:
  deactivate_missing: true
  max_deactivations: 100%
  max_membership_removals: 100%
"#;
    let idp = r"users:
  - {id: u1, email: ana@example.com}
  - {id: u2, email: ben@example.com}
  - {id: u3, email: cy@elsewhere.example}
  - {id: u4, email: dee@example.com}
groups:
  - {name: Staff, members: [ana@example.com, cy@elsewhere.example, dee@example.com]}
";
    let target = r"users:
  - {id: s1, email: ana@example.com}
  - {id: s2, externalId: u2, email: ben@example.com}
  - {id: s3, email: zed@example.com}
  - {id: s4, email: dee@example.com, in_directory: false, owned_by_directory: Corporate Okta}
groups:
  - {name: staff, id: g1, members: [ana@example.com, zed@example.com]}
verified_domains: [example.com]
";
    let s = Scratch::new();
    s.write("idsync.yaml", config)
        .write("idp.yaml", idp)
        .write("atlassian.yaml", target);
    // (code, subject) for every reason in the plan.
    let codes = |s: &Scratch| {
        let (code, json, err) = run(s, &mut s.idsync(&["plan", "--format", "json"]));
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&json).unwrap();
        let mut out = std::collections::BTreeSet::new();
        for a in v["actions"].as_array().unwrap() {
            let subject = a.get("key").or(a.get("group")).unwrap().as_str().unwrap();
            out.insert((
                a["reason_code"].as_str().unwrap().to_string(),
                subject.to_string(),
            ));
            for m in a
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.insert((
                    m["reason_code"].as_str().unwrap().to_string(),
                    format!("{subject} member {}", m["key"].as_str().unwrap()),
                ));
            }
            for c in a
                .get("changes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.insert((
                    c["reason_code"].as_str().unwrap().to_string(),
                    format!("{subject} {}", c["field"].as_str().unwrap()),
                ));
            }
        }
        for k in v["skipped"].as_array().unwrap() {
            out.insert((
                k["reason_code"].as_str().unwrap().to_string(),
                k["key"].as_str().unwrap().to_string(),
            ));
        }
        out
    };
    let got = codes(&s);
    for want in [
        ("immutable_id", "ana@example.com externalId"),
        ("fields_differ", "ana@example.com"),
        ("not_in_required_groups", "ben@example.com"),
        ("gone_from_sources", "zed@example.com"),
        ("unmanaged_member", "staff member zed@example.com"),
        ("no_longer_derived", "staff"),
        ("domain_not_verified", "cy@elsewhere.example"),
        ("other_directory", "dee@example.com"),
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} not in {got:#?}"
        );
    }
    s.write(
        "idsync.yaml",
        &config.replace("deactivate_missing: true", "deactivate_missing: false"),
    );
    let got = codes(&s);
    for key in ["ben@example.com", "zed@example.com"] {
        assert!(
            got.contains(&("deactivate_missing_off".to_string(), key.to_string())),
            "{key} not in {got:#?}"
        );
    }
}

/// `show --format markdown` renders with the same budget as `plan` (`--markdown-limit`, with its
/// minimum a usage error). (Its elision notes name the file it read: `render::markdown` with
/// `plan_file`, unit-tested in `src/render/markdown.rs`.)
#[test]
fn show_markdown_takes_the_limit_plan_takes() {
    let s = saved_alone(None);
    let (code, full, stderr) = show(&s, &["plan.json", "--format", "markdown"], None);
    assert_eq!(code, 0, "{stderr}");
    let (code, same, _) = show(
        &s,
        &[
            "plan.json",
            "--format",
            "markdown",
            "--markdown-limit",
            "400000",
        ],
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(same, full, "a plan that fits is drawn whole at any limit");
    let (code, _, stderr) = show(
        &s,
        &[
            "plan.json",
            "--format",
            "markdown",
            "--markdown-limit",
            "100",
        ],
        None,
    );
    assert_eq!(
        code, 1,
        "a limit below the minimum is a usage error: {stderr}"
    );
    assert!(stderr.contains("--markdown-limit"), "{stderr}");
}
