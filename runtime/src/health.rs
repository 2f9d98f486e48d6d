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
    /// The circuit breaker's state, for backends that have one (Redis, Redis Cluster,
    /// Upstash).
    pub circuit: Option<CircuitState>,
}

/// Serialized as a flat object, so a `/health` handler can return it as it is:
///
/// ```json
/// {"healthy": true, "backend": "redis", "latency_ms": 0.42, "error": null, "circuit": "closed"}
/// ```
///
/// `latency_ms` is fractional milliseconds (`null` when the check failed); `backend`
/// and `circuit` are the names of [`Backend::as_str`] and [`CircuitState::as_str`].
impl serde::Serialize for CacheHealth {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("CacheHealth", 5)?;
        s.serialize_field("healthy", &self.healthy)?;
        s.serialize_field("backend", self.backend.as_str())?;
        s.serialize_field(
            "latency_ms",
            &self.latency.map(|d| d.as_secs_f64() * 1000.0),
        )?;
        s.serialize_field("error", &self.error)?;
        s.serialize_field("circuit", &self.circuit.map(CircuitState::as_str))?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_flat_with_names_and_milliseconds() {
        let h = CacheHealth {
            healthy: true,
            backend: Backend::Redis,
            latency: Some(Duration::from_micros(1500)),
            error: None,
            circuit: Some(CircuitState::HalfOpen),
        };
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            serde_json::json!({
                "healthy": true, "backend": "redis", "latency_ms": 1.5,
                "error": null, "circuit": "half-open"
            })
        );
        let down = CacheHealth {
            healthy: false,
            backend: Backend::PassThrough,
            latency: None,
            error: Some("REDIS_URL is malformed".into()),
            circuit: None,
        };
        assert_eq!(
            serde_json::to_value(&down).unwrap(),
            serde_json::json!({
                "healthy": false, "backend": "passthrough", "latency_ms": null,
                "error": "REDIS_URL is malformed", "circuit": null
            })
        );
    }
}
