//! `MongoProbe` over TLS: the MongoDB wire-protocol responder of
//! `scripts/services/mongo.sh` (`AXUM_WATCH_MONGO_URL`) behind a
//! TLS-terminating proxy with the test CA's certificate (the responder
//! speaks no TLS of its own), reached with the driver's connection-string
//! options and with `TlsOptions`. Fails, never skips, when the responder or
//! the test CA is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/tls_proxy.rs"]
mod tls_proxy;

use std::net::SocketAddr;

use axum_watch::probes::{ConfigErrorKind, MongoProbe};
use axum_watch::tls::TlsOptions;
use axum_watch::{Probe, Status};
use common::env_or;
use tls_proxy::{cert_file, certs_dir, server_with, test_ca_server, tls_proxy};

/// The responder's `host:port`.
fn upstream() -> String {
    let url = env_or("AXUM_WATCH_MONGO_URL", "mongodb://127.0.0.1:27017/");
    url.trim_start_matches("mongodb://").trim_end_matches('/').to_owned()
}

fn url(proxy: SocketAddr, options: &str) -> String {
    let base = format!("mongodb://localhost:{}/?directConnection=true", proxy.port());
    if options.is_empty() {
        base
    } else {
        format!("{base}&{options}")
    }
}

async fn check(probe: MongoProbe) -> Result<Status, String> {
    probe.check().await.map(|o| o.status()).map_err(|e| e.to_string())
}

fn test_ca() -> TlsOptions {
    TlsOptions::new().root_certificate_pem(cert_file("ca.crt")).unwrap()
}

#[tokio::test]
async fn the_connection_string_options_reach_a_tls_server() {
    let proxy = tls_proxy(upstream(), test_ca_server(false)).await;
    let ca = format!("{}/ca.crt", certs_dir());
    let probe = MongoProbe::new(url(proxy, &format!("tls=true&tlsCAFile={ca}"))).unwrap();
    assert_eq!(check(probe).await, Ok(Status::Healthy));
}

#[tokio::test]
async fn tls_options_with_the_test_ca_are_healthy_with_details() {
    let proxy = tls_proxy(upstream(), test_ca_server(false)).await;
    let probe = MongoProbe::new(url(proxy, "")).unwrap().tls_options(test_ca()).unwrap();
    let outcome = probe.check().await.unwrap();
    assert_eq!(outcome.status(), Status::Healthy);
    assert_eq!(outcome.details()["version"], "7.0.0-mockupdb", "{outcome:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_unless_verification_is_turned_off() {
    let self_signed = tls_proxy(upstream(), server_with(false, -1, 30)).await;

    for probe in [
        MongoProbe::new(url(self_signed, "tls=true")).unwrap(),
        MongoProbe::new(url(self_signed, ""))
            .unwrap()
            .tls_options(test_ca())
            .unwrap(),
    ] {
        let error = check(probe).await.unwrap_err();
        assert!(
            error.starts_with("MongoError: ping failed: TLS: certificate not trusted: unknown issuer"),
            "{error}"
        );
    }

    let by_url = MongoProbe::new(url(self_signed, "tls=true&tlsAllowInvalidCertificates=true")).unwrap();
    assert_eq!(check(by_url).await, Ok(Status::Healthy));
    let by_options = MongoProbe::new(url(self_signed, ""))
        .unwrap()
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
        .unwrap();
    assert_eq!(check(by_options).await, Ok(Status::Healthy));
}

#[tokio::test]
async fn an_expired_certificate_is_named() {
    let expired = tls_proxy(upstream(), server_with(true, -30, -2)).await;
    let probe = MongoProbe::new(url(expired, ""))
        .unwrap()
        .tls_options(test_ca())
        .unwrap();
    let error = check(probe).await.unwrap_err();
    assert!(error.contains("TLS: certificate expired"), "{error}");
}

#[tokio::test]
async fn mutual_tls_presents_the_client_identity() {
    let proxy = tls_proxy(upstream(), test_ca_server(true)).await;
    let with_identity = test_ca()
        .client_identity_pem(cert_file("client.crt"), cert_file("client.key"))
        .unwrap();
    let probe = MongoProbe::new(url(proxy, ""))
        .unwrap()
        .tls_options(with_identity)
        .unwrap();
    assert_eq!(check(probe).await, Ok(Status::Healthy));

    let without = MongoProbe::new(url(proxy, "")).unwrap().tls_options(test_ca()).unwrap();
    let error = check(without).await.unwrap_err();
    assert!(error.starts_with("MongoError: ping failed"), "{error}");
    assert!(!error.contains("BEGIN"), "{error}");
}

#[test]
fn options_the_driver_cannot_apply_are_refused() {
    let named = TlsOptions::new().server_name("db.internal").unwrap();
    let error = MongoProbe::new("mongodb://127.0.0.1/")
        .unwrap()
        .tls_options(named)
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::InvalidOption);
    assert!(error.to_string().contains("server name"), "{error}");
}
