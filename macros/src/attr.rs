//! Parsing: the arguments of `#[cached_store(...)]` and of the method attributes
//! `#[cached(...)]`, `#[invalidates(...)]` and `#[uncached]`.
//!
//! Every option is an [`Attr`]: absent, or set once at a span. Setting it twice is
//! reported here, in one place, and "absent" stays apart from "false", so that a
//! method's `cache_none = false` can override the trait's `cache_none`. Parsing never
//! stops at the first problem: each bad argument is recorded in [`Errors`] and the
//! rest are still read. What the options mean together is the check stage's business.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, Lit, LitStr, Token};

use crate::errors::Errors;
use crate::template::Template;

/// One option: absent, or the value and the span of the argument that set it.
#[derive(Debug, Clone)]
pub(crate) struct Attr<T> {
    name: &'static str,
    value: Option<(Span, T)>,
}

impl<T> Attr<T> {
    fn none(name: &'static str) -> Self {
        Attr { name, value: None }
    }

    /// Sets the option, reporting a duplicate at `span` (the first value is kept).
    fn set(&mut self, span: Span, value: T, errors: &mut Errors) {
        if self.value.is_some() {
            errors.error(span, format!("duplicate `{}` argument", self.name));
        } else {
            self.value = Some((span, value));
        }
    }

    /// Records that the option was written, so that a later one is a duplicate, even
    /// when its value was invalid (and its error already reported).
    fn mark_invalid(&mut self, span: Span, errors: &mut Errors)
    where
        T: Default,
    {
        self.set(span, T::default(), errors);
    }

    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, v)| v)
    }

    pub(crate) fn span(&self) -> Option<Span> {
        self.value.as_ref().map(|(s, _)| *s)
    }

    pub(crate) fn is_set(&self) -> bool {
        self.value.is_some()
    }
}

/// A key template argument: the literal and its parsed form (`None` when malformed;
/// the error has been recorded).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyArg {
    pub lit: Option<LitStr>,
    pub template: Option<Template>,
}

/// A time to live in milliseconds, greater than zero (`None` when the written value
/// was invalid; the error has been recorded).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ttl {
    pub millis: Option<u64>,
}

/// The options `#[cached_store]` and `#[cached]` share. Adding an option means a
/// field here, its arm in [`parse_option`], and its resolution in the check stage.
#[derive(Debug, Clone)]
pub(crate) struct CacheOptions {
    pub key: Attr<KeyArg>,
    pub ttl: Attr<Ttl>,
    pub ttl_env: Attr<Option<LitStr>>,
    pub cache_none: Attr<bool>,
    /// `tags = ["tenant:<tenant_id>", ...]`: tag templates of the cached entries.
    pub tags: Attr<Vec<KeyArg>>,
    /// `refresh_ahead = 0.8`: the share of the TTL after which a hit refreshes.
    pub refresh_ahead: Attr<RefreshAhead>,
    /// `stale_if_error = "1h"`: how long a stale copy outlives the TTL.
    pub stale_if_error: Attr<Ttl>,
    /// A syntax error stopped the parse: options after it were never read, so their
    /// absence is no mistake of its own.
    pub aborted: bool,
}

/// `refresh_ahead = f` with 0 < f < 1, in millionths (`None` when the written value was
/// invalid; the error has been recorded).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RefreshAhead {
    pub millionths: Option<u32>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            key: Attr::none("key"),
            ttl: Attr::none("ttl"),
            ttl_env: Attr::none("ttl_env"),
            cache_none: Attr::none("cache_none"),
            tags: Attr::none("tags"),
            refresh_ahead: Attr::none("refresh_ahead"),
            stale_if_error: Attr::none("stale_if_error"),
            aborted: false,
        }
    }
}

/// The arguments of `#[cached_store(...)]`.
#[derive(Debug, Clone)]
pub(crate) struct StoreArgs {
    pub options: CacheOptions,
    /// `crate = "path"`: where the runtime is, for crates that re-export cacheward.
    pub krate: Attr<Option<syn::Path>>,
}

const STORE_ARGS: &str =
    "`key`, `ttl`, `ttl_env`, `cache_none`, `tags`, `refresh_ahead`, `stale_if_error`, `crate`";
const CACHED_ARGS: &str =
    "`key`, `ttl`, `ttl_env`, `cache_none`, `tags`, `refresh_ahead`, `stale_if_error`";

/// Parses `#[cached_store(key = "...", ttl = 300, ttl_env = "...", cache_none, crate = "...")]`.
/// A syntax error that stops the parse is syn's own, kept as it is.
pub(crate) fn parse_store_args(args: TokenStream, errors: &mut Errors) -> StoreArgs {
    let mut out = StoreArgs {
        options: CacheOptions::default(),
        krate: Attr::none("crate"),
    };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            let span = meta.path.span();
            let lit: LitStr = meta.value()?.parse()?;
            match lit.parse::<syn::Path>() {
                Ok(path) => out.krate.set(span, Some(path), errors),
                Err(_) => {
                    errors.error(
                        lit.span(),
                        format!(
                            "`crate` must be a path to the cacheward crate, e.g. `crate = \"::my_platform::cacheward\"`; got {:?}",
                            lit.value()
                        ),
                    );
                    out.krate.mark_invalid(span, errors);
                }
            }
            return Ok(());
        }
        parse_option(&meta, &mut out.options, errors, "cached_store", STORE_ARGS)
    });
    if let Err(err) = syn::parse::Parser::parse2(parser, args) {
        errors.push(err);
        out.options.aborted = true;
    }
    out
}

/// Parses one `name = value` of `#[cached_store]` or `#[cached]`. Records problems
/// instead of returning them, so that the next argument is still read.
fn parse_option(
    meta: &ParseNestedMeta<'_>,
    options: &mut CacheOptions,
    errors: &mut Errors,
    attr: &str,
    accepted: &str,
) -> syn::Result<()> {
    let Some(name) = meta.path.get_ident().map(Ident::to_string) else {
        errors.error_spanned(
            &meta.path,
            format!("unknown argument; `#[{attr}]` accepts {accepted}"),
        );
        return skip_value(meta);
    };
    let span = meta.path.span();
    match name.as_str() {
        "key" => {
            let lit: LitStr = meta.value()?.parse()?;
            options.key.set(span, template_arg(&lit, errors), errors);
        }
        "ttl" => {
            let expr: Expr = meta.value()?.parse()?;
            match parse_ttl(&expr) {
                Ok(millis) => options.ttl.set(
                    span,
                    Ttl {
                        millis: Some(millis),
                    },
                    errors,
                ),
                Err(e) => {
                    errors.push(e);
                    options.ttl.mark_invalid(span, errors);
                }
            }
        }
        "ttl_env" => {
            let lit: LitStr = meta.value()?.parse()?;
            let value = lit.value();
            let valid = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if valid {
                options.ttl_env.set(span, Some(lit), errors);
            } else {
                errors.error(
                    lit.span(),
                    format!(
                        "`ttl_env` must name an environment variable in upper case, e.g. \"CACHE_TTL_POLICY_SECONDS\"; got {value:?}"
                    ),
                );
                options.ttl_env.mark_invalid(span, errors);
            }
        }
        "tags" => {
            let list: syn::ExprArray = meta.value()?.parse()?;
            let mut tags = Vec::new();
            for elem in &list.elems {
                match elem {
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(lit), ..
                    }) => tags.push(template_arg(lit, errors)),
                    other => errors.error_spanned(
                        other,
                        "a tag is a template string, e.g. `tags = [\"tenant:<tenant_id>\"]`",
                    ),
                }
            }
            options.tags.set(span, tags, errors);
        }
        "refresh_ahead" => {
            let expr: Expr = meta.value()?.parse()?;
            let value = match &expr {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Float(f), ..
                }) => f.base10_parse::<f64>().ok(),
                _ => None,
            };
            match value.filter(|f| *f > 0.0 && *f < 1.0) {
                Some(f) => options.refresh_ahead.set(
                    span,
                    RefreshAhead {
                        millionths: Some((f * 1_000_000.0).round() as u32),
                    },
                    errors,
                ),
                None => {
                    errors.error_spanned(
                        &expr,
                        "`refresh_ahead` is the share of the TTL after which a hit refreshes the entry: \
                         a number between 0 and 1, e.g. `refresh_ahead = 0.8`",
                    );
                    options.refresh_ahead.mark_invalid(span, errors);
                }
            }
        }
        "stale_if_error" => {
            let expr: Expr = meta.value()?.parse()?;
            match parse_ttl(&expr) {
                Ok(millis) => options.stale_if_error.set(
                    span,
                    Ttl {
                        millis: Some(millis),
                    },
                    errors,
                ),
                Err(_) => {
                    errors.error_spanned(
                        &expr,
                        "`stale_if_error` is how long a stale copy outlives the TTL, greater than zero: \
                         seconds (`stale_if_error = 3600`) or a duration string such as \"1h\"",
                    );
                    options.stale_if_error.mark_invalid(span, errors);
                }
            }
        }
        "cache_none" => {
            let on = if meta.input.peek(Token![=]) {
                let lit: syn::LitBool = meta.value()?.parse()?;
                lit.value
            } else {
                true
            };
            options.cache_none.set(span, on, errors);
        }
        other => {
            let hint = match other {
                "ttl_secs" | "ttl_seconds" | "expire" | "expiry" | "expires" | "timeout"
                | "seconds" => " (the time to live is `ttl`, in seconds or as \"5m\")",
                "prefix" | "template" | "name" | "pattern" => " (the key template is `key`)",
                "env" | "ttl_var" => " (the TTL override variable is `ttl_env`)",
                "none" | "cache_nones" | "store_none" => " (did you mean `cache_none`?)",
                "krate" | "cacheward" | "path" if attr == "cached_store" => {
                    " (the path to the runtime is `crate = \"...\"`)"
                }
                _ => "",
            };
            errors.error(
                span,
                format!("unknown argument `{other}`; `#[{attr}]` accepts {accepted}{hint}"),
            );
            return skip_value(meta);
        }
    }
    Ok(())
}

/// A template literal, parsed (a malformed one is recorded and kept as `None`).
fn template_arg(lit: &LitStr, errors: &mut Errors) -> KeyArg {
    let template = match Template::parse(lit) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    KeyArg {
        lit: Some(lit.clone()),
        template,
    }
}

/// Consumes `= value` or `(...)` after an argument that was rejected.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// `ttl = 300` (seconds) or `ttl = "5m"` (`ms`, `s`, `m`, `h`, `d`, combinable:
/// `"1h30m"`), in milliseconds.
pub(crate) fn parse_ttl(expr: &Expr) -> syn::Result<u64> {
    const HELP: &str = "write seconds as an integer (`ttl = 300`) or a duration string such as \"30s\", \"5m\", \"1h\", \"1h30m\"";
    let millis = match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            let secs: u64 = int
                .base10_parse()
                .map_err(|_| syn::Error::new(int.span(), format!("invalid ttl: {HELP}")))?;
            secs.checked_mul(1000)
                .ok_or_else(|| syn::Error::new(int.span(), "ttl is too large"))?
        }
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => parse_duration(&s.value()).ok_or_else(|| {
            syn::Error::new(s.span(), format!("invalid ttl {:?}: {HELP}", s.value()))
        })?,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!("invalid ttl: {HELP}"),
            ));
        }
    };
    if millis == 0 {
        return Err(syn::Error::new_spanned(
            expr,
            "ttl must be greater than zero: no cache entry lives forever, and a zero TTL would store nothing",
        ));
    }
    Ok(millis)
}

/// Parses `"300"`, `"90s"`, `"5m"`, `"1h30m"`, `"500ms"`, `"2d"` into milliseconds.
pub(crate) fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<u64>() {
        return secs.checked_mul(1000);
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let number: u64 = text[start..i].parse().ok()?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let factor: u64 = match &text[unit_start..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(factor)?)?;
    }
    Some(total)
}

/// What the attributes on one trait method say.
#[derive(Debug, Default)]
pub(crate) struct MethodAttrs {
    /// `#[cached]` or `#[cached(...)]`: the attribute (for error spans) and its options.
    pub cached: Option<(TokenStream, CacheOptions)>,
    pub invalidates: Vec<InvalidatesAttr>,
    pub uncached: Option<TokenStream>,
}

/// One `#[invalidates(...)]`.
#[derive(Debug)]
pub(crate) struct InvalidatesAttr {
    /// The attribute's tokens, for error spans.
    pub attr: TokenStream,
    pub key: Attr<KeyArg>,
    /// `tag = "..."`: invalidate every entry with this tag instead of a key.
    pub tag: Attr<KeyArg>,
    /// `name = expr` bindings for placeholders.
    pub bindings: Vec<(Ident, Expr)>,
}

/// Which of our helper attributes `attr` is, if any.
fn helper_name(attr: &Attribute) -> Option<&'static str> {
    let ident = attr.path().get_ident()?;
    ["cached", "invalidates", "uncached"]
        .into_iter()
        .find(|name| ident == name)
}

/// Removes `#[cached]`, `#[invalidates]` and `#[uncached]` from `attrs` and parses them.
pub(crate) fn take_method_attrs(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> MethodAttrs {
    let mut out = MethodAttrs::default();
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        let Some(name) = helper_name(&attr) else {
            kept.push(attr);
            continue;
        };
        let tokens = attr.to_token_stream();
        match name {
            "cached" => {
                let mut options = CacheOptions::default();
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    let result = attr.parse_nested_meta(|meta| {
                        parse_option(&meta, &mut options, errors, "cached", CACHED_ARGS)
                    });
                    if let Err(e) = result {
                        errors.push(e);
                        options.aborted = true;
                    }
                }
                if out.cached.is_some() {
                    errors.error_spanned(&tokens, "duplicate `#[cached]` attribute");
                } else {
                    out.cached = Some((tokens, options));
                }
            }
            "invalidates" => {
                let mut inv = InvalidatesAttr {
                    attr: tokens,
                    key: Attr::none("key"),
                    tag: Attr::none("tag"),
                    bindings: Vec::new(),
                };
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    let result =
                        attr.parse_nested_meta(|meta| parse_invalidates(&meta, &mut inv, errors));
                    if let Err(e) = result {
                        errors.push(e);
                    }
                }
                out.invalidates.push(inv);
            }
            _ => {
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    errors.error_spanned(&attr.meta, "`#[uncached]` takes no arguments");
                }
                if out.uncached.is_some() {
                    errors.error_spanned(&tokens, "duplicate `#[uncached]` attribute");
                }
                out.uncached = Some(tokens);
            }
        }
    }
    *attrs = kept;
    out
}

/// One argument of `#[invalidates(...)]`: `key = "..."` or a binding `name = expr`.
fn parse_invalidates(
    meta: &ParseNestedMeta<'_>,
    inv: &mut InvalidatesAttr,
    errors: &mut Errors,
) -> syn::Result<()> {
    const ACCEPTS: &str = "`#[invalidates]` accepts `key = \"...\"`, `tag = \"...\"` and placeholder bindings `name = expr`";
    let Some(ident) = meta.path.get_ident().cloned() else {
        errors.error_spanned(&meta.path, format!("unknown argument; {ACCEPTS}"));
        return skip_value(meta);
    };
    if ident == "key" || ident == "tag" {
        let lit: LitStr = meta.value()?.parse()?;
        let arg = template_arg(&lit, errors);
        let slot = if ident == "key" {
            &mut inv.key
        } else {
            &mut inv.tag
        };
        slot.set(ident.span(), arg, errors);
        if inv.key.is_set() && inv.tag.is_set() {
            errors.error(
                ident.span(),
                "one `#[invalidates]` deletes a key or a tag, not both: write one attribute for each",
            );
        }
    } else if matches!(
        ident.to_string().as_str(),
        "ttl" | "ttl_env" | "cache_none" | "crate" | "tags" | "refresh_ahead" | "stale_if_error"
    ) {
        errors.error(
            ident.span(),
            format!("`{ident}` has no meaning on `#[invalidates]`; {ACCEPTS}"),
        );
        return skip_value(meta);
    } else {
        if !meta.input.peek(Token![=]) {
            errors.error(
                ident.span(),
                format!("expected `{ident} = <expression>`: {ACCEPTS}"),
            );
            return skip_value(meta);
        }
        let expr: Expr = meta.value()?.parse()?;
        if inv.bindings.iter().any(|(b, _)| *b == ident) {
            errors.error(ident.span(), format!("duplicate binding `{ident}`"));
        } else {
            inv.bindings.push((ident, expr));
        }
    }
    Ok(())
}

/// Removes our helper attributes from an item that cannot carry them, reporting each.
pub(crate) fn reject_helper_attrs(attrs: &mut Vec<Attribute>, what: &str, errors: &mut Errors) {
    attrs.retain(|attr| match helper_name(attr) {
        Some(name) => {
            errors.error_spanned(
                attr,
                format!("`#[{name}]` goes on a trait method, not on {what}"),
            );
            false
        }
        None => true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300"), Some(300_000));
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("500ms"), Some(500));
        assert_eq!(parse_duration("2d"), Some(172_800_000));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn ttl_zero_is_rejected() {
        let e = parse_ttl(&syn::parse_quote!(0)).unwrap_err();
        assert!(e.to_string().contains("greater than zero"));
        let e = parse_ttl(&syn::parse_quote!("0s")).unwrap_err();
        assert!(e.to_string().contains("greater than zero"));
        assert_eq!(parse_ttl(&syn::parse_quote!("5m")).unwrap(), 300_000);
    }

    fn store_args(tokens: TokenStream) -> (StoreArgs, String) {
        let mut errors = Errors::new();
        let args = parse_store_args(tokens, &mut errors);
        (args, errors.finish().to_string())
    }

    #[test]
    fn options_are_tri_state() {
        let (args, errors) = store_args(quote!(ttl = 1));
        assert!(errors.is_empty(), "{errors}");
        assert_eq!(args.options.cache_none.get(), None);
        let (args, _) = store_args(quote!(ttl = 1, cache_none = false));
        assert_eq!(args.options.cache_none.get(), Some(&false));
        let (args, _) = store_args(quote!(ttl = 1, cache_none));
        assert_eq!(args.options.cache_none.get(), Some(&true));
    }

    #[test]
    fn duplicates_are_reported_once_each() {
        let (args, errors) = store_args(quote!(ttl = 1, ttl = 2, cache_none, cache_none = false));
        assert_eq!(errors.matches("duplicate `ttl`").count(), 1, "{errors}");
        assert_eq!(
            errors.matches("duplicate `cache_none`").count(),
            1,
            "{errors}"
        );
        assert_eq!(
            args.options.ttl.get().unwrap().millis,
            Some(1000),
            "the first is kept"
        );
        // An invalid first value still makes the second a duplicate.
        let (_, errors) = store_args(quote!(ttl = 0, ttl = 2));
        assert!(errors.contains("greater than zero"), "{errors}");
        assert!(errors.contains("duplicate `ttl`"), "{errors}");
    }

    #[test]
    fn crate_path() {
        let (args, errors) = store_args(quote!(ttl = 1, crate = "::platform::cache"));
        assert!(errors.is_empty(), "{errors}");
        let path = args.krate.get().unwrap().as_ref().unwrap();
        assert_eq!(quote!(#path).to_string(), ":: platform :: cache");
        let (_, errors) = store_args(quote!(ttl = 1, crate = "not a path"));
        assert!(errors.contains("must be a path"), "{errors}");
    }
}
