//! One rule per decoder, whatever the entry point: generated inputs (a deterministic
//! generator, 20 000 of each) must get the same answer from `Envelope::decode_str` as from
//! `Envelope::decode` of the parsed value, and from `Carrier::extract` of the headers as
//! from `Carrier::decode` of the value; `Envelope::round_trips` must say yes exactly when
//! the decoders give a typed envelope back (generated envelopes, and each rule alone at
//! its limit). The fuzz targets in `fuzz/` explore further.

use std::collections::BTreeMap;

use crux_runtime::carrier::{Carrier, MAX_CRUX_HEADER};
use crux_runtime::clock::Timestamp;
use crux_runtime::envelope::{
    Boundary, BoundaryKind, Correlators, DeploymentIdentity, Envelope, WireContext,
};
use crux_runtime::ids::{RunId, SegmentId, SpanId, TraceId};
use serde_json::{Map, Value, json};

/// splitmix64: small, deterministic, good enough to pick mutations.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A string near the interesting lengths, in ASCII, multibyte, escaped or control chars.
    fn text(&mut self) -> String {
        let len = *self.pick(&[0, 1, 16, 63, 64, 65, 199, 200, 201, 511, 512, 513, 1100]);
        let unit = *self.pick(&["a", "é", "😀", "\"", "\\", "\u{7}", "\u{85}", ",", "-", "0"]);
        let mut s = unit.repeat(len);
        if self.chance(4) && !s.is_empty() {
            // Perturb one char, so control characters also appear alone.
            let c = *self.pick(&['\n', '\u{0}', '\u{7f}', 'x', 'é', '\u{2028}']);
            let at = s
                .char_indices()
                .nth(self.below(len))
                .map(|(i, _)| i)
                .unwrap_or(0);
            s.replace_range(
                at..at + s[at..].chars().next().unwrap().len_utf8(),
                &c.to_string(),
            );
        }
        s
    }

    /// Any JSON value, shallow or deep.
    fn value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 8 { 6 } else { 9 }) {
            0 => Value::Null,
            1 => json!(self.chance(2)),
            2 => json!(*self.pick(&[0i64, 1, -1, 2, 1 << 53, (1 << 53) + 1, i64::MAX])),
            3 => json!(*self.pick(&[1.0f64, 0.5, 1e300, -0.0])),
            4 => json!(u64::MAX),
            5 => Value::String(self.text()),
            6 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            7 => Value::Array(vec![Value::String(RUN.into()); self.below(3) * 70]),
            _ => {
                let mut m = Map::new();
                for _ in 0..self.below(4) {
                    m.insert(self.text(), self.value(depth + 1));
                }
                Value::Object(m)
            }
        }
    }

    /// `v` with one field (anywhere) replaced, removed or added, or the whole value replaced.
    fn mutate(&mut self, v: &mut Value, depth: usize) {
        let here = self.chance(3) || !matches!(v, Value::Object(_) | Value::Array(_));
        if here {
            *v = match self.below(8) {
                0 => self.value(depth),
                1 => Value::Null,
                2 => Value::String(self.text()),
                3 => Value::String(self.pick(IDS).to_string()),
                // An object as the array of its values (serde reads structs from sequences).
                4 => match v {
                    Value::Object(m) => Value::Array(m.values().cloned().collect()),
                    _ => json!([1]),
                },
                5 => json!([1]),
                6 => json!([1, null, null]),
                _ => Value::Array(vec![v.clone()]),
            };
            return;
        }
        match v {
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                match self.below(5) {
                    0 if !keys.is_empty() => {
                        let k = self.pick(&keys).clone();
                        m.remove(&k);
                    }
                    1 => {
                        for i in 0..*self.pick(&[1, 4, 40]) {
                            m.insert(format!("extra{i}"), self.value(depth + 1));
                        }
                    }
                    _ if !keys.is_empty() => {
                        let k = self.pick(&keys).clone();
                        self.mutate(m.get_mut(&k).unwrap(), depth + 1);
                    }
                    _ => {}
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let i = self.below(a.len());
                self.mutate(&mut a[i], depth + 1);
            }
            _ => {}
        }
    }
}

const RUN: &str = "run_0123456789abcdef01234567";
const IDS: &[&str] = &[
    RUN,
    "run_89abcdef0123456789abcdef",
    "seg_fedcba9876543210fedcba98",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "00f067aa0ba902b7",
    "b7ad6b7169203331",
    "0000000000000000",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "2026-01-02T03:15:05.678Z",
    "action",
    "schedule",
];

fn envelope_seed(g: &mut Gen) -> Value {
    let mut context = json!({
        "runId": RUN,
        "operationId": "run_89abcdef0123456789abcdef",
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "segmentId": "seg_fedcba9876543210fedcba98",
        "startedAtMs": 1767323045678u64,
        "correlators": {"sessionId": "sess-42", "userId": "user-7", "metadata": {"tier": "pro"}},
        "deployment": {"projectId": "p1", "manifestId": "m1", "deploymentId": "d1"},
        "spanStack": ["00f067aa0ba902b7", "b7ad6b7169203331"],
        "currentSpanId": "b7ad6b7169203331"
    });
    if g.chance(2) {
        let o = context.as_object_mut().unwrap();
        for k in [
            "operationId",
            "startedAtMs",
            "correlators",
            "deployment",
            "currentSpanId",
        ] {
            if g.chance(2) {
                o.remove(k);
            }
        }
    }
    let mut env = json!({"v": 1, "observability": context});
    if g.chance(2) {
        env["boundary"] = json!({
            "id": "b7ad6b7169203331",
            "spanId": "b7ad6b7169203331",
            "kind": "action",
            "label": "plan research",
            "ref": "research:plan",
            "parentSpanStack": ["00f067aa0ba902b7", "b7ad6b7169203331"],
            "leaseExpiresAt": "2026-01-02T03:15:05.678Z"
        });
    }
    env
}

/// The text form of a value: compact, pretty, or with a key written twice.
fn envelope_text(g: &mut Gen, v: &Value) -> String {
    match g.below(4) {
        0 => serde_json::to_string_pretty(v).unwrap(),
        1 => {
            // Duplicate a key at the top: JSON parsers keep the last one.
            let s = serde_json::to_string(v).unwrap();
            match s.strip_prefix('{') {
                Some(rest) if rest != "}" => format!("{{\"v\":2,{rest}"),
                _ => s,
            }
        }
        _ => serde_json::to_string(v).unwrap(),
    }
}

#[test]
fn envelope_decode_str_agrees_with_decode_on_generated_inputs() {
    let mut g = Gen(0x5EED_0001);
    let mut accepted = 0;
    for i in 0..20_000 {
        let mut v = envelope_seed(&mut g);
        for _ in 0..g.below(4) {
            g.mutate(&mut v, 1);
        }
        let text = envelope_text(&mut g, &v);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let by_value = Envelope::decode(&parsed);
        let by_text = Envelope::decode_str(&text);
        assert_eq!(by_text, by_value, "input #{i}: {text:.2000}");
        // The boxed entry point (crux-local's) reads the same way, also when it falls back.
        let boxed = Envelope::decode_str_boxed(&text).map(|b| *b);
        assert_eq!(boxed, by_value, "input #{i}, boxed: {text:.2000}");
        // What the decoder accepts, crux writes back and reads again as itself, and
        // `round_trips` says so: a rule the decoder gains must reach `round_trips` too.
        if let Ok(e) = &by_value {
            assert!(e.round_trips(), "input #{i}: {text:.2000}");
            assert_eq!(
                Envelope::decode_str(&e.to_json_string()).as_ref(),
                Ok(e),
                "input #{i}"
            );
        }
        accepted += by_value.is_ok() as usize;
    }
    // The generator reaches both sides of the rule.
    assert!((2_000..18_000).contains(&accepted), "{accepted} accepted");
}

#[test]
fn envelope_decode_str_rejects_non_objects_like_decode() {
    for text in ["[1]", "[1,null,null]", "1", "\"x\"", "null", "[]"] {
        let value: Value = serde_json::from_str(text).unwrap();
        let expected = Envelope::decode(&value).unwrap_err();
        assert_eq!(Envelope::decode_str(text), Err(expected.clone()), "{text}");
        assert_eq!(Envelope::decode_str_boxed(text).map(|b| *b), Err(expected));
    }
    // Nested objects too: a context or boundary written as an array is refused.
    let mut g = Gen(7);
    let seed = envelope_seed(&mut g);
    let ctx = &seed["observability"];
    let as_array: Vec<Value> = [
        "runId",
        "operationId",
        "traceId",
        "segmentId",
        "startedAtMs",
        "correlators",
        "deployment",
        "spanStack",
        "currentSpanId",
    ]
    .iter()
    .map(|k| ctx.get(*k).cloned().unwrap_or(Value::Null))
    .collect();
    let v = json!({"v": 1, "observability": as_array});
    let text = v.to_string();
    assert!(Envelope::decode_str(&text).is_err(), "{text}");
    assert_eq!(Envelope::decode_str(&text), Envelope::decode(&v));
    assert_eq!(
        Envelope::decode_str_boxed(&text).map(|b| *b),
        Envelope::decode(&v)
    );
}

/// A typed envelope as a host builds one, each field now and then set to a value at or
/// past the edge of the decoder's rules (all-zero ids, texts of every length and kind,
/// long stacks, a mismatched current span or boundary id, far leases, big start times).
fn typed_envelope(g: &mut Gen) -> Envelope {
    let span = |g: &mut Gen| SpanId(if g.chance(12) { 0 } else { g.next() | 1 });
    let prefixed = |g: &mut Gen| {
        let mut bytes = [0u8; 12];
        if !g.chance(12) {
            bytes[..8].copy_from_slice(&g.next().to_le_bytes());
            bytes[11] = 1;
        }
        bytes
    };
    let stack = |g: &mut Gen| -> Vec<SpanId> {
        let len = *g.pick(&[0, 1, 2, 127, 128, 129]);
        (0..len).map(|_| span(g)).collect()
    };
    let maybe_text = |g: &mut Gen| g.chance(2).then(|| g.text());
    let span_stack = stack(g);
    let current_span_id = match g.below(3) {
        0 => None,
        1 => Some(span(g)),
        _ => span_stack.last().copied(),
    };
    let run = RunId(prefixed(g));
    let observability = (!g.chance(8)).then(|| WireContext {
        run_id: run,
        operation_id: if g.chance(2) { run } else { RunId(prefixed(g)) },
        trace_id: TraceId(if g.chance(12) {
            0
        } else {
            u128::from(g.next()) << 64 | 1
        }),
        segment_id: SegmentId(prefixed(g)),
        started_at_ms: g.chance(2).then(|| {
            *g.pick(&[
                0,
                1_767_323_045_678,
                (1 << 53) - 1,
                1 << 53,
                (1 << 53) + 1,
                u64::MAX,
            ])
        }),
        correlators: g.chance(3).then(|| Correlators {
            session_id: maybe_text(g),
            user_id: maybe_text(g),
            metadata: (0..*g.pick(&[0, 1, 16, 17]))
                .map(|i| {
                    let key = if g.chance(2) {
                        format!("k{i}")
                    } else {
                        g.text()
                    };
                    (key, g.text())
                })
                .collect(),
        }),
        deployment: g.chance(3).then(|| DeploymentIdentity {
            project_id: g.text(),
            manifest_id: g.text(),
            deployment_id: g.text(),
        }),
        span_stack: span_stack.into(),
        current_span_id,
        parent_run_id: g.chance(3).then(|| RunId(prefixed(g))),
        triggered_by_span_id: g.chance(3).then(|| span(g)),
    });
    let boundary = g.chance(2).then(|| {
        let id = span(g);
        let lease_ms = *g.pick(&[
            1_767_323_705_678,
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z
            253_402_300_800_000, // year 10000: no four-digit year
            u64::MAX,
            0,
        ]);
        Boundary {
            id,
            span_id: if g.chance(8) { span(g) } else { id },
            kind: *g.pick(&[BoundaryKind::Action, BoundaryKind::Schedule]),
            label: if g.chance(2) {
                "plan research".into()
            } else {
                g.text().into()
            },
            function_ref: if g.chance(2) {
                "research:plan".into()
            } else {
                g.text().into()
            },
            parent_span_stack: stack(g).into(),
            lease_expires_at: g.chance(4).then_some(Timestamp::from_millis(lease_ms)),
        }
    });
    Envelope {
        v: if g.chance(16) { 2 } else { 1 },
        observability,
        boundary,
    }
}

/// `Envelope::round_trips` (what crux-local checks before handing its own envelope to a
/// callee in the same process instead of writing and decoding its text) says yes exactly
/// when the strict decoders, given the envelope's text or value, give back that envelope.
#[test]
fn round_trips_is_true_exactly_when_the_decoders_give_the_envelope_back() {
    let mut g = Gen(0x5EED_0003);
    let mut kept = 0;
    for i in 0..20_000 {
        let envelope = typed_envelope(&mut g);
        let text = envelope.to_json_string();
        let by_text = Envelope::decode_str(&text);
        let by_value = Envelope::decode(&envelope.to_value());
        assert_eq!(by_text, by_value, "input #{i}: {text:.2000}");
        let back = by_text.as_ref() == Ok(&envelope);
        assert_eq!(envelope.round_trips(), back, "input #{i}: {text:.2000}");
        kept += back as usize;
    }
    // Both answers are reached often.
    assert!((2_000..18_000).contains(&kept), "{kept} round trips");
}

/// A valid envelope with a boundary: every id set, texts short, no optional field left out.
fn valid_envelope() -> Envelope {
    let run = RunId(*b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c");
    let stack: Vec<SpanId> = vec![SpanId(11), SpanId(12)];
    Envelope {
        v: 1,
        observability: Some(WireContext {
            run_id: run,
            operation_id: run,
            trace_id: TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            segment_id: SegmentId(*b"segmentid012"),
            started_at_ms: Some(1_767_323_045_678),
            correlators: Some(Correlators {
                session_id: Some("session".into()),
                user_id: Some("user".into()),
                metadata: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            }),
            deployment: Some(DeploymentIdentity {
                project_id: "p".into(),
                manifest_id: "m".into(),
                deployment_id: "d".into(),
            }),
            span_stack: stack.clone().into(),
            current_span_id: Some(SpanId(12)),
            parent_run_id: Some(RunId(*b"parentrunid1")),
            triggered_by_span_id: Some(SpanId(9)),
        }),
        boundary: Some(Boundary {
            id: SpanId(13),
            span_id: SpanId(13),
            kind: BoundaryKind::Action,
            label: "plan research".into(),
            function_ref: "research:plan".into(),
            parent_span_stack: stack.into(),
            lease_expires_at: Some(Timestamp::from_millis(1_767_323_705_678)),
        }),
    }
}

/// Every rule of `round_trips`, one at a time on an otherwise valid envelope, at its limit
/// (kept) and just past it (refused): the generated test above rarely breaks one rule
/// alone, so this one fails if any rule is dropped or counted differently (characters,
/// not bytes; C1 controls refused, U+2028 kept).
#[test]
fn round_trips_decides_each_rule_alone_at_its_limit() {
    type Edit = fn(&mut Envelope);
    fn ctx(e: &mut Envelope) -> &mut WireContext {
        e.observability.as_mut().unwrap()
    }
    fn corr(e: &mut Envelope) -> &mut Correlators {
        ctx(e).correlators.as_mut().unwrap()
    }
    fn bnd(e: &mut Envelope) -> &mut Boundary {
        e.boundary.as_mut().unwrap()
    }
    fn stack_of(n: usize) -> Vec<SpanId> {
        (1..=n as u64).map(SpanId).collect()
    }
    fn metadata(n: usize) -> BTreeMap<String, String> {
        (0..n).map(|i| (format!("k{i}"), "v".to_owned())).collect()
    }
    let cases: &[(&str, Edit, bool)] = &[
        ("as built", |_| {}, true),
        ("version 2", |e| e.v = 2, false),
        (
            "no context, no boundary",
            |e| {
                e.observability = None;
                e.boundary = None;
            },
            true,
        ),
        ("run id zero", |e| ctx(e).run_id = RunId([0; 12]), false),
        (
            "operation id zero",
            |e| ctx(e).operation_id = RunId([0; 12]),
            false,
        ),
        ("trace id zero", |e| ctx(e).trace_id = TraceId(0), false),
        (
            "segment id zero",
            |e| ctx(e).segment_id = SegmentId([0; 12]),
            false,
        ),
        (
            "parent run zero",
            |e| ctx(e).parent_run_id = Some(RunId([0; 12])),
            false,
        ),
        (
            "triggering span zero",
            |e| ctx(e).triggered_by_span_id = Some(SpanId(0)),
            false,
        ),
        (
            "startedAtMs 2^53",
            |e| ctx(e).started_at_ms = Some(1 << 53),
            true,
        ),
        (
            "startedAtMs 2^53 + 1",
            |e| ctx(e).started_at_ms = Some((1 << 53) + 1),
            false,
        ),
        (
            "session 200 chars",
            |e| corr(e).session_id = Some("é".repeat(200)),
            true,
        ),
        (
            "session 201 chars",
            |e| corr(e).session_id = Some("é".repeat(201)),
            false,
        ),
        (
            "session empty",
            |e| corr(e).session_id = Some(String::new()),
            false,
        ),
        (
            "user with U+0085",
            |e| corr(e).user_id = Some("a\u{85}b".into()),
            false,
        ),
        (
            "user with U+2028",
            |e| corr(e).user_id = Some("a\u{2028}b".into()),
            true,
        ),
        (
            "user with a newline",
            |e| corr(e).user_id = Some("a\nb".into()),
            false,
        ),
        (
            "16 metadata entries",
            |e| corr(e).metadata = metadata(16),
            true,
        ),
        (
            "17 metadata entries",
            |e| corr(e).metadata = metadata(17),
            false,
        ),
        (
            "metadata key 64 chars",
            |e| {
                corr(e).metadata = BTreeMap::from([("é".repeat(64), "v".into())]);
            },
            true,
        ),
        (
            "metadata key 65 chars",
            |e| {
                corr(e).metadata = BTreeMap::from([("é".repeat(65), "v".into())]);
            },
            false,
        ),
        (
            "metadata key and value empty",
            |e| {
                corr(e).metadata = BTreeMap::from([(String::new(), String::new())]);
            },
            true,
        ),
        (
            "metadata value 201 chars",
            |e| {
                corr(e).metadata = BTreeMap::from([("k".into(), "a".repeat(201))]);
            },
            false,
        ),
        (
            "metadata value with a control",
            |e| {
                corr(e).metadata = BTreeMap::from([("k".into(), "\u{7}".into())]);
            },
            false,
        ),
        (
            "project empty",
            |e| ctx(e).deployment.as_mut().unwrap().project_id = String::new(),
            false,
        ),
        (
            "deployment id empty",
            |e| {
                ctx(e).deployment.as_mut().unwrap().deployment_id = String::new();
            },
            false,
        ),
        (
            "manifest 200 chars",
            |e| {
                ctx(e).deployment.as_mut().unwrap().manifest_id = "é".repeat(200);
            },
            true,
        ),
        (
            "metadata value 200 chars",
            |e| {
                corr(e).metadata = BTreeMap::from([("k".into(), "é".repeat(200))]);
            },
            true,
        ),
        (
            "metadata key with a control",
            |e| {
                corr(e).metadata = BTreeMap::from([("a\u{1}".into(), "v".into())]);
            },
            false,
        ),
        (
            "manifest 201 chars",
            |e| {
                ctx(e).deployment.as_mut().unwrap().manifest_id = "a".repeat(201);
            },
            false,
        ),
        (
            "stack of 128",
            |e| {
                ctx(e).span_stack = stack_of(128).into();
                ctx(e).current_span_id = Some(SpanId(128));
            },
            true,
        ),
        (
            "stack of 129",
            |e| {
                ctx(e).span_stack = stack_of(129).into();
                ctx(e).current_span_id = Some(SpanId(129));
            },
            false,
        ),
        (
            "a zero id in the stack",
            |e| {
                ctx(e).span_stack = vec![SpanId(0), SpanId(12)].into();
            },
            false,
        ),
        (
            "current span not the stack's last",
            |e| ctx(e).current_span_id = Some(SpanId(11)),
            false,
        ),
        ("no current span", |e| ctx(e).current_span_id = None, true),
        (
            "boundary id zero",
            |e| {
                bnd(e).id = SpanId(0);
                bnd(e).span_id = SpanId(0);
            },
            false,
        ),
        (
            "boundary spanId not its id",
            |e| bnd(e).span_id = SpanId(14),
            false,
        ),
        (
            "label 200 chars",
            |e| bnd(e).label = "😀".repeat(200).into(),
            true,
        ),
        (
            "label 201 chars",
            |e| bnd(e).label = "😀".repeat(201).into(),
            false,
        ),
        ("label empty", |e| bnd(e).label = "".into(), false),
        (
            "ref with a tab",
            |e| bnd(e).function_ref = "a\tb".into(),
            false,
        ),
        (
            "parent stack of 128",
            |e| bnd(e).parent_span_stack = stack_of(128).into(),
            true,
        ),
        (
            "parent stack of 129",
            |e| bnd(e).parent_span_stack = stack_of(129).into(),
            false,
        ),
        (
            "lease 9999-12-31T23:59:59.999Z",
            |e| {
                bnd(e).lease_expires_at = Some(Timestamp::from_millis(253_402_300_799_999));
            },
            true,
        ),
        (
            "lease in year 10000",
            |e| {
                bnd(e).lease_expires_at = Some(Timestamp::from_millis(253_402_300_800_000));
            },
            false,
        ),
    ];
    for (name, edit, keeps) in cases {
        let mut e = valid_envelope();
        edit(&mut e);
        let back = Envelope::decode_str(&e.to_json_string()) == Ok(e.clone());
        assert_eq!(back, *keeps, "{name}: the decoder's answer");
        assert_eq!(e.round_trips(), *keeps, "{name}: round_trips");
    }
}

fn carrier_seed(g: &mut Gen) -> Value {
    let mut crux = Map::new();
    crux.insert("runId".into(), json!(RUN));
    for (k, id) in [
        ("operationId", "run_89abcdef0123456789abcdef"),
        ("previousSegmentId", "seg_fedcba9876543210fedcba98"),
        ("parentSpanId", "00f067aa0ba902b7"),
    ] {
        if g.chance(2) {
            crux.insert(k.into(), json!(id));
        }
    }
    for k in ["sessionId", "userId"] {
        if g.chance(2) {
            crux.insert(k.into(), Value::String(g.text()));
        }
    }
    if g.chance(2) {
        crux.insert(
            "deployment".into(),
            json!({"projectId": g.text(), "manifestId": "m1", "deploymentId": "d1"}),
        );
    }
    if g.chance(3) {
        // Unknown keys (ignored, but they count against the size of the `crux` header).
        for i in 0..g.below(6) {
            crux.insert(format!("x{i}"), Value::String(g.text()));
        }
    }
    let mut carrier = Map::new();
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    carrier.insert(
        "traceparent".into(),
        json!(if g.chance(2) {
            valid
        } else {
            *g.pick(&[
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{7}",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-é",
            ])
        }),
    );
    for k in ["tracestate", "baggage"] {
        if g.chance(2) {
            carrier.insert(k.into(), Value::String(g.text()));
        }
    }
    let mut crux = Value::Object(crux);
    if g.chance(4) {
        g.mutate(&mut crux, 2);
    }
    carrier.insert("crux".into(), crux);
    Value::Object(carrier)
}

/// The headers `inject` would write for the carrier value `v` (the `crux` header compact or
/// pretty JSON: a reader cannot tell them apart).
fn headers_of(g: &mut Gen, v: &Value) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    for (k, x) in v.as_object().unwrap() {
        let text = match (k.as_str(), x) {
            ("crux", x) if g.chance(3) => serde_json::to_string_pretty(x).unwrap(),
            ("crux", x) => serde_json::to_string(x).unwrap(),
            (_, Value::String(s)) => s.clone(),
            _ => unreachable!("the seed writes strings"),
        };
        headers.insert(k.clone(), text);
    }
    headers
}

#[test]
fn carrier_extract_agrees_with_decode_on_generated_inputs() {
    let mut g = Gen(0x5EED_0002);
    let mut accepted = 0;
    for i in 0..20_000 {
        let v = carrier_seed(&mut g);
        let headers = headers_of(&mut g, &v);
        let by_value = Carrier::decode(&v);
        let by_headers = Carrier::extract(&headers);
        assert_eq!(by_headers, by_value, "input #{i}: {headers:.2000?}");
        accepted += by_value.is_ok() as usize;
    }
    assert!((2_000..18_000).contains(&accepted), "{accepted} accepted");
}

#[test]
fn the_crux_header_cap_counts_characters_of_the_compact_json_on_both_paths() {
    let carrier = |session: &str, pad: usize| {
        json!({
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "crux": {"runId": RUN, "sessionId": session, "x": "a".repeat(pad)}
        })
    };
    // `{"runId":"run_…","sessionId":"<s>","x":"<pad>"}` is 59 characters plus both texts.
    let fixed = serde_json::to_string(&carrier("", 0)["crux"])
        .unwrap()
        .len();
    let session = "é".repeat(200); // 400 bytes, 200 characters
    let pad = MAX_CRUX_HEADER - fixed - 200;
    for (pad, fits) in [(pad, true), (pad + 1, false)] {
        let v = carrier(&session, pad);
        let mut headers = BTreeMap::new();
        headers.insert(
            "traceparent".to_owned(),
            v["traceparent"].as_str().unwrap().to_owned(),
        );
        headers.insert(
            "crux".to_owned(),
            serde_json::to_string_pretty(&v["crux"]).unwrap(),
        );
        assert_eq!(Carrier::decode(&v).is_ok(), fits, "decode, pad {pad}");
        assert_eq!(Carrier::extract(&headers), Carrier::decode(&v), "pad {pad}");
    }
}

#[test]
fn every_carrier_this_build_writes_reads_back_through_both_paths() {
    // Every field at its cap, each character escaped in JSON: the longest `crux` header
    // `inject` can write.
    let label = "\"".repeat(200);
    let v = json!({
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "crux": {
            "runId": RUN,
            "operationId": "run_89abcdef0123456789abcdef",
            "previousSegmentId": "seg_fedcba9876543210fedcba98",
            "parentSpanId": "00f067aa0ba902b7",
            "sessionId": label,
            "userId": label,
            "deployment": {"projectId": label, "manifestId": label, "deploymentId": label}
        }
    });
    let carrier = Carrier::decode(&v).unwrap();
    assert_eq!(Carrier::decode(&carrier.to_value()), Ok(carrier.clone()));
    let mut headers = BTreeMap::new();
    carrier.inject(&mut headers);
    assert_eq!(Carrier::extract(&headers), Ok(carrier));
}
