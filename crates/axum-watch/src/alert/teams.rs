//! [`TeamsAlerter`]: transitions as Microsoft Teams cards.

use std::fmt;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::client::{Endpoint, post_json};
use super::{AlertError, Alerter, facts};
use crate::model::{AlertRecord, Status};

/// Posts every transition to a Microsoft Teams webhook.
///
/// By default it sends a legacy connector `MessageCard`:
///
/// ```json
/// {"@type":"MessageCard","@context":"https://schema.org/extensions","themeColor":"A30200",
///  "summary":"checkout/db is now unhealthy (was healthy)",
///  "sections":[{"activityTitle":"checkout/db is now unhealthy (was healthy)","facts":[
///    {"name":"Service","value":"checkout"},{"name":"Replica","value":"web-1"},
///    {"name":"Probe","value":"db"},{"name":"Status","value":"unhealthy"},
///    {"name":"Previous","value":"healthy"},{"name":"Error","value":"connection refused"},
///    {"name":"Critical","value":"yes"},{"name":"Previous since","value":"2026-03-29T09:00:00.000000Z (for 5h 22m 1s)"},
///    {"name":"Time","value":"2026-03-29T14:22:01.843000Z"},{"name":"Alert id","value":"019d3a…"}]}],
///  "potentialAction":[{"@type":"OpenUri","name":"Open the dashboard",
///    "targets":[{"os":"default","uri":"https://checkout.example.com/health/dashboard"}]}]}
/// ```
///
/// The facts are every field of the [`AlertRecord`] that is set; the
/// dashboard action appears when the registry has a
/// [`public_url`](crate::HealthRegistryBuilder::public_url).
///
/// With [`adaptive_card`](Self::adaptive_card) it sends the message a Teams
/// Workflows ("Post to a channel when a webhook request is received") webhook
/// expects: an Adaptive Card 1.4 with a `TextBlock` and a `FactSet`.
///
/// The theme colour is green (`2EB886`) for a recovery to healthy, amber
/// (`DAA038`) for degraded and red (`A30200`) for unhealthy. The webhook URL
/// is the credential: it never appears in `Debug` or in error text.
///
/// ```
/// use axum_watch::{HealthRegistry, alert::TeamsAlerter};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let teams = TeamsAlerter::new("https://example.webhook.office.com/workflows/abc?sig=s3cret")?.adaptive_card();
/// assert!(!format!("{teams:?}").contains("s3cret"));
///
/// let registry = HealthRegistry::builder().alerter(teams).build()?;
/// # drop(registry);
/// # Ok(())
/// # }
/// ```
pub struct TeamsAlerter {
    endpoint: Endpoint,
    adaptive: bool,
}

impl TeamsAlerter {
    /// An alerter posting `MessageCard`s to the Teams webhook at
    /// `webhook_url`.
    ///
    /// # Errors
    ///
    /// A permanent [`AlertError`] when the URL is not an absolute `http` or
    /// `https` URL with a host; its text does not repeat the URL.
    pub fn new(webhook_url: impl AsRef<str>) -> Result<Self, AlertError> {
        Ok(Self {
            endpoint: Endpoint::parse(webhook_url.as_ref(), "Teams webhook")?,
            adaptive: false,
        })
    }

    /// Sends Adaptive Cards in the Workflows message format instead of
    /// `MessageCard`s.
    #[must_use]
    pub fn adaptive_card(mut self) -> Self {
        self.adaptive = true;
        self
    }

    /// The message for `alert`, in the configured format.
    fn payload(&self, alert: &AlertRecord) -> Value {
        let headline = facts::headline(alert);
        let facts = facts::facts(alert);
        if self.adaptive {
            let color = match alert.new_status {
                Status::Healthy => "Good",
                Status::Degraded => "Warning",
                Status::Unhealthy => "Attention",
            };
            let facts: Vec<Value> = facts
                .into_iter()
                .map(|(title, value)| json!({"title": title, "value": value}))
                .collect();
            let mut card = json!({
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": headline, "weight": "Bolder", "color": color, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
            });
            if let Some(url) = &alert.dashboard_url {
                card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open the dashboard", "url": url}]);
            }
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "content": card,
                }],
            })
        } else {
            let theme = match alert.new_status {
                Status::Healthy => "2EB886",
                Status::Degraded => "DAA038",
                Status::Unhealthy => "A30200",
            };
            let facts: Vec<Value> = facts
                .into_iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "themeColor": theme,
                "summary": headline,
                "sections": [{
                    "activityTitle": headline,
                    "facts": facts,
                }],
            });
            if let Some(url) = &alert.dashboard_url {
                card["potentialAction"] = json!([{
                    "@type": "OpenUri",
                    "name": "Open the dashboard",
                    "targets": [{"os": "default", "uri": url}],
                }]);
            }
            card
        }
    }
}

impl fmt::Debug for TeamsAlerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = if self.adaptive { "AdaptiveCard" } else { "MessageCard" };
        f.debug_struct("TeamsAlerter")
            .field("format", &format)
            .field("url", &"<redacted>")
            .finish()
    }
}

impl Alerter for TeamsAlerter {
    fn name(&self) -> &str {
        "teams"
    }

    async fn notify(&self, alert: &AlertRecord) -> Result<(), AlertError> {
        post_json("teams", &self.endpoint, &HeaderMap::new(), &self.payload(alert), &[]).await
    }
}
