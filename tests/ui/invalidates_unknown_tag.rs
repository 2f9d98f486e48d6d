use cacheward::cached_store;

#[cached_store(ttl = 60)]
pub trait Store: Send + Sync {
    #[cached(key = "app:config:<tenant_id>:<user_id>", tags = ["tenant:<tenant_id>"])]
    async fn get_config(&self, tenant_id: &str, user_id: u64) -> Option<String>;

    #[invalidates(tag = "org:<tenant_id>")]
    async fn reset(&self, tenant_id: &str) -> bool;
}

fn main() {}
