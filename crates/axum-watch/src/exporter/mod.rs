//! The faces that hand the health figures to a metrics pipeline the
//! application already runs: its own `prometheus-client` registry (feature
//! `prometheus-client`), an OpenTelemetry `Meter` (feature `opentelemetry`)
//! or the `metrics` crate's recorder (feature `metrics`).
//!
//! Each reads what the engine already holds — the latest snapshot, the
//! lifecycle, the alert counters — and none of them runs a probe. The
//! figures are those of `GET /metrics`, one for one; this module names them
//! in each ecosystem's conventions beside their Prometheus family.

#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "opentelemetry")]
mod opentelemetry;
#[cfg(feature = "prometheus-client")]
mod prometheus;

#[cfg(feature = "metrics")]
pub use self::metrics::MetricsReporter;
#[cfg(feature = "opentelemetry")]
pub use self::opentelemetry::OpenTelemetryInstruments;
#[cfg(feature = "opentelemetry")]
pub(crate) use self::opentelemetry::register as register_opentelemetry;
#[cfg(feature = "prometheus-client")]
pub use self::prometheus::MetricsCollector;

#[cfg(any(feature = "opentelemetry", feature = "metrics"))]
pub(crate) use names::*;

/// The names of every figure outside Prometheus. Each exporter reads its
/// own columns, so a build with one of them leaves the other's unread.
#[cfg(any(feature = "opentelemetry", feature = "metrics"))]
#[cfg_attr(not(all(feature = "opentelemetry", feature = "metrics")), allow(dead_code))]
mod names {
    use crate::http::metrics::{FAMILIES, Family};
    use crate::model::ProbeResult;

    /// One probe figure as the other ecosystems name it.
    #[derive(Clone, Copy)]
    pub(crate) struct ProbeFigure {
        /// The `/metrics` family the value is read with.
        pub(crate) family: &'static Family,
        /// The OpenTelemetry instrument: dotted, in base units.
        pub(crate) otel: &'static str,
        /// Its unit in UCUM (`s`), an annotation (`{trip}`), or none.
        pub(crate) otel_unit: &'static str,
        /// The `metrics` facade's name: snake case, base units, counters in `_total`.
        pub(crate) facade: &'static str,
        /// Whether the facade describes it in seconds (else a count, or no unit).
        pub(crate) seconds: bool,
        pub(crate) help: &'static str,
        /// What the family's value is multiplied by: latency is measured in
        /// milliseconds and exported in seconds.
        pub(crate) scale: f64,
    }

    impl ProbeFigure {
        /// The figure's value for one result, in the exported unit.
        pub(crate) fn value(&self, result: &ProbeResult) -> f64 {
            (self.family.value)(result) * self.scale
        }

        /// Whether it counts something (an annotation unit such as `{trip}`).
        pub(crate) fn counts(&self) -> bool {
            self.otel_unit.starts_with('{')
        }
    }

    /// The names of the `/metrics` family `prometheus`, or `None` for a
    /// family not exported yet (a unit test fails then).
    fn probe_names(prometheus: &str) -> Option<(&'static str, &'static str, &'static str)> {
        // (OpenTelemetry name, its unit, facade name)
        Some(match prometheus {
            "probe_healthy" => ("health.probe.healthy", "", "probe_healthy"),
            "probe_degraded" => ("health.probe.degraded", "", "probe_degraded"),
            "probe_latency_ms" => ("health.probe.latency", "s", "probe_latency_seconds"),
            "probe_circuit_open" => ("health.probe.circuit.open", "", "probe_circuit_open"),
            "probe_circuit_consecutive_failures" => (
                "health.probe.circuit.consecutive_failures",
                "{failure}",
                "probe_circuit_consecutive_failures",
            ),
            "probe_circuit_trips_total" => ("health.probe.circuit.trips", "{trip}", "probe_circuit_trips_total"),
            "probe_no_data" => ("health.probe.no_data", "", "probe_no_data"),
            _ => return None,
        })
    }

    /// Every probe figure, in the order `/metrics` lists its families.
    pub(crate) fn probe_figures() -> impl Iterator<Item = ProbeFigure> {
        FAMILIES.iter().filter_map(|family| {
            let (otel, otel_unit, facade) = probe_names(family.name)?;
            let seconds = otel_unit == "s";
            Some(ProbeFigure {
                family,
                otel,
                otel_unit,
                facade,
                seconds,
                help: if seconds {
                    "Last observed probe check latency in seconds"
                } else {
                    family.help
                },
                scale: if seconds { 0.001 } else { 1.0 },
            })
        })
    }

    /// OpenTelemetry's attribute names, namespaced as its semantic
    /// conventions do.
    pub(crate) mod otel_attr {
        pub(crate) const PROBE: &str = "health.probe.name";
        pub(crate) const CRITICAL: &str = "health.probe.critical";
        pub(crate) const STATE: &str = "health.lifecycle.state";
        pub(crate) const MODE: &str = "health.scheduling.mode";
        pub(crate) const ALERTER: &str = "health.alerter.name";
        pub(crate) const OUTCOME: &str = "health.alert.outcome";
        pub(crate) const REPLICA: &str = "health.replica.id";
    }

    /// The process figures: (OpenTelemetry name, its unit, facade name, help).
    pub(crate) type Named = (&'static str, &'static str, &'static str, &'static str);

    pub(crate) const STATUS: Named = (
        "health.status",
        "",
        "health_status",
        "Overall status: 0 unhealthy, 1 degraded, 2 healthy",
    );
    pub(crate) const LIFECYCLE: Named = (
        "health.lifecycle",
        "",
        "health_lifecycle",
        "1 for the service's lifecycle state: starting, serving, draining or stopped",
    );
    pub(crate) const SCHEDULING: Named = (
        "health.scheduling",
        "",
        "health_scheduling_mode",
        "1 for how probes are scheduled: background, while_watched or on_request",
    );
    pub(crate) const ALERTS_DROPPED: Named = (
        "health.alert.dropped",
        "{alert}",
        "health_alerts_dropped_total",
        "Alerts dropped because an alerter's queue was full",
    );
    pub(crate) const DELIVERIES: Named = (
        "health.alert.delivery",
        "{alert}",
        "health_alert_deliveries_total",
        crate::http::metrics::DELIVERIES_HELP,
    );
    pub(crate) const QUEUE: Named = (
        "health.alert.queue",
        "{alert}",
        "health_alert_queue",
        crate::http::metrics::QUEUE_HELP,
    );
    pub(crate) const WRITES_DROPPED: Named = (
        "health.storage.write.dropped",
        "{write}",
        "health_storage_writes_dropped_total",
        "Writes to the shared storage dropped because its buffer was full",
    );
    pub(crate) const WRITES_PENDING: Named = (
        "health.storage.write.pending",
        "{write}",
        "health_storage_writes_pending",
        "Writes waiting for the shared storage to be reachable again",
    );

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_prometheus_family_has_its_names() {
            let named: Vec<&str> = probe_figures().map(|f| f.family.name).collect();
            let families: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
            assert_eq!(named, families);
        }

        #[test]
        fn names_follow_each_convention() {
            for figure in probe_figures() {
                assert!(figure.otel.starts_with("health.probe."), "{}", figure.otel);
                assert!(!figure.otel.contains("total") && !figure.otel.ends_with("_ms"));
                assert!(figure.facade.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
                assert_eq!(
                    figure.family.counter,
                    figure.facade.ends_with("_total"),
                    "{}",
                    figure.facade
                );
            }
            let latency = probe_figures().find(|f| f.family.name == "probe_latency_ms").unwrap();
            let mut result = ProbeResult::new("db", crate::Status::Healthy);
            result.latency_ms = 250.0;
            assert!((latency.value(&result) - 0.25).abs() < 1e-12);
            assert_eq!(
                (latency.otel, latency.otel_unit, latency.facade),
                ("health.probe.latency", "s", "probe_latency_seconds")
            );
        }
    }
}
