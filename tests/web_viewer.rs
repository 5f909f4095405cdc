//! The devtools web viewer in a real browser: headless Chromium (Debian's
//! `/usr/bin/chromium`) driven by Playwright (`playwright-core`, pinned by
//! `crux-devtools/tests/browser/package-lock.json`) through
//! `crux-devtools/tests/browser/driver.mjs`, which acts on the page and reports what it
//! shows; the assertions are here. `.ci/run` installs both; without them the test is
//! skipped with a note, unless `CI` is set. Screenshots are kept in
//! `target/tmp/web-viewer/`.
#![cfg(feature = "devtools-collector")]

mod example_stores;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use crux::devtools::collector::{Collector, CollectorOptions};
use example_stores::{TempDir, example_binary};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crux-devtools/tests/browser")
}

/// Whether the browser and Playwright are installed (a note, or a failure under CI, if not).
fn browser_available() -> bool {
    let playwright = browser_dir().join("node_modules/playwright-core");
    let missing: Vec<String> = [
        (!Path::new(CHROMIUM).exists()).then(|| format!("{CHROMIUM} (apt-get install chromium)")),
        (!playwright.is_dir()).then(|| format!("{} (npm ci there)", playwright.display())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but the browser test lacks {missing:?}: .ci/run installs them"
    );
    eprintln!("note: skipped, missing {missing:?} (.ci/run installs them)");
    false
}

/// The Node driver: one JSON command per line in, one JSON answer per line out.
struct Driver {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<String>,
}

impl Driver {
    fn start() -> Driver {
        let mut child = Command::new("node")
            .arg("driver.mjs")
            .current_dir(browser_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run node");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Driver {
            child,
            stdin,
            answers,
        }
    }

    /// Sends `command` and returns its answer; fails the test on `ok: false`.
    fn send(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").expect("write to the driver");
        // The driver bounds each of its waits at 30 s; this bounds a driver that hangs.
        let line = self
            .answers
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("the driver did not answer {command}"));
        let answer: Value = serde_json::from_str(&line).expect("a JSON answer");
        assert_eq!(answer["ok"], true, "{command} failed: {answer}");
        answer
    }

    fn screenshot(&mut self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        self.send(json!({"cmd": "screenshot", "path": path}));
        path
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(url: &str) -> Value {
    let body = ureq::get(url)
        .call()
        .expect("GET")
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn post_records(base: &str, records: &[Value]) {
    let body = json!({"schemaVersion": 5, "records": records}).to_string();
    let reply = ureq::post(&format!("{base}/api/observability/records"))
        .header("Content-Type", "application/json")
        .send(&body)
        .expect("POST")
        .into_body()
        .read_to_string()
        .unwrap();
    let reply: Value = serde_json::from_str(&reply).unwrap();
    for d in reply["dispositions"].as_array().unwrap() {
        assert_eq!(d["outcome"], "accepted", "{d}");
    }
}

/// A hand-made run whose texts are HTML and script, delivered in two halves.
fn hostile_run() -> (String, Vec<Value>, Vec<Value>) {
    let run = "run_0123456789abcdef01234567";
    let base = |seq: u64, kind: &str| {
        json!({
            "schemaVersion": 5, "recordId": format!("rec_hostile_{seq}"), "runId": run,
            "operationId": run, "segmentId": "seg_0123456789abcdef01234567", "segmentSeq": seq,
            "traceId": "0123456789abcdef0123456789abcdef", "type": kind,
        })
    };
    let with = |mut v: Value, fields: Value| {
        for (k, f) in fields.as_object().unwrap() {
            v[k] = f.clone();
        }
        v
    };
    let first = vec![
        with(
            base(1, "run:start"),
            json!({"name": "<img src=x onerror=\"window.__xss=1\">", "rootPrimitive": "agent.run",
                   "startedAt": "2026-11-25T10:00:00.000Z", "status": "running",
                   "sessionId": "session-<b>7</b>", "userId": "user-ada"}),
        ),
        with(
            base(2, "span:start"),
            json!({"spanId": "aaaabbbbccccdddd", "parentSpanId": null, "family": "tool",
                   "primitive": "tool.call", "name": "<script>window.__xss=1</script>",
                   "startedAt": "2026-11-25T10:00:00.010Z", "status": "running",
                   "attributes": {"query": "\"><svg onload=window.__xss=1>"}}),
        ),
    ];
    let second = vec![
        with(
            base(3, "span:end"),
            json!({"spanId": "aaaabbbbccccdddd", "endedAt": "2026-11-25T10:00:00.030Z",
                   "durationMs": 20, "status": "ok"}),
        ),
        with(
            base(4, "run:end"),
            json!({"endedAt": "2026-11-25T10:00:00.040Z", "durationMs": 40, "status": "ok"}),
        ),
    ];
    (run.to_owned(), first, second)
}

#[test]
fn the_web_viewer_shows_runs_live_with_their_tree_timeline_links_and_search() {
    if !browser_available() {
        return;
    }
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-viewer");
    std::fs::create_dir_all(&shots).unwrap();
    let dir = TempDir::new("web-viewer");
    let collector = Collector::start(CollectorOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: dir.path().join("devtools.db"),
        token: None,
    })
    .unwrap();
    let base = collector.url();
    let mut page = Driver::start();

    // The page loads, empty.
    let opened = page.send(json!({"cmd": "open", "url": format!("{base}/")}));
    assert_eq!(opened["title"], "crux devtools");
    assert_eq!(opened["rows"], json!([]));
    page.screenshot(&shots, "01-empty.png");

    // An example delivers while the page is open: its runs appear without a reload.
    let out = Command::new(example_binary("support_chat"))
        .current_dir(dir.path())
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("CRUX_DEVTOOLS_URL", &base)
        .output()
        .expect("run the example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let chat = get(&format!("{base}/api/runs?name=support%20chat&status=ok"));
    let chat_id = chat["runs"][0]["runId"].as_str().unwrap().to_owned();
    let live = page.send(json!({"cmd": "waitRow", "runId": chat_id}));
    assert_eq!(live["reloaded"], false, "the list must update in place");
    let listed = get(&format!("{base}/api/runs"))["runs"]
        .as_array()
        .unwrap()
        .len();
    page.send(json!({"cmd": "waitText", "selector": "#runs", "text": "stream chat response"}));
    assert_eq!(
        page.send(json!({"cmd": "waitRow", "runId": chat_id}))["rows"]
            .as_array()
            .unwrap()
            .len(),
        listed
    );
    page.screenshot(&shots, "02-runs.png");

    // The run page: the tree with the boundary spans, model totals, the detached run.
    let run = page.send(json!({"cmd": "openRun", "runId": chat_id}));
    let (header, tree) = (
        run["header"].as_str().unwrap(),
        run["tree"].as_str().unwrap(),
    );
    assert!(
        header.contains("support chat") && header.contains(&chat_id),
        "{header}"
    );
    let header_lower = header.to_lowercase();
    assert!(header_lower.contains("model calls\n2"), "{header}");
    for shown in [
        "check thread access runtime.convex.query ok",
        "plan research runtime.convex.action ok",
        "plan answer generation.call stand-in-1 ok",
        "↳ via runtime.convex.action \"write answer\"",
        "stream chat response runtime.convex.schedule ok",
        "↪ triggered run \"stream chat response\"",
    ] {
        assert!(
            tree.contains(shown),
            "{shown:?} missing from the tree:\n{tree}"
        );
    }
    let details = page.send(json!({"cmd": "selectSpan", "name": "write reply"}))["details"]
        .as_str()
        .unwrap()
        .to_owned();
    for shown in [
        "generation.call",
        "stand-in-1",
        "local-stand-in",
        "totalTokens",
    ] {
        assert!(
            details.contains(shown),
            "{shown:?} missing from the details:\n{details}"
        );
    }
    page.screenshot(&shots, "03-tree.png");

    // The timeline: every span as recorded, boundaries included, each with a bar.
    let timeline = page.send(json!({"cmd": "timeline"}));
    let text = timeline["text"].as_str().unwrap();
    for shown in [
        "write answer",
        "runtime.convex.action",
        "plan answer",
        "generation.call",
    ] {
        assert!(
            text.contains(shown),
            "{shown:?} missing from the timeline:\n{text}"
        );
    }
    assert!(timeline["bars"].as_u64().unwrap() >= 7, "{timeline}");
    page.screenshot(&shots, "04-timeline.png");

    // The detached run links back to the span that scheduled it.
    page.send(json!({"cmd": "open", "url": format!("{base}/#/runs/{chat_id}")}));
    let detached = page.send(json!({"cmd": "follow", "selector": "a.link-run"}));
    let header = detached["header"].as_str().unwrap();
    assert!(header.contains("stream chat response"), "{header}");
    assert!(
        header.contains("triggered by span \"stream chat response\""),
        "{header}"
    );
    let back = page.send(json!({"cmd": "follow", "selector": "#run-header a.link-span"}));
    assert!(back["hash"].as_str().unwrap().contains(&chat_id), "{back}");
    assert!(
        back["details"]
            .as_str()
            .unwrap()
            .contains("runtime.convex.schedule"),
        "the scheduling span is selected: {back}"
    );

    // Search finds a span by name; a status filter keeps that status.
    let found = page.send(json!({"cmd": "search", "text": "plan answer"}));
    assert_eq!(found["rows"], json!([chat_id]));
    page.screenshot(&shots, "05-search.png");
    let cleared = page.send(json!({"cmd": "filter", "name": "q", "value": ""}));
    assert_eq!(cleared["rows"].as_array().unwrap().len(), listed);
    let failed = page.send(json!({"cmd": "filter", "name": "status", "value": "error"}));
    let expected: Vec<Value> = get(&format!("{base}/api/runs?status=error"))["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runId"].clone())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(failed["rows"], Value::Array(expected));

    // Record text is text: a run named with HTML and script shows it literally, grows
    // while open, and never runs it.
    page.send(json!({"cmd": "filter", "name": "status", "value": ""}));
    let (hostile, first, second) = hostile_run();
    post_records(&base, &first);
    page.send(json!({"cmd": "waitRow", "runId": hostile}));
    let opened = page.send(json!({"cmd": "openRun", "runId": hostile}));
    assert!(
        opened["header"]
            .as_str()
            .unwrap()
            .contains("<img src=x onerror=\"window.__xss=1\">"),
        "{opened}"
    );
    assert!(
        opened["header"].as_str().unwrap().contains("running"),
        "{opened}"
    );
    assert!(
        opened["tree"]
            .as_str()
            .unwrap()
            .contains("<script>window.__xss=1</script>"),
        "{opened}"
    );
    post_records(&base, &second);
    let grown =
        page.send(json!({"cmd": "waitText", "selector": "#lens-tree-body", "text": "20ms"}));
    assert_eq!(grown["reloaded"], false);
    page.send(json!({"cmd": "waitText", "selector": "#run-header", "text": "ok"}));
    page.send(json!({"cmd": "selectSpan", "name": "<script>window.__xss=1</script>"}));
    page.screenshot(&shots, "06-hostile.png");
    let xss = page.send(json!({"cmd": "xss"}));
    assert_eq!(xss["fired"], false);
    assert_eq!(xss["consoleErrors"], json!([]), "{xss}");

    // Runs of one session are grouped and filtered by it.
    page.send(
        json!({"cmd": "open", "url": format!("{base}/#/?session=session-%3Cb%3E7%3C%2Fb%3E")}),
    );
    let session = page.send(json!({"cmd": "waitRow", "runId": hostile}));
    assert_eq!(session["rows"], json!([hostile]));

    drop(page);
    for shot in [
        "01-empty",
        "02-runs",
        "03-tree",
        "04-timeline",
        "05-search",
        "06-hostile",
    ] {
        let png = std::fs::read(shots.join(format!("{shot}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 2_000, "{shot}");
    }
}
