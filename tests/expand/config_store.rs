//! Tags, refresh-ahead and stale-if-error: the tagged configuration store and a policy
//! store that refreshes hot entries and survives a failing database.

#![allow(async_fn_in_trait)]

use cacheward::cached_store;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationConfig {
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantLlmPolicy {
    pub default_model: String,
}

#[derive(Debug)]
pub struct StoreError;

#[cached_store(ttl = 300)]
pub trait ConfigStore: Send + Sync {
    #[cached(key = "copilot:conv:config:<tenant_id>:<user_id>", tags = ["tenant:<tenant_id>"])]
    async fn get_config(
        &self,
        tenant_id: &str,
        user_id: Option<&str>,
    ) -> Result<Option<ConversationConfig>, StoreError>;

    #[invalidates(tag = "tenant:<tenant_id>")]
    async fn reset_tenant(&self, tenant_id: &str) -> Result<(), StoreError>;
}

#[cached_store(key = "copilot:llm:policy:<tenant_id>", ttl = 300, refresh_ahead = 0.8, stale_if_error = "1h")]
pub trait PolicyStore: Send + Sync {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError>;
}

fn main() {}
