//! `application/health+json` (the IETF draft "Health Check Response
//! Format for HTTP APIs", draft-inadarei-api-health-check): what `ready`
//! and `status` answer when `Accept` asks for it.
//!
//! `status` is `pass`, `warn` or `fail` (healthy, degraded, unhealthy);
//! `checks` holds one `<probe>:responseTime` entry per probe with its
//! latency in milliseconds, its own status and time, and its (redacted)
//! error as `output`; `serviceId`, `version`, `releaseId` and
//! `description` come from the builder's service name and
//! [`ServiceInfo`]. The code is 503 for `fail` and 200 otherwise, as the
//! draft asks, whatever the JSON answers' codes are.

use axum::body::Body;
use axum::response::Response;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, VARY};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;
use serde::ser::SerializeMap;

use super::{Face, to_json};
use crate::engine::Gate;
use crate::model::{HealthReport, Lifecycle, ProbeResult, Status, Timestamp};

/// The media type of the format.
const MEDIA_TYPE: &str = "application/health+json";

/// What `application/health+json` answers say about the service besides
/// its name (the builder's
/// [`service_name`](crate::HealthRegistryBuilder::service_name), their
/// `serviceId`); see
/// [`HealthRegistryBuilder::service_info`](crate::HealthRegistryBuilder::service_info).
///
/// ```
/// use axum_watch::HealthRegistry;
/// use axum_watch::options::ServiceInfo;
///
/// let registry = HealthRegistry::builder()
///     .service_name("checkout")
///     .service_info(ServiceInfo::new().version("2").release_id("2.4.1").description("the checkout API"))
///     .build()
///     .unwrap();
/// # drop(registry);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct ServiceInfo {
    version: Option<String>,
    release_id: Option<String>,
    description: Option<String>,
}

impl ServiceInfo {
    /// Nothing said yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The public version of the service's API (`version`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The release of its implementation, such as a build number or a
    /// commit (`releaseId`).
    pub fn release_id(mut self, release: impl Into<String>) -> Self {
        self.release_id = Some(release.into());
        self
    }

    /// What the service is, for people (`description`).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

/// The service block as resolved at build: its id and its information.
#[derive(Debug, Clone, Default)]
pub(crate) struct Service {
    pub(crate) id: String,
    pub(crate) info: ServiceInfo,
}

/// Whether `Accept` asks for `application/health+json` over plain JSON:
/// listed with a non-zero quality at least that of `application/json`.
/// Wildcards never choose it.
pub(super) fn wanted(headers: &HeaderMap) -> bool {
    let mut health: Option<f32> = None;
    let mut json: Option<f32> = None;
    for value in headers.get_all(ACCEPT).iter().filter_map(|v| v.to_str().ok()) {
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, q)| q.trim().parse::<f32>().unwrap_or(0.0));
            let slot = match media.as_str() {
                MEDIA_TYPE => &mut health,
                "application/json" => &mut json,
                _ => continue,
            };
            *slot = Some(slot.map_or(quality, |q: f32| q.max(quality)));
        }
    }
    health.is_some_and(|h| h > 0.0 && json.is_none_or(|j| h >= j))
}

const fn verdict(status: Status) -> &'static str {
    match status {
        Status::Healthy => "pass",
        Status::Degraded => "warn",
        Status::Unhealthy => "fail",
    }
}

/// One `checks` entry: a probe's latency, as the draft's `responseTime`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Check<'a> {
    component_id: &'a str,
    component_type: &'static str,
    observed_value: f64,
    observed_unit: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
}

/// `checks`: `"<name>:responseTime": [entry]`, in registration order.
struct Checks<'a>(&'a [ProbeResult], Option<Timestamp>);

impl Serialize for Checks<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for probe in self.0 {
            let check = Check {
                component_id: &probe.name,
                component_type: "component",
                observed_value: probe.latency_ms,
                observed_unit: "ms",
                status: verdict(probe.status),
                time: probe.checked_at.or(self.1),
                output: (probe.status != Status::Healthy)
                    .then(|| probe.error.as_deref().map(|e| crate::redact(e).into_owned()))
                    .flatten(),
            };
            // The key's colon separates component and measurement, so a
            // colon in a probe's name becomes `_` there (`componentId`
            // keeps the name as it is).
            let component = probe.name.replace(':', "_");
            map.serialize_entry(&format!("{component}:responseTime"), &[check])?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    service_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<Checks<'a>>,
}

impl<'a> Answer<'a> {
    fn new(service: &'a Service, status: &'static str) -> Self {
        Self {
            status,
            version: service.info.version.as_deref(),
            release_id: service.info.release_id.as_deref(),
            notes: Vec::new(),
            output: None,
            service_id: &service.id,
            description: service.info.description.as_deref(),
            checks: None,
        }
    }
}

fn respond(verdict: &'static str, body: &impl Serialize) -> Response {
    let code = if verdict == "fail" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let mut response = Response::new(Body::from(to_json(body)));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(VARY, HeaderValue::from_static("accept"));
    response
}

/// `{"status": …}` alone, for a caller an open endpoint does not know.
fn status_only(verdict: &'static str) -> Response {
    #[derive(Serialize)]
    struct Only {
        status: &'static str,
    }
    respond(verdict, &Only { status: verdict })
}

/// What the lifecycle and maintenance add to an answer's `notes`.
fn notes(face: &Face) -> Vec<&'static str> {
    let mut notes = Vec::new();
    match face.engine.lifecycle() {
        Lifecycle::Serving => {}
        other => notes.push(other.as_str()),
    }
    if face.engine.in_maintenance() {
        notes.push("maintenance");
    }
    notes
}

/// `report` in the format: the overall verdict, and a check per probe.
pub(super) fn report(face: &Face, report: &HealthReport, reduced: bool) -> Response {
    let status = verdict(report.status);
    if reduced {
        return status_only(status);
    }
    let service = &face.config.service;
    let mut body = Answer::new(service, status);
    body.notes = notes(face);
    body.output = match report.status {
        Status::Healthy => None,
        Status::Degraded => Some(format!("degraded: {}", names(report, Status::Degraded))),
        Status::Unhealthy => Some(format!("failing: {}", report.failing.join(", "))),
    };
    body.checks = Some(Checks(&report.probes, report.checked_at));
    respond(status, &body)
}

/// The critical probes of `report` in `status`, by name.
fn names(report: &HealthReport, status: Status) -> String {
    let names: Vec<&str> = report
        .probes
        .iter()
        .filter(|p| p.critical && p.status == status)
        .map(|p| p.name.as_str())
        .collect();
    names.join(", ")
}

/// `ready` while a gate decides it: draining and starting fail, maintenance
/// warns (ready, with no probe run).
pub(super) fn gate(face: &Face, gate: Gate, reduced: bool) -> Response {
    let (status, output) = match gate {
        Gate::Draining => ("fail", "the service is draining"),
        Gate::Starting => ("fail", "the service is starting"),
        Gate::Maintenance => ("warn", "maintenance: probes are not run"),
    };
    if reduced {
        return status_only(status);
    }
    let mut body = Answer::new(&face.config.service, status);
    body.notes = notes(face);
    body.output = Some(output.to_owned());
    respond(status, &body)
}

#[cfg(test)]
mod tests {
    use super::wanted;
    use http::header::ACCEPT;
    use http::{HeaderMap, HeaderValue};

    #[test]
    fn accept_chooses_the_format_only_when_it_asks() {
        let cases = [
            ("application/health+json", true),
            ("Application/Health+JSON", true),
            ("application/json, application/health+json", true),
            ("application/health+json;q=0.9, application/json", false),
            ("application/json;q=0.5, application/health+json;q=0.8", true),
            ("application/health+json;q=0", false),
            ("*/*", false),
            ("application/*", false),
            ("application/json", false),
            ("text/html, application/health+json; charset=utf-8", true),
        ];
        for (accept, want) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, HeaderValue::from_static(accept));
            assert_eq!(wanted(&headers), want, "{accept}");
        }
        assert!(!wanted(&HeaderMap::new()));
    }
}
