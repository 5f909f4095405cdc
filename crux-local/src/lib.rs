//! The embedded Convex-style deployment: runs annotated functions in-process with Convex
//! semantics, every hop crossing a real JSON boundary.
//!
//! Build one with [`Deployment::builder`], register functions and tables, then call it as a
//! client would ([`Deployment::action`], [`Deployment::query`], [`Deployment::mutation`],
//! [`Deployment::call`]).

mod calling;
mod ctx;
mod deployment;
mod dispatch;
pub mod encoding;
mod receiving;
mod scheduler;
mod store;
mod validation;
mod value;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use calling::{
    ActionCrux, Callee, CruxScheduler, MutationCrux, QueryCrux, ScheduleOptions, Via,
};
pub use ctx::{ActionCtx, HostContext, MutationCtx, QueryCtx};
pub use deployment::{Deployment, DeploymentBuilder, FunctionSet};
pub use dispatch::ClientCall;
pub use scheduler::{JobState, Schedulable, Scheduler};
pub use store::{
    DatabaseReader, DatabaseWriter, Document, Id, IndexRange, Order, Query, StoreError, TableSchema,
};
pub use value::{BYTES_KEY, Bytes, base64_decode, base64_encode};
