//! The HTTP client both commands use, and what its failures are called.
//!
//! Redirects are never followed (credentials are never replayed to another
//! host), proxy variables are ignored (a health check talks to the service
//! itself), and every message names the URL only as [`Target::shown`].

use std::time::Duration;

use ureq::Agent;
use ureq::http::Response;

use crate::target::Target;

/// How a request is made: the options both commands share.
#[derive(Debug, Clone)]
pub(crate) struct RequestOptions {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) insecure: bool,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreachable {
    pub(crate) timed_out: bool,
    pub(crate) message: String,
}

/// The timeouts of one request: `total` covers everything up to the end
/// of the body; a stream has none, but each read must come within `read`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) total: Option<Duration>,
    pub(crate) connect: Option<Duration>,
    pub(crate) read: Option<Duration>,
}

pub(crate) fn agent(options: &RequestOptions, timeouts: Timeouts) -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("axum-watch/", env!("CARGO_PKG_VERSION")))
        .timeout_global(timeouts.total)
        .timeout_connect(timeouts.connect)
        .timeout_recv_response(timeouts.connect)
        .timeout_per_read(timeouts.read);
    #[cfg(feature = "https")]
    let config = config.tls_config(
        ureq::tls::TlsConfig::builder()
            .disable_verification(options.insecure)
            .build(),
    );
    #[cfg(not(feature = "https"))]
    let _ = options.insecure;
    config.build().new_agent()
}

/// `GET target` with the options' headers (and the URL's credentials as
/// basic auth, unless a header sets `Authorization` itself).
pub(crate) fn get(
    agent: &Agent,
    target: &Target,
    options: &RequestOptions,
    accept: &str,
) -> Result<Response<ureq::Body>, Unreachable> {
    let mut request = agent.get(target.uri()).header("accept", accept);
    let mut authorized = false;
    for (name, value) in &options.headers {
        authorized |= name.eq_ignore_ascii_case("authorization");
        request = request.header(name.as_str(), value.as_str());
    }
    if !authorized && let Some(value) = target.authorization() {
        request = request.header("authorization", value);
    }
    request.call().map_err(|e| describe(&e, target, "the response"))
}

/// What went wrong, in words that say where: DNS, refused, TLS, timeout.
pub(crate) fn describe(error: &ureq::Error, target: &Target, waiting_for: &str) -> Unreachable {
    use ureq::Error;
    let host_port = target.host_port();
    let (timed_out, message) = match error {
        Error::HostNotFound => (false, format!("DNS: cannot resolve {}", target.host())),
        Error::Timeout(timeout) => (true, format!("timeout: {}", timeout_phase(*timeout, waiting_for))),
        Error::Io(e) => io(e, target),
        Error::ConnectionFailed => (false, format!("cannot connect to {host_port}")),
        Error::Protocol(e) => (false, format!("bad HTTP from {host_port}: {e}")),
        Error::BadUri(_) => (false, "invalid URL".to_owned()),
        Error::LargeResponseHeader(..) => (false, format!("{host_port} sent a header larger than allowed")),
        #[cfg(feature = "https")]
        Error::Rustls(e) => (false, format!("TLS: {e}")),
        Error::Tls(e) => (false, format!("TLS: {e}")),
        other => (false, format!("request failed: {other}")),
    };
    Unreachable {
        timed_out,
        message: target.scrub(&message),
    }
}

/// An I/O error, which is also how ureq reports a failed TLS handshake.
fn io(e: &std::io::Error, target: &Target) -> (bool, String) {
    use std::io::ErrorKind;
    #[cfg(feature = "https")]
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return (false, format!("TLS: {tls}"));
    }
    let host_port = target.host_port();
    match e.kind() {
        ErrorKind::ConnectionRefused => (false, format!("refused: nothing listens on {host_port}")),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => (true, format!("timeout: no answer from {host_port}")),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            (false, format!("connection to {host_port} closed by the server"))
        }
        ErrorKind::UnexpectedEof => (false, format!("{host_port} closed the connection before answering")),
        // The system resolver's failure carries no kind of its own.
        _ if e.to_string().starts_with("failed to lookup address") => {
            let reason = e.to_string();
            let reason = reason.rsplit(": ").next().unwrap_or_default().to_owned();
            (false, format!("DNS: cannot resolve {}: {reason}", target.host()))
        }
        _ => (false, format!("cannot talk to {host_port}: {e}")),
    }
}

fn timeout_phase(timeout: ureq::Timeout, waiting_for: &str) -> String {
    use ureq::Timeout;
    match timeout {
        Timeout::Resolve => "resolving the host took too long".to_owned(),
        Timeout::Connect => "connecting took too long".to_owned(),
        Timeout::PerRead => format!("no data for too long while reading {waiting_for}"),
        _ => format!("no complete answer in time while waiting for {waiting_for}"),
    }
}
