//! Property: over random IdP and Atlassian snapshots, plan → apply → plan is empty, every action
//! applies cleanly, and protected users and admins are never touched.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use idsync::cli::ColorChoice;
use idsync::model::{Group, Snapshot, User};
use idsync::output::Printer;
use idsync::plan::{Action, Plan};
use proptest::prelude::*;

const NAMES: [&str; 8] = ["breakglass", "ana", "ben", "cy", "dee", "eli", "fay", "hal"];
const GIVEN: [&str; 3] = ["Ana", "Bo", "Cyd"];
const IDP_GROUPS: [&str; 3] = ["Engineering", "atl-design", "Finance"];
const TARGET_GROUPS: [&str; 4] = ["engineering", "design", "all-staff", "unmanaged"];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap()
}

fn email(name: &str, variant: u8, upper: bool) -> String {
    let e = if variant == 0 {
        format!("{name}@example.com")
    } else {
        format!("{name}.new@example.com")
    };
    if upper {
        e.to_uppercase()
    } else {
        e
    }
}

#[derive(Debug, Clone)]
struct IdpUser {
    active: bool,
    variant: u8,
    upper: bool,
    given: usize,
    groups: u8,
}

#[derive(Debug, Clone)]
struct TargetUser {
    ext: u8,
    variant: u8,
    in_directory: bool,
    active: bool,
    admin: bool,
    last_active: u8,
    given: usize,
    groups: u8,
}

#[derive(Debug, Clone)]
struct Case {
    idp: Vec<Option<IdpUser>>,
    target: Vec<Option<TargetUser>>,
    grace: bool,
    deactivate_undated: bool,
    require: bool,
    manage_unmapped: bool,
    deactivate_missing: bool,
}

fn idp_user() -> impl Strategy<Value = Option<IdpUser>> {
    proptest::option::weighted(
        0.8,
        (
            any::<bool>(),
            0u8..2,
            prop::bool::weighted(0.2),
            0usize..3,
            0u8..8,
        )
            .prop_map(|(active, variant, upper, given, groups)| IdpUser {
                active: active || variant == 0,
                variant,
                upper,
                given,
                groups,
            }),
    )
}

fn target_user() -> impl Strategy<Value = Option<TargetUser>> {
    proptest::option::weighted(
        0.8,
        (
            0u8..3,
            0u8..2,
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.15),
            0u8..3,
            0usize..3,
            0u8..16,
        )
            .prop_map(
                |(ext, variant, in_directory, active, admin, last_active, given, groups)| {
                    TargetUser {
                        ext,
                        variant,
                        in_directory,
                        active,
                        admin,
                        last_active,
                        given,
                        groups,
                    }
                },
            ),
    )
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(idp_user(), NAMES.len()),
        prop::collection::vec(target_user(), NAMES.len()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(
                idp,
                target,
                grace,
                deactivate_undated,
                require,
                manage_unmapped,
                deactivate_missing,
            )| Case {
                idp,
                target,
                grace,
                deactivate_undated,
                require,
                manage_unmapped,
                deactivate_missing,
            },
        )
}

fn snapshots(c: &Case) -> (Snapshot, Snapshot) {
    let mut idp = Snapshot::default();
    let mut idp_members: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, u) in c.idp.iter().enumerate() {
        let Some(u) = u else { continue };
        let mut user = User::new(&email(NAMES[i], u.variant, u.upper));
        user.id = Some(format!("id-{}", NAMES[i]));
        user.given_name = Some(GIVEN[u.given].into());
        user.family_name = Some(NAMES[i].to_uppercase());
        user.active = u.active;
        for (b, g) in IDP_GROUPS.iter().enumerate() {
            if u.groups & (1 << b) != 0 {
                idp_members
                    .entry(g)
                    .or_default()
                    .push(user.email.to_lowercase());
            }
        }
        idp.users.push(user);
    }
    idp.groups = idp_members
        .into_iter()
        .map(|(name, members)| Group {
            name: name.into(),
            id: None,
            members,
        })
        .collect();

    let mut target = Snapshot::default();
    let mut members: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, u) in c.target.iter().enumerate() {
        let Some(u) = u else { continue };
        let mut user = User::new(&email(NAMES[i], u.variant, false));
        user.id = Some(format!("scim-{}", NAMES[i]));
        user.external_id = match u.ext {
            0 => None,
            1 => Some(format!("id-{}", NAMES[i])),
            _ => Some(format!("stale-{}", NAMES[i])),
        };
        user.given_name = Some(GIVEN[u.given].into());
        user.in_directory = u.in_directory;
        user.active = u.active;
        user.admin = u.admin;
        user.last_active = match u.last_active {
            0 => None,
            1 => Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()),
            _ => Some(Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap()),
        };
        if u.in_directory {
            for (b, g) in TARGET_GROUPS.iter().enumerate() {
                if u.groups & (1 << b) != 0 {
                    members.entry(g).or_default().push(user.email.clone());
                }
            }
        }
        target.users.push(user);
    }
    target.groups = members
        .into_iter()
        .map(|(name, members)| Group {
            name: name.into(),
            id: Some(format!("g-{name}")),
            members,
        })
        .collect();
    (idp, target)
}

fn config(c: &Case) -> String {
    format!(
        r#"version: 1
sources: [{{name: idp, type: file, path: idp.json}}]
target: {{type: file, path: atlassian.json}}
users:
  require_groups: {require}
  exclude: ["hal*"]
  attributes:
    displayName: "{{givenName}} {{familyName}}"
groups:
  mappings:
    - {{from: "idp:Engineering", to: engineering}}
    - {{from_regex: "^idp:atl-(.+)$", to: "$1"}}
  default_groups: [all-staff]
  manage_unmapped_members: {manage}
cleanup:
  deactivate_missing: {missing}
  grace_days: {grace}
  without_last_active: {undated}
  protect: ["breakglass@example.com"]
  skip_admins: true
  max_deactivations: 100%
"#,
        require = if c.require {
            r#"["idp:Engineering", "idp:atl-design"]"#
        } else {
            "[]"
        },
        manage = c.manage_unmapped,
        missing = c.deactivate_missing,
        grace = if c.grace { 30 } else { 0 },
        undated = if c.deactivate_undated {
            "deactivate"
        } else {
            "keep"
        },
    )
}

fn plan(
    dir: &std::path::Path,
    rt: &tokio::runtime::Runtime,
) -> (Plan, Box<dyn idsync::targets::Target>) {
    let loaded = idsync::config::load(&dir.join("idsync.yaml")).expect("config loads");
    let printer = Printer::new(ColorChoice::Never, true, false);
    let planned = rt
        .block_on(idsync::engine::make_plan(
            &loaded,
            &printer,
            now(),
            idsync::plan::Overrides::default(),
        ))
        .expect("plans");
    (planned.plan, planned.target)
}

fn touches(a: &Action, key: &str) -> bool {
    a.subject() == key
        || match a {
            Action::AddMembers { members, .. } | Action::RemoveMembers { members, .. } => {
                members.iter().any(|m| m.key == key)
            }
            _ => false,
        }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn plan_apply_plan_is_empty(c in case()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (idp, target) = snapshots(&c);
        std::fs::write(dir.path().join("idsync.yaml"), config(&c)).unwrap();
        std::fs::write(dir.path().join("idp.json"), serde_json::to_string(&idp).unwrap()).unwrap();
        std::fs::write(dir.path().join("atlassian.json"), serde_json::to_string(&target).unwrap()).unwrap();

        let untouchable: Vec<&User> = target
            .users
            .iter()
            .filter(|u| u.admin || u.email.eq_ignore_ascii_case("breakglass@example.com"))
            .collect();

        let (first, mut t) = plan(dir.path(), &rt);
        for u in &untouchable {
            for a in &first.actions {
                prop_assert!(!touches(a, &u.key()), "{} was touched by {:?}", u.email, a);
            }
        }
        prop_assert!(!first.actions.iter().any(|a| touches(a, "breakglass@example.com")));

        let outcome = rt.block_on(idsync::apply::execute(&first, t.as_mut(), &mut |_, _| {}));
        let failures: Vec<_> = outcome.results.iter().filter_map(|r| r.error.clone()).collect();
        prop_assert!(failures.is_empty(), "failed actions: {:?}\nplan: {:#?}", failures, first.actions);
        prop_assert!(outcome.written);

        let (second, _) = plan(dir.path(), &rt);
        prop_assert!(second.actions.is_empty(), "not converged: {:#?}\nfirst plan: {:#?}", second.actions, first.actions);

        // Protected users and admins are exactly as they were.
        let after: Snapshot = serde_json::from_str(&std::fs::read_to_string(dir.path().join("atlassian.json")).unwrap()).unwrap();
        for u in untouchable {
            prop_assert!(after.users.contains(u), "{} changed", u.email);
        }
    }
}
