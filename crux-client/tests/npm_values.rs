//! Value fidelity against the npm `convex` package's own encoding, both directions: what
//! crux-client encodes, `jsonToConvex` reads as the same values (bigint past 2^53, NaN,
//! ±Infinity, -0, bytes), and what `convexToJson` encodes, crux-client reads back exactly.
//! `.ci/run` installs the package (`npm ci` in `tests/js`); without it the test is skipped
//! with a note, unless `CI` is set.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crux::local::Bytes;
use crux_client::Client;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Sample {
    big: i64,
    neg: i64,
    nan: f64,
    inf: f64,
    neg_inf: f64,
    neg_zero: f64,
    half: f64,
    bytes: Bytes,
}

fn sample() -> Sample {
    Sample {
        big: (1 << 60) + 1,
        neg: i64::MIN,
        nan: f64::NAN,
        inf: f64::INFINITY,
        neg_inf: f64::NEG_INFINITY,
        neg_zero: -0.0,
        half: 0.5,
        bytes: Bytes(vec![0, 255, 7]),
    }
}

fn assert_is_sample(s: &Sample, from: &str) {
    assert_eq!(
        (s.big, s.neg, s.half),
        ((1 << 60) + 1, i64::MIN, 0.5),
        "{from}"
    );
    assert!(s.nan.is_nan(), "{from}: {s:?}");
    assert_eq!(
        (s.inf, s.neg_inf),
        (f64::INFINITY, f64::NEG_INFINITY),
        "{from}"
    );
    assert!(
        s.neg_zero == 0.0 && s.neg_zero.is_sign_negative(),
        "{from}: -0 kept its sign"
    );
    assert_eq!(s.bytes, Bytes(vec![0, 255, 7]), "{from}");
}

#[derive(Debug, Deserialize)]
struct Seen {
    seen: BTreeMap<String, String>,
    echo: Sample,
    native: Sample,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_survive_the_npm_encoding_both_ways() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !js.join("node_modules/convex").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {} has no node_modules: run `npm ci` there",
            js.display()
        );
        eprintln!(
            "note: skipped, `npm ci` in {} installs the npm package (.ci/run does)",
            js.display()
        );
        return;
    }
    let mut node = Command::new("node")
        .arg("values_server.mjs")
        .current_dir(&js)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (is it installed?)");
    let stdout = node.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("listening ") {
                let _ = tx.send(port.to_owned());
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("node listens");
    let client = Client::new(format!("http://127.0.0.1:{port}")).unwrap();
    let reply: Result<Seen, _> = client.query("values:echo", &sample()).await;
    drop(node.stdin.take());
    let _ = node.wait();
    let reply = reply.unwrap();

    // Ours → npm: jsonToConvex saw the very values.
    let expected: BTreeMap<String, String> = [
        ("big", "bigint 1152921504606846977"),
        ("neg", "bigint -9223372036854775808"),
        ("nan", "number NaN"),
        ("inf", "number Infinity"),
        ("neg_inf", "number -Infinity"),
        ("neg_zero", "number -0"),
        ("half", "number 0.5"),
        ("bytes", "bytes 0,255,7"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(reply.seen, expected);
    // npm → ours: convexToJson of what it decoded, and of values it built itself.
    assert_is_sample(&reply.echo, "echoed by npm");
    assert_is_sample(&reply.native, "built in JavaScript");
}
