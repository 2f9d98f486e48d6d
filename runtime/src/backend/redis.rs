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
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, IntoConnectionInfo as _};

use super::Backend;
use super::guard::RemoteStore;
use crate::error::{CacheError, ConfigError};
use crate::redact::redact_url;

/// The default time allowed for making one connection (TCP, TLS and handshake). It runs
/// in the background, so it may be longer than the operation deadline.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How to reach one Redis server.
#[derive(Clone, Default)]
pub(crate) struct RedisOptions {
    /// Used when the URL carries no password (`REDIS_PASSWORD`, or the builder's).
    pub(crate) password: Option<String>,
    /// Used when the URL carries no user name.
    pub(crate) username: Option<String>,
    pub(crate) connect_timeout: Option<Duration>,
    /// A PEM CA certificate to trust for `rediss://` instead of the webpki roots.
    #[cfg(feature = "tls")]
    pub(crate) root_ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("username", &self.username)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

pub(crate) struct RedisStore {
    client: redis::Client,
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

/// Names what is wrong with a Redis URL more precisely than redis-rs does
/// ("Redis URL did not parse"). Never includes the password.
pub(crate) fn diagnose_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return Some("the URL is empty".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some("missing scheme: expected redis://host:port or rediss://host:port".into());
    };
    match scheme {
        "redis" | "rediss" | "valkey" | "valkeys" | "redis+unix" | "valkey+unix" | "unix" => {}
        "http" | "https" => {
            return Some(format!(
                "unsupported scheme '{scheme}': an Upstash REST URL is not a Redis protocol \
                 endpoint; use the redis:// or rediss:// endpoint"
            ));
        }
        other => {
            return Some(format!(
                "unsupported scheme '{other}' (expected redis:// or rediss://)"
            ));
        }
    }
    if scheme.ends_with("unix") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Some("unterminated IPv6 address".into()),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Some("missing host".into());
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Some(format!("invalid port '{p}' (expected 1-65535)"));
    }
    None
}

impl RedisStore {
    pub(crate) fn new(url: &str, options: &RedisOptions) -> Result<Self, ConfigError> {
        let url = url.trim();
        let display_url = redact_url(url);
        let invalid = |why: String| ConfigError::InvalidUrl(format!("{why} (in {display_url})"));
        if let Some(why) = diagnose_url(url) {
            return Err(invalid(why));
        }
        let mut info = url
            .into_connection_info()
            .map_err(|e| invalid(crate::redact::redact_urls(&e.to_string())))?;
        let mut redis_info = info.redis_settings().clone();
        if redis_info.password().is_none()
            && let Some(pw) = options.password.as_deref().filter(|p| !p.is_empty())
        {
            redis_info = redis_info.set_password(pw);
        }
        if redis_info.username().is_none()
            && let Some(user) = options.username.as_deref().filter(|u| !u.is_empty())
        {
            redis_info = redis_info.set_username(user);
        }
        let password = redis_info.password().map(str::to_owned);
        info = info.set_redis_settings(redis_info);
        #[cfg(feature = "tls")]
        let client = match &options.root_ca {
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(info),
        };
        #[cfg(not(feature = "tls"))]
        let client = redis::Client::open(info);
        let client = client.map_err(|e| invalid(crate::redact::redact_urls(&e.to_string())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(
                options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            ))
            // The guard's deadline bounds every operation; a second timer per
            // operation would only cost time.
            .set_response_timeout(None)
            // One attempt per reconnection: while Redis is down the breaker paces the
            // attempts (one per probe), and each failure reports its real reason.
            .set_number_of_retries(0);
        Ok(RedisStore {
            client,
            config,
            conn: ArcSwapOption::empty(),
            init: Mutex::new(()),
            display_url,
            password,
        })
    }

    /// The password in use, so the guard can scrub it from error messages.
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
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(CacheError::Unavailable(
                "no tokio runtime: cache operations must run inside one".into(),
            ));
        }
        #[cfg(feature = "tls")]
        super::install_crypto_provider();
        let manager =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())?;
        self.conn.store(Some(Arc::new(manager.clone())));
        // Drive the first connection attempt to its end even if every caller gives up
        // at its deadline (the lazy connection only progresses while polled).
        let mut driver = manager.clone();
        tokio::spawn(async move {
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
    const BACKEND: Backend = Backend::Redis;

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
        args: &[i64],
    ) -> Result<redis::Value, CacheError> {
        let mut c = self.manager()?;
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        Ok(inv.invoke_async(&mut c).await?)
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
    fn malformed_urls_are_named_precisely_without_the_password() {
        let cases = [
            ("", "empty"),
            ("localhost:6379", "missing scheme"),
            ("http://h:1", "unsupported scheme 'http'"),
            ("https://x.upstash.io", "Upstash"),
            ("redis://:hunter2@", "missing host"),
            ("redis://:hunter2@host:notaport", "invalid port 'notaport'"),
            ("redis://:hunter2@host:99999", "invalid port '99999'"),
            ("redis://:hunter2@host:6379/notadb", "database"),
        ];
        for (url, expected) in cases {
            let err = RedisStore::new(url, &RedisOptions::default()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(expected), "{url}: {msg}");
            assert!(!msg.contains("hunter2"), "{url}: {msg}");
        }
    }

    #[test]
    fn good_urls_parse_and_the_password_is_filled_in_only_when_missing() {
        let opts = RedisOptions {
            password: Some("fromenv".into()),
            ..Default::default()
        };
        let s = RedisStore::new("redis://127.0.0.1:6379/2", &opts).unwrap();
        assert_eq!(s.password(), Some("fromenv"));
        let s = RedisStore::new("redis://app:inurl@127.0.0.1:6379", &opts).unwrap();
        assert_eq!(s.password(), Some("inurl"));
        assert_eq!(s.endpoint(), "redis://app:***@127.0.0.1:6379");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("inurl"), "{dbg}");
        assert!(RedisStore::new("redis://[::1]:6379", &RedisOptions::default()).is_ok());
        #[cfg(feature = "tls")]
        assert!(
            RedisStore::new("rediss://cache.example.com:6380", &RedisOptions::default()).is_ok()
        );
    }
}
