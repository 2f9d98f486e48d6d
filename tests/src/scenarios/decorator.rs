//! Generated decorators against a real Redis: every return shape, what is and is not
//! stored, the exact keys and TTLs in Redis, injective keys, failed writes,
//! single-flight, Redis going away or stalling, and `ttl_env`.
//!
//! The scenarios that take a [`Target`] run on a single server and on the cluster.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cacheward::{Cache, cached_store};
use serde::{Deserialize, Serialize};

use crate::scenarios::failover::breaking_cache;
use crate::{RedisServer, Target, exclusive};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
struct Item {
    name: String,
    version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreError(String);

/// One cached method per return shape, each under its own template, and writes that
/// invalidate them.
#[cached_store(ttl = 60)]
#[async_trait::async_trait]
trait Shapes: Send + Sync {
    #[cached(key = "mt:ro:<id>")]
    async fn result_option(&self, id: &str) -> Result<Option<Item>, StoreError>;

    #[cached(key = "mt:ron:<id>", cache_none)]
    async fn result_option_none(&self, id: &str) -> Result<Option<Item>, StoreError>;

    #[cached(key = "mt:o:<id>")]
    async fn option(&self, id: &str) -> Option<Item>;

    #[cached(key = "mt:on:<id>", cache_none)]
    async fn option_none(&self, id: &str) -> Option<Item>;

    #[cached(key = "mt:r:<id>", ttl = "2m")]
    async fn result(&self, id: &str) -> Result<Item, StoreError>;

    #[cached(key = "mt:p:<id>")]
    async fn plain(&self, id: &str) -> Item;

    /// Fails when `item.name == "fail"`.
    #[invalidates(key = "mt:ro:<id>")]
    #[invalidates(key = "mt:ron:<id>")]
    #[invalidates(key = "mt:o:<id>")]
    #[invalidates(key = "mt:on:<id>")]
    #[invalidates(key = "mt:r:<id>")]
    #[invalidates(key = "mt:p:<id>")]
    async fn put(&self, id: &str, item: Item) -> Result<(), StoreError>;

    /// Not a `Result`: always invalidates.
    #[invalidates(key = "mt:p:<id>")]
    async fn remove(&self, id: &str) -> bool;
}

/// The backing store: `"fail"` makes `Result` reads fail; absent ids are `None`
/// (or the default item for `plain`).
#[derive(Default)]
struct Backing {
    items: Mutex<HashMap<String, Item>>,
    calls: Mutex<HashMap<&'static str, usize>>,
}

impl Backing {
    fn count(&self, method: &'static str) {
        *self.calls.lock().unwrap().entry(method).or_default() += 1;
    }

    fn calls(&self, method: &str) -> usize {
        self.calls.lock().unwrap().get(method).copied().unwrap_or(0)
    }

    fn get(&self, id: &str) -> Option<Item> {
        self.items.lock().unwrap().get(id).cloned()
    }

    fn fetch(&self, id: &str) -> Result<Option<Item>, StoreError> {
        if id == "fail" {
            Err(StoreError("backing store down".into()))
        } else {
            Ok(self.get(id))
        }
    }
}

#[async_trait::async_trait]
impl Shapes for Backing {
    async fn result_option(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.count("result_option");
        self.fetch(id)
    }
    async fn result_option_none(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.count("result_option_none");
        self.fetch(id)
    }
    async fn option(&self, id: &str) -> Option<Item> {
        self.count("option");
        self.get(id)
    }
    async fn option_none(&self, id: &str) -> Option<Item> {
        self.count("option_none");
        self.get(id)
    }
    async fn result(&self, id: &str) -> Result<Item, StoreError> {
        self.count("result");
        self.fetch(id)?
            .ok_or_else(|| StoreError(format!("{id} not found")))
    }
    async fn plain(&self, id: &str) -> Item {
        self.count("plain");
        self.get(id).unwrap_or_default()
    }
    async fn put(&self, id: &str, item: Item) -> Result<(), StoreError> {
        if item.name == "fail" {
            return Err(StoreError("write rejected".into()));
        }
        self.items.lock().unwrap().insert(id.to_owned(), item);
        Ok(())
    }
    async fn remove(&self, id: &str) -> bool {
        self.items.lock().unwrap().remove(id).is_some()
    }
}

fn item(name: &str, version: u32) -> Item {
    Item {
        name: name.into(),
        version,
    }
}

async fn raw_get(target: &Target, key: &str) -> Option<String> {
    target.raw().await.get(key).await
}

async fn raw_pttl(target: &Target, key: &str) -> i64 {
    target.raw().await.pttl(key).await
}

/// The decorator on a cache on the target, with the harness's generous deadline, so
/// a loaded CI machine cannot turn an expected hit into a timeout-miss.
fn redis_store(target: &Target) -> CachingShapes<Backing> {
    CachingShapes::new(Backing::default(), target.cache())
}

/// Hit, miss, storage rules and invalidation for each return shape.
pub async fn shapes(target: &Target) {
    let store = redis_store(target);
    let inner = store.inner();
    store.put("a", item("alpha", 1)).await.unwrap();

    // Stored shapes: the first read misses, the second hits.
    for _ in 0..2 {
        assert_eq!(store.result_option("a").await, Ok(Some(item("alpha", 1))));
        assert_eq!(
            store.result_option_none("a").await,
            Ok(Some(item("alpha", 1)))
        );
        assert_eq!(store.option("a").await, Some(item("alpha", 1)));
        assert_eq!(store.option_none("a").await, Some(item("alpha", 1)));
        assert_eq!(store.result("a").await, Ok(item("alpha", 1)));
        assert_eq!(store.plain("a").await, item("alpha", 1));
    }
    for method in [
        "result_option",
        "result_option_none",
        "option",
        "option_none",
        "result",
        "plain",
    ] {
        assert_eq!(
            inner.calls(method),
            1,
            "{method}: second read must be a hit"
        );
    }

    // The stored value is the JSON of `T` (or of `Option<T>` with cache_none).
    let json = r#"{"name":"alpha","version":1}"#;
    for key in [
        "mt:ro:a", "mt:ron:a", "mt:o:a", "mt:on:a", "mt:r:a", "mt:p:a",
    ] {
        assert_eq!(raw_get(target, key).await.as_deref(), Some(json), "{key}");
    }
    let pttl = raw_pttl(target, "mt:ro:a").await;
    assert!(
        pttl > 50_000 && pttl <= 60_000,
        "ttl = 60 gives a 60 s PTTL, got {pttl}"
    );
    let pttl = raw_pttl(target, "mt:r:a").await;
    assert!(
        pttl > 110_000 && pttl <= 120_000,
        "ttl = \"2m\" gives a 120 s PTTL, got {pttl}"
    );

    // A write invalidates every key it names; the next reads miss and see the new value.
    store.put("a", item("alpha", 2)).await.unwrap();
    for key in [
        "mt:ro:a", "mt:ron:a", "mt:o:a", "mt:on:a", "mt:r:a", "mt:p:a",
    ] {
        assert_eq!(raw_get(target, key).await, None, "{key} invalidated");
    }
    assert_eq!(store.result_option("a").await, Ok(Some(item("alpha", 2))));
    assert_eq!(store.option("a").await, Some(item("alpha", 2)));
    assert_eq!(store.result("a").await, Ok(item("alpha", 2)));
    assert_eq!(store.plain("a").await, item("alpha", 2));
    assert_eq!(inner.calls("result_option"), 2);
    assert_eq!(inner.calls("plain"), 2);

    // A non-Result write always invalidates.
    assert!(store.remove("a").await);
    assert_eq!(raw_get(target, "mt:p:a").await, None);
    assert_eq!(store.plain("a").await, Item::default());

    // None is not stored, unless cache_none.
    for _ in 0..2 {
        assert_eq!(store.result_option("none").await, Ok(None));
        assert_eq!(store.option("none").await, None);
        assert_eq!(store.result_option_none("none").await, Ok(None));
        assert_eq!(store.option_none("none").await, None);
    }
    assert_eq!(
        inner.calls("result_option") - 2,
        2,
        "Ok(None) is read from the inner store each time"
    );
    assert_eq!(
        inner.calls("option") - 2,
        2,
        "None is read from the inner store each time"
    );
    assert_eq!(
        inner.calls("result_option_none"),
        2,
        "cache_none: the second Ok(None) is a hit"
    );
    assert_eq!(
        inner.calls("option_none"),
        2,
        "cache_none: the second None is a hit"
    );
    assert_eq!(raw_get(target, "mt:ro:none").await, None);
    assert_eq!(raw_get(target, "mt:o:none").await, None);
    assert_eq!(
        raw_get(target, "mt:ron:none").await.as_deref(),
        Some("null")
    );
    assert_eq!(raw_get(target, "mt:on:none").await.as_deref(), Some("null"));

    // Err is never stored.
    for _ in 0..2 {
        assert!(store.result_option("fail").await.is_err());
        assert!(store.result_option_none("fail").await.is_err());
        assert!(store.result("fail").await.is_err());
    }
    assert_eq!(inner.calls("result"), 2 + 2);
    assert_eq!(raw_get(target, "mt:ro:fail").await, None);
    assert_eq!(raw_get(target, "mt:ron:fail").await, None);
    assert_eq!(raw_get(target, "mt:r:fail").await, None);
}

/// A failed write invalidates nothing.
pub async fn failed_write(target: &Target) {
    let store = redis_store(target);
    store.put("w", item("kept", 1)).await.unwrap();
    assert_eq!(store.result_option("w").await, Ok(Some(item("kept", 1))));
    assert!(raw_get(target, "mt:ro:w").await.is_some());

    assert!(store.put("w", item("fail", 2)).await.is_err());
    assert!(
        raw_get(target, "mt:ro:w").await.is_some(),
        "an Err write must not invalidate"
    );
    assert_eq!(store.result_option("w").await, Ok(Some(item("kept", 1))));
    assert_eq!(store.inner().calls("result_option"), 1);
}

/// User input full of key syntax maps to distinct, escaped keys.
pub async fn injective_keys(target: &Target) {
    let store = redis_store(target);
    let ids = ["a:b", "a", "b", "a%3Ab", "*", "{x}", "", "a b", "é", "~"];
    for (i, id) in ids.iter().enumerate() {
        store.put(id, item(id, i as u32)).await.unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(store.option(id).await, Some(item(id, i as u32)), "{id:?}");
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.option(id).await,
            Some(item(id, i as u32)),
            "{id:?} (hit)"
        );
    }
    assert_eq!(store.inner().calls("option"), ids.len());
    // The keys are the template's expansion with each value escaped.
    let expected = [
        ("mt:o:a%3Ab", "a:b"),
        ("mt:o:a", "a"),
        ("mt:o:a%253Ab", "a%3Ab"),
        ("mt:o:%2A", "*"),
        ("mt:o:%7Bx%7D", "{x}"),
        ("mt:o:", ""),
        ("mt:o:a%20b", "a b"),
        ("mt:o:%C3%A9", "é"),
        ("mt:o:%7E", "~"),
    ];
    for (key, name) in expected {
        let raw = raw_get(target, key)
            .await
            .unwrap_or_else(|| panic!("{key} missing"));
        let stored: Item = serde_json::from_str(&raw).unwrap();
        assert_eq!(stored.name, name, "{key}");
    }
}

/// Two placeholders: tuples that would collide under naive joining do not.
#[cached_store(key = "mt:pair:<a>:<b>", ttl = 60)]
trait Pairs: Send + Sync {
    async fn pair(&self, a: &str, b: Option<&str>) -> String;
}

struct Echo(AtomicUsize);

impl Pairs for Echo {
    async fn pair(&self, a: &str, b: Option<&str>) -> String {
        self.0.fetch_add(1, Ordering::SeqCst);
        format!("{a}|{b:?}")
    }
}

/// Keys of two placeholders are injective too.
pub async fn pair_keys(target: &Target) {
    let store = CachingPairs::new(Echo(AtomicUsize::new(0)), target.cache());
    let cases: [(&str, Option<&str>); 5] = [
        ("a:b", Some("c")),
        ("a", Some("b:c")),
        ("a", None),
        ("a", Some("~")),
        ("a", Some("")),
    ];
    for _ in 0..2 {
        for (a, b) in cases {
            assert_eq!(store.pair(a, b).await, format!("{a}|{b:?}"));
        }
    }
    assert_eq!(store.inner().0.load(Ordering::SeqCst), cases.len());
    assert!(raw_get(target, "mt:pair:a%3Ab:c").await.is_some());
    assert!(raw_get(target, "mt:pair:a:b%3Ac").await.is_some());
    assert!(raw_get(target, "mt:pair:a:~").await.is_some());
    assert!(raw_get(target, "mt:pair:a:%7E").await.is_some());
    assert!(raw_get(target, "mt:pair:a:").await.is_some());
}

/// Single-flight on the target (multi-threaded runtime).
pub async fn single_flight(target: &Target) {
    single_flight_on(target.cache()).await;
}

/// Single-flight on the memory backend (multi-threaded runtime).
pub async fn single_flight_on_memory() {
    single_flight_on(Cache::memory()).await;
}

/// Single-flight with Redis down: the callers still share one inner call (multi-threaded
/// runtime).
pub async fn single_flight_with_redis_down() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    single_flight_on(Cache::redis(&url).unwrap()).await;
}

/// 100 concurrent callers on a cold key: one inner call, one answer for all.
async fn single_flight_on(cache: Cache) {
    let store = Arc::new(CachingSlow::new(
        SlowStore {
            calls: AtomicUsize::new(0),
        },
        cache,
    ));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.load("cold").await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(Some(item("cold", 7))));
    }
    assert_eq!(
        store.inner().calls.load(Ordering::SeqCst),
        1,
        "inner called exactly once"
    );
    // Errors are not shared: concurrent callers each ask the inner store.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.load("fail").await }));
    }
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    assert_eq!(store.inner().calls.load(Ordering::SeqCst), 1 + 5);
}

#[cached_store(key = "mt:slow:<id>", ttl = 60)]
#[async_trait::async_trait]
trait Slow: Send + Sync {
    async fn load(&self, id: &str) -> Result<Option<Item>, StoreError>;

    #[invalidates]
    async fn forget(&self, id: &str) -> bool;
}

struct SlowStore {
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Slow for SlowStore {
    async fn load(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        if id == "fail" {
            Err(StoreError("no".into()))
        } else {
            Ok(Some(item(id, 7)))
        }
    }

    async fn forget(&self, _id: &str) -> bool {
        true
    }
}

/// A key invalidated while a read of it is in flight: the read's (possibly older)
/// value is returned to its caller but not stored (multi-threaded runtime).
pub async fn invalidated_during_read(target: &Target) {
    let cache = target.cache();
    let store = Arc::new(CachingSlow::new(
        SlowStore {
            calls: AtomicUsize::new(0),
        },
        cache.clone(),
    ));
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.load("race").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(store.forget("race").await);
    assert_eq!(reader.await.unwrap(), Ok(Some(item("race", 7))));
    assert_eq!(
        cache.get::<Item>("mt:slow:race").await,
        None,
        "a stale read must not be stored"
    );
    // The next read stores normally.
    store.load("race").await.unwrap();
    assert_eq!(
        cache.get::<Item>("mt:slow:race").await,
        Some(item("race", 7))
    );
}

/// With Redis killed, every answer equals the inner store's, writes included.
pub async fn redis_down_answers_equal_the_inner_store() {
    let mut target = Target::single();
    let store = redis_store(&target);
    store.put("d", item("before", 1)).await.unwrap();
    assert_eq!(store.result_option("d").await, Ok(Some(item("before", 1))));
    assert_eq!(store.plain("d").await, item("before", 1));

    if let Target::Single(server) = &mut target {
        server.kill();
    }
    // Changed behind the cache's back while Redis is down: the decorator must not
    // answer from anywhere but the inner store.
    store
        .inner()
        .items
        .lock()
        .unwrap()
        .insert("d".into(), item("behind", 2));
    let inner = store.inner();
    for id in ["d", "none", "fail"] {
        assert_eq!(store.result_option(id).await, inner.fetch(id), "{id}");
        assert_eq!(store.result_option_none(id).await, inner.fetch(id), "{id}");
        assert_eq!(store.option(id).await, inner.get(id), "{id}");
        assert_eq!(store.option_none(id).await, inner.get(id), "{id}");
        assert_eq!(
            store.plain(id).await,
            inner.get(id).unwrap_or_default(),
            "{id}"
        );
        assert_eq!(
            store.result(id).await.ok(),
            inner.fetch(id).ok().flatten(),
            "{id}"
        );
    }
    assert_eq!(store.put("d", item("during", 3)).await, Ok(()));
    assert_eq!(store.result_option("d").await, Ok(Some(item("during", 3))));
    assert!(store.remove("d").await);
    assert_eq!(store.option("d").await, None);
    assert!(
        store.cache().stats().errors > 0,
        "the failures were counted"
    );
}

#[cached_store(key = "degraded:<id>", ttl = 60)]
trait Degraded: Send + Sync {
    async fn number(&self, id: u64) -> u64;
}

#[derive(Default)]
struct Doubler(AtomicUsize);

impl Degraded for Doubler {
    async fn number(&self, id: u64) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst);
        id * 2
    }
}

/// A read that timed out is a miss, and its fill is skipped: a `SET` into a Redis
/// that just failed the `GET` would wait out a second deadline. So a call costs one
/// deadline, not two, while the breaker is still closed.
/// (Multi-threaded runtime.)
pub async fn a_failed_read_costs_one_deadline_not_two() {
    let _heavy = exclusive().await;
    let mut server = RedisServer::start();
    let deadline = Duration::from_millis(300);
    // Keep the breaker closed: this is about the calls before it opens.
    let cache = breaking_cache(&server, deadline, 1_000, Duration::from_secs(1));
    let store = CachingDegraded::new(Doubler::default(), cache.clone());
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

#[cached_store(key = "mt:ttl:<id>", ttl = 60, ttl_env = "CACHE_TTL_MACROTEST_SECONDS")]
trait TtlNumbers: Send + Sync {
    async fn number(&self, id: u32) -> u32;
}

struct TtlDoubler;

impl TtlNumbers for TtlDoubler {
    async fn number(&self, id: u32) -> u32 {
        id * 2
    }
}

/// The TTL the child expects, in milliseconds (the compiled 60 s when run directly).
const EXPECT_MS: &str = "CACHEWARD_TEST_EXPECT_TTL_MS";

/// The child half of [`ttl_env_overrides_the_compiled_ttl_and_bad_values_are_ignored`]:
/// the TTL in effect, and the `PTTL` of a key the decorator wrote, equal what the
/// parent expects (the compiled 60 s when run by itself). A test binary runs it as a
/// test whose name contains [`TTL_ENV_CHILD`].
pub async fn ttl_env_child() {
    let expect_ms: u64 = std::env::var(EXPECT_MS).map_or(60_000, |v| v.parse().unwrap());
    let spec = CachingTtlNumbers::<()>::key_specs()[0];
    assert_eq!(spec.ttl_env, Some("CACHE_TTL_MACROTEST_SECONDS"));
    assert_eq!(spec.effective_ttl(), Duration::from_millis(expect_ms));

    let target = Target::single();
    let store = CachingTtlNumbers::new(TtlDoubler, target.cache());
    assert_eq!(store.number(21).await, 42);
    let pttl = target.raw().await.pttl("mt:ttl:21").await;
    let expect = i64::try_from(expect_ms).unwrap();
    assert!(
        pttl > expect * 8 / 10 && pttl <= expect,
        "PTTL {pttl} for an expected {expect} ms"
    );
}

/// The name of the test that runs [`ttl_env_child`]: the parent reruns the current
/// test binary filtered to it, in a child process with the variable set.
pub const TTL_ENV_CHILD: &str = "ttl_env_child";

/// `ttl_env` overrides the compiled TTL at run time; an unparsable value is ignored.
/// The environment cannot be changed safely inside a running test binary, so each
/// value is checked by [`ttl_env_child`] in a child process.
pub fn ttl_env_overrides_the_compiled_ttl_and_bad_values_are_ignored() {
    for (value, expect_ms) in [
        ("7", 7_000),
        ("  90 ", 90_000),
        ("soon", 60_000),
        ("0", 60_000),
        ("", 60_000),
    ] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([TTL_ENV_CHILD, "--test-threads=1"])
            .env("CACHE_TTL_MACROTEST_SECONDS", value)
            .env(EXPECT_MS, expect_ms.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "CACHE_TTL_MACROTEST_SECONDS={value:?}: expected {expect_ms} ms\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
