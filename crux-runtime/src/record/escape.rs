//! JSON strings as serde_json writes them: `"` and `\` escaped, control bytes below 0x20
//! as `\b` `\t` `\n` `\f` `\r` or `\u00XX` (lowercase hex); `/`, DEL and non-ASCII as they
//! are. Runs of bytes that need nothing are copied whole.

use crate::json_text::special_at;

/// `s` as a JSON string, quotes included.
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
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
    fn empty_and_all_special_strings() {
        let all: String = (0..0x20_u8).map(char::from).chain(['"', '\\']).collect();
        for s in ["", "\"", "\\", &all, &all.repeat(9)] {
            let mut out = Vec::new();
            string(&mut out, s);
            assert_eq!(out, serde(s), "{s:?}");
        }
    }
}
