//! The command line: `crux runs|show|search|serve|completions|help` and their options.
//!
//! Parsed by clap (derive); the help texts are written out below (`override_help`) so each
//! command's help reads as one page. Times given on the command line (`--since`,
//! `--until`) are parsed by jiff.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use jiff::Timestamp;

use crate::error::CliError;
use crate::store::DEFAULT_STORE;

/// What the user asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Text to print as is: `--help` in every spelling, `--version`.
    Print(String),
    Runs {
        common: Common,
        /// `--since TIME`: only runs started at or after it.
        since: Option<Timestamp>,
        /// `--until TIME`: only runs started before it.
        until: Option<Timestamp>,
    },
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
    /// `crux completions SHELL`: a completion script for the shell.
    Completions(Shell),
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

const COMMANDS: [&str; 5] = ["runs", "show", "search", "serve", "completions"];

/// `crux serve`'s defaults (the collector's).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4400";
/// The collector's database, relative to the working directory.
pub const DEFAULT_DB: &str = ".crux/devtools.db";

/// crux: read the Crux runs your programs recorded
#[derive(Debug, Parser)]
#[command(
    name = "crux",
    version,
    subcommand_required = true,
    arg_required_else_help = false,
    override_usage = "crux <COMMAND> [OPTIONS]",
    override_help = MAIN_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// List runs, newest first
    #[command(
        override_usage = "crux runs [--since TIME] [--until TIME] [--store PATH | --db PATH] [--json]",
        override_help = RUNS_HELP
    )]
    Runs {
        /// Only runs started at or after TIME
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<Timestamp>,
        /// Only runs started before TIME
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: Option<Timestamp>,
        #[command(flatten)]
        source: Source,
    },
    /// Print one run as a tree (RUN: a run id, a unique prefix, or `latest`)
    #[command(
        override_usage = "crux show RUN [--all] [--attributes] [--store PATH | --db PATH] [--json]",
        override_help = SHOW_HELP
    )]
    Show {
        /// A run id, a unique prefix of one, or `latest`
        #[arg(value_name = "RUN")]
        run: String,
        /// Show every span as recorded, boundaries and their events included
        #[arg(long)]
        all: bool,
        /// Also print attributes, metrics and artifacts
        #[arg(long)]
        attributes: bool,
        #[command(flatten)]
        source: Source,
    },
    /// Find spans and runs by name, primitive, attribute, event or error
    #[command(
        override_usage = "crux search TEXT [--store PATH | --db PATH] [--json]",
        override_help = SEARCH_HELP
    )]
    Search {
        /// The text to search for (quote text with spaces)
        #[arg(value_name = "TEXT", value_parser = search_text)]
        text: String,
        #[command(flatten)]
        source: Source,
    },
    /// Run the devtools collector: receive records from every process
    #[command(
        override_usage = "crux serve [--listen ADDR] [--db PATH] [--token TOKEN]",
        override_help = SERVE_HELP
    )]
    Serve {
        /// Address to listen on
        #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = non_empty)]
        listen: String,
        /// The SQLite database
        #[arg(long, value_name = "PATH", default_value = DEFAULT_DB, value_parser = non_empty_path)]
        db: PathBuf,
        /// Require `Authorization: Bearer TOKEN` on every request
        #[arg(long, value_name = "TOKEN", value_parser = non_empty)]
        token: Option<String>,
    },
    /// Print a completion script for a shell (bash, zsh, fish, powershell, elvish)
    #[command(override_usage = "crux completions SHELL")]
    Completions {
        /// The shell to complete for
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
}

/// `--store`/`--db`/`--json`: where `runs`, `show` and `search` read, and how they print.
#[derive(Debug, Args)]
struct Source {
    /// The record store to read
    #[arg(long, value_name = "PATH", default_value = DEFAULT_STORE, value_parser = non_empty_path)]
    store: PathBuf,
    /// Read a devtools collector's database instead
    #[arg(long, value_name = "PATH", conflicts_with = "store", value_parser = non_empty_path)]
    db: Option<PathBuf>,
    /// Machine-readable JSON on stdout
    #[arg(long)]
    json: bool,
}

impl From<Source> for Common {
    fn from(source: Source) -> Common {
        Common {
            store: source.store,
            db: source.db,
            json: source.json,
        }
    }
}

fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the value is empty".to_owned());
    }
    Ok(text.to_owned())
}

fn non_empty_path(text: &str) -> Result<PathBuf, String> {
    non_empty(text).map(PathBuf::from)
}

fn search_text(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the search TEXT is empty".to_owned());
    }
    Ok(text.to_owned())
}

/// A time on the command line: an RFC 3339 / ISO-8601 instant with its offset
/// (`2026-11-25T10:00:00Z`, `2026-11-25T11:00:00.5+01:00`), or a date (`2026-11-25`) for
/// its midnight UTC.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let instant = match text.parse::<Timestamp>() {
        Ok(instant) => return Ok(instant),
        Err(error) => error,
    };
    if text.len() == 10
        && let Ok(date) = text.parse::<jiff::civil::Date>()
    {
        return jiff::tz::TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|error| error.to_string());
    }
    Err(format!(
        "expected a time such as 2026-11-25T10:00:00Z (with Z or an offset) or a date such as \
         2026-11-25 ({instant})"
    ))
}

/// Parses the arguments after the program name.
pub fn parse<T: Into<OsString>>(args: impl IntoIterator<Item = T>) -> Result<Command, CliError> {
    let args: Vec<OsString> = std::iter::once(OsString::from("crux"))
        .chain(args.into_iter().map(Into::into))
        .collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(error) => {
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    Ok(Command::Print(error.render().to_string()))
                }
                _ => Err(usage(&error, &args)),
            };
        }
    };
    Ok(match cli.command {
        Sub::Runs {
            since,
            until,
            source,
        } => Command::Runs {
            common: source.into(),
            since,
            until,
        },
        Sub::Show {
            run,
            all,
            attributes,
            source,
        } => Command::Show {
            run,
            all,
            attributes,
            common: source.into(),
        },
        Sub::Search { text, source } => Command::Search {
            text,
            common: source.into(),
        },
        Sub::Serve { listen, db, token } => Command::Serve { listen, db, token },
        Sub::Completions { shell } => Command::Completions(shell),
    })
}

/// clap's message without its own "error: " and "For more information" lines: `main`
/// prints `crux: error:` and where the help is.
fn usage(error: &clap::Error, args: &[OsString]) -> CliError {
    let rendered = error.render().to_string();
    let text = rendered.strip_prefix("error: ").unwrap_or(&rendered);
    let message: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("For more information"))
        .collect();
    let command = args
        .iter()
        .skip(1)
        .find_map(|arg| COMMANDS.iter().copied().find(|c| arg.to_str() == Some(*c)));
    CliError::Usage {
        message: message.join("\n").trim_end().to_owned(),
        command,
    }
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "crux", &mut script);
    String::from_utf8_lossy(&script).into_owned()
}

const MAIN_HELP: &str = "\
crux: read the Crux runs your programs recorded

Usage: crux <COMMAND> [OPTIONS]

Commands:
  runs           List runs, newest first
  show RUN       Print one run as a tree (RUN: a run id, a unique prefix, or `latest`)
  search TEXT    Find spans and runs by name, primitive, attribute, event or error
  serve          Run the devtools collector: receive records from every process
  completions SHELL
                 Print a completion script (bash, zsh, fish, powershell, elvish)
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

Usage: crux runs [--since TIME] [--until TIME] [--store PATH | --db PATH] [--json]

Each row: run id, name, root primitive, status, duration, start time, record count.
Status is the run's end status (ok, error, cancelled, ...), `suspended` when its last
lifecycle record is a suspend, or `running` when it has not ended.

Options:
  --since TIME   Only runs started at or after TIME: 2026-11-25T10:00:00Z (Z or an offset
                 such as +01:00, fractions of a second allowed) or a date, 2026-11-25, for
                 its midnight UTC; runs without a start time are left out
  --until TIME   Only runs started before TIME (same forms)
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
  --since TIME   Only runs started at or after TIME: 2026-11-25T10:00:00Z (Z or an offset
                 such as +01:00, fractions of a second allowed) or a date, 2026-11-25, for
                 its midnight UTC; runs without a start time are left out
  --until TIME   Only runs started before TIME (same forms)
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
        parse(words.split_whitespace())
    }

    fn runs(common: Common) -> Command {
        Command::Runs {
            common,
            since: None,
            until: None,
        }
    }

    #[test]
    fn parses_each_command_with_its_options() {
        assert_eq!(
            parse_words("runs").unwrap(),
            runs(Common {
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
            runs(Common {
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
        assert_eq!(
            parse_words("completions zsh").unwrap(),
            Command::Completions(Shell::Zsh)
        );
    }

    #[test]
    fn since_and_until_take_instants_and_dates() {
        let Command::Runs { since, until, .. } =
            parse_words("runs --since 2026-11-25T11:00:00.5+01:00 --until=2026-11-26").unwrap()
        else {
            panic!("runs")
        };
        assert_eq!(
            since.unwrap(),
            "2026-11-25T10:00:00.5Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            until.unwrap(),
            "2026-11-26T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        for bad in [
            "yesterday",
            "2026-11-25T10:00:00",
            "2026-13-01",
            "2026-11-25T25:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn help_in_every_spelling() {
        let help = |words| match parse_words(words).unwrap() {
            Command::Print(text) => text,
            other => panic!("{words}: {other:?}"),
        };
        assert_eq!(help("--help"), help("help"));
        assert!(help("--help").contains("crux: read the Crux runs"));
        assert_eq!(help("help show"), help("show -h"));
        assert!(help("show --help").contains("Usage: crux show RUN"));
        assert!(help("search -h").contains("crux search: find records"));
        assert!(help("help completions").contains("SHELL"));
        assert_eq!(
            help("--version"),
            format!("crux {}\n", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn usage_errors_say_what_was_wrong() {
        let cases = [
            ("", "requires a subcommand"),
            ("list", "unrecognized subcommand 'list'"),
            ("runs --all", "unexpected argument '--all'"),
            ("show", "<RUN>"),
            ("show a b", "unexpected argument 'b'"),
            ("runs --store", "a value is required for '--store <PATH>'"),
            ("help nope", "unrecognized subcommand 'nope'"),
            ("search --json=1 x", "--json"),
            ("runs --store a --db b", "cannot be used with"),
            ("serve --json", "unexpected argument '--json'"),
            ("runs --listen x", "unexpected argument '--listen'"),
            ("serve x", "unexpected argument 'x'"),
            (
                "runs --since yesterday",
                "invalid value 'yesterday' for '--since <TIME>'",
            ),
            ("completions tcsh", "invalid value 'tcsh'"),
        ];
        for (words, expected) in cases {
            let error = parse_words(words).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{words}");
            assert!(error.to_string().contains(expected), "{words}: {error}");
            assert!(error.to_string().contains("for usage"), "{words}: {error}");
        }
        let error = parse(["search", " "]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error.to_string().contains("the search TEXT is empty"),
            "{error}"
        );
    }
}
