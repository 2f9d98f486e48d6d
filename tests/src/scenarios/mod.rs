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
//! - [`cluster_stall`]: redis-rs' cluster connection stalling under tokio 1.54+ (the
//!   control) and cacheward's cluster store under the same migrations.
//! - [`harness`]: the test harness itself.
//! - [`leases`]: race-free fills and one load per cold key across instances.
//! - [`pending_invalidations`]: invalidations that survive a partition or an open
//!   breaker.
//! - [`frozen_deadline`]: no call past its deadline while Redis is frozen.
//! - [`near_cache`]: the in-process tier and its coherence.
//! - [`tags`], [`freshness`]: tag invalidation; refresh-ahead and stale-if-error.
//! - [`timing`]: the macro forms of tags, refresh-ahead and stale-if-error.

pub mod cache;
pub mod cluster;
pub mod cluster_stall;
pub mod decorator;
pub mod failover;
pub mod freshness;
pub mod frozen_deadline;
pub mod harness;
pub mod leases;
pub mod near_cache;
pub mod pending_invalidations;
pub mod ratelimit;
pub mod ratelimit_memory;
pub mod tags;
pub mod timing;

use std::time::{Duration, Instant};

use cacheward::Cache;

/// Writes `value` under `key` and reads it back, every `pause`, until the read returns
/// it or `within` has passed: whether it did (the cache reached a Redis that came up,
/// or recovered).
pub(crate) async fn reads_back(
    cache: &Cache,
    key: &str,
    value: &str,
    within: Duration,
    pause: Duration,
) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        cache.set(key, value, Duration::from_secs(300)).await;
        if cache.get::<String>(key).await.as_deref() == Some(value) {
            return true;
        }
        tokio::time::sleep(pause).await;
    }
    false
}
