//! `verify()` passes on a healthy store and pinpoints tampering with the log's segment files and
//! sled's indexes:
//!
//! - a payload byte altered and its frame's CRC recomputed (only the hash chain can tell): verify
//!   names the position where the chain breaks, in a sealed segment and in the active one;
//! - a record replaced by garbage under a correct CRC: reads and verify report `Corrupted` at
//!   its position, never a panic;
//! - a byte altered without recomputing the CRC: reads and verify report the CRC mismatch at the
//!   frame's position; in the active segment (which opening scans) the open is refused, since the
//!   log would end before the position sled noted as synced;
//! - a frame removed from a sealed segment: with the segment's index left as it was, opening
//!   rebuilds the index by a scan and refuses the gap; with the index forged to match, the store
//!   opens and verify reports the gap at the missing position;
//! - a damaged index page points at the wrong events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use events_sled::fuzz::{self, FrameAt};
use events_sled::{ExpectedVersion, OpenError, ReadError, Store, StoreConfig};

/// Small segments, so that the log has several sealed ones.
const SEGMENT_BYTES: u64 = 64 << 10;
/// Sealed segments the store is built with.
const SEALED: usize = 3;

fn store_config(dir: &tempfile::TempDir) -> StoreConfig {
    config(dir)
        .index_flush_events(40)
        .record_target_bytes(1024)
        .log_segment_bytes(SEGMENT_BYTES)
}

fn sealed_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".idx")
        })
        .count()
}

/// A store with `SEALED` sealed segments and about 100 appends in the active one, a snapshot,
/// verified and closed; returns the last position.
fn build(dir: &tempfile::TempDir) -> u64 {
    let store = Store::open(store_config(dir)).unwrap();
    let mut n = 0;
    let mut after_sealed = None;
    while after_sealed.is_none_or(|extra| extra > 0) {
        n += 1;
        store
            .append(ExpectedVersion::Any, vec![hit(&format!("s{}", n % 5), n)])
            .unwrap();
        // Wait until the append is written: a segment is sealed by the write that overflows it.
        store.chain_head().unwrap();
        after_sealed = match after_sealed {
            None if sealed_count(dir.path()) >= SEALED => Some(100),
            Some(extra) => Some(extra - 1),
            None => None,
        };
        assert!(
            n < 100_000,
            "the log never reached {SEALED} sealed segments"
        );
    }
    store.save_snapshot("cache", "s1", 10, 1, b"ok").unwrap();
    let report = store.verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.last_position, n);
    assert_eq!(report.aggregates, 5);
    store.close().unwrap();
    n
}

/// The segment files, oldest first (the last one is the active segment).
fn segments(dir: &tempfile::TempDir) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "evl"))
        .collect();
    files.sort();
    assert_eq!(files.len(), SEALED + 1, "{files:?}");
    files
}

fn frames_of(segment: &Path) -> Vec<FrameAt> {
    let frames = fuzz::segment_frames(&std::fs::read(segment).unwrap());
    assert!(frames.len() >= 3, "{}: {frames:?}", segment.display());
    frames
}

/// The first sealed segment and the active one.
fn sealed_and_active(dir: &tempfile::TempDir) -> [(&'static str, PathBuf); 2] {
    let files = segments(dir);
    [
        ("sealed", files[0].clone()),
        ("active", files[SEALED].clone()),
    ]
}

#[test]
fn an_altered_payload_breaks_the_chain_where_it_happened() {
    for which in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        build(&dir);
        let (kind, segment) = sealed_and_active(&dir)[which].clone();
        let frames = frames_of(&segment);
        let k = frames.len() / 2;
        let mut bytes = std::fs::read(&segment).unwrap();
        // The last byte of the record is the last payload byte of its last event: the record
        // still decodes, to different content; the frame's CRC is recomputed to match.
        bytes[frames[k].end() as usize - 1] ^= 1;
        fuzz::reseal_frame(&mut bytes, frames[k].offset).unwrap();
        std::fs::write(&segment, &bytes).unwrap();
        assert_eq!(
            fuzz::segment_frames(&bytes),
            frames,
            "every frame still intact"
        );

        let store = Store::open(store_config(&dir)).unwrap();
        let report = store.verify().unwrap();
        assert!(!report.ok, "{kind}: {report:?}");
        let chain: Vec<_> = report.issues.iter().filter(|i| i.kind == "chain").collect();
        assert_eq!(chain.len(), 1, "{kind}: {report:?}");
        assert_eq!(
            chain[0].location,
            format!("position {}", frames[k + 1].first_position),
            "{kind}: the break is at the record after the altered one"
        );
        assert_eq!(report.issue_count, 1, "{kind}: {report:?}");
        store.close().unwrap();
    }
}

#[test]
fn a_damaged_index_page_is_named() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    {
        let db = raw_sled(&dir);
        let log = db.open_tree("log").unwrap();
        let (key, _) = log.scan_prefix(b"S").next().unwrap().unwrap();
        // A well-formed page that points version 1 at position 2, which belongs elsewhere.
        log.insert(key, vec![1, 1, 2, 1]).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(store_config(&dir)).unwrap();
    let report = store.verify().unwrap();
    assert!(!report.ok);
    assert!(
        report.issues.iter().all(|i| i.kind == "stream_index"),
        "{report:?}"
    );
    assert!(report.issues[0].location.starts_with('S'));
}

/// Removes frame `k` of `segment` (later frames move down); returns the removed frame.
fn remove_frame(segment: &Path, k: usize) -> FrameAt {
    let frames = frames_of(segment);
    let removed = frames[k];
    let mut bytes = std::fs::read(segment).unwrap();
    bytes.drain(removed.offset as usize..removed.end() as usize);
    std::fs::write(segment, &bytes).unwrap();
    removed
}

#[test]
fn a_missing_record_is_a_gap() {
    // The index left as it was: it no longer fits the segment, opening rebuilds it by a scan,
    // which finds the gap in a sealed segment and refuses it.
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    let segment = segments(&dir)[1].clone();
    let removed = remove_frame(&segment, 1);
    match Store::open(store_config(&dir)) {
        Err(OpenError::Corrupted { detail }) => {
            assert!(
                detail.contains(&format!("where {} was expected", removed.first_position)),
                "{detail}"
            );
        }
        Err(e) => panic!("expected Corrupted, got {e}"),
        Ok(_) => panic!("a sealed segment with a gap was opened"),
    }

    // The index forged to match the shortened segment: the store opens (sealed segments are not
    // scanned), and verify and reads report the gap at the missing position.
    let dir = tempfile::tempdir().unwrap();
    let last = build(&dir);
    let segment = segments(&dir)[1].clone();
    let index = segment.with_extension("idx");
    let (first, last_in_segment, data_end, entries) =
        fuzz::decode_segment_index(&std::fs::read(&index).unwrap()).unwrap();
    let removed = remove_frame(&segment, 1);
    let shift = removed.end() - removed.offset;
    let entries: Vec<(u64, u64)> = entries
        .into_iter()
        .filter(|&(p, _)| p != removed.first_position)
        .map(|(p, o)| (p, if o > removed.offset { o - shift } else { o }))
        .collect();
    std::fs::write(
        &index,
        fuzz::encode_segment_index(first, last_in_segment, data_end - shift, &entries),
    )
    .unwrap();
    let store = Store::open(store_config(&dir)).unwrap();
    let report = store.verify().unwrap();
    assert!(!report.ok);
    assert_eq!(report.issues[0].kind, "log", "{report:?}");
    assert_eq!(
        report.issues[0].location,
        format!("position {}", removed.first_position),
        "{report:?}"
    );
    let read: Vec<_> = store.read_log(1, None).collect();
    assert_eq!(
        read.len() as u64,
        removed.first_position,
        "read up to the gap"
    );
    assert!(
        matches!(read.last(), Some(Err(ReadError::Corrupted { .. }))),
        "{:?}",
        read.last()
    );
    assert!(
        store
            .read_log(removed.first_position, Some(1))
            .next()
            .unwrap()
            .is_err()
    );
    assert!(store.read_log(last, Some(1)).next().unwrap().is_ok());
    store.close().unwrap();
}

#[test]
fn garbage_in_a_record_is_corruption_on_read_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    let segment = segments(&dir)[0].clone();
    let frames = frames_of(&segment);
    let k = frames.len() / 2;
    let mut bytes = std::fs::read(&segment).unwrap();
    // A record that claims many events and strings it does not hold, under a correct CRC.
    for (i, b) in bytes[frames[k].record()].iter_mut().enumerate() {
        *b = [1, 0xff, 0x7f, 200, 7][i % 5];
    }
    fuzz::reseal_frame(&mut bytes, frames[k].offset).unwrap();
    std::fs::write(&segment, &bytes).unwrap();

    let store = Store::open(store_config(&dir)).unwrap();
    let position = frames[k].first_position;
    for at in [position, frames[k].last_position()] {
        let read = store.read_log(at, Some(1)).next().unwrap();
        assert!(
            matches!(read, Err(ReadError::Corrupted { .. })),
            "position {at}: {read:?}"
        );
    }
    let all: Vec<_> = store.read_log(1, None).collect();
    assert!(matches!(all.last(), Some(Err(ReadError::Corrupted { .. }))));
    let report = store.verify().unwrap();
    assert!(!report.ok);
    assert_eq!(report.issues[0].kind, "log", "{report:?}");
    assert!(
        report.issues[0]
            .location
            .ends_with(&format!("position {position}")),
        "{report:?}"
    );
    store.close().unwrap();
}

#[test]
fn an_altered_byte_fails_its_frame_crc() {
    // In a sealed segment (not scanned on open): reads and verify report the frame.
    let dir = tempfile::tempdir().unwrap();
    build(&dir);
    let segment = segments(&dir)[0].clone();
    let frames = frames_of(&segment);
    let k = frames.len() / 2;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[frames[k].record().start + 40] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    let store = Store::open(store_config(&dir)).unwrap();
    let position = frames[k].first_position;
    let expected = format!("crc mismatch of the frame at position {position}");
    match store.read_log(position, Some(1)).next().unwrap() {
        Err(ReadError::Corrupted { detail }) => assert!(detail.contains(&expected), "{detail}"),
        other => panic!("expected Corrupted, got {other:?}"),
    }
    let report = store.verify().unwrap();
    assert!(!report.ok);
    assert_eq!(report.issues[0].kind, "log", "{report:?}");
    assert_eq!(report.issues[0].location, format!("position {position}"));
    assert!(report.issues[0].detail.contains(&expected), "{report:?}");
    store.close().unwrap();

    // In the active segment, opening scans the frames and would cut the log there: it ends
    // before the position the last flush synced, so the open is refused.
    let dir = tempfile::tempdir().unwrap();
    let last = build(&dir);
    let segment = segments(&dir)[SEALED].clone();
    let frames = frames_of(&segment);
    let k = frames.len() / 2;
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[frames[k].record().start + 40] ^= 0x10;
    std::fs::write(&segment, &bytes).unwrap();
    match Store::open(store_config(&dir)) {
        Err(OpenError::Corrupted { detail }) => {
            let missing = last - frames[k].first_position + 1;
            assert!(
                detail.contains(&format!("{missing} acknowledged events are missing")),
                "{detail}"
            );
        }
        Err(e) => panic!("expected Corrupted, got {e}"),
        Ok(_) => panic!("an active segment damaged before the synced position was opened"),
    }
    // The refused open cut nothing: the damaged frame and the acknowledged frames after it are
    // still there for a look (a repair, an export of what is intact).
    assert!(
        std::fs::read(&segment).unwrap() == bytes,
        "the refused open changed the segment"
    );
}

#[test]
fn the_chain_head_matches_verify_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let last = build(&dir);
    let store = Store::open(store_config(&dir)).unwrap();
    let head = store.chain_head().unwrap();
    assert_eq!(head.position, last);
    let report = store.verify().unwrap();
    assert_eq!(report.chain_head, head.hash);
    let (path, manifest) = store.checkpoint().unwrap();
    assert_eq!(manifest.chain_head, head.hash);
    assert!(
        path.to_string_lossy()
            .contains(&format!("{:012}", manifest.last_position)),
        "the file name carries the manifest's position: {}",
        path.display()
    );
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = open(&empty_dir);
    assert_eq!(empty.chain_head().unwrap().hash, "0".repeat(64));
}
