//! Compact span entries: what the queue holds for the common span start and end instead
//! of a full record, turned into the identical record on the worker.
//!
//! A full [`Record`] is about 300 bytes (ids, the empty attribute, field and metric lists
//! of a span record) and a push moved it three times on the caller. The common span start
//! (no typed fields, no attributes) and span end (no error, metrics or attributes) carry
//! only what differs from span to span plus their origin (the segment), which fills in
//! the base fields on the worker.

use std::borrow::Cow;
use std::sync::Arc;

use crate::attributes::Attributes;
use crate::clock::Timestamp;
use crate::ids::SpanId;
use crate::record::{Base, Body, Metrics, Record, SpanFields, SpanStatus};

/// Where a compact entry comes from: its segment, which fills in a record's base fields.
pub(crate) trait Origin: Send + Sync {
    /// The base fields of the origin's record number `seq`.
    fn base(&self, seq: u32) -> Base;
}

/// A compact record waiting in the queue, numbered `seq` in its segment (taken under the
/// queue lock, as for full records).
pub(crate) enum SpanEntry {
    /// `span:start` without typed fields or attributes.
    Start(SpanStart),
    /// `span:end` without error, metrics or attributes.
    End(SpanEnd),
}

// Three moves per push (into the closure's result, the queue slot, and out on the
// worker) stay cheap only while an entry is small.
const _: () = assert!(std::mem::size_of::<SpanEntry>() <= 96);

/// A compact `span:start`.
pub(crate) struct SpanStart {
    pub(crate) origin: Arc<dyn Origin>,
    pub(crate) seq: u32,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
    pub(crate) primitive: &'static str,
    pub(crate) name: Cow<'static, str>,
    pub(crate) started_at: Timestamp,
}

/// A compact `span:end`.
pub(crate) struct SpanEnd {
    pub(crate) origin: Arc<dyn Origin>,
    pub(crate) seq: u32,
    pub(crate) span_id: SpanId,
    pub(crate) ended_at: Timestamp,
    pub(crate) duration_ms: u64,
    pub(crate) status: SpanStatus,
}

/// Turns a batch of entries into records on the worker.
///
/// The origin references the entries held are kept until [`release`](Self::release),
/// so they are let go in one run at the end of a pass rather than one by one between
/// conversions (each release writes the segment's reference count, a cache line the
/// producers write too). That also keeps every segment seen in the pass alive, so the
/// cached base of the last one is found by address.
#[derive(Default)]
pub(crate) struct Converter {
    held: Vec<Arc<dyn Origin>>,
    /// The last origin converted (by address: only compared, and kept alive by `held`,
    /// so no other origin can take its address during the pass) and its base fields.
    last: Option<(*const (), Base)>,
}

impl Converter {
    /// The record `entry` stands for.
    pub(crate) fn record(&mut self, entry: SpanEntry) -> Record {
        match entry {
            SpanEntry::Start(s) => {
                let base = self.base(s.origin, s.seq);
                Record {
                    base,
                    body: Body::SpanStart {
                        span_id: s.span_id,
                        parent_span_id: s.parent_span_id,
                        primitive: s.primitive,
                        name: s.name,
                        started_at: s.started_at,
                        fields: SpanFields::new(),
                        attributes: Attributes::new(),
                    },
                }
            }
            SpanEntry::End(e) => {
                let base = self.base(e.origin, e.seq);
                Record {
                    base,
                    body: Body::SpanEnd {
                        span_id: e.span_id,
                        ended_at: e.ended_at,
                        duration_ms: e.duration_ms,
                        status: e.status,
                        error: None,
                        metrics: Metrics::new(),
                        attributes: Attributes::new(),
                    },
                }
            }
        }
    }

    /// The base fields of `origin`'s record number `seq`; keeps the reference.
    fn base(&mut self, origin: Arc<dyn Origin>, seq: u32) -> Base {
        let ptr = Arc::as_ptr(&origin) as *const ();
        let base = match &self.last {
            Some((last, base)) if *last == ptr => Base {
                segment_seq: seq,
                ..base.clone()
            },
            _ => {
                let base = origin.base(seq);
                self.last = Some((ptr, base.clone()));
                base
            }
        };
        self.held.push(origin);
        base
    }

    /// Lets go of the origins of the pass.
    pub(crate) fn release(&mut self) {
        self.last = None;
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{RunId, SegmentId, TraceId};

    struct Fixed(Base);
    impl Origin for Fixed {
        fn base(&self, seq: u32) -> Base {
            Base {
                segment_seq: seq,
                ..self.0.clone()
            }
        }
    }

    fn origin(n: u128) -> Arc<dyn Origin> {
        Arc::new(Fixed(Base {
            record_id: None,
            run_id: RunId::generate(),
            operation_id: RunId::generate(),
            segment_id: SegmentId::generate(),
            segment_seq: 0,
            trace_id: TraceId(n),
            extra: None,
        }))
    }

    #[test]
    fn entries_become_the_records_the_caller_would_have_built_whatever_their_origin() {
        let (a, b) = (origin(10), origin(20));
        let at = Timestamp::from_millis(1_700_000_000_123);
        let mut converter = Converter::default();
        // a, a, b, a: the cached base of the last origin must never leak into another.
        let entries = [(&a, 3), (&a, 4), (&b, 7), (&a, 5)];
        for (origin, seq) in entries {
            let start = converter.record(SpanEntry::Start(SpanStart {
                origin: Arc::clone(origin),
                seq,
                span_id: SpanId(seq as u64),
                parent_span_id: Some(SpanId(99)),
                primitive: "tool.call",
                name: Cow::Borrowed("step"),
                started_at: at,
            }));
            assert_eq!(
                start,
                Record {
                    base: origin.base(seq),
                    body: Body::SpanStart {
                        span_id: SpanId(seq as u64),
                        parent_span_id: Some(SpanId(99)),
                        primitive: "tool.call",
                        name: Cow::Borrowed("step"),
                        started_at: at,
                        fields: SpanFields::new(),
                        attributes: Attributes::new(),
                    },
                }
            );
            let end = converter.record(SpanEntry::End(SpanEnd {
                origin: Arc::clone(origin),
                seq: seq + 100,
                span_id: SpanId(seq as u64),
                ended_at: at,
                duration_ms: 12,
                status: SpanStatus::Cancelled,
            }));
            assert_eq!(
                end,
                Record {
                    base: origin.base(seq + 100),
                    body: Body::SpanEnd {
                        span_id: SpanId(seq as u64),
                        ended_at: at,
                        duration_ms: 12,
                        status: SpanStatus::Cancelled,
                        error: None,
                        metrics: Metrics::new(),
                        attributes: Attributes::new(),
                    },
                }
            );
        }
        assert_eq!(Arc::strong_count(&a), 7, "held until the pass ends");
        converter.release();
        assert_eq!(Arc::strong_count(&a), 1);
    }
}
