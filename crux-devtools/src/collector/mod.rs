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
//! - `GET /api/runs[?limit=N]`: `{runs: [{runId, name, rootPrimitive, status, startedAt,
//!   durationMs, records, sessionId, userId}]}`, newest first (default 200, at most 10 000).
//! - `GET /api/runs/{runId}`: `{run, records}`, the records as received, in arrival order.
//! - `GET /api/sources`: the `sourceHealth` of each delivering process.
//!
//! A small threaded HTTP/1.1 server (`tiny_http`), no async runtime: SQLite is blocking,
//! so a thread pool is what the work needs, and the binary stays lean.

mod store;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response, Server};

pub use self::store::{MAX_SOURCES, Rejection, RunRow, STORE_VERSION, Store, StoreError};

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

/// A response before it is written.
struct Reply {
    status: u16,
    body: Value,
    retry_after: bool,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            retry_after: false,
        }
    }
    fn error(status: u16, code: &str, message: impl Into<String>) -> Reply {
        Reply::json(
            status,
            json!({"error": {"code": code, "message": message.into()}}),
        )
    }
    fn into_response(self) -> Response<std::io::Cursor<Vec<u8>>> {
        let mut r = Response::from_data(self.body.to_string().into_bytes())
            .with_status_code(self.status)
            .with_header(header("Content-Type", "application/json"));
        if self.retry_after {
            r.add_header(header("Retry-After", "1"));
        }
        r
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn handle(request: &mut Request, shared: &Shared, reader: &mut Option<Store>) -> Reply {
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
    let url = request.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    match (request.method().clone(), path) {
        (Method::Post, "/api/observability/records") => ingest(request, shared),
        (Method::Get, "/api/runs") => read(shared, reader, |s| {
            let limit = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("limit="))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(DEFAULT_RUNS_LIMIT)
                .clamp(1, MAX_RUNS_LIMIT);
            let runs: Vec<Value> = s.runs(limit)?.iter().map(RunRow::to_json).collect();
            Ok(Reply::json(200, json!({ "runs": runs })))
        }),
        (Method::Get, "/api/sources") => read(shared, reader, |s| {
            Ok(Reply::json(200, json!({ "sources": s.sources()? })))
        }),
        (Method::Get, p) if p.starts_with("/api/runs/") => {
            let run_id = &p["/api/runs/".len()..];
            read(shared, reader, |s| {
                let Some(run) = s.run(run_id)? else {
                    return Ok(Reply::error(
                        404,
                        "run_not_found",
                        format!("no run {run_id:?} in this collector"),
                    ));
                };
                let records: Vec<Value> = s
                    .run_records(run_id)?
                    .iter()
                    .filter_map(|t| serde_json::from_str(t).ok())
                    .collect();
                Ok(Reply::json(
                    200,
                    json!({ "run": run.to_json(), "records": records }),
                ))
            })
        }
        (_, "/api/observability/records" | "/api/runs" | "/api/sources") => Reply::error(
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

/// Reads an ingest request's body and stores its records: the ingest contract.
fn ingest(request: &mut Request, shared: &Shared) -> Reply {
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body);
    if read.is_err() {
        return Reply::error(400, "invalid_body", "the request body could not be read");
    }
    if body.len() > MAX_BODY {
        return too_large();
    }
    let batch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return Reply::error(400, "invalid_json", format!("malformed JSON: {e}")),
    };
    let Some(records) = batch.get("records").and_then(Value::as_array) else {
        return Reply::error(400, "invalid_batch", "the batch needs a `records` array");
    };
    let Some(version) = batch.get("schemaVersion").and_then(Value::as_u64) else {
        return Reply::error(
            400,
            "invalid_batch",
            "the batch needs a numeric `schemaVersion`",
        );
    };
    if version != u64::from(crux_runtime::record::SCHEMA_VERSION) {
        let message = format!(
            "schemaVersion {version} is not supported; this collector accepts {}",
            crux_runtime::record::SCHEMA_VERSION
        );
        let dispositions: Vec<Value> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                disposition(
                    i,
                    r,
                    "rejected",
                    "unsupported_schema_version",
                    false,
                    Some(&message),
                )
            })
            .collect();
        return Reply::json(422, json!({ "dispositions": dispositions }));
    }
    let mut store = lock(&shared.writer);
    let results = match store.ingest(version, records) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("the collector's store failed: {e}");
            let dispositions: Vec<Value> = records
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    disposition(i, r, "rejected", "ingest_unavailable", true, Some(&message))
                })
                .collect();
            return Reply {
                status: 503,
                body: json!({ "dispositions": dispositions }),
                retry_after: true,
            };
        }
    };
    if let Some(health) = batch.get("sourceHealth") {
        // Health is advisory: a failure to keep it never fails the records.
        let _ = store.source_health(health);
    }
    drop(store);
    let dispositions: Vec<Value> = records
        .iter()
        .zip(&results)
        .enumerate()
        .map(|(i, (r, result))| match result {
            Ok(()) => disposition(i, r, "accepted", "accepted", false, None),
            Err(rejection) => disposition(
                i,
                r,
                "rejected",
                rejection.code(),
                false,
                Some(&rejection.message()),
            ),
        })
        .collect();
    Reply::json(202, json!({ "dispositions": dispositions }))
}

fn too_large() -> Reply {
    Reply::error(
        413,
        "payload_too_large",
        format!("the request body is over {MAX_BODY} bytes; send fewer records per request"),
    )
}

fn disposition(
    index: usize,
    record: &Value,
    outcome: &str,
    code: &str,
    retryable: bool,
    message: Option<&str>,
) -> Value {
    let mut d = json!({
        "index": index,
        "recordId": record.get("recordId").cloned().unwrap_or(Value::Null),
        "outcome": outcome,
        "code": code,
        "retryable": retryable,
    });
    if let Some(m) = message {
        d["message"] = Value::String(m.to_owned());
    }
    d
}
