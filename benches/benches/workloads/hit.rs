//! Workload 1, the hit path: every read a hit, the decorator against the floor,
//! `cached` and the runtime alone.

use std::sync::Arc;

use cacheward_benches::policy::BackingStore;
use cacheward_benches::report::{self, Check, Metric, Section, Verdict, ratio, ratio_runs};
use cacheward_tests::RedisServer;

use crate::sweep::{measure_clean, sweep};
use crate::variant::{Keys, Subjects, Variant};
use crate::{CONCURRENCY, Config, bench_cache};

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
        Variant::GeneratedMsgpack,
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
            Variant::GeneratedMsgpack,
            "(b′) (b) with `Codec::MessagePack`",
        ),
        (
            Variant::Cached,
            "(c) `cached` 4.1 `AsyncRedisCache::async_cache_get` (MessagePack)",
        ),
        (Variant::CacheGet, "(d) `Cache::get` (runtime alone)"),
    ];
    let mut md = String::from("### 1. Hit path\n\n");
    md.push_str(&report::rerun_note(sweep.rerun));
    md.push_str(
        "1,000 tenants' policies pre-loaded; each operation reads one (all hits). One connection \
         per variant, shared by all tasks.\n\n",
    );
    md.push_str(&report::summary_tables(
        runs,
        &CONCURRENCY,
        cfg.rounds,
        &names,
    ));
    md.push_str("Ratios, taken within each round (median, and range over rounds):\n\n");
    let rows: &[(&str, Variant, Variant, Metric)] = &[
        (
            "**b/a throughput** (decorator vs floor)",
            Variant::Generated,
            Variant::Floor,
            report::throughput,
        ),
        (
            "**b/a p99** (decorator vs floor)",
            Variant::Generated,
            Variant::Floor,
            report::p99_us,
        ),
        (
            "**b/c throughput** (decorator vs `cached`)",
            Variant::Generated,
            Variant::Cached,
            report::throughput,
        ),
        (
            "**b′/c throughput** (decorator with MessagePack vs `cached`, both MessagePack)",
            Variant::GeneratedMsgpack,
            Variant::Cached,
            report::throughput,
        ),
        (
            "b′/b throughput (MessagePack vs JSON, same decorator)",
            Variant::GeneratedMsgpack,
            Variant::Generated,
            report::throughput,
        ),
        (
            "b/d throughput (decorator vs `Cache::get`)",
            Variant::Generated,
            Variant::CacheGet,
            report::throughput,
        ),
        (
            "d/a throughput (runtime vs floor)",
            Variant::CacheGet,
            Variant::Floor,
            report::throughput,
        ),
        (
            "d/a p99 (runtime vs floor)",
            Variant::CacheGet,
            Variant::Floor,
            report::p99_us,
        ),
        (
            "c/a throughput (`cached` vs floor)",
            Variant::Cached,
            Variant::Floor,
            report::throughput,
        ),
        (
            "a′/a throughput (cost of a handle clone per call)",
            Variant::FloorClone,
            Variant::Floor,
            report::throughput,
        ),
        (
            "b/a′ throughput (decorator vs floor with per-call clone)",
            Variant::Generated,
            Variant::FloorClone,
            report::throughput,
        ),
    ];
    md.push_str(&report::ratio_table(runs, &CONCURRENCY, rows));
    let (ba, _) = ratio_runs(
        runs,
        64,
        Variant::Generated,
        Variant::Floor,
        report::throughput,
    );
    let (ba99, _) = ratio_runs(runs, 64, Variant::Generated, Variant::Floor, report::p99_us);
    let (bc, _) = ratio_runs(
        runs,
        64,
        Variant::Generated,
        Variant::Cached,
        report::throughput,
    );
    let (bmc, _) = ratio_runs(
        runs,
        64,
        Variant::GeneratedMsgpack,
        Variant::Cached,
        report::throughput,
    );
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
        Check {
            target: "hit, 64 tasks, both MessagePack: ≥ 1.15× `cached`'s throughput (b′/c)".into(),
            measured: ratio(bmc),
            verdict: Verdict::from_bool(bmc >= 1.15),
        },
    ];
    Section {
        markdown: md,
        checks,
    }
}
