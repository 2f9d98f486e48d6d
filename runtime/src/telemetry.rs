//! Logs and metrics for cache operations.
//!
//! * Warnings about failed operations are rate-limited per operation kind: at most one
//!   per [`LOG_INTERVAL`], carrying the number of similar warnings suppressed since the
//!   previous one, so an outage writes a few lines instead of one per request.
//! * With the `metrics` feature, the cache's metrics go through the `metrics` facade:
//!   `cache.operations.total{operation,result,backend,cache}` (counter),
//!   `cache.operation.duration{operation,result,backend,cache}` (histogram, seconds) and
//!   `cache.errors.total{operation,backend,error_type,cache}` (counter). `cache` is the
//!   label (a key template, a rate limiter name or `direct`), never a raw key. Metric
//!   handles are registered once per label and cached, so the hot path does not
//!   allocate: install your recorder before the first cache operation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most one warning per operation kind per this interval.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The kind of a cache operation, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Get = 0,
    GetMany = 1,
    Set = 2,
    SetMany = 3,
    Del = 4,
    Decode = 5,
    Encode = 6,
    /// Taking, filling or releasing a lease.
    Lease = 7,
    /// Answering from a stale copy.
    Stale = 8,
}

const OPS: usize = 9;

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::GetMany => "get_many",
            Op::Set => "set",
            Op::SetMany => "set_many",
            Op::Del => "del",
            Op::Decode => "decode",
            Op::Encode => "encode",
            Op::Lease => "lease",
            Op::Stale => "stale",
        }
    }
}

/// Rate limits warnings per [`Op`].
#[derive(Debug)]
pub(crate) struct LogLimiter {
    epoch: Instant,
    /// Per op: nanos since `epoch` of the last emitted warning, plus one (0 = never).
    last: [AtomicU64; OPS],
    suppressed: [AtomicU64; OPS],
    interval_nanos: u64,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(LOG_INTERVAL)
    }
}

impl LogLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        LogLimiter {
            epoch: Instant::now(),
            last: Default::default(),
            suppressed: Default::default(),
            interval_nanos: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// `Some(n)` when a warning for `op` may be written now, `n` being how many were
    /// suppressed since the last one; `None` (and one more suppressed) otherwise.
    pub(crate) fn allow(&self, op: Op) -> Option<u64> {
        let i = op as usize;
        let now = u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        let last = self.last[i].load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= self.interval_nanos)
            && self.last[i]
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed[i].swap(0, Ordering::Relaxed));
        }
        self.suppressed[i].fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// The result of an operation, for the `result` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) enum Outcome {
    Hit = 0,
    Miss = 1,
    Ok = 2,
    Error = 3,
    Timeout = 4,
    Skipped = 5,
    /// Answered by the near cache.
    NearHit = 6,
}

#[cfg(feature = "metrics")]
mod handles {
    use std::sync::OnceLock;

    use super::{OPS, Op, Outcome};
    use crate::error::CacheError;

    const OUTCOMES: usize = 7;
    const ERROR_KINDS: usize = 9;

    impl Outcome {
        fn as_str(self) -> &'static str {
            match self {
                Outcome::Hit => "hit",
                Outcome::Miss => "miss",
                Outcome::Ok => "ok",
                Outcome::Error => "error",
                Outcome::Timeout => "timeout",
                Outcome::Skipped => "skipped",
                Outcome::NearHit => "near_hit",
            }
        }
    }

    fn error_index(kind: &str) -> usize {
        match kind {
            "timeout" => 0,
            "unavailable" => 1,
            "auth" => 2,
            "redis" => 3,
            "unsupported" => 4,
            "misconfigured" => 5,
            "decode" => 6,
            "encode" => 7,
            _ => 8,
        }
    }

    /// Metric handles of one label, registered on first use.
    #[derive(Default)]
    pub(crate) struct LabelMetrics {
        ops: [[OnceLock<(::metrics::Counter, ::metrics::Histogram)>; OUTCOMES]; OPS],
        errors: [[OnceLock<::metrics::Counter>; ERROR_KINDS]; OPS],
    }

    impl LabelMetrics {
        pub(crate) fn operation(
            &self,
            label: &'static str,
            backend: &'static str,
            op: Op,
            outcome: Outcome,
            elapsed: std::time::Duration,
        ) {
            let (counter, histogram) = self.ops[op as usize][outcome as usize].get_or_init(|| {
                let labels = [
                    ("operation", op.as_str()),
                    ("result", outcome.as_str()),
                    ("backend", backend),
                    ("cache", label),
                ];
                (
                    ::metrics::counter!("cache.operations.total", &labels),
                    ::metrics::histogram!("cache.operation.duration", &labels),
                )
            });
            counter.increment(1);
            histogram.record(elapsed.as_secs_f64());
        }

        pub(crate) fn error(
            &self,
            label: &'static str,
            backend: &'static str,
            op: Op,
            kind: &'static str,
        ) {
            self.errors[op as usize][error_index(kind)]
                .get_or_init(|| {
                    let labels = [
                        ("operation", op.as_str()),
                        ("backend", backend),
                        ("error_type", kind),
                        ("cache", label),
                    ];
                    ::metrics::counter!("cache.errors.total", &labels)
                })
                .increment(1);
        }

        pub(crate) fn failure(
            &self,
            label: &'static str,
            backend: &'static str,
            op: Op,
            err: &CacheError,
        ) {
            if !matches!(err, CacheError::CircuitOpen) {
                self.error(label, backend, op, err.kind_str());
            }
        }
    }
}

#[cfg(feature = "metrics")]
pub(crate) use handles::LabelMetrics;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_with_a_count_of_the_rest() {
        let l = LogLimiter::new(Duration::from_millis(50));
        assert_eq!(l.allow(Op::Get), Some(0));
        assert_eq!(l.allow(Op::Get), None);
        assert_eq!(l.allow(Op::Get), None);
        // Other kinds are limited separately.
        assert_eq!(l.allow(Op::Set), Some(0));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(l.allow(Op::Get), Some(2));
        assert_eq!(l.allow(Op::Get), None);
    }
}
