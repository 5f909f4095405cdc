//! The annotated fn: parsed cheaply (the body stays unparsed tokens, as tokio does) and
//! checked for the shape every crux handler has: `async fn name(ctx: &Ctx[, args: Args]) ->
//! Result<T>`.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream};
use syn::{
    Attribute, FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Safety, Signature,
    Type, Visibility, braced,
};

use crate::ctxt::Ctxt;
use crate::kind::Kind;

/// An `fn` item whose body is kept as tokens.
pub struct HandlerFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    /// Inner attributes of the body (`#![allow(..)]`), lifted onto the handler.
    pub inner_attrs: Vec<Attribute>,
    pub body: TokenStream,
}

impl Parse for HandlerFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let body = content.parse()?;
        Ok(Self {
            attrs,
            vis,
            sig,
            inner_attrs,
            body,
        })
    }
}

impl HandlerFn {
    /// Parses an annotated item. The body's brace group is split off at the top level and
    /// kept as it came (one handle, not re-collected token by token) unless it starts with
    /// inner attributes; syn parses only the attributes and the signature. Anything else
    /// (not ending in a body, or a head that is no fn signature) goes through [`Parse`], so
    /// its errors are syn's.
    pub fn from_item(item: TokenStream) -> syn::Result<Self> {
        let mut trees: Vec<TokenTree> = item.into_iter().collect();
        let body = match trees.last() {
            Some(TokenTree::Group(group))
                if group.delimiter() == Delimiter::Brace
                    && !starts_with_inner_attribute(&group.stream()) =>
            {
                group.stream()
            }
            _ => return syn::parse2(trees.into_iter().collect()),
        };
        let group = trees.pop();
        let head: TokenStream = trees.iter().cloned().collect();
        let parsed = syn::parse::Parser::parse2(
            |input: ParseStream| {
                let attrs = input.call(Attribute::parse_outer)?;
                let vis = input.parse()?;
                let sig = input.parse()?;
                Ok((attrs, vis, sig))
            },
            head,
        );
        match parsed {
            Ok((attrs, vis, sig)) => Ok(Self {
                attrs,
                vis,
                sig,
                inner_attrs: Vec::new(),
                body,
            }),
            Err(_) => syn::parse2(trees.into_iter().chain(group).collect()),
        }
    }
}

/// Whether a body begins with `#!`: an inner attribute, which syn's [`Parse`] lifts.
fn starts_with_inner_attribute(body: &TokenStream) -> bool {
    let mut trees = body.clone().into_iter();
    matches!(
        (trees.next(), trees.next()),
        (Some(TokenTree::Punct(hash)), Some(TokenTree::Punct(bang)))
            if hash.as_char() == '#' && bang.as_char() == '!'
    )
}

impl ToTokens for HandlerFn {
    /// The fn as written, for when the signature is unusable.
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let Self {
            attrs,
            vis,
            sig,
            inner_attrs,
            body,
        } = self;
        let inner = inner_attrs.iter().map(|attr| {
            let meta = &attr.meta;
            quote!(#![#meta])
        });
        tokens.extend(quote!(#(#attrs)* #vis #sig { #(#inner)* #body }));
    }
}

/// One handler parameter.
pub struct Param {
    /// The pattern as written.
    pub pat: Pat,
    /// The name the generated handler binds it to: the user's identifier when the pattern is
    /// a plain identifier, a fresh one otherwise (destructured inside the body).
    pub binding: Ident,
    /// Whether `binding` is the user's own pattern.
    pub plain: bool,
    pub ty: Type,
}

/// What the expansion needs from a well-formed signature.
pub struct Shape {
    /// The context parameter; its type is `&Ctx`.
    pub ctx: Param,
    /// `Ctx` itself.
    pub ctx_ty: Type,
    /// The argument parameter, if the handler takes one.
    pub args: Option<Param>,
    /// The declared return type (`crux::Result<T>`).
    pub ret: Type,
    /// `T`.
    pub output: Type,
}

/// Checks `sig` against the handler shape, reporting every problem; `None` if unusable.
pub fn shape(kind: Kind, sig: &Signature, cx: &Ctxt) -> Option<Shape> {
    let before = cx.len();
    let attribute = kind.attribute();
    if sig.asyncness.is_none() {
        cx.error(
            sig.fn_token.span,
            format!("`#[crux::{attribute}]` handlers must be `async fn`"),
        );
    }
    if let Some(constness) = &sig.constness {
        cx.error(constness.span, "crux handlers cannot be `const fn`");
    }
    if let Safety::Unsafe(unsafety) = &sig.safety {
        cx.error(unsafety.span, "crux handlers cannot be `unsafe fn`");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "crux handlers cannot declare an `extern` ABI");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        cx.error_spanned_by(
            &sig.generics,
            "crux handlers cannot be generic: a Convex function has one concrete argument and result type",
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "crux handlers cannot be variadic");
    }

    let mut params = Vec::new();
    for (index, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => cx.error_spanned_by(
                receiver,
                "crux handlers are free functions: remove `self` (a handler cannot be a method)",
            ),
            FnArg::Typed(typed) => {
                if let Type::ImplTrait(_) = &*typed.ty {
                    cx.error_spanned_by(
                        &typed.ty,
                        "`impl Trait` parameters make the handler generic; name a concrete type",
                    );
                }
                // `_ctx` is rebound too: the generated code uses it, and clippy's
                // `used_underscore_binding` would blame the user for that.
                let (binding, plain) = match &*typed.pat {
                    Pat::Ident(pat)
                        if pat.by_ref.is_none()
                            && pat.subpat.is_none()
                            && !pat.ident.to_string().starts_with('_') =>
                    {
                        (pat.ident.clone(), true)
                    }
                    _ => (quote::format_ident!("__crux_param{}", index), false),
                };
                params.push(Param {
                    pat: (*typed.pat).clone(),
                    binding,
                    plain,
                    ty: (*typed.ty).clone(),
                });
            }
        }
    }
    let context = kind.context_type();
    if sig.inputs.is_empty() || sig.inputs.len() > 2 {
        let found = sig.inputs.len();
        let message = format!(
            "`#[crux::{attribute}]` handlers take `(ctx: &{context})` or `(ctx: &{context}, args: Args)`; this one takes {found} parameter{}",
            if found == 1 { "" } else { "s" }
        );
        if found == 0 {
            cx.error(sig.paren_token.span.join(), message);
        } else {
            cx.error_spanned_by(&sig.inputs, message);
        }
    }

    let ctx_ty = params.first().and_then(|ctx| match &ctx.ty {
        Type::Reference(reference) if reference.mutability.is_none() => {
            Some((*reference.elem).clone())
        }
        other => {
            cx.error_spanned_by(
                other,
                format!("the first parameter is the context and is borrowed: `ctx: &{context}`"),
            );
            None
        }
    });

    let (ret, output) = match &sig.output {
        ReturnType::Default => {
            cx.error(
                sig.ident.span(),
                "crux handlers return `crux::Result<T>`; add `-> crux::Result<T>` (use `()` for T when there is nothing to return)",
            );
            (None, None)
        }
        ReturnType::Type(_, ty) => match result_ok_type(ty) {
            Some(output) => (Some((**ty).clone()), Some(output)),
            None => {
                cx.error_spanned_by(
                    ty,
                    "crux handlers return `crux::Result<T>` (or `Result<T, crux::Error>`)",
                );
                (None, None)
            }
        },
    };

    if cx.len() > before {
        return None;
    }
    let mut params = params.into_iter();
    Some(Shape {
        ctx: params.next()?,
        ctx_ty: ctx_ty?,
        args: params.next(),
        ret: ret?,
        output: output?,
    })
}

/// `T` of `Result<T>`, `Result<T, E>` or `any::path::Result<T>`.
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let ok = types.next()??.clone();
    match (types.next(), types.next()) {
        (None, None) | (Some(Some(_)), None) => Some(ok),
        _ => None,
    }
}
