//! The durability journal: in durable mode, each group's records are appended to
//! `<store>/journal/journal.wal` and `fdatasync`ed before the group is acknowledged, and applied to
//! sled without waiting for sled's flush. sled's own flush (`db.flush()` + `fdatasync`, about
//! 0.5 ms here) then runs every `flush_interval`, after which the journal is emptied. One
//! `fdatasync` per group instead of a sled flush plus an `fdatasync` is what makes durable appends
//! fast.
//!
//! ## Entry layout
//!
//! `len u32 BE · crc32 u32 BE · (record_len u32 BE · record bytes)*` — one entry per group, so a
//! torn write loses a whole group, never part of one. `len` counts the bytes after the CRC.
//!
//! ## Recovery
//!
//! On open, entries whose records continue the log exactly (next position, matching chain hash) are
//! applied to sled; entries already in sled are skipped; a torn or damaged tail (never
//! acknowledged: acknowledgement follows the `fdatasync`) ends the replay. sled is then flushed and
//! the journal emptied.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::OpenError;
use crate::keys::log_key;
use crate::record::{Hash, Record, record_hash};

/// The journal's directory inside a store.
pub(crate) const JOURNAL_DIR: &str = "journal";
const JOURNAL_FILE: &str = "journal.wal";

/// The open journal file of a durable store.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    buffer: Vec<u8>,
    len: u64,
}

fn journal_path(store: &Path) -> PathBuf {
    store.join(JOURNAL_DIR).join(JOURNAL_FILE)
}

impl Journal {
    pub(crate) fn open(store: &Path) -> std::io::Result<Self> {
        let path = journal_path(store);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            buffer: Vec::new(),
            len,
        })
    }

    /// Appends one group's records as one entry and makes it durable.
    pub(crate) fn append(&mut self, records: &[&[u8]]) -> std::io::Result<()> {
        let body_len: usize = records.iter().map(|r| 4 + r.len()).sum();
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
        for record in records {
            self.buffer
                .extend_from_slice(&(record.len() as u32).to_be_bytes());
            self.buffer.extend_from_slice(record);
        }
        let crc = crc32fast::hash(&self.buffer[8..]);
        self.buffer[4..8].copy_from_slice(&crc.to_be_bytes());
        self.file.write_all(&self.buffer)?;
        self.file.sync_data()?;
        self.len += self.buffer.len() as u64;
        Ok(())
    }

    /// Empties the journal once sled holds everything in it durably.
    pub(crate) fn reset(&mut self) -> std::io::Result<()> {
        if self.len > 0 {
            self.file.set_len(0)?;
            self.file.sync_data()?;
            self.len = 0;
        }
        Ok(())
    }
}

fn corrupted(detail: String) -> OpenError {
    OpenError::Corrupted { detail }
}

/// Applies to sled the journal entries that continue the log after `last_position` (whose last
/// record hashes to `chain_head`), then flushes sled and empties the journal. Returns how many
/// records were applied.
pub(crate) fn replay(
    store: &Path,
    db: &sled::Db,
    log: &sled::Tree,
    data_file: &File,
    mut last_position: u64,
    mut chain_head: Hash,
) -> Result<u64, OpenError> {
    let path = journal_path(store);
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)
                .map_err(|source| OpenError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(OpenError::Io { path, source }),
    }
    let mut offset = 0;
    let mut applied = 0;
    while bytes.len() - offset >= 8 {
        let len = u32::from_be_bytes([
            bytes[offset],
            bytes[offset + 1],
            bytes[offset + 2],
            bytes[offset + 3],
        ]) as usize;
        let crc = u32::from_be_bytes([
            bytes[offset + 4],
            bytes[offset + 5],
            bytes[offset + 6],
            bytes[offset + 7],
        ]);
        let Some(body) = bytes.get(offset + 8..offset + 8 + len) else {
            break; // torn tail
        };
        if crc32fast::hash(body) != crc {
            break; // torn or damaged tail: never acknowledged
        }
        let mut records = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let Some(len_bytes) = body.get(at..at + 4) else {
                return Err(corrupted(format!(
                    "journal entry at byte {offset} is malformed"
                )));
            };
            let record_len =
                u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]])
                    as usize;
            let Some(record) = body.get(at + 4..at + 4 + record_len) else {
                return Err(corrupted(format!(
                    "journal entry at byte {offset} is malformed"
                )));
            };
            records.push(record);
            at += 4 + record_len;
        }
        let mut batch = sled::Batch::default();
        let mut entry_records = 0;
        for record_bytes in records {
            let record = Record::parse(sled::IVec::from(record_bytes))
                .map_err(|e| corrupted(format!("journal record at byte {offset}: {e}")))?;
            if record.last_position() <= last_position {
                continue; // already in sled
            }
            if record.first_position() != last_position + 1 || *record.prev_hash() != chain_head {
                return Err(corrupted(format!(
                    "the journal holds positions from {} but the log ends at {last_position}",
                    record.first_position()
                )));
            }
            record
                .check_all()
                .map_err(|e| corrupted(format!("journal record at byte {offset}: {e}")))?;
            batch.insert(&log_key(record.first_position()), record_bytes);
            last_position = record.last_position();
            chain_head = record_hash(record_bytes);
            entry_records += 1;
        }
        log.apply_batch(batch).map_err(OpenError::Storage)?;
        applied += entry_records;
        offset += 8 + len;
    }
    if applied > 0 {
        db.flush().map_err(OpenError::Storage)?;
        data_file.sync_data().map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
        tracing::info!(
            name: "event_store_journal_replayed",
            records = applied,
            last_position,
            "journal replayed into the log"
        );
    }
    let file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
    file.set_len(0)
        .and_then(|()| file.sync_data())
        .map_err(|source| OpenError::Io { path, source })?;
    Ok(applied)
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
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.append(&[&first]).unwrap();
        journal.append(&[&second]).unwrap();
        let applied = replay(dir.path(), &db, &log, &data_file, 3, record_hash(&first)).unwrap();
        assert_eq!(applied, 1);
        assert_eq!(
            log.get(log_key(4)).unwrap().unwrap().as_ref(),
            second.as_slice()
        );
        assert_eq!(
            std::fs::metadata(journal_path(dir.path())).unwrap().len(),
            0
        );
    }

    #[test]
    fn a_torn_tail_is_dropped_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (db, log, data_file) = sled_at(dir.path());
        let first = record(&GENESIS, 1, 2);
        let second = record(&record_hash(&first), 3, 2);
        let third = record(&record_hash(&second), 5, 2);
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.append(&[&first]).unwrap();
        // One group of two records, torn in the middle of the second.
        journal.append(&[&second, &third]).unwrap();
        let path = journal_path(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        let applied = replay(dir.path(), &db, &log, &data_file, 0, GENESIS).unwrap();
        assert_eq!(applied, 1, "only the complete first group");
        assert!(
            log.get(log_key(3)).unwrap().is_none(),
            "no part of the torn group"
        );
    }

    #[test]
    fn a_journal_that_skips_ahead_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (db, log, data_file) = sled_at(dir.path());
        let late = record(&GENESIS, 10, 1);
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.append(&[&late]).unwrap();
        assert!(matches!(
            replay(dir.path(), &db, &log, &data_file, 0, GENESIS),
            Err(OpenError::Corrupted { .. })
        ));
    }
}
