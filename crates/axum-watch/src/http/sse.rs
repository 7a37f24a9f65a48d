//! `status/stream` and `ready/stream`: server-sent events fed by the poll
//! loop through one shared `watch` channel.
//!
//! Each report is framed once (`data: <json>\n\n`) and the same bytes go to
//! every client; a slow client only skips to the newest report, it never
//! holds up the loop or the others. The first chunk carries a `retry:` hint
//! and the current report; an idle stream gets a `:` comment every 15 s.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::sync::watch;

use super::{Face, gate_body, query, report_json, unknown, with_lifecycle};
use crate::engine::{Encoding, Owner, Phase, Phases, Snapshot, Subscription};
use crate::model::Lifecycle;

/// How often an idle stream sends a comment so proxies keep it open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before reconnecting a dropped stream.
const RETRY: &[u8] = b"retry: 3000\n";

/// The slot of a snapshot's event.
const EVENT: Encoding = Encoding(1);

/// `body` as one event.
fn frame(body: &[u8]) -> Bytes {
    let mut event = BytesMut::with_capacity(body.len() + 8);
    event.put_slice(b"data: ");
    event.put_slice(body);
    event.put_slice(b"\n\n");
    event.freeze()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Status,
    Ready,
}

pub(super) async fn status_stream(State(face): State<Face>, RawQuery(query): RawQuery) -> Response {
    open(face.engine, query.as_deref(), Kind::Status).await
}

pub(super) async fn ready_stream(State(face): State<Face>, RawQuery(query): RawQuery) -> Response {
    open(face.engine, query.as_deref(), Kind::Ready).await
}

struct Client {
    engine: Arc<Owner>,
    kind: Kind,
    filter: query::Filter,
    reports: watch::Receiver<Option<Arc<Snapshot>>>,
    last: Option<Arc<Snapshot>>,
    first: Option<Bytes>,
    live: bool,
    /// Shutdown: draining sends one more event at once, stopping ends the stream.
    phases: Phases,
    _subscription: Subscription,
}

impl Client {
    /// The event for `snapshot` as this client's endpoint answers it.
    fn event(&self, snapshot: &Snapshot) -> Bytes {
        if self.kind == Kind::Ready
            && let Some(gate) = self.engine.readiness_gate()
        {
            return frame(gate_body(gate).1);
        }
        let lifecycle = self.engine.lifecycle();
        if self.filter.is_empty() {
            if matches!(lifecycle, Lifecycle::Serving | Lifecycle::Starting) {
                return snapshot.encoded(EVENT, |_| frame(&report_json(snapshot)));
            }
            return frame(&with_lifecycle(report_json(snapshot), lifecycle));
        }
        let report = super::filtered(snapshot, &self.filter);
        frame(&serde_json::to_vec(&report).unwrap_or_default())
    }

    /// The next chunk: the newest report, or a keep-alive comment.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        if let Some(first) = self.first.take() {
            return Some((Ok(first), self));
        }
        if !self.live || *self.phases.borrow() == Phase::Stopped {
            return None;
        }
        loop {
            tokio::select! {
                changed = self.phases.changed() => {
                    let phase = *self.phases.borrow_and_update();
                    if changed.is_err() || phase == Phase::Stopped {
                        return None;
                    }
                    if let Some(last) = self.last.clone() {
                        return Some((Ok(self.event(&last)), self));
                    }
                }
                changed = self.reports.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    let latest = self.reports.borrow_and_update().clone();
                    let Some(snapshot) = latest else { continue };
                    // A stream that stops sends nothing more, not even a
                    // report published at the moment it stopped.
                    if *self.phases.borrow() == Phase::Stopped {
                        return None;
                    }
                    if self.last.as_ref().is_some_and(|last| Arc::ptr_eq(last, &snapshot)) {
                        continue;
                    }
                    let event = self.event(&snapshot);
                    self.last = Some(snapshot);
                    return Some((Ok(event), self));
                }
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    return Some((Ok(Bytes::from_static(b":\n\n")), self));
                }
            }
        }
    }
}

async fn open(engine: Arc<Owner>, query: Option<&str>, kind: Kind) -> Response {
    let filter = query::Filter::parse(query);
    if let Some(refusal) = unknown(&engine, &filter) {
        return refusal;
    }
    // Listen before reading the first report so that no report published in
    // between is missed. The first report is at most the cache age old; the
    // subscription that keeps the poll loop alive is taken after it, so a
    // subscriber that starts the loop gets a fresh run and then one event
    // per interval.
    let reports = engine.updates();
    let phases = engine.phases();
    let snapshot = engine.first_report().await;
    let subscription = engine.subscribe();
    let mut client = Client {
        live: engine.polls(),
        phases,
        engine,
        kind,
        filter,
        reports,
        last: None,
        first: None,
        _subscription: subscription,
    };
    let mut first = BytesMut::from(RETRY);
    first.put_slice(&client.event(&snapshot));
    client.first = Some(first.freeze());
    client.last = Some(snapshot);

    let mut response = Response::new(Body::from_stream(stream::unfold(client, Client::next)));
    *response.status_mut() = StatusCode::OK;
    // Sized for the headers below: a map that grows on its first insert
    // reserves room for six, held for as long as the stream lives.
    let headers = response.headers_mut();
    *headers = HeaderMap::with_capacity(3);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::Client;

    /// The size of what `f` returns.
    fn returned<A, R>(_: &impl Fn(A) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn a_streams_own_state_stays_under_a_kibibyte() {
        // What one connected client holds in the library: its state and the
        // future waiting for its next event (boxed once as the body), which
        // embeds the state. Hyper's buffers and axum's per-connection state
        // come on top; see BENCHMARKS.md.
        let waiting = returned(&|client: Client| client.next());
        assert!(
            std::mem::size_of::<Client>() <= 256,
            "{}",
            std::mem::size_of::<Client>()
        );
        assert!(waiting <= 1024, "the next-event future takes {waiting} bytes");
    }
}
