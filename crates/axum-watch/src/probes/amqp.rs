//! AMQP plumbing shared by the RabbitMQ and Celery probes: URL parsing that
//! keeps the password out of sight, and a bounded connect.

use std::fmt;
use std::time::Duration;

use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties};

use crate::probe::ProbeError;

/// A parsed `amqp://` or `amqps://` URL. Its `Debug` and `Display` never show
/// the password.
#[derive(Clone)]
pub(crate) struct AmqpTarget {
    uri: AMQPUri,
}

impl AmqpTarget {
    /// Parses `url`. An empty vhost (`amqp://host/`) means the default vhost
    /// `/`, as in most AMQP clients; write `%2f` or leave it out for the same.
    pub(crate) fn parse(url: &str) -> Result<Self, ProbeError> {
        let invalid = |why: &str| ProbeError::with_kind("InvalidUrl", format!("invalid AMQP URL: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(parsed.scheme(), "amqp" | "amqps") {
            return Err(invalid(&format!(
                "scheme must be amqp or amqps, not {:?}",
                parsed.scheme()
            )));
        }
        let mut uri: AMQPUri = url.parse().map_err(|e: String| invalid(&crate::redact(&e)))?;
        // amq-protocol-uri only reads domain names and falls back to
        // "localhost" for IP literals: take the host from the URL itself.
        if let Some(host) = parsed.host_str() {
            uri.authority.host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        }
        if uri.vhost.is_empty() {
            "/".clone_into(&mut uri.vhost);
        }
        Ok(Self { uri })
    }

    #[cfg(feature = "rabbitmq")]
    pub(crate) fn username(&self) -> &str {
        &self.uri.authority.userinfo.username
    }

    #[cfg(feature = "rabbitmq")]
    pub(crate) fn password(&self) -> &str {
        &self.uri.authority.userinfo.password
    }

    /// Opens a connection, giving up after `timeout`.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<Connection, ProbeError> {
        let properties = ConnectionProperties::default().with_connection_name("axum-watch".into());
        match tokio::time::timeout(timeout, Connection::connect_uri(self.uri.clone(), properties)).await {
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
        let t = AmqpTarget::parse("amqp://guest:s3cret@127.0.0.1:5673/").unwrap();
        assert_eq!(t.to_string(), "amqp://guest@127.0.0.1:5673/%2f");
        assert_eq!(format!("{t:?}"), "amqp://guest@127.0.0.1:5673/%2f");
        let userinfo = &t.uri.authority.userinfo;
        assert_eq!(
            (userinfo.username.as_str(), userinfo.password.as_str()),
            ("guest", "s3cret")
        );
        assert_eq!(t.uri.vhost, "/");

        let t = AmqpTarget::parse("amqps://mon:pw@rabbit.internal/monitoring").unwrap();
        assert_eq!(t.to_string(), "amqps://mon@rabbit.internal:5671/monitoring");
        let t = AmqpTarget::parse("amqp://u:p@[::1]/%2f").unwrap();
        assert_eq!(t.to_string(), "amqp://u@[::1]:5672/%2f");
    }

    #[test]
    fn bad_urls_are_clear_and_redacted() {
        for (url, want) in [
            ("http://u:pw@host/", "scheme must be amqp or amqps"),
            ("not a url", "invalid AMQP URL"),
            ("amqp://u:s3cret@host/?heartbeat=x", "invalid AMQP URL"),
        ] {
            let err = AmqpTarget::parse(url).unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
    }
}
