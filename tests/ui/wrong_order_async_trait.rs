use cacheward::cached_store;

#[async_trait::async_trait]
#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait Store: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;
}

fn main() {}
