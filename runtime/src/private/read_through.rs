//! The read-through helper every cached method calls.

use std::future::Future;
use std::sync::Arc;

use super::shape::Shape;
use super::single_flight::{self, Join, Shared};
use crate::backend::Backend;
use crate::cache::Cache;
use crate::inventory::KeySpec;

/// Answers a cached method: the cached value on a hit; on a miss, the inner store's
/// answer (`inner` is called only then, so a hit never creates the inner future),
/// stored if its shape says so. Concurrent misses of one key share one inner call.
///
/// Every cache failure is a miss: the caller always gets the inner store's answer or a
/// value the inner store gave for the same key.
pub async fn read_through<R, M, F, Fut>(
    cache: &Cache,
    spec: &'static KeySpec,
    key: String,
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
    let label = spec.label();
    if let Some(value) = cache.get_labeled::<M::Stored>(&key, label).await {
        return M::from_stored(value);
    }
    loop {
        match single_flight::join(cache, &key) {
            Join::Leader(leader) => {
                let result = inner().await;
                let encoded = M::stored(&result).and_then(|value| cache.encode(value, label));
                match encoded {
                    Some(bytes) => {
                        let bytes: Arc<[u8]> = bytes.into();
                        leader.publish(Shared::Value(Arc::clone(&bytes)));
                        if leader.is_stale() {
                            tracing::debug!(
                                label,
                                "cacheward: key invalidated during the read - value not stored"
                            );
                        } else {
                            cache
                                .set_raw(&key, bytes.to_vec(), spec.effective_ttl(), label)
                                .await;
                        }
                    }
                    None if M::is_absent(&result) => leader.publish(Shared::Absent),
                    None => leader.publish(Shared::Unshared),
                }
                // Dropping the leader (after the write) ends the flight.
                return result;
            }
            Join::Follower(mut rx) => {
                let shared = match rx.wait_for(Option::is_some).await {
                    Ok(shared) => shared.clone(),
                    // The leader's future was dropped before it answered: try again.
                    Err(_) => continue,
                };
                match shared {
                    Some(Shared::Value(bytes)) => {
                        if let Some(value) = cache.decode_or_evict::<M::Stored>(&key, &bytes, label)
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
