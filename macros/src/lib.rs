//! Procedural macros for [cacheward](https://docs.rs/cacheward). Use them through the
//! `cacheward` crate, which re-exports them; this crate is an implementation detail.

use proc_macro::TokenStream;

/// Generates a caching decorator for a store trait. See the `cacheward` crate docs.
#[proc_macro_attribute]
pub fn cached_store(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}
