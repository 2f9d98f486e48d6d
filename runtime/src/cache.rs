//! [`Cache`]: the transparent cache handle every other part of cacheward uses.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{Backend, ScriptArg, Store};
use crate::codec;
use crate::error::{CacheError, ConfigError};
use crate::health::CacheHealth;
use crate::stats::{CacheStats, LabelSlot, LabelTable};
use crate::telemetry::{LogLimiter, Op, Outcome};

/// The label that operations made through [`Cache`]'s public methods (`get`, `set`,
/// ...) are counted under in [`Cache::stats_by_label`]. Generated code counts under
/// its key template, the rate limiter under its name.
pub const DIRECT_LABEL: &str = "direct";

/// A read that failed because Redis is unreachable, too slow, or skipped by the open
/// breaker (as opposed to a miss). Crate-internal: callers of the public API only ever
/// see a miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadFailed;

/// A value found by a read: bytes from Redis, or an entry of the near cache (also what a
/// Redis hit becomes once inserted there), which keeps its decoded form for typed reads.
pub(crate) enum Found {
    Bytes(Vec<u8>),
    Near(Arc<crate::near::Entry>),
}

impl Found {
    /// The stored bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Found::Bytes(b) => b,
            Found::Near(entry) => entry.bytes(),
        }
    }
}

/// A transparent cache: Redis, Redis Cluster, Upstash (REST), an explicit in-memory map,
/// or nothing.
///
/// Every operation is infallible from the caller's point of view: a Redis error, a
/// timeout, an open circuit breaker or an undecodable value behaves exactly like a
/// miss (for `get`) or a no-op (for `set`/`del`), and is logged (rate-limited) and
/// counted instead. See `docs/failover.md` for what happens in each failure.
///
/// `Cache` is cheap to clone (one `Arc`) and `Send + Sync + 'static`; clones share the
/// connection, the circuit breaker and the counters.
///
/// Operations need a tokio runtime with its IO and time drivers (what `#[tokio::main]`
/// gives); outside one they are misses. With the `metrics` feature, operations are
/// reported through the `metrics` facade (`cache.operations.total`,
/// `cache.operation.duration`, `cache.errors.total`, labelled by operation, result,
/// backend and cache label, never by key); metric handles are registered on first
/// use and kept, so install the recorder before the first cache operation.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use cacheward::Cache;
///
/// let cache = Cache::memory();
/// cache.set("copilot:llm:policy:acme", &vec![1, 2, 3], Duration::from_secs(300)).await;
/// let hit: Option<Vec<u32>> = cache.get("copilot:llm:policy:acme").await;
/// assert_eq!(hit, Some(vec![1, 2, 3]));
/// # }
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) labels: LabelTable,
    pub(crate) log: LogLimiter,
    /// How values are written (see [`crate::codec`]).
    pub(crate) encoding: codec::Encoding,
    /// How long a lease holder may take to load and fill (see [`crate::lease`]).
    pub(crate) lease: Duration,
    /// Invalidations that could not reach Redis yet (see [`crate::pending`]).
    pub(crate) pending: crate::pending::Pending,
    /// The in-process tier in front of Redis, when enabled (see [`crate::near`]).
    pub(crate) near: Option<Arc<crate::near::Near>>,
    /// Refresh-ahead and stale-if-error state (see [`crate::freshness`]).
    pub(crate) freshness: crate::freshness::Freshness,
}

/// Settings of a [`Cache`] beyond its store.
pub(crate) struct Tuning {
    pub(crate) encoding: codec::Encoding,
    pub(crate) lease: Duration,
    pub(crate) near: Option<Arc<crate::near::Near>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend())
            .field("store", &self.inner.store)
            .field("encoding", &self.inner.encoding)
            .finish_non_exhaustive()
    }
}

/// Measures an operation for the duration metric; free without the `metrics` feature.
#[derive(Clone, Copy)]
pub(crate) struct Timer(#[cfg(feature = "metrics")] Instant);

impl Timer {
    #[inline]
    pub(crate) fn start() -> Self {
        Timer(
            #[cfg(feature = "metrics")]
            Instant::now(),
        )
    }
}

fn failure_outcome(err: &CacheError) -> Outcome {
    match err {
        CacheError::CircuitOpen => Outcome::Skipped,
        CacheError::Timeout(_) => Outcome::Timeout,
        _ => Outcome::Error,
    }
}

impl Cache {
    pub(crate) fn from_store(store: Store, encoding: codec::Encoding) -> Self {
        let tuning = Tuning {
            encoding,
            lease: crate::lease::DEFAULT_LEASE,
            near: None,
        };
        Self::from_parts(store, tuning)
    }

    pub(crate) fn from_parts(store: Store, tuning: Tuning) -> Self {
        Cache {
            inner: Arc::new(Inner {
                store,
                labels: LabelTable::default(),
                log: LogLimiter::default(),
                encoding: tuning.encoding,
                lease: tuning.lease,
                pending: crate::pending::Pending::default(),
                near: tuning.near,
                freshness: crate::freshness::Freshness::default(),
            }),
        }
    }

    /// Evicts `keys` from the near cache before this instance writes or deletes them.
    #[inline]
    pub(crate) fn evict_near(&self, keys: &[&str]) {
        if let Some(near) = &self.inner.near {
            for key in keys {
                near.invalidate(key);
            }
        }
    }

    /// A cache that caches nothing: `get` is always a miss, `set` and `del` do nothing.
    pub fn pass_through() -> Self {
        Self::from_store(Store::PassThrough, codec::Encoding::default())
    }

    /// A pass-through cache that remembers why: [`Cache::health`] reports it unhealthy
    /// with `reason` as the error.
    pub(crate) fn misconfigured(reason: String) -> Self {
        Self::from_store(Store::Misconfigured(reason), codec::Encoding::default())
    }

    /// An in-process cache bounded to 10,000 entries and 64 MiB, for development and
    /// tests (other bounds: [`Cache::builder`]).
    ///
    /// It is **single-process only**: two instances of a service each have their own,
    /// so an invalidation in one is not seen by the other. Nothing ever falls back to it
    /// silently; you get it only by asking for it.
    pub fn memory() -> Self {
        Self::builder()
            .memory()
            .build()
            .unwrap_or_else(|_| Self::pass_through())
    }

    /// A cache on the Redis server at `url` (`redis://` or `rediss://`), with the default
    /// deadline and breaker (other settings: [`Cache::builder`]).
    ///
    /// Returns `Err` only when the URL is malformed (the message names the problem and
    /// never the password). The connection is made lazily and in the background: a
    /// server that is down at start-up makes operations misses until it comes up.
    pub fn redis(url: &str) -> Result<Self, ConfigError> {
        Self::builder().redis_url(url).build()
    }

    /// A cache on an Upstash database through its REST API: `url` is the REST URL
    /// (`https://<name>.upstash.io`) and `token` its REST token (the `upstash` feature).
    /// Other settings: [`Cache::builder`] with
    /// [`upstash`](crate::CacheBuilder::upstash).
    ///
    /// Returns `Err` only when the URL is malformed or the token empty (the message never
    /// contains the token). Nothing is sent before the first operation.
    #[cfg(feature = "upstash")]
    pub fn upstash(url: &str, token: &str) -> Result<Self, ConfigError> {
        Self::builder().upstash(url, token).build()
    }

    /// A cache on the Redis Cluster reachable through `nodes`: seed URLs
    /// (`redis://host:port`, `rediss://…`, credentials allowed) or bare `host:port`
    /// pairs. One reachable node is enough; the client discovers the rest. Other
    /// settings: [`Cache::builder`] with
    /// [`cluster_nodes`](crate::CacheBuilder::cluster_nodes).
    ///
    /// Returns `Err` only when the list is empty or an entry is malformed. Nothing is
    /// waited for: a cluster that is down at start-up makes operations misses until it
    /// comes up. Batches are split by slot and scripts must keep their keys in one
    /// slot (see `docs/operations.md` on hash tags).
    pub fn redis_cluster<I, S>(nodes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::builder().cluster_nodes(nodes).build()
    }

    /// Which backend this cache uses.
    pub fn backend(&self) -> Backend {
        self.inner.store.backend()
    }

    /// A snapshot of the counters, summed over every label.
    pub fn stats(&self) -> CacheStats {
        let mut total = self.inner.labels.total();
        total.breaker_openings = self.inner.store.breaker_openings();
        total.pending_invalidations = self.inner.pending.len() as u64;
        total.invalidations_dropped = self.inner.pending.dropped();
        total
    }

    /// A snapshot of the counters of each label that has been used, sorted by label.
    ///
    /// Labels are the key templates of generated methods (`copilot:llm:policy:<tenant_id>`),
    /// rate limiter names, and [`DIRECT_LABEL`] for calls made on `Cache` directly.
    /// Never raw keys. Beyond 127 labels, the rest are counted under `"(other)"`.
    pub fn stats_by_label(&self) -> Vec<(&'static str, CacheStats)> {
        self.inner.labels.snapshot()
    }

    /// The counters of one label (all zero if it was never used).
    pub fn label_stats(&self, label: &str) -> CacheStats {
        self.stats_by_label()
            .into_iter()
            .find(|(l, _)| *l == label)
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    /// Checks the backend: a `PING` bounded by the operation deadline for Redis.
    ///
    /// The check does not go through the circuit breaker (it reports what Redis says
    /// right now) and does not change it; the breaker's state is in
    /// [`CacheHealth::circuit`]. A pass-through cache is healthy when it was asked for,
    /// and unhealthy, naming the problem, when a broken configuration caused it.
    pub async fn health(&self) -> CacheHealth {
        let backend = self.backend();
        let start = Instant::now();
        let result = self.inner.store.ping().await;
        let latency = start.elapsed();
        CacheHealth {
            healthy: result.is_ok(),
            backend,
            latency: result.is_ok().then_some(latency),
            error: result.err().map(|e| match self.inner.store.endpoint() {
                Some(endpoint) => format!("{endpoint}: {e}"),
                None => e.to_string(),
            }),
            circuit: self.inner.store.circuit(),
        }
    }

    /// Reads `key`; a miss, an error or an undecodable value gives `None`.
    ///
    /// With a [near cache](crate::CacheBuilder::near_cache), a near hit decodes the
    /// entry's bytes into the returned value (`T` need not be `Clone`);
    /// [`get_arc`](Self::get_arc) shares one decoded value instead.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get_labeled(key, DIRECT_LABEL).await
    }

    /// Reads `key` as a shared value; a miss, an error or an undecodable value gives
    /// `None`.
    ///
    /// The same read as [`get`](Self::get), but with a
    /// [near cache](crate::CacheBuilder::near_cache) the entry is decoded once and every
    /// near hit hands out the same `Arc` (no decode, no clone of `T`) for as long as
    /// the entry lives. The near cache's rules are unchanged: an entry is evicted by any
    /// write of its key and is served only while the invalidation feed vouches for it,
    /// so a value handed out earlier is a snapshot, like any value `get` returned.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use cacheward::Cache;
    ///
    /// let cache = Cache::memory();
    /// cache.set("copilot:llm:policy:acme", &vec![1, 2, 3], Duration::from_secs(300)).await;
    /// let hit: Option<Arc<Vec<u32>>> = cache.get_arc("copilot:llm:policy:acme").await;
    /// assert_eq!(hit.as_deref(), Some(&vec![1, 2, 3]));
    /// # }
    /// ```
    pub async fn get_arc<T>(&self, key: &str) -> Option<Arc<T>>
    where
        T: DeserializeOwned + Send + Sync + 'static,
    {
        let (found, _) = self
            .try_get_raw(key, DIRECT_LABEL, None, false)
            .await
            .ok()
            .flatten()?;
        match &found {
            Found::Near(entry) => entry.decoded(|b| self.decode_or_evict(key, b, DIRECT_LABEL)),
            Found::Bytes(b) => self.decode_or_evict(key, b, DIRECT_LABEL).map(Arc::new),
        }
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

    /// Writes several entries in one pipelined round trip (`SET .. PX` each), all with
    /// the same time to live.
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

    /// The value cached under `key`, or else what `load` computes, stored for `ttl`.
    ///
    /// The same read path as the generated decorators: concurrent misses of `key` make
    /// one call to `load`, in this process and across every instance sharing the Redis
    /// (the others wait for its value, bounded by the [lease](crate::CacheBuilder::lease));
    /// a value loaded while `key` was deleted is not stored; every cache failure is a
    /// miss, so the answer is always `load`'s or a value `load` gave for this key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use cacheward::Cache;
    ///
    /// let cache = Cache::memory();
    /// let answer: String = cache
    ///     .get_or_set("copilot:ai:response:7f3a", Duration::from_secs(3600), || async {
    ///         "computed once".to_owned()
    ///     })
    ///     .await;
    /// assert_eq!(answer, "computed once");
    /// # }
    /// ```
    pub async fn get_or_set<T, F, Fut>(&self, key: &str, ttl: Duration, load: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let plan = crate::__private::read_through::Plan::new(DIRECT_LABEL, ttl, key);
        let shape = crate::__private::shape::Plain;
        // `T` need not be `Clone`: a near hit decodes the entry's bytes.
        let near = crate::__private::near_path::Decode;
        let no_refresh = crate::__private::read_through::NoRefresh;
        crate::__private::read_through::load_through(self, plan, shape, near, load, no_refresh)
            .await
    }

    /// Like [`get_or_set`](Self::get_or_set) for a fallible `load`: an `Err` is returned
    /// to this caller only, neither stored nor shared with concurrent callers (they
    /// call `load` themselves).
    pub async fn try_get_or_set<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        load: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let plan = crate::__private::read_through::Plan::new(DIRECT_LABEL, ttl, key);
        let shape = crate::__private::shape::ResultValue;
        // `T` need not be `Clone`: a near hit decodes the entry's bytes.
        let near = crate::__private::near_path::Decode;
        let no_refresh = crate::__private::read_through::NoRefresh;
        crate::__private::read_through::load_through(self, plan, shape, near, load, no_refresh)
            .await
    }

    /// Deletes every key that starts with `prefix` and returns how many were removed.
    ///
    /// Walks the keyspace with `SCAN … MATCH <prefix>*` (on every primary of a cluster)
    /// and removes what it finds with `UNLINK`, a batch at a time; never `KEYS`, so
    /// Redis keeps serving other clients meanwhile. Glob characters in `prefix` match
    /// literally. Each step runs under the operation deadline and the breaker, like
    /// any other operation. Failures end the purge early: they are logged and counted,
    /// and the count says how far it got. The memory and pass-through backends answer 0.
    pub async fn purge_prefix(&self, prefix: &str) -> u64 {
        let (removed, result) = self.inner.store.purge_prefix(prefix).await;
        if let Err(err) = result {
            self.slot(DIRECT_LABEL).counters.failure(&err);
            tracing::warn!(
                backend = self.backend().as_str(),
                removed,
                error = %err,
                "cacheward: purge by prefix failed - stopped early"
            );
        }
        removed
    }

    // ---- crate-internal API used by `__private` (the macros) and the rate limiter ----

    #[inline]
    pub(crate) fn slot(&self, label: &'static str) -> &LabelSlot {
        self.inner.labels.slot(label)
    }

    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn record(&self, slot: &LabelSlot, op: Op, outcome: Outcome, timer: Timer) {
        #[cfg(feature = "metrics")]
        slot.metrics.operation(
            slot.label,
            self.backend().as_str(),
            op,
            outcome,
            timer.0.elapsed(),
        );
    }

    /// Counts, measures and logs (rate-limited) a failed operation.
    #[cold]
    pub(crate) fn failed(&self, slot: &LabelSlot, op: Op, err: &CacheError, timer: Timer) {
        slot.counters.failure(err);
        self.record(slot, op, failure_outcome(err), timer);
        #[cfg(feature = "metrics")]
        slot.metrics
            .failure(slot.label, self.backend().as_str(), op, err);
        if matches!(err, CacheError::CircuitOpen | CacheError::Misconfigured(_)) {
            // Logged once, when the breaker opened or the cache was built.
            return;
        }
        if let Some(suppressed) = self.inner.log.allow(op) {
            let label = slot.label;
            let backend = self.backend().as_str();
            let endpoint = self.inner.store.endpoint().unwrap_or("-");
            let operation = op.as_str();
            match op {
                Op::Get | Op::GetMany => tracing::warn!(
                    label, backend, endpoint, operation, error_type = err.kind_str(), error = %err, suppressed,
                    "cacheward: cache get failed - treating as cache miss"
                ),
                Op::Set | Op::SetMany => tracing::warn!(
                    label, backend, endpoint, operation, error_type = err.kind_str(), error = %err, suppressed,
                    "cacheward: cache set failed - continuing without cache"
                ),
                Op::Lease => tracing::warn!(
                    label, backend, endpoint, operation, error_type = err.kind_str(), error = %err, suppressed,
                    "cacheward: cache lease failed - loading without storing"
                ),
                _ => tracing::warn!(
                    label, backend, endpoint, operation, error_type = err.kind_str(), error = %err, suppressed,
                    "cacheward: cache delete failed - the entry lives until its TTL"
                ),
            }
        }
    }

    /// Reads and decodes `key`, counting under `label` (a template or cache name).
    pub(crate) async fn get_labeled<T: DeserializeOwned>(
        &self,
        key: &str,
        label: &'static str,
    ) -> Option<T> {
        self.try_get_labeled(key, label, None).await.ok().flatten()
    }

    /// Like [`get_labeled`](Self::get_labeled), but says when the read failed because
    /// Redis is unreachable (see [`try_get_raw`](Self::try_get_raw)).
    pub(crate) async fn try_get_labeled<T: DeserializeOwned>(
        &self,
        key: &str,
        label: &'static str,
        ttl: Option<Duration>,
    ) -> Result<Option<T>, ReadFailed> {
        match self.try_get_raw(key, label, ttl, false).await? {
            Some((found, _)) => Ok(self.decode_or_evict(key, found.bytes(), label)),
            None => Ok(None),
        }
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
        match codec::encode(value, self.inner.encoding) {
            Ok(bytes) => Some(bytes),
            Err(err) => self.encode_failed(label, &err),
        }
    }

    #[cold]
    fn encode_failed(&self, label: &'static str, err: &codec::EncodeError) -> Option<Vec<u8>> {
        let slot = self.slot(label);
        slot.counters.error();
        #[cfg(feature = "metrics")]
        slot.metrics
            .error(label, self.backend().as_str(), Op::Encode, "encode");
        if let Some(suppressed) = self.inner.log.allow(Op::Encode) {
            tracing::warn!(label, error = %err, suppressed, "cacheward: value could not be encoded - not cached");
        }
        None
    }

    /// Decodes bytes read under `key`; an undecodable value is counted, logged and
    /// deleted (in a background task), and is a miss.
    pub(crate) fn decode_or_evict<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: &[u8],
        label: &'static str,
    ) -> Option<T> {
        match codec::decode(bytes) {
            Ok(value) => Some(value),
            Err(err) => {
                self.decode_failed(key, label, &err);
                None
            }
        }
    }

    #[cold]
    fn decode_failed(&self, key: &str, label: &'static str, err: &codec::DecodeError) {
        let slot = self.slot(label);
        slot.counters.decode_failure();
        #[cfg(feature = "metrics")]
        slot.metrics
            .error(label, self.backend().as_str(), Op::Decode, "decode");
        let evict = err.is_garbage();
        if let Some(suppressed) = self.inner.log.allow(Op::Decode) {
            tracing::warn!(
                label, error = %err, deleted = evict, suppressed,
                "cacheward: undecodable cache entry - treated as a miss"
            );
        }
        if evict && let Ok(handle) = tokio::runtime::Handle::try_current() {
            let cache = self.clone();
            let key = key.to_owned();
            handle.spawn(async move { cache.del_labeled(&[&key], label).await });
        }
    }

    /// Reads raw bytes. Every failure is counted and logged as a miss; a read that
    /// failed because Redis is unreachable, too slow or skipped by the open breaker is
    /// also told apart (`Err(ReadFailed)`), so that a read-through does not send its
    /// fill into a Redis that just failed it.
    ///
    /// With `want_ttl`, the read also returns how long the entry has left to live (one
    /// round trip: `GET` and `PTTL` in a script); a near-cache hit says nothing of it.
    /// `ttl` caps how long a value read here may live in the near cache. A near hit, and
    /// a Redis hit that was inserted in the near cache, come back as that entry
    /// ([`Found::Near`]), through which typed readers decode once per entry.
    pub(crate) async fn try_get_raw(
        &self,
        key: &str,
        label: &'static str,
        ttl: Option<Duration>,
        want_ttl: bool,
    ) -> Result<Option<(Found, Option<Duration>)>, ReadFailed> {
        let slot = self.slot(label);
        if self.inner.pending.blocks(key) {
            // Its invalidation has not reached Redis yet: Redis may hold the old value.
            slot.counters.misses(1);
            return Err(ReadFailed);
        }
        let timer = Timer::start();
        let ticket = match &self.inner.near {
            Some(near) => {
                near.ensure_feed();
                if let Some(entry) = near.get(key) {
                    slot.counters.near_hit();
                    self.record(slot, Op::Get, Outcome::NearHit, timer);
                    // A near hit waits on nothing: count it against the task's budget,
                    // so that a task looping over near hits still lets the others (the
                    // feed's heartbeat among them) run, as a read from a socket would.
                    tokio::task::coop::consume_budget().await;
                    return Ok(Some((Found::Near(entry), None)));
                }
                near.ticket()
            }
            None => None,
        };
        let read = if want_ttl {
            // Boxed: the refresh-ahead read is larger than a whole plain hit, and would
            // otherwise set the size of every hit's future.
            Box::pin(self.inner.store.get_with_ttl(key)).await
        } else {
            self.inner
                .store
                .get(key)
                .await
                .map(|v| v.map(|v| (v, None)))
        };
        match read {
            Ok(Some((v, remaining))) => {
                slot.counters.hits(1);
                self.record(slot, Op::Get, Outcome::Hit, timer);
                let found = match (&self.inner.near, ticket) {
                    (Some(near), Some(ticket)) => {
                        match near.insert(key, v, ticket, remaining.or(ttl)) {
                            Ok(entry) => Found::Near(entry),
                            Err(v) => Found::Bytes(v),
                        }
                    }
                    _ => Found::Bytes(v),
                };
                Ok(Some((found, remaining)))
            }
            Ok(None) => {
                slot.counters.misses(1);
                self.record(slot, Op::Get, Outcome::Miss, timer);
                Ok(None)
            }
            Err(err) => {
                slot.counters.misses(1);
                self.failed(slot, Op::Get, &err, timer);
                if err.is_outage() || matches!(err, CacheError::CircuitOpen) {
                    Err(ReadFailed)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Reads several keys in one round trip; every failure is a miss for each key.
    pub(crate) async fn get_many_raw(
        &self,
        keys: &[&str],
        label: &'static str,
    ) -> Vec<Option<Vec<u8>>> {
        let slot = self.slot(label);
        let timer = Timer::start();
        match self.inner.store.get_many(keys).await {
            Ok(values) if values.len() == keys.len() => {
                let hits = values.iter().filter(|v| v.is_some()).count() as u64;
                slot.counters.hits(hits);
                slot.counters.misses(keys.len() as u64 - hits);
                let outcome = if hits > 0 {
                    Outcome::Hit
                } else {
                    Outcome::Miss
                };
                self.record(slot, Op::GetMany, outcome, timer);
                let mut values = values;
                for (value, key) in values.iter_mut().zip(keys) {
                    if self.inner.pending.blocks(key) {
                        *value = None;
                    }
                }
                values
            }
            Ok(values) => {
                let err = CacheError::Redis(format!(
                    "MGET answered {} values for {} keys",
                    values.len(),
                    keys.len()
                ));
                slot.counters.misses(keys.len() as u64);
                self.failed(slot, Op::GetMany, &err, timer);
                vec![None; keys.len()]
            }
            Err(err) => {
                slot.counters.misses(keys.len() as u64);
                self.failed(slot, Op::GetMany, &err, timer);
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
        let slot = self.slot(label);
        let timer = Timer::start();
        let ttl = ttl.max(Duration::from_millis(1));
        self.evict_near(&[key]);
        match self.inner.store.set(key, bytes, ttl).await {
            Ok(()) => {
                slot.counters.sets(1);
                self.record(slot, Op::Set, Outcome::Ok, timer);
            }
            Err(err) => self.failed(slot, Op::Set, &err, timer),
        }
    }

    /// Writes several raw entries in one pipelined round trip.
    pub(crate) async fn set_many_raw(
        &self,
        entries: &[(&str, Vec<u8>)],
        ttl: Duration,
        label: &'static str,
    ) {
        if entries.is_empty() {
            return;
        }
        let slot = self.slot(label);
        let timer = Timer::start();
        let ttl = ttl.max(Duration::from_millis(1));
        if self.inner.near.is_some() {
            let keys: Vec<&str> = entries.iter().map(|(k, _)| *k).collect();
            self.evict_near(&keys);
        }
        match self.inner.store.set_many(entries, ttl).await {
            Ok(()) => {
                slot.counters.sets(entries.len() as u64);
                self.record(slot, Op::SetMany, Outcome::Ok, timer);
            }
            Err(err) => self.failed(slot, Op::SetMany, &err, timer),
        }
    }

    /// Deletes keys, and their leases (so that a load racing this delete does not
    /// store what it read; see [`crate::lease`]). Failures are logged and counted,
    /// never returned; a delete that failed because Redis is unreachable is kept and
    /// replayed until Redis confirms it (see [`crate::pending`]).
    pub(crate) async fn del_labeled(&self, keys: &[&str], label: &'static str) {
        if keys.is_empty() {
            return;
        }
        let slot = self.slot(label);
        let timer = Timer::start();
        match self.delete_with_leases(keys).await {
            Ok(()) => {
                slot.counters.deletes(keys.len() as u64);
                self.record(slot, Op::Del, Outcome::Ok, timer);
            }
            Err(err) if err.is_outage() || matches!(err, CacheError::CircuitOpen) => {
                slot.counters.failure(&err);
                self.record(slot, Op::Del, failure_outcome(&err), timer);
                self.keep_for_replay(keys, label);
            }
            Err(err) => self.failed(slot, Op::Del, &err, timer),
        }
    }

    /// `DEL` of `keys`, their lease keys and their stale copies, in one command per slot:
    /// an invalidated entry is never served stale.
    pub(crate) async fn delete_with_leases(&self, keys: &[&str]) -> Result<(), CacheError> {
        self.evict_near(keys);
        let side: Vec<String> = keys
            .iter()
            .flat_map(|k| [crate::lease::lease_key(k), crate::lease::stale_key(k)])
            .collect();
        let all: Vec<&str> = keys
            .iter()
            .copied()
            .chain(side.iter().map(String::as_str))
            .collect();
        self.inner.store.del(&all).await
    }

    /// Runs a Lua script on the backend (the rate limiter's entry point), under the
    /// deadline and the circuit breaker. Not counted in [`Cache::stats`] (the caller
    /// counts). Backends that are not Redis answer `Err(CacheError::Unsupported)`.
    pub(crate) async fn eval_script(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<redis::Value, CacheError> {
        let args: Vec<ScriptArg<'_>> = args.iter().map(|&n| ScriptArg::Int(n)).collect();
        self.inner.store.eval(script, keys, &args).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn operations_are_counted_under_their_label() {
        let cache = Cache::memory();
        let ttl = Duration::from_secs(5);
        cache
            .set_labeled("policy:1", &1_u32, ttl, "policy:<id>")
            .await;
        assert_eq!(
            cache.get_labeled::<u32>("policy:1", "policy:<id>").await,
            Some(1)
        );
        assert_eq!(
            cache.get_labeled::<u32>("policy:2", "policy:<id>").await,
            None
        );
        cache
            .del_labeled(&["policy:1", "policy:2"], "policy:<id>")
            .await;
        assert_eq!(cache.get::<u32>("other").await, None);

        let policy = cache.label_stats("policy:<id>");
        assert_eq!(
            (policy.hits, policy.misses, policy.sets, policy.deletes),
            (1, 1, 1, 2)
        );
        let direct = cache.label_stats(DIRECT_LABEL);
        assert_eq!((direct.hits, direct.misses), (0, 1));
        let labels: Vec<&str> = cache.stats_by_label().iter().map(|(l, _)| *l).collect();
        assert_eq!(labels, vec![DIRECT_LABEL, "policy:<id>"]);
        assert_eq!(cache.stats().misses, 2);
        assert_eq!(cache.label_stats("never-used"), CacheStats::default());
    }

    #[tokio::test]
    async fn a_value_that_cannot_be_encoded_is_an_error_not_a_panic() {
        use std::collections::HashMap;
        let cache = Cache::memory();
        // JSON object keys must be strings: a map keyed by tuples cannot be encoded.
        let bad: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
        cache.set("k", &bad, Duration::from_secs(5)).await;
        assert_eq!(cache.get::<u8>("k").await, None);
        let stats = cache.stats();
        assert_eq!((stats.errors, stats.sets), (1, 0));
    }
}

/// Every hit moves its future several times (into the decorator's box, among others),
/// so the hit path keeps rare states (the miss, the refresh-ahead read, a tagged read)
/// behind boxes of their own. These bounds catch a change that inlines one again: the
/// miss path alone made a plain hit's future 1.9 KB larger.
#[cfg(test)]
mod hit_future_size {
    use super::*;
    use crate::__private::near_path::Cloned;
    use crate::__private::read_through::{NoRefresh, Plan, load_through};
    use crate::__private::shape::ResultOption;

    #[test]
    fn a_hit_future_stays_under_a_kilobyte() {
        let cache = Cache::redis("redis://127.0.0.1:1").unwrap();
        let get = size_of_val(&cache.get::<String>("k"));
        let plan = Plan::new("l", Duration::from_secs(1), "k");
        let through = size_of_val(&load_through(
            &cache,
            plan,
            ResultOption,
            Cloned,
            || async { Ok::<Option<String>, ()>(None) },
            NoRefresh,
        ));
        eprintln!("Cache::get: {get} bytes, a read-through: {through} bytes");
        // Measured on rustc 1.95 (debug and release alike): 832 and 904 bytes (1,960
        // and 2,744 before; the read-through now owns its plan and key).
        assert!(get <= 1000, "Cache::get's future is {get} bytes");
        assert!(through <= 1000, "a read-through future is {through} bytes");
    }
}
