//! The Kubernetes conventions, with the API server's health endpoints as
//! the reference: one probe's own path (`ready/<name>`, `status/<name>`),
//! and `?verbose` on `live` and `ready`, answering the API server's plain
//! text line for line:
//!
//! ```text
//! [+]db ok
//! [+]cache excluded: ok
//! [-]queue failed: reason withheld
//! warn: some health checks cannot be excluded: no matches for "nope"
//! readyz check failed
//! ```
//!
//! Why a check failed is said only to an authenticated caller; anyone else
//! reads `reason withheld`, as every caller of the API server does.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderValue, StatusCode};

use super::query::Filter;
use super::{Endpoint, Face, Reduced, gate_body, json_bytes, not_found, status_only, to_json, unknown, with_lifecycle};
use crate::engine::Gate;

/// One line's check: its name, and why it failed when it did.
struct Check<'a> {
    name: &'a str,
    failure: Option<Cow<'a, str>>,
}

/// The API server's verbose text for `checks` under the endpoint called
/// `endpoint` (`livez`, `readyz`): a line per check (or `excluded: ok`),
/// a warning naming the exclusions that matched nothing, then the verdict.
fn render<'a>(
    endpoint: &str,
    checks: impl IntoIterator<Item = Check<'a>>,
    filter: &Filter,
    reasons: bool,
    passed: bool,
) -> String {
    let mut out = String::new();
    let mut matched: Vec<&str> = Vec::new();
    for check in checks {
        if filter.excludes(check.name) {
            matched.push(check.name);
            out.push_str(&format!("[+]{} excluded: ok\n", check.name));
            continue;
        }
        match &check.failure {
            None => out.push_str(&format!("[+]{} ok\n", check.name)),
            Some(reason) if reasons => out.push_str(&format!("[-]{} failed: {reason}\n", check.name)),
            Some(_) => out.push_str(&format!("[-]{} failed: reason withheld\n", check.name)),
        }
    }
    let mut unmatched: Vec<&str> = filter
        .exclude
        .iter()
        .map(String::as_str)
        .filter(|e| !matched.contains(e))
        .collect();
    if !unmatched.is_empty() {
        unmatched.sort_unstable();
        let quoted: Vec<String> = unmatched.iter().map(|n| format!("{n:?}")).collect();
        out.push_str(&format!(
            "warn: some health checks cannot be excluded: no matches for {}\n",
            quoted.join(",")
        ));
    }
    out.push_str(endpoint);
    out.push_str(if passed { " check passed\n" } else { " check failed\n" });
    out
}

fn text(code: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `live?verbose`: the process answers, which is all liveness checks.
pub(super) fn live_verbose(filter: &Filter) -> Response {
    let ping = Check {
        name: "ping",
        failure: None,
    };
    text(StatusCode::OK, render("livez", [ping], filter, false, true))
}

/// `ready?verbose`: a line per probe the filter selects, in registration
/// order, with the code `ready` answers; while a gate decides readiness,
/// the gate's line alone.
pub(super) async fn ready_verbose(face: &Face, filter: &Filter, reasons: bool) -> Response {
    if let Some(gate) = face.engine.readiness_gate() {
        let (code, _) = gate_body(gate);
        let check = match gate {
            Gate::Draining => Check {
                name: "shutdown",
                failure: Some(Cow::Borrowed("the service is draining")),
            },
            Gate::Starting => Check {
                name: "grace-period",
                failure: Some(Cow::Borrowed("the service is starting")),
            },
            Gate::Maintenance => Check {
                name: "maintenance",
                failure: None,
            },
        };
        // A gate is not a probe: `?exclude=` does not lift it.
        let body = render("readyz", [check], &Filter::default(), reasons, code.as_u16() < 400);
        return text(code, body);
    }
    if let Some(refusal) = unknown(&face.engine, filter) {
        return refusal;
    }
    let snapshot = face.engine.report().await;
    let codes = &face.config.codes;
    let selected: Vec<_> = snapshot.report.probes.iter().filter(|p| filter.selects(p)).collect();
    let kept = selected.iter().copied().filter(|p| !filter.excludes(&p.name));
    let code = codes.of(Endpoint::Ready, crate::model::Status::overall(kept));
    let checks = selected.iter().map(|p| Check {
        name: &p.name,
        // A probe fails its line when its own status would make `ready`
        // fail; the reason is its error (redacted once more), else its status.
        failure: (codes.of(Endpoint::Ready, p.status).as_u16() >= 400)
            .then(|| crate::redact(p.error.as_deref().unwrap_or(p.status.as_str()))),
    });
    text(code, render("readyz", checks, filter, reasons, code.as_u16() < 400))
}

/// `ready/<name>`: that probe's result, with the code `ready` would answer
/// for its status; while a gate decides readiness, the gate's answer.
pub(super) async fn ready_probe(State(face): State<Face>, reduced: Reduced, Path(name): Path<String>) -> Response {
    if !face.engine.has_probe(&name) {
        return not_found(&[&name], &[]);
    }
    if let Some(gate) = face.engine.readiness_gate() {
        let (code, body) = gate_body(gate);
        return json_bytes(code, Bytes::from_static(body));
    }
    probe_response(&face, &name, Endpoint::Ready, reduced.is_some()).await
}

/// `status/<name>`: that probe's result, with the code `status` would
/// answer for its status.
pub(super) async fn status_probe(State(face): State<Face>, reduced: Reduced, Path(name): Path<String>) -> Response {
    if !face.engine.has_probe(&name) {
        return not_found(&[&name], &[]);
    }
    probe_response(&face, &name, Endpoint::Status, reduced.is_some()).await
}

async fn probe_response(face: &Face, name: &str, endpoint: Endpoint, reduced: bool) -> Response {
    let snapshot = face.engine.report().await;
    let Some(result) = snapshot.report.probe(name) else {
        return not_found(&[name], &[]);
    };
    let code = face.config.codes.of(endpoint, result.status);
    if reduced {
        return status_only(code, result.status.as_str());
    }
    json_bytes(code, with_lifecycle(to_json(result), face.engine.lifecycle()))
}

#[cfg(test)]
mod tests {
    use super::{Check, Filter, render};

    fn check(name: &'static str, failure: Option<&'static str>) -> Check<'static> {
        Check {
            name,
            failure: failure.map(std::borrow::Cow::Borrowed),
        }
    }

    #[test]
    fn renders_the_api_servers_lines() {
        let filter = Filter::parse(Some("exclude=cache&exclude=zeta,alpha"));
        let checks = [
            check("db", None),
            check("cache", Some("down")),
            check("queue", Some("connection refused")),
        ];
        assert_eq!(
            render("readyz", checks, &filter, false, false),
            "[+]db ok\n[+]cache excluded: ok\n[-]queue failed: reason withheld\n\
             warn: some health checks cannot be excluded: no matches for \"alpha\",\"zeta\"\n\
             readyz check failed\n"
        );
        let checks = [check("db", None), check("queue", Some("connection refused"))];
        assert_eq!(
            render("readyz", checks, &Filter::default(), true, true),
            "[+]db ok\n[-]queue failed: connection refused\nreadyz check passed\n"
        );
        assert_eq!(
            render("livez", [check("ping", None)], &Filter::default(), false, true),
            "[+]ping ok\nlivez check passed\n"
        );
    }
}
