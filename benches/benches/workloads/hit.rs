//! Workload 1, the hit path: every read a hit, the decorator against the floor,
//! `cached` and the runtime alone.

use std::fmt::Write as _;
use std::sync::Arc;

use cacheward_benches::harness::Summary;
use cacheward_benches::policy::BackingStore;
use cacheward_benches::report::{
    self, Check, Section, Table, Verdict, ratio, ratio_runs, ratio_with_range, us_of,
};
use cacheward_tests::RedisServer;

use crate::sweep::{measure_clean, sweep};
use crate::variant::{Keys, Subjects, Variant};
use crate::{CONCURRENCY, Config, bench_cache};

/// What a ratio compares: throughput or a latency.
type Metric = fn(&Summary) -> f64;

/// The hit path at 1 and 64 tasks.
pub async fn run(cfg: &Config, server: &RedisServer) -> Section {
    let url = server.url();
    let mut subjects = Subjects::new(&url, bench_cache(&url), BackingStore::instant()).await;
    subjects.load_tenants().await;
    let subjects = Arc::new(subjects);
    let variants = [
        Variant::Floor,
        Variant::Generated,
        Variant::Cached,
        Variant::CacheGet,
        Variant::FloorClone,
    ];
    let sweep = sweep("hit path", cfg, &CONCURRENCY, &variants, |v, tasks, _| {
        let subjects = &subjects;
        async move {
            let calls = subjects.inner.calls();
            let (s, ok) = measure_clean(subjects, v, Keys::Tenants, tasks, cfg).await;
            (s, ok && subjects.inner.calls() == calls)
        }
    })
    .await;
    let runs = &sweep.runs;
    let names = [
        (Variant::Floor, "(a) redis-rs `GET` + serde_json (floor)"),
        (
            Variant::FloorClone,
            "(a′) the floor, connection handle cloned per call",
        ),
        (
            Variant::Generated,
            "(b) generated `CachingPolicyStore::get_policy`",
        ),
        (
            Variant::Cached,
            "(c) `cached` 4.1 `AsyncRedisCache::async_cache_get`",
        ),
        (Variant::CacheGet, "(d) `Cache::get` (runtime alone)"),
    ];
    let mut md = String::from("### 1. Hit path\n\n");
    md.push_str(&report::rerun_note(sweep.rerun));
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
        md.push_str(&report::summary_table(runs, tasks, &names));
        md.push('\n');
    }
    md.push_str("Ratios, taken within each round (median, and range over rounds):\n\n");
    let mut t = Table::new(&["ratio", "1 task", "64 tasks"]);
    let throughput = |s: &Summary| s.ops_per_sec;
    let p99 = |s: &Summary| us_of(s.p99);
    let rows: [(&str, Variant, Variant, Metric); 9] = [
        (
            "**b/a throughput** (decorator vs floor)",
            Variant::Generated,
            Variant::Floor,
            throughput,
        ),
        (
            "**b/a p99** (decorator vs floor)",
            Variant::Generated,
            Variant::Floor,
            p99,
        ),
        (
            "**b/c throughput** (decorator vs `cached`)",
            Variant::Generated,
            Variant::Cached,
            throughput,
        ),
        (
            "b/d throughput (decorator vs `Cache::get`)",
            Variant::Generated,
            Variant::CacheGet,
            throughput,
        ),
        (
            "d/a throughput (runtime vs floor)",
            Variant::CacheGet,
            Variant::Floor,
            throughput,
        ),
        (
            "d/a p99 (runtime vs floor)",
            Variant::CacheGet,
            Variant::Floor,
            p99,
        ),
        (
            "c/a throughput (`cached` vs floor)",
            Variant::Cached,
            Variant::Floor,
            throughput,
        ),
        (
            "a′/a throughput (cost of a handle clone per call)",
            Variant::FloorClone,
            Variant::Floor,
            throughput,
        ),
        (
            "b/a′ throughput (decorator vs floor with per-call clone)",
            Variant::Generated,
            Variant::FloorClone,
            throughput,
        ),
    ];
    for (label, num, den, f) in rows {
        let mut cells = vec![label.to_owned()];
        for tasks in CONCURRENCY {
            let (m, r) = ratio_runs(runs, tasks, num, den, f);
            cells.push(ratio_with_range(m, r));
        }
        t.row(cells);
    }
    md.push_str(&t.to_markdown());
    let (ba, _) = ratio_runs(runs, 64, Variant::Generated, Variant::Floor, throughput);
    let (ba99, _) = ratio_runs(runs, 64, Variant::Generated, Variant::Floor, p99);
    let (bc, _) = ratio_runs(runs, 64, Variant::Generated, Variant::Cached, throughput);
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
    Section {
        markdown: md,
        checks,
    }
}
