//! `--profile VARIANT --ops N`: a fixed amount of work for `perf stat` or callgrind,
//! instead of the timed workloads.

use std::sync::Arc;
use std::time::Instant;

use cacheward_benches::policy::BackingStore;
use cacheward_tests::RedisServer;

use crate::bench_cache;
use crate::variant::{Keys, Subjects, Variant, dispatch};

/// `ops` operations of `v`, all hits (or allowed checks, or whole batches). With
/// `tasks == 0`, one after the other on a current-thread runtime (instructions per
/// operation: the difference of two runs with different `ops`); otherwise spread over
/// `tasks` concurrent tasks on a 2-worker runtime. Against `url`, or a server of its
/// own (so that `perf stat` with inheritance can count the benchmark's threads only).
/// Prints nothing but a one-line summary (and, concurrent, the per-call future sizes).
pub fn run(v: Variant, ops: u64, tasks: usize, url: Option<&str>) {
    let rt = if tasks == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let concurrent = tasks > 0;
    let tasks = tasks.max(1);
    let server = url.is_none().then(RedisServer::start);
    let url = url.map_or_else(|| server.as_ref().expect("server").url(), str::to_owned);
    rt.block_on(async {
        let mut subjects = Subjects::new(&url, bench_cache(&url), BackingStore::instant()).await;
        subjects.load_tenants().await;
        subjects.load_batch().await;
        if matches!(
            v,
            Variant::Near
                | Variant::NearBare
                | Variant::NearShared
                | Variant::NearArc
                | Variant::NearGet
                | Variant::CachedCsc
        ) {
            subjects.add_near_cache(&url).await;
        }
        let loads = subjects.inner.calls();
        let subjects = Arc::new(subjects);
        if concurrent {
            eprintln!("{}", subjects.future_sizes());
        }
        let per_task = ops as usize / tasks;
        let start = Instant::now();
        let handles: Vec<_> = dispatch!(v, op => (0..tasks)
            .map(|task| {
                let s = subjects.clone();
                tokio::spawn(async move {
                    let mut conn = s.floor.clone();
                    let mut found = 0;
                    for i in 0..per_task {
                        let tenant = s.tenant(Keys::Tenants, v, task, task * 7_919 + i);
                        found += usize::from(op(&s, &mut conn, &tenant).await);
                        tokio::task::consume_budget().await; // see sweep::measure

                    }
                    found
                })
            })
            .collect());
        let mut found = 0;
        for h in handles {
            found += h.await.expect("task");
        }
        assert_eq!(
            found,
            per_task * tasks,
            "every operation must succeed (hits, non-degraded checks)"
        );
        if v != Variant::Inner {
            assert_eq!(subjects.inner.calls(), loads, "every read must hit");
        }
        println!(
            "{}: {found} operations by {tasks} task(s) in {:?}",
            v.name(),
            start.elapsed()
        );
    });
}
