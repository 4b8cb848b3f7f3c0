//! Identity-provider snapshot benchmark (not a timed test): each connector against its fake with 20 ms
//! added to every request, 20,000 users and 1,000 groups of 20 members.
//!
//! Reports requests (which must equal README's formula: the benchmark fails otherwise), wall time
//! and the ratio to the lower bound for each connector: okta, entra, google, keycloak, onelogin
//! (the groups as roles) and scim (a SCIM source, read from the fake Atlassian's SCIM endpoints).
//! The lower bound is the larger of requests × latency ÷ allowed concurrency and the longest chain
//! of requests the API makes sequential × latency (see [`report`]): Graph serves its users listing
//! only by `@odata.nextLink`, so Entra's token and 21 users pages take 22 × 20 ms whatever the
//! concurrency. Each chain is counted from the requests the connector actually sent.
//!
//! The fake's 20 ms is the least time an answer takes: the fake's own work on a request (rendering
//! a page) happens within it, so what the ratio shows above 1 is the client's, the machine's
//! scheduling (client and fakes share this process's threads), and the timer's rounding (a sleep
//! ends on the next millisecond tick or later).
//!
//! Run: `cargo bench --bench idp_http` (`-- --concurrency N` to change `http.max_concurrency`,
//! `-- --only NAME` to measure one connector, `-- --cpu` to print each thread's CPU time during
//! the read).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss
)]

/// The allocator the `idsync` binary uses (src/main.rs): the client is measured as it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use idsync_fakes as fakes;

use std::time::{Duration, Instant};

use fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use fakes::entra::{EntraSeedUser, FakeEntra, FakeEntraConfig};
use fakes::google::{FakeGoogle, FakeGoogleConfig};
use fakes::keycloak::{FakeKeycloak, FakeKeycloakConfig};
use fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use fakes::onelogin::{FakeOneLogin, FakeOneLoginConfig};
use fakes::RequestLog;

const USERS: usize = 20_000;
const GROUPS: usize = 1_000;
const PER_GROUP: usize = 20;
const LATENCY: Duration = Duration::from_millis(20);
const CONNECTORS: [&str; 6] = ["okta", "entra", "google", "keycloak", "onelogin", "scim"];
/// The widest connector name, so every report line lines up.
const NAME_WIDTH: usize = 8;

fn email(i: usize) -> String {
    format!("user{i:05}@example.com")
}

fn members(g: usize) -> Vec<String> {
    (0..PER_GROUP)
        .map(|k| email((g * 37 + k * 1009) % USERS))
        .collect()
}

/// Seeds the layout every connector is measured on: `USERS` users, then `GROUPS` groups named
/// `team-NNNN` with the members of [`members`], through each fake's own seeding calls (whose
/// results, the new ids, are not needed).
fn seed<U, G>(mut add_user: impl FnMut(&str) -> U, mut add_group: impl FnMut(&str, &[&str]) -> G) {
    for i in 0..USERS {
        add_user(&email(i));
    }
    for g in 0..GROUPS {
        let m = members(g);
        let refs: Vec<&str> = m.iter().map(String::as_str).collect();
        add_group(&format!("team-{g:04}"), &refs);
    }
}

/// The value following `name` on the command line.
fn arg_str(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn arg(name: &str, default: usize) -> usize {
    arg_str(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A config whose one source is `kind` (also its name), with these extra `fields` (flow YAML).
fn config(kind: &str, fields: &str, concurrency: usize) -> String {
    format!(
        "version: 1\nsources: [{{name: {kind}, type: {kind}, {fields}, http: {{max_concurrency: {concurrency}}}}}]\ntarget: {{type: file, path: unused.yaml}}\n"
    )
}

/// CPU time (user + system, in clock ticks, 100 a second on Linux) of each thread of this
/// process, by thread id and name (`--cpu`: the client runs on the main thread, the fake and the
/// client's connections on the runtime's two workers); empty without `/proc`.
fn thread_cpu() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in tasks.flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let name = head.split_once(" (").map_or("", |(_, n)| n);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime: fields 14 and 15 of proc_pid_stat(5), counted here after the name.
        let ticks = field(11) + field(12);
        out.push((
            format!("{}-{}", entry.file_name().to_string_lossy(), name),
            ticks,
        ));
    }
    out
}

/// Loads `yaml`, reads its one source and times it; checks the snapshot holds the seeded layout.
/// Returns the requests the fake received meanwhile (`log` is the fake's request log) and the
/// time taken.
async fn measure(yaml: &str, log: impl Fn() -> Vec<RequestLog>) -> (Vec<RequestLog>, Duration) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idsync.yaml"), yaml).unwrap();
    let loaded = idsync::config::load(&dir.path().join("idsync.yaml")).unwrap();
    let source = idsync::sources::build(&loaded.config.sources[0], &loaded.dir).unwrap();
    let before = log().len();
    let cpu0 = thread_cpu();
    let clock = Instant::now();
    let snap = source.snapshot().await.unwrap();
    let took = clock.elapsed();
    let cpu1 = thread_cpu();
    if std::env::args().any(|a| a == "--cpu") {
        for (name, t) in &cpu1 {
            let t0 = cpu0.iter().find(|(n, _)| n == name).map_or(0, |(_, t)| *t);
            eprintln!("  cpu {name}: {:.2} s", t.saturating_sub(t0) as f64 / 100.0);
        }
    }
    assert_eq!(snap.users.len(), USERS);
    assert_eq!(snap.groups.len(), GROUPS);
    let memberships: usize = snap.groups.iter().map(|g| g.members.len()).sum();
    assert_eq!(memberships, GROUPS * PER_GROUP);
    (log().split_off(before), took)
}

/// How many of `log`'s requests went to a path ending with `suffix`.
fn count(log: &[RequestLog], suffix: &str) -> usize {
    log.iter().filter(|r| r.path.ends_with(suffix)).count()
}

/// Prints one connector's figures; the requests sent must be exactly README's formula (`formula`),
/// else the benchmark fails.
///
/// The lower bound is the larger of two: every request at `concurrency` at a time
/// (`formula` × latency ÷ concurrency), and the longest chain of requests the API makes strictly
/// sequential (`chain` × latency: a request that can only be sent once the previous one has
/// answered, such as a page known only from the previous page's next link or cursor). Each
/// connector counts its chain from the requests it actually sent, so a read that takes more pages
/// than it should raises its own bound no more than those pages cost.
///
/// A read whose first requests alone can open it (`first`: a SCIM source's two listings, whose
/// first pages say what pages follow) also cannot beat one round for those, then the rest
/// `concurrency` at a time: latency × (1 + ⌈(formula − first) ÷ concurrency⌉).
///
/// It also prints how long the fake's answers took on average, from a request's arrival to its
/// answer (the 20 ms, the timer's rounding and the machine's scheduling; the fake's own work
/// happens within the 20 ms unless it takes longer), and the ratio to the same bound at that
/// pace: what the client adds to the answers it was given.
fn report(
    name: &str,
    log: &[RequestLog],
    formula: usize,
    chain: usize,
    first: usize,
    took: Duration,
    concurrency: usize,
) {
    let requests = log.len();
    let answer_ms =
        log.iter().map(|r| r.took.as_secs_f64()).sum::<f64>() * 1e3 / requests.max(1) as f64;
    let bound_at = |latency: f64| {
        let mut spread = latency * formula as f64 / concurrency as f64;
        if first > 0 {
            let rounds = 1 + formula.saturating_sub(first).div_ceil(concurrency);
            spread = spread.max(latency * rounds as f64);
        }
        (
            spread,
            latency * chain as f64,
            spread.max(latency * chain as f64),
        )
    };
    let (spread, sequential, bound) = bound_at(LATENCY.as_secs_f64());
    let (_, _, paced) = bound_at(answer_ms / 1e3);
    println!(
        "{name:<NAME_WIDTH$} {requests:>5} requests (formula {formula:>5}, ratio {:.2})  {:>6.2} s  lower bound {bound:>5.2} s (max of {spread:.2} s for all, {sequential:.2} s for a chain of {chain})  ratio {:.2}  (answers took {answer_ms:.1} ms: ratio {:.2} at that pace)",
        requests as f64 / formula as f64,
        took.as_secs_f64(),
        took.as_secs_f64() / bound,
        took.as_secs_f64() / paced,
    );
    assert_eq!(
        requests, formula,
        "idp_http: {name} sent {requests} requests where README's formula says {formula}: fix the client or the formula"
    );
}

async fn okta(concurrency: usize) {
    let okta = FakeOkta::start(FakeOktaConfig {
        latency: LATENCY,
        ..FakeOktaConfig::default()
    })
    .await;
    seed(
        |e| okta.add_user(OktaSeedUser::new(e)),
        |name, m| okta.add_group(name, "OKTA_GROUP", m),
    );
    let fields = format!(
        "base_url: \"{}\", token: \"{}\"",
        okta.base_url, okta.config.api_token
    );
    let (log, took) = measure(&config("okta", &fields, concurrency), || okta.requests()).await;
    // The users listing follows `Link: rel="next"`: one page after another.
    let chain = count(&log, "/api/v1/users");
    // 200 per page (Okta's limit): the users, the groups, and one member page per group.
    let formula = USERS.div_ceil(200) + GROUPS.div_ceil(200) + GROUPS * PER_GROUP.div_ceil(200);
    report("okta", &log, formula, chain, 0, took, concurrency);
}

async fn entra(concurrency: usize) {
    let entra = FakeEntra::start(FakeEntraConfig {
        latency: LATENCY,
        ..FakeEntraConfig::default()
    })
    .await;
    seed(
        |e| entra.add_user(EntraSeedUser::new(e)),
        |name, m| entra.add_group(name, m),
    );
    let fields = format!(
        "tenant_id: {}, client_id: {}, client_secret: \"{}\", authority: \"{}\", base_url: \"{}\"",
        entra.config.tenant_id,
        entra.config.client_id,
        entra.config.client_secret,
        entra.authority_url(),
        entra.graph_url()
    );
    let (log, took) = measure(&config("entra", &fields, concurrency), || entra.requests()).await;
    // The token, then the users listing, which Graph serves only by `@odata.nextLink`: one page
    // after another.
    let chain = count(&log, "/oauth2/v2.0/token") + count(&log, "/v1.0/users");
    // 999 per page (Graph's limit): a token, the users, the groups, and one member page per group.
    // Token, users and groups pages, member listings' first pages twenty to a `$batch`, and
    // their further pages (none here) by nextLink.
    let formula = 1
        + USERS.div_ceil(999)
        + GROUPS.div_ceil(999)
        + GROUPS.div_ceil(20)
        + GROUPS * (PER_GROUP.div_ceil(999).max(1) - 1);
    report("entra", &log, formula, chain, 0, took, concurrency);
}

async fn google(concurrency: usize) {
    let google = FakeGoogle::start(FakeGoogleConfig {
        latency: LATENCY,
        ..FakeGoogleConfig::default()
    })
    .await;
    seed(
        |e| google.add_user(e),
        |name, m| google.add_group(name, &format!("{name}@example.com"), m),
    );
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": google.config.service_account,
        "private_key": include_str!("../tests/fixtures/test-rsa-key.pem"),
        "token_uri": google.token_url(),
    });
    // The key as one JSON string: a JSON string literal is also a YAML double-quoted scalar.
    let fields = format!(
        "service_account_key: {}, admin_email: {}, customer: my_customer, base_url: \"{}\", token_url: \"{}\"",
        serde_json::to_string(&key.to_string()).unwrap(),
        google.config.admin,
        google.base_url,
        google.token_url()
    );
    let (log, took) = measure(&config("google", &fields, concurrency), || {
        google.requests()
    })
    .await;
    // The token, then the users listing, which follows `nextPageToken`: one page after another.
    let chain = count(&log, "/token") + count(&log, "/users");
    // The Directory API's page limits, which the connector asks for: users.list `maxResults` ≤ 500,
    // groups.list ≤ 200, members.list ≤ 200. `nextPageToken` is absent on the last page, so no listing
    // ends with an empty page: a token, the users, the groups, and one member page per group.
    let formula = 1 + USERS.div_ceil(500) + GROUPS.div_ceil(200) + GROUPS * PER_GROUP.div_ceil(200);
    report("google", &log, formula, chain, 0, took, concurrency);
}

async fn keycloak(concurrency: usize) {
    let kc = FakeKeycloak::start(FakeKeycloakConfig {
        latency: LATENCY,
        ..FakeKeycloakConfig::default()
    })
    .await;
    // Every group top level: no `/children` listings (each group's `subGroupCount` is 0).
    seed(
        |e| kc.add_user(e),
        |name, m| kc.add_group(&format!("/{name}"), m),
    );
    let fields = format!(
        "base_url: \"{}\", realm: {}, client_id: {}, client_secret: \"{}\"",
        kc.base_url, kc.config.realm, kc.config.client_id, kc.config.client_secret
    );
    let (log, took) = measure(&config("keycloak", &fields, concurrency), || kc.requests()).await;
    // `page_size` 100 (the default, and Keycloak's default `max`). A Keycloak listing is a bare JSON
    // array: no total, no next link, and a server may hold a page below `max` (the fake's `max_cap`),
    // so a short page alone does not prove the end. Users and top-level groups are counted first
    // (`/users/count`, `/groups/count?top=true`) and end when the count is read: their last page
    // asks for one item more than remains, so a listing going on past its count still shows.
    // Members have no count: a member listing ends on a short page once the read has seen the
    // server fill a page of `max` (the users' first page, which member listings wait for), else on
    // an empty page. Here: users 1 + 200, groups 1 + 10, one page per group: 1,213 (2,215 before).
    let page = 100;
    // A count, then its pages (the last asks for one more than remains: no empty page).
    let counted = |n: usize| 1 + n.div_ceil(page).max(1);
    // The users' first page came back full, so a member listing ends on a short page; one that
    // ends on a full page (or is empty) asks for an empty one.
    let members = |n: usize| n.div_ceil(page) + usize::from(n.is_multiple_of(page));
    let formula = 1 + counted(USERS) + counted(GROUPS) + GROUPS * members(PER_GROUP);
    // Pages are asked for by offset once a count is known: the token, the users count, the first
    // page (the others are asked for side by side once it came back full), then any page.
    report("keycloak", &log, formula, 4, 0, took, concurrency);
}

async fn onelogin(concurrency: usize) {
    let ol = FakeOneLogin::start(FakeOneLoginConfig {
        latency: LATENCY,
        ..FakeOneLoginConfig::default()
    })
    .await;
    // A OneLogin user has one group at most: the many-to-many layout is roles.
    seed(|e| ol.add_user(e), |name, m| ol.add_role(name, m));
    let fields = format!(
        "base_url: \"{}\", client_id: {}, client_secret: \"{}\", roles_as_groups: true",
        ol.base_url, ol.config.client_id, ol.config.client_secret
    );
    let (log, took) = measure(&config("onelogin", &fields, concurrency), || ol.requests()).await;
    // 50 per page (OneLogin's documented maximum for users and role users): a token, the users,
    // one page of (no) groups, the roles, and one member page per role. `After-Cursor` is absent on
    // a last page, so no listing ends with an empty one.
    let formula =
        1 + USERS.div_ceil(50) + 1 + GROUPS.div_ceil(50) + GROUPS * PER_GROUP.div_ceil(50);
    // Pages after the first are asked for by number (the first states `Total-Count`): the token,
    // the roles' first page, any other page of roles, then a role's member page.
    report("onelogin", &log, formula, 4, 0, took, concurrency);
}

async fn scim(concurrency: usize) {
    let idp = FakeAtlassian::start(FakeConfig {
        latency: LATENCY,
        ..FakeConfig::default()
    })
    .await;
    seed(
        |e| idp.add_user(SeedUser::new(e)),
        |name, m| idp.add_group(name, m),
    );
    let fields = format!(
        "base_url: \"{}\", token: \"{}\"",
        idp.scim_base(),
        idp.config.scim_token
    );
    let (log, took) = measure(&config("scim", &fields, concurrency), || idp.requests()).await;
    // 100 per page (`page_size`, and Atlassian's cap); `totalResults` on the first page tells where the
    // listing ends, and a listing that ends on a full page is asked for one page past it (a total
    // that is too low would otherwise hide the rest). Groups carry their members: the users, then
    // the groups, and nothing per group.
    let scim_listing = |n: usize| n.div_ceil(100) + usize::from(n.is_multiple_of(100));
    let formula = scim_listing(USERS) + scim_listing(GROUPS);
    // The first page (its `totalResults` tells which pages follow), then any page, then the
    // page past the end once every page has come.
    // Two listings (users, groups): their first pages open the read; the page past a listing's
    // end is asked for with the other pages, so the longest chain is two.
    report("scim", &log, formula, 2, 2, took, concurrency);
}

fn main() {
    let concurrency = arg("--concurrency", 4);
    let only = arg_str("--only");
    let asked = std::env::args().any(|a| a == "--only");
    if asked && !only.as_deref().is_some_and(|n| CONNECTORS.contains(&n)) {
        eprintln!(
            "idp_http: --only takes one of {}, not {:?}",
            CONNECTORS.join(", "),
            only.unwrap_or_default()
        );
        std::process::exit(2);
    }
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
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
        if run("okta") {
            okta(concurrency).await;
        }
        if run("entra") {
            entra(concurrency).await;
        }
        if run("google") {
            google(concurrency).await;
        }
        if run("keycloak") {
            keycloak(concurrency).await;
        }
        if run("onelogin") {
            onelogin(concurrency).await;
        }
        if run("scim") {
            scim(concurrency).await;
        }
    });
}
