//! Health reports.

use std::time::Duration;

use crate::backend::Backend;

/// The result of [`Cache::health`](crate::Cache::health).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheHealth {
    /// Whether the backend answered within the deadline.
    pub healthy: bool,
    /// The backend that was checked.
    pub backend: Backend,
    /// The round-trip time of the check, when it succeeded.
    pub latency: Option<Duration>,
    /// Why the check failed, when it did. Never contains a password.
    pub error: Option<String>,
}
