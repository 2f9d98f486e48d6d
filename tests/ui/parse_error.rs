use cacheward::cached_store;

// syn's own message, at the token it could not read.
#[cached_store(key = "app:user:<user_id>" ttl = 60)]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, user_id: u64) -> Option<String>;
}

fn main() {}
