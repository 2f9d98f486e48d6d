//! Workloads 1-6 against a private redis-server on loopback: hit path (and what the
//! template options and the near cache cost on a hit, and how soon another client's
//! write evicts a near entry), miss path, degraded (Redis
//! frozen), stampede (in one instance and across four), rate limiter, batch.
//!
//! `cargo bench -p cacheward-benches --bench workloads -- [options] [workload...]`
//!
//! Options: `--rounds N` (default 10), `--secs S` (measured window per cell, default 1),
//! `--quick` (1 round, short windows: a smoke run), `--doc PATH` (splice the tables into
//! PATH between `<!-- BEGIN workloads -->` and `<!-- END workloads -->`),
//! `--deadline-ms N` (the healthy-server caches' deadline). Workload names: `hit`,
//! `options`, `near-evict`, `miss`, `degraded`, `stampede`, `ratelimit`, `batch`
//! (default: all).
//!
//! `--profile VARIANT --ops N [--tasks T] [--url URL]` runs N operations of one
//! [`Variant`] instead (see [`profile`]).
//!
//! What is measured is one [`Variant`] type with one operation per variant
//! ([`variant`]); every workload is a [`sweep`] of rounds × concurrency × variants, one
//! module each; the markdown helpers are in `cacheward_benches::report`.

mod batch;
mod degraded;
mod hit;
mod miss;
mod near_evict;
mod options;
mod profile;
mod ratelimit;
mod stampede;
mod sweep;
mod variant;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use cacheward::Cache;
use cacheward_benches::report::{self, Section, Table};
use cacheward_tests::RedisServer;

use crate::variant::Variant;

/// The concurrency levels of the hit and miss paths.
const CONCURRENCY: [usize; 2] = [1, 64];
/// The deadline of the caches measured on a healthy server: redis-rs's default response
/// timeout, which the floor's connection and `cached`'s run with. The runtime's default
/// (20 ms) is for production, where a stalled cache must not hold a request; on a
/// shared machine other processes can stall ours for longer than that, which would open
/// the breaker mid-measurement and turn hits into inner calls.
const BENCH_DEADLINE: Duration = Duration::from_millis(500);

/// `--deadline-ms N` overrides [`BENCH_DEADLINE`] (to see how the runtime's default
/// copes with this machine's stalls: the re-run cells say).
static DEADLINE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// A cache builder on `url` with [`BENCH_DEADLINE`] (or `--deadline-ms`).
fn bench_builder(url: &str) -> cacheward::CacheBuilder {
    Cache::builder()
        .redis_url(url)
        .deadline(*DEADLINE.get().unwrap_or(&BENCH_DEADLINE))
}

/// A cache on `url` with [`BENCH_DEADLINE`] (or `--deadline-ms`).
fn bench_cache(url: &str) -> Cache {
    bench_builder(url).build().expect("cache url")
}

/// The command line.
struct Config {
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    only: Vec<String>,
    doc: Option<PathBuf>,
    /// `--profile VARIANT --ops N`: N operations of one variant, for `perf stat` /
    /// callgrind (instructions per operation = difference of two N).
    profile: Option<Variant>,
    ops: u64,
    /// `--tasks N` with `--profile`: N concurrent tasks on a 2-worker runtime.
    profile_tasks: usize,
    /// `--url URL` with `--profile`: use that server instead of starting one.
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
            ops: 10_000,
            profile_tasks: 0,
            profile_url: None,
        };
        let mut args = std::env::args().skip(1);
        let number = |args: &mut dyn Iterator<Item = String>, what: &str| -> f64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what}"))
        };
        while let Some(a) = args.next() {
            match a.as_str() {
                "--bench" => {}
                "--quick" => {
                    cfg.rounds = 1;
                    cfg.warmup = Duration::from_millis(100);
                    cfg.measure = Duration::from_millis(300);
                }
                "--rounds" => cfg.rounds = number(&mut args, "--rounds N") as usize,
                "--secs" => cfg.measure = Duration::from_secs_f64(number(&mut args, "--secs S")),
                "--doc" => cfg.doc = Some(args.next().expect("--doc PATH").into()),
                "--deadline-ms" => {
                    let ms = number(&mut args, "--deadline-ms N") as u64;
                    let _ = DEADLINE.set(Duration::from_millis(ms));
                }
                "--profile" => {
                    let name = args.next().expect("--profile VARIANT");
                    cfg.profile = Some(name.parse().unwrap_or_else(|e| panic!("{e}")));
                }
                "--tasks" => cfg.profile_tasks = number(&mut args, "--tasks N") as usize,
                "--url" => cfg.profile_url = Some(args.next().expect("--url URL")),
                "--ops" => cfg.ops = number(&mut args, "--ops N") as u64,
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

fn main() {
    let cfg = Config::from_args();
    if let Some(v) = cfg.profile {
        profile::run(v, cfg.ops, cfg.profile_tasks, cfg.profile_url.as_deref());
        return;
    }
    let started = report::command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let machine = report::machine();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let server = RedisServer::start();
    let sections: Vec<Section> = rt.block_on(async {
        let mut out = Vec::new();
        if cfg.wants("hit") {
            out.push(hit::run(&cfg, &server).await);
        }
        if cfg.wants("options") {
            out.push(options::run(&cfg, &server).await);
        }
        if cfg.wants("near-evict") {
            out.push(near_evict::run(&cfg, &server).await);
        }
        if cfg.wants("miss") {
            out.push(miss::run(&cfg, &server).await);
        }
        if cfg.wants("degraded") {
            out.push(degraded::run(&cfg).await);
        }
        if cfg.wants("stampede") {
            out.push(stampede::run(&cfg, &server).await);
        }
        if cfg.wants("ratelimit") {
            out.push(ratelimit::run(&cfg, &server).await);
        }
        if cfg.wants("batch") {
            out.push(batch::run(&cfg, &server).await);
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
    for c in sections.iter().flat_map(|s| &s.checks) {
        targets.row(vec![
            c.target.clone(),
            c.measured.clone(),
            c.verdict.to_string(),
        ]);
    }
    md.push_str("### Targets\n\n");
    md.push_str(&targets.to_markdown());
    for s in &sections {
        md.push('\n');
        md.push_str(&s.markdown);
    }
    println!("{md}");
    if let Some(path) = &cfg.doc {
        report::splice_file(path, "workloads", &md);
    }
}
