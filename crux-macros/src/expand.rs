//! Code generation: the handler becomes a unit struct implementing `Function`, with the
//! handler (plus the hidden `__crux` parameter) as an associated fn. Every runtime call goes
//! through a named item in `crux::__private`, so `cargo expand` stays short.
//!
//! Layout (serde_derive's `wrap_in_const`): the struct and its inherent `impl` (what users
//! name and call) sit at module level and spell out `crux::__private::..`; everything else
//! sits in one `const _: () = { use <crate>::__private as __crux_rt; .. };` and goes through
//! that alias. Impls are global, so the `Function` impl inside the block is seen everywhere;
//! `__crux_rt` is only in scope inside the block, where the only user tokens are the
//! function's name and types.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
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
    let handler: HandlerFn = match syn::parse2(item.clone()) {
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
    let output = match handler::shape(kind, &handler.sig, &cx) {
        Some(shape) => generate(kind, &options, &handler, &shape),
        None => quote!(#handler),
    };
    let errors = cx.into_compile_errors();
    quote!(#output #errors)
}

fn generate(kind: Kind, options: &Options, handler: &HandlerFn, shape: &Shape) -> TokenStream {
    let krate = match &options.krate {
        Some(path) => quote!(#path),
        None => quote!(::crux),
    };
    // Module level: the full path. Inside the `const _` block: the alias `RT`.
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
    let handler_docs = if docs.is_empty() {
        let text = format!(
            " The `{ident}` handler as written, with the hidden `__crux` context argument."
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
    let asyncness = &sig.asyncness;
    let fn_token = &sig.fn_token;
    let handler_ident = Ident::new("handler", ident.span());
    let ret = &shape.ret;
    let output_ty = &shape.output;
    let ctx_ty = &shape.ctx_ty;
    let ctx = &shape.ctx.binding;
    // The runtime's result type, spanned at the user's return type (whose own spelling only
    // the `handler_result` check sees, so a foreign error type is reported once, there).
    let result_ty = quote_spanned!(ret.span()=> #krate::Result<#output_ty>);
    let fake_return = fake_return_edge(ret.span(), &result_ty);

    let args_ty = match &shape.args {
        Some(args) => {
            let ty = &args.ty;
            quote!(#ty)
        }
        None => quote!(#rt::NoArgs),
    };
    let (args_param, call_args) = if shape.args.is_some() {
        (quote!(args), quote!(ctx, args, envelope))
    } else {
        (quote!(_args), quote!(ctx, envelope))
    };
    let boxed = quote_spanned!(ret.span()=> ::std::boxed::Box::pin(Self::handler(#call_args)));
    let call = quote! {
        fn call(ctx: &Self::Context, #args_param: Self::Args, envelope: ::core::option::Option<::std::boxed::Box<#rt::Envelope>>) -> #rt::BoxFuture<'_, #krate::Result<Self::Output>> {
            #boxed
        }
    };

    // Spanned at the return type, so errors about the body's result point there.
    let invoke = quote_spanned! {ret.span()=>
        #p::invoke(#ctx, __crux, &<#ident as #p::Function>::METADATA, async move {
            #(#destructure)*
            #fake_return
            #body
        })
        .await
    };
    let metadata = metadata(kind, options, ident, &rt);
    let checks = checks(kind, shape, &rt);

    quote! {
        #(#docs)*
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        #vis struct #ident;

        #(#cfgs)*
        impl #ident {
            #(#attrs)*
            #handler_docs
            #(#lifted)*
            #vis #asyncness #fn_token #handler_ident(#(#inputs,)* __crux: ::core::option::Option<::std::boxed::Box<#p::Envelope>>) -> #result_ty {
                #invoke
            }
        }

        #(#cfgs)*
        const _: () = {
            use #p as #rt;
            impl #rt::Function for #ident {
                type Args = #args_ty;
                type Output = #output_ty;
                type Context = #ctx_ty;
                const METADATA: #rt::Metadata = #metadata;
                fn path() -> &'static str {
                    static PATH: #rt::PathCell = #rt::PathCell::new();
                    PATH.get(&Self::METADATA)
                }
                #call
            }
            #checks
        };
    }
}

/// The alias of `<crate>::__private` inside the `const _` block. Distinct from the handler's
/// `__crux` parameter and the `__crux_return`/`__crux_paramN` bindings (which live in the
/// handler, outside the block), and no name a user would write.
const RT: &str = "__crux_rt";

/// tracing's trick: an unreachable `return` of the result type, spanned at the user's return
/// type, fixes the body's type first, so a mismatch in the user's body is reported against
/// the user's code.
fn fake_return_edge(span: Span, ty: &TokenStream) -> TokenStream {
    quote_spanned! {span=>
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __crux_return: #ty = loop {};
            return __crux_return;
        }
    }
}

fn metadata(kind: Kind, options: &Options, ident: &Ident, rt: &Ident) -> TokenStream {
    let variant = Ident::new(kind.variant(), Span::call_site());
    let visibility = if kind.internal {
        format_ident!("Internal")
    } else {
        format_ident!("Public")
    };
    let export = LitStr::new(&ident.unraw().to_string(), ident.span());
    let some_str = |lit: &Option<LitStr>| match lit {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let path = some_str(&options.path);
    let name = some_str(&options.name);
    let root = some_str(&options.root);
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
    let flush = match (kind.opens_runs(), options.flush) {
        (false, _) | (true, Flush::Disabled) => quote!(::core::option::Option::None),
        (true, Flush::Default) => {
            quote!(::core::option::Option::Some(#rt::Metadata::DEFAULT_FLUSH))
        }
        (true, Flush::Millis(ms)) => {
            let ms = Literal::u64_unsuffixed(ms);
            quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms)))
        }
    };
    quote! {
        #rt::Metadata {
            kind: #rt::FunctionKind::#variant,
            visibility: #rt::Visibility::#visibility,
            module_path: ::core::module_path!(),
            export: #export,
            path: #path,
            name: #name,
            root: #root,
            attributes: &[#(#attributes),*],
            flush: #flush,
        }
    }
}

/// Trait-bound checks, each spanned at the user's type so errors (with the runtime's
/// `#[diagnostic::on_unimplemented]` notes) point there.
fn checks(kind: Kind, shape: &Shape, rt: &Ident) -> TokenStream {
    let context_check = Ident::new(kind.context_check(), Span::call_site());
    let ctx_ty = &shape.ctx_ty;
    let mut checks = quote_spanned!(ctx_ty.span()=> #rt::#context_check::<#ctx_ty>(););
    if let Some(args) = &shape.args {
        let ty = &args.ty;
        checks.extend(quote_spanned!(ty.span()=> #rt::function_args::<#ty>();));
    }
    let output = &shape.output;
    checks.extend(quote_spanned!(output.span()=> #rt::function_output::<#output>();));
    let ret = &shape.ret;
    checks.extend(quote_spanned!(ret.span()=> #rt::handler_result::<#ret>();));
    checks
}
