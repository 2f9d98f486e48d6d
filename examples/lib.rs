//! Shared pieces of the cacheward examples.
