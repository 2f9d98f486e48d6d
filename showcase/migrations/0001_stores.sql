-- The copilot's stores. Portable SQL: the same migration runs on SQLite and Postgres.

-- PolicyStore: one LLM policy per tenant.
CREATE TABLE tenant_llm_policies (
    tenant_id              TEXT PRIMARY KEY,
    default_model          TEXT NOT NULL,
    allowed_models         TEXT NOT NULL,   -- a JSON array of model names
    max_tokens_per_request BIGINT NOT NULL,
    updated_at_ms          BIGINT NOT NULL
);

-- ConversationStore: conversations and their messages, numbered from 1.
CREATE TABLE conversations (
    id            TEXT PRIMARY KEY,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE conversation_messages (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq             BIGINT NOT NULL,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- ConversationConfigStore: per tenant (user_id = '') and per user of a tenant.
CREATE TABLE conversation_configs (
    tenant_id            TEXT NOT NULL,
    user_id              TEXT NOT NULL DEFAULT '',
    model                TEXT,
    temperature          DOUBLE PRECISION,
    max_history_messages BIGINT,
    updated_at_ms        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
