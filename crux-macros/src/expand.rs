//! Code generation: the handler becomes a unit struct implementing `Function`, with the
//! handler (plus the hidden `__crux` parameter) as an associated fn. Every runtime call goes
//! through a named item in `crux::__private`, so `cargo expand` stays short.
//!
//! Layout (serde_derive's `wrap_in_const`): the struct and its inherent `impl` (what users
//! name and call, with the user's body) sit at module level and spell out
//! `crux::__private::..`; everything else sits in one
//! `const _: () = { use <crate>::__private as __crux_rt; .. };` and goes through that alias
//! (each path segment is tokens rustc parses and resolves for every handler on every
//! rebuild). Impls are global, so the impls inside the block apply everywhere; `__crux_rt`
//! is in scope only inside the block, where the only user tokens are the function's name
//! and types: a user item named `__crux_rt` stays the user's in the handler's body.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr};

use crate::args::{self, AttrValue, Flush, Options};
use crate::ctxt::Ctxt;
use crate::handler::{self, HandlerFn, Shape};
use crate::kind::Kind;

/// Expands one attribute: `args` are the tokens inside `#[crux::kind(..)]`, `item` the fn.
///
/// Never fails: problems come out as `compile_error!{..}` items next to the best expansion
/// possible (the rewritten handler when only metadata is wrong, the fn as written when its
/// signature is unusable), so IDEs and later diagnostics keep working.
pub fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::default();
    let options = args::parse(kind, args, &cx);
    let handler = match HandlerFn::from_item(item.clone()) {
        Ok(handler) => handler,
        Err(err) => {
            cx.error(
                err.span(),
                format!(
                    "`#[crux::{}]` goes on an `async fn` handler: {err}",
                    kind.attribute()
                ),
            );
            let errors = cx.into_compile_errors();
            return quote!(#item #errors);
        }
    };
    let mut output = match handler::shape(kind, &handler.sig, &cx) {
        Some(shape) => generate(kind, &options, &handler, &shape),
        None => quote!(#handler),
    };
    // Extended in place, and only when there are errors: `quote!(#output #errors)` would
    // clone `output`, each of its pending groups a round trip over the proc-macro bridge.
    if cx.len() > 0 {
        output.extend(cx.into_compile_errors());
    }
    output
}

fn generate(kind: Kind, options: &Options, handler: &HandlerFn, shape: &Shape) -> TokenStream {
    let krate = match &options.krate {
        Some(path) => quote!(#path),
        None => quote!(::crux),
    };
    // Module level (the handler and its body): the full path. Inside the `const _` block:
    // the alias `RT`.
    let p = quote!(#krate::__private);
    let rt = Ident::new(RT, Span::call_site());
    let HandlerFn {
        attrs,
        vis,
        sig,
        inner_attrs,
        body,
    } = handler;
    let ident = &sig.ident;
    let docs: Vec<&Attribute> = attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let cfgs: Vec<&Attribute> = attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
    let plain = attrs.iter().all(is_builtin);
    let handler_docs = if docs.is_empty() {
        let returns = if plain {
            ": returns its body's future (boxed, as `Function::call` returns it),"
        } else {
            ", kept `async` for the attribute macros on it,"
        };
        let text = format!(
            " The `{ident}` handler{returns} with the hidden `__crux` envelope argument (`None` when called directly)."
        );
        quote!(#[doc = #text])
    } else {
        TokenStream::new()
    };
    let lifted = inner_attrs.iter().map(|attr| {
        let meta = &attr.meta;
        quote!(#[#meta])
    });

    // The handler keeps the user's signature; patterns that are not plain identifiers get a
    // fresh binding and are destructured first thing in the body.
    let params = std::iter::once(&shape.ctx).chain(&shape.args);
    let inputs = params.clone().map(|param| {
        let ty = &param.ty;
        if param.plain {
            let pat = &param.pat;
            quote!(#pat: #ty)
        } else {
            let binding = &param.binding;
            quote!(#binding: #ty)
        }
    });
    let destructure = params.filter(|param| !param.plain).map(|param| {
        let (pat, binding) = (&param.pat, &param.binding);
        if matches!(pat, syn::Pat::Ident(_)) {
            // `_ctx` as written: a rebinding the user never sees.
            quote!(#[allow(clippy::no_effect_underscore_binding)] let #pat = #binding;)
        } else {
            quote!(let #pat = #binding;)
        }
    });
    let fn_token = &sig.fn_token;
    let handler_ident = Ident::new("handler", ident.span());
    // The user's types, each turned into tokens (and its span found) once: every
    // interpolation of a syn tree re-emits it token by token.
    let ret = Typed::new(&shape.ret);
    let output_ty = Typed::new(&shape.output);
    let ctx_ty = Typed::new(&shape.ctx_ty);
    let arg_ty = shape.args.as_ref().map(|args| Typed::new(&args.ty));
    let ctx = &shape.ctx.binding;
    // The runtime's result type, spanned at the user's return type (whose own spelling only
    // the `*_types` check's `HandlerResult` bound sees, so a foreign error type is reported
    // once, there).
    let result_ty = {
        let output_ty = &output_ty.tokens;
        quote_spanned!(ret.span=> #krate::Result<#output_ty>)
    };
    let fake_return = fake_return_edge(ret.span, &p, &result_ty);

    let args_ty = match &arg_ty {
        Some(ty) => ty.tokens.clone(),
        None => quote!(#rt::NoArgs),
    };
    let (args_param, call_args) = if shape.args.is_some() {
        (quote!(args), quote!(ctx, args, envelope))
    } else {
        (quote!(_args), quote!(ctx, envelope))
    };
    // A plain `fn` returning the boxed future that `call` returns as it is (no coroutine of
    // its own, no opaque type, no box of `call`'s own: `invoke_boxed` boxes the body and the
    // future it returns), unless the user put an attribute macro on the handler
    // (`#[tracing::instrument]`): that one must see an `async fn`, as written, to wrap the
    // whole call rather than the future's making; `call` then boxes its future.
    let invoke = Ident::new(
        if plain { "invoke_boxed" } else { "invoke" },
        Span::call_site(),
    );
    // Spanned at the return type, so errors about the body's result point there.
    let invoke = quote_spanned! {ret.span=>
        #p::#invoke(#ctx, __crux, &<Self as #p::Function>::METADATA, async move {
            #(#destructure)*
            #fake_return
            #body
        })
    };
    let (handler_fn, forward) = if plain {
        (
            quote! {
                #vis #fn_token #handler_ident(#(#inputs,)* __crux: #p::IncomingEnvelope) -> #p::BoxFuture<'_, #result_ty> {
                    #invoke
                }
            },
            quote!(Self::handler(#call_args)),
        )
    } else {
        (
            quote! {
                #vis async #fn_token #handler_ident(#(#inputs,)* __crux: #p::IncomingEnvelope) -> #result_ty {
                    #invoke.await
                }
            },
            quote_spanned!(ret.span=> #rt::Box::pin(Self::handler(#call_args))),
        )
    };
    let call = quote! {
        fn call(ctx: &Self::Context, #args_param: Self::Args, envelope: #rt::IncomingEnvelope) -> #rt::BoxFuture<'_, #krate::Result<Self::Output>> {
            #forward
        }
    };
    let (output_tokens, ctx_tokens) = (&output_ty.tokens, &ctx_ty.tokens);
    // `Clone`, `Copy` and `Debug` written out rather than derived: equivalent impls without
    // three derive expansions per handler (the derives' `clone`/`fmt` are `#[inline]` too;
    // `derive(Clone)` on a `Copy` type also adds an unstable `TrivialClone` impl, which only
    // matters to the standard library). `Debug` prints the name as `derive(Debug)` would
    // (without `r#`). The `Clone` impl is
    // `#[automatically_derived]`, as the derive's is: clippy's pedantic
    // `expl_impl_clone_on_copy` skips it (an `allow` of that lint cost 13 M instructions
    // more per 200 handlers: a lint level set per impl).
    let name = LitStr::new(&ident.unraw().to_string(), ident.span());
    let metadata = metadata(kind, options, ident, &rt);
    let checks = checks(kind, &ctx_ty, &args_ty, &output_ty, &ret, &rt);

    quote! {
        #(#docs)*
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #vis struct #ident;

        #(#cfgs)*
        impl #ident {
            #(#attrs)*
            #handler_docs
            #(#lifted)*
            #handler_fn
        }

        #(#cfgs)*
        const _: () = {
            use #p as #rt;
            #[automatically_derived]
            impl #rt::Clone for #ident {
                #[inline]
                fn clone(&self) -> Self {
                    *self
                }
            }
            impl #rt::Copy for #ident {}
            impl #rt::Debug for #ident {
                #[inline]
                fn fmt(&self, f: &mut #rt::Formatter<'_>) -> #rt::FmtResult {
                    f.write_str(#name)
                }
            }
            impl #rt::Function for #ident {
                type Args = #args_ty;
                type Output = #output_tokens;
                type Context = #ctx_tokens;
                const METADATA: #rt::Metadata = #metadata;
                #call
            }
            #checks
        };
    }
}

/// The alias of `<crate>::__private` inside the `const _` block. Distinct from the handler's
/// `__crux` parameter and the `__crux_paramN` bindings (which live in the handler, outside
/// the block), and no name a user would write.
const RT: &str = "__crux_rt";

/// Whether an attribute is the compiler's own (or a tool's: `rustfmt::`, `clippy::`), so
/// it means the same on a plain `fn` as on an `async fn`; anything else may be an attribute
/// macro that rewrites an `async fn`.
fn is_builtin(attr: &Attribute) -> bool {
    const BUILTIN: &[&str] = &[
        "doc",
        "cfg",
        "allow",
        "warn",
        "deny",
        "forbid",
        "expect",
        "deprecated",
        "must_use",
        "inline",
        "cold",
        "track_caller",
    ];
    let path = attr.path();
    match path.segments.first() {
        Some(first) if path.segments.len() > 1 => {
            first.ident == "rustfmt" || first.ident == "clippy"
        }
        Some(only) => BUILTIN.iter().any(|b| only.ident == b),
        None => false,
    }
}

/// tracing's trick: an unreachable `return` of the result type, spanned at the user's return
/// type, fixes the body's type first, so a mismatch in the user's body is reported against
/// the user's code.
fn fake_return_edge(span: Span, p: &TokenStream, ty: &TokenStream) -> TokenStream {
    quote_spanned! {span=>
        if false {
            return #p::fake_return::<#ty>();
        }
    }
}

fn metadata(kind: Kind, options: &Options, ident: &Ident, rt: &Ident) -> TokenStream {
    let defaults = Ident::new(kind.defaults(), Span::call_site());
    let export = LitStr::new(&ident.unraw().to_string(), ident.span());
    let mut fields = TokenStream::new();
    let some_str = |field: &str, lit: &Option<LitStr>, fields: &mut TokenStream| {
        if let Some(lit) = lit {
            let field = Ident::new(field, Span::call_site());
            fields.extend(quote!(#field: #rt::Some(#lit),));
        }
    };
    some_str("path", &options.path, &mut fields);
    some_str("name", &options.name, &mut fields);
    some_str("root", &options.root, &mut fields);
    if !options.attributes.is_empty() {
        let attributes = options.attributes.iter().map(|attribute| {
            let key = LitStr::new(&attribute.key, Span::call_site());
            let value = match &attribute.value {
                AttrValue::Str(s) => quote!(Str(#s)),
                AttrValue::Int(i) => {
                    let lit = Literal::i64_unsuffixed(*i);
                    quote!(Int(#lit))
                }
                AttrValue::Float(f) => {
                    let lit = Literal::f64_unsuffixed(*f);
                    quote!(Float(#lit))
                }
                AttrValue::Bool(b) => quote!(Bool(#b)),
            };
            quote!((#key, #rt::AttrLiteral::#value))
        });
        fields.extend(quote!(attributes: &[#(#attributes),*],));
    }
    // The defaults hold `None` for queries and mutations and the default bound for actions.
    match (kind.opens_runs(), options.flush) {
        (false, _) | (true, Flush::Default) => {}
        (true, Flush::Disabled) => fields.extend(quote!(flush: ::core::option::Option::None,)),
        (true, Flush::Millis(ms)) => {
            let ms = Literal::u64_unsuffixed(ms);
            fields.extend(quote!(flush: #rt::Some(::core::time::Duration::from_millis(#ms)),));
        }
    }
    quote! {
        #rt::Metadata {
            module_path: ::core::module_path!(),
            export: #export,
            #fields
            ..#rt::#defaults
        }
    }
}

/// A user's type as tokens, with the span errors about it point at.
struct Typed {
    tokens: TokenStream,
    span: Span,
}

impl Typed {
    fn new(ty: &syn::Type) -> Self {
        let tokens = ty.to_token_stream();
        let span = tokens.span();
        Self { tokens, span }
    }
}

/// The trait-bound checks: one call of the kind's `*_types` fn with the user's context,
/// arguments (`NoArgs` for a handler without) and return type, and one of `function_output`
/// with the result type (apart: rustc reports a type's unmet bound once per call, and the
/// result type is often the argument type). rustc reports an unmet bound at that type's
/// own tokens, with the runtime's `#[diagnostic::on_unimplemented]` message.
fn checks(
    kind: Kind,
    ctx_ty: &Typed,
    args_ty: &TokenStream,
    output: &Typed,
    ret: &Typed,
    rt: &Ident,
) -> TokenStream {
    let check = Ident::new(kind.types_check(), Span::call_site());
    let (ctx, output, ret) = (&ctx_ty.tokens, &output.tokens, &ret.tokens);
    quote!(#rt::#check::<#ctx, #args_ty, #ret>(); #rt::function_output::<#output>();)
}
