//! A real, private Redis Cluster for tests: three primaries and three replicas on
//! loopback ports.
//!
//! [`RedisCluster::start`] launches six `redis-server --cluster-enabled yes`
//! processes, joins them with `redis-cli --cluster create … --cluster-replicas 1`,
//! and returns only once every node reports `cluster_state:ok`, all 16384 slots are
//! covered and every replica's link to its primary is up. It panics with the reason
//! when the cluster cannot be started: a test that needs a cluster never passes
//! without one.
//!
//! The processes are stopped and their directory removed when the last handle is
//! dropped. A small watchdog process also removes them when the test binary exits,
//! which is what cleans up the cluster shared by a test binary
//! ([`RedisCluster::shared`]): statics are never dropped.
//!
//! Besides reading the topology, a test can break the cluster for real: kill a
//! primary and wait for its replica to be promoted
//! ([`RedisCluster::kill_primary_of_slot`]), or move a slot to another primary
//! step by step so that clients see `ASK` and then `MOVED` redirections
//! ([`RedisCluster::begin_slot_migration`]).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::redis_server_binary;

/// `cluster-node-timeout` of the test clusters, in milliseconds. Small, so that a
/// killed primary is replaced within a few seconds.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// How many nodes a test cluster has: three primaries, each with one replica.
pub const NODES: usize = 6;

/// How long starting a cluster, or waiting for it to settle, may take before the
/// harness gives up (and panics with what it last saw).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A Redis Cluster owned by a test (or shared by the tests of one binary).
///
/// Cheap to clone: clones are handles on the same processes, which stop when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub struct RedisCluster {
    inner: Arc<Processes>,
    /// Held, never read: while any clone lives, the shared cluster is this test's.
    _lease: Option<Arc<Lease>>,
}

#[derive(Debug)]
struct Processes {
    dir: PathBuf,
    /// `requirepass` (and `masterauth`) of every node, if any.
    password: Option<String>,
    nodes: Mutex<Vec<Node>>,
    watchdog: Mutex<Option<Child>>,
}

#[derive(Debug)]
struct Node {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

/// One line of `CLUSTER NODES`, as seen by a live node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's cluster id.
    pub id: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Whether it is a primary (`master` flag).
    pub primary: bool,
    /// Whether the cluster considers it failed (`fail` or `fail?` flag).
    pub failed: bool,
    /// For a replica, the id of its primary.
    pub primary_id: Option<String>,
    /// The slot ranges it serves (inclusive), for a primary.
    pub slots: Vec<(u16, u16)>,
}

impl NodeInfo {
    /// Whether this node serves `slot`.
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
    }
}

/// What [`RedisCluster::kill_primary_of_slot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// The port of the primary that was killed.
    pub killed: u16,
    /// The port of the replica that now serves the slot.
    pub promoted: u16,
    /// From the kill to the moment every live node agreed on the new primary.
    pub took: Duration,
}

/// A slot being moved from one primary to another (see
/// [`RedisCluster::begin_slot_migration`]). While it is open, the source answers
/// `ASK` for keys it no longer has; after [`finish`](Self::finish) every node
/// answers `MOVED`.
#[derive(Debug)]
pub struct SlotMigration {
    cluster: RedisCluster,
    slot: u16,
    source: NodeInfo,
    target: NodeInfo,
}

/// A free loopback port, distinct from the others in `held` (which stay bound
/// until the caller drops them).
fn distinct_free_port(held: &mut Vec<TcpListener>) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    held.push(listener);
    port
}

fn redis_cli_binary() -> PathBuf {
    let server = redis_server_binary();
    let cli = server.with_file_name("redis-cli");
    if cli.exists() {
        return cli;
    }
    PathBuf::from("redis-cli")
}

fn sync_conn(port: u16, password: Option<&str>) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(node_url(port, password))?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(conn)
}

/// `redis://[:password@]127.0.0.1:<port>`.
fn node_url(port: u16, password: Option<&str>) -> String {
    match password {
        Some(pw) => format!("redis://:{pw}@127.0.0.1:{port}"),
        None => format!("redis://127.0.0.1:{port}"),
    }
}

fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::to_owned)
    })
}

/// Parses `CLUSTER NODES` output.
pub fn parse_cluster_nodes(text: &str) -> Vec<NodeInfo> {
    let mut nodes = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            continue;
        }
        let addr = fields[1].split([',', '@']).next().unwrap_or("");
        let Some(port) = addr.rsplit(':').next().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let flags: Vec<&str> = fields[2].split(',').collect();
        let mut slots = Vec::new();
        for range in &fields[8..] {
            if range.starts_with('[') {
                continue; // importing/migrating markers
            }
            let mut parts = range.splitn(2, '-');
            let a: Option<u16> = parts.next().and_then(|s| s.parse().ok());
            let b: Option<u16> = parts.next().map_or(a, |s| s.parse().ok());
            if let (Some(a), Some(b)) = (a, b) {
                slots.push((a, b));
            }
        }
        nodes.push(NodeInfo {
            id: fields[0].to_owned(),
            port,
            primary: flags.contains(&"master"),
            failed: flags.contains(&"fail") || flags.contains(&"fail?"),
            primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
            slots,
        });
    }
    nodes
}

static WORKDIR_SEQ: AtomicU32 = AtomicU32::new(0);

/// One node's view of the slot map: each primary's port and slot ranges, sorted.
type SlotMap = Vec<(u16, Vec<(u16, u16)>)>;

impl RedisCluster {
    /// Starts a fresh cluster of three primaries and three replicas. Panics with the
    /// reason if it cannot.
    pub fn start() -> RedisCluster {
        Self::start_inner(None)
    }

    /// Starts a fresh cluster whose nodes require `password` (`requirepass`, with
    /// `masterauth` so replicas can sync). [`seeds`](Self::seeds) carry no password:
    /// clients must supply it (`REDIS_PASSWORD`, the builder's `password`).
    pub fn start_with_password(password: &str) -> RedisCluster {
        Self::start_inner(Some(password))
    }

    fn start_inner(password: Option<&str>) -> RedisCluster {
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(password) {
                Ok(cluster) => return cluster,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start a Redis Cluster: {last_err}");
    }

    /// The cluster shared by the tests of this binary, started on first use.
    ///
    /// Prefer [`Target::cluster`](crate::Target::cluster), which also gives the test
    /// the cluster to itself (one test at a time, emptied first). Tests that kill or
    /// reshard nodes must use their own [`RedisCluster::start`].
    pub fn shared() -> RedisCluster {
        static SHARED: OnceLock<RedisCluster> = OnceLock::new();
        SHARED.get_or_init(RedisCluster::start).clone()
    }

    /// The shared cluster, leased to the caller alone until the returned handle (and
    /// its clones) are dropped, and emptied (`FLUSHALL` on every primary) first.
    pub fn lease_shared() -> RedisCluster {
        static GATE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());
        let cluster = RedisCluster::shared();
        {
            let (busy, cond) = &GATE;
            let mut busy = busy.lock().unwrap_or_else(|e| e.into_inner());
            while *busy {
                busy = cond.wait(busy).unwrap_or_else(|e| e.into_inner());
            }
            *busy = true;
        }
        let lease = Arc::new(Lease {
            release: Box::new(|| {
                let (busy, cond) = &GATE;
                *busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
                cond.notify_one();
            }),
        });
        let leased = RedisCluster {
            inner: cluster.inner,
            _lease: Some(lease),
        };
        leased.wait_settled();
        leased.flush_all();
        leased
    }

    fn try_start(password: Option<&str>) -> Result<RedisCluster, String> {
        let seq = WORKDIR_SEQ.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("cacheward-cluster-{}-{seq}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;

        // Pick 2 × 6 distinct ports (client and cluster-bus port per node), holding
        // them bound until all are chosen.
        let mut held = Vec::new();
        let ports: Vec<(u16, u16)> = (0..NODES)
            .map(|_| (distinct_free_port(&mut held), distinct_free_port(&mut held)))
            .collect();
        drop(held);

        let processes = Processes {
            dir: dir.clone(),
            password: password.map(str::to_owned),
            nodes: Mutex::new(Vec::new()),
            watchdog: Mutex::new(None),
        };
        let cluster = RedisCluster {
            inner: Arc::new(processes),
            _lease: None,
        };
        for &(port, bus) in &ports {
            let child = spawn_node(&dir, port, bus, password)?;
            cluster.nodes().push(Node {
                port,
                bus_port: bus,
                child: Some(child),
            });
        }
        cluster.start_watchdog();
        for &(port, _) in &ports {
            wait_listening(port)?;
        }

        let mut cli = Command::new(redis_cli_binary());
        if let Some(pw) = password {
            cli.args(["-a", pw, "--no-auth-warning"]);
        }
        let out = cli
            .arg("--cluster")
            .arg("create")
            .args(ports.iter().map(|(p, _)| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run redis-cli --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        cluster.try_wait_settled()?;
        Ok(cluster)
    }

    fn nodes(&self) -> std::sync::MutexGuard<'_, Vec<Node>> {
        self.inner.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a process that kills the nodes and removes the directory once this
    /// test binary has exited (statics are never dropped). Replaces the previous
    /// watchdog, if any (after a node was restarted under a new pid).
    fn start_watchdog(&self) {
        if let Some(mut old) = self
            .inner
            .watchdog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = old.kill();
            let _ = old.wait();
        }
        let pids: Vec<String> = self
            .nodes()
            .iter()
            .filter_map(|n| n.child.as_ref().map(|c| c.id().to_string()))
            .collect();
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill -9 {pids} 2>/dev/null; rm -rf '{dir}'",
            parent = std::process::id(),
            pids = pids.join(" "),
            dir = self.inner.dir.display(),
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(child) = child {
            *self
                .inner
                .watchdog
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(child);
        }
    }

    /// The nodes' password, if the cluster was started with one.
    pub fn password(&self) -> Option<&str> {
        self.inner.password.as_deref()
    }

    /// The ports of every node that was started (alive or killed).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes().iter().map(|n| n.port).collect()
    }

    /// The ports of the nodes that are running.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes()
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// `redis://127.0.0.1:<port>` for every node: the seed list a cluster client is
    /// built from.
    pub fn seeds(&self) -> Vec<String> {
        self.ports()
            .into_iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The URL of the first node (one seed is enough for a cluster client).
    pub fn url(&self) -> String {
        self.seeds().remove(0)
    }

    /// `127.0.0.1:<port>,…` for every node: the value of `REDIS_CLUSTER_NODES`.
    pub fn nodes_env(&self) -> String {
        self.ports()
            .into_iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A redis-rs cluster client on all the nodes.
    pub fn client(&self) -> redis::cluster::ClusterClient {
        let mut builder = redis::cluster::ClusterClient::builder(self.seeds()).retries(8);
        if let Some(pw) = self.password() {
            builder = builder.password(pw);
        }
        builder
            .build()
            .expect("cluster client for the test cluster")
    }

    /// A [`cacheward::CacheBuilder`] for this cluster (every node a seed, its
    /// password if any) with a [`TEST_DEADLINE`](crate::TEST_DEADLINE) deadline.
    pub fn builder(&self) -> cacheward::CacheBuilder {
        let builder = cacheward::Cache::builder()
            .cluster_nodes(self.seeds())
            .deadline(crate::TEST_DEADLINE);
        match self.password() {
            Some(pw) => builder.password(pw),
            None => builder,
        }
    }

    /// A [`cacheward::Cache`] on this cluster with a
    /// [`TEST_DEADLINE`](crate::TEST_DEADLINE) deadline.
    pub fn cache(&self) -> cacheward::Cache {
        self.builder()
            .build()
            .expect("the test cluster's seeds are valid")
    }

    /// A raw async cluster connection for assertions made behind the cache's back.
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        self.client()
            .get_async_connection()
            .await
            .expect("connect to the test cluster")
    }

    /// A plain async connection to one node (by port).
    pub async fn node_connection(&self, port: u16) -> redis::aio::MultiplexedConnection {
        redis::Client::open(node_url(port, self.password()))
            .expect("client for a cluster node")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a cluster node")
    }

    /// The topology as seen by the first live node that answers.
    pub fn topology(&self) -> Vec<NodeInfo> {
        let mut last_err = String::from("no live node");
        for port in self.live_ports() {
            match node_query::<String>(self.password(), port, &["CLUSTER", "NODES"]) {
                Ok(text) => return parse_cluster_nodes(&text),
                Err(e) => last_err = e,
            }
        }
        panic!("cannot read the cluster topology: {last_err}");
    }

    /// The primaries, as seen by a live node (failed ones excluded).
    pub fn primaries(&self) -> Vec<NodeInfo> {
        self.topology()
            .into_iter()
            .filter(|n| n.primary && !n.failed)
            .collect()
    }

    /// The primary serving `slot`.
    pub fn primary_of_slot(&self, slot: u16) -> NodeInfo {
        self.primaries()
            .into_iter()
            .find(|n| n.serves(slot))
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
    }

    /// The slot of `key`, as computed by the cluster (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        node_query::<u16>(self.password(), port, &["CLUSTER", "KEYSLOT", key])
            .expect("CLUSTER KEYSLOT")
    }

    /// Empties every primary (`FLUSHALL`; replicas follow).
    pub fn flush_all(&self) {
        for node in self.primaries() {
            node_query::<String>(self.password(), node.port, &["FLUSHALL"])
                .unwrap_or_else(|e| panic!("FLUSHALL on {}: {e}", node.port));
        }
    }

    fn wait_settled(&self) {
        if let Err(e) = self.try_wait_settled() {
            panic!("the test cluster did not settle: {e}");
        }
    }

    /// Waits until every live node says `cluster_state:ok` with all slots assigned
    /// and the same set of primaries, and every live replica's link is up.
    fn try_wait_settled(&self) -> Result<(), String> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.check_settled() {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "not settled after {SETTLE_TIMEOUT:?}; last observation: {last}"
        ))
    }

    fn check_settled(&self) -> Result<(), String> {
        let live = self.live_ports();
        let mut views: Vec<SlotMap> = Vec::new();
        for &port in &live {
            let info: String = node_query(self.password(), port, &["CLUSTER", "INFO"])?;
            let state = info_field(&info, "cluster_state").unwrap_or_default();
            let assigned = info_field(&info, "cluster_slots_assigned").unwrap_or_default();
            if state != "ok" || assigned != "16384" {
                return Err(format!(
                    "node {port}: cluster_state:{state} cluster_slots_assigned:{assigned}"
                ));
            }
            let nodes = parse_cluster_nodes(&node_query::<String>(
                self.password(),
                port,
                &["CLUSTER", "NODES"],
            )?);
            if nodes.len() != self.ports().len() {
                return Err(format!(
                    "node {port} knows {} of {} nodes",
                    nodes.len(),
                    self.ports().len()
                ));
            }
            if let Some(n) = nodes
                .iter()
                .find(|n| n.primary && n.slots.is_empty() && live.contains(&n.port))
            {
                return Err(format!(
                    "node {port} still sees {} as a primary without slots",
                    n.port
                ));
            }
            let mut primaries: SlotMap = nodes
                .iter()
                .filter(|n| n.primary && !n.slots.is_empty())
                .map(|n| (n.port, n.slots.clone()))
                .collect();
            primaries.sort();
            if primaries.iter().any(|(p, _)| !live.contains(p)) {
                return Err(format!(
                    "node {port} still routes slots to a dead primary: {primaries:?}"
                ));
            }
            views.push(primaries);
            let me = nodes
                .iter()
                .find(|n| n.port == port)
                .ok_or_else(|| format!("node {port} does not list itself"))?;
            if !me.primary {
                let repl: String = node_query(self.password(), port, &["INFO", "replication"])?;
                let link = info_field(&repl, "master_link_status").unwrap_or_default();
                if link != "up" {
                    return Err(format!("replica {port}: master_link_status:{link}"));
                }
            }
        }
        if views.windows(2).any(|w| w[0] != w[1]) {
            return Err(format!("nodes disagree about the slot map: {views:?}"));
        }
        Ok(())
    }

    /// Kills the primary serving `slot` (SIGKILL) and waits until its replica has
    /// been promoted and every live node agrees on the new slot map.
    pub async fn kill_primary_of_slot(&self, slot: u16) -> Failover {
        let victim = self.primary_of_slot(slot);
        let started = Instant::now();
        self.kill_node(victim.port);
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.wait_settled())
            .await
            .expect("wait for the failover");
        let promoted = self.primary_of_slot(slot);
        assert_ne!(
            promoted.port, victim.port,
            "slot {slot} is still served by the killed node"
        );
        Failover {
            killed: victim.port,
            promoted: promoted.port,
            took: started.elapsed(),
        }
    }

    /// Kills one node (SIGKILL) and waits for it to exit. Does not wait for the
    /// cluster to react.
    pub fn kill_node(&self, port: u16) {
        let mut nodes = self.nodes();
        let node = nodes
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on port {port}"));
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills every node (the whole cluster is down until [`restart_all`](Self::restart_all)).
    pub fn kill_all(&self) {
        for port in self.ports() {
            self.kill_node(port);
        }
    }

    /// Starts a killed node again on the same ports with the same cluster
    /// configuration file, so it rejoins as the same node (its data is gone:
    /// persistence is off). Does not wait for the cluster to settle.
    pub fn restart_node(&self, port: u16) {
        {
            let mut nodes = self.nodes();
            let node = nodes
                .iter_mut()
                .find(|n| n.port == port)
                .unwrap_or_else(|| panic!("no node on port {port}"));
            assert!(node.child.is_none(), "node {port} is running");
            let child = spawn_node(
                &self.inner.dir,
                node.port,
                node.bus_port,
                self.inner.password.as_deref(),
            )
            .unwrap_or_else(|e| panic!("restart node {port}: {e}"));
            node.child = Some(child);
        }
        self.start_watchdog();
        if let Err(e) = wait_listening(port) {
            panic!("restart node {port}: {e}");
        }
    }

    /// Restarts every killed node and waits until the cluster has settled again.
    pub async fn restart_all(&self) {
        let dead: Vec<u16> = self
            .nodes()
            .iter()
            .filter(|n| n.child.is_none())
            .map(|n| n.port)
            .collect();
        for port in dead {
            self.restart_node(port);
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.wait_settled())
            .await
            .expect("wait for the cluster to settle");
    }

    /// Starts moving `slot` from its primary to the primary on port `to`:
    /// `CLUSTER SETSLOT … IMPORTING` on the target, `… MIGRATING` on the source.
    /// Keys move with [`SlotMigration::move_keys`]; [`SlotMigration::finish`]
    /// moves the rest and hands the slot over.
    pub fn begin_slot_migration(&self, slot: u16, to: u16) -> SlotMigration {
        let source = self.primary_of_slot(slot);
        let target = self
            .primaries()
            .into_iter()
            .find(|n| n.port == to)
            .unwrap_or_else(|| panic!("port {to} is not a live primary"));
        assert_ne!(source.port, target.port, "slot {slot} is already on {to}");
        let slot_s = slot.to_string();
        node_query::<String>(
            self.password(),
            target.port,
            &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &source.id],
        )
        .expect("SETSLOT IMPORTING");
        node_query::<String>(
            self.password(),
            source.port,
            &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &target.id],
        )
        .expect("SETSLOT MIGRATING");
        SlotMigration {
            cluster: self.clone(),
            slot,
            source,
            target,
        }
    }

    /// Moves `slot` to the primary on port `to` in one go (keys included).
    pub fn migrate_slot(&self, slot: u16, to: u16) {
        self.begin_slot_migration(slot, to).finish();
    }

    /// A primary other than the one serving `slot` (a migration target).
    pub fn other_primary(&self, slot: u16) -> u16 {
        let owner = self.primary_of_slot(slot).port;
        self.primaries()
            .into_iter()
            .map(|n| n.port)
            .find(|&p| p != owner)
            .expect("another primary")
    }
}

impl SlotMigration {
    /// The slot being moved.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The port of the primary the slot is leaving.
    pub fn source(&self) -> u16 {
        self.source.port
    }

    /// The port of the primary the slot is moving to.
    pub fn target(&self) -> u16 {
        self.target.port
    }

    /// Moves up to `max` keys of the slot (`MIGRATE … KEYS`); returns how many moved.
    pub fn move_keys(&self, max: usize) -> usize {
        let slot_s = self.slot.to_string();
        let keys: Vec<Vec<u8>> = node_query(
            self.cluster.password(),
            self.source.port,
            &["CLUSTER", "GETKEYSINSLOT", &slot_s, &max.max(1).to_string()],
        )
        .expect("GETKEYSINSLOT");
        if keys.is_empty() {
            return 0;
        }
        let mut conn =
            sync_conn(self.source.port, self.cluster.password()).expect("connect to the source");
        let mut cmd = redis::cmd("MIGRATE");
        cmd.arg("127.0.0.1")
            .arg(self.target.port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("REPLACE");
        if let Some(pw) = self.cluster.password() {
            cmd.arg("AUTH").arg(pw);
        }
        cmd.arg("KEYS").arg(&keys);
        let _: redis::Value = cmd.query(&mut conn).expect("MIGRATE");
        keys.len()
    }

    /// Moves the remaining keys and assigns the slot to the target on every primary
    /// (`CLUSTER SETSLOT … NODE`), after which clients are redirected with `MOVED`.
    /// Waits until every live node agrees.
    pub fn finish(self) {
        while self.move_keys(100) > 0 {}
        let slot_s = self.slot.to_string();
        let mut order = vec![self.target.port, self.source.port];
        for p in self.cluster.primaries() {
            if !order.contains(&p.port) {
                order.push(p.port);
            }
        }
        for port in order {
            node_query::<String>(
                self.cluster.password(),
                port,
                &["CLUSTER", "SETSLOT", &slot_s, "NODE", &self.target.id],
            )
            .unwrap_or_else(|e| panic!("SETSLOT NODE on {port}: {e}"));
        }
        self.cluster.wait_settled();
        let owner = self.cluster.primary_of_slot(self.slot).port;
        assert_eq!(owner, self.target.port, "slot {} did not move", self.slot);
    }
}

fn node_query<T: redis::FromRedisValue>(
    password: Option<&str>,
    port: u16,
    args: &[&str],
) -> Result<T, String> {
    let mut conn = sync_conn(port, password).map_err(|e| format!("connect to {port}: {e}"))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut conn)
        .map_err(|e| format!("{} on {port}: {e}", args.join(" ")))
}

fn spawn_node(dir: &Path, port: u16, bus: u16, password: Option<&str>) -> Result<Child, String> {
    let mut cmd = Command::new(redis_server_binary());
    if let Some(pw) = password {
        cmd.args(["--requirepass", pw, "--masterauth", pw]);
    }
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--cluster-port")
        .arg(bus.to_string())
        .args(["--cluster-enabled", "yes"])
        .arg("--cluster-config-file")
        .arg(dir.join(format!("nodes-{port}.conf")))
        .arg("--cluster-node-timeout")
        .arg(NODE_TIMEOUT_MS.to_string())
        // A replica may always take over, however stale: the tests want a quick,
        // certain promotion.
        .args(["--cluster-replica-validity-factor", "0"])
        // Replicas sync at once (the default waits 5 s for more replicas to batch).
        .args(["--repl-diskless-sync-delay", "0"])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--loglevel", "warning"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join(format!("redis-{port}.log")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn redis-server on {port}: {e}"))
}

fn wait_listening(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "redis-server did not listen on port {port} within 10 s"
    ))
}

struct Lease {
    release: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        (self.release)();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(mut w) = self
            .watchdog
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = w.kill();
            let _ = w.wait();
        }
        for node in self.nodes.get_mut().unwrap_or_else(|e| e.into_inner()) {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
