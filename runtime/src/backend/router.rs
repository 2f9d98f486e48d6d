//! cacheward's own Redis Cluster routing: a slot map and one multiplexed connection
//! per node, with redirections followed and the map refreshed by a task of its own.
//!
//! Why not redis-rs' `cluster_async::ClusterConnection`: its whole connection is one
//! driver task that polls every request, and while a slot refresh (started by a
//! `MOVED`) waits for the write half of the topology lock it polls nothing else. With
//! tokio 1.54 or later a request of that same task can hold a read permit while parked
//! (its coop budget spent), so the refresh waits for it forever and every request on
//! the connection stalls until it is dropped. See `docs/operations.md`.
//!
//! Here nothing holds a lock across an `.await`:
//!
//! - **The slot map** is an immutable [`SlotMap`] behind an [`ArcSwap`]: a request
//!   reads the owner of its slot with one atomic load, and a refresh builds a new map
//!   and swaps it in.
//! - **`MOVED`** names the slot's new owner: the map is updated for that slot at once
//!   (copy on write) and the request goes there; a full refresh is started in the
//!   background (at most one at a time, at most one per [`REFRESH_INTERVAL`]).
//! - **`ASK`** (a slot being migrated) is followed by `ASKING` and the command sent *as
//!   one pipeline* to the importing node, so no other request can take the one-shot
//!   `ASKING` flag in between.
//! - **`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`** and, for idempotent
//!   commands, a lost connection are retried after a short backoff; a connection
//!   error also starts a refresh (a failover moves slots without any `MOVED`).
//!
//! Every node connection is a redis-rs [`ConnectionManager`] (it reconnects by
//! itself). Retries are bounded by [`ATTEMPTS`]; the cache's per-operation deadline
//! applies on top.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use redis::aio::{ConnectionLike as _, ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ConnectionInfo, RedisError, RedisResult, RetryMethod, Value};

use super::slot::SLOTS;

/// How long a node may take to answer one request before the request fails (and
/// the connection is rebuilt). The cache's deadline is much shorter; this only keeps
/// abandoned requests from piling up on a frozen node.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts of one request across redirections and retryable errors.
pub(crate) const ATTEMPTS: u32 = 16;
/// The shortest and longest wait before retrying after `TRYAGAIN`, `CLUSTERDOWN` or a
/// lost node.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// A refresh starts at most this often.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);
/// How long a refresh waits for one node's `CLUSTER SLOTS` before asking the next.
const REFRESH_NODE_TIMEOUT: Duration = Duration::from_millis(500);
/// The slot map's marker for a slot no primary serves.
const UNSERVED: u16 = u16::MAX;

/// A node, as the cluster names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct NodeAddr {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl NodeAddr {
    /// Parses `host:port` (as in `MOVED 3999 127.0.0.1:7001`).
    fn parse(addr: &str) -> Option<NodeAddr> {
        let (host, port) = addr.rsplit_once(':')?;
        Some(NodeAddr {
            host: host.trim_matches(['[', ']']).to_owned(),
            port: port.parse().ok()?,
        })
    }

    fn of(info: &ConnectionInfo) -> Option<NodeAddr> {
        match info.addr() {
            ConnectionAddr::Tcp(host, port) => Some(NodeAddr {
                host: host.clone(),
                port: *port,
            }),
            ConnectionAddr::TcpTls { host, port, .. } => Some(NodeAddr {
                host: host.clone(),
                port: *port,
            }),
            _ => None,
        }
    }
}

/// Which primary serves each slot.
pub(crate) struct SlotMap {
    /// Per slot, an index into `primaries` ([`UNSERVED`] when none serves it).
    owner: Box<[u16]>,
    primaries: Vec<NodeAddr>,
    /// The primaries that serve at least one slot (computed once per map: a map is
    /// read on every request and built only on a refresh or a `MOVED`).
    serving: Vec<NodeAddr>,
}

impl SlotMap {
    fn empty() -> SlotMap {
        SlotMap {
            owner: vec![UNSERVED; usize::from(SLOTS)].into_boxed_slice(),
            primaries: Vec::new(),
            serving: Vec::new(),
        }
    }

    /// Fills in `serving` once `owner` is complete.
    fn finish(mut self) -> SlotMap {
        let mut used = vec![false; self.primaries.len()];
        for &index in &*self.owner {
            if let Some(u) = used.get_mut(usize::from(index)) {
                *u = true;
            }
        }
        self.serving = self
            .primaries
            .iter()
            .zip(used)
            .filter(|(_, used)| *used)
            .map(|(a, _)| a.clone())
            .collect();
        self
    }

    /// The map a `CLUSTER SLOTS` reply describes; `queried` fills in a primary whose
    /// host the reply leaves empty (a node that does not know its own address).
    fn from_cluster_slots(reply: &Value, queried: &NodeAddr) -> RedisResult<SlotMap> {
        let invalid =
            || RedisError::from((redis::ErrorKind::Parse, "unexpected CLUSTER SLOTS reply"));
        let Value::Array(ranges) = reply else {
            return Err(invalid());
        };
        let mut map = SlotMap::empty();
        for range in ranges {
            let Value::Array(fields) = range else {
                return Err(invalid());
            };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(primary))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                return Err(invalid());
            };
            let host = match primary.first() {
                Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
                Some(Value::SimpleString(h)) => h.clone(),
                _ => return Err(invalid()),
            };
            let Some(Value::Int(port)) = primary.get(1) else {
                return Err(invalid());
            };
            let addr = NodeAddr {
                host: if host.is_empty() || host == "?" {
                    queried.host.clone()
                } else {
                    host
                },
                port: u16::try_from(*port).map_err(|_| invalid())?,
            };
            let index = map.index_of(addr);
            let (start, end) = (
                usize::try_from(*start).map_err(|_| invalid())?,
                usize::try_from(*end).map_err(|_| invalid())?,
            );
            if start > end || end >= map.owner.len() {
                return Err(invalid());
            }
            map.owner[start..=end].fill(index);
        }
        Ok(map.finish())
    }

    fn index_of(&mut self, addr: NodeAddr) -> u16 {
        match self.primaries.iter().position(|p| *p == addr) {
            Some(i) => i as u16,
            None => {
                self.primaries.push(addr);
                (self.primaries.len() - 1) as u16
            }
        }
    }

    /// The primary serving `slot`.
    fn owner(&self, slot: u16) -> Option<&NodeAddr> {
        let index = *self.owner.get(usize::from(slot))?;
        self.primaries.get(usize::from(index))
    }

    /// This map with `slot` served by `addr` (what a `MOVED` says).
    fn with_owner(&self, slot: u16, addr: &NodeAddr) -> SlotMap {
        let mut next = SlotMap {
            owner: self.owner.clone(),
            primaries: self.primaries.clone(),
            serving: Vec::new(),
        };
        let index = next.index_of(addr.clone());
        next.owner[usize::from(slot)] = index;
        next.finish()
    }

    /// The primaries that serve at least one slot.
    fn serving(&self) -> &[NodeAddr] {
        &self.serving
    }
}

/// How to connect to any node of the cluster: the seeds' credentials, TLS settings
/// and timeouts.
pub(crate) struct NodeSettings {
    /// The first seed's connection info; a node's is this with the node's address.
    pub(crate) template: ConnectionInfo,
    pub(crate) connect_timeout: Duration,
    /// A private CA for `rediss://`.
    #[cfg(feature = "tls")]
    pub(crate) certs: Option<redis::TlsCertificates>,
}

impl NodeSettings {
    fn client(&self, addr: &NodeAddr) -> RedisResult<redis::Client> {
        let node_addr = match self.template.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: addr.host.clone(),
                port: addr.port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(addr.host.clone(), addr.port),
        };
        self.open(self.template.clone().set_addr(node_addr))
    }

    fn open(&self, info: ConnectionInfo) -> RedisResult<redis::Client> {
        #[cfg(feature = "tls")]
        if let Some(certs) = &self.certs
            && matches!(info.addr(), ConnectionAddr::TcpTls { .. })
        {
            return redis::Client::build_with_tls(info, certs.clone());
        }
        redis::Client::open(info)
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // One attempt per reconnection: a node that is gone is noticed at once, and
            // the refresh finds out where its slots went.
            .set_number_of_retries(0)
    }
}

#[derive(Default)]
struct RefreshState {
    running: bool,
    last: Option<Instant>,
}

/// A connected cluster: its slot map and a connection per node.
pub(crate) struct Router {
    map: ArcSwap<SlotMap>,
    nodes: Mutex<HashMap<NodeAddr, ConnectionManager>>,
    settings: Arc<NodeSettings>,
    seeds: Arc<[ConnectionInfo]>,
    refresh: Mutex<RefreshState>,
    /// The runtime the connections were made in (refreshes run there too).
    runtime: tokio::runtime::Handle,
}

impl Router {
    /// Fetches the slot map from the first seed that answers `CLUSTER SLOTS`.
    pub(crate) async fn connect(
        seeds: Arc<[ConnectionInfo]>,
        settings: Arc<NodeSettings>,
    ) -> RedisResult<Arc<Router>> {
        let runtime = tokio::runtime::Handle::current();
        let mut last_error = None;
        for seed in seeds.iter() {
            let Some(addr) = NodeAddr::of(seed) else {
                continue;
            };
            let config = redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(settings.connect_timeout))
                .set_response_timeout(Some(RESPONSE_TIMEOUT));
            let attempt = async {
                let client = settings.open(seed.clone())?;
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                let reply = conn
                    .req_packed_command(&cluster_slots())
                    .await
                    .and_then(Value::extract_error)?;
                SlotMap::from_cluster_slots(&reply, &addr)
            };
            match attempt.await {
                Ok(map) => {
                    let router = Arc::new(Router {
                        map: ArcSwap::from_pointee(map),
                        nodes: Mutex::new(HashMap::new()),
                        settings,
                        seeds,
                        refresh: Mutex::new(RefreshState::default()),
                        runtime,
                    });
                    router.connect_primaries().await;
                    return Ok(router);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no TCP seed node to connect to",
            ))
        }))
    }

    /// Connects to every primary of the map at once, concurrently, so that the first
    /// operations do not each wait for a connection of their own. A primary that
    /// cannot be reached now is connected to on first use instead.
    async fn connect_primaries(&self) {
        let connects = self.primaries().into_iter().map(|addr| async move {
            let client = self.settings.client(&addr).ok()?;
            let conn = tokio::time::timeout(
                self.settings.connect_timeout,
                ConnectionManager::new_with_config(client, self.settings.manager_config()),
            )
            .await
            .ok()?
            .ok()?;
            Some((addr, conn))
        });
        let connected = crate::util::join_all(connects.collect()).await;
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        for (addr, conn) in connected.into_iter().flatten() {
            nodes.entry(addr).or_insert(conn);
        }
    }

    /// The connection to `addr`, made (lazily) on first use.
    pub(crate) fn node(&self, addr: &NodeAddr) -> RedisResult<ConnectionManager> {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conn) = nodes.get(addr) {
            return Ok(conn.clone());
        }
        let _runtime = self.runtime.enter();
        let conn = ConnectionManager::new_lazy_with_config(
            self.settings.client(addr)?,
            self.settings.manager_config(),
        )?;
        nodes.insert(addr.clone(), conn.clone());
        // Drive the first connection attempt to its end even if every caller gives up
        // at its deadline (a lazy connection only progresses while polled).
        let mut driver = conn.clone();
        self.runtime.spawn(async move {
            let _ = redis::cmd("PING").query_async::<()>(&mut driver).await;
        });
        Ok(conn)
    }

    /// The primaries that serve slots, as the map has them.
    pub(crate) fn primaries(&self) -> Vec<NodeAddr> {
        self.map.load().serving().to_vec()
    }

    fn owner(self: &Arc<Self>, slot: u16) -> RedisResult<NodeAddr> {
        if let Some(addr) = self.map.load().owner(slot) {
            return Ok(addr.clone());
        }
        self.refresh_soon();
        Err(RedisError::from((
            redis::ErrorKind::ClusterConnectionNotFound,
            "no primary serves the slot (yet)",
        )))
    }

    /// Records a `MOVED`: `slot` is served by `addr` from now on.
    fn moved(&self, slot: u16, addr: &NodeAddr) {
        self.map.rcu(|map| {
            if map.owner(slot) == Some(addr) {
                Arc::clone(map)
            } else {
                Arc::new(map.with_owner(slot, addr))
            }
        });
    }

    /// Starts a refresh of the slot map in the background, unless one is running or
    /// one started less than [`REFRESH_INTERVAL`] ago.
    pub(crate) fn refresh_soon(self: &Arc<Self>) {
        {
            let mut state = self.refresh.lock().unwrap_or_else(PoisonError::into_inner);
            if state.running || state.last.is_some_and(|t| t.elapsed() < REFRESH_INTERVAL) {
                return;
            }
            state.running = true;
            state.last = Some(Instant::now());
        }
        let router = Arc::clone(self);
        self.runtime.spawn(async move {
            router.refresh_now().await;
            router
                .refresh
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .running = false;
        });
    }

    /// Asks the known primaries, then the seeds, for `CLUSTER SLOTS`; the first
    /// answer becomes the map. Connections to nodes that left it are dropped.
    async fn refresh_now(&self) {
        let mut candidates = self.primaries();
        for seed in self.seeds.iter() {
            if let Some(addr) = NodeAddr::of(seed)
                && !candidates.contains(&addr)
            {
                candidates.push(addr);
            }
        }
        for addr in candidates {
            let Ok(mut conn) = self.node(&addr) else {
                continue;
            };
            let asked = tokio::time::timeout(
                REFRESH_NODE_TIMEOUT,
                conn.req_packed_command(&cluster_slots()),
            )
            .await;
            let Ok(Ok(reply)) = asked else {
                continue;
            };
            let Ok(map) = SlotMap::from_cluster_slots(&reply, &addr) else {
                continue;
            };
            if map.primaries.is_empty() {
                continue;
            }
            let keep: HashSet<NodeAddr> = map.primaries.iter().cloned().collect();
            self.map.store(Arc::new(map));
            self.nodes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|a, _| keep.contains(a));
            tracing::debug!(node = %addr, "cacheward: Redis Cluster slot map refreshed");
            return;
        }
        tracing::debug!("cacheward: no Redis Cluster node answered CLUSTER SLOTS");
    }

    /// Runs `cmds` (all keyed to `slot`) on the slot's primary, following `MOVED` and
    /// `ASK` and retrying what can be retried. Returns one value per command, or the
    /// first error one of them answered.
    ///
    /// A request that fails with a lost connection is retried only when `idempotent`
    /// (it may have run); a refused connection (nothing was sent) always is.
    pub(crate) async fn on_slot(
        self: &Arc<Self>,
        slot: u16,
        cmds: &[redis::Cmd],
        idempotent: bool,
    ) -> RedisResult<Vec<Value>> {
        let mut ask: Option<NodeAddr> = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (addr, asking) = match ask.take() {
                Some(addr) => (addr, true),
                None => (self.owner(slot)?, false),
            };
            let mut conn = self.node(&addr)?;
            let err = match send(&mut conn, cmds, asking).await {
                Ok(values) => return Ok(values),
                Err(e) => e,
            };
            if attempt >= ATTEMPTS || is_auth(&err) {
                return Err(err);
            }
            match err.retry_method() {
                RetryMethod::MovedRedirect => {
                    match redirected_to(&err, &addr) {
                        Some(to) => self.moved(slot, &to),
                        None => return Err(err),
                    }
                    self.refresh_soon();
                }
                RetryMethod::AskRedirect => match redirected_to(&err, &addr) {
                    Some(to) => ask = Some(to),
                    None => return Err(err),
                },
                RetryMethod::WaitAndRetry => tokio::time::sleep(backoff(attempt)).await,
                RetryMethod::RefreshSlotsAndRetry => {
                    self.refresh_soon();
                    tokio::time::sleep(backoff(attempt)).await;
                }
                RetryMethod::Reconnect
                | RetryMethod::RetryImmediately
                | RetryMethod::ReconnectFromInitialConnections
                    if idempotent || err.is_connection_refusal() =>
                {
                    self.refresh_soon();
                    tokio::time::sleep(backoff(attempt)).await;
                }
                _ => {
                    if err.is_io_error() || err.is_connection_dropped() {
                        self.refresh_soon();
                    }
                    return Err(err);
                }
            }
        }
    }
}

/// The node a `MOVED` or `ASK` names; a node that does not know its own address
/// names only the port (`:7001`), on the host that answered.
fn redirected_to(err: &RedisError, from: &NodeAddr) -> Option<NodeAddr> {
    let mut to = NodeAddr::parse(err.redirect_node()?.0)?;
    if to.host.is_empty() {
        to.host.clone_from(&from.host);
    }
    Some(to)
}

/// `CLUSTER SLOTS`.
fn cluster_slots() -> redis::Cmd {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    cmd
}

/// Whether the server refused the credentials (never retried: the report says so).
fn is_auth(err: &RedisError) -> bool {
    err.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

/// The wait before attempt `attempt + 1`: 5 ms, doubling, at most 100 ms.
fn backoff(attempt: u32) -> Duration {
    MIN_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(8))
        .min(MAX_BACKOFF)
}

/// Sends `cmds` on `conn` (after `ASKING`, each, when `asking`): one command alone as
/// is, several as one pipeline. Returns one value per command, or the first error.
async fn send(
    conn: &mut ConnectionManager,
    cmds: &[redis::Cmd],
    asking: bool,
) -> RedisResult<Vec<Value>> {
    if let [cmd] = cmds
        && !asking
    {
        let value = conn.req_packed_command(cmd).await?;
        return Ok(vec![value.extract_error()?]);
    }
    let mut pipe = redis::pipe();
    for cmd in cmds {
        if asking {
            pipe.cmd("ASKING");
        }
        pipe.add_command(cmd.clone());
    }
    let per = if asking { 2 } else { 1 };
    let values = conn.req_packed_commands(&pipe, 0, cmds.len() * per).await?;
    values
        .into_iter()
        .skip(per - 1)
        .step_by(per)
        .map(Value::extract_error)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u16) -> NodeAddr {
        NodeAddr {
            host: "127.0.0.1".to_owned(),
            port,
        }
    }

    fn range(start: i64, end: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ]),
        ])
    }

    #[test]
    fn cluster_slots_replies_become_a_slot_map() {
        let reply = Value::Array(vec![
            range(0, 5460, "127.0.0.1", 7000),
            range(5461, 10922, "", 7001),
            range(10923, 16383, "127.0.0.1", 7002),
        ]);
        let map = SlotMap::from_cluster_slots(&reply, &node(7001)).unwrap();
        assert_eq!(map.owner(0), Some(&node(7000)));
        assert_eq!(
            map.owner(5461),
            Some(&node(7001)),
            "empty host: the queried one"
        );
        assert_eq!(map.owner(16383), Some(&node(7002)));
        assert_eq!(map.serving().len(), 3);

        let moved = map.with_owner(42, &node(7002));
        assert_eq!(moved.owner(42), Some(&node(7002)));
        assert_eq!(moved.owner(41), Some(&node(7000)));
        assert_eq!(map.owner(42), Some(&node(7000)), "copy on write");

        let partial = SlotMap::from_cluster_slots(
            &Value::Array(vec![range(0, 100, "127.0.0.1", 7000)]),
            &node(7000),
        )
        .unwrap();
        assert_eq!(partial.owner(101), None);
        assert!(SlotMap::from_cluster_slots(&Value::Int(1), &node(7000)).is_err());
        assert!(
            SlotMap::from_cluster_slots(&Value::Array(vec![range(0, 16384, "h", 1)]), &node(7000))
                .is_err()
        );
    }

    #[test]
    fn redirection_addresses_parse() {
        assert_eq!(NodeAddr::parse("127.0.0.1:7001"), Some(node(7001)));
        assert_eq!(
            NodeAddr::parse("[::1]:7001").map(|a| a.to_string()),
            Some("[::1]:7001".to_owned())
        );
        assert_eq!(NodeAddr::parse("nope"), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(5), Duration::from_millis(80));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
