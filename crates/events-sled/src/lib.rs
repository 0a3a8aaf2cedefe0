//! Storage for the `eventlog` event store, on sled.
//!
//! One sled database holds a `log` tree (hash-chained log records, the stream and aggregate-type
//! indexes as version- and position-ordered pages, the store's metadata), a `snapshots` tree and a
//! `consumers` tree. One writer thread turns acknowledged appends into atomic group writes. See
//! `docs/design.md` for the layout, the append algorithm and what a crash keeps.

mod checkpoint;
mod config;
mod consumer;
mod error;
mod fault;
mod flusher;
mod index;
mod indexer;
mod keys;
mod metrics;
mod migrate;
mod read;
mod read_only;
mod reclaim;
mod record;
mod recovery;
mod segment;
mod snapshot;
mod state;
mod store;
mod types;
mod varint;
mod verify;
mod writer;

pub use checkpoint::{
    CHECKPOINT_EXTENSION, CHECKPOINT_FORMAT, CheckpointInfo, CheckpointManifest, Progress,
    import_checkpoint, list_checkpoints, prune_checkpoints, read_manifest, verify_checkpoint,
    verify_checkpoint_with,
};
pub use config::{CheckpointPolicy, Durability, StoreConfig, StoreLimits};
pub use consumer::ConsumerCheckpoint;
pub use error::{AppendError, CheckpointError, OpenError, ReadError, SnapshotError, StoreError};
#[cfg(feature = "fault-injection")]
pub use fault::{SyncHook, SyncPoint};
pub use metrics::StoreMetrics;
pub use migrate::migrate_store;
pub use read::{LogEvents, StreamEvents, TypeEvents};
pub use read_only::{
    LogFollower, ReadOnlyLogEvents, ReadOnlyStore, ReadOnlyStreamEvents, ReadOnlyTypeEvents,
};
pub use record::EventRef;
pub use snapshot::Snapshot;
pub use state::CommitListener;
pub use store::{STORE_FORMAT, Store, data_dir};
pub use types::{AggregateInfo, AppendBatch, AppendResult, Direction, ExpectedVersion, StreamRead};
pub use verify::{ChainHead, VerifyIssue, VerifyReport};

/// Entry points for fuzzing and benchmarking the byte layouts. Not part of the stable API.
#[doc(hidden)]
pub mod fuzz {
    use events_core::RecordedEvent;

    /// The key of the log record starting at `position`.
    pub fn log_key(position: u64) -> [u8; 9] {
        crate::keys::log_key(position)
    }

    /// The key of an aggregate's index page starting at `first_version`.
    pub fn stream_page_key(
        aggregate_type: &str,
        aggregate_id: &str,
        first_version: u64,
    ) -> Vec<u8> {
        crate::keys::stream_page_key(
            &crate::keys::StreamKey::new(aggregate_type, aggregate_id),
            first_version,
        )
    }

    /// Encodes consecutive events as one log record (first record of a chain).
    pub fn encode_record(events: &[RecordedEvent]) -> Vec<u8> {
        crate::record::encode_record(&crate::record::GENESIS, events)
    }

    /// Encodes consecutive events as one log record following the record whose hash is
    /// `prev_hash` in the chain ([`record_hash`] of it; zeros for the first record).
    pub fn encode_chained_record(prev_hash: &[u8; 32], events: &[RecordedEvent]) -> Vec<u8> {
        crate::record::encode_record(prev_hash, events)
    }

    /// The hash of a record's bytes: the `prev_hash` of the record after it.
    pub fn record_hash(bytes: &[u8]) -> [u8; 32] {
        crate::record::record_hash(bytes)
    }

    /// A snapshot entry of the `snapshots` tree, `(key, value)`, in the stored layout.
    pub fn snapshot_entry(
        aggregate_type: &str,
        aggregate_id: &str,
        version: u64,
        schema_version: u16,
        created_micros: i64,
        state: &[u8],
    ) -> (Vec<u8>, Vec<u8>) {
        let stream = crate::keys::StreamKey::new(aggregate_type, aggregate_id);
        (
            crate::snapshot::snapshot_key(&stream, version),
            crate::snapshot::encode_snapshot(schema_version, created_micros, state),
        )
    }

    /// A consumer's value in the `consumers` tree (its key is its name), in the stored layout.
    pub fn consumer_value(position: u64, state: &[u8]) -> Vec<u8> {
        crate::consumer::encode_consumer(position, state)
    }

    /// Opens the sled directory of the store at `store` (`<store>/data`, created if missing) the
    /// way an older build did, runs `write` on it, flushes and closes it again, waiting until
    /// sled has let go of its lock: for building stores by hand (an older format's, damaged
    /// ones) in tests.
    pub fn with_raw_sled(
        store: &std::path::Path,
        write: impl FnOnce(&sled::Db) -> sled::Result<()>,
    ) -> sled::Result<()> {
        let data = crate::store::data_dir(store);
        {
            let db = sled::Config::new()
                .path(&data)
                .segment_size(1 << 20)
                .open()?;
            write(&db)?;
            db.flush()?;
        }
        crate::store::wait_unlocked(&data);
        Ok(())
    }

    /// Writes a checkpoint of the format-1 store at `from` to `file` (which must not exist), as
    /// [`crate::migrate_store`] does before it imports it; reads a copy of the store's sled
    /// directory made at `<file>.sled` (removed again).
    pub fn export_format_1(
        from: &std::path::Path,
        file: &std::path::Path,
    ) -> Result<crate::CheckpointManifest, crate::CheckpointError> {
        let mut copy = file.as_os_str().to_owned();
        copy.push(".sled");
        crate::migrate::export_format_1(from, std::path::Path::new(&copy), file, None)
    }

    /// Decodes `bytes` as a log record, every event, the way reads and `verify` do; returns the
    /// number of events or the decode error. Must never panic.
    pub fn decode_record(bytes: &[u8]) -> Result<u64, String> {
        let record = crate::record::Record::parse(bytes::Bytes::copy_from_slice(bytes))
            .map_err(|e| e.to_string())?;
        record.check_all().map_err(|e| e.to_string())?;
        let mut count = 0;
        for view in record.views() {
            let view = view.map_err(|e| e.to_string())?;
            let _ = view.to_owned();
            count += 1;
        }
        let mut record = record;
        for position in record.first_position()..=record.last_position() {
            record.event(position).map_err(|e| e.to_string())?;
        }
        Ok(count)
    }

    /// Decodes `bytes` as an index page; returns the number of runs or the decode error.
    pub fn decode_page(bytes: &[u8]) -> Result<usize, String> {
        crate::record::decode_page(bytes)
            .map(|runs| runs.len())
            .map_err(|e| e.to_string())
    }

    /// Decodes `bytes` as a snapshot entry (`key`, `value`); returns the state's length.
    pub fn decode_snapshot(key: &[u8], value: &[u8]) -> Result<usize, String> {
        crate::snapshot::decode_snapshot(key, value)
            .map(|s| s.state.len())
            .map_err(|e| e.to_string())
    }
}
