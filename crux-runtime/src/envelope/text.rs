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
    let raw = match read::envelope(text) {
        Some(raw) => raw,
        None => serde_json::from_str::<Obj<RawEnvelope<'_>>>(text).ok()?.0,
    };
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

/// A reader of the JSON that [`Envelope::to_json_string`] writes, straight from the text:
/// objects, strings without escapes, unsigned integers and arrays of strings, with any
/// JSON whitespace between tokens and keys in any order.
///
/// It builds the same raw structs as the serde derive above and gives up (`None`) on
/// anything else it meets (an escape, a `null`, a duplicate or unknown key, a number
/// serde would read differently, ...), and the caller then takes the serde path. So for
/// every text it accepts, `serde_json::from_str` yields the same raw struct: the two paths
/// differ in speed only (about a third of the instructions, as it neither builds a
/// deserializer state machine per struct nor checks keys through visitors).
mod read {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use super::{Obj, RawBoundary, RawContext, RawCorrelators, RawDeployment, RawEnvelope};

    struct Reader<'a> {
        text: &'a str,
        at: usize,
    }

    /// Sets `slot` once: a second value for the same key gives up (serde refuses
    /// duplicate fields).
    fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(value);
        Some(())
    }

    /// The position of the first quote, backslash or control character in `bytes`: eight
    /// bytes per step while there is none (the classic zero-byte test on each of the
    /// three conditions; a hit, true or not, is resolved byte by byte).
    fn string_end(bytes: &[u8]) -> Option<usize> {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        let mut at = 0;
        while let Some(chunk) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
            // A byte below 0x20 sets its high bit in `word - 0x20..` (`!word`: not above 0x7f).
            let hits = zero(word ^ (ONES * u64::from(b'"')))
                | zero(word ^ (ONES * u64::from(b'\\')))
                | (word.wrapping_sub(ONES * 0x20) & !word & HIGH);
            if hits != 0 {
                return chunk.iter().position(|&b| special(b)).map(|i| at + i);
            }
            at += 8;
        }
        bytes[at..].iter().position(|&b| special(b)).map(|i| at + i)
    }

    impl<'a> Reader<'a> {
        fn byte(&mut self) -> Option<u8> {
            let bytes = self.text.as_bytes();
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(self.at) {
                self.at += 1;
            }
            bytes.get(self.at).copied()
        }

        fn eat(&mut self, expected: u8) -> Option<()> {
            (self.byte()? == expected).then(|| self.at += 1)
        }

        /// A string without escapes or control characters (which JSON forbids raw).
        fn string(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let start = self.at;
            let rest = &self.text.as_bytes()[start..];
            let len = string_end(rest)?;
            if rest[len] != b'"' {
                return None;
            }
            self.at = start + len + 1;
            // Both ends are next to an ASCII quote: char boundaries.
            Some(&self.text[start..start + len])
        }

        fn cow(&mut self) -> Option<Cow<'a, str>> {
            self.string().map(Cow::Borrowed)
        }

        /// Digits only, no leading zero (as JSON requires), no fraction or exponent (serde
        /// refuses those for an integer field), within `u64`.
        fn number(&mut self) -> Option<u64> {
            self.byte()?;
            let bytes = self.text.as_bytes();
            let start = self.at;
            let mut n: u64 = 0;
            while let Some(&b) = bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
                n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                self.at += 1;
            }
            let len = self.at - start;
            if len == 0 || (len > 1 && bytes[start] == b'0') {
                return None;
            }
            match bytes.get(self.at) {
                Some(b'.' | b'e' | b'E') => None,
                _ => Some(n),
            }
        }

        /// Calls `member` for each key of an object; `member` reads the value.
        fn object(
            &mut self,
            mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
        ) -> Option<()> {
            self.eat(b'{')?;
            if self.byte()? == b'}' {
                self.at += 1;
                return Some(());
            }
            loop {
                let key = self.string()?;
                self.eat(b':')?;
                member(self, key)?;
                match self.byte()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn strings(&mut self) -> Option<Vec<Cow<'a, str>>> {
            self.eat(b'[')?;
            let mut out = Vec::new();
            if self.byte()? == b']' {
                self.at += 1;
                return Some(out);
            }
            loop {
                out.push(self.cow()?);
                match self.byte()? {
                    b',' => self.at += 1,
                    b']' => {
                        self.at += 1;
                        return Some(out);
                    }
                    _ => return None,
                }
            }
        }

        fn context(&mut self) -> Option<RawContext<'a>> {
            let (mut run_id, mut operation_id, mut trace_id, mut segment_id) =
                (None, None, None, None);
            let (mut started_at_ms, mut correlators, mut deployment, mut span_stack) =
                (None, None, None, None);
            let (mut current_span_id, mut parent_run_id, mut triggered_by_span_id) =
                (None, None, None);
            self.object(|r, key| match key {
                "runId" => once(&mut run_id, r.cow()?),
                "operationId" => once(&mut operation_id, r.cow()?),
                "traceId" => once(&mut trace_id, r.cow()?),
                "segmentId" => once(&mut segment_id, r.cow()?),
                "startedAtMs" => once(&mut started_at_ms, r.number()?),
                "correlators" => once(&mut correlators, Obj(r.correlators()?)),
                "deployment" => once(&mut deployment, Obj(r.deployment()?)),
                "spanStack" => once(&mut span_stack, r.strings()?),
                "currentSpanId" => once(&mut current_span_id, r.cow()?),
                "parentRunId" => once(&mut parent_run_id, r.cow()?),
                "triggeredBySpanId" => once(&mut triggered_by_span_id, r.cow()?),
                _ => None,
            })?;
            Some(RawContext {
                run_id: run_id?,
                operation_id,
                trace_id: trace_id?,
                segment_id: segment_id?,
                started_at_ms,
                correlators,
                deployment,
                span_stack: span_stack?,
                current_span_id,
                parent_run_id,
                triggered_by_span_id,
            })
        }

        fn correlators(&mut self) -> Option<RawCorrelators<'a>> {
            let (mut session_id, mut user_id, mut metadata) = (None, None, None);
            self.object(|r, key| match key {
                "sessionId" => once(&mut session_id, r.cow()?),
                "userId" => once(&mut user_id, r.cow()?),
                "metadata" => {
                    let mut map = BTreeMap::new();
                    r.object(|r, key| {
                        let value = r.cow()?;
                        // serde keeps the last of duplicate map keys: leave those to it.
                        map.insert(Cow::Borrowed(key), value)
                            .is_none()
                            .then_some(())
                    })?;
                    once(&mut metadata, map)
                }
                _ => None,
            })?;
            Some(RawCorrelators {
                session_id,
                user_id,
                metadata,
            })
        }

        fn deployment(&mut self) -> Option<RawDeployment<'a>> {
            let (mut project_id, mut manifest_id, mut deployment_id) = (None, None, None);
            self.object(|r, key| match key {
                "projectId" => once(&mut project_id, r.cow()?),
                "manifestId" => once(&mut manifest_id, r.cow()?),
                "deploymentId" => once(&mut deployment_id, r.cow()?),
                _ => None,
            })?;
            Some(RawDeployment {
                project_id: project_id?,
                manifest_id: manifest_id?,
                deployment_id: deployment_id?,
            })
        }

        fn boundary(&mut self) -> Option<RawBoundary<'a>> {
            let (mut id, mut span_id, mut kind, mut label) = (None, None, None, None);
            let (mut function_ref, mut parent_span_stack, mut lease_expires_at) =
                (None, None, None);
            self.object(|r, key| match key {
                "id" => once(&mut id, r.cow()?),
                "spanId" => once(&mut span_id, r.cow()?),
                "kind" => once(&mut kind, r.cow()?),
                "label" => once(&mut label, r.cow()?),
                "ref" => once(&mut function_ref, r.cow()?),
                "parentSpanStack" => once(&mut parent_span_stack, r.strings()?),
                "leaseExpiresAt" => once(&mut lease_expires_at, r.cow()?),
                _ => None,
            })?;
            Some(RawBoundary {
                id: id?,
                span_id: span_id?,
                kind: kind?,
                label: label?,
                function_ref: function_ref?,
                parent_span_stack: parent_span_stack?,
                lease_expires_at,
            })
        }
    }

    /// The raw envelope of `text`, or `None` when this reader gives up.
    pub(super) fn envelope(text: &str) -> Option<RawEnvelope<'_>> {
        let mut r = Reader { text, at: 0 };
        let (mut v, mut observability, mut boundary) = (None, None, None);
        r.object(|r, key| match key {
            "v" => once(&mut v, r.number()?),
            "observability" => once(&mut observability, Obj(r.context()?)),
            "boundary" => once(&mut boundary, Obj(r.boundary()?)),
            _ => None,
        })?;
        // Only whitespace may follow, as for `serde_json::from_str`.
        if r.byte().is_some() {
            return None;
        }
        Some(RawEnvelope {
            v: v?,
            observability,
            boundary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: &str = r#""runId":"run_0123456789abcdef01234567","operationId":"run_000000000000000000000001","traceId":"0af7651916cd43dd8448eb211c80319c","segmentId":"seg_b7ad6b7169203331aabbccdd","startedAtMs":1767323705678,"spanStack":["b7ad6b7169203331","00f067aa0ba902b7"],"currentSpanId":"00f067aa0ba902b7""#;
    const BOUNDARY: &str = r#""id":"00f067aa0ba902b7","spanId":"00f067aa0ba902b7","kind":"action","label":"plan research","ref":"research:plan","parentSpanStack":["b7ad6b7169203331"],"leaseExpiresAt":"2026-01-02T03:15:05.678Z""#;

    fn canonical() -> String {
        format!(r#"{{"v":1,"observability":{{{CONTEXT}}},"boundary":{{{BOUNDARY}}}}}"#)
    }

    fn by_serde(text: &str) -> Option<Envelope> {
        let Obj(raw) = serde_json::from_str::<Obj<RawEnvelope<'_>>>(text).ok()?;
        finish(raw)
    }

    fn by_reader(text: &str) -> Option<Envelope> {
        finish(read::envelope(text)?)
    }

    fn finish(raw: RawEnvelope<'_>) -> Option<Envelope> {
        if raw.v != ENVELOPE_VERSION {
            return None;
        }
        Some(Envelope {
            v: 1,
            observability: match raw.observability {
                Some(Obj(c)) => Some(context(c)?),
                None => None,
            },
            boundary: match raw.boundary {
                Some(Obj(b)) => Some(boundary(b)?),
                None => None,
            },
        })
    }

    /// Whatever the reader accepts, serde reads the same; what it gives up on is the
    /// serde path's to decide.
    fn agrees(text: &str) -> bool {
        let reader = by_reader(text);
        if reader.is_some() {
            assert_eq!(reader, by_serde(text), "{text}");
        }
        reader.is_some()
    }

    #[test]
    fn the_reader_takes_what_crux_writes() {
        let text = canonical();
        assert!(agrees(&text));
        let env = by_reader(&text).unwrap();
        assert_eq!(by_reader(&env.to_json_string()), Some(env));
        assert!(agrees(r#"{"v":1}"#));
        assert!(agrees(&format!(
            r#" {{ "v" : 1 ,"boundary":{{{BOUNDARY}}} , "observability" : {{{CONTEXT}}} }} "#
        )));
        let metadata = format!(
            r#"{{"v":1,"observability":{{{CONTEXT},"correlators":{{"sessionId":"s1","userId":"u1","metadata":{{"a":"1","b":"2"}}}},"deployment":{{"projectId":"p","manifestId":"m","deploymentId":"d"}}}}}}"#
        );
        assert!(agrees(&metadata));
    }

    #[test]
    fn the_reader_gives_up_on_what_it_does_not_read_like_serde() {
        let text = canonical();
        let cases = [
            text.replace("plan research", r"plan \u0072esearch"),
            text.replace("plan research", "plan\tresearch"),
            text.replace(r#""v":1"#, r#""v":01"#),
            text.replace(r#""v":1"#, r#""v":1.0"#),
            text.replace(r#""v":1"#, r#""v":1e0"#),
            text.replace(r#""v":1"#, r#""v":-0"#),
            text.replace(r#""v":1"#, r#""v":18446744073709551616"#),
            text.replace(r#""v":1"#, r#""v":null"#),
            text.replace(r#""v":1"#, r#""v":1,"v":1"#),
            text.replace(r#""v":1"#, r#""v":1,"w":1"#),
            text.replace(r#""kind":"action""#, r#""kind":"action","kind":"action""#),
            text.replace(
                r#""leaseExpiresAt":"2026-01-02T03:15:05.678Z""#,
                r#""leaseExpiresAt":null"#,
            ),
            text.replace(r#"["b7ad6b7169203331"]"#, r#"["b7ad6b7169203331",]"#),
            text.replace(r#"["b7ad6b7169203331"]"#, "[]"),
            format!("{text}x"),
            format!("{text}{{}}"),
            text[..text.len() - 1].to_owned(),
            format!(
                r#"{{"v":1,"observability":{{{CONTEXT},"correlators":{{"metadata":{{"a":"1","a":"2"}}}}}}}}"#
            ),
            "[1]".to_owned(),
            String::new(),
        ];
        for case in &cases {
            agrees(case);
        }
        assert!(!agrees(&cases[0]), "escapes are serde's");
        assert!(!agrees(&cases[7]), "null is serde's");
        assert!(!agrees(&cases[8]), "duplicates are refused");
    }
}
