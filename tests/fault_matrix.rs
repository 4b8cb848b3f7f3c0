//! The fault matrix: every kind of page fault (a row) against every read side (a column), each run
//! through `idsync snapshot --side … --out` against the fakes.
//!
//! A listing is complete or it is an error: under a fault a read either fails (exit 1, no file
//! written) or, when the fault was a passing glitch it retried, writes exactly what it writes
//! without the fault. Two more outcomes are spelt out where an API leaves no choice: `-` a fault
//! the API cannot express (no announced total to lower), and `B` a fault the API gives a client no
//! means to see (Okta and Google announce no total, so a last page that lost items looks like a
//! short last page; Graph may legitimately return short or empty pages before the last, and its
//! users listing with managers (`$expand`) cannot ask for `@odata.count`). A cell
//! asserts its outcome, and that the fault did hit the listing (or, for `-`, that it could not).
//!
//! A column is one line of [`COLUMNS`]: a name, how to set up the fakes, and the expected outcome
//! per row (a character each, in the order of [`ROWS`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::entra::{EntraSeedUser, FakeEntra, FakeEntraConfig};
use crate::fakes::google::{FakeGoogle, FakeGoogleConfig};
use crate::fakes::keycloak::{FakeKeycloak, FakeKeycloakConfig};
use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use crate::fakes::onelogin::{FakeOneLogin, FakeOneLoginConfig};
use crate::fakes::{Faults, PageFault, PageFaultKind, Params};
use crate::support::{repo, run_beside_fakes, Scratch};

/// Five people: every listing under test takes three pages of two.
const PEOPLE: [&str; 5] = [
    "ana@example.com",
    "ben@example.com",
    "cy@example.com",
    "dee@example.com",
    "eve@example.com",
];
const PAGES: usize = 3;

/// Which pages of the listing a row hits.
#[derive(Clone, Copy, Debug)]
enum Which {
    First,
    Middle,
    Last,
    /// Every page, and the listing's count endpoint.
    All,
}

/// A kind of fault: what happens, to which page, how many times.
struct Row {
    name: &'static str,
    kind: PageFaultKind,
    which: Which,
    times: usize,
}

const ALWAYS: usize = usize::MAX;

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { name: "empty first page",       kind: PageFaultKind::Empty,        which: Which::First,  times: ALWAYS },
    Row { name: "empty middle page",      kind: PageFaultKind::Empty,        which: Which::Middle, times: ALWAYS },
    Row { name: "empty last page",        kind: PageFaultKind::Empty,        which: Which::Last,   times: ALWAYS },
    Row { name: "short middle page",      kind: PageFaultKind::Short,        which: Which::Middle, times: ALWAYS },
    Row { name: "short last page",        kind: PageFaultKind::Short,        which: Which::Last,   times: ALWAYS },
    Row { name: "repeated cursor",        kind: PageFaultKind::RepeatCursor, which: Which::Middle, times: ALWAYS },
    Row { name: "past the announced end", kind: PageFaultKind::PastEnd,      which: Which::All,    times: ALWAYS },
    Row { name: "empty middle page once", kind: PageFaultKind::Empty,        which: Which::Middle, times: 1 },
    Row { name: "truncated body once",    kind: PageFaultKind::Truncate,     which: Which::Middle, times: 1 },
    Row { name: "truncated body always",  kind: PageFaultKind::Truncate,     which: Which::Middle, times: ALWAYS },
    Row { name: "503 always",             kind: PageFaultKind::Unavailable,  which: Which::Middle, times: ALWAYS },
    Row { name: "reset once",             kind: PageFaultKind::Reset,        which: Which::Middle, times: 1 },
];

type Setup = fn() -> Pin<Box<dyn Future<Output = Rig> + Send>>;

/// A read side: its name, its fakes, and per row (in the order of [`ROWS`]) what it must do:
/// `F` fail, `C` complete (the glitch retried), `B` blind, `-` not expressible.
struct Column {
    name: &'static str,
    setup: Setup,
    expect: &'static str,
}

// The outcomes per row, in the order of ROWS:
//   empty first/middle/last, short middle/last, repeated cursor, past the end, empty middle once,
//   truncated once/always, 503, reset once.
#[rustfmt::skip]
const COLUMNS: &[Column] = &[
    Column { name: "target: SCIM users",         expect: "FFFCFFFCCFFC", setup: || Box::pin(target_rig("/Users")) },
    Column { name: "target: SCIM groups",        expect: "FFFCFFFCCFFC", setup: || Box::pin(target_rig("/Groups")) },
    Column { name: "target: admin API accounts", expect: "FFFFFFFCCFFC", setup: || Box::pin(admin_rig()) },
    Column { name: "source: scim",               expect: "FFFCFFFCCFFC", setup: || Box::pin(scim_source_rig()) },
    Column { name: "source: okta",               expect: "FFBFBF-CCFFC", setup: || Box::pin(okta_rig()) },
    Column { name: "source: entra",              expect: "FFFFFFFCCFFC", setup: || Box::pin(entra_rig(false)) },
    Column { name: "source: entra with managers", expect: "BBBBBF-BCFFC", setup: || Box::pin(entra_rig(true)) },
    Column { name: "source: google",             expect: "FFBFBF-CCFFC", setup: || Box::pin(google_rig()) },
    Column { name: "source: keycloak",           expect: "FFFCFFFCCFFC", setup: || Box::pin(keycloak_rig()) },
    Column { name: "source: onelogin",           expect: "FFFFFFFCCFFC", setup: || Box::pin(onelogin_rig()) },
];

/// The fakes of one column, set up, and how to read through them.
struct Rig {
    scratch: Scratch,
    env: Vec<(&'static str, String)>,
    side: &'static str,
    /// The path of the listing under test ends with this.
    listing: String,
    /// The page (from 1) a request of the listing asks for, from its query or its rank on the
    /// path; 0 for a request that starts nowhere a page does.
    page_of: fn(&Params, usize) -> usize,
    set_faults: SetFaults,
    fired: Fired,
}

type SetFaults = Box<dyn Fn(Faults) + Send + Sync>;
type Fired = Box<dyn Fn() -> usize + Send + Sync>;

fn by_rank(_: &Params, rank: usize) -> usize {
    rank
}

/// The page of an offset (`startIndex` from 1, or `first` from 0) with pages of two.
fn by_offset(p: &Params, base: usize, key: &str) -> usize {
    match p.get(key).and_then(|v| v.parse::<usize>().ok()) {
        None => 1,
        Some(o) if o >= base && (o - base).is_multiple_of(2) => (o - base) / 2 + 1,
        Some(_) => 0,
    }
}

impl Rig {
    async fn snapshot(&self) -> (i32, String) {
        let _ = std::fs::remove_file(self.scratch.path("snap.yaml"));
        let mut cmd = self
            .scratch
            .idsync(&["snapshot", "--side", self.side, "--out", "snap.yaml"]);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.env("IDSYNC_RETRY_DELAY_SCALE", "0.001");
        let (code, _, stderr) = run_beside_fakes(cmd).await;
        (code, stderr)
    }

    /// The snapshot file, if one was written; a temporary file left behind counts as one.
    fn written(&self) -> Option<String> {
        let leftover = std::fs::read_dir(self.scratch.dir.path())
            .expect("the scratch folder")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(".idsync-"));
        if leftover {
            return Some("a temporary file left behind".into());
        }
        std::fs::read_to_string(self.scratch.path("snap.yaml")).ok()
    }

    fn faults(&self, row: &Row) -> Faults {
        let listing = self.listing.clone();
        let page_of = self.page_of;
        let which = row.which;
        let pick = move |path: &str, params: &Params, rank: usize| {
            if let Which::All = which {
                return path.ends_with(&listing) || path.ends_with(&format!("{listing}/count"));
            }
            if !path.ends_with(&listing) {
                return false;
            }
            let page = page_of(params, rank);
            match which {
                Which::First => page == 1,
                Which::Middle => page == 2,
                Which::Last => page == PAGES,
                Which::All => true,
            }
        };
        Faults {
            page_fault: Some(PageFault {
                kind: row.kind,
                pick: Arc::new(pick),
                times: row.times,
            }),
            ..Faults::default()
        }
    }
}

/// Runs one column: a clean read first, then every row; returns what went wrong.
async fn run_column(column: &Column) -> Vec<String> {
    assert_eq!(
        column.expect.len(),
        ROWS.len(),
        "{}: one outcome per row",
        column.name
    );
    let rig = (column.setup)().await;
    let (code, stderr) = rig.snapshot().await;
    assert_eq!(code, 0, "{}: the clean read fails: {stderr}", column.name);
    let clean = rig.written().expect("the clean read writes its file");
    for p in PEOPLE {
        assert!(
            clean.contains(p),
            "{}: {p} missing from the clean read:\n{clean}",
            column.name
        );
    }
    let mut wrong = Vec::new();
    for (row, expect) in ROWS.iter().zip(column.expect.chars()) {
        let before = (rig.fired)();
        (rig.set_faults)(rig.faults(row));
        let (code, stderr) = rig.snapshot().await;
        (rig.set_faults)(Faults::default());
        let fired = (rig.fired)() - before;
        let written = rig.written();
        let cell = format!("{} × {}", column.name, row.name);
        let ok = match expect {
            'F' => code == 1 && written.is_none() && fired > 0,
            'C' => code == 0 && written.as_deref() == Some(clean.as_str()) && fired > 0,
            'B' => code == 0 && written.as_ref().is_some_and(|w| *w != clean) && fired > 0,
            '-' => code == 0 && written.as_deref() == Some(clean.as_str()) && fired == 0,
            other => panic!("{cell}: unknown outcome {other:?}"),
        };
        if !ok {
            wrong.push(format!(
                "{cell}: expected {expect}, got exit {code}, {} file, {fired} fault(s) fired; stderr: {}",
                if written.is_some() { "a" } else { "no" },
                stderr.trim()
            ));
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_side_under_every_page_fault() {
    let results = futures_util::future::join_all(COLUMNS.iter().map(run_column)).await;
    let wrong: Vec<String> = results.into_iter().flatten().collect();
    assert!(
        wrong.is_empty(),
        "{} cell(s) wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The columns' fakes

/// The fake Atlassian with pages of two: five users and five groups.
async fn atlassian() -> FakeAtlassian {
    let atl = FakeAtlassian::start(FakeConfig {
        page_cap: 2,
        ..FakeConfig::default()
    })
    .await;
    for p in PEOPLE {
        atl.add_user(SeedUser::new(p));
    }
    for (i, p) in PEOPLE.iter().enumerate() {
        atl.add_group(&format!("group-{i}"), &[p]);
    }
    atl
}

fn atlassian_faults(atl: &Arc<FakeAtlassian>) -> (SetFaults, Fired) {
    let (a, b) = (atl.clone(), atl.clone());
    (
        Box::new(move |f| a.set_faults(f)),
        Box::new(move || b.page_faults_fired()),
    )
}

async fn target_rig(listing: &'static str) -> Rig {
    let atl = Arc::new(atlassian().await);
    let scratch = Scratch::new();
    scratch.write("idp.yaml", "users: []\ngroups: []\n").write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources: [{{name: idp, type: file, path: idp.yaml}}]
target:
  type: atlassian
  scim: {{base_url: "{}", token: "${{TEST_SCIM_TOKEN}}", page_size: 2}}
"#,
            atl.scim_base()
        ),
    );
    let (set_faults, fired) = atlassian_faults(&atl);
    Rig {
        scratch,
        env: vec![("TEST_SCIM_TOKEN", atl.config.scim_token.clone())],
        side: "target",
        listing: listing.to_string(),
        page_of: |p, _| by_offset(p, 1, "startIndex"),
        set_faults,
        fired,
    }
}

/// The organization admin API's managed accounts: cursor pages of two, whose cursors hold `+`,
/// `/` and `=`, behind `links.next` URLs.
async fn admin_rig() -> Rig {
    let atl = Arc::new(
        FakeAtlassian::start(FakeConfig {
            org_page_size: 2,
            ..FakeConfig::default()
        })
        .await,
    );
    for p in PEOPLE {
        atl.add_user(SeedUser::new(p));
    }
    let scratch = Scratch::new();
    scratch.write("idp.yaml", "users: []\ngroups: []\n").write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources: [{{name: idp, type: file, path: idp.yaml}}]
target:
  type: atlassian
  scim: {{base_url: "{}", token: "${{TEST_SCIM_TOKEN}}"}}
  admin: {{org_id: {}, token: "${{TEST_ORG_TOKEN}}", base_url: "{}"}}
"#,
            atl.scim_base(),
            atl.org_id(),
            atl.base_url
        ),
    );
    let (set_faults, fired) = atlassian_faults(&atl);
    Rig {
        scratch,
        env: vec![
            ("TEST_SCIM_TOKEN", atl.config.scim_token.clone()),
            ("TEST_ORG_TOKEN", atl.config.org_token.clone()),
        ],
        side: "target",
        listing: format!("/admin/v1/orgs/{}/users", atl.org_id()),
        page_of: by_rank,
        set_faults,
        fired,
    }
}

async fn scim_source_rig() -> Rig {
    let atl = Arc::new(atlassian().await);
    let scratch = Scratch::new();
    scratch.write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - {{name: idp, type: scim, base_url: "{}", token: "${{TEST_IDP_TOKEN}}", page_size: 2}}
target: {{type: file, path: atlassian.yaml}}
"#,
            atl.scim_base()
        ),
    );
    let (set_faults, fired) = atlassian_faults(&atl);
    Rig {
        scratch,
        env: vec![("TEST_IDP_TOKEN", atl.config.scim_token.clone())],
        side: "source",
        listing: "/Users".into(),
        page_of: |p, _| by_offset(p, 1, "startIndex"),
        set_faults,
        fired,
    }
}

async fn okta_rig() -> Rig {
    let okta = Arc::new(FakeOkta::start(FakeOktaConfig::default()).await);
    for p in PEOPLE {
        okta.add_user(OktaSeedUser::new(p));
    }
    okta.add_group("Everyone Here", "OKTA_GROUP", &PEOPLE);
    let scratch = Scratch::new();
    scratch.write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - {{name: okta, type: okta, base_url: "{}", token: "${{TEST_OKTA_TOKEN}}", page_size: 2}}
target: {{type: file, path: atlassian.yaml}}
"#,
            okta.base_url
        ),
    );
    let (a, b) = (okta.clone(), okta.clone());
    Rig {
        scratch,
        env: vec![("TEST_OKTA_TOKEN", okta.config.api_token.clone())],
        side: "source",
        listing: "/api/v1/users".into(),
        page_of: by_rank,
        set_faults: Box::new(move |f| a.set_faults(f)),
        fired: Box::new(move || b.page_faults_fired()),
    }
}

/// Entra; with `manager: true` the users listing carries `$expand`, which rules out `$count`.
async fn entra_rig(manager: bool) -> Rig {
    let e = Arc::new(FakeEntra::start(FakeEntraConfig::default()).await);
    for p in PEOPLE {
        e.add_user(EntraSeedUser::new(p));
    }
    e.add_group("Everyone Here", &PEOPLE);
    let scratch = Scratch::new();
    scratch.write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - name: entra
    type: entra
    tenant_id: {tenant}
    client_id: {client}
    client_secret: ${{TEST_ENTRA_SECRET}}
    authority: {authority}
    base_url: {graph}
    manager: {manager}
    page_size: 2
target: {{type: file, path: atlassian.yaml}}
"#,
            tenant = e.config.tenant_id,
            client = e.config.client_id,
            authority = e.authority_url(),
            graph = e.graph_url(),
        ),
    );
    let (a, b) = (e.clone(), e.clone());
    Rig {
        scratch,
        env: vec![("TEST_ENTRA_SECRET", e.config.client_secret.clone())],
        side: "source",
        listing: "/users".into(),
        page_of: by_rank,
        set_faults: Box::new(move |f| a.set_faults(f)),
        fired: Box::new(move || b.page_faults_fired()),
    }
}

async fn google_rig() -> Rig {
    let g = Arc::new(
        FakeGoogle::start(FakeGoogleConfig {
            page_cap: 2,
            ..FakeGoogleConfig::default()
        })
        .await,
    );
    for p in PEOPLE {
        g.add_user(p);
    }
    g.add_group("Everyone Here", "all@example.com", &PEOPLE);
    let scratch = Scratch::new();
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": g.config.service_account,
        "private_key": std::fs::read_to_string(repo().join("tests/fixtures/test-rsa-key.pem")).unwrap(),
        "token_uri": g.token_url(),
    });
    scratch.write("sa.json", &key.to_string()).write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - {{name: google, type: google, admin_email: {}, service_account_key_file: sa.json, base_url: "{}"}}
target: {{type: file, path: atlassian.yaml}}
"#,
            g.config.admin, g.base_url
        ),
    );
    let (a, b) = (g.clone(), g.clone());
    Rig {
        scratch,
        env: vec![],
        side: "source",
        listing: "/admin/directory/v1/users".into(),
        page_of: by_rank,
        set_faults: Box::new(move |f| a.set_faults(f)),
        fired: Box::new(move || b.page_faults_fired()),
    }
}

async fn keycloak_rig() -> Rig {
    let kc = Arc::new(FakeKeycloak::start(FakeKeycloakConfig::default()).await);
    for p in PEOPLE {
        kc.add_user(p);
    }
    kc.add_group("/Everyone Here", &PEOPLE);
    let scratch = Scratch::new();
    scratch.write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - name: keycloak
    type: keycloak
    base_url: {}
    realm: {}
    client_id: {}
    client_secret: ${{TEST_KC_SECRET}}
    page_size: 2
target: {{type: file, path: atlassian.yaml}}
"#,
            kc.base_url, kc.config.realm, kc.config.client_id
        ),
    );
    let (a, b) = (kc.clone(), kc.clone());
    Rig {
        scratch,
        env: vec![("TEST_KC_SECRET", kc.config.client_secret.clone())],
        side: "source",
        listing: format!("/admin/realms/{}/users", kc.config.realm),
        page_of: |p, _| by_offset(p, 0, "first"),
        set_faults: Box::new(move |f| a.set_faults(f)),
        fired: Box::new(move || b.page_faults_fired()),
    }
}

/// The page a OneLogin v2 request asks for: `page`, or the page inside its `cursor` (base64 of
/// `limit=…&page=…`), else the first.
fn onelogin_page(p: &Params, _: usize) -> usize {
    if let Some(n) = p.get("page").and_then(|v| v.parse().ok()) {
        return n;
    }
    p.get("cursor")
        .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|text| {
            text.split('&')
                .find_map(|kv| kv.strip_prefix("page="))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1)
}

async fn onelogin_rig() -> Rig {
    let ol = Arc::new(
        FakeOneLogin::start(FakeOneLoginConfig {
            users_page_max: 2,
            ..FakeOneLoginConfig::default()
        })
        .await,
    );
    for p in PEOPLE {
        ol.add_user(p);
    }
    ol.add_group("Everyone Here", &PEOPLE);
    let scratch = Scratch::new();
    scratch.write(
        "idsync.yaml",
        &format!(
            r#"version: 1
sources:
  - {{name: onelogin, type: onelogin, base_url: "{}", client_id: {}, client_secret: "${{TEST_OL_SECRET}}"}}
target: {{type: file, path: atlassian.yaml}}
"#,
            ol.base_url, ol.config.client_id
        ),
    );
    let (a, b) = (ol.clone(), ol.clone());
    Rig {
        scratch,
        env: vec![("TEST_OL_SECRET", ol.config.client_secret.clone())],
        side: "source",
        listing: "/api/2/users".into(),
        page_of: onelogin_page,
        set_faults: Box::new(move |f| a.set_faults(f)),
        fired: Box::new(move || b.page_faults_fired()),
    }
}

/// A next link to another origin than the configured base is refused, not followed with the
/// credentials: the sources are configured as `localhost`, while the fakes write their links for
/// `127.0.0.1` (as a server behind a proxy might).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_to_another_origin_is_refused() {
    for rig in [okta_rig().await, entra_rig(false).await] {
        let config = rig.scratch.read("idsync.yaml");
        rig.scratch
            .write("idsync.yaml", &config.replace("127.0.0.1", "localhost"));
        let (code, stderr) = rig.snapshot().await;
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("refused to follow a next link to http://127.0.0.1:")
                && stderr.contains("another origin than the configured base http://localhost:"),
            "{stderr}"
        );
        assert!(rig.written().is_none());
    }
}

/// The issue's case: a target whose `/Groups` listing comes back empty on a middle page. Without
/// the fault the groups exist and nothing is created; with it, `apply` fails naming the page and
/// changes nothing (it used to re-create every group it had not seen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_target_page_creates_no_group() {
    let rig = target_rig("/Groups").await;
    let mut idp = String::from("users:\n");
    for p in PEOPLE {
        idp.push_str(&format!("  - {{email: {p}}}\n"));
    }
    idp.push_str("groups:\n");
    for (i, p) in PEOPLE.iter().enumerate() {
        idp.push_str(&format!("  - {{name: group-{i}, members: [{p}]}}\n"));
    }
    let config = rig.scratch.read("idsync.yaml");
    rig.scratch.write("idp.yaml", &idp).write(
        "idsync.yaml",
        &format!("{config}groups:\n  mappings: [{{from_regex: \"^idp:(.+)$\", to: \"$1\"}}]\n"),
    );
    let run = |args: &'static [&'static str]| {
        let mut cmd = rig.scratch.idsync(args);
        for (k, v) in &rig.env {
            cmd.env(k, v);
        }
        cmd.env("IDSYNC_RETRY_DELAY_SCALE", "0.001");
        run_beside_fakes(cmd)
    };
    let (code, plan, stderr) = run(&["plan"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!plan.contains("create_group"), "{plan}");

    (rig.set_faults)(rig.faults(&ROWS[1]));
    let (code, stdout, stderr) = run(&["apply", "--auto-approve"]).await;
    (rig.set_faults)(Faults::default());
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("startIndex=3")
            && stderr.contains("came back empty 3 times, but totalResults announced 5"),
        "{stderr}"
    );
    assert!(!stdout.contains("create_group"), "{stdout}");
}

/// A SCIM source whose `/Users` listing comes back empty on a middle page deactivates nobody: the
/// plan fails and the file target is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_source_page_deactivates_nobody() {
    let rig = scim_source_rig().await;
    let mut target = String::from("users:\n");
    for (i, p) in PEOPLE.iter().enumerate() {
        target.push_str(&format!("  - {{id: t{i}, email: {p}}}\n"));
    }
    target.push_str("groups: []\n");
    rig.scratch.write("atlassian.yaml", &target);
    let config = rig.scratch.read("idsync.yaml");
    rig.scratch.write(
        "idsync.yaml",
        &format!("{config}cleanup: {{max_deactivations: 100%}}\n"),
    );
    (rig.set_faults)(rig.faults(&ROWS[1]));
    let mut cmd = rig.scratch.idsync(&["apply", "--auto-approve"]);
    for (k, v) in &rig.env {
        cmd.env(k, v);
    }
    cmd.env("IDSYNC_RETRY_DELAY_SCALE", "0.001");
    let (code, stdout, stderr) = run_beside_fakes(cmd).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(!stdout.contains("deactivate_user"), "{stdout}");
    assert_eq!(rig.scratch.read("atlassian.yaml"), target);
}
