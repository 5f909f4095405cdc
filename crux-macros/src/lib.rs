//! Attribute macros for crux. Use them through the facade: `#[crux::action(...)]`.
//!
//! SKELETON: pass-through until issue 3 lands.

use proc_macro::TokenStream;

macro_rules! attribute {
    ($($name:ident),*) => {$(
        #[allow(missing_docs)]
        #[proc_macro_attribute]
        pub fn $name(_args: TokenStream, item: TokenStream) -> TokenStream {
            item
        }
    )*};
}

attribute!(
    action,
    internal_action,
    query,
    internal_query,
    mutation,
    internal_mutation
);
