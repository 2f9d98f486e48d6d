//! The Upstash backend against the test harness's REST front (`UpstashFront`), which
//! forwards every command to a real, private redis-server.
//!
//! First the front is checked against the official client, `@upstash/redis` under
//! Node (installed with npm into `target/upstash-sdk` by `scripts/test`, or by the
//! test itself when missing): if the front and the SDK agree, the front is a fair
//! stand-in for the hosted service. The scenarios shared with the other backends
//! (decorators, leases, tags, refresh-ahead, stale-if-error, the rate limiter) run
//! through it in the scenarios binary (`on_upstash::…`); this binary holds what is
//! Upstash's own: scripts over `EVALSHA`, the near cache (not started), refused tokens,
//! https:// with a private CA, and the front killed, frozen and slow to answer new
//! connections.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cacheward::{Algorithm, Backend, Cache, CircuitState, RateLimiter, cached_store};
use cacheward_tests::{LogCapture, RedisServer, UpstashFront};
use redis::AsyncCommands as _;
use serde::{Deserialize, Serialize};

const TOKEN: &str = "AXtest-upstash-token-41f9c2";
const HOUR: Duration = Duration::from_secs(3600);

/// The pinned version of the official client the front is checked against.
const SDK_VERSION: &str = "1.39.0";

/// The folder whose `node_modules` holds `@upstash/redis`, installed with npm if needed.
fn sdk_dir() -> PathBuf {
    // A relative CARGO_TARGET_DIR is relative to the workspace root, as for cargo.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    let dir = target.join("upstash-sdk");
    let package = dir.join("node_modules/@upstash/redis/package.json");
    let installed = std::fs::read_to_string(&package)
        .is_ok_and(|p| p.contains(&format!("\"version\": \"{SDK_VERSION}\"")));
    if !installed {
        std::fs::create_dir_all(&dir).expect("create the SDK folder");
        let status = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&dir)
            .arg(format!("@upstash/redis@{SDK_VERSION}"))
            .status()
            .expect("npm must be installed: the front is checked with the official Node client");
        assert!(status.success(), "npm install @upstash/redis failed");
    }
    dir
}

async fn front() -> (RedisServer, UpstashFront) {
    let redis = RedisServer::start();
    let front = UpstashFront::start(&redis, TOKEN).await;
    (redis, front)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_agrees_with_the_official_client() {
    let (redis, front) = front().await;
    let sdk = sdk_dir();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("upstash-sdk/conformance.mjs");
    let url = front.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .env("UPSTASH_URL", url)
            .env("UPSTASH_TOKEN", TOKEN)
            .env("SDK_DIR", &sdk)
            .output()
            .expect("node must be installed")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the official client disagrees with the front:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("base64: ok"), "{stdout}");
    assert!(stdout.contains("plain: ok"), "{stdout}");
    assert!(stdout.contains("checks agree"), "{stdout}");

    // What the SDK wrote is in the real Redis, byte for byte.
    let mut raw = redis.connection().await;
    let text: Vec<u8> = raw.get("sdk:base64:unicode").await.unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "héllo wörld ✓ 日本語 🎉 \"quoted\" \\ back"
    );
    let commands = front.commands();
    for expected in ["EVAL", "EVALSHA", "SCRIPT", "HSET", "INCRBY"] {
        assert!(
            commands.iter().any(|c| c == expected),
            "{expected} never sent"
        );
    }

    // And cacheward, over the same front, reads the SDK's entries as hits.
    let cache = front.cache();
    assert_eq!(cache.backend(), Backend::Upstash);
    for label in ["base64", "plain"] {
        let v: Option<serde_json::Value> = cache.get(&format!("copilot:sdk:{label}")).await;
        assert_eq!(
            v,
            Some(serde_json::json!({"written_by": "@upstash/redis", "label": label}))
        );
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Policy {
    tenant_id: String,
    model: String,
}

#[derive(Debug, Clone, PartialEq)]
struct StoreError;

#[derive(Default)]
struct Db {
    rows: std::sync::Mutex<std::collections::HashMap<String, Policy>>,
    reads: AtomicUsize,
}

#[cached_store(key = "copilot:llm:policy:<tenant_id>", ttl = 300)]
trait PolicyStore: Send + Sync {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<Policy>, StoreError>;

    #[invalidates(tenant_id = policy.tenant_id)]
    async fn set_policy(&self, policy: &Policy) -> Result<(), StoreError>;
}

impl PolicyStore for Arc<Db> {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<Policy>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.rows.lock().unwrap().get(tenant_id).cloned())
    }

    async fn set_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        self.rows
            .lock()
            .unwrap()
            .insert(policy.tenant_id.clone(), policy.clone());
        Ok(())
    }
}

fn policy(model: &str) -> Policy {
    Policy {
        tenant_id: "acme".into(),
        model: model.into(),
    }
}

/// Scripts (leases, the rate limiter) run as `EVALSHA`: the first call of each
/// answers `NOSCRIPT`, the script is loaded once and never sent whole with `EVAL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_as_evalsha_and_are_loaded_once() {
    let (_redis, front) = front().await;
    let cache = front.cache();
    let limiter = RateLimiter::new(
        &cache,
        "login",
        Algorithm::fixed_window(3, Duration::from_secs(60)),
    );
    for _ in 0..3 {
        let v: String = cache
            .get_or_set("copilot:ai:response:7f3a", HOUR, || async {
                "answer".to_owned()
            })
            .await;
        assert_eq!(v, "answer");
        cache.del("copilot:ai:response:7f3a").await;
        assert!(!limiter.check_detailed("203.0.113.9").await.degraded);
    }
    let commands = front.commands();
    let count = |name: &str| commands.iter().filter(|c| *c == name).count();
    assert!(count("EVALSHA") >= 6, "{commands:?}");
    assert_eq!(count("EVAL"), 0, "{commands:?}");
    // One SCRIPT LOAD per distinct script (lease acquire, fill, the limiter's).
    assert!((1..=4).contains(&count("SCRIPT")), "{commands:?}");
}

#[tokio::test]
async fn a_refused_token_is_unhealthy_and_never_shown() {
    let (capture, _guard) = LogCapture::install();
    let (_redis, front) = front().await;
    let cache = Cache::builder()
        .upstash(front.url(), "wrong-token-5521")
        .deadline(Duration::from_secs(1))
        .breaker(2, Duration::from_secs(60))
        .build()
        .unwrap();
    for _ in 0..3 {
        cache.set("k", &1u32, HOUR).await;
        assert_eq!(cache.get::<u32>("k").await, None);
    }
    let health = cache.health().await;
    assert!(!health.healthy);
    let error = health.error.clone().unwrap();
    assert!(error.contains("authentication"), "{error}");
    assert_eq!(health.circuit, Some(CircuitState::Open), "{health:?}");
    for shown in [
        format!("{cache:?}"),
        format!("{health:?}"),
        capture.lines().join("\n"),
    ] {
        assert!(!shown.contains("wrong-token-5521"), "{shown}");
        assert!(!shown.contains(TOKEN), "{shown}");
    }
    // The failures were logged (with the reason, without the token).
    assert!(
        !capture.matching("authentication failed").is_empty(),
        "{:?}",
        capture.lines()
    );
}

/// A cache on the front with a short deadline and a quick breaker, as in production.
fn failover_cache(front: &UpstashFront) -> Cache {
    front
        .builder()
        .deadline(Duration::from_millis(100))
        .breaker(3, Duration::from_millis(300))
        .build()
        .unwrap()
}

/// Waits until `cache` reads back a value it writes (the backend is serving again).
async fn recovered(cache: &Cache, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        cache.set("copilot:probe", &7u32, HOUR).await;
        if cache.get::<u32>("copilot:probe").await == Some(7) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "no recovery within {within:?}: {:?}",
            cache.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_front_means_misses_and_open_limits_then_recovery() {
    let (_redis, mut front) = front().await;
    let cache = failover_cache(&front);
    let limiter = RateLimiter::new(
        &cache,
        "api",
        Algorithm::fixed_window(1, Duration::from_secs(60)),
    );
    cache.set("copilot:k", &"before".to_owned(), HOUR).await;
    assert_eq!(
        cache.get::<String>("copilot:k").await.as_deref(),
        Some("before")
    );

    front.kill();
    let bound = Duration::from_millis(100) + Duration::from_millis(900);
    for _ in 0..20 {
        let start = Instant::now();
        assert_eq!(cache.get::<String>("copilot:k").await, None);
        let d = limiter.check_detailed("client").await;
        assert!(d.allowed && d.degraded, "{d:?}");
        assert!(start.elapsed() < bound * 2, "took {:?}", start.elapsed());
    }
    let stats = cache.stats();
    assert!(stats.breaker_openings >= 1, "{stats:?}");
    assert!(stats.short_circuited > 0, "{stats:?}");
    let health = cache.health().await;
    assert!(!health.healthy, "{health:?}");
    assert_eq!(health.backend, Backend::Upstash);

    front.restart().await;
    recovered(&cache, Duration::from_secs(10)).await;
    assert_eq!(
        cache.get::<String>("copilot:k").await.as_deref(),
        Some("before"),
        "the entry survived in Redis"
    );
    let first = limiter.check_detailed("client").await;
    assert!(!first.degraded, "{first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_front_costs_at_most_the_deadline_and_invalidations_survive() {
    let (_redis, front) = front().await;
    let db = Arc::new(Db::default());
    db.set_policy(&policy("gpt-4o")).await.unwrap();
    let store = CachingPolicyStore::new(db.clone(), failover_cache(&front));
    assert_eq!(store.get_policy("acme").await, Ok(Some(policy("gpt-4o"))));
    assert_eq!(store.get_policy("acme").await, Ok(Some(policy("gpt-4o"))));
    assert_eq!(db.reads.load(Ordering::SeqCst), 1);

    front.freeze();
    // Reads are served from the database within the deadline plus slack; the write's
    // invalidation cannot reach Redis and is kept for later.
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let start = Instant::now();
        assert_eq!(store.get_policy("acme").await, Ok(Some(policy("gpt-4o"))));
        slowest = slowest.max(start.elapsed());
    }
    assert!(slowest < Duration::from_secs(1), "slowest read {slowest:?}");
    store.set_policy(&policy("claude")).await.unwrap();
    assert_eq!(store.get_policy("acme").await, Ok(Some(policy("claude"))));
    assert!(store.cache().stats().breaker_openings >= 1);

    front.thaw();
    let cache = store.cache().clone();
    recovered(&cache, Duration::from_secs(10)).await;
    // The stale entry was deleted once Upstash answered again: the new row is read.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if store.get_policy("acme").await == Ok(Some(policy("claude")))
            && store.cache().stats().pending_invalidations == 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the invalidation was not replayed: {:?}",
            store.cache().stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_slower_than_the_deadline_are_made_in_the_background() {
    let (_redis, front) = front().await;
    // Every new connection takes 4 deadlines before its first answer: an operation
    // that makes its own connection always gives up first, and dropping it drops the
    // connection. Without the store's background request no operation ever succeeds
    // (0 hits in 10 s, every operation a timeout).
    front.delay_new_connections(Duration::from_millis(400));
    let cache = front
        .builder()
        .deadline(Duration::from_millis(100))
        .breaker(1_000, Duration::from_millis(100))
        .build()
        .unwrap();
    let took = recovered(&cache, Duration::from_secs(10)).await;
    // Later operations reuse pooled connections. Not all of them: an operation that
    // finds no idle connection (the last one is still being handed back to the pool)
    // opens one, and here its first request is held past the deadline; the
    // background request makes another and the next operation finds it.
    let mut hits = 0;
    for i in 0..20u32 {
        cache.set("copilot:warm", &i, HOUR).await;
        hits += usize::from(cache.get::<u32>("copilot:warm").await == Some(i));
    }
    println!("first hit after {took:?}; then {hits} of 20 round trips hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_and_only_with_it() {
    let cacheward_tests::tls::TestCertificates { ca, chain, key } =
        cacheward_tests::tls::test_certificates();
    let redis = RedisServer::start();
    let front = UpstashFront::start_tls(&redis, TOKEN, &chain, &key).await;
    assert!(front.url().starts_with("https://"));

    // An https:// URL given as the Redis URL means Upstash, the password its token.
    let cache = Cache::builder()
        .redis_url(front.url())
        .password(TOKEN)
        .tls_root_ca(ca)
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(cache.backend(), Backend::Upstash);
    cache.set("copilot:tls", &"über TLS".to_owned(), HOUR).await;
    assert_eq!(
        cache.get::<String>("copilot:tls").await.as_deref(),
        Some("über TLS")
    );
    let health = cache.health().await;
    assert!(health.healthy, "{health:?}");

    // Without the CA the system's roots do not trust the certificate.
    let untrusting = Cache::builder()
        .upstash(front.url(), TOKEN)
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(untrusting.get::<String>("copilot:tls").await, None);
    let health = untrusting.health().await;
    assert!(!health.healthy, "{health:?}");
    let error = health.error.unwrap();
    assert!(error.contains("invalid peer certificate"), "{error}");
}

#[tokio::test]
async fn the_near_cache_is_not_started_on_rest_and_says_so() {
    let (capture, _guard) = LogCapture::install();
    let (_redis, front) = front().await;
    let cache = front.builder().near_cache(1_000).build().unwrap();
    cache.set("copilot:n", &1u32, HOUR).await;
    assert_eq!(cache.get::<u32>("copilot:n").await, Some(1));
    let said = capture.matching("no push channel");
    assert_eq!(said.len(), 1, "{:?}", capture.lines());
}
