//! Calls across the deployment's JSON boundary: visibility, argument validation, results
//! and errors, with no observability involved.

use std::sync::atomic::{AtomicUsize, Ordering};

use crux::ErrorKind;
use crux::local::Deployment;
use crux::prelude::*;
use serde_json::json;

static HANDLER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Greet {
    pub thread_id: String,
    pub count: u32,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Greeting {
    pub text: String,
    pub seen_fields: Vec<String>,
}

#[crux::action]
pub async fn greet(_ctx: &ActionCtx, args: Greet) -> crux::Result<Greeting> {
    Ok(Greeting {
        text: format!("{} x{}", args.thread_id, args.count),
        seen_fields: args.tags,
    })
}

/// Only the validation test calls this, so the run counter is its alone.
#[crux::mutation]
pub async fn counted(_ctx: &MutationCtx, args: Greet) -> crux::Result<u32> {
    HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(args.count)
}

#[crux::internal_action]
pub async fn secret(_ctx: &ActionCtx) -> crux::Result<String> {
    Ok("internal".into())
}

#[derive(Serialize, Deserialize)]
pub struct Depth {
    pub depth: u32,
}

#[crux::internal_action]
pub async fn fails_deep(ctx: &ActionCtx, args: Depth) -> crux::Result<String> {
    if args.depth == 0 {
        return Err(Error::application(
            "thread is closed",
            json!({"code": "closed", "n": 3}),
        ));
    }
    ctx.run_action(
        fails_deep,
        Depth {
            depth: args.depth - 1,
        },
    )
    .await
}

#[crux::action]
pub async fn calls_internal(ctx: &ActionCtx) -> crux::Result<String> {
    ctx.run_action(secret, NoArgs {}).await
}

#[crux::action]
pub async fn calls_failing(ctx: &ActionCtx) -> crux::Result<String> {
    ctx.run_action(fails_deep, Depth { depth: 2 }).await
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Ratio {
    pub over: f64,
    pub label: Option<String>,
}

/// `1 / over` and `none`'s `label`: NaN or ±∞ for some `over`.
#[crux::query]
pub async fn ratios(_ctx: &QueryCtx, args: Ratio) -> crux::Result<Vec<Ratio>> {
    Ok(vec![
        Ratio {
            over: 1.0,
            label: None,
        },
        Ratio {
            over: 1.0 / args.over,
            label: args.label,
        },
    ])
}

#[crux::action]
pub async fn sends_nan(ctx: &ActionCtx) -> crux::Result<Vec<Ratio>> {
    ctx.run_query(
        ratios,
        Ratio {
            over: f64::NAN,
            label: None,
        },
    )
    .await
}

fn deployment() -> Deployment {
    Deployment::builder()
        .function(ratios)
        .function(sends_nan)
        .function(greet)
        .function(counted)
        .function(secret)
        .function(fails_deep)
        .function(calls_internal)
        .function(calls_failing)
        .build()
}

#[tokio::test]
async fn typed_and_raw_calls_cross_json() {
    let d = deployment();
    let typed = d
        .action(
            greet,
            Greet {
                thread_id: "t1".into(),
                count: 2,
                tags: vec!["a".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        typed,
        Greeting {
            text: "t1 x2".into(),
            seen_fields: vec!["a".into()]
        }
    );
    let raw = d
        .call("dispatch:greet", json!({"threadId": "t2", "count": 1}))
        .await
        .unwrap();
    assert_eq!(raw, json!({"text": "t2 x1", "seenFields": []}));
}

#[tokio::test]
async fn internal_and_unknown_functions_are_not_found_from_outside() {
    let d = deployment();
    let err = d.call("dispatch:secret", json!({})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.message(),
        "Could not find public function for 'dispatch:secret'"
    );
    let err = d.call("dispatch:nope", json!({})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A caller's megabyte of path is not echoed back whole.
    let huge = "x".repeat(1 << 20);
    let err = d.call(&huge, json!({})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().len() < 512, "{}", err.message().len());
    assert!(err.message().contains("[truncated"), "{}", err.message());
    // Other functions may call internal ones.
    assert_eq!(
        d.action(calls_internal, NoArgs {}).await.unwrap(),
        "internal"
    );
}

#[tokio::test]
async fn bad_arguments_are_rejected_before_the_handler_naming_the_field() {
    let d = deployment();
    let before = HANDLER_RUNS.load(Ordering::SeqCst);
    let cases = [
        (json!({"threadId": 1, "count": 1}), ".threadId"),
        (json!({"threadId": "t", "count": -1}), ".count"),
        (json!({"threadId": "t"}), "`count`"),
        (
            json!({"threadId": "t", "count": 1, "extra": true}),
            "`extra`",
        ),
        (
            json!({"threadId": "t", "count": 1, "tags": [1]}),
            ".tags[0]",
        ),
        (json!("not an object"), "must be an object"),
    ];
    for (args, field) in cases {
        let err = d.call("dispatch:counted", args.clone()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentValidation, "{args}");
        assert!(
            err.message().starts_with("ArgumentValidationError: "),
            "{err:?}"
        );
        assert!(
            err.message().contains(field),
            "{args}: {} should name {field}",
            err.message()
        );
    }
    assert_eq!(
        HANDLER_RUNS.load(Ordering::SeqCst),
        before,
        "no handler ran"
    );
    d.call("dispatch:counted", json!({"threadId": "t", "count": 1}))
        .await
        .unwrap();
    assert_eq!(
        HANDLER_RUNS.load(Ordering::SeqCst),
        before + 1,
        "the counter counts"
    );
}

#[tokio::test]
async fn crux_rides_in_the_args_and_is_stripped() {
    let d = deployment();
    // A valid envelope is accepted even though `Greet` has no `__crux` field ...
    let out = d
        .call(
            "dispatch:greet",
            json!({"threadId": "t", "count": 1, "__crux": {"v": 1}}),
        )
        .await
        .unwrap();
    assert_eq!(out["text"], "t x1");
    // ... and so is an invalid one: it is ignored, never a failed call.
    let out = d
        .call(
            "dispatch:greet",
            json!({"threadId": "t", "count": 1, "__crux": "garbage"}),
        )
        .await
        .unwrap();
    assert_eq!(out["text"], "t x1");
}

#[tokio::test]
async fn errors_cross_every_hop_unchanged() {
    let d = deployment();
    let err = d.action(calls_failing, NoArgs {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Application);
    assert_eq!(err.message(), "thread is closed");
    assert_eq!(err.data(), Some(&json!({"code": "closed", "n": 3})));
}

/// JSON has no NaN or ±∞ and `serde_json` writes them as `null`: a result or arguments
/// holding one are refused, naming where, never delivered with a `null` in its place.
#[tokio::test]
async fn a_nan_or_infinity_is_refused_not_turned_into_null() {
    let d = deployment();
    let fine = d
        .query(
            ratios,
            Ratio {
                over: 4.0,
                label: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(fine[1].over, 0.25, "nulls of their own pass");
    let err = d
        .query(
            ratios,
            Ratio {
                over: 0.0,
                label: Some("zero".into()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReturnsValidation, "{err:?}");
    assert!(
        err.message().contains("inf has no JSON form") && err.message().ends_with("Path: [1].over"),
        "{err:?}"
    );
    let raw = d
        .call("dispatch:ratios", json!({"over": -0.0, "label": null}))
        .await
        .unwrap_err();
    assert!(raw.message().contains("-inf has no JSON form"), "{raw:?}");

    let err = d.action(sends_nan, NoArgs {}).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ArgumentValidation, "{err:?}");
    assert!(
        err.message().contains("NaN has no JSON form") && err.message().ends_with("Path: .over"),
        "{err:?}"
    );
}
