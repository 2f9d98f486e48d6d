//! Lowering: the annotated trait as a small model that keeps the user's tokens (for
//! spans and for the impl), with our helper attributes parsed and removed. Nothing
//! here decides what a method does; that is the check stage's work.

use syn::{
    Attribute, FnArg, GenericArgument, Ident, ItemTrait, Pat, PathArguments, ReturnType, Signature,
    TraitItem, TraitItemConst, TraitItemType, Type, TypeParamBound, Visibility,
};

use crate::attr::{self, MethodAttrs};
use crate::errors::Errors;

/// The trait as written.
pub(crate) struct Trait {
    pub vis: Visibility,
    pub ident: Ident,
    pub generics: syn::Generics,
    pub unsafety: Option<syn::token::Unsafe>,
    pub supertraits: Vec<TypeParamBound>,
    /// `#[async_trait]` / `#[async_trait(?Send)]` on the trait, if any.
    pub async_trait: Option<Attribute>,
    /// `#[async_trait]` ran before `#[cached_store]` (its rewritten methods show it).
    pub rewritten_by_async_trait: bool,
    pub items: Vec<Item>,
}

#[allow(
    clippy::large_enum_variant,
    reason = "a trait has a handful of items, built once per expansion"
)]
pub(crate) enum Item {
    Method(Method),
    Type(TraitItemType),
    Const(TraitItemConst),
}

pub(crate) struct Method {
    /// The signature as the impl writes it: our attributes removed, patterns renamed.
    pub sig: Signature,
    /// `#[cfg]`/`#[cfg_attr]` attributes, repeated on the impl method.
    pub cfg_attrs: Vec<Attribute>,
    pub receiver: Receiver,
    /// Argument names, in order, as the impl signature binds them.
    pub args: Vec<Ident>,
    /// What the user called each argument (`None` for patterns such as `_`).
    pub params: Vec<Param>,
    pub asyncness: Asyncness,
    /// The type the method (or its future) returns.
    pub output: Option<Type>,
    pub attrs: MethodAttrs,
}

#[derive(Clone)]
pub(crate) struct Param {
    pub user: Option<Ident>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Receiver {
    None,
    Ref,
    RefMut,
    Value,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Asyncness {
    /// `async fn`.
    AsyncFn,
    /// `fn … -> impl Future<Output = T> (+ Send)`.
    ImplFuture,
    Sync,
}

impl Trait {
    /// Lowers `item`, removing our helper attributes from it (so that it can be emitted
    /// as is, even when there are errors).
    pub(crate) fn lower(item: &mut ItemTrait, errors: &mut Errors) -> Trait {
        let async_trait = item
            .attrs
            .iter()
            .find(|a| {
                a.path()
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "async_trait")
            })
            .cloned();
        let rewritten_by_async_trait = item.items.iter().any(|i| {
            matches!(i, TraitItem::Fn(f) if f.sig.generics.lifetimes().any(|l| l.lifetime.ident == "async_trait"))
        });
        let mut items = Vec::new();
        for trait_item in &mut item.items {
            match trait_item {
                TraitItem::Fn(f) => {
                    let attrs = attr::take_method_attrs(&mut f.attrs, errors);
                    let cfg_attrs = f
                        .attrs
                        .iter()
                        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
                        .cloned()
                        .collect();
                    items.push(Item::Method(Method::lower(&f.sig, cfg_attrs, attrs)));
                }
                TraitItem::Type(t) => {
                    attr::reject_helper_attrs(&mut t.attrs, "an associated type", errors);
                    items.push(Item::Type(t.clone()));
                }
                TraitItem::Const(c) => {
                    attr::reject_helper_attrs(&mut c.attrs, "an associated constant", errors);
                    items.push(Item::Const(c.clone()));
                }
                TraitItem::Macro(m) => errors.error_spanned(
                    m,
                    "`#[cached_store]` cannot see through macro invocations in a trait: write the items out",
                ),
                other => errors.error_spanned(
                    other,
                    "`#[cached_store]` does not understand this trait item",
                ),
            }
        }
        Trait {
            vis: item.vis.clone(),
            ident: item.ident.clone(),
            generics: item.generics.clone(),
            unsafety: item.unsafety,
            supertraits: item.supertraits.iter().cloned().collect(),
            async_trait,
            rewritten_by_async_trait,
            items,
        }
    }

    pub(crate) fn methods(&self) -> impl Iterator<Item = &Method> {
        self.items.iter().filter_map(|i| match i {
            Item::Method(m) => Some(m),
            _ => None,
        })
    }
}

impl Method {
    fn lower(sig: &Signature, cfg_attrs: Vec<Attribute>, attrs: MethodAttrs) -> Method {
        let mut sig = sig.clone();
        let receiver = receiver_of(&sig);
        let (args, params) = rename_params(&mut sig);
        let (asyncness, output) = asyncness_of(&sig);
        Method {
            sig,
            cfg_attrs,
            receiver,
            args,
            params,
            asyncness,
            output,
            attrs,
        }
    }

    pub(crate) fn name(&self) -> String {
        self.sig.ident.to_string()
    }

    /// The parameter the user named `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&Ident> {
        self.params
            .iter()
            .find_map(|p| p.user.as_ref().filter(|u| *u == name))
    }

    pub(crate) fn param_names(&self) -> impl Iterator<Item = &Ident> {
        self.params.iter().filter_map(|p| p.user.as_ref())
    }
}

fn receiver_of(sig: &Signature) -> Receiver {
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) => {
            if r.colon_token.is_some() {
                // `self: Box<Self>`, `self: &Self`, …
                match &*r.ty {
                    Type::Reference(t) if is_self(&t.elem) => {
                        if t.mutability.is_some() {
                            Receiver::RefMut
                        } else {
                            Receiver::Ref
                        }
                    }
                    t if is_self(t) => Receiver::Value,
                    _ => Receiver::Other,
                }
            } else if r.reference.is_some() {
                if r.mutability.is_some() {
                    Receiver::RefMut
                } else {
                    Receiver::Ref
                }
            } else {
                Receiver::Value
            }
        }
        _ => Receiver::None,
    }
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self"))
}

/// Gives every argument a plain name in the impl: the user's identifier, or `__argN`
/// for other patterns. Returns the names and what the user called each one.
fn rename_params(sig: &mut Signature) -> (Vec<Ident>, Vec<Param>) {
    let mut names = Vec::new();
    let mut params = Vec::new();
    for (i, arg) in sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(pt) = arg else { continue };
        let user = match &*pt.pat {
            Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() && pi.ident != "_" => {
                Some(pi.ident.clone())
            }
            _ => None,
        };
        let name = user
            .clone()
            .unwrap_or_else(|| Ident::new(&format!("__arg{i}"), proc_macro2::Span::mixed_site()));
        *pt.pat = Pat::Ident(syn::PatIdent {
            attrs: Vec::new(),
            by_ref: None,
            mutability: None,
            ident: name.clone(),
            subpat: None,
        });
        names.push(name);
        params.push(Param { user });
    }
    (names, params)
}

/// Whether the method is async, and the type its future (or the method) returns.
fn asyncness_of(sig: &Signature) -> (Asyncness, Option<Type>) {
    let ret = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    if sig.asyncness.is_some() {
        return (
            Asyncness::AsyncFn,
            Some(ret.unwrap_or_else(|| syn::parse_quote!(()))),
        );
    }
    if let Some(Type::ImplTrait(it)) = &ret {
        for bound in &it.bounds {
            if let TypeParamBound::Trait(tb) = bound
                && let Some(last) = tb.path.segments.last()
                && last.ident == "Future"
                && let PathArguments::AngleBracketed(args) = &last.arguments
            {
                for arg in &args.args {
                    if let GenericArgument::AssocType(assoc) = arg
                        && assoc.ident == "Output"
                    {
                        return (Asyncness::ImplFuture, Some(assoc.ty.clone()));
                    }
                }
            }
        }
    }
    (Asyncness::Sync, ret)
}
