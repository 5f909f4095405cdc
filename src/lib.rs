//! crux: observable Convex-style functions for Rust.
//!
//! Annotate async handlers with [`action`], [`query`], [`mutation`] and their internal
//! variants; every call between them — child actions through `ctx.crux.run_action`,
//! queries, mutations, scheduled work — lands in one Crux run, recorded through
//! [`sink`]s and readable as a tree (`cargo run --bin crux -- show latest`, [`view::Trees`]),
//! which tests can pin with [`testing`].
//!
//! ```
//! use crux::prelude::*;
//! use crux::sink::Memory;
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Ask {
//!     pub question: String,
//! }
//!
//! #[crux::action(name = "support chat", root = "agent.run")]
//! pub async fn respond(ctx: &ActionCtx, args: Ask) -> crux::Result<String> {
//!     let words = ctx.crux.run_query("count words", count_words, args).await?;
//!     Ok(format!("{words} words"))
//! }
//!
//! #[crux::internal_query]
//! pub async fn count_words(_ctx: &QueryCtx, args: Ask) -> crux::Result<usize> {
//!     Ok(args.question.split_whitespace().count())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> crux::Result<()> {
//! let memory = Memory::new();
//! let deployment = Deployment::builder()
//!     .sink(memory.clone())
//!     .functions((respond, count_words))
//!     .build();
//! let reply = deployment.action(respond, Ask { question: "where is my refund".into() }).await?;
//! assert_eq!(reply, "4 words");
//!
//! deployment.flush(std::time::Duration::from_secs(1)).await;
//! let records = memory.records();
//! assert_eq!(records[0]["name"], "support chat"); // the run
//! assert!(records.iter().any(|r| r["name"] == "count words")); // its runtime.convex.query span
//! # Ok(())
//! # }
//! ```
//!
//! The README is the guide: a tour of entrypoints, child actions, queries and mutations,
//! scheduling and escape hatches, the attribute reference, the local deployment, the
//! viewer, OpenTelemetry export and the wire format.

/// Calls to functions served elsewhere (feature `client`): a Convex deployment or another
/// crux service, over Convex's HTTP API, with the run continuing there.
#[cfg(feature = "client")]
pub use crux_client as client;
pub use crux_local as local;
pub use crux_macros::{
    action, internal_action, internal_mutation, internal_query, mutation, query,
};
#[cfg(feature = "otel")]
pub use crux_otel as otel;
pub use crux_runtime::{Error, ErrorKind, Result};
pub use crux_runtime::{attributes, boundary, envelope, ids, sink};

/// Record and envelope times: [`Timestamp`](clock::Timestamp) (milliseconds since the
/// epoch, written as ISO-8601 text), e.g. a boundary's `lease_expires_at`.
pub mod clock {
    pub use crux_runtime::clock::{Timestamp, TimestampError};
}
#[cfg(feature = "server")]
pub use crux_server as server;
#[cfg(feature = "tracing")]
pub use crux_tracing as tracing;

/// Crux devtools (feature `devtools`): [`DevtoolsSink`](crux_devtools::DevtoolsSink)
/// delivers records to a collector; with `devtools-collector`, the collector itself.
#[cfg(feature = "devtools")]
pub use crux_devtools as devtools;

// Each public type has one path in the facade: the core's `observe` and `record` modules
// re-export their neighbours' types for the core's own users; here every type appears
// once, in the module a user looks for it in.

/// The live API: observers, runs, spans, events, context capture and restore, flush.
pub mod observe {
    pub use crux_runtime::observe::{
        CapturedContext, Carrier, CarrierError, DeliveryStats, EnterGuard, FlushOptions,
        FlushResult, FlushStatus, MetricError, Metrics, Observer, ObserverBuilder, ParentRun, Run,
        RunOptions, RunStatus, Scope, ScopedSpan, Span, SpanBuilder, SpanField, SpanFields,
        SpanStatus, TraceParent, WithContext, capture_context, current_observer, current_scope,
        current_traceparent, event, in_span, replace_current_scope, resume_run, span, start_span,
        with_context,
    };
}

/// Crux graph records as they cross the wire (schema v5). Statuses, metrics and typed
/// span fields are in [`observe`].
pub mod record {
    pub use crux_runtime::record::{
        Base, Body, EdgeEnd, ErrorSummary, FinishedSpan, InvalidRecord, KNOWN_METRICS, Record,
        SCHEMA_VERSION, SegmentExtra, check_metric_key,
    };
}

/// Function references: what an annotated handler becomes. Attribute literals are in
/// [`attributes`].
pub mod function {
    pub use crux_runtime::function::{
        BoxFuture, Function, FunctionKind, Metadata, NoArgs, Visibility,
    };
}

/// Reading recorded runs as trees: the `crux-view` library behind the `crux` viewer.
/// [`view::Trees`] prints the runs of some records as `crux show` does.
pub use crux_view as view;

pub mod testing;

/// What handlers usually need: `use crux::prelude::*;`.
pub mod prelude {
    pub use crate::function::{Function, NoArgs};
    pub use crate::local::{ActionCtx, Deployment, Document, Id, MutationCtx, QueryCtx};
    pub use crate::{Error, Result};
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use crux_local::__private::*;
}

/// Compiles and runs every `rust` block of the README as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
