//! The two pieces of JSON text every hand-written reader and writer of the wire needs: the
//! scan for the bytes a JSON string cannot hold unescaped, eight bytes a step (the envelope
//! reader, the record writer's escaping), and integers in decimal as serde_json writes
//! them, two digits a step (the envelope and record writers).

/// The position of the first quote, backslash or control byte in `bytes`, eight bytes a
/// step (the zero-byte test on each condition; a borrow can flag a byte only above a true
/// hit, so the lowest flag is the answer): the bytes a JSON string cannot hold unescaped.
/// Strings on the wire are mostly names and ids with nothing to escape, and a byte-by-byte
/// search was most of the time spent reading and writing them.
pub(crate) fn special_at(bytes: &[u8]) -> Option<usize> {
    let word = |chunk: &[u8]| {
        u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ])
    };
    let hits = specials;
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

/// The high bit of every byte of `word` (eight bytes, little-endian) that is a quote, a
/// backslash or a control byte, and perhaps of bytes above such a byte (a borrow); zero
/// exactly when none of the eight is one (so a shorter text cannot be padded with zeros:
/// those are control bytes).
#[inline(always)]
pub(crate) fn specials(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    // A byte below 0x20 sets its high bit in `word - 0x20..` (`!word`: not above 0x7f).
    zero(word ^ (ONES * u64::from(b'"')))
        | zero(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
}

/// "00" to "99": two digits a step.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

/// The two decimal digits of `n` (below 100; a larger `n` is taken modulo 100).
#[inline(always)]
pub(crate) fn pair(n: u64) -> [u8; 2] {
    let at = (n % 100) as usize * 2;
    [PAIRS[at], PAIRS[at + 1]]
}

/// `n`'s decimal digits, written at the start of `buf`: the slice holding them.
pub(crate) fn digits(buf: &mut [u8; 20], n: u64) -> &[u8] {
    let len = left_aligned(buf, n);
    &buf[..len]
}

/// Writes `n`'s decimal digits at the start of `buf` and returns how many there are.
#[inline]
fn left_aligned(buf: &mut [u8; 20], mut n: u64) -> usize {
    // Counted first, so the digits are written in place from the last.
    let len = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut at = len;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        buf[..2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        buf[0] = b'0' + n as u8;
    }
    len
}

/// `n` in decimal.
#[inline]
pub(crate) fn unsigned(out: &mut Vec<u8>, n: u64) {
    // Most integers in records are one digit (sequence numbers, durations of 0 ms).
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    let mut buf = [0; 20];
    let len = left_aligned(&mut buf, n);
    push_first(out, &buf, len);
}

/// Appends the first `len` bytes of `buf`: the whole array, a copy of known size (no call
/// to `memcpy`, one capacity check), then cut back. How the record writer appends texts
/// of varying length built in fixed arrays (digits, short strings, quoted ids).
#[inline(always)]
pub(crate) fn push_first<const N: usize>(out: &mut Vec<u8>, buf: &[u8; N], len: usize) {
    debug_assert!(len <= N);
    let at = out.len();
    out.extend_from_slice(buf);
    out.truncate(at + len);
}

/// `n` in decimal, `-` first when negative (`i64::MIN` included: its magnitude as `u64`).
pub(crate) fn signed(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    unsigned(out, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_at_finds_the_first_special_byte_at_every_length_and_position() {
        let naive = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        };
        // Lengths below, at and between multiples of eight: the short scan, whole words,
        // and the overlapping last word.
        let base = b"plan research: step 12 of 14, then 15";
        for len in 0..=base.len() {
            assert_eq!(special_at(&base[..len]), None);
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = base[..len].to_vec();
                    bytes[at] = b;
                    assert_eq!(special_at(&bytes), naive(&bytes), "{bytes:?}");
                    // Specials after it (borrows from below flag bytes above).
                    for (i, c) in [b'"', 0, b'\\', 0x1f, 0x01, 0x21].into_iter().enumerate() {
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
    fn integers_at_every_length_and_both_extremes_are_written_as_serde_writes_them() {
        let mut values: Vec<i64> = vec![0, 1, -1, 9, 10, 99, 100, i64::MIN, i64::MAX];
        let mut p = 1_i64;
        while let Some(next) = p.checked_mul(10) {
            values.extend([p - 1, p, p + 1, -p, -(p - 1), -(p + 1)]);
            p = next;
        }
        for n in values {
            let mut out = Vec::new();
            signed(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap(), "{n}");
            if let Ok(u) = u64::try_from(n) {
                out.clear();
                unsigned(&mut out, u);
                assert_eq!(out, serde_json::to_vec(&u).unwrap(), "{u}");
            }
        }
        for u in [u64::MAX, u64::MAX - 1, 1 << 63, 10_000_000_000_000_000_000] {
            let mut out = Vec::new();
            unsigned(&mut out, u);
            assert_eq!(out, serde_json::to_vec(&u).unwrap(), "{u}");
        }
    }
}
