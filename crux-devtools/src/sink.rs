//! [`DevtoolsSink`]: records to a collector over the Crux devtools ingest contract.
//!
//! Records reach the sink on crux's delivery thread, which only serializes them into the
//! sink's bounded queue. Sender threads of the sink's own (one per request in flight) post
//! them in chunks with a blocking client, match the per-record dispositions, and requeue
//! what is retryable at the front after a capped, jittered exponential backoff. Neither
//! the program nor an async runtime ever waits on the network; a flush waits at most
//! [`DevtoolsSinkBuilder::flush_timeout`].

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crux_runtime::record::{Record, SCHEMA_VERSION};
use crux_runtime::sink::{Sink, SinkError};
use serde_json::{Value, json};

use crate::receipt::CollectorReply;

/// The collector's default base URL (the TypeScript transport's default).
pub const DEFAULT_URL: &str = "http://127.0.0.1:4400";
/// The ingest route, appended to the base URL.
pub const INGEST_PATH: &str = "/api/observability/records";
/// Wait before a partial batch is sent without a flush (TypeScript: 200 ms).
pub const DEFAULT_BATCH_WINDOW: Duration = Duration::from_millis(200);
/// Queued records that trigger a send at once (TypeScript's engine batch: 512).
pub const DEFAULT_BATCH_RECORDS: usize = 512;
/// Most records per request (TypeScript: 50).
pub const DEFAULT_REQUEST_RECORDS: usize = 50;
/// Most bytes of one request body (TypeScript and the collector: 1 MiB).
pub const DEFAULT_REQUEST_BYTES: usize = 1024 * 1024;
/// Most requests in flight (TypeScript: 8).
pub const DEFAULT_IN_FLIGHT: usize = 8;
/// Bound of one request (TypeScript: 5 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Most queued records (TypeScript: 2048); past it the oldest are dropped and counted.
pub const DEFAULT_QUEUE_RECORDS: usize = 2048;
/// Most queued bytes, each record counted as its JSON length + [`RECORD_OVERHEAD`]
/// (TypeScript: 4 MiB).
pub const DEFAULT_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes added to each record's JSON length when the queue is measured (TypeScript: 512).
pub const RECORD_OVERHEAD: usize = 512;
/// First retry delay; doubled per attempt (TypeScript: 100 ms × 2^attempt).
pub const RETRY_BASE: Duration = Duration::from_millis(100);
/// Largest retry delay before jitter (TypeScript: 5 s).
pub const RETRY_CAP: Duration = Duration::from_secs(5);
/// Largest `Retry-After` honoured, so a confused collector cannot park the sink for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Default bound of a sink flush (crux's final flush bound).
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// Largest reply body read back from a collector.
const MAX_REPLY: u64 = 4 * 1024 * 1024;
/// Bytes of the request envelope around the records (`{"schemaVersion":5,"records":[...]}`
/// plus `sourceHealth`), kept free under the request limit.
const ENVELOPE_RESERVE: usize = 1024;

use crux_runtime::helpers::lock;

/// A sink that cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum DevtoolsError {
    /// The collector URL is not usable.
    #[error("invalid devtools URL `{url}`: {reason}")]
    InvalidUrl {
        /// What was given.
        url: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
}

/// Delivery counters since the sink was built; the `sourceHealth` of each request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevtoolsStats {
    /// Records the collector accepted.
    pub accepted: u64,
    /// Record sends that were retried (a record retried twice counts twice).
    pub retried: u64,
    /// Records rejected for good: by the collector (`invalid_record`, a conflict, an
    /// unsupported schema, a 4xx reply) or locally (one record over the request limit).
    pub permanently_rejected: u64,
    /// Records dropped, oldest first, because the queue was full.
    pub overflow_dropped: u64,
    /// Records still undelivered when the sink shut down after its final bounded drain.
    pub deadline_dropped: u64,
    /// Records waiting in the queue (retries included).
    pub queued: u64,
    /// Records in requests in flight.
    pub in_flight: u64,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
}

impl DevtoolsStats {
    /// Records that will never reach the collector.
    pub fn lost(&self) -> u64 {
        self.permanently_rejected + self.overflow_dropped + self.deadline_dropped
    }
}

/// Configures a [`DevtoolsSink`]; the defaults are the TypeScript transport's.
#[must_use = "call `.build()`"]
#[derive(Clone, Debug)]
pub struct DevtoolsSinkBuilder {
    url: String,
    token: Option<String>,
    batch_window: Duration,
    batch_records: usize,
    request_records: usize,
    request_bytes: usize,
    in_flight: usize,
    request_timeout: Duration,
    queue_records: usize,
    queue_bytes: usize,
    flush_timeout: Duration,
}

impl Default for DevtoolsSinkBuilder {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            token: None,
            batch_window: DEFAULT_BATCH_WINDOW,
            batch_records: DEFAULT_BATCH_RECORDS,
            request_records: DEFAULT_REQUEST_RECORDS,
            request_bytes: DEFAULT_REQUEST_BYTES,
            in_flight: DEFAULT_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            queue_records: DEFAULT_QUEUE_RECORDS,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
        }
    }
}

impl DevtoolsSinkBuilder {
    /// The collector's base URL (`http://HOST:PORT`); the ingest path is appended.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }
    /// The ingest token sent as `Authorization: Bearer TOKEN`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
    /// How long a partial batch waits before it is sent without a flush.
    pub fn batch_window(mut self, window: Duration) -> Self {
        self.batch_window = window;
        self
    }
    /// Queued records that trigger a send before the window ends.
    pub fn batch_records(mut self, records: usize) -> Self {
        self.batch_records = records.max(1);
        self
    }
    /// Most records per request.
    pub fn request_records(mut self, records: usize) -> Self {
        self.request_records = records.max(1);
        self
    }
    /// Most bytes of one request body; a single record larger than this is rejected
    /// locally and counted.
    pub fn request_bytes(mut self, bytes: usize) -> Self {
        self.request_bytes = bytes.max(ENVELOPE_RESERVE + 1);
        self
    }
    /// Most requests in flight (one sender thread each).
    pub fn in_flight(mut self, requests: usize) -> Self {
        self.in_flight = requests.clamp(1, 64);
        self
    }
    /// Bound of one request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Most queued records; past it the oldest are dropped and counted.
    pub fn queue_records(mut self, records: usize) -> Self {
        self.queue_records = records.max(1);
        self
    }
    /// Most queued bytes (JSON length + 512 per record); past it the oldest are dropped.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes.max(1);
        self
    }
    /// Most a sink flush waits for delivery.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Reads `CRUX_DEVTOOLS_URL` (the collector's base URL) and `CRUX_DEVTOOLS_TOKEN`.
    /// `None` when the URL is not set.
    pub fn from_env(self) -> Option<Self> {
        let url = std::env::var("CRUX_DEVTOOLS_URL").ok()?;
        let url = url.trim();
        if url.is_empty() {
            return None;
        }
        let mut b = self.url(url);
        if let Ok(token) = std::env::var("CRUX_DEVTOOLS_TOKEN")
            && !token.trim().is_empty()
        {
            b = b.token(token.trim());
        }
        Some(b)
    }

    /// Starts the sink's sender threads.
    pub fn build(self) -> Result<DevtoolsSink, DevtoolsError> {
        let endpoint = endpoint(&self.url)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.request_timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let shared = Arc::new(Shared {
            queue: Mutex::new(State::default()),
            wake: Condvar::new(),
            settled: Condvar::new(),
            unhealthy: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            permanently_rejected: AtomicU64::new(0),
            overflow_dropped: AtomicU64::new(0),
            deadline_dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
            source_id: source_id(),
            endpoint,
            auth: self.token.as_ref().map(|t| format!("Bearer {t}")),
            agent,
            settings: self,
        });
        for i in 0..shared.settings.in_flight {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("crux-devtools-{i}"))
                .spawn(move || s.send_loop());
            if spawned.is_err() && i == 0 {
                // No sender at all: nothing can be delivered; the queue drops oldest.
                break;
            }
        }
        Ok(DevtoolsSink {
            inner: Arc::new(Handle { shared }),
        })
    }
}

fn endpoint(url: &str) -> Result<String, DevtoolsError> {
    let url = url.trim().trim_end_matches('/');
    let url = if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    };
    if !url.starts_with("http://") || url.len() <= "http://".len() {
        return Err(DevtoolsError::InvalidUrl {
            url,
            reason: "it must be a plain http:// base URL such as http://127.0.0.1:4400 \
                     (start the collector with `crux serve`; this sink has no TLS)",
        });
    }
    if url.ends_with(INGEST_PATH) {
        return Ok(url);
    }
    Ok(format!("{url}{INGEST_PATH}"))
}

/// `source_` + 24 hex, from the runtime's id generator.
fn source_id() -> String {
    let run = crux_runtime::ids::RunId::generate().to_string();
    format!("source_{}", run.trim_start_matches("run_"))
}

/// Sends Crux records to a devtools collector (`crux serve`, or the TypeScript Crux
/// devtools) over `POST {url}/api/observability/records`. Cheap to clone: clones share the
/// queue, the sender threads and the counters.
///
/// ```no_run
/// use crux_devtools::DevtoolsSink;
/// use crux_runtime::observe::Observer;
///
/// let mut builder = Observer::builder();
/// if let Some(devtools) = DevtoolsSink::from_env() {
///     builder = builder.sink(devtools);
/// }
/// let observer = builder.build();
/// # let _ = observer;
/// ```
#[derive(Clone)]
pub struct DevtoolsSink {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for DevtoolsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevtoolsSink")
            .field("endpoint", &self.inner.shared.endpoint)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The last handle stops the senders after a final bounded drain.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut q = lock(&self.shared.queue);
        q.shutdown_at = Some(crux_runtime::delivery::deadline_after(
            self.shared.settings.flush_timeout,
        ));
        self.shared.wake.notify_all();
    }
}

#[derive(Clone)]
struct Item {
    json: Arc<str>,
    record_id: Arc<str>,
    enqueued: Instant,
    attempts: u32,
}

impl Item {
    fn cost(&self) -> usize {
        self.json.len() + RECORD_OVERHEAD
    }
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    bytes: usize,
    in_flight: usize,
    /// Records ever enqueued (dropped on arrival included).
    enqueued: u64,
    /// Records accepted, permanently rejected or dropped.
    settled: u64,
    flush_wanted: u32,
    /// No send before this instant (retry backoff, `Retry-After`).
    not_before: Option<Instant>,
    /// Lowered after a 413 reply: most records per request for now.
    request_cap: Option<usize>,
    /// Set when the last handle drops: drain until then, then drop what is left.
    shutdown_at: Option<Instant>,
    senders_done: usize,
}

struct Shared {
    queue: Mutex<State>,
    wake: Condvar,
    settled: Condvar,
    /// The last request failed or a flush timed out: flushes return at once (the senders
    /// keep trying) until a request gets an answer.
    unhealthy: AtomicBool,
    accepted: AtomicU64,
    retried: AtomicU64,
    permanently_rejected: AtomicU64,
    overflow_dropped: AtomicU64,
    deadline_dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
    source_id: String,
    endpoint: String,
    auth: Option<String>,
    agent: ureq::Agent,
    settings: DevtoolsSinkBuilder,
}

/// What one request came to, per record.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Retry,
    Rejected,
}

/// A reply read into per-record outcomes.
#[derive(Debug)]
struct Receipt {
    outcomes: Vec<Outcome>,
    retry_after: Option<Duration>,
    error: Option<String>,
    too_large: bool,
    /// The collector answered (any status).
    reached: bool,
}

impl Shared {
    fn enqueue(&self, records: &[Record]) {
        let limit = self.settings.request_bytes - ENVELOPE_RESERVE;
        let now = Instant::now();
        let mut items = Vec::with_capacity(records.len());
        let mut too_large = 0u64;
        // One buffer for the batch: each record's text is copied once, into its `Arc<str>`.
        let mut text = Vec::new();
        for r in records {
            let Some(id) = &r.base.record_id else {
                continue;
            };
            // The serde writer's bytes, written directly (`Record::write_json`).
            text.clear();
            r.write_json(&mut text);
            if text.len() > limit {
                too_large += 1;
                continue;
            }
            // Always UTF-8 (the writer copies `str`s and writes ASCII); a check, not a
            // promise taken on trust, and cheaper than the serde encoding it replaces. It
            // cannot fail: were it to, the record is dropped as one that cannot be sent.
            let Ok(json) = std::str::from_utf8(&text) else {
                debug_assert!(false, "write_json wrote invalid UTF-8");
                too_large += 1;
                continue;
            };
            items.push(Item {
                json: json.into(),
                record_id: id.to_string().into(),
                enqueued: now,
                attempts: 0,
            });
        }
        if too_large > 0 {
            self.permanently_rejected
                .fetch_add(too_large, Ordering::AcqRel);
            self.set_error(format!(
                "{too_large} record(s) larger than the {limit}-byte request limit were not sent"
            ));
        }
        let mut q = lock(&self.queue);
        q.enqueued += items.len() as u64 + too_large;
        q.settled += too_large;
        for item in items {
            q.bytes += item.cost();
            q.items.push_back(item);
        }
        let mut dropped = 0;
        while q.items.len() > self.settings.queue_records || q.bytes > self.settings.queue_bytes {
            let Some(old) = q.items.pop_front() else {
                break;
            };
            q.bytes -= old.cost();
            dropped += 1;
        }
        if dropped > 0 {
            q.settled += dropped;
            self.overflow_dropped.fetch_add(dropped, Ordering::AcqRel);
            self.settled.notify_all();
        }
        self.wake.notify_all();
    }

    fn set_error(&self, e: String) {
        *lock(&self.last_error) = Some(e);
    }

    fn stats(&self) -> DevtoolsStats {
        let (queued, in_flight) = {
            let q = lock(&self.queue);
            (q.items.len() as u64, q.in_flight as u64)
        };
        DevtoolsStats {
            accepted: self.accepted.load(Ordering::Acquire),
            retried: self.retried.load(Ordering::Acquire),
            permanently_rejected: self.permanently_rejected.load(Ordering::Acquire),
            overflow_dropped: self.overflow_dropped.load(Ordering::Acquire),
            deadline_dropped: self.deadline_dropped.load(Ordering::Acquire),
            queued,
            in_flight,
            last_error: lock(&self.last_error).clone(),
        }
    }

    /// Waits until everything enqueued so far is settled, at most the flush timeout.
    fn flush(&self) -> bool {
        let deadline = crux_runtime::delivery::deadline_after(self.settings.flush_timeout);
        let mut q = lock(&self.queue);
        let target = q.enqueued;
        if q.settled >= target {
            return true;
        }
        if self.unhealthy.load(Ordering::Acquire) {
            return false;
        }
        q.flush_wanted += 1;
        self.wake.notify_all();
        let drained = loop {
            if q.settled >= target {
                break true;
            }
            // A collector that stopped answering will not drain the queue in this flush:
            // return at once rather than hold crux's delivery thread to the deadline.
            if self.unhealthy.load(Ordering::Acquire) {
                break false;
            }
            let now = Instant::now();
            if now >= deadline || q.senders_done >= self.settings.in_flight {
                self.unhealthy.store(true, Ordering::Release);
                break false;
            }
            q = self
                .settled
                .wait_timeout(q, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        };
        q.flush_wanted -= 1;
        drained
    }

    /// One sender thread: take a chunk when one is due, post it, settle or requeue it.
    fn send_loop(&self) {
        while let Some(chunk) = self.next_chunk() {
            let body = self.body(&chunk);
            let receipt = self.post(&chunk, body);
            self.settle(chunk, receipt);
        }
        let mut q = lock(&self.queue);
        q.senders_done += 1;
        if q.senders_done >= self.settings.in_flight {
            let left = q.items.len() as u64;
            q.items.clear();
            q.bytes = 0;
            q.settled += left;
            self.deadline_dropped.fetch_add(left, Ordering::AcqRel);
        }
        self.settled.notify_all();
    }

    /// Blocks until a chunk is due; `None` when the sink has shut down.
    fn next_chunk(&self) -> Option<Vec<Item>> {
        let mut q = lock(&self.queue);
        loop {
            let now = Instant::now();
            if let Some(at) = q.shutdown_at
                && (now >= at || (q.items.is_empty() && q.in_flight == 0))
            {
                return None;
            }
            let mut wait = Duration::from_secs(3600);
            if let Some(first) = q.items.front() {
                let gate = q.not_before.filter(|t| *t > now);
                let window_end = first.enqueued + self.settings.batch_window;
                let urgent = q.flush_wanted > 0
                    || q.shutdown_at.is_some()
                    || q.items.len() >= self.settings.batch_records;
                match gate {
                    Some(t) => wait = t - now,
                    None if urgent || now >= window_end => break,
                    None => wait = window_end - now,
                }
            }
            if let Some(at) = q.shutdown_at {
                wait = wait.min(at.saturating_duration_since(now));
            }
            q = self
                .wake
                .wait_timeout(q, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let max_records = q
            .request_cap
            .unwrap_or(self.settings.request_records)
            .min(self.settings.request_records);
        let budget = self.settings.request_bytes - ENVELOPE_RESERVE;
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < max_records {
            let Some(next) = q.items.front() else { break };
            if !chunk.is_empty() && bytes + next.json.len() + 1 > budget {
                break;
            }
            bytes += next.json.len() + 1;
            let item = q.items.pop_front().expect("front exists");
            q.bytes -= item.cost();
            chunk.push(item);
        }
        q.in_flight += chunk.len();
        // Another sender may take the next chunk at once.
        self.wake.notify_one();
        Some(chunk)
    }

    fn body(&self, chunk: &[Item]) -> Vec<u8> {
        let stats = self.stats();
        let mut health = json!({
            "sourceId": self.source_id,
            "accepted": stats.accepted,
            "retried": stats.retried,
            "permanentlyRejected": stats.permanently_rejected,
            "overflowDropped": stats.overflow_dropped,
            "deadlineDropped": stats.deadline_dropped,
        });
        if let Some(e) = stats.last_error {
            health["lastError"] = Value::String(crux_runtime::wire::cap_string(e, 1024));
        }
        let mut body =
            Vec::with_capacity(chunk.iter().map(|i| i.json.len() + 1).sum::<usize>() + 256);
        body.extend_from_slice(
            format!("{{\"schemaVersion\":{SCHEMA_VERSION},\"records\":[").as_bytes(),
        );
        for (i, item) in chunk.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item.json.as_bytes());
        }
        body.extend_from_slice(b"],\"sourceHealth\":");
        body.extend_from_slice(health.to_string().as_bytes());
        body.push(b'}');
        body
    }

    fn post(&self, chunk: &[Item], body: Vec<u8>) -> Receipt {
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json")
            .header("Bypass-Tunnel-Reminder", "true");
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", auth);
        }
        let response = match request.send(&body[..]) {
            Ok(r) => r,
            Err(e) => {
                return Receipt {
                    outcomes: chunk.iter().map(|_| Outcome::Retry).collect(),
                    retry_after: None,
                    error: Some(format!(
                        "cannot reach the devtools collector at {}: {e}",
                        self.endpoint
                    )),
                    too_large: false,
                    reached: false,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let reply = response
            .into_body()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_vec()
            .ok()
            .and_then(|b| CollectorReply::parse(&b));
        let mut receipt = read_receipt(status, reply.as_ref(), chunk);
        receipt.retry_after = retry_after;
        receipt
    }

    fn settle(&self, chunk: Vec<Item>, receipt: Receipt) {
        let (mut accepted, mut rejected) = (0u64, 0u64);
        let mut retry = Vec::new();
        let n = chunk.len();
        let split = receipt.too_large && n > 1;
        for (mut item, outcome) in chunk.into_iter().zip(receipt.outcomes) {
            match outcome {
                Outcome::Accepted => accepted += 1,
                Outcome::Rejected if !split => rejected += 1,
                _ => {
                    item.attempts += 1;
                    retry.push(item);
                }
            }
        }
        self.accepted.fetch_add(accepted, Ordering::AcqRel);
        self.permanently_rejected
            .fetch_add(rejected, Ordering::AcqRel);
        self.retried.fetch_add(retry.len() as u64, Ordering::AcqRel);
        if let Some(e) = &receipt.error {
            self.set_error(e.clone());
        }
        // A collector that answers is healthy, whatever it answered.
        self.unhealthy.store(!receipt.reached, Ordering::Release);
        let mut q = lock(&self.queue);
        q.in_flight -= n;
        q.settled += accepted + rejected;
        if split {
            q.request_cap = Some((n / 2).max(1));
        } else if !receipt.too_large && accepted > 0 {
            q.request_cap = None;
        }
        if !retry.is_empty() {
            let attempts = retry.iter().map(|i| i.attempts).max().unwrap_or(1);
            let mut delay = if split {
                Duration::ZERO
            } else {
                backoff(attempts)
            };
            if let Some(after) = receipt.retry_after {
                delay = delay.max(after);
            }
            if !delay.is_zero() {
                let at = Instant::now() + delay;
                q.not_before = Some(q.not_before.map_or(at, |t| t.max(at)));
            }
            for item in retry.into_iter().rev() {
                q.bytes += item.cost();
                q.items.push_front(item);
            }
            // Retries count against the bounds too: drop oldest past them.
            let mut dropped = 0;
            while q.items.len() > self.settings.queue_records || q.bytes > self.settings.queue_bytes
            {
                let Some(old) = q.items.pop_front() else {
                    break;
                };
                q.bytes -= old.cost();
                dropped += 1;
            }
            q.settled += dropped;
            self.overflow_dropped.fetch_add(dropped, Ordering::AcqRel);
        } else if receipt.error.is_none() {
            q.not_before = None;
        }
        self.settled.notify_all();
        self.wake.notify_all();
    }
}

/// 100 ms × 2^(attempt-1), capped at 5 s, ±20 % jitter.
fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let base = RETRY_BASE.saturating_mul(1 << exp).min(RETRY_CAP);
    let jitter = 0.8 + 0.4 * unit_random();
    base.mul_f64(jitter)
}

/// A number in [0, 1) from the runtime's id generator (no extra dependency).
fn unit_random() -> f64 {
    let id = crux_runtime::ids::SpanId::generate().to_string();
    let bits = u64::from_str_radix(&id, 16).unwrap_or(0);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

fn valid_code(code: &str) -> bool {
    (1..=128).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Reads a collector's reply into one outcome per record of `chunk` (the TypeScript
/// transport's receipt rules).
fn read_receipt(status: u16, reply: Option<&CollectorReply>, chunk: &[Item]) -> Receipt {
    let n = chunk.len();
    let ok = (200..300).contains(&status);
    let dispositions = reply.and_then(|r| r.dispositions.as_ref());
    if let Some(list) = dispositions {
        let mut outcomes: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
        let mut seen = HashSet::new();
        let mut first_rejection = None;
        for d in list {
            let Some(index) = d.get("index").and_then(Value::as_u64) else {
                continue;
            };
            let index = index as usize;
            if index >= n || !seen.insert(index) {
                // A duplicate index makes both unaccounted.
                if index < n {
                    outcomes[index] = Some(Outcome::Retry);
                }
                continue;
            }
            let id = d.get("recordId").and_then(Value::as_str);
            let code = d.get("code").and_then(Value::as_str).unwrap_or("");
            let retryable = d.get("retryable").and_then(Value::as_bool);
            if id != Some(&*chunk[index].record_id) || !valid_code(code) {
                outcomes[index] = Some(Outcome::Retry);
                continue;
            }
            outcomes[index] = Some(
                match (d.get("outcome").and_then(Value::as_str), retryable) {
                    (Some("accepted"), Some(false)) => Outcome::Accepted,
                    (Some("rejected"), Some(false)) => {
                        first_rejection.get_or_insert_with(|| code.to_owned());
                        Outcome::Rejected
                    }
                    (Some("rejected"), Some(true)) => {
                        first_rejection.get_or_insert_with(|| code.to_owned());
                        Outcome::Retry
                    }
                    _ => Outcome::Retry,
                },
            );
        }
        let unaccounted = outcomes.iter().filter(|o| o.is_none()).count();
        let error = match (first_rejection, unaccounted) {
            (Some(code), _) => Some(format!("the collector rejected records ({code})")),
            (None, 0) if ok => None,
            (None, 0) => Some(format!("the collector answered HTTP {status}")),
            (None, u) => Some(format!(
                "the collector's reply left {u} of {n} records unaccounted; they are retried"
            )),
        };
        return Receipt {
            outcomes: outcomes
                .into_iter()
                .map(|o| o.unwrap_or(Outcome::Retry))
                .collect(),
            retry_after: None,
            error,
            too_large: false,
            reached: true,
        };
    }
    if ok {
        // The `{accepted: n}` era: complete only when it covers the whole batch.
        let count = reply
            .and_then(|r| r.accepted.as_ref())
            .and_then(Value::as_u64);
        let rejected_empty = reply
            .and_then(|r| r.rejected.as_ref())
            .is_none_or(|r| r.as_array().is_some_and(Vec::is_empty));
        if count == Some(n as u64) && rejected_empty {
            return Receipt {
                outcomes: (0..n).map(|_| Outcome::Accepted).collect(),
                retry_after: None,
                error: None,
                too_large: false,
                reached: true,
            };
        }
        return Receipt {
            outcomes: (0..n).map(|_| Outcome::Retry).collect(),
            retry_after: None,
            error: Some(format!(
                "the collector's reply (HTTP {status}) accounts for only part of the batch \
                 (count_only_partial); the records are retried"
            )),
            too_large: false,
            reached: true,
        };
    }
    let retryable = matches!(status, 408 | 409 | 425 | 429) || status >= 500;
    let outcome = || {
        if retryable {
            Outcome::Retry
        } else {
            Outcome::Rejected
        }
    };
    Receipt {
        outcomes: (0..n).map(|_| outcome()).collect(),
        retry_after: None,
        error: Some(match status {
            401 | 403 => format!(
                "the collector refused the ingest token (http_{status}); set CRUX_DEVTOOLS_TOKEN \
                 to the collector's token"
            ),
            413 => "the collector refused a request as too large (http_413)".to_owned(),
            _ => format!("the collector answered HTTP {status} (http_{status})"),
        }),
        too_large: status == 413,
        reached: true,
    }
}

impl DevtoolsSink {
    /// A sink posting to the collector at `url` (its base, e.g. `http://127.0.0.1:4400`)
    /// with the default settings.
    pub fn new(url: &str) -> Result<DevtoolsSink, DevtoolsError> {
        DevtoolsSinkBuilder::default().url(url).build()
    }

    /// A builder with the TypeScript transport's defaults.
    pub fn builder() -> DevtoolsSinkBuilder {
        DevtoolsSinkBuilder::default()
    }

    /// From `CRUX_DEVTOOLS_URL` and `CRUX_DEVTOOLS_TOKEN`; `None` when the URL is not set
    /// (or is unusable, which is reported once on stderr).
    pub fn from_env() -> Option<DevtoolsSink> {
        let builder = DevtoolsSinkBuilder::default().from_env()?;
        match builder.build() {
            Ok(sink) => Some(sink),
            Err(e) => {
                eprintln!("[crux] devtools delivery disabled: {e}");
                None
            }
        }
    }

    /// The full ingest URL posted to.
    pub fn endpoint(&self) -> &str {
        &self.inner.shared.endpoint
    }

    /// The `sourceId` this sink reports in `sourceHealth`.
    pub fn source_id(&self) -> &str {
        &self.inner.shared.source_id
    }

    /// Delivery counters (the `sourceHealth` sent with each request) and queue depth.
    pub fn stats(&self) -> DevtoolsStats {
        self.inner.shared.stats()
    }
}

impl Sink for DevtoolsSink {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        self.inner.shared.enqueue(records);
        Ok(())
    }

    fn flush(&self) -> Result<(), SinkError> {
        if self.inner.shared.flush() {
            Ok(())
        } else {
            Err(SinkError::Other(format!(
                "devtools delivery to {} did not complete (collector unreachable, failing or \
                 slow); undelivered records stay queued and are retried",
                self.inner.shared.endpoint
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(reply: &Value) -> CollectorReply {
        CollectorReply::parse(reply.to_string().as_bytes()).unwrap()
    }

    fn items(ids: &[&str]) -> Vec<Item> {
        ids.iter()
            .map(|id| Item {
                json: "{}".into(),
                record_id: (*id).into(),
                enqueued: Instant::now(),
                attempts: 0,
            })
            .collect()
    }

    #[test]
    fn queued_records_hold_the_serde_text_of_each_record() {
        use crux_runtime::attributes::Attributes;
        use crux_runtime::clock::Timestamp;
        use crux_runtime::ids::{EventId, RecordId, RunId, SegmentId, SpanId, TraceId};
        use crux_runtime::record::{Base, Body};

        let record = |counter: u64, name: String| Record {
            base: Base {
                record_id: Some(RecordId { random: 7, counter }),
                run_id: RunId([1; 12]),
                operation_id: RunId([1; 12]),
                segment_id: SegmentId([2; 12]),
                segment_seq: 2,
                trace_id: TraceId(3),
                extra: None,
            },
            body: Body::SpanEvent {
                span_id: SpanId(4),
                event_id: EventId(5),
                name: name.into(),
                timestamp: Timestamp::from_millis(1_767_323_045_678),
                attributes: Attributes::new().with("ratio", 0.1).with("q", "\"\n/é"),
            },
        };
        // Nothing listens, and the window is long: the records stay queued to be read.
        let sink = DevtoolsSink::builder()
            .url("http://127.0.0.1:9")
            .batch_window(Duration::from_secs(3600))
            .build()
            .unwrap();
        // A long record first: the encoding buffer reused for the next holds only it.
        let records = [record(1, "x".repeat(3000)), record(2, "a\tb".into())];
        sink.write(&records).unwrap();
        let q = lock(&sink.inner.shared.queue);
        let queued: Vec<&str> = q.items.iter().map(|i| &*i.json).collect();
        let serde: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        assert_eq!(queued, serde);
    }

    #[test]
    fn dispositions_match_by_index_and_record_id() {
        let chunk = items(&["a", "b", "c", "d", "e"]);
        let reply = json!({"dispositions": [
            {"index": 0, "recordId": "a", "outcome": "accepted", "code": "accepted", "retryable": false},
            {"index": 1, "recordId": "x", "outcome": "accepted", "code": "accepted", "retryable": false},
            {"index": 2, "recordId": "c", "outcome": "rejected", "code": "record_id_conflict", "retryable": false},
            {"index": 3, "recordId": "d", "outcome": "rejected", "code": "ingest_unavailable", "retryable": true},
            {"index": 9, "recordId": "e", "outcome": "accepted", "code": "accepted", "retryable": false},
        ]});
        let r = read_receipt(202, Some(&parsed(&reply)), &chunk);
        use Outcome::*;
        assert_eq!(r.outcomes, vec![Accepted, Retry, Rejected, Retry, Retry]);
    }

    #[test]
    fn duplicate_indexes_and_bad_codes_are_unaccounted() {
        let chunk = items(&["a", "b"]);
        let reply = json!({"dispositions": [
            {"index": 0, "recordId": "a", "outcome": "accepted", "code": "accepted", "retryable": false},
            {"index": 0, "recordId": "a", "outcome": "accepted", "code": "accepted", "retryable": false},
            {"index": 1, "recordId": "b", "outcome": "accepted", "code": "bad code!", "retryable": false},
        ]});
        let r = read_receipt(202, Some(&parsed(&reply)), &chunk);
        assert_eq!(r.outcomes, vec![Outcome::Retry, Outcome::Retry]);
        // An accepted disposition claiming to be retryable does not count.
        let reply = json!({"dispositions": [
            {"index": 0, "recordId": "a", "outcome": "accepted", "code": "accepted", "retryable": true},
        ]});
        let r = read_receipt(202, Some(&parsed(&reply)), &items(&["a"]));
        assert_eq!(r.outcomes, vec![Outcome::Retry]);
    }

    #[test]
    fn count_only_replies_count_only_when_complete() {
        let chunk = items(&["a", "b"]);
        let r = read_receipt(200, Some(&parsed(&json!({"accepted": 2}))), &chunk);
        assert_eq!(r.outcomes, vec![Outcome::Accepted, Outcome::Accepted]);
        let r = read_receipt(
            200,
            Some(&parsed(&json!({"accepted": 1, "rejected": []}))),
            &chunk,
        );
        assert_eq!(r.outcomes, vec![Outcome::Retry, Outcome::Retry]);
        assert!(r.error.unwrap().contains("count_only_partial"));
        let r = read_receipt(200, None, &chunk);
        assert_eq!(r.outcomes, vec![Outcome::Retry, Outcome::Retry]);
    }

    #[test]
    fn status_without_dispositions_is_retryable_only_for_transient_codes() {
        let chunk = items(&["a"]);
        for (status, retry) in [
            (408, true),
            (409, true),
            (425, true),
            (429, true),
            (500, true),
            (503, true),
            (400, false),
            (401, false),
            (404, false),
            (413, false),
        ] {
            let r = read_receipt(status, None, &chunk);
            let want = if retry {
                Outcome::Retry
            } else {
                Outcome::Rejected
            };
            assert_eq!(r.outcomes, vec![want], "{status}");
        }
        assert!(read_receipt(413, None, &chunk).too_large);
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_within_twenty_percent() {
        for attempt in 1..=12u32 {
            let nominal = RETRY_BASE
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(RETRY_CAP);
            for _ in 0..50 {
                let d = backoff(attempt);
                assert!(
                    d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2),
                    "{attempt}: {d:?}"
                );
            }
        }
        assert!(backoff(30) <= RETRY_CAP.mul_f64(1.2));
    }

    #[test]
    fn urls_are_checked_and_the_ingest_path_appended() {
        assert_eq!(
            endpoint("http://127.0.0.1:4400/").unwrap(),
            "http://127.0.0.1:4400/api/observability/records"
        );
        assert_eq!(
            endpoint("ws://h:1").unwrap(),
            "http://h:1/api/observability/records"
        );
        assert_eq!(
            endpoint("http://h:1/api/observability/records").unwrap(),
            "http://h:1/api/observability/records"
        );
        let e = endpoint("https://h").unwrap_err().to_string();
        assert!(e.contains("plain http://"), "{e}");
    }
}
