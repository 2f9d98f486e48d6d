//! Workload 1b, what the template options cost on a hit: tags, refresh-ahead with
//! stale-if-error, and the near cache, each against the plain generated decorator in
//! the same round.

use std::sync::Arc;

use cacheward_benches::policy::BackingStore;
use cacheward_benches::report::{self, Check, Metric, Section, Verdict, ratio, ratio_runs};
use cacheward_tests::RedisServer;

use crate::sweep::{measure_clean, sweep};
use crate::variant::{Keys, Subjects, Variant};
use crate::{CONCURRENCY, Config, bench_cache};

/// The hit path of each option at 1 and 64 tasks.
pub async fn run(cfg: &Config, server: &RedisServer) -> Section {
    let url = server.url();
    let mut subjects = Subjects::new(&url, bench_cache(&url), BackingStore::instant()).await;
    subjects.load_tenants().await;
    subjects.add_near_cache(&url).await;
    let subjects = Arc::new(subjects);
    let variants = [
        Variant::Generated,
        Variant::Tagged,
        Variant::Fresh,
        Variant::Near,
        Variant::NearGet,
        Variant::NearShared,
        Variant::NearArc,
        Variant::NearBare,
        Variant::CachedCsc,
    ];
    let sweep = sweep(
        "template options",
        cfg,
        &CONCURRENCY,
        &variants,
        |v, tasks, _| {
            let subjects = &subjects;
            async move {
                let calls = subjects.inner.calls();
                let near_cache = &subjects.near.as_ref().expect("added above").cache;
                let near_before = near_cache.stats();
                let (s, ok) = measure_clean(subjects, v, Keys::Tenants, tasks, cfg).await;
                let near = near_cache.stats();
                // Near reads were served by the near cache (at most 1% went to Redis),
                // none timed out on its way there.
                let near_ok = !matches!(
                    v,
                    Variant::Near | Variant::NearGet | Variant::NearShared | Variant::NearArc
                ) || (near.near_hits - near_before.near_hits >= s.ops
                    && near.hits - near_before.hits <= s.ops / 100
                    && near.errors == near_before.errors
                    && near.timeouts == near_before.timeouts);
                if !near_ok {
                    eprintln!("near cache cell not near hits: {near_before:?} -> {near:?}");
                }
                (s, ok && near_ok && subjects.inner.calls() == calls)
            }
        },
    )
    .await;
    let runs = &sweep.runs;
    let names = [
        (Variant::Generated, "(b) plain template (one `GET`)"),
        (
            Variant::Tagged,
            "(t) tagged template (`GET` and the tag counters, one script)",
        ),
        (
            Variant::Fresh,
            "(f) refresh-ahead + stale-if-error (`GET` + `PTTL`, one script)",
        ),
        (
            Variant::Near,
            "(n) plain template, near cache on (in-process hit)",
        ),
        (
            Variant::NearGet,
            "(g) `Cache::get` on the near cache (a decode per hit)",
        ),
        (
            Variant::NearShared,
            "(s) plain template, value type `Arc<TenantLlmPolicy>`, near cache on",
        ),
        (
            Variant::NearArc,
            "(a) `Cache::get_arc` on the near cache (one decoded `Arc`, shared)",
        ),
        (
            Variant::NearBare,
            "(q) bare `quick_cache` get of an `Arc` (the physical limit)",
        ),
        (
            Variant::CachedCsc,
            "(c) `cached` `AsyncRedisCache`, `client_side_caching(true)`",
        ),
    ];
    let mut md = String::from("### 1b. What template options cost on a hit\n\n");
    md.push_str(&report::rerun_note(sweep.rerun));
    md.push_str(
        "The same 1,000 pre-loaded policies as workload 1, read through the generated \
         decorator under templates with each option; every read a hit. (n) is the plain \
         template on a cache built with `near_cache(2000)` (entries up to 300 s old): the \
         cell is valid only if at least 99% of its reads were near hits. A near hit of the decorator clones the value the entry holds \
         decoded (the policy is `Clone`); (g) reads the same entries with `Cache::get`, \
         which decodes the bytes on each hit (its `T` need not be `Clone`), and (a) with \
         `Cache::get_arc`, which hands out the entry's decoded `Arc`. (s) is a decorator \
         whose value type is `Arc<TenantLlmPolicy>` (serde's `rc` feature; its own key \
         prefix): its near hit clones the `Arc`, not the policy. (q) is a \
         `quick_cache` get of an `Arc<TenantLlmPolicy>`, no decoding and no clone: what an \
         in-process tier cannot beat. (c) is the `cached` crate's Redis store with its \
         client-side caching (redis-rs `cache-aio`: RESP3 tracking of the keys the \
         connection read, the undecoded reply kept in process, MessagePack decoded on \
         each hit), over the same 1,000 policies in its own format.\n\n",
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
            "**t/b p50** (tagged hit vs plain hit)",
            Variant::Tagged,
            Variant::Generated,
            report::p50_us,
        ),
        (
            "t/b throughput",
            Variant::Tagged,
            Variant::Generated,
            report::throughput,
        ),
        (
            "**f/b p50** (refresh-ahead hit vs plain hit)",
            Variant::Fresh,
            Variant::Generated,
            report::p50_us,
        ),
        (
            "f/b throughput",
            Variant::Fresh,
            Variant::Generated,
            report::throughput,
        ),
        (
            "**b/n p50** (Redis hit vs near hit: the speed-up)",
            Variant::Generated,
            Variant::Near,
            report::p50_us,
        ),
        (
            "n/b throughput (near vs Redis)",
            Variant::Near,
            Variant::Generated,
            report::throughput,
        ),
        (
            "**n/q p50** (near hit vs the physical limit)",
            Variant::Near,
            Variant::NearBare,
            report::p50_us,
        ),
        (
            "g/n p50 (decode per hit vs clone per hit)",
            Variant::NearGet,
            Variant::Near,
            report::p50_us,
        ),
        (
            "**s/q p50** (`Arc`-valued decorator's near hit vs the physical limit)",
            Variant::NearShared,
            Variant::NearBare,
            report::p50_us,
        ),
        (
            "**a/q p50** (`get_arc` near hit vs the physical limit)",
            Variant::NearArc,
            Variant::NearBare,
            report::p50_us,
        ),
        (
            "**c/n p50** (`cached`'s client-side cache vs the near cache)",
            Variant::CachedCsc,
            Variant::Near,
            report::p50_us,
        ),
        (
            "c/n throughput",
            Variant::CachedCsc,
            Variant::Near,
            report::throughput,
        ),
    ];
    md.push_str(&report::ratio_table(runs, &CONCURRENCY, rows));
    let at = |tasks, num, den, f: Metric| ratio_runs(runs, tasks, num, den, f).0;
    let tagged = at(1, Variant::Tagged, Variant::Generated, report::p50_us);
    let fresh = at(1, Variant::Fresh, Variant::Generated, report::p50_us);
    let speedup = at(1, Variant::Generated, Variant::Near, report::p50_us);
    let limit = at(1, Variant::Near, Variant::NearBare, report::p50_us);
    let shared_limit = at(1, Variant::NearShared, Variant::NearBare, report::p50_us);
    let arc_limit = at(1, Variant::NearArc, Variant::NearBare, report::p50_us);
    let checks = vec![
        Check {
            target: "tagged hit, 1 task: one round trip, p50 ≤ 1.3× a plain hit (t/b)".into(),
            measured: ratio(tagged),
            verdict: Verdict::from_bool(tagged <= 1.3),
        },
        Check {
            target: "refresh-ahead hit, 1 task: one round trip, p50 ≤ 1.3× a plain hit (f/b)"
                .into(),
            measured: ratio(fresh),
            verdict: Verdict::from_bool(fresh <= 1.3),
        },
        Check {
            target: "near hit, 1 task: ≥ 50× faster than a Redis hit (b/n p50)".into(),
            measured: ratio(speedup),
            verdict: Verdict::from_bool(speedup >= 50.0),
        },
        Check {
            target: "near hit, 1 task: within 2× of a bare quick_cache get (n/q p50)".into(),
            measured: ratio(limit),
            verdict: Verdict::from_bool(limit <= 2.0),
        },
        Check {
            target: "`Arc`-valued decorator's near hit, 1 task: within 2× of a bare quick_cache get (s/q p50)"
                .into(),
            measured: ratio(shared_limit),
            verdict: Verdict::from_bool(shared_limit <= 2.0),
        },
        Check {
            target: "`get_arc` near hit, 1 task: within 2× of a bare quick_cache get (a/q p50)"
                .into(),
            measured: ratio(arc_limit),
            verdict: Verdict::from_bool(arc_limit <= 2.0),
        },
    ];
    Section {
        markdown: md,
        checks,
    }
}
