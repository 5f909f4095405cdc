//! The collector (`crux serve`): the Crux devtools ingest contract over HTTP, records
//! stored in SQLite, and the JSON API the viewers read.
//!
//! Routes:
//! - `POST /api/observability/records`: `{schemaVersion, records, sourceHealth?}` →
//!   202 `{dispositions: [{index, recordId, outcome, code, retryable, message?}]}`; 413
//!   past 1 MiB; 422 for an unsupported `schemaVersion` (every record rejected
//!   `unsupported_schema_version`); 400 for a body that is not a batch; 401 without the
//!   token when one is required; 503 with every record `ingest_unavailable` (retryable,
//!   `Retry-After: 1`) when the store fails.
//! - `GET /api/runs[?limit=N&status=&name=&since=&until=&session=&user=&q=]`: `{runs:
//!   [{runId, name, rootPrimitive, status, startedAt, durationMs, records, sessionId,
//!   userId, modelCalls, inputTokens, outputTokens, totalTokens}], revision}`, newest
//!   first (default 200, at most 10 000); `q` keeps the runs a search for it matches.
//! - `GET /api/runs/{runId}`: `{run, records}`, the records as received, in arrival order.
//! - `GET /api/runs/{runId}/view[?all=1]`: `{run, view, revision}`, `view` being `crux
//!   show RUN --json [--all]` (the tree, links, events, errors).
//! - `GET /api/search?q=TEXT[&limit=N]`: `{hits, runs, truncated}` (`crux search --json`).
//! - `GET /api/revision`: `{revision}`, which grows with every stored record (the page
//!   polls it for live updates).
//! - `GET /api/sources`: the `sourceHealth` of each delivering process.
//! - `GET /`, `/assets/*`: the web viewer (plain HTML, CSS and JS built into the binary).
//!
//! A small threaded HTTP/1.1 server (`tiny_http`), no async runtime: SQLite is blocking,
//! so a thread pool is what the work needs, and the binary stays lean.

mod api;
mod ingest;
mod query;
mod reply;
mod store;
pub mod views;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tiny_http::{Method, Request, Server};

use self::query::Query;
pub use self::query::QueryError;
use self::reply::Reply;
pub use self::store::{
    MAX_SOURCES, Rejection, RunFilter, RunRow, STORE_VERSION, Store, StoreError,
};

/// The collector's default address (the TypeScript devtools' port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4400";
/// The default database, relative to the working directory.
pub const DEFAULT_DB: &str = ".crux/devtools.db";
/// Largest ingest body accepted (413 past it).
pub const MAX_BODY: usize = 1024 * 1024;
/// Default and largest number of runs `GET /api/runs` returns.
pub const DEFAULT_RUNS_LIMIT: usize = 200;
/// Largest `limit` of `GET /api/runs`.
pub const MAX_RUNS_LIMIT: usize = 10_000;
/// Threads serving requests.
const WORKERS: usize = 4;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the collector cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// The database cannot be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {reason} (pick another with --listen ADDR)")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// A non-loopback address without an ingest token.
    #[error(
        "listening on {addr} exposes the collector beyond this machine, which needs an ingest token: \
         set CRUX_DEVTOOLS_TOKEN (or pass --token TOKEN) here and in the delivering processes"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
}

/// How to run a collector.
#[derive(Clone, Debug)]
pub struct CollectorOptions {
    /// Where to listen ([`DEFAULT_LISTEN`]; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The SQLite database ([`DEFAULT_DB`]).
    pub db: PathBuf,
    /// The ingest token. When set, every request must carry `Authorization: Bearer TOKEN`;
    /// required when `listen` is not a loopback address.
    pub token: Option<String>,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            db: PathBuf::from(DEFAULT_DB),
            token: None,
        }
    }
}

/// A running collector; dropping it stops it.
pub struct Collector {
    server: Arc<Server>,
    addr: SocketAddr,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

struct Shared {
    writer: Mutex<Store>,
    db: PathBuf,
    token: Option<String>,
}

impl Collector {
    /// Opens the database and starts serving.
    pub fn start(options: CollectorOptions) -> Result<Collector, CollectorError> {
        let token = options.token.filter(|t| !t.trim().is_empty());
        if !options.listen.ip().is_loopback() && token.is_none() {
            return Err(CollectorError::TokenRequired {
                addr: options.listen,
            });
        }
        let writer = Store::open(&options.db)?;
        let server = Server::http(options.listen).map_err(|e| CollectorError::Listen {
            addr: options.listen,
            reason: e.to_string(),
        })?;
        let addr = server.server_addr().to_ip().unwrap_or(options.listen);
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            writer: Mutex::new(writer),
            db: options.db,
            token,
        });
        let workers = (0..WORKERS)
            .map(|i| {
                let server = Arc::clone(&server);
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("crux-collector-{i}"))
                    .spawn(move || serve(&server, &shared))
                    .expect("spawn a collector thread")
            })
            .collect();
        Ok(Collector {
            server,
            addr,
            workers,
            shared,
        })
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL for `CRUX_DEVTOOLS_URL` (`http://ADDR`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The database file.
    pub fn db(&self) -> &std::path::Path {
        &self.shared.db
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn serve(server: &Server, shared: &Shared) {
    // Each thread reads through its own connection (WAL: readers never block the writer).
    let mut reader: Option<Store> = None;
    while let Ok(mut request) = server.recv() {
        let response = handle(&mut request, shared, &mut reader);
        let _ = request.respond(response.into_response());
    }
}

fn handle(request: &mut Request, shared: &Shared, reader: &mut Option<Store>) -> Reply {
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let method = request.method().clone();
    // The page's assets hold no records: they load without the token, and the page asks
    // for it when the API answers 401.
    if method == Method::Get
        && let Some(asset) = web::asset(path)
    {
        return asset;
    }
    if let Some(token) = &shared.token {
        let given = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str());
        let expected = format!("Bearer {token}");
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
            return Reply::error(
                401,
                "unauthorized",
                "missing or wrong ingest token: send Authorization: Bearer <CRUX_DEVTOOLS_TOKEN>",
            );
        }
    }
    match (method, path) {
        (Method::Post, "/api/observability/records") => ingest::ingest(request, shared),
        (Method::Get, p) if p.starts_with("/api/") => {
            let query = match Query::parse(query) {
                Ok(q) => q,
                Err(e) => return Reply::error(400, "invalid_query", e.to_string()),
            };
            read(shared, reader, |s| api::get(s, p, &query))
        }
        (_, p) if p.starts_with("/api/") && api::is_route(p) => Reply::error(
            405,
            "method_not_allowed",
            "method not allowed on this route",
        ),
        _ => Reply::error(404, "not_found", format!("no route {path}")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read(
    shared: &Shared,
    reader: &mut Option<Store>,
    f: impl FnOnce(&Store) -> Result<Reply, StoreError>,
) -> Reply {
    if reader.is_none() {
        match Store::open_read_only(&shared.db) {
            Ok(s) => *reader = Some(s),
            Err(e) => return Reply::error(503, "store_unavailable", e.to_string()),
        }
    }
    match f(reader.as_ref().expect("opened above")) {
        Ok(r) => r,
        Err(e) => Reply::error(503, "store_unavailable", e.to_string()),
    }
}
