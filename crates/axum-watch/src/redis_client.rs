//! Redis connections for [`RedisProbe`](crate::probes::RedisProbe),
//! [`RedisStorage`](crate::storage::RedisStorage) and the Celery probe's
//! Redis broker: `redis://` over TCP, `rediss://` over rustls with the
//! crate's [`TlsOptions`], `redis+unix://` over a Unix socket.
//!
//! The `redis` crate parses the URL and speaks the protocol; the socket and
//! the TLS handshake are made here, so every Redis client of the crate
//! trusts, identifies itself and names its failures the same way as the
//! other TLS clients, and sees the server's certificate.

use std::fmt;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError};

use crate::tls::{PeerTls, TlsOptions, Verification, explain_text};

/// Where a Redis client connects, and over what.
#[derive(Clone)]
pub(crate) struct RedisTarget {
    info: ConnectionInfo,
    /// `Some` for `rediss://`.
    tls: Option<TlsOptions>,
}

/// A connection that could not be made: the message says what failed,
/// without the password.
#[derive(Debug, Clone)]
pub(crate) struct ConnectError {
    /// The TLS handshake failed (rather than the socket or the protocol).
    pub(crate) tls: bool,
    pub(crate) message: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl RedisTarget {
    /// Parses `redis://`, `rediss://`, `redis+unix://` and `unix://` URLs
    /// with the `redis` crate's rules.
    pub(crate) fn parse(url: &str) -> Result<Self, RedisError> {
        let trimmed = url.trim_start();
        let (url, tls) = match trimmed.strip_prefix("rediss://") {
            Some(rest) => (format!("redis://{rest}"), Some(TlsOptions::new())),
            None => (trimmed.to_owned(), None),
        };
        let info = url.as_str().into_connection_info()?;
        if tls.is_some() && !matches!(info.addr(), ConnectionAddr::Tcp(..)) {
            return Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a rediss:// URL needs a host",
            )));
        }
        Ok(Self { info, tls })
    }

    /// Uses `options` for a `rediss://` target; a plain one ignores them.
    pub(crate) fn set_tls_options(&mut self, options: TlsOptions) {
        if self.tls.is_some() {
            self.tls = Some(options);
        }
    }

    /// The database the URL selects.
    #[cfg_attr(not(feature = "celery"), allow(dead_code))]
    pub(crate) fn db(&self) -> i64 {
        self.info.redis_settings().db()
    }

    /// Whether the target is `rediss://`.
    #[cfg(test)]
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// `redis://user:***@host:port/db` (`rediss://` over TLS): the address
    /// without the password.
    pub(crate) fn describe(&self) -> String {
        self.shown(true)
    }

    /// `redis://host:port/db`: the address without any credential.
    #[cfg_attr(not(feature = "celery"), allow(dead_code))]
    pub(crate) fn describe_address(&self) -> String {
        self.shown(false)
    }

    fn shown(&self, with_user: bool) -> String {
        let settings = self.info.redis_settings();
        let user = settings.username().unwrap_or_default();
        let auth = match (with_user, user.is_empty(), settings.password().is_some()) {
            (false, _, _) | (true, true, false) => String::new(),
            (true, false, false) => format!("{user}@"),
            (true, _, true) => format!("{user}:***@"),
        };
        let db = settings.db();
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        match self.info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                format!("{scheme}://{auth}{host}:{port}/{db}")
            }
            ConnectionAddr::Unix(path) => format!("redis+unix://{auth}{}?db={db}", path.display()),
            _ => "redis".to_owned(),
        }
    }

    /// `host:port`, or the socket path: what a connect error names.
    fn address(&self) -> String {
        match self.info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                }
            }
            ConnectionAddr::Unix(path) => path.display().to_string(),
            _ => "redis".to_owned(),
        }
    }

    /// Opens a connection (socket, TLS handshake, `HELLO`/`AUTH`/`SELECT`)
    /// within `timeout`, with `config` for what follows (response timeout).
    /// Also returns what the handshake showed of the server, over TLS.
    pub(crate) async fn connect(
        &self,
        timeout: Duration,
        config: AsyncConnectionConfig,
    ) -> Result<(MultiplexedConnection, Option<PeerTls>), ConnectError> {
        match tokio::time::timeout(timeout, self.open(config)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError {
                tls: false,
                message: format!(
                    "no answer within {timeout:?} from {} while connecting and setting up the session",
                    self.address()
                ),
            }),
        }
    }

    async fn open(
        &self,
        config: AsyncConnectionConfig,
    ) -> Result<(MultiplexedConnection, Option<PeerTls>), ConnectError> {
        let address = self.address();
        let failed = |what: &str, error: &dyn fmt::Display| ConnectError {
            tls: false,
            message: crate::redact(&format!("{what} {address}: {error}")).into_owned(),
        };
        let settings = self.info.redis_settings();
        let setup = |error: RedisError| match self.tls.as_ref().and_then(|_| explain_text(&error.to_string())) {
            Some(why) => ConnectError {
                tls: true,
                message: format!("TLS session with {address} failed: {why}"),
            },
            None => failed("cannot set up the connection to", &error),
        };
        match self.info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| failed("cannot connect to", &e))?;
                let _ = tcp.set_nodelay(true);
                match &self.tls {
                    None => {
                        let (connection, driver) = MultiplexedConnection::new_with_config(settings, tcp, config)
                            .await
                            .map_err(setup)?;
                        tokio::spawn(driver);
                        Ok((connection, None))
                    }
                    Some(options) => {
                        let stream =
                            options
                                .handshake(Verification::Full, host, tcp)
                                .await
                                .map_err(|e| ConnectError {
                                    tls: true,
                                    message: format!("TLS handshake with {address} failed: {e}"),
                                })?;
                        let peer = PeerTls::of(stream.get_ref().1);
                        let (connection, driver) = MultiplexedConnection::new_with_config(settings, stream, config)
                            .await
                            .map_err(setup)?;
                        tokio::spawn(driver);
                        Ok((connection, Some(peer)))
                    }
                }
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => {
                let socket = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| failed("cannot connect to", &e))?;
                let (connection, driver) = MultiplexedConnection::new_with_config(settings, socket, config)
                    .await
                    .map_err(setup)?;
                tokio::spawn(driver);
                Ok((connection, None))
            }
            _ => Err(ConnectError {
                tls: false,
                message: format!("unsupported Redis address {address}"),
            }),
        }
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::RedisTarget;

    #[test]
    fn urls_parse_and_describe_without_the_password() {
        let cases = [
            (
                "redis://:s3cret@127.0.0.1:6379/2",
                "redis://:***@127.0.0.1:6379/2",
                false,
            ),
            (
                "rediss://app:s3cret@cache.example.com:6380/0",
                "rediss://app:***@cache.example.com:6380/0",
                true,
            ),
            ("rediss://cache.example.com", "rediss://cache.example.com:6379/0", true),
            ("redis://[::1]:6379", "redis://[::1]:6379/0", false),
        ];
        for (url, shown, tls) in cases {
            let target = RedisTarget::parse(url).unwrap();
            assert_eq!(target.describe(), shown, "{url}");
            assert_eq!(target.is_tls(), tls, "{url}");
        }
        assert!(RedisTarget::parse("http://host").is_err());
    }
}
