//! The host-neutral boundary protocol: what a host records around a function hop, and what
//! it does with an incoming `__crux` envelope. This is the interface a host implements.
//!
//! A host (the local deployment in `crux-local`, the HTTP server, a client for remote
//! functions) moves JSON args and results between functions; this module keeps the Crux run
//! intact across that move, the same way whatever the transport:
//!
//! - **Calling side** ([`Hop`]): `ctx.crux.run_action` opens a `runtime.convex.action`
//!   boundary span with [`Hop::action`] (which records `requested`), flushes the pipeline
//!   with [`FlushOptions::BOUNDARY`](crate::delivery::FlushOptions::BOUNDARY) so the callee's
//!   records can never arrive before the caller's, sends [`Hop::envelope`] as `__crux` in the
//!   args, then ends the span with [`Hop::end`] as the reply says and flushes again.
//!   `run_query`/`run_mutation` use [`Hop::nested`] (a span and the context, no boundary and
//!   no flush). A schedule with a continuation announces itself with
//!   [`continuation_envelope`].
//! - **Receiving side** ([`take_envelope`], [`receive`]): the host takes `__crux` out of the
//!   args and decodes it strictly (a bad envelope is ignored, with its reason kept in
//!   [`Incoming::rejected_envelope`]), then runs the handler body through [`receive`], which
//!   continues the caller's run in a new segment and acknowledges the boundary
//!   (`received`, then `completed` or `failed`), or opens a run (an action called without
//!   context), or neither (a query or mutation), and ends actions with their bounded final
//!   flush. The result is never changed by any of it, except that a panic in the body is
//!   contained ([`CatchPanic`]) and becomes an error naming the function, so the run and
//!   the boundary end `error` as for any failed call.
//!
//! Event names are in [`events`]; the attributes every boundary event carries are built by
//! [`boundary_attributes`].

mod attributes;
mod frozen;
mod incoming;
mod outgoing;
mod panic;

use std::time::Duration;

pub use attributes::{boundary_attributes, into_boundary_attributes};
pub use incoming::{Incoming, receive, take_envelope};
pub use outgoing::{Hop, continuation_envelope, schedule_span};
pub use panic::{CatchPanic, MAX_PANIC_MESSAGE, panic_error};

/// The args field that carries the envelope.
pub const ENVELOPE_KEY: &str = "__crux";

/// How long a boundary may stay open before a backend projects it as stale: 11 minutes,
/// just over Convex's 10-minute action limit (as in the TypeScript wrappers).
pub const BOUNDARY_LEASE: Duration = Duration::from_secs(11 * 60);

/// The span event names of the two-sided boundary acknowledgement.
pub mod events {
    /// The caller is about to send the call (on the boundary span, before the flush).
    pub const REQUESTED: &str = "runtime.convex.boundary.requested";
    /// The callee received the envelope and is about to run the body.
    pub const RECEIVED: &str = "runtime.convex.boundary.received";
    /// The callee's body returned `Ok`.
    pub const COMPLETED: &str = "runtime.convex.boundary.completed";
    /// The callee's body returned an error.
    pub const FAILED: &str = "runtime.convex.boundary.failed";
}
