//! Reading many documents: index ranges, order, filters.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::Document;
use super::error::StoreError;
use super::order::compare;
use super::transaction::Transaction;
use crux_runtime::Result;

/// The order of query results: by the index fields (then `_creationTime`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Smallest first (the default).
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// The range of an index a query reads, built in the `with_index` closure: equalities on a
/// prefix of the index fields, then at most one lower and one upper bound on the next field.
///
/// ```ignore
/// ctx.db.query("messages")
///     .with_index("by_thread_time", |q| q.eq("threadId", &thread).gt("sentAt", 1_000))
/// ```
pub struct IndexRange {
    index: String,
    fields: Vec<String>,
    eqs: Vec<Value>,
    lower: Option<(Cmp, Value)>,
    upper: Option<(Cmp, Value)>,
    error: Option<StoreError>,
}

impl fmt::Debug for IndexRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexRange")
            .field("index", &self.index)
            .field("eqs", &self.eqs)
            .finish_non_exhaustive()
    }
}

impl IndexRange {
    fn new(index: &str, fields: Vec<String>) -> Self {
        Self {
            index: index.to_owned(),
            fields,
            eqs: Vec::new(),
            lower: None,
            upper: None,
            error: None,
        }
    }

    fn fail(mut self, reason: String) -> Self {
        if self.error.is_none() {
            self.error = Some(StoreError::IndexRange {
                index: self.index.clone(),
                reason,
            });
        }
        self
    }

    /// The field the next comparison must name, if any is left.
    fn expected(&self) -> Option<&str> {
        self.fields.get(self.eqs.len()).map(String::as_str)
    }

    fn check_field(&self, field: &str) -> Option<String> {
        match self.expected() {
            Some(expected) if expected == field => None,
            Some(expected) => Some(format!(
                "expected a comparison on `{expected}` (index fields: {}), got `{field}`",
                self.fields.join(", ")
            )),
            None => Some(format!(
                "all index fields ({}) are already compared, got `{field}`",
                self.fields.join(", ")
            )),
        }
    }

    /// Only documents whose `field` equals `value`.
    pub fn eq(self, field: &str, value: impl Serialize) -> Self {
        if self.lower.is_some() || self.upper.is_some() {
            return self.fail(format!("`eq(\"{field}\")` cannot follow a range bound"));
        }
        if let Some(reason) = self.check_field(field) {
            return self.fail(reason);
        }
        match serde_json::to_value(value) {
            Ok(value) => {
                let mut this = self;
                this.eqs.push(value);
                this
            }
            Err(err) => self.fail(format!("value for `{field}` is not JSON: {err}")),
        }
    }

    fn bound(self, field: &str, cmp: Cmp, value: impl Serialize) -> Self {
        if let Some(reason) = self.check_field(field) {
            return self.fail(reason);
        }
        let lower = matches!(cmp, Cmp::Gt | Cmp::Gte);
        let taken = if lower { &self.lower } else { &self.upper };
        if taken.is_some() {
            let side = if lower { "lower" } else { "upper" };
            return self.fail(format!("`{field}` already has a {side} bound"));
        }
        match serde_json::to_value(value) {
            Ok(value) => {
                let mut this = self;
                if lower {
                    this.lower = Some((cmp, value));
                } else {
                    this.upper = Some((cmp, value));
                }
                this
            }
            Err(err) => self.fail(format!("value for `{field}` is not JSON: {err}")),
        }
    }

    /// Only documents whose `field` is greater than `value`.
    pub fn gt(self, field: &str, value: impl Serialize) -> Self {
        self.bound(field, Cmp::Gt, value)
    }

    /// Only documents whose `field` is greater than or equal to `value`.
    pub fn gte(self, field: &str, value: impl Serialize) -> Self {
        self.bound(field, Cmp::Gte, value)
    }

    /// Only documents whose `field` is less than `value`.
    pub fn lt(self, field: &str, value: impl Serialize) -> Self {
        self.bound(field, Cmp::Lt, value)
    }

    /// Only documents whose `field` is less than or equal to `value`.
    pub fn lte(self, field: &str, value: impl Serialize) -> Self {
        self.bound(field, Cmp::Lte, value)
    }

    fn matches(&self, doc: &Document) -> bool {
        for (field, value) in self.fields.iter().zip(&self.eqs) {
            if compare(doc.get(field), Some(value)) != Ordering::Equal {
                return false;
            }
        }
        let Some(field) = self.fields.get(self.eqs.len()) else {
            return true;
        };
        let actual = doc.get(field);
        let within = |bound: &Option<(Cmp, Value)>| match bound {
            None => true,
            Some((cmp, value)) => {
                let ord = compare(actual, Some(value));
                match cmp {
                    Cmp::Gt => ord == Ordering::Greater,
                    Cmp::Gte => ord != Ordering::Less,
                    Cmp::Lt => ord == Ordering::Less,
                    Cmp::Lte => ord != Ordering::Greater,
                }
            }
        };
        within(&self.lower) && within(&self.upper)
    }
}

type Filter = Box<dyn Fn(&Document) -> bool + Send + Sync>;

/// A query over one table, started with `ctx.db.query(table)`; nothing is read until
/// [`Query::collect`], [`Query::take`], [`Query::first`] or [`Query::unique`].
#[must_use = "a query reads nothing until collect(), take(), first() or unique()"]
pub struct Query {
    view: Arc<Transaction>,
    table: String,
    index: Option<IndexRange>,
    order: Order,
    filters: Vec<Filter>,
    error: Option<StoreError>,
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("table", &self.table)
            .field("index", &self.index)
            .field("order", &self.order)
            .finish_non_exhaustive()
    }
}

impl Query {
    pub(crate) fn new(view: Arc<Transaction>, table: &str) -> Self {
        let error = view.store().table_schema(table).err();
        Self {
            view,
            table: table.to_owned(),
            index: None,
            order: Order::Asc,
            filters: Vec::new(),
            error,
        }
    }

    /// Reads through the named index, restricted by the range `range` builds.
    pub fn with_index(mut self, name: &str, range: impl FnOnce(IndexRange) -> IndexRange) -> Self {
        let Ok(schema) = self.view.store().table_schema(&self.table) else {
            return self; // the unknown table is already recorded
        };
        match schema.fields_of(name) {
            Some(fields) => self.index = Some(range(IndexRange::new(name, fields.to_vec()))),
            None => {
                self.error.get_or_insert(StoreError::UnknownIndex {
                    table: self.table.clone(),
                    index: name.to_owned(),
                    known: schema.index_names().join(", "),
                });
            }
        }
        self
    }

    /// Ascending (default) or descending.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Keeps only documents for which `keep` returns true (applied after the index range).
    pub fn filter(mut self, keep: impl Fn(&Document) -> bool + Send + Sync + 'static) -> Self {
        self.filters.push(Box::new(keep));
        self
    }

    fn run(mut self, limit: Option<usize>) -> Result<Vec<Document>, StoreError> {
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        if let Some(err) = self.index.as_mut().and_then(|range| range.error.take()) {
            return Err(err);
        }
        let mut docs = self.view.scan(&self.table);
        let key_fields: &[String] = self.index.as_ref().map_or(&[], |r| &r.fields);
        if let Some(range) = &self.index {
            docs.retain(|doc| range.matches(doc));
        }
        docs.sort_by(|a, b| {
            key_fields
                .iter()
                .map(|field| compare(a.get(field), b.get(field)))
                .find(|ord| ord.is_ne())
                .unwrap_or_else(|| a.creation_time().total_cmp(&b.creation_time()))
        });
        if self.order == Order::Desc {
            docs.reverse();
        }
        let limit = limit.unwrap_or(usize::MAX);
        Ok(docs
            .into_iter()
            .filter(|doc| self.filters.iter().all(|keep| keep(doc)))
            .take(limit)
            .map(|doc| (*doc).clone())
            .collect())
    }

    /// Every matching document.
    pub async fn collect(self) -> Result<Vec<Document>> {
        Ok(self.run(None)?)
    }

    /// The first `n` matching documents.
    pub async fn take(self, n: usize) -> Result<Vec<Document>> {
        Ok(self.run(Some(n))?)
    }

    /// The first matching document, if any.
    pub async fn first(self) -> Result<Option<Document>> {
        Ok(self.run(Some(1))?.pop())
    }

    /// The only matching document, if any; an error if more than one matches.
    pub async fn unique(self) -> Result<Option<Document>> {
        let table = self.table.clone();
        let mut docs = self.run(Some(2))?;
        if docs.len() > 1 {
            return Err(StoreError::NotUnique { table }.into());
        }
        Ok(docs.pop())
    }
}
