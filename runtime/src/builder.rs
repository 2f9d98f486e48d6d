//! [`CacheBuilder`]: every setting of a [`Cache`] in one place.

use std::time::Duration;

use crate::backend::cluster::ClusterStore;
use crate::backend::guard::DEFAULT_DEADLINE;
use crate::backend::memory::{DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MemoryStore};
use crate::backend::redis::RedisStore;
use crate::backend::settings::{ConnectionSettings, parse_node_list, seed_url, url_password};
#[cfg(feature = "upstash")]
use crate::backend::upstash::UpstashStore;
use crate::backend::{GuardConfig, Guarded, Remote, RemoteStore as _, Store};
use crate::breaker::{DEFAULT_COOL_DOWN, DEFAULT_THRESHOLD};
use crate::cache::{Cache, Tuning};
use crate::codec::{Codec, Encoding};
use crate::error::ConfigError;
use crate::near::Near;
use crate::redact::redact_url;
use std::sync::Arc;

/// Builds a [`Cache`] with settings other than the defaults.
///
/// ```
/// use std::time::Duration;
/// use cacheward::Cache;
///
/// let cache = Cache::builder()
///     .redis_url("redis://cache.internal:6379")
///     .password("s3cret")                                  // used when the URL has none
///     .deadline(Duration::from_millis(10))                 // per operation, default 20 ms
///     .breaker(5, Duration::from_secs(1))                  // open after 5 failures, probe after 1 s
///     .build()?;                                           // Err only for a malformed URL
/// # Ok::<(), cacheward::ConfigError>(())
/// ```
///
/// The backend is the last one chosen: [`redis_url`](Self::redis_url),
/// [`cluster_nodes`](Self::cluster_nodes), `upstash` (with the `upstash` feature),
/// [`memory`](Self::memory) or [`pass_through`](Self::pass_through) (the default).
/// Settings that do not apply to the chosen backend are ignored.
#[derive(Clone)]
#[must_use]
pub struct CacheBuilder {
    pub(crate) kind: Kind,
    pub(crate) connection: ConnectionSettings,
    pub(crate) guard: GuardConfig,
    pub(crate) memory_max_entries: usize,
    pub(crate) memory_max_bytes: usize,
    pub(crate) encoding: Encoding,
    pub(crate) lease: Duration,
    /// Entries of the near cache; `None`: no near cache.
    pub(crate) near_entries: Option<usize>,
    pub(crate) near_max_age: Duration,
}

/// The backend a builder builds.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    PassThrough,
    Memory,
    Redis(String),
    /// Seed URLs of a Redis Cluster.
    RedisCluster(Vec<String>),
    /// The REST URL of an Upstash database (the token is the connection's password).
    #[cfg(feature = "upstash")]
    Upstash(String),
}

impl std::fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Redis(url) => format!("Redis({})", redact_url(url)),
            #[cfg(feature = "upstash")]
            Kind::Upstash(url) => format!("Upstash({})", redact_url(url)),
            Kind::RedisCluster(seeds) => format!(
                "RedisCluster({})",
                seeds
                    .iter()
                    .map(|s| redact_url(s))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            other => format!("{other:?}"),
        };
        let mut d = f.debug_struct("CacheBuilder");
        d.field("backend", &kind)
            .field("connection", &self.connection)
            .field("deadline", &self.guard.deadline)
            .field("breaker_threshold", &self.guard.threshold)
            .field("breaker_cool_down", &self.guard.cool_down)
            .field("memory_max_entries", &self.memory_max_entries)
            .field("memory_max_bytes", &self.memory_max_bytes)
            .field("encoding", &self.encoding)
            .field("lease", &self.lease)
            .field("near_entries", &self.near_entries)
            .field("near_max_age", &self.near_max_age);
        d.finish()
    }
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            kind: Kind::PassThrough,
            connection: ConnectionSettings::default(),
            guard: GuardConfig::default(),
            memory_max_entries: DEFAULT_MAX_ENTRIES,
            memory_max_bytes: DEFAULT_MAX_BYTES,
            lease: crate::lease::DEFAULT_LEASE,
            near_entries: None,
            near_max_age: crate::near::DEFAULT_MAX_AGE,
            encoding: Encoding::default_for_build(),
        }
    }
}

impl Cache {
    /// A builder for a cache with non-default settings.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }
}

impl CacheBuilder {
    /// Caches on the Redis server at `url`: `redis://[user[:password]@]host[:port][/db]`,
    /// or `rediss://` for TLS (the default `tls` feature, rustls with the webpki roots).
    ///
    /// Several URLs separated by commas (`redis://a:6379,redis://b:6379`) are the seed
    /// nodes of a Redis Cluster, as with [`cluster_nodes`](Self::cluster_nodes).
    ///
    /// With the `upstash` feature, an `https://` URL is an Upstash REST URL, as with
    /// `upstash`, whose token is the [`password`](Self::password).
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.kind = if url.contains(',') {
            Kind::RedisCluster(parse_node_list(&url, false))
        } else {
            #[cfg(feature = "upstash")]
            if is_rest_url(&url) {
                self.kind = Kind::Upstash(url);
                return self;
            }
            Kind::Redis(url)
        };
        self
    }

    /// Caches on an Upstash database through its REST API: `url` is the REST URL
    /// (`https://<name>.upstash.io`; `http://` is accepted for a local REST server)
    /// and `token` its REST token. Commands are HTTPS requests over one pooled
    /// keep-alive client; the token never appears in logs, `Debug` output or health
    /// reports. Values are stored as plain JSON (compression needs binary values, which
    /// the REST API cannot carry). See `docs/operations.md` for when to choose it.
    #[cfg(feature = "upstash")]
    pub fn upstash(mut self, url: impl Into<String>, token: impl Into<String>) -> Self {
        self.kind = Kind::Upstash(url.into());
        self.connection.password = Some(token.into());
        self
    }

    /// Caches on the Redis Cluster reachable through `nodes`: seed URLs
    /// (`redis://host:port`, `rediss://…`) or bare `host:port` pairs. One reachable
    /// node is enough; the others are discovered. See `docs/operations.md`.
    pub fn cluster_nodes<I, S>(mut self, nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.kind = Kind::RedisCluster(
            nodes
                .into_iter()
                .map(|n| seed_url(n.as_ref(), false))
                .collect(),
        );
        self
    }

    /// The Redis password, used when the URL carries none (like `REDIS_PASSWORD`); for
    /// an Upstash REST URL, the token. It never appears in logs, `Debug` output or
    /// health reports.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.connection.password = Some(password.into());
        self
    }

    /// The Redis ACL user name, used when the URL carries none.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.connection.username = Some(username.into());
        self
    }

    /// The most time one Redis operation may take, connection wait included
    /// (default 20 ms, at least 1 ms). Past it the operation is a miss or a no-op.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.guard.deadline = deadline.max(Duration::from_millis(1));
        self
    }

    /// The circuit breaker: after `threshold` consecutive failed operations (timeouts,
    /// lost connections, refused credentials) Redis is skipped for `cool_down`, then one
    /// probe decides whether to resume. Defaults: 5 and 1 s. Operations that were in
    /// flight together and fail together (one stall) never open it on their own: the
    /// failures must include an operation admitted after the first one failed.
    pub fn breaker(mut self, threshold: u32, cool_down: Duration) -> Self {
        self.guard.threshold = threshold.max(1);
        self.guard.cool_down = cool_down;
        self
    }

    /// The most time one connection attempt (TCP, TLS, handshake) may take; it runs in
    /// the background, so it may exceed the deadline (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connection.connect_timeout = timeout;
        self
    }

    /// Trusts this CA certificate (PEM) for `rediss://` connections (and an Upstash
    /// `https://` URL) instead of the public roots: for a server whose certificate
    /// comes from a private CA.
    #[cfg(any(feature = "tls", feature = "upstash"))]
    pub fn tls_root_ca(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.connection.root_ca = Some(pem.into());
        self
    }

    /// Caches in this process's memory ([`Cache::memory`]): single-process only.
    pub fn memory(mut self) -> Self {
        self.kind = Kind::Memory;
        self
    }

    /// The most entries the memory backend holds (default 10,000).
    pub fn memory_capacity(mut self, entries: usize) -> Self {
        self.memory_max_entries = entries.max(1);
        self
    }

    /// The most bytes (keys + values) the memory backend holds (default 64 MiB).
    pub fn memory_max_bytes(mut self, bytes: usize) -> Self {
        self.memory_max_bytes = bytes.max(1);
        self
    }

    /// Caches nothing ([`Cache::pass_through`]).
    pub fn pass_through(mut self) -> Self {
        self.kind = Kind::PassThrough;
        self
    }

    /// Compresses values whose JSON is longer than `bytes` with LZ4 (default 1024).
    /// Entries written either way stay readable whatever this is set to.
    #[cfg(feature = "compression")]
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.encoding.compress_above = Some(bytes);
        self
    }

    /// Writes every value uncompressed. Compressed entries are still read.
    #[cfg(feature = "compression")]
    pub fn no_compression(mut self) -> Self {
        self.encoding.compress_above = None;
        self
    }

    /// How values are written: [`Codec::Json`] (the default) or, with the `msgpack`
    /// feature, `Codec::MessagePack`. Reads understand every encoding whatever this
    /// says, so instances with different codecs share keys safely (a rolling deploy
    /// that turns MessagePack on, or back off, loses no entry). On Upstash values are
    /// always JSON (its REST API carries strings).
    ///
    /// ```
    /// # #[cfg(feature = "msgpack")] {
    /// use cacheward::{Cache, Codec};
    ///
    /// let cache = Cache::builder()
    ///     .redis_url("redis://127.0.0.1:6379")
    ///     .codec(Codec::MessagePack)
    ///     .build()
    ///     .unwrap();
    /// # let _ = cache; }
    /// ```
    pub fn codec(mut self, codec: Codec) -> Self {
        self.encoding.codec = codec;
        self
    }

    /// How long the caller that loads a missing key may take before another caller
    /// (on any instance) may load it instead (default 5 s, at least 1 ms). Concurrent
    /// misses of one key wait up to this long for the loader's value; a loader that
    /// takes longer does not store what it loaded. See `docs/consistency.md`.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// An in-process near cache of up to `entries` values in front of Redis: hits
    /// without a round trip, kept coherent with Redis by an invalidation feed
    /// (`CLIENT TRACKING`), so a write by any client evicts the entry on every instance
    /// within milliseconds, and nothing is served while the feed is down. Each entry
    /// lives at most [`near_cache_max_age`](Self::near_cache_max_age) (default 10 s)
    /// and never longer than its Redis TTL. Single Redis only: on Redis Cluster and on
    /// Upstash's REST API (no push channel) it is not started (one warning). See
    /// `docs/near-cache.md`.
    pub fn near_cache(mut self, entries: usize) -> Self {
        self.near_entries = (entries > 0).then_some(entries);
        self
    }

    /// The longest a near-cache entry is served (default 10 s, at least 1 ms).
    pub fn near_cache_max_age(mut self, max_age: Duration) -> Self {
        self.near_max_age = max_age.max(Duration::from_millis(1));
        self
    }

    /// Builds the cache. Never waits for Redis; `Err` only for a malformed URL.
    pub fn build(self) -> Result<Cache, ConfigError> {
        let remote = match &self.kind {
            Kind::PassThrough => {
                return Ok(Cache::from_store(Store::PassThrough, Encoding::default()));
            }
            Kind::Memory => {
                let store = MemoryStore::new(self.memory_max_entries, self.memory_max_bytes);
                return Ok(Cache::from_parts(Store::Memory(store), self.tuning(None)));
            }
            Kind::Redis(url) => Remote::Redis(RedisStore::new(url, &self.connection)?),
            Kind::RedisCluster(seeds) => {
                let store = ClusterStore::new(seeds, &self.connection)?;
                store.connect_in_background();
                Remote::Cluster(store)
            }
            #[cfg(feature = "upstash")]
            Kind::Upstash(url) => {
                let token = self.connection.password.as_deref().unwrap_or_default();
                Remote::Upstash(UpstashStore::new(url, token, &self.connection)?)
            }
        };
        let near = match (&remote, self.near_entries) {
            (Remote::Redis(store), Some(entries)) => Some(Arc::new(Near::new(
                entries,
                self.near_max_age,
                store.resp3_client(),
            ))),
            #[cfg(feature = "upstash")]
            (Remote::Upstash(_), Some(_)) => {
                tracing::warn!(
                    backend = remote.backend().as_str(),
                    "cacheward: the near cache needs an invalidation feed, which Upstash's REST API does not have (no push channel) - not started, every read goes to Upstash"
                );
                None
            }
            (_, Some(_)) => {
                tracing::warn!(
                    backend = remote.backend().as_str(),
                    "cacheward: the near cache needs a single Redis server (an invalidation feed per cluster node is not supported) - not started, every read goes to Redis"
                );
                None
            }
            (_, None) => None,
        };
        let tuning = self.tuning(near);
        // JSON strings cannot carry the binary frames of compressed or MessagePack
        // values.
        #[cfg(feature = "upstash")]
        let tuning = match remote {
            Remote::Upstash(_) => {
                if tuning.encoding != Encoding::default() {
                    tracing::info!(
                        codec = tuning.encoding.codec.as_str(),
                        "cacheward: Upstash's REST API carries strings - values are written as uncompressed JSON"
                    );
                }
                Tuning {
                    encoding: Encoding::default(),
                    ..tuning
                }
            }
            _ => tuning,
        };
        let guard = Guarded::new(remote, &self.guard_config());
        Ok(Cache::from_parts(Store::Remote(guard), tuning))
    }

    fn tuning(&self, near: Option<Arc<Near>>) -> Tuning {
        Tuning {
            encoding: self.encoding,
            lease: self.lease,
            near,
        }
    }

    /// The deadline and breaker settings, with every password the builder knows of (its
    /// own and those written in URLs) to scrub from error messages.
    fn guard_config(&self) -> GuardConfig {
        let mut g = self.guard.clone();
        g.secrets.extend(self.connection.password.iter().cloned());
        let urls: &[String] = match &self.kind {
            Kind::Redis(url) => std::slice::from_ref(url),
            #[cfg(feature = "upstash")]
            Kind::Upstash(url) => std::slice::from_ref(url),
            Kind::RedisCluster(seeds) => seeds,
            Kind::PassThrough | Kind::Memory => &[],
        };
        g.secrets
            .extend(urls.iter().filter_map(|u| url_password(u)));
        g.secrets.retain(|s| !s.is_empty());
        g.secrets.sort();
        g.secrets.dedup();
        g
    }
}

/// Whether `url` is an Upstash REST URL rather than a Redis one: `https://`, as in
/// the seeds' resolution order.
pub(crate) fn is_rest_url(url: &str) -> bool {
    url.trim()
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

// Keep the defaults visible in one place for the docs.
const _: () = {
    assert!(DEFAULT_THRESHOLD == 5);
    assert!(DEFAULT_COOL_DOWN.as_secs() == 1);
    assert!(DEFAULT_DEADLINE.as_millis() == 20);
};
