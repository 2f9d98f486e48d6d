//! Checking: the rules across items, applied to the lowered trait. Each method gets a
//! role (cached, invalidating, pass-through), each key template a registry entry with
//! its resolved options and value type, each `#[invalidates]` a resolved template.
//! Every mistake goes to [`Errors`], pointing at the user's tokens; the result is the
//! [`Model`] the code generator reads.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericArgument, Ident, PathArguments, Type, TypeParamBound};

use crate::ast::{self, Asyncness, Param, Receiver, Trait};
use crate::attr::{CacheOptions, InvalidatesAttr, KeyArg, StoreArgs};
use crate::errors::Errors;
use crate::model::{
    Cached, Invalidates, Item, KeyBuilder, KeyExpr, KeyPiece, Method, Model, Names, Role, Shape,
    Spec, SpecOptions,
};
use crate::names::Taken;
use crate::template::{Segment, Template};

/// The decorator's accessors: a trait method with one of these names would be
/// shadowed by them in method-call syntax.
const ACCESSORS: [&str; 3] = ["inner", "cache", "into_inner"];

/// Checks the lowered trait against the store arguments. `taken` holds every
/// identifier of the trait, so that invented names avoid them.
pub(crate) fn check(args: &StoreArgs, input: &Trait, taken: &Taken, errors: &mut Errors) -> Model {
    let options = &args.options;
    let trait_key = options.key.get();
    if trait_key.is_some() && !options.ttl.is_set() && !options.aborted {
        errors.error(
            Span::call_site(),
            "missing `ttl`: every cached key needs a time to live, e.g. `ttl = 300` (seconds) or `ttl = \"5m\"`",
        );
    }
    if input.rewritten_by_async_trait {
        errors.error(
            Span::call_site(),
            "`#[cached_store]` must be written above `#[async_trait]`: swap the two attributes so that \
             `#[cached_store]` sees the `async fn`s before `#[async_trait]` rewrites them",
        );
    }
    check_async_trait_send(input, errors);

    let mut cx = Checker {
        input,
        options,
        trait_key,
        specs: Vec::new(),
        tags: Vec::new(),
        trait_key_read: false,
        builders: HashSet::new(),
    };
    let mut items = Vec::new();
    let mut pending = Vec::new();
    for item in &input.items {
        match item {
            ast::Item::Method(m) => {
                if input.rewritten_by_async_trait {
                    items.push(Item::Method(pass_through(m)));
                    continue;
                }
                cx.check_shadowing(m, errors);
                let role = cx.role(m, errors);
                if matches!(role, Role::Invalidates(_)) {
                    pending.push((items.len(), m));
                }
                items.push(Item::Method(Method {
                    role,
                    ..pass_through(m)
                }));
            }
            ast::Item::Type(t) => items.push(Item::Type(t.clone())),
            ast::Item::Const(c) => items.push(Item::Const(c.clone())),
        }
    }
    if !input.rewritten_by_async_trait {
        cx.check_trait_key_read(errors);
    }
    for (index, m) in pending {
        let keys = cx.invalidations(m, errors);
        let tags = cx.invalidated_tags(m, errors);
        if let Item::Method(Method {
            role: Role::Invalidates(inv),
            ..
        }) = &mut items[index]
        {
            inv.keys = keys;
            inv.tags = tags;
        }
    }

    let specs = cx.specs;
    Model {
        vis: input.vis.clone(),
        struct_ident: format_ident!("Caching{}", input.ident, span = input.ident.span()),
        trait_ident: input.ident.clone(),
        generics: input.generics.clone(),
        unsafety: input.unsafety,
        krate: krate(args),
        async_trait: input.async_trait.clone(),
        items,
        specs,
        names: names(taken),
        stub: false,
    }
}

/// The model for a trait with errors: every method passes through and no key is
/// used, so that the user's code naming `CachingX` still compiles and the errors
/// reported are only the real ones.
pub(crate) fn fallback(args: &StoreArgs, input: &Trait, taken: &Taken) -> Model {
    let items = input
        .items
        .iter()
        .map(|item| match item {
            ast::Item::Method(m) => Item::Method(pass_through(m)),
            ast::Item::Type(t) => Item::Type(t.clone()),
            ast::Item::Const(c) => Item::Const(c.clone()),
        })
        .collect();
    Model {
        vis: input.vis.clone(),
        struct_ident: format_ident!("Caching{}", input.ident, span = input.ident.span()),
        trait_ident: input.ident.clone(),
        generics: input.generics.clone(),
        unsafety: input.unsafety,
        krate: krate(args),
        // With the wrong attribute order the methods are already rewritten.
        async_trait: if input.rewritten_by_async_trait {
            None
        } else {
            input.async_trait.clone()
        },
        items,
        specs: Vec::new(),
        names: names(taken),
        stub: true,
    }
}

fn krate(args: &StoreArgs) -> syn::Path {
    args.krate
        .get()
        .cloned()
        .flatten()
        .unwrap_or_else(|| syn::parse_quote!(::cacheward))
}

fn names(taken: &Taken) -> Names {
    Names {
        inner: taken.fresh_ident("S"),
        spec_prefix: taken.fresh("__KEY_"),
        specs: taken.fresh_ident("__KEY_SPECS"),
        forwarded: taken.fresh_ident("__FORWARDED"),
    }
}

fn pass_through(m: &ast::Method) -> Method {
    Method {
        sig: m.sig.clone(),
        cfg_attrs: m.cfg_attrs.clone(),
        receiver: m.receiver,
        args: m.args.clone(),
        asyncness: m.asyncness,
        role: Role::PassThrough,
    }
}

/// `#[async_trait]` futures are `Send`, so the decorator's need `S: Sync` for methods
/// taking `&self` and `S: Send` for those taking `&mut self` or `self`: a trait that
/// does not promise them ends in "future cannot be sent between threads safely" inside
/// the expansion. Said at the trait instead, when the trait visibly lacks the bounds
/// (no other supertrait or `where Self: …` clause that could imply them).
fn check_async_trait_send(input: &Trait, errors: &mut Errors) {
    let Some(attr) = &input.async_trait else {
        return;
    };
    if let syn::Meta::List(list) = &attr.meta
        && list.tokens.to_string().replace(' ', "") == "?Send"
    {
        return;
    }
    let has = |name: &str| {
        input.supertraits.iter().any(|b| {
            matches!(b, TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == name))
        })
    };
    let async_methods = || {
        input
            .methods()
            .filter(|m| m.asyncness == Asyncness::AsyncFn)
    };
    let needs_sync = async_methods().any(|m| m.receiver == Receiver::Ref);
    let needs_send =
        async_methods().any(|m| matches!(m.receiver, Receiver::RefMut | Receiver::Value));
    let send = has("Send") || !needs_send;
    let sync = has("Sync") || !needs_sync;
    let other_supertrait = input.supertraits.iter().any(|b| {
        matches!(b, TypeParamBound::Trait(t) if !t.path.segments.last().is_some_and(|s| {
            matches!(s.ident.to_string().as_str(), "Send" | "Sync" | "Sized" | "Unpin")
        }))
    });
    let where_self = input.generics.where_clause.as_ref().is_some_and(|w| {
        w.predicates
            .iter()
            .any(|p| p.to_token_stream().to_string().starts_with("Self"))
    });
    if send && sync || other_supertrait || where_self {
        return;
    }
    let ident = &input.ident;
    let missing = match (has("Send"), has("Sync")) {
        (false, false) => "Send + Sync",
        (true, _) => "Sync",
        (_, true) => "Send",
    };
    errors.error(
        ident.span(),
        format!(
            "`{ident}` must be `Send + Sync` for its `#[async_trait]` decorator: the futures `#[async_trait]` \
             writes are `Send`, so `Caching{ident}<S>` can only hold an inner store that is `Send + Sync`; \
             add `{missing}` as a supertrait (`trait {ident}: Send + Sync`), or use `#[async_trait(?Send)]`"
        ),
    );
}

struct Checker<'a> {
    input: &'a Trait,
    options: &'a CacheOptions,
    trait_key: Option<&'a KeyArg>,
    specs: Vec<Spec>,
    /// Tag templates declared by cached methods: (canonical form, text).
    tags: Vec<(String, String)>,
    /// Some method is cached under the trait-level key.
    trait_key_read: bool,
    builders: HashSet<String>,
}

impl<'a> Checker<'a> {
    fn trait_template(&self) -> Option<&'a Template> {
        self.trait_key.and_then(|k| k.template.as_ref())
    }

    /// Whether the trait-level key was written but is unusable (malformed, or read by
    /// no method): errors about it are reported once, at the key.
    fn trait_key_broken(&self) -> bool {
        self.trait_key
            .is_some_and(|k| k.template.is_none() || !self.trait_key_read)
    }

    /// A method named like one of the decorator's own items would be shadowed by it:
    /// `store.cache()` would call the accessor, not the trait method.
    fn check_shadowing(&self, m: &ast::Method, errors: &mut Errors) {
        let name = m.name();
        if m.receiver != Receiver::None && ACCESSORS.contains(&name.as_str()) {
            errors.error(
                m.sig.ident.span(),
                format!(
                    "a method named `{name}` would be shadowed by the decorator's own accessor \
                     `Caching{trait_ident}::{name}` (its accessors are `inner`, `cache` and `into_inner`): \
                     `store.{name}(..)` on the decorator would call the accessor, not the trait method; rename the method",
                    trait_ident = self.input.ident
                ),
            );
        }
    }

    /// The role of `m`, registering the templates it reads.
    fn role(&mut self, m: &ast::Method, errors: &mut Errors) -> Role {
        let name = m.name();
        let attrs = &m.attrs;
        if m.receiver == Receiver::Other {
            errors.error_spanned(
                &m.sig.inputs[0],
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

        if let Some((tokens, opts)) = &attrs.cached {
            return self.cached(m, Some((tokens, opts)), errors);
        }
        if !attrs.invalidates.is_empty() {
            let first = &attrs.invalidates[0].attr;
            if m.asyncness == Asyncness::Sync {
                errors.error_spanned(
                    first,
                    format!(
                        "`#[invalidates]` needs an async method: `{name}` is not `async`, and the keys are deleted \
                         with an async call after the inner write returns"
                    ),
                );
                return Role::PassThrough;
            }
            if !matches!(m.receiver, Receiver::Ref | Receiver::RefMut) {
                errors.error_spanned(
                    first,
                    format!("`#[invalidates]` needs a method taking `&self` or `&mut self`; `{name}` does not"),
                );
                return Role::PassThrough;
            }
            return Role::Invalidates(Invalidates {
                keys: Vec::new(),
                tags: Vec::new(),
                on_ok: m.output.as_ref().is_some_and(|t| result_args(t).is_some()),
            });
        }
        if attrs.uncached.is_some() {
            return Role::PassThrough;
        }
        let Some(template) = self.trait_template() else {
            return Role::PassThrough;
        };
        let covers = template.placeholders().all(|p| {
            m.param(&p.root).is_some()
                || (p.fields.is_empty() && self.type_param(&p.root).is_some())
        });
        if !covers || m.receiver == Receiver::None {
            return Role::PassThrough;
        }
        if m.receiver == Receiver::Ref && m.asyncness != Asyncness::Sync {
            return self.cached(m, None, errors);
        }
        // Reads the trait key's parameters but cannot be cached: say so rather than
        // forward it silently.
        let why = if m.asyncness == Asyncness::Sync {
            "it is not `async`".to_owned()
        } else if m.receiver == Receiver::RefMut {
            "it takes `&mut self`".to_owned()
        } else {
            "it takes `self` by value".to_owned()
        };
        errors.error(
            m.sig.ident.span(),
            format!(
                "`{name}` has a parameter for every placeholder of the trait key `{}` but cannot be cached: {why} \
                 (a cached method is `async` and takes `&self`); mark it `#[uncached]` to forward it to the inner \
                 store, or `#[invalidates]` if it writes",
                template.text
            ),
        );
        Role::PassThrough
    }

    fn type_param(&self, name: &str) -> Option<&'a Ident> {
        self.input
            .generics
            .type_params()
            .map(|p| &p.ident)
            .find(|i| *i == name)
    }

    /// Checks a cached method and registers its key template.
    fn cached(
        &mut self,
        m: &ast::Method,
        explicit: Option<(&TokenStream, &CacheOptions)>,
        errors: &mut Errors,
    ) -> Role {
        let name = m.name();
        let method_opts = explicit.map(|(_, o)| o);
        let attr_spot: TokenStream =
            explicit.map_or_else(|| m.sig.ident.to_token_stream(), |(t, _)| t.clone());
        let mut ok = true;

        if m.receiver != Receiver::Ref {
            let spot = m
                .sig
                .inputs
                .first()
                .map_or_else(|| m.sig.ident.to_token_stream(), ToTokens::to_token_stream);
            errors.error_spanned(
                spot,
                format!("cached method `{name}` must take `&self`: the decorator reads through `&self.cache`"),
            );
            ok = false;
        }
        if m.asyncness == Asyncness::Sync {
            errors.error(
                m.sig.fn_token.span,
                format!(
                    "cached method `{name}` must be `async` (or return `impl Future`): a cache lookup is an async call"
                ),
            );
            ok = false;
        }

        // The key: the method's own, or the trait's.
        let own_key = method_opts.and_then(|o| o.key.get());
        let from_trait = own_key.is_none();
        let key = match own_key {
            Some(k) => k,
            None => match self.trait_key {
                Some(k) => k,
                None => {
                    errors.error_spanned(
                        &attr_spot,
                        format!(
                            "`#[cached]` needs a key: `{}` has no trait-level `key`; write `#[cached(key = \"...\")]`",
                            self.input.ident
                        ),
                    );
                    return Role::PassThrough;
                }
            },
        };
        if from_trait {
            self.trait_key_read = true;
        }
        let Some(template) = key.template.as_ref() else {
            return Role::PassThrough;
        };

        let opts = self.resolve_options(&name, method_opts, own_key.is_some(), &attr_spot, errors);

        // The value: the output type must have a cacheable shape.
        let Some(output) = m.output.as_ref() else {
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
        let can_cache_none = matches!(shape, Shape::ResultOption | Shape::Option);
        let method_cache_none = method_opts.and_then(|o| o.cache_none.get().copied());
        if method_cache_none == Some(true) && !can_cache_none {
            let span = method_opts
                .and_then(|o| o.cache_none.span())
                .unwrap_or_else(Span::call_site);
            errors.error(
                span,
                "`cache_none` applies to methods returning `Option<T>` or `Result<Option<T>, E>`",
            );
        }
        let cache_none = can_cache_none && opts.cache_none;
        let opts = SpecOptions { cache_none, ..opts };

        // Generic traits: instantiations must not share entries.
        let spot = own_key
            .and_then(|k| k.lit.as_ref())
            .map_or(attr_spot, ToTokens::to_token_stream);
        if !self.check_instantiations(&name, template, &value, output, &spot, errors) {
            ok = false;
        }

        // Placeholders: each must name a parameter.
        let Some(key_expr) = self.key_expr(template, &m.params, &[], false, &name, &spot, errors)
        else {
            return Role::PassThrough;
        };
        let tags = self.cached_tags(m, method_opts, &name, errors);
        if !check_timing(method_opts, &opts, shape, output, &name, errors) {
            ok = false;
        }
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
            } else if existing.options != opts {
                errors.error_spanned(
                    &spot,
                    format!(
                        "`{name}` and `{}` read the key template `{}` with different options (`ttl`, `ttl_env` or \
                         `cache_none`): one template has one time to live; give both the same options or use \
                         different keys",
                        existing.read_by[0], template.text
                    ),
                );
            }
            existing.read_by.push(name);
            i
        } else {
            let builder = self.key_builder(&name, template);
            self.specs.push(Spec {
                template: template.text.clone(),
                canonical,
                options: opts,
                value_type,
                read_by: vec![name],
                invalidated_by: Vec::new(),
                builder,
            });
            self.specs.len() - 1
        };
        let stored: Type = if cache_none {
            syn::parse_quote_spanned!(value.span()=> ::core::option::Option<#value>)
        } else {
            value.clone()
        };
        let params: Vec<&Ident> = self
            .input
            .generics
            .type_params()
            .chain(m.sig.generics.type_params())
            .map(|p| &p.ident)
            .collect();
        let near_probe = closed_type(&stored, &params).then(|| Box::new(stored));
        Role::Cached(Cached {
            spec,
            key: key_expr,
            shape,
            cache_none,
            output_span: output.span(),
            output: Box::new(output.clone()),
            near_probe,
            tags,
        })
    }

    /// The tags of a cached method's entries: how to build each from its parameters.
    /// Each tag template is also recorded as declared, for `#[invalidates(tag = ...)]`.
    fn cached_tags(
        &mut self,
        m: &ast::Method,
        method_opts: Option<&CacheOptions>,
        name: &str,
        errors: &mut Errors,
    ) -> Vec<(String, KeyExpr)> {
        let Some(tags) = method_opts
            .and_then(|o| o.tags.get())
            .or(self.options.tags.get())
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for tag in tags {
            let (Some(template), Some(lit)) = (&tag.template, &tag.lit) else {
                continue;
            };
            let spot = lit.to_token_stream();
            if let Some(expr) = self.key_expr(template, &m.params, &[], false, name, &spot, errors)
            {
                let canonical = template.canonical();
                if !self.tags.iter().any(|(c, _)| *c == canonical) {
                    self.tags.push((canonical, template.text.clone()));
                }
                out.push((template.text.clone(), expr));
            }
        }
        out
    }

    /// The options in force for a cached method: each of the method's own arguments,
    /// else the trait's. A trait-level `ttl_env` overrides the trait-level `ttl`: a
    /// method that sets its own `ttl` keeps it, unless it names its own `ttl_env`.
    fn resolve_options(
        &self,
        name: &str,
        method: Option<&CacheOptions>,
        own_key: bool,
        spot: &TokenStream,
        errors: &mut Errors,
    ) -> SpecOptions {
        let trait_opts = self.options;
        let own_ttl = method.and_then(|o| o.ttl.get());
        let ttl = own_ttl.or(trait_opts.ttl.get());
        let aborted = trait_opts.aborted || method.is_some_and(|o| o.aborted);
        if ttl.is_none() && own_key && !aborted {
            errors.error_spanned(
                spot,
                format!(
                    "missing `ttl` for `{name}`: every cached key needs a time to live; add `ttl = 300` (seconds) \
                     or `ttl = \"5m\"` here or on `#[cached_store]`"
                ),
            );
        }
        let ttl_env = match method.and_then(|o| o.ttl_env.get()) {
            Some(env) => env.clone(),
            None if own_ttl.is_some() => None,
            None => trait_opts.ttl_env.get().cloned().flatten(),
        };
        let cache_none = method
            .and_then(|o| o.cache_none.get())
            .or(trait_opts.cache_none.get())
            .copied()
            .unwrap_or(false);
        let tags = method
            .and_then(|o| o.tags.get())
            .or(trait_opts.tags.get())
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.template.as_ref().map(|t| t.text.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let refresh_ahead_millionths = method
            .and_then(|o| o.refresh_ahead.get())
            .or(trait_opts.refresh_ahead.get())
            .and_then(|r| r.millionths);
        let stale_if_error_millis = method
            .and_then(|o| o.stale_if_error.get())
            .or(trait_opts.stale_if_error.get())
            .and_then(|t| t.millis);
        SpecOptions {
            ttl_millis: ttl.and_then(|t| t.millis).unwrap_or(1),
            ttl_env: ttl_env.map(|l| l.value()),
            cache_none,
            tags,
            refresh_ahead_millionths,
            stale_if_error_millis,
        }
    }

    /// In a generic trait, a value type that depends on a type parameter `T` differs
    /// between `CachingX<A>` (an `X<User>`) and `CachingX<B>` (an `X<Order>`); on one
    /// cache they would read each other's entries. The template must name `<T>`, so
    /// that the instantiations' keys differ.
    fn check_instantiations(
        &self,
        name: &str,
        template: &Template,
        value: &Type,
        output: &Type,
        spot: &TokenStream,
        errors: &mut Errors,
    ) -> bool {
        let used = Taken::of(value.to_token_stream());
        let mut ok = true;
        for param in self.input.generics.type_params() {
            let p = &param.ident;
            let named = template
                .placeholders()
                .any(|ph| ph.fields.is_empty() && *p == ph.root);
            if used.contains(&p.to_string()) && !named {
                ok = false;
                errors.error_spanned(
                    spot,
                    format!(
                        "`{name}` caches a value of type `{}`, which depends on the trait's type parameter `{p}`, \
                         but the key template `{}` does not name `{p}`: `Caching{}` over stores for two different \
                         `{p}`s would share these keys and read each other's values. Put `<{p}>` in the template \
                         (e.g. `{}`), which writes `{p}`'s `cacheward::KeyName`",
                        type_string(value),
                        template.text,
                        self.input.ident,
                        example_with(template, p),
                    ),
                );
            }
        }
        if used.contains("Self") {
            ok = false;
            errors.error_spanned(
                output,
                format!(
                    "`{name}` caches a value of type `{}`, which depends on an associated type of `Self`: \
                     `Caching{}` over two stores with different associated types would share these keys. Make \
                     the value type a type parameter of the trait and name it in the key (`<T>`), or use a \
                     concrete type",
                    type_string(value),
                    self.input.ident,
                ),
            );
        }
        ok
    }

    /// The name and arguments of the key builder for a new template first read by `reader`.
    fn key_builder(&mut self, reader: &str, template: &Template) -> KeyBuilder {
        let mut base = format!("{reader}_key");
        let mut n = 1;
        while self.builders.contains(&base) {
            n += 1;
            base = format!("{reader}_key{n}");
        }
        self.builders.insert(base.clone());
        let mut args: Vec<Ident> = Vec::new();
        let mut type_params: Vec<Ident> = Vec::new();
        let mut pieces = Vec::new();
        for segment in &template.segments {
            match segment {
                Segment::Literal(l) => pieces.push(KeyPiece::Literal(l.clone())),
                Segment::Placeholder(p) => {
                    if p.fields.is_empty()
                        && let Some(t) = self.type_param(&p.root)
                    {
                        if !type_params.contains(t) {
                            type_params.push(t.clone());
                        }
                        pieces.push(KeyPiece::TypeName(t.clone()));
                        continue;
                    }
                    let mut arg = p.root.clone();
                    for f in &p.fields {
                        arg.push('_');
                        arg.push_str(f);
                    }
                    let ident = Ident::new(&arg, Span::call_site());
                    if !args.contains(&ident) {
                        args.push(ident.clone());
                    }
                    pieces.push(KeyPiece::Value(quote!(#ident), Span::call_site()));
                }
            }
        }
        KeyBuilder {
            ident: Ident::new(&base, Span::call_site()),
            args,
            type_params,
            key: KeyExpr {
                pieces,
                capacity: template.capacity_hint(),
            },
        }
    }

    /// A trait-level key that no method reads caches nothing, silently: report it at
    /// the key, with the parameter each unknown placeholder was probably meant to be.
    fn check_trait_key_read(&self, errors: &mut Errors) {
        let Some(key) = self.trait_key else { return };
        let (Some(template), Some(lit)) = (&key.template, &key.lit) else {
            return;
        };
        if self.trait_key_read {
            return;
        }
        let params: Vec<(&Ident, String)> = self
            .input
            .methods()
            .filter(|m| m.receiver != Receiver::None)
            .flat_map(|m| m.param_names().map(move |p| (p, m.name())))
            .collect();
        let mut missing = Vec::new();
        for p in template.placeholders() {
            let known = params.iter().any(|(q, _)| **q == p.root)
                || (p.fields.is_empty() && self.type_param(&p.root).is_some());
            if known {
                continue;
            }
            let hint = nearest(&p.root, params.iter().map(|(q, m)| (q.to_string(), m)))
                .map(|(q, m)| format!(" (did you mean `{q}`? `{m}` has a parameter `{q}`)"))
                .unwrap_or_default();
            missing.push(format!("no method has a parameter `{}`{hint}", p.root));
        }
        let why = if missing.is_empty() {
            "no method that has a parameter for each of its placeholders is `async`, takes `&self` and is \
             without `#[uncached]`/`#[invalidates]`"
                .to_owned()
        } else {
            missing.join("; ")
        };
        errors.error_spanned(
            lit,
            format!(
                "the trait-level key `{}` is read by no method, so the decorator would cache nothing: {why}. \
                 A method is cached under the trait key when it is `async`, takes `&self` and has a parameter \
                 named like every placeholder",
                template.text
            ),
        );
    }

    /// The expression building `template`'s key from parameters and bindings.
    #[allow(
        clippy::too_many_arguments,
        reason = "the error message names the method, the spot and the bindings"
    )]
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
                    } else if let Some(t) = self.type_param(&p.root).filter(|_| p.fields.is_empty())
                    {
                        pieces.push(KeyPiece::TypeName(t.clone()));
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
                            let candidates = params
                                .iter()
                                .filter_map(|q| q.user.as_ref().map(|u| (u.to_string(), &())));
                            nearest(&p.root, candidates)
                                .map(|(q, _)| format!(" (did you mean `{q}`?)"))
                                .unwrap_or_default()
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

    /// The keys one `#[invalidates]` method deletes.
    fn invalidations(&mut self, m: &ast::Method, errors: &mut Errors) -> Vec<(usize, KeyExpr)> {
        let method = m.name();
        let mut keys = Vec::new();
        for inv in &m.attrs.invalidates {
            if inv.tag.is_set() {
                continue; // a tag, not a key: see `invalidated_tags`
            }
            let Some(template) = self.invalidated_template(inv, errors) else {
                continue;
            };
            let spot = inv
                .key
                .get()
                .and_then(|k| k.lit.as_ref())
                .map_or_else(|| inv.attr.clone(), ToTokens::to_token_stream);
            let canonical = template.canonical();
            let Some(spec) = self.specs.iter().position(|s| s.canonical == canonical) else {
                let known: Vec<String> = self
                    .specs
                    .iter()
                    .map(|s| format!("`{}`", s.template))
                    .collect();
                let known = if known.is_empty() {
                    format!("`{}` caches nothing", self.input.ident)
                } else {
                    format!(
                        "the cached templates of `{}` are {}",
                        self.input.ident,
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
                &m.params,
                &inv.bindings,
                true,
                &method,
                &spot,
                errors,
            ) {
                if !self.specs[spec].invalidated_by.contains(&method) {
                    self.specs[spec].invalidated_by.push(method.clone());
                }
                keys.push((spec, key));
            }
        }
        keys
    }

    /// The tags one `#[invalidates(tag = ...)]` method invalidates.
    fn invalidated_tags(&self, m: &ast::Method, errors: &mut Errors) -> Vec<(String, KeyExpr)> {
        let method = m.name();
        let mut out = Vec::new();
        for inv in &m.attrs.invalidates {
            let Some(arg) = inv.tag.get() else {
                continue;
            };
            let (Some(template), Some(lit)) = (&arg.template, &arg.lit) else {
                continue;
            };
            let spot = lit.to_token_stream();
            let canonical = template.canonical();
            if !self.tags.iter().any(|(c, _)| *c == canonical) {
                let declared: Vec<String> =
                    self.tags.iter().map(|(_, t)| format!("`{t}`")).collect();
                let declared = if declared.is_empty() {
                    format!(
                        "no cached method of `{}` declares tags (`tags = [...]`)",
                        self.input.ident
                    )
                } else {
                    format!(
                        "the tags declared in `{}` are {}",
                        self.input.ident,
                        declared.join(", ")
                    )
                };
                errors.error_spanned(
                    &spot,
                    format!(
                        "`#[invalidates]` tag `{}` names no tag of a cached method: {declared}",
                        template.text
                    ),
                );
                continue;
            }
            for (ident, _) in &inv.bindings {
                if !template.placeholders().any(|p| *ident == p.root) {
                    errors.error(
                        ident.span(),
                        format!("`{ident}` is not a placeholder of `{}`", template.text),
                    );
                }
            }
            if let Some(expr) = self.key_expr(
                template,
                &m.params,
                &inv.bindings,
                true,
                &method,
                &spot,
                errors,
            ) {
                out.push((template.text.clone(), expr));
            }
        }
        out
    }

    /// The template an `#[invalidates]` names: its own key, or the trait's.
    fn invalidated_template(&self, inv: &InvalidatesAttr, errors: &mut Errors) -> Option<Template> {
        if let Some(k) = inv.key.get() {
            let template = k.template.clone()?;
            // A key equal to a broken trait key has been reported at the trait key.
            let same_as_trait = self
                .trait_template()
                .is_some_and(|t| t.canonical() == template.canonical());
            if same_as_trait && self.trait_key_broken() {
                return None;
            }
            return Some(template);
        }
        if self.trait_key_broken() {
            return None;
        }
        match self.trait_template() {
            Some(t) => Some(t.clone()),
            None => {
                errors.error_spanned(
                    &inv.attr,
                    format!(
                        "`#[invalidates]` needs a key: `{}` has no trait-level `key`; write \
                         `#[invalidates(key = \"...\")]` with a template of a cached method",
                        self.input.ident
                    ),
                );
                None
            }
        }
    }
}

/// `stale_if_error` needs a `Result` to fall back from.
fn check_timing(
    method_opts: Option<&CacheOptions>,
    opts: &SpecOptions,
    shape: Shape,
    output: &Type,
    name: &str,
    errors: &mut Errors,
) -> bool {
    let mut ok = true;
    if opts.stale_if_error_millis.is_some() && !matches!(shape, Shape::ResultOption | Shape::Result)
    {
        let span = method_opts
            .and_then(|o| o.stale_if_error.span())
            .unwrap_or_else(|| output.span());
        errors.error(
            span,
            format!(
                "`stale_if_error` answers with the stale value when the inner store returns `Err`: \
                 `{name}` does not return a `Result`"
            ),
        );
        ok = false;
    }
    ok
}

/// A version of `template` with `<p>` added after its first literal segment, for a hint.
fn example_with(template: &Template, p: &Ident) -> String {
    match template.segments.first() {
        Some(Segment::Literal(l)) => {
            let rest = &template.text[l.len()..];
            format!("{l}<{p}>:{rest}")
        }
        _ => format!("<{p}>:{}", template.text),
    }
}

/// The candidate closest to `name`, if any is close: a prefix or suffix of the other,
/// or within an edit distance of a third of the name's length.
fn nearest<'c, M>(
    name: &str,
    candidates: impl Iterator<Item = (String, &'c M)>,
) -> Option<(String, &'c M)>
where
    M: ?Sized + 'c,
{
    let mut best: Option<(usize, String, &'c M)> = None;
    for (candidate, m) in candidates {
        if candidate == name {
            continue;
        }
        let distance = if candidate.starts_with(name)
            || name.starts_with(&candidate)
            || candidate.ends_with(name)
            || name.ends_with(&candidate)
        {
            1
        } else {
            edit_distance(name, &candidate)
        };
        let limit = (name.len().max(candidate.len()) / 3).max(1);
        if distance <= limit && best.as_ref().is_none_or(|(d, _, _)| distance < *d) {
            best = Some((distance, candidate, m));
        }
    }
    best.map(|(_, c, m)| (c, m))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
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

/// Whether `ty` has no lifetime but `'static`, no reference, no type parameter of
/// `params`, nothing of `Self` and no qualified path: a type that is `'static` if it is
/// a type at all. Only for such a type does the expansion probe `Clone + 'static` (for
/// the near cache's cloning path): method resolution ignores lifetimes, so a type with
/// one could pick that path and then fail to borrow-check. `Cow` written without its
/// lifetime (`Cow<str>`) counts as having one.
pub(crate) fn closed_type(ty: &Type, params: &[&Ident]) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && closed_path(&p.path, params),
        Type::Tuple(t) => t.elems.iter().all(|e| closed_type(e, params)),
        Type::Array(a) => closed_type(&a.elem, params),
        Type::Slice(s) => closed_type(&s.elem, params),
        Type::Paren(p) => closed_type(&p.elem, params),
        Type::Group(g) => closed_type(&g.elem, params),
        _ => false,
    }
}

fn closed_path(path: &syn::Path, params: &[&Ident]) -> bool {
    if path.leading_colon.is_none()
        && let Some(first) = path.segments.first()
        && (first.ident == "Self" || params.contains(&&first.ident))
    {
        return false;
    }
    path.segments.iter().all(|seg| match &seg.arguments {
        PathArguments::None => seg.ident != "Cow",
        PathArguments::AngleBracketed(args) => {
            let lifetime = args
                .args
                .iter()
                .any(|a| matches!(a, GenericArgument::Lifetime(_)));
            (lifetime || seg.ident != "Cow")
                && args.args.iter().all(|a| match a {
                    GenericArgument::Lifetime(l) => l.ident == "static",
                    GenericArgument::Type(t) => closed_type(t, params),
                    GenericArgument::Const(_) => true,
                    GenericArgument::AssocType(a) => closed_type(&a.ty, params),
                    _ => false,
                })
        }
        PathArguments::Parenthesized(_) => false,
    })
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
            if contains_borrow(ty.to_token_stream()) {
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
    use crate::attr;
    use syn::ItemTrait;

    fn build(args: TokenStream, item: TokenStream) -> (Model, Vec<String>) {
        let mut errors = Errors::new();
        let args = attr::parse_store_args(args, &mut errors);
        let mut item: ItemTrait = syn::parse2(item).unwrap();
        let taken = Taken::of(item.to_token_stream());
        let lowered = Trait::lower(&mut item, &mut errors);
        let model = check(&args, &lowered, &taken, &mut errors);
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

    fn assert_one_error(errors: &[String], needles: &[&str]) {
        assert_eq!(errors.len(), 1, "{errors:#?}");
        for needle in needles {
            assert!(errors[0].contains(needle), "{} lacks {needle}", errors[0]);
        }
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
                    #[uncached]
                    fn sync_read(&self, tenant_id: &str) -> Option<Policy>;
                    #[uncached]
                    async fn by_mut(&mut self, tenant_id: &str) -> Option<Policy>;
                    fn future(&self, tenant_id: &str) -> impl Future<Output = Option<Policy>> + Send;
                    fn make(tenant_id: &str) -> Self;
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
            ("make", "pass"),
        ];
        let roles: Vec<(&str, &str)> = roles.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        assert_eq!(roles, expected);
        assert_eq!(model.specs.len(), 1);
        assert_eq!(model.specs[0].read_by, ["get_policy", "future"]);
        assert_eq!(
            model.specs[0].invalidated_by,
            ["delete_policy", "set_policy"]
        );
        assert_eq!(model.specs[0].builder.ident, "get_policy_key");
        assert_eq!(model.struct_ident, "CachingPolicyStore");
    }

    #[test]
    fn methods_that_match_the_trait_key_but_cannot_be_cached_are_errors() {
        for (method, why) in [
            (
                quote!(
                    fn get(&self, id: u64) -> Option<u64>;
                ),
                "it is not `async`",
            ),
            (
                quote!(
                    async fn get(&mut self, id: u64) -> Option<u64>;
                ),
                "it takes `&mut self`",
            ),
            (
                quote!(
                    async fn get(self, id: u64) -> Option<u64>;
                ),
                "it takes `self` by value",
            ),
        ] {
            let (_, errors) = build(
                quote!(key = "k:<id>", ttl = 1),
                quote!(trait Store {
                    async fn read(&self, id: u64) -> Option<u64>;
                    #method
                }),
            );
            assert_one_error(&errors, &[why, "#[uncached]"]);
        }
    }

    #[test]
    fn trait_key_read_by_no_method_names_the_nearest_parameter() {
        let (model, errors) = build(
            quote!(key = "copilot:llm:policy:<tenant>", ttl = 300),
            quote!(
                pub trait PolicyStore: Send + Sync {
                    async fn get_policy(&self, tenant_id: &str) -> Result<Option<P>, E>;
                    #[invalidates]
                    async fn delete_policy(&self, tenant_id: &str) -> Result<(), E>;
                }
            ),
        );
        assert_one_error(
            &errors,
            &[
                "read by no method",
                "no method has a parameter `tenant`",
                "did you mean `tenant_id`?",
            ],
        );
        assert!(model.specs.is_empty());
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
            "not separated",
            "unknown placeholder `<nope>`",
            "matches no cached template",
        ]) {
            assert!(error.contains(needle), "{error} lacks {needle}");
        }
    }

    #[test]
    fn method_options_override_the_trait_each_on_its_own() {
        let (model, errors) = build(
            quote!(ttl = 60, ttl_env = "CACHE_TTL_X_SECONDS", cache_none),
            quote!(
                trait Store {
                    #[cached(key = "a:<id>")]
                    async fn a(&self, id: u64) -> Option<u64>;
                    #[cached(key = "b:<id>", cache_none = false)]
                    async fn b(&self, id: u64) -> Option<u64>;
                    #[cached(key = "c:<id>", ttl = 5)]
                    async fn c(&self, id: u64) -> Option<u64>;
                    #[cached(key = "d:<id>", ttl = 5, ttl_env = "CACHE_TTL_D_SECONDS")]
                    async fn d(&self, id: u64) -> Option<u64>;
                }
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let options: Vec<(u64, Option<&str>, bool)> = model
            .specs
            .iter()
            .map(|s| {
                (
                    s.options.ttl_millis,
                    s.options.ttl_env.as_deref(),
                    s.options.cache_none,
                )
            })
            .collect();
        assert_eq!(
            options,
            [
                (60_000, Some("CACHE_TTL_X_SECONDS"), true),
                (60_000, Some("CACHE_TTL_X_SECONDS"), false),
                (5_000, None, true),
                (5_000, Some("CACHE_TTL_D_SECONDS"), true),
            ]
        );
        assert_eq!(model.specs[1].value_type, "u64");
    }

    #[test]
    fn generic_value_types_need_the_type_in_the_key() {
        let trait_ = quote!(
            trait Repo<T> {
                async fn get(&self, id: u64) -> Option<T>;
            }
        );
        let (_, errors) = build(quote!(key = "app:item:<id>", ttl = 1), trait_.clone());
        assert_one_error(&errors, &["does not name `T`", "app:item:<T>:<id>"]);
        let (model, errors) = build(quote!(key = "app:item:<T>:<id>", ttl = 1), trait_);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(model.specs[0].builder.type_params, ["T"]);
        // A type parameter the value does not depend on needs no place in the key.
        let (_, errors) = build(
            quote!(key = "app:item:<id>", ttl = 1),
            quote!(
                trait Repo<Id: KeyPart> {
                    async fn get(&self, id: Id) -> Option<String>;
                }
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let (_, errors) = build(
            quote!(key = "app:item:<id>", ttl = 1),
            quote!(
                trait Repo {
                    type Item;
                    async fn get(&self, id: u64) -> Option<Self::Item>;
                }
            ),
        );
        assert_one_error(&errors, &["associated type of `Self`"]);
    }

    #[test]
    fn invented_names_avoid_every_identifier_of_the_trait() {
        let (model, errors) = build(
            quote!(key = "k:<id>", ttl = 1),
            quote!(
                trait S<T> {
                    async fn get(&self, id: u64) -> Option<(S0, __KEY_)>;
                }
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(model.names.inner, "S1");
        assert_eq!(model.names.spec_prefix, "__KEY_0");
        assert_eq!(model.specs[0].value_type, "(S0, __KEY_)");
    }

    #[test]
    fn accessor_names_are_reported() {
        let (_, errors) = build(
            quote!(ttl = 1),
            quote!(
                trait Store {
                    fn cache(&self) -> u8;
                }
            ),
        );
        assert_one_error(&errors, &["shadowed", "rename the method"]);
    }

    #[test]
    fn async_trait_needs_send_and_sync() {
        let store = |bounds: TokenStream, attr: TokenStream| {
            build(
                quote!(key = "k:<id>", ttl = 1),
                quote!(
                    #attr
                    trait Store #bounds {
                        async fn get(&self, id: u64) -> Option<u64>;
                    }
                ),
            )
            .1
        };
        let errors = store(quote!(), quote!(#[async_trait::async_trait]));
        assert_one_error(&errors, &["must be `Send + Sync`", "?Send"]);
        assert!(store(quote!(: Send + Sync), quote!(#[async_trait])).is_empty());
        assert!(store(quote!(), quote!(#[async_trait(?Send)])).is_empty());
        assert!(store(quote!(: Base), quote!(#[async_trait])).is_empty());
        assert!(store(quote!(), quote!()).is_empty());
        // Methods taking `&self` need only `Sync`.
        assert!(store(quote!(: Sync), quote!(#[async_trait])).is_empty());
    }

    #[test]
    fn two_readers_of_one_template_agree_on_options() {
        let (_, errors) = build(
            quote!(ttl = 1),
            quote!(
                trait Store {
                    #[cached(key = "k:<id>")]
                    async fn a(&self, id: u64) -> Option<u64>;
                    #[cached(key = "k:<n>", ttl = 2)]
                    async fn b(&self, n: u64) -> Option<u64>;
                }
            ),
        );
        assert_one_error(&errors, &["different options"]);
    }

    #[test]
    fn nearest_names() {
        let near = |name: &str, list: &[&str]| {
            nearest(name, list.iter().map(|s| ((*s).to_owned(), &()))).map(|(s, _)| s)
        };
        assert_eq!(
            near("tenant", &["tenant_id", "user"]).as_deref(),
            Some("tenant_id")
        );
        assert_eq!(
            near("tennat_id", &["tenant_id"]).as_deref(),
            Some("tenant_id")
        );
        assert_eq!(near("conversation", &["id"]), None);
    }

    #[test]
    fn the_near_probe_is_written_only_for_closed_types() {
        let t = format_ident!("T");
        let closed = |ty: Type| closed_type(&ty, &[&t]);
        for ty in [
            quote!(Policy),
            quote!(Vec<String>),
            quote!(::std::collections::HashMap<String, (u64, [u8; 4])>),
            quote!(Cow<'static, str>),
            quote!(Option<Box<Policy>>),
        ] {
            assert!(closed(syn::parse2(ty.clone()).unwrap()), "{ty}");
        }
        for ty in [
            quote!(T),
            quote!(Vec<T>),
            quote!(Self::Item),
            quote!(<S as Store>::Item),
            quote!(Cow<'a, str>),
            quote!(Cow<str>),
            quote!(Option<Cow<'_, str>>),
            quote!(&'static str),
            quote!(Box<dyn Fn()>),
            quote!(Box<fn(u8)>),
        ] {
            assert!(!closed(syn::parse2(ty.clone()).unwrap()), "{ty}");
        }
        let (model, errors) = build(
            quote!(ttl = 1),
            quote!(
                trait Repo<T> {
                    #[cached(key = "a:<T>:<id>")]
                    async fn a(&self, id: u64) -> Option<T>;
                    #[cached(key = "b:<id>", cache_none)]
                    async fn b(&self, id: u64) -> Option<String>;
                }
            ),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let probes: Vec<Option<String>> = model
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Method(m) => match &m.role {
                    Role::Cached(c) => Some(c.near_probe.as_ref().map(|t| type_string(t))),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(
            probes,
            [
                None,
                Some(type_string(&syn::parse_quote!(
                    ::core::option::Option<String>
                )))
            ]
        );
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
