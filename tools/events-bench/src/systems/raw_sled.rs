//! The engine ceiling: sled used directly, one key per event, one `apply_batch` per append of
//! several events (one `insert` for an append of one event), no version check, no global log, no
//! index.
//!
//! Why `insert` for one event: in sled 0.34.7 every `apply_batch` pins the log, which rolls (seals
//! and queues for writing) the current IO buffer before and after it, so a stream of one-key
//! batches turns into a stream of tiny buffer writes that the next `flush` waits for. Measured
//! here: 10 000 one-key `apply_batch`es acked in 0.19 s then flushed in 1.8 s (100 000: 2.3 s,
//! then 15.6 s); 10 000 `insert`s acked in 0.09 s, flushed in 1 ms. A single-key `insert` is
//! atomic on its own, so it is what the engine can do at best for a one-event append.
//!
//! Key: the stream id (`article_generation/gen-<n>`), a 0 byte (so `gen-1` is not a prefix of
//! `gen-10`), the version as 8 bytes big-endian. Value: the metadata's length (2 bytes
//! big-endian), the metadata encoded by the events-core codec (the bytes the eventlog stores per
//! event), the payload.
//!
//! Snapshots (W-load-snapshot): a `snapshots` tree, key = the stream prefix, value = the version
//! (8 bytes big-endian) and the state encoded by the events-core codec, one per aggregate
//! (replaced). A load reads it, then the keys after its version.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, ensure};
use eventlog::{EventRegistry, RecordedEvent};
use events_core::{EventMetadata, codec};
use omni_domain::ArticleGeneration;

use super::{LoadOutcome, SLED_CACHE_BYTES, Scanned, System, Writer, apply};
use crate::input::{
    AGGREGATE_TYPE, EVENT_TYPE, Input, SCHEMA_VERSION, SOURCE, aggregate_id, stream_id,
};
use crate::workload::Append;

/// sled, used directly.
#[derive(Debug)]
pub struct RawSled {
    db: sled::Db,
    /// The `snapshots` tree (empty but for W-load-snapshot).
    snapshots: sled::Tree,
    registry: EventRegistry,
    /// sled's data file, `fdatasync`ed after each flush in durable mode (sled's own flush uses
    /// `sync_file_range`, which does not reach the drive): the same guarantee as the eventlog's
    /// durable mode.
    data_file: Option<Arc<File>>,
}

/// An append handle: a clone of the database.
#[derive(Debug)]
pub struct RawSledWriter {
    db: sled::Db,
    data_file: Option<Arc<File>>,
}

fn stream_prefix(aggregate: u32) -> Vec<u8> {
    let mut key = stream_id(aggregate).into_bytes();
    key.push(0);
    key
}

/// The metadata and the payload of one stored value.
fn decode(value: &[u8]) -> anyhow::Result<(EventMetadata, Vec<u8>)> {
    ensure!(value.len() >= 2, "a value of {} bytes", value.len());
    let len = u16::from_be_bytes([value[0], value[1]]) as usize;
    ensure!(value.len() >= 2 + len, "a value shorter than its metadata");
    let metadata = codec::decode_metadata(&value[2..2 + len])?;
    Ok((metadata, value[2 + len..].to_vec()))
}

impl System for RawSled {
    type Writer = RawSledWriter;

    fn open(dir: &Path, durable: bool) -> anyhow::Result<Self> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(SLED_CACHE_BYTES);
        // sled's background threads (its `sled-io-*` pool) can hold a closed database, and so
        // its file lock, for a moment after the last handle is dropped: a reopen right after a
        // close (W-load's) waits for them. CI saw `could not acquire lock` there once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other,
            }
        }
        .with_context(|| format!("opening sled in {}", dir.display()))?;
        let data_file = if durable {
            let path = dir.join("db");
            Some(Arc::new(
                File::options()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .with_context(|| format!("opening {}", path.display()))?,
            ))
        } else {
            None
        };
        let snapshots = db.open_tree("snapshots")?;
        Ok(Self {
            db,
            snapshots,
            registry: omni_domain::registry(),
            data_file,
        })
    }

    fn writer(&self) -> anyhow::Result<RawSledWriter> {
        Ok(RawSledWriter {
            db: self.db.clone(),
            data_file: self.data_file.clone(),
        })
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.db.flush()?;
        if let Some(file) = &self.data_file {
            file.sync_data()?;
        }
        Ok(())
    }

    fn close(self) -> anyhow::Result<()> {
        self.db.flush()?;
        drop(self.db);
        Ok(())
    }

    fn read_stream(&self, aggregate: u32) -> anyhow::Result<u64> {
        let mut count = 0;
        for item in self.db.scan_prefix(stream_prefix(aggregate)) {
            let (_key, value) = item?;
            let (metadata, payload) = decode(&value)?;
            count += 1;
            ensure!(
                metadata.version == count,
                "gen-{aggregate}: event {count} has version {}",
                metadata.version
            );
            std::hint::black_box((metadata, payload));
        }
        Ok(count)
    }

    fn read_all(&self) -> anyhow::Result<u64> {
        let mut count = 0;
        for item in self.db.iter() {
            let (_key, value) = item?;
            std::hint::black_box(decode(&value)?);
            count += 1;
        }
        Ok(count)
    }

    /// Every key in order; each value's metadata and payload are sliced where they lie (sled
    /// hands out reference-counted buffers: nothing is copied), the version read from the key.
    /// The metadata's bincode is not decoded: there is no borrowed decoder for it, so this is
    /// the floor of what reading the store can cost.
    fn scan_all(&self) -> anyhow::Result<Scanned> {
        let mut scanned = Scanned::default();
        for item in self.db.iter() {
            let (key, value) = item?;
            ensure!(value.len() >= 2 && key.len() >= 8, "a short key or value");
            let len = u16::from_be_bytes([value[0], value[1]]) as usize;
            ensure!(value.len() >= 2 + len, "a value shorter than its metadata");
            let (metadata, payload) = value[2..].split_at(len);
            let mut version = [0_u8; 8];
            version.copy_from_slice(&key[key.len() - 8..]);
            scanned.events += 1;
            scanned.payload_bytes += payload.len() as u64;
            std::hint::black_box((u64::from_be_bytes(version), metadata, payload));
        }
        Ok(scanned)
    }

    fn load(&self, aggregate: u32) -> anyhow::Result<LoadOutcome> {
        let (state, outcome) = self.fold(aggregate)?;
        std::hint::black_box(&state);
        Ok(outcome)
    }

    fn snapshot(&self, aggregate: u32) -> anyhow::Result<u64> {
        let (state, outcome) = self.fold(aggregate)?;
        let mut value = outcome.version.to_be_bytes().to_vec();
        value.extend_from_slice(&codec::encode_payload(&state)?);
        self.snapshots.insert(stream_prefix(aggregate), value)?;
        Ok(outcome.version)
    }
}

impl RawSled {
    /// The aggregate's state: its snapshot (if any), then every event after it.
    fn fold(&self, aggregate: u32) -> anyhow::Result<(ArticleGeneration, LoadOutcome)> {
        let prefix = stream_prefix(aggregate);
        let (mut state, from_snapshot) = match self.snapshots.get(&prefix)? {
            Some(value) => {
                ensure!(value.len() >= 8, "a snapshot of {} bytes", value.len());
                let mut version = [0_u8; 8];
                version.copy_from_slice(&value[..8]);
                let state: ArticleGeneration = codec::decode_payload(&value[8..])?;
                (state, Some(u64::from_be_bytes(version)))
            }
            None => (ArticleGeneration::default(), None),
        };
        let mut start = prefix.clone();
        start.extend_from_slice(&(from_snapshot.unwrap_or(0) + 1).to_be_bytes());
        let mut end = prefix;
        if let Some(last) = end.last_mut() {
            *last = 1; // just past every key of this stream (prefix = stream id + 0 byte)
        }
        let mut version = from_snapshot.unwrap_or(0);
        let mut applied = 0;
        for item in self.db.range(start..end) {
            let (_key, value) = item?;
            let (metadata, payload) = decode(&value)?;
            ensure!(
                metadata.version == version + 1,
                "gen-{aggregate}: version {} after {version}",
                metadata.version
            );
            version = metadata.version;
            let event = RecordedEvent {
                position: 0, // raw sled has no global log
                metadata,
                payload,
            };
            apply(&mut state, &event, &self.registry)?;
            applied += 1;
        }
        Ok((
            state,
            LoadOutcome {
                version,
                from_snapshot,
                events_applied: applied,
            },
        ))
    }
}

impl Writer for RawSledWriter {
    fn append(&mut self, input: &Input, append: &Append) -> anyhow::Result<()> {
        let prefix = stream_prefix(append.aggregate);
        let id = aggregate_id(append.aggregate);
        let mut batch = sled::Batch::default();
        let mut single = None;
        for (k, i) in (append.first..append.first + append.count).enumerate() {
            let version = append.expected + k as u64 + 1;
            let metadata = codec::encode_metadata(&EventMetadata {
                event_id: input.id(i),
                event_type: EVENT_TYPE.to_string(),
                aggregate_id: id.clone(),
                aggregate_type: AGGREGATE_TYPE.to_string(),
                version,
                timestamp: input.timestamp(i),
                trace_id: None,
                user_id: None,
                session_id: None,
                source: SOURCE.to_string(),
                correlation_id: None,
                causation_id: None,
                schema_version: SCHEMA_VERSION,
            })?;
            let payload = input.payload(i);
            let mut value = Vec::with_capacity(2 + metadata.len() + payload.len());
            value.extend_from_slice(&u16::try_from(metadata.len())?.to_be_bytes());
            value.extend_from_slice(&metadata);
            value.extend_from_slice(payload);
            let mut key = Vec::with_capacity(prefix.len() + 8);
            key.extend_from_slice(&prefix);
            key.extend_from_slice(&version.to_be_bytes());
            if append.count == 1 {
                single = Some((key, value));
            } else {
                batch.insert(key, value);
            }
        }
        match single {
            Some((key, value)) => {
                self.db.insert(key, value)?;
            }
            None => self.db.apply_batch(batch)?,
        }
        if let Some(file) = &self.data_file {
            self.db.flush()?;
            file.sync_data()?;
        }
        Ok(())
    }
}
