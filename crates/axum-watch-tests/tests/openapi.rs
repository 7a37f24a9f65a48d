//! `HealthRegistry::openapi()` (feature `openapi`) against the router it
//! describes, in several configurations:
//!
//! - the document lists exactly what the router serves: every path built
//!   from the document's own segments (and a probe name, and one nobody
//!   uses), one to three deep, with and without a trailing slash, is sent
//!   with every method; a documented method on a documented path is served,
//!   another method there is 405, and any other path is the router's own
//!   empty 404;
//! - every answer is documented: in every state of the service, for every
//!   caller, each documented operation is called with its parameters, and
//!   the answer's code must be listed, its content type listed under that
//!   code and its JSON body valid against the listed schema (made strict:
//!   no property the schema does not name);
//! - the document follows the configuration (prefix, dashboard, security
//!   schemes and open endpoints, mapped codes, maintenance, merging);
//! - each configuration's document is written to
//!   `$CARGO_TARGET_TMPDIR/openapi/`, where `scripts/check-openapi` hands
//!   them to a real OpenAPI validator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Body;
use axum_watch::options::{AuthRequest, OpenEndpoint};
use axum_watch::{HealthRegistry, HealthRegistryBuilder, ProbeExt, Status};
use common::states::{CALLERS, Caller, STATES, setup_with};
use common::{Reply, Switch};
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

/// The probes of the standards tests: `db` (whose status the test sets)
/// and `api` critical, `cache` not.
fn probes_with(db: &Switch) -> HealthRegistryBuilder {
    HealthRegistry::builder()
        .add(db.clone().with_tags(["storage"]))
        .add_non_critical(Switch::new("cache", Status::Healthy).with_tags(["storage", "fast"]))
        .add(Switch::new("api", Status::Healthy).with_tags(["edge"]))
        .circuit_breaker(false)
}

fn probes() -> HealthRegistryBuilder {
    probes_with(&Switch::new("db", Status::Healthy))
}

/// A configuration, and the headers that get a request past its
/// authentication.
struct Config {
    name: &'static str,
    /// What the configuration sets beside the probes.
    builder: fn(HealthRegistryBuilder) -> HealthRegistryBuilder,
    credentials: &'static [(&'static str, &'static str)],
}

fn configurations() -> Vec<Config> {
    vec![
        Config {
            name: "default",
            builder: |b| b,
            credentials: &[],
        },
        Config {
            name: "prefix-no-dashboard",
            builder: |b| {
                b.prefix("/ops/health")
                    .dashboard(false)
                    .allow_unauthenticated_maintenance(true)
            },
            credentials: &[],
        },
        Config {
            name: "root-custom-dashboard",
            builder: |b| b.prefix("").custom_dashboard(|_| "<p>ok</p>".to_owned()),
            credentials: &[],
        },
        Config {
            name: "basic-open",
            builder: |b| {
                b.basic_auth("ops", "s3cret").open_endpoints([
                    OpenEndpoint::Live,
                    OpenEndpoint::Ready,
                    OpenEndpoint::Status,
                ])
            },
            credentials: &[("authorization", "Basic b3BzOnMzY3JldA==")],
        },
        Config {
            name: "api-key",
            builder: |b| b.api_key_header("x-internal-token", "t0ken"),
            credentials: &[("x-internal-token", "t0ken")],
        },
        Config {
            name: "custom-auth-codes",
            builder: |b| {
                b.auth_fn(|r: &AuthRequest| r.headers.contains_key("x-ok"))
                    .open_endpoints([OpenEndpoint::Startup])
                    .ready_code(Status::Degraded, StatusCode::SERVICE_UNAVAILABLE)
                    .status_code(Status::Degraded, StatusCode::OK)
                    .status_code(Status::Unhealthy, StatusCode::SERVICE_UNAVAILABLE)
            },
            credentials: &[("x-ok", "1")],
        },
    ]
}

// ---------------------------------------------------------------------------
// The document as the tests read it
// ---------------------------------------------------------------------------

/// One documented operation.
#[derive(Debug, Clone)]
struct Operation {
    template: String,
    method: Method,
    spec: Value,
}

impl Operation {
    fn id(&self) -> &str {
        self.spec["operationId"].as_str().unwrap()
    }
}

struct Doc {
    json: Value,
    /// The components, strict: an object schema naming its properties
    /// admits no other.
    strict: Value,
}

enum Found<'a> {
    Served(&'a Operation),
    WrongMethod,
    Absent,
}

impl Doc {
    fn of(registry: &HealthRegistry) -> Self {
        let json = serde_json::to_value(registry.openapi()).unwrap();
        let mut strict = json["components"].clone();
        close(&mut strict);
        Self { json, strict }
    }

    fn operations(&self) -> Vec<Operation> {
        let mut ops = Vec::new();
        for (template, item) in self.json["paths"].as_object().unwrap() {
            for (method, spec) in item.as_object().unwrap() {
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                ops.push(Operation {
                    template: template.clone(),
                    method,
                    spec: spec.clone(),
                });
            }
        }
        ops
    }

    /// How the document answers `method` on the concrete `path`: the
    /// template that matches with the most literal segments wins, as in
    /// the router.
    fn find<'a>(&self, ops: &'a [Operation], method: &Method, path: &str) -> Found<'a> {
        let segments: Vec<&str> = path.split('/').collect();
        let literal = |template: &str| -> Option<usize> {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some(literal)
        };
        let best = ops
            .iter()
            .filter_map(|op| literal(&op.template).map(|n| (n, &op.template)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, t)| t.clone());
        let Some(template) = best else { return Found::Absent };
        ops.iter()
            .find(|op| op.template == template && op.method == *method)
            .map_or(Found::WrongMethod, Found::Served)
    }

    /// A validator for the schema of `media` in `response`.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root.as_object_mut()
            .unwrap()
            .insert("components".to_owned(), self.strict.clone());
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the schema {schema} does not build: {e}"))
    }
}

/// `additionalProperties: false` on every object schema that names its
/// properties and says nothing of others.
fn close(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".to_owned(), Value::Bool(false));
            }
            map.values_mut().for_each(close);
        }
        Value::Array(items) => items.iter_mut().for_each(close),
        _ => {}
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        Reply::first_chunk(response).await
    } else {
        Reply::read(response).await
    }
}

// ---------------------------------------------------------------------------
// Exactly the routes the router serves
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    for config in configurations() {
        let registry = (config.builder)(probes()).build().unwrap();
        let doc = Doc::of(&registry);
        let ops = doc.operations();
        let app = registry.router::<()>();
        let prefix = registry.prefix().to_owned();

        // The vocabulary: every literal segment of the documented paths
        // below the prefix, a probe's name and a name nobody uses.
        let mut words: BTreeSet<String> = ["db".to_owned(), "nope".to_owned()].into();
        for op in &ops {
            let below = op.template.strip_prefix(&prefix).unwrap();
            for part in below.split('/').filter(|p| !p.is_empty() && !p.starts_with('{')) {
                words.insert(part.to_owned());
            }
        }
        let words: Vec<String> = words.into_iter().collect();
        let mut paths: Vec<String> = vec![prefix.clone()];
        let mut level: Vec<String> = vec![prefix.clone()];
        for _ in 0..3 {
            level = level
                .iter()
                .flat_map(|base| words.iter().map(move |w| format!("{base}/{w}")))
                .collect();
            paths.extend(level.iter().cloned());
        }

        let mut served = BTreeSet::new();
        let mut checked = 0;
        for path in &paths {
            for slashed in [false, true] {
                let uri = match (slashed, path.is_empty()) {
                    (false, true) => continue,
                    (false, false) => path.clone(),
                    (true, _) => format!("{path}/"),
                };
                for method in &METHODS {
                    let mut request = Request::builder().method(method.clone()).uri(&uri);
                    for (name, value) in config.credentials {
                        request = request.header(*name, *value);
                    }
                    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
                    let code = response.status();
                    let what = format!("{}: {method} {uri} answered {code}", config.name);
                    checked += 1;
                    match doc.find(&ops, method, if path.is_empty() { "/" } else { path }) {
                        Found::Served(op) => {
                            served.insert((op.template.clone(), op.method.clone()));
                            let redirect = slashed && op.template.ends_with("/dashboard");
                            if redirect {
                                assert_eq!(code, StatusCode::PERMANENT_REDIRECT, "{what}");
                                assert_eq!(response.headers()["location"], path.as_str(), "{what}");
                                continue;
                            }
                            assert_ne!(code, StatusCode::METHOD_NOT_ALLOWED, "{what}: documented");
                            let documented = &op.spec["responses"][code.as_str()];
                            assert!(
                                documented.is_object(),
                                "{what}: the code is not documented for {}",
                                op.id()
                            );
                            // A handler's 404 (an unknown probe) says what it is;
                            // the router's own says nothing.
                            if code == StatusCode::NOT_FOUND {
                                assert!(
                                    response.headers().contains_key("content-type"),
                                    "{what}: the router's 404 on a documented route"
                                );
                            }
                        }
                        Found::WrongMethod => {
                            assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED, "{what}: not documented");
                        }
                        Found::Absent => {
                            assert_eq!(code, StatusCode::NOT_FOUND, "{what}: not documented");
                            assert!(
                                !response.headers().contains_key("content-type"),
                                "{what}: a handler answered an undocumented path"
                            );
                            let body = Reply::read(response).await.body;
                            assert!(body.is_empty(), "{what}: {body}");
                        }
                    }
                }
            }
        }
        // Every documented operation was reached, and that was a real sweep.
        let documented: BTreeSet<_> = ops.iter().map(|op| (op.template.clone(), op.method.clone())).collect();
        assert_eq!(
            served, documented,
            "{}: operations the sweep never reached",
            config.name
        );
        assert!(checked > 10_000, "{}: {checked} requests", config.name);
    }
}

// ---------------------------------------------------------------------------
// Every answer is documented
// ---------------------------------------------------------------------------

/// One call of an operation: the query (or the path's probe name), extra
/// headers, and a body with its content type.
struct Call {
    query: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<(&'static str, String)>,
}

impl Call {
    fn query(query: &str) -> Self {
        Self {
            query: query.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn body(content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            body: Some((content_type, body.into())),
            ..Self::query("")
        }
    }
}

/// What each operation is called with.
fn calls(op: &Operation) -> Vec<Call> {
    let plain = |queries: &[&str]| -> Vec<Call> { queries.iter().map(|q| Call::query(q)).collect() };
    let id = op.id().trim_end_matches("Head");
    let mut calls = match id {
        "axumWatchLive" => plain(&["", "?verbose", "?verbose=1&exclude=ping"]),
        "axumWatchReady" => plain(&[
            "",
            "?verbose",
            "?tag=storage",
            "?probe=db,api",
            "?exclude=db",
            "?tag=nope",
            "?probe=nope&verbose",
            "?exclude=db&exclude=zeta&verbose",
        ]),
        "axumWatchStatus" => plain(&[
            "",
            "?scope=fleet",
            "?scope=replica",
            "?scope=bogus",
            "?tag=fast",
            "?probe=nope",
            "?tag=nope&probe=nope",
        ]),
        "axumWatchReadyProbe" | "axumWatchStatusProbe" => plain(&["db", "cache", "nope"]),
        "axumWatchReadyStream" | "axumWatchStatusStream" => plain(&["", "?tag=nope", "?exclude=db"]),
        "axumWatchMaintenanceStart" => vec![
            Call::query(""),
            Call::body("application/json", r#"{"minutes": 5}"#),
            Call::body("application/json", r#"{"minutes": "5"}"#),
            Call::body("application/json", "{minutes"),
            Call::body("text/plain", "minutes=5"),
            Call::body("application/json", format!(r#"{{"until": "{}"}}"#, "9".repeat(2000))),
        ],
        _ => plain(&[""]),
    };
    match id {
        "axumWatchReady" | "axumWatchStatus" => {
            calls.push(Call::query("").header("accept", "application/health+json"));
            calls.push(Call::query("?tag=storage&exclude=db").header("accept", "application/health+json"));
        }
        "axumWatchMetrics" => calls.push(Call::query("").header("accept", "application/openmetrics-text")),
        _ => {}
    }
    calls
}

/// Calls every operation of `doc` on `app` and checks each answer against
/// it; `headers` get the request past the authentication, if wanted.
async fn conforms(doc: &Doc, app: &Router, headers: &[(&str, &str)], what: &str) {
    let mut ops = doc.operations();
    // The ones that change state go last.
    ops.sort_by_key(|op| op.method == Method::POST || op.method == Method::DELETE);
    for op in &ops {
        for Call {
            query,
            headers: extra,
            body,
        } in calls(op)
        {
            let uri = if op.template.contains("{name}") {
                op.template.replace("{name}", &query)
            } else {
                format!("{}{query}", op.template)
            };
            // Each parameter sent is one the operation documents.
            let documented: Vec<&str> = op.spec["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for pair in query.strip_prefix('?').into_iter().flat_map(|q| q.split('&')) {
                let name = pair.split('=').next().unwrap();
                assert!(
                    documented.contains(&name),
                    "{uri}: {} does not document {name}",
                    op.id()
                );
            }
            let mut request = Request::builder().method(op.method.clone()).uri(&uri);
            for (name, value) in headers.iter().chain(&extra) {
                request = request.header(*name, *value);
            }
            let request = match &body {
                Some((content_type, body)) => request
                    .header("content-type", *content_type)
                    .body(Body::from(body.clone())),
                None => request.body(Body::empty()),
            }
            .unwrap();
            let reply = send(app, request).await;
            let what = format!(
                "{what}: {} {uri} {extra:?} answered {} {}",
                op.method, reply.status, reply.body
            );
            let response = &op.spec["responses"][reply.status.as_str()];
            assert!(
                response.is_object(),
                "{what}: the code is not documented for {}",
                op.id()
            );
            if op.method == Method::HEAD {
                assert!(reply.body.is_empty(), "{what}");
                assert!(response.get("content").is_none(), "{what}: HEAD documents a body");
                continue;
            }
            let content_type = reply.headers["content-type"].to_str().unwrap();
            let essence = content_type.split(';').next().unwrap().trim();
            let Some(media) = response["content"].get(essence) else {
                panic!("{what}: {essence} is not documented under {}", reply.status);
            };
            if essence.ends_with("json") {
                let errors: Vec<String> = doc
                    .validator(&media["schema"])
                    .iter_errors(&reply.json())
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{what}: breaks its schema:\n{}", errors.join("\n"));
            } else {
                assert_eq!(media["schema"], json!({ "type": "string" }), "{what}");
                if essence == "text/event-stream" {
                    assert!(reply.body.starts_with("retry: 3000\ndata: {"), "{what}");
                }
            }
        }
    }
}

#[tokio::test]
async fn every_answer_in_every_state_for_every_caller_is_documented() {
    for state in STATES {
        for caller in CALLERS {
            let setup = setup_with(state, caller, |b| b.allow_unauthenticated_maintenance(true)).await;
            let doc = Doc::of(&setup.registry);
            let auth = match caller {
                Caller::Authenticated => vec![("authorization", "Basic b3BzOnMzY3JldA==")],
                Caller::Anyone | Caller::Stranger => vec![],
            };
            conforms(&doc, &setup.app, &auth, &format!("{state:?}, {caller:?}")).await;
        }
    }
}

#[tokio::test]
async fn every_answer_of_every_configuration_is_documented() {
    for config in configurations() {
        for status in [Status::Healthy, Status::Degraded, Status::Unhealthy] {
            let registry = (config.builder)(probes_with(&Switch::new("db", status)))
                .build()
                .unwrap();
            let doc = Doc::of(&registry);
            let app = registry.router();
            let what = format!("{} ({status:?})", config.name);
            conforms(&doc, &app, config.credentials, &what).await;
            // And without credentials, where there are some to give.
            if !config.credentials.is_empty() {
                conforms(&doc, &registry.router(), &[], &format!("{what} without credentials")).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The document follows the configuration
// ---------------------------------------------------------------------------

fn op<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    op
}

fn codes(op: &Value) -> Vec<String> {
    op["responses"].as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn the_document_follows_the_configuration() {
    // The defaults: /health, no authentication (each operation says so,
    // so an application-wide requirement does not claim it), the dashboard,
    // maintenance closed over HTTP.
    let doc = serde_json::to_value(probes().build().unwrap().openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let expected = [
        "/health/alerts",
        "/health/alerts/deliveries",
        "/health/dashboard",
        "/health/history",
        "/health/live",
        "/health/maintenance",
        "/health/metrics",
        "/health/probes",
        "/health/ready",
        "/health/ready/stream",
        "/health/ready/{name}",
        "/health/startup",
        "/health/status",
        "/health/status/stream",
        "/health/status/{name}",
    ];
    assert_eq!(paths, expected);
    let ready = op(&doc, "/health/ready", "get");
    assert_eq!(ready["security"], json!([{}]));
    assert_eq!(codes(ready), ["200", "404", "503"]);
    let params: Vec<&str> = ready["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["tag", "probe", "exclude", "verbose"]);
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for param in op["parameters"].as_array().into_iter().flatten() {
                let path = param["in"] == "path";
                assert_eq!(param["required"], path, "{param}: only a path's name is required");
            }
        }
    }
    let media: Vec<&String> = ready["responses"]["503"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(media, ["application/json", "application/health+json", "text/plain"]);
    assert_eq!(
        ready["responses"]["503"]["content"]["application/json"]["schema"],
        json!({ "oneOf": [
            { "$ref": "#/components/schemas/AxumWatchHealthReport" },
            { "$ref": "#/components/schemas/AxumWatchState" }
        ]})
    );
    assert!(
        op(&doc, "/health/ready", "head")["responses"]["200"]
            .get("content")
            .is_none()
    );
    assert_eq!(
        codes(op(&doc, "/health/status", "get")),
        ["200", "207", "400", "404", "503"]
    );
    let status_params: Vec<&str> = op(&doc, "/health/status", "get")["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(status_params, ["tag", "probe", "exclude", "scope"]);
    assert_eq!(codes(op(&doc, "/health/maintenance", "post")), ["403"]);
    assert!(op(&doc, "/health/maintenance", "post")["requestBody"]["content"]["application/json"].is_object());
    assert_eq!(codes(op(&doc, "/health/maintenance", "delete")), ["403"]);
    assert!(doc["paths"]["/health/maintenance"].get("put").is_none());
    assert!(doc["components"].get("securitySchemes").is_none());
    let stream = op(&doc, "/health/status/stream", "get");
    assert!(stream["responses"]["200"]["content"]["text/event-stream"].is_object());
    let metrics = op(&doc, "/health/metrics", "get");
    let media: Vec<&String> = metrics["responses"]["200"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(media, ["text/plain", "application/openmetrics-text"]);
    let ids: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 32, "every operation id is its own: {ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("axumWatch")));
    assert!(
        doc["components"]["schemas"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k.starts_with("AxumWatch"))
    );
    assert_eq!(doc["tags"][0]["name"], "health");

    // Another prefix, no dashboard, maintenance open to anyone.
    let doc = serde_json::to_value(
        probes()
            .prefix("/ops/health")
            .dashboard(false)
            .allow_unauthenticated_maintenance(true)
            .build()
            .unwrap()
            .openapi(),
    )
    .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 14);
    assert!(paths.keys().all(|p| p.starts_with("/ops/health/")));
    assert!(!paths.contains_key("/ops/health/dashboard"));
    assert_eq!(
        codes(op(&doc, "/ops/health/maintenance", "post")),
        ["200", "400", "413", "415", "422"]
    );

    // Basic authentication with live, ready and status open: a scheme,
    // required on closed operations and optional on open ones, 401 only
    // where it is required.
    let doc = serde_json::to_value(
        probes()
            .basic_auth("ops", "s3cret")
            .open_endpoints([OpenEndpoint::Live, OpenEndpoint::Ready, OpenEndpoint::Status])
            .build()
            .unwrap()
            .openapi(),
    )
    .unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["axumWatchBasic"]["scheme"],
        "basic"
    );
    let ready = op(&doc, "/health/ready", "get");
    assert_eq!(ready["security"], json!([{ "axumWatchBasic": [] }, {}]));
    assert!(!codes(ready).contains(&"401".to_owned()));
    assert_eq!(
        ready["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"][1],
        json!({ "$ref": "#/components/schemas/AxumWatchStatusOnly" })
    );
    assert_eq!(op(&doc, "/health/ready/{name}", "get")["security"], ready["security"]);
    let metrics = op(&doc, "/health/metrics", "get");
    assert_eq!(metrics["security"], json!([{ "axumWatchBasic": [] }]));
    assert!(metrics["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
    assert_eq!(codes(op(&doc, "/health/startup", "get")), ["200", "401", "503"]);

    // An API key in a header of its own: 403 where it is missing.
    let doc = serde_json::to_value(
        probes()
            .api_key_header("x-internal-token", "t0ken")
            .build()
            .unwrap()
            .openapi(),
    )
    .unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["axumWatchApiKey"],
        json!({ "type": "apiKey", "name": "x-internal-token", "in": "header", "description": "The health endpoints' API key" })
    );
    assert!(codes(op(&doc, "/health/live", "get")).contains(&"403".to_owned()));

    // Mapped codes: degraded leaves the rotation, status answers 200 or 503.
    let doc = serde_json::to_value(
        probes()
            .ready_code(Status::Degraded, StatusCode::SERVICE_UNAVAILABLE)
            .status_code(Status::Degraded, StatusCode::OK)
            .status_code(Status::Unhealthy, StatusCode::SERVICE_UNAVAILABLE)
            .build()
            .unwrap()
            .openapi(),
    )
    .unwrap();
    assert_eq!(codes(op(&doc, "/health/status", "get")), ["200", "400", "404", "503"]);
    let ready_503 = op(&doc, "/health/ready", "get")["responses"]["503"]["description"]
        .as_str()
        .unwrap();
    assert!(
        ready_503.contains("the report while degraded or unhealthy"),
        "{ready_503}"
    );
}

#[tokio::test]
async fn it_merges_into_an_applications_document() {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
    use utoipa::openapi::security::{HttpAuthScheme, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApiBuilder};

    let registry = probes().build().unwrap();
    let app_doc = OpenApiBuilder::new()
        .info(InfoBuilder::new().title("checkout").version("2.4.1").build())
        .paths(PathsBuilder::new().path(
            "/orders",
            PathItem::new(
                HttpMethod::Get,
                OperationBuilder::new().operation_id(Some("orders")).build(),
            ),
        ))
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(utoipa::openapi::security::Http::new(HttpAuthScheme::Bearer)),
                )
                .build(),
        ))
        .security(Some([SecurityRequirement::new("bearer", Vec::<String>::new())]))
        .build();
    let merged = serde_json::to_value(app_doc.merge_from(registry.openapi())).unwrap();
    assert_eq!(merged["info"]["title"], "checkout");
    assert!(merged["paths"]["/orders"].is_object());
    assert!(merged["paths"]["/health/ready"].is_object());
    // The application's requirement stays its own; the health operations
    // carry theirs (none needed).
    assert_eq!(merged["security"], json!([{ "bearer": [] }]));
    assert_eq!(merged["paths"]["/health/ready"]["get"]["security"], json!([{}]));
    assert!(merged["components"]["schemas"]["AxumWatchHealthReport"].is_object());
    // Nested under another path, as an application that nests the router.
    let nested = OpenApiBuilder::new().build().nest("/api", registry.openapi());
    assert!(nested.paths.paths.contains_key("/api/health/ready"));
}

// ---------------------------------------------------------------------------
// For the validator
// ---------------------------------------------------------------------------

#[test]
fn writes_each_configurations_document_for_the_validator() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for config in configurations() {
            let registry = (config.builder)(probes()).build().unwrap();
            let text = registry.openapi().to_pretty_json().unwrap();
            std::fs::write(dir.join(format!("{}.json", config.name)), text).unwrap();
        }
    });
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), configurations().len());
}
