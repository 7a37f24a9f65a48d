//! AMQP plumbing shared by the RabbitMQ and Celery probes: URL parsing that
//! keeps the password out of sight, and a bounded connect.

use std::fmt;
use std::time::Duration;

use lapin::tcp::OwnedTLSConfig;
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties};

use super::{ConfigError, ConfigErrorKind};
use crate::probe::ProbeError;

/// A parsed `amqp://` or `amqps://` URL. Its `Debug` and `Display` never show
/// the password.
#[derive(Clone)]
pub(crate) struct AmqpTarget {
    uri: AMQPUri,
    /// Extra root certificates (PEM) for `amqps`, on top of the system's.
    tls: OwnedTLSConfig,
}

impl AmqpTarget {
    /// Parses `url`. An empty vhost (`amqp://host/`) means the default vhost
    /// `/`, as in most AMQP clients; write `%2f` or leave it out for the same.
    /// A bad URL is a [`ConfigError`] about the `url` of `probe`.
    pub(crate) fn parse(url: &str, probe: &'static str) -> Result<Self, ConfigError> {
        let invalid = |kind, why: &str| ConfigError::new(kind, probe, "url", format!("invalid AMQP URL: {why}"));
        let parsed = url::Url::parse(url)
            .map_err(|e| ConfigError::because(ConfigErrorKind::InvalidUrl, probe, "url", "invalid AMQP URL", &e))?;
        if !matches!(parsed.scheme(), "amqp" | "amqps") {
            return Err(invalid(
                ConfigErrorKind::UnsupportedScheme,
                &format!("scheme must be amqp or amqps, not {:?}", parsed.scheme()),
            ));
        }
        let mut uri: AMQPUri = url
            .parse()
            .map_err(|e: String| invalid(ConfigErrorKind::InvalidUrl, &e))?;
        // amq-protocol-uri only reads domain names and falls back to
        // "localhost" for IP literals: take the host from the URL itself.
        if let Some(host) = parsed.host_str() {
            uri.authority.host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        }
        if uri.vhost.is_empty() {
            "/".clone_into(&mut uri.vhost);
        }
        Ok(Self {
            uri,
            tls: OwnedTLSConfig::default(),
        })
    }

    /// Also trusts the certificates in `pem` (one or more `BEGIN
    /// CERTIFICATE` blocks) as roots for `amqps`, besides the system's.
    #[cfg(feature = "rabbitmq")]
    pub(crate) fn add_root_certificates_pem(&mut self, pem: &[u8]) -> Result<(), ConfigError> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;

        let invalid = |why: String| {
            ConfigError::new(
                ConfigErrorKind::InvalidCertificate,
                "RabbitMqProbe",
                "root_certificate_pem",
                why,
            )
        };
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                ConfigError::because(
                    ConfigErrorKind::InvalidCertificate,
                    "RabbitMqProbe",
                    "root_certificate_pem",
                    "invalid root certificate PEM",
                    &e,
                )
            })?;
        if certs.is_empty() {
            return Err(invalid("the root certificate PEM holds no certificate".to_owned()));
        }
        // lapin reads the roots back from PEM text.
        let text = std::str::from_utf8(pem)
            .map_err(|_| invalid("invalid root certificate PEM: it is not UTF-8".to_owned()))?;
        let chain = self.tls.cert_chain.get_or_insert_with(String::new);
        if !chain.is_empty() && !chain.ends_with('\n') {
            chain.push('\n');
        }
        chain.push_str(text);
        Ok(())
    }

    /// Forgets the extra roots and the client identity.
    #[cfg(feature = "rabbitmq")]
    pub(crate) fn clear_tls(&mut self) {
        self.tls = OwnedTLSConfig::default();
    }

    /// Whether the URL is `amqps`.
    #[cfg(feature = "rabbitmq")]
    pub(crate) fn is_tls(&self) -> bool {
        self.uri.scheme == AMQPScheme::AMQPS
    }

    /// Presents `cert_pem` and `key_pem` (PEM, PKCS#8 key) for mutual TLS on
    /// `amqps`.
    #[cfg(feature = "rabbitmq")]
    pub(crate) fn set_client_identity_pem(&mut self, cert_pem: &[u8], key_pem: &[u8]) {
        self.tls.identity = Some(lapin::tcp::OwnedIdentity::PKCS8 {
            pem: cert_pem.to_vec(),
            key: key_pem.to_vec(),
        });
    }

    #[cfg(feature = "rabbitmq")]
    pub(crate) fn username(&self) -> &str {
        &self.uri.authority.userinfo.username
    }

    #[cfg(feature = "rabbitmq")]
    pub(crate) fn password(&self) -> &str {
        &self.uri.authority.userinfo.password
    }

    /// The extra root certificates, as PEM text.
    #[cfg(all(test, feature = "rabbitmq"))]
    pub(crate) fn root_certificates_pem(&self) -> Option<&str> {
        self.tls.cert_chain.as_deref()
    }

    /// Opens a connection, giving up after `timeout`.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<Connection, ProbeError> {
        let properties = ConnectionProperties::default().with_connection_name("axum-watch".into());
        let runtime =
            lapin::runtime::default_runtime().map_err(|e| amqp_error(&format!("connect to {self} failed"), &e))?;
        let connect = Connection::connect_uri_with_config(self.uri.clone(), properties, self.tls.clone(), runtime);
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(amqp_error(&format!("connect to {self} failed"), &error)),
            Err(_) => Err(ProbeError::with_kind(
                "Timeout",
                format!("connect to {self} got no answer within {timeout:?}"),
            )),
        }
    }
}

/// An AMQP error with what the probe was doing, redacted.
pub(crate) fn amqp_error(step: &str, error: &lapin::Error) -> ProbeError {
    let text = crate::redact(&error.to_string()).into_owned();
    #[cfg(feature = "_tls")]
    let text = match crate::tls::explain_chain(error, None) {
        Some(tls) => format!("TLS: {tls} ({text})"),
        None => text,
    };
    ProbeError::with_kind("AmqpError", format!("{step}: {text}"))
}

impl fmt::Display for AmqpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.uri.scheme {
            AMQPScheme::AMQP => "amqp",
            AMQPScheme::AMQPS => "amqps",
        };
        let authority = &self.uri.authority;
        let host = if authority.host.contains(':') {
            format!("[{}]", authority.host)
        } else {
            authority.host.clone()
        };
        let vhost = if self.uri.vhost == "/" { "%2f" } else { &self.uri.vhost };
        write!(
            f,
            "{scheme}://{}@{host}:{}/{vhost}",
            authority.userinfo.username, authority.port
        )
    }
}

impl fmt::Debug for AmqpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::AmqpTarget;

    #[test]
    fn parses_and_hides_the_password() {
        let t = AmqpTarget::parse("amqp://guest:s3cret@127.0.0.1:5673/", "RabbitMqProbe").unwrap();
        assert_eq!(t.to_string(), "amqp://guest@127.0.0.1:5673/%2f");
        assert_eq!(format!("{t:?}"), "amqp://guest@127.0.0.1:5673/%2f");
        let userinfo = &t.uri.authority.userinfo;
        assert_eq!(
            (userinfo.username.as_str(), userinfo.password.as_str()),
            ("guest", "s3cret")
        );
        assert_eq!(t.uri.vhost, "/");

        let t = AmqpTarget::parse("amqps://mon:pw@rabbit.internal/monitoring", "RabbitMqProbe").unwrap();
        assert_eq!(t.to_string(), "amqps://mon@rabbit.internal:5671/monitoring");
        let t = AmqpTarget::parse("amqp://u:p@[::1]/%2f", "RabbitMqProbe").unwrap();
        assert_eq!(t.to_string(), "amqp://u@[::1]:5672/%2f");
    }

    #[test]
    fn bad_urls_are_clear_and_redacted() {
        for (url, want) in [
            ("http://u:pw@host/", "scheme must be amqp or amqps"),
            ("not a url", "invalid AMQP URL"),
            ("amqp://u:s3cret@host/?heartbeat=x", "invalid AMQP URL"),
        ] {
            let err = AmqpTarget::parse(url, "RabbitMqProbe").unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
    }
}
