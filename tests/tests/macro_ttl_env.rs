//! `ttl_env` overrides the compiled TTL at run time; an unparsable value is ignored.
//!
//! The environment cannot be changed safely inside a running test binary, so the
//! parent test reruns `ttl_env_child` in a child process with the variable set.

use std::process::Command;
use std::time::Duration;

use cacheward::{Cache, cached_store};
use cacheward_tests::Target;

#[cached_store(key = "mt:ttl:<id>", ttl = 60, ttl_env = "CACHE_TTL_MACROTEST_SECONDS")]
trait Numbers: Send + Sync {
    async fn number(&self, id: u32) -> u32;
}

struct Doubler;

impl Numbers for Doubler {
    async fn number(&self, id: u32) -> u32 {
        id * 2
    }
}

/// The TTL the child expects, in milliseconds (the compiled 60 s when run directly).
const EXPECT_MS: &str = "CACHEWARD_TEST_EXPECT_TTL_MS";

#[tokio::test]
async fn ttl_env_child() {
    let expect_ms: u64 = std::env::var(EXPECT_MS).map_or(60_000, |v| v.parse().unwrap());
    let spec = CachingNumbers::<()>::key_specs()[0];
    assert_eq!(spec.ttl_env, Some("CACHE_TTL_MACROTEST_SECONDS"));
    assert_eq!(spec.effective_ttl(), Duration::from_millis(expect_ms));

    let target = Target::single();
    let store = CachingNumbers::new(Doubler, Cache::redis(&target.url()).unwrap());
    assert_eq!(store.number(21).await, 42);
    let mut conn = target.raw().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg("mt:ttl:21")
        .query_async(&mut conn)
        .await
        .unwrap();
    let expect = i64::try_from(expect_ms).unwrap();
    assert!(
        pttl > expect * 8 / 10 && pttl <= expect,
        "PTTL {pttl} for an expected {expect} ms"
    );
}

#[test]
fn ttl_env_overrides_the_compiled_ttl_and_bad_values_are_ignored() {
    for (value, expect_ms) in [
        ("7", 7_000),
        ("  90 ", 90_000),
        ("soon", 60_000),
        ("0", 60_000),
        ("", 60_000),
    ] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["ttl_env_child", "--exact", "--test-threads=1"])
            .env("CACHE_TTL_MACROTEST_SECONDS", value)
            .env(EXPECT_MS, expect_ms.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "CACHE_TTL_MACROTEST_SECONDS={value:?}: expected {expect_ms} ms\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
