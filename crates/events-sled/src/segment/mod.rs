//! STUB for compiling the integration; replaced by the segment-log branch.

pub(crate) mod vfs;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use vfs::Dir;

#[derive(Debug)]
pub(crate) struct SegmentOptions {
    pub(crate) segment_bytes: u64,
    pub(crate) store_id: [u8; 16],
    pub(crate) index_every_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SegmentError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{detail}")]
    Corrupted { detail: String },
}

#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) last_position: u64,
    pub(crate) last_record: Option<Bytes>,
    pub(crate) cut_bytes: u64,
    pub(crate) cut_frames: u64,
}

#[derive(Debug)]
pub(crate) struct SegmentLog;

#[derive(Debug)]
pub(crate) struct SegmentReader;

#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) first_position: u64,
    pub(crate) event_count: u32,
    pub(crate) record: Bytes,
}

fn stub() -> SegmentError {
    SegmentError::Corrupted {
        detail: "stub".into(),
    }
}

impl SegmentLog {
    pub(crate) fn open(
        _dir: Arc<dyn Dir>,
        _options: SegmentOptions,
    ) -> Result<(SegmentLog, Recovered), SegmentError> {
        Err(stub())
    }
    pub(crate) fn append(&self, _f: u64, _c: u32, _r: &[u8]) -> Result<(), SegmentError> {
        Err(stub())
    }
    pub(crate) fn sync(&self) -> Result<u64, SegmentError> {
        Err(stub())
    }
    pub(crate) fn last_position(&self) -> u64 {
        0
    }
    pub(crate) fn record_at(&self, _p: u64) -> Result<Bytes, SegmentError> {
        Err(stub())
    }
    pub(crate) fn reader(&self, _p: u64) -> Result<SegmentReader, SegmentError> {
        Err(stub())
    }
}

impl Iterator for SegmentReader {
    type Item = Result<Frame, SegmentError>;
    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}
