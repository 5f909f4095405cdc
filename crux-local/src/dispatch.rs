//! One function call across the JSON boundary: lookup, visibility, `__crux` extraction,
//! argument validation, the handler, and the result back to JSON.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::UserIdentity;
use super::console::LogLines;
use super::ctx::{Deadline, HostContext, Invocation};
use super::deployment::Deployment;
use super::finite::non_finite_float;
use super::inherited::Inherited;
use super::store::Transaction;
use super::validation::{check_args_depth, decode_args, drop_flat, too_deep};
use crux_runtime::boundary::{CatchPanic, panic_error, take_envelope};
use crux_runtime::carrier::TraceParent;
use crux_runtime::envelope::Envelope;
use crux_runtime::function::{BoxFuture, Function, FunctionKind, Metadata, Visibility};
use crux_runtime::ids::SpanId;
use crux_runtime::{Error, ErrorKind, Result};

/// Who makes a call; decides visibility and the transaction it joins.
#[derive(Debug)]
pub(crate) enum Caller {
    /// A client outside the deployment: public functions only, unless it proved the admin
    /// key.
    Client(ClientCall),
    /// Another function at call depth `depth` (the callee's); a mutation passes its
    /// transaction for sub-transactions. The callee inherits its identity and log lines,
    /// as on Convex.
    Function {
        txn: Option<Arc<Transaction>>,
        depth: u32,
        deadline: Deadline,
        inherited: Inherited,
    },
    /// `ctx.crux.run_action` in this deployment, which flushes the shared pipeline as soon
    /// as the callee returns; `depth` is the callee's.
    Boundary {
        depth: u32,
        deadline: Deadline,
        inherited: Inherited,
    },
    /// The scheduler, with the schedule span of a detached job.
    Scheduler(Option<SpanId>),
}

/// What a host in front of the deployment (an HTTP server) knows about a client's call:
/// its privileges, the kind of function its route allows, and whether its context may be
/// continued. [`ClientCall::default()`] is what [`Deployment::call`] uses: a public client
/// whose `__crux` is trusted.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ClientCall {
    /// The caller proved the deployment's admin key (`Authorization: Convex <key>` on
    /// Convex): internal functions are visible to it.
    pub admin: bool,
    /// The kind of function the caller's route runs (`/api/query` runs queries only);
    /// `None` runs any kind (`/api/run/..`).
    pub kind: Option<FunctionKind>,
    /// A W3C `traceparent` that came with the call (an HTTP header): an action without a
    /// `__crux` context opens its run in that trace, under that remote parent.
    pub remote_parent: Option<TraceParent>,
    /// `Some(reason)`: the host does not trust this caller with a context. A `__crux`
    /// context or a `remote_parent` is then dropped and the call runs as a fresh root, with
    /// a `security.warning` recording `reason`; the call itself never fails for it.
    pub distrust_context: Option<String>,
    /// The user the call is made for (a verified `Authorization: Bearer <JWT>`, or a
    /// test's identity): `ctx.auth` of the function and of every function it calls.
    pub identity: Option<Arc<UserIdentity>>,
    /// Where the log lines of the function and of every function it calls go
    /// (`ctx.console`); without it they are dropped. The HTTP server returns them as the
    /// reply's `logLines`.
    pub log_lines: Option<LogLines>,
}

impl ClientCall {
    /// A public client's call with no further knowledge.
    pub fn new() -> Self {
        Self::default()
    }

    /// As a caller that proved the admin key: internal functions are visible.
    pub fn admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }

    /// Runs only functions of `kind`; another kind is refused with Convex's message.
    pub fn kind(mut self, kind: FunctionKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// With the `traceparent` the call came with.
    pub fn remote_parent(mut self, traceparent: TraceParent) -> Self {
        self.remote_parent = Some(traceparent);
        self
    }

    /// Drops any context the caller sends, recording `reason` (see
    /// [`distrust_context`](Self::distrust_context)).
    pub fn distrust_context(mut self, reason: impl Into<String>) -> Self {
        self.distrust_context = Some(reason.into());
        self
    }

    /// Made for `identity`: the handler's `ctx.auth` and that of every function it calls.
    pub fn identity(mut self, identity: impl Into<Arc<UserIdentity>>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// Collects the call's log lines in `lines` (see [`log_lines`](Self::log_lines)).
    pub fn log_lines(mut self, lines: LogLines) -> Self {
        self.log_lines = Some(lines);
        self
    }
}

/// Convex's name of a function kind in its messages.
fn kind_name(kind: FunctionKind) -> &'static str {
    match kind {
        FunctionKind::Query => "Query",
        FunctionKind::Mutation => "Mutation",
        FunctionKind::Action => "Action",
    }
}

/// Everything a kind-specific executor needs for one call.
#[derive(Debug)]
pub struct Call {
    pub(crate) deployment: Deployment,
    pub(crate) txn: Option<Arc<Transaction>>,
    /// Boxed once, where it is decoded: it moves through several futures before the
    /// handler's boundary takes it apart.
    pub(crate) envelope: Option<Box<Envelope>>,
    pub(crate) invocation: Invocation,
    /// How many calls deep this one is (0: a client's or the scheduler's).
    pub(crate) depth: u32,
    /// The caller's deadline, which bounds this call too.
    pub(crate) deadline: Option<Deadline>,
    /// The user the call is made for (`ctx.auth`) and where its log lines go.
    pub(crate) inherited: Inherited,
}

/// A registered function, type-erased.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) metadata: Metadata,
    run: fn(Call, Value) -> BoxFuture<'static, Result<Value>>,
}

impl Entry {
    pub(crate) fn of<F>() -> Self
    where
        F: Function,
        F::Context: HostContext,
    {
        Self {
            metadata: F::METADATA,
            run: |call, args| Box::pin(run::<F>(call, args)),
        }
    }
}

/// A call of `F`: instantiated for every registered function, so what does not depend on
/// its types (the depth limits and their errors) is in [`checked_args`] and
/// [`checked_output`], compiled once.
async fn run<F>(call: Call, args: Value) -> Result<Value>
where
    F: Function,
    F::Context: HostContext,
{
    let max_depth = call.deployment.inner.limits.max_value_depth;
    let args = checked_args(args, max_depth)?;
    // Read once: a derived path over 128 bytes is looked up under a lock.
    let path = F::path();
    // A panic outside the handler body (an `Args` or `Output` serde impl, say) is a failed
    // call too; the body's own panics are recorded by the boundary (`receive`).
    let output = CatchPanic::new(path, async move {
        let args: F::Args = decode_args(args)?;
        let output = F::Context::execute::<F>(call, args).await?;
        to_json_output(path, &output)
    })
    .await
    .map_err(across_the_wire)?;
    checked_output(output, max_depth, path)
}

/// The arguments, unless nested more than `max_depth` levels deep.
fn checked_args(args: Value, max_depth: usize) -> Result<Value> {
    match check_args_depth(&args, max_depth) {
        Ok(()) => Ok(args),
        Err(err) => {
            drop_flat(args);
            Err(err)
        }
    }
}

/// The result of the function at `path`, unless nested more than `max_depth` levels deep.
fn checked_output(output: Value, max_depth: usize, path: &str) -> Result<Value> {
    let Some(at) = too_deep(&output, max_depth) else {
        return Ok(output);
    };
    drop_flat(output);
    Err(Error::new(
        ErrorKind::ReturnsValidation,
        format!(
            "ReturnsValidationError: the result of '{path}' is nested more than {max_depth} \
             levels deep (the deployment's limit, DeploymentBuilder::max_value_depth). \
             Path: {at}"
        ),
    ))
}

/// An error as the caller receives it: serialized and deserialized, as on Convex.
fn across_the_wire(err: Error) -> Error {
    serde_json::to_value(&err)
        .and_then(serde_json::from_value)
        .unwrap_or(err)
}

/// Serializes a function's arguments; they must form a JSON object. A NaN or ±∞ in them
/// is refused (JSON has none; `serde_json` would write `null`).
pub(crate) fn to_json_args<T: Serialize>(args: &T) -> Result<Value> {
    to_json(args, |reason| {
        Error::new(
            ErrorKind::ArgumentValidation,
            format!("ArgumentValidationError: arguments are not representable as JSON: {reason}"),
        )
    })
}

/// Serializes the result of the function at `path`. A NaN or ±∞ in it is a
/// `ReturnsValidationError` naming where, never a silent `null`.
fn to_json_output<T: Serialize>(path: &str, output: &T) -> Result<Value> {
    to_json(output, |reason| {
        Error::new(
            ErrorKind::ReturnsValidation,
            format!("ReturnsValidationError: the result of '{path}' is not JSON: {reason}"),
        )
    })
}

/// `source` as JSON, or `invalid` with the reason it is not (a NaN or ±∞ included).
fn to_json<T: Serialize>(source: &T, invalid: impl Fn(String) -> Error) -> Result<Value> {
    let value = serde_json::to_value(source).map_err(|err| invalid(err.to_string()))?;
    match non_finite_in(source) {
        Some(found) => Err(invalid(found)),
        None => Ok(value),
    }
}

/// Why the JSON of `source` would lose a float: `serde_json` writes NaN and ±∞ as `null`.
/// The probe walks `source` itself, writing nothing (cheaper than searching the JSON for a
/// `null`: about 70 instructions for a six-field result).
fn non_finite_in<T: Serialize + ?Sized>(source: &T) -> Option<String> {
    let (path, float) = non_finite_float(source)?;
    let at = if path.is_empty() { "." } else { &path };
    Some(format!(
        "{float} has no JSON form (a deployment's values are JSON: send it as an Option, a \
         string or a sentinel). Path: {at}"
    ))
}

/// Deserializes a result as the caller's `Output` type.
pub(crate) fn from_json_output<T: DeserializeOwned>(path: &str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|err| {
        Error::new(
            ErrorKind::ReturnsValidation,
            format!("ReturnsValidationError: the result of '{path}' does not match the caller's type: {err}"),
        )
    })
}

/// The `__crux` of a call made by another function in this deployment, beside the args
/// object (see [`Deployment::dispatch_with`]): the envelope handed to `Callee::call` in
/// this process (a hop's own, or whatever a user's `Callee` forwards) when the strict
/// decode of its text would give it back ([`Envelope::round_trips`]), so it is neither
/// written nor read; otherwise that text, decoded strictly on arrival (and refused with
/// the decoder's reason, as it would be from anywhere else).
#[derive(Debug)]
pub(crate) enum SentEnvelope {
    /// Within the wire's rules: what the decode of its text would give, handed over as is.
    Checked(Box<Envelope>),
    /// The JSON text that would travel under `__crux`.
    Text(String),
}

impl SentEnvelope {
    /// What a hop of this deployment sends: `envelope` itself, or its text when that text
    /// would not decode back to it.
    pub(crate) fn of(envelope: Box<Envelope>) -> Self {
        if envelope.round_trips() {
            Self::Checked(envelope)
        } else {
            Self::Text(envelope.to_json_string())
        }
    }
}

/// Takes `__crux` out of the call and decodes it strictly; a bad envelope is dropped with
/// the reason. Text beside the args is decoded with `Envelope::decode_str_boxed` (built in
/// the box the callee keeps), with the same rules and errors as the `Value` decoder; an
/// envelope checked by the hop that sent it is taken as it is.
fn split_envelope(
    args: &mut Value,
    sent: Option<SentEnvelope>,
) -> (Option<Box<Envelope>>, Option<String>) {
    let decoded = match sent {
        Some(SentEnvelope::Checked(envelope)) => Some(Ok(envelope)),
        Some(SentEnvelope::Text(text)) => Some(Envelope::decode_str_boxed(&text)),
        None => take_envelope(args).transpose().map(|r| r.map(Box::new)),
    };
    match decoded {
        None => (None, None),
        Some(Ok(envelope)) => (Some(envelope), None),
        Some(Err(err)) => (None, Some(err.to_string())),
    }
}

impl Deployment {
    /// Calls the function at `path` with JSON args, as `caller`.
    pub(crate) async fn dispatch(&self, path: &str, args: Value, caller: Caller) -> Result<Value> {
        self.dispatch_with(path, args, None, caller).await
    }

    /// [`dispatch`](Self::dispatch) with the `__crux` of the call beside the args object
    /// (which then holds none): a hop's own envelope that would decode back to itself, or
    /// JSON text strictly decoded here, without building and walking a `serde_json::Value`
    /// for it on each side (a third of a boundary hop's work).
    pub(crate) async fn dispatch_with(
        &self,
        path: &str,
        mut args: Value,
        envelope: Option<SentEnvelope>,
        caller: Caller,
    ) -> Result<Value> {
        let visible = |entry: &Entry| match &caller {
            Caller::Client(client) => {
                entry.metadata.visibility == Visibility::Public || client.admin
            }
            _ => true,
        };
        let (path, entry) = match self.inner.registry.get_key_value(path) {
            Some((path, entry)) if visible(entry) => (*path, *entry),
            _ => {
                let which = match &caller {
                    Caller::Client(client) if !client.admin => "public ",
                    _ => "",
                };
                // The path is the caller's text (an HTTP body may hold megabytes of it).
                let path = crux_runtime::wire::cap_text(path, MAX_ECHOED_PATH);
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("Could not find {which}function for '{path}'"),
                ));
            }
        };
        if let Caller::Client(ClientCall {
            kind: Some(kind), ..
        }) = &caller
            && *kind != entry.metadata.kind
        {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "Trying to execute {path} as {}, but it is defined as {}.",
                    kind_name(*kind),
                    kind_name(entry.metadata.kind)
                ),
            ));
        }
        let (mut envelope, mut rejected) = split_envelope(&mut args, envelope);
        let mut remote_parent = None;
        if let Caller::Client(client) = &caller {
            remote_parent = client.remote_parent;
            if let Some(reason) = &client.distrust_context {
                let sent_context = envelope
                    .as_ref()
                    .is_some_and(|envelope| envelope.observability.is_some());
                if sent_context || remote_parent.is_some() {
                    envelope = None;
                    remote_parent = None;
                    rejected.get_or_insert_with(|| reason.clone());
                }
            }
        }
        let caller_flushes = matches!(caller, Caller::Boundary { .. });
        let (txn, schedule_link, depth, deadline, inherited) = match caller {
            Caller::Client(client) => {
                let inherited = Inherited {
                    identity: client.identity,
                    log_lines: client.log_lines,
                };
                (None, None, 0, None, inherited)
            }
            Caller::Boundary {
                depth,
                deadline,
                inherited,
            } => (None, None, depth, Some(deadline), inherited),
            Caller::Function {
                txn,
                depth,
                deadline,
                inherited,
            } => (txn, None, depth, Some(deadline), inherited),
            // Convex runs scheduled functions with no identity; no caller reads their logs.
            Caller::Scheduler(link) => (None, link, 0, None, Inherited::default()),
        };
        // Only a client's call opens a run the user could be correlated with; a nested
        // call continues its caller's run, which carries its own correlators.
        let user_id = match &inherited.identity {
            // Convex's key for a user is the token identifier (`issuer|subject`): a subject
            // alone is unique only within one provider.
            Some(identity) if depth == 0 && self.inner.correlate_user_id => {
                Some(identity.token_identifier.clone())
            }
            _ => None,
        };
        let max_depth = self.inner.limits.max_call_depth;
        if depth > max_depth {
            drop_flat(args);
            return Err(Error::new(
                ErrorKind::CallDepth,
                format!(
                    "CallDepthError: calling '{path}' would nest function calls {depth} deep; \
                     the deployment allows {max_depth} (DeploymentBuilder::max_call_depth). \
                     Is a function calling itself without end?"
                ),
            ));
        }
        let call = Call {
            deployment: self.clone(),
            txn,
            envelope,
            invocation: Invocation {
                rejected_envelope: rejected,
                triggered_by: schedule_link,
                caller_flushes,
                remote_parent,
                user_id,
            },
            depth,
            deadline,
            inherited,
        };
        let future = (entry.run)(call, args);
        if depth == 0 {
            return OnFreshStack::new(future).await;
        }
        if stack_used().is_some_and(|used| used > STACK_BUDGET)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            return on_new_task(&runtime, path, future).await;
        }
        future.await
    }
}

/// How much of a thread's stack one poll of a chain of nested calls may use before the next
/// hop continues on a task of its own (a fresh stack). A worker thread has 2 MiB.
const STACK_BUDGET: usize = 256 * 1024;

/// How much of an unknown function path a not-found error repeats.
const MAX_ECHOED_PATH: usize = 256;

thread_local! {
    /// The stack address where the outermost call being polled on this thread started;
    /// 0 when none is.
    static STACK_BASE: Cell<usize> = const { Cell::new(0) };
}

/// The address of a local in a frame of its own: where the stack is now.
#[inline(never)]
fn stack_address() -> usize {
    let probe = 0u8;
    std::hint::black_box(&probe) as *const u8 as usize
}

/// How far the stack is from where the outermost call began, in this poll.
fn stack_used() -> Option<usize> {
    let base = STACK_BASE.with(Cell::get);
    (base != 0).then(|| base.abs_diff(stack_address()))
}

/// A top-level call: marks where its chain of nested calls starts on the stack, on each
/// poll.
struct OnFreshStack<F> {
    inner: Pin<Box<F>>,
}

impl<F> OnFreshStack<F> {
    fn new(future: F) -> Self {
        Self {
            inner: Box::pin(future),
        }
    }
}

/// Puts back the base found when a poll began (also if the poll unwinds).
struct RestoreBase(usize);

impl Drop for RestoreBase {
    fn drop(&mut self) {
        STACK_BASE.with(|base| base.set(self.0));
    }
}

impl<F: Future> Future for OnFreshStack<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let outer = STACK_BASE.with(Cell::get);
        let _restore = RestoreBase(outer);
        if outer == 0 {
            STACK_BASE.with(|base| base.set(stack_address()));
        }
        self.inner.as_mut().poll(cx)
    }
}

/// Aborts a spawned hop when its caller stops waiting for it (a time limit, a drop).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a nested call as a task of its own, so a deep recursion of calls never exhausts
/// one thread's stack; the caller's ambient context goes with it.
async fn on_new_task(
    runtime: &tokio::runtime::Handle,
    path: &'static str,
    future: BoxFuture<'static, Result<Value>>,
) -> Result<Value> {
    let context = crux_runtime::observe::capture_context();
    let task = runtime.spawn(OnFreshStack::new(crux_runtime::observe::with_context(
        context, future,
    )));
    let _abort = AbortOnDrop(task.abort_handle());
    match task.await {
        Ok(result) => result,
        Err(err) if err.is_panic() => Err(panic_error(path, err.into_panic().as_ref())),
        Err(_) => Err(Error::new(
            ErrorKind::Server,
            format!("'{path}' was cancelled by the runtime"),
        )),
    }
}
