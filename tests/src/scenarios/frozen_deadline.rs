//! No call past its deadline while Redis is frozen: 64 tasks on a 2-worker runtime call
//! a decorated read against a SIGSTOPped server with the default settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::RedisServer;
use cacheward::{Cache, cached_store};

#[derive(Debug)]
struct Fail;

#[cached_store(key = "frozen:policy:<tenant_id>", ttl = 300)]
trait Policies: Send + Sync {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<String>, Fail>;
}

struct Db;

impl Policies for Db {
    async fn get_policy(&self, tenant_id: &str) -> Result<Option<String>, Fail> {
        Ok(Some(format!("policy of {tenant_id}")))
    }
}

/// The slowest call of one run, in microseconds.
fn one_run() -> u64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut server = RedisServer::start();
    runtime.block_on(async {
        let store = Arc::new(CachingPolicies::new(
            Db,
            Cache::redis(&server.url()).unwrap(),
        ));
        store.get_policy("acme").await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let worst = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (store, stop, worst) =
                    (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&worst));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        store.get_policy("acme").await.unwrap();
                        worst.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.freeze();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        server.thaw();
        worst.load(Ordering::Relaxed)
    })
}

/// No call waits past the deadline while redis is frozen.
pub fn no_call_waits_past_the_deadline_while_redis_is_frozen() {
    let _heavy = crate::exclusive_blocking();
    let runs: Vec<u64> = (0..10).map(|_| one_run()).collect();
    println!("slowest call per run (µs): {runs:?}");
    // 20 ms deadline; generous slack for a loaded 2-core machine, far below the
    // connect timeout (1 s) that a call must never wait for.
    assert!(runs.iter().all(|&w| w < 400_000), "{runs:?}");
}
