//! The one place events become bytes and bytes become events again.
//!
//! Every encoding starts with a format-version byte ([`CODEC_FORMAT_VERSION`]) so the codec can be
//! replaced without misreading old data. Behind it is bincode 2.0.1 (serde, standard
//! configuration: little-endian varints) with a decode limit, so hostile input cannot make the
//! decoder allocate without bound. JSON conversion lives with the [`crate::EventRegistry`], which
//! knows every payload's type.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::error::CodecError;
use crate::event::EventMetadata;

/// The format-version byte that leads every encoded payload and metadata record.
pub const CODEC_FORMAT_VERSION: u8 = 1;

/// The most bytes one decode may claim, whatever a length prefix says (64 MiB).
pub const MAX_DECODE_BYTES: usize = 64 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![CODEC_FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config()).map_err(|e| {
        CodecError::Encode {
            what,
            reason: e.to_string(),
        }
    })?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, CodecError> {
    let body = strip_format_byte(what, bytes)?;
    let (value, read) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| CodecError::Decode {
            what,
            reason: e.to_string(),
        })?;
    if read != body.len() {
        return Err(CodecError::TrailingBytes {
            what,
            count: body.len() - read,
        });
    }
    Ok(value)
}

/// Checks the leading format-version byte and returns what follows it.
fn strip_format_byte<'a>(what: &'static str, bytes: &'a [u8]) -> Result<&'a [u8], CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty { what }),
        Some((&CODEC_FORMAT_VERSION, body)) => Ok(body),
        Some((&found, _)) => Err(CodecError::UnsupportedFormat {
            what,
            found,
            supported: CODEC_FORMAT_VERSION,
        }),
    }
}

/// Encodes a payload: the format-version byte, then bincode.
///
/// # Errors
///
/// [`CodecError::Encode`] when serde cannot serialize the value (bincode cannot encode a
/// self-describing value such as `serde_json::Value`, nor a map with non-string keys to JSON).
///
/// # Example
///
/// ```
/// use events_core::codec;
/// let bytes = codec::encode_payload(&("prompt", 3_u32))?;
/// let back: (String, u32) = codec::decode_payload(&bytes)?;
/// assert_eq!(back, ("prompt".to_string(), 3));
/// # Ok::<(), events_core::CodecError>(())
/// ```
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode("payload", value)
}

/// Decodes a payload written by [`encode_payload`].
///
/// # Errors
///
/// [`CodecError::Empty`], [`CodecError::UnsupportedFormat`], [`CodecError::Decode`] or
/// [`CodecError::TrailingBytes`] when the bytes are not an encoded `T`. Never panics.
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode("payload", bytes)
}

/// The metadata as it is laid out in bytes: the UUID as 16 raw bytes, the time as microseconds
/// since the Unix epoch, borrowed strings so encoding copies nothing twice.
#[derive(Serialize, Deserialize)]
struct MetadataWire<'a> {
    event_id: [u8; 16],
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    aggregate_id: Cow<'a, str>,
    #[serde(borrow)]
    aggregate_type: Cow<'a, str>,
    version: u64,
    timestamp_micros: i64,
    #[serde(borrow)]
    trace_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow)]
    correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    causation_id: Option<Cow<'a, str>>,
    schema_version: u16,
}

fn borrowed(value: &Option<String>) -> Option<Cow<'_, str>> {
    value.as_deref().map(Cow::Borrowed)
}

fn owned(value: Option<Cow<'_, str>>) -> Option<String> {
    value.map(Cow::into_owned)
}

/// Encodes event metadata: the format-version byte, then bincode of a compact layout.
///
/// # Errors
///
/// [`CodecError::Encode`] if bincode fails (it does not for well-formed metadata).
pub fn encode_metadata(metadata: &EventMetadata) -> Result<Vec<u8>, CodecError> {
    let wire = MetadataWire {
        event_id: metadata.event_id.into_bytes(),
        event_type: Cow::Borrowed(&metadata.event_type),
        aggregate_id: Cow::Borrowed(&metadata.aggregate_id),
        aggregate_type: Cow::Borrowed(&metadata.aggregate_type),
        version: metadata.version,
        timestamp_micros: metadata.timestamp.timestamp_micros(),
        trace_id: borrowed(&metadata.trace_id),
        user_id: borrowed(&metadata.user_id),
        session_id: borrowed(&metadata.session_id),
        source: Cow::Borrowed(&metadata.source),
        correlation_id: borrowed(&metadata.correlation_id),
        causation_id: borrowed(&metadata.causation_id),
        schema_version: metadata.schema_version,
    };
    encode("metadata", &wire)
}

/// Decodes metadata written by [`encode_metadata`].
///
/// # Errors
///
/// A [`CodecError`] when the bytes are not encoded metadata, or hold a timestamp out of range.
/// Never panics.
pub fn decode_metadata(bytes: &[u8]) -> Result<EventMetadata, CodecError> {
    const WHAT: &str = "metadata";
    let body = strip_format_byte(WHAT, bytes)?;
    let (wire, read): (MetadataWire<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(body, config()).map_err(|e| {
            CodecError::Decode {
                what: WHAT,
                reason: e.to_string(),
            }
        })?;
    if read != body.len() {
        return Err(CodecError::TrailingBytes {
            what: WHAT,
            count: body.len() - read,
        });
    }
    let timestamp = timestamp_from_micros(wire.timestamp_micros).ok_or(CodecError::Decode {
        what: WHAT,
        reason: format!("timestamp {} µs is out of range", wire.timestamp_micros),
    })?;
    Ok(EventMetadata {
        event_id: Uuid::from_bytes(wire.event_id),
        event_type: wire.event_type.into_owned(),
        aggregate_id: wire.aggregate_id.into_owned(),
        aggregate_type: wire.aggregate_type.into_owned(),
        version: wire.version,
        timestamp,
        trace_id: owned(wire.trace_id),
        user_id: owned(wire.user_id),
        session_id: owned(wire.session_id),
        source: wire.source.into_owned(),
        correlation_id: owned(wire.correlation_id),
        causation_id: owned(wire.causation_id),
        schema_version: wire.schema_version,
    })
}

/// The UTC time `micros` microseconds after the Unix epoch, if representable.
pub fn timestamp_from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::now_micros;

    fn sample() -> EventMetadata {
        EventMetadata {
            event_id: Uuid::new_v4(),
            event_type: "cache_hit".into(),
            aggregate_id: "cache-7".into(),
            aggregate_type: "cache".into(),
            version: 42,
            timestamp: now_micros(),
            trace_id: Some("trace".into()),
            user_id: None,
            session_id: Some("s".into()),
            source: "test".into(),
            correlation_id: None,
            causation_id: Some("c".into()),
            schema_version: 3,
        }
    }

    #[test]
    fn metadata_round_trips() {
        let m = sample();
        let bytes = encode_metadata(&m).unwrap();
        assert_eq!(bytes[0], CODEC_FORMAT_VERSION);
        assert_eq!(decode_metadata(&bytes).unwrap(), m);
    }

    #[test]
    fn empty_input_is_an_error() {
        assert_eq!(
            decode_metadata(&[]),
            Err(CodecError::Empty { what: "metadata" })
        );
        assert!(matches!(
            decode_payload::<u32>(&[]),
            Err(CodecError::Empty { what: "payload" })
        ));
    }

    #[test]
    fn unknown_format_byte_is_reported() {
        let mut bytes = encode_payload(&7_u32).unwrap();
        bytes[0] = 9;
        assert_eq!(
            decode_payload::<u32>(&bytes),
            Err(CodecError::UnsupportedFormat {
                what: "payload",
                found: 9,
                supported: CODEC_FORMAT_VERSION
            })
        );
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode_payload(&7_u32).unwrap();
        bytes.push(0);
        assert_eq!(
            decode_payload::<u32>(&bytes),
            Err(CodecError::TrailingBytes {
                what: "payload",
                count: 1
            })
        );
    }

    #[test]
    fn truncated_metadata_is_an_error() {
        let bytes = encode_metadata(&sample()).unwrap();
        for cut in 1..bytes.len() {
            assert!(decode_metadata(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn huge_length_prefix_does_not_allocate() {
        // A string claiming u64::MAX bytes must fail on the limit, not try to allocate.
        let mut bytes = vec![CODEC_FORMAT_VERSION, 0xFF];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode_payload::<String>(&bytes),
            Err(CodecError::Decode { .. })
        ));
    }
}
