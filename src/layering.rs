//! The layers' rules (docs/ARCHITECTURE.md), checked over the source text so that CI keeps them:
//! the two sides never know each other, and the planner's core (`rules`, `desired`, `diff`, `plan`,
//! `render`) sees neither the config file, nor HTTP, nor a connector, nor a target, and does no I/O.

use std::path::{Path, PathBuf};

use regex::Regex;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The Rust files of `path` (a file, or a folder searched to the bottom).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| e.expect("a folder entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// A file's code: without its unit tests (they may build their inputs any way they like) and
/// without comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let code = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text.as_str(), |i| &text[..i]);
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules of this crate a piece of code refers to (`crate::x::…`, `use crate::{x, y::…}`).
fn crate_modules(code: &str) -> Vec<String> {
    let path = Regex::new(r"crate::([a-z_]+)").expect("a regex");
    let group = Regex::new(r"crate::\{([^;]*)\}").expect("a regex");
    let head = Regex::new(r"(?:^|[{,])\s*([a-z_]+)").expect("a regex");
    let mut out: Vec<String> = path.captures_iter(code).map(|c| c[1].to_string()).collect();
    for g in group.captures_iter(code) {
        // Only the first segment of each top-level item names a module of the crate.
        let mut depth = 0;
        let mut top = String::new();
        for ch in g[1].chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ if depth == 0 => top.push(ch),
                _ => {}
            }
        }
        out.extend(head.captures_iter(&top).map(|c| c[1].to_string()));
    }
    out.sort();
    out.dedup();
    out
}

/// Every use of a forbidden module by the files under `paths`, as `file: module`.
fn violations(paths: &[&str], forbidden: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        for file in rust_files(&src().join(p)) {
            for m in crate_modules(&code_of(&file)) {
                if forbidden.contains(&m.as_str()) {
                    out.push(format!("{}: crate::{m}", file.display()));
                }
            }
        }
    }
    out
}

#[test]
fn the_module_reader_sees_every_form_of_import() {
    let code = "use crate::config::Rules;\nuse crate::{sources, targets::{self, Target}};\nlet x = crate::http::Auth::None;";
    assert_eq!(
        crate_modules(code),
        vec!["config", "http", "sources", "targets"]
    );
    assert!(crate_modules("use crate::model::{Config, http};").contains(&"model".into()));
    assert!(!crate_modules("use crate::model::{Config, http};").contains(&"http".into()));
}

#[test]
fn sources_never_know_targets() {
    assert_eq!(
        violations(&["sources"], &["targets", "apply"]),
        Vec::<String>::new()
    );
}

#[test]
fn targets_never_know_sources() {
    assert_eq!(violations(&["targets"], &["sources"]), Vec::<String>::new());
}

#[test]
fn the_shared_scim_client_knows_neither_side() {
    assert_eq!(
        violations(&["scim"], &["sources", "targets"]),
        Vec::<String>::new()
    );
}

#[test]
fn the_planner_core_sees_no_config_io_connector_or_target() {
    let core = [
        "rules",
        "desired.rs",
        "diff.rs",
        "plan",
        "render",
        "model.rs",
    ];
    let forbidden = [
        "config", "http", "sources", "targets", "scim", "engine", "commands", "apply",
    ];
    assert_eq!(violations(&core, &forbidden), Vec::<String>::new());
}

#[test]
fn the_planner_core_does_no_io() {
    let io = Regex::new(r"std::fs|std::net|std::env|tokio::|reqwest::|File::open|File::create")
        .expect("a regex");
    let mut found = Vec::new();
    for p in ["rules", "desired.rs", "diff.rs", "plan", "render"] {
        for file in rust_files(&src().join(p)) {
            if let Some(m) = io.find(&code_of(&file)) {
                found.push(format!("{}: {}", file.display(), m.as_str()));
            }
        }
    }
    assert_eq!(found, Vec::<String>::new());
}
