//! The database: a SQLite file or a Postgres server, chosen by URL, with the schema
//! applied on connect, a health check, and a count of the queries sent.
//!
//! Queries are checked at run time (`sqlx::query`), so building the service needs no
//! database. The SQL is portable: the same statements, with `$1`-style parameters,
//! run on both.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// The schema, embedded in the binary: `(version, description, SQL)`.
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "stores", include_str!("../migrations/0001_stores.sql"))];

/// How long the health check waits for `SELECT 1`.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A SQLite file.
    Sqlite,
    /// A Postgres server.
    Postgres,
}

impl Kind {
    /// `Some` for `sqlite:` and `postgres://`/`postgresql://` URLs.
    pub fn of_url(url: &str) -> Option<Kind> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Kind::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Kind::Sqlite)
        } else {
            None
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
        }
    }
}

/// `url` with the password (if any) replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// A connection pool to one of the two databases.
#[derive(Debug, Clone)]
pub enum Pool {
    /// SQLite.
    Sqlite(SqlitePool),
    /// Postgres.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the pool of whichever database is in use. The
/// body is written once and compiled for each (the rows and executors differ in type).
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db.pool() {
            $crate::db::Pool::Sqlite($pool) => $body,
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The database handle the stores share: cheap to clone.
#[derive(Debug, Clone)]
pub struct Database {
    pool: Pool,
    queries: Arc<AtomicU64>,
}

/// The result of [`Database::health`], as `/health` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseHealth {
    /// Whether `SELECT 1` answered within [`HEALTH_TIMEOUT`].
    pub healthy: bool,
    /// `sqlite` or `postgres`.
    pub backend: Kind,
    /// The round-trip time of the check, in milliseconds, when it succeeded.
    pub latency_ms: Option<f64>,
    /// Why the check failed.
    pub error: Option<String>,
    /// Store queries sent since start ([`Database::queries`]).
    pub queries: u64,
}

/// Connecting or migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is not one of ours.
    #[error("unsupported database URL {0} (expected postgres://… or sqlite://…)")]
    UnsupportedUrl(String),
    /// sqlx refused the URL or could not connect.
    #[error("database {url}: {source}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// What went wrong.
        source: sqlx::Error,
    },
    /// Applying the schema failed.
    #[error("database {url}: migration failed: {source}")]
    Migrate {
        /// The URL, without its password.
        url: String,
        /// What went wrong.
        source: sqlx::migrate::MigrateError,
    },
}

fn migrator() -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

impl Database {
    /// Connects to `url` (a SQLite file is created if missing) and applies the schema.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Database, DbError> {
        let redacted = || redact_url(url);
        let connect_err = |source| DbError::Connect {
            url: redacted(),
            source,
        };
        let pool = match Kind::of_url(url) {
            Some(Kind::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(connect_err)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                Pool::Sqlite(pool)
            }
            Some(Kind::Postgres) => {
                let options = PgConnectOptions::from_str(url).map_err(connect_err)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_with(options)
                    .await
                    .map_err(connect_err)?;
                Pool::Postgres(pool)
            }
            None => return Err(DbError::UnsupportedUrl(redacted())),
        };
        let db = Database {
            pool,
            queries: Arc::default(),
        };
        let migrate_err = |source| DbError::Migrate {
            url: redacted(),
            source,
        };
        match &db.pool {
            Pool::Sqlite(p) => migrator().run(p).await.map_err(migrate_err)?,
            Pool::Postgres(p) => migrator().run(p).await.map_err(migrate_err)?,
        }
        Ok(db)
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Which database this is.
    pub fn kind(&self) -> Kind {
        match self.pool {
            Pool::Sqlite(_) => Kind::Sqlite,
            Pool::Postgres(_) => Kind::Postgres,
        }
    }

    /// How many store queries were sent since start (health checks not included).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Counts one store query named `query` (also as `db.queries.total{query}`).
    pub(crate) fn count(&self, query: &'static str) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("db.queries.total", "query" => query, "database" => self.kind().as_str())
            .increment(1);
    }

    /// `SELECT 1`, bounded by [`HEALTH_TIMEOUT`].
    pub async fn health(&self) -> DatabaseHealth {
        let start = Instant::now();
        let ping = async {
            with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))
        };
        let result = match tokio::time::timeout(HEALTH_TIMEOUT, ping).await {
            Ok(Ok(())) => Ok(start.elapsed()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {HEALTH_TIMEOUT:?}")),
        };
        DatabaseHealth {
            healthy: result.is_ok(),
            backend: self.kind(),
            latency_ms: result.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
            error: result.err(),
            queries: self.queries(),
        }
    }

    /// Closes the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_redacted() {
        assert_eq!(Kind::of_url("postgres://h/db"), Some(Kind::Postgres));
        assert_eq!(Kind::of_url("postgresql://h/db"), Some(Kind::Postgres));
        assert_eq!(Kind::of_url("sqlite://x.db"), Some(Kind::Sqlite));
        assert_eq!(Kind::of_url("sqlite::memory:"), Some(Kind::Sqlite));
        assert_eq!(Kind::of_url("mysql://h/db"), None);
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }
}
