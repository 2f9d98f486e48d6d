//! `Cache` on a real Redis Cluster: batches split by slot, hash tags, SCAN + UNLINK
//! purge on every primary, health.

use std::collections::BTreeSet;
use std::time::Duration;

use cacheward::{Backend, Cache};
use cacheward_tests::{RedisCluster, Target};

const TTL: Duration = Duration::from_secs(60);

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

/// A cache that has made its first connection (the first operation on a fresh
/// cache may miss while the slot map loads within the deadline).
async fn warm(cache: &Cache) {
    for _ in 0..100 {
        if cache.health().await.healthy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the cache never reached the cluster: {:?}",
        cache.health().await
    );
}

#[tokio::test]
async fn batches_spanning_every_primary_are_split_by_slot() {
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

#[tokio::test]
async fn single_key_operations_follow_the_slot_map() {
    let target = Target::cluster();
    let cache = target.cache();
    warm(&cache).await;
    for i in 0..50 {
        let key = format!("single:{i}");
        assert_eq!(cache.get::<String>(&key).await, None);
        cache.set(&key, &format!("value {i}"), TTL).await;
        assert_eq!(cache.get::<String>(&key).await, Some(format!("value {i}")));
    }
    let mut raw = target.raw().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg("single:3")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(ttl > 50_000 && ttl <= 60_000, "PX set from the TTL: {ttl}");
    cache.del("single:3").await;
    assert_eq!(cache.get::<String>("single:3").await, None);
    assert_eq!(cache.stats().errors, 0);
}

/// How many keys the target holds (`DBSIZE`, summed over the primaries of a cluster).
async fn dbsize(target: &Target) -> u64 {
    let mut raw = target.raw().await;
    redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap()
}

/// `purge_prefix` removes exactly the keys under the prefix, taking glob characters
/// literally, on a single server and on every primary of a cluster.
async fn purge_scenario(target: &Target) {
    let cache = target.cache();
    warm(&cache).await;

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

#[tokio::test]
async fn purge_prefix_on_every_primary_of_a_cluster() {
    purge_scenario(&Target::cluster()).await;
}

#[tokio::test]
async fn purge_prefix_on_a_single_server() {
    purge_scenario(&Target::single()).await;
}

#[tokio::test]
async fn purge_prefix_on_memory_and_pass_through_is_zero() {
    assert_eq!(Cache::memory().purge_prefix("x").await, 0);
    assert_eq!(Cache::pass_through().purge_prefix("x").await, 0);
}

#[tokio::test]
async fn health_pings_the_cluster() {
    let target = Target::cluster();
    let cache = target.cache();
    warm(&cache).await;
    let health = cache.health().await;
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.backend, Backend::RedisCluster);
    assert!(health.latency.is_some());
}

#[tokio::test]
async fn a_cluster_that_is_not_there_is_a_miss_not_an_error() {
    let port = cacheward_tests::free_port();
    let cache = Cache::redis_cluster([format!("127.0.0.1:{port}")]).expect("well-formed seed");
    assert_eq!(cache.backend(), Backend::RedisCluster);
    cache.set("absent:key", &1u8, TTL).await;
    assert_eq!(cache.get::<u8>("absent:key").await, None);
    let health = cache.health().await;
    assert!(!health.healthy);
    assert!(cache.stats().errors > 0);
}

#[test]
fn malformed_seeds_are_a_config_error() {
    assert!(Cache::redis_cluster(Vec::<String>::new()).is_err());
    assert!(Cache::redis_cluster(["redis://127.0.0.1:notaport"]).is_err());
}

/// A cache first used in one runtime keeps working in another after the first is
/// gone (a cache in a `static`, used by several `#[tokio::test]`s or runtimes).
fn outlive_scenario(target: &Target) {
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

#[test]
fn a_cluster_cache_outlives_the_runtime_that_first_used_it() {
    outlive_scenario(&Target::cluster());
}

#[test]
fn a_single_server_cache_outlives_the_runtime_that_first_used_it() {
    outlive_scenario(&Target::single());
}
