//! Invalidations that could not reach Redis, kept and replayed until Redis confirms them.
//!
//! When a delete fails because Redis is unreachable, too slow or skipped by the open
//! breaker, the database already holds the new value and Redis may still hold the old
//! one. The keys are kept here (deduplicated, bounded by [`MAX_PENDING`]) and a
//! background task deletes them again, with a short backoff, until Redis confirms.
//! Meanwhile this instance serves none of them from the cache: a read of a pending key
//! is a miss that loads from the inner store and stores nothing.
//!
//! The set lives in memory: a process that dies with pending invalidations loses them
//! (the old values then live until their TTL). Past the bound, further failed
//! invalidations are dropped (logged as errors, counted) and the instance bypasses the
//! cache for every key until the set has drained.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::cache::{Cache, Inner};

/// How many distinct keys an instance keeps for replay.
pub(crate) const MAX_PENDING: usize = 10_000;

/// How many keys one replay attempt deletes.
const REPLAY_BATCH: usize = 256;

/// The set of pending invalidations of one cache.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// The number of keys in `keys`, read without the lock on the hit path.
    count: AtomicUsize,
    keys: Mutex<HashMap<String, &'static str>>,
    /// Set when an invalidation was dropped at the bound; cleared when the set drains.
    overflowed: AtomicBool,
    /// Whether a replay task is running.
    replaying: AtomicBool,
    dropped: AtomicU64,
    replayed: AtomicU64,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, &'static str>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether reads of `key` must bypass the cache. One atomic load when nothing is
    /// pending.
    #[inline]
    pub(crate) fn blocks(&self, key: &str) -> bool {
        if self.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.overflowed.load(Ordering::Acquire) || self.lock().contains_key(key)
    }

    /// Keeps `keys` for replay; returns how many could not be kept (the bound).
    pub(crate) fn add(&self, keys: &[&str], label: &'static str) -> usize {
        let mut map = self.lock();
        let mut dropped = 0;
        for key in keys {
            if map.contains_key(*key) {
                continue;
            }
            if map.len() >= MAX_PENDING {
                dropped += 1;
                continue;
            }
            map.insert((*key).to_owned(), label);
        }
        if dropped > 0 {
            self.overflowed.store(true, Ordering::Release);
            self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        }
        self.count.store(map.len(), Ordering::Release);
        dropped
    }

    fn batch(&self) -> Vec<(String, &'static str)> {
        self.lock()
            .iter()
            .take(REPLAY_BATCH)
            .map(|(k, l)| (k.clone(), *l))
            .collect()
    }

    fn confirm(&self, keys: &[(String, &'static str)]) {
        let mut map = self.lock();
        for (k, _) in keys {
            map.remove(k);
        }
        self.replayed
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
        if map.is_empty() {
            self.overflowed.store(false, Ordering::Release);
        }
        self.count.store(map.len(), Ordering::Release);
    }

    /// How many keys are pending now.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// How many failed invalidations were dropped at the bound.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Cache {
    /// Keeps keys whose delete failed with an outage and makes sure a replay runs.
    #[cold]
    pub(crate) fn keep_for_replay(&self, keys: &[&str], label: &'static str) {
        let pending = &self.inner.pending;
        let dropped = pending.add(keys, label);
        if dropped > 0 {
            tracing::error!(
                label,
                dropped,
                bound = MAX_PENDING,
                "cacheward: too many pending invalidations - dropped some; this instance bypasses the cache until the rest are replayed"
            );
        } else if let Some(suppressed) = self.inner.log.allow(crate::telemetry::Op::Del) {
            tracing::warn!(
                label,
                pending = pending.len(),
                suppressed,
                "cacheward: invalidation could not reach Redis - kept and retried; the key is not served from the cache meanwhile"
            );
        }
        if !pending.replaying.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(replay(Arc::downgrade(&self.inner)));
                }
                Err(_) => pending.replaying.store(false, Ordering::Release),
            }
        }
    }
}

/// Deletes the pending keys (and their leases) until none is left, with a backoff of
/// 10 ms doubling up to 500 ms between failed attempts. Every attempt goes through the
/// guard: while the breaker is open it costs nothing, and after the cool-down the
/// replay is what probes Redis. Ends when the set is empty or the cache is dropped.
async fn replay(cache: Weak<Inner>) {
    let mut wait = Duration::from_millis(10);
    loop {
        tokio::time::sleep(wait).await;
        let Some(inner) = cache.upgrade() else { return };
        let cache = Cache { inner };
        let pending = &cache.inner.pending;
        let batch = pending.batch();
        if batch.is_empty() {
            pending.replaying.store(false, Ordering::Release);
            // An invalidation may have been kept after the batch was taken.
            if pending.len() == 0 || pending.replaying.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        let keys: Vec<&str> = batch.iter().map(|(k, _)| k.as_str()).collect();
        match cache.delete_with_leases(&keys).await {
            Ok(()) => {
                pending.confirm(&batch);
                tracing::info!(
                    replayed = batch.len(),
                    still_pending = pending.len(),
                    "cacheward: pending invalidations reached Redis"
                );
                wait = Duration::from_millis(10);
            }
            Err(_) => wait = (wait * 2).min(Duration::from_millis(500)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deduplicated_and_bounded() {
        let p = Pending::default();
        assert!(!p.blocks("a"));
        assert_eq!(p.add(&["a", "b", "a"], "t"), 0);
        assert_eq!(p.len(), 2);
        assert!(p.blocks("a") && !p.blocks("c"));
        let many: Vec<String> = (0..MAX_PENDING).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(p.add(&refs, "t"), 2, "two did not fit");
        assert_eq!(p.dropped(), 2);
        assert!(
            p.blocks("anything"),
            "past the bound every key bypasses the cache"
        );
        let all = p
            .lock()
            .iter()
            .map(|(k, l)| (k.clone(), *l))
            .collect::<Vec<_>>();
        p.confirm(&all);
        assert_eq!(p.len(), 0);
        assert!(!p.blocks("anything"));
    }
}
