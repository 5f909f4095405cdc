//! The runtime behind [crux](https://docs.rs/crux): Crux context propagation, records,
//! delivery with a bounded flush, and the local Convex-style deployment.
//!
//! Most users depend on the `crux` facade, which re-exports this crate and the attribute
//! macros.

#![warn(missing_docs)]

pub mod envelope;
mod error;
pub mod function;
pub mod ids;
pub mod local;

#[doc(hidden)]
pub mod private;

pub use error::{Error, ErrorKind, Result};
pub use function::{Function, FunctionKind, Metadata, Visibility};
