//! The deployment handle, its builder, and the calls a client makes.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use std::time::Duration;

use serde_json::Value;

use super::auth::UserIdentity;
use super::ctx::{ActionCtx, HostContext, MutationCtx, QueryCtx};
use super::dispatch::{Caller, ClientCall, Entry, from_json_output, to_json_args};
use super::registry::Registry;
use super::scheduler::Jobs;
use super::store::{Schema, Store, TableSchema};
use crux_runtime::Result;
use crux_runtime::function::{Function, FunctionKind, Metadata};
use crux_runtime::observe::{FlushOptions, FlushResult, Observer, ObserverBuilder};
use crux_runtime::sink::Sink;

/// An embedded Convex-style deployment: registered functions, a document store and a
/// scheduler, run in-process. A cheap `Clone` handle.
///
/// Every call crosses a real JSON boundary, as on Convex: arguments and results are
/// serialized, `__crux` rides in the arguments and is stripped before the handler runs, and
/// bad arguments are rejected with an `ArgumentValidationError:`.
#[derive(Clone)]
pub struct Deployment {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) store: Store,
    pub(crate) jobs: Jobs,
    pub(crate) observer: Observer,
    pub(crate) limits: Limits,
    pub(crate) state: StateMap,
    /// A client's call made for a user opens its run with the user's subject as the
    /// `userId` correlator ([`DeploymentBuilder::correlate_user_id`]).
    pub(crate) correlate_user_id: bool,
}

/// Application state by type ([`DeploymentBuilder::state`]).
pub(crate) type StateMap = HashMap<TypeId, Box<dyn Any + Send + Sync>>;

/// The execution limits of a deployment (see the [`DeploymentBuilder`] settings).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) query_timeout: Duration,
    pub(crate) mutation_timeout: Duration,
    pub(crate) action_timeout: Duration,
    pub(crate) max_call_depth: u32,
    pub(crate) max_value_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            query_timeout: Deployment::DEFAULT_QUERY_TIMEOUT,
            mutation_timeout: Deployment::DEFAULT_MUTATION_TIMEOUT,
            action_timeout: Deployment::DEFAULT_ACTION_TIMEOUT,
            max_call_depth: Deployment::DEFAULT_MAX_CALL_DEPTH,
            max_value_depth: Deployment::DEFAULT_MAX_VALUE_DEPTH,
        }
    }
}

impl Limits {
    /// The execution limit of a function of `kind`.
    pub(crate) fn timeout(&self, kind: FunctionKind) -> Duration {
        match kind {
            FunctionKind::Query => self.query_timeout,
            FunctionKind::Mutation => self.mutation_timeout,
            FunctionKind::Action => self.action_timeout,
        }
    }
}

impl fmt::Debug for Deployment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut paths: Vec<&str> = self.inner.registry.keys().copied().collect();
        paths.sort_unstable();
        f.debug_struct("Deployment")
            .field("functions", &paths)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Deployment`]: its functions, tables and observability.
#[derive(Default)]
pub struct DeploymentBuilder {
    registry: Registry,
    schema: Schema,
    sinks: Option<ObserverBuilder>,
    observer: Option<Observer>,
    limits: Limits,
    state: StateMap,
    manual_scheduling: bool,
    correlate_user_id: bool,
}

impl fmt::Debug for DeploymentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeploymentBuilder").finish_non_exhaustive()
    }
}

impl DeploymentBuilder {
    /// Registers a function under its Convex path.
    ///
    /// # Panics
    ///
    /// If a different function is already registered under the same path (two handlers
    /// with one `path = "..."`); registering the same function twice is fine.
    pub fn function<F>(self, f: F) -> Self
    where
        F: Function,
        F::Context: HostContext,
    {
        let _ = f;
        self.register(F::path(), Entry::of::<F>())
    }

    /// [`DeploymentBuilder::function`] past the function's type, compiled once rather than
    /// for every registered function.
    fn register(mut self, path: &'static str, entry: Entry) -> Self {
        if let Some(existing) = self.registry.get(path) {
            let same = existing.metadata.module_path == entry.metadata.module_path
                && existing.metadata.export == entry.metadata.export;
            assert!(
                same,
                "two functions share the Convex path `{path}`: `{}::{}` and `{}::{}`",
                existing.metadata.module_path,
                existing.metadata.export,
                entry.metadata.module_path,
                entry.metadata.export,
            );
        }
        self.registry.insert(path, entry);
        self
    }

    /// Registers several functions at once: a tuple of up to 16 function references.
    ///
    /// ```ignore
    /// Deployment::builder().functions((support::respond, research::plan, research::get_inputs))
    /// ```
    pub fn functions(self, functions: impl FunctionSet) -> Self {
        functions.register(self)
    }

    /// Declares a table and its indexes. Once any table is declared, writes to undeclared
    /// tables are rejected (as with a Convex schema); with none, any table may be used.
    ///
    /// ```ignore
    /// Deployment::builder().table("researchInputs", |t| t.index("by_thread", ["threadId"]))
    /// ```
    pub fn table(
        mut self,
        name: impl Into<String>,
        define: impl FnOnce(TableSchema) -> TableSchema,
    ) -> Self {
        self.schema
            .tables
            .insert(name.into(), define(TableSchema::default()));
        self
    }

    /// Sends the deployment's Crux records to `sink` (repeatable: every sink gets every
    /// record). Ignored when [`DeploymentBuilder::observer`] is given.
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks = Some(
            self.sinks
                .take()
                .unwrap_or_else(Observer::builder)
                .sink(sink),
        );
        self
    }

    /// Records through this observer (its sinks, capacity and warning hook).
    pub fn observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// How long a query may run before it fails with an [`ErrorKind::Timeout`] error
    /// (default [`Deployment::DEFAULT_QUERY_TIMEOUT`], 1 s, as on Convex).
    ///
    /// A limit stops a handler at an `.await`; a handler that blocks its thread without
    /// awaiting cannot be interrupted in-process.
    ///
    /// [`ErrorKind::Timeout`]: crux_runtime::ErrorKind::Timeout
    pub fn query_timeout(mut self, limit: Duration) -> Self {
        self.limits.query_timeout = limit;
        self
    }

    /// How long a mutation may run (default [`Deployment::DEFAULT_MUTATION_TIMEOUT`], 1 s):
    /// past it the mutation fails, its writes are discarded and the store's write lock is
    /// released for the next mutation.
    pub fn mutation_timeout(mut self, limit: Duration) -> Self {
        self.limits.mutation_timeout = limit;
        self
    }

    /// How long an action may run (default [`Deployment::DEFAULT_ACTION_TIMEOUT`], 10 min,
    /// as on Convex). Its final flush is not counted.
    pub fn action_timeout(mut self, limit: Duration) -> Self {
        self.limits.action_timeout = limit;
        self
    }

    /// How deep function calls may nest (`ctx.crux.run_*` and `ctx.run_*`; a client or
    /// scheduled call is level 0); a call deeper fails with an [`ErrorKind::CallDepth`]
    /// error (default [`Deployment::DEFAULT_MAX_CALL_DEPTH`]).
    ///
    /// [`ErrorKind::CallDepth`]: crux_runtime::ErrorKind::CallDepth
    pub fn max_call_depth(mut self, depth: u32) -> Self {
        self.limits.max_call_depth = depth;
        self
    }

    /// How deep arrays and objects may nest in arguments and results (default
    /// [`Deployment::DEFAULT_MAX_VALUE_DEPTH`]); deeper arguments are an
    /// `ArgumentValidationError`, deeper results a `ReturnsValidationError`.
    pub fn max_value_depth(mut self, depth: usize) -> Self {
        self.limits.max_value_depth = depth;
        self
    }

    /// Registers application state that handlers reach through their context
    /// (`ctx.state::<T>()`): a model client, a connection pool, a configuration. One value
    /// per type; a second one of the same type replaces the first. Share mutable state
    /// through types that synchronise themselves (`Mutex`, atomics, pools).
    pub fn state<T: Any + Send + Sync>(mut self, value: T) -> Self {
        self.state.insert(TypeId::of::<T>(), Box::new(value));
        self
    }

    /// Runs scheduled jobs only in [`Deployment::finish_scheduled`]: no timer task runs
    /// them when due. For tests that drain deterministically (convex-test's fake timers
    /// plus `finishAllScheduledFunctions`): every job runs in a drain, so the drain's count
    /// and the order of the work are exact. Jobs still run earliest due first.
    pub fn manual_scheduling(mut self) -> Self {
        self.manual_scheduling = true;
        self
    }

    /// Records the user a client's call is made for (`ctx.auth`) as the `userId` correlator
    /// of the run the call opens, so runs can be found by user: the identity's
    /// `token_identifier` (`issuer|subject`), Convex's stable key for a user, unique across
    /// providers (a `subject` alone is unique only within one). Off by default: it is
    /// personal data. Never a token or any other claim.
    pub fn correlate_user_id(mut self, on: bool) -> Self {
        self.correlate_user_id = on;
        self
    }

    /// Builds the deployment. Without a sink or observer it records through
    /// [`Observer::global`] (nothing, unless one was installed).
    pub fn build(self) -> Deployment {
        let observer = match (self.observer, self.sinks) {
            (Some(observer), _) => observer,
            (None, Some(sinks)) => sinks.build(),
            (None, None) => Observer::global(),
        };
        Deployment {
            inner: Arc::new(Inner {
                registry: self.registry,
                store: Store::new(self.schema),
                jobs: Jobs::new(self.manual_scheduling),
                observer,
                limits: self.limits,
                state: self.state,
                correlate_user_id: self.correlate_user_id,
            }),
        }
    }
}

impl Deployment {
    /// How many jobs one [`Deployment::finish_scheduled`] runs at most.
    pub const MAX_DRAINED_JOBS: usize = 10_000;

    /// The default execution limit of a query: 1 s, as on Convex.
    pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(1);

    /// The default execution limit of a mutation: 1 s, as on Convex.
    pub const DEFAULT_MUTATION_TIMEOUT: Duration = Duration::from_secs(1);

    /// The default execution limit of an action: 10 minutes, as on Convex.
    pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(10 * 60);

    /// The default limit on nested function calls: 256 levels below a client's call.
    pub const DEFAULT_MAX_CALL_DEPTH: u32 = 256;

    /// The default limit on how deep arrays and objects nest in arguments and results.
    pub const DEFAULT_MAX_VALUE_DEPTH: usize = 64;

    /// Starts configuring a deployment.
    pub fn builder() -> DeploymentBuilder {
        DeploymentBuilder::default()
    }

    /// The observer the deployment records through.
    pub fn observer(&self) -> &Observer {
        &self.inner.observer
    }

    /// Waits until the records so far reach the sinks, at most `timeout`; never fails.
    pub async fn flush(&self, timeout: Duration) -> FlushResult {
        self.inner
            .observer
            .flush(FlushOptions {
                timeout,
                terminal: false,
            })
            .await
    }

    /// Calls a public action as a client would.
    pub async fn action<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = ActionCtx>,
    {
        self.client_call(f, args, ClientCall::default()).await
    }

    /// Calls a public query as a client would.
    pub async fn query<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = QueryCtx>,
    {
        self.client_call(f, args, ClientCall::default()).await
    }

    /// Calls a public mutation as a client would.
    pub async fn mutation<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = MutationCtx>,
    {
        self.client_call(f, args, ClientCall::default()).await
    }

    /// Calls the public function at `path` (`dir/file:export`) with raw JSON arguments, as
    /// Convex's HTTP API does; internal functions are "not found" from outside.
    pub async fn call(&self, path: &str, args: Value) -> Result<Value> {
        self.dispatch(path, args, Caller::Client(ClientCall::default()))
            .await
    }

    /// [`call`](Self::call) for a host in front of the deployment (an HTTP server) that
    /// knows more about the client: its privileges, the kind its route allows, its
    /// `traceparent`, and whether its context is trusted ([`ClientCall`]).
    pub async fn call_with(&self, path: &str, args: Value, client: ClientCall) -> Result<Value> {
        self.dispatch(path, args, Caller::Client(client)).await
    }

    /// What is registered at `path` (`dir/file:export`): its kind, visibility and the
    /// Rust item that defines it; `None` when nothing is. A host in front of the deployment
    /// checks with it that what it routes to exists (an HTTP action's function).
    pub fn metadata(&self, path: &str) -> Option<&Metadata> {
        self.inner.registry.get(path).map(|entry| &entry.metadata)
    }

    /// The application state of type `T` registered with [`DeploymentBuilder::state`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Server`](crux_runtime::ErrorKind::Server) naming the type when none
    /// was registered.
    pub fn state<T: Any + Send + Sync>(&self) -> Result<&T> {
        self.inner
            .state
            .get(&TypeId::of::<T>())
            .and_then(|state| state.downcast_ref::<T>())
            .ok_or_else(|| {
                crux_runtime::Error::new(
                    crux_runtime::ErrorKind::Server,
                    format!(
                        "no application state of type `{}` was registered; add it with \
                         DeploymentBuilder::state",
                        std::any::type_name::<T>()
                    ),
                )
            })
    }

    /// Calls made for `identity`, as convex-test's `t.withIdentity(..)`: each handler
    /// sees it as `ctx.auth`, and so do the functions it calls.
    ///
    /// ```ignore
    /// let ada = UserIdentity::for_test("user-ada").name("Ada");
    /// deployment.with_identity(ada).action(chat::respond, args).await?;
    /// ```
    pub fn with_identity(&self, identity: UserIdentity) -> AsUser {
        AsUser {
            deployment: self.clone(),
            identity: Arc::new(identity),
        }
    }

    async fn client_call<F: Function>(
        &self,
        f: F,
        args: F::Args,
        client: ClientCall,
    ) -> Result<F::Output> {
        let _ = f;
        let args = to_json_args(&args)?;
        let out = self
            .dispatch(F::path(), args, Caller::Client(client))
            .await?;
        from_json_output(F::path(), out)
    }
}

/// A [`Deployment`] calling as one user ([`Deployment::with_identity`]).
#[derive(Clone, Debug)]
pub struct AsUser {
    deployment: Deployment,
    identity: Arc<UserIdentity>,
}

impl AsUser {
    fn client(&self) -> ClientCall {
        ClientCall::new().identity(self.identity.clone())
    }

    /// [`Deployment::action`] as this user.
    pub async fn action<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = ActionCtx>,
    {
        self.deployment.client_call(f, args, self.client()).await
    }

    /// [`Deployment::query`] as this user.
    pub async fn query<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = QueryCtx>,
    {
        self.deployment.client_call(f, args, self.client()).await
    }

    /// [`Deployment::mutation`] as this user.
    pub async fn mutation<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = MutationCtx>,
    {
        self.deployment.client_call(f, args, self.client()).await
    }

    /// [`Deployment::call`] as this user.
    pub async fn call(&self, path: &str, args: Value) -> Result<Value> {
        self.deployment
            .dispatch(path, args, Caller::Client(self.client()))
            .await
    }
}

/// A tuple of function references for [`DeploymentBuilder::functions`].
pub trait FunctionSet {
    /// Registers every function of the set.
    fn register(self, builder: DeploymentBuilder) -> DeploymentBuilder;
}

macro_rules! function_sets {
    ($($f:ident),+) => {
        impl<$($f),+> FunctionSet for ($($f,)+)
        where
            $($f: Function, $f::Context: HostContext,)+
        {
            #[allow(non_snake_case)]
            fn register(self, builder: DeploymentBuilder) -> DeploymentBuilder {
                let ($($f,)+) = self;
                builder$(.function($f))+
            }
        }
    };
}

function_sets!(A);
function_sets!(A, B);
function_sets!(A, B, C);
function_sets!(A, B, C, D);
function_sets!(A, B, C, D, E);
function_sets!(A, B, C, D, E, F);
function_sets!(A, B, C, D, E, F, G);
function_sets!(A, B, C, D, E, F, G, H);
function_sets!(A, B, C, D, E, F, G, H, I);
function_sets!(A, B, C, D, E, F, G, H, I, J);
function_sets!(A, B, C, D, E, F, G, H, I, J, K);
function_sets!(A, B, C, D, E, F, G, H, I, J, K, L);
function_sets!(A, B, C, D, E, F, G, H, I, J, K, L, M);
function_sets!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
function_sets!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
function_sets!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);
