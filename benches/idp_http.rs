//! Identity-provider snapshot benchmark (not a timed test): each connector against its fake with 20 ms
//! added to every request, 20,000 users and 1,000 groups of 20 members.
//!
//! Reports requests, wall time and the ratio to the lower bound, minimum requests × latency ÷ allowed
//! concurrency, for each connector.
//!
//! Run: `cargo bench --bench idp_http` (`-- --concurrency N` to change `http.max_concurrency`).
#![allow(clippy::print_stdout, clippy::cast_precision_loss)]

#[allow(unused_imports)]
#[path = "../tests/fakes/mod.rs"]
mod fakes;

use std::time::{Duration, Instant};

use fakes::entra::{EntraSeedUser, FakeEntra, FakeEntraConfig};
use fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};

const USERS: usize = 20_000;
const GROUPS: usize = 1_000;
const PER_GROUP: usize = 20;
const LATENCY: Duration = Duration::from_millis(20);

fn email(i: usize) -> String {
    format!("user{i:05}@example.com")
}

fn members(g: usize) -> Vec<String> {
    (0..PER_GROUP)
        .map(|k| email((g * 37 + k * 1009) % USERS))
        .collect()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Loads a config naming one source and reads that source, timing it.
async fn measure(yaml: &str) -> (usize, usize, Duration) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idsync.yaml"), yaml).unwrap();
    let loaded = idsync::config::load(&dir.path().join("idsync.yaml")).unwrap();
    let source = idsync::sources::build(&loaded.config.sources[0], &loaded.dir).unwrap();
    let clock = Instant::now();
    let snap = source.snapshot().await.unwrap();
    let took = clock.elapsed();
    assert_eq!(snap.users.len(), USERS);
    assert_eq!(snap.groups.len(), GROUPS);
    (
        snap.users.len(),
        snap.groups.iter().map(|g| g.members.len()).sum(),
        took,
    )
}

fn report(name: &str, requests: usize, minimum: usize, took: Duration, concurrency: usize) {
    let bound = LATENCY.as_secs_f64() * minimum as f64 / concurrency as f64;
    println!(
        "{name:<6} {requests:>5} requests (minimum {minimum:>5})  {:>6.2} s  lower bound {bound:>5.2} s  ratio {:.2}",
        took.as_secs_f64(),
        took.as_secs_f64() / bound
    );
}

fn main() {
    let concurrency = arg("--concurrency", 4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "idp_http: {USERS} users, {GROUPS} groups of {PER_GROUP}; {} ms per request, {concurrency} at a time",
            LATENCY.as_millis()
        );
        let target = "target: {type: file, path: unused.yaml}";

        let okta = FakeOkta::start(FakeOktaConfig { latency: LATENCY, ..FakeOktaConfig::default() }).await;
        for i in 0..USERS {
            okta.add_user(OktaSeedUser::new(&email(i)));
        }
        for g in 0..GROUPS {
            let m = members(g);
            let refs: Vec<&str> = m.iter().map(String::as_str).collect();
            okta.add_group(&format!("team-{g:04}"), "OKTA_GROUP", &refs);
        }
        let yaml = format!(
            "version: 1\nsources: [{{name: okta, type: okta, base_url: \"{}\", token: \"{}\", http: {{max_concurrency: {concurrency}}}}}]\n{target}\n",
            okta.base_url, okta.config.api_token
        );
        let before = okta.requests().len();
        let (_, _, took) = measure(&yaml).await;
        let requests = okta.requests().len() - before;
        let minimum = USERS.div_ceil(200) + GROUPS.div_ceil(200) + GROUPS * PER_GROUP.div_ceil(200);
        report("okta", requests, minimum, took, concurrency);

        let entra = FakeEntra::start(FakeEntraConfig { latency: LATENCY, ..FakeEntraConfig::default() }).await;
        for i in 0..USERS {
            entra.add_user(EntraSeedUser::new(&email(i)));
        }
        for g in 0..GROUPS {
            let m = members(g);
            let refs: Vec<&str> = m.iter().map(String::as_str).collect();
            entra.add_group(&format!("team-{g:04}"), &refs);
        }
        let yaml = format!(
            "version: 1\nsources: [{{name: entra, type: entra, tenant_id: {}, client_id: {}, client_secret: \"{}\", authority: \"{}\", base_url: \"{}\", http: {{max_concurrency: {concurrency}}}}}]\n{target}\n",
            entra.config.tenant_id,
            entra.config.client_id,
            entra.config.client_secret,
            entra.authority_url(),
            entra.graph_url()
        );
        let before = entra.requests().len();
        let (_, _, took) = measure(&yaml).await;
        let requests = entra.requests().len() - before;
        // A token, the users, the groups, and one member page per group.
        let minimum = 1 + USERS.div_ceil(999) + GROUPS.div_ceil(999) + GROUPS * PER_GROUP.div_ceil(999);
        report("entra", requests, minimum, took, concurrency);
    });
}
