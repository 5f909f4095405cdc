//! What an annotated handler turns into, as seen from user code: a `Function` value with the
//! metadata, Convex path and associated types the attribute declared. Also compiled under
//! `cargo clippy -D warnings`, so it keeps the generated code lint-clean.
#![deny(warnings, clippy::all, clippy::pedantic)]

use std::any::type_name;
use std::time::Duration;

use crux::attributes::AttrLiteral;
use crux::function::{FunctionKind, NoArgs, Visibility};
use crux::prelude::*;

#[derive(Serialize, Deserialize)]
pub struct RespondArgs {
    pub thread_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Reply {
    pub text: String,
}

/// Answers a support chat message.
#[crux::action(
    name = "support chat",
    root = "agent.run",
    attributes(agentId = "support-chat", tier = 2, weight = -0.5, beta = true, agent.team = "core"),
    flush = 1500
)]
pub async fn respond(_ctx: &ActionCtx, args: RespondArgs) -> crux::Result<Reply> {
    Ok(Reply {
        text: args.thread_id,
    })
}

#[crux::internal_action(flush = false, path = "agents/planner:plan")]
pub async fn plan(_ctx: &ActionCtx, args: RespondArgs) -> crux::Result<Vec<String>> {
    Ok(vec![args.thread_id])
}

pub mod research {
    pub mod data {
        use crux::prelude::*;

        #[crux::query]
        pub async fn get_inputs(_ctx: &QueryCtx) -> crux::Result<Vec<String>> {
            Ok(Vec::new())
        }
    }

    #[crux::internal_mutation]
    pub async fn save(_ctx: &crux::local::MutationCtx, ids: Vec<u64>) -> crux::Result<u64> {
        Ok(ids.len() as u64)
    }
}

#[test]
fn action_metadata_carries_every_option() {
    let m = <respond as Function>::METADATA;
    assert_eq!(m.kind, FunctionKind::Action);
    assert_eq!(m.visibility, Visibility::Public);
    assert_eq!(m.export, "respond");
    assert_eq!(m.module_path, "function_refs");
    assert_eq!(m.path, None);
    assert_eq!(m.name, Some("support chat"));
    assert_eq!(m.root, Some("agent.run"));
    assert_eq!(
        m.attributes,
        &[
            ("agentId", AttrLiteral::Str("support-chat")),
            ("tier", AttrLiteral::Int(2)),
            ("weight", AttrLiteral::Float(-0.5)),
            ("beta", AttrLiteral::Bool(true)),
            ("agent.team", AttrLiteral::Str("core")),
        ]
    );
    assert_eq!(m.flush, Some(Duration::from_millis(1500)));
}

#[test]
fn defaults_and_overrides() {
    // (`let plan = ..` would be a pattern matching the unit struct `plan`.)
    let planner = <plan as Function>::METADATA;
    assert_eq!(
        (planner.kind, planner.visibility),
        (FunctionKind::Action, Visibility::Internal)
    );
    assert_eq!(
        planner.flush, None,
        "flush = false disables the final flush"
    );
    assert_eq!((planner.name, planner.root), (None, None));
    assert!(planner.attributes.is_empty());

    let query = <research::data::get_inputs as Function>::METADATA;
    assert_eq!(query.kind, FunctionKind::Query);
    assert_eq!(query.visibility, Visibility::Public);
    assert_eq!(query.flush, None, "queries never flush");

    let save = <research::save as Function>::METADATA;
    assert_eq!(save.kind, FunctionKind::Mutation);
    assert_eq!(save.visibility, Visibility::Internal);
}

/// An action declaring no options.
#[crux::action]
pub async fn bare(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

/// An internal query declaring no options.
#[crux::internal_query]
pub async fn count(_ctx: &QueryCtx) -> crux::Result<u64> {
    Ok(0)
}

/// An internal action declaring no options.
#[crux::internal_action]
pub async fn tick(_ctx: &ActionCtx) -> crux::Result<()> {
    Ok(())
}

/// A public mutation declaring no options.
#[crux::mutation]
pub async fn touch(_ctx: &crux::local::MutationCtx) -> crux::Result<()> {
    Ok(())
}

/// What an attribute leaves unsaid comes from its kind's defaults (the generated `METADATA`
/// spells out only the module path, the export name and the options given).
#[test]
fn attributes_without_options_take_their_kinds_defaults() {
    let action = <bare as Function>::METADATA;
    assert_eq!(
        (action.kind, action.visibility, action.export),
        (FunctionKind::Action, Visibility::Public, "bare")
    );
    assert_eq!(
        action.flush,
        Some(crux::function::Metadata::DEFAULT_FLUSH),
        "an action flushes by default"
    );
    assert_eq!((action.path, action.name, action.root), (None, None, None));
    assert!(action.attributes.is_empty());
    assert_eq!(action.module_path, "function_refs");

    let query = <count as Function>::METADATA;
    assert_eq!(
        (query.kind, query.visibility, query.flush),
        (FunctionKind::Query, Visibility::Internal, None)
    );
    let mutation = <touch as Function>::METADATA;
    assert_eq!(
        (mutation.kind, mutation.visibility, mutation.flush),
        (FunctionKind::Mutation, Visibility::Public, None)
    );
    let internal_action = <tick as Function>::METADATA;
    assert_eq!(
        (
            internal_action.kind,
            internal_action.visibility,
            internal_action.flush
        ),
        (
            FunctionKind::Action,
            Visibility::Internal,
            Some(crux::function::Metadata::DEFAULT_FLUSH)
        ),
        "an internal action flushes by default too"
    );
}

#[test]
fn convex_paths_come_from_the_module_path_unless_overridden() {
    assert_eq!(respond::path(), "function_refs:respond");
    assert_eq!(plan::path(), "agents/planner:plan");
    assert_eq!(
        research::data::get_inputs::path(),
        "research/data:get_inputs"
    );
    assert_eq!(research::save::path(), "research:save");
    // Cached: the same string every time.
    assert!(std::ptr::eq(respond::path(), respond::path()));
}

#[test]
fn associated_types_follow_the_signature() {
    fn types<F: Function>(_: F) -> [&'static str; 3] {
        [
            type_name::<F::Args>(),
            type_name::<F::Output>(),
            type_name::<F::Context>(),
        ]
    }
    assert_eq!(
        types(respond),
        [
            type_name::<RespondArgs>(),
            type_name::<Reply>(),
            type_name::<ActionCtx>()
        ]
    );
    assert_eq!(
        types(research::data::get_inputs),
        [
            type_name::<NoArgs>(),
            type_name::<Vec<String>>(),
            type_name::<QueryCtx>()
        ]
    );
    assert_eq!(
        types(research::save),
        [
            type_name::<Vec<u64>>(),
            type_name::<u64>(),
            type_name::<MutationCtx>()
        ]
    );
}

/// A handler named by a raw identifier: its function reference prints without `r#`, as
/// `derive(Debug)` prints a type's name.
#[crux::query]
pub async fn r#match(_ctx: &QueryCtx) -> crux::Result<u64> {
    Ok(0)
}

#[test]
fn function_values_are_copy_and_debug() {
    let f = respond;
    let g = f;
    #[allow(clippy::clone_on_copy)]
    let h = g.clone();
    assert_eq!(format!("{f:?} {g:?} {h:?}"), "respond respond respond");
    let keyword = r#match;
    assert_eq!(format!("{keyword:?}"), "match");
    assert_eq!(format!("{:#?}", research::save), "save");
}
