//! Workload 2, the miss path: every read a key never seen before, over a store that
//! takes 2 ms.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use cacheward_benches::policy::{BackingStore, PolicyStore as _};
use cacheward_benches::report::{self, Section, Table, med, us_of};
use cacheward_tests::RedisServer;

use crate::sweep::{measure_clean, sweep};
use crate::variant::{Keys, Subjects, Variant};
use crate::{CONCURRENCY, Config, bench_cache};

const BACKING_LATENCY: Duration = Duration::from_millis(2);

/// The miss path at 1 and 64 tasks.
pub async fn run(cfg: &Config, server: &RedisServer) -> Section {
    let url = server.url();
    let subjects = Subjects::new(
        &url,
        bench_cache(&url),
        BackingStore::with_latency(BACKING_LATENCY),
    )
    .await;
    let _ = subjects.cache.get::<u8>("warm-up").await;
    let _ = subjects.inner.get_policy("warm-up").await;
    let subjects = Arc::new(subjects);
    let variants = [Variant::Inner, Variant::Generated, Variant::Hand];
    let sweep = sweep(
        "miss path",
        cfg,
        &CONCURRENCY,
        &variants,
        |v, tasks, round| measure_clean(&subjects, v, Keys::Fresh { round }, tasks, cfg),
    )
    .await;
    let runs = &sweep.runs;
    let names = [
        (Variant::Inner, "backing store alone (2 ms)"),
        (
            Variant::Generated,
            "generated `CachingPolicyStore`: miss + fill",
        ),
        (
            Variant::Hand,
            "hand-written decorator over `Cache`: miss + fill",
        ),
    ];
    let mut md = String::from("### 2. Miss path\n\n");
    md.push_str(&report::rerun_note(sweep.rerun));
    md.push_str(
        "A backing store that sleeps 2 ms (tokio timer, so about 2-3 ms) per call; every call \
         reads a key never seen before. The hand-written decorator is the behaviour before \
         leases: `GET` (miss), the inner call, `SET`: three steps, two round trips. The \
         generated decorator leads a single-flight for the key in the process and takes a \
         lease across processes: `GET` (miss), the acquire script (`SET L NX PX`), the inner \
         call, the fill script (`SET K PX` if `L` is still its own, `DEL L`): three round \
         trips, so one extra round trip per miss is the price of no stale fill and one load \
         per key across instances (see workload 4).\n\n",
    );
    let mut added = Table::new(&["added by miss + fill", "p50 µs", "p99 µs"]);
    for tasks in CONCURRENCY {
        let _ = writeln!(
            md,
            "**{tasks} task(s)** (medians over {} rounds):\n",
            cfg.rounds
        );
        md.push_str(&report::summary_table(runs, tasks, &names));
        md.push('\n');
        for (v, name) in [
            (Variant::Generated, "generated"),
            (Variant::Hand, "hand-written"),
        ] {
            let a50 = med(runs, tasks, v, |s| us_of(s.p50))
                - med(runs, tasks, Variant::Inner, |s| us_of(s.p50));
            let a99 = med(runs, tasks, v, |s| us_of(s.p99))
                - med(runs, tasks, Variant::Inner, |s| us_of(s.p99));
            added.row(vec![
                format!("{name}, {tasks} task(s)"),
                report::us_f(a50),
                report::us_f(a99),
            ]);
        }
    }
    md.push_str("Added latency over the backing call alone (difference of medians):\n\n");
    md.push_str(&added.to_markdown());
    Section {
        markdown: md,
        checks: Vec::new(),
    }
}
