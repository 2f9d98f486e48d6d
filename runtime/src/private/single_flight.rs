//! Single-flight: concurrent misses of one key in one process make one inner call.
//!
//! The first caller to miss becomes the leader and calls the inner store; callers
//! arriving while it runs become followers and wait. The leader shares the encoded
//! value in-process (so this works even when Redis is down), or says that its answer
//! was absent (`None`, shared as is), or that it cannot be shared (`Err`: followers
//! then call the inner store themselves). A leader whose future is dropped before it
//! answers releases its followers, and one of them leads instead.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::watch;

use crate::cache::Cache;

/// What a leader hands its followers.
#[derive(Clone, Debug)]
pub(crate) enum Shared {
    /// The encoded value (also being written to the cache).
    Value(Arc<[u8]>),
    /// An absent answer (`None`, `Ok(None)`), not stored but shared.
    Absent,
    /// An answer that is neither stored nor shared (an `Err`): call the inner store.
    Unshared,
}

pub(crate) struct Flight {
    tx: watch::Sender<Option<Shared>>,
    /// Set when the key is invalidated while the leader is reading: its value may
    /// predate the write, so it is not stored.
    stale: AtomicBool,
}

/// Flights are told apart by cache (the address of its shared state) and key.
type FlightKey = (usize, String);
type Map = HashMap<FlightKey, Arc<Flight>>;

const SHARDS: usize = 16;

fn shards() -> &'static [Mutex<Map>; SHARDS] {
    static SHARDS_MAP: OnceLock<[Mutex<Map>; SHARDS]> = OnceLock::new();
    SHARDS_MAP.get_or_init(|| std::array::from_fn(|_| Mutex::new(HashMap::new())))
}

fn lock(shard: &Mutex<Map>) -> MutexGuard<'_, Map> {
    // The map holds no invariant a panic could break half-way.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

fn flight_key(cache: &Cache, key: &str) -> (usize, FlightKey) {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    let shard = (hasher.finish() % SHARDS as u64) as usize;
    (shard, (Arc::as_ptr(&cache.inner).addr(), key.to_owned()))
}

pub(crate) enum Join {
    Leader(Leader),
    Follower(watch::Receiver<Option<Shared>>),
}

/// Joins the flight for `key`, leading it if there is none.
pub(crate) fn join(cache: &Cache, key: &str) -> Join {
    let (shard, id) = flight_key(cache, key);
    let mut map = lock(&shards()[shard]);
    if let Some(flight) = map.get(&id) {
        return Join::Follower(flight.tx.subscribe());
    }
    let (tx, _rx) = watch::channel(None);
    let flight = Arc::new(Flight {
        tx,
        stale: AtomicBool::new(false),
    });
    map.insert(id.clone(), Arc::clone(&flight));
    Join::Leader(Leader { shard, id, flight })
}

/// Marks the flight for `key`, if any, as stale: its leader will not store its value.
pub(crate) fn mark_stale(cache: &Cache, key: &str) {
    let (shard, id) = flight_key(cache, key);
    if let Some(flight) = lock(&shards()[shard]).get(&id) {
        flight.stale.store(true, Ordering::Release);
    }
}

/// The leader of a flight. Dropping it ends the flight.
pub(crate) struct Leader {
    shard: usize,
    id: FlightKey,
    flight: Arc<Flight>,
}

impl Leader {
    /// Hands the answer to the followers waiting now and to callers that join until
    /// the leader is dropped.
    pub(crate) fn publish(&self, shared: Shared) {
        self.flight.tx.send_replace(Some(shared));
    }

    /// Whether the key was invalidated since the flight began.
    pub(crate) fn is_stale(&self) -> bool {
        self.flight.stale.load(Ordering::Acquire)
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut map = lock(&shards()[self.shard]);
        if map
            .get(&self.id)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_per_key_and_cache() {
        let a = Cache::memory();
        let b = Cache::memory();
        let leader = match join(&a, "k") {
            Join::Leader(l) => l,
            Join::Follower(_) => panic!("first caller leads"),
        };
        assert!(matches!(join(&a, "k"), Join::Follower(_)));
        assert!(
            matches!(join(&a.clone(), "k"), Join::Follower(_)),
            "clones share flights"
        );
        assert!(
            matches!(join(&b, "k"), Join::Leader(_)),
            "other caches have their own"
        );
        assert!(matches!(join(&a, "other"), Join::Leader(_)));
        assert!(!leader.is_stale());
        mark_stale(&a, "k");
        assert!(leader.is_stale());
        drop(leader);
        assert!(
            matches!(join(&a, "k"), Join::Leader(_)),
            "the flight ends with its leader"
        );
    }

    #[tokio::test]
    async fn followers_see_the_published_answer_or_the_leaders_departure() {
        let cache = Cache::memory();
        let Join::Leader(leader) = join(&cache, "x") else {
            panic!()
        };
        let Join::Follower(mut rx) = join(&cache, "x") else {
            panic!()
        };
        leader.publish(Shared::Absent);
        let got = rx.wait_for(Option::is_some).await.unwrap().clone();
        assert!(matches!(got, Some(Shared::Absent)));

        let Join::Follower(mut rx) = join(&cache, "x") else {
            panic!()
        };
        drop(leader);
        // The value was published before the leader left: late joiners still see it.
        assert!(rx.wait_for(Option::is_some).await.is_ok());

        let Join::Leader(leader) = join(&cache, "y") else {
            panic!()
        };
        let Join::Follower(mut rx) = join(&cache, "y") else {
            panic!()
        };
        drop(leader);
        assert!(
            rx.wait_for(Option::is_some).await.is_err(),
            "a vanished leader releases followers"
        );
    }
}
