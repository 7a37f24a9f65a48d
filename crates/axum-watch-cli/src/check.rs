//! `axum-watch check URL`: one GET, one line, an exit code.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ureq::http::StatusCode;

use crate::client::{self, RequestOptions, Timeouts, Unreachable};
use crate::report::Report;
use crate::target::Target;

/// The exit codes, as `HEALTHCHECK` and scripts read them.
pub(crate) const PASS: u8 = 0;
pub(crate) const FAIL: u8 = 1;
pub(crate) const UNREACHABLE: u8 = 2;

/// The largest body read; a report of a few hundred probes fits.
const BODY_LIMIT: u64 = 4 << 20;

#[derive(Debug)]
pub(crate) struct CheckOptions {
    pub(crate) target: Target,
    pub(crate) timeout: Duration,
    pub(crate) request: RequestOptions,
    pub(crate) quiet: bool,
}

enum Verdict {
    Pass(String),
    Fail(String),
    Unreachable(Unreachable),
}

pub(crate) fn run(options: &CheckOptions) -> ExitCode {
    let started = Instant::now();
    let verdict = check(options);
    let ms = started.elapsed().as_millis();
    let shown = options.target.shown();
    let (code, line) = match verdict {
        Verdict::Pass(what) => (PASS, format!("pass: {what} in {ms} ms - {shown}")),
        Verdict::Fail(what) => (FAIL, format!("fail: {what} in {ms} ms - {shown}")),
        Verdict::Unreachable(why) => (UNREACHABLE, format!("unreachable: {} - {shown}", why.message)),
    };
    if !options.quiet {
        let line = options.target.scrub(&line);
        // A closed stdout or stderr must not turn a verdict into a panic.
        let _ = if code == UNREACHABLE {
            writeln!(std::io::stderr(), "{line}")
        } else {
            writeln!(std::io::stdout(), "{line}")
        };
    }
    ExitCode::from(code)
}

fn check(options: &CheckOptions) -> Verdict {
    let timeouts = Timeouts {
        total: Some(options.timeout),
        connect: None,
        read: None,
    };
    let agent = client::agent(&options.request, timeouts);
    let within = || format!("timeout: no answer within {}", seconds(options.timeout));
    let response = match client::get(&agent, &options.target, &options.request, "application/json") {
        Ok(response) => response,
        Err(mut why) => {
            if why.timed_out {
                why.message = within();
            }
            return Verdict::Unreachable(why);
        }
    };
    let code = response.status();
    let body = match response.into_body().with_config().limit(BODY_LIMIT).read_to_vec() {
        Ok(body) => body,
        Err(e) => {
            let mut why = client::describe(&e, &options.target, "the body");
            if why.timed_out {
                why.message = within();
            }
            return Verdict::Unreachable(why);
        }
    };
    judge(code, &body)
}

/// Passes on a 2xx answer whose body does not say the service is failing.
fn judge(code: StatusCode, body: &[u8]) -> Verdict {
    let report = Report::parse(body);
    let head = match code.canonical_reason() {
        Some(reason) => format!("{} {reason}", code.as_u16()),
        None => code.as_u16().to_string(),
    };
    match report {
        Ok(report) => {
            let mut what = format!("{} {}", code.as_u16(), report.status);
            if !report.failing.is_empty() {
                what.push_str(&format!(" (failing: {})", report.failing.join(", ")));
            }
            if code.is_success() && !report.says_failing() {
                Verdict::Pass(what)
            } else {
                Verdict::Fail(what)
            }
        }
        Err(bad) if code.is_success() => Verdict::Fail(format!("{head}, but not a health report ({bad})")),
        Err(_) if code == StatusCode::UNAUTHORIZED || code == StatusCode::FORBIDDEN => {
            Verdict::Fail(format!("{head}: credentials missing or refused"))
        }
        Err(_) => Verdict::Fail(head),
    }
}

/// `2 s`, `1.5 s`, `250 ms`.
pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(code: u16, body: &str) -> (u8, String) {
        match judge(StatusCode::from_u16(code).unwrap_or(StatusCode::OK), body.as_bytes()) {
            Verdict::Pass(what) => (PASS, what),
            Verdict::Fail(what) => (FAIL, what),
            Verdict::Unreachable(why) => (UNREACHABLE, why.message),
        }
    }

    #[test]
    fn what_passes() {
        let cases = [
            (200, r#"{"status":"healthy","probes":[]}"#, PASS, "200 healthy"),
            (200, r#"{"status":"degraded"}"#, PASS, "200 degraded"),
            (200, r#"{"status":"ok"}"#, PASS, "200 ok"),
            (200, r#"{"status":"maintenance"}"#, PASS, "200 maintenance"),
            (207, r#"{"status":"degraded"}"#, PASS, "207 degraded"),
            (
                207,
                r#"{"status":"unhealthy","failing":["db"]}"#,
                FAIL,
                "207 unhealthy (failing: db)",
            ),
            (
                503,
                r#"{"status":"unhealthy","failing":["db","mq"]}"#,
                FAIL,
                "503 unhealthy (failing: db, mq)",
            ),
            (503, r#"{"status":"starting"}"#, FAIL, "503 starting"),
            (503, r#"{"status":"draining"}"#, FAIL, "503 draining"),
            (
                200,
                "<html>",
                FAIL,
                "200 OK, but not a health report (bad JSON: expected value at line 1 column 1)",
            ),
            (
                200,
                r#"{"ok":true}"#,
                FAIL,
                "200 OK, but not a health report (bad JSON: no \"status\" field)",
            ),
            (
                401,
                r#"{"detail":"x"}"#,
                FAIL,
                "401 Unauthorized: credentials missing or refused",
            ),
            (404, "", FAIL, "404 Not Found"),
        ];
        for (code, body, exit, what) in cases {
            assert_eq!(verdict(code, body), (exit, what.to_owned()), "{code} {body}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(2)), "2 s");
        assert_eq!(seconds(Duration::from_millis(250)), "250 ms");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
