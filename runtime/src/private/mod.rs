//! Items the generated code refers to as `::cacheward::__private::…`. Not public API:
//! nothing here follows semver.
//!
//! The macros keep the generated methods thin: a cached method builds its key and
//! calls `read_through`; an invalidating method builds its keys, calls the inner
//! store and hands the result to `invalidate_if_ok` or `invalidate`. All cache
//! logic (single-flight, encoding, counting, logging) lives here.

mod invalidate;
pub mod near_path;
pub(crate) mod read_through;
pub mod shape;
mod single_flight;

pub use ::async_trait::async_trait;
pub use ::core;
pub use ::serde;
pub use ::std;

pub use crate::key::KeyPart;

/// Writes `T`'s [`KeyName`](crate::KeyName), escaped like any text value, where a key
/// template names a type parameter of a generic trait.
pub fn write_key_name<T: crate::KeyName + ?Sized>(out: &mut ::std::string::String) {
    crate::key::write_escaped(T::KEY_NAME, out);
}
pub use invalidate::{invalidate, invalidate_if_ok, invalidate_tags, invalidate_tags_if_ok};
pub use read_through::{Timing, read_through, read_through_with, read_through_with_background};

/// Test hooks of the near cache.
pub use crate::near::testing as near_testing;
