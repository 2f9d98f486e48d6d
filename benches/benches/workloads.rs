//! Issue 5's workloads 1-6, against a private redis-server on loopback:
//! hit path, miss path, degraded (Redis frozen), stampede, rate limiter, batch.
//!
//! `cargo bench -p cacheward-benches --bench workloads -- [options] [workload...]`
//!
//! Options: `--rounds N` (default 10), `--secs S` (measured window per cell, default 1),
//! `--quick` (1 round, short windows: a smoke run), `--doc PATH` (splice the tables into
//! PATH between `<!-- BEGIN workloads -->` and `<!-- END workloads -->`). Workload names:
//! `hit`, `miss`, `degraded`, `stampede`, `ratelimit`, `batch` (default: all).
//!
//! Every workload runs all its variants once per round, in a rotated order, so ratios
//! are taken between variants measured in the same round; tables show the median over
//! rounds (ratios: median and range of the per-round ratios).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cached::ConcurrentCachedAsync as _;
use cacheward::Cache;
use cacheward_benches::harness::{Summary, median, range, run_tasks};
use cacheward_benches::policy::{
    BackingStore, CachingPolicyStore, HandCachedPolicyStore, PolicyStore, TenantLlmPolicy,
    policy_key,
};
use cacheward_benches::report::{self, Check, Table, Verdict, ops, ratio, ratio_with_range};
use cacheward_tests::RedisServer;
use redis::AsyncCommands as _;

const TENANTS: usize = 1_000;
const CONCURRENCY: [usize; 2] = [1, 64];
const BACKING_LATENCY: Duration = Duration::from_millis(2);
/// The deadline of the caches measured on a healthy server: redis-rs's default response
/// timeout, which the floor's connection and `cached`'s run with. The runtime's default
/// (20 ms) is for production, where a stalled cache must not hold a request; on this
/// shared 2-core machine other processes stall ours for longer than that, which would
/// open the breaker mid-measurement and turn hits into inner calls (see the findings).
const BENCH_DEADLINE: Duration = Duration::from_millis(500);

/// `--deadline-ms N` overrides [`BENCH_DEADLINE`] (to see how the runtime's default
/// copes with this machine's stalls: the re-run cells say).
static DEADLINE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// A cache on `server` with [`BENCH_DEADLINE`] (or `--deadline-ms`).
fn bench_cache(server: &RedisServer) -> Cache {
    bench_cache_at(&server.url())
}

fn bench_cache_at(url: &str) -> Cache {
    Cache::builder()
        .redis_url(url)
        .deadline(*DEADLINE.get().unwrap_or(&BENCH_DEADLINE))
        .build()
        .expect("cache url")
}

/// Whether the cache failed no operation since `before`: a cell that timed out or
/// short-circuited measured something other than what it claims.
fn clean(cache: &Cache, before: cacheward::CacheStats) -> bool {
    let now = cache.stats();
    now.errors == before.errors
        && now.timeouts == before.timeouts
        && now.short_circuited == before.short_circuited
        && now.breaker_openings == before.breaker_openings
}

/// Runs a cell until it is valid (no failed operation, `attempt` says it is clean), up
/// to 3 times, waiting out the breaker's cool-down between attempts. Returns the summary
/// and how many attempts were thrown away. Panics if no attempt was valid: a benchmark
/// that measured misses or degraded checks must not report them as hits.
async fn valid_cell<F, Fut>(what: &str, mut attempt: F) -> (Summary, usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (Summary, bool)>,
{
    for retry in 0..3 {
        let (s, ok) = attempt().await;
        if ok && s.failures == 0 {
            return (s, retry);
        }
        eprintln!(
            "{what}: the cell saw cache failures ({} failed operations, clean: {ok}); \
             waiting for the breaker's cool-down and re-running it",
            s.failures
        );
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    panic!("{what}: three attempts in a row saw cache failures; the machine is too loaded");
}

struct Config {
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    only: Vec<String>,
    doc: Option<PathBuf>,
    /// `--profile VARIANT --ops N`: N sequential hits of one variant, for
    /// `perf stat` / callgrind (instructions per operation = difference of two N).
    profile: Option<(String, u64)>,
    /// `--tasks N` with `--profile`: N concurrent tasks on a 2-worker runtime.
    profile_tasks: usize,
    /// `--url URL` with `--profile`: use that server instead of starting one (so that
    /// `perf stat` with inheritance counts the benchmark's threads only).
    profile_url: Option<String>,
}

impl Config {
    fn from_args() -> Config {
        let mut cfg = Config {
            rounds: 10,
            warmup: Duration::from_millis(250),
            measure: Duration::from_secs(1),
            only: Vec::new(),
            doc: None,
            profile: None,
            profile_tasks: 0,
            profile_url: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--bench" => {}
                "--quick" => {
                    cfg.rounds = 1;
                    cfg.warmup = Duration::from_millis(100);
                    cfg.measure = Duration::from_millis(300);
                }
                "--rounds" => {
                    cfg.rounds = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .expect("--rounds N");
                }
                "--secs" => {
                    let s: f64 = args.next().and_then(|v| v.parse().ok()).expect("--secs S");
                    cfg.measure = Duration::from_secs_f64(s);
                }
                "--doc" => cfg.doc = Some(args.next().expect("--doc PATH").into()),
                "--deadline-ms" => {
                    let ms: u64 = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .expect("--deadline-ms N");
                    let _ = DEADLINE.set(Duration::from_millis(ms));
                }
                "--profile" => {
                    let v = args
                        .next()
                        .expect("--profile floor|generated|cached|cache-get");
                    cfg.profile = Some((v, cfg.profile.as_ref().map_or(10_000, |p| p.1)));
                }
                "--tasks" => {
                    cfg.profile_tasks =
                        args.next().and_then(|v| v.parse().ok()).expect("--tasks N");
                }
                "--url" => cfg.profile_url = Some(args.next().expect("--url URL")),
                "--ops" => {
                    let n: u64 = args.next().and_then(|v| v.parse().ok()).expect("--ops N");
                    let v = cfg.profile.take().map_or_else(String::new, |p| p.0);
                    cfg.profile = Some((v, n));
                }
                other if other.starts_with('-') => {} // libtest flags cargo may pass
                name => cfg.only.push(name.to_owned()),
            }
        }
        cfg
    }

    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

/// What a workload produced: its markdown and its target checks.
#[derive(Default)]
struct Output {
    markdown: String,
    checks: Vec<Check>,
}

fn tenants() -> Arc<Vec<String>> {
    Arc::new((0..TENANTS).map(|i| format!("tenant-{i:04}")).collect())
}

/// Rotates `items` by `round`, so no variant always runs first.
fn rotated<T: Copy>(items: &[T], round: usize) -> Vec<T> {
    let mut v = items.to_vec();
    let n = v.len();
    v.rotate_left(round % n);
    v
}

/// Per (tasks, variant): one summary per round.
type Runs<V> = BTreeMap<(usize, V), Vec<Summary>>;

fn med<V: Ord + Copy>(runs: &Runs<V>, tasks: usize, v: V, f: impl Fn(&Summary) -> f64) -> f64 {
    runs.get(&(tasks, v))
        .map_or(f64::NAN, |s| median(&s.iter().map(f).collect::<Vec<_>>()))
}

fn us_of(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1_000.0
}

/// Per-round ratio `f(num) / f(den)`, as (median, (min, max)).
fn ratio_runs<V: Ord + Copy>(
    runs: &Runs<V>,
    tasks: usize,
    num: V,
    den: V,
    f: impl Fn(&Summary) -> f64,
) -> (f64, (f64, f64)) {
    let (Some(n), Some(d)) = (runs.get(&(tasks, num)), runs.get(&(tasks, den))) else {
        return (f64::NAN, (f64::NAN, f64::NAN));
    };
    let r: Vec<f64> = n.iter().zip(d).map(|(n, d)| f(n) / f(d)).collect();
    (median(&r), range(&r))
}

fn summary_table<V: Ord + Copy>(
    runs: &Runs<V>,
    tasks: usize,
    variants: &[(V, &str)],
    pending: &[(&str, &str)],
) -> String {
    let mut t = Table::new(&["variant", "ops/s", "p50 µs", "p99 µs", "p99.9 µs"]);
    for (v, name) in variants {
        t.row(vec![
            (*name).to_owned(),
            ops(med(runs, tasks, *v, |s| s.ops_per_sec)),
            report::us_f(med(runs, tasks, *v, |s| us_of(s.p50))),
            report::us_f(med(runs, tasks, *v, |s| us_of(s.p99))),
            report::us_f(med(runs, tasks, *v, |s| us_of(s.p999))),
        ]);
    }
    for (name, why) in pending {
        t.row(vec![
            (*name).to_owned(),
            format!("not measured: {why}"),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    t.to_markdown()
}

/// A line saying how many cells were re-run, or nothing.
fn rerun_note(rerun: usize) -> String {
    if rerun == 0 {
        String::new()
    } else {
        format!(
            "_{rerun} cell(s) were measured again because the cache failed operations \
             during them (the machine stalled past the deadline); only valid cells are \
             reported._\n\n"
        )
    }
}

// ---------------------------------------------------------------- 1. hit path

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Hit {
    Floor,
    FloorClone,
    Generated,
    Cached,
    CacheGet,
}

struct HitState {
    tenants: Arc<Vec<String>>,
    floor: redis::aio::MultiplexedConnection,
    cache: Cache,
    inner: Arc<BackingStore>,
    generated: Arc<CachingPolicyStore<Arc<BackingStore>>>,
    cached: Arc<cached::AsyncRedisCache<String, TenantLlmPolicy>>,
}

async fn hit_state(server: &RedisServer) -> HitState {
    hit_state_at(&server.url()).await
}

async fn hit_state_at(url: &str) -> HitState {
    let tenants = tenants();
    let mut floor = redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect the floor");
    let cache = bench_cache_at(url);
    let cached = cached::AsyncRedisCache::<String, TenantLlmPolicy>::builder("bench-cached")
        .connection_string(url)
        .ttl(Duration::from_secs(3_600))
        .build()
        .await
        .expect("cached's AsyncRedisCache");
    for t in tenants.iter() {
        let p = TenantLlmPolicy::sample(t);
        let bytes = serde_json::to_vec(&p).expect("json");
        let _: () = floor
            .set_ex(format!("floor:policy:{t}"), bytes, 3_600)
            .await
            .expect("populate floor keys");
        cache
            .set(&policy_key(t), &p, Duration::from_secs(3_600))
            .await;
        cached
            .async_cache_set(t.clone(), p)
            .await
            .expect("populate cached's keys");
    }
    let inner = Arc::new(BackingStore::instant());
    HitState {
        tenants,
        floor,
        generated: Arc::new(CachingPolicyStore::new(inner.clone(), cache.clone())),
        inner,
        cache,
        cached: Arc::new(cached),
    }
}

async fn run_hit(st: &HitState, v: Hit, tasks: usize, cfg: &Config) -> Summary {
    let tenants = st.tenants.clone();
    let n = tenants.len();
    match v {
        Hit::Floor | Hit::FloorClone => {
            let per_op_clone = v == Hit::FloorClone;
            let conn = st.floor.clone();
            run_tasks(tasks, cfg.warmup, cfg.measure, move |task, mut probe| {
                let mut conn = conn.clone();
                let tenants = tenants.clone();
                async move {
                    let mut i = task * 7_919;
                    while probe.running() {
                        let t = &tenants[i % n];
                        i += 1;
                        let got = probe
                            .time(async {
                                let key = format!("floor:policy:{t}");
                                let bytes: Option<Vec<u8>> = if per_op_clone {
                                    // What `cached` and `ConnectionManager` do per call.
                                    conn.clone().get(&key).await.ok().flatten()
                                } else {
                                    conn.get(&key).await.ok().flatten()
                                };
                                bytes.and_then(|b| {
                                    serde_json::from_slice::<TenantLlmPolicy>(&b).ok()
                                })
                            })
                            .await;
                        if got.is_none() {
                            probe.fail();
                        }
                    }
                    probe
                }
            })
            .await
        }
        Hit::CacheGet => {
            let cache = st.cache.clone();
            run_tasks(tasks, cfg.warmup, cfg.measure, move |task, mut probe| {
                let cache = cache.clone();
                let tenants = tenants.clone();
                async move {
                    let mut i = task * 7_919;
                    while probe.running() {
                        let t = &tenants[i % n];
                        i += 1;
                        let got = probe
                            .time(cache.get::<TenantLlmPolicy>(&policy_key(t)))
                            .await;
                        if got.is_none() {
                            probe.fail();
                        }
                    }
                    probe
                }
            })
            .await
        }
        Hit::Generated => {
            let store = st.generated.clone();
            run_tasks(tasks, cfg.warmup, cfg.measure, move |task, mut probe| {
                let store = store.clone();
                let tenants = tenants.clone();
                async move {
                    let mut i = task * 7_919;
                    while probe.running() {
                        let t = &tenants[i % n];
                        i += 1;
                        let got = probe.time((*store).get_policy(t)).await;
                        if !matches!(got, Ok(Some(_))) {
                            probe.fail();
                        }
                    }
                    probe
                }
            })
            .await
        }
        Hit::Cached => {
            let cached = st.cached.clone();
            run_tasks(tasks, cfg.warmup, cfg.measure, move |task, mut probe| {
                let cached = cached.clone();
                let tenants = tenants.clone();
                async move {
                    let mut i = task * 7_919;
                    while probe.running() {
                        let t = &tenants[i % n];
                        i += 1;
                        let got = probe.time(cached.async_cache_get(t)).await;
                        if !matches!(got, Ok(Some(_))) {
                            probe.fail();
                        }
                    }
                    probe
                }
            })
            .await
        }
    }
}

async fn hit_path(cfg: &Config, server: &RedisServer) -> Output {
    let st = hit_state(server).await;
    let variants = [
        Hit::Floor,
        Hit::Generated,
        Hit::Cached,
        Hit::CacheGet,
        Hit::FloorClone,
    ];
    let mut runs: Runs<Hit> = BTreeMap::new();
    let mut rerun = 0;
    for round in 0..cfg.rounds {
        for tasks in CONCURRENCY {
            for v in rotated(&variants, round) {
                let st = &st;
                let (s, retried) = valid_cell("hit path", || async move {
                    let before = st.cache.stats();
                    let calls = st.inner.calls();
                    let s = run_hit(st, v, tasks, cfg).await;
                    let ok = clean(&st.cache, before) && st.inner.calls() == calls;
                    if !ok {
                        eprintln!(
                            "hit path, {v:?} at {tasks} tasks: cache stats before {before:?}, after {:?}",
                            st.cache.stats()
                        );
                    }
                    (s, ok)
                })
                .await;
                rerun += retried;
                eprintln!("hit round {round} tasks {tasks:>2} {v:?}: {s:?}");
                runs.entry((tasks, v)).or_default().push(s);
            }
        }
    }
    let names = [
        (Hit::Floor, "(a) redis-rs `GET` + serde_json (floor)"),
        (
            Hit::FloorClone,
            "(a′) the floor, connection handle cloned per call",
        ),
        (
            Hit::Generated,
            "(b) generated `CachingPolicyStore::get_policy`",
        ),
        (
            Hit::Cached,
            "(c) `cached` 4.1 `AsyncRedisCache::async_cache_get`",
        ),
        (Hit::CacheGet, "(d) `Cache::get` (runtime alone)"),
    ];
    let pending: [(&str, &str); 0] = [];
    let mut md = String::from("### 1. Hit path\n\n");
    md.push_str(&rerun_note(rerun));
    md.push_str(
        "1,000 tenants' policies pre-loaded; each operation reads one (all hits). One connection \
         per variant, shared by all tasks.\n\n",
    );
    for tasks in CONCURRENCY {
        let _ = writeln!(
            md,
            "**{tasks} task{}** (medians over {} rounds):\n",
            if tasks == 1 { "" } else { "s" },
            cfg.rounds
        );
        md.push_str(&summary_table(&runs, tasks, &names, &pending));
        md.push('\n');
    }
    md.push_str("Ratios, taken within each round (median, and range over rounds):\n\n");
    let mut t = Table::new(&["ratio", "1 task", "64 tasks"]);
    let rows: [(&str, Hit, Hit, bool); 9] = [
        (
            "**b/a throughput** (decorator vs floor)",
            Hit::Generated,
            Hit::Floor,
            true,
        ),
        (
            "**b/a p99** (decorator vs floor)",
            Hit::Generated,
            Hit::Floor,
            false,
        ),
        (
            "**b/c throughput** (decorator vs `cached`)",
            Hit::Generated,
            Hit::Cached,
            true,
        ),
        (
            "b/d throughput (decorator vs `Cache::get`)",
            Hit::Generated,
            Hit::CacheGet,
            true,
        ),
        (
            "d/a throughput (runtime vs floor)",
            Hit::CacheGet,
            Hit::Floor,
            true,
        ),
        (
            "d/a p99 (runtime vs floor)",
            Hit::CacheGet,
            Hit::Floor,
            false,
        ),
        (
            "c/a throughput (`cached` vs floor)",
            Hit::Cached,
            Hit::Floor,
            true,
        ),
        (
            "a′/a throughput (cost of a handle clone per call)",
            Hit::FloorClone,
            Hit::Floor,
            true,
        ),
        (
            "b/a′ throughput (decorator vs floor with per-call clone)",
            Hit::Generated,
            Hit::FloorClone,
            true,
        ),
    ];
    for (label, num, den, throughput) in rows {
        let f = move |s: &Summary| {
            if throughput {
                s.ops_per_sec
            } else {
                us_of(s.p99)
            }
        };
        let cells: Vec<String> = CONCURRENCY
            .iter()
            .map(|&tasks| {
                let (m, r) = ratio_runs(&runs, tasks, num, den, f);
                ratio_with_range(m, r)
            })
            .collect();
        t.row(vec![label.to_owned(), cells[0].clone(), cells[1].clone()]);
    }
    md.push_str(&t.to_markdown());
    let (ba, _) = ratio_runs(&runs, 64, Hit::Generated, Hit::Floor, |s| s.ops_per_sec);
    let (ba99, _) = ratio_runs(&runs, 64, Hit::Generated, Hit::Floor, |s| us_of(s.p99));
    let (bc, _) = ratio_runs(&runs, 64, Hit::Generated, Hit::Cached, |s| s.ops_per_sec);
    let checks = vec![
        Check {
            target: "hit, 64 tasks: ≥ 0.95× the floor's throughput (b/a)".into(),
            measured: ratio(ba),
            verdict: Verdict::from_bool(ba >= 0.95),
        },
        Check {
            target: "hit, 64 tasks: p99 ≤ 1.1× the floor's (b/a)".into(),
            measured: ratio(ba99),
            verdict: Verdict::from_bool(ba99 <= 1.1),
        },
        Check {
            target: "hit, 64 tasks: ≥ 1.1× `cached`'s throughput (b/c)".into(),
            measured: ratio(bc),
            verdict: Verdict::from_bool(bc >= 1.1),
        },
    ];
    Output {
        markdown: md,
        checks,
    }
}

// ---------------------------------------------------------------- 2. miss path

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Miss {
    Backing,
    Generated,
    Hand,
}

/// Times `store.get_policy` on keys never seen before (every call a miss).
async fn run_unique<S: PolicyStore + 'static>(
    store: Arc<S>,
    tag: &'static str,
    round: usize,
    tasks: usize,
    cfg: &Config,
) -> Summary {
    run_tasks(tasks, cfg.warmup, cfg.measure, move |task, mut probe| {
        let store = store.clone();
        async move {
            let mut i = 0u64;
            while probe.running() {
                let tenant = format!("{tag}-{round}-{task}-{i}");
                i += 1;
                let got = probe.time(store.get_policy(&tenant)).await;
                assert!(matches!(got, Ok(Some(_))), "the store must answer");
            }
            probe
        }
    })
    .await
}

async fn miss_path(cfg: &Config, server: &RedisServer) -> Output {
    let cache = bench_cache(server);
    let backing = Arc::new(BackingStore::with_latency(BACKING_LATENCY));
    let generated = Arc::new(CachingPolicyStore::new(backing.clone(), cache.clone()));
    let hand = Arc::new(HandCachedPolicyStore::new(backing.clone(), cache.clone()));
    let _ = hand.get_policy("warm-up").await;
    let variants = [Miss::Backing, Miss::Generated, Miss::Hand];
    let mut runs: Runs<Miss> = BTreeMap::new();
    let mut rerun = 0;
    for round in 0..cfg.rounds {
        for tasks in CONCURRENCY {
            for v in rotated(&variants, round) {
                let (cache, backing, generated, hand) = (&cache, &backing, &generated, &hand);
                let (s, retried) = valid_cell("miss path", || async move {
                    let before = cache.stats();
                    let s = match v {
                        Miss::Backing => {
                            run_unique(backing.clone(), "m-b", round, tasks, cfg).await
                        }
                        Miss::Generated => {
                            run_unique(generated.clone(), "m-g", round, tasks, cfg).await
                        }
                        Miss::Hand => run_unique(hand.clone(), "m-h", round, tasks, cfg).await,
                    };
                    (s, clean(cache, before))
                })
                .await;
                rerun += retried;
                eprintln!("miss round {round} tasks {tasks:>2} {v:?}: {s:?}");
                runs.entry((tasks, v)).or_default().push(s);
            }
        }
    }
    let names = [
        (Miss::Backing, "backing store alone (2 ms)"),
        (
            Miss::Generated,
            "generated `CachingPolicyStore`: miss + fill",
        ),
        (
            Miss::Hand,
            "hand-written decorator over `Cache`: miss + fill",
        ),
    ];
    let mut md = String::from("### 2. Miss path\n\n");
    md.push_str(&rerun_note(rerun));
    md.push_str(
        "A backing store that sleeps 2 ms (tokio timer, so about 2-3 ms) per call; every call \
         reads a key never seen before, so the decorator does `GET` (miss), the inner call, \
         then `SET`. The generated decorator also leads a single-flight for the key.\n\n",
    );
    let mut added = Table::new(&["added by miss + fill", "p50 µs", "p99 µs"]);
    for tasks in CONCURRENCY {
        let _ = writeln!(
            md,
            "**{tasks} task(s)** (medians over {} rounds):\n",
            cfg.rounds
        );
        md.push_str(&summary_table(&runs, tasks, &names, &[]));
        md.push('\n');
        for (v, name) in [(Miss::Generated, "generated"), (Miss::Hand, "hand-written")] {
            let a50 = med(&runs, tasks, v, |s| us_of(s.p50))
                - med(&runs, tasks, Miss::Backing, |s| us_of(s.p50));
            let a99 = med(&runs, tasks, v, |s| us_of(s.p99))
                - med(&runs, tasks, Miss::Backing, |s| us_of(s.p99));
            added.row(vec![
                format!("{name}, {tasks} task(s)"),
                report::us_f(a50),
                report::us_f(a99),
            ]);
        }
    }
    md.push_str("Added latency over the backing call alone (difference of medians):\n\n");
    md.push_str(&added.to_markdown());
    Output {
        markdown: md,
        checks: Vec::new(),
    }
}

// ---------------------------------------------------------------- 3. degraded

/// Latencies of sequential calls while Redis is frozen, split at the breaker opening.
struct Degraded {
    before: Summary,
    after: Summary,
    /// Calls after the first fast one that still took ≥ 1 ms (probes).
    slow_after: usize,
    /// Time from the freeze to the first fast call.
    open_after: Option<Duration>,
}

async fn degraded_run<S: PolicyStore>(store: &S, limit: Duration, after_calls: usize) -> Degraded {
    let fast = Duration::from_millis(1);
    let start = Instant::now();
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut slow_after = 0;
    let mut open_after = None;
    let mut i = 0u64;
    while start.elapsed() < limit && after.len() < after_calls {
        let tenant = format!("frozen-{}", i % 100);
        i += 1;
        let t = Instant::now();
        let got = store.get_policy(&tenant).await;
        let d = t.elapsed();
        assert!(matches!(got, Ok(Some(_))), "degraded calls still answer");
        if open_after.is_none() && d < fast {
            open_after = Some(start.elapsed());
        }
        if open_after.is_some() {
            slow_after += usize::from(d >= fast);
            after.push(d.as_nanos() as u64);
        } else {
            before.push(d.as_nanos() as u64);
        }
    }
    let elapsed = start.elapsed();
    Degraded {
        before: Summary::from_latencies(before, elapsed),
        after: Summary::from_latencies(after, elapsed),
        slow_after,
        open_after,
    }
}

/// The inner store alone, the same calls as [`degraded_run`] makes.
async fn inner_alone(inner: &BackingStore, calls: usize) -> Summary {
    let mut lat = Vec::with_capacity(calls);
    for i in 0..calls {
        let tenant = format!("frozen-{}", i % 100);
        let t = Instant::now();
        let got = inner.get_policy(&tenant).await;
        lat.push(t.elapsed().as_nanos() as u64);
        assert!(matches!(got, Ok(Some(_))));
    }
    Summary::from_latencies(lat, Duration::from_secs(1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Degrade {
    Generated,
    Hand,
}

async fn degraded(cfg: &Config) -> Output {
    let limit = Duration::from_secs(5);
    let after_calls = 20_000;
    let inner = Arc::new(BackingStore::instant());
    let mut inner_runs: Vec<Summary> = Vec::new();
    let mut runs: BTreeMap<Degrade, Vec<Degraded>> = BTreeMap::new();
    for round in 0..cfg.rounds {
        for v in rotated(&[Degrade::Generated, Degrade::Hand], round) {
            let mut server = RedisServer::start();
            let cache = Cache::redis(&server.url()).expect("cache url");
            let generated = CachingPolicyStore::new(inner.clone(), cache.clone());
            let hand = HandCachedPolicyStore::new(inner.clone(), cache.clone());
            for i in 0..100 {
                let _ = hand.get_policy(&format!("frozen-{i}")).await;
            }
            inner_runs.push(inner_alone(&inner, after_calls).await);
            server.freeze();
            let d = match v {
                Degrade::Generated => degraded_run(&generated, limit, after_calls).await,
                Degrade::Hand => degraded_run(&hand, limit, after_calls).await,
            };
            server.thaw();
            eprintln!(
                "degraded {v:?}: before {:?} after {:?} slow_after {} open_after {:?}",
                d.before, d.after, d.slow_after, d.open_after
            );
            runs.entry(v).or_default().push(d);
        }
    }
    let inner_p50 = median(&inner_runs.iter().map(|s| us_of(s.p50)).collect::<Vec<_>>());
    let inner_p99 = median(&inner_runs.iter().map(|s| us_of(s.p99)).collect::<Vec<_>>());
    let mut md = String::from("### 3. Degraded: Redis frozen with SIGSTOP\n\n");
    let _ = writeln!(
        md,
        "The inner store answers at once (so the decorator's own cost shows); the cache has \
         the runtime's defaults (deadline, breaker threshold and cool-down, see \
         `docs/failover.md`). Sequential calls from the freeze, for up to {} s or until \
         {after_calls} calls after the breaker opened. \"Before\" is every call until the \
         first one under 1 ms; \"after\" is every call from then on (including the breaker's \
         probes, counted in \"slow calls after\"). Each variant gets its own server and cache \
         per round; medians over {} rounds.\n",
        limit.as_secs(),
        cfg.rounds,
    );
    let mut t = Table::new(&[
        "variant",
        "calls before open",
        "before p50 µs",
        "before p99 µs",
        "breaker open after ms",
        "after p50 µs",
        "after p99 µs",
        "slow calls after",
        "added p99 µs",
    ]);
    t.row(vec![
        "inner store alone".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        report::us_f(inner_p50),
        report::us_f(inner_p99),
        "-".into(),
        "-".into(),
    ]);
    let mut generated_added = f64::NAN;
    for (v, name) in [
        (Degrade::Generated, "generated `CachingPolicyStore`"),
        (Degrade::Hand, "hand-written decorator over `Cache`"),
    ] {
        let rows = runs.get(&v).map_or(&[][..], Vec::as_slice);
        let m = |f: &dyn Fn(&Degraded) -> f64| median(&rows.iter().map(f).collect::<Vec<_>>());
        let opened = rows.iter().filter(|d| d.open_after.is_some()).count();
        let after = |f: fn(&Summary) -> Duration| {
            m(&|d: &Degraded| {
                if d.after.ops == 0 {
                    f64::NAN
                } else {
                    us_of(f(&d.after))
                }
            })
        };
        let after_p99 = after(|s| s.p99);
        let added = after_p99 - inner_p99;
        if v == Degrade::Generated {
            generated_added = added;
        }
        t.row(vec![
            name.to_owned(),
            format!("{:.0}", m(&|d| d.before.ops as f64)),
            report::us_f(m(&|d| us_of(d.before.p50))),
            report::us_f(m(&|d| us_of(d.before.p99))),
            if opened < rows.len() {
                format!("opened in {opened} of {} rounds", rows.len())
            } else {
                format!(
                    "{:.0}",
                    m(&|d| d.open_after.map_or(f64::NAN, |o| o.as_secs_f64() * 1e3))
                )
            },
            report::us_f(after(|s| s.p50)),
            report::us_f(after_p99),
            format!("{:.0}", m(&|d| d.slow_after as f64)),
            report::us_f(added),
        ]);
    }
    md.push_str(&t.to_markdown());
    Output {
        markdown: md,
        checks: vec![Check {
            target: "degraded, breaker open: the decorator adds < 5 µs p99 over the inner store"
                .into(),
            measured: format!("{} µs", report::us_f(generated_added)),
            verdict: Verdict::from_bool(generated_added < 5.0),
        }],
    }
}

// ---------------------------------------------------------------- 4. stampede

async fn stampede_once<S: PolicyStore + 'static>(
    store: Arc<S>,
    key: String,
    callers: usize,
) -> Duration {
    let barrier = Arc::new(tokio::sync::Barrier::new(callers));
    let start = Instant::now();
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let store = store.clone();
            let barrier = barrier.clone();
            let key = key.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let got = store.get_policy(&key).await;
                assert!(matches!(got, Ok(Some(_))), "every caller gets the policy");
            })
        })
        .collect();
    for h in handles {
        h.await.expect("stampede caller panicked");
    }
    start.elapsed()
}

async fn stampede(cfg: &Config, server: &RedisServer) -> Output {
    let callers = 1_000;
    let cache = bench_cache(server);
    let _ = cache.get::<TenantLlmPolicy>("warm-up").await;
    let mut gen_calls = Vec::new();
    let mut gen_wall = Vec::new();
    let mut hand_calls = Vec::new();
    let mut hand_wall = Vec::new();
    for round in 0..cfg.rounds {
        let backing = Arc::new(BackingStore::with_latency(Duration::from_millis(20)));
        let generated = Arc::new(CachingPolicyStore::new(backing.clone(), cache.clone()));
        let wall = stampede_once(generated, format!("stampede-gen-{round}"), callers).await;
        gen_calls.push(backing.calls() as f64);
        gen_wall.push(wall.as_secs_f64() * 1e3);

        let backing = Arc::new(BackingStore::with_latency(Duration::from_millis(20)));
        let hand = Arc::new(HandCachedPolicyStore::new(backing.clone(), cache.clone()));
        let wall = stampede_once(hand, format!("stampede-hand-{round}"), callers).await;
        hand_calls.push(backing.calls() as f64);
        hand_wall.push(wall.as_secs_f64() * 1e3);
    }
    let mut md = String::from("### 4. Stampede\n\n");
    let _ = writeln!(
        md,
        "{callers} tasks released by a barrier call `get_policy` on one cold key; the inner \
         store takes 20 ms. Medians over {} rounds.\n",
        cfg.rounds
    );
    let mut t = Table::new(&[
        "variant",
        "inner calls (median)",
        "inner calls (max)",
        "wall ms",
    ]);
    t.row(vec![
        "generated `CachingPolicyStore` (single-flight)".into(),
        format!("{:.0}", median(&gen_calls)),
        format!("{:.0}", range(&gen_calls).1),
        format!("{:.1}", median(&gen_wall)),
    ]);
    t.row(vec![
        "hand-written decorator over `Cache` (no single-flight)".into(),
        format!("{:.0}", median(&hand_calls)),
        format!("{:.0}", range(&hand_calls).1),
        format!("{:.1}", median(&hand_wall)),
    ]);
    md.push_str(&t.to_markdown());
    let worst = range(&gen_calls).1;
    Output {
        markdown: md,
        checks: vec![Check {
            target: "stampede: exactly 1 inner call for 1,000 cold callers".into(),
            measured: format!("{worst:.0} (worst round)"),
            verdict: Verdict::from_bool(gen_calls.iter().all(|&c| c == 1.0)),
        }],
    }
}

// ---------------------------------------------------------------- 5. rate limiter

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Limit {
    IncrExpire,
    Fixed,
    Sliding,
    Bucket,
}

async fn run_limiter(
    limiter: Arc<cacheward::RateLimiter>,
    ids: Arc<Vec<String>>,
    tasks: usize,
    cfg: &Config,
) -> Summary {
    let n = ids.len();
    run_tasks(tasks, cfg.warmup, cfg.measure, move |task, mut probe| {
        let limiter = limiter.clone();
        let ids = ids.clone();
        async move {
            let mut i = task * 7_919;
            while probe.running() {
                let id = ids[i % n].as_str();
                i += 1;
                let d = probe.time(limiter.check_detailed(id)).await;
                if d.degraded {
                    probe.fail();
                }
            }

            probe
        }
    })
    .await
}

/// `INFO commandstats` as (command → (calls, usec)).
async fn command_stats(conn: &redis::aio::MultiplexedConnection) -> BTreeMap<String, (u64, u64)> {
    let mut conn = conn.clone();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |f: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            Some((name.to_owned(), (field("calls")?, field("usec")?)))
        })
        .collect()
}

/// Server time per check between two `INFO commandstats`: `INCR(BY)`+`EXPIRE` per `INCR(BY)`
/// for the floor, `EVALSHA`+`EVAL` per call for a limiter.
fn server_usec_per_op(
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
    floor: bool,
) -> f64 {
    let delta = |name: &str| {
        let (c0, u0) = before.get(name).copied().unwrap_or_default();
        let (c1, u1) = after.get(name).copied().unwrap_or_default();
        (c1.saturating_sub(c0), u1.saturating_sub(u0))
    };
    let (calls, usec) = if floor {
        // redis-rs sends `incr(key, 1)` as INCRBY.
        let (ci, ui) = delta("incrby");
        let (ci2, ui2) = delta("incr");
        let (_, ue) = delta("expire");
        (ci + ci2, ui + ui2 + ue)
    } else {
        let (cs, us) = delta("evalsha");
        let (ce, ue) = delta("eval");
        (cs + ce, us + ue)
    };
    if calls == 0 {
        f64::NAN
    } else {
        usec as f64 / calls as f64
    }
}

/// One rate-limiter cell: the INCR+EXPIRE floor or one algorithm's checks.
async fn limit_cell(
    v: Limit,
    conn: &redis::aio::MultiplexedConnection,
    ids: &Arc<Vec<String>>,
    limiters: &[(Limit, Arc<cacheward::RateLimiter>)],
    tasks: usize,
    cfg: &Config,
) -> Summary {
    let n = ids.len();
    if v == Limit::IncrExpire {
        let conn = conn.clone();
        let ids = ids.clone();
        run_tasks(tasks, cfg.warmup, cfg.measure, move |task, mut probe| {
            let mut conn = conn.clone();
            let ids = ids.clone();
            async move {
                let mut i = task * 7_919;
                while probe.running() {
                    let key = format!("bench:ratelimit:floor:{}", ids[i % n]);
                    i += 1;
                    let count: (i64,) = probe
                        .time(
                            redis::pipe()
                                .incr(&key, 1)
                                .expire(&key, 60)
                                .ignore()
                                .query_async(&mut conn),
                        )
                        .await
                        .expect("INCR+EXPIRE");
                    assert!(count.0 > 0);
                }
                probe
            }
        })
        .await
    } else {
        let limiter = limiters
            .iter()
            .find(|(l, _)| *l == v)
            .map(|(_, l)| l.clone())
            .expect("limiter");
        run_limiter(limiter, ids.clone(), tasks, cfg).await
    }
}

async fn rate_limiter(cfg: &Config, server: &RedisServer) -> Output {
    use cacheward::{Algorithm, RateLimiter};
    let tasks = 64;
    let conn = server.connection().await;
    let cache = bench_cache(server);
    let ids = tenants();
    let window = Duration::from_secs(60);
    let huge = 1_000_000_000;
    let limiters = [
        (Limit::Fixed, Algorithm::fixed_window(huge, window)),
        (Limit::Sliding, Algorithm::sliding_window(huge, window)),
        (
            Limit::Bucket,
            Algorithm::token_bucket(huge, cacheward::ratelimit::Refill::per_second(huge)),
        ),
    ]
    .map(|(v, a)| (v, Arc::new(RateLimiter::new(&cache, "bench", a))));
    for (_, l) in &limiters {
        assert!(l.check("warm-up").await);
    }
    let variants = [
        Limit::IncrExpire,
        Limit::Fixed,
        Limit::Sliding,
        Limit::Bucket,
    ];
    let mut runs: Runs<Limit> = BTreeMap::new();
    let mut server_usec: BTreeMap<Limit, Vec<f64>> = BTreeMap::new();
    let mut rerun = 0;
    for round in 0..cfg.rounds {
        for v in rotated(&variants, round) {
            let (conn, ids, limiters) = (&conn, &ids, &limiters);
            let before = command_stats(conn).await;
            let (s, retried) = valid_cell("rate limiter", || async move {
                (limit_cell(v, conn, ids, limiters, tasks, cfg).await, true)
            })
            .await;
            rerun += retried;
            let after = command_stats(conn).await;
            let usec = server_usec_per_op(&before, &after, v == Limit::IncrExpire);
            server_usec.entry(v).or_default().push(usec);
            eprintln!("ratelimit round {round} {v:?}: {s:?}, server {usec:.2} µs/op");
            runs.entry((tasks, v)).or_default().push(s);
        }
    }
    let mut md = String::from("### 5. Rate limiter\n\n");
    md.push_str(&rerun_note(rerun));
    let _ = writeln!(
        md,
        "{tasks} tasks, 1,000 identifiers, one connection, limits high enough that every check \
         is allowed (`check_detailed`; each check asserted not degraded). Each algorithm is \
         one Lua script per check (`EVALSHA`); the floor is a non-atomic `INCR` + `EXPIRE` \
         pipeline. Medians over {} rounds.\n",
        cfg.rounds
    );
    md.push_str(&summary_table(
        &runs,
        tasks,
        &[
            (
                Limit::IncrExpire,
                "plain `INCR` + `EXPIRE` pipeline (floor)",
            ),
            (Limit::Fixed, "fixed window"),
            (Limit::Sliding, "sliding window"),
            (Limit::Bucket, "token bucket"),
        ],
        &[],
    ));
    let mut t = Table::new(&[
        "variant",
        "throughput / floor (median, range)",
        "redis-server µs per check (`INFO commandstats`)",
    ]);
    for (v, name) in [
        (Limit::IncrExpire, "`INCR` + `EXPIRE` (floor)"),
        (Limit::Fixed, "fixed window"),
        (Limit::Sliding, "sliding window"),
        (Limit::Bucket, "token bucket"),
    ] {
        let (m, r) = ratio_runs(&runs, tasks, v, Limit::IncrExpire, |s| s.ops_per_sec);
        let usec = server_usec.get(&v).map_or(f64::NAN, |u| median(u));
        t.row(vec![
            name.to_owned(),
            ratio_with_range(m, r),
            format!("{usec:.2}"),
        ]);
    }
    md.push('\n');
    md.push_str(&t.to_markdown());
    Output {
        markdown: md,
        checks: Vec::new(),
    }
}

// ---------------------------------------------------------------- 6. batch

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Batch {
    Sequential,
    GetMany,
    Mget,
}

async fn batch(cfg: &Config, server: &RedisServer) -> Output {
    let cache = bench_cache(server);
    let keys: Arc<Vec<String>> = Arc::new(
        (0..100)
            .map(|i| policy_key(&format!("batch-{i:03}")))
            .collect(),
    );
    let entries: Vec<(String, TenantLlmPolicy)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), TenantLlmPolicy::sample(&format!("batch-{i:03}"))))
        .collect();
    cache.set_many(&entries, Duration::from_secs(3_600)).await;
    let conn = server.connection().await;
    let variants = [Batch::Sequential, Batch::GetMany, Batch::Mget];
    let mut runs: Runs<Batch> = BTreeMap::new();
    let mut rerun = 0;
    for round in 0..cfg.rounds {
        for v in rotated(&variants, round) {
            let (cache, keys, conn) = (&cache, &keys, &conn);
            let (s, retried) = valid_cell("batch", || async move {
                let before = cache.stats();
                let cache2 = cache.clone();
                let keys = keys.clone();
                let conn = conn.clone();
                let s = run_tasks(1, cfg.warmup, cfg.measure, move |_, mut probe| {
                    let cache = cache2.clone();
                    let keys = keys.clone();
                    let mut conn = conn.clone();
                    async move {
                        while probe.running() {
                            let found = match v {
                                Batch::Sequential => {
                                    probe
                                        .time(async {
                                            let mut found = 0;
                                            for k in keys.iter() {
                                                found += usize::from(
                                                    cache.get::<TenantLlmPolicy>(k).await.is_some(),
                                                );
                                            }
                                            found
                                        })
                                        .await
                                }
                                Batch::GetMany => probe
                                    .time(cache.get_many::<TenantLlmPolicy, _>(&keys))
                                    .await
                                    .iter()
                                    .filter(|v| v.is_some())
                                    .count(),
                                Batch::Mget => {
                                    probe
                                        .time(async {
                                            let raw: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                                                .arg(&keys[..])
                                                .query_async(&mut conn)
                                                .await
                                                .expect("MGET");
                                            raw.iter()
                                                .filter_map(|b| b.as_ref())
                                                .filter_map(|b| {
                                                    serde_json::from_slice::<TenantLlmPolicy>(b)
                                                        .ok()
                                                })
                                                .count()
                                        })
                                        .await
                                }
                            };
                            if found != 100 {
                                probe.fail();
                            }
                        }
                        probe
                    }
                })
                .await;
                (s, clean(cache, before))
            })
            .await;
            rerun += retried;
            eprintln!("batch round {round} {v:?}: {s:?}");
            runs.entry((1, v)).or_default().push(s);
        }
    }
    let (speedup, speedup_range) = ratio_runs(&runs, 1, Batch::GetMany, Batch::Sequential, |s| {
        s.ops_per_sec
    });
    let mut md = String::from("### 6. Batch\n\n");
    md.push_str(&rerun_note(rerun));
    let _ = writeln!(
        md,
        "100 policies; one operation = reading all 100. One task; medians over {} rounds.\n",
        cfg.rounds
    );
    md.push_str(&summary_table(
        &runs,
        1,
        &[
            (Batch::Sequential, "100 sequential `Cache::get`"),
            (Batch::GetMany, "`Cache::get_many` (one `MGET`)"),
            (Batch::Mget, "hand-written `MGET` + serde_json (floor)"),
        ],
        &[],
    ));
    let _ = writeln!(
        md,
        "\n`get_many` vs sequential gets: {} faster (range over rounds).",
        ratio_with_range(speedup, speedup_range)
    );
    Output {
        markdown: md,
        checks: vec![Check {
            target: "batch: `get_many` of 100 keys ≥ 10× 100 sequential gets".into(),
            measured: ratio(speedup),
            verdict: Verdict::from_bool(speedup >= 10.0),
        }],
    }
}

// ---------------------------------------------------------------- main

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{cores} × {cpu}; {}; {}; tokio multi-thread runtime with 2 workers; load average at start: {load}",
        command_line("redis-server", &["--version"])
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        command_line("rustc", &["--version"]),
    )
}

/// N sequential hits of one variant on a current-thread runtime: a fixed amount of work
/// for `perf stat -e instructions` or callgrind. Prints nothing but a one-line summary.
fn profile(variant: &str, ops: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = RedisServer::start();
    rt.block_on(async {
        let mut st = hit_state(&server).await;
        let n = st.tenants.len();
        let huge = 1_000_000_000;
        let window = Duration::from_secs(60);
        let algorithm = match variant {
            "fixed" => Some(cacheward::Algorithm::fixed_window(huge, window)),
            "sliding" => Some(cacheward::Algorithm::sliding_window(huge, window)),
            "bucket" => Some(cacheward::Algorithm::token_bucket(
                huge,
                cacheward::ratelimit::Refill::per_second(huge),
            )),
            _ => None,
        };
        let limiter = algorithm.map(|a| cacheward::RateLimiter::new(&st.cache, "bench", a));
        let start = Instant::now();
        let mut found = 0u64;
        for i in 0..ops as usize {
            let t = &st.tenants[i % n];
            let hit = match variant {
                "floor" => {
                    let key = format!("floor:policy:{t}");
                    let bytes: Option<Vec<u8>> = st.floor.get(&key).await.ok().flatten();
                    bytes
                        .and_then(|b| serde_json::from_slice::<TenantLlmPolicy>(&b).ok())
                        .is_some()
                }
                "fixed" | "sliding" | "bucket" => {
                    let l = limiter.as_ref().expect("limiter");
                    !l.check_detailed(t.as_str()).await.degraded
                }
                "incr-expire" => {
                    let key = format!("bench:ratelimit:floor:{t}");
                    let r: redis::RedisResult<(i64,)> = redis::pipe()
                        .incr(&key, 1)
                        .expire(&key, 60)
                        .ignore()
                        .query_async(&mut st.floor)
                        .await;
                    r.is_ok()
                }
                "generated" => matches!((*st.generated).get_policy(t).await, Ok(Some(_))),
                "cached" => matches!(st.cached.async_cache_get(t).await, Ok(Some(_))),
                "cache-get" => st
                    .cache
                    .get::<TenantLlmPolicy>(&policy_key(t))
                    .await
                    .is_some(),
                other => panic!(
                    "unknown variant {other}: floor|generated|cached|cache-get|fixed|sliding|bucket|incr-expire"
                ),
            };
            found += u64::from(hit);
        }
        assert_eq!(found, ops, "every operation must succeed (hits, non-degraded checks)");
        assert_eq!(st.inner.calls(), 0);
        println!("{variant}: {ops} hits in {:?}", start.elapsed());
    });
}

/// The hand-written decorator with its miss path (inner call + fill) in a separate heap
/// future, so the state of a hit holds only the `get`: an experiment on whether the size
/// of the per-call future matters at 64 tasks (finding 6).
struct HandBoxedFill<S> {
    inner: S,
    cache: Cache,
}

impl<S: PolicyStore> HandBoxedFill<S> {
    async fn fill(
        &self,
        tenant_id: &str,
        key: String,
    ) -> Result<Option<TenantLlmPolicy>, cacheward_benches::policy::StoreError> {
        let fresh = self.inner.get_policy(tenant_id).await?;
        if let Some(policy) = &fresh {
            self.cache.set(&key, policy, Duration::from_secs(300)).await;
        }
        Ok(fresh)
    }
}

#[async_trait::async_trait]
impl<S: PolicyStore> PolicyStore for HandBoxedFill<S> {
    async fn get_policy(
        &self,
        tenant_id: &str,
    ) -> Result<Option<TenantLlmPolicy>, cacheward_benches::policy::StoreError> {
        let key = policy_key(tenant_id);
        if let Some(hit) = self.cache.get::<TenantLlmPolicy>(&key).await {
            return Ok(Some(hit));
        }
        Box::pin(self.fill(tenant_id, key)).await
    }
}

/// `ops` hits of one variant spread over `tasks` concurrent tasks on a 2-worker runtime,
/// against `url` or a server of its own: for `perf stat -e raw_syscalls:sys_enter`,
/// context switches and instructions at the concurrency.
fn profile_concurrent(variant: &str, ops: u64, tasks: usize, url: Option<&str>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = url.is_none().then(RedisServer::start);
    let url = url.map_or_else(|| server.as_ref().expect("server").url(), str::to_owned);
    rt.block_on(async {
        let st = Arc::new(hit_state_at(&url).await);
        let hand = Arc::new(HandCachedPolicyStore::new(st.inner.clone(), st.cache.clone()));
        let hand_boxed = Arc::new(HandBoxedFill {
            inner: st.inner.clone(),
            cache: st.cache.clone(),
        });
        {
            // Deref the `Arc`s: through `impl PolicyStore for Arc<S>` each call would
            // pay a second `#[async_trait]` box.
            let probe = (*hand).get_policy("tenant-0000");
            let probe_boxed = (*hand_boxed).get_policy("tenant-0000");
            let generated = (*st.generated).get_policy("tenant-0000");
            eprintln!(
                "per-call future sizes: generated {} B, hand-written {} B, hand-written with boxed fill {} B",
                size_of_val(&*generated),
                size_of_val(&*probe),
                size_of_val(&*probe_boxed)
            );
        }
        let per_task = ops / tasks as u64;
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let st = st.clone();
                let hand = hand.clone();
                let hand_boxed = hand_boxed.clone();
                let variant = variant.to_owned();
                tokio::spawn(async move {
                    let n = st.tenants.len();
                    let mut conn = st.floor.clone();
                    let mut found = 0u64;
                    for i in 0..per_task as usize {
                        let t = &st.tenants[(task * 7_919 + i) % n];
                        let hit = match variant.as_str() {
                            "hand" => matches!((*hand).get_policy(t).await, Ok(Some(_))),
                            "hand-boxed" => matches!((*hand_boxed).get_policy(t).await, Ok(Some(_))),
                            "floor-clone" => {
                                let key = format!("floor:policy:{t}");
                                let b: Option<Vec<u8>> =
                                    st.floor.clone().get(&key).await.ok().flatten();
                                b.and_then(|b| serde_json::from_slice::<TenantLlmPolicy>(&b).ok())
                                    .is_some()
                            }
                            "floor" => {
                                let key = format!("floor:policy:{t}");
                                let b: Option<Vec<u8>> = conn.get(&key).await.ok().flatten();
                                b.and_then(|b| serde_json::from_slice::<TenantLlmPolicy>(&b).ok())
                                    .is_some()
                            }
                            "generated" => matches!((*st.generated).get_policy(t).await, Ok(Some(_))),
                            "cached" => matches!(st.cached.async_cache_get(t).await, Ok(Some(_))),
                            "cache-get" => st
                                .cache
                                .get::<TenantLlmPolicy>(&policy_key(t))
                                .await
                                .is_some(),
                            other => {
                                panic!("unknown variant {other}: floor|generated|cached|cache-get")
                            }
                        };
                        found += u64::from(hit);
                    }
                    found
                })
            })
            .collect();
        let mut found = 0;
        for h in handles {
            found += h.await.expect("task");
        }
        assert_eq!(found, per_task * tasks as u64, "every read must hit");
        println!(
            "{variant}: {found} hits by {tasks} tasks in {:?}",
            start.elapsed()
        );
    });
}

fn main() {
    let cfg = Config::from_args();
    if let Some((variant, ops)) = &cfg.profile {
        if cfg.profile_tasks > 0 {
            profile_concurrent(variant, *ops, cfg.profile_tasks, cfg.profile_url.as_deref());
        } else {
            profile(variant, *ops);
        }
        return;
    }
    let started = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let machine = machine();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = RedisServer::start();
    let outputs: Vec<Output> = rt.block_on(async {
        let mut out = Vec::new();
        if cfg.wants("hit") {
            out.push(hit_path(&cfg, &server).await);
        }
        if cfg.wants("miss") {
            out.push(miss_path(&cfg, &server).await);
        }
        if cfg.wants("degraded") {
            out.push(degraded(&cfg).await);
        }
        if cfg.wants("stampede") {
            out.push(stampede(&cfg, &server).await);
        }
        if cfg.wants("ratelimit") {
            out.push(rate_limiter(&cfg, &server).await);
        }
        if cfg.wants("batch") {
            out.push(batch(&cfg, &server).await);
        }
        out
    });
    let mut md = String::new();
    let _ = writeln!(
        md,
        "_Generated by `cargo bench -p cacheward-benches --bench workloads` on {started}: {} round(s), \
         {} ms warm-up + {} ms measured per cell; deadline of the healthy-server caches \
         {} ms._\n\n_Machine: {machine}._\n",
        cfg.rounds,
        cfg.warmup.as_millis(),
        cfg.measure.as_millis(),
        DEADLINE.get().unwrap_or(&BENCH_DEADLINE).as_millis()
    );
    let mut targets = Table::new(&["target", "measured (median)", "verdict"]);
    for o in &outputs {
        for c in &o.checks {
            targets.row(vec![
                c.target.clone(),
                c.measured.clone(),
                c.verdict.to_string(),
            ]);
        }
    }
    md.push_str("### Targets\n\n");
    md.push_str(&targets.to_markdown());
    for o in &outputs {
        md.push('\n');
        md.push_str(&o.markdown);
    }
    println!("{md}");
    if let Some(path) = &cfg.doc {
        let doc = std::fs::read_to_string(path).expect("read the doc to update");
        let updated = report::splice(&doc, "workloads", &md).expect("splice the tables");
        std::fs::write(path, updated).expect("write the doc");
        eprintln!("updated {}", path.display());
    }
}
