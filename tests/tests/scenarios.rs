//! Every Redis scenario of `cacheward_tests::scenarios` that does not capture logs,
//! in one test binary. Those that take a `Target` run twice: on a private
//! `redis-server` (`on_single::…`) and on the binary's shared Redis Cluster
//! (`on_cluster::…`), and most of them a third time through the harness's Upstash
//! REST front (`on_upstash::…`); the others set up what they need (`own::…`).
//!
//! An entry is `module::scenario;`, or `module::scenario (tokio test arguments);` for
//! a scenario that needs a multi-threaded runtime.

use cacheward_tests::Target;
use cacheward_tests::scenarios::{
    cache, cluster, cluster_stall, decorator, failover, freshness, frozen_deadline, harness,
    leases, near_cache, pending_invalidations, ratelimit, ratelimit_memory, tags, timing,
};

/// One `#[tokio::test]` per scenario, run on the target `$target` makes.
macro_rules! tests_on {
    ($target:expr; $( $module:ident :: $scenario:ident $( ( $($runtime:tt)* ) )? ; )*) => {
        $(
            #[tokio::test $( ( $($runtime)* ) )?]
            async fn $scenario() {
                $module::$scenario(&$target).await;
            }
        )*
    };
}

/// The scenarios that run on every kind of target, handed to `$then!` after the tokens
/// `$before`: written once, expanded once per target.
macro_rules! every_target {
    ($then:ident ! ($($before:tt)*)) => {
        $then! { $($before)*
            cache::round_trip;
            cache::batch;
            cache::garbage;
            cache::erroring_backend;
            cache::single_key_operations;
            cache::purge;
            cache::health;

            decorator::shapes;
            decorator::failed_write;
            decorator::injective_keys;
            decorator::pair_keys;
            decorator::single_flight (flavor = "multi_thread", worker_threads = 4);
            decorator::invalidated_during_read (flavor = "multi_thread", worker_threads = 2);

            ratelimit::window_semantics;
            ratelimit::token_bucket_semantics;
            ratelimit::identifiers_neither_collide_nor_widen_reset;
            ratelimit::every_key_expires;
            ratelimit::skewed_clients_count_the_same;
            ratelimit::exactness (flavor = "multi_thread", worker_threads = 2);

            leases::write_during_load (flavor = "multi_thread", worker_threads = 2);
            leases::expired_lease (flavor = "multi_thread", worker_threads = 2);
            leases::one_load_across_instances (flavor = "multi_thread", worker_threads = 2);
            tags::tenant (flavor = "multi_thread", worker_threads = 2);
            tags::invalidation_during_load (flavor = "multi_thread", worker_threads = 2);
            freshness::refresh_ahead (flavor = "multi_thread", worker_threads = 2);
            freshness::stale_if_error (flavor = "multi_thread", worker_threads = 2);
        }
    };
}

/// The scenarios on a private single `redis-server`.
mod on_single {
    use super::*;
    every_target!(tests_on!(Target::single();));
    tests_on! { Target::single(); cache::compression; cache::codecs; }
}

/// The scenarios on the binary's shared Redis Cluster (leased to one test at a time
/// and emptied before each).
mod on_cluster {
    use super::*;
    every_target!(tests_on!(Target::cluster();));
    tests_on! { Target::cluster(); cache::compression; cache::codecs; }
}

/// The scenarios on a private `redis-server` behind the harness's Upstash REST front
/// (`Backend::Upstash`). Not `cache::compression` nor `cache::codecs`: the REST
/// backend writes no LZ4 or MessagePack frames (JSON bodies carry text).
mod on_upstash {
    use super::*;
    every_target!(tests_on!(Target::upstash();));
    tests_on! { Target::upstash(); cache::codec_falls_back_to_json; }
}

/// One `#[tokio::test]` per scenario that sets up what it needs.
macro_rules! with_own_setup {
    ($( $module:ident :: $scenario:ident $( ( $($runtime:tt)* ) )? ; )*) => {
        $(
            #[tokio::test $( ( $($runtime)* ) )?]
            async fn $scenario() {
                $module::$scenario().await;
            }
        )*
    };
}

/// The scenarios that set up what they need.
mod own {
    use super::*;

    with_own_setup! {
        cache::pass_through_caches_nothing;
        cache::memory_backend_honours_ttls_and_its_bound;
        cache::purge_prefix_on_memory_and_pass_through_is_zero;
        cache::batches_spanning_every_primary_are_split_by_slot;
        cache::a_cluster_that_is_not_there_is_a_miss_not_an_error;
        cache::rediss_round_trip_with_a_private_ca;

        decorator::single_flight_on_memory (flavor = "multi_thread", worker_threads = 4);
        decorator::single_flight_with_redis_down (flavor = "multi_thread", worker_threads = 4);
        decorator::redis_down_answers_equal_the_inner_store;
        decorator::a_failed_read_costs_one_deadline_not_two (flavor = "multi_thread", worker_threads = 2);
        decorator::ttl_env_child;

        failover::redis_killed_mid_run_under_64_tasks (flavor = "multi_thread", worker_threads = 4);
        failover::frozen_redis_under_64_tasks (flavor = "multi_thread", worker_threads = 4);
        failover::a_short_stall_does_not_open_the_breaker (flavor = "multi_thread", worker_threads = 4);
        failover::refused_credentials_open_the_breaker_and_recover_once_fixed;

        cluster::killing_a_primary_under_load_surfaces_no_error (flavor = "multi_thread", worker_threads = 2);
        cluster::migrating_a_slot_under_load_surfaces_no_error (flavor = "multi_thread", worker_threads = 2);
        cluster::a_cluster_down_at_start_up_is_used_once_it_comes_up (flavor = "multi_thread", worker_threads = 2);
        cluster::killing_a_primary_under_decorator_load_surfaces_no_error (flavor = "multi_thread", worker_threads = 2);
        cluster::the_limiter_stays_exact_while_its_slot_migrates (flavor = "multi_thread", worker_threads = 2);
        cluster::slots_agree_with_cluster_keyslot_on_10000_keys;
        cluster_stall::redis_rs_stalls_during_slot_migrations_cacheward_does_not (flavor = "multi_thread", worker_threads = 2);

        harness::server_starts_restarts_and_freezes;
        harness::three_primaries_three_replicas_all_slots_and_a_clean_teardown;
        ratelimit_memory::memory_and_redis_limiters_decide_alike;

        leases::write_during_load_on_memory (flavor = "multi_thread", worker_threads = 2);
        tags::a_tenant_is_dropped_at_once_on_memory (flavor = "multi_thread", worker_threads = 2);
        tags::invalidating_a_tag_of_5000_entries_is_one_command (flavor = "multi_thread", worker_threads = 2);
        tags::a_tag_invalidation_reaches_near_caches (flavor = "multi_thread", worker_threads = 2);
        freshness::stale_if_error_on_memory (flavor = "multi_thread", worker_threads = 2);
        freshness::refresh_ahead_with_a_near_cache (flavor = "multi_thread", worker_threads = 2);
        near_cache::near_hits_skip_redis_and_any_clients_write_evicts_them (flavor = "multi_thread", worker_threads = 2);
        near_cache::a_write_through_another_instance_evicts_this_ones_entry (flavor = "multi_thread", worker_threads = 2);
        near_cache::a_killed_feed_stops_the_near_cache_until_it_is_back (flavor = "multi_thread", worker_threads = 2);
        near_cache::a_silently_cut_feed_stops_the_near_cache_within_two_heartbeats (flavor = "multi_thread", worker_threads = 2);
        near_cache::an_invalidation_during_the_insert_is_not_lost (flavor = "multi_thread", worker_threads = 2);
        near_cache::soak_two_instances_agree_with_the_database_after_the_writes (flavor = "multi_thread", worker_threads = 2);
        near_cache::a_decorators_near_hits_clone_one_decoded_value_and_a_write_replaces_it (flavor = "multi_thread", worker_threads = 2);
        near_cache::a_decorator_returning_an_arc_shares_one_value_across_near_hits (flavor = "multi_thread", worker_threads = 2);
        near_cache::a_near_entry_is_never_handed_out_as_another_type (flavor = "multi_thread", worker_threads = 2);
        pending_invalidations::a_write_during_a_partition_reaches_every_instance_after_it_heals (flavor = "multi_thread", worker_threads = 2);
        pending_invalidations::a_write_while_the_breaker_is_open_is_replayed_after_recovery (flavor = "multi_thread", worker_threads = 2);
        pending_invalidations::the_proxy_cuts_without_closing (flavor = "multi_thread", worker_threads = 2);
        timing::a_tenant_reset_drops_every_entry_of_the_tenant_on_every_instance (flavor = "multi_thread", worker_threads = 2);
        timing::refresh_ahead_refreshes_once_while_others_hit (flavor = "multi_thread", worker_threads = 2);
        timing::stale_if_error_answers_when_the_store_fails (flavor = "multi_thread", worker_threads = 2);
        timing::tags_on_the_memory_backend (flavor = "multi_thread", worker_threads = 2);
    }

    #[test]
    fn cache_is_cheap_to_clone_and_thread_safe() {
        cache::cache_is_cheap_to_clone_and_thread_safe();
    }

    #[test]
    fn malformed_seeds_are_a_config_error() {
        cache::malformed_seeds_are_a_config_error();
    }

    #[test]
    fn ttl_env_overrides_the_compiled_ttl_and_bad_values_are_ignored() {
        decorator::ttl_env_overrides_the_compiled_ttl_and_bad_values_are_ignored();
    }

    #[test]
    fn single_server_cache_outlives_the_runtime_that_first_used_it() {
        cache::outlives_the_runtime_that_first_used_it(&Target::single());
    }

    #[test]
    fn cluster_cache_outlives_the_runtime_that_first_used_it() {
        cache::outlives_the_runtime_that_first_used_it(&Target::cluster());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_dropped_filler_on_single() {
        leases::dropped_filler(&Target::single()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_try_get_or_set_on_single() {
        leases::try_get_or_set(&Target::single()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_soak_on_single() {
        leases::soak(&Target::single()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn freshness_one_refresh_across_instances_on_single() {
        freshness::one_refresh_across_instances(&Target::single()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn freshness_tag_invalidated_never_stale_on_single() {
        freshness::tag_invalidated_never_stale(&Target::single()).await;
    }

    #[test]
    fn no_call_waits_past_the_deadline_while_redis_is_frozen() {
        frozen_deadline::no_call_waits_past_the_deadline_while_redis_is_frozen();
    }
}
