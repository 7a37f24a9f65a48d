//! `GET probes`: every registered probe's configuration as the registry
//! resolved it (kind, criticality, tags, description, timeout, poll
//! interval, circuit breaker, thresholds), without running any probe.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Serialize;

use super::{Face, json};
use crate::model::ProbeInfo;

pub(super) async fn list(State(face): State<Face>) -> Response {
    #[derive(Serialize)]
    struct Body {
        probes: Vec<ProbeInfo>,
        startup_probes: Vec<ProbeInfo>,
    }
    let (probes, startup_probes) = face.engine.probe_infos();
    json(StatusCode::OK, &Body { probes, startup_probes })
}
