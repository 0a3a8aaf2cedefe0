//! Checkpoint files crafted with hostile content *and a matching file hash* (so the hash check
//! cannot be what stops them) are refused by `verify_checkpoint` and `import_checkpoint` with
//! `CheckpointError::Invalid`, never a panic and never accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use events_sled::{CheckpointError, ExpectedVersion, import_checkpoint, verify_checkpoint};

const MAGIC: &[u8; 8] = b"EVLCKPT1";
const END_MAGIC: &[u8; 8] = b"EVLCKEND";

/// A real checkpoint of a store whose first record holds 5 events, split into its sections.
fn real_sections(dir: &tempfile::TempDir) -> Vec<(u8, Vec<u8>)> {
    let store = open(dir);
    store
        .append(ExpectedVersion::Any, (1..=5).map(|i| hit("a", i)).collect())
        .unwrap();
    store
        .append(ExpectedVersion::Any, vec![hit("b", 6)])
        .unwrap();
    let file = dir.path().join("real.evlc");
    store.export_checkpoint(&file).unwrap();
    store.close().unwrap();
    let sections = checkpoint_sections(&file);
    assert_eq!(sections.last().unwrap().0, b'M');
    sections
}

/// Both readers refuse `sections` as invalid.
fn refused(dir: &tempfile::TempDir, sections: &[(u8, Vec<u8>)]) -> String {
    let file = dir.path().join("crafted.evlc");
    write_checkpoint_sections(&file, sections);
    let detail = match verify_checkpoint(&file) {
        Err(CheckpointError::Invalid { detail, .. }) => detail,
        other => panic!("verify_checkpoint accepted a crafted file: {other:?}"),
    };
    let into = dir.path().join("imported");
    match import_checkpoint(&file, &into, None) {
        Err(CheckpointError::Invalid { .. }) => {}
        other => panic!("import_checkpoint accepted a crafted file: {other:?}"),
    }
    detail
}

fn with_first_position(sections: &[(u8, Vec<u8>)], position: u64) -> Vec<(u8, Vec<u8>)> {
    let mut sections = sections.to_vec();
    // A record: format u8 · first_position u64 BE · ...
    sections[0].1[1..9].copy_from_slice(&position.to_be_bytes());
    sections
}

#[test]
fn the_assembler_reproduces_a_valid_checkpoint() {
    // Guards the tests below: an unmodified file assembled here verifies.
    let dir = tempfile::tempdir().unwrap();
    let sections = real_sections(&dir);
    let file = dir.path().join("copy.evlc");
    write_checkpoint_sections(&file, &sections);
    assert_eq!(verify_checkpoint(&file).unwrap().last_position, 6);
}

#[test]
fn a_record_out_of_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sections = with_first_position(&real_sections(&dir), 2);
    let detail = refused(&dir, &sections);
    assert!(detail.contains("expected 1"), "{detail}");
}

#[test]
fn a_manifest_that_lies_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut sections = real_sections(&dir);
    let manifest = sections.last_mut().unwrap();
    let text = String::from_utf8(manifest.1.clone()).unwrap();
    manifest.1 = text
        .replace("\"last_position\":6", "\"last_position\":7")
        .into_bytes();
    assert_ne!(manifest.1, text.as_bytes());
    let detail = refused(&dir, &sections);
    assert!(detail.contains("last position"), "{detail}");
}

#[test]
fn a_truncated_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut sections = real_sections(&dir);
    let record = &mut sections[0].1;
    record.truncate(record.len() - 3);
    refused(&dir, &sections);
}

#[test]
fn a_record_whose_positions_overflow_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sections = with_first_position(&real_sections(&dir), u64::MAX - 1);
    refused(&dir, &sections);
}

/// Found by fuzzing `checkpoint_reader`: a footer whose manifest offset is near `u64::MAX`.
#[test]
fn a_footer_pointing_past_the_end_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("footer.evlc");
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[0_u8; 32]);
    let hash = blake3::hash(&bytes);
    bytes.extend_from_slice(&(u64::MAX - 3).to_be_bytes());
    bytes.extend_from_slice(hash.as_bytes());
    bytes.extend_from_slice(END_MAGIC);
    std::fs::write(&file, bytes).unwrap();
    assert!(matches!(
        events_sled::read_manifest(&file),
        Err(CheckpointError::Invalid { .. })
    ));
    assert!(matches!(
        verify_checkpoint(&file),
        Err(CheckpointError::Invalid { .. })
    ));
    let listed = events_sled::list_checkpoints(dir.path()).unwrap();
    assert!(listed[0].problem.is_some());
}

/// A snapshot entry: `key_len varint · stream key · version u64 BE · snapshot value`.
fn snapshot_entry(aggregate_type: &str, aggregate_id: &str, version: u64) -> Vec<u8> {
    let mut key = Vec::new();
    for part in [aggregate_type, aggregate_id] {
        key.extend_from_slice(&(part.len() as u16).to_be_bytes());
        key.extend_from_slice(part.as_bytes());
    }
    key.extend_from_slice(&version.to_be_bytes());
    // format 1 · schema version 1 · created at 0 (zigzag) · state
    let value = [1, 1, 0, b's'];
    let mut entry = vec![key.len() as u8];
    entry.extend_from_slice(&key);
    entry.extend_from_slice(&value);
    entry
}

/// A consumer entry: `key_len varint · name · format 1 · position u64 BE · state`.
fn consumer_entry(name: &str, position: u64) -> Vec<u8> {
    let mut entry = vec![name.len() as u8];
    entry.extend_from_slice(name.as_bytes());
    entry.push(1);
    entry.extend_from_slice(&position.to_be_bytes());
    entry.extend_from_slice(b"state");
    entry
}

/// `sections` with `extra` inserted before the manifest, whose `count` field is set to 1.
fn with_entry(sections: &[(u8, Vec<u8>)], extra: (u8, Vec<u8>), count: &str) -> Vec<(u8, Vec<u8>)> {
    let mut sections = sections.to_vec();
    let (_, manifest) = sections.pop().unwrap();
    let text = String::from_utf8(manifest).unwrap();
    let edited = text.replace(&format!("\"{count}\":0"), &format!("\"{count}\":1"));
    assert_ne!(edited, text);
    sections.push(extra);
    sections.push((b'M', edited.into_bytes()));
    sections
}

#[test]
fn a_snapshot_within_its_aggregate_is_accepted() {
    // Guards the two tests below: the crafted entries are well formed.
    let dir = tempfile::tempdir().unwrap();
    let real = real_sections(&dir);
    let sections = with_entry(&real, (b'S', snapshot_entry("cache", "a", 5)), "snapshots");
    let sections = with_entry(&sections, (b'C', consumer_entry("p", 6)), "consumers");
    let file = dir.path().join("within.evlc");
    write_checkpoint_sections(&file, &sections);
    let manifest = verify_checkpoint(&file).unwrap();
    assert_eq!((manifest.snapshots, manifest.consumers), (1, 1));
}

#[test]
fn a_snapshot_ahead_of_its_aggregate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = real_sections(&dir);
    // `cache/a` reaches version 5 in the records; `cache/c` has no event at all.
    for (id, version) in [("a", 6), ("c", 1)] {
        let sections = with_entry(
            &real,
            (b'S', snapshot_entry("cache", id, version)),
            "snapshots",
        );
        let detail = refused(&dir, &sections);
        assert!(detail.contains("snapshot"), "{detail}");
        assert!(detail.contains(&format!("cache/{id}")), "{detail}");
    }
}

#[test]
fn a_consumer_ahead_of_the_records_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = real_sections(&dir);
    let sections = with_entry(&real, (b'C', consumer_entry("p", 7)), "consumers");
    let detail = refused(&dir, &sections);
    assert!(detail.contains("consumer `p`"), "{detail}");
}

/// `real`'s records replaced by one record of `cache/a` events at positions 1, 2, ... with
/// `versions`, and its manifest made to match (counts, last position, chain head).
fn with_versions(real: &[(u8, Vec<u8>)], versions: &[u64]) -> Vec<(u8, Vec<u8>)> {
    let events: Vec<_> = versions
        .iter()
        .zip(1_u64..)
        .map(|(&version, position)| hit("a", position).into_recorded(version, position))
        .collect();
    let record = events_sled::fuzz::encode_record(&events);
    let (_, manifest) = real.last().unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    manifest["event_count"] = versions.len().into();
    manifest["last_position"] = versions.len().into();
    manifest["records"] = 1.into();
    manifest["chain_head"] = blake3::hash(&record).to_hex().to_string().into();
    let mut sections: Vec<_> = real
        .iter()
        .filter(|(tag, _)| *tag != b'R' && *tag != b'M')
        .cloned()
        .collect();
    sections.push((b'R', record));
    sections.push((b'M', serde_json::to_vec(&manifest).unwrap()));
    sections
}

#[test]
fn consecutive_versions_in_a_crafted_record_are_accepted() {
    // Guards the test below: the crafted record and manifest are well formed.
    let dir = tempfile::tempdir().unwrap();
    let real = real_sections(&dir);
    let file = dir.path().join("consecutive.evlc");
    write_checkpoint_sections(&file, &with_versions(&real, &[1, 2, 3]));
    assert_eq!(verify_checkpoint(&file).unwrap().last_position, 3);
}

#[test]
fn an_aggregate_whose_versions_skip_or_repeat_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = real_sections(&dir);
    for versions in [&[1, 3][..], &[1, 1], &[2], &[1, 2, 2]] {
        let detail = refused(&dir, &with_versions(&real, versions));
        assert!(detail.contains("version"), "{versions:?}: {detail}");
        assert!(detail.contains("cache/a"), "{versions:?}: {detail}");
    }
}
