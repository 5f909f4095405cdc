//! What can go wrong in the document store.

use thiserror::Error;

use super::Id;

/// A document store operation was rejected. Converts into [`crux_runtime::Error`] with `?`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The deployment declares tables and this is not one of them.
    #[error("table `{table}` is not in the schema; declare it with `.table(\"{table}\", |t| t)`")]
    UnknownTable {
        /// The table asked for.
        table: String,
    },
    /// The table has no index by that name.
    #[error("table `{table}` has no index `{index}`; its indexes are: {known}")]
    UnknownIndex {
        /// The table queried.
        table: String,
        /// The index asked for.
        index: String,
        /// The declared indexes, comma separated.
        known: String,
    },
    /// An index range compared fields out of the index's order.
    #[error("invalid range on index `{index}`: {reason}")]
    IndexRange {
        /// The index queried.
        index: String,
        /// What was wrong.
        reason: String,
    },
    /// A document (or patch) was not a JSON object.
    #[error("a document must be a JSON object, got {got}")]
    NotAnObject {
        /// The JSON type received.
        got: &'static str,
    },
    /// A write tried to set a system field.
    #[error("field `{field}` is reserved: fields starting with `_` are system fields")]
    SystemField {
        /// The offending field.
        field: String,
    },
    /// The id is not one this store issued.
    #[error("`{id}` is not a document id")]
    MalformedId {
        /// The id received.
        id: Id,
    },
    /// The document does not exist (or was deleted).
    #[error("document `{id}` does not exist")]
    Missing {
        /// The id received.
        id: Id,
    },
    /// `unique()` matched more than one document.
    #[error("unique() on table `{table}` matched more than one document")]
    NotUnique {
        /// The table queried.
        table: String,
    },
    /// A sub-mutation read something its enclosing mutation changed while it ran (a write
    /// made concurrently with the sub-mutation, e.g. beside it in `tokio::join!`).
    #[error(
        "write conflict: {what} changed in the enclosing mutation while this sub-mutation ran, \
         so its writes were discarded; await the sub-mutation before writing what it reads, \
         or retry it"
    )]
    Conflict {
        /// What changed: a document or a table.
        what: String,
    },
    /// The mutation this database handle belonged to has already returned.
    #[error("the mutation that owned this database handle has already returned")]
    Closed,
    /// A value could not be turned into JSON.
    #[error("value is not representable as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
