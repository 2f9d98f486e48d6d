use cacheward::cached_store;

#[cached_store(key = "app:policy:<tenant_id>", ttl = 300, refresh_ahead = 1.5)]
pub trait Store: Send + Sync {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<String>, ()>;
}

fn main() {}
