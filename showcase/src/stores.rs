//! The copilot's stores: a trait each, annotated with `#[cached_store]`, one SQL
//! implementation each (SQLite or Postgres, whichever [`Database`] holds), and one
//! factory each that returns the same type whatever the configuration.
//!
//! Each write invalidates the keys it names; the configs also carry a
//! `tenant:<tenant_id>` tag, so that deleting a tenant's configs drops every cached
//! config of the tenant (its own and each user's) at once, on every instance, without
//! knowing which users had one.

use async_trait::async_trait;
use cacheward::{Cache, cached_store};
use sqlx::Row;

use crate::db::{Database, now_ms, with_pool};
use crate::model::{Conversation, ConversationConfig, Message, NewMessage, TenantLlmPolicy};

/// A store could not do its job: the database failed. (Cache failures never get here:
/// the cache fails open.)
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error, or not at all.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// The LLM policy of each tenant, read on every LLM request.
#[cached_store(
    key = "copilot:llm:policy:<tenant_id>",
    ttl = 300,
    ttl_env = "CACHE_TTL_POLICY_SECONDS"
)]
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// The tenant's policy, if it has one.
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError>;

    /// Creates or replaces the tenant's policy (and invalidates its cache entry).
    #[invalidates(tenant_id = policy.tenant_id)]
    async fn set_policy(&self, policy: &TenantLlmPolicy) -> Result<(), StoreError>;
}

/// Conversations and their messages.
#[cached_store(key = "copilot:conv:conversation:<conversation_id>", ttl = 60)]
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// The conversation with all its messages, if it exists.
    async fn get_conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Appends a message (creating the conversation on its first message) and
    /// invalidates the conversation's cache entry.
    #[invalidates]
    async fn append_message(
        &self,
        conversation_id: &str,
        message: &NewMessage,
    ) -> Result<Message, StoreError>;
}

/// Conversation settings per tenant, and per user of a tenant.
#[cached_store(
    key = "copilot:conv:config:<tenant_id>:<user_id>",
    ttl = 300,
    ttl_env = "CACHE_TTL_CONFIG_SECONDS",
    tags = ["tenant:<tenant_id>"]
)]
#[async_trait]
pub trait ConversationConfigStore: Send + Sync {
    /// The configuration of `user_id` in the tenant, or of the tenant itself (`None`).
    async fn get_config(
        &self,
        tenant_id: &str,
        user_id: Option<&str>,
    ) -> Result<Option<ConversationConfig>, StoreError>;

    /// Creates or replaces a configuration (and invalidates its cache entry).
    #[invalidates(tenant_id = config.tenant_id, user_id = config.user_id.as_deref())]
    async fn set_config(&self, config: &ConversationConfig) -> Result<(), StoreError>;

    /// Deletes every configuration of the tenant, its own and its users'; returns how
    /// many there were. The tenant's tag drops all their cache entries at once.
    #[invalidates(tag = "tenant:<tenant_id>")]
    async fn delete_tenant_configs(&self, tenant_id: &str) -> Result<u64, StoreError>;
}

/// The service's policy store, the same type with or without Redis, on SQLite or
/// Postgres.
pub type Policies = CachingPolicyStore<SqlPolicyStore>;
/// The service's conversation store.
pub type Conversations = CachingConversationStore<SqlConversationStore>;
/// The service's conversation config store.
pub type ConversationConfigs = CachingConversationConfigStore<SqlConversationConfigStore>;

/// The policy store over `db`, cached in `cache` (pass-through without Redis).
pub fn create_policy_store(db: &Database, cache: &Cache) -> Policies {
    CachingPolicyStore::new(SqlPolicyStore { db: db.clone() }, cache.clone())
}

/// The conversation store over `db`, cached in `cache`.
pub fn create_conversation_store(db: &Database, cache: &Cache) -> Conversations {
    CachingConversationStore::new(SqlConversationStore { db: db.clone() }, cache.clone())
}

/// The conversation config store over `db`, cached in `cache`.
pub fn create_conversation_config_store(db: &Database, cache: &Cache) -> ConversationConfigs {
    CachingConversationConfigStore::new(
        SqlConversationConfigStore { db: db.clone() },
        cache.clone(),
    )
}

/// [`PolicyStore`] in the `tenant_llm_policies` table.
#[derive(Debug, Clone)]
pub struct SqlPolicyStore {
    db: Database,
}

#[async_trait]
impl PolicyStore for SqlPolicyStore {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
        self.db.count("get_policy");
        let row = with_pool!(self.db, pool => {
            sqlx::query(
                "SELECT default_model, allowed_models, max_tokens_per_request \
                 FROM tenant_llm_policies WHERE tenant_id = $1",
            )
            .bind(tenant_id)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<(String, String, i64), sqlx::Error> {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            })
            .transpose()?
        });
        let Some((default_model, allowed_models, max_tokens)) = row else {
            return Ok(None);
        };
        Ok(Some(TenantLlmPolicy {
            tenant_id: tenant_id.to_owned(),
            default_model,
            allowed_models: serde_json::from_str(&allowed_models)
                .map_err(|e| StoreError::Corrupt(format!("allowed_models: {e}")))?,
            max_tokens_per_request: u32::try_from(max_tokens)
                .map_err(|e| StoreError::Corrupt(format!("max_tokens_per_request: {e}")))?,
        }))
    }

    async fn set_policy(&self, policy: &TenantLlmPolicy) -> Result<(), StoreError> {
        self.db.count("set_policy");
        let allowed = serde_json::to_string(&policy.allowed_models)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        with_pool!(self.db, pool => {
            sqlx::query(
                "INSERT INTO tenant_llm_policies \
                   (tenant_id, default_model, allowed_models, max_tokens_per_request, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id) DO UPDATE SET \
                   default_model = excluded.default_model, \
                   allowed_models = excluded.allowed_models, \
                   max_tokens_per_request = excluded.max_tokens_per_request, \
                   updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&policy.tenant_id)
            .bind(&policy.default_model)
            .bind(&allowed)
            .bind(i64::from(policy.max_tokens_per_request))
            .bind(now_ms())
            .execute(pool)
            .await
            .map(drop)?
        });
        Ok(())
    }
}

/// [`ConversationStore`] in the `conversations` and `conversation_messages` tables.
#[derive(Debug, Clone)]
pub struct SqlConversationStore {
    db: Database,
}

#[async_trait]
impl ConversationStore for SqlConversationStore {
    async fn get_conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        self.db.count("get_conversation");
        with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            let Some(head) = sqlx::query(
                "SELECT created_at_ms, updated_at_ms FROM conversations WHERE id = $1",
            )
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(None);
            };
            let messages = sqlx::query(
                "SELECT seq, role, content, created_at_ms FROM conversation_messages \
                 WHERE conversation_id = $1 ORDER BY seq",
            )
            .bind(conversation_id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|row| {
                Ok(Message {
                    seq: row.try_get(0)?,
                    role: row.try_get(1)?,
                    content: row.try_get(2)?,
                    created_at_ms: row.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            tx.commit().await?;
            Ok(Some(Conversation {
                id: conversation_id.to_owned(),
                messages,
                created_at_ms: head.try_get(0)?,
                updated_at_ms: head.try_get(1)?,
            }))
        })
    }

    async fn append_message(
        &self,
        conversation_id: &str,
        message: &NewMessage,
    ) -> Result<Message, StoreError> {
        self.db.count("append_message");
        let now = now_ms();
        with_pool!(self.db, pool => {
            let mut tx = pool.begin().await?;
            // The upsert locks the conversation's row until commit, so concurrent
            // appends to one conversation number their messages one after the other.
            sqlx::query(
                "INSERT INTO conversations (id, created_at_ms, updated_at_ms) VALUES ($1, $2, $2) \
                 ON CONFLICT (id) DO UPDATE SET updated_at_ms = excluded.updated_at_ms",
            )
            .bind(conversation_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let seq: i64 = sqlx::query(
                "INSERT INTO conversation_messages (conversation_id, seq, role, content, created_at_ms) \
                 SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 \
                 FROM conversation_messages WHERE conversation_id = $1 \
                 RETURNING seq",
            )
            .bind(conversation_id)
            .bind(&message.role)
            .bind(&message.content)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            tx.commit().await?;
            Ok(Message {
                seq,
                role: message.role.clone(),
                content: message.content.clone(),
                created_at_ms: now,
            })
        })
    }
}

/// [`ConversationConfigStore`] in the `conversation_configs` table (the tenant's own
/// configuration has `user_id = ''`).
#[derive(Debug, Clone)]
pub struct SqlConversationConfigStore {
    db: Database,
}

#[async_trait]
impl ConversationConfigStore for SqlConversationConfigStore {
    async fn get_config(
        &self,
        tenant_id: &str,
        user_id: Option<&str>,
    ) -> Result<Option<ConversationConfig>, StoreError> {
        self.db.count("get_config");
        let row = with_pool!(self.db, pool => {
            sqlx::query(
                "SELECT model, temperature, max_history_messages FROM conversation_configs \
                 WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(user_id.unwrap_or(""))
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<(Option<String>, Option<f64>, Option<i64>), sqlx::Error> {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            })
            .transpose()?
        });
        let Some((model, temperature, max_history)) = row else {
            return Ok(None);
        };
        Ok(Some(ConversationConfig {
            tenant_id: tenant_id.to_owned(),
            user_id: user_id.map(str::to_owned),
            model,
            temperature,
            max_history_messages: max_history
                .map(u32::try_from)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("max_history_messages: {e}")))?,
        }))
    }

    async fn set_config(&self, config: &ConversationConfig) -> Result<(), StoreError> {
        self.db.count("set_config");
        with_pool!(self.db, pool => {
            sqlx::query(
                "INSERT INTO conversation_configs \
                   (tenant_id, user_id, model, temperature, max_history_messages, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET \
                   model = excluded.model, \
                   temperature = excluded.temperature, \
                   max_history_messages = excluded.max_history_messages, \
                   updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&config.tenant_id)
            .bind(config.user_id.as_deref().unwrap_or(""))
            .bind(config.model.as_deref())
            .bind(config.temperature)
            .bind(config.max_history_messages.map(i64::from))
            .bind(now_ms())
            .execute(pool)
            .await
            .map(drop)?
        });
        Ok(())
    }

    async fn delete_tenant_configs(&self, tenant_id: &str) -> Result<u64, StoreError> {
        self.db.count("delete_tenant_configs");
        let deleted = with_pool!(self.db, pool => {
            sqlx::query("DELETE FROM conversation_configs WHERE tenant_id = $1")
                .bind(tenant_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted)
    }
}
