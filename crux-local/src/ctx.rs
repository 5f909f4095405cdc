//! The contexts handlers receive, and how each kind of function is executed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::auth::Auth;
use super::console::Console;
use super::deployment::Deployment;
use super::dispatch::{Call, Caller, from_json_output, to_json_args};
use super::inherited::Inherited;
use super::scheduler::Scheduler;
use super::store::{DatabaseReader, DatabaseWriter, Transaction};
use crux_runtime::Result;
use crux_runtime::boundary::Incoming;
use crux_runtime::function::{BoxFuture, Function, FunctionKind};

/// What the deployment knows about one invocation beyond its envelope (the boundary
/// protocol's [`Incoming`]).
pub(crate) type Invocation = Incoming;

/// The parts every context shares: the deployment and this invocation.
#[derive(Clone)]
pub struct Host {
    pub(crate) deployment: Deployment,
    pub(crate) invocation: Invocation,
    /// How many calls deep this invocation is (0: a client's or the scheduler's).
    pub(crate) depth: u32,
    /// When this invocation's execution limit runs out (its own or its caller's, the
    /// nearer).
    pub(crate) deadline: Deadline,
    /// The user the invocation runs for and where its log lines go, which the calls it
    /// makes inherit.
    pub(crate) inherited: Inherited,
}

/// When an invocation must have finished, and which limit set it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    pub(crate) at: tokio::time::Instant,
    /// The limit that set it, the kind it belongs to, and whether a caller's.
    pub(crate) limit: Duration,
    pub(crate) kind: FunctionKind,
    pub(crate) inherited: bool,
}

impl Deadline {
    /// The deadline of a function of `kind` starting now, under its caller's `inherited`.
    fn starting_now(
        deployment: &Deployment,
        kind: FunctionKind,
        inherited: Option<Deadline>,
    ) -> Self {
        let limit = deployment.inner.limits.timeout(kind);
        let own = Deadline {
            at: tokio::time::Instant::now()
                .checked_add(limit)
                .unwrap_or_else(far_future),
            limit,
            kind,
            inherited: false,
        };
        // A call that inherits its caller's deadline ends a little before it, so the
        // innermost call is the one that times out and its error has time to travel up
        // (acknowledgements, the boundary flush) before the caller's own limit fires.
        let inherited_at = |caller: &Deadline| {
            caller
                .at
                .checked_sub(INHERITED_DEADLINE_MARGIN)
                .map_or(own.at.min(caller.at), |at| {
                    at.max(tokio::time::Instant::now())
                })
        };
        match inherited {
            Some(caller) if inherited_at(&caller) < own.at => Deadline {
                at: inherited_at(&caller),
                inherited: true,
                ..caller
            },
            _ => own,
        }
    }
}

/// How much earlier than its caller's deadline a nested call that inherits it ends.
pub(crate) const INHERITED_DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// About thirty years from now: "no limit" for a limit too large to add to the clock.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Implemented by [`ActionCtx`], [`QueryCtx`] and [`MutationCtx`]: how the deployment runs a
/// function that takes this context. Sealed.
pub trait HostContext: sealed::Sealed + Sized + Send + Sync + 'static {
    /// Builds the context, runs the handler and settles the transaction, if any.
    #[doc(hidden)]
    fn execute<F>(call: Call, args: F::Args) -> BoxFuture<'static, Result<F::Output>>
    where
        F: Function<Context = Self>;

    /// The deployment and the invocation this context belongs to.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn host(&self) -> &Host;
}

/// The context of an action handler: calls other functions and schedules work; no `db`
/// (read and write through queries and mutations, each its own transaction).
#[derive(Debug)]
pub struct ActionCtx {
    /// The Crux helpers: observed calls, scheduling, spans.
    pub crux: super::calling::ActionCrux,
    /// Convex's raw scheduler: scheduled work is not linked to this run.
    pub scheduler: Scheduler,
    /// The user the call was made for, if any (Convex's `ctx.auth`).
    pub auth: Auth,
    /// Log lines for the caller (Convex's `console`): an HTTP client gets them as the
    /// reply's `logLines`.
    pub console: Console,
    host: Host,
}

/// The context of a query handler: read-only by type.
#[derive(Debug)]
pub struct QueryCtx {
    /// Read access to the document store, at one snapshot.
    pub db: DatabaseReader,
    /// The Crux helpers.
    pub crux: super::calling::QueryCrux,
    /// The user the call was made for, if any (Convex's `ctx.auth`).
    pub auth: Auth,
    /// Log lines for the caller (Convex's `console`): an HTTP client gets them as the
    /// reply's `logLines`.
    pub console: Console,
    host: Host,
}

/// The context of a mutation handler: reads and writes, all-or-nothing.
#[derive(Debug)]
pub struct MutationCtx {
    /// Read-write access to the document store; committed only if the handler returns `Ok`.
    pub db: DatabaseWriter,
    /// The Crux helpers.
    pub crux: super::calling::MutationCrux,
    /// Convex's raw scheduler; what it schedules is canceled if the mutation fails.
    pub scheduler: Scheduler,
    /// The user the call was made for, if any (Convex's `ctx.auth`).
    pub auth: Auth,
    /// Log lines for the caller (Convex's `console`): an HTTP client gets them as the
    /// reply's `logLines`.
    pub console: Console,
    host: Host,
    txn: Arc<Transaction>,
}

impl sealed::Sealed for ActionCtx {}
impl sealed::Sealed for QueryCtx {}
impl sealed::Sealed for MutationCtx {}

impl HostContext for ActionCtx {
    fn execute<F>(call: Call, args: F::Args) -> BoxFuture<'static, Result<F::Output>>
    where
        F: Function<Context = Self>,
    {
        Box::pin(async move {
            let Call {
                deployment,
                envelope,
                invocation,
                depth,
                deadline,
                inherited,
                ..
            } = call;
            let deadline = Deadline::starting_now(&deployment, FunctionKind::Action, deadline);
            let ctx = ActionCtx {
                crux: super::calling::ActionCrux::new(
                    deployment.clone(),
                    depth,
                    deadline,
                    inherited.clone(),
                ),
                scheduler: Scheduler::new(deployment.clone(), None),
                auth: Auth::new(inherited.identity.clone()),
                console: Console::new(inherited.log_lines.clone()),
                host: Host {
                    deployment,
                    invocation,
                    depth,
                    deadline,
                    inherited,
                },
            };
            F::call(&ctx, args, envelope).await
        })
    }

    fn host(&self) -> &Host {
        &self.host
    }
}

impl HostContext for QueryCtx {
    fn execute<F>(call: Call, args: F::Args) -> BoxFuture<'static, Result<F::Output>>
    where
        F: Function<Context = Self>,
    {
        Box::pin(async move {
            let Call {
                deployment,
                txn,
                envelope,
                invocation,
                depth,
                deadline,
                inherited,
            } = call;
            let view = match txn {
                Some(parent) => parent,
                None => deployment.inner.store.read(),
            };
            let deadline = Deadline::starting_now(&deployment, FunctionKind::Query, deadline);
            let ctx = QueryCtx {
                db: DatabaseReader::new(view.clone()),
                crux: super::calling::QueryCrux::new(
                    deployment.clone(),
                    view,
                    depth,
                    deadline,
                    inherited.clone(),
                ),
                auth: Auth::new(inherited.identity.clone()),
                console: Console::new(inherited.log_lines.clone()),
                host: Host {
                    deployment,
                    invocation,
                    depth,
                    deadline,
                    inherited,
                },
            };
            F::call(&ctx, args, envelope).await
        })
    }

    fn host(&self) -> &Host {
        &self.host
    }
}

impl HostContext for MutationCtx {
    fn execute<F>(call: Call, args: F::Args) -> BoxFuture<'static, Result<F::Output>>
    where
        F: Function<Context = Self>,
    {
        Box::pin(async move {
            let Call {
                deployment,
                txn,
                envelope,
                invocation,
                depth,
                deadline,
                inherited,
            } = call;
            let txn = match txn {
                Some(parent) => parent.child().await,
                None => deployment.inner.store.begin().await,
            };
            let deadline = Deadline::starting_now(&deployment, FunctionKind::Mutation, deadline);
            let ctx = MutationCtx {
                db: DatabaseWriter::new(txn.clone()),
                crux: super::calling::MutationCrux::new(
                    deployment.clone(),
                    txn.clone(),
                    depth,
                    deadline,
                    inherited.clone(),
                ),
                scheduler: Scheduler::new(deployment.clone(), Some(txn.clone())),
                auth: Auth::new(inherited.identity.clone()),
                console: Console::new(inherited.log_lines.clone()),
                host: Host {
                    deployment: deployment.clone(),
                    invocation,
                    depth,
                    deadline,
                    inherited,
                },
                txn: txn.clone(),
            };
            let result = F::call(&ctx, args, envelope).await;
            drop(ctx);
            match result {
                Ok(output) => {
                    let staged = txn.commit()?;
                    deployment.enqueue_staged(staged);
                    Ok(output)
                }
                Err(err) => {
                    txn.abort();
                    Err(err)
                }
            }
        })
    }

    fn host(&self) -> &Host {
        &self.host
    }
}

impl ActionCtx {
    /// Runs a query in its own transaction. No Crux boundary: the callee sees no context
    /// (use `ctx.crux.run_query` to keep it in this run).
    pub async fn run_query<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = QueryCtx>,
    {
        raw_call(&self.host, None, f, args).await
    }

    /// Runs a mutation in its own transaction. No Crux boundary.
    pub async fn run_mutation<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = MutationCtx>,
    {
        raw_call(&self.host, None, f, args).await
    }

    /// Runs another action. No Crux boundary: an observed callee opens its own run (use
    /// `ctx.crux.run_action` to keep it in this run).
    pub async fn run_action<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = ActionCtx>,
    {
        raw_call(&self.host, None, f, args).await
    }
}

impl QueryCtx {
    /// Runs another query at this query's snapshot. No Crux boundary.
    pub async fn run_query<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = QueryCtx>,
    {
        let view = self.crux.view().cloned();
        raw_call(&self.host, view, f, args).await
    }
}

impl MutationCtx {
    /// Runs a query that sees this mutation's writes. No Crux boundary.
    pub async fn run_query<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = QueryCtx>,
    {
        raw_call(&self.host, Some(self.txn.clone()), f, args).await
    }

    /// Runs a mutation as a sub-transaction: its error rolls back only its own writes, and
    /// the caller may handle it. No Crux boundary.
    pub async fn run_mutation<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = MutationCtx>,
    {
        raw_call(&self.host, Some(self.txn.clone()), f, args).await
    }
}

/// A call from one function to another without `__crux`.
async fn raw_call<F: Function>(
    host: &Host,
    txn: Option<Arc<Transaction>>,
    f: F,
    args: F::Args,
) -> Result<F::Output> {
    let _ = f;
    let args = to_json_args(&args)?;
    let caller = Caller::Function {
        txn,
        depth: host.depth + 1,
        deadline: host.deadline,
        inherited: host.inherited.clone(),
    };
    // Boxed: the call's future lives on the heap, not in every frame polling this one.
    let out = Box::pin(host.deployment.dispatch(F::path(), args, caller)).await?;
    from_json_output(F::path(), out)
}

macro_rules! state_accessor {
    ($($ctx:ty),+) => {$(
        impl $ctx {
            /// The application state of type `T` registered on the builder
            /// ([`DeploymentBuilder::state`](crate::DeploymentBuilder::state)): a model
            /// client, a connection pool.
            ///
            /// # Errors
            ///
            /// A server error naming the type when none was registered.
            pub fn state<T: std::any::Any + Send + Sync>(&self) -> Result<&T> {
                self.host.deployment.state::<T>()
            }
        }
    )+};
}

state_accessor!(ActionCtx, QueryCtx, MutationCtx);
