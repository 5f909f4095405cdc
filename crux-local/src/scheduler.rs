//! Scheduled functions: `ctx.scheduler` (raw, like Convex's) and the job table behind it.
//!
//! Jobs run on tokio timers when due, or all at once through
//! [`Deployment::finish_scheduled`](super::Deployment::finish_scheduled). A job scheduled by
//! a mutation is enqueued only when that mutation commits.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::deployment::{Deployment, Inner};
use super::dispatch::Caller;
use super::store::{Id, Staged, Transaction, lock};
use crux_runtime::function::Function;
use crux_runtime::ids::SpanId;
use crux_runtime::{Error, ErrorKind, FunctionKind, Result};

/// The system table scheduled job ids point into.
pub(crate) const SCHEDULED_TABLE: &str = "_scheduled_functions";

/// Where a scheduled job stands, as in Convex's `_scheduled_functions` table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting to run.
    Pending,
    /// Running now.
    InProgress,
    /// Ran and returned `Ok`.
    Success,
    /// Ran and returned an error (its message).
    Failed(String),
    /// Canceled before it started.
    Canceled,
}

/// A job to run: the function's path and its JSON args (with `__crux` when observed).
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub(crate) id: Id,
    pub(crate) path: &'static str,
    pub(crate) args: Value,
    pub(crate) due: Instant,
    /// The schedule span that enqueued a detached job, for the `triggered` link.
    pub(crate) link: Option<SpanId>,
}

#[derive(Debug)]
struct Entry {
    job: Job,
    state: JobState,
}

/// The deployment's job table.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    entries: Mutex<BTreeMap<Id, Entry>>,
    /// Jobs that reached a final state, oldest first, so the table stays bounded.
    settled: Mutex<VecDeque<Id>>,
    changed: Notify,
}

/// How many finished or canceled jobs keep their state (Convex keeps them for 7 days).
const SETTLED_JOBS_KEPT: usize = 10_000;

impl Jobs {
    pub(crate) fn state(&self, id: &Id) -> Option<JobState> {
        lock(&self.entries).get(id).map(|e| e.state.clone())
    }

    fn insert(&self, job: Job) {
        lock(&self.entries).insert(
            job.id.clone(),
            Entry {
                job,
                state: JobState::Pending,
            },
        );
    }

    /// Marks a pending job as running and returns it; `None` if it is no longer pending.
    fn claim(&self, id: &Id) -> Option<Job> {
        let mut entries = lock(&self.entries);
        let entry = entries.get_mut(id)?;
        if entry.state != JobState::Pending {
            return None;
        }
        entry.state = JobState::InProgress;
        Some(entry.job.clone())
    }

    /// The pending job due first, claimed.
    fn claim_earliest(&self) -> Option<Job> {
        let id = lock(&self.entries)
            .values()
            .filter(|e| e.state == JobState::Pending)
            .min_by_key(|e| (e.job.due, e.job.id.clone()))
            .map(|e| e.job.id.clone())?;
        self.claim(&id)
    }

    fn any_in_progress(&self) -> bool {
        lock(&self.entries)
            .values()
            .any(|e| e.state == JobState::InProgress)
    }

    fn finish(&self, id: &Id, state: JobState) {
        if let Some(entry) = lock(&self.entries).get_mut(id) {
            entry.state = state;
        }
        self.settle(id);
        self.changed.notify_waiters();
    }

    /// Remembers that `id` reached a final state, forgetting the oldest settled job once
    /// more than [`SETTLED_JOBS_KEPT`] are kept.
    fn settle(&self, id: &Id) {
        let forgotten = {
            let mut settled = lock(&self.settled);
            settled.push_back(id.clone());
            if settled.len() > SETTLED_JOBS_KEPT {
                settled.pop_front()
            } else {
                None
            }
        };
        if let Some(old) = forgotten {
            lock(&self.entries).remove(&old);
        }
    }

    /// Cancels a pending job; true if it was pending.
    fn cancel(&self, id: &Id) -> bool {
        match lock(&self.entries).get_mut(id) {
            Some(entry) if entry.state == JobState::Pending => {
                entry.state = JobState::Canceled;
            }
            _ => return false,
        }
        self.settle(id);
        true
    }
}

impl Deployment {
    /// Starts the jobs a committed mutation staged.
    pub(crate) fn enqueue_staged(&self, staged: Vec<Staged>) {
        // Only the scheduler stages work, so every item is a job.
        let jobs = staged
            .into_iter()
            .filter_map(|staged| staged.work.downcast::<Job>().ok())
            .map(|job| *job);
        self.enqueue(jobs);
    }

    /// Enqueues committed jobs and arms their timers (when a tokio runtime is running).
    pub(crate) fn enqueue(&self, jobs: impl IntoIterator<Item = Job>) {
        for job in jobs {
            let (id, due) = (job.id.clone(), job.due);
            self.inner.jobs.insert(job);
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                continue;
            };
            let weak: Weak<Inner> = Arc::downgrade(&self.inner);
            runtime.spawn(async move {
                tokio::time::sleep_until(due).await;
                if let Some(inner) = weak.upgrade() {
                    Deployment { inner }.run_job(&id).await;
                }
            });
        }
    }

    /// Runs one job if it is still pending.
    async fn run_job(&self, id: &Id) {
        if let Some(job) = self.inner.jobs.claim(id) {
            self.execute_job(job).await;
        }
    }

    async fn execute_job(&self, job: Job) {
        let outcome = self
            .dispatch(job.path, job.args, Caller::Scheduler(job.link))
            .await;
        let state = match outcome {
            Ok(_) => JobState::Success,
            Err(err) => JobState::Failed(err.message().to_owned()),
        };
        self.inner.jobs.finish(&job.id, state);
    }

    /// Runs scheduled work until none is left, earliest first, without waiting for delays
    /// (work scheduled by that work runs too), and waits for jobs already running on timers.
    /// Returns how many jobs it ran; stops after [`Deployment::MAX_DRAINED_JOBS`] so that
    /// work rescheduling itself forever cannot hang a test.
    pub async fn finish_scheduled(&self) -> usize {
        let mut ran = 0;
        while ran < Self::MAX_DRAINED_JOBS {
            let changed = self.inner.jobs.changed.notified();
            if let Some(job) = self.inner.jobs.claim_earliest() {
                self.execute_job(job).await;
                ran += 1;
            } else if self.inner.jobs.any_in_progress() {
                changed.await;
            } else {
                break;
            }
        }
        ran
    }

    /// The state of a scheduled job, if the id names one (the newest 10 000 finished or
    /// canceled jobs are remembered).
    pub fn job_state(&self, id: &Id) -> Option<JobState> {
        self.inner.jobs.state(id)
    }

    /// Checks the target and makes the job; `args` already carries any `__crux`.
    pub(crate) fn schedule_json(
        &self,
        txn: Option<&Arc<Transaction>>,
        path: &'static str,
        args: Value,
        delay: Duration,
        link: Option<SpanId>,
    ) -> Result<Id> {
        let Some(entry) = self.inner.registry.get(path) else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("Could not find function for '{path}'"),
            ));
        };
        if entry.metadata.kind == FunctionKind::Query {
            return Err(Error::msg(format!(
                "cannot schedule query '{path}': only mutations and actions can be scheduled"
            )));
        }
        let job = Job {
            id: self.inner.store.next_id(SCHEDULED_TABLE),
            path,
            args,
            due: due_after(delay),
            link,
        };
        let id = job.id.clone();
        match txn {
            Some(txn) => txn.stage(Staged {
                id: id.clone(),
                work: Box::new(job),
            })?,
            None => self.enqueue([job]),
        }
        Ok(id)
    }

    pub(crate) fn cancel_job(&self, txn: Option<&Arc<Transaction>>, id: &Id) -> Result<()> {
        if txn.is_some_and(|txn| txn.unstage(id)) || self.inner.jobs.cancel(id) {
            return Ok(());
        }
        match self.inner.jobs.state(id) {
            Some(_) => Ok(()), // already running or finished: Convex lets it be
            None => Err(Error::msg(format!("`{id}` is not a scheduled job"))),
        }
    }
}

/// The delay until `when`, zero if it has passed.
/// When a job delayed by `delay` is due; saturating, so `Duration::MAX` ("only if someone
/// runs `finish_scheduled`") is about a century away instead of an overflow panic. On
/// tokio's clock, which tests may pause.
fn due_after(delay: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(delay)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

pub(crate) fn delay_until(when: SystemTime) -> Duration {
    when.duration_since(SystemTime::now()).unwrap_or_default()
}

/// Implemented by the contexts of functions that can be scheduled (actions and mutations;
/// Convex rejects scheduled queries).
#[diagnostic::on_unimplemented(
    message = "`{Self}` functions cannot be scheduled",
    note = "only mutations and actions can be scheduled"
)]
pub trait Schedulable {}

impl Schedulable for super::ActionCtx {}
impl Schedulable for super::MutationCtx {}

/// `ctx.scheduler`: schedules functions without any Crux link (like Convex's scheduler).
/// In a mutation, scheduling is part of the transaction.
#[derive(Clone, Debug)]
pub struct Scheduler {
    deployment: Deployment,
    txn: Option<Arc<Transaction>>,
}

impl Scheduler {
    pub(crate) fn new(deployment: Deployment, txn: Option<Arc<Transaction>>) -> Self {
        Self { deployment, txn }
    }

    /// Runs `f(args)` after `delay`; returns the job id.
    pub async fn run_after<F>(&self, delay: Duration, f: F, args: F::Args) -> Result<Id>
    where
        F: Function,
        F::Context: Schedulable,
    {
        let _ = f;
        let args = super::dispatch::to_json_args(&args)?;
        self.deployment
            .schedule_json(self.txn.as_ref(), F::path(), args, delay, None)
    }

    /// Runs `f(args)` at `when` (right away if it has passed); returns the job id.
    pub async fn run_at<F>(&self, when: SystemTime, f: F, args: F::Args) -> Result<Id>
    where
        F: Function,
        F::Context: Schedulable,
    {
        self.run_after(delay_until(when), f, args).await
    }

    /// Cancels a job that has not started; a running or finished job is left alone.
    pub async fn cancel(&self, id: &Id) -> Result<()> {
        self.deployment.cancel_job(self.txn.as_ref(), id)
    }
}
