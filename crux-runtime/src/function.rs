//! Function references: what `#[crux::action]` and friends turn a handler into.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Result;
pub use crate::attributes::AttrLiteral;
use crate::envelope::Envelope;

mod derived_path;
use derived_path::DerivedPath;

/// A boxed, `Send` future borrowing from `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which of Convex's function kinds a function is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// May call other functions and the outside world; not transactional.
    Action,
    /// Read-only and deterministic.
    Query,
    /// Reads and writes, all-or-nothing.
    Mutation,
}

/// Who may call a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Callable by clients and by other functions.
    Public,
    /// Callable only by other functions and the scheduler.
    Internal,
}

/// Everything the attribute macro knows about a function, fixed at compile time.
#[derive(Clone, Copy, Debug)]
pub struct Metadata {
    /// The function's kind.
    pub kind: FunctionKind,
    /// Public or internal.
    pub visibility: Visibility,
    /// `module_path!()` where the handler was declared.
    pub module_path: &'static str,
    /// The handler's name, the Convex export name.
    pub export: &'static str,
    /// An explicit Convex path (`path = "dir/file:export"`), overriding the derived one.
    pub path: Option<&'static str>,
    /// The run name when this function opens a run (`name = "..."`, actions only).
    pub name: Option<&'static str>,
    /// The run's root primitive when this function opens a run (`root = "..."`, actions only).
    pub root: Option<&'static str>,
    /// User attributes of the run this function opens (actions only).
    pub attributes: &'static [(&'static str, AttrLiteral)],
    /// The bound of the final flush (actions only); `None` disables it.
    pub flush: Option<Duration>,
}

impl Metadata {
    /// The default bound of an action's final flush.
    pub const DEFAULT_FLUSH: Duration = Duration::from_millis(3000);

    /// The canonical Convex path: `dir/file:export`.
    ///
    /// Derived from the module path without the crate name (`app::research::data` and
    /// `get_inputs` give `research/data:get_inputs`); a handler in a crate's root module
    /// uses the crate name as its file. `path = "..."` overrides it.
    pub fn convex_path(&self) -> String {
        if let Some(path) = self.path {
            return path.to_owned();
        }
        let mut segments = self.module_path.split("::");
        let krate = segments.next().unwrap_or_default();
        let rest: Vec<&str> = segments.collect();
        let file = if rest.is_empty() {
            krate.to_owned()
        } else {
            rest.join("/")
        };
        format!("{file}:{}", self.export)
    }
}

/// A Convex function written in Rust: the unit struct `#[crux::action]` and friends generate.
///
/// You never implement this by hand; you pass the values around, as in
/// `ctx.crux.run_action("plan research", research::plan, args)`.
pub trait Function: Copy + Send + Sync + 'static {
    /// The argument object.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// What the handler returns on success.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// The context the handler takes (`ActionCtx`, `QueryCtx` or `MutationCtx`).
    type Context: Send + Sync + 'static;

    /// Kind, visibility, path and observability metadata.
    const METADATA: Metadata;

    /// The canonical Convex path ([`Metadata::convex_path`]): the `path = ".."` override,
    /// or the derived path, built by the compiler (a derived path over 128 bytes is built
    /// on the first call instead, and kept).
    fn path() -> &'static str {
        if let Some(path) = Self::METADATA.path {
            return path;
        }
        let derived = const { DerivedPath::as_str(const { &DerivedPath::of(&Self::METADATA) }) };
        if derived.is_empty() {
            derived_path::interned(&Self::METADATA)
        } else {
            derived
        }
    }

    /// Runs the handler; `envelope` is the decoded hidden `__crux` argument (boxed: it is
    /// about 400 bytes, and moves through several futures before the handler reads it).
    fn call(
        ctx: &Self::Context,
        args: Self::Args,
        envelope: Option<Box<Envelope>>,
    ) -> BoxFuture<'_, Result<Self::Output>>;
}

/// The arguments of a handler that declares none: `{}` on the wire, and nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[cfg(test)]
mod tests {
    use super::*;

    const fn meta(module_path: &'static str, path: Option<&'static str>) -> Metadata {
        Metadata {
            kind: FunctionKind::Query,
            visibility: Visibility::Public,
            module_path,
            export: "get_inputs",
            path,
            name: None,
            root: None,
            attributes: &[],
            flush: None,
        }
    }

    /// The compile-time path (what `Function::path` returns) is `convex_path`'s, and a path
    /// too long for it is built at run time, once.
    #[test]
    fn derived_paths_built_at_compile_time_equal_convex_path() {
        // Two functions that differ only in their metadata.
        macro_rules! function {
            ($name:ident, $metadata:expr) => {
                #[derive(Clone, Copy)]
                struct $name;
                impl Function for $name {
                    type Args = NoArgs;
                    type Output = NoArgs;
                    type Context = ();
                    const METADATA: Metadata = $metadata;
                    fn call(
                        _: &(),
                        args: NoArgs,
                        _: Option<Box<Envelope>>,
                    ) -> BoxFuture<'_, Result<NoArgs>> {
                        Box::pin(async move { Ok(args) })
                    }
                }
            };
        }
        function!(
            Long,
            Metadata {
                module_path: concat!(
                    "app::a_module_with_a_long_name::another_module_with_a_long_name",
                    "::yet_another_module_with_a_long_name::and_one_more_for_good_measure::data"
                ),
                ..meta("", None)
            }
        );
        function!(Short, meta("app::research::data", None));
        for module_path in ["app", "app::x", "app::research::data", "a::b::c::d::e"] {
            let metadata = meta(module_path, None);
            assert_eq!(DerivedPath::of(&metadata).as_str(), metadata.convex_path());
        }
        assert_eq!(Short::path(), "research/data:get_inputs");
        // Built by the compiler, not at run time.
        assert_eq!(DerivedPath::of(&Short::METADATA).as_str(), Short::path());
        // At the capacity the compiler builds it; one byte more and it is built at run time.
        let export = ":get_inputs".len();
        for (len, in_place) in [(128, true), (129, false)] {
            let module = format!("app::{}", "m".repeat(len - export));
            let metadata = meta(Box::leak(module.into_boxed_str()), None);
            let derived = DerivedPath::of(&metadata);
            assert_eq!(metadata.convex_path().len(), len);
            assert_eq!(derived.as_str().is_empty(), !in_place, "{len} bytes");
            if in_place {
                assert_eq!(derived.as_str(), metadata.convex_path());
            }
        }
        // The override wins over the derived path.
        assert_eq!(
            meta("app::research::data", Some("custom:path")).convex_path(),
            "custom:path"
        );
        let long = Long::METADATA.convex_path();
        assert!(long.len() > 128);
        assert_eq!(Long::path(), long);
        assert!(std::ptr::eq(Long::path(), Long::path()));
    }

    #[test]
    fn convex_path_drops_the_crate_and_joins_modules() {
        assert_eq!(
            meta("app::research::data", None).convex_path(),
            "research/data:get_inputs"
        );
        assert_eq!(
            meta("app::research", None).convex_path(),
            "research:get_inputs"
        );
        assert_eq!(
            meta("support_chat", None).convex_path(),
            "support_chat:get_inputs"
        );
        assert_eq!(
            meta("app::x", Some("dir/file:export")).convex_path(),
            "dir/file:export"
        );
    }
}
