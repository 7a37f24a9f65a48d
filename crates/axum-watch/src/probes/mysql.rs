//! [`MySqlProbe`]: an active MySQL / MariaDB check over mysql_async.
//!
//! Each check gets a connection (a fresh one from a URL, or one from the
//! application's pool), runs `SELECT 1`, then collects server metadata on a
//! best-effort basis: once `SELECT 1` answered, a metadata query that fails
//! or is slow only leaves its fields out.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, Opts, Pool};

use super::ConfigError;
use super::sql::{
    CHECKOUT, DEFAULT_CONNECT_TIMEOUT, PoolFigures, best_effort, connecting, invalid_connection_string, put, step,
};
use super::timeout::within;
use crate::tls::TlsOptions;
use crate::tls::mysql::MySqlTls;
use crate::{Outcome, Probe, ProbeError};

/// Checks a MySQL or MariaDB server with `SELECT 1` and reports its version,
/// connections and uptime.
///
/// Built from a `mysql://` URL ([`new`](Self::new), a new connection per
/// check), parsed [`mysql_async::Opts`] ([`from_opts`](Self::from_opts)) or the
/// application's own [`mysql_async::Pool`] ([`from_pool`](Self::from_pool)).
/// The default name is `mysql`; rename it with
/// [`ProbeExt::with_name`](crate::ProbeExt::with_name).
///
/// TLS (rustls, through mysql_async) follows the MySQL client's options in
/// the URL: `ssl-mode` (`DISABLED` — the default without it —, `PREFERRED`,
/// `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`), `ssl-ca` (a PEM file),
/// `ssl-cert` and `ssl-key`; mysql_async's own `require_ssl=true` works
/// too. `REQUIRED` only encrypts unless root certificates are given;
/// `VERIFY_CA` checks the host name as well, as `VERIFY_IDENTITY` (the
/// driver cannot skip the name alone: set
/// [`TlsOptions::server_name`] when connecting by another address).
/// [`tls_options`](Self::tls_options) sets whom to trust in code. The
/// driver does not show the server's certificate, so there is no expiry
/// detail; `tls` says whether the session is encrypted.
///
/// Details: `host`, `port`, `socket` (when the connection went through the
/// server's Unix socket, which mysql_async prefers on the same machine
/// unless the URL says `prefer_socket=false`), `database`, `version`,
/// `max_connections`, `threads_connected`, `uptime_seconds`, `tls`
/// (`true` when the session is encrypted, for a new connection) and, for a pool,
/// `pool_size`,
/// `pool_available`, `pool_max_size`. The password is never shown, not even
/// in `Debug` output.
///
/// ```no_run
/// use std::time::Duration;
/// use axum_watch::{HealthRegistry, probes::MySqlProbe};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = MySqlProbe::new("mysql://app:s3cret@db.internal:3306/shop")?
///     .connect_timeout(Duration::from_secs(2));
/// assert!(!format!("{db:?}").contains("s3cret"));
/// let registry = HealthRegistry::builder().add(db).build()?;
/// let report = registry.run_all().await;
/// println!("{:?}", report.probe("mysql").map(|p| &p.details));
/// # Ok(())
/// # }
/// ```
pub struct MySqlProbe {
    source: Source,
    connect_timeout: Duration,
}

type Source = super::sql::Source<Direct, Pool>;

/// A new connection per check: the driver's options and the TLS half.
struct Direct {
    opts: Opts,
    tls: MySqlTls,
}

impl MySqlProbe {
    /// A probe that opens a new connection for each check and closes it
    /// afterwards.
    ///
    /// An unparsable URL is an error whose text does not show the password.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `url` does not parse.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        let (opts, tls) =
            crate::tls::mysql::parse(url).map_err(|e| invalid_connection_string("MySqlProbe", "MySQL", e))?;
        let target = describe(&opts);
        Ok(Self {
            source: Source::direct(Direct { opts, tls }, target),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        })
    }

    /// A probe that opens a new connection with `opts` for each check, with
    /// the TLS options they carry (mysql_async's [`SslOpts`](mysql_async::SslOpts)).
    #[must_use]
    pub fn from_opts(opts: Opts) -> Self {
        let target = describe(&opts);
        // Opts' own TLS settings stand: no `ssl-mode` to apply.
        let tls = crate::tls::mysql::untouched();
        Self {
            source: Source::direct(Direct { opts, tls }, target),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Whom to trust and who the probe is over TLS (see [`TlsOptions`]);
    /// replaces what `ssl-ca`, `ssl-cert` and `ssl-key` said. Whether TLS is
    /// used stays the URL's choice. No effect on a pool.
    #[must_use]
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        if let Source::Direct { options: direct, .. } = &mut self.source {
            direct.tls.set_options(options);
        }
        self
    }

    /// A new connection: over TLS when the URL asks, falling back to plain
    /// text for `PREFERRED` when the server has no TLS. A TLS failure says
    /// what failed.
    async fn connect(&self, direct: &Direct, target: &str) -> Result<Conn, ProbeError> {
        let doing = connecting(target);
        let (first, fallback) = direct.tls.apply(&direct.opts);
        let tls = first.ssl_opts().is_some();
        let attempt = within(self.connect_timeout, &doing, async {
            Ok::<_, ProbeError>(Conn::new(first).await)
        })
        .await?;
        match attempt {
            Ok(conn) => Ok(conn),
            Err(mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer)) if fallback.is_some() => {
                step(
                    self.connect_timeout,
                    &doing,
                    Conn::new(fallback.unwrap_or_else(|| direct.opts.clone())),
                )
                .await
            }
            Err(error) if tls => {
                let host = direct.opts.ip_or_hostname().to_owned();
                let name = direct.tls.server_name().unwrap_or(host);
                match crate::tls::explain_chain(&error, Some(&name)) {
                    Some(why) => Err(ProbeError::with_kind(
                        "TlsError",
                        format!("{doing}: TLS handshake failed: {why}"),
                    )),
                    None => Err(super::sql::failed(&doing, error)),
                }
            }
            Err(error) => Err(super::sql::failed(&doing, error)),
        }
    }

    /// A probe that borrows a connection from the application's pool for
    /// each check, so it sees what the application sees.
    #[must_use]
    pub fn from_pool(pool: Pool) -> Self {
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
        self
    }

    async fn inspect(&self, conn: &mut Conn) -> Result<Outcome, ProbeError> {
        let limit = self.connect_timeout;
        let one = step(limit, "running SELECT 1", conn.query_first::<i64, _>("SELECT 1")).await?;
        if one != Some(1) {
            return Err(ProbeError::msg(format!("SELECT 1 returned {one:?}")));
        }

        // mysql_async moves a loopback connection onto the server's Unix
        // socket unless `prefer_socket=false`: say so when it did.
        let opts = conn.opts();
        let mut outcome = Outcome::healthy()
            .detail("host", opts.ip_or_hostname())
            .detail("port", opts.tcp_port());
        outcome = put(outcome, "socket", opts.socket());
        if let Source::Direct { .. } = &self.source {
            // A session over the Unix socket is never encrypted.
            outcome = outcome.detail("tls", opts.ssl_opts().is_some() && opts.socket().is_none());
        }

        // Each query that fails only leaves its fields out.
        let server = step(
            limit,
            "reading server variables",
            conn.query_first::<(Option<String>, Option<String>, Option<u64>), _>(
                "SELECT VERSION(), DATABASE(), @@max_connections",
            ),
        )
        .await;
        if let Some((version, database, max_connections)) = best_effort("mysql", server).flatten() {
            outcome = put(outcome, "database", database);
            outcome = put(outcome, "version", version);
            outcome = put(outcome, "max_connections", max_connections);
        }
        let status = step(
            limit,
            "reading server status",
            conn.query::<(String, String), _>(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Uptime')",
            ),
        )
        .await;
        if let Some(rows) = best_effort("mysql", status) {
            let read = |name: &str| {
                rows.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .and_then(|(_, value)| value.parse::<u64>().ok())
            };
            outcome = put(outcome, "threads_connected", read("Threads_connected"));
            outcome = put(outcome, "uptime_seconds", read("Uptime"));
        }
        Ok(outcome)
    }
}

impl Probe for MySqlProbe {
    fn name(&self) -> &str {
        "mysql"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        match &self.source {
            Source::Direct { options, target } => {
                let mut conn = self.connect(options, target).await?;
                let outcome = self.inspect(&mut conn).await;
                // Say goodbye so the server does not keep a dead session
                // around; how that goes does not change the result.
                if let Err(e) = step(self.connect_timeout, "disconnecting", conn.disconnect()).await {
                    tracing::debug!(error = %e, "mysql probe: disconnect failed");
                }
                outcome
            }
            Source::Pool(pool) => {
                let metrics = pool.metrics();
                let size = metrics.connection_count.load(Ordering::Relaxed);
                let available = metrics.connections_in_pool.load(Ordering::Relaxed);
                let mut conn = step(self.connect_timeout, CHECKOUT, pool.get_conn()).await?;
                let figures = PoolFigures {
                    size,
                    available,
                    max_size: conn.opts().pool_opts().constraints().max(),
                };
                Ok(figures.add_to(self.inspect(&mut conn).await?))
            }
        }
    }
}

impl fmt::Debug for MySqlProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Opts' derived Debug would print the password: show the target only.
        self.source.debug("MySqlProbe", self.connect_timeout, f)
    }
}

/// `host:port/database` (or the socket path): where the probe points,
/// without the user or password.
fn describe(opts: &Opts) -> String {
    let database = opts.db_name().unwrap_or("");
    match opts.socket() {
        Some(socket) => format!("{socket}/{database}"),
        None => format!("{}:{}/{database}", opts.ip_or_hostname(), opts.tcp_port()),
    }
}

#[cfg(test)]
mod tests {
    use super::MySqlProbe;

    #[test]
    fn targets_and_debug_output_hide_the_password() {
        let probe = MySqlProbe::new("mysql://app:s3cret@db.internal:3307/shop").unwrap();
        assert_eq!(
            format!("{probe:?}"),
            r#"MySqlProbe { target: "db.internal:3307/shop", connect_timeout: 5s }"#
        );
    }

    #[test]
    fn bad_urls_are_clear_and_redacted() {
        let err = MySqlProbe::new("mysql://app:s3cret@db:3306/x?bogus=1").unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text,
            "invalid MySQL connection string: Unknown connection URL parameter `bogus'"
        );
        let err = MySqlProbe::new("postgres://app:s3cret@db/x").unwrap_err();
        assert!(err.to_string().contains("Unsupported connection URL scheme"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
