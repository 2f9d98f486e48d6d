//! Refresh-ahead and stale-if-error against a real Redis (single server and cluster),
//! through the runtime's read-through with timing options (what the generated
//! decorators call for templates with `refresh_ahead` / `stale_if_error`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Target;
use cacheward::__private::{
    Timing, near_path::Cloned, read_through_with, read_through_with_background, shape::ResultOption,
};
use cacheward::Cache;
use cacheward::inventory::{KeyInfo, KeySpec};

fn spec(template: &'static str, ttl: Duration) -> &'static KeySpec {
    Box::leak(Box::new(KeySpec::new(KeyInfo {
        trait_name: "PolicyStore",
        template,
        ttl,
        ttl_env: None,
        value_type: "u64",
        cache_none: false,
        read_by: &["get_policy"],
        invalidated_by: &[],
        tags: &[],
    })))
}

/// The database: a version, a load counter, a load delay, and a switch that makes
/// loads fail.
#[derive(Default)]
struct Db {
    version: AtomicU64,
    loads: AtomicUsize,
    delay_ms: AtomicU64,
    failing: AtomicBool,
}

impl Db {
    async fn load(&self) -> Result<Option<u64>, &'static str> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err("database down");
        }
        Ok(Some(self.version.load(Ordering::SeqCst)))
    }
}

/// One read of `key`, as a generated method with both options would make it.
async fn read(
    cache: &Cache,
    spec: &'static KeySpec,
    key: &str,
    timing: Timing,
    tags: &[&str],
    db: &Arc<Db>,
) -> Result<Option<u64>, &'static str> {
    let refresh = {
        let db = Arc::clone(db);
        move || async move { db.load().await }
    };
    let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    match tags.as_slice() {
        [] if timing.refresh_ahead.is_some() => {
            read_through_with_background(
                cache,
                spec,
                key.to_owned(),
                [],
                timing,
                ResultOption,
                Cloned,
                || db.load(),
                refresh,
            )
            .await
        }
        [] => {
            read_through_with(
                cache,
                spec,
                key.to_owned(),
                [],
                timing,
                ResultOption,
                Cloned,
                || db.load(),
            )
            .await
        }
        [t] => {
            read_through_with(
                cache,
                spec,
                key.to_owned(),
                [t.clone()],
                timing,
                ResultOption,
                Cloned,
                || db.load(),
            )
            .await
        }
        _ => unreachable!(),
    }
}

/// A hit past `refresh_ahead` answers at once; the background refresh lands next.
pub async fn refresh_ahead(target: &Target) {
    let _heavy = crate::exclusive().await;
    let ttl = Duration::from_secs(2);
    let spec = spec("fresh:policy:<tenant_id>", ttl);
    let timing = Timing {
        refresh_ahead: Some(0.5),
        ..Timing::default()
    };
    let db = Arc::new(Db::default());
    db.version.store(1, Ordering::SeqCst);
    let cache = target.cache();
    assert_eq!(
        read(&cache, spec, "fresh:policy:acme", timing, &[], &db).await,
        Ok(Some(1))
    );
    db.version.store(2, Ordering::SeqCst);
    db.delay_ms.store(300, Ordering::SeqCst);
    // Past 0.5 x ttl (with up to 10% jitter): the hit answers at once and refreshes.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let start = Instant::now();
    assert_eq!(
        read(&cache, spec, "fresh:policy:acme", timing, &[], &db).await,
        Ok(Some(1))
    );
    let took = start.elapsed();
    println!("a hit due for refresh answered in {took:?} (the store takes 300 ms)");
    assert!(took < Duration::from_millis(250), "{took:?}");
    // The refresh lands, and later reads are hits with the new value.
    let start = Instant::now();
    while read(&cache, spec, "fresh:policy:acme", timing, &[], &db).await != Ok(Some(2)) {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "the refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(db.loads.load(Ordering::SeqCst), 2);
    assert!(cache.stats().refreshes >= 1);
}

/// 64 tasks on four instances hammering a due key make one refresh.
pub async fn one_refresh_across_instances(target: &Target) {
    let _heavy = crate::exclusive().await;
    let ttl = Duration::from_secs(2);
    let spec = spec("fresh:hot:<tenant_id>", ttl);
    let timing = Timing {
        refresh_ahead: Some(0.5),
        ..Timing::default()
    };
    let db = Arc::new(Db::default());
    db.delay_ms.store(200, Ordering::SeqCst);
    let caches: Vec<Cache> = (0..4).map(|_| target.cache()).collect();
    read(&caches[0], spec, "fresh:hot:acme", timing, &[], &db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let until = Instant::now() + Duration::from_millis(600);
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let cache = caches[n % 4].clone();
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                while Instant::now() < until {
                    read(&cache, spec, "fresh:hot:acme", timing, &[], &db)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        db.loads.load(Ordering::SeqCst),
        2,
        "one fill and one refresh in all"
    );
}

/// Past the TTL, a failing store is answered from the stale copy, throttled; never after a delete.
pub async fn stale_if_error(target: &Target) {
    let ttl = Duration::from_millis(800);
    let spec = spec("fresh:stale:<tenant_id>", ttl);
    let timing = Timing {
        stale_if_error: Some(Duration::from_secs(3600)),
        fail_safe_throttle: Some(Duration::from_millis(500)),
        ..Timing::default()
    };
    let db = Arc::new(Db::default());
    db.version.store(1, Ordering::SeqCst);
    let cache = target.cache();
    assert_eq!(
        read(&cache, spec, "fresh:stale:acme", timing, &[], &db).await,
        Ok(Some(1))
    );
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    // Past the TTL it is a miss: a working store answers (and refills).
    db.version.store(2, Ordering::SeqCst);
    assert_eq!(
        read(&cache, spec, "fresh:stale:acme", timing, &[], &db).await,
        Ok(Some(2))
    );
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    // A failing store: the stale value answers.
    db.failing.store(true, Ordering::SeqCst);
    let loads = db.loads.load(Ordering::SeqCst);
    assert_eq!(
        read(&cache, spec, "fresh:stale:acme", timing, &[], &db).await,
        Ok(Some(2))
    );
    assert_eq!(db.loads.load(Ordering::SeqCst), loads + 1);
    assert_eq!(cache.stats().stale_served, 1);
    // Within the throttle the failing store is not called again.
    for _ in 0..10 {
        assert_eq!(
            read(&cache, spec, "fresh:stale:acme", timing, &[], &db).await,
            Ok(Some(2))
        );
    }
    assert_eq!(db.loads.load(Ordering::SeqCst), loads + 1, "throttled");
    // Once the store answers again (past the throttle), its answer wins.
    db.failing.store(false, Ordering::SeqCst);
    db.version.store(3, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        read(&cache, spec, "fresh:stale:acme", timing, &[], &db).await,
        Ok(Some(3))
    );

    // An invalidated entry is never served stale.
    cache.del("fresh:stale:acme").await;
    db.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        read(&cache, spec, "fresh:stale:acme", timing, &[], &db).await,
        Err("database down")
    );
}

/// A tag-invalidated entry is never served stale.
pub async fn tag_invalidated_never_stale(target: &Target) {
    let ttl = Duration::from_millis(500);
    let spec = spec("fresh:tagged:<tenant_id>", ttl);
    let timing = Timing {
        stale_if_error: Some(Duration::from_secs(3600)),
        ..Timing::default()
    };
    let db = Arc::new(Db::default());
    db.version.store(1, Ordering::SeqCst);
    let cache = target.cache();
    let tags = ["tenant:acme"];
    assert_eq!(
        read(&cache, spec, "fresh:tagged:acme", timing, &tags, &db).await,
        Ok(Some(1))
    );
    cache.invalidate_tag("tenant:acme").await;
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    db.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        read(&cache, spec, "fresh:tagged:acme", timing, &tags, &db).await,
        Err("database down"),
        "a tag-invalidated entry is never served stale"
    );
}

/// Stale if error on memory.
pub async fn stale_if_error_on_memory() {
    let ttl = Duration::from_millis(300);
    let spec = spec("fresh:mem:<tenant_id>", ttl);
    let timing = Timing {
        stale_if_error: Some(Duration::from_secs(60)),
        ..Timing::default()
    };
    let db = Arc::new(Db::default());
    db.version.store(7, Ordering::SeqCst);
    let cache = Cache::memory();
    read(&cache, spec, "fresh:mem:a", timing, &[], &db)
        .await
        .unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    db.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        read(&cache, spec, "fresh:mem:a", timing, &[], &db).await,
        Ok(Some(7))
    );
}

/// Refresh ahead with a near cache.
pub async fn refresh_ahead_with_a_near_cache() {
    let server = crate::RedisServer::start();
    let cache = Cache::builder()
        .redis_url(server.url())
        .near_cache(100)
        .near_cache_max_age(Duration::from_millis(200))
        .build()
        .unwrap();
    let ttl = Duration::from_secs(2);
    let spec = spec("fresh:near:<tenant_id>", ttl);
    let timing = Timing {
        refresh_ahead: Some(0.5),
        ..Timing::default()
    };
    let db = Arc::new(Db::default());
    db.version.store(1, Ordering::SeqCst);
    read(&cache, spec, "fresh:near:a", timing, &[], &db)
        .await
        .unwrap();
    db.version.store(2, Ordering::SeqCst);
    let start = Instant::now();
    // Near entries age out quickly, so Redis hits with their PTTL come often enough to
    // see that the entry is due.
    while read(&cache, spec, "fresh:near:a", timing, &[], &db).await != Ok(Some(2)) {
        assert!(start.elapsed() < Duration::from_secs(4), "never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(start.elapsed() < ttl, "refreshed ahead of the expiry");
}
