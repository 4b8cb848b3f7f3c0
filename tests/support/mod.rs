//! Test helpers: a scratch folder holding a config and its snapshot files, and the idsync binary run
//! against it with a fixed clock and no colour.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The clock every test plans at, so grace periods and messages are stable.
pub const NOW: &str = "2026-11-22T00:00:00Z";

/// A scratch folder with files in it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    /// A copy of the bundled quickstart example.
    pub fn quickstart() -> Scratch {
        let s = Scratch::new();
        for f in ["idsync.yaml", "idp.yaml", "atlassian.yaml"] {
            std::fs::copy(repo().join("examples/quickstart").join(f), s.path(f))
                .expect("copy quickstart");
        }
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> &Self {
        std::fs::write(self.path(name), text).expect("write scratch file");
        self
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read scratch file")
    }

    /// `idsync ARGS` run in this folder.
    pub fn idsync(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("idsync").expect("the idsync binary");
        c.current_dir(self.dir.path())
            .env("IDSYNC_NOW", NOW)
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .args(args);
        c
    }
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command and returns (exit code, stdout, stderr) with the scratch path replaced by `[DIR]`.
pub fn run(scratch: &Scratch, cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("idsync runs");
    let clean = |b: &[u8]| {
        String::from_utf8_lossy(b).replace(&scratch.dir.path().display().to_string(), "[DIR]")
    };
    (
        out.status.code().unwrap_or(-1),
        clean(&out.stdout),
        clean(&out.stderr),
    )
}

/// Runs a command off the async runtime that serves the fakes (a blocking wait there would stall
/// them); returns (exit code, stdout, stderr).
pub async fn run_beside_fakes(mut cmd: Command) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("idsync runs"))
        .await
        .expect("the command's thread finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
