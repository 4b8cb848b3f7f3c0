//! Field-level diffs of an `update_user`, drawn with `similar`: on a terminal the changed words are
//! highlighted inside the old and new values.

use owo_colors::OwoColorize;
use similar::{ChangeTag, TextDiff};

/// `"old" -> "new"`, with the changed words emphasised when `color` is on.
pub(crate) fn inline(from: Option<&str>, to: &str, color: bool) -> String {
    let Some(from) = from else {
        return if color {
            format!("(unset) -> {}", format!("{to:?}").green())
        } else {
            format!("(unset) -> {to:?}")
        };
    };
    if !color {
        return format!("{from:?} -> {to:?}");
    }
    let diff = TextDiff::from_words(from, to);
    let mut old = String::from("\"");
    let mut new = String::from("\"");
    for change in diff.iter_all_changes() {
        let v = change.value();
        match change.tag() {
            ChangeTag::Equal => {
                old.push_str(&v.red().to_string());
                new.push_str(&v.green().to_string());
            }
            ChangeTag::Delete => old.push_str(&v.red().bold().underline().to_string()),
            ChangeTag::Insert => new.push_str(&v.green().bold().underline().to_string()),
        }
    }
    old.push('"');
    new.push('"');
    format!("{old} -> {new}")
}

/// A unified diff of one field, for markdown's ```diff blocks. Every line starts with `-` or `+`, so
/// none can close the block; a name or value holding a line break or another control character is
/// quoted (`"a\nb"`) so that it stays on its line and reads exactly.
pub(crate) fn unified(field: &str, from: Option<&str>, to: &str) -> String {
    let exact = |s: &str| {
        if s.chars().any(char::is_control) {
            format!("{s:?}")
        } else {
            s.to_string()
        }
    };
    let field = exact(field);
    let mut out = String::new();
    if let Some(f) = from {
        out.push_str(&format!("- {field}: {}\n", exact(f)));
    }
    out.push_str(&format!("+ {field}: {}\n", exact(to)));
    out
}
