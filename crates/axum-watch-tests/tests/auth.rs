//! Authentication over every endpoint, in each mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum_watch::{
    BuildErrorKind, HealthRegistry, Status,
    options::{AuthRequest, OpenEndpoint},
};
use base64::Engine;
use common::{Reply, Switch};
use http::{Method, Request, StatusCode};
use tower::ServiceExt;

const ENDPOINTS: &[&str] = &[
    "live",
    "ready",
    "status",
    "history",
    "alerts",
    "startup",
    "metrics",
    "maintenance",
    "dashboard",
    "status/stream",
    "ready/stream",
];

async fn call(app: &axum::Router, method: Method, path: &str, header: Option<(&str, &[u8])>) -> Reply {
    let mut request = Request::builder().method(method).uri(format!("/health/{path}"));
    if let Some((name, value)) = header {
        request = request.header(name, http::HeaderValue::from_bytes(value).unwrap());
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    // Streams never end: read only their first chunk.
    Reply::first_chunk(response).await
}

fn basic(credentials: &str) -> Vec<u8> {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
    .into_bytes()
}

fn registry(builder: axum_watch::HealthRegistryBuilder) -> HealthRegistry {
    let r = builder
        .add(Switch::new("db", Status::Healthy))
        .poll_interval(None)
        .build()
        .unwrap();
    r.set_started();
    r
}

#[tokio::test(start_paused = true)]
async fn basic_auth_guards_every_endpoint() {
    let app = registry(HealthRegistry::builder().basic_auth("admin", "s3cr:et")).router();
    let good = basic("admin:s3cr:et");
    let bad_headers: Vec<Vec<u8>> = vec![
        basic("admin:wrong"),
        basic("other:s3cr:et"),
        basic("admin"),
        b"Basic !!!".to_vec(),
        b"Bearer abc".to_vec(),
        b"Basic \xff\xfe".to_vec(),
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode([0xff, b':', 0xfe])
        )
        .into_bytes(),
    ];
    for path in ENDPOINTS {
        let none = call(&app, Method::GET, path, None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(none.headers["www-authenticate"], r#"Basic realm="health""#);
        assert_eq!(none.json(), serde_json::json!({"detail": "Unauthorized"}));
        for bad in &bad_headers {
            let reply = call(&app, Method::GET, path, Some(("authorization", bad))).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{path} {}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = call(&app, Method::GET, path, Some(("authorization", &good))).await;
        assert!(ok.status.is_success(), "{path}: {}", ok.status);
    }
    // With authentication configured, maintenance can be changed by who passes it.
    let post = call(&app, Method::POST, "maintenance", Some(("authorization", &good))).await;
    assert_eq!(post.status, StatusCode::OK);
    assert_eq!(
        call(&app, Method::DELETE, "maintenance", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(start_paused = true)]
async fn api_key_guards_every_endpoint() {
    let app = registry(HealthRegistry::builder().api_key("k3y")).router();
    // The built-in page holds no data and loads without the key (a browser
    // cannot send it with a page load); everything else refuses.
    let page = call(&app, Method::GET, "dashboard", None).await;
    assert_eq!(page.status, StatusCode::OK);
    for path in ENDPOINTS.iter().filter(|&&p| p != "dashboard") {
        let none = call(&app, Method::GET, path, None).await;
        assert_eq!(none.status, StatusCode::FORBIDDEN, "{path}");
        assert!(none.headers.get("www-authenticate").is_none());
        assert_eq!(none.json(), serde_json::json!({"detail": "Forbidden"}));
        for bad in [&b"k3y "[..], b"K3Y", b"", b"k3yk3y", b"\xff"] {
            let reply = call(&app, Method::GET, path, Some(("x-api-key", bad))).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        }
        let ok = call(&app, Method::GET, path, Some(("X-Api-Key", b"k3y"))).await;
        assert!(ok.status.is_success(), "{path}: {}", ok.status);
    }
    let custom = registry(HealthRegistry::builder().api_key_header("x-internal-token", "t")).router();
    assert_eq!(
        call(&custom, Method::GET, "live", Some(("x-api-key", b"t")))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&custom, Method::GET, "live", Some(("x-internal-token", b"t")))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn custom_checks_sync_async_and_panicking() {
    let sync = registry(HealthRegistry::builder().auth_fn(|r: &AuthRequest| r.headers.contains_key("x-ok"))).router();
    let asynchronous = registry(
        HealthRegistry::builder().auth_fn_async(|r: AuthRequest| async move { r.uri.query() == Some("token=1") }),
    )
    .router();
    let panicking = registry(HealthRegistry::builder().auth_fn(|_: &AuthRequest| panic!("bug in check"))).router();
    for path in ENDPOINTS {
        assert_eq!(
            call(&sync, Method::GET, path, None).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert!(
            call(&sync, Method::GET, path, Some(("x-ok", b"1")))
                .await
                .status
                .is_success(),
            "{path}"
        );
        assert_eq!(
            call(&asynchronous, Method::GET, path, None).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        let query_path = format!("{path}?token=1");
        assert!(
            call(&asynchronous, Method::GET, &query_path, None)
                .await
                .status
                .is_success(),
            "{path}"
        );
        assert_eq!(
            call(&panicking, Method::GET, path, None).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn open_endpoints_answer_status_only_to_strangers() {
    let db = Switch::new("db", Status::Unhealthy);
    let app = HealthRegistry::builder()
        .add(db.clone())
        .basic_auth("admin", "pw")
        .open_endpoints([OpenEndpoint::Live, OpenEndpoint::Ready, OpenEndpoint::Startup])
        .build()
        .unwrap()
        .router();
    let stranger = call(&app, Method::GET, "ready", None).await;
    assert_eq!(stranger.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(stranger.json(), serde_json::json!({"status": "unhealthy"}));
    assert_eq!(
        call(&app, Method::GET, "live", None).await.json(),
        serde_json::json!({"status": "ok"})
    );
    assert_eq!(
        call(&app, Method::GET, "startup", None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(&app, Method::GET, "status", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let insider = call(&app, Method::GET, "ready", Some(("authorization", &basic("admin:pw")))).await;
    assert_eq!(insider.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(insider.json()["probes"][0]["error"], "db is down");
}

#[test]
fn bad_configurations_are_refused_at_build() {
    use BuildErrorKind::{InvalidCredentials, OpenEndpointsWithoutAuth};
    let cases = [
        (
            HealthRegistry::builder().basic_auth("", "pw"),
            InvalidCredentials,
            "non-empty",
        ),
        (
            HealthRegistry::builder().basic_auth("admin", ""),
            InvalidCredentials,
            "non-empty",
        ),
        (
            HealthRegistry::builder().api_key(""),
            InvalidCredentials,
            "cannot be empty",
        ),
        (
            HealthRegistry::builder().api_key_header("bad header", "k"),
            InvalidCredentials,
            "invalid API key header",
        ),
        (
            HealthRegistry::builder().open_endpoints([OpenEndpoint::Live]),
            OpenEndpointsWithoutAuth,
            "no authentication",
        ),
    ];
    for (builder, kind, message) in cases {
        let error = builder.build().unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert!(error.to_string().contains(message), "{error}");
    }
}

/// Under API-key authentication the built-in dashboard names the key's
/// header for its script (which sends the key it is given there, never in
/// a URL); under any other mode it names none, and a custom check decides
/// over the page as over its data.
#[tokio::test(start_paused = true)]
async fn the_dashboard_names_the_api_key_header() {
    let keyed = registry(HealthRegistry::builder().api_key_header("x-internal-token", "k3y")).router();
    let page = call(&keyed, Method::GET, "dashboard", Some(("x-internal-token", b"k3y"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(r#"<body data-key-header="x-internal-token">"#));
    assert!(!page.text().contains("k3y\""), "the key itself is not in the page");
    // A browser loads the page without the key; the data stays behind it.
    let page = call(&keyed, Method::GET, "dashboard", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(r#"<body data-key-header="x-internal-token">"#));
    for data in ["status", "history", "alerts", "status/stream"] {
        assert_eq!(
            call(&keyed, Method::GET, data, None).await.status,
            StatusCode::FORBIDDEN,
            "{data}"
        );
    }

    let basic_app = registry(HealthRegistry::builder().basic_auth("admin", "pw")).router();
    let page = call(
        &basic_app,
        Method::GET,
        "dashboard",
        Some(("authorization", &basic("admin:pw"))),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("<body>"));
    assert!(!page.text().contains("data-key-header"));

    // A custom check sees the page load like any request (a session cookie
    // goes with it, and with the page's own requests): the page is behind it.
    let custom = registry(
        HealthRegistry::builder().auth_fn(|r: &AuthRequest| r.headers.get("cookie").is_some_and(|c| c == "session=1")),
    )
    .router();
    let page = call(&custom, Method::GET, "dashboard", Some(("cookie", b"session=1"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("<body>"));
    assert!(!page.text().contains("data-key-header"));
    for path in ["dashboard", "status/stream", "history"] {
        assert_eq!(
            call(&custom, Method::GET, path, None).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
}
