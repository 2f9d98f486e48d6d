//! The HTTP API: routes, handlers, JSON errors, the rate-limit layer, `/health` and
//! `/metrics`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use cacheward::{Decision, RateLimiter};
use serde::Serialize;
use serde_json::json;

use crate::App;
use crate::model::{
    ConfigBody, Conversation, ConversationConfig, Message, NewMessage, PolicyBody, TenantLlmPolicy,
    validate_id,
};
use crate::stores::{ConversationConfigStore, ConversationStore, PolicyStore, StoreError};

/// The routes, with the rate limit applied to the API (not to `/health` and
/// `/metrics`, which monitoring polls).
pub fn router(app: App) -> Router {
    let api = Router::new()
        .route(
            "/tenants/{tenant_id}/policy",
            get(get_policy).put(put_policy),
        )
        .route("/conversations/{conversation_id}", get(get_conversation))
        .route(
            "/conversations/{conversation_id}/messages",
            post(post_message),
        )
        .route(
            "/tenants/{tenant_id}/config",
            get(get_tenant_config).put(put_tenant_config),
        )
        .route(
            "/tenants/{tenant_id}/configs",
            delete(delete_tenant_configs),
        )
        .route(
            "/tenants/{tenant_id}/users/{user_id}/config",
            get(get_user_config).put(put_user_config),
        )
        .layer(middleware::from_fn_with_state(
            app.limiter.clone(),
            rate_limit,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(api)
        .fallback(|| async { ApiError::NotFound("route") })
        .with_state(app)
}

/// What a handler can answer besides success; always a JSON body `{"error": "..."}`.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is malformed (bad JSON, a bad id, a bad field).
    BadRequest(String),
    /// 404: no such row (or route).
    NotFound(&'static str),
    /// 503: the database failed. (The cache never causes an error: it fails open.)
    Unavailable(StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
            ApiError::Unavailable(err) => {
                tracing::error!(error = %err, "store failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable".to_owned(),
                )
            }
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Unavailable(err)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// One id from the path, checked.
fn id(what: &str, value: String) -> ApiResult<String> {
    validate_id(what, &value).map_err(ApiError::BadRequest)?;
    Ok(value)
}

async fn get_policy(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<TenantLlmPolicy>> {
    let tenant_id = id("tenant_id", path?.0)?;
    match app.policies.get_policy(&tenant_id).await? {
        Some(policy) => Ok(Json(policy)),
        None => Err(ApiError::NotFound("policy")),
    }
}

async fn put_policy(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<PolicyBody>, JsonRejection>,
) -> ApiResult<Json<TenantLlmPolicy>> {
    let tenant_id = id("tenant_id", path?.0)?;
    let policy = body?
        .0
        .into_policy(tenant_id)
        .map_err(ApiError::BadRequest)?;
    app.policies.set_policy(&policy).await?;
    Ok(Json(policy))
}

async fn get_conversation(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Conversation>> {
    let conversation_id = id("conversation_id", path?.0)?;
    match app.conversations.get_conversation(&conversation_id).await? {
        Some(conversation) => Ok(Json(conversation)),
        None => Err(ApiError::NotFound("conversation")),
    }
}

async fn post_message(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let conversation_id = id("conversation_id", path?.0)?;
    let message = body?.0.validate().map_err(ApiError::BadRequest)?;
    let stored = app
        .conversations
        .append_message(&conversation_id, &message)
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

async fn get_tenant_config(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<ConversationConfig>> {
    let tenant_id = id("tenant_id", path?.0)?;
    match app.configs.get_config(&tenant_id, None).await? {
        Some(config) => Ok(Json(config)),
        None => Err(ApiError::NotFound("config")),
    }
}

async fn put_tenant_config(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<ConfigBody>, JsonRejection>,
) -> ApiResult<Json<ConversationConfig>> {
    let tenant_id = id("tenant_id", path?.0)?;
    let config = body?
        .0
        .into_config(tenant_id, None)
        .map_err(ApiError::BadRequest)?;
    app.configs.set_config(&config).await?;
    Ok(Json(config))
}

/// Deletes the tenant's configuration and all its users': `{"tenant_id", "deleted"}`.
async fn delete_tenant_configs(
    State(app): State<App>,
    path: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let tenant_id = id("tenant_id", path?.0)?;
    let deleted = app.configs.delete_tenant_configs(&tenant_id).await?;
    Ok(Json(
        serde_json::json!({"tenant_id": tenant_id, "deleted": deleted}),
    ))
}

/// The user's configuration, or else the tenant's.
async fn get_user_config(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<ConversationConfig>> {
    let (tenant_id, user_id) = path?.0;
    let tenant_id = id("tenant_id", tenant_id)?;
    let user_id = id("user_id", user_id)?;
    if let Some(config) = app.configs.get_config(&tenant_id, Some(&user_id)).await? {
        return Ok(Json(config));
    }
    match app.configs.get_config(&tenant_id, None).await? {
        Some(config) => Ok(Json(config)),
        None => Err(ApiError::NotFound("config")),
    }
}

async fn put_user_config(
    State(app): State<App>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<ConfigBody>, JsonRejection>,
) -> ApiResult<Json<ConversationConfig>> {
    let (tenant_id, user_id) = path?.0;
    let tenant_id = id("tenant_id", tenant_id)?;
    let user_id = id("user_id", user_id)?;
    let config = body?
        .0
        .into_config(tenant_id, Some(user_id))
        .map_err(ApiError::BadRequest)?;
    app.configs.set_config(&config).await?;
    Ok(Json(config))
}

/// `/health`: 200 while the database answers, whatever the cache does; 503 otherwise.
async fn health(State(app): State<App>) -> Response {
    #[derive(Serialize)]
    struct Health {
        status: &'static str,
        database: crate::db::DatabaseHealth,
        cache: cacheward::CacheHealth,
        cache_stats: cacheward::CacheStats,
        rate_limiter: cacheward::ratelimit::RateLimiterStats,
    }
    let (database, cache) = tokio::join!(app.db.health(), app.cache.health());
    let status = match (database.healthy, cache.healthy) {
        (true, true) => "ok",
        (true, false) => "degraded",
        (false, _) => "unavailable",
    };
    let code = if database.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status,
        database,
        cache,
        cache_stats: app.cache.stats(),
        rate_limiter: app.limiter.stats(),
    };
    (code, Json(body)).into_response()
}

/// `/metrics`: the Prometheus text exposition.
async fn metrics(State(app): State<App>) -> Response {
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// The rate limit: one check per request, keyed by the client's IP address.
async fn rate_limit(State(limiter): State<RateLimiter>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let decision = limiter.check_detailed(client).await;
    if !decision.allowed {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "error": "rate limit exceeded" })),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert("retry-after", seconds(decision.reset_after));
        rate_limit_headers(headers, &limiter, &decision);
        return response;
    }
    let mut response = next.run(request).await;
    rate_limit_headers(response.headers_mut(), &limiter, &decision);
    response
}

/// `RateLimit-Limit`, `-Remaining` and `-Reset`, unless the limiter could not count
/// (degraded: Redis failing), when there is nothing true to say.
fn rate_limit_headers(headers: &mut HeaderMap, limiter: &RateLimiter, d: &Decision) {
    if d.degraded {
        return;
    }
    headers.insert("ratelimit-limit", HeaderValue::from(limiter.limit()));
    headers.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("ratelimit-reset", seconds(d.reset_after));
}

/// Whole seconds, rounded up (a client that waits this long is not early).
fn seconds(d: Duration) -> HeaderValue {
    HeaderValue::from(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}
