//! The health figures as OpenTelemetry instruments (feature `opentelemetry`):
//! observable gauges and counters on a `Meter` the application passes, whose
//! callbacks read the latest snapshot and the process counters when the
//! SDK collects. A callback never runs a probe; the poll loop (background
//! scheduling), `/health/*` requests or
//! [`HealthRegistry::run_all`](crate::HealthRegistry::run_all) keep the
//! snapshot fresh.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Weak};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, AsyncInstrumentBuilder, Meter};

use super::{Named, ProbeFigure, otel_attr, probe_figures};
use crate::engine::{Engine, Owner};
use crate::http::metrics::{LIFECYCLE, SCHEDULING, delivery_outcomes, overall_value};
use crate::model::ProbeResult;

/// The instruments [`HealthRegistry::register_opentelemetry`](crate::HealthRegistry::register_opentelemetry)
/// registered on a `Meter`, and what keeps their callbacks reporting.
///
/// OpenTelemetry's API has no way to take a callback back from a meter, so
/// this handle owns the callbacks' only link to the registry: while it lives
/// they report; once it is dropped they observe nothing (and the meter
/// provider no longer keeps the registry alive). Keep it as long as the
/// metrics should flow, next to the meter provider.
///
/// Instruments, each with the `/metrics` family it mirrors:
///
/// | instrument | kind | unit | attributes | `/metrics` family |
/// | --- | --- | --- | --- | --- |
/// | `health.probe.healthy` | gauge | | probe | `probe_healthy` |
/// | `health.probe.degraded` | gauge | | probe | `probe_degraded` |
/// | `health.probe.latency` | gauge | `s` | probe | `probe_latency_ms` |
/// | `health.probe.circuit.open` | gauge | | probe | `probe_circuit_open` |
/// | `health.probe.circuit.consecutive_failures` | gauge | `{failure}` | probe | `probe_circuit_consecutive_failures` |
/// | `health.probe.circuit.trips` | counter | `{trip}` | probe | `probe_circuit_trips_total` |
/// | `health.probe.no_data` | gauge | | probe | `probe_no_data` |
/// | `health.status` | gauge | | | `health_status` |
/// | `health.lifecycle` | gauge | | `health.lifecycle.state` | `health_lifecycle` |
/// | `health.scheduling` | gauge | | `health.scheduling.mode` | `health_scheduling_mode` |
/// | `health.alert.dropped` | counter | `{alert}` | | `health_alerts_dropped_total` |
/// | `health.alert.delivery` | counter | `{alert}` | `health.alerter.name`, `health.alert.outcome` | `health_alert_deliveries_total` |
/// | `health.alert.queue` | up-down counter | `{alert}` | `health.alerter.name` | `health_alert_queue` |
/// | `health.storage.write.dropped` | counter | `{write}` | `health.replica.id` | `health_storage_writes_dropped_total` |
/// | `health.storage.write.pending` | up-down counter | `{write}` | `health.replica.id` | `health_storage_writes_pending` |
///
/// "probe" is `health.probe.name` and `health.probe.critical` (a boolean).
/// Probe figures and `health.status` appear once a report exists; the
/// storage figures only with a storage shared by replicas.
///
/// ```
/// use axum_watch::{probe, HealthRegistry, Outcome};
/// use opentelemetry::metrics::MeterProvider as _;
/// use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = HealthRegistry::builder()
///     .add(probe::from_fn("db", || async { Ok(Outcome::healthy()) }))
///     .build()
///     .unwrap();
/// // The application's own pipeline; here an in-memory exporter to read back.
/// let exporter = InMemoryMetricExporter::default();
/// let provider = SdkMeterProvider::builder()
///     .with_reader(PeriodicReader::builder(exporter.clone()).build())
///     .build();
///
/// let instruments = health.register_opentelemetry(&provider.meter("my-service"));
/// health.run_all().await;
/// provider.force_flush().unwrap();
///
/// let exported = exporter.get_finished_metrics().unwrap();
/// let names: Vec<String> = exported
///     .iter()
///     .flat_map(|r| r.scope_metrics())
///     .flat_map(|s| s.metrics())
///     .map(|m| m.name().to_owned())
///     .collect();
/// assert!(names.iter().any(|n| n == "health.probe.latency"));
/// assert!(names.iter().any(|n| n == "health.status"));
/// drop(instruments); // from here on the callbacks report nothing
/// # }
/// ```
pub struct OpenTelemetryInstruments {
    /// What the callbacks upgrade their `Weak` to; dropped with the handle.
    _source: Arc<Source>,
    names: Vec<&'static str>,
    /// The instruments the meter returned (markers today; kept in case an
    /// SDK ties its callbacks to them).
    _instruments: Vec<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for OpenTelemetryInstruments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenTelemetryInstruments")
            .field("instruments", &self.names)
            .finish_non_exhaustive()
    }
}

/// The registry's engine, held by the handle alone.
struct Source {
    engine: Arc<Owner>,
}

/// Registers every instrument on `meter`.
pub(crate) fn register(engine: Arc<Owner>, meter: &Meter) -> OpenTelemetryInstruments {
    let held = Arc::new(Source { engine });
    let source = Arc::downgrade(&held);
    let mut registered = Registered::default();
    for figure in probe_figures() {
        registered.probe_figure(meter, &source, figure);
    }
    registered.process_figures(meter, &source);
    OpenTelemetryInstruments {
        _source: held,
        names: registered.names,
        _instruments: registered.instruments,
    }
}

#[derive(Default)]
struct Registered {
    names: Vec<&'static str>,
    instruments: Vec<Box<dyn Any + Send + Sync>>,
}

/// A builder with its description and, unless it has none, its unit.
fn described<'a, I, M>(
    builder: AsyncInstrumentBuilder<'a, I, M>,
    help: &'static str,
    unit: &'static str,
) -> AsyncInstrumentBuilder<'a, I, M> {
    let builder = builder.with_description(help);
    if unit.is_empty() {
        builder
    } else {
        builder.with_unit(unit)
    }
}

/// A callback that observes what `read` gets from the engine, while the
/// handle lives.
fn observing<T: 'static>(
    source: &Weak<Source>,
    read: impl Fn(&Engine, &dyn AsyncInstrument<T>) + Send + Sync + 'static,
) -> impl Fn(&dyn AsyncInstrument<T>) + Send + Sync + 'static {
    let source = Weak::clone(source);
    move |observer| {
        if let Some(source) = source.upgrade() {
            read(&source.engine, observer);
        }
    }
}

/// A probe's attributes: its name and criticality.
fn probe_attributes(result: &ProbeResult) -> [KeyValue; 2] {
    [
        KeyValue::new(otel_attr::PROBE, result.name.clone()),
        KeyValue::new(otel_attr::CRITICAL, result.critical),
    ]
}

/// Observes `figure` for every probe of the latest report.
fn each_probe<T>(
    figure: ProbeFigure,
    convert: fn(f64) -> T,
) -> impl Fn(&Engine, &dyn AsyncInstrument<T>) + Send + Sync {
    move |engine, observer| {
        if let Some(snapshot) = engine.latest() {
            for result in &snapshot.report.probes {
                observer.observe(convert(figure.value(result)), &probe_attributes(result));
            }
        }
    }
}

// Whole-number figures are exact in f64.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn to_u64(v: f64) -> u64 {
    v as u64
}

#[allow(clippy::cast_possible_truncation)]
fn to_i64(v: f64) -> i64 {
    v as i64
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Registered {
    fn keep(&mut self, name: &'static str, instrument: impl Any + Send + Sync) {
        self.names.push(name);
        self.instruments.push(Box::new(instrument));
    }

    fn probe_figure(&mut self, meter: &Meter, source: &Weak<Source>, figure: ProbeFigure) {
        let (name, help, unit) = (figure.otel, figure.help, figure.otel_unit);
        if figure.family.counter {
            let instrument = described(meter.u64_observable_counter(name), help, unit)
                .with_callback(observing(source, each_probe(figure, to_u64)))
                .build();
            self.keep(name, instrument);
        } else if figure.family.float {
            let instrument = described(meter.f64_observable_gauge(name), help, unit)
                .with_callback(observing(source, each_probe(figure, |v| v)))
                .build();
            self.keep(name, instrument);
        } else {
            let instrument = described(meter.i64_observable_gauge(name), help, unit)
                .with_callback(observing(source, each_probe(figure, to_i64)))
                .build();
            self.keep(name, instrument);
        }
    }

    fn gauge(
        &mut self,
        meter: &Meter,
        source: &Weak<Source>,
        (name, unit, _, help): Named,
        read: impl Fn(&Engine, &dyn AsyncInstrument<i64>) + Send + Sync + 'static,
    ) {
        let instrument = described(meter.i64_observable_gauge(name), help, unit)
            .with_callback(observing(source, read))
            .build();
        self.keep(name, instrument);
    }

    fn counter(
        &mut self,
        meter: &Meter,
        source: &Weak<Source>,
        (name, unit, _, help): Named,
        read: impl Fn(&Engine, &dyn AsyncInstrument<u64>) + Send + Sync + 'static,
    ) {
        let instrument = described(meter.u64_observable_counter(name), help, unit)
            .with_callback(observing(source, read))
            .build();
        self.keep(name, instrument);
    }

    fn up_down(
        &mut self,
        meter: &Meter,
        source: &Weak<Source>,
        (name, unit, _, help): Named,
        read: impl Fn(&Engine, &dyn AsyncInstrument<i64>) + Send + Sync + 'static,
    ) {
        let instrument = described(meter.i64_observable_up_down_counter(name), help, unit)
            .with_callback(observing(source, read))
            .build();
        self.keep(name, instrument);
    }

    fn process_figures(&mut self, meter: &Meter, source: &Weak<Source>) {
        self.gauge(meter, source, super::STATUS, |engine, observer| {
            if let Some(snapshot) = engine.latest() {
                observer.observe(i64::from(overall_value(snapshot.report.status)), &[]);
            }
        });
        self.gauge(meter, source, super::LIFECYCLE, |engine, observer| {
            let now = engine.lifecycle();
            for state in LIFECYCLE {
                let attributes = [KeyValue::new(otel_attr::STATE, state.as_str())];
                observer.observe(i64::from(state == now), &attributes);
            }
        });
        self.gauge(meter, source, super::SCHEDULING, |engine, observer| {
            let now = engine.scheduling();
            for mode in SCHEDULING {
                let attributes = [KeyValue::new(otel_attr::MODE, mode.as_str())];
                observer.observe(i64::from(mode == now), &attributes);
            }
        });
        self.counter(meter, source, super::ALERTS_DROPPED, |engine, observer| {
            observer.observe(engine.alerts_dropped(), &[]);
        });
        self.counter(meter, source, super::DELIVERIES, |engine, observer| {
            for alerter in engine.deliveries() {
                for (outcome, value) in delivery_outcomes(&alerter) {
                    let attributes = [
                        KeyValue::new(otel_attr::ALERTER, alerter.alerter.clone()),
                        KeyValue::new(otel_attr::OUTCOME, outcome),
                    ];
                    observer.observe(value, &attributes);
                }
            }
        });
        self.up_down(meter, source, super::QUEUE, |engine, observer| {
            for alerter in engine.deliveries() {
                let attributes = [KeyValue::new(otel_attr::ALERTER, alerter.alerter)];
                observer.observe(signed(alerter.waiting), &attributes);
            }
        });
        self.counter(meter, source, super::WRITES_DROPPED, |engine, observer| {
            if let Some(replica) = engine.replica() {
                let attributes = [KeyValue::new(otel_attr::REPLICA, replica.to_owned())];
                observer.observe(engine.write_buffer().dropped, &attributes);
            }
        });
        self.up_down(meter, source, super::WRITES_PENDING, |engine, observer| {
            if let Some(replica) = engine.replica() {
                let attributes = [KeyValue::new(otel_attr::REPLICA, replica.to_owned())];
                observer.observe(signed(engine.write_buffer().pending), &attributes);
            }
        });
    }
}
