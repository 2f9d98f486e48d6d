//! Building a [`Cache`] from the environment.
//!
//! SKELETON: the full variable set (REDIS_PASSWORD, CACHE_PROVIDER, the off switch,
//! health reporting of a malformed URL) is still to come (issue 2).

use std::time::Duration;

use crate::cache::Cache;

impl Cache {
    /// Builds the cache the environment asks for. Never fails and never panics:
    /// without `REDIS_URL` it is [`Cache::pass_through`] and says so once in the log.
    pub fn from_env() -> Cache {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => match Cache::redis(url.trim()) {
                Ok(cache) => cache,
                Err(err) => {
                    tracing::error!(error = %err, "cacheward: REDIS_URL is malformed - PassThroughCache active");
                    Cache::pass_through()
                }
            },
            _ => {
                tracing::info!(
                    "cacheward: PassThroughCache active - all cache operations disabled (REDIS_URL not set)"
                );
                Cache::pass_through()
            }
        }
    }
}

/// Reads a TTL override such as `CACHE_TTL_POLICY_SECONDS` from the environment.
///
/// `name` is either a full variable name (`CACHE_TTL_POLICY_SECONDS`) or a cache name
/// (`policy`, giving `CACHE_TTL_POLICY_SECONDS`). An unset variable gives `None`; an
/// unparsable or zero one is logged and ignored.
pub fn ttl_override(name: &str) -> Option<Duration> {
    let var = if name.starts_with("CACHE_TTL_") {
        name.to_owned()
    } else {
        format!("CACHE_TTL_{}_SECONDS", name.to_ascii_uppercase())
    };
    let raw = std::env::var(&var).ok()?;
    match raw.trim().parse::<u64>() {
        Ok(secs) if secs > 0 => Some(Duration::from_secs(secs)),
        _ => {
            tracing::warn!(variable = %var, value = %raw, "cacheward: TTL override is not a positive number of seconds - ignored");
            None
        }
    }
}
