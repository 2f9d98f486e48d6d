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
        let now = Instant::now();
        let mut map = self.lock();
        match map.entries.get(key) {
            Some(e) if e.expires > now => Some(e.value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let now = Instant::now();
        let size = key.len() + value.len();
        let mut map = self.lock();
        map.remove(key);
        if size > self.max_bytes {
            return; // could never fit
        }
        while map.entries.len() >= self.max_entries || map.bytes + size > self.max_bytes {
            let Some((_, victim)) = map.by_expiry.pop_first() else {
                break;
            };
            if let Some(e) = map.entries.remove(&victim) {
                map.bytes -= victim.len() + e.value.len();
            }
        }
        let expires = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        map.seq += 1;
        let seq = map.seq;
        let key: Arc<str> = Arc::from(key);
        map.by_expiry.insert((expires, seq), key.clone());
        map.bytes += size;
        map.entries.insert(
            key,
            Entry {
                value,
                expires,
                seq,
            },
        );
    }

    pub(crate) fn del(&self, key: &str) {
        self.lock().remove(key);
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
