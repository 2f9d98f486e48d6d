//! Tags against a real Redis (single server and cluster): one O(1) invalidation drops
//! every entry of a tenant on every instance, and a load that raced it is never served.
//!
//! The reads go through the runtime's tagged read-through, the function the generated
//! decorators call for templates with tags.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::{RedisServer, Target};
use cacheward::__private::{Timing, near_path::Cloned, read_through_with, shape::ResultOption};
use cacheward::Cache;
use cacheward::inventory::{KeyInfo, KeySpec};

fn spec(template: &'static str) -> &'static KeySpec {
    Box::leak(Box::new(KeySpec::new(KeyInfo {
        trait_name: "ConfigStore",
        template,
        ttl: Duration::from_secs(300),
        ttl_env: None,
        value_type: "String",
        cache_none: false,
        read_by: &["get"],
        invalidated_by: &[],
        tags: &[],
    })))
}

/// Reads `key` tagged `tenant:<tenant>` through the tagged read-through; the inner
/// store answers `answer` and counts its calls.
async fn read(
    cache: &Cache,
    spec: &'static KeySpec,
    key: String,
    tenant: &str,
    calls: &AtomicUsize,
    answer: &str,
) -> String {
    let answer = answer.to_owned();
    read_through_with(
        cache,
        spec,
        key,
        [format!("tenant:{tenant}")],
        Timing::default(),
        ResultOption,
        Cloned,
        || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(Some(answer))
        },
    )
    .await
    .unwrap()
    .unwrap()
}

/// A tenant's entries under two templates all miss after another instance invalidates its tag.
pub async fn tenant(target: &Target) {
    let config = spec("tags:config:<tenant_id>:<user_id>");
    let policy = spec("tags:policy:<tenant_id>");
    let a = target.cache();
    let b = target.cache();
    let calls = AtomicUsize::new(0);
    for (tenant, user) in [("acme", "u1"), ("acme", "u2"), ("globex", "u1")] {
        read(
            &a,
            config,
            format!("tags:config:{tenant}:{user}"),
            tenant,
            &calls,
            "v1",
        )
        .await;
    }
    for tenant in ["acme", "globex"] {
        read(
            &a,
            policy,
            format!("tags:policy:{tenant}"),
            tenant,
            &calls,
            "p1",
        )
        .await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // All hits now.
    for (tenant, user) in [("acme", "u1"), ("acme", "u2"), ("globex", "u1")] {
        read(
            &a,
            config,
            format!("tags:config:{tenant}:{user}"),
            tenant,
            &calls,
            "v1",
        )
        .await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5);

    b.invalidate_tag("tenant:acme").await;

    // Every acme entry misses on A, under both templates; globex still hits.
    let got = read(
        &a,
        config,
        "tags:config:acme:u1".into(),
        "acme",
        &calls,
        "v2",
    )
    .await;
    assert_eq!(got, "v2");
    read(
        &a,
        config,
        "tags:config:acme:u2".into(),
        "acme",
        &calls,
        "v2",
    )
    .await;
    read(&a, policy, "tags:policy:acme".into(), "acme", &calls, "p2").await;
    assert_eq!(calls.load(Ordering::SeqCst), 8);
    let got = read(
        &a,
        config,
        "tags:config:globex:u1".into(),
        "globex",
        &calls,
        "x",
    )
    .await;
    assert_eq!(got, "v1", "another tenant still hits");
    read(
        &a,
        policy,
        "tags:policy:globex".into(),
        "globex",
        &calls,
        "x",
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 8);
    // And the refilled acme entries hit again.
    let got = read(
        &a,
        config,
        "tags:config:acme:u1".into(),
        "acme",
        &calls,
        "x",
    )
    .await;
    assert_eq!(got, "v2");
    assert_eq!(calls.load(Ordering::SeqCst), 8);
}

/// A load that read its counters before a tag invalidation and fills after it is not
/// served afterwards.
pub async fn invalidation_during_load(target: &Target) {
    let config = spec("tags:race:<tenant_id>");
    let a = Arc::new(target.cache());
    let b = target.cache();
    let (loading_tx, loading_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn({
        let a = Arc::clone(&a);
        async move {
            read_through_with(
                &a,
                config,
                "tags:race:acme".into(),
                ["tenant:acme".to_owned()],
                Timing::default(),
                ResultOption,
                Cloned,
                || async move {
                    let _ = loading_tx.send(());
                    let _ = go_rx.await;
                    Ok::<_, ()>(Some("old".to_owned()))
                },
            )
            .await
        }
    });
    loading_rx.await.unwrap();
    b.invalidate_tag("tenant:acme").await;
    go_tx.send(()).unwrap();
    assert_eq!(reader.await.unwrap(), Ok(Some("old".to_owned())));
    let calls = AtomicUsize::new(0);
    let got = read(&a, config, "tags:race:acme".into(), "acme", &calls, "new").await;
    assert_eq!(got, "new", "the racing load's value must not be served");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A tenant is dropped at once on memory.
pub async fn a_tenant_is_dropped_at_once_on_memory() {
    let config = spec("tags:mem:<tenant_id>");
    let cache = Cache::memory();
    let calls = AtomicUsize::new(0);
    read(&cache, config, "tags:mem:acme".into(), "acme", &calls, "v1").await;
    read(&cache, config, "tags:mem:acme".into(), "acme", &calls, "v1").await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    cache.invalidate_tag("tenant:acme").await;
    assert_eq!(
        read(&cache, config, "tags:mem:acme".into(), "acme", &calls, "v2").await,
        "v2"
    );
}

/// `INFO commandstats` calls per command.
async fn command_calls(
    conn: &mut redis::aio::MultiplexedConnection,
) -> std::collections::HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// Invalidating a tag of 5000 entries is one command.
pub async fn invalidating_a_tag_of_5000_entries_is_one_command() {
    let _heavy = crate::exclusive().await;
    let server = RedisServer::start();
    let template = spec("tags:bulk:<id>");
    let cache = server.cache();
    let calls = AtomicUsize::new(0);
    for i in 0..5000 {
        read(
            &cache,
            template,
            format!("tags:bulk:{i}"),
            "big",
            &calls,
            "v",
        )
        .await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 5000);
    read(
        &cache,
        template,
        "tags:bulk:small".into(),
        "small",
        &calls,
        "v",
    )
    .await;
    let mut stats = server.connection().await;
    let total = |m: &std::collections::HashMap<String, u64>| m.values().sum::<u64>();
    // Load the script once, then compare a tag of one entry with a tag of 5,000.
    cache.invalidate_tag("tenant:warm").await;
    let t0 = command_calls(&mut stats).await;
    cache.invalidate_tag("tenant:small").await;
    let t1 = command_calls(&mut stats).await;
    cache.invalidate_tag("tenant:big").await;
    let t2 = command_calls(&mut stats).await;
    let small = total(&t1) - total(&t0);
    let big = total(&t2) - total(&t1);
    println!("commands (incl. one INFO) to invalidate a tag of 1 entry: {small}, of 5,000: {big}");
    assert_eq!(small, big, "the same work whatever the number of entries");
    assert!(
        big <= 4,
        "EVALSHA, the script's EXISTS and INCR, and the INFO: {big}"
    );
    for name in ["scan", "keys", "del", "unlink", "smembers"] {
        assert_eq!(t2.get(name), t0.get(name), "no {name}");
    }
    for i in 0..5000 {
        read(
            &cache,
            template,
            format!("tags:bulk:{i}"),
            "big",
            &calls,
            "w",
        )
        .await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        10_001,
        "every entry missed (5,000 + the small one + 5,000)"
    );
}

/// With near caches, the entries and their tags' counters are served from memory, and a
/// tag invalidation on another instance still drops them at once.
pub async fn a_tag_invalidation_reaches_near_caches() {
    let server = RedisServer::start();
    let near = |url: &str| {
        Cache::builder()
            .redis_url(url)
            .near_cache(100)
            .build()
            .unwrap()
    };
    let template = spec("tags:near:<tenant_id>");
    let a = near(&server.url());
    let b = near(&server.url());
    let calls = AtomicUsize::new(0);
    // Until the entry and its counter are both served from A's near cache.
    let start = std::time::Instant::now();
    loop {
        let before = a.stats();
        read(&a, template, "tags:near:acme".into(), "acme", &calls, "v1").await;
        let after = a.stats();
        if after.near_hits >= before.near_hits + 2 && after.hits == before.hits {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never served from memory"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    b.invalidate_tag("tenant:acme").await;
    let start = std::time::Instant::now();
    while read(&a, template, "tags:near:acme".into(), "acme", &calls, "v2").await != "v2" {
        assert!(start.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "tag invalidation seen by the other near cache after {:?}",
        start.elapsed()
    );
}
