//! WAL checkpoints off the ingest path: a thread with its own connection copies the WAL
//! into the database every [`INTERVAL`], so that no request waits for a checkpoint's
//! page copies and fsyncs. (When the writer checkpointed inline, the commit crossing the
//! threshold held every queued request behind the checkpoint's fsyncs; on a disk shared
//! with busy builds that can pass the sink's 5 s request timeout, which resends a whole
//! request of 50 records: the likely source of the 150 retries, 3 requests, the ingest
//! bench once showed.)

use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use super::lock;
use super::store::{Store, StoreError};

/// How often the WAL is checkpointed.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The checkpoint thread; [`Checkpointer::stop`] ends it after a last checkpoint.
pub(super) struct Checkpointer {
    stop: Mutex<Option<Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Opens a connection to `db` and starts checkpointing.
    pub(super) fn start(db: &Path) -> Result<Checkpointer, StoreError> {
        let store = Store::open(db)?;
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("crux-collector-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    // A failed checkpoint is retried at the next tick; the WAL only grows
                    // meanwhile.
                    let _ = store.checkpoint();
                }
                let _ = store.checkpoint();
            })
            .expect("spawn the collector's checkpoint thread");
        Ok(Checkpointer {
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread after a last checkpoint.
    pub(super) fn stop(&self) {
        drop(lock(&self.stop).take());
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}
