//! Test support and scenarios for cacheward: a private `redis-server` per test, a
//! shared Redis Cluster, and the test bodies the integration binaries run.
//!
//! - [`RedisServer`], [`Target`] and [`RawConnection`] (here), [`RedisCluster`]
//!   ([`cluster`]), a TLS-only server ([`tls`]), log capture ([`logs`]) and the
//!   server clock of the rate limiter's suites ([`clock`]).
//! - [`scenarios`]: every Redis test body, written once. Those that take a
//!   [`Target`] run on a single server and on the cluster; `tests/scenarios.rs` runs
//!   them all, `tests/logs.rs` runs those that capture logs.
//!
//! [`RedisServer::start`] launches `redis-server` on a free loopback port with
//! persistence off and stops it when dropped. It can also kill, restart (on the same
//! port), freeze (`SIGSTOP`) and thaw (`SIGCONT`) the server, which is how the failover
//! tests break Redis for real. When no server can be started it panics with the
//! reason: a test that needs Redis never passes without one.

#![warn(missing_docs)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod clock;
pub mod cluster;
pub mod logs;
pub mod proxy;
pub mod scenarios;
pub mod tls;
pub mod upstash;

pub use cluster::RedisCluster;
pub use logs::LogCapture;
pub use proxy::TcpProxy;
pub use upstash::UpstashFront;

/// The deadline of the caches made by [`RedisServer::cache`] and [`Target::cache`]:
/// long enough that a loaded 2-core CI machine running a debug build never hits it, so
/// tests that expect a hit get one. (The production default is far shorter; tests of
/// deadlines set their own.)
pub const TEST_DEADLINE: Duration = Duration::from_secs(1);

/// A [`cacheward::CacheBuilder`] for `url` with a [`TEST_DEADLINE`] deadline.
pub fn builder_for(url: impl Into<String>) -> cacheward::CacheBuilder {
    cacheward::Cache::builder()
        .redis_url(url)
        .deadline(TEST_DEADLINE)
}

/// Serializes the tests that load the machine hard or measure how long calls take
/// (many concurrent tasks, failovers under load): hold the guard for the whole test,
/// so that no two of them run at once in one test binary. Take it after
/// [`Target::cluster`], never before, so that a test holding it never waits for the
/// shared cluster.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    HEAVY.lock().await
}

/// [`exclusive`] for a test that runs outside a tokio runtime (it makes its own).
pub fn exclusive_blocking() -> tokio::sync::MutexGuard<'static, ()> {
    HEAVY.blocking_lock()
}

static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `redis-server` process owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    child: Option<Child>,
    frozen: bool,
}

/// Finds a loopback port that is free right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Where `redis-server` is, or a panic that says how to get it.
pub fn redis_server_binary() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = PathBuf::from(dir).join("redis-server");
        if p.exists() {
            return p;
        }
    }
    if let Ok(out) = Command::new("which").arg("redis-server").output()
        && out.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    panic!(
        "redis-server is not installed: these tests need a real Redis. \
         Run scripts/test (it installs it with apt-get) or `apt-get install redis-server`."
    );
}

impl RedisServer {
    /// Starts a server on a free loopback port. Panics if none can be started.
    pub fn start() -> RedisServer {
        Self::start_with_args(&[])
    }

    /// Starts a server with extra `redis-server` arguments, e.g. `["--requirepass", "s3cret"]`.
    pub fn start_with_args(extra: &[&str]) -> RedisServer {
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("cacheward-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create a redis working directory");
            let mut server = RedisServer {
                port,
                dir,
                extra_args: extra.iter().map(|s| (*s).to_owned()).collect(),
                child: None,
                frozen: false,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_err = e,
            }
        }
        panic!("could not start redis-server: {last_err}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(redis_server_binary())
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args([
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    use std::io::Read;
                    let _ = stderr.read_to_string(&mut err);
                }
                return Err(format!("redis-server exited with {status}: {err}"));
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!(
            "redis-server did not listen on port {} within 10 s",
            self.port
        ))
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A plain redis-rs client for assertions made behind the cache's back.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client for the test server")
    }

    /// A new multiplexed async connection to the server, for raw checks (`GET`, `PTTL`, …).
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test server")
    }

    /// A [`cacheward::CacheBuilder`] for this server with a [`TEST_DEADLINE`] deadline.
    pub fn builder(&self) -> cacheward::CacheBuilder {
        builder_for(self.url())
    }

    /// A [`cacheward::Cache`] on this server with a [`TEST_DEADLINE`] deadline.
    pub fn cache(&self) -> cacheward::Cache {
        self.builder()
            .build()
            .expect("the test server's URL is valid")
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "could not send SIG{sig} to redis-server");
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if self.frozen {
            self.thaw();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("could not restart redis-server: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Freezes the server with SIGSTOP: connections stay open, nothing is answered.
    pub fn freeze(&mut self) {
        self.signal("STOP");
        self.frozen = true;
    }

    /// Resumes a frozen server with SIGCONT.
    pub fn thaw(&mut self) {
        if self.frozen {
            self.signal("CONT");
            self.frozen = false;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a parametrized suite runs: one Redis server, or (added by the cluster work)
/// a Redis Cluster. Suites that should run on both are written as
/// `async fn scenario(target: &Target)` and called once per kind of target, so the
/// cluster run reuses them instead of copying them.
#[derive(Debug)]
#[non_exhaustive]
pub enum Target {
    /// A single private `redis-server`.
    Single(RedisServer),
    /// A Redis Cluster of three primaries and three replicas: the one shared by the
    /// test binary, leased to one test at a time and emptied before each
    /// ([`Target::cluster`]).
    Cluster(RedisCluster),
    /// A private `redis-server` behind an [`UpstashFront`]: the caches talk Upstash's
    /// REST protocol to the front ([`cacheward::Backend::Upstash`]), raw connections go
    /// to the server.
    Upstash(Box<UpstashTarget>),
}

/// The server and the REST front of a [`Target::Upstash`].
#[derive(Debug)]
pub struct UpstashTarget {
    /// The front, declared first so that it stops before the server.
    pub front: UpstashFront,
    /// The server behind it.
    pub server: RedisServer,
}

/// The token a [`Target::upstash`] front accepts.
pub const UPSTASH_TEST_TOKEN: &str = "cacheward-test-token";

impl Target {
    /// A target backed by a fresh single server.
    pub fn single() -> Target {
        Target::Single(RedisServer::start())
    }

    /// A target backed by the test binary's shared Redis Cluster, held by this test
    /// alone until the target is dropped and emptied first (see
    /// [`RedisCluster::lease_shared`]). Started on first use.
    pub fn cluster() -> Target {
        Target::Cluster(RedisCluster::lease_shared())
    }

    /// A target backed by a fresh single server behind a REST front. Must be called
    /// inside a tokio runtime, which runs the front.
    pub fn upstash() -> Target {
        let server = RedisServer::start();
        let front = UpstashFront::start_in_current_runtime(&server, UPSTASH_TEST_TOKEN);
        Target::Upstash(Box::new(UpstashTarget { front, server }))
    }

    /// The backend a cache on this target reports.
    pub fn backend(&self) -> cacheward::Backend {
        match self {
            Target::Single(_) => cacheward::Backend::Redis,
            Target::Cluster(_) => cacheward::Backend::RedisCluster,
            Target::Upstash(_) => cacheward::Backend::Upstash,
        }
    }

    /// The URL a `Cache` for this target is built from (with [`builder`](Self::builder),
    /// which also sets the Upstash token). For a cluster it lists every node,
    /// comma-separated (`redis://127.0.0.1:p1,redis://127.0.0.1:p2,…`), which cacheward
    /// reads as the seed nodes of a Redis Cluster; for Upstash it is the front's
    /// `http://` URL.
    pub fn url(&self) -> String {
        match self {
            Target::Single(s) => s.url(),
            Target::Cluster(c) => c.seeds().join(","),
            Target::Upstash(u) => u.front.url(),
        }
    }

    /// Every node URL: the single server's URL, or all the cluster's seed nodes.
    pub fn urls(&self) -> Vec<String> {
        match self {
            Target::Single(s) => vec![s.url()],
            Target::Cluster(c) => c.seeds(),
            Target::Upstash(u) => vec![u.front.url()],
        }
    }

    /// A [`cacheward::CacheBuilder`] for this target with a [`TEST_DEADLINE`] deadline,
    /// for scenarios that need other settings too.
    pub fn builder(&self) -> cacheward::CacheBuilder {
        match self {
            Target::Single(s) => s.builder(),
            Target::Cluster(c) => c.builder(),
            Target::Upstash(u) => u.front.builder(),
        }
    }

    /// A [`cacheward::Cache`] on this target with a [`TEST_DEADLINE`] deadline.
    pub fn cache(&self) -> cacheward::Cache {
        self.builder()
            .build()
            .expect("the test target's URL is valid")
    }

    /// Whether this target is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// A raw connection for assertions made behind the cache's back (`GET`, `PTTL`, …).
    pub async fn raw(&self) -> RawConnection {
        match self {
            Target::Single(s) => RawConnection::Single(s.connection().await),
            Target::Cluster(c) => RawConnection::Cluster(c.connection().await),
            Target::Upstash(u) => RawConnection::Single(u.server.connection().await),
        }
    }
}

/// A raw redis-rs connection to a [`Target`], usable with `query_async`.
#[derive(Clone)]
#[non_exhaustive]
pub enum RawConnection {
    /// To a single server.
    Single(redis::aio::MultiplexedConnection),
    /// To a Redis Cluster (commands are routed by key slot).
    Cluster(redis::cluster_async::ClusterConnection),
}

impl RawConnection {
    /// `GET key` as text (`None` when the key is absent).
    pub async fn get(&mut self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(self)
            .await
            .expect("GET")
    }

    /// `PTTL key`: milliseconds left, `-1` without a TTL, `-2` when absent.
    pub async fn pttl(&mut self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query_async(self)
            .await
            .expect("PTTL")
    }

    /// `EXISTS key`.
    pub async fn exists(&mut self, key: &str) -> bool {
        let n: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(self)
            .await
            .expect("EXISTS");
        n == 1
    }

    /// `DBSIZE`: on a cluster, summed over the primaries.
    pub async fn dbsize(&mut self) -> u64 {
        redis::cmd("DBSIZE")
            .query_async(self)
            .await
            .expect("DBSIZE")
    }

    /// `KEYS <prefix>*`, sorted (test servers hold only their test's keys).
    pub async fn keys_with_prefix(&mut self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(self)
            .await
            .expect("KEYS");
        keys.sort();
        keys
    }
}

impl redis::aio::ConnectionLike for RawConnection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RawConnection::Single(c) => c.req_packed_command(cmd),
            RawConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RawConnection::Single(c) => c.req_packed_commands(cmd, offset, count),
            RawConnection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RawConnection::Single(c) => c.get_db(),
            RawConnection::Cluster(c) => c.get_db(),
        }
    }
}
