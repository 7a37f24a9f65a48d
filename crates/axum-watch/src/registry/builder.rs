//! [`HealthRegistryBuilder`]: every option of the registry, validated once in
//! [`build`](HealthRegistryBuilder::build).

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;

use super::callbacks::Callback;
use super::circuit::CircuitPolicy;
use super::engine::Entry;
use super::group::{ProbeGroup, Registration};
use super::{Config, HealthRegistry, Inner};
use crate::alert::{Alerter, AlerterHandle, DispatchPolicy, Dispatcher};
use crate::http::auth::{Auth, AuthRequest, Credentials, OPENABLE};
use crate::http::dashboard::{Dashboard, DashboardContext};
use crate::model::AlertRecord;
use crate::probe::{ProbeHandle, Timeout};
use crate::storage::{DynStorage, MemoryStorage, Storage};

/// The shortest poll interval; shorter ones are raised to it.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

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
#[must_use]
pub struct HealthRegistryBuilder {
    prefix: String,
    poll_interval: Option<Duration>,
    cache_age: Duration,
    timeout: Option<Duration>,
    grace_period: Duration,
    history_size: usize,
    result_ttl: Duration,
    alert_ttl: Duration,
    max_alerts: usize,
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
    credentials: Option<Result<Credentials, String>>,
    alerters: Vec<AlerterHandle>,
    /// The first invalid [`webhook_url`](Self::webhook_url), refused by `build`.
    #[cfg(feature = "alerts")]
    invalid_alerter: Option<String>,
    dispatch: DispatchPolicy,
    open_endpoints: Vec<String>,
    alert_dedup_window: Duration,
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
            history_size: MemoryStorage::DEFAULT_HISTORY_SIZE,
            result_ttl: MemoryStorage::DEFAULT_RESULT_TTL,
            alert_ttl: MemoryStorage::DEFAULT_ALERT_TTL,
            max_alerts: MemoryStorage::DEFAULT_MAX_ALERTS,
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
            #[cfg(feature = "alerts")]
            invalid_alerter: None,
            dispatch: DispatchPolicy::default(),
            open_endpoints: Vec::new(),
            alert_dedup_window: Duration::from_secs(60),
        }
    }
}

impl HealthRegistryBuilder {
    /// The path every endpoint lives under: `""` or `/segment[/segment…]`
    /// without a trailing slash.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How often the poll loop runs the probes while stream clients are
    /// connected; under 1 s is raised to 1 s, `None` runs probes only on demand.
    pub fn poll_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.poll_interval = interval.into().filter(|d| !d.is_zero());
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

    /// Results kept per probe by the default storage (at least 1).
    pub fn history_size(mut self, size: usize) -> Self {
        self.history_size = size;
        self
    }

    /// How long results stay in history, and how long a circuit-open probe
    /// may keep serving its last result (zero = no age limit).
    pub fn result_ttl(mut self, ttl: Duration) -> Self {
        self.result_ttl = ttl;
        self
    }

    /// How long alert records stay in the log of the default storage.
    pub fn alert_ttl(mut self, ttl: Duration) -> Self {
        self.alert_ttl = ttl;
        self
    }

    /// Alert records kept by the default storage (at least 1).
    pub fn max_alerts(mut self, max: usize) -> Self {
        self.max_alerts = max;
        self
    }

    /// The IANA zone of `checked_at` and alert timestamps.
    pub fn timezone(mut self, zone: impl Into<String>) -> Self {
        self.timezone = zone.into();
        self
    }

    /// Replaces the in-memory storage; the history and alert limits above
    /// then belong to that backend's own configuration.
    pub fn storage(mut self, storage: impl Storage) -> Self {
        self.storage = Some(Arc::new(storage));
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
        self.credentials = Some(Credentials::basic(username.as_ref(), password.as_ref()));
        self
    }

    /// Requires `key` in the `X-API-Key` header on every endpoint (403
    /// otherwise).
    pub fn api_key(self, key: impl AsRef<str>) -> Self {
        self.api_key_header("x-api-key", key)
    }

    /// Requires `key` in the `header` header on every endpoint.
    pub fn api_key_header(mut self, header: impl AsRef<str>, key: impl AsRef<str>) -> Self {
        self.credentials = Some(Credentials::api_key(header.as_ref(), key.as_ref()));
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
    pub fn open_endpoints<I, T>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.open_endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Calls `alerter` on every transition outside maintenance, from its own
    /// bounded queue so that it never delays a check or another alerter.
    pub fn alerter(mut self, alerter: impl Alerter) -> Self {
        self.alerters.push(AlerterHandle::new(alerter));
        self
    }

    /// Posts every transition as JSON to `url` with a
    /// [`WebhookAlerter`](crate::WebhookAlerter); a URL that is not `http` or
    /// `https` makes [`build`](Self::build) fail.
    #[cfg(feature = "alerts")]
    pub fn webhook_url(mut self, url: impl AsRef<str>) -> Self {
        match crate::alert::WebhookAlerter::new(url) {
            Ok(webhook) => self.alerters.push(AlerterHandle::new(webhook)),
            Err(e) => {
                self.invalid_alerter.get_or_insert(e.to_string());
            }
        }
        self
    }

    /// Alerts each alerter's queue holds before new ones are dropped
    /// (default 256, at least 1).
    pub fn alert_queue(mut self, size: usize) -> Self {
        self.dispatch.queue = size.max(1);
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

    /// With a storage several replicas share, how long the replica that
    /// first claims a transition (same probe, same old and new status) is
    /// the only one whose alerters send it (default 60 s; zero sends from
    /// every replica). Others still record the transition. When the store
    /// cannot be asked, the replica sends: a duplicate page beats a missed one.
    pub fn alert_dedup_window(mut self, window: Duration) -> Self {
        self.alert_dedup_window = window;
        self
    }

    /// Validates the options and the probes and makes the registry.
    ///
    /// # Errors
    ///
    /// A probe name that does not match `[A-Za-z0-9_.:-]+`, two different
    /// probes with one name, a malformed prefix or an unknown time zone.
    pub fn build(self) -> Result<HealthRegistry, BuildError> {
        validate_prefix(&self.prefix)?;
        #[cfg(feature = "alerts")]
        if let Some(message) = &self.invalid_alerter {
            return Err(BuildError::new(message.clone()));
        }
        let auth = match self.credentials.clone() {
            None if !self.open_endpoints.is_empty() => {
                return Err(BuildError::new(
                    "open endpoints were given but no authentication".to_owned(),
                ));
            }
            None => None,
            Some(credentials) => {
                let credentials = credentials.map_err(BuildError::new)?;
                let mut open = HashSet::new();
                for endpoint in &self.open_endpoints {
                    if !OPENABLE.contains(&endpoint.as_str()) {
                        return Err(BuildError::new(format!(
                            "endpoint {endpoint:?} cannot be left open: choose from {}",
                            OPENABLE.join(", ")
                        )));
                    }
                    open.insert(endpoint.clone());
                }
                Some(Arc::new(Auth { credentials, open }))
            }
        };
        let zone = TimeZone::get(&self.timezone)
            .map_err(|e| BuildError::new(format!("unknown time zone {:?}: {e}", self.timezone)))?;
        let policy = CircuitPolicy {
            threshold: self.circuit_threshold.max(1),
            cooldown: self.circuit_cooldown,
        };
        let entries = self.entries(self.probes.clone(), policy, true)?;
        let startup = self.entries(self.startup.clone(), policy, false)?;
        let storage = self.storage.unwrap_or_else(|| {
            Arc::new(
                MemoryStorage::builder()
                    .history_size(self.history_size)
                    .result_ttl(self.result_ttl)
                    .alert_ttl(self.alert_ttl)
                    .max_alerts(self.max_alerts)
                    .build(),
            )
        });
        let config = Config {
            prefix: self.prefix,
            poll_interval: self.poll_interval.map(|d| d.max(MIN_POLL_INTERVAL)),
            cache_age: self.cache_age,
            grace_period: self.grace_period,
            result_ttl: self.result_ttl,
            alert_dedup_window: self.alert_dedup_window,
            zone,
            zone_name: self.timezone,
            dashboard: self.dashboard,
            allow_unauthenticated_maintenance: self.allow_unauthenticated_maintenance,
            auth,
        };
        Ok(HealthRegistry {
            inner: Arc::new(Inner::new(
                config,
                entries,
                startup,
                storage,
                self.callbacks,
                Dispatcher::new(self.alerters, self.dispatch),
            )),
        })
    }

    fn entries(
        &self,
        group: ProbeGroup,
        policy: CircuitPolicy,
        circuit_allowed: bool,
    ) -> Result<Vec<Arc<Entry>>, BuildError> {
        let mut entries: Vec<Arc<Entry>> = Vec::new();
        for Registration {
            probe,
            critical,
            extra_tags,
        } in group.into_registrations()
        {
            let name = probe.name().to_owned();
            if !is_valid_name(&name) {
                return Err(BuildError::new(format!(
                    "invalid probe name {name:?}: names must match [A-Za-z0-9_.:-]+"
                )));
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(BuildError::new(format!(
                    "two different probes are named {name:?}: probe names must be unique"
                )));
            }
            let options = probe.0.options();
            let timeout = match options.timeout {
                Timeout::Inherit => self.timeout,
                Timeout::After(d) => Some(d),
                Timeout::Disabled => None,
            };
            let circuit =
                (circuit_allowed && options.circuit_breaker.unwrap_or(self.circuit_breaker)).then(|| CircuitPolicy {
                    threshold: options.circuit_threshold.unwrap_or(policy.threshold).max(1),
                    cooldown: options.circuit_cooldown.unwrap_or(policy.cooldown),
                });
            let mut tags = probe.0.tags();
            for t in extra_tags {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            let poll_interval = options.poll_interval.map(|d| d.max(MIN_POLL_INTERVAL));
            entries.push(Arc::new(Entry::new(
                probe,
                name,
                critical,
                tags,
                timeout,
                poll_interval,
                circuit,
            )));
        }
        Ok(entries)
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
        Err(BuildError::new(format!(
            "invalid prefix {prefix:?}: use \"\" or \"/segment[/segment…]\" without a trailing slash"
        )))
    }
}

/// Why a registry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    message: String,
}

impl BuildError {
    fn new(message: String) -> Self {
        Self { message }
    }
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
}
