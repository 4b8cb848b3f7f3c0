//! The command line end to end: exit codes, confirmation, saved plans, staleness, the guard.

use crate::support::{repo, run, Scratch};

#[test]
fn quickstart_plan_is_pinned() {
    let s = Scratch::quickstart();
    let (code, stdout, stderr) = run(&s, &mut s.idsync(&["plan", "-c", "idsync.yaml"]));
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("quickstart_plan", stdout);
    for kind in [
        "create_user",
        "link_user",
        "update_user",
        "reactivate_user",
        "deactivate_user",
        "add_members",
        "remove_members",
    ] {
        assert!(stdout.contains(kind), "the quickstart shows {kind}");
    }
}

#[test]
fn readme_command_runs_from_the_repo_root() {
    let mut c = assert_cmd::Command::cargo_bin("idsync").unwrap();
    c.current_dir(repo())
        .args(["plan", "-c", "examples/quickstart/idsync.yaml"]);
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("Plan: 3 to deactivate, 1 membership to remove, 2 to update"));
}

#[test]
fn plan_apply_plan_converges_with_detailed_exitcode() {
    let s = Scratch::quickstart();
    let (code, ..) = run(
        &s,
        &mut s.idsync(&["plan", "--detailed-exitcode", "-c", "idsync.yaml"]),
    );
    assert_eq!(code, 2, "changes are present");
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--out", "plan.json", "-q"]),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&[
            "apply",
            "-c",
            "idsync.yaml",
            "plan.json",
            "--auto-approve",
            "--report",
            "report.json",
        ]),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--detailed-exitcode"]),
    );
    assert_eq!(code, 0, "converged:\n{stdout}");
    assert!(stdout.contains("No changes."));

    let report: serde_json::Value = serde_json::from_str(&s.read("report.json")).unwrap();
    assert_eq!(report["status"], "SUCCESS");
    assert!(
        report.get("scope").is_none(),
        "a whole plan's report has no scope"
    );
    let counts = &report["counts"];
    assert_eq!(
        (
            counts["added"].as_u64(),
            counts["linked"].as_u64(),
            counts["updated"].as_u64()
        ),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(
        (
            counts["reactivated"].as_u64(),
            counts["deactivated"].as_u64(),
            counts["failed"].as_u64()
        ),
        (Some(1), Some(3), Some(0))
    );
    assert_eq!(
        counts["filtered"].as_u64(),
        Some(3),
        "protected, admin and no-date users are reported"
    );
    assert!(report["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "done"));
}

#[test]
fn apply_without_a_terminal_refuses_and_changes_nothing() {
    let s = Scratch::quickstart();
    let before = s.read("atlassian.yaml");
    let (code, stdout, stderr) = run(
        &s,
        s.idsync(&["apply", "-c", "idsync.yaml"])
            .write_stdin("yes\n"),
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("Plan: 3 to deactivate, 1 membership to remove, 2 to update"),
        "the plan is shown before refusing"
    );
    insta::assert_snapshot!("apply_refused_without_terminal", stderr);
    assert_eq!(s.read("atlassian.yaml"), before);
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        3,
        "no temporary files are left behind: {leftovers:?}"
    );
}

#[test]
fn apply_auto_approve_without_a_plan_file() {
    let s = Scratch::quickstart();
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&["apply", "-c", "idsync.yaml", "--auto-approve"]),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Apply complete: 13 action(s)"), "{stderr}");
    let (code, ..) = run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--detailed-exitcode"]),
    );
    assert_eq!(code, 0);
}

#[test]
fn a_stale_plan_is_refused_when_the_target_changed() {
    let s = Scratch::quickstart();
    run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--out", "plan.json"]),
    );
    // Someone renames Alice's title in Atlassian after the plan was reviewed.
    let changed = s.read("atlassian.yaml").replace(
        "title: Engineer, department: R&D}}\n  - {id: scim-bob",
        "title: Principal, department: R&D}}\n  - {id: scim-bob",
    );
    assert_ne!(changed, s.read("atlassian.yaml"));
    s.write("atlassian.yaml", &changed);
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&["apply", "-c", "idsync.yaml", "plan.json", "--auto-approve"]),
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!("stale_plan_target_changed", stderr);
    assert_eq!(s.read("atlassian.yaml"), changed, "nothing applied");
}

#[test]
fn a_stale_plan_is_refused_when_the_config_changed() {
    let s = Scratch::quickstart();
    run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--out", "plan.json"]),
    );
    let before = s.read("atlassian.yaml");
    s.write(
        "idsync.yaml",
        &s.read("idsync.yaml")
            .replace("grace_days: 30", "grace_days: 0"),
    );
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&["apply", "-c", "idsync.yaml", "plan.json", "--auto-approve"]),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("the config file idsync.yaml changed since the plan was made"),
        "{stderr}"
    );
    assert_eq!(s.read("atlassian.yaml"), before);
}

#[test]
fn a_user_created_elsewhere_makes_the_plan_stale() {
    let s = Scratch::quickstart();
    run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--out", "plan.json"]),
    );
    let changed = s.read("atlassian.yaml").replace(
        "users:\n",
        "users:\n  - {id: scim-carol, email: carol@example.com}\n",
    );
    s.write("atlassian.yaml", &changed);
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&["apply", "-c", "idsync.yaml", "plan.json", "--auto-approve"]),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("user carol@example.com now exists"),
        "{stderr}"
    );
}

#[test]
fn a_plan_file_that_is_not_a_plan_is_refused() {
    let s = Scratch::quickstart();
    s.write("plan.json", "{\"hello\": 1}");
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&["apply", "-c", "idsync.yaml", "plan.json", "--auto-approve"]),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("not an idsync plan"), "{stderr}");
    s.write("plan.json", "{\"format_version\": \"99\"}");
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&["apply", "-c", "idsync.yaml", "plan.json", "--auto-approve"]),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("plan format 99"), "{stderr}");
}

#[test]
fn a_tripped_guard_fails_and_writes_no_plan() {
    let s = Scratch::quickstart();
    s.write(
        "idsync.yaml",
        &s.read("idsync.yaml")
            .replace("max_deactivations: 25%", "max_deactivations: 1"),
    );
    let before = s.read("atlassian.yaml");
    let (code, stdout, stderr) = run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--out", "plan.json"]),
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("GUARD TRIPPED"),
        "the plan is still shown for review"
    );
    insta::assert_snapshot!("guard_tripped_stderr", stderr);
    assert!(!s.path("plan.json").exists());
    let (code, ..) = run(
        &s,
        &mut s.idsync(&["apply", "-c", "idsync.yaml", "--auto-approve"]),
    );
    assert_eq!(code, 1, "apply refuses too");
    assert_eq!(s.read("atlassian.yaml"), before);
    // The explicit override lets it through.
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&[
            "apply",
            "-c",
            "idsync.yaml",
            "--auto-approve",
            "--allow-mass-deactivation",
        ]),
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn no_changes_exits_zero_even_with_detailed_exitcode() {
    let s = Scratch::new();
    s.write("idsync.yaml", "version: 1\nsources: [{name: idp, type: file, path: idp.yaml}]\ntarget: {type: file, path: t.yaml}\n")
        .write("idp.yaml", "users: [{email: a@example.com}]\n")
        .write("t.yaml", "users: [{email: a@example.com, userName: a@example.com}]\n");
    let (code, stdout, _) = run(
        &s,
        &mut s.idsync(&["plan", "--detailed-exitcode", "--format", "json"]),
    );
    assert_eq!(code, 0, "{stdout}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is clean JSON");
    assert_eq!(plan["actions"].as_array().map(Vec::len), Some(0));
    let (code, _, stderr) = run(&s, &mut s.idsync(&["apply", "--auto-approve"]));
    assert_eq!((code, stderr.trim()), (0, "No changes to apply."));
}

#[test]
fn snapshot_writes_files_a_file_connector_reads_back() {
    let s = Scratch::quickstart();
    let (code, _, stderr) = run(
        &s,
        &mut s.idsync(&[
            "snapshot",
            "-c",
            "idsync.yaml",
            "--side",
            "target",
            "--out",
            "copy.json",
        ]),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(
        &s,
        &mut s.idsync(&["snapshot", "-c", "idsync.yaml", "--side", "source"]),
    );
    assert_eq!(code, 0);
    s.write("idp-copy.yaml", &stdout);
    s.write(
        "copy.yaml",
        &s.read("idsync.yaml")
            .replace("path: idp.yaml", "path: idp-copy.yaml")
            .replace("path: atlassian.yaml", "path: copy.json"),
    );
    let (_, original, _) = run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--format", "json"]),
    );
    let (_, copied, _) = run(
        &s,
        &mut s.idsync(&["plan", "-c", "copy.yaml", "--format", "json"]),
    );
    let strip = |t: &str| {
        let mut v: serde_json::Value = serde_json::from_str(t).unwrap();
        v["config_hash"] = serde_json::Value::Null;
        v["target"] = serde_json::Value::Null;
        // The digest covers the config hash and the target's name.
        v["digest"] = serde_json::Value::Null;
        v
    };
    assert_eq!(
        strip(&original),
        strip(&copied),
        "a plan from snapshots reproduces the original"
    );
}

#[test]
fn schema_and_validate_commands() {
    let s = Scratch::quickstart();
    let (code, stdout, _) = run(&s, &mut s.idsync(&["validate", "-c", "idsync.yaml"]));
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        "idsync.yaml is valid: 1 source(s), 2 group mapping(s), 1 default group(s)"
    );
    let (code, stdout, _) = run(&s, &mut s.idsync(&["schema"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["title"], "idsync configuration");
    let (_, stdout, _) = run(&s, &mut s.idsync(&["schema", "--plan"]));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["title"], "idsync plan");
}

#[test]
fn a_missing_config_names_the_file_and_the_flag() {
    let s = Scratch::new();
    let (code, _, stderr) = run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 1);
    insta::assert_snapshot!("missing_config", stderr);
}

#[test]
fn an_unreadable_source_aborts_the_plan() {
    let s = Scratch::quickstart();
    s.write("idp.yaml", "users:\n  - {email: a@example.com\n");
    let before = s.read("atlassian.yaml");
    let (code, stdout, stderr) = run(
        &s,
        &mut s.idsync(&["apply", "-c", "idsync.yaml", "--auto-approve"]),
    );
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "no plan: {stdout}");
    insta::assert_snapshot!("unreadable_source", stderr);
    assert_eq!(s.read("atlassian.yaml"), before);
}

#[test]
fn a_group_above_the_hard_limit_blocks_the_plan() {
    let s = Scratch::quickstart();
    s.write(
        "idsync.yaml",
        &s.read("idsync.yaml").replace(
            "max_group_size_warn: 20000",
            "max_group_size_warn: 3\n  max_group_size: 6",
        ),
    );
    let (code, stdout, stderr) = run(
        &s,
        &mut s.idsync(&["plan", "-c", "idsync.yaml", "--out", "plan.json"]),
    );
    assert_eq!(code, 1);
    assert!(stdout.contains("BLOCKED: group idsync-all-users would have 10 members, above limits.max_group_size (6)"), "{stdout}");
    assert!(
        stdout.contains(
            "group engineering would have 5 members, above limits.max_group_size_warn (3)"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("the plan cannot be applied:"), "{stderr}");
    assert!(!s.path("plan.json").exists());
}

/// `idsync ARGS` in an empty folder: (exit code, stdout, stderr).
fn bare(args: &[&str]) -> (i32, String, String) {
    let s = Scratch::new();
    run(&s, &mut s.idsync(args))
}

#[test]
fn usage_errors_exit_1_with_clap_message_and_a_suggestion() {
    for (args, expected) in [
        (&[][..], "Usage: idsync [OPTIONS] <COMMAND>"),
        (
            &["plan", "--format", "md"][..],
            "error: invalid value 'md' for '--format <FORMAT>'",
        ),
        (
            &["plan", "--format", "md"][..],
            "tip: a similar value exists: 'markdown'",
        ),
        (
            &["plan", "--fromat", "json"][..],
            "tip: a similar argument exists: '--format'",
        ),
        // `explain` is near `plna` too: clap lists both.
        (
            &["plna"][..],
            "similar subcommands exist: 'explain', 'plan'",
        ),
        (
            &["plan", "-out", "plan.json"][..],
            "error: unexpected argument",
        ),
        (&["snapshot"][..], "--side <SIDE>"),
        (&["validate", "-q", "-v"][..], "cannot be used with"),
        (&["plan", "extra"][..], "error: unexpected argument 'extra'"),
        (
            &["completions", "tcsh"][..],
            "error: invalid value 'tcsh' for '<SHELL>'",
        ),
        (&["completions"][..], "<SHELL>"),
    ] {
        let (code, stdout, stderr) = bare(args);
        assert_eq!(code, 1, "{args:?} is a usage error: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn completions_for_every_shell_name_every_subcommand_and_flag() {
    let cmd = <idsync::cli::Cli as clap::CommandFactory>::command();
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in ["plan", "apply", "completions", "man"] {
        assert!(subcommands.iter().any(|s| s == name), "{subcommands:?}");
    }
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, stdout, stderr) = bare(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(stderr.is_empty(), "{shell}: {stderr}");
        for name in &subcommands {
            let word = regex::Regex::new(&format!(r"\b{name}\b")).unwrap();
            assert!(word.is_match(&stdout), "{shell} completes `{name}`");
        }
        for flag in ["detailed-exitcode", "auto-approve", "config"] {
            assert!(stdout.contains(flag), "{shell} completes {flag}");
        }
    }
    // Each script is in its shell's own language.
    let (_, bash, _) = bare(&["completions", "bash"]);
    assert!(bash.contains("complete -F _idsync"), "{bash}");
    let (_, zsh, _) = bare(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef idsync"), "{zsh}");
    let (_, fish, _) = bare(&["completions", "fish"]);
    assert!(fish.contains("complete -c idsync"), "{fish}");
}

#[test]
fn man_prints_a_roff_page_of_every_subcommand() {
    let (code, stdout, stderr) = bare(&["man"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(".ie \\n(.g .ds Aq"), "{stdout}");
    let th = format!(".TH idsync 1  \"idsync {}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        stdout.lines().any(|l| l.trim_end() == th),
        "{th} in {stdout}"
    );
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS", ".SH VERSION"] {
        assert!(stdout.lines().any(|l| l == section), "{section}: {stdout}");
    }
    assert!(stdout.contains("idsync\\-plan"), "{stdout}");
}

#[test]
fn help_and_version_exit_0_and_help_states_the_exit_codes() {
    for args in [
        &["--help"][..],
        &["-h"][..],
        &["help"][..],
        &["help", "plan"][..],
        &["plan", "--help"][..],
        &["--version"][..],
        &["-V"][..],
    ] {
        let (code, stdout, stderr) = bare(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(!stdout.is_empty(), "{args:?}");
    }
    let (_, help, _) = bare(&["--help"]);
    assert!(help.contains(idsync::exit::EXIT_CODES_HELP), "{help}");
    let readme = std::fs::read_to_string(crate::support::repo().join("README.md")).unwrap();
    for row in [
        "| `0` | success; or a plan without changes;",
        "| `1` | any error: bad usage (unknown flag, bad value, missing subcommand",
        "| `2` | changes present (`plan` or `show --detailed-exitcode`), and nothing else |",
    ] {
        assert!(readme.contains(row), "README's exit code table: {row}");
    }
    for code in ["  0  ", "  1  ", "  2  "] {
        assert!(idsync::exit::EXIT_CODES_HELP.contains(code));
    }
}

#[test]
fn only_changes_exit_2() {
    let s = Scratch::quickstart();
    let (code, ..) = run(&s, &mut s.idsync(&["plan", "--detailed-exitcode"]));
    assert_eq!(code, 2, "changes present");
    let (code, ..) = run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 0, "changes without --detailed-exitcode");
    let (code, ..) = run(
        &s,
        &mut s.idsync(&["plan", "--detailed-exitcode", "--format", "md"]),
    );
    assert_eq!(code, 1, "a bad value is an error, never 'changes'");
    let (code, ..) = run(
        &s,
        &mut s.idsync(&["plan", "--detailed-exitcode", "-c", "missing.yaml"]),
    );
    assert_eq!(code, 1);
}
