//! The rate limiter when Redis is killed or frozen (SIGSTOP): every check is allowed
//! and marked degraded, quickly, counted and logged without flooding; once Redis is
//! back the limits apply again. Single server only: these tests break the server.

mod ratelimit_support;

use std::time::{Duration, Instant};

use cacheward::{Algorithm, Cache, Decision, RateLimiter};
use cacheward_tests::{LogCapture, Target};
use ratelimit_support::clear_of_boundary;

/// The cache's deadline for one Redis operation (its default).
const DEADLINE: Duration = Duration::from_millis(20);
/// Generous slack for a noisy 2-core machine.
const SLACK: Duration = Duration::from_millis(250);
const HOUR: Duration = Duration::from_secs(3600);
/// The log line the limiter writes when it fails open.
const FAIL_OPEN_LOG: &str = "rate limiter check failed";

/// 4 concurrent tasks x 25 checks of `id`; every decision with its latency.
async fn burst(limiter: &RateLimiter, id: &str) -> Vec<(Decision, Duration)> {
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let l = limiter.clone();
        let id = id.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..25 {
                let start = Instant::now();
                let d = l.check_detailed(&id).await;
                out.push((d, start.elapsed()));
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("a checking task panicked"));
    }
    all
}

/// Every check allowed and degraded, none slower than the deadline plus slack, and
/// most of them fast: once the breaker is open (after 5 failures) a check does not
/// wait for Redis at all.
fn assert_all_degraded(results: &[(Decision, Duration)], what: &str) {
    assert_eq!(results.len(), 100);
    for (d, took) in results {
        assert!(d.allowed && d.degraded, "{what}: {d:?}");
        assert!(*took <= DEADLINE + SLACK, "{what}: a check took {took:?}");
    }
    let fast = results
        .iter()
        .filter(|(_, took)| *took < Duration::from_millis(5))
        .count();
    assert!(
        fast >= 80,
        "{what}: only {fast} of 100 checks skipped Redis"
    );
}

/// Checks `id` until Redis answers again (at most 20 s).
async fn wait_until_enforcing(limiter: &RateLimiter, id: &str) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if !limiter.check_detailed(id).await.degraded {
            return;
        }
        assert!(Instant::now() < until, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh identifier gets exactly its limit of 5, enforced.
async fn limits_apply(limiter: &RateLimiter, id: &str) {
    for i in 0..5 {
        let d = limiter.check_detailed(id).await;
        assert!(d.allowed && !d.degraded, "check {i}: {d:?}");
        assert_eq!(d.remaining, 4 - i);
    }
    let d = limiter.check_detailed(id).await;
    assert!(!d.allowed && !d.degraded, "over the limit: {d:?}");
}

#[tokio::test]
async fn killed_redis_fails_open_then_limits_apply_again() {
    let (logs, _guard) = LogCapture::install();
    let mut target = Target::single();
    clear_of_boundary(&target, HOUR, Duration::from_secs(30)).await;
    let Target::Single(server) = &mut target else {
        unreachable!("Target::single() is a single server")
    };
    let cache = Cache::redis(&server.url()).unwrap();
    let limiter = RateLimiter::new(&cache, "failover", Algorithm::fixed_window(5, HOUR));
    let d = limiter.check_detailed("warm-up").await;
    assert!(d.allowed && !d.degraded, "{d:?}");

    server.kill();
    let results = burst(&limiter, "alice").await;
    assert_all_degraded(&results, "killed");
    let s = limiter.stats();
    assert_eq!((s.checks, s.allowed, s.degraded), (101, 1, 100), "{s:?}");
    assert!(s.errors >= 100, "{s:?}");
    let warnings = logs.matching(FAIL_OPEN_LOG);
    assert_eq!(warnings.len(), 1, "one warning, not a flood: {warnings:#?}");
    assert!(warnings[0].contains("failover"), "{}", warnings[0]);

    server.restart();
    wait_until_enforcing(&limiter, "bob").await;
    limits_apply(&limiter, "carol").await;
}

#[tokio::test]
async fn frozen_redis_fails_open_within_the_deadline_then_limits_apply_again() {
    let (logs, _guard) = LogCapture::install();
    let mut target = Target::single();
    clear_of_boundary(&target, HOUR, Duration::from_secs(30)).await;
    let Target::Single(server) = &mut target else {
        unreachable!("Target::single() is a single server")
    };
    let cache = Cache::redis(&server.url()).unwrap();
    let limiter = RateLimiter::new(&cache, "frozen", Algorithm::sliding_window(5, HOUR));
    let d = limiter.check_detailed("warm-up").await;
    assert!(d.allowed && !d.degraded, "{d:?}");

    server.freeze();
    let results = burst(&limiter, "alice").await;
    assert_all_degraded(&results, "frozen");
    let peek = limiter.peek("alice").await;
    assert!(peek.degraded && peek.allowed, "{peek:?}");
    let s = limiter.stats();
    assert_eq!((s.checks, s.allowed, s.degraded), (101, 1, 100), "{s:?}");
    assert!(s.errors >= 101, "{s:?}");
    assert!(s.timeouts >= 1, "the first checks hit the deadline: {s:?}");
    assert_eq!(logs.matching(FAIL_OPEN_LOG).len(), 1);

    server.thaw();
    // Checks sent to the frozen server may still run once it resumes (a timed-out
    // check can be counted late), so the limits are checked on a fresh identifier.
    wait_until_enforcing(&limiter, "bob").await;
    limits_apply(&limiter, "carol").await;
}
