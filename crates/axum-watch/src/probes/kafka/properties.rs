//! [`KafkaProbe::from_properties`]: a probe from the client properties a
//! Kafka user already has (`client.properties`, the snippet Confluent Cloud
//! or Aiven hands out), in the Java client's names and librdkafka's.

use super::{KafkaProbe, SaslMechanism};
use crate::probes::{ConfigError, ConfigErrorKind};
use crate::tls::TlsOptions;

const PROBE: &str = "KafkaProbe";
const OPTION: &str = "properties";

fn invalid(kind: ConfigErrorKind, message: impl AsRef<str>) -> ConfigError {
    ConfigError::new(kind, PROBE, OPTION, message)
}

/// `key=value` lines (or `key: value`); `#` and `!` start comments, and a
/// line ending in `\` goes on on the next, as in Java properties files.
fn parse(text: &str) -> Vec<(String, String)> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    logical.push(current);
    logical
        .iter()
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_ascii_lowercase(), l[at + 1..].trim().to_owned()))
        })
        .collect()
}

/// `username="…" password="…"` out of a `sasl.jaas.config` value.
fn jaas_value(config: &str, key: &str) -> Option<String> {
    let mut rest = config;
    while let Some(at) = rest.find(key) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + key.len()..].trim_start();
        rest = &rest[at + key.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let body = &value[1..];
        let end = body.find(quote)?;
        return Some(body[..end].to_owned());
    }
    None
}

impl KafkaProbe {
    /// A probe from Kafka client properties, as a `client.properties` file
    /// or a managed service's snippet holds them:
    ///
    /// | property | meaning here |
    /// | --- | --- |
    /// | `bootstrap.servers` | required |
    /// | `security.protocol` | `PLAINTEXT` (default), `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` |
    /// | `sasl.mechanism` (`sasl.mechanisms`) | `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` |
    /// | `sasl.username`, `sasl.password` | librdkafka's credentials |
    /// | `sasl.jaas.config` | the Java client's: its `username="…"` and `password="…"` |
    /// | `ssl.ca.location` | a PEM file of root certificates to trust as well |
    /// | `ssl.certificate.location`, `ssl.key.location` | PEM files of a client certificate and key (mutual TLS) |
    /// | `enable.ssl.certificate.verification` | `false`: [`danger_accept_invalid_certs`](TlsOptions::danger_accept_invalid_certs) |
    ///
    /// Other properties (timeouts, `acks`, `client.id`…) are ignored. A
    /// SASL protocol without a mechanism means `PLAIN`, as in Kafka.
    ///
    /// ```
    /// use axum_watch::probes::KafkaProbe;
    ///
    /// // What Confluent Cloud hands out, as it is.
    /// let probe = KafkaProbe::from_properties(
    ///     "bootstrap.servers=pkc-abc12.eu-west-1.aws.confluent.cloud:9092
    ///      security.protocol=SASL_SSL
    ///      sasl.mechanisms=PLAIN
    ///      sasl.username=ABCDEFGHIJKLMNOP
    ///      sasl.password=s3cret
    ///      session.timeout.ms=45000",
    /// )
    /// .unwrap();
    /// assert_eq!(probe.servers(), ["pkc-abc12.eu-west-1.aws.confluent.cloud:9092"]);
    /// assert!(!format!("{probe:?}").contains("s3cret"));
    ///
    /// let err = KafkaProbe::from_properties("bootstrap.servers=b:9092\nsecurity.protocol=SASL_SSL\nsasl.mechanism=GSSAPI")
    ///     .unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "sasl.mechanism GSSAPI is not supported: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `bootstrap.servers` is missing or invalid, the
    /// protocol or mechanism is one the probe does not speak, credentials
    /// are missing, or a certificate file cannot be read. It never repeats
    /// a password.
    pub fn from_properties(properties: &str) -> Result<Self, ConfigError> {
        let pairs = parse(properties);
        let get = |key: &str| pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let servers = get("bootstrap.servers")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(ConfigErrorKind::InvalidOption, "bootstrap.servers is missing"))?;
        let mut probe = Self::new(servers)?;

        let protocol = get("security.protocol").unwrap_or("PLAINTEXT").to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(invalid(
                    ConfigErrorKind::UnsupportedScheme,
                    format!("security.protocol {other} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
                ));
            }
        };

        if sasl {
            let name = get("sasl.mechanism")
                .or_else(|| get("sasl.mechanisms"))
                .unwrap_or("PLAIN");
            let mechanism = SaslMechanism::from_name(name).ok_or_else(|| {
                invalid(
                    ConfigErrorKind::InvalidOption,
                    format!("sasl.mechanism {name} is not supported: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
                )
            })?;
            let jaas = get("sasl.jaas.config").unwrap_or_default();
            let username = get("sasl.username")
                .map(ToOwned::to_owned)
                .or_else(|| jaas_value(jaas, "username"));
            let password = get("sasl.password")
                .map(ToOwned::to_owned)
                .or_else(|| jaas_value(jaas, "password"));
            let (Some(username), Some(password)) = (username, password) else {
                return Err(invalid(
                    ConfigErrorKind::InvalidOption,
                    format!("{protocol} needs sasl.username and sasl.password, or sasl.jaas.config"),
                ));
            };
            probe = probe.sasl(mechanism, username, password);
        }

        if tls {
            let mut options = TlsOptions::new();
            if let Some(ca) = get("ssl.ca.location").filter(|p| !p.is_empty()) {
                options = options.root_certificate_file(ca)?;
            }
            match (get("ssl.certificate.location"), get("ssl.key.location")) {
                (Some(cert), Some(key)) => {
                    let read = |path: &str, what: &str| {
                        std::fs::read(path).map_err(|e| {
                            ConfigError::because(
                                ConfigErrorKind::InvalidCertificate,
                                PROBE,
                                OPTION,
                                &format!("cannot read the {what} file {path}"),
                                &e,
                            )
                        })
                    };
                    options = options
                        .client_identity_pem(read(cert, "ssl.certificate.location")?, read(key, "ssl.key.location")?)?;
                }
                (None, None) => {}
                _ => {
                    return Err(invalid(
                        ConfigErrorKind::InvalidOption,
                        "ssl.certificate.location and ssl.key.location go together",
                    ));
                }
            }
            if get("enable.ssl.certificate.verification").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
                options = options.danger_accept_invalid_certs(true);
            }
            probe = probe.tls_options(options);
        }
        Ok(probe)
    }
}

#[cfg(test)]
mod tests {
    use super::{KafkaProbe, jaas_value, parse};
    use crate::probes::ConfigErrorKind;

    #[test]
    fn properties_lines_and_jaas_values() {
        assert_eq!(
            parse("# comment\n! also\n a.b = 1 \nc: d=e\n\nnot a pair"),
            [("a.b".to_owned(), "1".to_owned()), ("c".to_owned(), "d=e".to_owned())]
        );
        // The layout of Tansu's and Kafka's own example files.
        let continued = parse(
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n    username=\"alice\" \\\n    password=\"secret\";\nsecurity.protocol=SASL_PLAINTEXT",
        );
        assert_eq!(continued.len(), 2);
        assert_eq!(jaas_value(&continued[0].1, "password").as_deref(), Some("secret"));
        assert_eq!(
            continued[1],
            ("security.protocol".to_owned(), "SASL_PLAINTEXT".to_owned())
        );
        let jaas = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="app" password='p"w';"#;
        assert_eq!(jaas_value(jaas, "username").as_deref(), Some("app"));
        assert_eq!(jaas_value(jaas, "password").as_deref(), Some("p\"w"));
        assert_eq!(jaas_value("x required myusername=\"no\";", "username"), None);
        assert_eq!(jaas_value("x required", "password"), None);
    }

    #[test]
    fn protocols_and_credentials() {
        let scram = KafkaProbe::from_properties(
            "bootstrap.servers=b1:9096,b2:9096\nsecurity.protocol=sasl_ssl\nsasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"app\" password=\"pw-123\";",
        )
        .unwrap();
        assert_eq!(scram.servers(), ["b1:9096", "b2:9096"]);
        assert!(scram.tls.is_some());
        let debug = format!("{scram:?}");
        assert!(
            debug.contains("ScramSha512") && !debug.contains("pw-123") && !debug.contains("\"app\""),
            "{debug}"
        );

        let plain = KafkaProbe::from_properties("bootstrap.servers=b:9092").unwrap();
        assert!(plain.tls.is_none() && plain.sasl.is_none());
        let ssl = KafkaProbe::from_properties(
            "bootstrap.servers=b:9093\nsecurity.protocol=SSL\nenable.ssl.certificate.verification=false",
        )
        .unwrap();
        assert!(ssl.tls.as_ref().unwrap().accepts_invalid_certs());
        assert!(ssl.sasl.is_none());

        let cases = [
            (
                "security.protocol=SSL",
                ConfigErrorKind::InvalidOption,
                "bootstrap.servers is missing",
            ),
            (
                "bootstrap.servers=b:1\nsecurity.protocol=KERBEROS",
                ConfigErrorKind::UnsupportedScheme,
                "security.protocol KERBEROS is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
            ),
            (
                "bootstrap.servers=b:1\nsecurity.protocol=SASL_PLAINTEXT\nsasl.password=secret-9",
                ConfigErrorKind::InvalidOption,
                "SASL_PLAINTEXT needs sasl.username and sasl.password, or sasl.jaas.config",
            ),
            (
                "bootstrap.servers=b:1\nsecurity.protocol=SSL\nssl.key.location=/k.pem",
                ConfigErrorKind::InvalidOption,
                "ssl.certificate.location and ssl.key.location go together",
            ),
        ];
        for (text, kind, message) in cases {
            let err = KafkaProbe::from_properties(text).unwrap_err();
            assert_eq!((err.kind(), err.to_string().as_str()), (kind, message), "{text}");
        }
        let err = KafkaProbe::from_properties(
            "bootstrap.servers=b:1\nsecurity.protocol=SSL\nssl.ca.location=/nonexistent/ca.pem",
        )
        .unwrap_err();
        assert_eq!(err.kind(), ConfigErrorKind::InvalidCertificate);
        assert!(KafkaProbe::from_properties("bootstrap.servers=nope").is_err());
    }
}
