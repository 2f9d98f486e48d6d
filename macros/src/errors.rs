//! Accumulating errors, in the manner of serde's `Ctxt` and darling's accumulator:
//! every stage records what is wrong and carries on, so one build reports every
//! mistake instead of the first.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;

/// The errors found so far. Must be consumed with [`Errors::finish`]: dropping it
/// unchecked would silently lose errors, so that panics in debug builds.
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
    finished: bool,
}

impl Errors {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records an error at `span`.
    pub(crate) fn error(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records an error spanning all of `tokens` (first to last token).
    pub(crate) fn error_spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error that is already a `syn::Error`.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// All the errors as `compile_error!` invocations (empty when there are none).
    pub(crate) fn finish(mut self) -> TokenStream {
        self.finished = true;
        let errors = std::mem::take(&mut self.errors);
        errors.into_iter().map(|e| e.to_compile_error()).collect()
    }
}

impl Drop for Errors {
    fn drop(&mut self) {
        if !self.finished && !std::thread::panicking() {
            debug_assert!(
                self.errors.is_empty(),
                "cacheward-macros: errors dropped without being reported"
            );
        }
    }
}
