//! The rate limiter against a real Redis: semantics, identifiers, expiry, skewed
//! clients and exactness under concurrency, on a single server and on the cluster;
//! and, on a single server it breaks, Redis killed or frozen (SIGSTOP): every check
//! is allowed and marked degraded, quickly, counted and logged without flooding, and
//! once Redis is back the limits apply again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cacheward::ratelimit::Refill;
use cacheward::{Algorithm, Cache, Decision, RateLimiter};

use crate::clock::{ServerClock, clear_of_boundary};
use crate::{LogCapture, RedisServer, Target, exclusive};

/// A cache on `target` with its own connection: each call is a separate instance.
///
/// Its deadline is generous (2 s, not the 20 ms default): these scenarios check what
/// the limiter decides under heavy concurrency on a small shared machine, and a check
/// that timed out would fail open (and might still be counted by Redis later).
fn cache(target: &Target) -> Cache {
    target
        .builder()
        .deadline(Duration::from_secs(2))
        .build()
        .expect("the target's URL is valid")
}

const HOUR: Duration = Duration::from_secs(3600);

fn assert_decision(d: Decision, allowed: bool, remaining: u64, what: &str) {
    assert!(!d.degraded, "{what}: degraded {d:?}");
    assert_eq!(
        (d.allowed, d.remaining),
        (allowed, remaining),
        "{what}: {d:?}"
    );
}

// ---------------------------------------------------------------------------------
// Semantics: costs, rejected requests, peek, reset.
// ---------------------------------------------------------------------------------

/// Window algorithms: all-or-nothing costs, rejected requests take nothing, peek
/// reads without taking, reset forgets, `reset_after` is sensible.
pub async fn window_semantics(target: &Target) {
    clear_of_boundary(target, HOUR, Duration::from_secs(5)).await;
    let cache = cache(target);
    let mut raw = target.raw().await;
    for algorithm in [
        Algorithm::fixed_window(5, HOUR),
        Algorithm::sliding_window(5, HOUR),
    ] {
        let name = algorithm.name();
        let l = RateLimiter::new(&cache, "semantics", algorithm).prefix(format!("sem-{name}"));
        let id = "user-1";

        // Peeking at an unknown identifier creates nothing.
        let d = l.peek(id).await;
        assert_decision(d, true, 5, name);
        assert_eq!(d.reset_after, Duration::ZERO, "{name}");
        assert!(
            raw.keys_with_prefix(&format!("sem-{name}"))
                .await
                .is_empty()
        );

        let d = l.check_n(id, 3).await;
        assert_decision(d, true, 2, name);
        assert!(
            d.reset_after > Duration::ZERO && d.reset_after <= 2 * HOUR,
            "{name} {d:?}"
        );
        // Does not fit: rejected, and takes nothing.
        let d = l.check_n(id, 3).await;
        assert_decision(d, false, 2, name);
        assert!(d.reset_after > Duration::ZERO, "{name}: retry-after {d:?}");
        for _ in 0..5 {
            assert_decision(l.peek(id).await, true, 2, name);
        }
        assert_decision(l.check_n(id, 2).await, true, 0, name);
        let d = l.check_detailed(id).await;
        assert_decision(d, false, 0, name);
        assert!(
            d.reset_after > Duration::ZERO && d.reset_after <= 2 * HOUR,
            "{name} {d:?}"
        );
        assert!(!l.check(id).await, "{name}");
        assert_decision(l.peek(id).await, false, 0, name);

        l.reset(id).await;
        assert_decision(l.peek(id).await, true, 5, name);
        // A cost above the limit never fits and takes nothing.
        assert_decision(l.check_n(id, 6).await, false, 5, name);
        // A cost of zero is allowed and writes nothing.
        assert_decision(l.check_n(id, 0).await, true, 5, name);
        assert!(
            raw.keys_with_prefix(&format!("sem-{name}"))
                .await
                .is_empty()
        );
        assert_decision(l.check_n(id, 5).await, true, 0, name);

        // The server forgets its scripts (as after a restart): the next check loads it
        // again (NOSCRIPT, then SCRIPT LOAD and EVALSHA) and is not degraded.
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut raw)
            .await
            .expect("SCRIPT FLUSH");
        assert_decision(l.check_detailed("after-flush").await, true, 4, name);

        let s = l.stats();
        assert_eq!(
            (s.checks, s.allowed, s.rejected, s.degraded, s.errors),
            (9, 5, 4, 0, 0),
            "{name}: {s:?}"
        );
    }
}

/// Token bucket: costs, peek, refills in batches, and no lockout: hammering an empty
/// bucket does not delay its refill (the @upstash/ratelimit PR #156 bug).
pub async fn token_bucket_semantics(target: &Target) {
    let cache = cache(target);
    let period = Duration::from_millis(400);
    let l = RateLimiter::new(
        &cache,
        "semantics",
        Algorithm::token_bucket(5, Refill::new(5, period)),
    )
    .prefix("sem-tb");
    let id = "user-1";

    assert_decision(l.peek(id).await, true, 5, "fresh");
    let first = Instant::now();
    let d = l.check_n(id, 3).await;
    assert_decision(d, true, 2, "first");
    assert!(
        d.reset_after > Duration::ZERO && d.reset_after <= period,
        "{d:?}"
    );
    let d = l.check_n(id, 3).await;
    assert_decision(d, false, 2, "does not fit");
    assert!(
        d.reset_after > Duration::ZERO && d.reset_after <= period,
        "{d:?}"
    );
    assert_decision(l.peek(id).await, true, 2, "peek");
    assert_decision(l.check_n(id, 2).await, true, 0, "empty");

    // Hammer the empty bucket until shortly before the refill.
    let mut rejected = 0;
    while first.elapsed() < period - Duration::from_millis(120) {
        let d = l.check_detailed(id).await;
        assert_decision(d, false, 0, "hammering an empty bucket");
        assert!(d.reset_after <= period, "{d:?}");
        rejected += 1;
    }
    assert!(rejected > 0);
    // Once the refill is due, the bucket is back (the rejections did not push it back).
    tokio::time::sleep_until((first + period + Duration::from_millis(100)).into()).await;
    assert_decision(l.check_detailed(id).await, true, 4, "after the refill");
    assert_decision(l.check_n(id, 5).await, false, 4, "cost above what is left");
    assert_decision(l.check_n(id, 6).await, false, 4, "cost above the capacity");

    l.reset(id).await;
    assert_decision(l.peek(id).await, true, 5, "after reset");
}

// ---------------------------------------------------------------------------------
// Identifiers: no collisions, reset never widens.
// ---------------------------------------------------------------------------------

const NASTY_IDS: &[&str] = &[
    "a", "a:b", "a%3Ab", ":", "::", "*", "a*", "*a", "?", "[a]", "{", "}", "{a}", "{}", "\\", " ",
    "", "~", "%", "%2A", "日本", "é", "e\u{301}", "user:1", "user",
];

/// Identifiers with `:`, `*`, `{`, unicode… each get their own state, and resetting
/// one (`*` included) leaves every other intact.
pub async fn identifiers_neither_collide_nor_widen_reset(target: &Target) {
    clear_of_boundary(target, HOUR, Duration::from_secs(5)).await;
    let cache = cache(target);
    let mut raw = target.raw().await;
    let l = RateLimiter::new(&cache, "ids", Algorithm::fixed_window(2, HOUR)).prefix("ids");

    for id in NASTY_IDS {
        assert_decision(l.check_detailed(*id).await, true, 1, id);
        assert_decision(l.check_detailed(*id).await, true, 0, id);
        assert_decision(l.check_detailed(*id).await, false, 0, id);
    }
    let keys = raw.keys_with_prefix("ids:").await;
    let expected: BTreeSet<String> = NASTY_IDS.iter().map(|id| l.key(id)).collect();
    assert_eq!(keys.len(), NASTY_IDS.len(), "{keys:?}");
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), expected);

    for reset in ["*", "{", "a*", ""] {
        l.reset(reset).await;
        for id in NASTY_IDS {
            let d = l.peek(*id).await;
            if *id == reset {
                assert_decision(d, true, 2, &format!("{id:?} after its reset"));
            } else {
                assert!(!d.allowed, "{id:?} was freed by reset({reset:?}): {d:?}");
            }
        }
        assert_decision(l.check_detailed(reset).await, true, 1, reset);
        assert_decision(l.check_detailed(reset).await, true, 0, reset);
    }
    assert_eq!(raw.keys_with_prefix("ids:").await.len(), NASTY_IDS.len());
}

// ---------------------------------------------------------------------------------
// Expiry: every key the limiter writes has a TTL, bounded by what its state needs.
// ---------------------------------------------------------------------------------

/// After checks of every kind (allowed, rejected, costs, peeks), every key has a
/// `PTTL` > 0 and no longer than its state can matter; peeks create nothing.
pub async fn every_key_expires(target: &Target) {
    let minute = Duration::from_secs(60);
    // A fixed-window key expires at its window's end: keep the run inside one window.
    clear_of_boundary(target, minute, Duration::from_secs(5)).await;
    let cache = cache(target);
    let mut raw = target.raw().await;
    let cases = [
        (Algorithm::fixed_window(3, minute), minute),
        (Algorithm::sliding_window(3, minute), 2 * minute),
        (
            Algorithm::token_bucket(3, Refill::new(1, minute)),
            3 * minute,
        ),
    ];
    for (algorithm, max_ttl) in cases {
        let prefix = format!("ttl-{}", algorithm.name());
        let l = RateLimiter::new(&cache, "ttl", algorithm).prefix(&prefix);
        for i in 0..20 {
            let id = format!("client-{i}");
            for _ in 0..(i % 5) {
                l.check(&id).await;
            }
            l.check_n(&id, 2).await;
            l.peek(format!("never-checked-{i}")).await;
        }
        let keys = raw.keys_with_prefix(&prefix).await;
        assert_eq!(keys.len(), 20, "{prefix}: {keys:?}");
        for key in &keys {
            assert!(!key.contains("never-checked"), "a peek created {key}");
            let ttl = raw.pttl(key).await;
            assert!(
                ttl > 0 && ttl <= max_ttl.as_millis() as i64,
                "{key}: PTTL {ttl}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Skewed client clocks: decisions only use the server clock.
// ---------------------------------------------------------------------------------

/// A limiter whose process clock is an hour (or a year) off decides exactly like one
/// whose clock is right: same allowed count, same `remaining` sequence.
pub async fn skewed_clients_count_the_same(target: &Target) {
    let window = Duration::from_secs(30);
    let algorithms = [
        Algorithm::fixed_window(100, window),
        Algorithm::sliding_window(100, window),
        Algorithm::token_bucket(100, Refill::new(1, HOUR)),
    ];
    for algorithm in algorithms {
        for skew_ms in [3_600_000, -3_600_000, 365 * 86_400_000, -17] {
            let name = algorithm.name();
            let cache_a = cache(target);
            let cache_b = cache(target);
            let plain = RateLimiter::new(&cache_a, "skew", algorithm).prefix("skew-plain");
            let skewed = RateLimiter::new(&cache_b, "skew", algorithm)
                .prefix("skew-skewed")
                .client_clock_skew_ms(skew_ms);
            // 2 x 150 checks take well under 5 s: no window boundary falls among them.
            clear_of_boundary(target, window, Duration::from_secs(5)).await;
            let id = format!("{name}-{skew_ms}");
            let mut a = Vec::new();
            let mut b = Vec::new();
            for _ in 0..150 {
                a.push(plain.check_detailed(&id).await);
                b.push(skewed.check_detailed(&id).await);
            }
            let allowed = |v: &[Decision]| v.iter().filter(|d| d.allowed).count();
            assert_eq!(allowed(&a), 100, "{name}");
            assert_eq!(allowed(&b), 100, "{name} skewed by {skew_ms} ms");
            let remaining = |v: &[Decision]| {
                v.iter()
                    .map(|d| (d.allowed, d.remaining))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                remaining(&a),
                remaining(&b),
                "{name} skewed by {skew_ms} ms"
            );
            assert!(a.iter().chain(&b).all(|d| !d.degraded));
        }
    }
}

// ---------------------------------------------------------------------------------
// Exactness: 8 instances x 32 tasks against one identifier.
// ---------------------------------------------------------------------------------

const INSTANCES: usize = 8;
const TASKS_PER_INSTANCE: usize = 32;
const LIMIT: u64 = 100;
const WINDOW_MS: u64 = 1000;
const WINDOWS: u64 = 5;

/// One allowed check, as the client saw it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    sent: Instant,
    received: Instant,
    decision: Decision,
}

/// Eight limiters, each on its own `Cache` (its own connection, like eight service
/// instances), half of them with a skewed process clock.
fn instances(target: &Target, algorithm: Algorithm, prefix: &str) -> Vec<RateLimiter> {
    (0..INSTANCES)
        .map(|i| {
            let l = RateLimiter::new(&cache(target), "exact", algorithm).prefix(prefix);
            let skew = [0, 3_600_000, 0, -3_600_000, 0, 31_536_000_000, 0, -17][i];
            l.client_clock_skew_ms(skew)
        })
        .collect()
}

/// Every task checks `id` in a loop from `start` until `stop`; returns the allowed
/// samples and the number of checks made.
async fn hammer(
    limiters: &[RateLimiter],
    id: &str,
    start: Instant,
    stop: Instant,
) -> (Vec<Sample>, u64) {
    let mut tasks = Vec::new();
    for l in limiters {
        for _ in 0..TASKS_PER_INSTANCE {
            let l = l.clone();
            let id = id.to_owned();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(start.into()).await;
                let mut allowed = Vec::new();
                let mut checks = 0u64;
                while Instant::now() < stop {
                    let sent = Instant::now();
                    let decision = l.check_detailed(&id).await;
                    let received = Instant::now();
                    checks += 1;
                    assert!(
                        !decision.degraded,
                        "degraded during the exactness run after {:?}: {:?}",
                        received - sent,
                        l.stats()
                    );
                    if decision.allowed {
                        allowed.push(Sample {
                            sent,
                            received,
                            decision,
                        });
                    }
                }
                (allowed, checks)
            }));
        }
    }
    let mut samples = Vec::new();
    let mut checks = 0;
    for t in tasks {
        let (s, c) = t.await.expect("a hammering task panicked");
        samples.extend(s);
        checks += c;
    }
    samples.sort_by_key(|s| s.sent);
    (samples, checks)
}

/// The aligned window (0-based, from `start_ms`) an allowed sample belongs to, given
/// that `reset_after` points `ends_after` windows past the end of its own window.
fn window_of(clock: &ServerClock, s: &Sample, start_ms: u64, ends_after: u64) -> i64 {
    let mid = s.sent + (s.received - s.sent) / 2;
    let end = clock.server_ms(mid) + s.decision.reset_after.as_millis() as f64;
    ((end - start_ms as f64) / WINDOW_MS as f64).round() as i64 - 1 - ends_after as i64
}

/// Every key under `prefix` has a TTL (none is left without one).
async fn no_key_without_ttl(target: &Target, prefix: &str) {
    let mut raw = target.raw().await;
    for key in raw.keys_with_prefix(prefix).await {
        let ttl = raw.pttl(&key).await;
        assert!(ttl > 0 || ttl == -2, "{key}: PTTL {ttl}");
    }
}

/// A run of eight instances of a window algorithm hammering one identifier over
/// [`WINDOWS`] windows aligned to the server clock.
struct AlignedRun {
    limiters: Vec<RateLimiter>,
    samples: Vec<Sample>,
    checks: u64,
    /// Allowed checks per aligned window (see [`window_of`]).
    per_window: BTreeMap<i64, u64>,
}

/// Runs eight instances of `algorithm` from the start of a window of the server clock
/// for [`WINDOWS`] windows; an allowed check's `reset_after` is taken to point
/// `ends_after` windows past the end of its own.
async fn aligned_run(
    target: &Target,
    algorithm: Algorithm,
    prefix: &str,
    ends_after: u64,
) -> AlignedRun {
    let limiters = instances(target, algorithm, prefix);
    let mut raw = target.raw().await;
    let clock = ServerClock::measure(&mut raw).await;
    let start_ms = clock.next_boundary(WINDOW_MS, 200.0);
    let start = clock.local(start_ms as f64 + 10.0);
    let stop = clock.local((start_ms + WINDOWS * WINDOW_MS) as f64 - 60.0);
    let (samples, checks) = hammer(&limiters, "hot-client", start, stop).await;
    let mut per_window: BTreeMap<i64, u64> = BTreeMap::new();
    for s in &samples {
        *per_window
            .entry(window_of(&clock, s, start_ms, ends_after))
            .or_default() += 1;
    }
    AlignedRun {
        limiters,
        samples,
        checks,
        per_window,
    }
}

/// Fixed window: exactly `LIMIT` allowed in each of 5 consecutive windows aligned to
/// the server clock.
async fn fixed_window_is_exact(target: &Target) {
    let prefix = "exact-fixed";
    let algorithm = Algorithm::fixed_window(LIMIT, Duration::from_millis(WINDOW_MS));
    let AlignedRun {
        limiters,
        samples,
        checks,
        per_window,
    } = aligned_run(target, algorithm, prefix, 0).await;
    for w in 0..WINDOWS as i64 {
        assert_eq!(
            per_window.get(&w).copied().unwrap_or(0),
            LIMIT,
            "window {w}: {per_window:?} ({checks} checks)"
        );
    }
    eprintln!("fixed window: {checks} checks, allowed per window {per_window:?}");
    let stats: u64 = limiters.iter().map(|l| l.stats().allowed).sum();
    assert_eq!(stats, samples.len() as u64);
    assert!(
        checks > WINDOWS * LIMIT * 2,
        "not saturated: {checks} checks"
    );
    no_key_without_ttl(target, prefix).await;
}

/// Sliding window: at most `LIMIT` per aligned window, and at most `2 × LIMIT − 1` in
/// any interval one window long (checked conservatively: only samples whose whole
/// send/receive span lies inside the interval are counted).
async fn sliding_window_stays_within_its_bound(target: &Target) {
    let prefix = "exact-sliding";
    let algorithm = Algorithm::sliding_window(LIMIT, Duration::from_millis(WINDOW_MS));
    // An allowed check's reset_after is the end of the *next* window.
    let AlignedRun {
        samples,
        checks,
        per_window,
        ..
    } = aligned_run(target, algorithm, prefix, 1).await;
    for (w, n) in &per_window {
        assert!(*n <= LIMIT, "window {w} allowed {n}: {per_window:?}");
    }
    if !per_window.contains_key(&-1) {
        assert_eq!(per_window.get(&0), Some(&LIMIT), "{per_window:?}");
    }
    for w in 1..WINDOWS as i64 {
        let n = per_window.get(&w).copied().unwrap_or(0);
        assert!(
            n >= LIMIT / 2,
            "window {w} allowed only {n}: {per_window:?} ({checks} checks)"
        );
    }

    let window = Duration::from_millis(WINDOW_MS - 2);
    let mut worst = 0;
    for (i, first) in samples.iter().enumerate() {
        let end = first.sent + window;
        let inside = samples[i..].iter().filter(|s| s.received <= end).count();
        worst = worst.max(inside);
    }
    eprintln!(
        "sliding window: {checks} checks, allowed per window {per_window:?}, \
         at most {worst} in one window length"
    );
    assert!(
        (worst as u64) < 2 * LIMIT,
        "{worst} allowed within one window length"
    );
    no_key_without_ttl(target, prefix).await;
}

/// Token bucket: over the run, allowed ≤ capacity + refill × elapsed / period, and
/// allowed + what is left ≥ that minus one refill (tokens are conserved).
async fn token_bucket_stays_within_its_bound(target: &Target) {
    let prefix = "exact-bucket";
    let (capacity, refill, period_ms) = (LIMIT, 10_u64, 100_u64);
    let algorithm = Algorithm::token_bucket(
        capacity,
        Refill::new(refill, Duration::from_millis(period_ms)),
    );
    let limiters = instances(target, algorithm, prefix);
    let start = Instant::now() + Duration::from_millis(100);
    let stop = start + Duration::from_millis(3 * WINDOW_MS);
    let (samples, checks) = hammer(&limiters, "hot-client", start, stop).await;
    let peek_sent = Instant::now();
    let left = limiters[0].peek("hot-client").await;
    let peek_received = Instant::now();
    assert!(!left.degraded);

    let first_sent = start;
    let first_received = samples
        .iter()
        .map(|s| s.received)
        .min()
        .expect("some allowed");
    let outer = (peek_received - first_sent).as_secs_f64() * 1000.0;
    let inner = (peek_sent - first_received).as_secs_f64() * 1000.0;
    let rate = refill as f64 / period_ms as f64;
    let allowed = samples.len() as f64;
    let upper = capacity as f64 + rate * outer;
    let lower = capacity as f64 + rate * inner - refill as f64;
    eprintln!(
        "token bucket: {checks} checks, {allowed} allowed, {} left, bounds [{lower:.1}, {upper:.1}]",
        left.remaining
    );
    assert!(
        allowed <= upper,
        "allowed {allowed} > {upper} ({checks} checks)"
    );
    assert!(
        allowed + left.remaining as f64 >= lower,
        "allowed {allowed} + left {} < {lower}",
        left.remaining
    );
    assert!(left.remaining <= capacity);
    assert!(
        checks as f64 > 2.0 * upper,
        "not saturated: {checks} checks"
    );
    no_key_without_ttl(target, prefix).await;
}

/// The three exactness runs, one after the other (multi-threaded runtime): they load
/// the machine, so they hold [`exclusive`].
pub async fn exactness(target: &Target) {
    let _heavy = exclusive().await;
    fixed_window_is_exact(target).await;
    sliding_window_stays_within_its_bound(target).await;
    token_bucket_stays_within_its_bound(target).await;
}

// ---------------------------------------------------------------------------------
// Redis killed or frozen (single server; these capture logs).
// ---------------------------------------------------------------------------------

/// The cache's deadline for one Redis operation (its default).
const DEADLINE: Duration = Duration::from_millis(20);
/// Generous slack for a noisy 2-core machine.
const SLACK: Duration = Duration::from_millis(250);
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

/// A limiter named `name` with the cache's default deadline, on a fresh server it
/// owns, clear of an hourly window boundary for the next 30 s, and warmed up.
async fn warm_limiter(name: &str, algorithm: Algorithm) -> (RedisServer, RateLimiter) {
    let server = RedisServer::start();
    let target = Target::Single(server);
    clear_of_boundary(&target, HOUR, Duration::from_secs(30)).await;
    let Target::Single(server) = target else {
        unreachable!("a single-server target")
    };
    let cache = Cache::redis(&server.url()).unwrap();
    let limiter = RateLimiter::new(&cache, name, algorithm);
    let d = limiter.check_detailed("warm-up").await;
    assert!(d.allowed && !d.degraded, "{d:?}");
    (server, limiter)
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

/// Redis killed: every check fails open, quickly, with one warning; the limits apply
/// again once Redis is back.
pub async fn killed_redis_fails_open_then_limits_apply_again() {
    let (logs, _guard) = LogCapture::install();
    let (mut server, limiter) = warm_limiter("failover", Algorithm::fixed_window(5, HOUR)).await;

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

/// Redis frozen: every check fails open within the deadline, with one warning; the
/// limits apply again after the thaw.
pub async fn frozen_redis_fails_open_within_the_deadline_then_limits_apply_again() {
    let (logs, _guard) = LogCapture::install();
    let (mut server, limiter) = warm_limiter("frozen", Algorithm::sliding_window(5, HOUR)).await;

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
