//! Typed errors of `events-core`, one enum per job: encoding, the registry and factory, validation.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input was empty: not even the format-version byte is there.
    #[error("no bytes to decode {what}: the format-version byte is missing")]
    Empty {
        /// What was being decoded (`"payload"`, `"metadata"`).
        what: &'static str,
    },
    /// The leading format-version byte names a format this build does not read.
    #[error("{what} uses codec format {found}, this build reads format {supported}")]
    UnsupportedFormat {
        /// What was being decoded.
        what: &'static str,
        /// The version byte found.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// The value could not be encoded.
    #[error("could not encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// The bytes do not decode as the expected value.
    #[error("could not decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The value decoded but bytes were left over, so the input is not what was expected.
    #[error("{count} unexpected trailing bytes after {what}")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
}

/// Why the registry or the factory could not create, convert or decode an event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No event type of this name is registered.
    #[error("unknown event type `{event_type}`: it is not registered")]
    UnknownEventType {
        /// The name asked for.
        event_type: String,
    },
    /// The event type is already registered.
    #[error("event type `{event_type}` is registered twice")]
    DuplicateEventType {
        /// The name registered twice.
        event_type: String,
    },
    /// The JSON payload does not have the shape the event type requires.
    #[error("invalid JSON payload for `{event_type}`: {reason}")]
    InvalidPayload {
        /// The event type.
        event_type: String,
        /// What serde_json reported.
        reason: String,
    },
    /// A JSON event envelope lacks a field or has one of the wrong kind.
    #[error("invalid JSON event: {reason}")]
    InvalidEnvelope {
        /// What is wrong.
        reason: String,
    },
    /// The stored payload was written by a newer schema than this build knows.
    #[error("`{event_type}` payload has schema version {found}, newer than this build's {current}")]
    SchemaTooNew {
        /// The event type.
        event_type: String,
        /// The schema version of the payload.
        found: u16,
        /// The newest schema version this build knows.
        current: u16,
    },
    /// No upcaster is registered to lift a payload from this schema version.
    #[error("no upcaster registered for `{event_type}` from schema version {from_version}")]
    MissingUpcaster {
        /// The event type.
        event_type: String,
        /// The schema version with no upcaster.
        from_version: u16,
    },
    /// An upcaster was registered for a version it cannot apply to.
    #[error(
        "upcaster for `{event_type}` from schema version {from_version} is invalid: the current version is {current}"
    )]
    InvalidUpcaster {
        /// The event type.
        event_type: String,
        /// The version the upcaster starts from.
        from_version: u16,
        /// The current schema version of the type.
        current: u16,
    },
    /// A typed decode was asked for a different event type than the one recorded.
    #[error("event is `{found}`, not `{expected}`")]
    TypeMismatch {
        /// The type asked for.
        expected: &'static str,
        /// The type recorded.
        found: String,
    },
    /// Bytes failed to encode or decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Why an event, or a sequence of events, is not valid. Each variant says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A required field is empty.
    #[error("`{field}` must not be empty")]
    EmptyField {
        /// The field's name.
        field: &'static str,
    },
    /// A field is longer than its limit.
    #[error("`{field}` is {len} bytes long, the limit is {max}")]
    FieldTooLong {
        /// The field's name.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// A field holds a control character (NUL, newline, ...), which ids must not contain.
    #[error("`{field}` contains the control character {character:?} at byte {at}")]
    ControlCharacter {
        /// The field's name.
        field: &'static str,
        /// The offending character.
        character: char,
        /// Its byte offset.
        at: usize,
    },
    /// The event type is not registered.
    #[error("event type `{event_type}` is not registered")]
    UnregisteredEventType {
        /// The event type.
        event_type: String,
    },
    /// The envelope's aggregate type differs from the one the event type belongs to.
    #[error("event type `{event_type}` belongs to aggregate type `{registered}`, not `{found}`")]
    AggregateTypeMismatch {
        /// The event type.
        event_type: String,
        /// The aggregate type it is registered with.
        registered: String,
        /// The aggregate type on the envelope.
        found: String,
    },
    /// The schema version is 0 or newer than the registered one.
    #[error("`{event_type}` has schema version {found}; valid versions are 1 to {current}")]
    InvalidSchemaVersion {
        /// The event type.
        event_type: String,
        /// The version on the envelope.
        found: u16,
        /// The newest registered version.
        current: u16,
    },
    /// The payload is larger than the configured limit.
    #[error("payload is {size} bytes, the limit is {max}")]
    PayloadTooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The timestamp is further in the future than the allowed clock skew.
    #[error("timestamp {timestamp} is more than {max_skew_seconds} s ahead of now ({now})")]
    TimestampInFuture {
        /// The event's timestamp.
        timestamp: DateTime<Utc>,
        /// The validator's clock.
        now: DateTime<Utc>,
        /// The allowed skew.
        max_skew_seconds: i64,
    },
    /// The event id is the nil UUID.
    #[error("event_id must not be the nil UUID")]
    NilEventId,
    /// A sequence was empty where at least one event is required.
    #[error("the sequence holds no events")]
    EmptySequence,
    /// A sequence mixes aggregates.
    #[error(
        "event {index} belongs to `{found_type}/{found_id}`, the sequence is for `{expected_type}/{expected_id}`"
    )]
    MixedAggregates {
        /// Index of the first stranger.
        index: usize,
        /// The sequence's aggregate type.
        expected_type: String,
        /// The sequence's aggregate id.
        expected_id: String,
        /// The stranger's aggregate type.
        found_type: String,
        /// The stranger's aggregate id.
        found_id: String,
    },
    /// Versions are not consecutive from the expected start.
    #[error("event {index} has version {found}, expected {expected}")]
    VersionOutOfSequence {
        /// Index of the event.
        index: usize,
        /// The version it should have.
        expected: u64,
        /// The version it has.
        found: u64,
    },
    /// The same event id appears twice.
    #[error("event id {event_id} appears at index {first} and again at {index}")]
    DuplicateEventId {
        /// The repeated id.
        event_id: Uuid,
        /// Where it first appears.
        first: usize,
        /// Where it appears again.
        index: usize,
    },
}
