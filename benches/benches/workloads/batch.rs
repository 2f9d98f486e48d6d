//! Workload 6, batch: reading 100 policies one by one, with `get_many`, and with a
//! hand-written `MGET`.

use std::fmt::Write as _;
use std::sync::Arc;

use cacheward_benches::policy::BackingStore;
use cacheward_benches::report::{
    self, Check, Section, Verdict, ratio, ratio_runs, ratio_with_range,
};
use cacheward_tests::RedisServer;

use crate::sweep::{measure_clean, sweep};
use crate::variant::{BATCH, Keys, Subjects, Variant};
use crate::{Config, bench_cache};

/// The three ways to read a batch, one task.
pub async fn run(cfg: &Config, server: &RedisServer) -> Section {
    let url = server.url();
    let subjects = Subjects::new(&url, bench_cache(&url), BackingStore::instant()).await;
    subjects.load_batch().await;
    let subjects = Arc::new(subjects);
    let variants = [Variant::Sequential, Variant::GetMany, Variant::Mget];
    let sweep = sweep("batch", cfg, &[1], &variants, |v, tasks, _| {
        measure_clean(&subjects, v, Keys::Tenants, tasks, cfg)
    })
    .await;
    let runs = &sweep.runs;
    let (speedup, speedup_range) =
        ratio_runs(runs, 1, Variant::GetMany, Variant::Sequential, |s| {
            s.ops_per_sec
        });
    let mut md = String::from("### 6. Batch\n\n");
    md.push_str(&report::rerun_note(sweep.rerun));
    let _ = writeln!(
        md,
        "{BATCH} policies; one operation = reading all {BATCH}. One task; medians over {} rounds.\n",
        cfg.rounds
    );
    md.push_str(&report::summary_table(
        runs,
        1,
        &[
            (Variant::Sequential, "100 sequential `Cache::get`"),
            (Variant::GetMany, "`Cache::get_many` (one `MGET`)"),
            (Variant::Mget, "hand-written `MGET` + serde_json (floor)"),
        ],
    ));
    let _ = writeln!(
        md,
        "\n`get_many` vs sequential gets: {} faster (range over rounds).",
        ratio_with_range(speedup, speedup_range)
    );
    Section {
        markdown: md,
        checks: vec![Check {
            target: "batch: `get_many` of 100 keys ≥ 10× 100 sequential gets".into(),
            measured: ratio(speedup),
            verdict: Verdict::from_bool(speedup >= 10.0),
        }],
    }
}
