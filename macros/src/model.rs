//! The checked model the code generator reads: every method with its role (cached,
//! invalidating, pass-through), every key template of the trait with its resolved
//! options, and the names the expansion uses. Only the check stage builds one.

use proc_macro2::{Span, TokenStream};
use syn::{Attribute, Ident, Signature, TraitItemConst, TraitItemType, Visibility};

pub(crate) use crate::ast::{Asyncness, Receiver};

/// A checked trait, ready for code generation.
pub(crate) struct Model {
    pub vis: Visibility,
    pub trait_ident: Ident,
    pub struct_ident: Ident,
    pub generics: syn::Generics,
    pub unsafety: Option<syn::token::Unsafe>,
    /// The path generated code names the runtime by (`::cacheward` unless `crate = "..."`).
    pub krate: syn::Path,
    /// `#[async_trait]` / `#[async_trait(?Send)]` on the trait, if any.
    pub async_trait: Option<Attribute>,
    pub items: Vec<Item>,
    pub specs: Vec<Spec>,
    pub names: Names,
    /// A stand-in for a trait with errors: everything passes through.
    pub stub: bool,
}

/// Names the expansion invents, none of them used by the trait.
pub(crate) struct Names {
    /// The decorator's type parameter (`S`, unless the trait uses that name).
    pub inner: Ident,
    /// The prefix of the key specs' statics (`__KEY_0`, …).
    pub spec_prefix: String,
    /// The static array of every key spec.
    pub specs: Ident,
    /// The static list of forwarded methods.
    pub forwarded: Ident,
}

impl Names {
    pub(crate) fn spec(&self, index: usize) -> Ident {
        Ident::new(&format!("{}{index}", self.spec_prefix), Span::call_site())
    }
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
    /// The output type as written (the `Plain` shape checks it is not a `Result`).
    pub output: Box<syn::Type>,
    /// The stored type, when it has no lifetime and no type parameter: the expansion
    /// probes it for `Clone`, so that a near-cache hit is a clone of the decoded value.
    /// `None`: every hit decodes.
    pub near_probe: Option<Box<syn::Type>>,
    /// The tags of this call's entry: each tag template's text and how to build it.
    pub tags: Vec<(String, KeyExpr)>,
}

pub(crate) struct Invalidates {
    pub keys: Vec<(usize, KeyExpr)>,
    /// Tags to invalidate: each tag template's text and how to build the tag.
    pub tags: Vec<(String, KeyExpr)>,
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
    /// A type parameter of the trait, written with its `KeyName`.
    TypeName(Ident),
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
    pub options: SpecOptions,
    /// The stored type as written (`T`, or `Option<T>` with `cache_none`).
    pub value_type: String,
    pub read_by: Vec<String>,
    pub invalidated_by: Vec<String>,
    /// The associated function that returns this template's key.
    pub builder: KeyBuilder,
}

/// The options in force for a template, resolved from the method's and the trait's
/// arguments by the check stage.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct SpecOptions {
    pub ttl_millis: u64,
    pub ttl_env: Option<String>,
    pub cache_none: bool,
    /// Tag templates, as written.
    pub tags: Vec<String>,
    pub refresh_ahead_millionths: Option<u32>,
    pub stale_if_error_millis: Option<u64>,
}

/// `CachingX::<S>::get_policy_key(tenant_id) -> String`.
pub(crate) struct KeyBuilder {
    pub ident: Ident,
    /// One argument per value placeholder, in template order.
    pub args: Vec<Ident>,
    /// The trait's type parameters the template names.
    pub type_params: Vec<Ident>,
    pub key: KeyExpr,
}
