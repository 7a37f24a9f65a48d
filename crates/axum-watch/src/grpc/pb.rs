//! The messages of `grpc.health.v1` (grpc-proto's `health.proto`, `List`
//! included), written with prost's derives rather than generated, so that
//! the build needs neither `protoc` nor a build script.
//!
//! tonic-health's generated types lack `List`; the wire format is the
//! contract, and the tests check it against tonic-health's own client and
//! Python's `grpcio-health-checking`.

use std::collections::HashMap;

/// `HealthCheckRequest { string service = 1; }`
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(crate) struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub(crate) service: String,
}

/// `HealthCheckResponse { ServingStatus status = 1; }`
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub(crate) struct HealthCheckResponse {
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub(crate) status: i32,
}

impl HealthCheckResponse {
    pub(crate) fn of(status: ServingStatus) -> Self {
        Self { status: status as i32 }
    }
}

/// `HealthListRequest {}`
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub(crate) struct HealthListRequest {}

/// `HealthListResponse { map<string, HealthCheckResponse> statuses = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct HealthListResponse {
    #[prost(map = "string, message", tag = "1")]
    pub(crate) statuses: HashMap<String, HealthCheckResponse>,
}

/// `HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub(crate) enum ServingStatus {
    Unknown = 0,
    Serving = 1,
    NotServing = 2,
    /// Used only by `Watch`.
    ServiceUnknown = 3,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prost::Message;

    use super::*;

    /// The bytes protoc's encoders produce for the same messages.
    #[test]
    fn wire_format_matches_the_proto() {
        let request = HealthCheckRequest {
            service: "db".to_owned(),
        };
        assert_eq!(request.encode_to_vec(), b"\x0a\x02db");
        assert_eq!(
            HealthCheckResponse::of(ServingStatus::NotServing).encode_to_vec(),
            b"\x08\x02"
        );
        // proto3 leaves default values out: UNKNOWN is the empty message.
        assert!(
            HealthCheckResponse::of(ServingStatus::Unknown)
                .encode_to_vec()
                .is_empty()
        );
        let list = HealthListResponse {
            statuses: HashMap::from([("a".to_owned(), HealthCheckResponse::of(ServingStatus::Serving))]),
        };
        // Entry 1 (len 7): key "a" (field 1), value (field 2, len 2) status 1.
        assert_eq!(list.encode_to_vec(), b"\x0a\x07\x0a\x01a\x12\x02\x08\x01");
        let decoded = HealthListResponse::decode(&list.encode_to_vec()[..]).unwrap();
        assert_eq!(decoded, list);
    }
}
