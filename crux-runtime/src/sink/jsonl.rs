use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Sink, SinkError};
use crate::record::Record;

/// An append-only JSON Lines file: one record a line, buffered, flushed on
/// [`Sink::flush`] (and when the observer's last handle drops).
///
/// Its calls reach the file through `write(2)`, which a full page cache, a hung disk or a
/// network file system can stall: it does not [write promptly](Sink::writes_promptly), so
/// it is written on the delivery thread only and a flush waits for that thread, bounded.
///
/// Flush the observer before the process exits (`observer.flush_blocking(FlushOptions::FINAL)`
/// or the action's final flush): the delivery thread does not outlive `main`.
///
/// ```no_run
/// let sink = crux_runtime::sink::JsonLines::open(crux_runtime::sink::JsonLines::default_path())?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct JsonLines {
    path: PathBuf,
    out: Mutex<BufWriter<File>>,
}

impl JsonLines {
    /// `.crux/records.jsonl`, relative to the working directory.
    pub fn default_path() -> PathBuf {
        PathBuf::from(".crux").join("records.jsonl")
    }

    /// Opens (creating it and its directory if needed) `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            out: Mutex::new(BufWriter::with_capacity(64 * 1024, file)),
        })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for JsonLines {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        for r in records {
            serde_json::to_writer(&mut *out, r).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), SinkError> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.flush()?;
        Ok(())
    }
}
