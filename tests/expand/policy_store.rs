//! SPEC §2.1: one key for the whole trait, on an `#[async_trait]` trait.

use cacheward::cached_store;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantLlmPolicy {
    pub tenant_id: String,
    pub default_model: String,
}

#[derive(Debug)]
pub enum StoreError {
    Unavailable,
}

#[cached_store(key = "copilot:llm:policy:<tenant_id>", ttl = 300, ttl_env = "CACHE_TTL_POLICY_SECONDS")]
#[async_trait::async_trait]
pub trait PolicyStore: Send + Sync {
    /// A read: its parameters cover every placeholder, so it is read-through cached.
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError>;

    /// A write: after the inner call succeeds, the key for `tenant_id` is deleted.
    #[invalidates]
    async fn delete_policy(&self, tenant_id: &str) -> Result<(), StoreError>;

    /// Placeholders bound to expressions over the parameters.
    #[invalidates(tenant_id = policy.tenant_id)]
    async fn set_policy(&self, policy: &TenantLlmPolicy) -> Result<(), StoreError>;

    /// No attribute and no placeholder match: passes straight through.
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError>;
}

fn main() {}
