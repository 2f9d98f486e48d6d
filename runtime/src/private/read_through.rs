//! The read-through every cached method and [`Cache::get_or_set`] go through.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::shape::Shape;
use super::single_flight::{self, Join, Leader, Shared};
use crate::backend::Backend;
use crate::cache::Cache;
use crate::inventory::KeySpec;
use crate::lease::Acquired;

/// Answers a cached method: the cached value on a hit; on a miss, the inner store's
/// answer (`inner` is called only then, so a hit never creates the inner future),
/// stored if its shape says so. Concurrent misses of one key share one inner call,
/// within a process (single-flight) and across processes (leases).
///
/// Every cache failure is a miss: the caller always gets the inner store's answer or a
/// value the inner store gave for the same key.
pub async fn read_through<R, M, F, Fut>(
    cache: &Cache,
    spec: &'static KeySpec,
    key: String,
    shape: M,
    inner: F,
) -> R
where
    M: Shape<R>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    load_through(
        cache,
        spec.label(),
        spec.effective_ttl(),
        &key,
        shape,
        inner,
    )
    .await
}

/// [`read_through`] for a label and TTL given directly.
pub(crate) async fn load_through<R, M, F, Fut>(
    cache: &Cache,
    label: &'static str,
    ttl: Duration,
    key: &str,
    _shape: M,
    inner: F,
) -> R
where
    M: Shape<R>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    if cache.backend() == Backend::PassThrough {
        return inner().await;
    }
    // A read that failed because Redis is unreachable or slow is a miss, but its fill
    // is skipped: a lease or a SET into a Redis that just failed would only wait out
    // another deadline. The next read after Redis recovers fills the key.
    let read_failed = match cache
        .try_get_labeled::<M::Stored>(key, label, Some(ttl))
        .await
    {
        Ok(Some(value)) => return M::from_stored(value),
        Ok(None) => false,
        Err(_) => true,
    };
    loop {
        match single_flight::join(cache, key) {
            Join::Leader(leader) => {
                return lead::<R, M, F, Fut>(cache, label, ttl, key, &leader, read_failed, inner)
                    .await;
                // Dropping the leader (after the fill) ends the flight.
            }
            Join::Follower(mut rx) => {
                let shared = match rx.wait_for(Option::is_some).await {
                    Ok(shared) => shared.clone(),
                    // The leader's future was dropped before it answered: try again.
                    Err(_) => continue,
                };
                match shared {
                    Some(Shared::Value(bytes)) => {
                        if let Some(value) = cache.decode_or_evict::<M::Stored>(key, &bytes, label)
                        {
                            return M::from_stored(value);
                        }
                    }
                    Some(Shared::Absent) => {
                        if let Some(absent) = M::absent() {
                            return absent;
                        }
                    }
                    Some(Shared::Unshared) | None => {}
                }
                break;
            }
        }
    }
    inner().await
}

/// The leader of a miss in this process: takes the lease (or finds the value someone
/// filled meanwhile), loads, shares the answer with the followers and fills.
async fn lead<R, M, F, Fut>(
    cache: &Cache,
    label: &'static str,
    ttl: Duration,
    key: &str,
    leader: &Leader,
    read_failed: bool,
    inner: F,
) -> R
where
    M: Shape<R>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    let lease = if read_failed {
        tracing::debug!(label, "cacheward: the cache read failed - fill skipped");
        None
    } else {
        match cache.take_lease(key, label).await {
            Acquired::Value(bytes) => {
                if let Some(value) = cache.decode_or_evict::<M::Stored>(key, &bytes, label) {
                    leader.publish(Shared::Value(bytes.into()));
                    return M::from_stored(value);
                }
                None
            }
            Acquired::Lease(guard) => Some(guard),
            Acquired::NoLease => None,
        }
    };
    let result = inner().await;
    let encoded = M::stored(&result).and_then(|value| cache.encode(value, label));
    match encoded {
        Some(bytes) => {
            let bytes: Arc<[u8]> = bytes.into();
            leader.publish(Shared::Value(Arc::clone(&bytes)));
            match lease {
                Some(guard) if leader.is_stale() => {
                    tracing::debug!(
                        label,
                        "cacheward: key invalidated during the read - value not stored"
                    );
                    guard.release().await;
                }
                Some(guard) => guard.fill(&bytes, ttl).await,
                None => {}
            }
        }
        None => {
            leader.publish(if M::is_absent(&result) {
                Shared::Absent
            } else {
                Shared::Unshared
            });
            if let Some(guard) = lease {
                guard.release().await;
            }
        }
    }
    result
}
