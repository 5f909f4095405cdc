//! The collector's SQLite store: every accepted record as received, plus a `runs` table
//! kept up to date on ingest so that a run list never scans the records.
//!
//! WAL journal, `synchronous = NORMAL`: a record is acknowledged (202) only after its
//! batch's transaction commits, so a crash of the collector loses nothing it accepted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Value, json};

use super::incoming::{Fields, Incoming, searchable};

/// The store's schema version, kept in `PRAGMA user_version`.
pub const STORE_VERSION: i64 = 3;

/// Most distinct `sourceHealth` sources remembered.
pub const MAX_SOURCES: i64 = 256;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
  seq INTEGER PRIMARY KEY,
  record_id TEXT NOT NULL UNIQUE,
  run_id TEXT NOT NULL,
  segment_id TEXT NOT NULL,
  segment_seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  span_id TEXT,
  payload TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_by_segment ON records(segment_id, segment_seq);
CREATE INDEX IF NOT EXISTS records_by_run ON records(run_id, seq);
CREATE INDEX IF NOT EXISTS records_by_span ON records(span_id) WHERE span_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_linking ON records(seq) WHERE type IN ('edge', 'run:start');
CREATE TABLE IF NOT EXISTS segments (
  segment_id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  name TEXT,
  root_primitive TEXT,
  status TEXT NOT NULL,
  ended INTEGER NOT NULL,
  started_at TEXT,
  started_ms INTEGER,
  started_ns INTEGER,
  ended_ns INTEGER,
  duration_ms REAL,
  session_id TEXT,
  user_id TEXT,
  records INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  model_calls INTEGER NOT NULL DEFAULT 0,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  total_tokens INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_user ON runs(user_id) WHERE user_id IS NOT NULL;
-- The run list, newest first, read from the index alone (it holds every column a listed
-- run shows, in RUN_COLUMNS): a list of 10 000 runs is one ordered range of the index, not
-- 10 000 lookups of rows by run id.
CREATE INDEX IF NOT EXISTS runs_listed ON runs(started_ms DESC, first_seq DESC, name,
  root_primitive, status, started_at, started_ns, ended_ns, duration_ms, records, session_id,
  user_id, model_calls, input_tokens, output_tokens, total_tokens);
CREATE INDEX IF NOT EXISTS runs_by_session ON runs(session_id) WHERE session_id IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(
  text, content = '', columnsize = 0, detail = none, tokenize = 'trigram'
);
CREATE TABLE IF NOT EXISTS sources (
  source_id TEXT PRIMARY KEY,
  accepted INTEGER NOT NULL,
  retried INTEGER NOT NULL,
  permanently_rejected INTEGER NOT NULL,
  overflow_dropped INTEGER NOT NULL,
  deadline_dropped INTEGER NOT NULL,
  last_error TEXT
) WITHOUT ROWID;
";

// The full-text index (`search_text`) holds trigrams and, per trigram, the records
// (`records.seq` = its rowid) holding it: no copy of the text (`content = ''`), no sizes
// (`columnsize = 0`, for ranking, which no query does) and no positions (`detail = none`),
// which halves what a record costs to index. A search looks up every trigram of the
// text: a superset of the records holding it, which the viewer's search then checks.

/// Version 1 → 2: the per-run model totals, backfilled from the stored records.
const MIGRATE_1_TO_2: &str = "
ALTER TABLE runs ADD COLUMN model_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN total_tokens INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET
  model_calls = (SELECT count(*) FROM records r WHERE r.run_id = runs.run_id
    AND r.type IN ('span:start', 'span')
    AND json_extract(r.payload, '$.family') = 'generation'
    AND json_extract(r.payload, '$.primitive') <> 'generation.stream.attempt'),
  input_tokens = (SELECT coalesce(sum(json_extract(r.payload, '$.metrics.inputTokens')), 0)
    FROM records r WHERE r.run_id = runs.run_id AND r.type IN ('span:end', 'span')),
  output_tokens = (SELECT coalesce(sum(json_extract(r.payload, '$.metrics.outputTokens')), 0)
    FROM records r WHERE r.run_id = runs.run_id AND r.type IN ('span:end', 'span')),
  total_tokens = (SELECT coalesce(sum(json_extract(r.payload, '$.metrics.totalTokens')), 0)
    FROM records r WHERE r.run_id = runs.run_id AND r.type IN ('span:end', 'span'));
";

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (opening, a query, a full disk).
    #[error("devtools database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The collector is shutting down and takes no more batches.
    #[error("the collector is shutting down")]
    Closed,
    /// The file was written by a newer collector.
    #[error(
        "devtools database {path} has store version {found}; this crux reads version {STORE_VERSION} (upgrade crux or use another --db)"
    )]
    Version {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
}

/// One run as `GET /api/runs` and `crux runs --db` list it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    /// `run_…`.
    pub run_id: String,
    /// From `run:start`; `None` until it arrives.
    pub name: Option<String>,
    /// From `run:start`.
    pub root_primitive: Option<String>,
    /// `running`, `suspended`, or the end status.
    pub status: String,
    /// ISO-8601, from `run:start`.
    pub started_at: Option<String>,
    /// From `run:end`.
    pub duration_ms: Option<f64>,
    /// Records stored for the run.
    pub records: u64,
    /// The run's session correlator.
    pub session_id: Option<String>,
    /// The run's user correlator.
    pub user_id: Option<String>,
    /// Model calls: `generation` spans (stream attempts not counted apart).
    pub model_calls: u64,
    /// Sum of the `inputTokens` metrics of the run's spans.
    pub input_tokens: u64,
    /// Sum of the `outputTokens` metrics.
    pub output_tokens: u64,
    /// Sum of the `totalTokens` metrics.
    pub total_tokens: u64,
}

impl RunRow {
    /// The JSON of the API.
    pub fn to_json(&self) -> Value {
        json!({
            "runId": self.run_id,
            "name": self.name,
            "rootPrimitive": self.root_primitive,
            "status": self.status,
            "startedAt": self.started_at,
            "durationMs": self.duration_ms,
            "records": self.records,
            "sessionId": self.session_id,
            "userId": self.user_id,
            "modelCalls": self.model_calls,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.total_tokens,
        })
    }
}

/// The `runs` columns a [`RunRow`] is read from, in the order it reads them.
const RUN_COLUMNS: &str = "run_id, name, root_primitive, status, started_at, started_ns, ended_ns, \
     duration_ms, records, session_id, user_id, model_calls, input_tokens, output_tokens, total_tokens";

/// Which runs [`Store::runs_filtered`] lists.
#[derive(Clone, Debug)]
pub struct RunFilter {
    /// Exactly this status (`ok`, `error`, `running`, ...).
    pub status: Option<String>,
    /// Names containing this text, ignoring ASCII case.
    pub name: Option<String>,
    /// Started at or after (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Started at or before (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Exactly this session correlator.
    pub session_id: Option<String>,
    /// Exactly this user correlator.
    pub user_id: Option<String>,
    /// Only these runs (a search's matches).
    pub run_ids: Option<Vec<String>>,
    /// At most this many.
    pub limit: usize,
}

impl Default for RunFilter {
    fn default() -> Self {
        RunFilter {
            status: None,
            name: None,
            since_ms: None,
            until_ms: None,
            session_id: None,
            user_id: None,
            run_ids: None,
            limit: 200,
        }
    }
}

/// Most records a search reads when the full-text index cannot narrow it (a text under 3
/// characters, or without 3 ASCII characters in a row): the newest runs up to this many
/// records are searched, and the answer says it was cut.
pub const MAX_SCAN_RECORDS: u64 = 20_000;

/// The candidate runs of a search ([`Store::search_candidates`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    /// Run ids, newest first.
    pub runs: Vec<String>,
    /// Older runs were left out: the text could not be looked up in the index, and these
    /// runs hold [`MAX_SCAN_RECORDS`] records.
    pub cut: bool,
}

/// The SQL conditions of a [`RunFilter`] with their bound values (`?N` in order).
struct Clauses {
    clauses: Vec<String>,
    values: Vec<rusqlite::types::Value>,
}

impl Clauses {
    /// `None` when the filter keeps no run (an empty `run_ids`).
    fn of(filter: &RunFilter) -> Option<Clauses> {
        use rusqlite::types::Value as Sql;
        let mut c = Clauses {
            clauses: Vec::new(),
            values: Vec::new(),
        };
        if let Some(status) = &filter.status {
            c.push("status = ?", Sql::Text(status.clone()));
        }
        if let Some(name) = &filter.name {
            c.push("instr(lower(name), lower(?)) > 0", Sql::Text(name.clone()));
        }
        if let Some(since) = filter.since_ms {
            c.push("started_ms >= ?", Sql::Integer(since));
        }
        if let Some(until) = filter.until_ms {
            c.push("started_ms <= ?", Sql::Integer(until));
        }
        if let Some(session) = &filter.session_id {
            c.push("session_id = ?", Sql::Text(session.clone()));
        }
        if let Some(user) = &filter.user_id {
            c.push("user_id = ?", Sql::Text(user.clone()));
        }
        if let Some(ids) = &filter.run_ids {
            if ids.is_empty() {
                return None;
            }
            let json = serde_json::to_string(ids).expect("strings serialize");
            c.push(
                "run_id IN (SELECT value FROM json_each(?))",
                Sql::Text(json),
            );
        }
        Some(c)
    }

    /// Binds `value`; its placeholder (`?N`).
    fn bind(&mut self, value: rusqlite::types::Value) -> String {
        self.values.push(value);
        format!("?{}", self.values.len())
    }

    /// A condition whose one `?` is `value`.
    fn push(&mut self, clause: &str, value: rusqlite::types::Value) {
        let placeholder = self.bind(value);
        self.clauses.push(clause.replace('?', &placeholder));
    }

    fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// Most trigrams one full-text query looks up (any of a text's trigrams rule out only
/// records that cannot hold it, so a subset keeps every match).
const MAX_QUERY_TRIGRAMS: usize = 16;

/// The full-text query for the records whose searchable text may hold `text` ignoring
/// case: each of its trigrams of ASCII characters, all required (the index keeps no
/// positions, so this is a superset of the records holding the text; the viewer's search
/// decides). `None` when `text` has no 3 ASCII characters in a row: the index holds
/// trigrams only, and folds the case of ASCII letters only as Rust does.
pub fn index_query(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut trigrams: Vec<&str> = Vec::new();
    for w in lower.as_bytes().windows(3) {
        // UTF-8 encodes only ASCII characters in bytes under 0x80.
        if w.is_ascii() {
            let t = std::str::from_utf8(w).expect("ASCII");
            if !trigrams.contains(&t) {
                trigrams.push(t);
            }
        }
    }
    if trigrams.is_empty() {
        return None;
    }
    let n = trigrams.len();
    let picked =
        (0..n.min(MAX_QUERY_TRIGRAMS)).map(|i| trigrams[i * n / n.min(MAX_QUERY_TRIGRAMS)]);
    Some(
        picked
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

/// A batch's results in its order: `stored`, the results of the records that were read, in
/// order, with the records `refused` before storing (by index, ascending) put back in place.
pub(super) fn with_refused(
    stored: Vec<Result<(), Rejection>>,
    refused: Vec<(usize, Rejection)>,
) -> Vec<Result<(), Rejection>> {
    if refused.is_empty() {
        return stored;
    }
    let total = stored.len() + refused.len();
    let mut stored = stored.into_iter();
    let mut refused = refused.into_iter().peekable();
    (0..total)
        .map(|i| match refused.next_if(|(at, _)| *at == i) {
            Some((_, rejection)) => Err(rejection),
            None => stored.next().expect("a result for every record read"),
        })
        .collect()
}

/// Why a record was not stored (the disposition codes of the ingest contract).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Not a usable record; the message says which field.
    Invalid(String),
    /// Its `recordId` is stored with a different payload.
    RecordIdConflict,
    /// Its `segmentId` belongs to another run.
    SegmentOwnership,
    /// Its `(segmentId, segmentSeq)` is taken by another record.
    SegmentSequence,
}

impl Rejection {
    /// A record that is JSON but not one serde_json reads as a value (nested deeper than
    /// 128, a number out of range): refused alone, its batch stored.
    pub(super) fn unreadable(e: &serde_json::Error) -> Rejection {
        Rejection::Invalid(format!("the record cannot be read as a JSON value: {e}"))
    }

    /// The disposition code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Invalid(_) => "invalid_record",
            Rejection::RecordIdConflict => "record_id_conflict",
            Rejection::SegmentOwnership => "segment_ownership_conflict",
            Rejection::SegmentSequence => "segment_sequence_conflict",
        }
    }
    /// A message for the disposition.
    pub fn message(&self) -> String {
        match self {
            Rejection::Invalid(m) => m.clone(),
            Rejection::RecordIdConflict => {
                "a different record with this recordId is already stored".to_owned()
            }
            Rejection::SegmentOwnership => "this segmentId belongs to another run".to_owned(),
            Rejection::SegmentSequence => {
                "another record already holds this segmentId and segmentSeq".to_owned()
            }
        }
    }
}

/// The SQLite store (one connection).
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A record's base fields, checked.
struct Base<'a> {
    record_id: &'a str,
    run_id: &'a str,
    segment_id: &'a str,
    segment_seq: i64,
    kind: &'a str,
}

fn text<'a>(o: &'a Fields, key: &str) -> Result<&'a str, Rejection> {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 256 => Ok(s),
        Some(Value::String(_)) => Err(Rejection::Invalid(format!(
            "{key} must be 1 to 256 characters"
        ))),
        Some(_) => Err(Rejection::Invalid(format!("{key} must be a string"))),
        None => Err(Rejection::Invalid(format!("{key} is missing"))),
    }
}

fn base(o: &Fields, schema_version: u64) -> Result<Base<'_>, Rejection> {
    if !o.object {
        return Err(Rejection::Invalid("a record must be a JSON object".into()));
    }
    if let Some(sv) = o.get("schemaVersion")
        && sv.as_u64() != Some(schema_version)
    {
        return Err(Rejection::Invalid(format!(
            "schemaVersion {sv} differs from the batch's {schema_version}"
        )));
    }
    let segment_seq = o
        .get("segmentSeq")
        .and_then(Value::as_i64)
        .filter(|n| *n >= 1)
        .ok_or_else(|| Rejection::Invalid("segmentSeq must be an integer ≥ 1".into()))?;
    Ok(Base {
        record_id: text(o, "recordId")?,
        run_id: text(o, "runId")?,
        segment_id: text(o, "segmentId")?,
        segment_seq,
        kind: text(o, "type")?,
    })
}

/// What a batch changes in one run's row.
#[derive(Default)]
struct RunDelta {
    name: Option<String>,
    root_primitive: Option<String>,
    started_at: Option<String>,
    started_ms: Option<i64>,
    started_ns: Option<i64>,
    ended_ns: Option<i64>,
    session_id: Option<String>,
    user_id: Option<String>,
    /// The last lifecycle status seen, and whether it ends the run.
    lifecycle: Option<(String, bool)>,
    duration_ms: Option<f64>,
    records: u64,
    first_seq: i64,
    last_seq: i64,
    model_calls: i64,
    input_tokens: i64,
    output_tokens: i64,
    total_tokens: i64,
}

fn str_of(v: &Fields, key: &str) -> Option<String> {
    v.str(key).map(str::to_owned)
}

impl RunDelta {
    fn apply(&mut self, kind: &str, v: &Fields, seq: i64) {
        if self.records == 0 {
            self.first_seq = seq;
        }
        self.records += 1;
        self.last_seq = seq;
        if self.session_id.is_none() {
            self.session_id = str_of(v, "sessionId");
        }
        if self.user_id.is_none() {
            self.user_id = str_of(v, "userId");
        }
        if matches!(kind, "span:start" | "span")
            && v.str("family") == Some("generation")
            && v.str("primitive") != Some("generation.stream.attempt")
        {
            self.model_calls += 1;
        }
        if matches!(kind, "span:end" | "span")
            && let Some(m) = v.get("metrics")
        {
            let n = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0).max(0);
            self.input_tokens += n("inputTokens");
            self.output_tokens += n("outputTokens");
            self.total_tokens += n("totalTokens");
        }
        match kind {
            "run:start" => {
                self.name = str_of(v, "name");
                self.root_primitive = str_of(v, "rootPrimitive");
                self.started_at = str_of(v, "startedAt");
                self.started_ns = self
                    .started_at
                    .as_deref()
                    .and_then(crux_view::time::parse_iso8601);
                self.started_ms = self.started_ns.map(|ns| ns.div_euclid(1_000_000));
            }
            "run:end" => {
                let status = str_of(v, "status").unwrap_or_else(|| "ok".to_owned());
                self.lifecycle = Some((status, true));
                self.duration_ms = v.get("durationMs").and_then(Value::as_f64);
                self.ended_ns = v.str("endedAt").and_then(crux_view::time::parse_iso8601);
            }
            "run:suspend" if !self.lifecycle.as_ref().is_some_and(|l| l.1) => {
                self.lifecycle = Some(("suspended".to_owned(), false));
            }
            "run:resume" if !self.lifecycle.as_ref().is_some_and(|l| l.1) => {
                self.lifecycle = Some(("running".to_owned(), false));
            }
            _ => {}
        }
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens (creating it, its directory and its tables if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(&path).map_err(sql(&path))?;
        let store = Store { conn, path };
        store.configure()?;
        let found: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(&store.path))?;
        if found > STORE_VERSION {
            return Err(StoreError::Version {
                path: store.path,
                found,
            });
        }
        if found == 1 {
            store
                .conn
                .execute_batch(&format!("BEGIN; {MIGRATE_1_TO_2} COMMIT;"))
                .map_err(sql(&store.path))?;
        }
        // Version 2 → 3: the full-text index without content, sizes or positions, rebuilt;
        // the run list's index covering what a listed run shows.
        let rebuild_search = (1..3).contains(&found);
        if rebuild_search {
            store
                .conn
                .execute_batch(
                    "DROP TABLE IF EXISTS search_text; DROP INDEX IF EXISTS runs_newest_first;",
                )
                .map_err(sql(&store.path))?;
        }
        store.conn.execute_batch(SCHEMA).map_err(sql(&store.path))?;
        if rebuild_search {
            backfill_search(&store.conn).map_err(sql(&store.path))?;
        }
        store
            .conn
            .execute_batch(&format!("PRAGMA user_version = {STORE_VERSION}"))
            .map_err(sql(&store.path))?;
        Ok(store)
    }

    /// Opens an existing store for reading only (the `crux` viewer commands).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql(&path))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql(&path))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(&path))?;
        if (1..STORE_VERSION).contains(&found) {
            // An older store: upgrade it once through a writing connection, then read.
            drop(conn);
            drop(Store::open(&path)?);
            return Store::open_read_only(path);
        }
        if found != STORE_VERSION {
            return Err(StoreError::Version { path, found });
        }
        Ok(Store { conn, path })
    }

    fn configure(&self) -> Result<(), StoreError> {
        self.conn
            .busy_timeout(Duration::from_secs(5))
            .map_err(sql(&self.path))?;
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 8192; \
                 PRAGMA foreign_keys = OFF;",
            )
            .map_err(sql(&self.path))
    }

    /// Leaves WAL checkpoints to another connection calling [`Store::checkpoint`]: this
    /// connection's commits then never copy pages into the database or wait for an
    /// fsync (with `synchronous = NORMAL` a WAL commit writes without one).
    pub fn without_checkpoints(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(sql(&self.path))
    }

    /// Copies what the WAL holds into the database as far as readers allow (a passive
    /// checkpoint: it never blocks the writer or readers).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(sql(&self.path))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a batch in one transaction: one result per record, in order. Records
    /// already stored with the same payload are accepted again without a second copy.
    pub fn ingest(
        &mut self,
        schema_version: u64,
        records: &[Value],
    ) -> Result<Vec<Result<(), Rejection>>, StoreError> {
        let mut read = Vec::with_capacity(records.len());
        let mut refused = Vec::new();
        for (i, value) in records.iter().enumerate() {
            match Incoming::new(value.clone()) {
                Ok(record) => read.push(record),
                Err(e) => refused.push((i, Rejection::unreadable(&e))),
            }
        }
        let stored = self
            .ingest_prepared(&[(schema_version, &read[..])])?
            .pop()
            .expect("one batch in, one out");
        Ok(with_refused(stored, refused))
    }

    /// Stores several batches of prepared records in one transaction (group commit: one
    /// commit's page writes shared by every batch waiting for the writer), one result list
    /// per batch. Either every batch is stored or, on an error, none.
    pub fn ingest_prepared(
        &mut self,
        batches: &[(u64, &[Incoming])],
    ) -> Result<Vec<Vec<Result<(), Rejection>>>, StoreError> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sql(&path))?;
        let mut out = Vec::with_capacity(batches.len());
        let mut runs: HashMap<String, RunDelta> = HashMap::new();
        // Segment → run, for the segments this transaction has looked up or added.
        let mut owners: HashMap<String, String> = HashMap::new();
        {
            let mut by_id = tx
                .prepare_cached("SELECT payload FROM records WHERE record_id = ?1")
                .map_err(sql(&path))?;
            let mut owner = tx
                .prepare_cached("SELECT run_id FROM segments WHERE segment_id = ?1")
                .map_err(sql(&path))?;
            let mut add_segment = tx
                .prepare_cached("INSERT INTO segments(segment_id, run_id) VALUES (?1, ?2)")
                .map_err(sql(&path))?;
            let mut index = tx
                .prepare_cached("INSERT INTO search_text(rowid, text) VALUES (?1, ?2)")
                .map_err(sql(&path))?;
            // A record whose id or (segment, seq) slot is taken is not inserted (the unique
            // indexes decide, in the same lookup the insert makes anyway); only then is
            // the stored record read to tell which.
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO records(record_id, run_id, segment_id, segment_seq, type, span_id, payload) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                )
                .map_err(sql(&path))?;
            let mut taken = |b: &Base<'_>, record: &Incoming, otherwise: Rejection| {
                let stored: Option<String> = by_id
                    .query_row([b.record_id], |r| r.get(0))
                    .optional()
                    .map_err(sql(&path))?;
                Ok::<_, StoreError>(match stored {
                    Some(stored)
                        if serde_json::from_str::<Value>(&stored)
                            .is_ok_and(|s| s == record.value()) =>
                    {
                        Ok(())
                    }
                    Some(_) => Err(Rejection::RecordIdConflict),
                    None => Err(otherwise),
                })
            };
            for &(schema_version, records) in batches {
                let mut results = Vec::with_capacity(records.len());
                for record in records {
                    let v = &record.fields;
                    let b = match base(v, schema_version) {
                        Ok(b) => b,
                        Err(r) => {
                            results.push(Err(r));
                            continue;
                        }
                    };
                    // Whether the segment is this record's run's (`None`: a new segment).
                    let cached = owners.get(b.segment_id).map(|run| run == b.run_id);
                    let known = match cached {
                        Some(ours) => Some(ours),
                        None => owner
                            .query_row([b.segment_id], |r| {
                                r.get::<_, String>(0).map(|run| run == b.run_id)
                            })
                            .optional()
                            .map_err(sql(&path))?,
                    };
                    if known == Some(false) {
                        results.push(taken(&b, record, Rejection::SegmentOwnership)?);
                        continue;
                    }
                    let inserted = insert
                        .execute(params![
                            b.record_id,
                            b.run_id,
                            b.segment_id,
                            b.segment_seq,
                            b.kind,
                            matches!(b.kind, "span:start" | "span")
                                .then(|| v.str("spanId"))
                                .flatten(),
                            record.text
                        ])
                        .map_err(sql(&path))?;
                    if inserted == 0 {
                        results.push(taken(&b, record, Rejection::SegmentSequence)?);
                        continue;
                    }
                    let seq = tx.last_insert_rowid();
                    if let Some(text) = &record.search {
                        index.execute(params![seq, text]).map_err(sql(&path))?;
                    }
                    if known.is_none() {
                        add_segment
                            .execute([b.segment_id, b.run_id])
                            .map_err(sql(&path))?;
                    }
                    if cached.is_none() {
                        owners.insert(b.segment_id.to_owned(), b.run_id.to_owned());
                    }
                    match runs.get_mut(b.run_id) {
                        Some(delta) => delta.apply(b.kind, v, seq),
                        None => runs
                            .entry(b.run_id.to_owned())
                            .or_default()
                            .apply(b.kind, v, seq),
                    }
                    results.push(Ok(()));
                }
                out.push(results);
            }
        }
        for (run_id, delta) in runs {
            merge_run(&tx, &run_id, delta).map_err(sql(&path))?;
        }
        tx.commit().map_err(sql(&path))?;
        Ok(out)
    }

    /// Keeps the maximum of each `sourceHealth` counter, for at most [`MAX_SOURCES`]
    /// sources.
    pub fn source_health(&mut self, health: &Value) -> Result<(), StoreError> {
        let Some(id) = health.get("sourceId").and_then(Value::as_str) else {
            return Ok(());
        };
        if id.is_empty() || id.len() > 128 {
            return Ok(());
        }
        let n = |k: &str| health.get(k).and_then(Value::as_i64).unwrap_or(0).max(0);
        let last_error = health
            .get("lastError")
            .and_then(Value::as_str)
            .map(|e| e.chars().take(1024).collect::<String>());
        let known: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sources", [], |r| r.get(0))
            .map_err(sql(&self.path))?;
        let exists: bool = self
            .conn
            .prepare_cached("SELECT 1 FROM sources WHERE source_id = ?1")
            .and_then(|mut s| s.exists([id]))
            .map_err(sql(&self.path))?;
        if !exists && known >= MAX_SOURCES {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "INSERT INTO sources VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT(source_id) DO UPDATE SET \
                 accepted = max(accepted, excluded.accepted), \
                 retried = max(retried, excluded.retried), \
                 permanently_rejected = max(permanently_rejected, excluded.permanently_rejected), \
                 overflow_dropped = max(overflow_dropped, excluded.overflow_dropped), \
                 deadline_dropped = max(deadline_dropped, excluded.deadline_dropped), \
                 last_error = coalesce(excluded.last_error, last_error)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    n("accepted"),
                    n("retried"),
                    n("permanentlyRejected"),
                    n("overflowDropped"),
                    n("deadlineDropped"),
                    last_error
                ])
            })
            .map_err(sql(&self.path))?;
        Ok(())
    }

    /// The sources' health, as stored (`sourceId`, the counters, `lastError`).
    pub fn sources(&self) -> Result<Vec<Value>, StoreError> {
        let mut s = self
            .conn
            .prepare("SELECT * FROM sources ORDER BY source_id")
            .map_err(sql(&self.path))?;
        let rows = s
            .query_map([], |r| {
                Ok(json!({
                    "sourceId": r.get::<_, String>(0)?,
                    "accepted": r.get::<_, i64>(1)?,
                    "retried": r.get::<_, i64>(2)?,
                    "permanentlyRejected": r.get::<_, i64>(3)?,
                    "overflowDropped": r.get::<_, i64>(4)?,
                    "deadlineDropped": r.get::<_, i64>(5)?,
                    "lastError": r.get::<_, Option<String>>(6)?,
                }))
            })
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// Up to `limit` runs, newest first (by start time; runs whose start has not arrived
    /// last).
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        self.query_runs(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_ms DESC, first_seq DESC LIMIT ?1"
            ),
            params![limit as i64],
        )
    }

    /// The runs `filter` keeps, newest first, at most `filter.limit`.
    pub fn runs_filtered(&self, filter: &RunFilter) -> Result<Vec<RunRow>, StoreError> {
        let Some(mut clauses) = Clauses::of(filter) else {
            return Ok(Vec::new());
        };
        let limit = clauses.bind(rusqlite::types::Value::Integer(filter.limit as i64));
        let query = format!(
            "SELECT {RUN_COLUMNS} FROM runs {} ORDER BY started_ms DESC, first_seq DESC LIMIT {limit}",
            clauses.where_sql()
        );
        self.query_runs(&query, rusqlite::params_from_iter(clauses.values))
    }

    /// The runs a search for `text` has to look into, among those `filter` keeps (its
    /// `limit` aside), newest first: those with a record whose searchable text (what
    /// `crux_view::search::record_texts` gives) may hold `text`, ignoring case, found in
    /// the full-text index. A text the index cannot look up (see [`index_query`]), or one
    /// that a placeholder name matches (which any run may show), rules out no run: then
    /// only the newest runs up to [`MAX_SCAN_RECORDS`] records are candidates, and
    /// [`Candidates::cut`] says when that left runs out.
    pub fn search_candidates(
        &self,
        filter: &RunFilter,
        text: &str,
    ) -> Result<Candidates, StoreError> {
        let Some(mut clauses) = Clauses::of(filter) else {
            return Ok(Candidates::default());
        };
        let indexed = (!crux_view::search::placeholder_matches(text))
            .then(|| index_query(text))
            .flatten();
        if let Some(query) = &indexed {
            clauses.push(
                "run_id IN (SELECT r.run_id FROM records r WHERE r.seq IN \
                 (SELECT rowid FROM search_text WHERE search_text MATCH ?))",
                rusqlite::types::Value::Text(query.clone()),
            );
        }
        let query = format!(
            "SELECT run_id, records FROM runs {} ORDER BY started_ms DESC, first_seq DESC",
            clauses.where_sql()
        );
        let mut s = self.conn.prepare_cached(&query).map_err(sql(&self.path))?;
        let mut rows = s
            .query(rusqlite::params_from_iter(clauses.values))
            .map_err(sql(&self.path))?;
        let mut found = Candidates::default();
        let mut budget = MAX_SCAN_RECORDS;
        while let Some(row) = rows.next().map_err(sql(&self.path))? {
            let (run_id, records): (String, i64) = (
                row.get(0).map_err(sql(&self.path))?,
                row.get(1).map_err(sql(&self.path))?,
            );
            if indexed.is_none() {
                // Without the index every run is read and built: bounded by records.
                let records = records.max(1) as u64;
                if records > budget && !found.runs.is_empty() {
                    found.cut = true;
                    break;
                }
                budget = budget.saturating_sub(records);
            }
            found.runs.push(run_id);
        }
        Ok(found)
    }

    /// The store's revision: grows with every stored record, so a reader polls it to know
    /// when to read again.
    pub fn revision(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT coalesce(max(seq), 0) FROM records", [], |r| {
                r.get(0)
            })
            .map_err(sql(&self.path))
    }

    /// Runs whose id is `query` or starts with it (or with `run_` + it), newest first.
    pub fn runs_matching(&self, query: &str) -> Result<Vec<RunRow>, StoreError> {
        let prefixed = format!("run_{query}");
        let upper = |p: &str| format!("{p}\u{10FFFF}");
        self.query_runs(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE (run_id >= ?1 AND run_id < ?2) OR (run_id >= ?3 AND run_id < ?4) \
             ORDER BY started_ms DESC, first_seq DESC LIMIT 50"),
            params![query, upper(query), prefixed, upper(&prefixed)],
        )
    }

    /// One run's row.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        Ok(self
            .query_runs(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
                params![run_id],
            )?
            .pop())
    }

    fn query_runs(
        &self,
        query: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<RunRow>, StoreError> {
        let mut s = self.conn.prepare_cached(query).map_err(sql(&self.path))?;
        let rows = s
            .query_map(params, |r| {
                // By position in RUN_COLUMNS (a name lookup per cell cost a third of a
                // long list's time).
                let count = |i: usize| r.get::<_, i64>(i).map(|n| n.max(0) as u64);
                Ok(RunRow {
                    run_id: r.get(0)?,
                    name: r.get(1)?,
                    root_primitive: r.get(2)?,
                    status: r.get(3)?,
                    started_at: r.get(4)?,
                    // As the viewer computes it: start to end when both are known (a
                    // resumed run's end record times only its last segment).
                    duration_ms: match (r.get::<_, Option<i64>>(5)?, r.get::<_, Option<i64>>(6)?) {
                        (Some(s), Some(e)) => Some(crux_view::time::millis_between(s, e)),
                        _ => r.get(7)?,
                    },
                    records: count(8)?,
                    session_id: r.get(9)?,
                    user_id: r.get(10)?,
                    model_calls: count(11)?,
                    input_tokens: count(12)?,
                    output_tokens: count(13)?,
                    total_tokens: count(14)?,
                })
            })
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// The records of `run_id` as stored (JSON text), in arrival order.
    pub fn run_records(&self, run_id: &str) -> Result<Vec<String>, StoreError> {
        self.texts(
            "SELECT payload FROM records WHERE run_id = ?1 ORDER BY seq",
            params![run_id],
        )
    }

    /// The records of `run_id` as stored, with their arrival numbers, in arrival order.
    pub fn run_records_numbered(&self, run_id: &str) -> Result<Vec<(i64, String)>, StoreError> {
        let mut s = self
            .conn
            .prepare_cached("SELECT seq, payload FROM records WHERE run_id = ?1 ORDER BY seq")
            .map_err(sql(&self.path))?;
        let rows = s
            .query_map(params![run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// The records that link runs and name them (`edge`, `run:start`) of every run, in
    /// arrival order: with a run's own records, what its links need to print.
    pub fn linking_records(&self) -> Result<Vec<String>, StoreError> {
        self.texts(
            "SELECT payload FROM records WHERE type IN ('edge', 'run:start') ORDER BY seq",
            [],
        )
    }

    /// The runs holding a span `span_id` (its `span:start` or `span` record).
    pub fn runs_of_span(&self, span_id: &str) -> Result<Vec<String>, StoreError> {
        self.texts(
            "SELECT DISTINCT run_id FROM records WHERE span_id = ?1",
            params![span_id],
        )
    }

    /// Every record (JSON text), in arrival order.
    pub fn all_records(&self) -> Result<Vec<String>, StoreError> {
        self.texts("SELECT payload FROM records ORDER BY seq", [])
    }

    /// Records stored.
    pub fn record_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sql(&self.path))
    }

    fn texts(&self, query: &str, params: impl rusqlite::Params) -> Result<Vec<String>, StoreError> {
        let mut s = self.conn.prepare_cached(query).map_err(sql(&self.path))?;
        let rows = s
            .query_map(params, |r| r.get::<_, String>(0))
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }
}

/// Fills the (new, empty) full-text index from the stored records (a store from before
/// it, or from before its present form).
fn backfill_search(conn: &Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut read = tx.prepare("SELECT seq, payload FROM records ORDER BY seq")?;
        let mut write = tx.prepare("INSERT INTO search_text(rowid, text) VALUES (?1, ?2)")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let (seq, payload): (i64, String) = (row.get(0)?, row.get(1)?);
            if let Some(text) = searchable(&payload) {
                write.execute(params![seq, text])?;
            }
        }
    }
    tx.commit()
}

fn merge_run(tx: &rusqlite::Transaction<'_>, run_id: &str, d: RunDelta) -> rusqlite::Result<()> {
    let old: Option<(String, bool, i64, i64)> = tx
        .prepare_cached("SELECT status, ended, records, first_seq FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let (status, ended, records, first_seq) = match (old, d.lifecycle) {
        (None, l) => {
            let (s, e) = l.unwrap_or(("running".to_owned(), false));
            (s, e, d.records as i64, d.first_seq)
        }
        (Some((s, true, n, f)), Some((_, false))) | (Some((s, true, n, f)), None) => {
            (s, true, n + d.records as i64, f)
        }
        (Some((s, e, n, f)), None) => (s, e, n + d.records as i64, f),
        (Some((_, _, n, f)), Some((s, e))) => (s, e, n + d.records as i64, f),
    };
    tx.prepare_cached(
        "INSERT INTO runs(run_id, name, root_primitive, status, ended, started_at, started_ms, \
         started_ns, ended_ns, duration_ms, session_id, user_id, records, first_seq, last_seq, \
         model_calls, input_tokens, output_tokens, total_tokens) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) \
         ON CONFLICT(run_id) DO UPDATE SET \
         name = coalesce(excluded.name, name), \
         root_primitive = coalesce(excluded.root_primitive, root_primitive), \
         status = excluded.status, ended = excluded.ended, \
         started_at = coalesce(excluded.started_at, started_at), \
         started_ms = coalesce(excluded.started_ms, started_ms), \
         started_ns = coalesce(excluded.started_ns, started_ns), \
         ended_ns = coalesce(excluded.ended_ns, ended_ns), \
         duration_ms = coalesce(excluded.duration_ms, duration_ms), \
         session_id = coalesce(session_id, excluded.session_id), \
         user_id = coalesce(user_id, excluded.user_id), \
         records = excluded.records, first_seq = excluded.first_seq, last_seq = excluded.last_seq, \
         model_calls = model_calls + excluded.model_calls, \
         input_tokens = input_tokens + excluded.input_tokens, \
         output_tokens = output_tokens + excluded.output_tokens, \
         total_tokens = total_tokens + excluded.total_tokens",
    )?
    .execute(params![
        run_id,
        d.name,
        d.root_primitive,
        status,
        ended,
        d.started_at,
        d.started_ms,
        d.started_ns,
        d.ended_ns,
        d.duration_ms,
        d.session_id,
        d.user_id,
        records,
        first_seq,
        d.last_seq,
        d.model_calls,
        d.input_tokens,
        d.output_tokens,
        d.total_tokens
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{RUN_COLUMNS, Store, index_query};

    /// The run list reads the covering index alone, in its order: no row lookups, no sort.
    #[test]
    fn the_run_list_is_one_range_of_a_covering_index() {
        let dir = std::env::temp_dir().join(format!("crux-store-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(dir.join("devtools.db")).unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT {RUN_COLUMNS} FROM runs \
                 ORDER BY started_ms DESC, first_seq DESC LIMIT 10000"
            ))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plan, ["SCAN runs USING COVERING INDEX runs_listed"]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_index_query_requires_each_ascii_trigram_of_the_text() {
        assert_eq!(index_query("ab"), None);
        assert_eq!(index_query("日本語"), None);
        assert_eq!(index_query("é aé"), None);
        assert_eq!(
            index_query("Draft").as_deref(),
            Some(r#""dra" AND "raf" AND "aft""#)
        );
        // Repeated trigrams once; a quote doubled inside the quoted string.
        assert_eq!(index_query("aaaa").as_deref(), Some(r#""aaa""#));
        assert_eq!(index_query(r#"a"b"#).as_deref(), Some(r#""a""b""#));
        // Only the runs of ASCII characters count.
        assert_eq!(
            index_query("café au").as_deref(),
            Some(r#""caf" AND " au""#)
        );
        // A long text: at most 16 of its trigrams.
        let long = "abcdefghijklmnopqrstuvwxyz0123456789";
        let query = index_query(long).unwrap();
        assert_eq!(query.matches(" AND ").count(), 15);
        assert!(query.starts_with(r#""abc""#));
    }
}
