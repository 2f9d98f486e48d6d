//! Leases: race-free fills across instances, and one load per cold key.
//!
//! The protocol (memcache leases, mapped onto Redis) keeps the hit path a plain `GET`
//! of the value key `K`, whose value is plain JSON. Everything else happens on a miss,
//! with a second key `L` (the *lease key*, [`lease_key`]) in the same cluster slot:
//!
//! 1. **Acquire** — one script: if `K` holds a value, return it (someone filled it
//!    since our `GET`); else `SET L <token> NX PX <lease>`; if that fails, someone
//!    else is loading: return how long their lease still runs.
//! 2. **Load** — only the holder of the lease calls the inner store.
//! 3. **Fill** — one script: `SET K <value> PX <ttl>` and `DEL L` only if `L` still
//!    holds our token. Tokens are random, so a slow holder whose lease expired and was
//!    given to someone else can never write (fencing).
//! 4. **Invalidate** — every delete removes `K` and `L` together. A fill that raced a
//!    write therefore finds its lease gone and stores nothing: after a write's delete
//!    returns, Redis never again holds a value read before it.
//!
//! A caller that finds the lease busy polls the acquire script with a short backoff
//! (it returns the value as soon as the holder fills it, or grants the lease if the
//! holder gave up), for at most the lease's remaining time plus one step; past that
//! it loads by itself and does not store. A holder that ends without storing (its
//! answer is not cacheable, or its future is dropped) releases its lease so that
//! waiters take over at once.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::backend::memory::LeaseReply;
use crate::backend::slot::hash_tag;
use crate::cache::Cache;
use crate::telemetry::Op;

/// The default time a lease holder has to load and fill: long enough for slow loaders
/// (a remote API, a model call), short enough that a crashed holder is replaced soon.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// What is appended to a value key to name its lease. Key templates cannot contain
/// whitespace, so no template's key ends with it.
const LEASE_SUFFIX: &str = " #lease";

/// The lease key of `key`, in the same cluster slot.
///
/// A key with a hash tag keeps it (`a:{t}:b` → `a:{t}:b #lease`); a key without one
/// becomes the lease key's hash tag (`a:b` → `{a:b} #lease`), which hashes exactly like
/// the key itself. (A key containing `}` but no valid hash tag has no same-slot lease
/// key; on a cluster its lease scripts are refused and it is loaded without storing.)
pub(crate) fn lease_key(key: &str) -> String {
    side_key(key, LEASE_SUFFIX)
}

/// The key of `key`'s stale copy (kept past its TTL for `stale_if_error`), in the
/// same slot; named like [`lease_key`].
pub(crate) fn stale_key(key: &str) -> String {
    side_key(key, STALE_SUFFIX)
}

/// What is appended to a value key to name its stale copy.
const STALE_SUFFIX: &str = " #stale";

fn side_key(key: &str, suffix: &str) -> String {
    let mut out = String::with_capacity(key.len() + suffix.len() + 2);
    let tagged = hash_tag(key.as_bytes()).len() != key.len();
    if tagged || key.contains('}') {
        out.push_str(key);
    } else {
        out.push('{');
        out.push_str(key);
        out.push('}');
    }
    out.push_str(suffix);
    out
}

/// A fresh random token, unique across processes.
pub(crate) fn new_token() -> [u8; 16] {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(d.as_nanos());
        }
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut mixed = std::collections::hash_map::RandomState::new().build_hasher();
    mixed.write_u64(seed ^ n.rotate_left(17));
    let mut out = [0u8; 16];
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let word = (mixed.finish() ^ seed).wrapping_add(n);
    for (i, b) in out.iter_mut().enumerate() {
        *b = HEX[((word >> (i * 4)) & 0xf) as usize];
    }
    out
}

/// The acquire script: `{1, value}`, `{0}` (granted) or `{2, pttl}` (busy). With a
/// positive ARGV[3] (a refresh ahead of expiry) the lease is taken even though the key
/// holds a value, but only while the key has at most ARGV[3] ms left (otherwise someone
/// refreshed it already: busy).
pub(crate) fn acquire_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            "local due = tonumber(ARGV[3])\n\
             if due > 0 then\n\
               local left = redis.call('PTTL', KEYS[1])\n\
               if left > due then return {2, 0} end\n\
             else\n\
               local v = redis.call('GET', KEYS[1])\n\
               if v then return {1, v} end\n\
             end\n\
             if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end\n\
             return {2, redis.call('PTTL', KEYS[2])}",
        )
    })
}

/// The fill script: stores the value (and its stale copy, KEYS[3], for ARGV[4] ms when
/// that is positive) and ends the lease, if the lease is still ours.
pub(crate) fn fill_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            "if redis.call('GET', KEYS[2]) == ARGV[1] then\n\
               redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n\
               if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4]) end\n\
               redis.call('DEL', KEYS[2])\n\
               return 1\n\
             end\n\
             return 0",
        )
    })
}

/// The release script: ends the lease if it is still ours.
pub(crate) fn release_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n\
             return 0",
        )
    })
}

/// Reads the acquire script's reply.
pub(crate) fn parse_acquire(reply: redis::Value) -> Option<LeaseReply> {
    use redis::Value as V;
    let V::Array(items) = reply else {
        return None;
    };
    match items.as_slice() {
        [V::Int(0)] => Some(LeaseReply::Granted),
        [V::Int(1), V::BulkString(v)] => Some(LeaseReply::Filled(v.clone())),
        [V::Int(2), V::Int(ms)] => Some(LeaseReply::Busy(Duration::from_millis(
            u64::try_from(*ms).unwrap_or(0),
        ))),
        _ => None,
    }
}

/// The waits between polls of a busy lease: 2, 4, 8, … up to 50 ms.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((2u64 << attempt.min(5)).min(50))
}

/// What a miss gets when it asks for the lease.
pub(crate) enum Acquired {
    /// Someone filled the key meanwhile: its encoded value.
    Value(Vec<u8>),
    /// The caller holds the lease: load, then [`LeaseGuard::fill`].
    Lease(LeaseGuard),
    /// No lease could be had (Redis failing, a waiter past its bound, a backend
    /// without leases): load, and do not store.
    NoLease,
}

/// A held lease. Filling or releasing it consumes it; dropping it unused (the loading
/// future was cancelled) releases it in the background so that waiters take over.
pub(crate) struct LeaseGuard {
    cache: Cache,
    key: String,
    lease_key: String,
    token: [u8; 16],
    label: &'static str,
    done: bool,
}

impl LeaseGuard {
    fn held(
        cache: &Cache,
        key: &str,
        lease_key: String,
        token: [u8; 16],
        label: &'static str,
    ) -> Self {
        LeaseGuard {
            cache: cache.clone(),
            key: key.to_owned(),
            lease_key,
            token,
            label,
            done: false,
        }
    }

    /// Stores `value` for `ttl` (and its stale copy for `ttl + stale`, when given) if
    /// the lease is still ours; counts a rejected fill otherwise.
    pub(crate) async fn fill(mut self, value: &[u8], ttl: Duration, stale: Option<Duration>) {
        self.done = true;
        let slot = self.cache.slot(self.label);
        self.cache.evict_near(&[&self.key]);
        let stale_key = if stale.is_some() {
            stale_key(&self.key)
        } else {
            String::new()
        };
        let fill = crate::backend::Fill {
            key: &self.key,
            lease_key: &self.lease_key,
            stale_key: if stale.is_some() {
                &stale_key
            } else {
                &self.lease_key
            },
            token: &self.token,
            value,
            ttl,
            stale,
        };
        match self.cache.inner.store.fill_leased(&fill).await {
            Ok(true) => slot.counters.sets(1),
            Ok(false) => {
                slot.counters.fill_rejected();
                tracing::debug!(
                    label = self.label,
                    "cacheward: lease lost during the load (the key was invalidated) - value not stored"
                );
            }
            Err(err) => self.cache.lease_failed(self.label, &err),
        }
    }

    /// Ends the lease without storing anything.
    pub(crate) async fn release(mut self) {
        self.done = true;
        if let Err(err) = self
            .cache
            .inner
            .store
            .release_lease(&self.lease_key, &self.token)
            .await
        {
            self.cache.lease_failed(self.label, &err);
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let cache = self.cache.clone();
            let lease_key = std::mem::take(&mut self.lease_key);
            let token = self.token;
            handle.spawn(async move {
                let _ = cache.inner.store.release_lease(&lease_key, &token).await;
            });
        }
    }
}

impl Cache {
    /// Asks for the lease on `key` after a miss, waiting (bounded) while another
    /// caller holds it. See the [module docs](self).
    pub(crate) async fn take_lease(&self, key: &str, label: &'static str) -> Acquired {
        let lease_key = lease_key(key);
        let token = new_token();
        let lease = self.inner.lease;
        let mut waited_until: Option<tokio::time::Instant> = None;
        let mut attempt = 0;
        loop {
            let reply = self
                .inner
                .store
                .acquire_lease(key, &lease_key, &token, lease, None)
                .await;
            match reply {
                Ok(LeaseReply::Granted) => {
                    return Acquired::Lease(LeaseGuard::held(self, key, lease_key, token, label));
                }
                Ok(LeaseReply::Filled(bytes)) => return Acquired::Value(bytes),
                Ok(LeaseReply::Busy(remaining)) => {
                    let now = tokio::time::Instant::now();
                    let until = *waited_until.get_or_insert_with(|| {
                        self.slot(label).counters.lease_wait();
                        now + remaining.min(lease) + backoff(u32::MAX)
                    });
                    if now >= until {
                        tracing::debug!(
                            label,
                            "cacheward: the key's lease holder did not fill it in time - loading without storing"
                        );
                        return Acquired::NoLease;
                    }
                    tokio::time::sleep(backoff(attempt).min(until - now)).await;
                    attempt += 1;
                }
                Err(crate::error::CacheError::Unsupported) => return Acquired::NoLease,
                Err(err) => {
                    self.lease_failed(label, &err);
                    return Acquired::NoLease;
                }
            }
        }
    }

    /// Takes the lease on `key` to refresh it ahead of its expiry, while the key has at
    /// most `due` left to live: `None` when another caller (on any instance) holds the
    /// lease or refreshed the key already, or Redis failed.
    pub(crate) async fn take_refresh_lease(
        &self,
        key: &str,
        label: &'static str,
        due: Duration,
    ) -> Option<LeaseGuard> {
        let lease_key = lease_key(key);
        let token = new_token();
        let reply = self
            .inner
            .store
            .acquire_lease(key, &lease_key, &token, self.inner.lease, Some(due))
            .await;
        match reply {
            Ok(LeaseReply::Granted) => Some(LeaseGuard::held(self, key, lease_key, token, label)),
            _ => None,
        }
    }

    #[cold]
    fn lease_failed(&self, label: &'static str, err: &crate::error::CacheError) {
        self.failed(
            self.slot(label),
            Op::Lease,
            err,
            crate::cache::Timer::start(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::slot::key_slot;

    #[test]
    fn lease_keys_share_the_slot_of_their_key() {
        for key in [
            "copilot:llm:policy:acme",
            "copilot:{acme}:policy",
            "a{b",
            "x:%7B:y",
            "copilot:conv:config:t1:~",
        ] {
            let l = lease_key(key);
            assert_ne!(l, key);
            assert!(l.ends_with(LEASE_SUFFIX), "{l}");
            assert_eq!(
                key_slot(l.as_bytes()),
                key_slot(key.as_bytes()),
                "{key} -> {l}"
            );
        }
        assert_eq!(lease_key("a:b"), "{a:b} #lease");
        assert_eq!(lease_key("a:{t}:b"), "a:{t}:b #lease");
    }

    #[test]
    fn tokens_are_distinct() {
        let tokens: std::collections::HashSet<[u8; 16]> =
            (0..10_000).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 10_000);
    }

    #[test]
    fn replies_are_read() {
        use redis::Value as V;
        assert_eq!(
            parse_acquire(V::Array(vec![V::Int(0)])),
            Some(LeaseReply::Granted)
        );
        assert_eq!(
            parse_acquire(V::Array(vec![V::Int(1), V::BulkString(b"x".to_vec())])),
            Some(LeaseReply::Filled(b"x".to_vec()))
        );
        assert_eq!(
            parse_acquire(V::Array(vec![V::Int(2), V::Int(40)])),
            Some(LeaseReply::Busy(Duration::from_millis(40)))
        );
        assert_eq!(parse_acquire(V::Nil), None);
        assert!(backoff(0) < backoff(3) && backoff(30) == Duration::from_millis(50));
    }
}
