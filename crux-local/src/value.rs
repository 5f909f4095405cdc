//! Convex values that plain JSON cannot spell: bytes ([`Bytes`]) and the base64 both
//! Convex encodings use.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The JSON key of an encoded byte string: `{"$bytes": "<base64>"}` (Convex's
/// `convex_encoded_json`, and how [`Bytes`] crosses every boundary of a deployment).
pub const BYTES_KEY: &str = "$bytes";

/// A byte string, Convex's `v.bytes()` (`ArrayBuffer` in TypeScript).
///
/// It serializes as `{"$bytes": "<standard base64>"}`, Convex's own encoding, so it
/// survives the JSON boundary of a deployment and reaches Convex clients as bytes (a
/// `Vec<u8>` would travel as an array of numbers).
///
/// ```
/// use crux_local::Bytes;
/// let json = serde_json::to_value(Bytes(vec![0, 255, 7])).unwrap();
/// assert_eq!(json, serde_json::json!({"$bytes": "AP8H"}));
/// assert_eq!(serde_json::from_value::<Bytes>(json).unwrap(), Bytes(vec![0, 255, 7]));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", base64_encode(&self.0))
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(BYTES_KEY, &base64_encode(&self.0))?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes as {\"$bytes\": \"<base64>\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bytes, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::missing_field(BYTES_KEY));
                };
                if key != BYTES_KEY {
                    return Err(de::Error::unknown_field(&key, &[BYTES_KEY]));
                }
                let text: String = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("bytes have exactly one key, `$bytes`"));
                }
                base64_decode(&text)
                    .map(Bytes)
                    .ok_or_else(|| de::Error::custom("`$bytes` is not standard base64"))
            }
        }
        deserializer.deserialize_map(BytesVisitor)
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as Convex writes `$bytes`, `$integer` and
/// `$float`.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional, no whitespace); `None` if it is not.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    let text = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero (a canonical encoding).
    (acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        for len in 0..64usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64_encode(&bytes);
            assert_eq!(text.len() % 4, 0);
            assert_eq!(base64_decode(&text), Some(bytes.clone()), "{text}");
            assert_eq!(base64_decode(text.trim_end_matches('=')), Some(bytes));
        }
    }

    #[test]
    fn base64_known_values_and_rejections() {
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("Zm8="), Some(b"fo".to_vec()));
        assert_eq!(base64_decode("Zm9"), None, "non-canonical trailing bits");
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zm 8"), None);
        assert_eq!(
            base64_decode("Zm8-"),
            None,
            "url-safe alphabet is not Convex's"
        );
    }

    #[test]
    fn bytes_reject_other_shapes() {
        for bad in [
            serde_json::json!([1, 2]),
            serde_json::json!({"$bytes": "!!"}),
            serde_json::json!({"$bytes": "AA==", "x": 1}),
            serde_json::json!({"bytes": "AA=="}),
        ] {
            assert!(
                serde_json::from_value::<Bytes>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
