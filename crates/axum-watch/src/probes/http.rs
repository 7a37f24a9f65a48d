//! [`HttpProbe`]: an active HTTP(S) check — a request, its status, optionally
//! its body, and the days left on the server's TLS certificate.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::tls::TlsInfo;
use reqwest::{Method, Url};

use super::{ConfigError, ConfigErrorKind};
use crate::model::Status;
use crate::probe::{Outcome, Probe, ProbeError, error_chain};
use crate::tls::{TlsOptions, Verification};
use tokio_rustls::rustls::ClientConfig;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_STATUS: RangeInclusive<u16> = 200..=399;
/// Bytes of the body read for a body check; the rest is ignored.
const BODY_LIMIT: usize = 1024 * 1024;
const SECONDS_PER_DAY: i64 = 86_400;

type BodyPredicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
enum BodyCheck {
    Contains(String),
    Predicate(BodyPredicate),
}

impl BodyCheck {
    fn passes(&self, body: &str) -> bool {
        match self {
            Self::Contains(text) => body.contains(text.as_str()),
            Self::Predicate(predicate) => predicate(body),
        }
    }

    fn failure(&self) -> String {
        match self {
            Self::Contains(text) => format!("response body does not contain {text:?}"),
            Self::Predicate(_) => "response body check failed".to_owned(),
        }
    }
}

/// Requests a URL and checks the answer: its status, optionally its body,
/// and for `https` the days left on the server's certificate.
///
/// Healthy when the request completes within the timeout (5 s by default,
/// connect included), the status is in the expected range (200–399 by
/// default; redirects are not followed) and the body check, if any, passes.
/// With [`warn_cert_days`](HttpProbeBuilder::warn_cert_days) set, a
/// certificate that expires sooner is degraded; an expired one (reachable
/// only with [`danger_accept_invalid_certs`](HttpProbeBuilder::danger_accept_invalid_certs))
/// is unhealthy.
///
/// Default name `http:{host}` (`http:{host}:{port}` with an explicit port).
/// Details: `url` (credentials masked), `method`, `status_code`,
/// `response_ms`, and for `https` `cert_days_remaining` (whole days, floor)
/// and `cert_not_after`. A password in the URL's user info is sent as HTTP
/// basic auth and never appears in details, errors or `Debug` output; header
/// values are never shown.
///
/// ```
/// use std::time::Duration;
/// use axum_watch::{probes::HttpProbe, HealthRegistry, Probe, ProbeExt};
///
/// let api = HttpProbe::builder("https://api.example.com/health")
///     .expect_status(200..=299)
///     .expect_body_contains("\"status\":\"ok\"")
///     .header("x-probe", "axum-watch")
///     .timeout(Duration::from_secs(3))
///     .warn_cert_days(14)
///     .build()
///     .unwrap();
/// assert_eq!(api.name(), "http:api.example.com");
/// let registry = HealthRegistry::builder().add(api.with_name("api")).build().unwrap();
/// # let _ = registry;
/// ```
#[derive(Clone)]
pub struct HttpProbe {
    name: String,
    client: reqwest::Client,
    url: Url,
    shown_url: String,
    method: Method,
    headers: HeaderMap,
    expected: RangeInclusive<u16>,
    body: Option<BodyCheck>,
    timeout: Duration,
    warn_cert_days: Option<u32>,
    https: bool,
}

impl fmt::Debug for HttpProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProbe")
            .field("name", &self.name)
            .field("url", &self.shown_url)
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("expected", &self.expected)
            .field("body_check", &self.body.is_some())
            .field("timeout", &self.timeout)
            .field("warn_cert_days", &self.warn_cert_days)
            .finish_non_exhaustive()
    }
}

impl HttpProbe {
    /// A `GET` of `url` with every default; shorthand for
    /// `HttpProbe::builder(url).build()`.
    ///
    /// # Errors
    /// A [`ConfigError`] when `url` is not an absolute `http` or `https` URL
    /// with a host.
    pub fn new(url: impl AsRef<str>) -> Result<Self, ConfigError> {
        Self::builder(url).build()
    }

    /// Starts configuring a probe of `url`.
    pub fn builder(url: impl AsRef<str>) -> HttpProbeBuilder {
        HttpProbeBuilder {
            url: url.as_ref().trim().to_owned(),
            method: Method::GET,
            headers: Vec::new(),
            expected: DEFAULT_STATUS,
            body: None,
            timeout: DEFAULT_TIMEOUT,
            root_certificates: Vec::new(),
            accept_invalid_certs: false,
            tls: None,
            warn_cert_days: None,
        }
    }
}

/// Configures an [`HttpProbe`]; made by [`HttpProbe::builder`].
#[must_use]
pub struct HttpProbeBuilder {
    url: String,
    method: Method,
    headers: Vec<(String, String)>,
    expected: RangeInclusive<u16>,
    body: Option<BodyCheck>,
    timeout: Duration,
    root_certificates: Vec<Vec<u8>>,
    accept_invalid_certs: bool,
    tls: Option<TlsOptions>,
    warn_cert_days: Option<u32>,
}

impl fmt::Debug for HttpProbeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProbeBuilder")
            .field("url", &crate::redact(&self.url))
            .field("method", &self.method)
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("expected", &self.expected)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpProbeBuilder {
    /// The request method (default `GET`).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Adds a request header. Its value is never shown.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The statuses that count as healthy (default `200..=399`).
    pub fn expect_status(mut self, statuses: RangeInclusive<u16>) -> Self {
        self.expected = statuses;
        self
    }

    /// Requires the body (its first MiB, decoded as UTF-8 with replacement)
    /// to contain `text`.
    pub fn expect_body_contains(mut self, text: impl Into<String>) -> Self {
        self.body = Some(BodyCheck::Contains(text.into()));
        self
    }

    /// Requires `predicate` to accept the body (its first MiB, decoded as
    /// UTF-8 with replacement). Replaces `expect_body_contains`.
    pub fn expect_body<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        self.body = Some(BodyCheck::Predicate(Arc::new(predicate)));
        self
    }

    /// Limit for the whole request, connect and body included (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also trusts this PEM root certificate (or bundle), on top of the
    /// system's roots: for a private CA or a self-signed server.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Accepts any server certificate, even expired or self-signed ones.
    /// Only for tests and for watching expiry on hosts you cannot trust
    /// otherwise: the connection is then open to interception.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// TLS with the [`TlsOptions`] every probe takes: extra roots, the
    /// system's roots or not, a client certificate for mutual TLS, or no
    /// verification. [`root_certificate_pem`](Self::root_certificate_pem)
    /// and [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs)
    /// given here too add to it. A
    /// [`server_name`](TlsOptions::server_name) is refused at build: the
    /// certificate is checked for the URL's host.
    ///
    /// ```
    /// use axum_watch::probes::HttpProbe;
    /// use axum_watch::tls::TlsOptions;
    ///
    /// let probe = HttpProbe::builder("https://internal.example/healthz")
    ///     .tls_options(TlsOptions::new().system_roots(true))
    ///     .build()
    ///     .unwrap();
    /// # drop(probe);
    /// ```
    pub fn tls_options(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Degraded when the server's certificate expires in fewer than `days`
    /// days (default: never).
    pub fn warn_cert_days(mut self, days: u32) -> Self {
        self.warn_cert_days = Some(days);
        self
    }

    /// Validates the options and builds the probe with its own HTTP client.
    ///
    /// # Errors
    /// A URL that is not absolute `http`/`https` with a host, an invalid
    /// header name or value, an empty status range, an unreadable
    /// certificate, or a client that cannot be built: a [`ConfigError`] that
    /// never repeats the URL's password or a header value.
    pub fn build(self) -> Result<HttpProbe, ConfigError> {
        let invalid = |kind, option, what: String| ConfigError::new(kind, "HttpProbe", option, what);
        let because = |kind, option, context: &str, error: &(dyn std::error::Error + 'static)| {
            ConfigError::because(kind, "HttpProbe", option, context, error)
        };
        let url = Url::parse(&self.url)
            .map_err(|e| because(ConfigErrorKind::InvalidUrl, "url", "invalid HTTP probe URL", &e))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(invalid(
                    ConfigErrorKind::UnsupportedScheme,
                    "url",
                    format!("invalid HTTP probe URL: the scheme must be http or https, not {other}"),
                ));
            }
        };
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
            return Err(invalid(
                ConfigErrorKind::InvalidUrl,
                "url",
                "invalid HTTP probe URL: it has no host".to_owned(),
            ));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = match url.port() {
            Some(port) => format!("http:{host}:{port}"),
            None => format!("http:{host}"),
        };
        if self.expected.is_empty() {
            return Err(invalid(
                ConfigErrorKind::InvalidOption,
                "expect_status",
                format!(
                    "invalid expected status range {}..={}: it is empty",
                    self.expected.start(),
                    self.expected.end()
                ),
            ));
        }

        let mut headers = HeaderMap::new();
        for (key, value) in &self.headers {
            let key = HeaderName::from_bytes(key.as_bytes()).map_err(|_| {
                invalid(
                    ConfigErrorKind::InvalidOption,
                    "header",
                    format!("invalid header name {key:?}"),
                )
            })?;
            // The value's own error would say nothing more, and the value is a secret.
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                invalid(
                    ConfigErrorKind::InvalidOption,
                    "header",
                    format!("the value of header {key} is invalid: it must be visible ASCII"),
                )
            })?;
            value.set_sensitive(true);
            headers.append(key, value);
        }

        let mut client = reqwest::Client::builder()
            .user_agent(concat!("axum-watch/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .tls_info(true);
        if let Some(mut tls) = self.tls {
            if tls.server_name_override().is_some() {
                return Err(invalid(
                    ConfigErrorKind::InvalidOption,
                    "tls_options",
                    "server_name is not supported: the certificate is checked for the URL's host".to_owned(),
                ));
            }
            for pem in &self.root_certificates {
                tls = tls.root_certificate_pem(pem)?;
            }
            if self.accept_invalid_certs {
                tls = tls.danger_accept_invalid_certs(true);
            }
            let config = tls
                .client_config(Verification::Full)
                .map_err(|e| invalid(ConfigErrorKind::InvalidCertificate, "tls_options", e))?;
            client = client.use_preconfigured_tls(ClientConfig::clone(&config));
        } else {
            for pem in &self.root_certificates {
                let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                    because(
                        ConfigErrorKind::InvalidCertificate,
                        "root_certificate_pem",
                        "invalid root certificate",
                        &e,
                    )
                })?;
                if certs.is_empty() {
                    return Err(invalid(
                        ConfigErrorKind::InvalidCertificate,
                        "root_certificate_pem",
                        "invalid root certificate: no PEM certificate found".to_owned(),
                    ));
                }
                client = client.tls_certs_merge(certs);
            }
            if self.accept_invalid_certs {
                client = client.tls_danger_accept_invalid_certs(true);
            }
        }
        let client = client.build().map_err(|e| {
            because(
                ConfigErrorKind::Client,
                "client",
                "the HTTP client could not be built",
                &e,
            )
        })?;

        Ok(HttpProbe {
            name,
            client,
            shown_url: crate::redact(url.as_str()).into_owned(),
            url,
            method: self.method,
            headers,
            expected: self.expected,
            body: self.body,
            timeout: self.timeout,
            warn_cert_days: self.warn_cert_days,
            https,
        })
    }
}

/// `notAfter` of a DER certificate, in seconds since the epoch.
fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

impl HttpProbe {
    fn outcome(&self, status: Status, error: Option<String>) -> Outcome {
        let outcome = Outcome::new(status)
            .detail("url", self.shown_url.clone())
            .detail("method", self.method.as_str());
        match error {
            Some(error) => outcome.error_text(error),
            None => outcome,
        }
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<String, reqwest::Error> {
        let mut body = Vec::new();
        while body.len() < BODY_LIMIT {
            match response.chunk().await? {
                Some(chunk) => body.extend_from_slice(&chunk[..chunk.len().min(BODY_LIMIT - body.len())]),
                None => break,
            }
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    fn request_error(&self, error: reqwest::Error) -> String {
        let error = error.without_url();
        if error.is_timeout() {
            format!("request timed out after {} ms", self.timeout.as_millis())
        } else {
            format!("request failed: {}", error_chain(&error))
        }
    }
}

impl Probe for HttpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let started = Instant::now();
        let sent = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Ok(self.outcome(Status::Unhealthy, Some(self.request_error(e)))),
        };
        let code = response.status();
        let cert_expiry = response
            .extensions()
            .get::<TlsInfo>()
            .and_then(TlsInfo::peer_certificate)
            .and_then(not_after);

        let mut problem: Option<(Status, String)> = None;
        if !self.expected.contains(&code.as_u16()) {
            problem = Some((
                Status::Unhealthy,
                format!(
                    "unexpected status {code}; expected {}..={}",
                    self.expected.start(),
                    self.expected.end()
                ),
            ));
        }
        if let (Some(check), None) = (&self.body, &problem) {
            match self.read_body(response).await {
                Err(e) => problem = Some((Status::Unhealthy, self.request_error(e))),
                Ok(body) if !check.passes(&body) => problem = Some((Status::Unhealthy, check.failure())),
                Ok(_) => {}
            }
        }
        let elapsed = started.elapsed();

        let mut days_remaining = None;
        if let Some(expiry) = cert_expiry {
            let days = (expiry - jiff::Timestamp::now().as_second()).div_euclid(SECONDS_PER_DAY);
            days_remaining = Some((days, expiry));
            if problem.is_none() {
                if days < 0 {
                    problem = Some((Status::Unhealthy, format!("certificate expired {} days ago", -days)));
                } else if let Some(warn) = self.warn_cert_days.filter(|w| days < i64::from(*w)) {
                    problem = Some((
                        Status::Degraded,
                        format!("certificate expires in {days} days, under the {warn}-day warning"),
                    ));
                }
            }
        }

        let (status, error) = match problem {
            Some((status, error)) => (status, Some(error)),
            None => (Status::Healthy, None),
        };
        let mut outcome = self
            .outcome(status, error)
            .detail("status_code", code.as_u16())
            .detail("response_ms", super::millis(elapsed))
            .latency(elapsed);
        if let Some((days, expiry)) = days_remaining {
            outcome = outcome.detail("cert_days_remaining", days);
            if let Ok(at) = jiff::Timestamp::from_second(expiry) {
                outcome = outcome.detail("cert_not_after", at.to_string());
            }
        } else if self.https {
            tracing::debug!(probe = %self.name, "no peer certificate could be read");
        }
        Ok(outcome)
    }
}
