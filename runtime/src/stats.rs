//! Counters behind [`Cache::stats`](crate::Cache::stats) and
//! [`Cache::stats_by_label`](crate::Cache::stats_by_label).
//!
//! Every operation is counted under a label: the key template of a generated method,
//! the name of a rate limiter, or [`DIRECT_LABEL`](crate::DIRECT_LABEL) for calls made
//! on [`Cache`](crate::Cache) directly. Labels are `&'static str`s, so each one gets
//! its own slot in a fixed, lock-free table found by hashing the string's address: the
//! hot path does one hash, one or two atomic loads and one `fetch_add`, never a lock
//! and never an allocation.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::CacheError;

/// A snapshot of a cache's counters.
///
/// Serializes as an object with one field per counter plus `hit_ratio`
/// ([`CacheStats::hit_ratio`], `null` before the first read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads that found a value in Redis (or the memory backend).
    pub hits: u64,
    /// Reads answered by the near cache, without a round trip (not counted in `hits`).
    pub near_hits: u64,
    /// Reads that found nothing (errors, skipped reads and undecodable values count here too).
    pub misses: u64,
    /// Operations that failed (including timeouts; not operations skipped by the breaker).
    pub errors: u64,
    /// Operations that did not finish within the deadline (also counted in `errors`).
    pub timeouts: u64,
    /// Entries written.
    pub sets: u64,
    /// Keys deleted.
    pub deletes: u64,
    /// Values that could not be decoded (treated as misses and deleted).
    pub decode_failures: u64,
    /// Operations that skipped Redis because the circuit breaker was open.
    pub short_circuited: u64,
    /// How many times the circuit breaker opened (only in [`Cache::stats`](crate::Cache::stats);
    /// zero in per-label stats).
    pub breaker_openings: u64,
    /// Misses that found another caller (on any instance) loading the key and waited
    /// for its fill instead of loading too.
    pub lease_waits: u64,
    /// Loaded values not stored because their lease was lost: the key was invalidated
    /// (or the lease expired) while they were being loaded.
    pub fills_rejected: u64,
    /// Answers given from a stale copy because the inner store failed (`stale_if_error`).
    pub stale_served: u64,
    /// Background refreshes that loaded a value ahead of its expiry (`refresh_ahead`).
    pub refreshes: u64,
    /// Invalidations that could not reach Redis yet and are being retried (only in
    /// [`Cache::stats`](crate::Cache::stats)); their keys are not served from the cache.
    pub pending_invalidations: u64,
    /// Failed invalidations that could not be kept for retry because too many were
    /// pending (only in [`Cache::stats`](crate::Cache::stats)).
    pub invalidations_dropped: u64,
}

impl CacheStats {
    /// `(hits + near_hits) / (hits + near_hits + misses)`: the share of reads that found
    /// a value, between 0 and 1; `None` before the first read.
    ///
    /// ```
    /// # use cacheward::Cache;
    /// let stats = Cache::memory().stats();
    /// assert_eq!(stats.hit_ratio(), None);
    /// ```
    pub fn hit_ratio(&self) -> Option<f64> {
        let found = self.hits + self.near_hits;
        let reads = found + self.misses;
        (reads > 0).then(|| found as f64 / reads as f64)
    }

    fn add(&mut self, o: &CacheStats) {
        self.hits += o.hits;
        self.near_hits += o.near_hits;
        self.misses += o.misses;
        self.errors += o.errors;
        self.timeouts += o.timeouts;
        self.sets += o.sets;
        self.deletes += o.deletes;
        self.decode_failures += o.decode_failures;
        self.short_circuited += o.short_circuited;
        self.breaker_openings += o.breaker_openings;
        self.lease_waits += o.lease_waits;
        self.fills_rejected += o.fills_rejected;
        self.stale_served += o.stale_served;
        self.refreshes += o.refreshes;
        self.pending_invalidations += o.pending_invalidations;
        self.invalidations_dropped += o.invalidations_dropped;
    }
}

impl serde::Serialize for CacheStats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("CacheStats", 17)?;
        s.serialize_field("hits", &self.hits)?;
        s.serialize_field("near_hits", &self.near_hits)?;
        s.serialize_field("misses", &self.misses)?;
        s.serialize_field("hit_ratio", &self.hit_ratio())?;
        s.serialize_field("errors", &self.errors)?;
        s.serialize_field("timeouts", &self.timeouts)?;
        s.serialize_field("sets", &self.sets)?;
        s.serialize_field("deletes", &self.deletes)?;
        s.serialize_field("decode_failures", &self.decode_failures)?;
        s.serialize_field("short_circuited", &self.short_circuited)?;
        s.serialize_field("breaker_openings", &self.breaker_openings)?;
        s.serialize_field("stale_served", &self.stale_served)?;
        s.serialize_field("refreshes", &self.refreshes)?;
        s.serialize_field("lease_waits", &self.lease_waits)?;
        s.serialize_field("fills_rejected", &self.fills_rejected)?;
        s.serialize_field("pending_invalidations", &self.pending_invalidations)?;
        s.serialize_field("invalidations_dropped", &self.invalidations_dropped)?;
        s.end()
    }
}

/// One label's counters. Aligned to a cache line so that two labels used by different
/// threads never share one.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    decode_failures: AtomicU64,
    short_circuited: AtomicU64,
    near_hits: AtomicU64,
    stale_served: AtomicU64,
    refreshes: AtomicU64,
    lease_waits: AtomicU64,
    fills_rejected: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            near_hits: self.near_hits.load(Relaxed),
            stale_served: self.stale_served.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            misses: self.misses.load(Relaxed),
            errors: self.errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            sets: self.sets.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            decode_failures: self.decode_failures.load(Relaxed),
            short_circuited: self.short_circuited.load(Relaxed),
            breaker_openings: 0,
            lease_waits: self.lease_waits.load(Relaxed),
            fills_rejected: self.fills_rejected.load(Relaxed),
            pending_invalidations: 0,
            invalidations_dropped: 0,
        }
    }

    pub(crate) fn near_hit(&self) {
        self.near_hits.fetch_add(1, Relaxed);
    }

    pub(crate) fn stale(&self) {
        self.stale_served.fetch_add(1, Relaxed);
    }

    pub(crate) fn refresh(&self) {
        self.refreshes.fetch_add(1, Relaxed);
    }

    pub(crate) fn lease_wait(&self) {
        self.lease_waits.fetch_add(1, Relaxed);
    }

    pub(crate) fn fill_rejected(&self) {
        self.fills_rejected.fetch_add(1, Relaxed);
    }

    /// Counts a failed operation (not a skipped one).
    pub(crate) fn failure(&self, err: &CacheError) {
        if matches!(err, CacheError::CircuitOpen) {
            self.short_circuited.fetch_add(1, Relaxed);
            return;
        }
        self.errors.fetch_add(1, Relaxed);
        if matches!(err, CacheError::Timeout(_)) {
            self.timeouts.fetch_add(1, Relaxed);
        }
    }

    /// Counts an error that is not a backend failure (a value that cannot be encoded).
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn hits(&self, n: u64) {
        if n > 0 {
            self.hits.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn misses(&self, n: u64) {
        if n > 0 {
            self.misses.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn sets(&self, n: u64) {
        self.sets.fetch_add(n, Relaxed);
    }

    pub(crate) fn deletes(&self, n: u64) {
        self.deletes.fetch_add(n, Relaxed);
    }

    /// A value read as a hit turned out undecodable: it is a miss after all.
    pub(crate) fn decode_failure(&self) {
        self.decode_failures.fetch_add(1, Relaxed);
        self.hits.fetch_sub(1, Relaxed);
        self.misses.fetch_add(1, Relaxed);
    }
}

/// Slots in a label table. A service has one label per key template plus a few;
/// labels beyond this share the [`OVERFLOW_LABEL`] slot.
const SLOTS: usize = 128;

/// The label under which operations are counted once a cache has seen more than
/// 127 distinct labels.
pub(crate) const OVERFLOW_LABEL: &str = "(other)";

pub(crate) struct LabelSlot {
    pub(crate) label: &'static str,
    pub(crate) counters: Counters,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::telemetry::LabelMetrics,
}

/// A fixed-size, insert-only, lock-free map from `&'static str` (by address) to counters.
pub(crate) struct LabelTable {
    slots: Box<[OnceLock<LabelSlot>]>,
    overflow: LabelSlot,
}

impl std::fmt::Debug for LabelTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelTable")
            .field(
                "labels",
                &self.slots.iter().filter(|s| s.get().is_some()).count(),
            )
            .finish()
    }
}

impl Default for LabelTable {
    fn default() -> Self {
        LabelTable {
            slots: (0..SLOTS).map(|_| OnceLock::new()).collect(),
            overflow: LabelSlot::new(OVERFLOW_LABEL),
        }
    }
}

impl LabelSlot {
    fn new(label: &'static str) -> Self {
        LabelSlot {
            label,
            counters: Counters::default(),
            #[cfg(feature = "metrics")]
            metrics: crate::telemetry::LabelMetrics::default(),
        }
    }
}

#[inline]
fn same(a: &'static str, b: &'static str) -> bool {
    std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
}

impl LabelTable {
    /// The slot for `label`, created on first use.
    #[inline]
    pub(crate) fn slot(&self, label: &'static str) -> &LabelSlot {
        let h = (label.as_ptr() as usize as u64 ^ (label.len() as u64).rotate_left(32))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let start = (h >> 57) as usize; // top 7 bits: 0..128
        for i in 0..SLOTS {
            let cell = &self.slots[(start + i) % SLOTS];
            match cell.get() {
                Some(s) if same(s.label, label) => return s,
                Some(_) => continue,
                None => {
                    let s = cell.get_or_init(|| LabelSlot::new(label));
                    if same(s.label, label) {
                        return s;
                    }
                    // Another label won this cell in a race: keep probing.
                }
            }
        }
        &self.overflow
    }

    /// Every label seen, merged by text (one label can live at two addresses when two
    /// crates hold the same literal), sorted by label.
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, CacheStats)> {
        let mut out: Vec<(&'static str, CacheStats)> = Vec::new();
        let all = self
            .slots
            .iter()
            .filter_map(OnceLock::get)
            .chain(std::iter::once(&self.overflow));
        for slot in all {
            let s = slot.counters.snapshot();
            if std::ptr::eq(slot, &self.overflow) && s == CacheStats::default() {
                continue;
            }
            match out.iter_mut().find(|(l, _)| *l == slot.label) {
                Some((_, acc)) => acc.add(&s),
                None => out.push((slot.label, s)),
            }
        }
        out.sort_by(|a, b| a.0.cmp(b.0));
        out
    }

    /// The sum over all labels.
    pub(crate) fn total(&self) -> CacheStats {
        let mut total = CacheStats::default();
        for slot in self.slots.iter().filter_map(OnceLock::get) {
            total.add(&slot.counters.snapshot());
        }
        total.add(&self.overflow.counters.snapshot());
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_get_their_own_counters() {
        let t = LabelTable::default();
        t.slot("a:<x>").counters.hits(1);
        t.slot("a:<x>").counters.hits(2);
        t.slot("b:<y>").counters.misses(1);
        let snap = t.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].0, "a:<x>");
        assert_eq!(snap[0].1.hits, 3);
        assert_eq!(snap[1].1.misses, 1);
        assert_eq!(t.total().hits, 3);
        assert_eq!(t.total().misses, 1);
    }

    #[test]
    fn one_label_at_two_addresses_is_merged() {
        let t = LabelTable::default();
        let a: &'static str = "same-label";
        let b: &'static str = Box::leak(String::from("same-label").into_boxed_str());
        t.slot(a).counters.hits(1);
        t.slot(b).counters.hits(1);
        assert_eq!(
            t.snapshot(),
            vec![(
                "same-label",
                CacheStats {
                    hits: 2,
                    ..Default::default()
                }
            )]
        );
    }

    #[test]
    fn too_many_labels_overflow_into_one_slot() {
        let t = LabelTable::default();
        for i in 0..200 {
            let l: &'static str = Box::leak(format!("label-{i}").into_boxed_str());
            t.slot(l).counters.sets(1);
        }
        let snap = t.snapshot();
        assert_eq!(snap.len(), SLOTS + 1);
        let overflow = snap.iter().find(|(l, _)| *l == OVERFLOW_LABEL).unwrap();
        assert_eq!(overflow.1.sets, 200 - SLOTS as u64);
        assert_eq!(t.total().sets, 200);
    }

    #[test]
    fn hit_ratio_and_serialization() {
        let s = CacheStats {
            hits: 3,
            misses: 1,
            sets: 1,
            ..Default::default()
        };
        assert_eq!(s.hit_ratio(), Some(0.75));
        assert_eq!(CacheStats::default().hit_ratio(), None);
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json["hits"], 3);
        assert_eq!(json["hit_ratio"], 0.75);
        assert_eq!(json["sets"], 1);
        assert_eq!(json.as_object().unwrap().len(), 17);
        assert!(serde_json::to_value(CacheStats::default()).unwrap()["hit_ratio"].is_null());
    }

    #[test]
    fn concurrent_first_use_of_many_labels() {
        let t = std::sync::Arc::new(LabelTable::default());
        let labels: Vec<&'static str> = (0..50)
            .map(|i| &*Box::leak(format!("l{i}").into_boxed_str()))
            .collect();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = t.clone();
                let labels = labels.clone();
                std::thread::spawn(move || {
                    for l in labels {
                        t.slot(l).counters.hits(1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let snap = t.snapshot();
        assert_eq!(snap.len(), 50);
        assert!(snap.iter().all(|(_, s)| s.hits == 4));
    }
}
