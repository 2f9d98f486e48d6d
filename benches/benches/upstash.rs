//! What one operation costs over Upstash's REST API compared with Redis over TCP, in
//! the same run, on loopback.
//!
//! `cargo bench -p cacheward-benches --bench upstash -- [--rounds N] [--secs S] [--doc PATH]`
//!
//! Two caches on one private redis-server: `tcp` talks RESP to it directly; `rest`
//! talks to the test harness's REST front (`cacheward_tests::UpstashFront`), which
//! forwards each command to the same server. Both run the same operations: a hit
//! (`GET` of a ~300-byte JSON policy), a `SET`, a rate-limiter check (one script run)
//! and a batch read of 100 keys. Every round runs both variants of every cell, in an
//! order rotated per round; the table gives medians over rounds and the per-round
//! ratio rest/tcp (median and range). With `--doc PATH` the table is spliced into
//! PATH between `<!-- BEGIN upstash -->` and `<!-- END upstash -->`.
//!
//! On loopback the network costs next to nothing, so the ratio is the protocol's own
//! cost (HTTP/1.1 framing, JSON, base64, one connection per in-flight request and the
//! front's hop to Redis); against a hosted database the network round trip dominates
//! both.

use std::path::PathBuf;
use std::time::Duration;

use cacheward::{Algorithm, Cache, RateLimiter};
use cacheward_benches::harness::{Summary, median, range, run_tasks};
use cacheward_benches::policy::{TenantLlmPolicy, policy_key};
use cacheward_benches::report::{Table, ops, ratio_with_range, us};
use cacheward_tests::{RedisServer, UpstashFront};

const TOKEN: &str = "bench-token";
const KEYS: usize = 100;
const DEADLINE: Duration = Duration::from_millis(500);
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Hit,
    Set,
    RateLimit,
    Batch,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Hit => "hit (GET)",
            Op::Set => "SET",
            Op::RateLimit => "rate-limiter check (script)",
            Op::Batch => "batch read (100 keys)",
        }
    }
}

struct Config {
    rounds: usize,
    secs: f64,
    doc: Option<PathBuf>,
}

impl Config {
    fn from_args() -> Config {
        let mut cfg = Config {
            rounds: 5,
            secs: 1.0,
            doc: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--rounds" => cfg.rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(5),
                "--secs" => cfg.secs = args.next().and_then(|v| v.parse().ok()).unwrap_or(1.0),
                "--doc" => cfg.doc = args.next().map(PathBuf::from),
                "--quick" => {
                    cfg.rounds = 1;
                    cfg.secs = 0.2;
                }
                // cargo bench passes --bench; anything else is ignored.
                _ => {}
            }
        }
        cfg
    }
}

/// One cell: `op` on `cache` by `tasks` tasks. Every operation must do what it
/// measures (a hit, an enforced check, 100 values), or the cell counts failures.
async fn cell(cache: &Cache, op: Op, tasks: usize, window: Duration) -> Summary {
    let limiter = RateLimiter::new(
        cache,
        "bench",
        Algorithm::fixed_window(u64::MAX / 4, Duration::from_secs(3600)),
    );
    let keys: Vec<String> = (0..KEYS).map(|i| policy_key(&format!("t{i}"))).collect();
    let keys = std::sync::Arc::new(keys);
    let value = TenantLlmPolicy::sample("t0");
    run_tasks(
        tasks,
        Duration::from_millis(250),
        window,
        |task, mut probe| {
            let cache = cache.clone();
            let limiter = limiter.clone();
            let keys = keys.clone();
            let value = value.clone();
            async move {
                let mut i = task;
                while probe.running() {
                    i = (i + 1) % KEYS;
                    match op {
                        Op::Hit => {
                            let got: Option<TenantLlmPolicy> =
                                probe.time(cache.get(&keys[i])).await;
                            if got.is_none() {
                                probe.fail();
                            }
                        }
                        Op::Set => probe.time(cache.set(&keys[i], &value, HOUR)).await,
                        Op::RateLimit => {
                            let d = probe.time(limiter.check_detailed("client")).await;
                            if d.degraded {
                                probe.fail();
                            }
                        }
                        Op::Batch => {
                            let got: Vec<Option<TenantLlmPolicy>> =
                                probe.time(cache.get_many(&keys[..])).await;
                            if got.iter().any(Option::is_none) {
                                probe.fail();
                            }
                        }
                    }
                }
                probe
            }
        },
    )
    .await
}

fn main() {
    let cfg = Config::from_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = RedisServer::start();
    let table = rt.block_on(async {
        let front = UpstashFront::start(&server, TOKEN).await;
        let tcp = Cache::builder()
            .redis_url(server.url())
            .deadline(DEADLINE)
            .build()
            .expect("tcp cache");
        let rest = front
            .builder()
            .deadline(DEADLINE)
            .build()
            .expect("rest cache");
        let value = TenantLlmPolicy::sample("t0");
        for i in 0..KEYS {
            tcp.set(&policy_key(&format!("t{i}")), &value, HOUR).await;
        }
        let window = Duration::from_secs_f64(cfg.secs);
        let mut table = Table::new(&[
            "operation",
            "tasks",
            "tcp p50 (µs)",
            "rest p50 (µs)",
            "tcp ops/s",
            "rest ops/s",
            "rest/tcp p50 (range)",
            "tcp/rest ops/s (range)",
        ]);
        for op in [Op::Hit, Op::Set, Op::RateLimit, Op::Batch] {
            for tasks in [1, 16] {
                let mut runs: Vec<(Summary, Summary)> = Vec::new();
                for round in 0..cfg.rounds {
                    let (t, r) = if round % 2 == 0 {
                        let t = cell(&tcp, op, tasks, window).await;
                        (t, cell(&rest, op, tasks, window).await)
                    } else {
                        let r = cell(&rest, op, tasks, window).await;
                        (cell(&tcp, op, tasks, window).await, r)
                    };
                    assert_eq!(t.failures + r.failures, 0, "{op:?}: failed operations");
                    runs.push((t, r));
                }
                let med = |f: &dyn Fn(&(Summary, Summary)) -> f64| {
                    median(&runs.iter().map(f).collect::<Vec<_>>())
                };
                let latency = |f: &dyn Fn(&(Summary, Summary)) -> f64| {
                    us(Duration::from_nanos(med(f) as u64))
                };
                let p50_ratio: Vec<f64> = runs
                    .iter()
                    .map(|(t, r)| r.p50.as_secs_f64() / t.p50.as_secs_f64())
                    .collect();
                let ops_ratio: Vec<f64> = runs
                    .iter()
                    .map(|(t, r)| t.ops_per_sec / r.ops_per_sec)
                    .collect();
                table.row(vec![
                    op.name().to_owned(),
                    tasks.to_string(),
                    latency(&|(t, _)| t.p50.as_nanos() as f64),
                    latency(&|(_, r)| r.p50.as_nanos() as f64),
                    ops(med(&|(t, _)| t.ops_per_sec)),
                    ops(med(&|(_, r)| r.ops_per_sec)),
                    ratio_with_range(median(&p50_ratio), range(&p50_ratio)),
                    ratio_with_range(median(&ops_ratio), range(&ops_ratio)),
                ]);
                eprintln!("{} x{tasks}: done", op.name());
            }
        }
        table
    });
    let markdown = format!(
        "{} rounds of {} s per cell, 2 worker threads, redis-server and the REST front on loopback.\n\n{}",
        cfg.rounds,
        cfg.secs,
        table.to_markdown()
    );
    println!("{markdown}");
    if let Some(path) = cfg.doc {
        let doc = std::fs::read_to_string(&path).expect("read the doc");
        let doc = cacheward_benches::report::splice(&doc, "upstash", &markdown)
            .expect("the doc has the upstash markers");
        std::fs::write(&path, doc).expect("write the doc");
    }
}
