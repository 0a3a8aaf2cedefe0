//! Typed errors of `events-nats`: what starting or running a replicator refuses
//! ([`ReplicationError`]), what reading a stream refuses ([`FollowError`]), why a message does
//! not decode ([`DecodeError`]) and what a log source reports ([`SourceError`]).

use std::error::Error as StdError;

use uuid::Uuid;

/// A boxed cause, kept as the error's `source()`.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a message of the stream is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A header every event message has is absent.
    #[error("header {name} is missing")]
    MissingHeader {
        /// The header's name.
        name: &'static str,
    },
    /// A header's value does not decode.
    #[error("header {name} has a value that does not decode: {value:?}")]
    BadHeader {
        /// The header's name.
        name: &'static str,
        /// Its value, as received.
        value: String,
    },
}

/// What a [`ReplicaSource`](crate::ReplicaSource) reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The log was closed: the replicator ends.
    #[error("the event log is closed")]
    Closed,
    /// The log could not be read.
    #[error("the event log could not be read")]
    Read(#[source] BoxError),
}

/// Why a replicator refused to start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// A setting is out of range (names the setting and why).
    #[error("invalid replication setting {setting}: {reason}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The stream exists but was not created by an event-log replicator (its description does
    /// not name a store), or its subjects are not this replicator's.
    #[error("stream {stream} is not an event-log stream for subjects {subjects}: {found}")]
    NotAnEventLogStream {
        /// The stream.
        stream: String,
        /// The subjects this replicator publishes on.
        subjects: String,
        /// What the stream holds instead.
        found: String,
    },
    /// The stream belongs to another store.
    #[error("stream {stream} belongs to store {owner}, not to this store ({store})")]
    OwnedByAnotherStore {
        /// The stream.
        stream: String,
        /// The store id the stream names.
        owner: String,
        /// This store's id.
        store: String,
    },
    /// The stream holds more events than the log: it was fed by a log that lost its tail
    /// (shipping committed, not durable, events, then a crash) or by another copy of it.
    #[error("stream {stream} holds {stream_last} events but the log only {log_last}")]
    StreamAhead {
        /// The stream.
        stream: String,
        /// The stream's last sequence.
        stream_last: u64,
        /// The log's last position.
        log_last: u64,
    },
    /// The stream and the log disagree at a position.
    #[error(
        "stream {stream} disagrees with the log at position {position}: event {in_stream:?} in the stream, {in_log} in the log"
    )]
    ContentMismatch {
        /// The stream.
        stream: String,
        /// The position (= stream sequence).
        position: u64,
        /// The event id the stream holds there (`None`: the message carries none).
        in_stream: Option<Uuid>,
        /// The event id the log holds there.
        in_log: Uuid,
    },
    /// An event is larger than the server accepts in one message (its `max_payload`).
    #[error("event at position {position} is {bytes} bytes; the server takes at most {max}")]
    EventTooLarge {
        /// Its position.
        position: u64,
        /// Its payload and headers, in bytes.
        bytes: usize,
        /// The server's limit.
        max: usize,
    },
    /// The log could not be read, or was closed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A NATS request failed (the replicator retries these; this is only returned by calls
    /// that do not, e.g. a stream lookup from a reader).
    #[error("NATS: {context}")]
    Nats {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// The replicator's runtime thread could not start.
    #[error("could not start the replicator thread")]
    Thread(#[source] std::io::Error),
}

/// Why a stream could not be read or followed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// A setting is out of range.
    #[error("invalid setting {setting}: {reason}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The server could not be reached in time.
    #[error("could not connect to {url}")]
    Connect {
        /// The server.
        url: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// The stream does not exist.
    #[error("stream {stream} does not exist")]
    NoSuchStream {
        /// The stream.
        stream: String,
    },
    /// A NATS request failed.
    #[error("NATS: {context}")]
    Nats {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// A message is not an event.
    #[error("stream {stream} sequence {sequence} is not an event")]
    Decode {
        /// The stream.
        stream: String,
        /// The message's sequence.
        sequence: u64,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// In a store's own stream, a message's sequence differs from the position it carries.
    #[error("stream {stream} sequence {sequence} carries position {position}")]
    SequenceMismatch {
        /// The stream.
        stream: String,
        /// The message's sequence.
        sequence: u64,
        /// The position its headers carry.
        position: u64,
    },
    /// The operation needs a store's own stream (sequence = position) and this one merges
    /// several (JetStream `sources`).
    #[error("stream {stream} merges other streams; positions repeat in it")]
    MergedStream {
        /// The stream.
        stream: String,
    },
    /// The follower's thread could not start, or ended.
    #[error("the follower's thread could not start or ended")]
    Thread(#[source] std::io::Error),
}
