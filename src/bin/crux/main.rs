//! `crux`: the run viewer. Lists, prints and searches the Crux runs in a record store
//! (by default `.crux/records.jsonl`, which the examples write).
//!
//! This binary is the command line only: [`cli`] parses it, [`store`] reads the store's
//! lines, and the `crux-view` library decodes them (`record`), builds runs and span trees
//! (`model`), folds (`fold`) or searches (`search`) them into views, and prints them
//! (`render`, or serde for `--json`).

mod cli;
mod db;
mod error;
mod store;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use cli::{Command, Common};
use crux_view::digest::{Digests, Related, RunDigest, RunOrder};
use crux_view::fold::{self, Folding};
use crux_view::model::{self, Model};
use crux_view::view::{Hit, RunSummary};
use crux_view::{render, search};
use error::CliError;
use store::Scan;

fn main() -> ExitCode {
    let result = cli::parse(std::env::args_os().skip(1)).and_then(run);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crux: error: {error}");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Print(text) => emit(&text),
        Command::Completions(shell) => emit(&cli::completions(shell)),
        Command::Serve { listen, db, token } => db::serve(&listen, &db, token),
        Command::Runs {
            common,
            since,
            until,
        } => {
            let mut runs: Vec<RunSummary> = match &common.db {
                // The database filters by time in its query (to the millisecond, rounded
                // outwards; `retain` below keeps the exact bounds), so that the newest
                // runs listed are the newest of those within the bounds.
                Some(db) => db::runs(
                    db,
                    since.map(|t| t.as_nanosecond().div_euclid(1_000_000) as i64),
                    until.map(|t| (t.as_nanosecond() + 999_999).div_euclid(1_000_000) as i64),
                )?,
                None => {
                    let mut digests = Digests::default();
                    let scan = store::scan(&common.store, |record, bytes| {
                        digests.add(&record, bytes);
                    })?;
                    warn(&scan, &common.store);
                    stats(&scan);
                    summaries(&common.store, &scan, &digests)?
                        .into_iter()
                        .map(|(summary, _)| summary)
                        .collect()
                }
            };
            if since.is_some() || until.is_some() {
                runs.retain(|run| started_within(run, since, until));
            }
            if common.json {
                emit_json(&runs)
            } else {
                emit(&render::runs_text(
                    &runs,
                    &common.source().display().to_string(),
                ))
            }
        }
        Command::Show {
            run,
            all,
            attributes,
            common,
        } => {
            let (run_id, model) = match &common.db {
                Some(db) => db::run_model(db, &run)?,
                None => {
                    let mut digests = Digests::default();
                    let mut related = Related::default();
                    let scan = store::scan(&common.store, |record, bytes| {
                        let index = digests.add(&record, bytes);
                        related.add(index, &record);
                    })?;
                    warn(&scan, &common.store);
                    let listed = summaries(&common.store, &scan, &digests)?;
                    let run_id = resolve(&listed, &run, &common)?.run_id.clone();
                    let index = digests.index_of(&run_id).expect("a listed run has records");
                    let needed: HashSet<&str> = related
                        .closure(&digests, index)
                        .into_iter()
                        .map(|i| digests.runs()[i as usize].run_id.as_str())
                        .collect();
                    let records = store::reread(&common.store, &scan, |id| needed.contains(id))?;
                    held(records.len());
                    stats(&scan);
                    (run_id, model::build(records))
                }
            };
            let found = model
                .runs
                .iter()
                .find(|r| r.run_id == run_id)
                .ok_or_else(|| CliError::RunNotFound {
                    query: run.clone(),
                    store: common.db.clone().unwrap_or_else(|| common.store.clone()),
                })?;
            let folding = if all { Folding::All } else { Folding::Fold };
            let view = fold::view(found, folding);
            if common.json {
                emit_json(&view)
            } else {
                emit(&render::run_text(&view, attributes))
            }
        }
        Command::Search { text, common } => {
            let hits: Vec<Hit> = match &common.db {
                Some(db) => db::search(db, &text)?,
                None => {
                    let mut digests = Digests::default();
                    let mut candidates = HashSet::new();
                    let every_run = search::placeholder_matches(&text);
                    let scan = store::scan(&common.store, |record, bytes| {
                        let index = digests.add(&record, bytes);
                        if every_run || search::record_may_match(&record, &text) {
                            candidates.insert(index);
                        }
                    })?;
                    warn(&scan, &common.store);
                    let mut found: Vec<(RunOrder, Vec<Hit>)> = Vec::new();
                    let wanted: Vec<&RunDigest> = digests
                        .runs()
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| candidates.contains(&(*i as u32)))
                        .map(|(_, d)| d)
                        .collect();
                    in_batches(&common.store, &scan, &wanted, |model| {
                        for run in &model.runs {
                            let hits = search::search_run(run, &text);
                            if !hits.is_empty() {
                                found.push(((run.first_at, run.first_line()), hits));
                            }
                        }
                    })?;
                    stats(&scan);
                    found.sort_by_key(|(order, _)| std::cmp::Reverse(*order));
                    found.into_iter().flat_map(|(_, hits)| hits).collect()
                }
            };
            if common.json {
                emit_json(&hits)
            } else {
                emit(&render::search_text(&hits, &text))
            }
        }
    }
}

/// Reports the store's skipped lines on stderr.
fn warn(scan: &Scan, path: &Path) {
    for warning in &scan.warnings {
        eprintln!("crux: warning: {warning}");
    }
    if scan.more_warnings > 0 {
        eprintln!(
            "crux: warning: {} more lines of {} were skipped or conflicting",
            scan.more_warnings,
            path.display()
        );
    }
}

/// With `CRUX_DEBUG_STATS` set, says on stderr how many records the command read and the
/// most it held at once: the streaming reader's promise, checked by `tests/viewer_scale.rs`.
fn stats(scan: &Scan) {
    if std::env::var_os("CRUX_DEBUG_STATS").is_some() {
        eprintln!(
            "crux: stats: records read {}, records held at most {}",
            scan.records,
            HELD.load(Ordering::Relaxed)
        );
    }
}

/// The most decoded records held at once by this command.
static HELD: AtomicUsize = AtomicUsize::new(0);

fn held(records: usize) {
    HELD.fetch_max(records, Ordering::Relaxed);
}

/// Line bytes of records one batch of [`in_batches`] holds at most (a single run larger
/// than this is one batch of its own).
const BATCH_BYTES: u64 = 32 << 20;

/// Builds the runs of `wanted` from their records alone, a batch of runs at a time: each
/// batch is one more pass over the store, holding at most [`BATCH_BYTES`] of records.
fn in_batches(
    path: &Path,
    scan: &Scan,
    wanted: &[&RunDigest],
    mut each: impl FnMut(Model),
) -> Result<(), CliError> {
    let mut rest = wanted;
    while !rest.is_empty() {
        let mut bytes = 0;
        let take = rest
            .iter()
            .take_while(|d| {
                bytes += d.bytes;
                bytes <= BATCH_BYTES
            })
            .count()
            .max(1);
        let batch: HashSet<&str> = rest[..take].iter().map(|d| d.run_id.as_str()).collect();
        rest = &rest[take..];
        let records = store::reread(path, scan, |id| batch.contains(id))?;
        held(records.len());
        each(model::build(records));
    }
    Ok(())
}

/// Whether `run` started in `[since, until)`; a run without a readable start time is not.
fn started_within(
    run: &RunSummary,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
) -> bool {
    let Some(started) = run
        .started_at
        .as_deref()
        .and_then(|text| text.parse::<jiff::Timestamp>().ok())
    else {
        return false;
    };
    since.is_none_or(|since| started >= since) && until.is_none_or(|until| started < until)
}

/// Every run's line of `crux runs`, newest first: from its digest, or (for the few runs
/// whose digest cannot decide) from the run built from its own records.
fn summaries(
    path: &Path,
    scan: &Scan,
    digests: &Digests,
) -> Result<Vec<(RunSummary, RunOrder)>, CliError> {
    let mut listed = Vec::with_capacity(digests.runs().len());
    let mut undecided = Vec::new();
    for digest in digests.runs() {
        match digest.summary() {
            Some(line) => listed.push(line),
            None => undecided.push(digest),
        }
    }
    in_batches(path, scan, &undecided, |model| {
        listed.extend(
            model
                .runs
                .iter()
                .map(|run| (RunSummary::of(run), (run.first_at, run.first_line()))),
        );
    })?;
    listed.sort_by_key(|(_, order)| std::cmp::Reverse(*order));
    Ok(listed)
}

/// Finds the run named by `query`: `latest`, a full id, or a unique prefix (with or
/// without the `run_` part).
fn resolve<'m>(
    runs: &'m [(RunSummary, RunOrder)],
    query: &str,
    common: &Common,
) -> Result<&'m RunSummary, CliError> {
    let not_found = || CliError::RunNotFound {
        query: query.to_owned(),
        store: common.source().to_path_buf(),
    };
    let mut runs = runs.iter().map(|(summary, _)| summary);
    if query == "latest" {
        return runs.next().ok_or_else(not_found);
    }
    if let Some(exact) = runs.clone().find(|r| r.run_id == query) {
        return Ok(exact);
    }
    let prefixed = format!("run_{query}");
    let candidates: Vec<&RunSummary> = runs
        .filter(|r| r.run_id.starts_with(query) || r.run_id.starts_with(&prefixed))
        .collect();
    match candidates[..] {
        [] => Err(not_found()),
        [one] => Ok(one),
        _ => Err(CliError::AmbiguousRun {
            query: query.to_owned(),
            candidates: candidates
                .iter()
                .map(|r| {
                    format!(
                        "{}  {:?}  started {}",
                        r.run_id,
                        r.name,
                        r.started_at.as_deref().unwrap_or("-")
                    )
                })
                .collect(),
        }),
    }
}

fn emit_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Output(std::io::Error::other(e)))?;
    text.push('\n');
    emit(&text)
}

/// Writes to stdout; a reader that went away (`crux runs | head`) is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}
