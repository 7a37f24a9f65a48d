//! The tower service and response future shared by the passive layers
//! ([`RouteProbe`](super::RouteProbe) and [`RequestMetrics`](super::RequestMetrics)).

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use http::{Request, Response, StatusCode};
use tower_service::Service;

use super::stats::{Started, start};
use crate::probe::panic_message;

/// What a passive layer does with each request: `begin` sees the request,
/// `finish` records how it ended.
#[allow(
    unreachable_pub,
    reason = "sealed: it bounds public types but is not nameable outside the crate"
)]
pub trait Recorder: Clone {
    /// What a request carries from `begin` to `finish`.
    type Call;

    /// Called when the request enters the layer; it may mark the request
    /// for the layers inside (see `Claim`).
    fn begin<B>(&self, request: &mut Request<B>) -> Self::Call;

    /// Called with the response status (500 for an error or a panic) and
    /// the panic's message, if the handler panicked.
    fn finish(call: &Self::Call, started: Started, status: StatusCode, panic: Option<&str>);
}

/// The service a passive layer ([`RouteProbe`](super::RouteProbe),
/// [`RequestMetrics`](super::RequestMetrics)) wraps around a route or an app.
#[derive(Clone)]
pub struct PassiveService<S, R> {
    inner: S,
    recorder: R,
}

impl<S, R> PassiveService<S, R> {
    pub(crate) fn new(inner: S, recorder: R) -> Self {
        Self { inner, recorder }
    }
}

impl<S: fmt::Debug, R> fmt::Debug for PassiveService<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassiveService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, R, B, ResB> Service<Request<B>> for PassiveService<S, R>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    R: Recorder,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = PassiveFuture<S::Future, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        PassiveFuture {
            start: start(),
            call: self.recorder.begin(&mut request),
            inner: AssertUnwindSafe(self.inner.call(request)).catch_unwind(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`PassiveService`]: records the response's
    /// status, or a panic as a 500 (then resumes it). Dropped before it
    /// finishes, it records nothing.
    pub struct PassiveFuture<F, R: Recorder> {
        #[pin]
        inner: CatchUnwind<AssertUnwindSafe<F>>,
        start: Started,
        call: R::Call,
    }
}

impl<F, R: Recorder> fmt::Debug for PassiveFuture<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassiveFuture")
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

impl<F, R, ResB, E> Future for PassiveFuture<F, R>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    R: Recorder,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        let status = match &output {
            Ok(Ok(response)) => response.status(),
            Ok(Err(_)) | Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let panic = output.as_ref().err().map(|panic| panic_message(panic.as_ref()));
        R::finish(this.call, *this.start, status, panic);
        match output {
            Ok(result) => Poll::Ready(result),
            Err(panic) => resume_unwind(panic),
        }
    }
}

/// Who records a request among the route watchers it passes through, so
/// that nothing is counted twice: a hand-placed [`RouteProbe`](super::RouteProbe)
/// always, else the innermost [`RouteDiscovery`](super::RouteDiscovery) layer
/// (a router's own beats the application's).
///
/// A discovery layer puts a claim in the request's extensions on the way
/// in; a route probe inside it marks the claim hand-placed, and the
/// innermost discovery layer takes it as the response comes back out, so
/// the outer ones find it taken. A route probe outside every discovery
/// layer leaves a [`HandPlaced`] mark (no allocation) for them to see.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claim(std::sync::Arc<std::sync::atomic::AtomicU8>);

/// A request a hand-placed route probe records, seen on its way in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandPlaced;

const OPEN: u8 = 0;
const TAKEN: u8 = 1;
const HAND: u8 = 2;

impl Claim {
    /// Marks `request` as recorded by a hand-placed route probe.
    pub(crate) fn hand_placed<B>(request: &mut Request<B>) {
        match request.extensions().get::<Self>() {
            Some(claim) => claim.0.store(HAND, std::sync::atomic::Ordering::Release),
            None => {
                request.extensions_mut().insert(HandPlaced);
            }
        }
    }

    /// The claim a discovery layer holds for `request`: the one an outer
    /// layer placed, or a new one; `None` when a route probe outside
    /// records it.
    pub(crate) fn of<B>(request: &mut Request<B>) -> Option<Self> {
        if request.extensions().get::<HandPlaced>().is_some() {
            return None;
        }
        if let Some(claim) = request.extensions().get::<Self>() {
            return Some(claim.clone());
        }
        let claim = Self::default();
        request.extensions_mut().insert(claim.clone());
        Some(claim)
    }

    /// Takes the request for the calling discovery layer: `false` when a
    /// route probe or an inner layer has it.
    pub(crate) fn take(&self) -> bool {
        self.0
            .compare_exchange(
                OPEN,
                TAKEN,
                std::sync::atomic::Ordering::AcqRel,
                std::sync::atomic::Ordering::Acquire,
            )
            .is_ok()
    }
}
