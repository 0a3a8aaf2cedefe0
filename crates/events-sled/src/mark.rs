//! The durable mark: `<store>/durable.mark`, written after every sled flush, records — outside
//! sled — the flush's sequence number, the position sled then holds durably and the chain hash at
//! that position. Before each flush the same sequence number is written into sled (`M flushseq`),
//! after every snapshot and consumer write that precedes the flush. sled recovers the prefix of
//! its own log before any damage to its files, so a truncated or damaged data file would otherwise
//! open as a shorter, perfectly consistent store; checked against the mark at every open (the
//! sequence in sled must have reached the mark's, the log must reach the mark's position with the
//! same hash), it is refused instead.
//!
//! ## Layout
//!
//! Two 64-byte slots, written alternately (so a torn write leaves the other intact):
//! `"EVLMARK1" · sequence u64 BE · position u64 BE · hash [32] · crc32 u32 BE · 4 zero bytes`,
//! the CRC covering the 56 bytes before it. The valid slot with the higher sequence is the mark.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::record::Hash;

const MAGIC: &[u8; 8] = b"EVLMARK1";
const SLOT: usize = 64;
const MARK_FILE: &str = "durable.mark";

/// What the last sled flush made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) sequence: u64,
    pub(crate) position: u64,
    pub(crate) hash: Hash,
}

pub(crate) fn mark_path(store: &Path) -> PathBuf {
    store.join(MARK_FILE)
}

fn encode(mark: &Mark) -> [u8; SLOT] {
    let mut slot = [0; SLOT];
    slot[..8].copy_from_slice(MAGIC);
    slot[8..16].copy_from_slice(&mark.sequence.to_be_bytes());
    slot[16..24].copy_from_slice(&mark.position.to_be_bytes());
    slot[24..56].copy_from_slice(&mark.hash);
    let crc = crc32fast::hash(&slot[..56]);
    slot[56..60].copy_from_slice(&crc.to_be_bytes());
    slot
}

fn decode(slot: &[u8]) -> Option<Mark> {
    if slot.len() < SLOT || &slot[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(slot[56..60].try_into().ok()?);
    if crc32fast::hash(&slot[..56]) != crc {
        return None;
    }
    let sequence = u64::from_be_bytes(slot[8..16].try_into().ok()?);
    let position = u64::from_be_bytes(slot[16..24].try_into().ok()?);
    let mut hash = [0; 32];
    hash.copy_from_slice(&slot[24..56]);
    Some(Mark {
        sequence,
        position,
        hash,
    })
}

/// Reads the mark; `None` when there is none (a new store, or a store older than the mark) or
/// neither slot is intact.
pub(crate) fn read(store: &Path) -> std::io::Result<Option<Mark>> {
    let bytes = match std::fs::read(mark_path(store)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let slots = [bytes.get(..SLOT), bytes.get(SLOT..2 * SLOT)];
    Ok(slots
        .into_iter()
        .flatten()
        .filter_map(decode)
        .max_by_key(|mark| mark.sequence))
}

/// Writes marks, alternating slots.
#[derive(Debug)]
pub(crate) struct MarkWriter {
    file: File,
    sequence: u64,
}

impl MarkWriter {
    pub(crate) fn open(store: &Path) -> std::io::Result<Self> {
        let path = mark_path(store);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        let mut slot = [0; SLOT];
        for at in [0, SLOT as u64] {
            if file.read_exact_at(&mut slot, at).is_ok() {
                bytes.push(slot);
            }
        }
        let sequence = bytes
            .iter()
            .filter_map(|s| decode(s))
            .map(|mark| mark.sequence)
            .max()
            .unwrap_or(0);
        Ok(Self { file, sequence })
    }

    /// The sequence number the next mark gets.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.sequence + 1
    }

    /// Records `mark` (whose sequence is [`MarkWriter::next_sequence`]) durably.
    pub(crate) fn write(&mut self, mark: &Mark) -> std::io::Result<()> {
        self.sequence = mark.sequence;
        let at = (self.sequence % 2) * SLOT as u64;
        self.file.write_all_at(&encode(mark), at)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_intact_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let mut writer = MarkWriter::open(dir.path()).unwrap();
        let first = Mark {
            sequence: writer.next_sequence(),
            position: 10,
            hash: [1; 32],
        };
        let second = Mark {
            sequence: first.sequence + 1,
            position: 20,
            hash: [2; 32],
        };
        writer.write(&first).unwrap();
        writer.write(&second).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(second));
        // A torn write of the newer slot leaves the older one.
        let path = mark_path(dir.path());
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xFF; 8], 20).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(first));
        // A reopened writer continues the sequence.
        let mut writer = MarkWriter::open(dir.path()).unwrap();
        assert_eq!(writer.next_sequence(), 2);
        let third = Mark {
            sequence: writer.next_sequence(),
            ..second
        };
        writer.write(&third).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(third));
    }
}
