use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 0)]
pub trait Store: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;
}

fn main() {}
