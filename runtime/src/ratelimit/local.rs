//! The single-process implementation of the three algorithms, for a limiter on
//! [`Cache::memory`](crate::Cache::memory).
//!
//! Each function is a line-by-line port of its Lua script (`lua/*.lua`), with the same
//! state, the same arithmetic (exact, in `i128`, where the scripts use doubles) and the
//! same reply `(allowed, remaining, reset_after_ms)`. The clock is the system clock in
//! milliseconds since the Unix epoch, so windows are aligned as they are on Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::algorithm::{Algorithm, Kind};
use super::decision::Decision;

/// Sweep expired identifiers once the map holds this many (and then every time it has
/// doubled since the last sweep), so memory follows the number of active identifiers.
const SWEEP_AT: usize = 1024;

/// One identifier's state: the fields of the script's hash, and when its key would expire.
#[derive(Debug, Clone, Copy)]
struct Entry {
    a: i128,
    b: i128,
    c: i128,
    expires_at: i128,
}

/// The state of every identifier of one limiter (and its clones).
#[derive(Debug)]
pub(crate) struct LocalState {
    entries: Mutex<Entries>,
}

#[derive(Debug)]
struct Entries {
    map: HashMap<String, Entry>,
    sweep_at: usize,
}

impl Default for LocalState {
    fn default() -> Self {
        LocalState {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
        }
    }
}

fn now_ms() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i128)
}

fn ms(d: Duration) -> i128 {
    d.as_millis() as i128
}

/// A reply as the scripts give it.
struct Reply {
    allowed: bool,
    remaining: i128,
    reset_ms: i128,
}

impl Reply {
    fn new(allowed: bool, remaining: i128, reset_ms: i128) -> Reply {
        Reply {
            allowed,
            remaining,
            reset_ms,
        }
    }

    fn decision(self) -> Decision {
        Decision {
            allowed: self.allowed,
            remaining: u64::try_from(self.remaining.max(0)).unwrap_or(u64::MAX),
            reset_after: Duration::from_millis(
                u64::try_from(self.reset_ms.max(0)).unwrap_or(u64::MAX),
            ),
            degraded: false,
        }
    }
}

impl LocalState {
    /// Runs `algorithm` for `key` now, as the script would on Redis.
    pub(crate) fn check(&self, key: &str, algorithm: Algorithm, cost: u64, peek: bool) -> Decision {
        self.check_at(key, algorithm, cost, peek, now_ms())
    }

    pub(crate) fn check_at(
        &self,
        key: &str,
        algorithm: Algorithm,
        cost: u64,
        peek: bool,
        now: i128,
    ) -> Decision {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let current = entries.map.get(key).copied().filter(|e| e.expires_at > now);
        let cost = i128::from(cost);
        let (reply, write) = match algorithm.kind {
            Kind::FixedWindow { limit, window } => {
                fixed_window(current, now, cost, peek, i128::from(limit), ms(window))
            }
            Kind::SlidingWindow { limit, window } => {
                sliding_window(current, now, cost, peek, i128::from(limit), ms(window))
            }
            Kind::TokenBucket { capacity, refill } => token_bucket(
                current,
                now,
                cost,
                peek,
                i128::from(capacity),
                i128::from(refill.tokens()),
                ms(refill.every()),
            ),
        };
        if let Some(entry) = write {
            entries.map.insert(key.to_owned(), entry);
            if entries.map.len() >= entries.sweep_at {
                entries.map.retain(|_, e| e.expires_at > now);
                entries.sweep_at = (entries.map.len() * 2).max(SWEEP_AT);
            }
        }
        reply.decision()
    }

    /// Forgets `key`.
    pub(crate) fn reset(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.map.remove(key);
    }
}

/// `fixed_window.lua`. State: `a` = window index, `b` = units used in it.
fn fixed_window(
    state: Option<Entry>,
    now: i128,
    cost: i128,
    peek: bool,
    limit: i128,
    window: i128,
) -> (Reply, Option<Entry>) {
    let win = now / window;
    let mut reset = (win + 1) * window - now;
    let mut used = match state {
        Some(e) if e.a == win => e.b,
        _ => 0,
    };
    if used + cost > limit {
        return (Reply::new(false, (limit - used).max(0), reset), None);
    }
    let mut write = None;
    if !peek && cost > 0 {
        used += cost;
        write = Some(Entry {
            a: win,
            b: used,
            c: 0,
            expires_at: now + reset,
        });
    }
    if used == 0 {
        reset = 0;
    }
    (Reply::new(true, limit - used, reset), write)
}

/// `sliding_window.lua`. State: `a` = current window index, `b` = units used in it,
/// `c` = units used in the window before.
fn sliding_window(
    state: Option<Entry>,
    now: i128,
    cost: i128,
    peek: bool,
    limit: i128,
    window: i128,
) -> (Reply, Option<Entry>) {
    let win = now / window;
    let elapsed = now - win * window;
    let (mut cur, prev) = match state {
        Some(e) if e.a == win => (e.b, e.c),
        Some(e) if e.a == win - 1 => (0, e.b),
        _ => (0, 0),
    };
    let capacity = limit * window;
    let mut weighted = prev * (window - elapsed) + cur * window;
    let allowed = weighted + cost * window <= capacity;
    let mut write = None;
    if allowed && !peek && cost > 0 {
        cur += cost;
        weighted += cost * window;
        write = Some(Entry {
            a: win,
            b: cur,
            c: prev,
            expires_at: now + 2 * window - elapsed,
        });
    }
    let remaining = ((capacity - weighted) / window).max(0);
    let full = if cur > 0 {
        2 * window - elapsed
    } else if prev > 0 {
        window - elapsed
    } else {
        0
    };
    if allowed {
        return (Reply::new(true, remaining, full), write);
    }
    if cost > limit {
        return (Reply::new(false, remaining, full), None);
    }
    if cur + cost <= limit {
        // Fits in this window once the previous window's weight has dropped enough.
        let e = window - (limit - cur - cost) * window / prev;
        return (Reply::new(false, remaining, e - elapsed), None);
    }
    // Only in the next window, where this window's count becomes the previous one.
    let g = window - (limit - cost) * window / cur;
    (Reply::new(false, remaining, window - elapsed + g), None)
}

/// `token_bucket.lua`. State: `a` = tokens, `b` = time of the last refill (ms).
fn token_bucket(
    state: Option<Entry>,
    now: i128,
    cost: i128,
    peek: bool,
    capacity: i128,
    refill: i128,
    period: i128,
) -> (Reply, Option<Entry>) {
    let (mut tokens, mut last) = match state {
        None => (capacity, now),
        Some(e) if now < e.b => (e.a, now),
        Some(e) => {
            let n = (now - e.b) / period;
            (e.a + n * refill, e.b + n * period)
        }
    };
    if tokens >= capacity {
        tokens = capacity;
        last = now;
    }
    let time_to = |tokens: i128, target: i128| {
        if tokens >= target {
            0
        } else {
            last + (target - tokens + refill - 1) / refill * period - now
        }
    };
    if tokens >= cost {
        let mut write = None;
        if !peek && cost > 0 {
            tokens -= cost;
            write = Some(Entry {
                a: tokens,
                b: last,
                c: 0,
                expires_at: now + time_to(tokens, capacity).max(1),
            });
        }
        return (Reply::new(true, tokens, time_to(tokens, capacity)), write);
    }
    if cost > capacity {
        return (Reply::new(false, tokens, time_to(tokens, capacity)), None);
    }
    (Reply::new(false, tokens, time_to(tokens, cost)), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Refill;

    const T0: i128 = 1_700_000_000_000; // a whole second, and a whole minute

    fn d(allowed: bool, remaining: u64, reset_ms: u64) -> Decision {
        Decision {
            allowed,
            remaining,
            reset_after: Duration::from_millis(reset_ms),
            degraded: false,
        }
    }

    #[test]
    fn fixed_window_counts_per_aligned_window_and_rejections_take_nothing() {
        let s = LocalState::default();
        let a = Algorithm::fixed_window(3, Duration::from_secs(1));
        assert_eq!(s.check_at("k", a, 1, false, T0 + 200), d(true, 2, 800));
        assert_eq!(s.check_at("k", a, 2, false, T0 + 300), d(true, 0, 700));
        assert_eq!(s.check_at("k", a, 1, false, T0 + 400), d(false, 0, 600));
        assert_eq!(s.check_at("k", a, 1, true, T0 + 400), d(false, 0, 600));
        // Another identifier has its own count.
        assert_eq!(s.check_at("j", a, 1, false, T0 + 400), d(true, 2, 600));
        // The next window starts empty.
        assert_eq!(s.check_at("k", a, 1, false, T0 + 1000), d(true, 2, 1000));
        s.reset("k");
        assert_eq!(s.check_at("k", a, 3, false, T0 + 1001), d(true, 0, 999));
    }

    #[test]
    fn sliding_window_weights_the_previous_window() {
        let s = LocalState::default();
        let a = Algorithm::sliding_window(10, Duration::from_secs(1));
        assert!(s.check_at("k", a, 10, false, T0 + 900).allowed);
        // 100 ms into the next window, 90% of the previous 10 still count: 1 left.
        assert_eq!(s.check_at("k", a, 1, true, T0 + 1100), d(true, 1, 900));
        assert!(s.check_at("k", a, 1, false, T0 + 1100).allowed);
        let rejected = s.check_at("k", a, 1, false, T0 + 1100);
        assert!(!rejected.allowed);
        // Allowed again once the previous window's weight dropped by one unit.
        let wait = rejected.reset_after.as_millis() as i128;
        assert!(!s.check_at("k", a, 1, false, T0 + 1100 + wait - 1).allowed);
        assert!(s.check_at("k", a, 1, false, T0 + 1100 + wait).allowed);
        // A cost above the limit is never allowed.
        assert!(!s.check_at("z", a, 11, false, T0).allowed);
    }

    #[test]
    fn token_bucket_bursts_then_refills_in_batches() {
        let s = LocalState::default();
        let a = Algorithm::token_bucket(5, Refill::new(2, Duration::from_secs(1)));
        assert_eq!(s.check_at("k", a, 5, false, T0), d(true, 0, 3000));
        assert_eq!(s.check_at("k", a, 1, false, T0 + 10), d(false, 0, 990));
        assert_eq!(s.check_at("k", a, 2, false, T0 + 1000), d(true, 0, 3000));
        assert_eq!(s.check_at("k", a, 1, true, T0 + 3000), d(true, 4, 1000));
        // After the key's expiry the bucket is full again.
        assert_eq!(s.check_at("k", a, 1, true, T0 + 10_000), d(true, 5, 0));
    }

    #[test]
    fn expired_identifiers_are_swept() {
        let s = LocalState::default();
        let a = Algorithm::fixed_window(1, Duration::from_secs(1));
        for i in 0..SWEEP_AT - 1 {
            s.check_at(&format!("old-{i}"), a, 1, false, T0);
        }
        s.check_at("new", a, 1, false, T0 + 5000);
        assert_eq!(s.entries.lock().unwrap().map.len(), 1);
    }
}
