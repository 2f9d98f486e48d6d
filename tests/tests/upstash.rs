//! The Upstash backend against the test harness's REST front (`UpstashFront`), which
//! forwards every command to a real, private redis-server.
//!
//! First the front is checked against the official client, `@upstash/redis` under
//! Node (installed with npm into `target/upstash-sdk` by `scripts/test`, or by the
//! test itself when missing): if the front and the SDK agree, the front is a fair
//! stand-in for the hosted service. Then cacheward's own scenarios run over
//! `Backend::Upstash` through it: decorators (read-through, invalidation, entries
//! other languages can read), `get_or_set` with leases across two instances, purge by
//! prefix, tags, refresh-ahead and stale-if-error, the rate limiter, the near cache
//! (not started), refused tokens, https:// with a private CA, and the front killed,
//! frozen and slow to answer new connections.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decorators_read_through_and_invalidate_across_instances() {
    let (redis, front) = front().await;
    let db = Arc::new(Db::default());
    db.set_policy(&policy("gpt-4o")).await.unwrap();
    // Two instances of a service: separate caches (and HTTP clients), one database.
    let a = CachingPolicyStore::new(db.clone(), front.cache());
    let b = CachingPolicyStore::new(db.clone(), front.cache());

    assert_eq!(a.get_policy("acme").await, Ok(Some(policy("gpt-4o"))));
    assert_eq!(a.get_policy("acme").await, Ok(Some(policy("gpt-4o"))));
    assert_eq!(b.get_policy("acme").await, Ok(Some(policy("gpt-4o"))));
    assert_eq!(db.reads.load(Ordering::SeqCst), 1, "one load, then hits");
    assert_eq!(a.cache().stats().hits, 1);
    assert_eq!(b.cache().stats().hits, 1);

    // The entry is plain JSON with a PX expiry, as a service in another language
    // following the same conventions writes and reads it.
    let mut raw = redis.connection().await;
    let stored: String = raw.get("copilot:llm:policy:acme").await.unwrap();
    assert_eq!(
        serde_json::from_str::<Policy>(&stored).unwrap(),
        policy("gpt-4o")
    );
    let pttl: i64 = raw.pttl("copilot:llm:policy:acme").await.unwrap();
    assert!(pttl > 290_000 && pttl <= 300_000, "pttl {pttl}");

    // A write on instance B invalidates: instance A reads the new row.
    b.set_policy(&policy("claude")).await.unwrap();
    assert_eq!(a.get_policy("acme").await, Ok(Some(policy("claude"))));
    assert_eq!(db.reads.load(Ordering::SeqCst), 2);

    // Batches go through /pipeline; purge walks the keyspace with a script.
    let cache = front.cache();
    cache
        .set_many(
            &[
                ("copilot:t:1", 1u32),
                ("copilot:t:2", 2),
                ("copilot:t:3", 3),
            ],
            HOUR,
        )
        .await;
    let got: Vec<Option<u32>> = cache
        .get_many(&["copilot:t:1", "copilot:t:2", "copilot:t:9"])
        .await;
    assert_eq!(got, vec![Some(1), Some(2), None]);
    assert_eq!(cache.purge_prefix("copilot:t:").await, 3);
    assert_eq!(cache.get::<u32>("copilot:t:3").await, None);
    assert_eq!(cache.stats().errors, 0, "{:?}", cache.stats());
    let health = cache.health().await;
    assert!(health.healthy, "{health:?}");
    assert_eq!(health.backend, Backend::Upstash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_loads_once_across_two_instances_with_leases() {
    let (_redis, front) = front().await;
    let loads = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for instance in 0..2 {
        let cache = front.cache();
        for _ in 0..4 {
            let cache = cache.clone();
            let loads = loads.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_set("copilot:ai:response:7f3a", HOUR, || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        // Slow enough that every caller misses while it runs.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        format!("answer computed by instance {instance}")
                    })
                    .await
            }));
        }
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one load across instances");
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "every caller got the loader's value: {answers:?}"
    );
    // The lease scripts ran as EVALSHA, loaded once after NOSCRIPT.
    let commands = front.commands();
    assert!(commands.iter().any(|c| c == "EVALSHA"), "{commands:?}");
    assert!(commands.iter().any(|c| c == "SCRIPT"), "{commands:?}");
    assert!(!commands.iter().any(|c| c == "EVAL"), "{commands:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limiter_enforces_limits_over_rest_across_instances() {
    let (_redis, front) = front().await;
    let one = RateLimiter::new(
        &front.cache(),
        "login",
        Algorithm::fixed_window(3, Duration::from_secs(60)),
    );
    let other = RateLimiter::new(
        &front.cache(),
        "login",
        Algorithm::fixed_window(3, Duration::from_secs(60)),
    );
    let mut allowed = 0;
    for i in 0..6 {
        let limiter = if i % 2 == 0 { &one } else { &other };
        let d = limiter.check_detailed("203.0.113.9").await;
        assert!(!d.degraded, "{d:?}");
        allowed += usize::from(d.allowed);
    }
    assert_eq!(allowed, 3, "the limit holds across instances");

    let bucket = RateLimiter::new(
        &front.cache(),
        "tokens",
        Algorithm::token_bucket(
            2,
            cacheward::ratelimit::Refill::new(1, Duration::from_secs(3600)),
        ),
    );
    let window = RateLimiter::new(
        &front.cache(),
        "telemetry",
        Algorithm::sliding_window(2, Duration::from_secs(60)),
    );
    for limiter in [&bucket, &window] {
        assert!(limiter.check("client").await);
        assert!(limiter.check("client").await);
        let d = limiter.check_detailed("client").await;
        assert!(!d.allowed && !d.degraded, "{d:?}");
    }
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

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make the test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA and a certificate for 127.0.0.1 signed by it: (CA, chain, key) in PEM.
fn test_certificates() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!(
        "cacheward-upstash-tls-{}-{}",
        std::process::id(),
        cacheward_tests::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=cacheward test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let out = (read("ca.crt"), read("server.crt"), read("server.key"));
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_and_only_with_it() {
    let (ca, chain, key) = test_certificates();
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

#[derive(Default)]
struct Configs {
    version: std::sync::atomic::AtomicU64,
    loads: AtomicUsize,
    failing: std::sync::atomic::AtomicBool,
}

#[cached_store(ttl = 2)]
trait ConfigStore: Send + Sync {
    #[cached(
        key = "copilot:conv:config:<tenant_id>:<user_id>",
        tags = ["tenant:<tenant_id>"]
    )]
    async fn get_config(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError>;

    #[invalidates(tag = "tenant:<tenant_id>")]
    async fn reset_tenant(&self, tenant_id: &str) -> Result<(), StoreError>;

    #[cached(
        key = "copilot:llm:policy:<tenant_id>",
        refresh_ahead = 0.5,
        stale_if_error = "1h"
    )]
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<String>, StoreError>;
}

impl ConfigStore for Arc<Configs> {
    async fn get_config(
        &self,
        tenant_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let v = self.version.load(Ordering::SeqCst);
        Ok(Some(format!("{tenant_id}/{user_id}/v{v}")))
    }

    async fn reset_tenant(&self, _tenant_id: &str) -> Result<(), StoreError> {
        self.version.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn get_policy(&self, tenant_id: &str) -> Result<Option<String>, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError);
        }
        self.loads.fetch_add(1, Ordering::SeqCst);
        let v = self.version.load(Ordering::SeqCst);
        Ok(Some(format!("{tenant_id}/policy/v{v}")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_refresh_ahead_and_stale_if_error_work_over_rest() {
    let (_redis, front) = front().await;
    let db = Arc::new(Configs::default());
    let a = CachingConfigStore::new(db.clone(), front.cache());
    let b = CachingConfigStore::new(db.clone(), front.cache());
    let loads = || db.loads.load(Ordering::SeqCst);

    // Tags: one invalidation on instance B drops every entry of the tenant on A.
    for (t, u) in [("acme", "u1"), ("acme", "u2"), ("globex", "u1")] {
        assert_eq!(a.get_config(t, u).await, Ok(Some(format!("{t}/{u}/v0"))));
        assert_eq!(a.get_config(t, u).await, Ok(Some(format!("{t}/{u}/v0"))));
    }
    assert_eq!(loads(), 3);
    b.reset_tenant("acme").await.unwrap();
    assert_eq!(
        a.get_config("acme", "u2").await,
        Ok(Some("acme/u2/v1".into()))
    );
    assert_eq!(
        a.get_config("globex", "u1").await,
        Ok(Some("globex/u1/v0".into())),
        "another tenant's entry is untouched (a hit)"
    );
    assert_eq!(loads(), 4);

    // Refresh-ahead: a hit past half the TTL (its age from PTTL) refreshes the entry.
    let start = loads();
    assert_eq!(
        a.get_policy("acme").await,
        Ok(Some("acme/policy/v1".into()))
    );
    assert_eq!(
        a.get_policy("acme").await,
        Ok(Some("acme/policy/v1".into()))
    );
    assert_eq!(loads(), start + 1);
    db.version.store(2, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(
        a.get_policy("acme").await,
        Ok(Some("acme/policy/v2".into()))
    );
    assert_eq!(loads(), start + 2, "the old hit was refreshed");

    // Stale-if-error: past the TTL the inner store fails, the stale copy answers.
    db.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(
        a.get_policy("acme").await,
        Ok(Some("acme/policy/v2".into()))
    );
    assert!(
        a.cache().stats().stale_served >= 1,
        "{:?}",
        a.cache().stats()
    );
    assert_eq!(a.cache().stats().errors, 0, "{:?}", a.cache().stats());
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
