//! The near cache: an in-process tier in front of Redis, kept coherent by Redis itself.
//!
//! Entries are the values read from Redis, held in a bounded concurrent cache
//! (quick_cache), each with a maximum age. An entry keeps the bytes it was read as and,
//! once a typed read asked for it, the value decoded from them ([`Entry::decoded`]):
//! a near hit of a decorator whose value type is `Clone` is a clone of that value, not
//! a decode. Coherence comes from a dedicated RESP3
//! connection with `CLIENT TRACKING ON BCAST`: Redis reports every write, delete and
//! expiry of any key, by any client, as an `invalidate` push, which evicts the entry.
//!
//! The near cache serves only what the instance can vouch for:
//!
//! - **Epoch gate.** When the feed is lost (connection error, `CLIENT KILL`, a heartbeat
//!   without answer), it stops serving at once and bumps an epoch; entries of an older
//!   epoch are never served again. It serves again only after tracking is
//!   re-established on a new connection.
//! - **Heartbeat.** A `PING` on the feed every [`HEARTBEAT`], answered within
//!   [`HEARTBEAT`]: pushes and replies share the connection in order, so a `PONG`
//!   proves that every invalidation sent before it was applied. An entry is served only
//!   while the last proof is younger than two heartbeats, so a silent partition costs
//!   at most that much staleness.
//! - **In-flight guard.** A read takes a ticket (the invalidation sequence number) before
//!   its `GET`; its value is inserted only if no invalidation of a key in the same
//!   bucket arrived since, and is removed again if one arrives during the insert.
//! - **Own writes** evict locally before the `DEL`/`SET` is sent.
//!
//! On Redis Cluster (one feed per primary would be needed, re-established on every
//! topology change) the near cache is not started, and says so once: never a silently
//! weaker guarantee. A server that refuses `CLIENT TRACKING` likewise.

use std::any::Any;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The default bound on the age of a near entry.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10);

/// How often the feed is pinged, and how long a ping may take.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(500);

/// Buckets of the in-flight guard (a power of two).
const BUCKETS: usize = 4096;

/// The name the feed connection gives itself (`CLIENT LIST` shows it).
pub(crate) const FEED_CLIENT_NAME: &str = "cacheward-near-feed";

/// One near entry: the bytes read from Redis under a ticket, and their decoded form.
///
/// The decoded form is a pure function of the bytes (it is made from them, never from
/// a value the caller had), so it is exactly as fresh as the entry: everything that
/// evicts or refuses the entry (an invalidation, the epoch, its age) applies to it.
pub(crate) struct Entry {
    bytes: Vec<u8>,
    epoch: u64,
    expires: Instant,
    /// The bytes decoded as the first type a typed read asked for.
    decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Entry {
    /// The bytes as read from Redis.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The entry decoded as a `D` by `decode` (from [`bytes`](Self::bytes)), decoded
    /// once per entry: later calls for the same type share that value. An entry holds
    /// one decoded type; another type asked of it is decoded from the bytes each time
    /// (`TypeId`s are compared, so a value is never handed out as the wrong type).
    /// `None` when `decode` fails (nothing is kept then).
    pub(crate) fn decoded<D: Any + Send + Sync>(
        &self,
        decode: impl FnOnce(&[u8]) -> Option<D>,
    ) -> Option<Arc<D>> {
        if let Some(held) = self.decoded.get() {
            if (**held).is::<D>() {
                return Arc::clone(held).downcast::<D>().ok();
            }
            return decode(&self.bytes).map(Arc::new);
        }
        let fresh = Arc::new(decode(&self.bytes)?);
        // A concurrent reader may have set it first: both decoded the same bytes.
        let _ = self
            .decoded
            .set(Arc::clone(&fresh) as Arc<dyn Any + Send + Sync>);
        Some(fresh)
    }
}

/// What a read took before its `GET`; see [`Near::insert`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    seq: u64,
    epoch: u64,
}

/// The near cache of one [`Cache`](crate::Cache).
pub(crate) struct Near {
    entries: quick_cache::sync::Cache<String, Arc<Entry>>,
    max_age: Duration,
    hasher: std::collections::hash_map::RandomState,
    /// Bumped whenever the feed cannot vouch for what happened meanwhile.
    epoch: AtomicU64,
    /// Whether the feed is up and tracking.
    live: AtomicBool,
    /// Nanoseconds since `base` of the send time of the last answered heartbeat.
    vouched: AtomicU64,
    base: Instant,
    /// The invalidation sequence and, per bucket, the last sequence that hit it.
    seq: AtomicU64,
    buckets: Box<[AtomicU64]>,
    /// Set once the server refused tracking: the near cache stays off.
    refused: AtomicBool,
    /// The server, over RESP3, for the feed; started on first use inside a runtime.
    feed_client: Option<redis::Client>,
    feed_started: AtomicBool,
}

impl std::fmt::Debug for Near {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Near")
            .field("entries", &self.entries.len())
            .field("capacity", &self.entries.capacity())
            .field("max_age", &self.max_age)
            .field("live", &self.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Near {
    pub(crate) fn new(
        capacity: usize,
        max_age: Duration,
        feed_client: Option<redis::Client>,
    ) -> Self {
        Near {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            max_age: max_age.max(Duration::from_millis(1)),
            hasher: std::collections::hash_map::RandomState::new(),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(false),
            vouched: AtomicU64::new(0),
            base: Instant::now(),
            seq: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            refused: AtomicBool::new(false),
            feed_client,
            feed_started: AtomicBool::new(false),
        }
    }

    /// Starts the invalidation feed on the current runtime, once.
    #[inline]
    pub(crate) fn ensure_feed(self: &Arc<Self>) {
        if self.feed_started.load(Ordering::Relaxed) {
            return;
        }
        self.start_feed();
    }

    #[cold]
    fn start_feed(self: &Arc<Self>) {
        let Some(client) = self.feed_client.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.feed_started.swap(true, Ordering::AcqRel) {
            runtime.spawn(run_feed(Arc::downgrade(self), client));
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn bucket(&self, key: &str) -> &AtomicU64 {
        &self.buckets[(self.hasher.hash_one(key) as usize) & (BUCKETS - 1)]
    }

    /// Whether the feed vouches for the near cache right now.
    #[inline]
    fn vouched(&self, now: Instant) -> bool {
        self.live.load(Ordering::Acquire)
            && self
                .nanos(now)
                .saturating_sub(self.vouched.load(Ordering::Acquire))
                < u64::try_from((HEARTBEAT * 2).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The entry of `key`, if the near cache holds one it can vouch for.
    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let now = Instant::now();
        if !self.vouched(now) {
            return None;
        }
        let entry = self.entries.get(key)?;
        if entry.epoch != self.epoch.load(Ordering::Acquire) || entry.expires <= now {
            return None;
        }
        Some(entry)
    }

    /// Taken before a `GET` whose value may be inserted.
    #[inline]
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        Some(Ticket {
            epoch: self.epoch.load(Ordering::SeqCst),
            seq: self.seq.load(Ordering::SeqCst),
        })
    }

    /// Inserts a value read from Redis under `ticket`, unless an invalidation of its
    /// bucket arrived since the ticket was taken (or arrives during the insert).
    ///
    /// Returns the entry made of `bytes` (which the caller may decode through, see
    /// [`Entry::decoded`]; it may already have been evicted again), or `bytes` back when
    /// the ticket did not allow an insert.
    pub(crate) fn insert(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ticket: Ticket,
        ttl: Option<Duration>,
    ) -> Result<Arc<Entry>, Vec<u8>> {
        let bucket = self.bucket(key);
        if bucket.load(Ordering::SeqCst) > ticket.seq
            || self.epoch.load(Ordering::SeqCst) != ticket.epoch
        {
            return Err(bytes);
        }
        if let Some(delay) = testing::insert_delay(key) {
            std::thread::sleep(delay);
        }
        let age = ttl.map_or(self.max_age, |t| t.min(self.max_age));
        let entry = Arc::new(Entry {
            bytes,
            epoch: ticket.epoch,
            expires: Instant::now() + age,
            decoded: OnceLock::new(),
        });
        self.entries.insert(key.to_owned(), Arc::clone(&entry));
        // An invalidation that bumped the bucket before this insert landed removes
        // nothing (there was nothing yet): take the entry out again.
        if bucket.load(Ordering::SeqCst) > ticket.seq
            || self.epoch.load(Ordering::SeqCst) != ticket.epoch
        {
            self.entries.remove(key);
        }
        Ok(entry)
    }

    /// Evicts `key` (an invalidation from the feed, or this instance's own write).
    pub(crate) fn invalidate(&self, key: &str) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        self.bucket(key).fetch_max(seq, Ordering::SeqCst);
        self.entries.remove(key);
    }

    /// Forgets everything: the feed lost track (a flush, a lost connection).
    pub(crate) fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }

    fn apply(&self, push: redis::PushInfo) {
        match push.kind {
            redis::PushKind::Invalidate => match push.data.as_slice() {
                [redis::Value::Array(keys)] => {
                    for key in keys {
                        match key {
                            redis::Value::BulkString(k) => {
                                self.invalidate(&String::from_utf8_lossy(k));
                            }
                            _ => self.invalidate_all(),
                        }
                    }
                }
                // A null list: the server flushed (FLUSHALL, FLUSHDB) or cannot say.
                _ => self.invalidate_all(),
            },
            redis::PushKind::Disconnection => self.lose_feed(),
            _ => {}
        }
    }

    fn lose_feed(&self) {
        self.live.store(false, Ordering::SeqCst);
        self.invalidate_all();
    }
}

/// Keeps the invalidation feed of `near` running against the server of `client` for
/// as long as `near` is alive: connects (RESP3), enables tracking, heartbeats, and
/// reconnects after any failure.
pub(crate) async fn run_feed(near: std::sync::Weak<Near>, client: redis::Client) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = near.upgrade() else { return };
        let outcome = feed_once(&strong, &client).await;
        strong.lose_feed();
        match outcome {
            FeedEnd::Refused(why) => {
                strong.refused.store(true, Ordering::Relaxed);
                tracing::warn!(
                    error = %why,
                    "cacheward: the server refused CLIENT TRACKING - near cache disabled, every read goes to Redis"
                );
                return;
            }
            FeedEnd::Lost(why) => {
                tracing::debug!(error = %why, "cacheward: near cache feed lost - not serving from the near cache until it is back");
            }
        }
        drop(strong);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

enum FeedEnd {
    Refused(String),
    Lost(String),
}

async fn feed_once(near: &Arc<Near>, client: &redis::Client) -> FeedEnd {
    let weak = Arc::downgrade(near);
    let sender = move |push: redis::PushInfo| -> Result<(), ()> {
        if let Some(near) = weak.upgrade() {
            near.apply(push);
        }
        Ok(())
    };
    let config = redis::AsyncConnectionConfig::new()
        .set_push_sender(sender)
        .set_connection_timeout(Some(HEARTBEAT * 2))
        .set_response_timeout(Some(HEARTBEAT));
    let mut conn = match client
        .get_multiplexed_async_connection_with_config(&config)
        .await
    {
        Ok(c) => c,
        Err(e) => return FeedEnd::Lost(e.to_string()),
    };
    let _ = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(FEED_CLIENT_NAME)
        .query_async::<()>(&mut conn)
        .await;
    let since = Instant::now();
    match redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .arg("BCAST")
        .query_async::<()>(&mut conn)
        .await
    {
        Ok(()) => {}
        Err(e) if e.kind() == redis::ErrorKind::Io || e.is_timeout() => {
            return FeedEnd::Lost(e.to_string());
        }
        Err(e) => return FeedEnd::Refused(e.to_string()),
    }
    // Everything written before `since` is in what a read sees from now on; everything
    // after it is reported. Entries of earlier epochs were dropped by `lose_feed`.
    near.vouched.store(near.nanos(since), Ordering::SeqCst);
    near.live.store(true, Ordering::SeqCst);
    tracing::debug!("cacheward: near cache feed tracking - serving from the near cache");
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if Arc::strong_count(near) <= 1 {
            return FeedEnd::Lost("the cache was dropped".into());
        }
        let sent = Instant::now();
        match tokio::time::timeout(
            HEARTBEAT,
            redis::cmd("PING").query_async::<redis::Value>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => near.vouched.store(near.nanos(sent), Ordering::SeqCst),
            Ok(Err(e)) => return FeedEnd::Lost(e.to_string()),
            Err(_) => return FeedEnd::Lost("heartbeat timed out".into()),
        }
    }
}

/// Test hooks: not API.
pub mod testing {
    use super::Duration;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    static ARMED: AtomicBool = AtomicBool::new(false);
    static DELAY: Mutex<Option<(String, Duration)>> = Mutex::new(None);

    /// Makes every near-cache insert of a key starting with `prefix` sleep for `delay`
    /// between its check and its insert, so a test can land an invalidation in that
    /// window. `None` turns it off.
    pub fn set_insert_delay(hook: Option<(&str, Duration)>) {
        ARMED.store(hook.is_some(), Ordering::SeqCst);
        *DELAY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            hook.map(|(p, d)| (p.to_owned(), d));
    }

    #[inline]
    pub(super) fn insert_delay(key: &str) -> Option<Duration> {
        if !ARMED.load(Ordering::Relaxed) {
            return None;
        }
        let hook = DELAY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*hook {
            Some((prefix, d)) if key.starts_with(prefix.as_str()) => Some(*d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(near: &Near) {
        near.live.store(true, Ordering::SeqCst);
        near.vouched
            .store(near.nanos(Instant::now()), Ordering::SeqCst);
    }

    fn bytes(near: &Near, key: &str) -> Option<Vec<u8>> {
        near.get(key).map(|e| e.bytes().to_vec())
    }

    fn put(near: &Near, key: &str, value: &[u8]) {
        let _ = near.insert(key, value.to_vec(), near.ticket().unwrap(), None);
    }

    #[test]
    fn serves_only_what_it_can_vouch_for() {
        let near = Near::new(100, Duration::from_secs(10), None);
        assert!(near.ticket().is_none(), "no feed: no tickets");
        live(&near);
        put(&near, "k", b"v");
        assert_eq!(bytes(&near, "k").as_deref(), Some(&b"v"[..]));
        near.lose_feed();
        assert!(near.get("k").is_none(), "feed lost");
        live(&near);
        assert!(
            near.get("k").is_none(),
            "entries of an older epoch stay unserved"
        );
    }

    #[test]
    fn an_invalidation_since_the_ticket_blocks_the_insert() {
        let near = Near::new(100, Duration::from_secs(10), None);
        live(&near);
        let t = near.ticket().unwrap();
        near.invalidate("k");
        assert_eq!(
            near.insert("k", b"old".to_vec(), t, None).err().as_deref(),
            Some(&b"old"[..]),
            "the bytes come back, not inserted"
        );
        assert!(near.get("k").is_none());
        put(&near, "k", b"new");
        assert_eq!(bytes(&near, "k").as_deref(), Some(&b"new"[..]));
        near.invalidate("k");
        assert!(near.get("k").is_none());
    }

    #[test]
    fn entries_age_out() {
        let near = Near::new(100, Duration::from_millis(20), None);
        live(&near);
        let t = near.ticket().unwrap();
        let _ = near.insert("k", b"v".to_vec(), t, Some(Duration::from_secs(60)));
        assert!(near.get("k").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(near.get("k").is_none());
    }

    #[test]
    fn a_silent_feed_stops_serving_after_two_heartbeats() {
        let near = Near::new(100, Duration::from_secs(60), None);
        live(&near);
        put(&near, "k", b"v");
        near.vouched.store(0, Ordering::SeqCst);
        std::thread::sleep(HEARTBEAT * 2);
        assert!(near.get("k").is_none());
    }

    fn parse<D: std::str::FromStr>(decodes: &std::cell::Cell<u32>, b: &[u8]) -> Option<D> {
        decodes.set(decodes.get() + 1);
        std::str::from_utf8(b).ok()?.parse().ok()
    }

    #[test]
    fn an_entry_is_decoded_once_per_entry_and_per_type() {
        let near = Near::new(100, Duration::from_secs(10), None);
        live(&near);
        let decodes = std::cell::Cell::new(0);
        put(&near, "k", b"7");
        let entry = near.get("k").unwrap();
        let first = entry.decoded(|b| parse::<u64>(&decodes, b)).unwrap();
        let again = near
            .get("k")
            .unwrap()
            .decoded(|b| parse::<u64>(&decodes, b));
        assert_eq!((*first, again.as_deref(), decodes.get()), (7, Some(&7), 1));
        assert!(
            Arc::ptr_eq(&first, &again.unwrap()),
            "the same decoded value"
        );
        // Another type of the same entry: decoded from the bytes, never the u64 cast.
        let other = entry.decoded(|b| parse::<String>(&decodes, b));
        assert_eq!(other.as_deref().map(String::as_str), Some("7"));
        let third = entry.decoded(|b| parse::<u8>(&decodes, b));
        assert_eq!((third.as_deref(), decodes.get()), (Some(&7), 3));
        // An undecodable entry keeps nothing and says so each time.
        put(&near, "bad", b"x");
        let bad = near.get("bad").unwrap();
        assert!(bad.decoded(|b| parse::<u64>(&decodes, b)).is_none());
        assert!(bad.decoded(|b| parse::<u64>(&decodes, b)).is_none());
        assert_eq!(decodes.get(), 5);
    }

    #[test]
    fn a_new_entry_is_decoded_anew() {
        let near = Near::new(100, Duration::from_secs(10), None);
        live(&near);
        let decodes = std::cell::Cell::new(0);
        put(&near, "k", b"1");
        let old = near
            .get("k")
            .unwrap()
            .decoded(|b| parse::<u64>(&decodes, b));
        near.invalidate("k");
        assert!(
            near.get("k").is_none(),
            "the decoded value went with its entry"
        );
        put(&near, "k", b"2");
        let new = near
            .get("k")
            .unwrap()
            .decoded(|b| parse::<u64>(&decodes, b));
        assert_eq!((old.as_deref(), new.as_deref()), (Some(&1), Some(&2)));
        near.lose_feed();
        live(&near);
        assert!(near.get("k").is_none(), "nor across an epoch");
    }
}
