//! A record as the writer stores it, read on the request's thread from the JSON text it
//! arrived as, in one pass: the text stored for it, the fields the store reads (its ids, its
//! run's facts), and the text its search index entry holds. The writer is one thread for
//! every request, so whatever can be done before it is done here, in parallel.
//!
//! The pass keeps what the store reads and checks the rest as a `serde_json::Value` parse
//! would (numbers in range, strings well formed, nesting depth) without building it: a
//! record that does not parse as a `Value` is refused alone (`invalid_record`, the rest of
//! its batch stored), and a repeated key counts as its last occurrence, as in a `Value`.

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crux_view::record::DETAIL_KEYS;

use crate::json::{Checked, KeyIn};

/// One record ready for [`Store::ingest_prepared`](super::Store::ingest_prepared).
#[derive(Clone, Debug)]
pub struct Incoming {
    pub(super) text: String,
    pub(super) fields: Fields,
    pub(super) search: Option<String>,
}

impl Incoming {
    /// A record from its value (serialized here). Fails as [`parse`](Incoming::parse)
    /// fails: a value built in memory may be nested deeper than serde_json reads (128).
    pub fn new(value: Value) -> Result<Incoming, serde_json::Error> {
        Incoming::parse(&value.to_string())
    }

    /// A record from the JSON text it was received as, stored as is so that it is not
    /// serialized again. A text spread over several lines (pretty-printed) is serialized
    /// again: a stored record is one line, as crux writes records everywhere. Fails as
    /// `serde_json::from_str::<Value>` fails (malformed, a number out of range, or nested
    /// deeper than 128).
    pub fn parse(text: &str) -> Result<Incoming, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let fields = de.deserialize_any(FieldsVisitor)?;
        de.end()?;
        let text = if text.contains(['\n', '\r']) {
            serde_json::from_str::<Value>(text)?.to_string()
        } else {
            text.to_owned()
        };
        let search = fields.searchable();
        Ok(Incoming {
            text,
            fields,
            search,
        })
    }

    /// The record's value, parsed again from its text (to compare it with a stored one).
    pub(super) fn value(&self) -> Value {
        serde_json::from_str(&self.text).expect("the text parsed once")
    }
}

/// The top-level `recordId` of a record text that [`Incoming::parse`] refused (nested too
/// deep, a number out of range), so that its disposition names it: read skipping every
/// other value (serde_json skips without a depth limit) and checking nothing else. The last
/// occurrence, as in a `Value`; `None` when there is none or it cannot be read either.
pub(super) fn record_id(text: &str) -> Option<Value> {
    fn is_record_id(key: &str) -> Option<usize> {
        (key == "recordId").then_some(0)
    }
    struct RecordId;
    impl<'de> Visitor<'de> for RecordId {
        type Value = Option<Value>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
            let mut id = None;
            while let Some(key) = map.next_key_seed(KeyIn(is_record_id))? {
                match key {
                    Some(_) => id = Some(map.next_value()?),
                    None => map.next_value::<serde::de::IgnoredAny>().map(|_| ())?,
                }
            }
            Ok(id)
        }
    }
    serde_json::Deserializer::from_str(text)
        .deserialize_map(RecordId)
        .ok()
        .flatten()
}

/// The text the full-text index holds for a stored record's JSON text (see
/// [`Incoming::parse`]); `None` when it has none or is not JSON.
pub(super) fn searchable(text: &str) -> Option<String> {
    Incoming::parse(text).ok()?.search
}

/// The top-level fields a record's storage reads, each as its last occurrence.
#[derive(Clone, Debug, Default)]
pub(super) struct Fields {
    /// Whether the record is a JSON object (the other fields are empty when not).
    pub(super) object: bool,
    slots: [Option<Value>; KEYS.len() + DETAIL_KEYS.len()],
}

/// The keys kept, by slot, then a span's identity fields
/// (`crux_view::record::DETAIL_KEYS`, slots 20 to 29).
const KEYS: [&str; 20] = [
    "schemaVersion",
    "recordId",
    "runId",
    "segmentId",
    "segmentSeq",
    "type",
    "spanId",
    "sessionId",
    "userId",
    "family",
    "primitive",
    "metrics",
    "name",
    "rootPrimitive",
    "startedAt",
    "status",
    "durationMs",
    "endedAt",
    "attributes",
    "error",
];
const DETAILS: std::ops::Range<usize> = KEYS.len()..KEYS.len() + DETAIL_KEYS.len();

/// The slot of `key`, if kept. A `match` on the text, which compiles to a comparison of
/// lengths and then of bytes, not a scan of [`KEYS`].
fn slot(key: &str) -> Option<usize> {
    Some(match key {
        "schemaVersion" => 0,
        "recordId" => 1,
        "runId" => 2,
        "segmentId" => 3,
        "segmentSeq" => 4,
        "type" => 5,
        "spanId" => 6,
        "sessionId" => 7,
        "userId" => 8,
        "family" => 9,
        "primitive" => 10,
        "metrics" => 11,
        "name" => 12,
        "rootPrimitive" => 13,
        "startedAt" => 14,
        "status" => 15,
        "durationMs" => 16,
        "endedAt" => 17,
        "attributes" => 18,
        "error" => 19,
        _ => {
            return DETAIL_KEYS
                .iter()
                .position(|k| *k == key)
                .map(|i| DETAILS.start + i);
        }
    })
}

impl Fields {
    /// The value of top-level `key` (one of [`KEYS`] or `DETAIL_KEYS`), as a `Value` of the
    /// record holds it.
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.slots[slot(key).expect("a kept key")].as_ref()
    }

    /// `key`'s value when it is a string.
    pub(super) fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The searchable texts, one per line (`crux_view::search::TextParts`); `None` when
    /// there is none.
    fn searchable(&self) -> Option<String> {
        let kind = self.str("type")?;
        let mut parts = crux_view::search::TextParts::new(kind);
        parts.name = self.str("name");
        parts.primitive = self.str("primitive");
        parts.root_primitive = self.str("rootPrimitive");
        parts.details = self.slots[DETAILS]
            .iter()
            .filter_map(|v| v.as_ref().and_then(Value::as_str))
            .collect();
        if let Some(Value::Object(attributes)) = self.get("attributes") {
            parts.attributes = attributes.values().collect();
        }
        parts.error = self
            .get("error")
            .and_then(|e| serde::Deserialize::deserialize(e).ok());
        let texts = parts.texts();
        (!texts.is_empty()).then(|| texts.join("\n"))
    }
}

/// Reads a record: the kept keys' values, every other value checked and dropped.
struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields {
            object: true,
            ..Fields::default()
        };
        while let Some(key) = map.next_key_seed(KeyIn(slot))? {
            match key {
                // The last occurrence wins, as in a `Value`.
                Some(i) => fields.slots[i] = Some(map.next_value()?),
                None => map.next_value::<Checked>().map(|_| ())?,
            }
        }
        Ok(fields)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Fields, A::Error> {
        Checked.visit_seq(seq).map(|_| Fields::default())
    }

    crate::json::scalars_read_as!(Fields, Fields::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<String> {
        let mut lines = Vec::new();
        for store in ["support_chat", "research", "continuation", "runtime_core"] {
            let path = format!(
                "{}/../tests/fixtures/stores/{store}.jsonl",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(path).unwrap();
            // The stores hold a few corrupt lines on purpose (for the viewer's tests).
            lines.extend(
                text.lines()
                    .filter(|l| serde_json::from_str::<Value>(l).is_ok())
                    .map(str::to_owned),
            );
        }
        lines
    }

    /// The one pass indexes what the viewer's typed decoder would have given the index
    /// (`record_texts` of the decoded record), for every record of the fixture stores.
    #[test]
    fn the_search_text_is_what_the_typed_record_gives() {
        let mut indexed = 0;
        for line in fixtures() {
            let value: Value = serde_json::from_str(&line).unwrap();
            let Ok(record) = crux_view::record::decode_value(0, &value) else {
                continue;
            };
            let texts = crux_view::search::record_texts(&record);
            let expected = (!texts.is_empty()).then(|| texts.join("\n"));
            let incoming = Incoming::parse(&line).unwrap();
            assert_eq!(incoming.search, expected, "{line}");
            indexed += usize::from(expected.is_some());
        }
        assert!(indexed > 50, "{indexed}");
    }

    /// Each kept field is the value a `Value` of the record holds (the last of a
    /// repeated key), and the text is stored as received.
    #[test]
    fn kept_fields_are_what_a_value_holds() {
        for line in fixtures() {
            let value: Value = serde_json::from_str(&line).unwrap();
            let incoming = Incoming::parse(&line).unwrap();
            assert_eq!(incoming.text, line);
            for key in KEYS.iter().chain(&DETAIL_KEYS) {
                assert_eq!(incoming.fields.get(key), value.get(key), "{key} in {line}");
            }
        }
        let repeated = r#"{"runId":"run_a","x":[1,{"y":2}],"runId":"run_b"}"#;
        let incoming = Incoming::parse(repeated).unwrap();
        assert_eq!(incoming.fields.str("runId"), Some("run_b"));
        assert!(Incoming::parse("[1, 2]").is_ok_and(|i| !i.fields.object));
    }

    #[test]
    fn what_a_value_refuses_is_refused() {
        for bad in [
            r#"{"x": 1e999}"#,
            r#"{"a": [1, 2e400]}"#,
            r#"{"recordId": "r"} x"#,
            r#"{"a": "\ud800"}"#,
            r#"{"a": "#,
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
            assert!(Incoming::parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(serde_json::from_str::<Value>(&deep).is_err());
        assert!(Incoming::parse(&deep).is_err());
    }

    #[test]
    fn a_pretty_printed_record_is_stored_on_one_line() {
        let incoming = Incoming::parse("{\n  \"runId\": \"run_a\"\n}").unwrap();
        assert_eq!(incoming.text, r#"{"runId":"run_a"}"#);
    }

    #[test]
    fn every_kept_key_has_its_own_slot() {
        for (i, key) in KEYS.iter().chain(&DETAIL_KEYS).enumerate() {
            assert_eq!(slot(key), Some(i), "{key}");
        }
        assert_eq!(slot("operationId"), None);
    }
}
