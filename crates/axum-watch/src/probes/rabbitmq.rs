//! [`RabbitMqProbe`]: an AMQP connection (lapin), plus the management HTTP
//! API (reqwest) in rich mode.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::amqp::AmqpTarget;
use super::{ConfigError, ConfigErrorKind};
use crate::model::Details;
use crate::probe::{Outcome, Probe, ProbeError, error_chain};
use crate::tls::{TlsOptions, Verification};
use tokio_rustls::rustls::ClientConfig;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The probe, as its construction errors name it.
const PROBE: &str = "RabbitMqProbe";

/// Checks a RabbitMQ broker by opening and closing an AMQP connection; no
/// channel or queue is touched.
///
/// Connectivity mode (the default) reports `{"connected": true}`. Rich mode,
/// enabled with [`management_url`](Self::management_url), also reads the
/// management HTTP API with the credentials of the AMQP URL and adds:
///
/// | detail | contents |
/// | --- | --- |
/// | `server` | `rabbitmq_version`, `erlang_version`, `cluster_name`, `node`, and the counts of `connections`, `channels`, `exchanges`, `queues`, `consumers` |
/// | `totals` | `messages`, `messages_ready`, `messages_unacknowledged`, `publish_rate`, `deliver_rate`, `ack_rate` |
/// | `queues` | per queue: `state`, `messages`, `messages_ready`, `messages_unacknowledged`, `consumers`, `memory_bytes`, `publish_rate`, `deliver_rate`, `ack_rate`, `durable`, `auto_delete`, `idle_since` |
///
/// Queues of the default vhost `/` are keyed by name, others by
/// `vhost/name`. When the management API fails (down, wrong credentials, not
/// enabled) the probe still reports the AMQP result and adds
/// `management_api_error`.
///
/// `amqps://` URLs use rustls with the platform certificate verifier; add a
/// private CA with [`root_certificate_pem`](Self::root_certificate_pem),
/// which an `https` management URL trusts as well.
///
/// The AMQP connect and each management request are bounded by
/// [`timeout`](Self::timeout) (5 s by default). The password never appears in
/// `Debug`, details or error text.
///
/// ```
/// use axum_watch::HealthRegistry;
/// use axum_watch::probes::RabbitMqProbe;
///
/// // Nothing connects before the first check.
/// let rabbit = RabbitMqProbe::new("amqp://guest:s3cret@127.0.0.1:5672/%2f")
///     .unwrap()
///     .management_url("http://127.0.0.1:15672")
///     .unwrap();
/// assert!(!format!("{rabbit:?}").contains("s3cret"));
/// let registry = HealthRegistry::builder().add(rabbit).build().unwrap();
/// assert_eq!(registry.probe_names(), ["rabbitmq"]);
/// ```
pub struct RabbitMqProbe {
    target: AmqpTarget,
    management: Option<Management>,
    timeout: Duration,
    /// Extra roots, for an `https` management URL as for `amqps`.
    root_certificates: Vec<reqwest::Certificate>,
    /// The management API's TLS from [`tls_options`](Self::tls_options).
    tls: Option<TlsOptions>,
}

struct Management {
    base: String,
    client: reqwest::Client,
}

impl RabbitMqProbe {
    /// A probe for the broker at `url` (`amqp://user:password@host[:port][/vhost]`
    /// or `amqps://…`; an empty vhost means `/`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `url` is not an AMQP URL; the error does not
    /// repeat the password.
    pub fn new(url: impl AsRef<str>) -> Result<Self, ConfigError> {
        Ok(Self {
            target: AmqpTarget::parse(url.as_ref(), PROBE)?,
            management: None,
            timeout: DEFAULT_TIMEOUT,
            root_certificates: Vec::new(),
            tls: None,
        })
    }

    /// Enables rich mode: the base URL of the management HTTP API, such as
    /// `http://rabbitmq.internal:15672`. The credentials of the AMQP URL are
    /// used for it.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `url` is not an `http`/`https` URL, or the HTTP
    /// client cannot be built.
    pub fn management_url(mut self, url: impl AsRef<str>) -> Result<Self, ConfigError> {
        let parsed = url::Url::parse(url.as_ref()).map_err(|e| {
            ConfigError::because(
                ConfigErrorKind::InvalidUrl,
                PROBE,
                "management_url",
                "invalid management URL",
                &e,
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                ConfigErrorKind::UnsupportedScheme,
                PROBE,
                "management_url",
                format!(
                    "invalid management URL: scheme must be http or https, not {:?}",
                    parsed.scheme()
                ),
            ));
        }
        self.management = Some(Management {
            base: parsed.as_str().trim_end_matches('/').to_owned(),
            client: self.management_client()?,
        });
        Ok(self)
    }

    /// Also trusts the certificates in `pem` (one or more `BEGIN CERTIFICATE`
    /// blocks) as roots, besides the system's: for a broker whose `amqps`
    /// certificate, or an `https` management API, is signed by a private CA.
    /// May be called more than once, before or after
    /// [`management_url`](Self::management_url).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `pem` holds no valid certificate.
    pub fn root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let pem = pem.as_ref();
        if let Some(tls) = self.tls.take() {
            return self.tls_options(tls.root_certificate_pem(pem)?);
        }
        self.target.add_root_certificates_pem(pem)?;
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            ConfigError::because(
                ConfigErrorKind::InvalidCertificate,
                PROBE,
                "root_certificate_pem",
                "invalid root certificate PEM",
                &e,
            )
        })?;
        self.root_certificates.extend(certs);
        if self.management.is_some() {
            let client = self.management_client()?;
            if let Some(management) = &mut self.management {
                management.client = client;
            }
        }
        Ok(self)
    }

    /// TLS for `amqps` and an `https` management API with the
    /// [`TlsOptions`] every probe takes: extra roots, the system's roots or
    /// not, and a client certificate (PKCS#8 key) for mutual TLS on both.
    /// [`danger_accept_invalid_certs`](TlsOptions::danger_accept_invalid_certs)
    /// applies to the management API only: the AMQP client (lapin) always
    /// verifies, so it is refused with an `amqps` URL. Replaces what
    /// [`root_certificate_pem`](Self::root_certificate_pem) set.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `tls` sets a
    /// [`server_name`](TlsOptions::server_name) (both clients check the
    /// URL's host), accepts invalid certificates with an `amqps` URL, or
    /// the management client cannot be built.
    ///
    /// ```
    /// use axum_watch::probes::RabbitMqProbe;
    /// use axum_watch::tls::TlsOptions;
    ///
    /// let probe = RabbitMqProbe::new("amqp://mon:pw@rabbit.internal/")
    ///     .unwrap()
    ///     .management_url("https://rabbit.internal:15671")
    ///     .unwrap()
    ///     .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
    ///     .unwrap();
    /// # drop(probe);
    /// let refused = RabbitMqProbe::new("amqps://mon:pw@rabbit.internal/")
    ///     .unwrap()
    ///     .tls_options(TlsOptions::new().danger_accept_invalid_certs(true));
    /// assert!(refused.is_err());
    /// ```
    pub fn tls_options(mut self, tls: TlsOptions) -> Result<Self, ConfigError> {
        let refuse = |why: &str| ConfigError::new(ConfigErrorKind::InvalidOption, PROBE, "tls_options", why);
        if tls.server_name_override().is_some() {
            return Err(refuse(
                "server_name is not supported: the AMQP and management clients check the URL's host",
            ));
        }
        if tls.accepts_invalid_certs() && self.target.is_tls() {
            return Err(refuse(
                "danger_accept_invalid_certs cannot apply to amqps: the AMQP client always verifies \
                 (trust the broker's CA with root_certificate_pem instead)",
            ));
        }
        let mut target = self.target.clone();
        target.clear_tls();
        if !tls.root_certificates_pem().is_empty() {
            target.add_root_certificates_pem(tls.root_certificates_pem())?;
        }
        if let Some(identity) = tls.identity() {
            target.set_client_identity_pem(&identity.chain_pem, &identity.key_pem);
        }
        self.target = target;
        self.root_certificates.clear();
        self.tls = Some(tls);
        if self.management.is_some() {
            let client = self.management_client()?;
            if let Some(management) = &mut self.management {
                management.client = client;
            }
        }
        Ok(self)
    }

    /// The management API client, trusting the extra roots.
    fn management_client(&self) -> Result<reqwest::Client, ConfigError> {
        // Each request carries the probe's timeout, so `timeout()` may come later.
        let mut builder = reqwest::Client::builder();
        if let Some(tls) = &self.tls {
            let config = tls
                .client_config(Verification::Full)
                .map_err(|e| ConfigError::new(ConfigErrorKind::InvalidCertificate, PROBE, "tls_options", e))?;
            builder = builder.use_preconfigured_tls(ClientConfig::clone(&config));
        }
        if !self.root_certificates.is_empty() {
            builder = builder.tls_certs_merge(self.root_certificates.clone());
        }
        builder.build().map_err(|e| {
            ConfigError::because(
                ConfigErrorKind::Client,
                PROBE,
                "management_url",
                "the management API client could not be built",
                &e,
            )
        })
    }

    /// How long the AMQP connect, and each management API request, may take
    /// (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn management_details(&self, management: &Management) -> Result<Details, ProbeError> {
        let overview_url = format!("{}/api/overview", management.base);
        let queues_url = format!("{}/api/queues", management.base);
        let (overview, queues) = tokio::try_join!(
            self.get_json(management, &overview_url),
            self.get_json(management, &queues_url),
        )?;
        let mut details = Details::new();
        details.insert("server".into(), server_details(&overview));
        details.insert("totals".into(), totals_details(&overview));
        details.insert("queues".into(), queues_details(&queues));
        Ok(details)
    }

    async fn get_json(&self, management: &Management, url: &str) -> Result<Value, ProbeError> {
        let request = management
            .client
            .get(url)
            .basic_auth(self.target.username(), Some(self.target.password()))
            .timeout(self.timeout);
        let response = request.send().await.map_err(|e| http_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ProbeError::with_kind(
                "ManagementApiError",
                format!("GET {} answered {status}", crate::redact(url)),
            ));
        }
        response.json().await.map_err(|e| http_error(&e))
    }
}

/// A reqwest error with its sources (reqwest's own text is terse), led by
/// what a TLS failure in them means.
fn http_error(error: &reqwest::Error) -> ProbeError {
    let text = chain(error);
    let text = match crate::tls::explain_chain(error, None).or_else(|| crate::tls::explain_text(&text)) {
        Some(tls) => format!("TLS: {tls} ({text})"),
        None => text,
    };
    ProbeError::with_kind("ManagementApiError", text)
}

/// An error's text followed by its sources, redacted.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    crate::redact(&error_chain(error)).into_owned()
}

impl fmt::Debug for RabbitMqProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitMqProbe")
            .field("target", &self.target)
            .field(
                "management_url",
                &self.management.as_ref().map(|m| crate::redact(&m.base)),
            )
            .field("timeout", &self.timeout)
            .field("root_certificates", &self.root_certificates.len())
            .field("tls", &self.tls)
            .finish()
    }
}

impl Probe for RabbitMqProbe {
    fn name(&self) -> &str {
        "rabbitmq"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let connection = self.target.connect(self.timeout).await?;
        if let Err(error) = connection.close(200, "OK".into()).await {
            // The broker accepted us; a failed goodbye says nothing about its health.
            tracing::debug!(error = %crate::redact(&error.to_string()), "closing the rabbitmq connection failed");
        }
        let outcome = Outcome::healthy().detail("connected", true);
        let Some(management) = &self.management else {
            return Ok(outcome);
        };
        Ok(match self.management_details(management).await {
            Ok(details) => outcome.details_from(details),
            Err(error) => outcome.detail("management_api_error", crate::redact(&error.to_string()).into_owned()),
        })
    }
}

fn num(value: &Value, path: &[&str]) -> Value {
    let mut cur = value;
    for key in path {
        match cur.get(key) {
            Some(next) => cur = next,
            None => return json!(0),
        }
    }
    if cur.is_number() { cur.clone() } else { json!(0) }
}

fn rate(value: &Value, stat: &str) -> Value {
    match value
        .get("message_stats")
        .and_then(|s| s.get(stat))
        .and_then(|d| d.get("rate"))
    {
        Some(Value::Number(n)) => Value::Number(n.clone()),
        _ => json!(0.0),
    }
}

/// The deliver rate counts `basic.get` too, like the management UI does.
fn deliver_rate(value: &Value) -> Value {
    let has = |stat: &str| value.get("message_stats").and_then(|s| s.get(stat)).is_some();
    if has("deliver_get_details") {
        rate(value, "deliver_get_details")
    } else {
        rate(value, "deliver_details")
    }
}

fn text(value: &Value, key: &str) -> Value {
    value.get(key).filter(|v| v.is_string()).cloned().unwrap_or(Value::Null)
}

fn server_details(overview: &Value) -> Value {
    json!({
        "rabbitmq_version": text(overview, "rabbitmq_version"),
        "erlang_version": text(overview, "erlang_version"),
        "cluster_name": text(overview, "cluster_name"),
        "node": text(overview, "node"),
        "connections": num(overview, &["object_totals", "connections"]),
        "channels": num(overview, &["object_totals", "channels"]),
        "exchanges": num(overview, &["object_totals", "exchanges"]),
        "queues": num(overview, &["object_totals", "queues"]),
        "consumers": num(overview, &["object_totals", "consumers"]),
    })
}

fn totals_details(overview: &Value) -> Value {
    json!({
        "messages": num(overview, &["queue_totals", "messages"]),
        "messages_ready": num(overview, &["queue_totals", "messages_ready"]),
        "messages_unacknowledged": num(overview, &["queue_totals", "messages_unacknowledged"]),
        "publish_rate": rate(overview, "publish_details"),
        "deliver_rate": deliver_rate(overview),
        "ack_rate": rate(overview, "ack_details"),
    })
}

fn queues_details(queues: &Value) -> Value {
    let mut out = Map::new();
    for queue in queues.as_array().map(Vec::as_slice).unwrap_or_default() {
        let Some(name) = queue.get("name").and_then(Value::as_str) else {
            continue;
        };
        let key = match queue.get("vhost").and_then(Value::as_str) {
            Some("/") | None => name.to_owned(),
            Some(vhost) => format!("{vhost}/{name}"),
        };
        let state = queue
            .get("state")
            .filter(|v| v.is_string())
            .cloned()
            .unwrap_or(json!("unknown"));
        out.insert(
            key,
            json!({
                "state": state,
                "messages": num(queue, &["messages"]),
                "messages_ready": num(queue, &["messages_ready"]),
                "messages_unacknowledged": num(queue, &["messages_unacknowledged"]),
                "consumers": num(queue, &["consumers"]),
                "memory_bytes": num(queue, &["memory"]),
                "publish_rate": rate(queue, "publish_details"),
                "deliver_rate": deliver_rate(queue),
                "ack_rate": rate(queue, "ack_details"),
                "durable": queue.get("durable").and_then(Value::as_bool).unwrap_or(false),
                "auto_delete": queue.get("auto_delete").and_then(Value::as_bool).unwrap_or(false),
                "idle_since": text(queue, "idle_since"),
            }),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{RabbitMqProbe, queues_details, server_details, totals_details};

    #[test]
    fn management_json_maps_to_the_documented_details() {
        let overview = json!({
            "rabbitmq_version": "3.12.0", "erlang_version": "26.0", "cluster_name": "rabbit@n", "node": "rabbit@n",
            "object_totals": {"connections": 4, "channels": 8, "exchanges": 14, "queues": 3, "consumers": 6},
            "queue_totals": {"messages": 142, "messages_ready": 140, "messages_unacknowledged": 2},
            "message_stats": {"publish_details": {"rate": 12.5}, "deliver_get_details": {"rate": 11.8}, "ack_details": {"rate": 11.8}}
        });
        assert_eq!(server_details(&overview)["exchanges"], 14);
        assert_eq!(server_details(&overview)["node"], "rabbit@n");
        let totals = totals_details(&overview);
        assert_eq!(totals["messages_ready"], 140);
        assert_eq!(totals["deliver_rate"], 11.8);

        // A fresh broker reports empty objects: zeros, not missing keys.
        let empty = totals_details(&json!({"queue_totals": {}, "message_stats": {}}));
        assert_eq!(
            empty,
            json!({"messages": 0, "messages_ready": 0, "messages_unacknowledged": 0,
            "publish_rate": 0.0, "deliver_rate": 0.0, "ack_rate": 0.0})
        );

        let queues = queues_details(&json!([
            {"name": "tasks", "vhost": "/", "state": "running", "messages": 3, "memory": 1024, "durable": true},
            {"name": "tasks", "vhost": "other", "idle_since": "2024-01-01T00:00:00Z"},
        ]));
        assert_eq!(queues["tasks"]["messages"], 3);
        assert_eq!(queues["tasks"]["memory_bytes"], 1024);
        assert_eq!(queues["tasks"]["idle_since"], json!(null));
        assert_eq!(queues["other/tasks"]["state"], "unknown");
        assert_eq!(queues["other/tasks"]["idle_since"], "2024-01-01T00:00:00Z");
    }

    #[test]
    fn management_url_is_validated_and_debug_hides_secrets() {
        let probe = RabbitMqProbe::new("amqp://mon:s3cret@rabbit/").unwrap();
        let err = probe.management_url("ftp://rabbit").unwrap_err().to_string();
        assert!(err.contains("scheme must be http or https"), "{err}");
        let probe = RabbitMqProbe::new("amqp://mon:s3cret@rabbit/")
            .unwrap()
            .management_url("http://admin:other@rabbit:15672/")
            .unwrap();
        let debug = format!("{probe:?}");
        assert!(!debug.contains("s3cret") && !debug.contains("other"), "{debug}");
        assert!(debug.contains("amqp://mon@rabbit:5672/%2f"), "{debug}");
    }

    #[test]
    fn root_certificates_are_checked_when_given() {
        let probe = || RabbitMqProbe::new("amqps://mon:s3cret@rabbit/").unwrap();
        let err = probe()
            .root_certificate_pem("not a certificate")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "the root certificate PEM holds no certificate");
        let err = probe()
            .root_certificate_pem("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid root certificate PEM"), "{err}");

        let ca = rcgen::generate_simple_self_signed(vec!["rabbit".to_owned()]).unwrap();
        let pem = ca.cert.pem();
        // Before and after the management URL, and more than once.
        let probe = probe()
            .root_certificate_pem(&pem)
            .unwrap()
            .management_url("https://rabbit:15671")
            .unwrap()
            .root_certificate_pem(pem.as_bytes())
            .unwrap();
        assert_eq!(probe.root_certificates.len(), 2);
        let chain = probe.target.root_certificates_pem().unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(format!("{probe:?}").contains("root_certificates: 2"), "{probe:?}");
    }
}
