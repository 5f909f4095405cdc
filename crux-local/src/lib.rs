//! The embedded Convex-style deployment: runs annotated functions in-process with Convex
//! semantics, every hop crossing a real JSON boundary.
//!
//! Build one with [`Deployment::builder`], register functions and tables, then call it as a
//! client would ([`Deployment::action`], [`Deployment::query`], [`Deployment::mutation`],
//! [`Deployment::call`]).

mod auth;
mod calling;
mod console;
#[cfg(feature = "tracing")]
mod console_layer;
mod ctx;
mod deployment;
mod dispatch;
pub mod encoding;
mod finite;
mod inherited;
mod receiving;
mod registry;
mod scheduler;
mod store;
mod validation;
mod value;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use auth::{Auth, TEST_ISSUER, UserIdentity};
pub use calling::{
    ActionCrux, Callee, CruxScheduler, MutationCrux, QueryCrux, ScheduleOptions, Via,
};
pub use console::{Console, LogLines, MAX_LOG_LINE, MAX_LOG_LINES};
#[cfg(feature = "tracing")]
pub use console_layer::ConsoleLayer;
pub use ctx::{ActionCtx, HostContext, MutationCtx, QueryCtx};
pub use deployment::{AsUser, Deployment, DeploymentBuilder, FunctionSet};
pub use dispatch::ClientCall;
pub use scheduler::{JobState, Schedulable, Scheduler};
pub use store::{
    DatabaseReader, DatabaseWriter, Document, Id, IndexRange, Order, Query, StoreError, TableSchema,
};
pub use value::{BYTES_KEY, Bytes, base64_decode, base64_encode};
