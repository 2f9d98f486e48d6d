//! The generated code is lint-clean: this file denies all warnings, missing docs and
//! (under `cargo clippy`, as CI runs it) `clippy::pedantic`, and uses every kind of
//! method the macro writes: cached (each shape), invalidating (`Result` and not,
//! several keys, bindings), pass-through (async, sync, provided), in `#[async_trait]`,
//! native and `impl Future` traits, with generics and associated items.

#![deny(warnings, missing_docs, clippy::pedantic)]

use std::future::Future;

use cacheward::{Cache, cached_store};
use serde::{Deserialize, Serialize};

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doc {
    /// Its id.
    pub id: u64,
    /// Its owner.
    pub owner: String,
}

/// A store error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure;

/// An `#[async_trait]` store.
#[cached_store(key = "lint:doc:<id>", ttl = "1h", ttl_env = "CACHE_TTL_LINT_SECONDS")]
#[async_trait::async_trait]
pub trait DocStore: Send + Sync {
    /// Cached, `Result<Option<T>, E>`.
    async fn get(&self, id: u64) -> Result<Option<Doc>, Failure>;
    /// Cached, `Option<T>` with `cache_none`.
    #[cached(key = "lint:owner:<owner>:<id>", cache_none)]
    async fn by_owner(&self, owner: &str, id: u64) -> Option<Doc>;
    /// Cached, `Result<T, E>`.
    #[cached(key = "lint:count:<owner>")]
    async fn count(&self, owner: &str) -> Result<u64, Failure>;
    /// Cached, plain `T`.
    #[cached(key = "lint:name:<id>", ttl = 30)]
    async fn name(&self, id: u64) -> String;
    /// Invalidates two keys after `Ok`.
    #[invalidates(id = doc.id)]
    #[invalidates(key = "lint:owner:<owner>:<id>", owner = doc.owner, id = doc.id)]
    async fn put(&self, doc: Doc) -> Result<(), Failure>;
    /// Invalidates always (not a `Result`).
    #[invalidates(key = "lint:name:<id>")]
    async fn rename(&self, id: u64, name: String) -> bool;
    /// Passes through.
    #[uncached]
    async fn raw(&self, id: u64) -> Result<Option<Doc>, Failure>;
    /// Passes through, not async.
    fn label(&self) -> &'static str;
}

/// A generic store written with `fn -> impl Future + Send`.
#[cached_store(key = "lint:item:<T>:<kind>:<id>", ttl = 60)]
pub trait ItemStore<T>: Send + Sync
where
    T: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    /// An associated type.
    type Error: Send;
    /// Cached.
    fn item(
        &self,
        kind: &str,
        id: u32,
    ) -> impl Future<Output = Result<Option<T>, Self::Error>> + Send;
    /// Invalidates.
    #[invalidates]
    fn drop_item(
        &self,
        kind: &str,
        id: u32,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// A provided method, forwarded.
    fn kinds(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A native `async fn` trait (crate-private: `async fn` in public traits is linted).
#[cached_store(key = "lint:native:<id>", ttl = 60)]
pub(crate) trait NativeStore {
    /// Cached.
    async fn native(&self, id: u64) -> Option<u64>;
    /// Invalidates.
    #[invalidates]
    async fn bump(&mut self, id: u64) -> Option<u64>;
}

struct Docs;

#[async_trait::async_trait]
impl DocStore for Docs {
    async fn get(&self, id: u64) -> Result<Option<Doc>, Failure> {
        Ok(Some(Doc {
            id,
            owner: "o".into(),
        }))
    }
    async fn by_owner(&self, owner: &str, id: u64) -> Option<Doc> {
        Some(Doc {
            id,
            owner: owner.into(),
        })
    }
    async fn count(&self, _owner: &str) -> Result<u64, Failure> {
        Ok(1)
    }
    async fn name(&self, id: u64) -> String {
        format!("doc {id}")
    }
    async fn put(&self, _doc: Doc) -> Result<(), Failure> {
        Ok(())
    }
    async fn rename(&self, _id: u64, _name: String) -> bool {
        true
    }
    async fn raw(&self, id: u64) -> Result<Option<Doc>, Failure> {
        self.get(id).await
    }
    fn label(&self) -> &'static str {
        "docs"
    }
}

struct Items;

impl ItemStore<String> for Items {
    type Error = Failure;
    async fn item(&self, kind: &str, id: u32) -> Result<Option<String>, Failure> {
        Ok(Some(format!("{kind}#{id}")))
    }
    async fn drop_item(&self, _kind: &str, _id: u32) -> Result<(), Failure> {
        Ok(())
    }
}

struct Counter(u64);

impl NativeStore for Counter {
    async fn native(&self, id: u64) -> Option<u64> {
        Some(id + self.0)
    }
    async fn bump(&mut self, _id: u64) -> Option<u64> {
        self.0 += 1;
        Some(self.0)
    }
}

#[tokio::test]
async fn lint_clean_decorators_work() {
    let docs = CachingDocStore::new(Docs, Cache::memory());
    assert_eq!(docs.get(1).await.unwrap().unwrap().id, 1);
    assert_eq!(docs.by_owner("a:b", 2).await.unwrap().owner, "a:b");
    assert_eq!(docs.count("o").await, Ok(1));
    assert_eq!(docs.name(3).await, "doc 3");
    docs.put(Doc {
        id: 1,
        owner: "o".into(),
    })
    .await
    .unwrap();
    assert!(docs.rename(3, "x".into()).await);
    assert!(docs.raw(1).await.unwrap().is_some());
    assert_eq!(docs.label(), "docs");

    let items = CachingItemStore::new(Items, Cache::memory());
    assert_eq!(items.item("k", 1).await, Ok(Some("k#1".to_owned())));
    assert_eq!(items.drop_item("k", 1).await, Ok(()));
    assert!(items.kinds().is_empty());

    let mut native = CachingNativeStore::new(Counter(0), Cache::memory());
    assert_eq!(native.native(1).await, Some(1));
    assert_eq!(native.bump(1).await, Some(1));
    assert_eq!(native.native(1).await, Some(2), "bump invalidated the key");
    assert_eq!(CachingDocStore::<Docs>::key_specs().len(), 4);
}
