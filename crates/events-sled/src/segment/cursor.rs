//! Reading frames forward through a segment file in large windows, handing out zero-copy slices.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::SegmentError;
use super::layout::{FRAME_HEADER_LEN, FrameHeader, MAX_RECORD_LEN};
use super::vfs::VfsFile;

/// Why the bytes at an offset are not the frame that continues the log there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameProblem {
    /// `len` is 0: the end of the data (or a frame whose first bytes never reached the disk).
    Zero,
    /// Fewer bytes than a frame header remain.
    ShortHeader,
    /// `len` is above [`MAX_RECORD_LEN`].
    TooLong(u32),
    /// The frame runs past the end of the readable bytes.
    PastEnd,
    /// `event_count` is 0.
    NoEvents,
    /// The frame's first position does not continue the log.
    Discontinuous { expected: u64, found: u64 },
    /// first_position + event_count overflows.
    Overflow,
    /// The crc does not match.
    Crc,
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero => f.write_str("zero frame length"),
            Self::ShortHeader => f.write_str("a frame header cut short"),
            Self::TooLong(len) => write!(f, "frame length {len} above the limit {MAX_RECORD_LEN}"),
            Self::PastEnd => f.write_str("a frame running past the end of the data"),
            Self::NoEvents => f.write_str("a frame of 0 events"),
            Self::Discontinuous { expected, found } => {
                write!(
                    f,
                    "a frame at position {found} where {expected} was expected"
                )
            }
            Self::Overflow => f.write_str("a frame whose positions overflow"),
            Self::Crc => f.write_str("a frame crc mismatch"),
        }
    }
}

/// Checks a decoded header at `offset` against the readable end `limit` and the position the
/// log continues at; returns the position after the frame.
pub(super) fn check_header(
    header: &FrameHeader,
    offset: u64,
    limit: u64,
    expected: u64,
) -> Result<u64, FrameProblem> {
    if header.len == 0 {
        return Err(FrameProblem::Zero);
    }
    if header.len > MAX_RECORD_LEN {
        return Err(FrameProblem::TooLong(header.len));
    }
    match offset.checked_add(header.frame_len()) {
        Some(end) if end <= limit => {}
        _ => return Err(FrameProblem::PastEnd),
    }
    if header.event_count == 0 {
        return Err(FrameProblem::NoEvents);
    }
    if header.first_position != expected {
        return Err(FrameProblem::Discontinuous {
            expected,
            found: header.first_position,
        });
    }
    header.next_position().ok_or(FrameProblem::Overflow)
}

/// Damage found at `offset` of the file at `path`.
pub(super) fn corrupt_at(path: &Path, offset: u64, what: impl fmt::Display) -> SegmentError {
    SegmentError::Corrupted {
        detail: format!("{} at offset {offset}: {what}", path.display()),
    }
}

/// A position in a segment file and the window of bytes read ahead from it.
#[derive(Debug)]
pub(super) struct FrameCursor {
    file: Arc<dyn VfsFile>,
    path: Arc<Path>,
    window: u64,
    win_start: u64,
    win: Bytes,
    /// The window before `win`: reused for the next read once nothing borrows from it (records
    /// read from it are usually gone by then), which spares zeroing a fresh buffer per window.
    spare: Bytes,
    /// The offset of the frame the cursor is at.
    pub(super) offset: u64,
}

impl FrameCursor {
    pub(super) fn new(file: Arc<dyn VfsFile>, path: Arc<Path>, offset: u64, window: u64) -> Self {
        Self {
            file,
            path,
            window: window.max(FRAME_HEADER_LEN),
            win_start: 0,
            win: Bytes::new(),
            spare: Bytes::new(),
            offset,
        }
    }

    /// Bytes in the window read last.
    pub(super) fn window_len(&self) -> usize {
        self.win.len()
    }

    /// The file's path, for error messages.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The `len` bytes at the cursor from the window, reading a new window when needed; `None`
    /// when they reach past `limit` or the end of the file.
    fn bytes(&mut self, len: u64, limit: u64) -> Result<Option<Bytes>, SegmentError> {
        let Some(end) = self.offset.checked_add(len) else {
            return Ok(None);
        };
        if end > limit {
            return Ok(None);
        }
        let win_end = self.win_start.saturating_add(self.win.len() as u64);
        if !(self.offset >= self.win_start && end <= win_end) {
            let want = self.window.max(len).min(limit - self.offset);
            let size = usize::try_from(want).map_err(|_| SegmentError::Corrupted {
                detail: format!("{}: a read of {want} bytes", self.path.display()),
            })?;
            let mut buf = match std::mem::take(&mut self.spare).try_into_mut() {
                Ok(mut spare) if spare.capacity() >= size => {
                    // Only bytes past the spare's length are zeroed; the read overwrites the rest.
                    spare.resize(size, 0);
                    spare
                }
                _ => BytesMut::zeroed(size),
            };
            let n =
                self.file
                    .read_at(&mut buf, self.offset)
                    .map_err(|source| SegmentError::Io {
                        path: self.path.to_path_buf(),
                        source,
                    })?;
            buf.truncate(n);
            self.win_start = self.offset;
            self.spare = std::mem::replace(&mut self.win, buf.freeze());
        }
        let (Ok(from), Ok(to)) = (
            usize::try_from(self.offset - self.win_start),
            usize::try_from(end - self.win_start),
        ) else {
            return Ok(None);
        };
        if to > self.win.len() {
            return Ok(None); // the file ended early
        }
        Ok(Some(self.win.slice(from..to)))
    }

    /// The header of the frame at the cursor; `None` when fewer than 20 bytes remain below
    /// `limit`.
    pub(super) fn header(&mut self, limit: u64) -> Result<Option<FrameHeader>, SegmentError> {
        Ok(self
            .bytes(FRAME_HEADER_LEN, limit)?
            .and_then(|b| FrameHeader::decode(&b)))
    }

    /// The record of the frame at the cursor (a slice of the window); `None` when the frame runs
    /// past `limit`.
    pub(super) fn record(
        &mut self,
        header: &FrameHeader,
        limit: u64,
    ) -> Result<Option<Bytes>, SegmentError> {
        Ok(self
            .bytes(header.frame_len(), limit)?
            .map(|frame| frame.slice(FRAME_HEADER_LEN as usize..)))
    }

    /// [`FrameCursor::record`], the frame's crc checked: a frame cut short or failing its crc is
    /// `Corrupted`, naming the file, the offset and the position.
    pub(super) fn checked_record(
        &mut self,
        header: &FrameHeader,
        limit: u64,
    ) -> Result<Bytes, SegmentError> {
        let offset = self.offset;
        let Some(record) = self.record(header, limit)? else {
            return Err(corrupt_at(self.path(), offset, "a frame cut short"));
        };
        if !header.crc_matches(&record) {
            return Err(corrupt_at(
                self.path(),
                offset,
                format!(
                    "crc mismatch of the frame at position {}",
                    header.first_position
                ),
            ));
        }
        Ok(record)
    }

    /// Moves past the frame at the cursor.
    pub(super) fn advance(&mut self, header: &FrameHeader) {
        self.offset = self.offset.saturating_add(header.frame_len());
    }
}
