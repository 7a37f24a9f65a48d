//! The statistics core every passive probe records into.
//!
//! Recording is a handful of relaxed atomic operations and one write into a
//! fixed ring of recent calls: no lock, no allocation (an error's message is
//! the one exception, and only on the error path). Everything derived —
//! percentiles, window error rate, throughput, the error-type table — is
//! computed when the probe is checked.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use crate::model::round;
use crate::probe::{Outcome, short_type_name};
use arc_swap::ArcSwapOption;
use serde_json::{Map, Value, json};

/// Slots of the error-type table; kinds beyond these are counted as `other`.
const ERROR_KINDS: usize = 16;
/// Low bits of a ring slot: bit 0 = error, bits 1..=3 = status class.
const FLAG_BITS: u32 = 4;
const ERROR_FLAG: u64 = 1;
/// How far back a check looks by default. A minute is long enough to hold
/// the default `min_calls` at a modest rate, and short enough that a pod a
/// readiness probe took out of service after a burst (and which then gets
/// no traffic to refill its window) reports ready again a minute after the
/// burst's last call, rather than never.
const DEFAULT_SPAN: Duration = Duration::from_secs(60);
/// Upper bound of a recorded duration (about 18 hours in nanoseconds).
const MAX_NANOS: u64 = u64::MAX >> FLAG_BITS;

/// The options every passive probe shares: window, smoothing and the
/// thresholds of its health decision.
///
/// The window is the last [`window_size`](Self::window_size) calls that
/// ended within the last [`window_span`](Self::window_span): a probe judges
/// recent traffic only, so a burst of errors ages out even when no call
/// follows it. Settings that cannot work together (a window smaller than
/// [`min_calls`](Self::min_calls), a zero span) are refused when the
/// registry is built.
///
/// ```
/// use std::time::Duration;
/// use axum_watch::passive::StatsConfig;
///
/// let config = StatsConfig::default()
///     .max_error_rate(0.05)
///     .max_avg_rtt(Duration::from_millis(250))
///     .min_calls(20)
///     .window_span(Duration::from_secs(120));
/// assert_eq!(config.window_size_value(), 100);
/// assert_eq!(config.window_span_value(), Duration::from_secs(120));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub struct StatsConfig {
    pub(crate) window_size: usize,
    pub(crate) window_span: Duration,
    pub(crate) ema_alpha: f64,
    pub(crate) max_error_rate: f64,
    pub(crate) max_avg_rtt: Option<Duration>,
    pub(crate) max_consecutive_errors: Option<u64>,
    pub(crate) min_calls: u64,
    pub(crate) slow_call_threshold: Option<Duration>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            window_size: 100,
            window_span: DEFAULT_SPAN,
            ema_alpha: 0.1,
            max_error_rate: 0.1,
            max_avg_rtt: None,
            max_consecutive_errors: None,
            min_calls: 10,
            slow_call_threshold: None,
        }
    }
}

impl StatsConfig {
    /// Recent calls kept for percentiles, the window error rate, slow calls
    /// and throughput (default 100, at least 1).
    pub fn window_size(mut self, calls: usize) -> Self {
        self.window_size = calls.max(1);
        self
    }

    /// How recently a call must have ended to count in the window (default
    /// 60 s). The window's error rate, `min_calls`, `max_avg_rtt`,
    /// `max_consecutive_errors`, percentiles, slow calls and throughput all
    /// consider only such calls; with none, the probe reports no recent
    /// traffic (healthy, with `"traffic": "none"` in its details). Zero is
    /// refused when the registry is built.
    pub fn window_span(mut self, span: Duration) -> Self {
        self.window_span = span;
        self
    }

    /// Smoothing factor of `avg_rtt_ms`, clamped to `(0, 1]` (default 0.1;
    /// higher reacts faster).
    pub fn ema_alpha(mut self, alpha: f64) -> Self {
        self.ema_alpha = if alpha.is_finite() {
            alpha.clamp(f64::EPSILON, 1.0)
        } else {
            0.1
        };
        self
    }

    /// Unhealthy when more than this share of the recent window failed
    /// (default 0.1, clamped to `[0, 1]`).
    pub fn max_error_rate(mut self, rate: f64) -> Self {
        self.max_error_rate = if rate.is_finite() { rate.clamp(0.0, 1.0) } else { 0.1 };
        self
    }

    /// Unhealthy when the moving average latency exceeds this (default: no limit).
    pub fn max_avg_rtt(mut self, limit: Duration) -> Self {
        self.max_avg_rtt = Some(limit);
        self
    }

    /// Unhealthy after this many failures in a row, whatever the window says
    /// (default: no limit).
    pub fn max_consecutive_errors(mut self, errors: u64) -> Self {
        self.max_consecutive_errors = Some(errors.max(1));
        self
    }

    /// Calls the window must hold before the error-rate and latency
    /// thresholds apply (default 10, at least 1), so one early failure cannot
    /// condemn a probe. More than `window_size` is refused when the registry
    /// is built: the thresholds could never apply.
    pub fn min_calls(mut self, calls: u64) -> Self {
        self.min_calls = calls.max(1);
        self
    }

    /// Counts calls slower than this in `slow_calls` (default: not counted).
    pub fn slow_call_threshold(mut self, threshold: Duration) -> Self {
        self.slow_call_threshold = Some(threshold);
        self
    }

    /// The window size in calls.
    #[must_use]
    pub fn window_size_value(&self) -> usize {
        self.window_size
    }

    /// The window span.
    #[must_use]
    pub fn window_span_value(&self) -> Duration {
        self.window_span
    }

    /// Why these settings cannot work together, if they cannot.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.window_span.is_zero() {
            return Err("window_span is zero, so no call would ever count in the window");
        }
        if self.min_calls > self.window_size as u64 {
            return Err(
                "window_size is smaller than min_calls, so the error-rate and latency thresholds could never apply",
            );
        }
        Ok(())
    }
}

/// One recent call: its duration and flags, and when it ended.
#[derive(Default)]
struct Slot {
    meta: AtomicU64,
    at: AtomicU64,
}

/// A count per error type, claimed on first use.
#[derive(Default)]
struct ErrorKind {
    name: OnceLock<&'static str>,
    count: AtomicU64,
}

/// When a call started: a TSC-based clock read (a few nanoseconds, where
/// `Instant::now` costs about twenty).
pub(crate) type Started = quanta::Instant;

/// Reads the clock at the start of a call.
pub(crate) fn start() -> Started {
    quanta::Instant::now()
}

/// The process-wide origin of call times: a clock reading and the wall-clock
/// time it stands for.
static EPOCH: LazyLock<(Started, jiff::Timestamp)> = LazyLock::new(|| (start(), jiff::Timestamp::now()));

/// What one call did: how long it took, when it ended (after [`EPOCH`]), its
/// HTTP status if any, and whether it failed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call {
    pub(crate) elapsed: Duration,
    pub(crate) at: Duration,
    pub(crate) error: bool,
    pub(crate) status: Option<u16>,
}

/// The hot counters and the ring of recent calls of the threads that record
/// into one shard. Aligned to 128 bytes so that two shards never share a
/// cache line (or its prefetched neighbour).
#[repr(align(128))]
struct Shard {
    /// Calls recorded into this shard; also its next ring position.
    seq: AtomicU64,
    errors: AtomicU64,
    consecutive: AtomicU64,
    ema_ms: AtomicU64,
    min_ns: AtomicU64,
    max_ns: AtomicU64,
    last_status: AtomicU64,
    last_error_at: AtomicU64,
    last_success_at: AtomicU64,
    /// Allocated by the first call recorded into the shard.
    ring: OnceLock<Box<[Slot]>>,
}

impl Default for Shard {
    fn default() -> Self {
        Self {
            seq: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            consecutive: AtomicU64::new(0),
            ema_ms: AtomicU64::new(f64::NAN.to_bits()),
            min_ns: AtomicU64::new(u64::MAX),
            max_ns: AtomicU64::new(0),
            last_status: AtomicU64::new(0),
            last_error_at: AtomicU64::new(0),
            last_success_at: AtomicU64::new(0),
            ring: OnceLock::new(),
        }
    }
}

impl Shard {
    /// The end time and the duration and flags of the shard's latest call.
    fn latest(&self) -> Option<(u64, u64, &Self)> {
        let ring = self.ring.get()?;
        let seq = self.seq.load(Relaxed).checked_sub(1)?;
        let slot = &ring[slot_index(seq, ring)];
        Some((slot.at.load(Relaxed), slot.meta.load(Relaxed), self))
    }
}

/// A shard's ring holds the window rounded up to a power of two, so a slot
/// is found with a mask instead of a division; checks keep the newest
/// `window_size` calls of all shards.
fn ring_capacity(window_size: usize) -> usize {
    window_size.max(1).next_power_of_two()
}

/// The slot of call number `seq` in a ring of `ring_capacity` slots.
fn slot_index(seq: u64, ring: &[Slot]) -> usize {
    // The mask is below the ring's length, so the result fits a usize.
    usize::try_from(seq & (ring.len() as u64 - 1)).unwrap_or(0)
}

/// Shards per statistics: one per CPU rounded up to a power of two (a mask
/// picks a thread's shard), at most 16.
fn shard_count() -> usize {
    static COUNT: LazyLock<usize> = LazyLock::new(|| {
        std::thread::available_parallelism()
            .map_or(1, NonZeroUsize::get)
            .clamp(1, 16)
            .next_power_of_two()
    });
    *COUNT
}

/// The shard this thread records into: threads are spread round-robin, so
/// threads recording at once do not contend on the same cache lines.
fn thread_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed);
    }
    SHARD.with(|shard| *shard)
}

/// Lock-free statistics: per-thread-group shards of counters and recent
/// calls, merged when the probe is checked.
pub(crate) struct Stats {
    config: StatsConfig,
    /// [`EPOCH`]'s clock reading, copied so the hot path reads a field.
    epoch: Started,
    shards: Box<[Shard]>,
    kinds: [ErrorKind; ERROR_KINDS],
    other_kinds: AtomicU64,
    /// Orders the two kinds of last error below: each note takes the next.
    error_seq: AtomicU64,
    /// The newest HTTP status noted as an error, `seq << 16 | status`: a
    /// failing route costs one store, no text, no allocation.
    last_error_status: AtomicU64,
    /// The newest error text, replaced only when the text changes, and the
    /// sequence number of the note that last wrote (or repeated) it.
    last_error: ArcSwapOption<String>,
    last_error_seq: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sum = |f: fn(&Shard) -> &AtomicU64| self.shards.iter().map(|s| f(s).load(Relaxed)).sum::<u64>();
        f.debug_struct("Stats")
            .field("calls", &sum(|s| &s.seq))
            .field("errors", &sum(|s| &s.errors))
            .finish_non_exhaustive()
    }
}

impl Stats {
    pub(crate) fn new(config: StatsConfig) -> Self {
        Self {
            config,
            epoch: EPOCH.0,
            shards: (0..shard_count()).map(|_| Shard::default()).collect(),
            kinds: Default::default(),
            other_kinds: AtomicU64::new(0),
            error_seq: AtomicU64::new(0),
            last_error_status: AtomicU64::new(0),
            last_error: ArcSwapOption::empty(),
            last_error_seq: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn config(&self) -> &StatsConfig {
        &self.config
    }

    /// Records a call that started at `started` and ends now.
    pub(crate) fn finish(&self, started: Started, error: bool, status: Option<u16>) {
        self.record(self.ended(started, error, status));
    }

    /// A call that started at `started` and ends now. Every `Stats` counts
    /// from the same origin, so the call may be recorded into several.
    pub(crate) fn ended(&self, started: Started, error: bool, status: Option<u16>) -> Call {
        let now = start();
        Call {
            elapsed: now.saturating_duration_since(started),
            at: now.saturating_duration_since(self.epoch),
            error,
            status,
        }
    }

    /// Records one call into this thread's shard: relaxed atomics and one
    /// ring write; the first call of a shard allocates its ring.
    pub(crate) fn record(&self, call: Call) {
        let nanos = u64::try_from(call.elapsed.as_nanos())
            .unwrap_or(MAX_NANOS)
            .min(MAX_NANOS);
        let at = stamp_nanos(call.at);
        let class = call.status.map_or(0, |code| u64::from(code / 100).min(7));

        let shard = &self.shards[thread_shard() & (self.shards.len() - 1)];
        let ring = shard.ring.get_or_init(|| {
            (0..ring_capacity(self.config.window_size))
                .map(|_| Slot::default())
                .collect()
        });
        let seq = shard.seq.fetch_add(1, Relaxed);
        // The remainder is below the ring's length, so it fits a usize.
        let slot = &ring[slot_index(seq, ring)];
        slot.meta
            .store(nanos << FLAG_BITS | class << 1 | u64::from(call.error), Relaxed);
        slot.at.store(at, Relaxed);

        if call.error {
            shard.errors.fetch_add(1, Relaxed);
            shard.consecutive.fetch_add(1, Relaxed);
            shard.last_error_at.store(at, Relaxed);
        } else {
            if shard.consecutive.load(Relaxed) != 0 {
                shard.consecutive.store(0, Relaxed);
            }
            shard.last_success_at.store(at, Relaxed);
        }
        if let Some(code) = call.status {
            shard.last_status.store(u64::from(code), Relaxed);
        }
        if nanos < shard.min_ns.load(Relaxed) {
            shard.min_ns.fetch_min(nanos, Relaxed);
        }
        if nanos > shard.max_ns.load(Relaxed) {
            shard.max_ns.fetch_max(nanos, Relaxed);
        }
        // A plain load and store: a shard is written by the threads mapped to
        // it, and an update lost to a race only nudges the average.
        let old = f64::from_bits(shard.ema_ms.load(Relaxed));
        let ms = nanos_to_ms(nanos);
        let alpha = self.config.ema_alpha;
        let ema = if old.is_nan() {
            ms
        } else {
            alpha * ms + (1.0 - alpha) * old
        };
        shard.ema_ms.store(ema.to_bits(), Relaxed);
    }

    /// Records what an error was: its type (for `error_types`, when it has
    /// one) and its text (for `last_error`). Called after [`record`](Self::record)
    /// on the error path only.
    ///
    /// The text is written into a buffer of the thread's own and stored only
    /// when it differs from the last one, so an error that repeats (the
    /// usual shape of an outage) allocates nothing.
    pub(crate) fn note_error(&self, kind: Option<&'static str>, text: impl fmt::Display) {
        use std::fmt::Write as _;
        thread_local! {
            static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        if let Some(kind) = kind {
            self.count_kind(kind);
        }
        TEXT.with_borrow_mut(|buffer| {
            buffer.clear();
            let _ = write!(buffer, "{text}");
            let same = self.last_error.load().as_deref().is_some_and(|last| last == buffer);
            if !same {
                self.last_error.store(Some(std::sync::Arc::new(buffer.clone())));
            }
        });
        let seq = self.error_seq.fetch_add(1, Relaxed) + 1;
        self.last_error_seq.store(seq, Relaxed);
    }

    /// Records that a response with `status` was an error: shown as
    /// `HTTP <status>` in `last_error`, formatted only when the probe is
    /// checked.
    pub(crate) fn note_status(&self, status: u16) {
        let seq = self.error_seq.fetch_add(1, Relaxed) + 1;
        self.last_error_status.store(seq << 16 | u64::from(status), Relaxed);
    }

    /// The newest error noted, text or status.
    fn last_error(&self) -> Option<String> {
        let status = self.last_error_status.load(Relaxed);
        let text_seq = self.last_error_seq.load(Relaxed);
        if status != 0 && status >> 16 > text_seq {
            return Some(format!("HTTP {}", status & 0xffff));
        }
        self.last_error
            .load_full()
            .map(|text| crate::redact(&text).into_owned())
    }

    fn count_kind(&self, kind: &'static str) {
        for slot in &self.kinds {
            let name = *slot.name.get_or_init(|| kind);
            if name == kind {
                slot.count.fetch_add(1, Relaxed);
                return;
            }
        }
        self.other_kinds.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_cache_hit(&self) {
        self.cache_hits.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_cache_miss(&self) {
        self.cache_misses.fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy of everything, with the derived figures, as
    /// of now.
    pub(crate) fn snapshot(&self) -> Figures {
        self.snapshot_at(start().saturating_duration_since(self.epoch))
    }

    /// The snapshot as of `now` (after [`EPOCH`]): the shards' recent calls
    /// that ended within the window span before `now` are merged by end time
    /// into one window. Calls stamped after `now` count as recent.
    pub(crate) fn snapshot_at(&self, now: Duration) -> Figures {
        let now = stamp_nanos(now);
        // Stamps are offsets + 1, so a call that ended exactly one span ago
        // is still in; zero (never) is always out.
        let cutoff = now
            .saturating_sub(u64::try_from(self.config.window_span.as_nanos()).unwrap_or(u64::MAX))
            .max(1);
        // (end time, duration and flags, shard) of every call the rings hold,
        // ordered by end time, then by the order a shard recorded them in.
        let mut recent: Vec<((u64, u64), u64, usize)> = Vec::new();
        for (index, shard) in self.shards.iter().enumerate() {
            let Some(ring) = shard.ring.get() else { continue };
            let seq = shard.seq.load(Relaxed);
            let first = seq.saturating_sub(ring.len() as u64);
            recent.extend((first..seq).map(|n| {
                let slot = &ring[slot_index(n, ring)];
                ((slot.at.load(Relaxed), n), slot.meta.load(Relaxed), index)
            }));
        }
        recent.sort_unstable_by_key(|(order, _, _)| *order);
        let recent: Vec<(u64, u64, usize)> = recent
            .into_iter()
            .map(|((at, _), meta, shard)| (at, meta, shard))
            .collect();
        let newest = recent.last().map(|&(at, ..)| at);
        let live = &recent[recent.partition_point(|&(at, ..)| at < cutoff)..];
        let window = &live[live.len().saturating_sub(self.config.window_size)..];

        let slow_ns = self
            .config
            .slow_call_threshold
            .map(|t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        let mut rtts = Vec::with_capacity(window.len());
        let (mut window_errors, mut slow) = (0_u64, 0_u64);
        let mut classes = [0_u64; 8];
        let mut weights = vec![0_u64; self.shards.len()];
        for &(_, meta, shard) in window {
            let nanos = meta >> FLAG_BITS;
            rtts.push(nanos);
            window_errors += meta & ERROR_FLAG;
            classes[usize::try_from((meta >> 1) & 0b111).unwrap_or(0)] += 1;
            slow += u64::from(slow_ns.is_some_and(|limit| nanos > limit));
            weights[shard] += 1;
        }
        classes[0] = 0;
        rtts.sort_unstable();
        let requests_per_minute = match (window.first(), window.last()) {
            (Some(&(oldest, ..)), Some(&(newest, ..))) if window.len() >= 2 && newest > oldest => {
                Some((window.len() - 1) as f64 / ((newest - oldest) as f64 / 60e9))
            }
            _ => None,
        };

        let load = |f: fn(&Shard) -> &AtomicU64| self.shards.iter().map(move |s| f(s).load(Relaxed));
        let latest = self.shards.iter().filter_map(Shard::latest).max_by_key(|(at, ..)| *at);
        // Each shard's moving average, weighted by its share of the window;
        // with no recent call, by its share of all calls, so the last known
        // average stays visible.
        if window.is_empty() {
            for (weight, shard) in weights.iter_mut().zip(self.shards.iter()) {
                *weight = shard.seq.load(Relaxed);
            }
        }
        let (weighted, total) = self
            .shards
            .iter()
            .zip(&weights)
            .map(|(s, w)| (f64::from_bits(s.ema_ms.load(Relaxed)), *w))
            .filter(|(ema, w)| !ema.is_nan() && *w > 0)
            .fold((0.0, 0_u64), |(sum, n), (ema, w)| (sum + ema * w as f64, n + w));
        let last_success = load(|s| &s.last_success_at).max().unwrap_or(0);
        let min = load(|s| &s.min_ns).min().unwrap_or(u64::MAX);

        Figures {
            calls: load(|s| &s.seq).sum(),
            errors: load(|s| &s.errors).sum(),
            consecutive: self.consecutive(&recent, last_success, cutoff),
            window: window.len() as u64,
            idle_for: newest.map(|at| Duration::from_nanos(now.saturating_sub(at))),
            window_errors,
            last_ms: latest.map_or(0.0, |(_, meta, _)| nanos_to_ms(meta >> FLAG_BITS)),
            ema_ms: (total > 0).then(|| weighted / total as f64),
            min_ms: (min != u64::MAX).then(|| nanos_to_ms(min)),
            max_ms: nanos_to_ms(load(|s| &s.max_ns).max().unwrap_or(0)),
            percentiles: [0.50, 0.95, 0.99].map(|p| nearest_rank(&rtts, p).map(nanos_to_ms)),
            requests_per_minute,
            slow_calls: slow_ns.map(|_| slow),
            last_status: latest
                .map(|(_, _, s)| s.last_status.load(Relaxed))
                .filter(|code| *code != 0)
                .and_then(|c| u16::try_from(c).ok()),
            status_classes: classes,
            error_types: self.error_types(),
            last_error: self.last_error(),
            last_error_at: self.wall(load(|s| &s.last_error_at).max().unwrap_or(0)),
            last_success_at: self.wall(last_success),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
        }
    }

    /// Errors since the latest success on any shard, counting only errors
    /// that ended at `cutoff` or later. With that success in the span, its
    /// shard counts its own run and another shard counts the errors its ring
    /// holds after that success (or its whole run when the ring is all
    /// errors). Without, every call in the span is an error: a shard counts
    /// those its ring holds (or its whole run when the ring is all recent
    /// errors, as older ones are gone from it).
    fn consecutive(&self, recent: &[(u64, u64, usize)], last_success: u64, cutoff: u64) -> u64 {
        if last_success < cutoff {
            return self
                .shards
                .iter()
                .enumerate()
                .map(|(index, shard)| {
                    let run = shard.consecutive.load(Relaxed);
                    let held = recent.iter().filter(|(_, _, s)| *s == index).count() as u64;
                    let live = recent
                        .iter()
                        .filter(|&&(at, meta, s)| s == index && at >= cutoff && meta & ERROR_FLAG != 0)
                        .count() as u64;
                    if held > 0 && live == held {
                        run.max(live)
                    } else {
                        live.min(run)
                    }
                })
                .sum();
        }
        self.shards
            .iter()
            .enumerate()
            .map(|(index, shard)| {
                let run = shard.consecutive.load(Relaxed);
                if shard.last_success_at.load(Relaxed) == last_success {
                    return run;
                }
                let held = recent.iter().filter(|(_, _, s)| *s == index).count() as u64;
                let after = recent
                    .iter()
                    .filter(|&&(at, meta, s)| s == index && at > last_success && meta & ERROR_FLAG != 0)
                    .count() as u64;
                if after == held { run.max(after) } else { after.min(run) }
            })
            .sum()
    }

    fn error_types(&self) -> Vec<(String, u64)> {
        let mut types: Vec<(String, u64)> = self
            .kinds
            .iter()
            .filter_map(|k| Some((short_type_name(k.name.get()?), k.count.load(Relaxed))))
            .filter(|(_, count)| *count > 0)
            .collect();
        let other = self.other_kinds.load(Relaxed);
        if other > 0 {
            types.push(("other".to_owned(), other));
        }
        types
    }

    /// The wall-clock time of a recorded offset (zero = never).
    fn wall(&self, at: u64) -> Option<jiff::Timestamp> {
        let offset = jiff::SignedDuration::from_nanos(i64::try_from(at.checked_sub(1)?).ok()?);
        EPOCH.1.checked_add(offset).ok()
    }
}

/// The figures of one check.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Figures {
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    pub(crate) consecutive: u64,
    pub(crate) window: u64,
    /// Since the newest call ended (`None` before the first call).
    pub(crate) idle_for: Option<Duration>,
    pub(crate) window_errors: u64,
    pub(crate) last_ms: f64,
    pub(crate) ema_ms: Option<f64>,
    pub(crate) min_ms: Option<f64>,
    pub(crate) max_ms: f64,
    pub(crate) percentiles: [Option<f64>; 3],
    pub(crate) requests_per_minute: Option<f64>,
    pub(crate) slow_calls: Option<u64>,
    pub(crate) last_status: Option<u16>,
    pub(crate) status_classes: [u64; 8],
    pub(crate) error_types: Vec<(String, u64)>,
    pub(crate) last_error: Option<String>,
    pub(crate) last_error_at: Option<jiff::Timestamp>,
    pub(crate) last_success_at: Option<jiff::Timestamp>,
    pub(crate) cache_hits: u64,
    pub(crate) cache_misses: u64,
}

/// How the details of a snapshot are labelled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Labels {
    /// `call_count` or `request_count`.
    pub(crate) count: &'static str,
    /// Shown in details before the first call.
    pub(crate) idle: &'static str,
    /// What is counted, in the message of a probe with no recent traffic.
    pub(crate) noun: &'static str,
    /// Whether HTTP status figures are shown.
    pub(crate) http: bool,
}

/// The details key and value that mark a probe with no recent traffic; the
/// `probe_no_data` metric and the dashboard read them.
pub(crate) const TRAFFIC: &str = "traffic";
pub(crate) const NO_TRAFFIC: &str = "none";

pub(crate) const CALLS: Labels = Labels {
    count: "call_count",
    idle: "no calls observed yet",
    noun: "calls",
    http: false,
};

pub(crate) const REQUESTS: Labels = Labels {
    count: "request_count",
    idle: "no requests observed yet",
    noun: "requests",
    http: true,
};

impl Figures {
    /// Lifetime error rate.
    pub(crate) fn error_rate(&self) -> f64 {
        ratio(self.errors, self.calls)
    }

    /// Error rate over the recent window.
    pub(crate) fn window_error_rate(&self) -> f64 {
        ratio(self.window_errors, self.window)
    }

    /// Whether no call ended within the window span (or none ever did).
    pub(crate) fn no_recent_traffic(&self) -> bool {
        self.window == 0
    }

    /// The details that say a probe saw no recent traffic: a message,
    /// `"traffic": "none"` and, after a first call, `idle_for_s` (seconds
    /// since the newest call ended).
    pub(crate) fn idle_details(&self, config: &StatsConfig, labels: Labels) -> Map<String, Value> {
        let mut d = Map::new();
        let message = match self.idle_for {
            None => labels.idle.to_owned(),
            Some(_) => format!(
                "no recent traffic: no {} in the last {} s",
                labels.noun,
                config.window_span.as_secs_f64()
            ),
        };
        d.insert("message".into(), message.into());
        d.insert(TRAFFIC.into(), NO_TRAFFIC.into());
        if let Some(idle) = self.idle_for {
            d.insert("idle_for_s".into(), round(idle.as_secs_f64(), 1).into());
        }
        d
    }

    /// Why the probe is unhealthy, if it is: thresholds apply once the window
    /// holds `min_calls` calls; consecutive errors apply at once.
    pub(crate) fn failures(&self, config: &StatsConfig) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.window >= config.min_calls {
            let rate = self.window_error_rate();
            if rate > config.max_error_rate {
                reasons.push(format!(
                    "error rate {:.1}% over the last {} exceeds threshold {:.1}%",
                    rate * 100.0,
                    if self.window == 1 {
                        "call".to_owned()
                    } else {
                        format!("{} calls", self.window)
                    },
                    config.max_error_rate * 100.0
                ));
            }
            if let (Some(limit), Some(avg)) = (config.max_avg_rtt, self.ema_ms) {
                let limit_ms = limit.as_secs_f64() * 1000.0;
                if avg > limit_ms {
                    reasons.push(format!("avg RTT {avg:.1} ms exceeds threshold {limit_ms:.1} ms"));
                }
            }
        }
        if let Some(limit) = config.max_consecutive_errors
            && self.consecutive >= limit
        {
            reasons.push(format!("{} consecutive errors (threshold {limit})", self.consecutive));
        }
        reasons
    }

    /// The standard details, in a fixed order.
    pub(crate) fn details(&self, labels: Labels) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert(labels.count.into(), self.calls.into());
        d.insert("error_count".into(), self.errors.into());
        d.insert("error_rate".into(), round(self.error_rate(), 4).into());
        d.insert("window_error_rate".into(), round(self.window_error_rate(), 4).into());
        d.insert("consecutive_errors".into(), self.consecutive.into());
        if labels.http {
            d.insert("last_status_code".into(), self.last_status.into());
        }
        d.insert("last_rtt_ms".into(), ms(self.last_ms));
        d.insert("avg_rtt_ms".into(), self.ema_ms.map_or(Value::Null, ms));
        for (key, value) in ["p50_rtt_ms", "p95_rtt_ms", "p99_rtt_ms"]
            .into_iter()
            .zip(self.percentiles)
        {
            d.insert(key.into(), value.map_or(Value::Null, ms));
        }
        d.insert("min_rtt_ms".into(), self.min_ms.map_or(Value::Null, ms));
        d.insert("max_rtt_ms".into(), ms(self.max_ms));
        if let Some(rpm) = self.requests_per_minute {
            d.insert("requests_per_minute".into(), round(rpm, 2).into());
        }
        if let Some(slow) = self.slow_calls {
            d.insert("slow_calls".into(), slow.into());
        }
        if let Some(error) = &self.last_error {
            d.insert("last_error".into(), error.clone().into());
        }
        if labels.http {
            let families: Map<String, Value> = self
                .status_classes
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(class, count)| (format!("{class}xx"), (*count).into()))
                .collect();
            if !families.is_empty() {
                d.insert("status_distribution".into(), families.into());
            }
        }
        if !self.error_types.is_empty() {
            let types: Map<String, Value> = self.error_types.iter().map(|(k, n)| (k.clone(), (*n).into())).collect();
            d.insert("error_types".into(), types.into());
        }
        if self.cache_hits + self.cache_misses > 0 {
            d.insert("cache_hits".into(), self.cache_hits.into());
            d.insert("cache_misses".into(), self.cache_misses.into());
            d.insert(
                "cache_hit_ratio".into(),
                round(ratio(self.cache_hits, self.cache_hits + self.cache_misses), 4).into(),
            );
        }
        if let Some(at) = self.last_error_at {
            d.insert("last_error_at".into(), stamp(at));
        }
        if let Some(at) = self.last_success_at {
            d.insert("last_success_at".into(), stamp(at));
        }
        d
    }

    /// The probe's outcome: healthy before the first call, unhealthy with
    /// every failed threshold as the error, the moving average as latency.
    pub(crate) fn outcome(&self, config: &StatsConfig, labels: Labels) -> Outcome {
        if self.calls == 0 {
            return Outcome::healthy()
                .details_from(self.idle_details(config, labels))
                .latency(Duration::ZERO);
        }
        let latency = Duration::from_secs_f64(self.ema_ms.unwrap_or(0.0).max(0.0) / 1000.0);
        if self.no_recent_traffic() {
            // Nothing recent to judge: an unready pod that gets no traffic
            // must not stay unready for want of calls.
            let mut details = self.idle_details(config, labels);
            details.extend(self.details(labels));
            return Outcome::healthy().details_from(details).latency(latency);
        }
        let reasons = self.failures(config);
        let outcome = if reasons.is_empty() {
            Outcome::healthy()
        } else {
            Outcome::unhealthy(reasons.join("; "))
        };
        outcome.details_from(self.details(labels)).latency(latency)
    }
}

/// Nearest rank: sort, take the element at `ceil(n * p) - 1` (at least 0).
pub(crate) fn nearest_rank(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() as f64 * p).ceil() as usize;
    sorted.get(rank.saturating_sub(1).min(sorted.len() - 1)).copied()
}

pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// A time after [`EPOCH`] as stored in a ring: nanoseconds + 1, so that
/// zero means "never".
fn stamp_nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX - 1).saturating_add(1)
}

fn nanos_to_ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

pub(crate) fn ms(value: f64) -> Value {
    json!(round(value, 2))
}

fn stamp(at: jiff::Timestamp) -> Value {
    crate::model::Timestamp::with_offset(at, jiff::tz::Offset::UTC)
        .to_string()
        .into()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use tokio::time::{Instant, advance};

    use super::{CALLS, Call, REQUESTS, Stats, StatsConfig, nearest_rank};
    use crate::model::Status;

    /// Time on tokio's clock (paused in these tests) since the first use on
    /// this thread: calls are stamped with it.
    fn clock() -> Duration {
        thread_local! {
            static ZERO: Instant = Instant::now();
        }
        ZERO.with(|zero| Instant::now() - *zero)
    }

    /// A snapshot as of now on the paused clock.
    fn snap(stats: &Stats) -> super::Figures {
        stats.snapshot_at(clock())
    }

    fn call(stats: &Stats, ms: u64, error: bool) {
        stats.record(Call {
            elapsed: Duration::from_millis(ms),
            at: clock(),
            error,
            status: None,
        });
    }

    #[test]
    fn nearest_rank_takes_the_element_at_ceil_n_p_minus_one() {
        let values: Vec<u64> = (1..=10).collect();
        assert_eq!(nearest_rank(&values, 0.50), Some(5));
        assert_eq!(nearest_rank(&values, 0.95), Some(10));
        assert_eq!(nearest_rank(&values, 0.99), Some(10));
        assert_eq!(nearest_rank(&values, 0.0), Some(1));
        assert_eq!(nearest_rank(&[7], 0.99), Some(7));
        assert_eq!(nearest_rank(&[], 0.5), None);
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 0.95), Some(95));
        assert_eq!(nearest_rank(&hundred, 0.99), Some(99));
    }

    #[tokio::test(start_paused = true)]
    async fn percentiles_cover_only_the_window() {
        let stats = Stats::new(StatsConfig::default().window_size(10));
        for ms in 1..=20 {
            call(&stats, ms * 1000, false);
        }
        let details = snap(&stats).details(CALLS);
        // The window holds the last ten calls: 11 s … 20 s.
        assert_eq!(details["p50_rtt_ms"], json!(15000.0));
        assert_eq!(details["p95_rtt_ms"], json!(20000.0));
        assert_eq!(details["p99_rtt_ms"], json!(20000.0));
        // Min and max are all-time.
        assert_eq!(details["min_rtt_ms"], json!(1000.0));
        assert_eq!(details["max_rtt_ms"], json!(20000.0));
        assert_eq!(details["last_rtt_ms"], json!(20000.0));
        assert_eq!(details["call_count"], 20);
    }

    #[tokio::test(start_paused = true)]
    async fn average_is_an_exponential_moving_average() {
        let stats = Stats::new(StatsConfig::default().ema_alpha(0.5));
        call(&stats, 10, false);
        assert_eq!(snap(&stats).ema_ms, Some(10.0));
        call(&stats, 20, false);
        assert_eq!(snap(&stats).ema_ms, Some(15.0));
        call(&stats, 5, false);
        assert_eq!(snap(&stats).ema_ms, Some(10.0));

        let default_alpha = Stats::new(StatsConfig::default());
        call(&default_alpha, 10, false);
        call(&default_alpha, 20, false);
        // 0.1 × 20 + 0.9 × 10
        assert_eq!(snap(&default_alpha).details(CALLS)["avg_rtt_ms"], json!(11.0));
    }

    #[tokio::test(start_paused = true)]
    async fn one_early_failure_does_not_condemn_the_probe() {
        let config = StatsConfig::default().window_size(20).min_calls(5);
        let stats = Stats::new(config);
        call(&stats, 1, true);
        let snapshot = snap(&stats);
        assert_eq!(snapshot.error_rate(), 1.0);
        assert!(
            snapshot.failures(&config).is_empty(),
            "below min_calls nothing is decided"
        );
        assert_eq!(snapshot.outcome(&config, CALLS).status(), Status::Healthy);

        for _ in 0..4 {
            call(&stats, 1, false);
        }
        // 1 error in 5 calls: 20 % > 10 %.
        let outcome = snap(&stats).outcome(&config, CALLS);
        assert_eq!(outcome.status(), Status::Unhealthy);
        assert_eq!(
            outcome.error(),
            Some("error rate 20.0% over the last 5 calls exceeds threshold 10.0%")
        );

        // Twenty successes push the failure out of the window; the lifetime
        // rate still shows it.
        for _ in 0..20 {
            call(&stats, 1, false);
        }
        let snapshot = snap(&stats);
        assert_eq!(snapshot.outcome(&config, CALLS).status(), Status::Healthy);
        let details = snapshot.details(CALLS);
        assert_eq!(details["error_rate"], json!(0.04));
        assert_eq!(details["window_error_rate"], json!(0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_outage_shows_despite_a_long_healthy_history() {
        let config = StatsConfig::default().window_size(10);
        let stats = Stats::new(config);
        for _ in 0..1000 {
            call(&stats, 1, false);
        }
        for _ in 0..3 {
            call(&stats, 1, true);
        }
        let snapshot = snap(&stats);
        assert!(snapshot.error_rate() < 0.01);
        assert_eq!(snapshot.window_error_rate(), 0.3);
        assert_eq!(snapshot.outcome(&config, CALLS).status(), Status::Unhealthy);
        assert_eq!(snapshot.consecutive, 3);
        call(&stats, 1, false);
        assert_eq!(snap(&stats).consecutive, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_and_consecutive_thresholds() {
        let config = StatsConfig::default()
            .min_calls(2)
            .max_avg_rtt(Duration::from_millis(50))
            .max_consecutive_errors(2);
        let stats = Stats::new(config);
        call(&stats, 100, false);
        assert!(snap(&stats).failures(&config).is_empty(), "one call is below min_calls");
        call(&stats, 100, false);
        assert_eq!(
            snap(&stats).failures(&config),
            ["avg RTT 100.0 ms exceeds threshold 50.0 ms"]
        );

        let stats = Stats::new(config.min_calls(100));
        call(&stats, 1, true);
        assert!(snap(&stats).failures(&config.min_calls(100)).is_empty());
        call(&stats, 1, true);
        assert_eq!(
            snap(&stats).failures(&config.min_calls(100)),
            ["2 consecutive errors (threshold 2)"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_spans_the_window() {
        let stats = Stats::new(StatsConfig::default().window_size(5));
        call(&stats, 1, false);
        assert_eq!(snap(&stats).requests_per_minute, None, "one call has no rate");
        for _ in 0..9 {
            advance(Duration::from_secs(2)).await;
            call(&stats, 1, false);
        }
        // The window holds five calls spread over 8 s: 4 intervals / 8 s.
        assert_eq!(snap(&stats).details(CALLS)["requests_per_minute"], json!(30.0));
    }

    #[tokio::test(start_paused = true)]
    async fn last_error_and_success_times_follow_the_clock() {
        let stats = Stats::new(StatsConfig::default());
        call(&stats, 1, false);
        advance(Duration::from_secs(90)).await;
        call(&stats, 1, true);
        stats.note_error(
            Some("std::io::error::Error"),
            "connect to postgres://app:hunter2@db/x failed",
        );
        let snapshot = snap(&stats);
        let (error_at, success_at) = (snapshot.last_error_at.unwrap(), snapshot.last_success_at.unwrap());
        assert_eq!(error_at.duration_since(success_at), jiff::SignedDuration::from_secs(90));
        let details = snapshot.details(CALLS);
        assert!(details["last_error_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(details["last_error"], "connect to postgres://app:***@db/x failed");
        assert_eq!(details["error_types"], json!({"io::Error": 1}));
    }

    #[test]
    fn the_newest_error_wins_and_a_repeated_one_is_not_stored_again() {
        let stats = Stats::new(StatsConfig::default());
        assert_eq!(stats.last_error(), None);
        stats.note_status(503);
        assert_eq!(stats.last_error().as_deref(), Some("HTTP 503"));
        stats.note_error(Some("panic"), format_args!("panic: {}", "boom"));
        assert_eq!(stats.last_error().as_deref(), Some("panic: boom"));
        let stored = stats.last_error.load_full().unwrap();
        // The same text again: the stored one stays, nothing is allocated.
        stats.note_error(Some("panic"), format_args!("panic: {}", "boom"));
        assert!(std::sync::Arc::ptr_eq(&stored, &stats.last_error.load_full().unwrap()));
        stats.note_status(502);
        assert_eq!(stats.last_error().as_deref(), Some("HTTP 502"));
        // An older text noted again is newer than the status.
        stats.note_error(Some("panic"), "panic: boom");
        assert_eq!(stats.last_error().as_deref(), Some("panic: boom"));
        assert!(std::sync::Arc::ptr_eq(&stored, &stats.last_error.load_full().unwrap()));
        assert_eq!(stats.error_types(), [("panic".to_owned(), 3)]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_probe_is_healthy_with_a_message() {
        let stats = Stats::new(StatsConfig::default());
        let outcome = snap(&stats).outcome(stats.config(), REQUESTS);
        assert_eq!(outcome.status(), Status::Healthy);
        assert_eq!(outcome.details()["message"], "no requests observed yet");
        assert_eq!(outcome.details()["traffic"], "none", "never is not recent either");
        assert!(!outcome.details().contains_key("idle_for_s"));
        assert_eq!(
            snap(&stats).outcome(stats.config(), CALLS).details()["message"],
            "no calls observed yet"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_calls_cache_counts_and_status_families() {
        let stats = Stats::new(StatsConfig::default().slow_call_threshold(Duration::from_millis(10)));
        for (ms, code) in [(5, 200), (10, 201), (11, 404), (50, 503)] {
            stats.record(Call {
                elapsed: Duration::from_millis(ms),
                at: clock(),
                error: code >= 500,
                status: Some(code),
            });
        }
        stats.record_cache_hit();
        stats.record_cache_hit();
        stats.record_cache_hit();
        stats.record_cache_miss();
        let details = snap(&stats).details(REQUESTS);
        assert_eq!(details["slow_calls"], 2, "strictly slower than the threshold");
        assert_eq!(details["status_distribution"], json!({"2xx": 2, "4xx": 1, "5xx": 1}));
        assert_eq!(details["last_status_code"], 503);
        assert_eq!(details["cache_hits"], 3);
        assert_eq!(details["cache_misses"], 1);
        assert_eq!(details["cache_hit_ratio"], json!(0.75));
        let keys: Vec<&str> = details.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "request_count",
                "error_count",
                "error_rate",
                "window_error_rate",
                "consecutive_errors",
                "last_status_code",
                "last_rtt_ms",
                "avg_rtt_ms",
                "p50_rtt_ms",
                "p95_rtt_ms",
                "p99_rtt_ms",
                "min_rtt_ms",
                "max_rtt_ms",
                "slow_calls",
                "status_distribution",
                "cache_hits",
                "cache_misses",
                "cache_hit_ratio",
                "last_error_at",
                "last_success_at",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_ages_out_of_the_span_into_no_recent_traffic() {
        let config = StatsConfig::default()
            .window_size(10)
            .min_calls(5)
            .max_consecutive_errors(3);
        let stats = Stats::new(config);
        for _ in 0..10 {
            call(&stats, 4, true);
        }
        let burst = snap(&stats).outcome(&config, REQUESTS);
        assert_eq!(burst.status(), Status::Unhealthy);
        assert!(!burst.details().contains_key("traffic"), "{:?}", burst.details());

        advance(Duration::from_secs(60)).await;
        assert_eq!(
            snap(&stats).outcome(&config, REQUESTS).status(),
            Status::Unhealthy,
            "a call that ended exactly one span ago still counts"
        );
        advance(Duration::from_millis(1500)).await;
        let figures = snap(&stats);
        assert!(figures.no_recent_traffic());
        assert_eq!((figures.window, figures.consecutive), (0, 0));
        assert!(figures.failures(&config).is_empty());
        let outcome = figures.outcome(&config, REQUESTS);
        assert_eq!(outcome.status(), Status::Healthy);
        assert_eq!(outcome.error(), None);
        let d = outcome.details();
        assert_eq!(d["message"], "no recent traffic: no requests in the last 60 s");
        assert_eq!(d["traffic"], "none");
        assert_eq!(d["idle_for_s"], json!(61.5));
        // Lifetime figures and the last known average stay.
        assert_eq!(d["request_count"], 10);
        assert_eq!(d["error_count"], 10);
        assert_eq!(d["window_error_rate"], json!(0.0));
        assert_eq!(d["avg_rtt_ms"], json!(4.0));
        assert_eq!(outcome.clone().into_parts().3, Some(Duration::from_millis(4)));
        assert_eq!(d["p50_rtt_ms"], json!(null));
        let keys: Vec<&str> = d.keys().map(String::as_str).take(4).collect();
        assert_eq!(keys, ["message", "traffic", "idle_for_s", "request_count"]);

        // One new call is recent traffic again.
        call(&stats, 1, false);
        let outcome = snap(&stats).outcome(&config, REQUESTS);
        assert_eq!(outcome.status(), Status::Healthy);
        assert!(!outcome.details().contains_key("traffic"));
        assert_eq!(outcome.details()["window_error_rate"], json!(0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn only_calls_within_the_span_are_judged() {
        let config = StatsConfig::default()
            .window_size(40)
            .min_calls(10)
            .window_span(Duration::from_secs(30));
        let stats = Stats::new(config);
        for _ in 0..10 {
            call(&stats, 1, true);
        }
        advance(Duration::from_secs(20)).await;
        for _ in 0..10 {
            call(&stats, 1, false);
        }
        let figures = snap(&stats);
        assert_eq!((figures.window, figures.window_errors), (20, 10));
        assert_eq!(figures.outcome(&config, CALLS).status(), Status::Unhealthy);

        // The errors age out; the successes are still recent.
        advance(Duration::from_secs(15)).await;
        let figures = snap(&stats);
        assert_eq!((figures.window, figures.window_errors), (10, 0));
        assert_eq!(figures.outcome(&config, CALLS).status(), Status::Healthy);
        assert_eq!(figures.errors, 10, "lifetime counts keep them");
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_errors_count_within_the_span() {
        let config = StatsConfig::default().max_consecutive_errors(3);
        let stats = Stats::new(config);
        call(&stats, 1, false);
        call(&stats, 1, true);
        call(&stats, 1, true);
        advance(Duration::from_secs(61)).await;
        call(&stats, 1, true);
        call(&stats, 1, true);
        assert_eq!(snap(&stats).consecutive, 2, "the two older errors aged out");
        assert!(snap(&stats).failures(&config).is_empty());
        call(&stats, 1, true);
        assert_eq!(snap(&stats).failures(&config), ["3 consecutive errors (threshold 3)"]);

        // Never a success: only the recent errors count.
        let never = Stats::new(config);
        call(&never, 1, true);
        call(&never, 1, true);
        advance(Duration::from_secs(61)).await;
        call(&never, 1, true);
        assert_eq!(snap(&never).consecutive, 1);
    }

    #[test]
    fn impossible_settings_are_reported() {
        assert_eq!(StatsConfig::default().validate(), Ok(()));
        assert_eq!(StatsConfig::default().window_size(3).min_calls(3).validate(), Ok(()));
        let small = StatsConfig::default().window_size(3).validate().unwrap_err();
        assert!(small.contains("window_size") && small.contains("min_calls"), "{small}");
        // A zero window is raised to one call, which is below the default min_calls.
        assert!(StatsConfig::default().window_size(0).validate().is_err());
        let zero = StatsConfig::default()
            .window_span(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert!(zero.contains("window_span"), "{zero}");
        assert_eq!(StatsConfig::default().window_span_value(), Duration::from_secs(60));
    }

    #[test]
    fn error_types_overflow_into_other() {
        const NAMES: [&str; 18] = [
            "a::A", "a::B", "a::C", "a::D", "a::E", "a::F", "a::G", "a::H", "a::I", "a::J", "a::K", "a::L", "a::M",
            "a::N", "a::O", "a::P", "a::Q", "a::R",
        ];
        let stats = Stats::new(StatsConfig::default());
        for name in NAMES {
            stats.note_error(Some(name), "x");
        }
        stats.note_error(Some("a::A"), "x");
        let types = snap(&stats).error_types;
        assert_eq!(types.len(), 17);
        assert_eq!(types[0], ("A".to_owned(), 2));
        assert_eq!(types[16], ("other".to_owned(), 2));
    }

    #[test]
    fn concurrent_recording_loses_no_call() {
        let stats = Arc::new(Stats::new(StatsConfig::default()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let stats = Arc::clone(&stats);
                std::thread::spawn(move || {
                    for i in 0..10_000_u64 {
                        stats.record(Call {
                            elapsed: Duration::from_micros(i % 100 + t),
                            at: clock(),
                            error: i % 10 == 0,
                            status: None,
                        });
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let snapshot = snap(&stats);
        assert_eq!(snapshot.calls, 40_000);
        assert_eq!(snapshot.errors, 4_000);
        assert_eq!(snapshot.window, 100);
        assert_eq!(snapshot.min_ms, Some(0.0));
        assert_eq!(snapshot.max_ms, 0.102);
    }

    #[test]
    fn threads_recording_at_once_merge_into_one_window() {
        let stats = Arc::new(Stats::new(StatsConfig::default()));
        std::thread::scope(|scope| {
            for (ms, error) in [(1, false), (3, true)] {
                let stats = Arc::clone(&stats);
                scope.spawn(move || {
                    for _ in 0..50 {
                        call(&stats, ms, error);
                    }
                });
            }
        });
        let snapshot = snap(&stats);
        assert_eq!((snapshot.calls, snapshot.window, snapshot.errors), (100, 100, 50));
        assert_eq!(snapshot.window_errors, 50);
        assert_eq!(snapshot.percentiles, [Some(1.0), Some(3.0), Some(3.0)]);
        let avg = snapshot.ema_ms.unwrap();
        assert!((1.0..=3.0).contains(&avg), "{avg}");
    }
}
