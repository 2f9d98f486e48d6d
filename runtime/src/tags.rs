//! Tags: invalidate every entry of a group (a tenant, an organisation) at once, in O(1).
//!
//! Each tag has a counter key, `cacheward:tag:<tag>`. A tagged entry is stored in an
//! envelope that carries, for each of its tags, the counter's value as it was read
//! **before** the entry was loaded:
//!
//! ```json
//! {"cacheward_tags":{"tenant:acme":"5921104732"},"value":{"default_model":"gpt-4o"}}
//! ```
//!
//! A read fetches the entry and its tags' counters concurrently (one round trip of wall
//! time; with a near cache the counters usually come from memory) and treats the entry as
//! a miss unless every stamp equals the current counter. Invalidating a tag changes its
//! counter: one command on one key, whatever the number of entries. A load that raced
//! the invalidation stamped the old value, so what it stores is never served.
//!
//! Counters never go back. They have no expiry; a counter that is missing (never used,
//! or evicted by an `allkeys-*` policy) is created with a random value, never 0, and an
//! invalidation of a missing counter also creates a random one instead of counting from
//! zero — so an entry stamped before a counter was lost can never match again.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backend::ScriptArg;
use crate::cache::{Cache, DIRECT_LABEL, ReadFailed};
use crate::error::CacheError;

/// The label tag counter reads are counted under (apart from the entries' templates).
pub(crate) const TAG_LABEL: &str = "(tag counters)";

/// The prefix of every tag counter key.
pub(crate) const TAG_KEY_PREFIX: &str = "cacheward:tag:";

/// The counter key of `tag`.
pub(crate) fn tag_key(tag: &str) -> String {
    let mut key = String::with_capacity(TAG_KEY_PREFIX.len() + tag.len());
    key.push_str(TAG_KEY_PREFIX);
    key.push_str(tag);
    key
}

/// A random counter value: what a missing counter starts from.
fn random_counter() -> String {
    let token = crate::lease::new_token();
    let hex = std::str::from_utf8(&token).unwrap_or("1");
    u64::from_str_radix(&hex[..15], 16)
        .unwrap_or(1)
        .max(1)
        .to_string()
}

/// `GET` the counter, creating it with ARGV[1] when missing.
fn stamp_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            "local v = redis.call('GET', KEYS[1])\n\
             if v then return v end\n\
             redis.call('SET', KEYS[1], ARGV[1])\n\
             return ARGV[1]",
        )
    })
}

/// Changes the counter: `INCR` when it exists, else a fresh random value.
fn bump_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            "if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end\n\
             redis.call('SET', KEYS[1], ARGV[1])\n\
             return ARGV[1]",
        )
    })
}

/// Deletes KEYS[1] if it holds exactly ARGV[1].
pub(crate) fn del_if_equal_script() -> &'static redis::Script {
    static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n\
             return 0",
        )
    })
}

/// The stored form of a tagged entry.
#[derive(Serialize)]
pub(crate) struct EnvelopeOut<'a, T: ?Sized> {
    pub(crate) cacheward_tags: BTreeMap<&'a str, &'a str>,
    pub(crate) value: &'a T,
}

#[derive(Deserialize)]
pub(crate) struct EnvelopeIn<T> {
    pub(crate) cacheward_tags: BTreeMap<String, String>,
    pub(crate) value: T,
}

/// The tags of one read and their counters, read before the load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamps {
    pub(crate) tags: Vec<(String, String)>,
}

impl Stamps {
    /// Whether an envelope's stamps are exactly these.
    pub(crate) fn matches(&self, stamped: &BTreeMap<String, String>) -> bool {
        stamped.len() == self.tags.len()
            && self
                .tags
                .iter()
                .all(|(tag, counter)| stamped.get(tag) == Some(counter))
    }

    /// Encodes `value` in an envelope carrying these stamps.
    pub(crate) fn encode<T: Serialize + ?Sized>(
        &self,
        cache: &Cache,
        value: &T,
        label: &'static str,
    ) -> Option<Vec<u8>> {
        let envelope = EnvelopeOut {
            cacheward_tags: self
                .tags
                .iter()
                .map(|(t, c)| (t.as_str(), c.as_str()))
                .collect(),
            value,
        };
        cache.encode(&envelope, label)
    }

    /// Decodes an envelope; `None` when it is undecodable (deleted, counted) or its
    /// stamps are not these (a tag was invalidated since it was stored).
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        cache: &Cache,
        key: &str,
        bytes: &[u8],
        label: &'static str,
    ) -> Option<T> {
        let envelope: EnvelopeIn<T> = cache.decode_or_evict(key, bytes, label)?;
        self.matches(&envelope.cacheward_tags)
            .then_some(envelope.value)
    }
}

impl Cache {
    /// Invalidates every entry tagged `tag`, on every instance, in one Redis command
    /// whatever the number of entries (no `KEYS`, no `SCAN`).
    ///
    /// Like every invalidation, a failure is logged and counted, never returned; one
    /// that could not reach Redis is kept and retried, and this instance serves no
    /// entry with the tag meanwhile.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cacheward::Cache::memory();
    /// cache.invalidate_tag("tenant:acme").await;
    /// # }
    /// ```
    pub async fn invalidate_tag(&self, tag: &str) {
        self.invalidate_tag_labeled(tag, DIRECT_LABEL).await;
    }

    pub(crate) async fn invalidate_tag_labeled(&self, tag: &str, label: &'static str) {
        let key = tag_key(tag);
        match self.bump_tag(&key).await {
            Ok(()) => self.slot(label).counters.deletes(1),
            Err(err) if err.is_outage() || matches!(err, CacheError::CircuitOpen) => {
                self.slot(label).counters.failure(&err);
                self.keep_for_replay(&[&key], label);
            }
            Err(err) => {
                self.failed(
                    self.slot(label),
                    crate::telemetry::Op::Del,
                    &err,
                    crate::cache::Timer::start(),
                );
            }
        }
    }

    /// Removes an entry found stale (stamped with a counter that changed since), so
    /// that the next miss refills it, unless it was refilled meanwhile.
    pub(crate) async fn drop_stale(&self, key: &str, bytes: &[u8]) {
        self.evict_near(&[key]);
        let _ = self.inner.store.del_if_equal(key, bytes).await;
    }

    /// Changes a tag counter (`key` is a [`tag_key`]).
    pub(crate) async fn bump_tag(&self, key: &str) -> Result<(), CacheError> {
        self.evict_near(&[key]);
        let fresh = random_counter();
        self.inner
            .store
            .script_or_local(bump_script(), key, &fresh, LocalOp::Bump)
            .await
            .map(drop)
    }

    /// The current counters of `tags`, creating missing ones. `Err` when Redis failed
    /// (the read is then a miss and stores nothing) or an invalidation of one of the
    /// tags is still pending on this instance.
    pub(crate) async fn tag_stamps(&self, tags: &[String]) -> Result<Stamps, ReadFailed> {
        let reads = tags.iter().map(|tag| async move {
            let key = tag_key(tag);
            let counter = match self.try_get_raw(&key, TAG_LABEL, None, false).await? {
                Some((found, _)) => std::str::from_utf8(found.bytes())
                    .map_err(|_| ReadFailed)?
                    .to_owned(),
                None => self
                    .inner
                    .store
                    .script_or_local(stamp_script(), &key, &random_counter(), LocalOp::Stamp)
                    .await
                    .map_err(|_| ReadFailed)?,
            };
            Ok::<_, ReadFailed>((tag.clone(), counter))
        });
        let out = crate::util::join_all(reads.collect())
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Stamps { tags: out })
    }
}

/// What a counter script does, for backends that run it in process.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LocalOp {
    Stamp,
    Bump,
}

impl crate::backend::Store {
    /// Runs a counter script on Redis, or its equivalent on the memory backend.
    pub(crate) async fn script_or_local(
        &self,
        script: &redis::Script,
        key: &str,
        fresh: &str,
        op: LocalOp,
    ) -> Result<String, CacheError> {
        use crate::backend::Store;
        match self {
            Store::Memory(m) => Ok(m.counter(key, fresh, matches!(op, LocalOp::Bump))),
            _ => {
                let reply = self
                    .eval(script, &[key], &[ScriptArg::Bytes(fresh.as_bytes())])
                    .await?;
                match reply {
                    redis::Value::Int(n) => Ok(n.to_string()),
                    redis::Value::BulkString(b) => String::from_utf8(b)
                        .map_err(|_| CacheError::Redis("a tag counter is not text".into())),
                    redis::Value::SimpleString(s) => Ok(s),
                    other => Err(CacheError::Redis(format!(
                        "unexpected reply to a tag script: {other:?}"
                    ))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_start_random_and_never_at_zero() {
        let a = random_counter();
        let b = random_counter();
        assert_ne!(a, b);
        assert_ne!(a, "0");
        assert!(a.parse::<u64>().is_ok());
    }

    #[test]
    fn envelopes_are_readable_json() {
        let stamps = Stamps {
            tags: vec![("tenant:acme".into(), "7".into())],
        };
        let cache = Cache::memory();
        let bytes = stamps.encode(&cache, &vec![1, 2], "t").unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"cacheward_tags":{"tenant:acme":"7"},"value":[1,2]}"#
        );
        assert_eq!(
            stamps.decode::<Vec<u8>>(&cache, "k", &bytes, "t"),
            Some(vec![1, 2])
        );
        let later = Stamps {
            tags: vec![("tenant:acme".into(), "8".into())],
        };
        assert_eq!(later.decode::<Vec<u8>>(&cache, "k", &bytes, "t"), None);
    }
}
