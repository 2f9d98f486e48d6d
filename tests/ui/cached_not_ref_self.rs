use cacheward::cached_store;

#[cached_store(key = "app:user:<user_id>", ttl = 60)]
pub trait Store: Send + Sync {
    #[cached]
    async fn get_user(&mut self, user_id: u64) -> Option<String>;
}

fn main() {}
