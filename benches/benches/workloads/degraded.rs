//! Workload 3, degraded: Redis frozen with SIGSTOP, the decorator's cost before and
//! after the breaker opens.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cacheward::Cache;
use cacheward_benches::harness::{Summary, median};
use cacheward_benches::policy::BackingStore;
use cacheward_benches::report::{self, Check, Section, Table, Verdict, us_of};
use cacheward_tests::RedisServer;

use crate::Config;
use crate::sweep::sweep;
use crate::variant::{Subjects, Variant, dispatch};

/// How long a run may last, and how many calls it makes after the breaker opened.
const LIMIT: Duration = Duration::from_secs(5);
const AFTER_CALLS: usize = 20_000;
/// How many tenants the calls cycle through.
const FROZEN_TENANTS: usize = 100;

/// Latencies of sequential calls while Redis is frozen, split at the breaker opening,
/// and of the inner store alone making the same calls.
#[derive(Debug)]
struct Degraded {
    inner: Summary,
    before: Summary,
    after: Summary,
    /// Calls after the first fast one that still took ≥ 1 ms (probes).
    slow_after: usize,
    /// Time from the freeze to the first fast call.
    open_after: Option<Duration>,
}

/// Sequential calls of `v` from the freeze, for up to [`LIMIT`] or until
/// [`AFTER_CALLS`] calls after the breaker opened; `inner` is the inner store's run.
async fn frozen_run(subjects: &Subjects, v: Variant, inner: Summary) -> Degraded {
    dispatch!(v, op => {
    let fast = Duration::from_millis(1);
    let mut conn = subjects.floor.clone();
    let start = Instant::now();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut slow_after = 0;
    let mut open_after = None;
    let mut i = 0;
    while start.elapsed() < LIMIT && after.len() < AFTER_CALLS {
        let tenant = &subjects.tenants[i % FROZEN_TENANTS];
        i += 1;
        let t = Instant::now();
        let answered = op(subjects, &mut conn, tenant).await;
        let d = t.elapsed();
        assert!(answered, "degraded calls still answer");
        if open_after.is_none() && d < fast {
            open_after = Some(start.elapsed());
        }
        if open_after.is_some() {
            slow_after += usize::from(d >= fast);
            after.push(d.as_nanos() as u64);
        } else {
            before.push(d.as_nanos() as u64);
        }
    }
    let elapsed = start.elapsed();
    Degraded {
        inner,
        before: Summary::from_latencies(before, elapsed),
        after: Summary::from_latencies(after, elapsed),
        slow_after,
        open_after,
    }
    })
}

/// The inner store alone, the same calls as [`frozen_run`] makes.
async fn inner_alone(subjects: &Subjects) -> Summary {
    let mut conn = subjects.floor.clone();
    let mut lat = Vec::with_capacity(AFTER_CALLS);
    for i in 0..AFTER_CALLS {
        let t = Instant::now();
        let answered = subjects
            .op(
                Variant::Inner,
                &mut conn,
                &subjects.tenants[i % FROZEN_TENANTS],
            )
            .await;
        lat.push(t.elapsed().as_nanos() as u64);
        assert!(answered);
    }
    Summary::from_latencies(lat, Duration::from_secs(1))
}

/// The decorators with Redis frozen; each variant gets its own server and cache (the
/// runtime's defaults) per round.
pub async fn run(cfg: &Config) -> Section {
    let variants = [Variant::Generated, Variant::Hand];
    let sweep = sweep("degraded", cfg, &[1], &variants, |v, _, _| async move {
        let mut server = RedisServer::start();
        let url = server.url();
        let cache = Cache::redis(&url).expect("cache url");
        let subjects = Subjects::new(&url, cache, BackingStore::instant()).await;
        let mut conn = subjects.floor.clone();
        for tenant in &subjects.tenants[..FROZEN_TENANTS] {
            let _ = subjects.op(Variant::Hand, &mut conn, tenant).await;
        }
        let inner = inner_alone(&subjects).await;
        server.freeze();
        let d = frozen_run(&subjects, v, inner).await;
        server.thaw();
        (d, true)
    })
    .await;
    let all: Vec<&Degraded> = sweep.runs.values().flatten().collect();
    let inner_p50 = median(&all.iter().map(|d| us_of(d.inner.p50)).collect::<Vec<_>>());
    let inner_p99 = median(&all.iter().map(|d| us_of(d.inner.p99)).collect::<Vec<_>>());
    let mut md = String::from("### 3. Degraded: Redis frozen with SIGSTOP\n\n");
    let _ = writeln!(
        md,
        "The inner store answers at once (so the decorator's own cost shows); the cache has \
         the runtime's defaults (deadline, breaker threshold and cool-down, see \
         `docs/failover.md`). Sequential calls from the freeze, for up to {} s or until \
         {AFTER_CALLS} calls after the breaker opened. \"Before\" is every call until the \
         first one under 1 ms; \"after\" is every call from then on (including the breaker's \
         probes, counted in \"slow calls after\"). Each variant gets its own server and cache \
         per round; medians over {} rounds.\n",
        LIMIT.as_secs(),
        cfg.rounds,
    );
    let mut t = Table::new(&[
        "variant",
        "calls before open",
        "before p50 µs",
        "before p99 µs",
        "breaker open after ms",
        "after p50 µs",
        "after p99 µs",
        "slow calls after",
        "added p99 µs",
    ]);
    t.row(vec![
        "inner store alone".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
        report::us_f(inner_p50),
        report::us_f(inner_p99),
        "-".into(),
        "-".into(),
    ]);
    let mut generated_added = f64::NAN;
    for (v, name) in [
        (Variant::Generated, "generated `CachingPolicyStore`"),
        (Variant::Hand, "hand-written decorator over `Cache`"),
    ] {
        let rows = sweep.runs.get(&(1, v)).map_or(&[][..], Vec::as_slice);
        let m = |f: &dyn Fn(&Degraded) -> f64| median(&rows.iter().map(f).collect::<Vec<_>>());
        let opened = rows.iter().filter(|d| d.open_after.is_some()).count();
        let after = |f: fn(&Summary) -> Duration| {
            m(&|d: &Degraded| {
                if d.after.ops == 0 {
                    f64::NAN
                } else {
                    us_of(f(&d.after))
                }
            })
        };
        let after_p99 = after(|s| s.p99);
        let added = after_p99 - inner_p99;
        if v == Variant::Generated {
            generated_added = added;
        }
        t.row(vec![
            name.to_owned(),
            format!("{:.0}", m(&|d| d.before.ops as f64)),
            report::us_f(m(&|d| us_of(d.before.p50))),
            report::us_f(m(&|d| us_of(d.before.p99))),
            if opened < rows.len() {
                format!("opened in {opened} of {} rounds", rows.len())
            } else {
                format!(
                    "{:.0}",
                    m(&|d| d.open_after.map_or(f64::NAN, |o| o.as_secs_f64() * 1e3))
                )
            },
            report::us_f(after(|s| s.p50)),
            report::us_f(after_p99),
            format!("{:.0}", m(&|d| d.slow_after as f64)),
            report::us_f(added),
        ]);
    }
    md.push_str(&t.to_markdown());
    Section {
        markdown: md,
        checks: vec![Check {
            target: "degraded, breaker open: the decorator adds < 5 µs p99 over the inner store"
                .into(),
            measured: format!("{} µs", report::us_f(generated_added)),
            verdict: Verdict::from_bool(generated_added < 5.0),
        }],
    }
}
