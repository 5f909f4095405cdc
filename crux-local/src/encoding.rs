//! Convex's two value formats on the HTTP API, both ways.
//!
//! Inside a deployment, values are JSON: Rust integers are JSON integers, floats JSON
//! numbers with a fraction or exponent, and [`Bytes`](crate::Bytes) the object
//! `{"$bytes": "<base64>"}`. On the wire:
//!
//! - `convex_encoded_json` (alias `convex_json`): an int64 is `{"$integer": base64 of its
//!   8 little-endian bytes}`, bytes are `{"$bytes": base64}`, and NaN, ±∞ and -0 are
//!   `{"$float": base64 of the 8 little-endian bytes}`. Every Rust integer a handler
//!   returns travels as an int64 (`bigint` in TypeScript); every float as a float64
//!   (`number`).
//! - `json`: plain JSON. Integers are written as JSON numbers (exact in any JSON parser
//!   that keeps 64-bit integers; Convex itself writes an int64 as a string here), bytes as
//!   their base64 string.
//!
//! JSON has no NaN or infinity, so such a `$float` argument is refused with an
//! `ArgumentValidationError` naming its path; -0 arrives as -0.0.

use serde_json::{Map, Number, Value};

use crate::value::{BYTES_KEY, base64_decode, base64_encode};

/// The key of an encoded int64.
pub const INTEGER_KEY: &str = "$integer";
/// The key of an encoded special float.
pub const FLOAT_KEY: &str = "$float";

/// A value format of Convex's HTTP API (the request's `format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `"json"`: plain JSON (the default of `/api/run/..` and of requests without one).
    Json,
    /// `"convex_encoded_json"` (or `"convex_json"`): Convex's lossless encoding, what the
    /// npm and Python clients send.
    ConvexEncodedJson,
}

impl Format {
    /// The format a request names; `None` for a name Convex does not know.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "json" => Some(Format::Json),
            "convex_encoded_json" | "convex_json" => Some(Format::ConvexEncodedJson),
            _ => None,
        }
    }
}

/// Why an argument could not be decoded: the path to it and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ArgumentValidationError: {reason}. Path: {path}")]
pub struct DecodeError {
    /// Where in the arguments, as `.field[0].other`.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

/// Why a result could not be encoded in the requested format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ReturnsValidationError: {reason}. Path: {path}")]
pub struct EncodeError {
    /// Where in the value.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

/// Decodes a value received in `format` into the deployment's JSON.
pub fn decode(value: Value, format: Format) -> Result<Value, DecodeError> {
    match format {
        Format::Json => Ok(value),
        Format::ConvexEncodedJson => decode_at(value, &mut String::new()),
    }
}

/// Encodes a value of the deployment for a reply in `format`.
pub fn encode(value: Value, format: Format) -> Result<Value, EncodeError> {
    encode_at(value, format, &mut String::new())
}

fn single_key<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    (map.len() == 1).then(|| map.get(key)).flatten()
}

fn decode_at(value: Value, path: &mut String) -> Result<Value, DecodeError> {
    let bad = |path: &String, reason: String| DecodeError {
        path: if path.is_empty() {
            ".".into()
        } else {
            path.clone()
        },
        reason,
    };
    match value {
        Value::Object(map) => {
            if let Some(v) = single_key(&map, INTEGER_KEY) {
                let bytes = v.as_str().and_then(base64_decode);
                let Some(Ok(bytes)) = bytes.map(<[u8; 8]>::try_from) else {
                    return Err(bad(path, "`$integer` is not the base64 of 8 bytes".into()));
                };
                return Ok(Value::Number(i64::from_le_bytes(bytes).into()));
            }
            if let Some(v) = single_key(&map, FLOAT_KEY) {
                let bytes = v.as_str().and_then(base64_decode);
                let Some(Ok(bytes)) = bytes.map(<[u8; 8]>::try_from) else {
                    return Err(bad(path, "`$float` is not the base64 of 8 bytes".into()));
                };
                let float = f64::from_le_bytes(bytes);
                return Number::from_f64(float).map(Value::Number).ok_or_else(|| {
                    bad(
                        path,
                        format!("{float} cannot be represented in this deployment's JSON"),
                    )
                });
            }
            if let Some(v) = single_key(&map, BYTES_KEY) {
                if v.as_str().and_then(base64_decode).is_none() {
                    return Err(bad(path, "`$bytes` is not standard base64".into()));
                }
                return Ok(Value::Object(map));
            }
            let mut out = Map::with_capacity(map.len());
            for (key, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(&key);
                let v = decode_at(v, path)?;
                path.truncate(len);
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.into_iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(decode_at(v, path)?);
                path.truncate(len);
            }
            Ok(Value::Array(out))
        }
        other => Ok(other),
    }
}

fn encode_at(value: Value, format: Format, path: &mut String) -> Result<Value, EncodeError> {
    match value {
        Value::Number(n) => {
            if format == Format::Json {
                return Ok(Value::Number(n));
            }
            if let Some(i) = n.as_i64() {
                return Ok(tagged(INTEGER_KEY, &i.to_le_bytes()));
            }
            if n.is_u64() {
                return Err(EncodeError {
                    path: if path.is_empty() {
                        ".".into()
                    } else {
                        path.clone()
                    },
                    reason: format!("{n} does not fit in a Convex int64"),
                });
            }
            match n.as_f64() {
                Some(f) if f == 0.0 && f.is_sign_negative() => {
                    Ok(tagged(FLOAT_KEY, &f.to_le_bytes()))
                }
                _ => Ok(Value::Number(n)),
            }
        }
        Value::Object(map) => {
            if let Some(Value::String(text)) = single_key(&map, BYTES_KEY) {
                return Ok(match format {
                    Format::Json => Value::String(text.clone()),
                    Format::ConvexEncodedJson => Value::Object(map),
                });
            }
            let mut out = Map::with_capacity(map.len());
            for (key, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(&key);
                let v = encode_at(v, format, path)?;
                path.truncate(len);
                out.insert(key, v);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.into_iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(encode_at(v, format, path)?);
                path.truncate(len);
            }
            Ok(Value::Array(out))
        }
        other => Ok(other),
    }
}

fn tagged(key: &str, bytes: &[u8]) -> Value {
    let mut map = Map::with_capacity(1);
    map.insert(key.to_owned(), Value::String(base64_encode(bytes)));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn int(i: i64) -> Value {
        json!({ "$integer": base64_encode(&i.to_le_bytes()) })
    }

    #[test]
    fn integers_round_trip_at_the_extremes() {
        for i in [0, 1, -1, 42, i64::MAX, i64::MIN, 1 << 53, (1 << 53) + 1] {
            let decoded = decode(int(i), Format::ConvexEncodedJson).unwrap();
            assert_eq!(decoded, json!(i));
            assert_eq!(encode(decoded, Format::ConvexEncodedJson).unwrap(), int(i));
        }
        // What the npm client sends for 1n: base64 of 01 00 00 00 00 00 00 00.
        assert_eq!(
            decode(
                json!({"$integer": "AQAAAAAAAAA="}),
                Format::ConvexEncodedJson
            )
            .unwrap(),
            json!(1)
        );
    }

    #[test]
    fn floats_stay_numbers_and_negative_zero_is_tagged() {
        let v = encode(json!({"x": 1.5, "y": 2.0}), Format::ConvexEncodedJson).unwrap();
        assert_eq!(v, json!({"x": 1.5, "y": 2.0}));
        let minus_zero = encode(json!(-0.0), Format::ConvexEncodedJson).unwrap();
        let tag = json!({"$float": base64_encode(&(-0.0f64).to_le_bytes())});
        assert_eq!(minus_zero, tag);
        let back = decode(tag, Format::ConvexEncodedJson).unwrap();
        assert!(back.as_f64().unwrap().is_sign_negative());
    }

    #[test]
    fn special_floats_are_refused_with_their_path() {
        let nan = json!({"a": [1, {"$float": base64_encode(&f64::NAN.to_le_bytes())}]});
        let err = decode(nan, Format::ConvexEncodedJson).unwrap_err();
        assert_eq!(err.path, ".a[1]");
        assert!(
            err.to_string().starts_with("ArgumentValidationError: NaN"),
            "{err}"
        );
    }

    #[test]
    fn bytes_pass_through_and_become_base64_text_in_json() {
        let bytes = json!({"$bytes": "AP8H"});
        let decoded = decode(json!({"b": bytes.clone()}), Format::ConvexEncodedJson).unwrap();
        assert_eq!(decoded, json!({"b": bytes.clone()}));
        assert_eq!(
            encode(decoded.clone(), Format::ConvexEncodedJson).unwrap(),
            json!({"b": bytes})
        );
        assert_eq!(encode(decoded, Format::Json).unwrap(), json!({"b": "AP8H"}));
        let err = decode(json!({"$bytes": "***"}), Format::ConvexEncodedJson).unwrap_err();
        assert!(err.reason.contains("base64"));
    }

    #[test]
    fn malformed_tags_are_refused() {
        for bad in [
            json!({"$integer": "AQ=="}),
            json!({"$integer": 5}),
            json!({"$float": "x"}),
        ] {
            assert!(
                decode(bad.clone(), Format::ConvexEncodedJson).is_err(),
                "{bad}"
            );
        }
        // Plain JSON is taken as written.
        let plain = json!({"$integer": 5});
        assert_eq!(decode(plain.clone(), Format::Json).unwrap(), plain);
    }

    #[test]
    fn json_format_keeps_numbers_and_u64_past_int64_is_an_error() {
        assert_eq!(encode(json!(7), Format::Json).unwrap(), json!(7));
        let err = encode(json!({"n": u64::MAX}), Format::ConvexEncodedJson).unwrap_err();
        assert_eq!(err.path, ".n");
        assert_eq!(
            Format::parse("convex_json"),
            Some(Format::ConvexEncodedJson)
        );
        assert_eq!(Format::parse("yaml"), None);
    }
}
