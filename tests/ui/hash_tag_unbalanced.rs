use cacheward::cached_store;

#[cached_store(key = "app:{<tenant_id>:user", ttl = 60)]
pub trait Store: Send + Sync {
    async fn get_user(&self, tenant_id: &str) -> Option<String>;
}

fn main() {}
