//! A registry in each state of the service's life, and callers with and
//! without credentials: the matrix the standards tests walk.
//!
//! The probes: `db` (critical, tags `storage`), `cache` (non-critical,
//! tags `storage`, `fast`, always healthy) and `api` (critical, tag `edge`,
//! always healthy). The state sets `db`, or the lifecycle.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum_watch::model::Lifecycle;
use axum_watch::options::OpenEndpoint;
use axum_watch::{HealthRegistry, HealthRegistryBuilder, ProbeExt, Status};
use base64::Engine;
use http::{HeaderValue, Request};

use super::{Reply, Switch, call};

/// Where the service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Healthy,
    Degraded,
    Unhealthy,
    Maintenance,
    Grace,
    Draining,
}

pub const STATES: [State; 6] = [
    State::Healthy,
    State::Degraded,
    State::Unhealthy,
    State::Maintenance,
    State::Grace,
    State::Draining,
];

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No authentication configured.
    Anyone,
    /// Basic authentication configured; the caller presents it.
    Authenticated,
    /// Basic authentication configured with `live`, `ready` and `status`
    /// open; the caller presents nothing.
    Stranger,
}

pub const CALLERS: [Caller; 3] = [Caller::Anyone, Caller::Authenticated, Caller::Stranger];

impl State {
    /// The status `db` reports in this state.
    pub fn db(self) -> Status {
        match self {
            Self::Degraded => Status::Degraded,
            Self::Unhealthy => Status::Unhealthy,
            _ => Status::Healthy,
        }
    }

    /// Whether a gate answers `ready` before any probe runs.
    pub fn gated(self) -> bool {
        matches!(self, Self::Maintenance | Self::Grace | Self::Draining)
    }
}

/// A registry in `state`, its router, and what the caller sends.
pub struct Setup {
    pub registry: HealthRegistry,
    pub app: Router,
    pub caller: Caller,
    pub db: Switch,
}

impl Setup {
    /// `GET uri` as the caller sends it.
    pub async fn get(&self, uri: &str) -> Reply {
        self.get_with(uri, &[]).await
    }

    /// `GET uri` with extra headers, as the caller sends it.
    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        let request = self.request(uri, headers);
        call(&self.app, request).await
    }

    /// The status and first chunk of a stream.
    pub async fn first_chunk(&self, uri: &str) -> Reply {
        use tower::ServiceExt;
        let response = self.app.clone().oneshot(self.request(uri, &[])).await.unwrap();
        Reply::first_chunk(response).await
    }

    fn request(&self, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut request = Request::builder().uri(uri);
        if self.caller == Caller::Authenticated {
            request = request.header("authorization", basic());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Body::empty()).unwrap()
    }
}

fn basic() -> HeaderValue {
    let token = base64::engine::general_purpose::STANDARD.encode("ops:s3cret");
    HeaderValue::from_str(&format!("Basic {token}")).unwrap()
}

/// The three probes and the caller's authentication, before the state.
pub fn builder(caller: Caller, db: &Switch) -> HealthRegistryBuilder {
    let builder = HealthRegistry::builder()
        .add(db.clone().with_tags(["storage"]))
        .add_non_critical(Switch::new("cache", Status::Healthy).with_tags(["storage", "fast"]))
        .add(Switch::new("api", Status::Healthy).with_tags(["edge"]))
        .circuit_breaker(false);
    match caller {
        Caller::Anyone => builder,
        Caller::Authenticated => builder.basic_auth("ops", "s3cret"),
        Caller::Stranger => builder.basic_auth("ops", "s3cret").open_endpoints([
            OpenEndpoint::Live,
            OpenEndpoint::Ready,
            OpenEndpoint::Status,
        ]),
    }
}

/// A registry in `state` for `caller`, with `customise` applied to the
/// builder. Real time: draining holds for an hour, the grace period too.
pub async fn setup_with(
    state: State,
    caller: Caller,
    customise: impl FnOnce(HealthRegistryBuilder) -> HealthRegistryBuilder,
) -> Setup {
    let db = Switch::new("db", state.db());
    let mut builder = customise(builder(caller, &db)).drain_delay(Duration::from_secs(3600));
    if state == State::Grace {
        builder = builder.grace_period(Duration::from_secs(3600));
    }
    let registry = builder.build().unwrap();
    match state {
        State::Maintenance => registry.set_maintenance(None),
        State::Draining => {
            let draining = registry.clone();
            tokio::spawn(async move { draining.drain().await });
            while registry.lifecycle() != Lifecycle::Draining {
                tokio::task::yield_now().await;
            }
        }
        _ => {}
    }
    let app = registry.router();
    Setup {
        registry,
        app,
        caller,
        db,
    }
}

pub async fn setup(state: State, caller: Caller) -> Setup {
    setup_with(state, caller, |b| b).await
}
