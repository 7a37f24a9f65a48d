//! The data every endpoint, storage backend and alerter speaks: [`Status`],
//! [`ProbeResult`], [`HealthReport`], [`AlertRecord`] and the zone-aware
//! [`Timestamp`] they carry.
//!
//! Field names and their order are part of the HTTP contract: a result always
//! serialises as `name, status, critical, latency_ms, error, description, tags,
//! details`, a report as `status, checked_at, timezone, probes`.
//!
//! ```
//! use axum_watch::{ProbeResult, Status};
//!
//! let result = ProbeResult::new("db", Status::Degraded);
//! assert!(result.is_passing() && !result.is_healthy());
//! assert_eq!(
//!     serde_json::to_string(&result).unwrap(),
//!     r#"{"name":"db","status":"degraded","critical":true,"latency_ms":0.0,"error":null,"description":null,"tags":[],"details":null}"#
//! );
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::fmt::temporal::{DateTimePrinter, Pieces, PiecesOffset};
use jiff::tz::{Offset, TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A probe's own key/value details, in the order the probe inserted them.
pub type Details = serde_json::Map<String, serde_json::Value>;

/// The health of one probe, or of the whole service.
///
/// Ordered from best to worst, so the overall status is the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// All clear.
    Healthy,
    /// Under stress but still serving: readiness stays 200.
    Degraded,
    /// Failing: a critical unhealthy probe makes readiness 503.
    Unhealthy,
}

impl Status {
    /// The status as it appears in JSON: `healthy`, `degraded` or `unhealthy`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// The overall status of a set of results: only critical ones count, the
    /// worst wins, and no critical result at all is healthy.
    ///
    /// This is the single place that decides the service's status.
    ///
    /// ```
    /// use axum_watch::{ProbeResult, Status};
    ///
    /// let results = [
    ///     ProbeResult::new("db", Status::Degraded),
    ///     ProbeResult::new("cache", Status::Unhealthy).with_critical(false),
    /// ];
    /// assert_eq!(Status::overall(&results), Status::Degraded);
    /// ```
    #[must_use]
    pub fn overall<'a>(results: impl IntoIterator<Item = &'a ProbeResult>) -> Self {
        results
            .into_iter()
            .filter(|r| r.critical)
            .map(|r| r.status)
            .max()
            .unwrap_or(Self::Healthy)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "healthy" => Ok(Self::Healthy),
            "degraded" => Ok(Self::Degraded),
            "unhealthy" => Ok(Self::Unhealthy),
            _ => Err(UnknownStatus(s.to_owned())),
        }
    }
}

/// The error of parsing a [`Status`] from a string that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}: expected healthy, degraded or unhealthy")]
pub struct UnknownStatus(String);

/// One probe's result, as shown in reports, history and streams.
///
/// The registry stamps `name`, `critical`, `description`, `tags` and (when the
/// probe did not set it) `latency_ms`; a probe itself only returns an
/// [`Outcome`](crate::Outcome).
///
/// The circuit breaker's state is a typed field, [`circuit`](Self::circuit),
/// not part of the probe's own `details`: it is written into `details` as the
/// `circuit_breaker` object only when the result is encoded (always last, so
/// the JSON reads as it always has), and read back from there when a shared
/// store parses a result it kept.
///
/// ```
/// use axum_watch::{ProbeResult, Status};
/// use axum_watch::model::CircuitState;
///
/// let mut result = ProbeResult::new("db", Status::Unhealthy).with_error("connection refused");
/// result.circuit = Some(CircuitState::new(false, 1, 0));
/// let json = serde_json::to_string(&result).unwrap();
/// assert!(json.ends_with(r#""details":{"circuit_breaker":{"open":false,"consecutive_failures":1,"trips_total":0}}}"#));
/// let back: ProbeResult = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, result);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProbeResult {
    /// The probe's registered name.
    pub name: String,
    /// The probe's status.
    pub status: Status,
    /// Whether the probe counts towards the overall status.
    pub critical: bool,
    /// How long the check took, in milliseconds.
    pub latency_ms: f64,
    /// What went wrong, with credentials redacted; `null` when nothing did.
    pub error: Option<String>,
    /// The probe's description.
    pub description: Option<String>,
    /// The probe's tags, used by `?tag=` filters.
    pub tags: Vec<String>,
    /// The probe's own details as it returned them, redacted by the
    /// registry (secret keys masked whole, credentials in strings masked).
    pub details: Option<Details>,
    /// The circuit breaker's state as of this result, while the breaker is
    /// enabled for the probe; `None` otherwise.
    pub circuit: Option<CircuitState>,
    /// A status change waiting for its threshold: the probe observed another
    /// status than the one reported, not yet often enough in a row. Shown as
    /// the `threshold` object of the details while pending.
    pub pending: Option<Pending>,
    /// When this result was produced, in the registry's zone: the registry
    /// stamps every result it records, so a history can be drawn on a time
    /// axis. Not serialised while `None`.
    pub checked_at: Option<Timestamp>,
    /// The replica that produced the result, as a shared storage backend
    /// labels what it keeps; absent (and not serialised) otherwise.
    pub replica: Option<String>,
}

/// A probe's circuit breaker as of one result: shown as the
/// `circuit_breaker` object of the result's details and as the
/// `probe_circuit_*` metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CircuitState {
    /// Whether the circuit is open: the probe is suspended and not called.
    pub open: bool,
    /// Unhealthy results in a row.
    pub consecutive_failures: u32,
    /// How often the circuit has opened since the registry was built.
    pub trips_total: u64,
}

impl CircuitState {
    /// A state with these values.
    #[must_use]
    pub const fn new(open: bool, consecutive_failures: u32, trips_total: u64) -> Self {
        Self {
            open,
            consecutive_failures,
            trips_total,
        }
    }
}

/// A status change a probe's failure or success threshold holds back: the
/// status observed, how many results in a row have shown it, and how many
/// it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pending {
    /// The status the probe observed, not reported yet.
    pub observed: Status,
    /// Results in a row that observed it.
    pub consecutive: u32,
    /// Results in a row it takes to report it.
    pub needed: u32,
}

impl Pending {
    /// A pending change to `observed`, `consecutive` of `needed` results in.
    #[must_use]
    pub const fn new(observed: Status, consecutive: u32, needed: u32) -> Self {
        Self {
            observed,
            consecutive,
            needed,
        }
    }
}

/// The key the circuit state is shown under in a result's details.
const CIRCUIT_KEY: &str = "circuit_breaker";
/// The key a pending change is shown under in a result's details.
const PENDING_KEY: &str = "threshold";

/// `details` as encoded: the probe's own entries, then a pending change,
/// then the circuit state. A probe detail that happens to share one of those
/// names gives way to the registry's own while it is shown.
struct EncodedDetails<'a> {
    details: Option<&'a Details>,
    pending: Option<Pending>,
    circuit: Option<CircuitState>,
}

impl Serialize for EncodedDetails<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let own = self.details.into_iter().flatten().filter(|(k, _)| {
            !((self.circuit.is_some() && *k == CIRCUIT_KEY) || (self.pending.is_some() && *k == PENDING_KEY))
        });
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in own {
            map.serialize_entry(key, value)?;
        }
        if let Some(pending) = &self.pending {
            map.serialize_entry(PENDING_KEY, pending)?;
        }
        if let Some(circuit) = &self.circuit {
            map.serialize_entry(CIRCUIT_KEY, circuit)?;
        }
        map.end()
    }
}

impl Serialize for ProbeResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields = 8 + usize::from(self.checked_at.is_some()) + usize::from(self.replica.is_some());
        let mut s = serializer.serialize_struct("ProbeResult", fields)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("status", &self.status)?;
        s.serialize_field("critical", &self.critical)?;
        s.serialize_field("latency_ms", &self.latency_ms)?;
        s.serialize_field("error", &self.error)?;
        s.serialize_field("description", &self.description)?;
        s.serialize_field("tags", &self.tags)?;
        if self.circuit.is_some() || self.pending.is_some() {
            let details = EncodedDetails {
                details: self.details.as_ref(),
                pending: self.pending,
                circuit: self.circuit,
            };
            s.serialize_field("details", &details)?;
        } else {
            s.serialize_field("details", &self.details)?;
        }
        if let Some(checked_at) = &self.checked_at {
            s.serialize_field("checked_at", checked_at)?;
        }
        if let Some(replica) = &self.replica {
            s.serialize_field("replica", replica)?;
        }
        s.end()
    }
}

/// A result as it reads in JSON, before the circuit state is taken out of
/// its details.
#[derive(Deserialize)]
struct WireResult {
    name: String,
    status: Status,
    critical: bool,
    latency_ms: f64,
    error: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    details: Option<Details>,
    #[serde(default)]
    checked_at: Option<Timestamp>,
    #[serde(default)]
    replica: Option<String>,
}

/// Takes the registry's own block `key` out of parsed details, when it is there
/// and has the block's shape.
fn take<T: serde::de::DeserializeOwned>(details: &mut Option<Details>, key: &str) -> Option<T> {
    let map = details.as_mut()?;
    let value = serde_json::from_value::<T>(map.get(key)?.clone()).ok()?;
    map.shift_remove(key);
    Some(value)
}

impl<'de> Deserialize<'de> for ProbeResult {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireResult::deserialize(deserializer)?;
        let mut details = wire.details;
        let circuit: Option<CircuitState> = take(&mut details, CIRCUIT_KEY);
        let pending: Option<Pending> = take(&mut details, PENDING_KEY);
        // The blocks were the only entries: the probe itself had no details.
        if (circuit.is_some() || pending.is_some()) && details.as_ref().is_some_and(Details::is_empty) {
            details = None;
        }
        Ok(Self {
            name: wire.name,
            status: wire.status,
            critical: wire.critical,
            latency_ms: wire.latency_ms,
            error: wire.error,
            description: wire.description,
            tags: wire.tags,
            details,
            circuit,
            pending,
            checked_at: wire.checked_at,
            replica: wire.replica,
        })
    }
}

impl ProbeResult {
    /// A critical result with no latency, error, description, tags or details.
    #[must_use]
    pub fn new(name: impl Into<String>, status: Status) -> Self {
        Self {
            name: name.into(),
            status,
            critical: true,
            latency_ms: 0.0,
            error: None,
            description: None,
            tags: Vec::new(),
            details: None,
            circuit: None,
            pending: None,
            checked_at: None,
            replica: None,
        }
    }

    /// Labels the result with the replica that produced it.
    #[must_use]
    pub fn with_replica(mut self, replica: impl Into<String>) -> Self {
        self.replica = Some(replica.into());
        self
    }

    /// Sets whether the result counts towards the overall status.
    #[must_use]
    pub fn with_critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// Sets the error text.
    #[must_use]
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// `true` when the status is exactly healthy.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.status == Status::Healthy
    }

    /// `true` when the status is degraded.
    #[must_use]
    pub fn is_degraded(&self) -> bool {
        self.status == Status::Degraded
    }

    /// `true` unless the status is unhealthy: healthy and degraded both pass.
    #[must_use]
    pub fn is_passing(&self) -> bool {
        self.status != Status::Unhealthy
    }
}

/// The body of `/ready`, `/status` and every stream event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// The overall status, from critical probes only.
    pub status: Status,
    /// When the probes of this report last ran; `null` before any run.
    pub checked_at: Option<Timestamp>,
    /// The IANA zone `checked_at` is shown in.
    pub timezone: Option<String>,
    /// One result per probe, in registration order.
    pub probes: Vec<ProbeResult>,
    /// The names of the critical probes that are unhealthy: what makes the
    /// service unready, in registration order.
    #[serde(default)]
    pub failing: Vec<String>,
}

impl HealthReport {
    /// A report over `probes` with its overall status computed by
    /// [`Status::overall`].
    #[must_use]
    pub fn new(probes: Vec<ProbeResult>, checked_at: Option<Timestamp>, timezone: Option<String>) -> Self {
        let failing = probes
            .iter()
            .filter(|p| p.critical && p.status == Status::Unhealthy)
            .map(|p| p.name.clone())
            .collect();
        Self {
            status: Status::overall(&probes),
            checked_at,
            timezone,
            probes,
            failing,
        }
    }

    /// The result of the probe called `name`, if the report has one.
    #[must_use]
    pub fn probe(&self, name: &str) -> Option<&ProbeResult> {
        self.probes.iter().find(|p| p.name == name)
    }
}

/// A registered probe's configuration as the registry resolved it from the
/// probe's own options and the registry's defaults: what `GET probes` lists
/// (and [`HealthRegistry::probes`](crate::HealthRegistry::probes) returns)
/// without running any probe.
///
/// Durations are shown in milliseconds; `null` where there is none (no
/// timeout, polled on demand only, the breaker off).
///
/// ```
/// use std::time::Duration;
/// use axum_watch::{probe, HealthRegistry, Outcome, ProbeExt};
/// use axum_watch::model::ProbeKind;
///
/// let registry = HealthRegistry::builder()
///     .add(probe::from_fn("db", || async { Ok(Outcome::healthy()) }).with_timeout(Duration::from_secs(2)))
///     .build()
///     .unwrap();
/// let db = &registry.probes()[0];
/// assert_eq!((db.kind, db.timeout), (ProbeKind::Active, Some(Duration::from_secs(2))));
/// assert_eq!(
///     serde_json::to_value(db).unwrap(),
///     serde_json::json!({
///         "name": "db", "kind": "active", "critical": true, "description": null, "tags": [],
///         "timeout_ms": 2000, "poll_interval_ms": 60000,
///         "circuit_breaker": {"enabled": true, "threshold": 5, "cooldown_ms": 600000},
///         "failure_threshold": 1, "success_threshold": 1,
///     })
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeInfo {
    /// The probe's registered name.
    pub name: String,
    /// Whether it makes calls of its own or reads the application's traffic.
    pub kind: ProbeKind,
    /// Whether it counts towards the overall status.
    pub critical: bool,
    /// Its description.
    pub description: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// How long one check may take; `None` for no limit.
    pub timeout: Option<Duration>,
    /// How often the poll loop runs it: its own interval, else the
    /// registry's; `None` when it runs on request only.
    pub poll_interval: Option<Duration>,
    /// The circuit breaker's settings; `None` while the breaker is off.
    pub circuit_breaker: Option<CircuitSettings>,
    /// Results in a row before its reported status worsens.
    pub failure_threshold: u32,
    /// Results in a row before its reported status recovers.
    pub success_threshold: u32,
}

/// Whether a probe calls its dependency or reads the application's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProbeKind {
    /// It makes a call of its own on every check.
    Active,
    /// It reads statistics of calls and requests the application serves
    /// (see [`passive`](crate::passive)).
    Passive,
}

/// A probe's circuit breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircuitSettings {
    /// Unhealthy results in a row that open the circuit.
    pub threshold: u32,
    /// How long the circuit stays open before one trial call.
    pub cooldown: Duration,
}

impl CircuitSettings {
    /// Settings with this threshold and cooldown.
    #[must_use]
    pub const fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold, cooldown }
    }
}

fn millis(duration: Option<Duration>) -> Option<u64> {
    duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Serialize for ProbeInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        #[derive(Serialize)]
        struct Breaker {
            enabled: bool,
            threshold: Option<u32>,
            cooldown_ms: Option<u64>,
        }
        let breaker = Breaker {
            enabled: self.circuit_breaker.is_some(),
            threshold: self.circuit_breaker.map(|c| c.threshold),
            cooldown_ms: millis(self.circuit_breaker.map(|c| c.cooldown)),
        };
        let mut s = serializer.serialize_struct("ProbeInfo", 10)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("critical", &self.critical)?;
        s.serialize_field("description", &self.description)?;
        s.serialize_field("tags", &self.tags)?;
        s.serialize_field("timeout_ms", &millis(self.timeout))?;
        s.serialize_field("poll_interval_ms", &millis(self.poll_interval))?;
        s.serialize_field("circuit_breaker", &breaker)?;
        s.serialize_field("failure_threshold", &self.failure_threshold)?;
        s.serialize_field("success_threshold", &self.success_threshold)?;
        s.end()
    }
}

/// A recorded change of one probe's status, with what on-call needs to act
/// on it: which service and replica, whether the probe is critical, its
/// tags, the (redacted) error of the new result, since when the previous
/// state held, a stable id and, when a public URL is configured, a link to
/// the dashboard.
///
/// The first four fields are the original contract; the others are added
/// by the registry when it records a transition (a record made with
/// [`new`](Self::new) has none of them) and are left out of the JSON while
/// unset.
///
/// ```
/// use axum_watch::{AlertRecord, Status, model::Timestamp};
///
/// let at: Timestamp = "2026-03-29T14:22:01.843000Z".parse().unwrap();
/// let alert = AlertRecord::new("db", Status::Healthy, Status::Unhealthy, at).with_replica("web-1");
/// assert!(alert.is_worse());
/// assert_eq!(
///     serde_json::to_value(&alert).unwrap(),
///     serde_json::json!({
///         "probe": "db", "old_status": "healthy", "new_status": "unhealthy",
///         "timestamp": "2026-03-29T14:22:01.843000Z", "replica": "web-1", "critical": true,
///     })
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertRecord {
    /// The probe's name.
    pub probe: String,
    /// The status before the change.
    pub old_status: Status,
    /// The status after the change; equal to `old_status` in a reminder
    /// that a probe is still unhealthy.
    pub new_status: Status,
    /// When the change was observed, in the registry's zone.
    pub timestamp: Timestamp,
    /// The replica that observed the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// A stable id: the same in the alert log, in every delivery and
    /// redelivery (webhooks send it as the `Idempotency-Key` header), and
    /// different for every other record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The service the registry watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Whether the probe counts towards readiness.
    #[serde(default = "critical_default")]
    pub critical: bool,
    /// The probe's tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The error of the new result, redacted; absent on a recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the previous state began (or when the registry started, for a
    /// probe's first state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// How long the previous state lasted, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// A link to the dashboard, when the registry knows its public URL
    /// ([`HealthRegistryBuilder::public_url`](crate::HealthRegistryBuilder::public_url)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
}

fn critical_default() -> bool {
    true
}

impl AlertRecord {
    /// A record of `probe` going from `old_status` to `new_status` at
    /// `timestamp`, critical, with no other field set.
    #[must_use]
    pub fn new(probe: impl Into<String>, old_status: Status, new_status: Status, timestamp: Timestamp) -> Self {
        Self {
            probe: probe.into(),
            old_status,
            new_status,
            timestamp,
            replica: None,
            id: String::new(),
            service: None,
            critical: true,
            tags: Vec::new(),
            error: None,
            since: None,
            duration_ms: None,
            dashboard_url: None,
        }
    }

    /// Labels the record with the replica that observed the change.
    #[must_use]
    pub fn with_replica(mut self, replica: impl Into<String>) -> Self {
        self.replica = Some(replica.into());
        self
    }

    /// Whether the probe got worse (a reminder is neither worse nor better).
    #[must_use]
    pub fn is_worse(&self) -> bool {
        self.new_status > self.old_status
    }

    /// Whether the probe recovered, fully or partly.
    #[must_use]
    pub fn is_recovery(&self) -> bool {
        self.new_status < self.old_status
    }

    /// Whether this is a reminder that the probe is still in its state.
    #[must_use]
    pub fn is_reminder(&self) -> bool {
        self.new_status == self.old_status
    }

    /// One line for people: `checkout/db is unhealthy (was healthy): connection refused`.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut line = String::new();
        if let Some(service) = &self.service {
            line.push_str(service);
            line.push('/');
        }
        line.push_str(&self.probe);
        if self.is_reminder() {
            line.push_str(&format!(" is still {}", self.new_status));
        } else {
            line.push_str(&format!(" is {} (was {})", self.new_status, self.old_status));
        }
        if let Some(error) = &self.error {
            line.push_str(": ");
            line.push_str(error);
        }
        line
    }
}

/// Where the service is in its life, as every face reports it.
///
/// `Starting` (within the grace period) → `Serving` → `Draining` (from
/// [`HealthRegistry::drain`](crate::HealthRegistry::drain): readiness fails
/// first, streams end, queues flush) → `Stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Lifecycle {
    /// Within the grace period: `/ready` answers 503 `starting`.
    Starting,
    /// Ready when the probes say so.
    Serving,
    /// Shutting down: `/ready` answers 503 `draining`, `/live` stays 200.
    Draining,
    /// Drained: streams have ended and no probe runs any more.
    Stopped,
}

impl Lifecycle {
    /// The state as it appears in JSON and metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Serving => "serving",
            Self::Draining => "draining",
            Self::Stopped => "stopped",
        }
    }
}

/// Whether maintenance is on, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MaintenanceStatus {
    /// Whether maintenance mode is on.
    pub active: bool,
    /// When it ends by itself; `None` while off or when it has no end.
    pub until: Option<Timestamp>,
}

/// `value` rounded to `places` decimals, as figures are shown in reports
/// (`latency_ms` and probe details).
pub(crate) fn round(value: f64, places: i32) -> f64 {
    let scale = 10_f64.powi(places);
    (value * scale).round() / scale
}

/// An instant together with the UTC offset it is shown at.
///
/// It renders as RFC 3339 with microseconds: `Z` for UTC
/// (`2026-11-20T23:49:26.963148Z`), the numeric offset otherwise
/// (`2026-11-20T18:49:26.963148-05:00`).
///
/// ```
/// use axum_watch::model::Timestamp;
///
/// let t: Timestamp = "2026-11-20T18:49:26.963148-05:00".parse().unwrap();
/// assert_eq!(t.to_string(), "2026-11-20T18:49:26.963148-05:00");
/// assert_eq!(t.instant().to_string(), "2026-11-20T23:49:26.963148Z");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    instant: jiff::Timestamp,
    offset: Offset,
}

impl Timestamp {
    /// The current time, shown in `zone`.
    #[must_use]
    pub fn now_in(zone: &TimeZone) -> Self {
        Self::at(jiff::Timestamp::now(), zone)
    }

    /// `instant`, shown in `zone`.
    #[must_use]
    pub fn at(instant: jiff::Timestamp, zone: &TimeZone) -> Self {
        Self {
            instant,
            offset: zone.to_offset(instant),
        }
    }

    /// `instant`, shown at a fixed `offset`.
    #[must_use]
    pub fn with_offset(instant: jiff::Timestamp, offset: Offset) -> Self {
        Self { instant, offset }
    }

    /// The instant itself.
    #[must_use]
    pub fn instant(&self) -> jiff::Timestamp {
        self.instant
    }

    /// The offset the instant is shown at.
    #[must_use]
    pub fn offset(&self) -> Offset {
        self.offset
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let printer = DateTimePrinter::new().precision(Some(6));
        let mut out = String::with_capacity(32);
        let printed = if self.offset == Offset::UTC {
            printer.print_timestamp(&self.instant, &mut out)
        } else {
            printer.print_timestamp_with_offset(&self.instant, self.offset, &mut out)
        };
        printed.map_err(|_| fmt::Error)?;
        f.write_str(&out)
    }
}

/// The error of parsing a [`Timestamp`] from text that is not RFC 3339 with
/// an offset.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid timestamp {input:?}: {reason}")]
pub struct InvalidTimestamp {
    input: String,
    reason: String,
}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| InvalidTimestamp {
            input: s.to_owned(),
            reason,
        };
        let pieces = Pieces::parse(s).map_err(|e| fail(e.to_string()))?;
        let offset = match pieces.offset() {
            Some(PiecesOffset::Zulu) => Offset::UTC,
            Some(PiecesOffset::Numeric(n)) => n.offset(),
            Some(_) => return Err(fail("its UTC offset is unknown".to_owned())),
            None => return Err(fail("it carries no UTC offset".to_owned())),
        };
        let instant: jiff::Timestamp = s.parse().map_err(|e: jiff::Error| fail(e.to_string()))?;
        Ok(Self { instant, offset })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, status: Status, critical: bool) -> ProbeResult {
        ProbeResult::new(name, status).with_critical(critical)
    }

    #[test]
    fn overall_counts_only_critical_and_worst_wins() {
        use Status::*;
        let cases: &[(&[(Status, bool)], Status)] = &[
            (&[], Healthy),
            (&[(Healthy, true)], Healthy),
            (&[(Degraded, true), (Healthy, true)], Degraded),
            (&[(Degraded, true), (Unhealthy, true)], Unhealthy),
            (&[(Unhealthy, false), (Healthy, true)], Healthy),
            (&[(Unhealthy, false), (Degraded, false)], Healthy),
            (&[(Unhealthy, false), (Degraded, true)], Degraded),
        ];
        for (input, want) in cases {
            let results: Vec<_> = input.iter().map(|(s, c)| result("p", *s, *c)).collect();
            assert_eq!(Status::overall(&results), *want, "{input:?}");
        }
    }

    #[test]
    fn status_round_trips_through_text() {
        for s in [Status::Healthy, Status::Degraded, Status::Unhealthy] {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("Healthy".parse::<Status>().is_err());
    }

    #[test]
    fn result_serialises_fields_in_contract_order() {
        let mut details = Details::new();
        details.insert("zeta".into(), 1.into());
        details.insert("alpha".into(), 2.into());
        let mut r = result("db", Status::Unhealthy, false).with_error("boom");
        r.latency_ms = 1.25;
        r.tags = vec!["infra".into()];
        r.details = Some(details);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"name":"db","status":"unhealthy","critical":false,"latency_ms":1.25,"error":"boom","description":null,"tags":["infra"],"details":{"zeta":1,"alpha":2}}"#
        );
        let back: ProbeResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn timestamps_render_z_for_utc_and_offsets_otherwise() {
        let instant: jiff::Timestamp = "2026-11-20T23:49:26.963148Z".parse().unwrap();
        let utc = Timestamp::at(instant, &TimeZone::UTC);
        assert_eq!(utc.to_string(), "2026-11-20T23:49:26.963148Z");
        let fixed = Timestamp::with_offset(instant, Offset::from_hours(-5).unwrap());
        assert_eq!(fixed.to_string(), "2026-11-20T18:49:26.963148-05:00");
        let whole: jiff::Timestamp = "2026-11-20T23:49:26Z".parse().unwrap();
        assert_eq!(
            Timestamp::at(whole, &TimeZone::UTC).to_string(),
            "2026-11-20T23:49:26.000000Z"
        );
    }

    #[test]
    fn timestamps_parse_back_with_their_offset() {
        for text in [
            "2026-11-20T23:49:26.963148Z",
            "2026-11-20T18:49:26.963148-05:00",
            "2026-01-01T09:00:00.000000+05:30",
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        }
        let naive = "2030-01-01T00:00:00".parse::<Timestamp>().unwrap_err();
        assert!(naive.to_string().contains("no UTC offset"), "{naive}");
        assert!("yesterday".parse::<Timestamp>().is_err());
    }

    #[test]
    fn alert_record_serialises_as_the_contract_says() {
        let t: Timestamp = "2026-03-29T14:22:01.843000Z".parse().unwrap();
        let a = AlertRecord::new("redis", Status::Healthy, Status::Unhealthy, t);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"probe":"redis","old_status":"healthy","new_status":"unhealthy","timestamp":"2026-03-29T14:22:01.843000Z","critical":true}"#
        );
        // A record written before the on-call fields existed reads back.
        let old: AlertRecord = serde_json::from_str(
            r#"{"probe":"redis","old_status":"healthy","new_status":"unhealthy","timestamp":"2026-03-29T14:22:01.843000Z"}"#,
        )
        .unwrap();
        assert_eq!(old, a);
    }
}
