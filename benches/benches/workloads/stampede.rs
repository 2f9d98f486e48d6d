//! Workload 4, stampede: 1,000 callers on one cold key at once, in one instance and
//! spread over four.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cacheward_benches::harness::{median, range};
use cacheward_benches::policy::BackingStore;
use cacheward_benches::report::{Check, Section, Table, Verdict};
use cacheward_tests::RedisServer;

use crate::sweep::sweep;
use crate::variant::{Subjects, Variant};
use crate::{Config, bench_cache};

const CALLERS: usize = 1_000;
const INNER_LATENCY: Duration = Duration::from_millis(20);

/// What one stampede cost.
#[derive(Debug)]
struct Stampede {
    inner_calls: f64,
    wall_ms: f64,
}

/// [`CALLERS`] tasks released by a barrier read `key` through `v`, spread in turn over
/// the instances.
async fn stampede_once(instances: &[Arc<Subjects>], v: Variant, key: String) -> Duration {
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let start = Instant::now();
    let handles: Vec<_> = (0..CALLERS)
        .map(|i| {
            let subjects = instances[i % instances.len()].clone();
            let (barrier, key) = (barrier.clone(), key.clone());
            tokio::spawn(async move {
                let mut conn = subjects.floor.clone();
                barrier.wait().await;
                let answered = subjects.op(v, &mut conn, &key).await;
                assert!(answered, "every caller gets the policy");
            })
        })
        .collect();
    for h in handles {
        h.await.expect("stampede caller panicked");
    }
    start.elapsed()
}

/// How many instances of the service share the inner store: one process, or four with
/// one cache each.
const INSTANCES: [usize; 2] = [1, 4];

/// The generated decorator (leases) against a hand-written one with a single-flight in
/// the process (what the generated one did before leases) and one without, in one
/// instance and across four; each round gets a fresh inner store, shared by the
/// instances.
pub async fn run(cfg: &Config, server: &RedisServer) -> Section {
    let url = server.url();
    let variants = [Variant::Generated, Variant::SingleFlight, Variant::Hand];
    let sweep = sweep("stampede", cfg, &INSTANCES, &variants, |v, n, round| {
        let url = &url;
        async move {
            let inner = Arc::new(BackingStore::with_latency(INNER_LATENCY));
            let mut instances = Vec::new();
            for _ in 0..n {
                let cache = bench_cache(url);
                let _ = cache.get::<u8>("warm-up").await;
                instances.push(Arc::new(Subjects::sharing(url, cache, inner.clone()).await));
            }
            let key = format!("stampede-{}-{n}-{round}", v.name());
            let wall = stampede_once(&instances, v, key).await;
            let s = Stampede {
                inner_calls: inner.calls() as f64,
                wall_ms: wall.as_secs_f64() * 1e3,
            };
            (s, true)
        }
    })
    .await;
    let column = |n: usize, v: Variant, f: fn(&Stampede) -> f64| -> Vec<f64> {
        sweep
            .runs
            .get(&(n, v))
            .map_or_else(Vec::new, |r| r.iter().map(f).collect())
    };
    let mut md = String::from("### 4. Stampede\n\n");
    let _ = writeln!(
        md,
        "{CALLERS} tasks released by a barrier call `get_policy` on one cold key; the inner \
         store takes 20 ms. With 4 instances, the callers are spread over four caches (four \
         connections, four decorators) over one inner store, as replicas of a service over \
         one database. Medians over {} rounds.\n",
        cfg.rounds
    );
    let mut t = Table::new(&[
        "variant",
        "instances",
        "inner calls (median)",
        "inner calls (max)",
        "wall ms",
    ]);
    for n in INSTANCES {
        for (v, name) in [
            (
                Variant::Generated,
                "generated `CachingPolicyStore` (leases + single-flight)",
            ),
            (
                Variant::SingleFlight,
                "hand-written, single-flight in the process (the generated code before leases)",
            ),
            (
                Variant::Hand,
                "hand-written decorator over `Cache` (no single-flight)",
            ),
        ] {
            let calls = column(n, v, |s| s.inner_calls);
            t.row(vec![
                name.into(),
                n.to_string(),
                format!("{:.0}", median(&calls)),
                format!("{:.0}", range(&calls).1),
                format!("{:.1}", median(&column(n, v, |s| s.wall_ms))),
            ]);
        }
    }
    md.push_str(&t.to_markdown());
    let checks = INSTANCES
        .into_iter()
        .map(|n| {
            let calls = column(n, Variant::Generated, |s| s.inner_calls);
            Check {
                target: format!(
                    "stampede: exactly 1 inner call for 1,000 cold callers over {n} instance(s)"
                ),
                measured: format!("{:.0} (worst round)", range(&calls).1),
                verdict: Verdict::from_bool(calls.iter().all(|&c| c == 1.0)),
            }
        })
        .collect();
    Section {
        markdown: md,
        checks,
    }
}
