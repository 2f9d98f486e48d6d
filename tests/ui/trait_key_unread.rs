use cacheward::{Cache, cached_store};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Policy;
pub struct StoreError;

// `<tenant>` is a typo for `tenant_id`: no method reads the key, so it would cache nothing.
#[cached_store(key = "copilot:llm:policy:<tenant>", ttl = 300)]
pub trait PolicyStore: Send + Sync {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<Policy>, StoreError>;
}

pub struct Db;

impl PolicyStore for Db {
    async fn get_policy(&self, _tenant_id: &str) -> Result<Option<Policy>, StoreError> {
        Ok(None)
    }
}

fn main() {
    // One error only: the decorator the user names still exists.
    let _store = CachingPolicyStore::new(Db, Cache::memory());
}
