//! `ctx.db`: the reader queries get and the writer mutations get.

use std::sync::Arc;

use serde::Serialize;

use super::query::Query;
use super::transaction::Transaction;
use super::{Document, Id, StoreError};
use crux_runtime::Result;

/// Read access to the document store (`ctx.db` in a query). All reads of one query see one
/// consistent snapshot (plus the writes of the mutation that called it, if any).
#[derive(Clone, Debug)]
pub struct DatabaseReader {
    view: Arc<Transaction>,
}

impl DatabaseReader {
    pub(crate) fn new(view: Arc<Transaction>) -> Self {
        Self { view }
    }

    /// The document with this id, or `None` if it does not exist.
    pub async fn get(&self, id: &Id) -> Result<Option<Document>> {
        Ok(self.view.get(id)?.map(|doc| (*doc).clone()))
    }

    /// Starts a query over `table`.
    pub fn query(&self, table: &str) -> Query {
        Query::new(self.view.clone(), table)
    }
}

/// Read-write access to the document store (`ctx.db` in a mutation). Writes become visible
/// to others only when the mutation returns `Ok`; an error discards all of them.
#[derive(Clone, Debug)]
pub struct DatabaseWriter {
    reader: DatabaseReader,
}

impl DatabaseWriter {
    pub(crate) fn new(txn: Arc<Transaction>) -> Self {
        Self {
            reader: DatabaseReader::new(txn),
        }
    }

    fn txn(&self) -> &Transaction {
        &self.reader.view
    }

    /// The document with this id, or `None` if it does not exist.
    pub async fn get(&self, id: &Id) -> Result<Option<Document>> {
        self.reader.get(id).await
    }

    /// Starts a query over `table`; it sees this mutation's own writes.
    pub fn query(&self, table: &str) -> Query {
        self.reader.query(table)
    }

    /// Inserts `doc` (any value serializing to a JSON object without `_` fields) and
    /// returns its new id; `_id` and `_creationTime` are added.
    pub async fn insert(&self, table: &str, doc: impl Serialize) -> Result<Id> {
        let value = serde_json::to_value(doc).map_err(StoreError::from)?;
        Ok(self.txn().insert(table, value)?)
    }

    /// Sets the given fields, leaving the others as they are.
    pub async fn patch(&self, id: &Id, fields: impl Serialize) -> Result<()> {
        let value = serde_json::to_value(fields).map_err(StoreError::from)?;
        Ok(self.txn().patch(id, value)?)
    }

    /// Replaces all user fields, keeping `_id` and `_creationTime`.
    pub async fn replace(&self, id: &Id, doc: impl Serialize) -> Result<()> {
        let value = serde_json::to_value(doc).map_err(StoreError::from)?;
        Ok(self.txn().replace(id, value)?)
    }

    /// Deletes the document; an error if it does not exist.
    pub async fn delete(&self, id: &Id) -> Result<()> {
        Ok(self.txn().delete(id)?)
    }
}
