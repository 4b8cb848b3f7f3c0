//! The markdown rendering for pull-request comments: a summary table, then a collapsible `<details>`
//! per section. Kept under GitHub's comment limit by eliding lines, with counts.

use std::fmt::Write as _;

use super::{field_diff, guard_lines, headline, sections, summary};
use crate::plan::{Action, Plan};

/// GitHub's limit on a comment's length, in characters.
pub const MARKDOWN_LIMIT: usize = 65_536;

struct Block {
    title: String,
    lines: Vec<String>,
}

pub(crate) fn render(plan: &Plan) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "## idsync plan for `{}`\n", plan.target);
    let _ = writeln!(head, "**{}**\n", headline(plan));
    if plan.has_changes() {
        let _ = writeln!(head, "{}\n", summary::table(plan, true));
    }
    for b in &plan.blocking {
        let _ = writeln!(
            head,
            "> [!CAUTION]\n> This plan cannot be applied: {}\n",
            escape(b)
        );
    }
    for (guard, tripped) in guard_lines(plan) {
        if tripped {
            let _ = writeln!(head, "> [!WARNING]\n> {}\n", escape(&guard));
        } else {
            let _ = writeln!(head, "{}\n", escape(&guard));
        }
    }
    if let Some(cost) = super::cost_line(plan) {
        let _ = writeln!(head, "{cost}\n");
    }

    let mut blocks = Vec::new();
    for (section, actions) in sections(plan) {
        let count: usize = actions.iter().map(|a| a.weight()).sum();
        let mut lines = Vec::new();
        for a in actions {
            action_lines(a, &mut lines);
        }
        blocks.push(Block {
            title: format!("{} ({count})", section.title()),
            lines,
        });
    }
    if !plan.warnings.is_empty() {
        blocks.push(Block {
            title: format!("Warnings ({})", plan.warnings.len()),
            lines: plan
                .warnings
                .iter()
                .map(|w| format!("- ⚠️ {}", escape(w)))
                .collect(),
        });
    }
    if !plan.skipped.is_empty() {
        blocks.push(Block {
            title: format!("Left alone by a rule ({})", plan.skipped.len()),
            lines: plan
                .skipped
                .iter()
                .map(|s| format!("- `{}`: {}", s.key, escape(&s.reason)))
                .collect(),
        });
    }
    let foot = format!(
        "\n<sub>idsync {} · plan format {} · config {}</sub>\n",
        plan.idsync_version,
        plan.format_version,
        &plan.config_hash.get(..12).unwrap_or(&plan.config_hash)
    );

    // The largest number of lines per section that keeps the whole under the limit.
    let longest = blocks.iter().map(|b| b.lines.len()).max().unwrap_or(0);
    let fits = |cap: usize| {
        head.len() + foot.len() + blocks.iter().map(|b| block_len(b, cap)).sum::<usize>()
            <= MARKDOWN_LIMIT
    };
    let cap = if fits(longest) {
        longest
    } else {
        let (mut lo, mut hi) = (0, longest);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    };
    let mut out = head;
    for b in &blocks {
        write_block(&mut out, b, cap);
    }
    out.push_str(&foot);
    out
}

const ELIDED_MAX: usize = 120;

fn block_len(b: &Block, cap: usize) -> usize {
    let shown: usize = b.lines.iter().take(cap).map(|l| l.len() + 1).sum();
    60 + b.title.len() + shown + if b.lines.len() > cap { ELIDED_MAX } else { 0 }
}

fn write_block(out: &mut String, b: &Block, cap: usize) {
    let _ = writeln!(out, "<details><summary>{}</summary>\n", escape(&b.title));
    let mut in_code = false;
    for l in b.lines.iter().take(cap) {
        in_code ^= l == "```diff" || (in_code && l == "```");
        let _ = writeln!(out, "{l}");
    }
    if in_code {
        let _ = writeln!(out, "```");
    }
    if b.lines.len() > cap {
        let _ = writeln!(
            out,
            "\n- … and {} more line(s) not shown to stay under GitHub's comment limit; see the JSON plan",
            b.lines.len() - cap
        );
    }
    let _ = writeln!(out, "\n</details>\n");
}

fn escape(s: &str) -> String {
    s.replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}

fn action_lines(a: &Action, lines: &mut Vec<String>) {
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
                .map(|n| format!(" ({})", escape(n)))
                .unwrap_or_default();
            lines.push(format!("- `{key}`{name}: {}", escape(reason)));
        }
        Action::UpdateUser {
            key,
            changes,
            reason,
            ..
        } => {
            lines.push(format!("- `{key}`: {}", escape(reason)));
            lines.push("```diff".into());
            for c in changes {
                lines.extend(
                    field_diff::unified(&c.field, c.from.as_deref(), &c.to)
                        .lines()
                        .map(String::from),
                );
            }
            lines.push("```".into());
        }
        Action::ReactivateUser { key, reason, .. } | Action::DeactivateUser { key, reason, .. } => {
            lines.push(format!("- `{key}`: {}", escape(reason)));
        }
        Action::CreateGroup { group, reason, .. } => {
            lines.push(format!("- `{group}`: {}", escape(reason)))
        }
        Action::RevokeApiTokens {
            key,
            tokens,
            reason,
            ..
        } => {
            let held = tokens.map_or_else(
                || "tokens listed when applied".into(),
                |n| format!("{n} token(s)"),
            );
            lines.push(format!("- `{key}` ({held}): {}", escape(reason)));
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
            lines.push(format!(
                "- **{}** (batch {}/{}, {} member(s))",
                escape(group),
                batch[0],
                batch[1],
                members.len()
            ));
            for m in members {
                lines.push(format!("  - `{}`: {}", m.key, escape(&m.reason)));
            }
        }
    }
}
