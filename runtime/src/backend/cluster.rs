//! The Redis Cluster backend, on cacheward's own cluster routing ([`Router`]).
//!
//! The router keeps the slot map, one connection per node, follows `MOVED`/`ASK`
//! redirections, retries `TRYAGAIN`/`CLUSTERDOWN` and refreshes the map in the
//! background when the topology changes (a failover, a resharding). (redis-rs' own
//! async cluster connection is not used: with tokio 1.54+ it can stall for good
//! during a slot refresh; `docs/operations.md` has the reproduction.) This module
//! adds what a cache needs on top of it:
//!
//! - **Batches split by slot.** `MGET`, pipelined `SET … PX` and `DEL` over keys in
//!   several slots would fail with `CROSSSLOT`; they are split into one request per
//!   slot, run concurrently, and reassembled in the caller's order.
//! - **Scripts stay in one slot.** Every key of a Lua script must hash to the same
//!   slot (the rate limiter's keys share a hash tag); a script whose keys do not is
//!   refused without being sent. A script runs at most once: it is retried only after
//!   a reply that says it did not run (`MOVED`, `ASK`, `TRYAGAIN`, `NOSCRIPT`, a
//!   refused connection).
//! - **Scans visit every primary.** [`ClusterStore::purge_prefix`] runs `SCAN` on each
//!   primary in turn and `UNLINK`s what it finds, slot group by slot group. Never
//!   `KEYS`.
//!
//! There is no deadline or breaker here: the cache's shared layer wraps every call,
//! exactly as for a single Redis.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::FromRedisValue as _;
use tokio::sync::Notify;

use super::Backend;
use super::remote::{PurgeNode, RemoteStore, SCAN_COUNT, ScriptArg};
use super::router::{NodeAddr, NodeSettings, Router};
use super::settings::{ConnectionSettings, runtime_for_connections};
use super::slot::key_slot;
use crate::error::{CacheError, ConfigError};
use crate::util::join_all;

/// After a failed connection attempt, calls fail at once with its error for this
/// long; the next call after it starts a new attempt. (While Redis is down the
/// breaker also paces calls: one probe per cool-down.)
const RETRY_CONNECT_AFTER: Duration = Duration::from_millis(250);

pub(crate) struct ClusterStore {
    /// The seeds, parsed, with the settings' credentials filled in.
    seed_infos: Arc<[redis::ConnectionInfo]>,
    /// How to connect to any node.
    node_settings: Arc<NodeSettings>,
    /// The connection state, shared with the task making a connection.
    shared: Arc<Shared>,
    /// The seed URLs with their passwords replaced by `***`.
    seeds: Vec<String>,
    /// The same, comma-separated, for logs and health reports.
    endpoint: String,
    password: Option<String>,
}

struct Shared {
    /// Started on first use, inside the caller's runtime (start-up never waits for
    /// the cluster); dropped by `reset_connection`.
    conn: Mutex<ConnState>,
    /// Woken when a connection attempt ends.
    connected: Notify,
    /// What to scrub from the connection errors the task logs.
    secrets: Vec<String>,
}

enum ConnState {
    /// Not started, or dropped by `reset_connection`.
    Empty,
    /// An attempt is running (on the runtime that this token's task lives in).
    Connecting(Arc<()>),
    Ready(LiveConnection),
    /// The last attempt failed: why, and when.
    Failed {
        error: CacheError,
        at: Instant,
    },
}

/// A connected router and the token that says whether the runtime driving its
/// connections is still running (its strong count drops to 1 when the runtime shuts
/// down).
struct LiveConnection {
    router: Arc<Router>,
    runtime_alive: Arc<()>,
}

impl LiveConnection {
    fn runtime_is_alive(&self) -> bool {
        Arc::strong_count(&self.runtime_alive) > 1
    }
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStore")
            .field("seeds", &self.seeds)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "connection",
                &match &*self.shared.conn.lock().unwrap_or_else(|e| e.into_inner()) {
                    ConnState::Empty => "not started",
                    ConnState::Connecting(_) => "connecting",
                    ConnState::Ready(_) => "ready",
                    ConnState::Failed { .. } => "failed",
                },
            )
            .finish()
    }
}

impl ClusterStore {
    /// A store on the cluster reachable through `seeds` (URLs; one live node is
    /// enough, the rest of the topology is discovered). The settings' password and
    /// user name are used when the URLs carry none. Fails only for an empty or
    /// malformed seed list; nothing is contacted here.
    pub(crate) fn new(
        seeds: &[String],
        settings: &ConnectionSettings,
    ) -> Result<Self, ConfigError> {
        if seeds.is_empty() {
            return Err(ConfigError::InvalidUrl(
                "a Redis Cluster needs at least one seed node".to_owned(),
            ));
        }
        let endpoints = seeds
            .iter()
            .map(|seed| settings.resolve(seed))
            .collect::<Result<Vec<_>, _>>()?;
        let shown: Vec<String> = endpoints.iter().map(|e| e.display.clone()).collect();
        let password = endpoints[0].password.clone();
        let tls = seeds[0].trim_start().starts_with("rediss://");
        if let Some(bad) = endpoints.iter().find(|e| {
            !matches!(
                e.info.addr(),
                redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::TcpTls { .. }
            )
        }) {
            return Err(ConfigError::InvalidUrl(format!(
                "a Redis Cluster node is reached over TCP (in {})",
                bad.display
            )));
        }
        let infos: Arc<[redis::ConnectionInfo]> = endpoints
            .into_iter()
            .map(|e| e.info)
            .collect::<Vec<_>>()
            .into();
        #[cfg(feature = "tls")]
        let certs = if tls {
            settings.tls_certificates()
        } else {
            None
        };
        #[cfg(not(feature = "tls"))]
        let _ = tls;
        let node_settings = Arc::new(NodeSettings {
            template: infos[0].clone(),
            connect_timeout: settings.connect_timeout,
            #[cfg(feature = "tls")]
            certs,
        });
        let secrets = password.iter().cloned().collect();
        Ok(ClusterStore {
            seed_infos: infos,
            node_settings,
            shared: Arc::new(Shared {
                conn: Mutex::new(ConnState::Empty),
                connected: Notify::new(),
                secrets,
            }),
            endpoint: shown.join(","),
            seeds: shown,
            password,
        })
    }

    /// The password in use.
    #[cfg(test)]
    pub(crate) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The router. The first call starts connecting in a background task (the
    /// initial slot map is fetched from the seeds) and waits for it, within the
    /// caller's deadline. A failed attempt is remembered: calls fail at once with its
    /// error (an authentication failure says so, instead of timing out) until
    /// [`RETRY_CONNECT_AFTER`] has passed, when the next call starts a new attempt.
    /// Once connected, the router reconnects to nodes and follows topology changes
    /// by itself.
    ///
    /// The router's connections are driven by tasks of the runtime it was made in;
    /// when that runtime is gone (a cache kept in a `static` and used from successive
    /// runtimes), a new one is made in the caller's.
    async fn conn(&self) -> Result<Arc<Router>, CacheError> {
        loop {
            let notified = self.shared.connected.notified();
            tokio::pin!(notified);
            {
                let mut state = self.shared.conn.lock().unwrap_or_else(|e| e.into_inner());
                match &*state {
                    ConnState::Ready(live) if live.runtime_is_alive() => {
                        return Ok(Arc::clone(&live.router));
                    }
                    ConnState::Connecting(alive) if Arc::strong_count(alive) > 1 => {
                        notified.as_mut().enable();
                    }
                    ConnState::Failed { error, at } if at.elapsed() < RETRY_CONNECT_AFTER => {
                        return Err(error.clone());
                    }
                    _ => {
                        *state = self.start_connecting()?;
                        notified.as_mut().enable();
                    }
                }
            }
            notified.await;
        }
    }

    /// Spawns one connection attempt on the current runtime; its outcome is stored
    /// in `self.conn` by the task, which then wakes the waiting callers.
    fn start_connecting(&self) -> Result<ConnState, CacheError> {
        let runtime = runtime_for_connections()?;
        let seeds = Arc::clone(&self.seed_infos);
        let settings = Arc::clone(&self.node_settings);
        let shared = Arc::clone(&self.shared);
        // A task that lives exactly as long as the runtime holds the second count.
        let runtime_alive = Arc::new(());
        let token = Arc::clone(&runtime_alive);
        runtime.spawn(async move {
            let _token = token;
            std::future::pending::<()>().await;
        });
        let alive = Arc::clone(&runtime_alive);
        runtime.spawn(async move {
            let state = match Router::connect(seeds, settings).await {
                Ok(router) => ConnState::Ready(LiveConnection {
                    router,
                    runtime_alive: alive,
                }),
                Err(e) => ConnState::Failed {
                    error: CacheError::from(e),
                    at: Instant::now(),
                },
            };
            if let ConnState::Failed { error, .. } = &state {
                tracing::debug!(error = %error.clone().scrubbed(&shared.secrets), "cacheward: connecting to the Redis Cluster failed");
            }
            *shared.conn.lock().unwrap_or_else(|e| e.into_inner()) = state;
            shared.connected.notify_waiters();
        });
        Ok(ConnState::Connecting(runtime_alive))
    }

    /// Starts connecting now when called inside a Tokio runtime (nothing waits for
    /// it), so that the first operations do not spend their deadline on the initial
    /// slot map. Outside a runtime the connection starts with the first operation.
    pub(crate) fn connect_in_background(&self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            let mut state = self.shared.conn.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(*state, ConnState::Empty)
                && let Ok(next) = self.start_connecting()
            {
                *state = next;
            }
        }
    }

    /// Runs one idempotent keyed command on its slot's primary.
    async fn one<T: redis::FromRedisValue>(
        &self,
        slot: u16,
        cmd: redis::Cmd,
    ) -> Result<T, CacheError> {
        let router = self.conn().await?;
        let value = router
            .on_slot(slot, std::slice::from_ref(&cmd), true)
            .await?
            .pop()
            .unwrap_or(redis::Value::Nil);
        Ok(T::from_redis_value(value).map_err(redis::RedisError::from)?)
    }

    async fn unlink(&self, keys: &[Vec<u8>]) -> Result<u64, CacheError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut groups: BTreeMap<u16, Vec<&[u8]>> = BTreeMap::new();
        for k in keys {
            groups.entry(key_slot(k)).or_default().push(k);
        }
        let router = self.conn().await?;
        let unlinks = groups.into_iter().map(|(slot, group)| {
            let router = Arc::clone(&router);
            let mut cmd = redis::cmd("UNLINK");
            cmd.arg(group);
            async move { router.on_slot(slot, &[cmd], true).await }
        });
        let mut removed = 0;
        for r in join_all(unlinks.collect()).await {
            let value = r?.pop().unwrap_or(redis::Value::Nil);
            removed += u64::from_redis_value(value).map_err(redis::RedisError::from)?;
        }
        Ok(removed)
    }
}

impl RemoteStore for ClusterStore {
    fn backend(&self) -> Backend {
        Backend::RedisCluster
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        self.one(key_slot(key.as_bytes()), cmd).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let groups = group_by_slot(keys.iter().copied());
        let router = self.conn().await?;
        let reads = groups.iter().map(|(&slot, indices)| {
            let router = Arc::clone(&router);
            let mut cmd = redis::cmd("MGET");
            for &i in indices {
                cmd.arg(keys[i]);
            }
            async move { router.on_slot(slot, &[cmd], true).await }
        });
        let answers = join_all(reads.collect()).await;
        let mut out = vec![None; keys.len()];
        for (indices, answer) in groups.values().zip(answers) {
            let value = answer?.pop().unwrap_or(redis::Value::Nil);
            let values =
                Vec::<Option<Vec<u8>>>::from_redis_value(value).map_err(redis::RedisError::from)?;
            if values.len() != indices.len() {
                return Err(CacheError::Redis(format!(
                    "MGET answered {} values for {} keys",
                    values.len(),
                    indices.len()
                )));
            }
            for (&i, v) in indices.iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key)
            .arg(value)
            .arg("PX")
            .arg(super::ttl_millis(ttl));
        self.one::<redis::Value>(key_slot(key.as_bytes()), cmd)
            .await
            .map(drop)
    }

    async fn set_many(&self, entries: &[(&str, Vec<u8>)], ttl: Duration) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ms = super::ttl_millis(ttl);
        let groups = group_by_slot(entries.iter().map(|(k, _)| *k));
        let router = self.conn().await?;
        let writes = groups.iter().map(|(&slot, indices)| {
            let router = Arc::clone(&router);
            let cmds: Vec<redis::Cmd> = indices
                .iter()
                .map(|&i| {
                    let (k, v) = &entries[i];
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(*k).arg(v.as_slice()).arg("PX").arg(ms);
                    cmd
                })
                .collect();
            async move { router.on_slot(slot, &cmds, true).await.map(drop) }
        });
        first_error(join_all(writes.collect()).await)
    }

    async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let groups = group_by_slot(keys.iter().copied());
        let router = self.conn().await?;
        let deletes = groups.iter().map(|(&slot, indices)| {
            let router = Arc::clone(&router);
            let mut cmd = redis::cmd("DEL");
            for &i in indices {
                cmd.arg(keys[i]);
            }
            async move { router.on_slot(slot, &[cmd], true).await.map(drop) }
        });
        first_error(join_all(deletes.collect()).await)
    }

    /// `PING` on every primary: healthy only when all of them answer.
    async fn ping(&self) -> Result<(), CacheError> {
        let router = self.conn().await?;
        let primaries = router.primaries();
        if primaries.is_empty() {
            router.refresh_soon();
            return Err(CacheError::Unavailable(
                "no Redis Cluster primary serves slots (yet)".to_owned(),
            ));
        }
        let pings = primaries.iter().map(|addr| {
            let conn = router.node(addr);
            async move {
                let mut conn = conn?;
                redis::cmd("PING")
                    .query_async::<redis::Value>(&mut conn)
                    .await
                    .map(drop)
            }
        });
        let results = join_all(pings.collect()).await;
        if results.iter().any(|r| {
            r.as_ref()
                .is_err_and(|e| e.is_io_error() || e.is_connection_dropped())
        }) {
            router.refresh_soon();
        }
        first_error(results)
    }

    /// Runs a Lua script. All `keys` must hash to one slot (give them a common hash
    /// tag); otherwise the script is refused here rather than failing on the server
    /// with `CROSSSLOT`.
    async fn eval(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[ScriptArg<'_>],
    ) -> Result<redis::Value, CacheError> {
        let slot = keys.first().map_or(0, |k| key_slot(k.as_bytes()));
        if keys.iter().any(|k| key_slot(k.as_bytes()) != slot) {
            tracing::error!(
                keys = keys.len(),
                "cacheward: a Lua script's keys span several Redis Cluster slots - refused; give them a common hash tag"
            );
            return Err(CacheError::Redis(
                "script keys span several cluster slots (give them a common hash tag)".to_owned(),
            ));
        }
        let router = self.conn().await?;
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        // Not idempotent: a lost connection is not retried (the script may have run).
        let first = router
            .on_slot(slot, std::slice::from_ref(&evalsha), false)
            .await;
        let values = match first {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                // The node has not seen the script (new, restarted or promoted): load it
                // on every primary (an `ASK` may point at another), then run it.
                let loads = router.primaries().into_iter().map(|addr| {
                    let conn = router.node(&addr);
                    async move { script.load_async(&mut conn?).await.map(drop) }
                });
                first_error(join_all(loads.collect()).await)?;
                router.on_slot(slot, &[evalsha], false).await?
            }
            other => other?,
        };
        Ok(values.into_iter().next().unwrap_or(redis::Value::Nil))
    }

    /// The live primaries that serve slots, from `CLUSTER NODES`.
    async fn purge_nodes(&self) -> Result<Vec<PurgeNode>, CacheError> {
        let router = self.conn().await?;
        let Some(addr) = router.primaries().into_iter().next() else {
            router.refresh_soon();
            return Err(CacheError::Unavailable(
                "no Redis Cluster primary serves slots (yet)".to_owned(),
            ));
        };
        let mut conn = router.node(&addr)?;
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await?;
        Ok(primaries(&nodes)
            .into_iter()
            .map(|(host, port)| PurgeNode::Primary { host, port })
            .collect())
    }

    /// `SCAN` on one primary, then `UNLINK` per slot group of what it found. Best
    /// effort while the topology changes: a slot that moves during a purge may be
    /// visited twice or not at all.
    async fn purge_step(
        &self,
        node: &PurgeNode,
        pattern: &str,
        cursor: u64,
    ) -> Result<(u64, u64), CacheError> {
        let PurgeNode::Primary { host, port } = node else {
            return Ok((0, 0));
        };
        let router = self.conn().await?;
        let mut conn = router.node(&NodeAddr {
            host: host.clone(),
            port: *port,
        })?;
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let (next, keys): (u64, Vec<Vec<u8>>) = scan.query_async(&mut conn).await?;
        Ok((next, self.unlink(&keys).await?))
    }

    fn reset_connection(&self) {
        let mut state = self.shared.conn.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(
            std::mem::replace(&mut *state, ConnState::Empty),
            ConnState::Ready(_)
        ) {
            tracing::debug!(seeds = ?self.seeds, "cacheward: dropping the Redis Cluster connection; the next operation reconnects");
        }
    }
}

fn first_error<T>(results: Vec<redis::RedisResult<T>>) -> Result<(), CacheError> {
    match results.into_iter().find_map(Result::err) {
        None => Ok(()),
        Some(e) => Err(CacheError::from(e)),
    }
}

/// The live primaries that serve slots, from `CLUSTER NODES` output.
fn primaries(cluster_nodes: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for line in cluster_nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 {
            continue; // no slots
        }
        let flags = fields[2];
        if !flags.split(',').any(|f| f == "master")
            || flags.split(',').any(|f| f == "fail" || f == "fail?")
        {
            continue;
        }
        let addr = fields[1].split(['@', ',']).next().unwrap_or("");
        if let Some((host, port)) = addr.rsplit_once(':')
            && let Ok(port) = port.parse()
        {
            out.push((host.trim_matches(['[', ']']).to_owned(), port));
        }
    }
    out
}

/// Key indices grouped by slot, each group in the caller's order.
fn group_by_slot<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeMap<u16, Vec<usize>> {
    let mut groups: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.enumerate() {
        groups.entry(key_slot(k.as_bytes())).or_default().push(i);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_the_callers_order_within_a_slot() {
        let keys = ["a{t}1", "b", "c{t}2", "d{t}3"];
        let groups = group_by_slot(keys.iter().copied());
        let tagged = groups[&key_slot(b"t")].clone();
        assert_eq!(tagged, vec![0, 2, 3]);
        assert_eq!(groups.values().map(Vec::len).sum::<usize>(), 4);
    }

    #[test]
    fn primaries_are_read_from_cluster_nodes() {
        let text = "\
a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922
c 127.0.0.1:7002@17002 master,fail - 0 0 3 connected
d 127.0.0.1:7003@17003 slave a 0 0 1 connected
e 127.0.0.1:7004@17004 master - 0 0 7 connected 10923-16383
";
        assert_eq!(
            primaries(text),
            vec![
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7004)
            ]
        );
    }

    #[test]
    fn debug_output_has_no_password() {
        let options = ConnectionSettings {
            password: Some("s3cret".to_owned()),
            ..ConnectionSettings::default()
        };
        let store = ClusterStore::new(&["redis://:hunter2@127.0.0.1:7000".to_owned()], &options)
            .expect("valid seeds");
        assert_eq!(store.password(), Some("hunter2"), "the URL's password wins");
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        let store = ClusterStore::new(&["redis://127.0.0.1:7000".to_owned()], &options)
            .expect("valid seeds");
        assert_eq!(store.password(), Some("s3cret"), "REDIS_PASSWORD fills in");
        let err = ClusterStore::new(&["redis://:hunter2@127.0.0.1:port".to_owned()], &options)
            .expect_err("bad port");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("invalid port"), "{err}");
    }

    #[tokio::test]
    async fn scripts_whose_keys_span_slots_are_refused_before_sending() {
        let store = ClusterStore::new(
            &["redis://127.0.0.1:1".to_owned()],
            &ConnectionSettings::default(),
        )
        .expect("seeds");
        let script = redis::Script::new("return 1");
        let err = store
            .eval(&script, &["a{t1}", "b{t2}"], &[])
            .await
            .expect_err("two slots");
        assert!(err.to_string().contains("slots"), "{err}");
    }
}
