//! A `ttl_env` variable is read once per process however many templates name it, and
//! an unparsable value is warned about once. The environment cannot be changed safely
//! inside a running test binary, so the parent test reruns `read_once_child` in a child
//! process with the variable set.

use std::process::Command;
use std::time::Duration;

use cacheward::cached_store;
use cacheward_tests::LogCapture;

#[cached_store(ttl = 60, ttl_env = "CACHE_TTL_ONCE_SECONDS")]
#[allow(dead_code, reason = "only the decorator's key specs are read")]
trait Pair: Send + Sync {
    #[cached(key = "once:a:<id>")]
    async fn a(&self, id: u32) -> u32;
    #[cached(key = "once:b:<id>")]
    async fn b(&self, id: u32) -> u32;
}

/// The TTL the child expects, in seconds (the compiled 60 s when run directly).
const EXPECT_SECS: &str = "CACHEWARD_TEST_EXPECT_TTL_SECS";
/// How many warnings the child expects.
const EXPECT_WARNINGS: &str = "CACHEWARD_TEST_EXPECT_WARNINGS";

#[test]
fn read_once_child() {
    let expect_secs: u64 = std::env::var(EXPECT_SECS).map_or(60, |v| v.parse().unwrap());
    let expect_warnings: usize = std::env::var(EXPECT_WARNINGS).map_or(0, |v| v.parse().unwrap());
    let (logs, _guard) = LogCapture::install();
    let specs = CachingPair::<()>::key_specs();
    assert_eq!(specs.len(), 2);
    for spec in specs {
        assert_eq!(spec.ttl_env, Some("CACHE_TTL_ONCE_SECONDS"));
        assert_eq!(spec.effective_ttl(), Duration::from_secs(expect_secs));
        assert_eq!(spec.effective_ttl(), Duration::from_secs(expect_secs));
    }
    let warnings = logs.matching("CACHE_TTL_ONCE_SECONDS");
    assert_eq!(warnings.len(), expect_warnings, "{warnings:#?}");
}

#[test]
fn each_variable_is_read_and_warned_about_once() {
    for (value, expect_secs, expect_warnings) in [("7", 7, 0), ("soon", 60, 1), ("0", 60, 1)] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["read_once_child", "--exact", "--test-threads=1"])
            .env("CACHE_TTL_ONCE_SECONDS", value)
            .env(EXPECT_SECS, expect_secs.to_string())
            .env(EXPECT_WARNINGS, expect_warnings.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "CACHE_TTL_ONCE_SECONDS={value:?}: expected {expect_secs} s and {expect_warnings} warning(s)\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
