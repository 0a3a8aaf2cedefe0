//! A format-1 store (the log's records in sled, `L` · position keys) is refused by `Store::open`
//! with the command that migrates it, and `migrate_store` copies it into a new store: records
//! byte for byte (the chain head carries over), the snapshots and consumers the records cover,
//! the old store left byte for byte as it was, and the acknowledged appends of its journal that
//! sled did not hold yet. Damage (in sled or the journal), a durable mark the log does not reach
//! and other formats are refused with typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use events_core::{EventContext, NewEvent, RecordedEvent};
use events_sled::fuzz::{
    consumer_value, encode_chained_record, export_format_1, log_key, record_hash, snapshot_entry,
    with_raw_sled,
};
use events_sled::{
    CheckpointError, OpenError, Store, StoreConfig, migrate_store, verify_checkpoint,
};
use omni_domain::CacheHit;

const STORE_ID: [u8; 16] = [7; 16];

/// A cache-hit event of aggregate `cache/id` at `version` and `position`. (Not `common`'s
/// helpers: that module does not build while the segment layer is a stub.)
fn hit(id: &str, version: u64, position: u64) -> RecordedEvent {
    NewEvent::from_event(
        id,
        &CacheHit {
            cache_key: format!("key-{position}"),
            cache_type: "memory".into(),
            response_time: position as f64,
        },
        EventContext::new("test"),
    )
    .unwrap()
    .into_recorded(version, position)
}

/// What a hand-made format-1 store holds.
struct Old {
    path: PathBuf,
    /// The hex hash of the last record.
    chain_head: String,
    /// The hash of each record, in order (before `edit`).
    hashes: Vec<[u8; 32]>,
}

fn hex(hash: &[u8]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The records of the format-1 log: `(aggregate id, version)` per event, in position order,
/// grouped into records.
const RECORDS: &[&[(&str, u64)]] = &[
    &[("a", 1), ("a", 2), ("b", 1)],
    &[("c", 1), ("a", 3)],
    &[("b", 2)],
];

/// Builds a format-1 store at `dir/name`: three aggregates in three chained records, a snapshot
/// of `a` at version 2 (kept) and one of `b` at version 5 (beyond its events: left out), a
/// consumer at position 5 (kept) and one at 99 (beyond the log: left out). `edit` may change the
/// records' bytes before they are stored.
fn format_1_store(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Old {
    let path = dir.join(name);
    let mut records = Vec::new();
    let mut prev = [0_u8; 32];
    let mut position = 1;
    let mut hashes = Vec::new();
    for record in RECORDS {
        let events: Vec<_> = record
            .iter()
            .map(|(id, version)| {
                let event = hit(id, *version, position);
                position += 1;
                event
            })
            .collect();
        let bytes = encode_chained_record(&prev, &events);
        prev = record_hash(&bytes);
        hashes.push(prev);
        records.push(bytes);
    }
    let chain_head = hex(&prev);
    edit(&mut records);
    with_raw_sled(&path, |db| {
        let log = db.open_tree("log")?;
        log.insert(b"Mformat", &1_u32.to_be_bytes())?;
        log.insert(b"Mstoreid", &STORE_ID)?;
        let mut first = 1;
        for (record, events) in records.iter().zip(RECORDS) {
            log.insert(log_key(first), record.as_slice())?;
            first += events.len() as u64;
        }
        let snapshots = db.open_tree("snapshots")?;
        for (id, version) in [("a", 2), ("b", 5)] {
            let (key, value) =
                snapshot_entry("cache", id, version, 1, 1_700_000_000_000_000, b"state");
            snapshots.insert(key, value)?;
        }
        let consumers = db.open_tree("consumers")?;
        consumers.insert("projection", consumer_value(5, b"folded"))?;
        consumers.insert("ahead", consumer_value(99, b"too far"))?;
        Ok(())
    })
    .unwrap();
    Old {
        path,
        chain_head,
        hashes,
    }
}

/// Every file below `dir`, with the hash of its content.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    blake3::hash(&bytes).to_hex().to_string(),
                );
            }
        }
    }
    out
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn opening_a_format_1_store_names_the_migrate_command() {
    let dir = tempfile::tempdir().unwrap();
    let old = format_1_store(dir.path(), "old", |_| {});
    match Store::open(StoreConfig::new(&old.path)) {
        Err(error @ OpenError::NeedsMigration { found: 1, .. }) => {
            let message = error.to_string();
            assert!(message.contains("events-dump migrate"), "{message}");
            assert!(
                message.contains(&old.path.display().to_string()),
                "{message}"
            );
        }
        other => panic!("a format-1 store opened as {other:?}"),
    }
}

#[test]
fn the_migration_checkpoint_holds_the_records_and_what_they_cover() {
    // Runs without the segment layer: the checkpoint a migration imports, verified on its own.
    let dir = tempfile::tempdir().unwrap();
    let old = format_1_store(dir.path(), "old", |_| {});
    let before = hashes(&old.path);
    let file = dir.path().join("old.evlc");
    let manifest = export_format_1(&old.path, &file).unwrap();
    assert_eq!(hashes(&old.path), before, "the old store was modified");
    assert_eq!(
        names(dir.path()),
        ["old", "old.evlc"],
        "the sled copy is left"
    );
    assert_eq!(verify_checkpoint(&file).unwrap(), manifest);
    assert_eq!(
        (
            manifest.last_position,
            manifest.event_count,
            manifest.records
        ),
        (6, 6, 3)
    );
    assert_eq!((manifest.snapshots, manifest.consumers), (1, 1));
    assert_eq!(manifest.chain_head, old.chain_head);
    assert_eq!(manifest.store_format, 1);
    assert_eq!(
        manifest.store_id.as_deref(),
        Some(
            uuid::Uuid::from_bytes(STORE_ID)
                .hyphenated()
                .to_string()
                .as_str()
        )
    );
}

/// Needs the real segment layer (the import writes the new store's segment files).
#[test]
fn migrating_builds_a_new_store_with_the_same_chain() {
    let dir = tempfile::tempdir().unwrap();
    let old = format_1_store(dir.path(), "old", |_| {});
    let new = dir.path().join("new");
    let mut calls = 0;
    let mut progress = |_: u64, _: u64| calls += 1;
    let manifest = migrate_store(&old.path, &new, Some(&mut progress)).unwrap();
    assert!(calls > 0);
    assert_eq!((manifest.last_position, manifest.records), (6, 3));
    assert_eq!((manifest.snapshots, manifest.consumers), (1, 1));
    assert_eq!(manifest.chain_head, old.chain_head);
    assert_eq!(manifest.store_format, 1);
    assert_eq!(
        names(dir.path()),
        ["new", "old"],
        "temporary files are left"
    );

    let store = Store::open(StoreConfig::new(&new)).unwrap();
    assert_eq!(store.last_position(), 6);
    assert_eq!(store.stream_version("cache", "a").unwrap(), 3);
    assert_eq!(store.stream_version("cache", "b").unwrap(), 2);
    let snapshot = store.load_snapshot("cache", "a", 1).unwrap().unwrap();
    assert_eq!(
        (snapshot.version, snapshot.state.as_slice()),
        (2, &b"state"[..])
    );
    assert!(store.load_snapshot("cache", "b", 1).unwrap().is_none());
    let consumer = store.consumer("projection").unwrap().unwrap();
    assert_eq!(
        (consumer.position, consumer.state.as_slice()),
        (5, &b"folded"[..])
    );
    assert!(store.consumer("ahead").unwrap().is_none());
    let report = store.verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.chain_head, old.chain_head);
    store.close().unwrap();
}

/// Needs the real segment layer for the migration to succeed; the old store is checked first.
#[test]
fn the_old_store_is_left_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let old = format_1_store(dir.path(), "old", |_| {});
    let before = hashes(&old.path);
    let migrated = migrate_store(&old.path, &dir.path().join("new"), None);
    assert_eq!(hashes(&old.path), before, "the old store was modified");
    migrated.unwrap();
    assert_eq!(hashes(&old.path), before);
}

#[test]
fn only_a_format_1_store_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let not_migratable = |from: &Path| match migrate_store(from, &dir.path().join("new"), None) {
        Err(CheckpointError::NotMigratable { path, found }) => {
            assert_eq!(path, from);
            found
        }
        other => panic!("{} was migrated: {other:?}", from.display()),
    };
    // A store of this build's format.
    let current = dir.path().join("current");
    with_raw_sled(&current, |db| {
        db.open_tree("log")?
            .insert(b"Mformat", &2_u32.to_be_bytes())?;
        Ok(())
    })
    .unwrap();
    assert_eq!(not_migratable(&current), Some(2));
    // A sled directory without a store format, and a directory without a store.
    let empty = dir.path().join("empty");
    with_raw_sled(&empty, |_| Ok(())).unwrap();
    assert_eq!(not_migratable(&empty), None);
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    assert_eq!(not_migratable(&plain), None);
    assert!(
        !plain.join("data").exists(),
        "refusing must not create a store"
    );
    let message = migrate_store(&current, &dir.path().join("new"), None)
        .unwrap_err()
        .to_string();
    assert!(message.contains("format 2"), "{message}");
    // Nothing at all.
    match migrate_store(&dir.path().join("missing"), &dir.path().join("new"), None) {
        Err(CheckpointError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("a missing store: {other:?}"),
    }
    assert_eq!(names(dir.path()), ["current", "empty", "plain"]);
}

#[test]
fn a_damaged_record_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    // A byte of the second record's last event (its payload), so the record still decodes: the
    // third record's link in the chain no longer matches.
    let old = format_1_store(dir.path(), "old", |records| {
        let record = &mut records[1];
        let at = record.len() - 3;
        record[at] ^= 0x40;
    });
    let before = hashes(&old.path);
    match migrate_store(&old.path, &dir.path().join("new"), None) {
        Err(CheckpointError::Invalid { path, detail }) => {
            assert_eq!(path, old.path);
            assert!(detail.contains("hash chain broken"), "{detail}");
        }
        other => panic!("a damaged store was migrated: {other:?}"),
    }
    assert_eq!(hashes(&old.path), before);
    assert_eq!(names(dir.path()), ["old"], "temporary files are left");
}

#[test]
fn a_record_that_does_not_decode_or_leaves_a_gap_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = format_1_store(dir.path(), "truncated", |records| {
        records[0].truncate(40);
    });
    let gap = format_1_store(dir.path(), "gap", |records| {
        records.remove(1);
    });
    for (old, expected) in [(truncated, "log record"), (gap, "its key says")] {
        match migrate_store(&old.path, &dir.path().join("new"), None) {
            Err(CheckpointError::Invalid { detail, .. }) => {
                assert!(detail.contains(expected), "{detail}");
            }
            other => panic!("a damaged store was migrated: {other:?}"),
        }
    }
}

#[test]
fn a_store_in_use_is_refused_and_the_target_must_be_empty() {
    let dir = tempfile::tempdir().unwrap();
    let old = format_1_store(dir.path(), "old", |_| {});
    {
        let _held = sled::Config::new()
            .path(old.path.join("data"))
            .segment_size(1 << 20)
            .open()
            .unwrap();
        match migrate_store(&old.path, &dir.path().join("new"), None) {
            Err(CheckpointError::Open(OpenError::Locked { path })) => assert_eq!(path, old.path),
            other => panic!("a store in use was migrated: {other:?}"),
        }
    }
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("something"), b"x").unwrap();
    assert!(matches!(
        migrate_store(&old.path, &full, None),
        Err(CheckpointError::TargetNotEmpty { .. })
    ));
}

/// A format-1 journal file (`journal-{a,b}.wal`) in the layout format-1 builds wrote:
/// `"EVLJRNL1" · epoch u64 BE`, then each entry `len u32 BE · crc32 u32 BE · entry epoch u64 BE ·
/// (record_len u32 BE · record)*` (`len` counts the bytes after the CRC, which covers them).
/// `entries` are `(entry epoch, records)`.
fn journal_file(epoch: u64, entries: &[(u64, &[&[u8]])]) -> Vec<u8> {
    let mut file = b"EVLJRNL1".to_vec();
    file.extend_from_slice(&epoch.to_be_bytes());
    for (entry_epoch, records) in entries {
        let mut body = entry_epoch.to_be_bytes().to_vec();
        for record in *records {
            body.extend_from_slice(&(record.len() as u32).to_be_bytes());
            body.extend_from_slice(record);
        }
        file.extend_from_slice(&(body.len() as u32).to_be_bytes());
        file.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        file.extend_from_slice(&body);
    }
    file
}

fn write_journal(store: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(store.join("journal")).unwrap();
    std::fs::write(store.join("journal").join(name), bytes).unwrap();
}

/// Writes a format-1 durable mark (`durable.mark`): its first 64-byte slot `"EVLMARK1" ·
/// sequence u64 BE · position u64 BE · hash · crc32 u32 BE of the 56 bytes before · 4 zero
/// bytes`, the second slot torn (zeros); and sled's flush sequence (`M flushseq`).
fn write_mark(store: &Path, sequence: u64, position: u64, hash: [u8; 32], flushed: u64) {
    let mut slot = b"EVLMARK1".to_vec();
    slot.extend_from_slice(&sequence.to_be_bytes());
    slot.extend_from_slice(&position.to_be_bytes());
    slot.extend_from_slice(&hash);
    slot.extend_from_slice(&crc32fast::hash(&slot).to_be_bytes());
    slot.resize(128, 0);
    std::fs::write(store.join("durable.mark"), slot).unwrap();
    with_raw_sled(store, |db| {
        db.open_tree("log")?
            .insert(b"Mflushseq", &flushed.to_be_bytes())?;
        Ok(())
    })
    .unwrap();
}

/// A record of one event of `cache/b` at `version` and `position`, following `prev`.
fn b_record(prev: &[u8; 32], version: u64, position: u64) -> Vec<u8> {
    encode_chained_record(prev, &[hit("b", version, position)])
}

#[test]
fn acknowledged_appends_only_in_the_journal_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    // sled holds the first two records (positions 1..=5): the third, and a fourth, were
    // acknowledged from the journal only, then the process was killed.
    let (mut second, mut third) = (Vec::new(), Vec::new());
    let old = format_1_store(dir.path(), "old", |records| {
        third = records.pop().unwrap();
        second = records[1].clone();
    });
    let fourth = b_record(&record_hash(&third), 3, 7);
    let fifth = b_record(&record_hash(&fourth), 4, 8);
    // journal-a, epoch 41: the second record (sled holds it: skipped), the third and fourth (one
    // group of two records), then an entry torn by the kill (never acknowledged: dropped).
    let mut a = journal_file(41, &[(41, &[&second]), (41, &[&third, &fourth])]);
    let torn = journal_file(41, &[(41, &[&fifth])]);
    a.extend_from_slice(&torn[16..torn.len() - 20]);
    write_journal(&old.path, "journal-a.wal", &a);
    // journal-b, epoch 9: an entry of an earlier epoch (retired by the header) that would not
    // continue the log.
    let stale = b_record(&[3; 32], 9, 99);
    write_journal(
        &old.path,
        "journal-b.wal",
        &journal_file(9, &[(8, &[&stale])]),
    );
    // The last sled flush made positions 1..=5 durable.
    write_mark(&old.path, 3, 5, old.hashes[1], 3);
    let before = hashes(&old.path);

    let file = dir.path().join("old.evlc");
    let manifest = export_format_1(&old.path, &file).unwrap();
    assert_eq!(verify_checkpoint(&file).unwrap(), manifest);
    assert_eq!((manifest.last_position, manifest.records), (7, 4));
    assert_eq!(manifest.chain_head, hex(&record_hash(&fourth)));
    // The snapshot of `b` at version 5 is still beyond its events (version 3).
    assert_eq!((manifest.snapshots, manifest.consumers), (1, 1));

    let new = dir.path().join("new");
    let manifest = migrate_store(&old.path, &new, None).unwrap();
    assert_eq!((manifest.last_position, manifest.records), (7, 4));
    assert_eq!(hashes(&old.path), before, "the old store was modified");
    let store = Store::open(StoreConfig::new(&new)).unwrap();
    assert_eq!(store.last_position(), 7);
    assert_eq!(store.stream_version("cache", "b").unwrap(), 3);
    let report = store.verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.chain_head, hex(&record_hash(&fourth)));
    store.close().unwrap();
}

#[test]
fn journal_entries_sled_already_holds_are_ignored_and_one_that_skips_ahead_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Format-1 open skipped every journal record that ends where sled's log already reaches
    // (without comparing it with sled's): here one for positions 4..=5 that differs from sled's.
    let old = format_1_store(dir.path(), "old", |_| {});
    let other = encode_chained_record(&old.hashes[0], &[hit("c", 1, 4), hit("x", 1, 5)]);
    write_journal(
        &old.path,
        "journal-a.wal",
        &journal_file(5, &[(5, &[&other])]),
    );
    let manifest = migrate_store(&old.path, &dir.path().join("new"), None).unwrap();
    assert_eq!((manifest.last_position, manifest.records), (6, 3));
    assert_eq!(manifest.chain_head, old.chain_head);

    // A record beyond the log's end that does not continue it (a gap, or a hash that does not
    // match) was refused by format-1 open: acknowledged appends could not be applied.
    for name in ["gap", "chain"] {
        let old = format_1_store(dir.path(), name, |_| {});
        let record = match name {
            "gap" => b_record(&old.hashes[2], 3, 8),
            _ => b_record(&[1; 32], 3, 7),
        };
        write_journal(
            &old.path,
            "journal-b.wal",
            &journal_file(5, &[(5, &[&record])]),
        );
        let before = hashes(&old.path);
        match migrate_store(&old.path, &dir.path().join("refused"), None) {
            Err(CheckpointError::Invalid { path, detail }) => {
                assert_eq!(path, old.path);
                assert!(detail.contains("does not continue the log"), "{detail}");
            }
            other => panic!("{name}: a journal that skips ahead was migrated: {other:?}"),
        }
        assert_eq!(hashes(&old.path), before);
    }
    assert_eq!(names(dir.path()), ["chain", "gap", "new", "old"]);
}

#[test]
fn a_durable_mark_the_log_does_not_reach_refuses_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    // The log ends at position 6 (three records, the second for 4..=5). Each case: the mark's
    // sequence, position and hash, sled's flush sequence, the events missing.
    type Hash = fn(&Old) -> [u8; 32];
    let cases: [(&str, u64, u64, Hash, u64, u64); 4] = [
        // Flushed up to position 9: sled lost the last flush's records.
        ("ahead", 4, 9, |_| [9; 32], 4, 3),
        // sled's flush sequence never reached the mark's.
        ("sequence", 5, 6, |old| old.hashes[2], 4, 0),
        // Position 6 was flushed with another hash.
        ("hash", 4, 6, |_| [6; 32], 4, 0),
        // No record ends at position 4.
        ("inside", 4, 4, |old| old.hashes[1], 4, 0),
    ];
    for (name, sequence, position, hash, flushed, missing) in cases {
        let old = format_1_store(dir.path(), name, |_| {});
        write_mark(&old.path, sequence, position, hash(&old), flushed);
        let before = hashes(&old.path);
        let error = migrate_store(&old.path, &dir.path().join("new"), None).unwrap_err();
        let CheckpointError::LostFlushedWrites {
            path,
            last_position,
            durable_position,
            ..
        } = &error
        else {
            panic!("{name}: {error:?}");
        };
        assert_eq!(
            (path, *last_position, *durable_position),
            (&old.path, 6, position)
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("{missing} acknowledged events are missing")),
            "{name}: {message}"
        );
        assert_eq!(hashes(&old.path), before);
    }
    // The mark at the log's end with its hash: migrated.
    let old = format_1_store(dir.path(), "intact", |_| {});
    write_mark(&old.path, 4, 6, old.hashes[2], 4);
    let manifest = migrate_store(&old.path, &dir.path().join("new"), None).unwrap();
    assert_eq!(manifest.last_position, 6);
}

#[test]
fn a_damaged_journal_entry_that_an_intact_one_follows_refuses_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let old = format_1_store(dir.path(), "old", |_| {});
    let seventh = b_record(&old.hashes[2], 3, 7);
    let eighth = b_record(&record_hash(&seventh), 4, 8);
    let mut bytes = journal_file(12, &[(12, &[&seventh]), (12, &[&eighth])]);
    // A byte inside the first entry's record: its CRC no longer matches.
    bytes[16 + 16 + 4 + 10] ^= 0x01;
    write_journal(&old.path, "journal-a.wal", &bytes);
    let before = hashes(&old.path);
    match migrate_store(&old.path, &dir.path().join("new"), None) {
        Err(CheckpointError::Invalid { path, detail }) => {
            assert_eq!(path, old.path);
            assert!(
                detail.contains("journal-a.wal")
                    && detail.contains("the entry at byte 16 is damaged")
                    && detail.contains("an intact entry follows"),
                "{detail}"
            );
        }
        other => panic!("a damaged journal was migrated: {other:?}"),
    }
    assert_eq!(hashes(&old.path), before);
    assert_eq!(names(dir.path()), ["old"], "temporary files are left");

    // The same damage in the last entry is a torn tail: dropped, the rest migrated.
    let torn = format_1_store(dir.path(), "torn", |_| {});
    let seventh = b_record(&torn.hashes[2], 3, 7);
    let eighth = b_record(&record_hash(&seventh), 4, 8);
    let mut bytes = journal_file(12, &[(12, &[&seventh]), (12, &[&eighth])]);
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    write_journal(&torn.path, "journal-a.wal", &bytes);
    let manifest = migrate_store(&torn.path, &dir.path().join("new"), None).unwrap();
    assert_eq!(manifest.last_position, 7);
}
