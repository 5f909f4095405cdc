//! Untrusted `__crux` envelopes, reserved attributes, and the bounded final flush.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crux::local::Deployment;
use crux::observe::Observer;
use crux::prelude::*;
use crux::record::Record;
use crux::sink::{Memory, Sink, SinkError};
use serde_json::{Value, json};

#[derive(Serialize, Deserialize)]
pub struct Ask {
    pub question: String,
}

#[crux::action(name = "answer")]
pub async fn answer(ctx: &ActionCtx, args: Ask) -> crux::Result<String> {
    let run = ctx
        .crux
        .capture()
        .map(|c| c.run_id.to_string())
        .unwrap_or_default();
    Ok(format!("{}@{run}", args.question))
}

#[crux::action(name = "quick", flush = 200)]
pub async fn quick(_ctx: &ActionCtx, args: Ask) -> crux::Result<String> {
    if args.question == "fail" {
        return Err(Error::application("refused", json!({"why": "asked to"})));
    }
    Ok(args.question.to_uppercase())
}

/// A hand-written `Function` (exactly what the macro generates) whose metadata tries to
/// set the reserved attributes the macro would reject.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
pub struct spoofing;

impl spoofing {
    pub async fn handler(
        ctx: &ActionCtx,
        args: crux::function::NoArgs,
        __crux: Option<Box<crux::envelope::Envelope>>,
    ) -> crux::Result<()> {
        let _ = args;
        crux::__private::invoke(ctx, __crux, &<spoofing as Function>::METADATA, async move {
            Ok(())
        })
        .await
    }
}

impl Function for spoofing {
    type Args = crux::function::NoArgs;
    type Output = ();
    type Context = ActionCtx;
    const METADATA: crux::function::Metadata = crux::function::Metadata {
        kind: crux::function::FunctionKind::Action,
        visibility: crux::function::Visibility::Public,
        module_path: module_path!(),
        export: "spoofing",
        path: None,
        name: Some("spoofing"),
        root: None,
        attributes: &[
            ("boundary", crux::attributes::AttrLiteral::Str("spoofed")),
            ("entrypoint", crux::attributes::AttrLiteral::Str("spoofed")),
            ("crux.internal", crux::attributes::AttrLiteral::Bool(true)),
            ("team", crux::attributes::AttrLiteral::Str("support")),
        ],
        flush: Some(Duration::from_millis(3000)),
    };
    fn call(
        ctx: &ActionCtx,
        args: Self::Args,
        envelope: Option<Box<crux::envelope::Envelope>>,
    ) -> crux::function::BoxFuture<'_, crux::Result<()>> {
        Box::pin(Self::handler(ctx, args, envelope))
    }
}

const VICTIM_RUN: &str = "run_0123456789abcdef01234567";

fn victim_context() -> Value {
    json!({
        "runId": VICTIM_RUN,
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "segmentId": "seg_0123456789abcdef01234567",
        "spanStack": ["00f067aa0ba902b7"],
        "currentSpanId": "00f067aa0ba902b7"
    })
}

fn memory_deployment(sink: &Memory) -> Deployment {
    Deployment::builder()
        .sink(sink.clone())
        .function(answer)
        .function(quick)
        .function(spoofing)
        .build()
}

#[tokio::test]
async fn untrusted_envelopes_are_ignored_and_reported_never_failing_the_call() {
    let mut oversized = victim_context();
    oversized["spanStack"] = json!(vec!["00f067aa0ba902b7"; 1000]);
    let mut malformed = victim_context();
    malformed["traceId"] = json!("not-a-trace");
    let mut control = victim_context();
    control["segmentId"] = json!("seg_0123\u{7}");
    let cases = [
        (
            json!({"v": 2, "observability": victim_context()}),
            "version",
        ),
        (json!({"v": 1, "observability": oversized}), "spanStack"),
        (json!({"v": 1, "observability": malformed}), "traceId"),
        (json!({"v": 1, "observability": control}), "segmentId"),
        (json!({"observability": victim_context()}), "`v`"),
        (json!("run_0123456789abcdef01234567"), "expected"),
    ];
    for (envelope, why) in cases {
        let sink = Memory::new();
        let d = memory_deployment(&sink);
        let args = json!({"question": "q", "__crux": envelope});
        let out = d
            .call("envelopes:answer", args)
            .await
            .expect("never a failed call");
        let (question, run) = out.as_str().unwrap().split_once('@').unwrap();
        assert_eq!(question, "q");
        assert_ne!(run, VICTIM_RUN, "ran as a fresh root");
        d.flush(Duration::from_secs(5)).await;
        let records = sink.records();
        assert!(
            records.iter().all(|r| r["runId"] != VICTIM_RUN),
            "nothing written into the named run: {records:#?}"
        );
        let start = records.iter().find(|r| r["type"] == "run:start").unwrap();
        assert_eq!(start["runId"], run);
        let warning = records
            .iter()
            .find(|r| r["type"] == "span" && r["primitive"] == "security.warning")
            .unwrap_or_else(|| panic!("no security.warning for {why}: {records:#?}"));
        assert_eq!(warning["runId"], run);
        let reason = warning["attributes"]["reason"].as_str().unwrap();
        assert!(reason.contains(why), "{reason:?} should mention {why}");
        assert_eq!(warning["attributes"]["functionRef"], "envelopes:answer");
    }
}

/// An internal action at a path longer than a boundary's `ref` may be (200 characters):
/// hand-written, as the macro would refuse no such path. Returns the run it ran in.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug)]
pub struct far_away;

impl far_away {
    pub async fn handler(
        ctx: &ActionCtx,
        args: crux::function::NoArgs,
        __crux: Option<Box<crux::envelope::Envelope>>,
    ) -> crux::Result<String> {
        let _ = args;
        crux::__private::invoke(ctx, __crux, &<far_away as Function>::METADATA, async move {
            Ok(ctx
                .crux
                .capture()
                .map(|c| c.run_id.to_string())
                .unwrap_or_default())
        })
        .await
    }
}

const FAR_AWAY_PATH: &str = concat!(
    "deep/",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:far"
);

impl Function for far_away {
    type Args = crux::function::NoArgs;
    type Output = String;
    type Context = ActionCtx;
    const METADATA: crux::function::Metadata = crux::function::Metadata {
        kind: crux::function::FunctionKind::Action,
        visibility: crux::function::Visibility::Internal,
        module_path: module_path!(),
        export: "far",
        path: Some(FAR_AWAY_PATH),
        name: None,
        root: None,
        attributes: &[],
        flush: Some(Duration::from_millis(3000)),
    };
    fn call(
        ctx: &ActionCtx,
        args: Self::Args,
        envelope: Option<Box<crux::envelope::Envelope>>,
    ) -> crux::function::BoxFuture<'_, crux::Result<String>> {
        Box::pin(Self::handler(ctx, args, envelope))
    }
}

#[crux::action(name = "reach")]
pub async fn reach(
    ctx: &ActionCtx,
    _args: crux::function::NoArgs,
) -> crux::Result<(String, String)> {
    let here = ctx.crux.capture().map(|c| c.run_id.to_string());
    let there = ctx
        .crux
        .run_action("reach far", far_away, crux::function::NoArgs {})
        .await?;
    Ok((here.unwrap_or_default(), there))
}

/// A hop inside one deployment hands its own envelope to the callee only when its text
/// would decode back to it: a boundary whose `ref` is too long is still written and
/// decoded, refused as from anywhere else, and the callee opens its own run with the
/// decoder's reason in a `security.warning`; the caller's call still succeeds.
#[tokio::test]
async fn a_local_hop_whose_envelope_the_decoder_refuses_is_refused_in_process_too() {
    assert!(FAR_AWAY_PATH.chars().count() > 200);
    let sink = Memory::new();
    let d = Deployment::builder()
        .sink(sink.clone())
        .function(reach)
        .function(far_away)
        .build();
    let (here, there) = d
        .action(reach, crux::function::NoArgs {})
        .await
        .expect("never a failed call");
    assert!(!here.is_empty() && !there.is_empty());
    assert_ne!(here, there, "the callee ran as a fresh root");
    d.flush(Duration::from_secs(5)).await;
    let records = sink.records();
    let warning = records
        .iter()
        .find(|r| r["type"] == "span" && r["primitive"] == "security.warning")
        .unwrap_or_else(|| panic!("no security.warning: {records:#?}"));
    assert_eq!(warning["runId"], there);
    let reason = warning["attributes"]["reason"].as_str().unwrap();
    assert!(reason.contains("boundary.ref"), "{reason:?}");
    assert_eq!(warning["attributes"]["functionRef"], FAR_AWAY_PATH);
    let events: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "span:event")
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        events,
        ["runtime.convex.boundary.requested"],
        "requested, never acknowledged: {records:#?}"
    );
}

#[crux::query]
pub async fn peek(_ctx: &QueryCtx, args: Ask) -> crux::Result<String> {
    Ok(args.question)
}

#[crux::mutation]
pub async fn poke(_ctx: &MutationCtx, args: Ask) -> crux::Result<String> {
    Ok(args.question)
}

#[tokio::test]
async fn untrusted_envelopes_on_queries_and_mutations_are_reported_in_a_warning_run() {
    for path in ["envelopes:peek", "envelopes:poke"] {
        let sink = Memory::new();
        let d = Deployment::builder()
            .sink(sink.clone())
            .function(peek)
            .function(poke)
            .build();
        let args = json!({"question": "q", "__crux": {"v": 9, "observability": victim_context()}});
        let out = d.call(path, args).await.expect("never a failed call");
        assert_eq!(out, "q");
        d.flush(Duration::from_secs(5)).await;
        let records = sink.records();
        assert!(
            records.iter().all(|r| r["runId"] != VICTIM_RUN),
            "{records:#?}"
        );
        let types: Vec<&str> = records
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["run:start", "span", "run:end"],
            "only the warning: {records:#?}"
        );
        assert_eq!(records[0]["rootPrimitive"], "security.warning");
        assert_eq!(records[1]["primitive"], "security.warning");
        assert_eq!(records[1]["attributes"]["functionRef"], path);
        let reason = records[1]["attributes"]["reason"].as_str().unwrap();
        assert!(reason.contains("version"), "{reason}");
        assert_eq!(records[2]["status"], "ok");
    }
}

#[tokio::test]
async fn a_valid_incoming_context_continues_the_named_run() {
    let sink = Memory::new();
    let d = memory_deployment(&sink);
    let args = json!({"question": "q", "__crux": {"v": 1, "observability": victim_context()}});
    let out = d.call("envelopes:answer", args).await.unwrap();
    assert_eq!(out, format!("q@{VICTIM_RUN}"));
    d.flush(Duration::from_secs(5)).await;
    let records = sink.records();
    assert!(
        records.iter().all(|r| r["type"] != "run:start"),
        "no new run"
    );
    assert!(
        records.iter().all(|r| r["type"] != "span:start"),
        "no warning either"
    );
}

#[tokio::test]
async fn reserved_attribute_keys_cannot_be_overridden() {
    let sink = Memory::new();
    let d = memory_deployment(&sink);
    d.action(spoofing, crux::function::NoArgs {}).await.unwrap();
    d.flush(Duration::from_secs(5)).await;
    let start = sink
        .records()
        .into_iter()
        .find(|r| r["type"] == "run:start")
        .unwrap();
    assert_eq!(
        start["attributes"],
        json!({"team": "support", "boundary": "convex.action"})
    );
}

/// A sink whose writes block until the test ends.
struct Hung(Mutex<mpsc::Receiver<()>>);

impl Sink for Hung {
    fn write(&self, _: &[Record]) -> Result<(), SinkError> {
        let _ = self.0.lock().unwrap().recv();
        Ok(())
    }
}

struct Failing;

impl Sink for Failing {
    fn write(&self, _: &[Record]) -> Result<(), SinkError> {
        Err(SinkError::Other("collector is down".into()))
    }
    fn flush(&self) -> Result<(), SinkError> {
        Err(SinkError::Other("collector is down".into()))
    }
}

#[tokio::test]
async fn the_final_flush_is_bounded_and_never_changes_the_result() {
    let (release, blocked) = mpsc::channel::<()>();
    let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = warnings.clone();
    let observer = Observer::builder()
        .sink(Hung(Mutex::new(blocked)))
        .on_warning(move |w| seen.lock().unwrap().push(w.to_owned()))
        .build();
    let d = Deployment::builder()
        .observer(observer)
        .function(quick)
        .build();
    let guard = Duration::from_secs(30); // a hang guard, not a timing assertion
    let ok = tokio::time::timeout(
        guard,
        d.action(
            quick,
            Ask {
                question: "hi".into(),
            },
        ),
    )
    .await
    .expect("a hung sink cannot hang the action");
    assert_eq!(ok.unwrap(), "HI");
    let err = tokio::time::timeout(
        guard,
        d.action(
            quick,
            Ask {
                question: "fail".into(),
            },
        ),
    )
    .await
    .expect("a hung sink cannot hang the action")
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (crux::ErrorKind::Application, "refused")
    );
    assert_eq!(err.data(), Some(&json!({"why": "asked to"})));
    let warnings = warnings.lock().unwrap().clone();
    // The first action's final flush reports its deadline; the sink did not answer for
    // its whole bound, so the circuit breaker opens (one warning) and the second action's
    // flushes return at once, silently.
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("has not answered")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("status=deadline") && w.contains("bound 200 ms")),
        "{warnings:?}"
    );
    drop(release);
}

#[tokio::test]
async fn a_failing_sink_never_changes_the_result() {
    let d = Deployment::builder().sink(Failing).function(quick).build();
    assert_eq!(
        d.action(
            quick,
            Ask {
                question: "hi".into()
            }
        )
        .await
        .unwrap(),
        "HI"
    );
    let err = d
        .action(
            quick,
            Ask {
                question: "fail".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.message(), "refused");
    assert!(
        d.observer().stats().failed > 0,
        "the failures were counted, not raised"
    );
}
