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
use crate::tags::Stamps;
use serde::Serialize;
use serde::de::DeserializeOwned;

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
        &[],
        shape,
        inner,
    )
    .await
}

/// [`read_through`] for a template with tags: `tags` are this call's tags, rendered
/// from its arguments (see [`Cache::invalidate_tag`]).
pub async fn read_through_tagged<R, M, F, Fut, const N: usize>(
    cache: &Cache,
    spec: &'static KeySpec,
    key: String,
    tags: [String; N],
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
        &tags,
        shape,
        inner,
    )
    .await
}

/// How a template's entries are stored: plain JSON, or an envelope stamped with the
/// counters of its tags as read before the load.
enum Format {
    Plain,
    Tagged(Stamps),
}

impl Format {
    fn decode<T: DeserializeOwned>(
        &self,
        cache: &Cache,
        key: &str,
        bytes: &[u8],
        label: &'static str,
    ) -> Option<T> {
        match self {
            Format::Plain => cache.decode_or_evict(key, bytes, label),
            Format::Tagged(stamps) => stamps.decode(cache, key, bytes, label),
        }
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        cache: &Cache,
        value: &T,
        label: &'static str,
    ) -> Option<Vec<u8>> {
        match self {
            Format::Plain => cache.encode(value, label),
            Format::Tagged(stamps) => stamps.encode(cache, value, label),
        }
    }
}

/// [`read_through`] for a label, TTL and tags given directly.
pub(crate) async fn load_through<R, M, F, Fut>(
    cache: &Cache,
    label: &'static str,
    ttl: Duration,
    key: &str,
    tags: &[String],
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
    // The entry, and its tags' counters (concurrently): the counters are read before
    // any load, so a load that races a tag invalidation stamps the old counter.
    let (read, format) = if tags.is_empty() {
        (
            cache.try_get_raw(key, label, Some(ttl)).await,
            Ok(Format::Plain),
        )
    } else {
        let (read, stamps) = tokio::join!(
            cache.try_get_raw(key, label, Some(ttl)),
            cache.tag_stamps(tags)
        );
        (read, stamps.map(Format::Tagged))
    };
    // A read that failed because Redis is unreachable or slow is a miss, but its fill
    // is skipped: a lease or a SET into a Redis that just failed would only wait out
    // another deadline. The next read after Redis recovers fills the key.
    let (read_failed, format) = match (read, format) {
        (Ok(Some(bytes)), Ok(format)) => {
            if let Some(value) = format.decode::<M::Stored>(cache, key, &bytes, label) {
                return M::from_stored(value);
            }
            if let Format::Tagged(_) = format {
                // Stamped before a tag invalidation: out of the way of the refill.
                cache.drop_stale(key, &bytes).await;
            }
            (false, format)
        }
        (Ok(None), Ok(format)) => (false, format),
        (_, format) => (true, format.unwrap_or(Format::Plain)),
    };
    loop {
        match single_flight::join(cache, key) {
            Join::Leader(leader) => {
                return lead::<R, M, F, Fut>(
                    cache,
                    label,
                    ttl,
                    key,
                    &format,
                    &leader,
                    read_failed,
                    inner,
                )
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
                        if let Some(value) = format.decode::<M::Stored>(cache, key, &bytes, label) {
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
#[allow(
    clippy::too_many_arguments,
    reason = "the read's context, passed down from load_through"
)]
async fn lead<R, M, F, Fut>(
    cache: &Cache,
    label: &'static str,
    ttl: Duration,
    key: &str,
    format: &Format,
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
                if let Some(value) = format.decode::<M::Stored>(cache, key, &bytes, label) {
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
    let encoded = M::stored(&result).and_then(|value| format.encode(cache, value, label));
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
