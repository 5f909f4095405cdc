//! Two crux services as two OS processes: A (this test process) calls B (this test binary
//! again, running only `service_b`) through remote references; the records of both form
//! one run. Also: B down, and B slower than the client's timeout.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crux::ErrorKind;
use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::{JsonLines, Memory};
use crux::testing::assert_run_trees;
use crux_client::{Client, RemoteAction, RemoteQuery};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Service B: the research step.

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanArgs {
    pub topic: String,
    #[serde(default)]
    pub sleep_ms: u64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<String>,
}

#[crux::action(path = "research:plan")]
pub async fn plan(ctx: &ActionCtx, args: PlanArgs) -> crux::Result<Plan> {
    tokio::time::sleep(Duration::from_millis(args.sleep_ms)).await;
    ctx.console.info(format_args!("B plans {}", args.topic));
    let span = ctx
        .crux
        .span("search the archive", "retrieval.retrieve")
        .start();
    span.end(crux::observe::SpanStatus::Ok);
    if args.topic == "forbidden" {
        return Err(Error::application(
            "that topic is closed",
            serde_json::json!({"code": "CLOSED"}),
        ));
    }
    Ok(Plan {
        steps: vec![format!("read about {}", args.topic)],
    })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CountArgs {
    pub topic: String,
}

#[crux::query(path = "research:count")]
pub async fn count(_ctx: &QueryCtx, args: CountArgs) -> crux::Result<i64> {
    // Past 2^53: exact only if the integer travels as an int64.
    Ok((1i64 << 60) + args.topic.len() as i64)
}

const STORE_ENV: &str = "CRUX_TEST_SERVICE_B_STORE";

/// Not a test: the body of process B, started by [`ServiceB::start`] with `--ignored`.
/// Serves until its stdin closes; prints `listening <addr>` once bound.
#[test]
#[ignore = "process B of the two-process tests; started by them"]
fn service_b() {
    let Some(store) = std::env::var_os(STORE_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let deployment = Deployment::builder()
            .sink(JsonLines::open(store).unwrap())
            .functions((plan, count))
            .build();
        let server = crux_server::Server::builder(deployment)
            .shutdown_grace(Duration::from_secs(1))
            .build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = closed.send(());
        });
        server
            .serve(listener, async move {
                let _ = stdin_closed.await;
            })
            .await
            .unwrap();
    });
}

/// Process B, running.
struct ServiceB {
    child: Child,
    url: String,
    store: PathBuf,
}

impl ServiceB {
    fn start(dir: &Path) -> ServiceB {
        let store = dir.join("b.jsonl");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "service_b",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(STORE_ENV, &store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("process B starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may have written `test service_b ... ` on the same line.
                if let Some((_, addr)) = line.split_once("listening ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("process B listens");
        ServiceB {
            child,
            url: format!("http://{addr}"),
            store,
        }
    }

    /// Closes B's stdin and waits for it to stop; returns every record it wrote.
    fn stop(mut self) -> Vec<Value> {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("process B exits");
        assert!(status.success(), "process B failed: {status}");
        read_store(&self.store)
    }
}

impl Drop for ServiceB {
    fn drop(&mut self) {
        // A failed test must not leave B running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_store(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("B writes JSON lines"))
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("crux-client-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Service A: an action calling B through remote references.

const PLAN: RemoteAction<PlanArgs, Plan> = RemoteAction::new("research:plan");
const COUNT: RemoteQuery<CountArgs, i64> = RemoteQuery::new("research:count");

#[derive(Debug, Serialize, Deserialize)]
pub struct Ask {
    pub topic: String,
    #[serde(default)]
    pub sleep_ms: u64,
}

#[crux::action(path = "chat:respond", name = "support chat", root = "agent.run")]
pub async fn respond(ctx: &ActionCtx, args: Ask) -> crux::Result<String> {
    let research = ctx.state::<Client>()?;
    let steps = ctx
        .crux
        .run_action(
            "plan research",
            PLAN.on(research),
            PlanArgs {
                topic: args.topic.clone(),
                sleep_ms: args.sleep_ms,
            },
        )
        .await?;
    let sources = ctx
        .crux
        .run_query(
            "count sources",
            COUNT.on(research),
            CountArgs { topic: args.topic },
        )
        .await?;
    Ok(format!("{} ({sources} sources)", steps.steps.join("; ")))
}

fn service_a(client: Client, sink: &Memory) -> Deployment {
    Deployment::builder()
        .sink(sink.clone())
        .function(respond)
        .state(client)
        .build()
}

async fn settled(a: &Deployment, sink: &Memory) -> Vec<Value> {
    a.flush(Duration::from_secs(10)).await;
    sink.records()
}

fn of_type<'a>(records: &'a [Value], ty: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == ty).collect()
}

fn span_named<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {records:#?}"))
}

fn end_of<'a>(records: &'a [Value], span: &Value) -> &'a Value {
    records
        .iter()
        .find(|r| r["type"] == "span:end" && r["spanId"] == span["spanId"])
        .unwrap_or_else(|| panic!("span {} never ended", span["name"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_b_and_both_processes_write_one_run() {
    let dir = TempDir::new("one-run");
    let b = ServiceB::start(&dir.0);
    let sink = Memory::new();
    let a = service_a(Client::new(&b.url).unwrap(), &sink);

    // Called as a client would, collecting log lines: B's reach A's caller.
    let lines = crux::local::LogLines::new();
    let reply = a
        .call_with(
            "chat:respond",
            serde_json::json!({"topic": "tides"}),
            crux::local::ClientCall::new().log_lines(lines.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        reply,
        format!("read about tides ({} sources)", (1i64 << 60) + 5)
    );
    assert_eq!(lines.take(), ["[INFO] B plans tides"]);

    let a_records = settled(&a, &sink).await;
    let b_url = b.url.clone();
    let b_records = b.stop();
    assert!(!b_records.is_empty(), "B recorded its side");

    // One run across both processes: one run:start (A's), B's records in the same run.
    let mut all = a_records.clone();
    all.extend(b_records.iter().cloned());
    let starts = of_type(&all, "run:start");
    assert_eq!(starts.len(), 1, "one run, not one per process: {starts:#?}");
    let run_id = &starts[0]["runId"];
    assert!(
        b_records.iter().all(|r| &r["runId"] == run_id),
        "{b_records:#?}"
    );
    // Each process in its own segment.
    let a_segments: std::collections::BTreeSet<_> = a_records
        .iter()
        .map(|r| r["segmentId"].to_string())
        .collect();
    assert!(
        b_records
            .iter()
            .all(|r| !a_segments.contains(&r["segmentId"].to_string()))
    );

    // A's boundary span names the remote path and the deployment; B acknowledged on it.
    let boundary = span_named(&a_records, "plan research");
    assert_eq!(boundary["primitive"], "runtime.convex.action");
    assert_eq!(boundary["attributes"]["functionRef"], "research:plan");
    let end = end_of(&a_records, boundary);
    assert_eq!(end["status"], "ok");
    assert_eq!(end["attributes"]["deployment"], b_url.as_str());
    let acks: Vec<&str> = b_records
        .iter()
        .filter(|r| r["type"] == "span:event" && r["spanId"] == boundary["spanId"])
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        acks,
        [
            "runtime.convex.boundary.received",
            "runtime.convex.boundary.completed"
        ],
        "B's acknowledgements on A's span"
    );
    let requested: Vec<&str> = a_records
        .iter()
        .filter(|r| r["type"] == "span:event" && r["spanId"] == boundary["spanId"])
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(requested, ["runtime.convex.boundary.requested"]);

    assert_run_trees(
        &all,
        "\
run run#1 \"support chat\" (agent.run)
status ok · 11 records · 2 segments

├─ search the archive  retrieval.retrieve  ok
│    ↳ via runtime.convex.action \"plan research\" → research:plan  ok
└─ ↳ runtime.convex.query \"count sources\" → research:count  ok  (folded)
",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_convex_error_in_b_reaches_a_with_its_data_and_fails_the_boundary_span() {
    let dir = TempDir::new("error");
    let b = ServiceB::start(&dir.0);
    let sink = Memory::new();
    let a = service_a(Client::new(&b.url).unwrap(), &sink);
    let err = a
        .action(
            respond,
            Ask {
                topic: "forbidden".into(),
                sleep_ms: 0,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Application);
    assert_eq!(err.message(), "that topic is closed");
    assert_eq!(err.data(), Some(&serde_json::json!({"code": "CLOSED"})));
    let records = settled(&a, &sink).await;
    let b_records = b.stop();
    let boundary = span_named(&records, "plan research");
    let end = end_of(&records, boundary);
    assert_eq!(end["status"], "error");
    assert_eq!(end["error"]["name"], "ConvexError");
    let failed: Vec<&Value> = b_records
        .iter()
        .filter(|r| {
            r["spanId"] == boundary["spanId"] && r["name"] == "runtime.convex.boundary.failed"
        })
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "B acknowledged the failure on A's span: {b_records:#?}"
    );
    assert_eq!(of_type(&records, "run:end")[0]["status"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_b_down_the_call_fails_clearly_and_the_run_ends_in_error() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let sink = Memory::new();
    let a = service_a(Client::new(&url).unwrap(), &sink);
    let call = a.action(
        respond,
        Ask {
            topic: "tides".into(),
            sleep_ms: 0,
        },
    );
    let err = tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .expect("a call to a service that is down does not hang")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(
        err.message()
            .starts_with(&format!("could not reach {url} for 'research:plan': ")),
        "{err:?}"
    );
    let records = settled(&a, &sink).await;
    let boundary = span_named(&records, "plan research");
    let end = end_of(&records, boundary);
    assert_eq!(end["status"], "error");
    assert_eq!(end["attributes"]["deployment"], url.as_str());
    assert_eq!(of_type(&records, "run:end")[0]["status"], "error");
    // The query after it never ran.
    assert!(records.iter().all(|r| r["name"] != "count sources"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_b_slower_than_the_timeout_the_call_times_out_and_the_run_ends_in_error() {
    let dir = TempDir::new("slow");
    let b = ServiceB::start(&dir.0);
    let sink = Memory::new();
    let client = Client::builder(&b.url)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let a = service_a(client, &sink);
    // B sleeps far past the client's timeout.
    let call = a.action(
        respond,
        Ask {
            topic: "tides".into(),
            sleep_ms: 30_000,
        },
    );
    let err = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the client's timeout ends the call")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        err.message().starts_with(&format!(
            "TimeoutError: 'research:plan' at {} did not answer within 1s",
            b.url
        )),
        "{err:?}"
    );
    let records = settled(&a, &sink).await;
    let end = end_of(&records, span_named(&records, "plan research"));
    assert_eq!(
        (&end["status"], &end["error"]["name"]),
        (&Value::from("error"), &Value::from("TimeoutError"))
    );
    assert_eq!(of_type(&records, "run:end")[0]["status"], "error");
    drop(b); // killed: its sleeping action need not finish
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_call_inherits_the_calling_actions_deadline() {
    let dir = TempDir::new("deadline");
    let b = ServiceB::start(&dir.0);
    let sink = Memory::new();
    // The client would wait a minute; the calling action may run for one second.
    let a = Deployment::builder()
        .sink(sink.clone())
        .function(respond)
        .state(Client::new(&b.url).unwrap())
        .action_timeout(Duration::from_secs(1))
        .build();
    let call = a.action(
        respond,
        Ask {
            topic: "tides".into(),
            sleep_ms: 30_000,
        },
    );
    let err = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the action's limit ends the remote call")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    let records = settled(&a, &sink).await;
    let end = end_of(&records, span_named(&records, "plan research"));
    assert_eq!(end["status"], "error");
    assert_eq!(end["error"]["name"], "TimeoutError");
    drop(b);
}
