//! crux: observable Convex-style functions for Rust.
//!
//! Annotate async handlers with [`action`], [`query`], [`mutation`] and their internal
//! variants; every call between them lands in one Crux run.

pub use crux_macros::{
    action, internal_action, internal_mutation, internal_query, mutation, query,
};
#[cfg(feature = "otel")]
pub use crux_runtime::otel;
#[cfg(feature = "tracing")]
pub use crux_runtime::tracing;
pub use crux_runtime::{Error, ErrorKind, Function, FunctionKind, Metadata, Result, Visibility};
pub use crux_runtime::{attributes, envelope, function, ids, local, observe, record, sink};

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
