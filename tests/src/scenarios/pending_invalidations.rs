//! Invalidations survive outages: a delete that cannot reach Redis is kept, the key is
//! not served from that instance meanwhile, and the delete is replayed as soon as Redis
//! answers again — so every instance reads the new value soon after the fault heals.
//! Faults are real: a TCP proxy that partitions the network without closing anything,
//! and a SIGSTOPped server.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
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

#[cached_store(key = "pending:item:<id>", ttl = 300)]
trait Items: Send + Sync {
    async fn item(&self, id: u64) -> Result<Option<Row>, Fail>;

    #[invalidates]
    async fn put(&self, id: u64, version: u64) -> Result<(), Fail>;
}

impl Items for &'static Db {
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

fn db() -> &'static Db {
    Box::leak(Box::default())
}

async fn raw_version(server: &RedisServer, key: &str) -> Option<u64> {
    let json: Option<String> = server.connection().await.get(key).await.unwrap();
    json.map(|j| serde_json::from_str::<Row>(&j).unwrap().version)
}

/// Polls `read` until it gives `want`; returns how long that took.
async fn until<F, Fut>(want: u64, limit: Duration, mut read: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = u64>,
{
    let start = Instant::now();
    loop {
        if read().await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "the new value was not seen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two instances, one behind a proxy. The proxied one is cut off from Redis while it
/// writes: its delete cannot get through. After the partition heals, the other instance
/// reads the new value, because the kept invalidation was replayed.
pub async fn a_write_during_a_partition_reaches_every_instance_after_it_heals() {
    let _heavy = crate::exclusive().await;
    let server = RedisServer::start();
    let upstream: SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let proxy = TcpProxy::start(upstream).await;
    let db = db();
    db.rows.lock().unwrap().insert(1, 1);
    // The instance behind the proxy runs with the default deadline and breaker.
    let cut_off = CachingItems::new(db, Cache::redis(&proxy.url()).unwrap());
    let other = CachingItems::new(db, server.cache());

    // Warm: the cut-off instance fills, the other reads its value.
    for _ in 0..50 {
        if cut_off.item(1).await.unwrap().unwrap().version == 1
            && raw_version(&server, "pending:item:1").await == Some(1)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(raw_version(&server, "pending:item:1").await, Some(1));
    assert_eq!(other.item(1).await, Ok(Some(Row { id: 1, version: 1 })));

    proxy.partition();
    cut_off.put(1, 2).await.unwrap();
    let stats = cut_off.cache().stats();
    assert_eq!(stats.pending_invalidations, 1, "{stats:?}");
    // The writer itself never serves the key from the cache meanwhile.
    let loads = db.loads.load(Ordering::SeqCst);
    assert_eq!(cut_off.item(1).await, Ok(Some(Row { id: 1, version: 2 })));
    assert_eq!(
        db.loads.load(Ordering::SeqCst),
        loads + 1,
        "answered by the store"
    );
    // The other instance still sees the old value: Redis was never told.
    assert_eq!(other.item(1).await, Ok(Some(Row { id: 1, version: 1 })));
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.heal();
    let took = until(2, Duration::from_secs(10), || async {
        other.item(1).await.unwrap().unwrap().version
    })
    .await;
    println!("after the partition healed, the other instance read the new value in {took:?}");
    assert_eq!(cut_off.cache().stats().pending_invalidations, 0);
    assert_eq!(raw_version(&server, "pending:item:1").await, Some(2));
}

/// A write while the breaker is open (Redis frozen a moment earlier): the delete is
/// refused without being sent, kept, and replayed once Redis answers again.
pub async fn a_write_while_the_breaker_is_open_is_replayed_after_recovery() {
    let mut server = RedisServer::start();
    let db = db();
    db.rows.lock().unwrap().insert(4, 1);
    let cache = server
        .builder()
        .deadline(Duration::from_millis(100))
        .breaker(1, Duration::from_millis(300))
        .build()
        .unwrap();
    let store = CachingItems::new(db, cache.clone());
    assert_eq!(store.item(4).await, Ok(Some(Row { id: 4, version: 1 })));
    assert_eq!(raw_version(&server, "pending:item:4").await, Some(1));

    server.freeze();
    // Reads time out and open the breaker.
    for _ in 0..3 {
        let _ = store.item(9).await;
    }
    assert!(cache.stats().breaker_openings >= 1);
    store.put(4, 2).await.unwrap();
    assert_eq!(cache.stats().pending_invalidations, 1);
    assert_eq!(store.item(4).await, Ok(Some(Row { id: 4, version: 2 })));
    server.thaw();

    let start = Instant::now();
    while cache.stats().pending_invalidations > 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "never replayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(raw_version(&server, "pending:item:4").await, None);
    let other = CachingItems::new(db, server.cache());
    assert_eq!(other.item(4).await, Ok(Some(Row { id: 4, version: 2 })));
}

/// The proxy itself: bytes flow, stop on a partition without a close, and only new
/// connections work after it heals.
pub async fn the_proxy_cuts_without_closing() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap()).await;
    let client = redis::Client::open(proxy.url()).unwrap();
    let mut old = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = old.set("p", 1).await.unwrap();
    proxy.partition();
    let stuck = tokio::time::timeout(Duration::from_millis(300), old.get::<_, i64>("p")).await;
    assert!(
        stuck.is_err(),
        "no answer through a partition, and no error either"
    );
    proxy.heal();
    let still = tokio::time::timeout(Duration::from_millis(300), old.get::<_, i64>("p")).await;
    assert!(
        still.is_err(),
        "a connection from before the partition stays half-open"
    );
    let mut fresh = client.get_multiplexed_async_connection().await.unwrap();
    assert_eq!(fresh.get::<_, i64>("p").await.unwrap(), 1);
}
