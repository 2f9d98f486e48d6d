use cacheward::cached_store;

// `CachingRepo<A>` (a `Repo<User>`) and `CachingRepo<B>` (a `Repo<Order>`) on one cache
// would share `app:item:1`.
#[cached_store(key = "app:item:<id>", ttl = 60)]
pub trait Repo<T>: Send + Sync {
    async fn get(&self, id: u64) -> Option<T>;
}

fn main() {}
