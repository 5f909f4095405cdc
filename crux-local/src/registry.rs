//! The function registry's map: Convex paths to their entries, hashed with [`PathHasher`].
//!
//! Every call looks its path up once (a served request with two hops, three times), and
//! `std`'s default SipHash-1-3 spent about 700 instructions a request on it. SipHash is
//! keyed to resist flooding: an attacker who can choose many *inserted* keys could make
//! them collide. Here only the program inserts (its registered functions, fixed at
//! build time); a request only looks a path up, and a lookup of any text probes at most
//! the entries whose hashes collide with it, which are a subset of the registered
//! functions. So an unkeyed hash is as safe, and much cheaper.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::dispatch::Entry;

/// The registry: each function's entry under its Convex path (`dir/file:export`).
pub(crate) type Registry = HashMap<&'static str, Entry, BuildHasherDefault<PathHasher>>;

/// A multiply-rotate hash (FxHash's step) eight bytes at a time: a path of 20 bytes
/// is three steps, and `str`'s end marker a fourth.
#[derive(Default, Clone, Copy)]
pub(crate) struct PathHasher {
    hash: u64,
}

/// FxHash's constant: odd, with its bits spread, so the product mixes every input bit
/// into the high bits.
const K: u64 = 0xf135_7aea_2e62_a9c5;

impl PathHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for PathHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.add(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        // The last bytes, then a 0x80 marker, then zeros: `a` and `a\0` fill different
        // words (zero padding alone would make them one).
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            last[rest.len()] = 0x80;
            self.add(u64::from_le_bytes(last));
        }
    }

    /// The `0xff` `str`'s hash ends with, so `"ab"` and `"a"` + `"b"` differ.
    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    /// The product's high bits are its best mixed; the table picks buckets by the low
    /// bits (and a tag by the top seven), so they are rotated down.
    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;

    fn hash(path: &str) -> u64 {
        BuildHasherDefault::<PathHasher>::default().hash_one(path)
    }

    #[test]
    fn paths_that_differ_anywhere_hash_apart() {
        // Paths of every length 1..=40 (a last word of each length) and paths differing
        // in one byte at every position: every hash distinct.
        let mut paths: Vec<String> = (1..=40).map(|n| "a".repeat(n)).collect();
        let base = "messages/chat:respond_to_the_user";
        for i in 0..base.len() {
            let mut bytes = base.as_bytes().to_vec();
            bytes[i] ^= 1;
            paths.push(String::from_utf8(bytes).expect("ascii"));
        }
        paths.push(base.to_owned());
        let hashes: HashSet<u64> = paths.iter().map(|p| hash(p)).collect();
        assert_eq!(hashes.len(), paths.len());
        // Zero bytes at the end still count: "a" and "a\0" are different paths.
        assert_ne!(hash("a"), hash("a\0"));
        assert_ne!(hash(""), hash("\0"));
    }

    #[test]
    fn spreads_many_paths_over_the_low_bits() {
        // 4 096 paths shaped as a big deployment's: the low 12 bits (a table's buckets)
        // take at least half the values a uniform hash would.
        let paths: Vec<String> = (0..4096)
            .map(|i| format!("module{}/file{}:export{}", i % 17, i % 101, i))
            .collect();
        let buckets: HashSet<u64> = paths.iter().map(|p| hash(p) & 0xfff).collect();
        assert!(buckets.len() > 2048, "{} buckets of 4096", buckets.len());
    }
}
