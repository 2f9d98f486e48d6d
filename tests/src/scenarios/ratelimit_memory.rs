//! The limiter on `Cache::memory()` runs the Redis scripts' algorithms in the process:
//! the same sequence of checks, peeks and resets gives the same decisions on both.

use std::time::Duration;

use crate::Target;
use crate::clock::clear_of_boundary;
use cacheward::ratelimit::Refill;
use cacheward::{Algorithm, Cache, RateLimiter};

/// A cache on `target` with the limiter suites' generous deadline.
fn cache(target: &Target) -> Cache {
    Cache::builder()
        .redis_url(target.url())
        .deadline(Duration::from_secs(2))
        .build()
        .expect("the target's URL is valid")
}

const HOUR: Duration = Duration::from_secs(3600);

/// A small deterministic generator, so a failure names a reproducible step.
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

/// The same sequence of checks on a Redis limiter and a memory limiter, for each
/// algorithm: the same decisions.
pub async fn memory_and_redis_limiters_decide_alike() {
    let target = Target::single();
    // Hour-long windows: no boundary is crossed between the two halves of a step.
    clear_of_boundary(&target, HOUR, Duration::from_secs(30)).await;
    let redis = cache(&target);
    let algorithms = [
        Algorithm::fixed_window(10, HOUR),
        Algorithm::sliding_window(10, HOUR),
        Algorithm::token_bucket(10, Refill::new(3, HOUR)),
    ];
    for algorithm in algorithms {
        let bucket = format!("agree-{}", algorithm.name());
        let on_redis = RateLimiter::new(&redis, &bucket, algorithm);
        let on_memory = RateLimiter::new(&Cache::memory(), &bucket, algorithm);
        assert!(on_memory.is_enforcing());
        let mut seed = 7;
        let mut rejected = 0;
        for step in 0..150 {
            let id = ["a", "b", "c"][(next(&mut seed) % 3) as usize];
            let (r, m) = match next(&mut seed) % 20 {
                0 => {
                    on_redis.reset(id).await;
                    on_memory.reset(id).await;
                    continue;
                }
                1 | 2 => (on_redis.peek(id).await, on_memory.peek(id).await),
                3 => (
                    on_redis.check_n(id, 11).await,
                    on_memory.check_n(id, 11).await,
                ),
                _ => {
                    let cost = next(&mut seed) % 4;
                    (
                        on_redis.check_n(id, cost).await,
                        on_memory.check_n(id, cost).await,
                    )
                }
            };
            let what = format!("{} step {step} id {id}", algorithm.name());
            assert!(!r.degraded && !m.degraded, "{what}: {r:?} {m:?}");
            assert_eq!(
                (r.allowed, r.remaining),
                (m.allowed, m.remaining),
                "{what}: redis {r:?}, memory {m:?}"
            );
            let gap = r.reset_after.abs_diff(m.reset_after);
            assert!(
                gap <= Duration::from_secs(2),
                "{what}: redis {r:?}, memory {m:?}"
            );
            rejected += u32::from(!r.allowed);
        }
        assert!(
            rejected > 5,
            "{}: the sequence reached the limit",
            algorithm.name()
        );
        let (rs, ms) = (on_redis.stats(), on_memory.stats());
        assert_eq!(
            (rs.checks, rs.allowed, rs.rejected),
            (ms.checks, ms.allowed, ms.rejected)
        );
    }
}
