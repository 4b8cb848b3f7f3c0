//! File-target apply benchmark (not a timed test): change-heavy snapshot files at 10k, 20k, 40k and
//! 100k users, planned and applied through the library (`make_plan`, then `apply::execute` on the
//! file target the config names), then planned again to check that the apply converged.
//!
//! Reports, per size, the plan and the apply (read the file, every action, write it) in wall time,
//! and the apply's time per action and per change relative to the smallest size: flat ratios mean
//! an apply linear in its changes. The apply runs without a journal (`idsync apply PLAN_FILE` keeps
//! one; its cost is its own).
//!
//! Run: `cargo bench --bench file_apply` (add `-- --sizes 10000,20000 --runs N` to change it).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use idsync::cli::ColorChoice;
use idsync::model::{Group, Snapshot, User};
use idsync::output::Printer;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn email(i: usize) -> String {
    format!("user{i:07}@example.com")
}

/// The IdP and a file target with many changes to make: of the users, 5% renamed, 3% inactive to
/// reactivate (a third of them renamed too), 5% with a field to update, 2% new hires, 2% leavers
/// to deactivate; a quarter of the target's users have no `id` (the plan names them by email); 10
/// memberships a user in groups of 200 with 2% of them to add and 1% to remove; every user in
/// `all-staff`, and 2% of memberships in an unmanaged group whose members are renamed too.
fn generate(users: usize) -> (Snapshot, Snapshot) {
    let mut rng = Rng(0x5EED_F11E);
    let mut idp = Snapshot::default();
    let mut target = Snapshot::default();
    let mut target_email: Vec<Option<String>> = vec![None; users];
    for (i, slot) in target_email.iter_mut().enumerate() {
        let mut u = User::new(&email(i));
        u.id = Some(format!("00u{i:08}"));
        u.given_name = Some(format!("Given{}", i % 997));
        u.family_name = Some(format!("Family{}", i % 1009));
        let r = rng.below(1000);
        if r >= 20 {
            // In the target too (the first 2% are new hires).
            let mut t = u.clone();
            t.id = (i % 4 != 0).then(|| format!("scim-{i}"));
            t.external_id = u.id.clone();
            t.last_active = Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
            if r < 70 {
                t.email = format!("old.user{i:07}@example.com");
            }
            if (50..80).contains(&r) {
                t.active = false;
            }
            if (80..130).contains(&r) {
                t.given_name = Some("Stale".into());
            }
            *slot = Some(t.email.clone());
            target.users.push(t);
        }
        idp.users.push(u);
    }
    for i in 0..users / 50 {
        let mut t = User::new(&format!("leaver{i:07}@example.com"));
        t.id = (i % 4 != 0).then(|| format!("scim-leaver-{i}"));
        t.last_active = Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        target.users.push(t);
    }
    let per_group = 200;
    let groups = users * 10 / per_group;
    let mut unmanaged = Vec::new();
    for g in 0..groups {
        let mut members = Vec::with_capacity(per_group);
        let mut tmembers = Vec::with_capacity(per_group);
        let start = rng.below(users);
        for k in 0..per_group {
            let i = (start + k * 7919) % users;
            members.push(email(i));
            if let Some(e) = &target_email[i] {
                if rng.below(50) != 0 {
                    tmembers.push(e.clone());
                }
                if rng.below(50) == 0 {
                    unmanaged.push(e.clone());
                }
            }
        }
        // 1% to remove: users of the target the IdP does not put here.
        for _ in 0..per_group / 100 {
            if let Some(e) = &target_email[rng.below(users)] {
                if !tmembers.contains(e) {
                    tmembers.push(e.clone());
                }
            }
        }
        idp.groups.push(Group {
            name: format!("atl-team-{g:05}"),
            id: None,
            members,
        });
        target.groups.push(Group {
            name: format!("team-{g:05}"),
            id: Some(format!("grp-{g}")),
            members: tmembers,
        });
    }
    unmanaged.sort();
    unmanaged.dedup();
    target.groups.push(Group {
        name: "unmanaged".into(),
        id: Some("grp-unmanaged".into()),
        members: unmanaged,
    });
    target.groups.push(Group {
        name: "all-staff".into(),
        id: Some("grp-all".into()),
        members: target.users.iter().map(|u| u.email.clone()).collect(),
    });
    (idp, target)
}

const CONFIG: &str = r#"version: 1
sources: [{name: idp, type: file, path: idp.json}]
target: {type: file, path: atlassian.json}
users:
  attributes:
    displayName: "{givenName} {familyName}"
groups:
  mappings:
    - {from_regex: "^idp:atl-(.+)$", to: "$1"}
  default_groups: [all-staff]
cleanup:
  grace_days: 30
  max_deactivations: 100%
  max_updates: 100%
  max_membership_removals: 100%
  max_membership_removals_per_group: 100%
limits:
  max_group_size_warn: 2000000
"#;

struct Run {
    plan: f64,
    apply: f64,
    actions: usize,
    changes: usize,
}

fn once(dir: &Path, target_json: &[u8], rt: &tokio::runtime::Runtime) -> Run {
    std::fs::write(dir.join("atlassian.json"), target_json).unwrap();
    let loaded = idsync::config::load(&dir.join("idsync.yaml")).unwrap();
    let printer = Printer::new(ColorChoice::Never, true, false);
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let overrides = idsync::plan::Overrides {
        deactivation: true,
        update: true,
        membership_removal: true,
    };
    let started = Instant::now();
    let planned = rt
        .block_on(idsync::engine::make_plan(&loaded, &printer, now, overrides))
        .unwrap();
    let plan_s = started.elapsed().as_secs_f64();
    let (plan, mut target) = (planned.plan, planned.target);
    let started = Instant::now();
    let outcome = rt.block_on(idsync::apply::execute(
        &plan,
        target.as_mut(),
        &mut |_, _| {},
    ));
    let apply_s = started.elapsed().as_secs_f64();
    let failed: Vec<&String> = outcome
        .results
        .iter()
        .filter_map(|r| r.error.as_ref())
        .collect();
    assert!(
        failed.is_empty() && outcome.written,
        "{} action(s) failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    let again = rt
        .block_on(idsync::engine::make_plan(&loaded, &printer, now, overrides))
        .unwrap();
    assert!(
        again.plan.actions.is_empty(),
        "not converged: {} action(s) left, e.g. {:?}",
        again.plan.actions.len(),
        again.plan.actions.first()
    );
    Run {
        plan: plan_s,
        apply: apply_s,
        actions: plan.actions.len(),
        changes: plan.summary.total_changes,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let sizes: Vec<usize> = value("--sizes").map_or_else(
        || vec![10_000, 20_000, 40_000, 100_000],
        |v| v.split(',').map(|s| s.trim().parse().unwrap()).collect(),
    );
    let runs: usize = value("--runs").map_or(3, |v| v.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "file_apply: plan and apply change-heavy file targets, best of {runs} run(s) per size"
    );
    println!(
        "{:>8} {:>8} {:>9} {:>8} {:>8} {:>11} {:>11} {:>10} {:>10}",
        "users",
        "actions",
        "changes",
        "plan s",
        "apply s",
        "µs/action",
        "µs/change",
        "x/action",
        "x/change"
    );
    let mut base: Option<(f64, f64)> = None;
    for &users in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let (idp, target) = generate(users);
        std::fs::write(
            dir.path().join("idp.json"),
            serde_json::to_vec(&idp).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("idsync.yaml"), CONFIG).unwrap();
        let target_json = serde_json::to_vec(&target).unwrap();
        drop((idp, target));
        let mut best: Option<Run> = None;
        for _ in 0..runs {
            let r = once(dir.path(), &target_json, &rt);
            best = Some(match best {
                Some(b) if b.apply <= r.apply => Run {
                    plan: b.plan.min(r.plan),
                    ..b
                },
                Some(b) => Run {
                    plan: b.plan.min(r.plan),
                    ..r
                },
                None => r,
            });
        }
        let r = best.expect("at least one run");
        let per_action = r.apply * 1e6 / r.actions as f64;
        let per_change = r.apply * 1e6 / r.changes as f64;
        let (a0, c0) = *base.get_or_insert((per_action, per_change));
        println!(
            "{:>8} {:>8} {:>9} {:>8.3} {:>8.3} {:>11.2} {:>11.2} {:>10.2} {:>10.2}",
            users,
            r.actions,
            r.changes,
            r.plan,
            r.apply,
            per_action,
            per_change,
            per_action / a0,
            per_change / c0
        );
    }
}
