//! The service's configuration, read from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `PORT` | the TCP port to listen on | `8080` |
//! | `BIND_ADDR` | the address to listen on | `127.0.0.1` |
//! | `DATABASE_URL` | `postgres://…` for Postgres, `sqlite://path` for another SQLite file | `sqlite://cacheward-showcase.db` |
//! | `DATABASE_MAX_CONNECTIONS` | the size of the connection pool | `16` |
//! | `RATE_LIMIT_PER_MINUTE` | requests per client address per minute (sliding window) | `600` |
//! | `REDIS_URL`, `CACHE_*` | the cache, as read by `cacheward::Cache::from_env` | pass-through |
//! | `RUST_LOG` | log filter | `info` |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// What the service needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The database's URL (`sqlite://…` or `postgres://…`).
    pub database_url: String,
    /// The size of the database connection pool.
    pub max_connections: u32,
    /// Requests per client address per minute.
    pub rate_limit_per_minute: u64,
}

/// The database used when `DATABASE_URL` is not set: a SQLite file in the working
/// directory, created (with the schema) on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://cacheward-showcase.db";

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name}={value:?}: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `vars` (the process environment, or a test's map).
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            vars(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let parse = |name: &'static str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => match value.parse::<u64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(ConfigError {
                        name,
                        value,
                        reason: "expected a positive whole number",
                    }),
                },
            }
        };
        let port = parse("PORT", 8080, 0)?;
        let port = u16::try_from(port).map_err(|_| ConfigError {
            name: "PORT",
            value: port.to_string(),
            reason: "expected a port number (0-65535)",
        })?;
        let ip = match get("BIND_ADDR") {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(value) => value.parse().map_err(|_| ConfigError {
                name: "BIND_ADDR",
                value,
                reason: "expected an IP address",
            })?,
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if crate::db::Kind::of_url(&database_url).is_none() {
            return Err(ConfigError {
                name: "DATABASE_URL",
                value: crate::db::redact_url(&database_url),
                reason: "expected postgres://… or sqlite://…",
            });
        }
        Ok(Config {
            addr: SocketAddr::new(ip, port),
            database_url,
            max_connections: u32::try_from(parse("DATABASE_MAX_CONNECTIONS", 16, 1)?)
                .unwrap_or(u32::MAX),
            rate_limit_per_minute: parse("RATE_LIMIT_PER_MINUTE", 600, 1)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_need_nothing() {
        let c = config(&[]).unwrap();
        assert_eq!(c.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.rate_limit_per_minute, 600);
    }

    #[test]
    fn variables_override_and_bad_values_are_named() {
        let c = config(&[
            ("PORT", "9000"),
            ("BIND_ADDR", "0.0.0.0"),
            ("DATABASE_URL", "postgres://u:secret@127.0.0.1:5432/db"),
            ("RATE_LIMIT_PER_MINUTE", "60"),
        ])
        .unwrap();
        assert_eq!(c.addr, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.rate_limit_per_minute, 60);
        assert_eq!(config(&[("PORT", "x")]).unwrap_err().name, "PORT");
        assert_eq!(config(&[("PORT", "70000")]).unwrap_err().name, "PORT");
        assert_eq!(
            config(&[("RATE_LIMIT_PER_MINUTE", "0")]).unwrap_err().name,
            "RATE_LIMIT_PER_MINUTE"
        );
        let err = config(&[("DATABASE_URL", "mysql://u:secret@h/db")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_URL");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
