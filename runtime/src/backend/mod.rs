//! The storage backends behind a [`Cache`](crate::Cache).
//!
//! [`Store`] is a closed enum (a `match` keeps the hit path free of dynamic dispatch).
//! Every store that talks to Redis is a [`Guarded`]`<S>` with `S:` [`RemoteStore`], so
//! the deadline and the circuit breaker live in one place. Adding a Redis-speaking
//! store (the cluster store) takes: `impl RemoteStore for ClusterStore`, one variant
//! `Store::RedisCluster(Guarded<ClusterStore>)`, and one arm per method below, each
//! identical to the `Store::Redis(g)` arm (the compiler lists them).

use std::time::Duration;

use crate::breaker::CircuitState;
use crate::error::CacheError;

pub(crate) mod cluster;
pub(crate) mod guard;
pub(crate) mod memory;
pub(crate) mod redis;
pub(crate) mod slot;

/// A time to live as the milliseconds of `SET … PX`: at least 1 (PX 0 is an error).
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// rustls needs a process-wide crypto provider, and cannot pick one by itself when an
/// application enables several (ring here, aws-lc-rs elsewhere): the first `rediss://`
/// handshake would panic. Installs ring's unless the application installed one.
#[cfg(feature = "tls")]
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

pub(crate) use guard::{GuardConfig, Guarded};

/// Which kind of storage a [`Cache`](crate::Cache) is using.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// A single Redis server (or a primary behind a proxy).
    Redis,
    /// A Redis Cluster.
    RedisCluster,
    /// The explicit, single-process in-memory map of [`Cache::memory`](crate::Cache::memory).
    Memory,
    /// Nothing: every read misses, every write is dropped.
    PassThrough,
}

impl Backend {
    /// The backend's name as used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Redis => "redis",
            Backend::RedisCluster => "redis-cluster",
            Backend::Memory => "memory",
            Backend::PassThrough => "passthrough",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The store a cache dispatches to.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per cache, inside its Arc; boxing would add a pointer chase to every operation"
)]
pub(crate) enum Store {
    /// Caching is off on purpose (no `REDIS_URL`, `CACHE_ENABLED=false`, ...).
    PassThrough,
    /// Caching is off because the configuration is broken; the string names the
    /// problem (never a password) and is reported by `health()`.
    Misconfigured(String),
    Memory(memory::MemoryStore),
    Redis(Guarded<redis::RedisStore>),
    RedisCluster(Guarded<cluster::ClusterStore>),
}

impl Store {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Backend::PassThrough,
            Store::Memory(_) => Backend::Memory,
            Store::Redis(_) => Backend::Redis,
            Store::RedisCluster(_) => Backend::RedisCluster,
        }
    }

    /// Where a remote store connects (password redacted).
    pub(crate) fn endpoint(&self) -> Option<&str> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) | Store::Memory(_) => None,
            Store::Redis(g) => Some(g.endpoint()),
            Store::RedisCluster(g) => Some(g.endpoint()),
        }
    }

    /// The breaker's state, for stores that have one.
    pub(crate) fn circuit(&self) -> Option<CircuitState> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) | Store::Memory(_) => None,
            Store::Redis(g) => Some(g.circuit()),
            Store::RedisCluster(g) => Some(g.circuit()),
        }
    }

    pub(crate) fn breaker_openings(&self) -> u64 {
        match self {
            Store::PassThrough | Store::Misconfigured(_) | Store::Memory(_) => 0,
            Store::Redis(g) => g.breaker_openings(),
            Store::RedisCluster(g) => g.breaker_openings(),
        }
    }

    #[inline]
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(None),
            Store::Memory(m) => Ok(m.get(key)),
            Store::Redis(g) => g.get(key).await,
            Store::RedisCluster(g) => g.get(key).await,
        }
    }

    pub(crate) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(vec![None; keys.len()]),
            Store::Memory(m) => Ok(keys.iter().map(|k| m.get(k)).collect()),
            Store::Redis(g) => g.get_many(keys).await,
            Store::RedisCluster(g) => g.get_many(keys).await,
        }
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(()),
            Store::Memory(m) => {
                m.set(key, value, ttl);
                Ok(())
            }
            Store::Redis(g) => g.set(key, value, ttl).await,
            Store::RedisCluster(g) => g.set(key, value, ttl).await,
        }
    }

    pub(crate) async fn set_many(
        &self,
        entries: &[(&str, Vec<u8>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(()),
            Store::Memory(m) => {
                for (k, v) in entries {
                    m.set(k, v.clone(), ttl);
                }
                Ok(())
            }
            Store::Redis(g) => g.set_many(entries, ttl).await,
            Store::RedisCluster(g) => g.set_many(entries, ttl).await,
        }
    }

    pub(crate) async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(()),
            Store::Memory(m) => {
                for k in keys {
                    m.del(k);
                }
                Ok(())
            }
            Store::Redis(g) => g.del(keys).await,
            Store::RedisCluster(g) => g.del(keys).await,
        }
    }

    /// The health check: `Err` names why the backend cannot serve.
    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Store::PassThrough | Store::Memory(_) => Ok(()),
            Store::Misconfigured(why) => Err(CacheError::Misconfigured(why.clone())),
            Store::Redis(g) => g.ping().await,
            Store::RedisCluster(g) => g.ping().await,
        }
    }

    #[allow(dead_code, reason = "the rate limiter's entry point")]
    pub(crate) async fn eval(
        &self,
        script: &::redis::Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<::redis::Value, CacheError> {
        match self {
            Store::PassThrough | Store::Memory(_) => Err(CacheError::Unsupported),
            Store::Misconfigured(why) => Err(CacheError::Misconfigured(why.clone())),
            Store::Redis(g) => g.eval(script, keys, args).await,
            Store::RedisCluster(g) => g.eval(script, keys, args).await,
        }
    }
}
