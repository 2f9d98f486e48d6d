//! Return shapes of cached methods. The macro picks one from the syntax of the
//! method's output type; each says what is stored and how a stored value becomes an
//! answer again.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a cached method's result maps to the value stored under its key.
pub trait Shape<R> {
    /// The type written to the cache.
    type Stored: Serialize + DeserializeOwned;

    /// The part of `result` to store, or `None` when this result is not stored.
    fn stored(result: &R) -> Option<&Self::Stored>;

    /// The answer for a value read from the cache.
    fn from_stored(stored: Self::Stored) -> R;

    /// Whether `result` is an absent value (`None`, `Ok(None)`) that concurrent
    /// callers of the same key may share although it is not stored.
    fn is_absent(_result: &R) -> bool {
        false
    }

    /// The absent answer, for shapes that have one.
    fn absent() -> Option<R> {
        None
    }
}

/// `Result<Option<T>, E>`: `Ok(Some(t))` is stored as `t`; `Ok(None)` and `Err` are not.
#[derive(Debug, Clone, Copy)]
pub struct ResultOption;

/// `Result<Option<T>, E>` with `cache_none`: `Ok(v)` is stored as `v` (`null` for `None`).
#[derive(Debug, Clone, Copy)]
pub struct ResultOptionWithNone;

/// `Option<T>`: `Some(t)` is stored as `t`; `None` is not.
#[derive(Debug, Clone, Copy)]
pub struct OptionValue;

/// `Option<T>` with `cache_none`: every answer is stored (`null` for `None`).
#[derive(Debug, Clone, Copy)]
pub struct OptionWithNone;

/// `Result<T, E>`: `Ok(t)` is stored as `t`; `Err` is not.
#[derive(Debug, Clone, Copy)]
pub struct ResultValue;

/// `T`: every answer is stored.
#[derive(Debug, Clone, Copy)]
pub struct Plain;

impl<T: Serialize + DeserializeOwned, E> Shape<Result<Option<T>, E>> for ResultOption {
    type Stored = T;

    fn stored(result: &Result<Option<T>, E>) -> Option<&T> {
        match result {
            Ok(Some(value)) => Some(value),
            _ => None,
        }
    }

    fn from_stored(stored: T) -> Result<Option<T>, E> {
        Ok(Some(stored))
    }

    fn is_absent(result: &Result<Option<T>, E>) -> bool {
        matches!(result, Ok(None))
    }

    fn absent() -> Option<Result<Option<T>, E>> {
        Some(Ok(None))
    }
}

impl<T: Serialize + DeserializeOwned, E> Shape<Result<Option<T>, E>> for ResultOptionWithNone {
    type Stored = Option<T>;

    fn stored(result: &Result<Option<T>, E>) -> Option<&Option<T>> {
        result.as_ref().ok()
    }

    fn from_stored(stored: Option<T>) -> Result<Option<T>, E> {
        Ok(stored)
    }
}

impl<T: Serialize + DeserializeOwned> Shape<Option<T>> for OptionValue {
    type Stored = T;

    fn stored(result: &Option<T>) -> Option<&T> {
        result.as_ref()
    }

    fn from_stored(stored: T) -> Option<T> {
        Some(stored)
    }

    fn is_absent(result: &Option<T>) -> bool {
        result.is_none()
    }

    fn absent() -> Option<Option<T>> {
        Some(None)
    }
}

impl<T: Serialize + DeserializeOwned> Shape<Option<T>> for OptionWithNone {
    type Stored = Option<T>;

    fn stored(result: &Option<T>) -> Option<&Option<T>> {
        Some(result)
    }

    fn from_stored(stored: Option<T>) -> Option<T> {
        stored
    }
}

impl<T: Serialize + DeserializeOwned, E> Shape<Result<T, E>> for ResultValue {
    type Stored = T;

    fn stored(result: &Result<T, E>) -> Option<&T> {
        result.as_ref().ok()
    }

    fn from_stored(stored: T) -> Result<T, E> {
        Ok(stored)
    }
}

impl<T: Serialize + DeserializeOwned> Shape<T> for Plain {
    type Stored = T;

    fn stored(result: &T) -> Option<&T> {
        Some(result)
    }

    fn from_stored(stored: T) -> T {
        stored
    }
}

/// The check the macro writes for a [`Plain`] method: its return type, as the
/// compiler resolves it, is not a `Result`. The shape is chosen from the return type
/// as written, so a `Result` behind an alias with another name (`StoreResult<T>`)
/// would otherwise be cached whole, errors included.
///
/// `(&Probe::<R>::new()).kind()` picks [`IsResult::kind`] when `R` is a `Result`
/// (a method on `Probe<R>` itself) and [`NotResult::kind`] otherwise (a method on
/// `&Probe<R>`, one auto-ref further); only the second satisfies [`assert_plain`].
pub struct Probe<R>(PhantomData<R>);

impl<R> Probe<R> {
    /// A probe for the return type `R`.
    #[must_use]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<R> Default for Probe<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// The probe's answer for a `Result`.
#[derive(Debug, Clone, Copy)]
pub struct ResultBehindAnAlias;

/// The probe's answer for any other type.
#[derive(Debug, Clone, Copy)]
pub struct PlainValue;

/// Matches a probe of a `Result`.
pub trait IsResult {
    /// [`ResultBehindAnAlias`].
    fn kind(&self) -> ResultBehindAnAlias {
        ResultBehindAnAlias
    }
}

impl<T, E> IsResult for Probe<Result<T, E>> {}

/// Matches a probe of anything.
pub trait NotResult {
    /// [`PlainValue`].
    fn kind(&self) -> PlainValue {
        PlainValue
    }
}

impl<R> NotResult for &Probe<R> {}

/// Implemented only by [`PlainValue`].
#[diagnostic::on_unimplemented(
    message = "this cached method returns a `Result` through an alias, which `#[cached_store]` cannot see",
    label = "a `Result` under another name",
    note = "the return shape is read from the type as written: with an alias such as `StoreResult<T>` the whole `Result` would be cached, errors included",
    note = "write `Result<T, E>` in the trait (an alias named `Result`, such as `io::Result<T>`, works too); deriving `Serialize` on the error type is not the fix"
)]
pub trait PlainShape {}

impl PlainShape for PlainValue {}

/// Compiles only for a return type that is not a `Result`.
pub fn assert_plain<K: PlainShape>(_kind: K) {}
