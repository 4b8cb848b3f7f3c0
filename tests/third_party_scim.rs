//! The SCIM client against a SCIM 2.0 server idsync did not write: `scim2-server` (PyPI, the
//! python-scim project's in-memory reference server). CI installs it; elsewhere the test runs when the
//! command is on PATH, and `IDSYNC_REQUIRE_SCIM2_SERVER=1` makes its absence a failure.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{run, Scratch};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const TOKEN: &str = "third-party-scim-token";

fn start() -> Option<(Server, String)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("scim2-server")
        .args([
            "--hostname",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--bearer-token",
            TOKEN,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var_os("IDSYNC_REQUIRE_SCIM2_SERVER").is_none(),
                "scim2-server is required here but could not start: {e} (pip install scim2-server)"
            );
            return None;
        }
    };
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}/v2");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((server, base));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("scim2-server did not start listening on port {port}");
}

/// A scratch folder whose config targets the server at `base`, with `member_removal` when given.
fn scratch(base: &str, member_removal: Option<&str>) -> Scratch {
    let s = Scratch::new();
    s.write(
        "idp.yaml",
        r"users:
  - {id: u1, email: ana@example.com, givenName: Ana, familyName: Silva, attributes: {title: Engineer, department: R&D}}
  - {id: u2, email: ben@example.com, givenName: Ben, familyName: Okafor}
  - {id: u3, email: cy@example.com, givenName: Cy, familyName: Vance, active: false}
  - {id: u4, email: dee@example.com, givenName: Dee, familyName: Park}
  - {id: u5, email: eve@example.com, givenName: Eve, familyName: Moss}
groups:
  - {name: Engineering, members: [ana@example.com, ben@example.com, dee@example.com, eve@example.com]}
  - {name: Design, members: [ben@example.com]}
",
    )
    .write(
        "idsync.yaml",
        &format!(
            "version: 1\nsources: [{{name: idp, type: file, path: idp.yaml}}]\ntarget: {{type: scim, base_url: \"{base}\", token: \"${{THIRD_PARTY_TOKEN}}\"{removal}}}\nusers:\n  attributes: {{displayName: \"{{givenName}} {{familyName}}\", title: \"{{title}}\", department: \"{{department}}\"}}\ngroups:\n  mappings: [{{from_regex: \"^idp:(.+)$\", to: \"$1\"}}]\n  default_groups: [everyone]\ncleanup: {{max_deactivations: 100%}}\nlimits: {{membership_batch: 2}}\n",
            removal = member_removal.map(|m| format!(", member_removal: {m}")).unwrap_or_default()
        ),
    );
    s
}

/// The members of `group` as `idsync snapshot --side target` reads them, sorted.
fn members(s: &Scratch, group: &str) -> Vec<String> {
    let mut c = s.idsync(&["snapshot", "--side", "target", "--out", "target.json"]);
    c.env("THIRD_PARTY_TOKEN", TOKEN);
    let (code, out, err) = run(s, &mut c);
    assert_eq!(code, 0, "{out}\n{err}");
    let snap: serde_json::Value = serde_json::from_str(&s.read("target.json")).unwrap();
    let mut m: Vec<String> = snap["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == group)
        .unwrap_or_else(|| panic!("no group {group} in {snap}"))["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_lowercase())
        .collect();
    m.sort();
    m
}

#[test]
fn converges_against_a_scim_server_idsync_did_not_write() {
    let Some((_server, base)) = start() else {
        // Not installed here and not required: nothing to test against.
        return;
    };
    let s = scratch(&base, None);
    let idsync = |args: &[&str]| {
        let mut c = s.idsync(args);
        c.env("THIRD_PARTY_TOKEN", TOKEN);
        run(&s, &mut c)
    };
    let (code, out, err) = idsync(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = idsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "converged:\n{out}\n{err}");

    // A rename, a leaver, and members removed from a group (two batches, members staying behind),
    // then converge again.
    s.write(
        "idp.yaml",
        &s.read("idp.yaml")
            .replace("email: ana@example.com", "email: ana.silva@example.com")
            .replace(
                "[ana@example.com, ben@example.com, dee@example.com, eve@example.com]",
                "[ana.silva@example.com]",
            )
            .replace(
                "  - {id: u5, email: eve@example.com, givenName: Eve, familyName: Moss}\n",
                "",
            ),
    );
    let (code, out, _) = idsync(&["plan"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("~ update_user ana.silva@example.com")
            && out.contains("- deactivate_user eve@example.com")
            && out.contains("- remove_members Engineering (batch 1/1, 2 member(s))"),
        "{out}"
    );
    let (code, out, err) = idsync(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = idsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(code, 0, "converged again:\n{out}\n{err}");
    // Exactly ben and dee left Engineering; the deactivated eve keeps her membership.
    assert_eq!(
        members(&s, "Engineering"),
        vec!["ana.silva@example.com", "eve@example.com"]
    );
    assert_eq!(members(&s, "Design"), vec!["ben@example.com"]);
}

/// The value-list removal form (`member_removal: value_list`) against a strict server: refused, and
/// reported, never a silent loss.
#[test]
fn the_value_list_form_never_empties_a_group_silently() {
    let Some((_server, base)) = start() else {
        return;
    };
    let s = scratch(&base, Some("value_list"));
    let idsync = |args: &[&str]| {
        let mut c = s.idsync(args);
        c.env("THIRD_PARTY_TOKEN", TOKEN);
        run(&s, &mut c)
    };
    let (code, out, err) = idsync(&["apply", "--auto-approve"]);
    assert_eq!(code, 0, "{out}\n{err}");
    s.write(
        "idp.yaml",
        &s.read("idp.yaml").replace(
            "[ana@example.com, ben@example.com, dee@example.com, eve@example.com]",
            "[ana@example.com, dee@example.com, eve@example.com]",
        ),
    );
    let (code, out, err) = idsync(&["apply", "--auto-approve"]);
    // scim2-server is strict: it refuses the value-list form (400), the run fails saying so, and
    // the group keeps every member.
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("remove_members Engineering failed") && err.contains("HTTP 400"),
        "{err}"
    );
    assert_eq!(
        members(&s, "Engineering"),
        vec![
            "ana@example.com",
            "ben@example.com",
            "dee@example.com",
            "eve@example.com"
        ]
    );
}
