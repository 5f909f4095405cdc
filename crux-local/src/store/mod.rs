//! The in-memory document store behind `ctx.db`: tables of JSON documents with `_id` and
//! `_creationTime`, declared indexes, snapshot reads and all-or-nothing transactions.

mod database;
mod document;
mod error;
mod order;
mod query;
mod schema;
mod transaction;

pub use database::{DatabaseReader, DatabaseWriter};
pub use document::{Document, Id};
pub use error::StoreError;
pub use query::{IndexRange, Order, Query};
pub use schema::TableSchema;

pub(crate) use error::json_type;
pub(crate) use schema::Schema;
pub(crate) use transaction::{Staged, Store, Transaction, lock};
