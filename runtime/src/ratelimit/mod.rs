//! Distributed rate limiting on Redis that fails open (and single-process rate
//! limiting on [`Cache::memory`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use cacheward::{Algorithm, Cache, RateLimiter};
//!
//! # async fn handler(client_ip: &str) {
//! let cache = Cache::from_env();
//! let limiter = RateLimiter::new(&cache, "telemetry", Algorithm::sliding_window(100, Duration::from_secs(60)));
//! let allowed: bool = limiter.check(client_ip).await;
//! let d = limiter.check_detailed(client_ip).await; // Decision { allowed, remaining, reset_after, degraded }
//! # }
//! ```
//!
//! * **One round trip per check.** Each check runs one Lua script (`EVALSHA`; on
//!   `NOSCRIPT` the script is loaded and run again) that reads the time from Redis
//!   `TIME`, decides, and writes with a `PEXPIRE` on the key it touches. Client clocks
//!   never matter.
//! * **A rejected request consumes nothing**, in every algorithm.
//! * **Keys**: `<prefix>:ratelimit:<bucket>:{<identifier>}`: the prefix defaults to
//!   `cacheward` ([`RateLimiter::prefix`]); the bucket and the identifier go through
//!   the [key encoding](crate::key), so `:`, `*`, `{` or unicode in an identifier can
//!   neither collide with another identifier nor widen [`RateLimiter::reset`]. The
//!   braces are a Redis Cluster hash tag: all the state of one identifier (in every
//!   bucket) lives in one slot. Each algorithm keeps its state in exactly one hash key.
//! * **On [`Cache::memory`]** the same algorithms run in the process, with the same
//!   answers, on state held by the limiter (shared by its clones, not by two limiters
//!   built separately): for development and tests, or a service that runs as one
//!   process. It never fails.
//! * **Fail-open**: on a pass-through cache the limiter allows everything (it is
//!   the allow-all limiter; said once in the log). When Redis is down, times out or is
//!   behind an open circuit breaker, checks are allowed with [`Decision::degraded`]
//!   set, a warning is logged at most every 10 s per limiter, and the failures are
//!   counted ([`RateLimiter::stats`], and the `ratelimiter.*` metrics with the
//!   `metrics` feature, labelled by `bucket`, `backend`, `result` or `error_type`).
//!
//! See `docs/rate-limiting.md` for which algorithm to choose and what each guarantees.

mod algorithm;
mod decision;
mod local;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::cache::Cache;
use crate::error::CacheError;
use crate::key::{KeyPart, write_escaped};

pub use algorithm::{Algorithm, Refill};
pub use decision::Decision;

/// The key prefix used unless [`RateLimiter::prefix`] sets another.
pub const DEFAULT_PREFIX: &str = "cacheward";

/// The label the limiter's `DEL`s are counted under in the cache's stats.
const LABEL: &str = "ratelimit";

/// At most one degraded-mode warning per limiter (and its clones) in this interval.
const WARN_INTERVAL_MS: i64 = 10_000;

/// A distributed rate limiter on a [`Cache`]. See the [module docs](self).
///
/// Cheap to clone (clones share their counters); `Send + Sync`.
#[derive(Clone)]
pub struct RateLimiter {
    cache: Cache,
    algorithm: Algorithm,
    enforcing: bool,
    bucket: Arc<str>,
    /// The identifiers' state when the cache is [`Cache::memory`].
    local: Option<Arc<local::LocalState>>,
    /// `<prefix>:ratelimit:<encoded bucket>:`
    key_prefix: Arc<str>,
    shared: Arc<Shared>,
    clock: ClientClock,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("bucket", &self.bucket)
            .field("algorithm", &self.algorithm)
            .field("backend", &self.cache.backend())
            .field("allow_all", &!self.enforcing)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter for `bucket` (a name for what is limited, e.g. `"login"`), counting
    /// with `algorithm` in `cache`.
    ///
    /// On a Redis, Redis Cluster or Upstash cache the limits are enforced across every
    /// process that shares the server. On a memory cache they are enforced in this
    /// process, on state this limiter and its clones share. On a pass-through cache
    /// this is the allow-all limiter: every check is allowed and marked `degraded`.
    ///
    /// Give each algorithm configuration its own bucket: two limiters with the same
    /// prefix and bucket share (and would misread) each other's state.
    pub fn new(cache: &Cache, bucket: impl AsRef<str>, algorithm: Algorithm) -> RateLimiter {
        let backend = cache.backend();
        let enforcing = matches!(
            backend,
            Backend::Redis | Backend::RedisCluster | Backend::Upstash | Backend::Memory
        );
        let local = (backend == Backend::Memory).then(Arc::default);
        let bucket: Arc<str> = Arc::from(bucket.as_ref());
        if !enforcing {
            static LOGGED: AtomicBool = AtomicBool::new(false);
            if !LOGGED.swap(true, Relaxed) {
                tracing::warn!(
                    backend = %backend,
                    bucket = %bucket,
                    "cacheward: AllowAllRateLimiter active - rate limiting disabled (pass-through cache)"
                );
            }
        }
        RateLimiter {
            cache: cache.clone(),
            algorithm,
            enforcing,
            local,
            key_prefix: key_prefix(DEFAULT_PREFIX, &bucket).into(),
            bucket,
            shared: Arc::new(Shared::default()),
            clock: ClientClock::default(),
        }
    }

    /// Uses `prefix` instead of [`DEFAULT_PREFIX`] as the first part of every key, as
    /// in `copilot:ratelimit:<bucket>:{<identifier>}`. The prefix is written as given
    /// (`:` included) except `{` and `}`, which are escaped so that the identifier
    /// stays the key's hash tag.
    pub fn prefix(mut self, prefix: impl AsRef<str>) -> RateLimiter {
        self.key_prefix = key_prefix(prefix.as_ref(), &self.bucket).into();
        self
    }

    /// Test hook: shifts every client-side clock reading this limiter makes by
    /// `offset_ms`. Decisions only use the Redis server's clock, so a skewed limiter
    /// must count exactly like any other; the tests hold it to that.
    #[doc(hidden)]
    pub fn client_clock_skew_ms(mut self, offset_ms: i64) -> RateLimiter {
        self.clock = ClientClock { skew_ms: offset_ms };
        self
    }

    /// The bucket name given to [`new`](Self::new).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The algorithm and its parameters.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The algorithm's limit (window limit or bucket capacity), for `RateLimit-Limit`.
    pub fn limit(&self) -> u64 {
        self.algorithm.limit()
    }

    /// Whether limits are enforced: `false` for the allow-all limiter (a
    /// pass-through cache).
    pub fn is_enforcing(&self) -> bool {
        self.enforcing
    }

    /// The Redis key that holds `id`'s state:
    /// `<prefix>:ratelimit:<bucket>:{<encoded id>}`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use cacheward::{Algorithm, Cache, RateLimiter};
    /// let limiter = RateLimiter::new(&Cache::pass_through(), "login", Algorithm::fixed_window(5, Duration::from_secs(60)));
    /// assert_eq!(limiter.key("alice"), "cacheward:ratelimit:login:{alice}");
    /// assert_eq!(limiter.key("a:b*"), "cacheward:ratelimit:login:{a%3Ab%2A}");
    /// assert_eq!(limiter.clone().prefix("copilot").key(42_u64), "copilot:ratelimit:login:{42}");
    /// ```
    pub fn key(&self, id: impl KeyPart) -> String {
        let mut key = String::with_capacity(self.key_prefix.len() + 24);
        key.push_str(&self.key_prefix);
        key.push('{');
        id.write_key_part(&mut key);
        key.push('}');
        key
    }

    /// Takes one unit for `id`; `true` if the request may proceed (always `true`
    /// when degraded).
    ///
    /// The key is built before the returned future starts, so the future is `Send`
    /// whatever the identifier's type (the same holds for every method below).
    pub fn check(&self, id: impl KeyPart) -> impl Future<Output = bool> + Send + '_ {
        let check = self.run(self.key(id), 1, false);
        async move { check.await.allowed }
    }

    /// Takes one unit for `id` and says how it went.
    pub fn check_detailed(&self, id: impl KeyPart) -> impl Future<Output = Decision> + Send + '_ {
        self.run(self.key(id), 1, false)
    }

    /// Takes `cost` units for `id` at once, all or nothing: a request whose cost does
    /// not fit is rejected and takes nothing. A cost of 0 takes nothing and is allowed
    /// unless the identifier is already over its limit; a cost above the algorithm's
    /// limit is always rejected.
    pub fn check_n(
        &self,
        id: impl KeyPart,
        cost: u64,
    ) -> impl Future<Output = Decision> + Send + '_ {
        self.run(self.key(id), cost, false)
    }

    /// The state of `id` without taking anything: `allowed` says whether a one-unit
    /// check would be allowed now, `remaining` how many units are left. Not counted as
    /// a check in [`stats`](Self::stats).
    pub fn peek(&self, id: impl KeyPart) -> impl Future<Output = Decision> + Send + '_ {
        self.run(self.key(id), 1, true)
    }

    /// Forgets `id`'s state in this bucket (one `DEL` of exactly [`key`](Self::key);
    /// never a pattern). Failures are logged and counted, like every cache failure.
    pub fn reset(&self, id: impl KeyPart) -> impl Future<Output = ()> + Send + '_ {
        let key = self.key(id);
        async move {
            if let Some(local) = &self.local {
                local.reset(&key);
            } else if self.enforcing {
                self.cache.del_labeled(&[&key], LABEL).await;
            }
        }
    }

    /// A snapshot of this limiter's counters (shared by its clones).
    pub fn stats(&self) -> RateLimiterStats {
        self.shared.snapshot()
    }

    async fn run(&self, key: String, cost: u64, peek: bool) -> Decision {
        let backend = self.cache.backend();
        if !self.enforcing {
            let decision = Decision::fail_open(self.limit());
            self.record(peek, Outcome::Degraded, backend, Duration::ZERO);
            return decision;
        }
        if let Some(local) = &self.local {
            let start = Instant::now();
            let decision = local.check(&key, self.algorithm, cost, peek);
            let outcome = if decision.allowed {
                Outcome::Allowed
            } else {
                Outcome::Rejected
            };
            self.record(peek, outcome, backend, start.elapsed());
            return decision;
        }
        let start = Instant::now();
        let args = self.algorithm.script_args(cost, peek);
        let reply = self
            .cache
            .eval_script(self.algorithm.script(), &[&key], &args)
            .await;
        let elapsed = start.elapsed();
        let result = match reply {
            Ok(value) => Decision::from_reply(&value).map_err(Failure::Reply),
            Err(err) => Err(Failure::Cache(err)),
        };
        match result {
            Ok(decision) => {
                let outcome = if decision.allowed {
                    Outcome::Allowed
                } else {
                    Outcome::Rejected
                };
                self.record(peek, outcome, backend, elapsed);
                decision
            }
            Err(failure) => {
                self.fail(&failure, backend);
                self.record(peek, Outcome::Degraded, backend, elapsed);
                Decision::fail_open(self.limit())
            }
        }
    }

    fn record(&self, peek: bool, outcome: Outcome, backend: Backend, elapsed: Duration) {
        if peek {
            return;
        }
        let c = &self.shared;
        c.checks.fetch_add(1, Relaxed);
        match outcome {
            Outcome::Allowed => c.allowed.fetch_add(1, Relaxed),
            Outcome::Rejected => c.rejected.fetch_add(1, Relaxed),
            Outcome::Degraded => c.degraded.fetch_add(1, Relaxed),
        };
        #[cfg(feature = "metrics")]
        {
            // Registered once per limiter and outcome (the backend of a cache never
            // changes), so a check does not allocate.
            let (counter, histogram) = c.metrics[outcome as usize].get_or_init(|| {
                let labels = [
                    ("bucket", self.bucket.to_string()),
                    ("result", outcome.as_str().to_owned()),
                    ("backend", backend.as_str().to_owned()),
                ];
                (
                    metrics::counter!("ratelimiter.checks.total", &labels),
                    metrics::histogram!("ratelimiter.check.duration", &labels),
                )
            });
            counter.increment(1);
            histogram.record(elapsed.as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (backend, elapsed);
    }

    fn fail(&self, failure: &Failure, backend: Backend) {
        let c = &self.shared;
        c.errors.fetch_add(1, Relaxed);
        if failure.is_timeout() {
            c.timeouts.fetch_add(1, Relaxed);
        }
        #[cfg(feature = "metrics")]
        metrics::counter!(
            "ratelimiter.errors.total",
            "bucket" => self.bucket.to_string(),
            "backend" => backend.as_str(),
            "error_type" => failure.kind()
        )
        .increment(1);
        if let Some(suppressed) = c.warn_due(self.clock.now_ms()) {
            tracing::warn!(
                bucket = %self.bucket,
                backend = %backend,
                error = %failure,
                suppressed,
                "cacheward: rate limiter check failed - allowing the request (fail-open)"
            );
        }
    }
}

/// `<prefix>:ratelimit:<encoded bucket>:`, with `{` and `}` in the prefix escaped.
fn key_prefix(prefix: &str, bucket: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + bucket.len() + 12);
    for c in prefix.chars() {
        match c {
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
    out.push_str(":ratelimit:");
    write_escaped(bucket, &mut out);
    out.push(':');
    out
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Allowed = 0,
    Rejected = 1,
    Degraded = 2,
}

impl Outcome {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Rejected => "rejected",
            Outcome::Degraded => "degraded",
        }
    }
}

#[derive(Debug)]
enum Failure {
    Cache(CacheError),
    Reply(String),
}

impl Failure {
    fn is_timeout(&self) -> bool {
        matches!(self, Failure::Cache(CacheError::Timeout(_)))
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    fn kind(&self) -> &'static str {
        match self {
            Failure::Cache(err) => err.kind_str(),
            Failure::Reply(_) => "reply",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Cache(err) => err.fmt(f),
            Failure::Reply(msg) => write!(f, "unexpected script reply: {msg}"),
        }
    }
}

/// A snapshot of a limiter's counters since it was created.
///
/// `checks == allowed + rejected + degraded`; peeks are not checks. Serializes as an
/// object with one field per counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RateLimiterStats {
    /// Checks made (`check`, `check_detailed`, `check_n`).
    pub checks: u64,
    /// Checks the limit allowed.
    pub allowed: u64,
    /// Checks the limit rejected.
    pub rejected: u64,
    /// Checks allowed without enforcement: allow-all limiter, or Redis failing.
    pub degraded: u64,
    /// Checks and peeks that failed (Redis error, timeout, open breaker, bad reply).
    pub errors: u64,
    /// Of those, the ones that hit the cache's deadline.
    pub timeouts: u64,
}

#[derive(Debug)]
struct Shared {
    checks: AtomicU64,
    allowed: AtomicU64,
    rejected: AtomicU64,
    degraded: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    /// Client clock (ms) before which no further warning is logged.
    next_warn_ms: AtomicI64,
    /// Warnings held back since the last one logged.
    suppressed: AtomicU64,
    /// `ratelimiter.checks.total` and `ratelimiter.check.duration` per [`Outcome`].
    #[cfg(feature = "metrics")]
    metrics: [std::sync::OnceLock<(metrics::Counter, metrics::Histogram)>; 3],
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            checks: AtomicU64::new(0),
            allowed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            degraded: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            next_warn_ms: AtomicI64::new(i64::MIN),
            suppressed: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            metrics: Default::default(),
        }
    }
}

impl Shared {
    fn snapshot(&self) -> RateLimiterStats {
        RateLimiterStats {
            checks: self.checks.load(Relaxed),
            allowed: self.allowed.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            degraded: self.degraded.load(Relaxed),
            errors: self.errors.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
        }
    }

    /// `Some(number of warnings suppressed since the last one)` when a warning is due.
    fn warn_due(&self, now_ms: i64) -> Option<u64> {
        let next = self.next_warn_ms.load(Relaxed);
        if now_ms >= next
            && self
                .next_warn_ms
                .compare_exchange(
                    next,
                    now_ms.saturating_add(WARN_INTERVAL_MS),
                    Relaxed,
                    Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(1, Relaxed);
        None
    }
}

/// The only client-side clock the limiter reads (to space out its warnings): a
/// monotonic millisecond count, shifted by the skew of the test hook.
#[derive(Debug, Clone, Copy, Default)]
struct ClientClock {
    skew_ms: i64,
}

impl ClientClock {
    fn now_ms(self) -> i64 {
        static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);
        let ms = i64::try_from(BASE.elapsed().as_millis()).unwrap_or(i64::MAX);
        ms.saturating_add(self.skew_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(cache: &Cache) -> RateLimiter {
        RateLimiter::new(
            cache,
            "api",
            Algorithm::fixed_window(3, Duration::from_secs(1)),
        )
    }

    #[test]
    fn key_layout() {
        let l = limiter(&Cache::pass_through());
        assert_eq!(l.key("alice"), "cacheward:ratelimit:api:{alice}");
        assert_eq!(l.key(7_u32), "cacheward:ratelimit:api:{7}");
        assert_eq!(l.key(""), "cacheward:ratelimit:api:{}");
        let l = l.prefix("copilot:v2");
        assert_eq!(l.key("bob"), "copilot:v2:ratelimit:api:{bob}");
    }

    #[test]
    fn identifiers_are_escaped_and_never_collide() {
        let l = limiter(&Cache::pass_through());
        let ids = [
            "a", "a:b", "a%3Ab", ":", "*", "a*", "{", "}", "{a}", "日本", "é", "~", "", " ", "?",
            "[", "\\",
        ];
        let keys: Vec<String> = ids.iter().map(|id| l.key(id)).collect();
        let unique: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{keys:?}");
        for key in &keys {
            let tag = &key["cacheward:ratelimit:api:".len()..];
            assert!(tag.starts_with('{') && tag.ends_with('}'), "{key}");
            let inner = &tag[1..tag.len() - 1];
            assert!(inner.chars().all(crate::key::is_encoded_char), "{key}");
        }
        assert_eq!(l.key("*"), "cacheward:ratelimit:api:{%2A}");
        assert_eq!(l.key("{a}"), "cacheward:ratelimit:api:{%7Ba%7D}");
    }

    #[test]
    fn bucket_and_prefix_cannot_break_the_hash_tag() {
        let l = RateLimiter::new(
            &Cache::pass_through(),
            "a:b{c}",
            Algorithm::fixed_window(1, Duration::from_secs(1)),
        )
        .prefix("x{y}");
        let key = l.key("id");
        assert_eq!(key, "x%7By%7D:ratelimit:a%3Ab%7Bc%7D:{id}");
        // The first `{` starts the identifier: it is the key's hash tag.
        assert_eq!(&key[key.find('{').unwrap()..], "{id}");
    }

    #[tokio::test]
    async fn a_pass_through_cache_gives_an_allow_all_limiter() {
        {
            let l = limiter(&Cache::pass_through());
            assert!(!l.is_enforcing());
            for _ in 0..10 {
                let d = l.check_detailed("x").await;
                assert_eq!(d, Decision::fail_open(3));
            }
            assert!(l.check("x").await);
            assert!(l.check_n("x", 1000).await.allowed);
            assert!(l.peek("x").await.degraded);
            l.reset("x").await;
            let s = l.stats();
            assert_eq!((s.checks, s.degraded, s.allowed, s.errors), (12, 12, 0, 0));
        }
    }

    #[tokio::test]
    async fn a_memory_cache_enforces_in_the_process() {
        let l = RateLimiter::new(
            &Cache::memory(),
            "api",
            Algorithm::fixed_window(3, Duration::from_secs(3600)),
        );
        assert!(l.is_enforcing());
        let clone = l.clone();
        for left in [2, 1, 0] {
            let d = l.check_detailed("x").await;
            assert!(d.allowed && !d.degraded, "{d:?}");
            assert_eq!(d.remaining, left);
        }
        // Clones share the state; other identifiers have their own.
        let d = clone.check_detailed("x").await;
        assert!(
            !d.allowed && !d.degraded && d.reset_after > Duration::ZERO,
            "{d:?}"
        );
        assert!(l.check("y").await);
        assert!(!l.peek("x").await.allowed);
        l.reset("x").await;
        assert_eq!(l.peek("x").await.remaining, 3);
        let s = l.stats();
        assert_eq!(
            (s.checks, s.allowed, s.rejected, s.degraded, s.errors),
            (5, 4, 1, 0, 0)
        );
        // Another limiter, even with the same bucket, has its own state.
        let other = RateLimiter::new(
            &Cache::memory(),
            "api",
            Algorithm::fixed_window(3, Duration::from_secs(3600)),
        );
        assert!(other.check("x").await);
    }

    #[test]
    fn stats_serialize_with_field_names() {
        let s = RateLimiterStats {
            checks: 3,
            allowed: 2,
            rejected: 1,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            serde_json::json!({"checks": 3, "allowed": 2, "rejected": 1, "degraded": 0, "errors": 0, "timeouts": 0})
        );
    }

    #[tokio::test]
    async fn unreachable_redis_fails_open_and_counts() {
        // Port 1 on loopback: nothing listens, the connection is refused.
        let cache = Cache::redis("redis://127.0.0.1:1").unwrap();
        let l = limiter(&cache);
        assert!(l.is_enforcing());
        let clone = l.clone();
        for _ in 0..5 {
            let d = l.check_detailed("x").await;
            assert!(d.allowed && d.degraded, "{d:?}");
        }
        assert!(clone.peek("x").await.degraded);
        let s = l.stats();
        assert_eq!((s.checks, s.degraded, s.errors), (5, 5, 6));
    }

    #[test]
    fn warnings_are_spaced_out() {
        let shared = Shared::default();
        assert_eq!(shared.warn_due(0), Some(0));
        for t in 1..100 {
            assert_eq!(shared.warn_due(t), None);
        }
        assert_eq!(shared.warn_due(WARN_INTERVAL_MS - 1), None);
        assert_eq!(shared.warn_due(WARN_INTERVAL_MS), Some(100));
        assert_eq!(shared.warn_due(WARN_INTERVAL_MS + 1), None);
    }

    #[test]
    fn limiter_is_send_sync_clone_debug() {
        fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
        assert_traits::<RateLimiter>();
        assert_traits::<Decision>();
        assert_traits::<Algorithm>();
        let l = limiter(&Cache::pass_through());
        let dbg = format!("{l:?}");
        assert!(
            dbg.contains("fixed_window") || dbg.contains("FixedWindow"),
            "{dbg}"
        );
        assert!(dbg.contains("api"), "{dbg}");
    }
}

#[cfg(all(test, feature = "metrics"))]
mod metrics_tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };

    use super::*;

    /// Records every counter increment and histogram sample under `name{label=value,..}`.
    #[derive(Default)]
    struct TestRecorder(Arc<Mutex<BTreeMap<String, f64>>>);

    struct Handle(Arc<Mutex<BTreeMap<String, f64>>>, String);

    impl CounterFn for Handle {
        fn increment(&self, value: u64) {
            *self.0.lock().unwrap().entry(self.1.clone()).or_default() += value as f64;
        }
        fn absolute(&self, value: u64) {
            self.0.lock().unwrap().insert(self.1.clone(), value as f64);
        }
    }

    impl HistogramFn for Handle {
        fn record(&self, _value: f64) {
            *self.0.lock().unwrap().entry(self.1.clone()).or_default() += 1.0;
        }
    }

    fn name(key: &Key) -> String {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Recorder for TestRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(Arc::new(Handle(self.0.clone(), name(key))))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(Arc::new(Handle(self.0.clone(), name(key))))
        }
    }

    #[test]
    fn checks_errors_and_durations_are_emitted() {
        let recorder = TestRecorder::default();
        let seen = recorder.0.clone();
        metrics::with_local_recorder(&recorder, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let w = Duration::from_secs(1);
                let allow_all =
                    RateLimiter::new(&Cache::pass_through(), "m", Algorithm::fixed_window(1, w));
                for _ in 0..3 {
                    allow_all.check("x").await;
                }
                // Nothing listens on port 1: every check fails and fails open.
                let down = RateLimiter::new(
                    &Cache::redis("redis://127.0.0.1:1").unwrap(),
                    "m",
                    Algorithm::fixed_window(1, w),
                );
                for _ in 0..2 {
                    down.check("x").await;
                }
                down.peek("x").await;
            });
        });
        let seen = seen.lock().unwrap();
        let get = |k: &str| seen.get(k).copied().unwrap_or(0.0);
        assert_eq!(
            get("ratelimiter.checks.total{backend=passthrough,bucket=m,result=degraded}"),
            3.0,
            "{seen:#?}"
        );
        assert_eq!(
            get("ratelimiter.check.duration{backend=passthrough,bucket=m,result=degraded}"),
            3.0
        );
        assert_eq!(
            get("ratelimiter.checks.total{backend=redis,bucket=m,result=degraded}"),
            2.0
        );
        assert_eq!(
            get("ratelimiter.check.duration{backend=redis,bucket=m,result=degraded}"),
            2.0
        );
        let errors: f64 = seen
            .iter()
            .filter(|(k, _)| {
                k.starts_with("ratelimiter.errors.total{backend=redis,bucket=m,error_type=")
            })
            .map(|(_, v)| v)
            .sum();
        assert_eq!(errors, 3.0, "two checks and a peek: {seen:#?}");
    }
}
