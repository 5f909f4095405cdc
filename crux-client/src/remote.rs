//! Remote function references: a typed handle on a function served elsewhere, called
//! through `ctx.crux.run_action`/`run_query`/`run_mutation` exactly like a local one, or
//! through [`Client::run_action`] and friends outside any function.

use std::fmt;
use std::marker::PhantomData;

use crux_local::{ActionCtx, Callee, MutationCtx, QueryCtx, Via};
use crux_runtime::Result;
use crux_runtime::boundary::Hop;
use crux_runtime::envelope::Envelope;
use crux_runtime::function::FunctionKind;
use crux_runtime::observe;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Client;

/// The kind of a remote function, named by the context type its handler would take
/// (`ActionCtx`, `QueryCtx`, `MutationCtx`), so `ctx.crux.run_query` refuses a remote action
/// at compile time as it refuses a local one.
pub trait RemoteKind: Send + Sync + 'static + sealed::Sealed {
    /// The function kind (which `/api/...` route it is called on).
    const KIND: FunctionKind;
}

impl RemoteKind for ActionCtx {
    const KIND: FunctionKind = FunctionKind::Action;
}
impl RemoteKind for QueryCtx {
    const KIND: FunctionKind = FunctionKind::Query;
}
impl RemoteKind for MutationCtx {
    const KIND: FunctionKind = FunctionKind::Mutation;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crux_local::ActionCtx {}
    impl Sealed for crux_local::QueryCtx {}
    impl Sealed for crux_local::MutationCtx {}
}

/// The types a reference names without holding any: `Send`, `Sync` and `Copy` whatever
/// they are.
type Marker<K, A, O> = PhantomData<fn() -> (K, A, O)>;

/// A function served by another deployment: its path, kind, `Args` and `Output`, declared
/// once as a constant. [`on`](Remote::on) a [`Client`] it is what `ctx.crux.run_*` takes.
///
/// ```
/// use crux_client::{RemoteAction, RemoteQuery};
/// # #[derive(serde::Serialize, serde::Deserialize)] struct PlanArgs { topic: String }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Plan { steps: Vec<String> }
/// const PLAN: RemoteAction<PlanArgs, Plan> = RemoteAction::new("research:plan");
/// const COUNT: RemoteQuery<(), i64> = RemoteQuery::new("messages:count");
/// assert_eq!(PLAN.path(), "research:plan");
/// // In an action: ctx.crux.run_action("plan research", PLAN.on(&client), args).await?
/// ```
pub struct Remote<K, A, O> {
    path: &'static str,
    kind: Marker<K, A, O>,
}

/// A remote action: `RemoteAction::<Args, Output>::new("dir/file:export")`.
pub type RemoteAction<A, O> = Remote<ActionCtx, A, O>;
/// A remote query.
pub type RemoteQuery<A, O> = Remote<QueryCtx, A, O>;
/// A remote mutation.
pub type RemoteMutation<A, O> = Remote<MutationCtx, A, O>;

impl<K, A, O> Remote<K, A, O> {
    /// The function at `path` (`dir/file:export`, as Convex names it). An empty path or
    /// one with whitespace is refused at compile time in a `const`.
    pub const fn new(path: &'static str) -> Self {
        let bytes = path.as_bytes();
        assert!(
            !bytes.is_empty(),
            "a remote function path must not be empty"
        );
        let mut i = 0;
        while i < bytes.len() {
            assert!(
                bytes[i] > b' ' && bytes[i] != 0x7f,
                "a remote function path must not contain whitespace or control characters"
            );
            i += 1;
        }
        Remote {
            path,
            kind: PhantomData,
        }
    }

    /// The function's path.
    pub const fn path(&self) -> &'static str {
        self.path
    }

    /// This function at the deployment `client` talks to: what `ctx.crux.run_*` takes.
    pub fn on(&self, client: &Client) -> Bound<K, A, O> {
        Bound {
            path: self.path,
            client: client.clone(),
            kind: PhantomData,
        }
    }
}

impl<K, A, O> Clone for Remote<K, A, O> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, A, O> Copy for Remote<K, A, O> {}

impl<K: RemoteKind, A, O> fmt::Debug for Remote<K, A, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote{:?}({:?})", K::KIND, self.path)
    }
}

/// A [`Remote`] function on a [`Client`]: implements [`Callee`], so `ctx.crux.run_action`
/// (or `run_query`/`run_mutation`, by kind) records the same hop as for a local function,
/// then calls it over HTTP with the `__crux` envelope and a `traceparent` header.
pub struct Bound<K, A, O> {
    path: &'static str,
    client: Client,
    kind: Marker<K, A, O>,
}

impl<K, A, O> Clone for Bound<K, A, O> {
    fn clone(&self) -> Self {
        Bound {
            path: self.path,
            client: self.client.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: RemoteKind, A, O> fmt::Debug for Bound<K, A, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Remote{:?}({:?} at {})",
            K::KIND,
            self.path,
            self.client.url()
        )
    }
}

impl<K, A, O> Callee<K> for Bound<K, A, O>
where
    K: RemoteKind,
    A: Serialize + Send + Sync + 'static,
    O: DeserializeOwned + Send + 'static,
{
    type Args = A;
    type Output = O;

    fn path(&self) -> &'static str {
        self.path
    }

    fn deployment(&self) -> Option<&str> {
        Some(self.client.url())
    }

    /// Bounded by the client's timeout or the calling function's remaining time, the
    /// nearer, as a local callee inherits its caller's deadline. The reply's `logLines`
    /// join the caller's, as a local callee's lines do.
    async fn call(&self, via: Via<'_>, args: A, envelope: Option<Box<Envelope>>) -> Result<O> {
        // Lent, not unboxed: the request's futures hold a reference, not a 416-byte copy.
        let envelope = envelope.as_deref();
        let remaining = via.remaining();
        let log_lines = via.log_lines();
        if remaining < self.client.timeout() {
            let client = self.client.with_timeout(remaining);
            return client
                .typed(K::KIND, self.path, &args, envelope, log_lines)
                .await;
        }
        self.client
            .typed(K::KIND, self.path, &args, envelope, log_lines)
            .await
    }
}

impl Client {
    /// Runs the remote action `f` from wherever this code is, recording the hop as
    /// `ctx.crux.run_action` does: a `runtime.convex.action` span named by `label` under
    /// the current span, `requested`, a bounded flush of the current observer before the
    /// request and after the reply. Outside any context it records nothing and sends a bare
    /// `{v: 1}` envelope.
    pub async fn run_action<A, O>(
        &self,
        label: &'static str,
        f: RemoteAction<A, O>,
        args: A,
    ) -> Result<O>
    where
        A: Serialize,
        O: DeserializeOwned,
    {
        Hop::action(label, f.path)
            .to_deployment(Some(self.url()))
            .call(&observe::current_observer(), |envelope| async move {
                self.typed(
                    FunctionKind::Action,
                    f.path,
                    &args,
                    envelope.as_deref(),
                    None,
                )
                .await
            })
            .await
    }

    /// Runs the remote query `f` as `ctx.crux.run_query` does: a `runtime.convex.query`
    /// span named by `label`, the context propagated.
    pub async fn run_query<A: Serialize, O: DeserializeOwned>(
        &self,
        label: &'static str,
        f: RemoteQuery<A, O>,
        args: A,
    ) -> Result<O> {
        self.run_nested(
            label,
            "runtime.convex.query",
            FunctionKind::Query,
            f.path,
            args,
        )
        .await
    }

    /// Runs the remote mutation `f` as `ctx.crux.run_mutation` does.
    pub async fn run_mutation<A: Serialize, O: DeserializeOwned>(
        &self,
        label: &'static str,
        f: RemoteMutation<A, O>,
        args: A,
    ) -> Result<O> {
        self.run_nested(
            label,
            "runtime.convex.mutation",
            FunctionKind::Mutation,
            f.path,
            args,
        )
        .await
    }

    async fn run_nested<A: Serialize, O: DeserializeOwned>(
        &self,
        label: &'static str,
        primitive: &'static str,
        kind: FunctionKind,
        path: &'static str,
        args: A,
    ) -> Result<O> {
        Hop::nested(label, primitive, path)
            .to_deployment(Some(self.url()))
            .call(&observe::current_observer(), |envelope| async move {
                self.typed(kind, path, &args, envelope.as_deref(), None)
                    .await
            })
            .await
    }
}
