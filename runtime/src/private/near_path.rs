//! How a read-through turns a hit into the caller's value: by cloning the value a
//! near-cache entry holds decoded ([`Cloned`]), or by decoding the bytes ([`Decode`]).
//!
//! A near hit of a decorator should cost a clone of an already-decoded value, not a
//! JSON decode; but a clone needs `T: Clone`, which neither the decorators' value types
//! nor [`Cache::get`](crate::Cache::get) require. The macro knows each cached method's
//! value type, so it picks the path per method at compile time with
//! [`Probe`] (autoref specialization, stable Rust):
//!
//! ```
//! # #[derive(Clone, serde::Deserialize)] struct TenantLlmPolicy;
//! let near = {
//!     use ::cacheward::__private::near_path::{ByClone as _, ByDecode as _};
//!     (&::cacheward::__private::near_path::Probe::<TenantLlmPolicy>::new()).near_path()
//! };
//! # let _: ::cacheward::__private::near_path::Cloned = near;
//! ```
//!
//! `ByClone::near_path` is a method of `Probe<T>` itself, implemented only when `T` is
//! `Clone + Send + Sync + 'static`; `ByDecode::near_path` is a method of `&Probe<T>`,
//! one auto-ref further, for any `T`. Method resolution tries the receiver as written
//! first, so the first wins whenever it applies and the second is the fallback. The
//! macro writes the probe only for a value type without lifetimes or type parameters
//! (method resolution ignores lifetimes, so `T: 'static` could not make it fall back);
//! anything else, like every cache-aside call, gets [`Decode`].

use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::__private::read_through::Format;
use crate::cache::{Cache, Found};
use crate::tags::EnvelopeIn;

/// Clone the value the near-cache entry holds decoded (decoding it on the entry's
/// first typed read).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cloned;

/// Decode the bytes on every hit (near or Redis).
#[derive(Debug, Clone, Copy, Default)]
pub struct Decode;

/// What a hit needs to become a value; built by the read-through.
pub struct Hit<'a> {
    pub(crate) cache: &'a Cache,
    pub(crate) format: &'a Format,
    pub(crate) key: &'a str,
    pub(crate) label: &'static str,
    pub(crate) found: &'a Found,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Cloned {}
    impl Sealed for super::Decode {}
}

/// A way of turning a hit into a `T`: [`Cloned`] or [`Decode`].
pub trait NearPath<T>: Copy + sealed::Sealed {
    /// The value of the hit, or `None` if it is undecodable (counted, logged, deleted)
    /// or stamped with a tag counter that changed since.
    fn value(self, hit: Hit<'_>) -> Option<T>;
}

impl<T: DeserializeOwned> NearPath<T> for Decode {
    #[inline]
    fn value(self, hit: Hit<'_>) -> Option<T> {
        hit.format
            .decode(hit.cache, hit.key, hit.found.bytes(), hit.label)
    }
}

impl<T: DeserializeOwned + Clone + Send + Sync + 'static> NearPath<T> for Cloned {
    #[inline]
    fn value(self, hit: Hit<'_>) -> Option<T> {
        let Found::Near(entry) = hit.found else {
            return <Decode as NearPath<T>>::value(Decode, hit);
        };
        let (cache, key, label) = (hit.cache, hit.key, hit.label);
        match hit.format {
            Format::Plain => entry
                .decoded(|b| cache.decode_or_evict::<T>(key, b, label))
                .map(|value| T::clone(&value)),
            // The envelope is kept decoded; its stamps are compared on every hit, with
            // the counters this read fetched.
            Format::Tagged(stamps) => {
                let envelope =
                    entry.decoded(|b| cache.decode_or_evict::<EnvelopeIn<T>>(key, b, label))?;
                stamps
                    .matches(&envelope.cacheward_tags)
                    .then(|| envelope.value.clone())
            }
        }
    }
}

/// The macro's probe of a value type `T`; see the module documentation.
pub struct Probe<T>(PhantomData<T>);

impl<T> Probe<T> {
    /// A probe for the value type `T`.
    #[must_use]
    pub const fn new() -> Self {
        Probe(PhantomData)
    }
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Answers the probe of a value type that can be cloned out of the near cache.
pub trait ByClone {
    /// [`Cloned`].
    fn near_path(&self) -> Cloned {
        Cloned
    }
}

impl<T: Clone + Send + Sync + 'static> ByClone for Probe<T> {}

/// Answers the probe of any value type.
pub trait ByDecode {
    /// [`Decode`].
    fn near_path(&self) -> Decode {
        Decode
    }
}

impl<T> ByDecode for &Probe<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    struct NotClone;

    #[test]
    #[allow(clippy::needless_borrow, reason = "the form the macro writes")]
    fn the_probe_clones_what_it_can_and_decodes_the_rest() {
        fn name<P: std::fmt::Debug>(p: P) -> String {
            format!("{p:?}")
        }
        assert_eq!(name((&Probe::<String>::new()).near_path()), "Cloned");
        assert_eq!(name((&Probe::<Vec<u8>>::new()).near_path()), "Cloned");
        assert_eq!(name((&Probe::<NotClone>::new()).near_path()), "Decode");
        // Clone but not Sync.
        assert_eq!(
            name((&Probe::<std::cell::Cell<u8>>::new()).near_path()),
            "Decode"
        );
        assert_eq!(
            name((&Probe::<std::rc::Rc<u8>>::new()).near_path()),
            "Decode"
        );
    }
}
