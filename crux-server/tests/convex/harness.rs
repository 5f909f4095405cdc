//! The convex-test harness (`crux-server/tests/convex/serve.mjs`) as a child process, for
//! the tests that talk to Convex functions run by the npm `convex-test` package. Included
//! with `#[path]` by `crux-server/tests/convex_peer.rs` and `tests/typescript_roundtrip.rs`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `node serve.mjs 0`, killed when dropped.
pub struct Harness {
    child: Child,
    pub url: String,
}

impl Harness {
    /// Starts the harness and waits (up to a minute) for the line naming its URL.
    pub fn start(dir: &Path) -> Harness {
        let mut child = Command::new("node")
            .arg("serve.mjs")
            .arg("0")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (is it installed?)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60));
        let mut harness = Harness {
            child,
            url: String::new(),
        };
        let line = line.expect("the convex-test harness starts within a minute");
        harness.url = line
            .trim()
            .strip_prefix("convex-test serving ")
            .unwrap_or_else(|| panic!("unexpected first line from serve.mjs: {line:?}"))
            .to_owned();
        harness
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The harness's directory, or `None` (with a note) when `npm ci` has not installed it;
/// under `CI` a missing install fails the test instead.
pub fn harness_dir() -> Option<PathBuf> {
    // Included from crux-server's tests and from the workspace's: found from either.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = [
        manifest.join("tests/convex"),
        manifest.join("crux-server/tests/convex"),
    ]
    .into_iter()
    .find(|dir| dir.join("serve.mjs").is_file())
    .expect("the convex-test harness is in the workspace");
    if dir.join("node_modules/convex-test").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {} has no node_modules: run `npm ci` there",
        dir.display()
    );
    eprintln!(
        "note: skipped, `npm ci` in {} installs convex-test (.ci/run does)",
        dir.display()
    );
    None
}
