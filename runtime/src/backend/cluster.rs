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
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::slot::key_slot;
use crate::error::{CacheError, ConfigError};

/// How long the cluster client waits for one TCP/TLS connection to a node. The
/// cache's per-operation deadline is shorter and applies on top; this bound only
/// keeps background (re)connections from hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the cluster client waits for one node to answer one request.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Redirections (`MOVED`, `ASK`) and retryable errors (`TRYAGAIN`, a node gone) are
/// retried this many times by the client, with a short backoff, so a redirection is
/// followed within the cache's deadline.
const RETRIES: u32 = 10;

/// How many keys one `SCAN` step asks for, and the most one `UNLINK` removes.
const SCAN_COUNT: usize = 500;

pub(crate) struct ClusterStore {
    client: ClusterClient,
    /// Created on first use, inside the caller's runtime (start-up never waits for
    /// the cluster); dropped by `reset_connection`.
    conn: Mutex<Option<ClusterConnection>>,
    /// `host:port` of each seed node, for `Debug` (no credentials).
    seeds: Vec<String>,
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStore")
            .field("seeds", &self.seeds)
            .finish_non_exhaustive()
    }
}

/// Turns one entry of a seed list into a URL: `host:port` becomes
/// `redis://host:port` (or `rediss://` when `tls`); a full URL is kept as is.
pub(crate) fn seed_url(entry: &str, tls: bool) -> String {
    let entry = entry.trim();
    if entry.contains("://") {
        entry.to_owned()
    } else if tls {
        format!("rediss://{entry}")
    } else {
        format!("redis://{entry}")
    }
}

/// Splits a comma-separated node list (`REDIS_CLUSTER_NODES`) into seed URLs.
pub(crate) fn parse_node_list(list: &str, tls: bool) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| seed_url(s, tls))
        .collect()
}

impl ClusterStore {
    /// A store on the cluster reachable through `seeds` (URLs; one live node is
    /// enough, the rest of the topology is discovered). `password` and `username`
    /// override those in the URLs. Fails only for an empty or malformed seed list;
    /// nothing is contacted here.
    pub(crate) fn new(
        seeds: &[String],
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Self, ConfigError> {
        if seeds.is_empty() {
            return Err(ConfigError::InvalidUrl(
                "a Redis Cluster needs at least one seed node".to_owned(),
            ));
        }
        let mut infos = Vec::with_capacity(seeds.len());
        let mut shown = Vec::with_capacity(seeds.len());
        for seed in seeds {
            let info = redis::IntoConnectionInfo::into_connection_info(seed.as_str())
                .map_err(|e| ConfigError::InvalidUrl(redact(&e.to_string(), password)))?;
            shown.push(info.addr().to_string());
            infos.push(info);
        }
        let mut builder = ClusterClient::builder(infos)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(RETRIES)
            .min_retry_wait(5)
            .max_retry_wait(250)
            .retry_wait_formula(10, 2);
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            builder = builder.password(password);
        }
        if let Some(username) = username.filter(|u| !u.is_empty()) {
            builder = builder.username(username);
        }
        let client = builder
            .build()
            .map_err(|e| ConfigError::InvalidUrl(redact(&e.to_string(), password)))?;
        Ok(ClusterStore {
            client,
            conn: Mutex::new(None),
            seeds: shown,
        })
    }

    fn conn(&self) -> ClusterConnection {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.as_ref() {
            return c.clone();
        }
        // Connects in the background: the first commands wait for the initial slot
        // map (bounded by the caller's deadline), later ones are routed directly.
        let config = ClusterConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let conn = self.client.get_pending_async_connection_with_config(config);
        *slot = Some(conn.clone());
        conn
    }

    /// Starts connecting now when called inside a Tokio runtime (the client
    /// connects in a background task; nothing waits for it), so that the first
    /// operations do not spend their deadline on the initial slot map. Outside a
    /// runtime the connection starts with the first operation.
    pub(crate) fn connect_in_background(&self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(self.conn());
        }
    }

    /// Drops the connection so that the next operation starts a fresh one from the
    /// seed list. The client recovers from failovers, resharding and a cluster that
    /// was down at start-up by itself; this is for when it cannot be trusted to
    /// (refused credentials, a silent network partition).
    pub(crate) fn reset_connection(&self) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn run<T>(
        &self,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        fut.await.map_err(CacheError::from)
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut c = self.conn();
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        self.run(one(&mut c, cmd)).await
    }

    pub(crate) async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let groups = group_by_slot(keys.iter().copied());
        let conn = self.conn();
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

    pub(crate) async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let mut c = self.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(ttl_millis(ttl));
        self.run(one::<()>(&mut c, cmd)).await
    }

    pub(crate) async fn set_many(
        &self,
        entries: &[(&str, Vec<u8>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let ms = ttl_millis(ttl);
        let groups = group_by_slot(entries.iter().map(|(k, _)| *k));
        let conn = self.conn();
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
        self.first_error(join_all(writes.collect()).await)
    }

    pub(crate) async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let groups = group_by_slot(keys.iter().copied());
        let conn = self.conn();
        let deletes = groups.values().map(|indices| {
            let mut c = conn.clone();
            let mut cmd = redis::cmd("DEL");
            for &i in indices {
                cmd.arg(keys[i]);
            }
            async move { one::<()>(&mut c, cmd).await }
        });
        self.first_error(join_all(deletes.collect()).await)
    }

    fn first_error(&self, results: Vec<redis::RedisResult<()>>) -> Result<(), CacheError> {
        match results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(e) => Err(CacheError::from(e)),
        }
    }

    /// `PING` on every primary: healthy only when all of them answer.
    pub(crate) async fn ping(&self) -> Result<(), CacheError> {
        let mut c = self.conn();
        self.run(redis::cmd("PING").query_async::<redis::Value>(&mut c))
            .await
            .map(drop)
    }

    /// Runs a Lua script. All `keys` must hash to one slot (give them a common hash
    /// tag); otherwise the script is refused here rather than failing on the server
    /// with `CROSSSLOT`.
    pub(crate) async fn eval(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[i64],
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
        let mut c = self.conn();
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        let result = match inv.invoke_async::<redis::Value>(&mut c).await {
            Err(e) if is_ask(&e) => eval_asking(&mut c, &e, script, keys, args).await,
            other => other,
        };
        result.map_err(CacheError::from)
    }

    /// Deletes every key that starts with `prefix`: `SCAN … MATCH <prefix>*` on each
    /// primary in turn, `UNLINK` per slot group. Returns how many keys were removed.
    ///
    /// Best effort while the topology changes: a slot that moves during the scan may
    /// be visited twice or not at all. Not bounded by the operation deadline (a purge
    /// visits the whole keyspace); callers bound it if they need to.
    pub(crate) async fn purge_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        let mut c = self.conn();
        let nodes: String = self
            .run(redis::cmd("CLUSTER").arg("NODES").query_async(&mut c))
            .await?;
        let pattern = format!("{}*", escape_glob(prefix));
        let mut removed = 0u64;
        for (host, port) in primaries(&nodes) {
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port,
            });
            let mut cursor = String::from("0");
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(&cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT);
                let reply = self.run(c.route_command(scan, route.clone())).await?;
                let (next, keys): (String, Vec<Vec<u8>>) =
                    redis::from_redis_value(reply).map_err(|e| CacheError::Redis(e.to_string()))?;
                removed += self.unlink(&keys).await?;
                cursor = next;
                if cursor == "0" {
                    break;
                }
            }
        }
        Ok(removed)
    }

    async fn unlink(&self, keys: &[Vec<u8>]) -> Result<u64, CacheError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut groups: BTreeMap<u16, Vec<&[u8]>> = BTreeMap::new();
        for k in keys {
            groups.entry(key_slot(k)).or_default().push(k);
        }
        let conn = self.conn();
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

/// Whether `err` is an `ASK` redirection (a slot being migrated).
fn is_ask(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Ask)
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
    args: &[i64],
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

/// Escapes the glob characters of a `SCAN MATCH` pattern so that `prefix` matches
/// literally.
pub(crate) fn escape_glob(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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

fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Removes a password from an error message, in case a parser echoed the URL.
fn redact(message: &str, password: Option<&str>) -> String {
    match password.filter(|p| !p.is_empty()) {
        Some(p) => message.replace(p, "***"),
        None => message.to_owned(),
    }
}

/// Polls all futures concurrently on the current task and returns their outputs in
/// order. (A handful of futures per batch: one per slot group.)
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

impl crate::Cache {
    /// A cache on the Redis Cluster reachable through `nodes`: seed URLs
    /// (`redis://host:port`, `rediss://…`, credentials allowed) or bare `host:port`
    /// pairs. One reachable node is enough; the client discovers the rest.
    ///
    /// Returns `Err` only when the list is empty or an entry is malformed. Nothing is
    /// contacted here: a cluster that is down at start-up makes operations misses
    /// until it comes up. Batches are split by slot and scripts must keep their keys
    /// in one slot (see the operations guide on hash tags).
    pub fn redis_cluster<I, S>(nodes: I) -> Result<crate::Cache, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let seeds: Vec<String> = nodes
            .into_iter()
            .map(|n| seed_url(n.as_ref(), false))
            .collect();
        let store = ClusterStore::new(&seeds, None, None)?;
        store.connect_in_background();
        Ok(crate::Cache::from_store(super::Store::RedisCluster(store)))
    }

    /// Deletes every key that starts with `prefix` and returns how many were removed.
    ///
    /// Iterates the keyspace with `SCAN … MATCH` (on every primary of a cluster) and
    /// removes keys with `UNLINK`; never `KEYS`, so Redis keeps serving other clients
    /// meanwhile. Glob characters in `prefix` match literally. Failures are logged
    /// and counted and end the purge early; the count says how far it got. The
    /// in-memory and pass-through backends hold nothing to scan here and return 0.
    pub async fn purge_prefix(&self, prefix: &str) -> u64 {
        let result = match &self.inner.store {
            super::Store::RedisCluster(c) => c.purge_prefix(prefix).await,
            _ => Ok(0),
        };
        match result {
            Ok(n) => n,
            Err(err) => {
                self.inner.counters.record_error();
                tracing::warn!(error = %err, "cacheward: purge by prefix failed");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_become_seed_urls() {
        assert_eq!(
            parse_node_list(" redis1:6379, redis2:6379 ,,rediss://r3:7000", false),
            vec![
                "redis://redis1:6379",
                "redis://redis2:6379",
                "rediss://r3:7000"
            ]
        );
        assert_eq!(parse_node_list("r1:1", true), vec!["rediss://r1:1"]);
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(escape_glob("a*b?c[d]e\\f"), "a\\*b\\?c\\[d\\]e\\\\f");
        assert_eq!(escape_glob("copilot:{t1}:"), "copilot:{t1}:");
    }

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
        let store = ClusterStore::new(
            &["redis://:hunter2@127.0.0.1:7000".to_owned()],
            None,
            Some("s3cret"),
        )
        .expect("valid seeds");
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn scripts_whose_keys_span_slots_are_refused_before_sending() {
        let store =
            ClusterStore::new(&["redis://127.0.0.1:1".to_owned()], None, None).expect("seeds");
        let script = redis::Script::new("return 1");
        let err = store
            .eval(&script, &["a{t1}", "b{t2}"], &[])
            .await
            .expect_err("two slots");
        assert!(err.to_string().contains("slots"), "{err}");
    }

    #[tokio::test]
    async fn join_all_keeps_order() {
        let futs = (0..5u64)
            .map(|i| async move {
                tokio::time::sleep(Duration::from_millis(10 * (5 - i))).await;
                i
            })
            .collect();
        assert_eq!(join_all(futs).await, vec![0, 1, 2, 3, 4]);
    }
}
