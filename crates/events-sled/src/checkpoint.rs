//! Checkpoints: a consistent, verifiable copy of the whole store in one file, in place of the
//! seed's JSON backups.
//!
//! ## File layout
//!
//! ```text
//! "EVLCKPT1"
//! · section* where section = tag u8 · length u64 BE · bytes (an export writes them in the
//!   order S, C, R, M, a migration from a format-1 store R, S, C, M; read in any order before the
//!   manifest)
//!     'R' a log record, byte for byte as stored (hash-chained)
//!     'S' a snapshot: key_len varint · key · value
//!     'C' a consumer: key_len varint · key · value
//!     'M' the manifest, JSON (always the last section)
//! · footer: manifest_offset u64 BE · BLAKE3 of every byte before the footer [32] · "EVLCKEND"
//! ```
//!
//! An export is consistent at one log position: snapshots and consumers are copied first, each
//! only if the log acknowledged when it is read covers it; then the position is chosen (everything
//! acknowledged by then, made durable) and the records up to it are copied while appends continue
//! (records are immutable once written). So no snapshot or consumer runs ahead of the records it
//! is restored with. The file
//! is written under a temporary name, `fsync`ed, and renamed into place. Verification checks the
//! file hash, every record's decoding and its link in the hash chain, positions from 1 without a
//! gap, each aggregate's versions from 1 without a gap, and the manifest's counts and chain head. Import verifies first, then restores into a new
//! directory.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use crate::consumer::decode_consumer;
use crate::error::CheckpointError;
use crate::keys::{FORMAT_KEY, STORE_ID_KEY, StreamKey};
use crate::record::{GENESIS, Hash, Record, record_hash};
use crate::snapshot::{Snapshot, decode_snapshot};
use crate::state::{Scope, Shared, lock};
use crate::store::{STORE_FORMAT, Store, open_sled};
use crate::varint::{Reader, put_bytes};

const MAGIC: &[u8; 8] = b"EVLCKPT1";
const END_MAGIC: &[u8; 8] = b"EVLCKEND";
const FOOTER_LEN: u64 = 8 + 32 + 8;
/// The checkpoint file format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;
/// The extension of checkpoint files.
pub const CHECKPOINT_EXTENSION: &str = "evlc";

const TAG_RECORD: u8 = b'R';
const TAG_SNAPSHOT: u8 = b'S';
const TAG_CONSUMER: u8 = b'C';
const TAG_MANIFEST: u8 = b'M';

/// What a checkpoint holds, written as its last section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointManifest {
    /// The checkpoint file format.
    pub format: u32,
    /// The store format of the records.
    pub store_format: u32,
    /// When the export started.
    pub created_at: DateTime<Utc>,
    /// Events in the checkpoint (positions 1 to `last_position`).
    pub event_count: u64,
    /// The last log position in the checkpoint.
    pub last_position: u64,
    /// The hash of the last record, hex: the head of the log's hash chain at `last_position`.
    pub chain_head: String,
    /// Log records in the checkpoint.
    pub records: u64,
    /// Snapshots in the checkpoint.
    pub snapshots: u64,
    /// Consumers in the checkpoint.
    pub consumers: u64,
    /// The store the checkpoint was exported from (its path).
    pub source: String,
    /// The id of the store the checkpoint was exported from ([`Store::store_id`]); absent in
    /// checkpoints written before store ids existed (those are told apart by `source`). Pruning
    /// touches only the checkpoints of the store that prunes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
}

impl CheckpointManifest {
    /// Which store wrote the checkpoint: its id, or for a checkpoint written before store ids
    /// existed, its path.
    fn owner(&self) -> Owner<'_> {
        match &self.store_id {
            Some(id) => Owner::Id(id),
            None => Owner::Path(&self.source),
        }
    }
}

/// The identity of a store, as checkpoint manifests name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Owner<'a> {
    Id(&'a str),
    /// A checkpoint from before store ids: the store path it names.
    Path(&'a str),
}

/// A checkpoint file found in a directory.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Its manifest, when it could be read.
    pub manifest: Option<CheckpointManifest>,
    /// Why the manifest could not be read.
    pub problem: Option<String>,
}

/// Progress of a long checkpoint operation: `(done, total)` in events (export, import) or bytes
/// (verify).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn invalid(path: &Path, detail: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a checkpoint's content comes from, for its manifest.
pub(crate) struct Origin {
    /// When the export started.
    pub(crate) created_at: DateTime<Utc>,
    /// The store format the records were taken from.
    pub(crate) store_format: u32,
    /// The store's path.
    pub(crate) source: String,
    /// The store's id, if it has one.
    pub(crate) store_id: Option<String>,
}

/// Writes a checkpoint file's sections while hashing everything written and counting what it
/// holds: [`SectionWriter::create`] writes the magic, [`SectionWriter::finish`] the manifest and
/// footer, and syncs the file.
pub(crate) struct SectionWriter {
    out: BufWriter<File>,
    path: PathBuf,
    hasher: blake3::Hasher,
    written: u64,
    chain_head: Hash,
    last_position: u64,
    records: u64,
    snapshots: u64,
    consumers: u64,
}

impl SectionWriter {
    /// Creates `path` (which must not exist) and writes the magic.
    pub(crate) fn create(path: &Path) -> Result<Self, CheckpointError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_error(path))?;
        let mut out = Self {
            out: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            hasher: blake3::Hasher::new(),
            written: 0,
            chain_head: GENESIS,
            last_position: 0,
            records: 0,
            snapshots: 0,
            consumers: 0,
        };
        out.raw(MAGIC)?;
        Ok(out)
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.out.write_all(bytes).map_err(io_error(&self.path))?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn section(&mut self, tag: u8, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.raw(&[tag])?;
        self.raw(&(bytes.len() as u64).to_be_bytes())?;
        self.raw(bytes)
    }

    /// Writes a log record, byte for byte (the next in the chain: the caller keeps the order).
    pub(crate) fn record(&mut self, record: &Record) -> Result<(), CheckpointError> {
        self.section(TAG_RECORD, record.bytes())?;
        self.chain_head = record_hash(record.bytes());
        self.last_position = record.last_position();
        self.records += 1;
        Ok(())
    }

    fn entry(&mut self, tag: u8, key: &[u8], value: &[u8]) -> Result<(), CheckpointError> {
        let mut bytes = Vec::with_capacity(key.len() + value.len() + 4);
        put_bytes(&mut bytes, key);
        bytes.extend_from_slice(value);
        self.section(tag, &bytes)
    }

    /// Writes the snapshot entry `key`, `value` (decoded: `snapshot`) unless it is beyond
    /// `current`, its aggregate's version in the records the checkpoint holds: such a snapshot,
    /// left by damage or by a crash that lost its events, is left out with a warning.
    pub(crate) fn snapshot(
        &mut self,
        key: &[u8],
        value: &[u8],
        snapshot: &Snapshot,
        current: u64,
    ) -> Result<(), CheckpointError> {
        if snapshot.version > current {
            tracing::warn!(
                name: "event_store_checkpoint_entry_skipped",
                kind = "snapshot",
                aggregate_type = %snapshot.aggregate_type,
                aggregate_id = %snapshot.aggregate_id,
                version = snapshot.version,
                current,
                "snapshot beyond its aggregate's version left out of the checkpoint"
            );
            return Ok(());
        }
        self.entry(TAG_SNAPSHOT, key, value)?;
        self.snapshots += 1;
        Ok(())
    }

    /// Writes the consumer entry `key`, `value` (at `position`) unless it is beyond
    /// `acknowledged`, the last position the checkpoint's records reach. Such a consumer (commits
    /// past the log are refused; damage or a crash can leave one) holds state reflecting events
    /// the checkpoint cannot hold: left out with a warning, it starts from the beginning after an
    /// import, which is correct; clamped, it would be wrong.
    pub(crate) fn consumer(
        &mut self,
        key: &[u8],
        value: &[u8],
        position: u64,
        acknowledged: u64,
    ) -> Result<(), CheckpointError> {
        if position > acknowledged {
            tracing::warn!(
                name: "event_store_checkpoint_entry_skipped",
                kind = "consumer",
                consumer = %String::from_utf8_lossy(key),
                position,
                acknowledged,
                "consumer beyond the log left out of the checkpoint"
            );
            return Ok(());
        }
        self.entry(TAG_CONSUMER, key, value)?;
        self.consumers += 1;
        Ok(())
    }

    /// Writes the manifest of what was written and the footer, and syncs the file.
    pub(crate) fn finish(mut self, origin: Origin) -> Result<CheckpointManifest, CheckpointError> {
        let manifest = CheckpointManifest {
            format: CHECKPOINT_FORMAT,
            store_format: origin.store_format,
            created_at: origin.created_at,
            event_count: self.last_position,
            last_position: self.last_position,
            chain_head: hex(&self.chain_head),
            records: self.records,
            snapshots: self.snapshots,
            consumers: self.consumers,
            source: origin.source,
            store_id: origin.store_id,
        };
        let json = serde_json::to_vec(&manifest)
            .map_err(|e| invalid(&self.path, format!("manifest: {e}")))?;
        let manifest_offset = self.written;
        self.section(TAG_MANIFEST, &json)?;
        let hash = self.hasher.finalize();
        let io = io_error(&self.path);
        let mut writer = self.out;
        writer
            .write_all(&manifest_offset.to_be_bytes())
            .and_then(|()| writer.write_all(hash.as_bytes()))
            .and_then(|()| writer.write_all(END_MAGIC))
            .map_err(&io)?;
        let file = writer.into_inner().map_err(|e| CheckpointError::Io {
            path: self.path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(&io)?;
        Ok(manifest)
    }
}

/// Follows a log's records in order, checking what a checkpoint's records must satisfy:
/// positions from 1 without a gap, each record linked to the one before in the hash chain, each
/// aggregate's versions running 1, 2, 3, ... in log order.
pub(crate) struct LogFollower {
    chain: Hash,
    next_position: u64,
    records: u64,
    /// Every aggregate's version reached (by stream key).
    versions: FxHashMap<Box<[u8]>, u64>,
    stream: Vec<u8>,
}

impl LogFollower {
    pub(crate) fn new() -> Self {
        Self {
            chain: GENESIS,
            next_position: 1,
            records: 0,
            versions: FxHashMap::default(),
            stream: Vec::new(),
        }
    }

    /// Checks `record` (every event decoded) as the next one; the error says what is wrong.
    pub(crate) fn follow(&mut self, record: &Record) -> Result<(), String> {
        // Each aggregate's versions must run 1, 2, 3, ... in log order, as the store assigns
        // them: the first event that breaks the run is reported.
        let mut out_of_order = None;
        let (versions, stream) = (&mut self.versions, &mut self.stream);
        record
            .check_all_visiting(|event| {
                stream.clear();
                StreamKey::write(stream, event.aggregate_type, event.aggregate_id);
                let reached = match versions.get_mut(stream.as_slice()) {
                    Some(version) => std::mem::replace(version, event.version),
                    None => {
                        versions.insert(stream.as_slice().into(), event.version);
                        0
                    }
                };
                if out_of_order.is_none() && reached.checked_add(1) != Some(event.version) {
                    out_of_order = Some(format!(
                        "event at position {} is version {} of {}/{}, which had reached version {reached}",
                        event.position, event.version, event.aggregate_type, event.aggregate_id
                    ));
                }
            })
            .map_err(|e| e.to_string())?;
        if let Some(detail) = out_of_order {
            return Err(detail);
        }
        let next_position = self.next_position;
        if record.first_position() != next_position {
            return Err(format!(
                "starts at position {}, expected {next_position}",
                record.first_position()
            ));
        }
        if *record.prev_hash() != self.chain {
            return Err(format!(
                "hash chain broken at the record for position {next_position}"
            ));
        }
        self.chain = record_hash(record.bytes());
        self.next_position = record.last_position() + 1;
        self.records += 1;
        Ok(())
    }

    /// The version the records reach for an aggregate (by stream key), 0 if none.
    pub(crate) fn version(&self, stream: &[u8]) -> u64 {
        self.versions.get(stream).copied().unwrap_or(0)
    }

    /// The last position of the records followed.
    pub(crate) fn last_position(&self) -> u64 {
        self.next_position - 1
    }
}

fn split_entry(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut reader = Reader::new(bytes);
    let key = reader.bytes("entry key").ok()?;
    Some((key, &bytes[reader.offset()..]))
}

/// The temporary file an export writes before renaming it into place: `.<name>.<pid>.partial`.
fn partial_export_path(parent: &Path, file_name: &str) -> PathBuf {
    parent.join(format!(".{file_name}.{}.partial", std::process::id()))
}

/// The process that wrote a temporary export file, from its name.
fn partial_export_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".partial")?;
    let (_, pid) = rest.rsplit_once('.')?;
    pid.parse().ok()
}

/// Removes the temporary files of exports a crash cut short from `dir`: those whose process no
/// longer runs. Only where `/proc` says which processes run (Linux); elsewhere nothing is removed.
/// Returns how many were removed.
pub(crate) fn remove_abandoned_exports(dir: &Path) -> usize {
    let processes = Path::new("/proc");
    if !processes.join("self").exists() {
        return 0;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(partial_export_pid) else {
            continue;
        };
        let running = pid == std::process::id() || processes.join(pid.to_string()).exists();
        if !running && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn sync_dir(dir: &Path) {
    // Best effort: makes the rename durable on filesystems that need it.
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

impl Shared {
    /// The position an export starting now covers: everything acknowledged so far, made durable
    /// first — a checkpoint must never hold events a crash could still take from the store (in
    /// buffered mode they would then be given other events' positions).
    fn export_position(&self) -> Result<u64, CheckpointError> {
        self.wait_written()
            .and_then(|_| self.flush_sled())
            .map_err(|reason| CheckpointError::NotWriting { reason })
    }

    /// Exports a checkpoint: written under a temporary name next to `provisional`, then renamed
    /// to `destination(last position)`, which must be in the same directory.
    pub(crate) fn export_checkpoint(
        &self,
        provisional: &Path,
        destination: impl FnOnce(u64) -> PathBuf,
        progress: Option<Progress<'_>>,
    ) -> Result<(PathBuf, CheckpointManifest), CheckpointError> {
        let started = Instant::now();
        let created_at = Utc::now();
        let parent = provisional
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_error(parent))?;
        let file_name = provisional
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "checkpoint".into());
        let temporary = partial_export_path(parent, &file_name);
        let result = self.write_checkpoint(&temporary, created_at, progress);
        let manifest = match result {
            Ok(manifest) => manifest,
            Err(e) => {
                let _ = fs::remove_file(&temporary);
                return Err(e);
            }
        };
        let position = manifest.last_position;
        let path = destination(position);
        if let Err(source) = fs::rename(&temporary, &path) {
            let _ = fs::remove_file(&temporary);
            return Err(CheckpointError::Io { path, source });
        }
        sync_dir(parent);
        let counters = &self.counters;
        counters.checkpoints_created.fetch_add(1, Ordering::Relaxed);
        counters
            .last_checkpoint_micros
            .store(created_at.timestamp_micros(), Ordering::Relaxed);
        counters
            .checkpoint_position
            .store(position, Ordering::Relaxed);
        counters.bytes_since_checkpoint.store(0, Ordering::Relaxed);
        tracing::info!(
            name: "event_store_checkpoint_created",
            path = %path.display(),
            last_position = manifest.last_position,
            records = manifest.records,
            snapshots = manifest.snapshots,
            consumers = manifest.consumers,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "checkpoint created"
        );
        Ok((path, manifest))
    }

    /// Writes the checkpoint file. Snapshots and consumers are copied *before* the export
    /// position is chosen, each only if the log acknowledged when it is read covers it; the
    /// position, chosen next, covers everything acknowledged by then, so no snapshot or consumer
    /// in the file runs ahead of its records. (A snapshot is saved, and a consumer committed,
    /// only once the events it reflects are written; read the other way round, a projection
    /// committing during the export would land in the file with a state folded past its records.)
    fn write_checkpoint(
        &self,
        temporary: &Path,
        created_at: DateTime<Utc>,
        mut progress: Option<Progress<'_>>,
    ) -> Result<CheckpointManifest, CheckpointError> {
        let mut out = SectionWriter::create(temporary)?;
        for entry in self.snapshots.iter() {
            let (key, value) = entry.map_err(crate::error::ReadError::from)?;
            let snapshot = decode_snapshot(&key, &value).map_err(|e| {
                CheckpointError::Read(crate::state::corrupted(format!(
                    "snapshot {}: {e}",
                    crate::index::show_key(&key)
                )))
            })?;
            // Against every sequenced event, as the consumers below: the export position, chosen
            // after, covers them all.
            let current = self.stream_version(
                &snapshot.aggregate_type,
                &snapshot.aggregate_id,
                Scope::Sequenced,
            )?;
            out.snapshot(&key, &value, &snapshot, current)?;
        }
        for entry in self.consumers.iter() {
            let (key, value) = entry.map_err(crate::error::ReadError::from)?;
            let consumer = decode_consumer(&value).map_err(|detail| {
                CheckpointError::Read(crate::state::corrupted(format!(
                    "consumer `{}`: {detail}",
                    String::from_utf8_lossy(&key)
                )))
            })?;
            let acknowledged = self.scope_end(&lock(&self.state), Scope::Sequenced);
            out.consumer(&key, &value, consumer.position, acknowledged)?;
        }
        let position = self.export_position()?;
        if position > 0 {
            let reader = self
                .segments
                .reader(1)
                .map_err(crate::error::ReadError::from)?;
            for frame in reader {
                let frame = frame.map_err(crate::error::ReadError::from)?;
                if frame.first_position > position {
                    break;
                }
                let record = crate::read::parse_frame(frame)?;
                if record.last_position() > position {
                    break;
                }
                out.record(&record)?;
                if let Some(progress) = progress.as_mut() {
                    progress(record.last_position(), position);
                }
            }
        }
        out.finish(Origin {
            created_at,
            store_format: STORE_FORMAT,
            source: self.config.path.display().to_string(),
            store_id: Some(self.store_id.clone()),
        })
    }
}

/// Reads sections while hashing everything read.
struct SectionReader<R: Read> {
    input: R,
    hasher: blake3::Hasher,
    offset: u64,
    end: u64,
}

impl<R: Read> SectionReader<R> {
    fn exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.input.read_exact(buf)?;
        self.hasher.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// The next section, or `None` at the footer.
    fn section(&mut self, path: &Path) -> Result<Option<(u8, u64, Vec<u8>)>, CheckpointError> {
        if self.offset >= self.end {
            return Ok(None);
        }
        let at = self.offset;
        if self.end - self.offset < 9 {
            return Err(invalid(
                path,
                format!("truncated section header at byte {at}"),
            ));
        }
        let mut header = [0_u8; 9];
        self.exact(&mut header).map_err(io_error(path))?;
        let mut len_bytes = [0_u8; 8];
        len_bytes.copy_from_slice(&header[1..]);
        let len = u64::from_be_bytes(len_bytes);
        if len > self.end - self.offset {
            return Err(invalid(
                path,
                format!("section at byte {at} claims {len} bytes, more than the file holds"),
            ));
        }
        let mut bytes = vec![0_u8; usize::try_from(len).unwrap_or(usize::MAX)];
        self.exact(&mut bytes).map_err(io_error(path))?;
        Ok(Some((header[0], at, bytes)))
    }
}

/// Reads the footer: the manifest's offset and the file's hash.
fn read_footer(
    file: &mut File,
    path: &Path,
    size: u64,
) -> Result<(u64, [u8; 32]), CheckpointError> {
    if size < MAGIC.len() as u64 + FOOTER_LEN {
        return Err(invalid(
            path,
            format!("{size} bytes is too short for a checkpoint"),
        ));
    }
    file.seek(SeekFrom::Start(size - FOOTER_LEN))
        .map_err(io_error(path))?;
    let mut footer = [0_u8; FOOTER_LEN as usize];
    file.read_exact(&mut footer).map_err(io_error(path))?;
    if &footer[40..] != END_MAGIC {
        return Err(invalid(
            path,
            "the end marker is missing: the file is truncated or not a checkpoint",
        ));
    }
    let mut offset = [0_u8; 8];
    offset.copy_from_slice(&footer[..8]);
    let mut hash = [0_u8; 32];
    hash.copy_from_slice(&footer[8..40]);
    Ok((u64::from_be_bytes(offset), hash))
}

/// Reads only the manifest (for listing), checking the footer but not the content.
///
/// # Errors
///
/// [`CheckpointError::Io`]; [`CheckpointError::Invalid`] when the footer or manifest is damaged.
pub fn read_manifest(path: &Path) -> Result<CheckpointManifest, CheckpointError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let size = file.metadata().map_err(io_error(path))?.len();
    let (offset, _) = read_footer(&mut file, path, size)?;
    let content_end = size - FOOTER_LEN;
    // The offset is untrusted: compare without adding to it.
    if offset < MAGIC.len() as u64 || offset > content_end.saturating_sub(9) {
        return Err(invalid(
            path,
            format!("manifest offset {offset} is outside the file"),
        ));
    }
    file.seek(SeekFrom::Start(offset)).map_err(io_error(path))?;
    let mut header = [0_u8; 9];
    file.read_exact(&mut header).map_err(io_error(path))?;
    let mut len = [0_u8; 8];
    len.copy_from_slice(&header[1..]);
    let len = u64::from_be_bytes(len);
    if header[0] != TAG_MANIFEST || Some(content_end) != (offset + 9).checked_add(len) {
        return Err(invalid(path, "the manifest section is damaged"));
    }
    let mut json = vec![0_u8; usize::try_from(len).unwrap_or(usize::MAX)];
    file.read_exact(&mut json).map_err(io_error(path))?;
    serde_json::from_slice(&json).map_err(|e| invalid(path, format!("manifest: {e}")))
}

/// What a full pass over a checkpoint file found.
struct Scanned {
    manifest: CheckpointManifest,
}

/// Reads the whole file, checking everything; `visit` sees each verified section.
fn scan(
    path: &Path,
    mut visit: impl FnMut(u8, &[u8]) -> Result<(), CheckpointError>,
    mut progress: Option<Progress<'_>>,
) -> Result<Scanned, CheckpointError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let size = file.metadata().map_err(io_error(path))?.len();
    let (manifest_offset, expected_hash) = read_footer(&mut file, path, size)?;
    file.seek(SeekFrom::Start(0)).map_err(io_error(path))?;
    let mut reader = SectionReader {
        input: BufReader::with_capacity(1 << 20, file),
        hasher: blake3::Hasher::new(),
        offset: 0,
        end: size - FOOTER_LEN,
    };
    let mut magic = [0_u8; 8];
    reader.exact(&mut magic).map_err(io_error(path))?;
    if &magic != MAGIC {
        return Err(invalid(path, "not a checkpoint file (bad magic)"));
    }
    let mut follower = LogFollower::new();
    let (mut snapshots, mut consumers) = (0_u64, 0_u64);
    let mut manifest = None;
    // The snapshots' and consumers' claims, checked against the records once every section is
    // read (sections may come in any order).
    let mut snapshot_claims: Vec<(Box<[u8]>, u64, u64)> = Vec::new();
    let mut consumer_claims: Vec<(String, u64, u64)> = Vec::new();
    while let Some((tag, at, bytes)) = reader.section(path)? {
        if manifest.is_some() {
            return Err(invalid(
                path,
                format!("section at byte {at} follows the manifest"),
            ));
        }
        match tag {
            TAG_RECORD => {
                let record = Record::parse(bytes::Bytes::copy_from_slice(bytes.as_slice()))
                    .map_err(|e| invalid(path, format!("record at byte {at}: {e}")))?;
                follower
                    .follow(&record)
                    .map_err(|detail| invalid(path, format!("record at byte {at}: {detail}")))?;
            }
            TAG_SNAPSHOT => {
                let (key, value) = split_entry(&bytes).ok_or_else(|| {
                    invalid(path, format!("snapshot entry at byte {at} is truncated"))
                })?;
                let snapshot = decode_snapshot(key, value)
                    .map_err(|e| invalid(path, format!("snapshot at byte {at}: {e}")))?;
                let stream = StreamKey::new(&snapshot.aggregate_type, &snapshot.aggregate_id);
                snapshot_claims.push((stream.as_bytes().into(), snapshot.version, at));
                snapshots += 1;
            }
            TAG_CONSUMER => {
                let (name, value) = split_entry(&bytes).ok_or_else(|| {
                    invalid(path, format!("consumer entry at byte {at} is truncated"))
                })?;
                let consumer = decode_consumer(value)
                    .map_err(|e| invalid(path, format!("consumer at byte {at}: {e}")))?;
                let name = String::from_utf8_lossy(name).into_owned();
                consumer_claims.push((name, consumer.position, at));
                consumers += 1;
            }
            TAG_MANIFEST => {
                if at != manifest_offset {
                    return Err(invalid(path, "the footer points at another manifest"));
                }
                let parsed: CheckpointManifest = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(path, format!("manifest: {e}")))?;
                manifest = Some(parsed);
                continue;
            }
            other => {
                return Err(invalid(
                    path,
                    format!("unknown section tag {other:#04x} at byte {at}"),
                ));
            }
        }
        visit(tag, &bytes)?;
        if let Some(progress) = progress.as_mut() {
            progress(reader.offset, reader.end);
        }
    }
    let hash = reader.hasher.finalize();
    if hash.as_bytes() != &expected_hash {
        return Err(invalid(
            path,
            "the file's hash does not match its footer: the content was altered",
        ));
    }
    let manifest = manifest.ok_or_else(|| invalid(path, "the manifest is missing"))?;
    let last = follower.last_position();
    // A snapshot or consumer ahead of the records holds state folded from events the checkpoint
    // does not have: restored, it would be silently wrong.
    for (stream, version, at) in &snapshot_claims {
        let reached = follower.version(stream);
        if *version > reached {
            return Err(invalid(
                path,
                format!(
                    "the snapshot of `{}` at version {version} (byte {at}) is beyond the \
                     aggregate's version in the records, {reached}",
                    StreamKey::label_of(stream)
                ),
            ));
        }
    }
    for (name, position, at) in &consumer_claims {
        if *position > last {
            return Err(invalid(
                path,
                format!(
                    "consumer `{name}` at position {position} (byte {at}) is beyond the \
                     records' last position, {last}"
                ),
            ));
        }
    }
    let checks = [
        (manifest.format == CHECKPOINT_FORMAT, "format"),
        (manifest.last_position == last, "last position"),
        (manifest.event_count == last, "event count"),
        (manifest.chain_head == hex(&follower.chain), "chain head"),
        (manifest.records == follower.records, "record count"),
        (manifest.snapshots == snapshots, "snapshot count"),
        (manifest.consumers == consumers, "consumer count"),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(invalid(
            path,
            format!("the manifest's {what} does not match the content"),
        ));
    }
    if manifest.store_format > STORE_FORMAT {
        return Err(invalid(
            path,
            format!(
                "store format {} is newer than this build's {STORE_FORMAT}",
                manifest.store_format
            ),
        ));
    }
    Ok(Scanned { manifest })
}

/// Verifies a checkpoint file completely: its hash, every record and the chain, that no snapshot
/// is beyond its aggregate's version in the records and no consumer beyond their last position,
/// the manifest.
///
/// # Errors
///
/// [`CheckpointError::Invalid`] naming what is wrong and where (a snapshot or consumer ahead of
/// the records included); [`CheckpointError::Io`].
pub fn verify_checkpoint(path: &Path) -> Result<CheckpointManifest, CheckpointError> {
    verify_checkpoint_with(path, None)
}

/// [`verify_checkpoint`] reporting progress in bytes.
///
/// # Errors
///
/// As [`verify_checkpoint`].
pub fn verify_checkpoint_with(
    path: &Path,
    progress: Option<Progress<'_>>,
) -> Result<CheckpointManifest, CheckpointError> {
    Ok(scan(path, |_, _| Ok(()), progress)?.manifest)
}

/// Restores a checkpoint into a new store at `into` (which must not exist or be empty), after
/// verifying it. The restored store is closed again; open it with [`Store::open`].
///
/// # Errors
///
/// As [`verify_checkpoint`]; [`CheckpointError::TargetNotEmpty`]; [`CheckpointError::Open`] or
/// [`CheckpointError::Store`] when writing the new store fails.
pub fn import_checkpoint(
    path: &Path,
    into: &Path,
    progress: Option<Progress<'_>>,
) -> Result<CheckpointManifest, CheckpointError> {
    let manifest = verify_checkpoint(path)?;
    if into.exists() {
        let mut entries = fs::read_dir(into).map_err(io_error(into))?;
        if entries.next().is_some() {
            return Err(CheckpointError::TargetNotEmpty {
                path: into.to_path_buf(),
            });
        }
    }
    let config = StoreConfig::new(into);
    let data = crate::store::data_dir(into);
    fs::create_dir_all(&data).map_err(io_error(&data))?;
    {
        let db = open_sled(&config, &data)?;
        let open_tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| CheckpointError::Store(crate::error::StoreError::Storage(e)))
        };
        let log = open_tree("log")?;
        let snapshots = open_tree("snapshots")?;
        let consumers = open_tree("consumers")?;
        log.insert(FORMAT_KEY, &STORE_FORMAT.to_be_bytes())
            .map_err(crate::error::StoreError::Storage)?;
        let store_id = uuid::Uuid::new_v4();
        log.insert(STORE_ID_KEY, store_id.as_bytes().as_slice())
            .map_err(crate::error::StoreError::Storage)?;
        let (segments, _) = crate::recovery::open_segments(&config, store_id, 0)?;
        let total = manifest.last_position;
        let mut progress = progress;
        let mut write_error = None;
        scan(
            path,
            |tag, bytes| {
                match tag {
                    TAG_RECORD => {
                        let record = Record::parse(bytes::Bytes::copy_from_slice(bytes))
                            .map_err(|e| invalid(path, e.to_string()))?;
                        let count = record.last_position() - record.first_position() + 1;
                        let appended = u32::try_from(count)
                            .map_err(|_| invalid(path, format!("a record of {count} events")))
                            .and_then(|count| {
                                segments
                                    .append(record.first_position(), count, bytes)
                                    .map_err(|e| CheckpointError::Read(e.into()))
                            });
                        appended?;
                        if let Some(progress) = progress.as_mut() {
                            progress(record.last_position(), total);
                        }
                    }
                    TAG_SNAPSHOT | TAG_CONSUMER => {
                        if let Some((key, value)) = split_entry(bytes) {
                            let tree = if tag == TAG_SNAPSHOT {
                                &snapshots
                            } else {
                                &consumers
                            };
                            if let Err(e) = tree.insert(key, value) {
                                write_error = Some(e);
                            }
                        }
                    }
                    _ => {}
                }
                match write_error.take() {
                    Some(e) => Err(CheckpointError::Store(crate::error::StoreError::Storage(e))),
                    None => Ok(()),
                }
            },
            None,
        )?;
        // The imported log is durable before the store is opened: nothing acknowledged by the
        // import can be lost to a power loss afterwards.
        segments
            .sync()
            .map_err(|e| CheckpointError::Read(e.into()))?;
        db.flush().map_err(crate::error::StoreError::Storage)?;
        fs::File::open(data.join("db"))
            .and_then(|file| file.sync_all())
            .map_err(io_error(&data))?;
    }
    crate::store::wait_unlocked(&data);
    // Opening replays the log into the indexes; closing persists them.
    let store = Store::open(config)?;
    store.close()?;
    tracing::info!(
        name: "event_store_checkpoint_imported",
        from = %path.display(),
        into = %into.display(),
        last_position = manifest.last_position,
        "checkpoint imported"
    );
    Ok(manifest)
}

/// The checkpoint files in `dir`, oldest first (by manifest time; unreadable ones last).
///
/// # Errors
///
/// [`CheckpointError::Io`] when the directory cannot be read.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<CheckpointInfo>, CheckpointError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(CHECKPOINT_EXTENSION) {
            continue;
        }
        let size_bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let (manifest, problem) = match read_manifest(&path) {
            Ok(manifest) => (Some(manifest), None),
            Err(e) => (None, Some(e.to_string())),
        };
        out.push(CheckpointInfo {
            path,
            size_bytes,
            manifest,
            problem,
        });
    }
    out.sort_by(|a, b| {
        let key = |i: &CheckpointInfo| i.manifest.as_ref().map(|m| m.created_at);
        match (key(a), key(b)) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.path.cmp(&b.path)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.path.cmp(&b.path),
        }
    });
    Ok(out)
}

/// Deletes the checkpoints in `dir` created more than `days` days ago, except each store's newest
/// checkpoint that passes full verification ([`verify_checkpoint`]), however old; returns what was
/// deleted, oldest first. Stores are told apart by the store id in the manifest (or, for
/// checkpoints written before store ids existed, the store path it names); to prune only one
/// store's checkpoints, use [`Store::prune_checkpoints`]. Files whose manifest cannot be read are
/// left alone. `days` = 0 keeps only each store's newest verified checkpoint.
///
/// # Errors
///
/// [`CheckpointError::Io`] when the directory cannot be read or a file cannot be deleted.
pub fn prune_checkpoints(dir: &Path, days: u32) -> Result<Vec<PathBuf>, CheckpointError> {
    prune(dir, days, None)
}

/// The one pruning rule: in `dir`, the checkpoints created more than `days` days ago go, except
/// each store's newest checkpoint that verifies. With `only`, just that store's checkpoints are
/// touched (by its id, or by its path for those written before it had one), as one store.
fn prune(
    dir: &Path,
    days: u32,
    only: Option<[Owner<'_>; 2]>,
) -> Result<Vec<PathBuf>, CheckpointError> {
    // An age reaching before the earliest representable time leaves nothing old enough.
    let Some(cutoff) = chrono::TimeDelta::try_days(i64::from(days))
        .and_then(|age| Utc::now().checked_sub_signed(age))
    else {
        return Ok(Vec::new());
    };
    let listed = list_checkpoints(dir)?;
    // The checkpoints pruning may touch, oldest first (as listed), each with its store.
    let candidates: Vec<(Owner<'_>, &CheckpointInfo, DateTime<Utc>)> = listed
        .iter()
        .filter_map(|info| {
            let manifest = info.manifest.as_ref()?;
            let owner = match only {
                None => manifest.owner(),
                Some(only) if only.contains(&manifest.owner()) => only[0],
                Some(_) => return None,
            };
            Some((owner, info, manifest.created_at))
        })
        .collect();
    // Each store with something old enough keeps its newest checkpoint that verifies.
    let mut kept: Vec<(Owner<'_>, Option<&PathBuf>)> = Vec::new();
    for (owner, _, created_at) in &candidates {
        if *created_at < cutoff && !kept.iter().any(|(o, _)| o == owner) {
            let newest_verified = candidates
                .iter()
                .rev()
                .filter(|(o, _, _)| o == owner)
                .map(|(_, info, _)| &info.path)
                .find(|path| verify_checkpoint(path).is_ok());
            if newest_verified.is_none() {
                tracing::warn!(
                    name: "event_store_no_verified_checkpoint",
                    dir = %dir.display(),
                    "no checkpoint of a store in the directory passes verification"
                );
            }
            kept.push((*owner, newest_verified));
        }
    }
    let mut removed = Vec::new();
    for (owner, info, created_at) in &candidates {
        let keep = kept
            .iter()
            .any(|(o, path)| o == owner && *path == Some(&info.path));
        if *created_at < cutoff && !keep {
            fs::remove_file(&info.path).map_err(io_error(&info.path))?;
            removed.push(info.path.clone());
        }
    }
    if !removed.is_empty() {
        tracing::info!(
            name: "event_store_checkpoints_pruned",
            dir = %dir.display(),
            removed = removed.len(),
            days,
            "old checkpoints deleted"
        );
    }
    Ok(removed)
}

/// The file name of a checkpoint taken at `time` up to `position` (without it: the name its
/// temporary file is derived from, before the position is known).
fn checkpoint_name(time: DateTime<Utc>, position: Option<u64>) -> String {
    let time = time.format("%Y%m%dT%H%M%S%.3fZ");
    match position {
        Some(position) => format!("checkpoint-{time}-{position:012}.{CHECKPOINT_EXTENSION}"),
        None => format!("checkpoint-{time}.{CHECKPOINT_EXTENSION}"),
    }
}

impl Store {
    /// Exports a checkpoint of the whole store to `path`, consistent at the log position
    /// acknowledged when the export starts, while appends continue. Snapshots and consumers are
    /// those committed when the export starts; none is ahead of the records (one beyond the log,
    /// which only a crash in buffered mode or a commit past the log's end leaves, is left out).
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Io`] when the file cannot be written; [`CheckpointError::Read`] when the
    /// store cannot be read or a snapshot or consumer does not decode.
    pub fn export_checkpoint(&self, path: &Path) -> Result<CheckpointManifest, CheckpointError> {
        self.shared
            .export_checkpoint(path, |_| path.to_path_buf(), None)
            .map(|(_, manifest)| manifest)
    }

    /// [`Store::export_checkpoint`] reporting progress in events.
    ///
    /// # Errors
    ///
    /// As [`Store::export_checkpoint`].
    pub fn export_checkpoint_with(
        &self,
        path: &Path,
        progress: Progress<'_>,
    ) -> Result<CheckpointManifest, CheckpointError> {
        self.shared
            .export_checkpoint(path, |_| path.to_path_buf(), Some(progress))
            .map(|(_, manifest)| manifest)
    }

    /// Exports a checkpoint into the configured checkpoint directory, named by time and position.
    ///
    /// # Errors
    ///
    /// As [`Store::export_checkpoint`].
    pub fn checkpoint(&self) -> Result<(PathBuf, CheckpointManifest), CheckpointError> {
        self.shared.checkpoint_now()
    }

    /// The checkpoints in the configured checkpoint directory, oldest first.
    ///
    /// # Errors
    ///
    /// As [`list_checkpoints`].
    pub fn list_checkpoints(&self) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        list_checkpoints(&self.shared.config.checkpoint_dir())
    }

    /// Deletes this store's checkpoints in the configured directory created more than `days` days
    /// ago, except its newest checkpoint that passes full verification, however old; returns
    /// what was deleted, oldest first. Only files whose manifest names this store
    /// ([`Store::store_id`], or for checkpoints written before store ids existed, this store's
    /// path) are touched: other stores sharing the directory keep theirs. `days` = 0 keeps only
    /// the newest verified checkpoint.
    ///
    /// # Errors
    ///
    /// As [`prune_checkpoints`].
    pub fn prune_checkpoints(&self, days: u32) -> Result<Vec<PathBuf>, CheckpointError> {
        self.shared.prune_checkpoints(days)
    }
}

impl Shared {
    fn prune_checkpoints(&self, days: u32) -> Result<Vec<PathBuf>, CheckpointError> {
        let source = self.config.path.display().to_string();
        // This store's checkpoints, and those it wrote before it had an id.
        let mine = [Owner::Id(&self.store_id), Owner::Path(&source)];
        prune(&self.config.checkpoint_dir(), days, Some(mine))
    }

    fn checkpoint_now(&self) -> Result<(PathBuf, CheckpointManifest), CheckpointError> {
        let dir = self.config.checkpoint_dir();
        let now = Utc::now();
        let provisional = dir.join(checkpoint_name(now, None));
        self.export_checkpoint(
            &provisional,
            |position| dir.join(checkpoint_name(now, Some(position))),
            None,
        )
    }

    fn checkpoint_due(&self) -> bool {
        let policy = &self.config.checkpoints;
        let counters = &self.counters;
        let written = self.written_upto.load(Ordering::Acquire);
        let by_events = policy.every_events.is_some_and(|every| {
            written.saturating_sub(counters.checkpoint_position.load(Ordering::Relaxed)) >= every
        });
        let by_bytes = policy
            .every_bytes
            .is_some_and(|every| counters.bytes_since_checkpoint.load(Ordering::Relaxed) >= every);
        by_events || by_bytes
    }
}

/// Starts the thread that exports checkpoints when the store grows past the configured
/// thresholds, if any are configured.
pub(crate) fn start_automatic(shared: &Arc<Shared>) -> std::io::Result<()> {
    let policy = &shared.config.checkpoints;
    if policy.every_events.is_none() && policy.every_bytes.is_none() {
        return Ok(());
    }
    let shared_for_thread = Arc::clone(shared);
    let handle = std::thread::Builder::new()
        .name("eventlog-checkpointer".into())
        .spawn(move || run_automatic(&shared_for_thread))?;
    *lock(&shared.checkpointer) = Some(handle);
    Ok(())
}

fn run_automatic(shared: &Shared) {
    loop {
        {
            let mut state = lock(&shared.state);
            loop {
                if state.closing || state.failed.is_some() {
                    return;
                }
                if shared.checkpoint_due() {
                    break;
                }
                state = shared
                    .checkpoint_wake
                    .wait_timeout(state, Duration::from_secs(1))
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
        }
        match shared.checkpoint_now() {
            Ok((path, _)) => {
                if let Some(days) = shared.config.checkpoints.keep_days
                    && let Err(e) = shared.prune_checkpoints(days)
                {
                    tracing::warn!(name: "event_store_checkpoint_prune_failed", error = %e, "pruning checkpoints failed");
                }
                tracing::debug!(name: "event_store_automatic_checkpoint", path = %path.display(), "automatic checkpoint");
            }
            Err(e) => {
                tracing::error!(name: "event_store_checkpoint_failed", error = %e, "automatic checkpoint failed");
                // Do not spin on a persistent failure.
                std::thread::sleep(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{partial_export_path, partial_export_pid};
    use std::path::Path;

    #[test]
    fn a_temporary_export_names_its_process() {
        let path = partial_export_path(Path::new("/x"), "checkpoint-00000042.evlc");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert_eq!(partial_export_pid(name), Some(std::process::id()));
    }

    #[test]
    fn other_files_name_no_process() {
        for name in [
            "checkpoint-00000042.evlc",
            ".checkpoint.evlc.partial",
            ".checkpoint.evlc.12a.partial",
            "checkpoint.evlc.12.partial",
            ".checkpoint.evlc.12.partial.bak",
        ] {
            assert_eq!(partial_export_pid(name), None, "{name}");
        }
    }
}
