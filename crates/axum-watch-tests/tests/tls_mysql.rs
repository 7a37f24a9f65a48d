//! `MySqlProbe` over TLS against the TLS-only MariaDB of
//! `scripts/services/tls.sh` (`AXUM_WATCH_MYSQL_TLS_URL`:
//! `require_secure_transport`, a user that must use TLS, a server
//! certificate from the test CA at `AXUM_WATCH_TLS_CA`): each `ssl-mode`, a
//! wrong CA, and an untrusted certificate refused unless verification is
//! turned off. Fails, never skips, without that server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum_watch::probes::MySqlProbe;
use axum_watch::tls::TlsOptions;
use axum_watch::{ProbeResult, Status};
use common::{error, run, tls_env, tls_file};

/// The server's URL (it already has `?prefer_socket=false`) plus `params`.
fn url(params: &str) -> String {
    format!("{}&{params}", tls_env("AXUM_WATCH_MYSQL_TLS_URL"))
}

async fn check(probe: MySqlProbe) -> ProbeResult {
    run(probe.connect_timeout(Duration::from_secs(5))).await
}

fn encrypted(result: &ProbeResult) -> bool {
    result.details.as_ref().and_then(|d| d.get("tls")) == Some(&serde_json::Value::Bool(true))
}

#[tokio::test]
async fn verify_identity_with_the_test_ca() {
    let ca = tls_env("AXUM_WATCH_TLS_CA");
    for mode in ["VERIFY_IDENTITY", "VERIFY_CA", "verify-identity"] {
        let result = check(MySqlProbe::new(&url(&format!("ssl-mode={mode}&ssl-ca={ca}"))).unwrap()).await;
        assert_eq!(result.status, Status::Healthy, "{mode}: {result:?}");
        assert!(encrypted(&result), "{mode}: {result:?}");
    }
    // With a client certificate, and with the CA given in code.
    let params = format!(
        "ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}&ssl_cert={}&ssl_key={}",
        tls_env("AXUM_WATCH_TLS_CLIENT_CERT"),
        tls_env("AXUM_WATCH_TLS_CLIENT_KEY")
    );
    assert_eq!(
        check(MySqlProbe::new(&url(&params)).unwrap()).await.status,
        Status::Healthy
    );
    let tls = TlsOptions::new()
        .root_certificate_pem(tls_file("AXUM_WATCH_TLS_CA"))
        .unwrap();
    let probe = MySqlProbe::new(&url("ssl-mode=VERIFY_IDENTITY"))
        .unwrap()
        .tls_options(tls);
    assert_eq!(check(probe).await.status, Status::Healthy);
}

#[tokio::test]
async fn required_and_preferred_encrypt_without_checking() {
    for mode in ["REQUIRED", "PREFERRED"] {
        let result = check(MySqlProbe::new(&url(&format!("ssl-mode={mode}"))).unwrap()).await;
        assert_eq!(result.status, Status::Healthy, "{mode}: {result:?}");
        assert!(encrypted(&result), "{mode}: {result:?}");
    }
}

#[tokio::test]
async fn disabled_is_refused_by_a_tls_only_server() {
    let result = check(MySqlProbe::new(&url("ssl-mode=DISABLED")).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy, "{result:?}");
}

#[tokio::test]
async fn the_wrong_ca_fails_clearly() {
    let other = tls_env("AXUM_WATCH_TLS_OTHER_CA");
    let result = check(MySqlProbe::new(&url(&format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={other}"))).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    let text = error(&result);
    assert!(
        text.starts_with("TlsError: connecting to 127.0.0.1:")
            && text.contains("TLS handshake failed: certificate not trusted: unknown issuer"),
        "{text}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_unless_verification_is_off() {
    let result = check(MySqlProbe::new(&url("ssl-mode=VERIFY_IDENTITY")).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).contains("unknown issuer"), "{result:?}");
    let probe = MySqlProbe::new(&url("ssl-mode=VERIFY_IDENTITY"))
        .unwrap()
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true));
    let result = check(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert!(encrypted(&result));
}
