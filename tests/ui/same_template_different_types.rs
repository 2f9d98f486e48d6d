use cacheward::cached_store;

#[cached_store(ttl = 60)]
pub trait Store: Send + Sync {
    #[cached(key = "app:user:<user_id>")]
    async fn get_name(&self, user_id: u64) -> Option<String>;

    #[cached(key = "app:user:<id>")]
    async fn get_age(&self, id: u64) -> Option<u32>;
}

fn main() {}
