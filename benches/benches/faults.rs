//! The fault table of `docs/failover.md`: every fault of issue 11 injected for real
//! into a loopback Redis (or Redis Cluster) while [`TASKS`] tasks call the generated
//! `CachingPolicyStore::get_policy` with the runtime's default settings, then removed.
//!
//! `cargo bench -p cacheward-benches --bench faults -- [--rounds N] [--quick] [--doc PATH] [fault...]`
//!
//! `--rounds N` (default 3): each fault is run N times, each time on fresh servers and
//! caches; the table gives the worst round and the median. `--quick`: one round.
//! `--doc PATH`: splice the table into PATH between `<!-- BEGIN faults -->` and
//! `<!-- END faults -->`. Fault names (default: all): `kill`, `sigstop`, `half-open`,
//! `partition-write`, `oom`, `wrong-password`, `client-kill`, `cluster-failover`.
//!
//! Each run: start the load ([`cacheward_benches::load`]), wait until hits have been
//! steady for a second, measure a healthy baseline, inject the fault, remove it, and
//! observe until hits have been back for a second (or give up). What is measured: the
//! slowest call from the fault on, when hits came back (the first moment after which
//! every 100 ms window has ≥ 95% hits, from the fault's end, or from its start for the
//! faults that heal themselves), the errors and stale values callers got, and what the
//! cache's counters say (breaker openings, failed Redis operations).
//!
//! The driver runs on the main thread (`block_on`), not on the runtime's two workers,
//! so its blocking calls (signals, restarting a server, waiting for the cluster to
//! settle) never stall the load.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cacheward::Cache;
use cacheward_benches::harness::median;
use cacheward_benches::load::{
    Answer, COLD_EVERY, DB_LATENCY, HIT_SHARE, HOT, Instance, Load, Recorded, TASKS, THINK,
    counters_at, hits_back,
};
use cacheward_benches::policy::{CachingPolicyStore, VersionedStore};
use cacheward_benches::report::{self, Table, ms};
use cacheward_tests::{RedisCluster, RedisServer, TcpProxy};

/// The runtime's default deadline (`docs/failover.md`), which every cache here runs
/// with: only used to count the calls that took longer.
const DEFAULT_DEADLINE: Duration = Duration::from_millis(20);
/// The healthy stretch measured before each fault.
const BASELINE: Duration = Duration::from_millis(500);
/// How long a fault that is removed by hand lasts (a killed server stays down 1 s).
const HOLD: Duration = Duration::from_millis(1_500);
const KILLED_FOR: Duration = Duration::from_secs(1);
/// When the cut-off instance writes, after the partition began.
const WRITE_AFTER: Duration = Duration::from_millis(200);
/// How long the hits may take to come back before the run gives up.
const CAP: Duration = Duration::from_secs(10);
const CLUSTER_CAP: Duration = Duration::from_secs(20);
/// The password of the wrong-password fault's server, and the one it is changed to.
const PASSWORD: &str = "faults-s3cret";
const ROTATED: &str = "faults-rotated";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill,
    Stop,
    HalfOpen,
    PartitionWrite,
    Oom,
    WrongPassword,
    ClientKill,
    ClusterFailover,
}

impl Fault {
    const ALL: [Fault; 8] = [
        Fault::Kill,
        Fault::Stop,
        Fault::HalfOpen,
        Fault::PartitionWrite,
        Fault::Oom,
        Fault::WrongPassword,
        Fault::ClientKill,
        Fault::ClusterFailover,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Stop => "sigstop",
            Fault::HalfOpen => "half-open",
            Fault::PartitionWrite => "partition-write",
            Fault::Oom => "oom",
            Fault::WrongPassword => "wrong-password",
            Fault::ClientKill => "client-kill",
            Fault::ClusterFailover => "cluster-failover",
        }
    }

    /// The fault as the table names it.
    fn label(self) -> &'static str {
        match self {
            Fault::Kill => "**kill**: `SIGKILL`, restarted on the same port 1 s later",
            Fault::Stop => "**`SIGSTOP`** for 1.5 s, then `SIGCONT`",
            Fault::HalfOpen => {
                "**half-open connection**: a proxy stops passing bytes for 1.5 s, nothing is closed"
            }
            Fault::PartitionWrite => {
                "**partition during a write**: two instances, one cut off for 1.5 s (as above) that writes 200 ms in"
            }
            Fault::Oom => {
                "**OOM**: `maxmemory 1` with `noeviction` for 1.5 s (writes refused, reads served)"
            }
            Fault::WrongPassword => {
                "**wrong password**: `requirepass` changed and clients dropped, restored 1.5 s later"
            }
            Fault::ClientKill => "**`CLIENT KILL TYPE normal`**",
            Fault::ClusterFailover => {
                "**cluster failover**: the primary of the hot keys' slots killed (3 primaries + 3 replicas)"
            }
        }
    }

    /// What "time until hits come back" is counted from.
    fn since(self) -> &'static str {
        match self {
            Fault::Kill => "the restart",
            Fault::Stop => "`SIGCONT`",
            Fault::HalfOpen | Fault::PartitionWrite => "the heal",
            Fault::Oom => "`maxmemory 0`",
            Fault::WrongPassword => "the password's restore",
            Fault::ClientKill | Fault::ClusterFailover => "the fault, which heals itself",
        }
    }
}

/// The moments of a run, from the load's start.
#[derive(Debug, Clone, Copy)]
struct Marks {
    baseline: Duration,
    fault: Duration,
    /// Where "time until hits come back" counts from: the fault's removal, or the fault
    /// itself for those that heal themselves.
    reference: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
struct RunResult {
    baseline_worst: Duration,
    baseline_over: usize,
    /// The slowest call that ended after the fault began.
    worst: Duration,
    /// When it started, relative to the fault.
    worst_at: f64,
    /// Calls that ended after the fault began and took longer than the deadline.
    over_deadline: usize,
    /// Hits back, in seconds from the reference (`None`: never stopped; `Some(None)`:
    /// not while observed).
    back: Option<Option<f64>>,
    errors: usize,
    /// Stale answers, per instance.
    stale: Vec<usize>,
    /// Breaker openings of instance 0 from the fault on.
    openings: u64,
    /// Redis operations instance 0 counted as failed from the fault on.
    cache_errors: u64,
    /// Partition during a write: from the heal until the other instance's last stale
    /// read returned; invalidations kept pending by the writer.
    other_fresh_after: Option<f64>,
    pending_kept: Option<u64>,
    /// Cluster failover: from the kill until the cluster agreed on the new primary.
    failover_took: Option<Duration>,
    /// Client kill: connections the server dropped.
    killed: Option<u64>,
}

/// The command line.
struct Config {
    rounds: usize,
    doc: Option<PathBuf>,
    only: Vec<Fault>,
}

impl Config {
    fn from_args() -> Config {
        let mut cfg = Config {
            rounds: 3,
            doc: None,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--quick" => cfg.rounds = 1,
                "--rounds" => {
                    cfg.rounds = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .expect("--rounds N (N ≥ 1)")
                }
                "--doc" => cfg.doc = Some(args.next().expect("--doc PATH").into()),
                other if other.starts_with('-') => {} // libtest flags cargo may pass
                name => cfg.only.push(
                    Fault::ALL
                        .into_iter()
                        .find(|f| f.name() == name)
                        .unwrap_or_else(|| {
                            let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                            panic!("unknown fault {name}: {}", names.join("|"))
                        }),
                ),
            }
        }
        cfg
    }

    fn faults(&self) -> Vec<Fault> {
        if self.only.is_empty() {
            Fault::ALL.to_vec()
        } else {
            self.only.clone()
        }
    }
}

fn main() {
    let cfg = Config::from_args();
    let started = report::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let machine = report::machine();
    let clock = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let faults = cfg.faults();
    let mut results: Vec<(Fault, Vec<RunResult>)> = Vec::new();
    rt.block_on(async {
        let mut run_id = 0;
        for &fault in &faults {
            let mut runs = Vec::new();
            for round in 0..cfg.rounds {
                run_id += 1;
                let t = Instant::now();
                let r = run(fault, run_id).await;
                eprintln!(
                    "{} round {round}: {r:?} ({:.1} s)",
                    fault.name(),
                    t.elapsed().as_secs_f64()
                );
                runs.push(r);
            }
            results.push((fault, runs));
        }
    });
    let took = clock.elapsed();
    let md = markdown(&cfg, &results, &started, &machine, took);
    println!("{md}");
    if let Some(path) = &cfg.doc {
        report::splice_file(path, "faults", &md);
    }
}

/// A service instance on `cache` over `db`.
fn instance(cache: Cache, db: &Arc<VersionedStore>) -> Instance {
    CachingPolicyStore::new(db.clone(), cache)
}

fn database() -> Arc<VersionedStore> {
    Arc::new(VersionedStore::with_latency(DB_LATENCY))
}

fn hot_tenants() -> Vec<String> {
    (0..HOT).map(|i| format!("tenant-{i:04}")).collect()
}

/// `CONFIG SET`, `CLIENT KILL` and the like on an admin connection; panics if the
/// server refuses (the fault would not be what the table says).
async fn admin<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> T {
    redis::cmd(args[0])
        .arg(&args[1..])
        .query_async(conn)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")))
}

/// Starts the load on `instances`, waits until every instance has served hits
/// steadily for a second, and measures the healthy baseline. Panics if the caches
/// never serve hits: the servers must be healthy before a fault means anything.
async fn start(
    instances: &[Instance],
    db: &Arc<VersionedStore>,
    hot: &[String],
    run_id: usize,
) -> (Load, Duration) {
    let load = Load::start(instances, db, hot, run_id);
    for (i, inst) in instances.iter().enumerate() {
        assert!(
            load.wait_hits(i, load.now(), Duration::ZERO, CAP).await,
            "instance {i} did not serve hits from a healthy server within {CAP:?}: {:?}",
            inst.cache().health().await
        );
    }
    let baseline = load.now();
    tokio::time::sleep(BASELINE).await;
    (load, baseline)
}

/// One run of `fault` on fresh servers and caches.
async fn run(fault: Fault, run_id: usize) -> RunResult {
    let db = database();
    let mut extra = RunResult {
        baseline_worst: Duration::ZERO,
        baseline_over: 0,
        worst: Duration::ZERO,
        worst_at: 0.0,
        over_deadline: 0,
        back: None,
        errors: 0,
        stale: Vec::new(),
        openings: 0,
        cache_errors: 0,
        other_fresh_after: None,
        pending_kept: None,
        failover_took: None,
        killed: None,
    };
    let (rec, m) = match fault {
        Fault::Kill => {
            let mut server = RedisServer::start();
            let insts = [instance(Cache::redis(&server.url()).expect("url"), &db)];
            let (load, baseline) = start(&insts, &db, &hot_tenants(), run_id).await;
            let fault = load.now();
            server.kill();
            tokio::time::sleep(KILLED_FOR).await;
            server.restart();
            let reference = load.now();
            finish(load, &marks(baseline, fault, reference), CAP).await
        }
        Fault::Stop => {
            let mut server = RedisServer::start();
            let insts = [instance(Cache::redis(&server.url()).expect("url"), &db)];
            let (load, baseline) = start(&insts, &db, &hot_tenants(), run_id).await;
            let fault = load.now();
            server.freeze();
            tokio::time::sleep(HOLD).await;
            server.thaw();
            let reference = load.now();
            finish(load, &marks(baseline, fault, reference), CAP).await
        }
        Fault::HalfOpen => {
            let server = RedisServer::start();
            let proxy = TcpProxy::start(upstream(&server)).await;
            let insts = [instance(Cache::redis(&proxy.url()).expect("url"), &db)];
            let (load, baseline) = start(&insts, &db, &hot_tenants(), run_id).await;
            let fault = load.now();
            proxy.partition();
            tokio::time::sleep(HOLD).await;
            proxy.heal();
            let reference = load.now();
            finish(load, &marks(baseline, fault, reference), CAP).await
        }
        Fault::PartitionWrite => {
            let server = RedisServer::start();
            let proxy = TcpProxy::start(upstream(&server)).await;
            let hot = hot_tenants();
            // Instance 0 is cut off and writes; instance 1 reads Redis directly.
            let insts = [
                instance(Cache::redis(&proxy.url()).expect("url"), &db),
                instance(Cache::redis(&server.url()).expect("url"), &db),
            ];
            let (load, baseline) = start(&insts, &db, &hot, run_id).await;
            let fault = load.now();
            proxy.partition();
            tokio::time::sleep(WRITE_AFTER).await;
            // The write: every hot tenant's budget is raised in the database, then the
            // cut-off instance invalidates their entries (the `DEL` cannot get through).
            for t in &hot {
                db.raise_budget(t);
            }
            let keys: Vec<String> = hot.iter().map(Instance::get_policy_key).collect();
            insts[0].cache().del_many(&keys).await;
            extra.pending_kept = Some(insts[0].cache().stats().pending_invalidations);
            tokio::time::sleep(HOLD.saturating_sub(load.now() - fault)).await;
            proxy.heal();
            let reference = load.now();
            let m = marks(baseline, fault, reference);
            // The other instance reads the new values once the replay reached Redis.
            let (rec, m) = finish_both(load, &m, CAP).await;
            let last_stale = rec
                .calls
                .iter()
                .filter(|c| c.instance == 1 && c.answer == Answer::Stale)
                .map(|c| c.end())
                .max();
            extra.other_fresh_after = Some(last_stale.map_or(0.0, |e| signed(e, reference)));
            (rec, m)
        }
        Fault::Oom => {
            let server = RedisServer::start();
            let mut conn = server.connection().await;
            let insts = [instance(Cache::redis(&server.url()).expect("url"), &db)];
            let (load, baseline) = start(&insts, &db, &hot_tenants(), run_id).await;
            let fault = load.now();
            admin::<()>(
                &mut conn,
                &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
            )
            .await;
            admin::<()>(&mut conn, &["CONFIG", "SET", "maxmemory", "1"]).await;
            let refused: redis::RedisResult<()> = redis::cmd("SET")
                .arg("faults:probe")
                .arg("x")
                .query_async(&mut conn)
                .await;
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("OOM")),
                "maxmemory 1 did not make the server refuse writes: {refused:?}"
            );
            tokio::time::sleep(HOLD).await;
            admin::<()>(&mut conn, &["CONFIG", "SET", "maxmemory", "0"]).await;
            let reference = load.now();
            finish(load, &marks(baseline, fault, reference), CAP).await
        }
        Fault::WrongPassword => {
            let server = RedisServer::start_with_args(&["--requirepass", PASSWORD]);
            let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", server.port());
            let mut conn = redis::Client::open(url.as_str())
                .expect("url")
                .get_multiplexed_async_connection()
                .await
                .expect("admin connection");
            let insts = [instance(Cache::redis(&url).expect("url"), &db)];
            let (load, baseline) = start(&insts, &db, &hot_tenants(), run_id).await;
            let fault = load.now();
            // Redis keeps connections that authenticated before a password change, so the
            // fault is the change plus the clients dropped (what a restart with the new
            // password does): the cache must reconnect and is refused.
            admin::<()>(&mut conn, &["CONFIG", "SET", "requirepass", ROTATED]).await;
            let killed: u64 = admin(
                &mut conn,
                &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
            )
            .await;
            assert!(killed >= 1, "the cache had no connection to drop");
            tokio::time::sleep(HOLD).await;
            admin::<()>(&mut conn, &["CONFIG", "SET", "requirepass", PASSWORD]).await;
            let reference = load.now();
            finish(load, &marks(baseline, fault, reference), CAP).await
        }
        Fault::ClientKill => {
            let server = RedisServer::start();
            let mut conn = server.connection().await;
            let insts = [instance(Cache::redis(&server.url()).expect("url"), &db)];
            let (load, baseline) = start(&insts, &db, &hot_tenants(), run_id).await;
            let fault = load.now();
            let killed: u64 = admin(
                &mut conn,
                &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
            )
            .await;
            assert!(killed >= 1, "the cache had no connection to kill");
            extra.killed = Some(killed);
            finish(load, &marks(baseline, fault, fault), CAP).await
        }
        Fault::ClusterFailover => {
            let cluster = RedisCluster::start();
            let (slot, hot) = hot_on_one_primary(&cluster);
            let cache = Cache::redis_cluster(cluster.seeds()).expect("seeds");
            let insts = [instance(cache, &db)];
            let (load, baseline) = start(&insts, &db, &hot, run_id).await;
            let fault = load.now();
            let failover = cluster.kill_primary_of_slot(slot).await;
            extra.failover_took = Some(failover.took);
            finish(load, &marks(baseline, fault, fault), CLUSTER_CAP).await
        }
    };
    analyse(rec, m, extra)
}

fn marks(baseline: Duration, fault: Duration, reference: Duration) -> Marks {
    Marks {
        baseline,
        fault,
        reference,
    }
}

fn upstream(server: &RedisServer) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], server.port()))
}

/// Eight tenants whose keys live on one primary, and a slot of theirs.
fn hot_on_one_primary(cluster: &RedisCluster) -> (u16, Vec<String>) {
    let primaries = cluster.primaries();
    let primary_of = |tenant: &str| {
        let slot = cluster.keyslot(&Instance::get_policy_key(tenant));
        let port = primaries
            .iter()
            .find(|p| p.serves(slot))
            .unwrap_or_else(|| panic!("no primary serves slot {slot}"))
            .port;
        (slot, port)
    };
    let first = "tenant-0000".to_owned();
    let (slot, port) = primary_of(&first);
    let mut hot = vec![first];
    for i in 1.. {
        if hot.len() == HOT {
            break;
        }
        let t = format!("tenant-{i:04}");
        if primary_of(&t).1 == port {
            hot.push(t);
        }
    }
    (slot, hot)
}

/// Observes until hits on instance 0 have been back for a second (or `cap` after the
/// reference), then stops the load.
async fn finish(load: Load, m: &Marks, cap: Duration) -> (Recorded, Marks) {
    load.wait_hits(0, m.reference, Duration::ZERO, cap).await;
    (load.finish().await, *m)
}

/// [`finish`] for both instances.
async fn finish_both(load: Load, m: &Marks, cap: Duration) -> (Recorded, Marks) {
    load.wait_hits(0, m.reference, Duration::ZERO, cap).await;
    load.wait_hits(1, m.reference, Duration::ZERO, cap).await;
    (load.finish().await, *m)
}

/// `t - from` in seconds, negative when `t` is earlier.
fn signed(t: Duration, from: Duration) -> f64 {
    t.as_secs_f64() - from.as_secs_f64()
}

/// With `FAULTS_TRACE=1`, prints instance 0's reads per 100 ms around the fault.
fn trace(rec: &Recorded, m: &Marks) {
    if std::env::var_os("FAULTS_TRACE").is_none() {
        return;
    }
    for w in rec.samples.windows(11).step_by(10) {
        let (a, b) = (&w[0].counters[0], &w[10].counters[0]);
        let calls = rec
            .calls
            .iter()
            .filter(|c| c.instance == 0 && c.start >= w[0].at && c.start < w[10].at);
        let slow = calls
            .clone()
            .filter(|c| c.latency > DEFAULT_DEADLINE)
            .count();
        let worst = calls.map(|c| c.latency).max().unwrap_or_default();
        eprintln!(
            "  {:+.2} s: hits {:>4} misses {:>4} errors {:>3} openings {} pending {} slow {slow:>3} worst {}",
            signed(w[0].at, m.reference),
            b.hits - a.hits,
            b.misses - a.misses,
            b.errors - a.errors,
            b.openings,
            b.pending,
            ms(worst),
        );
    }
}

fn analyse(rec: Recorded, m: Marks, mut r: RunResult) -> RunResult {
    trace(&rec, &m);
    let baseline = rec
        .calls
        .iter()
        .filter(|c| c.start >= m.baseline && c.end() <= m.fault);
    r.baseline_worst = baseline
        .clone()
        .map(|c| c.latency)
        .max()
        .unwrap_or_default();
    r.baseline_over = baseline.filter(|c| c.latency > DEFAULT_DEADLINE).count();
    let during: Vec<_> = rec.calls.iter().filter(|c| c.end() > m.fault).collect();
    if let Some(w) = during.iter().max_by_key(|c| c.latency) {
        r.worst = w.latency;
        r.worst_at = signed(w.start, m.fault);
    }
    r.over_deadline = during
        .iter()
        .filter(|c| c.latency > DEFAULT_DEADLINE)
        .count();
    r.errors = rec
        .calls
        .iter()
        .filter(|c| c.answer == Answer::Error)
        .count();
    let instances = rec.samples.first().map_or(1, |s| s.counters.len());
    r.stale = (0..instances)
        .map(|i| {
            rec.calls
                .iter()
                .filter(|c| c.instance == i && c.answer == Answer::Stale)
                .count()
        })
        .collect();
    r.back = hits_back(&rec.samples, 0, m.fault).map(|b| b.map(|t| signed(t, m.reference)));
    let last = rec.samples.last().map_or(m.fault, |s| s.at);
    let (before, after) = (
        counters_at(&rec.samples, 0, m.fault),
        counters_at(&rec.samples, 0, last),
    );
    r.openings = after.openings - before.openings;
    r.cache_errors = after.errors - before.errors;
    r
}

/// `worst (median m)` of durations over rounds.
fn worst_and_median(values: &[Duration]) -> String {
    let worst = values.iter().max().copied().unwrap_or_default();
    if values.len() < 2 {
        return ms(worst);
    }
    let med = median(&values.iter().map(Duration::as_secs_f64).collect::<Vec<_>>());
    format!(
        "{} (median {})",
        ms(worst),
        ms(Duration::from_secs_f64(med))
    )
}

/// Seconds, signed: `"1.02 s"`, `"-0.10 s"`.
fn secs(s: f64) -> String {
    format!("{s:.2} s")
}

/// The "time until hits come back" cell.
fn back_cell(fault: Fault, runs: &[RunResult]) -> String {
    let never_back = runs.iter().filter(|r| matches!(r.back, Some(None))).count();
    if never_back > 0 {
        let cap = if fault == Fault::ClusterFailover {
            CLUSTER_CAP
        } else {
            CAP
        };
        return format!(
            "**not within {} s** in {never_back} of {} rounds",
            cap.as_secs(),
            runs.len()
        );
    }
    let never_stopped = runs.iter().filter(|r| r.back.is_none()).count();
    if never_stopped == runs.len() {
        return "never stopped".to_owned();
    }
    let values: Vec<f64> = runs.iter().filter_map(|r| r.back.flatten()).collect();
    let worst = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut cell = format!("{} after {}", secs(worst), fault.since());
    if values.len() > 1 {
        let _ = write!(cell, " (median {})", secs(median(&values)));
    }
    if never_stopped > 0 {
        let _ = write!(
            cell,
            "; never stopped in {never_stopped} of {} rounds",
            runs.len()
        );
    }
    cell
}

/// Medians over rounds of a count, as `"3"` or `"3 (2–5)"`.
fn count_cell(values: &[u64]) -> String {
    let med = median(&values.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let (lo, hi) = (
        values.iter().min().copied().unwrap_or(0),
        values.iter().max().copied().unwrap_or(0),
    );
    if lo == hi {
        format!("{lo}")
    } else {
        format!("{med:.0} ({lo}–{hi})")
    }
}

/// The "what a caller sees" cell: what the counters and the answers say.
fn sees_cell(fault: Fault, runs: &[RunResult]) -> String {
    let per = |f: &dyn Fn(&RunResult) -> u64| count_cell(&runs.iter().map(f).collect::<Vec<_>>());
    let mut parts = vec![format!(
        "{} calls over the deadline",
        per(&|r| r.over_deadline as u64)
    )];
    match fault {
        Fault::PartitionWrite => {
            let fresh: Vec<f64> = runs.iter().filter_map(|r| r.other_fresh_after).collect();
            parts.push(format!(
                "the writer kept {} invalidations pending and served {} stale values; \
                 the other instance served {} stale values (the old budget, as Redis held it) \
                 and read the new one {} after the heal (median {})",
                per(&|r| r.pending_kept.unwrap_or(0)),
                per(&|r| r.stale[0] as u64),
                per(&|r| r.stale.get(1).copied().unwrap_or(0) as u64),
                secs(fresh.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                secs(median(&fresh)),
            ));
        }
        _ => parts.push(format!(
            "{} stale values",
            per(&|r| r.stale.iter().sum::<usize>() as u64)
        )),
    }
    parts.push(format!(
        "cache: breaker opened {}×, {} failed Redis operations counted",
        per(&|r| r.openings),
        per(&|r| r.cache_errors)
    ));
    if fault == Fault::ClusterFailover {
        let took: Vec<Duration> = runs.iter().filter_map(|r| r.failover_took).collect();
        parts.push(format!(
            "the cluster itself took {} to agree on the new primary",
            worst_and_median(&took)
        ));
    }
    if fault == Fault::ClientKill {
        parts.push(format!(
            "connections the server dropped: {}",
            per(&|r| r.killed.unwrap_or(0))
        ));
    }
    parts.join("; ")
}

fn markdown(
    cfg: &Config,
    results: &[(Fault, Vec<RunResult>)],
    started: &str,
    machine: &str,
    took: Duration,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "_Generated by `cargo bench -p cacheward-benches --bench faults` on {started}, in {:.0} s: \
         {} round(s) per fault, each on fresh servers and caches; {TASKS} tasks call the generated \
         `CachingPolicyStore::get_policy` ({HOT} hot tenants, one call in {COLD_EVERY} a new \
         tenant; {} ms between calls; the database answers in {} ms) with the runtime's defaults \
         ({} ms deadline, breaker after 5 failures, 1 s cool-down). Worst over rounds, median in \
         brackets; \"hits back\" is the first moment after which every 100 ms window has ≥ {:.0}% \
         hits, counted from the fault's removal (or from the fault, for those that heal \
         themselves)._\n\n_Machine: {machine}._\n",
        took.as_secs_f64(),
        cfg.rounds,
        THINK.as_millis(),
        DB_LATENCY.as_millis(),
        DEFAULT_DEADLINE.as_millis(),
        HIT_SHARE * 100.0,
    );
    let mut t = Table::new(&[
        "fault",
        "worst call",
        "time until hits come back",
        "errors seen by callers",
        "what a caller sees",
    ]);
    let all: Vec<&RunResult> = results.iter().flat_map(|(_, r)| r).collect();
    let baseline: Vec<Duration> = all.iter().map(|r| r.baseline_worst).collect();
    t.row(vec![
        format!("none: the {} ms before each fault", BASELINE.as_millis()),
        worst_and_median(&baseline),
        "-".into(),
        "0".into(),
        format!(
            "{} calls over the deadline",
            count_cell(
                &all.iter()
                    .map(|r| r.baseline_over as u64)
                    .collect::<Vec<_>>()
            )
        ),
    ]);
    for (fault, runs) in results {
        let worst: Vec<Duration> = runs.iter().map(|r| r.worst).collect();
        let errors: usize = runs.iter().map(|r| r.errors).sum();
        t.row(vec![
            fault.label().to_owned(),
            worst_and_median(&worst),
            back_cell(*fault, runs),
            if errors == 0 {
                "0".to_owned()
            } else {
                format!("**{errors}**")
            },
            sees_cell(*fault, runs),
        ]);
    }
    md.push_str(&t.to_markdown());
    md
}
