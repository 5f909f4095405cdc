//! The receiving side of a function boundary in this deployment: finds the host behind a
//! handler's context and runs the body through the core's boundary protocol
//! ([`crux_runtime::boundary::receive`]).

use std::any::Any;
use std::future::Future;

use crux_runtime::Result;
use crux_runtime::boundary;
use crux_runtime::envelope::Envelope;
use crux_runtime::function::Metadata;

use super::ctx::{Host, HostContext};
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
/// actions with the bounded final flush.
pub async fn invoke<C, T, Fut>(
    ctx: &C,
    envelope: Option<Envelope>,
    metadata: &'static Metadata,
    body: Fut,
) -> Result<T>
where
    C: Sync + 'static,
    Fut: Future<Output = Result<T>>,
{
    // Not bounded by `HostContext`: a wrong context type is reported once, by the
    // `#[diagnostic::on_unimplemented]` checks of the generated code, not again here.
    match host_of(ctx) {
        Some(host) => {
            let observer = host.deployment.observer();
            boundary::receive(observer, envelope, metadata, &host.invocation, body).await
        }
        None => body.await,
    }
}
