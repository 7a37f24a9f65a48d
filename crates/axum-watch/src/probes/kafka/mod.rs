//! [`KafkaProbe`]: asks the first bootstrap server that answers for the
//! cluster's metadata, over TLS and SASL when the cluster wants them, and
//! judges its partitions.
//!
//! One connection per check: `ApiVersions`, then `SaslHandshake` and
//! `SaslAuthenticate` when a login is set, then `Metadata` for every topic.
//! The messages are written by hand, in pure Rust ([`wire`] says why not
//! with the `kafka-protocol` crate), because the details the probe reports
//! (brokers, controller, partition leaders and in-sync replicas) are
//! exactly the parts of the metadata that client libraries keep to
//! themselves.

use std::fmt;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{ConfigError, ConfigErrorKind};
use crate::Status;
use crate::probe::{Outcome, Probe, ProbeError};
use crate::tls::{PeerTls, TlsOptions, Verification};

mod partitions;
mod properties;
mod sasl;
mod wire;

pub use partitions::PartitionRule;
pub use sasl::SaslMechanism;

use sasl::{Conversation, SaslLogin};
use wire::{API_VERSIONS, ApiVersions, BrokerError, METADATA, Metadata, SASL_AUTHENTICATE, SASL_HANDSHAKE};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Far above any real metadata response; guards against reading garbage.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// The `Metadata` versions the probe reads, oldest first: v5 adds the
/// offline replicas of each partition.
const METADATA_VERSIONS: [i16; 2] = [4, 5];
const SECONDS_PER_DAY: i64 = 86_400;

/// Checks a Kafka cluster with a metadata request to the first bootstrap
/// server that answers, and judges its partitions.
///
/// | option | default | for |
/// | --- | --- | --- |
/// | [`tls_options`](Self::tls_options) | plaintext | TLS listeners (`security.protocol=SSL` or `SASL_SSL`) |
/// | [`sasl`](Self::sasl) | none | `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` logins |
/// | [`partition_rule`](Self::partition_rule) | [`PartitionRule::all_topics`] | what offline and under-replicated partitions make |
/// | [`request_timeout`](Self::request_timeout) | 5 s | the whole check, every server tried |
///
/// | detail | meaning |
/// | --- | --- |
/// | `broker_count` | brokers in the cluster |
/// | `controller_id` | the controller's broker id (`-1` when the cluster does not say) |
/// | `topics` | user topics, sorted |
/// | `internal_topics` | topics whose names start with `__`, sorted |
/// | `partition_count` | partitions of every listed topic |
/// | `offline_partition_count`, `offline_partitions` | partitions with no leader: `{"orders": [1, 4]}` (at most 100 listed) |
/// | `under_replicated_partition_count`, `under_replicated_partitions` | partitions with fewer in-sync replicas than replicas |
/// | `missing_topics` | topics a [`PartitionRule::topics`] names that the cluster does not list (only when there are some) |
/// | `sasl_mechanism` | with [`sasl`](Self::sasl) |
/// | `tls_version`, `cert_not_after`, `cert_days_remaining` | with [`tls_options`](Self::tls_options): the session and the broker's certificate |
///
/// The status is what the [partition rules](PartitionRule) make of the
/// partitions, the worst winning, with their reasons as the error text
/// (`1 offline partition of orders`). A server that cannot be reached, a
/// failed handshake or login and a malformed answer move on to the next
/// bootstrap server; when none answers the check fails as `KafkaError`,
/// or as `TlsError` or `SaslError` when every server failed that way.
/// Credentials never appear in details, errors or `Debug`.
///
/// ```
/// use axum_watch::probes::{KafkaProbe, PartitionRule, SaslMechanism};
/// use axum_watch::tls::TlsOptions;
///
/// let local = KafkaProbe::new("localhost:9092").unwrap();
/// assert_eq!(KafkaProbe::new("b1:9092,b2:9092").unwrap().servers(), ["b1:9092", "b2:9092"]);
/// assert!(KafkaProbe::new("no-port").is_err());
///
/// // A managed cluster: TLS, SCRAM, and the topics this service needs.
/// let msk = KafkaProbe::new("b-1.msk.example.com:9096,b-2.msk.example.com:9096")
///     .unwrap()
///     .tls_options(TlsOptions::new())
///     .sasl(SaslMechanism::ScramSha512, "app", std::env::var("KAFKA_PASSWORD").unwrap_or_default())
///     .partition_rule(PartitionRule::topics(["orders", "payments"]));
/// # drop((local, msk));
/// ```
#[derive(Clone, Debug)]
pub struct KafkaProbe {
    servers: Vec<String>,
    timeout: Duration,
    tls: Option<TlsOptions>,
    sasl: Option<SaslLogin>,
    rules: Vec<PartitionRule>,
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
            tls: None,
            sasl: None,
            rules: vec![PartitionRule::all_topics()],
        })
    }

    /// Bound on the whole check (default 5 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Speaks TLS to every server, as Kafka's `security.protocol=SSL` (or
    /// `SASL_SSL` with [`sasl`](Self::sasl)), trusting and showing what
    /// `options` say. The certificate is checked against the host of each
    /// bootstrap server unless [`TlsOptions::server_name`] says otherwise;
    /// [`TlsOptions::danger_accept_invalid_certs`] turns checking off.
    #[must_use]
    pub fn tls_options(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
        self
    }

    /// Logs in with `mechanism` as `username` before asking for metadata,
    /// as Kafka's `sasl.mechanism` with `sasl.jaas.config`. `PLAIN` sends
    /// the password itself: use it over [`tls_options`](Self::tls_options) only.
    #[must_use]
    pub fn sasl(mut self, mechanism: SaslMechanism, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.sasl = Some(SaslLogin::new(mechanism, username.into(), password.into()));
        self
    }

    /// Adds a rule for offline and under-replicated partitions; the worst
    /// status of all rules wins. The default [`PartitionRule::all_topics`]
    /// stays: replace it with [`partition_rules`](Self::partition_rules).
    #[must_use]
    pub fn partition_rule(mut self, rule: PartitionRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Replaces every rule, the default one included; with none, partitions
    /// are only reported.
    #[must_use]
    pub fn partition_rules(mut self, rules: impl IntoIterator<Item = PartitionRule>) -> Self {
        self.rules = rules.into_iter().collect();
        self
    }

    /// The bootstrap servers, in the order they are tried.
    #[must_use]
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// One server, start to end.
    async fn session(&self, server: &str) -> Result<Found, KafkaError> {
        let tcp = TcpStream::connect(server).await?;
        tcp.set_nodelay(true)?;
        let Some(options) = &self.tls else {
            return self.converse(tcp, None).await;
        };
        let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
        let stream = options
            .handshake(Verification::Full, host, tcp)
            .await
            .map_err(|e| KafkaError::Tls(format!("TLS handshake failed: {e}")))?;
        let peer = PeerTls::of(stream.get_ref().1);
        self.converse(stream, Some(peer)).await
    }

    async fn converse<S>(&self, stream: S, tls: Option<PeerTls>) -> Result<Found, KafkaError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut conn = Connection { stream, next_id: 0 };
        let frame = conn.call(API_VERSIONS, 0, &[]).await?;
        let versions = wire::parse_api_versions(frame.reader()?).map_err(|e| match e {
            BrokerError::Code(_) => KafkaError::Protocol(format!("ApiVersions refused: {e}")),
            BrokerError::Malformed(what) => KafkaError::Protocol(format!("unexpected ApiVersions response: {what}")),
        })?;
        if let Some(login) = &self.sasl {
            authenticate(&mut conn, &versions, login).await?;
        }
        let version = versions.pick(METADATA, &METADATA_VERSIONS).ok_or_else(|| {
            let range = versions
                .range(METADATA)
                .map_or_else(|| "none".to_owned(), |(min, max)| format!("v{min} to v{max}"));
            KafkaError::Protocol(format!(
                "the broker speaks Metadata {range}, the probe v4 or v5 (Kafka 1.0 to 4.x)"
            ))
        })?;
        let frame = conn.call(METADATA, version, &wire::metadata_body()).await?;
        let metadata = wire::parse_metadata(frame.reader()?, version)
            .map_err(|what| KafkaError::Protocol(format!("unexpected metadata response: {what}")))?;
        Ok(Found { metadata, tls })
    }

    fn outcome(&self, found: Found) -> Outcome {
        let Found { metadata, tls } = found;
        let verdict = partitions::judge(&metadata, &self.rules);
        let (mut status, mut reason) = (verdict.status, verdict.reason);
        if let Some(at) = tls.as_ref().and_then(|t| t.not_after) {
            let days = (at - jiff::Timestamp::now().as_second()).div_euclid(SECONDS_PER_DAY);
            // Reachable only with verification off: say so first.
            if days < 0 {
                status = Status::Unhealthy;
                let expired = format!("certificate expired {} days ago", -days);
                reason = Some(reason.map_or_else(|| expired.clone(), |r| format!("{expired}; {r}")));
            }
        }

        let (mut internal, mut user): (Vec<String>, Vec<String>) = metadata
            .topics
            .iter()
            // A topic being deleted or failing authorisation is not listed.
            .filter(|t| t.error_code == 0 && !t.name.is_empty())
            .map(|t| t.name.clone())
            .partition(|t| t.starts_with("__"));
        user.sort();
        internal.sort();
        let mut outcome = Outcome::new(status)
            .detail("broker_count", metadata.broker_count)
            .detail("controller_id", metadata.controller_id)
            .detail("topics", user)
            .detail("internal_topics", internal);
        for (key, value) in verdict.details {
            outcome = outcome.detail(key, value);
        }
        if let Some(login) = &self.sasl {
            outcome = outcome.detail("sasl_mechanism", login.mechanism.as_str());
        }
        if let Some(peer) = tls {
            outcome = peer.add_to(outcome);
        }
        match reason {
            Some(reason) => outcome.error_text(reason),
            None => outcome,
        }
    }
}

impl Probe for KafkaProbe {
    fn name(&self) -> &str {
        "kafka"
    }

    async fn check(&self) -> Result<Outcome, ProbeError> {
        let deadline = Instant::now() + self.timeout;
        let mut failures = Vec::new();
        let mut kinds = Vec::new();
        for server in &self.servers {
            match tokio::time::timeout_at(deadline, self.session(server)).await {
                Ok(Ok(found)) => return Ok(self.outcome(found)),
                Ok(Err(error)) => {
                    kinds.push(error.kind());
                    failures.push(format!("{server}: {error}"));
                }
                Err(_) => {
                    failures.push(format!("{server}: no answer"));
                    return Err(ProbeError::with_kind(
                        "Timeout",
                        crate::redact(&format!(
                            "no metadata within {:?} ({})",
                            self.timeout,
                            failures.join("; ")
                        )),
                    ));
                }
            }
        }
        // One kind for all, or the general one.
        let kind = match kinds.split_first() {
            Some((first, rest)) if rest.iter().all(|k| k == first) => *first,
            _ => "KafkaError",
        };
        let what = match kind {
            "TlsError" => "no bootstrap server completed the TLS handshake",
            "SaslError" => "no bootstrap server accepted the SASL login",
            _ => "no bootstrap server answered",
        };
        Err(ProbeError::with_kind(
            kind,
            crate::redact(&format!("{what} ({})", failures.join("; "))),
        ))
    }
}

/// What one server told.
struct Found {
    metadata: Metadata,
    tls: Option<PeerTls>,
}

/// One Kafka connection: requests in turn, each answer checked against its
/// correlation id.
struct Connection<S> {
    stream: S,
    next_id: i32,
}

/// A response frame, its correlation id not yet read.
struct Frame {
    bytes: Vec<u8>,
    correlation_id: i32,
}

impl Frame {
    fn reader(&self) -> Result<wire::Reader<'_>, KafkaError> {
        wire::response_body(&self.bytes, self.correlation_id)
            .map_err(|what| KafkaError::Protocol(format!("unexpected response: {what}")))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    async fn call(&mut self, api_key: i16, version: i16, body: &[u8]) -> Result<Frame, KafkaError> {
        self.next_id += 1;
        let correlation_id = self.next_id;
        self.stream
            .write_all(&wire::request(api_key, version, correlation_id, body))
            .await
            .map_err(closed)?;
        self.stream.flush().await.map_err(closed)?;
        let mut head = [0u8; 4];
        self.stream.read_exact(&mut head).await.map_err(closed)?;
        let size = i32::from_be_bytes(head);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=MAX_RESPONSE).contains(s))
            .ok_or_else(|| KafkaError::Protocol(not_a_frame(head)))?;
        let mut bytes = vec![0; size];
        self.stream.read_exact(&mut bytes).await.map_err(closed)?;
        Ok(Frame { bytes, correlation_id })
    }
}

/// An end of stream where an answer was due: brokers close the connection
/// on a request they will not serve, mostly one that lacks TLS or SASL.
/// Why `head` cannot start a Kafka response, naming what it looks like.
fn not_a_frame(head: [u8; 4]) -> String {
    let size = i32::from_be_bytes(head);
    // A TLS record (alert or handshake, version 3.x) reads as a size far
    // above the limit: a TLS listener answering a plaintext client.
    if matches!(head, [0x15 | 0x16, 0x03, 0..=0x04, _]) {
        format!("the server answered in TLS (frame size {size}): set tls_options on the probe")
    } else if &head == b"HTTP" {
        format!("the server answered in HTTP (frame size {size}), not Kafka")
    } else {
        format!("unexpected response: frame size {size}")
    }
}

/// TLS failures that surface on a read or write are named as such.
fn closed(error: io::Error) -> KafkaError {
    if let Some(tls) = crate::tls::explain_chain(&error, None) {
        KafkaError::Tls(format!("TLS handshake failed: {tls}"))
    } else if error.kind() == io::ErrorKind::UnexpectedEof {
        KafkaError::Closed
    } else {
        KafkaError::Io(error)
    }
}

/// `SaslHandshake`, then one or two `SaslAuthenticate` rounds.
async fn authenticate<S>(conn: &mut Connection<S>, versions: &ApiVersions, login: &SaslLogin) -> Result<(), KafkaError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mechanism = login.mechanism.as_str();
    let sasl = |what: String| KafkaError::Sasl(format!("SASL {mechanism}: {what}"));
    // SaslAuthenticate v1 only adds a session lifetime after the fields
    // read here; v2 is a flexible version.
    let (Some(_), Some(auth_version)) = (
        versions.pick(SASL_HANDSHAKE, &[1]),
        versions.pick(SASL_AUTHENTICATE, &[0, 1]),
    ) else {
        return Err(sasl(
            "the broker has no SaslHandshake v1 and SaslAuthenticate v0 or v1 (Kafka 1.0 or later)".to_owned(),
        ));
    };
    let frame = conn
        .call(SASL_HANDSHAKE, 1, &wire::sasl_handshake_body(mechanism))
        .await
        .map_err(|e| match e {
            // Some brokers (Tansu) close the connection on a mechanism
            // they do not enable rather than answering with their list.
            KafkaError::Closed => sasl(format!(
                "the broker closed the connection at the SASL handshake (does it enable {mechanism}?)"
            )),
            other => other,
        })?;
    let (code, offered) = wire::parse_sasl_handshake(frame.reader()?)
        .map_err(|what| KafkaError::Protocol(format!("unexpected SaslHandshake response: {what}")))?;
    match code {
        0 => {}
        33 => {
            let offered = if offered.is_empty() {
                "none".to_owned()
            } else {
                offered.join(", ")
            };
            return Err(sasl(format!("the broker does not enable it (it offers: {offered})")));
        }
        code => {
            return Err(sasl(format!(
                "the broker refused the handshake: {}",
                wire::error_name(code)
            )));
        }
    }
    match login.start().map_err(sasl)? {
        Conversation::Plain(token) => {
            round(conn, auth_version, &token, mechanism).await?;
        }
        Conversation::Scram(mut client) => {
            let server_first = round(conn, auth_version, &client.first(), mechanism).await?;
            let first = client.read_server_first(&server_first).map_err(sasl)?;
            let keys = login
                .scram_keys(client.hash, &first.salt, first.iterations)
                .await
                .map_err(sasl)?;
            let last = client.client_final(&server_first, &first, &keys);
            let server_final = round(conn, auth_version, &last, mechanism).await?;
            client.verify_server_final(&server_final).map_err(sasl)?;
        }
    }
    Ok(())
}

/// One `SaslAuthenticate` (v0 or v1): the server's token, or its refusal.
async fn round<S>(conn: &mut Connection<S>, version: i16, token: &[u8], mechanism: &str) -> Result<Vec<u8>, KafkaError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = conn
        .call(SASL_AUTHENTICATE, version, &wire::sasl_authenticate_body(token))
        .await
        .map_err(|e| match e {
            // Kafka answers a failed PLAIN login by closing the connection
            // when the client is too old to be told; say what it means.
            KafkaError::Closed => KafkaError::Sasl(format!(
                "SASL {mechanism}: the broker closed the connection during the login"
            )),
            other => other,
        })?;
    let (code, message, server_token) = wire::parse_sasl_authenticate(frame.reader()?)
        .map_err(|what| KafkaError::Protocol(format!("unexpected SaslAuthenticate response: {what}")))?;
    if code != 0 {
        let message = message.map(|m| format!(": {m}")).unwrap_or_default();
        return Err(KafkaError::Sasl(format!(
            "SASL {mechanism}: authentication failed: {}{message}",
            wire::error_name(code)
        )));
    }
    Ok(server_token)
}

#[derive(Debug)]
enum KafkaError {
    Io(io::Error),
    /// The server closed the connection where an answer was due.
    Closed,
    Tls(String),
    Sasl(String),
    Protocol(String),
}

impl KafkaError {
    fn kind(&self) -> &'static str {
        match self {
            Self::Tls(_) => "TlsError",
            Self::Sasl(_) => "SaslError",
            Self::Io(_) | Self::Closed | Self::Protocol(_) => "KafkaError",
        }
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => write!(f, "{error}"),
            Self::Closed => {
                f.write_str("the server closed the connection without answering (does it want TLS or SASL?)")
            }
            Self::Tls(what) | Self::Sasl(what) | Self::Protocol(what) => f.write_str(what),
        }
    }
}

impl From<io::Error> for KafkaError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

    use super::wire::tests::{Out, metadata_response, partition, topic};
    use super::wire::{self, Metadata};
    use super::{Found, KafkaProbe, PartitionRule, SaslMechanism};
    use crate::Status;
    use crate::tls::{PeerTls, TlsOptions};

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

    fn found(metadata: &Metadata, tls: Option<PeerTls>) -> Found {
        // Through the codec, as a broker would send it.
        let bytes = metadata_response(metadata, 5);
        let parsed = wire::parse_metadata(wire::response_body(&bytes, 7).unwrap(), 5).unwrap();
        Found { metadata: parsed, tls }
    }

    #[test]
    fn outcome_lists_topics_and_partition_health() {
        let metadata = Metadata {
            broker_count: 3,
            cluster_id: Some("c".into()),
            controller_id: 2,
            topics: vec![
                topic(
                    "orders",
                    vec![partition(0, 1, &[1, 2], &[1, 2]), partition(1, -1, &[1, 2], &[])],
                ),
                topic("__consumer_offsets", vec![partition(0, 1, &[1, 2, 3], &[1])]),
                wire::TopicMetadata {
                    error_code: 3,
                    ..topic("gone", Vec::new())
                },
            ],
        };
        let probe = KafkaProbe::new("b:9092").unwrap();
        let outcome = probe.outcome(found(&metadata, None));
        assert_eq!(outcome.status(), Status::Degraded);
        assert_eq!(outcome.error(), Some("1 offline partition"));
        assert_eq!(
            serde_json::Value::Object(outcome.details().clone()),
            serde_json::json!({"broker_count": 3, "controller_id": 2,
                "topics": ["orders"], "internal_topics": ["__consumer_offsets"],
                "partition_count": 3,
                "offline_partition_count": 1, "offline_partitions": {"orders": [1]},
                "under_replicated_partition_count": 1,
                "under_replicated_partitions": {"__consumer_offsets": [0]}})
        );

        let strict = probe.clone().partition_rule(PartitionRule::topics(["orders"])).sasl(
            SaslMechanism::ScramSha256,
            "app",
            "pw",
        );
        let outcome = strict.outcome(found(&metadata, None));
        assert_eq!(outcome.status(), Status::Unhealthy);
        assert_eq!(outcome.error(), Some("1 offline partition of orders"));
        assert_eq!(outcome.details()["sasl_mechanism"], "SCRAM-SHA-256");

        let quiet = probe.partition_rules([]).outcome(found(&metadata, None));
        assert_eq!((quiet.status(), quiet.error()), (Status::Healthy, None));
    }

    #[test]
    fn an_expired_certificate_seen_without_verification_is_unhealthy() {
        let metadata = Metadata {
            broker_count: 1,
            topics: vec![topic("orders", vec![partition(0, 0, &[0], &[0])])],
            ..Metadata::default()
        };
        let now = jiff::Timestamp::now().as_second();
        let probe = KafkaProbe::new("b:9092").unwrap().tls_options(TlsOptions::new());
        let session = |not_after| PeerTls {
            version: Some("TLSv1.3".into()),
            not_after: Some(not_after),
        };
        let fine = probe.outcome(found(&metadata, Some(session(now + 10 * 86_400 + 60))));
        assert_eq!(fine.status(), Status::Healthy);
        assert_eq!(fine.details()["cert_days_remaining"], 10);
        assert_eq!(fine.details()["tls_version"], "TLSv1.3");
        assert!(fine.details()["cert_not_after"].is_string());
        let expired = probe.outcome(found(&metadata, Some(session(now - 3 * 86_400 + 60))));
        assert_eq!(expired.status(), Status::Unhealthy);
        assert_eq!(expired.error(), Some("certificate expired 3 days ago"));
    }

    /// A broker on the other end of a pipe that answers each request with
    /// the next of `bodies` (the correlation id put in front), and hands
    /// back the requests it read.
    fn scripted(bodies: Vec<Vec<u8>>) -> (DuplexStream, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let (client, mut broker) = tokio::io::duplex(1 << 16);
        let task = tokio::spawn(async move {
            let mut requests = Vec::new();
            for body in bodies {
                let size = usize::try_from(broker.read_i32().await.unwrap()).unwrap();
                let mut request = vec![0; size];
                broker.read_exact(&mut request).await.unwrap();
                let mut frame = request[4..8].to_vec();
                frame.extend_from_slice(&body);
                broker.write_all(&wire::request_size(&frame)).await.unwrap();
                broker.write_all(&frame).await.unwrap();
                requests.push(request);
            }
            requests
        });
        (client, task)
    }

    fn api_versions() -> Vec<u8> {
        let mut o = Out::default();
        o.i16(0).len(4);
        for (key, min, max) in [(3, 0, 12), (17, 0, 1), (18, 0, 3), (36, 0, 2)] {
            o.i16(key).i16(min).i16(max);
        }
        o.0
    }

    fn handshake(code: i16, mechanisms: &[&str]) -> Vec<u8> {
        let mut o = Out::default();
        o.i16(code).len(mechanisms.len());
        for m in mechanisms {
            o.string(m);
        }
        o.0
    }

    fn authenticated(code: i16, message: Option<&str>) -> Vec<u8> {
        let mut o = Out::default();
        o.i16(code);
        match message {
            Some(m) => o.string(m),
            None => o.i16(-1),
        };
        // No token, then v1's session lifetime (an i64), which is not read.
        o.i32(0).i32(0).i32(0);
        o.0
    }

    fn healthy_metadata() -> Vec<u8> {
        let metadata = Metadata {
            broker_count: 1,
            topics: vec![topic("orders", vec![partition(0, 0, &[0], &[0])])],
            ..Metadata::default()
        };
        metadata_response(&metadata, 5)[4..].to_vec()
    }

    fn plain_probe() -> KafkaProbe {
        KafkaProbe::new("b:9092")
            .unwrap()
            .sasl(SaslMechanism::Plain, "key-123", "secret-456")
    }

    #[tokio::test]
    async fn a_plain_login_then_metadata_v5() {
        let (stream, broker) = scripted(vec![
            api_versions(),
            handshake(0, &["PLAIN"]),
            authenticated(0, None),
            healthy_metadata(),
        ]);
        let found = plain_probe().converse(stream, None).await.unwrap();
        assert_eq!(found.metadata.topics[0].name, "orders");
        let requests = broker.await.unwrap();
        // ApiVersions v0, SaslHandshake v1, SaslAuthenticate v1, Metadata v5.
        let keys: Vec<_> = requests.iter().map(|r| (r[1], r[3])).collect();
        assert_eq!(keys, [(18, 0), (17, 1), (36, 1), (3, 5)]);
        assert!(requests[1].ends_with(b"\0\x05PLAIN"));
        assert!(requests[2].ends_with(b"\0\0\0\x13\0key-123\0secret-456"));
    }

    #[tokio::test]
    async fn sasl_refusals_say_what_the_broker_said() {
        let (stream, _broker) = scripted(vec![api_versions(), handshake(33, &["SCRAM-SHA-256", "SCRAM-SHA-512"])]);
        let error = plain_probe().converse(stream, None).await.err().unwrap();
        assert_eq!(error.kind(), "SaslError");
        assert_eq!(
            error.to_string(),
            "SASL PLAIN: the broker does not enable it (it offers: SCRAM-SHA-256, SCRAM-SHA-512)"
        );

        let (stream, _broker) = scripted(vec![
            api_versions(),
            handshake(0, &["PLAIN"]),
            authenticated(58, Some("Invalid username or password")),
        ]);
        let error = plain_probe().converse(stream, None).await.err().unwrap();
        assert_eq!(
            error.to_string(),
            "SASL PLAIN: authentication failed: SASL_AUTHENTICATION_FAILED (58): Invalid username or password"
        );

        let mut old = Out::default();
        old.i16(0).len(2).i16(3).i16(0).i16(4).i16(18).i16(0).i16(0);
        let (stream, _broker) = scripted(vec![old.0.clone()]);
        let error = plain_probe().converse(stream, None).await.err().unwrap();
        assert!(error.to_string().contains("Kafka 1.0 or later"), "{error}");

        // Without a login, Metadata v4 from a broker that has no v5.
        let metadata = Metadata {
            broker_count: 1,
            ..Metadata::default()
        };
        let (stream, broker) = scripted(vec![old.0, metadata_response(&metadata, 4)[4..].to_vec()]);
        let probe = KafkaProbe::new("b:9092").unwrap();
        assert_eq!(probe.converse(stream, None).await.unwrap().metadata.broker_count, 1);
        assert_eq!(broker.await.unwrap()[1][3], 4);
    }

    #[test]
    fn foreign_answers_are_named() {
        assert!(super::not_a_frame([0x15, 0x03, 0x03, 0x00]).starts_with("the server answered in TLS"));
        assert!(super::not_a_frame(*b"HTTP").starts_with("the server answered in HTTP"));
        assert_eq!(super::not_a_frame([0xff; 4]), "unexpected response: frame size -1");
    }

    #[test]
    fn debug_shows_no_credentials() {
        let probe = KafkaProbe::new("b:9092")
            .unwrap()
            .sasl(SaslMechanism::Plain, "API-KEY-123", "s3cret-value");
        let debug = format!("{probe:?}");
        assert!(
            !debug.contains("API-KEY-123") && !debug.contains("s3cret-value"),
            "{debug}"
        );
        assert!(debug.contains("Plain"), "{debug}");
    }
}
