//! HTTP efficiency benchmark (not a timed test): the Atlassian target against the fake Atlassian with
//! 20 ms added to every request. 10,000 IdP users and 500 groups; the organization already has 9,000 of
//! the users, so a plan holds 1,000 creates and 20,000 membership additions (40 per group).
//!
//! Reports, for the snapshot (best of three runs, each printed) and for the apply, the requests made,
//! the wall time, and the ratio to the lower bound: the largest of minimum requests × latency ÷
//! concurrency; the longest chain of requests the API makes sequential × latency (a SCIM listing's
//! first page, which says what pages follow, then any page or the page past the end: 2; the apply
//! has none longer than one request); and, for the snapshot, one round for the two listings' first
//! pages (the only requests that can open it), then the rest `concurrency` at a time: latency × (1 +
//! ⌈(requests − 2) ÷ concurrency⌉). The apply runs with the journal an apply of a plan file keeps; it
//! runs again without it (against a freshly seeded fake) to report the journal's cost: its
//! `fdatasync` calls per action and the ratio of the two wall times.
//!
//! The fake's 20 ms is the least time an answer takes: the fake's own work on a request (rendering
//! a page) happens within it, so what the ratio shows above 1 is the client's, the machine's
//! scheduling, and the timer's rounding (a sleep ends on the next millisecond tick or later).
//!
//! Run: `cargo bench --bench atlassian_http` (`-- --concurrency N` to change `http.max_concurrency`).
#![allow(clippy::print_stdout, clippy::cast_precision_loss)]

/// The allocator the `idsync` binary uses (src/main.rs): the client is measured as it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use idsync_fakes as fakes;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use idsync::apply::journal::{Journal, Progress};
use idsync::cli::ColorChoice;
use idsync::model::{Group, Snapshot, User};
use idsync::output::Printer;

const USERS: usize = 10_000;
const EXISTING: usize = 9_000;
const GROUPS: usize = 500;
const PER_GROUP_EXISTING: usize = 40;
const PER_GROUP_ADDED: usize = 40;
const LATENCY: Duration = Duration::from_millis(20);
/// How many times the snapshot is measured (the best is the figure).
const SNAPSHOT_RUNS: usize = 3;

fn email(i: usize) -> String {
    format!("user{i:05}@example.com")
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let concurrency = arg("--concurrency", 4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(concurrency));
}

/// A fake Atlassian seeded with the organization, and the folder holding the IdP export and config.
async fn setup(concurrency: usize) -> (FakeAtlassian, tempfile::TempDir, Snapshot) {
    let fake = FakeAtlassian::start(FakeConfig {
        latency: LATENCY,
        ..FakeConfig::default()
    })
    .await;
    let mut idp = Snapshot::default();
    for i in 0..USERS {
        let mut u = User::new(&email(i));
        u.id = Some(format!("00u{i}"));
        u.given_name = Some(format!("Given{i}"));
        u.family_name = Some("Family".into());
        if i < EXISTING {
            let mut seed = SeedUser::new(&email(i));
            seed.external_id = u.id.clone();
            seed.given_name.clone_from(&u.given_name);
            seed.family_name.clone_from(&u.family_name);
            seed.display_name = Some(format!("Given{i} Family"));
            fake.add_user(seed);
        }
        idp.users.push(u);
    }
    for g in 0..GROUPS {
        let existing: Vec<String> = (0..PER_GROUP_EXISTING)
            .map(|k| email((g * 17 + k * 223) % EXISTING))
            .collect();
        // Half of the additions are existing users, half new hires.
        let added: Vec<String> = (0..PER_GROUP_ADDED)
            .map(|k| {
                if k % 2 == 0 {
                    email((g * 31 + k * 101 + 7) % EXISTING)
                } else {
                    email(EXISTING + (g * 2 + k) % (USERS - EXISTING))
                }
            })
            .filter(|e| !existing.contains(e))
            .collect();
        let refs: Vec<&str> = existing.iter().map(String::as_str).collect();
        fake.add_group(&format!("team-{g:03}"), &refs);
        let mut members = existing.clone();
        members.extend(added);
        members.sort();
        members.dedup();
        idp.groups.push(Group {
            name: format!("team-{g:03}"),
            id: None,
            members,
        });
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("idp.json"),
        serde_json::to_vec(&idp).unwrap(),
    )
    .unwrap();
    let config = format!(
        "version: 1\nsources: [{{name: okta, type: file, path: idp.json}}]\ntarget:\n  type: atlassian\n  scim: {{base_url: \"{}\", token: \"{}\"}}\n  http: {{max_concurrency: {concurrency}}}\nusers:\n  attributes: {{displayName: \"{{givenName}} {{familyName}}\"}}\ngroups:\n  mappings: [{{from_regex: \"^okta:(.+)$\", to: \"$1\"}}]\ncleanup: {{max_deactivations: 1%}}\n",
        fake.scim_base(),
        fake.config.scim_token
    );
    std::fs::write(dir.path().join("idsync.yaml"), config).unwrap();
    (fake, dir, idp)
}

/// Plans against a freshly seeded fake and applies the plan, with or without a journal: the apply's
/// wall time, its requests, the plan, and the journal's syncs.
async fn plan_and_apply(
    concurrency: usize,
    journaled: bool,
) -> (Duration, u64, idsync::plan::Plan, Option<u64>, f64) {
    let (fake, dir, _) = setup(concurrency).await;
    let loaded = idsync::config::load(&dir.path().join("idsync.yaml")).unwrap();
    let printer = Printer::new(ColorChoice::Never, true, false);
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let mut planned =
        idsync::engine::make_plan(&loaded, &printer, now, idsync::plan::Overrides::default())
            .await
            .unwrap();
    let plan = planned.plan;
    let planned_requests = planned.target.requests();
    let plan_file = dir.path().join("plan.json");
    let progress =
        Progress::read(&plan_file, &plan.digest, plan.actions.len(), &|_| false).unwrap();
    let journal = journaled
        .then(|| Journal::begin(&plan_file, &plan.digest, plan.actions.len(), &progress).unwrap());
    let stop = AtomicBool::new(false);
    let before = fake.requests().len();
    let clock = Instant::now();
    let outcome = idsync::apply::execute_resuming(
        &plan,
        planned.target.as_mut(),
        journal.as_ref(),
        &HashSet::new(),
        &stop,
        &mut |_, _| {},
    )
    .await;
    if let Some(j) = &journal {
        j.complete().await.unwrap();
    }
    let apply_time = clock.elapsed();
    let answers = answer_ms(&fake.requests()[before..]);
    let apply_requests = planned.target.requests() - planned_requests;
    assert_eq!(outcome.failed(), 0);
    if journaled {
        let p = Progress::read(&plan_file, &plan.digest, plan.actions.len(), &|_| false).unwrap();
        assert!(p.complete && p.done.len() == plan.actions.len());
    }
    (
        apply_time,
        apply_requests,
        plan,
        journal.map(|j| j.syncs()),
        answers,
    )
}

/// How long the fake's answers took on average, from a request's arrival to its answer: the
/// 20 ms, the timer's rounding and the machine's scheduling (the fake's own work happens within
/// the 20 ms unless it takes longer).
fn answer_ms(log: &[fakes::RequestLog]) -> f64 {
    log.iter().map(|r| r.took.as_secs_f64()).sum::<f64>() * 1e3 / log.len().max(1) as f64
}

async fn run(concurrency: usize) {
    let (fake, dir, _) = setup(concurrency).await;
    let loaded = idsync::config::load(&dir.path().join("idsync.yaml")).unwrap();

    // Snapshot alone, a few times against the same fake (a read changes nothing): the best run is
    // the figure, every run's time is printed (on a shared machine the first run after a pause is
    // the slow one).
    let mut snapshot_runs = Vec::with_capacity(SNAPSHOT_RUNS);
    let mut snapshot_requests = 0;
    for _ in 0..SNAPSHOT_RUNS {
        let mut target = idsync::targets::build(&loaded.config, &loaded.dir).unwrap();
        let clock = Instant::now();
        let snap = target.snapshot().await.unwrap();
        snapshot_runs.push(clock.elapsed());
        snapshot_requests = target.requests();
        assert_eq!(snap.users.len(), EXISTING);
    }
    let snapshot_time = *snapshot_runs.iter().min().expect("runs");
    let snapshot_answers = answer_ms(&fake.requests());

    drop(fake);

    // Plan (which snapshots again), then apply: with the journal an apply of a plan file keeps, and
    // (each against a freshly seeded fake) without it, for its cost.
    let (apply_time, apply_requests, plan, syncs, apply_answers) =
        plan_and_apply(concurrency, true).await;
    let syncs = syncs.expect("journaled");
    let (bare_time, _, _, _, _) = plan_and_apply(concurrency, false).await;
    let plan = &plan;

    // A SCIM listing that ends on a full page is asked for one page past its announced end.
    let listing = |n: usize| n.div_ceil(100) + usize::from(n.is_multiple_of(100));
    let pages = listing(EXISTING) + listing(GROUPS);
    let min_apply =
        plan.summary.create_user + plan.summary.membership_batches + plan.summary.create_group;
    // Every request, `concurrency` at a time, or the longest chain the API makes sequential; at
    // 20 ms a request, or at the pace the fake's answers came (`answer_ms`).
    // The snapshot's first round holds only its two listings' first pages.
    let bound_at = |latency: f64, requests: usize, chain: usize, first: usize| {
        let mut spread = latency * requests as f64 / concurrency as f64;
        if first > 0 {
            let rounds = 1 + requests.saturating_sub(first).div_ceil(concurrency);
            spread = spread.max(latency * rounds as f64);
        }
        spread.max(latency * chain as f64)
    };
    let bound = |requests: usize, chain: usize, first: usize| {
        bound_at(LATENCY.as_secs_f64(), requests, chain, first)
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "atlassian_http: {USERS} IdP users, {GROUPS} groups; {} creates, {} membership additions in {} batches; {} ms per request, {concurrency} at a time",
        plan.summary.create_user,
        plan.summary.members_added,
        plan.summary.membership_batches,
        LATENCY.as_millis()
    );
    let _ = writeln!(
        out,
        "snapshot: {snapshot_requests:>5} requests (minimum {pages:>5})  {:>7.2} s  lower bound {:>6.2} s  ratio {:.2}  (answers took {snapshot_answers:.1} ms: ratio {:.2} at that pace; best of {SNAPSHOT_RUNS} runs: {})",
        snapshot_time.as_secs_f64(),
        bound(pages, 2, 2),
        snapshot_time.as_secs_f64() / bound(pages, 2, 2),
        snapshot_time.as_secs_f64() / bound_at(snapshot_answers / 1e3, pages, 2, 2),
        snapshot_runs
            .iter()
            .map(|t| format!("{:.2} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "apply:    {apply_requests:>5} requests (minimum {min_apply:>5})  {:>7.2} s  lower bound {:>6.2} s  ratio {:.2}  (answers took {apply_answers:.1} ms: ratio {:.2} at that pace)",
        apply_time.as_secs_f64(),
        bound(min_apply, 1, 0),
        apply_time.as_secs_f64() / bound(min_apply, 1, 0),
        apply_time.as_secs_f64() / bound_at(apply_answers / 1e3, min_apply, 1, 0)
    );
    let _ = writeln!(
        out,
        "journal:  {syncs:>5} fdatasync for {} actions ({:.3} per action)  without it {:>7.2} s  cost ratio {:.3}",
        plan.actions.len(),
        syncs as f64 / plan.actions.len() as f64,
        bare_time.as_secs_f64(),
        apply_time.as_secs_f64() / bare_time.as_secs_f64()
    );
    print!("{out}");
}
