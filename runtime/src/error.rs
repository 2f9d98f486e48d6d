//! Error types. Cache failures never reach callers of [`Cache`](crate::Cache)
//! operations; these types appear in construction results, health reports and the
//! crate-internal API the rate limiter uses.

use std::time::Duration;

/// A configuration problem found while building a [`Cache`](crate::Cache).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The Redis URL could not be parsed. The message never contains the password.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
}

/// Why one cache operation failed. Internal to the cache: it is logged and counted,
/// and the operation behaves as a miss. Messages never contain a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The operation did not finish within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The circuit breaker is open: the operation was not sent to Redis at all.
    #[error("circuit breaker open: Redis is skipped until a probe succeeds")]
    CircuitOpen,
    /// Redis could not be reached or is not serving: the connection could not be made
    /// or was lost, or the server answered `LOADING`, `CLUSTERDOWN`, `MASTERDOWN`,
    /// `READONLY`, `TRYAGAIN`. Counts towards opening the circuit breaker.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Redis refused the credentials (`WRONGPASS`, `NOAUTH`, `NOPERM`). Counts towards
    /// opening the circuit breaker.
    #[error("redis authentication failed: {0}")]
    Auth(String),
    /// Redis answered this one command with an error (`WRONGTYPE`, `OOM`, a script
    /// error, ...). The server is alive, so this does not count towards the breaker.
    #[error("redis error: {0}")]
    Redis(String),
    /// The backend cannot run this operation (a script on a non-Redis backend).
    #[error("operation not supported by this backend")]
    Unsupported,
    /// The cache is pass-through because its configuration is broken (a malformed
    /// `REDIS_URL`, an unknown `CACHE_PROVIDER`, ...). The message names the problem.
    #[error("cache misconfigured, caching disabled: {0}")]
    Misconfigured(String),
}

impl CacheError {
    /// Whether this failure says Redis is down or unreachable (rather than that one
    /// command was refused): such failures count towards opening the breaker.
    pub(crate) fn is_outage(&self) -> bool {
        matches!(
            self,
            CacheError::Timeout(_) | CacheError::Unavailable(_) | CacheError::Auth(_)
        )
    }

    /// A short, stable name for logs and the `error_type` metric label.
    pub(crate) fn kind_str(&self) -> &'static str {
        match self {
            CacheError::Timeout(_) => "timeout",
            CacheError::CircuitOpen => "circuit_open",
            CacheError::Unavailable(_) => "unavailable",
            CacheError::Auth(_) => "auth",
            CacheError::Redis(_) => "redis",
            CacheError::Unsupported => "unsupported",
            CacheError::Misconfigured(_) => "misconfigured",
        }
    }

    /// Replaces every occurrence of each secret in the message with `***`.
    pub(crate) fn scrubbed(self, secrets: &[String]) -> CacheError {
        let fix = |s: String| crate::redact::scrub(&s, secrets);
        match self {
            CacheError::Unavailable(s) => CacheError::Unavailable(fix(s)),
            CacheError::Auth(s) => CacheError::Auth(fix(s)),
            CacheError::Redis(s) => CacheError::Redis(fix(s)),
            CacheError::Misconfigured(s) => CacheError::Misconfigured(fix(s)),
            other => other,
        }
    }
}

/// Classifies a redis-rs error: outages (I/O, refused credentials, a server that is not
/// serving) versus one command refused by a live server. Any `user:password@` part of
/// a URL inside the message is redacted.
impl From<redis::RedisError> for CacheError {
    fn from(err: redis::RedisError) -> Self {
        use redis::{ErrorKind as K, ServerErrorKind as S};
        let msg = crate::redact::redact_urls(&err.to_string());
        let code = err.code().unwrap_or("");
        if matches!(code, "WRONGPASS" | "NOAUTH" | "NOPERM")
            || err.kind() == K::AuthenticationFailed
            || err.kind() == K::Server(S::NoPerm)
        {
            return CacheError::Auth(msg);
        }
        match err.kind() {
            K::Io
            | K::Parse
            | K::ClusterConnectionNotFound
            | K::Client
            | K::Server(S::BusyLoading)
            | K::Server(S::TryAgain)
            | K::Server(S::ClusterDown)
            | K::Server(S::MasterDown)
            | K::Server(S::ReadOnly) => CacheError::Unavailable(msg),
            _ if err.is_timeout() || err.is_connection_dropped() => CacheError::Unavailable(msg),
            _ => CacheError::Redis(msg),
        }
    }
}
