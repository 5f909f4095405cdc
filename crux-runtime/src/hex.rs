//! Lowercase hex digits eight at a time (SWAR: one `u64` holds eight ASCII bytes).
//!
//! Ids cross every boundary as hex text (a hop's envelope carries eleven of them), and a
//! digit-by-digit table walk was about a tenth of a hop's strict decode. Here eight digits
//! are checked and converted with a handful of word operations, branch-free.

/// Every byte of a word set to 1.
const ONES: u64 = 0x0101_0101_0101_0101;
/// Every byte's top bit.
const HIGH: u64 = ONES * 0x80;
/// The low nibble of every 16-bit lane.
const LANE_NIBBLE: u64 = 0x000f_000f_000f_000f;

/// Per byte of `x` (all below 0x80): the top bit set where the byte is `>= lo`.
///
/// Adding `0x80 - lo` sets the top bit exactly then, and never carries into the next
/// byte (a byte below 0x80 plus at most 0x80 stays below 0x100).
#[inline(always)]
fn at_least(x: u64, lo: u8) -> u64 {
    x.wrapping_add(ONES * u64::from(0x80 - lo)) & HIGH
}

/// The four bytes that eight lowercase hex digits spell (the first digit is the high
/// nibble of the first byte), and a mask that is non-zero when any of the eight is not a
/// lowercase hex digit (then the bytes mean nothing).
#[inline(always)]
pub(crate) fn decode8(digits: [u8; 8]) -> ([u8; 4], u64) {
    let x = u64::from_le_bytes(digits);
    // A byte at or above 0x80 is never a digit; it may also carry into its neighbour in
    // the range checks below, which is harmless since the whole word is refused.
    let digit = at_least(x, b'0') & !at_least(x, b'9' + 1);
    let letter = at_least(x, b'a') & !at_least(x, b'f' + 1);
    let bad = (x & HIGH) | (HIGH & !(digit | letter));
    // '0'..'9' → 0..9 by their low nibble; 'a'..'f' (0x61..0x66) → 1..6, plus 9.
    let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
    // Byte 2k+1's nibble goes under byte 2k's, in the low byte of each 16-bit lane ...
    let pairs = ((nibbles & LANE_NIBBLE) << 4) | ((nibbles >> 8) & LANE_NIBBLE);
    // ... then the four lanes' low bytes are packed together.
    let packed = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    let packed = (packed | (packed >> 16)) & 0xffff_ffff;
    ((packed as u32).to_le_bytes(), bad)
}

/// The eight lowercase hex digits of four bytes (high nibble first).
#[inline(always)]
pub(crate) fn encode4(bytes: [u8; 4]) -> [u8; 8] {
    let w = u64::from(u32::from_le_bytes(bytes));
    // Byte k into the low byte of 16-bit lane k.
    let spread = (w | (w << 16)) & 0x0000_ffff_0000_ffff;
    let spread = (spread | (spread << 8)) & 0x00ff_00ff_00ff_00ff;
    // Its high nibble in byte 2k, its low nibble in byte 2k+1.
    let nibbles = ((spread >> 4) & LANE_NIBBLE) | ((spread & LANE_NIBBLE) << 8);
    // 1 in each byte whose nibble is 10 or more (adding 6 reaches 16).
    let letter = ((nibbles + ONES * 6) & (ONES * 0x10)) >> 4;
    (nibbles + ONES * u64::from(b'0') + letter * u64::from(b'a' - b'0' - 10)).to_le_bytes()
}

/// The 16 lowercase hex digits of `n` (most significant first): a span id, an 8-byte id.
#[inline(always)]
pub(crate) fn encode_u64(n: u64) -> [u8; 16] {
    let [a, b, c, d, e, f, g, h] = n.to_be_bytes();
    let mut out = [0; 16];
    out[..8].copy_from_slice(&encode4([a, b, c, d]));
    out[8..].copy_from_slice(&encode4([e, f, g, h]));
    out
}

/// The 32 lowercase hex digits of `n` (most significant first): a trace id.
#[inline(always)]
pub(crate) fn encode_u128(n: u128) -> [u8; 32] {
    let mut out = [0; 32];
    out[..16].copy_from_slice(&encode_u64((n >> 64) as u64));
    out[16..].copy_from_slice(&encode_u64(n as u64));
    out
}

/// The 24 lowercase hex digits of twelve bytes (high nibble first): run and segment ids.
#[inline(always)]
pub(crate) fn encode12(b: &[u8; 12]) -> [u8; 24] {
    let mut out = [0; 24];
    out[..8].copy_from_slice(&encode4([b[0], b[1], b[2], b[3]]));
    out[8..16].copy_from_slice(&encode4([b[4], b[5], b[6], b[7]]));
    out[16..].copy_from_slice(&encode4([b[8], b[9], b[10], b[11]]));
    out
}

/// The digit a lowercase hex character stands for (`[0-9a-f]` only: no upper case, no
/// sign, so one value has one spelling).
#[inline]
fn lower_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// `N` bytes from exactly `2 N` lowercase hex digits; `None` for anything else. For the
/// short fields (a `traceparent`'s version and flags, a signature); ids use [`decode8`].
pub(crate) fn decode_lower<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = lower_digit(pair[0])? << 4 | lower_digit(pair[1])?;
    }
    Some(out)
}

/// Appends the lowercase hex digits of `bytes` (high nibble first) to `out`.
pub(crate) fn push_lower(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }

    /// The plain digit-by-digit reading `decode8` must agree with.
    fn decode_slowly(digits: [u8; 8]) -> Option<[u8; 4]> {
        let mut out = [0u8; 4];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            out[i] = (value(pair[0])? << 4) | value(pair[1])?;
        }
        Some(out)
    }

    fn check(digits: [u8; 8]) {
        let (bytes, bad) = decode8(digits);
        match decode_slowly(digits) {
            Some(expected) => {
                assert_eq!(bad, 0, "{digits:?} refused");
                assert_eq!(bytes, expected, "{digits:?}");
            }
            None => assert_ne!(bad, 0, "{digits:?} accepted"),
        }
    }

    #[test]
    fn every_byte_in_every_position_is_read_as_a_digit_or_refused() {
        let base = *b"0123abcd";
        for position in 0..8 {
            for b in 0..=255u8 {
                let mut digits = base;
                digits[position] = b;
                check(digits);
                // Next to bytes that would carry into it, or take a carry from it.
                let mut digits = [0xff; 8];
                digits[position] = b;
                check(digits);
                let mut digits = [b'f'; 8];
                digits[position] = b;
                check(digits);
            }
        }
    }

    #[test]
    fn random_words_decode_as_digit_by_digit_and_encode_back() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            // xorshift: reproducible, no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789abcdefABCDEFgxz/:@`G\x00\x7f\x80\xff";
        for _ in 0..100_000 {
            let r = next();
            let bytes = (r as u32).to_le_bytes();
            let digits = encode4(bytes);
            let expected: Vec<u8> = bytes
                .iter()
                .flat_map(|b| {
                    let hex = b"0123456789abcdef";
                    [hex[usize::from(b >> 4)], hex[usize::from(b & 0xf)]]
                })
                .collect();
            assert_eq!(digits.as_slice(), expected.as_slice());
            assert_eq!(decode8(digits), (bytes, 0));
            // Mostly digits, sometimes a byte that is not one.
            let mut mixed = [0u8; 8];
            for (i, d) in mixed.iter_mut().enumerate() {
                let pick = (r >> (8 * i)) as usize;
                *d = alphabet[pick % if r & 1 == 0 { 16 } else { alphabet.len() }];
            }
            check(mixed);
        }
    }

    #[test]
    fn whole_ids_are_written_as_their_bytes_digit_by_digit() {
        let slowly = |bytes: &[u8]| -> Vec<u8> {
            bytes
                .iter()
                .flat_map(|b| format!("{b:02x}").into_bytes())
                .collect()
        };
        // Leading and trailing zeros, every nibble value, both extremes.
        let words = [
            0,
            1,
            0x0f,
            0xf0,
            0x0123_4567_89ab_cdef,
            0xfedc_ba98_7654_3210,
            1 << 63,
            u64::MAX,
        ];
        for (i, &w) in words.iter().enumerate() {
            assert_eq!(encode_u64(w).as_slice(), slowly(&w.to_be_bytes()), "{w:x}");
            let wide = (u128::from(w) << 64) | u128::from(words[(i + 3) % words.len()]);
            assert_eq!(encode_u128(wide).as_slice(), slowly(&wide.to_be_bytes()));
            let mut twelve = [0u8; 12];
            twelve[..8].copy_from_slice(&w.to_le_bytes());
            twelve[8..].copy_from_slice(&w.to_be_bytes()[..4]);
            assert_eq!(encode12(&twelve).as_slice(), slowly(&twelve));
        }
    }

    #[test]
    fn short_fields_read_exactly_lowercase_hex_and_write_it_back() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let mut text = String::new();
        push_lower(&mut text, &bytes);
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            let pair = std::str::from_utf8(pair).unwrap();
            assert_eq!(pair, format!("{i:02x}"));
            assert_eq!(decode_lower::<1>(pair), Some([i as u8]));
        }
        for bad in ["+f", "-0", " f", "0x", "AB", "aF", "g0", "é", "0", "000"] {
            assert_eq!(decode_lower::<1>(bad), None, "{bad}");
        }
    }
}
