//! [`OpsgenieAlerter`]: transitions as Opsgenie alerts, closed on recovery.

use std::fmt;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Map, Value, json};

use super::client::{Endpoint, post_json};
use super::{AlertError, Alerter, facts};
use crate::model::{AlertRecord, Status};

/// Where alerts go unless [`api_url`](OpsgenieAlerter::api_url) says otherwise.
const DEFAULT_API_URL: &str = "https://api.opsgenie.com";
/// Opsgenie's limits, in characters.
const MESSAGE_LIMIT: usize = 130;
const ALIAS_LIMIT: usize = 512;

/// Creates an Opsgenie alert (Alert API v2) when a probe gets worse and
/// closes it when the probe is healthy again.
///
/// The alias is `axum-watch:<service>:<probe>`, so Opsgenie keeps one open
/// alert per probe (a repeated create adds to its count); the record's
/// fields go into `details`, its tags into `tags`, the service into
/// `entity` and the replica into `source`. Priority: `P2` for a critical
/// probe going unhealthy, `P3` for a non-critical one, `P4` for degraded.
///
/// ```json
/// POST /v2/alerts   (Authorization: GenieKey …)
/// {"message":"checkout/db is now unhealthy (was healthy)","alias":"axum-watch:checkout:db",
///  "description":"connection refused\n\nhttps://checkout.example.com/health/dashboard",
///  "tags":["infra"],"entity":"checkout","source":"web-1","priority":"P2",
///  "details":{"Service":"checkout","Replica":"web-1","Probe":"db","Status":"unhealthy", "…":"…"}}
/// POST /v2/alerts/axum-watch:checkout:db/close?identifierType=alias
/// {"source":"web-1","note":"checkout/db is now healthy (was unhealthy)"}
/// ```
///
/// The API key never appears in `Debug` or in error text.
///
/// ```
/// use axum_watch::{HealthRegistry, alert::OpsgenieAlerter};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let opsgenie = OpsgenieAlerter::new("0a1b2c3d-0000-4000-8000-5e6f7a8b9c0d")
///     .api_url("https://api.eu.opsgenie.com");
/// assert!(!format!("{opsgenie:?}").contains("0a1b2c3d"));
///
/// let registry = HealthRegistry::builder().alerter(opsgenie).build()?;
/// # drop(registry);
/// # Ok(())
/// # }
/// ```
pub struct OpsgenieAlerter {
    api_key: String,
    /// A bad [`api_url`](Self::api_url) is reported by every send.
    endpoint: Result<Endpoint, AlertError>,
}

impl OpsgenieAlerter {
    /// An alerter for the Opsgenie API integration whose key is `api_key`,
    /// sending to `https://api.opsgenie.com`.
    #[must_use]
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            endpoint: Endpoint::parse(DEFAULT_API_URL, "Opsgenie API"),
        }
    }

    /// Sends to `url` instead (`https://api.eu.opsgenie.com` for the EU
    /// instance, a proxy, a test receiver). A URL that is not `http` or
    /// `https` makes every [`notify`](Alerter::notify) fail with a permanent
    /// error.
    #[must_use]
    pub fn api_url(mut self, url: impl AsRef<str>) -> Self {
        self.endpoint = Endpoint::parse(url.as_ref(), "Opsgenie API");
        self
    }

    fn alias(alert: &AlertRecord) -> String {
        let alias = match &alert.service {
            Some(service) => format!("axum-watch:{service}:{}", alert.probe),
            None => format!("axum-watch:{}", alert.probe),
        };
        alias.chars().take(ALIAS_LIMIT).collect()
    }

    /// The create request for a probe that got worse or is still failing.
    fn create(alert: &AlertRecord) -> Value {
        let priority = match alert.new_status {
            Status::Unhealthy if alert.critical => "P2",
            Status::Unhealthy => "P3",
            Status::Degraded | Status::Healthy => "P4",
        };
        let mut message = facts::headline(alert);
        if message.chars().count() > MESSAGE_LIMIT {
            message = message.chars().take(MESSAGE_LIMIT - 1).collect();
            message.push('…');
        }
        let description: Vec<&str> = [alert.error.as_deref(), alert.dashboard_url.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let details: Map<String, Value> = facts::facts(alert)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), Value::String(value)))
            .collect();
        let mut body = json!({
            "message": message,
            "alias": Self::alias(alert),
            "description": description.join("\n\n"),
            "tags": alert.tags,
            "details": details,
            "priority": priority,
        });
        if let Some(service) = &alert.service {
            body["entity"] = service.clone().into();
        }
        if let Some(replica) = &alert.replica {
            body["source"] = replica.clone().into();
        }
        body
    }
}

impl fmt::Debug for OpsgenieAlerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpsgenieAlerter")
            .field("api_key", &"<redacted>")
            .field("api_url", &"<redacted>")
            .finish()
    }
}

impl Alerter for OpsgenieAlerter {
    fn name(&self) -> &str {
        "opsgenie"
    }

    async fn notify(&self, alert: &AlertRecord) -> Result<(), AlertError> {
        let endpoint = self.endpoint.as_ref().map_err(Clone::clone)?;
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(&format!("GenieKey {}", self.api_key))
            .map_err(|_| AlertError::permanent("the Opsgenie API key is not valid in an HTTP header"))?;
        key.set_sensitive(true);
        headers.insert(AUTHORIZATION, key);
        let secrets = [self.api_key.as_str()];
        if alert.new_status == Status::Healthy {
            let alias = Self::alias(alert);
            let close = endpoint.with_path(&["v2", "alerts", &alias, "close"], Some("identifierType=alias"));
            let mut body = json!({"note": facts::headline(alert)});
            if let Some(replica) = &alert.replica {
                body["source"] = replica.clone().into();
            }
            post_json("opsgenie", &close, &headers, &body, &secrets).await
        } else {
            let create = endpoint.with_path(&["v2", "alerts"], None);
            post_json("opsgenie", &create, &headers, &Self::create(alert), &secrets).await
        }
    }
}
