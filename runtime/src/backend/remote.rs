//! The stores that talk to Redis, behind one interface.
//!
//! [`RemoteStore`] is the set of raw operations a Redis-speaking store provides, with
//! no deadline and no breaker of their own ([`Guarded`](super::Guarded) adds both).
//! [`Remote`] is the closed set of such stores; it implements [`RemoteStore`] by
//! delegating to the variant it holds, so a cache is `Guarded<Remote>` whatever the
//! server, and a new Redis-speaking store is one variant and one line in
//! [`each_remote!`].

use std::future::Future;
use std::time::Duration;

use super::Backend;
use super::cluster::ClusterStore;
use super::redis::RedisStore;
#[cfg(feature = "upstash")]
use super::upstash::UpstashStore;
use crate::error::CacheError;

/// One argument of a Lua script.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScriptArg<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl redis::ToRedisArgs for ScriptArg<'_> {
    fn write_redis_args<W>(&self, out: &mut W)
    where
        W: ?Sized + redis::RedisWrite,
    {
        match self {
            ScriptArg::Int(n) => n.write_redis_args(out),
            ScriptArg::Bytes(b) => b.write_redis_args(out),
        }
    }
}

impl redis::ToSingleRedisArg for ScriptArg<'_> {}

/// Where one step of a purge runs: the whole server, or one primary of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PurgeNode {
    Server,
    Primary { host: String, port: u16 },
}

/// Raw operations of a store that talks to Redis. Implementations must not add a
/// deadline or a breaker ([`Guarded`](super::Guarded) does both) and must map redis-rs
/// errors with `CacheError::from` (which tells outages from refused commands).
pub(crate) trait RemoteStore: std::fmt::Debug + Send + Sync + 'static {
    /// Which backend this is (for logs, metrics and [`Cache::backend`](crate::Cache::backend)).
    fn backend(&self) -> Backend;

    /// Where it connects, for logs and health reports, without any password
    /// (`redis://:***@10.0.0.5:6379`).
    fn endpoint(&self) -> &str;

    /// `GET key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, CacheError>> + Send;
    /// `MGET keys...` (or its cluster equivalent), one entry per key, in order.
    fn get_many(
        &self,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>, CacheError>> + Send;
    /// `SET key value PX ttl_ms`.
    fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), CacheError>> + Send;
    /// A pipelined `SET .. PX` per entry.
    fn set_many(
        &self,
        entries: &[(&str, Vec<u8>)],
        ttl: Duration,
    ) -> impl Future<Output = Result<(), CacheError>> + Send;
    /// `DEL keys...`.
    fn del(&self, keys: &[&str]) -> impl Future<Output = Result<(), CacheError>> + Send;
    /// `PING`.
    fn ping(&self) -> impl Future<Output = Result<(), CacheError>> + Send;
    /// `EVALSHA`/`EVAL` of a script whose keys share one slot. Must not be retried
    /// after it may have run.
    fn eval(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[ScriptArg<'_>],
    ) -> impl Future<Output = Result<redis::Value, CacheError>> + Send;
    /// The nodes a purge visits, in order: by default the one server.
    fn purge_nodes(&self) -> impl Future<Output = Result<Vec<PurgeNode>, CacheError>> + Send {
        std::future::ready(Ok(vec![PurgeNode::Server]))
    }
    /// One `SCAN` step on `node` from `cursor` with the glob `pattern`, and the
    /// `UNLINK` of what it found: `(next cursor, keys removed)`; cursor 0 ends. By
    /// default one run of [`scan_unlink_script`] on the one server (the step and the
    /// `UNLINK` atomic together).
    fn purge_step(
        &self,
        _node: &PurgeNode,
        pattern: &str,
        cursor: u64,
    ) -> impl Future<Output = Result<(u64, u64), CacheError>> + Send
    where
        Self: Sized,
    {
        purge_step_by_script(self, pattern, cursor)
    }
    /// Drops the current connection(s) so that the next operation starts afresh. Called
    /// before a breaker probe when the client cannot be trusted to recover by itself
    /// (refused credentials, or the previous probe also timed out: a silent network
    /// partition).
    fn reset_connection(&self);
}

/// The Redis-speaking stores.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per cache, behind its Arc: the variants' sizes cost nothing"
)]
pub(crate) enum Remote {
    Redis(RedisStore),
    Cluster(ClusterStore),
    #[cfg(feature = "upstash")]
    Upstash(UpstashStore),
}

/// Runs `$body` with `$store` bound to whichever store `$remote` holds.
macro_rules! each_remote {
    ($remote:expr, $store:ident => $body:expr) => {
        match $remote {
            Remote::Redis($store) => $body,
            Remote::Cluster($store) => $body,
            #[cfg(feature = "upstash")]
            Remote::Upstash($store) => $body,
        }
    };
}

impl RemoteStore for Remote {
    fn backend(&self) -> Backend {
        each_remote!(self, s => s.backend())
    }

    fn endpoint(&self) -> &str {
        each_remote!(self, s => s.endpoint())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        // The one exception to `each_remote!`: a `GET` is every hit, and this future's
        // size is its largest arm's. The cluster's and the REST store's `GET` futures
        // are more than twice the single server's (592 bytes against 264), so they are
        // boxed (one small allocation beside their routing or HTTP request) and a
        // single-server hit does not carry their size.
        match self {
            Remote::Redis(s) => s.get(key).await,
            Remote::Cluster(s) => Box::pin(s.get(key)).await,
            #[cfg(feature = "upstash")]
            Remote::Upstash(s) => Box::pin(s.get(key)).await,
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        each_remote!(self, s => s.get_many(keys).await)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        each_remote!(self, s => s.set(key, value, ttl).await)
    }

    async fn set_many(&self, entries: &[(&str, Vec<u8>)], ttl: Duration) -> Result<(), CacheError> {
        each_remote!(self, s => s.set_many(entries, ttl).await)
    }

    async fn del(&self, keys: &[&str]) -> Result<(), CacheError> {
        each_remote!(self, s => s.del(keys).await)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        each_remote!(self, s => s.ping().await)
    }

    async fn eval(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[ScriptArg<'_>],
    ) -> Result<redis::Value, CacheError> {
        each_remote!(self, s => s.eval(script, keys, args).await)
    }

    async fn purge_nodes(&self) -> Result<Vec<PurgeNode>, CacheError> {
        each_remote!(self, s => s.purge_nodes().await)
    }

    async fn purge_step(
        &self,
        node: &PurgeNode,
        pattern: &str,
        cursor: u64,
    ) -> Result<(u64, u64), CacheError> {
        each_remote!(self, s => s.purge_step(node, pattern, cursor).await)
    }

    fn reset_connection(&self) {
        each_remote!(self, s => s.reset_connection());
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

/// A Lua script running one `SCAN` step with `pattern` (ARGV: cursor, count) and
/// `UNLINK`ing what it found; returns `{next cursor, keys removed}`. Used on a single
/// server, where one script may touch any key.
pub(crate) fn scan_unlink_script(pattern: &str) -> String {
    // A long-bracket string literal whose closing bracket does not occur in the
    // pattern. Lua drops a newline right after the opening bracket, so one is put
    // there: the pattern itself is kept byte for byte.
    let mut level = String::new();
    while pattern.contains(&format!("]{level}]")) || pattern.ends_with(&format!("]{level}")) {
        level.push('=');
    }
    format!(
        "local r = redis.call('SCAN', ARGV[1], 'MATCH', [{level}[\n{pattern}]{level}], 'COUNT', ARGV[2])\n\
         local keys = r[2]\n\
         if #keys > 0 then redis.call('UNLINK', unpack(keys)) end\n\
         return {{r[1], #keys}}"
    )
}

/// How many keys one `SCAN` step asks for.
pub(crate) const SCAN_COUNT: i64 = 500;

/// `script` with its `keys` and `args`, ready to invoke on a connection.
pub(crate) fn invocation<'a>(
    script: &'a redis::Script,
    keys: &[&str],
    args: &[ScriptArg<'_>],
) -> redis::ScriptInvocation<'a> {
    let mut inv = script.prepare_invoke();
    for k in keys {
        inv.key(*k);
    }
    for a in args {
        inv.arg(*a);
    }
    inv
}

/// The default [`RemoteStore::purge_step`]: one run of [`scan_unlink_script`].
async fn purge_step_by_script<S: RemoteStore>(
    store: &S,
    pattern: &str,
    cursor: u64,
) -> Result<(u64, u64), CacheError> {
    let script = redis::Script::new(&scan_unlink_script(pattern));
    let cursor = i64::try_from(cursor).unwrap_or(0);
    let reply = store
        .eval(
            &script,
            &[],
            &[ScriptArg::Int(cursor), ScriptArg::Int(SCAN_COUNT)],
        )
        .await?;
    let (next, removed): (String, u64) =
        redis::from_redis_value(reply).map_err(|e| CacheError::Redis(e.to_string()))?;
    let next = next
        .parse()
        .map_err(|_| CacheError::Redis(format!("unexpected SCAN cursor {next:?}")))?;
    Ok((next, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(escape_glob("a*b?c[d]e\\f"), "a\\*b\\?c\\[d\\]e\\\\f");
        assert_eq!(escape_glob("copilot:{t1}:"), "copilot:{t1}:");
    }

    #[test]
    fn the_scan_script_quotes_any_pattern() {
        let script = scan_unlink_script("a]]b]=]c]=");
        assert!(script.contains("[==[\na]]b]=]c]=]==]"), "{script}");
        assert!(scan_unlink_script("x*").contains("[[\nx*]]"));
    }
}
