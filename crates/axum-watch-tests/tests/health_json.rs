//! `application/health+json` (draft-inadarei-api-health-check): `ready`
//! and `status` answer the draft's format when `Accept` asks for it, in
//! every state of the service and for every caller, each answer validated
//! against the draft's rules written as a JSON Schema
//! (`fixtures/health-json/health-check-response.schema.json`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum_watch::options::ServiceInfo;
use axum_watch::{HealthRegistry, ProbeError, Status, probe};
use common::states::{CALLERS, Caller, STATES, State, setup_with};
use common::{Reply, Switch, call};
use http::{Request, StatusCode};
use serde_json::{Value, json};

const HEALTH_JSON: &str = "application/health+json";

fn validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("fixtures/health-json/health-check-response.schema.json")).unwrap();
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// Asserts `reply` is a valid health+json answer whose code follows its
/// status (503 for fail only); returns its body.
fn valid(validator: &jsonschema::Validator, reply: &Reply, what: &str) -> Value {
    assert_eq!(reply.headers["content-type"], HEALTH_JSON, "{what}: {}", reply.body);
    assert_eq!(reply.headers["cache-control"], "no-store", "{what}");
    let body = reply.json();
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: {body} breaks the draft's schema:\n{}",
        errors.join("\n")
    );
    let status = body["status"].as_str().unwrap();
    assert!(["pass", "warn", "fail"].contains(&status), "{what}: {status}");
    let code = if status == "fail" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    assert_eq!(reply.status, code, "{what}: {body}");
    body
}

fn verdict(status: Status) -> &'static str {
    match status {
        Status::Healthy => "pass",
        Status::Degraded => "warn",
        Status::Unhealthy => "fail",
    }
}

/// What `ready` says in `state`.
fn ready_verdict(state: State) -> &'static str {
    match state {
        State::Maintenance => "warn",
        State::Grace | State::Draining => "fail",
        _ => verdict(state.db()),
    }
}

fn notes(state: State) -> Value {
    match state {
        State::Maintenance => json!(["maintenance"]),
        State::Grace => json!(["starting"]),
        State::Draining => json!(["draining"]),
        _ => Value::Null,
    }
}

fn checks(body: &Value) -> Vec<String> {
    body["checks"].as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn ready_and_status_answer_the_draft_in_every_state_for_every_caller() {
    let validator = validator();
    let service = |b: axum_watch::HealthRegistryBuilder| {
        b.service_name("checkout").service_info(
            ServiceInfo::new()
                .version("2")
                .release_id("2.4.1")
                .description("the checkout API"),
        )
    };
    for state in STATES {
        for caller in CALLERS {
            let s = setup_with(state, caller, service).await;
            let cases: [(&str, bool, &[&str]); 7] = [
                ("/health/ready", true, &["db", "cache", "api"]),
                ("/health/ready/", true, &["db", "cache", "api"]),
                ("/health/ready?exclude=db", true, &["cache", "api"]),
                ("/health/status", false, &["db", "cache", "api"]),
                ("/health/status?probe=db", false, &["db"]),
                ("/health/status?tag=edge", false, &["api"]),
                ("/health/status?scope=replica&exclude=api", false, &["db", "cache"]),
            ];
            for (uri, ready, probes) in cases {
                let what = format!("{state:?} {caller:?} {uri}");
                for accept in [HEALTH_JSON, "application/json;q=0.5, application/health+json"] {
                    let reply = s.get_with(uri, &[("accept", accept)]).await;
                    let body = valid(&validator, &reply, &what);
                    let db = if probes.contains(&"db") {
                        state.db()
                    } else {
                        Status::Healthy
                    };
                    let want = if ready && state.gated() {
                        ready_verdict(state)
                    } else {
                        verdict(db)
                    };
                    assert_eq!(body["status"], want, "{what}: {body}");
                    if caller == Caller::Stranger {
                        assert_eq!(body, json!({"status": want}), "{what}: the status alone");
                        continue;
                    }
                    assert_eq!(body["serviceId"], "checkout", "{what}");
                    assert_eq!(body["version"], "2", "{what}");
                    assert_eq!(body["releaseId"], "2.4.1", "{what}");
                    assert_eq!(body["description"], "the checkout API", "{what}");
                    assert_eq!(body["notes"], notes(state), "{what}");
                    if ready && state.gated() {
                        assert!(body.get("checks").is_none(), "{what}: no probe ran");
                        assert!(body["output"].is_string(), "{what}");
                        continue;
                    }
                    let keys: Vec<String> = probes.iter().map(|p| format!("{p}:responseTime")).collect();
                    assert_eq!(checks(&body), keys, "{what}");
                    for name in probes {
                        let entry = &body["checks"][format!("{name}:responseTime")][0];
                        let status = if *name == "db" { state.db() } else { Status::Healthy };
                        assert_eq!(entry["componentId"], *name, "{what}");
                        assert_eq!(entry["componentType"], "component", "{what}");
                        assert_eq!(entry["observedUnit"], "ms", "{what}");
                        assert!(entry["observedValue"].as_f64().unwrap() >= 0.0, "{what}");
                        assert_eq!(entry["status"], verdict(status), "{what}");
                        assert!(entry["time"].as_str().unwrap().ends_with('Z'), "{what}");
                        let output = (status == Status::Unhealthy).then_some("db is down");
                        assert_eq!(entry["output"].as_str(), output, "{what}: {entry}");
                    }
                    let output = match db {
                        Status::Healthy => None,
                        Status::Degraded => Some("degraded: db"),
                        Status::Unhealthy => Some("failing: db"),
                    };
                    assert_eq!(body["output"].as_str(), output, "{what}");
                }
            }
            // Plain JSON stays the default, whatever else Accept lists.
            let what = format!("{state:?} {caller:?}");
            for accept in [
                None,
                Some("application/json"),
                Some("*/*"),
                Some("application/health+json;q=0.1, application/json"),
            ] {
                let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
                for uri in ["/health/ready", "/health/status"] {
                    let reply = s.get_with(uri, &headers).await;
                    assert_eq!(
                        reply.headers["content-type"], "application/json",
                        "{what} {uri} {accept:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn checks_keep_the_drafts_key_shape_and_redact_their_output() {
    let validator = validator();
    let registry = HealthRegistry::builder()
        .add(Switch::new("tcp:db:5432", Status::Degraded))
        .add_non_critical(probe::from_fn("payments", || async {
            Err(ProbeError::msg(
                "connection refused: https://demo:hunter2@pay.invalid/v1",
            ))
        }))
        .service_name("billing")
        .build()
        .unwrap();
    let request = Request::builder()
        .uri("/health/status")
        .header("accept", HEALTH_JSON)
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = call(&registry, request).await;
    let body = valid(&validator, &reply, "status");
    assert!(!reply.body.contains("hunter2"), "{}", reply.body);
    assert_eq!(checks(&body), ["tcp_db_5432:responseTime", "payments:responseTime"]);
    assert_eq!(
        body["checks"]["tcp_db_5432:responseTime"][0]["componentId"],
        "tcp:db:5432"
    );
    let payments = &body["checks"]["payments:responseTime"][0];
    assert_eq!(payments["status"], "fail");
    assert_eq!(
        payments["output"],
        "connection refused: https://demo:***@pay.invalid/v1"
    );
    // A non-critical failure does not fail the service: it warns for the degraded one.
    assert_eq!(
        (body["status"].as_str(), body["serviceId"].as_str()),
        (Some("warn"), Some("billing"))
    );
    assert!(body.get("version").is_none() && body.get("releaseId").is_none());
}

#[test]
fn the_schema_refuses_what_the_draft_refuses() {
    let validator = validator();
    let bad = [
        json!({}),
        json!({"status": "green"}),
        json!({"status": "pass", "output": "nothing wrong"}),
        json!({"status": "pass", "checks": {"a:b:c": []}}),
        json!({"status": "pass", "checks": {"db:responseTime": [{"status": "pass", "time": "yesterday"}]}}),
        json!({"status": "warn", "checks": {"db": [{"status": "pass", "output": "x"}]}}),
        json!({"status": "fail", "notes": "not a list"}),
    ];
    for body in bad {
        assert!(!validator.is_valid(&body), "{body}");
    }
    let good = json!({
        "status": "pass", "version": "1", "releaseId": "1.2.2", "notes": [""], "serviceId": "f03e522f",
        "description": "health of authz service",
        "checks": {
            "cassandra:responseTime": [{"componentId": "dfd6cf2b", "componentType": "datastore",
                "observedValue": 250, "observedUnit": "ms", "status": "pass", "time": "2018-01-17T03:36:48Z"}],
            "uptime": [{"componentType": "system", "observedValue": 1_209_600.245, "observedUnit": "s",
                "status": "pass", "time": "2018-01-17T03:36:48Z"}],
            "cpu:utilization": [{"componentId": "6fd416e0", "componentType": "system", "observedValue": 85,
                "observedUnit": "percent", "status": "warn", "time": "2018-01-17T03:36:48Z", "output": ""}]
        },
        "links": {"about": "http://api.example.com/about/authz"}
    });
    let errors: Vec<String> = validator.iter_errors(&good).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "the draft's own example: {errors:?}");
}
