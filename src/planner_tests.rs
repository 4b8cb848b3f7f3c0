//! The pure planning core (`desired` then `diff`) over in-memory snapshots: no process, no file,
//! no network. Each test states a situation a directory really gets into and the plan it must give.

use chrono::{TimeZone, Utc};

use crate::desired::{self, SourceData};
use crate::diff::{self, Context};
use crate::model::{GroupNames, Indexed, Snapshot};
use crate::plan::{Action, Overrides, Plan};

/// A config around `body` (YAML lines after `target:`), with the sources named in `sources`.
fn loaded(sources: &[&str], body: &str) -> crate::config::Loaded {
    let list: Vec<String> = sources
        .iter()
        .map(|s| format!("{{name: {s}, type: file, path: {s}.yaml}}"))
        .collect();
    let text = format!(
        "version: 1\nsources: [{}]\ntarget: {{type: file, path: t.yaml}}\n{body}",
        list.join(", ")
    );
    crate::config::load_str(std::path::Path::new("idsync.yaml"), &text, &|_| None)
        .unwrap_or_else(|e| panic!("test config: {e}"))
}

fn snapshot(yaml: &str) -> Snapshot {
    yaml_serde::from_str(yaml).expect("test snapshot")
}

/// Plans `target` towards `sources` (name, snapshot YAML) under the config `body`.
fn plan(sources: &[(&str, &str)], target: &str, body: &str) -> Plan {
    let names: Vec<&str> = sources.iter().map(|(n, _)| *n).collect();
    let loaded = loaded(&names, body);
    let mut data: Vec<SourceData> = sources
        .iter()
        .map(|(name, yaml)| SourceData {
            name: (*name).to_string(),
            data: Indexed::with(snapshot(yaml), GroupNames::MayRepeat).unwrap(),
        })
        .collect();
    let desired =
        desired::build(&mut data, &loaded.rules, &|_| None).expect("group references resolve");
    let target = Indexed::new_target(snapshot(target)).unwrap();
    let ctx = Context {
        rules: &loaded.rules,
        cleanup: &loaded.rules.cleanup,
        manage_unmapped_members: loaded.config.groups.manage_unmapped_members,
        now: Utc.with_ymd_and_hms(2026, 10, 1, 12, 0, 0).unwrap(),
        overrides: Overrides::default(),
        config_hash: loaded.hash.clone(),
        target_name: "file:t.yaml".into(),
        target_concurrency: None,
        write_budget: None,
        read_budgets: Vec::new(),
        action_requests: &|_| 1,
        last_active_lag: chrono::Duration::zero(),
        target_warnings: Vec::new(),
        sources: Vec::new(),
    };
    diff::diff(&desired, &target, &ctx)
}

/// One line per action: kind, object, and what changes.
fn lines(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::CreateUser { key, .. } => format!("create {key}"),
            Action::LinkUser { key, .. } => format!("link {key}"),
            Action::CreateGroup { group, .. } => format!("create group {group}"),
            Action::AddMembers { group, members, .. } => format!(
                "add {group}: {}",
                members
                    .iter()
                    .map(|m| m.key.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Action::RemoveMembers { group, members, .. } => format!(
                "remove {group}: {}",
                members
                    .iter()
                    .map(|m| m.key.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Action::UpdateUser { key, changes, .. } => format!(
                "update {key}: {}",
                changes
                    .iter()
                    .map(|c| format!(
                        "{} {:?}->{}",
                        c.field,
                        c.from.as_deref().unwrap_or(""),
                        c.to
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Action::ReactivateUser { key, .. } => format!("reactivate {key}"),
            Action::DeactivateUser { key, .. } => format!("deactivate {key}"),
            Action::RevokeApiTokens { key, .. } => format!("revoke {key}"),
        })
        .collect()
}

const ENG: &str = "groups: {mappings: [{from: \"idp:Eng\", to: eng}]}\n";

fn skipped(plan: &Plan) -> Vec<(String, crate::plan::ReasonCode)> {
    plan.skipped
        .iter()
        .map(|s| (s.key.clone(), s.reason_code))
        .collect()
}

#[test]
fn a_rename_is_an_update_and_keeps_the_memberships() {
    let p = plan(
        &[(
            "idp",
            "users: [{id: u1, email: Ana.New@x.com, givenName: Ana}]\n\
             groups: [{name: Eng, id: g1, members: [ana.new@x.com]}]\n",
        )],
        "users: [{id: t1, email: ana@x.com, userName: ana@x.com, externalId: u1, givenName: Ana}]\n\
         groups: [{name: eng, id: tg1, members: [ana@x.com]}]\n",
        ENG,
    );
    assert_eq!(
        lines(&p),
        [
            r#"update ana.new@x.com: email "ana@x.com"->Ana.New@x.com, userName "ana@x.com"->Ana.New@x.com"#
        ]
    );
    assert!(p.warnings.is_empty() && p.skipped.is_empty(), "{p:#?}");
}

#[test]
fn a_rename_onto_an_email_another_account_holds_changes_neither_account() {
    // The account holding the new email is not "in no source": its email is a source user's. It
    // used to be deactivated as a leaver while the warning said "left alone".
    let p = plan(
        &[(
            "idp",
            "users: [{id: u1, email: ana.new@x.com}]\ngroups: []\n",
        )],
        "users: [{id: t1, email: ana@x.com, externalId: u1}, {id: t2, email: ana.new@x.com}]\n\
         groups: []\n",
        "",
    );
    assert!(lines(&p).is_empty(), "{:?}", lines(&p));
    assert_eq!(
        p.warnings,
        ["ana@x.com was renamed to ana.new@x.com in `idp`, but another target account already uses that email; left alone"]
    );
    assert_eq!(
        skipped(&p),
        [(
            "ana.new@x.com".to_string(),
            crate::plan::ReasonCode::EmailContested
        )]
    );
}

#[test]
fn an_email_whose_account_is_claimed_by_another_id_waits() {
    // u1's account (found by externalId) holds bob's email: u1 is renamed onto their own email and
    // bob is neither created twice nor merged into u1's account.
    let p = plan(
        &[(
            "idp",
            "users: [{id: u1, email: ana@x.com}, {id: u2, email: bob@x.com}]\ngroups: []\n",
        )],
        "users: [{id: t1, email: bob@x.com, externalId: u1}]\ngroups: []\n",
        "",
    );
    assert_eq!(
        lines(&p),
        [r#"update ana@x.com: email "bob@x.com"->ana@x.com, userName "bob@x.com"->ana@x.com"#]
    );
    assert_eq!(
        p.warnings,
        ["bob@x.com: the target account with this email is matched by externalId to ana@x.com; bob@x.com left alone until one of them changes"]
    );
}

#[test]
fn sources_that_disagree_give_the_first_sources_fields_and_every_sources_groups() {
    let p = plan(
        &[
            (
                "a",
                "users: [{id: a1, email: bob@x.com, givenName: Bob}]\n\
                 groups: [{name: Eng, id: g1, members: [bob@x.com]}]\n",
            ),
            (
                "b",
                "users: [{id: b1, email: BOB@x.com, givenName: Robert}]\n\
                 groups: [{name: Ops, id: g2, members: [BOB@x.com]}]\n",
            ),
        ],
        "users: []\ngroups: []\n",
        "groups: {mappings: [{from: \"a:Eng\", to: eng}, {from: \"b:Ops\", to: ops}]}\n",
    );
    assert_eq!(
        lines(&p),
        [
            "create bob@x.com",
            "create group eng",
            "create group ops",
            "add eng: bob@x.com",
            "add ops: bob@x.com",
        ]
    );
    let Action::CreateUser { user, .. } = &p.actions[0] else {
        panic!("{:?}", p.actions[0])
    };
    assert_eq!(user.given_name.as_deref(), Some("Bob"));
    assert_eq!(
        p.warnings,
        ["bob@x.com: givenName differs between sources `a` and `b`; using `a` (first in sources)"]
    );
}

const OWNED: (&str, &str) = (
    "idp",
    "users: [{id: u1, email: ana@x.com}, {id: u2, email: ben@x.com}]\n\
     groups: [{name: Eng, id: g1, members: [ana@x.com]}]\n",
);
const OWNED_TARGET: &str = "users: [{id: t1, email: ana@x.com, externalId: u1}, \
     {id: t2, email: ben@x.com, externalId: u2}, {id: t3, email: zed@x.com}]\n\
     groups: [{name: eng, id: tg1, members: [ana@x.com, ben@x.com, zed@x.com]}, \
     {name: finance, id: tg2, members: [ana@x.com]}]\n";

#[test]
fn only_derived_memberships_of_owned_groups_are_removed() {
    // ben is synced and no longer in Eng: removed. zed comes from no source: their membership is
    // not idsync's to remove. `finance` is no mapping's: untouched.
    let p = plan(
        &[OWNED],
        OWNED_TARGET,
        &format!("{ENG}cleanup: {{deactivate_missing: false}}\n"),
    );
    assert_eq!(lines(&p), ["remove eng: ben@x.com"]);
    assert_eq!(
        skipped(&p),
        [(
            "zed@x.com".to_string(),
            crate::plan::ReasonCode::DeactivateMissingOff
        )]
    );

    // With manage_unmapped_members, every member no rule puts there goes; still not from finance.
    let p = plan(
        &[OWNED],
        OWNED_TARGET,
        "groups: {mappings: [{from: \"idp:Eng\", to: eng}], manage_unmapped_members: true}\n\
         cleanup: {deactivate_missing: false}\n",
    );
    assert_eq!(lines(&p), ["remove eng: ben@x.com zed@x.com"]);
}

#[test]
fn leavers_disabled_users_and_the_protected() {
    let p = plan(
        &[(
            "idp",
            "users: [{id: u1, email: ana@x.com}, {id: u2, email: ben@x.com, active: false}]\n\
             groups: []\n",
        )],
        "users: [{id: t1, email: ana@x.com, externalId: u1}, {id: t2, email: ben@x.com, externalId: u2}, \
         {id: t3, email: cy@x.com}, {id: t4, email: root@x.com}, {id: t5, email: old@x.com, active: false}, \
         {id: t6, email: boss@x.com, admin: true}]\ngroups: []\n",
        "cleanup: {protect: [\"root@*\"], max_deactivations: 10}\n",
    );
    // ben: disabled in the source; cy: in no source; old: already inactive.
    assert_eq!(lines(&p), ["deactivate ben@x.com", "deactivate cy@x.com"]);
    assert_eq!(
        skipped(&p),
        [
            ("boss@x.com".to_string(), crate::plan::ReasonCode::Admin),
            ("root@x.com".to_string(), crate::plan::ReasonCode::Protected),
        ]
    );
}

/// `desired` alone: group references by id and by shared name, regex mappings, case twins. (Here,
/// outside the planner core, because the rules are compiled from a config text.)
mod desired_only {
    use crate::desired::{build, Desired, Scope, SourceData};
    use crate::model::Indexed;
    use crate::model::{GroupNames, Snapshot};
    use crate::rules::Rules;

    fn rules(mappings: &str, require: &str) -> Rules {
        let text = format!(
            "version: 1\nsources: [{{name: idp, type: file, path: x.yaml}}]\ntarget: {{type: file, path: t.yaml}}\nusers: {{require_groups: [{require}]}}\ngroups: {{mappings: [{mappings}]}}\n"
        );
        crate::config::load_str(std::path::Path::new("idsync.yaml"), &text, &|_| None)
            .unwrap()
            .rules
    }

    fn source() -> Vec<SourceData> {
        let snap: Snapshot = yaml_serde::from_str(
            r#"users: [{id: u1, email: ana@x.com}, {id: u2, email: ben@x.com}]
groups:
  - {name: Eng, id: g1, members: [ana@x.com]}
  - {name: Eng, id: g2, members: [ben@x.com]}
  - {name: "id:g9", id: g3, members: [ben@x.com]}
"#,
        )
        .unwrap();
        vec![SourceData {
            name: "idp".into(),
            data: Indexed::with(snap, GroupNames::MayRepeat).unwrap(),
        }]
    }

    fn members(d: &Desired, group: &str) -> Vec<String> {
        d.groups[group]
            .members
            .iter()
            .map(|(u, _)| d.users[*u as usize].key.clone())
            .collect()
    }

    #[test]
    fn groups_are_named_by_id_and_a_shared_name_in_use_is_an_error() {
        let d = build(
            &mut source(),
            &rules(r#"{from: "idp:id:g2", to: eng}"#, ""),
            &|_| None,
        )
        .unwrap();
        assert_eq!(members(&d, "eng"), vec!["ben@x.com"]);
        assert_eq!(
            d.reason(d.groups["eng"].members[0].1),
            "member of idp:Eng (id g2) via groups.mappings[0]"
        );

        let err = build(
            &mut source(),
            &rules(r#"{from: "idp:Eng", to: eng}"#, ""),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].contains("id g1, id g2") && err[0].contains("\"idp:id:g1\""),
            "{err:?}"
        );
        let err = build(&mut source(), &rules("", r#""idp:Eng""#), &|_| None).unwrap_err();
        assert!(
            err[0].starts_with("users.require_groups names \"idp:Eng\""),
            "{err:?}"
        );

        // Unreferenced, the shared name is no problem; `require_groups` by id scopes the users.
        let d = build(&mut source(), &rules("", r#""idp:id:g1""#), &|_| None).unwrap();
        let wanted: Vec<&str> = d
            .users
            .iter()
            .filter(|u| u.scope == Scope::Wanted)
            .map(|u| u.key.as_str())
            .collect();
        assert_eq!(wanted, vec!["ana@x.com"]);

        // No group has the id g9: the group named `id:g9` is found by its name.
        let d = build(
            &mut source(),
            &rules(r#"{from: "idp:id:g9", to: odd}"#, ""),
            &|_| None,
        )
        .unwrap();
        assert_eq!(members(&d, "odd"), vec!["ben@x.com"]);
    }

    #[test]
    fn a_regex_over_a_shared_name_warns_and_case_twins_block() {
        let d = build(
            &mut source(),
            &rules(
                r#"{from_regex: "^idp:(Eng)$", to: "$1"}, {from: "idp:id:g3", to: eng}"#,
                "",
            ),
            &|_| None,
        )
        .unwrap();
        assert_eq!(members(&d, "Eng"), vec!["ana@x.com", "ben@x.com"]);
        assert!(
            d.warnings
                .iter()
                .any(|w| w.starts_with("idp:Eng is the name of 2 groups (id g1, id g2)")),
            "{:?}",
            d.warnings
        );
        assert_eq!(d.blocking.len(), 1, "Eng and eng are one Atlassian group");
        assert!(d.blocking[0].contains("`Eng`") && d.blocking[0].contains("`eng`"));
    }
}
