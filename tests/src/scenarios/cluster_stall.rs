//! The stall of redis-rs' async cluster connection under tokio 1.54+ (issue 11), and
//! cacheward's cluster store under the same load.
//!
//! tokio 1.54 takes a semaphore permit before it checks the task's coop budget, so an
//! uncontended `RwLock::read()` polled by a task whose budget is spent *takes the read
//! lock and still returns `Pending`*: the lock stays held until that future is polled
//! again. redis-rs 1.8's `cluster_async::ClusterConnection` is one driver task that
//! polls every request (each takes its topology lock for reading); on `MOVED` it starts
//! a slot refresh that needs the lock for writing and, until the refresh ends, polls
//! nothing else. A request parked that way blocks the refresh, the refresh blocks the
//! request: every call on the connection fails at its timeout from then on.
//!
//! [`tokio_parks_reads_holding_the_lock`] checks the tokio half deterministically.
//! [`redis_rs_stalls_during_slot_migrations_cacheward_does_not`] migrates a slot back
//! and forth under 32 callers of a raw redis-rs cluster connection (the control) and
//! of a cacheward cache (its own routing, no such lock), on one cluster.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use cacheward::Cache;

use crate::{RedisCluster, exclusive};

const CALLERS: usize = 32;
/// Migrations of the slot, at most, when this tokio parks reads holding the lock: the
/// loop ends once the control has stalled (in 8 of 9 runs it did within 11 migrations,
/// usually 3 to 5).
const ROUNDS_UNTIL_STALL: usize = 30;
/// Migrations of the slot when it does not (tokio 1.53 and earlier): no stall to wait for.
const ROUNDS_WITHOUT_PARKING: usize = 6;
/// A raw call slower than this is a stall (its response timeout is 1 s; a healthy call
/// during a migration takes a few ms).
const STALL: Duration = Duration::from_millis(900);
/// No cacheward call may take longer: the default deadline (20 ms) plus slack for a
/// noisy 2-core machine (as in the failover suites).
const OP_BOUND: Duration = Duration::from_millis(20 + 250);

/// Whether this build's tokio lets an uncontended `RwLock::read()` take the lock and
/// still return `Pending` because the task's coop budget is spent (tokio 1.54 and
/// later); such a parked read holds the lock until it is polled again.
pub fn tokio_parks_reads_holding_the_lock() -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        tokio::spawn(async {
            let lock = tokio::sync::RwLock::new(());
            // Spend the task's budget (128 units in every tokio release so far).
            let mut spent = false;
            for _ in 0..100_000 {
                let mut unit = std::pin::pin!(tokio::task::consume_budget());
                if poll_once(unit.as_mut()).await.is_pending() {
                    spent = true;
                    break;
                }
            }
            assert!(spent, "the coop budget never ran out");
            let mut read = std::pin::pin!(lock.read());
            let parked = poll_once(read.as_mut()).await.is_pending();
            let held = lock.try_write().is_err();
            parked && held
        })
        .await
        .expect("the probe task")
    })
}

/// Polls `fut` once and hands back what it returned.
async fn poll_once<F: Future>(mut fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

#[derive(Default)]
struct Worst {
    raw_us: AtomicU64,
    raw_stalls: AtomicU64,
    raw_calls: AtomicU64,
    cache_us: AtomicU64,
    cache_calls: AtomicU64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A slot migrated back and forth under 32 callers of a raw redis-rs cluster
/// connection and 32 of a cacheward cache, on the same slot: cacheward never takes
/// longer than its deadline plus slack. The raw connection is the control: on tokio
/// 1.54+ it must stall (calls fail at its 1 s timeout, for good) within
/// 30 migrations, and the rounds stop once it has; on earlier
/// releases it is only reported.
pub async fn redis_rs_stalls_during_slot_migrations_cacheward_does_not() {
    let parks = tokio::task::spawn_blocking(tokio_parks_reads_holding_the_lock)
        .await
        .expect("the tokio probe");
    let _heavy = exclusive().await;
    let cluster = RedisCluster::start();
    let client = redis::cluster::ClusterClient::builder(cluster.seeds())
        .retries(10)
        .response_timeout(Duration::from_secs(1))
        .build()
        .expect("a redis-rs cluster client");
    let raw = client
        .get_async_connection()
        .await
        .expect("the raw cluster connection");
    let cache = Cache::builder()
        .cluster_nodes(cluster.seeds())
        .build()
        .expect("seeds");

    // One slot (one hash tag): the raw callers' keys, and the cache's (encoded values).
    let keys: Arc<Vec<String>> = Arc::new((0..48).map(|i| format!("stall:{{mig}}:r{i}")).collect());
    let cached: Arc<Vec<String>> =
        Arc::new((0..48).map(|i| format!("stall:{{mig}}:c{i}")).collect());
    let slot = cluster.keyslot(&keys[0]);
    assert_eq!(slot, cluster.keyslot(&cached[0]));
    {
        let mut c = raw.clone();
        for k in keys.iter() {
            let () = redis::cmd("SET")
                .arg(k)
                .arg("v")
                .query_async(&mut c)
                .await
                .expect("fill");
        }
    }

    let worst = Arc::new(Worst::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let (raw_keys, raw_worst, raw_stop, mut raw) =
            (keys.clone(), worst.clone(), stop.clone(), raw.clone());
        tasks.push(tokio::spawn(async move {
            let (keys, worst, stop) = (raw_keys, raw_worst, raw_stop);
            let mut i = caller;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let got = tokio::time::timeout(
                    Duration::from_secs(3),
                    redis::cmd("GET")
                        .arg(&keys[i % keys.len()])
                        .query_async::<Option<String>>(&mut raw),
                )
                .await;
                let took = started.elapsed();
                worst.raw_us.fetch_max(micros(took), Ordering::Relaxed);
                worst.raw_calls.fetch_add(1, Ordering::Relaxed);
                if took >= STALL || got.is_err() {
                    worst.raw_stalls.fetch_add(1, Ordering::Relaxed);
                }
                i += CALLERS;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
        let (keys, worst, stop, cache) =
            (cached.clone(), worst.clone(), stop.clone(), cache.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = caller;
            while !stop.load(Ordering::Relaxed) {
                let key = &keys[i % keys.len()];
                let started = Instant::now();
                if cache.get::<String>(key).await.is_none() {
                    cache
                        .set(key, &"v".to_owned(), Duration::from_secs(300))
                        .await;
                }
                worst
                    .cache_us
                    .fetch_max(micros(started.elapsed()), Ordering::Relaxed);
                worst.cache_calls.fetch_add(1, Ordering::Relaxed);
                i += CALLERS;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }

    let mut rounds = 0;
    let mut stalled_in = None;
    let max_rounds = if parks {
        ROUNDS_UNTIL_STALL
    } else {
        ROUNDS_WITHOUT_PARKING
    };
    for round in 0..max_rounds {
        rounds = round + 1;
        let to = cluster.other_primary(slot);
        let c = cluster.clone();
        let migration = tokio::task::spawn_blocking(move || c.begin_slot_migration(slot, to))
            .await
            .unwrap();
        for _ in 0..6 {
            tokio::task::block_in_place(|| migration.move_keys(8));
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        tokio::task::spawn_blocking(move || migration.finish())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if stalled_in.is_none() && worst.raw_stalls.load(Ordering::Relaxed) > 0 {
            stalled_in = Some(round + 1);
            // Let the stall show for a second more, then stop: the control is shown.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("a caller panicked");
    }

    let raw_worst = Duration::from_micros(worst.raw_us.load(Ordering::Relaxed));
    let cache_worst = Duration::from_micros(worst.cache_us.load(Ordering::Relaxed));
    println!(
        "tokio parks reads holding the lock: {parks}; {rounds} migrations; redis-rs: \
         slowest {raw_worst:?}, {} stalled of {} calls (first stall after migration {stalled_in:?}); \
         cacheward: slowest {cache_worst:?} over {} calls, stats {:?}",
        worst.raw_stalls.load(Ordering::Relaxed),
        worst.raw_calls.load(Ordering::Relaxed),
        worst.cache_calls.load(Ordering::Relaxed),
        cache.stats(),
    );
    assert!(
        worst.cache_calls.load(Ordering::Relaxed) > 500,
        "the cacheward load ran"
    );
    assert!(
        cache_worst <= OP_BOUND,
        "a cacheward call took {cache_worst:?} (the redis-rs control's slowest: {raw_worst:?})"
    );
    if parks {
        assert!(
            stalled_in.is_some(),
            "the redis-rs control never stalled in {rounds} migrations: the test did not \
             exercise the race"
        );
    }
    // The moved keys hit again through cacheward once the migrations are over.
    let pause = Duration::from_millis(100);
    assert!(
        crate::scenarios::reads_back(&cache, &cached[0], "v", Duration::from_secs(5), pause).await,
        "cacheward reads the migrated slot"
    );
}
