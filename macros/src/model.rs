//! The model of an annotated trait: its methods, the role of each (cached,
//! invalidating, pass-through) and the key specs they use. Building the model is
//! also where every check of SPEC §2.5 happens; problems go to [`Errors`].

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ItemTrait, Pat, PathArguments, ReturnType, Signature,
    TraitItem, TraitItemConst, TraitItemType, Type, TypeParamBound, Visibility,
};

use crate::attr::{self, CacheOptions, InvalidatesAttr, KeyArg, MethodAttrs};
use crate::errors::Errors;
use crate::template::{Segment, Template};

/// A checked trait, ready for code generation.
pub(crate) struct Model {
    pub vis: Visibility,
    pub trait_ident: Ident,
    pub struct_ident: Ident,
    pub generics: syn::Generics,
    pub unsafety: Option<syn::token::Unsafe>,
    /// The name of the decorator's type parameter (`S`, or `__S` if the trait has an `S`).
    pub inner: Ident,
    /// `#[async_trait]` / `#[async_trait(?Send)]` on the trait, if any.
    pub async_trait: Option<Attribute>,
    pub items: Vec<Item>,
    pub specs: Vec<Spec>,
}

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
    pub asyncness: Asyncness,
    pub role: Role,
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

pub(crate) enum Role {
    PassThrough,
    Cached(Cached),
    Invalidates(Invalidates),
}

pub(crate) struct Cached {
    pub spec: usize,
    pub key: KeyExpr,
    pub shape: Shape,
    pub cache_none: bool,
    /// The output type's span: type errors about the cached value land there.
    pub output_span: Span,
}

pub(crate) struct Invalidates {
    pub keys: Vec<(usize, KeyExpr)>,
    /// The method returns a `Result`: invalidate only on `Ok`.
    pub on_ok: bool,
}

/// How to build one key: literal text and values written with `KeyPart`.
pub(crate) struct KeyExpr {
    pub pieces: Vec<KeyPiece>,
    pub capacity: usize,
}

pub(crate) enum KeyPiece {
    Literal(String),
    /// An expression whose reference is written with `KeyPart::write_key_part`, and
    /// the span of the parameter or binding it comes from.
    Value(TokenStream, Span),
}

/// The return shape of a cached method, chosen from the syntax of its output type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Shape {
    ResultOption,
    Result,
    Option,
    Plain,
}

/// One key template of the trait and everything the inventory says about it.
pub(crate) struct Spec {
    pub template: String,
    pub canonical: String,
    pub ttl_millis: u64,
    pub ttl_env: Option<String>,
    pub cache_none: bool,
    /// The stored type as written (`T`, or `Option<T>` with `cache_none`).
    pub value_type: String,
    pub read_by: Vec<String>,
    pub invalidated_by: Vec<String>,
}

impl Model {
    /// Builds the model of `item`, removing our helper attributes from it (so that it
    /// can be emitted as is, even when there are errors).
    pub(crate) fn build(options: CacheOptions, item: &mut ItemTrait, errors: &mut Errors) -> Model {
        let trait_ident = item.ident.clone();
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

        let trait_key = options.key.as_ref().and_then(|k| k.template.clone());
        let trait_key_invalid = options.key.as_ref().is_some_and(|k| k.template.is_none());
        if options.key.is_some() && options.ttl.is_none() && !options.ttl_invalid {
            errors.error(
                Span::call_site(),
                "missing `ttl`: every cached key needs a time to live, e.g. `ttl = 300` (seconds) or `ttl = \"5m\"`",
            );
        }

        // Our attributes on the trait's other items are mistakes; the wrong attribute
        // order with #[async_trait] shows as rewritten methods.
        let mut wrong_order = false;
        for trait_item in &mut item.items {
            match trait_item {
                TraitItem::Fn(f)
                    if f.sig
                        .generics
                        .lifetimes()
                        .any(|l| l.lifetime.ident == "async_trait") =>
                {
                    wrong_order = true;
                }
                TraitItem::Type(t) => {
                    attr::reject_helper_attrs(&mut t.attrs, "an associated type", errors)
                }
                TraitItem::Const(c) => {
                    attr::reject_helper_attrs(&mut c.attrs, "an associated constant", errors)
                }
                _ => {}
            }
        }
        if wrong_order {
            errors.error(
                Span::call_site(),
                "`#[cached_store]` must be written above `#[async_trait]`: swap the two attributes so that \
                 `#[cached_store]` sees the `async fn`s before `#[async_trait]` rewrites them",
            );
        }

        let mut cx = Builder {
            trait_ident: &trait_ident,
            options: &options,
            trait_key: trait_key.as_ref(),
            trait_key_invalid,
            specs: Vec::new(),
            pending_invalidations: Vec::new(),
        };
        let mut items = Vec::new();
        for trait_item in &mut item.items {
            match trait_item {
                TraitItem::Fn(f) => {
                    let attrs = attr::take_method_attrs(&mut f.attrs, errors);
                    if wrong_order {
                        continue;
                    }
                    let cfg_attrs = f
                        .attrs
                        .iter()
                        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
                        .cloned()
                        .collect();
                    let index = items.len();
                    let method = cx.method(&f.sig, cfg_attrs, attrs, index, errors);
                    items.push(Item::Method(method));
                }
                TraitItem::Type(t) => items.push(Item::Type(t.clone())),
                TraitItem::Const(c) => items.push(Item::Const(c.clone())),
                TraitItem::Macro(m) => errors.error_spanned(
                    m,
                    "`#[cached_store]` cannot see through macro invocations in a trait: write the items out",
                ),
                other => errors.error_spanned(other, "`#[cached_store]` does not understand this trait item"),
            }
        }
        cx.resolve_invalidations(&mut items, errors);
        let specs = cx.specs;

        let inner_name = if item.generics.type_params().any(|p| p.ident == "S") {
            "__S"
        } else {
            "S"
        };
        Model {
            vis: item.vis.clone(),
            struct_ident: format_ident!("Caching{}", trait_ident, span = trait_ident.span()),
            trait_ident,
            generics: item.generics.clone(),
            unsafety: item.unsafety,
            inner: Ident::new(inner_name, Span::call_site()),
            async_trait,
            items,
            specs,
        }
    }
}

struct Builder<'a> {
    trait_ident: &'a Ident,
    options: &'a CacheOptions,
    trait_key: Option<&'a Template>,
    trait_key_invalid: bool,
    specs: Vec<Spec>,
    /// Invalidations are resolved after every cached template is known.
    pending_invalidations: Vec<PendingInvalidation>,
}

struct PendingInvalidation {
    item: usize,
    method: String,
    attrs: Vec<InvalidatesAttr>,
    params: Vec<Param>,
}

#[derive(Clone)]
struct Param {
    /// The user's name for it (`None` for patterns such as `_`).
    user: Option<Ident>,
}

impl Builder<'_> {
    fn method(
        &mut self,
        sig: &Signature,
        cfg_attrs: Vec<Attribute>,
        attrs: MethodAttrs,
        index: usize,
        errors: &mut Errors,
    ) -> Method {
        let mut sig = sig.clone();
        let receiver = receiver_of(&sig);
        let (args, params) = rename_params(&mut sig);
        let (asyncness, output) = asyncness_of(&sig);
        let name = sig.ident.to_string();
        if receiver == Receiver::Other {
            errors.error_spanned(
                &sig.inputs[0],
                format!(
                    "`#[cached_store]` cannot forward `{name}`: only `self`, `&self` and `&mut self` receivers can be passed to the inner store"
                ),
            );
        }

        if let Some(tokens) = &attrs.uncached
            && (attrs.cached.is_some() || !attrs.invalidates.is_empty())
        {
            errors.error_spanned(
                tokens,
                "`#[uncached]` cannot be combined with `#[cached]` or `#[invalidates]`",
            );
        }
        if let Some((tokens, _)) = &attrs.cached
            && !attrs.invalidates.is_empty()
        {
            errors.error_spanned(
                tokens,
                "a method is either cached (a read) or `#[invalidates]` (a write), not both",
            );
        }

        let mut role = Role::PassThrough;
        if let Some((tokens, opts)) = &attrs.cached {
            role = self.cached(
                &sig,
                receiver,
                asyncness,
                output.as_ref(),
                &params,
                Some((tokens, opts)),
                errors,
            );
        } else if !attrs.invalidates.is_empty() {
            if asyncness == Asyncness::Sync {
                errors.error_spanned(
                    &attrs.invalidates[0].attr,
                    format!(
                        "`#[invalidates]` needs an async method: `{name}` is not `async`, and the keys are deleted \
                         with an async call after the inner write returns"
                    ),
                );
            } else if !matches!(receiver, Receiver::Ref | Receiver::RefMut) {
                errors.error_spanned(
                    &attrs.invalidates[0].attr,
                    format!("`#[invalidates]` needs a method taking `&self` or `&mut self`; `{name}` does not"),
                );
            } else {
                role = Role::Invalidates(Invalidates {
                    keys: Vec::new(),
                    on_ok: output.as_ref().is_some_and(|t| result_args(t).is_some()),
                });
                self.pending_invalidations.push(PendingInvalidation {
                    item: index,
                    method: name.clone(),
                    attrs: attrs.invalidates,
                    params: params.clone(),
                });
            }
        } else if attrs.uncached.is_none()
            && let Some(key) = self.trait_key
            && receiver == Receiver::Ref
            && asyncness != Asyncness::Sync
            && key.placeholders().all(|p| {
                params
                    .iter()
                    .any(|q| q.user.as_ref().is_some_and(|u| *u == p.root))
            })
        {
            role = self.cached(
                &sig,
                receiver,
                asyncness,
                output.as_ref(),
                &params,
                None,
                errors,
            );
        }

        Method {
            sig,
            cfg_attrs,
            receiver,
            args,
            asyncness,
            role,
        }
    }

    /// Checks a cached method and registers its key spec.
    #[allow(clippy::too_many_arguments)]
    fn cached(
        &mut self,
        sig: &Signature,
        receiver: Receiver,
        asyncness: Asyncness,
        output: Option<&Type>,
        params: &[Param],
        explicit: Option<(&TokenStream, &CacheOptions)>,
        errors: &mut Errors,
    ) -> Role {
        let name = sig.ident.to_string();
        let method_opts = explicit.map(|(_, o)| o);
        let attr_spot: TokenStream =
            explicit.map_or_else(|| sig.ident.to_token_stream(), |(t, _)| t.clone());
        let mut ok = true;

        if receiver != Receiver::Ref {
            let spot = sig
                .inputs
                .first()
                .map_or_else(|| sig.ident.to_token_stream(), ToTokens::to_token_stream);
            errors.error_spanned(
                spot,
                format!("cached method `{name}` must take `&self`: the decorator reads through `&self.cache`"),
            );
            ok = false;
        }
        if asyncness == Asyncness::Sync {
            errors.error(
                sig.fn_token.span,
                format!(
                    "cached method `{name}` must be `async` (or return `impl Future`): a cache lookup is an async call"
                ),
            );
            ok = false;
        }

        // The key: the method's own, or the trait's.
        let own_key: Option<&KeyArg> = method_opts.and_then(|o| o.key.as_ref());
        let template = match own_key {
            Some(k) => k.template.clone(),
            None => {
                if self.trait_key.is_none() && !self.trait_key_invalid {
                    errors.error_spanned(
                        &attr_spot,
                        format!(
                            "`#[cached]` needs a key: `{}` has no trait-level `key`; write `#[cached(key = \"...\")]`",
                            self.trait_ident
                        ),
                    );
                }
                self.trait_key.cloned()
            }
        };
        let Some(template) = template else {
            return Role::PassThrough;
        };

        // Time to live: the method's, or the trait's.
        let ttl = method_opts.and_then(|o| o.ttl).or(self.options.ttl);
        let ttl_invalid = method_opts.is_some_and(|o| o.ttl_invalid) || self.options.ttl_invalid;
        if ttl.is_none() && !ttl_invalid && own_key.is_some() {
            errors.error_spanned(
                &attr_spot,
                format!(
                    "missing `ttl` for `{name}`: every cached key needs a time to live; add `ttl = 300` (seconds) \
                     or `ttl = \"5m\"` here or on `#[cached_store]`"
                ),
            );
        }
        let ttl_env = method_opts
            .and_then(|o| o.ttl_env.as_ref())
            .or(self.options.ttl_env.as_ref())
            .map(syn::LitStr::value);

        // The value: the output type must have a cacheable shape.
        let Some(output) = output else {
            return Role::PassThrough;
        };
        let (shape, value) = match classify(output) {
            Ok(v) => v,
            Err(why) => {
                let hint = if explicit.is_none() {
                    format!(
                        "; `{name}` is cached because it is async, takes `&self` and has a parameter for every \
                         placeholder of `{}`: mark it `#[invalidates]` if it writes, or `#[uncached]`",
                        template.text
                    )
                } else {
                    String::new()
                };
                errors.error_spanned(output, format!("`{name}` cannot be cached: it {why}{hint}"));
                return Role::PassThrough;
            }
        };
        let method_cache_none = method_opts.and_then(|o| o.cache_none);
        let can_cache_none = matches!(shape, Shape::ResultOption | Shape::Option);
        if let Some(span) = method_cache_none
            && !can_cache_none
        {
            errors.error(
                span,
                "`cache_none` applies to methods returning `Option<T>` or `Result<Option<T>, E>`",
            );
        }
        let cache_none =
            can_cache_none && (method_cache_none.is_some() || self.options.cache_none.is_some());

        // Placeholders: each must name a parameter.
        let spot = own_key.map_or(attr_spot, |k| k.lit.to_token_stream());
        let key = match self.key_expr(&template, params, &[], false, &name, &spot, errors) {
            Some(k) => k,
            None => return Role::PassThrough,
        };
        if !ok {
            return Role::PassThrough;
        }

        let value_type = if cache_none {
            format!("Option<{}>", type_string(&value))
        } else {
            type_string(&value)
        };
        let canonical = template.canonical();
        let spec = if let Some(i) = self.specs.iter().position(|s| s.canonical == canonical) {
            let existing = &mut self.specs[i];
            if existing.value_type != value_type {
                errors.error_spanned(
                    output,
                    format!(
                        "`{name}` caches `{value_type}` under `{}`, but `{}` caches `{}` under the same key template: \
                         one template holds one value type (compared as written), or each reader would decode the \
                         other's values; use a different key",
                        template.text, existing.read_by[0], existing.value_type
                    ),
                );
            }
            existing.read_by.push(name);
            i
        } else {
            self.specs.push(Spec {
                template: template.text.clone(),
                canonical,
                ttl_millis: ttl.map_or(1, |t| t.millis),
                ttl_env,
                cache_none,
                value_type,
                read_by: vec![name],
                invalidated_by: Vec::new(),
            });
            self.specs.len() - 1
        };
        Role::Cached(Cached {
            spec,
            key,
            shape,
            cache_none,
            output_span: output.span(),
        })
    }

    /// The expression building `template`'s key from parameters and bindings.
    #[allow(clippy::too_many_arguments)]
    fn key_expr(
        &self,
        template: &Template,
        params: &[Param],
        bindings: &[(Ident, syn::Expr)],
        invalidating: bool,
        method: &str,
        spot: &TokenStream,
        errors: &mut Errors,
    ) -> Option<KeyExpr> {
        let mut pieces = Vec::new();
        let mut ok = true;
        for segment in &template.segments {
            match segment {
                Segment::Literal(l) => pieces.push(KeyPiece::Literal(l.clone())),
                Segment::Placeholder(p) => {
                    let fields: Vec<TokenStream> = p
                        .fields
                        .iter()
                        .map(|f| match f.parse::<u32>() {
                            Ok(n) => syn::Index::from(n as usize).into_token_stream(),
                            Err(_) => Ident::new(f, Span::call_site()).into_token_stream(),
                        })
                        .collect();
                    if let Some((ident, expr)) = bindings.iter().find(|(b, _)| *b == p.root) {
                        let expr = if needs_parens(expr) {
                            quote_spanned!(ident.span()=> (#expr))
                        } else {
                            expr.to_token_stream()
                        };
                        pieces.push(KeyPiece::Value(
                            quote_spanned!(ident.span()=> #expr #(.#fields)*),
                            ident.span(),
                        ));
                    } else if let Some(param) = params
                        .iter()
                        .find_map(|q| q.user.as_ref().filter(|u| **u == p.root))
                    {
                        pieces.push(KeyPiece::Value(
                            quote_spanned!(param.span()=> #param #(.#fields)*),
                            param.span(),
                        ));
                    } else {
                        ok = false;
                        let names: Vec<String> = params
                            .iter()
                            .filter_map(|q| q.user.as_ref().map(|u| format!("`{u}`")))
                            .collect();
                        let listed = if names.is_empty() {
                            format!("`{method}` has no named parameters")
                        } else {
                            format!("`{method}` has parameters {}", names.join(", "))
                        };
                        let bound = if bindings.is_empty() {
                            String::new()
                        } else {
                            let b: Vec<String> =
                                bindings.iter().map(|(i, _)| format!("`{i}`")).collect();
                            format!(" and bindings {}", b.join(", "))
                        };
                        let hint = if invalidating {
                            format!("; bind it with `#[invalidates({} = <expression>)]`", p.root)
                        } else {
                            String::new()
                        };
                        errors.error_spanned(
                            spot,
                            format!(
                                "unknown placeholder `{}` in key template `{}`: {listed}{bound}{hint}",
                                p.written(),
                                template.text
                            ),
                        );
                    }
                }
            }
        }
        ok.then(|| KeyExpr {
            pieces,
            capacity: template.capacity_hint(),
        })
    }

    fn resolve_invalidations(&mut self, items: &mut [Item], errors: &mut Errors) {
        for pending in std::mem::take(&mut self.pending_invalidations) {
            let mut keys = Vec::new();
            for inv in &pending.attrs {
                let template = match &inv.key {
                    Some(k) => match &k.template {
                        Some(t) => t.clone(),
                        None => continue,
                    },
                    None => match self.trait_key {
                        Some(t) => t.clone(),
                        None => {
                            if !self.trait_key_invalid {
                                errors.error_spanned(
                                    &inv.attr,
                                    format!(
                                        "`#[invalidates]` needs a key: `{}` has no trait-level `key`; write \
                                         `#[invalidates(key = \"...\")]` with a template of a cached method",
                                        self.trait_ident
                                    ),
                                );
                            }
                            continue;
                        }
                    },
                };
                let spot = inv
                    .key
                    .as_ref()
                    .map_or_else(|| inv.attr.clone(), |k| k.lit.to_token_stream());
                let canonical = template.canonical();
                let Some(spec) = self.specs.iter().position(|s| s.canonical == canonical) else {
                    let known: Vec<String> = self
                        .specs
                        .iter()
                        .map(|s| format!("`{}`", s.template))
                        .collect();
                    let known = if known.is_empty() {
                        format!("`{}` caches nothing", self.trait_ident)
                    } else {
                        format!(
                            "the cached templates of `{}` are {}",
                            self.trait_ident,
                            known.join(", ")
                        )
                    };
                    errors.error_spanned(
                        &spot,
                        format!(
                            "`#[invalidates]` key `{}` matches no cached template: {known}",
                            template.text
                        ),
                    );
                    continue;
                };
                for (ident, _) in &inv.bindings {
                    if !template.placeholders().any(|p| *ident == p.root) {
                        errors.error(
                            ident.span(),
                            format!("`{ident}` is not a placeholder of `{}`", template.text),
                        );
                    }
                }
                if let Some(key) = self.key_expr(
                    &template,
                    &pending.params,
                    &inv.bindings,
                    true,
                    &pending.method,
                    &spot,
                    errors,
                ) {
                    if !self.specs[spec].invalidated_by.contains(&pending.method) {
                        self.specs[spec].invalidated_by.push(pending.method.clone());
                    }
                    keys.push((spec, key));
                }
            }
            if let Item::Method(Method {
                role: Role::Invalidates(inv),
                ..
            }) = &mut items[pending.item]
            {
                inv.keys = keys;
            }
        }
    }
}

fn needs_parens(expr: &syn::Expr) -> bool {
    !matches!(
        expr,
        syn::Expr::Path(_)
            | syn::Expr::Field(_)
            | syn::Expr::MethodCall(_)
            | syn::Expr::Call(_)
            | syn::Expr::Lit(_)
            | syn::Expr::Index(_)
            | syn::Expr::Paren(_)
    )
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
            .unwrap_or_else(|| Ident::new(&format!("__arg{i}"), Span::mixed_site()));
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

/// The generic arguments of `Result<T, E>` or of a one-argument alias `Result<T>`.
fn result_args(ty: &Type) -> Option<Vec<&Type>> {
    generic_args(ty, "Result").filter(|a| matches!(a.len(), 1 | 2))
}

fn generic_args<'t>(ty: &'t Type, name: &str) -> Option<Vec<&'t Type>> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    Some(
        args.args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
    )
}

/// The shape of a cached method's output and the type of the value stored.
fn classify(output: &Type) -> Result<(Shape, Type), String> {
    let (shape, value) = if let Some(args) = result_args(output) {
        let ok = args[0];
        match generic_args(ok, "Option").filter(|a| a.len() == 1) {
            Some(inner) => (Shape::ResultOption, inner[0].clone()),
            None => (Shape::Result, ok.clone()),
        }
    } else if let Some(inner) = generic_args(output, "Option").filter(|a| a.len() == 1) {
        (Shape::Option, inner[0].clone())
    } else {
        (Shape::Plain, output.clone())
    };
    check_storable(&value)?;
    Ok((shape, value))
}

fn check_storable(ty: &Type) -> Result<(), String> {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => {
            Err("returns nothing to cache (`()`)".to_owned())
        }
        Type::Reference(_) => Err(
            "returns a reference; a cached value is deserialized from the cache, so it must be an owned type"
                .to_owned(),
        ),
        Type::ImplTrait(_) | Type::TraitObject(_) => Err(
            "returns a trait object or `impl Trait`; a cached value must be a concrete `Serialize + DeserializeOwned` type"
                .to_owned(),
        ),
        Type::Never(_) | Type::Infer(_) | Type::Ptr(_) | Type::BareFn(_) | Type::Macro(_) | Type::Verbatim(_) => {
            Err("returns a type that cannot be stored".to_owned())
        }
        _ => {
            let borrows = contains_borrow(ty.to_token_stream());
            if borrows {
                Err("returns a type that borrows (`&` or a non-`'static` lifetime); a cached value must be owned".to_owned())
            } else {
                Ok(())
            }
        }
    }
}

fn contains_borrow(tokens: TokenStream) -> bool {
    let mut iter = tokens.into_iter().peekable();
    while let Some(tt) = iter.next() {
        match tt {
            proc_macro2::TokenTree::Punct(p) if p.as_char() == '&' => return true,
            proc_macro2::TokenTree::Punct(p) if p.as_char() == '\'' => {
                if let Some(proc_macro2::TokenTree::Ident(i)) = iter.peek()
                    && i != "static"
                {
                    return true;
                }
            }
            proc_macro2::TokenTree::Group(g) if contains_borrow(g.stream()) => return true,
            _ => {}
        }
    }
    false
}

/// A type as written, with the spacing of `quote` removed: `Option<Vec<u8>>`.
pub(crate) fn type_string(ty: &Type) -> String {
    let raw = quote!(#ty).to_string();
    let mut out = String::with_capacity(raw.len());
    let chars: Vec<char> = raw.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let keep = matches!(prev, Some(p) if p.is_alphanumeric() || p == '_' || p == ',')
                && matches!(next, Some(n) if n.is_alphanumeric() || n == '_' || n == '\'' || n == '(' || n == '[');
            let keep = keep || prev == Some(',');
            if !keep {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(args: TokenStream, item: TokenStream) -> (Model, Vec<String>) {
        let mut errors = Errors::new();
        let options = attr::parse_store_args(args, &mut errors);
        let mut item: ItemTrait = syn::parse2(item).unwrap();
        let model = Model::build(options, &mut item, &mut errors);
        let errors = errors.finish().to_string();
        let errors = errors
            .split("compile_error !")
            .skip(1)
            .map(str::to_owned)
            .collect();
        (model, errors)
    }

    fn roles(model: &Model) -> Vec<(String, &'static str)> {
        model
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Method(m) => Some((
                    m.sig.ident.to_string(),
                    match m.role {
                        Role::Cached(_) => "cached",
                        Role::Invalidates(_) => "invalidates",
                        Role::PassThrough => "pass",
                    },
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn roles_follow_the_spec() {
        let (model, errors) = build(
            quote!(key = "p:<tenant_id>", ttl = 300),
            quote! {
                pub trait PolicyStore: Send + Sync {
                    async fn get_policy(&self, tenant_id: &str) -> Result<Option<Policy>, E>;
                    #[invalidates]
                    async fn delete_policy(&self, tenant_id: &str) -> Result<(), E>;
                    #[invalidates(tenant_id = policy.tenant_id)]
                    async fn set_policy(&self, policy: &Policy) -> Result<(), E>;
                    async fn list_tenants(&self) -> Result<Vec<String>, E>;
                    #[uncached]
                    async fn peek(&self, tenant_id: &str) -> Option<Policy>;
                    fn sync_read(&self, tenant_id: &str) -> Option<Policy>;
                    async fn by_mut(&mut self, tenant_id: &str) -> Option<Policy>;
                    fn future(&self, tenant_id: &str) -> impl Future<Output = Option<Policy>> + Send;
                }
            },
        );
        assert!(errors.is_empty(), "{errors:?}");
        let roles = roles(&model);
        let expected = [
            ("get_policy", "cached"),
            ("delete_policy", "invalidates"),
            ("set_policy", "invalidates"),
            ("list_tenants", "pass"),
            ("peek", "pass"),
            ("sync_read", "pass"),
            ("by_mut", "pass"),
            ("future", "cached"),
        ];
        let roles: Vec<(&str, &str)> = roles.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        assert_eq!(roles, expected);
        assert_eq!(model.specs.len(), 1);
        assert_eq!(model.specs[0].read_by, ["get_policy", "future"]);
        assert_eq!(
            model.specs[0].invalidated_by,
            ["delete_policy", "set_policy"]
        );
        assert_eq!(model.struct_ident, "CachingPolicyStore");
    }

    #[test]
    fn errors_accumulate() {
        let (_, errors) = build(
            quote!(ttl = 0, colour = "blue"),
            quote! {
                trait Store {
                    #[cached(key = "a:<nope>")]
                    async fn a(&self, id: u64) -> Option<u64>;
                    #[cached(key = "b:<id><id2>")]
                    async fn b(&self, id: u64, id2: u64) -> Option<u64>;
                    #[invalidates(key = "c:<id>")]
                    async fn c(&self, id: u64) -> bool;
                }
            },
        );
        assert_eq!(errors.len(), 5, "{errors:#?}");
        for (error, needle) in errors.iter().zip([
            "ttl must be greater than zero",
            "unknown argument `colour`",
            "unknown placeholder `<nope>`",
            "not separated",
            "matches no cached template",
        ]) {
            assert!(error.contains(needle), "{error} lacks {needle}");
        }
    }

    #[test]
    fn trait_generic_named_s_moves_the_decorator_parameter() {
        let (model, errors) = build(
            quote!(key = "k:<id>", ttl = 1),
            quote!(
                trait Store<S> {
                    async fn get(&self, id: u64) -> Option<S>;
                }
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(model.inner, "__S");
        assert_eq!(model.specs[0].value_type, "S");
    }

    #[test]
    fn shapes() {
        let shape = |t: Type| classify(&t).map(|(s, v)| (s, type_string(&v)));
        assert_eq!(
            shape(syn::parse_quote!(Result<Option<Policy>, StoreError>)).unwrap(),
            (Shape::ResultOption, "Policy".into())
        );
        assert_eq!(
            shape(syn::parse_quote!(io::Result<Vec<u8>>)).unwrap(),
            (Shape::Result, "Vec<u8>".into())
        );
        assert_eq!(
            shape(syn::parse_quote!(Option<String>)).unwrap(),
            (Shape::Option, "String".into())
        );
        assert_eq!(
            shape(syn::parse_quote!(u64)).unwrap(),
            (Shape::Plain, "u64".into())
        );
        assert_eq!(
            shape(syn::parse_quote!(std::collections::HashMap<String, (u8, bool)>))
                .unwrap()
                .1,
            "std::collections::HashMap<String, (u8, bool)>"
        );
        assert!(shape(syn::parse_quote!(())).is_err());
        assert!(shape(syn::parse_quote!(Result<(), E>)).is_err());
        assert!(shape(syn::parse_quote!(&str)).is_err());
        assert!(shape(syn::parse_quote!(Option<&'a str>)).is_err());
        assert!(shape(syn::parse_quote!(Cow<'a, str>)).is_err());
        assert!(shape(syn::parse_quote!(Cow<'static, str>)).is_ok());
    }
}
