//! `Watch`: the current serving status at once, then one message per change.
//!
//! Each watcher holds a receiver of the engine's published reports (the
//! same `watch` channel the server-sent event streams read) and a
//! subscription that keeps the poll loop running, so any number of watchers
//! cost one probe run per interval. A status is recomputed when a report is
//! published, when the lifecycle moves, when maintenance is set or cleared
//! and when the grace period or a maintenance window ends by itself; it is
//! sent only when it differs from the last one sent.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use futures_util::future::BoxFuture;
use tokio::sync::watch;

use super::pb::{HealthCheckRequest, HealthCheckResponse, ServingStatus};
use super::{Target, gated, resolve, serving};
use crate::engine::{Owner, Phase, Phases, Snapshot, Subscription};

type Answers = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, tonic::Status>> + Send>>;

pub(super) struct WatchCall(pub(super) Arc<Owner>);

impl tonic::server::ServerStreamingService<HealthCheckRequest> for WatchCall {
    type Response = HealthCheckResponse;
    type ResponseStream = Answers;
    type Future = BoxFuture<'static, Result<tonic::Response<Answers>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<HealthCheckRequest>) -> Self::Future {
        let engine = Arc::clone(&self.0);
        Box::pin(async move {
            let watcher = Watcher::open(engine, request.into_inner().service).await;
            let answers: Answers = Box::pin(futures_util::stream::unfold(watcher, Watcher::next));
            Ok(tonic::Response::new(answers))
        })
    }
}

struct Watcher {
    engine: Arc<Owner>,
    service: String,
    /// `None` for a name nothing answers to.
    target: Option<Target>,
    reports: watch::Receiver<Option<Arc<Snapshot>>>,
    phases: Phases,
    maintenance: watch::Receiver<()>,
    latest: Option<Arc<Snapshot>>,
    sent: Option<ServingStatus>,
    _subscription: Option<Subscription>,
}

impl Watcher {
    async fn open(engine: Arc<Owner>, service: String) -> Self {
        let target = resolve(&engine, &service);
        // Listen before reading the first report, so that nothing published
        // in between is missed; subscribe after it, so that a watcher that
        // starts the poll loop gets a fresh run and then one per interval.
        let reports = engine.updates();
        let phases = engine.phases();
        let maintenance = engine.maintenance_changes();
        let (latest, subscription) = match target {
            Some(_) => (Some(engine.first_report().await), Some(engine.subscribe())),
            None => (None, None),
        };
        Self {
            engine,
            service,
            target,
            reports,
            phases,
            maintenance,
            latest,
            sent: None,
            _subscription: subscription,
        }
    }

    fn current(&self) -> ServingStatus {
        let Some(target) = self.target else {
            return ServingStatus::ServiceUnknown;
        };
        if let Some(gate) = self.engine.readiness_gate() {
            return gated(gate);
        }
        self.latest
            .as_ref()
            .map_or(ServingStatus::Unknown, |s| serving(&s.report, target, &self.service))
    }

    /// The next message: the status when it changed; `None` (the call ends
    /// with OK) once the service has stopped.
    async fn next(mut self) -> Option<(Result<HealthCheckResponse, tonic::Status>, Self)> {
        loop {
            if *self.phases.borrow_and_update() == Phase::Stopped {
                return None;
            }
            let now = self.current();
            if self.sent != Some(now) {
                self.sent = Some(now);
                return Some((Ok(HealthCheckResponse::of(now)), self));
            }
            let deadline = self.engine.gate_deadline();
            let until_deadline = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.phases.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                changed = self.reports.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    if let Some(snapshot) = self.reports.borrow_and_update().clone() {
                        self.latest = Some(snapshot);
                    }
                }
                changed = self.maintenance.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = until_deadline => {}
            }
        }
    }
}
