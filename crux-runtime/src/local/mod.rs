//! The embedded Convex-style deployment: runs annotated functions in-process with Convex
//! semantics, every hop crossing a real JSON boundary.
//!
//! SKELETON: the context types exist so that macros can be built; the deployment itself
//! is issue 4.

mod ctx;

pub use ctx::{ActionCtx, MutationCtx, QueryCtx};
