//! Items the generated code refers to as `::cacheward::__private::…`. Not public API:
//! nothing here follows semver.
//!
//! SKELETON: owned by the macros work (issue 3).

pub use ::async_trait::async_trait;
pub use ::core;
pub use ::serde;
pub use ::std;
