//! The health figures through the `metrics` crate facade (feature
//! `metrics`), into whatever recorder the application installed
//! (`metrics-exporter-prometheus`, StatsD, …).
//!
//! The facade has no callbacks to read a value when a recorder exports, so
//! the figures are pushed: [`MetricsReporter::run`] describes every figure,
//! then writes them on every report the registry publishes, on every
//! lifecycle change, and once per interval for the counters that move
//! between reports (alert deliveries, drops). Gauges are set; counters are
//! given their absolute totals (`Counter::absolute`), so nothing is counted
//! twice however often it writes. [`MetricsReporter::record`] writes once,
//! for a recorder that should be fresh right before it renders. Neither
//! runs a probe.

use std::sync::{Arc, Weak};
use std::time::Duration;

use metrics::{Label, Unit, counter, describe_counter, describe_gauge, gauge};

use super::{Named, probe_figures};
use crate::engine::{Engine, MIN_POLL_INTERVAL, Owner};
use crate::http::metrics::{LIFECYCLE, SCHEDULING, delivery_outcomes, overall_value};
use crate::model::Lifecycle;

/// Writes the registry's health figures into the `metrics` facade's
/// recorder; made by
/// [`HealthRegistry::metrics_reporter`](crate::HealthRegistry::metrics_reporter).
///
/// Figures, with the `/metrics` family each mirrors (label names as there):
///
/// | name | kind | unit | labels | `/metrics` family |
/// | --- | --- | --- | --- | --- |
/// | `probe_healthy` | gauge | | `name`, `critical` | `probe_healthy` |
/// | `probe_degraded` | gauge | | `name`, `critical` | `probe_degraded` |
/// | `probe_latency_seconds` | gauge | seconds | `name`, `critical` | `probe_latency_ms` |
/// | `probe_circuit_open` | gauge | | `name`, `critical` | `probe_circuit_open` |
/// | `probe_circuit_consecutive_failures` | gauge | count | `name`, `critical` | the same |
/// | `probe_circuit_trips_total` | counter | count | `name`, `critical` | the same |
/// | `probe_no_data` | gauge | | `name`, `critical` | the same |
/// | `health_status` | gauge | | | the same |
/// | `health_lifecycle` | gauge | | `state` | the same |
/// | `health_scheduling_mode` | gauge | | `mode` | the same |
/// | `health_alerts_dropped_total` | counter | count | | the same |
/// | `health_alert_deliveries_total` | counter | count | `alerter`, `outcome` | the same |
/// | `health_alert_queue` | gauge | count | `alerter` | the same |
/// | `health_storage_writes_dropped_total` | counter | count | `replica` | the same |
/// | `health_storage_writes_pending` | gauge | count | `replica` | the same |
///
/// A probe that leaves the report keeps its last values in the recorder:
/// the facade cannot remove a series.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
///
/// let health = axum_watch::HealthRegistry::builder()
///     .drain_delay(Duration::ZERO)
///     .build()
///     .unwrap();
/// // With a recorder installed (`metrics::set_global_recorder`, or an
/// // exporter's `install()`), for the life of the registry:
/// let reporter = tokio::spawn(health.metrics_reporter().every(Duration::from_secs(5)).run());
/// health.drain().await; // the reporter writes the stopped state and ends
/// reporter.await.unwrap();
/// # }
/// ```
///
/// Writing once, read back with metrics-util's debugging recorder:
///
/// ```
/// use axum_watch::{probe, HealthRegistry, Outcome};
/// use metrics_util::debugging::{DebugValue, DebuggingRecorder};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let health = HealthRegistry::builder()
///     .add(probe::from_fn("db", || async { Ok(Outcome::degraded()) }))
///     .build()
///     .unwrap();
/// health.run_all().await;
///
/// // In a service: `tokio::spawn(health.metrics_reporter().run());` with a
/// // global recorder installed. Here, one write into a local recorder.
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, || health.metrics_reporter().record());
///
/// let status = snapshotter
///     .snapshot()
///     .into_vec()
///     .into_iter()
///     .find(|(key, ..)| key.key().name() == "health_status")
///     .map(|(.., value)| value);
/// assert_eq!(status, Some(DebugValue::Gauge(1.0.into()))); // degraded
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MetricsReporter {
    engine: Arc<Owner>,
    every: Duration,
}

impl MetricsReporter {
    /// How often [`run`](Self::run) writes without a new report, by default.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

    pub(crate) fn new(engine: Arc<Owner>) -> Self {
        Self {
            engine,
            every: Self::DEFAULT_INTERVAL,
        }
    }

    /// How often [`run`](Self::run) writes between reports, for the figures
    /// that move on their own (alert deliveries and drops, the end of the
    /// grace period); at least one second. Default 10 s.
    #[must_use]
    pub fn every(mut self, interval: Duration) -> Self {
        self.every = interval.max(MIN_POLL_INTERVAL);
        self
    }

    /// Describes every figure (help text and unit) to the current recorder.
    pub fn describe(&self) {
        for figure in probe_figures() {
            let unit = if figure.seconds {
                Some(Unit::Seconds)
            } else {
                figure.counts().then_some(Unit::Count)
            };
            match (figure.family.counter, unit) {
                (true, Some(unit)) => describe_counter!(figure.facade, unit, figure.help),
                (true, None) => describe_counter!(figure.facade, figure.help),
                (false, Some(unit)) => describe_gauge!(figure.facade, unit, figure.help),
                (false, None) => describe_gauge!(figure.facade, figure.help),
            }
        }
        for (_, _, name, help) in [super::STATUS, super::LIFECYCLE, super::SCHEDULING] {
            describe_gauge!(name, help);
        }
        for (_, _, name, help) in [super::QUEUE, super::WRITES_PENDING] {
            describe_gauge!(name, Unit::Count, help);
        }
        for (_, _, name, help) in [super::ALERTS_DROPPED, super::DELIVERIES, super::WRITES_DROPPED] {
            describe_counter!(name, Unit::Count, help);
        }
    }

    /// Writes every figure once into the current recorder: the latest
    /// report's (none before the first run) and the process's.
    pub fn record(&self) {
        record(&self.engine);
    }

    /// Describes the figures, writes them now, then on every published
    /// report, every lifecycle change and every [interval](Self::every),
    /// until the registry stops (after writing the `stopped` state) or is
    /// dropped. Spawn it on the runtime the registry runs on; it writes into
    /// the global recorder.
    pub async fn run(self) {
        self.describe();
        let mut updates = self.engine.updates();
        let mut phases = self.engine.phases();
        let every = self.every;
        // Only the registry keeps the engine alive; the channels close with it.
        let engine: Weak<Engine> = Arc::downgrade(&self.engine);
        drop(self);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            {
                let Some(engine) = engine.upgrade() else { return };
                record(&engine);
                if engine.lifecycle() == Lifecycle::Stopped {
                    return;
                }
            }
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { return },
                changed = phases.changed() => if changed.is_err() { return },
                _ = tick.tick() => {}
            }
        }
    }
}

/// A probe's labels, named as on `/metrics`.
fn probe_labels(name: &str, critical: bool) -> Vec<Label> {
    vec![
        Label::new("name", name.to_owned()),
        Label::new("critical", if critical { "true" } else { "false" }),
    ]
}

fn record(engine: &Engine) {
    if let Some(snapshot) = engine.latest() {
        let report = &snapshot.report;
        for figure in probe_figures() {
            for result in &report.probes {
                let labels = probe_labels(&result.name, result.critical);
                let value = figure.value(result);
                if figure.family.counter {
                    // Whole-number families are exact in f64.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    counter!(figure.facade, labels).absolute(value as u64);
                } else {
                    gauge!(figure.facade, labels).set(value);
                }
            }
        }
        gauge!(name(super::STATUS)).set(f64::from(overall_value(report.status)));
    }
    let lifecycle = engine.lifecycle();
    for state in LIFECYCLE {
        gauge!(name(super::LIFECYCLE), "state" => state.as_str()).set(f64::from(u8::from(state == lifecycle)));
    }
    let scheduling = engine.scheduling();
    for mode in SCHEDULING {
        gauge!(name(super::SCHEDULING), "mode" => mode.as_str()).set(f64::from(u8::from(mode == scheduling)));
    }
    counter!(name(super::ALERTS_DROPPED)).absolute(engine.alerts_dropped());
    for alerter in engine.deliveries() {
        for (outcome, value) in delivery_outcomes(&alerter) {
            counter!(name(super::DELIVERIES), "alerter" => alerter.alerter.clone(), "outcome" => outcome)
                .absolute(value);
        }
        gauge!(name(super::QUEUE), "alerter" => alerter.alerter).set(count(alerter.waiting));
    }
    if let Some(replica) = engine.replica() {
        let buffer = engine.write_buffer();
        counter!(name(super::WRITES_DROPPED), "replica" => replica.to_owned()).absolute(buffer.dropped);
        gauge!(name(super::WRITES_PENDING), "replica" => replica.to_owned()).set(count(buffer.pending));
    }
}

/// The facade's name of a process figure.
const fn name(figure: Named) -> &'static str {
    figure.2
}

#[allow(clippy::cast_precision_loss)] // counts stay far below 2^53
fn count(n: u64) -> f64 {
    n as f64
}
