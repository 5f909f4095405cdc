//! What the local deployment guarantees when a handler misbehaves: a panic is a failed
//! call, deep recursion and deeply nested values fail with clear errors instead of
//! aborting the process, and every kind has an execution limit.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crux::ErrorKind;
use crux::local::Deployment;
use crux::prelude::*;
use crux::sink::Memory;
use serde_json::{Value, json};

async fn settled(d: &Deployment, sink: &Memory) -> Vec<Value> {
    d.flush(Duration::from_secs(5)).await;
    sink.records()
}

fn of_type<'a>(records: &'a [Value], ty: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == ty).collect()
}

// ---------------------------------------------------------------------------------------
// Item 2: a panic is a failed call

#[crux::action]
pub async fn panicking_child(_ctx: &ActionCtx) -> crux::Result<u32> {
    panic!("the model returned nothing");
}

#[crux::action(name = "panicking parent")]
pub async fn panicking_parent(ctx: &ActionCtx) -> crux::Result<u32> {
    ctx.crux
        .run_action("call child", panicking_child, NoArgs {})
        .await
}

#[crux::mutation]
pub async fn panicking_write(ctx: &MutationCtx) -> crux::Result<()> {
    ctx.db.insert("notes", json!({"text": "half done"})).await?;
    panic!("{}", "x".repeat(100_000));
}

#[crux::query]
pub async fn count_notes(ctx: &QueryCtx) -> crux::Result<usize> {
    Ok(ctx.db.query("notes").collect().await?.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_a_failed_call_recorded_as_an_error() {
    let sink = Memory::new();
    let d = Deployment::builder()
        .functions((panicking_parent, panicking_child))
        .sink(sink.clone())
        .build();
    let err = d.action(panicking_parent, NoArgs {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(
        err.message().contains("panicking_child")
            && err.message().contains("the model returned nothing"),
        "{err}"
    );

    let records = settled(&d, &sink).await;
    let run_end = of_type(&records, "run:end");
    assert_eq!(run_end.len(), 1, "{records:#?}");
    assert_eq!(run_end[0]["status"], "error", "{:#?}", run_end[0]);
    let boundary = records
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == "call child")
        .expect("boundary span");
    let end = records
        .iter()
        .find(|r| r["type"] == "span:end" && r["spanId"] == boundary["spanId"])
        .expect("boundary ended");
    assert_eq!(end["status"], "error", "{end:#?}");
    assert!(
        end.to_string().contains("the model returned nothing"),
        "{end}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "span:event" && r["name"] == "runtime.convex.boundary.failed"),
        "a failed acknowledgement"
    );
    assert!(
        !records
            .iter()
            .any(|r| r.to_string().contains("crux.dropped")),
        "{records:#?}"
    );
}

#[tokio::test]
async fn a_panicking_mutation_rolls_back_with_a_bounded_message() {
    let d = Deployment::builder()
        .functions((panicking_write, count_notes))
        .build();
    let err = d.mutation(panicking_write, NoArgs {}).await.unwrap_err();
    assert!(
        err.message()
            .starts_with("Uncaught panic in 'limits:panicking_write': xxx"),
        "{}",
        &err.message()[..80]
    );
    assert!(
        err.message().len() < 5_000,
        "bounded: {} bytes",
        err.message().len()
    );
    assert!(err.message().contains("… [truncated "), "the cut is marked");
    assert_eq!(
        d.query(count_notes, NoArgs {}).await.unwrap(),
        0,
        "rolled back"
    );
}

// ---------------------------------------------------------------------------------------
// Item 3: deep recursion of calls

#[derive(Serialize, Deserialize)]
pub struct Levels {
    pub left: u32,
}

#[crux::action]
pub async fn recurse(ctx: &ActionCtx, args: Levels) -> crux::Result<u32> {
    if args.left == 0 {
        return Ok(0);
    }
    let below = Levels {
        left: args.left - 1,
    };
    Ok(ctx.crux.run_action("down", recurse, below).await? + 1)
}

#[crux::action]
pub async fn recurse_raw(ctx: &ActionCtx, args: Levels) -> crux::Result<u32> {
    if args.left == 0 {
        return Ok(0);
    }
    let below = Levels {
        left: args.left - 1,
    };
    Ok(ctx.run_action(recurse_raw, below).await? + 1)
}

static QUERY_LEVELS: AtomicU32 = AtomicU32::new(0);

#[crux::query]
pub async fn recurse_query(ctx: &QueryCtx, args: Levels) -> crux::Result<u32> {
    QUERY_LEVELS.fetch_add(1, Ordering::SeqCst);
    if args.left == 0 {
        return Ok(0);
    }
    let below = Levels {
        left: args.left - 1,
    };
    Ok(ctx.crux.run_query("down", recurse_query, below).await? + 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn recursion_200_deep_works_on_a_default_worker() {
    let sink = Memory::new();
    let d = Deployment::builder()
        .functions((recurse, recurse_raw))
        .sink(sink.clone())
        .build();
    // On a worker thread (2 MiB of stack), not the test's own thread.
    let worker = d.clone();
    let depths = tokio::spawn(async move {
        let observed = worker.action(recurse, Levels { left: 200 }).await;
        let raw = worker.action(recurse_raw, Levels { left: 200 }).await;
        (observed, raw)
    })
    .await
    .unwrap();
    assert_eq!(depths.0.unwrap(), 200);
    assert_eq!(depths.1.unwrap(), 200);
    let records = settled(&d, &sink).await;
    let ends = of_type(&records, "run:end");
    assert!(ends.iter().all(|e| e["status"] == "ok"), "{ends:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_past_the_depth_limit_fails_clearly() {
    let d = Deployment::builder()
        .functions((recurse, recurse_query))
        .max_call_depth(20)
        .build();
    let worker = d.clone();
    let (action, query) = tokio::spawn(async move {
        let action = worker.action(recurse, Levels { left: 1_000_000 }).await;
        let query = worker
            .query(recurse_query, Levels { left: 1_000_000 })
            .await;
        (action, query)
    })
    .await
    .unwrap();
    let err = action.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CallDepth, "{err}");
    assert!(
        err.message().contains("'limits:recurse'") && err.message().contains("max_call_depth"),
        "{err}"
    );
    assert_eq!(query.unwrap_err().kind(), ErrorKind::CallDepth);
    assert_eq!(
        QUERY_LEVELS.load(Ordering::SeqCst),
        21,
        "levels 0 to 20 ran"
    );
    // The default allows what a default worker can hold.
    assert_eq!(Deployment::DEFAULT_MAX_CALL_DEPTH, 256);
}

// ---------------------------------------------------------------------------------------
// Item 4: deeply nested values

#[derive(Serialize, Deserialize)]
pub struct Anything {
    pub value: Value,
}

#[crux::action]
pub async fn echo(_ctx: &ActionCtx, args: Anything) -> crux::Result<Value> {
    Ok(args.value)
}

#[derive(Serialize, Deserialize)]
pub struct Nest {
    pub levels: usize,
}

#[crux::action]
pub async fn nest(_ctx: &ActionCtx, args: Nest) -> crux::Result<Value> {
    let mut value = json!(1);
    for _ in 0..args.levels {
        value = json!([value]);
    }
    Ok(value)
}

/// `{"value": v}`, built without `json!` (which would clone `v` recursively).
fn value_arg(value: Value) -> Value {
    let mut fields = serde_json::Map::new();
    fields.insert("value".into(), value);
    Value::Object(fields)
}

/// `[[[...1...]]]`, `levels` arrays deep, built without recursion.
fn nested(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = Value::Array(vec![value]);
    }
    value
}

#[tokio::test]
async fn deeply_nested_arguments_are_a_validation_error() {
    let d = Deployment::builder().functions((echo, nest)).build();
    // Within the default limit: echoed back.
    let ok = d
        .call("limits:echo", json!({"value": nested(60)}))
        .await
        .unwrap();
    assert_eq!(ok, nested(60));
    // 5 000 levels used to abort the process (at about 2 170).
    let err = d
        .call("limits:echo", value_arg(nested(5_000)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ArgumentValidation, "{err}");
    assert!(
        err.message().starts_with("ArgumentValidationError: ")
            && err.message().contains("more than 64 levels")
            && err.message().contains("Path: .value[0][0]"),
        "{err}"
    );
    // A result nested too deep is the function's error.
    let err = d
        .call("limits:nest", json!({"levels": 100}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReturnsValidation, "{err}");
    assert!(err.message().contains("'limits:nest'"), "{err}");
    // The limit is a setting.
    let strict = Deployment::builder()
        .function(echo)
        .max_value_depth(3)
        .build();
    let err = strict
        .call("limits:echo", json!({"value": nested(3)}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ArgumentValidation, "{err}");
    assert!(
        strict
            .call("limits:echo", json!({"value": nested(2)}))
            .await
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------
// Item 5: execution limits

#[crux::action]
pub async fn hangs(_ctx: &ActionCtx) -> crux::Result<()> {
    std::future::pending::<()>().await;
    Ok(())
}

#[crux::action(name = "hang parent")]
pub async fn hang_parent(ctx: &ActionCtx) -> crux::Result<()> {
    ctx.crux.run_action("call hang", hangs, NoArgs {}).await
}

#[crux::query]
pub async fn hanging_query(_ctx: &QueryCtx) -> crux::Result<()> {
    std::future::pending::<()>().await;
    Ok(())
}

#[crux::mutation]
pub async fn hanging_write(ctx: &MutationCtx) -> crux::Result<()> {
    ctx.db.insert("notes", json!({"text": "never"})).await?;
    std::future::pending::<()>().await;
    Ok(())
}

#[crux::mutation]
pub async fn quick_write(ctx: &MutationCtx) -> crux::Result<()> {
    ctx.db.insert("notes", json!({"text": "quick"})).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_action_fails_with_a_timeout_and_the_run_ends_error() {
    let sink = Memory::new();
    let d = Deployment::builder()
        .functions((hang_parent, hangs))
        .action_timeout(Duration::from_millis(200))
        .sink(sink.clone())
        .build();
    let started = Instant::now();
    let err = d.action(hang_parent, NoArgs {}).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.message().contains("'limits:hangs'") && err.message().contains("action_timeout"),
        "the innermost function is named: {err}"
    );
    let records = settled(&d, &sink).await;
    let ends = of_type(&records, "run:end");
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["status"], "error");
    let boundary = records
        .iter()
        .find(|r| r["type"] == "span:start" && r["name"] == "call hang")
        .expect("boundary span");
    let end = records
        .iter()
        .find(|r| r["type"] == "span:end" && r["spanId"] == boundary["spanId"])
        .expect("boundary ended");
    assert_eq!(end["status"], "error", "{end:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_mutation_times_out_and_releases_the_write_lock() {
    let d = Deployment::builder()
        .functions((hanging_write, quick_write, hanging_query, count_notes))
        .mutation_timeout(Duration::from_millis(200))
        .query_timeout(Duration::from_millis(200))
        .build();
    let started = Instant::now();
    let hung = tokio::spawn({
        let d = d.clone();
        async move { d.mutation(hanging_write, NoArgs {}).await }
    });
    // Waits for the lock the hung mutation holds, then gets it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    d.mutation(quick_write, NoArgs {}).await.unwrap();
    let err = hung.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.message().contains("mutation_timeout"), "{err}");
    assert_eq!(
        d.query(count_notes, NoArgs {}).await.unwrap(),
        1,
        "the hung write rolled back"
    );
    let err = d.query(hanging_query, NoArgs {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(Deployment::DEFAULT_MUTATION_TIMEOUT, Duration::from_secs(1));
    assert_eq!(Deployment::DEFAULT_ACTION_TIMEOUT, Duration::from_secs(600));
}
