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

pub use crux_macros::{
    action, internal_action, internal_mutation, internal_query, mutation, query,
};
#[cfg(feature = "otel")]
pub use crux_runtime::otel;
#[cfg(feature = "tracing")]
pub use crux_runtime::tracing;
pub use crux_runtime::{Error, ErrorKind, Function, FunctionKind, Metadata, Result, Visibility};
pub use crux_runtime::{attributes, envelope, function, ids, local, observe, record, sink};
/// Reading recorded runs as trees: the `crux-view` library behind the `crux` viewer.
/// [`view::Trees`] prints the runs of some records as `crux show` does.
pub use crux_view as view;

pub mod testing;

/// What handlers usually need: `use crux::prelude::*;`.
pub mod prelude {
    pub use crate::local::{ActionCtx, Deployment, Document, Id, MutationCtx, QueryCtx};
    pub use crate::{Error, Function, Result};
    pub use crux_runtime::function::NoArgs;
    pub use serde::{Deserialize, Serialize};
}

#[doc(hidden)]
pub mod __private {
    pub use crux_runtime::private::*;
}

/// Compiles and runs every `rust` block of the README as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
