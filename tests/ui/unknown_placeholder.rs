use cacheward::cached_store;

#[cached_store(ttl = 60)]
pub trait Store: Send + Sync {
    #[cached(key = "app:user:<user>")]
    async fn get_user(&self, user_id: u64, tenant_id: &str) -> Option<String>;
}

fn main() {}
