//! The segment log opened read-only, beside a writer that may be appending in another process.
//!
//! Nothing here writes, creates, allocates, syncs or removes a file: segments and indexes are
//! opened for reading only. Opening lists the segments, loads the sealed ones' `.idx` files (a
//! missing or damaged one is rebuilt in memory by a strict scan, never written) and scans the
//! last segment's frames up to where they end *now*: the first frame that is zero-length, runs
//! past the file, fails its crc or does not continue the positions. A live writer may be in the
//! middle of writing that frame, so unlike the writer's recovery nothing is cut; the next
//! [`ReadOnlySegmentLog::refresh`] scans on from there, and picks up segments the writer
//! sealed (their `.idx` appeared) and created since. A frame is published to readers only once
//! it is complete and its crc matches.
//!
//! What a refresh relies on (see `SegmentLog::roll`): a segment is sealed — cut to its data,
//! synced, its `.idx` renamed into place — before the next segment is created, so a segment
//! followed by another holds its final data; and a segment's header is written before any
//! frame, so a last segment whose header does not decode yet is one being created (skipped
//! until it does).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::cursor::FrameProblem;
use super::layout::{self, FileKind, HEADER_LEN, HeaderError};
use super::recover::{
    ScanStart, check_continues, check_segment_header, last_nonzero, load_index, open_sealed,
    read_header, scan_from,
};
use super::vfs::Dir;
use super::{SegmentError, SegmentFiles, SegmentInfo, SegmentOptions, Shared, io_error};

/// What a refresh remembers between calls.
#[derive(Debug, Default)]
struct Tail {
    /// Whether the last segment of the table is sealed (its data is final).
    sealed: bool,
    /// The store id of the segment headers (`None` until a segment was read).
    store_id: Option<[u8; 16]>,
}

/// The segment log of another process, read-only: many readers, [`Self::refresh`] to see what
/// was appended since.
#[derive(Debug)]
pub(crate) struct ReadOnlySegmentLog {
    files: SegmentFiles,
    tail: Mutex<Tail>,
}

impl std::ops::Deref for ReadOnlySegmentLog {
    type Target = SegmentFiles;

    fn deref(&self) -> &SegmentFiles {
        &self.files
    }
}

impl super::SegmentLog {
    /// Opens the log in `dir` read-only (see [`ReadOnlySegmentLog`]): never writes, creates,
    /// allocates, syncs or removes anything. An empty directory is an empty log (a writer may
    /// create its first segment later).
    pub(crate) fn open_read_only(dir: Arc<dyn Dir>) -> Result<ReadOnlySegmentLog, SegmentError> {
        ReadOnlySegmentLog::open(dir)
    }
}

impl ReadOnlySegmentLog {
    /// See [`super::SegmentLog::open_read_only`].
    pub(crate) fn open(dir: Arc<dyn Dir>) -> Result<Self, SegmentError> {
        let log = Self {
            files: SegmentFiles {
                shared: Arc::new(Shared {
                    dir,
                    options: SegmentOptions::new([0; 16]),
                    table: RwLock::new(Vec::new()),
                    last_position: AtomicU64::new(0),
                    synced_position: AtomicU64::new(0),
                }),
            },
            tail: Mutex::new(Tail::default()),
        };
        log.refresh()?;
        Ok(log)
    }

    fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last position the log holds as of the last refresh; 0 when empty.
    pub(crate) fn last_position(&self) -> u64 {
        self.files.shared.last_position.load(Ordering::Acquire)
    }

    /// The store id in the segment headers (`None` while the directory holds no segment).
    pub(crate) fn store_id(&self) -> Option<[u8; 16]> {
        self.tail().store_id
    }

    /// Reads what the writer appended since the last refresh: frames after the last one read,
    /// segments sealed and created since. Returns the last position.
    pub(crate) fn refresh(&self) -> Result<u64, SegmentError> {
        let mut tail = self.tail();
        let dir = &*self.files.shared.dir;
        // Listed first, scanned second: a segment listed as followed by another, or with its
        // index, was sealed before the listing, so its data is final by the time it is scanned.
        let mut segments = BTreeSet::new();
        let mut indexes = BTreeSet::new();
        for name in dir.list().map_err(io_error(dir, ""))? {
            match layout::parse_name(&name) {
                Some((FileKind::Segment, 0)) => {
                    return Err(SegmentError::corrupted(format!(
                        "{name}: a segment at position 0"
                    )));
                }
                Some((FileKind::Segment, first)) => {
                    segments.insert(first);
                }
                Some((FileKind::Index, first)) => {
                    indexes.insert(first);
                }
                Some((FileKind::IndexTmp, _)) | None => {}
            }
        }
        let known_last = self.files.shared.table().last().map(|s| s.first_position);
        if let Some(first) = known_last
            && !tail.sealed
        {
            let sealed = indexes.contains(&first) || segments.range(first + 1..).next().is_some();
            self.scan_tail(first, sealed, indexes.contains(&first))?;
            tail.sealed = sealed;
        }
        let last_listed = segments.last().copied();
        for &first in segments.range(known_last.map_or(0, |f| f.saturating_add(1))..) {
            if !tail.sealed && known_last.is_some() {
                break; // unreachable: the tail was sealed above when a segment follows it
            }
            let is_last = Some(first) == last_listed;
            let name = layout::segment_name(first);
            let file = dir.open_read(&name).map_err(io_error(dir, &name))?;
            let header = match read_header(&*file, dir, &name)? {
                Ok(header) => header,
                // The writer is creating it: its header is not (completely) written yet.
                Err(HeaderError::Torn(_)) if is_last => break,
                Err(e) => {
                    return Err(SegmentError::corrupted(format!("{name}: header: {e}")));
                }
            };
            let store_id = *tail.store_id.get_or_insert(header.store_id);
            let options = SegmentOptions {
                store_id,
                ..self.files.shared.options.clone()
            };
            check_segment_header(&header, &name, first, &options)?;
            let info = if indexes.contains(&first) || !is_last {
                open_sealed(dir, &options, first, indexes.contains(&first), false)?
            } else {
                let len = file.len().map_err(io_error(dir, &name))?;
                let path: Arc<std::path::Path> = Arc::from(dir.path().join(&name));
                let scan = scan_from(
                    &file,
                    Arc::clone(&path),
                    ScanStart {
                        offset: HEADER_LEN,
                        expected: first,
                        last_entry: None,
                    },
                    len,
                    options.index_every_bytes,
                )?;
                SegmentInfo {
                    first_position: first,
                    name,
                    path,
                    file,
                    entries: scan.entries,
                    last_position: scan.last_position,
                    data_end: scan.data_end,
                }
            };
            let sealed = indexes.contains(&first) || !is_last;
            {
                let mut table = self.files.shared.table_mut();
                check_continues(table.last(), first, &info.name)?;
                table.push(info);
            }
            tail.sealed = sealed;
        }
        let last = self
            .files
            .shared
            .table()
            .last()
            .map_or(0, |s| s.last_position);
        self.files
            .shared
            .last_position
            .store(last, Ordering::Release);
        Ok(last)
    }

    /// Scans the last known segment on from its published end: leniently while it is active
    /// (a frame may be half-written), strictly once `sealed` (every frame up to its end, or its
    /// index's, must be intact).
    fn scan_tail(&self, first: u64, sealed: bool, has_index: bool) -> Result<(), SegmentError> {
        let dir = &*self.files.shared.dir;
        let (file, path, name, start) = {
            let table = self.files.shared.table();
            let Some(seg) = table.last() else {
                return Ok(());
            };
            let expected = seg
                .last_position
                .checked_add(1)
                .ok_or_else(|| SegmentError::corrupted("positions overflow"))?;
            (
                Arc::clone(&seg.file),
                Arc::clone(&seg.path),
                seg.name.clone(),
                ScanStart {
                    offset: seg.data_end,
                    expected,
                    last_entry: seg.entries.last().map(|e| e.1),
                },
            )
        };
        let len = file.len().map_err(io_error(dir, &name))?;
        let every = self.files.shared.options.index_every_bytes;
        let index = if has_index {
            match load_index(dir, first, len)? {
                Ok(index) => Some(index),
                Err(why) => {
                    tracing::warn!(segment = %name, reason = %why, "segment index damaged; scanning the segment instead (read-only: not rewritten)");
                    None
                }
            }
        } else {
            None
        };
        let limit = index.as_ref().map_or(len, |i| i.data_end);
        let scan = scan_from(&file, path, start, limit, every)?;
        if sealed {
            let clean = match (&index, scan.stop) {
                (Some(index), None) => {
                    scan.data_end == index.data_end && scan.last_position == index.last_position
                }
                (Some(_), Some(_)) => false,
                (None, None) => true,
                (None, Some(FrameProblem::Zero)) => {
                    last_nonzero(&*file, dir, &name, scan.data_end, len)?.is_none()
                }
                (None, Some(_)) => false,
            };
            if !clean {
                let why = scan
                    .stop
                    .map_or_else(|| "its index does not match".to_owned(), |p| p.to_string());
                return Err(SegmentError::corrupted(format!(
                    "{name} (sealed): {why} at offset {} after position {}",
                    scan.data_end, scan.last_position
                )));
            }
        }
        let mut table = self.files.shared.table_mut();
        if let Some(seg) = table.last_mut()
            && seg.first_position == first
        {
            match index {
                Some(index) => seg.entries = index.entries,
                None => seg.entries.extend(scan.entries),
            }
            seg.data_end = scan.data_end;
            seg.last_position = scan.last_position;
        }
        Ok(())
    }
}
