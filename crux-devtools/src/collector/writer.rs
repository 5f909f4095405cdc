//! The one writer: a thread owning the writing connection, storing the batches that
//! request threads hand it. Batches waiting together are stored in one transaction (group
//! commit), so concurrent requests share a commit's page writes; each request is answered
//! only after the commit that holds its batch.

use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::Value;

use super::incoming::Incoming;
use super::lock;
use super::store::{Rejection, Store, StoreError};

/// Most records one transaction takes from waiting batches.
const GROUP_RECORDS: usize = 2_000;

/// A stored batch's results, or why the store failed.
pub(super) type Outcome = Result<Vec<Result<(), Rejection>>, Arc<StoreError>>;

struct Job {
    schema_version: u64,
    records: Vec<Incoming>,
    health: Option<Value>,
    /// The outcome, and the records back: they are freed on the request's thread, not
    /// on the one writer.
    done: SyncSender<(Outcome, Vec<Incoming>)>,
}

/// The handle request threads send batches through.
pub(super) struct Writer {
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer thread on `store`.
    pub(super) fn start(store: Store) -> Writer {
        let (jobs, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("crux-collector-writer".into())
            .spawn(move || run(store, &rx))
            .expect("spawn the collector's writer");
        Writer {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Stores a batch (and keeps its `sourceHealth`); returns once it is committed.
    pub(super) fn ingest(
        &self,
        schema_version: u64,
        records: Vec<Incoming>,
        health: Option<Value>,
    ) -> Outcome {
        let (done, wait) = sync_channel(1);
        let job = Job {
            schema_version,
            records,
            health,
            done,
        };
        let sent = lock(&self.jobs).as_ref().map(|j| j.send(job).is_ok());
        match (sent, wait.recv()) {
            (Some(true), Ok((outcome, _records))) => outcome,
            _ => Err(Arc::new(StoreError::Closed)),
        }
    }

    /// Stops taking batches and waits for the thread to store what it holds.
    pub(super) fn close(&self) {
        drop(lock(&self.jobs).take());
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

fn run(mut store: Store, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        let mut records = group[0].records.len();
        while records < GROUP_RECORDS {
            match jobs.try_recv() {
                Ok(job) => {
                    records += job.records.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let batches: Vec<(u64, &[Incoming])> = group
            .iter()
            .map(|j| (j.schema_version, &j.records[..]))
            .collect();
        let stored = store.ingest_prepared(&batches).map_err(Arc::new);
        for job in &group {
            if let Some(health) = &job.health {
                // Health is advisory: a failure to keep it never fails the records.
                let _ = store.source_health(health);
            }
        }
        match stored {
            Ok(results) => {
                for (job, results) in group.into_iter().zip(results) {
                    let _ = job.done.send((Ok(results), job.records));
                }
            }
            Err(e) => {
                for job in group {
                    let _ = job.done.send((Err(Arc::clone(&e)), job.records));
                }
            }
        }
    }
}
