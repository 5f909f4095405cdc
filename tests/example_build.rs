//! The example binaries the tests run are built by the tests themselves: `cargo test
//! --test examples` on a fresh target used to fail ("example binary ... is missing")
//! unless `cargo build --examples` or `cargo test --workspace` had run first.

mod example_stores;

use example_stores::{EXAMPLES, TempDir, build_examples, example_binary, run_example};

/// A target without the example binaries (as after `cargo clean`): the helper builds them
/// and the example runs.
#[test]
fn a_missing_example_binary_is_built_before_it_runs() {
    let binary = example_binary("escape_hatch");
    std::fs::remove_file(&binary).expect("remove the example binary");
    assert!(!binary.exists());
    let built = build_examples().expect("cargo build --examples");
    assert_eq!(built.get("escape_hatch"), Some(&binary));
    assert!(binary.is_file(), "{} was not built again", binary.display());
    for name in EXAMPLES {
        assert!(built.contains_key(name), "{name} not built: {built:?}");
    }
    let dir = TempDir::new("example-build");
    let out = run_example("escape_hatch", dir.path());
    assert!(out.status.success());
}
