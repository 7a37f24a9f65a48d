//! The OpenAPI 3.1 description of the health endpoints (feature `openapi`),
//! as the registry serves them: one path per [route](super::routes::ROUTES)
//! the router has, under the configured prefix, with the methods, the
//! parameters, the request body, and every code and body each can answer
//! under this configuration (the status-code mapping, the authentication
//! and the endpoints it leaves open, the dashboard, the fleet view).
//!
//! The document is meant to be merged into the application's own: every
//! operation carries its own security (an empty requirement where none is
//! needed, so an application-wide requirement does not claim it), the
//! component names start with `AxumWatch`, the operation ids with
//! `axumWatch`, and the one tag is `health`.

mod schemas;

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{Value, json};
use utoipa::openapi::path::{Operation, OperationBuilder, Parameter, ParameterIn, ParameterStyle, PathItem};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::Tag;
use utoipa::openapi::{
    Components, Content, Header, OpenApi, OpenApiBuilder, Paths, RefOr, Required, Response, Responses, Schema,
};

use super::auth::Credentials;
use super::routes::{Op, ROUTES, Route, Verb};
use super::{Endpoint, HttpConfig};
use crate::engine::Engine;
use crate::model::Status;

/// The tag of every operation.
const TAG: &str = "health";
const STATUSES: [Status; 3] = [Status::Healthy, Status::Degraded, Status::Unhealthy];

/// The document for the router `config` gives.
pub(crate) fn document(engine: &Engine, config: &HttpConfig) -> OpenApi {
    let doc = Doc {
        config,
        fleet: engine.replica().is_some(),
        scheme: config.auth.as_ref().and_then(|auth| scheme(&auth.credentials)),
    };
    let mut paths = Paths::new();
    for route in ROUTES.iter().filter(|r| r.served(config)) {
        let mut item = PathItem::default();
        for &(verb, op) in route.ops {
            match verb {
                Verb::Get => {
                    item.get = Some(doc.operation(route, op, false));
                    item.head = Some(doc.operation(route, op, true));
                }
                Verb::Post => item.post = Some(doc.operation(route, op, false)),
                Verb::Delete => item.delete = Some(doc.operation(route, op, false)),
            }
        }
        paths.paths.insert(format!("{}/{}", config.prefix, route.path), item);
    }
    let mut components = Components::new();
    for (name, schema) in schemas::components() {
        match serde_json::from_value::<RefOr<Schema>>(schema) {
            Ok(schema) => {
                components.schemas.insert(format!("{}{name}", schemas::PREFIX), schema);
            }
            // The schemas are constants, read back by a unit test.
            Err(e) => tracing::error!(error = %e, schema = name, "a schema of the OpenAPI document does not parse"),
        }
    }
    if let Some((name, scheme)) = &doc.scheme {
        components
            .security_schemes
            .insert((*name).to_owned(), RefOr::T(scheme.clone()));
    }
    let description = "The health endpoints of axum-watch. Every path also answers with a trailing slash \
        (the dashboard's answers 308 to the page); other methods answer 405.";
    OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title(format!("{} health", config.service.id))
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(description))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .tags(Some([Tag::builder()
            .name(TAG)
            .description(Some(
                "Liveness, readiness, status, streams, metrics and maintenance (axum-watch)",
            ))
            .build()]))
        .build()
}

/// The security scheme the credentials are presented with: none for a
/// custom check, which OpenAPI cannot describe.
fn scheme(credentials: &Credentials) -> Option<(&'static str, SecurityScheme)> {
    match credentials {
        Credentials::Basic { .. } => Some((
            "axumWatchBasic",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("The health endpoints' HTTP Basic credentials"))
                    .build(),
            ),
        )),
        Credentials::ApiKey { header, .. } => Some((
            "axumWatchApiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                header.as_str(),
                "The health endpoints' API key",
            ))),
        )),
        Credentials::Sync(_) | Credentials::Async(_) => None,
    }
}

/// What kind of body an answer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    HealthJson,
    Text,
    EventStream,
    Prometheus,
    OpenMetrics,
    Html,
}

impl Media {
    const fn essence(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::HealthJson => "application/health+json",
            Self::Text | Self::Prometheus => "text/plain",
            Self::EventStream => "text/event-stream",
            Self::OpenMetrics => "application/openmetrics-text",
            Self::Html => "text/html",
        }
    }
}

/// One answer an operation can give: its code, its body and when.
#[derive(Debug, Clone)]
struct Answer {
    code: StatusCode,
    media: Media,
    /// The component of a JSON body (without the prefix).
    schema: Option<&'static str>,
    when: String,
}

fn answer(code: StatusCode, media: Media, schema: Option<&'static str>, when: impl Into<String>) -> Answer {
    Answer {
        code,
        media,
        schema,
        when: when.into(),
    }
}

fn json(code: StatusCode, schema: &'static str, when: impl Into<String>) -> Answer {
    answer(code, Media::Json, Some(schema), when)
}

/// `a`, `a or b`, `a, b or c`.
fn either(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What the document needs of the configuration.
struct Doc<'a> {
    config: &'a HttpConfig,
    /// Whether a storage shared by replicas gives `status?scope=fleet`.
    fleet: bool,
    scheme: Option<(&'static str, SecurityScheme)>,
}

impl Doc<'_> {
    /// Whether callers without credentials reach `route` (its answers
    /// reduced to the status) though authentication is configured.
    fn open(&self, route: &Route) -> bool {
        let auth = self.config.auth.as_ref();
        route.open.is_some_and(|e| auth.is_some_and(|a| a.open.contains(&e)))
    }

    fn operation(&self, route: &Route, op: Op, head: bool) -> Operation {
        let (id, summary, description) = text(op);
        let mut answers = self.answers(op, route);
        if let Some(refusal) = self.refusal(route) {
            answers.push(refusal);
        }
        let mut description = description.to_owned();
        if head {
            description = format!("`GET` without the body. {description}");
        }
        if self.config.auth.is_some() && self.scheme.is_none() {
            description.push_str(" Guarded by the application's own authentication check.");
        }
        if self.open(route) {
            description.push_str(
                " Open: a caller without credentials is answered the same code with the status alone \
                 (`{\"status\": …}`).",
            );
        }
        let mut builder = OperationBuilder::new()
            .tag(TAG)
            .operation_id(Some(if head { format!("{id}Head") } else { id.to_owned() }))
            .summary(Some(if head {
                format!("{summary} (headers only)")
            } else {
                summary.to_owned()
            }))
            .description(Some(description))
            .parameters(Some(self.parameters(op)))
            .responses(responses(&answers, head));
        if let Some(body) = request_body(op) {
            builder = builder.request_body(Some(body));
        }
        match (&self.config.auth, &self.scheme) {
            (None, _) => builder = builder.security(SecurityRequirement::default()),
            (Some(_), Some((name, _))) => {
                builder = builder.security(SecurityRequirement::new(*name, Vec::<String>::new()));
                if self.open(route) {
                    builder = builder.security(SecurityRequirement::default());
                }
            }
            // A custom check: no scheme to name; the application's own
            // requirement, if it has one, applies.
            (Some(_), None) => {}
        }
        builder.build()
    }

    /// The answer to a caller the authentication refuses, on a route that
    /// is not open.
    fn refusal(&self, route: &Route) -> Option<Answer> {
        let auth = self.config.auth.as_ref()?;
        if self.open(route) {
            return None;
        }
        Some(match auth.credentials {
            Credentials::Basic { .. } => json(StatusCode::UNAUTHORIZED, "Error", "no or wrong credentials"),
            _ => json(StatusCode::FORBIDDEN, "Error", "no or wrong credentials"),
        })
    }

    /// The report's answers on `endpoint`: `schema` at the code of each
    /// status, and the status alone for strangers on an open route.
    fn by_status(&self, endpoint: Endpoint, schema: &'static str, what: &str, open: bool) -> Vec<Answer> {
        let mut by_code: BTreeMap<u16, (StatusCode, Vec<&str>)> = BTreeMap::new();
        for status in STATUSES {
            let code = self.config.codes.of(endpoint, status);
            by_code
                .entry(code.as_u16())
                .or_insert((code, Vec::new()))
                .1
                .push(status.as_str());
        }
        let mut answers = Vec::new();
        for (code, statuses) in by_code.into_values() {
            answers.push(json(code, schema, format!("{what} while {}", either(&statuses))));
            if open {
                answers.push(json(
                    code,
                    "StatusOnly",
                    "the status alone, to a caller without credentials",
                ));
            }
        }
        answers
    }

    /// The codes `endpoint` answers, with the gates' on `ready`.
    fn codes(&self, endpoint: Endpoint) -> Vec<StatusCode> {
        let mut codes: Vec<StatusCode> = STATUSES.iter().map(|s| self.config.codes.of(endpoint, *s)).collect();
        if endpoint == Endpoint::Ready {
            codes.extend([StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE]);
        }
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    fn gates() -> [Answer; 2] {
        [
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                "State",
                "`starting` in the grace period, `draining` while shutting down",
            ),
            json(StatusCode::OK, "State", "`maintenance`: no probe is run"),
        ]
    }

    fn health_json() -> [Answer; 2] {
        [
            answer(
                StatusCode::OK,
                Media::HealthJson,
                Some("HealthCheck"),
                "`pass` or `warn`, with `Accept: application/health+json`",
            ),
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                Media::HealthJson,
                Some("HealthCheck"),
                "`fail`, with `Accept: application/health+json`",
            ),
        ]
    }

    fn unknown() -> Answer {
        json(StatusCode::NOT_FOUND, "Unknown", "a probe name or tag no probe has")
    }

    fn answers(&self, op: Op, route: &Route) -> Vec<Answer> {
        let open = self.open(route);
        let ok = StatusCode::OK;
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        match op {
            Op::Live => vec![
                json(ok, "State", "`ok`: the process answers"),
                answer(
                    ok,
                    Media::Text,
                    None,
                    "with `?verbose`: `[+]ping ok`, `livez check passed`",
                ),
            ],
            Op::Ready => {
                let mut answers = self.by_status(Endpoint::Ready, "HealthReport", "the report", open);
                answers.extend(Self::gates());
                answers.extend(Self::health_json());
                for code in self.codes(Endpoint::Ready) {
                    answers.push(answer(
                        code,
                        Media::Text,
                        None,
                        "with `?verbose`: the Kubernetes API server's lines",
                    ));
                }
                answers.push(Self::unknown());
                answers
            }
            Op::ReadyProbe => {
                let mut answers = self.by_status(Endpoint::Ready, "ProbeResult", "the probe's result", open);
                answers.extend(Self::gates());
                answers.push(json(StatusCode::NOT_FOUND, "Unknown", "no probe has the name"));
                answers
            }
            Op::Status => {
                let mut answers = self.by_status(Endpoint::Status, "HealthReport", "the report", open);
                if self.fleet {
                    answers.extend(self.by_status(
                        Endpoint::Status,
                        "Fleet",
                        "with `?scope=fleet`: every replica",
                        false,
                    ));
                } else {
                    answers.push(json(
                        StatusCode::NOT_FOUND,
                        "Error",
                        "with `?scope=fleet`: no storage shared by replicas is configured",
                    ));
                }
                answers.extend(Self::health_json());
                answers.push(json(
                    StatusCode::BAD_REQUEST,
                    "Error",
                    "a `scope` other than `replica` or `fleet`",
                ));
                answers.push(Self::unknown());
                answers
            }
            Op::StatusProbe => {
                let mut answers = self.by_status(Endpoint::Status, "ProbeResult", "the probe's result", open);
                answers.push(json(StatusCode::NOT_FOUND, "Unknown", "no probe has the name"));
                answers
            }
            Op::ReadyStream | Op::StatusStream => vec![
                answer(
                    ok,
                    Media::EventStream,
                    None,
                    "server-sent events: `data: <JSON>` with the current answer, then one per change; a `:` comment every 15 s",
                ),
                Self::unknown(),
            ],
            Op::Startup => {
                let mut answers = vec![
                    json(ok, "State", "`started`: every startup probe passes"),
                    json(
                        unavailable,
                        "State",
                        "`starting`: the application has not said it started",
                    ),
                    json(unavailable, "HealthReport", "the startup probes' report: one fails"),
                ];
                if open {
                    answers.push(json(
                        unavailable,
                        "StatusOnly",
                        "the status alone, to a caller without credentials",
                    ));
                }
                answers
            }
            Op::Probes => vec![json(ok, "Probes", "every registered probe's configuration")],
            Op::History => vec![json(ok, "History", "each probe's recent results")],
            Op::Alerts => vec![json(ok, "Alerts", "the recorded transitions, oldest first")],
            Op::Deliveries => vec![json(ok, "Deliveries", "each alerter's deliveries")],
            Op::Metrics => vec![
                answer(ok, Media::Prometheus, None, "Prometheus text format 0.0.4"),
                answer(
                    ok,
                    Media::OpenMetrics,
                    None,
                    "OpenMetrics 1.0, when `Accept` asks for `application/openmetrics-text`",
                ),
            ],
            Op::MaintenanceStatus => vec![json(ok, "Maintenance", "whether maintenance is on, and until when")],
            Op::MaintenanceStart | Op::MaintenanceEnd => {
                if self.config.auth.is_none() && !self.config.allow_unauthenticated_maintenance {
                    return vec![json(
                        StatusCode::FORBIDDEN,
                        "Error",
                        "always: maintenance cannot be changed over HTTP without authentication \
                         (configure it, or allow unauthenticated maintenance)",
                    )];
                }
                let mut answers = vec![json(ok, "Maintenance", "maintenance as it is now")];
                if op == Op::MaintenanceStart {
                    answers.extend([
                        json(StatusCode::BAD_REQUEST, "Error", "the body is not JSON"),
                        json(StatusCode::PAYLOAD_TOO_LARGE, "Error", "the body is over 1024 bytes"),
                        json(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "Error",
                            "a body not sent as `application/json`",
                        ),
                        json(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "Error",
                            "a body of another shape; `field` names the field at fault",
                        ),
                    ]);
                }
                answers
            }
            Op::Dashboard => vec![answer(ok, Media::Html, None, "the dashboard page")],
        }
    }

    fn parameters(&self, op: Op) -> Vec<Parameter> {
        let filters = || {
            vec![
                list("tag", "Keeps the probes with any of these tags"),
                list("probe", "Keeps the probes with these names"),
                list("exclude", "Leaves these probes out (a name no probe has is ignored)"),
            ]
        };
        match op {
            Op::Live => vec![
                verbose(),
                list("exclude", "With `?verbose`: the checks to show as excluded"),
            ],
            Op::Ready => {
                let mut params = filters();
                params.push(verbose());
                params
            }
            Op::ReadyStream | Op::StatusStream => filters(),
            Op::Status => {
                let mut params = filters();
                let fleet = if self.fleet {
                    "`fleet`: every replica sharing the storage"
                } else {
                    "`fleet`: every replica sharing the storage (none is configured: 404)"
                };
                params.push(query(
                    "scope",
                    &format!("`replica` (the default): this replica's report; {fleet}"),
                    json!({ "type": "string", "enum": ["replica", "fleet"] }),
                ));
                params
            }
            Op::ReadyProbe | Op::StatusProbe => {
                let mut name = Parameter::new("name");
                name.parameter_in = ParameterIn::Path;
                name.required = Required::True;
                name.description = Some("A probe's name".to_owned());
                name.schema = schema(json!({ "type": "string", "pattern": "^[A-Za-z0-9_.:-]+$" }));
                vec![name]
            }
            Op::Startup
            | Op::Probes
            | Op::History
            | Op::Alerts
            | Op::Deliveries
            | Op::Metrics
            | Op::MaintenanceStatus
            | Op::MaintenanceStart
            | Op::MaintenanceEnd
            | Op::Dashboard => Vec::new(),
        }
    }
}

/// Each operation's id, summary and description.
const fn text(op: Op) -> (&'static str, &'static str, &'static str) {
    match op {
        Op::Live => (
            "axumWatchLive",
            "Liveness",
            "Whether the process answers; runs no probe.",
        ),
        Op::Ready => (
            "axumWatchReady",
            "Readiness",
            "The report of the (selected) probes, with the code readiness answers for its status; \
             while a gate decides readiness (grace period, maintenance, draining), the gate's answer.",
        ),
        Op::ReadyProbe => (
            "axumWatchReadyProbe",
            "One probe's readiness",
            "That probe's result, with the code readiness answers for its own status; the same gates as readiness.",
        ),
        Op::ReadyStream => (
            "axumWatchReadyStream",
            "Readiness as server-sent events",
            "What readiness would answer, now and after every poll.",
        ),
        Op::Status => (
            "axumWatchStatus",
            "Status",
            "The report of the (selected) probes, with the code status answers for it.",
        ),
        Op::StatusProbe => (
            "axumWatchStatusProbe",
            "One probe's status",
            "That probe's result, with the code status answers for its own status.",
        ),
        Op::StatusStream => (
            "axumWatchStatusStream",
            "Status as server-sent events",
            "The report now and after every poll.",
        ),
        Op::Startup => (
            "axumWatchStartup",
            "Startup",
            "`starting` until the application marks its startup complete, then the startup probes' verdict.",
        ),
        Op::Probes => (
            "axumWatchProbes",
            "Registered probes",
            "Every probe's configuration as the registry resolved it; runs no probe.",
        ),
        Op::History => (
            "axumWatchHistory",
            "History",
            "Each probe's recent results, oldest first.",
        ),
        Op::Alerts => (
            "axumWatchAlerts",
            "Alerts",
            "Every recorded status change, oldest first.",
        ),
        Op::Deliveries => (
            "axumWatchAlertDeliveries",
            "Alert deliveries",
            "Each alerter's delivery counts and undelivered alerts.",
        ),
        Op::Metrics => (
            "axumWatchMetrics",
            "Metrics",
            "The report and the process's figures as Prometheus or OpenMetrics text.",
        ),
        Op::MaintenanceStatus => (
            "axumWatchMaintenance",
            "Maintenance",
            "Whether maintenance mode is on, and until when.",
        ),
        Op::MaintenanceStart => (
            "axumWatchMaintenanceStart",
            "Start maintenance",
            "Readiness answers 200 `maintenance` and alerts are held back until it ends.",
        ),
        Op::MaintenanceEnd => (
            "axumWatchMaintenanceEnd",
            "End maintenance",
            "Ends maintenance mode now.",
        ),
        Op::Dashboard => (
            "axumWatchDashboard",
            "Dashboard",
            "The live HTML dashboard, reading the status stream and the history.",
        ),
    }
}

fn schema(value: Value) -> Option<RefOr<Schema>> {
    serde_json::from_value(value)
        .map_err(|e| tracing::error!(error = %e, "a parameter schema of the OpenAPI document does not parse"))
        .ok()
}

fn query(name: &str, description: &str, schema_json: Value) -> Parameter {
    let mut parameter = Parameter::new(name);
    parameter.parameter_in = ParameterIn::Query;
    // `Parameter::new` makes a parameter required.
    parameter.required = Required::False;
    parameter.description = Some(description.to_owned());
    parameter.schema = schema(schema_json);
    parameter
}

/// A list filter: repeatable, and each value may hold several names.
fn list(name: &str, description: &str) -> Parameter {
    let mut parameter = query(
        name,
        &format!("{description}. Repeatable, and comma-separated lists are taken too; at most 50 are read."),
        json!({ "type": "array", "items": { "type": "string" } }),
    );
    parameter.style = Some(ParameterStyle::Form);
    parameter.explode = Some(true);
    parameter
}

fn verbose() -> Parameter {
    query(
        "verbose",
        "Present (with any value or none): answer the Kubernetes API server's plain-text lines instead of JSON",
        json!({ "type": "string" }),
    )
}

fn request_body(op: Op) -> Option<RequestBody> {
    (op == Op::MaintenanceStart).then(|| {
        RequestBody::builder()
            .description(Some("Optional: no body, or `{}`, starts maintenance with no end"))
            .required(Some(Required::False))
            .content(
                "application/json",
                Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(format!(
                    "{}MaintenanceRequest",
                    schemas::PREFIX
                ))))),
            )
            .build()
    })
}

/// `answers` grouped by code, each code's bodies by media type (`oneOf`
/// where there are several); without bodies for `HEAD`.
fn responses(answers: &[Answer], head: bool) -> Responses {
    let mut by_code: BTreeMap<u16, Vec<&Answer>> = BTreeMap::new();
    for answer in answers {
        by_code.entry(answer.code.as_u16()).or_default().push(answer);
    }
    let mut responses = Responses::new();
    for (code, answers) in by_code {
        let mut whens: Vec<&str> = Vec::new();
        for answer in &answers {
            if !whens.contains(&answer.when.as_str()) {
                whens.push(&answer.when);
            }
        }
        let mut response = Response::new(format!("{}: {}", reason(code), whens.join("; ")));
        if code == 401
            && let Some(string) = schema(json!({ "type": "string" }))
        {
            let mut header = Header::new(string);
            header.description = Some("`Basic realm=\"health\"`".to_owned());
            response.headers.insert("WWW-Authenticate".to_owned(), RefOr::T(header));
        }
        if !head {
            let mut media: Vec<(Media, Vec<&'static str>)> = Vec::new();
            for answer in &answers {
                let slot = match media.iter().position(|(m, _)| m.essence() == answer.media.essence()) {
                    Some(at) => at,
                    None => {
                        media.push((answer.media, Vec::new()));
                        media.len() - 1
                    }
                };
                if let Some(name) = answer.schema
                    && !media[slot].1.contains(&name)
                {
                    media[slot].1.push(name);
                }
            }
            for (kind, names) in media {
                let body = match names.as_slice() {
                    [] => json!({ "type": "string" }),
                    [one] => schemas::reference(one),
                    many => json!({ "oneOf": many.iter().map(|n| schemas::reference(n)).collect::<Vec<_>>() }),
                };
                response
                    .content
                    .insert(kind.essence().to_owned(), RefOr::T(Content::new(schema(body))));
            }
        }
        responses.responses.insert(code.to_string(), RefOr::T(response));
    }
    responses
}

fn reason(code: u16) -> String {
    StatusCode::from_u16(code)
        .ok()
        .and_then(|c| c.canonical_reason())
        .map_or_else(|| code.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use utoipa::openapi::{RefOr, Schema};

    use super::schemas;

    #[test]
    fn every_schema_survives_utoipas_types_unchanged() {
        for (name, json) in schemas::components() {
            let parsed: RefOr<Schema> = serde_json::from_value(json.clone()).unwrap();
            let back: Value = serde_json::to_value(&parsed).unwrap();
            assert_eq!(back, json, "{name} loses something in utoipa's types");
        }
    }
}
