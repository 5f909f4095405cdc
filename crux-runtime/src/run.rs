//! Runs: one logical operation, written as one or more segments.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::attributes::Attributes;
use crate::carrier::{Carrier, CruxCarrier, TraceParent};
use crate::clock::Timestamp;
use crate::context::{Scope, Segment};
use crate::ids::{EdgeId, RunId, SegmentId, TraceId};
use crate::record::{Body, EdgeEnd, ErrorSummary, RunStatus};

/// An open run handle for this segment. End it with [`end`](Run::end),
/// [`fail`](Run::fail) or [`suspend`](Run::suspend).
///
/// Dropping a run without ending it records `run:end` with status `cancelled` (and the
/// attribute `crux.dropped = true`): an abandoned run is visibly closed, never left
/// running forever.
pub struct Run {
    pub(crate) segment: Arc<Segment>,
    pub(crate) started: Timestamp,
    pub(crate) open: bool,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("run_id", &self.run_id())
            .field("segment_id", &self.segment_id())
            .finish()
    }
}

impl Run {
    /// The run.
    pub fn run_id(&self) -> RunId {
        self.segment.run_id
    }

    /// The W3C trace.
    pub fn trace_id(&self) -> TraceId {
        self.segment.trace_id
    }

    /// This invocation's segment.
    pub fn segment_id(&self) -> SegmentId {
        self.segment.segment_id
    }

    /// The operation (root run of the family).
    pub fn operation_id(&self) -> RunId {
        self.segment.operation_id
    }

    /// The run's root scope (an empty span stack).
    pub fn scope(&self) -> Scope {
        Scope {
            segment: Arc::clone(&self.segment),
            top: None,
        }
    }

    /// Emits an `edge` of `edge_type` (canonical or `custom.*`) from `from` (a span or run
    /// recorded elsewhere, such as the span that scheduled this run) to this run, in this
    /// run's segment.
    pub fn link_from(&self, from: EdgeEnd, edge_type: &'static str, attributes: Attributes) {
        self.segment.emit(Body::Edge {
            edge_id: EdgeId::generate(),
            edge_type,
            from,
            to: EdgeEnd::Run(self.run_id()),
            created_at: Timestamp::now(),
            attributes,
        });
    }

    /// Ends the run with `status`.
    pub fn end(mut self, status: RunStatus) {
        self.finish(status, None, Attributes::new());
    }

    /// Ends the run as `error` with the error's summary.
    pub fn fail(mut self, error: &crate::Error) {
        self.finish(
            RunStatus::Error,
            Some(ErrorSummary::from(error)),
            Attributes::new(),
        );
    }

    /// Records `run:suspend` and returns the carrier that resumes the run elsewhere
    /// (through [`Observer::resume_run`](crate::observe::Observer::resume_run)).
    ///
    /// An empty reason is recorded as `"suspend"`.
    pub fn suspend(mut self, reason: impl Into<Cow<'static, str>>) -> Carrier {
        let mut reason = reason.into();
        if reason.is_empty() {
            reason = Cow::Borrowed("suspend");
        }
        self.open = false;
        self.segment.emit(Body::RunSuspend {
            suspended_at: Timestamp::now(),
            reason,
            attributes: Attributes::new(),
        });
        self.carrier()
    }

    /// The carrier of this run (as [`suspend`](Run::suspend) returns it), without
    /// suspending.
    pub fn carrier(&self) -> Carrier {
        let correlators = self
            .segment
            .extra
            .as_ref()
            .and_then(|e| e.correlators.as_ref());
        Carrier {
            traceparent: TraceParent {
                trace_id: self.segment.trace_id,
                parent_id: self.segment.run_id.root_span_id(),
                flags: 1,
            },
            tracestate: None,
            baggage: None,
            crux: CruxCarrier {
                run_id: self.segment.run_id,
                operation_id: Some(self.segment.operation_id),
                previous_segment_id: Some(self.segment.segment_id),
                parent_span_id: None,
                session_id: correlators.and_then(|c| c.session_id.clone()),
                user_id: correlators.and_then(|c| c.user_id.clone()),
                deployment: self
                    .segment
                    .extra
                    .as_ref()
                    .and_then(|e| e.deployment.clone()),
            },
        }
    }

    fn finish(&mut self, status: RunStatus, error: Option<ErrorSummary>, attributes: Attributes) {
        if !std::mem::replace(&mut self.open, false) {
            return;
        }
        let now = Timestamp::now();
        let duration_ms = now.millis_since(self.started);
        // The body built once the slot is taken ([`Segment::reserve`]): written straight
        // into the queued record.
        if let Some(slot) = self.segment.reserve() {
            slot.fill(Body::RunEnd {
                ended_at: now,
                duration_ms,
                status,
                error,
                attributes,
            });
        }
        self.segment.observer.remember_ended(self.segment.run_id);
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // An ended run (`end`/`fail` finished it) costs only the check: the `crux.dropped`
        // attribute (an allocation) is built only for a run dropped open.
        if self.open {
            self.finish(
                RunStatus::Cancelled,
                None,
                Attributes::new().with("crux.dropped", true),
            );
        }
    }
}
