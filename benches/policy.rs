//! The benchmarks' value and stores: the seeds' LLM policy, a policy store trait and
//! backing stores that answer instantly or after a simulated database latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A tenant's LLM policy (seed 000's `TenantLlmPolicy`): about 300 bytes of JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantLlmPolicy {
    /// The tenant this policy belongs to.
    pub tenant_id: String,
    /// The model used when a request names none.
    pub default_model: String,
    /// Models the tenant may call.
    pub allowed_models: Vec<String>,
    /// Upper bound on tokens in one request.
    pub max_tokens_per_request: u32,
    /// Tokens the tenant may spend in a month.
    pub monthly_token_budget: u64,
    /// Default sampling temperature.
    pub temperature: f64,
    /// Whether streaming responses are allowed.
    pub allow_streaming: bool,
    /// Where requests may be sent (`"eu-only"`, `"any"`, ...).
    pub egress_mode: String,
    /// Free-form notes from the tenant's administrator.
    pub notes: String,
    /// When the policy last changed (RFC 3339).
    pub updated_at: String,
}

impl TenantLlmPolicy {
    /// A realistic policy for `tenant`.
    pub fn sample(tenant: &str) -> Self {
        TenantLlmPolicy {
            tenant_id: tenant.to_owned(),
            default_model: "gpt-4o-mini".to_owned(),
            allowed_models: vec![
                "gpt-4o-mini".to_owned(),
                "gpt-4o".to_owned(),
                "claude-3-5-sonnet".to_owned(),
                "mistral-large".to_owned(),
            ],
            max_tokens_per_request: 8192,
            monthly_token_budget: 250_000_000,
            temperature: 0.2,
            allow_streaming: true,
            egress_mode: "eu-only".to_owned(),
            notes: "PII redaction on; no training on prompts".to_owned(),
            updated_at: "2026-11-21T20:00:00Z".to_owned(),
        }
    }
}

/// The backing store's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// The policy store of the seeds, reduced to its read path.
#[async_trait::async_trait]
pub trait PolicyStore: Send + Sync {
    /// The policy of `tenant_id`, if it has one.
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError>;
}

/// A backing store that answers after `latency` (a database round trip) and counts calls.
#[derive(Debug)]
pub struct BackingStore {
    latency: Duration,
    calls: AtomicU64,
}

impl BackingStore {
    /// A store that answers immediately.
    pub fn instant() -> Self {
        Self::with_latency(Duration::ZERO)
    }

    /// A store that sleeps `latency` (tokio timer) before answering.
    pub fn with_latency(latency: Duration) -> Self {
        BackingStore {
            latency,
            calls: AtomicU64::new(0),
        }
    }

    /// How many times `get_policy` was called.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl PolicyStore for BackingStore {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        Ok(Some(TenantLlmPolicy::sample(tenant_id)))
    }
}

#[async_trait::async_trait]
impl<S: PolicyStore + ?Sized> PolicyStore for std::sync::Arc<S> {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
        (**self).get_policy(tenant_id).await
    }
}

/// The read-through decorator as a user would write it by hand over [`cacheward::Cache`]'s
/// public API (`get`, then the inner call, then `set`): no single-flight.
///
/// It separates what the runtime costs from what the generated code adds.
#[derive(Debug, Clone)]
pub struct HandCachedPolicyStore<S> {
    inner: S,
    cache: cacheward::Cache,
    ttl: Duration,
}

impl<S> HandCachedPolicyStore<S> {
    /// Wraps `inner`; entries live 300 s.
    pub fn new(inner: S, cache: cacheward::Cache) -> Self {
        HandCachedPolicyStore {
            inner,
            cache,
            ttl: Duration::from_secs(300),
        }
    }
}

/// The key the seeds use for a tenant's policy.
pub fn policy_key(tenant_id: &str) -> String {
    let mut key = String::with_capacity(20 + tenant_id.len());
    key.push_str("copilot:llm:policy:");
    cacheward::key::write_escaped(tenant_id, &mut key);
    key
}

#[async_trait::async_trait]
impl<S: PolicyStore> PolicyStore for HandCachedPolicyStore<S> {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
        let key = policy_key(tenant_id);
        if let Some(hit) = self.cache.get::<TenantLlmPolicy>(&key).await {
            return Ok(Some(hit));
        }
        let fresh = self.inner.get_policy(tenant_id).await?;
        if let Some(policy) = &fresh {
            self.cache.set(&key, policy, self.ttl).await;
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_policy_is_about_300_bytes_of_json() {
        let len = serde_json::to_vec(&TenantLlmPolicy::sample("tenant-0042"))
            .unwrap()
            .len();
        assert!((250..=350).contains(&len), "{len} bytes");
    }

    #[test]
    fn policy_keys_follow_the_seeds_layout() {
        assert_eq!(policy_key("acme"), "copilot:llm:policy:acme");
        assert_ne!(policy_key("a:b"), "copilot:llm:policy:a:b");
    }
}
