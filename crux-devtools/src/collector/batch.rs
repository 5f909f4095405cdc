//! An ingest request's body, `{schemaVersion, records, sourceHealth?}`, read in one pass:
//! each record is borrowed as the text it arrived as (read once more, on its own, by
//! [`Incoming::parse`](super::Incoming::parse)), not parsed into a map first. A repeated
//! key counts as its last occurrence, as in a map.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::json::{ArrayOrNone, KeyIn};

/// A batch's members, as received.
#[derive(Debug, Default)]
pub(super) struct Batch<'a> {
    /// `schemaVersion`.
    pub(super) schema_version: Option<&'a RawValue>,
    /// `records`, when it is an array.
    pub(super) records: Option<Vec<&'a RawValue>>,
    /// `sourceHealth`.
    pub(super) source_health: Option<&'a RawValue>,
}

/// Reads a body; a data error (`is_data`) when it is JSON but not an object.
pub(super) fn parse(body: &[u8]) -> Result<Batch<'_>, serde_json::Error> {
    // The whole body is checked as UTF-8 first: members skipped below (`IgnoredAny`) are
    // not, and a body with a bad byte anywhere is not JSON.
    let text = std::str::from_utf8(body).map_err(|_| {
        serde_json::from_slice::<&RawValue>(body)
            .err()
            .unwrap_or_else(|| de::Error::custom("the body is not UTF-8"))
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let batch = de.deserialize_map(BatchVisitor)?;
    de.end()?;
    Ok(batch)
}

/// The members read, by position (`KeyIn`).
fn member(key: &str) -> Option<usize> {
    ["schemaVersion", "records", "sourceHealth"]
        .iter()
        .position(|k| *k == key)
}

struct BatchVisitor;

impl<'de> Visitor<'de> for BatchVisitor {
    type Value = Batch<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Batch<'de>, A::Error> {
        let mut batch = Batch::default();
        while let Some(key) = map.next_key_seed(KeyIn(member))? {
            // The last occurrence wins, as in a map.
            match key {
                Some(0) => batch.schema_version = Some(map.next_value()?),
                Some(1) => batch.records = map.next_value::<ArrayOrNone<&'de RawValue>>()?.0,
                Some(_) => batch.source_health = Some(map.next_value()?),
                None => map.next_value::<IgnoredAny>().map(|_| ())?,
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad byte in a member nobody reads (or nested in one) is malformed JSON still.
    #[test]
    fn a_body_with_a_byte_that_is_not_utf8_anywhere_is_a_syntax_error() {
        for body in [
            &b"{\"schemaVersion\":5,\"records\":[],\"x\":\"\xff\"}"[..],
            b"{\"x\":{\"k\":[\"\xc3\"]},\"schemaVersion\":5,\"records\":[]}",
            b"{\"records\":{\"a\":\"\xff\"}}",
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.is_syntax(), "{err}");
        }
    }

    #[test]
    fn members_are_read_last_one_winning() {
        let body = br#"{"records":[1],"x":{"y":[2]},"schemaVersion":5,"records":[{"a":1}, "b" ],"sourceHealth":{"s":1}}"#;
        let b = parse(body).unwrap();
        assert_eq!(b.schema_version.unwrap().get(), "5");
        let records: Vec<&str> = b.records.unwrap().iter().map(|r| r.get()).collect();
        assert_eq!(records, [r#"{"a":1}"#, r#""b""#]);
        assert_eq!(b.source_health.unwrap().get(), r#"{"s":1}"#);
    }

    #[test]
    fn records_that_are_not_an_array_are_none() {
        for body in [
            r#"{"records":{"a":[1]}}"#,
            r#"{"records":"x"}"#,
            r#"{"records":null}"#,
            "{}",
        ] {
            let b = parse(body.as_bytes()).unwrap();
            assert!(b.records.is_none(), "{body}");
        }
    }

    #[test]
    fn a_body_not_an_object_is_a_data_error_and_bad_json_a_syntax_error() {
        for body in ["[]", "5", r#""x""#] {
            assert!(parse(body.as_bytes()).unwrap_err().is_data(), "{body}");
        }
        // A `records` that is not an array is checked as a `Value` would be.
        for body in [
            "{",
            r#"{"records":[1,]}"#,
            r#"{"a":1} x"#,
            "",
            r#"{"records":{"a":1e999}}"#,
        ] {
            assert!(!parse(body.as_bytes()).unwrap_err().is_data(), "{body}");
        }
    }
}
