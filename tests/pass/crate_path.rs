//! `crate = "..."` names the runtime through a re-export, also for `#[async_trait]`
//! traits and plain return shapes, without a warning.

#![deny(warnings)]

mod platform {
    pub use ::cacheward as caching;
}

#[cacheward::cached_store(crate = "crate::platform::caching", key = "pass:crate:<id>", ttl = 60)]
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, id: u64) -> u64;
    #[invalidates]
    async fn put(&self, id: u64) -> Result<(), ()>;
}

struct Inner;

#[async_trait::async_trait]
impl Store for Inner {
    async fn get(&self, id: u64) -> u64 {
        id
    }
    async fn put(&self, _id: u64) -> Result<(), ()> {
        Ok(())
    }
}

fn main() {
    let store = CachingStore::new(Inner, platform::caching::Cache::memory());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(runtime.block_on(store.get(3)), 3);
    assert_eq!(runtime.block_on(store.put(3)), Ok(()));
    assert_eq!(CachingStore::<Inner>::get_key(&3), "pass:crate:3");
}
