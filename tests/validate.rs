//! `idsync validate` for CI: --offline, --format json|github, referenced files, secrets in the YAML.

use std::path::{Path, PathBuf};

use crate::support::{repo, run, Scratch};

/// A literal token written into a test config: it must never be printed.
const LITERAL: &str = "s3cr3t-literal-token-0123456789";

/// `idsync ARGS` in `dir` with an environment holding only PATH and HOME (no secrets, as on a
/// fork's pull request).
fn bare(dir: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("idsync").expect("the idsync binary");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .args(args);
    c
}

/// Every config in examples/ (the files holding `version:`), relative to the repository.
fn example_configs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join("examples")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml")
                && std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .any(|l| l.starts_with("version:"))
            {
                out.push(p.strip_prefix(repo()).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The `${VAR}` names a text uses (outside comments).
fn variables(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").unwrap();
    let mut names: Vec<String> = text
        .lines()
        .map(|l| l.split(" #").next().unwrap_or(l))
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| {
            re.captures_iter(l)
                .map(|c| c[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_example_passes_offline_without_its_variables() {
    let configs = example_configs();
    assert!(configs.len() >= 9, "{configs:?}");
    assert!(configs.contains(&PathBuf::from("examples/quickstart/idsync.yaml")));
    let mut with_variables = 0;
    for p in configs {
        let path = p.to_str().unwrap();
        let text = std::fs::read_to_string(repo().join(&p)).unwrap();
        let vars = variables(&text);
        with_variables += usize::from(!vars.is_empty());
        let out = bare(
            repo(),
            &["validate", "--offline", "--format", "json", "-c", path],
        )
        .output()
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{path}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["valid"], true, "{path}: {v}");
        assert_eq!(v["errors"], serde_json::json!([]), "{path}");
        assert_eq!(v["env_needed"], serde_json::json!(vars), "{path}");
        assert_eq!(v["env_unset"], serde_json::json!(vars), "{path}");
        // And in text, the same.
        let out = bare(repo(), &["validate", "--offline", "-c", path])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{path}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("{path} is valid")), "{stdout}");
        if !vars.is_empty() {
            assert!(
                stdout.contains(&format!("needs environment variables: {}", vars.join(", "))),
                "{stdout}"
            );
        }
    }
    assert!(
        with_variables >= 8,
        "the examples take their secrets from the environment"
    );
}

#[test]
fn without_offline_an_unset_variable_still_fails() {
    let s = Scratch::new();
    let p = repo().join("examples/scim.yaml");
    let (code, stdout, stderr) = run(
        &s,
        &mut bare(repo(), &["validate", "-c", p.to_str().unwrap()]),
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains("target.base_url: environment variable SCIM_BASE_URL is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("target.token: environment variable SCIM_TOKEN is not set"),
        "{stderr}"
    );
    // With them set, it passes online.
    let (code, _, stderr) = run(
        &s,
        bare(repo(), &["validate", "-c", p.to_str().unwrap()])
            .env("SCIM_BASE_URL", "https://scim.example.com/v2")
            .env("SCIM_TOKEN", LITERAL),
    );
    assert_eq!(code, 0, "{stderr}");
}

/// A config with two errors (a missing snapshot file, a URL that is not http(s)) and a warning (a
/// token written into the YAML).
fn two_errors_and_a_warning() -> Scratch {
    let s = Scratch::new();
    s.write(
        "idsync.yaml",
        &format!(
            "version: 1\n\
             sources:\n  - name: idp\n    type: file\n    path: snapshots/idp.yaml\n\
             target:\n  type: scim\n  base_url: ftp://scim.example.com/v2\n  token: {LITERAL}\n"
        ),
    );
    s
}

#[test]
fn github_format_annotates_errors_and_warnings() {
    let s = two_errors_and_a_warning();
    let (code, stdout, stderr) = run(
        &s,
        &mut bare(
            s.dir.path(),
            &[
                "validate",
                "--offline",
                "--format",
                "github",
                "-c",
                "idsync.yaml",
            ],
        ),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(!stdout.contains(LITERAL) && !stderr.contains(LITERAL));
    insta::assert_snapshot!("validate_github", stdout);
}

#[test]
fn json_format_is_one_stable_object() {
    let s = two_errors_and_a_warning();
    let (code, stdout, stderr) = run(
        &s,
        &mut bare(
            s.dir.path(),
            &["validate", "--format", "json", "-c", "idsync.yaml"],
        ),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(!stdout.contains(LITERAL) && !stderr.contains(LITERAL));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    let keys: Vec<&str> = errors.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["sources[0].path", "target.base_url"]);
    assert_eq!(errors[0]["file"], "idsync.yaml");
    assert_eq!(
        (errors[0]["line"].as_u64(), errors[0]["column"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(errors[0]["message"], "snapshots/idp.yaml does not exist");
    assert!(errors[0]["hint"]
        .as_str()
        .unwrap()
        .contains("relative to the config's folder"));
    assert_eq!(errors[1]["line"], 8);
    assert_eq!(errors[1]["message"], "not an http(s) URL");
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{v}");
    assert_eq!(warnings[0]["key"], "target.token");
    assert_eq!(warnings[0]["line"], 9);
    assert_eq!(
        warnings[0]["message"],
        "a secret is written into the config itself"
    );
    assert_eq!(v["env_needed"], serde_json::json!([]));
}

#[test]
fn a_literal_secret_is_warned_without_being_printed() {
    let s = Scratch::quickstart();
    s.write(
        "idsync.yaml",
        &s.read("idsync.yaml").replace(
            "target:\n  type: file                      # a file standing in for the Atlassian organization\n  path: atlassian.yaml\n",
            &format!("target:\n  type: scim\n  base_url: https://scim.example.com/v2\n  token: {LITERAL}\n"),
        ),
    );
    assert!(
        s.read("idsync.yaml").contains(LITERAL),
        "the config was edited"
    );
    let (code, stdout, stderr) = run(
        &s,
        &mut bare(s.dir.path(), &["validate", "-c", "idsync.yaml"]),
    );
    assert_eq!(code, 0, "a warning alone passes: {stderr}");
    assert!(stdout.contains("idsync.yaml is valid"), "{stdout}");
    assert!(
        stderr.contains(
            "warning: idsync.yaml:15:3: target.token: a secret is written into the config itself"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("token: ${MY_SECRET}"),
        "the hint says what to write: {stderr}"
    );
    assert!(!stdout.contains(LITERAL) && !stderr.contains(LITERAL));
}

#[test]
fn a_missing_token_file_names_key_and_path() {
    let s = Scratch::quickstart();
    std::fs::create_dir(s.path("conf")).unwrap();
    std::fs::rename(s.path("idsync.yaml"), s.path("conf/idsync.yaml")).unwrap();
    s.write(
        "conf/idsync.yaml",
        &s.read("conf/idsync.yaml")
            .replace("path: idp.yaml", "path: ../idp.yaml")
            .replace(
                "target:\n  type: file                      # a file standing in for the Atlassian organization\n  path: atlassian.yaml\n",
                "target:\n  type: scim\n  base_url: https://scim.example.com/v2\n  token_file: secrets/scim-token\n",
            ),
    );
    let (code, stdout, stderr) = run(
        &s,
        &mut bare(s.dir.path(), &["validate", "-c", "conf/idsync.yaml"]),
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stderr.contains(
            "conf/idsync.yaml:15:3: target.token_file: conf/secrets/scim-token does not exist"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("relative to the config's folder (conf)"),
        "{stderr}"
    );

    // Under --offline a credential file is a secret like the variables: a warning.
    let (code, stdout, stderr) = run(
        &s,
        &mut bare(
            s.dir.path(),
            &["validate", "--offline", "-c", "conf/idsync.yaml"],
        ),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("conf/idsync.yaml is valid"), "{stdout}");
    assert!(
        stderr.contains("warning: conf/idsync.yaml:15:3: target.token_file: conf/secrets/scim-token does not exist"),
        "{stderr}"
    );

    // Once there, it passes; a folder in its place does not.
    std::fs::create_dir(s.path("conf/secrets")).unwrap();
    std::fs::create_dir(s.path("conf/secrets/scim-token")).unwrap();
    let (code, _, stderr) = run(
        &s,
        &mut bare(s.dir.path(), &["validate", "-c", "conf/idsync.yaml"]),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("conf/secrets/scim-token is a folder, not a file"),
        "{stderr}"
    );
    std::fs::remove_dir(s.path("conf/secrets/scim-token")).unwrap();
    s.write("conf/secrets/scim-token", LITERAL);
    let (code, _, stderr) = run(
        &s,
        &mut bare(s.dir.path(), &["validate", "-c", "conf/idsync.yaml"]),
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn an_unreadable_config_is_an_error_in_every_format() {
    let s = Scratch::new();
    let (code, stdout, _) = run(
        &s,
        &mut bare(
            s.dir.path(),
            &["validate", "--format", "json", "-c", "nope.yaml"],
        ),
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][0]["file"], "nope.yaml");
    assert!(v["errors"][0]["line"].is_null());
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("cannot read config file nope.yaml"));
    let (code, stdout, _) = run(
        &s,
        &mut bare(
            s.dir.path(),
            &["validate", "--format", "github", "-c", "nope.yaml"],
        ),
    );
    assert_eq!(code, 1);
    assert!(
        stdout
            .starts_with("::error file=nope.yaml,title=idsync::cannot read config file nope.yaml"),
        "{stdout}"
    );
}
