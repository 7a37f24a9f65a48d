//! [`MongoProbe`]: `ping`, then `serverStatus` for details, through the
//! official `mongodb` driver.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, ConnectionString, HostInfo, Tls};
use mongodb::{Client, Database};
use tokio::sync::OnceCell;

use super::{ConfigError, ConfigErrorKind};
use crate::model::Details;
use crate::probe::{Outcome, Probe, ProbeError};
use crate::tls::TlsOptions;

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
/// TLS is the driver's: `tls=true` in the connection string (with
/// `tlsCAFile`, `tlsCertificateKeyFile`, `tlsAllowInvalidCertificates`, as
/// every MongoDB client writes them), or [`tls_options`](Self::tls_options)
/// with the [`TlsOptions`] every other probe takes. A refused certificate
/// fails the check with what was wrong (`unknown issuer`, `name mismatch`,
/// `expired`).
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
    /// The driver's TLS settings from [`tls_options`](Self::tls_options),
    /// and the files they name.
    tls: Option<(mongodb::options::TlsOptions, Arc<TlsFiles>)>,
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
            tls: None,
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
            tls: None,
        }
    }

    /// Connects over TLS with `tls`, overriding the connection string's own
    /// TLS options: its extra roots replace the driver's default roots (the
    /// Mozilla set; the driver reads one CA file), its client identity is
    /// presented for mutual TLS, and
    /// [`danger_accept_invalid_certs`](TlsOptions::danger_accept_invalid_certs)
    /// also accepts a certificate for another host name. The driver reads
    /// certificates from files only, so the PEM is written to a private
    /// temporary directory (mode 0700) that lives as long as the probe.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the probe checks an existing client (its own
    /// options apply), when `tls` sets a
    /// [`server_name`](TlsOptions::server_name) (the driver always checks
    /// the host it connects to), or when the files cannot be written.
    ///
    /// ```
    /// use axum_watch::probes::MongoProbe;
    /// use axum_watch::tls::TlsOptions;
    ///
    /// let probe = MongoProbe::new("mongodb://db.internal:27017/")
    ///     .unwrap()
    ///     .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
    ///     .unwrap();
    /// # drop(probe);
    /// ```
    #[allow(
        clippy::needless_pass_by_value,
        reason = "the same signature as every probe's tls_options"
    )]
    pub fn tls_options(mut self, tls: TlsOptions) -> Result<Self, ConfigError> {
        if matches!(self.source, Source::Client(_)) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidOption,
                "MongoProbe",
                "tls_options",
                "a probe over an existing client uses that client's TLS settings",
            ));
        }
        if tls.server_name_override().is_some() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidOption,
                "MongoProbe",
                "tls_options",
                "the MongoDB driver cannot check a server name other than the host it connects to",
            ));
        }
        let files = TlsFiles::write(&tls)?;
        let mut driver = mongodb::options::TlsOptions::default();
        driver.allow_invalid_certificates = Some(tls.accepts_invalid_certs());
        driver.ca_file_path.clone_from(&files.ca);
        driver.cert_key_file_path.clone_from(&files.identity);
        self.tls = Some((driver, Arc::new(files)));
        Ok(self)
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
                        if let Some((tls, _)) = &self.tls {
                            options.tls = Some(Tls::Enabled(tls.clone()));
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

/// The driver's error kind, without its labels and debug-printed sources,
/// and what a TLS failure in it means.
fn mongo_error(step: &str, error: &mongodb::error::Error) -> ProbeError {
    let text = error.kind.to_string();
    let tls = crate::tls::explain_chain(error, None).or_else(|| crate::tls::explain_text(&text));
    let message = match tls {
        Some(tls) => format!("{step} failed: TLS: {tls} ({})", crate::redact(&text)),
        None => format!("{step} failed: {}", crate::redact(&text)),
    };
    ProbeError::with_kind("MongoError", message)
}

/// The PEM files the driver reads, in a directory of their own that is
/// removed with the probe.
struct TlsFiles {
    dir: PathBuf,
    ca: Option<PathBuf>,
    identity: Option<PathBuf>,
}

impl TlsFiles {
    fn write(tls: &TlsOptions) -> Result<Self, ConfigError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let roots = tls.root_certificates_pem();
        let identity = tls.identity();
        let dir = std::env::temp_dir().join(format!(
            "axum-watch-mongo-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut files = Self {
            dir,
            ca: None,
            identity: None,
        };
        if roots.is_empty() && identity.is_none() {
            return Ok(files);
        }
        let failed = |e: std::io::Error| {
            ConfigError::because(
                ConfigErrorKind::InvalidCertificate,
                "MongoProbe",
                "tls_options",
                "cannot write the certificates for the MongoDB driver",
                &e,
            )
        };
        private_dir(&files.dir).map_err(failed)?;
        if !roots.is_empty() {
            let path = files.dir.join("ca.pem");
            private_file(&path, roots).map_err(failed)?;
            files.ca = Some(path);
        }
        if let Some(identity) = identity {
            // The driver's format: the chain, then the key, in one file.
            let mut pem = identity.chain_pem.clone();
            pem.push(b'\n');
            pem.extend_from_slice(&identity.key_pem);
            let path = files.dir.join("client.pem");
            private_file(&path, &pem).map_err(failed)?;
            files.identity = Some(path);
        }
        Ok(files)
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        if self.ca.is_some() || self.identity.is_some() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

fn private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
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
            .field("tls", &self.tls.is_some())
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
