//! TLS in front of plaintext servers on loopback, for services whose test
//! server here speaks no TLS of its own (Tansu, the MongoDB wire-protocol
//! responder, RabbitMQ as installed): a TLS-terminating proxy with a
//! certificate of the test CA that `test_ca` (scripts/services/lib.sh) makes
//! in `AXUM_WATCH_TEST_CERTS` (default `~/.cache/axum-watch/test-certs`), or
//! with one made here (self-signed, expired). Included with
//! `#[path = "common/tls_proxy.rs"] mod tls_proxy;` by the tests that need
//! it, beside `mod common;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{CertificateParams, Issuer, KeyPair};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use crate::common::{cache_dir, env_or};

/// The directory of the test CA's files.
pub(crate) fn certs_dir() -> String {
    env_or(
        "AXUM_WATCH_TEST_CERTS",
        &format!("{}/axum-watch/test-certs", cache_dir()),
    )
}

/// A file of the test CA (`ca.crt`, `server.crt`, `client.key`...).
pub(crate) fn cert_file(name: &str) -> Vec<u8> {
    let path = format!("{}/{name}", certs_dir());
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("test CA file {path}: {e}; run scripts/test or source scripts/services/tls.sh"))
}

fn provider() -> Arc<tokio_rustls::rustls::crypto::CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// The test CA's server certificate (localhost, 127.0.0.1); with
/// `client_auth`, a client certificate of the test CA is required.
pub(crate) fn test_ca_server(client_auth: bool) -> Arc<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_file("server.crt"))
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&cert_file("server.key")).unwrap();
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if client_auth {
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(&cert_file("ca.crt")) {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

/// A certificate for 127.0.0.1 and localhost valid from `from` days from
/// now to half a day after `to` days from now (so that whole days left
/// read `to`), signed by the test CA or, without `by_test_ca`, by
/// itself (trusted by nobody).
pub(crate) fn server_with(by_test_ca: bool, from: i64, to: i64) -> Arc<ServerConfig> {
    let now = time::OffsetDateTime::now_utc();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.not_before = now + time::Duration::days(from);
    params.not_after = now + time::Duration::days(to) + time::Duration::hours(12);
    let key = KeyPair::generate().unwrap();
    let cert = if by_test_ca {
        let ca_key = KeyPair::from_pem(std::str::from_utf8(&cert_file("ca.key")).unwrap()).unwrap();
        let ca = Issuer::from_ca_cert_pem(std::str::from_utf8(&cert_file("ca.crt")).unwrap(), ca_key).unwrap();
        params.signed_by(&key, &ca).unwrap()
    } else {
        params.self_signed(&key).unwrap()
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    Arc::new(config)
}

/// A TLS-terminating proxy on 127.0.0.1 in front of the plaintext
/// `upstream`, as a server's TLS listener would be: TLS from the client,
/// the protocol's bytes passed through. Handshakes that fail are dropped,
/// as a server drops them. Lives as long as the test's runtime.
pub(crate) async fn tls_proxy(upstream: String, config: Arc<ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    addr
}
