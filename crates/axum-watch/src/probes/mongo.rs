//! [`MongoProbe`]: `ping`, then `serverStatus` for details, through the
//! official `mongodb` driver.

use std::fmt;
use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, ConnectionString, HostInfo};
use mongodb::{Client, Database};
use tokio::sync::OnceCell;

use super::{ConfigError, ConfigErrorKind};
use crate::model::Details;
use crate::probe::{Outcome, Probe, ProbeError};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks a MongoDB deployment: `ping` must succeed, then `serverStatus`
/// fills the details when the user may run it.
///
/// | detail | from `serverStatus` |
/// | --- | --- |
/// | `version` | `version` |
/// | `uptime_seconds` | `uptime` |
/// | `connections_current` | `connections.current` |
/// | `connections_available` | `connections.available` |
///
/// `ping` runs against the connection string's default database (`admin`
/// when it names none). Built from a connection string, the probe creates
/// one driver [`Client`] on its first check and keeps it (its pool and
/// monitor are reused, as the driver intends); built with
/// [`from_client`](Self::from_client), it checks your application's client.
/// Server selection, connecting and the commands are bounded by
/// [`timeout`](Self::timeout) (5 s by default). The password never appears
/// in `Debug`, details or error text.
///
/// ```
/// use axum_watch::probes::MongoProbe;
///
/// // Nothing connects before the first check.
/// let mongo = MongoProbe::new("mongodb://app:s3cret@127.0.0.1:27017/orders").unwrap();
/// assert!(!format!("{mongo:?}").contains("s3cret"));
/// assert!(MongoProbe::new("postgres://nope").is_err());
/// ```
pub struct MongoProbe {
    source: Source,
    target: String,
    timeout: Duration,
}

enum Source {
    Uri {
        connection_string: Box<ConnectionString>,
        client: OnceCell<Client>,
    },
    Client(Client),
}

impl MongoProbe {
    /// A probe for the deployment at `uri` (`mongodb://…`; `mongodb+srv://`
    /// needs the driver's `dns-resolver` feature, enabled by depending on
    /// `mongodb` with it).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `uri` is not a valid connection string; the
    /// error does not repeat the password.
    pub fn new(uri: impl AsRef<str>) -> Result<Self, ConfigError> {
        let connection_string = ConnectionString::parse(uri.as_ref()).map_err(|e| {
            ConfigError::because(
                ConfigErrorKind::InvalidUrl,
                "MongoProbe",
                "url",
                "invalid MongoDB connection string",
                &e,
            )
        })?;
        let target = describe(&connection_string);
        Ok(Self {
            source: Source::Uri {
                connection_string: Box::new(connection_string),
                client: OnceCell::new(),
            },
            target,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A probe over the [`Client`] your application already uses (clones
    /// share its pool).
    #[must_use]
    pub fn from_client(client: Client) -> Self {
        Self {
            source: Source::Client(client),
            target: "existing client".to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Bound on the whole check (default 5 s); also the driver's server
    /// selection and connect timeouts for a probe built from a URI.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn client(&self) -> Result<&Client, ProbeError> {
        match &self.source {
            Source::Client(client) => Ok(client),
            Source::Uri {
                connection_string,
                client,
            } => {
                client
                    .get_or_try_init(|| async {
                        let mut options = ClientOptions::parse(connection_string.as_ref().clone())
                            .await
                            .map_err(|e| mongo_error("reading the connection string", &e))?;
                        // A little under the check's bound, so the driver's own error
                        // (which says why no server was usable) wins the race.
                        options.server_selection_timeout = Some(self.timeout.mul_f64(0.8));
                        options.connect_timeout = Some(self.timeout);
                        if options.app_name.is_none() {
                            options.app_name = Some("axum-watch".to_owned());
                        }
                        Client::with_options(options).map_err(|e| mongo_error("creating the client", &e))
                    })
                    .await
            }
        }
    }

    async fn run(&self) -> Result<Outcome, ProbeError> {
        let client = self.client().await?;
        let database: Database = client.default_database().unwrap_or_else(|| client.database("admin"));
        database
            .run_command(doc! {"ping": 1})
            .await
            .map_err(|e| mongo_error("ping", &e))?;
        let status = client.database("admin").run_command(doc! {"serverStatus": 1}).await;
        Ok(match status {
            Ok(status) => Outcome::healthy().details_from(status_details(&status)),
            Err(error) => {
                // Often "not authorized": a monitoring user may lack clusterMonitor.
                tracing::debug!(error = %crate::redact(&error.to_string()), "mongo serverStatus failed; reporting without details");
                Outcome::healthy()
            }
        })
    }
}

/// The driver's error kind, without its labels and debug-printed sources.
fn mongo_error(step: &str, error: &mongodb::error::Error) -> ProbeError {
    ProbeError::with_kind(
        "MongoError",
        format!("{step} failed: {}", crate::redact(&error.kind.to_string())),
    )
}

/// Hosts and default database, without credentials.
fn describe(connection_string: &ConnectionString) -> String {
    let hosts = match &connection_string.host_info {
        HostInfo::HostIdentifiers(hosts) => hosts.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        HostInfo::DnsRecord(name) => format!("srv:{name}"),
        _ => "?".to_owned(),
    };
    match &connection_string.default_database {
        Some(db) => format!("mongodb://{hosts}/{db}"),
        None => format!("mongodb://{hosts}"),
    }
}

fn number(value: Option<&Bson>) -> Option<serde_json::Value> {
    match value? {
        Bson::Int32(n) => Some((*n).into()),
        Bson::Int64(n) => Some((*n).into()),
        Bson::Double(n) => Some((*n).into()),
        _ => None,
    }
}

/// The documented details out of a `serverStatus` reply; what the server
/// does not report is left out.
fn status_details(status: &Document) -> Details {
    let mut details = Details::new();
    if let Ok(version) = status.get_str("version") {
        details.insert("version".into(), version.into());
    }
    if let Some(uptime) = number(status.get("uptime")) {
        details.insert("uptime_seconds".into(), uptime);
    }
    if let Ok(connections) = status.get_document("connections") {
        if let Some(current) = number(connections.get("current")) {
            details.insert("connections_current".into(), current);
        }
        if let Some(available) = number(connections.get("available")) {
            details.insert("connections_available".into(), available);
        }
    }
    details
}

impl fmt::Debug for MongoProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoProbe")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Probe for MongoProbe {
    fn name(&self) -> &str {
        "mongodb"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        match tokio::time::timeout(self.timeout, self.run()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ProbeError::with_kind(
                "Timeout",
                format!("{} did not answer within {:?}", self.target, self.timeout),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;
    use serde_json::json;

    use super::{MongoProbe, status_details};

    #[test]
    fn server_status_maps_to_details() {
        let status =
            doc! {"version": "7.0.2", "uptime": 12.5_f64, "connections": {"current": 3_i32, "available": 838_857_i64}};
        assert_eq!(
            serde_json::Value::Object(status_details(&status)),
            json!({"version": "7.0.2", "uptime_seconds": 12.5, "connections_current": 3, "connections_available": 838_857})
        );
        assert!(status_details(&doc! {"ok": 1}).is_empty());
    }

    #[test]
    fn uris_are_validated_and_hidden() {
        let probe = MongoProbe::new("mongodb://app:s3cret@db1:27017,db2:27018/orders?replicaSet=rs0").unwrap();
        let debug = format!("{probe:?}");
        assert!(debug.contains("mongodb://db1:27017,db2:27018/orders"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
        let err = MongoProbe::new("mongodb://app:s3cret@db/?connectTimeoutMS=abc")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid MongoDB connection string"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
