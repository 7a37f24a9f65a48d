//! [`TcpProbe`]: DNS resolution, then a TCP connect.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpStream;

use crate::probe::{Outcome, Probe, ProbeError};

/// How long resolution plus connect may take unless configured.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks that a host name resolves and that a TCP connection to it opens.
///
/// The name is resolved first (an IP address is used as is); then the
/// resolved addresses are tried in order until one accepts. Resolution and
/// connect together must finish within the probe's connect timeout (5 s by
/// default), so a black-holed address fails in time even without a registry
/// timeout. The connection is closed at once: nothing is sent.
///
/// Default name `tcp:{host}:{port}`. Details: `host`, `port`,
/// `resolved_ips` and `connect_ms`; a failure keeps `host`, `port` and, once
/// resolution worked, `resolved_ips`.
///
/// ```
/// use std::time::Duration;
/// use axum_watch::{probes::TcpProbe, HealthRegistry, Probe, ProbeExt};
///
/// let db = TcpProbe::new("db.internal", 5432);
/// assert_eq!(db.name(), "tcp:db.internal:5432");
/// let cache = TcpProbe::new("10.0.0.7", 6379)
///     .connect_timeout(Duration::from_secs(2))
///     .with_name("redis-tcp");
/// let registry = HealthRegistry::builder().add(db).add(cache).build().unwrap();
/// # let _ = registry;
/// ```
#[derive(Clone)]
pub struct TcpProbe {
    host: String,
    port: u16,
    name: String,
    connect_timeout: Duration,
}

impl fmt::Debug for TcpProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpProbe")
            .field("host", &crate::redact(&self.host))
            .field("port", &self.port)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl TcpProbe {
    /// A probe of `host:port`; `host` is a name or an IP address (IPv6 with
    /// or without brackets).
    #[must_use]
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into().trim().to_owned();
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host);
        let name = format!("tcp:{bare}:{port}");
        Self {
            host,
            port,
            name,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// How long resolution plus connect may take (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn lookup_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }

    fn failure(&self, error: String, resolved: Option<&[SocketAddr]>) -> Outcome {
        let outcome = Outcome::unhealthy(error)
            .detail("host", self.host.clone())
            .detail("port", self.port);
        match resolved {
            Some(addrs) => outcome.detail("resolved_ips", ips(addrs)),
            None => outcome,
        }
    }
}

fn ips(addrs: &[SocketAddr]) -> Value {
    let mut seen: Vec<String> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let ip = addr.ip().to_string();
        if !seen.contains(&ip) {
            seen.push(ip);
        }
    }
    Value::from(seen)
}

impl Probe for TcpProbe {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let host = self.lookup_host();
        if host.is_empty() {
            return Ok(self.failure("invalid host: it is empty".to_owned(), None));
        }
        let started = Instant::now();
        let deadline = started + self.connect_timeout;
        let timeout_ms = self.connect_timeout.as_millis();

        let resolved = tokio::time::timeout_at(deadline.into(), tokio::net::lookup_host((host, self.port))).await;
        let addrs: Vec<SocketAddr> = match resolved {
            Err(_) => {
                return Ok(self.failure(
                    format!("dns resolution of {host} timed out after {timeout_ms} ms"),
                    None,
                ));
            }
            Ok(Err(e)) => return Ok(self.failure(format!("dns resolution of {host} failed: {e}"), None)),
            Ok(Ok(addrs)) => addrs.collect(),
        };
        if addrs.is_empty() {
            return Ok(self.failure(format!("dns resolution of {host} returned no addresses"), None));
        }

        let connect_started = Instant::now();
        let mut last_error: Option<io::Error> = None;
        for addr in &addrs {
            match tokio::time::timeout_at(deadline.into(), TcpStream::connect(addr)).await {
                Err(_) => {
                    return Ok(self.failure(
                        format!("tcp connect to {host}:{} timed out after {timeout_ms} ms", self.port),
                        Some(&addrs),
                    ));
                }
                Ok(Ok(stream)) => {
                    let connect = connect_started.elapsed();
                    drop(stream);
                    return Ok(Outcome::healthy()
                        .detail("host", self.host.clone())
                        .detail("port", self.port)
                        .detail("resolved_ips", ips(&addrs))
                        .detail("connect_ms", super::millis(connect))
                        .latency(started.elapsed()));
                }
                Ok(Err(e)) => last_error = Some(e),
            }
        }
        let reason = last_error.map_or_else(|| "no address accepted".to_owned(), |e| e.to_string());
        Ok(self.failure(
            format!("tcp connect to {host}:{} failed: {reason}", self.port),
            Some(&addrs),
        ))
    }
}
