//! Value types the near cache cannot clone out still compile and read through: one that
//! is not `Clone`, one that is not `Sync`, `Cow` with its lifetime elided, and a type
//! parameter; `Cow<'static, str>` and `Option<T>` with `cache_none`
//! take the cloning path.

#![deny(warnings)]
#![allow(async_fn_in_trait, elided_lifetimes_in_paths, mismatched_lifetime_syntaxes)]

use std::borrow::Cow;
use std::cell::Cell;

use cacheward::{Cache, cached_store};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct NotClone(u64);

#[cached_store(ttl = 60)]
pub trait Store: Sync {
    #[cached(key = "pass:near:not-clone:<id>")]
    async fn not_clone(&self, id: u64) -> Option<NotClone>;

    #[cached(key = "pass:near:not-sync:<id>")]
    async fn not_sync(&self, id: u64) -> Option<Cell<u64>>;

    #[cached(key = "pass:near:cow:<id>")]
    async fn cow(&self, id: u64) -> Option<Cow<str>>;

    #[cached(key = "pass:near:cow-static:<id>")]
    async fn cow_static(&self, id: u64) -> Option<Cow<'static, str>>;

    #[cached(key = "pass:near:none:<id>", cache_none)]
    async fn maybe(&self, id: u64) -> Result<Option<String>, String>;
}

#[cached_store(key = "pass:near:generic:<T>:<id>", ttl = 60)]
pub trait Generic<T: Serialize + DeserializeOwned + Clone + Send + Sync>: Sync {
    async fn generic(&self, id: u64) -> Option<T>;
}

struct Inner;

impl Store for Inner {
    async fn not_clone(&self, id: u64) -> Option<NotClone> {
        Some(NotClone(id))
    }

    async fn not_sync(&self, id: u64) -> Option<Cell<u64>> {
        Some(Cell::new(id))
    }

    async fn cow(&self, id: u64) -> Option<Cow<str>> {
        Some(Cow::Owned(id.to_string()))
    }

    async fn cow_static(&self, id: u64) -> Option<Cow<'static, str>> {
        Some(Cow::Owned(id.to_string()))
    }

    async fn maybe(&self, id: u64) -> Result<Option<String>, String> {
        Ok((id > 1).then(|| id.to_string()))
    }
}

impl Generic<String> for Inner {
    async fn generic(&self, id: u64) -> Option<String> {
        Some(id.to_string())
    }
}

fn main() {
    let store = CachingStore::new(Inner, Cache::memory());
    let generic = CachingGeneric::new(Inner, Cache::memory());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..2 {
            assert_eq!(store.not_clone(1).await, Some(NotClone(1)));
            assert_eq!(store.not_sync(2).await.map(Cell::into_inner), Some(2));
            assert_eq!(store.cow(3).await.as_deref(), Some("3"));
            assert_eq!(store.cow_static(5).await.as_deref(), Some("5"));
            assert_eq!(store.maybe(1).await, Ok(None));
            assert_eq!(store.maybe(6).await, Ok(Some("6".to_owned())));
            assert_eq!(generic.generic(7).await.as_deref(), Some("7"));
        }
    });
}
