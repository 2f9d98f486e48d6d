//! The scenarios that capture log lines (`cacheward_tests::LogCapture`), in a process
//! of their own: a thread-local subscriber can miss events that other tests emit at
//! the same time on other threads. `LogCapture::install` also runs the captures one
//! at a time.

use cacheward_tests::scenarios::{cluster, failover, ratelimit};

macro_rules! capturing_logs {
    ($( $module:ident :: $scenario:ident ; )*) => {
        $(
            #[tokio::test]
            async fn $scenario() {
                $module::$scenario().await;
            }
        )*
    };
}

capturing_logs! {
    failover::redis_down_at_start_then_up;
    failover::closed_port_is_a_miss_and_health_names_it;
    failover::malformed_url_is_pass_through_with_one_error_and_no_password;
    failover::wrong_password_is_a_miss_and_health_names_it;
    failover::acl_user_from_the_url;

    ratelimit::killed_redis_fails_open_then_limits_apply_again;
    ratelimit::frozen_redis_fails_open_within_the_deadline_then_limits_apply_again;

    cluster::a_password_protected_cluster_takes_redis_password_and_never_shows_it;
}
