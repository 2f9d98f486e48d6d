//! Procedural macros for [cacheward](https://docs.rs/cacheward). Use them through the
//! `cacheward` crate, which re-exports them; this crate is an implementation detail.
//!
//! The work is split in stages, each in its own module:
//!
//! * `template` parses and checks one key template (`copilot:llm:policy:<tenant_id>`);
//! * `attr` parses the arguments of `#[cached_store]`, `#[cached]`, `#[invalidates]`
//!   and `#[uncached]`;
//! * `model` builds a model of the annotated trait: every method and its role
//!   (cached, invalidating, pass-through) and every key it uses, checking as it goes;
//! * `expand` writes the decorator from a checked model.
//!
//! Errors are accumulated in `errors::Errors`: a user sees all their mistakes in one
//! build, next to their trait, which is still emitted so the IDE keeps working.

mod attr;
mod errors;
mod expand;
mod model;
mod template;

#[cfg(test)]
mod snapshots;

use proc_macro::TokenStream;

/// Generates a caching decorator `CachingX<S>` for the store trait `X`.
///
/// See the `cacheward` crate documentation for the full description.
#[proc_macro_attribute]
pub fn cached_store(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::cached_store(args.into(), input.into()).into()
}
