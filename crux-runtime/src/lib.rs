//! The small core of [crux](https://docs.rs/crux): Crux records and their wire formats,
//! the delivery pipeline with a bounded flush, sinks, the live API (context, runs, spans,
//! events), the host-neutral boundary protocol ([`boundary`]) and function references.
//! It knows no host: no async runtime, no HTTP, no store. Hosts (`crux-local`) and
//! exporters (`crux-otel`) are crates built on its public API.
//!
//! Most users depend on the `crux` facade, which re-exports this crate and the attribute
//! macros. The entry point for observability is [`observe`].

#![warn(missing_docs)]

pub mod attributes;
pub mod boundary;
pub mod carrier;
pub mod clock;
mod context;
pub mod delivery;
pub mod envelope;
mod error;
pub mod function;
pub mod ids;
mod json_text;
mod metrics;
pub mod observe;
pub mod record;
pub mod run;
mod sha256;
#[cfg(feature = "signature")]
pub mod signature;
pub mod sink;
pub mod span;
mod span_fields;
mod span_stack;
pub mod taxonomy;
mod wallclock;
pub mod wire;

#[doc(hidden)]
pub mod helpers;
mod hex;

#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __macro_support;

pub use error::{Error, ErrorKind, Result};
pub use function::{Function, FunctionKind, Metadata, Visibility};
