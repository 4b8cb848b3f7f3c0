//! Scale benchmark (not a timed test): `idsync plan --format json --out FILE` at 100k, 300k and
//! 1,000,000 users (Atlassian's cap), 8 group memberships a user, on change-heavy data read from
//! snapshot files.
//!
//! For each size it reports, each measured in a fresh child process of this binary (so that peak
//! memory, VmHWM, belongs to it alone), best time of `--runs` interleaved runs:
//! - the plan: `idsync plan --format json --out plan.json` through the command line's own code
//!   (`commands::run`), stdout to /dev/null;
//! - the baseline: reading both snapshot files as the plan reads them
//!   (`snapshot_file::read_resolving`, what the file connectors' `snapshot_resolving` does), one
//!   after the other;
//! - their ratio (target ≤ 1.2), the plan's peak memory (targets: < 2.5 GiB at 1M, < 500 MiB at
//!   100k), and the growth in time and memory from one size to the next.
//!
//! The snapshot files are generated once per size into `--dir` (default: Cargo's target tmp dir,
//! `plan_scale/USERS/`) and reused while the generator is unchanged.
//!
//! Run: `cargo bench --bench plan_scale` (100k only), or
//! `cargo bench --bench plan_scale -- --sizes 100k,300k,1m --runs 3`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Parser as _;
use idsync::cli::{Cli, ColorChoice};
use idsync::model::User;
use idsync::output::Printer;

/// Bumped whenever the generated data changes, so that files kept from an older generator are made
/// again.
const GENERATOR: &str = "plan_scale data v2";

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

/// Members of each IdP group; groups = users × 8 ÷ this.
const PER_GROUP: usize = 800;
/// Memberships a user has in the IdP, on average.
const PER_USER: usize = 8;

/// What was generated, for the report.
#[derive(Default)]
struct Generated {
    idp_memberships: usize,
    target_memberships: usize,
    idp_bytes: u64,
    target_bytes: u64,
}

/// Writes the IdP and an Atlassian organisation with many changes to make, streaming (the 1M
/// files are never held in memory): of the IdP's users, 1% renamed in the IdP since the last sync,
/// 0.5% new; 0.5% more target users gone from the IdP (deactivated after the grace period);
/// `users × 8` memberships in groups of 800, of which the target lacks 31% (to add) and has 0.5%
/// more (to remove); `all-staff` (a default group) holds every target user.
fn generate(users: usize, dir: &Path) -> Generated {
    let mut rng = Rng(0x5EED_1D5C);
    let mut idp = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(dir.join("idp.json")).unwrap(),
    );
    let mut target = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(dir.join("atlassian.json")).unwrap(),
    );
    let last_active = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    // Target email of each IdP user (None: a new hire, not in the target yet).
    let mut target_email: Vec<Option<String>> = Vec::with_capacity(users);
    let mut target_keys: Vec<String> = Vec::new();
    idp.write_all(b"{\"users\":[").unwrap();
    target.write_all(b"{\"users\":[").unwrap();
    let mut first_target = true;
    let sep = |w: &mut BufWriter<std::fs::File>, first: &mut bool| {
        if !std::mem::take(first) {
            w.write_all(b",").unwrap();
        }
    };
    for i in 0..users {
        let mut u = User::new(&email(i));
        u.id = Some(format!("00u{i:08}"));
        u.given_name = Some(format!("Given{}", i % 997));
        u.family_name = Some(format!("Family{}", i % 1009));
        u.attributes
            .insert("title".into(), format!("Title {}", i % 50));
        u.attributes
            .insert("department".into(), format!("Dept {}", i % 20));
        if i > 0 {
            idp.write_all(b",").unwrap();
        }
        serde_json::to_writer(&mut idp, &u).unwrap();
        let r = rng.below(1000);
        if r < 5 {
            target_email.push(None);
            continue;
        }
        let mut t = u;
        t.id = Some(format!("scim-{i}"));
        t.external_id = Some(format!("00u{i:08}"));
        t.display_name = Some(format!("Given{} Family{}", i % 997, i % 1009));
        t.last_active = Some(last_active);
        if r < 15 {
            t.email = format!("old.user{i:07}@example.com");
        }
        sep(&mut target, &mut first_target);
        serde_json::to_writer(&mut target, &t).unwrap();
        target_keys.push(t.email.clone());
        target_email.push(Some(t.email));
    }
    for i in 0..users / 200 {
        let mut t = User::new(&format!("leaver{i:07}@example.com"));
        t.id = Some(format!("scim-leaver-{i}"));
        t.last_active = Some(last_active);
        sep(&mut target, &mut first_target);
        serde_json::to_writer(&mut target, &t).unwrap();
        target_keys.push(t.email);
    }
    idp.write_all(b"],\"groups\":[").unwrap();
    target.write_all(b"],\"groups\":[").unwrap();
    let mut g = Generated::default();
    let groups = users * PER_USER / PER_GROUP;
    let mut tmembers: Vec<&str> = Vec::with_capacity(PER_GROUP);
    for k in 0..groups {
        tmembers.clear();
        let start = rng.below(users);
        let mut idp_members: Vec<String> = Vec::with_capacity(PER_GROUP);
        for m in 0..PER_GROUP {
            let i = (start + m * 7919) % users;
            idp_members.push(email(i));
            if let Some(e) = &target_email[i] {
                if rng.below(100) >= 31 {
                    tmembers.push(e);
                }
            }
        }
        for _ in 0..PER_GROUP / 200 {
            tmembers.push(&target_keys[rng.below(target_keys.len())]);
        }
        if k > 0 {
            idp.write_all(b",").unwrap();
            target.write_all(b",").unwrap();
        }
        g.idp_memberships += idp_members.len();
        g.target_memberships += tmembers.len();
        serde_json::to_writer(
            &mut idp,
            &serde_json::json!({"name": format!("atl-team-{k:05}"), "members": idp_members}),
        )
        .unwrap();
        serde_json::to_writer(
            &mut target,
            &serde_json::json!({"name": format!("team-{k:05}"), "id": format!("grp-{k}"), "members": tmembers}),
        )
        .unwrap();
    }
    g.target_memberships += target_keys.len();
    target.write_all(b",").unwrap();
    serde_json::to_writer(
        &mut target,
        &serde_json::json!({"name": "all-staff", "id": "grp-all", "members": target_keys}),
    )
    .unwrap();
    idp.write_all(b"]}\n").unwrap();
    target.write_all(b"]}\n").unwrap();
    idp.flush().unwrap();
    target.flush().unwrap();
    drop((idp, target));
    g.idp_bytes = std::fs::metadata(dir.join("idp.json")).unwrap().len();
    g.target_bytes = std::fs::metadata(dir.join("atlassian.json")).unwrap().len();
    g
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
  max_group_size_warn: 2000000
  max_group_size: 2000000
"#;

/// The moment the plans are made at (grace periods count from it), so that every run plans the
/// same bytes.
const NOW: &str = "2026-11-22T00:00:00Z";

/// CPU time of this process, all threads (user + system), in seconds: steadier than wall time on
/// a busy machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: fields 3…; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Clock ticks of 1/100 s (USER_HZ on Linux).
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / 100.0
}

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

/// In a child: one measurement, reported on stderr as `MEASURED seconds peak_kib` (stdout carries
/// the plan).
fn measure(what: &str, dir: &Path) {
    let started = Instant::now();
    match what {
        "parse" => {
            // What the plan's file connectors do (`snapshot_resolving`): parse, users indexed
            // and members resolved as they come.
            let a = idsync::snapshot_file::read_resolving(&dir.join("idp.json")).unwrap();
            let b = idsync::snapshot_file::read_resolving(&dir.join("atlassian.json")).unwrap();
            std::hint::black_box((&a, &b));
        }
        "plan" => {
            let config = dir.join("idsync.yaml");
            let out = dir.join("plan.json");
            let cli = Cli::try_parse_from([
                "idsync".as_ref(),
                "--quiet".as_ref(),
                "plan".as_ref(),
                "--config".as_ref(),
                config.as_os_str(),
                "--format".as_ref(),
                "json".as_ref(),
                "--out".as_ref(),
                out.as_os_str(),
                "--allow-mass-membership-removal".as_ref(),
                "--allow-mass-update".as_ref(),
            ])
            .unwrap();
            let printer = Printer::new(ColorChoice::Never, true, false);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let status = rt
                .block_on(idsync::commands::run(cli, printer))
                .unwrap_or_else(|e| panic!("the plan failed: {e}"));
            std::hint::black_box(status);
        }
        _ => unreachable!(),
    }
    eprintln!(
        "MEASURED {} {} {}",
        started.elapsed().as_secs_f64(),
        peak_rss_kib(),
        cpu_seconds()
    );
}

/// Runs one measurement in a child process: (seconds, peak KiB, CPU seconds).
fn child(what: &str, dir: &Path) -> (f64, u64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--measure", what, dir.to_str().unwrap()])
        .env("IDSYNC_NOW", NOW)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("the bench re-runs itself");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed: {err}");
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("MEASURED "))
        .unwrap_or_else(|| panic!("{what} reported nothing: {err}"));
    let mut it = line.split_whitespace();
    (
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
        it.next().unwrap().parse().unwrap(),
    )
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `100k`, `1m`, `250000`.
fn parse_size(s: &str) -> usize {
    let s = s.trim().to_ascii_lowercase();
    let (n, mul) = if let Some(n) = s.strip_suffix('k') {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1_000_000)
    } else {
        (s.as_str(), 1)
    };
    n.parse::<usize>()
        .unwrap_or_else(|_| panic!("--sizes: {s:?} is not a size such as 100k or 1m"))
        * mul
}

/// The data of one size, generated unless the directory already holds it from this generator.
fn ensure_data(users: usize, dir: &Path) -> Generated {
    let stamp = dir.join("generator");
    let want = format!("{GENERATOR} users={users}\n");
    let summary = dir.join("generated");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("idsync.yaml"), CONFIG).unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        if let Ok(s) = std::fs::read_to_string(&summary) {
            let n: Vec<usize> = s
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if let [a, b] = n[..] {
                return Generated {
                    idp_memberships: a,
                    target_memberships: b,
                    idp_bytes: std::fs::metadata(dir.join("idp.json")).unwrap().len(),
                    target_bytes: std::fs::metadata(dir.join("atlassian.json")).unwrap().len(),
                };
            }
        }
    }
    let _ = std::fs::remove_file(&stamp);
    let started = Instant::now();
    let g = generate(users, dir);
    std::fs::write(
        &summary,
        format!("{} {}\n", g.idp_memberships, g.target_memberships),
    )
    .unwrap();
    std::fs::write(&stamp, want).unwrap();
    eprintln!(
        "  generated {users} users into {} in {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    g
}

struct Row {
    users: usize,
    plan: (f64, u64, f64),
    parse: (f64, u64, f64),
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--measure") {
        measure(&args[i + 1], &PathBuf::from(&args[i + 2]));
        return;
    }
    let sizes: Vec<usize> = flag(&args, "--sizes")
        .unwrap_or("100k")
        .split(',')
        .map(parse_size)
        .collect();
    let runs: usize = flag(&args, "--runs").map_or(3, |v| v.parse().expect("--runs N"));
    let root = flag(&args, "--dir").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plan_scale"),
        PathBuf::from,
    );
    let mut rows: Vec<Row> = Vec::new();
    for &users in &sizes {
        let dir = root.join(users.to_string());
        let g = ensure_data(users, &dir);
        println!(
            "plan_scale {users} users: {} IdP memberships, {} target memberships; snapshot files {:.1} MiB (IdP) + {:.1} MiB (Atlassian) in {}",
            g.idp_memberships,
            g.target_memberships,
            g.idp_bytes as f64 / 1_048_576.0,
            g.target_bytes as f64 / 1_048_576.0,
            dir.display()
        );
        let mut parse = (f64::MAX, 0u64, f64::MAX);
        let mut plan = (f64::MAX, 0u64, f64::MAX);
        // Interleaved, best of `runs` each, so both see the same machine state.
        for _ in 0..runs {
            let p = child("parse", &dir);
            parse = (parse.0.min(p.0), parse.1.max(p.1), parse.2.min(p.2));
            let q = child("plan", &dir);
            plan = (plan.0.min(q.0), plan.1.max(q.1), plan.2.min(q.2));
        }
        let summary = plan_summary(&dir.join("plan.json"));
        println!("  plan: {summary}");
        println!(
            "  read both snapshot files: {:>8.3} s ({:.2} s CPU)   peak {:>7.1} MiB",
            parse.0,
            parse.2,
            mib(parse.1)
        );
        println!(
            "  plan --format json --out: {:>8.3} s ({:.2} s CPU)   peak {:>7.1} MiB   ratio {:.2} ({:.2} in CPU time)",
            plan.0,
            plan.2,
            mib(plan.1),
            plan.0 / parse.0,
            plan.2 / parse.2
        );
        rows.push(Row { users, plan, parse });
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "\n| users | plan s | baseline s | ratio | CPU ratio | plan peak MiB | baseline peak MiB | growth (users / plan time / peak) |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|---|");
    for (i, r) in rows.iter().enumerate() {
        let growth = match i.checked_sub(1).map(|p| &rows[p]) {
            Some(p) => format!(
                "×{:.2} / ×{:.2} / ×{:.2}",
                r.users as f64 / p.users as f64,
                r.plan.0 / p.plan.0,
                r.plan.1 as f64 / p.plan.1 as f64
            ),
            None => "–".into(),
        };
        let _ = writeln!(
            report,
            "| {} | {:.3} | {:.3} | {:.2} | {:.2} | {:.0} | {:.0} | {growth} |",
            r.users,
            r.plan.0,
            r.parse.0,
            r.plan.0 / r.parse.0,
            r.plan.2 / r.parse.2,
            mib(r.plan.1),
            mib(r.parse.1)
        );
    }
    let _ = writeln!(
        report,
        "targets: ratio <= 1.2 and peak < 2560 MiB at 1M users; peak < 500 MiB at 100k"
    );
    print!("{report}");
}

/// The plan's counts, read back from the saved plan's summary.
fn plan_summary(path: &Path) -> String {
    #[derive(serde::Deserialize)]
    struct Saved {
        summary: serde_json::Value,
    }
    let text = std::fs::read(path).unwrap();
    let saved: Saved = serde_json::from_slice(&text).unwrap();
    format!(
        "{} ({:.1} MiB of JSON)",
        saved.summary,
        text.len() as f64 / 1_048_576.0
    )
}
