//! The Redis Cluster backend, on redis-rs' async cluster client.
//!
//! The client follows `MOVED`/`ASK` redirections, refreshes its slot map when the
//! topology changes (a failover, a resharding) and reconnects to nodes on its own.
//! This module adds what a cache needs on top of it:
//!
//! - **Batches split by slot.** `MGET`, pipelined `SET … PX` and `DEL` over keys in
//!   several slots would fail with `CROSSSLOT`; they are split into one command per
//!   slot, run concurrently on the multiplexed connection, and reassembled in the
//!   caller's order.
//! - **Scripts stay in one slot.** Every key of a Lua script must hash to the same
//!   slot (the rate limiter's keys share a hash tag); a script whose keys do not is
//!   refused without being sent.
//! - **Scans visit every primary.** [`ClusterStore::purge_prefix`] runs `SCAN` on each
//!   primary in turn and `UNLINK`s what it finds, slot group by slot group. Never
//!   `KEYS`.
//!
//! There is no deadline or breaker here: the cache's shared layer wraps every call,
//! exactly as for a single Redis.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::Backend;
use super::remote::{PurgeNode, RemoteStore, SCAN_COUNT, ScriptArg};
use super::settings::{ConnectionSettings, runtime_for_connections};
use super::slot::key_slot;
use crate::error::{CacheError, ConfigError};
use crate::redact::redact_urls;
use crate::util::join_all;

/// How long the cluster client waits for one node to answer one request. The
/// cache's per-operation deadline is much shorter and applies on top (the guard);
/// this bound only keeps requests that nobody waits for any more from piling up.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Redirections (`MOVED`, `ASK`) and retryable errors (`TRYAGAIN`, a node gone) are
/// retried this many times by the client, with a short backoff, so a redirection is
/// followed within the cache's deadline.
const RETRIES: u32 = 10;

/// After a failed connection attempt, calls fail at once with its error for this
/// long; the next call after it starts a new attempt. (While Redis is down the
/// breaker also paces calls: one probe per cool-down.)
const RETRY_CONNECT_AFTER: Duration = Duration::from_millis(250);

pub(crate) struct ClusterStore {
    client: ClusterClient,
    /// The connection state, shared with the task making a connection.
    shared: Arc<Shared>,
    connect_timeout: Duration,
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

/// A cluster connection and the token that says whether the runtime driving it is
/// still running (its strong count drops to 1 when the runtime shuts down).
struct LiveConnection {
    conn: ClusterConnection,
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
        let infos = endpoints.into_iter().map(|e| e.info).collect::<Vec<_>>();
        let builder = ClusterClient::builder(infos)
            .connection_timeout(settings.connect_timeout)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(RETRIES)
            .min_retry_wait(5)
            .max_retry_wait(250)
            .retry_wait_formula(10, 2);
        #[cfg(feature = "tls")]
        let builder = match settings.tls_certificates() {
            Some(certs) if tls => builder.certs(certs),
            _ => builder,
        };
        #[cfg(not(feature = "tls"))]
        let _ = tls;
        let client = builder.build().map_err(|e| {
            let msg = crate::redact::scrub(
                &redact_urls(&e.to_string()),
                &password.iter().cloned().collect::<Vec<_>>(),
            );
            ConfigError::InvalidUrl(format!("{msg} (in {})", shown.join(",")))
        })?;
        let secrets = password.iter().cloned().collect();
        Ok(ClusterStore {
            client,
            shared: Arc::new(Shared {
                conn: Mutex::new(ConnState::Empty),
                connected: Notify::new(),
                secrets,
            }),
            connect_timeout: settings.connect_timeout,
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

    /// The connection. The first call starts connecting in a background task (the
    /// initial slot map is fetched from the seeds) and waits for it, within the
    /// caller's deadline. A failed attempt is remembered: calls fail at once with its
    /// error (an authentication failure says so, instead of timing out) until
    /// [`RETRY_CONNECT_AFTER`] has passed, when the next call starts a new attempt.
    /// Once connected, the client reconnects to nodes and follows topology changes
    /// by itself.
    ///
    /// A connection is driven by a task of the runtime it was made in; when that
    /// runtime is gone (a cache kept in a `static` and used from successive runtimes),
    /// a new one is made in the caller's.
    async fn conn(&self) -> Result<ClusterConnection, CacheError> {
        loop {
            let notified = self.shared.connected.notified();
            tokio::pin!(notified);
            {
                let mut state = self.shared.conn.lock().unwrap_or_else(|e| e.into_inner());
                match &*state {
                    ConnState::Ready(live) if live.runtime_is_alive() => {
                        return Ok(live.conn.clone());
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
        let config = ClusterConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let client = self.client.clone();
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
            let outcome = client.get_async_connection_with_config(config).await;
            let state = match outcome {
                Ok(conn) => ConnState::Ready(LiveConnection {
                    conn,
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

    async fn run<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        fut.await.map_err(CacheError::from)
    }

    async fn unlink(&self, keys: &[Vec<u8>]) -> Result<u64, CacheError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut groups: BTreeMap<u16, Vec<&[u8]>> = BTreeMap::new();
        for k in keys {
            groups.entry(key_slot(k)).or_default().push(k);
        }
        let conn = self.conn().await?;
        let unlinks = groups.into_values().map(|group| {
            let mut c = conn.clone();
            let mut cmd = redis::cmd("UNLINK");
            cmd.arg(group);
            async move { one::<u64>(&mut c, cmd).await }
        });
        let mut removed = 0;
        for r in join_all(unlinks.collect()).await {
            removed += r.map_err(CacheError::from)?;
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
        let mut c = self.conn().await?;
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        self.run(one(&mut c, cmd)).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let groups = group_by_slot(keys.iter().copied());
        let conn = self.conn().await?;
        let reads = groups.values().map(|indices| {
            let mut c = conn.clone();
            let mut cmd = redis::cmd("MGET");
            for &i in indices {
                cmd.arg(keys[i]);
            }
            async move { one::<Vec<Option<Vec<u8>>>>(&mut c, cmd).await }
        });
        let answers = join_all(reads.collect()).await;
        let mut out = vec![None; keys.len()];
        for (indices, answer) in groups.values().zip(answers) {
            let values = answer.map_err(CacheError::from)?;
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
        let mut c = self.conn().await?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key)
            .arg(value)
            .arg("PX")
            .arg(super::ttl_millis(ttl));
        self.run(one::<()>(&mut c, cmd)).await
    }

    async fn set_many(&self, entries: &[(&str, Vec<u8>)], ttl: Duration) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ms = super::ttl_millis(ttl);
        let groups = group_by_slot(entries.iter().map(|(k, _)| *k));
        let conn = self.conn().await?;
        let writes = groups.values().map(|indices| {
            let mut c = conn.clone();
            let cmds = indices
                .iter()
                .map(|&i| {
                    let (k, v) = &entries[i];
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(*k).arg(v.as_slice()).arg("PX").arg(ms);
                    cmd
                })
                .collect();
            async move { group(&mut c, cmds).await.map(drop) }
        });
        first_error(join_all(writes.collect()).await)
    }

    async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let groups = group_by_slot(keys.iter().copied());
        let conn = self.conn().await?;
        let deletes = groups.values().map(|indices| {
            let mut c = conn.clone();
            let mut cmd = redis::cmd("DEL");
            for &i in indices {
                cmd.arg(keys[i]);
            }
            async move { one::<()>(&mut c, cmd).await }
        });
        first_error(join_all(deletes.collect()).await)
    }

    /// `PING` on every primary: healthy only when all of them answer.
    async fn ping(&self) -> Result<(), CacheError> {
        let mut c = self.conn().await?;
        self.run(redis::cmd("PING").query_async::<redis::Value>(&mut c))
            .await
            .map(drop)
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
        if let Some((first, rest)) = keys.split_first() {
            let slot = key_slot(first.as_bytes());
            if rest.iter().any(|k| key_slot(k.as_bytes()) != slot) {
                tracing::error!(
                    keys = keys.len(),
                    "cacheward: a Lua script's keys span several Redis Cluster slots - refused; give them a common hash tag"
                );
                return Err(CacheError::Redis(
                    "script keys span several cluster slots (give them a common hash tag)"
                        .to_owned(),
                ));
            }
        }
        let mut c = self.conn().await?;
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        let mut first = inv.invoke_async::<redis::Value>(&mut c).await;
        if matches!(&first, Err(e) if is_moved(e)) {
            // The client ran out of retries following redirections (its own `ASK`
            // handling can ping-pong between the two nodes of a migrating slot under
            // load). A `MOVED` reply means the script did not run, so one more attempt,
            // on the slot map the client has refreshed meanwhile, cannot count twice.
            first = inv.invoke_async::<redis::Value>(&mut c).await;
        }
        let result = match first {
            Err(e) if is_ask(&e) => eval_asking(&mut c, &e, script, keys, args).await,
            other => other,
        };
        result.map_err(CacheError::from)
    }

    /// The live primaries that serve slots, from `CLUSTER NODES`.
    async fn purge_nodes(&self) -> Result<Vec<PurgeNode>, CacheError> {
        let mut c = self.conn().await?;
        let nodes: String = self
            .run(redis::cmd("CLUSTER").arg("NODES").query_async(&mut c))
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
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.clone(),
            port: *port,
        });
        let mut c = self.conn().await?;
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let reply = self.run(c.route_command(scan, route)).await?;
        let (next, keys): (u64, Vec<Vec<u8>>) =
            redis::from_redis_value(reply).map_err(|e| CacheError::Redis(e.to_string()))?;
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

fn first_error(results: Vec<redis::RedisResult<()>>) -> Result<(), CacheError> {
    match results.into_iter().find_map(Result::err) {
        None => Ok(()),
        Some(e) => Err(CacheError::from(e)),
    }
}

/// Whether `err` is an `ASK` redirection (a slot being migrated).
fn is_ask(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask)
}

/// Whether `err` is a `MOVED` redirection (the slot is served by another node).
fn is_moved(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved)
}

/// The node an `ASK` points at, as a route.
fn ask_route(err: &redis::RedisError) -> Option<SingleNodeRoutingInfo> {
    let (addr, _slot) = err.redirect_node()?;
    let (host, port) = addr.rsplit_once(':')?;
    Some(SingleNodeRoutingInfo::ByAddress {
        host: host.trim_matches(['[', ']']).to_owned(),
        port: port.parse().ok()?,
    })
}

/// Runs one keyed command. An `ASK` (the key's slot is being migrated and the key
/// has already moved) is followed by sending `ASKING` and the command *as one
/// pipeline* to the importing node. (The client's own `ASK` handling sends them as
/// two requests on a multiplexed connection, where another request can slip in
/// between and take the one-shot `ASKING` flag: under load most redirected
/// requests then fail.)
async fn one<T: redis::FromRedisValue>(
    conn: &mut ClusterConnection,
    cmd: redis::Cmd,
) -> redis::RedisResult<T> {
    let value = match cmd.query_async::<redis::Value>(conn).await {
        Err(e) if is_ask(&e) => asking(conn, &e, vec![cmd])
            .await?
            .pop()
            .unwrap_or(redis::Value::Nil),
        other => other?,
    };
    Ok(T::from_redis_value(value)?)
}

/// Runs several keyed commands of one slot as a pipeline (one command alone is
/// sent as is), following an `ASK` like [`one`]. Returns one value per command.
async fn group(
    conn: &mut ClusterConnection,
    cmds: Vec<redis::Cmd>,
) -> redis::RedisResult<Vec<redis::Value>> {
    if cmds.len() == 1 {
        let cmd = cmds.into_iter().next().expect("one command");
        return Ok(vec![one::<redis::Value>(conn, cmd).await?]);
    }
    let mut pipe = redis::pipe();
    for cmd in &cmds {
        pipe.add_command(cmd.clone());
    }
    match pipe.query_async::<Vec<redis::Value>>(conn).await {
        Err(e) if is_ask(&e) => asking(conn, &e, cmds).await,
        other => other,
    }
}

/// Sends `ASKING` + command pairs, as one pipeline, to the node named by `ask`.
async fn asking(
    conn: &mut ClusterConnection,
    ask: &redis::RedisError,
    cmds: Vec<redis::Cmd>,
) -> redis::RedisResult<Vec<redis::Value>> {
    let Some(route) = ask_route(ask) else {
        return Err(ask.clone());
    };
    let mut pipe = redis::pipe();
    let count = cmds.len();
    for cmd in cmds {
        pipe.cmd("ASKING").ignore();
        pipe.add_command(cmd);
    }
    let values = conn.route_pipeline(pipe, 0, count * 2, route).await?;
    values
        .into_iter()
        .skip(1)
        .step_by(2)
        .map(redis::Value::extract_error)
        .collect()
}

/// Follows an `ASK` for a script: `ASKING` + `EVALSHA` as one pipeline to the
/// importing node, loading the script everywhere first if that node lacks it.
async fn eval_asking(
    conn: &mut ClusterConnection,
    ask: &redis::RedisError,
    script: &redis::Script,
    keys: &[&str],
    args: &[ScriptArg<'_>],
) -> redis::RedisResult<redis::Value> {
    let evalsha = || {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        cmd
    };
    match asking(conn, ask, vec![evalsha()]).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.load_async(conn).await?;
            let mut values = asking(conn, ask, vec![evalsha()]).await?;
            Ok(values.pop().unwrap_or(redis::Value::Nil))
        }
        other => Ok(other?.pop().unwrap_or(redis::Value::Nil)),
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
