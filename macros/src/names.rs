//! Names the macro invents (the decorator's type parameter, its statics), chosen so
//! that no identifier of the user's trait can collide with them, as pin-project
//! chooses its lifetime name: every identifier anywhere in the trait's tokens (its
//! name, generics, signatures, attributes, default bodies) is taken.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::Ident;

/// The identifiers of the user's trait.
pub(crate) struct Taken(HashSet<String>);

impl Taken {
    /// Every identifier (and lifetime name) in `tokens`.
    pub(crate) fn of(tokens: TokenStream) -> Self {
        let mut set = HashSet::new();
        collect(tokens, &mut set);
        Taken(set)
    }

    /// `base` if the trait never uses it, else `base` followed by the first free number.
    pub(crate) fn fresh(&self, base: &str) -> String {
        if !self.0.contains(base) {
            return base.to_owned();
        }
        (0..)
            .map(|n| format!("{base}{n}"))
            .find(|name| !self.0.contains(name))
            .expect("some number is free")
    }

    /// Whether the tokens use `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// [`fresh`](Self::fresh) as an identifier.
    pub(crate) fn fresh_ident(&self, base: &str) -> Ident {
        Ident::new(&self.fresh(base), Span::call_site())
    }
}

fn collect(tokens: TokenStream, set: &mut HashSet<String>) {
    for tt in tokens {
        match tt {
            TokenTree::Ident(ident) => {
                let name = ident.to_string();
                let name = name.strip_prefix("r#").map(str::to_owned).unwrap_or(name);
                set.insert(name);
            }
            TokenTree::Group(group) => collect(group.stream(), set),
            TokenTree::Punct(_) | TokenTree::Literal(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn picks_a_name_the_trait_does_not_use() {
        let taken = Taken::of(quote!(
            trait S<T> {
                fn f(&self) -> Result<Option<S0>, E>;
            }
        ));
        assert_eq!(taken.fresh("S"), "S1");
        assert_eq!(taken.fresh("Inner"), "Inner");
        let taken = Taken::of(quote!(
            trait Store {
                fn f(&self, x: core::S) -> T;
            }
        ));
        assert_eq!(taken.fresh("S"), "S0", "a path segment counts too");
    }
}
