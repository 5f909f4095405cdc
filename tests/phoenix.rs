//! End to end against a real OpenTelemetry backend: Arize Phoenix, started on a free
//! loopback port from `CRUX_PHOENIX_BIN` (`bash .ci/phoenix.sh` installs it and prints
//! the path). Without that variable the tests print a note and skip, except under `CI`,
//! where they fail.
#![cfg(feature = "otel")]

mod example_stores;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use example_stores::example_binary;
use std::time::{Duration, Instant};

use crux::otel::OtlpSink;
use crux_runtime::attributes::Attributes;
use crux_runtime::delivery::{FlushOptions, FlushStatus};
use crux_runtime::envelope::Envelope;
use crux_runtime::observe::CapturedContext;
use crux_runtime::observe::{self, Observer, RunOptions, RunStatus, SpanStatus};
use crux_runtime::record::EdgeEnd;
use serde_json::Value;

/// A Phoenix server of this test's own; killed on drop.
struct Phoenix {
    child: Child,
    base: String,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Phoenix {
    fn start(test: &str) -> Option<Phoenix> {
        let Some(bin) = std::env::var_os("CRUX_PHOENIX_BIN") else {
            // CI installs Phoenix: there, a missing binary is a broken pipeline, not a skip.
            assert!(
                std::env::var_os("CI").is_none(),
                "CI=true but CRUX_PHOENIX_BIN is not set: .ci/run exports it from .ci/phoenix.sh"
            );
            eprintln!(
                "note: CRUX_PHOENIX_BIN is not set; skipping the Phoenix test `{test}` \
                 (bash .ci/phoenix.sh installs Phoenix and prints the path)"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("crux-phoenix-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .arg("serve")
            .env("PHOENIX_WORKING_DIR", &dir)
            .env("PHOENIX_HOST", "127.0.0.1")
            .env("PHOENIX_PORT", port.to_string())
            .env("PHOENIX_GRPC_PORT", free_port().to_string())
            .env("PHOENIX_TELEMETRY_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start phoenix");
        let phoenix = Phoenix {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: TempDir(dir),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if get(&format!("{}/healthz", phoenix.base)).is_some() {
                return Some(phoenix);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("phoenix did not come up at {} within 90 s", phoenix.base);
    }

    fn otlp(&self, project: &str) -> OtlpSink {
        OtlpSink::builder()
            .service_name("crux-phoenix-test")
            .resource_attribute("openinference.project.name", project)
            .build_otlp(&format!("{}/v1/traces", self.base))
            .unwrap()
    }

    /// The project's spans, once at least `n` have been ingested (or 20 s passed).
    fn spans(&self, project: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = format!("{}/v1/projects/{project}/spans?limit=1000", self.base);
            let spans = get(&url)
                .and_then(|v| v["data"].as_array().cloned())
                .unwrap_or_default();
            if spans.len() >= n || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        self.kill();
    }
}

fn get(url: &str) -> Option<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut resp = agent.get(url).call().ok()?;
    let text = resp.body_mut().read_to_string().ok()?;
    Some(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An attribute, whether Phoenix returns attributes flat or nested by dots.
fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    let attrs = &span["attributes"];
    attrs
        .get(key)
        .or_else(|| key.split('.').try_fold(attrs, |v, part| v.get(part)))
}

fn by_name<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| {
        panic!(
            "no span {name:?} among {:?}",
            spans.iter().map(|s| s["name"].clone()).collect::<Vec<_>>()
        )
    })
}

/// The ids the waterfall test checks.
struct Waterfall {
    trace: String,
    root: String,
    plan_boundary: String,
    query_boundary: String,
    stream_trace: String,
}

/// What crossing a function boundary does to a context: JSON out, strict decode back in.
fn hop(ctx: CapturedContext) -> CapturedContext {
    let wire = Envelope::new(Some(ctx.into_wire())).to_value();
    Envelope::decode(&wire)
        .unwrap()
        .observability
        .unwrap()
        .into()
}

/// A support-chat-shaped waterfall driven through the observe API, with a real JSON hop
/// between the caller and each child function (as `__crux` crosses a Convex boundary).
fn support_chat(observer: &Observer) -> Waterfall {
    let run = observer.open_run(
        RunOptions::new("support chat", "agent.run")
            .attributes(Attributes::new().with("agentId", "support-chat")),
    );
    let scope = run.scope();
    let in_run = scope.enter();

    // ctx.crux.run_action("plan research", research::plan, ..)
    let boundary = observe::span("plan research", "runtime.convex.action")
        .attr("functionRef", "research:plan")
        .start();
    boundary.event("requested", Attributes::new());
    let wire = hop(boundary.scope().unwrap().capture());
    {
        // The child function, in its own segment (another invocation).
        let child = observer.continue_context(&wire);
        let _in_child = child.enter();
        let plan = observe::span("plan", "plan.operation").start();
        {
            let _in_plan = plan.scope().unwrap().enter();
            let mut llm = observe::span("draft research plan", "generation.call")
                .attr("model", "gpt-5-mini")
                .attr("provider", "openai")
                .start();
            llm.set_attr("inputTokens", 812);
            llm.set_attr("outputTokens", 64);
            llm.end(SpanStatus::Ok);
        }
        plan.end(SpanStatus::Ok);
    }
    boundary.event("completed", Attributes::new());
    let plan_boundary = boundary.id().unwrap().to_string();
    boundary.end(SpanStatus::Ok);

    // ctx.crux.run_query("load research inputs", ..), whose handler fails a tool call.
    let query = observe::span("load research inputs", "runtime.convex.query").start();
    let wire = hop(query.scope().unwrap().capture());
    {
        let child = observer.continue_context(&wire);
        let _in_child = child.enter();
        let tool = observe::span("lookup order", "tool.call").start();
        tool.fail(&crux_runtime::Error::msg("order service timed out"));
    }
    let query_boundary = query.id().unwrap().to_string();
    query.end(SpanStatus::Ok);

    // ctx.crux.scheduler.run_after("stream chat response", ..): a detached run.
    let schedule = observe::span("stream chat response", "runtime.convex.schedule").start();
    let schedule_id = schedule.id().unwrap();
    schedule.end(SpanStatus::Ok);
    let stream = observer.open_run(RunOptions::new("stream response", "agent.run"));
    stream.link_from(EdgeEnd::Span(schedule_id), "triggered", Attributes::new());
    let stream_trace = stream.trace_id().to_string();
    stream.end(RunStatus::Ok);

    let w = Waterfall {
        trace: run.trace_id().to_string(),
        root: run.run_id().root_span_id().to_string(),
        plan_boundary,
        query_boundary,
        stream_trace,
    };
    drop(in_run);
    run.end(RunStatus::Ok);
    w
}

#[test]
fn a_support_chat_run_reads_back_from_phoenix_as_one_agent_trace() {
    let Some(phoenix) = Phoenix::start("waterfall") else {
        return;
    };
    let project = "crux-waterfall";
    let otlp = phoenix.otlp(project);
    let observer = Observer::builder().sink(otlp.clone()).build();
    let w = support_chat(&observer);
    let flushed = observer.flush_blocking(FlushOptions::FINAL);
    assert_eq!(flushed.status, FlushStatus::Drained, "{flushed:?}");
    assert_eq!(otlp.stats().not_exported(), 0);

    let spans = phoenix.spans(project, 8);
    assert_eq!(spans.len(), 8, "{spans:#?}");
    let in_trace = spans
        .iter()
        .filter(|s| s["context"]["trace_id"] == w.trace.as_str())
        .count();
    assert_eq!(
        in_trace, 7,
        "every span but the detached run's is in the chat trace"
    );

    let root = by_name(&spans, "support chat");
    assert_eq!(root["context"]["span_id"], w.root.as_str());
    assert!(root["parent_id"].is_null(), "{root:#}");
    assert_eq!(root["span_kind"], "AGENT");
    assert_eq!(root["status_code"], "OK");
    assert_eq!(attr(root, "agentId"), Some(&Value::from("support-chat")));

    let parent_of = |name: &str| {
        by_name(&spans, name)["parent_id"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let id_of = |name: &str| {
        by_name(&spans, name)["context"]["span_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Parentage across every boundary.
    assert_eq!(id_of("plan research"), w.plan_boundary);
    assert_eq!(parent_of("plan research"), w.root);
    assert_eq!(parent_of("plan"), w.plan_boundary);
    assert_eq!(parent_of("draft research plan"), id_of("plan"));
    assert_eq!(id_of("load research inputs"), w.query_boundary);
    assert_eq!(parent_of("load research inputs"), w.root);
    assert_eq!(parent_of("lookup order"), w.query_boundary);
    assert_eq!(parent_of("stream chat response"), w.root);

    // GenAI and OpenInference attributes.
    let llm = by_name(&spans, "draft research plan");
    assert_eq!(llm["span_kind"], "LLM");
    assert_eq!(
        attr(llm, "gen_ai.request.model"),
        Some(&Value::from("gpt-5-mini"))
    );
    assert_eq!(
        attr(llm, "llm.model_name"),
        Some(&Value::from("gpt-5-mini"))
    );
    assert_eq!(
        attr(llm, "gen_ai.usage.input_tokens"),
        Some(&Value::from(812))
    );
    assert_eq!(
        attr(llm, "llm.token_count.completion"),
        Some(&Value::from(64))
    );

    // Error status and the exception event.
    let tool = by_name(&spans, "lookup order");
    assert_eq!(tool["span_kind"], "TOOL");
    assert_eq!(tool["status_code"], "ERROR");
    assert_eq!(tool["status_message"], "order service timed out");
    let exception = tool["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "exception")
        .expect("an exception event");
    assert_eq!(
        attr(exception, "exception.message"),
        Some(&Value::from("order service timed out"))
    );
    let boundary = by_name(&spans, "plan research");
    let events: Vec<_> = boundary["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(events, ["requested", "completed"]);

    // The detached run is a trace of its own (its link back to the schedule span is
    // checked on the exporter side: Phoenix's span API does not return links).
    let stream = by_name(&spans, "stream response");
    assert_eq!(stream["context"]["trace_id"], w.stream_trace.as_str());
    assert!(stream["parent_id"].is_null());
    assert_ne!(w.stream_trace, w.trace);
}

#[test]
fn killing_phoenix_mid_run_changes_no_result_bounds_every_flush_and_counts_the_loss() {
    let Some(mut phoenix) = Phoenix::start("kill") else {
        return;
    };
    let otlp = phoenix.otlp("crux-kill");
    let observer = Observer::builder().sink(otlp.clone()).build();

    let run = observer.open_run(RunOptions::new("support chat", "agent.run"));
    let scope = run.scope();
    scope
        .span("before", "plan.operation")
        .start()
        .end(SpanStatus::Ok);
    let r = observer.flush_blocking(FlushOptions::BOUNDARY);
    assert_eq!(r.status, FlushStatus::Drained, "{r:?}");
    assert_eq!(otlp.stats().exported, 1);

    phoenix.kill();

    // The program goes on: each step's result is its own, every flush returns in bound.
    let mut results = Vec::new();
    for i in 0..5 {
        let span = scope.span("after", "tool.call").start();
        results.push(i * 2);
        span.end(SpanStatus::Ok);
        let t = Instant::now();
        let r = observer.flush_blocking(FlushOptions::BOUNDARY);
        assert!(
            t.elapsed() < Duration::from_millis(1300),
            "flush took {:?}",
            t.elapsed()
        );
        assert_ne!(r.status, FlushStatus::Drained);
    }
    run.end(RunStatus::Ok);
    let t = Instant::now();
    let r = observer.flush_blocking(FlushOptions::FINAL);
    assert!(
        t.elapsed() < Duration::from_millis(3300),
        "final flush took {:?}",
        t.elapsed()
    );
    assert_ne!(r.status, FlushStatus::Drained);
    assert_eq!(results, [0, 2, 4, 6, 8]);

    // The five tool spans and the run span never reached Phoenix, and the sink says so.
    let deadline = Instant::now() + Duration::from_secs(10);
    while otlp.stats().not_exported() < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = otlp.stats();
    assert_eq!(stats.exported, 1, "{stats:?}");
    assert_eq!(stats.not_exported(), 6, "{stats:?}");
}

#[test]
fn the_support_chat_example_exports_through_the_local_deployment() {
    let Some(phoenix) = Phoenix::start("example") else {
        return;
    };
    let project = "crux-support-chat";
    let dir = example_stores::TempDir::new("phoenix-support-chat");
    let out = Command::new(example_binary("support_chat"))
        .current_dir(dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &phoenix.base)
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            format!("openinference.project.name={project}"),
        )
        .output()
        .expect("run the support_chat example");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("also exporting over OTLP"),
        "the support_chat binary was built without the `otel` feature: build the examples \
         with `cargo test --workspace --all-features` (or `cargo build --examples --all-features`)"
    );

    let spans = phoenix.spans(project, 15);
    let roots: Vec<_> = spans
        .iter()
        .filter(|s| s["name"] == "support chat" && s["parent_id"].is_null())
        .collect();
    assert_eq!(roots.len(), 3, "one answered turn, two refused");
    for root in &roots {
        assert_eq!(root["span_kind"], "AGENT");
    }
    let ok: Vec<_> = roots.iter().filter(|r| r["status_code"] == "OK").collect();
    assert_eq!(ok.len(), 1);
    for refused in roots.iter().filter(|r| r["status_code"] == "ERROR") {
        assert!(!refused["status_message"].as_str().unwrap_or("").is_empty());
    }

    // The answered turn: every span of it in one trace, nested across every boundary.
    let trace = ok[0]["context"]["trace_id"].as_str().unwrap();
    let turn: Vec<Value> = spans
        .iter()
        .filter(|s| s["context"]["trace_id"] == trace)
        .cloned()
        .collect();
    let id_of = |name: &str| {
        by_name(&turn, name)["context"]["span_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let parent_of = |name: &str| {
        by_name(&turn, name)["parent_id"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let root = ok[0]["context"]["span_id"].as_str().unwrap();
    assert_eq!(parent_of("check thread access"), root);
    assert_eq!(parent_of("plan research"), root);
    assert_eq!(parent_of("load research inputs"), id_of("plan research"));
    assert_eq!(parent_of("plan answer"), id_of("plan research"));
    assert_eq!(parent_of("write answer"), root);
    assert_eq!(parent_of("write reply"), id_of("write answer"));
    assert_eq!(parent_of("stream chat response"), root);
    for llm in ["plan answer", "write reply"] {
        let span = by_name(&turn, llm);
        assert_eq!(span["span_kind"], "LLM");
        let model = attr(span, "gen_ai.request.model").expect("a model");
        assert_eq!(attr(span, "llm.model_name"), Some(model));
        assert!(attr(span, "gen_ai.usage.input_tokens").is_some_and(|t| t.as_i64() > Some(0)));
    }

    // The streaming ran later as its own run and trace, with its own children.
    let stream = spans
        .iter()
        .find(|s| s["name"] == "stream chat response" && s["parent_id"].is_null())
        .expect("the detached streaming run");
    assert_eq!(stream["span_kind"], "AGENT");
    let stream_trace = &stream["context"]["trace_id"];
    assert_ne!(stream_trace, trace);
    let reply = by_name(&spans, "stream reply");
    assert_eq!(&reply["context"]["trace_id"], stream_trace);
    assert_eq!(reply["parent_id"], stream["context"]["span_id"]);
    assert_eq!(reply["span_kind"], "LLM");
}
