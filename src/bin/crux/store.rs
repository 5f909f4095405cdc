//! Reading a JSON Lines record store (`.crux/records.jsonl`) as a stream.
//!
//! A store is appended to by running programs, so it can hold a half-written last line or
//! records from a newer writer. Every unusable line becomes a warning with its line number
//! and the rest is still read; only a store that cannot be opened at all is an error.
//!
//! Nothing here holds the whole store. [`scan`] reads it once, handing each record to the
//! caller and keeping only what later passes need: the warnings, the lines it dropped as
//! duplicates and the length it read. [`reread`] then reads the same bytes again and keeps
//! the records of the runs the caller asks for, dropping what the first pass dropped.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crux_view::record::{Record, decode_line};

/// The store the examples write, relative to the working directory.
pub const DEFAULT_STORE: &str = ".crux/records.jsonl";

/// Line warnings kept to print, so that pointing `--store` at the wrong file neither
/// floods the terminal nor fills the memory.
pub const MAX_WARNINGS: usize = 20;

/// What the first pass over a store found besides its records.
#[derive(Debug, Default)]
pub struct Scan {
    /// The first [`MAX_WARNINGS`] skipped or suspicious lines, ready to print.
    pub warnings: Vec<String>,
    /// How many more there were.
    pub more_warnings: usize,
    /// Lines dropped as duplicates of an earlier `recordId`.
    duplicates: HashSet<usize>,
    /// Bytes read: later passes stop there, so lines appended meanwhile are not read.
    length: u64,
    /// How many records were handed out (duplicates not counted).
    pub records: usize,
}

impl Scan {
    fn warn(&mut self, text: impl FnOnce() -> String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(text());
        } else {
            self.more_warnings += 1;
        }
    }
}

fn open(path: &Path) -> Result<File, CliError> {
    File::open(path).map_err(|source| CliError::StoreUnreadable {
        path: PathBuf::from(path),
        missing: source.kind() == std::io::ErrorKind::NotFound,
        reason: source.to_string(),
    })
}

/// Each line of the store: its number, its bytes; stops at `limit` bytes.
fn lines(path: &Path, limit: u64, mut each: impl FnMut(usize, &[u8])) -> Result<u64, CliError> {
    let mut reader = BufReader::with_capacity(1 << 16, open(path)?.take(limit));
    let mut bytes = Vec::new();
    let mut length = 0;
    for number in 1.. {
        bytes.clear();
        let read =
            reader
                .read_until(b'\n', &mut bytes)
                .map_err(|source| CliError::StoreUnreadable {
                    path: PathBuf::from(path),
                    missing: false,
                    reason: format!("reading line {number}: {source}"),
                })?;
        if read == 0 {
            break;
        }
        length += read as u64;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        each(number, &bytes);
    }
    Ok(length)
}

/// A 128-bit digest of `text`: two 64-bit SipHashes with different prefixes.
fn wide_hash(text: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        text.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// Reads and decodes every line of the store at `path` once, handing each usable record
/// (exact duplicates removed, conflicting ones warned about, the first kept) and the
/// length of its line to `visit`.
///
/// The duplicate check keeps, per distinct `recordId`, a 128-bit hash of the id, the line
/// number and a 64-bit hash of the line: 32 bytes an entry (about 40 to 75 bytes per
/// record with the hash table's slack), never the records. Two different ids are taken for
/// one only if their 128-bit hashes collide.
pub fn scan(path: &Path, mut visit: impl FnMut(Record, u64)) -> Result<Scan, CliError> {
    let mut scan = Scan::default();
    // hash of recordId -> (first line, hash of that line's text): a re-delivered record is
    // written byte for byte the same, so the text decides duplicate versus conflict.
    let mut seen: HashMap<u128, (usize, u64)> = HashMap::new();
    let shown = path.display();
    scan.length = lines(path, u64::MAX, |number, bytes| {
        let Ok(text) = std::str::from_utf8(bytes) else {
            scan.warn(|| format!("{shown}:{number}: not UTF-8 text; line skipped"));
            return;
        };
        match decode_line(number, text) {
            Ok(None) => {}
            Ok(Some(record)) => {
                if let Some(id) = &record.record_id {
                    let mut hasher = DefaultHasher::new();
                    text.trim().hash(&mut hasher);
                    let digest = hasher.finish();
                    let key = wide_hash(id);
                    if let Some((first, earlier)) = seen.get(&key) {
                        if *earlier != digest {
                            scan.warn(|| {
                                format!(
                                    "{shown}:{number}: record {id} conflicts with line {first} \
                                     (same recordId, different content); the first one is kept"
                                )
                            });
                        }
                        scan.duplicates.insert(number);
                        return;
                    }
                    seen.insert(key, (number, digest));
                }
                scan.records += 1;
                visit(record, bytes.len() as u64 + 1);
            }
            Err(error) => scan.warn(|| format!("{shown}:{number}: {}; line skipped", error.0)),
        }
    })?;
    Ok(scan)
}

/// Reads the bytes [`scan`] read again and returns, in store order, the records whose run
/// `keep` accepts, minus the duplicates the scan dropped. Lines of other runs are only
/// parsed far enough to find their `runId`.
pub fn reread(
    path: &Path,
    scan: &Scan,
    mut keep: impl FnMut(&str) -> bool,
) -> Result<Vec<Record>, CliError> {
    #[derive(serde::Deserialize)]
    struct RunOf<'a> {
        #[serde(rename = "runId", borrow)]
        run_id: std::borrow::Cow<'a, str>,
    }
    let mut records = Vec::new();
    lines(path, scan.length, |number, bytes| {
        if scan.duplicates.contains(&number) {
            return;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        match serde_json::from_str::<RunOf>(text.trim()) {
            Ok(of) if keep(&of.run_id) => {}
            _ => return,
        }
        if let Ok(Some(record)) = decode_line(number, text) {
            records.push(record);
        }
    })?;
    Ok(records)
}
