//! Arguments of `#[cached_store(...)]` and of the method attributes `#[cached(...)]`,
//! `#[invalidates(...)]` and `#[uncached]`.
//!
//! Parsing never stops at the first problem: each bad argument is recorded in
//! [`Errors`] and the rest are still read.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, Lit, LitStr, Token};

use crate::errors::Errors;
use crate::template::Template;

/// A key template argument: the literal and its parsed form (`None` when malformed;
/// the error has been recorded).
#[derive(Debug, Clone)]
pub(crate) struct KeyArg {
    pub lit: LitStr,
    pub template: Option<Template>,
}

/// A time to live in milliseconds, greater than zero.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ttl {
    pub millis: u64,
}

/// Options shared by `#[cached_store]` and `#[cached]`.
#[derive(Debug, Default, Clone)]
pub(crate) struct CacheOptions {
    pub key: Option<KeyArg>,
    pub ttl: Option<Ttl>,
    /// Set when a `ttl` was written but was invalid (its error is recorded), so that
    /// no second "missing ttl" error follows.
    pub ttl_invalid: bool,
    pub ttl_env: Option<LitStr>,
    pub cache_none: Option<Span>,
}

const STORE_ARGS: &str = "`key`, `ttl`, `ttl_env`, `cache_none`";

/// Parses `#[cached_store(key = "...", ttl = 300, ttl_env = "...", cache_none)]`.
pub(crate) fn parse_store_args(args: TokenStream, errors: &mut Errors) -> CacheOptions {
    let mut options = CacheOptions::default();
    let parser =
        syn::meta::parser(|meta| parse_option(&meta, &mut options, errors, "cached_store"));
    if let Err(err) = syn::parse::Parser::parse2(parser, args) {
        errors.push(err);
    }
    options
}

/// Parses one `name = value` of `#[cached_store]` or `#[cached]`. Records problems
/// instead of returning them, so that the next argument is still read.
fn parse_option(
    meta: &ParseNestedMeta<'_>,
    options: &mut CacheOptions,
    errors: &mut Errors,
    attr: &str,
) -> syn::Result<()> {
    let Some(name) = meta.path.get_ident().map(Ident::to_string) else {
        errors.error_spanned(
            &meta.path,
            format!("unknown argument; `#[{attr}]` accepts {STORE_ARGS}"),
        );
        return skip_value(meta);
    };
    let span = meta.path.span();
    let duplicate = |errors: &mut Errors, set: bool| {
        if set {
            errors.error(span, format!("duplicate `{name}` argument"));
        }
    };
    match name.as_str() {
        "key" => {
            let lit: LitStr = meta.value()?.parse()?;
            duplicate(errors, options.key.is_some());
            let template = match Template::parse(&lit) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(e);
                    None
                }
            };
            options.key = Some(KeyArg { lit, template });
        }
        "ttl" => {
            let expr: Expr = meta.value()?.parse()?;
            duplicate(errors, options.ttl.is_some() || options.ttl_invalid);
            match parse_ttl(&expr) {
                Ok(ttl) => options.ttl = Some(ttl),
                Err(e) => {
                    errors.push(e);
                    options.ttl_invalid = true;
                }
            }
        }
        "ttl_env" => {
            let lit: LitStr = meta.value()?.parse()?;
            duplicate(errors, options.ttl_env.is_some());
            let value = lit.value();
            let valid = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                errors.error(
                    lit.span(),
                    format!(
                        "`ttl_env` must name an environment variable in upper case, e.g. \"CACHE_TTL_POLICY_SECONDS\"; got {value:?}"
                    ),
                );
            }
            options.ttl_env = Some(lit);
        }
        "cache_none" => {
            duplicate(errors, options.cache_none.is_some());
            let on = if meta.input.peek(Token![=]) {
                let lit: syn::LitBool = meta.value()?.parse()?;
                lit.value
            } else {
                true
            };
            if on {
                options.cache_none = Some(span);
            }
        }
        other => {
            let hint = match other {
                "ttl_secs" | "ttl_seconds" | "expire" | "expiry" | "expires" | "timeout"
                | "seconds" => " (the time to live is `ttl`, in seconds or as \"5m\")",
                "prefix" | "template" | "name" | "pattern" => " (the key template is `key`)",
                "env" | "ttl_var" => " (the TTL override variable is `ttl_env`)",
                "none" | "cache_nones" | "store_none" => " (did you mean `cache_none`?)",
                _ => "",
            };
            errors.error(
                span,
                format!("unknown argument `{other}`; `#[{attr}]` accepts {STORE_ARGS}{hint}"),
            );
            return skip_value(meta);
        }
    }
    Ok(())
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

/// `ttl = 300` (seconds) or `ttl = "5m"` (`ms`, `s`, `m`, `h`, `d`, combinable: `"1h30m"`).
pub(crate) fn parse_ttl(expr: &Expr) -> syn::Result<Ttl> {
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
    Ok(Ttl { millis })
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
    pub key: Option<KeyArg>,
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
                        parse_option(&meta, &mut options, errors, "cached")
                    });
                    if let Err(e) = result {
                        errors.push(e);
                    }
                }
                if out.cached.is_some() {
                    errors.error_spanned(&tokens, "duplicate `#[cached]` attribute");
                }
                out.cached = Some((tokens, options));
            }
            "invalidates" => {
                let mut inv = InvalidatesAttr {
                    attr: tokens,
                    key: None,
                    bindings: Vec::new(),
                };
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    let result = attr.parse_nested_meta(|meta| {
                        let Some(ident) = meta.path.get_ident().cloned() else {
                            errors.error_spanned(
                                &meta.path,
                                "expected `key = \"...\"` or a placeholder binding `name = expr`",
                            );
                            return skip_value(&meta);
                        };
                        if ident == "key" {
                            let lit: LitStr = meta.value()?.parse()?;
                            if inv.key.is_some() {
                                errors.error(ident.span(), "duplicate `key` argument");
                            }
                            let template = match Template::parse(&lit) {
                                Ok(t) => Some(t),
                                Err(e) => {
                                    errors.push(e);
                                    None
                                }
                            };
                            inv.key = Some(KeyArg { lit, template });
                        } else if matches!(ident.to_string().as_str(), "ttl" | "ttl_env" | "cache_none") {
                            errors.error(
                                ident.span(),
                                format!(
                                    "`{ident}` has no meaning on `#[invalidates]`; it accepts `key = \"...\"` and placeholder bindings `name = expr`"
                                ),
                            );
                            return skip_value(&meta);
                        } else {
                            if !meta.input.peek(Token![=]) {
                                errors.error(
                                    ident.span(),
                                    format!(
                                        "expected `{ident} = <expression>`: `#[invalidates]` accepts `key = \"...\"` and placeholder bindings `name = expr`"
                                    ),
                                );
                                return skip_value(&meta);
                            }
                            let expr: Expr = meta.value()?.parse()?;
                            if inv.bindings.iter().any(|(b, _)| *b == ident) {
                                errors.error(ident.span(), format!("duplicate binding `{ident}`"));
                            }
                            inv.bindings.push((ident, expr));
                        }
                        Ok(())
                    });
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
                out.uncached = Some(tokens);
            }
        }
    }
    *attrs = kept;
    out
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
        assert_eq!(parse_ttl(&syn::parse_quote!("5m")).unwrap().millis, 300_000);
    }
}
