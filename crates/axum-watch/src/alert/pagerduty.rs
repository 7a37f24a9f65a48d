//! [`PagerDutyAlerter`]: transitions as PagerDuty Events API v2 events.

use std::fmt;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::client::{Endpoint, post_json};
use super::{AlertError, Alerter, facts};
use crate::model::{AlertRecord, Status};

/// Where events go unless [`events_url`](PagerDutyAlerter::events_url) says
/// otherwise.
const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Sends every transition to the PagerDuty
/// [Events API v2](https://developer.pagerduty.com/docs/events-api-v2/trigger-events/)
/// of an integration's routing key.
///
/// A critical probe going unhealthy triggers an alert with severity
/// `critical` (`error` for a non-critical one), going degraded one with
/// severity `warning`, and recovering to healthy resolves it. The dedup key
/// is `axum-watch:<service>:<probe>`, so each probe has at most one open
/// alert, and its custom details are the whole [`AlertRecord`]:
///
/// ```json
/// {"routing_key":"…","event_action":"trigger","dedup_key":"axum-watch:checkout:db",
///  "payload":{"summary":"checkout/db is now unhealthy (was healthy): connection refused",
///    "source":"web-1","severity":"critical","timestamp":"2026-03-29T14:22:01.843000Z",
///    "component":"db","group":"checkout",
///    "custom_details":{"probe":"db","old_status":"healthy","new_status":"unhealthy", "…": "…"}},
///  "links":[{"href":"https://checkout.example.com/health/dashboard","text":"Dashboard"}]}
/// {"routing_key":"…","event_action":"resolve","dedup_key":"axum-watch:checkout:db"}
/// ```
///
/// The routing key never appears in `Debug` or in error text.
///
/// ```
/// use axum_watch::{HealthRegistry, alert::PagerDutyAlerter};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pagerduty = PagerDutyAlerter::new("R0UT1NGKEY0000000000000000000000").source("checkout-api");
/// assert!(!format!("{pagerduty:?}").contains("R0UT1NGKEY"));
///
/// let registry = HealthRegistry::builder().alerter(pagerduty).build()?;
/// # drop(registry);
/// # Ok(())
/// # }
/// ```
pub struct PagerDutyAlerter {
    routing_key: String,
    /// A bad [`events_url`](Self::events_url) is reported by every send.
    endpoint: Result<Endpoint, AlertError>,
    /// Set by [`source`](Self::source); else the record's replica.
    source: Option<String>,
}

impl PagerDutyAlerter {
    /// An alerter for the integration whose routing (integration) key is
    /// `routing_key`, sending to `https://events.pagerduty.com/v2/enqueue`.
    #[must_use]
    pub fn new(routing_key: impl Into<String>) -> Self {
        Self {
            routing_key: routing_key.into(),
            endpoint: Endpoint::parse(DEFAULT_EVENTS_URL, "PagerDuty events"),
            source: None,
        }
    }

    /// Sends to `url` instead of the public endpoint (an EU service region, a
    /// proxy, a test receiver). A URL that is not `http` or `https` makes
    /// every [`notify`](Alerter::notify) fail with a permanent error.
    #[must_use]
    pub fn events_url(mut self, url: impl AsRef<str>) -> Self {
        self.endpoint = Endpoint::parse(url.as_ref(), "PagerDuty events");
        self
    }

    /// The `source` of triggered events: the affected system, shown in
    /// PagerDuty (default: the replica that saw the change, which is
    /// `<hostname>-<pid>` unless a shared storage names it).
    #[must_use]
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The event for `alert`.
    fn payload(&self, alert: &AlertRecord) -> Value {
        let dedup_key = match &alert.service {
            Some(service) => format!("axum-watch:{service}:{}", alert.probe),
            None => format!("axum-watch:{}", alert.probe),
        };
        let severity = match alert.new_status {
            Status::Healthy => {
                return json!({
                    "routing_key": self.routing_key,
                    "event_action": "resolve",
                    "dedup_key": dedup_key,
                });
            }
            Status::Degraded => "warning",
            Status::Unhealthy if alert.critical => "critical",
            Status::Unhealthy => "error",
        };
        let mut summary = facts::headline(alert);
        if let Some(error) = &alert.error {
            summary.push_str(": ");
            summary.push_str(error);
        }
        let source = self
            .source
            .clone()
            .or_else(|| alert.replica.clone())
            .unwrap_or_else(default_source);
        let mut event = json!({
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": truncate(summary, SUMMARY_LIMIT),
                "source": source,
                "severity": severity,
                "timestamp": alert.timestamp.to_string(),
                "component": alert.probe,
                "custom_details": alert,
            },
        });
        if let Some(service) = &alert.service {
            event["payload"]["group"] = service.clone().into();
        }
        if let Some(url) = &alert.dashboard_url {
            event["links"] = json!([{"href": url, "text": "Dashboard"}]);
        }
        event
    }
}

/// PagerDuty's limit on an event summary, in characters.
const SUMMARY_LIMIT: usize = 1024;

/// `text`, cut to `limit` characters with an ellipsis when longer.
fn truncate(text: String, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text;
    }
    let mut cut: String = text.chars().take(limit - 1).collect();
    cut.push('…');
    cut
}

/// This host's name, from the environment or the kernel, else `axum-watch`.
fn default_source() -> String {
    let from_env = ["HOSTNAME", "COMPUTERNAME"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok());
    let from_files = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .into_iter()
        .filter_map(|path| std::fs::read_to_string(path).ok());
    from_env
        .chain(from_files)
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "axum-watch".to_owned())
}

impl fmt::Debug for PagerDutyAlerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyAlerter")
            .field("source", &self.source)
            .field("routing_key", &"<redacted>")
            .field("events_url", &"<redacted>")
            .finish()
    }
}

impl Alerter for PagerDutyAlerter {
    fn name(&self) -> &str {
        "pagerduty"
    }

    async fn notify(&self, alert: &AlertRecord) -> Result<(), AlertError> {
        let endpoint = self.endpoint.as_ref().map_err(Clone::clone)?;
        post_json(
            "pagerduty",
            endpoint,
            &HeaderMap::new(),
            &self.payload(alert),
            &[&self.routing_key],
        )
        .await
    }
}
