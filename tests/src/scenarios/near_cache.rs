//! The near cache against a real redis-server: hits without a round trip, evicted by
//! any client's write within milliseconds, and never served while the invalidation feed
//! cannot be vouched for (killed, or silently cut by a TCP proxy).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{RedisServer, TcpProxy};
use cacheward::{Cache, cached_store};
use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Row {
    id: u64,
    version: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct Fail;

#[derive(Default)]
struct Db {
    rows: Mutex<HashMap<u64, u64>>,
    loads: AtomicUsize,
}

#[cached_store(key = "near:item:<id>", ttl = 300)]
trait Items: Send + Sync {
    async fn item(&self, id: u64) -> Result<Option<Row>, Fail>;

    #[invalidates]
    async fn put(&self, id: u64, version: u64) -> Result<(), Fail>;
}

impl Items for Arc<Db> {
    async fn item(&self, id: u64) -> Result<Option<Row>, Fail> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let version = self.rows.lock().unwrap().get(&id).copied().unwrap_or(0);
        Ok(Some(Row { id, version }))
    }

    async fn put(&self, id: u64, version: u64) -> Result<(), Fail> {
        self.rows.lock().unwrap().insert(id, version);
        Ok(())
    }
}

fn near_cache(url: &str) -> Cache {
    Cache::builder()
        .redis_url(url)
        .deadline(Duration::from_millis(200))
        .near_cache(1000)
        .build()
        .unwrap()
}

fn json(version: u64) -> String {
    serde_json::to_string(&Row { id: 1, version }).unwrap()
}

/// Reads `key` until the near cache answers it (the feed is up and the entry is in).
async fn warm(cache: &Cache, key: &str) {
    let start = Instant::now();
    loop {
        let before = cache.stats().near_hits;
        let _ = cache.get::<Row>(key).await;
        if cache.stats().near_hits > before {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the near cache never served {key}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `cache.get(key)` every millisecond until it gives `want`; how long that took.
async fn until(cache: &Cache, key: &str, want: Option<u64>, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if cache.get::<Row>(key).await.map(|r| r.version) == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{key} did not become {want:?} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Near hits skip redis and any clients write evicts them.
pub async fn near_hits_skip_redis_and_any_clients_write_evicts_them() {
    let server = RedisServer::start();
    let mut raw = server.connection().await;
    let _: () = raw.set("near:ext:1", json(1)).await.unwrap();
    let cache = near_cache(&server.url());
    warm(&cache, "near:ext:1").await;
    let before = cache.stats();
    for _ in 0..100 {
        assert_eq!(cache.get::<Row>("near:ext:1").await.unwrap().version, 1);
    }
    let after = cache.stats();
    assert_eq!(after.near_hits - before.near_hits, 100);
    assert_eq!(
        after.hits, before.hits,
        "no Redis round trip for a near hit"
    );

    let _: () = raw.set("near:ext:1", json(2)).await.unwrap();
    let took = until(&cache, "near:ext:1", Some(2), Duration::from_secs(1)).await;
    println!("external SET seen after {took:?}");
    warm(&cache, "near:ext:1").await;
    let _: () = raw.del("near:ext:1").await.unwrap();
    let took = until(&cache, "near:ext:1", None, Duration::from_secs(1)).await;
    println!("external DEL seen after {took:?}");
    // An expiry is a write too.
    let _: () = raw.set("near:ext:1", json(3)).await.unwrap();
    let _: () = raw.pexpire("near:ext:1", 300).await.unwrap();
    warm(&cache, "near:ext:1").await;
    let took = until(&cache, "near:ext:1", None, Duration::from_secs(3)).await;
    println!("expiry seen after {took:?}");
}

/// A write through another instance evicts this ones entry.
pub async fn a_write_through_another_instance_evicts_this_ones_entry() {
    let server = RedisServer::start();
    let db = Arc::new(Db::default());
    db.rows.lock().unwrap().insert(1, 1);
    let a = CachingItems::new(Arc::clone(&db), near_cache(&server.url()));
    let b = CachingItems::new(Arc::clone(&db), near_cache(&server.url()));
    assert_eq!(a.item(1).await.unwrap().unwrap().version, 1);
    warm(a.cache(), "near:item:1").await;
    b.put(1, 2).await.unwrap();
    let start = Instant::now();
    while a.item(1).await.unwrap().unwrap().version != 2 {
        assert!(start.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "write through another instance seen after {:?}",
        start.elapsed()
    );
    // The writer's own near cache never serves the old value after its write returns.
    let c = CachingItems::new(Arc::clone(&db), near_cache(&server.url()));
    assert_eq!(c.item(1).await.unwrap().unwrap().version, 2);
    warm(c.cache(), "near:item:1").await;
    c.put(1, 3).await.unwrap();
    assert_eq!(c.item(1).await.unwrap().unwrap().version, 3);
}

/// A killed feed stops the near cache until it is back.
pub async fn a_killed_feed_stops_the_near_cache_until_it_is_back() {
    let server = RedisServer::start();
    let mut raw = server.connection().await;
    let _: () = raw.set("near:kill:1", json(1)).await.unwrap();
    let cache = near_cache(&server.url());
    warm(&cache, "near:kill:1").await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut raw)
        .await
        .unwrap();
    let id = list
        .lines()
        .find(|l| l.contains("name=cacheward-near-feed"))
        .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("id=")))
        .expect("the feed connection is listed")
        .to_owned();
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&id)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = raw.set("near:kill:1", json(2)).await.unwrap();
    let took = until(&cache, "near:kill:1", Some(2), Duration::from_secs(1)).await;
    println!("after CLIENT KILL of the feed, the new value was read after {took:?}");
    // The feed comes back and the near cache serves again.
    warm(&cache, "near:kill:1").await;
}

/// A silently cut feed stops the near cache within two heartbeats.
pub async fn a_silently_cut_feed_stops_the_near_cache_within_two_heartbeats() {
    let _heavy = crate::exclusive().await;
    let server = RedisServer::start();
    let upstream: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let proxy = TcpProxy::start(upstream).await;
    let mut raw = server.connection().await;
    let _: () = raw.set("near:cut:1", json(1)).await.unwrap();
    let cache = near_cache(&proxy.url());
    warm(&cache, "near:cut:1").await;
    proxy.partition();
    let _: () = raw.set("near:cut:1", json(2)).await.unwrap();
    // Redis is out of reach too, so a read that does not come from the near cache is a
    // miss: the old value must stop being served.
    let took = until(&cache, "near:cut:1", None, Duration::from_secs(5)).await;
    println!("after a silent cut, the near cache stopped serving after {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// An invalidation during the insert is not lost.
pub async fn an_invalidation_during_the_insert_is_not_lost() {
    let server = RedisServer::start();
    let mut raw = server.connection().await;
    let _: () = raw.set("near:slow:1", json(1)).await.unwrap();
    let cache = near_cache(&server.url());
    feed_up(&cache).await;
    cacheward::__private::near_testing::set_insert_delay(Some((
        "near:slow:",
        Duration::from_millis(300),
    )));
    let reader = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get::<Row>("near:slow:1").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: () = raw.set("near:slow:1", json(2)).await.unwrap();
    assert_eq!(
        reader.await.unwrap().unwrap().version,
        1,
        "read before the write"
    );
    // On a loaded machine the invalidation may reach the feed only after the delayed
    // insert, and then evicts it at once; an invalidation lost to the insert would leave
    // the old value served for the near cache's maximum age (10 s).
    let took = until(&cache, "near:slow:1", Some(2), Duration::from_secs(2)).await;
    println!("the value read before the write was gone after {took:?}");

    // The same race through a decorator whose value the near cache keeps decoded: the
    // racing read may answer what it read, but neither its bytes nor its decoded value
    // are served afterwards.
    let db = Arc::new(Db::default());
    db.rows.lock().unwrap().insert(5, 1);
    let store = CachingSlowItems::new(Arc::clone(&db), cache.clone());
    let reader = tokio::spawn({
        let store = store.clone();
        async move { store.slow_item(5).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _: () = raw
        .set(
            "near:slow:5",
            serde_json::to_string(&Row { id: 5, version: 2 }).unwrap(),
        )
        .await
        .unwrap();
    let raced = reader.await.unwrap().unwrap().unwrap();
    cacheward::__private::near_testing::set_insert_delay(None);
    assert_eq!(raced.version, 1, "loaded before the write");
    // As above: a late invalidation evicts at once, a lost one would not for 10 s.
    let start = Instant::now();
    while store.slow_item(5).await.unwrap().unwrap().version != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the value decoded before the write was kept"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for _ in 0..3 {
        assert_eq!(store.slow_item(5).await.unwrap().unwrap().version, 2);
    }
}

#[cached_store(key = "near:slow:<id>", ttl = 300)]
trait SlowItems: Send + Sync {
    async fn slow_item(&self, id: u64) -> Result<Option<Row>, Fail>;
}

impl SlowItems for Arc<Db> {
    async fn slow_item(&self, id: u64) -> Result<Option<Row>, Fail> {
        self.item(id).await
    }
}

/// Soak two instances agree with the database after the writes.
pub async fn soak_two_instances_agree_with_the_database_after_the_writes() {
    let _heavy = crate::exclusive().await;
    const KEYS: u64 = 8;
    let server = RedisServer::start();
    let db = Arc::new(Db::default());
    let instances = [
        Arc::new(CachingItems::new(
            Arc::clone(&db),
            near_cache(&server.url()),
        )),
        Arc::new(CachingItems::new(
            Arc::clone(&db),
            near_cache(&server.url()),
        )),
    ];
    for i in &instances {
        feed_up(i.cache()).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for r in 0..32u64 {
        let inst = Arc::clone(&instances[(r % 2) as usize]);
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut n = r;
            while !stop.load(Ordering::Relaxed) {
                inst.item(n % KEYS).await.unwrap();
                n += 1;
                tokio::task::yield_now().await;
            }
        }));
    }
    for w in 0..4u64 {
        let inst = Arc::clone(&instances[(w % 2) as usize]);
        let db = Arc::clone(&db);
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                let id = n % KEYS;
                let v = db.rows.lock().unwrap().get(&id).copied().unwrap_or(0) + 1;
                inst.put(id, v).await.unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let near_hits: u64 = instances.iter().map(|i| i.cache().stats().near_hits).sum();
    assert!(near_hits > 0, "the soak exercised the near cache");
    for (n, inst) in instances.iter().enumerate() {
        for id in 0..KEYS {
            let truth = db.rows.lock().unwrap().get(&id).copied().unwrap_or(0);
            assert_eq!(
                inst.item(id).await.unwrap().unwrap().version,
                truth,
                "instance {n}, key {id}"
            );
        }
    }
}

/// Waits until the near cache serves (its feed is up).
async fn feed_up(cache: &Cache) {
    let row = Row { id: 0, version: 0 };
    cache.set("near:warm", &row, Duration::from_secs(60)).await;
    warm(cache, "near:warm").await;
}

static DECODES: AtomicUsize = AtomicUsize::new(0);
static CLONES: AtomicUsize = AtomicUsize::new(0);
static UNCLONED_DECODES: AtomicUsize = AtomicUsize::new(0);

/// A row that counts its decodes and clones.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Counted {
    id: u64,
    version: u64,
}

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Row { id, version } = Row::deserialize(d)?;
        DECODES.fetch_add(1, Ordering::SeqCst);
        Ok(Counted { id, version })
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        CLONES.fetch_add(1, Ordering::SeqCst);
        Counted {
            id: self.id,
            version: self.version,
        }
    }
}

/// A row that is not `Clone`, and counts its decodes.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Uncloned {
    id: u64,
    version: u64,
}

impl<'de> Deserialize<'de> for Uncloned {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Row { id, version } = Row::deserialize(d)?;
        UNCLONED_DECODES.fetch_add(1, Ordering::SeqCst);
        Ok(Uncloned { id, version })
    }
}

#[cached_store(ttl = 300)]
trait CountedItems: Send + Sync {
    #[cached(key = "near:counted:<id>")]
    async fn counted(&self, id: u64) -> Result<Option<Counted>, Fail>;

    #[cached(key = "near:uncloned:<id>")]
    async fn uncloned(&self, id: u64) -> Option<Uncloned>;

    /// An `Arc` value (serde's `rc` feature): a near hit clones the `Arc`.
    #[cached(key = "near:shared-counted:<id>")]
    async fn shared(&self, id: u64) -> Result<Option<Arc<Counted>>, Fail>;
}

impl CountedItems for Arc<Db> {
    async fn counted(&self, id: u64) -> Result<Option<Counted>, Fail> {
        let Row { id, version } = self.item(id).await?.ok_or(Fail)?;
        Ok(Some(Counted { id, version }))
    }

    async fn uncloned(&self, id: u64) -> Option<Uncloned> {
        let Row { id, version } = self.item(id).await.ok()??;
        Some(Uncloned { id, version })
    }

    async fn shared(&self, id: u64) -> Result<Option<Arc<Counted>>, Fail> {
        Ok(self.counted(id).await?.map(Arc::new))
    }
}

/// Calls `read` until the cache answers it from the near cache.
async fn until_near_hit<F: Future>(cache: &Cache, mut read: impl FnMut() -> F) {
    let start = Instant::now();
    loop {
        let before = cache.stats().near_hits;
        read().await;
        if cache.stats().near_hits > before {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never a near hit"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A decorators near hits clone one decoded value, and a write replaces it.
pub async fn a_decorators_near_hits_clone_one_decoded_value_and_a_write_replaces_it() {
    let server = RedisServer::start();
    let mut raw = server.connection().await;
    let db = Arc::new(Db::default());
    db.rows.lock().unwrap().insert(1, 1);
    let cache = near_cache(&server.url());
    let store = CachingCountedItems::new(Arc::clone(&db), cache.clone());
    until_near_hit(&cache, || store.counted(1)).await;

    let (decodes, clones, near) = (
        DECODES.load(Ordering::SeqCst),
        CLONES.load(Ordering::SeqCst),
        cache.stats().near_hits,
    );
    for _ in 0..100 {
        assert_eq!(store.counted(1).await.unwrap().unwrap().version, 1);
    }
    assert_eq!(cache.stats().near_hits - near, 100);
    assert_eq!(
        DECODES.load(Ordering::SeqCst) - decodes,
        0,
        "a near hit of a Clone value decodes nothing"
    );
    assert_eq!(
        CLONES.load(Ordering::SeqCst) - clones,
        100,
        "one clone per hit"
    );

    // Another client's write: the decoded value goes with its entry.
    let _: () = raw
        .set(
            "near:counted:1",
            serde_json::to_string(&Row { id: 1, version: 2 }).unwrap(),
        )
        .await
        .unwrap();
    let start = Instant::now();
    while store.counted(1).await.unwrap().unwrap().version != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the write was not seen"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    until_near_hit(&cache, || store.counted(1)).await;
    let decodes = DECODES.load(Ordering::SeqCst);
    for _ in 0..50 {
        assert_eq!(store.counted(1).await.unwrap().unwrap().version, 2);
    }
    assert_eq!(DECODES.load(Ordering::SeqCst) - decodes, 0);

    // Its own write evicts before it is sent: the next read has the new value at once.
    let three = Row { id: 1, version: 3 };
    cache
        .set("near:counted:1", &three, Duration::from_secs(300))
        .await;
    assert_eq!(store.counted(1).await.unwrap().unwrap().version, 3);

    // A value type that is not Clone: near hits all the same, each one a decode.
    until_near_hit(&cache, || store.uncloned(1)).await;
    let (decodes, near) = (
        UNCLONED_DECODES.load(Ordering::SeqCst),
        cache.stats().near_hits,
    );
    for _ in 0..20 {
        assert_eq!(
            store.uncloned(1).await,
            Some(Uncloned { id: 1, version: 1 })
        );
    }
    assert_eq!(cache.stats().near_hits - near, 20);
    assert_eq!(UNCLONED_DECODES.load(Ordering::SeqCst) - decodes, 20);
}

/// A decorator whose value type is an `Arc` hands out the one decoded `Arc` on every
/// near hit: no decode, no clone of the value; a write replaces it.
pub async fn a_decorator_returning_an_arc_shares_one_value_across_near_hits() {
    let server = RedisServer::start();
    let db = Arc::new(Db::default());
    db.rows.lock().unwrap().insert(1, 1);
    let cache = near_cache(&server.url());
    let store = CachingCountedItems::new(Arc::clone(&db), cache.clone());
    until_near_hit(&cache, || store.shared(1)).await;

    let first = store.shared(1).await.unwrap().unwrap();
    let (decodes, clones, near) = (
        DECODES.load(Ordering::SeqCst),
        CLONES.load(Ordering::SeqCst),
        cache.stats().near_hits,
    );
    for _ in 0..100 {
        let hit = store.shared(1).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&hit, &first), "every near hit is the same Arc");
    }
    assert_eq!(cache.stats().near_hits - near, 100);
    assert_eq!(DECODES.load(Ordering::SeqCst) - decodes, 0, "no decode");
    assert_eq!(
        CLONES.load(Ordering::SeqCst) - clones,
        0,
        "no clone of the value"
    );

    // A write through the decorator's cache evicts: the next read is a new value.
    let two = Row { id: 1, version: 2 };
    cache
        .set("near:shared-counted:1", &two, Duration::from_secs(300))
        .await;
    let after = store.shared(1).await.unwrap().unwrap();
    assert_eq!(after.version, 2);
    assert!(!Arc::ptr_eq(&after, &first));
}

/// The same JSON read as another type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Summary {
    version: u64,
}

#[cached_store(key = "near:shared:<id>", ttl = 300)]
trait RowsById: Send + Sync {
    async fn row(&self, id: u64) -> Result<Option<Row>, Fail>;
}

#[cached_store(key = "near:shared:<id>", ttl = 300)]
trait SummariesById: Send + Sync {
    async fn summary(&self, id: u64) -> Result<Option<Summary>, Fail>;
}

impl RowsById for Arc<Db> {
    async fn row(&self, id: u64) -> Result<Option<Row>, Fail> {
        self.item(id).await
    }
}

impl SummariesById for Arc<Db> {
    async fn summary(&self, id: u64) -> Result<Option<Summary>, Fail> {
        Ok(self.item(id).await?.map(|r| Summary { version: r.version }))
    }
}

/// A near entry is never handed out as another type.
pub async fn a_near_entry_is_never_handed_out_as_another_type() {
    let server = RedisServer::start();
    let db = Arc::new(Db::default());
    db.rows.lock().unwrap().insert(4, 7);
    let cache = near_cache(&server.url());
    let rows = CachingRowsById::new(Arc::clone(&db), cache.clone());
    let summaries = CachingSummariesById::new(Arc::clone(&db), cache.clone());
    // Two templates of two traits on one key, each decoding its own type.
    until_near_hit(&cache, || rows.row(4)).await;
    let near = cache.stats().near_hits;
    for _ in 0..3 {
        assert_eq!(rows.row(4).await.unwrap(), Some(Row { id: 4, version: 7 }));
        assert_eq!(
            summaries.summary(4).await.unwrap(),
            Some(Summary { version: 7 })
        );
    }
    assert_eq!(cache.stats().near_hits - near, 6, "all from the near cache");
    assert_eq!(db.loads.load(Ordering::SeqCst), 1);

    // `get_arc` shares the decoded value of its type, and decodes any other.
    let a = cache.get_arc::<Row>("near:shared:4").await.unwrap();
    let b = cache.get_arc::<Row>("near:shared:4").await.unwrap();
    assert_eq!(*a, Row { id: 4, version: 7 });
    assert!(Arc::ptr_eq(&a, &b), "one decoded value, shared");
    let s = cache.get_arc::<Summary>("near:shared:4").await.unwrap();
    assert_eq!(*s, Summary { version: 7 });
    assert_eq!(
        cache.get::<Summary>("near:shared:4").await,
        Some(Summary { version: 7 })
    );
    assert_eq!(
        cache.get::<(u64, u64)>("near:absent:4").await,
        None,
        "a miss stays a miss"
    );

    // After a write, `get_arc` hands out the new value, never the shared old one.
    let mut raw = server.connection().await;
    let _: () = raw
        .set(
            "near:shared:4",
            serde_json::to_string(&Row { id: 4, version: 8 }).unwrap(),
        )
        .await
        .unwrap();
    let start = Instant::now();
    while cache.get_arc::<Row>("near:shared:4").await.unwrap().version != 8 {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the write was not seen"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(a.version, 7, "a value handed out earlier is a snapshot");
    assert_eq!(
        summaries.summary(4).await.unwrap(),
        Some(Summary { version: 8 })
    );
}
