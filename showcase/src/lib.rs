//! # cacheward-showcase
//!
//! The LLM copilot's stores as a running HTTP service: a policy store per tenant, a
//! conversation store and a conversation config store, on SQLite (by default) or
//! Postgres (`DATABASE_URL=postgres://…`), cached in Redis with cacheward when
//! `REDIS_URL` is set, behind a rate limit per client address, with `/health` and
//! `/metrics`.
//!
//! ```text
//! cargo run -p cacheward-showcase                      # SQLite file, no cache
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p cacheward-showcase
//! DATABASE_URL=postgres://app@127.0.0.1/app REDIS_URL=redis://127.0.0.1:6379 cargo run -p cacheward-showcase
//! ```
//!
//! The pieces, each small enough to copy: [`config`] (the environment), [`db`] (the
//! pool, the schema, the health check), [`stores`] (the `#[cached_store]` traits, their
//! SQL implementations and one factory each), [`http`] (routes, errors, the rate-limit
//! layer, `/health`, `/metrics`), and [`App`] which wires them.

#![warn(missing_docs)]

pub mod config;
pub mod db;
pub mod http;
pub mod model;
pub mod stores;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use cacheward::{Algorithm, Backend, Cache, RateLimiter};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub use config::Config;
use db::{Database, DbError};
use stores::{ConversationConfigs, Conversations, Policies};

/// The rate limiter's bucket name (in its Redis keys and metric labels).
pub const RATE_LIMIT_BUCKET: &str = "http-api";

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The database the stores share.
    pub db: Database,
    /// The cache the stores share.
    pub cache: Cache,
    /// Tenant LLM policies.
    pub policies: Policies,
    /// Conversations.
    pub conversations: Conversations,
    /// Conversation configs.
    pub configs: ConversationConfigs,
    /// The limit per client address.
    pub limiter: RateLimiter,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("db", &self.db.kind())
            .field("cache", &self.cache.backend())
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Connects to the database (applying the schema), builds the stores over it with
    /// `cache`, and the rate limiter.
    ///
    /// The limiter counts in Redis when `cache` is Redis (limits shared by every
    /// instance), and in the process otherwise: a service without Redis runs as one
    /// instance, so an in-process count is the true count.
    pub async fn new(config: &Config, cache: Cache) -> Result<App, DbError> {
        let metrics = install_metrics_recorder();
        let db = Database::connect(&config.database_url, config.max_connections).await?;
        let limiter_cache = match cache.backend() {
            Backend::Redis | Backend::RedisCluster | Backend::Memory => cache.clone(),
            _ => {
                tracing::info!("no Redis: the rate limit is counted in this process");
                Cache::memory()
            }
        };
        let limiter = RateLimiter::new(
            &limiter_cache,
            RATE_LIMIT_BUCKET,
            Algorithm::sliding_window(config.rate_limit_per_minute, Duration::from_secs(60)),
        )
        .prefix("copilot");
        Ok(App {
            policies: stores::create_policy_store(&db, &cache),
            conversations: stores::create_conversation_store(&db, &cache),
            configs: stores::create_conversation_config_store(&db, &cache),
            db,
            cache,
            limiter,
            metrics,
        })
    }

    /// Serves the API on `listener` until `shutdown` completes, then finishes the
    /// requests in flight and closes the database pool.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let db = self.db.clone();
        let router = http::router(self);
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        db.close().await;
        Ok(())
    }
}

/// Installs the process-wide Prometheus recorder (once; later calls return the same
/// handle), so that cacheward's metrics, the limiter's and the service's own end up
/// on `/metrics`.
///
/// Metric names are the seeds' with `.` written as `_` (Prometheus does not allow
/// dots): `cache_operations_total{operation,result,backend,cache}`,
/// `cache_operation_duration{…}` (a summary, seconds), `cache_errors_total{…,error_type}`,
/// `ratelimiter_checks_total{bucket,result,backend}`, `ratelimiter_check_duration{…}`,
/// `ratelimiter_errors_total{bucket,backend,error_type}` and the service's
/// `db_queries_total{query,database}`. `cache` is the key template, never a key.
pub fn install_metrics_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed: /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
