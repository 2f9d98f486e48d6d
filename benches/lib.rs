//! Shared pieces of the cacheward benchmarks.
