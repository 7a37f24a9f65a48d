//! [`MemcachedProbe`]: `stats` over memcached's text protocol.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::model::Details;
use crate::probe::{Outcome, Probe, ProbeError};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A `stats` reply is a few kilobytes; anything far bigger is not memcached.
const MAX_REPLY: u64 = 256 * 1024;

/// Checks a memcached server: connects, sends `stats` and reads the reply,
/// which must end in `END`. No client library is involved; the text
/// protocol's `stats` command is all it needs.
///
/// | detail | from `stats` |
/// | --- | --- |
/// | `version` | `version` |
/// | `uptime_seconds` | `uptime` |
/// | `curr_connections` | `curr_connections` |
/// | `curr_items` | `curr_items` |
/// | `bytes` | `bytes` (memory used by items) |
/// | `limit_maxbytes` | `limit_maxbytes` (the memory limit) |
/// | `evictions` | `evictions` |
/// | `hit_ratio` | `get_hits / (get_hits + get_misses)`, 4 decimals; `null` before any `get` |
///
/// A new connection is opened for every check and closed after it; the
/// connect and the reply share one budget, [`timeout`](Self::timeout) (5 s by
/// default).
///
/// ```no_run
/// use std::time::Duration;
/// use axum_watch::{HealthRegistry, ProbeExt};
/// use axum_watch::probes::MemcachedProbe;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sessions = MemcachedProbe::new("127.0.0.1", 11211)
///     .timeout(Duration::from_secs(2))
///     .with_name("sessions");
/// let registry = HealthRegistry::builder().add_non_critical(sessions).build()?;
/// # drop(registry);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MemcachedProbe {
    host: String,
    port: u16,
    timeout: Duration,
}

impl MemcachedProbe {
    /// A probe of the memcached server at `host` (a name or an IP address)
    /// and `port` (memcached's default is 11211).
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long the connect and the `stats` reply may take together
    /// (default 5 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn stats(&self, deadline: Instant) -> Result<Vec<(String, String)>, ProbeError> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                return Err(ProbeError::with_kind(
                    "io::Error",
                    format!("cannot connect to memcached at {}:{}: {error}", self.host, self.port),
                ));
            }
            Err(_) => {
                return Err(ProbeError::with_kind(
                    "Timeout",
                    format!(
                        "cannot connect to memcached at {}:{} within {:?}",
                        self.host, self.port, self.timeout
                    ),
                ));
            }
        };
        match tokio::time::timeout_at(deadline, exchange(stream)).await {
            Ok(result) => result,
            Err(_) => Err(ProbeError::with_kind(
                "Timeout",
                format!("memcached did not answer `stats` within {:?}", self.timeout),
            )),
        }
    }
}

impl Probe for MemcachedProbe {
    fn name(&self) -> &str {
        "memcached"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let stats = self.stats(Instant::now() + self.timeout).await?;
        Ok(Outcome::healthy().details_from(stats_details(&stats)))
    }
}

/// Sends `stats` and collects the `STAT <name> <value>` lines up to `END`.
async fn exchange(mut stream: TcpStream) -> Result<Vec<(String, String)>, ProbeError> {
    stream.write_all(b"stats\r\n").await?;
    let (read, mut write) = stream.split();
    let mut reader = BufReader::new(read.take(MAX_REPLY));
    let mut stats = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(ProbeError::with_kind(
                "ProtocolError",
                "memcached closed the connection before the end of the `stats` reply",
            ));
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if text == "END" {
            break;
        }
        if let Some(stat) = text.strip_prefix("STAT ") {
            if let Some((name, value)) = stat.split_once(' ') {
                stats.push((name.to_owned(), value.to_owned()));
            }
        } else if text == "ERROR" || text.starts_with("CLIENT_ERROR") || text.starts_with("SERVER_ERROR") {
            return Err(ProbeError::with_kind(
                "ProtocolError",
                format!("memcached refused `stats`: {}", truncate(text)),
            ));
        } else {
            return Err(ProbeError::with_kind(
                "ProtocolError",
                format!("unexpected reply to `stats`: {:?}", truncate(text)),
            ));
        }
    }
    // Say goodbye; the server closes its side, nothing to wait for.
    let _ = write.write_all(b"quit\r\n").await;
    Ok(stats)
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(120) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// The documented details out of the `stats` pairs; values the server does
/// not report are left out.
fn stats_details(stats: &[(String, String)]) -> Details {
    let get = |name: &str| stats.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let number = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
    let mut details = Details::new();
    if let Some(version) = get("version") {
        details.insert("version".into(), version.into());
    }
    for (detail, stat) in [
        ("uptime_seconds", "uptime"),
        ("curr_connections", "curr_connections"),
        ("curr_items", "curr_items"),
        ("bytes", "bytes"),
        ("limit_maxbytes", "limit_maxbytes"),
        ("evictions", "evictions"),
    ] {
        if let Some(value) = number(stat) {
            details.insert(detail.into(), value.into());
        }
    }
    if let (Some(hits), Some(misses)) = (number("get_hits"), number("get_misses")) {
        let ratio = hit_ratio(hits, misses).map_or(serde_json::Value::Null, Into::into);
        details.insert("hit_ratio".into(), ratio);
    }
    details
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52 in practice; a ratio anyway
fn hit_ratio(hits: u64, misses: u64) -> Option<f64> {
    let gets = hits.checked_add(misses)?;
    (gets > 0).then(|| crate::model::round(hits as f64 / gets as f64, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect()
    }

    #[test]
    fn stats_become_details() {
        let stats = pairs(
            "pid 1\nuptime 42\nversion 1.6.18\ncurr_connections 2\ncurr_items 7\nbytes 512\nlimit_maxbytes 67108864\nevictions 0\nget_hits 2\nget_misses 1",
        );
        let details = stats_details(&stats);
        assert_eq!(
            serde_json::Value::Object(details),
            serde_json::json!({
                "version": "1.6.18", "uptime_seconds": 42, "curr_connections": 2, "curr_items": 7,
                "bytes": 512, "limit_maxbytes": 67108864, "evictions": 0, "hit_ratio": 0.6667
            })
        );
    }

    #[test]
    fn hit_ratio_is_null_before_any_get() {
        let details = stats_details(&pairs("get_hits 0\nget_misses 0"));
        assert_eq!(details["hit_ratio"], serde_json::Value::Null);
        assert_eq!(hit_ratio(3, 0), Some(1.0));
        assert_eq!(hit_ratio(0, 4), Some(0.0));
        assert!(stats_details(&[]).is_empty());
    }

    #[test]
    fn long_lines_are_cut_for_messages() {
        assert_eq!(truncate("short"), "short");
        assert_eq!(truncate(&"é".repeat(200)).chars().count(), 120);
    }
}
