//! Scenarios that run the same way on SQLite and on Postgres.

use serde_json::json;

use super::{POLICY, POLICY_V2, Service};

/// With a caching `Cache`: the second GET of each resource is served from the cache
/// (the database's query count does not move), and each write invalidates.
pub async fn read_through_and_invalidation(s: &Service) {
    // Policies.
    assert_eq!(s.get("/tenants/acme/policy").await.status, 404);
    let put = s.put("/tenants/acme/policy", POLICY).await;
    assert_eq!(put.status, 200, "{}", put.body);

    let before = s.queries();
    let first = s.get("/tenants/acme/policy").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.json(),
        json!({"tenant_id": "acme", "default_model": "gpt-4o",
               "allowed_models": ["gpt-4o"], "max_tokens_per_request": 8192})
    );
    assert_eq!(s.queries(), before + 1, "the first GET reads the database");
    let second = s.get("/tenants/acme/policy").await;
    assert_eq!(second.json(), first.json());
    assert_eq!(
        s.queries(),
        before + 1,
        "the second GET does not reach the database"
    );
    let policy_stats = s.app.cache.label_stats("copilot:llm:policy:<tenant_id>");
    assert_eq!(policy_stats.hits, 1, "{policy_stats:?}");

    // A PUT invalidates: the next GET reads the new policy from the database.
    assert_eq!(s.put("/tenants/acme/policy", POLICY_V2).await.status, 200);
    let after_put = s.queries();
    let updated = s.get("/tenants/acme/policy").await.json();
    assert_eq!(updated["default_model"], "o3");
    assert_eq!(updated["max_tokens_per_request"], 4096);
    assert_eq!(s.queries(), after_put + 1);
    assert_eq!(s.get("/tenants/acme/policy").await.json(), updated);
    assert_eq!(s.queries(), after_put + 1);

    // Conversations: appends invalidate the cached conversation.
    assert_eq!(s.get("/conversations/c-1").await.status, 404);
    let posted = s
        .post(
            "/conversations/c-1/messages",
            r#"{"role": "user", "content": "hello"}"#,
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    assert_eq!(posted.json()["seq"], 1);
    let conv = s.get("/conversations/c-1").await.json();
    assert_eq!(conv["messages"].as_array().unwrap().len(), 1);
    let q = s.queries();
    assert_eq!(s.get("/conversations/c-1").await.json(), conv);
    assert_eq!(s.queries(), q, "cached");
    s.post(
        "/conversations/c-1/messages",
        r#"{"role": "assistant", "content": "hi, how can I help?"}"#,
    )
    .await;
    let conv = s.get("/conversations/c-1").await.json();
    let messages = conv["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["seq"], 2);
    assert_eq!(messages[1]["content"], "hi, how can I help?");

    // Configs: per user (an optional user id in the key), falling back to the tenant's.
    assert_eq!(s.get("/tenants/acme/users/u1/config").await.status, 404);
    let put = s
        .put(
            "/tenants/acme/config",
            r#"{"model": "gpt-4o", "temperature": 0.2}"#,
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let tenant_wide = s.get("/tenants/acme/users/u1/config").await.json();
    assert_eq!(tenant_wide["user_id"], serde_json::Value::Null);
    assert_eq!(tenant_wide["temperature"], 0.2);
    s.put(
        "/tenants/acme/users/u1/config",
        r#"{"model": "o3", "max_history_messages": 20}"#,
    )
    .await;
    let own = s.get("/tenants/acme/users/u1/config").await.json();
    assert_eq!(own["user_id"], "u1");
    assert_eq!(own["model"], "o3");
    let q = s.queries();
    assert_eq!(s.get("/tenants/acme/users/u1/config").await.json(), own);
    assert_eq!(s.queries(), q, "cached");
    // Another user still gets the tenant's config; the tenant's entry was not touched.
    assert_eq!(
        s.get("/tenants/acme/users/u2/config").await.json()["model"],
        "gpt-4o"
    );

    // Deleting the tenant's configs drops every cached config of the tenant at once
    // (one tag), though the service never listed which users had one.
    let other = s
        .put("/tenants/globex/config", r#"{"model": "gpt-4o-mini"}"#)
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(s.get("/tenants/globex/config").await.status, 200);
    assert_eq!(s.get("/tenants/acme/config").await.status, 200);
    let deleted = s.delete("/tenants/acme/configs").await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.json(), json!({"tenant_id": "acme", "deleted": 2}));
    for path in [
        "/tenants/acme/config",
        "/tenants/acme/users/u1/config",
        "/tenants/acme/users/u2/config",
    ] {
        assert_eq!(s.get(path).await.status, 404, "{path} after the delete");
    }
    let q = s.queries();
    assert_eq!(
        s.get("/tenants/globex/config").await.json()["model"],
        "gpt-4o-mini"
    );
    assert_eq!(s.queries(), q, "another tenant's entry is still cached");
}

/// Bad input is a 400 with a JSON error, never a 500; absent rows and routes are 404s.
pub async fn bad_inputs(s: &Service) {
    let long = "x".repeat(129);
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("PUT", "/tenants/acme/policy".into(), Some("{not json")),
        (
            "PUT",
            "/tenants/acme/policy".into(),
            Some(r#"{"default_model": "gpt-4o"}"#),
        ),
        (
            "PUT",
            "/tenants/acme/policy".into(),
            Some(r#"{"default_model": 4, "allowed_models": [], "max_tokens_per_request": 1}"#),
        ),
        (
            "PUT",
            "/tenants/acme/policy".into(),
            Some(
                r#"{"default_model": "gpt-4o", "allowed_models": ["gpt-4o"], "max_tokens_per_request": 0}"#,
            ),
        ),
        (
            "PUT",
            "/tenants/acme/policy".into(),
            Some(
                r#"{"default_model": "o3", "allowed_models": ["gpt-4o"], "max_tokens_per_request": 10}"#,
            ),
        ),
        ("GET", format!("/tenants/{long}/policy"), None),
        ("PUT", format!("/tenants/{long}/policy"), Some(POLICY)),
        ("GET", "/tenants//policy".into(), None),
        ("PUT", "/tenants//policy".into(), Some(POLICY)),
        ("GET", "/tenants/%20/policy".into(), None),
        ("GET", "/tenants/a%0Ab/policy".into(), None),
        ("GET", format!("/conversations/{long}"), None),
        (
            "POST",
            "/conversations/c/messages".into(),
            Some(r#"{"role": "robot", "content": "x"}"#),
        ),
        (
            "POST",
            "/conversations/c/messages".into(),
            Some(r#"{"role": "user", "content": ""}"#),
        ),
        ("POST", "/conversations/c/messages".into(), Some("[]")),
        (
            "PUT",
            "/tenants/acme/users/u1/config".into(),
            Some(r#"{"temperature": 9}"#),
        ),
        (
            "PUT",
            format!("/tenants/acme/users/{long}/config"),
            Some("{}"),
        ),
        ("GET", "/tenants/acme/users/%20/config".into(), None),
    ];
    for (method, path, body) in cases {
        let reply = super::call(s.addr, method, &path, body).await;
        assert_eq!(
            reply.status, 400,
            "{method} {path} {body:?}: {}",
            reply.body
        );
        assert!(
            reply.json()["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{method} {path}: {}",
            reply.body
        );
    }
    for path in [
        "/tenants/nobody/policy",
        "/conversations/none",
        "/no/such/route",
    ] {
        let reply = s.get(path).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert!(
            reply.json()["error"]
                .as_str()
                .unwrap()
                .ends_with("not found")
        );
    }
}
