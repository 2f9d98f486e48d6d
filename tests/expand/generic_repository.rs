//! A generic trait: type parameter with a `where` clause, associated type and
//! constant, `fn -> impl Future + Send` methods, explicit lifetimes, a non-async
//! method, a provided method, a plain `T` return and `cache_none`; the key names the
//! type parameter (`<T>`), so each instantiation has its own keys. `main` runs it.

#![allow(async_fn_in_trait)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cacheward::{Cache, cached_store};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cached_store(key = "repo:<T>:<kind>:<id>", ttl = "10m", cache_none)]
pub trait Repository<T>: Send + Sync
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    type Error: std::fmt::Debug + Send;
    const KIND: &'static str;

    fn find(&self, kind: &str, id: u64) -> impl Future<Output = Result<Option<T>, Self::Error>> + Send;

    #[invalidates]
    fn save<'a>(&'a self, kind: &'a str, id: u64, value: &'a T) -> impl Future<Output = Result<(), Self::Error>> + Send + 'a;

    #[cached(key = "repo:count:<kind>", ttl = 5)]
    async fn count(&self, kind: &str) -> usize;

    fn backend_name(&self) -> &'static str;

    async fn describe(&self) -> String {
        format!("{} repository", Self::KIND)
    }
}

#[derive(Default)]
struct MapRepository {
    values: Mutex<HashMap<(String, u64), String>>,
    finds: AtomicUsize,
}

impl Repository<String> for MapRepository {
    type Error = std::convert::Infallible;
    const KIND: &'static str = "map";

    async fn find(&self, kind: &str, id: u64) -> Result<Option<String>, Self::Error> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        Ok(self.values.lock().unwrap().get(&(kind.to_owned(), id)).cloned())
    }

    async fn save<'a>(&'a self, kind: &'a str, id: u64, value: &'a String) -> Result<(), Self::Error> {
        self.values.lock().unwrap().insert((kind.to_owned(), id), value.clone());
        Ok(())
    }

    async fn count(&self, kind: &str) -> usize {
        self.values.lock().unwrap().keys().filter(|(k, _)| k == kind).count()
    }

    fn backend_name(&self) -> &'static str {
        "hash map"
    }

    async fn describe(&self) -> String {
        "a map".to_owned()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let repo = CachingRepository::new(MapRepository::default(), Cache::memory());
    assert_eq!(repo.find("doc", 1).await.unwrap(), None);
    assert_eq!(repo.find("doc", 1).await.unwrap(), None, "cache_none: a hit");
    assert_eq!(repo.inner().finds.load(Ordering::SeqCst), 1);
    repo.save("doc", 1, &"hello".to_owned()).await.unwrap();
    assert_eq!(repo.find("doc", 1).await.unwrap().as_deref(), Some("hello"));
    assert_eq!(repo.inner().finds.load(Ordering::SeqCst), 2);
    assert_eq!(repo.count("doc").await, 1);
    assert_eq!(repo.backend_name(), "hash map");
    assert_eq!(repo.describe().await, "a map", "the inner store's override is used");
    assert_eq!(<CachingRepository<MapRepository> as Repository<String>>::KIND, "map");
}
