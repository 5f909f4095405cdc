//! Scheduled functions: `ctx.scheduler` (raw, like Convex's) and the job table behind it.
//!
//! Jobs run when due, on one timer task per deployment, or all at once through
//! [`Deployment::finish_scheduled`](super::Deployment::finish_scheduled); with
//! [`DeploymentBuilder::manual_scheduling`](super::DeploymentBuilder::manual_scheduling)
//! there is no timer and only the drain runs them. A job scheduled by
//! a mutation is enqueued only when that mutation commits, and a cancel made by a mutation
//! takes effect only then. A job that panics fails; it never stays in progress.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::deployment::{Deployment, Inner};
use super::dispatch::Caller;
use super::store::{Id, Staged, Transaction, lock};
use crux_runtime::boundary::CatchPanic;
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
    /// Ran and returned an error, panicked or was interrupted (the message says which).
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

/// Staged by a cancel inside a mutation: applied when the mutation commits.
#[derive(Debug)]
struct Cancel;

/// Where pending jobs wait: due time, then scheduling order.
type QueueKey = (Instant, u64);

#[derive(Debug)]
struct Entry {
    state: JobState,
    key: QueueKey,
    /// The job while it is pending; dropped once it is claimed or canceled.
    job: Option<Job>,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<Id, Entry>,
    /// Pending jobs, earliest first.
    queue: BTreeMap<QueueKey, Id>,
    next_seq: u64,
    in_progress: usize,
    /// How many jobs ran to an end (succeeded or failed) so far.
    finished: u64,
    /// Jobs that reached a final state, oldest first, so the table stays bounded.
    settled: VecDeque<Id>,
}

impl Table {
    /// Marks the first queued job as running and returns it, if `due` accepts its due time.
    fn claim_first(&mut self, due: impl FnOnce(Instant) -> bool) -> Option<Job> {
        let entry = self.queue.first_entry()?;
        if !due(entry.key().0) {
            return None;
        }
        let id = entry.remove();
        let entry = self.entries.get_mut(&id)?;
        entry.state = JobState::InProgress;
        self.in_progress += 1;
        entry.job.take()
    }

    /// Remembers that `id` reached a final state, forgetting the oldest settled job once
    /// more than [`SETTLED_JOBS_KEPT`] are kept.
    fn settle(&mut self, id: &Id) {
        self.settled.push_back(id.clone());
        if self.settled.len() > SETTLED_JOBS_KEPT
            && let Some(old) = self.settled.pop_front()
        {
            self.entries.remove(&old);
        }
    }
}

/// The deployment's job table and its timer.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    table: Mutex<Table>,
    /// Wakes `finish_scheduled` waiting for running jobs.
    changed: Notify,
    /// Wakes the timer when a job is queued.
    rearm: Arc<Notify>,
    /// The timer task, while one runs.
    timer: Mutex<Option<AbortHandle>>,
    /// No timer: jobs run only in `finish_scheduled`.
    manual: bool,
}

/// How many finished or canceled jobs keep their state (Convex keeps them for 7 days).
const SETTLED_JOBS_KEPT: usize = 10_000;

impl Jobs {
    /// An empty job table; `manual`: no timer, only `finish_scheduled` runs jobs.
    pub(crate) fn new(manual: bool) -> Jobs {
        Jobs {
            table: Mutex::default(),
            changed: Notify::new(),
            rearm: Arc::default(),
            timer: Mutex::default(),
            manual,
        }
    }

    fn finished(&self) -> u64 {
        lock(&self.table).finished
    }

    pub(crate) fn state(&self, id: &Id) -> Option<JobState> {
        lock(&self.table).entries.get(id).map(|e| e.state.clone())
    }

    fn insert(&self, job: Job) {
        {
            let mut table = lock(&self.table);
            let key = (job.due, table.next_seq);
            table.next_seq += 1;
            table.queue.insert(key, job.id.clone());
            table.entries.insert(
                job.id.clone(),
                Entry {
                    state: JobState::Pending,
                    key,
                    job: Some(job),
                },
            );
        }
        self.rearm.notify_one();
    }

    /// The pending job due first, claimed.
    fn claim_earliest(&self) -> Option<Job> {
        lock(&self.table).claim_first(|_| true)
    }

    /// A pending job due by `now`, claimed.
    fn claim_due(&self, now: Instant) -> Option<Job> {
        lock(&self.table).claim_first(|due| due <= now)
    }

    fn next_due(&self) -> Option<Instant> {
        lock(&self.table)
            .queue
            .first_key_value()
            .map(|(key, _)| key.0)
    }

    fn any_in_progress(&self) -> bool {
        lock(&self.table).in_progress > 0
    }

    fn finish(&self, id: &Id, state: JobState) {
        {
            let mut table = lock(&self.table);
            if let Some(entry) = table.entries.get_mut(id) {
                entry.state = state;
            }
            table.in_progress = table.in_progress.saturating_sub(1);
            table.finished += 1;
            table.settle(id);
        }
        self.changed.notify_waiters();
    }

    /// Cancels a pending job, dropping it and its place in the queue; true if it was
    /// pending.
    fn cancel(&self, id: &Id) -> bool {
        let mut table = lock(&self.table);
        let Some(entry) = table.entries.get_mut(id) else {
            return false;
        };
        if entry.state != JobState::Pending {
            return false;
        }
        entry.state = JobState::Canceled;
        entry.job = None;
        let key = entry.key;
        table.queue.remove(&key);
        table.settle(id);
        true
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        if let Some(timer) = lock(&self.timer).take() {
            timer.abort();
        }
    }
}

/// Marks a claimed job failed if it is dropped before it finishes (its future was dropped:
/// the runtime shut down or a caller of `finish_scheduled` gave up), so no job stays in
/// progress forever.
struct Running<'a> {
    jobs: &'a Jobs,
    id: Option<Id>,
}

impl Running<'_> {
    fn finish(mut self, state: JobState) {
        if let Some(id) = self.id.take() {
            self.jobs.finish(&id, state);
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let message = "the job was interrupted before it finished (its task was dropped)";
            self.jobs.finish(&id, JobState::Failed(message.to_owned()));
        }
    }
}

/// The deployment's timer: runs due jobs, each on its own task, then sleeps until the next
/// is due or a job is queued. Holds the deployment weakly; it ends with it.
async fn run_timer(weak: Weak<Inner>, rearm: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = weak.upgrade() else { return };
            let now = Instant::now();
            while let Some(job) = inner.jobs.claim_due(now) {
                let deployment = Deployment {
                    inner: inner.clone(),
                };
                tokio::spawn(async move { deployment.execute_job(job).await });
            }
            inner.jobs.next_due()
        };
        match next {
            Some(due) => {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = rearm.notified() => {}
                }
            }
            None => rearm.notified().await,
        }
    }
}

impl Deployment {
    /// Applies what a committed mutation staged, in order: jobs are enqueued, cancels
    /// cancel.
    pub(crate) fn enqueue_staged(&self, staged: Vec<Staged>) {
        for Staged { id, work } in staged {
            match work.downcast::<Job>() {
                Ok(job) => self.enqueue([*job]),
                Err(work) => {
                    if work.is::<Cancel>() {
                        self.inner.jobs.cancel(&id);
                    }
                }
            }
        }
    }

    /// Enqueues committed jobs and makes sure the timer runs (when a tokio runtime does).
    pub(crate) fn enqueue(&self, jobs: impl IntoIterator<Item = Job>) {
        for job in jobs {
            self.inner.jobs.insert(job);
        }
        self.ensure_timer();
    }

    /// Starts the timer task on the current runtime unless one is running (or the
    /// deployment schedules manually).
    fn ensure_timer(&self) {
        if self.inner.jobs.manual {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut timer = lock(&self.inner.jobs.timer);
        if timer.as_ref().is_some_and(|timer| !timer.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let rearm = self.inner.jobs.rearm.clone();
        *timer = Some(runtime.spawn(run_timer(weak, rearm)).abort_handle());
    }

    /// Runs a claimed job; its error or panic fails it.
    async fn execute_job(&self, job: Job) {
        let running = Running {
            jobs: &self.inner.jobs,
            id: Some(job.id.clone()),
        };
        let call = self.dispatch(job.path, job.args, Caller::Scheduler(job.link));
        // `dispatch` already turns a panic in the function into an error; this guard
        // covers the rest of the call path, with the same rule and message.
        let state = match CatchPanic::new(job.path, call).await {
            Ok(_) => JobState::Success,
            Err(err) => JobState::Failed(err.message().to_owned()),
        };
        running.finish(state);
    }

    /// Runs scheduled work until none is left, earliest first, without waiting for delays
    /// (work scheduled by that work runs too), and waits for jobs already running on the
    /// timer. Stops after running [`Deployment::MAX_DRAINED_JOBS`] itself, so that work
    /// rescheduling itself forever cannot hang a test. A job that panics fails
    /// (`JobState::Failed`) and the drain goes on.
    ///
    /// Returns how many jobs finished (succeeded or failed) while it ran: the ones it ran
    /// and the ones it waited for on the timer. With the timer on, a job due at once may
    /// also have finished on the timer before the drain started, and is then not counted;
    /// a deployment built with [`DeploymentBuilder::manual_scheduling`] has no timer, so
    /// every job runs in a drain and the count is exact (convex-test's
    /// `finishAllScheduledFunctions`).
    ///
    /// [`DeploymentBuilder::manual_scheduling`]: super::DeploymentBuilder::manual_scheduling
    pub async fn finish_scheduled(&self) -> usize {
        let before = self.inner.jobs.finished();
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
        usize::try_from(self.inner.jobs.finished() - before).unwrap_or(usize::MAX)
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

    /// Cancels a job that has not started. Inside a mutation the cancel is staged and takes
    /// effect only if the mutation commits; a job the mutation itself scheduled counts.
    pub(crate) fn cancel_job(&self, txn: Option<&Arc<Transaction>>, id: &Id) -> Result<()> {
        let known = |txn: Option<&Arc<Transaction>>| {
            txn.is_some_and(|txn| txn.is_staged(id)) || self.inner.jobs.state(id).is_some()
        };
        match txn {
            Some(txn) if known(Some(txn)) => {
                txn.stage(Staged {
                    id: id.clone(),
                    work: Box::new(Cancel),
                })?;
                Ok(())
            }
            // Running or finished jobs are left alone, as on Convex.
            None if self.inner.jobs.cancel(id) || known(None) => Ok(()),
            _ => Err(Error::msg(format!("`{id}` is not a scheduled job"))),
        }
    }
}

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

/// The delay until `when`, zero if it has passed.
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
