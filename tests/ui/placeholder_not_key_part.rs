use cacheward::cached_store;

pub struct UserId(pub u64);

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait Store: Send + Sync {
    async fn get_user(&self, user_id: UserId) -> Option<String>;
}

fn main() {}
