//! The health metrics inside an application's own `prometheus-client`
//! registry (feature `prometheus-client`), for services that already expose
//! one scrape endpoint.
//!
//! The collector reports the latest report the registry produced (it never
//! runs probes during a scrape, which is synchronous); the poll loop,
//! `/health/*` requests or [`HealthRegistry::run_all`](crate::HealthRegistry::run_all) keep it fresh.
//!
//! ```
//! use axum_watch::{probe, HealthRegistry, Outcome};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let health = HealthRegistry::builder()
//!     .add(probe::from_fn("db", || async { Ok(Outcome::healthy()) }))
//!     .build()
//!     .unwrap();
//! health.run_all().await;
//!
//! let mut metrics = prometheus_client::registry::Registry::default();
//! metrics.register_collector(Box::new(health.metrics_collector()));
//! let mut text = String::new();
//! prometheus_client::encoding::text::encode(&mut text, &metrics).unwrap();
//! assert!(text.contains(r#"probe_healthy{name="db",critical="true"} 1"#));
//! # }
//! ```

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::engine::Owner;
use crate::http::metrics::{DELIVERIES_HELP, FAMILIES, QUEUE_HELP, REFUSED_HELP, delivery_outcomes, overall_value};

/// A `prometheus-client` [`Collector`] of the registry's metrics; made by
/// [`HealthRegistry::metrics_collector`](crate::HealthRegistry::metrics_collector).
#[derive(Debug, Clone)]
pub struct MetricsCollector {
    engine: Arc<Owner>,
}

impl MetricsCollector {
    pub(crate) fn new(engine: Arc<Owner>) -> Self {
        Self { engine }
    }
}

impl Collector for MetricsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let snapshot = self.engine.latest();
        let probes = snapshot.as_ref().map_or(&[][..], |s| &s.report.probes[..]);
        for family in FAMILIES {
            // The encoder adds `_total` to counters itself.
            let name = family.name.trim_end_matches("_total");
            let kind = if family.counter {
                MetricType::Counter
            } else {
                MetricType::Gauge
            };
            let mut metric = encoder.encode_descriptor(name, family.help, None, kind)?;
            for result in probes {
                let critical = if result.critical { "true" } else { "false" };
                let labels = [("name", result.name.as_str()), ("critical", critical)];
                let value = (family.value)(result);
                let mut sample = metric.encode_family(&labels)?;
                // Whole-number families are exact in f64 and shown as integers.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                match (family.counter, family.float) {
                    (true, _) => sample.encode_counter::<NoLabelSet, _, u64>(&(value as u64), None)?,
                    (false, true) => sample.encode_gauge(&value)?,
                    (false, false) => sample.encode_gauge(&(value as i64))?,
                }
            }
        }
        if let Some(snapshot) = &snapshot {
            let overall = i64::from(overall_value(snapshot.report.status));
            let mut metric = encoder.encode_descriptor(
                "health_status",
                "Overall status: 0 unhealthy, 1 degraded, 2 healthy",
                None,
                MetricType::Gauge,
            )?;
            metric.encode_gauge(&overall)?;
        }
        let mut dropped = encoder.encode_descriptor(
            "health_alerts_dropped",
            "Alerts dropped because an alerter's queue was full",
            None,
            MetricType::Counter,
        )?;
        dropped.encode_counter::<NoLabelSet, _, u64>(&self.engine.alerts_dropped(), None)?;
        if let Some(refused) = self.engine.probes_refused() {
            let mut metric =
                encoder.encode_descriptor("health_probes_refused", REFUSED_HELP, None, MetricType::Counter)?;
            for (reason, count) in refused {
                metric
                    .encode_family(&[("reason", reason.as_str())])?
                    .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
            }
        }
        let deliveries = self.engine.deliveries();
        if !deliveries.is_empty() {
            let mut metric =
                encoder.encode_descriptor("health_alert_deliveries", DELIVERIES_HELP, None, MetricType::Counter)?;
            for alerter in &deliveries {
                for (outcome, value) in delivery_outcomes(alerter) {
                    let labels = [("alerter", alerter.alerter.as_str()), ("outcome", outcome)];
                    metric
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
                }
            }
            let mut metric = encoder.encode_descriptor("health_alert_queue", QUEUE_HELP, None, MetricType::Gauge)?;
            for alerter in &deliveries {
                let labels = [("alerter", alerter.alerter.as_str())];
                let waiting = i64::try_from(alerter.waiting).unwrap_or(i64::MAX);
                metric.encode_family(&labels)?.encode_gauge(&waiting)?;
            }
        }
        Ok(())
    }
}
