use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;

    // `CachingUserStore::cache` (the accessor) would be called instead.
    fn cache(&self) -> Vec<String>;
}

fn main() {}
