//! The `metrics` feature: the seeds' metric names, labelled by cache label (template,
//! limiter or `direct`) and never by raw key. One test per binary: it installs the
//! process-wide recorder.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cacheward::Cache;
use cacheward_tests::RedisServer;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl HistogramFn for Cell {
    fn record(&self, value: f64) {
        assert!(
            (0.0..60.0).contains(&value),
            "a duration in seconds: {value}"
        );
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts per rendered key: `name{label=value,...}` with labels sorted.
#[derive(Clone, Default)]
struct TestRecorder(Arc<Mutex<BTreeMap<String, Arc<Cell>>>>);

impl TestRecorder {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let rendered = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0.lock().unwrap().entry(rendered).or_default().clone()
    }

    fn value(&self, rendered: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(rendered)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }

    fn keys(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

#[tokio::test]
async fn seed_metrics_are_emitted_by_label_never_by_key() {
    let recorder = TestRecorder::default();
    metrics::set_global_recorder(recorder.clone()).expect("first recorder of this binary");

    let server = RedisServer::start();
    let mut raw = server.connection().await;
    let cache = Cache::builder()
        .redis_url(server.url())
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    cache
        .set("secret-key-a", &1_u32, Duration::from_secs(60))
        .await;
    assert_eq!(cache.get::<u32>("secret-key-a").await, Some(1));
    assert_eq!(cache.get::<u32>("secret-key-b").await, None);
    let _: () = redis::cmd("SET")
        .arg("secret-key-c")
        .arg("garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(cache.get::<u32>("secret-key-c").await, None);
    cache.del("secret-key-a").await;

    let ops = |op: &str, result: &str| {
        recorder.value(&format!(
            "cache.operations.total{{backend=redis,cache=direct,operation={op},result={result}}}"
        ))
    };
    assert_eq!(ops("set", "ok"), 1);
    assert_eq!(ops("get", "hit"), 2, "{:?}", recorder.keys());
    assert_eq!(ops("get", "miss"), 1);
    assert!(ops("del", "ok") >= 1);
    assert_eq!(
        recorder.value(
            "cache.errors.total{backend=redis,cache=direct,error_type=decode,operation=decode}"
        ),
        1,
        "{:?}",
        recorder.keys()
    );
    assert_eq!(
        recorder
            .value("cache.operation.duration{backend=redis,cache=direct,operation=get,result=hit}"),
        2
    );
    for key in recorder.keys() {
        assert!(
            !key.contains("secret-key"),
            "a raw key in a metric label: {key}"
        );
    }

    // A closed port: errors are counted by type.
    let down = Cache::builder()
        .redis_url(format!(
            "redis://127.0.0.1:{}",
            cacheward_tests::free_port()
        ))
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_eq!(down.get::<u32>("secret-key-d").await, None);
    assert_eq!(
        recorder.value(
            "cache.errors.total{backend=redis,cache=direct,error_type=unavailable,operation=get}"
        ),
        1,
        "{:?}",
        recorder.keys()
    );
    assert_eq!(ops("get", "error"), 1);
}
