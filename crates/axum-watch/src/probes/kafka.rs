//! [`KafkaProbe`]: one Kafka `Metadata` request (API key 3, version 4) to
//! the first bootstrap server that answers.
//!
//! The request is written by hand, in pure Rust, because the details the
//! probe reports (brokers, controller, internal topics) are exactly the
//! parts of the metadata response that client libraries keep to
//! themselves. Version 4 is understood by every broker from Kafka 0.11 to
//! 4.x (4.0 dropped versions 0–3) and by Kafka-compatible brokers.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{ConfigError, ConfigErrorKind};
use crate::probe::{Outcome, Probe, ProbeError};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const METADATA: i16 = 3;
const METADATA_VERSION: i16 = 4;
const CLIENT_ID: &str = "axum-watch";
/// Far above any real metadata response; guards against reading garbage.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Checks a Kafka cluster with a metadata request to the first bootstrap
/// server that answers.
///
/// | detail | meaning |
/// | --- | --- |
/// | `broker_count` | brokers in the cluster |
/// | `controller_id` | the controller's broker id (`-1` when the cluster does not say) |
/// | `topics` | user topics, sorted |
/// | `internal_topics` | topics whose names start with `__`, sorted |
///
/// The whole check (connect and request, trying servers in order) is
/// bounded by [`request_timeout`](Self::request_timeout), 5 s by default.
/// Plaintext listeners only (no TLS or SASL).
///
/// ```
/// use axum_watch::probes::KafkaProbe;
///
/// let single = KafkaProbe::new("localhost:9092").unwrap();
/// let cluster = KafkaProbe::with_servers(["b1:9092", "b2:9092", "b3:9092"]).unwrap();
/// assert_eq!(KafkaProbe::new("b1:9092,b2:9092").unwrap().servers(), ["b1:9092", "b2:9092"]);
/// assert!(KafkaProbe::new("no-port").is_err());
/// # drop((single, cluster));
/// ```
#[derive(Clone, Debug)]
pub struct KafkaProbe {
    servers: Vec<String>,
    timeout: Duration,
}

impl KafkaProbe {
    /// A probe for `bootstrap_servers`: one `host:port`, or several separated
    /// by commas as in Kafka's `bootstrap.servers`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the list is empty or an entry is not `host:port`.
    pub fn new(bootstrap_servers: impl AsRef<str>) -> Result<Self, ConfigError> {
        Self::with_servers(bootstrap_servers.as_ref().split(','))
    }

    /// A probe for a list of `host:port` bootstrap servers.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when the list is empty or an entry is not `host:port`.
    pub fn with_servers<I, S>(servers: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for server in servers {
            let server = server.as_ref().trim();
            if server.is_empty() {
                continue;
            }
            let valid = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidUrl,
                    "KafkaProbe",
                    "bootstrap_servers",
                    format!("bootstrap server {server:?} is not host:port"),
                ));
            }
            list.push(server.to_owned());
        }
        if list.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidOption,
                "KafkaProbe",
                "bootstrap_servers",
                "no bootstrap servers given",
            ));
        }
        Ok(Self {
            servers: list,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Bound on the whole check (default 5 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bootstrap servers, in the order they are tried.
    #[must_use]
    pub fn servers(&self) -> &[String] {
        &self.servers
    }
}

impl Probe for KafkaProbe {
    fn name(&self) -> &str {
        "kafka"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let deadline = Instant::now() + self.timeout;
        let mut failures = Vec::new();
        for server in &self.servers {
            match tokio::time::timeout_at(deadline, metadata(server)).await {
                Ok(Ok(metadata)) => return Ok(metadata.into_outcome()),
                Ok(Err(error)) => failures.push(format!("{server}: {error}")),
                Err(_) => {
                    failures.push(format!("{server}: no answer"));
                    return Err(ProbeError::with_kind(
                        "Timeout",
                        format!("no metadata within {:?} ({})", self.timeout, failures.join("; ")),
                    ));
                }
            }
        }
        Err(ProbeError::with_kind(
            "KafkaError",
            format!("no bootstrap server answered ({})", failures.join("; ")),
        ))
    }
}

/// What the probe reads from a metadata response.
#[derive(Debug, PartialEq)]
struct Metadata {
    broker_count: usize,
    controller_id: i32,
    topics: Vec<String>,
}

impl Metadata {
    fn into_outcome(self) -> Outcome {
        let (mut internal, mut user): (Vec<String>, Vec<String>) =
            self.topics.into_iter().partition(|t| t.starts_with("__"));
        user.sort();
        internal.sort();
        Outcome::healthy()
            .detail("broker_count", self.broker_count)
            .detail("controller_id", self.controller_id)
            .detail("topics", user)
            .detail("internal_topics", internal)
    }
}

#[derive(Debug)]
enum KafkaError {
    Io(std::io::Error),
    Protocol(String),
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "{error}"),
            Self::Protocol(what) => write!(f, "unexpected metadata response: {what}"),
        }
    }
}

impl From<std::io::Error> for KafkaError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

async fn metadata(server: &str) -> Result<Metadata, KafkaError> {
    let mut stream = TcpStream::connect(server).await?;
    stream.set_nodelay(true)?;
    let correlation_id = 1;
    stream.write_all(&metadata_request(correlation_id)).await?;
    let size = stream.read_i32().await?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| (4..=MAX_RESPONSE).contains(s))
        .ok_or_else(|| KafkaError::Protocol(format!("frame size {size}")))?;
    let mut frame = vec![0; size];
    stream.read_exact(&mut frame).await?;
    parse_metadata_response(&frame, correlation_id).map_err(KafkaError::Protocol)
}

/// A size-prefixed Metadata v4 request for every topic, not creating any.
fn metadata_request(correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&METADATA.to_be_bytes());
    body.extend_from_slice(&METADATA_VERSION.to_be_bytes());
    body.extend_from_slice(&correlation_id.to_be_bytes());
    // The constant is short: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    body.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    body.extend_from_slice(CLIENT_ID.as_bytes());
    body.extend_from_slice(&(-1i32).to_be_bytes()); // topics: null = all
    body.push(0); // allow_auto_topic_creation: false
    let mut frame = Vec::with_capacity(body.len() + 4);
    // A few dozen bytes: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Reads big-endian Kafka primitives off a response frame.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        if self.bytes.len() < n {
            return Err(format!("truncated at {what}"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn i8(&mut self, what: &str) -> Result<i8, String> {
        Ok(i8::from_be_bytes([self.take(1, what)?[0]]))
    }

    fn i16(&mut self, what: &str) -> Result<i16, String> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32, String> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A nullable string; `None` for null.
    fn string(&mut self, what: &str) -> Result<Option<String>, String> {
        let len = self.i16(what)?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(usize::from(len.unsigned_abs()), what)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }

    /// An array length; null arrays count as empty.
    fn array(&mut self, what: &str) -> Result<usize, String> {
        let len = self.i32(what)?;
        let len = usize::try_from(len).unwrap_or(0);
        // Each element takes at least 4 bytes: a longer count is garbage.
        if len > self.bytes.len() / 4 + 1 {
            return Err(format!("impossible {what} count {len}"));
        }
        Ok(len)
    }
}

fn parse_metadata_response(frame: &[u8], correlation_id: i32) -> Result<Metadata, String> {
    let mut r = Reader { bytes: frame };
    let got = r.i32("correlation id")?;
    if got != correlation_id {
        return Err(format!("correlation id {got}, expected {correlation_id}"));
    }
    r.i32("throttle time")?;
    let broker_count = r.array("brokers")?;
    for _ in 0..broker_count {
        r.i32("broker id")?;
        r.string("broker host")?;
        r.i32("broker port")?;
        r.string("broker rack")?;
    }
    r.string("cluster id")?;
    let controller_id = r.i32("controller id")?;
    let topic_count = r.array("topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let error_code = r.i16("topic error code")?;
        let name = r.string("topic name")?.unwrap_or_default();
        r.i8("topic is_internal")?;
        for _ in 0..r.array("partitions")? {
            r.i16("partition error code")?;
            r.i32("partition index")?;
            r.i32("partition leader")?;
            for _ in 0..r.array("replicas")? {
                r.i32("replica")?;
            }
            for _ in 0..r.array("isr")? {
                r.i32("isr")?;
            }
        }
        // A topic being deleted or failing authorisation is not listed.
        if error_code == 0 && !name.is_empty() {
            topics.push(name);
        }
    }
    Ok(Metadata {
        broker_count,
        controller_id,
        topics,
    })
}

#[cfg(test)]
mod tests {
    use super::{KafkaProbe, Metadata, metadata_request, parse_metadata_response};
    use crate::Status;

    /// Builds a Metadata v4 response body the way a broker writes it.
    fn response(brokers: &[(i32, &str, i32)], controller: i32, topics: &[(i16, &str, bool, usize)]) -> Vec<u8> {
        let mut b = Vec::new();
        let string = |b: &mut Vec<u8>, s: &str| {
            b.extend_from_slice(&i16::try_from(s.len()).unwrap().to_be_bytes());
            b.extend_from_slice(s.as_bytes());
        };
        b.extend_from_slice(&7i32.to_be_bytes()); // correlation id
        b.extend_from_slice(&0i32.to_be_bytes()); // throttle
        b.extend_from_slice(&i32::try_from(brokers.len()).unwrap().to_be_bytes());
        for (id, host, port) in brokers {
            b.extend_from_slice(&id.to_be_bytes());
            string(&mut b, host);
            b.extend_from_slice(&port.to_be_bytes());
            b.extend_from_slice(&(-1i16).to_be_bytes()); // rack: null
        }
        string(&mut b, "cluster-1");
        b.extend_from_slice(&controller.to_be_bytes());
        b.extend_from_slice(&i32::try_from(topics.len()).unwrap().to_be_bytes());
        for (error, name, internal, partitions) in topics {
            b.extend_from_slice(&error.to_be_bytes());
            string(&mut b, name);
            b.push(u8::from(*internal));
            b.extend_from_slice(&i32::try_from(*partitions).unwrap().to_be_bytes());
            for p in 0..*partitions {
                b.extend_from_slice(&0i16.to_be_bytes());
                b.extend_from_slice(&i32::try_from(p).unwrap().to_be_bytes());
                b.extend_from_slice(&1i32.to_be_bytes()); // leader
                b.extend_from_slice(&1i32.to_be_bytes()); // one replica
                b.extend_from_slice(&1i32.to_be_bytes());
                b.extend_from_slice(&1i32.to_be_bytes()); // one isr
                b.extend_from_slice(&1i32.to_be_bytes());
            }
        }
        b
    }

    #[test]
    fn request_bytes_are_metadata_v4_for_all_topics() {
        let frame = metadata_request(9);
        let mut want = vec![0, 0, 0, 25, 0, 3, 0, 4, 0, 0, 0, 9, 0, 10];
        want.extend_from_slice(b"axum-watch");
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!(frame, want);
    }

    #[test]
    fn parses_brokers_controller_and_topics() {
        let bytes = response(
            &[(1, "b1", 9092), (2, "b2", 9092), (3, "b3", 9092)],
            2,
            &[
                (0, "orders", false, 3),
                (0, "__consumer_offsets", true, 2),
                (3, "gone", false, 0),
            ],
        );
        let metadata = parse_metadata_response(&bytes, 7).unwrap();
        assert_eq!(
            metadata,
            Metadata {
                broker_count: 3,
                controller_id: 2,
                topics: vec!["orders".into(), "__consumer_offsets".into()],
            }
        );
        let outcome = metadata.into_outcome();
        assert_eq!(outcome.status(), Status::Healthy);
        assert_eq!(
            serde_json::Value::Object(outcome.details().clone()),
            serde_json::json!({"broker_count": 3, "controller_id": 2,
                "topics": ["orders"], "internal_topics": ["__consumer_offsets"]})
        );
    }

    #[test]
    fn rejects_truncated_or_mismatched_responses() {
        let bytes = response(&[(1, "b1", 9092)], 1, &[(0, "orders", false, 1)]);
        assert_eq!(
            parse_metadata_response(&bytes, 8).unwrap_err(),
            "correlation id 7, expected 8"
        );
        for cut in [0, 3, 10, bytes.len() - 1] {
            let err = parse_metadata_response(&bytes[..cut], 7).unwrap_err();
            assert!(err.starts_with("truncated at"), "{cut}: {err}");
        }
        let mut huge = bytes[..8].to_vec();
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(
            parse_metadata_response(&huge, 7)
                .unwrap_err()
                .starts_with("impossible brokers count")
        );
    }

    #[test]
    fn bootstrap_lists() {
        assert_eq!(KafkaProbe::new(" a:1 , b:2 ").unwrap().servers(), ["a:1", "b:2"]);
        assert_eq!(
            KafkaProbe::with_servers(vec!["[::1]:9092".to_owned()])
                .unwrap()
                .servers(),
            ["[::1]:9092"]
        );
        for bad in ["", ",", "host", "host:0", ":9092", "host:port"] {
            assert!(KafkaProbe::new(bad).is_err(), "{bad}");
        }
    }
}
