//! Shared pieces of the cacheward examples: an LLM copilot's policy store.
//!
//! [`PolicyStore`] is the hottest store of an LLM copilot: read on every LLM
//! request, written rarely by admins. `#[cached_store]` turns it into
//! [`CachingPolicyStore`], a read-through Redis cache with invalidation on writes.
//! [`InMemoryPolicyStore`] stands in for the database: it counts its calls and sleeps
//! a few milliseconds per call like a network round trip would.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cacheward::cached_store;
use serde::{Deserialize, Serialize};

/// A tenant's LLM policy (about 300 bytes of JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantLlmPolicy {
    /// The tenant the policy belongs to.
    pub tenant_id: String,
    /// The model used when a request names none.
    pub default_model: String,
    /// Models the tenant may use.
    pub allowed_models: Vec<String>,
    /// Upper bound on tokens per request.
    pub max_tokens_per_request: u32,
    /// Tokens the tenant may spend per month.
    pub monthly_token_budget: u64,
    /// Where prompts may be processed.
    pub data_residency: String,
    /// Whether personal data is redacted before prompts leave the tenant.
    pub pii_redaction: bool,
    /// Incremented on every change.
    pub version: u32,
}

impl TenantLlmPolicy {
    /// A realistic policy for `tenant_id`.
    pub fn sample(tenant_id: &str) -> Self {
        TenantLlmPolicy {
            tenant_id: tenant_id.to_owned(),
            default_model: "gpt-4o-mini".to_owned(),
            allowed_models: vec![
                "gpt-4o-mini".to_owned(),
                "gpt-4o".to_owned(),
                "claude-3-5-sonnet".to_owned(),
                "llama-3.1-70b-instruct".to_owned(),
            ],
            max_tokens_per_request: 8_192,
            monthly_token_budget: 250_000_000,
            data_residency: "eu-west-1".to_owned(),
            pii_redaction: true,
            version: 1,
        }
    }
}

/// Why the backing store failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The database could not be reached.
    Unavailable(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "policy store unavailable: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The copilot's LLM policy store, with its cache key and TTL (`CACHE_TTL_POLICY_SECONDS`
/// overrides the 300 s at run time).
#[cached_store(
    key = "copilot:llm:policy:<tenant_id>",
    ttl = 300,
    ttl_env = "CACHE_TTL_POLICY_SECONDS"
)]
#[async_trait::async_trait]
pub trait PolicyStore: Send + Sync {
    /// The tenant's policy, if it has one. Read-through cached.
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError>;

    /// Creates or replaces a policy; invalidates the tenant's key when it succeeds.
    #[invalidates(tenant_id = policy.tenant_id)]
    async fn set_policy(&self, policy: &TenantLlmPolicy) -> Result<(), StoreError>;

    /// Deletes a policy; invalidates the tenant's key when it succeeds.
    #[invalidates]
    async fn delete_policy(&self, tenant_id: &str) -> Result<(), StoreError>;

    /// Every tenant with a policy. Not cached: passes straight through.
    async fn list_tenants(&self) -> Result<Vec<String>, StoreError>;
}

/// A stand-in for the database: a map that counts calls and sleeps `latency` per call.
#[derive(Debug)]
pub struct InMemoryPolicyStore {
    policies: Mutex<HashMap<String, TenantLlmPolicy>>,
    reads: AtomicUsize,
    writes: AtomicUsize,
    latency: Duration,
}

impl InMemoryPolicyStore {
    /// An empty store whose every call takes `latency`.
    pub fn new(latency: Duration) -> Self {
        InMemoryPolicyStore {
            policies: Mutex::new(HashMap::new()),
            reads: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            latency,
        }
    }

    /// How many times `get_policy` reached this store.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// How many writes reached this store.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn policies(&self) -> std::sync::MutexGuard<'_, HashMap<String, TenantLlmPolicy>> {
        self.policies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl PolicyStore for InMemoryPolicyStore {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
        tokio::time::sleep(self.latency).await;
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.policies().get(tenant_id).cloned())
    }

    async fn set_policy(&self, policy: &TenantLlmPolicy) -> Result<(), StoreError> {
        tokio::time::sleep(self.latency).await;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.policies()
            .insert(policy.tenant_id.clone(), policy.clone());
        Ok(())
    }

    async fn delete_policy(&self, tenant_id: &str) -> Result<(), StoreError> {
        tokio::time::sleep(self.latency).await;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.policies().remove(tenant_id);
        Ok(())
    }

    async fn list_tenants(&self) -> Result<Vec<String>, StoreError> {
        tokio::time::sleep(self.latency).await;
        let mut tenants: Vec<String> = self.policies().keys().cloned().collect();
        tenants.sort();
        Ok(tenants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_policy_is_about_300_bytes_of_json() {
        let json = serde_json::to_string(&TenantLlmPolicy::sample("tenant-0042")).unwrap();
        assert!(
            (250..=350).contains(&json.len()),
            "{} bytes: {json}",
            json.len()
        );
    }

    #[tokio::test]
    async fn the_decorator_reads_through_and_invalidates() {
        let store = CachingPolicyStore::new(
            InMemoryPolicyStore::new(Duration::from_millis(1)),
            cacheward::Cache::memory(),
        );
        store
            .set_policy(&TenantLlmPolicy::sample("acme"))
            .await
            .unwrap();
        store.get_policy("acme").await.unwrap();
        store.get_policy("acme").await.unwrap();
        assert_eq!(store.inner().reads(), 1);
        store.delete_policy("acme").await.unwrap();
        assert_eq!(store.get_policy("acme").await, Ok(None));
        assert_eq!(store.inner().reads(), 2);
    }
}
