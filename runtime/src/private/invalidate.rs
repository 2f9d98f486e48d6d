//! The invalidation helpers every `#[invalidates]` method calls.

use std::future::Future;

use super::single_flight;
use crate::cache::Cache;
use crate::inventory::KeySpec;

/// Deletes `keys` (each counted under its template). A failed delete is logged and
/// counted, never returned. A read of one of these keys that is under way in this
/// process will not store its (possibly older) value.
pub async fn invalidate<const N: usize>(cache: &Cache, keys: [(&'static KeySpec, String); N]) {
    for (spec, key) in &keys {
        single_flight::mark_stale(cache, key);
        cache.del_labeled(&[key.as_str()], spec.label()).await;
    }
}

/// [`invalidate`] when the inner write returned `Ok`; nothing otherwise.
///
/// Only whether `result` is `Ok` is kept, so the returned future does not borrow it
/// (and stays `Send` whatever `T` and `E` are).
pub fn invalidate_if_ok<'a, T, E, const N: usize>(
    cache: &'a Cache,
    result: &Result<T, E>,
    keys: [(&'static KeySpec, String); N],
) -> impl Future<Output = ()> + Send + 'a {
    let ok = result.is_ok();
    async move {
        if ok {
            invalidate(cache, keys).await;
        }
    }
}

/// Invalidates tags (each counted under its tag template): every entry stamped with
/// one of them misses from now on, on every instance. Failures are logged, counted and
/// kept for replay, never returned.
pub async fn invalidate_tags<const N: usize>(cache: &Cache, tags: [(&'static str, String); N]) {
    for (label, tag) in &tags {
        cache.invalidate_tag_labeled(tag, label).await;
    }
}

/// [`invalidate_tags`] when the inner write returned `Ok`; nothing otherwise.
pub fn invalidate_tags_if_ok<'a, T, E, const N: usize>(
    cache: &'a Cache,
    result: &Result<T, E>,
    tags: [(&'static str, String); N],
) -> impl Future<Output = ()> + Send + 'a {
    let ok = result.is_ok();
    async move {
        if ok {
            invalidate_tags(cache, tags).await;
        }
    }
}
