//! The `__crux` envelope and the propagation carrier: TypeScript-shaped fixtures, round
//! trips, and a table of hostile inputs each with the error it must produce.

use std::collections::HashMap;

use crux_runtime::carrier::{Carrier, CarrierError};
use crux_runtime::envelope::{BoundaryKind, Envelope};
use crux_runtime::ids::{IdErrorReason, SpanId};
use crux_runtime::wire::Reason;
use serde_json::{Value, json};

const RUN: &str = "run_0123456789abcdef01234567";
const OP: &str = "run_89abcdef0123456789abcdef";
const SEG: &str = "seg_fedcba9876543210fedcba98";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const S1: &str = "00f067aa0ba902b7";
const S2: &str = "b7ad6b7169203331";

/// What `ctx.crux.runAction` sends in TypeScript v4 (reference §1.1, §3.1).
fn ts_action_envelope() -> Value {
    json!({
        "v": 1,
        "observability": {
            "runId": RUN,
            "operationId": OP,
            "traceId": TRACE,
            "segmentId": SEG,
            "startedAtMs": 1767323045678u64,
            "correlators": {"sessionId": "sess-42", "userId": "user-7", "metadata": {"tier": "pro"}},
            "deployment": {"projectId": "p1", "manifestId": "m1", "deploymentId": "d1"},
            "spanStack": [S1, S2],
            "currentSpanId": S2
        },
        "boundary": {
            "id": S2,
            "spanId": S2,
            "kind": "action",
            "label": "plan research",
            "ref": "research:plan",
            "parentSpanStack": [S1, S2],
            "leaseExpiresAt": "2026-01-02T03:15:05.678Z"
        }
    })
}

#[test]
fn typescript_action_envelope_decodes_field_for_field() {
    let env = Envelope::decode(&ts_action_envelope()).unwrap();
    let ctx = env.observability.as_ref().unwrap();
    assert_eq!(ctx.run_id.to_string(), RUN);
    assert_eq!(ctx.operation_id.to_string(), OP);
    assert_eq!(ctx.trace_id.to_string(), TRACE);
    assert_eq!(ctx.segment_id.to_string(), SEG);
    assert_eq!(ctx.started_at_ms, Some(1767323045678));
    let c = ctx.correlators.as_ref().unwrap();
    assert_eq!(c.session_id.as_deref(), Some("sess-42"));
    assert_eq!(c.metadata["tier"], "pro");
    assert_eq!(ctx.deployment.as_ref().unwrap().deployment_id, "d1");
    assert_eq!(
        ctx.span_stack,
        vec![S1.parse::<SpanId>().unwrap(), S2.parse().unwrap()]
    );
    let b = env.boundary.as_ref().unwrap();
    assert_eq!(b.kind, BoundaryKind::Action);
    assert_eq!(b.function_ref, "research:plan");
    assert_eq!(
        b.lease_expires_at.map(|lease| lease.to_string()).as_deref(),
        Some("2026-01-02T03:15:05.678Z")
    );
}

#[test]
fn envelopes_round_trip_byte_for_byte() {
    let fixture = ts_action_envelope();
    let env = Envelope::decode(&fixture).unwrap();
    assert_eq!(env.to_value(), fixture);
    let text = serde_json::to_string(&env).unwrap();
    let again: Envelope = serde_json::from_str(&text).unwrap();
    assert_eq!(again, env);
}

#[test]
fn to_value_is_the_serde_value_for_every_field() {
    // `to_value` builds the value by hand for speed; it must stay what serde writes.
    let full = set(
        set(
            ts_action_envelope(),
            "/observability/parentRunId",
            json!(OP),
        ),
        "/observability/triggeredBySpanId",
        json!(S1),
    );
    let sparse = remove(
        remove(
            remove(ts_action_envelope(), "/observability/correlators"),
            "/boundary/leaseExpiresAt",
        ),
        "/observability/startedAtMs",
    );
    for fixture in [full, sparse, json!({"v": 1})] {
        let env = Envelope::decode(&fixture).unwrap();
        assert_eq!(env.to_value(), serde_json::to_value(&env).unwrap());
        assert_eq!(env.to_value(), fixture);
        assert_eq!(env.to_json_string(), serde_json::to_string(&env).unwrap());
    }
    // Labels are the caller's text: quotes, backslashes, non-ASCII and escapes survive.
    for label in ["say \"hi\" \\ now", "données → ok", "tab\there"] {
        let mut env = Envelope::decode(&ts_action_envelope()).unwrap();
        env.boundary.as_mut().unwrap().label = label.into();
        let text = env.to_json_string();
        assert_eq!(text, serde_json::to_string(&env).unwrap());
        let back = Envelope::decode_str(&text);
        if label.contains('\t') {
            // A control character is refused by the strict decoder, as from any writer.
            assert!(back.is_err());
        } else {
            assert_eq!(back.unwrap(), env);
        }
    }
}

#[test]
fn minimal_and_detached_typescript_shapes_are_accepted() {
    // `{v: 1, observability: undefined}` arrives as `{v: 1}`; `null` means the same.
    for detached in [json!({"v": 1}), json!({"v": 1, "observability": null})] {
        let env = Envelope::decode(&detached).unwrap();
        assert_eq!(env.observability, None);
        assert_eq!(env.boundary, None);
    }
    assert_eq!(Envelope::new(None).to_value(), json!({"v": 1}));
    // A pre-v4 writer sends no operationId: the run is its own operation.
    let v2 = json!({"v": 1, "observability": {
        "runId": RUN, "traceId": TRACE, "segmentId": SEG, "spanStack": []
    }});
    let ctx = Envelope::decode(&v2).unwrap().observability.unwrap();
    assert_eq!(ctx.operation_id, ctx.run_id);
    assert_eq!(ctx.current_span_id, None);
    // Unknown keys from a newer writer are ignored.
    let newer = json!({"v": 1, "futureField": {"x": 1}, "observability": {
        "runId": RUN, "traceId": TRACE, "segmentId": SEG, "spanStack": [S1], "hint": "x"
    }});
    assert!(Envelope::decode(&newer).is_ok());
}

fn set(mut v: Value, pointer: &str, new: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut v
    } else {
        v.pointer_mut(parent).unwrap()
    };
    match target {
        Value::Object(m) => {
            m.insert(key.to_owned(), new);
        }
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = new,
        _ => panic!("bad pointer {pointer}"),
    }
    v
}

fn remove(mut v: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut v
    } else {
        v.pointer_mut(parent).unwrap()
    };
    target.as_object_mut().unwrap().remove(key);
    v
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!("x"), |acc, _| json!([acc]))
}

#[derive(Debug)]
enum Want {
    Missing,
    WrongType,
    TooLong,
    TooMany,
    Empty,
    Control,
    Deep,
    Id(IdErrorReason),
    Version,
    Invalid,
}

fn matches(reason: &Reason, want: &Want) -> bool {
    match (reason, want) {
        (Reason::Missing, Want::Missing)
        | (Reason::WrongType { .. }, Want::WrongType)
        | (Reason::TooLong { .. }, Want::TooLong)
        | (Reason::TooMany { .. }, Want::TooMany)
        | (Reason::Empty, Want::Empty)
        | (Reason::ControlCharacter, Want::Control)
        | (Reason::TooDeep { .. }, Want::Deep)
        | (Reason::UnsupportedVersion { .. }, Want::Version)
        | (Reason::Invalid(_), Want::Invalid) => true,
        (Reason::Id(e), Want::Id(r)) => e.reason == *r,
        _ => false,
    }
}

#[test]
fn hostile_envelopes_are_rejected_with_field_and_reason() {
    let ok = ts_action_envelope();
    let long = "x".repeat(201);
    let many_spans: Vec<Value> = (1..=129).map(|i| json!(format!("{i:016x}"))).collect();
    let many_keys: serde_json::Map<String, Value> =
        (0..40).map(|i| (format!("k{i}"), json!(1))).collect();
    let many_meta: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(&str, Value, &str, Want)> = vec![
        ("not an object", json!("x"), "", Want::WrongType),
        ("an array", json!([1]), "", Want::WrongType),
        ("no version", remove(ok.clone(), "/v"), "v", Want::Missing),
        (
            "version 2",
            set(ok.clone(), "/v", json!(2)),
            "v",
            Want::Version,
        ),
        (
            "version 0",
            set(ok.clone(), "/v", json!(0)),
            "v",
            Want::Version,
        ),
        (
            "version 1.5",
            set(ok.clone(), "/v", json!(1.5)),
            "v",
            Want::Version,
        ),
        (
            "version as string",
            set(ok.clone(), "/v", json!("1")),
            "v",
            Want::WrongType,
        ),
        (
            "observability a string",
            set(ok.clone(), "/observability", json!("ctx")),
            "observability",
            Want::WrongType,
        ),
        (
            "missing runId",
            remove(ok.clone(), "/observability/runId"),
            "observability.runId",
            Want::Missing,
        ),
        (
            "empty runId",
            set(ok.clone(), "/observability/runId", json!("")),
            "observability.runId",
            Want::Id(IdErrorReason::MissingPrefix("run_")),
        ),
        (
            "runId wrong prefix",
            set(ok.clone(), "/observability/runId", json!(SEG)),
            "observability.runId",
            Want::Id(IdErrorReason::MissingPrefix("run_")),
        ),
        (
            "runId short",
            set(ok.clone(), "/observability/runId", json!("run_abc")),
            "observability.runId",
            Want::Id(IdErrorReason::Length {
                expected: 24,
                found: 3,
            }),
        ),
        (
            "runId uppercase",
            set(
                ok.clone(),
                "/observability/runId",
                json!("run_0123456789ABCDEF01234567"),
            ),
            "observability.runId",
            Want::Id(IdErrorReason::NotHex),
        ),
        (
            "runId all zero",
            set(
                ok.clone(),
                "/observability/runId",
                json!("run_000000000000000000000000"),
            ),
            "observability.runId",
            Want::Id(IdErrorReason::AllZero),
        ),
        (
            "runId a number",
            set(ok.clone(), "/observability/runId", json!(12)),
            "observability.runId",
            Want::WrongType,
        ),
        (
            "operationId bad hex",
            set(
                ok.clone(),
                "/observability/operationId",
                json!("run_0123456789abcdef0123456g"),
            ),
            "observability.operationId",
            Want::Id(IdErrorReason::NotHex),
        ),
        (
            "traceId all zero",
            set(
                ok.clone(),
                "/observability/traceId",
                json!("00000000000000000000000000000000"),
            ),
            "observability.traceId",
            Want::Id(IdErrorReason::AllZero),
        ),
        (
            "traceId 33 digits",
            set(
                ok.clone(),
                "/observability/traceId",
                json!(format!("{TRACE}0")),
            ),
            "observability.traceId",
            Want::Id(IdErrorReason::Length {
                expected: 32,
                found: 33,
            }),
        ),
        (
            "traceId oversized",
            set(
                ok.clone(),
                "/observability/traceId",
                json!("a".repeat(100_000)),
            ),
            "observability.traceId",
            Want::TooLong,
        ),
        (
            "segmentId missing",
            remove(ok.clone(), "/observability/segmentId"),
            "observability.segmentId",
            Want::Missing,
        ),
        (
            "spanStack missing",
            remove(ok.clone(), "/observability/spanStack"),
            "observability.spanStack",
            Want::Missing,
        ),
        (
            "spanStack an object",
            set(ok.clone(), "/observability/spanStack", json!({})),
            "observability.spanStack",
            Want::WrongType,
        ),
        (
            "span id all zero",
            set(
                ok.clone(),
                "/observability/spanStack/1",
                json!("0000000000000000"),
            ),
            "observability.spanStack[1]",
            Want::Id(IdErrorReason::AllZero),
        ),
        (
            "span id a number",
            set(ok.clone(), "/observability/spanStack/0", json!(7)),
            "observability.spanStack[0]",
            Want::WrongType,
        ),
        (
            "span stack too long",
            set(ok.clone(), "/observability/spanStack", json!(many_spans)),
            "observability.spanStack",
            Want::TooMany,
        ),
        (
            "currentSpanId not the top",
            set(ok.clone(), "/observability/currentSpanId", json!(S1)),
            "observability.currentSpanId",
            Want::Invalid,
        ),
        (
            "startedAtMs negative",
            set(ok.clone(), "/observability/startedAtMs", json!(-1)),
            "observability.startedAtMs",
            Want::WrongType,
        ),
        (
            "sessionId too long",
            set(
                ok.clone(),
                "/observability/correlators/sessionId",
                json!(long),
            ),
            "observability.correlators.sessionId",
            Want::TooLong,
        ),
        (
            "sessionId empty",
            set(
                ok.clone(),
                "/observability/correlators/sessionId",
                json!(""),
            ),
            "observability.correlators.sessionId",
            Want::Empty,
        ),
        (
            "userId with newline",
            set(
                ok.clone(),
                "/observability/correlators/userId",
                json!("alice\nINJECTED"),
            ),
            "observability.correlators.userId",
            Want::Control,
        ),
        (
            "userId with NUL",
            set(
                ok.clone(),
                "/observability/correlators/userId",
                json!("a\u{0}b"),
            ),
            "observability.correlators.userId",
            Want::Control,
        ),
        (
            "too much metadata",
            set(
                ok.clone(),
                "/observability/correlators/metadata",
                json!(many_meta),
            ),
            "observability.correlators.metadata",
            Want::TooMany,
        ),
        (
            "metadata not a string",
            set(
                ok.clone(),
                "/observability/correlators/metadata/tier",
                json!(3),
            ),
            "observability.correlators.metadata.tier",
            Want::WrongType,
        ),
        (
            "deployment id empty",
            set(ok.clone(), "/observability/deployment/projectId", json!("")),
            "observability.deployment.projectId",
            Want::Empty,
        ),
        (
            "too many keys",
            set(ok.clone(), "/observability", json!(many_keys)),
            "observability",
            Want::TooMany,
        ),
        (
            "deep nesting",
            set(ok.clone(), "/junk", nested(10)),
            "",
            Want::Deep,
        ),
        (
            "boundary id differs",
            set(ok.clone(), "/boundary/id", json!(S1)),
            "boundary.id",
            Want::Invalid,
        ),
        (
            "boundary kind unknown",
            set(ok.clone(), "/boundary/kind", json!("query")),
            "boundary.kind",
            Want::Invalid,
        ),
        (
            "boundary label empty",
            set(ok.clone(), "/boundary/label", json!("")),
            "boundary.label",
            Want::Empty,
        ),
        (
            "boundary label with tab",
            set(ok.clone(), "/boundary/label", json!("a\tb")),
            "boundary.label",
            Want::Control,
        ),
        (
            "boundary ref missing",
            remove(ok.clone(), "/boundary/ref"),
            "boundary.ref",
            Want::Missing,
        ),
        (
            "boundary ref oversized",
            set(ok.clone(), "/boundary/ref", json!(long)),
            "boundary.ref",
            Want::TooLong,
        ),
        (
            "lease not ISO",
            set(ok.clone(), "/boundary/leaseExpiresAt", json!("tomorrow")),
            "boundary.leaseExpiresAt",
            Want::Invalid,
        ),
        (
            "lease not a calendar day",
            set(
                ok.clone(),
                "/boundary/leaseExpiresAt",
                json!("2026-02-30T00:00:00.000Z"),
            ),
            "boundary.leaseExpiresAt",
            Want::Invalid,
        ),
        (
            "lease with an offset instead of Z",
            set(
                ok.clone(),
                "/boundary/leaseExpiresAt",
                json!("2026-01-02T03:04:05.678+00:00"),
            ),
            "boundary.leaseExpiresAt",
            Want::Invalid,
        ),
        (
            "lease past year 9999",
            set(
                ok.clone(),
                "/boundary/leaseExpiresAt",
                json!("+010000-01-01T00:00:00.000Z"),
            ),
            "boundary.leaseExpiresAt",
            Want::Invalid,
        ),
        (
            "lease at hour 24",
            set(
                ok.clone(),
                "/boundary/leaseExpiresAt",
                json!("2026-01-02T24:00:00.000Z"),
            ),
            "boundary.leaseExpiresAt",
            Want::Invalid,
        ),
        (
            "lease a number",
            set(
                ok.clone(),
                "/boundary/leaseExpiresAt",
                json!(1767323045678u64),
            ),
            "boundary.leaseExpiresAt",
            Want::WrongType,
        ),
        (
            "parent stack bad id",
            set(ok.clone(), "/boundary/parentSpanStack/0", json!("xyz")),
            "boundary.parentSpanStack[0]",
            Want::Id(IdErrorReason::Length {
                expected: 16,
                found: 3,
            }),
        ),
    ];
    assert!(cases.len() >= 30);
    for (what, input, path, want) in cases {
        let err = Envelope::decode(&input).expect_err(what);
        if path == "boundary.leaseExpiresAt" {
            // The lease is kept as a time: every decoder refuses what it cannot write back.
            let text = input.to_string();
            let from_text = Envelope::decode_str(&text).expect_err(what);
            assert_eq!(from_text.to_string(), err.to_string(), "{what}");
            let boxed = Envelope::decode_str_boxed(&text).expect_err(what);
            assert_eq!(boxed.to_string(), err.to_string(), "{what}");
        }
        assert_eq!(err.path(), path, "{what}: {err}");
        assert!(
            matches(err.reason(), &want),
            "{what}: got {err}, want {want:?}"
        );
        assert!(
            err.to_string().starts_with("invalid `__crux` envelope: "),
            "{what}"
        );
    }
}

#[test]
fn text_decoding_matches_value_decoding() {
    let fixture = ts_action_envelope();
    let text = fixture.to_string();
    assert_eq!(Envelope::decode_str(&text), Envelope::decode(&fixture));
    // Unknown keys and escapes take the general path and still agree.
    let mut with_extra = fixture.clone();
    with_extra["observability"]["hint"] = json!("x");
    with_extra["boundary"]["label"] = json!("plan \u{e9} \"research\"");
    assert_eq!(
        Envelope::decode_str(&with_extra.to_string()).unwrap(),
        Envelope::decode(&with_extra).unwrap()
    );
    let err = Envelope::decode_str("{\"v\": 1,").unwrap_err();
    assert_eq!(err.path(), "");
    assert_eq!(
        err.to_string(),
        "invalid `__crux` envelope: the value is not valid JSON"
    );
}

#[test]
fn error_messages_name_the_field_and_the_fix() {
    let bad = set(
        ts_action_envelope(),
        "/observability/spanStack/1",
        json!("0000000000000000"),
    );
    assert_eq!(
        Envelope::decode(&bad).unwrap_err().to_string(),
        "invalid `__crux` envelope: `observability.spanStack[1]` invalid span id: all-zero ids are invalid"
    );
}

fn ts_carrier() -> Value {
    json!({
        "traceparent": format!("00-{TRACE}-{S1}-01"),
        "tracestate": "vendor=abc",
        "baggage": "k1=v1,k2=v2",
        "crux": {
            "runId": RUN,
            "operationId": OP,
            "previousSegmentId": SEG,
            "parentSpanId": S2,
            "sessionId": "sess-42",
            "userId": "user-7"
        }
    })
}

#[test]
fn carriers_round_trip_as_json_and_as_headers() {
    let fixture = ts_carrier();
    let carrier = Carrier::decode(&fixture).unwrap();
    assert_eq!(carrier.to_value(), fixture);
    assert_eq!(carrier.traceparent.trace_id.to_string(), TRACE);
    assert_eq!(carrier.crux.previous_segment_id.unwrap().to_string(), SEG);
    let mut headers = HashMap::new();
    carrier.inject(&mut headers);
    assert_eq!(headers["traceparent"], format!("00-{TRACE}-{S1}-01"));
    assert_eq!(headers["baggage"], "k1=v1,k2=v2");
    assert_eq!(Carrier::extract(&headers).unwrap(), carrier);
    let from_serde: Carrier = serde_json::from_value(fixture).unwrap();
    assert_eq!(from_serde, carrier);
}

#[test]
fn hostile_carriers_are_rejected() {
    let ok = ts_carrier();
    let field = |v: Value| match Carrier::decode(&v) {
        Err(CarrierError::Invalid(e)) => e.path,
        other => panic!("expected an invalid-field error, got {other:?}"),
    };
    // The TypeScript test: `{crux: {runId: ''}}`.
    assert_eq!(field(json!({"crux": {"runId": ""}})), "traceparent");
    assert_eq!(
        field(set(ok.clone(), "/crux/runId", json!(""))),
        "crux.runId"
    );
    assert_eq!(field(remove(ok.clone(), "/crux")), "crux");
    for tp in [
        format!("ff-{TRACE}-{S1}-01"),
        format!("00-00000000000000000000000000000000-{S1}-01"),
        format!("00-{TRACE}-0000000000000000-01"),
        format!("00-{TRACE}-{S1}-01-extra"),
        format!("00-{TRACE}-{S1}"),
        format!("00-{}-{S1}-01", TRACE.to_uppercase()),
    ] {
        assert_eq!(
            field(set(ok.clone(), "/traceparent", json!(tp))),
            "traceparent",
            "{tp}"
        );
    }
    assert_eq!(
        field(set(ok.clone(), "/tracestate", json!("a".repeat(513)))),
        "tracestate"
    );
    assert_eq!(
        field(set(ok.clone(), "/tracestate", json!("a=\u{7}"))),
        "tracestate"
    );
    let members = vec!["k=v"; 65].join(",");
    assert_eq!(
        field(set(ok.clone(), "/baggage", json!(members))),
        "baggage"
    );
    assert_eq!(
        field(set(ok.clone(), "/crux/previousSegmentId", json!(RUN))),
        "crux.previousSegmentId"
    );
    assert_eq!(
        field(set(ok.clone(), "/crux/userId", json!("x".repeat(201)))),
        "crux.userId"
    );
    let mut headers = HashMap::new();
    Carrier::decode(&ok).unwrap().inject(&mut headers);
    headers.insert("crux".into(), "{not json".into());
    assert_eq!(Carrier::extract(&headers), Err(CarrierError::HeaderNotJson));
    let pad = "x".repeat(crux_runtime::carrier::MAX_CRUX_HEADER);
    headers.insert(
        "crux".into(),
        format!("{{\"runId\":\"{RUN}\",\"pad\":\"{pad}\"}}"),
    );
    assert!(
        matches!(Carrier::extract(&headers), Err(CarrierError::Invalid(e)) if e.path == "crux")
    );
    assert_eq!(
        field(set(ok.clone(), "/crux/pad", json!(pad))),
        "crux",
        "the same cap on a carrier value"
    );
    headers.remove("crux");
    assert_eq!(
        Carrier::extract(&headers),
        Err(CarrierError::MissingHeader("crux"))
    );
}
