//! The committed schemas equal the ones generated from the Rust types, and every example is valid.
//! Regenerate with `UPDATE_SCHEMAS=1 cargo test schema`.

use std::path::PathBuf;

use crate::support::repo;

fn check(file: &str, generated: &serde_json::Value) {
    let path = repo().join("schemas").join(file);
    let mut text = serde_json::to_string_pretty(generated).unwrap();
    text.push('\n');
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is stale: regenerate it with `UPDATE_SCHEMAS=1 cargo test schema` and commit it",
        path.display()
    );
}

#[test]
fn config_schema_is_current() {
    check("idsync.schema.json", &idsync::Config::json_schema());
}

#[test]
fn plan_schema_is_current() {
    check("plan.schema.json", &idsync::plan::Plan::json_schema());
}

fn example_configs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join("examples")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml")
                && std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .any(|l| l.starts_with("version:"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_example_config_validates() {
    let configs = example_configs();
    assert!(!configs.is_empty());
    for p in configs {
        // Credentials and ids come from the environment; any value will do for validation.
        let text = std::fs::read_to_string(&p).unwrap();
        let env = |name: &str| Some(format!("https://example.test/{name}"));
        if let Err(e) = idsync::config::load_str(&p, &text, &env) {
            panic!("{} does not validate:\n{e}", p.display());
        }
    }
}

#[test]
fn the_quickstart_plan_matches_the_plan_schema() {
    let s = crate::support::Scratch::quickstart();
    let (code, stdout, _) = crate::support::run(&s, &mut s.idsync(&["plan", "--format", "json"]));
    assert_eq!(code, 0);
    assert_valid_plan(&stdout);
    // A plan of format 2.0 (before `created_at`, `sources` and reason codes) is still one.
    assert_valid_plan(
        &std::fs::read_to_string(repo().join("tests/fixtures/plan-format-2/plan.json")).unwrap(),
    );
}

/// Asserts that a plan (JSON text) matches schemas/plan.schema.json.
pub fn assert_valid_plan(json: &str) {
    let plan: serde_json::Value = serde_json::from_str(json).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/plan.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&plan)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}
