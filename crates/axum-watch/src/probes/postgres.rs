//! [`PostgresProbe`]: an active PostgreSQL check over tokio-postgres.
//!
//! Each check gets a connection (a fresh one from a connection string, or
//! one from the application's deadpool-postgres pool), runs `SELECT 1`, then
//! collects server metadata on a best-effort basis: once `SELECT 1` answered,
//! a metadata query that fails or is slow only leaves its field out.

use std::fmt;
use std::time::Duration;

use std::sync::PoisonError;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};

use super::ConfigError;
use super::sql::{
    CHECKOUT, DEFAULT_CONNECT_TIMEOUT, PoolFigures, best_effort, connecting, invalid_connection_string, put, step,
};
use crate::tls::TlsOptions;
use crate::tls::postgres::PgTls;
use crate::{Outcome, Probe, ProbeError};

/// Checks a PostgreSQL server with `SELECT 1` and reports its version,
/// connections and database size.
///
/// Built from a connection string ([`new`](Self::new), a new connection per
/// check), a parsed [`tokio_postgres::Config`]
/// ([`from_config`](Self::from_config)) or the application's own
/// [`deadpool_postgres::Pool`] ([`from_pool`](Self::from_pool): the pool
/// connects however it was configured to). The default name is
/// `postgresql`; rename it with [`ProbeExt::with_name`](crate::ProbeExt::with_name).
///
/// TLS follows libpq: `sslmode` (`disable`, `prefer` — the default —,
/// `require`, `verify-ca`, `verify-full`), `sslrootcert` (a PEM file, or
/// `system`), `sslcert` and `sslkey` in the URL or `key=value` string, over
/// rustls. `require` only encrypts unless root certificates are given (then
/// it checks the chain, as `verify-ca`); `verify-full` also checks the host
/// name. [`tls_options`](Self::tls_options) sets the same in code (see
/// [`TlsOptions`]).
///
/// Details: `host` and `port` (when built from a connection string or
/// config), `database`, `version`, `active_connections`, `total_connections`,
/// `max_connections`, `database_size` (human readable), `database_size_bytes`;
/// over TLS `sslmode`, `tls_version`, `cert_not_after` and
/// `cert_days_remaining` (of the server's certificate); and, for a pool,
/// `pool_size`, `pool_available`, `pool_max_size`. The password is never
/// shown, not even in `Debug` output.
///
/// ```no_run
/// use std::time::Duration;
/// use axum_watch::{HealthRegistry, ProbeExt, probes::PostgresProbe};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = PostgresProbe::new("postgres://app:s3cret@db.internal:5432/orders?sslmode=verify-full")?
///     .connect_timeout(Duration::from_secs(2));
/// assert!(!format!("{db:?}").contains("s3cret"));
/// let registry = HealthRegistry::builder().add(db.with_name("orders-db")).build()?;
/// let report = registry.run_all().await;
/// println!("{:?}", report.probe("orders-db").map(|p| &p.details));
/// # Ok(())
/// # }
/// ```
pub struct PostgresProbe {
    source: Source,
    connect_timeout: Duration,
}

type Source = super::sql::Source<Direct, deadpool_postgres::Pool>;

/// A new connection per check: the driver's options and the TLS half.
struct Direct {
    config: Config,
    tls: PgTls,
}

impl PostgresProbe {
    /// A probe that opens a new connection for each check.
    ///
    /// `url` is a `postgres://` / `postgresql://` URL or a `key=value`
    /// connection string, with libpq's TLS keys (`sslmode`, `sslrootcert`,
    /// `sslcert`, `sslkey`). An unparsable one is an error whose text does
    /// not show the password; an `sslrootcert`, `sslcert` or `sslkey` file
    /// is read here, once.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `url` does not parse or a TLS file cannot be
    /// read.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        let (config, tls) = crate::tls::postgres::parse(url)
            .map_err(|e| invalid_connection_string("PostgresProbe", "PostgreSQL", e))?;
        Ok(Self::direct(config, tls))
    }

    /// A probe that opens a new connection from `config` for each check,
    /// with TLS as its `sslmode` says (`prefer` by default) and
    /// [`tls_options`](Self::tls_options) for whom to trust.
    #[must_use]
    pub fn from_config(config: Config) -> Self {
        let tls = PgTls::of_config(&config);
        Self::direct(config, tls)
    }

    fn direct(mut config: Config, tls: PgTls) -> Self {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        let target = describe(&config);
        Self {
            source: Source::direct(Direct { config, tls }, target),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Whom to trust and who the probe is over TLS (extra roots, client
    /// certificate, server name, or no verification for a test server);
    /// replaces what `sslrootcert`, `sslcert` and `sslkey` said. Whether TLS
    /// is used stays the `sslmode`'s choice. No effect on a pool.
    ///
    /// ```no_run
    /// use axum_watch::probes::PostgresProbe;
    /// use axum_watch::tls::TlsOptions;
    ///
    /// # fn main() -> Result<(), axum_watch::probes::ConfigError> {
    /// let ca = std::fs::read("/etc/ssl/rds-global-bundle.pem").unwrap_or_default();
    /// let probe = PostgresProbe::new("postgres://app@orders.abc.eu-west-1.rds.amazonaws.com/orders?sslmode=verify-full")?
    ///     .tls_options(TlsOptions::new().root_certificate_pem(ca)?);
    /// # drop(probe);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        if let Source::Direct { options: direct, .. } = &mut self.source {
            direct.tls.set_options(options);
        }
        self
    }

    /// A probe that borrows a connection from the application's pool for
    /// each check, so it sees what the application sees.
    #[must_use]
    pub fn from_pool(pool: deadpool_postgres::Pool) -> Self {
        Self {
            source: Source::Pool(pool),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// How long to wait for a connection, and for each query after it
    /// (default 5 s). The registry's timeout still bounds the whole check.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        if let Source::Direct { options: direct, .. } = &mut self.source {
            direct.config.connect_timeout(timeout);
        }
        self
    }

    async fn inspect(&self, client: &Client) -> Result<Outcome, ProbeError> {
        let limit = self.connect_timeout;
        let rows = step(limit, "running SELECT 1", client.simple_query("SELECT 1")).await?;
        let answered = rows
            .iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(row) if row.get(0) == Some("1")));
        if !answered {
            return Err(ProbeError::msg("SELECT 1 returned no row"));
        }

        // Independent queries, pipelined on the one connection; each one
        // that fails only leaves its fields out.
        let (server, activity, size) = tokio::join!(
            step(
                limit,
                "reading server settings",
                client.query_one(
                    "SELECT current_database(), current_setting('server_version'), \
                     current_setting('max_connections')::int8",
                    &[],
                ),
            ),
            step(
                limit,
                "reading pg_stat_activity",
                client.query_one(
                    "SELECT count(*) FILTER (WHERE state = 'active'), \
                     count(*) FILTER (WHERE backend_type = 'client backend') FROM pg_stat_activity",
                    &[],
                ),
            ),
            step(
                limit,
                "reading the database size",
                client.query_one(
                    "SELECT pg_database_size(current_database()), \
                     pg_size_pretty(pg_database_size(current_database()))",
                    &[],
                ),
            ),
        );

        let mut outcome = Outcome::healthy();
        if let Source::Direct { options: direct, .. } = &self.source {
            let config = &direct.config;
            if let Some(host) = config.get_hosts().first() {
                outcome = outcome.detail("host", host_text(host));
            }
            outcome = outcome.detail("port", config.get_ports().first().copied().unwrap_or(5432));
        }
        if let Some(row) = best_effort("postgres", server) {
            outcome = put(outcome, "database", row.try_get::<_, String>(0).ok());
            outcome = put(outcome, "version", row.try_get::<_, String>(1).ok());
            outcome = put(outcome, "max_connections", row.try_get::<_, i64>(2).ok());
        }
        if let Some(row) = best_effort("postgres", activity) {
            outcome = put(outcome, "active_connections", row.try_get::<_, i64>(0).ok());
            outcome = put(outcome, "total_connections", row.try_get::<_, i64>(1).ok());
        }
        if let Some(row) = best_effort("postgres", size) {
            outcome = put(outcome, "database_size", row.try_get::<_, String>(1).ok());
            outcome = put(outcome, "database_size_bytes", row.try_get::<_, i64>(0).ok());
        }
        Ok(outcome)
    }
}

impl Probe for PostgresProbe {
    fn name(&self) -> &str {
        "postgresql"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        match &self.source {
            Source::Direct { options, target } => {
                let (tls, peer) = options.tls.connector();
                let (client, connection) =
                    step(self.connect_timeout, &connecting(target), options.config.connect(tls)).await?;
                // The connection task ends once the client is dropped.
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "postgres probe: connection ended with an error");
                    }
                });
                let outcome = self.inspect(&client).await?;
                let peer = peer.lock().unwrap_or_else(PoisonError::into_inner).take();
                Ok(match peer {
                    Some(peer) => peer.add_to(outcome.detail("sslmode", options.tls.mode())),
                    None => outcome,
                })
            }
            Source::Pool(pool) => {
                let status = pool.status();
                let client = step(self.connect_timeout, CHECKOUT, pool.get()).await?;
                let figures = PoolFigures {
                    size: status.size,
                    available: status.available,
                    max_size: status.max_size,
                };
                Ok(figures.add_to(self.inspect(&client).await?))
            }
        }
    }
}

impl fmt::Debug for PostgresProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.debug("PostgresProbe", self.connect_timeout, f)
    }
}

fn host_text(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        #[cfg(unix)]
        Host::Unix(path) => path.display().to_string(),
    }
}

/// `host:port[,host:port…]/database`: where the probe points, without
/// the user or password.
fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{}:{port}", host_text(host))
        })
        .collect();
    if hosts.is_empty() {
        hosts.push("localhost:5432".to_owned());
    }
    let database = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{}/{database}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::PostgresProbe;

    #[test]
    fn targets_and_debug_output_hide_the_password() {
        let probe = PostgresProbe::new("postgres://app:s3cret@db.internal:6543/orders").unwrap();
        let debug = format!("{probe:?}");
        assert_eq!(
            debug,
            r#"PostgresProbe { target: "db.internal:6543/orders", connect_timeout: 5s }"#
        );
        let kv = PostgresProbe::new("host=a,b port=1,2 user=u password=s3cret").unwrap();
        assert_eq!(
            format!("{kv:?}"),
            r#"PostgresProbe { target: "a:1,b:2/u", connect_timeout: 5s }"#
        );
    }

    #[test]
    fn bad_connection_strings_are_clear_and_redacted() {
        let err = PostgresProbe::new("postgres://app:s3cret@db:notaport/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid PostgreSQL connection string: invalid value for option `port`"
        );
        let err = PostgresProbe::new("host=db password=s3cret bogus=1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid PostgreSQL connection string: unknown option `bogus`"
        );
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(!format!("{err:?}").contains("s3cret"));
    }
}
