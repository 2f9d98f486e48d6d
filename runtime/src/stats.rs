//! Counters behind [`Cache::stats`](crate::Cache::stats).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::error::CacheError;

/// A snapshot of a cache's counters since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing (errors and undecodable values count here too).
    pub misses: u64,
    /// Operations that failed (including timeouts).
    pub errors: u64,
    /// Operations that did not finish within the deadline.
    pub timeouts: u64,
    /// Successful writes.
    pub sets: u64,
    /// Successful deletes.
    pub deletes: u64,
    /// Values that could not be decoded (and were deleted).
    pub decode_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    decode_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            errors: self.errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            sets: self.sets.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            decode_failures: self.decode_failures.load(Relaxed),
        }
    }

    pub(crate) fn record_error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    fn record_failure(&self, err: &CacheError) {
        self.errors.fetch_add(1, Relaxed);
        if matches!(err, CacheError::Timeout(_)) {
            self.timeouts.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn record_decode_failure(&self) {
        self.decode_failures.fetch_add(1, Relaxed);
        // The read was counted as a hit when the bytes arrived; it is really a miss.
        self.hits.fetch_sub(1, Relaxed);
        self.misses.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_get<T>(&self, result: &Result<Option<T>, CacheError>) {
        match result {
            Ok(Some(_)) => self.hits.fetch_add(1, Relaxed),
            Ok(None) => self.misses.fetch_add(1, Relaxed),
            Err(e) => {
                self.record_failure(e);
                self.misses.fetch_add(1, Relaxed)
            }
        };
    }

    pub(crate) fn record_set(&self, result: &Result<(), CacheError>) {
        match result {
            Ok(()) => {
                self.sets.fetch_add(1, Relaxed);
            }
            Err(e) => self.record_failure(e),
        }
    }

    pub(crate) fn record_del(&self, result: &Result<(), CacheError>) {
        match result {
            Ok(()) => {
                self.deletes.fetch_add(1, Relaxed);
            }
            Err(e) => self.record_failure(e),
        }
    }
}
