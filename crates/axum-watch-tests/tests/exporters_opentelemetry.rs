//! The OpenTelemetry exporter read back through the SDK's own pipeline: a
//! `SdkMeterProvider` with a periodic reader into the in-memory exporter,
//! flushed at each point of the scenario. Every instrument, its kind, unit
//! and every data point are checked before and after a transition, after
//! draining, and once the handle is dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod exporters_common;

use std::collections::BTreeMap;

use axum_watch::model::Lifecycle;
use exporters_common::{Scenario, Stage, deliveries, probe_figures};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics, ScopeMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};

/// An exported instrument: its kind, unit, description and data points by
/// their sorted `key=value` attributes.
#[derive(Debug)]
struct Exported {
    kind: &'static str,
    unit: String,
    description: String,
    points: BTreeMap<String, f64>,
}

struct Pipeline {
    provider: SdkMeterProvider,
    exporter: InMemoryMetricExporter,
}

impl Pipeline {
    fn new() -> Self {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        Self { provider, exporter }
    }

    /// One collection, as a backend would receive it.
    fn collect(&self) -> BTreeMap<String, Exported> {
        self.exporter.reset();
        self.provider.force_flush().unwrap();
        let finished = self.exporter.get_finished_metrics().unwrap();
        let mut out = BTreeMap::new();
        for metric in finished
            .iter()
            .flat_map(ResourceMetrics::scope_metrics)
            .flat_map(ScopeMetrics::metrics)
        {
            let (kind, points) = match metric.data() {
                AggregatedMetrics::F64(data) => points(data, |v| v),
                #[allow(clippy::cast_precision_loss)]
                AggregatedMetrics::U64(data) => points(data, |v| v as f64),
                #[allow(clippy::cast_precision_loss)]
                AggregatedMetrics::I64(data) => points(data, |v| v as f64),
            };
            let exported = Exported {
                kind,
                unit: metric.unit().to_owned(),
                description: metric.description().to_owned(),
                points,
            };
            assert!(
                out.insert(metric.name().to_owned(), exported).is_none(),
                "{} exported twice",
                metric.name()
            );
        }
        out
    }
}

fn attributes<'a>(attrs: impl Iterator<Item = &'a opentelemetry::KeyValue>) -> String {
    let mut pairs: Vec<String> = attrs.map(|kv| format!("{}={}", kv.key, kv.value)).collect();
    pairs.sort();
    pairs.join(",")
}

fn points<T: Copy>(data: &MetricData<T>, to_f64: fn(T) -> f64) -> (&'static str, BTreeMap<String, f64>) {
    match data {
        MetricData::Gauge(gauge) => (
            "gauge",
            gauge
                .data_points()
                .map(|p| (attributes(p.attributes()), to_f64(p.value())))
                .collect(),
        ),
        MetricData::Sum(sum) => (
            if sum.is_monotonic() {
                "counter"
            } else {
                "up-down counter"
            },
            sum.data_points()
                .map(|p| (attributes(p.attributes()), to_f64(p.value())))
                .collect(),
        ),
        _ => panic!("no histograms are exported"),
    }
}

/// The OpenTelemetry instrument of each Prometheus family, its kind and unit.
const PROBE_INSTRUMENTS: [(&str, &str, &str, &str); 7] = [
    ("probe_healthy", "health.probe.healthy", "gauge", ""),
    ("probe_degraded", "health.probe.degraded", "gauge", ""),
    ("probe_latency_ms", "health.probe.latency", "gauge", "s"),
    ("probe_circuit_open", "health.probe.circuit.open", "gauge", ""),
    (
        "probe_circuit_consecutive_failures",
        "health.probe.circuit.consecutive_failures",
        "gauge",
        "{failure}",
    ),
    (
        "probe_circuit_trips_total",
        "health.probe.circuit.trips",
        "counter",
        "{trip}",
    ),
    ("probe_no_data", "health.probe.no_data", "gauge", ""),
];

/// Every instrument the handle registers, with its kind and unit.
const PROCESS_INSTRUMENTS: [(&str, &str, &str); 8] = [
    ("health.status", "gauge", ""),
    ("health.lifecycle", "gauge", ""),
    ("health.scheduling", "gauge", ""),
    ("health.alert.dropped", "counter", "{alert}"),
    ("health.alert.delivery", "counter", "{alert}"),
    ("health.alert.queue", "up-down counter", "{alert}"),
    ("health.storage.write.dropped", "counter", "{write}"),
    ("health.storage.write.pending", "up-down counter", "{write}"),
];

fn probe_key(probe: &str, critical: bool) -> String {
    format!("health.probe.critical={critical},health.probe.name={probe}")
}

/// Every instrument and every data point the scenario must show at `stage`.
fn expected(
    stage: Stage,
    report: &axum_watch::HealthReport,
    lifecycle: Lifecycle,
) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut want: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for (family, probe, critical, value) in probe_figures(stage, report) {
        let instrument = PROBE_INSTRUMENTS.iter().find(|i| i.0 == family).unwrap().1;
        want.entry(instrument.to_owned())
            .or_default()
            .insert(probe_key(probe, critical), value);
    }
    let status = if stage == Stage::Healthy { 2.0 } else { 0.0 };
    want.insert("health.status".into(), [(String::new(), status)].into());
    let states = ["starting", "serving", "draining", "stopped"];
    want.insert(
        "health.lifecycle".into(),
        states
            .iter()
            .map(|s| {
                (
                    format!("health.lifecycle.state={s}"),
                    f64::from(u8::from(*s == lifecycle.as_str())),
                )
            })
            .collect(),
    );
    want.insert(
        "health.scheduling".into(),
        ["background", "while_watched", "on_request"]
            .iter()
            .map(|m| {
                (
                    format!("health.scheduling.mode={m}"),
                    f64::from(u8::from(*m == "on_request")),
                )
            })
            .collect(),
    );
    want.insert("health.alert.dropped".into(), [(String::new(), 0.0)].into());
    let (outcomes, waiting) = deliveries(stage);
    #[allow(clippy::cast_precision_loss)]
    let outcomes = outcomes
        .iter()
        .map(|(o, n)| {
            (
                format!("health.alert.outcome={o},health.alerter.name=recorder"),
                *n as f64,
            )
        })
        .collect();
    want.insert("health.alert.delivery".into(), outcomes);
    #[allow(clippy::cast_precision_loss)]
    let waiting = waiting as f64;
    want.insert(
        "health.alert.queue".into(),
        [("health.alerter.name=recorder".to_owned(), waiting)].into(),
    );
    want.insert(
        "health.storage.write.dropped".into(),
        [("health.replica.id=pod-a".to_owned(), 7.0)].into(),
    );
    want.insert(
        "health.storage.write.pending".into(),
        [("health.replica.id=pod-a".to_owned(), 3.0)].into(),
    );
    want
}

fn assert_every_instrument(
    label: &str,
    got: &BTreeMap<String, Exported>,
    want: &BTreeMap<String, BTreeMap<String, f64>>,
) {
    let names: Vec<&String> = got.keys().collect();
    let wanted: Vec<&String> = want.keys().collect();
    assert_eq!(names, wanted, "{label}: the instruments exported");
    for (name, points) in want {
        let exported = &got[name];
        let keys: Vec<&String> = exported.points.keys().collect();
        assert_eq!(keys, points.keys().collect::<Vec<_>>(), "{label}: {name}'s data points");
        for (attrs, value) in points {
            let seen = exported.points[attrs];
            assert!(
                (seen - value).abs() < 1e-9,
                "{label}: {name}{{{attrs}}} is {seen}, wanted {value}"
            );
        }
    }
}

#[tokio::test]
async fn every_instrument_reads_back_through_the_sdk_after_a_transition() {
    let scenario = Scenario::new();
    let pipeline = Pipeline::new();
    let instruments = scenario
        .registry
        .register_opentelemetry(&pipeline.provider.meter("axum-watch-test"));

    // Before any run: no report yet, so only the process's figures.
    let before = pipeline.collect();
    for (_, name, ..) in PROBE_INSTRUMENTS {
        assert!(
            before.get(name).is_none_or(|e| e.points.is_empty()),
            "{name}: {before:?}"
        );
    }
    assert!(before.get("health.status").is_none_or(|e| e.points.is_empty()));
    assert_eq!(before["health.lifecycle"].points["health.lifecycle.state=serving"], 1.0);

    let report = scenario.healthy().await;
    let got = pipeline.collect();
    assert_every_instrument("healthy", &got, &expected(Stage::Healthy, &report, Lifecycle::Serving));
    // Kinds, units and descriptions, checked once.
    for (_, name, kind, unit) in PROBE_INSTRUMENTS {
        assert_eq!((got[name].kind, got[name].unit.as_str()), (kind, unit), "{name}");
        assert!(!got[name].description.is_empty(), "{name}");
    }
    for (name, kind, unit) in PROCESS_INSTRUMENTS {
        assert_eq!((got[name].kind, got[name].unit.as_str()), (kind, unit), "{name}");
        assert!(!got[name].description.is_empty(), "{name}");
    }
    assert_eq!(
        got["health.probe.latency"].description,
        "Last observed probe check latency in seconds"
    );

    let report = scenario.transition().await;
    let got = pipeline.collect();
    assert_every_instrument(
        "after the transition",
        &got,
        &expected(Stage::Transitioned, &report, Lifecycle::Serving),
    );
    // A collection reads; it never runs a probe.
    let calls = scenario.db.calls();
    pipeline.collect();
    pipeline.collect();
    assert_eq!(scenario.db.calls(), calls);

    scenario.registry.drain().await;
    let got = pipeline.collect();
    assert_every_instrument(
        "drained",
        &got,
        &expected(Stage::Transitioned, &report, Lifecycle::Stopped),
    );

    // The handle keeps the callbacks reporting; without it they report nothing.
    assert!(format!("{instruments:?}").contains("health.alert.delivery"));
    drop(instruments);
    let after = pipeline.collect();
    assert!(after.values().all(|e| e.points.is_empty()), "{after:?}");
}

#[tokio::test]
async fn two_registries_on_one_meter_report_side_by_side_only_while_held() {
    let pipeline = Pipeline::new();
    let meter = pipeline.provider.meter("axum-watch-test");
    let first = Scenario::new();
    let first_instruments = first.registry.register_opentelemetry(&meter);
    first.healthy().await;
    let second = axum_watch::HealthRegistry::builder()
        .add(common::Switch::new("search", axum_watch::Status::Degraded))
        .build()
        .unwrap();
    let second_instruments = second.register_opentelemetry(&meter);
    second.run_all().await;

    let got = pipeline.collect();
    let healthy = &got["health.probe.healthy"].points;
    assert_eq!(healthy[&probe_key("db", true)], 1.0);
    assert_eq!(healthy[&probe_key("search", true)], 0.0);
    assert_eq!(got["health.probe.degraded"].points[&probe_key("search", true)], 1.0);

    drop(first_instruments);
    let got = pipeline.collect();
    let healthy = &got["health.probe.healthy"].points;
    assert_eq!(healthy.keys().collect::<Vec<_>>(), [&probe_key("search", true)]);
    drop(second_instruments);
}
