//! JSON strings as serde_json writes them: `"` and `\` escaped, control bytes below 0x20
//! as `\b` `\t` `\n` `\f` `\r` or `\u00XX` (lowercase hex); `/`, DEL and non-ASCII as they
//! are. Runs of bytes that need nothing are copied whole.

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

/// The position of the first quote, backslash or control byte in `bytes`, eight bytes a
/// step (the zero-byte test on each condition; a borrow can flag a byte only above a true
/// hit, so the lowest flag is the answer). The same scan as the envelope reader's: records'
/// strings are mostly names and ids with nothing to escape, and a byte-by-byte search was
/// most of the time spent writing them.
fn special_at(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |chunk: &[u8]| {
        u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ])
    };
    let hits = |word: u64| {
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        // A byte below 0x20 sets its high bit in `word - 0x20..` (`!word`: not above 0x7f).
        zero(word ^ (ONES * u64::from(b'"')))
            | zero(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
    };
    if bytes.len() < 8 {
        return bytes
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
    }
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut words {
        let h = hits(word(chunk));
        if h != 0 {
            return Some(at + (h.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    if words.remainder().is_empty() {
        return None;
    }
    // The last eight bytes, overlapping the words already read: those are clean, so they
    // are neither hits nor flagged (a false flag sits only above a true hit).
    let last = bytes.len() - 8;
    let h = hits(word(&bytes[last..]));
    (h != 0).then(|| last + (h.trailing_zeros() / 8) as usize)
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
    fn special_at_finds_the_first_special_byte_at_every_length_and_position() {
        let naive = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        };
        // Lengths below, at and between multiples of eight: the short scan, whole words,
        // and the overlapping last word.
        let base = b"plan research: step 12 of 1";
        for len in 0..=base.len() {
            assert_eq!(special_at(&base[..len]), None);
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = base[..len].to_vec();
                    bytes[at] = b;
                    assert_eq!(special_at(&bytes), naive(&bytes), "{bytes:?}");
                    for (i, c) in [b'"', 0, b'\\', 0x1f].into_iter().enumerate() {
                        if at + 1 + i < len {
                            bytes[at + 1 + i] = c;
                        }
                    }
                    assert_eq!(special_at(&bytes), naive(&bytes), "{bytes:?}");
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
