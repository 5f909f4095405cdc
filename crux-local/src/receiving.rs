//! The receiving side of a function boundary in this deployment: finds the host behind a
//! handler's context and runs the body through the core's boundary protocol
//! ([`crux_runtime::boundary::receive`]).

use std::any::Any;
use std::future::Future;
use std::pin::{Pin, pin};

use crux_runtime::boundary;
use crux_runtime::envelope::Envelope;
use crux_runtime::function::{BoxFuture, FunctionKind, Metadata};
use crux_runtime::{Error, ErrorKind, Result};

use super::ctx::{Deadline, Host, HostContext};
use super::{ActionCtx, MutationCtx, QueryCtx};

/// The host behind a handler's context, if `C` is one of the three context types.
fn host_of<C: 'static>(ctx: &C) -> Option<&Host> {
    let ctx: &dyn Any = ctx;
    if let Some(ctx) = ctx.downcast_ref::<ActionCtx>() {
        return Some(ctx.host());
    }
    if let Some(ctx) = ctx.downcast_ref::<QueryCtx>() {
        return Some(ctx.host());
    }
    ctx.downcast_ref::<MutationCtx>().map(HostContext::host)
}

/// Runs a handler body inside its Crux boundary: restores the caller's context or opens a
/// run (actions without incoming context), records the boundary acknowledgements, and ends
/// actions with the bounded final flush. The body runs under its kind's execution limit,
/// and a panic in it is an error; either way the run and the boundary end `error`.
///
/// With [`invoke_boxed`], the only part generic over the handler: every handler
/// instantiates one of the two, so neither is a coroutine; they find the host and box the
/// body (one allocation per call), leaving the rest to `invoke_output`, instantiated once
/// per output type, and to one non-generic future, compiled once. This one is for a
/// handler under an attribute macro, which stays an `async fn` awaiting it.
pub fn invoke<'a, C, T, Fut>(
    ctx: &'a C,
    envelope: Option<Box<Envelope>>,
    metadata: &'static Metadata,
    body: Fut,
) -> impl Future<Output = Result<T>> + Send + 'a
where
    C: Sync + 'static,
    T: Send + 'a,
    Fut: Future<Output = Result<T>> + Send + 'a,
{
    // Not bounded by `HostContext`: a wrong context type is reported once, by the
    // `#[diagnostic::on_unimplemented]` checks of the generated code, not again here.
    invoke_output(host_of(ctx), envelope, metadata, Box::pin(body))
}

/// [`invoke`] returning the boxed future `Function::call` returns: a plain generated
/// handler returns it and `call` forwards it as it is. Still two allocations per call
/// through `call` (the body's box and this one, where `call` used to box `invoke`'s
/// future), but per handler one opaque future type and one `Box::pin` with its unsizing
/// fewer for rustc to check, lower and compile on every rebuild. A handler called directly
/// (`name::handler(..)`, a test's shortcut) now pays that second box too: it used to
/// return `invoke`'s future unboxed.
pub fn invoke_boxed<'a, C, T, Fut>(
    ctx: &'a C,
    envelope: Option<Box<Envelope>>,
    metadata: &'static Metadata,
    body: Fut,
) -> BoxFuture<'a, Result<T>>
where
    C: Sync + 'static,
    T: Send + 'a,
    Fut: Future<Output = Result<T>> + Send + 'a,
{
    Box::pin(invoke_output(
        host_of(ctx),
        envelope,
        metadata,
        Box::pin(body),
    ))
}

/// [`invoke`] past the body's type: keeps the body's output while the boundary protocol
/// runs it with the output type erased too.
async fn invoke_output<'a, T: Send + 'a>(
    host: Option<&'a Host>,
    envelope: Option<Box<Envelope>>,
    metadata: &'static Metadata,
    body: BoxFuture<'a, Result<T>>,
) -> Result<T> {
    let mut output = None;
    let done = {
        let body = pin!(async {
            output = Some(body.await?);
            Ok(())
        });
        invoke_erased(host, envelope, metadata, body).await
    };
    match (done, output) {
        (Ok(()), Some(value)) => Ok(value),
        (Err(err), _) => Err(err),
        (Ok(()), None) => Err(no_value(metadata)),
    }
}

/// The body of [`invoke`] with the handler's types erased: one copy for every handler.
/// Without a host (a context of another type) the body just runs.
async fn invoke_erased(
    host: Option<&Host>,
    envelope: Option<Box<Envelope>>,
    metadata: &'static Metadata,
    body: Pin<&mut (dyn Future<Output = Result<()>> + Send + '_)>,
) -> Result<()> {
    let Some(host) = host else {
        return body.await;
    };
    let observer = host.deployment.observer();
    let body = within(host.deadline, metadata, body);
    // With the `tracing` feature, a call whose log lines are collected makes them current
    // while its body is polled, for `ConsoleLayer`.
    #[cfg(feature = "tracing")]
    if let Some(lines) = host.inherited.log_lines.clone() {
        let body = std::pin::pin!(body);
        let body = crate::console::WithLogLines::new(lines, body);
        return boundary::receive(observer, envelope, metadata, &host.invocation, body).await;
    }
    boundary::receive(observer, envelope, metadata, &host.invocation, body).await
}

/// `Ok` comes only from the body, which stores its value first: never reached.
#[cold]
fn no_value(metadata: &'static Metadata) -> Error {
    Error::new(
        ErrorKind::Server,
        format!("'{}' returned no value", metadata.convex_path()),
    )
}

/// Runs `body` until `deadline`; past it the body is dropped (a mutation's transaction is
/// then aborted by its executor, releasing the write lock) and the call fails with
/// [`ErrorKind::Timeout`]. The timer is made on the first poll, inside the boundary's
/// panic guard, so a runtime without timers gives an error, not a crash.
async fn within<T>(
    deadline: Deadline,
    metadata: &'static Metadata,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout_at(deadline.at, body).await {
        Ok(result) => result,
        Err(_) => {
            let (kind, setting) = match deadline.kind {
                FunctionKind::Action => ("action", "action_timeout"),
                FunctionKind::Query => ("query", "query_timeout"),
                FunctionKind::Mutation => ("mutation", "mutation_timeout"),
            };
            let whose = if deadline.inherited {
                "its caller's "
            } else {
                "the "
            };
            Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "TimeoutError: '{}' was still running when {whose}{kind} execution limit \
                     of {:?} ran out (DeploymentBuilder::{setting})",
                    metadata.convex_path(),
                    deadline.limit,
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static METADATA: Metadata = crux_runtime::__macro_support::QUERY;

    /// What a generated `call` forwards as it is: the body's result, in the boxed future
    /// `Function::call` returns; a context of no host runs the body as it is.
    #[test]
    fn invoke_boxed_returns_the_bodys_result_in_calls_future() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let ctx = ();
        let future: BoxFuture<'_, Result<u32>> =
            invoke_boxed(&ctx, None, &METADATA, async { Ok(7) });
        assert_eq!(runtime.block_on(future).expect("the body's value"), 7);
        let failing: BoxFuture<'_, Result<u32>> = invoke_boxed(&ctx, None, &METADATA, async {
            Err(Error::new(ErrorKind::Server, "no"))
        });
        let err = runtime.block_on(failing).expect_err("the body's error");
        assert_eq!(err.message(), "no");
    }
}
