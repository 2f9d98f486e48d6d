//! The circuit breaker in front of every Redis-speaking store.
//!
//! * **Closed** (normal): every operation goes to Redis. Checking costs one atomic
//!   load. Each outage-type failure (timeout, lost connection, refused credentials)
//!   adds to a count of consecutive failures; any success resets it.
//! * **Open**: after `threshold` consecutive failures, operations skip Redis entirely
//!   (they are misses/no-ops) for `cool_down`.
//! * **Half-open**: after the cool-down, exactly one operation (the probe) goes
//!   through. Success closes the breaker; failure opens it for another cool-down.
//!
//! State and the time it refers to live in one `AtomicU64` (`nanos << 2 | state`), so
//! every transition is a single compare-and-swap and no lock is ever taken.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default number of consecutive failures that opens the breaker.
pub(crate) const DEFAULT_THRESHOLD: u32 = 5;
/// The default time the breaker stays open before it lets a probe through.
pub(crate) const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(1);

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const STATE_MASK: u64 = 3;

/// The state of a cache's circuit breaker, as shown by
/// [`CacheHealth::circuit`](crate::CacheHealth::circuit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Operations go to Redis.
    Closed,
    /// Operations skip Redis until the cool-down ends.
    Open,
    /// One probe operation is testing whether Redis is back.
    HalfOpen,
}

impl CircuitState {
    /// `"closed"`, `"open"` or `"half-open"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Breaker::admit`] decided for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Closed: go ahead.
    Normal,
    /// Half-open: go ahead as the single probe; report the outcome.
    Probe,
    /// Open (or a probe is already in flight): skip Redis.
    Rejected,
}

/// A state change worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Closed → open after this many consecutive failures.
    Opened { failures: u32 },
    /// Half-open → closed: the probe succeeded.
    Closed,
    /// Half-open → open: the probe failed.
    Reopened,
}

pub(crate) struct Breaker {
    word: AtomicU64,
    consecutive: AtomicU32,
    openings: AtomicU64,
    threshold: u32,
    cool_down_nanos: u64,
    /// A probe older than this is presumed lost (its future was dropped without
    /// reporting) and another one is let through.
    probe_timeout_nanos: u64,
    epoch: Instant,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &self.state())
            .field("threshold", &self.threshold)
            .field("cool_down", &Duration::from_nanos(self.cool_down_nanos))
            .finish()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos())
        .unwrap_or(u64::MAX >> 2)
        .min(u64::MAX >> 2)
}

impl Breaker {
    /// `threshold` consecutive failures open the breaker for `cool_down`. A probe that
    /// never reports back is replaced after `probe_timeout`.
    pub(crate) fn new(threshold: u32, cool_down: Duration, probe_timeout: Duration) -> Self {
        Breaker {
            word: AtomicU64::new(CLOSED),
            consecutive: AtomicU32::new(0),
            openings: AtomicU64::new(0),
            threshold: threshold.max(1),
            cool_down_nanos: nanos(cool_down),
            probe_timeout_nanos: nanos(probe_timeout).max(1),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    /// The current state.
    pub(crate) fn state(&self) -> CircuitState {
        match self.word.load(Ordering::Acquire) & STATE_MASK {
            CLOSED => CircuitState::Closed,
            OPEN => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    /// How many times the breaker went from closed to open.
    pub(crate) fn openings(&self) -> u64 {
        self.openings.load(Ordering::Relaxed)
    }

    /// The configured threshold and cool-down.
    pub(crate) fn settings(&self) -> (u32, Duration) {
        (self.threshold, Duration::from_nanos(self.cool_down_nanos))
    }

    /// Decides whether one operation may go to Redis. When closed this is one load.
    #[inline]
    pub(crate) fn admit(&self) -> Admission {
        let w = self.word.load(Ordering::Acquire);
        if w & STATE_MASK == CLOSED {
            return Admission::Normal;
        }
        self.admit_slow(w, self.now())
    }

    #[cold]
    fn admit_slow(&self, w: u64, now: u64) -> Admission {
        let since = w >> 2;
        let due = match w & STATE_MASK {
            OPEN => now >= since,
            HALF_OPEN => now.saturating_sub(since) >= self.probe_timeout_nanos,
            _ => return Admission::Normal,
        };
        if !due {
            return Admission::Rejected;
        }
        let probing = (now << 2) | HALF_OPEN;
        match self
            .word
            .compare_exchange(w, probing, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admission::Probe,
            Err(_) => Admission::Rejected,
        }
    }

    /// Reports a success. Closed: resets the failure count (without writing when it is
    /// already zero, to keep the hit path free of shared writes).
    #[inline]
    pub(crate) fn on_success(&self, admission: Admission) -> Option<Transition> {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
        if admission == Admission::Probe {
            let w = self.word.load(Ordering::Acquire);
            if w & STATE_MASK == HALF_OPEN
                && self
                    .word
                    .compare_exchange(w, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return Some(Transition::Closed);
            }
        }
        None
    }

    /// Reports an outage-type failure.
    pub(crate) fn on_failure(&self, admission: Admission) -> Option<Transition> {
        self.on_failure_at(admission, self.now())
    }

    fn on_failure_at(&self, admission: Admission, now: u64) -> Option<Transition> {
        let open_word = ((now.saturating_add(self.cool_down_nanos)) << 2) | OPEN;
        match admission {
            Admission::Probe => {
                let w = self.word.load(Ordering::Acquire);
                if w & STATE_MASK == HALF_OPEN
                    && self
                        .word
                        .compare_exchange(w, open_word, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    return Some(Transition::Reopened);
                }
                None
            }
            Admission::Normal => {
                let failures = self
                    .consecutive
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1);
                if failures >= self.threshold
                    && self
                        .word
                        .compare_exchange(CLOSED, open_word, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    self.consecutive.store(0, Ordering::Relaxed);
                    self.openings.fetch_add(1, Ordering::Relaxed);
                    return Some(Transition::Opened { failures });
                }
                None
            }
            Admission::Rejected => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn breaker() -> Breaker {
        Breaker::new(3, Duration::from_millis(100), Duration::from_millis(500))
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = breaker();
        assert_eq!(b.admit(), Admission::Normal);
        assert_eq!(b.on_failure_at(Admission::Normal, 0), None);
        assert_eq!(b.on_failure_at(Admission::Normal, 0), None);
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(
            b.on_failure_at(Admission::Normal, 0),
            Some(Transition::Opened { failures: 3 })
        );
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.openings(), 1);
        // More failures of operations admitted before it opened change nothing.
        assert_eq!(b.on_failure_at(Admission::Normal, 0), None);
        assert_eq!(b.openings(), 1);
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker();
        b.on_failure_at(Admission::Normal, 0);
        b.on_failure_at(Admission::Normal, 0);
        assert_eq!(b.on_success(Admission::Normal), None);
        b.on_failure_at(Admission::Normal, 0);
        b.on_failure_at(Admission::Normal, 0);
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn rejects_while_open_then_lets_exactly_one_probe_through() {
        let b = breaker();
        for _ in 0..3 {
            b.on_failure_at(Admission::Normal, 10 * MS);
        }
        let w = b.word.load(Ordering::Acquire);
        // Before the cool-down ends (110 ms): rejected.
        assert_eq!(b.admit_slow(w, 50 * MS), Admission::Rejected);
        assert_eq!(b.admit_slow(w, 109 * MS), Admission::Rejected);
        // After it: one probe, everybody else rejected.
        assert_eq!(b.admit_slow(w, 111 * MS), Admission::Probe);
        assert_eq!(b.state(), CircuitState::HalfOpen);
        let w = b.word.load(Ordering::Acquire);
        assert_eq!(b.admit_slow(w, 112 * MS), Admission::Rejected);
        // A stale word (read before the probe started) cannot start a second probe.
        let stale = ((110 * MS) << 2) | OPEN;
        assert_eq!(b.admit_slow(stale, 113 * MS), Admission::Rejected);
    }

    #[test]
    fn probe_success_closes() {
        let b = breaker();
        for _ in 0..3 {
            b.on_failure_at(Admission::Normal, 0);
        }
        let w = b.word.load(Ordering::Acquire);
        assert_eq!(b.admit_slow(w, 200 * MS), Admission::Probe);
        assert_eq!(b.on_success(Admission::Probe), Some(Transition::Closed));
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!(b.admit(), Admission::Normal);
        // It takes a full threshold of new failures to open again.
        b.on_failure_at(Admission::Normal, 0);
        b.on_failure_at(Admission::Normal, 0);
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[test]
    fn probe_failure_reopens_for_another_cool_down() {
        let b = breaker();
        for _ in 0..3 {
            b.on_failure_at(Admission::Normal, 0);
        }
        let w = b.word.load(Ordering::Acquire);
        assert_eq!(b.admit_slow(w, 150 * MS), Admission::Probe);
        assert_eq!(
            b.on_failure_at(Admission::Probe, 160 * MS),
            Some(Transition::Reopened)
        );
        assert_eq!(b.state(), CircuitState::Open);
        let w = b.word.load(Ordering::Acquire);
        assert_eq!(b.admit_slow(w, 200 * MS), Admission::Rejected);
        assert_eq!(b.admit_slow(w, 261 * MS), Admission::Probe);
        // Reopening is not a new opening.
        assert_eq!(b.openings(), 1);
    }

    #[test]
    fn a_lost_probe_is_replaced_after_the_probe_timeout() {
        let b = breaker();
        for _ in 0..3 {
            b.on_failure_at(Admission::Normal, 0);
        }
        let w = b.word.load(Ordering::Acquire);
        assert_eq!(b.admit_slow(w, 100 * MS), Admission::Probe);
        let w = b.word.load(Ordering::Acquire);
        assert_eq!(b.admit_slow(w, 599 * MS), Admission::Rejected);
        assert_eq!(b.admit_slow(w, 601 * MS), Admission::Probe);
    }

    #[test]
    fn concurrent_admission_gives_one_probe() {
        let b = std::sync::Arc::new(Breaker::new(1, Duration::ZERO, Duration::from_secs(60)));
        b.on_failure(Admission::Normal);
        assert_eq!(b.state(), CircuitState::Open);
        let probes: usize = (0..8)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    (0..1000).filter(|_| b.admit() == Admission::Probe).count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(probes, 1);
    }

    #[test]
    fn real_clock_cool_down() {
        let b = Breaker::new(1, Duration::from_millis(30), Duration::from_secs(1));
        assert_eq!(
            b.on_failure(Admission::Normal),
            Some(Transition::Opened { failures: 1 })
        );
        assert_eq!(b.admit(), Admission::Rejected);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.admit(), Admission::Probe);
        assert_eq!(b.on_success(Admission::Probe), Some(Transition::Closed));
    }
}
