//! The text rendering: `+ ~ -` lines with reasons, attribute diffs, warnings, the guard and a summary
//! table. Coloured when writing to a terminal (or with `--color always`).

use std::io::{self, Write};

use owo_colors::{OwoColorize, Style};

use super::{field_diff, guard_lines, headline, sections, summary, Section};
use crate::plan::{Action, Plan};

struct Styles {
    add: Style,
    change: Style,
    remove: Style,
    head: Style,
    dim: Style,
    warn: Style,
}

impl Styles {
    fn new(color: bool) -> Styles {
        if color {
            Styles {
                add: Style::new().green(),
                change: Style::new().yellow(),
                remove: Style::new().red(),
                head: Style::new().bold(),
                dim: Style::new().dimmed(),
                warn: Style::new().yellow().bold(),
            }
        } else {
            let s = Style::new();
            Styles {
                add: s,
                change: s,
                remove: s,
                head: s,
                dim: s,
                warn: s,
            }
        }
    }

    fn sign(&self, sign: char) -> Style {
        match sign {
            '+' => self.add,
            '~' => self.change,
            _ => self.remove,
        }
    }
}

pub(crate) fn render(plan: &Plan, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let st = Styles::new(color);
    writeln!(
        out,
        "{}",
        format!("idsync plan for {}", plan.target).style(st.head)
    )?;
    writeln!(out)?;
    if let Some(line) = super::scope_line(plan) {
        writeln!(out, "{}", line.style(st.warn))?;
        writeln!(out)?;
    }
    for (section, actions) in sections(plan) {
        let sign = section.sign();
        let count: usize = actions.iter().map(|a| a.weight()).sum();
        writeln!(
            out,
            "{}",
            format!("{} ({count})", section.title()).style(st.head)
        )?;
        for a in actions {
            action(a, section, &st, color, out)?;
        }
        let _ = sign;
        writeln!(out)?;
    }
    if !plan.warnings.is_empty() {
        writeln!(
            out,
            "{}",
            format!("Warnings ({})", plan.warnings.len()).style(st.warn)
        )?;
        for w in &plan.warnings {
            writeln!(out, "  ! {w}")?;
        }
        writeln!(out)?;
    }
    if !plan.skipped.is_empty() {
        writeln!(
            out,
            "{}",
            format!("Left alone by a rule ({})", plan.skipped.len()).style(st.head)
        )?;
        for s in &plan.skipped {
            writeln!(out, "  = {}  {}", s.key, s.reason.style(st.dim))?;
        }
        writeln!(out)?;
    }
    for b in &plan.blocking {
        writeln!(out, "{}", format!("BLOCKED: {b}").style(st.warn))?;
    }
    for (guard, tripped) in guard_lines(plan) {
        if tripped {
            writeln!(out, "{}", guard.style(st.warn))?;
        } else {
            writeln!(out, "{guard}")?;
        }
    }
    if let Some(cost) = super::cost_line(plan) {
        writeln!(out, "{cost}")?;
    }
    writeln!(out)?;
    if plan.has_changes() {
        writeln!(out, "{}", summary::table(plan, false))?;
    }
    writeln!(out, "{}", headline(plan).style(st.head))
}

fn action(
    a: &Action,
    section: Section,
    st: &Styles,
    color: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let sign = section.sign();
    let s = st.sign(sign);
    let kind = a.kind().as_str();
    match a {
        Action::CreateUser {
            key, user, reason, ..
        }
        | Action::LinkUser {
            key, user, reason, ..
        } => {
            writeln!(out, "  {} {key}", format!("{sign} {kind}").style(s))?;
            writeln!(out, "      {}", format!("because {reason}").style(st.dim))?;
            let mut fields = vec![
                ("userName", user.user_name.as_deref()),
                ("externalId", user.external_id.as_deref()),
            ];
            fields.push(("givenName", user.given_name.as_deref()));
            fields.push(("familyName", user.family_name.as_deref()));
            fields.push(("displayName", user.display_name.as_deref()));
            for (k, v) in fields {
                if let Some(v) = v {
                    writeln!(out, "      {k}: {v:?}")?;
                }
            }
            for (k, v) in &user.attributes {
                writeln!(out, "      {k}: {v:?}")?;
            }
        }
        Action::UpdateUser {
            key,
            changes,
            reason,
            ..
        } => {
            writeln!(out, "  {} {key}", format!("{sign} {kind}").style(s))?;
            writeln!(out, "      {}", format!("because {reason}").style(st.dim))?;
            for c in changes {
                writeln!(
                    out,
                    "      {} {}: {}  {}",
                    "~".style(st.change),
                    c.field,
                    field_diff::inline(c.from.as_deref(), &c.to, color),
                    format!("({})", c.reason).style(st.dim)
                )?;
            }
        }
        Action::ReactivateUser { key, reason, .. } | Action::DeactivateUser { key, reason, .. } => {
            writeln!(out, "  {} {key}", format!("{sign} {kind}").style(s))?;
            writeln!(out, "      {}", format!("because {reason}").style(st.dim))?;
        }
        Action::RevokeApiTokens {
            key,
            tokens,
            reason,
            ..
        } => {
            let held = super::tokens_held(*tokens);
            writeln!(
                out,
                "  {} {key} ({held})",
                format!("{sign} {kind}").style(s)
            )?;
            writeln!(out, "      {}", format!("because {reason}").style(st.dim))?;
        }
        Action::CreateGroup { group, reason, .. } => {
            writeln!(out, "  {} {group}", format!("{sign} {kind}").style(s))?;
            writeln!(out, "      {}", format!("because {reason}").style(st.dim))?;
        }
        Action::AddMembers {
            group,
            batch,
            members,
            reason,
            ..
        }
        | Action::RemoveMembers {
            group,
            batch,
            members,
            reason,
            ..
        } => {
            writeln!(
                out,
                "  {} {group} (batch {}/{}, {} member(s))",
                format!("{sign} {kind}").style(s),
                batch[0],
                batch[1],
                members.len()
            )?;
            writeln!(out, "      {}", format!("because {reason}").style(st.dim))?;
            for m in members {
                writeln!(
                    out,
                    "      {} {}  {}",
                    sign.style(s),
                    m.key,
                    format!("— {}", m.reason).style(st.dim)
                )?;
            }
        }
    }
    Ok(())
}
