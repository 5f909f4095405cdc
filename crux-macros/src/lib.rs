//! Attribute macros for [crux](https://docs.rs/crux). Use them through the facade:
//! `#[crux::action(...)]`, `#[crux::query]`, `#[crux::mutation]` and the `internal_*`
//! variants.
//!
//! Each attribute turns `async fn name(ctx: &Ctx, args: Args) -> crux::Result<T>` into a
//! *function reference*: a unit struct `name` implementing `crux::function::Function`, whose
//! associated `name::handler` is your handler (returning its future) plus a hidden
//! `__crux: Option<Box<Envelope>>` parameter. All metadata is validated at compile time, every
//! problem in one compile, each error at the offending token. See the README of the
//! `crux` repository ("Attribute reference") for every option and rule, and for how to
//! read the generated code with `cargo expand`.

use proc_macro::TokenStream;

mod args;
mod check;
mod ctxt;
mod expand;
mod handler;
mod kind;
mod nearest;
mod taxonomy;

#[cfg(test)]
mod tests;

use kind::Kind;

/// A public action: may call other functions and the outside world; opens a Crux run when
/// called without incoming context.
///
/// Options: `name = "..."` (run name), `root = "<primitive>"` (the run's root primitive,
/// from the Crux taxonomy), `attributes(key = literal, ...)`, `flush = <ms> | false` (the
/// final flush bound, default 3000 ms), `path = "dir/file:export"`, `crate = "..."`.
///
/// ```text
/// #[crux::action(name = "support chat", root = "agent.run", attributes(agentId = "support-chat"))]
/// pub async fn respond(ctx: &ActionCtx, args: RespondArgs) -> crux::Result<Reply> { .. }
/// ```
#[proc_macro_attribute]
pub fn action(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::ACTION, args.into(), item.into()).into()
}

/// An internal action: like [`macro@action`], callable only from other functions and the
/// scheduler. Same options.
#[proc_macro_attribute]
pub fn internal_action(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::INTERNAL_ACTION, args.into(), item.into()).into()
}

/// A public query: read-only, takes `ctx: &QueryCtx`. Options: `path`, `crate`. Queries
/// never open runs, so run options are an error.
#[proc_macro_attribute]
pub fn query(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::QUERY, args.into(), item.into()).into()
}

/// An internal query: like [`macro@query`], callable only from other functions.
#[proc_macro_attribute]
pub fn internal_query(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::INTERNAL_QUERY, args.into(), item.into()).into()
}

/// A public mutation: reads and writes, all-or-nothing, takes `ctx: &MutationCtx`.
/// Options: `path`, `crate`.
#[proc_macro_attribute]
pub fn mutation(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::MUTATION, args.into(), item.into()).into()
}

/// An internal mutation: like [`macro@mutation`], callable only from other functions and
/// the scheduler.
#[proc_macro_attribute]
pub fn internal_mutation(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::INTERNAL_MUTATION, args.into(), item.into()).into()
}
