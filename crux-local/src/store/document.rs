//! Documents and their ids.

use std::fmt;
use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crux_runtime::{Error, ErrorKind, Result};

/// A document id: names the table it belongs to. Opaque on the wire (a JSON string).
///
/// ```
/// # use crux_local::Id;
/// let id: Id = serde_json::from_value(serde_json::json!("messages:1f")).unwrap();
/// assert_eq!(id.table(), Some("messages"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    pub(crate) fn new(table: &str, seq: u64) -> Self {
        Self(format!("{table}:{seq:x}"))
    }

    /// The table this id points into, if the id is well formed.
    pub fn table(&self) -> Option<&str> {
        let (table, seq) = self.0.rsplit_once(':')?;
        let well_formed =
            !table.is_empty() && !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then_some(table)
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Id> for Value {
    fn from(id: Id) -> Self {
        Value::String(id.0)
    }
}

/// A stored document: a JSON object with the system fields `_id` and `_creationTime`.
///
/// Dereferences to its fields; [`Document::parse`] turns it into your own type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Document(Map<String, Value>);

impl Document {
    pub(crate) fn new(fields: Map<String, Value>) -> Self {
        Self(fields)
    }

    /// The document's `_id`.
    pub fn id(&self) -> Id {
        match self.0.get("_id") {
            Some(Value::String(id)) => Id(id.clone()),
            _ => Id(String::new()),
        }
    }

    /// The document's `_creationTime`, in milliseconds since the Unix epoch.
    pub fn creation_time(&self) -> f64 {
        self.0
            .get("_creationTime")
            .and_then(Value::as_f64)
            .unwrap_or_default()
    }

    /// Deserializes the document (system fields included) into `T`.
    ///
    /// Fields `T` does not declare are ignored, so a struct without `_id` works.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(Value::Object(self.0.clone())).map_err(|err| {
            Error::new(
                ErrorKind::Server,
                format!(
                    "document {} does not match the requested type: {err}",
                    self.id()
                ),
            )
        })
    }

    /// The fields, system fields included.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

impl Deref for Document {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_table_and_reject_garbage() {
        assert_eq!(
            Id::new("research_inputs", 255).table(),
            Some("research_inputs")
        );
        assert_eq!(
            Id::new("research_inputs", 255).as_str(),
            "research_inputs:ff"
        );
        for bad in ["", "nocolon", ":1", "t:", "t:xyz"] {
            assert_eq!(Id(bad.to_owned()).table(), None, "{bad}");
        }
    }
}
