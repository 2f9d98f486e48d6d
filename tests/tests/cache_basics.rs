//! The cache on a healthy Redis (and the backends that are not Redis): round trips,
//! TTLs on every key written, deletes, batches, undecodable values, compression.
//!
//! The Redis scenarios take a [`Target`] so the cluster suite can run them as well.

use std::time::Duration;

use cacheward::{Backend, Cache, CircuitState, DIRECT_LABEL};
use cacheward_tests::{RawConnection, Target};
use serde::{Deserialize, Serialize};

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

/// A generous deadline: these tests check behaviour, not speed, on a busy machine.
fn cache_for(target: &Target) -> Cache {
    target.cache()
}

async fn pttl(raw: &mut RawConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(raw).await.unwrap()
}

async fn exists(raw: &mut RawConnection, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(raw)
        .await
        .unwrap();
    n == 1
}

async fn round_trip_scenario(target: &Target) {
    let cache = cache_for(target);
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
    let ms = pttl(&mut raw, key).await;
    assert!(ms > 0 && ms <= 300_000, "PTTL {ms}");

    // A sub-second TTL is kept in milliseconds.
    cache.set("short", &1_u8, Duration::from_millis(1500)).await;
    let ms = pttl(&mut raw, "short").await;
    assert!(ms > 0 && ms <= 1500, "PTTL {ms}");

    cache.del(key).await;
    assert!(!exists(&mut raw, key).await);
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

async fn batch_scenario(target: &Target) {
    let cache = cache_for(target);
    let mut raw = target.raw().await;
    let entries: Vec<(String, Policy)> = (0..10)
        .map(|i| (format!("copilot:llm:policy:t{i}"), policy(&format!("t{i}"))))
        .collect();
    cache.set_many(&entries, Duration::from_secs(60)).await;
    for (key, _) in &entries {
        let ms = pttl(&mut raw, key).await;
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
        assert!(!exists(&mut raw, key).await, "{key}");
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

async fn garbage_scenario(target: &Target) {
    let cache = cache_for(target);
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
            if !exists(&mut raw, key).await {
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

async fn compression_scenario(target: &Target) {
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

/// A backend that answers with an error (WRONGTYPE) gives a miss, counted, never surfaced.
async fn erroring_backend_scenario(target: &Target) {
    let cache = cache_for(target);
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

#[tokio::test]
async fn round_trip() {
    round_trip_scenario(&Target::single()).await;
}

#[tokio::test]
async fn batch_operations() {
    batch_scenario(&Target::single()).await;
}

#[tokio::test]
async fn garbage_is_a_miss_deleted_and_counted() {
    garbage_scenario(&Target::single()).await;
}

#[tokio::test]
async fn compressed_and_plain_entries_coexist() {
    compression_scenario(&Target::single()).await;
}

#[tokio::test]
async fn an_erroring_backend_gives_misses() {
    erroring_backend_scenario(&Target::single()).await;
}

#[tokio::test]
async fn pass_through_caches_nothing() {
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

#[tokio::test]
async fn memory_backend_honours_ttls_and_its_bound() {
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

#[test]
fn cache_is_cheap_to_clone_and_thread_safe() {
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
