//! The one measurement loop ([`measure`]) and the one sweep over rounds, concurrency
//! levels and variants ([`sweep`]) every workload is made of.

use std::sync::Arc;
use std::time::Duration;

use cacheward::{Cache, CacheStats};
use cacheward_benches::harness::{Summary, run_tasks};

use crate::Config;
use crate::variant::{Keys, Subjects, Variant, dispatch};

/// Runs `v` in `tasks` concurrent tasks for the configured warm-up and measured window,
/// each task on its own clone of the floor's connection, reading `keys`; an operation
/// that did not do what `v` measures is a failure of the cell.
pub async fn measure(
    subjects: &Arc<Subjects>,
    v: Variant,
    keys: Keys,
    tasks: usize,
    cfg: &Config,
) -> Summary {
    dispatch!(v, op => {
        let subjects = subjects.clone();
        run_tasks(tasks, cfg.warmup, cfg.measure, move |task, mut probe| {
            let s = subjects.clone();
            async move {
                let mut conn = s.floor.clone();
                let mut i = task * 7_919;
                while probe.running() {
                    let tenant = s.tenant(keys, v, task, i);
                    i += 1;
                    if !probe.time(op(&s, &mut conn, &tenant)).await {
                        probe.fail();
                    }
                    // An in-process hit never waits, so without this a task would
                    // never yield and 64 of them would hold both workers for good
                    // (the window's timer could not fire). Outside the timed part.
                    tokio::task::consume_budget().await;
                }
                probe
            }
        })
        .await
    })
}

/// [`measure`], valid when no operation failed and the cache failed none since `before`.
pub async fn measure_clean(
    subjects: &Arc<Subjects>,
    v: Variant,
    keys: Keys,
    tasks: usize,
    cfg: &Config,
) -> (Summary, bool) {
    let before = subjects.cache.stats();
    let s = measure(subjects, v, keys, tasks, cfg).await;
    let ok = clean(&subjects.cache, before) && s.failures == 0;
    if !ok {
        eprintln!(
            "{v:?} at {tasks} tasks: {} failed operations; cache stats before {before:?}, after {:?}",
            s.failures,
            subjects.cache.stats()
        );
    }
    (s, ok)
}

/// Whether the cache failed no operation since `before`: a cell that timed out or
/// short-circuited measured something other than what it claims.
pub fn clean(cache: &Cache, before: CacheStats) -> bool {
    let now = cache.stats();
    now.errors == before.errors
        && now.timeouts == before.timeouts
        && now.short_circuited == before.short_circuited
        && now.breaker_openings == before.breaker_openings
}

/// The cells of a sweep and how many were measured again.
pub struct Sweep<T> {
    /// Per (tasks, variant): one result per round.
    pub runs: std::collections::BTreeMap<(usize, Variant), Vec<T>>,
    /// Cells thrown away because they were not valid.
    pub rerun: usize,
}

/// Every variant at every concurrency once per round, the variants in a rotated order
/// (so none always runs first and ratios compare cells of the same round). `cell`
/// measures one (variant, tasks, round) and says whether the result is valid; an
/// invalid cell is measured again, up to 3 times, after the breaker's cool-down, and
/// the sweep panics if no attempt was valid: a benchmark that measured misses or
/// degraded checks must not report them as hits.
pub async fn sweep<T, F, Fut>(
    what: &str,
    cfg: &Config,
    concurrency: &[usize],
    variants: &[Variant],
    mut cell: F,
) -> Sweep<T>
where
    T: std::fmt::Debug,
    F: FnMut(Variant, usize, usize) -> Fut,
    Fut: Future<Output = (T, bool)>,
{
    let mut out = Sweep {
        runs: Default::default(),
        rerun: 0,
    };
    for round in 0..cfg.rounds {
        for &tasks in concurrency {
            for v in rotated(variants, round) {
                let mut attempt = 0;
                let result = loop {
                    let (result, ok) = cell(v, tasks, round).await;
                    if ok {
                        break result;
                    }
                    attempt += 1;
                    assert!(
                        attempt < 3,
                        "{what}: three attempts in a row saw cache failures; the machine is too loaded"
                    );
                    eprintln!(
                        "{what}: {v:?} at {tasks} tasks was not valid; waiting for the \
                         breaker's cool-down and re-running it"
                    );
                    tokio::time::sleep(Duration::from_millis(1_500)).await;
                };
                out.rerun += attempt;
                eprintln!("{what} round {round} tasks {tasks:>2} {v:?}: {result:?}");
                out.runs.entry((tasks, v)).or_default().push(result);
            }
        }
    }
    out
}

/// Rotates `items` by `round`, so no variant always runs first.
fn rotated<T: Copy>(items: &[T], round: usize) -> Vec<T> {
    let mut v = items.to_vec();
    let n = v.len();
    v.rotate_left(round % n);
    v
}
