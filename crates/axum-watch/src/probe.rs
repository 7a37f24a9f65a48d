//! The [`Probe`] trait users implement, what a check returns ([`Outcome`],
//! [`ProbeError`]), per-probe options and the combinators that set them
//! ([`ProbeExt`]), and closures as probes ([`from_fn`]).
//!
//! A probe only says how its dependency is doing. The registry stamps its
//! name, criticality, latency and time, enforces its timeout, catches its
//! panics and applies the circuit breaker.
//!
//! ```
//! use std::time::Duration;
//! use axum_watch::{Outcome, Probe, ProbeError, ProbeExt};
//!
//! struct Queue;
//!
//! impl Probe for Queue {
//!     fn name(&self) -> &str {
//!         "queue"
//!     }
//!
//!     async fn check(&self) -> Result<Outcome, ProbeError> {
//!         let depth = 950; // ask the queue here
//!         let outcome = if depth > 800 { Outcome::degraded() } else { Outcome::healthy() };
//!         Ok(outcome.detail("depth", depth))
//!     }
//! }
//!
//! // Options ride along with the probe: a 2 s timeout, a stricter breaker.
//! let probe = Queue.with_timeout(Duration::from_secs(2)).with_circuit_breaker(3, Duration::from_secs(60));
//! assert_eq!(probe.name(), "queue");
//! ```

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::model::{Details, Status};

/// A health check of one dependency or concern.
///
/// Implement it with a plain `async fn check`. `name` must match
/// `[A-Za-z0-9_.:-]+` and be unique within a registry.
pub trait Probe: Send + Sync + 'static {
    /// The probe's name, as shown in every report.
    fn name(&self) -> &str;

    /// A human description shown with the result.
    fn description(&self) -> Option<&str> {
        None
    }

    /// Tags that `?tag=` filters match.
    fn tags(&self) -> Vec<String> {
        Vec::new()
    }

    /// Timeout, poll interval and circuit-breaker overrides; the registry's
    /// defaults apply to whatever is left unset.
    fn options(&self) -> ProbeOptions {
        ProbeOptions::default()
    }

    /// Checks the dependency. An `Err` becomes an unhealthy result whose
    /// `error` is the error's type and message.
    fn check(&self) -> impl Future<Output = Result<Outcome, ProbeError>> + Send;
}

/// What a check found: a status, an optional error, details and, when the
/// probe measured it itself, a latency.
///
/// ```
/// use std::time::Duration;
/// use axum_watch::{Outcome, Status};
///
/// let outcome = Outcome::unhealthy("replication lag too high")
///     .detail("lag_s", 42)
///     .latency(Duration::from_millis(3));
/// assert_eq!(outcome.status(), Status::Unhealthy);
/// assert_eq!(outcome.error(), Some("replication lag too high"));
/// assert_eq!(outcome.details()["lag_s"], 42);
/// ```
#[derive(Clone, PartialEq)]
#[must_use]
pub struct Outcome {
    status: Status,
    error: Option<String>,
    details: Details,
    latency: Option<Duration>,
}

impl Outcome {
    /// An outcome with `status` and nothing else.
    pub fn new(status: Status) -> Self {
        Self {
            status,
            error: None,
            details: Details::new(),
            latency: None,
        }
    }

    /// All clear.
    pub fn healthy() -> Self {
        Self::new(Status::Healthy)
    }

    /// Working, but under stress.
    pub fn degraded() -> Self {
        Self::new(Status::Degraded)
    }

    /// Failing, with what went wrong.
    pub fn unhealthy(error: impl Into<String>) -> Self {
        Self::new(Status::Unhealthy).error_text(error)
    }

    /// Sets the error text (it is redacted before it is stored or shown).
    pub fn error_text(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// Adds one detail; keys keep the order they were added in. The
    /// registry redacts details before it stores or shows them: the whole
    /// value of a key named like a secret, credentials in any string.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Adds every detail of `details`.
    pub fn details_from(mut self, details: Details) -> Self {
        self.details.extend(details);
        self
    }

    /// Sets the latency the probe measured itself; otherwise the registry
    /// measures the whole check.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status
    }

    /// The error text, if any.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The details added so far.
    #[must_use]
    pub fn details(&self) -> &Details {
        &self.details
    }

    pub(crate) fn into_parts(self) -> (Status, Option<String>, Details, Option<Duration>) {
        (self.status, self.error, self.details, self.latency)
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug output may reach logs: show the error and details redacted
        // by the built-in rules, as the registry would store them.
        let rules = crate::redact::Redactor::new();
        let mut details = self.details.clone();
        rules.redact_details(&mut details);
        f.debug_struct("Outcome")
            .field("status", &self.status)
            .field("error", &self.error.as_deref().map(|e| rules.redact(e)))
            .field("details", &details)
            .field("latency", &self.latency)
            .finish()
    }
}

/// The error a check returns; shown as `<type>: <message>`.
///
/// Any `std::error::Error` converts into it with `?`, keeping its type name
/// and its chain of sources:
///
/// ```
/// use axum_watch::ProbeError;
///
/// fn parse(text: &str) -> Result<u16, ProbeError> {
///     Ok(text.parse::<u16>()?)
/// }
/// assert_eq!(parse("x").unwrap_err().to_string(), "ParseIntError: invalid digit found in string");
/// assert_eq!(ProbeError::msg("no leader elected").to_string(), "no leader elected");
/// ```
#[derive(Clone)]
pub struct ProbeError {
    kind: Option<String>,
    message: String,
}

impl ProbeError {
    /// An error with a message and no type name.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            kind: None,
            message: message.into(),
        }
    }

    /// An error with an explicit type name, shown as `<kind>: <message>`.
    pub fn with_kind(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: Some(kind.into()),
            message: message.into(),
        }
    }

    /// The type name, if the error has one.
    #[must_use]
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    /// The message, including the messages of the error's sources.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Some(kind) => write!(f, "{kind}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl fmt::Debug for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug output may reach logs: show it redacted like everything else.
        write!(f, "ProbeError({:?})", crate::redact(&self.to_string()))
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for ProbeError {
    fn from(error: E) -> Self {
        Self {
            kind: Some(short_type_name(std::any::type_name::<E>())),
            message: error_chain(&error),
        }
    }
}

/// An error's message followed by those of its sources, each once:
/// `connect failed: Connection refused (os error 111)`.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

/// The message a panic was raised with (its `&str` or `String` payload), or
/// `non-string panic payload` for any other payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// `std::io::error::Error` → `io::Error`, `core::num::error::ParseIntError` →
/// `ParseIntError`: the last path segment, qualified by its crate or module
/// when it is the generic name `Error`.
pub(crate) fn short_type_name(full: &str) -> String {
    let base = full.split('<').next().unwrap_or(full);
    let mut segments = base.rsplit("::");
    let last = segments.next().unwrap_or(base);
    if last != "Error" {
        return last.to_owned();
    }
    match segments.find(|s| *s != "error" && *s != "errors") {
        Some(module) => format!("{module}::{last}"),
        None => last.to_owned(),
    }
}

/// How long a check may take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeTimeout {
    /// Use the registry's default (10 s unless configured).
    #[default]
    Inherit,
    /// Give up after this long.
    After(Duration),
    /// Never time out.
    Disabled,
}

/// The old name of [`ProbeTimeout`].
#[deprecated(since = "0.2.0", note = "renamed to `ProbeTimeout`")]
pub type Timeout = ProbeTimeout;

/// The old name of [`ConfiguredProbe`].
#[deprecated(since = "0.2.0", note = "renamed to `ConfiguredProbe`")]
pub type Configured<P> = ConfiguredProbe<P>;

/// Per-probe overrides of the registry's defaults.
///
/// Usually set through [`ProbeExt`] combinators rather than built by hand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeOptions {
    /// How long a check may take.
    pub timeout: ProbeTimeout,
    /// The probe's own poll interval while the poll loop runs (clamped to at
    /// least 1 s); `None` follows the registry.
    pub poll_interval: Option<Duration>,
    /// `Some(false)` turns the circuit breaker off for this probe, `Some(true)`
    /// on even when it is off registry-wide.
    pub circuit_breaker: Option<bool>,
    /// Consecutive failures that open the circuit.
    pub circuit_threshold: Option<u32>,
    /// How long the circuit stays open.
    pub circuit_cooldown: Option<Duration>,
    /// Unhealthy (or degraded) results in a row before the reported status
    /// worsens; `None` follows the registry (default 1).
    pub failure_threshold: Option<u32>,
    /// Better results in a row before the reported status recovers; `None`
    /// follows the registry (default 1).
    pub success_threshold: Option<u32>,
    /// Run the check on the application's own runtime rather than the
    /// registry's check runtime: for probes that measure that runtime
    /// itself, such as [`RuntimeProbe`](crate::probes::RuntimeProbe).
    pub on_caller_runtime: bool,
    /// Whether the probe is passive: it reads statistics of traffic the
    /// application serves rather than making a call of its own. Shown as
    /// `"kind": "passive"` in `GET probes`; set by every passive probe.
    pub passive: bool,
    /// Why the probe's own settings cannot work, when they cannot (a passive
    /// probe's window smaller than its `min_calls`, for example): the
    /// registry builder then refuses the probe with
    /// [`BuildErrorKind::InvalidOption`](crate::BuildErrorKind::InvalidOption).
    pub invalid: Option<&'static str>,
}

/// Combinators that configure any probe; implemented for every [`Probe`].
pub trait ProbeExt: Probe + Sized {
    /// Registers the probe under another name.
    fn with_name(self, name: impl Into<String>) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).with_name(name)
    }

    /// Sets the description shown with the result.
    fn with_description(self, description: impl Into<String>) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).with_description(description)
    }

    /// Replaces the probe's tags.
    fn with_tags<I, T>(self, tags: I) -> ConfiguredProbe<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        ConfiguredProbe::new(self).with_tags(tags)
    }

    /// Fails the check after `timeout`.
    fn with_timeout(self, timeout: Duration) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).with_timeout(timeout)
    }

    /// Lets the check run for as long as it takes.
    fn without_timeout(self) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).without_timeout()
    }

    /// Runs the probe on its own schedule while the poll loop runs.
    fn with_poll_interval(self, interval: Duration) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).with_poll_interval(interval)
    }

    /// Opens the circuit after `threshold` consecutive failures, for `cooldown`.
    fn with_circuit_breaker(self, threshold: u32, cooldown: Duration) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).with_circuit_breaker(threshold, cooldown)
    }

    /// Never opens the circuit for this probe.
    fn without_circuit_breaker(self) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).without_circuit_breaker()
    }

    /// Reports a worse status only after `failures` results in a row show
    /// it, and a better one only after `successes` (Kubernetes'
    /// `failureThreshold` / `successThreshold`; each at least 1).
    fn with_thresholds(self, failures: u32, successes: u32) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).with_thresholds(failures, successes)
    }

    /// Runs the check on the application's own runtime instead of the
    /// registry's check runtime (see
    /// [`HealthRegistryBuilder::check_runtime`](crate::HealthRegistryBuilder::check_runtime)).
    fn on_caller_runtime(self) -> ConfiguredProbe<Self> {
        ConfiguredProbe::new(self).on_caller_runtime()
    }
}

impl<P: Probe> ProbeExt for P {}

/// A probe with overridden name, description, tags or options; made by the
/// [`ProbeExt`] combinators, which chain.
#[derive(Debug, Clone)]
pub struct ConfiguredProbe<P> {
    inner: P,
    name: Option<String>,
    description: Option<String>,
    tags: Option<Vec<String>>,
    options: ProbeOptions,
}

impl<P: Probe> ConfiguredProbe<P> {
    fn new(inner: P) -> Self {
        let options = inner.options();
        Self {
            inner,
            name: None,
            description: None,
            tags: None,
            options,
        }
    }

    /// Registers the probe under another name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the description shown with the result.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Replaces the probe's tags.
    #[must_use]
    pub fn with_tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Fails the check after `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = ProbeTimeout::After(timeout);
        self
    }

    /// Lets the check run for as long as it takes.
    #[must_use]
    pub fn without_timeout(mut self) -> Self {
        self.options.timeout = ProbeTimeout::Disabled;
        self
    }

    /// Runs the probe on its own schedule while the poll loop runs.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.options.poll_interval = Some(interval);
        self
    }

    /// Opens the circuit after `threshold` consecutive failures, for `cooldown`.
    #[must_use]
    pub fn with_circuit_breaker(mut self, threshold: u32, cooldown: Duration) -> Self {
        self.options.circuit_breaker = Some(true);
        self.options.circuit_threshold = Some(threshold);
        self.options.circuit_cooldown = Some(cooldown);
        self
    }

    /// Never opens the circuit for this probe.
    #[must_use]
    pub fn without_circuit_breaker(mut self) -> Self {
        self.options.circuit_breaker = Some(false);
        self
    }

    /// Reports a worse status only after `failures` results in a row, a
    /// better one after `successes`.
    #[must_use]
    pub fn with_thresholds(mut self, failures: u32, successes: u32) -> Self {
        self.options.failure_threshold = Some(failures);
        self.options.success_threshold = Some(successes);
        self
    }

    /// Runs the check on the application's own runtime.
    #[must_use]
    pub fn on_caller_runtime(mut self) -> Self {
        self.options.on_caller_runtime = true;
        self
    }

    /// The wrapped probe.
    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: Probe> Probe for ConfiguredProbe<P> {
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| self.inner.name())
    }

    fn description(&self) -> Option<&str> {
        self.description.as_deref().or_else(|| self.inner.description())
    }

    fn tags(&self) -> Vec<String> {
        self.tags.clone().unwrap_or_else(|| self.inner.tags())
    }

    fn options(&self) -> ProbeOptions {
        self.options
    }

    fn check(&self) -> impl Future<Output = Result<Outcome, ProbeError>> + Send {
        self.inner.check()
    }
}

/// A probe made from a name and an async closure; see [`from_fn`].
pub struct FnProbe<F> {
    name: String,
    check: F,
}

impl<F> fmt::Debug for FnProbe<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnProbe")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Makes a probe from a name and an async closure.
///
/// ```
/// use axum_watch::{probe, Outcome};
///
/// let disk = probe::from_fn("scratch-dir", || async {
///     std::fs::metadata("/tmp")?;
///     Ok(Outcome::healthy())
/// });
/// # use axum_watch::Probe;
/// assert_eq!(disk.name(), "scratch-dir");
/// ```
pub fn from_fn<F, Fut>(name: impl Into<String>, check: F) -> FnProbe<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, ProbeError>> + Send + 'static,
{
    FnProbe {
        name: name.into(),
        check,
    }
}

impl<F, Fut> Probe for FnProbe<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome, ProbeError>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> impl Future<Output = Result<Outcome, ProbeError>> + Send {
        (self.check)()
    }
}

/// The object-safe twin of [`Probe`], so the registry can hold any probe
/// behind one pointer type.
pub(crate) trait DynProbe: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn description(&self) -> Option<&str>;
    fn tags(&self) -> Vec<String>;
    fn options(&self) -> ProbeOptions;
    fn check_boxed(&self) -> BoxFuture<'_, Result<Outcome, ProbeError>>;
}

impl<P: Probe> DynProbe for P {
    fn name(&self) -> &str {
        Probe::name(self)
    }

    fn description(&self) -> Option<&str> {
        Probe::description(self)
    }

    fn tags(&self) -> Vec<String> {
        Probe::tags(self)
    }

    fn options(&self) -> ProbeOptions {
        Probe::options(self)
    }

    fn check_boxed(&self) -> BoxFuture<'_, Result<Outcome, ProbeError>> {
        Box::pin(Probe::check(self))
    }
}

/// A type-erased, cheaply cloned probe.
///
/// Anything that is a [`Probe`], or an `Arc` of one, converts into it, which
/// lets one list hold probes of different types. Clones of a handle (and
/// conversions of clones of one `Arc`) are the same instance: registering it
/// twice is a no-op.
///
/// ```
/// use std::sync::Arc;
/// use axum_watch::{probe, HealthRegistry, Outcome, probe::ProbeHandle};
///
/// let shared = Arc::new(probe::from_fn("db", || async { Ok(Outcome::healthy()) }));
/// let registry = HealthRegistry::builder()
///     .add_probes([
///         ProbeHandle::from(shared.clone()),
///         ProbeHandle::new(probe::from_fn("cache", || async { Ok(Outcome::healthy()) })),
///     ])
///     .add(shared) // same instance: ignored
///     .build()
///     .unwrap();
/// assert_eq!(registry.probe_names(), ["db", "cache"]);
/// ```
#[derive(Clone)]
pub struct ProbeHandle(pub(crate) Arc<dyn DynProbe>);

impl ProbeHandle {
    /// Erases the type of `probe`.
    pub fn new<P: Probe>(probe: P) -> Self {
        Self(Arc::new(probe))
    }

    /// The probe's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The address of the probe this handle points to: the same for every
    /// clone of it, and for conversions of clones of one `Arc`.
    pub(crate) fn instance(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<()>() as usize
    }
}

impl fmt::Debug for ProbeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProbeHandle").field(&self.name()).finish()
    }
}

impl<P: Probe> From<P> for ProbeHandle {
    fn from(probe: P) -> Self {
        Self::new(probe)
    }
}

impl<P: Probe> From<Arc<P>> for ProbeHandle {
    fn from(probe: Arc<P>) -> Self {
        Self(probe)
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Arc, Duration, Outcome, Probe, ProbeError, ProbeExt, ProbeHandle, ProbeTimeout, panic_message, short_type_name,
    };

    #[test]
    fn panic_messages_fall_back_for_other_payloads() {
        let message = |payload: Box<dyn std::any::Any + Send>| panic_message(payload.as_ref()).to_owned();
        assert_eq!(message(Box::new("boom")), "boom");
        assert_eq!(message(Box::new(String::from("bang"))), "bang");
        assert_eq!(message(Box::new(42_u8)), "non-string panic payload");
    }

    #[test]
    fn short_type_names() {
        let cases = [
            ("std::io::error::Error", "io::Error"),
            ("core::num::error::ParseIntError", "ParseIntError"),
            ("tokio_postgres::error::Error", "tokio_postgres::Error"),
            ("reqwest::Error", "reqwest::Error"),
            ("my::Thing<alloc::string::String>", "Thing"),
            ("Error", "Error"),
        ];
        for (full, want) in cases {
            assert_eq!(short_type_name(full), want, "{full}");
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("query failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn errors_keep_type_and_sources() {
        let err: ProbeError = Outer(std::io::Error::other("connection reset")).into();
        assert_eq!(err.kind(), Some("Outer"));
        assert_eq!(err.to_string(), "Outer: query failed: connection reset");
        let io: ProbeError = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow").into();
        assert_eq!(io.to_string(), "io::Error: slow");
    }

    #[test]
    fn debug_output_is_redacted() {
        let err = ProbeError::msg("connect postgres://u:secret@db failed");
        assert_eq!(
            format!("{err:?}"),
            r#"ProbeError("connect postgres://u:***@db failed")"#
        );
        let outcome = Outcome::unhealthy("login failed: password=hunter2")
            .detail("dsn", "app:s3cret@tcp(db:3306)/app")
            .detail("api_key", 42);
        assert_eq!(
            format!("{outcome:?}"),
            r#"Outcome { status: Unhealthy, error: Some("login failed: password=***"), details: {"dsn": String("app:***@tcp(db:3306)/app"), "api_key": String("***")}, latency: None }"#
        );
    }

    struct Named;
    impl Probe for Named {
        fn name(&self) -> &str {
            "named"
        }
        fn tags(&self) -> Vec<String> {
            vec!["a".into()]
        }
        async fn check(&self) -> Result<Outcome, ProbeError> {
            Ok(Outcome::healthy())
        }
    }

    #[test]
    fn combinators_override_and_chain() {
        let p = Named
            .with_name("renamed")
            .with_description("d")
            .with_timeout(Duration::from_secs(1))
            .with_poll_interval(Duration::from_secs(5))
            .without_circuit_breaker();
        assert_eq!(p.name(), "renamed");
        assert_eq!(p.description(), Some("d"));
        assert_eq!(p.tags(), ["a"]);
        let o = p.options();
        assert_eq!(o.timeout, ProbeTimeout::After(Duration::from_secs(1)));
        assert_eq!(o.poll_interval, Some(Duration::from_secs(5)));
        assert_eq!(o.circuit_breaker, Some(false));
        assert_eq!(Named.without_timeout().options().timeout, ProbeTimeout::Disabled);
        assert_eq!(Named.with_tags(["x", "y"]).tags(), ["x", "y"]);
    }

    #[test]
    fn handles_know_their_instance() {
        let shared = Arc::new(Named);
        let a = ProbeHandle::from(shared.clone());
        let b = ProbeHandle::from(shared);
        let c = ProbeHandle::new(Named);
        assert_eq!(a.instance(), b.instance());
        assert_eq!(a.instance(), a.clone().instance());
        assert_ne!(a.instance(), c.instance());
    }
}
