//! The durability journal: in durable mode, each group's record is written to the active one of
//! `<store>/journal/journal-{a,b}.wal` and `fdatasync`ed before the group is acknowledged, and
//! applied to sled without waiting for sled's flush. sled's own flush (`db.flush()` +
//! `fdatasync`, about 0.5 ms here) runs every `flush_interval` on the flusher thread: it swaps the
//! two files first, so the retired one holds only groups already in sled, and starts a new epoch
//! in it once sled is flushed. One `fdatasync` per group instead of a sled flush plus an
//! `fdatasync` is what makes durable appends fast; two files let the writer go on while sled
//! flushes.
//!
//! ## File layout
//!
//! `"EVLJRNL1" · epoch u64 BE` then entries from byte 16:
//! `len u32 BE · crc32 u32 BE · epoch u64 BE · (record_len u32 BE · record bytes)*` — one entry per
//! group, so a torn write loses a whole group, never part of one. `len` counts the bytes after the
//! CRC; the CRC covers them. A new epoch (after each sled flush) rewrites the header, which retires
//! every older entry at once, and writing starts again at the front: like SQLite's WAL, the file
//! is reused in place, so once it has reached the size of one flush interval's writes, an
//! `fdatasync` flushes data only, not the file's size.
//!
//! The epoch is a random number drawn for each new epoch (never the file's previous one), not a
//! counter: the bytes left behind in a reused file include event payloads, verbatim, and a payload
//! must not be able to hold intact entries of an epoch to come (with a counter it could: an
//! "intact entry of the current epoch" behind a torn one makes the open fail, and one at the end of
//! the current entries would be replayed). The layout is unchanged, so journals written before
//! (counted epochs) are read the same way, and builds that count epochs read these.
//!
//! ## Recovery
//!
//! On open, the current epoch's intact entries of both files are read (in each file, the first
//! entry that is torn, damaged, zero or of another epoch ends it: such a tail was never
//! acknowledged, since acknowledgement follows the `fdatasync`); their records are sorted by
//! position and those that continue the log exactly (next position, matching chain hash) are
//! applied to sled; records already in sled are skipped. sled is then flushed and new epochs
//! begin. A damaged entry that an intact entry of the current epoch follows, a file of another
//! format version and a damaged header are `Corrupted`: acknowledged appends would be lost.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::OpenError;
use crate::keys::log_key;
use crate::record::{Hash, Record, record_hash};

/// The journal's directory inside a store.
pub(crate) const JOURNAL_DIR: &str = "journal";
const JOURNAL_FILES: [&str; 2] = ["journal-a.wal", "journal-b.wal"];
const MAGIC: &[u8; 8] = b"EVLJRNL1";
const HEADER_LEN: u64 = 16;
const ENTRY_HEADER_LEN: usize = 16;

/// What every version of the magic starts with: a file of another version is refused, not taken
/// for one without entries.
const MAGIC_PREFIX: &[u8; 7] = b"EVLJRNL";

/// The open journal file of a durable store.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    buffer: Vec<u8>,
    epoch: u64,
    offset: u64,
}

fn journal_path(store: &Path, which: usize) -> PathBuf {
    store.join(JOURNAL_DIR).join(JOURNAL_FILES[which % 2])
}

fn header(epoch: u64) -> [u8; HEADER_LEN as usize] {
    let mut header = [0; HEADER_LEN as usize];
    header[..8].copy_from_slice(MAGIC);
    header[8..].copy_from_slice(&epoch.to_be_bytes());
    header
}

/// The epoch in a journal file's header, if the header is intact.
fn read_epoch(bytes: &[u8]) -> Option<u64> {
    let header = bytes.get(..HEADER_LEN as usize)?;
    if &header[..8] != MAGIC {
        return None;
    }
    let mut epoch = [0; 8];
    epoch.copy_from_slice(&header[8..]);
    Some(u64::from_be_bytes(epoch))
}

/// A new epoch: random (so no payload written before it can hold its entries) and never
/// `previous` (so starting it retires every entry of the file).
fn new_epoch(previous: u64) -> u64 {
    loop {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        // Version and variant bits sit in different places of the two halves: every bit of the
        // XOR is random.
        let epoch = high ^ low;
        if epoch != previous {
            return epoch;
        }
    }
}

impl Journal {
    /// Opens the journal for writing, creating it if needed, and starts a new epoch (everything in it has been replayed into sled by the time the writer starts).
    pub(crate) fn open(store: &Path, which: usize) -> std::io::Result<Self> {
        let path = journal_path(store, which);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        let mut existing = [0; HEADER_LEN as usize];
        let epoch = match file.read_exact_at(&mut existing, 0) {
            Ok(()) => read_epoch(&existing).unwrap_or(0),
            Err(_) => 0,
        };
        let mut journal = Self {
            file,
            buffer: Vec::new(),
            epoch,
            offset: HEADER_LEN,
        };
        journal.reset()?;
        if let Some(dir) = path.parent() {
            // Makes the file's creation durable.
            File::open(dir)?.sync_all()?;
        }
        Ok(journal)
    }

    /// Writes one group's records as one entry and makes it durable.
    pub(crate) fn append(&mut self, records: &[&[u8]]) -> std::io::Result<()> {
        let body_len: usize = 8 + records.iter().map(|r| 4 + r.len()).sum::<usize>();
        let len = u32::try_from(body_len).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "group too large for the journal",
            )
        })?;
        self.buffer.clear();
        self.buffer.reserve(8 + body_len);
        self.buffer.extend_from_slice(&len.to_be_bytes());
        self.buffer.extend_from_slice(&[0; 4]);
        self.buffer.extend_from_slice(&self.epoch.to_be_bytes());
        for record in records {
            self.buffer
                .extend_from_slice(&(record.len() as u32).to_be_bytes());
            self.buffer.extend_from_slice(record);
        }
        let crc = crc32fast::hash(&self.buffer[8..]);
        self.buffer[4..8].copy_from_slice(&crc.to_be_bytes());
        self.file.write_all_at(&self.buffer, self.offset)?;
        self.file.sync_data()?;
        self.offset += self.buffer.len() as u64;
        Ok(())
    }

    /// Starts a new epoch once sled holds everything in the journal durably: every older entry is
    /// retired by the header, and writing starts again at the front.
    pub(crate) fn reset(&mut self) -> std::io::Result<()> {
        self.epoch = new_epoch(self.epoch);
        self.file.write_all_at(&header(self.epoch), 0)?;
        self.file.sync_data()?;
        self.offset = HEADER_LEN;
        Ok(())
    }
}

fn corrupted(detail: String) -> OpenError {
    OpenError::Corrupted { detail }
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut array = [0; 4];
    array.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(array)
}

/// The body (epoch and records) of an intact entry of `epoch` at `offset`, if there is one.
fn entry_at(bytes: &[u8], offset: usize, epoch: u64) -> Option<&[u8]> {
    let header = bytes.get(offset..offset + 8)?;
    let len = be_u32(header) as usize;
    if len < 8 {
        return None;
    }
    let body = bytes.get(offset + 8..offset + 8 + len)?;
    let mut entry_epoch = [0; 8];
    entry_epoch.copy_from_slice(&body[..8]);
    if u64::from_be_bytes(entry_epoch) != epoch || crc32fast::hash(body) != be_u32(&header[4..]) {
        return None;
    }
    Some(body)
}

/// The epoch of a journal file about to be replayed; `None` for a file never written past its
/// header (empty, or zeros: the file was created, its header not yet written).
fn file_epoch(bytes: &[u8], path: &Path) -> Result<Option<u64>, OpenError> {
    let header = &bytes[..bytes.len().min(HEADER_LEN as usize)];
    if header.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    if let Some(epoch) = read_epoch(bytes) {
        return Ok(Some(epoch));
    }
    Err(corrupted(match header.get(..8) {
        Some(magic) if magic.starts_with(MAGIC_PREFIX) => format!(
            "journal file {} is of format version {:?}; this build reads version 1 only",
            path.display(),
            char::from(magic[7])
        ),
        _ => format!(
            "journal file {} has a damaged header: acknowledged appends in it cannot be found",
            path.display()
        ),
    }))
}

/// The records of the current epoch's intact entries in one journal file, in file order, each
/// with the byte offset of its entry (for messages). A missing file has none.
fn journal_records(path: &Path) -> Result<Vec<(usize, Vec<u8>)>, OpenError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)
                .map_err(|source| OpenError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OpenError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    let Some(epoch) = file_epoch(&bytes, path)? else {
        return Ok(Vec::new()); // never written past its header
    };
    let mut records = Vec::new();
    let mut offset = HEADER_LEN as usize;
    while bytes.len().saturating_sub(offset) >= ENTRY_HEADER_LEN {
        let Some(body) = entry_at(&bytes, offset, epoch) else {
            // The end of this epoch's entries: zeros, an older epoch's entry, or a torn write
            // (never acknowledged). Damage looks the same here, but then an intact entry of this
            // epoch follows: entries are written front to back, so none can follow a torn one.
            if let Some(later) =
                (offset + 1..bytes.len()).find(|&at| entry_at(&bytes, at, epoch).is_some())
            {
                return Err(corrupted(format!(
                    "journal entry at byte {offset} of {} is damaged, but an intact entry follows at \
                     byte {later}: acknowledged appends would be lost",
                    path.display()
                )));
            }
            break;
        };
        let len = body.len();
        let mut at = 8;
        while at < body.len() {
            let Some(len_bytes) = body.get(at..at + 4) else {
                return Err(corrupted(format!(
                    "journal entry at byte {offset} of {} is malformed",
                    path.display()
                )));
            };
            let record_len = be_u32(len_bytes) as usize;
            let Some(record) = body.get(at + 4..at + 4 + record_len) else {
                return Err(corrupted(format!(
                    "journal entry at byte {offset} of {} is malformed",
                    path.display()
                )));
            };
            records.push((offset, record.to_vec()));
            at += 4 + record_len;
        }
        offset += 8 + len;
    }
    Ok(records)
}

/// Applies to sled the journal records (from both files) that continue the log after
/// `last_position` (whose last record hashes to `chain_head`), in position order, and flushes
/// sled. Returns how many records were applied. The writer's [`Journals::open`] then starts new
/// epochs.
pub(crate) fn replay(
    store: &Path,
    db: &sled::Db,
    log: &sled::Tree,
    data_file: &File,
    mut last_position: u64,
    mut chain_head: Hash,
) -> Result<u64, OpenError> {
    let mut records = Vec::new();
    for which in 0..2 {
        let path = journal_path(store, which);
        for (offset, bytes) in journal_records(&path)? {
            let record = Record::parse(sled::IVec::from(bytes)).map_err(|e| {
                corrupted(format!(
                    "journal record at byte {offset} of {}: {e}",
                    path.display()
                ))
            })?;
            records.push(record);
        }
    }
    records.sort_by_key(Record::first_position);
    let mut applied = 0;
    for record in records {
        if record.last_position() <= last_position {
            continue; // already in sled
        }
        if Some(record.first_position()) != last_position.checked_add(1)
            || *record.prev_hash() != chain_head
        {
            return Err(corrupted(format!(
                "the journal holds positions from {} but the log ends at {last_position}",
                record.first_position()
            )));
        }
        record.check_all().map_err(|e| {
            corrupted(format!(
                "journal record for position {}: {e}",
                record.first_position()
            ))
        })?;
        log.insert(log_key(record.first_position()), record.bytes().clone())
            .map_err(OpenError::Storage)?;
        last_position = record.last_position();
        chain_head = record_hash(record.bytes());
        applied += 1;
    }
    if applied > 0 {
        db.flush().map_err(OpenError::Storage)?;
        data_file.sync_data().map_err(|source| OpenError::Io {
            path: store.join(JOURNAL_DIR),
            source,
        })?;
        tracing::info!(
            name: "event_store_journal_replayed",
            records = applied,
            last_position,
            "journal replayed into the log"
        );
    }
    // Retire what was replayed, whatever mode the store opens in next.
    for which in 0..2 {
        let path = journal_path(store, which);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(OpenError::Io { path, source }),
        };
        let mut existing = [0; HEADER_LEN as usize];
        let epoch = file
            .read_exact_at(&mut existing, 0)
            .ok()
            .and_then(|()| read_epoch(&existing))
            .unwrap_or(0);
        file.write_all_at(&header(new_epoch(epoch)), 0)
            .and_then(|()| file.sync_data())
            .map_err(|source| OpenError::Io { path, source })?;
    }
    Ok(applied)
}

/// The two journal files of a durable store: the writer appends to the active one; a sled flush
/// swaps them (under the same lock the writer holds from a group's journal entry to its sled
/// insert, so everything in the retired file is in sled), flushes sled, then starts a new epoch
/// in the retired file.
#[derive(Debug)]
pub(crate) struct Journals {
    pub(crate) active: Journal,
    pub(crate) spare: Journal,
}

impl Journals {
    pub(crate) fn open(store: &Path) -> std::io::Result<Self> {
        Ok(Self {
            active: Journal::open(store, 0)?,
            spare: Journal::open(store, 1)?,
        })
    }

    pub(crate) fn swap(&mut self) {
        std::mem::swap(&mut self.active, &mut self.spare);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{GENESIS, encode_record};
    use events_core::{EventContext, NewEvent};

    fn record(prev: &Hash, first: u64, n: u64) -> Vec<u8> {
        let events: Vec<_> = (0..n)
            .map(|i| {
                NewEvent::from_parts(
                    "done",
                    "thing",
                    "t-1",
                    1,
                    vec![1, 2, 3],
                    EventContext::new("t"),
                )
                .into_recorded(first + i, first + i)
            })
            .collect();
        encode_record(prev, &events)
    }

    fn sled_at(dir: &Path) -> (sled::Db, sled::Tree, File) {
        let db = sled::Config::new().path(dir.join("data")).open().unwrap();
        let log = db.open_tree("log").unwrap();
        let data_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("data").join("db"))
            .unwrap();
        (db, log, data_file)
    }

    #[test]
    fn entries_not_yet_in_sled_are_replayed_and_the_journal_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let (db, log, data_file) = sled_at(dir.path());
        let first = record(&GENESIS, 1, 3);
        let second = record(&record_hash(&first), 4, 2);
        // The first group reached sled, the second only the journal.
        log.insert(log_key(1), first.clone()).unwrap();
        let mut journal = Journal::open(dir.path(), 0).unwrap();
        journal.append(&[&first]).unwrap();
        journal.append(&[&second]).unwrap();
        let applied = replay(dir.path(), &db, &log, &data_file, 3, record_hash(&first)).unwrap();
        assert_eq!(applied, 1);
        assert_eq!(
            log.get(log_key(4)).unwrap().unwrap().as_ref(),
            second.as_slice()
        );
        // A new writer starts a new epoch: nothing is replayed twice.
        drop(journal);
        let _journal = Journal::open(dir.path(), 0).unwrap();
        let again = replay(dir.path(), &db, &log, &data_file, 5, record_hash(&second)).unwrap();
        assert_eq!(again, 0);
    }

    #[test]
    fn a_torn_tail_is_dropped_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (db, log, data_file) = sled_at(dir.path());
        let first = record(&GENESIS, 1, 2);
        let second = record(&record_hash(&first), 3, 2);
        let third = record(&record_hash(&second), 5, 2);
        let mut journal = Journal::open(dir.path(), 0).unwrap();
        journal.append(&[&first]).unwrap();
        // One group of two records, torn in the middle of the second.
        journal.append(&[&second, &third]).unwrap();
        // Tear the second entry: zero its last bytes, as a write cut short would leave them.
        let path = journal_path(dir.path(), 0);
        let torn_end = HEADER_LEN as usize
            + (ENTRY_HEADER_LEN + 4 + first.len())
            + (ENTRY_HEADER_LEN + 8 + second.len() + third.len());
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&[0; 10], (torn_end - 10) as u64)
            .unwrap();
        let applied = replay(dir.path(), &db, &log, &data_file, 0, GENESIS).unwrap();
        assert_eq!(applied, 1, "only the complete first group");
        assert!(
            log.get(log_key(3)).unwrap().is_none(),
            "no part of the torn group"
        );
    }

    #[test]
    fn entries_of_an_earlier_epoch_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (db, log, data_file) = sled_at(dir.path());
        let first = record(&GENESIS, 1, 2);
        let mut journal = Journal::open(dir.path(), 0).unwrap();
        journal.append(&[&first]).unwrap();
        journal.reset().unwrap();
        assert_eq!(
            replay(dir.path(), &db, &log, &data_file, 0, GENESIS).unwrap(),
            0
        );
        assert!(log.get(log_key(1)).unwrap().is_none());
    }

    /// A journal as builds before random epochs left it after a crash: epoch 7 (a counter), with
    /// an entry sled does not hold yet.
    #[test]
    fn a_journal_with_a_counted_epoch_is_replayed_and_retired() {
        let dir = tempfile::tempdir().unwrap();
        let (db, log, data_file) = sled_at(dir.path());
        let first = record(&GENESIS, 1, 2);
        let path = journal_path(dir.path(), 0);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = File::create(&path).unwrap();
        file.write_all_at(&header(7), 0).unwrap();
        let mut journal = Journal {
            file,
            buffer: Vec::new(),
            epoch: 7,
            offset: HEADER_LEN,
        };
        journal.append(&[&first]).unwrap();
        drop(journal);
        assert_eq!(
            replay(dir.path(), &db, &log, &data_file, 0, GENESIS).unwrap(),
            1
        );
        assert_eq!(
            log.get(log_key(1)).unwrap().unwrap().as_ref(),
            first.as_slice()
        );
        let epoch = read_epoch(&std::fs::read(&path).unwrap()).unwrap();
        assert_ne!(epoch, 7, "replaying retires the entry");
        assert!(journal_records(&path).unwrap().is_empty());
    }

    #[test]
    fn each_epoch_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 0).unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            assert!(seen.insert(journal.epoch), "epoch {} again", journal.epoch);
            journal.reset().unwrap();
        }
        // Not a counter: the epochs to come cannot be told from the ones seen.
        let mut sorted: Vec<u64> = seen.into_iter().collect();
        sorted.sort_unstable();
        assert!(sorted.windows(2).any(|pair| pair[1] - pair[0] > 1 << 32));
    }

    #[test]
    fn a_journal_file_of_another_version_or_with_a_damaged_header_is_refused() {
        for (magic, expected) in [
            (b"EVLJRNL2", "format version '2'"),
            (b"EVLJRNLX", "format version 'X'"),
            (b"EVLJRML1", "damaged header"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (db, log, data_file) = sled_at(dir.path());
            let mut journal = Journal::open(dir.path(), 0).unwrap();
            journal.append(&[&record(&GENESIS, 1, 1)]).unwrap();
            journal.file.write_all_at(magic, 0).unwrap();
            match replay(dir.path(), &db, &log, &data_file, 0, GENESIS) {
                Err(OpenError::Corrupted { detail }) => {
                    assert!(detail.contains(expected), "{detail}");
                }
                other => panic!("{magic:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_journal_file_never_written_past_its_header_has_no_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(dir.path(), 0);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for bytes in [&[][..], &[0; 10], &[0; 64]] {
            std::fs::write(&path, bytes).unwrap();
            assert!(journal_records(&path).unwrap().is_empty());
        }
    }

    #[test]
    fn a_journal_that_skips_ahead_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (db, log, data_file) = sled_at(dir.path());
        let late = record(&GENESIS, 10, 1);
        let mut journal = Journal::open(dir.path(), 0).unwrap();
        journal.append(&[&late]).unwrap();
        assert!(matches!(
            replay(dir.path(), &db, &log, &data_file, 0, GENESIS),
            Err(OpenError::Corrupted { .. })
        ));
    }
}
