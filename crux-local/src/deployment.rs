//! The deployment handle, its builder, and the calls a client makes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use std::time::Duration;

use serde_json::Value;

use super::ctx::{ActionCtx, HostContext, MutationCtx, QueryCtx};
use super::dispatch::{Caller, Entry, from_json_output, to_json_args};
use super::scheduler::Jobs;
use super::store::{Schema, Store, TableSchema};
use crux_runtime::Result;
use crux_runtime::function::Function;
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
    pub(crate) registry: HashMap<&'static str, Entry>,
    pub(crate) store: Store,
    pub(crate) jobs: Jobs,
    pub(crate) observer: Observer,
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
    registry: HashMap<&'static str, Entry>,
    schema: Schema,
    sinks: Option<ObserverBuilder>,
    observer: Option<Observer>,
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
    pub fn function<F>(mut self, f: F) -> Self
    where
        F: Function,
        F::Context: HostContext,
    {
        let _ = f;
        let entry = Entry::of::<F>();
        if let Some(existing) = self.registry.get(F::path()) {
            let same = existing.metadata.module_path == F::METADATA.module_path
                && existing.metadata.export == F::METADATA.export;
            assert!(
                same,
                "two functions share the Convex path `{}`: `{}::{}` and `{}::{}`",
                F::path(),
                existing.metadata.module_path,
                existing.metadata.export,
                F::METADATA.module_path,
                F::METADATA.export,
            );
        }
        self.registry.insert(F::path(), entry);
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
                jobs: Jobs::default(),
                observer,
            }),
        }
    }
}

impl Deployment {
    /// How many jobs one [`Deployment::finish_scheduled`] runs at most.
    pub const MAX_DRAINED_JOBS: usize = 10_000;

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
        self.client_call(f, args).await
    }

    /// Calls a public query as a client would.
    pub async fn query<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = QueryCtx>,
    {
        self.client_call(f, args).await
    }

    /// Calls a public mutation as a client would.
    pub async fn mutation<F>(&self, f: F, args: F::Args) -> Result<F::Output>
    where
        F: Function<Context = MutationCtx>,
    {
        self.client_call(f, args).await
    }

    /// Calls the public function at `path` (`dir/file:export`) with raw JSON arguments, as
    /// Convex's HTTP API does; internal functions are "not found" from outside.
    pub async fn call(&self, path: &str, args: Value) -> Result<Value> {
        self.dispatch(path, args, Caller::Client).await
    }

    async fn client_call<F: Function>(&self, f: F, args: F::Args) -> Result<F::Output> {
        let _ = f;
        let args = to_json_args(&args)?;
        let out = self.dispatch(F::path(), args, Caller::Client).await?;
        from_json_output(F::path(), out)
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
