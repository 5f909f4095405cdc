//! The error accumulator (serde_derive's `Ctxt`): every check reports and carries on, so a
//! user sees every problem in one compile.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::{Span, TokenStream};

/// Collects errors while parsing, checking and expanding one attribute.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    /// Records an error at `span`.
    pub fn error(&self, span: Span, message: impl Display) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new(span, message));
    }

    /// Records an error spanning `tokens` (first to last token).
    pub fn error_spanned_by(&self, tokens: impl quote::ToTokens, message: impl Display) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(tokens, message));
    }

    /// Records a `syn` parse error as it is.
    pub fn syn_error(&self, error: syn::Error) {
        self.errors.borrow_mut().push(error);
    }

    /// Number of errors so far, to tell whether a phase added any.
    pub fn len(&self) -> usize {
        self.errors.borrow().len()
    }

    /// Every error, in the order found, as `compile_error!{..}` items.
    pub fn into_compile_errors(self) -> TokenStream {
        self.errors
            .into_inner()
            .into_iter()
            .map(syn::Error::into_compile_error)
            .collect()
    }

    /// The errors themselves, for tests.
    #[cfg(test)]
    pub fn into_errors(self) -> Vec<syn::Error> {
        self.errors.into_inner()
    }
}
