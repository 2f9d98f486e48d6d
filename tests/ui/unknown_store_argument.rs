use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 60, expire = 30)]
pub trait Store: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;
}

fn main() {}
