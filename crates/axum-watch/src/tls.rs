//! [`TlsOptions`]: how every network probe and shared store of the crate
//! secures its connection, with one set of names.
//!
//! Every client here speaks TLS through rustls with the aws-lc-rs crypto
//! provider (no OpenSSL). Whether a connection uses TLS at all is said where
//! users already say it: `sslmode` in a PostgreSQL connection string,
//! `rediss://` for Redis, `ssl-mode` for MySQL, `amqps://` for AMQP. The
//! options below say whom to trust and who the client is:
//!
//! | option | default | |
//! | --- | --- | --- |
//! | [`root_certificate_pem`](TlsOptions::root_certificate_pem) | none | also trust these CA certificates (PEM) |
//! | [`root_certificate_file`](TlsOptions::root_certificate_file) | none | the same, read from a file |
//! | [`system_roots`](TlsOptions::system_roots) | `true` | trust the system's root certificates |
//! | [`client_identity_pem`](TlsOptions::client_identity_pem) | none | a client certificate and key, for mutual TLS |
//! | [`server_name`](TlsOptions::server_name) | the host | the name the certificate must carry (and SNI) |
//! | [`danger_accept_invalid_certs`](TlsOptions::danger_accept_invalid_certs) | `false` | accept any certificate: test setups only |
//!
//! A probe or store takes them with `tls_options(options)`. A TLS failure
//! says what failed (an unknown issuer, a name mismatch, an expired
//! certificate, a protocol version the server refused) and never shows a
//! credential; where the client sees the server's certificate, a check
//! reports `tls_version`, `cert_not_after` and `cert_days_remaining`.
//!
//! ```no_run
//! use axum_watch::tls::TlsOptions;
//!
//! # fn main() -> Result<(), axum_watch::probes::ConfigError> {
//! // A managed database behind a private CA, reached through a tunnel on
//! // 127.0.0.1, with a client certificate.
//! let tls = TlsOptions::new()
//!     .root_certificate_file("/etc/ssl/private-ca.pem")?
//!     .client_identity_pem(std::fs::read("client.pem").unwrap_or_default(), std::fs::read("client.key").unwrap_or_default())?
//!     .server_name("db.internal.example.com")?;
//! assert!(!tls.accepts_invalid_certs());
//! assert!(format!("{tls:?}").contains("client_identity: true"));
//! # Ok(())
//! # }
//! ```
// The internal `_tls` feature alone builds the type with no client to use
// its connection half; mysql_async makes its own connections.
#![cfg_attr(
    not(any(
        feature = "postgres",
        feature = "postgres-storage",
        feature = "redis",
        feature = "redis-storage",
        feature = "celery",
        feature = "smtp",
        feature = "kafka"
    )),
    allow(dead_code)
)]

use std::error::Error as StdError;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};

use crate::probes::{ConfigError, ConfigErrorKind};

#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(any(feature = "postgres", feature = "postgres-storage"))]
pub(crate) mod postgres;

/// What a [`ConfigError`] from these options names as its source.
const OPTIONS: &str = "TlsOptions";
const SECONDS_PER_DAY: i64 = 86_400;

/// Whom a TLS client trusts and who it is: extra root certificates, the
/// system's roots, a client certificate for mutual TLS, the expected server
/// name, and the opt-out of verification for test setups. See the [module
/// documentation](self) for the table and the probes that take it.
///
/// Certificates and keys are parsed when set, so a bad PEM is a
/// [`ConfigError`] at start-up rather than a failing check. `Debug` output
/// shows counts and flags, never a key.
///
/// ```
/// use axum_watch::tls::TlsOptions;
///
/// // A test server with a self-signed certificate: nothing is verified.
/// let tls = TlsOptions::new().danger_accept_invalid_certs(true);
/// assert!(tls.accepts_invalid_certs());
/// let err = TlsOptions::new().root_certificate_pem("not a certificate").unwrap_err();
/// assert_eq!(err.to_string(), "invalid root certificate: the PEM holds no certificate");
/// ```
#[derive(Clone)]
pub struct TlsOptions {
    roots: Vec<CertificateDer<'static>>,
    /// The PEM the roots came from, for clients that read a CA file.
    roots_pem: Vec<u8>,
    system_roots: bool,
    identity: Option<Arc<Identity>>,
    server_name: Option<String>,
    accept_invalid_certs: bool,
    /// The client configurations built from these options, one per
    /// verification level, made on first use (loading the system's roots
    /// is not free) and forgotten by every setter.
    configs: Arc<[OnceLock<Built>; 3]>,
}

/// A client configuration, or why it could not be made.
type Built = Result<Arc<ClientConfig>, String>;

/// A client certificate chain and its key, parsed, and the PEM they came
/// from (for clients that take PEM themselves).
pub(crate) struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    #[cfg_attr(not(any(feature = "mysql", feature = "mongo")), allow(dead_code))]
    pub(crate) chain_pem: Vec<u8>,
    #[cfg_attr(not(any(feature = "mysql", feature = "mongo")), allow(dead_code))]
    pub(crate) key_pem: Vec<u8>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("root_certificates", &self.roots.len())
            .field("system_roots", &self.system_roots)
            .field("client_identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .field("danger_accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

impl TlsOptions {
    /// The defaults: the system's roots, no client certificate, the host's
    /// own name, certificates verified.
    #[must_use]
    pub fn new() -> Self {
        Self {
            roots: Vec::new(),
            roots_pem: Vec::new(),
            system_roots: true,
            identity: None,
            server_name: None,
            accept_invalid_certs: false,
            configs: Arc::default(),
        }
    }

    /// Also trusts the certificates in `pem` (one or more `BEGIN
    /// CERTIFICATE` blocks) as roots, such as a private CA or a cloud
    /// provider's bundle (RDS, Cloud SQL, Azure).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] of kind
    /// [`InvalidCertificate`](ConfigErrorKind::InvalidCertificate) when the
    /// PEM holds no certificate or a malformed one.
    pub fn root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let certs = certificates(pem.as_ref(), "root_certificate_pem", "invalid root certificate")?;
        self.roots.extend(certs);
        self.roots_pem.extend_from_slice(pem.as_ref());
        if !self.roots_pem.ends_with(b"\n") {
            self.roots_pem.push(b'\n');
        }
        Ok(self.changed())
    }

    /// [`root_certificate_pem`](Self::root_certificate_pem) with the PEM read
    /// from `path` (what `sslrootcert` and `ssl-ca` name in a URL).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the file cannot be read or holds no valid
    /// certificate.
    pub fn root_certificate_file(self, path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| {
            ConfigError::because(
                ConfigErrorKind::InvalidCertificate,
                OPTIONS,
                "root_certificate_file",
                &format!("cannot read the root certificate file {}", path.display()),
                &e,
            )
        })?;
        self.root_certificate_pem(pem)
    }

    /// Whether the system's root certificates are trusted too (default
    /// `true`). Turn it off to trust only the roots given here, as
    /// `sslrootcert` does for PostgreSQL.
    #[must_use]
    pub fn system_roots(mut self, trust: bool) -> Self {
        self.system_roots = trust;
        self.changed()
    }

    /// The certificate chain (`cert_pem`, leaf first) and private key
    /// (`key_pem`: PKCS#8, PKCS#1 or SEC1) the client presents when the
    /// server asks for one: mutual TLS.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when either PEM holds nothing usable; the error
    /// never shows the key.
    pub fn client_identity_pem(
        mut self,
        cert_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        let chain = certificates(cert_pem.as_ref(), "client_identity_pem", "invalid client certificate")?;
        // The key's parse error could quote it: say only what is wrong.
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_ref()).map_err(|_| {
            ConfigError::new(
                ConfigErrorKind::InvalidCertificate,
                OPTIONS,
                "client_identity_pem",
                "invalid client key: no PKCS#8, PKCS#1 or SEC1 private key in the PEM",
            )
        })?;
        self.identity = Some(Arc::new(Identity {
            chain,
            key,
            chain_pem: cert_pem.as_ref().to_vec(),
            key_pem: key_pem.as_ref().to_vec(),
        }));
        Ok(self.changed())
    }

    /// The name the server's certificate must be valid for, and the SNI the
    /// client sends, instead of the host connected to: for a server reached
    /// through a tunnel, a proxy or an IP address.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `name` is neither a DNS name nor an IP address.
    pub fn server_name(mut self, name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        if ServerName::try_from(name.as_str()).is_err() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidOption,
                OPTIONS,
                "server_name",
                format!("invalid TLS server name {name:?}: use a DNS name or an IP address"),
            ));
        }
        self.server_name = Some(name);
        Ok(self.changed())
    }

    /// Accepts any server certificate: expired, self-signed, issued by an
    /// unknown CA or for another name. Only for test setups: the connection
    /// is still encrypted but open to interception. Default `false`.
    #[must_use]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self.changed()
    }

    /// Whether [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs) is on.
    #[must_use]
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid_certs
    }

    /// The name set with [`server_name`](Self::server_name), if any.
    #[must_use]
    pub fn server_name_override(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    fn changed(mut self) -> Self {
        self.configs = Arc::default();
        self
    }

    /// The extra root certificates, DER.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn root_certificates(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// The extra root certificates as the PEM they were given in.
    #[cfg_attr(not(feature = "mongo"), allow(dead_code))]
    pub(crate) fn root_certificates_pem(&self) -> &[u8] {
        &self.roots_pem
    }

    /// Whether the system's roots are trusted.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn trusts_system_roots(&self) -> bool {
        self.system_roots
    }

    /// The client certificate and key, if any.
    #[cfg_attr(not(any(feature = "mysql", feature = "mongo")), allow(dead_code))]
    pub(crate) fn identity(&self) -> Option<&Identity> {
        self.identity.as_deref()
    }

    /// The rustls configuration for `verification` (the options'
    /// [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs)
    /// turns every level into [`Verification::None`]). Built once per level.
    ///
    /// # Errors
    ///
    /// A message when no root certificate can be had, or the client
    /// certificate does not match its key.
    pub(crate) fn client_config(&self, verification: Verification) -> Result<Arc<ClientConfig>, String> {
        let verification = if self.accept_invalid_certs {
            Verification::None
        } else {
            verification
        };
        let slot = &self.configs[verification as usize];
        slot.get_or_init(|| self.build(verification)).clone()
    }

    fn build(&self, verification: Verification) -> Result<Arc<ClientConfig>, String> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        let builder = match verification {
            Verification::None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient::any(&provider))),
            Verification::Full | Verification::CaOnly => {
                let roots = Arc::new(self.root_store()?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
                if verification == Verification::Full {
                    builder.with_webpki_verifier(webpki)
                } else {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(Lenient::any_name(webpki, &provider)))
                }
            }
        };
        let config = match &self.identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|e| format!("unusable client certificate: {}", explain(&e)))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    fn root_store(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::empty();
        for cert in &self.roots {
            roots
                .add(cert.clone())
                .map_err(|e| format!("unusable root certificate: {e}"))?;
        }
        if self.system_roots {
            roots.add_parsable_certificates(system_roots().iter().cloned());
        }
        if roots.is_empty() {
            return Err(if self.system_roots {
                "no root certificates found on this system; add one with root_certificate_pem".to_owned()
            } else {
                "no root certificate to trust: system roots are off and none was given".to_owned()
            });
        }
        Ok(roots)
    }

    /// The name to verify (and send as SNI) for a connection to `host`: the
    /// [`server_name`](Self::server_name) override, or `host` itself.
    pub(crate) fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, String> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_owned())
            .map_err(|_| format!("{name:?} is not a valid TLS server name; set one with server_name"))
    }

    /// The TLS handshake over `stream`, to `host`, with `verification`.
    ///
    /// # Errors
    ///
    /// A [`HandshakeError`] that says what failed.
    pub(crate) async fn handshake<S>(
        &self,
        verification: Verification,
        host: &str,
        stream: S,
    ) -> Result<TlsStream<S>, HandshakeError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let config = self.client_config(verification).map_err(HandshakeError)?;
        let name = self.server_name_for(host).map_err(HandshakeError)?;
        let shown = name.to_str().into_owned();
        TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| HandshakeError(explain_io(&e, &shown)))
    }
}

/// How much of the server's certificate a connection checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verification {
    /// The chain to a trusted root and the server's name (`verify-full`).
    Full = 0,
    /// The chain to a trusted root, any name (`verify-ca`).
    #[cfg_attr(not(any(feature = "postgres", feature = "postgres-storage")), allow(dead_code))]
    CaOnly = 1,
    /// Nothing: encryption only (`require`, `prefer`).
    None = 2,
}

/// Why a connection string with TLS keys (`sslmode`, `ssl-mode`…) could
/// not be used.
#[cfg(any(feature = "postgres", feature = "postgres-storage", feature = "mysql"))]
#[derive(Debug)]
pub(crate) enum UrlError<E> {
    /// The driver refused what is left once the TLS keys are taken out.
    Driver(E),
    /// A TLS key had a bad value or named an unreadable file.
    Tls(String),
}

/// A failed TLS handshake, its message already saying what failed.
#[derive(Debug, Clone)]
pub(crate) struct HandshakeError(pub(crate) String);

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for HandshakeError {}

/// What a connection saw of the server: the TLS version and when the
/// server's certificate expires.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerTls {
    /// `TLSv1.3`, `TLSv1.2`.
    pub(crate) version: Option<String>,
    /// The leaf certificate's `notAfter`, in seconds since the epoch.
    pub(crate) not_after: Option<i64>,
}

impl PeerTls {
    /// What `connection` shows after its handshake.
    pub(crate) fn of(connection: &ClientConnection) -> Self {
        Self {
            version: connection
                .protocol_version()
                .and_then(|v| v.as_str())
                .map(|v| v.replace('_', ".")),
            not_after: connection
                .peer_certificates()
                .and_then(<[_]>::first)
                .and_then(|der| not_after(der)),
        }
    }

    /// `outcome` with `tls_version`, `cert_not_after` and
    /// `cert_days_remaining` (whole days, floor; negative once expired), as
    /// far as they are known.
    #[cfg_attr(
        not(any(feature = "postgres", feature = "redis", feature = "celery")),
        allow(dead_code)
    )]
    pub(crate) fn add_to(&self, mut outcome: crate::Outcome) -> crate::Outcome {
        if let Some(version) = &self.version {
            outcome = outcome.detail("tls_version", version.as_str());
        }
        if let Some(expiry) = self.not_after {
            if let Ok(at) = jiff::Timestamp::from_second(expiry) {
                outcome = outcome.detail("cert_not_after", at.to_string());
            }
            let days = (expiry - jiff::Timestamp::now().as_second()).div_euclid(SECONDS_PER_DAY);
            outcome = outcome.detail("cert_days_remaining", days);
        }
        outcome
    }
}

/// `notAfter` of a DER certificate, in seconds since the epoch.
pub(crate) fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The crate's one crypto provider, aws-lc-rs.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(aws_lc_rs::default_provider())))
}

/// Makes aws-lc-rs the process's default provider unless one is set, for
/// client libraries that build their rustls configuration with the process
/// default (mysql_async): with two providers compiled in, rustls could not
/// choose one by itself.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) fn install_default_provider() {
    if CryptoProvider::get_default().is_none() {
        // Another thread may have installed one meanwhile: either is fine.
        let _ = aws_lc_rs::default_provider().install_default();
    }
}

/// The system's root certificates, loaded once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::debug!(%error, "some system root certificates could not be loaded");
        }
        loaded.certs
    })
}

fn certificates(pem: &[u8], option: &'static str, what: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match parsed {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(ConfigError::new(
            ConfigErrorKind::InvalidCertificate,
            OPTIONS,
            option,
            format!("{what}: the PEM holds no certificate"),
        )),
        Err(e) => Err(ConfigError::new(
            ConfigErrorKind::InvalidCertificate,
            OPTIONS,
            option,
            format!("{what}: {e}"),
        )),
    }
}

/// What a TLS failure somewhere in `error`'s chain means, in words that
/// name it (`unknown issuer`, `name mismatch`, `expired`, `protocol
/// version`...), or `None` when no TLS error is in the chain. `server` is
/// the name the certificate was checked against, when known.
pub(crate) fn explain_chain(error: &(dyn StdError + 'static), server: Option<&str>) -> Option<String> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(explain_for(tls, server));
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(explain_for(tls, server));
        }
        if let Some(handshake) = current.downcast_ref::<HandshakeError>() {
            return Some(handshake.0.clone());
        }
        next = current.source();
    }
    None
}

/// What a TLS failure quoted in `text` means, for client libraries that
/// keep only the text of the error: a refused server certificate as rustls
/// words it (`invalid peer certificate: …`), or an alert from the server (a
/// TLS 1.3 server refuses a client certificate after the handshake, on the
/// first read).
#[cfg_attr(
    not(any(
        feature = "redis",
        feature = "redis-storage",
        feature = "celery",
        feature = "mongo",
        feature = "rabbitmq"
    )),
    allow(dead_code)
)]
pub(crate) fn explain_text(text: &str) -> Option<String> {
    const ALERTS: [AlertDescription; 7] = [
        AlertDescription::CertificateRequired,
        AlertDescription::BadCertificate,
        AlertDescription::UnknownCA,
        AlertDescription::CertificateUnknown,
        AlertDescription::AccessDenied,
        AlertDescription::ProtocolVersion,
        AlertDescription::HandshakeFailure,
    ];
    // rustls's own wording of each certificate error, Display then Debug.
    const CERTIFICATES: [(&str, CertificateError); 8] = [
        ("UnknownIssuer", CertificateError::UnknownIssuer),
        ("certificate expired", CertificateError::Expired),
        ("Expired", CertificateError::Expired),
        ("certificate not valid for name", CertificateError::NotValidForName),
        ("NotValidForName", CertificateError::NotValidForName),
        ("certificate not valid yet", CertificateError::NotValidYet),
        ("NotValidYet", CertificateError::NotValidYet),
        ("BadSignature", CertificateError::BadSignature),
    ];
    if let Some((_, rest)) = text.split_once("invalid peer certificate: ") {
        return CERTIFICATES
            .iter()
            .find(|(words, _)| rest.starts_with(words))
            .map(|(_, error)| explain_certificate(error, None));
    }
    ALERTS
        .into_iter()
        .find(|alert| text.contains(&format!("received fatal alert: {alert:?}")))
        .map(explain_alert)
}

fn explain_io(error: &std::io::Error, server: &str) -> String {
    explain_chain(error, Some(server)).unwrap_or_else(|| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            "the server closed the connection during the TLS handshake (does it speak TLS on this port?)".to_owned()
        } else {
            format!("TLS handshake failed: {}", crate::redact(&error.to_string()))
        }
    })
}

fn explain(error: &rustls::Error) -> String {
    explain_for(error, None)
}

fn explain_for(error: &rustls::Error, server: Option<&str>) -> String {
    use rustls::Error as E;
    match error {
        E::InvalidCertificate(certificate) => explain_certificate(certificate, server),
        E::AlertReceived(alert) => explain_alert(*alert),
        E::PeerIncompatible(why) => format!("protocol version or features not supported by the server: {why:?}"),
        E::InvalidMessage(_) => {
            "the server's answer is not TLS (is this port plain text, or does the protocol need a TLS request first?)"
                .to_owned()
        }
        E::NoCertificatesPresented => "the server presented no certificate".to_owned(),
        other => format!("TLS error: {other}"),
    }
}

fn explain_certificate(error: &CertificateError, server: Option<&str>) -> String {
    let at = |time: &UnixTime| {
        i64::try_from(time.as_secs())
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or_else(String::new, |t| t.to_string())
    };
    match error {
        CertificateError::UnknownIssuer => {
            "certificate not trusted: unknown issuer (trust its CA with root_certificate_pem or sslrootcert)".to_owned()
        }
        CertificateError::NotValidForName => match server {
            Some(name) => format!("certificate name mismatch: it is not valid for {name:?}"),
            None => "certificate name mismatch: it is not valid for the server's name".to_owned(),
        },
        CertificateError::NotValidForNameContext { expected, presented } => format!(
            "certificate name mismatch: it is not valid for {:?} (it names {})",
            expected.to_str(),
            if presented.is_empty() {
                "nothing".to_owned()
            } else {
                presented.join(", ")
            }
        ),
        CertificateError::Expired => "certificate expired".to_owned(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("certificate expired: it was valid until {}", at(not_after))
        }
        CertificateError::NotValidYet => "certificate not valid yet".to_owned(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("certificate not valid yet: it is valid from {}", at(not_before))
        }
        CertificateError::Revoked => "certificate revoked".to_owned(),
        CertificateError::BadSignature => "invalid certificate: bad signature".to_owned(),
        CertificateError::BadEncoding => "invalid certificate: bad encoding".to_owned(),
        other => format!("invalid certificate: {other:?}"),
    }
}

fn explain_alert(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::ProtocolVersion => {
            "protocol version refused by the server (this client offers TLS 1.2 and 1.3)".to_owned()
        }
        AlertDescription::CertificateRequired => {
            "the server requires a client certificate (mutual TLS): set client_identity_pem".to_owned()
        }
        AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateRevoked
        | AlertDescription::AccessDenied => format!("the server refused the client certificate (alert {alert:?})"),
        AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => {
            format!("handshake failure: no protocol version or cipher suite in common (alert {alert:?})")
        }
        other => format!("the server ended the handshake (alert {other:?})"),
    }
}

/// The verifiers of the modes that check less than everything: with no
/// chain verifier, any certificate passes (`danger_accept_invalid_certs`,
/// the modes that only encrypt); with one, the chain must lead to a trusted
/// root but the name may be any (`verify-ca`). Signatures are checked
/// either way.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Lenient {
    fn any(provider: &CryptoProvider) -> Self {
        Self {
            chain: None,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn any_name(chain: Arc<WebPkiServerVerifier>, provider: &CryptoProvider) -> Self {
        Self {
            chain: Some(chain),
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `url` without the query parameters named in `keys`, and those
/// parameters' names and values, percent-decoded.
#[cfg_attr(
    not(any(feature = "postgres", feature = "postgres-storage", feature = "mysql")),
    allow(dead_code)
)]
pub(crate) fn take_query_params(url: &str, keys: &[&str]) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name);
        if keys.contains(&name.as_str()) {
            taken.push((name, percent_decode(value)));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, taken)
}

#[cfg_attr(
    not(any(feature = "postgres", feature = "postgres-storage", feature = "mysql")),
    allow(dead_code)
)]
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    // Both digits are below 16: the byte fits.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, PEM: a root, or a client identity.
    fn self_signed() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    #[test]
    fn bad_pem_is_a_clear_error_that_never_shows_the_key() {
        let (cert, _) = self_signed();
        let err = TlsOptions::new().root_certificate_pem("nothing").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid root certificate: the PEM holds no certificate"
        );
        assert_eq!((err.probe(), err.option()), ("TlsOptions", "root_certificate_pem"));
        let secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        let err = TlsOptions::new().client_identity_pem(&cert, "garbage").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid client key: no PKCS#8, PKCS#1 or SEC1 private key in the PEM"
        );
        let err = TlsOptions::new().client_identity_pem("", secret).unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        let err = TlsOptions::new()
            .root_certificate_file("/nonexistent/ca.pem")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read the root certificate file /nonexistent/ca.pem"),
            "{err}"
        );
        let err = TlsOptions::new().server_name("not a name!").unwrap_err();
        assert_eq!(err.option(), "server_name");
    }

    #[test]
    fn configurations_build_for_every_level_and_debug_shows_no_key() {
        let (ca, _) = self_signed();
        let (cert, key) = self_signed();
        let tls = TlsOptions::new()
            .root_certificate_pem(&ca)
            .unwrap()
            .client_identity_pem(&cert, &key)
            .unwrap()
            .system_roots(false)
            .server_name("db.internal")
            .unwrap();
        for level in [Verification::Full, Verification::CaOnly, Verification::None] {
            assert!(tls.client_config(level).is_ok(), "{level:?}");
        }
        assert_eq!(
            format!("{tls:?}"),
            "TlsOptions { root_certificates: 1, system_roots: true, client_identity: true, server_name: Some(\"db.internal\"), danger_accept_invalid_certs: false }"
                .replace("system_roots: true", "system_roots: false")
        );
        assert_eq!(tls.server_name_for("10.0.0.1").unwrap().to_str(), "db.internal");
        assert_eq!(TlsOptions::new().server_name_for("[::1]").unwrap().to_str(), "::1");
        let none = TlsOptions::new().system_roots(false);
        assert_eq!(
            none.client_config(Verification::Full).unwrap_err(),
            "no root certificate to trust: system roots are off and none was given"
        );
        assert!(none.client_config(Verification::None).is_ok());
    }

    #[test]
    fn failures_are_named() {
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "certificate not trusted: unknown issuer",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                "certificate name mismatch: it is not valid for \"db\"",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                "certificate expired",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
                "protocol version refused by the server",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                "the server requires a client certificate",
            ),
        ];
        for (error, want) in cases {
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, error);
            let text = explain_chain(&io, Some("db")).unwrap();
            assert!(text.starts_with(want), "{text}");
        }
        assert!(explain_chain(&std::io::Error::other("refused"), None).is_none());
    }

    #[test]
    fn query_parameters_are_taken_out_decoded() {
        let (rest, taken) = take_query_params("mysql://u:p@h/db?a=1&ssl-ca=%2Ftmp%2fca.pem&b=2", &["ssl-ca"]);
        assert_eq!(rest, "mysql://u:p@h/db?a=1&b=2");
        assert_eq!(taken, [("ssl-ca".to_owned(), "/tmp/ca.pem".to_owned())]);
        let (rest, _) = take_query_params("mysql://h/db?ssl-mode=REQUIRED", &["ssl-mode"]);
        assert_eq!(rest, "mysql://h/db");
        assert_eq!(percent_decode("%2Ftmp%2fca.pem+x%zz%"), "/tmp/ca.pem x%zz%");
    }

    #[test]
    fn failures_quoted_in_text_are_named() {
        let unknown = "Kind: I/O error: invalid peer certificate: UnknownIssuer, labels: {}";
        assert!(
            explain_text(unknown)
                .unwrap()
                .starts_with("certificate not trusted: unknown issuer")
        );
        let expired = "invalid peer certificate: certificate expired: verification time 1796328572 (UNIX)";
        assert_eq!(explain_text(expired).unwrap(), "certificate expired");
        let name = "invalid peer certificate: certificate not valid for name \"db\"; certificate is only valid for ...";
        assert!(explain_text(name).unwrap().starts_with("certificate name mismatch"));
        assert_eq!(explain_text("invalid peer certificate: Something new"), None);
        assert!(
            explain_text("received fatal alert: CertificateRequired")
                .unwrap()
                .contains("client certificate")
        );
        assert_eq!(explain_text("connection refused"), None);
    }
}
