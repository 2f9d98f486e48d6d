//! The values the stores hold, the request bodies, and their validation.

use serde::{Deserialize, Serialize};

/// The longest id (tenant, user, conversation) accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// The longest message accepted, in bytes.
pub const MAX_MESSAGE_LEN: usize = 32 * 1024;

/// A tenant's LLM policy: which models it may use, and how many tokens per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLlmPolicy {
    /// The tenant.
    pub tenant_id: String,
    /// The model used when a request names none.
    pub default_model: String,
    /// The models the tenant may use.
    pub allowed_models: Vec<String>,
    /// The most tokens one request may ask for.
    pub max_tokens_per_request: u32,
}

/// The body of `PUT /tenants/{tenant_id}/policy` (the tenant comes from the path).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PolicyBody {
    /// See [`TenantLlmPolicy::default_model`].
    pub default_model: String,
    /// See [`TenantLlmPolicy::allowed_models`].
    pub allowed_models: Vec<String>,
    /// See [`TenantLlmPolicy::max_tokens_per_request`].
    pub max_tokens_per_request: u32,
}

impl PolicyBody {
    /// The policy for `tenant_id`, or what is wrong with the body.
    pub fn into_policy(self, tenant_id: String) -> Result<TenantLlmPolicy, String> {
        if self.default_model.trim().is_empty() {
            return Err("default_model must not be empty".into());
        }
        if self.allowed_models.is_empty() {
            return Err("allowed_models must name at least one model".into());
        }
        if !self.allowed_models.contains(&self.default_model) {
            return Err("default_model must be one of allowed_models".into());
        }
        if self.max_tokens_per_request == 0 {
            return Err("max_tokens_per_request must be positive".into());
        }
        Ok(TenantLlmPolicy {
            tenant_id,
            default_model: self.default_model,
            allowed_models: self.allowed_models,
            max_tokens_per_request: self.max_tokens_per_request,
        })
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its position in the conversation, from 1.
    pub seq: i64,
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// The text.
    pub content: String,
    /// When it was added (ms since the Unix epoch).
    pub created_at_ms: i64,
}

/// A conversation with all its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The conversation's id.
    pub id: String,
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// When the first message was added (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// When the last message was added (ms since the Unix epoch).
    pub updated_at_ms: i64,
}

/// The body of `POST /conversations/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewMessage {
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl NewMessage {
    /// The message, or what is wrong with it.
    pub fn validate(self) -> Result<NewMessage, String> {
        if !matches!(self.role.as_str(), "user" | "assistant" | "system") {
            return Err("role must be user, assistant or system".into());
        }
        if self.content.is_empty() {
            return Err("content must not be empty".into());
        }
        if self.content.len() > MAX_MESSAGE_LEN {
            return Err(format!("content is longer than {MAX_MESSAGE_LEN} bytes"));
        }
        Ok(self)
    }
}

/// How conversations of a tenant (or of one of its users) are run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationConfig {
    /// The tenant.
    pub tenant_id: String,
    /// The user, or `None` for the tenant's default.
    pub user_id: Option<String>,
    /// The model, when not the policy's default.
    pub model: Option<String>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<f64>,
    /// How many past messages are sent to the model.
    pub max_history_messages: Option<u32>,
}

/// The body of `PUT /tenants/{tenant_id}/users/{user_id}/config`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConfigBody {
    /// See [`ConversationConfig::model`].
    #[serde(default)]
    pub model: Option<String>,
    /// See [`ConversationConfig::temperature`].
    #[serde(default)]
    pub temperature: Option<f64>,
    /// See [`ConversationConfig::max_history_messages`].
    #[serde(default)]
    pub max_history_messages: Option<u32>,
}

impl ConfigBody {
    /// The configuration for `tenant_id` and `user_id`, or what is wrong with the body.
    pub fn into_config(
        self,
        tenant_id: String,
        user_id: Option<String>,
    ) -> Result<ConversationConfig, String> {
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err("temperature must be between 0 and 2".into());
        }
        if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err("model must not be empty".into());
        }
        Ok(ConversationConfig {
            tenant_id,
            user_id,
            model: self.model,
            temperature: self.temperature,
            max_history_messages: self.max_history_messages,
        })
    }
}

/// Checks an id taken from a path: not blank, at most [`MAX_ID_LEN`] bytes, no
/// control characters.
pub fn validate_id(what: &str, id: &str) -> Result<(), String> {
    if id.trim().is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("{what} is longer than {MAX_ID_LEN} bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(default: &str, allowed: &[&str], max: u32) -> PolicyBody {
        PolicyBody {
            default_model: default.into(),
            allowed_models: allowed.iter().map(|s| (*s).to_owned()).collect(),
            max_tokens_per_request: max,
        }
    }

    #[test]
    fn policy_bodies_are_checked() {
        assert!(
            body("gpt-4o", &["gpt-4o"], 8192)
                .into_policy("t".into())
                .is_ok()
        );
        assert!(body("", &["gpt-4o"], 1).into_policy("t".into()).is_err());
        assert!(body("gpt-4o", &[], 1).into_policy("t".into()).is_err());
        assert!(body("gpt-4o", &["o1"], 1).into_policy("t".into()).is_err());
        assert!(
            body("gpt-4o", &["gpt-4o"], 0)
                .into_policy("t".into())
                .is_err()
        );
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("tenant_id", "acme-1").is_ok());
        assert!(validate_id("tenant_id", "acme:eu/ü").is_ok());
        assert!(validate_id("tenant_id", " ").is_err());
        assert!(validate_id("tenant_id", &"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(validate_id("tenant_id", "a\nb").is_err());
    }

    #[test]
    fn messages_and_configs_are_checked() {
        let m = |role: &str, content: &str| NewMessage {
            role: role.into(),
            content: content.into(),
        };
        assert!(m("user", "hi").validate().is_ok());
        assert!(m("robot", "hi").validate().is_err());
        assert!(m("user", "").validate().is_err());
        let c = |t: Option<f64>| ConfigBody {
            model: None,
            temperature: t,
            max_history_messages: None,
        };
        assert!(c(Some(0.7)).into_config("t".into(), None).is_ok());
        assert!(c(Some(2.5)).into_config("t".into(), None).is_err());
    }
}
