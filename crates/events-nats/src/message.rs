//! One event as one JetStream message, and back: the subject, the headers and their encoding
//! live here and nowhere else.
//!
//! - **Subject**: `<prefix>.<aggregate_type>.<aggregate_id>`, each of the two tokens encoded by
//!   [`encode_token`]: ASCII letters, digits, `-` and `_` stay; every other byte (UTF-8 for
//!   non-ASCII) becomes `%XX` (upper-case hex); the empty string becomes a lone `%`. NATS
//!   forbids `.`, `*`, `>` and whitespace in a token; the encoding never emits them and is
//!   reversible ([`decode_token`]).
//! - **Payload**: the event's payload bytes, as stored.
//! - **Headers** (`Eventlog-*`, see [`header`]): every metadata field and the log position.
//!   String values are encoded by [`encode_value`]: printable ASCII but `%` stays, every other
//!   byte becomes `%XX`, the empty string a lone `%`; so a value with spaces, control characters
//!   or non-ASCII survives byte-identical. An optional field that is `None` has no header.
//!   `Nats-Msg-Id` is the event id (JetStream's duplicate window) and
//!   `Nats-Expected-Last-Sequence` is `position - 1` (so the stream's sequence is the position).

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use events_core::{EventMetadata, RecordedEvent};
use uuid::Uuid;

use crate::error::DecodeError;

/// The header names. A message's headers are its event's metadata; `Nats-*` ones are JetStream's.
pub mod header {
    /// The event's id (also `Nats-Msg-Id`).
    pub const EVENT_ID: &str = "Eventlog-Event-Id";
    /// The event's global position in the source log (= the stream sequence in its own stream).
    pub const POSITION: &str = "Eventlog-Position";
    /// The event's version within its aggregate.
    pub const VERSION: &str = "Eventlog-Version";
    /// The event type's name.
    pub const EVENT_TYPE: &str = "Eventlog-Event-Type";
    /// The payload's schema version.
    pub const SCHEMA_VERSION: &str = "Eventlog-Schema-Version";
    /// The aggregate's type.
    pub const AGGREGATE_TYPE: &str = "Eventlog-Aggregate-Type";
    /// The aggregate's id.
    pub const AGGREGATE_ID: &str = "Eventlog-Aggregate-Id";
    /// When the event was created, RFC 3339 in UTC with as many fraction digits as it has.
    pub const TIMESTAMP: &str = "Eventlog-Timestamp";
    /// The component that produced the event.
    pub const SOURCE: &str = "Eventlog-Source";
    /// Distributed trace id (absent when none).
    pub const TRACE_ID: &str = "Eventlog-Trace-Id";
    /// Correlation id (absent when none).
    pub const CORRELATION_ID: &str = "Eventlog-Correlation-Id";
    /// Causation id (absent when none).
    pub const CAUSATION_ID: &str = "Eventlog-Causation-Id";
    /// User id (absent when none).
    pub const USER_ID: &str = "Eventlog-User-Id";
    /// Session id (absent when none).
    pub const SESSION_ID: &str = "Eventlog-Session-Id";
    /// JetStream's de-duplication id: the event id.
    pub const NATS_MSG_ID: &str = "Nats-Msg-Id";
    /// JetStream's optimistic check: the stream's last sequence must be this.
    pub const NATS_EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";
}

/// One event ready to publish.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub(crate) subject: String,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Bytes,
}

/// A header name the replicator sets, built once (no allocation, no validation per message).
const fn name(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

/// The message for `event` under `prefix` (headers include the JetStream checks). Takes the
/// event by value: its payload becomes the message's without a copy.
pub(crate) fn to_message(prefix: &str, event: RecordedEvent) -> Outbound {
    let m = event.metadata;
    let mut headers = HeaderMap::new();
    let id = m.event_id.to_string();
    headers.insert(name(header::NATS_MSG_ID), id.clone());
    headers.insert(
        name(header::NATS_EXPECTED_LAST_SEQUENCE),
        HeaderValue::from(event.position.saturating_sub(1)),
    );
    headers.insert(name(header::EVENT_ID), id);
    headers.insert(name(header::POSITION), HeaderValue::from(event.position));
    headers.insert(name(header::VERSION), HeaderValue::from(m.version));
    headers.insert(name(header::EVENT_TYPE), encode_value(&m.event_type));
    headers.insert(
        name(header::SCHEMA_VERSION),
        HeaderValue::from(m.schema_version),
    );
    headers.insert(
        name(header::AGGREGATE_TYPE),
        encode_value(&m.aggregate_type),
    );
    headers.insert(name(header::AGGREGATE_ID), encode_value(&m.aggregate_id));
    headers.insert(
        name(header::TIMESTAMP),
        m.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    );
    headers.insert(name(header::SOURCE), encode_value(&m.source));
    for (header_name, value) in [
        (header::TRACE_ID, &m.trace_id),
        (header::CORRELATION_ID, &m.correlation_id),
        (header::CAUSATION_ID, &m.causation_id),
        (header::USER_ID, &m.user_id),
        (header::SESSION_ID, &m.session_id),
    ] {
        if let Some(value) = value {
            headers.insert(name(header_name), encode_value(value));
        }
    }
    Outbound {
        subject: subject(prefix, &m.aggregate_type, &m.aggregate_id),
        headers,
        payload: Bytes::from(event.payload),
    }
}

/// The subject an aggregate's events are published on.
pub fn subject(prefix: &str, aggregate_type: &str, aggregate_id: &str) -> String {
    format!(
        "{prefix}.{}.{}",
        encode_token(aggregate_type),
        encode_token(aggregate_id)
    )
}

/// The event a message carries, from its headers and payload.
///
/// # Errors
///
/// [`DecodeError`] when a header is missing or does not decode.
pub(crate) fn from_message(
    headers: &HeaderMap,
    payload: &[u8],
) -> Result<RecordedEvent, DecodeError> {
    let event_id = Uuid::parse_str(required(headers, header::EVENT_ID)?)
        .map_err(|_| bad(headers, header::EVENT_ID))?;
    let position = number(headers, header::POSITION)?;
    let version = number(headers, header::VERSION)?;
    let schema_version = u16::try_from(number(headers, header::SCHEMA_VERSION)?)
        .map_err(|_| bad(headers, header::SCHEMA_VERSION))?;
    let timestamp = DateTime::parse_from_rfc3339(required(headers, header::TIMESTAMP)?)
        .map_err(|_| bad(headers, header::TIMESTAMP))?
        .with_timezone(&Utc);
    Ok(RecordedEvent {
        position,
        metadata: EventMetadata {
            event_id,
            event_type: text(headers, header::EVENT_TYPE)?,
            aggregate_id: text(headers, header::AGGREGATE_ID)?,
            aggregate_type: text(headers, header::AGGREGATE_TYPE)?,
            version,
            timestamp,
            trace_id: optional_text(headers, header::TRACE_ID)?,
            user_id: optional_text(headers, header::USER_ID)?,
            session_id: optional_text(headers, header::SESSION_ID)?,
            source: text(headers, header::SOURCE)?,
            correlation_id: optional_text(headers, header::CORRELATION_ID)?,
            causation_id: optional_text(headers, header::CAUSATION_ID)?,
            schema_version,
        },
        payload: payload.to_vec(),
    })
}

/// The event id a message carries (`Nats-Msg-Id`, else `Eventlog-Event-Id`), if any.
pub(crate) fn event_id(headers: &HeaderMap) -> Option<Uuid> {
    [header::NATS_MSG_ID, header::EVENT_ID]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|value| Uuid::parse_str(value.as_str()).ok())
}

fn required<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, DecodeError> {
    headers
        .get(name)
        .map(|value| value.as_str())
        .ok_or(DecodeError::MissingHeader { name })
}

fn bad(headers: &HeaderMap, name: &'static str) -> DecodeError {
    DecodeError::BadHeader {
        name,
        value: headers
            .get(name)
            .map(|value| value.as_str().to_owned())
            .unwrap_or_default(),
    }
}

fn number(headers: &HeaderMap, name: &'static str) -> Result<u64, DecodeError> {
    required(headers, name)?
        .parse()
        .map_err(|_| bad(headers, name))
}

fn text(headers: &HeaderMap, name: &'static str) -> Result<String, DecodeError> {
    decode_value(required(headers, name)?).ok_or_else(|| bad(headers, name))
}

fn optional_text(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, DecodeError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => decode_value(value.as_str())
            .map(Some)
            .ok_or_else(|| bad(headers, name)),
    }
}

/// Encodes one subject token (see the module's doc): reversible, never `.`, `*`, `>`, spaces.
pub fn encode_token(raw: &str) -> String {
    escape(raw, |b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The string [`encode_token`] encoded; `None` for a token it cannot have produced.
pub fn decode_token(token: &str) -> Option<String> {
    unescape(token, |b| {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
    })
}

/// Encodes a header value (see the module's doc): reversible, printable ASCII only.
pub fn encode_value(raw: &str) -> String {
    escape(raw, |b| b.is_ascii_graphic() && b != b'%')
}

/// The string [`encode_value`] encoded; `None` for a value it cannot have produced.
pub fn decode_value(value: &str) -> Option<String> {
    unescape(value, |b| b.is_ascii_graphic() && b != b'%')
}

fn escape(raw: &str, keep: impl Fn(u8) -> bool) -> String {
    if raw.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    for &b in raw.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn unescape(encoded: &str, keep: impl Fn(u8) -> bool) -> Option<String> {
    if encoded == "%" {
        return Some(String::new());
    }
    if encoded.is_empty() {
        return None;
    }
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex
                    .bytes()
                    .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(&h))
                {
                    return None;
                }
                let byte = u8::from_str_radix(hex, 16).ok()?;
                if keep(byte) {
                    // The encoder never escapes a byte it keeps: one spelling per string.
                    return None;
                }
                out.push(byte);
                i += 3;
            }
            b if keep(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_ids_make_valid_tokens() {
        for raw in [
            "a b",
            "x.y",
            "*",
            ">",
            "ünï cødé",
            "",
            "%",
            "tab\there",
            "a.*.>",
        ] {
            let token = encode_token(raw);
            assert!(!token.is_empty());
            assert!(
                !token.contains(['.', '*', '>', ' ', '\t', '\r', '\n']),
                "{token}"
            );
            assert!(token.is_ascii());
            assert_eq!(decode_token(&token).as_deref(), Some(raw));
        }
        assert_eq!(encode_token("order-17_b"), "order-17_b");
        assert_eq!(encode_token("a.b"), "a%2Eb");
    }

    #[test]
    fn foreign_spellings_are_refused() {
        assert_eq!(decode_token("a%2eb"), None, "lower-case hex");
        assert_eq!(decode_token("%41"), None, "an escaped kept byte");
        assert_eq!(decode_token("a%2"), None, "truncated escape");
        assert_eq!(decode_token(""), None);
        assert_eq!(decode_value("a b"), None, "a raw space");
        assert_eq!(decode_value("%FF"), None, "not UTF-8");
    }

    proptest! {
        #[test]
        fn tokens_and_values_round_trip(raw in any::<String>()) {
            prop_assert_eq!(decode_token(&encode_token(&raw)), Some(raw.clone()));
            prop_assert_eq!(decode_value(&encode_value(&raw)), Some(raw.clone()));
            prop_assert!(encode_value(&raw).bytes().all(|b| b.is_ascii_graphic()));
        }
    }

    #[test]
    fn a_message_carries_every_field_back() {
        let event = RecordedEvent {
            position: 42,
            metadata: EventMetadata {
                event_id: Uuid::new_v4(),
                event_type: "Order Placed".into(),
                aggregate_id: "ö 1.*>".into(),
                aggregate_type: "order".into(),
                version: 7,
                timestamp: DateTime::parse_from_rfc3339("2026-12-03T10:00:00.123456789Z")
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
                trace_id: Some("t 1".into()),
                user_id: None,
                session_id: Some(String::new()),
                source: String::new(),
                correlation_id: Some("c\r\n".into()),
                causation_id: None,
                schema_version: 3,
            },
            payload: vec![0, 1, 2, 255],
        };
        let message = to_message("events.S", event.clone());
        assert_eq!(message.subject, "events.S.order.%C3%B6%201%2E%2A%3E");
        assert_eq!(
            message
                .headers
                .get(header::NATS_EXPECTED_LAST_SEQUENCE)
                .map(|v| v.as_str()),
            Some("41")
        );
        let back = from_message(&message.headers, &message.payload);
        assert_eq!(back.as_ref().ok(), Some(&event));
        assert_eq!(event_id(&message.headers), Some(event.metadata.event_id));
    }

    #[test]
    fn a_missing_header_is_a_decode_error() {
        let headers = HeaderMap::new();
        assert!(matches!(
            from_message(&headers, b""),
            Err(DecodeError::MissingHeader {
                name: header::EVENT_ID
            })
        ));
    }
}
