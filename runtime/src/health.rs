//! Health reports.

use std::time::Duration;

use crate::backend::Backend;
use crate::breaker::CircuitState;

/// The result of [`Cache::health`](crate::Cache::health).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheHealth {
    /// Whether the backend answered within the deadline (always `true` for a cache
    /// that is pass-through on purpose; `false` for one that is pass-through because
    /// its configuration is broken).
    pub healthy: bool,
    /// The backend that was checked.
    pub backend: Backend,
    /// The round-trip time of the check, when it succeeded.
    pub latency: Option<Duration>,
    /// Why the check failed, when it did: a timeout, a refused connection, refused
    /// credentials, a malformed URL... Never contains a password.
    pub error: Option<String>,
    /// The circuit breaker's state, for backends that have one (Redis, Redis Cluster).
    pub circuit: Option<CircuitState>,
}
