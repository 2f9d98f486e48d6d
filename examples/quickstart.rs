//! The README's main command: `cargo run --example quickstart`.
//!
//! Wraps an LLM copilot's policy store in the decorator `#[cached_store]` generates and
//! walks through a miss, a hit, a write with its invalidation and the miss after it,
//! then prints the cache's stats, the key inventory and a health check. With
//! `REDIS_URL` set it uses Redis; without it, the in-process memory backend.

use std::time::{Duration, Instant};

use cacheward::Cache;
use cacheward::inventory::Inventory;
use cacheward_examples::{CachingPolicyStore, InMemoryPolicyStore, PolicyStore, TenantLlmPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let redis = std::env::var("REDIS_URL").is_ok_and(|url| !url.trim().is_empty());
    let cache = if redis {
        println!("cacheward quickstart: using Redis (REDIS_URL is set)");
        Cache::from_env()
    } else {
        println!(
            "cacheward quickstart: using the in-process memory backend (set REDIS_URL=redis://127.0.0.1:6379 to use Redis)"
        );
        Cache::memory()
    };

    // The database stand-in: every call takes 5 ms and is counted.
    let backing = InMemoryPolicyStore::new(Duration::from_millis(5));
    backing.set_policy(&TenantLlmPolicy::sample("acme")).await?;
    let store = CachingPolicyStore::new(backing, cache.clone());
    // Start cold even if an earlier run left the key in Redis.
    cache.del("copilot:llm:policy:acme").await;

    println!();
    println!("1. First read of tenant `acme`:");
    read(&store, "acme").await?;
    println!("2. Second read:");
    read(&store, "acme").await?;

    println!("3. An admin raises the token limit (set_policy):");
    let mut updated = TenantLlmPolicy::sample("acme");
    updated.max_tokens_per_request = 16_384;
    updated.version = 2;
    let start = Instant::now();
    store.set_policy(&updated).await?;
    println!(
        "   written to the backing store and `copilot:llm:policy:acme` invalidated in {}",
        ms(start.elapsed())
    );

    println!("4. Next read:");
    read(&store, "acme").await?;

    let stats = cache.stats();
    println!();
    println!(
        "Cache stats: {} hits, {} misses, {} sets, {} deletes, {} errors",
        stats.hits, stats.misses, stats.sets, stats.deletes, stats.errors
    );
    println!(
        "Backing store: {} reads, {} writes",
        store.inner().reads(),
        store.inner().writes()
    );

    println!();
    println!("Key inventory (generated from the decorators):");
    let inventory = Inventory::new().with(CachingPolicyStore::<()>::key_specs());
    inventory.assert_consistent();
    print!("{inventory}");

    let health = cache.health().await;
    println!();
    println!(
        "Health: {} (backend {}, latency {})",
        if health.healthy {
            "healthy"
        } else {
            "unhealthy"
        },
        health.backend,
        health.latency.map_or_else(|| "-".to_owned(), ms),
    );
    if let Some(error) = health.error {
        println!("        {error} - every read fell through to the backing store");
    }
    Ok(())
}

/// Reads a policy through the decorator and says where the answer came from.
async fn read(
    store: &CachingPolicyStore<InMemoryPolicyStore>,
    tenant: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let reads_before = store.inner().reads();
    let start = Instant::now();
    let policy = store.get_policy(tenant).await?;
    let elapsed = start.elapsed();
    let source = if store.inner().reads() > reads_before {
        "MISS - read from the backing store"
    } else {
        "HIT  - served from the cache"
    };
    match policy {
        Some(p) => println!(
            "   {source} in {}: version {}, max_tokens_per_request {}",
            ms(elapsed),
            p.version,
            p.max_tokens_per_request
        ),
        None => println!("   {source} in {}: no policy", ms(elapsed)),
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
