//! The explicit in-memory backend: bounded, honours TTLs, single-process only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct MemoryStore {
    max_entries: usize,
    map: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

impl MemoryStore {
    pub(crate) fn new(max_entries: usize) -> Self {
        MemoryStore {
            max_entries: max_entries.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, Instant)>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut map = self.lock();
        match map.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= self.max_entries && !map.contains_key(key) {
            map.retain(|_, (_, expires)| *expires > now);
            if map.len() >= self.max_entries {
                // Evict the entry closest to expiry.
                if let Some(victim) = map
                    .iter()
                    .min_by_key(|(_, (_, e))| *e)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&victim);
                }
            }
        }
        map.insert(key.to_owned(), (value, now + ttl));
    }

    pub(crate) fn del(&self, key: &str) {
        self.lock().remove(key);
    }
}
