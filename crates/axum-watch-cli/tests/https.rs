//! `check` over HTTPS (feature `https`) against a real TLS server whose
//! certificate no root vouches for: a TLS error (exit 2) that says so,
//! unless `--insecure`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum_watch::{HealthRegistry, Outcome, probe};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

const BIN: &str = env!("CARGO_BIN_EXE_axum-watch");

/// TLS over a TCP listener, for `axum::serve`; failed handshakes are skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn tls_server() -> std::net::SocketAddr {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let registry = HealthRegistry::builder()
        .add(probe::from_fn("db", || async { Ok(Outcome::healthy()) }))
        .build()
        .unwrap();
    let app: axum::Router = registry.router();
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn check(args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(BIN)
        .arg("check")
        .args(args)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap(), text.trim_end().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_certificate_is_a_tls_error_unless_insecure() {
    let addr = tls_server().await;
    let url = format!("https://ops:pa55word-hunter2@{addr}/health/ready");
    let (code, line) = check(&[&url]).await;
    assert_eq!(code, 2, "{line}");
    assert!(
        line.starts_with("unreachable: TLS: invalid peer certificate: "),
        "{line}"
    );
    assert!(!line.contains("pa55word-hunter2"), "{line}");

    let (code, line) = check(&[&url, "--insecure"]).await;
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("pass: 200 healthy in "), "{line}");
    assert!(line.ends_with(&format!(" - https://***@{addr}/health/ready")), "{line}");
}
