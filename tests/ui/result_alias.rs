use cacheward::cached_store;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Policy;
pub struct StoreError;

pub type StoreResult<T> = Result<T, StoreError>;

#[cached_store(key = "app:policy:<tenant_id>", ttl = 60)]
pub trait PolicyStore: Send + Sync {
    // Taken for a plain value: the whole `Result` would be cached.
    async fn get_policy(&self, tenant_id: &str) -> StoreResult<Policy>;
}

fn main() {}
