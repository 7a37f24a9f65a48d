//! The bodies of the health endpoints as JSON Schema (OpenAPI 3.1 is
//! JSON Schema 2020-12), one component each.
//!
//! Written out as JSON rather than built up with utoipa's builders: this is
//! the shape readers compare with the README and with real answers. The
//! tests round-trip it through utoipa's types (nothing may be lost) and
//! validate every answer of every endpoint against it, in every state.
//!
//! Every name starts with [`PREFIX`] so that merging the document into an
//! application's own never meets one of the application's schemas (a merge
//! keeps the first of two schemas with one name).

use serde_json::{Value, json};

/// What every component name of the document starts with.
pub(super) const PREFIX: &str = "AxumWatch";

/// A `$ref` to the component `name` (given without [`PREFIX`]).
pub(super) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{PREFIX}{name}") })
}

/// Every component, by its name without [`PREFIX`].
pub(super) fn components() -> Vec<(&'static str, Value)> {
    let r = reference;
    let timestamp = json!({
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 with microseconds, in the registry's zone (`Z` for UTC, the numeric offset otherwise)"
    });
    let nullable_timestamp = json!({
        "type": ["string", "null"],
        "format": "date-time",
        "description": "RFC 3339 with microseconds, in the registry's zone; `null` when there is none"
    });
    let names = json!({ "type": "array", "items": { "type": "string" } });
    let lifecycle = json!({
        "type": "string",
        "enum": ["draining", "stopped"],
        "description": "Present on an answer of `ready`, `status` or a probe's own path while the service shuts down"
    });
    let count = json!({ "type": "integer", "minimum": 0 });
    let nullable_millis = json!({ "type": ["integer", "null"], "minimum": 0 });
    vec![
        (
            "Status",
            json!({
                "type": "string",
                "enum": ["healthy", "degraded", "unhealthy"],
                "description": "A probe's status, or the overall status from the critical probes (the worst wins)"
            }),
        ),
        (
            "ProbeResult",
            json!({
                "type": "object",
                "description": "One probe's latest result",
                "required": ["name", "status", "critical", "latency_ms", "error", "description", "tags", "details"],
                "properties": {
                    "name": { "type": "string" },
                    "status": r("Status"),
                    "critical": { "type": "boolean", "description": "Whether it counts towards the overall status" },
                    "latency_ms": { "type": "number", "minimum": 0 },
                    "error": { "type": ["string", "null"], "description": "What went wrong, credentials redacted" },
                    "description": { "type": ["string", "null"] },
                    "tags": names,
                    "details": {
                        "type": ["object", "null"],
                        "description": "The probe's own details; `circuit_breaker` and `threshold` are the registry's",
                        "additionalProperties": true
                    },
                    "checked_at": timestamp,
                    "replica": { "type": "string", "description": "The replica that produced it, with a shared storage" },
                    "lifecycle": lifecycle
                }
            }),
        ),
        (
            "HealthReport",
            json!({
                "type": "object",
                "description": "Every (selected) probe's result and the overall status",
                "required": ["status", "checked_at", "timezone", "probes", "failing"],
                "properties": {
                    "status": r("Status"),
                    "checked_at": nullable_timestamp,
                    "timezone": { "type": ["string", "null"], "description": "The IANA zone of the timestamps" },
                    "probes": { "type": "array", "items": r("ProbeResult") },
                    "failing": {
                        "type": "array",
                        "items": { "type": "string" },
                        "description": "The critical probes that are unhealthy"
                    },
                    "lifecycle": lifecycle
                }
            }),
        ),
        (
            "StatusOnly",
            json!({
                "type": "object",
                "description": "The status alone: what an open endpoint tells a caller without credentials",
                "required": ["status"],
                "properties": { "status": r("Status") },
                "additionalProperties": false
            }),
        ),
        (
            "State",
            json!({
                "type": "object",
                "description": "A fixed answer: `ok` (live), `started` and `starting` (startup), or the gate deciding readiness (`starting` in the grace period, `maintenance`, `draining`)",
                "required": ["status"],
                "properties": {
                    "status": { "type": "string", "enum": ["ok", "started", "starting", "maintenance", "draining"] }
                },
                "additionalProperties": false
            }),
        ),
        (
            "Unknown",
            json!({
                "type": "object",
                "description": "A probe name or tag that no probe has (names given to `?exclude=` are not checked)",
                "required": ["error", "unknown_probes", "unknown_tags", "detail"],
                "properties": {
                    "error": { "type": "string", "enum": ["unknown probe", "unknown tag", "unknown probe and tag"] },
                    "unknown_probes": names,
                    "unknown_tags": names,
                    "detail": { "type": "string" }
                }
            }),
        ),
        (
            "Error",
            json!({
                "type": "object",
                "description": "A refusal, and why",
                "required": ["detail"],
                "properties": {
                    "detail": { "type": "string" },
                    "field": {
                        "type": "string",
                        "enum": ["minutes", "until"],
                        "description": "The field of the request body at fault"
                    }
                }
            }),
        ),
        (
            "Fleet",
            json!({
                "type": "object",
                "description": "Every replica sharing the storage, with its latest report",
                "required": ["scope", "status", "checked_at", "timezone", "replica", "store", "replicas"],
                "properties": {
                    "scope": { "type": "string", "enum": ["fleet"] },
                    "status": r("Status"),
                    "checked_at": timestamp,
                    "timezone": { "type": "string" },
                    "replica": { "type": "string", "description": "This replica" },
                    "store": {
                        "type": "string",
                        "enum": ["ok", "unreachable"],
                        "description": "`unreachable`: the answer holds this replica alone"
                    },
                    "replicas": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["replica", "self", "stale", "status", "reported_at", "probes"],
                            "properties": {
                                "replica": { "type": "string" },
                                "self": { "type": "boolean" },
                                "stale": { "type": "boolean", "description": "Too old to count towards the status" },
                                "status": r("Status"),
                                "reported_at": nullable_timestamp,
                                "probes": { "type": "array", "items": r("ProbeResult") }
                            }
                        }
                    }
                }
            }),
        ),
        (
            "HealthCheck",
            json!({
                "type": "object",
                "description": "`application/health+json` (draft-inadarei-api-health-check)",
                "required": ["status"],
                "properties": {
                    "status": { "type": "string", "enum": ["pass", "warn", "fail"] },
                    "version": { "type": "string" },
                    "releaseId": { "type": "string" },
                    "notes": { "type": "array", "items": { "type": "string" } },
                    "output": { "type": "string" },
                    "serviceId": { "type": "string" },
                    "description": { "type": "string" },
                    "checks": {
                        "type": "object",
                        "description": "`<probe>:responseTime`: each probe's latency, status and error",
                        "additionalProperties": { "type": "array", "items": r("HealthCheckEntry") }
                    }
                }
            }),
        ),
        (
            "HealthCheckEntry",
            json!({
                "type": "object",
                "required": ["componentId", "componentType", "observedValue", "observedUnit", "status"],
                "properties": {
                    "componentId": { "type": "string" },
                    "componentType": { "type": "string" },
                    "observedValue": { "type": "number" },
                    "observedUnit": { "type": "string", "enum": ["ms"] },
                    "status": { "type": "string", "enum": ["pass", "warn", "fail"] },
                    "time": timestamp,
                    "output": { "type": "string" }
                }
            }),
        ),
        (
            "ProbeInfo",
            json!({
                "type": "object",
                "description": "A registered probe's configuration as the registry resolved it (durations in milliseconds)",
                "required": [
                    "name", "kind", "critical", "description", "tags", "timeout_ms", "poll_interval_ms",
                    "circuit_breaker", "failure_threshold", "success_threshold"
                ],
                "properties": {
                    "name": { "type": "string" },
                    "kind": { "type": "string", "enum": ["active", "passive"] },
                    "critical": { "type": "boolean" },
                    "description": { "type": ["string", "null"] },
                    "tags": names,
                    "timeout_ms": nullable_millis,
                    "poll_interval_ms": nullable_millis,
                    "circuit_breaker": {
                        "type": "object",
                        "required": ["enabled", "threshold", "cooldown_ms"],
                        "properties": {
                            "enabled": { "type": "boolean" },
                            "threshold": { "type": ["integer", "null"], "minimum": 0 },
                            "cooldown_ms": nullable_millis
                        }
                    },
                    "failure_threshold": count,
                    "success_threshold": count
                }
            }),
        ),
        (
            "Probes",
            json!({
                "type": "object",
                "required": ["probes", "startup_probes"],
                "properties": {
                    "probes": { "type": "array", "items": r("ProbeInfo") },
                    "startup_probes": { "type": "array", "items": r("ProbeInfo") }
                }
            }),
        ),
        (
            "History",
            json!({
                "type": "object",
                "required": ["probes"],
                "properties": {
                    "probes": {
                        "type": "object",
                        "description": "Each probe's recent results, oldest first",
                        "additionalProperties": { "type": "array", "items": r("ProbeResult") }
                    }
                }
            }),
        ),
        (
            "Alert",
            json!({
                "type": "object",
                "description": "A recorded change of one probe's status",
                "required": ["probe", "old_status", "new_status", "timestamp", "critical"],
                "properties": {
                    "probe": { "type": "string" },
                    "old_status": r("Status"),
                    "new_status": r("Status"),
                    "timestamp": timestamp,
                    "replica": { "type": "string" },
                    "id": { "type": "string" },
                    "service": { "type": "string" },
                    "critical": { "type": "boolean" },
                    "tags": names,
                    "error": { "type": "string" },
                    "since": timestamp,
                    "duration_ms": count,
                    "dashboard_url": { "type": "string" }
                }
            }),
        ),
        (
            "Alerts",
            json!({
                "type": "object",
                "required": ["alerts"],
                "properties": { "alerts": { "type": "array", "items": r("Alert") } }
            }),
        ),
        (
            "Deliveries",
            json!({
                "type": "object",
                "required": ["alerters"],
                "properties": {
                    "alerters": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": [
                                "alerter", "sent", "redelivered", "failed", "rejected", "dropped", "waiting",
                                "undelivered"
                            ],
                            "properties": {
                                "alerter": { "type": "string" },
                                "sent": count,
                                "redelivered": count,
                                "failed": count,
                                "rejected": count,
                                "dropped": count,
                                "waiting": count,
                                "undelivered": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": [
                                            "id", "probe", "old_status", "new_status", "timestamp", "state",
                                            "attempts", "error"
                                        ],
                                        "properties": {
                                            "id": { "type": "string" },
                                            "probe": { "type": "string" },
                                            "old_status": r("Status"),
                                            "new_status": r("Status"),
                                            "timestamp": timestamp,
                                            "state": { "type": "string", "enum": ["waiting", "rejected", "dropped"] },
                                            "attempts": count,
                                            "error": { "type": "string" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }),
        ),
        (
            "Maintenance",
            json!({
                "type": "object",
                "required": ["active", "until"],
                "properties": {
                    "active": { "type": "boolean" },
                    "until": nullable_timestamp
                }
            }),
        ),
        (
            "MaintenanceRequest",
            json!({
                "type": "object",
                "description": "How long maintenance lasts: `minutes` or `until`, not both; neither (or no body) for no end",
                "properties": {
                    "minutes": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 525_600,
                        "description": "From now; at least one second's worth, at most a year"
                    },
                    "until": {
                        "type": "string",
                        "format": "date-time",
                        "description": "RFC 3339 with an offset (`Z` or `±HH:MM`), in the future, at most a year ahead"
                    }
                },
                "maxProperties": 1,
                "additionalProperties": false
            }),
        ),
    ]
}
