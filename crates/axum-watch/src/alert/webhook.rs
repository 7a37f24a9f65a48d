//! [`WebhookAlerter`]: every transition as JSON to a URL of your own.

use std::fmt;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::client::{Endpoint, post_json};
use super::{AlertError, Alerter};
use crate::model::AlertRecord;

/// Posts every transition to a URL as the JSON of its [`AlertRecord`]:
///
/// ```json
/// {"probe":"db","old_status":"healthy","new_status":"unhealthy","timestamp":"2026-03-29T14:22:01.843000Z",
///  "replica":"web-1","id":"019d3a0c4d2b000000a1b2c3d4","service":"checkout","critical":true,
///  "tags":["infra"],"error":"connection refused","since":"2026-03-29T09:00:00.000000Z",
///  "duration_ms":19321843,"dashboard_url":"https://checkout.example.com/health/dashboard"}
/// ```
///
/// or as whatever [`body`](Self::body) makes of it. Every request carries
/// the record's id in an `Idempotency-Key` header: a retry after a timeout
/// and a redelivery send the same key, so a receiver can drop the duplicate.
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
    body: Option<Body>,
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
            body: None,
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

type Body = Arc<dyn Fn(&AlertRecord) -> Value + Send + Sync>;

impl WebhookAlerter {
    /// Sends what `make` returns for each record instead of the record
    /// itself: the shape a receiver expects (an incident tool's own API, a
    /// chat service without a built-in alerter).
    ///
    /// ```
    /// use axum_watch::alert::WebhookAlerter;
    /// use serde_json::json;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let webhook = WebhookAlerter::new("https://chat.example.com/hooks/ops")?.body(|alert| {
    ///     json!({
    ///         "text": alert.summary(),
    ///         "severity": if alert.is_worse() { "high" } else { "info" },
    ///         "link": alert.dashboard_url,
    ///     })
    /// });
    /// # drop(webhook);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn body(mut self, make: impl Fn(&AlertRecord) -> Value + Send + Sync + 'static) -> Self {
        self.body = Some(Arc::new(make));
        self
    }
}

impl fmt::Debug for WebhookAlerter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("WebhookAlerter")
            .field("url", &"<redacted>")
            .field("headers", &names)
            .field("custom_body", &self.body.is_some())
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
        let mut headers = self.headers.clone();
        if let Ok(key) = HeaderValue::from_str(&alert.id)
            && !alert.id.is_empty()
        {
            headers.insert(HeaderName::from_static("idempotency-key"), key);
        }
        match &self.body {
            Some(make) => post_json("webhook", &self.endpoint, &headers, &make(alert), &[]).await,
            None => post_json("webhook", &self.endpoint, &headers, alert, &[]).await,
        }
    }
}
