//! OpenTelemetry export for crux (the `crux` facade's feature `otel`): Crux runs as OpenTelemetry traces, sent over
//! OTLP HTTP/protobuf to any collector or backend (Jaeger, Tempo, Honeycomb, Arize
//! Phoenix ...).
//!
//! [`OtlpSink`] is a [`Sink`]: add it to an observer next to (or instead of) the JSON
//! Lines file. Trace ids and span ids are the Crux ones, so a W3C `traceparent` taken
//! from a Crux context or carrier names the exported span. The mapping (runs, spans,
//! events, errors, links, semantic conventions) is described in the README of the
//! `crux` repository (section "OpenTelemetry") and on [`openinference_kind`].
//!
//! ```no_run
//! use crux_runtime::observe::Observer;
//! use crux_otel::OtlpSink;
//!
//! // Exports when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set.
//! let mut builder = Observer::builder();
//! let otlp = OtlpSink::from_env();
//! if let Some(otlp) = &otlp {
//!     builder = builder.sink(otlp.clone());
//! }
//! let observer = builder.build();
//! // ... later: spans that never reached the collector.
//! let lost = otlp.map_or(0, |o| o.stats().not_exported());
//! # let _ = (observer, lost);
//! ```
//!
//! Export never runs on the caller's task: records reach the sink on crux's delivery
//! thread, finished spans go to a bounded queue, and an export thread of the sink's own
//! posts them with a blocking client. A flush waits for the export, bounded by the flush
//! timeout and by crux's own flush bound, whichever is shorter; a collector that is down
//! or slow costs the program nothing but the spans, which are counted in
//! [`ExportStats`].

mod assemble;
mod export;
mod http;
mod semconv;

use std::env;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanExporter;

use self::assemble::{Assembled, Assembler};
pub use self::export::ExportStats;
use self::export::{Settings, Worker};
pub use self::semconv::openinference_kind;
use crux_runtime::record::Record;
use crux_runtime::sink::{Sink, SinkError};

/// Locks a mutex, ignoring poisoning: the data behind it (queues, counters) stays usable
/// after a panic elsewhere, and export must never panic in turn.
pub(crate) use crux_runtime::helpers::lock;

/// Default capacity of the export queue, in finished spans.
pub const DEFAULT_QUEUE_CAPACITY: usize = 4096;
/// Default most spans per export request.
pub const DEFAULT_BATCH_SIZE: usize = 512;
/// Default wait before a partial batch is sent without a flush.
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_millis(500);
/// Default bound of one export request and of a sink flush (crux's final flush bound).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default most spans kept open waiting for their end record.
pub const DEFAULT_MAX_OPEN_SPANS: usize = 16_384;

/// A [`Sink`] that turns Crux records into OpenTelemetry spans and hands them to any
/// OpenTelemetry `SpanExporter` (the OTLP one through [`OtlpSink`], an in-memory one in
/// tests). Cheap to clone: clones share the spans, the export thread and the counters.
#[derive(Clone)]
pub struct OtelSink {
    inner: Arc<Inner>,
}

struct Inner {
    assembler: Mutex<Assembler>,
    worker: Arc<Worker>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The export thread sends what is queued, then stops; nobody waits for it.
        self.worker.shutdown();
    }
}

impl std::fmt::Debug for OtelSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OtelSink").field(&self.stats()).finish()
    }
}

/// Configures an [`OtelSink`] or an [`OtlpSink`].
#[must_use = "call `.build()`"]
#[derive(Clone, Debug)]
pub struct OtelSinkBuilder {
    queue_capacity: usize,
    batch_size: usize,
    schedule_delay: Duration,
    export_timeout: Option<Duration>,
    max_open_spans: usize,
    resource: Vec<KeyValue>,
    service_name: Option<String>,
    headers: Vec<(String, String)>,
    roots: Vec<Vec<u8>>,
}

impl Default for OtelSinkBuilder {
    fn default() -> Self {
        Self {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            schedule_delay: DEFAULT_SCHEDULE_DELAY,
            export_timeout: None,
            max_open_spans: DEFAULT_MAX_OPEN_SPANS,
            resource: Vec::new(),
            service_name: None,
            headers: Vec::new(),
            roots: Vec::new(),
        }
    }
}

impl OtelSinkBuilder {
    /// Most finished spans waiting for export; past it the oldest are dropped and counted.
    pub fn queue_capacity(mut self, spans: usize) -> Self {
        self.queue_capacity = spans.max(1);
        self
    }

    /// Most spans per export request.
    pub fn batch_size(mut self, spans: usize) -> Self {
        self.batch_size = spans.max(1);
        self
    }

    /// How long a partial batch waits before it is sent without a flush.
    pub fn schedule_delay(mut self, delay: Duration) -> Self {
        self.schedule_delay = delay;
        self
    }

    /// The bound of one export request, and of a sink flush waiting for the export
    /// (default: `OTEL_EXPORTER_OTLP_TIMEOUT` for [`OtlpSink`], else 3 s).
    pub fn export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = Some(timeout);
        self
    }

    /// Most spans kept open waiting for their end record; past it the oldest open span is
    /// dropped and counted.
    pub fn max_open_spans(mut self, spans: usize) -> Self {
        self.max_open_spans = spans.max(1);
        self
    }

    /// The `service.name` used when neither `OTEL_SERVICE_NAME` nor
    /// `OTEL_RESOURCE_ATTRIBUTES` names one.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// A resource attribute (for example `openinference.project.name` for Phoenix).
    /// Environment resource attributes are read too; these win over them.
    pub fn resource_attribute(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.resource.push(KeyValue::new(key, value.into()));
        self
    }

    /// A header sent with every OTLP request (with [`OtlpSink`] only), such as
    /// `Authorization: Basic <base64 of public:secret key>` for Langfuse or an API key
    /// header for a hosted backend. Sent exactly as given; it wins over one of the same
    /// name from `OTEL_EXPORTER_OTLP_HEADERS`. A name or value HTTP does not allow is
    /// refused by `build_otlp` with [`OtlpError::InvalidHeader`].
    ///
    /// ```no_run
    /// let sink = crux_otel::OtlpSink::builder()
    ///     .header("Authorization", "Basic cGstbGYtLi4uOnNrLWxmLS4uLg==")
    ///     .build_otlp("https://cloud.langfuse.com/api/public/otel/v1/traces")?;
    /// # Ok::<(), crux_otel::OtlpError>(())
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Trusts `der` (a DER-encoded certificate) for `https://` endpoints *instead of*
    /// Mozilla's roots (with [`OtlpSink`] only): a private CA, or a test collector's
    /// self-signed certificate. Call it once per certificate. (Named for what it does:
    /// `crux_client`'s `add_root_certificate` trusts a certificate *beside* Mozilla's.)
    pub fn only_root_certificate(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.roots.push(der.into());
        self
    }

    /// The OpenTelemetry resource: SDK defaults, `OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`, then this builder's.
    fn resource(&self) -> Resource {
        let mut b = Resource::builder();
        let env_names_service = env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
            || env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
        if let Some(name) = &self.service_name
            && !env_names_service
        {
            b = b.with_service_name(name.clone());
        }
        b.with_attributes(self.resource.iter().cloned()).build()
    }

    /// A sink feeding `exporter` (any OpenTelemetry `SpanExporter`).
    pub fn build<E: SpanExporter + 'static>(self, mut exporter: E) -> OtelSink {
        exporter.set_resource(&self.resource());
        let worker = Worker::start(
            Box::new(exporter),
            Settings {
                capacity: self.queue_capacity,
                batch_size: self.batch_size,
                delay: self.schedule_delay,
                flush_timeout: self.export_timeout.unwrap_or(DEFAULT_EXPORT_TIMEOUT),
            },
        );
        OtelSink {
            inner: Arc::new(Inner {
                assembler: Mutex::new(Assembler::new(self.max_open_spans)),
                worker,
            }),
        }
    }

    /// An [`OtlpSink`] posting OTLP HTTP/protobuf to `endpoint`, the full URL of the
    /// traces resource (for example `http://127.0.0.1:6006/v1/traces`).
    pub fn build_otlp(self, endpoint: &str) -> Result<OtlpSink, OtlpError> {
        self.otlp(Some(endpoint))
    }

    /// An [`OtlpSink`] configured from the environment the OpenTelemetry way, or `None`
    /// when neither `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` nor `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// is set.
    pub fn build_otlp_from_env(self) -> Result<Option<OtlpSink>, OtlpError> {
        let Some(endpoint) = endpoint_from_env() else {
            return Ok(None);
        };
        check_endpoint(endpoint.trim())?;
        self.otlp(None).map(Some)
    }

    fn otlp(self, endpoint: Option<&str>) -> Result<OtlpSink, OtlpError> {
        if let Some(e) = endpoint {
            check_endpoint(e)?;
        }
        // Code wins over the environment, as elsewhere in OpenTelemetry.
        let timeout = self
            .export_timeout
            .or_else(env_timeout)
            .unwrap_or(DEFAULT_EXPORT_TIMEOUT);
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                http::header(name, value).map_err(|reason| OtlpError::InvalidHeader {
                    name: name.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut b = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_http_client(http::UreqClient::new(timeout, headers, &self.roots))
            .with_retry_policy(opentelemetry_otlp::RetryPolicy::disabled())
            .with_timeout(timeout);
        if let Some(e) = endpoint {
            b = b.with_endpoint(e);
        }
        let exporter = b.build().map_err(|e| OtlpError::Build(e.to_string()))?;
        Ok(OtlpSink {
            sink: self.export_timeout(timeout).build(exporter),
        })
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), OtlpError> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return Ok(());
    }
    Err(OtlpError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: "it must be an http:// or https:// URL such as http://127.0.0.1:4318/v1/traces",
    })
}

fn endpoint_from_env() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .filter_map(|k| env::var(k).ok())
    .find(|v| !v.trim().is_empty())
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds.
fn env_timeout() -> Option<Duration> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .filter_map(|k| env::var(k).ok())
    .find_map(|v| v.trim().parse::<u64>().ok())
    .map(Duration::from_millis)
}

impl OtelSink {
    /// A sink feeding `exporter` with the default settings.
    pub fn new<E: SpanExporter + 'static>(exporter: E) -> OtelSink {
        OtelSinkBuilder::default().build(exporter)
    }

    /// A builder with the default settings.
    pub fn builder() -> OtelSinkBuilder {
        OtelSinkBuilder::default()
    }

    /// Span counters: exported, failed, dropped, queued and still open.
    pub fn stats(&self) -> ExportStats {
        let w = &self.inner.worker;
        ExportStats {
            exported: w.exported.load(std::sync::atomic::Ordering::Acquire),
            failed: w.failed.load(std::sync::atomic::Ordering::Acquire),
            dropped: w.dropped.load(std::sync::atomic::Ordering::Acquire),
            queued: w.queued(),
            open: lock(&self.inner.assembler).open_count() as u64,
        }
    }
}

impl Sink for OtelSink {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        let mut out = Assembled::default();
        lock(&self.inner.assembler).push(records, &mut out);
        self.inner.worker.enqueue(out.finished, out.evicted);
        Ok(())
    }

    fn flush(&self) -> Result<(), SinkError> {
        if self.inner.worker.flush() {
            Ok(())
        } else {
            Err(SinkError::Other(
                "OpenTelemetry export did not complete (collector unreachable, failing or slow); \
                 the spans are counted as not exported"
                    .into(),
            ))
        }
    }
}

/// An [`OtelSink`] exporting over OTLP HTTP/protobuf.
///
/// Configuration follows OpenTelemetry: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is),
/// else `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`); `OTEL_EXPORTER_OTLP_HEADERS`;
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (ms, default 3000 here); `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES` for the resource.
#[derive(Clone, Debug)]
pub struct OtlpSink {
    sink: OtelSink,
}

impl OtlpSink {
    /// Posts to `endpoint`, the full URL of the traces resource (for example
    /// `http://127.0.0.1:6006/v1/traces`), with the default settings.
    pub fn new(endpoint: &str) -> Result<OtlpSink, OtlpError> {
        OtelSinkBuilder::default().build_otlp(endpoint)
    }

    /// From the environment, or `None` when no OTLP endpoint is set (or the configuration
    /// is unusable, which is reported once on stderr).
    pub fn from_env() -> Option<OtlpSink> {
        match OtelSinkBuilder::default().build_otlp_from_env() {
            Ok(sink) => sink,
            Err(e) => {
                eprintln!("[crux] OpenTelemetry export disabled: {e}");
                None
            }
        }
    }

    /// A builder for the queue, batch, timeout and resource settings.
    pub fn builder() -> OtelSinkBuilder {
        OtelSinkBuilder::default()
    }

    /// Span counters: exported, failed, dropped, queued and still open.
    pub fn stats(&self) -> ExportStats {
        self.sink.stats()
    }
}

impl Sink for OtlpSink {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        self.sink.write(records)
    }
    fn flush(&self) -> Result<(), SinkError> {
        self.sink.flush()
    }
}

/// An OTLP exporter that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The endpoint is not usable.
    #[error("invalid OTLP endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint {
        /// What was given.
        endpoint: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// A header given to [`OtelSinkBuilder::header`] cannot be sent.
    #[error("invalid OTLP header `{name}`: {reason}")]
    InvalidHeader {
        /// The header's name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The OpenTelemetry exporter refused the configuration.
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
}
