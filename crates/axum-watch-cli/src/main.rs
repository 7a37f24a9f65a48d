//! `axum-watch`: the command-line face of axum-watch's health endpoints.
//!
//! ```text
//! axum-watch check URL [--timeout 2s] [--header 'K: V']... [--insecure] [--quiet]
//! axum-watch tail URL [--timeout 5s] [--header 'K: V']... [--insecure] [--plain]
//! ```
//!
//! `check` exits 0 when the endpoint passes, 1 when it fails, 2 when it
//! cannot be reached (DNS, refused, TLS, timeout) and 64 on a usage error,
//! printing one line: what a Docker `HEALTHCHECK` needs. `tail` follows the
//! status stream. Credentials in the URL are sent as basic auth and never
//! printed.

mod check;
mod client;
mod report;
mod tail;
mod target;
mod time;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use check::CheckOptions;
use client::RequestOptions;
use tail::TailOptions;
use target::Target;

/// sysexits' `EX_USAGE`: kept apart from the check verdicts 0, 1 and 2.
const USAGE_ERROR: u8 = 64;

const USAGE: &str = "\
usage: axum-watch check URL [--timeout 2s] [--header 'K: V']... [--insecure] [--quiet]
       axum-watch tail URL [--timeout 5s] [--header 'K: V']... [--insecure] [--plain]

check  GET a ready or live endpoint (a bare server means /health/ready) and
       exit 0 when it passes, 1 when it fails, 2 when it cannot be reached
tail   follow the status stream (a bare server or prefix means
       .../health/status/stream): a live view in a terminal, a line per
       transition otherwise; reconnects with backoff

--timeout D   check: the whole request (default 2s); tail: connecting and
              the first answer (default 5s). D is 2s, 500ms, 1m or seconds
--header H    a request header, 'Name: value' (repeatable)
--insecure    accept any TLS certificate
--quiet       check: print nothing, only exit
--plain       tail: plain lines even on a terminal

Credentials in the URL (http://user:password@host/...) are sent as basic
auth and never printed.";

#[derive(Debug)]
enum Command {
    Check(CheckOptions),
    Tail(TailOptions),
    Help,
    Version,
}

fn main() -> ExitCode {
    match parse(std::env::args_os().skip(1).collect()) {
        Ok(Command::Check(options)) => check::run(&options),
        Ok(Command::Tail(options)) => tail::run(&options),
        Ok(Command::Help) => {
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            let _ = writeln!(std::io::stdout(), "axum-watch {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "axum-watch: {why}\n\n{USAGE}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

fn parse(args: Vec<OsString>) -> Result<Command, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let command = match parser.next().map_err(|e| e.to_string())? {
        Some(Value(command)) => command.string().map_err(|e| e.to_string())?,
        Some(Long("help") | Short('h')) => return Ok(Command::Help),
        Some(Long("version") | Short('V')) => return Ok(Command::Version),
        Some(other) => return Err(other.unexpected().to_string()),
        None => return Err("a command is needed: check or tail".to_owned()),
    };
    if command == "help" {
        return Ok(Command::Help);
    }
    if command != "check" && command != "tail" {
        return Err(format!("unknown command {command:?}: check or tail"));
    }
    let mut url: Option<String> = None;
    let mut timeout: Option<Duration> = None;
    let mut headers = Vec::new();
    let mut insecure = false;
    let mut quiet = false;
    let mut plain = false;
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("timeout") | Short('t') => {
                let value = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| e.to_string())?;
                timeout = Some(duration(&value)?);
            }
            Long("header") | Short('H') => {
                let value = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .string()
                    .map_err(|e| e.to_string())?;
                headers.push(header(&value)?);
            }
            Long("insecure") | Short('k') => insecure = true,
            Long("quiet") | Short('q') if command == "check" => quiet = true,
            Long("plain") if command == "tail" => plain = true,
            Long("help") | Short('h') => return Ok(Command::Help),
            // Never echo the URL back: it may carry credentials.
            Value(value) if url.is_none() => url = Some(value.string().map_err(|_| "the URL is not UTF-8")?),
            Value(_) => return Err("one URL only".to_owned()),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let url = url.ok_or("a URL is needed")?;
    let mut target = Target::parse(&url).map_err(|why| format!("invalid URL: {why}"))?;
    if target.is_https() && !cfg!(feature = "https") {
        return Err("this build has no HTTPS support: install with `--features https`".to_owned());
    }
    let request = RequestOptions { headers, insecure };
    if command == "check" {
        if target.path() == "/" {
            target = target.with_path("/health/ready");
        }
        Ok(Command::Check(CheckOptions {
            target,
            timeout: timeout.unwrap_or(Duration::from_secs(2)),
            request,
            quiet,
        }))
    } else {
        Ok(Command::Tail(TailOptions {
            target,
            connect_timeout: timeout.unwrap_or(Duration::from_secs(5)),
            request,
            plain,
        }))
    }
}

/// `2s`, `500ms`, `1m`, `1.5s` or plain seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: try 2s, 500ms or 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("invalid duration unit in {text:?}: ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("invalid duration {text:?}: it must be above zero"))
}

/// `Name: value` (or `Name:value`). The value is never part of an error.
fn header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once(':').ok_or("a header is 'Name: value'")?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(format!("invalid header name {name:?}"));
    }
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(format!("the value of header {name} contains a control character"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(OsString::from).collect())
    }

    #[test]
    fn durations() {
        assert_eq!(duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["", "0s", "-1s", "2h", "abc"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_and_options() {
        let Ok(Command::Check(check)) = args("check http://u:pw@h:1 --timeout 3s -H x-key:v -q") else {
            panic!("not a check");
        };
        assert_eq!(check.target.uri(), "http://h:1/health/ready");
        assert_eq!(check.timeout, Duration::from_secs(3));
        assert_eq!(check.request.headers, [("x-key".to_owned(), "v".to_owned())]);
        assert!(check.quiet);
        let Ok(Command::Tail(tail)) = args("tail http://h:1/health --plain") else {
            panic!("not a tail");
        };
        assert!(tail.plain);
        assert!(matches!(args("--help"), Ok(Command::Help)));
        for bad in [
            "",
            "nope http://h",
            "check",
            "check http://h http://i",
            "tail http://h -q",
            "check http://h --x",
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        let error = args("check ftp://u:hunter2@h").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }
}
