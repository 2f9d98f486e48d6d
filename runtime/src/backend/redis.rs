//! The single-server Redis backend: raw operations on one multiplexed connection.
//!
//! The connection is redis-rs's [`ConnectionManager`]: one multiplexed connection
//! shared by every clone of the cache, which reconnects by itself after an I/O error.
//! It is created lazily, on the first operation (it needs a tokio runtime, which a
//! constructor called from `main` may not have yet), and its first connection attempt
//! is driven by a background task, so construction never waits for Redis and a server
//! that is down at start-up only makes operations misses.
//!
//! Deadlines and the circuit breaker are not here: [`Guarded`](super::guard::Guarded)
//! applies them to this store and to the cluster store alike. redis-rs's own response
//! timeout is switched off (the guard's deadline covers the whole operation, including
//! the wait for a connection), so each operation pays for one timer, not two.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::FromRedisValue;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::Backend;
use super::remote::{RemoteStore, ScriptArg, invocation};
use super::settings::{ConnectionSettings, runtime_for_connections};
use crate::error::{CacheError, ConfigError};

pub(crate) struct RedisStore {
    client: redis::Client,
    /// The same server over RESP3, for the near cache's invalidation feed.
    resp3: Option<redis::Client>,
    config: ConnectionManagerConfig,
    conn: ArcSwapOption<ConnectionManager>,
    /// Serialises creating a connection manager (cold path only).
    init: Mutex<()>,
    /// The URL with its password replaced by `***`.
    display_url: String,
    password: Option<String>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.display_url)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("connection_started", &self.conn.load().is_some())
            .finish()
    }
}

impl RedisStore {
    pub(crate) fn new(url: &str, settings: &ConnectionSettings) -> Result<Self, ConfigError> {
        let endpoint = settings.resolve(url)?;
        let invalid = |e: redis::RedisError| {
            ConfigError::InvalidUrl(format!(
                "{} (in {})",
                crate::redact::redact_urls(&e.to_string()),
                endpoint.display
            ))
        };
        #[cfg(feature = "tls")]
        let client = match settings.tls_certificates() {
            Some(certs) => redis::Client::build_with_tls(endpoint.info.clone(), certs),
            None => redis::Client::open(endpoint.info.clone()),
        };
        #[cfg(not(feature = "tls"))]
        let client = redis::Client::open(endpoint.info.clone());
        let client = client.map_err(invalid)?;
        let resp3_info = {
            let settings = endpoint
                .info
                .redis_settings()
                .clone()
                .set_protocol(redis::ProtocolVersion::RESP3);
            endpoint.info.clone().set_redis_settings(settings)
        };
        #[cfg(feature = "tls")]
        let resp3 = match settings.tls_certificates() {
            Some(certs) => redis::Client::build_with_tls(resp3_info, certs),
            None => redis::Client::open(resp3_info),
        };
        #[cfg(not(feature = "tls"))]
        let resp3 = redis::Client::open(resp3_info);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            // The guard's deadline bounds every operation; a second timer per
            // operation would only cost time.
            .set_response_timeout(None)
            // One attempt per reconnection: while Redis is down the breaker paces the
            // attempts (one per probe), and each failure reports its real reason.
            .set_number_of_retries(0);
        Ok(RedisStore {
            client,
            resp3: resp3.ok(),
            config,
            conn: ArcSwapOption::empty(),
            init: Mutex::new(()),
            display_url: endpoint.display,
            password: endpoint.password,
        })
    }

    /// A client for the same server over RESP3 (push messages), for the near cache.
    pub(crate) fn resp3_client(&self) -> Option<redis::Client> {
        self.resp3.clone()
    }

    /// The password in use.
    #[cfg(test)]
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    #[inline]
    fn manager(&self) -> Result<ConnectionManager, CacheError> {
        if let Some(m) = &*self.conn.load() {
            return Ok(ConnectionManager::clone(m));
        }
        self.start_manager()
    }

    #[cold]
    fn start_manager(&self) -> Result<ConnectionManager, CacheError> {
        let _init = self.init.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = &*self.conn.load() {
            return Ok(ConnectionManager::clone(m));
        }
        let runtime = runtime_for_connections()?;
        let manager =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())?;
        self.conn.store(Some(Arc::new(manager.clone())));
        // Drive the first connection attempt to its end even if every caller gives up
        // at its deadline (the lazy connection only progresses while polled).
        let mut driver = manager.clone();
        runtime.spawn(async move {
            let _ = redis::cmd("PING").query_async::<()>(&mut driver).await;
        });
        tracing::debug!(url = %self.display_url, "cacheward: connecting to Redis in the background");
        Ok(manager)
    }

    /// Runs an idempotent command, retrying once (within the caller's deadline) when
    /// the connection turned out to be dead: the retry waits for the reconnection that
    /// the failure started instead of reporting a stale error.
    async fn idempotent<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, CacheError> {
        let mut c = self.manager()?;
        match cmd.query_async::<T>(&mut c).await {
            Ok(v) => Ok(v),
            Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                let mut c = self.manager()?;
                Ok(cmd.query_async::<T>(&mut c).await?)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl RemoteStore for RedisStore {
    fn backend(&self) -> Backend {
        Backend::Redis
    }

    fn endpoint(&self) -> &str {
        &self.display_url
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.idempotent(redis::cmd("GET").arg(key)).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        self.idempotent(redis::cmd("MGET").arg(keys)).await
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        self.idempotent(
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(super::ttl_millis(ttl)),
        )
        .await
    }

    async fn set_many(&self, entries: &[(&str, Vec<u8>)], ttl: Duration) -> Result<(), CacheError> {
        let ms = super::ttl_millis(ttl);
        let mut pipe = redis::pipe();
        for (k, v) in entries {
            pipe.cmd("SET")
                .arg(*k)
                .arg(v.as_slice())
                .arg("PX")
                .arg(ms)
                .ignore();
        }
        let mut c = self.manager()?;
        match pipe.query_async::<()>(&mut c).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_io_error() || e.is_connection_dropped() => {
                let mut c = self.manager()?;
                Ok(pipe.query_async::<()>(&mut c).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        self.idempotent(redis::cmd("DEL").arg(keys)).await
    }

    async fn ping(&self) -> Result<(), CacheError> {
        let mut c = self.manager()?;
        redis::cmd("PING").query_async::<()>(&mut c).await?;
        Ok(())
    }

    async fn eval(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[ScriptArg<'_>],
    ) -> Result<redis::Value, CacheError> {
        let mut c = self.manager()?;
        Ok(invocation(script, keys, args).invoke_async(&mut c).await?)
    }

    fn reset_connection(&self) {
        let _init = self.init.lock().unwrap_or_else(PoisonError::into_inner);
        if self.conn.swap(None).is_some() {
            tracing::debug!(url = %self.display_url, "cacheward: dropping the Redis connection; the next operation reconnects");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_in_use_is_known_and_never_shown() {
        let settings = ConnectionSettings {
            password: Some("fromenv".into()),
            ..Default::default()
        };
        let s = RedisStore::new("redis://127.0.0.1:6379/2", &settings).unwrap();
        assert_eq!(s.password(), Some("fromenv"));
        let s = RedisStore::new("redis://app:inurl@127.0.0.1:6379", &settings).unwrap();
        assert_eq!(s.password(), Some("inurl"));
        assert_eq!(s.endpoint(), "redis://app:***@127.0.0.1:6379");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("inurl"), "{dbg}");
        let err = RedisStore::new("redis://:hunter2@host:99999", &settings).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
