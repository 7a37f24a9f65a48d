//! PostgreSQL over rustls for [`PostgresProbe`](crate::probes::PostgresProbe)
//! and [`PostgresStorage`](crate::storage::PostgresStorage): libpq's `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey` read from the connection string
//! (URL or `key=value`), and a `MakeTlsConnect` for tokio-postgres.
//!
//! | `sslmode` | TLS | certificate check |
//! | --- | --- | --- |
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | none |
//! | `require` | always | none, or the chain (as `verify-ca`) when root certificates are given |
//! | `verify-ca` | always | the chain to a trusted root |
//! | `verify-full` | always | the chain and the host name |

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Config;
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::{HandshakeError, PeerTls, TlsOptions, Verification};

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            // libpq's `allow` tries plain text first; without TLS-on-retry
            // here, plain text it is, as with `disable`.
            "disable" | "allow" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Why a connection string could not be used.
pub(crate) type PgUrlError = super::UrlError<tokio_postgres::Error>;

/// The TLS half of a PostgreSQL connection: the mode and whom to trust.
#[derive(Clone, Debug)]
pub(crate) struct PgTls {
    mode: SslMode,
    options: TlsOptions,
}

impl PgTls {
    /// Replaces what `sslrootcert`, `sslcert` and `sslkey` said.
    pub(crate) fn set_options(&mut self, options: TlsOptions) {
        self.options = options;
    }

    /// The mode, as libpq names it.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    /// How much of the server's certificate is checked, as libpq does:
    /// `require` with root certificates given checks the chain.
    fn verification(&self) -> Verification {
        match self.mode {
            SslMode::VerifyFull => Verification::Full,
            SslMode::VerifyCa => Verification::CaOnly,
            SslMode::Require if !self.options.root_certificates().is_empty() => Verification::CaOnly,
            SslMode::Disable | SslMode::Prefer | SslMode::Require => Verification::None,
        }
    }

    /// The connector for one connection, and where it leaves what it saw of
    /// the server.
    pub(crate) fn connector(&self) -> (MakeRustls, Arc<Mutex<Option<PeerTls>>>) {
        let peer = Arc::new(Mutex::new(None));
        let make = MakeRustls {
            options: self.options.clone(),
            verification: self.verification(),
            peer: Arc::clone(&peer),
        };
        (make, peer)
    }

    /// The TLS half of a configuration parsed elsewhere (whose `sslmode`
    /// can only be `disable`, `prefer` or `require`).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn of_config(config: &Config) -> Self {
        let mode = match config.get_ssl_mode() {
            DriverSslMode::Disable => SslMode::Disable,
            DriverSslMode::Require => SslMode::Require,
            _ => SslMode::Prefer,
        };
        Self {
            mode,
            options: TlsOptions::new(),
        }
    }
}

/// Parses a `postgres://` URL or a `key=value` connection string, taking
/// `sslmode` (with `verify-ca` and `verify-full`, which tokio-postgres does
/// not know), `sslrootcert` (a file, or `system` for the system's roots),
/// `sslcert` and `sslkey` out before tokio-postgres reads the rest.
pub(crate) fn parse(url: &str) -> Result<(Config, PgTls), PgUrlError> {
    let (rest, keys) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        super::take_query_params(url, &TLS_KEYS)
    } else {
        take_from_key_values(url)
    };
    let mut config = Config::from_str(&rest).map_err(PgUrlError::Driver)?;
    let mut mode = SslMode::Prefer;
    let mut root = None;
    let mut cert = None;
    let mut key = None;
    for (name, value) in keys {
        match name.as_str() {
            "sslmode" => {
                mode = SslMode::parse(&value).ok_or_else(|| {
                    PgUrlError::Tls(format!(
                        "invalid value {value:?} for option `sslmode`: use disable, prefer, require, verify-ca or verify-full"
                    ))
                })?;
            }
            "sslrootcert" => root = Some(value),
            "sslcert" => cert = Some(PathBuf::from(value)),
            _ => key = Some(PathBuf::from(value)),
        }
    }
    let mut options = TlsOptions::new();
    match root.as_deref() {
        // libpq 16: the system's roots, and the host name checked.
        Some("system") => {
            if matches!(
                mode,
                SslMode::Disable | SslMode::Prefer | SslMode::Require | SslMode::VerifyCa
            ) {
                mode = SslMode::VerifyFull;
            }
        }
        Some(path) => {
            // As libpq: the file's roots only, not the system's.
            options = options
                .root_certificate_file(path)
                .map_err(|e| PgUrlError::Tls(format!("sslrootcert: {e}")))?
                .system_roots(false);
        }
        None => {}
    }
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf, option: &str| {
                std::fs::read(path)
                    .map_err(|e| PgUrlError::Tls(format!("cannot read {option} {}: {e}", path.display())))
            };
            let (cert_pem, key_pem) = (read(&cert, "sslcert")?, read(&key, "sslkey")?);
            options = options
                .client_identity_pem(cert_pem, key_pem)
                .map_err(|e| PgUrlError::Tls(format!("sslcert/sslkey: {e}")))?;
        }
        (None, None) => {}
        _ => {
            return Err(PgUrlError::Tls(
                "sslcert and sslkey go together: give both or neither".to_owned(),
            ));
        }
    }
    config.ssl_mode(match mode {
        SslMode::Disable => DriverSslMode::Disable,
        SslMode::Prefer => DriverSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
    });
    Ok((config, PgTls { mode, options }))
}

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// A `key=value` string without its TLS keys, and those keys' values.
/// Values may be quoted with `'`, with `\'` and `\\` inside, as libpq reads
/// them.
fn take_from_key_values(text: &str) -> (String, Vec<(String, String)>) {
    let mut kept = String::with_capacity(text.len());
    let mut taken = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let (pair, name, value, after) = split_pair(trimmed);
        if TLS_KEYS.contains(&name.as_str()) {
            taken.push((name, value));
        } else {
            if !kept.is_empty() {
                kept.push(' ');
            }
            kept.push_str(pair);
        }
        rest = after;
    }
    (kept, taken)
}

/// The first `key = value` of `text` (which starts with the key): its text
/// as written, the key, the unquoted value, and what follows it.
fn split_pair(text: &str) -> (&str, String, String, &str) {
    let name_end = text.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(text.len());
    let name = text[..name_end].to_owned();
    let after_name = text[name_end..].trim_start();
    let Some(after_eq) = after_name.strip_prefix('=') else {
        // Not a pair: keep the word, tokio-postgres will say what is wrong.
        let end = name_end;
        return (&text[..end], name, String::new(), &text[end..]);
    };
    let value_text = after_eq.trim_start();
    let value_start = text.len() - value_text.len();
    let mut value = String::new();
    let end = if let Some(quoted) = value_text.strip_prefix('\'') {
        // An unterminated quote runs to the end (tokio-postgres then says so).
        let mut end = text.len();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '\'' => {
                    end = value_start + 1 + i + 1;
                    break;
                }
                other => value.push(other),
            }
        }
        end
    } else {
        let len = value_text.find(char::is_whitespace).unwrap_or(value_text.len());
        value.push_str(&value_text[..len]);
        value_start + len
    };
    (&text[..end], name, value, &text[end..])
}

/// Makes one TLS connector per connection attempt (tokio-postgres asks for
/// one per host).
#[derive(Clone)]
pub(crate) struct MakeRustls {
    options: TlsOptions,
    verification: Verification,
    peer: Arc<Mutex<Option<PeerTls>>>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = HandshakeError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, HandshakeError> {
        Ok(RustlsConnect {
            options: self.options.clone(),
            verification: self.verification,
            host: domain.to_owned(),
            peer: Arc::clone(&self.peer),
        })
    }
}

/// The TLS handshake of one connection.
pub(crate) struct RustlsConnect {
    options: TlsOptions,
    verification: Verification,
    host: String,
    peer: Arc<Mutex<Option<PeerTls>>>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = HandshakeError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, HandshakeError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.options.handshake(self.verification, &self.host, stream).await?;
            let connection = tls.get_ref().1;
            *self.peer.lock().unwrap_or_else(PoisonError::into_inner) = Some(PeerTls::of(connection));
            let end_point = connection
                .peer_certificates()
                .and_then(<[_]>::first)
                .and_then(|der| end_point_hash(der));
            Ok(RustlsStream { inner: tls, end_point })
        })
    }
}

/// `tls-server-end-point` channel binding (RFC 5929): the hash of the
/// server's certificate, with its signature's hash (SHA-256 for MD5 and
/// SHA-1), so SCRAM-SHA-256-PLUS can prove no one sits in between.
fn end_point_hash(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let digest = match oid.as_str() {
        // md5, sha1, sha256 with RSA; ecdsa with sha1 and sha256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2" => sha2::Sha256::digest(der).to_vec(),
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => sha2::Sha384::digest(der).to_vec(),
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => sha2::Sha512::digest(der).to_vec(),
        // Ed25519, RSA-PSS and the rest: no binding rather than a wrong one.
        _ => return None,
    };
    Some(digest)
}

/// A TLS stream to PostgreSQL, with its channel binding.
pub(crate) struct RustlsStream<S> {
    inner: tokio_rustls::client::TlsStream<S>,
    /// The `tls-server-end-point` hash, when it can be made.
    end_point: Option<Vec<u8>>,
}

impl<S> tokio_postgres::tls::TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        match &self.end_point {
            Some(hash) => ChannelBinding::tls_server_end_point(hash.clone()),
            None => ChannelBinding::none(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_keys_come_out_of_urls() {
        let (config, tls) = parse("postgres://app:pw@db:5432/x?sslmode=verify-full&application_name=a").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.verification(), Verification::Full);
        assert_eq!(config.get_ssl_mode(), DriverSslMode::Require);
        assert_eq!(config.get_application_name(), Some("a"));
        let (config, tls) = parse("postgresql://db/x").unwrap();
        assert_eq!(
            (tls.mode, config.get_ssl_mode()),
            (SslMode::Prefer, DriverSslMode::Prefer)
        );
        assert_eq!(tls.verification(), Verification::None);
        let (_, tls) = parse("postgres://db/x?sslmode=verify-ca").unwrap();
        assert_eq!(tls.verification(), Verification::CaOnly);
        let (config, tls) = parse("postgres://db/x?sslmode=disable").unwrap();
        assert_eq!(
            (tls.mode, config.get_ssl_mode()),
            (SslMode::Disable, DriverSslMode::Disable)
        );
        let (_, tls) = parse("postgres://db/x?sslrootcert=system").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
    }

    #[test]
    fn tls_keys_come_out_of_key_value_strings() {
        let (config, tls) = parse("host=db  sslmode = verify-full user='a b\\'c' dbname=x").unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(config.get_user(), Some("a b'c"));
        assert_eq!(config.get_dbname(), Some("x"));
        let (rest, taken) = take_from_key_values("sslrootcert='/tmp/my ca.pem' host=db");
        assert_eq!(rest, "host=db");
        assert_eq!(taken, [("sslrootcert".to_owned(), "/tmp/my ca.pem".to_owned())]);
    }

    #[test]
    fn bad_tls_keys_are_clear() {
        let Err(PgUrlError::Tls(e)) = parse("postgres://db/x?sslmode=verify") else {
            panic!("accepted");
        };
        assert!(e.starts_with("invalid value \"verify\" for option `sslmode`"), "{e}");
        let Err(PgUrlError::Tls(e)) = parse("host=db sslrootcert=/nonexistent/ca.pem") else {
            panic!("accepted");
        };
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let Err(PgUrlError::Tls(e)) = parse("host=db sslcert=/tmp/c.pem") else {
            panic!("accepted");
        };
        assert_eq!(e, "sslcert and sslkey go together: give both or neither");
    }
}
