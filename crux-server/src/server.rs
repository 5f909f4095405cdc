//! The server: its settings, the routes of Convex's HTTP API, and serving with a graceful
//! shutdown.

// A refused request's `Response` is the error of the request-reading helpers: built once,
// on the way out; boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};

use crux_local::{ClientCall, Deployment, LogLines, UserIdentity};
use crux_runtime::carrier::TraceParent;
use crux_runtime::function::FunctionKind;
use crux_runtime::helpers::constant_time_eq;
use crux_runtime::observe::{FlushOptions, FlushResult};

use crate::auth::{AuthProvider, Verifier};
use crate::encoding::{self, Format};
use crate::http_action;
use crate::http_router::{HttpRouter, RouteError};
use crate::request::{from_query_string, parse_body, single_args};
use crate::signing::{self, ContextSecret, SIGNATURE_HEADER, SignatureError, Signed};

/// Who may send a context (`__crux` in the args, or a `traceparent` header) that the call
/// continues. A context the policy does not accept never fails a call: the call runs as a
/// fresh root and its run records a `security.warning` naming the policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ContextPolicy {
    /// Callers on a loopback address (127.0.0.0/8, ::1) and callers with the admin key.
    /// The default: right for development and for a server only reachable through a
    /// local proxy or sidecar (note that behind a proxy on the same host every caller is
    /// loopback).
    #[default]
    LoopbackOrAdmin,
    /// Only callers with the admin key (`Authorization: Convex <key>`).
    AdminOnly,
    /// Anyone (a server reachable only by trusted callers).
    Anyone,
    /// No one: every call is a fresh root.
    NoOne,
    /// Callers that sign the context with a secret shared with the server, in a
    /// `Crux-Signature` header ([`signing`](crate::signing) defines it;
    /// [`sign_context`](crate::signing::sign_context) makes it). A context without a valid
    /// signature made less than `max_age` ago runs as a fresh root with a
    /// `security.warning` saying why.
    Signed {
        /// The shared secret.
        secret: ContextSecret,
        /// How far the signature's time may be from the server's clock (five minutes is
        /// typical: a signed context can be replayed within it).
        max_age: Duration,
    },
}

/// The server's limits and timeouts, each a setting on [`ServerBuilder`].
///
/// Execution limits per function kind are the deployment's
/// ([`DeploymentBuilder::query_timeout`](crux_local::DeploymentBuilder::query_timeout) and
/// its siblings; 1 s for queries and mutations, 10 minutes for actions, as on Convex).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body; a larger one is answered 413. Default 16 MiB (Convex's
    /// argument size limit).
    pub max_body_bytes: usize,
    /// How long a client may take to send its body; a slower one is answered 408.
    /// Default 30 s.
    pub body_timeout: Duration,
    /// Requests served at once; one more is answered 503 at once, never queued.
    /// Default 1024.
    pub max_concurrent_requests: usize,
    /// Largest total size of a request's header names and values; a larger one is
    /// answered 431. Default 32 KiB.
    pub max_header_bytes: usize,
    /// How long a shutdown waits for calls in flight before it stops waiting. Default 30 s.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's headers (from the first byte it
    /// waits for, also between requests on a kept-alive connection); a slower one's
    /// connection is closed. Default 30 s.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            body_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            max_header_bytes: 32 << 10,
            shutdown_grace: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Configures a [`Server`].
#[derive(Debug)]
pub struct ServerBuilder {
    deployment: Deployment,
    admin_key: Option<String>,
    context_policy: ContextPolicy,
    limits: Limits,
    http: HttpRouter,
    auth: Verifier,
}

impl ServerBuilder {
    /// Trusts the JWTs of `provider`: a call with `Authorization: Bearer <JWT>` from it
    /// runs with the token's user as `ctx.auth`. Repeatable (one per issuer). Without any,
    /// a bearer token is answered 401 `NoAuthProvider`, as on Convex.
    pub fn auth_provider(mut self, provider: AuthProvider) -> Self {
        self.auth.add(provider);
        self
    }

    /// The admin key that lets a caller (`Authorization: Convex <key>`) reach internal
    /// functions and send a context under [`ContextPolicy::AdminOnly`]. Without one, no
    /// caller is an admin.
    pub fn admin_key(mut self, key: impl Into<String>) -> Self {
        self.admin_key = Some(key.into());
        self
    }

    /// Who may send a context the call continues (default
    /// [`ContextPolicy::LoopbackOrAdmin`]).
    pub fn context_policy(mut self, policy: ContextPolicy) -> Self {
        self.context_policy = policy;
        self
    }

    /// All limits at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// [`Limits::max_body_bytes`].
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_body_bytes = bytes;
        self
    }

    /// [`Limits::body_timeout`].
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.limits.body_timeout = timeout;
        self
    }

    /// [`Limits::max_concurrent_requests`].
    pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
        self.limits.max_concurrent_requests = requests;
        self
    }

    /// [`Limits::max_header_bytes`].
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_header_bytes = bytes;
        self
    }

    /// [`Limits::shutdown_grace`].
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.limits.shutdown_grace = grace;
        self
    }

    /// Serves the HTTP actions of `router` at their own paths on the same listener (the
    /// paths under `/api/` stay Convex's API); see [`HttpRouter`].
    ///
    /// # Errors
    ///
    /// [`RouteError::NotRegistered`] when a routed action is not registered on the
    /// deployment.
    pub fn http_actions(mut self, router: HttpRouter) -> Result<Self, RouteError> {
        router.check(&self.deployment)?;
        self.http = router;
        Ok(self)
    }

    /// [`Limits::header_read_timeout`].
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// Builds the server.
    pub fn build(self) -> Server {
        Server {
            shared: Arc::new(Shared {
                permits: Semaphore::new(self.limits.max_concurrent_requests),
                deployment: self.deployment,
                admin_key: self.admin_key,
                context_policy: self.context_policy,
                limits: self.limits,
                http: self.http,
                auth: self.auth,
            }),
        }
    }
}

/// A [`Deployment`] served over Convex's HTTP API. A cheap `Clone` handle.
///
/// Routes: `POST /api/query` (and `GET` with `path`, `args`, `format` in the query
/// string), `POST /api/mutation`, `POST /api/action`, `POST /api/function` (any kind) and
/// `POST /api/run/{path}` (`messages/list` runs `messages:list`; `format` defaults to
/// `json`).
#[derive(Clone, Debug)]
pub struct Server {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) deployment: Deployment,
    pub(crate) admin_key: Option<String>,
    context_policy: ContextPolicy,
    pub(crate) limits: Limits,
    permits: Semaphore,
    pub(crate) http: HttpRouter,
    pub(crate) auth: Verifier,
}

/// What [`Server::serve`] reports when it has stopped.
#[derive(Debug)]
#[non_exhaustive]
pub struct Shutdown {
    /// Calls were still in flight when [`Limits::shutdown_grace`] ran out.
    pub grace_ran_out: bool,
    /// The final flush of the deployment's records.
    pub flush: FlushResult,
}

/// The server could not serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Accepting connections failed.
    #[error("the crux server stopped serving: {0}")]
    Io(#[from] std::io::Error),
}

impl Server {
    /// Starts configuring a server for `deployment`.
    pub fn builder(deployment: Deployment) -> ServerBuilder {
        ServerBuilder {
            deployment,
            admin_key: None,
            context_policy: ContextPolicy::default(),
            limits: Limits::default(),
            http: HttpRouter::default(),
            auth: Verifier::default(),
        }
    }

    /// The deployment it serves.
    pub fn deployment(&self) -> &Deployment {
        &self.shared.deployment
    }

    /// The routes as an axum `Router`, to merge into an application of one's own (serve it
    /// with `into_make_service_with_connect_info::<SocketAddr>()`: the context policy reads
    /// the peer address; without it every caller counts as remote).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/query", post(query).get(query_get))
            .route("/api/mutation", post(mutation))
            .route("/api/action", post(action))
            .route("/api/function", post(function))
            .route("/api/run/{*path}", post(run_path))
            .fallback(http_action::fallback)
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` until `shutdown` completes; then stops accepting, lets the
    /// calls in flight finish within [`Limits::shutdown_grace`], and runs the final
    /// bounded flush of the deployment's records.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Shutdown, ServeError> {
        let stopping = Arc::new(Notify::new());
        let notify = stopping.clone();
        let serve = crate::connections::serve(
            listener,
            self.router(),
            self.shared.limits.header_read_timeout,
            async move {
                shutdown.await;
                notify.notify_one();
            },
        );
        let grace = self.shared.limits.shutdown_grace;
        let grace_ran_out = tokio::select! {
            () = serve => false,
            () = async {
                stopping.notified().await;
                tokio::time::sleep(grace).await;
            } => true,
        };
        let flush = self
            .shared
            .deployment
            .observer()
            .flush(FlushOptions::FINAL)
            .await;
        Ok(Shutdown {
            grace_ran_out,
            flush,
        })
    }

    /// [`serve`](Self::serve) until SIGINT (Ctrl-C) or, on Unix, SIGTERM.
    pub async fn serve_until_signal(&self, listener: TcpListener) -> Result<Shutdown, ServeError> {
        self.serve(listener, signal()).await
    }
}

/// SIGINT or SIGTERM.
async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// An infrastructure failure as Convex answers it: a non-2xx status with
/// `{"code", "message"}`.
pub(crate) fn failure(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message.into()})),
    )
        .into_response()
}

pub(crate) async fn not_found() -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        "no such route: this server serves /api/query, /api/mutation, /api/action, \
         /api/function and /api/run/{path}",
    )
}

async fn query(state: State<Arc<Shared>>, request: Request) -> Response {
    api(state, request, Route::Kind(FunctionKind::Query)).await
}

async fn query_get(state: State<Arc<Shared>>, request: Request) -> Response {
    api(state, request, Route::QueryGet).await
}

async fn mutation(state: State<Arc<Shared>>, request: Request) -> Response {
    api(state, request, Route::Kind(FunctionKind::Mutation)).await
}

async fn action(state: State<Arc<Shared>>, request: Request) -> Response {
    api(state, request, Route::Kind(FunctionKind::Action)).await
}

async fn function(state: State<Arc<Shared>>, request: Request) -> Response {
    api(state, request, Route::AnyKind).await
}

async fn run_path(state: State<Arc<Shared>>, request: Request) -> Response {
    let url_path = request
        .uri()
        .path()
        .strip_prefix("/api/run/")
        .unwrap_or_default()
        .to_owned();
    api(state, request, Route::Run(url_path)).await
}

/// Which route a request came by.
enum Route {
    /// `/api/query|mutation|action`: the body names the path; one kind only.
    Kind(FunctionKind),
    /// `GET /api/query`: path, args and format in the query string.
    QueryGet,
    /// `/api/function`: the body names the path; any kind.
    AnyKind,
    /// `/api/run/{path}`: the URL names the path; any kind; format defaults to `json`.
    Run(String),
}

async fn api(State(shared): State<Arc<Shared>>, request: Request, route: Route) -> Response {
    let _permit = match admit(&shared, request.headers()) {
        Ok(permit) => permit,
        Err(response) => return response,
    };
    let peer = peer_of(&request);
    let (parts, body) = request.into_parts();
    let client = match Client::of(&shared, &parts.headers) {
        Ok(client) => client,
        Err(response) => return response,
    };
    // Read once, with the exact text of `__crux` where a signature must cover it.
    let signed = matches!(shared.context_policy, ContextPolicy::Signed { .. });
    let request = match route {
        Route::QueryGet => match parts.uri.query().map(|q| from_query_string(q, signed)) {
            Some(Ok(request)) => request,
            Some(Err(message)) => return failure(StatusCode::BAD_REQUEST, "BadQuery", message),
            None => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "BadQuery",
                    "GET /api/query needs `path` (and `args`, `format`) in the query string",
                );
            }
        },
        _ => {
            if let Err(response) = check_json_content_type(&parts.headers) {
                return response;
            }
            let body = match read_body(&shared.limits, &parts.headers, body).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            match parse_body(&body, matches!(route, Route::Run(_)), signed) {
                Ok(request) => request,
                Err(message) => return failure(StatusCode::BAD_REQUEST, "BadJsonBody", message),
            }
        }
    };
    let (path, kind, default_format) = match route {
        Route::Kind(kind) => (request.path, Some(kind), None),
        Route::QueryGet => (request.path, Some(FunctionKind::Query), None),
        Route::AnyKind => (request.path, None, None),
        Route::Run(url_path) => (url_to_function_path(&url_path), None, Some(Format::Json)),
    };
    let format = match (&request.format, default_format) {
        (Some(name), _) => match Format::parse(name) {
            Some(format) => format,
            None => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "BadFormat",
                    format!("unknown format `{name}`: use \"json\" or \"convex_encoded_json\""),
                );
            }
        },
        (None, Some(format)) => format,
        (None, None) if client.requires_format => {
            return failure(
                StatusCode::BAD_REQUEST,
                "MissingFormat",
                "this Convex-Client is not one the server knows, so the request must name its \
                 `format` (\"json\" or \"convex_encoded_json\")",
            );
        }
        (None, None) => Format::Json,
    };
    let args = match single_args(request.args) {
        Ok(args) => args,
        Err(message) => return function_error(&message, None, format),
    };
    let args = match encoding::decode(args, format) {
        Ok(args) => args,
        Err(err) => return function_error(&err.to_string(), None, format),
    };
    let mut call = ClientCall::new().admin(client.admin);
    if let Some(identity) = client.identity {
        call = call.identity(identity);
    }
    if let Some(kind) = kind {
        call = call.kind(kind);
    }
    if let Some(traceparent) = traceparent(&parts.headers) {
        call = call.remote_parent(traceparent);
    }
    // The kind a signature binds is the function's own, whatever the route (an unknown
    // path fails as NotFound anyway).
    let signed_kind = kind
        .or_else(|| shared.deployment.metadata(&path).map(|m| m.kind))
        .map_or("", kind_name);
    let call_named = Called {
        kind: signed_kind,
        method: "",
        path: &path,
    };
    let crux = request.crux_text.as_deref();
    if let Some(reason) = shared.distrust(client.admin, peer, &parts.headers, call_named, crux) {
        call = call.distrust_context(reason);
    }
    let log_lines = LogLines::new();
    call = call.log_lines(log_lines.clone());
    let mut reply = match shared.deployment.call_with(&path, args, call).await {
        Ok(value) => match encoding::encode(value, format) {
            Ok(value) => {
                let mut body = Map::new();
                body.insert("status".into(), "success".into());
                body.insert("value".into(), value);
                body
            }
            Err(err) => function_error_body(&err.to_string(), None, format),
        },
        Err(err) => function_error_body(err.message(), err.data().cloned(), format),
    };
    // Convex leaves `logLines` out when there are none.
    let lines = log_lines.take();
    if !lines.is_empty() {
        reply.insert("logLines".into(), lines.into());
    }
    axum::Json(Value::Object(reply)).into_response()
}

/// A concurrency permit for a request whose headers fit the limit; else the refusal (503
/// at once past [`Limits::max_concurrent_requests`], 431 past
/// [`Limits::max_header_bytes`]).
pub(crate) fn admit<'a>(
    shared: &'a Shared,
    headers: &HeaderMap,
) -> Result<SemaphorePermit<'a>, Response> {
    let Ok(permit) = shared.permits.try_acquire() else {
        let mut response = failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "TooManyConcurrentRequests",
            format!(
                "the server is already serving {} requests (Limits::max_concurrent_requests); \
                 retry shortly",
                shared.limits.max_concurrent_requests
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(response);
    };
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > shared.limits.max_header_bytes {
        return Err(failure(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HeadersTooLarge",
            format!(
                "the request's headers take {header_bytes} bytes; this server accepts \
                 {} (Limits::max_header_bytes)",
                shared.limits.max_header_bytes
            ),
        ));
    }
    Ok(permit)
}

/// The request's W3C `traceparent`, if it has a valid one (an invalid one is ignored, as
/// W3C trace context asks).
pub(crate) fn traceparent(headers: &HeaderMap) -> Option<TraceParent> {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<TraceParent>().ok())
}

/// A failed function as Convex answers it: HTTP 200 with `status: "error"`, and
/// `errorData` when the error carries data (a `ConvexError` in the clients).
fn function_error(message: &str, data: Option<Value>, format: Format) -> Response {
    axum::Json(Value::Object(function_error_body(message, data, format))).into_response()
}

fn function_error_body(message: &str, data: Option<Value>, format: Format) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("status".into(), "error".into());
    body.insert("errorMessage".into(), message.into());
    if let Some(data) = data {
        let data = encoding::encode(data, format).unwrap_or(Value::Null);
        body.insert("errorData".into(), data);
    }
    body
}

impl Shared {
    /// Whether `key` is this server's admin key (compared in constant time).
    pub(crate) fn is_admin_key(&self, key: &str) -> bool {
        self.admin_key
            .as_ref()
            .is_some_and(|expected| constant_time_eq(key.as_bytes(), expected.as_bytes()))
    }

    /// Why this caller's context is not accepted, if it is not.
    ///
    /// `call` is what is called, and `crux` the `__crux` text exactly as the request
    /// carried it (none for an HTTP action, or when the policy is not `Signed`): what a
    /// [`ContextPolicy::Signed`] signature covers, with the `traceparent`.
    pub(crate) fn distrust(
        &self,
        admin: bool,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        call: Called<'_>,
        crux: Option<&str>,
    ) -> Option<String> {
        let loopback = peer.is_some_and(|addr| addr.ip().is_loopback());
        let (trusted, policy) = match &self.context_policy {
            ContextPolicy::LoopbackOrAdmin => (admin || loopback, "LoopbackOrAdmin"),
            ContextPolicy::AdminOnly => (admin, "AdminOnly"),
            ContextPolicy::Anyone => (true, "Anyone"),
            ContextPolicy::NoOne => (false, "NoOne"),
            ContextPolicy::Signed { secret, max_age } => {
                let checked = check_signature(secret, *max_age, headers, call, crux);
                return checked.err().map(|err| {
                    format!(
                        "the server's context policy (ContextPolicy::Signed) does not accept \
                         this context: {err}; the call runs as a fresh root"
                    )
                });
            }
        };
        (!trusted).then(|| {
            format!(
                "the server's context policy (ContextPolicy::{policy}) does not accept a \
                 context from this caller; the call runs as a fresh root"
            )
        })
    }
}

/// What a request calls, as a [`ContextPolicy::Signed`] signature binds it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Called<'a> {
    /// `query`, `mutation`, `action`, or `http` for an HTTP action.
    pub(crate) kind: &'a str,
    /// An HTTP action's request method as sent; `""` for a function call.
    pub(crate) method: &'a str,
    /// The function's path, or an HTTP action's URL path.
    pub(crate) path: &'a str,
}

/// Checks the `Crux-Signature` of the context a request carries (none: nothing to check).
fn check_signature(
    secret: &ContextSecret,
    max_age: Duration,
    headers: &HeaderMap,
    call: Called<'_>,
    crux: Option<&str>,
) -> Result<(), SignatureError> {
    let traceparent = headers
        .get("traceparent")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .unwrap_or_default();
    if traceparent.is_empty() && crux.is_none() {
        return Ok(());
    }
    let header = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or_default());
    let signed = Signed {
        kind: call.kind,
        method: call.method,
        path: call.path,
        traceparent,
        crux: crux.unwrap_or_default(),
    };
    signing::verify_context(secret, max_age, header, &signed)
}

/// The name of a function kind in a signed text.
fn kind_name(kind: FunctionKind) -> &'static str {
    Signed::call(kind, "", "", "").kind
}

/// What the headers say about the caller.
struct Client {
    admin: bool,
    requires_format: bool,
    /// The user a verified bearer token names.
    identity: Option<UserIdentity>,
}

/// Clients whose `Convex-Client` name the server knows (a known client need not send a
/// `format`).
const KNOWN_CLIENTS: &[&str] = &["npm", "python", "python-convex", "rust", "swift", "kotlin"];

impl Client {
    fn of(shared: &Shared, headers: &HeaderMap) -> Result<Client, Response> {
        let mut requires_format = false;
        if let Some(value) = headers.get("convex-client") {
            let parsed = value
                .to_str()
                .ok()
                .and_then(|v| v.rsplit_once('-'))
                .filter(|(name, version)| !name.is_empty() && is_semver(version));
            let Some((name, _)) = parsed else {
                return Err(failure(
                    StatusCode::BAD_REQUEST,
                    "InvalidClientVersion",
                    "the Convex-Client header must be `{name}-{semver}`, like `npm-1.49.0`",
                ));
            };
            requires_format = !KNOWN_CLIENTS.contains(&name);
        }
        let mut admin = false;
        let mut identity = None;
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let value = value.to_str().unwrap_or_default();
            if let Some(key) = value.strip_prefix("Convex ") {
                match shared.is_admin_key(key) {
                    true => admin = true,
                    false => {
                        return Err(failure(
                            StatusCode::UNAUTHORIZED,
                            "BadAdminKey",
                            "The provided admin key was invalid for this instance",
                        ));
                    }
                }
            } else if let Some(token) = value.strip_prefix("Bearer ") {
                if shared.auth.is_empty() {
                    return Err(failure(
                        StatusCode::UNAUTHORIZED,
                        "NoAuthProvider",
                        "No auth provider found matching the given token: this server trusts \
                         no JWT issuer (ServerBuilder::auth_provider); call without a token or \
                         with `Authorization: Convex <admin key>`",
                    ));
                }
                match shared.auth.verify(token) {
                    Ok(user) => identity = Some(user),
                    Err(err) => {
                        return Err(failure(
                            StatusCode::UNAUTHORIZED,
                            err.code(),
                            err.to_string(),
                        ));
                    }
                }
            } else {
                return Err(failure(
                    StatusCode::UNAUTHORIZED,
                    "BadAuthHeader",
                    "the Authorization header must be `Convex <admin key>` or `Bearer <JWT>`",
                ));
            }
        }
        Ok(Client {
            admin,
            requires_format,
            identity,
        })
    }
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The caller's address, when the server was started with connection info.
pub(crate) fn peer_of(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BadContentType",
            "Expected request with `Content-Type: application/json`",
        ))
    }
}

/// Reads the whole body within the size limit and the body timeout.
pub(crate) async fn read_body(
    limits: &Limits,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Response> {
    let too_large = || {
        failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BodyTooLarge",
            format!(
                "the request body is larger than {} bytes (Limits::max_body_bytes)",
                limits.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_body_bytes as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_body_bytes),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(err)) => {
            if std::error::Error::source(&err)
                .is_some_and(|e| e.to_string().contains("length limit"))
                || err.to_string().contains("length limit")
            {
                Err(too_large())
            } else {
                Err(failure(
                    StatusCode::BAD_REQUEST,
                    "BadBody",
                    format!("the request body could not be read: {err}"),
                ))
            }
        }
        Err(_) => Err(failure(
            StatusCode::REQUEST_TIMEOUT,
            "BodyTimeout",
            format!(
                "the request body did not arrive within {:?} (Limits::body_timeout)",
                limits.body_timeout
            ),
        )),
    }
}

/// `messages/list` → `messages:list`; a path that already names its export is kept.
fn url_to_function_path(url_path: &str) -> String {
    if url_path.contains(':') {
        return url_path.to_owned();
    }
    match url_path.rsplit_once('/') {
        Some((module, export)) => format!("{module}:{export}"),
        None => url_path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_urls_name_functions() {
        assert_eq!(url_to_function_path("messages/list"), "messages:list");
        assert_eq!(url_to_function_path("a/b/c"), "a/b:c");
        assert_eq!(url_to_function_path("a/b:c"), "a/b:c");
    }

    #[test]
    fn semver() {
        assert!(is_semver("1.49.0"));
        assert!(is_semver("1.2.3-alpha.1"));
        assert!(!is_semver("1.2"));
        assert!(!is_semver("x.y.z"));
    }
}
