//! The single-server Redis backend.
//!
//! SKELETON: a lazily-connected `ConnectionManager` with a per-operation deadline.
//! The breaker, reconnection policy and credentials handling are still to come (issue 2).

use std::sync::OnceLock;
use std::time::Duration;

use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::{CacheError, ConfigError};

/// The default deadline for one Redis operation.
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);

pub(crate) struct RedisStore {
    client: redis::Client,
    conn: OnceLock<ConnectionManager>,
    deadline: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.client.get_connection_info();
        f.debug_struct("RedisStore")
            .field("addr", &info.addr().to_string())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    pub(crate) fn new(url: &str) -> Result<Self, ConfigError> {
        let client =
            redis::Client::open(url).map_err(|e| ConfigError::InvalidUrl(e.to_string()))?;
        Ok(RedisStore {
            client,
            conn: OnceLock::new(),
            deadline: DEFAULT_DEADLINE,
        })
    }

    fn conn(&self) -> Result<ConnectionManager, CacheError> {
        if let Some(c) = self.conn.get() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.deadline))
            .set_response_timeout(Some(self.deadline));
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(CacheError::from)?;
        Ok(self.conn.get_or_init(|| manager).clone())
    }

    async fn within<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(r) => r.map_err(CacheError::from),
            Err(_) => Err(CacheError::Timeout(self.deadline)),
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut c = self.conn()?;
        self.within(c.get(key)).await
    }

    pub(crate) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn()?;
        self.within(redis::cmd("MGET").arg(keys).query_async(&mut c))
            .await
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let mut c = self.conn()?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.within(
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .query_async(&mut c),
        )
        .await
    }

    pub(crate) async fn set_many(
        &self,
        entries: &[(&str, Vec<u8>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut c = self.conn()?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipe = redis::pipe();
        for (k, v) in entries {
            pipe.cmd("SET")
                .arg(*k)
                .arg(v.as_slice())
                .arg("PX")
                .arg(ms)
                .ignore();
        }
        self.within(pipe.query_async(&mut c)).await
    }

    pub(crate) async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut c = self.conn()?;
        self.within(redis::cmd("DEL").arg(keys).query_async(&mut c))
            .await
    }

    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        let mut c = self.conn()?;
        self.within(redis::cmd("PING").query_async::<String>(&mut c))
            .await
            .map(drop)
    }

    pub(crate) async fn eval(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<redis::Value, CacheError> {
        let mut c = self.conn()?;
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        self.within(inv.invoke_async(&mut c)).await
    }
}
