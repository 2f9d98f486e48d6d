//! The async measurement harness: N tokio tasks run a body for a warm-up and a measured
//! window; each timed operation's latency is recorded; the result is throughput and
//! latency percentiles.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Handed to each task's body: says whether to keep going and times operations.
#[derive(Debug)]
pub struct Probe {
    phase: Arc<AtomicU8>,
    latencies: Vec<u64>,
    failures: u64,
}

impl Probe {
    /// Whether the body should run another operation.
    #[inline]
    pub fn running(&self) -> bool {
        self.phase.load(Ordering::Relaxed) != STOP
    }

    /// Counts an operation that did not do what the cell measures (a miss on the hit
    /// path, a degraded check): the caller re-runs or rejects the cell.
    pub fn fail(&mut self) {
        self.failures += 1;
    }

    /// Runs `fut`, recording its latency if it started inside the measured window.
    #[inline]
    pub async fn time<F: Future>(&mut self, fut: F) -> F::Output {
        let measured = self.phase.load(Ordering::Relaxed) == MEASURE;
        let start = Instant::now();
        let out = fut.await;
        if measured {
            self.latencies.push(start.elapsed().as_nanos() as u64);
        }
        // An operation that completes without waiting (an in-process hit) never yields:
        // spend the task's budget, outside the timed region, so that 64 such tasks on 2
        // workers still let the timer that ends the window run.
        tokio::task::coop::consume_budget().await;
        out
    }
}

/// Throughput and latency percentiles of one measured run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Operations timed.
    pub ops: u64,
    /// Operations per second over the measured window.
    pub ops_per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// 99.9th percentile latency.
    pub p999: Duration,
    /// Slowest operation.
    pub max: Duration,
    /// Operations the body reported with [`Probe::fail`] (warm-up included).
    pub failures: u64,
}

impl Summary {
    /// Summarizes latencies (nanoseconds) recorded over `window`.
    pub fn from_latencies(mut latencies: Vec<u64>, window: Duration) -> Summary {
        latencies.sort_unstable();
        let n = latencies.len();
        let pick = |q: f64| -> Duration {
            if n == 0 {
                return Duration::ZERO;
            }
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            Duration::from_nanos(latencies[rank - 1])
        };
        Summary {
            ops: n as u64,
            ops_per_sec: if window.is_zero() {
                0.0
            } else {
                n as f64 / window.as_secs_f64()
            },
            p50: pick(0.50),
            p99: pick(0.99),
            p999: pick(0.999),
            max: latencies
                .last()
                .map_or(Duration::ZERO, |&ns| Duration::from_nanos(ns)),
            failures: 0,
        }
    }
}

/// Runs `tasks` copies of `body` concurrently: `warmup` unmeasured, then `measure`
/// measured. Each body loops while [`Probe::running`] and wraps each operation in
/// [`Probe::time`], then returns its probe.
pub async fn run_tasks<B, Fut>(
    tasks: usize,
    warmup: Duration,
    measure: Duration,
    body: B,
) -> Summary
where
    B: Fn(usize, Probe) -> Fut,
    Fut: Future<Output = Probe> + Send + 'static,
{
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let probe = Probe {
                phase: phase.clone(),
                latencies: Vec::with_capacity(1 << 14),
                failures: 0,
            };
            tokio::spawn(body(task, probe))
        })
        .collect();
    tokio::time::sleep(warmup).await;
    phase.store(MEASURE, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(measure).await;
    phase.store(STOP, Ordering::Relaxed);
    let window = start.elapsed();
    let mut all = Vec::new();
    let mut failures = 0;
    for h in handles {
        let probe = h.await.expect("benchmark task panicked");
        all.extend_from_slice(&probe.latencies);
        failures += probe.failures;
    }
    let mut summary = Summary::from_latencies(all, window);
    summary.failures = failures;
    summary
}

/// The median of `values` (the mean of the middle two for an even count); NaN if empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if !n.is_multiple_of(2) {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The smallest and largest of `values`, ignoring NaN.
pub fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x), hi.max(x))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_ranks() {
        let lat: Vec<u64> = (1..=1000).rev().collect();
        let s = Summary::from_latencies(lat, Duration::from_secs(2));
        assert_eq!(s.ops, 1000);
        assert_eq!(s.ops_per_sec, 500.0);
        assert_eq!(s.p50, Duration::from_nanos(500));
        assert_eq!(s.p99, Duration::from_nanos(990));
        assert_eq!(s.p999, Duration::from_nanos(999));
        assert_eq!(s.max, Duration::from_nanos(1000));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(range(&[2.0, f64::NAN, 5.0, 1.0]), (1.0, 5.0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_tasks_counts_only_the_measured_window() {
        let s = run_tasks(
            4,
            Duration::from_millis(50),
            Duration::from_millis(200),
            |_, mut probe| async move {
                while probe.running() {
                    probe
                        .time(tokio::time::sleep(Duration::from_millis(10)))
                        .await;
                }
                probe
            },
        )
        .await;
        // 4 tasks x ~20 sleeps of >= 10 ms in 200 ms (timer granularity makes it fewer).
        assert!(s.ops > 20 && s.ops <= 84, "{s:?}");
        assert!(s.p50 >= Duration::from_millis(10), "{s:?}");
    }
}
