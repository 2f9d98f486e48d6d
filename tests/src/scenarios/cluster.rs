//! A Redis Cluster changing under load: a primary killed (its replica promoted) and
//! a slot migrated (clients redirected with `ASK`, then `MOVED`), each while 32
//! concurrent callers run a cached read. No caller ever sees an error or a wrong
//! answer, and reads hit the cache again soon after the cluster has settled.
//!
//! Each of those scenarios starts its own cluster: they break it. Also here: the
//! cluster harness itself, the runtime's slot computation against `CLUSTER KEYSLOT`,
//! and a password-protected cluster (in the `logs` test binary: it captures logs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cacheward::Cache;
use tokio::sync::Mutex;

use crate::scenarios::reads_back;
use crate::{RedisCluster, exclusive};

const CALLERS: usize = 32;
const TTL: Duration = Duration::from_secs(300);
/// The breaker's cool-down in these tests (the default).
const COOL_DOWN: Duration = Duration::from_secs(1);
/// How long after the cluster has settled reads on the affected slots must hit again:
/// the breaker's cool-down (it opens during a failover), a second one in case the
/// first probe raced the client's slot-map refresh, and slack for a noisy 2-core
/// machine.
const RECOVERY: Duration = Duration::from_secs(2 * COOL_DOWN.as_secs() + 3);
/// How long a restarted cluster may take to elect and settle before reads hit.
const RESTART: Duration = Duration::from_secs(20);

/// A cache on `cluster` with the default deadline and the breaker above.
fn cache_on(cluster: &RedisCluster) -> Cache {
    Cache::builder()
        .cluster_nodes(cluster.seeds())
        .breaker(5, COOL_DOWN)
        .build()
        .expect("seeds")
}

/// The source of truth behind the cache.
fn truth(key: &str) -> String {
    format!("value-of-{key}")
}

#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    hits: AtomicU64,
    wrong: Mutex<Vec<String>>,
    /// When the last hit on a key of the watched slot happened.
    watched_hits: Mutex<Vec<Instant>>,
    /// The longest single cache operation, in microseconds.
    slowest_op_us: AtomicU64,
}

impl Tally {
    fn timed(&self, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.slowest_op_us.fetch_max(us, Ordering::Relaxed);
    }

    /// No wrong answer, no `op` slower than [`OP_BOUND`], and the load ran.
    async fn assert_sound(&self, op: &str) {
        let wrong = self.wrong.lock().await;
        assert!(
            wrong.is_empty(),
            "wrong answers: {:?}",
            &wrong[..wrong.len().min(5)]
        );
        let slowest = Duration::from_micros(self.slowest_op_us.load(Ordering::Relaxed));
        assert!(slowest <= OP_BOUND, "a {op} took {slowest:?}");
        let calls = self.calls.load(Ordering::Relaxed);
        assert!(calls > 500, "the load ran ({calls} calls)");
    }
}

/// The default per-operation deadline, plus slack for a noisy 2-core machine: no
/// cache operation may take longer, failover or not.
const OP_BOUND: Duration = Duration::from_millis(20 + 250);

/// The cached read under test: cache first, the source on a miss, then fill.
async fn cached_read(cache: &Cache, key: &str, tally: &Tally, watched: bool) {
    tally.calls.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let cached = cache.get::<String>(key).await;
    tally.timed(started);
    let answer = match cached {
        Some(v) => {
            tally.hits.fetch_add(1, Ordering::Relaxed);
            if watched {
                tally.watched_hits.lock().await.push(Instant::now());
            }
            v
        }
        None => {
            let v = truth(key);
            let started = Instant::now();
            cache.set(key, &v, TTL).await;
            tally.timed(started);
            v
        }
    };
    if answer != truth(key) {
        tally
            .wrong
            .lock()
            .await
            .push(format!("{key}: got {answer:?}"));
    }
}

/// A batched read of four keys through `get_many` (split by slot inside).
async fn cached_batch(cache: &Cache, keys: &[String], tally: &Tally) {
    tally.calls.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let got: Vec<Option<String>> = cache.get_many(keys).await;
    tally.timed(started);
    assert_eq!(got.len(), keys.len());
    let mut fill = Vec::new();
    for (k, v) in keys.iter().zip(got) {
        match v {
            Some(v) if v != truth(k) => tally.wrong.lock().await.push(format!("{k}: got {v:?}")),
            Some(_) => {}
            None => fill.push((k.clone(), truth(k))),
        }
    }
    if !fill.is_empty() {
        let started = Instant::now();
        cache.set_many(&fill, TTL).await;
        tally.timed(started);
    }
}

struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts 32 callers looping over `keys`; keys in `watched` count as watched hits.
fn start_load(cache: &Cache, keys: Arc<Vec<String>>, watched: Arc<Vec<String>>) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tasks = (0..CALLERS)
        .map(|caller| {
            let (cache, keys, watched, stop, tally) = (
                cache.clone(),
                keys.clone(),
                watched.clone(),
                stop.clone(),
                tally.clone(),
            );
            tokio::spawn(async move {
                let mut i = caller;
                while !stop.load(Ordering::Relaxed) {
                    if caller % 8 == 7 {
                        let batch: Vec<String> = (0..4)
                            .map(|j| keys[(i + j * 7) % keys.len()].clone())
                            .collect();
                        cached_batch(&cache, &batch, &tally).await;
                    } else {
                        let key = &keys[i % keys.len()];
                        cached_read(&cache, key, &tally, watched.contains(key)).await;
                    }
                    i += CALLERS;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    Load { stop, tally, tasks }
}

impl Load {
    async fn finish(self) -> Arc<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("a caller panicked");
        }
        self.tally
    }

    /// Waits until a watched key hits after the cluster `settled`, lets the load run
    /// half a second more and stops it: how long the hit took, and the tally.
    async fn finish_after_recovery(self, settled: Instant) -> (Duration, Arc<Tally>) {
        let recovered_after = self.wait_watched_hit_after(settled, RECOVERY).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        (recovered_after, self.finish().await)
    }

    /// Waits until a watched key hits after `since`; returns how long that took.
    async fn wait_watched_hit_after(&self, since: Instant, within: Duration) -> Duration {
        let deadline = since + within;
        loop {
            if self
                .tally
                .watched_hits
                .lock()
                .await
                .iter()
                .any(|&t| t > since)
            {
                return since.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "no hit on the affected slot within {within:?} after the cluster settled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn warm_up(cache: &Cache, keys: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for k in keys {
            cache.set(k, &truth(k), TTL).await;
        }
        let got: Vec<Option<String>> = cache.get_many(keys).await;
        if got
            .iter()
            .zip(keys)
            .all(|(v, k)| v.as_deref() == Some(&truth(k)))
        {
            return;
        }
        assert!(Instant::now() < deadline, "the cache never warmed up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A primary killed under 32 callers: its replica takes over, no caller sees an error
/// or a wrong answer, and the failed-over slots hit again soon after.
pub async fn killing_a_primary_under_load_surfaces_no_error() {
    let _heavy = exclusive().await;
    let cluster = RedisCluster::start();
    let cache = cache_on(&cluster);

    let keys: Vec<String> = (0..96).map(|i| format!("failover:k{i}")).collect();
    let victim_slot = cluster.keyslot(&keys[0]);
    let victim_port = cluster.primary_of_slot(victim_slot).port;
    let watched: Vec<String> = keys
        .iter()
        .filter(|k| cluster.primary_of_slot(cluster.keyslot(k)).port == victim_port)
        .cloned()
        .collect();
    assert!(watched.len() > 10, "enough keys live on the victim");
    warm_up(&cache, &keys).await;

    let load = start_load(&cache, Arc::new(keys), Arc::new(watched));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let failover = cluster.kill_primary_of_slot(victim_slot).await;
    let (recovered_after, tally) = load.finish_after_recovery(Instant::now()).await;
    tally.assert_sound("cache operation").await;
    let calls = tally.calls.load(Ordering::Relaxed);
    let hits = tally.hits.load(Ordering::Relaxed);
    assert!(hits > 0);
    eprintln!(
        "failover {failover:?}; hits on the failed-over slots again {recovered_after:?} after it settled; \
         {calls} calls, {hits} hits, stats {:?}",
        cache.stats()
    );
    assert!(cache.health().await.healthy, "healthy after the failover");
}

/// A slot migrated under 32 callers (`ASK`, then `MOVED`): no error, no wrong answer.
pub async fn migrating_a_slot_under_load_surfaces_no_error() {
    let _heavy = exclusive().await;
    let cluster = RedisCluster::start();
    let cache = cache_on(&cluster);

    // 48 keys in one slot (one hash tag), 48 spread everywhere.
    let moving: Vec<String> = (0..48).map(|i| format!("copilot:{{mig}}:k{i}")).collect();
    let slot = cluster.keyslot(&moving[0]);
    let mut keys = moving.clone();
    keys.extend((0..48).map(|i| format!("elsewhere:k{i}")));
    warm_up(&cache, &keys).await;
    let to = cluster.other_primary(slot);

    let load = start_load(&cache, Arc::new(keys), Arc::new(moving));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Open the migration and move the keys a few at a time: meanwhile the source
    // answers ASK for moved keys (and TRYAGAIN for batches split across the two).
    let c = cluster.clone();
    let migration = tokio::task::spawn_blocking(move || c.begin_slot_migration(slot, to))
        .await
        .unwrap();
    for _ in 0..6 {
        let moved = tokio::task::block_in_place(|| migration.move_keys(8));
        assert!(moved > 0 || migration.target() == to);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    tokio::task::spawn_blocking(move || migration.finish())
        .await
        .unwrap();
    assert_eq!(cluster.primary_of_slot(slot).port, to, "the slot moved");

    let (recovered_after, tally) = load.finish_after_recovery(Instant::now()).await;
    tally.assert_sound("cache operation").await;
    eprintln!(
        "slot {slot} moved to {to}; hits again {recovered_after:?} after; stats {:?}",
        cache.stats()
    );

    // The moved keys are served by the new owner.
    let mut node = cluster.node_connection(to).await;
    let n: u64 = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query_async(&mut node)
        .await
        .unwrap();
    assert!(n > 0, "the new owner holds the slot's keys");
}

/// A cluster down when the cache is built: misses, then hits once it comes up.
pub async fn a_cluster_down_at_start_up_is_used_once_it_comes_up() {
    let _heavy = exclusive().await;
    let cluster = RedisCluster::start();
    cluster.kill_all();

    let cache = cache_on(&cluster);
    for i in 0..5 {
        let key = format!("down:k{i}");
        cache.set(&key, &truth(&key), TTL).await;
        assert_eq!(
            cache.get::<String>(&key).await,
            None,
            "a miss, not an error"
        );
    }
    assert!(!cache.health().await.healthy);

    cluster.restart_all().await;
    let pause = Duration::from_millis(100);
    assert!(
        reads_back(&cache, "down:k0", &truth("down:k0"), RESTART, pause).await,
        "the cache never used the cluster after it came up: {:?}",
        cache.health().await
    );
    assert!(cache.health().await.healthy);
}

/// A store whose reads the decorator caches, with keys hash-tagged by tenant.
#[cacheward::cached_store(key = "copilot:{<tenant_id>}:policy", ttl = 300)]
#[async_trait::async_trait]
trait PolicyStore: Send + Sync {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<String>, String>;
}

/// The source of truth: always answers `truth(tenant)`.
struct Truth;

#[async_trait::async_trait]
impl PolicyStore for Truth {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<String>, String> {
        Ok(Some(truth(tenant_id)))
    }
}

const POLICY_TEMPLATE: &str = "copilot:{<tenant_id>}:policy";

/// The decorator under 32 callers while a primary is killed: no error, no wrong
/// answer, and it hits again soon after.
pub async fn killing_a_primary_under_decorator_load_surfaces_no_error() {
    let _heavy = exclusive().await;
    let cluster = RedisCluster::start();
    let store = Arc::new(CachingPolicyStore::new(Truth, cache_on(&cluster)));
    let hits = {
        let store = store.clone();
        move || store.cache().label_stats(POLICY_TEMPLATE).hits
    };

    // Tenants whose keys live on the primary that will be killed.
    let victim_slot = cluster.keyslot("copilot:{t0}:policy");
    let victim = cluster.primary_of_slot(victim_slot).port;
    let tenants: Vec<String> = (0..300)
        .map(|i| format!("t{i}"))
        .filter(|t| {
            let slot = cluster.keyslot(&format!("copilot:{{{t}}}:policy"));
            cluster.primary_of_slot(slot).port == victim
        })
        .take(24)
        .collect();
    assert!(tenants.len() >= 20, "enough tenants on the victim");
    let warm_until = Instant::now() + Duration::from_secs(30);
    while hits() < tenants.len() as u64 {
        for t in &tenants {
            assert_eq!(store.get_policy(t).await, Ok(Some(truth(t))));
        }
        assert!(Instant::now() < warm_until, "the decorator never hit");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let tenants = Arc::new(tenants);
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let (store, stop, tally, tenants) =
                (store.clone(), stop.clone(), tally.clone(), tenants.clone());
            tokio::spawn(async move {
                let mut i = caller;
                while !stop.load(Ordering::Relaxed) {
                    let t = &tenants[i % tenants.len()];
                    let started = Instant::now();
                    let got = store.get_policy(t).await;
                    tally.timed(started);
                    tally.calls.fetch_add(1, Ordering::Relaxed);
                    if got != Ok(Some(truth(t))) {
                        tally.wrong.lock().await.push(format!("{t}: got {got:?}"));
                    }
                    i += CALLERS;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let failover = cluster.kill_primary_of_slot(victim_slot).await;
    let settled = Instant::now();
    let before = hits();
    while hits() <= before {
        assert!(
            settled.elapsed() < RECOVERY,
            "the decorator did not hit again within {RECOVERY:?} after the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered_after = settled.elapsed();
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.expect("a caller panicked");
    }

    tally.assert_sound("decorated call").await;
    eprintln!(
        "decorator: failover {failover:?}; hits again {recovered_after:?} after; stats {:?}",
        store.cache().label_stats(POLICY_TEMPLATE)
    );
}

/// The rate limiter stays exact while its identifier's slot migrates: its script
/// follows `ASK` to the importing node (one `ASKING` + `EVALSHA` pipeline) and then
/// `MOVED`, and every check is counted exactly once.
pub async fn the_limiter_stays_exact_while_its_slot_migrates() {
    let _heavy = exclusive().await;
    use cacheward::{Algorithm, RateLimiter};

    const CAPACITY: u64 = 100;
    const CHECKS_PER_CALLER: usize = 20;

    let cluster = RedisCluster::start();
    // A generous deadline, as in the limiter's own suites: this checks counting, and
    // a check that timed out would fail open.
    let cache = Cache::builder()
        .cluster_nodes(cluster.seeds())
        .deadline(Duration::from_secs(2))
        .build()
        .expect("seeds");
    // CAPACITY tokens and (practically) no refill during the test.
    let limiter = RateLimiter::new(
        &cache,
        "migrating",
        Algorithm::token_bucket(CAPACITY, (1, Duration::from_secs(3600))),
    );
    let id = "tenant-7";
    let slot = cluster.keyslot(&limiter.key(id));
    let to = cluster.other_primary(slot);

    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..CHECKS_PER_CALLER {
                    out.push(limiter.check_detailed(id).await);
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                out
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(40)).await;
    let c = cluster.clone();
    let migration = tokio::task::spawn_blocking(move || c.begin_slot_migration(slot, to))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let moved = tokio::task::block_in_place(|| migration.move_keys(10));
    assert_eq!(moved, 1, "the limiter's key moved to the importing node");
    tokio::time::sleep(Duration::from_millis(60)).await;
    tokio::task::spawn_blocking(move || migration.finish())
        .await
        .unwrap();

    let mut decisions = Vec::new();
    for c in callers {
        decisions.extend(c.await.expect("a caller panicked"));
    }
    let degraded = decisions.iter().filter(|d| d.degraded).count();
    let allowed = decisions
        .iter()
        .filter(|d| d.allowed && !d.degraded)
        .count();
    assert_eq!(degraded, 0, "no check failed open during the migration");
    assert_eq!(
        allowed as u64, CAPACITY,
        "exactly the capacity was allowed across the migration"
    );
    assert_eq!(decisions.len(), CALLERS * CHECKS_PER_CALLER);
    assert_eq!(cluster.primary_of_slot(slot).port, to);
}

/// How long a fresh cluster may take to be reachable through a new cache.
const REACHABLE: Duration = Duration::from_secs(20);

/// A password-protected cluster: `REDIS_PASSWORD` fills in for seeds without one; a
/// missing or wrong password is a miss and an unhealthy report naming the
/// authentication failure, and no password ever appears in a log line, a health
/// report or `Debug` output.
pub async fn a_password_protected_cluster_takes_redis_password_and_never_shows_it() {
    const PASSWORD: &str = "clu5ter-s3cret";
    const WRONG: &str = "not-the-pa55word";
    let (logs, _guard) = crate::LogCapture::install();
    let cluster = RedisCluster::start_with_password(PASSWORD);

    let vars = [
        ("REDIS_CLUSTER_NODES", cluster.nodes_env()),
        ("REDIS_PASSWORD", PASSWORD.to_owned()),
    ];
    let cache = Cache::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    });
    assert_eq!(cache.backend(), cacheward::Backend::RedisCluster);
    let pause = Duration::from_millis(100);
    assert!(
        reads_back(&cache, "auth:k0", &truth("auth:k0"), REACHABLE, pause).await,
        "never reached the cluster: {:?}",
        cache.health().await
    );
    let keys: Vec<String> = (0..30).map(|i| format!("auth:k{i}")).collect();
    let entries: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), truth(k))).collect();
    cache.set_many(&entries, TTL).await;
    let got: Vec<Option<String>> = cache.get_many(&keys).await;
    assert!(
        got.iter()
            .zip(&keys)
            .all(|(v, k)| v.as_deref() == Some(&truth(k)))
    );
    assert!(cache.health().await.healthy);

    // No password, or a wrong one: misses and an unhealthy report.
    let without = Cache::redis_cluster(cluster.seeds()).expect("seeds");
    let wrong = Cache::redis_cluster(
        cluster
            .ports()
            .iter()
            .map(|p| format!("redis://:{WRONG}@127.0.0.1:{p}")),
    )
    .expect("seeds");
    for bad in [&without, &wrong] {
        for _ in 0..3 {
            assert_eq!(bad.get::<String>("auth:k0").await, None);
            bad.set("auth:bad", &1u8, TTL).await;
        }
        let health = bad.health().await;
        assert!(!health.healthy, "{health:?}");
        let error = health.error.clone().unwrap_or_default();
        assert!(
            error.to_lowercase().contains("auth"),
            "the report names the authentication failure: {error}"
        );
        let shown = format!("{health:?} {bad:?}");
        assert!(
            !shown.contains(WRONG) && !shown.contains(PASSWORD),
            "{shown}"
        );
    }
    let shown = format!("{cache:?} {:?}", cache.health().await);
    assert!(!shown.contains(PASSWORD), "{shown}");

    let lines = logs.lines();
    assert!(!lines.is_empty(), "the failures were logged");
    for line in &lines {
        assert!(
            !line.contains(PASSWORD) && !line.contains(WRONG),
            "a log line shows a password: {line}"
        );
    }
}

// The runtime's `backend/slot.rs` is self-contained; it is compiled in here as is, so
// what the keyslot scenario checks is exactly the code the cluster backend runs.
#[allow(dead_code, reason = "the scenario uses two of the module's functions")]
#[path = "../../../runtime/src/backend/slot.rs"]
mod slot;

/// A small deterministic generator (xorshift64*), so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Keys rich in the characters that matter for hash tags: `{`, `}`, empty tags,
/// nested and unbalanced braces, template-like keys, unicode and arbitrary bytes.
fn generate_keys(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alphabet: &[&[u8]] = &[
        b"{",
        b"}",
        b"{",
        b"}",
        b":",
        b"a",
        b"b",
        b"z",
        b"0",
        b"7",
        b"-",
        b"*",
        b" ",
        b"copilot",
        b"tenant",
        b"policy",
        b"\\",
        "é".as_bytes(),
        "日本".as_bytes(),
        b"\x00",
        b"\xff",
    ];
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let key = match i % 4 {
            // Template-shaped: copilot:{<tenant>}:policy with varied tenants.
            0 => format!("copilot:{{t{}}}:policy", rng.next() % 1000).into_bytes(),
            // Arbitrary bytes.
            1 => (0..rng.below(24)).map(|_| rng.next() as u8).collect(),
            // Brace-heavy strings from the alphabet.
            _ => {
                let mut k = Vec::new();
                for _ in 0..rng.below(12) {
                    k.extend_from_slice(alphabet[rng.below(alphabet.len())]);
                }
                k
            }
        };
        keys.push(key);
    }
    keys
}

/// The runtime's slot computation agrees with the server's `CLUSTER KEYSLOT` on
/// 10,000 keys rich in hash-tag syntax.
pub async fn slots_agree_with_cluster_keyslot_on_10000_keys() {
    let cluster = RedisCluster::shared();
    let mut conn = cluster.node_connection(cluster.ports()[0]).await;
    let keys = generate_keys(10_000);

    let mut mismatches = Vec::new();
    for chunk in keys.chunks(1_000) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("CLUSTER").arg("KEYSLOT").arg(k);
        }
        let server: Vec<u16> = pipe.query_async(&mut conn).await.expect("CLUSTER KEYSLOT");
        assert_eq!(server.len(), chunk.len());
        for (k, s) in chunk.iter().zip(server) {
            let ours = slot::key_slot(k);
            if ours != s {
                mismatches.push((String::from_utf8_lossy(k).into_owned(), ours, s));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} keys disagree (key, ours, server): {:?}",
        mismatches.len(),
        keys.len(),
        &mismatches[..mismatches.len().min(10)]
    );

    // The generator exercised the interesting cases.
    let tagged = keys
        .iter()
        .filter(|k| slot::hash_tag(k).len() != k.len())
        .count();
    let empty_tag = keys
        .iter()
        .filter(|k| k.windows(2).any(|w| w == b"{}"))
        .count();
    assert!(tagged > 2_600, "only {tagged} keys had a hash tag");
    assert!(empty_tag > 50, "only {empty_tag} keys had an empty tag");
}
