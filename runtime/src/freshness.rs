//! Refresh-ahead and stale-if-error: the state a cache keeps for them.
//!
//! - **Refresh-ahead** (`refresh_ahead = f`): a hit on an entry older than `f × ttl`
//!   (its age is the TTL minus the `PTTL` read with it: no clocks are compared) answers
//!   at once and starts one background refresh. Within a process one refresh per key
//!   runs at a time ([`Cache::claim_refresh`]); across processes, whoever takes the
//!   key's lease refreshes, and its fill is rejected if the key was invalidated since.
//! - **Stale-if-error** (`stale_if_error = d`): every fill also writes a stale copy
//!   (`<key> #stale`, same slot) that lives `ttl + d`. Past the TTL the key is a miss;
//!   if the inner store then fails, the stale copy answers, and for
//!   [`FAILING_THROTTLE`] further misses of that key answer from it without calling
//!   the failing store. Invalidations delete the stale copy too, and tagged copies are
//!   checked against their tags, so an invalidated entry is never served stale.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::telemetry::Op;

/// After the inner store failed for a key, how long its misses answer from the stale
/// copy without calling the store again.
pub(crate) const FAILING_THROTTLE: Duration = Duration::from_secs(5);

/// The most keys remembered as being refreshed or failing; past it the memory is
/// cleared (a refresh may then run twice, or a failing store be called once more).
const MAX_TRACKED: usize = 10_000;

/// Per-cache state of refresh-ahead and stale-if-error.
#[derive(Debug, Default)]
pub(crate) struct Freshness {
    refreshing: Mutex<HashSet<String>>,
    failing: Mutex<HashMap<String, Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This process's claim on refreshing a key; dropping it ends the claim.
pub(crate) struct RefreshClaim {
    cache: Cache,
    key: String,
}

impl Drop for RefreshClaim {
    fn drop(&mut self) {
        lock(&self.cache.inner.freshness.refreshing).remove(&self.key);
    }
}

impl Cache {
    /// Claims the refresh of `key` in this process; `None` if one is running.
    pub(crate) fn claim_refresh(&self, key: &str) -> Option<RefreshClaim> {
        let mut set = lock(&self.inner.freshness.refreshing);
        if set.len() >= MAX_TRACKED {
            set.clear();
        }
        set.insert(key.to_owned()).then(|| RefreshClaim {
            cache: self.clone(),
            key: key.to_owned(),
        })
    }

    /// The stale copy of `key`, if there is one.
    pub(crate) async fn read_stale(&self, key: &str) -> Option<Vec<u8>> {
        match self.inner.store.get(&crate::lease::stale_key(key)).await {
            Ok(bytes) => bytes,
            Err(err) => {
                self.failed(
                    self.slot(crate::cache::DIRECT_LABEL),
                    Op::Get,
                    &err,
                    crate::cache::Timer::start(),
                );
                None
            }
        }
    }

    /// Counts and logs (rate-limited) a stale answer.
    pub(crate) fn stale_served(&self, key: &str, label: &'static str) {
        let _ = key;
        self.slot(label).counters.stale();
        if let Some(suppressed) = self.inner.log.allow(Op::Stale) {
            tracing::warn!(
                label,
                suppressed,
                "cacheward: the inner store failed - answered with the stale cached value (stale_if_error)"
            );
        }
    }

    /// Remembers that the inner store just failed for `key`, for `throttle` (default
    /// [`FAILING_THROTTLE`]).
    pub(crate) fn note_store_failing(&self, key: &str, throttle: Option<Duration>) {
        let mut map = lock(&self.inner.freshness.failing);
        if map.len() >= MAX_TRACKED {
            map.clear();
        }
        map.insert(
            key.to_owned(),
            Instant::now() + throttle.unwrap_or(FAILING_THROTTLE),
        );
    }

    /// Whether the inner store failed for `key` within its throttle.
    pub(crate) fn store_failing(&self, key: &str) -> bool {
        let mut map = lock(&self.inner.freshness.failing);
        match map.get(key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                map.remove(key);
                false
            }
            None => false,
        }
    }
}
