//! The markdown rendering for pull-request comments, risk first: blocking problems and guards, then
//! warnings, deactivations, token revocations, membership removals, updates and reactivations (open),
//! then links, creates, group creates and membership additions (collapsed), then users left alone.
//!
//! The whole stays under a character limit (GitHub's comment limit by default). When everything does
//! not fit, whole entries are left out, least risky sections first: a section shows entries only when
//! every section above it is complete. Each section that lost entries ends with a note counting the
//! objects left out and where to see them. Every user- or config-supplied string is in a code span or
//! backslash-escaped, so names, emails and regexes render exactly.

use std::fmt::Write as _;

use super::{field_diff, guard_lines, headline, sections, summary, Section};
use crate::plan::{Action, DeactivateCause, Kind, Plan};

/// GitHub's limit on a comment's length, in characters.
pub const MARKDOWN_LIMIT: usize = 65_536;

/// The smallest `--markdown-limit`: room for the summary table and a frame for every section.
pub const MARKDOWN_LIMIT_MIN: usize = 8_192;

/// How a markdown plan is drawn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkdownOptions {
    /// The most characters the whole may have, counted as UTF-8 bytes (so it holds for limits in
    /// bytes too).
    pub limit: usize,
    /// The file the plan was saved to (`--out`, or the file `show` read), for the elision notes.
    pub plan_file: Option<String>,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        MarkdownOptions {
            limit: MARKDOWN_LIMIT,
            plan_file: None,
        }
    }
}

/// One entry: a whole item, never split. `objects` is what it counts for in an elision note.
struct Entry {
    text: String,
    objects: usize,
}

/// A run of entries with its frame, and what its entries are called in an elision note.
struct Part {
    head: String,
    entries: Vec<Entry>,
    tail: String,
    /// Written before and after an elision note.
    note_frame: (&'static str, &'static str),
    noun: (&'static str, &'static str),
    /// A part of the head (blocking problems, guard readings): when it is cut, the next head part
    /// still shows what fits, so that many problems never hide a tripped guard.
    head_part: bool,
    /// The guard readings, budgeted before anything else.
    guards: bool,
}

impl Part {
    fn objects(&self) -> usize {
        self.entries.iter().map(|e| e.objects).sum()
    }

    /// The elision note: `… and 1,772 more deactivations: …`, or, when none is shown,
    /// `400 membership removals not shown (size limit): …`.
    fn note(&self, more: usize, none_shown: bool, pointer: &str) -> String {
        let noun = if more == 1 { self.noun.0 } else { self.noun.1 };
        let (before, after) = self.note_frame;
        let more = thousands(more);
        if none_shown {
            format!("{before}{more} {noun} not shown (size limit): {pointer}{after}")
        } else {
            format!("{before}… and {more} more {noun}: {pointer}{after}")
        }
    }
}

pub(crate) fn render(plan: &Plan, opts: &MarkdownOptions) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "## idsync plan for {}\n", code(&plan.target));
    if let Some(line) = super::scope_line(plan) {
        let _ = writeln!(head, "> [!IMPORTANT]\n> {}\n", text(&line));
    }
    let _ = writeln!(head, "**{}**\n", text(&headline(plan)));
    if plan.has_changes() {
        let _ = writeln!(head, "{}\n", summary::table(plan, true));
    }

    let mut parts = Vec::new();
    if !plan.blocking.is_empty() {
        parts.push(Part {
            head: "> [!CAUTION]\n> **This plan cannot be applied.** Fix what is listed (in the config or the identity provider), then plan again.\n>\n".into(),
            entries: plan
                .blocking
                .iter()
                .map(|b| Entry {
                    text: format!("> - {}\n", text(b)),
                    objects: 1,
                })
                .collect(),
            tail: "\n".into(),
            note_frame: ("> - ", "\n"),
            noun: ("problem", "problems"),
            head_part: true,
            guards: false,
        });
    }
    parts.push(Part {
        head: String::new(),
        entries: guard_lines(plan)
            .into_iter()
            .map(|(line, tripped)| Entry {
                text: if tripped {
                    format!("> [!WARNING]\n> {}\n\n", text(&line))
                } else {
                    format!("{}\n\n", text(&line))
                },
                objects: 1,
            })
            .collect(),
        tail: super::cost_line(plan)
            .map(|c| format!("{}\n\n", text(&c)))
            .unwrap_or_default(),
        note_frame: ("", "\n\n"),
        noun: ("guard reading", "guard readings"),
        head_part: true,
        guards: true,
    });
    if !plan.warnings.is_empty() {
        parts.push(details(
            "Warnings",
            plan.warnings.len(),
            true,
            plan.warnings
                .iter()
                .map(|w| Entry {
                    text: format!("- ⚠️ {}\n", text(w)),
                    objects: 1,
                })
                .collect(),
            ("warning", "warnings"),
        ));
    }
    let mut secs = sections(plan);
    secs.sort_by_key(|(s, _)| risk(*s));
    for (section, actions) in secs {
        let count: usize = actions.iter().map(|a| a.weight()).sum();
        let mut entries = Vec::new();
        for a in actions {
            action_entries(a, &mut entries);
        }
        parts.push(details(
            section.title(),
            count,
            risk(section) <= RISKY,
            entries,
            noun(section),
        ));
    }
    if !plan.skipped.is_empty() {
        parts.push(details(
            "Left alone by a rule",
            plan.skipped.len(),
            false,
            plan.skipped
                .iter()
                .map(|s| Entry {
                    text: format!("- {}: {}\n", code(&s.key), text(&s.reason)),
                    objects: 1,
                })
                .collect(),
            ("user left alone", "users left alone"),
        ));
    }
    let foot = format!(
        "<sub>idsync {} · plan format {} · config {}</sub>\n",
        plan.idsync_version,
        plan.format_version,
        &plan.config_hash.get(..12).unwrap_or(&plan.config_hash)
    );

    let pointer = pointer(plan, opts);
    let shown = budget(&head, &foot, &parts, opts.limit, &pointer);
    let mut out = head;
    for (p, shown) in parts.iter().zip(shown) {
        out.push_str(&p.head);
        for e in &p.entries[..shown] {
            out.push_str(&e.text);
        }
        if shown < p.entries.len() {
            let more: usize = p.entries[shown..].iter().map(|e| e.objects).sum();
            out.push_str(&p.note(more, shown == 0, &pointer));
        }
        out.push_str(&p.tail);
    }
    out.push_str(&foot);
    out
}

/// How many entries of each part are shown: all of them when everything fits; otherwise entries in
/// order (the guard readings first), part after part, until one does not fit, and none after it
/// (head parts excepted), with room kept for every part's frame and elision note.
fn budget(head: &str, foot: &str, parts: &[Part], limit: usize, pointer: &str) -> Vec<usize> {
    let frames: usize = parts.iter().map(|p| p.head.len() + p.tail.len()).sum();
    let all: usize = parts
        .iter()
        .flat_map(|p| &p.entries)
        .map(|e| e.text.len())
        .sum();
    if head.len() + foot.len() + frames + all <= limit {
        return parts.iter().map(|p| p.entries.len()).collect();
    }
    // A note for fewer objects is never longer than one for them all.
    let notes: usize = parts
        .iter()
        .filter(|p| !p.entries.is_empty())
        .map(|p| {
            let most = p.objects().max(2);
            p.note(most, true, pointer)
                .len()
                .max(p.note(most, false, pointer).len())
        })
        .sum();
    let mut left = limit.saturating_sub(head.len() + foot.len() + frames + notes);
    let mut shown = vec![0; parts.len()];
    // The guard readings first (few, and they say whether the plan can be applied), then the other
    // parts in order.
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| !parts[i].guards);
    let mut full = true;
    for i in order {
        let p = &parts[i];
        if !full && !p.head_part {
            continue;
        }
        for e in &p.entries {
            if e.text.len() > left {
                full = false;
                break;
            }
            left -= e.text.len();
            shown[i] += 1;
        }
    }
    shown
}

/// Where the entries left out can be seen.
fn pointer(plan: &Plan, opts: &MarkdownOptions) -> String {
    if let Some(file) = &opts.plan_file {
        return code(&format!("idsync show {}", shell_word(file)));
    }
    let refused =
        !plan.blocking.is_empty() || plan.guard.blocks() || plan.blocking_limits().next().is_some();
    if refused {
        // A refused plan is not saved; the text rendering lists every entry.
        format!("{} lists them all", code("idsync plan"))
    } else {
        format!(
            "save the plan with {} and run {}",
            code("--out"),
            code("idsync show")
        )
    }
}

/// Sections from the riskiest; those up to [`RISKY`] are open.
fn risk(s: Section) -> u8 {
    match s {
        // Still in the IdP: most likely a config mistake.
        Section::Deactivate(DeactivateCause::OutOfScope) => 0,
        Section::Deactivate(DeactivateCause::GoneFromSources)
        | Section::Kind(Kind::DeactivateUser) => 1,
        Section::Deactivate(DeactivateCause::DisabledInSource) => 2,
        Section::Kind(Kind::RevokeApiTokens) => 3,
        Section::Kind(Kind::RemoveMembers) => 4,
        Section::Kind(Kind::UpdateUser) => 5,
        Section::Kind(Kind::ReactivateUser) => 6,
        Section::Kind(Kind::LinkUser) => 7,
        Section::Kind(Kind::CreateUser) => 8,
        Section::Kind(Kind::CreateGroup) => 9,
        Section::Kind(Kind::AddMembers) => 10,
    }
}

/// Sections up to reactivations take access away or change it: open.
const RISKY: u8 = 6;

fn noun(s: Section) -> (&'static str, &'static str) {
    match s {
        Section::Deactivate(_) | Section::Kind(Kind::DeactivateUser) => {
            ("deactivation", "deactivations")
        }
        Section::Kind(Kind::RevokeApiTokens) => ("API-token revocation", "API-token revocations"),
        Section::Kind(Kind::RemoveMembers) => ("membership removal", "membership removals"),
        Section::Kind(Kind::UpdateUser) => ("update", "updates"),
        Section::Kind(Kind::ReactivateUser) => ("reactivation", "reactivations"),
        Section::Kind(Kind::LinkUser) => ("link", "links"),
        Section::Kind(Kind::CreateUser) => ("user to create", "users to create"),
        Section::Kind(Kind::CreateGroup) => ("group to create", "groups to create"),
        Section::Kind(Kind::AddMembers) => ("membership addition", "membership additions"),
    }
}

fn details(
    title: &str,
    count: usize,
    open: bool,
    entries: Vec<Entry>,
    noun: (&'static str, &'static str),
) -> Part {
    Part {
        head: format!(
            "<details{}><summary>{title} ({})</summary>\n\n",
            if open { " open" } else { "" },
            thousands(count)
        ),
        entries,
        tail: "\n</details>\n\n".into(),
        note_frame: ("- ", "\n"),
        noun,
        head_part: false,
        guards: false,
    }
}

fn action_entries(a: &Action, entries: &mut Vec<Entry>) {
    let one = |text: String| Entry { text, objects: 1 };
    match a {
        Action::CreateUser {
            key, user, reason, ..
        }
        | Action::LinkUser {
            key, user, reason, ..
        } => {
            let name = user
                .display_name
                .as_deref()
                .map(|n| format!(" ({})", text(n)))
                .unwrap_or_default();
            entries.push(one(format!("- {}{name}: {}\n", code(key), text(reason))));
        }
        Action::UpdateUser {
            key,
            changes,
            reason,
            ..
        } => {
            // The item and its whole diff are one entry: a diff is never cut after its `-` line.
            let mut t = format!("- {}: {}\n```diff\n", code(key), text(reason));
            for c in changes {
                t.push_str(&field_diff::unified(&c.field, c.from.as_deref(), &c.to));
            }
            t.push_str("```\n");
            entries.push(one(t));
        }
        Action::ReactivateUser { key, reason, .. } | Action::DeactivateUser { key, reason, .. } => {
            entries.push(one(format!("- {}: {}\n", code(key), text(reason))));
        }
        Action::CreateGroup { group, reason, .. } => {
            entries.push(one(format!("- {}: {}\n", code(group), text(reason))));
        }
        Action::RevokeApiTokens {
            key,
            tokens,
            reason,
            ..
        } => {
            let held = super::tokens_held(*tokens);
            entries.push(one(format!("- {} ({held}): {}\n", code(key), text(reason))));
        }
        Action::AddMembers {
            group,
            batch,
            members,
            ..
        }
        | Action::RemoveMembers {
            group,
            batch,
            members,
            ..
        } => {
            // One entry per member; the batch's heading goes with its first member.
            let heading = format!(
                "- {} (batch {}/{}, {} member(s))\n",
                code(group),
                batch[0],
                batch[1],
                members.len()
            );
            if members.is_empty() {
                entries.push(Entry {
                    text: heading,
                    objects: 0,
                });
                return;
            }
            for (i, m) in members.iter().enumerate() {
                let line = format!("  - {}: {}\n", code(&m.key), text(&m.reason));
                entries.push(one(if i == 0 {
                    format!("{heading}{line}")
                } else {
                    line
                }));
            }
        }
    }
}

/// A failed `plan` as markdown, for CI to post: what failed (the error as idsync printed it, in a
/// code block so it reads exactly) and what to do. Kept under `limit`.
#[must_use]
pub fn failure(command: &str, e: &crate::error::Error, limit: usize) -> String {
    let mut report = format!("error: {e}");
    let message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let t = c.to_string();
        if !message.contains(&t) {
            let _ = write!(report, "\n  caused by: {t}");
        }
        cause = c.source();
    }
    let what_to_do = e.hint().map_or_else(
        || format!("fix what the error names, then run {} again", code(command)),
        |h| text(&h),
    );
    let head = format!(
        "## {} failed\n\n> [!CAUTION]\n> Nothing was planned, so there is nothing to review or apply from this run.\n\n**What to do:** {what_to_do}\n\n",
        text(command)
    );
    let foot = format!(
        "\n<sub>idsync {} · exit code 1 · the same error is on stderr</sub>\n",
        env!("CARGO_PKG_VERSION")
    );
    // The error goes in a code block whose fence no line of it can close.
    let longest = longest_run(&report, '`');
    let fence = "`".repeat(longest.max(2) + 1);
    let frame = head.len() + foot.len() + 2 * fence.len() + "text\n\n".len() + 80;
    if head.len() + foot.len() + report.len() + 2 * fence.len() + 8 > limit {
        let mut cut = limit.saturating_sub(frame);
        while !report.is_char_boundary(cut) {
            cut -= 1;
        }
        report.truncate(cut);
        report.push_str("\n… (cut here to stay under the limit)");
    }
    format!("{head}The error:\n\n{fence}text\n{report}\n{fence}\n{foot}")
}

/// A string as a code span: exact, whatever backticks or markdown it holds.
fn code(s: &str) -> String {
    if s.is_empty() {
        return "*(empty)*".into();
    }
    let s = s.replace(['\n', '\r'], " ");
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    let pad = s.starts_with('`')
        || s.ends_with('`')
        || (s.starts_with(' ') && s.ends_with(' ') && !s.trim().is_empty());
    if pad {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// Running text with every character markdown (and GitHub's math) would read as markup
/// backslash-escaped, and line breaks as spaces, so it renders exactly.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// A path as one shell word: as is when plain, else single-quoted.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// 1772 → "1,772".
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_hold_any_string() {
        assert_eq!(code("ana@example.com"), "`ana@example.com`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a\nb"), "`a b`");
        assert_eq!(code(""), "*(empty)*");
    }

    #[test]
    fn text_escapes_markup() {
        assert_eq!(
            text("^okta:(.*)-(.*)$ <b>|x|</b> [l](u) _a_ ~s~ &amp; \\ `c`"),
            r"^okta:(.\*)-(.\*)\$ \<b\>\|x\|\</b\> \[l\](u) \_a\_ \~s\~ \&amp; \\ \`c\`"
        );
        assert_eq!(text("two\nlines"), "two lines");
    }

    /// A plan with many of every kind of action, blocking problems, warnings and users left alone.
    fn big_plan() -> Plan {
        use crate::plan::{FieldChange, Member, UserFields};
        let long = "a reason long enough to matter, naming groups.mappings[3] (from_regex \"^okta:(.*)-(.*)$\")";
        let mut actions = Vec::new();
        for i in 0..300 {
            let key = format!("user{i:04}@example.com");
            actions.push(Action::CreateUser {
                key: key.clone(),
                user: UserFields {
                    email: key.clone(),
                    display_name: Some(format!("User *{i}*")),
                    ..UserFields::default()
                },
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            });
            actions.push(Action::UpdateUser {
                key: key.clone(),
                id: format!("s{i}"),
                changes: vec![FieldChange {
                    field: "title".into(),
                    from: Some("Engineer".into()),
                    to: "Staff\nEngineer".into(),
                    reason: long.into(),
                    reason_code: crate::plan::ReasonCode::Unknown,
                }],
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            });
            actions.push(Action::ReactivateUser {
                key: key.clone(),
                id: format!("s{i}"),
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            });
            actions.push(Action::LinkUser {
                key: key.clone(),
                account_id: None,
                user: UserFields::default(),
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            });
            for (n, cause) in [
                DeactivateCause::GoneFromSources,
                DeactivateCause::OutOfScope,
                DeactivateCause::DisabledInSource,
            ]
            .into_iter()
            .enumerate()
            {
                actions.push(Action::DeactivateUser {
                    key: format!("leaver{n}-{i:04}@example.com"),
                    id: format!("x{n}-{i}"),
                    account_id: Some(format!("acc{i}")),
                    cause,
                    reason: long.into(),
                    reason_code: crate::plan::ReasonCode::Unknown,
                });
            }
            actions.push(Action::RevokeApiTokens {
                key: key.clone(),
                id: format!("s{i}"),
                account_id: format!("acc{i}"),
                tokens: Some(2),
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            });
        }
        let members: Vec<Member> = (0..500)
            .map(|i| Member {
                key: format!("m{i:04}@example.com"),
                id: None,
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            })
            .collect();
        for g in 0..3 {
            actions.push(Action::CreateGroup {
                group: format!("group_{g}"),
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            });
            actions.push(Action::AddMembers {
                group: format!("group_{g}"),
                group_id: None,
                batch: [1, 1],
                members: members.clone(),
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            });
            actions.push(Action::RemoveMembers {
                group: format!("group_{g}"),
                group_id: format!("g{g}"),
                batch: [1, 1],
                members: members.clone(),
                reason: long.into(),
                reason_code: crate::plan::ReasonCode::Unknown,
            });
        }
        let mut plan = Plan {
            format_version: crate::plan::FORMAT_VERSION.into(),
            idsync_version: "0.0.0".into(),
            created_at: None,
            config_hash: "0123456789abcdef".into(),
            target: "file:atlassian.yaml".into(),
            sources: Vec::new(),
            scope: None,
            summary: crate::plan::Summary::default(),
            guard: crate::plan::Guard::check(
                crate::rules::DeactivationLimit::Count(5),
                2,
                900,
                false,
            ),
            guards: Vec::new(),
            actions,
            warnings: (0..200).map(|i| format!("warning {i}: {long}")).collect(),
            blocking: (0..50).map(|i| format!("problem {i}: {long}")).collect(),
            skipped: (0..200)
                .map(|i| crate::plan::Skipped {
                    key: format!("kept{i}@example.com"),
                    reason: long.into(),
                    reason_code: crate::plan::ReasonCode::Unknown,
                })
                .collect(),
            preconditions: crate::plan::Preconditions::default(),
            cost: None,
            digest: String::new(),
            signature: None,
        };
        plan.finish();
        plan
    }

    /// At any limit from the smallest up: under the limit, whole entries only, every section shown
    /// only when all riskier ones are complete, every note counting exactly what was left out.
    #[test]
    fn any_limit_is_kept_and_risk_is_cut_last() {
        let plan = big_plan();
        let everything = render(
            &plan,
            &MarkdownOptions {
                limit: usize::MAX,
                plan_file: None,
            },
        );
        assert!(!everything.contains(" not shown (size limit)") && !everything.contains("… and "));
        let mut last_shown = 0;
        for limit in [
            MARKDOWN_LIMIT_MIN,
            10_000,
            30_000,
            MARKDOWN_LIMIT,
            200_000,
            400_000,
        ] {
            let md = render(
                &plan,
                &MarkdownOptions {
                    limit,
                    plan_file: Some("my plan.json".into()),
                },
            );
            assert!(md.len() <= limit, "{} > {limit}", md.len());
            assert!(md.contains("`idsync show 'my plan.json'`"));
            assert!(
                md.contains("> GUARD TRIPPED: 900 deactivation(s)"),
                "many blocking problems never hide a tripped guard"
            );
            assert_eq!(md.matches("```").count() % 2, 0);
            // Every list item shown is a whole line of the full rendering, in the same order.
            let lines: Vec<&str> = md
                .lines()
                .filter(|l| l.starts_with("- `") || l.starts_with("  - "))
                .collect();
            let mut rest = everything.as_str();
            for l in &lines {
                let at = rest
                    .find(&format!("{l}\n"))
                    .expect("a whole entry of the full plan");
                rest = &rest[at + l.len()..];
            }
            assert!(lines.len() >= last_shown, "a larger limit shows no less");
            last_shown = lines.len();
            // Once a section is cut, no later section shows an entry.
            let mut cut = false;
            for section in md.split("<details").skip(1) {
                let shown = section.lines().filter(|l| l.starts_with("- `")).count();
                if cut {
                    assert_eq!(shown, 0, "{limit}: {section:.200}");
                }
                cut |= section.contains(" not shown (size limit)") || section.contains("… and ");
            }
        }
    }

    #[test]
    fn numbers_and_shell_words() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_772), "1,772");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(shell_word("plans/plan.json"), "plans/plan.json");
        assert_eq!(shell_word("my plan.json"), "'my plan.json'");
        assert_eq!(shell_word("it's.json"), r"'it'\''s.json'");
    }
}
