//! The macro forms for tags, refresh-ahead and stale-if-error, written as the user
//! contract writes them, against a real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::RedisServer;
use cacheward::{Cache, cached_store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ConversationConfig {
    tenant_id: String,
    user_id: Option<String>,
    version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreError;

#[cached_store(ttl = 300)]
trait ConfigStore: Send + Sync {
    #[cached(key = "copilot:conv:config:<tenant_id>:<user_id>", tags = ["tenant:<tenant_id>"])]
    async fn get_config(
        &self,
        tenant_id: &str,
        user_id: Option<&str>,
    ) -> Result<Option<ConversationConfig>, StoreError>;

    #[invalidates(tag = "tenant:<tenant_id>")] // every entry tagged with this tenant
    async fn reset_tenant(&self, tenant_id: &str) -> Result<(), StoreError>;
}

#[derive(Default)]
struct Configs {
    version: AtomicU64,
    loads: AtomicUsize,
}

impl ConfigStore for Arc<Configs> {
    async fn get_config(
        &self,
        tenant_id: &str,
        user_id: Option<&str>,
    ) -> Result<Option<ConversationConfig>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(Some(ConversationConfig {
            tenant_id: tenant_id.to_owned(),
            user_id: user_id.map(str::to_owned),
            version: self.version.load(Ordering::SeqCst),
        }))
    }

    async fn reset_tenant(&self, _tenant_id: &str) -> Result<(), StoreError> {
        self.version.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A tenant reset drops every entry of the tenant on every instance.
pub async fn a_tenant_reset_drops_every_entry_of_the_tenant_on_every_instance() {
    let server = RedisServer::start();
    let db = Arc::new(Configs::default());
    let a = CachingConfigStore::new(Arc::clone(&db), server.cache());
    let b = CachingConfigStore::new(Arc::clone(&db), server.cache());
    for user in [Some("u1"), Some("u2"), None] {
        a.get_config("acme", user).await.unwrap();
        a.get_config("globex", user).await.unwrap();
    }
    assert_eq!(db.loads.load(Ordering::SeqCst), 6);
    for user in [Some("u1"), Some("u2"), None] {
        a.get_config("acme", user).await.unwrap();
    }
    assert_eq!(db.loads.load(Ordering::SeqCst), 6, "hits");

    b.reset_tenant("acme").await.unwrap();

    for user in [Some("u1"), Some("u2"), None] {
        assert_eq!(
            a.get_config("acme", user).await.unwrap().unwrap().version,
            1
        );
    }
    assert_eq!(
        db.loads.load(Ordering::SeqCst),
        9,
        "every acme entry missed"
    );
    for user in [Some("u1"), Some("u2"), None] {
        assert_eq!(
            a.get_config("globex", user).await.unwrap().unwrap().version,
            0
        );
    }
    assert_eq!(db.loads.load(Ordering::SeqCst), 9, "globex still hits");
    // The inventory lists the tag.
    let table = cacheward::inventory::Inventory::new()
        .with(CachingConfigStore::<()>::key_specs())
        .to_string();
    assert!(table.contains("`tenant:<tenant_id>`"), "{table}");
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TenantLlmPolicy {
    tenant_id: String,
    version: u64,
}

#[cached_store(
    key = "copilot:llm:policy:<tenant_id>",
    ttl = 2,
    refresh_ahead = 0.5,
    stale_if_error = "1h"
)]
trait PolicyStore: Send + Sync {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError>;
}

#[derive(Default)]
struct Policies {
    version: AtomicU64,
    loads: AtomicUsize,
    delay_ms: AtomicU64,
    failing: AtomicBool,
}

impl PolicyStore for Arc<Policies> {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))).await;
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError);
        }
        Ok(Some(TenantLlmPolicy {
            tenant_id: tenant_id.to_owned(),
            version: self.version.load(Ordering::SeqCst),
        }))
    }
}

/// A hit past `refresh_ahead` of the TTL: one caller refreshes (and waits for the
/// store), every other caller answers from the cache at once; then everyone reads the
/// new value.
pub async fn refresh_ahead_refreshes_once_while_others_hit() {
    let _heavy = crate::exclusive().await;
    let server = RedisServer::start();
    let db = Arc::new(Policies::default());
    let store = Arc::new(CachingPolicyStore::new(Arc::clone(&db), server.cache()));
    assert_eq!(store.get_policy("acme").await.unwrap().unwrap().version, 0);
    db.version.store(1, Ordering::SeqCst);
    db.delay_ms.store(300, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let start = Instant::now();
                let v = store.get_policy("acme").await.unwrap().unwrap().version;
                (v, start.elapsed())
            })
        })
        .collect();
    let mut slow = 0;
    for t in tasks {
        let (v, took) = t.await.unwrap();
        if took >= Duration::from_millis(250) {
            slow += 1;
            assert_eq!(v, 1, "the refreshing caller answers with the new value");
        }
    }
    assert!(slow <= 1, "{slow} callers waited for the store");
    assert_eq!(db.loads.load(Ordering::SeqCst), 2, "one fill, one refresh");
    assert_eq!(store.get_policy("acme").await.unwrap().unwrap().version, 1);
}

/// Past the TTL with a failing store, the stale value answers; a `Result` shape only.
pub async fn stale_if_error_answers_when_the_store_fails() {
    let server = RedisServer::start();
    let db = Arc::new(Policies::default());
    let store = CachingPolicyStore::new(Arc::clone(&db), server.cache());
    assert_eq!(store.get_policy("acme").await.unwrap().unwrap().version, 0);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    db.failing.store(true, Ordering::SeqCst);
    assert_eq!(store.get_policy("acme").await.unwrap().unwrap().version, 0);
    assert_eq!(store.cache().stats().stale_served, 1);
    // Without a stale copy (another tenant), the error is the caller's.
    assert_eq!(store.get_policy("globex").await, Err(StoreError));
}

/// The same forms on the memory backend.
pub async fn tags_on_the_memory_backend() {
    let db = Arc::new(Configs::default());
    let store = CachingConfigStore::new(Arc::clone(&db), Cache::memory());
    store.get_config("acme", None).await.unwrap();
    store.get_config("acme", None).await.unwrap();
    assert_eq!(db.loads.load(Ordering::SeqCst), 1);
    store.reset_tenant("acme").await.unwrap();
    assert_eq!(
        store
            .get_config("acme", None)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}
