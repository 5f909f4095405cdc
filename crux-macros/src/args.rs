//! Parses an attribute's arguments (`name = "..", root = "..", attributes(..), flush = ..,
//! path = "..", crate = ".."`) into [`Options`], reporting every bad argument at its own
//! token and carrying on.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, Lit, LitStr, Token};

use crate::check;
use crate::ctxt::Ctxt;
use crate::kind::Kind;
use crate::nearest::{nearest, one_of};

/// Every option, for suggestions.
const ALL_OPTIONS: &[&str] = &["name", "root", "attributes", "flush", "path", "crate"];
/// The options queries and mutations take.
const PLAIN_OPTIONS: &[&str] = &["path", "crate"];
/// Options only actions take, because only actions open runs.
const RUN_OPTIONS: &[&str] = &["name", "root", "attributes", "flush"];

/// The validated options of one attribute. Invalid values are reported and left out.
#[derive(Default)]
pub struct Options {
    pub name: Option<LitStr>,
    pub root: Option<LitStr>,
    pub attributes: Vec<Attribute>,
    pub flush: Flush,
    pub path: Option<LitStr>,
    pub krate: Option<syn::Path>,
}

/// The final-flush setting of an action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flush {
    /// Not given: the runtime's default bound (3000 ms).
    #[default]
    Default,
    /// `flush = <ms>`.
    Millis(u64),
    /// `flush = false`.
    Disabled,
}

/// One `key = literal` of `attributes(..)`.
pub struct Attribute {
    pub key: String,
    /// The key as written, to span errors at it.
    pub key_tokens: TokenStream,
    pub value: AttrValue,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Parses `args` for an attribute of `kind`.
pub fn parse(kind: Kind, args: TokenStream, cx: &Ctxt) -> Options {
    let mut options = Options::default();
    let mut seen: Vec<String> = Vec::new();
    for chunk in split_commas(args) {
        let parser = |input: ParseStream| parse_option(kind, input, &mut options, &mut seen, cx);
        if let Err(err) = parser.parse2(chunk) {
            cx.syn_error(err);
        }
    }
    options
}

/// Splits a token stream at its top-level commas, so one bad argument cannot hide the next.
fn split_commas(tokens: TokenStream) -> Vec<TokenStream> {
    let mut chunks = vec![TokenStream::new()];
    for tree in tokens {
        match &tree {
            TokenTree::Punct(p) if p.as_char() == ',' => chunks.push(TokenStream::new()),
            _ => chunks.last_mut().expect("never empty").extend([tree]),
        }
    }
    chunks.retain(|chunk| !chunk.is_empty());
    chunks
}

fn parse_option(
    kind: Kind,
    input: ParseStream,
    options: &mut Options,
    seen: &mut Vec<String>,
    cx: &Ctxt,
) -> syn::Result<()> {
    let key = Ident::parse_any(input).map_err(|err| {
        syn::Error::new(
            err.span(),
            "expected an option such as `name = \"...\"`; options are `key = value` pairs separated by `,`",
        )
    })?;
    let key_name = key.unraw().to_string();
    if !ALL_OPTIONS.contains(&key_name.as_str()) {
        let valid = if kind.opens_runs() {
            ALL_OPTIONS
        } else {
            PLAIN_OPTIONS
        };
        let near = nearest(&key_name, valid, 1);
        let message = match near.first() {
            Some(best) => format!("unknown option `{key_name}`; did you mean `{best}`?"),
            None => format!(
                "unknown option `{key_name}`; `#[crux::{}]` takes {}",
                kind.attribute(),
                one_of(valid)
            ),
        };
        return Err(syn::Error::new(key.span(), message));
    }
    if !kind.opens_runs() && RUN_OPTIONS.contains(&key_name.as_str()) {
        return Err(syn::Error::new(
            key.span(),
            format!(
                "`{key_name}` is only for actions: `#[crux::{}]` never starts a run (queries and mutations join the caller's run), so it takes only `path` and `crate`",
                kind.attribute()
            ),
        ));
    }
    if seen.contains(&key_name) {
        return Err(syn::Error::new(
            key.span(),
            format!("duplicate option `{key_name}`: give it once"),
        ));
    }
    seen.push(key_name.clone());

    if key_name == "attributes" {
        let content;
        syn::parenthesized!(content in input);
        let inner: TokenStream = content.parse()?;
        options.attributes = parse_attributes(inner, cx);
        return Ok(());
    }

    input.parse::<Token![=]>()?;
    match key_name.as_str() {
        "name" => {
            let lit = string(input, "name", "`name = \"support chat\"`")?;
            match check::name(&lit.value()) {
                Ok(()) => options.name = Some(lit),
                Err(message) => cx.error(lit.span(), message),
            }
        }
        "root" => {
            let lit = string(input, "root", "`root = \"agent.run\"`")?;
            match check::root(&lit.value()) {
                Ok(()) => options.root = Some(lit),
                Err(message) => cx.error(lit.span(), message),
            }
        }
        "path" => {
            let lit = string(input, "path", "`path = \"dir/file:export\"`")?;
            match check::path(&lit.value()) {
                Ok(()) => options.path = Some(lit),
                Err(message) => cx.error(lit.span(), message),
            }
        }
        "crate" => {
            let lit = string(input, "crate", "`crate = \"my_crux\"`")?;
            match lit.parse_with(syn::Path::parse_mod_style) {
                Ok(path) => options.krate = Some(path),
                Err(_) => cx.error(
                    lit.span(),
                    format!(
                        "`crate` must name a path such as `my_crux`, not {:?}",
                        lit.value()
                    ),
                ),
            }
        }
        "flush" => options.flush = parse_flush(input, cx)?,
        _ => unreachable!("every option in ALL_OPTIONS is handled"),
    }
    end_of_option(input, &key_name)
}

fn end_of_option(input: ParseStream, key: &str) -> syn::Result<()> {
    if input.is_empty() {
        Ok(())
    } else {
        Err(input.error(format!(
            "unexpected tokens after `{key} = ..`; separate options with `,`"
        )))
    }
}

fn string(input: ParseStream, key: &str, example: &str) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        return input.parse();
    }
    let span = input.cursor().span();
    Err(syn::Error::new(
        span,
        format!("`{key}` takes a string literal, as in {example}"),
    ))
}

fn parse_flush(input: ParseStream, cx: &Ctxt) -> syn::Result<Flush> {
    const USAGE: &str =
        "`flush` takes milliseconds (`flush = 1500`) or `false` to disable the final flush";
    let negative = input.peek(Token![-]);
    let minus: Option<Token![-]> = if negative { Some(input.parse()?) } else { None };
    let lit: Lit = input
        .parse()
        .map_err(|err| syn::Error::new(err.span(), USAGE))?;
    match lit {
        Lit::Bool(b) if !b.value && minus.is_none() => Ok(Flush::Disabled),
        Lit::Bool(b) => Err(syn::Error::new(
            b.span,
            "`flush = true` is the default; give milliseconds (`flush = 1500`) or `false`",
        )),
        Lit::Int(int) => {
            let magnitude: i128 = int.base10_parse().unwrap_or(i128::MAX);
            let millis = if negative { -magnitude } else { magnitude };
            match check::flush(millis) {
                Ok(ms) => Ok(Flush::Millis(ms)),
                Err(message) => {
                    cx.error_spanned_by(quote::quote!(#minus #int), message);
                    Ok(Flush::Default)
                }
            }
        }
        other => Err(syn::Error::new(other.span(), USAGE)),
    }
}

/// Parses the inside of `attributes(..)`.
fn parse_attributes(tokens: TokenStream, cx: &Ctxt) -> Vec<Attribute> {
    let mut attributes: Vec<Attribute> = Vec::new();
    for chunk in split_commas(tokens) {
        let parser = |input: ParseStream| parse_attribute(input);
        match parser.parse2(chunk) {
            Ok(attribute) => {
                if let Err(message) = check::attribute_key(&attribute.key) {
                    cx.error_spanned_by(&attribute.key_tokens, message);
                } else if attributes.iter().any(|a| a.key == attribute.key) {
                    cx.error_spanned_by(
                        &attribute.key_tokens,
                        format!("duplicate attribute key `{}`", attribute.key),
                    );
                } else {
                    attributes.push(attribute);
                }
            }
            Err(err) => cx.syn_error(err),
        }
    }
    attributes
}

/// `key = literal`, where the key is an identifier, a dotted name (`agent.tier`) or a string.
fn parse_attribute(input: ParseStream) -> syn::Result<Attribute> {
    let (key, key_tokens) = if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        (lit.value(), lit.to_token_stream())
    } else {
        let first = Ident::parse_any(input).map_err(|err| {
            syn::Error::new(
                err.span(),
                "expected an attribute key: an identifier, a dotted name or a string literal",
            )
        })?;
        let mut key = first.unraw().to_string();
        let mut key_tokens = first.to_token_stream();
        while input.peek(Token![.]) {
            let dot: Token![.] = input.parse()?;
            let next = Ident::parse_any(input)?;
            key.push('.');
            key.push_str(&next.unraw().to_string());
            key_tokens.extend(quote::quote!(#dot #next));
        }
        (key, key_tokens)
    };
    input.parse::<Token![=]>()?;
    let value = parse_attr_value(input, &key)?;
    if !input.is_empty() {
        return Err(input
            .error("unexpected tokens after the attribute value; separate attributes with `,`"));
    }
    Ok(Attribute {
        key,
        key_tokens,
        value,
    })
}

fn parse_attr_value(input: ParseStream, key: &str) -> syn::Result<AttrValue> {
    let not_literal = |span: Span, tokens: TokenStream| {
        let message = format!(
            "attribute `{key}` must be a string, integer, float or bool literal; values are fixed at compile time"
        );
        if tokens.is_empty() {
            syn::Error::new(span, message)
        } else {
            syn::Error::new_spanned(tokens, message)
        }
    };
    let minus: Option<Token![-]> = if input.peek(Token![-]) {
        Some(input.parse()?)
    } else {
        None
    };
    let start = input.cursor().span();
    if !input.peek(Lit) {
        // Report the whole expression, not just its first token.
        let rest: TokenStream = input.parse()?;
        return Err(not_literal(start, rest));
    }
    let lit: Lit = input.parse()?;
    let negative = minus.is_some();
    match lit {
        Lit::Str(s) if minus.is_none() => Ok(AttrValue::Str(s.value())),
        Lit::Bool(b) if minus.is_none() => Ok(AttrValue::Bool(b.value)),
        Lit::Int(int) => {
            let magnitude: i128 = int.base10_parse().map_err(|_| {
                syn::Error::new(
                    int.span(),
                    format!("attribute `{key}` is not a valid integer"),
                )
            })?;
            i64::try_from(if negative { -magnitude } else { magnitude })
                .map(AttrValue::Int)
                .map_err(|_| {
                    syn::Error::new(
                        int.span(),
                        format!("attribute `{key}` does not fit in a 64-bit signed integer"),
                    )
                })
        }
        Lit::Float(float) => {
            let value: f64 = float.base10_parse()?;
            if value.is_finite() {
                Ok(AttrValue::Float(if negative { -value } else { value }))
            } else {
                Err(syn::Error::new(
                    float.span(),
                    format!("attribute `{key}` must be a finite float"),
                ))
            }
        }
        other => Err(not_literal(other.span(), other.to_token_stream())),
    }
}
