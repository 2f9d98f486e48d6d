//! The explicit in-memory backend of [`Cache::memory`](crate::Cache::memory).
//!
//! Bounded by a number of entries and a number of bytes (key + value); when a write
//! would exceed either bound, the entries closest to expiry are evicted first (expired
//! ones are always first in that order). TTLs are honoured on every read.
//!
//! It is **single-process only**: every process has its own map, so an invalidation
//! in one instance of a service is never seen by another. Use it for development and
//! tests, never as a stand-in for Redis; no backend ever falls back to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The default entry bound of [`Cache::memory`](crate::Cache::memory).
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// The default byte bound of [`Cache::memory`](crate::Cache::memory) (64 MiB).
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Instant,
    seq: u64,
}

#[derive(Debug, Default)]
struct Map {
    entries: HashMap<Arc<str>, Entry>,
    /// Expiry order: (expires, insertion sequence) → key.
    by_expiry: BTreeMap<(Instant, u64), Arc<str>>,
    bytes: usize,
    seq: u64,
}

impl Map {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let (k, e) = self.entries.remove_entry(key)?;
        self.by_expiry.remove(&(e.expires, e.seq));
        self.bytes -= k.len() + e.value.len();
        Some(e)
    }

    /// The live value of `key`; an expired entry is removed.
    fn get(&mut self, key: &str, now: Instant) -> Option<&[u8]> {
        match self.entries.get(key) {
            Some(e) if e.expires > now => {}
            Some(_) => {
                self.remove(key);
                return None;
            }
            None => return None,
        }
        self.entries.get(key).map(|e| e.value.as_slice())
    }

    /// Stores `value`, evicting the entries closest to expiry while a bound would be
    /// exceeded. A value that could never fit is not stored.
    fn set(
        &mut self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        max_entries: usize,
        max_bytes: usize,
    ) {
        let now = Instant::now();
        let size = key.len() + value.len();
        self.remove(key);
        if size > max_bytes {
            return;
        }
        while self.entries.len() >= max_entries || self.bytes + size > max_bytes {
            let Some((_, victim)) = self.by_expiry.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&victim) {
                self.bytes -= victim.len() + e.value.len();
            }
        }
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.seq += 1;
        let seq = self.seq;
        let key: Arc<str> = Arc::from(key);
        self.by_expiry.insert((expires, seq), key.clone());
        self.bytes += size;
        self.entries.insert(
            key,
            Entry {
                value,
                expires,
                seq,
            },
        );
    }
}

/// The answer to a lease request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseReply {
    /// The key holds a value (filled since the read that missed).
    Filled(Vec<u8>),
    /// The caller holds the lease: it loads, then fills.
    Granted,
    /// Another caller holds the lease, for about this much longer.
    Busy(Duration),
}

#[derive(Debug)]
pub(crate) struct MemoryStore {
    max_entries: usize,
    max_bytes: usize,
    map: Mutex<Map>,
}

impl MemoryStore {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        MemoryStore {
            max_entries: max_entries.max(1),
            max_bytes: max_bytes.max(1),
            map: Mutex::new(Map::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        // Every mutation keeps the map consistent before it can panic.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().get(key, Instant::now()).map(<[u8]>::to_vec)
    }

    pub(crate) fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        self.lock()
            .set(key, value, ttl, self.max_entries, self.max_bytes);
    }

    pub(crate) fn del(&self, key: &str) {
        self.lock().remove(key);
    }

    /// The lease protocol of [`crate::lease`], in process: the value if `key` holds
    /// one, else the lease `lease_key` for `token` if nobody holds it.
    pub(crate) fn acquire_lease(
        &self,
        key: &str,
        lease_key: &str,
        token: &[u8],
        lease: Duration,
        refresh_due: Option<Duration>,
    ) -> LeaseReply {
        let now = Instant::now();
        let mut map = self.lock();
        match refresh_due {
            Some(due) => {
                let left = map
                    .entries
                    .get(key)
                    .map(|e| e.expires.saturating_duration_since(now));
                if left.is_some_and(|left| left > due) {
                    return LeaseReply::Busy(Duration::ZERO);
                }
            }
            None => {
                if let Some(value) = map.get(key, now) {
                    return LeaseReply::Filled(value.to_vec());
                }
            }
        }
        if let Some(e) = map.entries.get(lease_key).filter(|e| e.expires > now) {
            return LeaseReply::Busy(e.expires - now);
        }
        map.set(
            lease_key,
            token.to_vec(),
            lease,
            self.max_entries,
            self.max_bytes,
        );
        LeaseReply::Granted
    }

    /// Stores the fill's value if its lease still holds its token, and ends the lease;
    /// `false` (nothing stored) when the lease was lost.
    pub(crate) fn fill_leased(&self, fill: &super::Fill<'_>) -> bool {
        let mut map = self.lock();
        if map.get(fill.lease_key, Instant::now()) != Some(fill.token) {
            return false;
        }
        map.remove(fill.lease_key);
        if let Some(stale) = fill.stale {
            let (e, b) = (self.max_entries, self.max_bytes);
            map.set(fill.stale_key, fill.value.to_vec(), fill.ttl + stale, e, b);
        }
        map.set(
            fill.key,
            fill.value.to_vec(),
            fill.ttl,
            self.max_entries,
            self.max_bytes,
        );
        true
    }

    /// The value of `key` and its remaining time to live.
    pub(crate) fn get_with_ttl(&self, key: &str) -> Option<(Vec<u8>, Option<Duration>)> {
        let now = Instant::now();
        let mut map = self.lock();
        let value = map.get(key, now)?.to_vec();
        let left = map
            .entries
            .get(key)
            .map(|e| e.expires.saturating_duration_since(now));
        Some((value, left))
    }

    /// Deletes `key` if it holds exactly `value`.
    pub(crate) fn del_if_equal(&self, key: &str, value: &[u8]) {
        let mut map = self.lock();
        if map.get(key, Instant::now()) == Some(value) {
            map.remove(key);
        }
    }

    /// A tag counter (see [`crate::tags`]): its value, created as `fresh` when missing;
    /// with `bump`, changed (incremented, or `fresh` when missing).
    pub(crate) fn counter(&self, key: &str, fresh: &str, bump: bool) -> String {
        let mut map = self.lock();
        let current = map
            .get(key, Instant::now())
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        let value = match (current, bump) {
            (Some(n), false) => return n.to_string(),
            (Some(n), true) => n.wrapping_add(1).to_string(),
            (None, _) => fresh.to_owned(),
        };
        // Counters never expire (a year is forever for a cache entry).
        let forever = Duration::from_secs(365 * 86_400);
        map.set(
            key,
            value.clone().into_bytes(),
            forever,
            self.max_entries,
            self.max_bytes,
        );
        value
    }

    /// Ends the lease `lease_key` if it still holds `token`.
    pub(crate) fn release_lease(&self, lease_key: &str, token: &[u8]) {
        let mut map = self.lock();
        if map.get(lease_key, Instant::now()) == Some(token) {
            map.remove(lease_key);
        }
    }

    #[cfg(test)]
    fn len_and_bytes(&self) -> (usize, usize) {
        let m = self.lock();
        (m.entries.len(), m.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn entries_expire() {
        let m = MemoryStore::new(10, 1000);
        m.set("a", b"1".to_vec(), Duration::from_millis(20));
        m.set("b", b"2".to_vec(), LONG);
        assert_eq!(m.get("a"), Some(b"1".to_vec()));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(m.get("a"), None);
        assert_eq!(m.get("b"), Some(b"2".to_vec()));
        assert_eq!(m.len_and_bytes(), (1, 2));
    }

    #[test]
    fn entry_bound_evicts_soonest_to_expire() {
        let m = MemoryStore::new(3, 1000);
        m.set("a", b"1".to_vec(), Duration::from_secs(10));
        m.set("b", b"2".to_vec(), Duration::from_secs(5));
        m.set("c", b"3".to_vec(), Duration::from_secs(20));
        m.set("d", b"4".to_vec(), Duration::from_secs(30));
        assert_eq!(m.get("b"), None);
        for k in ["a", "c", "d"] {
            assert!(m.get(k).is_some(), "{k}");
        }
        assert_eq!(m.len_and_bytes().0, 3);
    }

    #[test]
    fn byte_bound_is_kept() {
        let m = MemoryStore::new(100, 10);
        m.set("k1", vec![0; 4], LONG); // 6 bytes
        m.set("k2", vec![0; 3], LONG); // 5 bytes: evicts k1
        assert_eq!(m.get("k1"), None);
        assert!(m.get("k2").is_some());
        m.set("huge", vec![0; 100], LONG); // never fits: not stored, nothing evicted
        assert_eq!(m.get("huge"), None);
        assert!(m.get("k2").is_some());
        assert_eq!(m.len_and_bytes(), (1, 5));
    }

    #[test]
    fn overwrite_and_delete_keep_accounting() {
        let m = MemoryStore::new(10, 100);
        m.set("k", vec![0; 10], LONG);
        m.set("k", vec![0; 5], LONG);
        assert_eq!(m.len_and_bytes(), (1, 6));
        m.del("k");
        m.del("missing");
        assert_eq!(m.len_and_bytes(), (0, 0));
    }
}
