//! SPEC §2.2: several keys in one trait, native `async fn` in the trait.

#![allow(async_fn_in_trait)]

use cacheward::cached_store;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: u64,
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message(pub String);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationConfig {
    pub tenant_id: String,
    pub user_id: Option<String>,
}

#[derive(Debug)]
pub struct StoreError;

#[cached_store(ttl = 60)]
pub trait ConversationStore: Send + Sync {
    #[cached(key = "copilot:conv:conversation:<conversation_id>")]
    async fn get_conversation(&self, conversation_id: u64) -> Result<Option<Conversation>, StoreError>;

    #[cached(key = "copilot:conv:config:<tenant_id>:<user_id>", ttl = 300)]
    async fn get_config(&self, tenant_id: &str, user_id: Option<&str>) -> Result<Option<ConversationConfig>, StoreError>;

    #[invalidates(key = "copilot:conv:conversation:<conversation_id>")]
    async fn append_message(&self, conversation_id: u64, message: Message) -> Result<(), StoreError>;

    #[invalidates(key = "copilot:conv:config:<tenant_id>:<user_id>", user_id = config.user_id.as_deref())]
    #[invalidates(key = "copilot:conv:conversation:<conversation_id>")]
    async fn reset(&self, tenant_id: &str, conversation_id: u64, config: &ConversationConfig) -> Result<(), StoreError>;
}

fn main() {}
