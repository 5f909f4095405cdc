//! Strict, bounded readers for untrusted JSON (the `__crux` envelope and carriers).
//!
//! Every reader knows the path of the value it reads, so an error names the exact field
//! (`observability.spanStack[3]`) and the reason. Paths are only formatted on error.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::ids::IdError;

/// Most keys an untrusted object may have (known and unknown together).
pub const MAX_KEYS: usize = 32;
/// Deepest nesting accepted in an untrusted value (the envelope itself is depth 1).
pub const MAX_DEPTH: usize = 6;
/// Largest whole number a wire integer may hold (`startedAtMs`, ...): 2^53, where a
/// JavaScript number stops holding every integer exactly. One above JavaScript's
/// `Number.MAX_SAFE_INTEGER` (2^53 − 1) on purpose: 2^53 itself is still exact, and the
/// decoders have always accepted it.
pub(crate) const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// What was wrong with one field of untrusted input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// A required field is absent (or `null`).
    #[error("is required")]
    Missing,
    /// The JSON type is wrong.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the field must be.
        expected: &'static str,
        /// What it was.
        found: &'static str,
    },
    /// A string over its length cap.
    #[error("is longer than {max} characters")]
    TooLong {
        /// The cap.
        max: usize,
    },
    /// An array or object over its size cap.
    #[error("has more than {max} entries")]
    TooMany {
        /// The cap.
        max: usize,
    },
    /// A string that must not be empty is.
    #[error("must not be empty")]
    Empty,
    /// A control character inside a string.
    #[error("contains a control character")]
    ControlCharacter,
    /// Nested deeper than allowed.
    #[error("is nested deeper than {max} levels")]
    TooDeep {
        /// The cap.
        max: usize,
    },
    /// A malformed identifier.
    #[error("{0}")]
    Id(IdError),
    /// An unsupported envelope version.
    #[error("unsupported version {found} (this build understands version 1)")]
    UnsupportedVersion {
        /// The version received.
        found: String,
    },
    /// Any other format violation, described.
    #[error("{0}")]
    Invalid(&'static str),
}

/// A field path plus what was wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where: `observability.spanStack[2]`; empty for the value itself.
    pub path: String,
    /// Why.
    pub reason: Reason,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "the value {}", self.reason)
        } else {
            write!(f, "`{}` {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for FieldError {}

/// A lazily formatted JSON path.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, k) => f.write_str(k),
            Path::Key(p, k) => write!(f, "{p}.{k}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

impl Path<'_> {
    pub(crate) fn err(&self, reason: Reason) -> FieldError {
        FieldError {
            path: self.to_string(),
            reason,
        }
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Rejects values nested deeper than `max` (the value itself is level 1).
pub(crate) fn check_depth(v: &Value, max: usize, path: Path<'_>) -> Result<(), FieldError> {
    fn depth(v: &Value, level: usize, max: usize) -> bool {
        if level > max {
            return false;
        }
        match v {
            Value::Array(a) => a.iter().all(|x| depth(x, level + 1, max)),
            Value::Object(o) => o.values().all(|x| depth(x, level + 1, max)),
            _ => true,
        }
    }
    if depth(v, 1, max) {
        Ok(())
    } else {
        Err(path.err(Reason::TooDeep { max }))
    }
}

/// The wire's one text rule, used by every decoder and encoder: at most `max` characters
/// and no control characters. What is wrong with `s`, if anything.
pub(crate) fn text_violation(s: &str, max: usize) -> Option<Reason> {
    // Ids, labels and timestamps are printable ASCII: one scan, eight bytes a step.
    if s.len() <= max && printable_ascii(s.as_bytes()) {
        return None;
    }
    // The ASCII control characters are exactly U+0000..=U+001F and U+007F.
    if s.is_ascii() {
        if s.len() > max {
            return Some(Reason::TooLong { max });
        }
        if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Some(Reason::ControlCharacter);
        }
        return None;
    }
    if s.len() > max && s.chars().count() > max {
        return Some(Reason::TooLong { max });
    }
    if s.chars().any(char::is_control) {
        return Some(Reason::ControlCharacter);
    }
    None
}

/// Whether every byte is printable ASCII (0x20..=0x7e), eight bytes a step.
fn printable_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    // Some byte is below 0x20 (exact as a whole word: the classic "has less than" test),
    // or at or above 0x7f (its top bit set, or set by adding one).
    let bad =
        |w: u64| (w.wrapping_sub(ONES * 0x20) & !w & HIGH) | ((w | w.wrapping_add(ONES)) & HIGH);
    let n = bytes.len();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    // Every byte is tested whatever the length, some twice: a short text (a label, a
    // function's path) is one or two word tests, with no loop over its last bytes.
    let last = match n {
        0 => return true,
        // The first, middle and last bytes: each of the one to three, in one word.
        1..=3 => {
            let b = u32::from(bytes[0])
                | u32::from(bytes[n / 2]) << 8
                | u32::from(bytes[n - 1]) << 16
                | u32::from(bytes[0]) << 24;
            u64::from(b) | u64::from(b) << 32
        }
        // The first four and the last four, overlapping.
        4..=7 => u64::from(half(0)) | u64::from(half(n - 4)) << 32,
        _ => {
            let mut at = 0;
            while at + 8 < n {
                if bad(word(at)) != 0 {
                    return false;
                }
                at += 8;
            }
            // The last eight, overlapping the word before.
            word(n - 8)
        }
    };
    bad(last) == 0
}

/// Whether the decoders accept `s` as a text of at most `max` characters.
pub(crate) fn fits_text(s: &str, max: usize) -> bool {
    text_violation(s, max).is_none()
}

/// `s` made to fit the text rule: cut to `max` characters, control characters as spaces;
/// unchanged (no copy) when it already fits.
pub(crate) fn clamp_text(s: String, max: usize) -> String {
    if fits_text(&s, max) {
        return s;
    }
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// How many hex digits of the whole's SHA-256 an id cut by [`clamp_id`] ends with: 128
/// bits, so no two ids found in practice share one.
pub(crate) const ID_DIGEST_HEX: usize = 32;

/// An id (a `sessionId` or `userId` correlator) made to fit the text rule while distinct
/// ids stay distinct: unchanged (no copy) when it fits; otherwise (too long, or with
/// control characters) its first `max - 33` characters, control characters as spaces, then
/// `~` and the first [`ID_DIGEST_HEX`] lowercase hex digits of the SHA-256 of the whole
/// id's UTF-8. Two `issuer|subject` identities sharing their first `max` characters so
/// keep apart, and the same id gives the same text in every process. (An id that fits and
/// is spelled exactly like another's cut form would meet it: that needs the other's
/// digest, so only a deliberately built id can.)
pub(crate) fn clamp_id(s: String, max: usize) -> String {
    if fits_text(&s, max) {
        return s;
    }
    let digest = crate::sha256::sha256(s.as_bytes());
    let keep = max.saturating_sub(ID_DIGEST_HEX + 1);
    let mut out: String = s
        .chars()
        .take(keep)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out.push('~');
    crate::hex::push_lower(&mut out, &digest[..ID_DIGEST_HEX / 2]);
    out
}

/// Longest error message a record holds (the `exception.message` event attribute, the
/// `error.message` of `span:end`/`run:end`, a `failed` acknowledgement), and longest
/// argument-validation message a host returns: 8 KiB, room for a long message with its
/// context while a record stays a small fraction of the 4 MiB delivery queue.
pub const MAX_ERROR_MESSAGE: usize = 8 * 1024;
/// Longest reason of a `security.warning` (an ignored `__crux` envelope): 1 KiB. A
/// decoder's reason is one field path and one short sentence; only hostile input (a
/// megabyte-long key in the path) makes it longer.
pub const MAX_WARNING_REASON: usize = 1024;
/// Longest `preview` of an `error.raw` artifact (the error's JSON, `data` included):
/// 64 KiB. `sizeBytes` keeps the full length.
pub const MAX_ERROR_RAW: usize = 64 * 1024;

/// `s` cut to at most `max` bytes, marker included (for any `max` of 48 bytes or more;
/// below that only the marker is left): the cut falls on a char boundary and
/// is marked `… [truncated N bytes]` (N counts the bytes left out). Borrowed, with no copy,
/// when `s` already fits.
///
/// The one cap for free-form texts that reach a record or an error message; the limits
/// are [`MAX_ERROR_MESSAGE`], [`MAX_WARNING_REASON`] and [`MAX_ERROR_RAW`].
///
/// ```
/// use crux_runtime::wire::cap_text;
/// assert_eq!(cap_text("short", 64), "short");
/// let long = "é".repeat(100); // 200 bytes
/// let cut = cap_text(&long, 64);
/// assert!(cut.len() <= 64);
/// assert!(cut.ends_with(" bytes]"));
/// assert!(cut.starts_with("éé"));
/// ```
pub fn cap_text(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    // The marker is never longer than with N = s.len(), so the text gets the rest.
    let room = max.saturating_sub(truncation_marker(s.len()).len());
    let mut keep = room.min(s.len());
    while !s.is_char_boundary(keep) {
        keep -= 1;
    }
    let marker = truncation_marker(s.len() - keep);
    let mut out = String::with_capacity(keep + marker.len());
    out.push_str(&s[..keep]);
    out.push_str(&marker);
    Cow::Owned(out)
}

/// [`cap_text`] for an owned string: unchanged (no copy) when it fits.
pub fn cap_string(s: String, max: usize) -> String {
    match cap_text(&s, max) {
        Cow::Borrowed(_) => s,
        Cow::Owned(cut) => cut,
    }
}

/// `value`'s JSON capped like [`cap_text`], and the full JSON length in bytes. At most
/// `max` bytes are ever held, however large `value` is.
pub(crate) fn capped_json<T: serde::Serialize + ?Sized>(value: &T, max: usize) -> (String, usize) {
    struct Head {
        buf: Vec<u8>,
        total: usize,
        max: usize,
    }
    impl std::io::Write for Head {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.total += bytes.len();
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&bytes[..room.min(bytes.len())]);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut head = Head {
        buf: Vec::new(),
        total: 0,
        max,
    };
    if serde_json::to_writer(&mut head, value).is_err() {
        return (String::new(), 0);
    }
    let total = head.total;
    if total > max {
        let room = max.saturating_sub(truncation_marker(total).len());
        head.buf.truncate(room);
    }
    // The head is JSON (UTF-8) cut anywhere: keep its whole chars.
    let valid = match std::str::from_utf8(&head.buf) {
        Ok(s) => s.len(),
        Err(e) => e.valid_up_to(),
    };
    head.buf.truncate(valid);
    let mut text = String::from_utf8(head.buf).unwrap_or_default();
    if total > max {
        let cut = total - text.len();
        text.push_str(&truncation_marker(cut));
    }
    (text, total)
}

fn truncation_marker(cut: usize) -> String {
    format!("… [truncated {cut} bytes]")
}

/// Checks a string against the text rule ([`text_violation`]).
pub(crate) fn check_text(s: &str, max: usize, path: Path<'_>) -> Result<(), FieldError> {
    match text_violation(s, max) {
        Some(reason) => Err(path.err(reason)),
        None => Ok(()),
    }
}

/// An object being read field by field.
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) path: Path<'a>,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(v: &'a Value, path: Path<'a>) -> Result<Self, FieldError> {
        let map = v.as_object().ok_or_else(|| {
            path.err(Reason::WrongType {
                expected: "an object",
                found: type_name(v),
            })
        })?;
        if map.len() > MAX_KEYS {
            return Err(path.err(Reason::TooMany { max: MAX_KEYS }));
        }
        Ok(Self { map, path })
    }

    /// The value at `key`, treating `null` as absent (JSON's `undefined`).
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn opt_str(&self, key: &'a str, max: usize) -> Result<Option<&'a str>, FieldError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let path = Path::Key(&self.path, key);
        let s = v.as_str().ok_or_else(|| {
            path.err(Reason::WrongType {
                expected: "a string",
                found: type_name(v),
            })
        })?;
        check_text(s, max, path)?;
        Ok(Some(s))
    }

    pub(crate) fn req_str(&self, key: &'a str, max: usize) -> Result<&'a str, FieldError> {
        self.opt_str(key, max)?
            .ok_or_else(|| Path::Key(&self.path, key).err(Reason::Missing))
    }

    /// A non-empty string of at most `max` characters.
    pub(crate) fn opt_text(&self, key: &'a str, max: usize) -> Result<Option<&'a str>, FieldError> {
        match self.opt_str(key, max)? {
            Some("") => Err(Path::Key(&self.path, key).err(Reason::Empty)),
            other => Ok(other),
        }
    }

    pub(crate) fn opt_id<T: FromStr<Err = IdError>>(
        &self,
        key: &'a str,
    ) -> Result<Option<T>, FieldError> {
        match self.opt_str(key, 64)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e| Path::Key(&self.path, key).err(Reason::Id(e))),
        }
    }

    pub(crate) fn req_id<T: FromStr<Err = IdError>>(&self, key: &'a str) -> Result<T, FieldError> {
        self.opt_id(key)?
            .ok_or_else(|| Path::Key(&self.path, key).err(Reason::Missing))
    }

    pub(crate) fn opt_obj<'b>(&'b self, key: &'b str) -> Result<Option<Obj<'b>>, FieldError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => Obj::new(v, Path::Key(&self.path, key)).map(Some),
        }
    }

    pub(crate) fn opt_u64(&self, key: &'a str) -> Result<Option<u64>, FieldError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        v.as_u64()
            .filter(|n| *n <= MAX_SAFE_INTEGER)
            .map(Some)
            .ok_or_else(|| {
                Path::Key(&self.path, key).err(Reason::WrongType {
                    expected: "a non-negative integer",
                    found: type_name(v),
                })
            })
    }

    /// An array of at most `max` items, each read by `item`.
    pub(crate) fn opt_array<T>(
        &self,
        key: &'a str,
        max: usize,
        mut item: impl FnMut(&'a Value, Path<'_>) -> Result<T, FieldError>,
    ) -> Result<Option<Vec<T>>, FieldError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let path = Path::Key(&self.path, key);
        let arr = v.as_array().ok_or_else(|| {
            path.err(Reason::WrongType {
                expected: "an array",
                found: type_name(v),
            })
        })?;
        if arr.len() > max {
            return Err(path.err(Reason::TooMany { max }));
        }
        arr.iter()
            .enumerate()
            .map(|(i, x)| item(x, Path::Index(&path, i)))
            .collect::<Result<Vec<T>, _>>()
            .map(Some)
    }
}

/// Reads one id from an array item.
pub(crate) fn id_item<T: FromStr<Err = IdError>>(
    v: &Value,
    path: Path<'_>,
) -> Result<T, FieldError> {
    let s = v.as_str().ok_or_else(|| {
        path.err(Reason::WrongType {
            expected: "a string",
            found: type_name(v),
        })
    })?;
    if s.len() > 64 {
        return Err(path.err(Reason::TooLong { max: 64 }));
    }
    s.parse().map_err(|e| path.err(Reason::Id(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_ascii_is_exactly_the_bytes_0x20_to_0x7e() {
        let base = b"plan research: step 12 of 14 ~".to_vec();
        for len in 0..=base.len() {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = base[..len].to_vec();
                    bytes[at] = b;
                    let expected = bytes.iter().all(|&c| (0x20..=0x7e).contains(&c));
                    assert_eq!(printable_ascii(&bytes), expected, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn cap_text_keeps_what_fits_and_marks_the_cut() {
        assert!(matches!(cap_text("abc", 3), Cow::Borrowed("abc")));
        let s = "x".repeat(10_000);
        let cut = cap_text(&s, 1024);
        assert!(cut.len() <= 1024, "{}", cut.len());
        let kept = cut.find('…').unwrap();
        // Room for the longest marker (N <= 10 000), so one byte is spare here.
        assert_eq!(kept, 1024 - "… [truncated 10000 bytes]".len());
        assert_eq!(
            cut,
            format!("{}… [truncated {} bytes]", &s[..kept], 10_000 - kept)
        );
    }

    #[test]
    fn cap_text_cuts_on_a_char_boundary() {
        // Every offset of a 4-byte char against the cut point.
        for pad in 0..4 {
            let s = format!("{}{}", "a".repeat(pad), "😀".repeat(1000));
            for max in 48..80 {
                let cut = cap_text(&s, max);
                assert!(cut.len() <= max);
                let body = cut.split("… [truncated ").next().unwrap();
                assert!(s.starts_with(body));
                let n: usize = cut
                    .rsplit("truncated ")
                    .next()
                    .unwrap()
                    .trim_end_matches(" bytes]")
                    .parse()
                    .unwrap();
                assert_eq!(body.len() + n, s.len());
            }
        }
    }

    #[test]
    fn capped_json_holds_the_head_and_counts_the_whole() {
        let value = serde_json::json!({"message": "é".repeat(5000)});
        let full = serde_json::to_string(&value).unwrap();
        assert_eq!(capped_json(&value, 1 << 20), (full.clone(), full.len()));
        for max in [64, 65, 1000, 1001] {
            let (head, total) = capped_json(&value, max);
            assert_eq!(total, full.len());
            assert_eq!(head, cap_text(&full, max), "max {max}");
        }
    }

    #[test]
    fn cap_string_does_not_copy_what_fits() {
        let s = String::from("fits");
        let ptr = s.as_ptr();
        let kept = cap_string(s, 8);
        assert_eq!(kept.as_ptr(), ptr);
    }
}
