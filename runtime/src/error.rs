//! Error types. Cache failures never reach callers of [`Cache`](crate::Cache)
//! operations; these types appear in construction results and health reports.

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
/// and the operation behaves as a miss.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The operation did not finish within the deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error or the connection failed.
    #[error("redis error: {0}")]
    Redis(String),
    /// The backend cannot run this operation (a script on a non-Redis backend).
    #[error("operation not supported by this backend")]
    Unsupported,
}

impl From<redis::RedisError> for CacheError {
    fn from(err: redis::RedisError) -> Self {
        CacheError::Redis(err.to_string())
    }
}
