//! Identifiers in the Crux wire formats, and the generator behind them.
//!
//! | type | wire form |
//! |---|---|
//! | [`TraceId`] | 32 lowercase hex, never all zero |
//! | [`SpanId`] | 16 lowercase hex, never all zero |
//! | [`RunId`] | `run_` + 24 lowercase hex (also operation ids) |
//! | [`SegmentId`] | `seg_` + 24 lowercase hex |
//! | [`RecordId`] | `rec_<16hex>_<base36 counter>` |
//! | [`EventId`], [`EdgeId`], [`ArtifactId`] | `event_`, `edge_`, `artifact_` + 16 hex |
//!
//! Generation is a thread-local wyrand seeded once per thread from
//! [`std::hash::RandomState`]: no lock, no syscall, about a nanosecond an id. Parsing is
//! strict: exact length, lowercase hex only, never all zero.
//!
//! ```
//! use crux_runtime::ids::{RunId, TraceId};
//! let run = RunId::generate();
//! assert_eq!(run.to_string().len(), 28);
//! assert_eq!(run.to_string().parse::<RunId>().unwrap(), run);
//! assert!("00000000000000000000000000000000".parse::<TraceId>().is_err());
//! ```

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hex;
pub use crate::span_stack::SpanStack;

/// Why a string is not a valid identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which identifier was being parsed (`trace id`, `run id`, ...).
    pub kind: &'static str,
    /// What was wrong with it.
    pub reason: IdErrorReason,
}

/// The specific defect of an invalid identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdErrorReason {
    /// The string does not start with the required prefix.
    #[error("expected the prefix `{0}`")]
    MissingPrefix(&'static str),
    /// Wrong number of hex digits.
    #[error("expected {expected} hex digits, found {found} characters")]
    Length {
        /// Digits required.
        expected: usize,
        /// Characters found after the prefix.
        found: usize,
    },
    /// A character that is not lowercase hex.
    #[error("expected lowercase hex digits (0-9, a-f)")]
    NotHex,
    /// Every digit is zero, which W3C and Crux reserve as "invalid".
    #[error("all-zero ids are invalid")]
    AllZero,
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    // Mixing in the thread's stack address separates threads that got equal keys.
    let local = 0u8;
    h.write_usize(&local as *const u8 as usize);
    h.finish() | 1
}

/// A uniformly random `u64` from the thread-local wyrand generator.
#[inline]
pub fn random_u64() -> u64 {
    RNG.with(|s| {
        let x = s.get().wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

#[inline]
fn nonzero_u64() -> u64 {
    loop {
        let v = random_u64();
        if v != 0 {
            return v;
        }
    }
}

fn random_12() -> [u8; 12] {
    loop {
        let a = random_u64().to_le_bytes();
        let b = random_u64().to_le_bytes();
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&a);
        out[8..].copy_from_slice(&b[..4]);
        if out != [0u8; 12] {
            return out;
        }
    }
}

/// An id's wire text, built on the stack (no formatter machinery on the hot path).
pub(crate) struct IdBuf {
    buf: [u8; 48],
    len: usize,
}

impl IdBuf {
    fn new() -> Self {
        Self {
            buf: [0; 48],
            len: 0,
        }
    }

    fn push_str(&mut self, s: &str) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
    }

    fn push_digits(&mut self, digits: &[u8]) {
        debug_assert!(digits.is_ascii(), "as_str relies on ASCII digits");
        self.buf[self.len..self.len + digits.len()].copy_from_slice(digits);
        self.len += digits.len();
    }

    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: only whole `&str`s (`push_str`) and ASCII digits (`push_digits`, from the
        // ids' `digits`/`text`: hex and base-36 digits, `rec_` and `_`) are
        // ever pushed, so the bytes up to `len` are UTF-8. Validating them again on every
        // id written cost as much as writing the id.
        unsafe { std::str::from_utf8_unchecked(&self.buf[..self.len]) }
    }
}

fn parse_hex<const N: usize>(
    kind: &'static str,
    prefix: &'static str,
    s: &str,
) -> Result<[u8; N], IdError> {
    let err = |reason| IdError { kind, reason };
    let digits = s
        .strip_prefix(prefix)
        .ok_or(err(IdErrorReason::MissingPrefix(prefix)))?;
    if digits.len() != 2 * N {
        return Err(err(IdErrorReason::Length {
            expected: 2 * N,
            found: digits.chars().count(),
        }));
    }
    const { assert!(N.is_multiple_of(4), "ids are whole 32-bit words") };
    let mut out = [0u8; N];
    // Eight digits a word, branch-free; one check for all of them at the end.
    let (mut invalid, mut any) = (0u64, 0u32);
    for (word, eight) in out
        .chunks_exact_mut(4)
        .zip(digits.as_bytes().chunks_exact(8))
    {
        let mut d = [0u8; 8];
        d.copy_from_slice(eight);
        let (bytes, bad) = hex::decode8(d);
        invalid |= bad;
        any |= u32::from_ne_bytes(bytes);
        word.copy_from_slice(&bytes);
    }
    if invalid != 0 {
        return Err(err(IdErrorReason::NotHex));
    }
    if any == 0 {
        return Err(err(IdErrorReason::AllZero));
    }
    Ok(out)
}

macro_rules! string_serde {
    ($t:ty, $expecting:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.encode().as_str())
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.encode().as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

/// A 32-hex-digit trace id (W3C), never all zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub u128);

impl TraceId {
    /// A fresh random trace id.
    pub fn generate() -> Self {
        Self((u128::from(nonzero_u64()) << 64) | u128::from(random_u64()))
    }
}

impl TraceId {
    pub(crate) fn encode(&self) -> IdBuf {
        let mut b = IdBuf::new();
        b.push_digits(&self.digits());
        b
    }

    /// Its 32 hex digits, at their fixed length (writers copy them without a length).
    #[inline]
    pub(crate) fn digits(&self) -> [u8; 32] {
        hex::encode_u128(self.0)
    }
}

impl FromStr for TraceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_hex::<16>("trace id", "", s).map(|b| Self(u128::from_be_bytes(b)))
    }
}
string_serde!(TraceId, "a 32-hex-digit trace id");

/// A 16-hex-digit span id, never all zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub u64);

impl SpanId {
    /// A fresh random span id.
    #[inline]
    pub fn generate() -> Self {
        Self(nonzero_u64())
    }
}

impl SpanId {
    pub(crate) fn encode(&self) -> IdBuf {
        let mut b = IdBuf::new();
        b.push_digits(&self.digits());
        b
    }

    /// Its 16 hex digits, at their fixed length (writers copy them without a length).
    #[inline]
    pub(crate) fn digits(&self) -> [u8; 16] {
        hex::encode_u64(self.0)
    }
}

impl FromStr for SpanId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        parse_hex::<8>("span id", "", s).map(|b| Self(u64::from_be_bytes(b)))
    }
}
string_serde!(SpanId, "a 16-hex-digit span id");

macro_rules! prefixed_12 {
    ($(#[$doc:meta])* $t:ident, $prefix:literal, $kind:literal, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $t(pub [u8; 12]);

        impl $t {
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(random_12())
            }
        }

        impl $t {
            pub(crate) fn encode(&self) -> IdBuf {
                let mut b = IdBuf::new();
                b.push_str($prefix);
                b.push_digits(&self.digits());
                b
            }

            /// Its 24 hex digits without the prefix, at their fixed length (writers copy
            /// them without a length, the prefix with the key before it).
            #[inline]
            pub(crate) fn digits(&self) -> [u8; 24] {
                hex::encode12(&self.0)
            }
        }

        impl FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_hex::<12>($kind, $prefix, s).map(Self)
            }
        }
        string_serde!($t, $expecting);
    };
}

prefixed_12!(
    /// `run_` followed by 24 hex digits. Also the format of operation ids.
    RunId,
    "run_",
    "run id",
    "a run id (`run_` + 24 hex digits)"
);
impl RunId {
    /// The span id that stands for the run itself in W3C trace context and OpenTelemetry:
    /// derived from the run id (FNV-1a 64 of its 12 bytes, never zero), so every process
    /// that knows the run computes the same id without coordination. A carrier's
    /// `traceparent` names it, and exported spans whose `parentSpanId` is null hang under
    /// it.
    ///
    /// ```
    /// use crux_runtime::ids::RunId;
    /// let run: RunId = "run_0123456789abcdef01234567".parse().unwrap();
    /// assert_eq!(run.root_span_id(), run.root_span_id());
    /// assert_ne!(run.root_span_id().0, 0);
    /// ```
    pub fn root_span_id(&self) -> SpanId {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.0 {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        SpanId(if h == 0 { 1 } else { h })
    }
}

prefixed_12!(
    /// `seg_` followed by 24 hex digits: one physical invocation's slice of a run.
    SegmentId,
    "seg_",
    "segment id",
    "a segment id (`seg_` + 24 hex digits)"
);

macro_rules! prefixed_8 {
    ($(#[$doc:meta])* $t:ident, $prefix:literal, $kind:literal, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $t(pub u64);

        impl $t {
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(nonzero_u64())
            }
        }

        impl $t {
            pub(crate) fn encode(&self) -> IdBuf {
                let mut b = IdBuf::new();
                b.push_str($prefix);
                b.push_digits(&self.digits());
                b
            }

            /// Its 16 hex digits without the prefix, at their fixed length (writers copy
            /// them without a length, the prefix with the key before it).
            #[inline]
            pub(crate) fn digits(&self) -> [u8; 16] {
                hex::encode_u64(self.0)
            }
        }

        impl FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_hex::<8>($kind, $prefix, s).map(|b| Self(u64::from_be_bytes(b)))
            }
        }
        string_serde!($t, $expecting);
    };
}

prefixed_8!(
    /// `event_` followed by 16 hex digits: one span event.
    EventId,
    "event_",
    "event id",
    "an event id (`event_` + 16 hex digits)"
);
prefixed_8!(
    /// `edge_` followed by 16 hex digits: one edge record.
    EdgeId,
    "edge_",
    "edge id",
    "an edge id (`edge_` + 16 hex digits)"
);
prefixed_8!(
    /// `artifact_` followed by 16 hex digits: one artifact record.
    ArtifactId,
    "artifact_",
    "artifact id",
    "an artifact id (`artifact_` + 16 hex digits)"
);

/// `rec_<16hex>_<base36 counter>`: a record's idempotency key.
///
/// The random part is fixed per delivery pipeline and the counter counts records in it,
/// so ids are unique and cheap to make (the delivery worker assigns them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId {
    /// The random part.
    pub random: u64,
    /// The counter part.
    pub counter: u64,
}

impl RecordId {
    /// The longest text: `rec_`, 16 hex digits, `_` and 13 base-36 digits (`u64::MAX`).
    pub(crate) const MAX_TEXT: usize = 34;

    pub(crate) fn encode(&self) -> IdBuf {
        let (text, len) = self.text();
        let mut out = IdBuf::new();
        out.push_digits(&text[..len]);
        out
    }

    /// Its wire text, left-aligned in a fixed array, and its length: a writer copies the
    /// whole array (a fixed-size copy, no call to `memcpy`) and keeps `len` bytes of it.
    pub(crate) fn text(&self) -> ([u8; Self::MAX_TEXT], usize) {
        self.text_with(self.random_digits())
    }

    /// The 16 hex digits of its random part: the same for every record of a pipeline, so a
    /// writer may keep them ([`text_with`](Self::text_with)).
    #[inline]
    pub(crate) fn random_digits(&self) -> [u8; 16] {
        hex::encode_u64(self.random)
    }

    /// [`text`](Self::text), given its random part's digits.
    #[inline]
    pub(crate) fn text_with(&self, random_digits: [u8; 16]) -> ([u8; Self::MAX_TEXT], usize) {
        const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut b = [0u8; Self::MAX_TEXT];
        b[..4].copy_from_slice(b"rec_");
        b[4..20].copy_from_slice(&random_digits);
        b[20] = b'_';
        // The counter's digits counted first, so they are written left-aligned, last first.
        let mut len = 22;
        let mut rest = self.counter / 36;
        while rest > 0 {
            len += 1;
            rest /= 36;
        }
        let mut n = self.counter;
        for at in (21..len).rev() {
            b[at] = BASE36[(n % 36) as usize];
            n /= 36;
        }
        (b, len)
    }
}

impl FromStr for RecordId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        const KIND: &str = "record id";
        let err = |reason| IdError { kind: KIND, reason };
        let rest = s
            .strip_prefix("rec_")
            .ok_or(err(IdErrorReason::MissingPrefix("rec_")))?;
        let (hex, counter) = rest.split_once('_').ok_or(err(IdErrorReason::Length {
            expected: 16,
            found: rest.len(),
        }))?;
        let random = parse_hex::<8>(KIND, "", hex).map(u64::from_be_bytes)?;
        if counter.is_empty() || counter.len() > 13 {
            return Err(err(IdErrorReason::NotHex));
        }
        let counter = u64::from_str_radix(counter, 36).map_err(|_| err(IdErrorReason::NotHex))?;
        Ok(Self { random, counter })
    }
}
string_serde!(RecordId, "a record id (`rec_<16hex>_<base36>`)");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_are_lowercase_hex() {
        for _ in 0..1000 {
            let t = TraceId::generate();
            let s = t.to_string();
            assert_eq!(s.len(), 32);
            assert!(
                s.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            );
            assert_eq!(s.parse::<TraceId>().unwrap(), t);
            let sp = SpanId::generate();
            assert_eq!(sp.to_string().len(), 16);
            assert_eq!(sp.to_string().parse::<SpanId>().unwrap(), sp);
            let r = RunId::generate();
            assert!(r.to_string().starts_with("run_"));
            assert_eq!(r.to_string().parse::<RunId>().unwrap(), r);
            let g = SegmentId::generate();
            assert_eq!(g.to_string().parse::<SegmentId>().unwrap(), g);
            let e = EventId::generate();
            assert_eq!(e.to_string().parse::<EventId>().unwrap(), e);
        }
    }

    #[test]
    fn ids_are_distinct_across_threads() {
        let a: Vec<u64> = std::thread::spawn(|| (0..64).map(|_| random_u64()).collect())
            .join()
            .unwrap();
        let b: Vec<u64> = (0..64).map(|_| random_u64()).collect();
        assert_ne!(a, b);
        let mut all: Vec<u64> = a.into_iter().chain(b).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 128);
    }

    #[test]
    fn strict_parsing_names_the_defect() {
        let r = |s: &str| s.parse::<RunId>().unwrap_err().reason;
        assert_eq!(
            r("seg_0123456789abcdef01234567"),
            IdErrorReason::MissingPrefix("run_")
        );
        assert!(matches!(
            r("run_0123"),
            IdErrorReason::Length { expected: 24, .. }
        ));
        assert_eq!(r("run_0123456789ABCDEF01234567"), IdErrorReason::NotHex);
        assert_eq!(r("run_000000000000000000000000"), IdErrorReason::AllZero);
        assert_eq!(
            "0000000000000000".parse::<SpanId>().unwrap_err().reason,
            IdErrorReason::AllZero
        );
        let err = "zz".parse::<TraceId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid trace id: expected 32 hex digits, found 2 characters"
        );
    }

    #[test]
    fn record_ids_use_base36_counters() {
        let id = RecordId {
            random: 0xab,
            counter: 36 * 36 + 35,
        };
        assert_eq!(id.to_string(), "rec_00000000000000ab_10z");
        assert_eq!(id.to_string().parse::<RecordId>().unwrap(), id);
        assert!("rec_00000000000000ab_".parse::<RecordId>().is_err());
    }

    #[test]
    fn record_id_counters_at_every_digit_count_are_written_in_full() {
        let naive = |mut n: u64| {
            let mut digits = Vec::new();
            loop {
                digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
                n /= 36;
                if n == 0 {
                    break;
                }
            }
            digits.reverse();
            String::from_utf8(digits).unwrap()
        };
        let mut counters = vec![0, 1, 35, u64::MAX, u64::MAX - 1];
        let mut p = 36_u64;
        while let Some(next) = p.checked_mul(36) {
            counters.extend([p - 1, p, p + 1]);
            p = next;
        }
        counters.extend([p - 1, p, p + 1]);
        for counter in counters {
            let id = RecordId {
                random: 0x00f0_67aa_0ba9_02b7,
                counter,
            };
            let expected = format!("rec_00f067aa0ba902b7_{}", naive(counter));
            assert_eq!(id.to_string(), expected);
            let (text, len) = id.text();
            assert_eq!(&text[..len], expected.as_bytes());
            assert!(text[len..].iter().all(|&b| b == 0), "{counter}");
            assert_eq!(expected.parse::<RecordId>().unwrap(), id);
        }
    }

    #[test]
    fn serde_uses_the_wire_strings() {
        let id: SpanId = serde_json::from_str("\"00f067aa0ba902b7\"").unwrap();
        assert_eq!(id, SpanId(0x00f0_67aa_0ba9_02b7));
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"00f067aa0ba902b7\"");
        assert!(serde_json::from_str::<SpanId>("\"00F067AA0BA902B7\"").is_err());
        assert!(serde_json::from_str::<SpanId>("17").is_err());
    }
}
