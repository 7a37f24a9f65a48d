//! [`HealthRegistryBuilder`]: every option of the registry, validated once in
//! [`build`](HealthRegistryBuilder::build).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;

use super::HealthRegistry;
use super::group::{ProbeGroup, Registration};
use crate::alert::{Alerter, AlerterHandle, DispatchPolicy, Dispatcher, NotifyPolicy};
use crate::engine::{
    Callback, CheckRuntime, CircuitPolicy, Engine, EngineConfig, Entry, Identity, Owner, Scheduling, ThresholdPolicy,
    clamp_interval,
};
use crate::http::auth::{Auth, AuthRequest, Credentials, OpenEndpoint};
use crate::http::dashboard::{Dashboard, DashboardContext};
use crate::http::health_json::{Service, ServiceInfo};
use crate::http::{Codes, Endpoint, HttpConfig};
use crate::model::{AlertRecord, Status};
use crate::probe::{ProbeHandle, ProbeTimeout};
use crate::redact::Redactor;
use crate::storage::{DynStorage, MemoryStorage, Storage};

/// Builds a [`HealthRegistry`]; see [`HealthRegistry::builder`].
///
/// Options and their defaults:
///
/// | option | default |
/// | --- | --- |
/// | [`prefix`](Self::prefix) | `/health` |
/// | [`poll_interval`](Self::poll_interval) | 60 s (under 1 s → 1 s, `None` = on demand only) |
/// | [`cache_age`](Self::cache_age) | 1 s (zero = every request runs the probes, shared) |
/// | [`timeout`](Self::timeout) | 10 s per probe (`None` = no limit) |
/// | [`grace_period`](Self::grace_period) | none |
/// | [`history_size`](Self::history_size) | 120 results per probe |
/// | [`result_ttl`](Self::result_ttl) | 7200 s |
/// | [`alert_ttl`](Self::alert_ttl) | 259 200 s |
/// | [`max_alerts`](Self::max_alerts) | 120 |
/// | [`timezone`](Self::timezone) | `UTC` |
/// | [`circuit_breaker`](Self::circuit_breaker) | on, threshold 5, cooldown 600 s |
/// | [`alert_dedup_window`](Self::alert_dedup_window) | 60 s (with a shared storage) |
/// | [`max_runtime_probes`](Self::max_runtime_probes) | 1,000 |
#[must_use]
pub struct HealthRegistryBuilder {
    prefix: String,
    poll_interval: Option<Duration>,
    cache_age: Duration,
    timeout: Option<Duration>,
    grace_period: Duration,
    limits: Limits,
    timezone: String,
    storage: Option<Arc<dyn DynStorage>>,
    circuit_breaker: bool,
    circuit_threshold: u32,
    circuit_cooldown: Duration,
    probes: ProbeGroup,
    startup: ProbeGroup,
    callbacks: Vec<Callback>,
    dashboard: Dashboard,
    allow_unauthenticated_maintenance: bool,
    credentials: Option<Result<Credentials, BuildError>>,
    alerters: Vec<AlerterHandle>,
    /// The first option found invalid where it was given, refused by `build`.
    invalid: Option<BuildError>,
    dispatch: DispatchPolicy,
    open_endpoints: Vec<OpenEndpoint>,
    service_name: Option<String>,
    service_info: ServiceInfo,
    codes: Codes,
    public_url: Option<String>,
    alert_dedup_window: Duration,
    check_runtime: CheckRuntime,
    scheduling: Scheduling,
    drain: super::Drain,
    thresholds: ThresholdPolicy,
    redactor: Redactor,
    max_runtime_probes: usize,
}

impl fmt::Debug for HealthRegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthRegistryBuilder")
            .field("prefix", &self.prefix)
            .field("poll_interval", &self.poll_interval)
            .field("probes", &self.probes)
            .finish_non_exhaustive()
    }
}

impl Default for HealthRegistryBuilder {
    fn default() -> Self {
        Self {
            prefix: "/health".to_owned(),
            poll_interval: Some(Duration::from_secs(60)),
            cache_age: Duration::from_secs(1),
            timeout: Some(Duration::from_secs(10)),
            grace_period: Duration::ZERO,
            limits: Limits::default(),
            timezone: "UTC".to_owned(),
            storage: None,
            circuit_breaker: true,
            circuit_threshold: 5,
            circuit_cooldown: Duration::from_secs(600),
            probes: ProbeGroup::new(),
            startup: ProbeGroup::new(),
            callbacks: Vec::new(),
            dashboard: Dashboard::BuiltIn,
            allow_unauthenticated_maintenance: false,
            credentials: None,
            alerters: Vec::new(),
            invalid: None,
            dispatch: DispatchPolicy::default(),
            open_endpoints: Vec::new(),
            alert_dedup_window: Duration::from_secs(60),
            service_name: None,
            service_info: ServiceInfo::new(),
            codes: Codes::default(),
            public_url: None,
            check_runtime: CheckRuntime::default(),
            scheduling: Scheduling::default(),
            drain: super::Drain::default(),
            thresholds: ThresholdPolicy::IMMEDIATE,
            redactor: Redactor::new(),
            max_runtime_probes: HealthRegistryBuilder::DEFAULT_MAX_RUNTIME_PROBES,
        }
    }
}

impl HealthRegistryBuilder {
    /// The default of [`max_runtime_probes`](Self::max_runtime_probes).
    pub const DEFAULT_MAX_RUNTIME_PROBES: usize = 1_000;

    /// How many probes added after [`build`](Self::build) — with
    /// [`HealthRegistry::add_probe`] or by
    /// [route discovery](HealthRegistry::discover_routes) — may be
    /// registered at once (default 1,000; removing one makes room). Beyond
    /// it an addition is refused with [`AddProbeErrorKind::LimitReached`](crate::AddProbeErrorKind::LimitReached),
    /// logged, and counted in `/metrics` as
    /// `health_probes_refused_total{reason="limit"}`. Zero refuses every
    /// addition at runtime.
    ///
    /// ```
    /// use axum_watch::{probe, AddProbeErrorKind, HealthRegistry, Outcome};
    ///
    /// let registry = HealthRegistry::builder().max_runtime_probes(1).build().unwrap();
    /// registry.add_probe(probe::from_fn("a", || async { Ok(Outcome::healthy()) })).unwrap();
    /// let refused = registry.add_probe(probe::from_fn("b", || async { Ok(Outcome::healthy()) })).unwrap_err();
    /// assert_eq!(refused.kind(), AddProbeErrorKind::LimitReached);
    /// ```
    pub fn max_runtime_probes(mut self, max: usize) -> Self {
        self.max_runtime_probes = max;
        self
    }

    /// The path every endpoint lives under: `""` or `/segment[/segment…]`
    /// without a trailing slash.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How often the poll loop runs the probes while stream clients are
    /// connected; under 1 s is raised to 1 s, `None` or zero runs probes only
    /// on demand.
    pub fn poll_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.poll_interval = interval.into();
        self
    }

    /// How long a report is reused before a request runs the probes again.
    /// Concurrent requests always share one run; zero reuses nothing else.
    pub fn cache_age(mut self, age: Duration) -> Self {
        self.cache_age = age;
        self
    }

    /// The default per-probe timeout; `None` lets checks run forever.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// How long after [`build`](Self::build) `/ready` answers 503 `starting`.
    pub fn grace_period(mut self, period: Duration) -> Self {
        self.grace_period = period;
        self
    }

    /// Results kept per probe by the in-memory storage (at least 1).
    ///
    /// With a storage of your own ([`storage`](Self::storage)), its own
    /// configuration decides, and [`build`](Self::build) refuses this option
    /// ([`BuildErrorKind::StorageOption`]).
    pub fn history_size(mut self, size: usize) -> Self {
        self.limits.history_size = Some(size);
        self
    }

    /// How long results stay in history, and how long a circuit-open probe
    /// may keep serving its last result (zero = no age limit). Refused with
    /// a storage of your own, like [`history_size`](Self::history_size).
    pub fn result_ttl(mut self, ttl: Duration) -> Self {
        self.limits.result_ttl = Some(ttl);
        self
    }

    /// How long alert records stay in the log of the in-memory storage.
    /// Refused with a storage of your own, like [`history_size`](Self::history_size).
    pub fn alert_ttl(mut self, ttl: Duration) -> Self {
        self.limits.alert_ttl = Some(ttl);
        self
    }

    /// Alert records kept by the in-memory storage (at least 1). Refused
    /// with a storage of your own, like [`history_size`](Self::history_size).
    pub fn max_alerts(mut self, max: usize) -> Self {
        self.limits.max_alerts = Some(max);
        self
    }

    /// The IANA zone of `checked_at` and alert timestamps.
    pub fn timezone(mut self, zone: impl Into<String>) -> Self {
        self.timezone = zone.into();
        self
    }

    /// Replaces the in-memory storage. Its history and alert limits are then
    /// its own: [`build`](Self::build) refuses the registry's
    /// [`history_size`](Self::history_size), [`result_ttl`](Self::result_ttl),
    /// [`alert_ttl`](Self::alert_ttl) and [`max_alerts`](Self::max_alerts)
    /// rather than ignore them.
    pub fn storage(mut self, storage: impl Storage) -> Self {
        self.storage = Some(Arc::new(storage));
        self
    }

    /// Unhealthy (or degraded) results in a row before a probe's reported
    /// status worsens (default 1: at once), for every probe that does not set
    /// its own with [`ProbeExt::with_thresholds`](crate::ProbeExt::with_thresholds).
    /// Kubernetes' `failureThreshold` semantics, applied before transitions
    /// are recorded, so alerts, callbacks, history and metrics agree; a
    /// change that waits shows as `details.threshold` (`observed`,
    /// `consecutive`, `needed`). Separate from the circuit breaker, which
    /// counts every unhealthy result.
    pub fn failure_threshold(mut self, results: u32) -> Self {
        self.thresholds.failures = results;
        self
    }

    /// Better results in a row before a probe's reported status recovers
    /// (default 1), like [`failure_threshold`](Self::failure_threshold).
    pub fn success_threshold(mut self, results: u32) -> Self {
        self.thresholds.successes = results;
        self
    }

    /// Turns the circuit breaker on or off for every probe that does not
    /// override it.
    pub fn circuit_breaker(mut self, enabled: bool) -> Self {
        self.circuit_breaker = enabled;
        self
    }

    /// Consecutive failures that open a circuit (at least 1).
    pub fn circuit_threshold(mut self, threshold: u32) -> Self {
        self.circuit_threshold = threshold;
        self
    }

    /// How long an open circuit keeps a probe suspended.
    pub fn circuit_cooldown(mut self, cooldown: Duration) -> Self {
        self.circuit_cooldown = cooldown;
        self
    }

    /// Registers a critical probe.
    #[allow(clippy::should_implement_trait)] // the registration verb users expect
    pub fn add(mut self, probe: impl Into<ProbeHandle>) -> Self {
        self.probes = self.probes.add(probe);
        self
    }

    /// Registers a probe that is reported but never changes the overall status.
    pub fn add_non_critical(mut self, probe: impl Into<ProbeHandle>) -> Self {
        self.probes = self.probes.add_non_critical(probe);
        self
    }

    /// Registers several critical probes.
    pub fn add_probes<I>(mut self, probes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ProbeHandle>,
    {
        self.probes = self.probes.add_probes(probes);
        self
    }

    /// Registers several non-critical probes.
    pub fn add_probes_non_critical<I>(mut self, probes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<ProbeHandle>,
    {
        self.probes = self.probes.add_probes_non_critical(probes);
        self
    }

    /// Registers every probe of a group, keeping each one's criticality.
    pub fn include(mut self, group: ProbeGroup) -> Self {
        self.probes = self.probes.include(group);
        self
    }

    /// Adds a probe that must pass before `/startup` answers 200.
    pub fn startup_probe(mut self, probe: impl Into<ProbeHandle>) -> Self {
        self.startup = self.startup.add(probe);
        self
    }

    /// Calls `callback` once per status change of a probe (never for a
    /// probe's first result). A panic in it is caught and logged.
    pub fn on_state_change(mut self, callback: impl Fn(&AlertRecord) + Send + Sync + 'static) -> Self {
        self.callbacks.push(Callback::sync(callback));
        self
    }

    /// Like [`on_state_change`](Self::on_state_change) for an async callback,
    /// which runs on its own task so that a slow one delays nothing.
    pub fn on_state_change_async<F, Fut>(mut self, callback: F) -> Self
    where
        F: Fn(AlertRecord) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.callbacks.push(Callback::asynchronous(callback));
        self
    }

    /// Serves the built-in dashboard at `dashboard` (the default) or, with
    /// `false`, no dashboard route at all.
    pub fn dashboard(mut self, enabled: bool) -> Self {
        self.dashboard = if enabled {
            Dashboard::BuiltIn
        } else {
            Dashboard::Disabled
        };
        self
    }

    /// Serves the HTML `render` returns at `dashboard` instead of the
    /// built-in page. It gets the current report and the prefix.
    pub fn custom_dashboard(
        mut self,
        render: impl Fn(&DashboardContext<'_>) -> String + Send + Sync + 'static,
    ) -> Self {
        self.dashboard = Dashboard::custom(render);
        self
    }

    /// Lets anyone who can reach the endpoints start or end maintenance over
    /// HTTP. Off by default: `POST`/`DELETE maintenance` answer 403.
    pub fn allow_unauthenticated_maintenance(mut self, allow: bool) -> Self {
        self.allow_unauthenticated_maintenance = allow;
        self
    }

    /// Requires HTTP Basic credentials on every endpoint (401 with
    /// `WWW-Authenticate: Basic realm="health"` otherwise). Both must be
    /// non-empty.
    pub fn basic_auth(mut self, username: impl AsRef<str>, password: impl AsRef<str>) -> Self {
        self.credentials = Some(
            Credentials::basic(username.as_ref(), password.as_ref())
                .map_err(|message| BuildError::new(BuildErrorKind::InvalidCredentials, message)),
        );
        self
    }

    /// Requires `key` in the `X-API-Key` header on every endpoint (403
    /// otherwise).
    pub fn api_key(self, key: impl AsRef<str>) -> Self {
        self.api_key_header("x-api-key", key)
    }

    /// Requires `key` in the `header` header on every endpoint.
    pub fn api_key_header(mut self, header: impl AsRef<str>, key: impl AsRef<str>) -> Self {
        self.credentials = Some(
            Credentials::api_key(header.as_ref(), key.as_ref())
                .map_err(|message| BuildError::new(BuildErrorKind::InvalidCredentials, message)),
        );
        self
    }

    /// Lets a request through when `check` returns `true` (403 otherwise; a
    /// panic in it refuses the request).
    pub fn auth_fn(mut self, check: impl Fn(&AuthRequest) -> bool + Send + Sync + 'static) -> Self {
        self.credentials = Some(Ok(Credentials::sync(check)));
        self
    }

    /// Like [`auth_fn`](Self::auth_fn) for an async check.
    pub fn auth_fn_async<F, Fut>(mut self, check: F) -> Self
    where
        F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.credentials = Some(Ok(Credentials::asynchronous(check)));
        self
    }

    /// Leaves some of `live`, `ready`, `status` and `startup` open while the
    /// rest needs authentication: an unauthenticated caller gets the status
    /// code and `{"status": …}` only, an authenticated one the full answer.
    ///
    /// ```
    /// use axum_watch::{HealthRegistry, options::OpenEndpoint};
    ///
    /// let registry = HealthRegistry::builder()
    ///     .basic_auth("ops", "s3cret")
    ///     .open_endpoints([OpenEndpoint::Live, OpenEndpoint::Ready])
    ///     .build()
    ///     .unwrap();
    /// # drop(registry);
    /// ```
    pub fn open_endpoints(mut self, endpoints: impl IntoIterator<Item = OpenEndpoint>) -> Self {
        self.open_endpoints = endpoints.into_iter().collect();
        self
    }

    /// Calls `alerter` on every transition outside maintenance, from its own
    /// bounded queue so that it never delays a check or another alerter.
    pub fn alerter(mut self, alerter: impl Alerter) -> Self {
        self.alerters.push(AlerterHandle::new(alerter, NotifyPolicy::new()));
        self
    }

    /// Like [`alerter`](Self::alerter), notified as `policy` says: a minimum
    /// interval between notifications for the same probe, reminders while a
    /// probe stays unhealthy, and whether recoveries are sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum_watch::{AlertRecord, Alerter, HealthRegistry};
    /// use axum_watch::alert::{AlertError, NotifyPolicy};
    ///
    /// struct Pager;
    /// impl Alerter for Pager {
    ///     fn name(&self) -> &str { "pager" }
    ///     async fn notify(&self, _alert: &AlertRecord) -> Result<(), AlertError> { Ok(()) }
    /// }
    ///
    /// let registry = HealthRegistry::builder()
    ///     .alerter_with(Pager, NotifyPolicy::new().min_interval(Duration::from_secs(300)).recoveries(false))
    ///     .build()
    ///     .unwrap();
    /// # drop(registry);
    /// ```
    pub fn alerter_with(mut self, alerter: impl Alerter, policy: NotifyPolicy) -> Self {
        self.alerters.push(AlerterHandle::new(alerter, policy));
        self
    }

    /// Posts every transition as JSON to `url` with a
    /// [`WebhookAlerter`](crate::alert::WebhookAlerter); a URL that is not `http` or
    /// `https` makes [`build`](Self::build) fail.
    #[cfg(feature = "alerts")]
    pub fn webhook_url(mut self, url: impl AsRef<str>) -> Self {
        match crate::alert::WebhookAlerter::new(url) {
            Ok(webhook) => self.alerters.push(AlerterHandle::new(webhook, NotifyPolicy::new())),
            Err(e) => {
                self.invalid
                    .get_or_insert(BuildError::new(BuildErrorKind::InvalidAlerter, e.to_string()));
            }
        }
        self
    }

    /// Alerts each alerter's queue holds, waiting ones included (default
    /// 256, at least 1); when it is full, the oldest is dropped and counted.
    pub fn alert_queue(mut self, size: usize) -> Self {
        self.dispatch.queue = size;
        self
    }

    /// How long one alerter call may take (default 5 s).
    pub fn alert_timeout(mut self, timeout: Duration) -> Self {
        self.dispatch.timeout = timeout;
        self
    }

    /// Retries of transient alert failures (default 3) and the first backoff
    /// (default 500 ms, doubling).
    pub fn alert_retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.dispatch.retries = retries;
        self.dispatch.backoff = backoff;
        self
    }

    /// The service name alert records and payloads carry (default: the
    /// shared storage's service, else the executable's name).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// What `application/health+json` answers say about the service beside
    /// its [name](Self::service_name) (their `serviceId`): its API version,
    /// its release and a description. See [`ServiceInfo`].
    pub fn service_info(mut self, info: ServiceInfo) -> Self {
        self.service_info = info;
        self
    }

    /// The HTTP code `ready` (and `ready/<name>`) answers when the report
    /// is `status`, like Spring Boot's `status.http-mapping`. By default
    /// healthy and degraded are 200 and unhealthy 503.
    ///
    /// Some load balancers count any 2xx as up, 207 included; to take a
    /// degraded service out of rotation, map degraded to 503 here (and on
    /// [`status_code`](Self::status_code) when the balancer checks
    /// `status`). Codes outside 200–599 are refused by
    /// [`build`](Self::build). `application/health+json` answers keep the
    /// draft's codes: 503 for `fail` only.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use axum_watch::{HealthRegistry, Status};
    ///
    /// let registry = HealthRegistry::builder()
    ///     .ready_code(Status::Degraded, StatusCode::SERVICE_UNAVAILABLE)
    ///     .status_code(Status::Unhealthy, StatusCode::SERVICE_UNAVAILABLE)
    ///     .build()
    ///     .unwrap();
    /// # drop(registry);
    /// assert!(HealthRegistry::builder().ready_code(Status::Healthy, StatusCode::CONTINUE).build().is_err());
    /// ```
    pub fn ready_code(self, status: Status, code: http::StatusCode) -> Self {
        self.map_code(Endpoint::Ready, status, code)
    }

    /// The HTTP code `status` (and `status/<name>`) answers when the report
    /// is `status`; by default 200 when healthy and 207 otherwise. See
    /// [`ready_code`](Self::ready_code).
    pub fn status_code(self, status: Status, code: http::StatusCode) -> Self {
        self.map_code(Endpoint::Status, status, code)
    }

    fn map_code(mut self, endpoint: Endpoint, status: Status, code: http::StatusCode) -> Self {
        if (200..=599).contains(&code.as_u16()) {
            self.codes.set(endpoint, status, code);
        } else {
            let which = if endpoint == Endpoint::Ready {
                "ready_code"
            } else {
                "status_code"
            };
            self.invalid.get_or_insert(BuildError::new(
                BuildErrorKind::InvalidOption,
                format!("{which} for {status}: {code} is not a final answer; use a code from 200 to 599"),
            ));
        }
        self
    }

    /// The address people reach this service at, such as
    /// `https://checkout.example.com`: alert records then carry a link to
    /// the dashboard (`<url><prefix>/dashboard`). Must be `http` or `https`;
    /// [`build`](Self::build) refuses anything else.
    ///
    /// ```
    /// use axum_watch::HealthRegistry;
    ///
    /// let registry = HealthRegistry::builder()
    ///     .service_name("checkout")
    ///     .public_url("https://checkout.example.com")
    ///     .build()
    ///     .unwrap();
    /// # drop(registry);
    /// assert!(HealthRegistry::builder().public_url("checkout.example.com").build().is_err());
    /// ```
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// How long an alert whose retries ran out waits before it is sent
    /// again (default 30 s). It stays first in its alerter's line, so later
    /// alerts wait behind it and a receiver gets every alert in order;
    /// draining redelivers at once.
    pub fn alert_redelivery(mut self, interval: Duration) -> Self {
        self.dispatch.redelivery = interval;
        self
    }

    /// With a storage several replicas share, how long the replica that
    /// first claims a transition (same probe, same old and new status) is
    /// the only one whose alerters send it (default 60 s; zero sends from
    /// every replica). Others still record the transition. When the store
    /// cannot be asked, the replica sends: a duplicate page beats a missed one.
    pub fn alert_dedup_window(mut self, window: Duration) -> Self {
        self.alert_dedup_window = window;
        self
    }

    /// Where checks run (default: [`CheckRuntime::Auto`]: two threads of the
    /// registry's own under a multi-threaded runtime, the caller's runtime
    /// under a current-thread one).
    ///
    /// A probe that blocks its thread — a synchronous driver call inside an
    /// `async fn check` — then holds a check thread, never one of the
    /// application's workers, so `/live`, `/ready` and the application's own
    /// routes keep answering; and while such a check has not returned, the
    /// probe reports "still running" rather than starting a second copy.
    /// [`CheckRuntime::Caller`] runs checks on the application's runtime:
    /// what paused-time tests need. Probes that measure the application's
    /// runtime ([`RuntimeProbe`](crate::probes::RuntimeProbe),
    /// [`ProbeExt::on_caller_runtime`](crate::ProbeExt::on_caller_runtime))
    /// always run there.
    pub fn check_runtime(mut self, runtime: CheckRuntime) -> Self {
        self.check_runtime = runtime;
        self
    }

    /// When probes run (default [`Scheduling::Auto`]): always in the
    /// background, only while a stream is watching, or only on request.
    ///
    /// `Auto` runs them in the background as soon as anything listens for
    /// transitions without a viewer — an [`alerter`](Self::alerter), a
    /// [state-change callback](Self::on_state_change) or a storage shared by
    /// replicas — so that a dependency that fails at night is noticed,
    /// recorded and alerted on within one poll interval; otherwise only while
    /// watched. The mode in force shows in `/metrics` as
    /// `health_scheduling_mode{mode="…"} 1`. Whatever the mode, a probe runs
    /// once per interval however many streams, requests or viewers there are.
    pub fn scheduling(mut self, scheduling: Scheduling) -> Self {
        self.scheduling = scheduling;
        self
    }

    /// How long [`drain`](HealthRegistry::drain) keeps serving with `/ready`
    /// failing before it ends the streams (default 5 s), so that endpoints
    /// and load balancers stop sending traffic first.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain.delay = delay;
        self
    }

    /// How long [`drain`](HealthRegistry::drain) waits for queued alerts and
    /// buffered store writes before it lets the server stop (default 5 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain.timeout = timeout;
        self
    }

    /// Also masks the value of every key whose name contains one of
    /// `fragments`, beside the built-in ones (`password`, `secret`, `token`,
    /// `api key`, `auth`…): in error text (`session_id=…`, `Cookie: …`) and
    /// in details, whole. A name is compared by its letters and digits,
    /// whatever their case, so `"set-cookie"` matches `Set-Cookie` and
    /// `setCookie`. A fragment with no letter or digit, which would match
    /// every key, makes [`build`](Self::build) fail.
    ///
    /// ```
    /// use axum_watch::{HealthRegistry, Outcome, probe};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let registry = HealthRegistry::builder()
    ///     .add(probe::from_fn("sso", || async {
    ///         Ok(Outcome::unhealthy("refused session_id=4f9a1c; Cookie: sid=77e0").detail("session", "4f9a1c"))
    ///     }))
    ///     .redact_keys(["session", "cookie"])
    ///     .build()
    ///     .unwrap();
    /// let result = registry.run_all().await.probes[0].clone();
    /// assert_eq!(result.error.as_deref(), Some("refused session_id=***; Cookie: ***"));
    /// assert_eq!(result.details.unwrap()["session"], "***");
    /// # }
    /// ```
    pub fn redact_keys<I>(mut self, fragments: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for fragment in fragments {
            let fragment = fragment.as_ref();
            if !self.redactor.add_key(fragment) {
                self.invalid.get_or_insert(BuildError::new(
                    BuildErrorKind::InvalidOption,
                    format!("redact_keys: {fragment:?} has no letter or digit and would mask every key"),
                ));
            }
        }
        self
    }

    /// Also runs `rule` over every text the registry redacts — each error
    /// and every string in details, after the built-in rules — for secrets
    /// that have a shape rather than a key name. `rule` returns its input
    /// borrowed when it masks nothing, so that clean text is not copied; a
    /// `regex::Regex` fits as `move |text| re.replace_all(text, "***")`.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use axum_watch::{HealthRegistry, Outcome, probe};
    ///
    /// /// Stripe-style live keys, wherever they appear.
    /// fn live_keys(text: &str) -> Cow<'_, str> {
    ///     match text.find("sk_live_") {
    ///         None => Cow::Borrowed(text),
    ///         Some(at) => {
    ///             let end = text[at..].find(|c: char| !c.is_ascii_alphanumeric() && c != '_').map_or(text.len(), |n| at + n);
    ///             Cow::Owned(format!("{}***{}", &text[..at], &text[end..]))
    ///         }
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let registry = HealthRegistry::builder()
    ///     .add(probe::from_fn("billing", || async { Ok(Outcome::unhealthy("key sk_live_4eC39Hq rejected")) }))
    ///     .redact_with(live_keys)
    ///     .build()
    ///     .unwrap();
    /// let result = registry.run_all().await.probes[0].clone();
    /// assert_eq!(result.error.as_deref(), Some("key *** rejected"));
    /// # }
    /// ```
    pub fn redact_with<F>(mut self, rule: F) -> Self
    where
        F: for<'a> Fn(&'a str) -> Cow<'a, str> + Send + Sync + 'static,
    {
        self.redactor.add_rule(Arc::new(rule));
        self
    }

    /// Validates the options and the probes and makes the registry.
    ///
    /// # Errors
    ///
    /// Every option that would not take effect as given, with a
    /// [`kind`](BuildError::kind) to match on: a probe name that does not
    /// match `[A-Za-z0-9_.:-]+`, two different probes with one name, a
    /// malformed prefix, an unknown time zone, unusable credentials, open
    /// endpoints without authentication, an invalid webhook URL, storage
    /// limits given beside a storage of your own, or a count of zero where
    /// at least one is needed.
    pub fn build(self) -> Result<HealthRegistry, BuildError> {
        validate_prefix(&self.prefix)?;
        if let Some(error) = self.invalid.clone() {
            return Err(error);
        }
        self.validate_counts()?;
        self.validate_identity()?;
        let auth = match self.credentials.clone() {
            None if !self.open_endpoints.is_empty() => {
                return Err(BuildError::new(
                    BuildErrorKind::OpenEndpointsWithoutAuth,
                    "open endpoints were given but no authentication",
                ));
            }
            None => None,
            Some(credentials) => Some(Arc::new(Auth {
                credentials: credentials?,
                open: self.open_endpoints.iter().copied().collect(),
            })),
        };
        let zone = TimeZone::get(&self.timezone).map_err(|e| {
            BuildError::new(
                BuildErrorKind::UnknownTimeZone,
                format!("unknown time zone {:?}: {e}", self.timezone),
            )
        })?;
        let policy = CircuitPolicy {
            threshold: self.circuit_threshold,
            cooldown: self.circuit_cooldown,
        };
        let defaults = Arc::new(Defaults {
            timeout: self.timeout,
            thresholds: self.thresholds,
            circuit_breaker: self.circuit_breaker,
            policy,
            redactor: Arc::new(self.redactor.clone()),
        });
        let entries = resolve_all(&defaults, self.probes.clone(), true)?;
        let startup = resolve_all(&defaults, self.startup.clone(), false)?;
        let limits = self.limits;
        let storage = match self.storage {
            Some(storage) => {
                if let Some(option) = limits.first_set() {
                    return Err(BuildError::new(
                        BuildErrorKind::StorageOption,
                        format!(
                            "{option} applies to the in-memory storage only: with a storage of your own, set it on that storage"
                        ),
                    ));
                }
                storage
            }
            None => Arc::new(limits.memory_storage()),
        };
        let service_id = self
            .service_name
            .clone()
            .or_else(|| storage.service().map(str::to_owned))
            .unwrap_or_else(executable_name);
        let identity = Identity {
            service: service_id.clone(),
            replica: storage
                .replica()
                .map_or_else(crate::storage::default_replica_id, str::to_owned),
            dashboard_url: match (&self.public_url, &self.dashboard) {
                (Some(url), dashboard) if !matches!(dashboard, Dashboard::Disabled) => {
                    Some(format!("{}{}/dashboard", url.trim_end_matches('/'), self.prefix))
                }
                _ => None,
            },
        };
        let config = EngineConfig {
            poll_interval: clamp_interval(self.poll_interval),
            cache_age: self.cache_age,
            grace_period: self.grace_period,
            result_ttl: limits.result_ttl.unwrap_or(MemoryStorage::DEFAULT_RESULT_TTL),
            alert_dedup_window: self.alert_dedup_window,
            zone,
            zone_name: self.timezone,
            check_runtime: self.check_runtime,
            identity,
            max_runtime_probes: self.max_runtime_probes,
            scheduling: match self.scheduling {
                Scheduling::Auto
                    if !self.alerters.is_empty() || !self.callbacks.is_empty() || storage.replica().is_some() =>
                {
                    Scheduling::Background
                }
                Scheduling::Auto => Scheduling::WhileWatched,
                chosen => chosen,
            },
        };
        let http = HttpConfig {
            prefix: self.prefix,
            dashboard: self.dashboard,
            allow_unauthenticated_maintenance: self.allow_unauthenticated_maintenance,
            auth,
            codes: self.codes,
            service: Service {
                id: service_id,
                info: self.service_info,
            },
        };
        let engine = Engine::new(
            config,
            entries,
            startup,
            storage,
            self.callbacks,
            Dispatcher::new(self.alerters, self.dispatch),
        );
        let engine = Arc::new(engine);
        engine.start_background();
        let engine = Owner::new(engine);
        Ok(HealthRegistry {
            engine,
            http: Arc::new(http),
            drain: self.drain,
            defaults,
        })
    }

    /// Refuses a public URL that is not an absolute `http(s)` URL, and an
    /// empty service name.
    fn validate_identity(&self) -> Result<(), BuildError> {
        if let Some(url) = &self.public_url {
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            let host = rest.and_then(|r| r.split('/').next()).unwrap_or_default();
            if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(BuildError::new(
                    BuildErrorKind::InvalidOption,
                    format!("public_url {url:?} must be an absolute http:// or https:// URL with a host"),
                ));
            }
        }
        if let Some(name) = &self.service_name
            && (name.trim().is_empty() || name.chars().any(char::is_control))
        {
            return Err(BuildError::new(
                BuildErrorKind::InvalidOption,
                "service_name must not be empty or hold control characters",
            ));
        }
        Ok(())
    }

    /// Refuses counts that must be at least one instead of raising them.
    fn validate_counts(&self) -> Result<(), BuildError> {
        let zero = [
            ("circuit_threshold", self.circuit_threshold == 0),
            ("alert_queue", self.dispatch.queue == 0),
            (
                "alert_redelivery (in milliseconds)",
                self.dispatch.redelivery.as_millis() == 0,
            ),
            ("failure_threshold", self.thresholds.failures == 0),
            ("success_threshold", self.thresholds.successes == 0),
            (
                "check_runtime threads",
                self.check_runtime == CheckRuntime::dedicated(0),
            ),
            ("history_size", self.limits.history_size == Some(0)),
            ("max_alerts", self.limits.max_alerts == Some(0)),
        ];
        match zero.iter().find(|(_, is_zero)| *is_zero) {
            Some((option, _)) => Err(BuildError::new(
                BuildErrorKind::InvalidOption,
                format!("{option} must be at least 1"),
            )),
            None => Ok(()),
        }
    }
}

/// What a probe is resolved with: the builder's defaults, kept by the
/// registry for the probes added after it was built.
#[derive(Debug)]
pub(crate) struct Defaults {
    timeout: Option<Duration>,
    thresholds: ThresholdPolicy,
    circuit_breaker: bool,
    policy: CircuitPolicy,
    redactor: Arc<Redactor>,
}

impl Defaults {
    /// The entry of one registration at position `index`: its options
    /// resolved against the defaults, validated (not its uniqueness).
    pub(crate) fn resolve(
        &self,
        index: usize,
        registration: Registration,
        circuit_allowed: bool,
    ) -> Result<Entry, BuildError> {
        let Registration {
            probe,
            critical,
            extra_tags,
        } = registration;
        let name = probe.name().to_owned();
        if !is_valid_name(&name) {
            return Err(BuildError::new(
                BuildErrorKind::InvalidProbeName,
                format!("invalid probe name {name:?}: names must match [A-Za-z0-9_.:-]+"),
            ));
        }
        let options = probe.0.options();
        if let Some(reason) = options.invalid {
            return Err(BuildError::new(
                BuildErrorKind::InvalidOption,
                format!("probe {name:?}: {reason}"),
            ));
        }
        for (option, value) in [
            ("circuit_threshold", options.circuit_threshold),
            ("failure_threshold", options.failure_threshold),
            ("success_threshold", options.success_threshold),
        ] {
            if value == Some(0) {
                return Err(BuildError::new(
                    BuildErrorKind::InvalidOption,
                    format!("probe {name:?}: {option} must be at least 1"),
                ));
            }
        }
        let thresholds = ThresholdPolicy {
            failures: options.failure_threshold.unwrap_or(self.thresholds.failures),
            successes: options.success_threshold.unwrap_or(self.thresholds.successes),
        };
        let timeout = match options.timeout {
            ProbeTimeout::Inherit => self.timeout,
            ProbeTimeout::After(d) => Some(d),
            ProbeTimeout::Disabled => None,
        };
        let circuit =
            (circuit_allowed && options.circuit_breaker.unwrap_or(self.circuit_breaker)).then(|| CircuitPolicy {
                threshold: options.circuit_threshold.unwrap_or(self.policy.threshold),
                cooldown: options.circuit_cooldown.unwrap_or(self.policy.cooldown),
            });
        let mut tags = probe.0.tags();
        for t in extra_tags {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        Ok(Entry::new(
            index,
            probe,
            name,
            critical,
            tags,
            timeout,
            clamp_interval(options.poll_interval),
            circuit,
            thresholds,
            Arc::clone(&self.redactor),
        ))
    }
}

/// Every registration of `group`, resolved, with unique names.
fn resolve_all(defaults: &Defaults, group: ProbeGroup, circuit_allowed: bool) -> Result<Vec<Arc<Entry>>, BuildError> {
    let mut entries: Vec<Arc<Entry>> = Vec::new();
    let mut names = HashSet::new();
    for registration in group.into_registrations() {
        let entry = defaults.resolve(entries.len(), registration, circuit_allowed)?;
        if !names.insert(entry.name.clone()) {
            return Err(BuildError::new(
                BuildErrorKind::DuplicateProbeName,
                format!(
                    "two different probes are named {:?}: probe names must be unique",
                    entry.name
                ),
            ));
        }
        entries.push(Arc::new(entry));
    }
    Ok(entries)
}

/// The in-memory storage's limits as given to the builder; `None` = default.
#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    history_size: Option<usize>,
    result_ttl: Option<Duration>,
    alert_ttl: Option<Duration>,
    max_alerts: Option<usize>,
}

impl Limits {
    /// The name of the first limit that was set, if any.
    fn first_set(&self) -> Option<&'static str> {
        [
            ("history_size", self.history_size.is_some()),
            ("result_ttl", self.result_ttl.is_some()),
            ("alert_ttl", self.alert_ttl.is_some()),
            ("max_alerts", self.max_alerts.is_some()),
        ]
        .into_iter()
        .find_map(|(name, set)| set.then_some(name))
    }

    fn memory_storage(&self) -> MemoryStorage {
        let mut builder = MemoryStorage::builder();
        if let Some(size) = self.history_size {
            builder = builder.history_size(size);
        }
        if let Some(ttl) = self.result_ttl {
            builder = builder.result_ttl(ttl);
        }
        if let Some(ttl) = self.alert_ttl {
            builder = builder.alert_ttl(ttl);
        }
        if let Some(max) = self.max_alerts {
            builder = builder.max_alerts(max);
        }
        builder.build()
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn validate_prefix(prefix: &str) -> Result<(), BuildError> {
    let ok = prefix.is_empty()
        || (prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains("//")
            && !prefix.contains(['{', '}', '*', '?', '#', ' ']));
    if ok {
        Ok(())
    } else {
        Err(BuildError::new(
            BuildErrorKind::InvalidPrefix,
            format!("invalid prefix {prefix:?}: use \"\" or \"/segment[/segment…]\" without a trailing slash"),
        ))
    }
}

/// Why a registry could not be built: a [`kind`](Self::kind) to match on
/// and a message that says what was wrong.
///
/// ```
/// use axum_watch::{BuildErrorKind, HealthRegistry, probe, Outcome};
///
/// let err = HealthRegistry::builder()
///     .add(probe::from_fn("no spaces allowed", || async { Ok(Outcome::healthy()) }))
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), BuildErrorKind::InvalidProbeName);
/// assert!(err.to_string().starts_with("invalid probe name"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    kind: BuildErrorKind,
    message: String,
}

/// The cause of a [`BuildError`]; new kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// A probe name outside `[A-Za-z0-9_.:-]+`.
    InvalidProbeName,
    /// Two different probes share a name.
    DuplicateProbeName,
    /// A prefix that is not `""` or `/segment[/segment…]`.
    InvalidPrefix,
    /// A time zone the IANA database does not know.
    UnknownTimeZone,
    /// Credentials that nobody could ever present (empty, or a bad header name).
    InvalidCredentials,
    /// Open endpoints without any authentication to open them from.
    OpenEndpointsWithoutAuth,
    /// A webhook URL that is not `http` or `https`.
    InvalidAlerter,
    /// A storage limit given beside a storage of your own, which would ignore it.
    StorageOption,
    /// Another option outside its range (a zero count, for example).
    InvalidOption,
}

impl BuildError {
    fn new(kind: BuildErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What kind of option was refused.
    #[must_use]
    pub fn kind(&self) -> BuildErrorKind {
        self.kind
    }
}

/// The running executable's file name without extension, else `axum-watch`.
fn executable_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "axum-watch".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{self, Outcome};

    fn p(name: &'static str) -> impl crate::Probe {
        probe::from_fn(name, || async { Ok(Outcome::healthy()) })
    }

    #[test]
    fn names_are_validated() {
        for good in ["db", "db-1", "db_1", "db.main", "tcp:db:5432", "A9"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "has space", "slash/y", "ünï", "q?"] {
            assert!(!is_valid_name(bad), "{bad}");
            let err = HealthRegistry::builder().add(p(bad)).build().unwrap_err();
            assert!(err.to_string().contains("invalid probe name"), "{err}");
        }
    }

    #[test]
    fn duplicate_names_of_different_probes_are_refused() {
        let err = HealthRegistry::builder()
            .add(p("db"))
            .add_non_critical(p("db"))
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "two different probes are named \"db\": probe names must be unique"
        );
        let err = HealthRegistry::builder().startup_probe(p("x y")).build().unwrap_err();
        assert!(err.to_string().contains("invalid probe name"));
    }

    #[test]
    fn prefix_and_zone_are_validated() {
        for good in ["", "/health", "/ops/health"] {
            assert!(HealthRegistry::builder().prefix(good).build().is_ok(), "{good}");
        }
        for bad in ["health", "/health/", "/", "//x", "/a b", "/{x}"] {
            assert!(HealthRegistry::builder().prefix(bad).build().is_err(), "{bad}");
        }
        let err = HealthRegistry::builder().timezone("Mars/Olympus").build().unwrap_err();
        assert!(
            err.to_string().starts_with("unknown time zone \"Mars/Olympus\""),
            "{err}"
        );
    }

    #[test]
    fn poll_interval_is_clamped_and_zero_means_on_demand() {
        let r = HealthRegistry::builder()
            .poll_interval(Duration::from_millis(200))
            .build()
            .unwrap();
        assert_eq!(r.poll_interval(), Some(Duration::from_secs(1)));
        let r = HealthRegistry::builder().poll_interval(Duration::ZERO).build().unwrap();
        assert_eq!(r.poll_interval(), None);
        let r = HealthRegistry::builder().poll_interval(None).build().unwrap();
        assert_eq!(r.poll_interval(), None);
        assert_eq!(
            HealthRegistry::builder().build().unwrap().poll_interval(),
            Some(Duration::from_secs(60))
        );
    }

    /// A storage of the user's own, which knows nothing of the registry's limits.
    #[derive(Debug, Default)]
    struct OwnStorage(MemoryStorage);

    impl Storage for OwnStorage {
        async fn record(&self, result: &crate::ProbeResult) -> Result<(), crate::storage::StorageError> {
            Storage::record(&self.0, result).await
        }
        async fn latest(&self) -> Result<Vec<crate::ProbeResult>, crate::storage::StorageError> {
            Storage::latest(&self.0).await
        }
        async fn history(&self) -> Result<crate::storage::History, crate::storage::StorageError> {
            Storage::history(&self.0).await
        }
        async fn append_alert(&self, alert: &AlertRecord) -> Result<(), crate::storage::StorageError> {
            Storage::append_alert(&self.0, alert).await
        }
        async fn alerts(&self) -> Result<Vec<AlertRecord>, crate::storage::StorageError> {
            Storage::alerts(&self.0).await
        }
    }

    #[test]
    fn storage_limits_beside_a_storage_of_ones_own_are_refused() {
        type Set = fn(HealthRegistryBuilder) -> HealthRegistryBuilder;
        let cases: [(&str, Set); 4] = [
            ("history_size", |b| b.history_size(10)),
            ("result_ttl", |b| b.result_ttl(Duration::from_secs(60))),
            ("alert_ttl", |b| b.alert_ttl(Duration::from_secs(60))),
            ("max_alerts", |b| b.max_alerts(10)),
        ];
        for (option, set) in cases {
            let err = set(HealthRegistry::builder().storage(OwnStorage::default()))
                .build()
                .unwrap_err();
            assert_eq!(err.kind(), BuildErrorKind::StorageOption, "{option}: {err}");
            assert!(err.to_string().starts_with(option), "{err}");
            // The same option applies to the in-memory storage.
            assert!(set(HealthRegistry::builder()).build().is_ok(), "{option}");
        }
        assert!(HealthRegistry::builder().storage(OwnStorage::default()).build().is_ok());
    }

    #[test]
    fn zero_counts_are_refused_not_raised() {
        let cases: [(&str, HealthRegistryBuilder); 5] = [
            ("circuit_threshold", HealthRegistry::builder().circuit_threshold(0)),
            ("alert_queue", HealthRegistry::builder().alert_queue(0)),
            ("history_size", HealthRegistry::builder().history_size(0)),
            ("max_alerts", HealthRegistry::builder().max_alerts(0)),
            (
                "circuit_threshold",
                HealthRegistry::builder().add(crate::ProbeExt::with_circuit_breaker(
                    p("db"),
                    0,
                    Duration::from_secs(1),
                )),
            ),
        ];
        for (option, builder) in cases {
            let err = builder.build().unwrap_err();
            assert_eq!(err.kind(), BuildErrorKind::InvalidOption, "{err}");
            assert!(
                err.to_string().contains(&format!("{option} must be at least 1")),
                "{err}"
            );
        }
    }

    #[test]
    fn every_cause_has_its_kind() {
        let kind = |b: HealthRegistryBuilder| b.build().unwrap_err().kind();
        assert_eq!(
            kind(HealthRegistry::builder().prefix("x")),
            BuildErrorKind::InvalidPrefix
        );
        assert_eq!(
            kind(HealthRegistry::builder().timezone("Nowhere/Else")),
            BuildErrorKind::UnknownTimeZone
        );
        assert_eq!(
            kind(HealthRegistry::builder().add(p("db")).add(p("db"))),
            BuildErrorKind::DuplicateProbeName
        );
        assert_eq!(
            kind(HealthRegistry::builder().add(p("a b"))),
            BuildErrorKind::InvalidProbeName
        );
    }
}
