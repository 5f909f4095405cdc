//! `Record::write_json` against the serde writer it replaces on the sinks' path: the same
//! bytes for every record, hand-picked edge cases and thousands of generated ones.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crux_runtime::attributes::{AttrValue, Attributes};
use crux_runtime::clock::Timestamp;
use crux_runtime::envelope::{Correlators, DeploymentIdentity};
use crux_runtime::ids::{
    ArtifactId, EdgeId, EventId, RecordId, RunId, SegmentId, SpanId, SpanStack, TraceId,
};
use crux_runtime::record::{
    Base, Body, EdgeEnd, ErrorSummary, FinishedSpan, KNOWN_METRICS, Metrics, Record, RunStatus,
    SegmentExtra, SpanField, SpanFields, SpanStatus,
};
use serde_json::json;

/// A seeded xorshift64*: the same records on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// Pieces of text strings are built from: every escape kind, text that needs none,
/// non-ASCII, `/` and DEL (which serde leaves as they are).
const PIECES: &[&str] = &[
    "plan",
    " research",
    "step 12",
    "\"",
    "\\",
    "\n",
    "\r",
    "\t",
    "\u{8}",
    "\u{c}",
    "\u{0}",
    "\u{1f}",
    "\u{1}",
    "\u{7f}",
    "/",
    "é",
    "€",
    "😀",
    "日本語",
    "a/b",
    "{\"k\":1}",
    "",
    "runtime.convex.action",
];

fn text(rng: &mut Rng) -> String {
    let mut s = String::new();
    let pieces = match rng.below(10) {
        0 => 0,
        1 => 40 + rng.below(200),
        _ => rng.below(6),
    };
    for _ in 0..pieces {
        s.push_str(rng.pick(PIECES));
    }
    s
}

fn cow(rng: &mut Rng) -> Cow<'static, str> {
    if rng.chance(2) {
        Cow::Borrowed(rng.pick(PIECES))
    } else {
        Cow::Owned(text(rng))
    }
}

const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    0.1,
    1e300,
    -1e300,
    1e-300,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MAX,
    f64::MIN_POSITIVE,
    2.5,
    1.0,
    9_007_199_254_740_993.0,
    123_456.789,
];

const INTS: &[i64] = &[
    0,
    1,
    -1,
    9,
    10,
    -10,
    99,
    100,
    i64::MAX,
    i64::MIN,
    i64::MIN + 1,
    1 << 53,
];

const TIMES: &[u64] = &[
    0,
    999,
    1_767_323_045_678,
    253_402_300_799_999,
    u64::MAX,
    // Second, minute, hour, day, year and leap-day boundaries, either side (the writer
    // keeps the date per thread and writes the time of day itself).
    1_767_323_045_999,
    1_767_323_046_000,
    1_767_322_799_999,
    1_767_322_800_000,
    1_767_225_599_999,
    1_767_225_600_000,
    951_782_399_999,
    951_782_400_000,
    951_868_800_000,
    4_107_542_399_999,
    253_402_300_800_000,
];

fn time(rng: &mut Rng) -> Timestamp {
    if rng.chance(3) {
        Timestamp::from_millis(rng.pick(TIMES))
    } else {
        Timestamp::from_millis(rng.below(300_000_000_000_000))
    }
}

fn span_id(rng: &mut Rng) -> SpanId {
    SpanId(rng.next() | 1)
}

fn id12(rng: &mut Rng) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&rng.next().to_le_bytes());
    b[8..].copy_from_slice(&rng.next().to_le_bytes()[..4]);
    b[11] |= 1;
    b
}

fn json_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
    match rng.below(if depth > 2 { 5 } else { 7 }) {
        0 => serde_json::Value::Null,
        1 => json!(rng.chance(2)),
        2 => json!(rng.pick(INTS)),
        3 => json!(rng.pick(FLOATS)),
        4 => json!(text(rng)),
        5 => (0..rng.below(4))
            .map(|_| json_value(rng, depth + 1))
            .collect(),
        _ => serde_json::Value::Object(
            (0..rng.below(4))
                .map(|_| (text(rng), json_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

fn attr_value(rng: &mut Rng) -> AttrValue {
    match rng.below(10) {
        0 | 1 => AttrValue::Str(cow(rng)),
        2 => AttrValue::Int(if rng.chance(2) {
            rng.pick(INTS)
        } else {
            rng.next() as i64
        }),
        3 => AttrValue::Float(if rng.chance(2) {
            rng.pick(FLOATS)
        } else {
            f64::from_bits(rng.next())
        }),
        4 => AttrValue::Bool(rng.chance(2)),
        5 => AttrValue::Json(json_value(rng, 0)),
        6 => AttrValue::SpanId(span_id(rng)),
        7 => AttrValue::SpanIds(SpanStack::from(
            (0..rng.below(4)).map(|_| span_id(rng)).collect::<Vec<_>>(),
        )),
        8 => AttrValue::SharedJson(Arc::new(json_value(rng, 0))),
        _ => AttrValue::Timestamp(time(rng)),
    }
}

fn attributes(rng: &mut Rng) -> Attributes {
    let mut a = Attributes::new();
    for _ in 0..rng.below(6) {
        // Keys from a short list too, so some repeat (a later value replaces).
        let key: Cow<'static, str> = if rng.chance(2) {
            Cow::Borrowed(rng.pick(&["status", "boundaryId", "meta.tier", "k\"ey", ""]))
        } else {
            cow(rng)
        };
        a.set(key, attr_value(rng));
    }
    if rng.chance(3) {
        // A frozen base with entries of its own on top (a boundary's shared list).
        a = a.freeze();
        for _ in 0..rng.below(3) {
            a.set(cow(rng), attr_value(rng));
        }
    }
    a
}

fn opt<T>(rng: &mut Rng, f: impl FnOnce(&mut Rng) -> T) -> Option<T> {
    if rng.chance(2) { Some(f(rng)) } else { None }
}

fn extra(rng: &mut Rng) -> Option<Arc<SegmentExtra>> {
    if rng.chance(3) {
        return None;
    }
    let correlators = opt(rng, |rng| {
        let mut metadata = BTreeMap::new();
        for _ in 0..rng.below(4) {
            // `tier` collides with an attribute key above once prefixed: replaced in place.
            let key = if rng.chance(2) {
                "tier".to_owned()
            } else {
                text(rng)
            };
            metadata.insert(key, text(rng));
        }
        Correlators {
            session_id: opt(rng, text),
            user_id: opt(rng, text),
            metadata,
        }
    });
    let deployment = opt(rng, |rng| DeploymentIdentity {
        project_id: text(rng),
        manifest_id: text(rng),
        deployment_id: text(rng),
    });
    Some(Arc::new(SegmentExtra {
        correlators,
        deployment,
    }))
}

fn base(rng: &mut Rng) -> Base {
    Base {
        record_id: opt(rng, |rng| RecordId {
            random: rng.next(),
            counter: if rng.chance(4) {
                u64::MAX
            } else {
                rng.below(100_000)
            },
        }),
        run_id: RunId(id12(rng)),
        operation_id: RunId(id12(rng)),
        segment_id: SegmentId(id12(rng)),
        segment_seq: if rng.chance(4) {
            u32::MAX
        } else {
            rng.below(100) as u32 + 1
        },
        trace_id: TraceId((u128::from(rng.next()) << 64) | u128::from(rng.next() | 1)),
        extra: extra(rng),
    }
}

const PRIMITIVES: &[&str] = &[
    "runtime.convex.action",
    "tool.call",
    "llm.generate",
    "agent.run",
    "not.a.primitive",
    "we\"ird",
];

fn status(rng: &mut Rng) -> SpanStatus {
    rng.pick(&[
        SpanStatus::Ok,
        SpanStatus::Error,
        SpanStatus::Blocked,
        SpanStatus::Cancelled,
        SpanStatus::Suspended,
        SpanStatus::Skipped,
    ])
}

fn run_status(rng: &mut Rng) -> RunStatus {
    rng.pick(&[
        RunStatus::Ok,
        RunStatus::Error,
        RunStatus::Blocked,
        RunStatus::Cancelled,
        RunStatus::Suspended,
    ])
}

fn error(rng: &mut Rng) -> Option<ErrorSummary> {
    opt(rng, |rng| ErrorSummary {
        message: text(rng),
        name: opt(rng, |rng| rng.pick(&["TypeError", "Crux\\Error", "é"])),
    })
}

fn fields(rng: &mut Rng) -> SpanFields {
    let mut f = SpanFields::new();
    for _ in 0..rng.below(4) {
        f.set(rng.pick(&SpanField::ALL), cow(rng));
    }
    f
}

fn metrics(rng: &mut Rng) -> Metrics {
    let mut m = Metrics::new();
    for _ in 0..rng.below(4) {
        let value = if rng.chance(2) {
            rng.below(10_000) as f64
        } else {
            rng.pick(FLOATS)
        };
        m.set(rng.pick(&KNOWN_METRICS), value).unwrap();
    }
    if rng.chance(4) {
        m.set("gen.first\"ChunkMs", 1.5).unwrap_or_default();
    }
    m
}

fn edge_end(rng: &mut Rng) -> EdgeEnd {
    match rng.below(3) {
        0 => EdgeEnd::Run(RunId(id12(rng))),
        1 => EdgeEnd::Span(span_id(rng)),
        _ => EdgeEnd::Artifact(ArtifactId(rng.next() | 1)),
    }
}

fn body(rng: &mut Rng, variant: u64) -> Body {
    match variant {
        0 => Body::RunStart {
            name: cow(rng),
            root_primitive: rng.pick(PRIMITIVES),
            started_at: time(rng),
            attributes: attributes(rng),
            parent_run_id: opt(rng, |rng| RunId(id12(rng))),
            triggered_by_span_id: opt(rng, span_id),
            remote_parent_span_id: opt(rng, span_id),
        },
        1 => Body::RunSuspend {
            suspended_at: time(rng),
            reason: cow(rng),
            attributes: attributes(rng),
        },
        2 => Body::RunResume {
            resumed_at: time(rng),
            reason: cow(rng),
            previous_segment_id: opt(rng, |rng| SegmentId(id12(rng))),
            attributes: attributes(rng),
        },
        3 => Body::RunEnd {
            ended_at: time(rng),
            duration_ms: if rng.chance(4) {
                u64::MAX
            } else {
                rng.below(1 << 40)
            },
            status: run_status(rng),
            error: error(rng),
            attributes: attributes(rng),
        },
        4 => Body::SpanStart {
            span_id: span_id(rng),
            parent_span_id: opt(rng, span_id),
            primitive: rng.pick(PRIMITIVES),
            name: cow(rng),
            started_at: time(rng),
            fields: fields(rng),
            attributes: attributes(rng),
        },
        5 => Body::SpanEnd {
            span_id: span_id(rng),
            ended_at: time(rng),
            duration_ms: rng.below(1 << 40),
            status: status(rng),
            error: error(rng),
            metrics: metrics(rng),
            attributes: attributes(rng),
        },
        6 => Body::Span(Box::new(FinishedSpan {
            span_id: span_id(rng),
            parent_span_id: opt(rng, span_id),
            primitive: rng.pick(PRIMITIVES),
            name: cow(rng),
            started_at: time(rng),
            ended_at: time(rng),
            duration_ms: rng.below(1 << 40),
            status: status(rng),
            error: error(rng),
            fields: fields(rng),
            metrics: metrics(rng),
            attributes: attributes(rng),
        })),
        7 => Body::SpanEvent {
            span_id: span_id(rng),
            event_id: EventId(rng.next() | 1),
            name: cow(rng),
            timestamp: time(rng),
            attributes: attributes(rng),
        },
        8 => Body::Edge {
            edge_id: EdgeId(rng.next() | 1),
            edge_type: rng.pick(&["causal", "custom.x", "custom.\"q\""]),
            from: edge_end(rng),
            to: edge_end(rng),
            created_at: time(rng),
            attributes: attributes(rng),
        },
        _ => Body::Artifact {
            artifact_id: ArtifactId(rng.next() | 1),
            span_id: opt(rng, span_id),
            kind: rng.pick(&["json", "custom.\u{1}"]),
            created_at: time(rng),
            content_type: rng.pick(&["application/json", "text/plain; charset=\"utf-8\""]),
            encoding: rng.pick(&["json", "text"]),
            size_bytes: opt(rng, |rng| {
                if rng.chance(2) {
                    u64::MAX
                } else {
                    rng.below(1 << 20)
                }
            }),
            preview: opt(rng, text),
        },
    }
}

#[track_caller]
fn same_bytes(record: &Record) {
    let mut direct = Vec::new();
    record.write_json(&mut direct);
    let serde = serde_json::to_vec(record).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&direct),
        String::from_utf8_lossy(&serde),
        "{record:#?}"
    );
    assert_eq!(direct, serde);
}

#[test]
fn generated_records_of_every_variant_are_written_as_serde_writes_them() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = [0usize; 10];
    let mut out = Vec::new();
    for i in 0..5000u64 {
        let variant = i % 10;
        seen[variant as usize] += 1;
        let record = Record {
            base: base(&mut rng),
            body: body(&mut rng, variant),
        };
        same_bytes(&record);
        // Appended, as a sink reusing its buffer does: nothing before it is touched.
        let at = out.len();
        record.write_json(&mut out);
        assert_eq!(out[at..], serde_json::to_vec(&record).unwrap()[..]);
    }
    assert!(seen.iter().all(|&n| n == 500));
}

fn plain_base() -> Base {
    Base {
        record_id: None,
        run_id: RunId([1; 12]),
        operation_id: RunId([2; 12]),
        segment_id: SegmentId([3; 12]),
        segment_seq: 1,
        trace_id: TraceId(4),
        extra: None,
    }
}

#[test]
fn hand_picked_edge_cases_are_written_as_serde_writes_them() {
    let every_value = [
        AttrValue::Str(Cow::Borrowed("")),
        AttrValue::Str(
            "\"\\\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}/é😀"
                .to_owned()
                .into(),
        ),
        AttrValue::Str("x".repeat(10_000).into()),
        AttrValue::Int(i64::MIN),
        AttrValue::Int(i64::MAX),
        AttrValue::Int(0),
        AttrValue::Float(0.1),
        AttrValue::Float(-0.0),
        AttrValue::Float(1e300),
        AttrValue::Float(f64::NAN),
        AttrValue::Float(f64::INFINITY),
        AttrValue::Float(f64::NEG_INFINITY),
        AttrValue::Bool(true),
        AttrValue::Bool(false),
        AttrValue::Json(json!({"display": "detail", "n": [1, 2.5, null, "é\n"]})),
        AttrValue::SpanId(SpanId(u64::MAX)),
        AttrValue::SpanIds(SpanStack::from(Vec::new())),
        AttrValue::SpanIds(SpanStack::from(vec![SpanId(1), SpanId(u64::MAX)])),
        AttrValue::SharedJson(Arc::new(json!({"presentation": {"display": "detail"}}))),
        AttrValue::Timestamp(Timestamp::from_millis(u64::MAX)),
        AttrValue::Timestamp(Timestamp::from_millis(0)),
    ];
    let mut all = Attributes::new();
    for (i, v) in every_value.iter().enumerate() {
        all.set(format!("k{i}\u{1}"), v.clone());
        let record = Record {
            base: plain_base(),
            body: Body::SpanEvent {
                span_id: SpanId(5),
                event_id: EventId(6),
                name: "requested".into(),
                timestamp: Timestamp::from_millis(1_767_323_045_678),
                attributes: Attributes::new().with("v", v.clone()),
            },
        };
        same_bytes(&record);
    }
    // Empty attributes write no key; with correlator metadata they are the metadata alone.
    let mut metadata = BTreeMap::new();
    metadata.insert("tier".to_owned(), "gold".to_owned());
    metadata.insert("q\"".to_owned(), String::new());
    let with_meta = Some(Arc::new(SegmentExtra {
        correlators: Some(Correlators {
            session_id: Some(String::new()),
            user_id: Some("u\u{2028}".to_owned()),
            metadata,
        }),
        deployment: None,
    }));
    for (extra, attributes) in [
        (None, Attributes::new()),
        (None, all.clone()),
        (with_meta.clone(), Attributes::new()),
        (with_meta.clone(), all.clone().with("meta.tier", 1)),
        (with_meta, all.freeze().with("meta.tier", 1)),
    ] {
        let record = Record {
            base: Base {
                extra,
                record_id: Some(RecordId {
                    random: 0,
                    counter: u64::MAX,
                }),
                ..plain_base()
            },
            body: Body::RunStart {
                name: "n".into(),
                root_primitive: "agent.run",
                started_at: Timestamp::from_millis(1),
                attributes,
                parent_run_id: None,
                triggered_by_span_id: None,
                remote_parent_span_id: None,
            },
        };
        same_bytes(&record);
    }
}

#[test]
fn a_served_requests_records_from_the_public_api_are_written_as_serde_writes_them() {
    use crux_runtime::delivery::FlushOptions;
    use crux_runtime::observe::{Observer, RunOptions};
    use crux_runtime::sink::Memory;

    let memory = Memory::new();
    let observer = Observer::builder().sink(memory.clone()).build();
    let run = observer.open_run(RunOptions::new("serve", "runtime.convex.action"));
    let span = run.scope().span("plan \"research\"", "tool.call").start();
    span.event(
        "requested",
        Attributes::new().with("attempt", 2).with("ratio", 0.25),
    );
    span.end(SpanStatus::Ok);
    drop(run);
    observer.flush_blocking(FlushOptions::FINAL);
    let records = memory.typed_records();
    assert!(records.len() >= 4, "{records:#?}");
    for r in &records {
        assert!(r.base.record_id.is_some());
        same_bytes(r);
    }
}

/// Lists built every way the crate builds them (a frozen base shared with own entries,
/// `extend` both ways, a second freeze), own entries overriding shared keys, and `meta.*`
/// correlators colliding with either: the generator above sets random keys only.
#[test]
fn shared_lists_with_own_overrides_and_colliding_metadata_are_written_as_serde_writes_them() {
    let frozen = Attributes::new()
        .with("level", "INFO")
        .with("target", "db")
        .with("meta.tier", 0)
        .freeze();
    let lists = [
        Attributes::shared_with_capacity(&frozen, 2)
            .with("level", "WARN")
            .with("rows", 3),
        Attributes::shared_with_capacity(&frozen, 2)
            .with("rows", 3)
            .with("target", "x"),
        frozen.clone().with("meta.tier", "own"),
        {
            let mut a = frozen.clone();
            a.extend(Attributes::new().with("target", 1).with("z", 2));
            a
        },
        {
            let mut a = Attributes::new().with("z", 1);
            a.extend(frozen.clone());
            a
        },
        frozen
            .clone()
            .freeze()
            .with("q", 1)
            .freeze()
            .with("level", false),
    ];
    let metadata = BTreeMap::from([
        ("tier".to_owned(), "gold".to_owned()),
        (String::new(), "\u{0}".to_owned()),
        ("\"".to_owned(), "x".to_owned()),
    ]);
    let extras = [
        None,
        Some(Arc::new(SegmentExtra {
            correlators: Some(Correlators {
                session_id: Some("s\n".into()),
                user_id: None,
                metadata,
            }),
            deployment: Some(DeploymentIdentity {
                project_id: "p\"".into(),
                manifest_id: String::new(),
                deployment_id: "d\\".into(),
            }),
        })),
    ];
    let base = |extra: &Option<Arc<SegmentExtra>>| Base {
        record_id: None,
        run_id: RunId([1; 12]),
        operation_id: RunId([2; 12]),
        segment_id: SegmentId([3; 12]),
        segment_seq: 1,
        trace_id: TraceId(4),
        extra: extra.clone(),
    };
    for attributes in &lists {
        for extra in &extras {
            same_bytes(&Record {
                base: base(extra),
                body: Body::SpanEvent {
                    span_id: SpanId(5),
                    event_id: EventId(6),
                    name: "x".into(),
                    timestamp: Timestamp::from_millis(1_767_323_045_678),
                    attributes: attributes.clone(),
                },
            });
            same_bytes(&Record {
                base: base(extra),
                body: Body::RunEnd {
                    ended_at: Timestamp::from_millis(u64::MAX),
                    duration_ms: u64::MAX,
                    status: RunStatus::Error,
                    error: Some(ErrorSummary {
                        message: "m\u{7f}\"".into(),
                        name: Some("N\t"),
                    }),
                    attributes: attributes.clone(),
                },
            });
        }
    }
}

/// The run, segment and trace ids and record ids' random parts picked from small pools (the
/// all-zero ids, leading zeros, all ones), so records one after another name the same ones, alternate between them and
/// change one at a time, as a batch's records do (the writer remembers the last of each per
/// thread). A fresh thread first, whose first record names the zero ids.
#[test]
fn records_naming_the_same_ids_in_turn_are_written_as_serde_writes_them() {
    fn check(seed: u64) {
        let mut low = [0u8; 12];
        low[11] = 1;
        let mut high = [0u8; 12];
        high[0] = 0x10;
        let runs = [RunId([0; 12]), RunId(low), RunId([0xff; 12]), RunId(high)];
        let segments = [SegmentId([0; 12]), SegmentId(low), SegmentId([0xab; 12])];
        let traces = [TraceId(0), TraceId(1), TraceId(u128::MAX), TraceId(1 << 64)];
        let randoms = [0, 1, u64::MAX, 0x00f0_67aa_0ba9_02b7];
        let mut rng = Rng(seed);
        for i in 0..3000u64 {
            let first = i == 0;
            let run = if first { runs[0] } else { rng.pick(&runs) };
            let record_id = RecordId {
                random: if first {
                    randoms[0]
                } else {
                    rng.pick(&randoms)
                },
                counter: rng.below(100_000),
            };
            let base = Base {
                record_id: (first || !rng.chance(4)).then_some(record_id),
                run_id: run,
                operation_id: if !first && rng.chance(3) {
                    rng.pick(&runs)
                } else {
                    run
                },
                segment_id: if first {
                    segments[0]
                } else {
                    rng.pick(&segments)
                },
                trace_id: if first { traces[0] } else { rng.pick(&traces) },
                ..base(&mut rng)
            };
            same_bytes(&Record {
                base,
                body: body(&mut rng, i % 10),
            });
        }
    }
    std::thread::spawn(|| check(0x1234_5678)).join().unwrap();
    check(0x8765_4321);
}

/// A span record's attributes naming its own span id (a boundary's `boundaryId`, its stack),
/// next to other ids and id 0 (which a record of no span stands in with), in every record
/// kind.
#[test]
fn a_records_own_span_id_in_its_attributes_is_written_as_serde_writes_it() {
    for own in [
        SpanId(0),
        SpanId(1),
        SpanId(0x00f0_67aa_0ba9_02b7),
        SpanId(u64::MAX),
    ] {
        let other = SpanId(own.0 ^ 1);
        let attributes = Attributes::new()
            .with("boundaryId", AttrValue::SpanId(own))
            .with("other", AttrValue::SpanId(other))
            .with("zero", AttrValue::SpanId(SpanId(0)))
            .with(
                "parentSpanStack",
                AttrValue::SpanIds(SpanStack::from(vec![SpanId(0), other, own])),
            );
        let at = Timestamp::from_millis(1_767_323_045_678);
        let bodies = [
            Body::SpanStart {
                span_id: own,
                parent_span_id: Some(other),
                primitive: "tool.call",
                name: "n".into(),
                started_at: at,
                fields: SpanFields::new(),
                attributes: attributes.clone(),
            },
            Body::SpanEnd {
                span_id: own,
                ended_at: at,
                duration_ms: 0,
                status: SpanStatus::Ok,
                error: None,
                metrics: Metrics::new(),
                attributes: attributes.clone(),
            },
            Body::Span(Box::new(FinishedSpan {
                span_id: own,
                parent_span_id: None,
                primitive: "llm.generate",
                name: "n".into(),
                started_at: at,
                ended_at: at,
                duration_ms: 7,
                status: SpanStatus::Error,
                error: None,
                fields: SpanFields::new(),
                metrics: Metrics::new(),
                attributes: attributes.clone(),
            })),
            Body::SpanEvent {
                span_id: own,
                event_id: EventId(1),
                name: "runtime.convex.boundary.requested".into(),
                timestamp: at,
                attributes: attributes.clone().freeze(),
            },
            Body::RunEnd {
                ended_at: at,
                duration_ms: 12,
                status: RunStatus::Ok,
                error: None,
                attributes: attributes.clone(),
            },
            Body::Edge {
                edge_id: EdgeId(0x0f),
                edge_type: "causal",
                from: EdgeEnd::Span(own),
                to: EdgeEnd::Span(SpanId(0)),
                created_at: at,
                attributes,
            },
        ];
        for body in bodies {
            same_bytes(&Record {
                base: plain_base(),
                body,
            });
        }
    }
}

/// Every id kind with leading zeros (digits written at their fixed length, not trimmed) and
/// at its extremes, in each place the writer puts one.
#[test]
fn ids_of_every_kind_with_leading_zeros_are_written_as_serde_writes_them() {
    let mut low = [0u8; 12];
    low[11] = 1;
    let at = Timestamp::from_millis(1_767_323_045_678);
    for (n, twelve) in [(1u64, low), (1 << 63, [0xff; 12]), (0x10, [0; 12])] {
        let base = Base {
            record_id: Some(RecordId {
                random: n,
                counter: n % 37,
            }),
            run_id: RunId(twelve),
            operation_id: RunId(low),
            segment_id: SegmentId(twelve),
            segment_seq: 1,
            trace_id: TraceId(u128::from(n)),
            extra: None,
        };
        let bodies = [
            Body::RunStart {
                name: "n".into(),
                root_primitive: "agent.run",
                started_at: at,
                attributes: Attributes::new(),
                parent_run_id: Some(RunId(twelve)),
                triggered_by_span_id: Some(SpanId(n)),
                remote_parent_span_id: Some(SpanId(n >> 1)),
            },
            Body::RunResume {
                resumed_at: at,
                reason: "r".into(),
                previous_segment_id: Some(SegmentId(low)),
                attributes: Attributes::new(),
            },
            Body::SpanEvent {
                span_id: SpanId(n),
                event_id: EventId(n),
                name: "e".into(),
                timestamp: at,
                attributes: Attributes::new(),
            },
            Body::Edge {
                edge_id: EdgeId(n),
                edge_type: "causal",
                from: EdgeEnd::Run(RunId(twelve)),
                to: EdgeEnd::Artifact(ArtifactId(n)),
                created_at: at,
                attributes: Attributes::new(),
            },
            Body::Artifact {
                artifact_id: ArtifactId(n),
                span_id: Some(SpanId(n)),
                kind: "json",
                created_at: at,
                content_type: "application/json",
                encoding: "json",
                size_bytes: Some(n),
                preview: None,
            },
        ];
        for body in bodies {
            same_bytes(&Record {
                base: base.clone(),
                body,
            });
        }
    }
}

/// A span record naming `primitive`, its other fields fixed.
fn span_start_of(primitive: &'static str) -> Record {
    Record {
        base: plain_base(),
        body: Body::SpanStart {
            span_id: SpanId(9),
            parent_span_id: None,
            primitive,
            name: "n".into(),
            started_at: Timestamp::from_millis(1),
            fields: SpanFields::new(),
            attributes: Attributes::new(),
        },
    }
}

#[test]
fn a_primitives_family_follows_its_text_not_only_its_address() {
    // "run" (family `run`) starts where "runtime.convex.action" (family `runtime`) does: the
    // writer's per-thread family cache must tell the two apart (by length as well).
    let whole: &'static str = Box::leak(String::from("runtime.convex.action").into_boxed_str());
    let (prefix, not_canonical) = (&whole[..3], &whole[..7]);
    for primitive in [
        whole,
        prefix,
        not_canonical,
        whole,
        not_canonical,
        prefix,
        prefix,
        whole,
    ] {
        let record = span_start_of(primitive);
        same_bytes(&record);
        let mut out = Vec::new();
        record.write_json(&mut out);
        let written: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            written["family"],
            json!(crux_runtime::taxonomy::family_of(primitive)),
            "{primitive}"
        );
    }
}

/// ISO-8601 text computed independently of `Timestamp` (Hinnant's `civil_from_days`), so a
/// fault in its formatting or its per-thread caches, which the serde writer shares, shows.
fn iso_independently(ms: u64) -> String {
    let ms = ms.min(253_402_300_799_999);
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, second_of_day) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[test]
fn times_in_turn_back_and_forth_and_across_days_are_written_right() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let anchors = [
        0u64,
        86_399_999,
        951_782_399_500,
        1_767_225_599_999,
        1_767_323_045_678,
        253_402_300_799_999,
        u64::MAX,
    ];
    for _ in 0..50_000 {
        let r = rng.next();
        let anchor = anchors[(r % anchors.len() as u64) as usize];
        let ms = match (r >> 8) % 4 {
            0 => anchor,
            1 => anchor.saturating_sub((r >> 16) % 3000),
            2 => anchor.saturating_add((r >> 16) % 3000),
            _ => (r >> 16) % 300_000_000_000_000,
        };
        let text = Timestamp::from_millis(ms).to_iso_bytes();
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            iso_independently(ms),
            "{ms}"
        );
    }
}
