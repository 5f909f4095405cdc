//! The propagation carrier of a suspended run (reference §6.3): W3C `traceparent`,
//! `tracestate`, `baggage`, and the `crux` object, with strict validation and
//! inject/extract to HTTP-header-like maps. [`Carrier::extract`] accepts exactly what
//! [`Carrier::decode`] accepts: both apply one set of rules, the `crux` size cap
//! ([`MAX_CRUX_HEADER`]) included.
//!
//! ```
//! use std::collections::HashMap;
//! use crux_runtime::carrier::Carrier;
//! let json = serde_json::json!({
//!     "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
//!     "crux": {"runId": "run_0123456789abcdef01234567"}
//! });
//! let carrier = Carrier::decode(&json).unwrap();
//! let mut headers = HashMap::new();
//! carrier.inject(&mut headers);
//! assert_eq!(Carrier::extract(&headers).unwrap(), carrier);
//! assert!(Carrier::decode(&serde_json::json!({"crux": {"runId": ""}})).is_err());
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::envelope::{DeploymentIdentity, MAX_LABEL, decode_deployment};
use crate::ids::{IdError, IdErrorReason, RunId, SegmentId, SpanId, TraceId};
use crate::wire::{FieldError, MAX_DEPTH, Obj, Path, Reason, check_depth};

/// Longest `tracestate`.
pub const MAX_TRACESTATE: usize = 512;
/// Longest `baggage`.
pub const MAX_BAGGAGE: usize = 8192;
/// Most `baggage` members.
pub const MAX_BAGGAGE_MEMBERS: usize = 64;
/// Longest `crux` object, in characters of its compact JSON (the text [`Carrier::inject`]
/// writes as the `crux` header). One rule for both readers: [`Carrier::decode`] measures
/// the value, [`Carrier::extract`] the header's value re-serialized, so whitespace or
/// escapes in a header never decide. 4096 holds every carrier this build writes (all
/// fields at their caps, every character escaped: about 2 300); TypeScript Crux caps its
/// own header text at 1024 characters.
pub const MAX_CRUX_HEADER: usize = 4096;

/// A carrier that cannot be used, or a resume that is not allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// A field is malformed.
    #[error("invalid Crux continuation: {0}")]
    Invalid(FieldError),
    /// A header the carrier needs is absent.
    #[error("invalid Crux continuation: the `{0}` header is missing")]
    MissingHeader(&'static str),
    /// The `crux` header is not JSON.
    #[error("invalid Crux continuation: the `crux` header is not JSON")]
    HeaderNotJson,
    /// `resume_run` needs a reason.
    #[error("a resume needs a non-empty reason")]
    EmptyReason,
    /// This process already saw that run end.
    #[error("cannot resume {0}: this process already saw it end")]
    TerminalRun(RunId),
}

impl From<FieldError> for CarrierError {
    fn from(e: FieldError) -> Self {
        CarrierError::Invalid(e)
    }
}

/// A W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace.
    pub trace_id: TraceId,
    /// The parent span id on the wire.
    pub parent_id: SpanId,
    /// Trace flags (`01` = sampled).
    pub flags: u8,
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

impl FromStr for TraceParent {
    type Err = IdError;

    /// Accepts version `00` (and future versions except `ff`, reading their first four
    /// fields as W3C requires); rejects all-zero ids and uppercase hex.
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = |reason| IdError {
            kind: "traceparent",
            reason,
        };
        let mut parts = s.split('-');
        let (Some(ver), Some(trace), Some(parent), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(IdErrorReason::Length {
                expected: 55,
                found: s.chars().count(),
            }));
        };
        let hex2 = |v: &str| crate::hex::decode_lower::<1>(v).map(|[b]| b);
        let version = hex2(ver).ok_or(bad(IdErrorReason::NotHex))?;
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return Err(bad(IdErrorReason::NotHex));
        }
        Ok(TraceParent {
            trace_id: trace.parse()?,
            parent_id: parent.parse()?,
            flags: hex2(flags).ok_or(bad(IdErrorReason::NotHex))?,
        })
    }
}

impl TraceParent {
    /// Writes the `traceparent` header (what an OpenTelemetry `TraceContextPropagator`
    /// reads).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use crux_runtime::carrier::TraceParent;
    /// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    /// let mut headers = HashMap::new();
    /// tp.inject(&mut headers);
    /// assert_eq!(TraceParent::extract(&headers), Ok(Some(tp)));
    /// ```
    pub fn inject(&self, headers: &mut impl Injector) {
        headers.set("traceparent", self.to_string());
    }

    /// Reads an incoming `traceparent` header: `Ok(None)` when there is none, an error
    /// naming the defect when it is malformed (uppercase hex, all-zero ids, version `ff`,
    /// wrong lengths), so a caller can ignore it and start a fresh trace.
    pub fn extract(headers: &impl Extractor) -> Result<Option<TraceParent>, CarrierError> {
        let Some(value) = headers.get("traceparent") else {
            return Ok(None);
        };
        let path = Path::Key(&Path::Root, "traceparent");
        if value.len() > 64 {
            return Err(path.err(Reason::TooLong { max: 64 }).into());
        }
        value
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| path.err(Reason::Id(e)).into())
    }

    /// Whether the `sampled` flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl Serialize for TraceParent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The `crux` object of a carrier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CruxCarrier {
    /// The run to resume.
    pub run_id: RunId,
    /// Its operation (v4); the run itself when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<RunId>,
    /// The segment that suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_segment_id: Option<SegmentId>,
    /// The span that was open when the run suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<SpanId>,
    /// Correlation only, never trusted identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Correlation only, never trusted identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The deployment identity (v3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentIdentity>,
}

/// A run's propagation carrier (`CruxPropagationCarrier`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Carrier {
    /// W3C trace context.
    pub traceparent: TraceParent,
    /// W3C `tracestate`, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// W3C `baggage`, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baggage: Option<String>,
    /// The Crux identity of the run.
    pub crux: CruxCarrier,
}

/// Somewhere to write carrier headers (an HTTP header map, a metadata map).
pub trait Injector {
    /// Sets header `key` to `value`.
    fn set(&mut self, key: &str, value: String);
}

/// Somewhere to read carrier headers from.
pub trait Extractor {
    /// The value of header `key`.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Injector for HashMap<String, String> {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), value);
    }
}
impl Injector for BTreeMap<String, String> {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key.to_owned(), value);
    }
}
impl Extractor for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}
impl Extractor for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl Carrier {
    /// Strictly decodes an untrusted carrier value.
    pub fn decode(value: &Value) -> Result<Carrier, CarrierError> {
        check_depth(value, MAX_DEPTH, Path::Root)?;
        let o = Obj::new(value, Path::Root)?;
        let tp_path = Path::Key(&Path::Root, "traceparent");
        let traceparent = o
            .req_str("traceparent", 64)?
            .parse::<TraceParent>()
            .map_err(|e| tp_path.err(Reason::Id(e)))?;
        let tracestate = o.opt_str("tracestate", MAX_TRACESTATE)?.map(str::to_owned);
        let baggage = o.opt_str("baggage", MAX_BAGGAGE)?.map(str::to_owned);
        if let Some(b) = &baggage
            && b.split(',').count() > MAX_BAGGAGE_MEMBERS
        {
            return Err(Path::Key(&Path::Root, "baggage")
                .err(Reason::TooMany {
                    max: MAX_BAGGAGE_MEMBERS,
                })
                .into());
        }
        let c = o
            .opt_obj("crux")?
            .ok_or_else(|| Path::Key(&Path::Root, "crux").err(Reason::Missing))?;
        check_crux_size(c.map, c.path)?;
        let crux = decode_crux(&c)?;
        Ok(Carrier {
            traceparent,
            tracestate,
            baggage,
            crux,
        })
    }

    /// The carrier as JSON (what a durable table stores).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Writes `traceparent`, `tracestate`, `baggage` and a `crux` header (the JSON of the
    /// `crux` object).
    pub fn inject(&self, headers: &mut impl Injector) {
        headers.set("traceparent", self.traceparent.to_string());
        if let Some(ts) = &self.tracestate {
            headers.set("tracestate", ts.clone());
        }
        if let Some(b) = &self.baggage {
            headers.set("baggage", b.clone());
        }
        headers.set(
            "crux",
            serde_json::to_string(&self.crux).unwrap_or_default(),
        );
    }

    /// Reads a carrier written by [`inject`](Carrier::inject): exactly the carriers
    /// [`decode`](Carrier::decode) accepts, with the same results, since it decodes the
    /// value the headers spell (the `crux` header parsed as JSON). Its only own errors are
    /// a missing `traceparent` or `crux` header and a `crux` header that is not JSON.
    pub fn extract(headers: &impl Extractor) -> Result<Carrier, CarrierError> {
        let traceparent = headers
            .get("traceparent")
            .ok_or(CarrierError::MissingHeader("traceparent"))?;
        let crux = headers
            .get("crux")
            .ok_or(CarrierError::MissingHeader("crux"))?;
        let crux: Value = serde_json::from_str(crux).map_err(|_| CarrierError::HeaderNotJson)?;
        let mut obj = serde_json::Map::new();
        obj.insert("traceparent".into(), Value::String(traceparent.to_owned()));
        for key in ["tracestate", "baggage"] {
            if let Some(v) = headers.get(key) {
                obj.insert(key.into(), Value::String(v.to_owned()));
            }
        }
        obj.insert("crux".into(), crux);
        Carrier::decode(&Value::Object(obj))
    }
}

impl<'de> Deserialize<'de> for Carrier {
    /// Deserializes through [`Carrier::decode`], with the same checks.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Carrier::decode(&v).map_err(serde::de::Error::custom)
    }
}

/// The `crux` size rule ([`MAX_CRUX_HEADER`]): counts the characters of the object's
/// compact JSON, stopping as soon as the cap is passed (unknown keys may hold anything).
fn check_crux_size(
    crux: &serde_json::Map<String, Value>,
    path: Path<'_>,
) -> Result<(), FieldError> {
    struct Count {
        chars: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            // UTF-8: every byte but a continuation byte starts a character.
            self.chars += bytes.iter().filter(|b| (**b & 0xC0) != 0x80).count();
            if self.chars > MAX_CRUX_HEADER {
                return Err(std::io::ErrorKind::FileTooLarge.into());
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    match serde_json::to_writer(&mut Count { chars: 0 }, crux) {
        Ok(()) => Ok(()),
        Err(_) => Err(path.err(Reason::TooLong {
            max: MAX_CRUX_HEADER,
        })),
    }
}

fn decode_crux(c: &Obj<'_>) -> Result<CruxCarrier, FieldError> {
    Ok(CruxCarrier {
        run_id: c.req_id("runId")?,
        operation_id: c.opt_id("operationId")?,
        previous_segment_id: c.opt_id("previousSegmentId")?,
        parent_span_id: c.opt_id("parentSpanId")?,
        session_id: c.opt_text("sessionId", MAX_LABEL)?.map(str::to_owned),
        user_id: c.opt_text("userId", MAX_LABEL)?.map(str::to_owned),
        deployment: match c.opt_obj("deployment")? {
            Some(d) => Some(decode_deployment(&d)?),
            None => None,
        },
    })
}
