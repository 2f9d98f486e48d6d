use cacheward::cached_store;

#[cached_store(ttl = 300)]
pub trait Store: Send + Sync {
    #[cached(key = "app:policy:<tenant_id>", stale_if_error = "1h")]
    async fn get_policy(&self, tenant_id: &str) -> Option<String>;
}

fn main() {}
