//! Building a [`Cache`] from the environment, and per-cache TTL overrides.
//!
//! | variable | meaning |
//! |---|---|
//! | `REDIS_URL` | `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS); `https://...` is an Upstash REST URL (the `upstash` feature). Unset: pass-through. |
//! | `REDIS_PASSWORD` | the password, used when `REDIS_URL` carries none; the token of an Upstash REST URL |
//! | `CACHE_PROVIDER` | `redis` (the default when `REDIS_URL` is set), `cluster`, `upstash` (the REST API at `REDIS_URL`), `memory` (single-process), `none` / `passthrough` |
//! | `UPSTASH_REDIS_REST_URL`, `UPSTASH_REDIS_REST_TOKEN` | the Upstash SDK's names, used when `REDIS_URL` is unset (the token falls back to `REDIS_PASSWORD`) |
//! | `REDIS_CLUSTER_NODES` | `host:port,host:port` seeds of a Redis Cluster; set (and `CACHE_PROVIDER` unset) ⇒ cluster. With `CACHE_PROVIDER=cluster` and no nodes, `REDIS_URL` lists the seeds (comma-separated) |
//! | `REDIS_CLUSTER_ENABLED` | `false` ignores `REDIS_CLUSTER_NODES`; `true` makes `REDIS_URL` a cluster seed list |
//! | `REDIS_TLS_ENABLED` | `true`: bare `host:port` cluster seeds use TLS (`rediss://`) |
//! | `CACHE_ENABLED` | `false` (or `0`, `no`, `off`) turns caching off whatever else is set: the global off switch |
//! | `CACHE_DEADLINE_MS` | the per-operation deadline (default 20) |
//! | `CACHE_LEASE_MS` | how long the loader of a missing key may take before another may (default 5000) |
//! | `CACHE_NEAR_ENTRIES` | an in-process near cache of this many entries in front of a single Redis (default: none) |
//! | `CACHE_NEAR_MAX_AGE_MS` | the longest a near-cache entry is served (default 10000) |
//! | `CACHE_BREAKER_THRESHOLD` | consecutive failures that open the breaker (default 5) |
//! | `CACHE_BREAKER_COOLDOWN_MS` | how long the breaker stays open before a probe (default 1000) |
//! | `CACHE_COMPRESS_ABOVE_BYTES` | with the `compression` feature: the threshold (default 1024; `0` compresses everything that shrinks) |
//! | `CACHE_CODEC` | `json` (the default) or, with the `msgpack` feature, `msgpack`: how values are written ([`Codec`](crate::Codec)); every encoding is read whatever this says |
//! | `CACHE_TTL_<NAME>_SECONDS` | TTL override for the cache named `<NAME>` ([`ttl_override`]) |
//!
//! A broken setting never stops a service: a malformed `REDIS_URL` or an unknown
//! `CACHE_PROVIDER` gives a pass-through cache, one error log line and an unhealthy
//! [`Cache::health`] naming the problem; an unparsable tuning value is logged and the
//! default is used.

use std::time::Duration;

use crate::builder::CacheBuilder;
use crate::cache::Cache;

impl Cache {
    /// Builds the cache the environment asks for (see the [module docs](crate::config)).
    /// Never fails, never panics and never waits for Redis: without `REDIS_URL` it is
    /// [`Cache::pass_through`] and says so once in the log.
    pub fn from_env() -> Cache {
        Cache::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`Cache::from_env`], reading the variables through `vars` instead of the
    /// process environment (a config file, a secrets manager, a test's map).
    ///
    /// ```
    /// use cacheward::{Backend, Cache};
    ///
    /// let cache = Cache::from_vars(|name| match name {
    ///     "CACHE_PROVIDER" => Some("memory".to_owned()),
    ///     _ => None,
    /// });
    /// assert_eq!(cache.backend(), Backend::Memory);
    /// ```
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Cache {
        let get = |name: &str| {
            vars(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        if let Some(enabled) = get("CACHE_ENABLED") {
            match truthy(&enabled) {
                Some(false) => {
                    tracing::info!(
                        "cacheward: PassThroughCache active - all cache operations disabled (CACHE_ENABLED={enabled})"
                    );
                    return Cache::pass_through();
                }
                Some(true) => {}
                None => tracing::warn!(
                    value = %enabled,
                    "cacheward: CACHE_ENABLED is neither true nor false - caching stays enabled"
                ),
            }
        }

        let builder = tuned_builder(&get);
        let url = get("REDIS_URL");
        let provider = get("CACHE_PROVIDER").map(|p| p.to_ascii_lowercase());
        if let Some(upstash) = upstash_from_vars(&get, provider.as_deref(), &builder) {
            return upstash.unwrap_or_else(misconfigured);
        }
        if let Some(cluster) = cluster_from_vars(&get, provider.as_deref(), &builder) {
            return cluster.unwrap_or_else(misconfigured);
        }
        match provider.as_deref() {
            None | Some("redis") => match url {
                Some(url) => {
                    let mut b = builder.redis_url(url);
                    if let Some(pw) = get("REDIS_PASSWORD") {
                        b = b.password(pw);
                    }
                    match b.build() {
                        Ok(cache) => cache,
                        Err(err) => misconfigured(format!("REDIS_URL is malformed: {err}")),
                    }
                }
                None if provider.is_some() => {
                    misconfigured("CACHE_PROVIDER=redis but REDIS_URL is not set".to_owned())
                }
                None => {
                    tracing::info!(
                        "cacheward: PassThroughCache active - all cache operations disabled (REDIS_URL not set)"
                    );
                    Cache::pass_through()
                }
            },
            Some("memory") => {
                tracing::warn!(
                    "cacheward: in-memory cache active (CACHE_PROVIDER=memory) - single-process only, \
                     invalidations are not shared between instances"
                );
                builder
                    .memory()
                    .build()
                    .unwrap_or_else(|_| Cache::pass_through())
            }
            Some("none" | "passthrough" | "pass-through" | "off") => {
                tracing::info!(
                    "cacheward: PassThroughCache active - all cache operations disabled (CACHE_PROVIDER={})",
                    provider.as_deref().unwrap_or_default()
                );
                Cache::pass_through()
            }
            Some(other) => misconfigured(format!(
                "unknown CACHE_PROVIDER '{other}' (expected redis, cluster, upstash, memory, none or passthrough)"
            )),
        }
    }
}

/// Logs the configuration problem once and gives a pass-through cache that reports it.
/// `true`/`1`/`yes`/`on` and `false`/`0`/`no`/`off` (any case); `None` for anything else.
fn truthy(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The Upstash part of [`Cache::from_vars`]: `None` when the variables do not ask for
/// Upstash's REST API, `Some(Err(problem))` when they ask for it and it cannot be had.
///
/// Upstash is asked for by `CACHE_PROVIDER=upstash`, or by an `https://` `REDIS_URL`
/// (whatever `CACHE_PROVIDER` says, as in the seeds' resolution order), or, without a
/// `REDIS_URL`, by `UPSTASH_REDIS_REST_URL` (unless `CACHE_PROVIDER` names another
/// backend). The token is `REDIS_PASSWORD`, else `UPSTASH_REDIS_REST_TOKEN`.
fn upstash_from_vars(
    get: &impl Fn(&str) -> Option<String>,
    provider: Option<&str>,
    builder: &CacheBuilder,
) -> Option<Result<Cache, String>> {
    let redis_url = get("REDIS_URL");
    let sdk_url = get("UPSTASH_REDIS_REST_URL");
    let explicit = provider == Some("upstash");
    let (source, url) = match (redis_url, sdk_url) {
        (Some(url), _) if explicit || crate::builder::is_rest_url(&url) => ("REDIS_URL", url),
        (Some(_), _) => return None,
        (None, Some(url)) if explicit || provider.is_none() => ("UPSTASH_REDIS_REST_URL", url),
        (None, _) if explicit => {
            return Some(Err(
                "CACHE_PROVIDER=upstash but neither REDIS_URL nor UPSTASH_REDIS_REST_URL is set"
                    .to_owned(),
            ));
        }
        (None, _) => return None,
    };
    let token = get("REDIS_PASSWORD").or_else(|| get("UPSTASH_REDIS_REST_TOKEN"));
    #[cfg(feature = "upstash")]
    {
        let cache = builder
            .clone()
            .upstash(url, token.unwrap_or_default())
            .build();
        Some(cache.map_err(|err| format!("{source} is not a usable Upstash REST URL: {err}")))
    }
    #[cfg(not(feature = "upstash"))]
    {
        let _ = (builder, url, token);
        Some(Err(format!(
            "{source} asks for the Upstash REST API, which needs cacheward's `upstash` feature"
        )))
    }
}

/// The cluster part of [`Cache::from_vars`]: `None` when the variables do not ask for
/// a cluster, `Some(Err(problem))` when they ask for one that cannot be built.
///
/// A cluster is asked for by `CACHE_PROVIDER=cluster`, or by `REDIS_CLUSTER_NODES`
/// (unless `CACHE_PROVIDER` names another backend or `REDIS_CLUSTER_ENABLED=false`),
/// or by `REDIS_CLUSTER_ENABLED=true` with `REDIS_URL`. The seeds come from
/// `REDIS_CLUSTER_NODES`, else from `REDIS_URL` (comma-separated).
fn cluster_from_vars(
    get: &impl Fn(&str) -> Option<String>,
    provider: Option<&str>,
    builder: &CacheBuilder,
) -> Option<Result<Cache, String>> {
    let enabled = get("REDIS_CLUSTER_ENABLED").and_then(|v| truthy(&v));
    let nodes = get("REDIS_CLUSTER_NODES");
    let url = get("REDIS_URL");
    let wanted = match provider {
        Some("cluster" | "redis-cluster" | "redis_cluster") => true,
        Some(_) => false,
        None => match enabled {
            Some(false) => false,
            Some(true) => nodes.is_some() || url.is_some(),
            None => nodes.is_some(),
        },
    };
    if !wanted {
        return None;
    }
    let tls = get("REDIS_TLS_ENABLED").and_then(|v| truthy(&v)) == Some(true)
        || url
            .as_deref()
            .is_some_and(|u| u.trim_start().starts_with("rediss://"));
    let (source, list) = match (nodes, url) {
        (Some(nodes), _) => ("REDIS_CLUSTER_NODES", nodes),
        (None, Some(url)) => ("REDIS_URL", url),
        (None, None) => {
            return Some(Err(
                "CACHE_PROVIDER=cluster but neither REDIS_CLUSTER_NODES nor REDIS_URL is set"
                    .to_owned(),
            ));
        }
    };
    let mut b = builder
        .clone()
        .cluster_nodes(crate::backend::settings::parse_node_list(&list, tls));
    if let Some(pw) = get("REDIS_PASSWORD") {
        b = b.password(pw);
    }
    Some(
        b.build()
            .map_err(|err| format!("{source} is malformed: {err}")),
    )
}

fn misconfigured(reason: String) -> Cache {
    tracing::error!(
        problem = %reason,
        "cacheward: cache configuration is broken - PassThroughCache active, all cache operations disabled"
    );
    Cache::misconfigured(reason)
}

fn tuned_builder(get: &impl Fn(&str) -> Option<String>) -> CacheBuilder {
    let mut b = Cache::builder();
    let number = |name: &str| -> Option<u64> {
        let raw = get(name)?;
        match raw.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                tracing::warn!(variable = name, value = %raw, "cacheward: not a whole number - default used");
                None
            }
        }
    };
    if let Some(ms) = number("CACHE_DEADLINE_MS") {
        b = b.deadline(Duration::from_millis(ms));
    }
    if let Some(ms) = number("CACHE_LEASE_MS") {
        b = b.lease(Duration::from_millis(ms));
    }
    if let Some(n) = number("CACHE_NEAR_ENTRIES") {
        b = b.near_cache(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(ms) = number("CACHE_NEAR_MAX_AGE_MS") {
        b = b.near_cache_max_age(Duration::from_millis(ms));
    }
    let threshold = number("CACHE_BREAKER_THRESHOLD");
    let cool_down = number("CACHE_BREAKER_COOLDOWN_MS");
    if threshold.is_some() || cool_down.is_some() {
        let (t, c) = (b.guard.threshold, b.guard.cool_down);
        b = b.breaker(
            threshold.map_or(t, |t| u32::try_from(t).unwrap_or(u32::MAX)),
            cool_down.map_or(c, Duration::from_millis),
        );
    }
    #[cfg(feature = "compression")]
    if let Some(n) = number("CACHE_COMPRESS_ABOVE_BYTES") {
        b = b.compress_above(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(raw) = get("CACHE_CODEC") {
        match codec(&raw) {
            Ok(c) => b = b.codec(c),
            Err(why) => {
                tracing::warn!(variable = "CACHE_CODEC", value = %raw, "cacheward: {why} - JSON used");
            }
        }
    }
    b
}

/// The codec `CACHE_CODEC` names.
fn codec(raw: &str) -> Result<crate::Codec, &'static str> {
    match raw.to_ascii_lowercase().as_str() {
        "json" => Ok(crate::Codec::Json),
        #[cfg(feature = "msgpack")]
        "msgpack" | "messagepack" => Ok(crate::Codec::MessagePack),
        #[cfg(not(feature = "msgpack"))]
        "msgpack" | "messagepack" => Err("MessagePack needs the `msgpack` feature"),
        _ => Err("not a codec (json, msgpack)"),
    }
}

/// Reads a TTL override such as `CACHE_TTL_POLICY_SECONDS` from the environment.
///
/// `name` is either a full variable name (`CACHE_TTL_POLICY_SECONDS`) or a cache name
/// (`policy`, giving `CACHE_TTL_POLICY_SECONDS`). An unset variable gives `None`; an
/// unparsable or zero one is logged and ignored.
pub fn ttl_override(name: &str) -> Option<Duration> {
    let var = if name.starts_with("CACHE_TTL_") {
        name.to_owned()
    } else {
        format!("CACHE_TTL_{}_SECONDS", name.to_ascii_uppercase())
    };
    let raw = std::env::var(&var).ok()?;
    match raw.trim().parse::<u64>() {
        Ok(secs) if secs > 0 => Some(Duration::from_secs(secs)),
        _ => {
            tracing::warn!(variable = %var, value = %raw, "cacheward: TTL override is not a positive number of seconds - ignored");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    fn cache(vars: &[(&str, &str)]) -> Cache {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Cache::from_vars(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[tokio::test]
    async fn variables_choose_the_backend() {
        assert_eq!(cache(&[]).backend(), Backend::PassThrough);
        assert!(cache(&[]).health().await.healthy);
        assert_eq!(
            cache(&[("REDIS_URL", "redis://127.0.0.1:1")]).backend(),
            Backend::Redis
        );
        assert_eq!(
            cache(&[("CACHE_PROVIDER", "memory")]).backend(),
            Backend::Memory
        );
        assert_eq!(
            cache(&[
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("CACHE_PROVIDER", "none")
            ])
            .backend(),
            Backend::PassThrough
        );
        let off = cache(&[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("CACHE_ENABLED", "false"),
        ]);
        assert_eq!(off.backend(), Backend::PassThrough);
        assert!(off.health().await.healthy, "off on purpose is healthy");
    }

    #[tokio::test]
    async fn broken_settings_are_unhealthy_pass_through_naming_the_problem() {
        for (vars, expected) in [
            (
                &[("REDIS_URL", "redis://:pw123@host:port")][..],
                "invalid port",
            ),
            (&[("CACHE_PROVIDER", "redis")][..], "REDIS_URL is not set"),
            (
                &[("CACHE_PROVIDER", "mongo")][..],
                "unknown CACHE_PROVIDER 'mongo'",
            ),
            (
                &[("CACHE_PROVIDER", "upstash")][..],
                "neither REDIS_URL nor UPSTASH_REDIS_REST_URL",
            ),
            (
                &[("CACHE_PROVIDER", "upstash"), ("REDIS_URL", "redis://h:1")][..],
                if cfg!(feature = "upstash") {
                    "REDIS_URL is not a usable Upstash REST URL"
                } else {
                    "`upstash` feature"
                },
            ),
            (
                &[("REDIS_URL", "https://x.upstash.io")][..],
                if cfg!(feature = "upstash") {
                    "no Upstash token"
                } else {
                    "`upstash` feature"
                },
            ),
        ] {
            let c = cache(vars);
            assert_eq!(c.backend(), Backend::PassThrough);
            let h = c.health().await;
            assert!(!h.healthy);
            let err = h.error.unwrap();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("pw123"), "{err}");
            assert_eq!(c.get::<u32>("k").await, None);
        }
    }

    #[test]
    fn tuning_variables_are_read() {
        let c = cache(&[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("CACHE_DEADLINE_MS", "7"),
            ("CACHE_BREAKER_THRESHOLD", "3"),
            ("CACHE_BREAKER_COOLDOWN_MS", "250"),
            ("REDIS_PASSWORD", "envpw"),
        ]);
        let dbg = format!("{c:?}");
        assert!(dbg.contains("7ms"), "{dbg}");
        assert!(dbg.contains("threshold: 3"), "{dbg}");
        assert!(dbg.contains("250ms"), "{dbg}");
        assert!(!dbg.contains("envpw"), "{dbg}");
        // Garbage falls back to the defaults.
        let c = cache(&[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("CACHE_DEADLINE_MS", "soon"),
        ]);
        assert!(format!("{c:?}").contains("20ms"));
    }

    #[test]
    fn the_codec_variable_is_read_and_a_bad_one_keeps_json() {
        let codec_of = |value: &str| {
            cache(&[("CACHE_PROVIDER", "memory"), ("CACHE_CODEC", value)])
                .inner
                .encoding
                .codec
        };
        assert_eq!(codec_of("json"), crate::Codec::Json);
        assert_eq!(codec_of("yaml"), crate::Codec::Json);
        #[cfg(feature = "msgpack")]
        assert_eq!(codec_of("MsgPack"), crate::Codec::MessagePack);
        #[cfg(not(feature = "msgpack"))]
        assert_eq!(codec_of("msgpack"), crate::Codec::Json);
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[tokio::test]
    async fn the_environment_selects_the_cluster() {
        let cluster = |p: &[(&str, &str)]| Cache::from_vars(vars(p)).backend();
        assert_eq!(
            cluster(&[("REDIS_CLUSTER_NODES", "127.0.0.1:1,127.0.0.1:2")]),
            Backend::RedisCluster
        );
        assert_eq!(
            cluster(&[
                ("CACHE_PROVIDER", "cluster"),
                ("REDIS_URL", "redis://127.0.0.1:1")
            ]),
            Backend::RedisCluster
        );
        assert_eq!(
            cluster(&[
                ("REDIS_CLUSTER_ENABLED", "true"),
                ("REDIS_URL", "redis://127.0.0.1:1,redis://127.0.0.1:2")
            ]),
            Backend::RedisCluster
        );
        // A node list with the cluster switched off is not a cluster.
        assert_eq!(
            cluster(&[
                ("REDIS_CLUSTER_ENABLED", "false"),
                ("REDIS_CLUSTER_NODES", "127.0.0.1:1"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
            ]),
            Backend::Redis
        );
        // An explicit provider wins over the node list.
        assert_eq!(
            cluster(&[
                ("CACHE_PROVIDER", "redis"),
                ("REDIS_CLUSTER_NODES", "127.0.0.1:1"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
            ]),
            Backend::Redis
        );
        assert_eq!(cluster(&[]), Backend::PassThrough);
        // Several URLs are a cluster's seeds, wherever a URL is accepted.
        assert_eq!(
            cluster(&[("REDIS_URL", "redis://127.0.0.1:1,redis://127.0.0.1:2")]),
            Backend::RedisCluster
        );
        assert_eq!(
            Cache::redis("redis://127.0.0.1:1,redis://127.0.0.1:2")
                .expect("seeds")
                .backend(),
            Backend::RedisCluster
        );
        assert_eq!(
            Cache::redis("redis://127.0.0.1:1").expect("url").backend(),
            Backend::Redis
        );
    }

    #[tokio::test]
    async fn a_broken_cluster_setting_is_an_unhealthy_pass_through_without_the_password() {
        for (pairs, expected) in [
            (
                &[("CACHE_PROVIDER", "cluster")][..],
                "neither REDIS_CLUSTER_NODES",
            ),
            (
                &[("REDIS_CLUSTER_NODES", "redis://:pw987@h:notaport")][..],
                "invalid port",
            ),
            (
                &[
                    ("REDIS_CLUSTER_NODES", "h:notaport"),
                    ("REDIS_PASSWORD", "pw987"),
                ][..],
                "REDIS_CLUSTER_NODES is malformed",
            ),
        ] {
            let cache = Cache::from_vars(vars(pairs));
            assert_eq!(cache.backend(), Backend::PassThrough);
            let health = cache.health().await;
            assert!(!health.healthy);
            let err = health.error.expect("a reason");
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("pw987"), "{err}");
        }
    }

    #[tokio::test]
    async fn tls_and_passwords_from_the_environment() {
        let cache = Cache::from_vars(vars(&[
            ("REDIS_CLUSTER_NODES", "h1:6379,h2:6379"),
            ("REDIS_TLS_ENABLED", "true"),
            ("REDIS_PASSWORD", "envpw42"),
        ]));
        let shown = format!("{cache:?}");
        assert!(shown.contains("rediss://h1:6379"), "{shown}");
        assert!(!shown.contains("envpw42"), "{shown}");
    }

    #[tokio::test]
    async fn the_environment_selects_upstash_as_the_seeds_do() {
        let backend = |p: &[(&str, &str)]| Cache::from_vars(vars(p)).backend();
        let expected = if cfg!(feature = "upstash") {
            Backend::Upstash
        } else {
            Backend::PassThrough
        };
        // An https:// REDIS_URL with REDIS_PASSWORD as the token.
        assert_eq!(
            backend(&[
                ("REDIS_URL", "https://eu1-x.upstash.io"),
                ("REDIS_PASSWORD", "tok77")
            ]),
            expected
        );
        // https:// wins over CACHE_PROVIDER=redis, as in the seeds.
        assert_eq!(
            backend(&[
                ("REDIS_URL", "https://eu1-x.upstash.io"),
                ("REDIS_PASSWORD", "tok77"),
                ("CACHE_PROVIDER", "redis"),
            ]),
            expected
        );
        // CACHE_PROVIDER=upstash takes a plain http:// URL (a local REST server).
        assert_eq!(
            backend(&[
                ("REDIS_URL", "http://127.0.0.1:1"),
                ("REDIS_PASSWORD", "tok77"),
                ("CACHE_PROVIDER", "upstash"),
            ]),
            expected
        );
        // The Upstash SDK's own variables, when REDIS_URL is unset.
        assert_eq!(
            backend(&[
                ("UPSTASH_REDIS_REST_URL", "https://eu1-x.upstash.io"),
                ("UPSTASH_REDIS_REST_TOKEN", "tok77"),
            ]),
            expected
        );
        // REDIS_URL comes first; another provider ignores the SDK's variables.
        assert_eq!(
            backend(&[
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("UPSTASH_REDIS_REST_URL", "https://eu1-x.upstash.io"),
            ]),
            Backend::Redis
        );
        assert_eq!(
            backend(&[
                ("CACHE_PROVIDER", "memory"),
                ("UPSTASH_REDIS_REST_URL", "https://eu1-x.upstash.io"),
            ]),
            Backend::Memory
        );
        let cache = Cache::from_vars(vars(&[
            ("REDIS_URL", "http://127.0.0.1:1"),
            ("CACHE_PROVIDER", "upstash"),
            ("REDIS_PASSWORD", "tok77"),
        ]));
        let shown = format!("{cache:?}");
        assert!(!shown.contains("tok77"), "{shown}");
        let health = cache.health().await;
        assert!(!format!("{health:?}").contains("tok77"), "{health:?}");
    }
}
