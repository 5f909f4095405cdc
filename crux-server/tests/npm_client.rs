//! The real npm `ConvexHttpClient` (package `convex`, pinned by `tests/js/package-lock.json`)
//! calls a query, a mutation and an action on a crux server: values with i64 and bytes
//! intact, a `ConvexError` with its data, an internal function refused without the admin
//! key, `setAuth(token)` reaching the handler as `ctx.auth`, `logLines` printed by the
//! client's logger. `.ci/run` installs the package (`npm ci`); without `node_modules` the test is
//! skipped with a note, unless `CI` is set.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_npm_convex_http_client_calls_crux_functions() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !js.join("node_modules/convex").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {} has no node_modules: run `npm ci` there",
            js.display()
        );
        eprintln!(
            "note: skipped, `npm ci` in {} installs the npm client (.ci/run does)",
            js.display()
        );
        return;
    }
    let secret = b"the npm test's HS256 secret, 32+ bytes";
    let provider = crux_server::AuthProvider::new("https://npm.crux.test", "npm-tests")
        .hs256_secret(secret)
        .unwrap();
    let token = crux_server::hs256_token(
        secret,
        "https://npm.crux.test",
        "npm-tests",
        "user-npm",
        Duration::from_secs(600),
        serde_json::json!({"name": "Npm User"}),
    );
    let server = common::start(
        |d| d,
        |s| s.admin_key("npm-test-admin-key").auth_provider(provider),
    )
    .await;
    let url = format!("http://{}", server.addr);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("client.mjs")
            .arg(url)
            .arg("npm-test-admin-key")
            .arg(token)
            .current_dir(js)
            .output()
    });
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("node finishes within 2 minutes")
        .unwrap()
        .expect("node runs (is it installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node client failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("ok 8 checks"), "{stdout}");
    server.stop().await;
}
