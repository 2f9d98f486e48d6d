//! The storage backends behind a [`Cache`](crate::Cache).
//!
//! [`Store`] is a closed enum (a `match` keeps the hit path free of dynamic dispatch)
//! with one variant per kind of storage: nothing, the in-process map, and Redis (over
//! TCP, as a cluster, or through Upstash's REST API). Every
//! store that talks to Redis sits behind [`Guarded`], so the deadline, the circuit
//! breaker and secret scrubbing live in one place, and is one variant of [`Remote`]:
//! a new Redis-speaking store is added there, not here.

use std::time::Duration;

use crate::breaker::CircuitState;
use crate::error::CacheError;
use memory::LeaseReply;

pub(crate) mod cluster;
pub(crate) mod guard;
pub(crate) mod memory;
pub(crate) mod redis;
pub(crate) mod remote;
pub(crate) mod router;
pub(crate) mod settings;
pub(crate) mod slot;
#[cfg(feature = "upstash")]
pub(crate) mod upstash;

pub(crate) use guard::{GuardConfig, Guarded};
pub(crate) use remote::{Remote, RemoteStore, ScriptArg};

/// A time to live as the milliseconds of `SET … PX`: at least 1 (PX 0 is an error).
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Which kind of storage a [`Cache`](crate::Cache) is using.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// A single Redis server (or a primary behind a proxy).
    Redis,
    /// A Redis Cluster.
    RedisCluster,
    /// Upstash's REST API: Redis commands over HTTPS (the `upstash` feature).
    Upstash,
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
            Backend::Upstash => "upstash",
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

/// A fill under a lease (see [`crate::lease`]).
pub(crate) struct Fill<'a> {
    pub(crate) key: &'a str,
    pub(crate) lease_key: &'a str,
    pub(crate) stale_key: &'a str,
    pub(crate) token: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) ttl: Duration,
    /// How long the stale copy outlives `ttl`, for `stale_if_error`.
    pub(crate) stale: Option<Duration>,
}

/// `GET` and `PTTL` of one key in one round trip (`{}` when the key is missing).
fn get_with_ttl_script() -> &'static ::redis::Script {
    static SCRIPT: std::sync::OnceLock<::redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        ::redis::Script::new(
            "local v = redis.call('GET', KEYS[1])\n\
             if not v then return {} end\n\
             return {v, redis.call('PTTL', KEYS[1])}",
        )
    })
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
    Remote(Guarded<Remote>),
}

impl Store {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Backend::PassThrough,
            Store::Memory(_) => Backend::Memory,
            Store::Remote(g) => g.store.backend(),
        }
    }

    /// The guarded Redis store, when this is one.
    pub(crate) fn remote(&self) -> Option<&Guarded<Remote>> {
        match self {
            Store::Remote(g) => Some(g),
            _ => None,
        }
    }

    /// Where a remote store connects (password redacted).
    pub(crate) fn endpoint(&self) -> Option<&str> {
        self.remote().map(Guarded::endpoint)
    }

    /// The breaker's state, for stores that have one.
    pub(crate) fn circuit(&self) -> Option<CircuitState> {
        self.remote().map(Guarded::circuit)
    }

    pub(crate) fn breaker_openings(&self) -> u64 {
        self.remote().map_or(0, Guarded::breaker_openings)
    }

    #[inline]
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(None),
            Store::Memory(m) => Ok(m.get(key)),
            Store::Remote(g) => g.get(key).await,
        }
    }

    pub(crate) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(vec![None; keys.len()]),
            Store::Memory(m) => Ok(keys.iter().map(|k| m.get(k)).collect()),
            Store::Remote(g) => g.get_many(keys).await,
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
            Store::Remote(g) => g.set(key, value, ttl).await,
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
            Store::Remote(g) => g.set_many(entries, ttl).await,
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
            Store::Remote(g) => g.del(keys).await,
        }
    }

    /// The health check: `Err` names why the backend cannot serve.
    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        match self {
            Store::PassThrough | Store::Memory(_) => Ok(()),
            Store::Misconfigured(why) => Err(CacheError::Misconfigured(why.clone())),
            Store::Remote(g) => g.ping().await,
        }
    }

    /// Runs a Lua script (Redis only).
    pub(crate) async fn eval(
        &self,
        script: &::redis::Script,
        keys: &[&str],
        args: &[ScriptArg<'_>],
    ) -> Result<::redis::Value, CacheError> {
        match self {
            Store::PassThrough | Store::Memory(_) => Err(CacheError::Unsupported),
            Store::Misconfigured(why) => Err(CacheError::Misconfigured(why.clone())),
            Store::Remote(g) => g.eval(script, keys, args).await,
        }
    }

    /// Takes the lease `lease_key` on `key` for `token` (see [`crate::lease`]); with
    /// `refresh_due`, even though `key` holds a value, while it has at most that long
    /// left to live.
    pub(crate) async fn acquire_lease(
        &self,
        key: &str,
        lease_key: &str,
        token: &[u8],
        lease: Duration,
        refresh_due: Option<Duration>,
    ) -> Result<LeaseReply, CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Err(CacheError::Unsupported),
            Store::Memory(m) => Ok(m.acquire_lease(key, lease_key, token, lease, refresh_due)),
            Store::Remote(g) => {
                let ms = i64::try_from(ttl_millis(lease)).unwrap_or(i64::MAX);
                let reply = g
                    .eval(
                        crate::lease::acquire_script(),
                        &[key, lease_key],
                        &[
                            ScriptArg::Bytes(token),
                            ScriptArg::Int(ms),
                            ScriptArg::Int(
                                refresh_due.map_or(0, |d| {
                                    i64::try_from(ttl_millis(d)).unwrap_or(i64::MAX)
                                }),
                            ),
                        ],
                    )
                    .await?;
                crate::lease::parse_acquire(reply).ok_or_else(|| {
                    CacheError::Redis("unexpected reply to the lease script".to_owned())
                })
            }
        }
    }

    /// Stores `value` under `key` for `ttl` (and under `stale_key` for `ttl + stale`,
    /// when given) if the lease is still `token`'s; `Ok(false)` when it was lost.
    pub(crate) async fn fill_leased(&self, fill: &Fill<'_>) -> Result<bool, CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(false),
            Store::Memory(m) => Ok(m.fill_leased(fill)),
            Store::Remote(g) => {
                let ms = |d: Duration| i64::try_from(ttl_millis(d)).unwrap_or(i64::MAX);
                let stale_ms = fill.stale.map_or(0, |s| ms(fill.ttl + s));
                let reply = g
                    .eval(
                        crate::lease::fill_script(),
                        &[fill.key, fill.lease_key, fill.stale_key],
                        &[
                            ScriptArg::Bytes(fill.token),
                            ScriptArg::Bytes(fill.value),
                            ScriptArg::Int(ms(fill.ttl)),
                            ScriptArg::Int(stale_ms),
                        ],
                    )
                    .await?;
                Ok(reply == ::redis::Value::Int(1))
            }
        }
    }

    /// The value of `key` and how long it has left to live (`None`: no expiry).
    pub(crate) async fn get_with_ttl(
        &self,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Option<Duration>)>, CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(None),
            Store::Memory(m) => Ok(m.get_with_ttl(key)),
            Store::Remote(g) => {
                let reply = g.eval(get_with_ttl_script(), &[key], &[]).await?;
                match reply {
                    ::redis::Value::Array(items) => match items.as_slice() {
                        [] => Ok(None),
                        [::redis::Value::BulkString(v), ::redis::Value::Int(ms)] => Ok(Some((
                            v.clone(),
                            u64::try_from(*ms).ok().map(Duration::from_millis),
                        ))),
                        _ => Err(CacheError::Redis("unexpected reply to GET+PTTL".into())),
                    },
                    _ => Err(CacheError::Redis("unexpected reply to GET+PTTL".into())),
                }
            }
        }
    }

    /// Deletes `key` if it still holds exactly `value` (an entry found stale).
    pub(crate) async fn del_if_equal(&self, key: &str, value: &[u8]) -> Result<(), CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(()),
            Store::Memory(m) => {
                m.del_if_equal(key, value);
                Ok(())
            }
            Store::Remote(g) => g
                .eval(
                    crate::tags::del_if_equal_script(),
                    &[key],
                    &[ScriptArg::Bytes(value)],
                )
                .await
                .map(drop),
        }
    }

    /// Ends the lease if it is still `token`'s.
    pub(crate) async fn release_lease(
        &self,
        lease_key: &str,
        token: &[u8],
    ) -> Result<(), CacheError> {
        match self {
            Store::PassThrough | Store::Misconfigured(_) => Ok(()),
            Store::Memory(m) => {
                m.release_lease(lease_key, token);
                Ok(())
            }
            Store::Remote(g) => g
                .eval(
                    crate::lease::release_script(),
                    &[lease_key],
                    &[ScriptArg::Bytes(token)],
                )
                .await
                .map(drop),
        }
    }

    /// Deletes every key starting with `prefix`: `(keys removed, why it stopped early)`.
    pub(crate) async fn purge_prefix(&self, prefix: &str) -> (u64, Result<(), CacheError>) {
        match self {
            Store::Remote(g) => g.purge_prefix(prefix).await,
            _ => (0, Ok(())),
        }
    }
}
