use cacheward::cached_store;

#[cached_store(ttl = 60)]
pub trait Store: Send + Sync {
    #[cached(key = "app:user:<user_id>", cache_none)]
    async fn get_user(&self, user_id: u64) -> String;
}

fn main() {}
