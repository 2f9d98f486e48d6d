//! The decorator against a Redis that stopped answering, before the breaker opens.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cacheward::{Cache, cached_store};
use cacheward_tests::RedisServer;

#[cached_store(key = "degraded:<id>", ttl = 60)]
trait Numbers: Send + Sync {
    async fn number(&self, id: u64) -> u64;
}

#[derive(Default)]
struct Doubler(AtomicUsize);

impl Numbers for Doubler {
    async fn number(&self, id: u64) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst);
        id * 2
    }
}

/// A read that timed out is a miss, and its fill is skipped: a `SET` into a Redis
/// that just failed the `GET` would wait out a second deadline. So a call costs one
/// deadline, not two, while the breaker is still closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_costs_one_deadline_not_two() {
    let mut server = RedisServer::start();
    let deadline = Duration::from_millis(300);
    let cache = Cache::builder()
        .redis_url(server.url())
        .deadline(deadline)
        // Keep the breaker closed: this is about the calls before it opens.
        .breaker(1_000, Duration::from_secs(1))
        .build()
        .unwrap();
    let store = CachingNumbers::new(Doubler::default(), cache.clone());
    assert_eq!(store.number(1).await, 2); // connects, fills
    assert_eq!(store.number(1).await, 2); // hit
    assert_eq!(store.inner().0.load(Ordering::SeqCst), 1);

    server.freeze();
    for id in 10..13 {
        let started = Instant::now();
        assert_eq!(store.number(id).await, id * 2);
        let took = started.elapsed();
        assert!(
            took < deadline * 2 - Duration::from_millis(100),
            "a degraded call took {took:?}: the fill waited out a second deadline"
        );
    }
    server.thaw();

    let stats = cache.stats();
    assert!(stats.timeouts >= 3, "{stats:?}");
    assert_eq!(
        stats.sets, 1,
        "no fill was attempted while frozen: {stats:?}"
    );
    assert_eq!(store.inner().0.load(Ordering::SeqCst), 4);

    // Once Redis answers again the next read fills the key.
    assert_eq!(store.number(10).await, 20);
    assert_eq!(store.number(10).await, 20);
    assert_eq!(store.inner().0.load(Ordering::SeqCst), 5);
}
