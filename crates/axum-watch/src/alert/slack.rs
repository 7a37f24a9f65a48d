//! [`SlackAlerter`]: transitions as Slack incoming-webhook messages.

use std::fmt;

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::client::{Endpoint, post_json};
use super::{AlertError, Alerter, facts};
use crate::model::{AlertRecord, Status};

/// Posts every transition to a Slack
/// [incoming webhook](https://api.slack.com/messaging/webhooks): a line of
/// text (service, probe, both statuses, the error and a dashboard link) and
/// a coloured attachment (green for a recovery to healthy, amber for
/// degraded, red for unhealthy) with every field of the record.
///
/// ```json
/// {"username":"axum-watch","channel":"#ops",
///  "text":":rotating_light: checkout/db is now unhealthy (was healthy): connection refused <https://checkout.example.com/health/dashboard|dashboard>",
///  "attachments":[{"color":"#a30200","title":"Open the dashboard","title_link":"https://checkout.example.com/health/dashboard",
///   "fields":[
///    {"title":"Service","value":"checkout","short":true},
///    {"title":"Replica","value":"web-1","short":true},
///    {"title":"Probe","value":"db","short":true},
///    {"title":"Status","value":"unhealthy","short":true},
///    {"title":"Previous","value":"healthy","short":true},
///    {"title":"Error","value":"connection refused","short":false},
///    {"title":"Critical","value":"yes","short":true},
///    {"title":"Previous since","value":"2026-03-29T09:00:00.000000Z (for 5h 22m 1s)","short":true},
///    {"title":"Time","value":"2026-03-29T14:22:01.843000Z","short":true},
///    {"title":"Alert id","value":"019d3a…","short":true}]}]}
/// ```
///
/// The webhook URL is the credential: it never appears in `Debug` or in
/// error text.
///
/// ```
/// use axum_watch::{HealthRegistry, alert::SlackAlerter};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let slack = SlackAlerter::new("https://hooks.slack.com/services/T000/B000/XXXX")?
///     .channel("#ops")
///     .username("payments-health");
/// assert_eq!(
///     format!("{slack:?}"),
///     r##"SlackAlerter { channel: Some("#ops"), username: "payments-health", url: "<redacted>" }"##
/// );
///
/// let registry = HealthRegistry::builder().alerter(slack).build()?;
/// # drop(registry);
/// # Ok(())
/// # }
/// ```
pub struct SlackAlerter {
    endpoint: Endpoint,
    channel: Option<String>,
    username: String,
}

impl SlackAlerter {
    /// An alerter posting to the Slack incoming webhook at `webhook_url`.
    ///
    /// # Errors
    ///
    /// A permanent [`AlertError`] when the URL is not an absolute `http` or
    /// `https` URL with a host; its text does not repeat the URL.
    pub fn new(webhook_url: impl AsRef<str>) -> Result<Self, AlertError> {
        Ok(Self {
            endpoint: Endpoint::parse(webhook_url.as_ref(), "Slack webhook")?,
            channel: None,
            username: "axum-watch".to_owned(),
        })
    }

    /// Posts to `channel` (`#ops`, or a user's ID) instead of the webhook's
    /// own channel, where the webhook allows it.
    #[must_use]
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// The name the messages appear under (default `axum-watch`).
    #[must_use]
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }

    /// The message for `alert`.
    fn payload(&self, alert: &AlertRecord) -> Value {
        let (emoji, color) = match alert.new_status {
            Status::Healthy => (":white_check_mark:", "#2eb886"),
            Status::Degraded => (":warning:", "#daa038"),
            Status::Unhealthy => (":rotating_light:", "#a30200"),
        };
        let mut text = format!("{emoji} {}", escape(&facts::headline(alert)));
        if let Some(error) = &alert.error {
            text.push_str(": ");
            text.push_str(&escape(error));
        }
        if let Some(url) = &alert.dashboard_url {
            text.push_str(&format!(" <{}|dashboard>", escape(url)));
        }
        let fields: Vec<Value> = facts::facts(alert)
            .into_iter()
            .map(|(title, value)| {
                let short = !matches!(title, "Error" | "Tags");
                json!({"title": title, "value": escape(&value), "short": short})
            })
            .collect();
        let mut message = serde_json::Map::new();
        message.insert("username".into(), self.username.clone().into());
        if let Some(channel) = &self.channel {
            message.insert("channel".into(), channel.clone().into());
        }
        message.insert("text".into(), text.into());
        let mut attachment = json!({"color": color, "fields": fields});
        if let Some(url) = &alert.dashboard_url {
            attachment["title"] = "Open the dashboard".into();
            attachment["title_link"] = url.clone().into();
        }
        message.insert("attachments".into(), json!([attachment]));
        Value::Object(message)
    }
}

/// Escapes the three characters Slack's message formatting reserves.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl fmt::Debug for SlackAlerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackAlerter")
            .field("channel", &self.channel)
            .field("username", &self.username)
            .field("url", &"<redacted>")
            .finish()
    }
}

impl Alerter for SlackAlerter {
    fn name(&self) -> &str {
        "slack"
    }

    async fn notify(&self, alert: &AlertRecord) -> Result<(), AlertError> {
        post_json("slack", &self.endpoint, &HeaderMap::new(), &self.payload(alert), &[]).await
    }
}
