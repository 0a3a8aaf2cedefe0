//! Opening the segment log: the sealed segments from their indexes (rebuilt by a scan when
//! missing or damaged), the active segment scanned, its torn tail cut.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;

use super::cursor::{FrameCursor, FrameProblem, check_header};
use super::layout::{
    self, FileKind, HEADER_LEN, HeaderError, INDEX_ENTRY_LEN, INDEX_FIXED_LEN, SegmentHeader,
    SegmentIndex,
};
use super::vfs::{Dir, VfsFile};
use super::{
    Recovered, SegmentError, SegmentFiles, SegmentInfo, SegmentLog, SegmentOptions, Shared, Writer,
    create_segment, index_entry_due, io_error, write_index,
};

/// Bytes read or zeroed at a time while scanning and cutting.
const CHUNK: u64 = 1 << 20;
/// An index file larger than this is not read (a segment of 1 GiB indexed every byte would not
/// need more).
const MAX_INDEX_BYTES: u64 = 256 << 20;

/// What a scan of a segment's frames found.
#[derive(Debug)]
pub(super) struct Scan {
    /// The offset after the last intact frame.
    pub(super) data_end: u64,
    /// The last position of the intact frames; `first_position - 1` when none.
    pub(super) last_position: u64,
    pub(super) frames: u64,
    pub(super) entries: Vec<(u64, u64)>,
    pub(super) last_record: Option<Bytes>,
    /// Why the scan stopped before `limit` (`None`: it ended exactly there).
    pub(super) stop: Option<FrameProblem>,
}

/// Scans the frames of a segment from offset 64 up to `limit`, stopping at the first that is
/// not intact or does not continue the positions.
fn scan_frames(
    file: &Arc<dyn VfsFile>,
    dir: &dyn Dir,
    name: &str,
    first_position: u64,
    limit: u64,
    index_every_bytes: u64,
) -> Result<Scan, SegmentError> {
    scan_from(
        file,
        Arc::from(dir.path().join(name)),
        ScanStart {
            offset: HEADER_LEN,
            expected: first_position,
            last_entry: None,
        },
        limit,
        index_every_bytes,
    )
}

/// Where a scan starts: a frame boundary, the position of the frame there, and the offset of
/// the segment's last sparse index entry before it (`None`: the scan's first frame gets one).
#[derive(Debug, Clone, Copy)]
pub(super) struct ScanStart {
    pub(super) offset: u64,
    pub(super) expected: u64,
    pub(super) last_entry: Option<u64>,
}

/// Scans frames from `start` up to `limit`, stopping at the first that is not intact or does
/// not continue the positions. Only reads.
pub(super) fn scan_from(
    file: &Arc<dyn VfsFile>,
    path: Arc<std::path::Path>,
    start: ScanStart,
    limit: u64,
    index_every_bytes: u64,
) -> Result<Scan, SegmentError> {
    let mut cursor = FrameCursor::new(Arc::clone(file), path, start.offset, CHUNK);
    let mut expected = start.expected;
    let mut entries: Vec<(u64, u64)> = Vec::new();
    let mut last_entry = start.last_entry;
    let mut last_record = None;
    let mut frames = 0u64;
    let stop = loop {
        let offset = cursor.offset;
        let Some(header) = cursor.header(limit)? else {
            break (offset < limit).then_some(FrameProblem::ShortHeader);
        };
        let next = match check_header(&header, offset, limit, expected) {
            Ok(next) => next,
            Err(problem) => break Some(problem),
        };
        let Some(record) = cursor.record(&header, limit)? else {
            break Some(FrameProblem::PastEnd);
        };
        if !header.crc_matches(&record) {
            break Some(FrameProblem::Crc);
        }
        if index_entry_due(last_entry, offset, index_every_bytes) {
            entries.push((header.first_position, offset));
            last_entry = Some(offset);
        }
        last_record = Some(record);
        frames += 1;
        expected = next;
        cursor.advance(&header);
    };
    Ok(Scan {
        data_end: cursor.offset,
        // expected >= first_position >= 1 for a segment; a scan starts at a position >= 1.
        last_position: expected.saturating_sub(1),
        frames,
        entries,
        // A copy: the slice would keep the scan's last window alive.
        last_record: last_record.map(|r| Bytes::copy_from_slice(&r)),
        stop,
    })
}

/// The offset of the last non-zero byte in `from..to`.
pub(super) fn last_nonzero(
    file: &dyn VfsFile,
    dir: &dyn Dir,
    name: &str,
    from: u64,
    to: u64,
) -> Result<Option<u64>, SegmentError> {
    let mut last = None;
    let mut buf = Vec::new();
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK) as usize;
        buf.resize(n, 0);
        let got = file.read_at(&mut buf, at).map_err(io_error(dir, name))?;
        if let Some(i) = buf[..got].iter().rposition(|&b| b != 0) {
            last = Some(at + i as u64);
        }
        if got < n {
            break;
        }
        at += n as u64;
    }
    Ok(last)
}

/// How many frame headers look started in `from..to`, walking by their lengths (best effort).
fn started_frames(
    file: &dyn VfsFile,
    dir: &dyn Dir,
    name: &str,
    from: u64,
    to: u64,
) -> Result<u64, SegmentError> {
    let mut count = 0;
    let mut at = from;
    let mut header = [0u8; layout::FRAME_HEADER_LEN as usize];
    while at < to && count < 1_000_000 {
        let got = file.read_at(&mut header, at).map_err(io_error(dir, name))?;
        let bytes = &header[..got];
        if bytes.iter().all(|&b| b == 0) {
            break;
        }
        count += 1;
        let Some(h) = layout::FrameHeader::decode(bytes) else {
            break;
        };
        match at.checked_add(h.frame_len()) {
            Some(next) if h.len > 0 && next < to => at = next,
            _ => break,
        }
    }
    Ok(count)
}

/// Zeros `from..to` in chunks.
fn zero_range(
    file: &dyn VfsFile,
    dir: &dyn Dir,
    name: &str,
    from: u64,
    to: u64,
) -> Result<(), SegmentError> {
    let zeros = vec![0u8; (to.saturating_sub(from)).min(CHUNK) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(io_error(dir, name))?;
        at += n as u64;
    }
    Ok(())
}

/// Reads a segment's header (fewer bytes when the file is shorter).
pub(super) fn read_header(
    file: &dyn VfsFile,
    dir: &dyn Dir,
    name: &str,
) -> Result<Result<SegmentHeader, HeaderError>, SegmentError> {
    let mut bytes = [0u8; HEADER_LEN as usize];
    let got = file.read_at(&mut bytes, 0).map_err(io_error(dir, name))?;
    Ok(SegmentHeader::decode(&bytes[..got]))
}

/// Checks an intact header against the file's name and the store.
pub(super) fn check_segment_header(
    header: &SegmentHeader,
    name: &str,
    first_position: u64,
    options: &SegmentOptions,
) -> Result<(), SegmentError> {
    if header.first_position != first_position {
        return Err(SegmentError::corrupted(format!(
            "{name}: the header says first position {}",
            header.first_position
        )));
    }
    if header.store_id != options.store_id {
        return Err(SegmentError::corrupted(format!(
            "{name}: a segment of another store (store id {:02x?})",
            header.store_id
        )));
    }
    Ok(())
}

/// Reads a segment's index file: `Ok(Err)` when it does not decode or does not fit the segment.
pub(super) fn load_index(
    dir: &dyn Dir,
    first_position: u64,
    file_len: u64,
) -> Result<Result<SegmentIndex, String>, SegmentError> {
    let name = layout::index_name(first_position);
    let file = dir.open_read(&name).map_err(io_error(dir, &name))?;
    let len = file.len().map_err(io_error(dir, &name))?;
    if !(INDEX_FIXED_LEN..=MAX_INDEX_BYTES).contains(&len)
        || !(len - INDEX_FIXED_LEN).is_multiple_of(INDEX_ENTRY_LEN)
    {
        return Ok(Err(format!("an index file of {len} bytes")));
    }
    let mut bytes = vec![0u8; len as usize];
    let got = file.read_at(&mut bytes, 0).map_err(io_error(dir, &name))?;
    bytes.truncate(got);
    let index = match SegmentIndex::decode(&bytes) {
        Ok(index) => index,
        Err(m) => return Ok(Err(m.0)),
    };
    if index.first_position != first_position {
        return Ok(Err(format!(
            "the index says first position {}",
            index.first_position
        )));
    }
    if index.data_end > file_len {
        return Ok(Err(format!(
            "the index's data end {} is past the segment's {file_len} bytes",
            index.data_end
        )));
    }
    Ok(Ok(index))
}

/// Opens the segment file that starts at `first_position` (for reading only, or for writing
/// too): its name, the file and its length.
fn open_segment(
    dir: &dyn Dir,
    first_position: u64,
    writable: bool,
) -> Result<(String, Arc<dyn VfsFile>, u64), SegmentError> {
    let name = layout::segment_name(first_position);
    let file = if writable {
        dir.open(&name, false)
    } else {
        dir.open_read(&name)
    }
    .map_err(io_error(dir, &name))?;
    let len = file.len().map_err(io_error(dir, &name))?;
    Ok((name, file, len))
}

/// Opens a sealed segment: its index, rebuilt by a strict scan when missing or damaged (and
/// rewritten when `persist_rebuilt`; a read-only log keeps it in memory). The file is opened
/// for reading only: a sealed segment is never written again.
pub(super) fn open_sealed(
    dir: &dyn Dir,
    options: &SegmentOptions,
    first_position: u64,
    has_index: bool,
    persist_rebuilt: bool,
) -> Result<SegmentInfo, SegmentError> {
    let (name, file, len) = open_segment(dir, first_position, false)?;
    let header = read_header(&*file, dir, &name)?
        .map_err(|e| SegmentError::corrupted(format!("{name} (sealed): header: {e}")))?;
    check_segment_header(&header, &name, first_position, options)?;
    let index = if has_index {
        match load_index(dir, first_position, len)? {
            Ok(index) => Some(index),
            Err(why) => {
                tracing::warn!(segment = %name, reason = %why, "segment index damaged; rebuilding it");
                None
            }
        }
    } else {
        tracing::warn!(segment = %name, "segment index missing; rebuilding it");
        None
    };
    let index = match index {
        Some(index) => index,
        None => {
            let index = rebuild_index(&file, dir, &name, first_position, len, options)?;
            if persist_rebuilt {
                write_index(dir, &index)?;
            }
            index
        }
    };
    Ok(SegmentInfo {
        first_position,
        path: Arc::from(dir.path().join(&name)),
        name,
        file,
        entries: index.entries,
        last_position: index.last_position,
        data_end: index.data_end,
    })
}

/// A sealed segment's index, by a strict scan of its `len` bytes: every frame intact, nothing
/// but zeros after the last.
fn rebuild_index(
    file: &Arc<dyn VfsFile>,
    dir: &dyn Dir,
    name: &str,
    first_position: u64,
    len: u64,
    options: &SegmentOptions,
) -> Result<SegmentIndex, SegmentError> {
    let scan = scan_frames(
        file,
        dir,
        name,
        first_position,
        len,
        options.index_every_bytes,
    )?;
    let clean = match scan.stop {
        None => true,
        Some(FrameProblem::Zero) => last_nonzero(&**file, dir, name, scan.data_end, len)?.is_none(),
        Some(_) => false,
    };
    if !clean || scan.frames == 0 {
        let why = scan
            .stop
            .map_or_else(|| "no frames".to_owned(), |p| p.to_string());
        return Err(SegmentError::corrupted(format!(
            "{name} (sealed): {why} at offset {} after position {}",
            scan.data_end, scan.last_position
        )));
    }
    Ok(SegmentIndex {
        first_position,
        last_position: scan.last_position,
        data_end: scan.data_end,
        entries: scan.entries,
    })
}

/// What the last segment file turned out to be.
enum Last {
    /// The active segment, to scan and cut.
    Active(Arc<dyn VfsFile>, u64),
    /// Sealed (it has a valid index): a fresh segment follows it.
    Sealed,
    /// A torn header and no frame (a crash while it was created): removed; a fresh one replaces it.
    Removed,
}

/// Decides what the last segment file is (see [`Last`]).
fn classify_last(
    dir: &dyn Dir,
    options: &SegmentOptions,
    first_position: u64,
    has_index: bool,
    has_previous: bool,
) -> Result<Last, SegmentError> {
    let (name, file, len) = open_segment(dir, first_position, true)?;
    match read_header(&*file, dir, &name)? {
        Err(HeaderError::Unsupported(why)) => {
            Err(SegmentError::corrupted(format!("{name}: header: {why}")))
        }
        Err(HeaderError::Torn(why)) => {
            let scan = scan_frames(
                &file,
                dir,
                &name,
                first_position,
                len,
                options.index_every_bytes,
            )?;
            if scan.frames > 0 {
                return Err(SegmentError::corrupted(format!(
                    "{name}: header damaged ({why}) but it holds {} intact frames",
                    scan.frames
                )));
            }
            check_holds(
                options,
                first_position - 1, // first_position >= 1
                &format!("{name}: header damaged ({why}), no intact frame"),
            )?;
            // The only segment may be replaced only when it holds nothing at all (a crash while
            // the log was created); after others, a torn header and no frame is a crash mid-roll.
            if !has_previous && last_nonzero(&*file, dir, &name, 0, len)?.is_some() {
                return Err(SegmentError::corrupted(format!(
                    "{name}: the only segment's header is damaged ({why})"
                )));
            }
            tracing::warn!(
                segment = %name,
                reason = %why,
                bytes = len,
                "segment log: removing a segment whose header never reached the disk (a crash while it was created)"
            );
            drop(file);
            dir.remove(&name).map_err(io_error(dir, &name))?;
            if has_index {
                let index = layout::index_name(first_position);
                dir.remove(&index).map_err(io_error(dir, &index))?;
            }
            dir.sync().map_err(io_error(dir, ""))?;
            Ok(Last::Removed)
        }
        Ok(header) => {
            check_segment_header(&header, &name, first_position, options)?;
            if has_index {
                match load_index(dir, first_position, len)? {
                    Ok(_) => return Ok(Last::Sealed),
                    Err(why) => {
                        let index = layout::index_name(first_position);
                        tracing::warn!(
                            segment = %name,
                            reason = %why,
                            "segment log: the last segment's index is damaged; removing it and reopening the segment as the active one"
                        );
                        dir.remove(&index).map_err(io_error(dir, &index))?;
                        dir.sync().map_err(io_error(dir, ""))?;
                    }
                }
            }
            Ok(Last::Active(file, len))
        }
    }
}

/// The active segment after its tail was cut.
struct Tail {
    scan: Scan,
    capacity: u64,
    cut_bytes: u64,
    cut_frames: u64,
}

/// Scans the active segment, zeros its torn tail (so stale bytes can never be read back as a
/// later frame), re-allocates it to the segment size and syncs it.
fn recover_tail(
    dir: &dyn Dir,
    options: &SegmentOptions,
    first_position: u64,
    file: &Arc<dyn VfsFile>,
    len: u64,
) -> Result<Tail, SegmentError> {
    let name = layout::segment_name(first_position);
    let scan = scan_frames(
        file,
        dir,
        &name,
        first_position,
        len,
        options.index_every_bytes,
    )?;
    let cut = scan.data_end;
    if scan.last_position < options.must_hold {
        let reason = scan
            .stop
            .map_or_else(|| "the end of the file".to_owned(), |p| p.to_string());
        check_holds(
            options,
            scan.last_position,
            &format!("{name} at offset {cut}: {reason}"),
        )?;
    }
    let (cut_bytes, cut_frames) = match last_nonzero(&**file, dir, &name, cut, len)? {
        Some(last) => (
            last + 1 - cut,
            started_frames(&**file, dir, &name, cut, last + 1)?,
        ),
        None => (0, 0),
    };
    if cut_bytes > 0 {
        let reason = scan
            .stop
            .map_or_else(|| "none".to_owned(), |p| p.to_string());
        tracing::warn!(
            segment = %name,
            cut_offset = cut,
            cut_bytes,
            cut_frames,
            last_position = scan.last_position,
            reason = %reason,
            "segment log: cut a torn tail"
        );
        zero_range(&**file, dir, &name, cut, cut + cut_bytes)?;
    }
    if len < options.segment_bytes {
        file.allocate(options.segment_bytes)
            .map_err(io_error(dir, &name))?;
    }
    // Also makes what an earlier process wrote (maybe only in the page cache) durable, as the
    // log reports it synced.
    file.sync_data().map_err(io_error(dir, &name))?;
    Ok(Tail {
        scan,
        capacity: len.max(options.segment_bytes),
        cut_bytes,
        cut_frames,
    })
}

/// Refuses a log that ends at `end` when it must reach [`SegmentOptions::must_hold`].
fn check_holds(options: &SegmentOptions, end: u64, detail: &str) -> Result<(), SegmentError> {
    if end < options.must_hold {
        return Err(SegmentError::corrupted(format!(
            "the log ends at position {end} ({detail}), but position {} was synced to disk: {} \
             acknowledged events are missing (the segment files were truncated or damaged); \
             nothing was cut",
            options.must_hold,
            options.must_hold - end
        )));
    }
    Ok(())
}

pub(super) fn check_continues(
    prev: Option<&SegmentInfo>,
    first_position: u64,
    name: &str,
) -> Result<(), SegmentError> {
    if let Some(prev) = prev
        && prev.last_position.checked_add(1) != Some(first_position)
    {
        return Err(SegmentError::corrupted(format!(
            "a gap: {} ends at position {}, the next segment {name} starts at {first_position}",
            prev.name, prev.last_position
        )));
    }
    Ok(())
}

impl SegmentLog {
    /// Opens the log in `dir` (creating the first segment when the directory holds none),
    /// recovering the tail.
    pub(crate) fn open(
        dir: Arc<dyn Dir>,
        options: SegmentOptions,
    ) -> Result<(SegmentLog, Recovered), SegmentError> {
        if options.segment_bytes < SegmentOptions::MIN_SEGMENT_BYTES {
            return Err(SegmentError::InvalidOptions {
                detail: format!(
                    "segment_bytes {} below {}",
                    options.segment_bytes,
                    SegmentOptions::MIN_SEGMENT_BYTES
                ),
            });
        }
        let d = &*dir;
        let mut segments = BTreeSet::new();
        let mut indexes = BTreeSet::new();
        for name in d.list().map_err(io_error(d, ""))? {
            match layout::parse_name(&name) {
                Some((FileKind::Segment, first)) => {
                    if first == 0 {
                        return Err(SegmentError::corrupted(format!(
                            "{name}: a segment at position 0"
                        )));
                    }
                    segments.insert(first);
                }
                Some((FileKind::Index, first)) => {
                    indexes.insert(first);
                }
                Some((FileKind::IndexTmp, _)) => {
                    d.remove(&name).map_err(io_error(d, &name))?;
                }
                None => {}
            }
        }
        let segments: Vec<u64> = segments.into_iter().collect();
        // The log starts at position 1: a first segment starting later means the files before it
        // are gone (the gaps between segments are checked below).
        if let Some(&first) = segments.first()
            && first != 1
        {
            return Err(SegmentError::corrupted(format!(
                "{}: the log's first segment starts at position {first}, not 1: the segment files \
                 before it are missing",
                layout::segment_name(first)
            )));
        }

        let last = match segments.last() {
            None => None,
            Some(&first) => Some((
                first,
                classify_last(
                    d,
                    &options,
                    first,
                    indexes.contains(&first),
                    segments.len() > 1,
                )?,
            )),
        };
        let sealed_count = match &last {
            Some((_, Last::Sealed)) => segments.len(),
            _ => segments.len().saturating_sub(1),
        };
        let mut table: Vec<SegmentInfo> = Vec::with_capacity(sealed_count + 1);
        for &first in segments.iter().take(sealed_count) {
            let info = open_sealed(d, &options, first, indexes.contains(&first), true)?;
            check_continues(table.last(), first, &info.name)?;
            table.push(info);
        }

        let mut recovered = Recovered::default();
        let mut last_record = None;
        let capacity = match last {
            Some((first, Last::Active(file, len))) => {
                let name = layout::segment_name(first);
                check_continues(table.last(), first, &name)?;
                let tail = recover_tail(d, &options, first, &file, len)?;
                recovered.cut_bytes = tail.cut_bytes;
                recovered.cut_frames = tail.cut_frames;
                last_record = tail.scan.last_record;
                table.push(SegmentInfo {
                    first_position: first,
                    path: Arc::from(d.path().join(&name)),
                    name,
                    file,
                    entries: tail.scan.entries,
                    last_position: tail.scan.last_position,
                    data_end: tail.scan.data_end,
                });
                tail.capacity
            }
            last => {
                // An empty directory, a sealed last segment, or a removed one: a fresh segment.
                let first = match (table.last(), last) {
                    (Some(prev), _) => prev
                        .last_position
                        .checked_add(1)
                        .ok_or_else(|| SegmentError::corrupted("positions overflow"))?,
                    (None, Some((first, _))) => first,
                    (None, None) => 1,
                };
                check_holds(
                    &options,
                    first - 1, // first >= 1
                    &format!(
                        "no active segment after {}",
                        table.last().map_or("none", |s| s.name.as_str())
                    ),
                )?;
                let file = create_segment(d, &options, first, options.segment_bytes)?;
                let name = layout::segment_name(first);
                table.push(SegmentInfo {
                    first_position: first,
                    path: Arc::from(d.path().join(&name)),
                    name,
                    file,
                    entries: Vec::new(),
                    last_position: first - 1, // first >= 1
                    data_end: HEADER_LEN,
                });
                options.segment_bytes
            }
        };

        let Some(active) = table.last() else {
            return Err(SegmentError::corrupted("no active segment"));
        };
        let last_position = active.last_position;
        let writer = Writer {
            file: Arc::clone(&active.file),
            name: active.name.clone(),
            first_position: active.first_position,
            end: active.data_end,
            capacity,
            last_position,
            last_entry_offset: active.entries.last().map(|e| e.1),
            failed: None,
            closed: false,
            zeroed_upto: active.data_end,
            buf: Vec::new(),
        };
        let log = SegmentLog {
            files: SegmentFiles {
                shared: Arc::new(Shared {
                    dir,
                    options,
                    table: RwLock::new(table),
                    last_position: AtomicU64::new(last_position),
                    synced_position: AtomicU64::new(last_position),
                }),
            },
            writer: Mutex::new(writer),
        };
        recovered.last_position = last_position;
        recovered.last_record = match last_record {
            Some(record) => Some(record),
            None if last_position > 0 => Some(log.record_at(last_position)?),
            None => None,
        };
        tracing::debug!(
            segments = log.shared.table().len(),
            last_position,
            cut_bytes = recovered.cut_bytes,
            "segment log opened"
        );
        Ok((log, recovered))
    }
}

/// The store id in the header of the log's first segment in `dir`, if there is an intact one:
/// the log's owner, whatever sled says (sled can be rebuilt from the log).
pub(crate) fn log_store_id(dir: &dyn Dir) -> Result<Option<[u8; 16]>, SegmentError> {
    let names = dir.list().map_err(io_error(dir, ""))?;
    let first = names
        .iter()
        .filter_map(|name| match layout::parse_name(name) {
            Some((FileKind::Segment, first)) => Some((first, name)),
            _ => None,
        })
        .min_by_key(|(first, _)| *first);
    let Some((_, name)) = first else {
        return Ok(None);
    };
    let file = dir.open(name, false).map_err(io_error(dir, name))?;
    Ok(read_header(&*file, dir, name)?.ok().map(|h| h.store_id))
}
