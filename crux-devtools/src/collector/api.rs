//! The JSON API's read routes: runs (filtered), one run's records or view, search, the
//! revision, the sources.

use crux_view::fold::Folding;
use serde_json::{Value, json};

use super::query::{Query, QueryError};
use super::reply::Reply;
use super::store::{RunFilter, RunRow, Store, StoreError};
use super::views;
use super::{DEFAULT_RUNS_LIMIT, MAX_RUNS_LIMIT};

/// Most runs with a match one search builds (`GET /api/search`, `q=` of the run list).
pub const MAX_SEARCH_RUNS: usize = 200;

/// Whether `path` names a read route (for 405 on other methods).
pub(super) fn is_route(path: &str) -> bool {
    matches!(
        path,
        "/api/observability/records"
            | "/api/runs"
            | "/api/sources"
            | "/api/search"
            | "/api/revision"
    ) || path.starts_with("/api/runs/")
}

fn bad_query(e: QueryError) -> Reply {
    Reply::error(400, "invalid_query", e.to_string())
}

/// Answers `GET path?query`.
pub(super) fn get(store: &Store, path: &str, query: &Query) -> Result<Reply, StoreError> {
    match path {
        "/api/runs" => runs(store, query),
        "/api/search" => search(store, query),
        "/api/revision" => Ok(Reply::json(200, json!({ "revision": store.revision()? }))),
        "/api/sources" => Ok(Reply::json(200, json!({ "sources": store.sources()? }))),
        p if p.starts_with("/api/runs/") => {
            let rest = &p["/api/runs/".len()..];
            match rest.split_once('/') {
                None => run_records(store, rest),
                Some((run_id, "view")) => run_view(store, run_id, query),
                Some(_) => Ok(Reply::error(404, "not_found", format!("no route {p}"))),
            }
        }
        _ => Ok(Reply::error(404, "not_found", format!("no route {path}"))),
    }
}

fn runs(store: &Store, query: &Query) -> Result<Reply, StoreError> {
    let filter = match filter_of(query) {
        Ok(f) => f,
        Err(e) => return Ok(bad_query(e)),
    };
    let revision = store.revision()?;
    let (filter, truncated) = match query.text("q") {
        None => (filter, false),
        Some(text) => {
            // The filters choose the runs searched, so a match the filters keep is found
            // however many runs match the text alone.
            let found = views::search(store, text, &filter, filter.limit.min(MAX_SEARCH_RUNS))?;
            (
                RunFilter {
                    run_ids: Some(found.runs),
                    ..filter
                },
                found.truncated,
            )
        }
    };
    let runs: Vec<Value> = store
        .runs_filtered(&filter)?
        .iter()
        .map(RunRow::to_json)
        .collect();
    Ok(Reply::json(
        200,
        json!({ "runs": runs, "revision": revision, "searchTruncated": truncated }),
    ))
}

fn filter_of(query: &Query) -> Result<RunFilter, QueryError> {
    let owned = |name: &str| query.text(name).map(str::to_owned);
    Ok(RunFilter {
        status: owned("status"),
        name: owned("name"),
        since_ms: query.time_ms("since")?,
        until_ms: query.time_ms("until")?,
        session_id: owned("session"),
        user_id: owned("user"),
        run_ids: None,
        limit: query.count("limit", DEFAULT_RUNS_LIMIT, MAX_RUNS_LIMIT)?,
    })
}

fn not_found(run_id: &str) -> Reply {
    Reply::error(
        404,
        "run_not_found",
        format!("no run {run_id:?} in this collector"),
    )
}

fn run_records(store: &Store, run_id: &str) -> Result<Reply, StoreError> {
    let Some(run) = store.run(run_id)? else {
        return Ok(not_found(run_id));
    };
    let records: Vec<Value> = store
        .run_records(run_id)?
        .iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect();
    Ok(Reply::json(
        200,
        json!({ "run": run.to_json(), "records": records }),
    ))
}

fn run_view(store: &Store, run_id: &str, query: &Query) -> Result<Reply, StoreError> {
    let revision = store.revision()?;
    let Some(run) = store.run(run_id)? else {
        return Ok(not_found(run_id));
    };
    let folding = if query.flag("all") {
        Folding::All
    } else {
        Folding::Fold
    };
    let Some(view) = views::run_view(store, run_id, folding)? else {
        return Ok(not_found(run_id));
    };
    let view = serde_json::to_value(&view).expect("a view serializes");
    Ok(Reply::json(
        200,
        json!({ "run": run.to_json(), "view": view, "revision": revision }),
    ))
}

fn search(store: &Store, query: &Query) -> Result<Reply, StoreError> {
    let Some(text) = query.text("q") else {
        return Ok(Reply::error(
            400,
            "invalid_query",
            "query parameter `q`: the text to search for is missing",
        ));
    };
    let limit = match query.count("limit", MAX_SEARCH_RUNS, MAX_SEARCH_RUNS) {
        Ok(n) => n,
        Err(e) => return Ok(bad_query(e)),
    };
    let found = views::search(store, text, &RunFilter::default(), limit)?;
    let hits = serde_json::to_value(&found.hits).expect("hits serialize");
    Ok(Reply::json(
        200,
        json!({ "hits": hits, "runs": found.runs, "truncated": found.truncated }),
    ))
}
