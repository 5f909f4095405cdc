//! Committed state, snapshots and transactions with nested sub-transactions.
//!
//! Committed state is an immutable [`Snapshot`] swapped on commit (tables are `Arc`s, so a
//! commit copies only the tables it touches, and only while a reader still holds them).
//! Top-level mutations run one at a time under the write lock, so they are serializable
//! without retries; queries read a snapshot and never wait.
//!
//! Sub-transactions of one transaction run one at a time too (each holds its parent's
//! `children` lock from start to commit or abort), so concurrent sibling sub-mutations
//! are ordered. A sub-transaction also records what it read from outside itself; on commit
//! it checks that the parent still sees the same documents (pointer-equal) and fails with
//! [`StoreError::Conflict`] otherwise, so a parent writing while its child runs can never
//! lose the child's update or have its own write overwritten.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::error::{StoreError, json_type};
use super::schema::{Schema, TableSchema};
use super::{Document, Id};

type Table = BTreeMap<Id, Arc<Document>>;

/// One consistent view of every table.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    tables: BTreeMap<String, Arc<Table>>,
}

/// The in-memory document store of a deployment. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    schema: Schema,
    committed: Mutex<Arc<Snapshot>>,
    write_lock: Arc<tokio::sync::Mutex<()>>,
    seq: AtomicU64,
    last_creation_time: Mutex<f64>,
}

/// Locks a std mutex, recovering the data if a panicking thread poisoned it (every update
/// here is a single assignment, so the data is never half-written).
pub(crate) use crux_runtime::helpers::lock;

impl Store {
    pub(crate) fn new(schema: Schema) -> Self {
        Self {
            inner: Arc::new(StoreInner {
                schema,
                committed: Mutex::new(Arc::default()),
                write_lock: Arc::new(tokio::sync::Mutex::new(())),
                seq: AtomicU64::new(1),
                last_creation_time: Mutex::new(0.0),
            }),
        }
    }

    /// The latest committed snapshot.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        lock(&self.inner.committed).clone()
    }

    /// A read-only view of the latest committed state (a query's transaction).
    pub(crate) fn read(&self) -> Arc<Transaction> {
        Arc::new(Transaction::new(self.clone(), self.snapshot(), None, None))
    }

    /// Starts a top-level mutation: waits for the write lock, then reads the newest state.
    pub(crate) async fn begin(&self) -> Arc<Transaction> {
        let guard = self.inner.write_lock.clone().lock_owned().await;
        Arc::new(Transaction::new(
            self.clone(),
            self.snapshot(),
            None,
            Some(guard),
        ))
    }

    pub(crate) fn table_schema(&self, table: &str) -> Result<TableSchema, StoreError> {
        self.inner
            .schema
            .table(table)
            .ok_or_else(|| StoreError::UnknownTable {
                table: table.to_owned(),
            })
    }

    pub(crate) fn next_id(&self, table: &str) -> Id {
        Id::new(table, self.inner.seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Milliseconds since the epoch, strictly increasing across the store.
    fn next_creation_time(&self) -> f64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or_default();
        let mut last = lock(&self.inner.last_creation_time);
        let next = if now > *last {
            now
        } else {
            *last + 1.0 / 1024.0
        };
        *last = next;
        next
    }
}

/// Work held until the whole mutation commits (the scheduler's jobs and cancels). The store
/// keeps it in order, discards it on abort and hands it back on commit, without knowing
/// what it is.
pub(crate) struct Staged {
    /// The id the work concerns (a job's id); [`Transaction::is_staged`] looks it up.
    pub(crate) id: Id,
    /// The work itself, for whoever staged it.
    pub(crate) work: Box<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a transaction changed: `None` marks a deletion.
#[derive(Debug, Default)]
struct Writes {
    docs: BTreeMap<Id, Option<Arc<Document>>>,
    staged: Vec<Staged>,
}

/// What a sub-transaction read from outside itself, as first seen: checked on commit.
#[derive(Debug, Default)]
struct Reads {
    docs: BTreeMap<Id, Option<Arc<Document>>>,
    tables: BTreeMap<String, Vec<Arc<Document>>>,
}

/// A mutation's transaction (or a query's read-only view). Reads see the transaction's own
/// writes, then its parents', then the snapshot it started from.
#[derive(Debug)]
pub(crate) struct Transaction {
    store: Store,
    base: Arc<Snapshot>,
    parent: Option<Arc<Transaction>>,
    writes: Mutex<Writes>,
    /// Recorded for sub-transactions only.
    reads: Mutex<Reads>,
    /// The store's write lock (top level) or the parent's `children` lock (sub-transaction),
    /// held until commit or abort.
    write_guard: Mutex<Option<tokio::sync::OwnedMutexGuard<()>>>,
    /// Taken by each sub-transaction of this one, so siblings run one at a time.
    children: Arc<tokio::sync::Mutex<()>>,
    closed: AtomicBool,
}

impl Transaction {
    fn new(
        store: Store,
        base: Arc<Snapshot>,
        parent: Option<Arc<Transaction>>,
        write_guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Self {
        Self {
            store,
            base,
            parent,
            writes: Mutex::new(Writes::default()),
            reads: Mutex::new(Reads::default()),
            write_guard: Mutex::new(write_guard),
            children: Arc::new(tokio::sync::Mutex::new(())),
            closed: AtomicBool::new(false),
        }
    }

    /// A sub-transaction: its writes reach `self` only if it commits. Waits until the
    /// previous sub-transaction of `self` has committed or aborted.
    pub(crate) async fn child(self: &Arc<Self>) -> Arc<Transaction> {
        let guard = self.children.clone().lock_owned().await;
        Arc::new(Transaction::new(
            self.store.clone(),
            self.base.clone(),
            Some(self.clone()),
            Some(guard),
        ))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The document `id` as this transaction sees it: its own write, else its parent's view
    /// (recorded as read, in a sub-transaction), else the snapshot's.
    pub(crate) fn get(&self, id: &Id) -> Result<Option<Arc<Document>>, StoreError> {
        let table = id
            .table()
            .ok_or_else(|| StoreError::MalformedId { id: id.clone() })?;
        if let Some(own) = lock(&self.writes).docs.get(id) {
            return Ok(own.clone());
        }
        let Some(parent) = &self.parent else {
            return Ok(self
                .base
                .tables
                .get(table)
                .and_then(|docs| docs.get(id))
                .cloned());
        };
        let found = parent.get(id)?;
        lock(&self.reads)
            .docs
            .entry(id.clone())
            .or_insert_with(|| found.clone());
        Ok(found)
    }

    /// Every live document of `table` as this transaction sees it, in id order.
    pub(crate) fn scan(&self, table: &str) -> Vec<Arc<Document>> {
        self.view_of(table).into_values().collect()
    }

    /// `table` as this transaction sees it; a sub-transaction records its parent's view.
    fn view_of(&self, table: &str) -> Table {
        let mut docs = match &self.parent {
            Some(parent) => {
                let docs = parent.view_of(table);
                lock(&self.reads)
                    .tables
                    .entry(table.to_owned())
                    .or_insert_with(|| docs.values().cloned().collect());
                docs
            }
            None => self
                .base
                .tables
                .get(table)
                .map(|t| (**t).clone())
                .unwrap_or_default(),
        };
        for (id, doc) in &lock(&self.writes).docs {
            if id.table() != Some(table) {
                continue;
            }
            match doc {
                Some(doc) => docs.insert(id.clone(), doc.clone()),
                None => docs.remove(id),
            };
        }
        docs
    }

    /// Fails if the parent no longer sees what this sub-transaction read from it.
    fn check_reads(&self, parent: &Transaction) -> Result<(), StoreError> {
        let Reads { docs, tables } = std::mem::take(&mut *lock(&self.reads));
        for (id, seen) in docs {
            let now = parent.get(&id)?;
            let same = match (&seen, &now) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                return Err(StoreError::Conflict {
                    what: format!("document `{id}`"),
                });
            }
        }
        for (table, seen) in tables {
            let now = parent.scan(&table);
            let same =
                seen.len() == now.len() && seen.iter().zip(&now).all(|(a, b)| Arc::ptr_eq(a, b));
            if !same {
                return Err(StoreError::Conflict {
                    what: format!("table `{table}`"),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn insert(&self, table: &str, value: Value) -> Result<Id, StoreError> {
        self.store.table_schema(table)?;
        let mut fields = user_fields(value)?;
        let id = self.store.next_id(table);
        fields.insert("_id".to_owned(), Value::from(id.clone()));
        fields.insert(
            "_creationTime".to_owned(),
            Value::from(self.store.next_creation_time()),
        );
        self.write(id.clone(), Some(Document::new(fields)))?;
        Ok(id)
    }

    /// Shallow-merges `value`'s fields into the document; `null` values are stored as null.
    pub(crate) fn patch(&self, id: &Id, value: Value) -> Result<(), StoreError> {
        let fields = user_fields(value)?;
        let current = self.existing(id)?;
        let mut merged = (*current).clone().into_map();
        merged.extend(fields);
        self.write(id.clone(), Some(Document::new(merged)))
    }

    /// Replaces every user field, keeping `_id` and `_creationTime`.
    pub(crate) fn replace(&self, id: &Id, value: Value) -> Result<(), StoreError> {
        let mut fields = user_fields(value)?;
        let current = self.existing(id)?;
        for system in ["_id", "_creationTime"] {
            if let Some(v) = current.get(system) {
                fields.insert(system.to_owned(), v.clone());
            }
        }
        self.write(id.clone(), Some(Document::new(fields)))
    }

    pub(crate) fn delete(&self, id: &Id) -> Result<(), StoreError> {
        self.existing(id)?;
        self.write(id.clone(), None)
    }

    fn existing(&self, id: &Id) -> Result<Arc<Document>, StoreError> {
        self.get(id)?
            .ok_or_else(|| StoreError::Missing { id: id.clone() })
    }

    fn write(&self, id: Id, doc: Option<Document>) -> Result<(), StoreError> {
        self.check_open()?;
        lock(&self.writes).docs.insert(id, doc.map(Arc::new));
        Ok(())
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// Stages work (a scheduled job): it is handed back only if the whole mutation commits.
    pub(crate) fn stage(&self, staged: Staged) -> Result<(), StoreError> {
        self.check_open()?;
        lock(&self.writes).staged.push(staged);
        Ok(())
    }

    /// Whether work for `id` is staged in this transaction or a parent (a job scheduled
    /// earlier in the mutation, which a cancel may name before it is committed).
    pub(crate) fn is_staged(&self, id: &Id) -> bool {
        lock(&self.writes)
            .staged
            .iter()
            .any(|staged| &staged.id == id)
            || self
                .parent
                .as_ref()
                .is_some_and(|parent| parent.is_staged(id))
    }

    /// Ends the transaction without committing: its writes and staged work are discarded.
    pub(crate) fn abort(&self) {
        self.closed.store(true, Ordering::Release);
        *lock(&self.writes) = Writes::default();
        *lock(&self.reads) = Reads::default();
        lock(&self.write_guard).take();
    }

    /// Makes the writes visible: to the parent for a sub-transaction (returning nothing),
    /// to everyone for a top-level transaction (returning the staged work to start), and
    /// releases the lock it held. A sub-transaction whose reads the parent has since
    /// overwritten is aborted instead, with [`StoreError::Conflict`].
    pub(crate) fn commit(&self) -> Result<Vec<Staged>, StoreError> {
        if let Some(parent) = &self.parent
            && let Err(conflict) = self.check_reads(parent)
        {
            self.abort();
            return Err(conflict);
        }
        self.closed.store(true, Ordering::Release);
        let Writes { docs, staged } = std::mem::take(&mut *lock(&self.writes));
        if let Some(parent) = &self.parent {
            let mut parent_writes = lock(&parent.writes);
            parent_writes.docs.extend(docs);
            parent_writes.staged.extend(staged);
            drop(parent_writes);
            lock(&self.write_guard).take();
            return Ok(Vec::new());
        }
        if !docs.is_empty() {
            let mut committed = lock(&self.store.inner.committed);
            let snapshot = Arc::make_mut(&mut committed);
            for (id, doc) in docs {
                let Some(table) = id.table() else { continue };
                let rows = Arc::make_mut(snapshot.tables.entry(table.to_owned()).or_default());
                match doc {
                    Some(doc) => rows.insert(id, doc),
                    None => rows.remove(&id),
                };
            }
        }
        lock(&self.write_guard).take();
        Ok(staged)
    }
}

/// The user fields of a document or patch: an object without system fields.
fn user_fields(value: Value) -> Result<Map<String, Value>, StoreError> {
    let Value::Object(fields) = value else {
        return Err(StoreError::NotAnObject {
            got: json_type(&value),
        });
    };
    if let Some(field) = fields.keys().find(|k| k.starts_with('_')) {
        return Err(StoreError::SystemField {
            field: field.clone(),
        });
    }
    Ok(fields)
}
