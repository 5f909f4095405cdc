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
/// network file system can stall: by default it does not [write promptly](Sink::writes_promptly),
/// so it is written on the delivery thread only and a flush waits for that thread, bounded.
/// For a file on a local disk, [`prompt`](JsonLines::prompt) lets flushes write it on their
/// own thread instead: no hand-off per flush, which on a busy machine is what a server's
/// boundary flushes wait for most.
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
    out: Mutex<Out>,
    prompt: bool,
}

/// The longest line buffer a sink keeps between writes (a record's line is usually under
/// 1 KiB).
const LINE_KEPT: usize = 64 * 1024;

/// The file and the line being encoded, under one lock: the line's buffer is reused, so
/// encoding a record allocates nothing once it has grown to the longest line.
struct Out {
    file: BufWriter<File>,
    line: Vec<u8>,
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
            out: Mutex::new(Out {
                file: BufWriter::with_capacity(64 * 1024, file),
                line: Vec::new(),
            }),
            prompt: false,
        })
    }

    /// Declares the file prompt ([`Sink::writes_promptly`]): a flush then writes it on its
    /// own thread when every sink of the observer is prompt, instead of waking the
    /// delivery thread and waiting for it. For a file on a local disk.
    ///
    /// Each hand-off to the delivery thread costs two thread wake-ups, and a server makes
    /// about three flushes per `run_action` hop; on a machine whose cores are busy each
    /// wake-up waits for the scheduler (the README's "What delivery guarantees" has the
    /// served figures). The price: a `write(2)` that stalls (a full page cache, a hung
    /// disk, a network file system) blocks the flushing thread past the flush's bound, where
    /// the delivery thread would have kept the stall off the caller; an async flush runs
    /// the pass inside its `poll`, so that is an executor's worker thread and every task
    /// queued on it (other flushes stay bounded: the circuit breaker opens for them).
    ///
    /// ```no_run
    /// use crux_runtime::sink::JsonLines;
    /// let sink = JsonLines::open(JsonLines::default_path())?.prompt();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn prompt(mut self) -> Self {
        self.prompt = true;
        self
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Sink for JsonLines {
    fn write(&self, records: &[Record]) -> Result<(), SinkError> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let Out { file, line } = &mut *out;
        for r in records {
            // The serde writer's bytes, without its generic serializer: most of a record's
            // cost in this sink was serde_json's per-key and per-value machinery.
            line.clear();
            r.write_json(line);
            line.push(b'\n');
            file.write_all(line)?;
        }
        // One huge record (a large JSON attribute) does not keep its buffer for the
        // sink's life.
        if line.capacity() > LINE_KEPT {
            *line = Vec::new();
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), SinkError> {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.file.flush()?;
        Ok(())
    }

    /// `false` unless declared [`prompt`](JsonLines::prompt).
    fn writes_promptly(&self) -> bool {
        self.prompt
    }

    /// `true`: encoding a record and writing the file record nothing.
    fn records_nothing(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Attributes;
    use crate::clock::Timestamp;
    use crate::ids::{EventId, RunId, SegmentId, SpanId, TraceId};
    use crate::record::{Base, Body};

    fn event(name: String) -> Record {
        Record {
            base: Base {
                record_id: None,
                run_id: RunId([1; 12]),
                operation_id: RunId([1; 12]),
                segment_id: SegmentId([2; 12]),
                segment_seq: 2,
                trace_id: TraceId(3),
                extra: None,
            },
            body: Body::SpanEvent {
                span_id: SpanId(4),
                event_id: EventId(5),
                name: name.into(),
                timestamp: Timestamp::from_millis(1_767_323_045_678),
                attributes: Attributes::new().with("ratio", 0.1).with("q", "\"\n/é"),
            },
        }
    }

    #[test]
    fn each_line_is_the_serde_text_of_its_record_whatever_came_before() {
        let dir = std::env::temp_dir().join(format!("crux-jsonl-unit-{}", std::process::id()));
        let path = dir.join("records.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
        let sink = JsonLines::open(&path).unwrap();
        // Encoding and writing record nothing: a prompt file's flushes keep their context.
        assert!(sink.records_nothing());
        // A long line, then shorter ones, over two calls: the reused line buffer holds only
        // the record being written.
        let first = [event("x".repeat(5000)), event("a\tb".into())];
        let second = [event(String::new()), event("\u{1}".into())];
        sink.write(&first).unwrap();
        sink.write(&second).unwrap();
        sink.flush().unwrap();
        let mut expected = Vec::new();
        for r in first.iter().chain(&second) {
            serde_json::to_writer(&mut expected, r).unwrap();
            expected.push(b'\n');
        }
        let written = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn a_huge_record_does_not_leave_its_line_buffer_behind() {
        let dir = std::env::temp_dir().join(format!("crux-jsonl-huge-{}", std::process::id()));
        let sink = JsonLines::open(dir.join("records.jsonl")).unwrap();
        let line_room = |s: &JsonLines| s.out.lock().unwrap().line.capacity();
        sink.write(&[event("x".repeat(4 * LINE_KEPT))]).unwrap();
        assert!(line_room(&sink) <= LINE_KEPT, "{}", line_room(&sink));
        sink.write(&[event("y".repeat(100))]).unwrap();
        let kept = line_room(&sink);
        assert!(
            kept > 0 && kept <= LINE_KEPT,
            "a usual line's buffer is kept: {kept}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
