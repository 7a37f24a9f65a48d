//! [`WebSocketProbe`]: connections and messages of an axum WebSocket handler.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{FutureExt, Sink, Stream};
use serde_json::{Map, Value};

use super::Core;
use super::stats::{Labels, NO_TRAFFIC, StatsConfig, TRAFFIC, ms, start};
use crate::model::round;
use crate::probe::{Outcome, panic_message};

/// Watches the connections of an axum WebSocket handler: how many are open,
/// how long they last, the messages they carry and how many end in an error.
///
/// Hand the upgrade to [`on_upgrade`](Self::on_upgrade) (or the socket to
/// [`watch`](Self::watch)): your handler gets a [`WatchedSocket`], which works
/// like axum's `WebSocket` and counts the messages it receives and sends. A
/// connection is an error when the handler returns `Err` or panics (the panic
/// is resumed); a handler that returns `()` or `Ok` — including after the
/// client closed or vanished — ends a connection normally.
///
/// Unhealthy when the recent error rate exceeds `max_error_rate` (once
/// `min_calls` connections ended) or fewer than
/// [`min_active_connections`](Self::min_active_connections) are open.
///
/// ```
/// use axum::{Router, extract::{State, ws::{Message, WebSocketUpgrade}}, response::Response, routing::get};
/// use axum_watch::passive::WebSocketProbe;
///
/// async fn echo(State(probe): State<WebSocketProbe>, upgrade: WebSocketUpgrade) -> Response {
///     probe.on_upgrade(upgrade, |mut socket| async move {
///         while let Some(Ok(message)) = socket.recv().await {
///             if let Message::Text(text) = message {
///                 socket.send(Message::Text(text)).await?;
///             }
///         }
///         Ok::<_, axum::Error>(())
///     })
/// }
///
/// let chat = WebSocketProbe::new("chat");
/// let app: Router = Router::new().route("/ws", get(echo)).with_state(chat.clone());
/// # let _ = app;
/// ```
#[derive(Clone)]
pub struct WebSocketProbe {
    inner: Arc<SocketState>,
}

struct SocketState {
    core: Core,
    min_active: u64,
    active: AtomicU64,
    total: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
}

impl fmt::Debug for WebSocketProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner
            .core
            .debug(f, "WebSocketProbe")
            .field("active", &self.inner.active.load(Relaxed))
            .field("total", &self.inner.total.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl WebSocketProbe {
    /// A probe named `name` with the default [`StatsConfig`] (its window and
    /// thresholds count connections).
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self::build(name.into(), StatsConfig::default(), 0)
    }

    fn build(name: String, config: StatsConfig, min_active: u64) -> Self {
        Self {
            inner: Arc::new(SocketState {
                core: Core::new(name, None, config),
                min_active,
                active: AtomicU64::new(0),
                total: AtomicU64::new(0),
                received: AtomicU64::new(0),
                sent: AtomicU64::new(0),
            }),
        }
    }

    /// Other statistics options (before the probe is shared: it starts fresh).
    #[must_use]
    pub fn with_config(self, config: StatsConfig) -> Self {
        Self::build(self.inner.core.name.clone(), config, self.inner.min_active)
    }

    /// Unhealthy while fewer than `connections` sockets are open (default 0:
    /// off). Set before the probe is shared.
    #[must_use]
    pub fn min_active_connections(self, connections: u64) -> Self {
        Self::build(
            self.inner.core.name.clone(),
            *self.inner.core.stats.config(),
            connections,
        )
    }

    /// Completes the upgrade and runs `handler` on the watched socket.
    pub fn on_upgrade<H, Fut>(&self, upgrade: WebSocketUpgrade, handler: H) -> Response
    where
        H: FnOnce(WatchedSocket) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ConnectionOutcome,
    {
        let probe = self.clone();
        upgrade.on_upgrade(move |socket| async move { probe.watch(socket, handler).await })
    }

    /// Runs `handler` on `socket`, counting the connection, its messages, its
    /// duration and how it ended.
    pub async fn watch<H, Fut>(&self, socket: WebSocket, handler: H)
    where
        H: FnOnce(WatchedSocket) -> Fut,
        Fut: Future,
        Fut::Output: ConnectionOutcome,
    {
        let inner = &self.inner;
        inner.total.fetch_add(1, Relaxed);
        inner.active.fetch_add(1, Relaxed);
        let _open = Open(inner);
        let started = start();
        let watched = WatchedSocket {
            socket,
            probe: Arc::clone(inner),
        };
        let ended = AssertUnwindSafe(handler(watched)).catch_unwind().await;
        let (error, text) = match &ended {
            Ok(outcome) => match outcome.error() {
                Some(text) => (true, Some(text)),
                None => (false, None),
            },
            Err(panic) => (true, Some(format!("panic: {}", panic_message(panic.as_ref())))),
        };
        inner.core.stats.finish(started, error, None);
        if let Some(text) = text {
            inner.core.stats.note_error(None, text);
        }
        if let Err(panic) = ended {
            resume_unwind(panic);
        }
    }
}

/// Decrements the open-connection gauge however the handler ends.
struct Open<'a>(&'a SocketState);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// How a WebSocket handler's return value says the connection ended.
pub trait ConnectionOutcome {
    /// The error text when the connection ended in an error.
    fn error(&self) -> Option<String>;
}

impl ConnectionOutcome for () {
    fn error(&self) -> Option<String> {
        None
    }
}

impl<E: fmt::Display> ConnectionOutcome for Result<(), E> {
    fn error(&self) -> Option<String> {
        self.as_ref().err().map(|e| {
            let kind = crate::probe::short_type_name(std::any::type_name::<E>());
            format!("{kind}: {e}")
        })
    }
}

/// A connection is a call: it ends when the socket closes.
const CONNECTIONS: Labels = Labels {
    count: "total_connections",
    idle: "no connections observed yet",
    noun: "connections",
    http: false,
};

impl WebSocketProbe {
    fn core(&self) -> &Core {
        &self.inner.core
    }

    fn outcome(&self) -> Outcome {
        let inner = &self.inner;
        let active = inner.active.load(Relaxed);
        let total = inner.total.load(Relaxed);
        if total == 0 {
            return Outcome::healthy()
                .detail("message", CONNECTIONS.idle)
                .detail(TRAFFIC, NO_TRAFFIC)
                .latency(std::time::Duration::ZERO);
        }
        let stats = &inner.core.stats;
        let s = stats.snapshot();
        let mut reasons = s.failures(stats.config());
        if inner.min_active > 0 && active < inner.min_active {
            reasons.push(format!(
                "{active} active connections, fewer than the minimum {}",
                inner.min_active
            ));
        }
        // An open connection is traffic; with none open and none ended in
        // the span, there is nothing recent to judge.
        let mut d = if active == 0 && s.no_recent_traffic() && reasons.is_empty() {
            s.idle_details(stats.config(), CONNECTIONS)
        } else {
            Map::new()
        };
        d.insert("active_connections".into(), active.into());
        d.insert("total_connections".into(), total.into());
        d.insert("messages_received".into(), inner.received.load(Relaxed).into());
        d.insert("messages_sent".into(), inner.sent.load(Relaxed).into());
        d.insert("error_count".into(), s.errors.into());
        d.insert("error_rate".into(), round(s.error_rate(), 4).into());
        d.insert("window_error_rate".into(), round(s.window_error_rate(), 4).into());
        d.insert("consecutive_errors".into(), s.consecutive.into());
        d.insert("avg_duration_ms".into(), s.ema_ms.map_or(Value::Null, ms));
        d.insert("min_duration_ms".into(), s.min_ms.map_or(Value::Null, ms));
        d.insert(
            "max_duration_ms".into(),
            if s.calls == 0 { Value::Null } else { ms(s.max_ms) },
        );
        if let Some(error) = &s.last_error {
            d.insert("last_error".into(), error.clone().into());
        }
        let outcome = if reasons.is_empty() {
            Outcome::healthy()
        } else {
            Outcome::unhealthy(reasons.join("; "))
        };
        let latency = std::time::Duration::from_secs_f64(s.ema_ms.unwrap_or(0.0).max(0.0) / 1000.0);
        outcome.details_from(d).latency(latency)
    }
}

passive_probe!(WebSocketProbe);

/// An axum [`WebSocket`] that counts the data messages (text and binary) it
/// receives and sends. It is a `Stream` and a `Sink` like the socket it
/// wraps, so it can be split.
pub struct WatchedSocket {
    socket: WebSocket,
    probe: Arc<SocketState>,
}

impl fmt::Debug for WatchedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedSocket")
            .field("probe", &self.probe.core.name)
            .finish()
    }
}

fn is_data(message: &Message) -> bool {
    matches!(message, Message::Text(_) | Message::Binary(_))
}

impl WatchedSocket {
    /// Receives the next message; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        let next = self.socket.recv().await;
        if let Some(Ok(message)) = &next
            && is_data(message)
        {
            self.probe.received.fetch_add(1, Relaxed);
        }
        next
    }

    /// Sends a message.
    ///
    /// # Errors
    ///
    /// When the connection is closed or broken.
    pub async fn send(&mut self, message: Message) -> Result<(), axum::Error> {
        let data = is_data(&message);
        self.socket.send(message).await?;
        if data {
            self.probe.sent.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// The socket itself, for what the wrapper does not offer (messages sent
    /// or received through it are not counted).
    pub fn get_mut(&mut self) -> &mut WebSocket {
        &mut self.socket
    }
}

impl Stream for WatchedSocket {
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = ready!(Pin::new(&mut self.socket).poll_next(cx));
        if let Some(Ok(message)) = &next
            && is_data(message)
        {
            self.probe.received.fetch_add(1, Relaxed);
        }
        Poll::Ready(next)
    }
}

impl Sink<Message> for WatchedSocket {
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
        let data = is_data(&message);
        Pin::new(&mut self.socket).start_send(message)?;
        if data {
            self.probe.sent.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.socket).poll_close(cx)
    }
}
