use cacheward::cached_store;

#[cached_store(ttl = 300)]
pub trait Store: Send + Sync {
    #[cached(key = "app:config:<tenant_id>", tags = ["tenant:<tenant_id>"])]
    async fn get_config(&self, tenant_id: &str) -> Option<String>;

    #[invalidates(key = "app:config:<tenant_id>", tag = "tenant:<tenant_id>")]
    async fn reset(&self, tenant_id: &str) -> bool;
}

fn main() {}
