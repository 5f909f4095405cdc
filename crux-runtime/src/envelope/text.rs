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
    MAX_METADATA, MAX_METADATA_KEY, MAX_SPAN_STACK, WireContext,
};
use crate::clock::Timestamp;
use crate::ids::{RunId, SegmentId, SpanId, SpanStack, TraceId};
use crate::wire::{MAX_SAFE_INTEGER, fits_text};

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

/// Decodes `text` into `out` and returns `true` only for input the strict decoder accepts
/// with the same result; on `false`, `out` holds nothing of use.
///
/// Inlined, like the reader's entry point: the envelope (about 400 bytes) is filled in
/// where the caller keeps it (in its box, for a boxed decode) instead of copied out of
/// each return.
#[inline]
pub(super) fn decode_fast(text: &str, out: &mut Envelope) -> bool {
    read::envelope(text, out).is_some() || decode_typed(text, out).is_some()
}

/// The typed serde path of [`decode_fast`], for text the reader gave up on.
fn decode_typed(text: &str, out: &mut Envelope) -> Option<()> {
    let raw = serde_json::from_str::<Obj<RawEnvelope<'_>>>(text).ok()?.0;
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
    *out = Envelope {
        v: 1,
        observability,
        boundary,
    };
    Some(())
}

/// Whether two byte strings of the same length are equal, eight bytes a step: a key is a
/// few bytes, which a `memcmp` call costs more to set up than to compare.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let mut words_a = a.chunks_exact(8);
    let mut words_b = b.chunks_exact(8);
    for (x, y) in (&mut words_a).zip(&mut words_b) {
        let word = |w: &[u8]| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        if word(x) != word(y) {
            return false;
        }
    }
    words_a
        .remainder()
        .iter()
        .zip(words_b.remainder())
        .all(|(x, y)| x == y)
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

fn stack(ids: &[Cow<'_, str>]) -> Option<SpanStack> {
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
    if c.started_at_ms.is_some_and(|ms| ms > MAX_SAFE_INTEGER) {
        return None;
    }
    let correlators = match c.correlators {
        None => None,
        Some(Obj(r)) => {
            let mut metadata = BTreeMap::new();
            for (k, v) in r.metadata.unwrap_or_default() {
                text(&k, MAX_METADATA_KEY)?;
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
        Some(s) => Some(s.parse::<Timestamp>().ok()?),
    };
    Some(Boundary {
        id: id_,
        span_id,
        kind,
        label: label(&b.label)?.into(),
        function_ref: label(&b.function_ref)?.into(),
        parent_span_stack: stack(&b.parent_span_stack)?,
        lease_expires_at,
    })
}

/// A reader of the JSON that [`Envelope::to_json_string`] writes, straight from the text
/// into the owned [`Envelope`]: objects, strings without escapes, unsigned integers and
/// arrays of ids, with any JSON whitespace between tokens and keys in any order.
///
/// Ids are parsed where they lie in the text (an id's wire text has a fixed length, so
/// its closing quote is found without scanning), labels are checked and copied once, and
/// the same checks as the `Value` decoder's apply. It gives up (`None`) on anything else
/// it meets (an escape, a `null`, a duplicate or unknown key, a number serde would read
/// differently, an id or label the strict decoder would refuse, ...), and the caller then
/// takes the serde path, which decides. So for every text it accepts, the serde path and
/// the `Value` decoder yield the same envelope: the paths differ in speed only (no
/// intermediate borrowed structs, no visitors, no per-id string scan).
mod read {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use super::super::{
        Boundary, BoundaryKind, Correlators, DeploymentIdentity, ENVELOPE_VERSION, Envelope,
        MAX_LABEL, MAX_METADATA, MAX_METADATA_KEY, MAX_SPAN_STACK, WireContext,
    };
    use super::{label, same_bytes, text};
    use crate::clock::Timestamp;
    use crate::ids::{RunId, SegmentId, SpanId, SpanStack, TraceId};
    use crate::wire::MAX_SAFE_INTEGER;

    /// An id type and the length of its wire text (every valid id has exactly this many
    /// ASCII characters).
    pub(super) trait WireId: FromStr {
        const LEN: usize;
    }
    impl WireId for SpanId {
        const LEN: usize = 16;
    }
    impl WireId for TraceId {
        const LEN: usize = 32;
    }
    impl WireId for RunId {
        const LEN: usize = 28;
    }
    impl WireId for SegmentId {
        const LEN: usize = 28;
    }

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

    impl<'a> Reader<'a> {
        fn byte(&mut self) -> Option<u8> {
            let bytes = self.text.as_bytes();
            let b = *bytes.get(self.at)?;
            // Crux writes no whitespace: one compare for every byte above the space.
            if b > b' ' {
                return Some(b);
            }
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
            let len = crate::json_text::special_at(rest)?;
            if rest[len] != b'"' {
                return None;
            }
            self.at = start + len + 1;
            // Both ends are next to an ASCII quote: char boundaries.
            self.text.get(start..start + len)
        }

        /// An object key and its colon. Keys are short: a plain byte loop.
        fn key(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let bytes = self.text.as_bytes();
            let start = self.at;
            loop {
                match *bytes.get(self.at)? {
                    b'"' => break,
                    b'\\' => return None,
                    b if b < 0x20 => return None,
                    _ => self.at += 1,
                }
            }
            let key = self.text.get(start..self.at)?;
            self.at += 1;
            self.eat(b':')?;
            Some(key)
        }

        /// An id, parsed in place: a valid id is `T::LEN` ASCII characters followed by the
        /// closing quote; anything else is not a valid id (or not one without escapes).
        fn id<T: WireId>(&mut self) -> Option<T> {
            self.eat(b'"')?;
            let start = self.at;
            let end = start + T::LEN;
            if self.text.as_bytes().get(end) != Some(&b'"') {
                return None;
            }
            // The parse accepts only prefix and hex characters: no quote or escape inside.
            let id = self.text.get(start..end)?.parse().ok()?;
            self.at = end + 1;
            Some(id)
        }

        /// A label (`super::label`'s rule), owned.
        fn label(&mut self) -> Option<String> {
            label(self.string()?)
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

        /// After a member of an object or array: a comma (more follow: `false`) or `close`
        /// (the end: `true`), stepped over; anything else gives up.
        #[inline]
        fn closes(&mut self, close: u8) -> Option<bool> {
            match self.byte()? {
                b',' => {
                    self.at += 1;
                    Some(false)
                }
                b if b == close => {
                    self.at += 1;
                    Some(true)
                }
                _ => None,
            }
        }

        /// Calls `member` with the index in `keys` of each key of an object; `member`
        /// reads the value. An unknown key gives up.
        ///
        /// Keys are first looked for in `keys`' order from the last one found (the order
        /// crux writes them in, optional keys skipped), quoted and followed by a colon
        /// where the reader stands: one comparison per key, no scan. Any other order or
        /// spacing takes the general path.
        fn object(
            &mut self,
            keys: &[&str],
            mut member: impl FnMut(&mut Self, usize) -> Option<()>,
        ) -> Option<()> {
            self.eat(b'{')?;
            if self.byte()? == b'}' {
                self.at += 1;
                return Some(());
            }
            let mut next = 0;
            loop {
                let index = match self.expected(keys, next) {
                    Some(index) => index,
                    None => {
                        let key = self.key()?;
                        keys.iter().position(|k| *k == key)?
                    }
                };
                next = index + 1;
                member(self, index)?;
                if self.closes(b'}')? {
                    return Some(());
                }
            }
        }

        /// Calls `member` for each key of an object of any keys (a metadata map).
        fn entries(
            &mut self,
            mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
        ) -> Option<()> {
            self.eat(b'{')?;
            if self.byte()? == b'}' {
                self.at += 1;
                return Some(());
            }
            loop {
                let key = self.key()?;
                member(self, key)?;
                if self.closes(b'}')? {
                    return Some(());
                }
            }
        }

        /// The index of the first of `keys[from..]` written right where the reader stands
        /// as `"key":`, read past it.
        ///
        /// Inlined, and keys compared without a `memcmp` call: it runs for every member
        /// of an envelope, and a call's set-up cost more than the compare.
        #[inline(always)]
        fn expected(&mut self, keys: &[&str], from: usize) -> Option<usize> {
            let rest = self.text.as_bytes().get(self.at..)?;
            if rest.first() != Some(&b'"') {
                return None;
            }
            for (index, key) in keys.iter().enumerate().skip(from) {
                let n = key.len();
                // The closing quote first: it rules out most other keys in one compare.
                if rest.get(n + 1) == Some(&b'"')
                    && rest.get(n + 2) == Some(&b':')
                    && same_bytes(&rest[1..=n], key.as_bytes())
                {
                    self.at += n + 3;
                    return Some(index);
                }
            }
            None
        }

        /// A span stack: at most [`MAX_SPAN_STACK`] span ids.
        /// `same`, shared, when the ids read are its ids (a boundary's `parentSpanStack`
        /// is usually the context's `spanStack`): no second allocation of one stack.
        fn stack(&mut self, same: Option<&SpanStack>) -> Option<SpanStack> {
            self.eat(b'[')?;
            // A usual stack is read into a buffer on the thread's stack, then copied once
            // into the shared allocation of the ids' number; a deeper one spills to a `Vec`.
            const INLINE: usize = 16;
            let mut buf = [SpanId(0); INLINE];
            let mut spill: Vec<SpanId> = Vec::new();
            let mut len = 0;
            if self.byte()? == b']' {
                self.at += 1;
                return Some(SpanStack::new());
            }
            loop {
                if len == MAX_SPAN_STACK {
                    return None;
                }
                let id = self.id()?;
                if len < INLINE {
                    buf[len] = id;
                } else {
                    if spill.is_empty() {
                        spill.extend_from_slice(&buf);
                    }
                    spill.push(id);
                }
                len += 1;
                if self.closes(b']')? {
                    let ids: &[SpanId] = if spill.is_empty() {
                        &buf[..len]
                    } else {
                        &spill
                    };
                    return Some(match same {
                        Some(same) if **same == *ids => same.clone(),
                        _ => SpanStack::from(ids),
                    });
                }
            }
        }

        fn context(&mut self) -> Option<WireContext> {
            let (mut run_id, mut operation_id, mut trace_id, mut segment_id) =
                (None, None, None, None);
            let (mut started_at_ms, mut correlators, mut deployment, mut span_stack) =
                (None, None, None, None);
            let (mut current_span_id, mut parent_run_id, mut triggered_by_span_id) =
                (None, None, None);
            const KEYS: [&str; 11] = [
                "runId",
                "operationId",
                "traceId",
                "segmentId",
                "startedAtMs",
                "correlators",
                "deployment",
                "spanStack",
                "currentSpanId",
                "parentRunId",
                "triggeredBySpanId",
            ];
            self.object(&KEYS, |r, key| match key {
                0 => once(&mut run_id, r.id()?),
                1 => once(&mut operation_id, r.id()?),
                2 => once(&mut trace_id, r.id()?),
                3 => once(&mut segment_id, r.id()?),
                4 => once(&mut started_at_ms, r.number()?),
                5 => once(&mut correlators, r.correlators()?),
                6 => once(&mut deployment, r.deployment()?),
                7 => once(&mut span_stack, r.stack(None)?),
                8 => once(&mut current_span_id, r.id::<SpanId>()?),
                9 => once(&mut parent_run_id, r.id()?),
                _ => once(&mut triggered_by_span_id, r.id()?),
            })?;
            let run_id: RunId = run_id?;
            let span_stack: SpanStack = span_stack?;
            if current_span_id.is_some() && current_span_id != span_stack.last().copied() {
                return None;
            }
            if started_at_ms.is_some_and(|ms| ms > MAX_SAFE_INTEGER) {
                return None;
            }
            Some(WireContext {
                run_id,
                operation_id: operation_id.unwrap_or(run_id),
                trace_id: trace_id?,
                segment_id: segment_id?,
                started_at_ms,
                correlators,
                deployment,
                span_stack,
                current_span_id,
                parent_run_id,
                triggered_by_span_id,
            })
        }

        fn correlators(&mut self) -> Option<Correlators> {
            let (mut session_id, mut user_id, mut metadata) = (None, None, None);
            self.object(&["sessionId", "userId", "metadata"], |r, key| match key {
                0 => once(&mut session_id, r.label()?),
                1 => once(&mut user_id, r.label()?),
                _ => {
                    let mut map = BTreeMap::new();
                    r.entries(|r, key| {
                        text(key, MAX_METADATA_KEY)?;
                        let value = text(r.string()?, MAX_LABEL)?;
                        if map.len() == MAX_METADATA {
                            return None;
                        }
                        // serde keeps the last of duplicate map keys: leave those to it.
                        map.insert(key.to_owned(), value.to_owned())
                            .is_none()
                            .then_some(())
                    })?;
                    once(&mut metadata, map)
                }
            })?;
            Some(Correlators {
                session_id,
                user_id,
                metadata: metadata.unwrap_or_default(),
            })
        }

        fn deployment(&mut self) -> Option<DeploymentIdentity> {
            let (mut project_id, mut manifest_id, mut deployment_id) = (None, None, None);
            const KEYS: [&str; 3] = ["projectId", "manifestId", "deploymentId"];
            self.object(&KEYS, |r, key| match key {
                0 => once(&mut project_id, r.label()?),
                1 => once(&mut manifest_id, r.label()?),
                _ => once(&mut deployment_id, r.label()?),
            })?;
            Some(DeploymentIdentity {
                project_id: project_id?,
                manifest_id: manifest_id?,
                deployment_id: deployment_id?,
            })
        }

        /// A boundary; `context_stack` is the context's stack, when read before it.
        fn boundary(&mut self, context_stack: Option<&SpanStack>) -> Option<Boundary> {
            let (mut id, mut span_id, mut kind, mut label) = (None, None, None, None);
            let (mut function_ref, mut parent_span_stack, mut lease_expires_at) =
                (None, None, None);
            const KEYS: [&str; 7] = [
                "id",
                "spanId",
                "kind",
                "label",
                "ref",
                "parentSpanStack",
                "leaseExpiresAt",
            ];
            self.object(&KEYS, |r, key| match key {
                0 => once(&mut id, r.id::<SpanId>()?),
                1 => once(&mut span_id, r.id::<SpanId>()?),
                2 => {
                    let kind_ = match r.string()? {
                        "action" => BoundaryKind::Action,
                        "schedule" => BoundaryKind::Schedule,
                        _ => return None,
                    };
                    once(&mut kind, kind_)
                }
                3 => once(&mut label, r.label()?),
                4 => once(&mut function_ref, r.label()?),
                5 => once(&mut parent_span_stack, r.stack(context_stack)?),
                _ => {
                    let lease = r.string()?.parse::<Timestamp>().ok()?;
                    once(&mut lease_expires_at, lease)
                }
            })?;
            let id = id?;
            if span_id? != id {
                return None;
            }
            Some(Boundary {
                id,
                span_id: id,
                kind: kind?,
                label: label?.into(),
                function_ref: function_ref?.into(),
                parent_span_stack: parent_span_stack?,
                lease_expires_at,
            })
        }
    }

    /// The envelope of `text`, read into `out` (its context and boundary written where
    /// `out` lies), or `None` when this reader gives up (then `out` holds nothing of use).
    #[inline]
    pub(super) fn envelope(text: &str, out: &mut Envelope) -> Option<()> {
        let mut r = Reader { text, at: 0 };
        let mut v = None;
        out.v = ENVELOPE_VERSION as u32;
        out.observability = None;
        out.boundary = None;
        r.object(&["v", "observability", "boundary"], |r, key| match key {
            0 => once(&mut v, r.number()?),
            1 => once(&mut out.observability, r.context()?),
            _ => {
                let context_stack = out.observability.as_ref().map(|c| &c.span_stack);
                once(&mut out.boundary, r.boundary(context_stack)?)
            }
        })?;
        // Only whitespace may follow, as for `serde_json::from_str`.
        if r.byte().is_some() || v? != ENVELOPE_VERSION {
            return None;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::EnvelopeError;

    const CONTEXT: &str = r#""runId":"run_0123456789abcdef01234567","operationId":"run_000000000000000000000001","traceId":"0af7651916cd43dd8448eb211c80319c","segmentId":"seg_b7ad6b7169203331aabbccdd","startedAtMs":1767323705678,"spanStack":["b7ad6b7169203331","00f067aa0ba902b7"],"currentSpanId":"00f067aa0ba902b7""#;
    const BOUNDARY: &str = r#""id":"00f067aa0ba902b7","spanId":"00f067aa0ba902b7","kind":"action","label":"plan research","ref":"research:plan","parentSpanStack":["b7ad6b7169203331"],"leaseExpiresAt":"2026-01-02T03:15:05.678Z""#;

    #[test]
    fn same_bytes_finds_a_difference_at_any_position_of_any_length() {
        let text = b"parentSpanStack:leaseExpiresAt";
        for len in 0..=text.len() {
            let a = &text[..len];
            assert!(same_bytes(a, a));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x20;
                assert!(!same_bytes(a, &b), "{len} {at}");
            }
        }
    }

    #[test]
    fn the_reader_fills_an_envelope_that_already_holds_one_from_scratch() {
        let fresh = |text: &str| by_reader(text);
        let full = by_reader(&canonical()).expect("the canonical text is read");
        // Read into the filled envelope: nothing of the first survives a bare `{"v":1}`.
        let mut out = full.clone();
        assert_eq!(read::envelope(r#"{"v":1}"#, &mut out), Some(()));
        assert_eq!(out, Envelope::new(None));
        // And reading the full text again into it is not a duplicate key.
        assert_eq!(read::envelope(&canonical(), &mut out), Some(()));
        assert_eq!(Some(out.clone()), fresh(&canonical()));
        // Text the reader gives up on, then serde's typed path, into the same envelope:
        // the result is what a fresh envelope gets.
        let escaped = canonical().replace("plan research", "plan \\u0072esearch");
        assert!(read::envelope(&escaped, &mut out).is_none());
        assert!(decode_fast(&escaped, &mut out));
        let mut from_fresh = Envelope::new(None);
        assert!(decode_fast(&escaped, &mut from_fresh));
        assert_eq!(out, from_fresh);
    }

    fn canonical() -> String {
        format!(r#"{{"v":1,"observability":{{{CONTEXT}}},"boundary":{{{BOUNDARY}}}}}"#)
    }

    fn by_serde(text: &str) -> Option<Envelope> {
        let Obj(raw) = serde_json::from_str::<Obj<RawEnvelope<'_>>>(text).ok()?;
        finish(raw)
    }

    fn by_reader(text: &str) -> Option<Envelope> {
        let mut out = Envelope::new(None);
        read::envelope(text, &mut out).map(|()| out)
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
    fn wire_id_lengths_are_the_lengths_ids_are_written_with() {
        use read::WireId;
        assert_eq!(SpanId::generate().to_string().len(), SpanId::LEN);
        assert_eq!(TraceId::generate().to_string().len(), TraceId::LEN);
        assert_eq!(RunId::generate().to_string().len(), RunId::LEN);
        assert_eq!(SegmentId::generate().to_string().len(), SegmentId::LEN);
    }

    /// What `decode_str` would give without the reader: the serde path, then the
    /// `Value` decoder for what that path does not take.
    fn without_reader(text: &str) -> Result<Envelope, EnvelopeError> {
        if let Some(env) = by_serde(text) {
            return Ok(env);
        }
        let value: serde_json::Value = serde_json::from_str(text).expect("test texts are JSON");
        Envelope::decode(&value)
    }

    #[test]
    fn stacks_of_every_depth_read_alike_and_a_boundary_stack_equal_to_the_contexts_is_shared() {
        let ids = |from: u64, depth: usize| -> String {
            let ids: Vec<String> = (0..depth as u64)
                .map(|i| format!("\"{:016x}\"", from + i))
                .collect();
            format!("[{}]", ids.join(","))
        };
        // Around the reader's inline buffer (16) and up to the cap.
        for depth in [1, 2, 15, 16, 17, 40, MAX_SPAN_STACK] {
            let last = format!("{:016x}", depth as u64);
            let context = CONTEXT
                .replace(r#"["b7ad6b7169203331","00f067aa0ba902b7"]"#, &ids(1, depth))
                .replace(
                    r#""currentSpanId":"00f067aa0ba902b7""#,
                    &format!(r#""currentSpanId":"{last}""#),
                );
            for (parent, same) in [(ids(1, depth), true), (ids(2, depth), false)] {
                let boundary = BOUNDARY.replace(r#"["b7ad6b7169203331"]"#, &parent);
                let text =
                    format!(r#"{{"v":1,"observability":{{{context}}},"boundary":{{{boundary}}}}}"#);
                assert!(agrees(&text), "{text}");
                let env = Envelope::decode_str(&text).unwrap();
                assert_eq!(Ok(env.clone()), without_reader(&text), "{text}");
                let ctx = env.observability.unwrap();
                let b = env.boundary.unwrap();
                assert_eq!(ctx.span_stack.len(), depth);
                assert_eq!(ctx.span_stack.last().unwrap().to_string(), last);
                assert_eq!(b.parent_span_stack.len(), depth);
                assert_eq!(b.parent_span_stack == ctx.span_stack, same);
                // One allocation when the stacks are the same ids, two otherwise.
                assert_eq!(
                    std::ptr::eq(b.parent_span_stack.as_ptr(), ctx.span_stack.as_ptr()),
                    same,
                    "depth {depth}"
                );
            }
        }
    }

    #[test]
    fn the_reader_gives_up_on_ids_and_labels_the_strict_decoder_refuses() {
        let text = canonical();
        let cases = [
            // One hex digit short or long: the closing quote is not where an id's is.
            text.replace("00f067aa0ba902b7", "00f067aa0ba902b"),
            text.replace("00f067aa0ba902b7", "00f067aa0ba902b77"),
            text.replace("00f067aa0ba902b7", "00F067AA0BA902B7"),
            text.replace("00f067aa0ba902b7", "0000000000000000"),
            text.replace(
                "run_0123456789abcdef01234567",
                r"run_0123456789abcdef0123456\u0037",
            ),
            text.replace(
                "run_0123456789abcdef01234567",
                "xxx_0123456789abcdef01234567",
            ),
            text.replace("plan research", ""),
            text.replace("plan research", &"x".repeat(MAX_LABEL + 1)),
            text.replace("plan research", "plan\u{7f}research"),
            text.replace("2026-01-02T03:15:05.678Z", "2026-02-31T03:15:05.678Z"),
            text.replace(r#""kind":"action""#, r#""kind":"actions""#),
            text.replace(r#""id":"00f067aa0ba902b7""#, r#""id":"b7ad6b7169203331""#),
            text.replace(
                r#""currentSpanId":"00f067aa0ba902b7""#,
                r#""currentSpanId":"b7ad6b7169203331""#,
            ),
            text.replace("1767323705678", "9007199254740993"),
        ];
        for case in &cases {
            assert!(!agrees(case), "{case}");
            // The strict decoder decides, as it would have without the reader.
            assert_eq!(Envelope::decode_str(case), without_reader(case), "{case}");
            let boxed = Envelope::decode_str_boxed(case).map(|b| *b);
            assert_eq!(boxed, without_reader(case), "boxed: {case}");
        }
        // An escaped id is valid JSON for the same id: the reader leaves it to serde.
        let escaped = &cases[4];
        assert_eq!(
            Envelope::decode_str(escaped),
            Envelope::decode_str(&text),
            "{escaped}"
        );
        let stack = format!(
            "[{}]",
            vec![r#""b7ad6b7169203331""#; MAX_SPAN_STACK + 1].join(",")
        );
        let long = text.replace(r#"["b7ad6b7169203331"]"#, &stack);
        assert!(!agrees(&long));
        assert!(Envelope::decode_str(&long).is_err());
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
