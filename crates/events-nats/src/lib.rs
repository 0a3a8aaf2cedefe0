//! Scale-out for an embedded event log on NATS JetStream.
//!
//! - [`Replicator`] ships every committed (by default: durable) event of a log, in order, into
//!   one JetStream stream the store owns, exactly once: the stream's sequence is the log's
//!   position (`Nats-Expected-Last-Sequence`), so a restart, a reconnect or an unknown ack
//!   outcome is resolved by reading back what the stream holds, not by trusting a local
//!   cursor. It never blocks the log's appends: it reads the log (a [`ReplicaSource`]) on its
//!   own thread and backs off while NATS is away.
//! - [`StreamReader`] and [`Follower`] read such a stream on another machine, as
//!   [`RecordedEvent`](events_core::RecordedEvent)s in order, exactly once per sequence,
//!   resumable from any sequence.
//! - [`Merger`] feeds one stream with several stores' streams (one feed of several writers),
//!   each event once, each store's in its own order.
//! - The message layout (subject, headers and their encoding) is in [`message`] form:
//!   [`subject`], [`encode_token`], [`encode_value`] and the [`header`] names.
//!
//! This crate owns its tokio runtimes (on named threads); its API is synchronous. Do not call
//! it from inside a tokio runtime: [`StreamReader`] refuses to.
//!
//! The `eventlog` facade starts a replicator with `EventLog::replicate`; `docs/scale-out.md`
//! describes the topology and what each durability mode and replica count keeps.

mod config;
mod error;
mod follower;
#[cfg(feature = "local-server")]
mod local_server;
mod merger;
mod message;
mod replicator;
mod running;
mod source;
mod streams;

pub use config::{DEFAULT_STREAM, ReplicationConfig, Ship};
pub use error::{BoxError, DecodeError, FollowError, ReplicationError, SourceError};
pub use follower::{Follower, StreamReader, StreamSummary};
#[cfg(feature = "local-server")]
pub use local_server::{LocalCluster, LocalServer};
pub use merger::{
    MERGED_PREFIX, MergeConfig, Merger, ORIGIN_STREAM, merge_until_caught_up, merged_sources,
};
pub use message::{decode_token, decode_value, encode_token, encode_value, header, subject};
pub use replicator::{ReplicationProbe, ReplicationStatus, Replicator, ReplicatorState};
pub use source::ReplicaSource;
pub use streams::{OWNER_PREFIX, stream_owner};
