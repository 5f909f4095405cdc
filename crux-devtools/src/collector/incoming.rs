//! A record as the writer stores it, prepared on the request's thread: its value, the JSON
//! text stored for it, and the text its search index entry holds. The writer is one
//! thread for every request, so whatever can be done before it (serializing, decoding the
//! searchable texts) is done here, in parallel.

use serde_json::Value;

/// One record ready for [`Store::ingest_prepared`](super::Store::ingest_prepared).
#[derive(Clone, Debug)]
pub struct Incoming {
    pub(super) value: Value,
    pub(super) text: String,
    pub(super) search: Option<String>,
}

impl Incoming {
    /// A record from its value (serialized here).
    pub fn new(value: Value) -> Incoming {
        let text = value.to_string();
        Incoming::with_text(value, text)
    }

    /// A record from its value and the JSON text it was received as, stored as is so that
    /// the value is not serialized again. A text spread over several lines (pretty-printed)
    /// is serialized again: a stored record is one line, as crux writes records everywhere.
    pub fn with_text(value: Value, text: String) -> Incoming {
        let text = if text.contains(['\n', '\r']) {
            value.to_string()
        } else {
            text
        };
        let search = searchable(&value);
        Incoming {
            value,
            text,
            search,
        }
    }

    /// The record's value.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// The text the full-text index holds for a record: every text a search compares
/// (`crux_view::search::record_texts`), one per line; `None` when there is none.
pub(super) fn searchable(v: &Value) -> Option<String> {
    // The line number only names the record in decoding errors, which are dropped here.
    let record = crux_view::record::decode_value(0, v).ok()?;
    let texts = crux_view::search::record_texts(&record);
    (!texts.is_empty()).then(|| texts.join("\n"))
}
