//! JSON strings as serde_json writes them: `"` and `\` escaped, control bytes below 0x20
//! as `\b` `\t` `\n` `\f` `\r` or `\u00XX` (lowercase hex); `/`, DEL and non-ASCII as they
//! are. Runs of bytes that need nothing are copied whole.

use crate::json_text::{push_first, special_at, specials};

/// `s` as a JSON string, quotes included.
#[inline]
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    if !short::<false>(out, s.as_bytes()) {
        any(out, s.as_bytes());
    }
}

/// `s` as a JSON string and the `:` after it: an object's key.
#[inline]
pub(super) fn key(out: &mut Vec<u8>, s: &str) {
    if !short::<true>(out, s.as_bytes()) {
        any(out, s.as_bytes());
        out.push(b':');
    }
}

/// The longest text [`short`] writes.
const SHORT: usize = 16;

/// A text of 4 to 16 bytes with nothing to escape (most keys and names of a record),
/// quoted (and followed by `:` with `COLON`): read as two words that overlap, checked
/// together, and placed in a fixed array that is appended whole (copies of known size: no
/// call to `memcpy`) and cut back to the text. False (nothing written) for any other text.
#[inline(always)]
fn short<const COLON: bool>(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let n = bytes.len();
    let mut buf = [0u8; SHORT + 3];
    if (8..=SHORT).contains(&n) {
        let first: [u8; 8] = bytes[..8].try_into().unwrap_or_default();
        let last: [u8; 8] = bytes[n - 8..].try_into().unwrap_or_default();
        if specials(u64::from_le_bytes(first)) | specials(u64::from_le_bytes(last)) != 0 {
            return false;
        }
        buf[1..9].copy_from_slice(&first);
        buf[n - 7..n + 1].copy_from_slice(&last);
    } else if (4..8).contains(&n) {
        let first: [u8; 4] = bytes[..4].try_into().unwrap_or_default();
        let last: [u8; 4] = bytes[n - 4..].try_into().unwrap_or_default();
        let word = u64::from(u32::from_le_bytes(first)) | u64::from(u32::from_le_bytes(last)) << 32;
        if specials(word) != 0 {
            return false;
        }
        buf[1..5].copy_from_slice(&first);
        buf[n - 3..n + 1].copy_from_slice(&last);
    } else {
        return false;
    }
    buf[0] = b'"';
    buf[n + 1] = b'"';
    buf[n + 2] = b':';
    push_first(out, &buf, n + 2 + usize::from(COLON));
    true
}

/// The longest text [`medium`] writes.
const MEDIUM: usize = 48;

/// A text of 17 to 48 bytes with nothing to escape (primitives, event names), quoted, as
/// [`short`] writes shorter ones: its whole words, then the last eight bytes overlapping
/// them, each checked and placed in a fixed array appended whole and cut back.
fn medium(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let n = bytes.len();
    if !(SHORT + 1..=MEDIUM).contains(&n) {
        return false;
    }
    let mut buf = [0u8; MEDIUM + 2];
    let mut hits = 0;
    for (i, word) in bytes.chunks_exact(8).enumerate() {
        hits |= specials(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        buf[1 + 8 * i..9 + 8 * i].copy_from_slice(word);
    }
    let last: [u8; 8] = bytes[n - 8..].try_into().unwrap_or_default();
    hits |= specials(u64::from_le_bytes(last));
    if hits != 0 {
        return false;
    }
    buf[0] = b'"';
    buf[n - 7..n + 1].copy_from_slice(&last);
    buf[n + 1] = b'"';
    push_first(out, &buf, n + 2);
    true
}

/// Any text: the first byte to escape found a word at a time, the runs between escapes
/// copied whole.
fn any(out: &mut Vec<u8>, bytes: &[u8]) {
    if medium(out, bytes) {
        return;
    }
    let Some(first) = special_at(bytes) else {
        // Most strings (names, keys, ids): one copy.
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    };
    out.reserve(bytes.len() + 8);
    out.push(b'"');
    let mut at = first;
    let mut from = 0;
    loop {
        out.extend_from_slice(&bytes[from..at]);
        escape(out, bytes[at]);
        from = at + 1;
        match special_at(&bytes[from..]) {
            Some(next) => at = from + next,
            None => break,
        }
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
}

/// The escape of one special byte (a quote, a backslash or a control byte).
fn escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    #[test]
    fn every_byte_in_every_position_is_written_as_serde_writes_it() {
        let base = "plan research: step 12 of 14";
        for c in (0..=0x7f_u8)
            .map(char::from)
            .chain(['é', '€', '😀', '\u{7f}'])
        {
            for at in 0..=base.len() {
                let mut s = base.to_owned();
                s.insert(at, c);
                // A second special right after: the scan resumes past the first.
                let mut twice = s.clone();
                twice.insert(at + c.len_utf8(), '\u{1}');
                for s in [s, twice] {
                    let mut out = Vec::new();
                    string(&mut out, &s);
                    assert_eq!(out, serde(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn texts_of_every_short_length_are_written_as_serde_writes_them() {
        // 0 to 52 bytes: the byte path, both word pairs of `short`, `medium`'s words and
        // past them; every byte
        // (and multi-byte characters) in every position, where the two words overlap too;
        // as a value and as a key (`:` after it).
        let check = |s: &str| {
            let mut out = b"kept".to_vec();
            string(&mut out, s);
            assert_eq!(&out[..4], b"kept");
            assert_eq!(out[4..], serde(s)[..], "{s:?}");
            let mut out = b"kept".to_vec();
            key(&mut out, s);
            let mut expected = b"kept".to_vec();
            expected.extend(serde(s));
            expected.push(b':');
            assert_eq!(out, expected, "{s:?}");
        };
        let base = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP";
        for len in 0..=base.len() {
            let text = &base[..len];
            check(text);
            for c in (0..=0x7f_u8).map(char::from).chain(['é', '€', '😀']) {
                for at in 0..len {
                    let mut s: String = text.chars().take(at).collect();
                    s.push(c);
                    s.extend(text.chars().skip(at + 1));
                    check(&s);
                }
            }
        }
    }

    #[test]
    fn empty_and_all_special_strings() {
        let all: String = (0..0x20_u8).map(char::from).chain(['"', '\\']).collect();
        for s in ["", "\"", "\\", &all, &all.repeat(9)] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde(s), "{s:?}");
        }
    }
}
