//! The write side of the fault matrix: every kind of fault a write can meet, against every kind of
//! write the SCIM target makes, with the real client against the fake Atlassian. Whatever the
//! fault, the write happens exactly once: no duplicate user or group, the intended state reached.
//!
//! The fake runs with `allow_duplicate_group_names` (as many SCIM servers do), so a group create
//! sent twice makes two groups instead of meeting a 409: a blind retry would show.

use std::time::Duration;

use idsync::config::secret::Secret;
use idsync::http::{Auth, HttpSettings};
use idsync::plan::{Action, FieldChange, Member, UserFields};
use idsync::targets::{ScimDirectory, ScimTarget, Target};

use crate::fakes::atlassian::{FakeAtlassian, FakeConfig, SeedUser};
use crate::fakes::Faults;
use crate::support::Scratch;

/// The faults, each firing once, on the first write the operation sends.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The change is applied, the answer is a 500.
    ErrorAfterApplying,
    /// The change is applied, the connection is closed without an answer.
    ResetAfterApplying,
    /// The change is applied, the answer is a 2xx whose body is cut in half.
    CutBodyAfterApplying,
    /// The change is applied, the answer comes after the client gave up (a timeout).
    TimeoutAfterApplying,
    /// The connection is closed before the change is made.
    ResetBeforeApplying,
    /// A 503 before the change is made.
    UnavailableBeforeApplying,
    /// A 429 before the change is made.
    Throttled,
}

const FAULTS: [Fault; 7] = [
    Fault::ErrorAfterApplying,
    Fault::ResetAfterApplying,
    Fault::CutBodyAfterApplying,
    Fault::TimeoutAfterApplying,
    Fault::ResetBeforeApplying,
    Fault::UnavailableBeforeApplying,
    Fault::Throttled,
];

impl Fault {
    fn faults(self) -> Faults {
        let mut f = Faults {
            retry_after_secs: 0,
            stall_for: Duration::from_secs(4),
            ..Faults::default()
        };
        match self {
            Fault::ErrorAfterApplying => f.fail_after_mutation = 1,
            Fault::ResetAfterApplying => f.reset_after_mutation = 1,
            Fault::CutBodyAfterApplying => f.truncate_after_mutation = 1,
            Fault::TimeoutAfterApplying => f.stall_after_mutation = 1,
            Fault::ResetBeforeApplying => f.reset_next = 1,
            Fault::UnavailableBeforeApplying => {
                f.fail_path_contains = Some(("/scim/".into(), 1));
            }
            Fault::Throttled => f.throttle_next = 1,
        }
        f
    }
}

/// The writes the SCIM target makes.
#[derive(Clone, Copy, Debug)]
enum Write {
    CreateUser,
    CreateGroup,
    PatchUser,
    AddMembers,
    RemoveMembers,
}

const WRITES: [Write; 5] = [
    Write::CreateUser,
    Write::CreateGroup,
    Write::PatchUser,
    Write::AddMembers,
    Write::RemoveMembers,
];

fn directory(fake: &FakeAtlassian) -> ScimTarget {
    ScimTarget::new(ScimDirectory::new(
        "Atlassian SCIM",
        &fake.scim_base(),
        Auth::Bearer(Secret::new(fake.config.scim_token.clone())),
        100,
        &HttpSettings {
            timeout_secs: 1,
            max_attempts: 4,
            max_concurrency: 1,
            ..HttpSettings::default()
        },
    ))
}

fn new_user() -> UserFields {
    UserFields {
        email: "nia@example.com".into(),
        user_name: Some("nia@example.com".into()),
        external_id: Some("00u9".into()),
        given_name: Some("Nia".into()),
        family_name: Some("Long".into()),
        display_name: Some("Nia Long".into()),
        ..UserFields::default()
    }
}

/// One cell: a fresh fake, the write under the fault, then what the fake holds.
async fn cell(fault: Fault, write: Write) -> Result<(), String> {
    let fake = FakeAtlassian::start(FakeConfig {
        allow_duplicate_group_names: true,
        ..FakeConfig::default()
    })
    .await;
    let ana = fake.add_user(SeedUser::new("ana@example.com"));
    let ben = fake.add_user(SeedUser::new("ben@example.com"));
    let team = fake.add_group("team", &["ana@example.com"]);
    let mut target = directory(&fake);
    target.snapshot().await.map_err(|e| e.to_string())?;
    let member = |key: &str, id: &str| Member {
        key: key.into(),
        id: Some(id.into()),
        reason: "test".into(),
        reason_code: idsync::plan::ReasonCode::Unknown,
    };
    let action = match write {
        Write::CreateUser => Action::CreateUser {
            key: "nia@example.com".into(),
            user: new_user(),
            reason: "test".into(),
            reason_code: idsync::plan::ReasonCode::Unknown,
        },
        Write::CreateGroup => Action::CreateGroup {
            group: "design".into(),
            reason: "test".into(),
            reason_code: idsync::plan::ReasonCode::Unknown,
        },
        Write::PatchUser => Action::UpdateUser {
            key: "ana@example.com".into(),
            id: ana.clone(),
            changes: vec![FieldChange {
                field: "title".into(),
                from: None,
                to: "Engineer".into(),
                reason: "test".into(),
                reason_code: idsync::plan::ReasonCode::Unknown,
            }],
            reason: "test".into(),
            reason_code: idsync::plan::ReasonCode::Unknown,
        },
        Write::AddMembers => Action::AddMembers {
            group: "team".into(),
            group_id: Some(team.clone()),
            batch: [1, 1],
            members: vec![member("ben@example.com", &ben)],
            reason: "test".into(),
            reason_code: idsync::plan::ReasonCode::Unknown,
        },
        Write::RemoveMembers => Action::RemoveMembers {
            group: "team".into(),
            group_id: team.clone(),
            batch: [1, 1],
            members: vec![member("ana@example.com", &ana)],
            reason: "test".into(),
            reason_code: idsync::plan::ReasonCode::Unknown,
        },
    };
    fake.set_faults(fault.faults());
    target.apply(&action).await.map_err(|e| e.to_string())?;
    let left = {
        let f = fake.faults();
        f.fail_after_mutation
            + f.reset_after_mutation
            + f.truncate_after_mutation
            + f.stall_after_mutation
            + f.reset_next
            + f.throttle_next
            + f.fail_path_contains.as_ref().map_or(0, |(_, n)| *n)
    };
    if left != 0 {
        return Err("the fault never fired".into());
    }
    let count = |name: &str| {
        fake.groups()
            .iter()
            .filter(|g| g["displayName"] == name)
            .count()
    };
    match write {
        Write::CreateUser => {
            let n = fake
                .users()
                .iter()
                .filter(|u| u["userName"] == "nia@example.com")
                .count();
            if n != 1 {
                return Err(format!("{n} users nia@example.com"));
            }
        }
        Write::CreateGroup => {
            if count("design") != 1 {
                return Err(format!("{} groups named design", count("design")));
            }
        }
        Write::PatchUser => {
            let title = fake.user("ana@example.com").unwrap()["title"].clone();
            if title != "Engineer" {
                return Err(format!("title is {title}"));
            }
        }
        Write::AddMembers => {
            let m = fake.group_members("team");
            if m != ["ana@example.com", "ben@example.com"] {
                return Err(format!("members are {m:?}"));
            }
        }
        Write::RemoveMembers => {
            let m = fake.group_members("team");
            if !m.is_empty() {
                return Err(format!("members are {m:?}"));
            }
        }
    }
    if count("team") != 1 {
        return Err("the group team was duplicated".into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_happens_exactly_once_whatever_the_fault() {
    let cells = FAULTS
        .iter()
        .flat_map(|&f| WRITES.iter().map(move |&w| (f, w)))
        .map(|(f, w)| async move { (f, w, cell(f, w).await) });
    let results = futures_util::future::join_all(cells).await;
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(f, w, r)| r.err().map(|e| format!("{f:?} × {w:?}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A create whose outcome is unknown and whose lookup fails too is an error that says so; it is
/// not sent again blindly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_cannot_be_looked_up_is_not_resent() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    let target = directory(&fake);
    fake.set_faults(Faults {
        fail_path_contains: Some(("/Groups".into(), usize::MAX)),
        retry_after_secs: 0,
        ..Faults::default()
    });
    let err = target
        .apply(&Action::CreateGroup {
            group: "design".into(),
            reason: "test".into(),
            reason_code: idsync::plan::ReasonCode::Unknown,
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("creating group design: no certain answer (HTTP 503"),
        "{err}"
    );
    assert!(err.contains("looking it up"), "{err}");
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        posts, 1,
        "no second POST without knowing the first did nothing"
    );
}

async fn idsync(s: &Scratch, fake: &FakeAtlassian, args: &[&str]) -> (i32, String, String) {
    let mut cmd = s.idsync(args);
    cmd.env("TEST_SCIM_TOKEN", &fake.config.scim_token)
        .env("IDSYNC_RETRY_DELAY_SCALE", "0.01");
    crate::support::run_beside_fakes(cmd).await
}

fn scratch(fake: &FakeAtlassian) -> Scratch {
    let s = Scratch::new();
    s.write(
        "idp.yaml",
        "users:\n  - {id: 00u1, email: ana@example.com}\n  - {id: 00u2, email: ben@example.com}\ngroups:\n  - {name: Engineering, members: [ana@example.com, ben@example.com]}\n",
    )
    .write(
        "idsync.yaml",
        &format!(
            "version: 1\nsources: [{{name: okta, type: file, path: idp.yaml}}]\ntarget: {{type: scim, base_url: \"{}\", token: \"${{TEST_SCIM_TOKEN}}\", http: {{timeout_secs: 10, max_attempts: 3}}}}\ngroups:\n  mappings: [{{from: \"okta:Engineering\", to: engineering}}]\n",
            fake.scim_base()
        ),
    );
    s
}

/// Killed while a group create was in flight (applied, no answer yet) and run again: the resumed
/// apply finds the group instead of creating a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_apply_finds_the_group_its_interrupted_run_created() {
    let fake = FakeAtlassian::start(FakeConfig {
        allow_duplicate_group_names: true,
        ..FakeConfig::default()
    })
    .await;
    fake.add_user(SeedUser::new("ana@example.com").external_id("00u1"));
    fake.add_user(SeedUser::new("ben@example.com").external_id("00u2"));
    let s = scratch(&fake);
    let (code, plan, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(plan.contains("engineering"), "{plan}");

    fake.set_faults(Faults {
        stall_after_mutation: 1,
        stall_for: Duration::from_secs(60),
        ..Faults::default()
    });
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("idsync"));
    cmd.current_dir(s.dir.path())
        .args(["apply", "plan.json", "--auto-approve"])
        .env("TEST_SCIM_TOKEN", &fake.config.scim_token)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.groups().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never created the group"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    let journal = s.read("plan.json.journal");
    assert!(journal.contains("start"), "{journal}");
    assert!(!journal.contains("done"), "{journal}");

    fake.set_faults(Faults::default());
    let posts_before = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    let posts_after = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts_after, posts_before, "the create is not sent again");
    assert_eq!(fake.groups().len(), 1, "{:#?}", fake.groups());
    assert_eq!(
        fake.group_members("engineering"),
        ["ana@example.com", "ben@example.com"]
    );
    let (code, again, _) = idsync(&s, &fake, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, 0, "converged:\n{again}");
}

/// Two target groups of one name, made outside idsync, do not block plans: a name idsync does not
/// need is a warning naming both ids; a name it manages is left alone, said so, and not guessed at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_sharing_a_name_are_named_in_the_plan_and_left_alone() {
    let fake = FakeAtlassian::start(FakeConfig {
        allow_duplicate_group_names: true,
        ..FakeConfig::default()
    })
    .await;
    fake.add_user(SeedUser::new("ana@example.com").external_id("00u1"));
    fake.add_user(SeedUser::new("ben@example.com").external_id("00u2"));
    let eng1 = fake.add_group("engineering", &["ana@example.com"]);
    let eng2 = fake.add_group("Engineering", &[]);
    let old1 = fake.add_group("legacy", &[]);
    let old2 = fake.add_group("legacy", &["ben@example.com"]);
    let s = scratch(&fake);
    let (code, plan, stderr) = idsync(&s, &fake, &["plan"]).await;
    assert_eq!(code, 0, "{plan}\n{stderr}");
    assert!(
        plan.contains(&format!(
            "group engineering cannot be managed: 2 target groups share its name (ids {eng1}, {eng2})"
        )),
        "{plan}"
    );
    assert!(plan.contains("(2 wanted member(s) not synced)"), "{plan}");
    assert!(
        plan.contains(&format!(
            "2 target groups share the name \"legacy\" (ids {old1}, {old2}); idsync does not manage it"
        )),
        "{plan}"
    );
    assert!(plan.contains("No changes"), "{plan}");
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.groups().len(), 4, "no group created");
    assert_eq!(fake.mutations(), 0, "nothing changed");
}

/// A target that refuses every write: the apply stops starting new actions once the first ten
/// have all failed, says so, and the same plan applied again (the cause fixed) finishes the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_whose_first_actions_all_fail_stops_and_resumes_later() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    let s = Scratch::new();
    let mut idp = String::from("users:\n");
    for i in 0..30 {
        idp.push_str(&format!(
            "  - {{id: u{i}, email: user{i:02}@example.com}}\n"
        ));
    }
    s.write("idp.yaml", &idp).write(
        "idsync.yaml",
        &format!(
            "version: 1\nsources: [{{name: okta, type: file, path: idp.yaml}}]\ntarget: {{type: scim, base_url: \"{}\", token: \"${{TEST_SCIM_TOKEN}}\", http: {{max_concurrency: 1}}}}\n",
            fake.scim_base()
        ),
    );
    let (code, _, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");
    // The organization's domain is no longer verified: every create is refused (400).
    fake.state().config.verified_domains.clear();
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "apply stopped early: the first 10 action(s) all failed; no further action was started"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("30 action(s) failed"), "{stderr}");
    assert_eq!(
        stderr.matches("create_user").count(),
        10,
        "only the actions sent are reported one by one:\n{stderr}"
    );
    let posts = || {
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    };
    assert_eq!(posts(), 10, "no request after the tenth failure");

    fake.state().config.verified_domains = vec!["example.com".into()];
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(fake.users().len(), 30);
}

/// The same for a user: killed while its create was in flight, the resumed apply does not send it
/// again, and the user joins its group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_apply_finds_the_user_its_interrupted_run_created() {
    let fake = FakeAtlassian::start(FakeConfig::default()).await;
    fake.add_user(SeedUser::new("ana@example.com").external_id("00u1"));
    fake.add_user(SeedUser::new("ben@example.com").external_id("00u2"));
    fake.add_group("engineering", &["ana@example.com", "ben@example.com"]);
    let s = scratch(&fake);
    s.write(
        "idp.yaml",
        "users:\n  - {id: 00u1, email: ana@example.com}\n  - {id: 00u2, email: ben@example.com}\n  - {id: 00u3, email: cy@example.com}\ngroups:\n  - {name: Engineering, members: [ana@example.com, ben@example.com, cy@example.com]}\n",
    );
    let (code, _, stderr) = idsync(&s, &fake, &["plan", "--out", "plan.json"]).await;
    assert_eq!(code, 0, "{stderr}");

    fake.set_faults(Faults {
        stall_after_mutation: 1,
        stall_for: Duration::from_secs(60),
        ..Faults::default()
    });
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("idsync"));
    cmd.current_dir(s.dir.path())
        .args(["apply", "plan.json", "--auto-approve"])
        .env("TEST_SCIM_TOKEN", &fake.config.scim_token)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fake.user("cy@example.com").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the apply never created the user"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();

    fake.set_faults(Faults::default());
    let posts = |fake: &FakeAtlassian| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    };
    let before = posts(&fake);
    let (code, _, stderr) = idsync(&s, &fake, &["apply", "plan.json", "--auto-approve"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(posts(&fake), before, "the create is not sent again");
    assert_eq!(
        fake.users()
            .iter()
            .filter(|u| u["userName"] == "cy@example.com")
            .count(),
        1
    );
    assert_eq!(
        fake.group_members("engineering"),
        ["ana@example.com", "ben@example.com", "cy@example.com"]
    );
}
