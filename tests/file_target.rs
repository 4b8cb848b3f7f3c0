//! The file target's apply: a user renamed and reactivated (or with any other change at once) is
//! found by every action, and memberships follow renames, in every group, managed or not.

use idsync::model::Snapshot;

use crate::support::{run, Scratch};

const CONFIG: &str = r#"version: 1
sources: [{name: idp, type: file, path: idp.yaml}]
target: {type: file, path: atlassian.yaml}
groups:
  mappings:
    - {from: "idp:Engineering", to: engineering}
    - {from: "idp:Design", to: design}
  manage_unmapped_members: true
cleanup:
  max_deactivations: 100%
  max_updates: 100%
  max_membership_removals: 100%
  max_membership_removals_per_group: 100%
"#;

fn snapshot(s: &Scratch, file: &str) -> Snapshot {
    yaml_serde::from_str(&s.read(file)).unwrap()
}

/// Plans to a file, applies it, and checks that a new plan has nothing left to do.
fn plan_apply_converge(s: &Scratch) -> String {
    let (code, _, stderr) = run(s, &mut s.idsync(&["plan", "--out", "plan.json", "-q"]));
    assert_eq!(code, 0, "{stderr}");
    let plan = s.read("plan.json");
    let (code, stdout, stderr) = run(s, &mut s.idsync(&["apply", "plan.json", "--auto-approve"]));
    assert_eq!(code, 0, "apply failed:\n{stdout}\n{stderr}\nplan: {plan}");
    let (code, stdout, _) = run(s, &mut s.idsync(&["plan", "--detailed-exitcode"]));
    assert_eq!(code, 0, "not converged:\n{stdout}");
    plan
}

#[test]
fn a_renamed_inactive_user_without_an_id_is_renamed_and_reactivated() {
    let s = Scratch::new();
    s.write("idsync.yaml", CONFIG)
        .write(
            "idp.yaml",
            r"users:
  - {email: ana.new@example.com, id: idp-ana}
  - {email: ben@example.com, id: idp-ben}
groups:
  - {name: Engineering, members: [ana.new@example.com, ben@example.com]}
",
        )
        .write(
            // No `id`: the file target refers to ana by her email, which the plan changes.
            "atlassian.yaml",
            r"users:
  - {email: ana@example.com, externalId: idp-ana, active: false}
  - {email: ben@example.com, externalId: idp-ben}
groups:
  - {name: engineering, members: [ana@example.com, ben@example.com]}
",
        );
    let plan = plan_apply_converge(&s);
    assert!(plan.contains(r#""action": "update_user""#), "{plan}");
    assert!(plan.contains(r#""action": "reactivate_user""#), "{plan}");
    let after = snapshot(&s, "atlassian.yaml");
    let ana = after
        .users
        .iter()
        .find(|u| u.external_id.as_deref() == Some("idp-ana"))
        .unwrap();
    assert_eq!(ana.email, "ana.new@example.com");
    assert!(ana.active);
    assert_eq!(
        after.groups[0].members,
        ["ana.new@example.com", "ben@example.com"]
    );
}

#[test]
fn memberships_follow_renames_in_every_group() {
    let s = Scratch::new();
    s.write("idsync.yaml", CONFIG)
        .write(
            "idp.yaml",
            r"users:
  - {email: ana.new@example.com, id: idp-ana}
  - {email: ben.new@example.com, id: idp-ben}
  - {email: cy@example.com, id: idp-cy}
groups:
  - {name: Engineering, members: [ana.new@example.com, cy@example.com]}
  - {name: Design, members: [ben.new@example.com, ana.new@example.com]}
",
        )
        .write(
            // ana has no id and is inactive; ben has one. Both are renamed, both leave a managed
            // group and join another, and both are in a group idsync does not manage.
            "atlassian.yaml",
            r"users:
  - {email: ana@example.com, externalId: idp-ana, active: false}
  - {email: ben@example.com, id: scim-ben, externalId: idp-ben}
  - {email: cy@example.com, id: scim-cy, externalId: idp-cy}
groups:
  - {name: engineering, id: g-eng, members: [ana@example.com, ben@example.com]}
  - {name: design, members: [cy@example.com]}
  - {name: unmanaged, id: g-un, members: [Ben@Example.com, cy@example.com, ana@example.com, gone@example.com]}
",
        );
    plan_apply_converge(&s);
    let after = snapshot(&s, "atlassian.yaml");
    let members = |name: &str| {
        after
            .groups
            .iter()
            .find(|g| g.name == name)
            .unwrap()
            .members
            .clone()
    };
    assert_eq!(
        members("engineering"),
        ["ana.new@example.com", "cy@example.com"]
    );
    assert_eq!(
        members("design"),
        ["ana.new@example.com", "ben.new@example.com"]
    );
    // Not managed: only the renames show; the member that names no user stays as it was.
    assert_eq!(
        members("unmanaged"),
        [
            "ben.new@example.com",
            "cy@example.com",
            "ana.new@example.com",
            "gone@example.com"
        ]
    );
    assert!(after.users.iter().all(|u| u.active));
}
