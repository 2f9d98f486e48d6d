use cacheward::cached_store;

#[cached_store(ttl = 60)]
pub trait Store: Send + Sync {
    #[cached(key = "app:name:<user_id>")]
    async fn name(&self, user_id: u64) -> Option<&str>;
}

fn main() {}
