//! Serves a crux [`Deployment`](crux_local::Deployment) over Convex's HTTP API, so the npm
//! `ConvexHttpClient`, the Python `convex` client, `curl` and a Convex action's `fetch` can
//! call its functions, with the Crux run continuing across the network.
//!
//! ```no_run
//! # async fn serve(deployment: crux_local::Deployment) -> Result<(), crux_server::ServeError> {
//! use crux_server::Server;
//! let server = Server::builder(deployment).admin_key("my admin key").build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3210").await?;
//! server.serve_until_signal(listener).await?;
//! # Ok(()) }
//! ```
//!
//! - Routes, formats and replies are Convex's ([`Server`], [`encoding`]); a failed function
//!   is HTTP 200 with `{"status":"error","errorMessage","errorData"?}`, an infrastructure
//!   failure a 4xx/5xx with `{"code","message"}`.
//! - Internal functions need `Authorization: Convex <admin key>`.
//! - `Authorization: Bearer <JWT>` from a configured [`AuthProvider`] sets the handler's
//!   `ctx.auth` (Convex's `ctx.auth.getUserIdentity()`); a bad token is a 401.
//! - `__crux` in the args and a W3C `traceparent` header continue a run when the
//!   [`ContextPolicy`] accepts the caller; otherwise the call runs as a fresh root with a
//!   `security.warning` record. It never fails for it.
//! - HTTP actions ([`HttpRouter`], Convex's `httpRouter`): actions taking an
//!   [`HttpRequest`] and returning an [`HttpResponse`], routed by method and path or path
//!   prefix, served at their own paths (and under `/http/`, as Convex's local backend does).
//! - [`Limits`]: body size, body timeout, concurrent requests (answered 503 at once past
//!   the limit), header size, shutdown grace; execution limits are the deployment's.

mod auth;
mod connections;
mod http_action;
mod http_message;
mod http_router;
mod request;
mod server;
pub mod signing;

pub use auth::{
    AuthConfigError, AuthError, AuthProvider, DEFAULT_LEEWAY, MIN_HS256_SECRET, hs256_token,
};
/// Convex's value formats on the wire (shared with the client: `crux_local::encoding`).
pub use crux_local::encoding;
pub use encoding::Format;
pub use http_message::{HttpMethod, HttpRequest, HttpResponse};
pub use http_router::{HttpRouter, RouteError};
pub use server::{ContextPolicy, Limits, ServeError, Server, ServerBuilder, Shutdown};
