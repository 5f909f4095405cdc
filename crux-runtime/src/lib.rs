//! The runtime behind [crux](https://docs.rs/crux): Crux context propagation, records,
//! delivery with a bounded flush, and the local Convex-style deployment.
//!
//! Most users depend on the `crux` facade, which re-exports this crate and the attribute
//! macros. The entry point for observability is [`observe`].

#![warn(missing_docs)]

pub mod attributes;
pub mod carrier;
pub mod clock;
mod context;
pub mod delivery;
pub mod envelope;
mod error;
pub mod flush;
pub mod function;
pub mod ids;
pub mod local;
mod metrics;
pub mod observe;
pub mod record;
pub mod run;
pub mod sink;
pub mod span;
mod span_fields;
pub mod taxonomy;
mod wallclock;
pub mod wire;

#[doc(hidden)]
pub mod private;

pub use error::{Error, ErrorKind, Result};
pub use function::{Function, FunctionKind, Metadata, Visibility};
