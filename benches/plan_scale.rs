//! Scale benchmark (not a timed test): plan an organisation of 100,000 users, 5,000 groups and
//! 1,000,000 memberships read from snapshot files.
//!
//! Reports the wall time of a full plan, the time spent only reading and parsing the two snapshot
//! files, their ratio (target ≤ 1.5), and the peak memory of a plan (target < 1 GiB). Each measurement
//! runs in a child process of this binary so that peak memory (VmHWM) belongs to it alone.
//!
//! Run: `cargo bench --bench plan_scale` (add `-- --users N --groups N --memberships N` to scale).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

use std::fmt::Write as _;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use idsync::cli::ColorChoice;
use idsync::model::{Group, Snapshot, User};
use idsync::output::Printer;

struct Sizes {
    users: usize,
    groups: usize,
    memberships: usize,
}

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
    format!("user{i:06}@example.com")
}

/// The IdP and an Atlassian organisation that is close to it: about 1% of users renamed, 0.5% new,
/// 0.5% gone, and 1% of memberships different.
fn generate(sizes: &Sizes) -> (Snapshot, Snapshot) {
    let mut rng = Rng(0x5EED_1D5C);
    let mut idp = Snapshot::default();
    let mut target = Snapshot::default();
    for i in 0..sizes.users {
        let mut u = User::new(&email(i));
        u.id = Some(format!("00u{i:08}"));
        u.given_name = Some(format!("Given{}", i % 997));
        u.family_name = Some(format!("Family{}", i % 1009));
        u.attributes
            .insert("title".into(), format!("Title {}", i % 50));
        u.attributes
            .insert("department".into(), format!("Dept {}", i % 20));
        let r = rng.below(1000);
        if r >= 5 {
            // In Atlassian too (the first 0.5% are new hires).
            let mut t = u.clone();
            t.id = Some(format!("scim-{i}"));
            t.external_id = u.id.clone();
            t.display_name = Some(format!("Given{} Family{}", i % 997, i % 1009));
            t.last_active = Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
            if r < 15 {
                t.email = format!("old.user{i:06}@example.com");
            }
            target.users.push(t);
        }
        idp.users.push(u);
    }
    for i in 0..sizes.users / 200 {
        let mut t = User::new(&format!("leaver{i:06}@example.com"));
        t.id = Some(format!("scim-leaver-{i}"));
        t.last_active = Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        target.users.push(t);
    }
    let target_email: std::collections::HashMap<String, String> = target
        .users
        .iter()
        .filter_map(|u| u.external_id.as_ref().map(|e| (e.clone(), u.email.clone())))
        .collect();
    let per_group = sizes.memberships / sizes.groups;
    for g in 0..sizes.groups {
        let mut members = Vec::with_capacity(per_group);
        let mut tmembers = Vec::with_capacity(per_group);
        let start = rng.below(sizes.users);
        for k in 0..per_group {
            let i = (start + k * 7919) % sizes.users;
            members.push(email(i));
            if let Some(e) = target_email.get(&format!("00u{i:08}")) {
                if rng.below(100) != 0 {
                    tmembers.push(e.clone());
                }
            }
        }
        idp.groups.push(Group {
            name: format!("atl-team-{g:04}"),
            id: None,
            members,
        });
        target.groups.push(Group {
            name: format!("team-{g:04}"),
            id: Some(format!("grp-{g}")),
            members: tmembers,
        });
    }
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
    title: "{title}"
    department: "{department}"
groups:
  mappings:
    - {from_regex: "^idp:atl-(.+)$", to: "$1"}
  default_groups: [all-staff]
cleanup:
  grace_days: 30
  max_deactivations: 5%
limits:
  max_group_size_warn: 200000
"#;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// In a child: one measurement, printed as `seconds peak_kib`.
fn measure(what: &str, dir: &Path) {
    let started = Instant::now();
    match what {
        "parse" => {
            let a = idsync::snapshot_file::read(&dir.join("idp.json")).unwrap();
            let b = idsync::snapshot_file::read(&dir.join("atlassian.json")).unwrap();
            std::hint::black_box((&a, &b));
        }
        "plan" => {
            let loaded = idsync::config::load(&dir.join("idsync.yaml")).unwrap();
            let printer = Printer::new(
                ColorChoice::Never,
                false,
                std::env::var_os("PLAN_SCALE_VERBOSE").is_some(),
            );
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
            let planned = rt
                .block_on(idsync::engine::make_plan(
                    &loaded,
                    &printer,
                    now,
                    idsync::plan::Overrides {
                        deactivation: true,
                        update: true,
                        membership_removal: true,
                    },
                ))
                .unwrap();
            eprintln!("  plan: {}", idsync::render::headline(&planned.plan));
            std::hint::black_box(&planned.plan);
        }
        _ => unreachable!(),
    }
    println!("{} {}", started.elapsed().as_secs_f64(), peak_rss_kib());
}

fn child(what: &str, dir: &Path) -> (f64, u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--measure", what, dir.to_str().unwrap()])
        .output()
        .expect("the bench re-runs itself");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut it = text.split_whitespace();
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        measure(&args[i + 1], &PathBuf::from(&args[i + 2]));
        return;
    }
    let sizes = Sizes {
        users: arg(&args, "--users", 100_000),
        groups: arg(&args, "--groups", 5_000),
        memberships: arg(&args, "--memberships", 1_000_000),
    };
    let runs = arg(&args, "--runs", 3);
    // `--dir PATH` keeps the generated files there (for profiling one child:
    // `perf record BENCH --measure plan PATH`).
    let tmp = tempfile::tempdir().unwrap();
    let kept = args
        .iter()
        .position(|a| a == "--dir")
        .map(|i| PathBuf::from(&args[i + 1]));
    let dir = kept.as_deref().unwrap_or(tmp.path());
    std::fs::create_dir_all(dir).unwrap();
    let (idp, target) = generate(&sizes);
    std::fs::write(dir.join("idp.json"), serde_json::to_vec(&idp).unwrap()).unwrap();
    std::fs::write(
        dir.join("atlassian.json"),
        serde_json::to_vec(&target).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("idsync.yaml"), CONFIG).unwrap();
    let size = |f: &str| std::fs::metadata(dir.join(f)).unwrap().len() as f64 / 1_048_576.0;
    println!(
        "plan_scale: {} users, {} groups, {} memberships per side; snapshot files {:.1} MiB (IdP) + {:.1} MiB (Atlassian)",
        sizes.users,
        sizes.groups,
        sizes.groups * (sizes.memberships / sizes.groups),
        size("idp.json"),
        size("atlassian.json")
    );
    drop((idp, target));

    let mut parse = (f64::MAX, 0u64);
    let mut plan = (f64::MAX, 0u64);
    // Interleaved, best of `runs` each, so both see the same machine state.
    for _ in 0..runs {
        let p = child("parse", dir);
        parse = (parse.0.min(p.0), parse.1.max(p.1));
        let q = child("plan", dir);
        plan = (plan.0.min(q.0), plan.1.max(q.1));
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "read + parse both files: {:>8.3} s   peak {:>7.1} MiB",
        parse.0,
        parse.1 as f64 / 1024.0
    );
    let _ = writeln!(
        report,
        "full plan:               {:>8.3} s   peak {:>7.1} MiB",
        plan.0,
        plan.1 as f64 / 1024.0
    );
    let _ = writeln!(
        report,
        "ratio plan / parse:      {:>8.2}     (target <= 1.5; peak target < 1024 MiB)",
        plan.0 / parse.0
    );
    print!("{report}");
}
