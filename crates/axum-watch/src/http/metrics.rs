//! `GET metrics`: the report in the Prometheus text format 0.0.4, or in
//! OpenMetrics 1.0 when the scraper's `Accept` asks for it.
//!
//! Encoders are plain functions writing into a `String`; every family is
//! introduced by its HELP and TYPE lines even when there are no probes.

use std::fmt::Write;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};

use super::Face;

use crate::alert::AlerterDeliveries;
use crate::engine::{Encoding, Refusal, Scheduling, Snapshot};
use crate::model::Lifecycle;
use crate::model::{CircuitState, HealthReport, ProbeResult, Status};
use crate::storage::WriteBufferStats;

/// The text formats `metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    fn from_accept(headers: &HeaderMap) -> Self {
        let wants_openmetrics = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        if wants_openmetrics {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        })
    }
}

pub(super) async fn metrics(State(face): State<Face>, headers: HeaderMap) -> Response {
    let format = Format::from_accept(&headers);
    let engine = &face.engine;
    let snapshot = engine.report().await;
    let deliveries = engine.deliveries();
    let process = Process {
        alerts_dropped: engine.alerts_dropped(),
        probes_refused: engine.probes_refused(),
        deliveries: &deliveries,
        storage: engine.replica().map(|replica| (replica, engine.write_buffer())),
        lifecycle: engine.lifecycle(),
        scheduling: engine.scheduling(),
    };
    // The probes' families are encoded once per snapshot and format; only
    // the process's few lines are written per scrape.
    let slot = match format {
        Format::Prometheus => PROMETHEUS,
        Format::OpenMetrics => OPENMETRICS,
    };
    let probes = snapshot.encoded(slot, |report| {
        let mut out = String::with_capacity(256 + report.probes.len() * 560);
        encode_probes(&mut out, report, format);
        Bytes::from(out)
    });
    let scrape = face.scrapes.scrape(format, &snapshot, &probes, &process);
    #[cfg(feature = "gzip")]
    let (body, gzipped) = if gzip::accepted(&headers) {
        (scrape.gzipped(), true)
    } else {
        (scrape.body.clone(), false)
    };
    #[cfg(not(feature = "gzip"))]
    let body = scrape.body.clone();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, format.content_type());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    #[cfg(feature = "gzip")]
    {
        headers.insert(http::header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzipped {
            headers.insert(http::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    }
    response
}

/// `Accept-Encoding` and the compressed form of a scrape's body.
#[cfg(feature = "gzip")]
mod gzip {
    use std::io::Write as _;

    use bytes::Bytes;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use http::HeaderMap;
    use http::header::ACCEPT_ENCODING;

    /// Whether the request's `Accept-Encoding` accepts gzip: `gzip` (or
    /// `x-gzip`) with a non-zero quality, or `*` when gzip is not named.
    pub(super) fn accepted(headers: &HeaderMap) -> bool {
        let mut named = None;
        let mut any = false;
        for value in headers.get_all(ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or_default().trim();
                let quality = parts
                    .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    named = Some(named.unwrap_or(false) || quality > 0.0);
                } else if coding == "*" {
                    any = quality > 0.0;
                }
            }
        }
        named.unwrap_or(any)
    }

    /// `body` compressed with gzip at the fast level: text metrics shrink
    /// five- to fifteenfold at it, and a body is compressed once.
    pub(super) fn compress(body: &[u8]) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 6 + 64), Compression::fast());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(body);
        Bytes::from(encoder.finish().unwrap_or_default())
    }
}

/// The last body `/metrics` answered in each format: while the snapshot
/// and the process's state stay the same, a scrape answers it again
/// instead of writing the process's lines and copying the probes' families
/// into a new body.
#[derive(Debug, Default)]
pub(crate) struct Scrapes {
    last: [ArcSwapOption<Scrape>; 2],
}

#[derive(Debug)]
struct Scrape {
    snapshot: Arc<Snapshot>,
    process: OwnedProcess,
    body: Bytes,
    /// `body` gzip-compressed, made by the first scrape that accepts it.
    #[cfg(feature = "gzip")]
    gzipped: std::sync::OnceLock<Bytes>,
}

impl Scrape {
    #[cfg(feature = "gzip")]
    fn gzipped(&self) -> Bytes {
        self.gzipped.get_or_init(|| gzip::compress(&self.body)).clone()
    }
}

/// What a [`Process`] holds, owned, to compare the next scrape's with.
#[derive(Debug)]
struct OwnedProcess {
    alerts_dropped: u64,
    probes_refused: Option<[(Refusal, u64); 3]>,
    deliveries: Vec<AlerterDeliveries>,
    storage: Option<(String, WriteBufferStats)>,
    lifecycle: Lifecycle,
    scheduling: Scheduling,
}

impl OwnedProcess {
    fn of(process: &Process<'_>) -> Self {
        Self {
            alerts_dropped: process.alerts_dropped,
            probes_refused: process.probes_refused,
            deliveries: process.deliveries.to_vec(),
            storage: process.storage.map(|(replica, buffer)| (replica.to_owned(), buffer)),
            lifecycle: process.lifecycle,
            scheduling: process.scheduling,
        }
    }

    fn is(&self, process: &Process<'_>) -> bool {
        self.alerts_dropped == process.alerts_dropped
            && self.probes_refused == process.probes_refused
            && self.deliveries == process.deliveries
            && self
                .storage
                .as_ref()
                .map(|(replica, buffer)| (replica.as_str(), *buffer))
                == process.storage
            && self.lifecycle == process.lifecycle
            && self.scheduling == process.scheduling
    }
}

impl Scrapes {
    /// The scrape for `snapshot` (whose families in `format` are `probes`)
    /// and the process's state now.
    fn scrape(&self, format: Format, snapshot: &Arc<Snapshot>, probes: &Bytes, process: &Process<'_>) -> Arc<Scrape> {
        let last = &self.last[usize::from(format == Format::OpenMetrics)];
        if let Some(scrape) = &*last.load()
            && Arc::ptr_eq(&scrape.snapshot, snapshot)
            && scrape.process.is(process)
        {
            return Arc::clone(scrape);
        }
        let mut tail = String::with_capacity(1024);
        encode_process(&mut tail, process, format);
        let mut body = BytesMut::with_capacity(probes.len() + tail.len());
        body.extend_from_slice(probes);
        body.extend_from_slice(tail.as_bytes());
        let scrape = Arc::new(Scrape {
            snapshot: Arc::clone(snapshot),
            process: OwnedProcess::of(process),
            body: body.freeze(),
            #[cfg(feature = "gzip")]
            gzipped: std::sync::OnceLock::new(),
        });
        last.store(Some(Arc::clone(&scrape)));
        scrape
    }
}

/// One metric family: how to read its value off a result.
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) counter: bool,
    /// Whether values are fractional; others are whole numbers.
    pub(crate) float: bool,
    pub(crate) value: fn(&ProbeResult) -> f64,
}

impl Family {
    /// Writes the sample's value for `result`.
    fn write_value(&self, out: &mut String, result: &ProbeResult) {
        let v = (self.value)(result);
        if self.float {
            write_float(out, v);
        } else {
            let _ = write!(out, "{v}");
        }
    }
}

/// The slots of a snapshot's encoded metrics, one per format.
const PROMETHEUS: Encoding = Encoding(2);
const OPENMETRICS: Encoding = Encoding(3);

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// The typed circuit state of a result; all zero while the breaker is off.
fn breaker(result: &ProbeResult) -> CircuitState {
    result.circuit.unwrap_or_default()
}

#[allow(clippy::cast_precision_loss)] // counts stay far below 2^53
fn count(n: u64) -> f64 {
    n as f64
}

pub(crate) const FAMILIES: &[Family] = &[
    Family {
        name: "probe_healthy",
        help: "1 if probe status is healthy, 0 otherwise",
        counter: false,
        float: false,
        value: |r| flag(r.status == Status::Healthy),
    },
    Family {
        name: "probe_degraded",
        help: "1 if probe status is degraded (warning), 0 otherwise",
        counter: false,
        float: false,
        value: |r| flag(r.status == Status::Degraded),
    },
    Family {
        name: "probe_latency_ms",
        help: "Last observed probe check latency in milliseconds",
        counter: false,
        float: true,
        value: |r| r.latency_ms,
    },
    Family {
        name: "probe_circuit_open",
        help: "1 if the circuit breaker is currently open for this probe",
        counter: false,
        float: false,
        value: |r| flag(breaker(r).open),
    },
    Family {
        name: "probe_circuit_consecutive_failures",
        help: "Current consecutive failure count for this probe",
        counter: false,
        float: false,
        value: |r| count(u64::from(breaker(r).consecutive_failures)),
    },
    Family {
        name: "probe_circuit_trips_total",
        help: "Total lifetime circuit breaker trips for this probe",
        counter: true,
        float: false,
        value: |r| count(breaker(r).trips_total),
    },
    Family {
        name: "probe_no_data",
        help: "1 if a passive probe saw no traffic within its window span, 0 otherwise",
        counter: false,
        float: false,
        value: |r| flag(no_data(r)),
    },
];

/// Whether a result says its probe saw no recent traffic: passive probes
/// mark it with `"traffic": "none"` in their details (the status stays
/// healthy, so the three-state contract holds).
fn no_data(result: &ProbeResult) -> bool {
    result
        .details
        .as_ref()
        .and_then(|d| d.get("traffic"))
        .is_some_and(|v| v == "none")
}

/// A sample value: integers as `1.0`-style floats are fine for both formats;
/// special values use the spellings the parsers expect.
#[cfg(test)]
pub(crate) fn float(v: f64) -> String {
    let mut out = String::new();
    write_float(&mut out, v);
    out
}

/// Writes a sample value: special values in the spellings the parsers expect.
fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v:?}");
    }
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
#[cfg(test)]
pub(crate) fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    write_label(&mut out, value);
    out
}

/// Writes a label value escaped, without allocating: runs of plain
/// characters are copied whole.
fn write_label(out: &mut String, value: &str) {
    let mut plain = 0;
    for (at, c) in value.char_indices() {
        let escaped = match c {
            '\\' => "\\\\",
            '"' => "\\\"",
            '\n' => "\\n",
            _ => continue,
        };
        out.push_str(&value[plain..at]);
        out.push_str(escaped);
        plain = at + 1;
    }
    out.push_str(&value[plain..]);
}

/// `health_status`: 0 unhealthy, 1 degraded, 2 healthy.
pub(crate) fn overall_value(status: Status) -> u8 {
    match status {
        Status::Unhealthy => 0,
        Status::Degraded => 1,
        Status::Healthy => 2,
    }
}

/// What `/metrics` shows beside the report: the process's own state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Process<'a> {
    pub(crate) alerts_dropped: u64,
    /// Probes refused at runtime by reason, once probes were added or
    /// removed at runtime.
    pub(crate) probes_refused: Option<[(Refusal, u64); 3]>,
    /// What each alerter did with its alerts.
    pub(crate) deliveries: &'a [AlerterDeliveries],
    /// This replica's id and the shared storage's write buffer, when one is configured.
    pub(crate) storage: Option<(&'a str, WriteBufferStats)>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) scheduling: Scheduling,
}

impl Default for Process<'_> {
    fn default() -> Self {
        Self {
            alerts_dropped: 0,
            probes_refused: None,
            deliveries: &[],
            storage: None,
            lifecycle: Lifecycle::Serving,
            scheduling: Scheduling::WhileWatched,
        }
    }
}

/// Every lifecycle state, for the `health_lifecycle` state set.
pub(crate) const LIFECYCLE: [Lifecycle; 4] = [
    Lifecycle::Starting,
    Lifecycle::Serving,
    Lifecycle::Draining,
    Lifecycle::Stopped,
];

/// Every scheduling mode in force, for `health_scheduling_mode`.
pub(crate) const SCHEDULING: [Scheduling; 3] =
    [Scheduling::Background, Scheduling::WhileWatched, Scheduling::OnRequest];

/// The whole exposition for `report` and the process's state.
#[cfg(test)]
pub(crate) fn encode(report: &HealthReport, process: &Process<'_>, format: Format) -> String {
    let mut out = String::with_capacity(256 + report.probes.len() * 560);
    encode_probes(&mut out, report, format);
    encode_process(&mut out, process, format);
    out
}

/// Every probe family and the overall status: what depends on the report
/// alone, so it is encoded once per snapshot.
fn encode_probes(out: &mut String, report: &HealthReport, format: Format) {
    for family in FAMILIES {
        // OpenMetrics names a counter family without its `_total` suffix.
        let family_name = match format {
            Format::OpenMetrics if family.counter => family.name.trim_end_matches("_total"),
            _ => family.name,
        };
        let kind = if family.counter { "counter" } else { "gauge" };
        let _ = writeln!(out, "# HELP {family_name} {}", family.help);
        let _ = writeln!(out, "# TYPE {family_name} {kind}");
        for result in &report.probes {
            out.push_str(family.name);
            out.push_str("{name=\"");
            write_label(out, &result.name);
            out.push_str(if result.critical {
                "\",critical=\"true\"} "
            } else {
                "\",critical=\"false\"} "
            });
            family.write_value(out, result);
            out.push('\n');
        }
    }
    let overall = overall_value(report.status);
    out.push_str("# HELP health_status Overall status: 0 unhealthy, 1 degraded, 2 healthy\n");
    out.push_str("# TYPE health_status gauge\n");
    let _ = writeln!(out, "health_status {overall}");
}

/// The process's own state, written per scrape: lifecycle, scheduling,
/// dropped alerts and the shared store's buffer.
fn encode_process(out: &mut String, process: &Process<'_>, format: Format) {
    out.push_str(
        "# HELP health_lifecycle 1 for the service's lifecycle state: starting, serving, draining or stopped\n",
    );
    out.push_str("# TYPE health_lifecycle gauge\n");
    for state in LIFECYCLE {
        let on = u8::from(state == process.lifecycle);
        let _ = writeln!(out, "health_lifecycle{{state=\"{}\"}} {on}", state.as_str());
    }
    out.push_str(
        "# HELP health_scheduling_mode 1 for how probes are scheduled: background, while_watched or on_request\n",
    );
    out.push_str("# TYPE health_scheduling_mode gauge\n");
    for mode in SCHEDULING {
        let on = u8::from(mode == process.scheduling);
        let _ = writeln!(out, "health_scheduling_mode{{mode=\"{}\"}} {on}", mode.as_str());
    }
    let dropped_family = match format {
        Format::Prometheus => "health_alerts_dropped_total",
        Format::OpenMetrics => "health_alerts_dropped",
    };
    let _ = writeln!(
        out,
        "# HELP {dropped_family} Alerts dropped because an alerter's queue was full"
    );
    let _ = writeln!(out, "# TYPE {dropped_family} counter");
    let _ = writeln!(out, "health_alerts_dropped_total {}", process.alerts_dropped);
    if let Some(refused) = process.probes_refused {
        let family = match format {
            Format::Prometheus => "health_probes_refused_total",
            Format::OpenMetrics => "health_probes_refused",
        };
        let _ = writeln!(out, "# HELP {family} {REFUSED_HELP}");
        let _ = writeln!(out, "# TYPE {family} counter");
        for (reason, count) in refused {
            let _ = writeln!(
                out,
                "health_probes_refused_total{{reason=\"{}\"}} {count}",
                reason.as_str()
            );
        }
    }
    if !process.deliveries.is_empty() {
        encode_deliveries(out, process.deliveries, format);
    }
    if let Some((replica, buffer)) = process.storage {
        encode_write_buffer(out, replica, buffer, format);
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
}

/// Each alerter's delivery outcomes and queue.
fn encode_deliveries(out: &mut String, deliveries: &[AlerterDeliveries], format: Format) {
    let family = match format {
        Format::Prometheus => "health_alert_deliveries_total",
        Format::OpenMetrics => "health_alert_deliveries",
    };
    let _ = writeln!(out, "# HELP {family} {DELIVERIES_HELP}");
    let _ = writeln!(out, "# TYPE {family} counter");
    let mut name = String::new();
    for alerter in deliveries {
        name.clear();
        write_label(&mut name, &alerter.alerter);
        for (outcome, value) in delivery_outcomes(alerter) {
            let _ = writeln!(
                out,
                "health_alert_deliveries_total{{alerter=\"{name}\",outcome=\"{outcome}\"}} {value}"
            );
        }
    }
    let _ = writeln!(out, "# HELP health_alert_queue {QUEUE_HELP}");
    out.push_str("# TYPE health_alert_queue gauge\n");
    for alerter in deliveries {
        name.clear();
        write_label(&mut name, &alerter.alerter);
        let _ = writeln!(out, "health_alert_queue{{alerter=\"{name}\"}} {}", alerter.waiting);
    }
}

/// The help text of `health_probes_refused_total`.
pub(crate) const REFUSED_HELP: &str = "Probes refused at runtime: duplicate (a name registered already), limit (max_runtime_probes reached), invalid (a name or option)";

/// The help texts of the delivery families, shared with the exporter.
pub(crate) const DELIVERIES_HELP: &str = "Alerts per alerter and outcome: sent (redelivered: sent after its retries ran out once), failed (retries ran out; kept for redelivery), rejected (a permanent error), dropped (pushed out of a full queue)";
pub(crate) const QUEUE_HELP: &str = "Alerts waiting per alerter: queued, or kept for redelivery";

/// Each outcome an alerter counts, with its count.
pub(crate) fn delivery_outcomes(alerter: &AlerterDeliveries) -> [(&'static str, u64); 5] {
    [
        ("sent", alerter.sent),
        ("redelivered", alerter.redelivered),
        ("failed", alerter.failed),
        ("rejected", alerter.rejected),
        ("dropped", alerter.dropped),
    ]
}

/// The shared storage's write buffer: what waits and what was lost.
fn encode_write_buffer(out: &mut String, replica: &str, buffer: WriteBufferStats, format: Format) {
    let dropped_family = match format {
        Format::Prometheus => "health_storage_writes_dropped_total",
        Format::OpenMetrics => "health_storage_writes_dropped",
    };
    let mut label = String::with_capacity(replica.len() + 8);
    write_label(&mut label, replica);
    let replica = label;
    let _ = writeln!(
        out,
        "# HELP {dropped_family} Writes to the shared storage dropped because its buffer was full"
    );
    let _ = writeln!(out, "# TYPE {dropped_family} counter");
    let _ = writeln!(
        out,
        "health_storage_writes_dropped_total{{replica=\"{replica}\"}} {}",
        buffer.dropped
    );
    out.push_str("# HELP health_storage_writes_pending Writes waiting for the shared storage to be reachable again\n");
    out.push_str("# TYPE health_storage_writes_pending gauge\n");
    let _ = writeln!(
        out,
        "health_storage_writes_pending{{replica=\"{replica}\"}} {}",
        buffer.pending
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Details, Timestamp};

    fn report(probes: Vec<ProbeResult>) -> HealthReport {
        HealthReport::new(
            probes,
            Some(Timestamp::now_in(&jiff::tz::TimeZone::UTC)),
            Some("UTC".into()),
        )
    }

    /// The body a scrape answers.
    fn body(
        scrapes: &Scrapes,
        format: Format,
        snapshot: &Arc<Snapshot>,
        probes: &Bytes,
        process: &Process<'_>,
    ) -> Bytes {
        scrapes.scrape(format, snapshot, probes, process).body.clone()
    }

    #[test]
    fn a_scrape_answers_the_last_body_until_the_snapshot_or_the_process_changes() {
        let scrapes = Scrapes::default();
        let snapshot = Arc::new(Snapshot::new(report(Vec::new())));
        let probes = Bytes::from_static(b"probe families\n");
        let quiet = Process::default();
        let first = body(&scrapes, Format::Prometheus, &snapshot, &probes, &quiet);
        let text = std::str::from_utf8(&first).unwrap();
        assert!(text.starts_with("probe families\n"), "{text}");
        assert!(text.contains("\nhealth_alerts_dropped_total 0\n"), "{text}");
        // Nothing changed: the same bytes, not a copy.
        let again = body(&scrapes, Format::Prometheus, &snapshot, &probes, &quiet);
        assert_eq!(again.as_ptr(), first.as_ptr());
        // The process's state changed: a new body that says so.
        let dropped = Process {
            alerts_dropped: 3,
            ..Process::default()
        };
        let changed = body(&scrapes, Format::Prometheus, &snapshot, &probes, &dropped);
        assert_ne!(changed.as_ptr(), first.as_ptr());
        assert!(
            std::str::from_utf8(&changed)
                .unwrap()
                .contains("\nhealth_alerts_dropped_total 3\n")
        );
        // A new snapshot: a new body with its families.
        let next = Arc::new(Snapshot::new(report(Vec::new())));
        let families = Bytes::from_static(b"next families\n");
        let fresh = body(&scrapes, Format::Prometheus, &next, &families, &dropped);
        assert!(fresh.starts_with(b"next families\n"));
        // Each format keeps its own last body.
        let open = body(&scrapes, Format::OpenMetrics, &next, &families, &dropped);
        assert!(open.ends_with(b"# EOF\n"));
        assert_eq!(
            body(&scrapes, Format::Prometheus, &next, &families, &dropped).as_ptr(),
            fresh.as_ptr()
        );
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_is_sent_to_a_scraper_that_accepts_it_and_compressed_once() {
        use http::header::ACCEPT_ENCODING;
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
            gzip::accepted(&headers)
        };
        // What Prometheus, browsers and curl --compressed send.
        assert!(accepts("gzip"));
        assert!(accepts("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(accepts("br, GZIP"));
        assert!(accepts("x-gzip"));
        assert!(accepts("*"));
        // Refused, or not offered.
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip; q=0.0, *"));
        assert!(!accepts("identity"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("*;q=0"));
        assert!(!gzip::accepted(&HeaderMap::new()));

        let scrapes = Scrapes::default();
        let snapshot = Arc::new(Snapshot::new(report(Vec::new())));
        let probes = Bytes::from("probe_healthy{probe=\"a\"} 1\n".repeat(200));
        let scrape = scrapes.scrape(Format::Prometheus, &snapshot, &probes, &Process::default());
        let gzipped = scrape.gzipped();
        assert!(
            gzipped.len() * 5 < scrape.body.len(),
            "{} of {}",
            gzipped.len(),
            scrape.body.len()
        );
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut plain).unwrap();
        assert_eq!(plain, scrape.body);
        // The next scrape of the same state answers the same compressed bytes.
        let again = scrapes.scrape(Format::Prometheus, &snapshot, &probes, &Process::default());
        assert_eq!(again.gzipped().as_ptr(), gzipped.as_ptr());
    }

    #[test]
    fn no_probes_still_has_every_family() {
        let text = encode(&report(Vec::new()), &Process::default(), Format::Prometheus);
        assert_eq!(
            text,
            "# HELP probe_healthy 1 if probe status is healthy, 0 otherwise\n\
             # TYPE probe_healthy gauge\n\
             # HELP probe_degraded 1 if probe status is degraded (warning), 0 otherwise\n\
             # TYPE probe_degraded gauge\n\
             # HELP probe_latency_ms Last observed probe check latency in milliseconds\n\
             # TYPE probe_latency_ms gauge\n\
             # HELP probe_circuit_open 1 if the circuit breaker is currently open for this probe\n\
             # TYPE probe_circuit_open gauge\n\
             # HELP probe_circuit_consecutive_failures Current consecutive failure count for this probe\n\
             # TYPE probe_circuit_consecutive_failures gauge\n\
             # HELP probe_circuit_trips_total Total lifetime circuit breaker trips for this probe\n\
             # TYPE probe_circuit_trips_total counter\n\
             # HELP probe_no_data 1 if a passive probe saw no traffic within its window span, 0 otherwise\n\
             # TYPE probe_no_data gauge\n\
             # HELP health_status Overall status: 0 unhealthy, 1 degraded, 2 healthy\n\
             # TYPE health_status gauge\n\
             health_status 2\n\
             # HELP health_lifecycle 1 for the service's lifecycle state: starting, serving, draining or stopped\n\
             # TYPE health_lifecycle gauge\n\
             health_lifecycle{state=\"starting\"} 0\n\
             health_lifecycle{state=\"serving\"} 1\n\
             health_lifecycle{state=\"draining\"} 0\n\
             health_lifecycle{state=\"stopped\"} 0\n\
             # HELP health_scheduling_mode 1 for how probes are scheduled: background, while_watched or on_request\n\
             # TYPE health_scheduling_mode gauge\n\
             health_scheduling_mode{mode=\"background\"} 0\n\
             health_scheduling_mode{mode=\"while_watched\"} 1\n\
             health_scheduling_mode{mode=\"on_request\"} 0\n\
             # HELP health_alerts_dropped_total Alerts dropped because an alerter's queue was full\n\
             # TYPE health_alerts_dropped_total counter\n\
             health_alerts_dropped_total 0\n"
        );
    }

    #[test]
    fn samples_carry_name_then_critical() {
        let mut db = ProbeResult::new("db", Status::Unhealthy);
        db.latency_ms = 1.25;
        db.circuit = Some(CircuitState::new(true, 5, 2));
        let mut cache = ProbeResult::new("cache", Status::Degraded).with_critical(false);
        // A probe's own `circuit_breaker` detail is its data, never the breaker's state.
        let mut own = Details::new();
        own.insert(
            "circuit_breaker".into(),
            serde_json::json!({"open": true, "consecutive_failures": 9, "trips_total": 9}),
        );
        cache.details = Some(own);
        let text = encode(&report(vec![db, cache]), &Process::default(), Format::Prometheus);
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("health_lifecycle") && !l.starts_with("health_sched"))
            .collect();
        assert_eq!(
            samples,
            [
                r#"probe_healthy{name="db",critical="true"} 0"#,
                r#"probe_healthy{name="cache",critical="false"} 0"#,
                r#"probe_degraded{name="db",critical="true"} 0"#,
                r#"probe_degraded{name="cache",critical="false"} 1"#,
                r#"probe_latency_ms{name="db",critical="true"} 1.25"#,
                r#"probe_latency_ms{name="cache",critical="false"} 0.0"#,
                r#"probe_circuit_open{name="db",critical="true"} 1"#,
                r#"probe_circuit_open{name="cache",critical="false"} 0"#,
                r#"probe_circuit_consecutive_failures{name="db",critical="true"} 5"#,
                r#"probe_circuit_consecutive_failures{name="cache",critical="false"} 0"#,
                r#"probe_circuit_trips_total{name="db",critical="true"} 2"#,
                r#"probe_circuit_trips_total{name="cache",critical="false"} 0"#,
                r#"probe_no_data{name="db",critical="true"} 0"#,
                r#"probe_no_data{name="cache",critical="false"} 0"#,
                "health_status 0",
                "health_alerts_dropped_total 0",
            ]
        );
    }

    #[test]
    fn no_data_follows_the_traffic_detail() {
        let mut idle = ProbeResult::new("route:users", Status::Healthy);
        let mut details = Details::new();
        details.insert("traffic".into(), "none".into());
        idle.details = Some(details);
        let mut busy = ProbeResult::new("api", Status::Healthy);
        let mut details = Details::new();
        details.insert("traffic".into(), serde_json::json!({"none": true}));
        busy.details = Some(details);
        let text = encode(&report(vec![idle, busy]), &Process::default(), Format::Prometheus);
        assert!(
            text.contains("\nprobe_no_data{name=\"route:users\",critical=\"true\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("\nprobe_no_data{name=\"api\",critical=\"true\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn openmetrics_names_counters_without_total_and_ends_with_eof() {
        let text = encode(
            &report(vec![ProbeResult::new("db", Status::Healthy)]),
            &Process::default(),
            Format::OpenMetrics,
        );
        assert!(text.contains("# TYPE probe_circuit_trips counter\n"));
        assert!(text.contains("\nprobe_circuit_trips_total{name=\"db\",critical=\"true\"} 0\n"));
        assert!(text.ends_with("health_alerts_dropped_total 0\n# EOF\n"));
        assert!(text.contains("# TYPE health_alerts_dropped counter\n"));
    }

    #[test]
    fn a_shared_storage_adds_its_write_buffer() {
        let r = report(Vec::new());
        let buffer = WriteBufferStats::new(3, 7);
        let text = encode(
            &r,
            &Process {
                storage: Some(("pod-\"a\"", buffer)),
                ..Process::default()
            },
            Format::Prometheus,
        );
        assert!(text.ends_with(
            "# HELP health_storage_writes_dropped_total Writes to the shared storage dropped because its buffer was full\n\
             # TYPE health_storage_writes_dropped_total counter\n\
             health_storage_writes_dropped_total{replica=\"pod-\\\"a\\\"\"} 7\n\
             # HELP health_storage_writes_pending Writes waiting for the shared storage to be reachable again\n\
             # TYPE health_storage_writes_pending gauge\n\
             health_storage_writes_pending{replica=\"pod-\\\"a\\\"\"} 3\n"
        ), "{text}");
        let open = encode(
            &r,
            &Process {
                storage: Some(("a", buffer)),
                ..Process::default()
            },
            Format::OpenMetrics,
        );
        assert!(open.contains("# TYPE health_storage_writes_dropped counter\n"));
        assert!(open.ends_with("health_storage_writes_pending{replica=\"a\"} 3\n# EOF\n"));
        assert_eq!(
            encode(&r, &Process::default(), Format::Prometheus),
            encode(&r, &Process::default(), Format::Prometheus)
        );
    }

    #[test]
    fn refusals_appear_once_the_runtime_api_was_used() {
        let r = report(Vec::new());
        assert!(!encode(&r, &Process::default(), Format::Prometheus).contains("refused"));
        let process = Process {
            probes_refused: Some([(Refusal::Duplicate, 1), (Refusal::Limit, 2), (Refusal::Invalid, 0)]),
            ..Process::default()
        };
        let text = encode(&r, &process, Format::Prometheus);
        assert!(
            text.ends_with(&format!(
                "# HELP health_probes_refused_total {REFUSED_HELP}\n\
             # TYPE health_probes_refused_total counter\n\
             health_probes_refused_total{{reason=\"duplicate\"}} 1\n\
             health_probes_refused_total{{reason=\"limit\"}} 2\n\
             health_probes_refused_total{{reason=\"invalid\"}} 0\n"
            )),
            "{text}"
        );
        let open = encode(&r, &process, Format::OpenMetrics);
        assert!(open.contains("# TYPE health_probes_refused counter\n"), "{open}");
        assert!(
            open.ends_with("health_probes_refused_total{reason=\"invalid\"} 0\n# EOF\n"),
            "{open}"
        );
    }

    #[test]
    fn floats_use_parseable_spellings() {
        let cases = [
            (0.0, "0.0"),
            (1.25, "1.25"),
            (0.00001, "1e-5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(float(v), want);
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
    }

    /// The reverse of `escape_label`, as a scraper parses it.
    fn unescape(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn any_name_round_trips_through_escaping(name in proptest::prelude::any::<String>()) {
            let escaped = escape_label(&name);
            proptest::prop_assert!(!escaped.contains('\n'));
            // No unescaped quote can end the value early.
            let mut backslashes = 0;
            for c in escaped.chars() {
                if c == '"' {
                    proptest::prop_assert!(backslashes % 2 == 1);
                }
                backslashes = if c == '\\' { backslashes + 1 } else { 0 };
            }
            proptest::prop_assert_eq!(unescape(&escaped), name);
        }
    }
}
