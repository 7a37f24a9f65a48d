//! `GET status?scope=fleet`: the latest report of every replica sharing the
//! storage, this one's from its own state and the others' from the store.
//!
//! A replica whose last result is older than the store's staleness limit is
//! listed with `"stale": true` and does not count towards the fleet's
//! status, the worst of the other replicas'. When the store cannot be read
//! the answer holds this replica alone, with `"store": "unreachable"`.

use axum::response::Response;
use http::StatusCode;
use serde::Serialize;

use super::{Endpoint, Face, error, filtered, json, query, status_only, unknown};
use crate::model::{ProbeResult, Status, Timestamp};

#[derive(Serialize)]
struct Fleet<'a> {
    scope: &'static str,
    status: Status,
    checked_at: Timestamp,
    timezone: &'a str,
    replica: &'a str,
    store: &'static str,
    replicas: Vec<Replica>,
}

#[derive(Serialize)]
struct Replica {
    replica: String,
    #[serde(rename = "self")]
    this: bool,
    stale: bool,
    status: Status,
    reported_at: Option<Timestamp>,
    probes: Vec<ProbeResult>,
}

/// `status?scope=…`: this replica's report (`replica`, or empty), or the
/// fleet's, always as JSON.
pub(super) async fn status(face: &Face, scope: &str, query: Option<&str>, reduced: bool, health: bool) -> Response {
    match scope {
        "fleet" => {}
        "" | "replica" => return super::report_response(face, query, Endpoint::Status, reduced, health).await,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown scope {other:?}: use \"fleet\" or \"replica\""),
            );
        }
    }
    let engine = &face.engine;
    let Some(me) = engine.replica() else {
        return error(
            StatusCode::NOT_FOUND,
            "the fleet view needs a storage shared by the replicas (RedisStorage or PostgresStorage)",
        );
    };
    let filter = query::Filter::parse(query);
    if let Some(refusal) = unknown(engine, &filter) {
        return refusal;
    }
    let keep = |p: &ProbeResult| filter.keeps(p);

    let snapshot = engine.report().await;
    let own = if filter.is_empty() {
        (*snapshot.report).clone()
    } else {
        filtered(&snapshot, &filter)
    };
    let (zone, zone_name) = engine.zone();
    let mut replicas = vec![Replica {
        replica: me.to_owned(),
        this: true,
        stale: false,
        status: own.status,
        reported_at: own.checked_at,
        probes: own.probes,
    }];
    let store = match engine.fleet().await {
        Ok(fleet) => {
            for other in fleet.into_iter().filter(|r| r.replica != me) {
                let probes: Vec<ProbeResult> = other
                    .probes
                    .into_iter()
                    .filter(|p| keep(p))
                    .map(|mut p| {
                        p.replica = None;
                        p
                    })
                    .collect();
                replicas.push(Replica {
                    replica: other.replica,
                    this: false,
                    stale: other.stale,
                    status: Status::overall(&probes),
                    reported_at: Some(Timestamp::at(other.reported_at, zone)),
                    probes,
                });
            }
            "ok"
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the fleet; answering with this replica alone");
            "unreachable"
        }
    };
    replicas.sort_by(|a, b| a.replica.cmp(&b.replica));
    let status = replicas
        .iter()
        .filter(|r| !r.stale)
        .map(|r| r.status)
        .max()
        .unwrap_or(Status::Healthy);
    let body = Fleet {
        scope: "fleet",
        status,
        checked_at: Timestamp::now_in(zone),
        timezone: zone_name,
        replica: me,
        store,
        replicas,
    };
    let code = face.config.codes.of(Endpoint::Status, status);
    if reduced {
        return status_only(code, status.as_str());
    }
    json(code, &body)
}
