//! Crux devtools (the `crux` facade's features `devtools` and `devtools-collector`):
//! records from every process delivered to one collector, stored in SQLite, read by the
//! `crux` viewer commands and a JSON API.
//!
//! - [`DevtoolsSink`] is a [`Sink`](crux_runtime::sink::Sink) that posts records to
//!   `{CRUX_DEVTOOLS_URL}/api/observability/records`, the Crux devtools ingest contract the
//!   TypeScript Crux speaks: batched, bounded, retried by disposition, counted
//!   ([`DevtoolsStats`], sent as `sourceHealth`).
//! - [`collector`] (feature `collector`) is the receiving end, `crux serve`: it implements
//!   the contract, keeps the records in SQLite and answers `GET /api/runs` and
//!   `GET /api/runs/{runId}`. A TypeScript Crux app can deliver to it unchanged.

mod json;
mod receipt;
mod sink;

pub use sink::{
    DEFAULT_BATCH_RECORDS, DEFAULT_BATCH_WINDOW, DEFAULT_FLUSH_TIMEOUT, DEFAULT_IN_FLIGHT,
    DEFAULT_QUEUE_BYTES, DEFAULT_QUEUE_RECORDS, DEFAULT_REQUEST_BYTES, DEFAULT_REQUEST_RECORDS,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_URL, DevtoolsError, DevtoolsSink, DevtoolsSinkBuilder,
    DevtoolsStats, INGEST_PATH, MAX_RETRY_AFTER, RECORD_OVERHEAD, RETRY_BASE, RETRY_CAP,
};

#[cfg(feature = "collector")]
pub mod collector;
