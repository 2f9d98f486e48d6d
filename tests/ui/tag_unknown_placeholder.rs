use cacheward::cached_store;

#[cached_store(ttl = 300)]
pub trait Store: Send + Sync {
    #[cached(key = "app:config:<tenant_id>", tags = ["org:<org_id>"])]
    async fn get_config(&self, tenant_id: &str) -> Option<String>;
}

fn main() {}
