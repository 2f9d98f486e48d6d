//! A single Redis failing for real: killed, frozen, never there, refusing the
//! password, or configured with a broken URL. The cache must never fail, never panic,
//! never wait past its deadline, and never write a password anywhere.
//!
//! Each scenario starts its own server (it breaks it). Those that capture logs run in
//! the `logs` test binary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::scenarios::reads_back;
use crate::{LogCapture, RedisServer, builder_for, exclusive, free_port};
use cacheward::{Backend, Cache, CircuitState};

/// How much longer than its deadline a call may take on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(250);

fn assert_no_secret(capture: &LogCapture, secrets: &[&str]) {
    let lines = capture.lines();
    assert!(!lines.is_empty(), "expected some log output");
    for line in &lines {
        for s in secrets {
            assert!(!line.contains(s), "password in a log line: {line}");
        }
    }
}

/// A cache on a server the scenario will break, with its own deadline and breaker
/// (failure threshold, cool-down).
pub(crate) fn breaking_cache(
    server: &RedisServer,
    deadline: Duration,
    threshold: u32,
    cool_down: Duration,
) -> Cache {
    server
        .builder()
        .deadline(deadline)
        .breaker(threshold, cool_down)
        .build()
        .expect("the test server's URL is valid")
}

/// `calls` of `GET` and `SET` the server has executed.
async fn get_set_calls(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_get:") || l.starts_with("cmdstat_set:"))
        .filter_map(|l| {
            l.split([':', ','])
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

struct Load {
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    hits: Arc<AtomicU64>,
    max_call_micros: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// 64 tasks doing get/set on 16 keys; every value read must be the one written.
/// Returns once they have had 100 hits (within 10 s), before `what`.
async fn start_load(cache: &Cache, what: &str) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let pause = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU64::new(0));
    let max_call_micros = Arc::new(AtomicU64::new(0));
    let tasks = (0..64_u64)
        .map(|t| {
            let (cache, stop, pause, hits, max) = (
                cache.clone(),
                stop.clone(),
                pause.clone(),
                hits.clone(),
                max_call_micros.clone(),
            );
            tokio::spawn(async move {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    if pause.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    let n = (i / 2) % 16;
                    let key = format!("load:{n}");
                    let started = Instant::now();
                    if i % 2 == 0 {
                        cache.set(&key, &n, Duration::from_secs(60)).await;
                    } else if let Some(v) = cache.get::<u64>(&key).await {
                        assert_eq!(v, n, "a get returned another key's value");
                        hits.fetch_add(1, Ordering::Relaxed);
                    }
                    let took = u64::try_from(started.elapsed().as_micros()).unwrap();
                    max.fetch_max(took, Ordering::Relaxed);
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    let load = Load {
        stop,
        pause,
        hits,
        max_call_micros,
        tasks,
    };
    assert!(
        load.wait_for_hits(100, Duration::from_secs(10)).await,
        "no hits before the {what}"
    );
    load
}

impl Load {
    async fn finish(self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("a task panicked");
        }
        Duration::from_micros(self.max_call_micros.load(Ordering::Relaxed))
    }

    async fn wait_for_hits(&self, more_than: u64, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.hits.load(Ordering::Relaxed) > more_than {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

/// Redis killed and restarted under 64 tasks: errors, the breaker opens, and the same
/// `Cache` serves hits again after the restart; no call waits past its deadline.
pub async fn redis_killed_mid_run_under_64_tasks() {
    let _heavy = exclusive().await;
    let mut server = RedisServer::start();
    let deadline = Duration::from_millis(200);
    let cache = breaking_cache(&server, deadline, 5, Duration::from_millis(200));
    let load = start_load(&cache, "kill").await;

    server.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = cache.stats();
    assert!(stats.errors > 0, "{stats:?}");
    assert!(stats.breaker_openings >= 1, "{stats:?}");
    // Open, or half-open while a probe is in flight.
    assert_ne!(cache.health().await.circuit, Some(CircuitState::Closed));
    assert!(!cache.health().await.healthy);

    server.restart();
    let hits_before = load.hits.load(Ordering::Relaxed);
    assert!(
        load.wait_for_hits(hits_before + 100, Duration::from_secs(10))
            .await,
        "the same Cache did not serve hits again after the restart: {:?}",
        cache.stats()
    );
    let max = load.finish().await;
    assert!(max <= deadline + SLACK, "a call took {max:?}");
    assert!(cache.health().await.healthy);
}

/// Redis frozen under 64 tasks: the breaker opens and keeps almost every operation
/// away from the frozen server; it recovers after the thaw.
pub async fn frozen_redis_under_64_tasks() {
    let _heavy = exclusive().await;
    let mut server = RedisServer::start();
    let mut observer = server.connection().await;
    let deadline = Duration::from_millis(100);
    let cool_down = Duration::from_millis(300);
    let cache = breaking_cache(&server, deadline, 5, cool_down);
    let load = start_load(&cache, "freeze").await;

    // Quiesce, so that every GET/SET counted below was issued while Redis was frozen.
    load.pause.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let calls_before = get_set_calls(&mut observer).await;
    let stats_before = cache.stats();
    server.freeze();
    load.pause.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Stop issuing operations, let the in-flight ones time out, then thaw and count
    // what reached the server while it was frozen.
    load.pause.store(true, Ordering::Relaxed);
    tokio::time::sleep(deadline + SLACK).await;
    let stats_frozen = cache.stats();
    assert_eq!(cache.health().await.circuit, Some(CircuitState::Open));
    server.thaw();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reached = get_set_calls(&mut observer).await - calls_before;
    let skipped = stats_frozen.short_circuited - stats_before.short_circuited;
    eprintln!("while frozen: {reached} GET/SET reached Redis, {skipped} skipped it");
    // Two per task (the generation in flight when Redis froze, and the one admitted
    // after the first timeout: one stall alone never opens the breaker), then one
    // probe per cool-down.
    assert!(
        reached <= 2 * 64 + 30,
        "{reached} commands reached a frozen Redis"
    );
    assert!(
        skipped >= 1000,
        "only {skipped} operations skipped Redis: {stats_frozen:?}"
    );
    assert!(stats_frozen.timeouts >= 5, "{stats_frozen:?}");
    assert_eq!(stats_frozen.breaker_openings, 1, "{stats_frozen:?}");

    // It recovers after SIGCONT.
    load.pause.store(false, Ordering::Relaxed);
    let hits = load.hits.load(Ordering::Relaxed);
    assert!(
        load.wait_for_hits(hits + 100, Duration::from_secs(10))
            .await,
        "no hits after the thaw: {:?}",
        cache.stats()
    );
    let max = load.finish().await;
    assert!(
        max <= deadline + SLACK,
        "a call took {max:?} (deadline {deadline:?})"
    );
    assert_eq!(cache.health().await.circuit, Some(CircuitState::Closed));
}

/// A Redis that is down when the cache is built: misses, no waiting at construction,
/// and the cache connects once Redis comes up; the breaker's transitions are logged.
pub async fn redis_down_at_start_then_up() {
    let (capture, _guard) = LogCapture::install();
    let mut server = RedisServer::start();
    server.kill();
    let started = Instant::now();
    let cache = breaking_cache(
        &server,
        Duration::from_millis(200),
        3,
        Duration::from_millis(100),
    );
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "construction waited"
    );
    for _ in 0..10 {
        cache.set("k", &1_u8, Duration::from_secs(60)).await;
        assert_eq!(cache.get::<u8>("k").await, None);
    }
    assert!(!cache.health().await.healthy);

    server.restart();
    let hit = reads_back(
        &cache,
        "k",
        "1",
        Duration::from_secs(10),
        Duration::from_millis(20),
    );
    assert!(
        hit.await,
        "never connected after Redis came up: {:?}",
        cache.stats()
    );
    assert!(cache.health().await.healthy);
    // The breaker's transitions are in the log.
    let opened = capture.matching("circuit breaker opened");
    let closed = capture.matching("circuit breaker closed");
    assert_eq!(
        (opened.len(), closed.len()),
        (1, 1),
        "{:?}",
        capture.lines()
    );
}

/// A closed port: misses, health names the refusal, the password shows nowhere, and
/// the outage is logged once per operation kind, not per call.
pub async fn closed_port_is_a_miss_and_health_names_it() {
    let (capture, _guard) = LogCapture::install();
    let url = format!("redis://:pw-closed-123@127.0.0.1:{}", free_port());
    let cache = builder_for(&url).build().unwrap();
    assert_eq!(cache.get::<u32>("k").await, None);
    cache.set("k", &1_u32, Duration::from_secs(5)).await;
    cache.del("k").await;
    let health = cache.health().await;
    assert!(!health.healthy);
    let err = health.error.unwrap();
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("pw-closed-123"), "{err}");
    assert!(!format!("{cache:?}").contains("pw-closed-123"));
    assert_no_secret(&capture, &["pw-closed-123"]);
    assert_eq!(cache.stats().errors, 3);

    // An outage does not flood the log: one warning per operation kind per interval.
    for _ in 0..100 {
        assert_eq!(cache.get::<u32>("k").await, None);
    }
    let gets = capture.matching("cache get failed");
    let sets = capture.matching("cache set failed");
    let opened = capture.matching("circuit breaker opened");
    assert_eq!(
        (gets.len(), sets.len(), opened.len()),
        (1, 1, 1),
        "{:?}",
        capture.lines()
    );
    assert!(cache.stats().short_circuited > 0, "{:?}", cache.stats());
}

/// A malformed `REDIS_URL` gives a pass-through cache, one error line, no password.
pub async fn malformed_url_is_pass_through_with_one_error_and_no_password() {
    let (capture, _guard) = LogCapture::install();
    let bad = "redis://:pw-bad-456@127.0.0.1:notaport";
    let cache = Cache::from_vars(|name| (name == "REDIS_URL").then(|| bad.to_owned()));
    assert_eq!(cache.backend(), Backend::PassThrough);
    assert_eq!(cache.get::<u32>("k").await, None);
    cache.set("k", &1_u32, Duration::from_secs(5)).await;
    let health = cache.health().await;
    assert!(!health.healthy);
    let err = health.error.unwrap();
    assert!(
        err.contains("REDIS_URL is malformed") && err.contains("invalid port"),
        "{err}"
    );
    assert!(!err.contains("pw-bad-456"), "{err}");
    assert_eq!(capture.matching("ERROR").len(), 1, "{:?}", capture.lines());
    assert_no_secret(&capture, &["pw-bad-456"]);

    let direct = Cache::redis(bad).unwrap_err().to_string();
    assert!(
        direct.contains("invalid port") && !direct.contains("pw-bad-456"),
        "{direct}"
    );
}

/// A wrong or missing password is a miss and an unhealthy report; `REDIS_PASSWORD`
/// fills in the password the URL lacks.
pub async fn wrong_password_is_a_miss_and_health_names_it() {
    let server = RedisServer::start_with_args(&["--requirepass", "right-pw-789"]);
    let (capture, _guard) = LogCapture::install();
    let port = server.port();

    let wrong = builder_for(format!("redis://:wrong-pw-000@127.0.0.1:{port}"))
        .build()
        .unwrap();
    assert_eq!(wrong.get::<u32>("k").await, None);
    wrong.set("k", &1_u32, Duration::from_secs(5)).await;
    let health = wrong.health().await;
    assert!(!health.healthy);
    let err = health.error.unwrap();
    assert!(
        err.contains("WRONGPASS") || err.contains("authentication"),
        "{err}"
    );
    assert!(!format!("{wrong:?}").contains("wrong-pw-000"));

    // No password at all: the server says NOAUTH.
    let none = server.cache();
    assert_eq!(none.get::<u32>("k").await, None);
    let err = none.health().await.error.unwrap();
    assert!(
        err.contains("NOAUTH") || err.contains("authentication"),
        "{err}"
    );

    // REDIS_PASSWORD fills in the password the URL lacks.
    let url = server.url();
    let right = Cache::from_vars(|name| match name {
        "REDIS_URL" => Some(url.clone()),
        "REDIS_PASSWORD" => Some("right-pw-789".to_owned()),
        "CACHE_DEADLINE_MS" => Some("1000".to_owned()),
        _ => None,
    });
    right.set("k", &7_u32, Duration::from_secs(5)).await;
    assert_eq!(right.get::<u32>("k").await, Some(7));
    assert!(right.health().await.healthy);
    assert!(!format!("{right:?}").contains("right-pw-789"));

    assert_no_secret(&capture, &["wrong-pw-000", "right-pw-789"]);
}

/// The ACL user of the URL is the one that connects; a wrong password for it is a miss.
pub async fn acl_user_from_the_url() {
    let server = RedisServer::start();
    let mut raw = server.connection().await;
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">app-pw-321", "~*", "+@all"])
        .query_async(&mut raw)
        .await
        .unwrap();
    let port = server.port();
    let cache = builder_for(format!("redis://app:app-pw-321@127.0.0.1:{port}"))
        .build()
        .unwrap();
    cache.set("k", &"v", Duration::from_secs(5)).await;
    assert_eq!(cache.get::<String>("k").await.as_deref(), Some("v"));
    let whoami: Vec<String> = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async::<String>(&mut raw)
        .await
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split(' ')
                .find_map(|f| f.strip_prefix("user="))
                .map(str::to_owned)
        })
        .collect();
    assert!(whoami.iter().any(|u| u == "app"), "{whoami:?}");

    let (capture, _guard) = LogCapture::install();
    let wrong = builder_for(format!("redis://app:nope-pw-654@127.0.0.1:{port}"))
        .build()
        .unwrap();
    assert_eq!(wrong.get::<String>("k").await, None);
    assert!(!wrong.health().await.healthy);
    assert_no_secret(&capture, &["nope-pw-654"]);
}

/// Credentials refused by the server open the breaker; once the operator fixes the
/// user, the cache reconnects by itself.
pub async fn refused_credentials_open_the_breaker_and_recover_once_fixed() {
    let server = RedisServer::start();
    let mut raw = server.connection().await;
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "late", "off", ">late-pw", "~*", "+@all"])
        .query_async(&mut raw)
        .await
        .unwrap();
    let cache = builder_for(format!("redis://late:late-pw@127.0.0.1:{}", server.port()))
        .breaker(3, Duration::from_millis(100))
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(cache.get::<u8>("k").await, None);
    }
    assert_eq!(cache.health().await.circuit, Some(CircuitState::Open));
    // The operator enables the user: the cache reconnects by itself.
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "late", "on"])
        .query_async(&mut raw)
        .await
        .unwrap();
    let hit = reads_back(
        &cache,
        "k",
        "3",
        Duration::from_secs(10),
        Duration::from_millis(50),
    );
    assert!(
        hit.await,
        "never recovered: {:?} {:?}",
        cache.stats(),
        cache.health().await
    );
}

/// A stall shorter than two deadlines (here: Redis frozen for a little more than one)
/// times out every operation that was in flight, all at once. That is one generation
/// of failures, not an outage: the breaker stays closed and the cache keeps serving.
pub async fn a_short_stall_does_not_open_the_breaker() {
    let _heavy = exclusive().await;
    let mut server = RedisServer::start();
    let deadline = Duration::from_millis(300);
    let cache = breaking_cache(&server, deadline, 5, Duration::from_secs(1));
    let load = start_load(&cache, "stall").await;

    server.freeze();
    std::thread::sleep(deadline + Duration::from_millis(50));
    server.thaw();
    tokio::time::sleep(deadline * 2).await;

    let stats = cache.stats();
    assert!(
        stats.timeouts >= 5,
        "the stall timed operations out: {stats:?}"
    );
    assert_eq!(stats.breaker_openings, 0, "{stats:?}");
    assert_eq!(cache.health().await.circuit, Some(CircuitState::Closed));
    let hits = load.hits.load(Ordering::Relaxed);
    assert!(
        load.wait_for_hits(hits + 100, Duration::from_secs(10))
            .await,
        "no hits after the stall: {:?}",
        cache.stats()
    );
    load.finish().await;
}
