//! The declared tables and their indexes.

use std::collections::BTreeMap;

/// The indexes of one table, declared with `Deployment::builder().table(name, |t| ...)`.
///
/// ```
/// # use crux_local::TableSchema;
/// let table = TableSchema::default().index("by_thread", ["threadId"]);
/// assert_eq!(table.fields_of("by_thread"), Some(&["threadId".to_owned()][..]));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TableSchema {
    indexes: BTreeMap<String, Vec<String>>,
}

impl TableSchema {
    /// Declares an index over `fields`, compared in the given order. Documents in an index
    /// are ordered by those fields, then by `_creationTime`.
    pub fn index<I, S>(mut self, name: impl Into<String>, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.indexes
            .insert(name.into(), fields.into_iter().map(Into::into).collect());
        self
    }

    /// The fields of the named index; `by_creation_time` is always there (no fields).
    pub fn fields_of(&self, index: &str) -> Option<&[String]> {
        match self.indexes.get(index) {
            Some(fields) => Some(fields),
            None if index == BY_CREATION_TIME => Some(&[]),
            None => None,
        }
    }

    pub(crate) fn index_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.indexes.keys().cloned().collect();
        names.push(BY_CREATION_TIME.to_owned());
        names
    }
}

/// The built-in index every table has.
pub(crate) const BY_CREATION_TIME: &str = "by_creation_time";

/// All declared tables. Empty means schemaless: any table may be written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Schema {
    pub(crate) tables: BTreeMap<String, TableSchema>,
}

impl Schema {
    /// The table's schema; a schemaless deployment accepts every table.
    pub(crate) fn table(&self, name: &str) -> Option<TableSchema> {
        if self.tables.is_empty() {
            return Some(TableSchema::default());
        }
        self.tables.get(name).cloned()
    }
}
