//! The `metrics` facade exporter read back through metrics-util's
//! debugging recorder: every figure with its kind, unit, description,
//! labels and value before and after a transition and after draining —
//! written once into a local recorder, and by the reporter's task into the
//! global one as reports are published.
//!
//! This binary installs the global recorder in one test only; the other
//! uses a local recorder, which takes precedence on its thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod exporters_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum_watch::model::Lifecycle;
use exporters_common::{Scenario, Stage, deliveries, probe_figures};
use metrics::Unit;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The facade's name of each Prometheus family, its kind and unit.
const PROBE_FIGURES: [(&str, &str, MetricKind, Option<Unit>); 7] = [
    ("probe_healthy", "probe_healthy", MetricKind::Gauge, None),
    ("probe_degraded", "probe_degraded", MetricKind::Gauge, None),
    (
        "probe_latency_ms",
        "probe_latency_seconds",
        MetricKind::Gauge,
        Some(Unit::Seconds),
    ),
    ("probe_circuit_open", "probe_circuit_open", MetricKind::Gauge, None),
    (
        "probe_circuit_consecutive_failures",
        "probe_circuit_consecutive_failures",
        MetricKind::Gauge,
        Some(Unit::Count),
    ),
    (
        "probe_circuit_trips_total",
        "probe_circuit_trips_total",
        MetricKind::Counter,
        Some(Unit::Count),
    ),
    ("probe_no_data", "probe_no_data", MetricKind::Gauge, None),
];

const PROCESS_FIGURES: [(&str, MetricKind, Option<Unit>); 8] = [
    ("health_status", MetricKind::Gauge, None),
    ("health_lifecycle", MetricKind::Gauge, None),
    ("health_scheduling_mode", MetricKind::Gauge, None),
    ("health_alerts_dropped_total", MetricKind::Counter, Some(Unit::Count)),
    ("health_alert_deliveries_total", MetricKind::Counter, Some(Unit::Count)),
    ("health_alert_queue", MetricKind::Gauge, Some(Unit::Count)),
    (
        "health_storage_writes_dropped_total",
        MetricKind::Counter,
        Some(Unit::Count),
    ),
    ("health_storage_writes_pending", MetricKind::Gauge, Some(Unit::Count)),
];

/// One series as the recorder holds it.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    kind: MetricKind,
    unit: Option<Unit>,
    described: bool,
    value: f64,
}

/// The recorder's series by `name{sorted labels}`.
fn read(snapshotter: &Snapshotter) -> BTreeMap<String, Series> {
    let mut out = BTreeMap::new();
    for (key, unit, description, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        labels.sort();
        #[allow(clippy::cast_precision_loss)]
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(v) => v.into_inner(),
            DebugValue::Histogram(_) => panic!("no histograms are written"),
        };
        let series = Series {
            kind,
            unit,
            described: description.is_some_and(|d| !d.is_empty()),
            value,
        };
        out.insert(format!("{}{{{}}}", key.name(), labels.join(",")), series);
    }
    out
}

/// Every series the scenario must show at `stage`: value, kind and unit.
fn expected(stage: Stage, report: &axum_watch::HealthReport, lifecycle: Lifecycle) -> BTreeMap<String, Series> {
    let mut want = BTreeMap::new();
    let mut put = |name: &str, labels: &str, value: f64| {
        let (kind, unit) = PROBE_FIGURES
            .iter()
            .find(|f| f.1 == name)
            .map(|f| (f.2, f.3))
            .or_else(|| PROCESS_FIGURES.iter().find(|f| f.0 == name).map(|f| (f.1, f.2)))
            .unwrap();
        let series = Series {
            kind,
            unit,
            described: true,
            value,
        };
        want.insert(format!("{name}{{{labels}}}"), series);
    };
    for (family, probe, critical, value) in probe_figures(stage, report) {
        let name = PROBE_FIGURES.iter().find(|f| f.0 == family).unwrap().1;
        put(name, &format!("critical={critical},name={probe}"), value);
    }
    put("health_status", "", if stage == Stage::Healthy { 2.0 } else { 0.0 });
    for state in ["starting", "serving", "draining", "stopped"] {
        put(
            "health_lifecycle",
            &format!("state={state}"),
            f64::from(u8::from(state == lifecycle.as_str())),
        );
    }
    for mode in ["background", "while_watched", "on_request"] {
        put(
            "health_scheduling_mode",
            &format!("mode={mode}"),
            f64::from(u8::from(mode == "on_request")),
        );
    }
    put("health_alerts_dropped_total", "", 0.0);
    let (outcomes, waiting) = deliveries(stage);
    for (outcome, n) in outcomes {
        #[allow(clippy::cast_precision_loss)]
        put(
            "health_alert_deliveries_total",
            &format!("alerter=recorder,outcome={outcome}"),
            n as f64,
        );
    }
    #[allow(clippy::cast_precision_loss)]
    put("health_alert_queue", "alerter=recorder", waiting as f64);
    put("health_storage_writes_dropped_total", "replica=pod-a", 7.0);
    put("health_storage_writes_pending", "replica=pod-a", 3.0);
    want
}

/// The differences between what the recorder holds and what it should.
fn differences(got: &BTreeMap<String, Series>, want: &BTreeMap<String, Series>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, series) in want {
        match got.get(key) {
            None => out.push(format!("{key} missing")),
            Some(seen) if (seen.value - series.value).abs() > 1e-9 => {
                out.push(format!("{key} is {}, wanted {}", seen.value, series.value));
            }
            Some(seen) if (seen.kind, seen.unit, seen.described) != (series.kind, series.unit, series.described) => {
                out.push(format!("{key} is {seen:?}, wanted {series:?}"));
            }
            Some(_) => {}
        }
    }
    out.extend(
        got.keys()
            .filter(|k| !want.contains_key(*k))
            .map(|k| format!("{k} not expected")),
    );
    out
}

#[tokio::test]
async fn record_writes_every_figure_after_a_transition() {
    let scenario = Scenario::new();
    let reporter = scenario.registry.metrics_reporter();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let record = || metrics::with_local_recorder(&recorder, || reporter.record());
    metrics::with_local_recorder(&recorder, || reporter.describe());

    // Before any run: no report, so only the process's figures.
    record();
    let before = read(&snapshotter);
    assert!(
        before
            .keys()
            .all(|k| !k.starts_with("probe_") && !k.starts_with("health_status")),
        "{before:?}"
    );
    assert_eq!(before["health_lifecycle{state=serving}"].value, 1.0);

    let report = scenario.healthy().await;
    record();
    let got = read(&snapshotter);
    let want = expected(Stage::Healthy, &report, Lifecycle::Serving);
    assert_eq!(differences(&got, &want), Vec::<String>::new(), "healthy");

    let report = scenario.transition().await;
    let calls = scenario.db.calls();
    record();
    let got = read(&snapshotter);
    let want = expected(Stage::Transitioned, &report, Lifecycle::Serving);
    assert_eq!(differences(&got, &want), Vec::<String>::new(), "after the transition");
    // Writing reads; it never runs a probe.
    record();
    assert_eq!(scenario.db.calls(), calls);

    scenario.registry.drain().await;
    record();
    let got = read(&snapshotter);
    let want = expected(Stage::Transitioned, &report, Lifecycle::Stopped);
    assert_eq!(differences(&got, &want), Vec::<String>::new(), "drained");
}

/// Polls the global recorder until it holds `want`; panics after 10 s.
async fn eventually(snapshotter: &Snapshotter, label: &str, want: &BTreeMap<String, Series>) {
    let started = Instant::now();
    loop {
        // A snapshot takes the values written since the last one: wait
        // for a write, then compare what one pass wrote.
        let got = read(snapshotter);
        let problems = differences(&got, want);
        if problems.is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{label}: {problems:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn run_writes_on_every_report_and_ends_when_drained() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    assert!(metrics::set_global_recorder(recorder).is_ok());

    let scenario = Scenario::new();
    let task = tokio::spawn(scenario.registry.metrics_reporter().every(Duration::from_secs(1)).run());

    // Each report is written as soon as it is published.
    let report = scenario.healthy().await;
    eventually(
        &snapshotter,
        "healthy",
        &expected(Stage::Healthy, &report, Lifecycle::Serving),
    )
    .await;
    let report = scenario.transition().await;
    // The deliveries move after the report; the interval writes them.
    eventually(
        &snapshotter,
        "after the transition",
        &expected(Stage::Transitioned, &report, Lifecycle::Serving),
    )
    .await;
    let calls = scenario.db.calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(scenario.db.calls(), calls, "the reporter never runs a probe");

    // Draining writes the stopped state and ends the task.
    scenario.registry.drain().await;
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the reporter ends once the registry stopped")
        .unwrap();
    let got = read(&snapshotter);
    let want = expected(Stage::Transitioned, &report, Lifecycle::Stopped);
    assert_eq!(differences(&got, &want), Vec::<String>::new(), "drained");

    // A reporter also ends when its registry is dropped. (Here, after the
    // checks above: it writes into the same global recorder.)
    let registry = axum_watch::HealthRegistry::builder().build().unwrap();
    let task = tokio::spawn(registry.metrics_reporter().run());
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(registry);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the reporter ends with its registry")
        .unwrap();
}
