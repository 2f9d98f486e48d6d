//! Criterion micro-benchmarks of what one cache hit is made of, without the network:
//! JSON decode of the policy against the binary candidates, key building, a hit on the in-process backend through
//! `Cache::get` and through the hand-written decorator, and what a near-cache hit can
//! hand out (a decode of the bytes, a clone of a decoded value behind `dyn Any`, or the
//! `Arc` itself). Run with `cargo bench -p cacheward-benches --bench micro`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use cacheward::Cache;
use cacheward_benches::policy::{
    BackingStore, CachingPolicyStore, HandCachedPolicyStore, PolicyStore, TenantLlmPolicy,
    policy_key,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn codec(c: &mut Criterion) {
    let policy = TenantLlmPolicy::sample("tenant-0042");
    let bytes = serde_json::to_vec(&policy).expect("json");
    c.bench_function("json decode policy", |b| {
        b.iter(|| serde_json::from_slice::<TenantLlmPolicy>(black_box(&bytes)).expect("decode"))
    });
    c.bench_function("json encode policy", |b| {
        b.iter(|| serde_json::to_vec(black_box(&policy)).expect("encode"))
    });
    // The candidates for an opt-in binary codec (issue 17): MessagePack with field
    // names (what `Codec::MessagePack` writes: it survives added and removed fields as
    // JSON does), MessagePack as arrays (what `cached` writes), and postcard (the
    // fastest well-kept serde format, positional: a field added or removed makes old
    // entries undecodable).
    let named = rmp_serde::to_vec_named(&policy).expect("msgpack");
    let compact = rmp_serde::to_vec(&policy).expect("msgpack");
    let post = postcard::to_allocvec(&policy).expect("postcard");
    eprintln!(
        "policy encoded: json {} B, msgpack named {} B, msgpack compact {} B, postcard {} B",
        bytes.len(),
        named.len(),
        compact.len(),
        post.len()
    );
    c.bench_function("msgpack (named) decode policy", |b| {
        b.iter(|| rmp_serde::from_slice::<TenantLlmPolicy>(black_box(&named)).expect("decode"))
    });
    c.bench_function("msgpack (compact) decode policy", |b| {
        b.iter(|| rmp_serde::from_slice::<TenantLlmPolicy>(black_box(&compact)).expect("decode"))
    });
    c.bench_function("postcard decode policy", |b| {
        b.iter(|| postcard::from_bytes::<TenantLlmPolicy>(black_box(&post)).expect("decode"))
    });
    c.bench_function("msgpack (named) encode policy", |b| {
        b.iter(|| rmp_serde::to_vec_named(black_box(&policy)).expect("encode"))
    });
    c.bench_function("policy key", |b| {
        b.iter(|| policy_key(black_box("tenant-0042")))
    });
}

fn memory_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cache = Cache::memory();
    let key = policy_key("tenant-0042");
    rt.block_on(cache.set(
        &key,
        &TenantLlmPolicy::sample("tenant-0042"),
        Duration::from_secs(3_600),
    ));
    c.bench_function("memory backend: Cache::get hit", |b| {
        b.to_async(&rt).iter(|| async {
            cache
                .get::<TenantLlmPolicy>(black_box(&key))
                .await
                .expect("hit")
        })
    });
    let hand = HandCachedPolicyStore::new(Arc::new(BackingStore::instant()), cache.clone());
    c.bench_function("memory backend: hand-written decorator hit", |b| {
        b.to_async(&rt).iter(|| async {
            hand.get_policy(black_box("tenant-0042"))
                .await
                .expect("ok")
                .expect("some")
        })
    });
    let generated = CachingPolicyStore::new(Arc::new(BackingStore::instant()), cache.clone());
    c.bench_function("memory backend: generated decorator hit", |b| {
        b.to_async(&rt).iter(|| async {
            generated
                .get_policy(black_box("tenant-0042"))
                .await
                .expect("ok")
                .expect("some")
        })
    });
    let inner = BackingStore::instant();
    c.bench_function("inner store alone", |b| {
        b.to_async(&rt).iter(|| async {
            inner
                .get_policy(black_box("tenant-0042"))
                .await
                .expect("ok")
                .expect("some")
        })
    });
}

/// The options a near hit has for turning an entry into the caller's value, on the
/// benchmark's policy: what decided how the near cache keeps values
/// (`docs/near-cache.md`).
fn near_value(c: &mut Criterion) {
    use std::any::Any;
    let policy = TenantLlmPolicy::sample("tenant-0042");
    let bytes = serde_json::to_vec(&policy).expect("json");
    let held: Arc<dyn Any + Send + Sync> = Arc::new(policy.clone());
    let map = quick_cache::sync::Cache::<String, Arc<TenantLlmPolicy>>::new(2_000);
    for i in 0..1_000 {
        let t = format!("tenant-{i:04}");
        map.insert(t.clone(), Arc::new(TenantLlmPolicy::sample(&t)));
    }
    let key = "tenant-0042".to_owned();
    c.bench_function("near value: decode the bytes", |b| {
        b.iter(|| serde_json::from_slice::<TenantLlmPolicy>(black_box(&bytes)).expect("decode"))
    });
    c.bench_function("near value: clone the decoded value", |b| {
        b.iter(|| black_box(&policy).clone())
    });
    c.bench_function("near value: downcast dyn Any and clone", |b| {
        b.iter(|| {
            black_box(&held)
                .downcast_ref::<TenantLlmPolicy>()
                .expect("type")
                .clone()
        })
    });
    c.bench_function("near value: Arc downcast (get_arc)", |b| {
        b.iter(|| {
            Arc::clone(black_box(&held))
                .downcast::<TenantLlmPolicy>()
                .unwrap_or_else(|_| unreachable!("a policy"))
        })
    });
    c.bench_function("near value: quick_cache get of an Arc", |b| {
        b.iter(|| map.get(black_box(&key)).expect("hit"))
    });
}

criterion_group!(benches, codec, memory_hit, near_value);
criterion_main!(benches);
