//! What a check answers, and how a script's reply becomes one.

use std::time::Duration;

/// The outcome of one check.
///
/// ```
/// # use std::time::Duration;
/// # use cacheward::Decision;
/// let d = Decision { allowed: false, remaining: 0, reset_after: Duration::from_secs(3), degraded: false };
/// if !d.allowed {
///     println!("429, Retry-After: {}", d.reset_after.as_secs());
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Whether the request may proceed. Always `true` when `degraded`.
    pub allowed: bool,
    /// Units still available to this identifier after this request (for a peek: now).
    /// With `degraded`, the algorithm's full limit, since nothing was counted.
    pub remaining: u64,
    /// When allowed: how long until the full limit is available again if nothing
    /// else arrives (`RateLimit-Reset`). When rejected: how long until the same
    /// request would be allowed (`Retry-After`); for a cost above the limit, which
    /// is never allowed, the time until the full limit is back. Zero when `degraded`.
    pub reset_after: Duration,
    /// `true` when the limit was not enforced: the cache is pass-through (the
    /// allow-all limiter), or Redis failed, timed out or is behind an open circuit
    /// breaker. Such decisions are always allowed (fail-open).
    pub degraded: bool,
}

impl Decision {
    /// The fail-open answer: allowed, nothing counted.
    pub(crate) fn fail_open(limit: u64) -> Decision {
        Decision {
            allowed: true,
            remaining: limit,
            reset_after: Duration::ZERO,
            degraded: true,
        }
    }

    /// Reads a script reply `{allowed, remaining, reset_after_ms}`.
    pub(crate) fn from_reply(value: &redis::Value) -> Result<Decision, String> {
        let items = match value {
            redis::Value::Array(items) => items,
            other => return Err(format!("expected an array of 3 integers, got {other:?}")),
        };
        let [allowed, remaining, reset] = items.as_slice() else {
            return Err(format!(
                "expected an array of 3 integers, got {} items",
                items.len()
            ));
        };
        let int = |v: &redis::Value| match v {
            redis::Value::Int(n) => Ok(*n),
            other => Err(format!("expected an integer, got {other:?}")),
        };
        let allowed = match int(allowed)? {
            0 => false,
            1 => true,
            n => return Err(format!("expected 0 or 1 for `allowed`, got {n}")),
        };
        let remaining = u64::try_from(int(remaining)?.max(0)).unwrap_or(0);
        let reset_ms = u64::try_from(int(reset)?.max(0)).unwrap_or(0);
        Ok(Decision {
            allowed,
            remaining,
            reset_after: Duration::from_millis(reset_ms),
            degraded: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn reply(a: i64, r: i64, t: i64) -> Value {
        Value::Array(vec![Value::Int(a), Value::Int(r), Value::Int(t)])
    }

    #[test]
    fn parses_allowed_and_rejected() {
        assert_eq!(
            Decision::from_reply(&reply(1, 41, 1500)).unwrap(),
            Decision {
                allowed: true,
                remaining: 41,
                reset_after: Duration::from_millis(1500),
                degraded: false
            }
        );
        let d = Decision::from_reply(&reply(0, 0, 7)).unwrap();
        assert!(!d.allowed && !d.degraded);
        assert_eq!(d.reset_after, Duration::from_millis(7));
    }

    #[test]
    fn negative_numbers_saturate_at_zero() {
        let d = Decision::from_reply(&reply(0, -3, -1)).unwrap();
        assert_eq!((d.remaining, d.reset_after), (0, Duration::ZERO));
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(Decision::from_reply(&Value::Nil).is_err());
        assert!(Decision::from_reply(&Value::Int(1)).is_err());
        assert!(Decision::from_reply(&Value::Array(vec![Value::Int(1), Value::Int(2)])).is_err());
        assert!(Decision::from_reply(&reply(2, 0, 0)).is_err());
        let strings = Value::Array(vec![
            Value::BulkString(b"1".to_vec()),
            Value::Int(2),
            Value::Int(3),
        ]);
        assert!(Decision::from_reply(&strings).is_err());
    }

    #[test]
    fn fail_open_is_allowed_and_degraded() {
        let d = Decision::fail_open(100);
        assert!(d.allowed && d.degraded);
        assert_eq!((d.remaining, d.reset_after), (100, Duration::ZERO));
    }
}
