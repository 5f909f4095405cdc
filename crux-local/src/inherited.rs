//! What a call passes on to every function it calls (`ctx.run_*`, `ctx.crux.run_*`), never
//! to scheduled work: the user it runs for and where its log lines go.

use std::sync::Arc;

use super::auth::UserIdentity;
use super::console::LogLines;

/// The part of a call's context its callees inherit.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inherited {
    /// `ctx.auth`.
    pub(crate) identity: Option<Arc<UserIdentity>>,
    /// Where `ctx.console` writes.
    pub(crate) log_lines: Option<LogLines>,
}
