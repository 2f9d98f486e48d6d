//! The service over SQLite, tested over HTTP on loopback: read-through and
//! invalidation (with a real Redis), the rate limit, health while Redis is killed,
//! metrics, bad input, and the binary itself on a fresh directory.

mod support;

use std::time::Duration;

use cacheward::Cache;
use cacheward_tests::RedisServer;
use support::{POLICY, Service, scenarios};

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("showcase.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_second_reads_skip_the_database_and_writes_invalidate() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let s = Service::start(&sqlite_url(&dir), redis.cache(), 10_000).await;
    scenarios::read_through_and_invalidation(&s).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_every_read_reaches_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let s = Service::start(&sqlite_url(&dir), Cache::pass_through(), 10_000).await;
    assert_eq!(s.put("/tenants/acme/policy", POLICY).await.status, 200);
    let before = s.queries();
    for _ in 0..3 {
        assert_eq!(s.get("/tenants/acme/policy").await.status, 200);
    }
    assert_eq!(s.queries(), before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_with_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = Service::start(&sqlite_url(&dir), Cache::memory(), 10_000).await;
    scenarios::bad_inputs(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_is_a_429_with_retry_after_and_ratelimit_headers() {
    let dir = tempfile::tempdir().unwrap();
    // No Redis: the limit is counted in the process.
    let s = Service::start(&sqlite_url(&dir), Cache::pass_through(), 3).await;
    for remaining in ["2", "1", "0"] {
        let r = s.get("/tenants/acme/policy").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
        assert!(r.header("ratelimit-reset").is_some());
    }
    let queries = s.queries();
    let limited = s.get("/tenants/acme/policy").await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.json()["error"], "rate limit exceeded");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry), "retry-after {retry}");
    assert_eq!(limited.header("ratelimit-limit"), Some("3"));
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
    assert_eq!(
        s.queries(),
        queries,
        "a limited request does not reach the store"
    );
    // Writes are limited too; health and metrics are not.
    assert_eq!(s.put("/tenants/acme/policy", POLICY).await.status, 429);
    assert_eq!(s.get("/health").await.status, 200);
    assert_eq!(s.get("/metrics").await.status, 200);
    let stats = s.app.limiter.stats();
    assert_eq!((stats.allowed, stats.rejected), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_stays_200_while_redis_is_killed_and_reads_fall_back_to_the_database() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let s = Service::start(&sqlite_url(&dir), redis.cache(), 10_000).await;
    assert_eq!(s.put("/tenants/acme/policy", POLICY).await.status, 200);
    assert_eq!(s.get("/tenants/acme/policy").await.status, 200);

    let health = s.get("/health").await;
    assert_eq!(health.status, 200);
    let h = health.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["cache"]["healthy"], true);
    assert_eq!(h["cache"]["backend"], "redis");
    assert_eq!(h["database"]["backend"], "sqlite");

    redis.kill();
    // Reads are answered from the database, writes still work: no 500.
    for _ in 0..3 {
        let r = s.get("/tenants/acme/policy").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["default_model"], "gpt-4o");
    }
    assert_eq!(s.put("/tenants/acme/policy", POLICY).await.status, 200);
    let health = s.get("/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    let h = health.json();
    assert_eq!(h["status"], "degraded");
    assert_eq!(h["database"]["healthy"], true);
    assert_eq!(h["cache"]["healthy"], false);
    assert!(h["cache"]["error"].is_string(), "{h}");
    assert!(h["cache_stats"]["errors"].as_u64().unwrap() > 0, "{h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_the_seed_names_labelled_by_template_and_bucket() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let s = Service::start(&sqlite_url(&dir), redis.cache(), 10_000).await;
    s.put("/tenants/acme/policy", POLICY).await;
    s.get("/tenants/acme/policy").await;
    s.get("/tenants/acme/policy").await;
    let m = s.get("/metrics").await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.body;
    for needle in [
        "# TYPE cache_operations_total counter",
        r#"cache_operations_total{operation="get",result="hit",backend="redis",cache="copilot:llm:policy:<tenant_id>"}"#,
        r#"cache_operations_total{operation="get",result="miss",backend="redis",cache="copilot:llm:policy:<tenant_id>"}"#,
        r#"cache_operations_total{operation="del",result="ok",backend="redis",cache="copilot:llm:policy:<tenant_id>"}"#,
        "cache_operation_duration_count{",
        r#"ratelimiter_checks_total{bucket="http-api",result="allowed",backend="redis"}"#,
        "ratelimiter_check_duration_count{",
        r#"db_queries_total{query="get_policy",database="sqlite"}"#,
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert!(!text.contains("errorType"), "{text}");
    assert!(
        !text.contains("copilot:llm:policy:acme"),
        "a raw key in a label:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_is_created_migrated_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let s = Service::start(&url, Cache::pass_through(), 10_000).await;
    assert!(dir.path().join("showcase.db").exists());
    assert_eq!(s.put("/tenants/acme/policy", POLICY).await.status, 200);
    s.shutdown().await;
    // A second start finds the schema applied and the data there.
    let s = Service::start(&url, Cache::pass_through(), 10_000).await;
    assert_eq!(
        s.get("/tenants/acme/policy").await.json()["default_model"],
        "gpt-4o"
    );
}

/// `cargo run -p cacheward-showcase` on a machine with no Redis and no Postgres: the
/// binary, in an empty directory, with neither variable set, serves, and stops
/// cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_with_nothing_configured_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = cacheward_tests::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cacheward-showcase"))
        .current_dir(dir.path())
        .env_clear()
        .env("PORT", port.to_string())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the binary");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the binary did not listen on {addr}"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the binary exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = support::call(addr, "GET", "/health", None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["database"]["backend"], "sqlite");
    assert_eq!(health.json()["cache"]["backend"], "passthrough");
    let put = support::call(addr, "PUT", "/tenants/acme/policy", Some(POLICY)).await;
    assert_eq!(put.status, 200);
    assert!(dir.path().join("cacheward-showcase.db").exists());

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{log}", out.status);
    assert!(log.contains("shutting down"), "{log}");
}
