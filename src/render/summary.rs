//! The summary table (comfy-table).

use comfy_table::{presets, CellAlignment, Table};

use crate::plan::{Kind, Plan};

/// A table of what the plan changes, one row per kind of action.
pub(crate) fn table(plan: &Plan, markdown: bool) -> String {
    let mut t = Table::new();
    t.load_preset(if markdown {
        presets::ASCII_MARKDOWN
    } else {
        presets::UTF8_FULL_CONDENSED
    });
    t.set_header(vec!["Change", "Count"]);
    for kind in Kind::ALL {
        // Shown only when planned: most targets never revoke tokens.
        if kind == Kind::RevokeApiTokens && plan.summary.count(kind) == 0 {
            continue;
        }
        let label = match kind {
            Kind::AddMembers => "add_members (memberships)",
            Kind::RemoveMembers => "remove_members (memberships)",
            k => k.as_str(),
        };
        t.add_row(vec![
            label.to_string(),
            plan.summary.count(kind).to_string(),
        ]);
    }
    t.add_row(vec![
        "total".to_string(),
        plan.summary.total_changes.to_string(),
    ]);
    if let Some(c) = t.column_mut(1) {
        c.set_cell_alignment(CellAlignment::Right);
    }
    t.to_string()
}
