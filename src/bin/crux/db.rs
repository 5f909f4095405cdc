//! `--db PATH` and `crux serve`: a devtools collector's SQLite database as a record source
//! (feature `devtools-collector`). The records read here go through the same decoder,
//! model and renderer as a JSON Lines store's.

use std::path::Path;

use crate::error::CliError;
use crux_view::model::Model;
use crux_view::view::{Hit, RunSummary};

#[cfg(feature = "devtools-collector")]
mod imp {
    use super::*;
    use crux_devtools::collector::{
        Collector, CollectorOptions, MAX_SCAN_RECORDS, RunFilter, RunRow, Store, views,
    };

    /// Most runs `crux runs --db` lists (newest first).
    pub const MAX_LISTED: usize = 10_000;

    fn open(path: &Path) -> Result<Store, CliError> {
        if !path.exists() {
            return Err(CliError::Database(format!(
                "no devtools database at {0}\nstart the collector with `crux serve --db {0}` and \
                 point processes at it with CRUX_DEVTOOLS_URL",
                path.display()
            )));
        }
        Store::open_read_only(path).map_err(|e| CliError::Database(e.to_string()))
    }

    fn db_error(e: impl std::fmt::Display) -> CliError {
        CliError::Database(e.to_string())
    }

    fn summary(row: RunRow) -> RunSummary {
        RunSummary {
            run_id: row.run_id,
            name: row.name.unwrap_or_else(|| "(no run:start)".to_owned()),
            root_primitive: row.root_primitive.unwrap_or_else(|| "?".to_owned()),
            status: row.status,
            duration_ms: row.duration_ms,
            started_at: row.started_at,
            records: row.records as usize,
        }
    }

    /// The newest runs (at most [`MAX_LISTED`]) started within `since_ms..=until_ms` (ms
    /// since the epoch), filtered in the query so that the limit counts only those.
    pub fn runs(
        path: &Path,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Result<Vec<RunSummary>, CliError> {
        let store = open(path)?;
        let rows = store
            .runs_filtered(&RunFilter {
                since_ms,
                until_ms,
                limit: MAX_LISTED,
                ..RunFilter::default()
            })
            .map_err(db_error)?;
        if rows.len() == MAX_LISTED {
            eprintln!("crux: note: the newest {MAX_LISTED} runs are listed");
        }
        Ok(rows.into_iter().map(summary).collect())
    }

    /// The run `query` names (`latest`, an id or a unique prefix): its id, and a model
    /// holding its records plus every run's `run:start` and `edge` records (its links).
    pub fn run_model(path: &Path, query: &str) -> Result<(String, Model), CliError> {
        let store = open(path)?;
        let rows = if query == "latest" {
            store.runs(1).map_err(db_error)?
        } else {
            let mut rows = store.runs_matching(query).map_err(db_error)?;
            if let Some(exact) = rows.iter().position(|r| r.run_id == query) {
                rows = vec![rows.swap_remove(exact)];
            }
            rows
        };
        let run_id = match &rows[..] {
            [] => {
                return Err(CliError::RunNotFound {
                    query: query.to_owned(),
                    store: path.to_path_buf(),
                });
            }
            [one] => one.run_id.clone(),
            _ => {
                return Err(CliError::AmbiguousRun {
                    query: query.to_owned(),
                    candidates: rows
                        .iter()
                        .map(|r| {
                            format!(
                                "{}  {:?}  started {}",
                                r.run_id,
                                r.name.as_deref().unwrap_or("(no run:start)"),
                                r.started_at.as_deref().unwrap_or("-")
                            )
                        })
                        .collect(),
                });
            }
        };
        let model = views::run_model(&store, &run_id).map_err(db_error)?;
        Ok((run_id, model))
    }

    /// Every match of `text` (`crux search --db`): only the runs the full-text index
    /// names are built. A text the index cannot look up (under 3 characters) is looked
    /// for in the newest runs only, with a note saying so.
    pub fn search(path: &Path, text: &str) -> Result<Vec<Hit>, CliError> {
        let store = open(path)?;
        let found =
            views::search(&store, text, &RunFilter::default(), usize::MAX).map_err(db_error)?;
        if found.truncated {
            eprintln!(
                "crux: note: {text:?} cannot be looked up in the full-text index (it needs 3 \
                 ASCII characters in a row): the newest runs, up to {MAX_SCAN_RECORDS} records, \
                 were searched"
            );
        }
        Ok(found.hits)
    }

    pub fn serve(listen: &str, db: &Path, token: Option<String>) -> Result<(), CliError> {
        let listen = listen.parse().map_err(|_| CliError::Usage {
            message: format!("--listen needs HOST:PORT such as 127.0.0.1:4400, got {listen:?}"),
            command: Some("serve"),
        })?;
        let token = token.or_else(|| std::env::var("CRUX_DEVTOOLS_TOKEN").ok());
        let collector = Collector::start(CollectorOptions {
            listen,
            db: db.to_path_buf(),
            token,
        })
        .map_err(|e| CliError::Serve(e.to_string()))?;
        eprintln!(
            "crux: collecting at {} into {}\n  point processes at it with CRUX_DEVTOOLS_URL={}\n  \
             open {}/ in a browser, or read it with `crux runs --db {}`",
            collector.url(),
            collector.db().display(),
            collector.url(),
            collector.url(),
            collector.db().display(),
        );
        collector.wait();
        Ok(())
    }
}

#[cfg(not(feature = "devtools-collector"))]
mod imp {
    use super::*;

    fn missing() -> CliError {
        CliError::NoCollector
    }
    pub fn runs(_: &Path, _: Option<i64>, _: Option<i64>) -> Result<Vec<RunSummary>, CliError> {
        Err(missing())
    }
    pub fn run_model(_: &Path, _: &str) -> Result<(String, Model), CliError> {
        Err(missing())
    }
    pub fn search(_: &Path, _: &str) -> Result<Vec<Hit>, CliError> {
        Err(missing())
    }
    pub fn serve(_: &str, _: &Path, _: Option<String>) -> Result<(), CliError> {
        Err(missing())
    }
}

pub use imp::{run_model, runs, search, serve};
