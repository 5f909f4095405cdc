//! Huge texts never make huge records: every place an error message, a warning reason or
//! an input value reaches a record is capped (`crux_runtime::wire::cap_text`), and the
//! caller's result is unchanged (a handler's error reaches its caller whole; a host's
//! argument-validation message, which echoes input, is itself capped).

use std::time::Duration;

use crux::ErrorKind;
use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;
use crux_runtime::wire::{MAX_ERROR_MESSAGE, MAX_ERROR_RAW, MAX_WARNING_REASON};
use serde_json::{Value, json};

const TEN_MB: usize = 10 << 20;

#[derive(Serialize, Deserialize)]
pub struct Ask {
    pub question: String,
}

/// Fails with a 10 MB message and 10 MB of data.
#[crux::action(name = "fails big")]
pub async fn fails_big(_ctx: &ActionCtx, args: Ask) -> crux::Result<String> {
    let huge = "x".repeat(TEN_MB);
    Err(Error::application(
        format!("{}{huge}", args.question),
        json!({ "blob": huge }),
    ))
}

/// Calls `fails_big` across a boundary and returns its error.
#[crux::action(name = "calls big")]
pub async fn calls_big(ctx: &ActionCtx, args: Ask) -> crux::Result<String> {
    ctx.crux.run_action("fail big", fails_big, args).await
}

#[derive(Serialize, Deserialize)]
pub struct Count {
    pub n: u32,
}

#[crux::action]
pub async fn count(_ctx: &ActionCtx, args: Count) -> crux::Result<u32> {
    Ok(args.n)
}

#[crux::action(name = "echo")]
pub async fn echo(_ctx: &ActionCtx, args: Ask) -> crux::Result<String> {
    Ok(args.question)
}

fn deployment(sink: &Memory) -> Deployment {
    Deployment::builder()
        .sink(sink.clone())
        .function(fails_big)
        .function(calls_big)
        .function(echo)
        .function(count)
        .build()
}

/// Total serialized size of the records, asserting no single one is large.
fn total_bytes(records: &[Value]) -> usize {
    records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap().len())
        .sum()
}

fn of_type<'a>(records: &'a [Value], t: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == t).collect()
}

fn assert_capped(text: &str, max: usize) {
    assert!(text.len() <= max, "{} bytes over {max}", text.len());
    assert!(
        text.ends_with(" bytes]") && text.contains("… [truncated "),
        "the cut is marked: {}",
        &text[text.len().saturating_sub(60)..]
    );
}

#[tokio::test]
async fn a_ten_megabyte_error_makes_bounded_records_and_reaches_the_caller_whole() {
    let sink = Memory::new();
    let d = deployment(&sink);
    let err = d
        .action(
            calls_big,
            Ask {
                question: "q".into(),
            },
        )
        .await
        .unwrap_err();
    // The caller's error is the callee's, untouched: observability never changes results.
    assert_eq!(err.kind(), ErrorKind::Application);
    assert_eq!(err.message().len(), TEN_MB + 1);
    assert_eq!(err.data().unwrap()["blob"].as_str().unwrap().len(), TEN_MB);
    d.flush(Duration::from_secs(10)).await;
    let records = sink.records();

    let exception = of_type(&records, "span:event")
        .into_iter()
        .find(|r| r["name"] == "exception")
        .expect("an exception event");
    assert_capped(
        exception["attributes"]["exception.message"]
            .as_str()
            .unwrap(),
        MAX_ERROR_MESSAGE,
    );
    let raw = of_type(&records, "artifact")[0];
    assert_eq!(raw["kind"], "error.raw");
    assert_capped(raw["preview"].as_str().unwrap(), MAX_ERROR_RAW);
    assert!(
        raw["sizeBytes"].as_u64().unwrap() > 2 * TEN_MB as u64,
        "the full size"
    );
    let failed = of_type(&records, "span:event")
        .into_iter()
        .find(|r| r["name"] == "runtime.convex.boundary.failed")
        .unwrap_or_else(|| panic!("a failed acknowledgement"));
    assert_capped(
        failed["attributes"]["error"]["message"].as_str().unwrap(),
        MAX_ERROR_MESSAGE,
    );
    let span_end = of_type(&records, "span:end")
        .into_iter()
        .find(|r| r["status"] == "error")
        .expect("the boundary span failed");
    assert_capped(
        span_end["error"]["message"].as_str().unwrap(),
        MAX_ERROR_MESSAGE,
    );
    let run_end = of_type(&records, "run:end")[0];
    assert_eq!(run_end["status"], "error");
    assert_capped(
        run_end["error"]["message"].as_str().unwrap(),
        MAX_ERROR_MESSAGE,
    );
    let total = total_bytes(&records);
    assert!(total < 256 * 1024, "{total} bytes of records");
}

#[tokio::test]
async fn a_ten_megabyte_key_in_a_rejected_envelope_makes_a_bounded_warning() {
    let sink = Memory::new();
    let d = deployment(&sink);
    let huge_key = "k".repeat(TEN_MB);
    let envelope = json!({"v": 1, "observability": {
        "runId": "run_0123456789abcdef01234567",
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "segmentId": "seg_0123456789abcdef01234567",
        "spanStack": [],
        "correlators": {"metadata": {huge_key: "v"}}
    }});
    let out = d
        .call(
            "text_caps:echo",
            json!({"question": "q", "__crux": envelope}),
        )
        .await
        .expect("an untrusted envelope never fails a call");
    assert_eq!(out, "q");
    d.flush(Duration::from_secs(10)).await;
    let records = sink.records();
    let warning = records
        .iter()
        .find(|r| r["primitive"] == "security.warning")
        .expect("a security.warning");
    let reason = warning["attributes"]["reason"].as_str().unwrap();
    assert_capped(reason, MAX_WARNING_REASON);
    assert!(
        reason.contains("observability.correlators.metadata.kkk"),
        "{reason:.80}"
    );
    let total = total_bytes(&records);
    assert!(total < 16 * 1024, "{total} bytes of records");
}

#[tokio::test]
async fn argument_errors_echoing_ten_megabytes_are_capped() {
    let sink = Memory::new();
    let d = deployment(&sink);
    let huge = "v".repeat(TEN_MB);
    for args in [
        json!({"question": "q", huge.clone(): 1}),
        json!({"question": {"nested": huge.clone()}, "other": 1}),
        json!({"question": "q", "__crux": {"v": 1}, "x": huge.clone(), huge.clone(): huge.clone()}),
    ] {
        let err = d.call("text_caps:echo", args).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentValidation);
        assert!(err.message().starts_with("ArgumentValidationError: "));
        assert!(
            err.message().len() <= MAX_ERROR_MESSAGE,
            "{}",
            err.message().len()
        );
    }
    // serde echoes a wrongly typed value in full: the message keeps its start, cut and
    // marked.
    let err = d
        .call("text_caps:count", json!({ "n": huge }))
        .await
        .unwrap_err();
    assert!(err.message().contains("Path: .n"), "{:.200}", err.message());
    assert!(err.message().contains("vvvv"), "{:.200}", err.message());
    assert_capped(err.message(), MAX_ERROR_MESSAGE);
    d.flush(Duration::from_secs(10)).await;
    let total = total_bytes(&sink.records());
    assert!(total < 16 * 1024, "{total} bytes of records");
}
