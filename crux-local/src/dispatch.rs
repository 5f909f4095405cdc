//! One function call across the JSON boundary: lookup, visibility, `__crux` extraction,
//! argument validation, the handler, and the result back to JSON.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ctx::{HostContext, Invocation};
use super::deployment::Deployment;
use super::store::Transaction;
use super::validation::decode_args;
use crux_runtime::boundary::take_envelope;
use crux_runtime::envelope::Envelope;
use crux_runtime::function::{BoxFuture, Function, Metadata, Visibility};
use crux_runtime::ids::SpanId;
use crux_runtime::{Error, ErrorKind, Result};

/// Who makes a call; decides visibility and the transaction it joins.
#[derive(Debug)]
pub(crate) enum Caller {
    /// A client outside the deployment: public functions only.
    Client,
    /// Another function; a mutation passes its transaction for sub-transactions.
    Function(Option<Arc<Transaction>>),
    /// `ctx.crux.run_action` in this deployment, which flushes the shared pipeline as soon
    /// as the callee returns.
    Boundary,
    /// The scheduler, with the schedule span of a detached job.
    Scheduler(Option<SpanId>),
}

/// Everything a kind-specific executor needs for one call.
#[derive(Debug)]
pub struct Call {
    pub(crate) deployment: Deployment,
    pub(crate) txn: Option<Arc<Transaction>>,
    pub(crate) envelope: Option<Envelope>,
    pub(crate) invocation: Invocation,
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

async fn run<F>(call: Call, args: Value) -> Result<Value>
where
    F: Function,
    F::Context: HostContext,
{
    let args: F::Args = decode_args(args)?;
    let output = F::Context::execute::<F>(call, args)
        .await
        .map_err(across_the_wire)?;
    serde_json::to_value(output).map_err(|err| {
        Error::new(
            ErrorKind::ReturnsValidation,
            format!(
                "ReturnsValidationError: the result of '{}' is not JSON: {err}",
                F::path()
            ),
        )
    })
}

/// An error as the caller receives it: serialized and deserialized, as on Convex.
fn across_the_wire(err: Error) -> Error {
    serde_json::to_value(&err)
        .and_then(serde_json::from_value)
        .unwrap_or(err)
}

/// Serializes a function's arguments; they must form a JSON object.
pub(crate) fn to_json_args<T: Serialize>(args: &T) -> Result<Value> {
    let value = serde_json::to_value(args).map_err(|err| {
        Error::new(
            ErrorKind::ArgumentValidation,
            format!("ArgumentValidationError: arguments are not representable as JSON: {err}"),
        )
    })?;
    Ok(value)
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

/// The `__crux` of a call made by another function in this deployment, as JSON text beside
/// the args object (see [`Deployment::dispatch_with`]).
#[derive(Debug)]
pub(crate) struct EnvelopeText(String);

impl EnvelopeText {
    /// Encodes `envelope` to the JSON text that would travel under `__crux`.
    pub(crate) fn encode(envelope: &Envelope) -> Self {
        Self(envelope.to_json_string())
    }
}

/// Takes `__crux` out of the call and decodes it strictly; a bad envelope is dropped with
/// the reason. Text beside the args is decoded with `Envelope::decode_str`, which applies
/// the same rules with the same errors as the `Value` decoder.
fn split_envelope(
    args: &mut Value,
    text: Option<EnvelopeText>,
) -> (Option<Envelope>, Option<String>) {
    let decoded = match text {
        Some(EnvelopeText(text)) => Some(Envelope::decode_str(&text)),
        None => take_envelope(args).transpose(),
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

    /// [`dispatch`](Self::dispatch) with the `__crux` of the call as JSON text beside the
    /// args object (which then holds none): what the envelope would be under `__crux`,
    /// encoded and strictly decoded from text, without building and walking a
    /// `serde_json::Value` for it on each side (a third of a boundary hop's work).
    pub(crate) async fn dispatch_with(
        &self,
        path: &str,
        mut args: Value,
        envelope: Option<EnvelopeText>,
        caller: Caller,
    ) -> Result<Value> {
        let entry = match self.inner.registry.get(path) {
            Some(entry)
                if entry.metadata.visibility == Visibility::Public
                    || !matches!(caller, Caller::Client) =>
            {
                *entry
            }
            _ => {
                let which = if matches!(caller, Caller::Client) {
                    "public "
                } else {
                    ""
                };
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("Could not find {which}function for '{path}'"),
                ));
            }
        };
        let (envelope, rejected) = split_envelope(&mut args, envelope);
        let caller_flushes = matches!(caller, Caller::Boundary);
        let (txn, schedule_link) = match caller {
            Caller::Client | Caller::Boundary => (None, None),
            Caller::Function(txn) => (txn, None),
            Caller::Scheduler(link) => (None, link),
        };
        let call = Call {
            deployment: self.clone(),
            txn,
            envelope,
            invocation: Invocation {
                rejected_envelope: rejected,
                triggered_by: schedule_link,
                caller_flushes,
            },
        };
        (entry.run)(call, args).await
    }
}
