//! Integers in decimal as serde_json writes them (its `itoa`), without the formatter.

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

/// `n` in decimal.
pub(super) fn unsigned(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// `n` in decimal, `-` first when negative (`i64::MIN` included: its magnitude as `u64`).
pub(super) fn signed(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    unsigned(out, n.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

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
