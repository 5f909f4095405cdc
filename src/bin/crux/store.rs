//! Reading a JSON Lines record store (`.crux/records.jsonl`).
//!
//! A store is appended to by running programs, so it can hold a half-written last line or
//! records from a newer writer. Every unusable line becomes a warning with its line number
//! and the rest is still read; only a store that cannot be opened at all is an error.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crux_view::record::{Record, decode_line};

/// The store the examples write, relative to the working directory.
pub const DEFAULT_STORE: &str = ".crux/records.jsonl";

/// Everything usable in a store, plus what was skipped and why.
#[derive(Debug, Default)]
pub struct Store {
    /// Decoded records in file order, exact duplicates removed.
    pub records: Vec<Record>,
    /// One line per skipped or suspicious line, ready to print.
    pub warnings: Vec<String>,
}

/// Reads and decodes every line of the store at `path`.
pub fn read_store(path: &Path) -> Result<Store, CliError> {
    let file = File::open(path).map_err(|source| CliError::StoreUnreadable {
        path: PathBuf::from(path),
        missing: source.kind() == std::io::ErrorKind::NotFound,
        reason: source.to_string(),
    })?;
    let mut store = Store::default();
    // recordId -> (first line, hash of that line's text): a re-delivered record is written
    // byte for byte the same, so the text decides duplicate versus conflict.
    let mut seen: HashMap<String, (usize, u64)> = HashMap::new();
    let shown = path.display();
    for (index, line) in BufReader::new(file).split(b'\n').enumerate() {
        let number = index + 1;
        let bytes = line.map_err(|source| CliError::StoreUnreadable {
            path: PathBuf::from(path),
            missing: false,
            reason: format!("reading line {number}: {source}"),
        })?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            store
                .warnings
                .push(format!("{shown}:{number}: not UTF-8 text; line skipped"));
            continue;
        };
        match decode_line(number, text) {
            Ok(None) => {}
            Ok(Some(record)) => {
                if let Some(id) = &record.record_id {
                    let mut hasher = DefaultHasher::new();
                    text.trim().hash(&mut hasher);
                    let digest = hasher.finish();
                    if let Some((first, earlier)) = seen.get(id) {
                        if *earlier != digest {
                            store.warnings.push(format!(
                                "{shown}:{number}: record {id} conflicts with line {first} \
                                 (same recordId, different content); the first one is kept"
                            ));
                        }
                        continue;
                    }
                    seen.insert(id.clone(), (number, digest));
                }
                store.records.push(record);
            }
            Err(error) => store
                .warnings
                .push(format!("{shown}:{number}: {}; line skipped", error.0)),
        }
    }
    Ok(store)
}
