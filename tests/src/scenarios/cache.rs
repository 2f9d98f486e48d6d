//! `Cache` on a healthy Redis (and the backends that are not Redis): round trips,
//! TTLs on every key written, deletes, batches split by slot, undecodable values,
//! compression, purge, health, TLS.
//!
//! The scenarios that take a [`Target`] run on a single server and on the cluster.

use std::collections::BTreeSet;
use std::time::Duration;

use cacheward::{Backend, Cache, CircuitState, Codec, DIRECT_LABEL};
use serde::{Deserialize, Serialize};

use crate::{RedisCluster, Target};

const TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Policy {
    tenant_id: String,
    max_tokens: u32,
    models: Vec<String>,
}

fn policy(tenant: &str) -> Policy {
    Policy {
        tenant_id: tenant.to_owned(),
        max_tokens: 4096,
        models: vec!["small".into(), "large".into()],
    }
}

/// A cache on `target` that has made its first connection (the first operation on
/// a fresh cluster cache may miss while the slot map loads), with the harness's
/// generous deadline: these scenarios check behaviour, not speed, on a busy machine.
async fn warm_cache(target: &Target) -> Cache {
    let cache = target.cache();
    warm(&cache).await;
    cache
}

/// Waits until `cache` reports healthy.
async fn warm(cache: &Cache) {
    for _ in 0..100 {
        if cache.health().await.healthy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the cache never reached Redis: {:?}", cache.health().await);
}

/// A value round-trips as plain JSON with its TTL (sub-second TTLs in milliseconds),
/// deletes remove it, and stats, label stats and health agree.
pub async fn round_trip(target: &Target) {
    let cache = warm_cache(target).await;
    let mut raw = target.raw().await;
    let key = "copilot:llm:policy:acme";

    assert_eq!(cache.get::<Policy>(key).await, None);
    cache
        .set(key, &policy("acme"), Duration::from_secs(300))
        .await;
    assert_eq!(cache.get::<Policy>(key).await, Some(policy("acme")));

    // Stored as plain JSON (readable in redis-cli), with a TTL.
    let stored: String = redis::cmd("GET")
        .arg(key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Policy>(&stored).unwrap(),
        policy("acme")
    );
    let ms = raw.pttl(key).await;
    assert!(ms > 0 && ms <= 300_000, "PTTL {ms}");

    // A sub-second TTL is kept in milliseconds.
    cache.set("short", &1_u8, Duration::from_millis(1500)).await;
    let ms = raw.pttl("short").await;
    assert!(ms > 0 && ms <= 1500, "PTTL {ms}");

    cache.del(key).await;
    assert!(!raw.exists(key).await);
    assert_eq!(cache.get::<Policy>(key).await, None);

    let stats = cache.stats();
    assert_eq!(stats.hits, 1);
    assert_eq!(stats.misses, 2);
    assert_eq!(stats.sets, 2);
    assert_eq!(stats.deletes, 1);
    assert_eq!(stats.errors, 0);
    assert_eq!(cache.label_stats(DIRECT_LABEL), stats);
    assert_eq!(cache.stats_by_label(), vec![(DIRECT_LABEL, stats)]);

    let health = cache.health().await;
    assert!(health.healthy, "{health:?}");
    assert!(health.latency.is_some());
    assert_eq!(health.error, None);
    assert_eq!(health.circuit, Some(CircuitState::Closed));
}

/// `set_many` / `get_many` / `del_many`: TTLs on every key, results in the caller's
/// order with misses in place, empty batches as no-ops.
pub async fn batch(target: &Target) {
    let cache = warm_cache(target).await;
    let mut raw = target.raw().await;
    let entries: Vec<(String, Policy)> = (0..10)
        .map(|i| (format!("copilot:llm:policy:t{i}"), policy(&format!("t{i}"))))
        .collect();
    cache.set_many(&entries, Duration::from_secs(60)).await;
    for (key, _) in &entries {
        let ms = raw.pttl(key).await;
        assert!(ms > 0 && ms <= 60_000, "{key}: PTTL {ms}");
    }

    let mut keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
    keys.insert(3, "copilot:llm:policy:missing".into());
    let got: Vec<Option<Policy>> = cache.get_many(&keys).await;
    assert_eq!(got.len(), 11);
    assert_eq!(got[3], None);
    let found: Vec<Policy> = got.into_iter().flatten().collect();
    assert_eq!(
        found,
        entries.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>()
    );

    cache.del_many(&keys[..5]).await;
    for key in &keys[..5] {
        assert!(!raw.exists(key).await, "{key}");
    }
    let after: Vec<Option<Policy>> = cache.get_many(&keys).await;
    assert_eq!(after.iter().filter(|v| v.is_some()).count(), 6);

    // Empty batches are no-ops, not errors.
    cache
        .set_many::<Policy, &str>(&[], Duration::from_secs(1))
        .await;
    assert!(cache.get_many::<Policy, &str>(&[]).await.is_empty());
    cache.del_many::<&str>(&[]).await;

    let stats = cache.stats();
    assert_eq!(stats.sets, 10);
    assert_eq!(stats.hits, 10 + 6);
    assert_eq!(stats.misses, 1 + 5);
    assert_eq!(stats.deletes, 5);
    assert_eq!(stats.errors, 0);
}

/// An undecodable value is a miss, counted, and deleted in the background.
pub async fn garbage(target: &Target) {
    let cache = warm_cache(target).await;
    let mut raw = target.raw().await;
    for (key, junk) in [
        ("copilot:garbage:text", &b"{not json"[..]),
        ("copilot:garbage:schema", br#"{"tenant_id": 42}"#),
        ("copilot:garbage:marker", b"\0LZ4\x10\0\0\0nonsense"),
    ] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(junk)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(cache.get::<Policy>(key).await, None, "{key}");
        // The entry is deleted in the background.
        let mut gone = false;
        for _ in 0..100 {
            if !raw.exists(key).await {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "{key} was not deleted");
    }
    let stats = cache.stats();
    assert_eq!(stats.decode_failures, 3);
    assert_eq!(stats.hits, 0);
    assert_eq!(stats.misses, 3);
    assert_eq!(stats.deletes, 3);
}

/// Compressed and plain entries coexist: each cache reads what the other wrote, and
/// small values stay readable JSON.
pub async fn compression(target: &Target) {
    let compressing = target.builder().compress_above(1024).build().unwrap();
    let plain = target.builder().no_compression().build().unwrap();
    let mut raw = target.raw().await;
    let mut big = policy("big");
    big.models = (0..500).map(|i| format!("model-{}", i % 7)).collect();
    let json_len = serde_json::to_vec(&big).unwrap().len();
    assert!(json_len > 1024);

    compressing
        .set("big:lz4", &big, Duration::from_secs(60))
        .await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg("big:lz4")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        stored.starts_with(b"\0LZ4"),
        "compressed entries carry the marker"
    );
    assert!(
        stored.len() < json_len / 2,
        "{} vs {json_len}",
        stored.len()
    );
    assert_eq!(
        compressing.get::<Policy>("big:lz4").await,
        Some(big.clone())
    );

    // Small values stay readable JSON even with compression on.
    compressing
        .set("small", &policy("s"), Duration::from_secs(60))
        .await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg("small")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored[0], b'{');

    // Both forms coexist: each cache reads what the other wrote.
    plain.set("big:json", &big, Duration::from_secs(60)).await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg("big:json")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored[0], b'{');
    assert_eq!(plain.get::<Policy>("big:lz4").await, Some(big.clone()));
    assert_eq!(compressing.get::<Policy>("big:json").await, Some(big));
    assert_eq!(
        plain.stats().decode_failures + compressing.stats().decode_failures,
        0
    );
}

/// MessagePack and JSON entries coexist: a cache writing MessagePack and one writing
/// JSON (a rolling deploy turning the codec on) each read what the other wrote, one key
/// at a time and in batches, compressed or not, and nothing is counted as undecodable.
pub async fn codecs(target: &Target) {
    let binary = target
        .builder()
        .codec(Codec::MessagePack)
        .compress_above(1024)
        .build()
        .unwrap();
    let json = target.builder().build().unwrap();
    let mut raw = target.raw().await;
    let ttl = Duration::from_secs(60);
    let small = policy("small");
    let mut big = policy("big");
    big.models = (0..500).map(|i| format!("model-{}", i % 7)).collect();

    binary.set("mp:small", &small, ttl).await;
    binary.set("mp:big", &big, ttl).await;
    json.set("js:small", &small, ttl).await;
    let mut stored = Vec::new();
    for key in ["mp:small", "mp:big", "js:small"] {
        let bytes: Vec<u8> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
        stored.push(bytes);
    }
    let [mp_small, mp_big, js_small] = <[Vec<u8>; 3]>::try_from(stored).unwrap();
    assert!(mp_small.starts_with(b"\0MPK"), "{mp_small:?}");
    assert!(
        mp_small.len() < js_small.len(),
        "{} vs {}",
        mp_small.len(),
        js_small.len()
    );
    assert!(
        mp_big.starts_with(b"\0LZ4"),
        "large MessagePack values are compressed"
    );
    assert_eq!(js_small[0], b'{', "the default stays JSON");

    for cache in [&binary, &json] {
        assert_eq!(cache.get::<Policy>("mp:small").await, Some(small.clone()));
        assert_eq!(cache.get::<Policy>("mp:big").await, Some(big.clone()));
        assert_eq!(cache.get::<Policy>("js:small").await, Some(small.clone()));
        let batch: Vec<Option<Policy>> = cache.get_many(&["mp:small", "js:small", "none"]).await;
        assert_eq!(batch, vec![Some(small.clone()), Some(small.clone()), None]);
    }
    // A value of the wrong shape is a miss and is deleted, as a JSON one is.
    binary.set("mp:wrong", &42_u32, ttl).await;
    assert_eq!(json.get::<Policy>("mp:wrong").await, None);
    // Deleted in the background: give it up to 2 s.
    let mut left: Option<Vec<u8>> = Some(Vec::new());
    for _ in 0..200 {
        left = redis::cmd("GET")
            .arg("mp:wrong")
            .query_async(&mut raw)
            .await
            .unwrap();
        if left.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, None, "the undecodable entry is deleted");
    assert_eq!(binary.stats().decode_failures, 0);
    assert_eq!(json.stats().decode_failures, 1);
}

/// Upstash's REST API carries strings: a cache asked for MessagePack writes JSON there.
pub async fn codec_falls_back_to_json(target: &Target) {
    let cache = target.builder().codec(Codec::MessagePack).build().unwrap();
    cache
        .set("mp:small", &policy("small"), Duration::from_secs(60))
        .await;
    let stored: Vec<u8> = redis::cmd("GET")
        .arg("mp:small")
        .query_async(&mut target.raw().await)
        .await
        .unwrap();
    assert_eq!(stored[0], b'{');
    assert_eq!(cache.get::<Policy>("mp:small").await, Some(policy("small")));
}

/// A backend that answers with an error (WRONGTYPE) gives a miss, counted, never surfaced.
pub async fn erroring_backend(target: &Target) {
    let cache = warm_cache(target).await;
    let mut raw = target.raw().await;
    let _: () = redis::cmd("RPUSH")
        .arg("a:list")
        .arg("x")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(cache.get::<String>("a:list").await, None);
    let got: Vec<Option<String>> = cache.get_many(&["a:list"]).await;
    assert_eq!(got, vec![None]);
    let stats = cache.stats();
    assert_eq!(stats.errors, 1, "{stats:?}");
    assert_eq!(stats.misses, 2);
    // A command refused by a live server does not open the breaker.
    for _ in 0..10 {
        assert_eq!(cache.get::<String>("a:list").await, None);
    }
    assert_eq!(cache.health().await.circuit, Some(CircuitState::Closed));
    assert_eq!(cache.stats().breaker_openings, 0);
}

/// The pass-through backend stores nothing and is always healthy.
pub async fn pass_through_caches_nothing() {
    let cache = Cache::pass_through();
    assert_eq!(cache.backend(), Backend::PassThrough);
    cache.set("k", &1_u32, Duration::from_secs(60)).await;
    assert_eq!(cache.get::<u32>("k").await, None);
    assert_eq!(
        cache.get_many::<u32, _>(&["k", "j"]).await,
        vec![None, None]
    );
    cache.del("k").await;
    let health = cache.health().await;
    assert!(health.healthy);
    assert_eq!(health.backend, Backend::PassThrough);
    assert_eq!(health.circuit, None);
    assert_eq!(cache.stats().misses, 3);
}

/// The memory backend expires entries and evicts beyond its capacity.
pub async fn memory_backend_honours_ttls_and_its_bound() {
    let cache = Cache::builder()
        .memory()
        .memory_capacity(3)
        .build()
        .unwrap();
    assert_eq!(cache.backend(), Backend::Memory);
    for i in 0..5_u32 {
        cache
            .set(&format!("k{i}"), &i, Duration::from_secs(60 + u64::from(i)))
            .await;
    }
    let got: Vec<Option<u32>> = cache.get_many(&["k0", "k1", "k2", "k3", "k4"]).await;
    assert_eq!(got, vec![None, None, Some(2), Some(3), Some(4)]);

    cache.set("short", &"x", Duration::from_millis(50)).await;
    assert_eq!(cache.get::<String>("short").await.as_deref(), Some("x"));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(cache.get::<String>("short").await, None);

    cache.del("k4").await;
    assert_eq!(cache.get::<u32>("k4").await, None);
    assert!(cache.health().await.healthy);
}

/// `Cache` and the futures of its operations can move between threads.
pub fn cache_is_cheap_to_clone_and_thread_safe() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Cache>();
    // The futures of every operation are Send, so they can be spawned.
    fn assert_send<T: Send>(_: T) {}
    let cache = Cache::pass_through();
    assert_send(cache.get::<u32>("k"));
    assert_send(cache.set("k", &1_u32, Duration::from_secs(1)));
    assert_send(cache.get_many::<u32, &str>(&[]));
    assert_send(cache.health());
}

/// The cluster behind a cluster target.
fn cluster_of(target: &Target) -> &RedisCluster {
    match target {
        Target::Cluster(c) => c,
        _ => unreachable!("a cluster target"),
    }
}

/// How many keys each live primary holds (`DBSIZE` per primary).
async fn keys_per_primary(cluster: &RedisCluster) -> Vec<(u16, u64)> {
    let mut out = Vec::new();
    for node in cluster.primaries() {
        let mut c = cluster.node_connection(node.port).await;
        let n: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
        out.push((node.port, n));
    }
    out
}

/// Batches whose keys span every primary of the cluster are split by slot; hash-tagged
/// keys batch together.
pub async fn batches_spanning_every_primary_are_split_by_slot() {
    let target = Target::cluster();
    let cluster = cluster_of(&target);
    let cache = target.cache();
    assert_eq!(cache.backend(), Backend::RedisCluster);
    warm(&cache).await;

    let keys: Vec<String> = (0..300).map(|i| format!("batch:item:{i}")).collect();
    let slots: BTreeSet<u16> = keys.iter().map(|k| cluster.keyslot(k)).collect();
    assert!(slots.len() > 200, "keys should spread over many slots");

    let entries: Vec<(String, u32)> = keys.iter().cloned().zip(0..).collect();
    cache.set_many(&entries, TTL).await;
    let per_primary = keys_per_primary(cluster).await;
    assert!(
        per_primary.iter().all(|&(_, n)| n > 50),
        "every primary should hold part of the batch: {per_primary:?}"
    );

    // Reads come back in the caller's order, interleaved with misses.
    let mut asked: Vec<String> = keys.clone();
    asked.insert(7, "batch:absent:1".into());
    asked.push("batch:absent:2".into());
    let got: Vec<Option<u32>> = cache.get_many(&asked).await;
    let mut expected: Vec<Option<u32>> = (0..300).map(Some).collect();
    expected.insert(7, None);
    expected.push(None);
    assert_eq!(got, expected);

    // Hash-tagged keys of a template live in one slot and batch together.
    let tagged: Vec<(String, String)> = (0..20)
        .map(|i| (format!("copilot:{{t1}}:doc:{i}"), format!("v{i}")))
        .collect();
    cache.set_many(&tagged, TTL).await;
    let tagged_slots: BTreeSet<u16> = tagged.iter().map(|(k, _)| cluster.keyslot(k)).collect();
    assert_eq!(tagged_slots.len(), 1);
    let tagged_keys: Vec<&str> = tagged.iter().map(|(k, _)| k.as_str()).collect();
    let got: Vec<Option<String>> = cache.get_many(&tagged_keys).await;
    assert_eq!(
        got,
        tagged
            .iter()
            .map(|(_, v)| Some(v.clone()))
            .collect::<Vec<_>>()
    );

    cache.del_many(&keys).await;
    let got: Vec<Option<u32>> = cache.get_many(&keys).await;
    assert!(got.iter().all(Option::is_none), "deleted across every slot");
    let left: u64 = keys_per_primary(cluster)
        .await
        .iter()
        .map(|&(_, n)| n)
        .sum();
    assert_eq!(left, 20, "only the tagged keys remain");

    let stats = cache.stats();
    assert_eq!(stats.errors, 0, "no CROSSSLOT or other error: {stats:?}");
}

/// Single-key reads and writes, with the TTL set in milliseconds.
pub async fn single_key_operations(target: &Target) {
    let cache = warm_cache(target).await;
    for i in 0..50 {
        let key = format!("single:{i}");
        assert_eq!(cache.get::<String>(&key).await, None);
        cache.set(&key, &format!("value {i}"), TTL).await;
        assert_eq!(cache.get::<String>(&key).await, Some(format!("value {i}")));
    }
    let ttl = target.raw().await.pttl("single:3").await;
    assert!(ttl > 50_000 && ttl <= 60_000, "PX set from the TTL: {ttl}");
    cache.del("single:3").await;
    assert_eq!(cache.get::<String>("single:3").await, None);
    assert_eq!(cache.stats().errors, 0);
}

/// How many keys the target holds (`DBSIZE`, summed over the primaries of a cluster).
async fn dbsize(target: &Target) -> u64 {
    target.raw().await.dbsize().await
}

/// `purge_prefix` removes exactly the keys under the prefix, taking glob characters
/// literally, on a single server and on every primary of a cluster.
pub async fn purge(target: &Target) {
    let cache = warm_cache(target).await;

    let purge: Vec<(String, u8)> = (0..400).map(|i| (format!("purge:k{i}"), 1)).collect();
    // Glob characters in the prefix must match literally: `pu*ge:` must not match
    // `purge:` keys, nor the other way round; `[`/`]`/`?`/`\` likewise.
    let glob: Vec<(String, u8)> = (0..30).map(|i| (format!("pu*ge:k{i}"), 1)).collect();
    let brackets: Vec<(String, u8)> = (0..10).map(|i| (format!("p[u]r?g\\e]]:k{i}"), 1)).collect();
    let keep: Vec<(String, u8)> = (0..50).map(|i| (format!("keep:purge:k{i}"), 1)).collect();
    for batch in [&purge, &glob, &brackets, &keep] {
        cache.set_many(batch, TTL).await;
    }
    assert_eq!(dbsize(target).await, 490);
    if let Target::Cluster(cluster) = target {
        assert!(
            keys_per_primary(cluster)
                .await
                .iter()
                .all(|&(_, n)| n > 100),
            "the purged keys live on every primary"
        );
    }

    assert_eq!(cache.purge_prefix("purge:").await, 400);
    assert_eq!(dbsize(target).await, 90);
    assert_eq!(cache.purge_prefix("pu*ge:").await, 30);
    assert_eq!(cache.purge_prefix("p[u]r?g\\e]]:").await, 10);
    assert_eq!(cache.purge_prefix("purge:").await, 0);
    assert_eq!(dbsize(target).await, 50);
    assert_eq!(
        cache.purge_prefix("").await,
        50,
        "an empty prefix is everything"
    );
    assert_eq!(dbsize(target).await, 0);
    assert_eq!(cache.stats().errors, 0);
}

/// Purging a backend that is not Redis removes nothing.
pub async fn purge_prefix_on_memory_and_pass_through_is_zero() {
    assert_eq!(Cache::memory().purge_prefix("x").await, 0);
    assert_eq!(Cache::pass_through().purge_prefix("x").await, 0);
}

/// `health` pings the server, the cluster or the REST front, and names the backend.
pub async fn health(target: &Target) {
    let cache = warm_cache(target).await;
    let health = cache.health().await;
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.backend, target.backend());
    assert!(health.latency.is_some());
}

/// Seeds of a cluster nobody listens on give misses and an unhealthy report.
pub async fn a_cluster_that_is_not_there_is_a_miss_not_an_error() {
    let port = crate::free_port();
    let cache = Cache::redis_cluster([format!("127.0.0.1:{port}")]).expect("well-formed seed");
    assert_eq!(cache.backend(), Backend::RedisCluster);
    cache.set("absent:key", &1u8, TTL).await;
    assert_eq!(cache.get::<u8>("absent:key").await, None);
    let health = cache.health().await;
    assert!(!health.healthy);
    assert!(cache.stats().errors > 0);
}

/// No seeds, or a seed that is not a URL, is a configuration error.
pub fn malformed_seeds_are_a_config_error() {
    assert!(Cache::redis_cluster(Vec::<String>::new()).is_err());
    assert!(Cache::redis_cluster(["redis://127.0.0.1:notaport"]).is_err());
}

/// A cache first used in one runtime keeps working in another after the first is
/// gone (a cache in a `static`, used by several `#[tokio::test]`s or runtimes).
pub fn outlives_the_runtime_that_first_used_it(target: &Target) {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let cache = first.block_on(async {
        let cache = target.cache();
        warm(&cache).await;
        cache.set("outlive:k", &1u32, TTL).await;
        assert_eq!(cache.get::<u32>("outlive:k").await, Some(1));
        cache
    });
    drop(first);
    runtime().block_on(async {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if cache.get::<u32>("outlive:k").await == Some(1) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the cache never recovered in the new runtime: {:?}",
                cache.health().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// `rediss://` to a server whose certificate a private CA signed: trusted with that
/// CA's root, refused without it.
pub async fn rediss_round_trip_with_a_private_ca() {
    let server = crate::tls::start_tls_server();
    let url = server.url();
    let ca = server.ca_certificate();

    let cache = Cache::builder()
        .redis_url(&url)
        .tls_root_ca(ca)
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    cache
        .set("tls:k", &"over tls", Duration::from_secs(60))
        .await;
    assert_eq!(
        cache.get::<String>("tls:k").await.as_deref(),
        Some("over tls")
    );
    assert!(cache.health().await.healthy);

    // Without the CA the certificate is not trusted: a miss, and health says why.
    let untrusted = Cache::builder()
        .redis_url(&url)
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    assert_eq!(untrusted.get::<String>("tls:k").await, None);
    let health = untrusted.health().await;
    assert!(!health.healthy);
    let err = health.error.unwrap();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
