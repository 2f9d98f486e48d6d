//! Leases: no stale value after a write on any instance, one load per cold key across
//! instances. Every scenario runs two or more `Cache`s (instances) against one real
//! Redis, single server and cluster.
//!
//! The races are made deterministic with a gate in the backing store: a load reads its
//! row, reports the version it read, and waits until the test lets it go. The naive
//! control (GET, load, SET, as a hand-written decorator does) runs the same
//! interleavings and must show the race, or the scenario proves nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{RawConnection, Target};
use cacheward::{Cache, cached_store};
use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Row {
    id: u64,
    version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Fail;

type Gate = (oneshot::Sender<u64>, oneshot::Receiver<()>);

/// The database: rows by id, a load counter, an optional pause after reading a row.
#[derive(Default)]
struct Db {
    rows: Mutex<HashMap<u64, u64>>,
    loads: AtomicUsize,
    /// How long a load takes after it read its row (the race window).
    read_delay: Mutex<Duration>,
    /// The next load reports the version it read and waits for the go.
    gate: Mutex<Option<Gate>>,
}

impl Db {
    fn version(&self, id: u64) -> u64 {
        self.rows.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    fn write(&self, id: u64, version: u64) {
        self.rows.lock().unwrap().insert(id, version);
    }

    /// Arms the gate: returns (the version the next load read, the go signal).
    fn arm(&self) -> (oneshot::Receiver<u64>, oneshot::Sender<()>) {
        let (read_tx, read_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        *self.gate.lock().unwrap() = Some((read_tx, go_rx));
        (read_rx, go_tx)
    }

    async fn load(&self, id: u64) -> Row {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let version = self.version(id);
        let gate = self.gate.lock().unwrap().take();
        if let Some((read, go)) = gate {
            let _ = read.send(version);
            let _ = go.await;
        }
        let delay = *self.read_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Row { id, version }
    }
}

#[cached_store(key = "lease:item:<id>", ttl = 60)]
trait Items: Send + Sync {
    async fn item(&self, id: u64) -> Result<Option<Row>, Fail>;

    #[invalidates]
    async fn put(&self, id: u64, version: u64) -> Result<(), Fail>;
}

#[derive(Clone)]
struct DbItems(Arc<Db>);

impl Items for DbItems {
    async fn item(&self, id: u64) -> Result<Option<Row>, Fail> {
        Ok(Some(self.0.load(id).await))
    }

    async fn put(&self, id: u64, version: u64) -> Result<(), Fail> {
        self.0.write(id, version);
        Ok(())
    }
}

/// A hand-written decorator without leases: GET, load, SET; DEL after a write.
struct Naive {
    db: Arc<Db>,
    conn: RawConnection,
}

impl Naive {
    fn key(id: u64) -> String {
        format!("naive:item:{id}")
    }

    async fn item(&self, id: u64) -> Row {
        let mut c = self.conn.clone();
        let cached: Option<String> = c.get(&Self::key(id)).await;
        if let Some(json) = cached {
            return serde_json::from_str(&json).unwrap();
        }
        let row = self.db.load(id).await;
        let _: () = c
            .set_ex(Self::key(id), serde_json::to_string(&row).unwrap(), 60)
            .await
            .unwrap();
        row
    }

    async fn put(&self, id: u64, version: u64) {
        self.db.write(id, version);
        let _: () = self.conn.clone().del(Self::key(id)).await.unwrap();
    }
}

async fn raw_version(conn: &RawConnection, key: &str) -> Option<u64> {
    let json: Option<String> = conn.clone().get(key).await;
    json.map(|j| serde_json::from_str::<Row>(&j).unwrap().version)
}

fn instance(target: &Target, db: &Arc<Db>) -> CachingItems<DbItems> {
    CachingItems::new(DbItems(Arc::clone(db)), target.cache())
}

/// A load that read the row before a write on another instance, and fills after that
/// write's invalidation, stores nothing; the naive decorator stores the old row.
pub async fn write_during_load(target: &Target) {
    let db = Arc::new(Db::default());
    db.write(1, 1);
    let a = Arc::new(instance(target, &db));
    let b = instance(target, &db);
    let raw = target.raw().await;

    let (read, go) = db.arm();
    let reader = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.item(1).await }
    });
    assert_eq!(read.await.unwrap(), 1, "A read the old row");
    b.put(1, 2).await.unwrap();
    go.send(()).unwrap();
    assert_eq!(reader.await.unwrap(), Ok(Some(Row { id: 1, version: 1 })));
    assert_eq!(
        raw_version(&raw, "lease:item:1").await,
        None,
        "the old row must not be stored after the write"
    );
    assert_eq!(a.cache().stats().fills_rejected, 1);
    assert_eq!(b.item(1).await, Ok(Some(Row { id: 1, version: 2 })));
    assert_eq!(a.item(1).await, Ok(Some(Row { id: 1, version: 2 })));

    // The control: the same interleaving through the naive decorator.
    let naive = Arc::new(Naive {
        db: Arc::clone(&db),
        conn: raw.clone(),
    });
    let (read, go) = db.arm();
    let reader = tokio::spawn({
        let naive = Arc::clone(&naive);
        async move { naive.item(1).await }
    });
    assert_eq!(read.await.unwrap(), 2);
    naive.put(1, 3).await;
    go.send(()).unwrap();
    reader.await.unwrap();
    assert_eq!(
        raw_version(&raw, &Naive::key(1)).await,
        Some(2),
        "the control shows the race: the naive decorator stored the old row"
    );
}

/// A loader that outlives its lease never writes: whoever took the lease after it fills.
pub async fn expired_lease(target: &Target) {
    let db = Arc::new(Db::default());
    db.write(7, 1);
    let lease = Duration::from_millis(150);
    let cache = |lease| target.builder().lease(lease).build().unwrap();
    let slow = Arc::new(CachingItems::new(DbItems(Arc::clone(&db)), cache(lease)));
    let other = CachingItems::new(DbItems(Arc::clone(&db)), cache(lease));
    let raw = target.raw().await;

    let (read, go) = db.arm();
    let reader = tokio::spawn({
        let slow = Arc::clone(&slow);
        async move { slow.item(7).await }
    });
    assert_eq!(read.await.unwrap(), 1);
    tokio::time::sleep(lease * 2).await;
    // The lease expired: another instance takes it, loads and fills.
    db.write(7, 2);
    assert_eq!(other.item(7).await, Ok(Some(Row { id: 7, version: 2 })));
    go.send(()).unwrap();
    assert_eq!(reader.await.unwrap(), Ok(Some(Row { id: 7, version: 1 })));
    assert_eq!(slow.cache().stats().fills_rejected, 1);
    assert_eq!(raw_version(&raw, "lease:item:7").await, Some(2));
}

/// A loader whose future is dropped releases its lease: the next caller, on another
/// instance, loads and fills at once instead of waiting out the lease.
pub async fn dropped_filler(target: &Target) {
    let db = Arc::new(Db::default());
    db.write(3, 1);
    let lease = Duration::from_secs(30);
    let a = Arc::new(CachingItems::new(
        DbItems(Arc::clone(&db)),
        target.builder().lease(lease).build().unwrap(),
    ));
    let b = CachingItems::new(
        DbItems(Arc::clone(&db)),
        target.builder().lease(lease).build().unwrap(),
    );
    let (read, _go) = db.arm();
    let reader = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.item(3).await }
    });
    read.await.unwrap();
    reader.abort();
    let _ = reader.await;
    let started = tokio::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), b.item(3))
        .await
        .expect("the next caller does not wait out a dropped loader's 30 s lease");
    assert_eq!(answer, Ok(Some(Row { id: 3, version: 1 })));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(db.loads.load(Ordering::SeqCst), 2);
    let raw = target.raw().await;
    assert_eq!(raw_version(&raw, "lease:item:3").await, Some(1), "B filled");
}

/// 1,000 concurrent callers of one cold key over four instances: one inner call.
pub async fn one_load_across_instances(target: &Target) {
    let _heavy = crate::exclusive().await;
    let db = Arc::new(Db::default());
    db.write(5, 9);
    *db.read_delay.lock().unwrap() = Duration::from_millis(100);
    let instances: Vec<Arc<CachingItems<DbItems>>> =
        (0..4).map(|_| Arc::new(instance(target, &db))).collect();
    // Warm each instance's connection so that all callers start together.
    for i in &instances {
        let _ = i.cache().get::<u8>("lease:warm").await;
    }
    let tasks: Vec<_> = (0..1000)
        .map(|n| {
            let i = Arc::clone(&instances[n % 4]);
            tokio::spawn(async move { i.item(5).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(Some(Row { id: 5, version: 9 })));
    }
    assert_eq!(db.loads.load(Ordering::SeqCst), 1, "one inner call in all");
    let waits: u64 = instances
        .iter()
        .map(|i| i.cache().stats().lease_waits)
        .sum();
    assert!(
        waits >= 1,
        "the other instances waited for the lease holder"
    );

    // The same through get_or_set.
    let caches: Vec<Cache> = (0..4).map(|_| target.cache()).collect();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|n| {
            let cache = caches[n % 4].clone();
            let calls = Arc::clone(&calls);
            tokio::spawn(async move {
                cache
                    .get_or_set("lease:answer:q1", Duration::from_secs(60), || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        "forty-two".to_owned()
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "forty-two");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// `try_get_or_set`: an `Err` is neither stored nor shared; an `Ok` is stored.
pub async fn try_get_or_set(target: &Target) {
    let cache = target.cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let fail = Arc::new(AtomicBool::new(true));
    let load = || {
        let calls = Arc::clone(&calls);
        let fail = Arc::clone(&fail);
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if fail.load(Ordering::SeqCst) {
                Err("database down")
            } else {
                Ok(17_u32)
            }
        }
    };
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let cache = cache.clone();
            let load = load();
            tokio::spawn(async move {
                cache
                    .try_get_or_set("lease:try:k", Duration::from_secs(60), load)
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Err("database down"));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "an Err is not shared: every caller loaded"
    );
    assert_eq!(cache.get::<u32>("lease:try:k").await, None, "nor stored");
    fail.store(false, Ordering::SeqCst);
    let ok = cache
        .try_get_or_set("lease:try:k", Duration::from_secs(60), load())
        .await;
    assert_eq!(ok, Ok(17));
    assert_eq!(cache.get::<u32>("lease:try:k").await, Some(17));
}

/// Readers and writers on two instances for a while, with a 2 ms race window in
/// every load; then every key in Redis matches the database. The naive decorator,
/// run alongside (same readers and writers, its own copy of the database) leaves
/// stale keys: the control.
///
/// The control has its own database and each task drives both sides concurrently, so
/// the naive side's race window does not shrink by however long the leased side's
/// write takes (under a loaded CI machine it did, and the control saw no race).
pub async fn soak(target: &Target) {
    let _heavy = crate::exclusive().await;
    const KEYS: u64 = 8;
    let db = Arc::new(Db::default());
    *db.read_delay.lock().unwrap() = Duration::from_millis(2);
    let naive_db = Arc::new(Db::default());
    *naive_db.read_delay.lock().unwrap() = Duration::from_millis(2);
    let raw = target.raw().await;
    let naive = Arc::new(Naive {
        db: Arc::clone(&naive_db),
        conn: raw.clone(),
    });
    let instances = [
        Arc::new(instance(target, &db)),
        Arc::new(instance(target, &db)),
    ];
    // Short rounds, each ending in a check of every key: what is stale at the end of a
    // round depends only on each key's last write, so many short rounds check both
    // sides more often than a few long ones. At least 4.5 s of writes (the issue's
    // measurement ran 4 s), and more, up to 60 rounds, until the control has shown the
    // race: on a loaded machine the naive decorator's window is hit less often.
    const ROUND: Duration = Duration::from_millis(300);
    const MIN_ROUNDS: usize = 15;
    let mut naive_stale_total = 0;
    let mut naive_stale_rounds = Vec::new();
    for round in 0..60 {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for r in 0..64u64 {
            let inst = Arc::clone(&instances[(r % 2) as usize]);
            let naive = Arc::clone(&naive);
            let stop = Arc::clone(&stop);
            tasks.push(tokio::spawn(async move {
                let mut n = r;
                while !stop.load(Ordering::Relaxed) {
                    let id = n % KEYS;
                    let (leased, _) = tokio::join!(inst.item(id), naive.item(id));
                    leased.unwrap();
                    n += 1;
                }
            }));
        }
        for w in 0..8u64 {
            let inst = Arc::clone(&instances[(w % 2) as usize]);
            let naive = Arc::clone(&naive);
            let db = Arc::clone(&db);
            let stop = Arc::clone(&stop);
            tasks.push(tokio::spawn(async move {
                let mut n = w;
                while !stop.load(Ordering::Relaxed) {
                    let id = n % KEYS;
                    let version = db.version(id) + 1;
                    let (leased, ()) = tokio::join!(inst.put(id, version), naive.put(id, version));
                    leased.unwrap();
                    n += 3;
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }));
        }
        tokio::time::sleep(ROUND).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        // A delete that timed out under load is replayed in the background: wait for it.
        let settle = tokio::time::Instant::now();
        while instances
            .iter()
            .any(|i| i.cache().stats().pending_invalidations > 0)
        {
            assert!(
                settle.elapsed() < Duration::from_secs(10),
                "invalidations never replayed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut stale = 0;
        let mut naive_stale = 0;
        for id in 0..KEYS {
            let truth = db.version(id);
            if raw_version(&raw, &format!("lease:item:{id}"))
                .await
                .is_some_and(|v| v != truth)
            {
                stale += 1;
            }
            let naive_truth = naive_db.version(id);
            if raw_version(&raw, &Naive::key(id))
                .await
                .is_some_and(|v| v != naive_truth)
            {
                naive_stale += 1;
            }
        }
        assert_eq!(
            stale,
            0,
            "round {round}: stale keys in Redis after the writes; stats {:?} {:?}",
            instances[0].cache().stats(),
            instances[1].cache().stats()
        );
        naive_stale_total += naive_stale;
        naive_stale_rounds.push(naive_stale);
        if naive_stale_total > 0 && round + 1 >= MIN_ROUNDS {
            break;
        }
    }
    eprintln!(
        "soak: {} rounds, no stale key through the leases; naive decorator's stale keys per round: {naive_stale_rounds:?}",
        naive_stale_rounds.len()
    );
    assert!(
        naive_stale_total > 0,
        "the naive control found no stale key in {} rounds: the soak did not exercise the race",
        naive_stale_rounds.len()
    );
}

// ---- single server ------------------------------------------------------------------

// ---- cluster ------------------------------------------------------------------------

// ---- the in-process equivalent --------------------------------------------------------

/// `Cache::memory()` runs the same protocol in process: a load that raced a write
/// through another decorator on the same cache stores nothing.
pub async fn write_during_load_on_memory() {
    let db = Arc::new(Db::default());
    db.write(1, 1);
    let cache = Cache::memory();
    let a = Arc::new(CachingItems::new(DbItems(Arc::clone(&db)), cache.clone()));
    let b = CachingItems::new(DbItems(Arc::clone(&db)), cache.clone());
    let (read, go) = db.arm();
    let reader = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.item(1).await }
    });
    read.await.unwrap();
    b.put(1, 2).await.unwrap();
    go.send(()).unwrap();
    reader.await.unwrap().unwrap();
    assert_eq!(cache.get::<Row>("lease:item:1").await, None);
    assert_eq!(b.item(1).await, Ok(Some(Row { id: 1, version: 2 })));
}
