//! Secrets never leave the process, and nothing a server says makes idsync panic.

use std::path::Path;

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::okta::{FakeOkta, FakeOktaConfig, OktaSeedUser};
use crate::fakes::Faults;
use crate::support::Scratch;

/// Distinctive credentials, planted in the environment, in a token file and in a URL.
const OKTA_TOKEN: &str = "PLANTEDokta7Qv2Lx9Zr4Tw8Ye1Ua";
const SCIM_TOKEN: &str = "PLANTEDscim3Hn6Kp0Ms5Jd2Gf7Bc";
const ORG_TOKEN: &str = "PLANTEDorg8Wd4Rt1Yx6Vq3Nz9Lk";
const FILE_TOKEN: &str = "PLANTEDfile2Cs7Mv5Pb8Hq4Tr0Ge";
const URL_PASSWORD: &str = "PLANTEDpass5Xk9Fj3Ln7Dw1Rs6Ao";
const PLANTED: &[&str] = &[OKTA_TOKEN, SCIM_TOKEN, ORG_TOKEN, FILE_TOKEN, URL_PASSWORD];

fn seed(okta: &FakeOkta, atl: &FakeAtlassian) {
    for e in ["ana@example.com", "ben@example.com", "cy@example.com"] {
        okta.add_user(OktaSeedUser::new(e));
    }
    okta.add_group(
        "Engineering",
        "OKTA_GROUP",
        &["ana@example.com", "ben@example.com"],
    );
    atl.add_user(SeedUser::new("old@example.com"));
    atl.add_group("engineering", &["old@example.com"]);
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
  http: {{max_attempts: 2}}
groups:
  mappings: [{{from: "okta:Engineering", to: engineering}}]
cleanup: {{max_deactivations: 100%}}
"#,
        okta = okta.base_url,
        scim = atl.scim_base(),
        org = atl.org_id(),
        admin = atl.base_url,
    )
}

/// Every stream and file a run produced, to be scanned.
#[derive(Default)]
struct Scan {
    texts: Vec<(String, String)>,
}

impl Scan {
    async fn run(&mut self, s: &Scratch, args: &[&str]) -> (i32, String, String) {
        let mut cmd = s.idsync(args);
        cmd.env("TEST_OKTA_TOKEN", OKTA_TOKEN)
            .env("TEST_SCIM_TOKEN", SCIM_TOKEN)
            .env("TEST_ORG_TOKEN", ORG_TOKEN)
            .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
        let (code, out, err) = crate::support::run_beside_fakes(cmd).await;
        let what = args.join(" ");
        self.texts.push((format!("stdout of {what}"), out.clone()));
        self.texts.push((format!("stderr of {what}"), err.clone()));
        (code, out, err)
    }

    /// Adds every file under `dir`.
    fn files(&mut self, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                self.files(&path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                self.texts.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }

    /// No planted secret appears, whole or as any 10 characters of it (a cut-off quote).
    fn assert_clean(&self, except: &[(&str, &str)]) {
        for (name, text) in &self.texts {
            for secret in PLANTED {
                let chars: Vec<char> = secret.chars().collect();
                for w in chars.windows(10) {
                    let piece: String = w.iter().collect();
                    let allowed = except
                        .iter()
                        .any(|(file, s)| name.ends_with(file) && s == secret);
                    assert!(
                        allowed || !text.contains(&piece),
                        "{piece:?} (of a planted secret) leaked into {name}:\n{text}"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_appears_in_any_stream_or_file() {
    let okta = FakeOkta::start(FakeOktaConfig {
        api_token: OKTA_TOKEN.into(),
        ..FakeOktaConfig::default()
    })
    .await;
    let atl = FakeAtlassian::start(FakeConfig {
        scim_token: SCIM_TOKEN.into(),
        org_token: ORG_TOKEN.into(),
        ..FakeConfig::default()
    })
    .await;
    seed(&okta, &atl);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl));
    let mut scan = Scan::default();

    // The ordinary cycle, verbosely, in every format and with every file written.
    let (code, _, err) = scan.run(&s, &["validate", "-v"]).await;
    assert_eq!(code, 0, "{err}");
    for format in ["text", "markdown", "json"] {
        let (code, _, err) = scan
            .run(
                &s,
                &["plan", "-v", "--format", format, "--out", "plan.json"],
            )
            .await;
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, err) = scan
        .run(
            &s,
            &["snapshot", "-v", "--side", "target", "--out", "target.json"],
        )
        .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = scan.run(&s, &["snapshot", "--side", "source"]).await;
    assert_eq!(code, 0, "{err}");

    // Hostile error bodies: the fakes quote the Authorization header back.
    // A source read answered in plain text, the token straddling the 200th character.
    okta.set_faults(Faults {
        echo_auth_next: 1,
        echo_auth_plain: true,
        ..Faults::default()
    });
    let (code, _, err) = scan.run(&s, &["plan", "-v"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bad request; you sent Authorization: SSWS"),
        "{err}"
    );
    // A target read answered in SCIM's error shape.
    atl.set_faults(Faults {
        echo_auth_next: 1,
        ..Faults::default()
    });
    let (code, _, err) = scan.run(&s, &["snapshot", "--side", "target"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Authorization: Bearer [redacted]"), "{err}");
    // Writes during apply, with a run report.
    atl.set_faults(Faults {
        echo_auth_next: 100,
        echo_auth_mutations_only: true,
        ..Faults::default()
    });
    let (code, _, err) = scan
        .run(
            &s,
            &[
                "apply",
                "plan.json",
                "--auto-approve",
                "-v",
                "--report",
                "report.json",
            ],
        )
        .await;
    assert_eq!(code, 1, "{err}");
    let report = s.read("report.json");
    assert!(
        report.contains("Authorization: Bearer [redacted]"),
        "the report quotes the hostile body, redacted:\n{report}"
    );
    atl.set_faults(Faults::default());

    // A config error after ${VAR} expansion: a connector without `type:`.
    s.write(
        "no-type.yaml",
        &config(&okta, &atl).replace("    type: okta\n", ""),
    );
    let (code, _, err) = scan.run(&s, &["validate", "-c", "no-type.yaml"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("missing `type`; one of file, okta, entra"),
        "{err}"
    );
    // A wrong-typed credential: the schema error names the key, not the value.
    s.write(
        "bad-http.yaml",
        &config(&okta, &atl).replace("max_attempts: 2", "max_attempts: ${TEST_OKTA_TOKEN}"),
    );
    let (code, _, err) = scan.run(&s, &["plan", "-c", "bad-http.yaml"]).await;
    assert_eq!(code, 1, "{err}");
    // Credentials inside a URL are refused.
    let in_url = atl
        .scim_base()
        .replace("http://", &format!("http://idsync:{URL_PASSWORD}@"));
    s.write(
        "url.yaml",
        &config(&okta, &atl).replace(&atl.scim_base(), &in_url),
    );
    let (code, _, err) = scan.run(&s, &["plan", "-v", "-c", "url.yaml"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("target.scim.base_url: the URL holds credentials"),
        "{err}"
    );
    // A token file others may read is warned about, and its content never shown.
    s.write("scim.token", &format!("{FILE_TOKEN}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(s.path("scim.token"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }
    s.write(
        "file.yaml",
        &config(&okta, &atl).replace("token: \"${TEST_SCIM_TOKEN}\"", "token_file: scim.token"),
    );
    atl.state().config.scim_token = FILE_TOKEN.into();
    atl.set_faults(Faults {
        echo_auth_next: 1,
        ..Faults::default()
    });
    let (code, _, err) = scan.run(&s, &["plan", "-v", "-c", "file.yaml"]).await;
    assert_eq!(code, 1, "{err}");
    #[cfg(unix)]
    assert!(
        err.contains(
            "target.scim.token_file: [DIR]/scim.token can be read by every user (mode 644)"
        ) || err.contains("scim.token can be read by every user (mode 644)"),
        "{err}"
    );
    assert!(err.contains("Authorization: Bearer [redacted]"), "{err}");

    scan.files(s.dir.path());
    assert!(scan.texts.len() > 30, "every run and file is scanned");
    // The files the secrets were planted in are the only place they may be.
    scan.assert_clean(&[("scim.token", FILE_TOKEN), ("url.yaml", URL_PASSWORD)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_waits_from_a_server_are_errors_not_panics() {
    let okta = FakeOkta::start(FakeOktaConfig {
        api_token: OKTA_TOKEN.into(),
        ..FakeOktaConfig::default()
    })
    .await;
    let atl = FakeAtlassian::start(FakeConfig {
        scim_token: SCIM_TOKEN.into(),
        org_token: ORG_TOKEN.into(),
        ..FakeConfig::default()
    })
    .await;
    seed(&okta, &atl);
    let s = Scratch::new();
    s.write("idsync.yaml", &config(&okta, &atl));
    let mut scan = Scan::default();

    // A 200 saying the budget is spent until the end of time: no panic, the plan goes on.
    for reset in ["1e30", "99999999999999999999", "-1", "soon"] {
        okta.set_faults(Faults {
            spent_budget_reset: Some(reset.into()),
            ..Faults::default()
        });
        let (code, _, err) = scan.run(&s, &["plan"]).await;
        assert_eq!(code, 0, "X-Rate-Limit-Reset: {reset}: {err}");
    }
    // A 429 asking for 1e30 seconds: exit 1, saying what the server asked for.
    okta.set_faults(Faults {
        throttle_next: 1,
        throttle_headers_raw: Some("1e30".into()),
        ..Faults::default()
    });
    let (code, _, err) = scan.run(&s, &["plan"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("answered HTTP 429; the server asked to wait 1.0e30 s before trying again, longer than the 300 s idsync waits (http.max_wait_secs)"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    // A wait within `http.max_wait_secs` is waited for (scaled down in tests).
    okta.set_faults(Faults {
        throttle_next: 1,
        throttle_headers_raw: Some("2".into()),
        ..Faults::default()
    });
    let (code, _, err) = scan.run(&s, &["plan"]).await;
    assert_eq!(code, 0, "{err}");
    // A lower maximum turns that wait into an error too.
    s.write(
        "idsync.yaml",
        &config(&okta, &atl).replace(
            "    token: ${TEST_OKTA_TOKEN}\n",
            "    token: ${TEST_OKTA_TOKEN}\n    http: {max_wait_secs: 1}\n",
        ),
    );
    okta.set_faults(Faults {
        throttle_next: 1,
        throttle_headers_raw: Some("2".into()),
        ..Faults::default()
    });
    let (code, _, err) = scan.run(&s, &["plan"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("asked to wait 2 s before trying again, longer than the 1 s"),
        "{err}"
    );
    scan.assert_clean(&[]);
}

// The rest of the bad-input corpus: each is an error naming the culprit with nothing changed, or
// (where it is harmless) accepted.

/// Every file in the scratch folder, to check that nothing changed.
fn contents(s: &Scratch) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_byte_order_mark_before_the_first_key_is_ignored() {
    let plain = Scratch::quickstart();
    let (_, expected, _) = crate::support::run(&plain, &mut plain.idsync(&["plan"]));
    let s = Scratch::quickstart();
    for f in ["idsync.yaml", "idp.yaml"] {
        let text = s.read(f);
        s.write(f, &format!("\u{feff}{text}"));
    }
    let (code, _, err) = crate::support::run(&s, &mut s.idsync(&["validate"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("idsync.yaml starts with a UTF-8 byte-order mark"),
        "the mark is named: {err}"
    );
    let (code, out, err) = crate::support::run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, expected, "the same plan as without the mark");
    // A JSON snapshot with a mark too.
    let (code, _, err) = crate::support::run(
        &s,
        &mut s.idsync(&["snapshot", "--side", "source", "--out", "idp.json"]),
    );
    assert_eq!(code, 0, "{err}");
    let json = s.read("idp.json");
    s.write("idp.json", &format!("\u{feff}{json}"));
    let config = s
        .read("idsync.yaml")
        .replace("path: idp.yaml", "path: idp.json");
    s.write("idsync.yaml", &config);
    let (code, out, err) = crate::support::run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, expected);
}

#[cfg(unix)]
#[test]
fn a_symlinked_file_target_is_written_through_the_link() {
    let s = Scratch::quickstart();
    std::fs::create_dir(s.path("real")).unwrap();
    std::fs::rename(s.path("atlassian.yaml"), s.path("real/atlassian.yaml")).unwrap();
    std::os::unix::fs::symlink("real/atlassian.yaml", s.path("atlassian.yaml")).unwrap();
    let before = s.read("real/atlassian.yaml");
    let (code, _, err) = crate::support::run(&s, &mut s.idsync(&["apply", "--auto-approve", "-q"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        s.path("atlassian.yaml").is_symlink(),
        "the link is kept, not replaced by a file"
    );
    assert_ne!(
        s.read("real/atlassian.yaml"),
        before,
        "the linked file was written"
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.path("real"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    let (code, out, err) = crate::support::run(&s, &mut s.idsync(&["plan", "--detailed-exitcode"]));
    assert_eq!(code, 0, "converged through the link: {out}{err}");
    // A link that leads nowhere is refused, naming it, with nothing written.
    std::fs::remove_file(s.path("real/atlassian.yaml")).unwrap();
    std::fs::write(s.path("elsewhere.yaml"), before).unwrap();
    let config = s
        .read("idsync.yaml")
        .replace("path: atlassian.yaml", "path: dangling.yaml");
    s.write("idsync.yaml", &config);
    std::os::unix::fs::symlink("real/nothing.yaml", s.path("dangling.yaml")).unwrap();
    let (code, _, err) = crate::support::run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 1);
    assert!(err.contains("dangling.yaml"), "{err}");
}

#[test]
fn a_report_or_plan_into_a_missing_folder_is_refused_before_anything_changes() {
    let s = Scratch::quickstart();
    let before = contents(&s);
    let (code, _, err) = crate::support::run(
        &s,
        &mut s.idsync(&["apply", "--auto-approve", "--report", "missing/report.json"]),
    );
    assert_eq!(code, 1);
    assert_eq!(
        err.lines().next().unwrap(),
        "error: --report missing/report.json: the folder missing does not exist; nothing was changed"
    );
    assert_eq!(contents(&s), before, "the target was not applied to");
    let (code, _, err) =
        crate::support::run(&s, &mut s.idsync(&["plan", "--out", "nowhere/plan.json"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("--out nowhere/plan.json: the folder nowhere does not exist"),
        "{err}"
    );
    assert_eq!(contents(&s), before);
}

#[test]
fn an_invalid_idsync_now_is_an_error() {
    let s = Scratch::quickstart();
    let before = contents(&s);
    for args in [&["plan"][..], &["apply", "--auto-approve"][..]] {
        let (code, _, err) = crate::support::run(&s, s.idsync(args).env("IDSYNC_NOW", "yesterday"));
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.starts_with(
                "error: IDSYNC_NOW is not usable: \"yesterday\" is not an RFC 3339 moment"
            ),
            "{err}"
        );
        assert!(
            err.contains("hint: e.g. IDSYNC_NOW=2026-10-01T12:00:00Z"),
            "{err}"
        );
    }
    assert_eq!(contents(&s), before);
}

#[test]
fn target_group_members_that_match_no_user_are_warned_about() {
    let s = Scratch::quickstart();
    let target = s
        .read("atlassian.yaml")
        .replace("members: [alice@example.com, bob@example.com, jack@example.com, kim@example.com, mia@example.com]",
                 "members: [alice@example.com, bob@example.com, jack@example.com, kim@example.com, mia@example.com, ghost@example.com]");
    s.write("atlassian.yaml", &target);
    let (code, out, err) = crate::support::run(&s, &mut s.idsync(&["plan"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("target file:atlassian.yaml: 1 group member(s) are not among its users, e.g. \"ghost@example.com\" in \"engineering\"; left alone")
            || out.contains("1 group member(s) are not among its users, e.g. \"ghost@example.com\" in \"engineering\"; left alone"),
        "{out}"
    );
}

#[test]
fn capture_groups_in_to_and_environment_variables_do_not_collide() {
    let s = Scratch::quickstart();
    let base = s.read("idsync.yaml");
    // `${1}` and `$${name}` are capture references; `${PREFIX}` is the environment.
    s.write(
        "idsync.yaml",
        &base.replace(
            "    - from_regex: \"^okta:atl-(.+)$\"   # okta:atl-confluence-editors -> confluence-editors\n      to: \"$1\"",
            "    - from_regex: \"^okta:atl-(?P<team>.+)-(.+)$\"\n      to: \"${PREFIX}-$${team}-${2}\"",
        ),
    );
    let (code, out, err) = crate::support::run(&s, s.idsync(&["plan"]).env("PREFIX", "x"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("x-confluence-editors"), "{out}");
    // `${team}` where `team` is a capture group is refused, saying how to write it.
    s.write(
        "idsync.yaml",
        &base.replace(
            "    - from_regex: \"^okta:atl-(.+)$\"   # okta:atl-confluence-editors -> confluence-editors\n      to: \"$1\"",
            "    - from_regex: \"^okta:atl-(?P<team>.+)$\"\n      to: \"${team}\"",
        ),
    );
    let (code, _, err) = crate::support::run(&s, s.idsync(&["validate"]).env("team", "oops"));
    assert_eq!(code, 1);
    assert!(
        err.contains("groups.mappings[1].to: `${team}` would be read as the environment variable team, but it names a capture group of `from_regex`"),
        "{err}"
    );
    assert!(
        err.contains("write the capture group as `$team` or `$${team}`"),
        "{err}"
    );
}
