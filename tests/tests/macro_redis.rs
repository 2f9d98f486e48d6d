//! Generated decorators against a real redis-server: every return shape, what is and
//! is not stored, the exact keys and TTLs in Redis, injective keys, failed writes,
//! single-flight and Redis going away.
//!
//! Redis-touching bodies are `async fn …_scenario(target: &Target)` so that the
//! cluster suite can run them on a Redis Cluster too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cacheward::{Cache, cached_store};
use cacheward_tests::Target;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Item {
    pub name: String,
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// One cached method per return shape, each under its own template, and writes that
/// invalidate them.
#[cached_store(ttl = 60)]
#[async_trait::async_trait]
pub trait Shapes: Send + Sync {
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
pub struct Backing {
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
    let mut conn = target.raw().await;
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

async fn raw_pttl(target: &Target, key: &str) -> i64 {
    let mut conn = target.raw().await;
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// The cache for a target (the one place to change for other kinds of target).
fn cache_for(target: &Target) -> Cache {
    Cache::redis(&target.url()).expect("the target's URL is valid")
}

fn redis_store(target: &Target) -> CachingShapes<Backing> {
    CachingShapes::new(Backing::default(), cache_for(target))
}

/// Hit, miss, storage rules and invalidation for each return shape.
pub async fn shapes_scenario(target: &Target) {
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
pub async fn failed_write_scenario(target: &Target) {
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
pub async fn injective_keys_scenario(target: &Target) {
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

pub async fn pair_keys_scenario(target: &Target) {
    let store = CachingPairs::new(
        Echo(AtomicUsize::new(0)),
        Cache::redis(&target.url()).unwrap(),
    );
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

/// 100 concurrent callers on a cold key: one inner call, one answer for all.
pub async fn single_flight_scenario(cache: Cache) {
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
pub trait Slow: Send + Sync {
    async fn load(&self, id: &str) -> Result<Option<Item>, StoreError>;

    #[invalidates]
    async fn forget(&self, id: &str) -> bool;
}

pub struct SlowStore {
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
/// value is returned to its caller but not stored.
pub async fn invalidated_during_read_scenario(cache: Cache) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidated_during_read_on_redis() {
    let target = Target::single();
    invalidated_during_read_scenario(cache_for(&target)).await;
}

#[tokio::test]
async fn shapes_on_redis() {
    shapes_scenario(&Target::single()).await;
}

#[tokio::test]
async fn failed_write_on_redis() {
    failed_write_scenario(&Target::single()).await;
}

#[tokio::test]
async fn injective_keys_on_redis() {
    injective_keys_scenario(&Target::single()).await;
}

#[tokio::test]
async fn pair_keys_on_redis() {
    pair_keys_scenario(&Target::single()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_on_redis() {
    let target = Target::single();
    single_flight_scenario(cache_for(&target)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_on_memory() {
    single_flight_scenario(Cache::memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_with_redis_down() {
    let mut target = Target::single();
    let url = target.url();
    if let Target::Single(server) = &mut target {
        server.kill();
    }
    single_flight_scenario(Cache::redis(&url).unwrap()).await;
}

/// With Redis killed, every answer equals the inner store's, writes included.
#[tokio::test]
async fn redis_down_answers_equal_the_inner_store() {
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
