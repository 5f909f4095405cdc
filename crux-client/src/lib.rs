//! Calls functions that live elsewhere — a Convex deployment's TypeScript functions or
//! another crux service — over Convex's HTTP API, with the Crux run continuing there.
//!
//! - [`Client`]: `query`/`mutation`/`action` by path with typed args and output, in
//!   `convex_encoded_json` (`$integer`, `$bytes`, `$float`), `Convex-Client:
//!   crux-rust-<version>`, admin key or JWT, a timeout per call, HTTPS (rustls, Mozilla's
//!   roots, plus any root you add). A `ConvexError`'s data is the [`crux_runtime::Error`]'s
//!   `data`, and the other errors keep their kind (read from Convex's reply). Only queries
//!   are retried. [`ClientBuilder::sign_contexts`] signs the contexts sent, for a server
//!   whose policy is `ContextPolicy::Signed`.
//! - [`Remote`] references ([`RemoteAction`], [`RemoteQuery`], [`RemoteMutation`]):
//!   declared once as constants, passed to `ctx.crux.run_*` as
//!   `PLAN.on(&client)`: the hop is recorded as for a local function (boundary span,
//!   `requested`, bounded flush) and the callee continues the run from the `__crux`
//!   argument (a crux service, or a Convex function wrapped by the Crux TypeScript
//!   wrappers).
//!
//! ```no_run
//! use crux_client::{Client, RemoteAction};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct PlanArgs { topic: String }
//! # #[derive(serde::Serialize, serde::Deserialize)] struct Plan { steps: Vec<String> }
//! const PLAN: RemoteAction<PlanArgs, Plan> = RemoteAction::new("research:plan");
//!
//! # async fn demo() -> crux_runtime::Result<()> {
//! let research = Client::builder("http://127.0.0.1:3211").admin_key("key").build()?;
//! // Outside a function (inside one: `ctx.crux.run_action("plan", PLAN.on(&research), args)`):
//! let plan = research.run_action("plan research", PLAN, PlanArgs { topic: "tides".into() }).await?;
//! # Ok(()) }
//! ```

mod client;
mod error;
mod remote;
mod reply;
mod tls;
mod typed;

pub use client::{CLIENT_NAME, Client, ClientBuilder, DEFAULT_TIMEOUT};
/// The shared secret [`ClientBuilder::sign_contexts`] signs with (the signed-context scheme
/// is `crux_runtime::signature`, which `crux-server` checks).
pub use crux_runtime::signature::ContextSecret;
pub use error::ClientError;
pub use remote::{Bound, Remote, RemoteAction, RemoteKind, RemoteMutation, RemoteQuery};
