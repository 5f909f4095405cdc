//! Expansion snapshots (what `cargo expand` shows a user) and error tests for every rule.

use proc_macro2::TokenStream;
use quote::quote;

use crate::args;
use crate::ctxt::Ctxt;
use crate::expand::expand;
use crate::kind::Kind;

/// The expansion, formatted as a user reads it.
fn pretty(kind: Kind, args: TokenStream, item: TokenStream) -> String {
    let tokens = expand(kind, args, item);
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as items");
    prettyplease::unparse(&file)
}

/// The messages of every error the expansion reports, in order.
fn errors(kind: Kind, args: TokenStream, item: TokenStream) -> Vec<String> {
    let tokens = expand(kind, args, item);
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as items");
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Macro(m)
                if m.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "compile_error") =>
            {
                let lit: syn::LitStr = m.mac.parse_body().expect("a string message");
                Some(lit.value())
            }
            _ => None,
        })
        .collect()
}

/// Errors from parsing `args` alone, with their start line/column.
fn arg_errors(kind: Kind, args: TokenStream) -> Vec<(String, usize)> {
    let cx = Ctxt::default();
    let _ = args::parse(kind, args, &cx);
    cx.into_errors()
        .into_iter()
        .map(|e| (e.to_string(), e.span().start().column))
        .collect()
}

/// Tokens with real source locations (`quote!` gives every token the call site).
fn located(src: &str) -> TokenStream {
    src.parse().expect("valid tokens")
}

fn respond() -> TokenStream {
    quote! {
        /// Answers a support chat message.
        pub async fn respond(ctx: &ActionCtx, args: RespondArgs) -> crux::Result<Reply> {
            let plan = ctx.crux.run_action("plan research", research::plan, args).await?;
            Ok(Reply::from(plan))
        }
    }
}

#[test]
fn snapshot_action_with_every_option() {
    insta::assert_snapshot!(pretty(
        Kind::ACTION,
        quote!(
            name = "support chat",
            root = "agent.run",
            attributes(
                agentId = "support-chat",
                tier = 2,
                "weight" = -0.5,
                beta = true,
                agent.team = "core"
            ),
            flush = 1500,
            path = "support/chat:respond"
        ),
        respond(),
    ));
}

#[test]
fn snapshot_action_defaults() {
    insta::assert_snapshot!(pretty(Kind::ACTION, quote!(), respond()));
}

#[test]
fn snapshot_internal_action_flush_disabled() {
    insta::assert_snapshot!(pretty(
        Kind::INTERNAL_ACTION,
        quote!(flush = false),
        quote! {
            async fn plan(ctx: &ActionCtx, PlanArgs { thread_id, .. }: PlanArgs) -> Result<Plan> {
                #![allow(clippy::needless_return)]
                return Ok(Plan::new(thread_id));
            }
        },
    ));
}

#[test]
fn snapshot_query() {
    insta::assert_snapshot!(pretty(
        Kind::QUERY,
        quote!(),
        quote! {
            pub async fn get_inputs(ctx: &QueryCtx, args: ThreadArgs) -> crux::Result<Vec<Doc>> {
                ctx.db.query("researchInputs").collect().await
            }
        },
    ));
}

#[test]
fn snapshot_internal_query_without_args() {
    insta::assert_snapshot!(pretty(
        Kind::INTERNAL_QUERY,
        quote!(path = "stats:count"),
        quote! {
            pub(crate) async fn count(_ctx: &QueryCtx) -> crux::Result<u64> { Ok(3) }
        },
    ));
}

#[test]
fn snapshot_mutation() {
    insta::assert_snapshot!(pretty(
        Kind::MUTATION,
        quote!(),
        quote! {
            #[cfg(feature = "writes")]
            pub async fn save(ctx: &MutationCtx, mut args: SaveArgs) -> Result<Id, crux::Error> {
                args.normalize();
                ctx.db.insert("docs", args).await
            }
        },
    ));
}

#[test]
fn snapshot_internal_mutation_with_crate_override() {
    insta::assert_snapshot!(pretty(
        Kind::INTERNAL_MUTATION,
        quote!(crate = "my_crux"),
        quote! {
            pub async fn clear(_: &MutationCtx) -> my_crux::Result<()> { Ok(()) }
        },
    ));
}

#[test]
fn snapshot_bad_metadata_still_expands_the_handler() {
    insta::assert_snapshot!(pretty(
        Kind::ACTION,
        quote!(name = "", root = "agentrun", colour = "red"),
        respond(),
    ));
}

#[test]
fn unusable_signature_keeps_the_fn_as_written() {
    let item = quote! { fn plain(x: u8) -> u8 { x } };
    let out = pretty(Kind::ACTION, quote!(), item);
    assert!(out.contains("fn plain(x: u8) -> u8"), "{out}");
    assert!(!out.contains("Function for"), "{out}");
    assert_eq!(
        errors(
            Kind::ACTION,
            quote!(),
            quote! { fn plain(x: u8) -> u8 { x } }
        ),
        [
            "`#[crux::action]` handlers must be `async fn`",
            "the first parameter is the context and is borrowed: `ctx: &ActionCtx`",
            "crux handlers return `crux::Result<T>` (or `Result<T, crux::Error>`)",
        ]
    );
}

#[test]
fn not_a_fn_is_reported_and_kept() {
    let out = expand(
        Kind::QUERY,
        quote!(),
        quote!(
            struct S;
        ),
    )
    .to_string();
    assert!(out.starts_with("struct S ;"), "{out}");
    assert!(
        out.contains("`#[crux::query]` goes on an `async fn` handler"),
        "{out}"
    );
}

#[test]
fn every_bad_option_is_reported_in_one_pass() {
    let errs = errors(
        Kind::ACTION,
        quote!(
            name = "",
            root = "agentrun",
            colour = "red",
            flush = 70000,
            path = "a//b:c"
        ),
        respond(),
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(errs[0].contains("`name` must not be empty"));
    assert!(errs[1].contains("did you mean `agent.run`"));
    assert!(errs[2].starts_with("unknown option `colour`; `#[crux::action]` takes `name`"));
    assert!(errs[3].contains("between 0 and 60000"));
    assert!(errs[4].contains("empty path segment"));
}

#[test]
fn unknown_option_suggests_the_nearest_and_points_at_the_key() {
    assert_eq!(
        arg_errors(Kind::ACTION, located(r#"root = "run", nmae = "x""#)),
        [("unknown option `nmae`; did you mean `name`?".to_owned(), 14)]
    );
    let errs = arg_errors(Kind::QUERY, quote!(pth = "a:b"));
    assert_eq!(errs[0].0, "unknown option `pth`; did you mean `path`?");
}

#[test]
fn duplicate_option_points_at_the_second() {
    let errs = arg_errors(Kind::ACTION, located(r#"name = "a", name = "b""#));
    assert_eq!(
        errs,
        [("duplicate option `name`: give it once".to_owned(), 12)]
    );
}

#[test]
fn run_options_on_queries_and_mutations_explain_why() {
    for kind in [
        Kind::QUERY,
        Kind::INTERNAL_QUERY,
        Kind::MUTATION,
        Kind::INTERNAL_MUTATION,
    ] {
        for args in [
            quote!(name = "x"),
            quote!(root = "agent.run"),
            quote!(attributes(a = 1)),
            quote!(flush = 10),
        ] {
            let errs = arg_errors(kind, args);
            assert_eq!(errs.len(), 1);
            assert!(errs[0].0.contains("is only for actions"), "{}", errs[0].0);
            assert!(errs[0].0.contains("never starts a run"), "{}", errs[0].0);
        }
    }
}

#[test]
fn value_types_are_checked() {
    let errs = arg_errors(
        Kind::ACTION,
        quote!(
            name = 5,
            root = agent,
            path = 1,
            crate = "not a path",
            flush = true,
            flush = "1"
        ),
    );
    let messages: Vec<&str> = errs.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`name` takes a string literal, as in `name = \"support chat\"`",
            "`root` takes a string literal, as in `root = \"agent.run\"`",
            "`path` takes a string literal, as in `path = \"dir/file:export\"`",
            "`crate` must name a path such as `my_crux`, not \"not a path\"",
            "`flush = true` is the default; give milliseconds (`flush = 1500`) or `false`",
            "duplicate option `flush`: give it once",
        ]
    );
}

#[test]
fn bad_values_point_at_the_literal() {
    let errs = arg_errors(Kind::ACTION, located(r#"name = "ok", root = "agentrun""#));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].1, 20, "at the root literal");
    let errs = arg_errors(Kind::ACTION, located(r#"attributes(ok = 1, crux.x = 2)"#));
    assert_eq!(errs[0].1, 19, "at the reserved key");
}

#[test]
fn flush_values() {
    let cx = Ctxt::default();
    assert_eq!(
        args::parse(Kind::ACTION, quote!(flush = 0), &cx).flush,
        args::Flush::Millis(0)
    );
    assert_eq!(
        args::parse(Kind::ACTION, quote!(flush = false), &cx).flush,
        args::Flush::Disabled
    );
    assert_eq!(
        args::parse(Kind::ACTION, quote!(), &cx).flush,
        args::Flush::Default
    );
    assert!(cx.into_errors().is_empty());
    let errs = arg_errors(Kind::ACTION, quote!(flush = -5));
    assert!(errs[0].0.contains("not -5"), "{errs:?}");
    let errs = arg_errors(Kind::ACTION, quote!(flush = 1.5));
    assert!(
        errs[0].0.starts_with("`flush` takes milliseconds"),
        "{errs:?}"
    );
}

#[test]
fn attribute_rules() {
    let errs = arg_errors(
        Kind::ACTION,
        quote!(attributes(
            a = 1,
            a = 2,
            "" = 1,
            functionRef = "x",
            crux.kind = "y",
            b = some_const,
            c = 'x',
            d = [1],
            e = 99999999999999999999
        )),
    );
    let messages: Vec<&str> = errs.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(messages.len(), 8, "{messages:#?}");
    assert_eq!(messages[0], "duplicate attribute key `a`");
    assert_eq!(messages[1], "attribute keys must not be empty");
    assert!(messages[2].starts_with("attribute key `functionRef` is reserved"));
    assert!(messages[3].starts_with("attribute key `crux.kind` is reserved"));
    for (i, key) in [(4, "b"), (5, "c"), (6, "d")] {
        assert_eq!(
            messages[i],
            format!(
                "attribute `{key}` must be a string, integer, float or bool literal; values are fixed at compile time"
            )
        );
    }
    assert_eq!(
        messages[7],
        "attribute `e` does not fit in a 64-bit signed integer"
    );
}

#[test]
fn attribute_values_are_typed() {
    let cx = Ctxt::default();
    let options = args::parse(
        Kind::ACTION,
        quote!(attributes(
            s = "x",
            i = -3,
            f = 2.5,
            b = false,
            "dotted.key" = 1
        )),
        &cx,
    );
    assert!(cx.into_errors().is_empty());
    let values: Vec<(&str, &args::AttrValue)> = options
        .attributes
        .iter()
        .map(|a| (a.key.as_str(), &a.value))
        .collect();
    assert_eq!(
        values,
        [
            ("s", &args::AttrValue::Str("x".into())),
            ("i", &args::AttrValue::Int(-3)),
            ("f", &args::AttrValue::Float(2.5)),
            ("b", &args::AttrValue::Bool(false)),
            ("dotted.key", &args::AttrValue::Int(1)),
        ]
    );
}

#[test]
fn signature_rules() {
    let cases: &[(TokenStream, &str)] = &[
        (
            quote!(
                fn f(ctx: &ActionCtx) -> crux::Result<()> {
                    Ok(())
                }
            ),
            "`#[crux::action]` handlers must be `async fn`",
        ),
        (
            quote!(
                async fn f<T>(ctx: &ActionCtx, a: T) -> crux::Result<()> {
                    Ok(())
                }
            ),
            "crux handlers cannot be generic",
        ),
        (
            quote!(
                async fn f(&self, ctx: &ActionCtx) -> crux::Result<()> {
                    Ok(())
                }
            ),
            "crux handlers are free functions",
        ),
        (
            quote!(
                async fn f() -> crux::Result<()> {
                    Ok(())
                }
            ),
            "this one takes 0 parameters",
        ),
        (
            quote!(
                async fn f(c: &ActionCtx, a: A, b: B) -> crux::Result<()> {
                    Ok(())
                }
            ),
            "this one takes 3 parameters",
        ),
        (
            quote!(
                async fn f(ctx: ActionCtx) -> crux::Result<()> {
                    Ok(())
                }
            ),
            "the first parameter is the context and is borrowed",
        ),
        (
            quote!(
                async fn f(ctx: &mut ActionCtx) -> crux::Result<()> {
                    Ok(())
                }
            ),
            "the first parameter is the context and is borrowed",
        ),
        (
            quote!(
                async fn f(ctx: &ActionCtx) {}
            ),
            "add `-> crux::Result<T>`",
        ),
        (
            quote!(
                async fn f(ctx: &ActionCtx) -> Option<u8> {
                    None
                }
            ),
            "crux handlers return `crux::Result<T>`",
        ),
        (
            quote!(
                async fn f(ctx: &ActionCtx) -> Result<A, B, C> {
                    todo!()
                }
            ),
            "crux handlers return `crux::Result<T>`",
        ),
        (
            quote!(
                async fn f(ctx: &ActionCtx, a: impl Serialize) -> crux::Result<()> {
                    Ok(())
                }
            ),
            "`impl Trait` parameters",
        ),
        (
            quote!(
                async unsafe fn f(ctx: &ActionCtx) -> crux::Result<()> {
                    Ok(())
                }
            ),
            "cannot be `unsafe fn`",
        ),
    ];
    for (item, expected) in cases {
        let errs = errors(Kind::ACTION, quote!(), item.clone());
        assert_eq!(errs.len(), 1, "{item}: {errs:#?}");
        assert!(errs[0].contains(expected), "{item}: {}", errs[0]);
    }
}

#[test]
fn context_type_in_messages_follows_the_kind() {
    let errs = errors(
        Kind::MUTATION,
        quote!(),
        quote!(
            async fn f() -> crux::Result<()> {
                Ok(())
            }
        ),
    );
    assert!(errs[0].contains("`(ctx: &MutationCtx)`"), "{}", errs[0]);
}

#[test]
fn malformed_options_say_what_was_expected() {
    let errs = arg_errors(Kind::ACTION, quote!("support chat"));
    assert!(
        errs[0]
            .0
            .starts_with("expected an option such as `name = \"...\"`"),
        "{errs:?}"
    );
    let errs = arg_errors(Kind::ACTION, quote!(name = "a" "b", root = "run"));
    assert_eq!(errs.len(), 1, "the next option still parses: {errs:?}");
    assert!(
        errs[0].0.starts_with("unexpected tokens after `name = ..`"),
        "{errs:?}"
    );
}

#[test]
fn a_handler_under_an_attribute_macro_stays_an_async_fn() {
    // `#[tracing::instrument]` wraps an `async fn`'s whole body, but only the making of
    // the future of a plain `fn`: such a handler keeps `async fn`. Compiler attributes
    // mean the same on either, so the lighter plain `fn` is kept for them.
    let handler = |attr: TokenStream| {
        let expanded = pretty(
            Kind::ACTION,
            quote!(),
            quote! {
                #attr
                pub async fn respond(ctx: &ActionCtx, args: RespondArgs) -> crux::Result<Reply> {
                    Ok(Reply::from(args))
                }
            },
        );
        expanded
            .lines()
            .find(|l| l.contains("fn handler("))
            .expect("a handler")
            .trim()
            .to_owned()
    };
    for macro_attr in [
        quote!(#[tracing::instrument(skip_all)]),
        quote!(#[instrument]),
    ] {
        assert_eq!(handler(macro_attr), "pub async fn handler(");
    }
    for builtin in [
        quote!(#[allow(clippy::too_many_lines)]),
        quote!(#[deprecated]),
        quote!(#[doc = "Answers."]),
        quote!(#[rustfmt::skip]),
    ] {
        assert_eq!(handler(builtin), "pub fn handler(");
    }
}

#[test]
fn the_generated_handler_doc_says_how_the_handler_returns() {
    let doc = |attr: TokenStream| {
        let expanded = pretty(
            Kind::ACTION,
            quote!(),
            quote! {
                #attr
                pub async fn respond(ctx: &ActionCtx) -> crux::Result<()> {
                    Ok(())
                }
            },
        );
        expanded
            .lines()
            .find(|l| l.contains("The `respond` handler"))
            .expect("the generated doc")
            .to_owned()
    };
    assert!(doc(quote!()).contains("boxed, as `Function::call` returns it"));
    let kept_async = doc(quote!(#[tracing::instrument(skip_all)]));
    assert!(kept_async.contains("kept `async`"), "{kept_async}");
    assert!(!kept_async.contains("boxed"), "{kept_async}");
}
