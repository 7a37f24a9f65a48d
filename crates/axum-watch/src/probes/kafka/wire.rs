//! The few Kafka messages the probe speaks, in their non-flexible versions:
//! `ApiVersions` v0, `SaslHandshake` v1, `SaslAuthenticate` v0 or v1 and
//! `Metadata` v4 or v5. Every broker from Kafka 1.0 to 4.x answers them
//! (4.0 dropped `Metadata` v0–3 and `SaslHandshake` v0, which the probe
//! never sends).
//!
//! Written by hand rather than with the `kafka-protocol` crate: its decoder
//! (0.18, the newest) sizes every array from the count on the wire before
//! reading an element, so a ten-byte answer claiming two billion brokers
//! asks for 200 GB at once and aborts the whole process, which a probe
//! running inside the service must never do. Here every count is checked
//! against the bytes left first. Four small messages do not repay a
//! generated crate of every Kafka message (3.5 MB of source, some twenty
//! seconds of every clean build of the `kafka` feature on two cores).

use std::fmt;

pub(super) const METADATA: i16 = 3;
pub(super) const SASL_HANDSHAKE: i16 = 17;
pub(super) const API_VERSIONS: i16 = 18;
pub(super) const SASL_AUTHENTICATE: i16 = 36;

const CLIENT_ID: &str = "axum-watch";

/// A size-prefixed request: header v1 (key, version, correlation id,
/// client id), then `body`.
pub(super) fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.i16(api_key);
    w.i16(version);
    w.i32(correlation_id);
    w.string(Some(CLIENT_ID));
    w.0.extend_from_slice(body);
    let mut frame = request_size(&w.0).to_vec();
    frame.extend_from_slice(&w.0);
    frame
}

/// The size prefix of `frame`; requests are a few hundred bytes.
pub(super) fn request_size(frame: &[u8]) -> [u8; 4] {
    i32::try_from(frame.len()).unwrap_or(i32::MAX).to_be_bytes()
}

/// `Metadata` for every topic, creating none (v4 and v5 share the layout).
pub(super) fn metadata_body() -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(-1); // topics: null = all
    w.i8(0); // allow_auto_topic_creation: false
    w.0
}

/// `SaslHandshake` v1 naming `mechanism`.
pub(super) fn sasl_handshake_body(mechanism: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(Some(mechanism));
    w.0
}

/// `SaslAuthenticate` v0 or v1 (the same request) carrying `token`.
pub(super) fn sasl_authenticate_body(token: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(token);
    w.0
}

/// Big-endian Kafka primitives into a buffer.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn i8(&mut self, v: i8) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn string(&mut self, s: Option<&str>) {
        match s {
            // Mechanism names and the client id: far below 32 KiB.
            Some(s) => {
                self.i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
                self.0.extend_from_slice(s.as_bytes());
            }
            None => self.i16(-1),
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
        self.0.extend_from_slice(b);
    }
}

/// Reads big-endian Kafka primitives off a response frame; every count is
/// checked against the bytes left before anything is allocated.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
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

    pub(super) fn i32(&mut self, what: &str) -> Result<i32, String> {
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

    /// Nullable bytes; null reads as empty.
    fn bytes(&mut self, what: &str) -> Result<&'a [u8], String> {
        let len = self.i32(what)?;
        match usize::try_from(len) {
            Ok(len) => self.take(len, what),
            Err(_) => Ok(&[]),
        }
    }

    /// An array length, each element at least `min_size` bytes: a count the
    /// bytes left cannot hold is garbage. Null arrays count as empty.
    fn array(&mut self, what: &str, min_size: usize) -> Result<usize, String> {
        let len = self.i32(what)?;
        let len = usize::try_from(len).unwrap_or(0);
        if len > self.bytes.len() / min_size.max(1) {
            return Err(format!("impossible {what} count {len}"));
        }
        Ok(len)
    }

    fn i32_array(&mut self, what: &str) -> Result<Vec<i32>, String> {
        let n = self.array(what, 4)?;
        (0..n).map(|_| self.i32(what)).collect()
    }
}

/// Reads the response header (the correlation id) and checks it.
pub(super) fn response_body(frame: &[u8], correlation_id: i32) -> Result<Reader<'_>, String> {
    let mut r = Reader::new(frame);
    let got = r.i32("correlation id")?;
    if got != correlation_id {
        return Err(format!("correlation id {got}, expected {correlation_id}"));
    }
    Ok(r)
}

/// The version ranges a broker supports, from `ApiVersions` v0.
#[derive(Debug, PartialEq)]
pub(super) struct ApiVersions(Vec<(i16, i16, i16)>);

impl ApiVersions {
    /// The `(min, max)` versions of `api_key`, when the broker has it.
    pub(super) fn range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.0
            .iter()
            .find(|(key, _, _)| *key == api_key)
            .map(|(_, min, max)| (*min, *max))
    }

    /// The newest of `wanted` (oldest first) that the broker speaks.
    pub(super) fn pick(&self, api_key: i16, wanted: &[i16]) -> Option<i16> {
        let (min, max) = self.range(api_key)?;
        wanted.iter().rev().copied().find(|v| (min..=max).contains(v))
    }
}

pub(super) fn parse_api_versions(mut r: Reader<'_>) -> Result<ApiVersions, BrokerError> {
    let error = r.i16("error code")?;
    // A broker that cannot answer v0 says so with an error code and, from
    // Kafka 2.4, its own ranges anyway; only the code matters here.
    if error != 0 {
        return Err(BrokerError::Code(error));
    }
    let n = r.array("api keys", 6)?;
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        keys.push((r.i16("api key")?, r.i16("min version")?, r.i16("max version")?));
    }
    Ok(ApiVersions(keys))
}

/// `SaslHandshake` v1: the mechanisms the broker enables, or its error.
pub(super) fn parse_sasl_handshake(mut r: Reader<'_>) -> Result<(i16, Vec<String>), String> {
    let error = r.i16("error code")?;
    let n = r.array("mechanisms", 2)?;
    let mut mechanisms = Vec::with_capacity(n);
    for _ in 0..n {
        mechanisms.push(r.string("mechanism")?.unwrap_or_default());
    }
    Ok((error, mechanisms))
}

/// `SaslAuthenticate` v0 or v1: error code, error message, the server's
/// token (v1's session lifetime after them is not read).
pub(super) fn parse_sasl_authenticate(mut r: Reader<'_>) -> Result<(i16, Option<String>, Vec<u8>), String> {
    let error = r.i16("error code")?;
    let message = r.string("error message")?;
    let token = r.bytes("auth bytes")?.to_vec();
    Ok((error, message, token))
}

/// One partition as `Metadata` describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct PartitionMetadata {
    pub(super) error_code: i16,
    pub(super) index: i32,
    /// `-1` when the partition has no leader: it is offline.
    pub(super) leader: i32,
    pub(super) replicas: Vec<i32>,
    pub(super) isr: Vec<i32>,
    /// From v5 on; empty before.
    pub(super) offline_replicas: Vec<i32>,
}

/// One topic as `Metadata` describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct TopicMetadata {
    pub(super) error_code: i16,
    pub(super) name: String,
    pub(super) internal: bool,
    pub(super) partitions: Vec<PartitionMetadata>,
}

/// What the probe reads from a `Metadata` response.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Metadata {
    pub(super) broker_count: usize,
    pub(super) cluster_id: Option<String>,
    pub(super) controller_id: i32,
    pub(super) topics: Vec<TopicMetadata>,
}

/// Parses a `Metadata` v4 or v5 response body (after the correlation id).
pub(super) fn parse_metadata(mut r: Reader<'_>, version: i16) -> Result<Metadata, String> {
    r.i32("throttle time")?;
    // id, host (2), port, rack (2)
    let broker_count = r.array("brokers", 12)?;
    for _ in 0..broker_count {
        r.i32("broker id")?;
        r.string("broker host")?;
        r.i32("broker port")?;
        r.string("broker rack")?;
    }
    let cluster_id = r.string("cluster id")?;
    let controller_id = r.i32("controller id")?;
    // error code, name (2), is_internal, partitions (4)
    let topic_count = r.array("topics", 9)?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let error_code = r.i16("topic error code")?;
        let name = r.string("topic name")?.unwrap_or_default();
        let internal = r.i8("topic is_internal")? != 0;
        // error code, index, leader, replicas (4), isr (4)
        let partition_count = r.array("partitions", 18)?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let error_code = r.i16("partition error code")?;
            let index = r.i32("partition index")?;
            let leader = r.i32("partition leader")?;
            let replicas = r.i32_array("replicas")?;
            let isr = r.i32_array("isr")?;
            let offline_replicas = if version >= 5 {
                r.i32_array("offline replicas")?
            } else {
                Vec::new()
            };
            partitions.push(PartitionMetadata {
                error_code,
                index,
                leader,
                replicas,
                isr,
                offline_replicas,
            });
        }
        topics.push(TopicMetadata {
            error_code,
            name,
            internal,
            partitions,
        });
    }
    Ok(Metadata {
        broker_count,
        cluster_id,
        controller_id,
        topics,
    })
}

/// A broker's answer that is an error code, or a malformed answer.
#[derive(Debug, PartialEq)]
pub(super) enum BrokerError {
    Code(i16),
    Malformed(String),
}

impl From<String> for BrokerError {
    fn from(what: String) -> Self {
        Self::Malformed(what)
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => f.write_str(&error_name(*code)),
            Self::Malformed(what) => f.write_str(what),
        }
    }
}

/// The name Kafka gives an error code, for the ones a probe meets.
pub(super) fn error_name(code: i16) -> String {
    let name = match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        8 => "BROKER_NOT_AVAILABLE",
        9 => "REPLICA_NOT_AVAILABLE",
        15 => "COORDINATOR_NOT_AVAILABLE",
        19 => "NOT_ENOUGH_REPLICAS",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        31 => "CLUSTER_AUTHORIZATION_FAILED",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        34 => "ILLEGAL_SASL_STATE",
        35 => "UNSUPPORTED_VERSION",
        56 => "KAFKA_STORAGE_ERROR",
        58 => "SASL_AUTHENTICATION_FAILED",
        _ => return format!("error code {code}"),
    };
    format!("{name} ({code})")
}

#[cfg(test)]
pub(super) mod tests {
    use super::{
        ApiVersions, BrokerError, Metadata, PartitionMetadata, Reader, TopicMetadata, metadata_body,
        parse_api_versions, parse_metadata, parse_sasl_authenticate, parse_sasl_handshake, request, response_body,
        sasl_authenticate_body, sasl_handshake_body,
    };

    /// Writes responses the way a broker does, for the tests.
    #[derive(Default)]
    pub(in super::super) struct Out(pub(in super::super) Vec<u8>);

    impl Out {
        pub(in super::super) fn i16(&mut self, v: i16) -> &mut Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub(in super::super) fn i32(&mut self, v: i32) -> &mut Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        pub(in super::super) fn len(&mut self, n: usize) -> &mut Self {
            self.i32(i32::try_from(n).unwrap())
        }
        pub(in super::super) fn string(&mut self, s: &str) -> &mut Self {
            self.i16(i16::try_from(s.len()).unwrap());
            self.0.extend_from_slice(s.as_bytes());
            self
        }
        pub(in super::super) fn i32s(&mut self, v: &[i32]) -> &mut Self {
            self.len(v.len());
            for x in v {
                self.i32(*x);
            }
            self
        }
    }

    /// A `Metadata` response (correlation id 7) with `metadata` in it.
    pub(in super::super) fn metadata_response(metadata: &Metadata, version: i16) -> Vec<u8> {
        let mut o = Out::default();
        o.i32(7).i32(0).len(metadata.broker_count);
        for id in 0..metadata.broker_count {
            o.i32(i32::try_from(id).unwrap()).string("b").i32(9092).i16(-1);
        }
        match &metadata.cluster_id {
            Some(id) => o.string(id),
            None => o.i16(-1),
        };
        o.i32(metadata.controller_id).len(metadata.topics.len());
        for t in &metadata.topics {
            o.i16(t.error_code).string(&t.name);
            o.0.push(u8::from(t.internal));
            o.len(t.partitions.len());
            for p in &t.partitions {
                o.i16(p.error_code)
                    .i32(p.index)
                    .i32(p.leader)
                    .i32s(&p.replicas)
                    .i32s(&p.isr);
                if version >= 5 {
                    o.i32s(&p.offline_replicas);
                }
            }
        }
        o.0
    }

    pub(in super::super) fn partition(index: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionMetadata {
        PartitionMetadata {
            error_code: 0,
            index,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline_replicas: Vec::new(),
        }
    }

    pub(in super::super) fn topic(name: &str, partitions: Vec<PartitionMetadata>) -> TopicMetadata {
        TopicMetadata {
            error_code: 0,
            name: name.to_owned(),
            internal: name.starts_with("__"),
            partitions,
        }
    }

    #[test]
    fn request_bytes_are_header_v1_then_body() {
        let frame = request(3, 5, 9, &metadata_body());
        let mut want = vec![0, 0, 0, 25, 0, 3, 0, 5, 0, 0, 0, 9, 0, 10];
        want.extend_from_slice(b"axum-watch");
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0]);
        assert_eq!(frame, want);
        assert_eq!(sasl_handshake_body("PLAIN"), b"\0\x05PLAIN");
        assert_eq!(sasl_authenticate_body(b"ab"), b"\0\0\0\x02ab");
        // ApiVersions v0 has an empty body: the header alone.
        assert_eq!(request(18, 0, 1, &[]).len(), 4 + 2 + 2 + 4 + 12);
    }

    #[test]
    fn metadata_round_trips_in_v4_and_v5() {
        let mut offline = partition(1, -1, &[1, 2], &[]);
        offline.offline_replicas = vec![1, 2];
        let metadata = Metadata {
            broker_count: 3,
            cluster_id: Some("cluster-1".into()),
            controller_id: 2,
            topics: vec![
                topic("orders", vec![partition(0, 1, &[1, 2, 3], &[1, 2]), offline]),
                topic("__consumer_offsets", vec![partition(0, 3, &[3], &[3])]),
            ],
        };
        let v5 = metadata_response(&metadata, 5);
        assert_eq!(parse_metadata(response_body(&v5, 7).unwrap(), 5).unwrap(), metadata);
        let v4 = metadata_response(&metadata, 4);
        let parsed = parse_metadata(response_body(&v4, 7).unwrap(), 4).unwrap();
        assert!(parsed.topics[0].partitions[1].offline_replicas.is_empty());
        assert_eq!(parsed.topics[0].partitions[1].leader, -1);
        assert_eq!(parsed.topics[1].name, "__consumer_offsets");
        assert!(parsed.topics[1].internal);
    }

    #[test]
    fn rejects_truncated_mismatched_or_impossible_responses() {
        let metadata = Metadata {
            broker_count: 1,
            topics: vec![topic("orders", vec![partition(0, 0, &[0], &[0])])],
            ..Metadata::default()
        };
        let bytes = metadata_response(&metadata, 5);
        assert_eq!(response_body(&bytes, 8).err().unwrap(), "correlation id 7, expected 8");
        for cut in [0, 3, 10, bytes.len() - 1] {
            let err = response_body(&bytes[..cut], 7).and_then(|r| parse_metadata(r, 5));
            assert!(err.unwrap_err().starts_with("truncated at"), "{cut}");
        }
        // Ten bytes that claim two billion brokers: refused before any
        // allocation, where a decoder trusting the count would abort.
        let mut huge = bytes[..8].to_vec();
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        huge.extend_from_slice(&[0, 0]);
        let err = parse_metadata(response_body(&huge, 7).unwrap(), 5).unwrap_err();
        assert!(err.starts_with("impossible brokers count"), "{err}");
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
        assert!(
            r.i32_array("replicas")
                .unwrap_err()
                .starts_with("impossible replicas count")
        );
        assert!(parse_sasl_handshake(Reader::new(&[0, 0, 0x7f, 0xff, 0xff, 0xff])).is_err());
    }

    #[test]
    fn api_versions_pick_the_newest_common_version() {
        let mut o = Out::default();
        o.i16(0).len(2).i16(3).i16(4).i16(12).i16(17).i16(0).i16(1);
        let versions = parse_api_versions(Reader::new(&o.0)).unwrap();
        assert_eq!(versions, ApiVersions(vec![(3, 4, 12), (17, 0, 1)]));
        assert_eq!(versions.pick(3, &[4, 5]), Some(5));
        assert_eq!(versions.pick(17, &[1]), Some(1));
        assert_eq!(versions.pick(36, &[0]), None);
        let old = ApiVersions(vec![(3, 0, 4)]);
        assert_eq!(old.pick(3, &[4, 5]), Some(4));
        let future = ApiVersions(vec![(3, 9, 13)]);
        assert_eq!(future.pick(3, &[4, 5]), None);
        let mut refused = Out::default();
        refused.i16(35).len(0);
        assert_eq!(parse_api_versions(Reader::new(&refused.0)), Err(BrokerError::Code(35)));
        assert_eq!(BrokerError::Code(35).to_string(), "UNSUPPORTED_VERSION (35)");
        assert_eq!(BrokerError::Code(999).to_string(), "error code 999");
    }

    #[test]
    fn sasl_responses() {
        let mut o = Out::default();
        o.i16(33).len(2).string("SCRAM-SHA-256").string("SCRAM-SHA-512");
        assert_eq!(
            parse_sasl_handshake(Reader::new(&o.0)).unwrap(),
            (33, vec!["SCRAM-SHA-256".to_owned(), "SCRAM-SHA-512".to_owned()])
        );
        let mut o = Out::default();
        o.i16(58).string("Authentication failed").i32(-1);
        assert_eq!(
            parse_sasl_authenticate(Reader::new(&o.0)).unwrap(),
            (58, Some("Authentication failed".to_owned()), Vec::new())
        );
        let mut o = Out::default();
        o.i16(0).i16(-1).i32(3);
        o.0.extend_from_slice(b"v=x");
        assert_eq!(
            parse_sasl_authenticate(Reader::new(&o.0)).unwrap(),
            (0, None, b"v=x".to_vec())
        );
    }
}
