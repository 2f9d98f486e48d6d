//! Return shapes of cached methods. The macro picks one from the syntax of the
//! method's output type; each says what is stored and how a stored value becomes an
//! answer again.

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
