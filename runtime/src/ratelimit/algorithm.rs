//! The three algorithms and their parameters.

use std::sync::LazyLock;
use std::time::Duration;

/// The largest limit, capacity, refill or cost the limiter works with. Counts live in
/// Lua numbers (doubles) inside the scripts, which are exact up to 2^53; larger
/// values are clamped to this.
pub(crate) const MAX_UNITS: u64 = 1 << 50;

/// The longest window or refill period (about 35 years); longer ones are clamped.
pub(crate) const MAX_PERIOD_MS: u64 = 1 << 40;

/// How tokens come back into a [token bucket](Algorithm::token_bucket): `tokens`
/// tokens every `every`, in one batch.
///
/// ```
/// use std::time::Duration;
/// use cacheward::ratelimit::Refill;
///
/// // 10 tokens every minute, i.e. one token per 6 s on average, in batches of 10.
/// let slow = Refill::new(10, Duration::from_secs(60));
/// // 5 tokens per second, in batches of 5.
/// assert_eq!(Refill::per_second(5), Refill::new(5, Duration::from_secs(1)));
/// // A `(tokens, period)` pair converts too.
/// assert_eq!(Refill::from((10, Duration::from_secs(60))), slow);
/// ```
///
/// For a smooth rate, use small batches: `Refill::new(1, Duration::from_millis(100))`
/// adds one token every 100 ms (10 per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Refill {
    tokens: u64,
    every: Duration,
}

impl Refill {
    /// `tokens` tokens added every `every`. `tokens` is at least 1 and `every` at
    /// least 1 ms (smaller values are raised to those).
    pub fn new(tokens: u64, every: Duration) -> Refill {
        Refill {
            tokens: tokens.clamp(1, MAX_UNITS),
            every: clamp_period(every),
        }
    }

    /// `tokens` tokens every second.
    pub fn per_second(tokens: u64) -> Refill {
        Refill::new(tokens, Duration::from_secs(1))
    }

    /// `tokens` tokens every minute.
    pub fn per_minute(tokens: u64) -> Refill {
        Refill::new(tokens, Duration::from_secs(60))
    }

    /// Tokens added per batch.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// Time between two batches.
    pub fn every(&self) -> Duration {
        self.every
    }
}

impl From<(u64, Duration)> for Refill {
    fn from((tokens, every): (u64, Duration)) -> Refill {
        Refill::new(tokens, every)
    }
}

/// How a [`RateLimiter`](super::RateLimiter) counts. See `docs/rate-limiting.md` for
/// which to choose and the exact guarantees; in short:
///
/// * [`fixed_window`](Algorithm::fixed_window): at most `limit` units per window,
///   windows aligned to the server clock; cheapest, but allows a burst of `2 × limit`
///   across a window boundary.
/// * [`sliding_window`](Algorithm::sliding_window): weights the previous window's
///   count, which smooths the boundary burst; at most `limit` per aligned window and
///   at most `2 × limit − 1` in any interval of one window's length.
/// * [`token_bucket`](Algorithm::token_bucket): bursts up to `capacity`, then the
///   refill rate; at most `capacity + refill × elapsed / period` over any interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Algorithm {
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    FixedWindow { limit: u64, window: Duration },
    SlidingWindow { limit: u64, window: Duration },
    TokenBucket { capacity: u64, refill: Refill },
}

fn clamp_period(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms.clamp(1, MAX_PERIOD_MS))
}

fn ms(d: Duration) -> i64 {
    // Periods are clamped to MAX_PERIOD_MS on construction, so this always fits.
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn units(n: u64) -> i64 {
    i64::try_from(n.min(MAX_UNITS)).unwrap_or(i64::MAX)
}

impl Algorithm {
    /// At most `limit` units per window of length `window`; windows start at whole
    /// multiples of `window` since the Unix epoch, on the Redis server's clock (a
    /// 60 s window starts at every whole minute). `window` is whole milliseconds,
    /// at least 1 ms.
    pub fn fixed_window(limit: u64, window: Duration) -> Algorithm {
        Algorithm {
            kind: Kind::FixedWindow {
                limit: limit.min(MAX_UNITS),
                window: clamp_period(window),
            },
        }
    }

    /// The two-window weighted approximation of a sliding window: a request is
    /// allowed when `previous × (1 − elapsed / window) + current + cost ≤ limit`,
    /// where `current` and `previous` are the counts of the current and the previous
    /// aligned window. Exact integer arithmetic while `limit × window_ms < 2^53`.
    pub fn sliding_window(limit: u64, window: Duration) -> Algorithm {
        Algorithm {
            kind: Kind::SlidingWindow {
                limit: limit.min(MAX_UNITS),
                window: clamp_period(window),
            },
        }
    }

    /// A bucket of `capacity` tokens, full at first; each unit of cost takes a token
    /// and `refill` puts tokens back in batches (e.g. `Refill::per_second(10)` or
    /// `(10, Duration::from_secs(60))`), never above `capacity`.
    pub fn token_bucket(capacity: u64, refill: impl Into<Refill>) -> Algorithm {
        Algorithm {
            kind: Kind::TokenBucket {
                capacity: capacity.min(MAX_UNITS),
                refill: refill.into(),
            },
        }
    }

    /// The most units a fresh identifier may use at once: the window limit or the
    /// bucket capacity. This is what `RateLimit-Limit` headers carry.
    pub fn limit(&self) -> u64 {
        match self.kind {
            Kind::FixedWindow { limit, .. } | Kind::SlidingWindow { limit, .. } => limit,
            Kind::TokenBucket { capacity, .. } => capacity,
        }
    }

    /// A short name: `fixed_window`, `sliding_window` or `token_bucket`.
    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::FixedWindow { .. } => "fixed_window",
            Kind::SlidingWindow { .. } => "sliding_window",
            Kind::TokenBucket { .. } => "token_bucket",
        }
    }

    /// The script that implements this algorithm.
    pub(crate) fn script(&self) -> &'static redis::Script {
        static FIXED: LazyLock<redis::Script> =
            LazyLock::new(|| redis::Script::new(include_str!("lua/fixed_window.lua")));
        static SLIDING: LazyLock<redis::Script> =
            LazyLock::new(|| redis::Script::new(include_str!("lua/sliding_window.lua")));
        static TOKEN: LazyLock<redis::Script> =
            LazyLock::new(|| redis::Script::new(include_str!("lua/token_bucket.lua")));
        match self.kind {
            Kind::FixedWindow { .. } => &FIXED,
            Kind::SlidingWindow { .. } => &SLIDING,
            Kind::TokenBucket { .. } => &TOKEN,
        }
    }

    /// The script's ARGV: cost, peek flag, then the algorithm's parameters.
    pub(crate) fn script_args(&self, cost: u64, peek: bool) -> Vec<i64> {
        let mut args = vec![units(cost), i64::from(peek)];
        match self.kind {
            Kind::FixedWindow { limit, window } | Kind::SlidingWindow { limit, window } => {
                args.extend([units(limit), ms(window)]);
            }
            Kind::TokenBucket { capacity, refill } => {
                args.extend([units(capacity), units(refill.tokens), ms(refill.every)]);
            }
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_clamped_not_rejected() {
        let a = Algorithm::fixed_window(10, Duration::ZERO);
        assert_eq!(a.script_args(1, false), vec![1, 0, 10, 1]);
        let a = Algorithm::sliding_window(u64::MAX, Duration::from_micros(1500));
        assert_eq!(a.script_args(u64::MAX, true), vec![1 << 50, 1, 1 << 50, 1]);
        let a = Algorithm::token_bucket(5, Refill::new(0, Duration::from_secs(u64::MAX)));
        assert_eq!(a.script_args(2, false), vec![2, 0, 5, 1, 1 << 40]);
    }

    #[test]
    fn refill_forms_agree() {
        assert_eq!(
            Algorithm::token_bucket(100, (10, Duration::from_secs(60))),
            Algorithm::token_bucket(100, Refill::per_minute(10))
        );
        let r = Refill::per_second(3);
        assert_eq!((r.tokens(), r.every()), (3, Duration::from_secs(1)));
    }

    #[test]
    fn limit_and_name() {
        let w = Duration::from_secs(1);
        assert_eq!(Algorithm::fixed_window(7, w).limit(), 7);
        assert_eq!(Algorithm::sliding_window(8, w).name(), "sliding_window");
        assert_eq!(Algorithm::token_bucket(9, Refill::per_second(1)).limit(), 9);
        assert_eq!(
            Algorithm::token_bucket(9, Refill::per_second(1)).name(),
            "token_bucket"
        );
    }

    #[test]
    fn each_algorithm_has_its_own_script() {
        let w = Duration::from_secs(1);
        let hashes = [
            Algorithm::fixed_window(1, w).script().get_hash().to_owned(),
            Algorithm::sliding_window(1, w)
                .script()
                .get_hash()
                .to_owned(),
            Algorithm::token_bucket(1, Refill::per_second(1))
                .script()
                .get_hash()
                .to_owned(),
        ];
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[1], hashes[2]);
        assert_ne!(hashes[0], hashes[2]);
    }
}
