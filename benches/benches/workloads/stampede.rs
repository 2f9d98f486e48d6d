//! Workload 4, stampede: 1,000 callers on one cold key at once.

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

/// [`CALLERS`] tasks released by a barrier read `key` through `v`.
async fn stampede_once(subjects: Arc<Subjects>, v: Variant, key: String) -> Duration {
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let start = Instant::now();
    let handles: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (subjects, barrier, key) = (subjects.clone(), barrier.clone(), key.clone());
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

/// The generated decorator (single-flight) against the hand-written one; each round
/// gets a fresh inner store.
pub async fn run(cfg: &Config, server: &RedisServer) -> Section {
    let url = server.url();
    let cache = bench_cache(&url);
    let _ = cache.get::<u8>("warm-up").await;
    let variants = [Variant::Generated, Variant::Hand];
    let sweep = sweep("stampede", cfg, &[CALLERS], &variants, |v, _, round| {
        let (url, cache) = (&url, &cache);
        async move {
            let inner = BackingStore::with_latency(INNER_LATENCY);
            let subjects = Arc::new(Subjects::new(url, cache.clone(), inner).await);
            let key = format!("stampede-{}-{round}", v.name());
            let wall = stampede_once(subjects.clone(), v, key).await;
            let s = Stampede {
                inner_calls: subjects.inner.calls() as f64,
                wall_ms: wall.as_secs_f64() * 1e3,
            };
            (s, true)
        }
    })
    .await;
    let column = |v: Variant, f: fn(&Stampede) -> f64| -> Vec<f64> {
        sweep
            .runs
            .get(&(CALLERS, v))
            .map_or_else(Vec::new, |r| r.iter().map(f).collect())
    };
    let mut md = String::from("### 4. Stampede\n\n");
    let _ = writeln!(
        md,
        "{CALLERS} tasks released by a barrier call `get_policy` on one cold key; the inner \
         store takes 20 ms. Medians over {} rounds.\n",
        cfg.rounds
    );
    let mut t = Table::new(&[
        "variant",
        "inner calls (median)",
        "inner calls (max)",
        "wall ms",
    ]);
    for (v, name) in [
        (
            Variant::Generated,
            "generated `CachingPolicyStore` (single-flight)",
        ),
        (
            Variant::Hand,
            "hand-written decorator over `Cache` (no single-flight)",
        ),
    ] {
        let calls = column(v, |s| s.inner_calls);
        t.row(vec![
            name.into(),
            format!("{:.0}", median(&calls)),
            format!("{:.0}", range(&calls).1),
            format!("{:.1}", median(&column(v, |s| s.wall_ms))),
        ]);
    }
    md.push_str(&t.to_markdown());
    let generated_calls = column(Variant::Generated, |s| s.inner_calls);
    Section {
        markdown: md,
        checks: vec![Check {
            target: "stampede: exactly 1 inner call for 1,000 cold callers".into(),
            measured: format!("{:.0} (worst round)", range(&generated_calls).1),
            verdict: Verdict::from_bool(generated_calls.iter().all(|&c| c == 1.0)),
        }],
    }
}
