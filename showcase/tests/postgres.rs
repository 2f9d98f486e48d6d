//! The service over a real Postgres (a private server per test, see
//! `support/postgres.rs`), tested over HTTP on loopback.

mod support;

use cacheward::Cache;
use cacheward_tests::RedisServer;
use support::postgres::PostgresServer;
use support::{POLICY, Service, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_second_reads_skip_postgres_and_writes_invalidate() {
    let pg = PostgresServer::start();
    let redis = RedisServer::start();
    let s = Service::start(&pg.url(), redis.cache(), 10_000).await;
    assert_eq!(s.app.db.kind().as_str(), "postgres");
    scenarios::read_through_and_invalidation(&s).await;
    scenarios::bad_inputs(&s).await;

    // Concurrent appends to one conversation get distinct, consecutive numbers.
    let posts = (0..10).map(|i| {
        let addr = s.addr;
        tokio::spawn(async move {
            let body = format!(r#"{{"role": "user", "content": "message {i}"}}"#);
            support::call(addr, "POST", "/conversations/busy/messages", Some(&body)).await
        })
    });
    let mut seqs = Vec::new();
    for post in posts {
        let reply = post.await.unwrap();
        assert_eq!(reply.status, 201, "{}", reply.body);
        seqs.push(reply.json()["seq"].as_i64().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=10).collect::<Vec<i64>>());
    let conv = s.get("/conversations/busy").await.json();
    assert_eq!(conv["messages"].as_array().unwrap().len(), 10);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_postgres_is_stopped_and_200_once_it_is_back() {
    let mut pg = PostgresServer::start();
    let s = Service::start(&pg.url(), Cache::pass_through(), 10_000).await;
    assert_eq!(s.put("/tenants/acme/policy", POLICY).await.status, 200);
    let health = s.get("/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(health.json()["database"]["backend"], "postgres");

    pg.stop();
    let health = s.get("/health").await;
    assert_eq!(health.status, 503, "{}", health.body);
    let h = health.json();
    assert_eq!(h["status"], "unavailable");
    assert_eq!(h["database"]["healthy"], false);
    assert!(h["database"]["error"].is_string(), "{h}");
    // A store call fails with a JSON 503, not a 500.
    let r = s.get("/tenants/acme/policy").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "the database is unavailable");

    pg.restart();
    let health = s.get("/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
    assert_eq!(s.get("/tenants/acme/policy").await.status, 200);
}
