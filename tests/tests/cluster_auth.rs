//! A password-protected Redis Cluster: credentials flow from `REDIS_PASSWORD` (or
//! the seed URLs) and never show. Its own test binary: it captures log lines with a
//! thread-local subscriber, which must not share the process with other tests
//! emitting the same events on other threads.

use std::time::{Duration, Instant};

use cacheward::Cache;
use cacheward_tests::RedisCluster;

const TTL: Duration = Duration::from_secs(300);
/// How long a fresh cluster may take to be reachable through a new cache.
const REACHABLE: Duration = Duration::from_secs(20);

fn truth(key: &str) -> String {
    format!("value-of-{key}")
}

/// A password-protected cluster: `REDIS_PASSWORD` fills in for seeds without one; a
/// missing or wrong password is a miss and an unhealthy report naming the
/// authentication failure, and no password ever appears in a log line, a health
/// report or `Debug` output.
#[tokio::test]
async fn a_password_protected_cluster_takes_redis_password_and_never_shows_it() {
    const PASSWORD: &str = "clu5ter-s3cret";
    const WRONG: &str = "not-the-pa55word";
    let (logs, _guard) = cacheward_tests::LogCapture::install();
    let cluster = RedisCluster::start_with_password(PASSWORD);

    let vars = [
        ("REDIS_CLUSTER_NODES", cluster.nodes_env()),
        ("REDIS_PASSWORD", PASSWORD.to_owned()),
    ];
    let cache = Cache::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    });
    assert_eq!(cache.backend(), cacheward::Backend::RedisCluster);
    let deadline = Instant::now() + REACHABLE;
    loop {
        cache.set("auth:k0", &truth("auth:k0"), TTL).await;
        if cache.get::<String>("auth:k0").await.as_deref() == Some(&truth("auth:k0")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never reached the cluster: {:?}",
            cache.health().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let keys: Vec<String> = (0..30).map(|i| format!("auth:k{i}")).collect();
    let entries: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), truth(k))).collect();
    cache.set_many(&entries, TTL).await;
    let got: Vec<Option<String>> = cache.get_many(&keys).await;
    assert!(
        got.iter()
            .zip(&keys)
            .all(|(v, k)| v.as_deref() == Some(&truth(k)))
    );
    assert!(cache.health().await.healthy);

    // No password, or a wrong one: misses and an unhealthy report.
    let without = Cache::redis_cluster(cluster.seeds()).expect("seeds");
    let wrong = Cache::redis_cluster(
        cluster
            .ports()
            .iter()
            .map(|p| format!("redis://:{WRONG}@127.0.0.1:{p}")),
    )
    .expect("seeds");
    for bad in [&without, &wrong] {
        for _ in 0..3 {
            assert_eq!(bad.get::<String>("auth:k0").await, None);
            bad.set("auth:bad", &1u8, TTL).await;
        }
        let health = bad.health().await;
        assert!(!health.healthy, "{health:?}");
        let error = health.error.clone().unwrap_or_default();
        assert!(
            error.to_lowercase().contains("auth"),
            "the report names the authentication failure: {error}"
        );
        let shown = format!("{health:?} {bad:?}");
        assert!(
            !shown.contains(WRONG) && !shown.contains(PASSWORD),
            "{shown}"
        );
    }
    let shown = format!("{cache:?} {:?}", cache.health().await);
    assert!(!shown.contains(PASSWORD), "{shown}");

    let lines = logs.lines();
    assert!(!lines.is_empty(), "the failures were logged");
    for line in &lines {
        assert!(
            !line.contains(PASSWORD) && !line.contains(WRONG),
            "a log line shows a password: {line}"
        );
    }
}
