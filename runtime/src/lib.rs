//! # cacheward
//!
//! Turn a store trait into a Redis-cached store at compile time.
//!
//! SKELETON: the crate docs are written with the macros (issue 3).

#![warn(missing_docs)]

mod backend;
mod breaker;
mod builder;
mod cache;
mod codec;
pub mod config;
mod error;
mod health;
pub mod key;
pub mod ratelimit;
mod redact;
mod stats;
mod telemetry;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private;
#[path = "private/inventory.rs"]
pub mod inventory;

pub use backend::Backend;
pub use breaker::CircuitState;
pub use builder::CacheBuilder;
pub use cache::{Cache, DIRECT_LABEL};
pub use cacheward_macros::cached_store;
pub use error::{CacheError, ConfigError};
pub use health::CacheHealth;
pub use key::KeyPart;
pub use ratelimit::{Algorithm, Decision, RateLimiter};
pub use stats::CacheStats;
