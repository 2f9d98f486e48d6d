//! The read-through every cached method and [`Cache::get_or_set`] go through.

use std::borrow::Cow;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::near_path::{Hit, NearPath};
use super::shape::Shape;
use super::single_flight::{self, Join, Leader, Shared};
use crate::backend::Backend;
use crate::cache::Cache;
use crate::inventory::KeySpec;
use crate::lease::Acquired;
use crate::tags::Stamps;

/// Answers a cached method: the cached value on a hit; on a miss, the inner store's
/// answer (`inner` is called only then, so a hit never creates the inner future),
/// stored if its shape says so. Concurrent misses of one key share one inner call,
/// within a process (single-flight) and across processes (leases).
///
/// Every cache failure is a miss: the caller always gets the inner store's answer or a
/// value the inner store gave for the same key.
///
/// `near` says how a hit becomes the value: [`Cloned`](super::near_path::Cloned) from
/// the value a near-cache entry holds decoded, or [`Decode`](super::near_path::Decode) from the bytes (the macro
/// picks one per method, see [`near_path`](super::near_path)).
///
/// Not an `async fn`: one of those keeps its arguments in its state next to the
/// future they are moved into, and every hit moves this future (into the decorator's
/// box, among others). This is the read-through future itself.
pub fn read_through<R, M, N, F, Fut>(
    cache: &Cache,
    spec: &'static KeySpec,
    key: String,
    shape: M,
    near: N,
    inner: F,
) -> impl Future<Output = R>
where
    M: Shape<R>,
    N: NearPath<M::Stored>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    // The plan owns the key, so no state of ours wraps the read-through's.
    let plan = Plan::new(spec.label(), spec.effective_ttl(), key);
    load_through(cache, plan, shape, near, inner, NoRefresh)
}

/// [`read_through`] for a template with tags, `refresh_ahead` or `stale_if_error`.
/// `tags` are this call's tags, rendered from its arguments.
///
/// A hit due for a refresh is refreshed by the caller that wins the refresh (one per
/// process, one across instances, through the lease): it calls the inner store and
/// answers with the new value; every other caller answers at once from the cache. (A
/// background refresh would need the inner store's future to be `Send + 'static`,
/// which a generic decorator cannot require of an `async fn` in a trait; code that can
/// give an owned loader uses [`read_through_with_background`].)
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per thing the caller knows"
)]
pub async fn read_through_with<R, M, N, F, Fut, const TAGS: usize>(
    cache: &Cache,
    spec: &'static KeySpec,
    key: String,
    tags: [String; TAGS],
    timing: Timing,
    shape: M,
    near: N,
    inner: F,
) -> R
where
    M: Shape<R>,
    N: NearPath<M::Stored>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    let plan = Plan {
        tags: &tags,
        timing: &timing,
        ..Plan::new(spec.label(), spec.effective_ttl(), key.as_str())
    };
    load_through(cache, plan, shape, near, inner, Foreground).await
}

/// [`read_through_with`] with a background refresh: `refresh` makes an owned future
/// that loads the same value again, run in a task of its own when a hit is due, so
/// that every caller answers at once.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per thing the caller knows"
)]
pub async fn read_through_with_background<R, M, N, F, Fut, G, GFut, const TAGS: usize>(
    cache: &Cache,
    spec: &'static KeySpec,
    key: String,
    tags: [String; TAGS],
    timing: Timing,
    shape: M,
    near: N,
    inner: F,
    refresh: G,
) -> R
where
    M: Shape<R> + Send + 'static,
    N: NearPath<M::Stored>,
    R: Send + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
    G: FnOnce() -> GFut,
    GFut: Future<Output = R> + Send + 'static,
{
    let plan = Plan {
        tags: &tags,
        timing: &timing,
        ..Plan::new(spec.label(), spec.effective_ttl(), key.as_str())
    };
    load_through(cache, plan, shape, near, inner, Refresher(refresh)).await
}

/// The options of a template that change how its entries live.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// Refresh in the background when a hit finds the entry older than this share of
    /// its TTL (0 < f < 1).
    pub refresh_ahead: Option<f64>,
    /// Keep a stale copy this long past the TTL, served when the inner store fails.
    pub stale_if_error: Option<Duration>,
    /// After the inner store failed for a key, how long its misses answer from the
    /// stale copy without calling the store (default 5 s).
    pub fail_safe_throttle: Option<Duration>,
}

impl Timing {
    /// No refresh-ahead, no stale copy: [`Timing::default`], as a constant.
    pub(crate) const NONE: Timing = Timing {
        refresh_ahead: None,
        stale_if_error: None,
        fail_safe_throttle: None,
    };
}

/// One read: what it reads and how its entries live. It owns the key when its caller
/// hands the key over (the generated decorator does).
pub(crate) struct Plan<'a> {
    pub(crate) label: &'static str,
    pub(crate) ttl: Duration,
    pub(crate) key: Cow<'a, str>,
    pub(crate) tags: &'a [String],
    /// By reference: a hit's future holds its plan, and most plans have no timing.
    pub(crate) timing: &'a Timing,
}

impl<'a> Plan<'a> {
    pub(crate) fn new(label: &'static str, ttl: Duration, key: impl Into<Cow<'a, str>>) -> Self {
        Plan {
            label,
            ttl,
            key: key.into(),
            tags: &[],
            timing: &Timing::NONE,
        }
    }

    /// How much TTL an entry has left when it becomes due for a refresh: past
    /// `refresh_ahead` of the TTL, with ±10% jitter per key so that keys filled together
    /// do not refresh together.
    fn refresh_due(&self) -> Option<Duration> {
        let f = self.timing.refresh_ahead?;
        let jitter = {
            let h = std::collections::hash_map::RandomState::new().hash_one(&*self.key);
            (h % 2001) as f64 / 10_000.0 - 0.1
        };
        let share = (f * (1.0 + jitter)).clamp(0.01, 0.99);
        Some(self.ttl.mul_f64(1.0 - share))
    }

    /// Whether a hit that has `remaining` of its TTL left should start a refresh.
    fn due_for_refresh(&self, remaining: Option<Duration>) -> bool {
        // `remaining` first: a near hit knows none, and pays for no jitter then.
        remaining.is_some_and(|left| self.refresh_due().is_some_and(|due| left <= due))
    }
}

/// How a template's entries are stored: plain JSON, or an envelope stamped with the
/// counters of its tags as read before the load.
pub(crate) enum Format {
    Plain,
    Tagged(Stamps),
}

impl Format {
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        cache: &Cache,
        key: &str,
        bytes: &[u8],
        label: &'static str,
    ) -> Option<T> {
        match self {
            Format::Plain => cache.decode_or_evict(key, bytes, label),
            Format::Tagged(stamps) => stamps.decode(cache, key, bytes, label),
        }
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        cache: &Cache,
        value: &T,
        label: &'static str,
    ) -> Option<Vec<u8>> {
        match self {
            Format::Plain => cache.encode(value, label),
            Format::Tagged(stamps) => stamps.encode(cache, value, label),
        }
    }
}

/// What a hit due for a refresh does: nothing, load again in the background, or let
/// the caller that wins the refresh load again ([`Refresh::FOREGROUND`]).
pub(crate) trait Refresh<R> {
    /// The winner of the refresh loads in its own call.
    const FOREGROUND: bool = false;

    fn start<M: Shape<R>>(self, cache: &Cache, plan: &Plan<'_>, format: Format);
}

/// No refresh.
pub(crate) struct NoRefresh;

impl<R> Refresh<R> for NoRefresh {
    fn start<M: Shape<R>>(self, _: &Cache, _: &Plan<'_>, _: Format) {}
}

/// The refresh is the winning caller's own load.
pub(crate) struct Foreground;

impl<R> Refresh<R> for Foreground {
    const FOREGROUND: bool = true;

    fn start<M: Shape<R>>(self, _: &Cache, _: &Plan<'_>, _: Format) {}
}

/// A background refresh from an owned loader.
struct Refresher<G>(G);

impl<R, G, GFut> Refresh<R> for Refresher<G>
where
    R: Send + 'static,
    G: FnOnce() -> GFut,
    GFut: Future<Output = R> + Send + 'static,
{
    fn start<M: Shape<R>>(self, cache: &Cache, plan: &Plan<'_>, format: Format) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(claim) = cache.claim_refresh(&plan.key) else {
            return; // this instance is refreshing the key already
        };
        let load = (self.0)();
        let cache = cache.clone();
        let (key, label, ttl) = (plan.key.to_string(), plan.label, plan.ttl);
        let stale = plan.timing.stale_if_error;
        let due = plan.refresh_due().unwrap_or_default();
        runtime.spawn(async move {
            let _claim = claim;
            // One refresher across all instances: whoever takes the lease while the
            // entry is still due.
            let Some(guard) = cache.take_refresh_lease(&key, label, due).await else {
                return;
            };
            let result = load.await;
            match M::stored(&result).and_then(|v| format.encode(&cache, v, label)) {
                // Stored only if no invalidation removed the lease meanwhile.
                Some(bytes) => {
                    cache.slot(label).counters.refresh();
                    guard.fill(&bytes, ttl, stale).await;
                }
                None => guard.release().await,
            }
        });
    }
}

/// [`read_through`] for a plan given directly.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would hold its arguments twice"
)]
pub(crate) fn load_through<R, M, N, F, Fut, Rf>(
    cache: &Cache,
    plan: Plan<'_>,
    _shape: M,
    near: N,
    inner: F,
    refresh: Rf,
) -> impl Future<Output = R>
where
    M: Shape<R>,
    N: NearPath<M::Stored>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
    Rf: Refresh<R>,
{
    // Not an `async fn`: one keeps its arguments twice in its state (as arguments and
    // as locals), and `plan` and `inner` are a good part of a hit's future.
    async move {
        let plan = &plan;
        if cache.backend() == Backend::PassThrough {
            return inner().await;
        }
        let (key, label) = (&*plan.key, plan.label);
        let want_ttl = plan.timing.refresh_ahead.is_some();
        // The entry, and its tags' counters (concurrently): the counters are read before
        // any load, so a load that races a tag invalidation stamps the old counter.
        let (read, format) = if plan.tags.is_empty() {
            let read = cache
                .try_get_raw(key, label, Some(plan.ttl), want_ttl)
                .await;
            (read, Ok(Format::Plain))
        } else {
            // Boxed: the two reads side by side would set the size of every hit's future.
            let (read, stamps) = Box::pin(async {
                tokio::join!(
                    cache.try_get_raw(key, label, Some(plan.ttl), want_ttl),
                    cache.tag_stamps(plan.tags)
                )
            })
            .await;
            (read, stamps.map(Format::Tagged))
        };
        // A read that failed because Redis is unreachable or slow is a miss, but its fill
        // is skipped: a lease or a SET into a Redis that just failed would only wait out
        // another deadline. The next read after Redis recovers fills the key.
        let (read_failed, format) = match (read, format) {
            (Ok(Some((found, remaining))), Ok(format)) => {
                let hit = Hit {
                    cache,
                    format: &format,
                    key,
                    label,
                    found: &found,
                };
                if let Some(value) = near.value(hit) {
                    if plan.due_for_refresh(remaining) {
                        if Rf::FOREGROUND {
                            // Boxed like the miss path: rare, and large.
                            return Box::pin(refresh_here::<R, M, F, Fut>(
                                cache, plan, &format, value, inner,
                            ))
                            .await;
                        }
                        refresh.start::<M>(cache, plan, format);
                    }
                    return M::from_stored(value);
                }
                if let Format::Tagged(_) = format {
                    // Stamped before a tag invalidation: out of the way of the refill.
                    Box::pin(cache.drop_stale(key, found.bytes())).await;
                }
                (false, format)
            }
            (Ok(None), Ok(format)) => (false, format),
            (_, format) => (true, format.unwrap_or(Format::Plain)),
        };
        // The miss path lives in a future of its own, allocated only on a miss: inline, its
        // states (the single flight, the fill, the inner store's future) would make every
        // hit's future about a kilobyte larger, and a hit moves its future several times.
        Box::pin(load_missing::<R, M, F, Fut>(
            cache,
            plan,
            format,
            read_failed,
            inner,
        ))
        .await
    }
}

/// [`load_through`] after a miss: a stale copy if the store failed moments ago, else
/// one load per key (the single flight), shared with every concurrent caller.
async fn load_missing<R, M, F, Fut>(
    cache: &Cache,
    plan: &Plan<'_>,
    format: Format,
    read_failed: bool,
    inner: F,
) -> R
where
    M: Shape<R>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    let (key, label) = (&*plan.key, plan.label);
    if plan.timing.stale_if_error.is_some()
        && cache.store_failing(key)
        && let Some(value) = serve_stale::<R, M>(cache, plan, &format).await
    {
        return value; // the store failed moments ago: do not hammer it
    }
    loop {
        match single_flight::join(cache, key) {
            Join::Leader(leader) => {
                return lead::<R, M, F, Fut>(cache, plan, &format, &leader, read_failed, inner)
                    .await;
                // Dropping the leader (after the fill) ends the flight.
            }
            Join::Follower(mut rx) => {
                let shared = match rx.wait_for(Option::is_some).await {
                    Ok(shared) => shared.clone(),
                    // The leader's future was dropped before it answered: try again.
                    Err(_) => continue,
                };
                match shared {
                    Some(Shared::Value(bytes)) => {
                        if let Some(value) = format.decode::<M::Stored>(cache, key, &bytes, label) {
                            return M::from_stored(value);
                        }
                    }
                    Some(Shared::Absent) => {
                        if let Some(absent) = M::absent() {
                            return absent;
                        }
                    }
                    Some(Shared::Unshared) | None => {}
                }
                break;
            }
        }
    }
    inner().await
}

/// A hit due for a refresh, in the foreground: the caller that wins the refresh (in
/// this process and, through the lease, across instances) loads and fills, and answers
/// with what it loaded; any other caller, or a load that fails, answers with the cached
/// `value`.
async fn refresh_here<R, M, F, Fut>(
    cache: &Cache,
    plan: &Plan<'_>,
    format: &Format,
    value: M::Stored,
    inner: F,
) -> R
where
    M: Shape<R>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    let (key, label) = (&*plan.key, plan.label);
    let Some(_claim) = cache.claim_refresh(key) else {
        return M::from_stored(value);
    };
    let due = plan.refresh_due().unwrap_or_default();
    let Some(guard) = cache.take_refresh_lease(key, label, due).await else {
        return M::from_stored(value);
    };
    let result = inner().await;
    match M::stored(&result).and_then(|v| format.encode(cache, v, label)) {
        Some(bytes) => {
            cache.slot(label).counters.refresh();
            guard
                .fill(&bytes, plan.ttl, plan.timing.stale_if_error)
                .await;
            result
        }
        None if M::is_absent(&result) => {
            // The row is gone: say so, and let the entry expire with its TTL.
            guard.release().await;
            result
        }
        None => {
            guard.release().await;
            M::from_stored(value)
        }
    }
}

/// The stale copy of the plan's key, if one is kept, still valid for its tags, and
/// decodable; counted and logged as served.
async fn serve_stale<R, M: Shape<R>>(cache: &Cache, plan: &Plan<'_>, format: &Format) -> Option<R> {
    let bytes = cache.read_stale(&plan.key).await?;
    let value = format.decode::<M::Stored>(cache, &plan.key, &bytes, plan.label)?;
    cache.stale_served(&plan.key, plan.label);
    Some(M::from_stored(value))
}

/// The leader of a miss in this process: takes the lease (or finds the value someone
/// filled meanwhile), loads, shares the answer with the followers and fills. When the
/// load fails and a stale copy is kept (`stale_if_error`), answers with it.
async fn lead<R, M, F, Fut>(
    cache: &Cache,
    plan: &Plan<'_>,
    format: &Format,
    leader: &Leader,
    read_failed: bool,
    inner: F,
) -> R
where
    M: Shape<R>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    let (key, label) = (&*plan.key, plan.label);
    let lease = if read_failed {
        tracing::debug!(label, "cacheward: the cache read failed - fill skipped");
        None
    } else {
        match cache.take_lease(key, label).await {
            Acquired::Value(bytes) => {
                if let Some(value) = format.decode::<M::Stored>(cache, key, &bytes, label) {
                    leader.publish(Shared::Value(bytes.into()));
                    return M::from_stored(value);
                }
                None
            }
            Acquired::Lease(guard) => Some(guard),
            Acquired::NoLease => None,
        }
    };
    let result = inner().await;
    let encoded = M::stored(&result).and_then(|value| format.encode(cache, value, label));
    match encoded {
        Some(bytes) => {
            let bytes: Arc<[u8]> = bytes.into();
            leader.publish(Shared::Value(Arc::clone(&bytes)));
            match lease {
                Some(guard) if leader.is_stale() => {
                    tracing::debug!(
                        label,
                        "cacheward: key invalidated during the read - value not stored"
                    );
                    guard.release().await;
                }
                Some(guard) => {
                    guard
                        .fill(&bytes, plan.ttl, plan.timing.stale_if_error)
                        .await;
                }
                None => {}
            }
            result
        }
        None if M::is_absent(&result) => {
            leader.publish(Shared::Absent);
            if let Some(guard) = lease {
                guard.release().await;
            }
            result
        }
        None => {
            if let Some(guard) = lease {
                guard.release().await;
            }
            // The inner store failed: the stale copy, if one is kept, answers instead.
            if plan.timing.stale_if_error.is_some()
                && let Some(bytes) = cache.read_stale(key).await
                && let Some(value) = format.decode::<M::Stored>(cache, key, &bytes, label)
            {
                cache.stale_served(key, label);
                cache.note_store_failing(key, plan.timing.fail_safe_throttle);
                leader.publish(Shared::Value(bytes.into()));
                return M::from_stored(value);
            }
            leader.publish(Shared::Unshared);
            result
        }
    }
}
