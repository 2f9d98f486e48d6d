//! Workload 1c, how long a near cache serves the old value after another client's
//! write: a warm near-cached instance, N `SET`s from a plain redis-rs client, and after
//! each a tight loop of reads on the instance until it answers the new value. The same
//! for `cached`'s client-side caching (redis-rs `cache-aio`), written by another
//! `cached` instance.

use std::future::Future;
use std::time::{Duration, Instant};

use cached::ConcurrentCachedAsync as _;
use cacheward::Cache;
use cacheward_benches::policy::{
    BackingStore, CachingPolicyStore, PolicyStore as _, TenantLlmPolicy, policy_key,
};
use cacheward_benches::report::{self, Check, Section, Table, Verdict};
use cacheward_tests::RedisServer;
use redis::AsyncCommands as _;

use crate::Config;

/// The most a sample may take before the workload gives up on it.
const LIMIT: Duration = Duration::from_secs(2);

/// The delays of one subject, over N writes.
struct Delays {
    /// From sending the write to the first read of the new value.
    seen: Vec<Duration>,
    /// From the write's reply to the first read of the new value (0 when the first read
    /// after the reply had it): how long a writer that has returned still has the
    /// instance serve the old value.
    stale: Vec<Duration>,
    /// Samples that never saw the new value within [`LIMIT`].
    lost: usize,
}

impl Delays {
    fn new() -> Delays {
        Delays {
            seen: Vec::new(),
            stale: Vec::new(),
            lost: 0,
        }
    }

    fn pick(sorted: &[Duration], q: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn row(&mut self, name: &str) -> Vec<String> {
        self.seen.sort_unstable();
        self.stale.sort_unstable();
        vec![
            name.to_owned(),
            self.seen.len().to_string(),
            report::us(Self::pick(&self.seen, 0.5)),
            report::us(Self::pick(&self.seen, 0.99)),
            report::us(Self::pick(&self.stale, 0.5)),
            report::us(Self::pick(&self.stale, 0.99)),
            report::us(self.seen.last().copied().unwrap_or_default()),
            self.lost.to_string(),
        ]
    }
}

/// Reads with `read` until it answers `version`; when that was, or `None` past `LIMIT`.
async fn first_read_of<F, Fut>(mut read: F, version: u32) -> Option<Instant>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<u32>>,
{
    let start = Instant::now();
    loop {
        if read().await == Some(version) {
            return Some(Instant::now());
        }
        if start.elapsed() > LIMIT {
            return None;
        }
        // A near hit never yields: let the feed's reader run if it shares this worker.
        tokio::task::yield_now().await;
    }
}

/// The policy of `tenant` at `version` (kept in `max_tokens_per_request`).
fn policy(tenant: &str, version: u32) -> TenantLlmPolicy {
    TenantLlmPolicy {
        max_tokens_per_request: version,
        ..TenantLlmPolicy::sample(tenant)
    }
}

/// Time from an external write to the first read of the new value, for cacheward's near
/// cache (through the generated decorator) and for `cached`'s client-side caching.
pub async fn run(cfg: &Config, server: &RedisServer) -> Section {
    let samples = 50 * cfg.rounds.clamp(1, 10);
    let url = server.url();
    let mut writer = server.connection().await;

    // cacheward: the decorator over a near-cached instance; the writer is a plain client.
    let tenant = "evict-tenant";
    let key = policy_key(tenant);
    let cache = crate::bench_builder(&url)
        .near_cache(100)
        .build()
        .expect("cache url");
    let store = &CachingPolicyStore::new(BackingStore::instant(), cache.clone());
    let read = move || async move {
        store
            .get_policy(tenant)
            .await
            .ok()
            .flatten()
            .map(|p| p.max_tokens_per_request)
    };
    let mut near = Delays::new();
    for version in 1..=samples as u32 {
        let old = version - 1;
        let json = serde_json::to_vec(&policy(tenant, old)).expect("json");
        let _: () = writer.set_ex(&key, json, 3_600).await.expect("SET");
        warm(&cache, read, old).await;
        let json = serde_json::to_vec(&policy(tenant, version)).expect("json");
        let sent = Instant::now();
        let _: () = writer.set_ex(&key, json, 3_600).await.expect("SET");
        let acked = Instant::now();
        match first_read_of(read, version).await {
            Some(at) => {
                near.seen.push(at - sent);
                near.stale.push(at.saturating_duration_since(acked));
            }
            None => near.lost += 1,
        }
    }

    // `cached`: a client-side-caching instance, written by another instance.
    let csc = &crate::variant::cached_policies(&url, "bench-evict", true).await;
    let other = crate::variant::cached_policies(&url, "bench-evict", false).await;
    let csc_read = move || async move {
        csc.async_cache_get(&tenant.to_owned())
            .await
            .ok()
            .flatten()
            .map(|p| p.max_tokens_per_request)
    };
    let mut cached_csc = Delays::new();
    for version in 1..=samples as u32 {
        let old = version - 1;
        other
            .async_cache_set(tenant.to_owned(), policy(tenant, old))
            .await
            .expect("cached set");
        // Until the client-side cache holds the old value: the read that first answers
        // it from Redis puts it there.
        let start = Instant::now();
        while csc_read().await != Some(old) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "cached never read version {old}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let sent = Instant::now();
        other
            .async_cache_set(tenant.to_owned(), policy(tenant, version))
            .await
            .expect("cached set");
        let acked = Instant::now();
        match first_read_of(csc_read, version).await {
            Some(at) => {
                cached_csc.seen.push(at - sent);
                cached_csc.stale.push(at.saturating_duration_since(acked));
            }
            None => cached_csc.lost += 1,
        }
    }

    let mut table = Table::new(&[
        "subject",
        "writes",
        "write → new value p50 (µs)",
        "p99 (µs)",
        "stale after the write returned p50 (µs)",
        "p99 (µs)",
        "max (µs)",
        "never seen",
    ]);
    table.row(near.row("(n) cacheward near cache, generated decorator"));
    table.row(cached_csc.row("(c) `cached` `AsyncRedisCache`, `client_side_caching(true)`"));
    let mut md = String::from("### 1c. Near cache: from another client's write to eviction\n\n");
    md.push_str(&format!(
        "A warm instance serves one policy from its in-process tier; another client writes \
         a new version {samples} times, and after each write the instance is read in a tight \
         loop (yielding between reads) until it answers the new version. \"write → new \
         value\" runs from sending the write; \"stale after the write returned\" from its \
         reply, so it is how long a writer that has returned still sees the instance serve \
         the old value. (n) is written with a plain redis-rs `SET`; (c) by a second \
         `cached` instance (its entries are MessagePack in its own envelope).\n\n"
    ));
    md.push_str(&table.to_markdown());
    let p99 = Delays::pick(&near.seen, 0.99);
    let checks = vec![Check {
        target: "near cache: another client's write evicts within 50 ms (SPEC §4.3), p99".into(),
        measured: format!("{} µs", report::us(p99)),
        verdict: Verdict::from_bool(near.lost == 0 && p99 <= Duration::from_millis(50)),
    }];
    Section {
        markdown: md,
        checks,
    }
}

/// Reads until `cache` answers `version` from its near cache.
async fn warm<F, Fut>(cache: &Cache, mut read: F, version: u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<u32>>,
{
    let start = Instant::now();
    loop {
        let before = cache.stats().near_hits;
        let got = read().await;
        if got == Some(version) && cache.stats().near_hits > before {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the near cache never served version {version}: {:?}",
            cache.stats()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
