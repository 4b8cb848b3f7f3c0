//! Every rendering (text, markdown, json) pinned over a handful of scenarios.

use crate::support::{run, Scratch};

const CONFIG: &str = r#"version: 1
sources:
  - {name: okta, type: file, path: idp.yaml}
target: {type: file, path: atlassian.yaml}
users:
  attributes:
    displayName: "{givenName} {familyName}"
    title: "{title}"
groups:
  mappings:
    - {from: "okta:Engineering", to: engineering}
    - {from_regex: "^okta:team-(.+)$", to: "team-$1"}
  default_groups: [all-staff]
cleanup:
  grace_days: 14
  protect: ["breakglass@example.com"]
  max_deactivations: 50%
"#;

/// Plans one scenario in every format; returns the three renderings and the plan's exit code.
fn scenario(name: &str, config: &str, idp: &str, atlassian: &str) -> i32 {
    let s = Scratch::new();
    s.write("idsync.yaml", config)
        .write("idp.yaml", idp)
        .write("atlassian.yaml", atlassian);
    let mut code = None;
    let mut outputs = std::collections::BTreeMap::new();
    for format in ["text", "markdown", "json"] {
        let (c, stdout, _) = run(&s, &mut s.idsync(&["plan", "--format", format]));
        outputs.insert(format, stdout.clone());
        if let Some(prev) = code {
            assert_eq!(prev, c, "exit code differs between formats");
        }
        code = Some(c);
        insta::with_settings!({filters => vec![(r#""idsync_version": "[^"]+""#, r#""idsync_version": "[VERSION]""#), (r"idsync \d+\.\d+\.\d+\S*", "idsync [VERSION]"), (r#""digest": "[0-9a-f]{64}""#, r#""digest": "[DIGEST]""#)]}, {
            insta::assert_snapshot!(format!("{name}.{format}"), stdout);
        });
    }
    // Nothing is ever written by a plan.
    assert_eq!(s.read("atlassian.yaml"), atlassian);
    shown(name, &s, &outputs);
    code.unwrap()
}

/// The scenario's plan, saved as JSON (as a drift job or `plan --out` saves it), then drawn by
/// `idsync show` in every format: markdown and JSON exactly as `plan` drew them, text as `plan`
/// drew it under a header saying where the plan came from; the header and the summary are pinned.
/// The saved plan matches the plan schema, and every reason in it carries its code.
fn shown(name: &str, s: &Scratch, plan_output: &std::collections::BTreeMap<&str, String>) {
    s.write("plan.json", &plan_output["json"]);
    crate::schema_sync::assert_valid_plan(&plan_output["json"]);
    let value: serde_json::Value = serde_json::from_str(&plan_output["json"]).unwrap();
    every_reason_has_a_code(&value, "plan");
    let show = |format: &str| {
        let (code, stdout, stderr) =
            run(s, &mut s.idsync(&["show", "plan.json", "--format", format]));
        assert_eq!(code, 0, "show --format {format}: {stderr}");
        assert_eq!(stderr, "", "show --format {format}");
        stdout
    };
    assert_eq!(show("markdown"), plan_output["markdown"]);
    assert_eq!(show("json"), plan_output["json"]);
    let text = show("text");
    let header = text
        .strip_suffix(plan_output["text"].as_str())
        .unwrap_or_else(|| panic!("show's text ends with plan's text:\n{text}"));
    let summary = show("summary");
    insta::with_settings!({filters => crate::show::version_filter()}, {
        insta::assert_snapshot!(format!("{name}.show"), format!("{header}---\n{summary}"));
    });
}

/// Every object with a `reason` has a `reason_code` next to it, and it is not `unknown`.
fn every_reason_has_a_code(v: &serde_json::Value, at: &str) {
    match v {
        serde_json::Value::Object(m) => {
            if m.contains_key("reason") {
                let code = m.get("reason_code").and_then(serde_json::Value::as_str);
                assert!(
                    code.is_some_and(|c| c != "unknown"),
                    "{at}: a reason without its code: {v}"
                );
            }
            for (k, x) in m {
                every_reason_has_a_code(x, &format!("{at}.{k}"));
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                every_reason_has_a_code(x, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn new_hires() {
    let idp = r"users:
  - {id: u1, email: ana@example.com, givenName: Ana, familyName: Silva, attributes: {title: Engineer}}
  - {id: u2, email: Ben@Example.com, givenName: Ben, familyName: Okafor, attributes: {title: Designer}}
  - {id: u3, email: cy@example.com, givenName: Cy, familyName: Vance}
groups:
  - {name: Engineering, members: [ana@example.com]}
  - {name: team-design, members: [ben@example.com]}
";
    let target = r"users:
  - {id: s3, externalId: u3, email: cy@example.com, givenName: Cy, familyName: Vance, displayName: Cy Vance}
groups:
  - {name: all-staff, id: g1, members: [cy@example.com]}
";
    assert_eq!(scenario("new_hires", CONFIG, idp, target), 0);
}

#[test]
fn leavers() {
    let idp = r"users:
  - {id: u1, email: ana@example.com, givenName: Ana, familyName: Silva}
  - {id: u2, email: ben@example.com, givenName: Ben, familyName: Okafor, active: false}
groups: []
";
    let target = r"users:
  - {id: s1, externalId: u1, email: ana@example.com, givenName: Ana, familyName: Silva, displayName: Ana Silva}
  - {id: s2, externalId: u2, email: ben@example.com, givenName: Ben, familyName: Okafor, displayName: Ben Okafor, last_active: 2026-01-05T10:00:00Z}
  - {id: s3, email: old@example.com, displayName: Old Timer, last_active: 2025-06-01T10:00:00Z}
  - {id: s4, email: recent@example.com, displayName: Recent Leaver, last_active: 2026-11-20T10:00:00Z}
  - {id: s5, email: nodate@example.com, displayName: No Date}
groups:
  - {name: all-staff, id: g1, members: [ana@example.com, ben@example.com, old@example.com]}
";
    assert_eq!(scenario("leavers", CONFIG, idp, target), 0);
}

#[test]
fn api_tokens_revoked() {
    // With revoke_api_tokens: a leaver deactivated now, and one deactivated earlier whose tokens
    // are still live (a revocation that failed): both get a revocation.
    let config = CONFIG.replace(
        "  max_deactivations: 50%\n",
        "  max_deactivations: 50%\n  revoke_api_tokens: true\n",
    );
    let idp = r"users:
  - {id: u1, email: ana@example.com, givenName: Ana, familyName: Silva}
groups: []
";
    let target = r"users:
  - {id: s1, externalId: u1, email: ana@example.com, givenName: Ana, familyName: Silva, displayName: Ana Silva, api_tokens: 1, account_id: acc-ana}
  - {id: s2, email: old@example.com, displayName: Old Timer, last_active: 2025-06-01T10:00:00Z, api_tokens: 2, account_id: acc-old}
  - {id: s3, email: gone@example.com, displayName: Long Gone, active: false, api_tokens: 3, account_id: acc-gone}
  - {id: s4, email: quiet@example.com, displayName: Quiet Leaver, active: false, account_id: acc-quiet}
groups: []
";
    assert_eq!(scenario("api_tokens_revoked", &config, idp, target), 0);
}

#[test]
fn renames() {
    let idp = r"users:
  - {id: u1, email: ana.silva-costa@example.com, givenName: Ana, familyName: Silva-Costa, attributes: {title: Staff Engineer}}
groups:
  - {name: Engineering, members: [ana.silva-costa@example.com]}
";
    let target = r"users:
  - {id: s1, externalId: u1, email: ana@example.com, givenName: Ana, familyName: Silva, displayName: Ana Silva, attributes: {title: Engineer}}
groups:
  - {name: engineering, id: g1, members: [ana@example.com]}
  - {name: all-staff, id: g2, members: [ana@example.com]}
";
    assert_eq!(scenario("renames", CONFIG, idp, target), 0);
}

#[test]
fn group_moves() {
    let idp = r"users:
  - {id: u1, email: ana@example.com, givenName: Ana, familyName: Silva}
  - {id: u2, email: ben@example.com, givenName: Ben, familyName: Okafor}
groups:
  - {name: Engineering, members: [ben@example.com]}
  - {name: team-sre, members: [ana@example.com]}
";
    let target = r"users:
  - {id: s1, externalId: u1, email: ana@example.com, givenName: Ana, familyName: Silva, displayName: Ana Silva}
  - {id: s2, externalId: u2, email: ben@example.com, givenName: Ben, familyName: Okafor, displayName: Ben Okafor}
  - {id: s9, email: local@example.com, displayName: Local Account}
groups:
  - {name: engineering, id: g1, members: [ana@example.com, local@example.com]}
  - {name: team-platform, id: g3, members: [ben@example.com]}
  - {name: all-staff, id: g2, members: [ana@example.com, ben@example.com]}
";
    let config = CONFIG.replace(
        "protect: [\"breakglass@example.com\"]",
        "protect: [\"breakglass@example.com\", \"local@example.com\"]",
    );
    assert_eq!(scenario("group_moves", &config, idp, target), 0);
}

#[test]
fn protected_and_admins() {
    let idp = r"users:
  - {id: u1, email: breakglass@example.com, givenName: Break, familyName: Glass}
  - {id: u2, email: boss@example.com, givenName: Big, familyName: Boss}
groups:
  - {name: Engineering, members: [breakglass@example.com, boss@example.com]}
";
    let target = r"users:
  - {id: s1, email: breakglass@example.com, displayName: Emergency, active: false}
  - {id: s2, email: boss@example.com, displayName: Boss, admin: true}
  - {id: s3, email: siteadmin@example.com, displayName: Site Admin, admin: true, last_active: 2024-01-01T00:00:00Z}
groups: []
";
    assert_eq!(scenario("protected_and_admins", CONFIG, idp, target), 0);
}

#[test]
fn guard_tripped() {
    let idp = "users:\n  - {id: u1, email: ana@example.com}\ngroups: []\n";
    let mut target = String::from("users:\n  - {id: s1, externalId: u1, email: ana@example.com}\n");
    for i in 0..4 {
        target.push_str(&format!(
            "  - {{id: x{i}, email: gone{i}@example.com, last_active: 2025-01-01T00:00:00Z}}\n"
        ));
    }
    target.push_str("groups: []\n");
    let config = CONFIG.replace("max_deactivations: 50%", "max_deactivations: 2");
    assert_eq!(scenario("guard_tripped", &config, idp, &target), 1);
}

/// A mapping pointed at the wrong IdP group: four of the five members of `engineering` would be
/// removed, and a template typo updates every user. The membership-removal guards (plan-wide and
/// for the group) and the update guard trip; the explicit flags let the plan through.
#[test]
fn membership_and_update_guards_tripped() {
    let names = ["ana", "ben", "cy", "dee", "eve"];
    let mut idp = String::from("users:\n");
    let mut target = String::from("users:\n");
    for (i, n) in names.iter().enumerate() {
        idp.push_str(&format!(
            "  - {{id: u{i}, email: {n}@example.com, givenName: {n}, familyName: X}}\n"
        ));
        target.push_str(&format!(
            "  - {{id: s{i}, externalId: u{i}, email: {n}@example.com, givenName: {n}, familyName: X, displayName: {n} X}}\n"
        ));
    }
    idp.push_str("groups:\n  - {name: Engineering-Leads, members: [ana@example.com]}\n");
    target.push_str("groups:\n  - {name: engineering, id: g1, members: [ana@example.com, ben@example.com, cy@example.com, dee@example.com, eve@example.com]}\n");
    let config = CONFIG
        .replace("okta:Engineering\"", "okta:Engineering-Leads\"")
        .replace("{givenName} {familyName}", "{familyName} {givenName}")
        .replace("default_groups: [all-staff]", "default_groups: []")
        .replace("protect: [\"breakglass@example.com\"]", "protect: []");
    assert_eq!(
        scenario(
            "membership_and_update_guards_tripped",
            &config,
            &idp,
            &target
        ),
        1
    );

    let s = Scratch::new();
    s.write("idsync.yaml", &config)
        .write("idp.yaml", &idp)
        .write("atlassian.yaml", &target);
    let (code, _, err) = run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("error: the plan trips its guards:\n  - 5 user update(s), at most 3 allowed")
            && err.contains(
                "  - 4 of the 5 member(s) of group engineering removed, at most 3 allowed"
            )
            && err
                .contains("run again with --allow-mass-update and --allow-mass-membership-removal"),
        "{err}"
    );
    let (code, out, err) = run(&s, &mut s.idsync(&["plan", "--allow-mass-update"]));
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("--allow-mass-membership-removal") && !err.contains("--allow-mass-update,"),
        "{err}"
    );
    let (code, out, err) = run(
        &s,
        &mut s.idsync(&[
            "plan",
            "--allow-mass-update",
            "--allow-mass-membership-removal",
        ]),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.matches("GUARD OVERRIDDEN").count(),
        3,
        "updates, removals, removals in engineering:\n{out}"
    );
}

#[test]
fn markdown_stays_under_the_comment_limit() {
    let mut idp = String::from("users:\n");
    let mut members = Vec::new();
    for i in 0..3000 {
        idp.push_str(&format!("  - {{id: u{i}, email: person{i:05}@example.com, givenName: Person, familyName: Number{i}}}\n"));
        members.push(format!("person{i:05}@example.com"));
    }
    idp.push_str(&format!(
        "groups:\n  - {{name: Engineering, members: [{}]}}\n",
        members.join(", ")
    ));
    let s = Scratch::new();
    s.write("idsync.yaml", CONFIG)
        .write("idp.yaml", &idp)
        .write("atlassian.yaml", "users: []\ngroups: []\n");
    let (code, md, _) = run(&s, &mut s.idsync(&["plan", "--format", "markdown"]));
    assert_eq!(code, 0);
    assert!(
        md.chars().count() <= idsync::render::MARKDOWN_LIMIT,
        "{} chars",
        md.chars().count()
    );
    assert!(
        md.contains("more line(s) not shown"),
        "elision is announced"
    );
    assert!(md.contains("| create_user "), "the summary table survives");
    assert!(
        md.contains("| 3000 |") || md.contains("3000"),
        "counts are exact despite elision"
    );
    // Every <details> is closed and every code fence is balanced.
    assert_eq!(
        md.matches("<details>").count(),
        md.matches("</details>").count()
    );
    assert_eq!(md.matches("```").count() % 2, 0);
}

#[test]
fn two_sources_merge_by_email_in_order() {
    let config = r#"version: 1
sources:
  - {name: okta, type: file, path: okta.yaml}
  - {name: google, type: file, path: google.yaml}
target: {type: file, path: atlassian.yaml}
groups:
  mappings:
    - {from: "okta:Engineering", to: engineering}
    - {from: "google:eng-team", to: engineering}
    - {from: "google:Sales", to: sales}
"#;
    let okta = r"users:
  - {id: o1, email: ana@example.com, givenName: Ana, familyName: Silva, displayName: Ana Silva}
groups:
  - {name: Engineering, members: [ana@example.com]}
";
    // Google disagrees on Ana's family name (okta wins, with a warning), adds Ben, and puts Ana in Sales.
    let google = r"users:
  - {id: g1, email: ANA@example.com, givenName: Ana, familyName: Silva-Costa}
  - {id: g2, email: ben@example.com, givenName: Ben, familyName: Okafor, displayName: Ben Okafor}
groups:
  - {name: eng-team, members: [ben@example.com]}
  - {name: Sales, members: [ana@example.com]}
";
    let s = Scratch::new();
    s.write("idsync.yaml", config)
        .write("okta.yaml", okta)
        .write("google.yaml", google)
        .write("atlassian.yaml", "users: []\ngroups: []\n");
    let (code, text, stderr) = run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("two_sources.text", text);
}

#[test]
fn plans_are_deterministic_and_colour_is_optional() {
    let s = Scratch::quickstart();
    let (_, a, _) = run(&s, &mut s.idsync(&["plan", "--format", "json"]));
    let (_, b, _) = run(&s, &mut s.idsync(&["plan", "--format", "json"]));
    assert_eq!(a, b, "the same inputs give byte-identical plans");
    let (_, plain, _) = run(&s, &mut s.idsync(&["plan", "--color", "never"]));
    let (_, coloured, _) = run(&s, &mut s.idsync(&["plan", "--color", "always"]));
    assert!(!plain.contains('\u{1b}'));
    assert!(
        coloured.contains("\u{1b}["),
        "--color always colours even into a pipe"
    );
    let strip = regex::Regex::new("\u{1b}\\[[0-9;]*m").unwrap();
    assert_eq!(
        strip.replace_all(&coloured, ""),
        plain,
        "colour changes nothing but colour"
    );
    let (_, json_coloured, _) = run(
        &s,
        &mut s.idsync(&["plan", "--color", "always", "--format", "json"]),
    );
    assert!(!json_coloured.contains('\u{1b}'), "JSON is never coloured");
}

/// A source that left records out (users without email, members that are not users) and has two
/// groups per name: the warnings, the accounts kept rather than taken for gone, and the reasons
/// naming a group referred to by id.
#[test]
fn left_out_and_shared_names() {
    let config = r#"version: 1
sources:
  - {name: okta, type: file, path: idp.yaml}
target: {type: file, path: atlassian.yaml}
users:
  exclude: ["*@contractors.example.com"]
groups:
  mappings:
    - {from: "okta:id:g2", to: engineering}
    - {from_regex: "^okta:team-(.+)$", to: "team-$1"}
cleanup:
  max_deactivations: 100%
"#;
    let idp = r#"users:
  - {id: u1, email: ana@example.com, givenName: Ana, familyName: Silva}
  - {id: u2, email: ben@example.com, givenName: Ben, familyName: Okafor}
groups:
  - {name: Engineering, id: g1, members: [ben@example.com]}
  - {name: Engineering, id: g2, members: [ana@example.com]}
  - {name: team-ops, id: g3, members: [ana@example.com]}
  - {name: team-ops, id: g4, members: [ben@example.com]}
skipped:
  - {kind: user, id: u7, name: kiosk-07, reason: no email}
  - {kind: user, id: u8, name: svc-backup, reason: no email}
  - {kind: member, id: sp1, name: CI deploy bot, group: Engineering, reason: "a service principal, not a user"}
  - {kind: member, id: x9, name: vic@contractors.example.com, email: vic@contractors.example.com, group: Engineering, reason: "not a user of this Workspace (an external member)"}
"#;
    let target = r"users:
  - {id: s1, externalId: u1, email: ana@example.com, givenName: Ana, familyName: Silva}
  - {id: s7, externalId: u7, email: kiosk-07@example.com}
  - {id: s9, email: vic@contractors.example.com}
  - {id: s10, email: gone@example.com}
groups: []
";
    assert_eq!(scenario("left_out", config, idp, target), 0);
}

/// Two desired Atlassian groups whose names differ only in case: blocked at plan time.
#[test]
fn groups_differing_in_case() {
    let config = r#"version: 1
sources:
  - {name: okta, type: file, path: idp.yaml}
target: {type: file, path: atlassian.yaml}
groups:
  mappings:
    - {from: "okta:Engineering", to: engineering}
    - {from: "okta:ENG", to: Engineering}
"#;
    let idp = r"users:
  - {id: u1, email: ana@example.com}
groups:
  - {name: Engineering, id: g1, members: [ana@example.com]}
  - {name: ENG, id: g2, members: [ana@example.com]}
";
    let target = "users: []\ngroups: []\n";
    assert_eq!(scenario("case_collision", config, idp, target), 1);
}

/// An account a source left out keeps its memberships too, even with `manage_unmapped_members`.
#[test]
fn left_out_accounts_keep_their_memberships() {
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        r#"version: 1
sources:
  - {name: okta, type: file, path: idp.yaml}
target: {type: file, path: atlassian.yaml}
groups:
  mappings: [{from: "okta:Engineering", to: engineering}]
  manage_unmapped_members: true
cleanup: {max_deactivations: 100%}
"#,
    )
    .write(
        "idp.yaml",
        r"users: [{id: u1, email: ana@example.com}]
groups: [{name: Engineering, id: g1, members: [ana@example.com]}]
skipped: [{kind: user, id: u7, name: kiosk-07, reason: no email}]
",
    )
    .write(
        "atlassian.yaml",
        r"users:
  - {id: s1, externalId: u1, email: ana@example.com}
  - {id: s7, externalId: u7, email: kiosk-07@example.com}
  - {id: s8, email: stray@example.com}
groups: [{name: engineering, id: t1, members: [ana@example.com, kiosk-07@example.com, stray@example.com]}]
",
    );
    let (code, plan, stderr) = run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        plan.contains("- remove_members engineering (batch 1/1, 1 member(s))")
            && plan
                .contains("- stray@example.com  — in no source (groups.manage_unmapped_members)")
            && plan.contains("- deactivate_user stray@example.com")
            && !plan.contains("- kiosk-07@example.com")
            && !plan.contains("deactivate_user kiosk-07"),
        "{plan}"
    );
}

/// Entries that match nobody are most often typos: a misspelt `protect` entry protects nobody (with
/// `skip_admins` off, the break-glass admin would be deactivated), a misspelt `exclude` entry
/// excludes nobody. The plan says so, naming the entry.
#[test]
fn rule_entries_that_match_nobody_are_warned_about() {
    let idp = "users:\n  - {id: u1, email: ana@example.com}\n  - {id: u2, email: bo@contractors.example.com}\ngroups:\n  - {name: Engineering, members: [ana@example.com]}\n";
    let target = "users:\n  - {id: s1, externalId: u1, email: ana@example.com}\n  - {id: s9, email: breakglass@example.com, admin: true}\ngroups: []\n";
    let config = CONFIG
        .replace(
            "protect: [\"breakglass@example.com\"]",
            "protect: [\"breakglas@example.com\"]\n  skip_admins: false\n  max_deactivations: 100%",
        )
        .replace("  max_deactivations: 50%\n", "")
        .replace("grace_days: 14", "grace_days: 0")
        .replace(
            "users:\n",
            "users:\n  exclude: [\"*@contractors.exmaple.com\", \"*@contractors.example.com\"]\n",
        );
    let s = Scratch::new();
    s.write("idsync.yaml", &config)
        .write("idp.yaml", idp)
        .write("atlassian.yaml", target);
    let (code, out, err) = run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cleanup.protect[0] \"breakglas@example.com\" matches no user in the target or any source, so it protects nobody"),
        "{out}"
    );
    assert!(
        out.contains(
            "users.exclude[0] \"*@contractors.exmaple.com\" matches no user in any source"
        ),
        "{out}"
    );
    assert!(!out.contains("users.exclude[1]"), "{out}");
    assert!(
        out.contains("deactivate_user breakglass@example.com"),
        "{out}"
    );
}
