//! TLS for the Kafka probe: the client configuration built from
//! [`TlsOptions`], the handshake, failures named by what failed, and the
//! expiry of the broker's certificate.
//!
//! `TlsOptions` here stands in for the crate-wide TLS options type, with
//! the same option names; the probe switches to that type when it lands.

use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as RustlsError, RootCertStore, SignatureScheme,
};

/// How a client speaks TLS: which roots it trusts, which certificate it
/// shows, which name it expects.
///
/// By default the system's root certificates are trusted and the server's
/// certificate must be valid for the host name the client connects to.
///
/// | option | default | for |
/// | --- | --- | --- |
/// | [`root_certificate_pem`](Self::root_certificate_pem) | system roots | trust a private CA as well |
/// | [`client_certificate_pem`](Self::client_certificate_pem) | none | mutual TLS |
/// | [`server_name`](Self::server_name) | the host connected to | a certificate issued for another name |
/// | [`danger_accept_invalid_certs`](Self::danger_accept_invalid_certs) | `false` | test servers only |
///
/// A PEM that cannot be read makes every check fail with a `TlsError`
/// that says so.
///
/// ```
/// use axum_watch::probes::TlsOptions;
///
/// let ca = "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n";
/// let tls = TlsOptions::new().root_certificate_pem(ca).server_name("kafka.internal");
/// # drop(tls);
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct TlsOptions {
    extra_roots: Vec<CertificateDer<'static>>,
    identity: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    server_name: Option<String>,
    accept_invalid_certs: bool,
    /// The first option that could not be read, reported by every check.
    invalid: Option<String>,
    /// Built on first use: loading the system's roots is not free.
    config: Arc<OnceLock<Result<Arc<ClientConfig>, String>>>,
}

impl TlsOptions {
    /// System roots, full verification, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    fn changed(mut self) -> Self {
        self.config = Arc::default();
        self
    }

    /// Trusts the certificates in `pem` (one or more `BEGIN CERTIFICATE`
    /// blocks) as roots besides the system's, e.g. a private CA.
    pub fn root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_ref()).collect();
        match parsed {
            Ok(certs) if !certs.is_empty() => self.extra_roots.extend(certs),
            Ok(_) => self.fail("the root certificate PEM holds no certificate".to_owned()),
            Err(error) => self.fail(format!("invalid root certificate PEM: {error}")),
        }
        self.changed()
    }

    /// Shows `certificate_pem` (the client certificate, then any
    /// intermediates) with its private key `key_pem` (PKCS#8, PKCS#1 or
    /// SEC1) to a server that asks for one: mutual TLS.
    pub fn client_certificate_pem(mut self, certificate_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(certificate_pem.as_ref()).collect();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_ref());
        match (certs, key) {
            (Ok(certs), Ok(key)) if !certs.is_empty() => self.identity = Some((certs, Arc::new(key))),
            (Ok(_), Ok(_)) => self.fail("the client certificate PEM holds no certificate".to_owned()),
            (Err(error), _) => self.fail(format!("invalid client certificate PEM: {error}")),
            // The key's own error text could quote part of the key.
            (_, Err(_)) => self.fail("invalid client key PEM: no readable private key".to_owned()),
        }
        self.changed()
    }

    /// Expects the server's certificate to be valid for `name` rather than
    /// for the host connected to (an IP address, a tunnel, a load balancer).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self.changed()
    }

    /// Accepts any server certificate, expired, self-signed or for another
    /// name. Only for test servers: the connection is then open to
    /// interception.
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self.changed()
    }

    fn fail(&mut self, why: String) {
        self.invalid.get_or_insert(why);
    }

    fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        if let Some(invalid) = &self.invalid {
            return Err(invalid.clone());
        }
        self.config.get_or_init(|| self.build()).clone()
    }

    fn build(&self) -> Result<Arc<ClientConfig>, String> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        let builder = if self.accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            for cert in &self.extra_roots {
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("unusable root certificate: {e}"))?;
            }
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 && self.extra_roots.is_empty() {
                return Err("no root certificates found on this system; add one with root_certificate_pem".to_owned());
            }
            builder.with_root_certificates(roots)
        };
        let config = match &self.identity {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(|e| format!("unusable client certificate: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// Opens TLS over `tcp` to `host`, or says what failed.
    pub(super) async fn connect(&self, host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, String> {
        let config = self.client_config()?;
        let wanted = self.server_name.as_deref().unwrap_or(host);
        // `[::1]` in a bootstrap list is the address `::1`.
        let bare = wanted.trim_start_matches('[').trim_end_matches(']');
        let name =
            ServerName::try_from(bare.to_owned()).map_err(|_| format!("{wanted:?} is not a valid TLS server name"))?;
        TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|error| handshake_failure(&error))
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("extra_roots", &self.extra_roots.len())
            .field("client_certificate", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish_non_exhaustive()
    }
}

/// A TLS failure after the client's part of the handshake (a server that
/// refuses the client's certificate says so on the first read in TLS 1.3),
/// when `error` is one.
pub(super) fn late_failure(error: &io::Error) -> Option<String> {
    let inner = error.get_ref()?;
    inner.is::<RustlsError>().then(|| handshake_failure(error))
}

/// A failed handshake in a few words first: what a user fixes.
fn handshake_failure(error: &io::Error) -> String {
    let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<RustlsError>()) else {
        return if error.kind() == io::ErrorKind::UnexpectedEof {
            "the server closed the connection during the TLS handshake (is the listener plaintext?)".to_owned()
        } else {
            format!("TLS handshake failed: {error}")
        };
    };
    let what = match tls {
        RustlsError::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => "unknown issuer: the certificate is not signed by a trusted root",
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "name mismatch: the certificate is not valid for the server name"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired certificate",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "certificate not valid yet",
            CertificateError::Revoked => "revoked certificate",
            _ => "invalid certificate",
        },
        RustlsError::AlertReceived(_) => "the server refused the handshake",
        RustlsError::NoCertificatesPresented => "the server sent no certificate",
        _ => "protocol error",
    };
    format!("TLS handshake failed: {what} ({tls})")
}

/// The version the session speaks, such as `TLSv1.3`.
pub(super) fn version(stream: &TlsStream<TcpStream>) -> Option<String> {
    stream
        .get_ref()
        .1
        .protocol_version()
        .and_then(|v| v.as_str())
        .map(|v| v.replace("TLSv1_", "TLSv1.").replace("TLSv1.0", "TLSv1"))
}

/// When the server's own certificate expires, in seconds since the epoch.
pub(super) fn not_after(stream: &TlsStream<TcpStream>) -> Option<i64> {
    let der = stream.get_ref().1.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Accepts every certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::{TlsOptions, handshake_failure};
    use std::io;
    use tokio_rustls::rustls::{CertificateError, Error};

    #[test]
    fn unreadable_options_are_reported_without_their_content() {
        let bad = TlsOptions::new().root_certificate_pem("not a pem");
        assert_eq!(
            bad.client_config().unwrap_err(),
            "the root certificate PEM holds no certificate"
        );
        let key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        let cert = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap().cert.pem();
        let err = TlsOptions::new()
            .client_certificate_pem(cert, key)
            .client_config()
            .unwrap_err();
        assert!(!err.contains("c2VjcmV0"), "{err}");
        let debug = format!(
            "{:?}",
            TlsOptions::new().server_name("k").danger_accept_invalid_certs(true)
        );
        assert!(debug.contains("server_name: Some(\"k\")") && debug.contains("accept_invalid_certs: true"));
    }

    #[test]
    fn handshake_failures_name_what_failed() {
        let wrap = |e: Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let cases = [
            (CertificateError::UnknownIssuer, "unknown issuer"),
            (CertificateError::NotValidForName, "name mismatch"),
            (CertificateError::Expired, "expired certificate"),
        ];
        for (error, name) in cases {
            let text = handshake_failure(&wrap(Error::InvalidCertificate(error)));
            assert!(text.starts_with(&format!("TLS handshake failed: {name}")), "{text}");
        }
        let eof = handshake_failure(&io::Error::new(io::ErrorKind::UnexpectedEof, "eof"));
        assert!(eof.contains("is the listener plaintext?"), "{eof}");
    }
}
