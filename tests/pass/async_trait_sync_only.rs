//! An `#[async_trait]` trait whose methods all take `&self` needs only `Sync`.

#![deny(warnings)]

use cacheward::{Cache, cached_store};

#[cached_store(key = "pass:sync:<id>", ttl = 60)]
#[async_trait::async_trait]
pub trait Store: Sync {
    async fn get(&self, id: u64) -> Option<u64>;
}

struct Inner;

#[async_trait::async_trait]
impl Store for Inner {
    async fn get(&self, id: u64) -> Option<u64> {
        Some(id)
    }
}

fn main() {
    let store = CachingStore::new(Inner, Cache::memory());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(runtime.block_on(store.get(3)), Some(3));
}
