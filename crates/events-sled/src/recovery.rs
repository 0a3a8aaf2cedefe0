//! Opening a store's content: the format version, the log's segment files (whose tail the
//! segment layer recovers), the synced position sled noted, the index watermark, and the memtable
//! rebuilt from the events after it. sled holds only what can be rebuilt from the log: indexes
//! that reach past the log (a power loss in buffered mode can keep sled's pages and lose the
//! segment bytes they cover) are dropped and rebuilt.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Durability, StoreConfig};
use crate::error::{OpenError, ReadError};
use crate::index::{
    Memtable, StreamEntry, page_position, persisted_head, persisted_type_end, push_position,
    stream_page_at,
};
use crate::keys::{
    COUNTERS_KEY, FORMAT_KEY, INDEXING_KEY, STORE_ID_KEY, SYNCED_KEY, StreamKey, TAG_LOG,
    TAG_STREAM, TAG_TYPE, WATERMARK_KEY,
};
use crate::record::{
    GENESIS, Hash, PersistedCounters, Record, decode_counters, decode_synced, record_hash,
};
use crate::segment::vfs::FsDir;
use crate::segment::{SegmentError, SegmentLog, SegmentOptions};
use crate::store::STORE_FORMAT;

/// The directory of the log's segment files inside a store's directory.
pub(crate) const LOG_DIR: &str = "log";

/// The store id in the header of the first segment of the log at `path`: `None` when there is
/// no log directory or no intact segment in it. The log's owner, whatever sled says.
pub(crate) fn log_id(path: &Path) -> Result<Option<[u8; 16]>, OpenError> {
    let dir_path = path.join(LOG_DIR);
    if !dir_path.is_dir() {
        return Ok(None);
    }
    let dir = FsDir::existing(&dir_path).map_err(|source| OpenError::Io {
        path: dir_path,
        source,
    })?;
    crate::segment::log_store_id(&dir).map_err(segment_to_open)
}

/// Whether the store at `path` has a log (segment files) that sled's part can be rebuilt from.
pub(crate) fn has_log(path: &Path) -> bool {
    matches!(log_id(path), Ok(Some(_)))
}

/// The first store format: the log's records were sled keys (`L` · position). Such a store is
/// migrated through a checkpoint (`events-dump migrate`), not opened.
pub(crate) const FORMAT_SLED_LOG: u32 = 1;

pub(crate) fn open_corrupted(detail: impl Into<String>) -> OpenError {
    OpenError::Corrupted {
        detail: detail.into(),
    }
}

pub(crate) fn read_to_open(e: ReadError) -> OpenError {
    match e {
        ReadError::Storage(e) => OpenError::Storage(e),
        ReadError::Corrupted { detail } => OpenError::Corrupted { detail },
        ReadError::Io { path, source } => OpenError::Io { path, source },
    }
}

fn segment_to_open(e: SegmentError) -> OpenError {
    read_to_open(ReadError::from(e))
}

/// What an open learns from the log: where it ends, its chain head, and the memtable rebuilt from
/// the events after the index watermark.
pub(crate) struct Recovered {
    pub(crate) last_position: u64,
    pub(crate) chain_head: Hash,
    pub(crate) watermark: u64,
    pub(crate) memtable: Memtable,
    pub(crate) replayed: u64,
    pub(crate) new_aggregates: u64,
}

fn u64_value(bytes: &[u8], what: &str) -> Result<u64, OpenError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| open_corrupted(format!("{what} is {} bytes, not 8", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

/// The last position a flush synced and the chain hash there (`M synced`), if any.
fn read_synced(log: &sled::Tree) -> Result<Option<(u64, Hash)>, OpenError> {
    let Some(bytes) = log.get(SYNCED_KEY).map_err(OpenError::Storage)? else {
        return Ok(None);
    };
    decode_synced(&bytes)
        .map(Some)
        .map_err(|e| open_corrupted(format!("the synced position: {e}")))
}

/// Refuses a log shorter than the position a flush synced (and sled noted afterwards), or one
/// that differs there: segment bytes that were on disk are gone, so acknowledged events are.
/// (Opening the segment files refused a shorter log already, before cutting anything.)
fn check_synced(
    synced: Option<(u64, Hash)>,
    segments: &SegmentLog,
    last_position: u64,
) -> Result<(), OpenError> {
    let Some((position, hash)) = synced else {
        return Ok(());
    };
    if position > last_position {
        return Err(open_corrupted(format!(
            "the log ends at position {last_position}, but position {position} was synced to disk: \
             {} acknowledged events are missing (the segment files were truncated or damaged)",
            position - last_position
        )));
    }
    if position == 0 {
        return Ok(());
    }
    let record = segments
        .record_at(position)
        .map_err(segment_to_open)
        .and_then(|bytes| {
            Record::parse(bytes).map_err(|e| open_corrupted(format!("log record: {e}")))
        })?;
    if record.last_position() != position || record_hash(record.bytes()) != hash {
        return Err(open_corrupted(format!(
            "the log at position {position} is not what was synced to disk there (its hash differs)"
        )));
    }
    Ok(())
}

/// Removes every persisted index page and the watermark: the next replay rebuilds them all.
fn drop_indexes(log: &sled::Tree) -> Result<(), OpenError> {
    let mut batch = sled::Batch::default();
    for tag in [TAG_STREAM, TAG_TYPE] {
        for entry in log.scan_prefix([tag]) {
            let (key, _) = entry.map_err(OpenError::Storage)?;
            batch.remove(key);
        }
    }
    batch.remove(WATERMARK_KEY);
    batch.remove(INDEXING_KEY);
    log.apply_batch(batch).map_err(OpenError::Storage)
}

/// Checks the store's invariants and rebuilds memory: the persisted indexes do not reach past the
/// log (else they are rebuilt), and every event after the watermark follows its stream's head and
/// its predecessor in the chain with no gap.
fn recover(
    log: &sled::Tree,
    synced: Option<(u64, Hash)>,
    segments: &SegmentLog,
    last_record: Option<bytes::Bytes>,
) -> Result<Recovered, OpenError> {
    let (last_position, chain_head) = match last_record {
        None => (0, GENESIS),
        Some(bytes) => {
            let record = Record::parse(bytes)
                .map_err(|e| open_corrupted(format!("last log record: {e}")))?;
            record
                .check_all()
                .map_err(|e| open_corrupted(format!("last log record: {e}")))?;
            (record.last_position(), record_hash(record.bytes()))
        }
    };
    if last_position != segments.last_position() {
        return Err(open_corrupted(format!(
            "the last record ends at {last_position}, the segment files at {}",
            segments.last_position()
        )));
    }
    check_synced(synced, segments, last_position)?;
    let mut watermark = match log.get(WATERMARK_KEY).map_err(OpenError::Storage)? {
        Some(bytes) => u64_value(&bytes, "the index watermark")?,
        None => 0,
    };
    // A persistence cut between its batches may have left pages up to where it was going.
    let indexing = match log.get(INDEXING_KEY).map_err(OpenError::Storage)? {
        Some(bytes) => u64_value(&bytes, "the index persistence in progress")?,
        None => 0,
    };
    if watermark > last_position || indexing > last_position {
        // sled is derived data: pages it kept past the log's end are rebuilt from the log.
        tracing::warn!(
            name: "event_store_indexes_rebuilt",
            watermark,
            indexing,
            last_position,
            "the persisted indexes reach past the log's end; rebuilding them from the log"
        );
        drop_indexes(log)?;
        watermark = 0;
    }
    let mut memtable = Memtable::default();
    let mut replayed = 0;
    let mut new_aggregates = 0;
    // Each replayed type's persisted end, read once.
    let mut type_ends: HashMap<String, u64> = HashMap::new();
    if watermark < last_position {
        let mut expected = None;
        let mut prev_hash: Option<Hash> = None;
        let reader = segments.reader(watermark + 1).map_err(segment_to_open)?;
        for frame in reader {
            let frame = frame.map_err(segment_to_open)?;
            let record = crate::read::parse_frame(frame).map_err(read_to_open)?;
            if let Some(expected) = expected
                && record.first_position() != expected
            {
                return Err(open_corrupted(format!(
                    "the log has a gap: expected a record at position {expected}, found one at {}",
                    record.first_position()
                )));
            }
            if let Some(prev) = prev_hash
                && *record.prev_hash() != prev
            {
                return Err(open_corrupted(format!(
                    "the hash chain breaks at the record starting at position {}",
                    record.first_position()
                )));
            }
            expected = Some(record.last_position() + 1);
            prev_hash = Some(record_hash(record.bytes()));
            for summary in record.views() {
                let summary = summary.map_err(|e| {
                    open_corrupted(format!(
                        "record at position {}: {e}",
                        record.first_position()
                    ))
                })?;
                if summary.position <= watermark {
                    continue;
                }
                let stream = StreamKey::new(summary.aggregate_type, summary.aggregate_id);
                if !memtable.streams.contains_key(&stream) {
                    let head = persisted_head(log, &stream, || last_position)
                        .map_err(|e| read_to_open(ReadError::from(e)))?;
                    memtable.streams.insert(
                        stream.clone(),
                        StreamEntry {
                            head,
                            ..StreamEntry::default()
                        },
                    );
                }
                if summary.version == 1 {
                    new_aggregates += 1;
                }
                let entry = memtable
                    .streams
                    .get_mut(&stream)
                    .ok_or_else(|| open_corrupted("stream entry vanished during replay"))?;
                // The indexer persists in several sled batches, the watermark with the last: a
                // crash between them leaves pages past the watermark, and the entry's head came
                // from them. What they hold is indexed already (checked against the log here), so
                // memory takes it up after them.
                if summary.version <= entry.head {
                    let paged_at = stream_page_at(log, &stream, summary.version)
                        .map_err(|e| read_to_open(ReadError::from(e)))?
                        .and_then(|(first, runs)| page_position(first, &runs, summary.version));
                    if paged_at != Some(summary.position) {
                        return Err(open_corrupted(format!(
                            "event at position {} is version {} of `{}/{}`, which its index \
                             pages put at {paged_at:?}",
                            summary.position,
                            summary.version,
                            summary.aggregate_type,
                            summary.aggregate_id
                        )));
                    }
                } else {
                    if entry.head.checked_add(1) != Some(summary.version) {
                        return Err(open_corrupted(format!(
                            "event at position {} is version {} of `{}/{}`, whose head is {}",
                            summary.position,
                            summary.version,
                            summary.aggregate_type,
                            summary.aggregate_id,
                            entry.head
                        )));
                    }
                    entry.push(summary.position);
                    entry.last_event_id = Some(summary.event_id);
                }
                let type_end = match type_ends.get(summary.aggregate_type) {
                    Some(&end) => end,
                    None => {
                        let end = persisted_type_end(log, summary.aggregate_type)
                            .map_err(|e| read_to_open(ReadError::from(e)))?;
                        type_ends.insert(summary.aggregate_type.to_string(), end);
                        end
                    }
                };
                if summary.position > type_end {
                    push_position(
                        memtable
                            .types
                            .entry(summary.aggregate_type.to_string())
                            .or_default(),
                        summary.position,
                    );
                }
                replayed += 1;
            }
            if record.last_position() >= last_position {
                break;
            }
        }
        if expected != Some(last_position + 1) {
            return Err(open_corrupted(format!(
                "replay after the watermark ended at {:?}, the log ends at {last_position}",
                expected.map(|e| e - 1)
            )));
        }
    }
    Ok(Recovered {
        last_position,
        chain_head,
        watermark,
        memtable,
        replayed,
        new_aggregates,
    })
}

/// What opening learns once sled is open: the trees, sled's data file, the segment log and the
/// checked, recovered state.
pub(crate) struct Prepared {
    pub(crate) log: sled::Tree,
    pub(crate) snapshots: sled::Tree,
    pub(crate) consumers: sled::Tree,
    pub(crate) data_file: std::fs::File,
    pub(crate) segments: SegmentLog,
    pub(crate) recovered: Recovered,
    pub(crate) persisted: PersistedCounters,
    pub(crate) store_id: String,
}

/// The store's id: sled's, else the log's (sled was thrown away: it is rebuilt from the log),
/// else a new one (a new store), written (and flushed) into sled.
fn store_id(
    config: &StoreConfig,
    db: &sled::Db,
    log: &sled::Tree,
) -> Result<uuid::Uuid, OpenError> {
    if let Some(bytes) = log.get(STORE_ID_KEY).map_err(OpenError::Storage)? {
        return uuid::Uuid::from_slice(&bytes)
            .map_err(|_| open_corrupted(format!("store id is {} bytes, not 16", bytes.len())));
    }
    let id = log_id(&config.path)?.map_or_else(uuid::Uuid::new_v4, uuid::Uuid::from_bytes);
    log.insert(STORE_ID_KEY, id.as_bytes().as_slice())
        .map_err(OpenError::Storage)?;
    db.flush().map_err(OpenError::Storage)?;
    Ok(id)
}

/// Checks the format version, writing it into a new store. A format-1 store (its log in sled) is
/// refused with the command that migrates it.
fn check_format(config: &StoreConfig, db: &sled::Db, log: &sled::Tree) -> Result<(), OpenError> {
    match log.get(FORMAT_KEY).map_err(OpenError::Storage)? {
        Some(bytes) => {
            let array: [u8; 4] = bytes.as_ref().try_into().map_err(|_| {
                open_corrupted(format!("format key is {} bytes, not 4", bytes.len()))
            })?;
            let found = u32::from_be_bytes(array);
            if found > STORE_FORMAT {
                return Err(OpenError::FormatTooNew {
                    found,
                    supported: STORE_FORMAT,
                });
            }
            if found == FORMAT_SLED_LOG {
                return Err(OpenError::NeedsMigration {
                    path: config.path.clone(),
                    found,
                    supported: STORE_FORMAT,
                });
            }
            if found == 0 {
                return Err(open_corrupted("format version 0"));
            }
        }
        None => {
            if log.scan_prefix([TAG_LOG]).next().is_some() {
                return Err(OpenError::NeedsMigration {
                    path: config.path.clone(),
                    found: FORMAT_SLED_LOG,
                    supported: STORE_FORMAT,
                });
            }
            if log.first().map_err(OpenError::Storage)?.is_some() {
                return Err(open_corrupted("the store holds data but no format version"));
            }
            if has_log(&config.path) {
                tracing::warn!(
                    name: "event_store_sled_rebuilt",
                    path = %config.path.display(),
                    "sled's part of the store is empty (its files were removed, or read as empty): rebuilding it from the log; snapshots and consumer positions are gone"
                );
            }
            log.insert(FORMAT_KEY, &STORE_FORMAT.to_be_bytes())
                .map_err(OpenError::Storage)?;
            db.flush().map_err(OpenError::Storage)?;
        }
    }
    Ok(())
}

/// Opens the log's segment files (recovering their tail), refusing a log that ends before
/// `must_hold` (the position a flush synced) before anything is cut.
pub(crate) fn open_segments(
    config: &StoreConfig,
    store_id: uuid::Uuid,
    must_hold: u64,
) -> Result<(SegmentLog, crate::segment::Recovered), OpenError> {
    let dir_path = config.path.join(LOG_DIR);
    let dir = FsDir::create(&dir_path).map_err(|source| OpenError::Io {
        path: dir_path,
        source,
    })?;
    let zero_ahead_bytes = match config.durability {
        Durability::Durable => SegmentOptions::DURABLE_ZERO_AHEAD_BYTES,
        Durability::Buffered => 0,
    };
    let options = SegmentOptions {
        segment_bytes: config.log_segment_bytes,
        zero_ahead_bytes,
        must_hold,
        ..SegmentOptions::new(*store_id.as_bytes())
    };
    SegmentLog::open(Arc::new(dir), options).map_err(segment_to_open)
}

/// Everything opening does with the store's content: the format version, the log's tail, the
/// invariant checks and the memtable rebuild. sled can panic on damaged files at any of these
/// reads, so the caller runs this under `catch_unwind`.
pub(crate) fn prepare(
    config: &StoreConfig,
    data: &Path,
    db: &sled::Db,
) -> Result<Prepared, OpenError> {
    let guarded = |what: &str, result: sled::Result<sled::Tree>| {
        result.map_err(|e| open_corrupted(format!("opening tree {what}: {e}")))
    };
    let log = guarded("log", db.open_tree("log"))?;
    let snapshots = guarded("snapshots", db.open_tree("snapshots"))?;
    let consumers = guarded("consumers", db.open_tree("consumers"))?;
    check_format(config, db, &log)?;
    let data_file_path = data.join("db");
    let data_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data_file_path)
        .map_err(|source| OpenError::Io {
            path: data_file_path,
            source,
        })?;
    let id = store_id(config, db, &log)?;
    let synced = read_synced(&log)?;
    let (segments, tail) = open_segments(config, id, synced.map_or(0, |(p, _)| p))?;
    if tail.cut_bytes > 0 {
        tracing::warn!(
            name: "event_store_torn_tail_cut",
            path = %config.path.display(),
            cut_bytes = tail.cut_bytes,
            cut_frames = tail.cut_frames,
            last_position = tail.last_position,
            "a torn, never-synced tail of the log was cut"
        );
    }
    let recovered = recover(&log, synced, &segments, tail.last_record)?;
    let mut persisted = match log.get(COUNTERS_KEY).map_err(OpenError::Storage)? {
        Some(bytes) => {
            decode_counters(&bytes).map_err(|e| open_corrupted(format!("counters: {e}")))?
        }
        None => PersistedCounters::default(),
    };
    if recovered.watermark == 0 {
        // A full replay counted every aggregate.
        persisted.aggregates = 0;
    }
    Ok(Prepared {
        log,
        snapshots,
        consumers,
        data_file,
        segments,
        recovered,
        persisted,
        store_id: id.hyphenated().to_string(),
    })
}
