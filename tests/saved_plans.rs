//! Saved plans and their journal on a file target: a plan cannot be bent, staleness is per
//! precondition, a journal cannot lie and cycles, an apply killed anywhere finishes on the next run,
//! and one apply runs at a time.

use std::process::Output;

use serde_json::Value;

use crate::support::{run, Scratch};

fn plan(s: &Scratch) {
    let (code, _, stderr) = run(s, &mut s.idsync(&["plan", "--out", "plan.json", "-q"]));
    assert_eq!(code, 0, "{stderr}");
}

fn apply(s: &Scratch) -> (i32, String, String) {
    run(
        s,
        &mut s.idsync(&[
            "apply",
            "plan.json",
            "--auto-approve",
            "--report",
            "report.json",
        ]),
    )
}

fn converged(s: &Scratch) {
    let (code, stdout, _) = run(s, &mut s.idsync(&["plan", "--detailed-exitcode"]));
    assert_eq!(code, 0, "not converged:\n{stdout}");
}

/// Edits the saved plan as a person with a text editor and the idsync library would: `edit` changes
/// the JSON, then the digest is recomputed so that only the deeper checks can catch it.
fn edit_and_reseal(s: &Scratch, edit: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&s.read("plan.json")).unwrap();
    edit(&mut v);
    let mut p: idsync::plan::Plan = serde_json::from_value(v).unwrap();
    p.seal(None);
    s.write("plan.json", &serde_json::to_string_pretty(&p).unwrap());
}

fn action_index(v: &Value, action: &str, key: &str) -> usize {
    v["actions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["action"] == action && a["key"] == key)
        .unwrap_or_else(|| panic!("no {action} {key}"))
}

/// The plan's deactivation of frank, retargeted at `key` (`id`).
fn retarget(v: &mut Value, key: &str, id: &str) {
    let i = action_index(v, "deactivate_user", "frank@example.com");
    v["actions"][i]["key"] = key.into();
    v["actions"][i]["id"] = id.into();
}

#[test]
fn a_hand_edited_plan_is_refused_and_changes_nothing() {
    let s = Scratch::quickstart();
    plan(&s);
    let original = s.read("plan.json");
    let before = s.read("atlassian.yaml");
    let refused = |why: &str| {
        let (code, _, stderr) = apply(&s);
        assert_eq!(code, 1, "{why}: applied:\n{stderr}");
        assert_eq!(s.read("atlassian.yaml"), before, "{why}: nothing changed");
        stderr
    };

    // A deactivation retargeted at a wanted user, in a text editor.
    s.write(
        "plan.json",
        &original.replace("\"id\": \"scim-frank\"", "\"id\": \"scim-kim\""),
    );
    let err = refused("edited by hand");
    assert!(
        err.contains("its content does not match its digest"),
        "{err}"
    );

    // The same, with the digest recomputed: the action lacks its preconditions.
    s.write("plan.json", &original);
    edit_and_reseal(&s, |v| retarget(v, "kim@example.com", "scim-kim"));
    let err = refused("resealed");
    assert!(
        err.contains("lacks its precondition: user scim-kim recorded as active"),
        "{err}"
    );

    // With preconditions copied from the target as it is: a plan made now would not do it.
    s.write("plan.json", &original);
    edit_and_reseal(&s, |v| {
        retarget(v, "kim@example.com", "scim-kim");
        v["preconditions"]["users"]["scim-kim"] = serde_json::json!({
            "active": "true", "email": "kim@example.com", "externalId": "00u9kim",
            "in_directory": "true", "last_active": null
        });
    });
    let err = refused("preconditions forged");
    assert!(
        err.contains(
            "deactivate_user kim@example.com: a plan made now would not deactivate this user"
        ),
        "{err}"
    );

    // Retargeted at the protected break-glass admin.
    s.write("plan.json", &original);
    edit_and_reseal(&s, |v| {
        retarget(v, "breakglass-admin@example.com", "scim-breakglass");
        v["preconditions"]["users"]["scim-breakglass"] = serde_json::json!({
            "active": "true", "email": "breakglass-admin@example.com", "externalId": null,
            "in_directory": "true", "last_active": null
        });
    });
    let err = refused("protected");
    assert!(
        err.contains("breakglass-admin@example.com is protected by cleanup.protect"),
        "{err}"
    );

    // An appended deactivation, summary left alone.
    s.write("plan.json", &original);
    let append = |v: &mut Value| {
        let mut extra =
            v["actions"][action_index(v, "deactivate_user", "frank@example.com")].clone();
        extra["key"] = "kim@example.com".into();
        extra["id"] = "scim-kim".into();
        v["actions"].as_array_mut().unwrap().push(extra);
        v["preconditions"]["users"]["scim-kim"] = serde_json::json!({
            "active": "true", "email": "kim@example.com", "externalId": "00u9kim",
            "in_directory": "true", "last_active": null
        });
    };
    edit_and_reseal(&s, append);
    let err = refused("appended");
    assert!(
        err.contains("its summary says 15 change(s), its actions make 16"),
        "{err}"
    );
    // And with the summary and the guard brought in line.
    s.write("plan.json", &original);
    edit_and_reseal(&s, |v| {
        append(v);
        v["summary"]["deactivate_user"] = 4.into();
        v["summary"]["total_changes"] = 16.into();
        v["guard"]["deactivations"] = 4.into();
    });
    let err = refused("appended, counts fixed");
    assert!(
        err.contains(
            "deactivate_user kim@example.com: a plan made now would not deactivate this user"
        ),
        "{err}"
    );

    // The plan as made still applies.
    s.write("plan.json", &original);
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 0, "{stderr}");
    converged(&s);
}

#[test]
fn with_a_plan_key_only_plans_signed_with_it_are_applied() {
    let s = Scratch::quickstart();
    let before = s.read("atlassian.yaml");
    let with_key = |args: &[&str], key: Option<&str>| {
        let mut c = s.idsync(args);
        match key {
            Some(k) => c.env("IDSYNC_PLAN_KEY", k),
            None => c.env_remove("IDSYNC_PLAN_KEY"),
        };
        run(&s, &mut c)
    };
    let apply_args = ["apply", "plan.json", "--auto-approve"];
    // Unsigned plan, key set at apply.
    let (code, ..) = with_key(&["plan", "--out", "plan.json"], None);
    assert_eq!(code, 0);
    assert!(!s.read("plan.json").contains("\"signature\""));
    let (code, _, err) = with_key(&apply_args, Some("the-reviewed-jobs-key"));
    assert_eq!(code, 1);
    assert!(
        err.contains("it is not signed, and IDSYNC_PLAN_KEY is set"),
        "{err}"
    );
    // Signed with another key.
    let (code, ..) = with_key(&["plan", "--out", "plan.json"], Some("someone-elses-key"));
    assert_eq!(code, 0);
    let (code, _, err) = with_key(&apply_args, Some("the-reviewed-jobs-key"));
    assert_eq!(code, 1);
    assert!(
        err.contains("its signature does not match IDSYNC_PLAN_KEY"),
        "{err}"
    );
    // An empty key (an unset CI secret) is an error, not "no key".
    let (code, _, err) = with_key(&apply_args, Some(""));
    assert_eq!(code, 1);
    assert!(err.contains("IDSYNC_PLAN_KEY is set but empty"), "{err}");
    assert_eq!(s.read("atlassian.yaml"), before);
    // Signed with the key: applied; the key never shows.
    let (code, out, err) = with_key(
        &["plan", "--out", "plan.json"],
        Some("the-reviewed-jobs-key"),
    );
    assert_eq!(code, 0);
    let plan = s.read("plan.json");
    assert!(plan.contains("\"signature\": \"hmac-sha256:"), "{plan}");
    let (code, _, err2) = with_key(&apply_args, Some("the-reviewed-jobs-key"));
    assert_eq!(code, 0, "{err2}");
    for text in [&plan, &out, &err, &err2] {
        assert!(!text.contains("the-reviewed-jobs-key"));
    }
    converged(&s);
}

#[test]
fn logging_in_stales_only_deactivations_decided_by_inactivity() {
    // Every user an update, reactivation, link or membership change touches logs in.
    let s = Scratch::quickstart();
    plan(&s);
    let mut t = s.read("atlassian.yaml");
    for (who, line_end) in [
        ("scim-alice", "displayName: Alice Doe,"),
        ("scim-bob", "displayName: Bob Smith,"),
        ("scim-erin", "displayName: Erin Green,"),
        ("scim-jack", "displayName: Jack Gray,"),
    ] {
        let at = t.find(who).unwrap();
        let pos = at + t[at..].find(line_end).unwrap() + line_end.len();
        t.insert_str(pos, " last_active: 2026-11-21T08:00:00Z,");
    }
    s.write("atlassian.yaml", &t);
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 0, "{stderr}");
    converged(&s);

    // Frank, deactivated for being inactive more than grace_days, logs in: refused, and said so.
    let s = Scratch::quickstart();
    plan(&s);
    let t = s.read("atlassian.yaml").replace(
        "last_active: 2025-02-01T09:00:00Z",
        "last_active: 2026-11-20T09:00:00Z",
    );
    s.write("atlassian.yaml", &t);
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "user frank@example.com (id scim-frank): last_active changed from \"2025-02-01T09:00:00Z\" to \"2026-11-20T09:00:00Z\""
        ),
        "{stderr}"
    );
    assert_eq!(s.read("atlassian.yaml"), t);
}

#[test]
fn a_membership_change_is_stale_only_when_that_membership_changed() {
    let s = Scratch::quickstart();
    plan(&s);
    // Someone else adds noah to engineering: the plan neither adds nor removes noah there.
    let t = s.read("atlassian.yaml").replace(
        "members: [alice@example.com, bob@example.com, jack@example.com, kim@example.com, mia@example.com]",
        "members: [alice@example.com, bob@example.com, jack@example.com, kim@example.com, mia@example.com, noah@example.com]",
    );
    s.write("atlassian.yaml", &t);
    let s2 = Scratch::quickstart();
    plan(&s2);
    // Jack, whom the plan removes from engineering, was removed by someone else.
    let t2 = s2.read("atlassian.yaml").replace(
        "bob@example.com, jack@example.com, kim@example.com, mia@example.com]",
        "bob@example.com, kim@example.com, mia@example.com]",
    );
    s2.write("atlassian.yaml", &t2);
    let (code, _, stderr) = apply(&s2);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("group engineering: jack@example.com (id scim-jack) is no longer a member"),
        "{stderr}"
    );
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn plan_and_apply_twice_in_a_row_in_one_folder() {
    let s = Scratch::quickstart();
    plan(&s);
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 0, "{stderr}");
    // A change in the IdP, then the README's cycle again, in the same folder.
    s.write(
        "idp.yaml",
        &s.read("idp.yaml")
            .replace("title: Staff Engineer", "title: Principal Engineer"),
    );
    plan(&s);
    let (code, _, stderr) = apply(&s);
    assert_eq!(
        code, 0,
        "the completed journal of the first plan is replaced:\n{stderr}"
    );
    assert!(s.read("atlassian.yaml").contains("Principal Engineer"));
    converged(&s);
    // The same plan again: already applied.
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 0);
    assert!(stderr.contains("already applied completely"), "{stderr}");
}

fn crash_at(s: &Scratch, n: usize) -> Output {
    s.idsync(&["apply", "plan.json", "--auto-approve"])
        .env("IDSYNC_TEST_CRASH_AT", n.to_string())
        .output()
        .unwrap()
}

#[test]
fn an_unfinished_journal_of_another_plan_is_refused_with_what_to_do() {
    let s = Scratch::quickstart();
    plan(&s);
    let out = crash_at(&s, 5);
    assert_eq!(out.status.code(), None, "killed");
    // A new plan saved over the old one before the old apply was finished.
    s.write(
        "idp.yaml",
        &s.read("idp.yaml")
            .replace("title: Staff Engineer", "title: Principal Engineer"),
    );
    plan(&s);
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("records an unfinished apply of another plan (0 of 13 action(s) done)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("delete plan.json.journal and apply this plan"),
        "{stderr}"
    );
    std::fs::remove_file(s.path("plan.json.journal")).unwrap();
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 0, "{stderr}");
    converged(&s);
}

/// Kills the apply at every sync point in turn (each journal line, each action answered, the file's
/// write), then runs it again: the file ends exactly as after an uninterrupted apply, and the report
/// of the run that finishes counts every change once.
#[test]
fn killed_at_any_point_the_rerun_finishes_the_plan_exactly() {
    let clean = Scratch::quickstart();
    plan(&clean);
    let (code, _, stderr) = apply(&clean);
    assert_eq!(code, 0, "{stderr}");
    let expected = clean.read("atlassian.yaml");
    let total = serde_json::from_str::<Value>(&clean.read("plan.json")).unwrap()["summary"]
        ["total_changes"]
        .as_u64()
        .unwrap();
    let mut crashes = 0;
    for n in 1.. {
        let s = Scratch::quickstart();
        plan(&s);
        let out = crash_at(&s, n);
        if out.status.success() {
            break;
        }
        assert_eq!(out.status.code(), None, "crash point {n}: killed");
        crashes += 1;
        let (code, _, stderr) = apply(&s);
        assert_eq!(code, 0, "crash point {n}: {stderr}");
        assert_eq!(s.read("atlassian.yaml"), expected, "crash point {n}");
        converged(&s);
        if stderr.contains("already applied completely") {
            // Killed after its last journal line: nothing left to run or report.
            continue;
        }
        let report: Value = serde_json::from_str(&s.read("report.json")).unwrap();
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
        ]
        .iter()
        .map(|k| c[k].as_u64().unwrap())
        .sum();
        assert_eq!(sum, total, "crash point {n}: {report}");
        assert_eq!(report["status"], "SUCCESS");
    }
    assert!(
        crashes > 26,
        "every action passed two sync points: {crashes}"
    );
}

#[test]
fn a_second_apply_exits_1_naming_the_holder() {
    let s = Scratch::quickstart();
    plan(&s);
    let before = s.read("atlassian.yaml");
    for guarded in ["plan.json", "atlassian.yaml"] {
        let lock = idsync::apply::lock::Lock::acquire(&s.path(guarded), "apply plan.json").unwrap();
        let (code, _, stderr) = apply(&s);
        assert_eq!(code, 1);
        assert!(
            stderr.contains(&format!(
                "{guarded}.lock is held by `idsync apply plan.json` (pid {}",
                std::process::id()
            )) && stderr.contains("another apply is running"),
            "{stderr}"
        );
        assert_eq!(s.read("atlassian.yaml"), before);
        drop(lock);
    }
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 0, "{stderr}");
    assert!(!s.path("plan.json.lock").exists() && !s.path("atlassian.yaml.lock").exists());
}

/// The further guards are re-derived from the saved plan's actions and the target as it is at apply
/// time, not trusted from the file: a group that shrank since the plan was made turns the same
/// removals into too large a share of it. An override recorded when the plan was made still holds.
#[test]
fn membership_removal_guards_are_rederived_when_a_saved_plan_is_applied() {
    let people: Vec<String> = (0..10).map(|i| format!("p{i}@example.com")).collect();
    let idp_users: String = people
        .iter()
        .enumerate()
        .map(|(i, e)| format!("  - {{id: u{i}, email: {e}}}\n"))
        .collect();
    // Three of the ten have left Engineering in the IdP.
    let idp = format!(
        "users:\n{idp_users}groups:\n  - {{name: Engineering, id: g1, members: [{}]}}\n",
        people[3..].join(", ")
    );
    let target_users: String = people
        .iter()
        .enumerate()
        .map(|(i, e)| format!("  - {{id: s{i}, externalId: u{i}, email: {e}}}\n"))
        .collect();
    let target = |members: &[String]| {
        format!(
            "users:\n{target_users}groups:\n  - {{name: engineering, id: t1, members: [{}]}}\n",
            members.join(", ")
        )
    };
    let config = "version: 1
sources:
  - {name: okta, type: file, path: idp.yaml}
target: {type: file, path: atlassian.yaml}
groups:
  mappings: [{from: \"okta:Engineering\", to: engineering}]
cleanup:
  max_membership_removals: 100%
  max_membership_removals_per_group: 40%
";
    let s = Scratch::new();
    s.write("idsync.yaml", config)
        .write("idp.yaml", &idp)
        .write("atlassian.yaml", &target(&people));
    // 3 removals of 10 members: within 40% when planned.
    plan(&s);
    let saved: Value = serde_json::from_str(&s.read("plan.json")).unwrap();
    let removed: usize = saved["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "remove_members")
        .map(|a| a["members"].as_array().unwrap().len())
        .sum();
    assert_eq!(removed, 3, "{saved}");
    // Before the apply, five members who stay are removed by hand: the group now has five, and
    // the same three removals are more than 40% of it.
    let mut shrunk: Vec<String> = people[..3].to_vec();
    shrunk.extend(people[8..].iter().cloned());
    s.write("atlassian.yaml", &target(&shrunk));
    let before = s.read("atlassian.yaml");
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 1, "applied:\n{stderr}");
    assert!(
        stderr.contains("cleanup.max_membership_removals_per_group")
            && stderr.contains("--allow-mass-membership-removal"),
        "{stderr}"
    );
    assert_eq!(s.read("atlassian.yaml"), before, "nothing changed");

    // Made with the override, the same plan applies: the reviewed decision holds.
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&[
            "plan",
            "--out",
            "plan.json",
            "-q",
            "--allow-mass-membership-removal",
        ]),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = apply(&s);
    assert_eq!(code, 0, "{stderr}");
}

/// `plan --out` seals the plan while it writes it (placeholders, then the seal in their place): the
/// file, and stdout, must be exactly the sealed plan as serde writes it, signed or not.
#[test]
fn a_plan_saved_while_sealed_is_the_sealed_plan_byte_for_byte() {
    let s = Scratch::quickstart();
    for key in [None, Some("a-key-for-the-seal-test")] {
        let mut c = s.idsync(&["plan", "--format", "json", "--out", "plan.json"]);
        match key {
            Some(k) => c.env("IDSYNC_PLAN_KEY", k),
            None => c.env_remove("IDSYNC_PLAN_KEY"),
        };
        let (code, stdout, stderr) = run(&s, &mut c);
        assert_eq!(code, 0, "{stderr}");
        let saved = s.read("plan.json");
        assert_eq!(stdout, saved, "stdout is the saved file");
        let mut plan: idsync::plan::Plan = serde_json::from_str(&saved).unwrap();
        assert!(!plan.digest.starts_with("0000"), "the digest is in place");
        assert_eq!(plan.signature.is_some(), key.is_some());
        let written = (plan.digest.clone(), plan.signature.clone());
        plan.seal(key.map(str::as_bytes));
        assert_eq!(
            (plan.digest.clone(), plan.signature.clone()),
            written,
            "the seal in the file is the plan's"
        );
        assert_eq!(
            format!("{}\n", serde_json::to_string_pretty(&plan).unwrap()),
            saved,
            "the file is the sealed plan as serialized"
        );
        assert!(!saved.contains("a-key-for-the-seal-test"));
    }
}
