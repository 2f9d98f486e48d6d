//! Everything the workloads measure, as one [`Variant`] type, and the one place that
//! runs an operation of a variant: [`Subjects::op`].

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cached::ConcurrentCachedAsync as _;
use cacheward::ratelimit::Refill;
use cacheward::{Algorithm, Cache, Codec, RateLimiter};
use cacheward_benches::policy::{
    BackingStore, CachingFeatureStore, CachingPolicyStore, CachingSharedPolicyStore,
    FeatureStore as _, HandCachedPolicyStore, PolicyStore, SharedPolicyStore as _, StoreError,
    TenantLlmPolicy, policy_key,
};
use redis::AsyncCommands as _;

/// How many tenants (and rate limiter identifiers) the workloads cycle through.
pub const TENANTS: usize = 1_000;
/// How many policies a batch reads.
pub const BATCH: usize = 100;

/// Binds `$op` to the [`Subjects`] method that runs one operation of the variant `$v`
/// (`fn(&Subjects, &mut Connection, &String) -> impl Future<Output = bool>`) and
/// evaluates `$then`: the one place a variant is mapped to what it does. `$then` is
/// expanded once per variant, so a loop written in it runs each variant's own future,
/// sized for that variant alone.
macro_rules! dispatch {
    ($v:expr, $op:ident => $then:expr) => {{
        use $crate::variant::{Subjects as S, Variant as V};
        match $v {
            V::Floor => {
                let $op = S::floor_op;
                $then
            }
            V::FloorClone => {
                let $op = S::floor_clone_op;
                $then
            }
            V::Generated => {
                let $op = S::generated_op;
                $then
            }
            V::GeneratedMsgpack => {
                let $op = S::generated_msgpack_op;
                $then
            }
            V::Cached => {
                let $op = S::cached_op;
                $then
            }
            V::CacheGet => {
                let $op = S::cache_get_op;
                $then
            }
            V::Hand => {
                let $op = S::hand_op;
                $then
            }
            V::HandBoxed => {
                let $op = S::hand_boxed_op;
                $then
            }
            V::Inner => {
                let $op = S::inner_op;
                $then
            }
            V::IncrExpire => {
                let $op = S::incr_expire_op;
                $then
            }
            V::Fixed => {
                let $op = S::fixed_op;
                $then
            }
            V::Sliding => {
                let $op = S::sliding_op;
                $then
            }
            V::Bucket => {
                let $op = S::bucket_op;
                $then
            }
            V::Sequential => {
                let $op = S::sequential_op;
                $then
            }
            V::GetMany => {
                let $op = S::get_many_op;
                $then
            }
            V::Mget => {
                let $op = S::mget_op;
                $then
            }
            V::Tagged => {
                let $op = S::tagged_op;
                $then
            }
            V::Fresh => {
                let $op = S::fresh_op;
                $then
            }
            V::Near => {
                let $op = S::near_op;
                $then
            }
            V::NearBare => {
                let $op = S::near_bare_op;
                $then
            }
            V::NearArc => {
                let $op = S::near_arc_op;
                $then
            }
            V::NearGet => {
                let $op = S::near_get_op;
                $then
            }
            V::NearShared => {
                let $op = S::near_shared_op;
                $then
            }
            V::CachedCsc => {
                let $op = S::cached_csc_op;
                $then
            }
            V::SingleFlight => {
                let $op = S::single_flight_op;
                $then
            }
        }
    }};
}
pub(crate) use dispatch;

/// The floor's connection type.
pub type Connection = redis::aio::MultiplexedConnection;

/// One thing to measure: an operation, and what it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Variant {
    /// redis-rs `GET` + serde_json on a shared multiplexed connection: the floor.
    Floor,
    /// The floor with the connection handle cloned per call.
    FloorClone,
    /// The generated `CachingPolicyStore::get_policy`.
    Generated,
    /// [`Variant::Generated`] over a cache writing [`Codec::MessagePack`] (in database
    /// 1 of the same server, so that the JSON variants' keys stay JSON).
    GeneratedMsgpack,
    /// The `cached` crate's `AsyncRedisCache::async_cache_get`.
    Cached,
    /// `Cache::get` alone.
    CacheGet,
    /// The read-through decorator written by hand over `Cache`.
    Hand,
    /// [`Variant::Hand`] with its miss path in a separate heap future.
    HandBoxed,
    /// The inner store alone.
    Inner,
    /// `INCR` + `EXPIRE` in one pipeline: the rate limiter's floor.
    IncrExpire,
    /// `RateLimiter` with a fixed window.
    Fixed,
    /// `RateLimiter` with a sliding window.
    Sliding,
    /// `RateLimiter` with a token bucket.
    Bucket,
    /// [`BATCH`] sequential `Cache::get`.
    Sequential,
    /// `Cache::get_many` of [`BATCH`] keys.
    GetMany,
    /// A hand-written `MGET` of [`BATCH`] keys + serde_json: the batch floor.
    Mget,
    /// The generated decorator on a template with a tag.
    Tagged,
    /// The generated decorator on a template with refresh-ahead and stale-if-error.
    Fresh,
    /// The generated `CachingPolicyStore::get_policy` over a cache with a near cache.
    Near,
    /// A bare `quick_cache` get of an `Arc` of the policy: the near cache's physical
    /// limit.
    NearBare,
    /// `Cache::get_arc` over the cache with a near cache: one decoded value, shared.
    NearArc,
    /// `Cache::get` over the cache with a near cache: a decode per near hit.
    NearGet,
    /// The generated `CachingSharedPolicyStore::get_shared_policy` (values are `Arc`s)
    /// over the cache with a near cache: an `Arc` clone per near hit.
    NearShared,
    /// The `cached` crate's `AsyncRedisCache` with `client_side_caching(true)` (redis-rs
    /// `cache-aio`: RESP3 tracking, the undecoded reply kept in process).
    CachedCsc,
    /// The hand-written decorator with a single-flight inside the process: what the
    /// generated decorator did before leases (one load per instance, not per key).
    SingleFlight,
}

impl Variant {
    /// Every variant, in the order [`Variant::name`] lists them.
    pub const ALL: [Variant; 25] = [
        Variant::Floor,
        Variant::FloorClone,
        Variant::Generated,
        Variant::GeneratedMsgpack,
        Variant::Cached,
        Variant::CacheGet,
        Variant::Hand,
        Variant::HandBoxed,
        Variant::Inner,
        Variant::IncrExpire,
        Variant::Fixed,
        Variant::Sliding,
        Variant::Bucket,
        Variant::Sequential,
        Variant::GetMany,
        Variant::Mget,
        Variant::Tagged,
        Variant::Fresh,
        Variant::Near,
        Variant::NearBare,
        Variant::NearArc,
        Variant::NearGet,
        Variant::NearShared,
        Variant::CachedCsc,
        Variant::SingleFlight,
    ];

    /// The name `--profile` takes (and `scripts/bench-report` passes).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Floor => "floor",
            Variant::FloorClone => "floor-clone",
            Variant::Generated => "generated",
            Variant::GeneratedMsgpack => "generated-msgpack",
            Variant::Cached => "cached",
            Variant::CacheGet => "cache-get",
            Variant::Hand => "hand",
            Variant::HandBoxed => "hand-boxed",
            Variant::Inner => "inner",
            Variant::IncrExpire => "incr-expire",
            Variant::Fixed => "fixed",
            Variant::Sliding => "sliding",
            Variant::Bucket => "bucket",
            Variant::Sequential => "sequential",
            Variant::GetMany => "get-many",
            Variant::Mget => "mget",
            Variant::Tagged => "tagged",
            Variant::Fresh => "fresh",
            Variant::Near => "near",
            Variant::NearBare => "near-bare",
            Variant::NearArc => "near-arc",
            Variant::NearGet => "near-get",
            Variant::NearShared => "near-shared",
            Variant::CachedCsc => "cached-csc",
            Variant::SingleFlight => "single-flight",
        }
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> Result<Variant, String> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
                format!("unknown variant {s}: {}", names.join("|"))
            })
    }
}

/// Which key an operation reads.
#[derive(Debug, Clone, Copy)]
pub enum Keys {
    /// The [`TENANTS`] pre-loaded tenants, in turn.
    Tenants,
    /// A tenant never asked for before (every read a miss), unique per round, task and
    /// variant.
    Fresh {
        /// The round, part of the key.
        round: usize,
    },
}

/// What the variants run on: one server's connection, a cache, the stores over one
/// inner store, `cached`'s cache, the rate limiters and the batch's keys.
pub struct Subjects {
    /// The tenants, also the rate limiter's identifiers.
    pub tenants: Vec<String>,
    /// The floor's connection, cloned by each task.
    pub floor: Connection,
    /// The cache every cacheward variant uses.
    pub cache: Cache,
    /// The inner store behind the decorators.
    pub inner: Arc<BackingStore>,
    generated: CachingPolicyStore<Arc<BackingStore>>,
    generated_msgpack: CachingPolicyStore<Arc<BackingStore>>,
    hand: HandCachedPolicyStore<Arc<BackingStore>>,
    hand_boxed: HandBoxedFill<Arc<BackingStore>>,
    single_flight: HandSingleFlight<Arc<BackingStore>>,
    features: CachingFeatureStore<Arc<BackingStore>>,
    /// What [`Variant::Near`] and [`Variant::NearBare`] read, once
    /// [`Subjects::add_near_cache`] made it.
    pub near: Option<NearSubjects>,
    cached: cached::AsyncRedisCache<String, TenantLlmPolicy>,
    fixed: RateLimiter,
    sliding: RateLimiter,
    bucket: RateLimiter,
    batch_keys: Vec<String>,
}

/// Limits no benchmark reaches: every check is allowed.
const HUGE: u64 = 1_000_000_000;

impl Subjects {
    /// The subjects on the server at `url`, with `cache` (on that server) and `inner`
    /// behind the decorators. Nothing is pre-loaded: see [`Subjects::load_tenants`] and
    /// [`Subjects::load_batch`].
    pub async fn new(url: &str, cache: Cache, inner: BackingStore) -> Subjects {
        Self::sharing(url, cache, Arc::new(inner)).await
    }

    /// [`Subjects::new`] over an inner store shared with other subjects: several
    /// instances of a service over one database.
    pub async fn sharing(url: &str, cache: Cache, inner: Arc<BackingStore>) -> Subjects {
        let floor = redis::Client::open(url)
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect the floor");
        let cached = cached_policies(url, "bench-cached", false).await;
        let window = Duration::from_secs(60);
        let limiter = |a| RateLimiter::new(&cache, "bench", a);
        Subjects {
            tenants: (0..TENANTS).map(|i| format!("tenant-{i:04}")).collect(),
            floor,
            generated: CachingPolicyStore::new(inner.clone(), cache.clone()),
            generated_msgpack: CachingPolicyStore::new(inner.clone(), msgpack_cache(url)),
            hand: HandCachedPolicyStore::new(inner.clone(), cache.clone()),
            hand_boxed: HandBoxedFill {
                inner: inner.clone(),
                cache: cache.clone(),
            },
            single_flight: HandSingleFlight::new(inner.clone(), cache.clone()),
            features: CachingFeatureStore::new(inner.clone(), cache.clone()),
            near: None,
            cached,
            fixed: limiter(Algorithm::fixed_window(HUGE, window)),
            sliding: limiter(Algorithm::sliding_window(HUGE, window)),
            bucket: limiter(Algorithm::token_bucket(HUGE, Refill::per_second(HUGE))),
            batch_keys: (0..BATCH)
                .map(|i| policy_key(&format!("batch-{i:03}")))
                .collect(),
            inner,
            cache,
        }
    }

    /// Stores every tenant's policy for the floor, for the cacheward variants and for
    /// `cached`, so that every read of [`Keys::Tenants`] hits.
    pub async fn load_tenants(&mut self) {
        for t in &self.tenants {
            let p = TenantLlmPolicy::sample(t);
            let bytes = serde_json::to_vec(&p).expect("json");
            let _: () = self
                .floor
                .set_ex(format!("floor:policy:{t}"), bytes, 3_600)
                .await
                .expect("populate floor keys");
            self.cache
                .set(&policy_key(t), &p, Duration::from_secs(3_600))
                .await;
            self.generated_msgpack
                .cache()
                .set(&policy_key(t), &p, Duration::from_secs(3_600))
                .await;
            self.cached
                .async_cache_set(t.clone(), p.clone())
                .await
                .expect("populate cached's keys");
            // The tagged and refresh-ahead templates are filled by a first read, in their
            // own formats.
            answered(self.features.get_tagged(t).await);
            answered(self.features.get_fresh(t).await);
        }
    }

    /// Builds [`Subjects::near`]: a cache on `url` with a near cache, warmed with every
    /// tenant once its invalidation feed is up, the bare `quick_cache` beside it, and
    /// `cached`'s cache with client-side caching over the keys [`Subjects::load_tenants`]
    /// gave `cached`, warmed too.
    pub async fn add_near_cache(&mut self, url: &str) {
        // Entries as old as the Redis TTL (the default maximum age, 10 s, would send
        // each key back to Redis every 10 s of the run).
        let cache = crate::bench_builder(url)
            .near_cache(2 * TENANTS)
            .near_cache_max_age(Duration::from_secs(300))
            .build()
            .expect("cache url");
        let near = NearSubjects {
            store: CachingPolicyStore::new(self.inner.clone(), cache.clone()),
            shared: CachingSharedPolicyStore::new(self.inner.clone(), cache.clone()),
            cache,
            bare: quick_cache::sync::Cache::new(2 * TENANTS),
            csc: cached_policies(url, "bench-cached", true).await,
        };
        let feed_up = std::time::Instant::now() + Duration::from_secs(10);
        while near.cache.stats().near_hits == 0 {
            assert!(
                std::time::Instant::now() < feed_up,
                "the near cache did not start serving within 10 s: {:?}",
                near.cache.health().await
            );
            answered(near.store.get_policy(&self.tenants[0]).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for t in &self.tenants {
            answered(near.store.get_policy(t).await);
            answered(near.shared.get_shared_policy(t).await);
            near.bare
                .insert(t.clone(), Arc::new(TenantLlmPolicy::sample(t)));
            assert!(
                matches!(near.csc.async_cache_get(t).await, Ok(Some(_))),
                "cached's client-side cache reads the tenants"
            );
        }
        self.near = Some(near);
    }

    fn near(&self) -> &NearSubjects {
        self.near
            .as_ref()
            .expect("the near variants need Subjects::add_near_cache")
    }

    /// Stores the batch's [`BATCH`] policies.
    pub async fn load_batch(&self) {
        let entries: Vec<(String, TenantLlmPolicy)> = self
            .batch_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), TenantLlmPolicy::sample(&format!("batch-{i:03}"))))
            .collect();
        self.cache
            .set_many(&entries, Duration::from_secs(3_600))
            .await;
    }

    /// The `i`-th key of `keys` for `task` running `v`.
    #[allow(
        clippy::owned_cow,
        reason = "a `String` for `op`, which `cached` needs as `&String`"
    )]
    pub fn tenant(&self, keys: Keys, v: Variant, task: usize, i: usize) -> Cow<'_, String> {
        match keys {
            Keys::Tenants => Cow::Borrowed(&self.tenants[i % self.tenants.len()]),
            Keys::Fresh { round } => Cow::Owned(format!("{}-{round}-{task}-{i}", v.name())),
        }
    }

    /// One operation of `v` on `tenant`, for calls that are not timed one by one. The
    /// measurement loops expand [`dispatch!`] themselves, so that each variant's future
    /// is its own size, not the largest variant's.
    pub async fn op(&self, v: Variant, conn: &mut Connection, tenant: &String) -> bool {
        dispatch!(v, op => op(self, conn, tenant).await)
    }
    /// The size of one call's future for each decorator variant.
    pub fn future_sizes(&self) -> String {
        let tenant = self.tenants[0].as_str();
        format!(
            "per-call future sizes: generated {} B, hand-written {} B, hand-written with boxed fill {} B",
            size_of_val(&*self.generated.get_policy(tenant)),
            size_of_val(&*self.hand.get_policy(tenant)),
            size_of_val(&*self.hand_boxed.get_policy(tenant)),
        )
    }
}

/// A cache with a near cache, the plain store over it, and a bare `quick_cache` holding
/// the same policies.
pub struct NearSubjects {
    /// The cache with the near cache on.
    pub cache: Cache,
    store: CachingPolicyStore<Arc<BackingStore>>,
    shared: CachingSharedPolicyStore<Arc<BackingStore>>,
    bare: quick_cache::sync::Cache<String, Arc<TenantLlmPolicy>>,
    csc: cached::AsyncRedisCache<String, TenantLlmPolicy>,
}

/// The bench cache writing MessagePack, in database 1 of the server at `url` (a URL
/// without a database path).
fn msgpack_cache(url: &str) -> Cache {
    crate::bench_builder(&format!("{}/1", url.trim_end_matches('/')))
        .codec(Codec::MessagePack)
        .build()
        .expect("cache url")
}

/// `cached`'s `AsyncRedisCache` of policies on `url` under `prefix`, as its README
/// builds it; with `client_side_caching`, on a RESP3 connection with redis-rs's
/// client-side cache (`cache-aio`, its default configuration).
pub async fn cached_policies(
    url: &str,
    prefix: &str,
    client_side_caching: bool,
) -> cached::AsyncRedisCache<String, TenantLlmPolicy> {
    cached::AsyncRedisCache::<String, TenantLlmPolicy>::builder(prefix)
        .connection_string(url)
        .ttl(Duration::from_secs(3_600))
        .client_side_caching(client_side_caching)
        .build()
        .await
        .expect("cached's AsyncRedisCache")
}

/// One operation of each variant, all of one signature (see [`dispatch!`]): `conn` is
/// the calling task's clone of [`Subjects::floor`], `tenant` the key to read (the batch
/// variants read their own keys). Each says whether it did what the variant measures:
/// a hit, an answer, a check that was not degraded, a whole batch. `tenant` is a
/// `&String` because `cached` looks its `String` keys up by `&String`.
#[allow(clippy::ptr_arg, reason = "`cached`'s keys are looked up by `&String`")]
impl Subjects {
    pub async fn floor_op(&self, conn: &mut Connection, tenant: &String) -> bool {
        let key = format!("floor:policy:{tenant}");
        decodes(conn.get(&key).await.ok().flatten())
    }

    pub async fn floor_clone_op(&self, conn: &mut Connection, tenant: &String) -> bool {
        let key = format!("floor:policy:{tenant}");
        // What `cached` and `ConnectionManager` do per call.
        decodes(conn.clone().get(&key).await.ok().flatten())
    }

    pub async fn generated_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.generated.get_policy(tenant).await)
    }

    pub async fn generated_msgpack_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.generated_msgpack.get_policy(tenant).await)
    }

    pub async fn cached_op(&self, _: &mut Connection, tenant: &String) -> bool {
        matches!(self.cached.async_cache_get(tenant).await, Ok(Some(_)))
    }

    pub async fn cache_get_op(&self, _: &mut Connection, tenant: &String) -> bool {
        self.cache
            .get::<TenantLlmPolicy>(&policy_key(tenant))
            .await
            .is_some()
    }

    pub async fn hand_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.hand.get_policy(tenant).await)
    }

    pub async fn hand_boxed_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.hand_boxed.get_policy(tenant).await)
    }

    pub async fn inner_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered((*self.inner).get_policy(tenant).await)
    }

    pub async fn incr_expire_op(&self, conn: &mut Connection, tenant: &String) -> bool {
        let key = format!("bench:ratelimit:floor:{tenant}");
        let count: redis::RedisResult<(i64,)> = redis::pipe()
            .incr(&key, 1)
            .expire(&key, 60)
            .ignore()
            .query_async(conn)
            .await;
        count.is_ok_and(|(n,)| n > 0)
    }

    pub async fn fixed_op(&self, _: &mut Connection, tenant: &String) -> bool {
        !self.fixed.check_detailed(tenant).await.degraded
    }

    pub async fn sliding_op(&self, _: &mut Connection, tenant: &String) -> bool {
        !self.sliding.check_detailed(tenant).await.degraded
    }

    pub async fn bucket_op(&self, _: &mut Connection, tenant: &String) -> bool {
        !self.bucket.check_detailed(tenant).await.degraded
    }

    pub async fn sequential_op(&self, _: &mut Connection, _: &String) -> bool {
        let mut found = 0;
        for k in &self.batch_keys {
            found += usize::from(self.cache.get::<TenantLlmPolicy>(k).await.is_some());
        }
        found == BATCH
    }

    pub async fn get_many_op(&self, _: &mut Connection, _: &String) -> bool {
        let got = self
            .cache
            .get_many::<TenantLlmPolicy, _>(&self.batch_keys)
            .await;
        got.iter().filter(|v| v.is_some()).count() == BATCH
    }

    pub async fn tagged_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.features.get_tagged(tenant).await)
    }

    pub async fn fresh_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.features.get_fresh(tenant).await)
    }

    pub async fn near_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.near().store.get_policy(tenant).await)
    }

    pub async fn near_bare_op(&self, _: &mut Connection, tenant: &String) -> bool {
        self.near().bare.get(tenant).is_some()
    }

    pub async fn near_arc_op(&self, _: &mut Connection, tenant: &String) -> bool {
        self.near()
            .cache
            .get_arc::<TenantLlmPolicy>(&policy_key(tenant))
            .await
            .is_some()
    }

    pub async fn near_shared_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.near().shared.get_shared_policy(tenant).await)
    }

    pub async fn near_get_op(&self, _: &mut Connection, tenant: &String) -> bool {
        self.near()
            .cache
            .get::<TenantLlmPolicy>(&policy_key(tenant))
            .await
            .is_some()
    }

    pub async fn cached_csc_op(&self, _: &mut Connection, tenant: &String) -> bool {
        matches!(self.near().csc.async_cache_get(tenant).await, Ok(Some(_)))
    }

    pub async fn single_flight_op(&self, _: &mut Connection, tenant: &String) -> bool {
        answered(self.single_flight.get_policy(tenant).await)
    }

    pub async fn mget_op(&self, conn: &mut Connection, _: &String) -> bool {
        let raw: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&self.batch_keys[..])
            .query_async(conn)
            .await
            .expect("MGET");
        raw.iter()
            .flatten()
            .filter(|b| serde_json::from_slice::<TenantLlmPolicy>(b).is_ok())
            .count()
            == BATCH
    }
}

/// Whether the floor's bytes decode to a policy.
fn decodes(bytes: Option<Vec<u8>>) -> bool {
    bytes
        .and_then(|b| serde_json::from_slice::<TenantLlmPolicy>(&b).ok())
        .is_some()
}

/// Whether a store answered with a policy.
fn answered<P>(got: Result<Option<P>, StoreError>) -> bool {
    matches!(got, Ok(Some(_)))
}

/// The hand-written decorator with its miss path (inner call + fill) in a separate heap
/// future, so the state of a hit holds only the `get`: an experiment on whether the size
/// of the per-call future matters at 64 tasks.
struct HandBoxedFill<S> {
    inner: S,
    cache: Cache,
}

impl<S: PolicyStore> HandBoxedFill<S> {
    async fn fill(
        &self,
        tenant_id: &str,
        key: String,
    ) -> Result<Option<TenantLlmPolicy>, StoreError> {
        let fresh = self.inner.get_policy(tenant_id).await?;
        if let Some(policy) = &fresh {
            self.cache.set(&key, policy, Duration::from_secs(300)).await;
        }
        Ok(fresh)
    }
}

#[async_trait::async_trait]
impl<S: PolicyStore> PolicyStore for HandBoxedFill<S> {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
        let key = policy_key(tenant_id);
        if let Some(hit) = self.cache.get::<TenantLlmPolicy>(&key).await {
            return Ok(Some(hit));
        }
        Box::pin(self.fill(tenant_id, key)).await
    }
}

/// The hand-written decorator with a single-flight per key inside the process, as the
/// generated decorator was before leases: concurrent misses of one key in one process
/// make one inner call, but each process makes its own.
struct HandSingleFlight<S> {
    inner: S,
    cache: Cache,
    flights: std::sync::Mutex<
        std::collections::HashMap<String, Arc<tokio::sync::OnceCell<Option<TenantLlmPolicy>>>>,
    >,
}

impl<S> HandSingleFlight<S> {
    fn new(inner: S, cache: Cache) -> Self {
        HandSingleFlight {
            inner,
            cache,
            flights: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl<S: PolicyStore> PolicyStore for HandSingleFlight<S> {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<TenantLlmPolicy>, StoreError> {
        let key = policy_key(tenant_id);
        if let Some(hit) = self.cache.get::<TenantLlmPolicy>(&key).await {
            return Ok(Some(hit));
        }
        let flight = self
            .flights
            .lock()
            .expect("flights")
            .entry(key.clone())
            .or_default()
            .clone();
        let loaded = flight
            .get_or_init(|| async {
                let fresh = self.inner.get_policy(tenant_id).await.ok().flatten();
                if let Some(policy) = &fresh {
                    self.cache.set(&key, policy, Duration::from_secs(300)).await;
                }
                fresh
            })
            .await
            .clone();
        let mut flights = self.flights.lock().expect("flights");
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&key);
        }
        Ok(loaded)
    }
}
