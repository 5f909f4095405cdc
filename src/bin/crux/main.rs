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

use cli::{Command, Common};
use crux_view::fold::{self, Folding};
use crux_view::model::{self, Model, Run};
use crux_view::view::RunSummary;
use crux_view::{render, search};
use error::CliError;

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|arg| arg.into_string())
        .collect();
    let result = match args {
        Ok(args) => cli::parse(args).and_then(run),
        Err(arg) => Err(CliError::Usage {
            message: format!("argument {arg:?} is not valid UTF-8"),
            command: None,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crux: error: {error}");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

/// Line warnings printed before summarizing, so that pointing `--store` at the wrong file
/// does not flood the terminal.
const MAX_WARNINGS: usize = 20;

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Help(topic) => emit(cli::help_text(topic)),
        Command::Version => emit(&format!("crux {}\n", env!("CARGO_PKG_VERSION"))),
        Command::Serve { listen, db, token } => db::serve(&listen, &db, token),
        Command::Runs(common) => {
            let runs: Vec<RunSummary> = match &common.db {
                Some(db) => db::runs(db)?,
                None => load(&common.store)?
                    .runs
                    .iter()
                    .map(RunSummary::of)
                    .collect(),
            };
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
            let (model, query) = match &common.db {
                Some(db) => {
                    let (id, model) = db::run_model(db, &run)?;
                    (model, id)
                }
                None => (load(&common.store)?, run),
            };
            let found = resolve(&model, &query, &common)?;
            let folding = if all { Folding::All } else { Folding::Fold };
            let view = fold::view(found, folding);
            if common.json {
                emit_json(&view)
            } else {
                emit(&render::run_text(&view, attributes))
            }
        }
        Command::Search { text, common } => {
            let model = match &common.db {
                Some(db) => db::all(db)?,
                None => load(&common.store)?,
            };
            let hits = search::search(&model, &text);
            if common.json {
                emit_json(&hits)
            } else {
                emit(&render::search_text(&hits, &text))
            }
        }
    }
}

/// Reads the store, reports its skipped lines on stderr, and builds the runs.
fn load(path: &Path) -> Result<Model, CliError> {
    let store = store::read_store(path)?;
    for warning in store.warnings.iter().take(MAX_WARNINGS) {
        eprintln!("crux: warning: {warning}");
    }
    if store.warnings.len() > MAX_WARNINGS {
        eprintln!(
            "crux: warning: {} more lines of {} were skipped or conflicting",
            store.warnings.len() - MAX_WARNINGS,
            path.display()
        );
    }
    Ok(model::build(store.records))
}

/// Finds the run named by `query`: `latest`, a full id, or a unique prefix (with or
/// without the `run_` part).
fn resolve<'m>(model: &'m Model, query: &str, common: &Common) -> Result<&'m Run, CliError> {
    let not_found = || CliError::RunNotFound {
        query: query.to_owned(),
        store: common.source().to_path_buf(),
    };
    if query == "latest" {
        return model.runs.first().ok_or_else(not_found);
    }
    if let Some(exact) = model.runs.iter().find(|r| r.run_id == query) {
        return Ok(exact);
    }
    let prefixed = format!("run_{query}");
    let candidates: Vec<&Run> = model
        .runs
        .iter()
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
                        r.name(),
                        r.started_at().unwrap_or("-")
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
