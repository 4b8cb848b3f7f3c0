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

const BIG_CONFIG: &str = r#"version: 1
sources:
  - {name: okta, type: file, path: idp.yaml}
target: {type: file, path: atlassian.yaml}
users:
  attributes:
    displayName: "{givenName} {familyName}"
    title: "{title}"
groups:
  mappings:
    - {from_regex: "^okta:(.*)-team-(.*)$", to: "$1-$2"}
    - {from_regex: "^okta:(.*)_legacy_(.*)$", to: "old-$1"}
  default_groups: [all-staff]
cleanup:
  max_deactivations: 100%
  max_updates: 100%
  max_membership_removals: 100%
  max_membership_removals_per_group: 100%
"#;

/// A 20,000-user directory: 2,000 new hires, 1,000 title changes, 400 reactivations, 2,000 leavers,
/// 500 people moved between teams. Returns (idp, target).
fn big_directory() -> (String, String) {
    const USERS: usize = 20_000;
    const IN_TARGET: usize = 18_000;
    let teams = [
        "eng-team-core",
        "eng-team-web",
        "ops-team-sre",
        "sales-team-emea",
        "hr-team-people",
    ];
    let team_of = |i: usize| i % teams.len();
    let mut idp = String::from("users:\n");
    let mut target = String::from("users:\n");
    for i in 0..USERS {
        idp.push_str(&format!(
            "  - {{id: u{i}, email: u{i:05}@example.com, givenName: Given{i}, familyName: Family{i}, attributes: {{title: Engineer}}}}\n"
        ));
        if i < IN_TARGET {
            let title = if (400..1400).contains(&i) {
                "Intern"
            } else {
                "Engineer"
            };
            let active = i >= 400;
            target.push_str(&format!(
                "  - {{id: s{i}, externalId: u{i}, email: u{i:05}@example.com, givenName: Given{i}, familyName: Family{i}, displayName: Given{i} Family{i}, active: {active}, attributes: {{title: {title}}}}}\n"
            ));
        }
    }
    for i in 0..2_000 {
        target.push_str(&format!(
            "  - {{id: x{i}, email: leaver{i:04}@example.com, displayName: Leaver {i}}}\n"
        ));
    }
    idp.push_str("groups:\n");
    target.push_str("groups:\n");
    for (t, team) in teams.iter().enumerate() {
        let members: Vec<String> = (0..USERS)
            .filter(|&i| team_of(i) == t)
            .map(|i| format!("u{i:05}@example.com"))
            .collect();
        idp.push_str(&format!(
            "  - {{name: {team}, members: [{}]}}\n",
            members.join(", ")
        ));
        // In the target, 500 people are still in their previous team.
        let current: Vec<String> = (0..IN_TARGET)
            .filter(|&i| {
                if (2_000..2_500).contains(&i) {
                    (i + 1) % teams.len() == t
                } else {
                    team_of(i) == t
                }
            })
            .map(|i| format!("u{i:05}@example.com"))
            .collect();
        let name = team.replace("-team-", "-");
        if t > 0 {
            target.push_str(&format!(
                "  - {{name: {name}, id: g{t}, members: [{}]}}\n",
                current.join(", ")
            ));
        }
    }
    let everyone: Vec<String> = (0..IN_TARGET)
        .map(|i| format!("u{i:05}@example.com"))
        .collect();
    target.push_str(&format!(
        "  - {{name: all-staff, id: g0, members: [{}]}}\n",
        everyone.join(", ")
    ));
    (idp, target)
}

/// The headings of a markdown plan's sections, in order, with the entries each shows and the count
/// its elision note gives (0 when it has none).
fn md_sections(md: &str) -> Vec<(String, Vec<String>, usize)> {
    let note = regex::Regex::new(r"^- (?:… and )?([\d,]+) [^:]+: ").unwrap();
    let mut out: Vec<(String, Vec<String>, usize)> = Vec::new();
    for line in md.lines() {
        if let Some(rest) = line.strip_prefix("<details") {
            let title = rest
                .split("<summary>")
                .nth(1)
                .unwrap()
                .split("</summary>")
                .next()
                .unwrap();
            out.push((title.to_string(), Vec::new(), 0));
        } else if let Some(c) = note.captures(line) {
            out.last_mut().unwrap().2 = c[1].replace(',', "").parse().unwrap();
        } else if line.starts_with("- ") || line.starts_with("  - ") {
            if let Some(last) = out.last_mut() {
                last.1.push(line.to_string());
            }
        }
    }
    out
}

/// Issue 12: at 20,000 users the PR comment shows the risk first. Every deactivation that fits
/// comes before any create; whole entries only; the elision notes count people; the whole stays
/// under GitHub's 65,536 characters; regexes render exactly.
#[test]
fn markdown_at_twenty_thousand_users_shows_the_risk_first() {
    let (idp, target) = big_directory();
    let s = Scratch::new();
    s.write("idsync.yaml", BIG_CONFIG)
        .write("idp.yaml", &idp)
        .write("atlassian.yaml", &target);
    let (code, md, err) = run(
        &s,
        &mut s.idsync(&["plan", "--format", "markdown", "--out", "plan.json"]),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        md.len() <= 65_536 && md.chars().count() <= 65_536,
        "{} bytes",
        md.len()
    );
    assert!(
        md.len() > 60_000,
        "the budget is used, not wasted: {} bytes",
        md.len()
    );
    assert!(
        err.contains("Plan: 2000 to deactivate, 400 memberships to remove, 1000 to update, 400 to reactivate, 2000 to create, 1 group to create, "),
        "{err}"
    );

    let secs = md_sections(&md);
    let titles: Vec<&str> = secs.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Warnings (1)",
            "Users to deactivate: gone from every source (2,000)",
            "Memberships to remove (400)",
            "Users to update (1,000)",
            "Users to reactivate (400)",
            "Users to create (2,000)",
            "Groups to create (1)",
            "Memberships to add (8,000)",
        ],
        "risk first"
    );
    // Risky sections open, the rest collapsed.
    assert!(md.contains("<details open><summary>Users to deactivate"));
    assert!(md.contains("<details open><summary>Users to reactivate"));
    assert!(md.contains("<details><summary>Users to create"));
    assert!(md.contains("<details><summary>Memberships to add"));

    // Deactivations: the first N leavers in order, then a note counting the rest, and nothing shown
    // from any section after them.
    let (_, shown, more) = &secs[1];
    assert!(shown.len() > 400, "{} deactivations shown", shown.len());
    for (i, line) in shown.iter().enumerate() {
        assert_eq!(
            line,
            &format!("- `leaver{i:04}@example.com`: in no source (cleanup.deactivate\\_missing)"),
            "a whole entry, in order"
        );
    }
    assert_eq!(
        shown.len() + more,
        2_000,
        "the note counts the people left out"
    );
    assert!(md.contains(&format!(
        "- … and {} more deactivations: `idsync show plan.json`\n",
        more.to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(",")
    )));
    for (title, shown, more) in &secs[2..] {
        let count: usize = title
            .rsplit('(')
            .next()
            .unwrap()
            .trim_end_matches(')')
            .replace(',', "")
            .parse()
            .unwrap();
        assert!(
            shown.is_empty(),
            "{title}: nothing shown once a riskier section is cut"
        );
        assert_eq!(*more, count, "{title}: the note counts every object");
    }
    // The regex with two `.*` renders exactly: escaped, never emphasis.
    assert!(
        md.contains(
            r#"(from\_regex "^okta:(.\*)\_legacy\_(.\*)\$") matches no group of any source"#
        ),
        "{md}"
    );
    assert_eq!(md.matches("```").count() % 2, 0);
    assert_eq!(
        md.matches("<details").count(),
        md.matches("</details>").count()
    );
    insta::with_settings!({filters => vec![(r"idsync \d+\.\d+\.\d+\S*", "idsync [VERSION]")]}, {
        insta::assert_snapshot!("twenty_thousand.markdown", md);
    });

    // Unsaved, the note says how to see the rest; with a larger limit more is shown, still whole.
    let (code, md2, _) = run(
        &s,
        &mut s.idsync(&["plan", "--format", "markdown", "--markdown-limit", "400000"]),
    );
    assert_eq!(code, 0);
    assert!(md2.len() <= 400_000);
    let secs2 = md_sections(&md2);
    assert_eq!(
        secs2[1].1.len(),
        2_000,
        "every deactivation fits in 400,000"
    );
    assert_eq!(secs2[1].2, 0);
    assert!(
        md2.contains(": save the plan with `--out` and run `idsync show`\n"),
        "{}",
        &md2[md2.len() - 2000..]
    );
    // An update's diff is never cut: each ```diff block has its `-` and `+` line and its fence.
    let fence = regex::Regex::new(
        r"(?m)^- `u\d{5}@example\.com`: fields differ from \\`okta\\`\n```diff\n- title: Intern\n\+ title: Engineer\n```$",
    )
    .unwrap();
    let diffs = md2.matches("```diff").count();
    assert_eq!(fence.find_iter(&md2).count(), diffs, "every diff whole");
    assert!(diffs > 0);
}

/// Names, emails, group names and regexes holding markdown's metacharacters render exactly: in
/// code spans, or backslash-escaped in running text.
#[test]
fn markdown_escapes_names_and_regexes() {
    let config = r#"version: 1
sources:
  - {name: okta, type: file, path: idp.yaml}
target: {type: file, path: atlassian.yaml}
users:
  attributes:
    displayName: "{givenName} {familyName}"
groups:
  mappings:
    - {from_regex: "^okta:(.*)_[a-z]*|<b>$", to: "$1"}
    - {from: "okta:R&D <core> | [x]", to: "r&d_*core*"}
cleanup:
  max_deactivations: 100%
"#;
    let idp = r#"users:
  - {id: u1, email: "a_b*c@example.com", givenName: "*Ana*", familyName: "<b>Silva</b> | [x](y)"}
  - {id: u2, email: "ben@example.com", givenName: "Ben`s", familyName: "_O~k~a$1$_"}
groups:
  - {name: "R&D <core> | [x]", members: ["a_b*c@example.com", "ben@example.com"]}
"#;
    let target = r#"users:
  - {id: s2, externalId: u2, email: "ben@example.com", givenName: "Ben", familyName: "Okafor", displayName: "Ben **Okafor**"}
  - {id: s3, email: "x`y_z@example.com", displayName: "Gone"}
groups: []
"#;
    let s = Scratch::new();
    s.write("idsync.yaml", config)
        .write("idp.yaml", idp)
        .write("atlassian.yaml", target);
    let (code, md, err) = run(&s, &mut s.idsync(&["plan", "--format", "markdown"]));
    assert_eq!(code, 0, "{err}");
    for exact in [
        "- `a_b*c@example.com` (\\*Ana\\* \\<b\\>Silva\\</b\\> \\| \\[x\\](y)): in \\`okta\\`",
        "- ``x`y_z@example.com``: in no source",
        "- `r&d_*core*`: managed by groups.mappings\\[1\\] (from \"okta:R\\&D \\<core\\> \\| \\[x\\]\")",
        "(from\\_regex \"^okta:(.\\*)\\_\\[a-z\\]\\*\\|\\<b\\>\\$\")",
        "- displayName: Ben **Okafor**\n+ displayName: Ben`s _O~k~a$1$_\n```",
    ] {
        assert!(md.contains(exact), "missing {exact:?} in\n{md}");
    }
    insta::with_settings!({filters => vec![(r"idsync \d+\.\d+\.\d+\S*", "idsync [VERSION]")]}, {
        insta::assert_snapshot!("metacharacters.markdown", md);
    });
}

/// A plan that fails before it exists still gives CI a markdown body to post: what failed and what to
/// do; stdout is otherwise empty, the error is on stderr, and the exit code stays 1.
#[test]
fn a_failed_plan_prints_a_markdown_body() {
    let s = Scratch::new();
    s.write("idsync.yaml", CONFIG)
        .write("atlassian.yaml", "users: []\ngroups: []\n");
    let (code, md, err) = run(&s, &mut s.idsync(&["plan", "--format", "markdown"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("error: source `okta` could not be read completely"),
        "{err}"
    );
    assert!(!err.contains("Plan:"), "no plan, no outcome line: {err}");
    insta::with_settings!({filters => vec![(r"idsync \d+\.\d+\.\d+\S*", "idsync [VERSION]")]}, {
        insta::assert_snapshot!("failed_plan.markdown", md);
    });
    // Other formats print nothing on stdout.
    let (code, text, _) = run(&s, &mut s.idsync(&["plan"]));
    assert_eq!((code, text.as_str()), (1, ""));
    // A limit too small for the frame is a usage error.
    let (code, _, err) = run(
        &s,
        &mut s.idsync(&["plan", "--format", "markdown", "--markdown-limit", "100"]),
    );
    assert_eq!(code, 1);
    assert!(err.contains("100 is not in 8192.."), "{err}");
}

/// One line on stderr says what the plan does, whatever the format, with -q too; no colour codes
/// unless asked for.
#[test]
fn every_format_prints_the_outcome_on_stderr() {
    let s = Scratch::quickstart();
    let mut lines = Vec::new();
    for format in ["text", "markdown", "json"] {
        for quiet in [false, true] {
            let mut args = vec!["plan", "--format", format];
            if quiet {
                args.push("-q");
            }
            let (code, out, err) = run(&s, &mut s.idsync(&args));
            assert_eq!(code, 0, "{err}");
            let line: Vec<&str> = err.lines().filter(|l| l.starts_with("Plan: ")).collect();
            assert_eq!(line.len(), 1, "{format} (-q: {quiet}): {err}");
            if format == "text" {
                // The text rendering ends with the same words (the line is said on stderr too, for
                // logs that keep only stderr; on a terminal showing stdout it is said once).
                assert_eq!(out.lines().last(), Some(line[0]), "{out}");
            } else {
                assert!(
                    !out.lines().any(|l| l == line[0]),
                    "the outcome line is not on stdout"
                );
            }
            assert!(!err.contains('\u{1b}'), "NO_COLOR holds: {err:?}");
            lines.push(line[0].to_string());
        }
    }
    assert!(lines.windows(2).all(|w| w[0] == w[1]), "{lines:?}");
    insta::assert_snapshot!("quickstart_outcome", lines[0]);
    let (_, _, err) = run(&s, &mut s.idsync(&["plan", "--color", "never"]));
    assert!(!err.contains('\u{1b}'));
    let (_, _, err) = run(&s, &mut s.idsync(&["plan", "--color", "always"]));
    assert!(err.contains("\u{1b}[1mPlan: "), "{err:?}");

    // A tripped guard says so on the line, before the error.
    let (idp, target) = (
        "users:\n  - {id: u1, email: ana@example.com}\ngroups: []\n",
        "users:\n  - {id: s1, externalId: u1, email: ana@example.com}\n  - {id: x1, email: a@example.com}\n  - {id: x2, email: b@example.com}\ngroups: []\n",
    );
    let t = Scratch::new();
    t.write(
        "idsync.yaml",
        &CONFIG
            .replace("max_deactivations: 50%", "max_deactivations: 1")
            .replace("grace_days: 14", "grace_days: 0"),
    )
    .write("idp.yaml", idp)
    .write("atlassian.yaml", target);
    let (code, _, err) = run(&t, &mut t.idsync(&["plan", "--format", "json", "-q"]));
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Plan: 2 to deactivate, 1 group to create, 1 membership to add. GUARD TRIPPED: it cannot be applied without --allow-mass-deactivation.\nerror: "),
        "{err}"
    );
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
