//! Every Redis test body, written once. A scenario that takes a [`Target`](crate::Target)
//! runs on a single server and on the shared cluster; one that takes nothing sets up
//! what it needs (a server or a cluster it breaks, a backend that is not Redis).
//!
//! The integration binaries only list them: `tests/scenarios.rs` runs every scenario
//! that does not capture logs, `tests/logs.rs` those that do (a process of their own).
//!
//! - [`cache`]: `Cache` on a healthy Redis and on the backends that are not Redis.
//! - [`decorator`]: the generated decorators (`#[cached_store]`) against Redis.
//! - [`ratelimit`]: the rate limiter, on a healthy Redis and on one that fails.
//! - [`failover`]: a single Redis failing under the cache: killed, frozen, refusing.
//! - [`cluster`]: a Redis Cluster changing under load, slots, a password-protected
//!   cluster.
//! - [`harness`]: the test harness itself.

pub mod cache;
pub mod cluster;
pub mod decorator;
pub mod failover;
pub mod harness;
pub mod ratelimit;
