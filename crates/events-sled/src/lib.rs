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
mod histogram;
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
mod repair;
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
pub use events_core::ExpectedVersion;
#[cfg(feature = "fault-injection")]
pub use fault::{SyncHook, SyncPoint};
pub use histogram::{HistogramBucket, HistogramSnapshot};
pub use metrics::StoreMetrics;
pub use migrate::migrate_store;
pub use read::{LogEvents, StreamEvents, TypeEvents};
pub use read_only::{
    LogFollower, ReadOnlyLogEvents, ReadOnlyStore, ReadOnlyStreamEvents, ReadOnlyTypeEvents,
};
pub use record::EventRef;
pub use repair::{RepairReport, repair_store};
pub use snapshot::Snapshot;
pub use state::CommitListener;
pub use store::{STORE_FORMAT, Store, data_dir};
pub use types::{AggregateInfo, AppendBatch, AppendResult, Direction, StreamRead};
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

    /// Opens the segment files in `dir` as a store's open does (recovering, and cutting, the
    /// tail; the store id taken from the first segment's header), reads every record back by
    /// position and in order, and opens again: returns the last position, or the error as text.
    /// Must never panic; when it succeeds, both opens and both reads agree.
    pub fn recover_segments(dir: &std::path::Path) -> Result<u64, String> {
        use crate::segment::vfs::FsDir;
        use crate::segment::{SegmentLog, SegmentOptions, log_store_id};
        let fs = FsDir::create(dir).map_err(|e| e.to_string())?;
        let store_id = log_store_id(&fs)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let options = || SegmentOptions {
            segment_bytes: 4096,
            ..SegmentOptions::new(store_id)
        };
        let (log, recovered) = SegmentLog::open(std::sync::Arc::new(fs.clone()), options())
            .map_err(|e| e.to_string())?;
        let last = recovered.last_position;
        let mut position = 1;
        for frame in log.reader(1).map_err(|e| e.to_string())? {
            let frame = frame.map_err(|e| e.to_string())?;
            if frame.first_position != position {
                return Err(format!(
                    "the reader skipped to {} from {position}",
                    frame.first_position
                ));
            }
            let at = log.record_at(position).map_err(|e| e.to_string())?;
            if at != frame.record {
                return Err(format!("record_at({position}) differs from the reader"));
            }
            position += u64::from(frame.event_count);
        }
        if position != last + 1 {
            return Err(format!("the reader ended at {position}, the log at {last}"));
        }
        drop(log);
        let (_, again) =
            SegmentLog::open(std::sync::Arc::new(fs), options()).map_err(|e| e.to_string())?;
        if again.last_position != last || again.cut_bytes != 0 {
            return Err(format!(
                "a second open ended at {} (cut {} bytes) after the first ended at {last}",
                again.last_position, again.cut_bytes
            ));
        }
        Ok(last)
    }

    /// Bytes of a segment file's header: its first frame starts at this offset.
    pub const SEGMENT_HEADER_LEN: u64 = crate::segment::layout::HEADER_LEN;

    /// Bytes of a frame's header (`len u32 · crc32 u32 · first_position u64 · event_count u32`),
    /// before its record.
    pub const FRAME_HEADER_LEN: u64 = crate::segment::layout::FRAME_HEADER_LEN;

    /// The sled key (in the `log` tree) of the last position a flush synced.
    pub const SYNCED_KEY: &[u8] = crate::keys::SYNCED_KEY;

    /// The name of the segment file (in `<store>/log/`) whose first event is at `first_position`.
    pub fn segment_file_name(first_position: u64) -> String {
        crate::segment::layout::segment_name(first_position)
    }

    /// The name of the index file of the sealed segment starting at `first_position`.
    pub fn index_file_name(first_position: u64) -> String {
        crate::segment::layout::index_name(first_position)
    }

    /// The first position of a segment or index file, from its name; `None` for other names.
    pub fn segment_first_position(file_name: &str) -> Option<u64> {
        crate::segment::layout::parse_name(file_name).map(|(_, first)| first)
    }

    /// One frame of a segment file, as [`segment_frames`] found it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct FrameAt {
        /// Offset of the frame's header in the file.
        pub offset: u64,
        /// The record's length.
        pub len: u32,
        /// The position of the record's first event.
        pub first_position: u64,
        /// How many events the record holds.
        pub event_count: u32,
    }

    impl FrameAt {
        /// The offset after the frame.
        pub fn end(&self) -> u64 {
            self.offset + FRAME_HEADER_LEN + u64::from(self.len)
        }

        /// The offsets of the frame's record in the file.
        pub fn record(&self) -> std::ops::Range<usize> {
            (self.offset + FRAME_HEADER_LEN) as usize..self.end() as usize
        }

        /// The position of the record's last event.
        pub fn last_position(&self) -> u64 {
            self.first_position + u64::from(self.event_count) - 1
        }
    }

    /// The frames of a segment file's bytes, from offset [`SEGMENT_HEADER_LEN`] up to the first
    /// frame that is zero-length, runs past the bytes, holds no event or fails its CRC (the
    /// header and the positions' continuity are not checked).
    pub fn segment_frames(bytes: &[u8]) -> Vec<FrameAt> {
        use crate::segment::layout::FrameHeader;
        let mut frames = Vec::new();
        let mut at = SEGMENT_HEADER_LEN as usize;
        while let Some(header) = bytes.get(at..).and_then(FrameHeader::decode) {
            let start = at + FRAME_HEADER_LEN as usize;
            let Some(record) = bytes.get(start..start + header.len as usize) else {
                break;
            };
            if header.len == 0 || header.event_count == 0 || !header.crc_matches(record) {
                break;
            }
            frames.push(FrameAt {
                offset: at as u64,
                len: header.len,
                first_position: header.first_position,
                event_count: header.event_count,
            });
            at = start + header.len as usize;
        }
        frames
    }

    /// The frame of `record` (its events at `first_position ..`), as the log writes it: header
    /// with a correct CRC, then the record. An empty or oversized record is an error.
    pub fn encode_frame(
        first_position: u64,
        event_count: u32,
        record: &[u8],
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        crate::segment::layout::encode_frame(first_position, event_count, record, &mut out)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Rewrites the CRC of the frame whose header starts at `offset` in a segment file's bytes
    /// to match its (altered) content, so that only the hash chain can tell. An error when no
    /// whole frame is there.
    pub fn reseal_frame(bytes: &mut [u8], offset: u64) -> Result<(), String> {
        use crate::segment::layout::{FrameHeader, frame_crc};
        let at = usize::try_from(offset).map_err(|e| e.to_string())?;
        let header = bytes
            .get(at..)
            .and_then(FrameHeader::decode)
            .ok_or_else(|| format!("no frame header at offset {offset}"))?;
        let start = at + FRAME_HEADER_LEN as usize;
        let record = bytes
            .get(start..start + header.len as usize)
            .ok_or_else(|| format!("the frame at offset {offset} runs past the bytes"))?;
        let crc = frame_crc(header.first_position, header.event_count, record);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// A sealed segment's index file (`seg-….idx`): first and last position, the offset after
    /// the last frame, sparse `(first position, offset)` entries, with a correct CRC.
    pub fn encode_segment_index(
        first_position: u64,
        last_position: u64,
        data_end: u64,
        entries: &[(u64, u64)],
    ) -> Vec<u8> {
        crate::segment::layout::SegmentIndex {
            first_position,
            last_position,
            data_end,
            entries: entries.to_vec(),
        }
        .encode()
    }

    /// Decodes and checks an index file as opening does: `(first position, last position, data
    /// end, entries)`.
    #[allow(clippy::type_complexity)]
    pub fn decode_segment_index(bytes: &[u8]) -> Result<(u64, u64, u64, Vec<(u64, u64)>), String> {
        crate::segment::layout::SegmentIndex::decode(bytes)
            .map(|i| (i.first_position, i.last_position, i.data_end, i.entries))
            .map_err(|e| e.to_string())
    }

    /// Decodes the value of [`SYNCED_KEY`]: the position and the chain hash there.
    pub fn decode_synced(value: &[u8]) -> Result<(u64, [u8; 32]), String> {
        crate::record::decode_synced(value).map_err(|e| e.to_string())
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
