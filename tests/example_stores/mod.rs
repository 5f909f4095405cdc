//! Stores produced by the runnable examples, for tests that need real records (these
//! tests, and the `crux` viewer's): each example binary runs in a fresh temporary
//! directory and appends to `.crux/records.jsonl` there.
//!
//! The binaries are the ones `cargo test` builds next to the test executables
//! (`target/<profile>/examples/NAME`); `cargo test --workspace` builds them all.

#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// Every runnable example.
pub const EXAMPLES: [&str; 4] = ["support_chat", "research", "scheduling", "escape_hatch"];

/// A temporary directory removed on drop (kept if the test panicked, for a post-mortem).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("crux-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The example binary `name`, built by `cargo test` beside this test executable.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "example binary {} is missing: run `cargo test --workspace` (which builds the examples) \
         or `cargo build --examples` first",
        binary.display()
    );
    // `cargo test --test examples` alone does not rebuild the examples: refuse a binary
    // older than its sources rather than test stale code.
    let built = modified(&binary);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for source in [
        root.join(format!("{name}.rs")),
        root.join(name),
        root.join("recording"),
    ] {
        if newest(&source).is_some_and(|t| t > built) {
            panic!(
                "example binary {} is older than {}: run `cargo build --examples` \
                 or `cargo test --workspace`",
                binary.display(),
                source.display()
            );
        }
    }
    binary
}

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|err| panic!("no modification time for {}: {err}", path.display()))
}

/// The newest modification time of a file, or of the files under a directory.
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest(&entry.ok()?.path()))
        .max()
}

/// Runs example `name` in `dir`; panics with its output if it fails.
pub fn run_example(name: &str, dir: &Path) -> Output {
    let out = Command::new(example_binary(name))
        .current_dir(dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("CRUX_DEVTOOLS_URL")
        .output()
        .unwrap_or_else(|err| panic!("could not start example {name}: {err}"));
    assert!(
        out.status.success(),
        "example {name} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The store an example writes, relative to its working directory.
pub fn store_path(dir: &Path) -> PathBuf {
    dir.join(".crux").join("records.jsonl")
}

/// Runs `examples` one after the other in `dir` (appending to one store) and returns the
/// store's path. This is the helper for tests that need a realistic store.
///
/// ```ignore
/// let dir = TempDir::new("viewer");
/// let store = produce_store(dir.path(), &EXAMPLES);
/// ```
pub fn produce_store(dir: &Path, examples: &[&str]) -> PathBuf {
    for name in examples {
        run_example(name, dir);
    }
    store_path(dir)
}

/// Every line of a store, parsed; panics naming the line that is not JSON.
pub fn read_store(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("could not read {}: {err}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|err| {
                panic!("{}:{}: not JSON ({err}): {line}", path.display(), i + 1)
            })
        })
        .collect()
}
