//! The storage backends behind a [`Cache`](crate::Cache).

use std::time::Duration;

use crate::error::CacheError;

pub(crate) mod cluster;
pub(crate) mod memory;
pub(crate) mod redis;
pub(crate) mod slot;

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

/// The store a cache dispatches to. An enum rather than a trait object: the set is
/// closed and a `match` keeps the hit path free of dynamic dispatch.
#[derive(Debug)]
pub(crate) enum Store {
    PassThrough,
    Memory(memory::MemoryStore),
    Redis(redis::RedisStore),
    RedisCluster(cluster::ClusterStore),
}

impl Store {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Store::PassThrough => Backend::PassThrough,
            Store::Memory(_) => Backend::Memory,
            Store::Redis(_) => Backend::Redis,
            Store::RedisCluster(_) => Backend::RedisCluster,
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        match self {
            Store::PassThrough => Ok(None),
            Store::Memory(m) => Ok(m.get(key)),
            Store::Redis(r) => r.get(key).await,
            Store::RedisCluster(r) => r.get(key).await,
        }
    }

    pub(crate) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        match self {
            Store::PassThrough => Ok(vec![None; keys.len()]),
            Store::Memory(m) => Ok(keys.iter().map(|k| m.get(k)).collect()),
            Store::Redis(r) => r.get_many(keys).await,
            Store::RedisCluster(r) => r.get_many(keys).await,
        }
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        match self {
            Store::PassThrough => Ok(()),
            Store::Memory(m) => {
                m.set(key, value, ttl);
                Ok(())
            }
            Store::Redis(r) => r.set(key, value, ttl).await,
            Store::RedisCluster(r) => r.set(key, value, ttl).await,
        }
    }

    pub(crate) async fn set_many(
        &self,
        entries: &[(&str, Vec<u8>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        match self {
            Store::PassThrough => Ok(()),
            Store::Memory(m) => {
                for (k, v) in entries {
                    m.set(k, v.clone(), ttl);
                }
                Ok(())
            }
            Store::Redis(r) => r.set_many(entries, ttl).await,
            Store::RedisCluster(r) => r.set_many(entries, ttl).await,
        }
    }

    pub(crate) async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        match self {
            Store::PassThrough => Ok(()),
            Store::Memory(m) => {
                for k in keys {
                    m.del(k);
                }
                Ok(())
            }
            Store::Redis(r) => r.del(keys).await,
            Store::RedisCluster(r) => r.del(keys).await,
        }
    }

    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Store::PassThrough | Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.ping().await,
            Store::RedisCluster(r) => r.ping().await,
        }
    }

    pub(crate) async fn eval(
        &self,
        script: &::redis::Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<::redis::Value, CacheError> {
        match self {
            Store::PassThrough | Store::Memory(_) => Err(CacheError::Unsupported),
            Store::Redis(r) => r.eval(script, keys, args).await,
            Store::RedisCluster(r) => r.eval(script, keys, args).await,
        }
    }
}
