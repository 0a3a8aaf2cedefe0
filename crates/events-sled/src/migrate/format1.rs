//! The files of a format-1 store outside sled, which a migration reads (never writes): the
//! durability journal and the durable mark. The builds that wrote them are the only reference for
//! these layouts (`git show f916ac0:crates/events-sled/src/journal.rs`, `…/mark.rs`).
//!
//! ## Journal
//!
//! In durable mode each group's record was written to one of `<store>/journal/journal-{a,b}.wal`
//! and `fdatasync`ed before the group was acknowledged; sled got it without waiting for a flush.
//! A file is `"EVLJRNL1" · epoch u64 BE`, then entries from byte 16:
//! `len u32 BE · crc32 u32 BE · epoch u64 BE · (record_len u32 BE · record bytes)*`, `len`
//! counting the bytes after the CRC, which covers them. A new epoch (after each sled flush)
//! rewrote the header, retiring every older entry at once. Only the intact entries of the file's
//! current epoch count; in each file the first entry that is torn, damaged, zero or of another
//! epoch ends them (it was never acknowledged) — unless an intact entry of the current epoch
//! follows it: that is damage, and acknowledged appends would be lost.
//!
//! ## Durable mark
//!
//! `<store>/durable.mark`, written after every sled flush: two 64-byte slots, written alternately,
//! `"EVLMARK1" · sequence u64 BE · position u64 BE · hash [32] · crc32 u32 BE · 4 zero bytes`, the
//! CRC covering the 56 bytes before it; the intact slot with the higher sequence is the mark.
//! Before each flush the same sequence was written into sled (`M flushseq`, u64 BE), so sled must
//! have reached the mark's sequence, and the log the mark's position with the same chain hash.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::checkpoint::{invalid, io_error};
use crate::error::CheckpointError;
use crate::record::{Hash, Record};

const JOURNAL_FILES: [&str; 2] = ["journal/journal-a.wal", "journal/journal-b.wal"];
const JOURNAL_MAGIC: &[u8; 8] = b"EVLJRNL1";
/// What every version of the journal's magic starts with: a file of another version is refused,
/// not taken for one without entries.
const JOURNAL_MAGIC_PREFIX: &[u8; 7] = b"EVLJRNL";
const JOURNAL_HEADER_LEN: usize = 16;
const ENTRY_HEADER_LEN: usize = 16;

const MARK_FILE: &str = "durable.mark";
const MARK_MAGIC: &[u8; 8] = b"EVLMARK1";
const MARK_SLOT: usize = 64;
/// The `log` tree key of the last flush's sequence.
const FLUSH_SEQUENCE_KEY: &[u8] = b"Mflushseq";

/// What the last sled flush made durable, by the durable mark.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    sequence: u64,
    pub(super) position: u64,
    hash: Hash,
}

/// A format-1 store's files outside sled, as read (under sled's lock, with its sled directory).
#[derive(Debug)]
pub(super) struct Files {
    /// Each journal file's path and bytes (none for a missing file).
    journals: Vec<(PathBuf, Vec<u8>)>,
    mark: Option<Mark>,
}

/// The bytes of `path`; `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error(path)(source)),
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl Files {
    /// Reads the journal files and the durable mark of the store at `store`.
    pub(super) fn read(store: &Path) -> Result<Self, CheckpointError> {
        let mut journals = Vec::new();
        for name in JOURNAL_FILES {
            let path = store.join(name);
            if let Some(bytes) = read_optional(&path)? {
                journals.push((path, bytes));
            }
        }
        let mark = read_optional(&store.join(MARK_FILE))?.and_then(|bytes| {
            [bytes.get(..MARK_SLOT), bytes.get(MARK_SLOT..2 * MARK_SLOT)]
                .into_iter()
                .flatten()
                .filter_map(decode_mark)
                .max_by_key(|mark| mark.sequence)
        });
        Ok(Self { journals, mark })
    }

    /// The durable mark; `None` when there is none (a store in buffered mode or older than the
    /// mark) or neither slot is intact.
    pub(super) fn mark(&self) -> Option<Mark> {
        self.mark
    }

    /// The records of both journal files' current-epoch intact entries, by first position. A
    /// damaged header, a file of another version, a damaged entry that an intact one follows and
    /// a record that does not decode are `Invalid` (naming `store`).
    pub(super) fn journal_records(&self, store: &Path) -> Result<Vec<Record>, CheckpointError> {
        let mut records = Vec::new();
        for (path, bytes) in &self.journals {
            let damaged = |detail: String| {
                invalid(
                    store,
                    format!("the format-1 journal file {}: {detail}", path.display()),
                )
            };
            for (offset, bytes) in journal_entries(bytes).map_err(damaged)? {
                let record = Record::parse(Bytes::copy_from_slice(bytes)).map_err(|e| {
                    damaged(format!("the record in the entry at byte {offset}: {e}"))
                })?;
                records.push(record);
            }
        }
        records.sort_by_key(Record::first_position);
        Ok(records)
    }
}

/// The body (epoch and records) of an intact entry of `epoch` at `offset`, if there is one.
fn entry_at(bytes: &[u8], offset: usize, epoch: u64) -> Option<&[u8]> {
    let len = usize::try_from(be_u32(bytes, offset)?).ok()?;
    if len < 8 {
        return None;
    }
    let body = bytes.get(offset + 8..(offset + 8).checked_add(len)?)?;
    (be_u64(body, 0)? == epoch && crc32fast::hash(body) == be_u32(bytes, offset + 4)?)
        .then_some(body)
}

/// The records of one journal file's current-epoch intact entries, in file order, each with the
/// byte offset of its entry.
fn journal_entries(bytes: &[u8]) -> Result<Vec<(usize, &[u8])>, String> {
    let header = &bytes[..bytes.len().min(JOURNAL_HEADER_LEN)];
    if header.iter().all(|&b| b == 0) {
        return Ok(Vec::new()); // never written past its header
    }
    let epoch = match (header.get(..8), be_u64(header, 8)) {
        (Some(magic), Some(epoch)) if magic == JOURNAL_MAGIC => epoch,
        (Some(magic), _) if magic.starts_with(JOURNAL_MAGIC_PREFIX) => {
            return Err(format!(
                "of journal format version {}; format 1 wrote version 1 only",
                magic[7..].escape_ascii()
            ));
        }
        _ => return Err("a damaged header: acknowledged appends in it cannot be found".into()),
    };
    let mut records = Vec::new();
    let mut offset = JOURNAL_HEADER_LEN;
    while bytes.len().saturating_sub(offset) >= ENTRY_HEADER_LEN {
        let Some(body) = entry_at(bytes, offset, epoch) else {
            // The end of this epoch's entries (zeros, an older epoch's entry, a torn write never
            // acknowledged) unless an intact entry of this epoch follows: entries were written
            // front to back, so none can follow a torn one.
            if let Some(later) =
                (offset + 1..bytes.len()).find(|&at| entry_at(bytes, at, epoch).is_some())
            {
                return Err(format!(
                    "the entry at byte {offset} is damaged, but an intact entry follows at byte \
                     {later}: acknowledged appends would be lost"
                ));
            }
            break;
        };
        let mut at = 8;
        while at < body.len() {
            let record = be_u32(body, at)
                .and_then(|len| usize::try_from(len).ok())
                .and_then(|len| body.get(at + 4..(at + 4).checked_add(len)?))
                .ok_or_else(|| format!("the entry at byte {offset} is malformed"))?;
            records.push((offset, record));
            at += 4 + record.len();
        }
        offset += 8 + body.len();
    }
    Ok(records)
}

fn decode_mark(slot: &[u8]) -> Option<Mark> {
    if slot.get(..8)? != MARK_MAGIC || crc32fast::hash(slot.get(..56)?) != be_u32(slot, 56)? {
        return None;
    }
    Some(Mark {
        sequence: be_u64(slot, 8)?,
        position: be_u64(slot, 16)?,
        hash: slot.get(24..56)?.try_into().ok()?,
    })
}

/// Refuses a format-1 log (sled's records and the journal's that continue them, ending at
/// `last_position`; `hash_at_mark` is the hash of its record ending at the mark's position, if
/// one does) that lost what the durable `mark` says was flushed, or differs from it there; `log`
/// is the copy's `log` tree.
pub(super) fn check_mark(
    store: &Path,
    log: &sled::Tree,
    mark: Option<Mark>,
    last_position: u64,
    hash_at_mark: Option<Hash>,
) -> Result<(), CheckpointError> {
    let Some(mark) = mark else {
        return Ok(());
    };
    let lost = |detail: String| CheckpointError::LostFlushedWrites {
        path: store.to_path_buf(),
        last_position,
        durable_position: mark.position,
        detail,
    };
    let flushed = match log.get(FLUSH_SEQUENCE_KEY).map_err(super::storage)? {
        Some(bytes) => be_u64(&bytes, 0)
            .filter(|_| bytes.len() == 8)
            .ok_or_else(|| {
                invalid(
                    store,
                    format!("the flush sequence is {} bytes, not 8", bytes.len()),
                )
            })?,
        None => 0,
    };
    if flushed < mark.sequence {
        return Err(lost(format!(
            "sled holds flush {flushed} of {} (its files were truncated or damaged)",
            mark.sequence
        )));
    }
    if mark.position > last_position {
        return Err(lost(
            "the log does not reach the durable mark (sled's files were truncated or damaged)"
                .into(),
        ));
    }
    if mark.position > 0 && hash_at_mark != Some(mark.hash) {
        return Err(lost(
            "the log at the durable mark's position is not what was flushed there (its hash \
             differs)"
                .into(),
        ));
    }
    Ok(())
}
