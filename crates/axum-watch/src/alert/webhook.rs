//! [`WebhookAlerter`]: every transition as JSON to a URL of your own.

use std::fmt;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::client::{Endpoint, post_json};
use super::{AlertError, Alerter};
use crate::model::AlertRecord;

/// Posts every transition to a URL as the JSON of its [`AlertRecord`]:
///
/// ```json
/// {"probe":"db","old_status":"healthy","new_status":"unhealthy","timestamp":"2026-03-29T14:22:01.843000Z"}
/// ```
///
/// Any 2xx answer is success; connection errors, timeouts, 5xx, 408 and 429
/// are retried by the dispatcher, other answers are not. Redirects are not
/// followed. The URL, header values and anything secret stay out of `Debug`
/// and of error text.
///
/// ```
/// use axum_watch::{HealthRegistry, alert::WebhookAlerter};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let webhook = WebhookAlerter::new("https://alerts.example.com/hooks/health")?
///     .header("Authorization", "Bearer s3cret");
/// assert!(!format!("{webhook:?}").contains("s3cret"));
///
/// let registry = HealthRegistry::builder().alerter(webhook).build()?;
/// # drop(registry);
/// # Ok(())
/// # }
/// ```
///
/// [`HealthRegistryBuilder::webhook_url`](crate::HealthRegistryBuilder::webhook_url)
/// is a shorthand for a webhook without extra headers.
pub struct WebhookAlerter {
    endpoint: Endpoint,
    headers: HeaderMap,
    /// The first invalid [`header`](Self::header), reported by every send.
    invalid_header: Option<AlertError>,
}

impl WebhookAlerter {
    /// A webhook posting to `url`, which must be `http` or `https` (local
    /// and loopback hosts are fine).
    ///
    /// # Errors
    ///
    /// A permanent [`AlertError`] when `url` is not an absolute `http` or
    /// `https` URL with a host; its text does not repeat the URL.
    pub fn new(url: impl AsRef<str>) -> Result<Self, AlertError> {
        Ok(Self {
            endpoint: Endpoint::parse(url.as_ref(), "webhook")?,
            headers: HeaderMap::new(),
            invalid_header: None,
        })
    }

    /// Adds a header to every request (a repeated name sends every value).
    /// Values are treated as secrets: they never appear in `Debug` or errors.
    ///
    /// A name or value that is not valid in HTTP makes every
    /// [`notify`](Alerter::notify) fail with a permanent error.
    #[must_use]
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let parsed = match HeaderName::from_bytes(name.as_ref().as_bytes()) {
            Err(_) => Err(AlertError::permanent("invalid webhook header name")),
            Ok(name) => match HeaderValue::from_str(value.as_ref()) {
                Ok(value) => Ok((name, value)),
                Err(_) => Err(AlertError::permanent(format!(
                    "invalid value for the webhook header {name:?}"
                ))),
            },
        };
        match parsed {
            Ok((name, mut value)) => {
                value.set_sensitive(true);
                self.headers.append(name, value);
            }
            Err(e) => {
                self.invalid_header.get_or_insert(e);
            }
        }
        self
    }
}

impl fmt::Debug for WebhookAlerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("WebhookAlerter")
            .field("url", &"<redacted>")
            .field("headers", &names)
            .finish()
    }
}

impl Alerter for WebhookAlerter {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn notify(&self, alert: &AlertRecord) -> Result<(), AlertError> {
        if let Some(e) = &self.invalid_header {
            return Err(e.clone());
        }
        post_json("webhook", &self.endpoint, &self.headers, alert, &[]).await
    }
}
