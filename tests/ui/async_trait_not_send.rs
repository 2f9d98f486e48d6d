use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
#[async_trait::async_trait]
pub trait UserStore {
    async fn get_user(&self, user_id: u64) -> Option<String>;
}

fn main() {}
