//! `axum-watch tail URL`: follows a status stream (server-sent events) and
//! shows it — a live view redrawn on every event in a terminal, one line per
//! transition otherwise — reconnecting with backoff when the stream drops.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::client::{self, RequestOptions, Timeouts};
use crate::report::{ProbeLine, Report};
use crate::target::Target;
use crate::time::{clock, timestamp};

/// The server sends a comment every 15 s: three missed ones is a dead stream.
const IDLE: Duration = Duration::from_secs(45);
/// Reconnection waits: doubled after each failed attempt, up to the last.
const BACKOFF: [u64; 6] = [1, 2, 4, 8, 16, 30];
/// How many transitions the live view keeps on screen.
const RECENT: usize = 8;

#[derive(Debug)]
pub(crate) struct TailOptions {
    pub(crate) target: Target,
    pub(crate) connect_timeout: Duration,
    pub(crate) request: RequestOptions,
    /// Plain lines even on a terminal.
    pub(crate) plain: bool,
}

/// The stream URL for what the user gave: a stream as is, `…/status` or
/// `…/ready` with `/stream` added, a prefix (`…/health`) with
/// `/status/stream`, a bare server with `/health/status/stream`.
pub(crate) fn stream_target(target: &Target) -> Target {
    let (path, query) = match target.path().split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target.path(), None),
    };
    let path = path.trim_end_matches('/');
    let path = if path.ends_with("/stream") {
        path.to_owned()
    } else if path.ends_with("/status") || path.ends_with("/ready") {
        format!("{path}/stream")
    } else if path.is_empty() {
        "/health/status/stream".to_owned()
    } else {
        format!("{path}/status/stream")
    };
    match query {
        Some(query) => target.with_path(&format!("{path}?{query}")),
        None => target.with_path(&path),
    }
}

/// How one connection ended.
enum Ended {
    /// Worth trying again: the stream dropped or never started.
    Dropped { why: String, had_events: bool },
    /// Trying again cannot help: not a stream, or refused credentials.
    Fatal(String),
}

pub(crate) fn run(options: &TailOptions) -> ExitCode {
    let target = stream_target(&options.target);
    let timeouts = Timeouts {
        total: None,
        connect: Some(options.connect_timeout),
        read: Some(IDLE),
    };
    let agent = client::agent(&options.request, timeouts);
    let mut view = View::new(
        target.shown(),
        !options.plain && std::io::IsTerminal::is_terminal(&std::io::stdout()),
    );
    let mut attempt = 0;
    loop {
        match follow(&agent, &target, &options.request, &mut view) {
            Ended::Fatal(why) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "{}",
                    target.scrub(&format!("axum-watch tail: {why}"))
                );
                return ExitCode::from(crate::check::FAIL);
            }
            Ended::Dropped { why, had_events } => {
                if had_events {
                    attempt = 0;
                }
                let wait = BACKOFF[attempt.min(BACKOFF.len() - 1)];
                attempt += 1;
                view.disconnected(&target.scrub(&why), wait);
                std::thread::sleep(Duration::from_secs(wait));
            }
        }
    }
}

fn follow(agent: &ureq::Agent, target: &Target, options: &RequestOptions, view: &mut View) -> Ended {
    let response = match client::get(agent, target, options, "text/event-stream") {
        Ok(response) => response,
        Err(why) => {
            return Ended::Dropped {
                why: why.message,
                had_events: false,
            };
        }
    };
    let code = response.status();
    let event_stream = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if code.is_server_error() {
        return Ended::Dropped {
            why: format!("the server answered {code}"),
            had_events: false,
        };
    }
    if !code.is_success() || !event_stream {
        return Ended::Fatal(format!("{} answered {code}, not a status stream", target.shown()));
    }
    view.connected();
    let mut reader = BufReader::new(response.into_body().into_reader());
    let mut line = String::new();
    let mut data = String::new();
    let mut had_events = false;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => {
                return Ended::Dropped {
                    why: "the server ended the stream".to_owned(),
                    had_events,
                };
            }
            Ok(_) => {}
            Err(e) => {
                let why = match e.kind() {
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        format!("timeout: nothing for {} s", IDLE.as_secs())
                    }
                    _ => format!("the stream broke: {e}"),
                };
                return Ended::Dropped { why, had_events };
            }
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if let Some(value) = text.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        } else if text.is_empty() && !data.is_empty() {
            match Report::parse(data.as_bytes()) {
                Ok(report) => {
                    had_events = true;
                    view.event(report);
                }
                Err(bad) => view.note(&format!("an event was not a report ({bad})")),
            }
            data.clear();
        }
    }
}

/// One change between two reports.
#[derive(Debug, Clone, PartialEq)]
struct Transition {
    at: String,
    what: String,
    /// The probe it concerns; `None` for the overall status and lifecycle.
    probe: Option<String>,
    worse: bool,
}

fn rank(status: &str) -> u8 {
    match status {
        "healthy" | "ok" => 0,
        "degraded" | "maintenance" => 1,
        _ => 2,
    }
}

/// What changed from `old` to `new`, in report order.
fn transitions(old: &Report, new: &Report, at: &str) -> Vec<Transition> {
    let mut out = Vec::new();
    let lifecycle = |r: &Report| r.lifecycle.clone().unwrap_or_else(|| "serving".to_owned());
    if lifecycle(old) != lifecycle(new) {
        out.push(Transition {
            at: at.to_owned(),
            what: format!("lifecycle: {} -> {}", lifecycle(old), lifecycle(new)),
            probe: None,
            worse: new.lifecycle.is_some(),
        });
    }
    if old.status != new.status {
        out.push(Transition {
            at: at.to_owned(),
            what: format!("status: {} -> {}", old.status, new.status),
            probe: None,
            worse: rank(&new.status) > rank(&old.status),
        });
    }
    for probe in &new.probes {
        let before = old.probes.iter().find(|p| p.name == probe.name);
        let what = match before {
            Some(before) if before.status == probe.status => continue,
            Some(before) => format!("{}: {} -> {}", probe.name, before.status, probe.status),
            None => format!("{}: new, {}", probe.name, probe.status),
        };
        let what = match &probe.error {
            Some(error) if probe.status != "healthy" => format!("{what}: {error}"),
            _ => what,
        };
        out.push(Transition {
            at: at.to_owned(),
            what,
            probe: Some(probe.name.clone()),
            worse: before.is_none_or(|b| rank(&probe.status) > rank(&b.status)),
        });
    }
    for probe in &old.probes {
        if !new.probes.iter().any(|p| p.name == probe.name) {
            out.push(Transition {
                at: at.to_owned(),
                what: format!("{}: gone", probe.name),
                probe: Some(probe.name.clone()),
                worse: false,
            });
        }
    }
    out
}

fn summary(report: &Report) -> String {
    let mut line = format!("status {}, {} probes", report.status, report.probes.len());
    if let Some(lifecycle) = &report.lifecycle {
        let _ = write!(line, ", {lifecycle}");
    }
    if !report.failing.is_empty() {
        let _ = write!(line, ", failing: {}", report.failing.join(", "));
    }
    line
}

/// What the user sees: plain lines, or a live view.
struct View {
    shown: String,
    live: bool,
    last: Option<Report>,
    recent: Vec<Transition>,
    /// The transitions of the newest event, highlighted.
    fresh: Vec<Transition>,
    notice: Option<String>,
    reconnecting: bool,
}

impl View {
    fn new(shown: String, live: bool) -> Self {
        Self {
            shown,
            live,
            last: None,
            recent: Vec::new(),
            fresh: Vec::new(),
            notice: None,
            reconnecting: false,
        }
    }

    fn connected(&mut self) {
        if self.reconnecting {
            self.reconnecting = false;
            if self.live {
                self.notice = Some(format!("{} reconnected", clock()));
                self.draw();
            } else {
                err_line(&format!("{} reconnected", timestamp()));
            }
        }
    }

    fn event(&mut self, report: Report) {
        let at = timestamp();
        match &self.last {
            None => {
                self.fresh.clear();
                if !self.live {
                    out_line(&format!("{at} {}: {}", self.shown, summary(&report)));
                }
            }
            Some(old) => {
                self.fresh = transitions(old, &report, &at);
                if !self.live {
                    for t in &self.fresh {
                        out_line(&format!("{} {}", t.at, t.what));
                    }
                }
                self.recent.extend(self.fresh.iter().cloned());
                let excess = self.recent.len().saturating_sub(RECENT);
                self.recent.drain(..excess);
            }
        }
        self.last = Some(report);
        if self.live {
            self.notice = None;
            self.draw();
        }
    }

    fn note(&mut self, text: &str) {
        if self.live {
            self.notice = Some(text.to_owned());
            self.draw();
        } else {
            err_line(&format!("{} {text}", timestamp()));
        }
    }

    fn disconnected(&mut self, why: &str, wait: u64) {
        self.reconnecting = true;
        let text = format!("{why}; reconnecting in {wait} s");
        if self.live {
            self.notice = Some(format!("{} {text}", clock()));
            self.draw();
        } else {
            err_line(&format!("{} {text}", timestamp()));
        }
    }

    /// The whole screen, redrawn.
    fn draw(&self) {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(100)
            .max(40);
        let color = std::env::var_os("NO_COLOR").is_none();
        let paint = |status: &str, text: &str| -> String {
            if !color {
                return text.to_owned();
            }
            let code = match rank(status) {
                0 => "32",
                1 => "33",
                _ => "31",
            };
            format!("\x1b[{code}m{text}\x1b[0m")
        };
        let mut screen = String::from("\x1b[H\x1b[2J");
        let _ = writeln!(screen, "axum-watch tail {}   {}", self.shown, clock());
        match &self.last {
            None => {
                let _ = writeln!(screen, "\nwaiting for the first report...");
            }
            Some(report) => {
                let mut overall = report.status.to_uppercase();
                if let Some(lifecycle) = &report.lifecycle {
                    let _ = write!(overall, " ({lifecycle})");
                }
                let _ = writeln!(screen, "\nstatus: {}\n", paint(&report.status, &overall));
                let name_width = report
                    .probes
                    .iter()
                    .map(|p| p.name.chars().count())
                    .max()
                    .unwrap_or(4)
                    .max(4);
                let _ = writeln!(
                    screen,
                    "  {:name_width$}  {:9}  {:>9}  error",
                    "probe", "status", "latency"
                );
                for probe in &report.probes {
                    screen.push_str(&self.probe_row(probe, name_width, width, &paint, color));
                }
            }
        }
        if !self.recent.is_empty() {
            let _ = writeln!(screen, "\nrecent transitions:");
            for t in &self.recent {
                let at = t.at.get(11..19).unwrap_or(&t.at);
                let line = truncate(&format!("  {at} {}", t.what), width);
                let line = if color && t.worse {
                    format!("\x1b[31m{line}\x1b[0m")
                } else {
                    line
                };
                let _ = writeln!(screen, "{line}");
            }
        }
        if let Some(notice) = &self.notice {
            let _ = writeln!(screen, "\n{}", truncate(notice, width));
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(screen.as_bytes());
        let _ = stdout.flush();
    }

    fn probe_row(
        &self,
        probe: &ProbeLine,
        name_width: usize,
        width: usize,
        paint: &dyn Fn(&str, &str) -> String,
        color: bool,
    ) -> String {
        let changed = self
            .fresh
            .iter()
            .any(|t| t.probe.as_deref() == Some(probe.name.as_str()));
        let marker = if changed { '>' } else { ' ' };
        let critical = if probe.critical { "" } else { " (non-critical)" };
        let error = probe.error.as_deref().unwrap_or_default();
        let plain = format!(
            "{marker} {:name_width$}  {:9}  {:>6.1} ms  {error}{critical}",
            probe.name, probe.status, probe.latency_ms
        );
        let plain = truncate(&plain, width);
        // Colour only the status column, found again after truncation.
        let status_at = 2 + name_width + 2;
        let line = match (
            plain.get(..status_at),
            plain.get(status_at..status_at + 9),
            plain.get(status_at + 9..),
        ) {
            (Some(head), Some(status), Some(tail)) if color => {
                format!("{head}{}{tail}", paint(&probe.status, status))
            }
            _ => plain,
        };
        if changed && color {
            format!("\x1b[1;7m{line}\x1b[0m\n")
        } else {
            format!("{line}\n")
        }
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

fn out_line(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn err_line(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn report(status: &str, probes: &[(&str, &str)]) -> Report {
        Report {
            status: status.to_owned(),
            probes: probes
                .iter()
                .map(|(name, status)| ProbeLine {
                    name: (*name).to_owned(),
                    status: (*status).to_owned(),
                    critical: true,
                    latency_ms: 1.0,
                    error: (*status != "healthy").then(|| format!("{name} is down")),
                })
                .collect(),
            failing: Vec::new(),
            lifecycle: None,
        }
    }

    #[test]
    fn a_line_per_change() {
        let old = report(
            "healthy",
            &[("db", "healthy"), ("cache", "healthy"), ("old", "healthy")],
        );
        let mut new = report(
            "unhealthy",
            &[("db", "unhealthy"), ("cache", "healthy"), ("mq", "healthy")],
        );
        new.lifecycle = Some("draining".to_owned());
        let lines: Vec<String> = transitions(&old, &new, "t").into_iter().map(|t| t.what).collect();
        assert_eq!(
            lines,
            [
                "lifecycle: serving -> draining",
                "status: healthy -> unhealthy",
                "db: healthy -> unhealthy: db is down",
                "mq: new, healthy",
                "old: gone"
            ]
        );
        assert!(transitions(&new, &new, "t").is_empty());
    }

    #[test]
    fn the_stream_url_from_what_was_given() {
        let cases = [
            ("http://h:1", "http://h:1/health/status/stream"),
            ("http://h:1/health", "http://h:1/health/status/stream"),
            ("http://h:1/ops/health/", "http://h:1/ops/health/status/stream"),
            ("http://h:1/health/status", "http://h:1/health/status/stream"),
            ("http://h:1/health/ready?tag=a", "http://h:1/health/ready/stream?tag=a"),
            ("http://h:1/health/status/stream", "http://h:1/health/status/stream"),
        ];
        for (given, stream) in cases {
            assert_eq!(stream_target(&Target::parse(given).unwrap()).uri(), stream, "{given}");
        }
    }
}
