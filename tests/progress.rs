//! Progress while working: plain lines on stderr without a terminal (pages and objects read, actions
//! done of all), waits the server asks for said, nothing with `--quiet`, no escape codes without
//! colour, and stdout exactly the plan throughout.

use std::time::Duration;

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use crate::fakes::Faults;
use crate::support::Scratch;

const OKTA_TOKEN: &str = "progress-okta-token-4Hq8Zt";
const SCIM_TOKEN: &str = "progress-scim-token-7Lm2Wx";
const ORG_TOKEN: &str = "progress-org-token-9Kd5Rv";

/// Okta with 12 users (in pages of 5) and a group of 4; Atlassian with one user and the mapped group.
async fn fakes(latency: Duration) -> (FakeOkta, FakeAtlassian) {
    let okta = FakeOkta::start(FakeOktaConfig {
        api_token: OKTA_TOKEN.into(),
        user_page_cap: 5,
        latency,
        ..FakeOktaConfig::default()
    })
    .await;
    let atl = FakeAtlassian::start(FakeConfig {
        scim_token: SCIM_TOKEN.into(),
        org_token: ORG_TOKEN.into(),
        latency,
        ..FakeConfig::default()
    })
    .await;
    let emails: Vec<String> = (0..12).map(|i| format!("u{i:02}@example.com")).collect();
    for e in &emails {
        okta.add_user(OktaSeedUser::new(e));
    }
    let members: Vec<&str> = emails[..4].iter().map(String::as_str).collect();
    okta.add_group("Engineering", "OKTA_GROUP", &members);
    atl.add_user(SeedUser::new("u00@example.com"));
    atl.add_group("engineering", &["u00@example.com"]);
    (okta, atl)
}

fn config(okta: &FakeOkta, atl: &FakeAtlassian) -> String {
    format!(
        r#"version: 1
sources:
  - name: okta
    type: okta
    base_url: {okta}
    token: ${{TEST_OKTA_TOKEN}}
target:
  type: atlassian
  scim: {{base_url: "{scim}", token: "${{TEST_SCIM_TOKEN}}"}}
  admin: {{org_id: "{org}", token: "${{TEST_ORG_TOKEN}}", base_url: "{admin}"}}
groups:
  mappings: [{{from: "okta:Engineering", to: engineering}}]
"#,
        okta = okta.base_url,
        scim = atl.scim_base(),
        org = atl.org_id(),
        admin = atl.base_url,
    )
}

/// Runs idsync with the fakes' credentials; `env` adds to (or, with `None`, removes from) its
/// environment. Returns (exit code, stdout, stderr).
async fn run(s: &Scratch, args: &[&str], env: &[(&str, Option<&str>)]) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_OKTA_TOKEN", OKTA_TOKEN)
        .env("TEST_SCIM_TOKEN", SCIM_TOKEN)
        .env("TEST_ORG_TOKEN", ORG_TOKEN)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.001")
        .env_remove("IDSYNC_PROGRESS_INTERVAL_MS");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let (code, out, err) = crate::support::run_beside_fakes(cmd).await;
    for t in [OKTA_TOKEN, SCIM_TOKEN, ORG_TOKEN] {
        assert!(
            !out.contains(t) && !err.contains(t),
            "a credential was printed:\n{err}"
        );
    }
    (code, out, err)
}

/// The `finished` line of a phase: "LABEL: finished, N page(s), M object(s) in T s".
fn finished_counts(err: &str, label: &str) -> (u64, u64) {
    let prefix = format!("{label}: finished, ");
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{err}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .take(2)
        .map(|w| w.parse().unwrap())
        .collect();
    (n[0], n[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_a_plan_prints_plain_progress_lines_and_a_clean_stdout() {
    let (okta, atl) = fakes(Duration::from_millis(40)).await;
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl));
    let interval = [("IDSYNC_PROGRESS_INTERVAL_MS", Some("5"))];

    let (code, out, err) = run(&s, &["plan", "--format", "json"], &interval).await;
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("stdout is only the plan");
    assert!(plan["actions"].as_array().is_some_and(|a| !a.is_empty()));
    // Lines while reading, each source and the target by name, with what was read so far.
    assert!(
        err.lines().any(|l| l.starts_with("reading source okta: ")
            && l.contains(" page(s), ")
            && l.contains(" object(s) so far (")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("reading target ") && l.contains(" object(s) so far (")),
        "{err}"
    );
    // The end of a reported phase is said with its counts: Okta's 12 users came in 3 pages of
    // at most 5, the group in one, its 4 members in one.
    assert_eq!(
        finished_counts(&err, "reading source okta"),
        (3 + 1 + 1, 12 + 1 + 4),
        "{err}"
    );
    assert!(
        !err.contains('\u{1b}'),
        "escape codes without colour:\n{err}"
    );

    // --quiet: no progress at all, and the same plan.
    let (code, quiet_out, quiet_err) =
        run(&s, &["plan", "--format", "json", "-q"], &interval).await;
    assert_eq!(code, 0, "{quiet_err}");
    assert_eq!(quiet_out, out);
    assert!(
        !quiet_err.contains("so far") && !quiet_err.contains("finished"),
        "{quiet_err}"
    );

    // Without the interval set, a run shorter than 10 s says nothing of its progress.
    let (code, _, err) = run(&s, &["plan", "--format", "json"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains("so far") && !err.contains("finished"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_prints_done_of_total_lines() {
    let (okta, atl) = fakes(Duration::from_millis(30)).await;
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl));

    let (code, out, err) = run(
        &s,
        &["apply", "--auto-approve"],
        &[
            ("IDSYNC_PROGRESS_INTERVAL_MS", Some("5")),
            ("NO_COLOR", None),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Plan:"), "stdout is the plan:\n{out}");
    let total = err
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("applying to ")?;
            let (_, counts) = rest.split_once(": ")?;
            let (done, rest) = counts.split_once('/')?;
            let (total, rest) = rest.split_once(' ')?;
            (rest.starts_with("action(s) done") && rest.contains("/s"))
                .then(|| (done.parse::<u64>().unwrap(), total.parse::<u64>().unwrap()))
        })
        .unwrap_or_else(|| panic!("no apply progress line:\n{err}"))
        .1;
    assert!(
        err.lines().any(|l| l.starts_with("applying to ")
            && l.contains(&format!(": finished, {total}/{total} action(s) done"))),
        "{err}"
    );
    assert!(err.contains("Apply complete"), "{err}");
    // Not a terminal: plain lines, no escape codes (with colour left to decide: auto).
    assert!(!err.contains('\u{1b}'), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_wait_asked_by_the_server_is_said_and_short_ones_only_with_verbose() {
    let (okta, atl) = fakes(Duration::ZERO).await;
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl));
    let throttle = |secs| Faults {
        throttle_next: 1,
        retry_after_secs: secs,
        ..Faults::default()
    };

    // Retry-After: 7 is said, stating what the server asked for (the test waits a fraction).
    okta.set_faults(throttle(7));
    let (code, out, err) = run(&s, &["plan", "--format", "json", "--color", "never"], &[]).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out).expect("stdout is only the plan");
    let line = err
        .lines()
        .find(|l| l.starts_with("Okta: GET ") && l.contains("throttled (HTTP 429); waiting 7."))
        .unwrap_or_else(|| panic!("no wait line:\n{err}"));
    assert!(
        line.ends_with(" s (Retry-After) before attempt 2 of 6"),
        "{line}"
    );

    // --quiet says nothing of it.
    okta.set_faults(throttle(7));
    let (code, _, err) = run(&s, &["plan", "--format", "json", "-q"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("waiting"), "{err}");

    // A response saying the rate budget is spent pauses the requests until the reset: said too.
    okta.set_faults(Faults {
        spent_budget_reset: Some("6".into()),
        ..Faults::default()
    });
    let (code, _, err) = run(&s, &["plan", "--format", "json"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.lines().any(|l| l
            == "Okta: the rate limit's budget is spent; waiting 6.0 s for it to reset (rate-limit reset) before sending more requests"),
        "{err}"
    );
    okta.set_faults(Faults::default());

    // A wait of a second goes unsaid, except with -v.
    okta.set_faults(throttle(1));
    let (code, _, err) = run(&s, &["plan", "--format", "json"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("waiting"), "{err}");
    okta.set_faults(throttle(1));
    let (code, _, err) = run(&s, &["plan", "--format", "json", "-v"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("Okta: GET ")
            && l.contains("throttled (HTTP 429); waiting 1.")
            && l.contains("(Retry-After) before attempt 2 of 6")),
        "{err}"
    );
}

/// Ctrl-C during an apply that prints progress lines: the interrupt's message stands on a line of
/// its own, the progress lines stay whole, and the apply's last line says how far it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_and_the_progress_lines_do_not_garble_each_other() {
    let (okta, atl) = fakes(Duration::ZERO).await;
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl));
    let (code, _, err) = run(&s, &["plan", "--out", "plan.json"], &[]).await;
    assert_eq!(code, 0, "{err}");
    // Membership changes are slow, so the interrupt lands while they are in flight.
    atl.set_faults(Faults {
        slow: Some(("/Groups/".into(), Duration::from_millis(1500))),
        ..Faults::default()
    });
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("idsync"));
    cmd.current_dir(s.dir.path())
        .args(["apply", "plan.json", "--auto-approve"])
        .env("TEST_OKTA_TOKEN", OKTA_TOKEN)
        .env("TEST_SCIM_TOKEN", SCIM_TOKEN)
        .env("TEST_ORG_TOKEN", ORG_TOKEN)
        .env("IDSYNC_NOW", crate::support::NOW)
        .env("NO_COLOR", "1")
        .env("IDSYNC_PROGRESS_INTERVAL_MS", "5")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !atl
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.path.contains("/Groups/"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never reached the memberships"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: interrupted: starting no new actions")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: apply interrupted:")),
        "{err}"
    );
    // Every line is one thing: a progress line, a warning, the error and its hint.
    let progress_lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("applying to "))
        .collect();
    assert!(!progress_lines.is_empty(), "{err}");
    for l in err.lines() {
        assert!(
            [
                "applying to ",
                "reading ",
                "warning: ",
                "error: ",
                "  hint: ",
                "plan.json: "
            ]
            .iter()
            .any(|p| l.starts_with(p)),
            "a garbled line: {l:?}\n{err}"
        );
        if l.starts_with("warning: interrupted") {
            assert!(l.ends_with("(interrupt again to stop at once)"), "{l:?}");
        }
    }
    for l in &progress_lines {
        assert!(
            l.contains("action(s) done") && l.matches("applying").count() == 1,
            "{l:?}\n{err}"
        );
    }
    // The last says where the apply stopped, and why.
    let last = progress_lines.last().unwrap();
    assert!(
        last.contains(": finished, ")
            && last.contains("/13 action(s) done; interrupted: starting no new actions in "),
        "{err}"
    );
}
