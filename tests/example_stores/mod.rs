//! Stores produced by the runnable examples, for tests that need real records (these
//! tests, and the `crux` viewer's): each example binary runs in a fresh temporary
//! directory and appends to `.crux/records.jsonl` there.
//!
//! The binaries are built by [`example_binary`] (`cargo build --examples` with the test's
//! features, into its target directory) when one is missing or older than its source, so
//! `cargo test --test NAME` works on a fresh target; binaries `cargo test --workspace`
//! built are used as they are.

#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
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

/// The example binary `name`, built for this test executable's features and profile into
/// its target directory: the first call in a test process runs `cargo build --examples`
/// (`cargo test --test NAME` alone builds no example) when one is missing or older than
/// its source, and takes the binaries' paths from cargo's messages.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<HashMap<String, PathBuf>, String>> = OnceLock::new();
    if let Some(binary) = existing_example(name) {
        return binary;
    }
    let built = BUILT.get_or_init(build_examples);
    match built {
        Ok(binaries) => binaries.get(name).cloned().unwrap_or_else(|| {
            panic!(
                "cargo built no example `{name}` (built: {:?}; an example whose \
                 required-features this test lacks is not built)",
                binaries.keys().collect::<Vec<_>>()
            )
        }),
        Err(why) => panic!("could not build the examples: {why}"),
    }
}

/// Example `name`'s binary next to this test executable, when it is there and newer than
/// its source: then no build runs. A build here with this test's features would resolve
/// the dependencies' features for `crux` alone and, after a workspace-wide `cargo test`,
/// compile a third of the tree again; so only a missing or outdated binary builds them.
fn existing_example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let binary = exe
        .parent()?
        .parent()?
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let source =
        newest(&sources.join(name)).or_else(|| modified(&sources.join(format!("{name}.rs"))))?;
    (modified(&binary)? >= source).then_some(binary)
}

/// The newest modification time of the files under `dir` (an example's own directory).
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                newest(&path)
            } else {
                entry.metadata().and_then(|m| m.modified()).ok()
            }
        })
        .max()
}

/// The package's features this test was compiled with (each one the examples may need).
fn features() -> Vec<&'static str> {
    [
        // `default` too: without it cargo sees another feature set and builds crux again.
        ("default", cfg!(feature = "default")),
        ("cli", cfg!(feature = "cli")),
        ("otel", cfg!(feature = "otel")),
        ("tracing", cfg!(feature = "tracing")),
        ("server", cfg!(feature = "server")),
        ("client", cfg!(feature = "client")),
        ("devtools", cfg!(feature = "devtools")),
        ("devtools-collector", cfg!(feature = "devtools-collector")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// `cargo build --examples` with this test's features, profile and target directory;
/// each example's executable by name.
pub fn build_examples() -> Result<HashMap<String, PathBuf>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("the test executable's path: {e}"))?;
    // target/<profile dir>/deps/<test>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the test executable is not in target/<profile>/deps")?;
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or("no target directory")?;
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()));
    cargo
        .args([
            "build",
            "--examples",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--no-default-features", "--features", &features().join(",")]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cargo.arg("--release");
        }
        Some(custom) => {
            cargo.args(["--profile", custom]);
        }
        None => return Err(format!("no profile in {}", profile_dir.display())),
    }
    // Without what cargo sets for a test process (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...):
    // build scripts that watch such a variable (ring's) would see it change between this
    // build and the test's, and each would rebuild what the other built.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text == "CARGO"
            || key_text == "OUT_DIR"
            || [
                "CARGO_PKG_",
                "CARGO_MANIFEST_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .iter()
            .any(|p| key_text.starts_with(p))
        {
            cargo.env_remove(&key);
        }
    }
    let out = cargo
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo build --examples failed ({})", out.status));
    }
    let mut binaries = HashMap::new();
    for line in out.stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["kind"] == serde_json::json!(["example"])
            && let (Some(name), Some(path)) = (
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            )
        {
            binaries.insert(name.to_owned(), PathBuf::from(path));
        }
    }
    Ok(binaries)
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
