//! The decorator's and the rate limiter's Redis suites, run on a real Redis Cluster
//! (three primaries, three replicas).
//!
//! The scenarios are theirs, not copies: `macro_redis.rs` and `ratelimit.rs` are
//! compiled into this binary as modules and their `async fn …(target: &Target)`
//! scenarios are called with [`Target::cluster`]: the binary's shared cluster, leased
//! to one test at a time and emptied before each. Including the files also compiles
//! their single-server tests into this binary, so those run here a second time.

#[path = "macro_redis.rs"]
mod macro_redis;
#[path = "ratelimit.rs"]
mod ratelimit;

use cacheward::Cache;
use cacheward_tests::Target;

// ---- the decorator (`#[cached_store]`) --------------------------------------------

#[tokio::test]
async fn decorator_shapes_on_cluster() {
    macro_redis::shapes_scenario(&Target::cluster()).await;
}

#[tokio::test]
async fn decorator_failed_write_on_cluster() {
    macro_redis::failed_write_scenario(&Target::cluster()).await;
}

#[tokio::test]
async fn decorator_injective_keys_on_cluster() {
    macro_redis::injective_keys_scenario(&Target::cluster()).await;
}

#[tokio::test]
async fn decorator_pair_keys_on_cluster() {
    macro_redis::pair_keys_scenario(&Target::cluster()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decorator_single_flight_on_cluster() {
    let target = Target::cluster();
    macro_redis::single_flight_scenario(Cache::redis(&target.url()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decorator_invalidated_during_read_on_cluster() {
    let target = Target::cluster();
    macro_redis::invalidated_during_read_scenario(target.cache()).await;
}

// ---- the rate limiter -------------------------------------------------------------

#[tokio::test]
async fn limiter_window_semantics_on_cluster() {
    ratelimit::window_semantics(&Target::cluster()).await;
}

#[tokio::test]
async fn limiter_token_bucket_semantics_on_cluster() {
    ratelimit::token_bucket_semantics(&Target::cluster()).await;
}

#[tokio::test]
async fn limiter_identifiers_on_cluster() {
    ratelimit::identifiers_neither_collide_nor_widen_reset(&Target::cluster()).await;
}

#[tokio::test]
async fn limiter_every_key_expires_on_cluster() {
    ratelimit::every_key_expires(&Target::cluster()).await;
}

#[tokio::test]
async fn limiter_skewed_clients_on_cluster() {
    ratelimit::skewed_clients_count_the_same(&Target::cluster()).await;
}

/// The limiter's exactness holds on the cluster: concurrent instances hammering the
/// same identifiers never allow more than the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_exactness_on_cluster() {
    let target = Target::cluster();
    ratelimit::fixed_window_is_exact(&target).await;
    ratelimit::sliding_window_stays_within_its_bound(&target).await;
    ratelimit::token_bucket_stays_within_its_bound(&target).await;
}
