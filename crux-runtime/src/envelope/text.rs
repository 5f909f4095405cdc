//! The fast path of [`Envelope::decode_str`]: a typed, borrowing deserialize of
//! well-formed envelope text, checked with the same rules as the `Value` decoder.
//!
//! It accepts a subset of what [`Envelope::decode`] accepts (no unknown keys, no
//! duplicates, objects only: [`Obj`] keeps serde from reading a struct out of a JSON
//! array), so any input it refuses, for any reason, goes through the `Value` decoder, which
//! then yields the precise field error or the same envelope.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};

use super::{
    Boundary, BoundaryKind, Correlators, DeploymentIdentity, ENVELOPE_VERSION, Envelope, MAX_LABEL,
    MAX_METADATA, MAX_SPAN_STACK, WireContext,
};
use crate::clock::Timestamp;
use crate::ids::{RunId, SegmentId, SpanId, TraceId};
use crate::wire::fits_text;

/// A struct that must be written as a JSON object. Derived `Deserialize` impls also read
/// structs from arrays (`[1]` as `{"v": 1}`), which the `Value` decoder refuses.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Only<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Only<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Only(std::marker::PhantomData)).map(Obj)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope<'a> {
    v: u64,
    #[serde(borrow, default)]
    observability: Option<Obj<RawContext<'a>>>,
    #[serde(borrow, default)]
    boundary: Option<Obj<RawBoundary<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawContext<'a> {
    #[serde(borrow)]
    run_id: Cow<'a, str>,
    #[serde(borrow, default)]
    operation_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    trace_id: Cow<'a, str>,
    #[serde(borrow)]
    segment_id: Cow<'a, str>,
    #[serde(default)]
    started_at_ms: Option<u64>,
    #[serde(borrow, default)]
    correlators: Option<Obj<RawCorrelators<'a>>>,
    #[serde(borrow, default)]
    deployment: Option<Obj<RawDeployment<'a>>>,
    #[serde(borrow)]
    span_stack: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    current_span_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    parent_run_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    triggered_by_span_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCorrelators<'a> {
    #[serde(borrow, default)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawDeployment<'a> {
    #[serde(borrow)]
    project_id: Cow<'a, str>,
    #[serde(borrow)]
    manifest_id: Cow<'a, str>,
    #[serde(borrow)]
    deployment_id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBoundary<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    span_id: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    label: Cow<'a, str>,
    #[serde(borrow, rename = "ref")]
    function_ref: Cow<'a, str>,
    #[serde(borrow)]
    parent_span_stack: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    lease_expires_at: Option<Cow<'a, str>>,
}

/// `Some` only for input the strict decoder accepts with the same result.
pub(super) fn decode_fast(text: &str) -> Option<Envelope> {
    let Obj(raw): Obj<RawEnvelope<'_>> = serde_json::from_str(text).ok()?;
    if raw.v != ENVELOPE_VERSION {
        return None;
    }
    let observability = match raw.observability {
        Some(Obj(c)) => Some(context(c)?),
        None => None,
    };
    let boundary = match raw.boundary {
        Some(Obj(b)) => Some(boundary(b)?),
        None => None,
    };
    Some(Envelope {
        v: 1,
        observability,
        boundary,
    })
}

/// `s` if it passes the wire's text rule ([`fits_text`]).
fn text(s: &str, max: usize) -> Option<&str> {
    fits_text(s, max).then_some(s)
}

fn label(s: &str) -> Option<String> {
    text(s, MAX_LABEL)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn id<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.len() > 64 {
        return None;
    }
    s.parse().ok()
}

fn opt_id<T: std::str::FromStr>(s: Option<Cow<'_, str>>) -> Option<Option<T>> {
    match s {
        None => Some(None),
        Some(s) => id(&s).map(Some),
    }
}

fn stack(ids: &[Cow<'_, str>]) -> Option<Vec<SpanId>> {
    if ids.len() > MAX_SPAN_STACK {
        return None;
    }
    ids.iter().map(|s| id(s)).collect()
}

fn context(c: RawContext<'_>) -> Option<WireContext> {
    let run_id: RunId = id(&c.run_id)?;
    let span_stack = stack(&c.span_stack)?;
    let current_span_id: Option<SpanId> = opt_id(c.current_span_id)?;
    if current_span_id.is_some() && current_span_id != span_stack.last().copied() {
        return None;
    }
    if c.started_at_ms.is_some_and(|ms| ms > 1 << 53) {
        return None;
    }
    let correlators = match c.correlators {
        None => None,
        Some(Obj(r)) => {
            let mut metadata = BTreeMap::new();
            for (k, v) in r.metadata.unwrap_or_default() {
                text(&k, 64)?;
                text(&v, MAX_LABEL)?;
                metadata.insert(k.into_owned(), v.into_owned());
            }
            if metadata.len() > MAX_METADATA {
                return None;
            }
            Some(Correlators {
                session_id: match r.session_id {
                    Some(s) => Some(label(&s)?),
                    None => None,
                },
                user_id: match r.user_id {
                    Some(s) => Some(label(&s)?),
                    None => None,
                },
                metadata,
            })
        }
    };
    let deployment = match c.deployment {
        None => None,
        Some(Obj(d)) => Some(DeploymentIdentity {
            project_id: label(&d.project_id)?,
            manifest_id: label(&d.manifest_id)?,
            deployment_id: label(&d.deployment_id)?,
        }),
    };
    Some(WireContext {
        run_id,
        operation_id: opt_id(c.operation_id)?.unwrap_or(run_id),
        trace_id: id::<TraceId>(&c.trace_id)?,
        segment_id: id::<SegmentId>(&c.segment_id)?,
        started_at_ms: c.started_at_ms,
        correlators,
        deployment,
        span_stack,
        current_span_id,
        parent_run_id: opt_id(c.parent_run_id)?,
        triggered_by_span_id: opt_id(c.triggered_by_span_id)?,
    })
}

fn boundary(b: RawBoundary<'_>) -> Option<Boundary> {
    let id_: SpanId = id(&b.id)?;
    let span_id: SpanId = id(&b.span_id)?;
    if id_ != span_id {
        return None;
    }
    let kind = match &*b.kind {
        "action" => BoundaryKind::Action,
        "schedule" => BoundaryKind::Schedule,
        _ => return None,
    };
    let lease_expires_at = match b.lease_expires_at {
        None => None,
        Some(s) => {
            s.parse::<Timestamp>().ok()?;
            Some(s.into_owned())
        }
    };
    Some(Boundary {
        id: id_,
        span_id,
        kind,
        label: label(&b.label)?,
        function_ref: label(&b.function_ref)?,
        parent_span_stack: stack(&b.parent_span_stack)?,
        lease_expires_at,
    })
}
