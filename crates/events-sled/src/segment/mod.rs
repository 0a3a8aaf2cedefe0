//! The global log in append-only segment files (see docs/design.md, "Segment files").
//!
//! A directory of segment files `seg-{first_position:020}.evl`, each a 64-byte header and then
//! frames (one log record each), preallocated to [`SegmentOptions::segment_bytes`]. The last
//! segment is the active one, appended to; the others are sealed: trimmed to their data, synced,
//! and described by an index file `seg-{first_position:020}.idx` (a sparse index of frame
//! offsets), never written again. Byte layouts: [`layout`]. Opening (recovery): `recover.rs`.
//!
//! Concurrency: one writer (a `Mutex`) appends frames to the active file and then publishes
//! the new end offset in the segment table (an `RwLock`); readers read only below the published
//! end, from their own clones of the files, so they never see a frame half-written.

mod cursor;
pub(crate) mod layout;
mod read_only;
mod recover;
pub(crate) use recover::log_store_id;
pub(crate) mod vfs;

pub(crate) use read_only::ReadOnlySegmentLog;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use cursor::{FrameCursor, check_header, corrupt_at};
use layout::{FRAME_HEADER_LEN, HEADER_LEN, MAX_RECORD_LEN, SegmentHeader, SegmentIndex};
use vfs::{Dir, VfsFile};

/// Bytes a [`SegmentReader`] reads ahead at a time.
const READ_AHEAD: u64 = 1 << 20;
/// Bytes [`SegmentLog::record_at`] reads at a time.
const POINT_READ_WINDOW: u64 = 128 << 10;
/// Records [`SegmentLog::record_at`] returns below this size are copied out of the read window
/// (so a cached record does not keep a whole window alive).
const POINT_READ_COPY_BELOW: usize = 32 << 10;
/// The writer keeps its frame buffer between appends up to this capacity.
const KEEP_BUFFER: usize = 4 << 20;

/// How the segment log lays out its files.
#[derive(Debug, Clone)]
pub(crate) struct SegmentOptions {
    /// Preallocated size of a segment (a record larger than that gets a segment of its own).
    pub(crate) segment_bytes: u64,
    /// Written in every segment header; a segment of another store is refused.
    pub(crate) store_id: [u8; 16],
    /// Sparse index granularity: an index entry at least every this many bytes.
    pub(crate) index_every_bytes: u64,
    /// Bytes the writer keeps written with zeros ahead of the data in the active segment (0:
    /// none). A preallocated block read as zeros is still "unwritten" to the filesystem; the
    /// first sync of data in it also commits its conversion in the filesystem's journal, and
    /// writing zeros ahead does that once per chunk instead of once per sync (ext4 here: a
    /// 23 KB append's `fdatasync` median 200 µs instead of 300 µs). It doubles the bytes
    /// written, so the store turns it on for durable appends only.
    pub(crate) zero_ahead_bytes: u64,
    /// A position the log must reach on open: the last one a flush synced (sled's `M synced`).
    /// A log whose intact frames end before it lost acknowledged events; opening refuses it
    /// before it cuts, removes or creates anything, so the damaged files stay as they were.
    pub(crate) must_hold: u64,
}

impl SegmentOptions {
    /// The default segment size, 64 MiB.
    pub(crate) const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
    /// The default sparse index granularity, 16 KiB.
    pub(crate) const DEFAULT_INDEX_EVERY_BYTES: u64 = 16 << 10;
    /// The zeroed run ahead of the data for durable appends, 1 MiB: a 1 MiB write costs one sync
    /// ~1.3 ms once per MiB and saves ~0.1 ms on every other (BENCHMARKS.md).
    pub(crate) const DURABLE_ZERO_AHEAD_BYTES: u64 = 1 << 20;
    /// The smallest segment size accepted.
    pub(crate) const MIN_SEGMENT_BYTES: u64 = HEADER_LEN + FRAME_HEADER_LEN + 1;

    /// The defaults for the store `store_id`.
    pub(crate) fn new(store_id: [u8; 16]) -> Self {
        Self {
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            store_id,
            index_every_bytes: Self::DEFAULT_INDEX_EVERY_BYTES,
            zero_ahead_bytes: 0,
            must_hold: 0,
        }
    }
}

/// What went wrong in the segment log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SegmentError {
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Damage that recovery must not paper over (a sealed segment, a gap, a bad published frame).
    #[error("segment log corrupted: {detail}")]
    Corrupted { detail: String },
    /// A position that is not in the log (0, or beyond its end).
    #[error("position {position} is not in the segment log (last position {last_position})")]
    NotFound { position: u64, last_position: u64 },
    /// An append that does not continue the log or cannot be framed.
    #[error("append refused: {detail}")]
    InvalidAppend { detail: String },
    /// Options the log cannot work with.
    #[error("invalid segment log options: {detail}")]
    InvalidOptions { detail: String },
    /// An earlier write, sync or roll failed; what is on disk is unknown until the log is reopened.
    #[error("segment log unusable after an earlier failure ({detail}); reopen it")]
    Unusable { detail: String },
}

impl SegmentError {
    fn corrupted(detail: impl Into<String>) -> Self {
        Self::Corrupted {
            detail: detail.into(),
        }
    }
}

/// The error of a [`Dir`] operation on `name` (`""`: the directory itself).
fn io_error(dir: &dyn Dir, name: &str) -> impl FnOnce(std::io::Error) -> SegmentError {
    let path = if name.is_empty() {
        dir.path().to_path_buf()
    } else {
        dir.path().join(name)
    };
    move |source| SegmentError::Io { path, source }
}

/// What opening the log found at its tail.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recovered {
    /// The last position in the log; 0 when it is empty.
    pub(crate) last_position: u64,
    /// The last intact record's bytes.
    pub(crate) last_record: Option<Bytes>,
    /// Bytes of torn tail cut off (from the cut point to the last non-zero byte); 0 on a clean log.
    pub(crate) cut_bytes: u64,
    /// How many frame headers looked started in the cut tail (best effort).
    pub(crate) cut_frames: u64,
}

/// One record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) first_position: u64,
    pub(crate) event_count: u32,
    pub(crate) record: Bytes,
}

/// One segment file as readers see it.
#[derive(Debug)]
struct SegmentInfo {
    first_position: u64,
    name: String,
    /// The file's path, for error messages.
    path: Arc<Path>,
    file: Arc<dyn VfsFile>,
    /// Sparse index: (first_position, offset) of frames, the segment's first frame first.
    entries: Vec<(u64, u64)>,
    /// The last position in the segment; `first_position - 1` while it is empty.
    last_position: u64,
    /// The offset after the last published frame.
    data_end: u64,
}

/// What the writer and the readers share.
#[derive(Debug)]
struct Shared {
    dir: Arc<dyn Dir>,
    options: SegmentOptions,
    /// The segments, oldest first; the last is the active one.
    table: RwLock<Vec<SegmentInfo>>,
    last_position: AtomicU64,
    synced_position: AtomicU64,
}

/// Where a read starts: a frame boundary at or before the wanted position.
struct Located {
    seg_index: usize,
    file: Arc<dyn VfsFile>,
    path: Arc<Path>,
    offset: u64,
    /// The first position of the frame at `offset`.
    expected: u64,
    data_end: u64,
    /// Where the frames that can hold the located position end: the next index entry's frame
    /// (whose first position is past it), or `data_end`. A point read needs no byte beyond it.
    span_end: u64,
}

impl Shared {
    fn table(&self) -> RwLockReadGuard<'_, Vec<SegmentInfo>> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn table_mut(&self) -> RwLockWriteGuard<'_, Vec<SegmentInfo>> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, name: &str) -> Arc<Path> {
        Arc::from(self.dir.path().join(name))
    }

    fn not_found(&self, position: u64) -> SegmentError {
        SegmentError::NotFound {
            position,
            last_position: self.last_position.load(Ordering::Acquire),
        }
    }

    /// The indexed frame at or before `position`; with `allow_end`, `last_position + 1` is
    /// located at the end of the active segment.
    fn locate(&self, position: u64, allow_end: bool) -> Result<Located, SegmentError> {
        if position == 0 {
            return Err(self.not_found(position));
        }
        let table = self.table();
        let seg_index = table
            .partition_point(|s| s.first_position <= position)
            .checked_sub(1)
            .ok_or_else(|| self.not_found(position))?;
        let Some(seg) = table.get(seg_index) else {
            return Err(self.not_found(position));
        };
        let (offset, expected, span_end) = if position <= seg.last_position {
            let next = seg.entries.partition_point(|e| e.0 <= position);
            let entry = next
                .checked_sub(1)
                .and_then(|i| seg.entries.get(i))
                .ok_or_else(|| {
                    SegmentError::corrupted(format!(
                        "{}: no index entry at or before position {position}",
                        seg.name
                    ))
                })?;
            let span_end = seg
                .entries
                .get(next)
                .map_or(seg.data_end, |e| e.1.min(seg.data_end));
            (entry.1, entry.0, span_end)
        } else if allow_end
            && seg_index + 1 == table.len()
            && Some(position) == seg.last_position.checked_add(1)
        {
            (seg.data_end, position, seg.data_end)
        } else {
            return Err(self.not_found(position));
        };
        Ok(Located {
            seg_index,
            file: Arc::clone(&seg.file),
            path: Arc::clone(&seg.path),
            offset,
            expected,
            data_end: seg.data_end,
            span_end,
        })
    }

    /// The record holding `position`, its crc checked.
    fn record_at(&self, position: u64) -> Result<Bytes, SegmentError> {
        let at = self.locate(position, false)?;
        // One read of exactly the frames between the index entry and the next one: the record
        // holding `position` is among them, whole.
        let span = at.span_end.saturating_sub(at.offset).min(POINT_READ_WINDOW);
        let mut cursor = FrameCursor::new(at.file, at.path, at.offset, span);
        let mut expected = at.expected;
        loop {
            let offset = cursor.offset;
            let Some(header) = cursor.header(at.data_end)? else {
                return Err(corrupt_at(
                    cursor.path(),
                    offset,
                    format!(
                        "no frame holds position {position} below the data end {}",
                        at.data_end
                    ),
                ));
            };
            let next = check_header(&header, offset, at.data_end, expected)
                .map_err(|p| corrupt_at(cursor.path(), offset, p))?;
            if position < next {
                let record = cursor.checked_record(&header, at.data_end)?;
                if record.len() < POINT_READ_COPY_BELOW && record.len() < cursor.window_len() / 2 {
                    return Ok(Bytes::copy_from_slice(&record));
                }
                return Ok(record);
            }
            cursor.advance(&header);
            expected = next;
        }
    }

    /// A sequential reader from the record holding `position` (`last_position() + 1` too: a
    /// reader at the end that yields what is appended later).
    fn reader(this: &Arc<Self>, position: u64) -> Result<SegmentReader, SegmentError> {
        let at = this.locate(position, true)?;
        Ok(SegmentReader {
            shared: Arc::clone(this),
            seg_index: at.seg_index,
            cursor: FrameCursor::new(at.file, at.path, at.offset, READ_AHEAD),
            expected: at.expected,
            start: position,
            done: false,
        })
    }
}

/// The writer's state.
#[derive(Debug)]
struct Writer {
    file: Arc<dyn VfsFile>,
    name: String,
    first_position: u64,
    /// The offset after the last frame written (and published).
    end: u64,
    /// The file's allocated size.
    capacity: u64,
    last_position: u64,
    /// The offset of the active segment's last sparse index entry.
    last_entry_offset: Option<u64>,
    /// Set by a failed write, sync or roll: the log refuses appends and syncs from then on.
    failed: Option<String>,
    /// Set by `close`: the active segment was cut to its data.
    closed: bool,
    /// The active segment is written (with data or zeros) up to here.
    zeroed_upto: u64,
    buf: Vec<u8>,
}

/// The global log in segment files: one writer, many concurrent readers.
#[derive(Debug)]
pub(crate) struct SegmentLog {
    files: SegmentFiles,
    writer: Mutex<Writer>,
}

impl SegmentLog {
    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one record holding positions `first_position ..= first_position + event_count - 1`.
    /// It must continue the log exactly (`first_position == last_position() + 1`,
    /// `event_count >= 1`, a non-empty record). Not synced. Rolls to a new segment (sealing the
    /// full one) when the record does not fit.
    pub(crate) fn append(
        &self,
        first_position: u64,
        event_count: u32,
        record: &[u8],
    ) -> Result<(), SegmentError> {
        self.append_all(&[(first_position, event_count, record)])
    }

    /// Appends several records with one write call per segment — the rules of [`Self::append`]
    /// for each. All are checked before any is written.
    pub(crate) fn append_all(&self, records: &[(u64, u32, &[u8])]) -> Result<(), SegmentError> {
        let mut writer = self.writer();
        if let Some(detail) = &writer.failed {
            return Err(SegmentError::Unusable {
                detail: detail.clone(),
            });
        }
        let mut expected = writer.last_position.checked_add(1);
        for &(first, count, record) in records {
            if Some(first) != expected {
                return Err(SegmentError::InvalidAppend {
                    detail: format!(
                        "a record at position {first} does not continue the log at {}",
                        writer.last_position.saturating_add(1)
                    ),
                });
            }
            if count == 0 {
                return Err(SegmentError::InvalidAppend {
                    detail: format!("the record at position {first} holds 0 events"),
                });
            }
            if record.is_empty() || record.len() as u64 > u64::from(MAX_RECORD_LEN) {
                return Err(SegmentError::InvalidAppend {
                    detail: format!(
                        "the record at position {first} is {} bytes (1 ..= {MAX_RECORD_LEN})",
                        record.len()
                    ),
                });
            }
            expected = first.checked_add(u64::from(count));
            if expected.is_none() {
                return Err(SegmentError::InvalidAppend {
                    detail: format!("the record at position {first} overflows the positions"),
                });
            }
        }
        let result = self.write_records(&mut writer, records);
        if let Err(e) = &result {
            tracing::error!(error = %e, "segment log append failed; the log refuses writes until reopened");
            writer.failed = Some(e.to_string());
        }
        result
    }

    fn write_records(
        &self,
        writer: &mut Writer,
        records: &[(u64, u32, &[u8])],
    ) -> Result<(), SegmentError> {
        let every = self.files.shared.options.index_every_bytes;
        let mut buf = std::mem::take(&mut writer.buf);
        buf.clear();
        let mut entries = Vec::new();
        let mut buf_last = writer.last_position;
        for &(first, count, record) in records {
            let need = FRAME_HEADER_LEN + record.len() as u64;
            let at = writer.end + buf.len() as u64;
            if at.saturating_add(need) > writer.capacity {
                self.flush(writer, &mut buf, &mut entries, buf_last)?;
                if writer.end > HEADER_LEN {
                    self.roll(writer, need)?;
                }
                let end = writer.end.saturating_add(need);
                if end > writer.capacity {
                    // An empty segment too small for the record: it gets the record alone.
                    writer
                        .file
                        .allocate(end)
                        .map_err(io_error(&*self.files.shared.dir, &writer.name))?;
                    writer.capacity = end;
                }
            }
            let offset = writer.end + buf.len() as u64;
            if index_entry_due(writer.last_entry_offset, offset, every) {
                entries.push((first, offset));
                writer.last_entry_offset = Some(offset);
            }
            layout::encode_frame(first, count, record, &mut buf)
                .map_err(|m| SegmentError::InvalidAppend { detail: m.0 })?;
            buf_last = first + u64::from(count) - 1; // checked above
        }
        self.flush(writer, &mut buf, &mut entries, buf_last)?;
        if buf.capacity() <= KEEP_BUFFER {
            writer.buf = buf;
        }
        Ok(())
    }

    /// Writes the buffered frames at the end of the active segment and publishes them.
    fn flush(
        &self,
        writer: &mut Writer,
        buf: &mut Vec<u8>,
        entries: &mut Vec<(u64, u64)>,
        buf_last: u64,
    ) -> Result<(), SegmentError> {
        if buf.is_empty() {
            return Ok(());
        }
        writer
            .file
            .write_all_at(buf, writer.end)
            .map_err(io_error(&*self.files.shared.dir, &writer.name))?;
        // Before the frames are published: a failed zero write fails this append.
        self.zero_ahead(writer, writer.end + buf.len() as u64)?;
        writer.end += buf.len() as u64;
        writer.last_position = buf_last;
        {
            let mut table = self.files.shared.table_mut();
            if let Some(seg) = table.last_mut() {
                seg.data_end = writer.end;
                seg.last_position = buf_last;
                seg.entries.append(entries);
            }
        }
        self.files
            .shared
            .last_position
            .store(buf_last, Ordering::Release);
        buf.clear();
        entries.clear();
        Ok(())
    }

    /// Writes zeros past the data ending at `end` when it has reached the zeroed run (see
    /// [`SegmentOptions::zero_ahead_bytes`]); the next sync makes them durable with the data.
    /// Only bytes past the data are written, where nothing is read.
    fn zero_ahead(&self, writer: &mut Writer, end: u64) -> Result<(), SegmentError> {
        let ahead = self.files.shared.options.zero_ahead_bytes;
        if ahead == 0 || end < writer.zeroed_upto {
            return Ok(());
        }
        let to = end.saturating_add(ahead).min(writer.capacity);
        let len = usize::try_from(to.saturating_sub(end)).unwrap_or(0);
        if len > 0 {
            writer
                .file
                .write_all_at(&vec![0; len], end)
                .map_err(io_error(&*self.files.shared.dir, &writer.name))?;
        }
        writer.zeroed_upto = to;
        Ok(())
    }

    /// Seals the active segment and starts the next one, with room for a frame of `need` bytes.
    fn roll(&self, writer: &mut Writer, need: u64) -> Result<(), SegmentError> {
        let dir = &*self.files.shared.dir;
        let file = &writer.file;
        let name = writer.name.as_str();
        cut_to_data(&**file, writer.end).map_err(io_error(dir, name))?;
        let entries = self
            .files
            .shared
            .table()
            .last()
            .map(|s| s.entries.clone())
            .unwrap_or_default();
        let index = SegmentIndex {
            first_position: writer.first_position,
            last_position: writer.last_position,
            data_end: writer.end,
            entries,
        };
        write_index(dir, &index)?;
        self.files
            .shared
            .synced_position
            .fetch_max(writer.last_position, Ordering::AcqRel);
        let first = writer
            .last_position
            .checked_add(1)
            .ok_or_else(|| SegmentError::corrupted("positions overflow"))?;
        let capacity = self
            .files
            .shared
            .options
            .segment_bytes
            .max(HEADER_LEN.saturating_add(need));
        let next = create_segment(dir, &self.files.shared.options, first, capacity)?;
        tracing::debug!(
            sealed = %writer.name,
            last_position = writer.last_position,
            data_end = writer.end,
            next = %layout::segment_name(first),
            "segment log rolled"
        );
        let name = layout::segment_name(first);
        self.files.shared.table_mut().push(SegmentInfo {
            first_position: first,
            path: self.files.shared.path(&name),
            name: name.clone(),
            file: Arc::clone(&next),
            entries: Vec::new(),
            last_position: writer.last_position,
            data_end: HEADER_LEN,
        });
        writer.file = next;
        writer.name = name;
        writer.first_position = first;
        writer.end = HEADER_LEN;
        writer.capacity = capacity;
        writer.last_entry_offset = None;
        writer.zeroed_upto = HEADER_LEN;
        Ok(())
    }

    /// `fdatasync` of everything appended so far; returns the last position now durable.
    pub(crate) fn sync(&self) -> Result<u64, SegmentError> {
        let (file, name, last) = {
            let writer = self.writer();
            if let Some(detail) = &writer.failed {
                return Err(SegmentError::Unusable {
                    detail: detail.clone(),
                });
            }
            (
                Arc::clone(&writer.file),
                writer.name.clone(),
                writer.last_position,
            )
        };
        let synced = &self.files.shared.synced_position;
        if last <= synced.load(Ordering::Acquire) {
            return Ok(synced.load(Ordering::Acquire));
        }
        // Outside the writer lock: appends go on meanwhile. A roll in between sealed (synced)
        // this file; syncing it again is harmless.
        if let Err(source) = file.sync_data() {
            let error = io_error(&*self.files.shared.dir, &name)(source);
            tracing::error!(error = %error, "segment log sync failed; the log refuses writes until reopened");
            self.writer().failed = Some(error.to_string());
            return Err(error);
        }
        synced.fetch_max(last, Ordering::AcqRel);
        Ok(synced.load(Ordering::Acquire))
    }

    /// Closes the log cleanly: the active segment's unused preallocation is given back (the file
    /// is cut to its data and synced), so a closed store takes only the disk its records need.
    /// The next open allocates it again. Appends after this fail (the log must be reopened).
    pub(crate) fn close(&self) -> Result<(), SegmentError> {
        let mut writer = self.writer();
        if writer.closed {
            return Ok(());
        }
        if let Some(detail) = &writer.failed {
            return Err(SegmentError::Unusable {
                detail: detail.clone(),
            });
        }
        let (file, end) = (Arc::clone(&writer.file), writer.end);
        let result =
            cut_to_data(&*file, end).map_err(io_error(&*self.files.shared.dir, &writer.name));
        writer.failed = Some(match &result {
            Ok(()) => "the log was closed".to_owned(),
            Err(e) => e.to_string(),
        });
        writer.closed = result.is_ok();
        writer.capacity = end;
        result?;
        self.files
            .shared
            .synced_position
            .fetch_max(writer.last_position, Ordering::AcqRel);
        Ok(())
    }

    /// The last appended position (visible to readers once `append` returned); 0 when empty.
    pub(crate) fn last_position(&self) -> u64 {
        self.files.shared.last_position.load(Ordering::Acquire)
    }

    #[cfg(test)]
    /// The last synced position.
    pub(crate) fn synced_position(&self) -> u64 {
        self.files.shared.synced_position.load(Ordering::Acquire)
    }
}

/// The segment files as readers see them, shared by the writer's [`SegmentLog`] and the
/// [`ReadOnlySegmentLog`] (both dereference to it).
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    shared: Arc<Shared>,
}

impl SegmentFiles {
    /// The record holding `position`, its crc checked.
    pub(crate) fn record_at(&self, position: u64) -> Result<Bytes, SegmentError> {
        self.shared.record_at(position)
    }

    /// A sequential reader from the record holding `position` (`last_position() + 1` too: a
    /// reader at the end that yields what is appended later, or what later refreshes add).
    pub(crate) fn reader(&self, position: u64) -> Result<SegmentReader, SegmentError> {
        Shared::reader(&self.shared, position)
    }

    #[cfg(test)]
    /// Every segment file's name and first position, oldest first.
    pub(crate) fn segments(&self) -> Vec<(String, u64)> {
        self.shared
            .table()
            .iter()
            .map(|s| (s.name.clone(), s.first_position))
            .collect()
    }
}

impl std::ops::Deref for SegmentLog {
    type Target = SegmentFiles;

    fn deref(&self) -> &SegmentFiles {
        &self.files
    }
}

/// Reads the log forward in large windows; sees records appended after it was made.
#[derive(Debug)]
pub(crate) struct SegmentReader {
    shared: Arc<Shared>,
    seg_index: usize,
    cursor: FrameCursor,
    /// The first position of the frame at the cursor.
    expected: u64,
    /// Frames ending before this position are skipped (the start of the read).
    start: u64,
    /// After an error the reader yields nothing more.
    done: bool,
}

impl SegmentReader {
    fn step(&mut self) -> Result<Option<Frame>, SegmentError> {
        loop {
            let limit = {
                let table = self.shared.table();
                let seg = table.get(self.seg_index).ok_or_else(|| {
                    SegmentError::corrupted(format!("segment #{} vanished", self.seg_index))
                })?;
                if self.cursor.offset >= seg.data_end {
                    let Some(next) = table.get(self.seg_index + 1) else {
                        return Ok(None); // the end of the log, for now
                    };
                    if next.first_position != self.expected {
                        return Err(SegmentError::corrupted(format!(
                            "{} starts at position {}, {} expected",
                            next.name, next.first_position, self.expected
                        )));
                    }
                    self.cursor = FrameCursor::new(
                        Arc::clone(&next.file),
                        Arc::clone(&next.path),
                        HEADER_LEN,
                        READ_AHEAD,
                    );
                    self.seg_index += 1;
                    continue;
                }
                seg.data_end
            };
            let offset = self.cursor.offset;
            let Some(header) = self.cursor.header(limit)? else {
                return Err(corrupt_at(
                    self.cursor.path(),
                    offset,
                    "a frame header cut short below the data end",
                ));
            };
            let next = check_header(&header, offset, limit, self.expected)
                .map_err(|p| corrupt_at(self.cursor.path(), offset, p))?;
            if next <= self.start {
                self.cursor.advance(&header);
                self.expected = next;
                continue;
            }
            let record = self.cursor.checked_record(&header, limit)?;
            self.cursor.advance(&header);
            self.expected = next;
            return Ok(Some(Frame {
                first_position: header.first_position,
                event_count: header.event_count,
                record,
            }));
        }
    }
}

impl Iterator for SegmentReader {
    type Item = Result<Frame, SegmentError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(frame) => frame.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Creates segment `first_position` of `capacity` bytes: allocated, header written and synced,
/// the directory synced.
fn create_segment(
    dir: &dyn Dir,
    options: &SegmentOptions,
    first_position: u64,
    capacity: u64,
) -> Result<Arc<dyn VfsFile>, SegmentError> {
    let name = layout::segment_name(first_position);
    let file = dir.open(&name, true).map_err(io_error(dir, &name))?;
    file.set_len(0).map_err(io_error(dir, &name))?;
    file.allocate(capacity).map_err(io_error(dir, &name))?;
    let header = SegmentHeader {
        first_position,
        created_micros: events_core::now_micros().timestamp_micros(),
        store_id: options.store_id,
    };
    file.write_all_at(&header.encode(), 0)
        .map_err(io_error(dir, &name))?;
    file.sync_data().map_err(io_error(dir, &name))?;
    dir.sync().map_err(io_error(dir, ""))?;
    Ok(file)
}

/// Writes a sealed segment's index: to a temporary file, synced, renamed, the directory synced.
fn write_index(dir: &dyn Dir, index: &SegmentIndex) -> Result<(), SegmentError> {
    let tmp = layout::index_tmp_name(index.first_position);
    let name = layout::index_name(index.first_position);
    let bytes = index.encode();
    let file = dir.open(&tmp, true).map_err(io_error(dir, &tmp))?;
    file.set_len(0).map_err(io_error(dir, &tmp))?;
    file.write_all_at(&bytes, 0).map_err(io_error(dir, &tmp))?;
    file.sync_data().map_err(io_error(dir, &tmp))?;
    drop(file);
    dir.rename(&tmp, &name).map_err(io_error(dir, &name))?;
    dir.sync().map_err(io_error(dir, ""))?;
    Ok(())
}

/// Whether the frame at `offset` gets a sparse index entry: the segment's first frame does, and
/// then the first frame at least `every` bytes after the last entry. The writer and a rebuild by
/// scanning follow this one rule, so a rebuilt `.idx` equals the one the writer wrote.
fn index_entry_due(last_entry: Option<u64>, offset: u64, every: u64) -> bool {
    last_entry.is_none_or(|last| offset >= last.saturating_add(every))
}

/// Gives back a segment's unused preallocation: what was written synced, the file cut to `end`
/// (its data), the new length synced.
fn cut_to_data(file: &dyn VfsFile, end: u64) -> std::io::Result<()> {
    file.sync_data()?;
    file.set_len(end)?;
    file.sync_data()
}

#[cfg(test)]
mod power_loss;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
