//! What can go wrong for the user of the `crux` command, and the exit code of each.

use std::fmt;
use std::path::PathBuf;

/// A failure the command reports on stderr before exiting.
#[derive(Debug)]
pub enum CliError {
    /// The command line was wrong; the message says how, `command` which help to read.
    Usage {
        message: String,
        command: Option<&'static str>,
    },
    /// The store file could not be opened or read.
    StoreUnreadable {
        path: PathBuf,
        missing: bool,
        reason: String,
    },
    /// No run matches what the user asked for.
    RunNotFound { query: String, store: PathBuf },
    /// A run id prefix matches more than one run.
    AmbiguousRun {
        query: String,
        candidates: Vec<String>,
    },
    /// Writing the output failed (other than a closed pipe).
    Output(std::io::Error),
    /// A devtools database could not be read.
    #[cfg_attr(not(feature = "devtools-collector"), allow(dead_code))]
    Database(String),
    /// The collector could not start.
    #[cfg_attr(not(feature = "devtools-collector"), allow(dead_code))]
    Serve(String),
    /// `serve` or `--db` in a binary built without the collector.
    #[cfg_attr(feature = "devtools-collector", allow(dead_code))]
    NoCollector,
}

impl CliError {
    /// 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage { .. } => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage { message, command } => {
                write!(f, "{message}")?;
                match command {
                    Some(command) => write!(f, "\nrun `crux help {command}` for usage"),
                    None => write!(f, "\nrun `crux --help` for usage"),
                }
            }
            CliError::StoreUnreadable {
                path,
                missing: true,
                ..
            } => write!(
                f,
                "no record store at {}\n\
                 crux programs (and `cargo run --example ...`) write their records to \
                 .crux/records.jsonl in the directory they run in; run one there first, \
                 or pass --store PATH",
                path.display()
            ),
            CliError::StoreUnreadable { path, reason, .. } => {
                write!(
                    f,
                    "cannot read the record store {}: {reason}",
                    path.display()
                )
            }
            CliError::RunNotFound { query, store } => write!(
                f,
                "no run matches {query:?} in {}\nrun `crux runs` to list the runs",
                store.display()
            ),
            CliError::AmbiguousRun { query, candidates } => {
                write!(f, "{query:?} matches {} runs:", candidates.len())?;
                for candidate in candidates {
                    write!(f, "\n  {candidate}")?;
                }
                write!(f, "\ngive more of the run id")
            }
            CliError::Output(source) => write!(f, "cannot write the output: {source}"),
            CliError::Database(reason) => write!(f, "{reason}"),
            CliError::Serve(reason) => write!(f, "cannot start the collector: {reason}"),
            CliError::NoCollector => write!(
                f,
                "this crux binary was built without the devtools collector (`crux serve`, --db); \
                 rebuild it with the feature: cargo run --features devtools-collector --bin crux -- ..."
            ),
        }
    }
}

impl std::error::Error for CliError {}
