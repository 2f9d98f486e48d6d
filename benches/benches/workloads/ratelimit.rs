//! Workload 5, the rate limiter: each algorithm's checks against an `INCR` + `EXPIRE`
//! pipeline, with the server's own time per check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use cacheward_benches::harness::median;
use cacheward_benches::policy::BackingStore;
use cacheward_benches::report::{self, Section, Table, ratio_runs, ratio_with_range};
use cacheward_tests::RedisServer;

use crate::sweep::{measure_clean, sweep};
use crate::variant::{Keys, Subjects, Variant};
use crate::{Config, bench_cache};

const TASKS: usize = 64;

/// `INFO commandstats` as (command → (calls, usec)).
async fn command_stats(conn: &redis::aio::MultiplexedConnection) -> BTreeMap<String, (u64, u64)> {
    let mut conn = conn.clone();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |f: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(f)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            Some((name.to_owned(), (field("calls")?, field("usec")?)))
        })
        .collect()
}

/// Server time per check between two `INFO commandstats`: `INCR(BY)`+`EXPIRE` per `INCR(BY)`
/// for the floor, `EVALSHA`+`EVAL` per call for a limiter.
fn server_usec_per_op(
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
    floor: bool,
) -> f64 {
    let delta = |name: &str| {
        let (c0, u0) = before.get(name).copied().unwrap_or_default();
        let (c1, u1) = after.get(name).copied().unwrap_or_default();
        (c1.saturating_sub(c0), u1.saturating_sub(u0))
    };
    let (calls, usec) = if floor {
        // redis-rs sends `incr(key, 1)` as INCRBY.
        let (ci, ui) = delta("incrby");
        let (ci2, ui2) = delta("incr");
        let (_, ue) = delta("expire");
        (ci + ci2, ui + ui2 + ue)
    } else {
        let (cs, us) = delta("evalsha");
        let (ce, ue) = delta("eval");
        (cs + ce, us + ue)
    };
    if calls == 0 {
        f64::NAN
    } else {
        usec as f64 / calls as f64
    }
}

/// The three algorithms and the floor at 64 tasks.
pub async fn run(cfg: &Config, server: &RedisServer) -> Section {
    let url = server.url();
    let subjects = Arc::new(Subjects::new(&url, bench_cache(&url), BackingStore::instant()).await);
    let mut conn = subjects.floor.clone();
    for v in [Variant::Fixed, Variant::Sliding, Variant::Bucket] {
        assert!(subjects.op(v, &mut conn, &"warm-up".to_owned()).await);
    }
    let variants = [
        Variant::IncrExpire,
        Variant::Fixed,
        Variant::Sliding,
        Variant::Bucket,
    ];
    let server_usec: Mutex<BTreeMap<Variant, Vec<f64>>> = Mutex::default();
    let sweep = sweep("ratelimit", cfg, &[TASKS], &variants, |v, tasks, _| {
        let (subjects, server_usec) = (&subjects, &server_usec);
        async move {
            let before = command_stats(&subjects.floor).await;
            let (s, ok) = measure_clean(subjects, v, Keys::Tenants, tasks, cfg).await;
            let after = command_stats(&subjects.floor).await;
            if ok {
                let usec = server_usec_per_op(&before, &after, v == Variant::IncrExpire);
                eprintln!("ratelimit {v:?}: server {usec:.2} µs/op");
                server_usec
                    .lock()
                    .expect("server time")
                    .entry(v)
                    .or_default()
                    .push(usec);
            }
            (s, ok)
        }
    })
    .await;
    let runs = &sweep.runs;
    let server_usec = server_usec.into_inner().expect("server time");
    let mut md = String::from("### 5. Rate limiter\n\n");
    md.push_str(&report::rerun_note(sweep.rerun));
    let _ = writeln!(
        md,
        "{TASKS} tasks, 1,000 identifiers, one connection, limits high enough that every check \
         is allowed (`check_detailed`; each check asserted not degraded). Each algorithm is \
         one Lua script per check (`EVALSHA`); the floor is a non-atomic `INCR` + `EXPIRE` \
         pipeline. Medians over {} rounds.\n",
        cfg.rounds
    );
    md.push_str(&report::summary_table(
        runs,
        TASKS,
        &[
            (
                Variant::IncrExpire,
                "plain `INCR` + `EXPIRE` pipeline (floor)",
            ),
            (Variant::Fixed, "fixed window"),
            (Variant::Sliding, "sliding window"),
            (Variant::Bucket, "token bucket"),
        ],
    ));
    let mut t = Table::new(&[
        "variant",
        "throughput / floor (median, range)",
        "redis-server µs per check (`INFO commandstats`)",
    ]);
    for (v, name) in [
        (Variant::IncrExpire, "`INCR` + `EXPIRE` (floor)"),
        (Variant::Fixed, "fixed window"),
        (Variant::Sliding, "sliding window"),
        (Variant::Bucket, "token bucket"),
    ] {
        let (m, r) = ratio_runs(runs, TASKS, v, Variant::IncrExpire, |s| s.ops_per_sec);
        let usec = server_usec.get(&v).map_or(f64::NAN, |u| median(u));
        t.row(vec![
            name.to_owned(),
            ratio_with_range(m, r),
            format!("{usec:.2}"),
        ]);
    }
    md.push('\n');
    md.push_str(&t.to_markdown());
    Section {
        markdown: md,
        checks: Vec::new(),
    }
}
