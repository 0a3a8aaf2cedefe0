//! Every byte layout of the segment log, big-endian.
//!
//! - Segment file `seg-{first_position:020}.evl`: a 64-byte [`SegmentHeader`], then frames from
//!   offset 64. The unused preallocated part of the file reads as zeros; a frame whose `len` is 0
//!   is the end of the data.
//!
//!   | offset | size | field                                      |
//!   |--------|------|--------------------------------------------|
//!   | 0      | 8    | magic `EVLSEG02`                           |
//!   | 8      | 4    | layout version u32 = 1                     |
//!   | 12     | 4    | reserved u32 (0)                           |
//!   | 16     | 8    | first_position u64                         |
//!   | 24     | 8    | created, unix microseconds i64             |
//!   | 32     | 16   | store id                                   |
//!   | 48     | 12   | zero padding                               |
//!   | 60     | 4    | crc32 of bytes 0..60                       |
//!
//! - Frame (20-byte header, then the record):
//!
//!   | offset | size | field                                                  |
//!   |--------|------|--------------------------------------------------------|
//!   | 0      | 4    | len u32: the record's length (0 = end of data)         |
//!   | 4      | 4    | crc32 over first_position, event_count and the record  |
//!   | 8      | 8    | first_position u64                                     |
//!   | 16     | 4    | event_count u32                                        |
//!   | 20     | len  | record bytes                                           |
//!
//! - Index file of a sealed segment `seg-{first_position:020}.idx`:
//!
//!   | offset  | size | field                                                |
//!   |---------|------|------------------------------------------------------|
//!   | 0       | 8    | magic `EVLSIDX1`                                     |
//!   | 8       | 8    | first_position u64                                   |
//!   | 16      | 8    | last_position u64                                    |
//!   | 24      | 8    | data_end u64 (offset after the last frame)           |
//!   | 32      | 8    | entry count u64 (n)                                  |
//!   | 40      | 16·n | entries: (first_position u64, offset u64)            |
//!   | 40+16n  | 4    | crc32 of all the bytes before                        |

use std::fmt;

/// The segment header's magic.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"EVLSEG02";
/// The index file's magic.
pub(crate) const INDEX_MAGIC: &[u8; 8] = b"EVLSIDX1";
/// The segment layout version written in the header.
pub(crate) const LAYOUT_VERSION: u32 = 1;
/// Bytes of the segment header; the first frame starts here.
pub(crate) const HEADER_LEN: u64 = 64;
/// Bytes of a frame header.
pub(crate) const FRAME_HEADER_LEN: u64 = 20;
/// The largest record a frame may hold.
pub(crate) const MAX_RECORD_LEN: u32 = 1 << 30;
/// Bytes of an index file without its entries (magic, four u64, crc).
pub(crate) const INDEX_FIXED_LEN: u64 = 44;
/// Bytes of one index entry.
pub(crate) const INDEX_ENTRY_LEN: u64 = 16;

const SEGMENT_SUFFIX: &str = ".evl";
const INDEX_SUFFIX: &str = ".idx";
const NAME_PREFIX: &str = "seg-";

/// Bytes that do not decode: what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn malformed(detail: impl Into<String>) -> Malformed {
    Malformed(detail.into())
}

/// What a file name in the segment directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `seg-{first}.evl`
    Segment,
    /// `seg-{first}.idx`
    Index,
    /// `seg-{first}.idx.tmp`, an index being written
    IndexTmp,
}

/// The segment file starting at `first_position`.
pub(crate) fn segment_name(first_position: u64) -> String {
    format!("{NAME_PREFIX}{first_position:020}{SEGMENT_SUFFIX}")
}

/// The index file of the segment starting at `first_position`.
pub(crate) fn index_name(first_position: u64) -> String {
    format!("{NAME_PREFIX}{first_position:020}{INDEX_SUFFIX}")
}

/// The temporary file an index is written to before it is renamed.
pub(crate) fn index_tmp_name(first_position: u64) -> String {
    format!("{NAME_PREFIX}{first_position:020}{INDEX_SUFFIX}.tmp")
}

/// The kind and first position of a segment directory's file; `None` for other names.
pub(crate) fn parse_name(name: &str) -> Option<(FileKind, u64)> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (digits, kind) = if let Some(d) = rest.strip_suffix(".idx.tmp") {
        (d, FileKind::IndexTmp)
    } else if let Some(d) = rest.strip_suffix(INDEX_SUFFIX) {
        (d, FileKind::Index)
    } else if let Some(d) = rest.strip_suffix(SEGMENT_SUFFIX) {
        (d, FileKind::Segment)
    } else {
        return None;
    };
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first = digits.parse::<u64>().ok()?;
    Some((kind, first))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(slice);
    Some(u32::from_be_bytes(a))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let slice = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(slice);
    Some(u64::from_be_bytes(a))
}

/// The 64-byte header at the start of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) first_position: u64,
    pub(crate) created_micros: i64,
    pub(crate) store_id: [u8; 16],
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut out = [0u8; HEADER_LEN as usize];
        out[0..8].copy_from_slice(SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&LAYOUT_VERSION.to_be_bytes());
        out[16..24].copy_from_slice(&self.first_position.to_be_bytes());
        out[24..32].copy_from_slice(&self.created_micros.to_be_bytes());
        out[32..48].copy_from_slice(&self.store_id);
        let crc = crc32fast::hash(&out[..60]);
        out[60..64].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes a header. [`HeaderError::Torn`] when the magic or the crc does not match (a
    /// header that was never completely written), [`HeaderError::Unsupported`] for an intact
    /// header of another layout version.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        let bytes = bytes
            .get(..HEADER_LEN as usize)
            .ok_or_else(|| HeaderError::Torn(malformed("shorter than a segment header")))?;
        if &bytes[0..8] != SEGMENT_MAGIC {
            return Err(HeaderError::Torn(malformed("no segment magic")));
        }
        let crc = u32_at(bytes, 60).unwrap_or_default();
        if crc32fast::hash(&bytes[..60]) != crc {
            return Err(HeaderError::Torn(malformed("segment header crc mismatch")));
        }
        let version = u32_at(bytes, 8).unwrap_or_default();
        if version != LAYOUT_VERSION {
            return Err(HeaderError::Unsupported(malformed(format!(
                "segment layout version {version}, expected {LAYOUT_VERSION}"
            ))));
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&bytes[32..48]);
        Ok(Self {
            first_position: u64_at(bytes, 16).unwrap_or_default(),
            created_micros: i64::from_be_bytes(u64_at(bytes, 24).unwrap_or_default().to_be_bytes()),
            store_id,
        })
    }
}

/// Why a segment header did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not (completely) written: the magic or the crc does not match.
    Torn(Malformed),
    /// Intact, but of a layout this code does not read.
    Unsupported(Malformed),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Torn(m) | Self::Unsupported(m) => m.fmt(f),
        }
    }
}

/// A frame's 20-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) len: u32,
    pub(crate) crc: u32,
    pub(crate) first_position: u64,
    pub(crate) event_count: u32,
}

impl FrameHeader {
    /// Decodes the first 20 bytes of `bytes` (no validation; `None` when shorter).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Self {
            len: u32_at(bytes, 0)?,
            crc: u32_at(bytes, 4)?,
            first_position: u64_at(bytes, 8)?,
            event_count: u32_at(bytes, 16)?,
        })
    }

    /// Bytes of the whole frame (header and record).
    pub(crate) fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN + u64::from(self.len)
    }

    /// The position after the frame's last event; `None` on overflow.
    pub(crate) fn next_position(&self) -> Option<u64> {
        self.first_position.checked_add(u64::from(self.event_count))
    }

    /// Whether `record` is what this header's crc covers.
    pub(crate) fn crc_matches(&self, record: &[u8]) -> bool {
        frame_crc(self.first_position, self.event_count, record) == self.crc
    }
}

/// The crc a frame stores: over first_position, event_count and the record.
pub(crate) fn frame_crc(first_position: u64, event_count: u32, record: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&first_position.to_be_bytes());
    hasher.update(&event_count.to_be_bytes());
    hasher.update(record);
    hasher.finalize()
}

/// Appends the frame of `record` to `out`. The caller checked `record.len() <= MAX_RECORD_LEN`
/// and that it is not empty; a longer record is refused here too.
pub(crate) fn encode_frame(
    first_position: u64,
    event_count: u32,
    record: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Malformed> {
    let len = u32::try_from(record.len())
        .ok()
        .filter(|&l| l <= MAX_RECORD_LEN && l > 0)
        .ok_or_else(|| malformed(format!("record of {} bytes", record.len())))?;
    out.reserve(FRAME_HEADER_LEN as usize + record.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&frame_crc(first_position, event_count, record).to_be_bytes());
    out.extend_from_slice(&first_position.to_be_bytes());
    out.extend_from_slice(&event_count.to_be_bytes());
    out.extend_from_slice(record);
    Ok(())
}

/// The index of a sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentIndex {
    pub(crate) first_position: u64,
    pub(crate) last_position: u64,
    pub(crate) data_end: u64,
    /// (first_position, offset) of sparse frames, the segment's first frame first.
    pub(crate) entries: Vec<(u64, u64)>,
}

impl SegmentIndex {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            INDEX_FIXED_LEN as usize + self.entries.len() * INDEX_ENTRY_LEN as usize,
        );
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&self.first_position.to_be_bytes());
        out.extend_from_slice(&self.last_position.to_be_bytes());
        out.extend_from_slice(&self.data_end.to_be_bytes());
        out.extend_from_slice(&(self.entries.len() as u64).to_be_bytes());
        for (position, offset) in &self.entries {
            out.extend_from_slice(&position.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes and checks an index file: its crc, and that its entries are a plausible sparse
    /// index of a segment (the first entry is the first frame at offset 64, positions and offsets
    /// increase, all below `data_end` / within `first..=last`).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        let total = bytes.len() as u64;
        if total < INDEX_FIXED_LEN {
            return Err(malformed("index shorter than its fixed part"));
        }
        if &bytes[0..8] != INDEX_MAGIC {
            return Err(malformed("no index magic"));
        }
        let count = u64_at(bytes, 32).ok_or_else(|| malformed("index cut short"))?;
        let expected_len = count
            .checked_mul(INDEX_ENTRY_LEN)
            .and_then(|n| n.checked_add(INDEX_FIXED_LEN))
            .ok_or_else(|| malformed("index entry count overflows"))?;
        if expected_len != total {
            return Err(malformed(format!(
                "index of {total} bytes holds {count} entries ({expected_len} bytes expected)"
            )));
        }
        let body_len = bytes.len() - 4;
        let crc = u32_at(bytes, body_len).ok_or_else(|| malformed("index cut short"))?;
        if crc32fast::hash(&bytes[..body_len]) != crc {
            return Err(malformed("index crc mismatch"));
        }
        let first_position = u64_at(bytes, 8).ok_or_else(|| malformed("index cut short"))?;
        let last_position = u64_at(bytes, 16).ok_or_else(|| malformed("index cut short"))?;
        let data_end = u64_at(bytes, 24).ok_or_else(|| malformed("index cut short"))?;
        let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for i in 0..count {
            let at = usize::try_from(INDEX_FIXED_LEN - 4 + i * INDEX_ENTRY_LEN)
                .map_err(|_| malformed("index too large"))?;
            let position = u64_at(bytes, at).ok_or_else(|| malformed("index cut short"))?;
            let offset = u64_at(bytes, at + 8).ok_or_else(|| malformed("index cut short"))?;
            entries.push((position, offset));
        }
        let index = Self {
            first_position,
            last_position,
            data_end,
            entries,
        };
        index.check()?;
        Ok(index)
    }

    fn check(&self) -> Result<(), Malformed> {
        if self.last_position < self.first_position {
            return Err(malformed(format!(
                "index last position {} before its first {}",
                self.last_position, self.first_position
            )));
        }
        let min_end = HEADER_LEN + FRAME_HEADER_LEN + 1;
        if self.data_end < min_end {
            return Err(malformed(format!(
                "index data end {} too small",
                self.data_end
            )));
        }
        match self.entries.first() {
            Some(&(p, o)) if p == self.first_position && o == HEADER_LEN => {}
            _ => {
                return Err(malformed(
                    "index does not start at the segment's first frame",
                ));
            }
        }
        for pair in self.entries.windows(2) {
            let ((p0, o0), (p1, o1)) = (pair[0], pair[1]);
            if p1 <= p0 || o1 <= o0 {
                return Err(malformed("index entries out of order"));
            }
        }
        if let Some(&(p, o)) = self.entries.last()
            && (p > self.last_position || o >= self.data_end)
        {
            return Err(malformed("index entry beyond the segment's end"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(1), "seg-00000000000000000001.evl");
        assert_eq!(index_name(42), "seg-00000000000000000042.idx");
        assert_eq!(
            parse_name(&segment_name(u64::MAX)),
            Some((FileKind::Segment, u64::MAX))
        );
        assert_eq!(parse_name(&index_name(7)), Some((FileKind::Index, 7)));
        assert_eq!(
            parse_name(&index_tmp_name(7)),
            Some((FileKind::IndexTmp, 7))
        );
        assert_eq!(parse_name("seg-1.evl"), None);
        assert_eq!(parse_name("seg-0000000000000000000x.evl"), None);
        assert_eq!(parse_name("seg-99999999999999999999.evl"), None); // > u64::MAX
        assert_eq!(parse_name("other.txt"), None);
        assert_eq!(parse_name("seg-00000000000000000001.evl.bak"), None);
    }

    #[test]
    fn header_round_trip_and_layout() {
        let header = SegmentHeader {
            first_position: 0x0102_0304_0506_0708,
            created_micros: -5,
            store_id: [9; 16],
        };
        let bytes = header.encode();
        assert_eq!(&bytes[0..8], b"EVLSEG02");
        assert_eq!(&bytes[8..12], &[0, 0, 0, 1]);
        assert_eq!(&bytes[12..16], &[0, 0, 0, 0]);
        assert_eq!(&bytes[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[32..48], &[9; 16]);
        assert_eq!(&bytes[48..60], &[0; 12]);
        assert_eq!(
            u32::from_be_bytes(bytes[60..64].try_into().unwrap()),
            crc32fast::hash(&bytes[..60])
        );
        assert_eq!(SegmentHeader::decode(&bytes).unwrap(), header);
    }

    #[test]
    fn header_damage_is_torn() {
        let bytes = SegmentHeader {
            first_position: 1,
            created_micros: 0,
            store_id: [0; 16],
        }
        .encode();
        for i in 0..64 {
            let mut damaged = bytes;
            damaged[i] ^= 0x40;
            assert!(matches!(
                SegmentHeader::decode(&damaged),
                Err(HeaderError::Torn(_))
            ));
        }
        assert!(matches!(
            SegmentHeader::decode(&[0u8; 64]),
            Err(HeaderError::Torn(_))
        ));
        assert!(matches!(
            SegmentHeader::decode(&bytes[..63]),
            Err(HeaderError::Torn(_))
        ));
        // An intact header of another version.
        let mut other = bytes;
        other[11] = 2;
        let crc = crc32fast::hash(&other[..60]);
        other[60..64].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            SegmentHeader::decode(&other),
            Err(HeaderError::Unsupported(_))
        ));
    }

    #[test]
    fn frame_round_trip_and_layout() {
        let mut out = Vec::new();
        encode_frame(0x10, 3, b"abc", &mut out).unwrap();
        assert_eq!(out.len(), 23);
        assert_eq!(&out[0..4], &[0, 0, 0, 3]);
        assert_eq!(&out[8..16], &[0, 0, 0, 0, 0, 0, 0, 0x10]);
        assert_eq!(&out[16..20], &[0, 0, 0, 3]);
        assert_eq!(&out[20..], b"abc");
        let header = FrameHeader::decode(&out).unwrap();
        assert_eq!(header.len, 3);
        assert_eq!(header.first_position, 0x10);
        assert_eq!(header.event_count, 3);
        assert_eq!(header.frame_len(), 23);
        assert_eq!(header.next_position(), Some(0x13));
        assert!(header.crc_matches(b"abc"));
        assert!(!header.crc_matches(b"abd"));
        // The crc covers the position and the count too.
        let mut moved = header;
        moved.first_position = 0x11;
        assert!(!moved.crc_matches(b"abc"));
        moved = header;
        moved.event_count = 2;
        assert!(!moved.crc_matches(b"abc"));
        assert!(FrameHeader::decode(&out[..19]).is_none());
        assert!(encode_frame(1, 1, b"", &mut out).is_err());
        let overflowing = FrameHeader {
            len: 1,
            crc: 0,
            first_position: u64::MAX,
            event_count: 1,
        };
        assert_eq!(overflowing.next_position(), None);
    }

    fn sample_index() -> SegmentIndex {
        SegmentIndex {
            first_position: 10,
            last_position: 99,
            data_end: 5000,
            entries: vec![(10, 64), (40, 2000), (80, 4000)],
        }
    }

    #[test]
    fn index_round_trip_and_layout() {
        let index = sample_index();
        let bytes = index.encode();
        assert_eq!(bytes.len(), 44 + 3 * 16);
        assert_eq!(&bytes[0..8], b"EVLSIDX1");
        assert_eq!(&bytes[32..40], &3u64.to_be_bytes());
        assert_eq!(&bytes[40..48], &10u64.to_be_bytes());
        assert_eq!(&bytes[48..56], &64u64.to_be_bytes());
        assert_eq!(SegmentIndex::decode(&bytes).unwrap(), index);
    }

    #[test]
    fn index_damage_is_refused() {
        let bytes = sample_index().encode();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            assert!(SegmentIndex::decode(&damaged).is_err(), "byte {i}");
        }
        for cut in 0..bytes.len() {
            assert!(SegmentIndex::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        // A count that overflows the length computation.
        let mut huge = bytes.clone();
        huge[32..40].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(SegmentIndex::decode(&huge).is_err());
    }

    #[test]
    fn index_structure_is_checked() {
        let bad = [
            SegmentIndex {
                entries: vec![],
                ..sample_index()
            },
            SegmentIndex {
                entries: vec![(11, 64)],
                ..sample_index()
            },
            SegmentIndex {
                entries: vec![(10, 64), (40, 2000), (30, 4000)],
                ..sample_index()
            },
            SegmentIndex {
                entries: vec![(10, 64), (40, 6000)],
                ..sample_index()
            },
            SegmentIndex {
                last_position: 9,
                ..sample_index()
            },
            SegmentIndex {
                data_end: 64,
                ..sample_index()
            },
        ];
        for index in bad {
            assert!(SegmentIndex::decode(&index.encode()).is_err(), "{index:?}");
        }
    }
}
