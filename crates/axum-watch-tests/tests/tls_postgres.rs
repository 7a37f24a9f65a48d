//! `PostgresProbe` and `PostgresStorage` over TLS against the TLS-only
//! PostgreSQL of `scripts/services/tls.sh` (`AXUM_WATCH_POSTGRES_TLS_URL`:
//! `ssl = on`, hostssl only, a server certificate from the test CA at
//! `AXUM_WATCH_TLS_CA`): `require` and `verify-full`, a wrong CA, a name
//! mismatch, and an untrusted certificate refused unless verification is
//! turned off. Fails, never skips, without that server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum_watch::probes::{NoOpProbe, PostgresProbe};
use axum_watch::storage::PostgresStorage;
use axum_watch::tls::TlsOptions;
use axum_watch::{HealthRegistry, ProbeResult, Status, Storage};
use common::{error, run, tls_env, tls_file};

fn url(params: &str) -> String {
    format!("{}?{params}", tls_env("AXUM_WATCH_POSTGRES_TLS_URL"))
}

fn ca() -> String {
    tls_env("AXUM_WATCH_TLS_CA")
}

async fn check(probe: PostgresProbe) -> ProbeResult {
    run(probe.connect_timeout(Duration::from_secs(5))).await
}

fn detail<'a>(result: &'a ProbeResult, key: &str) -> &'a serde_json::Value {
    result
        .details
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("no {key} in {result:?}"))
}

/// The server certificate's expiry and the TLS version are in the details.
fn assert_tls_details(result: &ProbeResult, mode: &str) {
    assert_eq!(detail(result, "sslmode"), mode, "{result:?}");
    assert!(
        detail(result, "tls_version").as_str().unwrap().starts_with("TLSv1."),
        "{result:?}"
    );
    assert!(
        detail(result, "cert_days_remaining").as_i64().unwrap() > 30,
        "{result:?}"
    );
    assert!(
        detail(result, "cert_not_after").as_str().unwrap().ends_with('Z'),
        "{result:?}"
    );
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let result = check(PostgresProbe::new(&url("sslmode=require")).unwrap()).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_tls_details(&result, "require");
}

#[tokio::test]
async fn prefer_is_the_default_and_uses_tls_when_offered() {
    let result = check(PostgresProbe::new(&tls_env("AXUM_WATCH_POSTGRES_TLS_URL")).unwrap()).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_tls_details(&result, "prefer");
}

#[tokio::test]
async fn disable_is_refused_by_a_tls_only_server() {
    let result = check(PostgresProbe::new(&url("sslmode=disable")).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).contains("no encryption"), "{result:?}");
}

#[tokio::test]
async fn verify_full_with_the_test_ca() {
    let result = check(PostgresProbe::new(&url(&format!("sslmode=verify-full&sslrootcert={}", ca()))).unwrap()).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
    assert_tls_details(&result, "verify-full");

    // The same as key=value, with a client certificate (the server accepts one).
    let base = tls_env("AXUM_WATCH_POSTGRES_TLS_URL");
    let port = base.rsplit_once(':').unwrap().1.split('/').next().unwrap().to_owned();
    let kv = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=test sslmode=verify-full sslrootcert='{}' sslcert={} sslkey={}",
        ca(),
        tls_env("AXUM_WATCH_TLS_CLIENT_CERT"),
        tls_env("AXUM_WATCH_TLS_CLIENT_KEY")
    );
    let result = check(PostgresProbe::new(&kv).unwrap()).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");

    // TlsOptions in code instead of the URL.
    let tls = TlsOptions::new()
        .root_certificate_pem(tls_file("AXUM_WATCH_TLS_CA"))
        .unwrap();
    let probe = PostgresProbe::new(&url("sslmode=verify-full"))
        .unwrap()
        .tls_options(tls);
    assert_eq!(check(probe).await.status, Status::Healthy);
}

#[tokio::test]
async fn verify_full_with_the_wrong_ca_fails_clearly() {
    let other = tls_env("AXUM_WATCH_TLS_OTHER_CA");
    let result = check(PostgresProbe::new(&url(&format!("sslmode=verify-full&sslrootcert={other}"))).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    let text = error(&result);
    assert!(
        text.contains("error performing TLS handshake: certificate not trusted: unknown issuer"),
        "{text}"
    );
    // require with a root certificate checks the chain too, as libpq does.
    let result = check(PostgresProbe::new(&url(&format!("sslmode=require&sslrootcert={other}"))).unwrap()).await;
    assert!(error(&result).contains("unknown issuer"), "{result:?}");
}

#[tokio::test]
async fn a_name_mismatch_is_named_and_verify_ca_ignores_it() {
    let tls = || {
        TlsOptions::new()
            .root_certificate_pem(tls_file("AXUM_WATCH_TLS_CA"))
            .unwrap()
            .server_name("db.example.com")
            .unwrap()
    };
    let result = check(
        PostgresProbe::new(&url("sslmode=verify-full"))
            .unwrap()
            .tls_options(tls()),
    )
    .await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(
        error(&result).contains("certificate name mismatch: it is not valid for \"db.example.com\""),
        "{result:?}"
    );
    let result = check(
        PostgresProbe::new(&url("sslmode=verify-ca"))
            .unwrap()
            .tls_options(tls()),
    )
    .await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_unless_verification_is_off() {
    // The system's roots do not include the test CA.
    let result = check(PostgresProbe::new(&url("sslmode=verify-full")).unwrap()).await;
    assert_eq!(result.status, Status::Unhealthy);
    assert!(error(&result).contains("unknown issuer"), "{result:?}");
    let probe = PostgresProbe::new(&url("sslmode=verify-full"))
        .unwrap()
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true));
    let result = check(probe).await;
    assert_eq!(result.status, Status::Healthy, "{result:?}");
}

fn store(url: &str, service: &str, replica: &str) -> axum_watch::storage::PostgresStorageBuilder {
    PostgresStorage::builder(url, service)
        .replica(replica)
        .operation_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(5))
}

fn service(what: &str) -> String {
    format!("tls-{what}-{}", std::process::id())
}

/// One run written through `writer`; `reader` (another replica) sees it.
async fn shared_through(writer: PostgresStorage, reader: PostgresStorage) {
    let registry = HealthRegistry::builder()
        .add(NoOpProbe::new())
        .storage(writer.clone())
        .build()
        .unwrap();
    let report = registry.run_all().await;
    assert_eq!(report.status, Status::Healthy);
    writer.flush(Duration::from_secs(10)).await.unwrap();
    let fleet = reader.fleet().await.unwrap();
    assert!(fleet.iter().any(|r| r.replica == "writer"), "{fleet:?}");
}

#[tokio::test]
async fn the_store_over_verify_full_and_require() {
    let name = service("store");
    let verified = store(
        &url(&format!("sslmode=verify-full&sslrootcert={}", ca())),
        &name,
        "writer",
    )
    .build()
    .unwrap();
    let required = store(&url("sslmode=require"), &name, "reader").build().unwrap();
    shared_through(verified, required).await;
}

#[tokio::test]
async fn the_store_refuses_an_untrusted_certificate_unless_verification_is_off() {
    let name = service("untrusted");
    let other = tls_env("AXUM_WATCH_TLS_OTHER_CA");
    for params in [
        "sslmode=verify-full".to_owned(),
        format!("sslmode=verify-full&sslrootcert={other}"),
    ] {
        let refused = store(&url(&params), &name, "reader").build().unwrap();
        let error = refused.fleet().await.unwrap_err().to_string();
        assert!(
            error.contains("could not connect") && error.contains("certificate not trusted: unknown issuer"),
            "{params}: {error}"
        );
    }
    let unchecked = store(&url("sslmode=verify-full"), &name, "writer")
        .tls_options(TlsOptions::new().danger_accept_invalid_certs(true))
        .build()
        .unwrap();
    let reader = store(
        &url(&format!("sslmode=verify-full&sslrootcert={}", ca())),
        &name,
        "reader",
    )
    .build()
    .unwrap();
    shared_through(unchecked, reader).await;
}
