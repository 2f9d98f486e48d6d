//! Procedural macros for [cacheward](https://docs.rs/cacheward). Use them through the
//! `cacheward` crate, which re-exports them; this crate is an implementation detail.
//!
//! `#[cached_store]` runs in four stages, each in its own module:
//!
//! 1. **parse** — `attr` reads the arguments of `#[cached_store]`, `#[cached]`,
//!    `#[invalidates]` and `#[uncached]` (every option set at most once), and
//!    `template` parses key templates (`copilot:llm:policy:<tenant_id>`);
//! 2. **lower** — `ast` turns the trait into a small model that keeps the user's
//!    tokens, for spans and for the impl;
//! 3. **check** — `check` applies the rules across items: each method's role (cached,
//!    invalidating, pass-through), the template registry, value types, invalidation
//!    targets, TTLs and generic instantiations, producing the `model` the last stage
//!    reads; `names` picks the names the expansion invents so that none collides with
//!    an identifier of the trait;
//! 4. **generate** — `expand` writes the decorator from the checked model, or a stub
//!    decorator beside the errors.
//!
//! Errors are accumulated in `errors::Errors`: a user sees all their mistakes in one
//! build, next to their trait, which is still emitted so the IDE keeps working.

mod alphabet;
mod ast;
mod attr;
mod check;
mod errors;
mod expand;
mod model;
mod names;
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
