//! `GET|POST|DELETE maintenance`, with strict validation: every refusal is a
//! 4xx JSON error naming the field and the reason.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::response::Response;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::{Face, json};
use crate::model::Timestamp;

/// The largest body `POST maintenance` reads.
pub(crate) const BODY_LIMIT: usize = 1024;
/// The longest window `minutes` (and `until`) may ask for: one year.
const MAX_MINUTES: f64 = 525_600.0;
/// The shortest window: anything less rounds to nothing.
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Refusal {
    #[serde(skip)]
    pub(crate) code: StatusCode,
    pub(crate) detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<&'static str>,
}

impl Refusal {
    fn new(code: StatusCode, field: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            field,
        }
    }

    fn response(&self) -> Response {
        json(self.code, self)
    }
}

/// The end a `POST` body asks for: `None` for no end. `now` is the current
/// wall-clock time, against which `until` must lie in the future.
pub(crate) fn parse_request(
    content_type: Option<&[u8]>,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<Option<Timestamp>, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = content_type.and_then(|v| std::str::from_utf8(v).ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json")
    });
    if !is_json {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "the body must be JSON sent as content-type: application/json",
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            None,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(fields) = value else {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            "the body must be a JSON object: {\"minutes\": N} or {\"until\": \"<RFC 3339 with offset>\"}",
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| *k != "minutes" && *k != "until") {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            format!("unknown field {unknown:?}: only \"minutes\" or \"until\" are accepted"),
        ));
    }
    match (fields.get("minutes"), fields.get("until")) {
        (Some(_), Some(_)) => Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            "give either \"minutes\" or \"until\", not both",
        )),
        (Some(minutes), None) => minutes_until(minutes, now).map(Some),
        (None, Some(until)) => until_timestamp(until, now).map(Some),
        (None, None) => Ok(None),
    }
}

fn minutes_until(minutes: &Value, now: jiff::Timestamp) -> Result<Timestamp, Refusal> {
    let refuse = |detail: String| Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, Some("minutes"), detail);
    let Some(n) = minutes.as_f64().filter(|_| minutes.is_number()) else {
        return Err(refuse(format!("\"minutes\" must be a JSON number, not {minutes}")));
    };
    if !(n > 0.0 && n <= MAX_MINUTES) {
        return Err(refuse(format!(
            "\"minutes\" must be greater than 0 and at most {MAX_MINUTES}, not {n}"
        )));
    }
    let window = Duration::from_secs_f64(n * 60.0);
    if window < MIN_WINDOW {
        return Err(refuse(format!(
            "\"minutes\" must give a window of at least one second, not {n} minutes"
        )));
    }
    let span =
        jiff::SignedDuration::try_from(window).map_err(|e| refuse(format!("\"minutes\" is out of range: {e}")))?;
    let end = now
        .checked_add(span)
        .map_err(|e| refuse(format!("\"minutes\" is out of range: {e}")))?;
    Ok(Timestamp::with_offset(end, jiff::tz::Offset::UTC))
}

fn until_timestamp(until: &Value, now: jiff::Timestamp) -> Result<Timestamp, Refusal> {
    let refuse = |detail: String| Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, Some("until"), detail);
    let Some(text) = until.as_str() else {
        return Err(refuse(format!(
            "\"until\" must be an RFC 3339 string with a UTC offset, not {until}"
        )));
    };
    let end: Timestamp = text.parse().map_err(|e| refuse(format!("\"until\": {e}")))?;
    if let Err(reason) = rfc3339_offset(text) {
        return Err(refuse(format!("\"until\": {reason}, not {text:?}")));
    }
    if end.instant() <= now {
        return Err(refuse(format!("\"until\" must lie in the future, not {text}")));
    }
    let latest = now
        .checked_add(jiff::SignedDuration::from_secs(MAX_MINUTES as i64 * 60))
        .unwrap_or(now);
    if end.instant() > latest {
        return Err(refuse(format!(
            "\"until\" must lie at most one year ahead ({MAX_MINUTES} minutes, as \"minutes\" may), not {text}"
        )));
    }
    Ok(end)
}

/// Whether `text` ends in an offset RFC 3339 allows: `Z` (or `z`), or
/// `±HH:MM` with hours at most 23 and minutes at most 59 — not `+0100`,
/// `+24:00` or `+23:59:59`, which some parsers take.
fn rfc3339_offset(text: &str) -> Result<(), &'static str> {
    const WANT: &str = "the offset must be Z or ±HH:MM (hours 00-23, minutes 00-59)";
    if text.ends_with(['Z', 'z']) {
        return Ok(());
    }
    let bytes = text.as_bytes();
    let Some(tail) = bytes.len().checked_sub(6).map(|at| &bytes[at..]) else {
        return Err(WANT);
    };
    let digits = |a: u8, b: u8| (a.is_ascii_digit() && b.is_ascii_digit()).then(|| (a - b'0') * 10 + (b - b'0'));
    let well_formed = matches!(tail[0], b'+' | b'-')
        && tail[3] == b':'
        && digits(tail[1], tail[2]).is_some_and(|h| h <= 23)
        && digits(tail[4], tail[5]).is_some_and(|m| m <= 59)
        // What precedes the offset is the time's last digit (of seconds or a fraction).
        && bytes.len() > 6
        && bytes[bytes.len() - 7].is_ascii_digit();
    if well_formed { Ok(()) } else { Err(WANT) }
}

pub(super) async fn status(State(face): State<Face>) -> Response {
    json(StatusCode::OK, &face.engine.maintenance())
}

fn refuse_unauthorised(face: &Face) -> Option<Response> {
    if face.config.allow_unauthenticated_maintenance || face.config.auth.is_some() {
        return None;
    }
    Some(
        Refusal::new(
            StatusCode::FORBIDDEN,
            None,
            "maintenance cannot be changed over HTTP without authentication: configure authentication \
             on the registry, or allow unauthenticated maintenance explicitly",
        )
        .response(),
    )
}

pub(super) async fn start(State(face): State<Face>, headers: HeaderMap, body: Body) -> Response {
    if let Some(refusal) = refuse_unauthorised(&face) {
        return refusal;
    }
    let Ok(body) = to_bytes(body, BODY_LIMIT).await else {
        return Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!("the body must be at most {BODY_LIMIT} bytes"),
        )
        .response();
    };
    let content_type = headers.get(CONTENT_TYPE).map(http::HeaderValue::as_bytes);
    match parse_request(content_type, &body, jiff::Timestamp::now()) {
        Ok(until) => {
            face.engine.set_maintenance(until);
            tracing::warn!(until = ?until.map(|u| u.to_string()), "maintenance mode started over HTTP");
            json(StatusCode::OK, &face.engine.maintenance())
        }
        Err(refusal) => refusal.response(),
    }
}

pub(super) async fn end(State(face): State<Face>) -> Response {
    if let Some(refusal) = refuse_unauthorised(&face) {
        return refusal;
    }
    face.engine.clear_maintenance();
    tracing::info!("maintenance mode ended over HTTP");
    json(StatusCode::OK, &face.engine.maintenance())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&[u8]> = Some(b"application/json");

    fn now() -> jiff::Timestamp {
        "2026-11-21T00:00:00Z".parse().unwrap()
    }

    fn refused(body: &str) -> Refusal {
        parse_request(JSON, body.as_bytes(), now()).unwrap_err()
    }

    #[test]
    fn accepts_the_valid_shapes() {
        let end = |body: &str| {
            parse_request(JSON, body.as_bytes(), now())
                .unwrap()
                .map(|t| t.to_string())
        };
        assert_eq!(end(""), None);
        assert_eq!(end("{}"), None);
        assert_eq!(end(r#"{"minutes": 5}"#).as_deref(), Some("2026-11-21T00:05:00.000000Z"));
        assert_eq!(
            end(r#"{"minutes": 0.5}"#).as_deref(),
            Some("2026-11-21T00:00:30.000000Z")
        );
        assert_eq!(
            end(r#"{"minutes": 525600}"#).as_deref(),
            Some("2027-11-21T00:00:00.000000Z")
        );
        assert_eq!(
            end(r#"{"until": "2026-11-21T06:00:00+05:00"}"#).as_deref(),
            Some("2026-11-21T06:00:00.000000+05:00")
        );
        let form = parse_request(Some(b"application/merge-patch+json; charset=utf-8"), b"{}", now());
        assert_eq!(form, Ok(None));
    }

    #[test]
    fn refuses_each_invalid_body_naming_field_and_reason() {
        let cases: &[(&str, StatusCode, Option<&str>, &str)] = &[
            (
                r#"{"minutes": "5"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("minutes"),
                "must be a JSON number, not \"5\"",
            ),
            (
                r#"{"minutes": true}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("minutes"),
                "must be a JSON number, not true",
            ),
            (
                r#"{"minutes": null}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("minutes"),
                "must be a JSON number, not null",
            ),
            (
                r#"{"minutes": -1}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("minutes"),
                "greater than 0",
            ),
            (
                r#"{"minutes": 0}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("minutes"),
                "greater than 0",
            ),
            (
                r#"{"minutes": 525601}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("minutes"),
                "at most 525600",
            ),
            (
                r#"{"until": "2030-01-01T00:00:00"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("until"),
                "no UTC offset",
            ),
            (
                r#"{"until": "2020-01-01T00:00:00Z"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("until"),
                "in the future",
            ),
            (
                r#"{"until": 5}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("until"),
                "must be an RFC 3339 string",
            ),
            (
                r#"{"until": "soon"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("until"),
                "invalid timestamp",
            ),
            (
                r#"{"hours": 3}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                "unknown field \"hours\"",
            ),
            (
                r#"{"minutes": 5, "until": "2030-01-01T00:00:00Z"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                "not both",
            ),
            ("[]", StatusCode::UNPROCESSABLE_ENTITY, None, "must be a JSON object"),
            ("5", StatusCode::UNPROCESSABLE_ENTITY, None, "must be a JSON object"),
            ("null", StatusCode::UNPROCESSABLE_ENTITY, None, "must be a JSON object"),
            ("{minutes: 5}", StatusCode::BAD_REQUEST, None, "not valid JSON"),
        ];
        for (body, code, field, reason) in cases {
            let refusal = refused(body);
            assert_eq!(refusal.code, *code, "{body}");
            assert_eq!(refusal.field, *field, "{body}");
            assert!(refusal.detail.contains(reason), "{body}: {}", refusal.detail);
        }
    }

    #[test]
    fn refuses_bodies_that_are_not_json() {
        for content_type in [
            None,
            Some(b"text/plain".as_slice()),
            Some(b"application/x-www-form-urlencoded"),
        ] {
            let refusal = parse_request(content_type, b"minutes=5", now()).unwrap_err();
            assert_eq!(refusal.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }

    #[test]
    fn until_is_held_to_rfc3339_offsets_and_the_one_year_cap() {
        for bad in [
            "9981-04-30T19:05:31-23:59",
            "2027-11-21T00:00:01Z",
            "2026-12-01T00:00:00+24:00",
            "2026-12-01T00:00:00+0100",
            "2026-12-01T00:00:00+23:59:59",
            "2026-12-01T00:00:00+05:60",
            "2026-12-01T00:00:00",
        ] {
            let refusal = refused(&format!(r#"{{"until": "{bad}"}}"#));
            assert_eq!(refusal.field, Some("until"), "{bad}");
            assert_eq!(refusal.code, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        assert!(
            refused(r#"{"until": "2027-11-21T00:00:01Z"}"#)
                .detail
                .contains("one year")
        );
        assert!(
            refused(r#"{"until": "2026-12-01T00:00:00+0100"}"#)
                .detail
                .contains("±HH:MM")
        );
        for good in [
            "2026-12-01T00:00:00Z",
            "2026-12-01T00:00:00.5-23:59",
            "2027-11-20T23:59:59+00:00",
        ] {
            let body = format!(r#"{{"until": "{good}"}}"#);
            assert!(parse_request(JSON, body.as_bytes(), now()).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_window_that_rounds_to_nothing_is_refused() {
        for tiny in ["0.0000001", "0.01", "1e-300"] {
            let refusal = refused(&format!(r#"{{"minutes": {tiny}}}"#));
            assert!(
                refusal.detail.contains("at least one second"),
                "{tiny}: {}",
                refusal.detail
            );
        }
        assert!(parse_request(JSON, br#"{"minutes": 0.02}"#, now()).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_accepted_window_ends_within_a_second_and_a_year(minutes in proptest::prelude::any::<f64>()) {
            let body = format!(r#"{{"minutes": {minutes}}}"#);
            if let Ok(Some(end)) = parse_request(JSON, body.as_bytes(), now()) {
                let span = end.instant().duration_since(now());
                proptest::prop_assert!(span >= jiff::SignedDuration::from_secs(1));
                proptest::prop_assert!(span <= jiff::SignedDuration::from_secs(525_600 * 60));
            }
        }

        #[test]
        fn any_accepted_until_is_ahead_by_at_most_a_year_with_a_valid_offset(
            days in 0_i64..800,
            hours in -30_i32..30,
            minutes in 0_i32..70,
            colon in proptest::prelude::any::<bool>(),
        ) {
            let sign = if hours < 0 { '-' } else { '+' };
            let offset = if colon {
                format!("{sign}{:02}:{minutes:02}", hours.abs())
            } else {
                format!("{sign}{:02}{minutes:02}", hours.abs())
            };
            let day = now() + jiff::SignedDuration::from_hours(days * 24);
            let date = day.strftime("%Y-%m-%dT%H:%M:%S");
            let body = format!(r#"{{"until": "{date}{offset}"}}"#);
            if let Ok(Some(end)) = parse_request(JSON, body.as_bytes(), now()) {
                proptest::prop_assert!(colon && hours.abs() <= 23 && minutes <= 59, "{}", body);
                proptest::prop_assert!(end.instant() > now());
                proptest::prop_assert!(end.instant().duration_since(now()) <= jiff::SignedDuration::from_secs(525_600 * 60));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_are_refused_with_4xx(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            json in proptest::prelude::any::<bool>(),
        ) {
            let content_type = json.then_some(b"application/json".as_slice());
            if let Err(refusal) = parse_request(content_type, &body, now()) {
                proptest::prop_assert!(refusal.code.is_client_error());
                proptest::prop_assert!(!refusal.detail.is_empty());
            }
        }
    }
}
