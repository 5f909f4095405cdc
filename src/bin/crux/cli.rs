//! The command line: `crux runs|show|search|help` and their options.
//!
//! Hand-rolled rather than clap to keep the build of the `crux` package lean; the grammar
//! is three subcommands with a handful of flags.

use std::path::PathBuf;

use crate::error::CliError;
use crate::store::DEFAULT_STORE;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `crux --help`, `crux help [CMD]`, `crux CMD --help`.
    Help(Option<&'static str>),
    /// `crux --version`.
    Version,
    Runs(Common),
    Show {
        run: String,
        all: bool,
        attributes: bool,
        common: Common,
    },
    Search {
        text: String,
        common: Common,
    },
    /// `crux serve`: the devtools collector.
    Serve {
        listen: String,
        db: PathBuf,
        token: Option<String>,
    },
}

/// Options every data command takes.
#[derive(Debug, PartialEq, Eq)]
pub struct Common {
    pub store: PathBuf,
    /// `--db PATH`: read a devtools collector's database instead of the JSON Lines store.
    pub db: Option<PathBuf>,
    pub json: bool,
}

impl Common {
    /// The file read: the database when `--db` is given, else the JSON Lines store.
    pub fn source(&self) -> &std::path::Path {
        self.db.as_deref().unwrap_or(&self.store)
    }
}

const COMMANDS: [&str; 4] = ["runs", "show", "search", "serve"];

/// `crux serve`'s defaults (the collector's).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4400";
/// The collector's database, relative to the working directory.
pub const DEFAULT_DB: &str = ".crux/devtools.db";

/// Parses the arguments after the program name.
pub fn parse(args: Vec<String>) -> Result<Command, CliError> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(usage(
            "no command given (expected runs, show, search or serve)",
            None,
        ));
    };
    let command: &'static str = match first.as_str() {
        "-h" | "--help" => return Ok(Command::Help(None)),
        "-V" | "--version" => return Ok(Command::Version),
        "help" => {
            let topic = args.next();
            if let Some(extra) = args.next() {
                return Err(usage(&format!("unexpected argument {extra:?}"), None));
            }
            return match topic {
                None => Ok(Command::Help(None)),
                Some(topic) => match COMMANDS.iter().find(|c| **c == topic) {
                    Some(c) => Ok(Command::Help(Some(c))),
                    None => Err(usage(
                        &format!("no help for unknown command {topic:?}"),
                        None,
                    )),
                },
            };
        }
        other => match COMMANDS.iter().find(|c| **c == other) {
            Some(c) => c,
            None if other.starts_with('-') => {
                return Err(usage(
                    &format!("unknown option {other:?} before the command"),
                    None,
                ));
            }
            None => return Err(usage(&format!("unknown command {other:?}"), None)),
        },
    };
    let mut store = PathBuf::from(DEFAULT_STORE);
    let mut store_given = false;
    let mut db: Option<PathBuf> = None;
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut token: Option<String> = None;
    let (mut json, mut all, mut attributes) = (false, false, false);
    let mut positional = Vec::new();
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        if only_positional || !arg.starts_with('-') || arg == "-" {
            positional.push(arg);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        match flag {
            "--" => only_positional = true,
            "-h" | "--help" => return Ok(Command::Help(Some(command))),
            "--store" if command != "serve" => {
                store = PathBuf::from(value(flag, "PATH", inline, &mut args, command)?);
                store_given = true;
            }
            "--db" => {
                db = Some(PathBuf::from(value(
                    flag, "PATH", inline, &mut args, command,
                )?))
            }
            "--listen" if command == "serve" => {
                listen = value(flag, "ADDR", inline, &mut args, command)?;
            }
            "--token" if command == "serve" => {
                token = Some(value(flag, "TOKEN", inline, &mut args, command)?);
            }
            "--json" if inline.is_none() && command != "serve" => json = true,
            "--all" if inline.is_none() && command == "show" => all = true,
            "--attributes" if inline.is_none() && command == "show" => attributes = true,
            _ => {
                return Err(usage(
                    &format!("unknown option {arg:?} for `crux {command}`"),
                    Some(command),
                ));
            }
        }
    }
    if store_given && db.is_some() {
        return Err(usage(
            "give either --store PATH (a JSON Lines file) or --db PATH (a collector's database)",
            Some(command),
        ));
    }
    if command == "serve" {
        if let Some(extra) = positional.first() {
            return Err(usage(
                &format!("`crux serve` takes no arguments, got {extra:?}"),
                Some(command),
            ));
        }
        return Ok(Command::Serve {
            listen,
            db: db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB)),
            token,
        });
    }
    let common = Common { store, db, json };
    match command {
        "runs" => {
            if let Some(extra) = positional.first() {
                return Err(usage(
                    &format!("`crux runs` takes no arguments, got {extra:?}"),
                    Some(command),
                ));
            }
            Ok(Command::Runs(common))
        }
        "show" => {
            let run = one(
                positional,
                "RUN (a run id, a unique prefix, or `latest`)",
                command,
            )?;
            Ok(Command::Show {
                run,
                all,
                attributes,
                common,
            })
        }
        _ => {
            let text = one(positional, "TEXT to search for", command)?;
            if text.trim().is_empty() {
                return Err(usage("the search TEXT is empty", Some(command)));
            }
            Ok(Command::Search { text, common })
        }
    }
}

/// The value of `--flag VALUE` or `--flag=VALUE`, non-empty.
fn value(
    flag: &str,
    what: &str,
    inline: Option<String>,
    args: &mut impl Iterator<Item = String>,
    command: &'static str,
) -> Result<String, CliError> {
    let value = match inline {
        Some(value) => value,
        None => args.next().ok_or_else(|| {
            usage(
                &format!("{flag} needs a {} ({flag} {what})", what.to_lowercase()),
                Some(command),
            )
        })?,
    };
    if value.is_empty() {
        return Err(usage(
            &format!("{flag} needs a non-empty {}", what.to_lowercase()),
            Some(command),
        ));
    }
    Ok(value)
}

fn one(positional: Vec<String>, what: &str, command: &'static str) -> Result<String, CliError> {
    let mut values = positional.into_iter();
    let Some(value) = values.next() else {
        return Err(usage(
            &format!("`crux {command}` needs a {what}"),
            Some(command),
        ));
    };
    if let Some(extra) = values.next() {
        return Err(usage(
            &format!(
                "`crux {command}` takes one {what}; unexpected {extra:?} (quote text with spaces)"
            ),
            Some(command),
        ));
    }
    Ok(value)
}

fn usage(message: &str, command: Option<&'static str>) -> CliError {
    CliError::Usage {
        message: message.to_owned(),
        command,
    }
}

/// The help text for `crux --help` or `crux help CMD`.
pub fn help_text(topic: Option<&str>) -> &'static str {
    match topic {
        Some("runs") => RUNS_HELP,
        Some("show") => SHOW_HELP,
        Some("search") => SEARCH_HELP,
        Some("serve") => SERVE_HELP,
        _ => MAIN_HELP,
    }
}

const MAIN_HELP: &str = "\
crux: read the Crux runs your programs recorded

Usage: crux <COMMAND> [OPTIONS]

Commands:
  runs           List runs, newest first
  show RUN       Print one run as a tree (RUN: a run id, a unique prefix, or `latest`)
  search TEXT    Find spans and runs by name, primitive, attribute, event or error
  serve          Run the devtools collector: receive records from every process
  help [CMD]     Print this help or a command's help

Options for runs, show and search:
  --store PATH   The record store to read [default: .crux/records.jsonl]
  --db PATH      Read a devtools collector's database instead (e.g. .crux/devtools.db)
  --json         Machine-readable JSON on stdout
  -h, --help     Print help
  -V, --version  Print the version

Exit status: 0 on success, 1 when the store or the run is not found, 2 for usage errors.
Unreadable lines are reported on stderr with their line number and skipped.
";

const RUNS_HELP: &str = "\
crux runs: list the runs in a store, newest first

Usage: crux runs [--store PATH | --db PATH] [--json]

Each row: run id, name, root primitive, status, duration, start time, record count.
Status is the run's end status (ok, error, cancelled, ...), `suspended` when its last
lifecycle record is a suspend, or `running` when it has not ended.

Options:
  --store PATH   The record store to read [default: .crux/records.jsonl]
  --db PATH      Read a devtools collector's database instead
  --json         An array of {runId, name, rootPrimitive, status, durationMs, startedAt, records}
";

const SHOW_HELP: &str = "\
crux show: print one run as a tree

Usage: crux show RUN [--all] [--attributes] [--store PATH | --db PATH] [--json]

RUN is a run id, a unique prefix of one (an ambiguous prefix lists the candidates), or
`latest` for the most recently started run.

Each span shows its name, primitive, status, duration, error and events. A Convex hop
(a runtime.convex.* span with at most one child) is folded by default: its child work
takes its place, marked `↳ via runtime.convex.action \"label\" → module:function`, and a
hop with no child is one compact line marked (folded). Scheduled runs show their link
(↪ in the scheduling run, ↩ in the scheduled one).

Options:
  --all          Show every span as recorded, boundaries and their events included
  --attributes   Also print attributes, metrics and artifacts
  --store PATH   The record store to read [default: .crux/records.jsonl]
  --db PATH      Read a devtools collector's database instead
  --json         The run and its span tree as JSON (attributes always included)
";

const SEARCH_HELP: &str = "\
crux search: find records in every run

Usage: crux search TEXT [--store PATH | --db PATH] [--json]

Matches TEXT, ignoring case, against run and span names, primitives, attribute values,
event names and error messages, folded boundaries included. Each match says its run
and the path of spans down to it.

Options:
  --store PATH   The record store to read [default: .crux/records.jsonl]
  --db PATH      Read a devtools collector's database instead
  --json         An array of {runId, runName, spanId, spanPath, folded, field, key, value}
";

const SERVE_HELP: &str = "\
crux serve: run the devtools collector

Usage: crux serve [--listen ADDR] [--db PATH] [--token TOKEN]

Receives records from every process that has CRUX_DEVTOOLS_URL=http://ADDR (crux programs
built with the `devtools` feature, or TypeScript Crux apps) over the Crux devtools ingest
contract (POST /api/observability/records), stores them in SQLite, and answers
GET /api/runs and GET /api/runs/RUN_ID. Read the runs with `crux runs --db PATH`.
This command needs a crux binary built with the `devtools-collector` feature.

Options:
  --listen ADDR  Address to listen on [default: 127.0.0.1:4400]; a non-loopback address
                 needs a token
  --db PATH      The SQLite database [default: .crux/devtools.db]
  --token TOKEN  Require `Authorization: Bearer TOKEN` on every request
                 [default: CRUX_DEVTOOLS_TOKEN when set]
";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<Command, CliError> {
        parse(words.split_whitespace().map(str::to_owned).collect())
    }

    #[test]
    fn parses_each_command_with_its_options() {
        assert_eq!(
            parse_words("runs").unwrap(),
            Command::Runs(Common {
                store: PathBuf::from(DEFAULT_STORE),
                db: None,
                json: false
            })
        );
        assert_eq!(
            parse_words("show run_ab --all --store=x.jsonl --attributes --json").unwrap(),
            Command::Show {
                run: "run_ab".to_owned(),
                all: true,
                attributes: true,
                common: Common {
                    store: PathBuf::from("x.jsonl"),
                    db: None,
                    json: true
                }
            }
        );
        assert_eq!(
            parse_words("search --store s -- --json").unwrap(),
            Command::Search {
                text: "--json".to_owned(),
                common: Common {
                    store: PathBuf::from("s"),
                    db: None,
                    json: false
                }
            }
        );
        assert_eq!(
            parse_words("runs --db d.db").unwrap(),
            Command::Runs(Common {
                store: PathBuf::from(DEFAULT_STORE),
                db: Some(PathBuf::from("d.db")),
                json: false
            })
        );
        assert_eq!(
            parse_words("serve").unwrap(),
            Command::Serve {
                listen: DEFAULT_LISTEN.to_owned(),
                db: PathBuf::from(DEFAULT_DB),
                token: None
            }
        );
        assert_eq!(
            parse_words("serve --listen 127.0.0.1:0 --db=x.db --token t").unwrap(),
            Command::Serve {
                listen: "127.0.0.1:0".to_owned(),
                db: PathBuf::from("x.db"),
                token: Some("t".to_owned())
            }
        );
    }

    #[test]
    fn help_in_every_spelling() {
        assert_eq!(parse_words("--help").unwrap(), Command::Help(None));
        assert_eq!(parse_words("help").unwrap(), Command::Help(None));
        assert_eq!(
            parse_words("help show").unwrap(),
            Command::Help(Some("show"))
        );
        assert_eq!(
            parse_words("search -h").unwrap(),
            Command::Help(Some("search"))
        );
        assert!(help_text(Some("show")).contains("crux show RUN"));
    }

    #[test]
    fn usage_errors_say_what_was_wrong() {
        let cases = [
            ("", "no command given"),
            ("list", "unknown command \"list\""),
            ("runs --all", "unknown option \"--all\" for `crux runs`"),
            ("show", "needs a RUN"),
            ("show a b", "unexpected \"b\""),
            ("runs --store", "--store needs a path"),
            ("help nope", "unknown command \"nope\""),
            ("search --json=1 x", "unknown option \"--json=1\""),
            ("runs --store a --db b", "either --store PATH"),
            ("serve --json", "unknown option \"--json\""),
            ("runs --listen x", "unknown option \"--listen\""),
            ("serve x", "takes no arguments"),
        ];
        for (words, expected) in cases {
            let error = parse_words(words).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{words}");
            assert!(error.to_string().contains(expected), "{words}: {error}");
        }
    }
}
