//! Signed contexts ([`ContextPolicy::Signed`]): the `Crux-Signature` scheme lives in
//! [`crux_runtime::signature`], shared with `crux-client` (which signs what it sends);
//! this module re-exports it. The request's exact `__crux` text, what a signature covers,
//! is read with the request itself, in one pass (see the crate's `request` module).
//!
//! [`ContextPolicy::Signed`]: crate::ContextPolicy::Signed

pub use crux_runtime::signature::*;
