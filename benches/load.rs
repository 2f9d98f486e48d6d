//! The load of the fault benchmark (`benches/benches/faults.rs`): what a service puts
//! on its cache while a fault is injected. [`TASKS`] tasks call the generated
//! `CachingPolicyStore::get_policy` of one or more instances over a shared database
//! ([`VersionedStore`]); each call is timed and its answer checked against what the
//! database held when it started; a sampler reads every instance's `Cache::stats`, which
//! gives the share of reads that were hits over time ([`windows`], [`hits_back`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::policy::{CachingPolicyStore, PolicyStore as _, VersionedStore};
use cacheward::Cache;

/// Concurrent callers.
pub const TASKS: usize = 64;
/// The hot tenants every task cycles through.
pub const HOT: usize = 8;
/// One call in this many reads a tenant never read before (a miss, then a fill): the
/// cold tail of a real service, and the writes that a fault like OOM refuses.
pub const COLD_EVERY: u64 = 32;
/// What the database takes to answer a point read.
pub const DB_LATENCY: Duration = Duration::from_millis(5);
/// The pause of each task between two calls (a caller's own work).
pub const THINK: Duration = Duration::from_millis(5);
/// How often the sampler reads the caches' counters.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// The window the hit ratio is computed over, in samples (100 ms).
pub const WINDOW: usize = 10;
/// The share of reads in a window that must be hits for the window to count as
/// "hits are back".
pub const HIT_SHARE: f64 = 0.95;
/// How long hits must have been back before [`Load::wait_hits`] says so.
pub const HEALTHY_SPAN: Duration = Duration::from_secs(1);

/// One service instance: the generated decorator over the shared database.
pub type Instance = CachingPolicyStore<Arc<VersionedStore>>;

/// What a call returned, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The database's current value (or a newer one).
    Fresh,
    /// A value older than what the database held when the call started.
    Stale,
    /// An error, or no value for a tenant the database has.
    Error,
}

/// One timed call.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// Which instance served it (index into the load's instances).
    pub instance: usize,
    /// When it started, from the load's start.
    pub start: Duration,
    /// How long it took.
    pub latency: Duration,
    /// What it returned.
    pub answer: Answer,
}

impl Call {
    /// When it returned, from the load's start.
    pub fn end(&self) -> Duration {
        self.start + self.latency
    }
}

/// The counters of every instance at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// From the load's start.
    pub at: Duration,
    /// Per instance.
    pub counters: Vec<Counters>,
}

/// The counters of one instance's cache that the report uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found none (failures and skipped reads included).
    pub misses: u64,
    /// How many times the breaker opened.
    pub openings: u64,
    /// Operations Redis failed or refused (timeouts included).
    pub errors: u64,
    /// Invalidations waiting to reach Redis.
    pub pending: u64,
}

impl Counters {
    fn of(cache: &Cache) -> Counters {
        let s = cache.stats();
        Counters {
            hits: s.hits + s.near_hits,
            misses: s.misses,
            openings: s.breaker_openings,
            errors: s.errors,
            pending: s.pending_invalidations,
        }
    }
}

/// A running load.
pub struct Load {
    start: Instant,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Call>>>,
    sampler: tokio::task::JoinHandle<()>,
}

/// Everything a load recorded.
#[derive(Debug)]
pub struct Recorded {
    /// Every call, in no particular order.
    pub calls: Vec<Call>,
    /// The counters every [`SAMPLE_EVERY`].
    pub samples: Vec<Sample>,
}

impl Load {
    /// Starts [`TASKS`] tasks spread over `instances` (task `i` on instance
    /// `i % instances.len()`), reading the `hot` tenants and, one call in
    /// [`COLD_EVERY`], a fresh one (named after `run`).
    pub fn start(
        instances: &[Instance],
        db: &Arc<VersionedStore>,
        hot: &[String],
        run: usize,
    ) -> Load {
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let hot: Arc<[String]> = hot.into();
        let tasks = (0..TASKS)
            .map(|task| {
                let which = task % instances.len();
                let store = instances[which].clone();
                let (db, hot, stop) = (db.clone(), hot.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut calls = Vec::with_capacity(4096);
                    let mut i = task as u64 * 7_919;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let tenant = if i.is_multiple_of(COLD_EVERY) {
                            format!("cold-{run}-{task}-{i}")
                        } else {
                            hot[i as usize % hot.len()].clone()
                        };
                        let wanted = db.budget(&tenant);
                        let t = Instant::now();
                        let got = store.get_policy(&tenant).await;
                        let latency = t.elapsed();
                        let answer = match got {
                            Ok(Some(p)) if p.monthly_token_budget >= wanted => Answer::Fresh,
                            Ok(Some(_)) => Answer::Stale,
                            _ => Answer::Error,
                        };
                        calls.push(Call {
                            instance: which,
                            start: t - start,
                            latency,
                            answer,
                        });
                        tokio::time::sleep(THINK).await;
                    }
                    calls
                })
            })
            .collect();
        let samples = Arc::new(Mutex::new(Vec::with_capacity(2048)));
        let caches: Vec<Cache> = instances.iter().map(|i| i.cache().clone()).collect();
        let sampler = {
            let (samples, stop) = (samples.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SAMPLE_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let sample = Sample {
                        at: start.elapsed(),
                        counters: caches.iter().map(Counters::of).collect(),
                    };
                    samples
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(sample);
                }
            })
        };
        Load {
            start,
            stop,
            samples,
            tasks,
            sampler,
        }
    }

    /// Now, from the load's start.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The samples so far.
    fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until every window of `instance` over the last [`HEALTHY_SPAN`] has been
    /// healthy (hits are back) and at least `min` (or [`HEALTHY_SPAN`], if longer) has
    /// passed since `from`; gives up at `from + cap`. Returns whether it saw the hits.
    pub async fn wait_hits(
        &self,
        instance: usize,
        from: Duration,
        min: Duration,
        cap: Duration,
    ) -> bool {
        let span_samples = (HEALTHY_SPAN.as_nanos() / SAMPLE_EVERY.as_nanos()) as usize;
        loop {
            let now = self.now();
            if now >= from + min.max(HEALTHY_SPAN) {
                let samples = self.samples();
                let since = now - HEALTHY_SPAN;
                let recent: Vec<Window> = windows(&samples, instance)
                    .filter(|w| w.start >= since)
                    .collect();
                if recent.len() + WINDOW + 5 >= span_samples && recent.iter().all(Window::healthy) {
                    return true;
                }
            }
            if now >= from + cap {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the tasks and returns what they recorded.
    pub async fn finish(self) -> Recorded {
        let stopped = self.now();
        self.stop.store(true, Ordering::Relaxed);
        let mut calls = Vec::new();
        for t in self.tasks {
            calls.extend(t.await.expect("a load task panicked"));
        }
        self.sampler.await.expect("the sampler panicked");
        let samples = Arc::try_unwrap(self.samples)
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
            .unwrap_or_else(|a| a.lock().unwrap_or_else(|e| e.into_inner()).clone());
        // A sample taken while the tasks were stopping would count as reads that
        // stopped.
        let samples = samples.into_iter().filter(|s| s.at <= stopped).collect();
        Recorded { calls, samples }
    }
}

/// The reads of one instance over [`WINDOW`] consecutive sample intervals.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The time of the sample the window starts at.
    pub start: Duration,
    /// Reads that hit.
    pub hits: u64,
    /// Reads that missed.
    pub misses: u64,
}

impl Window {
    /// Whether at least [`HIT_SHARE`] of its reads hit (a window without reads is not).
    pub fn healthy(&self) -> bool {
        let reads = self.hits + self.misses;
        reads > 0 && self.hits as f64 >= HIT_SHARE * reads as f64
    }
}

/// Every full window of `instance`, sliding by one sample.
pub fn windows(samples: &[Sample], instance: usize) -> impl Iterator<Item = Window> + '_ {
    samples.windows(WINDOW + 1).map(move |w| {
        let (a, b) = (&w[0].counters[instance], &w[WINDOW].counters[instance]);
        Window {
            start: w[0].at,
            hits: b.hits - a.hits,
            misses: b.misses - a.misses,
        }
    })
}

/// When hits came back for `instance` after `fault` began: the start of the first
/// window after which every window is healthy. `None` when no window from `fault` on
/// was unhealthy (hits never stopped); `Some(None)` when the last window is unhealthy
/// (they never came back while observed).
pub fn hits_back(samples: &[Sample], instance: usize, fault: Duration) -> Option<Option<Duration>> {
    let all: Vec<Window> = windows(samples, instance).collect();
    let last_bad = all
        .iter()
        .rposition(|w| w.start + SAMPLE_EVERY * WINDOW as u32 > fault && !w.healthy())?;
    Some(all.get(last_bad + 1).map(|w| w.start))
}

/// The counters of `instance` at the last sample at or before `at` (the first sample
/// if none).
pub fn counters_at(samples: &[Sample], instance: usize, at: Duration) -> Counters {
    let i = samples.partition_point(|s| s.at <= at).max(1) - 1;
    samples
        .get(i)
        .map_or_else(Counters::default, |s| s.counters[instance])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(per_interval: &[(u64, u64)]) -> Vec<Sample> {
        let mut out = vec![Sample {
            at: Duration::ZERO,
            counters: vec![Counters::default()],
        }];
        let mut c = Counters::default();
        for (i, &(h, m)) in per_interval.iter().enumerate() {
            c.hits += h;
            c.misses += m;
            out.push(Sample {
                at: SAMPLE_EVERY * (i as u32 + 1),
                counters: vec![c],
            });
        }
        out
    }

    #[test]
    fn hits_come_back_at_the_end_of_the_last_bad_stretch() {
        // 30 good intervals, 20 of misses from interval 30, 40 good.
        let mut v = vec![(100, 2); 30];
        v.extend(vec![(0, 50); 20]);
        v.extend(vec![(100, 2); 40]);
        let s = samples(&v);
        let back = hits_back(&s, 0, SAMPLE_EVERY * 30).unwrap().unwrap();
        assert_eq!(back, SAMPLE_EVERY * 50);
        // Never stopped.
        let s = samples(&[(100, 2); 60]);
        assert_eq!(hits_back(&s, 0, SAMPLE_EVERY * 10), None);
        // Never came back.
        let mut v = vec![(100, 2); 20];
        v.extend(vec![(0, 50); 20]);
        let s = samples(&v);
        assert_eq!(hits_back(&s, 0, SAMPLE_EVERY * 20), Some(None));
    }

    #[test]
    fn counters_are_read_at_a_moment() {
        let s = samples(&[(1, 0), (1, 0), (1, 0)]);
        assert_eq!(counters_at(&s, 0, SAMPLE_EVERY * 2).hits, 2);
        assert_eq!(counters_at(&s, 0, Duration::from_secs(9)).hits, 3);
    }
}
