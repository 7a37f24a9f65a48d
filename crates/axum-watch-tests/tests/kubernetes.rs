//! The Kubernetes conventions, with kube-apiserver's health endpoints as
//! the reference, and the newer fastapi-watch filters: per-probe paths,
//! `?exclude=`, `?probe=`, `?verbose`, trailing slashes, `GET probes` and
//! configurable codes — in every state of the service (healthy, degraded,
//! unhealthy, maintenance, grace period, draining) and for every caller
//! (no authentication, authenticated, a stranger on open endpoints).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum_watch::passive::RouteProbe;
use axum_watch::{HealthRegistry, ProbeExt, Status, probe};
use common::states::{CALLERS, Caller, STATES, Setup, State, setup, setup_with};
use common::{Reply, Switch, get, send};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// What `ready` answers in `state` (the default codes).
fn ready_code(state: State) -> StatusCode {
    match state {
        State::Healthy | State::Degraded | State::Maintenance => StatusCode::OK,
        State::Unhealthy | State::Grace | State::Draining => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The fixed body `ready` answers with while a gate decides.
fn gate_body(state: State) -> Option<&'static str> {
    match state {
        State::Maintenance => Some(r#"{"status":"maintenance"}"#),
        State::Grace => Some(r#"{"status":"starting"}"#),
        State::Draining => Some(r#"{"status":"draining"}"#),
        _ => None,
    }
}

fn status_code_of(status: Status) -> StatusCode {
    if status == Status::Healthy {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    }
}

fn ready_code_of(status: Status) -> StatusCode {
    if status == Status::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

fn names(report: &Value) -> Vec<String> {
    report["probes"]
        .as_array()
        .unwrap_or_else(|| panic!("no probes in {report}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn unknown(probes: &[&str], tags: &[&str]) -> Value {
    let error = match (probes.is_empty(), tags.is_empty()) {
        (false, true) => "unknown probe",
        (true, false) => "unknown tag",
        _ => "unknown probe and tag",
    };
    let quoted = |names: &[&str]| names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    let mut detail = Vec::new();
    if !probes.is_empty() {
        detail.push(format!("no probe is named {}", quoted(probes)));
    }
    if !tags.is_empty() {
        detail.push(format!("no probe has the tag {}", quoted(tags)));
    }
    json!({"error": error, "unknown_probes": probes, "unknown_tags": tags, "detail": detail.join("; ")})
}

/// Asserts a report answer: its code, and either the report's probes (for
/// callers who see it) or `{"status": …}` alone (for a stranger).
fn assert_report(reply: &Reply, setup: &Setup, code: StatusCode, status: Status, probes: &[&str], what: &str) {
    assert_eq!(reply.status, code, "{what}: {}", reply.body);
    let body = reply.json();
    if setup.caller == Caller::Stranger {
        assert_eq!(body, json!({"status": status.as_str()}), "{what}");
    } else {
        assert_eq!(body["status"], status.as_str(), "{what}: {body}");
        assert_eq!(names(&body), probes, "{what}");
    }
}

#[tokio::test]
async fn per_probe_paths_answer_one_probe_in_every_state_for_every_caller() {
    for state in STATES {
        for caller in CALLERS {
            let s = setup(state, caller).await;
            let what = format!("{state:?} {caller:?}");
            for slash in ["", "/"] {
                let ready = s.get(&format!("/health/ready/db{slash}")).await;
                if let Some(gate) = gate_body(state) {
                    assert_eq!(
                        (ready.status, ready.text().as_str()),
                        (ready_code(state), gate),
                        "{what}"
                    );
                } else {
                    assert_eq!(ready.status, ready_code_of(state.db()), "{what}");
                }
                let status = s.get(&format!("/health/status/db{slash}")).await;
                assert_eq!(status.status, status_code_of(state.db()), "{what}");
                for reply in [&ready, &status]
                    .into_iter()
                    .filter(|r| !r.text().starts_with(r#"{"status":"#))
                {
                    let body = reply.json();
                    assert_eq!(body["name"], "db", "{what}: {body}");
                    assert_eq!(body["status"], state.db().as_str(), "{what}");
                    assert!(body["checked_at"].is_string(), "{what}: {body}");
                }
                if caller == Caller::Stranger {
                    assert_eq!(status.json(), json!({"status": state.db().as_str()}), "{what}");
                } else {
                    let body = status.json();
                    assert_eq!(body["tags"], json!(["storage"]), "{what}");
                    let draining = (state == State::Draining).then_some("draining");
                    assert_eq!(body["lifecycle"].as_str(), draining, "{what}: {body}");
                    if state == State::Unhealthy {
                        assert_eq!(body["error"], "db is down", "{what}");
                    }
                }
                for path in ["ready", "status"] {
                    let reply = s.get(&format!("/health/{path}/nope{slash}")).await;
                    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what} {path}");
                    assert_eq!(reply.json(), unknown(&["nope"], &[]), "{what} {path}");
                }
            }
            // A non-critical probe's own path answers for it alone.
            let cache = s.get("/health/ready/cache").await;
            let want = if state.gated() {
                ready_code(state)
            } else {
                StatusCode::OK
            };
            assert_eq!(cache.status, want, "{what}");
        }
    }
}

#[tokio::test]
async fn exclude_and_probe_filter_ready_and_status_in_every_state_for_every_caller() {
    for state in STATES {
        for caller in CALLERS {
            let s = setup(state, caller).await;
            let what = format!("{state:?} {caller:?}");
            let db = state.db();
            let ready = |query: &str| format!("/health/ready?{query}");
            let status = |query: &str| format!("/health/status?{query}");
            let gate = |reply: &Reply| {
                let body = gate_body(state).unwrap();
                assert_eq!(
                    (reply.status, reply.text().as_str()),
                    (ready_code(state), body),
                    "{what}"
                );
            };

            // ?exclude=, repeatable and comma-separated, before the overall status.
            for query in ["exclude=db", "exclude=db,nope", "exclude=nope&exclude=db"] {
                let reply = s.get(&ready(query)).await;
                if state.gated() {
                    gate(&reply);
                } else {
                    assert_report(&reply, &s, StatusCode::OK, Status::Healthy, &["cache", "api"], &what);
                }
                let reply = s.get(&status(query)).await;
                assert_report(&reply, &s, StatusCode::OK, Status::Healthy, &["cache", "api"], &what);
            }
            for query in ["exclude=db,api", "exclude=db&exclude=api", "exclude=%20db%20,,api"] {
                let reply = s.get(&status(query)).await;
                assert_report(&reply, &s, StatusCode::OK, Status::Healthy, &["cache"], &what);
            }
            let reply = s.get(&status("exclude=nope")).await;
            assert_report(&reply, &s, status_code_of(db), db, &["db", "cache", "api"], &what);

            // ?probe=, combined with ?tag= by AND.
            let reply = s.get(&ready("probe=db")).await;
            if state.gated() {
                gate(&reply);
            } else {
                assert_report(&reply, &s, ready_code_of(db), db, &["db"], &what);
            }
            let reply = s.get(&status("probe=db,api")).await;
            assert_report(&reply, &s, status_code_of(db), db, &["db", "api"], &what);
            let reply = s.get(&status("probe=db&probe=cache&tag=fast")).await;
            assert_report(&reply, &s, StatusCode::OK, Status::Healthy, &["cache"], &what);
            let reply = s.get(&status("probe=db&tag=edge")).await;
            assert_report(&reply, &s, StatusCode::OK, Status::Healthy, &[], &what);
            let reply = s.get(&status("tag=storage&exclude=cache")).await;
            assert_report(&reply, &s, status_code_of(db), db, &["db"], &what);
            let reply = s.get(&status("probe=api,db&exclude=db&tag=edge,storage")).await;
            assert_report(&reply, &s, StatusCode::OK, Status::Healthy, &["api"], &what);

            // Unknown names answer as unknown tags do: one 404 shape.
            let cases: [(&str, &[&str], &[&str]); 4] = [
                ("probe=nope", &["nope"], &[]),
                ("probe=db&tag=nah", &[], &["nah"]),
                ("probe=nope,db&tag=nah,edge", &["nope"], &["nah"]),
                ("tag=nah", &[], &["nah"]),
            ];
            for (query, probes, tags) in cases {
                let reply = s.get(&status(query)).await;
                assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what} {query}");
                assert_eq!(reply.json(), unknown(probes, tags), "{what} {query}");
                let reply = s.get(&ready(query)).await;
                if state.gated() {
                    gate(&reply);
                } else {
                    assert_eq!(reply.json(), unknown(probes, tags), "{what} {query}");
                }
            }
        }
    }
}

#[tokio::test]
async fn both_streams_take_probe_and_exclude_in_every_state() {
    for state in STATES {
        for caller in CALLERS {
            let s = setup(state, caller).await;
            let what = format!("{state:?} {caller:?}");
            let data = |reply: &Reply| -> Value {
                assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.body);
                let line = reply.body.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                serde_json::from_str(line).unwrap()
            };
            let cases: [(&str, &[&str]); 4] = [
                ("probe=db", &["db"]),
                ("exclude=db", &["cache", "api"]),
                ("probe=db,api&exclude=db", &["api"]),
                ("tag=storage&probe=cache,api", &["cache"]),
            ];
            for (query, want) in cases {
                let status = s.first_chunk(&format!("/health/status/stream?{query}")).await;
                let ready = s.first_chunk(&format!("/health/ready/stream?{query}")).await;
                if caller == Caller::Stranger {
                    assert_eq!(status.status, StatusCode::UNAUTHORIZED, "{what}");
                    assert_eq!(ready.status, StatusCode::UNAUTHORIZED, "{what}");
                    continue;
                }
                assert_eq!(names(&data(&status)), want, "{what} {query}");
                match gate_body(state) {
                    Some(gate) => assert_eq!(data(&ready), serde_json::from_str::<Value>(gate).unwrap(), "{what}"),
                    None => assert_eq!(names(&data(&ready)), want, "{what} {query}"),
                }
            }
            if caller != Caller::Stranger {
                for stream in ["status/stream", "ready/stream"] {
                    let reply = s.first_chunk(&format!("/health/{stream}?probe=nope")).await;
                    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what}");
                    assert_eq!(reply.json(), unknown(&["nope"], &[]), "{what}");
                }
            }
        }
    }
}

/// The lines the Kubernetes API server writes (`healthz.go`), one rule each.
fn assert_apiserver_lines(text: &str, endpoint: &str) {
    assert!(text.ends_with('\n'), "{text:?}");
    let lines: Vec<&str> = text.trim_end_matches('\n').split('\n').collect();
    let (last, checks) = lines.split_last().unwrap();
    assert!(
        *last == format!("{endpoint} check passed") || *last == format!("{endpoint} check failed"),
        "{last:?}"
    );
    let name = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    for line in checks {
        let ok = if let Some(rest) = line.strip_prefix("[+]") {
            rest.strip_suffix(" excluded: ok")
                .or_else(|| rest.strip_suffix(" ok"))
                .is_some_and(name)
        } else if let Some(rest) = line.strip_prefix("[-]") {
            rest.split_once(" failed: ")
                .is_some_and(|(n, reason)| name(n) && !reason.is_empty())
        } else if let Some(rest) = line.strip_prefix("warn: some health checks cannot be excluded: no matches for ") {
            rest.split(',')
                .all(|q| q.len() > 2 && q.starts_with('"') && q.ends_with('"'))
        } else {
            false
        };
        assert!(ok, "not an API server line: {line:?} in {text:?}");
    }
}

fn assert_text(reply: &Reply, code: StatusCode, want: &str, endpoint: &str, what: &str) {
    assert_eq!(reply.status, code, "{what}: {}", reply.body);
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8", "{what}");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff", "{what}");
    let got: Vec<&str> = reply.body.split('\n').collect();
    let expected: Vec<&str> = want.split('\n').collect();
    assert_eq!(got, expected, "{what}: line by line");
    assert_apiserver_lines(&reply.body, endpoint);
}

#[tokio::test]
async fn verbose_answers_the_api_servers_text_in_every_state_for_every_caller() {
    for state in STATES {
        for caller in CALLERS {
            let s = setup(state, caller).await;
            let what = format!("{state:?} {caller:?}");
            let reason = |text: &str| {
                if caller == Caller::Authenticated {
                    text.to_owned()
                } else {
                    "reason withheld".to_owned()
                }
            };
            for live in ["/health/live?verbose", "/health/live/?verbose=true"] {
                let reply = s.get(live).await;
                assert_text(
                    &reply,
                    StatusCode::OK,
                    "[+]ping ok\nlivez check passed\n",
                    "livez",
                    &what,
                );
            }
            let reply = s.get("/health/live?verbose&exclude=ping,nope").await;
            let want = "[+]ping excluded: ok\nwarn: some health checks cannot be excluded: no matches for \"nope\"\nlivez check passed\n";
            assert_text(&reply, StatusCode::OK, want, "livez", &what);

            let db_line = match state.db() {
                Status::Unhealthy => format!("[-]db failed: {}", reason("db is down")),
                _ => "[+]db ok".to_owned(),
            };
            let (code, want) = match state {
                State::Maintenance => (StatusCode::OK, "[+]maintenance ok\nreadyz check passed\n".to_owned()),
                State::Grace => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "[-]grace-period failed: {}\nreadyz check failed\n",
                        reason("the service is starting")
                    ),
                ),
                State::Draining => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "[-]shutdown failed: {}\nreadyz check failed\n",
                        reason("the service is draining")
                    ),
                ),
                _ => {
                    let verdict = if state == State::Unhealthy { "failed" } else { "passed" };
                    (
                        ready_code(state),
                        format!("{db_line}\n[+]cache ok\n[+]api ok\nreadyz check {verdict}\n"),
                    )
                }
            };
            for uri in ["/health/ready?verbose", "/health/ready/?verbose=1"] {
                assert_text(&s.get(uri).await, code, &want, "readyz", &what);
            }
            if state.gated() {
                // A gate is not a probe: excluding does not lift it.
                let reply = s
                    .get("/health/ready?verbose&exclude=db,shutdown,maintenance,grace-period")
                    .await;
                assert_text(&reply, code, &want, "readyz", &what);
                continue;
            }
            let reply = s.get("/health/ready?verbose&exclude=db&exclude=zz,aa").await;
            let want = "[+]db excluded: ok\n[+]cache ok\n[+]api ok\n\
                        warn: some health checks cannot be excluded: no matches for \"aa\",\"zz\"\n\
                        readyz check passed\n";
            assert_text(&reply, StatusCode::OK, want, "readyz", &what);
            let reply = s.get("/health/ready?verbose&probe=db").await;
            let verdict = if state == State::Unhealthy { "failed" } else { "passed" };
            assert_text(
                &reply,
                ready_code(state),
                &format!("{db_line}\nreadyz check {verdict}\n"),
                "readyz",
                &what,
            );
            let reply = s.get("/health/ready?verbose&tag=edge").await;
            assert_text(
                &reply,
                StatusCode::OK,
                "[+]api ok\nreadyz check passed\n",
                "readyz",
                &what,
            );
            let reply = s.get("/health/ready?verbose&probe=nope").await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what}");
            assert_eq!(reply.json(), unknown(&["nope"], &[]), "{what}");
        }
    }
}

#[tokio::test]
async fn verbose_matches_the_api_servers_own_answers() {
    // The API server's healthz tests: one good check passes; a good and a
    // bad one fail with the reason withheld. Ours name their endpoint as
    // the API server's `/readyz` does.
    let good = || Switch::new("good", Status::Healthy);
    let one = HealthRegistry::builder().add(good()).build().unwrap();
    let reply = get(&one, "/health/ready?verbose=true").await;
    assert_text(
        &reply,
        StatusCode::OK,
        "[+]good ok\nreadyz check passed\n",
        "readyz",
        "good",
    );
    let reply = get(&one, "/health/ready?verbose&exclude=good").await;
    assert_text(
        &reply,
        StatusCode::OK,
        "[+]good excluded: ok\nreadyz check passed\n",
        "readyz",
        "excluded",
    );

    let two = HealthRegistry::builder()
        .add(good())
        .add(Switch::new("bad", Status::Unhealthy))
        .build()
        .unwrap();
    let reply = get(&two, "/health/ready?verbose").await;
    let want = "[+]good ok\n[-]bad failed: reason withheld\nreadyz check failed\n";
    assert_text(&reply, StatusCode::SERVICE_UNAVAILABLE, want, "readyz", "good and bad");
    // Without ?verbose the answers stay JSON.
    assert_eq!(
        get(&two, "/health/ready").await.headers["content-type"],
        "application/json"
    );
    assert_eq!(get(&two, "/health/live").await.text(), r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn verbose_reasons_are_redacted_for_authenticated_callers() {
    let registry = HealthRegistry::builder()
        .add(probe::from_fn("payments", || async {
            Err(axum_watch::ProbeError::msg(
                "connection refused: https://demo:hunter2@pay.invalid/v1",
            ))
        }))
        .basic_auth("ops", "s3cret")
        .build()
        .unwrap();
    let s = Setup {
        app: registry.router(),
        registry,
        caller: Caller::Authenticated,
        db: Switch::new("unused", Status::Healthy),
    };
    let reply = s.get("/health/ready?verbose").await;
    assert!(!reply.body.contains("hunter2"), "{}", reply.body);
    assert!(
        reply
            .body
            .starts_with("[-]payments failed: connection refused: https://demo:***@pay.invalid/v1\n"),
        "{}",
        reply.body
    );
    drop(s.registry);
}

#[tokio::test]
async fn a_trailing_slash_reaches_every_health_endpoint_in_every_state() {
    for state in STATES {
        for caller in CALLERS {
            let s = setup(state, caller).await;
            s.registry.set_started();
            let what = format!("{state:?} {caller:?}");
            for path in [
                "live",
                "ready",
                "status",
                "startup",
                "history",
                "alerts",
                "alerts/deliveries",
                "probes",
                "metrics",
                "maintenance",
                "ready/db",
                "status/db",
                "ready/api",
            ] {
                let plain = s.get(&format!("/health/{path}")).await;
                let slashed = s.get(&format!("/health/{path}/")).await;
                assert_eq!(plain.status, slashed.status, "{what} {path}");
                assert_eq!(
                    plain.headers.get("content-type"),
                    slashed.headers.get("content-type"),
                    "{what} {path}"
                );
                assert_ne!(slashed.status, StatusCode::NOT_FOUND, "{what} {path}");
                if plain.status.is_success() && plain.headers["content-type"] == "application/json" {
                    let (a, b) = (plain.json(), slashed.json());
                    assert_eq!(a.get("status"), b.get("status"), "{what} {path}");
                }
            }
            for stream in ["status/stream", "ready/stream"] {
                let plain = s.first_chunk(&format!("/health/{stream}")).await;
                let slashed = s.first_chunk(&format!("/health/{stream}/")).await;
                assert_eq!(plain.status, slashed.status, "{what} {stream}");
            }
            let page = s.get("/health/dashboard/?theme=dark").await;
            if caller == Caller::Stranger {
                assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{what}");
            } else {
                assert_eq!(page.status, StatusCode::PERMANENT_REDIRECT, "{what}");
                assert_eq!(page.headers["location"], "/health/dashboard?theme=dark", "{what}");
            }
        }
    }
    // HEAD works on the slashed and per-probe paths too; other methods get 405.
    let registry = HealthRegistry::builder()
        .add(Switch::new("db", Status::Healthy))
        .build()
        .unwrap();
    for path in [
        "/health/ready/",
        "/health/ready/db",
        "/health/status/db/",
        "/health/probes",
    ] {
        assert_eq!(
            send(&registry, Method::HEAD, path).await.status,
            StatusCode::OK,
            "{path}"
        );
        let post = send(&registry, Method::POST, path).await;
        assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(post.headers["allow"], "GET,HEAD", "{path}");
    }
    let rooted = HealthRegistry::builder().prefix("").build().unwrap();
    assert_eq!(get(&rooted, "/live/").await.status, StatusCode::OK);
    assert_eq!(get(&rooted, "/").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn probes_lists_every_probes_configuration_without_running_one() {
    let db = Switch::new("db", Status::Healthy);
    let warmup = Switch::new("warmup", Status::Healthy);
    let registry = HealthRegistry::builder()
        .add(
            db.clone()
                .with_description("primary database")
                .with_tags(["storage", "core"])
                .with_timeout(Duration::from_secs(2))
                .with_poll_interval(Duration::from_secs(15))
                .with_circuit_breaker(3, Duration::from_secs(30))
                .with_thresholds(2, 3),
        )
        .add_non_critical(
            Switch::new("cache", Status::Healthy)
                .without_timeout()
                .without_circuit_breaker(),
        )
        .add(RouteProbe::new("checkout"))
        .startup_probe(warmup.clone())
        .poll_interval(Duration::from_secs(90))
        .failure_threshold(4)
        .build()
        .unwrap();
    for path in ["/health/probes", "/health/probes/"] {
        let reply = get(&registry, path).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.headers["content-type"], "application/json");
        assert_eq!(
            reply.json(),
            json!({
                "probes": [
                    {"name": "db", "kind": "active", "critical": true, "description": "primary database",
                     "tags": ["storage", "core"], "timeout_ms": 2000, "poll_interval_ms": 15000,
                     "circuit_breaker": {"enabled": true, "threshold": 3, "cooldown_ms": 30000},
                     "failure_threshold": 2, "success_threshold": 3},
                    {"name": "cache", "kind": "active", "critical": false, "description": null, "tags": [],
                     "timeout_ms": null, "poll_interval_ms": 90000,
                     "circuit_breaker": {"enabled": false, "threshold": null, "cooldown_ms": null},
                     "failure_threshold": 4, "success_threshold": 1},
                    {"name": "checkout", "kind": "passive", "critical": true, "description": null, "tags": [],
                     "timeout_ms": 10000, "poll_interval_ms": 90000,
                     "circuit_breaker": {"enabled": false, "threshold": null, "cooldown_ms": null},
                     "failure_threshold": 4, "success_threshold": 1},
                ],
                "startup_probes": [
                    {"name": "warmup", "kind": "active", "critical": true, "description": null, "tags": [],
                     "timeout_ms": 10000, "poll_interval_ms": null,
                     "circuit_breaker": {"enabled": false, "threshold": null, "cooldown_ms": null},
                     "failure_threshold": 4, "success_threshold": 1},
                ],
            })
        );
    }
    assert_eq!((db.calls(), warmup.calls()), (0, 0), "listing runs nothing");
    // The registry's interval changes at runtime; so does what probes follow it.
    registry.set_poll_interval(None);
    let listed = get(&registry, "/health/probes").await.json();
    assert_eq!(listed["probes"][0]["poll_interval_ms"], 15000);
    assert_eq!(listed["probes"][1]["poll_interval_ms"], Value::Null);
    assert_eq!(registry.probes().len(), 3);
    assert_eq!(registry.probes()[2].kind, axum_watch::model::ProbeKind::Passive);

    // The listing is guarded like history and alerts.
    for caller in [Caller::Stranger, Caller::Authenticated] {
        let s = setup(State::Healthy, caller).await;
        let reply = s.get("/health/probes").await;
        if caller == Caller::Stranger {
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        } else {
            assert_eq!(names(&reply.json()), ["db", "cache", "api"]);
        }
        assert_eq!(s.db.calls(), 0);
    }
}

#[tokio::test]
async fn status_codes_can_be_mapped_and_the_defaults_stay() {
    let mapped = |b: axum_watch::HealthRegistryBuilder| {
        b.ready_code(Status::Degraded, StatusCode::SERVICE_UNAVAILABLE)
            .status_code(Status::Degraded, StatusCode::OK)
            .status_code(Status::Unhealthy, StatusCode::SERVICE_UNAVAILABLE)
    };
    for state in STATES {
        for caller in CALLERS {
            let what = format!("{state:?} {caller:?}");
            let s = setup_with(state, caller, mapped).await;
            let db = state.db();
            let ready = match db {
                Status::Healthy => StatusCode::OK,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let status = match db {
                Status::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::OK,
            };
            let gate_or = |code| if state.gated() { ready_code(state) } else { code };
            assert_eq!(s.get("/health/ready").await.status, gate_or(ready), "{what}");
            assert_eq!(s.get("/health/ready/db").await.status, gate_or(ready), "{what}");
            assert_eq!(s.get("/health/status").await.status, status, "{what}");
            assert_eq!(s.get("/health/status/db").await.status, status, "{what}");
            assert_eq!(s.get("/health/status?probe=api").await.status, StatusCode::OK, "{what}");
            if state == State::Degraded {
                // The verbose lines follow the mapping: degraded now fails readiness.
                let reason = if caller == Caller::Authenticated {
                    "degraded"
                } else {
                    "reason withheld"
                };
                let want = format!("[-]db failed: {reason}\n[+]cache ok\n[+]api ok\nreadyz check failed\n");
                assert_text(&s.get("/health/ready?verbose").await, ready, &want, "readyz", &what);
            }
            // The defaults, for comparison.
            let plain = setup(state, caller).await;
            assert_eq!(
                plain.get("/health/ready").await.status,
                gate_or(ready_code_of(db)),
                "{what}"
            );
            assert_eq!(plain.get("/health/status").await.status, status_code_of(db), "{what}");
        }
    }
    for code in [StatusCode::CONTINUE, StatusCode::SWITCHING_PROTOCOLS] {
        let err = HealthRegistry::builder()
            .status_code(Status::Healthy, code)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), axum_watch::BuildErrorKind::InvalidOption);
        assert!(err.to_string().starts_with("status_code for healthy: "), "{err}");
    }
    let err = HealthRegistry::builder()
        .ready_code(Status::Unhealthy, StatusCode::from_u16(600).unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("use a code from 200 to 599"), "{err}");
}
