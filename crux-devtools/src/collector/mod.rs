//! The collector (`crux serve`): the Crux devtools ingest contract over HTTP, records
//! stored in SQLite, and the JSON API the viewers read.
//!
//! Routes:
//! - `POST /api/observability/records`: `{schemaVersion, records, sourceHealth?}` →
//!   202 `{dispositions: [{index, recordId, outcome, code, retryable, message?}]}`; 413
//!   past 1 MiB; 422 for an unsupported `schemaVersion` (every record rejected
//!   `unsupported_schema_version`); 400 for a body that is not a batch; 401 without the
//!   token when one is required; 503 with every record read `ingest_unavailable`
//!   (retryable, `Retry-After: 1`) when the store fails, a record refused before storing
//!   (nested too deep) keeping its permanent rejection.
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
mod batch;
mod checkpoint;
mod incoming;
mod ingest;
mod query;
mod reply;
mod store;
pub mod views;
mod web;
mod writer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Method, Request, Server};

pub use self::incoming::Incoming;
use self::query::Query;
pub use self::query::QueryError;
use self::reply::Reply;
pub use self::store::{
    Candidates, MAX_SCAN_RECORDS, MAX_SOURCES, Rejection, RunFilter, RunRow, STORE_VERSION, Store,
    StoreError, index_query,
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
const WORKERS: usize = 8;

use crux_runtime::helpers::lock;

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
    writer: writer::Writer,
    checkpointer: checkpoint::Checkpointer,
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
        writer.without_checkpoints()?;
        let checkpointer = checkpoint::Checkpointer::start(&options.db)?;
        let server = listen(options.listen)
            .and_then(|l| Server::from_listener(l, None))
            .map_err(|e| CollectorError::Listen {
                addr: options.listen,
                reason: e.to_string(),
            })?;
        let addr = server.server_addr().to_ip().unwrap_or(options.listen);
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            writer: writer::Writer::start(writer),
            checkpointer,
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
        // Every batch handed to the writer is committed before the collector is gone.
        self.shared.writer.close();
        self.shared.checkpointer.stop();
    }
}

/// The listening socket, with `TCP_NODELAY` set so that the connections accepted from it
/// (which inherit it on Linux) send each reply at once: tiny_http writes a reply's head
/// and body apart, and with Nagle's algorithm the body's last segment waited for the
/// client's delayed ACK, 40 ms a request (the cause of the ingest bench's 6 250 records/s).
fn listen(
    addr: SocketAddr,
) -> Result<std::net::TcpListener, Box<dyn std::error::Error + Send + Sync>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
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
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    // Without a token the collector is on loopback, and its records are for this machine's
    // user only: a page on another site that rebinds its DNS name to 127.0.0.1 reaches us
    // under its own name, so only loopback names are served.
    if shared.token.is_none()
        && let Some(host) = header("Host")
        && !is_loopback_host(&host)
    {
        return Reply::error(
            403,
            "forbidden_host",
            "this collector has no token, so it serves only loopback host names (localhost, \
             127.0.0.1, [::1]); set a token to serve other names",
        );
    }
    // The page's assets hold no records: they load without the token, and the page asks
    // for it when the API answers 401.
    if method == Method::Get
        && let Some(asset) = web::asset(path)
    {
        return asset;
    }
    if let Some(token) = &shared.token {
        let given = header("Authorization");
        let expected = format!("Bearer {token}");
        if !given.is_some_and(|g| {
            crux_runtime::helpers::constant_time_eq(g.as_bytes(), expected.as_bytes())
        }) {
            return Reply::error(
                401,
                "unauthorized",
                "missing or wrong ingest token: send Authorization: Bearer <CRUX_DEVTOOLS_TOKEN>",
            );
        }
    }
    match (method, path) {
        // JSON only: a browser page elsewhere may post `text/plain` without asking first.
        (Method::Post, "/api/observability/records")
            if header("Content-Type").is_some_and(|t| !is_json(&t)) =>
        {
            Reply::error(
                415,
                "unsupported_media_type",
                "records must be sent as Content-Type: application/json",
            )
        }
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

/// `localhost` (or a name under it), or a loopback address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `application/json`, with or without parameters.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
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
