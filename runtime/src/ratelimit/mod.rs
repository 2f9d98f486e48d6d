//! Redis rate limiting that fails open.
//!
//! SKELETON: owned by the rate limiter work (issue 4).
