//! [`Cache`]: the transparent cache handle every other part of cacheward uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Backend, Store};
use crate::codec;
use crate::error::{CacheError, ConfigError};
use crate::health::CacheHealth;
use crate::stats::{CacheStats, Counters};

/// The label that operations made through the public API are counted under.
pub(crate) const DIRECT_LABEL: &str = "direct";

/// A transparent cache: Redis, Redis Cluster, an explicit in-memory map, or nothing.
///
/// Every operation is infallible from the caller's point of view: a Redis error, a
/// timeout, an open circuit breaker or an undecodable value behaves exactly like a
/// miss (for `get`) or a no-op (for `set`/`del`), and is logged and counted instead.
///
/// `Cache` is cheap to clone (one `Arc`) and `Send + Sync + 'static`.
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend())
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl Cache {
    pub(crate) fn from_store(store: Store) -> Self {
        Cache {
            inner: Arc::new(Inner {
                store,
                counters: Counters::default(),
            }),
        }
    }

    /// A cache that caches nothing: `get` is always a miss, `set` and `del` do nothing.
    pub fn pass_through() -> Self {
        Self::from_store(Store::PassThrough)
    }

    /// An in-process cache, bounded to 10,000 entries, for development and tests.
    ///
    /// It is **single-process only**: two instances of a service each have their own,
    /// so an invalidation in one is not seen by the other. Nothing ever falls back to it
    /// silently; you get it only by asking for it.
    pub fn memory() -> Self {
        Self::from_store(Store::Memory(crate::backend::memory::MemoryStore::new(
            10_000,
        )))
    }

    /// A cache on the Redis server at `url` (`redis://` or `rediss://`).
    ///
    /// Returns `Err` only when the URL is malformed. The connection is made lazily and
    /// in the background: a server that is down at start-up makes operations misses
    /// until it comes up.
    pub fn redis(url: &str) -> Result<Self, ConfigError> {
        let store = crate::backend::redis::RedisStore::new(url)?;
        Ok(Self::from_store(Store::Redis(store)))
    }

    /// Which backend this cache uses.
    pub fn backend(&self) -> Backend {
        self.inner.store.backend()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// Checks the backend: a `PING` bounded by the operation deadline for Redis.
    pub async fn health(&self) -> CacheHealth {
        let backend = self.backend();
        let start = Instant::now();
        let result = self.inner.store.ping().await;
        let latency = start.elapsed();
        match result {
            Ok(()) => CacheHealth {
                healthy: true,
                backend,
                latency: Some(latency),
                error: None,
            },
            Err(err) => CacheHealth {
                healthy: false,
                backend,
                latency: None,
                error: Some(err.to_string()),
            },
        }
    }

    /// Reads `key`; a miss, an error or an undecodable value gives `None`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get_labeled(key, DIRECT_LABEL).await
    }

    /// Writes `value` under `key` with the given time to live (at least one millisecond).
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T, ttl: Duration) {
        self.set_labeled(key, value, ttl, DIRECT_LABEL).await;
    }

    /// Deletes `key`.
    pub async fn del(&self, key: &str) {
        self.del_labeled(&[key], DIRECT_LABEL).await;
    }

    /// Reads several keys in one round trip (`MGET`); one `Option` per key, in order.
    pub async fn get_many<T: DeserializeOwned, K: AsRef<str>>(&self, keys: &[K]) -> Vec<Option<T>> {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        let raw = self.get_many_raw(&keys, DIRECT_LABEL).await;
        raw.into_iter()
            .zip(&keys)
            .map(|(bytes, key)| bytes.and_then(|b| self.decode_or_evict(key, &b, DIRECT_LABEL)))
            .collect()
    }

    /// Writes several entries in one pipelined round trip, all with the same time to live.
    pub async fn set_many<T: Serialize, K: AsRef<str>>(&self, entries: &[(K, T)], ttl: Duration) {
        let encoded: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .filter_map(|(k, v)| self.encode(v, DIRECT_LABEL).map(|b| (k.as_ref(), b)))
            .collect();
        self.set_many_raw(&encoded, ttl, DIRECT_LABEL).await;
    }

    /// Deletes several keys in one round trip.
    pub async fn del_many<K: AsRef<str>>(&self, keys: &[K]) {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        self.del_labeled(&keys, DIRECT_LABEL).await;
    }

    // ---- crate-internal API used by `__private` (the macros) and the rate limiter ----

    /// Reads and decodes `key`, counting under `label` (a template or cache name).
    pub(crate) async fn get_labeled<T: DeserializeOwned>(
        &self,
        key: &str,
        label: &'static str,
    ) -> Option<T> {
        let bytes = self.get_raw(key, label).await?;
        self.decode_or_evict(key, &bytes, label)
    }

    /// Encodes and writes `value`, counting under `label`.
    pub(crate) async fn set_labeled<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
        label: &'static str,
    ) {
        if let Some(bytes) = self.encode(value, label) {
            self.set_raw(key, bytes, ttl, label).await;
        }
    }

    /// Encodes a value with the cache's codec; `None` (logged, counted) if it cannot be.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        label: &'static str,
    ) -> Option<Vec<u8>> {
        match codec::encode(value) {
            Ok(bytes) => Some(bytes),
            Err(err) => {
                self.inner.counters.record_error();
                tracing::warn!(label, error = %err, "cacheward: value could not be encoded - not cached");
                None
            }
        }
    }

    /// Decodes bytes read under `key`; an undecodable value is counted, logged and deleted.
    pub(crate) fn decode_or_evict<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
        label: &'static str,
    ) -> Option<T> {
        match codec::decode(bytes) {
            Ok(value) => Some(value),
            Err(err) => {
                self.inner.counters.record_decode_failure();
                tracing::warn!(label, error = %err, "cacheward: undecodable cache entry - treated as a miss and deleted");
                let cache = self.clone();
                let key = key.to_owned();
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move { cache.del_labeled(&[&key], label).await });
                }
                None
            }
        }
    }

    /// Reads raw bytes; every failure is a miss.
    pub(crate) async fn get_raw(&self, key: &str, label: &'static str) -> Option<Vec<u8>> {
        let result = self.inner.store.get(key).await;
        self.inner.counters.record_get(&result);
        match result {
            Ok(v) => v,
            Err(err) => {
                tracing::warn!(label, error = %err, "cacheward: cache get failed - treating as cache miss");
                None
            }
        }
    }

    pub(crate) async fn get_many_raw(
        &self,
        keys: &[&str],
        label: &'static str,
    ) -> Vec<Option<Vec<u8>>> {
        match self.inner.store.get_many(keys).await {
            Ok(values) => {
                for v in &values {
                    self.inner.counters.record_get(&Ok(v.clone()));
                }
                values
            }
            Err(err) => {
                self.inner.counters.record_error();
                tracing::warn!(label, error = %err, "cacheward: cache get failed - treating as cache miss");
                vec![None; keys.len()]
            }
        }
    }

    /// Writes raw bytes; failures are logged and counted.
    pub(crate) async fn set_raw(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
        label: &'static str,
    ) {
        let ttl = ttl.max(Duration::from_millis(1));
        let result = self.inner.store.set(key, bytes, ttl).await;
        self.inner.counters.record_set(&result);
        if let Err(err) = result {
            tracing::warn!(label, error = %err, "cacheward: cache set failed - continuing without cache");
        }
    }

    pub(crate) async fn set_many_raw(
        &self,
        entries: &[(&str, Vec<u8>)],
        ttl: Duration,
        label: &'static str,
    ) {
        let ttl = ttl.max(Duration::from_millis(1));
        let result = self.inner.store.set_many(entries, ttl).await;
        self.inner.counters.record_set(&result);
        if let Err(err) = result {
            tracing::warn!(label, error = %err, "cacheward: cache set failed - continuing without cache");
        }
    }

    /// Deletes keys; failures are logged and counted, never returned.
    pub(crate) async fn del_labeled(&self, keys: &[&str], label: &'static str) {
        let result = self.inner.store.del(keys).await;
        self.inner.counters.record_del(&result);
        if let Err(err) = result {
            tracing::warn!(label, error = %err, "cacheward: cache delete failed");
        }
    }

    /// Runs a Lua script on the backend (the rate limiter's entry point). Backends that
    /// are not Redis answer `Err(CacheError::Unsupported)`.
    pub(crate) async fn eval_script(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<redis::Value, CacheError> {
        self.inner.store.eval(script, keys, args).await
    }
}
